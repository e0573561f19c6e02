// Lazy (threshold) repair (issue 14; Total Recall, Bhagwan et al. 2004; Ceph's and HDFS's
// "degraded" vs "at risk"): whether a chunk's repair waits for hosts that are away, as a pure
// function the keeper (repair.ts) and the simulator (harness/sim/churn.ts) both call.
//
// A host declared gone by the failure timeout is most often only away (a night off, a reboot) and
// comes back with its disk. Rebuilding its fragments at once moved 5x the bytes of an oracle that
// repairs permanent losses only (npm run sim, 1,000 hosts, 30 days). So for the repair delay
// (net/failure.ts repairDelay(); by default 72 h, none when only --failure-timeout is given; --repair-delay) an away host is planned as if it still held its
// fragments: it stays a target, and repairDeliveries() leaves a target that is not live alone, as
// it does a suspect's. That holds only while the chunk has a fragment to spare: once fewer than
// k + spare distinct fragments are on live hosts (one more loss from unavailability, or from data
// loss if the away holders never come back), the chunk is planned without as many away hosts as
// bring it back to k + spare (the longest away first), and only their fragments are rebuilt; a
// chunk at k + spare waits the at-risk delay (AT_RISK_DELAY_MS, 48 h; from when it came down to
// k + spare), then its longest-away holder's fragment is rebuilt (stopWaiting()). A host that left (leave notice), that
// the operator declared gone (heal) or that stayed away past the repair delay is no longer away:
// its chunks are repaired as soon as it is gone.
import type { ChunkRef } from '../data/index.ts'
import { plan } from './survey.ts'
import type { ChunkPlan, Holdings } from './survey.ts'
import type { PlacementPolicy } from './placement.ts'

/**
 * Distinct fragments on live hosts (beyond k) below which a chunk is repaired at once, away
 * holders or not: 1 repairs a chunk left with k live fragments (one more loss and it is
 * unreadable) and lets one with k + 1 wait for its away holders; 0 (the default) lets a chunk
 * at k live wait too, and rebuilds only what is lost for good or away past the repair delay.
 * (npm run sim, 1,000 hosts, 72 h delay: a spare of 1 moved 4.5x an oracle's bytes; 0 about 1x,
 * with nothing lost on seeds 14 to 18. A fifth of the hosts are away at any time, and three
 * chunks in ten sit at k live: with a spare of 1 their rebuilds took the keepers' caps.)
 */
export const REPAIR_SPARE = 0

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
 * How long a chunk with no fragment to spare (k + spare live: one more holder away and it is
 * unreadable, one more disk lost and it is lost) waits for its away holders before the longest
 * away of them is rebuilt (one fragment: the chunk is back at k + spare + 1 and waits the repair
 * delay for the others); `--at-risk-delay`. Infinity (or the repair delay or more): as long as
 * the repair delay, session 17's rule, under which two disks dying on a small network left every
 * chunk of theirs at k fragments for 72 h.
 * What it costs (npm run sim, 1,000 hosts, 30 days, a fifth of the hosts away at any time, one
 * outage in ten 1 to 3 days long: two holders of a chunk away for days together is common),
 * seed 14, bytes ÷ the oracle's, chunks lost, counted from when the chunk came down to k
 * ('short'): none 1.02x 0; 12 h 2.78x 0; 24 h 1.88x 0; 36 h 1.29x 0; 48 h 1.07x 0. Counted from
 * the longest-away holder's departure ('away'; not measured at these delays) it gives up
 * whenever 'short' does and sooner: a holder days away is there when another leaves for a night
 * (at 12 h, 'short' already moved 2.78x). 48 h, seeds 15 to 18:
 * 1.05x, 1.08x, 1.06x, 1.05x, 0 lost on each (session 17's rule there: 0.99x to 1.02x, 0 lost).
 * The cost follows the network's long outages: a delay shorter than the ones common there
 * rebuilds for hosts that come back. (At 1,000 hosts it does not shorten the spells at k on
 * disks: those are the thin uplinks' rebuild time, 65 h at the median either way; on a small
 * network of fat links it does, test/sim/churn.test.ts.)
 */
export const AT_RISK_DELAY_MS = 48 * 3600_000

/**
 * What the at-risk delay is counted from: 'away', the departure of the away holder it would
 * rebuild (the longest away); 'short', when the chunk came down to no fragment to spare (the
 * departure of its most recent away holder; a suspect holder: just now).
 */
export type AtRiskClock = 'away' | 'short'
export const AT_RISK_CLOCK: AtRiskClock = 'short'

/** The lazy-repair rule: REPAIR_SPARE, AT_RISK_DELAY_MS, AT_RISK_CLOCK. */
export interface LazyRule {
  spare: number
  atRiskDelayMs: number
  clock: AtRiskClock
}

export const LAZY_RULE: Readonly<LazyRule> = { spare: REPAIR_SPARE, atRiskDelayMs: AT_RISK_DELAY_MS, clock: AT_RISK_CLOCK }

/**
 * How many of a chunk's away targets (longest away first, `awayMs`: how long each has been away)
 * its plan stops waiting for, so their fragments are rebuilt: as many as bring it back to
 * k + spare live fragments, whatever their time away; then, at k + spare, one more once the
 * chunk has waited the at-risk delay (rule.clock says from when; `suspects`: its targets that
 * are members not live now, which came down to k + spare just now). Fewer when it has fewer away
 * targets. The one rule the keeper (repair.ts, through lazyPlan) and the simulator both apply.
 */
export function stopWaiting (available: number, k: number, awayMs: readonly number[], rule: Readonly<LazyRule> = LAZY_RULE, suspects = 0): number {
  const given = Math.min(awayMs.length, Math.max(0, k + rule.spare - available))
  if (available + given !== k + rule.spare || given >= awayMs.length) return given
  const rest = awayMs.slice(given)
  const waited = rule.clock === 'away' ? rest[0] : suspects > 0 ? 0 : Math.min(...rest)
  return waited >= rule.atRiskDelayMs ? given + 1 : given
}

/** The at-risk delay and clock, as a rule: `rule` a spare alone (tests, the sim's --repair-spare) keeps LAZY_RULE's others. */
function ruleOf (rule: number | Partial<LazyRule> | undefined): LazyRule {
  return typeof rule === 'number' ? { ...LAZY_RULE, spare: rule } : { ...LAZY_RULE, ...rule }
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
 * The order a keeper repairs chunks in: fewest surviving fragments first (`surviving[i]`, item
 * i's fragments that still exist: survivingFragments()), then fewest live ones (`live[i]`; not
 * given: the surviving ones), equal ones in their order. Returns the item indexes in that order.
 * A chunk one loss from lost for good goes ahead of one only one loss from unreadable: under
 * churn a fifth of the hosts are away at any time and three chunks in ten are at k live, and a
 * chunk that lost two fragments for good waited among them for a thin holder's uplink until its
 * third holder left (npm run sim, 1,000 hosts, seed 15: 15 chunks lost, 370 h after the first
 * leaver; ordered by live fragments alone, the away holders' chunks took every read first).
 */
export function byUrgency (surviving: readonly number[], live: readonly number[] = surviving): number[] {
  return surviving.map((_, i) => i).sort((a, b) => surviving[a] - surviving[b] || live[a] - live[b] || a - b)
}

/**
 * Distinct fragments of a chunk that still exist as far as its plan knows: those live hosts hold,
 * and those its plan presumes on the away hosts it waits for (targets within the repair delay:
 * lazyPlan() keeps each on the fragment it held). A chunk with k + 2 fragments of which two are
 * on away hosts has k live and k + 2 surviving: one loss from unreadable, three from lost. With
 * no away hosts (no repair delay), the live ones.
 */
export function survivingFragments (ref: Pick<ChunkRef, 'k'>, p: Pick<ChunkPlan, 'want' | 'held'>, away: ReadonlySet<string>): number {
  if (ref.k === 1) return (p.held[0]?.size ?? 0) + (p.want[0] ?? []).filter(h => away.has(h) && !(p.held[0]?.has(h) ?? false)).length
  let n = 0
  for (let j = 0; j < p.want.length; j++) if ((p.held[j]?.size ?? 0) > 0 || p.want[j].some(h => away.has(h))) n++
  return n
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
  policy: Pick<PlacementPolicy, 'copies' | 'rank'>, rule: number | Partial<LazyRule> = LAZY_RULE, presumed?: ReadonlyMap<string, readonly number[]>,
  awayMs?: ReadonlyMap<string, number>
): ChunkPlan {
  const r = ruleOf(rule)
  if (away.length === 0) return plan(ref, holdings, members, live, self, policy)
  const known = new Set(members)
  // with `presumed` (what each away host held when last seen), only the away hosts that held a
  // fragment are waited for: one that held nothing is no target (a fragment lost meanwhile went
  // to it, and waited days for a host that never held it)
  const others = away.filter(h => !known.has(h) && (presumed === undefined || (presumed.get(h)?.length ?? 0) > 0))
  const planned = plan(ref, holdings, [...members, ...others], live, self, policy)
  const waiting = presumed === undefined ? planned : { ...planned, want: keepPresumed(planned, others, presumed) }
  const available = liveFragments(ref, holdings, live)
  if (!mayWait(available, ref.k, r.spare + 1) && others.length > 0) {
    const targets = new Set(waiting.want.flat())
    const waited = others.filter(h => targets.has(h))
    const suspects = [...targets].filter(h => !live.has(h) && known.has(h)).length
    return giveUpPlan(ref, waiting, members, waited, stopWaiting(available, ref.k, waited.map(h => awayMs?.get(h) ?? 0), r, suspects), policy)
  }
  return waiting
}

/**
 * The waiting plan with the first `need` of the `away` targets given up: each one's place goes
 * to the next-ranked member; the away hosts kept keep the fragments the waiting plan presumes on
 * them (planning again without the given-up ones could assign a kept one another fragment than
 * it holds, and rebuild the one it holds elsewhere).
 */
function giveUpPlan (ref: ChunkRef, waiting: ChunkPlan, members: string[], away: readonly string[], need: number, policy: Pick<PlacementPolicy, 'rank'>): ChunkPlan {
  const give = giveUp(waiting, away, need)
  if (give.size === 0) return waiting
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

/**
 * The waiting plan's targets with each away host on the fragment it was last seen holding
 * (`presumed`): plan() sees no fragment on a host that is not live, and may assign it any
 * fragment no live host holds (a chunk that lost fragment 2 for good and whose fragment 4 is on
 * an away host had 4 rebuilt and 2 left waiting for that host). Two targets' fragments are
 * swapped when an away host is on a fragment it did not hold and the one it held has no live
 * holder.
 */
export function keepPresumed (p: Pick<ChunkPlan, 'want' | 'held'>, away: readonly string[], presumed: ReadonlyMap<string, readonly number[]>): string[][] {
  const want = p.want.map(hs => [...hs])
  if (want.length < 2) return want
  for (const h of away) {
    const js = presumed.get(h) ?? []
    const j = want.findIndex(hs => hs.includes(h))
    if (j < 0 || js.includes(j)) continue
    const i = js.find(i => i < want.length && p.held[i].size === 0 && !want[i].some(x => away.includes(x) && (presumed.get(x) ?? []).includes(i)))
    if (i === undefined) continue
    const there = want[i]
    want[i] = want[j]
    want[j] = there
  }
  return want
}
