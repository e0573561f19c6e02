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
 * (issue 14, host.ts): first the closest peer of each k-bucket (the peers whose kad ids share
 * exactly i leading bits with this host's, for each i, farthest bucket first), which keeps the
 * network connected (Kademlia's argument: from any host, the closest peer of the bucket a target
 * id falls in shares a longer prefix with it, so greedy routing always finds a next hop), then
 * the closest peers left: the XOR neighbourhood, where placement and repair work.
 * Deterministic, independent of the order of `peers`; `self` is never listed.
 */
export function neighbours (self: string, peers: Iterable<string>, n: number): string[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`neighbours: n must be an integer >= 0, got ${String(n)}`)
  const me = peerKadId(self)
  const ranked = [...new Set(peers)].filter(p => p !== self).map(peer => ({ peer, id: peerKadId(peer) }))
  ranked.sort((a, b) => compareDistance(me, a.id, b.id) || (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
  const buckets = new Map<number, string>()
  for (const r of ranked) {
    const cpl = commonPrefixBits(me, r.id)
    if (!buckets.has(cpl)) buckets.set(cpl, r.peer)
  }
  const out = [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(e => e[1]).slice(0, n)
  for (const r of ranked) {
    if (out.length >= n) break
    if (!out.includes(r.peer)) out.push(r.peer)
  }
  return out
}

/** Leading bits a and b share. */
function commonPrefixBits (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ^ b[i]
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return a.length * 8
}
