// fuse/append-order.ts: pieces of an O_APPEND write(2) reaching JS out of order are laid in the
// kernel's order; a gap that no piece fills holds a piece only its bound.
import assert from 'node:assert/strict'
import { AppendOrder } from '../../fuse/append-order.ts'

/** Runs one piece through `order`, noting when it is laid. */
function piece (order: AppendOrder, laid: string[], name: string, off: number, size: number, signal?: AbortSignal): Promise<string> {
  return order.run(1, off, size, async () => { laid.push(name); return name }, signal)
}

describe('fuse: AppendOrder', () => {
  it('a tail reaching it before its head waits for the head; pieces without a gap go at once', async () => {
    const order = new AppendOrder({ holdMs: 60_000 })
    order.opened(1)
    order.sized(1, 5)
    const laid: string[] = []
    const tail = piece(order, laid, 'tail', 105, 10)
    const middle = piece(order, laid, 'middle', 55, 50)
    await Promise.resolve()
    assert.deepEqual(laid, [])
    await piece(order, laid, 'head', 5, 50)
    await Promise.all([tail, middle])
    assert.deepEqual(laid, ['head', 'middle', 'tail'])
    await piece(order, laid, 'next', 115, 1)
    assert.deepEqual(laid, ['head', 'middle', 'tail', 'next'])
  })

  it('a gap nothing fills (the kernel\'s size came from elsewhere) holds a piece its bound only', async () => {
    // the hold's timer is the test's: the piece is held until it fires, then goes
    const timers: Array<{ fire: () => void, ms: number, cancelled: boolean }> = []
    const order = new AppendOrder({
      holdMs: 20,
      timer: (fire, ms) => {
        const t = { fire, ms, cancelled: false }
        timers.push(t)
        return () => { t.cancelled = true }
      }
    })
    order.opened(1)
    order.sized(1, 5)
    const laid: string[] = []
    const past = piece(order, laid, 'past', 50, 10)
    await Promise.resolve()
    await Promise.resolve()
    assert.deepEqual(laid, [])
    assert.equal(timers.length, 1)
    assert.equal(timers[0].ms, 20)
    timers[0].fire()
    assert.equal(await past, 'past')
    assert.deepEqual(laid, ['past'])
    // a piece woken by the one before it cancels its timer
    const tail = piece(order, laid, 'tail', 70, 1)
    await Promise.resolve()
    assert.equal(timers.length, 2)
    await piece(order, laid, 'head', 60, 10)
    await tail
    assert.deepEqual(laid, ['past', 'head', 'tail'])
    assert.equal(timers[1].cancelled, true)
  })

  it('an abort ends the hold (the write then meets the abort itself)', async () => {
    const order = new AppendOrder({ holdMs: 60_000 })
    order.opened(1)
    order.sized(1, 0)
    const laid: string[] = []
    const ac = new AbortController()
    const held = piece(order, laid, 'past', 50, 10, ac.signal)
    await Promise.resolve()
    assert.deepEqual(laid, [])
    ac.abort()
    await held
    assert.deepEqual(laid, ['past'])
  })

  it('a truncate moves the end back: the next write\'s tail waits for its head', async () => {
    const order = new AppendOrder({ holdMs: 60_000 })
    order.opened(1)
    order.sized(1, 0)
    const laid: string[] = []
    await piece(order, laid, 'a', 0, 100)
    order.truncated(1, 10)
    const tail = piece(order, laid, 'tail', 60, 10)
    await Promise.resolve()
    await piece(order, laid, 'head', 10, 50)
    await tail
    assert.deepEqual(laid, ['a', 'head', 'tail'])
  })

  it('a getattr\'s size never moves the end back (its stat may have finished before an append laid since)', async () => {
    const order = new AppendOrder({ holdMs: 60_000 })
    order.opened(1)
    order.sized(1, 0)
    const laid: string[] = []
    await piece(order, laid, 'a', 0, 100)
    order.sized(1, 50)
    const tail = piece(order, laid, 'tail', 160, 10)
    await Promise.resolve()
    assert.deepEqual(laid, ['a'])
    await piece(order, laid, 'head', 100, 60)
    await tail
    assert.deepEqual(laid, ['a', 'head', 'tail'])
  })

  it('a size told the kernel while no handle is open is where the next open\'s appends start', async () => {
    const order = new AppendOrder({ holdMs: 60_000 })
    order.sized(1, 7)
    order.opened(1)
    const laid: string[] = []
    const tail = piece(order, laid, 'tail', 17, 3)
    await Promise.resolve()
    assert.deepEqual(laid, [])
    await piece(order, laid, 'head', 7, 10)
    await tail
    assert.deepEqual(laid, ['head', 'tail'])
    order.closed(1)
    order.opened(1)
    await piece(order, laid, 'after', 20, 1)
    assert.deepEqual(laid, ['head', 'tail', 'after'])
  })
})
