// The Kademlia key space of a simulated network, fast: the members' kad ids sorted, and the
// set of the `need` XOR-closest members of a key found by walking the implicit binary trie with
// binary searches (O(log N) per key) instead of sorting every member per key as
// node/net/kad.ts targets() does. It returns the same set as targets() (the simulator checks it
// on sampled keys against the real function, sim/placement.ts), in no particular order:
// placement's load figures need who holds a chunk, not in which rank.
import { compareDistance } from '../../node/keeper/index.ts'

/** The top 48 bits of a kad id, as an exact integer in a double. */
export function top48 (id: Uint8Array): number {
  return ((id[0] * 256 + id[1]) * 256 + id[2]) * 2 ** 24 + ((id[3] * 256 + id[4]) * 256 + id[5])
}

export class KeySpace {
  /** Member index (into the ids given) at each sorted position. */
  private readonly order: number[]
  /** Top 48 bits of each sorted position's kad id. */
  private readonly tops: Float64Array
  private readonly ids: Uint8Array[]

  /** `members`: indexes into `ids` of the members of the network. */
  constructor (ids: Uint8Array[], members: number[]) {
    this.ids = ids
    this.order = [...members].sort((a, b) => compareDistance(new Uint8Array(ids[a].length), ids[a], ids[b]))
    this.tops = Float64Array.from(this.order, i => top48(ids[i]))
  }

  get size (): number { return this.order.length }

  /** Pushes onto `out` the member indexes of the `need` members closest to `keyId` by XOR. */
  nearest (keyId: Uint8Array, need: number, out: number[] = []): number[] {
    this.walk(keyId, top48(keyId), 0, this.order.length, 0, Math.min(need, this.order.length), out)
    return out
  }

  private walk (keyId: Uint8Array, key: number, start: number, end: number, depth: number, need: number, out: number[]): void {
    if (need <= 0) return
    if (end - start <= need) {
      for (let p = start; p < end; p++) out.push(this.order[p])
      return
    }
    if (depth >= 48) {
      // members sharing 48 leading bits: rank them exactly
      const rest = this.order.slice(start, end).sort((a, b) => compareDistance(keyId, this.ids[a], this.ids[b]))
      for (let p = 0; p < need; p++) out.push(rest[p])
      return
    }
    const span = 2 ** (48 - depth)
    const half = span / 2
    const base = Math.floor(this.tops[start] / span) * span
    const mid = this.lowerBound(base + half, start, end)
    const keyBit = Math.floor(key / half) % 2
    const [ns, ne, fs, fe] = keyBit === 0 ? [start, mid, mid, end] : [mid, end, start, mid]
    if (ne - ns >= need) { this.walk(keyId, key, ns, ne, depth + 1, need, out); return }
    for (let p = ns; p < ne; p++) out.push(this.order[p])
    this.walk(keyId, key, fs, fe, depth + 1, need - (ne - ns), out)
  }

  private lowerBound (x: number, lo: number, hi: number): number {
    while (lo < hi) {
      const m = (lo + hi) >> 1
      if (this.tops[m] < x) lo = m + 1
      else hi = m
    }
    return lo
  }
}
