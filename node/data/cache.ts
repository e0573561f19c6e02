// A bounded LRU of decoded chunks, keyed by chunk CID. Bound: bytes, not entries.
import { totalmem } from 'node:os'
import { constrainedMemory } from 'node:process'

/**
 * The memory this process may use: the machine's RAM, or less where a cgroup (a container's
 * limit) bounds it. process.constrainedMemory() is 0 where there is no limit and may be larger than
 * the RAM (cgroup v2's "max").
 */
export function machineMemory (): number {
  const limit = constrainedMemory()
  const ram = totalmem()
  return limit > 0 && limit < ram ? limit : ram
}

/** Default bound of the chunk cache: 128 MiB (a host's, on a machine of 2 GiB of RAM or more: defaultCacheBytes). */
export const DEFAULT_CACHE_BYTES = 128 << 20

/** The least a host's default bound is: 32 MiB (a machine of 512 MiB of RAM or less). */
export const MIN_DEFAULT_CACHE_BYTES = 32 << 20

/** The share of the machine's RAM a host's default bound keeps under: a sixteenth. */
export const CACHE_RAM_SHARE = 16

/**
 * The chunk cache's bound of a host when `--cache` is not given: DEFAULT_CACHE_BYTES where that
 * is within a sixteenth of the machine's RAM (2 GiB or more), else that sixteenth, whole MiB, at
 * least MIN_DEFAULT_CACHE_BYTES. Not more on larger machines: a chunk read from this host's disk
 * stays in the kernel's page cache anyway (its data fragments' files), so the cache saves a
 * decode or a fetch from peers, and nothing measured says 128 MiB is short for that; a cache
 * taking memory from everything else on the machine should be asked for (`--cache`). Less on
 * small ones: with the shard pool and the leaves a host held ~160 MiB whatever its RAM.
 */
export function defaultCacheBytes (ramBytes: number = machineMemory()): number {
  const share = Math.floor(ramBytes / CACHE_RAM_SHARE / (1 << 20)) * (1 << 20)
  return Math.min(DEFAULT_CACHE_BYTES, Math.max(MIN_DEFAULT_CACHE_BYTES, share))
}

export class ChunkCache {
  private readonly map = new Map<string, Uint8Array>()
  private bytes = 0
  readonly maxBytes: number

  constructor (maxBytes = DEFAULT_CACHE_BYTES) {
    this.maxBytes = maxBytes
  }

  get (key: string): Uint8Array | undefined {
    const v = this.map.get(key)
    if (v !== undefined) {
      this.map.delete(key)
      this.map.set(key, v)
    }
    return v
  }

  set (key: string, value: Uint8Array): void {
    if (value.byteLength > this.maxBytes) return
    const old = this.map.get(key)
    if (old !== undefined) {
      this.bytes -= old.byteLength
      this.map.delete(key)
    }
    this.map.set(key, value)
    this.bytes += value.byteLength
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break
      this.map.delete(k)
      this.bytes -= v.byteLength
    }
  }

  delete (key: string): void {
    const old = this.map.get(key)
    if (old === undefined) return
    this.bytes -= old.byteLength
    this.map.delete(key)
  }

  get size (): number { return this.bytes }

  clear (): void {
    this.map.clear()
    this.bytes = 0
  }
}

/**
 * A bounded LRU of fragment leaves (ChunkService.readRange's leaf cache), each copied into a slot
 * of a few large buffers of the cache's own, reused as leaves come and go (issue 15, gc44). A leaf
 * kept as its own buffer (or a view of the one it was received in) lives for about as long as the
 * cache takes to turn over (~1,000 reads), long enough for V8 to move it to the old generation,
 * where only a full mark-compact frees it: at ~1,000 random 4 KiB reads a second, 16 MiB a second
 * of external memory dying old, which started most of the six-host randread cell's full
 * collections. Copied into a slot, the received buffer dies young (a scavenge frees it) and the
 * slots live as long as the cache. Slots are made in slabs of SLAB_LEAVES as needed.
 *
 * get() returns a VIEW of a slot, valid until the next set() or clear(): a caller copies what it
 * keeps (or hands on) before it awaits anything.
 */
export class LeafCache {
  /** Slot of each leaf, least recently used first. */
  private readonly slots = new Map<string, number>()
  /** Bytes of the leaf in each slot (a fragment's last leaf may be short). */
  private readonly lengths: Uint32Array
  private slabs: Uint8Array[] = []
  /** Slots given back (delete), to be taken before new ones. */
  private free: number[] = []
  /** Slots made so far (in slabs). */
  private made = 0
  private bytes = 0
  readonly leafBytes: number
  readonly maxLeaves: number

  /** Leaves per slab (a slab is made when every slot made is taken and the bound allows more). */
  static readonly SLAB_LEAVES = 64

  constructor (maxBytes: number, leafBytes: number) {
    this.leafBytes = leafBytes
    this.maxLeaves = Math.floor(maxBytes / leafBytes)
    this.lengths = new Uint32Array(this.maxLeaves)
  }

  /** A view of the leaf kept under `key` (valid until the next set() or clear(): copy it before awaiting). */
  get (key: string): Uint8Array | undefined {
    const slot = this.slots.get(key)
    if (slot === undefined) return undefined
    this.slots.delete(key)
    this.slots.set(key, slot)
    return this.view(slot)
  }

  /** Keep a copy of `leaf` (at most leafBytes) under `key`, forgetting the least recently used leaf when full. */
  set (key: string, leaf: Uint8Array): void {
    if (leaf.byteLength > this.leafBytes || this.maxLeaves === 0) return
    let slot = this.slots.get(key)
    if (slot !== undefined) {
      this.slots.delete(key)
      this.bytes -= this.lengths[slot]
    } else slot = this.take()
    this.slots.set(key, slot)
    this.lengths[slot] = leaf.byteLength
    this.bytes += leaf.byteLength
    this.slabs[Math.floor(slot / LeafCache.SLAB_LEAVES)].set(leaf, (slot % LeafCache.SLAB_LEAVES) * this.leafBytes)
  }

  delete (key: string): void {
    const slot = this.slots.get(key)
    if (slot === undefined) return
    this.slots.delete(key)
    this.bytes -= this.lengths[slot]
    this.free.push(slot)
  }

  /** Bytes of the leaves kept. */
  get size (): number { return this.bytes }

  /** Leaves kept. */
  get count (): number { return this.slots.size }

  /** The buffers the slots are in (tests: what the cache keeps alive). */
  buffers (): ArrayBuffer[] { return this.slabs.map(s => s.buffer as ArrayBuffer) }

  /** Forget every leaf, and the slabs (a cold read starts without them). */
  clear (): void {
    this.slots.clear()
    this.slabs = []
    this.free = []
    this.made = 0
    this.bytes = 0
  }

  /** A slot for a new leaf: a free one, a new one while under the bound, else the least recently used leaf's. */
  private take (): number {
    const free = this.free.pop()
    if (free !== undefined) return free
    if (this.made < this.maxLeaves) {
      if (this.made % LeafCache.SLAB_LEAVES === 0) {
        const leaves = Math.min(LeafCache.SLAB_LEAVES, this.maxLeaves - this.made)
        // a plain Uint8Array (not a Buffer: its slice() would be a view, not a copy)
        this.slabs.push(new Uint8Array(leaves * this.leafBytes))
      }
      return this.made++
    }
    const [key, slot] = this.slots.entries().next().value as [string, number]
    this.slots.delete(key)
    this.bytes -= this.lengths[slot]
    return slot
  }

  private view (slot: number): Uint8Array {
    const at = (slot % LeafCache.SLAB_LEAVES) * this.leafBytes
    return this.slabs[Math.floor(slot / LeafCache.SLAB_LEAVES)].subarray(at, at + this.lengths[slot])
  }
}
