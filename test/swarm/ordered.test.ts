import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import type { PeerBook } from '../../swarm/peers.ts'
import type { Swarm } from '../../swarm/index.ts'
import { Net, block, chunkOn, randomBytes } from './net.ts'

// `ordered` pulls (a chunk read's: data fragments first) must not wait on a data holder that is
// known to be thin or that fails: these pulls each have FETCH_TIMEOUT_MS (keeper/network.ts, 20 s)
// as a read's fetch has, and the assertion is that none of them is aborted by it.
const FETCH_TIMEOUT_MS = 20_000

interface Holder { id: string, store: { map: Map<string, Uint8Array> } }

/** The reader's peer book (failures on record are set through it: a dropped stream does it in use). */
function bookOf (swarm: Swarm): PeerBook {
  return (swarm as unknown as { book: PeerBook }).book
}

/** Pulls every chunk, `ordered`, all at once; returns how many were aborted by FETCH_TIMEOUT_MS. */
async function pullAll (a: { swarm: Swarm }, chunks: Array<{ cids: CID[], from: Map<string, string[]> }>): Promise<number> {
  let aborted = 0
  await Promise.all(chunks.map(async c => {
    try {
      const got = await a.swarm.pullAny(c.cids, 4, c.from, { ordered: true, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
      assert.equal(got.size, 4)
    } catch (err) {
      if ((err as Error).name !== 'TimeoutError') throw err
      aborted++
    }
  }))
  return aborted
}

describe('swarm.pullAny ordered: thin or failing data holders', function () {
  this.timeout(2 * FETCH_TIMEOUT_MS + 30_000)
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  it('passes over a data holder on an announced thin uplink on a fresh reader (the others unmeasured): no pull waits it out', async () => {
    // Failed before (9 of 16 aborted): the thin holder was the only one whose speed was known,
    // compared only with itself, so never passed over; every chunk queued on it and its hedge
    // time (4 x 2.6 s x (queued + 1)) never came
    const holders: Holder[] = [await net.node({ maxUploadBytesPerSecond: 25_000 }), ...await Promise.all(Array.from({ length: 5 }, async () => await net.node()))]
    const a = await net.node({ uplink: new Map([[holders[0].id, 100_000]]) })
    await net.mesh()
    const chunks = []
    for (let i = 0; i < 16; i++) chunks.push(await chunkOn(holders, 100 + i * 10))
    assert.equal(await pullAll(a, chunks), 0, 'ordered pulls aborted by FETCH_TIMEOUT_MS')
    assert.ok(a.swarm.stats().passedOver >= 16, `passed over ${a.swarm.stats().passedOver} times, expected 16 at least: each chunk's block 0 passed over (counted once per later block asked in its place, up to 4 a chunk)`)
  })

  it('passes over a data holder under ORDERED_SLOW_FACTOR slower per block once the reader\'s queue on it is: no pull waits it out', async () => {
    // Failed before (3 of 16 aborted, hedged 0): announced 170 KB/s against 640 KB/s (3.8x,
    // 1542 ms per assumed block against 410: not slower()), every chunk's block 0 queued on it
    // (it really sends 44 KB/s: ~1.5 s a fragment, 24 s for 16); its hedge time 4 x 1542 ms,
    // and patience, the earlier queued blocks arriving, kept each request 3 more rounds (~25 s)
    const holders: Holder[] = [await net.node({ maxUploadBytesPerSecond: 44_000 }), ...await Promise.all(Array.from({ length: 5 }, async () => await net.node()))]
    const a = await net.node({ uplink: new Map(holders.map((h, i) => [h.id, i === 0 ? 170_000 : 640_000])) })
    await net.mesh()
    const chunks = []
    for (let i = 0; i < 16; i++) chunks.push(await chunkOn(holders, 300 + i * 10))
    assert.equal(await pullAll(a, chunks), 0, 'ordered pulls aborted by FETCH_TIMEOUT_MS')
    assert.ok(a.swarm.stats().passedOver > 0, 'holder 0 never passed over')
  })

  for (const { failures, measured } of [{ failures: 4, measured: false }, { failures: 1, measured: true }]) {
    it(`does not wait longer and longer on a silent data holder with ${failures} failure(s) on record (${measured ? '' : 'not '}measured)`, async () => {
      // Failed before (some of the 24 aborted): unmeasured, a holder with failures was "unknown",
      // never passed over; measured with one failure it is under MIN_HEDGE_MS slower; and the
      // hedge time grew with the requests queued on it, the nth waiting ~4 (s + 250) n ms
      const a = await net.node()
      const holders: Array<Holder & { store: { get: (cid: CID, o?: unknown) => Promise<Uint8Array> } }> = await Promise.all(Array.from({ length: 6 }, async () => await net.node()))
      await net.mesh()
      for (const [i, h] of holders.entries()) {
        if (i === 0 && !measured) continue
        const bytes = randomBytes(64 * 1024, 9000 + i)
        const c = await block(bytes)
        h.store.map.set(c.toString(), bytes)
        await a.swarm.pull(c, [h.id])
      }
      for (let i = 0; i < failures; i++) bookOf(a.swarm).failed(holders[0].id)
      // holder 0 goes silent: it serves nothing until the end of the test
      let release!: () => void
      const gate = new Promise<void>(resolve => { release = resolve })
      const get0 = holders[0].store.get
      holders[0].store.get = async (cid, o) => { await gate; return await get0(cid, o) }
      try {
        const chunks = []
        for (let i = 0; i < 24; i++) chunks.push(await chunkOn(holders, 100 + i * 10))
        assert.equal(await pullAll(a, chunks), 0, 'ordered pulls aborted by FETCH_TIMEOUT_MS')
        const { hedged, passedOver } = a.swarm.stats()
        assert.ok(hedged + passedOver >= 24, `hedged ${hedged}, passed over ${passedOver}: each chunk turned from holder 0`)
      } finally {
        release()
      }
    })
  }
})
