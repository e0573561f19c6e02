// Readahead of one reader (an open inode on this host, or one Volume.reader): it spots a
// sequential run of reads and keeps the chunks after the reader fetched ahead, several at once,
// so a read from other hosts keeps enough fetches in flight to fill the link (DESIGN.md §5;
// issue 15 item 4). Each chunk from peers costs a have-query and a pull of k fragments from k
// holders at once (keeper/network.ts); one at a time, their latency is the read's speed.
//
//  - Sequential: a read that starts within SEQUENTIAL_SLACK_BYTES of where the last one ended (the
//    kernel's FUSE readahead may deliver its requests a little out of order). A random read ends
//    the run and fetches nothing ahead: no wasted fetches.
//  - Window: READAHEAD_INITIAL_BYTES past the reader once a run starts, doubling with each new
//    chunk the run reads, up to ChunkService.readaheadBytes (READAHEAD_MAX_BYTES); over all
//    readers, ChunkService bounds the bytes fetched ahead at once (READAHEAD_TOTAL_BYTES).
//  - Version: the fetches belong to one version (the Base of an open file, by identity); a read
//    of another version (the file was rewritten, here or elsewhere) stops them and starts afresh,
//    so bytes fetched for one version never stand in for another's.
//  - The decoded chunks ahead are held here (not only in the chunk cache, whose LRU others share)
//    until the reader passes them: at most the window, per reader.
import type { ChunkRef, ChunkService, Manifest } from './data/index.ts'
import { READAHEAD_INITIAL_BYTES } from './data/index.ts'

/** A read this close to where the last one ended continues a sequential run. */
export const SEQUENTIAL_SLACK_BYTES = 512 << 10

export class ReadAhead {
  private readonly chunks: Pick<ChunkService, 'readAhead' | 'readaheadBytes'>
  /** Where the run's reads have got to (the furthest end); -1 before the first read. */
  private end = -1
  /** Reads in a row that continued the run (0: not sequential). */
  private run = 0
  /** Bytes kept fetched past `end` now. */
  private window = 0
  /** The last chunk the run read (the window grows when it moves on). */
  private chunk = -1
  /** The version the fetches in `ahead` belong to. */
  private version?: object
  /** Chunk index -> its fetch, started ahead of the reader (undefined when it failed). */
  private readonly ahead = new Map<number, Promise<Uint8Array | undefined>>()
  /** Stops the fetches of `ahead` that no reader waits for. */
  private stopper = new AbortController()

  constructor (chunks: Pick<ChunkService, 'readAhead' | 'readaheadBytes'>) {
    this.chunks = chunks
  }

  /** A read of [position, position + length) is about to be served. */
  observe (position: number, length: number): void {
    const near = this.end >= 0 && Math.abs(position - this.end) <= SEQUENTIAL_SLACK_BYTES
    if (near) {
      this.run++
      this.end = Math.max(this.end, position + length)
      if (this.window === 0) this.window = Math.min(READAHEAD_INITIAL_BYTES, this.chunks.readaheadBytes)
    } else {
      // a random read: nothing ahead; what is fetched already is forgotten (its fetches end on their own)
      this.run = 0
      this.end = position + length
      this.window = 0
      this.ahead.clear()
    }
  }

  /**
   * A read reached chunk `i` of `version`, whose manifest holds it at `manifest.chunks[at]`: when
   * the reader is sequential, fetch the chunks after it within the window.
   */
  fill (version: object, manifest: Manifest, i: number, at: number, path?: string): void {
    if (version !== this.version) {
      this.stop()
      this.version = version
    }
    if (i > this.chunk) {
      if (this.chunk >= 0 && this.window > 0) this.window = Math.min(this.window * 2, this.chunks.readaheadBytes)
      this.chunk = i
    }
    for (const j of this.ahead.keys()) if (j < i) this.ahead.delete(j)
    if (this.run === 0 || this.window === 0) return
    const limit = this.end + this.window
    const size = manifest.chunkSize
    for (let n = at + 1; n < manifest.chunks.length; n++) {
      const ref: ChunkRef = manifest.chunks[n]
      if (ref.offset >= limit) break
      const j = ref.offset / size
      if (ref.cid === null || this.ahead.has(j)) continue
      const p = this.chunks.readAhead(ref, { path, signal: this.stopper.signal })
      if (p !== undefined) this.ahead.set(j, p)
    }
  }

  /** Chunk `i` of `version` if it was fetched ahead (its bytes, or undefined when that fetch failed). */
  take (version: object, i: number): Promise<Uint8Array | undefined> | undefined {
    return version === this.version ? this.ahead.get(i) : undefined
  }

  /** Whether the last read observed continued a sequential run (readahead covers it). */
  get sequential (): boolean {
    return this.run > 0
  }

  /** Chunks fetched ahead now, not yet passed by the reader (tests). */
  get held (): number {
    return this.ahead.size
  }

  /** Forget every fetch ahead and stop those nobody else waits for (a new version, a closed file). */
  stop (): void {
    this.ahead.clear()
    this.stopper.abort(new Error('readahead stopped'))
    this.stopper = new AbortController()
    this.version = undefined
    this.chunk = -1
  }
}
