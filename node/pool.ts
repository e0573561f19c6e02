// Bounded concurrency for node/ (p-queue, the only importer of that package, for `limiter`):
// `forEachLimited` runs a function over items, at most N at once (placement, surveys, repair,
// pin catch-up, open-file stores, peer dials); `limiter` is a semaphore around sections of work
// (forward.ts's own chunks through relays). The swarm keeps its own slots (swarm/slots.ts).
//
// Part of node/'s vocabulary: every room may import it.
import PQueue from 'p-queue'

export interface PoolOptions {
  /** Stops taking new items once aborted; the call then rejects with the signal's reason. */
  signal?: AbortSignal
}

/**
 * Run `fn` over `items`, at most `concurrency` at once, in order of the items. After the first
 * error (or an abort), items not started yet are skipped; the call settles once every started
 * item has, and rejects with that first error (or the abort reason).
 *
 * `concurrency` workers take the items in turn (the items are read once, at the call): no
 * queue object per call. A p-queue per call made an AbortController, event listeners and, as
 * its onIdle() resolved, a DOMException with its stack (controller.abort()): 26-61 us of CPU
 * per call of 1 to 8 items, against 2-6 us now; the close of a small file stored as a chunk
 * calls this about three times (its store and its placement: issue 15, `tar x`).
 */
export async function forEachLimited<T> (items: Iterable<T>, concurrency: number, fn: (item: T) => Promise<void>, opts: PoolOptions = {}): Promise<void> {
  if (!(Number.isSafeInteger(concurrency) && concurrency >= 1)) throw new RangeError(`concurrency must be an integer >= 1, got ${concurrency}`)
  const list = Array.from(items)
  let next = 0
  let failed: { err: unknown } | undefined
  const work = async (): Promise<void> => {
    while (failed === undefined && next < list.length) {
      if (opts.signal?.aborted === true) { failed = { err: opts.signal.reason }; return }
      const item = list[next++]
      try {
        await fn(item)
      } catch (err) {
        // the first error is rethrown below once every started item has settled; a later one
        // (of an item already running then) is dropped: the call has failed already
        failed ??= { err }
      }
    }
  }
  const n = Math.min(concurrency, list.length)
  if (n === 1) await work()
  else if (n > 1) {
    const workers: Array<Promise<void>> = []
    for (let i = 0; i < n; i++) workers.push(work())
    await Promise.all(workers)
  }
  if (failed !== undefined) throw failed.err
}

/** Runs sections of work at most `concurrency` at once. */
export type Limiter = <R>(fn: () => Promise<R>, opts?: PoolOptions) => Promise<R>

/**
 * A semaphore: `limit(fn, { signal })` runs fn once fewer than `concurrency` others run; a
 * signal that aborts while it waits rejects with the abort reason and fn never runs.
 */
export function limiter (concurrency: number): Limiter {
  if (!(Number.isSafeInteger(concurrency) && concurrency >= 1)) throw new RangeError(`concurrency must be an integer >= 1, got ${concurrency}`)
  const queue = new PQueue({ concurrency })
  return async <R>(fn: () => Promise<R>, opts: PoolOptions = {}): Promise<R> => {
    opts.signal?.throwIfAborted()
    // the slot is held until fn settles (no signal given to p-queue while it runs: an abort
    // reaches fn through its own signal, and the slot frees when fn has stopped)
    let abort: (() => void) | undefined
    const waiting = new Promise<never>((_resolve, reject) => {
      abort = () => { reject(opts.signal?.reason) }
      opts.signal?.addEventListener('abort', abort, { once: true })
    })
    let started = false
    const run = queue.add(async () => {
      if (opts.signal?.aborted === true) return undefined as R
      started = true
      if (abort !== undefined) opts.signal?.removeEventListener('abort', abort)
      return await fn()
    })
    try {
      const r = await Promise.race([run, waiting])
      if (!started) opts.signal?.throwIfAborted()
      return r
    } finally {
      if (abort !== undefined) opts.signal?.removeEventListener('abort', abort)
    }
  }
}
