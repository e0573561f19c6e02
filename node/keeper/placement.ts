// Placement policy (DESIGN.md §2, §3), as pure functions over a snapshot of the live peers.
//
// Peers and blocks share the Kademlia key space of libp2p's kad-dht: a peer's kad id is
// sha256(the multihash bytes of its peer id), a key's is sha256(key). Fragment j of a chunk goes
// to the peer ranked j by XOR distance from the chunk's kad id; the closest live peer is the
// chunk's keeper (it checks and repairs the chunk's fragments).
export { keyKadId, peerKadId, compareDistance, targets, keeper, KAD_ID_CACHE_ENTRIES } from '../net/index.ts'

/** Most data fragments per chunk (k <= MAX_DATA_FRAGMENTS). */
export const MAX_DATA_FRAGMENTS = 4
/** Lost hosts tolerated by default (m). */
export const DEFAULT_REDUNDANCY = 2
/** Fewest data fragments worth erasure coding; below it, plain replication (k = 1). */
export const MIN_CODED_DATA_FRAGMENTS = 2

export interface ErasureParams { k: number, m: number }

/**
 * The erasure parameters for a network of `liveHosts` live hosts (including this one).
 *
 * m = redundancy lost hosts tolerated, k = min(4, live - m) data fragments, so k + m never
 * exceeds the hosts there are to hold them. When that leaves fewer than 2 data fragments the
 * chunk is replicated instead: k = 1 and m = min(redundancy, live - 1), i.e. m + 1 copies, one
 * per host. A single host keeps one copy (k = 1, m = 0): nothing to spread to yet.
 *
 *   live:  1    2    3    4    5    6+
 *   k+m:  1+0  1+1  1+2  2+2  3+2  4+2     (redundancy 2)
 */
export function erasureParams (liveHosts: number, redundancy: number): ErasureParams {
  if (!Number.isSafeInteger(liveHosts) || liveHosts < 1) {
    throw new RangeError(`erasureParams: liveHosts must be an integer >= 1 (this host counts), got ${String(liveHosts)}`)
  }
  checkRedundancy('erasureParams', redundancy)
  const k = Math.min(MAX_DATA_FRAGMENTS, liveHosts - redundancy)
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

/**
 * The one placement policy of a running host: how many lost hosts its chunks tolerate, the k/m
 * rule, and the hosts placement ranks. The network (placing new chunks), the survey's plan and
 * the repairer all read it, so they never disagree on a default.
 */
export interface PlacementPolicy {
  /** Lost hosts tolerated by new chunks (m), and copies - 1 wanted of replicated chunks. */
  readonly redundancy: number
  /**
   * The hosts placement ranks, this one included: the membership's members (failure.ts: live
   * and suspect hosts, less those draining or full).
   */
  members: () => string[]
  /** Erasure parameters of a new chunk when `takers` hosts (this one included) can take fragments now. */
  params: (takers: number) => ErasureParams
  /** Hosts that must hold a replicated chunk of parity `m` among `members` members (replicaCount). */
  copies: (m: number, members: number) => number
}

export interface PlacementComponents {
  /** The hosts placement ranks (Membership.members()). */
  members: () => string[]
}

export interface PlacementInit {
  /** Lost hosts tolerated (`up --redundancy`; default DEFAULT_REDUNDANCY). */
  redundancy?: number
}

export function placementPolicy (components: PlacementComponents, init: PlacementInit = {}): PlacementPolicy {
  const redundancy = init.redundancy ?? DEFAULT_REDUNDANCY
  checkRedundancy('placementPolicy', redundancy)
  return {
    redundancy,
    members: components.members,
    params: takers => erasureParams(takers, redundancy),
    copies: (m, members) => replicaCount(m, redundancy, members)
  }
}
