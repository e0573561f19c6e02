// The progress line of a long transfer (`darkfs put`), drawn on stderr when it is a terminal
// and never otherwise (a pipe or a log file gets no progress, only the outcome): bytes placed
// of the file's size, the rate and the time left, redrawn in place.
import type { PutProgress } from '../types.ts'

/** Shortest time between two redraws of the line. */
export const REDRAW_EVERY_MS = 200
/** Samples the rate is measured over (the last few seconds of progress lines). */
export const RATE_WINDOW_MS = 5_000

export interface ProgressDrawer {
  update: (p: PutProgress & { size: number }) => void
  /** Clears the line (a TTY), so the next output starts on a clean line. */
  done: () => void
}

/** Human bytes: 1.5 GiB, 12.0 MiB, 512 B (`darkfs put`'s progress, `darkfs status`'s network totals). */
export function bytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`
}

/** m:ss or h:mm:ss. */
export function duration (seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}

/** One progress line: placed (and stored) of size, rate of placement, time left. */
export function progressText (p: PutProgress & { size: number }, bytesPerSecond: number): string {
  const pct = p.size === 0 ? 100 : Math.min(100, Math.floor(p.placed / p.size * 100))
  const eta = bytesPerSecond > 0 ? duration((p.size - p.placed) / bytesPerSecond) : '?'
  return `put ${bytes(p.placed)} of ${bytes(p.size)} placed (${pct}%), ${bytes(p.stored)} stored, ${bytes(bytesPerSecond)}/s, ETA ${eta}`
}

export function progressDrawer (tty: boolean, write: (s: string) => void, now: () => number = Date.now): ProgressDrawer {
  const samples: Array<{ at: number, placed: number }> = []
  let last = 0
  let drawn = false
  return {
    update (p) {
      if (!tty) return
      const t = now()
      samples.push({ at: t, placed: p.placed })
      while (samples.length > 2 && samples[0].at < t - RATE_WINDOW_MS) samples.shift()
      if (t - last < REDRAW_EVERY_MS) return
      last = t
      const first = samples[0]
      const rate = t > first.at ? (p.placed - first.placed) / ((t - first.at) / 1000) : 0
      write(`\r\x1b[K${progressText(p, rate)}`)
      drawn = true
    },
    done () {
      if (drawn) write('\r\x1b[K')
      drawn = false
    }
  }
}
