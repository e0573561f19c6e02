// Capacity-aware placement (issue 14 item 4), as pure functions: weighted rendezvous hashing
// (highest random weight) over the members nearest a chunk's key in Kademlia's key space.
//
// Plain XOR placement (placement.ts targets) gives a host the share of key space in front of
// its kad id: uneven (`npm run sim`: the busiest of 1,000 equal hosts holds 2.3x an even share)
// and blind to disk size. Here the `neighbourhood` XOR-closest members of the chunk's key are the
// candidates, and each scores
//
//   score = w / -ln(u),   u = h(key, peer) uniform in (0, 1)
//
// The n highest scores hold the chunk's n fragments. For one key, the host with the highest
// score is host i with probability w_i / sum(w) (the exponential race), so a host's load follows
// its weight; a candidate that joins takes only the places it wins, one that leaves gives up only
// its own (test/node/balance.test.ts).
//
// The neighbourhood is every member by default: the sim shows that any smaller one leaves a
// host's load following how often it falls in neighbourhoods (the gaps in key space again,
// averaged over the neighbourhood: max/ideal 1.45 with 16(k+m) candidates, 1.24 with 64(k+m), at
// 1,000 hosts), and that a member joining or leaving then also moves about one average host's
// share besides its own (it enters or leaves neighbourhoods at their edge). Over every member:
// max/ideal 1.13 with a sampling-noise floor of 1.09, and joining or leaving moves exactly the
// host's own share. Without the sampling noise (expected loads, computed exactly:
// harness/sim/inclusion.ts) max/ideal is 1.060: the rule itself 1.005 (a host holds at most one
// fragment of a chunk, so the heaviest hold slightly less than their weight's share: 0.991 for
// 8 TB among 1,000 hosts of 0.25-8 TB), the classes' rounding 1.044, the 8x cap 1.012. At 10,000 hosts 256(k+m) = 1,536 candidates come within 1.4% (stddev) of
// every member's balance, should a bound on the cost be wanted there (the edge moves stay).
// The cost is a hash per member per chunk placed or planned (~0.1 us each),
// which the full membership table (issue 14 item 3) makes possible; the keeper of a chunk stays
// its XOR-closest member (placement.ts keeper), and the DHT keeps the key space.
//
// Weights must be the same on every host, or hosts disagree on who holds what. So a weight comes
// from a value every host sees and that rarely changes: the capacity class a host signs into its
// member record (net/members.ts `cap`; the daemon takes it from its disk's size, or
// `capacityBytes`), spread with the record to every member, not the space notices'
// disk.total (net/space-notice.ts), which reach only connected peers. Sizes are quantized into
// classes of 1/8 of a doubling (a disk's class moves only when its size moves by ~9%; a class
// is within 4.5% of the size). A host that told none (an older record) weighs as the median.
// Hosts place by this rule the chunks whose ref names it (ChunkRef.rule, placement.ts rank):
// every chunk written since; older chunks keep the XOR rule and stay where they are. The weight is capped at 8x the median class's
// (WEIGHT_CAP_CLASSES above it): a host announcing a huge disk attracts at most 8 median
// shares (0.8% of the fragments of a 1,000-host network), and never more than one fragment of
// any chunk (rendezvous picks distinct hosts), so a liar holds at most one of a chunk's k + m
// fragments (m >= 1 covers it) and cannot make others hold its share. 8x, not less: real disks
// of one network span 250 GB to 8 TB around a median of 1-2 TB, and a cap at 4x left the 8 TB
// disks half used and loaded everyone else 7% above their share (the sim measured it). The
// median is of integer classes, so it moves only when the network's mix of disks does.
//
// u is a hash of the key's and the peer's kad ids (their last 8 bytes: the XOR neighbourhood is
// chosen by the leading bits, so the trailing ones are independent of it). It is a fast mixing
// function, not a cryptographic one: placement is no secret, and a host grinding peer ids to
// land near a key can do so under any rule (the cap bounds what it gains).
import { keyKadId, peerKadId, targets } from '../net/index.ts'

/** Capacity classes per doubling of disk size. */
export const CAPACITY_CLASS_STEPS = 8
/** The unit of capacity classes: class 0 is a disk of 1 GiB (or less). */
export const CAPACITY_UNIT_BYTES = 2 ** 30
/** The highest weight, in classes above the median class: 3 doublings (8x the median's weight). */
export const WEIGHT_CAP_CLASSES = 3 * CAPACITY_CLASS_STEPS

/** The class of a disk of `totalBytes`: round(8 log2(size / 1 GiB)), 0 for 1 GiB or less. */
export function capacityClass (totalBytes: number): number {
  if (!(Number.isFinite(totalBytes) && totalBytes >= 0)) throw new RangeError(`capacityClass: a disk size in bytes, got ${String(totalBytes)}`)
  if (totalBytes <= CAPACITY_UNIT_BYTES) return 0
  return Math.round(CAPACITY_CLASS_STEPS * Math.log2(totalBytes / CAPACITY_UNIT_BYTES))
}

/** The weight of a class: 2^(class / 8), i.e. the class's disk size in GiB. */
export function classWeight (cls: number): number {
  return 2 ** (cls / CAPACITY_CLASS_STEPS)
}

/**
 * The placement weight of each member from the classes they announced (undefined: none told):
 * a member that told none weighs as the median class, and no weight exceeds the median's by
 * more than WEIGHT_CAP_CLASSES. Same classes, same weights, on every host.
 */
export function placementWeights (classes: ReadonlyMap<string, number | undefined>): Map<string, number> {
  const told = [...classes.values()].filter((c): c is number => c !== undefined).sort((a, b) => a - b)
  // the lower median of integer classes: no averaging, so it is itself a class
  const median = told.length === 0 ? 0 : told[(told.length - 1) >> 1]
  const cap = median + WEIGHT_CAP_CLASSES
  const out = new Map<string, number>()
  for (const [peer, c] of classes) out.set(peer, classWeight(Math.min(c ?? median, cap)))
  return out
}

/** u in (0, 1) for a key and a peer, from the last 8 bytes of their kad ids (see the header). */
export function rendezvousHash (keyId: Uint8Array, peerId: Uint8Array): number {
  return mix(word(keyId, keyId.length - 8), word(keyId, keyId.length - 4), word(peerId, peerId.length - 8), word(peerId, peerId.length - 4))
}

function mix (k0: number, k1: number, p0: number, p1: number): number {
  const h1 = fmix(k0 ^ fmix(p0 ^ fmix(k1 ^ fmix(p1 ^ 0x9e3779b9))))
  const h2 = fmix(k1 ^ fmix(p1 ^ fmix(k0 ^ fmix(p0 ^ 0x85ebca6b))))
  // 53 bits, and never 0 nor 1
  return (h1 * 2 ** 21 + (h2 >>> 11) + 0.5) / 2 ** 53
}

function word (b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0
}

/** murmur3's 32-bit finalizer. */
function fmix (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A candidate's rendezvous score for a key: weight / -ln(u). Higher wins; weight 0 never does. */
export function rendezvousScore (keyId: Uint8Array, peerId: Uint8Array, weight: number): number {
  return weight / -Math.log(rendezvousHash(keyId, peerId))
}

export interface Candidate { id: Uint8Array, weight: number }

interface Ranked { i: number, s: number, id: Uint8Array }

/** Whether score `s` of kad id `id` ranks above `r`. */
function above (s: number, id: Uint8Array, r: Ranked): boolean {
  if (s !== r.s) return s > r.s
  for (let b = 0; b < id.length; b++) if (id[b] !== r.id[b]) return id[b] < r.id[b]
  return false
}

/**
 * Indexes into `candidates` of the `n` highest rendezvous scores for `keyId`, highest first
 * (ties, which need equal 53-bit hashes, by the lower kad id: the same whatever the candidates'
 * order). Candidates of weight <= 0 are never picked.
 */
export function rendezvous (keyId: Uint8Array, candidates: readonly Candidate[], n: number): number[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`rendezvous: n must be an integer >= 0, got ${String(n)}`)
  // insertion into a short sorted list: n is k + m, a handful
  const best: Ranked[] = []
  if (n === 0) return []
  // the key's words once (rendezvousScore() for each candidate, without reading them again)
  const k0 = word(keyId, keyId.length - 8)
  const k1 = word(keyId, keyId.length - 4)
  for (let i = 0; i < candidates.length; i++) {
    const { id, weight } = candidates[i]
    if (!(weight > 0)) continue
    const s = weight / -Math.log(mix(k0, k1, word(id, id.length - 8), word(id, id.length - 4)))
    if (best.length === n && !above(s, id, best[n - 1])) continue
    let at = best.length
    while (at > 0 && above(s, id, best[at - 1])) at--
    best.splice(at, 0, { i, s, id })
    if (best.length > n) best.pop()
  }
  return best.map(b => b.i)
}

/**
 * The `n` members that hold a chunk of key `key` under weighted rendezvous: the highest scores
 * among the `neighbourhood` XOR-closest members (default: every member), highest first.
 * `weights`: placementWeights() of the members; a member without one weighs 1.
 */
export function balancedTargets (key: Uint8Array, members: Iterable<string>, weights: ReadonlyMap<string, number>, n: number, neighbourhood = Infinity): string[] {
  const all = [...new Set(members)]
  const near = neighbourhood >= all.length ? all : targets(key, all, Math.max(n, neighbourhood))
  return balancedTargetsOf(key, prepareMembers(near, weights), n)
}

/**
 * A member list made ready for many balancedTargets() calls among the same members: each
 * member's Kademlia id and weight found once (a repair pass or a host's reads rank thousands of
 * chunks among one list; at 1,000 members preparing it was about 2 ms of each rank).
 */
export interface PreparedMembers {
  /** The members, each once, in the order first given. */
  readonly all: readonly string[]
  readonly candidates: readonly Candidate[]
}

export function prepareMembers (members: Iterable<string>, weights: ReadonlyMap<string, number>): PreparedMembers {
  const all = [...new Set(members)]
  return { all, candidates: all.map(p => ({ id: peerKadId(p), weight: weights.get(p) ?? 1 })) }
}

/** balancedTargets(key, members, weights, n) over prepareMembers(members, weights): the same hosts in the same order. */
export function balancedTargetsOf (key: Uint8Array, prepared: PreparedMembers, n: number): string[] {
  return rendezvous(keyKadId(key), prepared.candidates, n).map(i => prepared.all[i])
}
