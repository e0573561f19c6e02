// node/abort.ts boundedSignal(): a bound whose timer the caller stops when its work is over (a
// range fetch per 4 KiB read, keeper/network.ts fetchRange): a stopped bound never fires, so
// no TimeoutError is made and nothing aborts long after the work; one not stopped aborts with a
// TimeoutError, as AbortSignal.timeout does. Node's mock timers stand in for the clock.
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { mock } from 'node:test'
import { boundedSignal } from '../../node/abort.ts'

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
