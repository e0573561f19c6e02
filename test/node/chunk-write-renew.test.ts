// A write still open has the holders of the chunks it placed promise them again every
// ChunkService.renewMs (node/data/blocks.ts ChunkWrite, Network.renew: a promise round alone),
// one round at a time, until its commit or abandon(), which stop it at once (a round in flight
// is aborted, not waited for). The cluster test (test/cluster/renew-open-write.test.ts) checks
// what it keeps on real hosts; this one the bounds, against a network that records what it is asked.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { ChunkService, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

const renewMs = 40

interface Round { refs: ChunkRef[], signal?: AbortSignal, over: PromiseWithResolvers<void>, live?: (ref: ChunkRef) => boolean }

describe('ChunkWrite: an open write renews its placed chunks\' promises (ChunkServiceInit.renewMs)', function () {
  this.timeout(30_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  async function service (): Promise<{ chunks: ChunkService, store: Store, rounds: Round[], placements: number[] }> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const rounds: Round[] = []
    const placements: number[] = []
    const network: Network = {
      params: () => ({ k: 2, m: 1 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      // a chunk's own placement is over at once
      place: async refs => { placements.push(refs.length) },
      // a renewal round lasts until the test ends it, or its signal aborts
      renew: async (refs, opts = {}) => {
        const round: Round = { refs, signal: opts.signal, live: opts.live, over: Promise.withResolvers<void>() }
        rounds.push(round)
        opts.signal?.addEventListener('abort', () => { round.over.reject(opts.signal!.reason) }, { once: true })
        await round.over.promise
      }
    }
    return { chunks: new ChunkService(store, { network, renewMs }), store, rounds, placements }
  }
  /** The clock past `n` renewal periods from now (the condition is the time itself). */
  const periods = async (n: number): Promise<void> => {
    const end = Date.now() + n * renewMs
    await until(`${n} renewal periods`, () => Date.now() >= end)
  }

  it('renews the chunks placed so far, one round at a time, not a released one, and nothing is placed again', async () => {
    const { chunks, rounds, placements } = await service()
    const w = chunks.write()
    const a = await w.chunk(randomBytes(10_000), 0)
    const b = await w.chunk(randomBytes(10_000), 10_000)
    await until('both chunks placed', () => w.progress.placed === 20_000)
    const placed = placements.length
    await until('a renewal round', () => rounds.length > 0)
    // a round in flight: the ticks meanwhile start none
    await periods(3)
    assert.equal(rounds.length, 1, 'one round at a time')
    rounds[0].over.resolve()
    await until('the next round', () => rounds.length > 1 && rounds.at(-1)!.refs.length === 2)
    assert.deepEqual(new Set(rounds.at(-1)!.refs), new Set([a, b]))
    const live = rounds.at(-1)!.live
    assert.ok(live !== undefined && live(a) && live(b), 'the round can ask whether each chunk is still the write\'s')
    w.release(a)
    // the round in flight neither records nor places again a chunk released meanwhile (review32f)
    assert.equal(live(a), false, 'a chunk released during the round is no longer live to it')
    assert.equal(live(b), true)
    rounds.at(-1)!.over.resolve()
    await until('a round after the release', () => rounds.length > 2)
    assert.deepEqual(rounds.at(-1)!.refs, [b], 'the released chunk is not renewed')
    assert.equal(placements.length, placed, 'a renewal places nothing (a promise round alone)')
    w.committed()
    assert.equal(rounds.at(-1)!.signal?.aborted, true, 'the commit aborts the round in flight')
    const n = rounds.length
    await periods(3)
    assert.equal(rounds.length, n, 'no round after the commit')
  })

  it('abandon() aborts the round in flight and does not wait for it', async () => {
    const { chunks, rounds } = await service()
    const w = chunks.write()
    await w.chunk(randomBytes(10_000), 0)
    await until('a renewal round', () => rounds.length > 0)
    // the round never ends by itself: abandon() resolving proves it did not wait for it
    await w.abandon()
    assert.equal(rounds[0].signal?.aborted, true, 'the round in flight was aborted')
    const n = rounds.length
    await periods(3)
    assert.equal(rounds.length, n, 'no round after abandon()')
  })

  it('ChunkService.close() (a Volume closing) stops every open write\'s renewals: the round in flight aborted, none after it, none started by a chunk placed later', async () => {
    const { chunks, rounds } = await service()
    const w1 = chunks.write()
    const w2 = chunks.write()
    await w1.chunk(randomBytes(10_000), 0)
    await w2.chunk(randomBytes(10_000), 0)
    await until('both writes renewing', () => rounds.length >= 2)
    chunks.close()
    assert.ok(rounds.every(r => r.signal?.aborted === true), 'every round in flight was aborted')
    const n = rounds.length
    // a chunk placed after the close starts no renewal either
    await w1.chunk(randomBytes(10_000), 10_000)
    await until('the new chunk placed', () => w1.progress.placed === 20_000)
    await periods(3)
    assert.equal(rounds.length, n, 'no round after close()')
    await w1.abandon()
    await w2.abandon()
  })

  it('a chunk whose local put failed is not renewed (its placement never ran)', async () => {
    const { chunks, store, rounds, placements } = await service()
    // the disk refuses the write (as a full one would)
    store.putMany = async () => { throw new Error('no space left on device') }
    const w = chunks.write()
    await w.chunk(randomBytes(10_000), 0)
    await assert.rejects(w.durable(), /no space left/)
    await until('the put over', () => w.progress.placed === 10_000)
    await periods(3)
    assert.equal(placements.length, 0, 'nothing was placed')
    assert.equal(rounds.length, 0, 'no renewal of a chunk never placed')
    await w.abandon()
  })
})
