// Which blocks the store may hold, in memory (store.ts): a filter that answers "not here" with
// no file-system call. A survey asks every host about every fragment of the chunks its keepers
// check, and most of them are not there (a host holds one fragment of a chunk's k + m): each of
// those was an access() that failed, an exception built on the main thread behind the thread
// pool's queue, which made have-queries the largest cost of a repair pass after the transport.
//
// A Bloom filter of the blocks' sha256 digests (uniform bits already: no hashing of our own),
// PRESENT_BITS_PER_BLOCK bits and PRESENT_PROBES probes per block (~0.3% false "maybe here",
// which the caller checks on disk as before). Never a false "not here": every block the walk
// found and every block stored since is in it. A deleted block stays in it (a "maybe" answered
// by the disk), so it only grows; when it holds more blocks than it was sized for, a new one of
// twice the size takes the new blocks (a scalable Bloom filter): memory stays ~2 bytes a block.

/** Bits per block (the false-positive rate is ~0.3% with PRESENT_PROBES). */
export const PRESENT_BITS_PER_BLOCK = 16
/** Probes per block, each 32 bits of the digest. */
export const PRESENT_PROBES = 4
/** Blocks the first filter is sized for when the store holds fewer. */
export const PRESENT_MIN_BLOCKS = 1 << 16

interface Layer { bits: Uint32Array, size: number, capacity: number, count: number }

export class PresentFilter {
  private readonly layers: Layer[] = []

  constructor (blocks: number = 0) {
    this.grow(Math.max(PRESENT_MIN_BLOCKS, 2 * blocks))
  }

  private grow (capacity: number): void {
    const size = capacity * PRESENT_BITS_PER_BLOCK
    this.layers.push({ bits: new Uint32Array(Math.ceil(size / 32)), size, capacity, count: 0 })
  }

  /** Record a block by its digest (at least 16 bytes: the store gives sha256 digests only). */
  add (digest: Uint8Array): void {
    let top = this.layers[this.layers.length - 1]
    if (top.count >= top.capacity) {
      this.grow(top.capacity * 2)
      top = this.layers[this.layers.length - 1]
    }
    for (let i = 0; i < PRESENT_PROBES; i++) {
      const at = probe(digest, i, top.size)
      top.bits[at >>> 5] |= 1 << (at & 31)
    }
    top.count++
  }

  /** False only when the block was never added. */
  mayHave (digest: Uint8Array): boolean {
    for (const l of this.layers) {
      let all = true
      for (let i = 0; i < PRESENT_PROBES && all; i++) {
        const at = probe(digest, i, l.size)
        all = (l.bits[at >>> 5] & (1 << (at & 31))) !== 0
      }
      if (all) return true
    }
    return false
  }
}

/** Probe i's bit position below `size`: the digest's i-th 32-bit word. */
function probe (digest: Uint8Array, i: number, size: number): number {
  const w = ((digest[i * 4] << 24) | (digest[i * 4 + 1] << 16) | (digest[i * 4 + 2] << 8) | digest[i * 4 + 3]) >>> 0
  return w % size
}
