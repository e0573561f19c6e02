// A write still open has the targets of the chunks it placed promise them again every
// ChunkService.renewMs (node/data/blocks.ts ChunkWrite): a settle placement with `renew` of the
// chunks placed so far, one round at a time, until its commit or abandon(). The cluster test
// (test/cluster/renew-open-write.test.ts) checks what it keeps on real hosts; this one the
// bounds, against a network that records what it is asked.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { ChunkService, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

const renewMs = 40

interface Call { refs: ChunkRef[], renew: boolean, settle: boolean, signal?: AbortSignal, done: PromiseWithResolvers<void> }

describe('ChunkWrite: an open write renews its placed chunks\' promises (ChunkServiceInit.renewMs)', function () {
  this.timeout(30_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  async function service (): Promise<{ chunks: ChunkService, calls: Call[], hold: { on: boolean } }> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const calls: Call[] = []
    // while on, a renewal round lasts until the test says so; else it is over at once
    const hold = { on: true }
    const network: Network = {
      params: () => ({ k: 2, m: 1 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      place: async (refs, opts = {}) => {
        const call: Call = { refs, renew: opts.renew === true, settle: opts.settle === true, signal: opts.signal, done: Promise.withResolvers<void>() }
        calls.push(call)
        // a chunk's own placement is over at once; a renewal round when the test says so
        if (!call.renew || !hold.on) return
        opts.signal?.addEventListener('abort', () => { call.done.reject(opts.signal!.reason) }, { once: true })
        await call.done.promise
      }
    }
    return { chunks: new ChunkService(store, { network, renewMs }), calls, hold }
  }
  const renewals = (calls: Call[]): Call[] => calls.filter(c => c.renew)
  /** The clock past `n` renewal periods from now (the condition is the time itself). */
  const periods = async (n: number): Promise<void> => {
    const end = Date.now() + n * renewMs
    await until(`${n} renewal periods`, () => Date.now() >= end)
  }

  it('renews the chunks placed so far with settle, one round at a time, without the chunks released, and stops at the commit', async () => {
    const { chunks, calls, hold } = await service()
    hold.on = false
    const w = chunks.write()
    const a = await w.chunk(randomBytes(10_000), 0)
    const b = await w.chunk(randomBytes(10_000), 10_000)
    await until('both chunks placed', () => w.progress.placed === 20_000)
    // (a round before both were placed, if any, was over at once)
    hold.on = true
    const mark = renewals(calls).length
    await until('a renewal round', () => renewals(calls).length > mark)
    const first = renewals(calls)[mark]
    assert.equal(first.settle, true)
    assert.deepEqual(new Set(first.refs), new Set([a, b]))
    // the round is still on: the ticks meanwhile start none
    await periods(4)
    assert.equal(renewals(calls).length, mark + 1, 'one round at a time')
    first.done.resolve()
    await until('a second round', () => renewals(calls).length >= mark + 2)
    renewals(calls).forEach(c => { c.done.resolve() })
    // a chunk the write no longer has is not renewed
    w.release(b)
    const seen = renewals(calls).length
    await until('a round after the release', () => renewals(calls).length > seen)
    const last = renewals(calls).at(-1)!
    assert.deepEqual(last.refs, [a])
    last.done.resolve()
    renewals(calls).forEach(c => { c.done.resolve() })
    w.committed()
    const atCommit = renewals(calls).length
    await periods(4)
    assert.equal(renewals(calls).length, atCommit, 'no round after the commit')
  })

  it('abandon() stops the round in flight (its signal aborts) and starts none after', async () => {
    const { chunks, calls } = await service()
    const w = chunks.write()
    await w.chunk(randomBytes(10_000), 0)
    await until('a renewal round', () => renewals(calls).length >= 1)
    const round = renewals(calls)[0]
    await w.abandon()
    assert.equal(round.signal?.aborted, true, 'the round in flight was aborted')
    const atAbandon = renewals(calls).length
    await periods(4)
    assert.equal(renewals(calls).length, atAbandon, 'no round after abandon()')
  })

  it('a renewMs that is not a positive number of ms is refused', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    for (const bad of [0, -1, Number.NaN]) assert.throws(() => new ChunkService(store, { renewMs: bad }), RangeError)
  })
})
