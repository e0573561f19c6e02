// Which blocks the store holds, in memory (store.ts): an exact index that answers has() with no
// file-system call. A repair pass asks every host about every fragment of the chunks it checks
// (survey.ts), and each answer was an access() on libuv's thread pool, and for a block not there
// an exception built on the main thread: on six hosts extracting /usr/include, have-queries'
// disk checks were ~16% of the CPU (store.has 33 s of 371 s). A Bloom filter (this file before)
// answered only "not here" from memory; a host holds about half of what it is asked, and every
// one of those still went to the disk.
//
// An open-addressing hash set of the first PRESENT_KEY_BYTES bytes of each block's sha256 digest
// (uniform bits already: no hashing of our own), linear probing, deletion by backward shift (no
// tombstones: a set that shrinks and grows for years stays as fast as a new one). 16 bytes a
// slot, at most PRESENT_MAX_LOAD full: ~24-46 bytes a block (a host of a million fragments:
// ~32 MiB). 128 bits of a sha256: two different blocks look alike only by a collision nobody can
// make by chance (and hardly on purpose), so "here" and "not here" are both taken as exact.
//
// It is exact only as long as the store tells it of every block stored, deleted and quarantined,
// which it does (store.ts keeps every change of one block in order); what happens to the files
// behind the store's back (a disk emptied under a running host) is caught by Store.resync() and
// by a read that finds a block's file gone.

/** Bytes of the digest kept per block: 128 bits. */
export const PRESENT_KEY_BYTES = 16
/** Slots the index starts with (a power of two). */
export const PRESENT_MIN_SLOTS = 1 << 12
/** Most blocks per slot before the table doubles. */
export const PRESENT_MAX_LOAD = 0.7

const WORDS = PRESENT_KEY_BYTES / 4

export class PresentIndex {
  /** WORDS words per slot; an all-zero slot is empty (the all-zero key is kept in `zero`). */
  private table: Uint32Array
  private mask: number
  private count = 0
  /** Whether the block whose key is all zeros is here (it cannot be told from an empty slot). */
  private zero = false

  constructor (blocks: number = 0) {
    let slots = PRESENT_MIN_SLOTS
    while (slots * PRESENT_MAX_LOAD < blocks) slots *= 2
    this.table = new Uint32Array(slots * WORDS)
    this.mask = slots - 1
  }

  /** Blocks in the index. */
  get size (): number {
    return this.count + (this.zero ? 1 : 0)
  }

  /** Whether the block with this sha256 digest (at least PRESENT_KEY_BYTES bytes) is here. */
  has (digest: Uint8Array): boolean {
    const k = key(digest)
    if (isZero(k)) return this.zero
    return this.find(k) >= 0
  }

  /** Record a block by its sha256 digest (no effect when it is here already). */
  add (digest: Uint8Array): void {
    const k = key(digest)
    if (isZero(k)) { this.zero = true; return }
    if (this.find(k) >= 0) return
    if ((this.count + 1) > (this.mask + 1) * PRESENT_MAX_LOAD) this.grow()
    this.insert(k)
    this.count++
  }

  /** Forget a block (no effect when it is not here). */
  delete (digest: Uint8Array): void {
    const k = key(digest)
    if (isZero(k)) { this.zero = false; return }
    let i = this.find(k)
    if (i < 0) return
    this.count--
    // backward shift: each entry after the hole that may sit in it (its home is not between the
    // hole and it, cyclically) moves into the hole, until an empty slot
    const t = this.table
    let j = i
    for (;;) {
      j = (j + 1) & this.mask
      if (empty(t, j)) break
      const home = t[j * WORDS] & this.mask
      if (((j - home) & this.mask) >= ((j - i) & this.mask)) {
        t.copyWithin(i * WORDS, j * WORDS, j * WORDS + WORDS)
        i = j
      }
    }
    t.fill(0, i * WORDS, i * WORDS + WORDS)
  }

  /** Slot of the key, or -1. */
  private find (k: Uint32Array): number {
    const t = this.table
    for (let i = k[0] & this.mask; ; i = (i + 1) & this.mask) {
      const at = i * WORDS
      if (t[at] === k[0] && t[at + 1] === k[1] && t[at + 2] === k[2] && t[at + 3] === k[3]) return i
      if (empty(t, i)) return -1
    }
  }

  private insert (k: Uint32Array): void {
    const t = this.table
    let i = k[0] & this.mask
    while (!empty(t, i)) i = (i + 1) & this.mask
    t.set(k, i * WORDS)
  }

  private grow (): void {
    const old = this.table
    this.table = new Uint32Array(old.length * 2)
    this.mask = this.table.length / WORDS - 1
    for (let i = 0; i < old.length; i += WORDS) {
      if (old[i] === 0 && old[i + 1] === 0 && old[i + 2] === 0 && old[i + 3] === 0) continue
      this.insert(old.subarray(i, i + WORDS))
    }
  }
}

const scratch = new Uint32Array(WORDS)

/** The first PRESENT_KEY_BYTES bytes of a digest as words (in a shared scratch array: used at once). */
function key (digest: Uint8Array): Uint32Array {
  if (digest.byteLength < PRESENT_KEY_BYTES) throw new RangeError(`a block digest of ${digest.byteLength} bytes: at least ${PRESENT_KEY_BYTES} expected`)
  for (let w = 0; w < WORDS; w++) {
    const o = w * 4
    scratch[w] = ((digest[o] << 24) | (digest[o + 1] << 16) | (digest[o + 2] << 8) | digest[o + 3]) >>> 0
  }
  return scratch
}

function isZero (k: Uint32Array): boolean {
  return k[0] === 0 && k[1] === 0 && k[2] === 0 && k[3] === 0
}

function empty (t: Uint32Array, i: number): boolean {
  const at = i * WORDS
  return t[at] === 0 && t[at + 1] === 0 && t[at + 2] === 0 && t[at + 3] === 0
}
