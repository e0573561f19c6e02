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
