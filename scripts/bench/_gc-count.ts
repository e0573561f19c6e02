// The collector's work in one isolate (a thread), counted where compare.ts can read it at any
// time: perf_hooks 'gc' entries added up into a Float64Array that may live in a
// SharedArrayBuffer (a host worker's, given in its workerData, read by the main thread while the
// worker runs). Issue 15: on six hosts in one process the collections are mostly full
// mark-compacts started by external memory (ArrayBuffers allocated and dropped on the data path),
// each costing the whole live heap; a cell's figure is their count per MiB.
import { PerformanceObserver, constants } from 'node:perf_hooks'

/** Slots of a counter array. */
export const GC_MAJOR = 0
export const GC_MINOR = 1
export const GC_INCREMENTAL = 2
export const GC_WEAK = 3
/** Milliseconds of the entries (the pauses on this thread; V8's helper threads' work is not in them). */
export const GC_MS = 4
export const GC_SLOTS = 5

/** V8's kGCTypeMinorMarkSweep (no perf_hooks constant names it): a young-generation collection too. */
const MINOR_MARK_SWEEP = 2

/** A counter array in shared memory (GC_SLOTS float64s), for countGc in another thread. */
export function sharedGcCounters (): Float64Array {
  return new Float64Array(new SharedArrayBuffer(GC_SLOTS * Float64Array.BYTES_PER_ELEMENT))
}

/** Add this thread's collections into `into` from now on (for the life of the thread). */
export function countGc (into: Float64Array): void {
  const obs = new PerformanceObserver(list => {
    for (const e of list.getEntries()) {
      const kind = ((e as { detail?: unknown }).detail as { kind?: number } | null | undefined)?.kind ?? 0
      if ((kind & constants.NODE_PERFORMANCE_GC_MAJOR) !== 0) into[GC_MAJOR]++
      else if ((kind & (constants.NODE_PERFORMANCE_GC_MINOR | MINOR_MARK_SWEEP)) !== 0) into[GC_MINOR]++
      else if ((kind & constants.NODE_PERFORMANCE_GC_INCREMENTAL) !== 0) into[GC_INCREMENTAL]++
      else if ((kind & constants.NODE_PERFORMANCE_GC_WEAKCB) !== 0) into[GC_WEAK]++
      into[GC_MS] += e.duration
    }
  })
  obs.observe({ entryTypes: ['gc'] })
}

/** The sum of `counters`, slot by slot. */
export function sumGc (counters: Iterable<Float64Array>): number[] {
  const out = new Array<number>(GC_SLOTS).fill(0)
  for (const c of counters) for (let i = 0; i < GC_SLOTS; i++) out[i] += c[i]
  return out
}
