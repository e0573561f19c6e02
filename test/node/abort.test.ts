// node/abort.ts boundedSignal(): a bound whose timer the caller stops when its work is over (a
// range fetch per 4 KiB read, keeper/network.ts fetchRange): a stopped bound never fires, so
// no TimeoutError is made and nothing aborts long after the work; one not stopped aborts with a
// TimeoutError, as AbortSignal.timeout does. Node's mock timers stand in for the clock.
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { mock } from 'node:test'
import { boundedSignal, settledWithin } from '../../node/abort.ts'

describe('boundedSignal', function () {
  beforeEach(() => { mock.timers.enable({ apis: ['setTimeout'] }) })
  afterEach(() => { mock.timers.reset() })

  it('aborts with a TimeoutError once its time is up, when not cleared', () => {
    const { signal } = boundedSignal([], 1000)
    mock.timers.tick(999)
    assert.equal(signal.aborted, false)
    mock.timers.tick(1)
    assert.equal(signal.aborted, true)
    assert.equal((signal.reason as DOMException).name, 'TimeoutError')
  })

  it('never aborts once cleared (the work it bounded is over)', () => {
    const { signal, clear } = boundedSignal([], 1000)
    let aborts = 0
    signal.addEventListener('abort', () => { aborts++ })
    clear()
    mock.timers.tick(10_000)
    assert.equal(signal.aborted, false)
    assert.equal(aborts, 0)
  })

  it('follows the caller\'s signal', () => {
    const caller = new AbortController()
    const { signal, clear } = boundedSignal([caller.signal, undefined], 1000)
    caller.abort(new Error('the reader gave up'))
    assert.equal(signal.aborted, true)
    assert.equal((signal.reason as Error).message, 'the reader gave up')
    clear()
  })

  it('leaves nothing on the caller\'s signal once cleared, and a signal aborted before is followed at once', () => {
    // a long-lived caller signal (a mount's) sees one fetch per 4 KiB read: each must take its
    // listener away when over, or they pile up on it
    const caller = new AbortController()
    for (let i = 0; i < 100; i++) boundedSignal([caller.signal], 1000).clear()
    assert.equal(getEventListeners(caller.signal, 'abort').length, 0)
    const gone = new AbortController()
    gone.abort(new Error('over already'))
    const { signal } = boundedSignal([gone.signal], 1000)
    assert.equal(signal.aborted, true)
    assert.equal((signal.reason as Error).message, 'over already')
  })
})

describe('settledWithin', function () {
  /** Whether `p` settled within a few turns of the event loop, and how. */
  const state = async (p: Promise<unknown>): Promise<string> => {
    let s = 'pending'
    p.then(() => { s = 'resolved' }, (err: Error) => { s = `rejected: ${err.message}` })
    for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve))
    return s
  }

  beforeEach(() => { mock.timers.enable({ apis: ['setTimeout'] }) })
  afterEach(() => { mock.timers.reset() })

  it('is over when the promise is, and its timer is cleared then', async () => {
    // the timers settledWithin sets and clears, seen through the (mocked) globals
    const set: unknown[] = []
    const cleared: unknown[] = []
    const realSet = globalThis.setTimeout
    const realClear = globalThis.clearTimeout
    mock.method(globalThis, 'setTimeout', (fn: () => void, ms: number) => { const t = realSet(fn, ms); set.push(t); return t })
    mock.method(globalThis, 'clearTimeout', (t: ReturnType<typeof setTimeout>) => { cleared.push(t); realClear(t) })
    try {
      let done!: () => void
      const wait = settledWithin(new Promise<void>(resolve => { done = resolve }), 1000)
      assert.equal(await state(wait), 'pending')
      assert.equal(set.length, 1, 'the bound\'s timer set')
      assert.equal(cleared.length, 0)
      done()
      assert.equal(await state(wait), 'resolved')
      assert.deepEqual(cleared, set, 'the bound\'s timer cleared')
    } finally {
      mock.restoreAll()
    }
  })

  it('is over at the bound, with nothing thrown, while the promise is not', async () => {
    const wait = settledWithin(new Promise<void>(() => {}), 1000)
    mock.timers.tick(999)
    assert.equal(await state(wait), 'pending')
    mock.timers.tick(1)
    assert.equal(await state(wait), 'resolved')
  })

  it('throws the promise\'s rejection, and the signal\'s reason when it aborts first', async () => {
    assert.equal(await state(settledWithin(Promise.reject(new Error('a failed placement')), 1000)), 'rejected: a failed placement')
    const ac = new AbortController()
    const wait = settledWithin(new Promise<void>(() => {}), Infinity, ac.signal)
    assert.equal(await state(wait), 'pending')
    ac.abort(new Error('the caller went away'))
    assert.equal(await state(wait), 'rejected: the caller went away')
  })
})
