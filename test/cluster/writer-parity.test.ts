// What a writer puts on its own disk (issue 15, the six-host sequential write): the k data
// fragments of each chunk it writes (the chunk's bytes: durable locally, DESIGN.md §5), and of
// the parity only the fragment placement says it keeps. Parity bound for other hosts is pushed
// from memory, and rebuilt from the data fragments here when a placement is retried after its
// staging was let go (node/keeper/network.ts placeOne). Six hosts on loopback TCP, k = 4, m = 2.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startHost, startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { encodeChunk } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { chunksOf, planHeld, planOnStores } from '../helpers/chunks.ts'
import { meshSuite } from '../helpers/mesh.ts'

const MiB = 1 << 20

/**
 * Write `path` on `w`: its first chunk online (the write's parameters fixed there, k = 4, m = 2,
 * six hosts), then every peer stopped (still members: suspects, for the failure timeout) and the
 * second chunk written offline, where it stays pending, local-only. Returns both chunks' bytes
 * and the second chunk's ref.
 */
async function writeOffline (w: ClusterHost, peers: ClusterHost[], path: string): Promise<{ first: Uint8Array, second: Uint8Array, key: string, ref: ChunkRef }> {
  const { k, m } = w.volume.chunks.params()
  const first = randomBytes(MiB)
  const second = randomBytes(MiB)
  const key = encodeChunk(second, MiB, k, m).ref.cid!.toString()
  const gone = Promise.withResolvers<void>()
  const stopped = Promise.withResolvers<void>()
  async function * pieces (): AsyncGenerator<Uint8Array> {
    yield first
    gone.resolve()
    await stopped.promise
    yield second
  }
  const writing = w.volume.replaceFile(path, pieces(), { wait: 'none' })
  await gone.promise
  await Promise.all(peers.map(async p => { await p.stop() }))
  await until('the writer is offline', () => w.host.peers().length === 0 && w.presence.offline(), 60_000)
  stopped.resolve()
  await writing
  const ref = (await chunksOf(w, path)).find(r => r.cid?.toString() === key)!
  return { first, second, key, ref }
}

describe('cluster: the writer stores data fragments, and parity only where it keeps it', function () {
  this.timeout(240_000)
  const { hosts, t } = meshSuite(6, { transport: 'tcp' })

  before(() => {
    assert.deepEqual(hosts[0].volume.chunks.params(), { k: 4, m: 2 })
  })

  it('a placed write: the writer put the chunk bytes once plus the parity it keeps, every fragment is on a host, the file reads back elsewhere (fails on the old code: 1.5x on the writer)', async () => {
    const [w] = hosts
    const data = randomBytes(8 * MiB)
    const added = (): number[] => hosts.map(h => h.store.counters().added)
    const before = added()
    await w.volume.replaceFile('/placed.bin', [data], { wait: 'safe' })
    const refs = (await chunksOf(w, '/placed.bin')).filter(r => r.k > 1)
    assert.equal(refs.length, 8)
    await until('every chunk is placed', () => w.network.pending.size === 0, 120_000)
    // handed over: the writer keeps one fragment of each chunk (it is one of the six targets)
    await until('the writer holds one fragment of each chunk', async () => {
      for (const r of refs) if ((await Promise.all(r.fragments.map(async f => await w.store.has(f)))).filter(Boolean).length !== 1) return false
      return true
    }, 120_000)
    for (const r of refs) {
      for (const f of r.fragments) {
        const on = (await Promise.all(hosts.map(async h => await h.store.has(f)))).filter(Boolean).length
        assert.ok(on >= 1, `fragment ${f.toString()} is on ${on} hosts`)
      }
    }
    const after = added()
    const writer = after[0] - before[0]
    const total = after.reduce((n, a, i) => n + a - before[i], 0)
    // the writer: 1x (its data fragments) + at most 0.25x (the parity it keeps) + the manifest;
    // it was 1.5x (every fragment, five of six deleted later)
    assert.ok(writer <= data.byteLength * 1.25 + 64 * 1024, `the writer put ${(writer / data.byteLength).toFixed(3)}x the bytes written`)
    assert.ok(writer >= data.byteLength, 'the data fragments are on the writer\'s disk')
    // all six stores: 2.25x-2.5x (it was 2.75x)
    assert.ok(total <= data.byteLength * 2.5 + 256 * 1024, `the six stores put ${(total / data.byteLength).toFixed(3)}x the bytes written`)
    assert.deepEqual(new Uint8Array(await hosts[5].volume.readFile('/placed.bin')), new Uint8Array(data))
  })

  it('a have-query (a keeper\'s survey, a placement\'s count) does not count the writer as holding parity it has only staged; a want of it is still served (fails on the old code: HAVE for staged parity)', async () => {
    const [w, r] = hosts
    const { k, m } = w.volume.chunks.params()
    const data = randomBytes(MiB)
    // stored, not committed: nothing places it, its parity stays staged (memory) on the writer
    const { ref } = await w.volume.chunks.storeChunk(data, 0, { params: { k, m } })
    const coded = encodeChunk(data, MiB, k, m).blocks
    const parity = ref.fragments.slice(k)
    for (const f of parity) {
      assert.equal(await w.store.has(f), false, 'the parity is on no disk')
      assert.ok(w.volume.chunks.staged(f) !== undefined, 'the parity is staged')
    }
    // the question a keeper's survey asks of each live host (keeper/survey.ts): the writer is
    // not counted among the parity's holders, so the chunk is not called redundant on its account
    const held = await r.swarm.has(ref.fragments, w.host.peerId)
    for (const f of ref.fragments.slice(0, k)) assert.ok(held.has(f.toString()), 'a data fragment (on the writer\'s disk) is held')
    for (const f of parity) assert.ok(!held.has(f.toString()), `staged parity ${f.toString()} is not answered held`)
    // a relay's (or a target's) want of the staged parity is served from memory as before
    for (const [i, f] of parity.entries()) {
      assert.deepEqual(new Uint8Array(await r.swarm.pull(f, [w.host.peerId])), new Uint8Array(coded[k + i].bytes), `staged parity ${k + i} is served to a want`)
    }
  })

  it('a write whose peers went away is left pending as its data fragments; placed once they are back, with parity rebuilt from them', async () => {
    const [w, ...peers] = hosts
    const { k, m } = w.volume.chunks.params()
    const { first, second, key, ref } = await writeOffline(w, peers, '/offline.bin')
    assert.deepEqual([ref.k, ref.m], [k, m])
    const ranked = w.policy.rank(ref, w.policy.members(), k + m)
    assert.equal(ranked.length, k + m, 'the stopped peers are still ranked')
    // the fragment the writer keeps (stored by the placement: parity when ranked k or later)
    const mine = ranked.indexOf(w.host.peerId)
    await until('the chunk is left pending, its attempt over', () => w.network.pending.has(key) && !w.network.isPlacing(key), 60_000)
    for (const f of ref.fragments.slice(0, k)) assert.ok(await w.store.has(f), 'its data fragments are on the writer\'s disk')
    for (let j = k; j < k + m; j++) {
      if (j === mine) continue
      assert.equal(await w.store.has(ref.fragments[j]), false, `its parity fragment ${j} (bound elsewhere) is on no disk`)
      assert.equal(w.volume.chunks.staged(ref.fragments[j]), undefined, 'nor in memory: the staging let it go')
    }
    w.volume.chunks.dropCache()
    assert.deepEqual(new Uint8Array(await w.volume.chunks.readChunk(ref)), new Uint8Array(second), 'offline, the chunk reads back from its data fragments')
    // the peers come back (same data dirs: same peer ids); the writer retries on connect
    for (let i = 0; i < peers.length; i++) hosts[i + 1] = await startHost(t, peers[i].dir, `${peers[i].name}-back`, [w.address], { transport: 'tcp' })
    await until('the chunk is placed', () => !w.network.pending.has(key), 120_000)
    const coded = encodeChunk(second, MiB, k, m).blocks
    for (let j = k; j < k + m; j++) {
      const f = ref.fragments[j]
      // (the parity the writer is the target of is placed on its own disk, and on no peer: six
      // hosts, six fragments, one target each)
      const on = j === mine ? [w] : hosts.filter(h => h !== w)
      await until(`parity fragment ${j} is on ${j === mine ? 'the writer (its target)' : 'a peer'}`, async () => (await Promise.all(on.map(async h => await h.store.has(f)))).some(Boolean), 60_000)
      for (const h of on) if (await h.store.has(f)) assert.deepEqual(new Uint8Array(await h.store.get(f)), new Uint8Array(coded[j].bytes), `${h.name}'s parity fragment ${j}`)
    }
    // the writer stopped: the file reads back from the others alone, once all of it is placed (its
    // first chunk, written as the peers went, may be placed on their return too), on the first
    // host back, whether or not it sees the others up yet: one that does not dials the members it
    // does not see up when those it sees cannot serve the read (keeper/network.ts fetch; it
    // failed about 1 run in 3 when this host asked the writer alone)
    await until('every chunk the writer wrote is placed', () => w.network.pending.size === 0, 120_000)
    const reader = hosts[1]
    await until('it knows the file', async () => await reader.volume.stat('/offline.bin').then(() => true, () => false), 60_000)
    await w.stop()
    assert.deepEqual(new Uint8Array(await reader.volume.readFile('/offline.bin')), new Uint8Array([...first, ...second]))
  })
})

describe('cluster: a writer restarted before its parity was pushed', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  // background repair passes every second: the keepers are what places the chunk here
  const keep = { repairIntervalMs: 1000, repairQuietIntervalMs: 1000, atRiskDelayMs: 1000, scrubIntervalMs: 0, gcIntervalMs: 0 }

  it('its pending list and staging are gone: nothing counts the writer as holding parity, the keepers place the chunk, and it ends redundant, the parity rebuilt from the data fragments', async () => {
    const hosts = await startMesh(t, 6, { transport: 'tcp', daemon: { keep } })
    const [w, ...peers] = hosts
    const { k, m } = w.volume.chunks.params()
    assert.deepEqual({ k, m }, { k: 4, m: 2 })
    const { first, second, key, ref } = await writeOffline(w, peers, '/restart.bin')
    await until('the chunk is left pending, its attempt over', () => w.network.pending.has(key) && !w.network.isPlacing(key), 60_000)
    for (const f of ref.fragments.slice(0, k)) assert.ok(await w.store.has(f), 'its data fragments are on the writer\'s disk')

    // the writer restarts before any of it was pushed: its pending list (memory) and staging are gone
    await w.stop()
    const w2 = await startHost(t, w.dir, `${w.name}-again`, [], { transport: 'tcp', daemon: { keep } })
    assert.equal(w2.network.pending.has(key), false, 'the restarted writer has no pending placement of the chunk')
    for (const f of ref.fragments.slice(k)) assert.equal(w2.volume.chunks.staged(f), undefined, 'no parity staged')
    const again: ClusterHost[] = [w2]
    for (const p of peers) again.push(await startHost(t, p.dir, `${p.name}-back`, [w2.address], { transport: 'tcp', daemon: { keep } }))
    await until('full mesh again', () => again.every(h => h.host.peers().length === 5), 60_000)

    // every fragment on every host the plan over the members wants it on (survey.ts plan), asked
    // of the stores themselves; the parity byte-equal to the code's
    const redundant = async (): Promise<string> => {
      const p = await planOnStores(ref, again, w2)
      return `${p.health}: ${planHeld(p)}`
    }
    await until('the chunk is redundant', async () => (await redundant()).startsWith('redundant'), 180_000)
      .catch(async (err: Error) => { throw new Error(`${err.message}: ${await redundant()}`) })
    const coded = encodeChunk(second, MiB, k, m).blocks
    for (let j = k; j < k + m; j++) {
      for (const h of again) if (await h.store.has(ref.fragments[j])) assert.deepEqual(new Uint8Array(await h.store.get(ref.fragments[j])), new Uint8Array(coded[j].bytes), `${h.name}'s parity fragment ${j}`)
    }
    const s = await again[1].keep.status()
    assert.equal(s.lost, 0)
    // the writer stopped: the file reads back from the others alone
    await w2.stop()
    assert.deepEqual(new Uint8Array(await again[1].volume.readFile('/restart.bin')), new Uint8Array([...first, ...second]))
  })
})
