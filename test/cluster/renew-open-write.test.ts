// A placed chunk's targets promise its writer to keep their fragments (custody.ts) for
// CUSTODY_PROMISE_MS, and a write may stay open longer (a big or slow upload). Once the promises
// ended, another host that writes the same bytes and gives up had them deleted everywhere
// (release.ts spares only a block promised to someone else): the first write then committed a
// chunk with none of its fragments left anywhere. A write still open has its placed chunks'
// holders promise them again every half promise time (ChunkWrite, network.renew: a promise round
// alone). Checked by where the fragments are and what is promised, not by timing; the promise
// time is short here (the wait for it to pass is the clock itself).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { encodeChunk } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'

const MiB = 1 << 20
/** Short promises, renewed every half of it: the open writes below outlive several. */
const custodyPromiseMs = 3_000

describe('a write open past several custody promise times (six hosts, k=4 m=2): its holders\' promises renewed', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]

  before(async () => {
    hosts = await startCluster(t, 6, { transport: 'tcp', daemon: { custodyPromiseMs } })
    await until('full mesh', () => hosts.every(h => h.host.peers().length === 5), 60_000)
  })

  const heldCounts = async (ref: ChunkRef): Promise<number[]> => await Promise.all(ref.fragments.map(async f => (await Promise.all(hosts.map(async h => await h.store.has(f)))).filter(Boolean).length))
  const promisedCounts = (ref: ChunkRef): number[] => ref.fragments.map(f => hosts.filter(h => h.custody.promised(f)).length)

  /** `b` writes X (one chunk) and stays open until the returned `finish` (which then writes Y and commits). */
  async function openWrite (b: ClusterHost, path: string): Promise<{ ref: ChunkRef, x: Uint8Array, y: Uint8Array, finish: () => Promise<void> }> {
    const { k, m } = b.volume.chunks.params()
    assert.ok(k > 1 && m > 0, `an erasure-coded chunk (k=${k} m=${m})`)
    const x = randomBytes(MiB)
    const y = randomBytes(MiB)
    const ref = encodeChunk(x, 0, k, m).ref
    const go = Promise.withResolvers<void>()
    let placed = 0
    async function * feed (): AsyncGenerator<Uint8Array> {
      yield x
      await go.promise
      yield y
    }
    const writing = b.volume.replaceFile(path, feed(), { wait: 'safe', onProgress: p => { placed = p.placed } })
    writing.catch(() => {}) // awaited by finish()
    // placed counts a chunk once its placement settled: handed over, its targets' promises asked
    await until(`${b.name} placed X`, () => placed >= MiB, 120_000)
    const held = await heldCounts(ref)
    assert.ok(held.every(n => n > 0), `every fragment of X is on some host once placed: ${held.join(',')}`)
    return { ref, x, y, finish: async () => { go.resolve(); await writing } }
  }

  /** Three promise times pass (the condition is the clock itself); returns the bytes `b`'s swarm sent meanwhile. */
  async function threePromiseTimes (b: ClusterHost): Promise<number> {
    const sent = b.swarm.stats().bytesSent
    const ended = Date.now() + 3 * custodyPromiseMs
    await until('three promise times', () => Date.now() >= ended, 60_000)
    return b.swarm.stats().bytesSent - sent
  }

  /** `a` writes X too, waits until it is placed, and gives up: its release reaches every host before it rejects. */
  async function writeAndGiveUp (a: ClusterHost, ref: ChunkRef, x: Uint8Array, path: string): Promise<void> {
    const key = ref.cid!.toString()
    async function * feed (): AsyncGenerator<Uint8Array> {
      yield x
      await until(`${a.name} placed X`, () => a.network.holders(key)?.pending === false, 120_000)
      throw new Error('A gives up')
    }
    await assert.rejects(a.volume.replaceFile(path, feed(), { wait: 'safe' }), /A gives up/)
  }

  it('B\'s holders keep X through A\'s give-up: B renewed their promises while open, and B\'s file reads on a third host', async () => {
    const [, b, a, r] = hosts
    const { ref, x, y, finish } = await openWrite(b, '/b.bin')
    await threePromiseTimes(b)
    const promised = promisedCounts(ref)
    await writeAndGiveUp(a, ref, x, '/b.a.bin')
    const after = await heldCounts(ref)
    // (the loss first, then its cause)
    assert.ok(after.every(n => n > 0), `hosts holding each fragment of X after A gave up, B still open: ${after.join(',')} (none may be 0; promising each before: ${promised.join(',')})`)
    assert.ok(promised.every(n => n > 0), `hosts promising each fragment of X three promise times after B placed it: ${promised.join(',')} (none may be 0)`)
    await finish()
    await until('/b.bin seen on r', async () => { try { await r.volume.stat('/b.bin'); return true } catch { return false } }, 60_000)
    const read = await r.volume.readFile('/b.bin')
    assert.ok(Buffer.from(read).equals(Buffer.concat([x, y])), '/b.bin reads back as written')
  })

  it('a holder that lost one fragment refuses its renewal: that chunk goes pending, the other fragments are still renewed', async () => {
    const [, , b] = hosts
    const { ref, finish } = await openWrite(b, '/c.bin')
    const key = ref.cid!.toString()
    // a holder other than B loses one fragment (as GC or a joiner displacing it would)
    const self = b.host.peerId
    const record = b.network.heldOf(ref)
    assert.ok(record !== undefined, 'B has a placement record of X')
    const lost = record.findIndex(s => [...s].some(p => p !== self))
    const victim = hosts.find(h => h.host.peerId !== self && record[lost].has(h.host.peerId))
    assert.ok(victim !== undefined, `some host other than B holds a fragment of X by B's record: ${record.map(s => s.size).join(',')}`)
    await victim.store.delete(ref.fragments[lost])
    assert.equal(await victim.store.has(ref.fragments[lost]), false, 'the victim no longer holds the fragment')
    await threePromiseTimes(b)
    // B's renewal found the refusal: the victim is no longer a holder of it by B's record
    assert.ok(b.network.heldOf(ref)?.[lost]?.has(victim.host.peerId) !== true, `${victim.name} left B's record of f${lost} after refusing its renewal`)
    // and every other fragment is still promised by some host, three promise times after B placed it
    const promised = promisedCounts(ref)
    assert.ok(promised.every((n, j) => j === lost || n > 0), `hosts promising each fragment of X (f${lost} lost on ${victim.name}): ${promised.join(',')}`)
    // the refusal made the chunk pending (or it was placed again since: then it is held again)
    const h = b.network.holders(key)
    assert.ok(h?.pending === true || (await heldCounts(ref))[lost] > 0, `X pending again on B, or placed again: ${JSON.stringify(h)}`)
    await finish()
  })

  it('with B\'s placement record of X forgotten, the renewal asks the planned targets and pushes nothing again', async () => {
    const [, , , r, b, a] = hosts
    const remembered = b.network.placementRemembered
    // every record forgotten as soon as its placement is over
    b.network.placementRemembered = 0
    try {
      const { ref, x, y, finish } = await openWrite(b, '/d.bin')
      const sentOpen = await threePromiseTimes(b)
      const fragment = Math.ceil(MiB / ref.k)
      // a push again would be whole fragments; a promise round is a few CIDs
      assert.ok(sentOpen < fragment, `B's swarm sent ${sentOpen} bytes while open (a fragment is ${fragment})`)
      const promised = promisedCounts(ref)
      assert.ok(promised.every(n => n > 0), `hosts promising each fragment of X with B's record forgotten: ${promised.join(',')} (none may be 0)`)
      await writeAndGiveUp(a, ref, x, '/d.a.bin')
      const after = await heldCounts(ref)
      assert.ok(after.every(n => n > 0), `hosts holding each fragment of X after A gave up: ${after.join(',')} (none may be 0)`)
      await finish()
      await until('/d.bin seen on r', async () => { try { await r.volume.stat('/d.bin'); return true } catch { return false } }, 60_000)
      const read = await r.volume.readFile('/d.bin')
      assert.ok(Buffer.from(read).equals(Buffer.concat([x, y])), '/d.bin reads back as written')
    } finally {
      b.network.placementRemembered = remembered
    }
  })

  // (last: it stops a host)
  it('a holder that gives no answer for two renewal rounds in a row no longer counts as one: that chunk is pending, the rest still renewed', async () => {
    const b = hosts[5]
    const { ref } = await openWrite(b, '/f.bin')
    const key = ref.cid!.toString()
    const self = b.host.peerId
    const record = b.network.heldOf(ref)
    assert.ok(record !== undefined, 'B has a placement record of X')
    // a holder other than B (and other than the first host, which the others joined through)
    const spare = new Set(hosts.filter(h => h !== b && h !== hosts[0]).map(h => h.host.peerId))
    const lost = record.findIndex(s => [...s].some(p => spare.has(p)))
    const victim = hosts.find(h => spare.has(h.host.peerId) && record[lost].has(h.host.peerId))
    assert.ok(victim !== undefined, `a host other than B and the first holds a fragment of X by B's record: ${record.map(s => s.size).join(',')}`)
    // it answers nothing from now on (stopped: B cannot reach it; not declared gone this soon)
    await victim.stop()
    await until(`${victim.name} left B's record of f${lost}`, () => b.network.heldOf(ref)?.[lost]?.has(victim.host.peerId) !== true, 60_000)
    assert.equal(b.network.holders(key)?.pending, true, 'X is pending on B (its target away: not placed again while it is)')
    // the other fragments' holders still promise them (B's renewals go on)
    const ended = Date.now() + 2 * custodyPromiseMs
    await until('two promise times more', () => Date.now() >= ended, 60_000)
    const promised = ref.fragments.map((f, j) => j === lost ? 1 : hosts.filter(h => !h.stopped && h.custody.promised(f)).length)
    assert.ok(promised.every(n => n > 0), `hosts promising each fragment of X but f${lost}: ${promised.join(',')}`)
  })
})
