// Lazy (threshold) repair (issue 14; Total Recall, Bhagwan et al. 2004; Ceph's and HDFS's
// "degraded" vs "at risk"): whether a chunk's repair waits for hosts that are away, as a pure
// function the keeper (repair.ts) and the simulator (harness/sim/churn.ts) both call.
//
// A host declared gone by the failure timeout is most often only away (a night off, a reboot) and
// comes back with its disk. Rebuilding its fragments at once moved 5x the bytes of an oracle that
// repairs permanent losses only (npm run sim, 1,000 hosts, 30 days). So for the repair delay
// (net/failure.ts repairDelay(); by default the failure timeout, i.e. none; --repair-delay) an away host is planned as if it still held its
// fragments: it stays a target, and repairDeliveries() leaves a target that is not live alone, as
// it does a suspect's. That holds only while the chunk has a fragment to spare: once fewer than
// k + spare distinct fragments are on live hosts (one more loss from unavailability, or from data
// loss if the away holders never come back), the chunk is planned without the away hosts, as
// before, and every fragment they held is rebuilt at once. A host that left (leave notice), that
// the operator declared gone (heal) or that stayed away past the repair delay is no longer away:
// its chunks are repaired as soon as it is gone.
import type { ChunkRef } from '../data/index.ts'
import { plan } from './survey.ts'
import type { ChunkPlan, Holdings } from './survey.ts'
import type { PlacementPolicy } from './placement.ts'

/**
 * Distinct fragments on live hosts (beyond k) below which a chunk is repaired at once, away
 * holders or not: 1 repairs a chunk left with k live fragments (one more loss and it is
 * unreadable) and lets one with k + 1 wait for its away holders.
 */
export const REPAIR_SPARE = 1

/**
 * How many distinct fragments of the chunk live hosts hold (for copies of one block, k = 1: how
 * many live hosts hold a copy).
 */
export function liveFragments (ref: Pick<ChunkRef, 'k' | 'fragments'>, holdings: Holdings, live: ReadonlySet<string>): number {
  const holders = (j: number): string[] => [...(holdings.get(ref.fragments[j].toString()) ?? [])].filter(h => live.has(h))
  if (ref.k === 1) return ref.fragments.length === 0 ? 0 : holders(0).length
  let n = 0
  for (let j = 0; j < ref.fragments.length; j++) if (holders(j).length > 0) n++
  return n
}

/** Whether a chunk with `available` live fragments may wait for its away holders (see REPAIR_SPARE). */
export function mayWait (available: number, k: number, spare = REPAIR_SPARE): boolean {
  return available >= k + spare
}

/**
 * The chunk's plan (survey.ts plan()) under lazy repair: with the `away` hosts (declared gone,
 * within the repair delay) counted as members while the chunk may wait for them, so nothing is
 * rebuilt for them; without them, as plan() alone, once it may not. `members` excludes them.
 */
export function lazyPlan (
  ref: ChunkRef, holdings: Holdings, members: string[], away: readonly string[], live: Set<string>, self: string,
  policy: Pick<PlacementPolicy, 'copies' | 'rank'>, spare = REPAIR_SPARE
): ChunkPlan {
  if (away.length === 0 || !mayWait(liveFragments(ref, holdings, live), ref.k, spare)) return plan(ref, holdings, members, live, self, policy)
  const known = new Set(members)
  return plan(ref, holdings, [...members, ...away.filter(h => !known.has(h))], live, self, policy)
}
