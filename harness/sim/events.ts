// The discrete-event core of the simulator (issue 14 item 7): virtual time in ms, no sockets, no
// timers. Events run in time order, and events at the same time in the order they were
// scheduled (a sequence number breaks ties), so a seeded run replays exactly.
//
// Links are modelled at the sender's uplink, where a community network's bottleneck is (ADSL:
// ~1 Mbit/s up, several down): an uplink sends one message after another (FIFO), each taking
// bytes / rate, and a message arrives one link latency after its last byte left. Downlinks are
// taken as wide enough. `scale` lets one simulated transfer stand for many real ones (the
// simulator samples chunks: one sampled fragment occupies the uplink as long as the fragments
// it stands for would).

/** A binary min-heap of events keyed by (time, sequence). */
export class EventQueue {
  private times: number[] = []
  private seqs: number[] = []
  private fns: Array<() => void> = []
  private seq = 0
  /** Virtual time of the event running now (ms). */
  now = 0
  /** Events run so far. */
  ran = 0

  get size (): number { return this.fns.length }

  /** Virtual time of the next event; undefined when none is left. */
  get next (): number | undefined { return this.fns.length > 0 ? this.times[0] : undefined }

  /** Run `fn` at virtual time `t` (never before now). */
  at (t: number, fn: () => void): void {
    if (!(t >= this.now)) t = this.now
    this.times.push(t); this.seqs.push(this.seq++); this.fns.push(fn)
    this.up(this.fns.length - 1)
  }

  /** Run `fn` `dt` ms from now. */
  after (dt: number, fn: () => void): void { this.at(this.now + Math.max(0, dt), fn) }

  /** Run events in order until none is left or the next is after `until`; now ends at `until` (or the last event). */
  run (until = Infinity): void {
    while (this.fns.length > 0 && this.times[0] <= until) {
      const t = this.times[0]
      const fn = this.fns[0]
      this.pop()
      this.now = t
      this.ran++
      fn()
    }
    if (Number.isFinite(until) && until > this.now) this.now = until
  }

  private less (a: number, b: number): boolean {
    return this.times[a] < this.times[b] || (this.times[a] === this.times[b] && this.seqs[a] < this.seqs[b])
  }

  private swap (a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b], this.times[a]];
    [this.seqs[a], this.seqs[b]] = [this.seqs[b], this.seqs[a]];
    [this.fns[a], this.fns[b]] = [this.fns[b], this.fns[a]]
  }

  private up (i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(i, p)) return
      this.swap(i, p)
      i = p
    }
  }

  private pop (): void {
    const last = this.fns.length - 1
    this.swap(0, last)
    this.times.pop(); this.seqs.pop(); this.fns.pop()
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let s = i
      if (l < this.fns.length && this.less(l, s)) s = l
      if (r < this.fns.length && this.less(r, s)) s = r
      if (s === i) return
      this.swap(i, s)
      i = s
    }
  }
}

/** Hosts' uplinks: rate in bytes per ms each, FIFO, and what each has sent. */
export class Uplinks {
  /** When each uplink is free again (virtual ms). */
  readonly busyUntil: Float64Array
  /** Bytes each host sent. */
  readonly sent: Float64Array
  private readonly bytesPerMs: Float64Array
  /** When each uplink is done with the urgent messages it sends ahead of its queue. */
  private readonly urgentUntil: Float64Array

  /** `bitsPerSecond[i]`: host i's uplink. */
  constructor (bitsPerSecond: ArrayLike<number>) {
    this.bytesPerMs = Float64Array.from(bitsPerSecond, b => b / 8 / 1000)
    this.busyUntil = new Float64Array(bitsPerSecond.length)
    this.sent = new Float64Array(bitsPerSecond.length)
    this.urgentUntil = new Float64Array(bitsPerSecond.length)
  }

  /**
   * Send `bytes` from host `from` at `now` (queued behind what its uplink is sending); returns
   * the arrival time at the other end, `latency` ms after the last byte left. `scale`: how many
   * such messages this one stands for (their bytes occupy the uplink, and count as sent).
   */
  send (from: number, bytes: number, now: number, latency: number, scale = 1, urgent = false): number {
    if (urgent) return this.sendAhead(from, bytes * scale, now, latency)
    const start = Math.max(now, this.busyUntil[from])
    const done = start + bytes * scale / this.bytesPerMs[from]
    this.busyUntil[from] = done
    this.sent[from] += bytes * scale
    return done + latency
  }

  /**
   * An urgent message (a chunk's repair at risk, harness/sim/churn.ts): it goes ahead of what the
   * uplink has queued (behind urgent ones only) and the queued messages leave that much later.
   * Real messages are a chunk's fragments, seconds each, so an urgent one waits for the one being
   * sent, not for the queue; a sampled transfer stands for thousands and would hold it for hours.
   * (What was queued already keeps the arrival time it was given: the delay it takes here shows
   * on what is queued after.)
   */
  private sendAhead (from: number, bytes: number, now: number, latency: number): number {
    const d = bytes / this.bytesPerMs[from]
    const done = Math.max(now, this.urgentUntil[from]) + d
    this.urgentUntil[from] = done
    this.busyUntil[from] = this.busyUntil[from] > now ? this.busyUntil[from] + d : Math.max(this.busyUntil[from], done)
    this.sent[from] += bytes
    return done + latency
  }

  /**
   * When a message `from` sends at `now` would start to leave (urgent: behind the urgent ones
   * only, as send() queues it).
   */
  startAt (from: number, now: number, urgent = false): number {
    return Math.max(now, urgent ? this.urgentUntil[from] : this.busyUntil[from])
  }

  /** Uplink rate of host i in bytes per ms. */
  rate (i: number): number { return this.bytesPerMs[i] }
}
