// The garbage collector's rule for Buffer memory, set once for the process (issue 15: CPU per MiB
// through six hosts).
//
// A host moves its data in Buffers: FUSE writes, chunks, fragments, both encryption layers' output,
// socket reads. Their bytes live outside V8's heap ("external memory"). By default V8 starts a full
// mark-compact of the isolate whenever external memory has grown 64 MiB past what it was at the
// last one (its external allocation soft limit), however little of the heap is garbage: a host
// writing 256 MiB allocates well over a GiB of short-lived Buffers, so every isolate holding a host
// marked its whole heap every few hundred milliseconds. With perf over the whole compare-bench
// process (six hosts, 256 MiB sequential write) V8's major-GC marking and sweeping were the largest
// single cost, about a fifth of all CPU, more than both encryption layers and every hash together.
//
// --external-memory-accounted-in-global-limit (a V8 flag, off by default in Node 26) counts those
// bytes in the isolate's global heap limit instead, which grows with what survives each collection
// (at most 1.3x for external memory, --external-memory-max-growing-factor): garbage Buffers are
// still freed by the next collection, but Buffer churn alone no longer forces a full one every
// 64 MiB. V8 flags are process-wide and read when limits are computed, so setting it when the first
// host module loads covers that isolate and every worker started after (the bench's host threads).
import { setFlagsFromString } from 'node:v8'

/** The V8 flag set by accountExternalMemoryInHeapLimit. */
export const EXTERNAL_MEMORY_FLAG = '--external-memory-accounted-in-global-limit'

let set = false

/** Count Buffer memory in V8's heap limit, not against its fixed 64 MiB step (see above). Idempotent; DARKFS_V8_EXTERNAL_LIMIT=default leaves V8's rule (for comparison). */
export function accountExternalMemoryInHeapLimit (): void {
  if (set || process.env.DARKFS_V8_EXTERNAL_LIMIT === 'default') return
  setFlagsFromString(EXTERNAL_MEMORY_FLAG)
  set = true
}
