import assert from 'node:assert/strict'
import { forEachLimited, limiter } from '../../node/pool.ts'

/** A promise resolved from outside. */
function gate (): { wait: Promise<void>, open: () => void } {
  let open = (): void => {}
  const wait = new Promise<void>(resolve => { open = resolve })
  return { wait, open }
}

describe('node/pool', function () {
  it('forEachLimited(items, n, fn) runs every item, never more than n at once, in order', async () => {
    let running = 0
    let most = 0
    const started: number[] = []
    await forEachLimited([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 3, async i => {
      started.push(i)
      most = Math.max(most, ++running)
      await new Promise(resolve => setImmediate(resolve))
      running--
    })
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert.equal(most, 3)
  })

  it('forEachLimited() rejects with the first error once the started items settled, and starts no more', async () => {
    const g = gate()
    const done: number[] = []
    const run = forEachLimited([0, 1, 2, 3, 4], 2, async i => {
      if (i === 0) throw new Error('first')
      await g.wait
      done.push(i)
    })
    let settled = false
    void run.catch(() => {}).finally(() => { settled = true })
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(settled, false, 'item 1 is still running')
    g.open()
    await assert.rejects(run, /first/)
    assert.deepEqual(done, [1], 'items after the error were not started')
  })

  it('forEachLimited(_, _, _, { signal }) stops taking items once aborted and rejects with the reason', async () => {
    const ac = new AbortController()
    const seen: number[] = []
    await assert.rejects(forEachLimited([0, 1, 2, 3], 1, async i => {
      seen.push(i)
      if (i === 1) ac.abort(new Error('stop'))
    }, { signal: ac.signal }), /stop/)
    assert.deepEqual(seen, [0, 1])
  })

  it('forEachLimited() of no items resolves; a bad concurrency is a RangeError', async () => {
    await forEachLimited([], 4, async () => { throw new Error('never') })
    await assert.rejects(forEachLimited([1], 0, async () => {}), RangeError)
  })

  it('limiter(n) holds a slot until fn settles; a waiter aborted while waiting never runs', async () => {
    const limit = limiter(1)
    const g = gate()
    const first = limit(async () => { await g.wait; return 'a' })
    const ac = new AbortController()
    let ran = false
    const second = limit(async () => { ran = true }, { signal: ac.signal })
    ac.abort(new Error('gave up'))
    await assert.rejects(second, /gave up/)
    const third = limit(async () => 'c')
    g.open()
    assert.equal(await first, 'a')
    assert.equal(await third, 'c')
    assert.equal(ran, false)
  })
})
