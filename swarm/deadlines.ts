// Many one-shot deadlines on one timer: pullRange's hedge times (one per request of a 4 KiB read).
// A setTimeout per request and its clearTimeout when the answer comes (nearly always first) cost
// more than the rest of the request's bookkeeping: at one request in flight, each made Node's
// timer list for its duration and took it down again (a priority-queue insert and removal).
// Here a deadline is a Set entry, cancelled by deleting it; the one timer is armed for the
// earliest deadline known when it was armed, and when it fires it runs what is due and arms for
// the next. A deadline added after an earlier one was cancelled leaves the timer as it is: it
// fires early, finds nothing due, and arms again (at most once per deadline length).
// The timer keeps the process alive only while a deadline is pending, as a timer of its own did.

/** A pending deadline (add()'s handle, for cancel()). */
export interface Deadline { readonly at: number, readonly fn: () => void }

/** A deadline counts as due this much before its time: Node's timers keep whole milliseconds. */
const SLACK_MS = 1

/**
 * The longest a timer is armed for: Node's setTimeout takes at most 2^31 - 1 ms (~24.8 days) and
 * fires after 1 ms past that, so a longer deadline (a wait scaled by a peer's stated uplink) would
 * wake the timer every millisecond; armed for this instead, it fires, finds nothing due, arms again.
 */
const MAX_TIMER_MS = 2 ** 31 - 1

export class Deadlines {
  private readonly pending = new Set<Deadline>()
  private timer: ReturnType<typeof setTimeout> | undefined
  /** When (performance.now()) the timer fires; Infinity when none is armed. */
  private armedAt = Infinity
  /** The due deadlines fire() is running (out of `pending` already), and those cancelled meanwhile. */
  private firing: Deadline[] | undefined
  private readonly cancelled = new Set<Deadline>()

  /** Call `fn` once after `ms`, unless cancel()led first (`ms` not a number: never; below 0: at once). */
  add (ms: number, fn: () => void): Deadline {
    if (Number.isNaN(ms)) ms = Infinity
    const now = performance.now()
    const d: Deadline = { at: now + ms, fn }
    this.pending.add(d)
    if (d.at < this.armedAt) this.arm(now, d.at)
    else if (this.pending.size === 1) this.timer?.ref()
    return d
  }

  /** The deadline will not fire (nothing when it fired already). */
  cancel (d: Deadline): void {
    if (this.pending.delete(d)) {
      if (this.pending.size === 0) this.timer?.unref()
    } else if (this.firing?.includes(d) === true) {
      this.cancelled.add(d)
    }
  }

  /** Deadlines pending (for tests). */
  get size (): number { return this.pending.size }

  private arm (now: number, at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.armedAt = at
    this.timer = setTimeout(() => { this.fire() }, Math.min(MAX_TIMER_MS, Math.max(0, at - now)))
  }

  private fire (): void {
    this.timer = undefined
    this.armedAt = Infinity
    const now = performance.now()
    const due: Deadline[] = []
    let next = Infinity
    for (const d of this.pending) {
      if (d.at <= now + SLACK_MS) due.push(d)
      else if (d.at < next) next = d.at
    }
    for (const d of due) this.pending.delete(d)
    // in time order, as timers of their own would run (a late firing finds several due: a set keeps
    // insertion order, and a deadline added later may be due earlier)
    if (due.length > 1) due.sort((x, y) => x.at - y.at)
    if (next < Infinity) this.arm(now, next)
    this.firing = due
    // one deadline's throw (an uncaught exception, as from a timer of its own) spares the others;
    // one cancelled by another due in the same firing does not run (as a clearTimeout would)
    for (const d of due) {
      if (this.cancelled.delete(d)) continue
      try {
        d.fn()
      } catch (err) {
        queueMicrotask(() => { throw err })
      }
    }
    this.firing = undefined
    this.cancelled.clear()
  }
}
