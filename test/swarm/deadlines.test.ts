// Deadlines (swarm/deadlines.ts): pullRange's hedge times on one timer, and onAbort()
// (swarm/abort.ts): many short operations listening to one long-lived signal.
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { Deadlines } from '../../swarm/deadlines.ts'
import { onAbort } from '../../swarm/abort.ts'

/** Resolves once `cond()` holds, checked each 5 ms; rejects after `ms`. */
async function until (what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/**
 * Runs `body` with this process's uncaughtException listeners replaced by one that pushes each
 * error onto `errors` (what mocha would take for a failure of the test); puts them back after.
 */
async function catchingUncaught (body: (errors: unknown[]) => Promise<void>): Promise<void> {
  const errors: unknown[] = []
  const listeners = process.listeners('uncaughtException')
  process.removeAllListeners('uncaughtException')
  const catcher = (err: unknown): void => { errors.push(err) }
  process.on('uncaughtException', catcher)
  try {
    await body(errors)
  } finally {
    process.off('uncaughtException', catcher)
    for (const l of listeners) process.on('uncaughtException', l)
  }
}

/** Ref'd timers keeping this process alive now. */
const liveTimers = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length

describe('swarm deadlines', () => {
  it('fires each deadline once, not before its time, in time order; a cancelled one never', async () => {
    const d = new Deadlines()
    const fired: Array<{ name: string, late: number }> = []
    const at = (name: string, ms: number): ReturnType<Deadlines['add']> => {
      const start = performance.now()
      return d.add(ms, () => { fired.push({ name, late: performance.now() - start - ms }) })
    }
    at('b', 60)
    const gone = at('x', 20)
    at('a', 30) // earlier than the one armed for: the timer is armed again
    at('c', 90)
    d.cancel(gone)
    assert.equal(d.size, 3)
    await until('three deadlines fired', () => fired.length === 3)
    assert.deepEqual(fired.map(f => f.name), ['a', 'b', 'c'])
    // Node's timers keep whole milliseconds: at most that early (SLACK_MS)
    for (const f of fired) assert.ok(f.late >= -1.5, `${f.name} fired ${-f.late} ms early`)
    assert.equal(d.size, 0)
  })

  it('a late firing that finds several due runs them in time order, not the order they were added (final CI: b before a under load)', async () => {
    const d = new Deadlines()
    const fired: string[] = []
    d.add(60, () => { fired.push('b') })
    d.add(30, () => { fired.push('a') })
    d.add(45, () => { fired.push('m') })
    // the event loop busy past every deadline (as a loaded machine made it): one firing finds all due
    const end = performance.now() + 80
    while (performance.now() < end) { /* busy */ }
    await until('three deadlines fired', () => fired.length === 3)
    assert.deepEqual(fired, ['a', 'm', 'b'])
  })

  it('a deadline added after an earlier one was cancelled still fires (the timer fires early, finds nothing due, arms again)', async () => {
    const d = new Deadlines()
    const first = d.add(20, () => { assert.fail('cancelled') })
    d.cancel(first)
    let fired = 0
    const start = performance.now()
    d.add(60, () => { fired++ })
    await until('the later deadline fired', () => fired === 1)
    assert.ok(performance.now() - start >= 59, 'not before its time')
    // nothing fires twice
    await new Promise(resolve => setTimeout(resolve, 80))
    assert.equal(fired, 1)
  })

  it('keeps the process alive only while a deadline is pending', () => {
    const d = new Deadlines()
    const before = liveTimers()
    const x = d.add(60_000, () => { assert.fail('cancelled') })
    assert.equal(liveTimers(), before + 1)
    const y = d.add(120_000, () => { assert.fail('cancelled') })
    d.cancel(x)
    assert.equal(liveTimers(), before + 1, 'one still pending')
    d.cancel(y)
    assert.equal(liveTimers(), before, 'none pending: the timer is unref\'d')
    const z = d.add(90_000, () => { assert.fail('cancelled') })
    assert.equal(liveTimers(), before + 1, 'ref\'d again')
    d.cancel(z)
    assert.equal(liveTimers(), before)
  })

  it('one deadline that throws does not keep the others due with it from running', async () => {
    const d = new Deadlines()
    await catchingUncaught(async (errors) => {
      let ran = false
      d.add(10, () => { throw new Error('boom') })
      d.add(10, () => { ran = true })
      await until('both ran', () => ran && errors.length === 1)
      assert.match((errors[0] as Error).message, /boom/)
    })
  })
  it('a deadline cancelled by another due in the same firing does not run (as after a clearTimeout)', async () => {
    const d = new Deadlines()
    let ranB = false
    let last = false
    let b: ReturnType<Deadlines['add']> | undefined
    d.add(10, () => { if (b !== undefined) d.cancel(b) })
    b = d.add(10, () => { ranB = true })
    d.add(10, () => { last = true })
    await until('the last of the three ran', () => last)
    assert.equal(ranB, false, 'a cancel()led deadline ran')
    assert.equal(d.size, 0)
  })

  it("a deadline past setTimeout's longest (2^31 - 1 ms, a wait scaled by a peer's stated uplink) arms the timer for the longest, not 1 ms over and over", async () => {
    const d = new Deadlines()
    let overflows = 0
    const heard = (w: Error): void => { if (w.name === 'TimeoutOverflowWarning') overflows++ }
    process.on('warning', heard)
    try {
      const far = d.add(3e9, () => { assert.fail('a deadline 35 days away fired') })
      // a near deadline fires and the timer is armed again for the far one
      let near = false
      d.add(5, () => { near = true })
      await until('the near deadline ran', () => near)
      let window = false
      d.add(40, () => { window = true })
      await until('a later deadline ran', () => window)
      assert.equal(overflows, 0, `${overflows} TimeoutOverflowWarnings: the timer was armed past 2^31 - 1 ms`)
      assert.equal(d.size, 1)
      d.cancel(far)
      assert.equal(d.size, 0)
    } finally {
      process.off('warning', heard)
    }
  })
})

describe('swarm onAbort', () => {
  it('calls every callback still registered with the reason, once, through one listener', () => {
    const c = new AbortController()
    const heard: unknown[] = []
    const offs = Array.from({ length: 100 }, (_, i) => onAbort(c.signal, reason => { heard.push([i, reason]) }))
    assert.equal(getEventListeners(c.signal, 'abort').length, 1)
    for (let i = 0; i < 100; i += 2) offs[i]()
    offs[1]()
    offs[1]() // a second removal is harmless
    const reason = new Error('stop')
    c.abort(reason)
    assert.equal(heard.length, 49)
    for (const [i, r] of heard as Array<[number, unknown]>) { assert.equal(i % 2, 1); assert.notEqual(i, 1); assert.equal(r, reason) }
  })

  it('one callback that throws does not keep the others from being called', async () => {
    const c = new AbortController()
    await catchingUncaught(async (errors) => {
      let second = false
      onAbort(c.signal, () => { throw new Error('boom') })
      onAbort(c.signal, () => { second = true })
      c.abort()
      assert.equal(second, true, 'the second callback was not called')
      await until('the throw reported', () => errors.length === 1)
      assert.match((errors[0] as Error).message, /boom/)
    })
  })
})
