// Cancellation, from the edges down (DESIGN.md §1, STYLE.md "Parts"). Every async call takes
// `AbortOptions` (from @libp2p/interface) as its last argument and passes its signal on. Where
// a call adds bounds of its own, it merges them with the caller's signal through anySignal(),
// the one place signals are combined:
//
//   const signal = anySignal([opts.signal, this.shutdown.signal], FETCH_TIMEOUT_MS)
//
// - caller signal(s): the FUSE request's deadline, the control-socket request (aborted when its
//   client goes away), a keeper pass; `undefined` entries are skipped;
// - a shutdown signal: the part's own, aborted by its stop();
// - a timeout in ms: AbortSignal.timeout(ms), which aborts with a `TimeoutError`.
// A lone signal is returned as it is (no wrapper, no listener on a long-lived signal).
//
// raceSignal() is the other half: wait for work that this caller does not own (a fetch shared by
// several readers) and stop waiting, not the work, when the caller's signal aborts.
// swarm/abort.ts holds anySignal's twin for the swarm (which imports nothing of node/), and the
// event loop's own clock (loopTimeSignal, loopTimeDeadline) for both: node/net takes it through
// the swarm's door.

/** One signal that aborts when any of `signals` does, or after `timeoutMs` (when given). */
export function anySignal (signals: Array<AbortSignal | undefined>, timeoutMs?: number): AbortSignal {
  const all = signals.filter((s): s is AbortSignal => s !== undefined)
  if (timeoutMs !== undefined) all.push(AbortSignal.timeout(timeoutMs))
  if (all.length === 0) return new AbortController().signal
  if (all.length === 1) return all[0]
  return AbortSignal.any(all)
}

/**
 * anySignal(signals, timeoutMs) whose timer `clear()` stops: for a call made many times a
 * second (a 4 KiB read's range fetch) whose bound is long. AbortSignal.timeout's timer cannot be
 * stopped: each one fired FETCH_TIMEOUT_MS after its read was over, making a TimeoutError (a
 * DOMException with its stack) and aborting the signals made from it, once per read (issue 15).
 */
export function boundedSignal (signals: Array<AbortSignal | undefined>, timeoutMs: number): { signal: AbortSignal, clear: () => void } {
  const bound = new AbortController()
  // linked by listeners that clear() removes, not AbortSignal.any: a composite signal per read
  // (its registration with each source, its weak refs) was ~3% of a 4 KiB read's CPU (issue 15)
  const sources = signals.filter((s): s is AbortSignal => s !== undefined)
  const gone = sources.find(s => s.aborted)
  if (gone !== undefined) {
    bound.abort(gone.reason)
    return { signal: bound.signal, clear: () => {} }
  }
  const clear = (): void => {
    clearTimeout(timer)
    for (const s of sources) s.removeEventListener('abort', follow)
  }
  function follow (this: AbortSignal): void { clear(); bound.abort(this.reason) }
  const timer = setTimeout(() => { clear(); bound.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')) }, timeoutMs)
  timer.unref?.()
  for (const s of sources) s.addEventListener('abort', follow, { once: true })
  return { signal: bound.signal, clear }
}

/** `promise`, or its signal's reason as soon as `signal` aborts (the work itself goes on). */
export async function raceSignal<T> (promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return await promise
  signal.throwIfAborted()
  let onAbort!: () => void
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Wait for `promise` to settle, at most `ms` (Infinity: no bound), and no longer than `signal`
 * lasts: over at the bound (nothing thrown), with the promise's rejection, or with the signal's
 * reason; the bound's timer is cleared as soon as the wait is over. An fsync waiting for
 * placements (volume.ts), a deferred chunk's store waiting for its placement and a write's
 * backpressure waiting for room (data/blocks.ts).
 */
export async function settledWithin (promise: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const bound = ms === Infinity ? [] : [new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })]
  try {
    await raceSignal(Promise.race([promise, ...bound]), signal)
  } finally {
    clearTimeout(timer)
  }
}
