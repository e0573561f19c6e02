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

  /** A holder of one fragment of `ref` other than `b` (by b's record), and that fragment's index. */
  function holderOf (b: ClusterHost, ref: ChunkRef, spare: (h: ClusterHost) => boolean = () => true): { victim: ClusterHost, lost: number } {
    const record = b.network.heldOf(ref)
    assert.ok(record !== undefined, 'B has a placement record of X')
    const ids = new Set(hosts.filter(h => h !== b && spare(h)).map(h => h.host.peerId))
    const lost = record.findIndex(s => [...s].some(p => ids.has(p)))
    const victim = hosts.find(h => ids.has(h.host.peerId) && record[lost]?.has(h.host.peerId) === true)
    assert.ok(victim !== undefined, `some other host holds a fragment of X by B's record: ${record.map(s => s.size).join(',')}`)
    return { victim, lost }
  }

  it('a holder that lost a fragment the writer no longer holds refuses its renewal: it leaves the record, the chunk is not made pending, the other fragments are still renewed, and the chunk\'s keeper repairs it after the commit', async () => {
    const [, , b] = hosts
    const { ref, finish } = await openWrite(b, '/c.bin')
    const key = ref.cid!.toString()
    // the chunk's keeper (the first ranked, every host up) took B's placement notice; the victim is
    // another host, so the repair below is the keeper's word against the notice (review32f)
    // (ranked by the rule the written ref names, ChunkService.placementRule, as keeperOf() does)
    const rule = b.volume.chunks.placementRule
    const keeper = b.policy.rank(rule === null ? ref : { ...ref, rule }, hosts.map(h => h.host.peerId), 1)[0]
    const { victim, lost } = holderOf(b, ref, h => h.host.peerId !== keeper)
    // the writer handed that fragment over and deleted it: a retry could not place it from here
    assert.equal(await b.store.has(ref.fragments[lost]), false, `${b.name} no longer holds f${lost} after handing it over`)
    // the holder loses it (as GC or a joiner displacing it would)
    await victim.store.delete(ref.fragments[lost])
    assert.equal(await victim.store.has(ref.fragments[lost]), false, 'the victim no longer holds the fragment')
    await threePromiseTimes(b)
    // B's renewal found the refusal: the victim is no longer a holder of it by B's record
    assert.ok(b.network.heldOf(ref)?.[lost]?.has(victim.host.peerId) !== true, `${victim.name} left B's record of f${lost} after refusing its renewal`)
    // and every other fragment is still promised by some host, three promise times after B placed it
    const promised = promisedCounts(ref)
    assert.ok(promised.every((n, j) => j === lost || n > 0), `hosts promising each fragment of X (f${lost} lost on ${victim.name}): ${promised.join(',')}`)
    // not pending: a retry could never place the fragment (review32b: pending for ever, 0 holders)
    assert.notEqual(b.network.holders(key)?.pending, true, `X is not pending on B (nothing here to place f${lost} from): ${JSON.stringify(b.network.holders(key))}`)
    await finish()
    // left to repair: the keeper's background passes (no pass called here) bring f${lost} back.
    // Failed before: B's notice still named the victim, the first incremental pass after the
    // commit took X as placed without a survey, and only a full pass (1 h quiet) looked again
    let held: number[] = []
    await until(`every fragment of X held again after the commit (f${lost} lost on ${victim.name})`, async () => {
      held = await heldCounts(ref)
      return held.every(n => n > 0)
    }, 180_000).catch((err: Error) => { throw new Error(`${err.message}: held ${held.join(',')}`) })
  })

  it('a holder that lost a fragment the writer still holds refuses its renewal: the chunk is pending and placed again from the writer\'s bytes', async () => {
    const [, , , b] = hosts
    const { ref, x, finish } = await openWrite(b, '/e.bin')
    const key = ref.cid!.toString()
    const { victim, lost } = holderOf(b, ref)
    // the writer holds the fragment's bytes (stored again here, as a write of the same bytes would)
    const block = encodeChunk(x, 0, ref.k, ref.m).blocks.find(bl => bl.cid.equals(ref.fragments[lost]))
    assert.ok(block !== undefined, `f${lost}'s bytes`)
    await b.store.put(block.cid, block.bytes)
    await victim.store.delete(ref.fragments[lost])
    // refused at the next round: pending, then placed again (held somewhere besides B), no longer pending
    await until(`${victim.name} refused f${lost} and X was placed again`, async () => {
      const h = b.network.holders(key)
      if (h === undefined || h.pending) return false
      const others = await Promise.all(hosts.filter(o => o !== b).map(async o => await o.store.has(ref.fragments[lost])))
      return others.some(Boolean)
    }, 120_000)
    const held = await heldCounts(ref)
    assert.ok(held.every(n => n > 0), `every fragment of X held again: ${held.join(',')}`)
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
  it('a holder that gives no answer stays a holder: it is asked again each round, the chunk does not go pending, the rest still renewed', async () => {
    const b = hosts[5]
    const { ref } = await openWrite(b, '/f.bin')
    const key = ref.cid!.toString()
    // a holder other than B (and other than the first host, which the others joined through)
    const { victim, lost } = holderOf(b, ref, h => h !== hosts[0])
    // it answers nothing from now on (stopped: B cannot reach it; not declared gone this soon)
    await victim.stop()
    // three promise times: six renewal rounds with no answer from it (review32b: two such rounds dropped it)
    await threePromiseTimes(b)
    assert.equal(b.network.heldOf(ref)?.[lost]?.has(victim.host.peerId), true, `${victim.name} is still in B's record of f${lost}`)
    assert.notEqual(b.network.holders(key)?.pending, true, 'X is not pending on B (a silent keeper refuses nothing)')
    // the other fragments' holders still promise them (B's renewals go on)
    const promised = ref.fragments.map((f, j) => j === lost ? 1 : hosts.filter(h => !h.stopped && h.custody.promised(f)).length)
    assert.ok(promised.every(n => n > 0), `hosts promising each fragment of X but f${lost}: ${promised.join(',')}`)
  })
})

describe('a daemon that closes stops its open writes\' renewals first (ChunkService.close())', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('after close() no write renews, and none starts renewing', async () => {
    // review32f: the daemon never called ChunkService.close() (only Volume.close() did), so an
    // open write's renewal timer outlived the custody, network and host it renews through
    const [h] = await startCluster(t, 1, { daemon: { custodyPromiseMs } })
    const chunks = h.volume.chunks
    const w = chunks.write()
    await w.chunk(randomBytes(64 << 10), 0)
    await h.stop()
    assert.equal(chunks.closed, true, 'the daemon closed its ChunkService')
    assert.equal(chunks.renewals.size, 0, 'no renewal left scheduled')
    await w.abandon()
  })
})
