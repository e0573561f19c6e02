// The Kademlia key space shared with libp2p's kad-dht (DESIGN.md §3), as pure functions: a
// peer's kad id is sha256(the multihash bytes of its peer id), a key's is sha256(key), and peers
// rank by XOR distance from a key. Placement (keeper/placement.ts) and the host's DHT fallback
// (host.ts) rank with the same functions, so they always agree.
import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'

/**
 * Peer id -> kad id memo bound. Placement ranks every member for every chunk, so the memo must
 * hold the whole member table: with 4,096 entries and 10,000 members each ranking recomputed
 * every kad id (about 0.8 s per call, found by `npm run sim`). 32,768 entries (a peer id string
 * and 32 bytes each: a few MB) cover a 10,000-host network with its churn.
 */
export const KAD_ID_CACHE_ENTRIES = 1 << 15

const kadIds = new Map<string, Uint8Array>()

/** The kad-dht id of a peer: sha256 of its peer id's multihash bytes. Throws on a bad id. */
export function peerKadId (peer: string): Uint8Array {
  let id = kadIds.get(peer)
  if (id === undefined) {
    let bytes: Uint8Array
    try {
      bytes = peerIdFromString(peer).toMultihash().bytes
    } catch (err: any) {
      throw new RangeError(`not a peer id: ${JSON.stringify(peer)} (${err?.message ?? String(err)})`)
    }
    id = sha256(bytes)
    if (kadIds.size >= KAD_ID_CACHE_ENTRIES) kadIds.delete(kadIds.keys().next().value as string)
    kadIds.set(peer, id)
  }
  return id
}

/** The kad-dht id of a key (a CID's bytes, a chunk key): sha256(key). */
export function keyKadId (key: Uint8Array): Uint8Array {
  return sha256(key)
}

/** Compare the XOR distances of a and b from target: < 0 when a is closer. */
export function compareDistance (target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = a[i] ^ target[i]
    const db = b[i] ^ target[i]
    if (da !== db) return da - db
  }
  return 0
}

/**
 * The first `n` distinct peers ranked by XOR distance of their kad ids from sha256(key):
 * deterministic, independent of the order of `peers` and of duplicates in it.
 */
export function targets (key: Uint8Array, peers: Iterable<string>, n: number): string[] {
  return closest(keyKadId(key), peers, n)
}

/**
 * targets() of a key whose kad id is `target` (keyKadId(key)), each peer's kad id from `idOf`
 * (peerKadId by default): for a caller that holds the ids already (the simulator, harness/sim/,
 * which ranks millions of times among peers whose ids it drew).
 */
export function closest (target: Uint8Array, peers: Iterable<string>, n: number, idOf: (peer: string) => Uint8Array = peerKadId): string[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`targets: n must be an integer >= 0, got ${String(n)}`)
  const ranked = [...new Set(peers)].map(peer => ({ peer, id: idOf(peer) }))
  ranked.sort((a, b) => compareDistance(target, a.id, b.id) || (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
  return ranked.slice(0, n).map(r => r.peer)
}

/** The live peer closest to the key: the one that checks and repairs it. undefined when none. */
export function keeper (key: Uint8Array, livePeers: Iterable<string>): string | undefined {
  return targets(key, livePeers, 1)[0]
}

function sha256 (bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest())
}


/**
 * The `n` peers a host keeps connections to in a network larger than its connection bound
 * (issue 14, host.ts): first its ring successor (ringNeighbours()), then the closest peer of each
 * k-bucket (the peers whose kad ids share exactly i leading bits with this host's, for each i,
 * farthest bucket first), then the closest peers left: the XOR neighbourhood, where placement
 * and repair work. The successor comes first because it alone keeps the overlay in one piece at
 * any bound: every member's successor edge together is one cycle through all members. The
 * buckets keep greedy routing short (Kademlia's argument: from any host, the closest peer of the
 * bucket a target id falls in shares a longer prefix with it) but only when the bound holds one
 * per non-empty bucket (about log2(members)); with fewer, "each host's closest peer of its
 * farthest buckets" made a graph whose cycles were separate islands (island34: at bound 3, 4 of
 * 12 hosts connected only to each other, for good).
 * Deterministic, independent of the order of `peers`; `self` is never listed. Each peer's kad id
 * from `idOf` (peerKadId by default; the tests and the simulator draw ids).
 */
export function neighbours (self: string, peers: Iterable<string>, n: number, idOf: (peer: string) => Uint8Array = peerKadId): string[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`neighbours: n must be an integer >= 0, got ${String(n)}`)
  const me = idOf(self)
  const ranked = [...new Set(peers)].filter(p => p !== self).map(peer => ({ peer, id: idOf(peer) }))
  if (n === 0 || ranked.length === 0) return []
  const out = [ringOf(me, ranked, self).successor]
  ranked.sort((a, b) => compareDistance(me, a.id, b.id) || (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
  const buckets = new Map<number, string>()
  for (const r of ranked) {
    const cpl = commonPrefixBits(me, r.id)
    if (!buckets.has(cpl)) buckets.set(cpl, r.peer)
  }
  for (const [, peer] of [...buckets.entries()].sort((a, b) => a[0] - b[0])) {
    if (out.length >= n) break
    if (!out.includes(peer)) out.push(peer)
  }
  for (const r of ranked) {
    if (out.length >= n) break
    if (!out.includes(r.peer)) out.push(r.peer)
  }
  return out
}

/**
 * This host's two ring neighbours among `peers`: the members ordered by kad id (as unsigned
 * numbers, ties by peer id string), the last followed by the first. Its successor is the first
 * of its neighbours() (it wants that connection), its predecessor the one member whose successor
 * it is (the connection the trim keeps for that member, host.ts). undefined when `peers` holds no
 * one but `self`.
 */
export function ringNeighbours (self: string, peers: Iterable<string>, idOf: (peer: string) => Uint8Array = peerKadId): { successor: string, predecessor: string } | undefined {
  const ranked = [...new Set(peers)].filter(p => p !== self).map(peer => ({ peer, id: idOf(peer) }))
  return ranked.length === 0 ? undefined : ringOf(idOf(self), ranked, self)
}

/** Ring order: kad id as an unsigned number, then the peer id string. */
function ringCompare (a: { peer: string, id: Uint8Array }, b: { peer: string, id: Uint8Array }): number {
  for (let i = 0; i < a.id.length; i++) if (a.id[i] !== b.id[i]) return a.id[i] - b.id[i]
  return a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0
}

/** The successor and predecessor of `me` (id; peer id string `self`) on the ring of `ranked` (not empty, `self` left out). */
function ringOf (me: Uint8Array, ranked: ReadonlyArray<{ peer: string, id: Uint8Array }>, self = ''): { successor: string, predecessor: string } {
  const mine = { peer: self, id: me }
  let successor: { peer: string, id: Uint8Array } | undefined
  let predecessor: { peer: string, id: Uint8Array } | undefined
  let lowest = ranked[0]
  let highest = ranked[0]
  for (const r of ranked) {
    if (ringCompare(r, lowest) < 0) lowest = r
    if (ringCompare(r, highest) > 0) highest = r
    if (ringCompare(r, mine) > 0 && (successor === undefined || ringCompare(r, successor) < 0)) successor = r
    if (ringCompare(r, mine) < 0 && (predecessor === undefined || ringCompare(r, predecessor) > 0)) predecessor = r
  }
  return { successor: (successor ?? lowest).peer, predecessor: (predecessor ?? highest).peer }
}

/** Leading bits a and b share. */
function commonPrefixBits (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ^ b[i]
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return a.length * 8
}
