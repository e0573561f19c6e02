// The tree the keeper counts are summed along beyond the full mesh (kept.ts): a trie over the kad
// ids of the members up, KEPT_TREE_BITS bits a level (16 branches). A host's group at depth d is
// the hosts up whose ids share its first d digits; the first host of a group (the smallest id)
// speaks for it. A host is the first of its groups from some depth t on (t: one more than the
// whole digits it shares with the host before it, by id); it sends the sum of its group at depth
// t (itself and what its children sent) to the first of its group at depth t - 1, its parent; the
// first host of all (t = 0) is the root, and its sum is the network's. Each host has one parent,
// one child on average, at most 15 a level below it, and the tree is about log16(hosts) + 1
// levels deep (4 at 1,000 hosts, 5 at 10,000; a binary trie was 2 log2(hosts) deep at worst,
// and each level holds a sum up to keptUpInterval). Every host derives the tree from its member
// table (no message), and a host going down or up moves only the parent of the hosts it was
// first before: the others' parents are unchanged.
import { peerKadId } from '../net/index.ts'

/** Bits of the kad id a level of the tree takes (2^4 = 16 branches). */
export const KEPT_TREE_BITS = 4

/**
 * The sorted ids of one list of hosts up, memoized on the list: the same array (the simulator's)
 * or the same hosts in the same order (membership.up() builds a new array each call): a pass
 * over the list, not a sort, while the hosts up stay the same.
 */
interface Sorted { up: readonly string[], peers: string[], ids: Uint8Array[], index: Map<string, number>, digest: number }
let memo: Sorted | undefined

function sortedOf (up: readonly string[]): Sorted {
  if (memo !== undefined && (memo.up === up || sameList(memo.up, up))) return memo
  const ranked = [...new Set(up)].map(peer => ({ peer, id: peerKadId(peer) }))
  ranked.sort((a, b) => compareIds(a.id, b.id) || (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
  const peers = ranked.map(r => r.peer)
  let digest = peers.length
  for (const r of ranked) digest = (Math.imul(digest ^ ((r.id[0] << 24) | (r.id[1] << 16) | (r.id[2] << 8) | r.id[3]), 0x01000193) >>> 0)
  memo = { up, peers, ids: ranked.map(r => r.id), index: new Map(peers.map((p, i) => [p, i])), digest }
  return memo
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function compareIds (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}

/** Leading bits two ids share. */
function sharedBits (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ^ b[i]
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return a.length * 8
}

/**
 * `peer`'s parent among the hosts `up` (see the header): undefined for the root; null when
 * `peer` is not up.
 */
export function keptParent (up: readonly string[], peer: string): string | undefined | null {
  const s = sortedOf(up)
  const i = s.index.get(peer)
  if (i === undefined) return null
  if (i === 0) return undefined
  const id = s.ids[i]
  const shared = Math.floor(sharedBits(s.ids[i - 1], id) / KEPT_TREE_BITS) * KEPT_TREE_BITS
  // the first host sharing `shared` bits with `peer` (the host before it does): the hosts before
  // it share fewer and fewer
  let lo = 0
  let hi = i - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sharedBits(s.ids[mid], id) >= shared) hi = mid
    else lo = mid + 1
  }
  return s.peers[lo]
}

/** The root among the hosts `up`: the smallest id; undefined when none is up. */
export function keptRoot (up: readonly string[]): string | undefined {
  return sortedOf(up).peers[0]
}

/** A 32-bit digest of the hosts `up` (their ids in order): a host sends its sum again when it changed (kept.ts). */
export function keptUpDigest (up: readonly string[]): number {
  return sortedOf(up).digest
}

/**
 * The hosts up in `peer`'s group (the group it sends the sum of: itself and the hosts after it
 * by id sharing as many digits with it as it shares with its parent, plus one); 0 when `peer` is
 * not up. A parent bounds the hosts a child's sum may claim by it (kept.ts takeSum).
 */
export function keptGroupSize (up: readonly string[], peer: string): number {
  const s = sortedOf(up)
  const i = s.index.get(peer)
  if (i === undefined) return 0
  if (i === 0) return s.peers.length
  const id = s.ids[i]
  const depth = (Math.floor(sharedBits(s.ids[i - 1], id) / KEPT_TREE_BITS) + 1) * KEPT_TREE_BITS
  // the hosts after it sharing `depth` bits: a run, which ends where one shares fewer
  let lo = i
  let hi = s.peers.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (sharedBits(s.ids[mid], id) >= depth) lo = mid
    else hi = mid - 1
  }
  return lo - i + 1
}
