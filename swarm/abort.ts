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
