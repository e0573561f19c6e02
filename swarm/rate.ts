// Token buckets for the upload and download caps (DESIGN.md §4, §9: caps are core).
//
// A bucket holds up to `burst` bytes of credit and refills at `rate` bytes per second. take(n)
// always admits n bytes but may leave the bucket in debt; the caller then waits until the debt
// is repaid. Callers are thereby served in arrival order, a message larger than the burst still
// passes, and the long-run rate never exceeds `rate`.
import type { AbortOptions } from '@libp2p/interface'

/** Credit a bucket can bank, in seconds of its rate: short bursts pass at full speed. */
export const BURST_SECONDS = 0.25

export interface RateLimiter {
  /**
   * Admit `bytes`: returns nothing when they may pass at once, else a promise of the moment
   * they may (which rejects, refunding them, when the signal aborts).
   */
  take (bytes: number, opts?: AbortOptions): Promise<void> | undefined
  /** Bytes per second, Infinity when unlimited. */
  readonly rate: number
}

export interface TokenBucketInit {
  /** Bytes per second; Infinity or undefined for no limit. */
  rate?: number
  /** Most bytes of credit banked (default: rate * BURST_SECONDS). */
  burst?: number
  /** Clock in ms, for tests of the arithmetic. */
  now?: () => number
}

export function tokenBucket (init: TokenBucketInit = {}): RateLimiter {
  const rate = init.rate ?? Infinity
  if (!(rate > 0)) throw new RangeError('rate must be a positive number of bytes per second')
  if (rate === Infinity) return { rate, take: (_bytes, opts) => { opts?.signal?.throwIfAborted(); return undefined } }
  const burst = init.burst ?? rate * BURST_SECONDS
  const now = init.now ?? (() => performance.now())
  let tokens = burst
  let last = now()

  function refill (): void {
    const t = now()
    tokens = Math.min(burst, tokens + (t - last) / 1000 * rate)
    last = t
  }

  return {
    rate,
    take (bytes, opts) {
      opts?.signal?.throwIfAborted()
      refill()
      tokens -= bytes
      if (tokens >= 0) return undefined
      const waitMs = -tokens / rate * 1000
      return new Promise<void>((resolve, reject) => {
        const signal = opts?.signal
        const timer = setTimeout(done, waitMs)
        function done (): void {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        function onAbort (): void {
          clearTimeout(timer)
          refill()
          tokens = Math.min(burst, tokens + bytes)
          reject(signal?.reason)
        }
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
  }
}

/** Admits bytes when every limiter does (e.g. the per-peer cap and the total cap). */
export function allOf (limiters: RateLimiter[]): RateLimiter {
  return {
    rate: Math.min(...limiters.map(l => l.rate)),
    take (bytes, opts) {
      const waits = limiters.map(l => l.take(bytes, opts)).filter(w => w !== undefined)
      if (waits.length === 0) return undefined
      return Promise.all(waits).then(() => undefined)
    }
  }
}
