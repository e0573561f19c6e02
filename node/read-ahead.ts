// Readahead of one reader (an open inode on this host, or one Volume.reader): it spots a
// sequential run of reads and keeps the chunks after the reader fetched ahead, several at once,
// so a read from other hosts keeps enough fetches in flight to fill the link (DESIGN.md §5;
// issue 15 item 4). Each chunk from peers costs a have-query and a pull of k fragments from k
// holders at once (keeper/network.ts); one at a time, their latency is the read's speed.
//
//  - Sequential: SEQUENTIAL_RUN_READS reads in a row, each starting within SEQUENTIAL_SLACK_BYTES
//    of where the run had got to (the kernel's FUSE readahead may deliver its requests a little
//    out of order). One such read is not enough: random 4 KiB reads over a file of 256 MiB land
//    that close to the last one's end once in ~250 reads, and each fetched its chunk whole plus
//    the window ahead (5 MiB for a 4 KiB read; on six hosts that was more bytes than all the
//    range reads moved, issue 15). A read that starts exactly where the last one ended is
//    sequential at once (a reader of 1 MiB pieces gets chunks ahead from its second read): a
//    random page lands there once in the file's number of pages. A random read ends the run and
//    fetches nothing ahead.
//  - Reordering: the reads of one sequential reader reach us out of order (the kernel's readahead
//    sends several at once, several FUSE threads take them, fuse/binding.c), by more than the
//    slack when the reads are large: 1 MiB reads arriving 0, 2, 1, 3 MiB. So a read that starts
//    where one of the run's last REORDER_READS reads ended continues the run as an exact
//    continuation of the last does, and a read within REORDER_READS of its own lengths of where
//    the run got to, neither near nor continuing one, leaves the run as it is (it may be the
//    first of a reordered pair, or a reader going backwards, which gets nothing ahead); only a
//    read further off ends it. The run's reads are forgotten when it ends, so a random reader is
//    matched against its last read alone, as before.
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
/**
 * Reads in a row that continue a run before the reader counts as sequential (whole chunks,
 * fetched ahead): two random reads in a row within the slack are ~(1 MiB / file size)² likely.
 */
export const SEQUENTIAL_RUN_READS = 2

/**
 * Reads of one sequential reader that may reach us out of order: the run's reads a new one is
 * matched against, and how many of its lengths from where the run got to a read may land and
 * leave the run as it is (the kernel has up to its readahead window, 1 MiB, in 128 KiB reads or
 * one 1 MiB read, in flight per file, and a reader's own reads besides).
 */
export const REORDER_READS = 8

export class ReadAhead {
  private readonly chunks: Pick<ChunkService, 'readAhead' | 'readaheadBytes'>
  /** Where the run's reads have got to (the furthest end); -1 before the first read. */
  private end = -1
  /** Reads in a row that continued the run (sequential from SEQUENTIAL_RUN_READS on). */
  private run = 0
  /** The run's last REORDER_READS reads, [start, end) each, oldest first. */
  private readonly recent: Array<{ start: number, end: number }> = []
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
    const end = position + length
    const continues = this.recent.some(r => position === r.end)
    const distance = Math.abs(position - this.end)
    if (this.end >= 0 && continues) {
      // an exact continuation of one of the run's reads is evidence enough
      this.run = Math.max(this.run + 1, SEQUENTIAL_RUN_READS)
    } else if (this.end >= 0 && distance <= SEQUENTIAL_SLACK_BYTES) {
      // one within the slack needs a second in a row
      this.run++
    } else if (this.end < 0 || distance > Math.max(SEQUENTIAL_SLACK_BYTES, REORDER_READS * length)) {
      // a random read: nothing ahead; what is fetched already is forgotten (its fetches end on their own)
      this.run = 0
      this.end = -1
      this.window = 0
      this.recent.length = 0
      this.ahead.clear()
    }
    // else: within the reordering window: the run goes on as it was (see REORDER_READS)
    this.recent.push({ start: position, end })
    if (this.recent.length > REORDER_READS) this.recent.shift()
    this.end = Math.max(this.end, end)
    if (this.window === 0 && this.sequential) this.window = Math.min(READAHEAD_INITIAL_BYTES, this.chunks.readaheadBytes)
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
    // chunks behind this read go once a read of the run has reached them, or once they are behind
    // all of the run's last reads; one not reached yet stays for the read that comes late
    const size = manifest.chunkSize
    let low = Infinity
    for (const r of this.recent) low = Math.min(low, r.start)
    for (const j of this.ahead.keys()) {
      if (j < i && ((j + 1) * size <= low || this.recent.some(r => r.start < (j + 1) * size && r.end > j * size))) this.ahead.delete(j)
    }
    if (!this.sequential || this.window === 0) return
    const limit = this.end + this.window
    for (let n = at + 1; n < manifest.chunks.length; n++) {
      const ref: ChunkRef = manifest.chunks[n]
      if (ref.offset >= limit) break
      const j = ref.offset / size
      // (a read behind the run's end, a seek back within the reorder window: what the run read already is not fetched again)
      if (ref.cid === null || this.ahead.has(j) || ref.offset + ref.size <= this.end) continue
      const p = this.chunks.readAhead(ref, { path, signal: this.stopper.signal })
      if (p !== undefined) this.ahead.set(j, p)
    }
  }

  /** Chunk `i` of `version` if it was fetched ahead (its bytes, or undefined when that fetch failed). */
  take (version: object, i: number): Promise<Uint8Array | undefined> | undefined {
    return version === this.version ? this.ahead.get(i) : undefined
  }

  /** Whether the last read observed continued a sequential run long enough (readahead covers it). */
  get sequential (): boolean {
    return this.run >= SEQUENTIAL_RUN_READS
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
