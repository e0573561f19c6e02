// Free space of the disk under the block store (issue 8, faults): a host knows when it is full.
// Full when the free bytes drop below a reserve (kept for the metadata log and for deletes to
// work), or when a put failed with ENOSPC; not full again only once the free bytes are back
// above the reserve plus a margin, so a host on the edge does not flap between the two. Space is
// measured with fs.promises.statfs (never a blocking call: this runs in the process serving a
// FUSE mount) on a timer, soon after a put brings the estimated free space under the reserve,
// and soon after deletes (GC, handovers) free some.
//
// While full, the store refuses new blocks (FsError ENOSPC: `darkfs put` and FUSE writes fail
// with one clear error, a push to this host is not acknowledged); blocks already stored stay and
// are served. The peers hear of it through space-notice.ts and leave this host out of placement.
import { statfs } from 'node:fs/promises'
import { FsError } from '../errors.ts'
import { logger } from '../log.ts'

const log = logger('data:space')

/** Least space kept free under the store: 64 MiB. */
export const RESERVE_MIN_BYTES = 64 * 1024 * 1024
/** Share of the filesystem kept free when that is more than RESERVE_MIN_BYTES: 1%. */
export const RESERVE_FRACTION = 0.01
/** Most of the filesystem the reserve takes (small disks, e.g. a 48 MiB tmpfs): 10%. */
export const RESERVE_MAX_FRACTION = 0.1
/** Free space above the reserve needed to stop being full, as a share of the reserve: 50%. */
export const MARGIN_OF_RESERVE = 0.5
/** Files (inodes) kept free, on filesystems that count them. */
export const RESERVE_FILES = 1024
/** Time between two measurements when nothing happens: 10 s. */
export const SPACE_CHECK_INTERVAL_MS = 10_000
/** Wait after a delete before measuring again (deletes come in bursts): 200 ms. */
export const FREED_CHECK_DELAY_MS = 200

export interface SpaceInit {
  /** Bytes kept free (default: 1% of the filesystem, at least 64 MiB, at most 10% of it). */
  reserveBytes?: number
  /** Free bytes above the reserve needed to stop being full (default: half the reserve). */
  marginBytes?: number
  /** Time between measurements (default SPACE_CHECK_INTERVAL_MS). */
  intervalMs?: number
}

export interface SpaceState {
  full: boolean
  /** Free bytes available to this process at the last measurement. */
  free: number
  /** Size of the filesystem. */
  capacity: number
  reserve: number
  margin: number
}

/** The reserve and margin for a filesystem of `capacity` bytes, unless given. */
export function bounds (capacity: number, init: Pick<SpaceInit, 'reserveBytes' | 'marginBytes'> = {}): { reserve: number, margin: number } {
  const reserve = init.reserveBytes ?? Math.min(Math.max(RESERVE_MIN_BYTES, Math.ceil(capacity * RESERVE_FRACTION)), Math.ceil(capacity * RESERVE_MAX_FRACTION))
  const margin = init.marginBytes ?? Math.ceil(reserve * MARGIN_OF_RESERVE)
  return { reserve, margin }
}

/**
 * Whether a disk is full after a measurement, given whether it was: full below the reserve,
 * room again only above reserve + margin (hysteresis).
 */
export function fullAfter (wasFull: boolean, free: number, reserve: number, margin: number): boolean {
  return wasFull ? free < reserve + margin : free < reserve
}

export interface SpaceEvents {
  /** The host became full (detail true) or has room again (detail false). */
  change: CustomEvent<boolean>
  /** A measurement was taken (detail: the state after it). */
  measure: CustomEvent<SpaceState>
}

/** The bytes new blocks may still take on a disk in `state`: none while full, else the free bytes above the reserve. */
export function availableBytes (state: Pick<SpaceState, 'full' | 'free' | 'reserve'>): number {
  return state.full || !Number.isFinite(state.free) ? 0 : Math.max(0, state.free - state.reserve)
}

/**
 * Watches the free space of `dir`. It is the store's gate (store.ts `space`): admit() throws
 * FsError ENOSPC while full; noSpace() and freed() are the store telling it what happened.
 */
export class Space extends EventTarget {
  readonly dir: string
  private readonly init: SpaceInit
  private readonly intervalMs: number
  private state: SpaceState = { full: false, free: Number.POSITIVE_INFINITY, capacity: 0, reserve: 0, margin: 0 }
  /** Bytes admitted since the last measurement (the estimate of what they took). */
  private written = 0
  private timer?: ReturnType<typeof setInterval>
  private soon?: ReturnType<typeof setTimeout>
  private checking?: Promise<SpaceState>
  private started = false

  constructor (dir: string, init: SpaceInit = {}) {
    super()
    this.dir = dir
    this.init = init
    this.intervalMs = init.intervalMs ?? SPACE_CHECK_INTERVAL_MS
    for (const [k, v] of Object.entries({ reserveBytes: init.reserveBytes, marginBytes: init.marginBytes })) {
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new RangeError(`${k} must be a number >= 0, got ${v}`)
    }
    if (!(this.intervalMs > 0)) throw new RangeError(`the space check interval must be > 0 ms, got ${this.intervalMs}`)
  }

  /** Measure once, then on a timer. Idempotent. */
  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.check()
    this.timer = setInterval(() => { void this.check().catch(err => { this.failed(err) }) }, this.intervalMs)
    this.timer.unref?.()
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    clearInterval(this.timer)
    clearTimeout(this.soon)
    this.timer = undefined
    this.soon = undefined
  }

  isFull (): boolean {
    return this.state.full
  }

  snapshot (): SpaceState {
    return { ...this.state }
  }

  /** Measure now (one measurement at a time: callers during one share it). */
  async check (): Promise<SpaceState> {
    this.checking ??= this.measure().finally(() => { this.checking = undefined })
    return await this.checking
  }

  private async measure (): Promise<SpaceState> {
    const written = this.written
    const fs = await statfs(this.dir)
    const free = fs.bavail * fs.bsize
    const capacity = fs.blocks * fs.bsize
    const { reserve, margin } = bounds(capacity, this.init)
    const outOfFiles = fs.files > 0 && fs.ffree < RESERVE_FILES
    this.written = Math.max(0, this.written - written)
    this.set(fullAfter(this.state.full, free, reserve, margin) || outOfFiles, { free, capacity, reserve, margin })
    this.dispatchEvent(new CustomEvent('measure', { detail: this.snapshot() }))
    return this.snapshot()
  }

  private set (full: boolean, measured?: Omit<SpaceState, 'full'>): void {
    const was = this.state.full
    this.state = { ...this.state, ...measured, full }
    if (full !== was) log('%s is %s (%d bytes free, reserve %d)', this.dir, full ? 'full' : 'no longer full', this.state.free, this.state.reserve)
    if (full !== was) this.dispatchEvent(new CustomEvent('change', { detail: full }))
  }

  /** A block of `bytes` is about to be stored: throws FsError ENOSPC while the host is full. */
  admit (bytes: number): void {
    if (this.state.full) {
      // a full host measures again on its timer and after deletes, not on every refused put
      throw new FsError('ENOSPC', 'put', this.dir, `this host is full: under ${mib(this.state.reserve)} free`)
    }
    this.written += bytes
    // measure again once the estimate says the reserve is reached (the timer may be far)
    if (this.state.free - this.written < this.state.reserve) this.checkSoon(0)
  }

  /** A put failed with ENOSPC: full now, whatever the last measurement said. */
  noSpace (): void {
    this.set(true)
  }

  /** Blocks were deleted: measure again soon (the host may have room again). */
  freed (): void {
    if (this.state.full) this.checkSoon(FREED_CHECK_DELAY_MS)
  }

  /** A timed measure failed: the last state stands until the next one. */
  private failed (err: Error): void {
    log.error('statfs of %s failed (the last measure stands): %s', this.dir, err.message)
  }

  private checkSoon (ms: number): void {
    if (!this.started || this.soon !== undefined) return
    this.soon = setTimeout(() => {
      this.soon = undefined
      void this.check().catch(err => { this.failed(err) })
    }, ms)
    this.soon.unref?.()
  }
}

function mib (n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`
}
