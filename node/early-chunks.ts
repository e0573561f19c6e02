// An open file's chunks placed before its commit (issue 17, item 8; DESIGN.md §5): when a
// sequential writer moves past a whole chunk (written to its end, and the next write goes on
// after it), the chunk is encoded and its placement started at once, from memory, without storing
// it here first (ChunkWrite.chunk `deferred`, issue 15 item 4: the writer's disk takes only the
// fragment it keeps; a chunk the placement does not place is stored here then, and a commit waits
// for durable(): every early chunk placed, or stored here), through the same
// bounded window as `put` (data/blocks.ts ChunkWrite, PLACE_WINDOW_BYTES), so a large write
// through the mount or a FileHandle never lands whole on the writer's disk: the writer keeps its
// own share of what is placed, and write() waits while the window is full (backpressure).
// Commit semantics do not change: the version appears in the tree at flush/fsync/close only,
// and its manifest names these chunks. A chunk rewritten (or cut off) before the commit is
// replaced, and its early blocks are released here and on peers (ChunkWrite.release, the
// release machinery of a cancelled put); a write given up (its file unlinked before the last
// close, a last close that fails) releases them all (abandon()). Random writes and small files
// keep open-file.ts's own path: their chunks are stored at spill or commit.
import type { AbortOptions } from '@libp2p/interface'
import { CHUNK_SIZE } from './data/index.ts'
import type { ChunkRef, ChunkService, ChunkWrite } from './data/index.ts'

/**
 * Longest a write() waits for room in the placement window: 10 s, within a FUSE request's
 * deadline (30 s). Past it the chunk is stored anyway (the network is not taking the bytes: the
 * writer's disk holds more than the window until it does), rather than failing the write.
 */
export const WINDOW_WAIT_MS = 10_000

export class EarlyChunks {
  private readonly chunks: ChunkService
  private readonly inode: string
  /** The placement of the chunks of the next version (a new one after each commit). */
  private write?: ChunkWrite
  /** Chunk index -> its early ref, in the next version unless replaced. */
  private readonly refs = new Map<number, ChunkRef>()
  /** Where the last write ended, to tell a sequential writer. */
  private writeEnd = -1

  constructor (chunks: ChunkService, inode: string) {
    this.chunks = chunks
    this.inode = inode
  }

  /**
   * The chunks a write of [position, end) moved past: the ones it wrote and went beyond, and,
   * when it goes on where the last write ended, the chunk that write ended at the end of.
   */
  finished (position: number, end: number): number[] {
    const sequential = position === this.writeEnd
    this.writeEnd = end
    if (end <= position) return []
    const first = Math.max(0, Math.floor(position / CHUNK_SIZE) - (sequential && position % CHUNK_SIZE === 0 ? 1 : 0))
    const last = Math.floor((end - 1) / CHUNK_SIZE) - 1
    const out: number[] = []
    for (let i = first; i <= last; i++) out.push(i)
    return out
  }

  /** Whether chunk `i` of the next version was stored here early (it is being placed). */
  has (i: number): boolean {
    return this.refs.has(i)
  }

  get (i: number): ChunkRef | undefined {
    return this.refs.get(i)
  }

  /** Store the whole chunk `i` and start placing it; waits for room in the window (WINDOW_WAIT_MS at most). */
  async store (i: number, bytes: Uint8Array, opts: AbortOptions = {}): Promise<ChunkRef> {
    this.write ??= this.chunks.write({ inode: this.inode })
    // deferred: placed at once, not stored whole here first (issue 15 item 4: on six hosts the
    // writer wrote each chunk to its disk, fsynced it and deleted most of it once placed); a
    // commit's durable() waits until it is placed, or stored here when it was not
    const ref = await this.write.chunk(bytes, i * CHUNK_SIZE, { signal: opts.signal, waitMs: WINDOW_WAIT_MS, deferred: true })
    this.forget(i)
    this.refs.set(i, ref)
    return ref
  }

  /**
   * Store a chunk of the version a commit is building (open-file.ts commit(): a chunk rewritten
   * at the commit, e.g. a close's densely patched chunks) and start placing it, as an early
   * chunk: the commit waits for room in the window (WINDOW_WAIT_MS at most per chunk), so it
   * never stores much more than the window ahead of the placement, and the fsync after it has
   * at most the window left to wait for, not every chunk the close rewrote (issue 15, six hosts:
   * a close rewriting 1 GiB of a file fio had written at random left that much to place, and
   * the first fsync of the next writer waited SYNC_PLACE_WAIT_MS for it). Not recorded by
   * index: nothing replaces it before the commit is recorded (a commit that fails leaves it to
   * the next commit or to abandon()).
   */
  async storeNow (bytes: Uint8Array, offset: number, opts: AbortOptions = {}): Promise<ChunkRef> {
    this.write ??= this.chunks.write({ inode: this.inode })
    return await this.write.chunk(bytes, offset, { signal: opts.signal, waitMs: WINDOW_WAIT_MS })
  }

  /**
   * Place a chunk stored here before (a packed chunk of spilled patches that the version a
   * commit is building points into: open-file.ts buildSparse) through the same window, the
   * commit waiting for room (WINDOW_WAIT_MS at most): the fsync after a sparse close has at most
   * the window left, not every packed chunk.
   */
  async placeNow (ref: ChunkRef, opts: AbortOptions = {}): Promise<void> {
    this.write ??= this.chunks.write({ inode: this.inode })
    await this.write.placeStored(ref, { signal: opts.signal, waitMs: WINDOW_WAIT_MS })
  }

  /**
   * Every early chunk is durable here (ChunkWrite.chunk returns before its local put is over);
   * throws the first put that failed. A commit waits for it before its op names the chunks.
   */
  async durable (): Promise<void> {
    await this.write?.durable()
  }

  /** Chunk `i` is not in the next version as stored early (rewritten, cut off): it is released. */
  forget (i: number): void {
    const ref = this.refs.get(i)
    if (ref === undefined) return
    this.refs.delete(i)
    this.write?.release(ref)
  }

  /**
   * The version naming the early chunks is in the tree: they are no longer this file's to
   * delete. Returns their placement until each chunk survives one lost host (what an fsync
   * waits for, DESIGN.md §5: ChunkWrite.placed's `safe`; the rest goes on), and starts afresh
   * for the next version.
   */
  committed (): Promise<void> | undefined {
    const w = this.write
    this.write = undefined
    this.refs.clear()
    if (w === undefined) return undefined
    w.committed()
    return w.placed({ safe: true })
  }

  /** The pending writes are given up: every early chunk goes, here and on peers. Never throws. */
  async abandon (): Promise<void> {
    const w = this.write
    this.write = undefined
    this.refs.clear()
    this.writeEnd = -1
    await w?.abandon()
  }
}

/**
 * An open file's chunks stored before its commit (spilled, or early), by chunk index: an early
 * one that is deleted or replaced here (a rewrite, a truncation) is released (EarlyChunks.forget).
 * clear() is the commit's or the abandon's, which settle the early chunks themselves.
 */
export class StoredChunks extends Map<number, ChunkRef> {
  private readonly early?: EarlyChunks

  constructor (early: EarlyChunks) {
    super()
    this.early = early
  }

  override set (i: number, ref: ChunkRef): this {
    const e = this.early?.get(i)
    if (e !== undefined && e !== ref) this.early!.forget(i)
    return super.set(i, ref)
  }

  override delete (i: number): boolean {
    this.early?.forget(i)
    return super.delete(i)
  }
}
