/**
 * The order of an O_APPEND write(2)'s pieces.
 *
 * The Volume lays every O_APPEND write at its own end of file, in the order the writes reach it.
 * A direct write(2) comes in pieces (fuse/binding.c WRITE_PIECE) and, submitted asynchronously
 * (Linux AIO, io_uring: the kernel's fuse_direct_IO with async DIO), all its pieces are in flight
 * at once; the binding's worker threads hand them to JS in any order, so a later piece could be
 * laid first. The kernel puts consecutive offsets on the pieces of one write(2), from its cached
 * size: a piece whose offset is past the end of the last append laid on its inode waits here,
 * a bounded time, for the piece before it.
 *
 * `end` is where the kernel's next append on the inode starts, as far as we know: the end of the
 * last append piece let through, or the size a getattr or truncate told the kernel when no append
 * was under way. Not known: the piece goes (nothing to order it by).
 */
export interface AppendOrderOptions {
  /** Longest a piece waits for the piece before it (ms): the gap may be no piece at all (the kernel's size came from elsewhere). */
  holdMs?: number
  /** For tests: starts the hold's timer, calling `fire` after `ms`; returns its cancel (default setTimeout). */
  timer?: (fire: () => void, ms: number) => () => void
}

function setTimer (fire: () => void, ms: number): () => void {
  const t = setTimeout(fire, ms)
  return () => { clearTimeout(t) }
}

interface Waiter { off: number, wake: () => void }
interface InodeAppends { end: number | undefined, busy: number, open: number, waiters: Waiter[] }

/** Sizes told the kernel lately, of inodes no handle has open (the size an open starts from). */
const RECENT_SIZES = 4096

export const APPEND_HOLD_MS = 200

export class AppendOrder {
  private readonly inodes = new Map<number, InodeAppends>()
  private readonly recent = new Map<number, number>()
  private readonly holdMs: number
  private readonly timer: (fire: () => void, ms: number) => () => void

  constructor (opts: AppendOrderOptions = {}) {
    this.holdMs = opts.holdMs ?? APPEND_HOLD_MS
    this.timer = opts.timer ?? setTimer
  }

  /**
   * Runs `lay` (which must hand the piece to the Volume before its first await) in the piece's
   * turn: once the append before it was let through, or after the hold, or when `signal` aborts
   * (lay then meets the abort itself).
   */
  async run<T> (ino: number, off: number, size: number, lay: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    let s = this.inodes.get(ino)
    if (s === undefined) { s = { end: this.recent.get(ino), busy: 0, open: 0, waiters: [] }; this.inodes.set(ino, s) }
    s.busy++
    try {
      if (s.end !== undefined && off > s.end && signal?.aborted !== true) await this.hold(s, off, signal)
      s.end = s.end === undefined ? off + size : Math.max(s.end, off + size)
      const laid = lay()
      this.release(s)
      return await laid
    } finally {
      s.busy--
      if (s.busy === 0 && s.open === 0) this.inodes.delete(ino)
    }
  }

  /**
   * The kernel was told `size` for `ino` (a getattr's answer, or the attributes of a change's
   * answer): ignored while an append is under way, and never moves the end back while a handle
   * is open (the stat may have finished before an append that was laid since; a shrink comes
   * by truncated()).
   */
  sized (ino: number, size: number): void {
    const s = this.inodes.get(ino)
    if (s !== undefined) {
      if (s.busy === 0 && (s.end === undefined || size > s.end)) s.end = size
      return
    }
    this.recent.delete(ino)
    this.recent.set(ino, size)
    if (this.recent.size > RECENT_SIZES) this.recent.delete(this.recent.keys().next().value!)
  }

  /**
   * The file grew to at least `end` by other means than an append (a plain write, an
   * fallocate): the kernel's size, where its next append starts, moved with it. Only raises the
   * end (a growth never moves it back), and only of an inode some handle has open or whose
   * size was told lately.
   */
  grew (ino: number, end: number): void {
    const s = this.inodes.get(ino)
    if (s !== undefined) {
      if (s.end !== undefined && end > s.end) { s.end = end; this.release(s) }
      return
    }
    const size = this.recent.get(ino)
    if (size !== undefined && end > size) this.recent.set(ino, end)
  }

  /** Truncated to `size` (the kernel's size then), whatever is under way. */
  truncated (ino: number, size: number): void {
    const s = this.inodes.get(ino)
    if (s !== undefined) s.end = size
    else this.sized(ino, size)
  }

  /** A handle was opened on `ino`: its appends start from the size last told the kernel. */
  opened (ino: number): void {
    let s = this.inodes.get(ino)
    if (s === undefined) { s = { end: this.recent.get(ino), busy: 0, open: 0, waiters: [] }; this.inodes.set(ino, s) }
    this.recent.delete(ino)
    s.open++
  }

  /** A handle on `ino` was released. */
  closed (ino: number): void {
    const s = this.inodes.get(ino)
    if (s === undefined) return
    s.open = Math.max(0, s.open - 1)
    if (s.open === 0 && s.busy === 0) {
      this.inodes.delete(ino)
      if (s.end !== undefined) this.sized(ino, s.end)
    }
  }

  private async hold (s: InodeAppends, off: number, signal?: AbortSignal): Promise<void> {
    await new Promise<void>(resolve => {
      let cancel: (() => void) | undefined
      const w: Waiter = {
        off,
        wake: () => {
          cancel?.()
          signal?.removeEventListener('abort', w.wake)
          const i = s.waiters.indexOf(w)
          if (i >= 0) s.waiters.splice(i, 1)
          resolve()
        }
      }
      s.waiters.push(w)
      cancel = this.timer(w.wake, this.holdMs)
      signal?.addEventListener('abort', w.wake, { once: true })
    })
  }

  /** Wakes the piece that starts where the last one let through ended (it then wakes the next). */
  private release (s: InodeAppends): void {
    const next = s.waiters.find(w => w.off <= s.end!)
    if (next !== undefined) next.wake()
  }
}
