// Deadlines on progress rather than on the whole job: a transfer over a thin uplink may take
// minutes and still be healthy, as long as something moves. An idle deadline aborts only when
// nothing has happened for a while (forward.ts: relayed placements).
import { anySignal } from '../abort.ts'

/** No progress for the allowed time. */
export class StalledError extends Error {
  override readonly name = 'StalledError'
}

export interface IdleDeadline {
  /** Aborts when `parent` does, or `ms` after the last touch() (or creation). */
  readonly signal: AbortSignal
  /** Progress: the idle time starts again. */
  touch: () => void
  /** Stop the timer (the job is over); the signal stays as it is. */
  clear: () => void
}

export function idleDeadline (ms: number, what: string, parent?: AbortSignal): IdleDeadline {
  const own = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  let cleared = false
  const fire = (): void => { own.abort(new StalledError(`${what}: no progress for ${ms} ms`)) }
  const touch = (): void => {
    if (cleared || own.signal.aborted) return
    clearTimeout(timer)
    timer = setTimeout(fire, ms)
  }
  touch()
  return {
    signal: anySignal([parent, own.signal]),
    touch,
    clear: () => { cleared = true; clearTimeout(timer) }
  }
}
