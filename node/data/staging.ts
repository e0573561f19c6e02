// Fragments written here and not yet placed (DESIGN.md §4, §5): a write stores its data fragments
// durably (store.ts; its parity only once placement says this host keeps it, keeper/network.ts)
// and keeps every fragment in memory until its chunk is placed, so placement pushes it
// (and relays pull it, through the swarm's block source) without reading it back from disk.
// Bounded by bytes: the oldest staged chunk is forgotten first, and whatever is not staged is
// read from the store as before; but a pinned chunk (a deferred one, on no disk here while it is
// placed: ChunkWrite.chunk `deferred`) is never forgotten for room, only by release() (their
// bytes are bounded by ChunkService: DEFERRED_BYTES_MAX). Content-addressed and encoded here, so a staged block is the
// stored block, verified by construction.
import type { CID } from 'multiformats/cid'
import type { PooledShards } from './erasure.ts'

/** Bytes of fragments kept in memory for placement (64 MiB: 42 chunks of 4+2 at 1 MiB). */
export const STAGED_BYTES_MAX = 64 * 1024 * 1024

/**
 * The holders of one encode's pooled parity (ShardPool, issue 15 item 7): the memory goes back to
 * its pool once the last holder lets go, and never if anyone else may hold the bytes.
 *
 * The rule: pooled memory is recycled only while every reader of it is one that lets go when it
 * is done, and known to be done. The write path's readers are the hashing (over before the lease
 * is made), the put (storeChunk holds the lease until it succeeds), Staging (which holds it
 * while a block with these bytes is staged) and placement's push of a block lent by Staging.lend
 * (held until every target acknowledged it whole). Anything else that is handed the bytes (a staged
 * block given out by Staging.get: the swarm serving a peer; a push that failed; a failed put
 * whose other writes may still run) cannot say when it is done: keep() marks the lease, and the
 * memory is then left to the collector, as a fresh encode's is. So a fragment is never
 * rewritten while anything may still read it; a write path whose parity nobody asks for
 * (placement through a relay, which pulls only data fragments) codes into recycled memory.
 */
export class ShardLease {
  private holders = 1
  private escaped = false
  private readonly shards: PooledShards

  /** A lease of `shards`, held once (by its maker, who lets go with letGo()). */
  constructor (shards: PooledShards) {
    this.shards = shards
  }

  /** One more holder; each hold() is matched by one letGo(). */
  hold (): void {
    if (this.holders === 0) throw new Error('ShardLease: hold() after the last holder let go')
    this.holders++
  }

  /** A holder is done with the bytes; the last one gives the memory back (unless kept). */
  letGo (): void {
    if (this.holders === 0) throw new Error('ShardLease: letGo() without a hold')
    if (--this.holders === 0 && !this.escaped) this.shards.release()
  }

  /** The bytes went where no one lets go: the memory is never handed out again. */
  keep (): void {
    this.escaped = true
  }

  /** Whether keep() was called. */
  get kept (): boolean {
    return this.escaped
  }
}

export class Staging {
  private readonly max: number
  /**
   * fragment CID -> bytes, how many staged chunks name it (equal fragments are one block) and,
   * for pooled bytes, the lease this entry holds (let go when the entry goes)
   */
  private readonly blocks = new Map<string, { bytes: Uint8Array, refs: number, lease?: ShardLease }>()
  /** staged chunks, oldest first, with their fragments */
  private readonly chunks = new Map<string, string[]>()
  /**
   * staged chunks never forgotten for room (stage()'s `pinned`), with how many pins each holds:
   * equal chunks of two writes (or two zero-filled chunks of one) are one entry, each stager's pin
   * its own, and the entry goes with the last unpin() (review43c: the first placement over let go
   * of the other's pinned fragments, on no disk here)
   */
  private readonly pinned = new Map<string, number>()
  private bytes = 0

  constructor (maxBytes: number = STAGED_BYTES_MAX) {
    this.max = maxBytes
  }

  /** The bound in bytes (pinned chunks may hold more: their own bound is their stager's). */
  get maxBytes (): number {
    return this.max
  }

  /**
   * Keep a chunk's fragments until release(chunk); forgets the oldest unpinned chunks past the
   * bound. `lease`: the blocks in `pooled` (by index into `blocks`) are its memory; each block
   * kept from them holds the lease until it leaves (ShardLease). `pinned`: a pin held until
   * unpin(chunk): a pinned chunk is neither forgotten for room nor by release(), and goes with its
   * last unpin() (a chunk on no disk here: its stager bounds such bytes; a chunk staged already
   * takes one more pin).
   */
  stage (chunk: string, blocks: Array<{ cid: CID, bytes: Uint8Array }>, lease?: { lease: ShardLease, pooled: (j: number) => boolean }, pinned = false): void {
    if (this.chunks.has(chunk)) {
      if (pinned) this.pinned.set(chunk, (this.pinned.get(chunk) ?? 0) + 1)
      return
    }
    const keys: string[] = []
    blocks.forEach((b, j) => {
      const key = b.cid.toString()
      const held = this.blocks.get(key)
      if (held !== undefined) held.refs++
      else {
        const mine = lease !== undefined && lease.pooled(j) ? lease.lease : undefined
        mine?.hold()
        this.blocks.set(key, { bytes: b.bytes, refs: 1, ...(mine !== undefined ? { lease: mine } : {}) })
        this.bytes += b.bytes.byteLength
      }
      keys.push(key)
    })
    this.chunks.set(chunk, keys)
    if (pinned) this.pinned.set(chunk, 1)
    while (this.bytes > this.max) {
      const oldest = this.oldestUnpinned()
      if (oldest === undefined) break
      this.release(oldest)
    }
  }

  /** The oldest staged chunk release() may forget for room (pinned ones are few: their stager's bound). */
  private oldestUnpinned (): string | undefined {
    for (const chunk of this.chunks.keys()) if (!this.pinned.has(chunk)) return chunk
    return undefined
  }

  /**
   * A staged fragment's bytes, or undefined (then it is in the store, or it is parity the
   * placement rebuilds from the data fragments in the store). The caller may keep them
   * as long as it likes: pooled bytes given out here are never recycled (ShardLease.keep).
   */
  get (cid: CID | string): Uint8Array | undefined {
    // asked on every slice of a fragment (LocalLeaves.slice: a 4 KiB read, on the reader and its
    // holder), where nothing is staged once a write is placed: no CID string made for nothing
    if (this.blocks.size === 0) return undefined
    const held = this.blocks.get(cid.toString())
    held?.lease?.keep()
    return held?.bytes
  }

  /** Whether a fragment is staged (no bytes given out: pooled memory stays recyclable). */
  has (cid: CID | string): boolean {
    return this.blocks.size > 0 && this.blocks.has(cid.toString())
  }

  /**
   * A staged fragment's bytes lent to a reader that says when it is done (placement's push):
   * done(true) once nothing of it reads them any more (every target acknowledged the whole
   * block), done(false) when that is not known (a failed or aborted push: a write may still sit
   * in a stream's queue), which keeps pooled bytes from being recycled, as get() does. done() is
   * called once. undefined when the fragment is not staged.
   */
  lend (cid: CID | string): { bytes: Uint8Array, done: (clean: boolean) => void } | undefined {
    const held = this.blocks.get(cid.toString())
    if (held === undefined) return undefined
    const lease = held.lease
    if (lease === undefined || lease.kept) return { bytes: held.bytes, done: () => {} }
    lease.hold()
    let over = false
    return {
      bytes: held.bytes,
      done: clean => {
        if (over) throw new Error('Staging.lend: done() twice')
        over = true
        if (!clean) lease.keep()
        lease.letGo()
      }
    }
  }

  /**
   * Forget a chunk's fragments (placed, or given up): what is in the store stays there. Not a
   * pinned chunk's: its pins go by unpin().
   */
  release (chunk: string): void {
    if (this.pinned.has(chunk)) return
    this.forget(chunk)
  }

  /** Let go of one pin of `chunk` (stage()'s `pinned`): with the last, the chunk is forgotten. */
  unpin (chunk: string): void {
    const pins = this.pinned.get(chunk)
    if (pins === undefined) return
    if (pins > 1) { this.pinned.set(chunk, pins - 1); return }
    this.pinned.delete(chunk)
    this.forget(chunk)
  }

  private forget (chunk: string): void {
    const keys = this.chunks.get(chunk)
    if (keys === undefined) return
    this.chunks.delete(chunk)
    for (const key of keys) {
      const held = this.blocks.get(key)!
      if (--held.refs === 0) {
        this.blocks.delete(key)
        this.bytes -= held.bytes.byteLength
        held.lease?.letGo()
      }
    }
  }

  /** Bytes held now. */
  size (): number {
    return this.bytes
  }
}
