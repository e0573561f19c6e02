// Cancellation in the swarm: anySignal() of node/abort.ts (the swarm imports nothing of node/,
// so it keeps its own copy; keep the two alike), and the event loop's own clock (loopTimeSignal,
// loopTimeDeadline), whose one copy is here: node/net takes it through the swarm's door.
// Every swarm call takes `AbortOptions`; where it adds its own bound (a hop timeout, the swarm's shutdown), it merges
// them with anySignal(): `anySignal([opts?.signal, this.shutdown.signal], HAVE_TIMEOUT_MS)`.
// A lone signal is returned as it is; a timeout aborts with a `TimeoutError`.

/** One signal that aborts when any of `signals` does, or after `timeoutMs` (when given). */
export function anySignal (signals: Array<AbortSignal | undefined>, timeoutMs?: number): AbortSignal {
  const all = signals.filter((s): s is AbortSignal => s !== undefined)
  if (timeoutMs !== undefined) all.push(AbortSignal.timeout(timeoutMs))
  if (all.length === 0) return new AbortController().signal
  if (all.length === 1) return all[0]
  return AbortSignal.any(all)
}

/** Callbacks of onAbort() per signal, behind that signal's one listener. */
const onAborts = new WeakMap<AbortSignal, Set<(reason: unknown) => void>>()

/**
 * Call `fn` with the reason once `signal` aborts, unless the returned function was called first.
 * For a long-lived signal many short operations listen to (the swarm's shutdown, each pullRange
 * of a read): the signal gets one listener, and each operation a Set entry, not an
 * addEventListener and removeEventListener of its own (Node's EventTarget: a few µs per pair).
 * A signal aborted already never calls `fn`: check it first (throwIfAborted).
 */
export function onAbort (signal: AbortSignal, fn: (reason: unknown) => void): () => void {
  let fns = onAborts.get(signal)
  if (fns === undefined) {
    const all = new Set<(reason: unknown) => void>()
    fns = all
    onAborts.set(signal, all)
    signal.addEventListener('abort', () => {
      const now = [...all]
      all.clear()
      // one callback's throw (reported as an uncaught exception, as a listener's would be) spares the others
      for (const f of now) {
        try {
          f(signal.reason)
        } catch (err) {
          queueMicrotask(() => { throw err })
        }
      }
    }, { once: true })
  }
  const mine = fns
  mine.add(fn)
  return () => { mine.delete(fn) }
}

/**
 * A deadline of `ms` of the event loop's own time, for a handshake whose peer answers within
 * milliseconds when this process gets to run: the time the loop spent blocked (a timer that
 * fired late) is not counted. A busy process (many hosts in one, a daemon beside a compile)
 * lags seconds at times; a plain AbortSignal.timeout then ran out while the answer sat unread
 * in the socket, and every connection made meanwhile failed (bench:scale at 50 hosts: a 1 s
 * median lag, ~1,900 failed nonce exchanges per 30 s). It counts in LOOP_STEPS ticks, each
 * credited its nominal length however late it fired, and aborts with a TimeoutError after `ms`
 * so counted, or after `maxMs` of wall time whatever the lag (a silent peer is still refused).
 * `clear()` stops its timer once the work is done.
 */
export function loopTimeSignal (ms: number, maxMs = LOOP_TIME_MAX_FACTOR * ms): { signal: AbortSignal, clear: () => void } {
  const controller = new AbortController()
  const deadline = loopTimeDeadline(ms, () => { controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')) }, { maxMs })
  return { signal: controller.signal, clear: deadline.clear }
}

/**
 * loopTimeSignal's clock as a deadline that `touch()` starts again: `expire` is called once `ms`
 * of the event loop's own time has passed since the last touch (or the start), or `maxMs` of
 * wall time whatever the lag. For a silence that a message ends (node/net/rpc.ts: a caller gives up on a
 * peer that sent nothing for the protocol's timeout; the swarm's have-queries and pushes): a
 * process whose loop lags (50 hosts in a few processes, a daemon beside a compile) does not
 * declare a peer silent for time it spent not reading. A touch costs no timer: the ticks go on,
 * and the one under way when it came is credited only the part of its step after it.
 * `unref`: the timer does not keep the process alive (default true).
 */
export function loopTimeDeadline (ms: number, expire: () => void, opts: { maxMs?: number, unref?: boolean } = {}): { touch: () => void, clear: () => void } {
  const maxMs = opts.maxMs ?? LOOP_TIME_MAX_FACTOR * ms
  const step = ms / LOOP_STEPS
  let start = performance.now()
  let armedAt = start
  let counted = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const arm = (delay: number): void => {
    armedAt = performance.now()
    timer = setTimeout(tick, delay)
    if (opts.unref !== false) timer.unref?.()
  }
  const tick = (): void => {
    const now = performance.now()
    // a step begun before the last touch counts only from it (on its nominal clock)
    counted += start > armedAt ? Math.max(0, armedAt + step - start) : step
    if (counted >= ms - 0.5 || now - start >= maxMs) {
      timer = undefined
      expire()
      return
    }
    arm(Math.min(step, Math.max(0, start + maxMs - now)))
  }
  arm(step)
  return {
    touch: () => { if (timer !== undefined) { start = performance.now(); counted = 0 } },
    clear: () => { if (timer !== undefined) clearTimeout(timer); timer = undefined }
  }
}

/** loopTimeSignal's ticks per deadline. */
export const LOOP_STEPS = 8
/** loopTimeSignal's wall-time cap, as a multiple of its deadline. */
export const LOOP_TIME_MAX_FACTOR = 5
