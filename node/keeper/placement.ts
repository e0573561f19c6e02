// Placement policy (DESIGN.md §2, §3), as pure functions over a snapshot of the live peers.
//
// Peers and blocks share the Kademlia key space of libp2p's kad-dht: a peer's kad id is
// sha256(the multihash bytes of its peer id), a key's is sha256(key). The closest live peer is
// the chunk's keeper (it checks and repairs the chunk's fragments).
//
// Two rules rank the members that hold a chunk's fragments (fragment j on the member ranked j,
// assignment.ts), and the chunk's ref names its own (ChunkRef.rule), so every host ranks a
// chunk the same way and no chunk moves because the rule of new ones changed:
//  - PLACEMENT_BALANCED (chunks written since issue 14 item 4): capacity-weighted rendezvous
//    over every member (balance.ts balancedTargets), each member weighted by the capacity class
//    it signed into its member record (net/members.ts; placementWeights: unknown as the median,
//    capped at 8x it). A host's load follows its disk.
//  - no rule (manifests written before it; manifests themselves, whose refs are built from their
//    CID alone, redundancy.ts): the XOR-closest members (kad.ts targets). Their fragments stay
//    on the hosts that hold them, readers find them where they were, and repair keeps them there.
// The keeper of a chunk (the host that repairs it) is its first-ranked live member under the
// same rule (keeperOf): for a chunk without a rule the XOR-closest live member (kad.ts keeper),
// for a balanced one the rendezvous winner. It must be the rule's first: assignment.ts keeps one
// copy of each doubled fragment on the first-ranked target, so the keeper rebuilding a lost
// fragment holds one copy itself and pushes m (a keeper chosen by XOR while holders followed the
// rendezvous rule pushed m + 1: test/cluster/repair-bytes caught 5.4 bytes moved per byte lost).
export { keyKadId, peerKadId, compareDistance, closest, targets, keeper, KAD_ID_CACHE_ENTRIES } from '../net/index.ts'
import { targets } from '../net/index.ts'
import { PLACEMENT_BALANCED } from '../data/index.ts'
import type { ChunkRef } from '../data/index.ts'
import { balancedTargets, balancedTargetsOf, placementWeights, prepareMembers } from './balance.ts'
import type { PreparedMembers } from './balance.ts'

/**
 * The live member that repairs chunk `ref`: its first-ranked live member under its rule (see
 * above); undefined when no member is live.
 */
export function keeperOf (ref: Pick<ChunkRef, 'cid' | 'rule'>, live: Iterable<string>, policy: Pick<PlacementPolicy, 'rank'>): string | undefined {
  return policy.rank(ref, [...live], 1)[0]
}

/** Most data fragments per chunk by default (k <= MAX_DATA_FRAGMENTS): `--data-fragments 4`. */
export const MAX_DATA_FRAGMENTS = 4
/** Lost hosts tolerated by default (m). */
export const DEFAULT_REDUNDANCY = 2
/** Fewest data fragments worth erasure coding; below it, plain replication (k = 1). */
export const MIN_CODED_DATA_FRAGMENTS = 2
/**
 * Most fragments (k + m) of one chunk: a relayed placement names at most this many
 * (forward.ts MAX_FRAGMENTS), and the codec is checked MDS up to it (test/node/erasure.test.ts).
 */
export const MAX_WIDTH = 32
/** Most data fragments `auto` picks (16 + m at 24 hosts and more, when m >= 4). */
export const MAX_AUTO_DATA_FRAGMENTS = 16
/** `auto` gives each parity fragment at most this many data fragments to cover (k <= 4m). */
const AUTO_DATA_PER_PARITY = 4

export interface ErasureParams { k: number, m: number }

/**
 * The bound on k (`up --data-fragments`): a number (k <= it, as live hosts allow), or 'auto',
 * a bound that follows the network's size (autoDataFragments).
 */
export type DataFragments = number | 'auto'

/**
 * The bound on k that `--data-fragments auto` uses on `liveHosts` hosts with redundancy m:
 *
 *   live:     1-11   12-23               24+
 *   bound:    4      min(8, live - 2m)   min(16, live - 2m)     and never above 4m, never below 4
 *
 *   redundancy 2:  4+2 (1.5x)  ->  8+2 (1.25x) from 12 hosts
 *   redundancy 4:  4+4 (2x)    ->  8+4 (1.5x) from 16 hosts  ->  16+4 (1.25x) from 24 hosts
 *
 * Why these bounds: a wider code stores less for the same m, but
 *  - repair needs room: rebuilt fragments go to hosts that hold none of the chunk, so the width
 *    stays at most live - m (k <= live - 2m): after m hosts are lost there are still k + m
 *    hosts to bring every chunk back to full width, and spare hosts for full disks;
 *  - the same m over more fragments is less safe: a chunk is lost when m + 1 of its k + m hosts
 *    fail, about C(k+m, m+1) p^(m+1) for host loss odds p, 6x more likely at 8+2 than at 4+2 and
 *    41x at 16+2. k <= 4m keeps that factor small; a wider code wants a larger --redundancy
 *    (16+4 is 1.25x like 8+2 and survives 4 losses);
 *  - repair reads k fragments per lost one, and a read waits on k hosts: wider costs repair
 *    traffic and tail latency, worth it only once the network is large;
 *  - below 12 hosts it stays today's rule, so small networks write what they always did.
 */
export function autoDataFragments (liveHosts: number, redundancy: number): number {
  const cap = Math.min(liveHosts >= 24 ? MAX_AUTO_DATA_FRAGMENTS : liveHosts >= 12 ? 8 : MAX_DATA_FRAGMENTS, AUTO_DATA_PER_PARITY * redundancy)
  return Math.max(MAX_DATA_FRAGMENTS, Math.min(cap, liveHosts - 2 * redundancy))
}

/**
 * The erasure parameters for a network of `liveHosts` live hosts (including this one).
 *
 * m = redundancy lost hosts tolerated, k = min(K, live - m) data fragments where K is
 * `dataFragments` (default MAX_DATA_FRAGMENTS = 4; 'auto': autoDataFragments), so k + m never
 * exceeds the hosts there are to hold them (nor MAX_WIDTH). When that leaves fewer than 2 data
 * fragments the chunk is replicated instead: k = 1 and m = min(redundancy, live - 1), i.e. m + 1
 * copies, one per host. A single host keeps one copy (k = 1, m = 0): nothing to spread to yet.
 *
 *   live:  1    2    3    4    5    6+
 *   k+m:  1+0  1+1  1+2  2+2  3+2  4+2     (redundancy 2, the default K = 4)
 */
export function erasureParams (liveHosts: number, redundancy: number, dataFragments: DataFragments = MAX_DATA_FRAGMENTS): ErasureParams {
  if (!Number.isSafeInteger(liveHosts) || liveHosts < 1) {
    throw new RangeError(`erasureParams: liveHosts must be an integer >= 1 (this host counts), got ${String(liveHosts)}`)
  }
  checkRedundancy('erasureParams', redundancy)
  checkDataFragments('erasureParams', dataFragments)
  const bound = dataFragments === 'auto' ? autoDataFragments(liveHosts, redundancy) : dataFragments
  const k = Math.min(bound, liveHosts - redundancy, MAX_WIDTH - redundancy)
  if (k >= MIN_CODED_DATA_FRAGMENTS) return { k, m: redundancy }
  return { k: 1, m: Math.min(redundancy, liveHosts - 1) }
}

/**
 * How many hosts must hold a replicated chunk (k = 1): its own m + 1 copies, or, when it was
 * written while the network was smaller (offline: k = 1, m = 0), as many as the network's
 * redundancy asks for now. Copies of one block need no new manifest, so old chunks catch up.
 */
export function replicaCount (m: number, redundancy: number, members: number): number {
  return Math.max(m + 1, Math.min(redundancy + 1, members))
}

function checkRedundancy (where: string, redundancy: number): void {
  if (!Number.isSafeInteger(redundancy) || redundancy < 0) {
    throw new RangeError(`${where}: redundancy must be an integer >= 0, got ${String(redundancy)}`)
  }
}

function checkDataFragments (where: string, dataFragments: DataFragments): void {
  if (dataFragments !== 'auto' && (!Number.isSafeInteger(dataFragments) || dataFragments < 1 || dataFragments > MAX_WIDTH)) {
    throw new RangeError(`${where}: dataFragments must be 'auto' or an integer from 1 to ${MAX_WIDTH}, got ${String(dataFragments)}`)
  }
}

/**
 * The one placement policy of a running host: how many lost hosts its chunks tolerate, the k/m
 * rule, and the hosts placement ranks. The network (placing new chunks), the survey's plan and
 * the repairer all read it, so they never disagree on a default.
 */
export interface PlacementPolicy {
  /** Lost hosts tolerated by new chunks (m), and copies - 1 wanted of replicated chunks. */
  readonly redundancy: number
  /** The bound on data fragments (k) of new chunks: a number or 'auto' (erasureParams). */
  readonly dataFragments: DataFragments
  /**
   * The hosts placement ranks, this one included: the membership's members (failure.ts: live
   * and suspect hosts, less those draining or full).
   */
  members: () => string[]
  /** Erasure parameters of a new chunk when `takers` hosts (this one included) can take fragments now. */
  params: (takers: number) => ErasureParams
  /** Hosts that must hold a replicated chunk of parity `m` among `members` members (replicaCount). */
  copies: (m: number, members: number) => number
  /**
   * The `n` members that hold chunk `ref`'s fragments, ranked (fragment j on the one ranked j,
   * assignment.ts), by the rule its ref names (see the header): one function for placement,
   * the survey's plan, repair, rebalance and reads, so they never disagree.
   */
  rank: (ref: Pick<ChunkRef, 'cid' | 'rule'>, members: string[], n: number) => string[]
}

export interface PlacementComponents {
  /** The hosts placement ranks (Membership.members()). */
  members: () => string[]
  /**
   * The capacity class a member signed into its record (net/members.ts MemberTable
   * capacityClass); undefined when it told none. None given: every member weighs the same.
   */
  capacityClass?: (peer: string) => number | undefined
}

/**
 * rank() of a PlacementPolicy: `ref`'s holders among `members` under its rule, weights from
 * `classOf` (balanced chunks). Pure; the policy memoizes the weights of one member list.
 */
export function rankByRule (ref: Pick<ChunkRef, 'cid' | 'rule'>, members: string[], n: number, weights: () => ReadonlyMap<string, number>): string[] {
  if (ref.cid === null) return []
  if (ref.rule === PLACEMENT_BALANCED) return balancedTargets(ref.cid.bytes, members, weights(), n)
  return targets(ref.cid.bytes, members, n)
}

export interface PlacementInit {
  /** Lost hosts tolerated (`up --redundancy`; default DEFAULT_REDUNDANCY). */
  redundancy?: number
  /** The bound on k (`up --data-fragments`; default MAX_DATA_FRAGMENTS). */
  dataFragments?: DataFragments
}

/** Ranks a policy remembers (chunk, n) among its last member list. */
const RANK_CACHE_ENTRIES = 4096

export function placementPolicy (components: PlacementComponents, init: PlacementInit = {}): PlacementPolicy {
  const redundancy = init.redundancy ?? DEFAULT_REDUNDANCY
  const dataFragments = init.dataFragments ?? MAX_DATA_FRAGMENTS
  checkRedundancy('placementPolicy', redundancy)
  checkDataFragments('placementPolicy', dataFragments)
  const classOf = components.capacityClass ?? (() => undefined)
  // the last member list asked about, prepared (its members' weights from their classes, their
  // Kademlia ids): a pass ranks thousands of chunks among the same members, and a host's reads
  // rank each chunk they touch. Recomputed when a member or a class changes; checked by
  // comparing the lists, not by building a key of them (at 1,000 members a 60 KB string per rank)
  let memo: { members: string[], classes: Array<number | undefined>, prepared: PreparedMembers } | undefined
  const preparedOf = (members: string[]): PreparedMembers => {
    const classes = members.map(p => classOf(p))
    if (memo !== undefined && sameList(memo.members, members) && sameList(memo.classes, classes)) return memo.prepared
    const weights = placementWeights(new Map(members.map((p, i) => [p, classes[i]])))
    memo = { members: [...members], classes, prepared: prepareMembers(members, weights) }
    ranks.clear()
    return memo.prepared
  }
  // recent ranks among that list, by chunk and n: 4 KiB reads touch one chunk many times over
  // (a rank among 1,000 members is O(members) even prepared)
  const ranks = new Map<string, string[]>()
  const rankOf = (ref: Pick<ChunkRef, 'cid' | 'rule'>, members: string[], n: number): string[] => {
    if (ref.cid === null) return []
    const prepared = preparedOf(members)
    const key = `${ref.rule ?? 0}/${n}/${ref.cid.toString()}`
    let ranked = ranks.get(key)
    if (ranked === undefined) {
      ranked = ref.rule === PLACEMENT_BALANCED ? balancedTargetsOf(ref.cid.bytes, prepared, n) : targets(ref.cid.bytes, prepared.all, n)
      if (ranks.size >= RANK_CACHE_ENTRIES) ranks.delete(ranks.keys().next().value as string)
      ranks.set(key, ranked)
    }
    return [...ranked]
  }
  return {
    redundancy,
    dataFragments,
    members: components.members,
    params: takers => erasureParams(takers, redundancy, dataFragments),
    copies: (m, members) => replicaCount(m, redundancy, members),
    rank: rankOf
  }
}

function sameList<T> (a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
