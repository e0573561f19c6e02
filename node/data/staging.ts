// Fragments written here and not yet placed (DESIGN.md §4, §5): a write stores each fragment
// durably (store.ts) and keeps it in memory until its chunk is placed, so placement pushes it
// (and relays pull it, through the swarm's block source) without reading it back from disk.
// Bounded by bytes: the oldest staged chunk is forgotten first, and whatever is not staged is
// read from the store as before. Content-addressed and encoded here, so a staged block is the
// stored block, verified by construction.
import type { CID } from 'multiformats/cid'

/** Bytes of fragments kept in memory for placement (64 MiB: 42 chunks of 4+2 at 1 MiB). */
export const STAGED_BYTES_MAX = 64 * 1024 * 1024

export class Staging {
  private readonly max: number
  /** fragment CID -> bytes and how many staged chunks name it (equal fragments are one block) */
  private readonly blocks = new Map<string, { bytes: Uint8Array, refs: number }>()
  /** staged chunks, oldest first, with their fragments */
  private readonly chunks = new Map<string, string[]>()
  private bytes = 0

  constructor (maxBytes: number = STAGED_BYTES_MAX) {
    this.max = maxBytes
  }

  /** Keep a chunk's fragments until release(chunk); forgets the oldest chunks past the bound. */
  stage (chunk: string, blocks: Array<{ cid: CID, bytes: Uint8Array }>): void {
    if (this.chunks.has(chunk)) return
    const keys: string[] = []
    for (const b of blocks) {
      const key = b.cid.toString()
      const held = this.blocks.get(key)
      if (held !== undefined) held.refs++
      else {
        this.blocks.set(key, { bytes: b.bytes, refs: 1 })
        this.bytes += b.bytes.byteLength
      }
      keys.push(key)
    }
    this.chunks.set(chunk, keys)
    while (this.bytes > this.max && this.chunks.size > 0) this.release(this.chunks.keys().next().value!)
  }

  /** A staged fragment's bytes, or undefined (then it is in the store). */
  get (cid: CID | string): Uint8Array | undefined {
    return this.blocks.get(cid.toString())?.bytes
  }

  /** Forget a chunk's fragments (placed, or given up): they stay in the store. */
  release (chunk: string): void {
    const keys = this.chunks.get(chunk)
    if (keys === undefined) return
    this.chunks.delete(chunk)
    for (const key of keys) {
      const held = this.blocks.get(key)!
      if (--held.refs === 0) {
        this.blocks.delete(key)
        this.bytes -= held.bytes.byteLength
      }
    }
  }

  /** Bytes held now. */
  size (): number {
    return this.bytes
  }
}
