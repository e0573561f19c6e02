// Cancellation in the swarm: anySignal() of node/abort.ts (the swarm imports nothing
// of node/, so it keeps its own copy; keep the two alike). Every swarm call takes
// `AbortOptions`; where it adds its own bound (a hop timeout, the swarm's shutdown), it merges
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

/**
 * A deadline of `ms` of the event loop's own time (node/abort.ts loopTimeSignal, copied: keep
 * the two alike): time the loop spent blocked is not counted, so a lagging process does not
 * give up a peer whose answer sits unread in its socket. Counted in LOOP_STEPS ticks, each
 * credited its nominal length however late it fired; aborts with a TimeoutError after `ms` so
 * counted, or after `maxMs` of wall time whatever the lag. `clear()` once the work is done.
 */
export function loopTimeSignal (ms: number, maxMs = LOOP_TIME_MAX_FACTOR * ms): { signal: AbortSignal, clear: () => void } {
  const controller = new AbortController()
  const step = ms / LOOP_STEPS
  const start = performance.now()
  let counted = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const tick = (): void => {
    const now = performance.now()
    counted += step
    if (counted >= ms - 0.5 || now - start >= maxMs) {
      timer = undefined
      controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
      return
    }
    timer = setTimeout(tick, Math.min(step, Math.max(0, start + maxMs - now)))
    timer.unref?.()
  }
  timer = setTimeout(tick, step)
  timer.unref?.()
  return {
    signal: controller.signal,
    clear: () => { if (timer !== undefined) clearTimeout(timer); timer = undefined }
  }
}

/** loopTimeSignal's ticks per deadline. */
export const LOOP_STEPS = 8
/** loopTimeSignal's wall-time cap, as a multiple of its deadline. */
export const LOOP_TIME_MAX_FACTOR = 5
