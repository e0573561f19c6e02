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
// loss if the away holders never come back), the chunk is planned without as many away hosts as
// bring it back to k + spare (the longest away first), and only their fragments are rebuilt. A host that left (leave notice), that
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
 * Whether a chunk with `available` live fragments is at risk: one more loss (a holder away, or
 * gone for good) leaves it unreadable. The Repairer takes such chunks first in a pass
 * (byUrgency()), ahead of chunks that still have a fragment to spare.
 */
export function atRisk (available: number, k: number): boolean {
  return available <= k
}

/**
 * The order a keeper repairs chunks in: fewest live fragments first (a chunk at k goes before one
 * at k + 1), `available[i]` being item i's count; equal ones keep their order. Returns the item indexes in that order.
 */
export function byUrgency (available: readonly number[]): number[] {
  return available.map((_, i) => i).sort((a, b) => available[a] - available[b] || a - b)
}

/**
 * The chunk's plan (survey.ts plan()) under lazy repair: with the `away` hosts (declared gone,
 * within the repair delay) counted as members while the chunk may wait for them, so nothing is
 * rebuilt for them. Once it may not (fewer than k + spare fragments on live hosts), only as many
 * away targets as bring it back to k + spare are given up, the longest away first (`away` is in
 * the order they went away, as Membership.away() lists them): their fragments are rebuilt on
 * the next-ranked members, the other away holders are still waited for. (npm run sim, 1,000
 * hosts, 72 h delay: rebuilding every away holder's fragment moved 4.07x an oracle's bytes and
 * lost 10 chunks; one per chunk 4.3x, 7 lost: with a fifth of the hosts away at any time three in
 * ten chunks are at k live, and the keepers' repair caps, not the fragments per repair, bound the
 * bytes. Only no spare at all (spare 0: nothing rebuilt for an away host) came near the oracle.)
 * `members` excludes the away hosts.
 */
export function lazyPlan (
  ref: ChunkRef, holdings: Holdings, members: string[], away: readonly string[], live: Set<string>, self: string,
  policy: Pick<PlacementPolicy, 'copies' | 'rank'>, spare = REPAIR_SPARE
): ChunkPlan {
  if (away.length === 0) return plan(ref, holdings, members, live, self, policy)
  const known = new Set(members)
  const others = away.filter(h => !known.has(h))
  const waiting = plan(ref, holdings, [...members, ...others], live, self, policy)
  const available = liveFragments(ref, holdings, live)
  if (mayWait(available, ref.k, spare)) return waiting
  const give = giveUp(waiting, others, ref.k + spare - available)
  if (give.size === 0) return waiting
  // each given-up host's place goes to the next-ranked member; the away hosts kept keep the
  // fragments the waiting plan presumes on them (planning again without the given-up ones could
  // assign a kept one another fragment than it holds, and rebuild the one it holds elsewhere)
  const targets = new Set(waiting.want.flat())
  const next = policy.rank(ref, members, Math.min(members.length, targets.size + give.size)).filter(h => !targets.has(h))
  const want = waiting.want.map(hs => hs.flatMap(h => !give.has(h) ? [h] : next.length > 0 ? [next.shift()!] : []))
  return { ...waiting, want }
}

/**
 * The away hosts a chunk short of its spare stops waiting for: the first `need` of `away` (the
 * longest away first) that its waiting plan has as targets (an away host that is no target holds
 * nothing it waits for). Planned without them, their places go to the next-ranked members.
 */
export function giveUp (waiting: Pick<ChunkPlan, 'want'>, away: readonly string[], need: number): Set<string> {
  const targets = new Set(waiting.want.flat())
  return new Set(away.filter(h => targets.has(h)).slice(0, Math.max(0, need)))
}
