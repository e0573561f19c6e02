// A bounded LRU of decoded chunks, keyed by chunk CID. Bound: bytes, not entries.

/** Default bound of the chunk cache: 128 MiB. */
export const DEFAULT_CACHE_BYTES = 128 << 20

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
