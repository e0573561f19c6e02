// The write path of one inode while it is open on this host: every handle of the inode shares
// one OpenFile, so a read through any handle sees writes made through any other at once, as
// POSIX requires. Writes go into per-chunk buffers, or, for small writes into a chunk not in
// memory, into per-chunk patches applied when the chunk is next read, spilled or committed;
// chunks are spilled to the store (several at once) when the buffered bytes pass a bound; commit() turns the state into a new version (inline bytes
// or a manifest) and appends one `write` op. Until commit, the tree keeps the old version:
// a crash mid-write leaves the old version or the new one, never a torn file.
// Memory and work follow the data, not the length: the state holds only chunks written here,
// and a commit visits only those and the base version's data chunks; everything else is a hole
// (a sparse `truncate -s 1T` is one hole ref in the manifest, chunks.ts).
// Appends (node/tree: an `append` op): a commit made only of O_APPEND writes past the end of its
// base is recorded as the appended bytes alone, so appends made on several hosts at once all
// land (node/tree/index.ts has the rule). The base is a committed version and the appends after
// it (its extents), read piece by piece; a whole-file commit over it holds them all (a fold).
// Positioned extents (issue 15): a commit whose changes since its base are only a few small
// written ranges (at most PATCH_COMMIT_BYTES, PATCH_COMMIT_RANGES of them, no truncation) is
// recorded as those bytes alone, one positioned extent per range (`append` ops with `offset`):
// an fsync after a 4 KiB pwrite stores 4 KiB, not the whole chunk it lands in. Reads take each
// byte from the newest extent over it through the state's ExtentMap (node/tree: disjoint
// segments, binary search, hidden bytes never read); the volume folds a file's extents past
// FOLD_EXTENTS, or once the file is quiet (volume.ts), which keeps the map small.
// Many small writes spread over a big file (past those bounds: fio's random 4 KiB writes, no
// fsync) are committed the same way (buildSparse): the patches as extents over the packed chunks
// the spills stored, a chunk patched past COMMIT_EXTENT_MAX as one extent of its whole bytes,
// never a rewrite of every chunk a write landed in; the folds rewrite the chunks later.
// A file grown past its end by pwrite alone (a SQLite WAL, a log without O_APPEND), past those
// bounds, is committed the same way (buildGrowth): the grown bytes as positioned extents, a head
// to the next chunk boundary and the whole chunks after it at their own offsets, which a fold
// takes as they are; the base's last chunk is never stored again with its old bytes (wal42).
// Every operation takes the caller's signal: it ends the wait for this inode's queue and the
// fetch of chunks from peers; an aborted write may leave part of its bytes written, like a short
// write, and the state stays consistent (what is written is marked changed).
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { CHUNK_SIZE, INLINE_MAX, RANGE_READ_MAX_BYTES, PutGroup, chunkAt, contentSum, holeChunk, manifestOf } from './data/index.ts'
import type { ChunkRef, Manifest } from './data/index.ts'
import type { ChunkService } from './data/index.ts'
import { ExtentMap, extentKey } from './tree/index.ts'
import type { Content, Extent, FileMark } from './tree/index.ts'
import { nowNs } from './clock.ts'
import { boundedSignal, raceSignal } from './abort.ts'
import { FsError } from './errors.ts'
import { forEachLimited } from './pool.ts'
import { logger } from './log.ts'
import { EarlyChunks, StoredChunks } from './early-chunks.ts'
import { ReadAhead } from './read-ahead.ts'

const log = logger('open-file')

/** Buffered (not yet stored) bytes per open inode before chunks are spilled: 32 MiB. */
export const OPEN_FILE_BUFFER_BYTES = 32 << 20

/**
 * Longest the chunks a write finished are stored behind it (OpenFile.storeBehind) when the write
 * names no deadline of its own (write()'s `deadlineMs`: the mount gives each write its deadline,
 * fuse/index.ts syncTimeoutMs, under which the write itself stored them before they were stored
 * behind it): the mount's default, SYNC_TIMEOUT_MS. Past it the chunk stays in memory and the
 * commit stores it.
 */
export const STORE_BEHIND_TIMEOUT_MS = 600_000

/**
 * Small writes into a chunk that is not in memory are kept as patches (offset + bytes) instead
 * of reading the whole chunk first: a random 4 KiB write costs 4 KiB of memory, and the chunk
 * is read and rewritten once, at spill or commit. Past this many patches on one chunk, the
 * chunk is read and the patches applied in memory.
 */
export const PATCHES_PER_CHUNK_MAX = 256
/**
 * Chunks stored at once when spilling or committing. 1: measured with scripts/bench/mount.ts,
 * 2 to 8 concurrent chunk stores (each fsyncing its files) made sequential writes 2-3x slower.
 */
export const STORE_PARALLEL = 1
/**
 * A commit whose written ranges since its base total at most this many bytes (and no more than
 * PATCH_COMMIT_RANGES ranges) is recorded as positioned extents, not a new whole version. Bigger
 * changes rewrite their chunks: past this, the chunks are mostly rewritten anyway, and an extent
 * is read over its chunk until a fold.
 */
export const PATCH_COMMIT_BYTES = 256 << 10
/** Most ranges (extents, one op for all: tree MAX_OP_EXTENTS) one commit records as positioned extents. */
export const PATCH_COMMIT_RANGES = 16

/**
 * Most bytes of another handle's last appends a commit keeps back (OpenFile.commit `by`): they are
 * copied out and written again after the version (append37). Past it, the commit takes them all,
 * as before: a writer streaming that much since the last commit is logged, not held in memory twice.
 */
export const APPEND_KEEP_MAX = 8 << 20

/**
 * Longest since its handle's last write that another handle's commit keeps a run of appends back
 * (OpenFile.commit `by`). The kernel sends the next piece of a write(2) as soon as the one before
 * is answered: a run idle longer is whole, and is committed with the rest (a log writer keeping
 * its fd open has its lines published by the other handles' flushes, not only at its close). A
 * run whose last write ends its write(2) (write() `ends`) is whole at once.
 */
export const APPEND_KEEP_IDLE_MS = 1000

/** Most extents a commit of this host's own writes (OpenFile.ownExtents) is cut into. */
export const MAX_OWN_EXTENTS = 4096
/**
 * Most extents the last try of a commit over a file that kept moving (or whose version that came
 * could not be laid under it) records this host's ranges as (OpenFile.ownExtents `all`): 4,096
 * ops of MAX_OP_EXTENTS in one batch. Past it the close fails (EIO), its writes pending.
 */
export const OWN_EXTENTS_ALL_MAX = 1 << 16

interface Patch { at: number, bytes: Uint8Array }
/**
 * A patch moved out of memory by a spill: its `size` bytes are at `off` in the packed chunk `ref`
 * (stored here, never placed, referenced by no version: GC's grace for unreferenced blocks keeps
 * it while the file is open, as it keeps spilled chunks).
 */
interface Spilled { at: number, size: number, ref: ChunkRef, off: number }

/**
 * A spill packs a chunk's patches (rather than rewriting the chunk) while they are under this
 * share of it: a random 4 KiB writer spilling 32 MiB of patches spread over a 1 GiB file stores
 * 32 MiB, not 1 GiB read, patched, encoded and stored (issue 15: 273 random write IOPS at 1 GiB,
 * each spill rewriting every chunk). Denser chunks are rewritten: their bytes are mostly new.
 */
export const SPILL_PACK_MAX = CHUNK_SIZE / 4

/**
 * A commit of many small writes spread over a file (past PATCH_COMMIT_BYTES or
 * PATCH_COMMIT_RANGES) records a patched chunk as its patches, positioned extents over the
 * packed chunks that hold them (buildSparse), while they are under this share of it; a denser
 * chunk is rewritten whole. fio's random 4 KiB writes over 1 GiB closed in about 30 s when the
 * close rewrote every patched chunk; as extents, the close stores only the bytes written, and the
 * background folds (volume.ts) rewrite the chunks later, where they are worth it.
 */
export const COMMIT_EXTENT_MAX = CHUNK_SIZE / 4

/**
 * A version built from the open state: `refs`, the chunks (and manifest) to place now;
 * `placing`, the placement of the chunks placed before the commit (early-chunks.ts), once committed.
 * `append`: the state differs from its base only by O_APPEND writes past its end, and `content`
 * holds just those bytes (bytes [at, at + size) of it: an `append` op), not the whole file.
 * `kept`: another handle's last appends were kept back (OpenFile.commit `by`): writes stay pending
 * after this version, and the times held for the file stay held with them (Volume stamp()).
 * `growth`: `extents` are the file's growth past its base (buildGrowth), stamped only while the
 * tree's file is still that base (Volume commitOpen); else refuseGrowth() and built again.
 */
export interface Committed { content: Content | null, size: number, refs: ChunkRef[], placing?: Promise<void>, append?: { at: number, size: number }, extents?: PatchExtent[], kept?: boolean, growth?: boolean }

/**
 * Whom a commit is for (OpenFile.commit): `by`, the handle whose flush or close it is, `owner`,
 * the lock owner closing (another open handle's last appends are kept back, and another owner's
 * through the same handle: `tail`); `all`, everything pending (an fsync, the last
 * close); neither, a commit of the host's own (held times): every open handle's last appends are
 * kept back. `sync`: an fsync's (see build()).
 */
export interface CommitFor { by?: object, owner?: number, all?: boolean, sync?: boolean }

/**
 * One written range of a patch commit: bytes [at, at + size) of `content` land at `offset` (a
 * positioned extent). A commit's ranges are one multi-extent `append` op (issue 15 item 1: the
 * op's own extent and `more`; volume.ts extentBodies), yet each range is still one Extent in the
 * tree, so the merge rule, folds and reads stay those of appends (one piece = one position); the
 * ranges too big to be inline share one packed content (one chunk and one manifest stored per
 * commit, whatever the number of ranges).
 */
export interface PatchExtent { content: Content, at: number, size: number, offset: number }

/**
 * A committed state of a file: its base `content`, then `extents` (appends), `size` bytes in all;
 * `mark`, what the tree's state was made of when it was taken (a whole version built over it is
 * stamped only while the tree still has that: volume.ts commitOpen).
 */
export interface FileState { content: Content | null, size: number, extents?: readonly Extent[], mark?: FileMark }

/**
 * A committed state this open file builds on, with what is read of it once loaded: its content's
 * manifest and its extents' manifests, and where each extent starts. All of it lives on the version
 * it belongs to: a version adopted while a read waits for the old one's manifests (rebase) can
 * never be paired with the old version's chunks, sizes or extents.
 */
interface Base extends FileState {
  /** Bytes of the state's own content (its extents follow). */
  readonly contentEnd: number
  /** The extents, each landed (`pos`: where it starts in the file); the state's, not a copy (made on every commit). */
  readonly pieces: readonly Extent[]
  /** Which extent each byte reads from (made on the first read that meets an extent). */
  map?: ExtentMap
  manifest?: Manifest
  /** The manifests of the extents, read so far (by manifest CID). */
  readonly extentManifests: Map<string, Manifest>
}

function baseOf (state: FileState): Base {
  const extents = state.extents ?? []
  // the content holds the file up to where the first extent landed (the tree sets `pos`, `before`)
  const contentEnd = extents.length > 0 ? extents[0].before : state.size
  const pieces = extents
  const base: Base = { content: state.content, size: state.size, contentEnd, pieces, extentManifests: new Map() }
  if (state.extents !== undefined) base.extents = state.extents
  return base
}

export class OpenFile {
  readonly inode: string
  private readonly chunks: ChunkService
  private readonly path: () => string
  /** The committed version this state builds on. */
  private base: Base
  /**
   * The file's committed state as the tree has it now (given by a Volume: appends are committed
   * as `append` ops only then, and a commit adopts the tree's state as its new base).
   */
  private readonly current?: () => FileState | undefined
  /** Every change since the last commit was an O_APPEND write (so the commit can be an append). */
  private appendOnly = false
  size: number
  /** Chunk index -> the chunk's bytes, modified here and not yet stored. */
  private readonly dirty = new Map<number, Uint8Array>()
  /** A sequential writer's finished chunks, stored and placed before the commit. */
  private readonly early: EarlyChunks
  /** Chunk index -> a chunk stored during this open (spilled, or early), not yet committed. */
  private readonly stored: StoredChunks
  /**
   * The chunks this open stored aside (spilled whole, or packed patches), each in
   * ChunkService.open from its store until the commit or abandon(): another write of the same
   * bytes here, placed (its copies handed over) or given up (released), leaves their fragments
   * here and on the peers (review34a: a spilled chunk the commit then named was gone everywhere).
   */
  private readonly aside: Array<{ ref: ChunkRef, unplaced: boolean }> = []
  private dirtyBytes = 0
  /** Chunk index -> small writes not yet applied to the chunk's bytes, oldest first. */
  private readonly patches = new Map<number, Patch[]>()
  private patchBytes = 0
  /** Chunk index -> patches spilled in packed chunks, oldest first; all older than `patches`. */
  private readonly spilled = new Map<number, Spilled[]>()
  /** Buffered bytes (dirty chunks and patches) past which a write spills (OPEN_FILE_BUFFER_BYTES; tests set less). */
  bufferBytes = OPEN_FILE_BUFFER_BYTES
  /** Patched bytes of a chunk from which a commit rewrites it whole, not as extents (COMMIT_EXTENT_MAX; benches set others). */
  commitExtentMax = COMMIT_EXTENT_MAX
  /** Spots sequential reads and fetches the chunks after them ahead (read-ahead.ts). */
  private readonly ahead: ReadAhead
  /** Set when anything changed since the last commit. */
  changed = false
  /**
   * The last run of O_APPEND writes since the last commit made through one handle (`by`, the
   * writer write() was given), from `from` to the end of file. The kernel may cut one write(2)
   * into several writes here (direct I/O: at 1 MiB, at 256 pages of the caller's memory), and
   * holds the file's lock across them, so only this run can end in a write(2) not all here yet:
   * every write before it was followed by another handle's. A commit for another handle (a flush,
   * a close) keeps it back until that handle's own flush or close (letGo), or an fsync, while
   * that handle wrote less than APPEND_KEEP_IDLE_MS ago (`last`, by `now`). `owner`: the lock owner
   * of its writes, when named (processes sharing one handle: a forked child's close of its copy
   * comes as a flush of that handle, between the pieces of its parent's write(2)); a flush naming
   * another owner keeps the run back too. A write that says it ends its write(2) (`ends`: the
   * FUSE edge's, a piece too short to be cut with more to come) ends the run: nothing is kept
   * back for it (a log writer appending a line every 0.2 s has each published by the other
   * handles' flushes, not only at its close).
   */
  private tail?: { by: object, owner?: number, from: number, last: number }
  /**
   * The appends waiting for their turn of the queue, by handle: a commit ahead of them does not
   * take their handle's run for idle (the next piece of its write(2) is here already).
   */
  private readonly queued = new Map<object, number>()
  /**
   * Set while the base is the empty file a create on this host just made (open with O_CREAT):
   * the first commit fills that create, and the two are one version (a `first` write).
   */
  createdEmpty = false
  mtime?: bigint
  handles = 0
  private queue: Promise<unknown> = Promise.resolve()
  /** The clock (ms) of a run's last write and of the commits that may keep it back (`tail`; tests set their own). */
  now: () => number = () => performance.now()
  /** Longest a store behind a write (storeBehind) that named no deadline takes before it gives up (STORE_BEHIND_TIMEOUT_MS; tests set less). */
  storeBehindTimeoutMs = STORE_BEHIND_TIMEOUT_MS
  /** Stops the stores behind writes scheduled so far: abandon() aborts it (and makes another). */
  private behindStop = new AbortController()

  constructor (inode: string, base: FileState, chunks: ChunkService, path: () => string, current?: () => FileState | undefined) {
    this.inode = inode
    this.base = baseOf(base)
    this.mark = base.mark
    this.size = base.size
    this.chunks = chunks
    this.path = path
    this.current = current
    this.early = new EarlyChunks(chunks, inode)
    this.stored = new StoredChunks(this.early)
    this.ahead = new ReadAhead(chunks)
  }

  /** Stop fetching ahead (the file's last handle closed): what was fetched stays in the chunk cache. */
  stopReadahead (): void {
    this.ahead.stop()
  }

  /**
   * Serialise mutations (writes, truncates, commits) on this inode. A caller whose signal
   * aborts while it waits for its turn leaves the queue, and its `fn` never runs; once `fn`
   * runs, the caller waits for it (fn passes the signal to what it waits on).
   */
  private async serial<T> (fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted()
    let started = false
    const turn = async (): Promise<T> => {
      signal?.throwIfAborted()
      started = true
      return await fn()
    }
    // the turn runs after the one before it whether that one failed or not: its failure went to
    // its own caller, the queue only orders the turns
    const run = this.queue.then(turn, turn)
    this.queue = run.catch(() => {}) // ignored here: the caller below gets this turn's error
    try {
      return await raceSignal(run, signal)
    } catch (err) {
      if (started) return await run
      throw err
    }
  }

  private setBase (state: FileState): void {
    this.base = baseOf(state)
    this.mark = state.mark
    this.laid.clear()
  }

  /**
   * The tree's state this open state holds all of (FileMark): the base's, or, after catchUp(),
   * the state whose extents since the base were laid over the pending writes. Undefined when
   * unknown (a staging file).
   */
  mark: FileMark | undefined

  /**
   * The byte ranges written here since the base, kept however many (not `written`, which stops
   * at the patch bounds): where this host's bytes win over the extents a peer made meanwhile
   * (catchUp), and what a commit holds as its own (ownExtents). In write order, possibly
   * overlapping past the first `mineSorted` (sorted and merged then: ownRanges()): a write costs
   * a push, or the growth of the last range (a sequential writer), never an insert into a sorted
   * list of thousands (fio's random writes over a large file).
   */
  private mine: Array<[number, number]> = []
  private mineSorted = 0
  /** Set while catchUp() lays a peer's extent over the state: those bytes are not `mine`. */
  private laying = false
  /**
   * The peers' extents since the mark catchUp() laid so far (extentKey -> where the first byte
   * went, how many of its bytes are laid), while a catchUp stopped part-way left the mark behind.
   */
  private readonly laid = new Map<string, { at: number, done: number, cut?: number }>() // cut: the least length a truncate here set since

  /** True while a catchUp() stopped part-way left peers' bytes laid over the state beyond its mark. */
  get partlyCaughtUp (): boolean {
    return this.laid.size > 0
  }

  /** Note [from, to) in `mine`. */
  private own (from: number, to: number): void {
    if (to <= from || this.laying) return
    const w = this.mine
    const last = w[w.length - 1]
    if (last !== undefined && from <= last[1] && to >= last[0]) {
      last[0] = Math.min(last[0], from)
      last[1] = Math.max(last[1], to)
    } else w.push([from, to])
    // merged now and then: the list stays within twice its merged length (amortised n log n)
    if (w.length > 2 * this.mineSorted + 1024) this.ownRanges()
  }

  /** `mine` sorted, disjoint and not adjacent. */
  private ownRanges (): Array<[number, number]> {
    const w = this.mine.sort((a, b) => a[0] - b[0])
    const out: Array<[number, number]> = []
    for (const [a, z] of w) {
      const last = out[out.length - 1]
      if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], z)
      else out.push([a, z])
    }
    this.mine = out
    this.mineSorted = out.length
    return out
  }

  /**
   * Lay the extents a peer made since this state's mark (`since`, oldest first, landed in the
   * tree's `state`) over the pending writes, as the tree would have them over this host's
   * version had it seen them: an append at the end of this state, a positioned extent at its
   * offset except over bytes written here (newer: they win; not the zeros a truncate grew the
   * file by), and after a truncate that shortened the file here not past this state's end (the
   * truncate did not see it). The state then holds `state` (its mark) and
   * a whole version built from it may count them as seen. A chunk's worth at a time, each piece
   * counted in `laid` once laid: a catchUp stopped part-way (an abort, an unreadable extent)
   * leaves the mark where it was, and the next one lays none of it again. In a turn of the queue.
   */
  async catchUp (state: FileState, since: readonly Extent[], opts: AbortOptions = {}): Promise<void> {
    const signal = opts.signal
    await this.serial(async () => {
      if (!this.changed) {
        // committed meanwhile: nothing pending to lay them over
        return
      }
      const base = baseOf(state)
      const appendOnly = this.appendOnly
      const mtime = this.mtime
      this.laying = true
      try {
        for (const ext of since) {
          const key = extentKey(ext)
          const laid = this.laid.get(key) ?? { at: ext.offset === undefined ? this.size : ext.pos, done: 0 }
          if (ext.offset === undefined && laid.done === 0) {
            // an append, at the end of this state when its first piece was laid
            while (laid.done < ext.size) {
              const n = Math.min(CHUNK_SIZE, ext.size - laid.done)
              await this.writeNow(await this.peerBytes(base, ext, laid.done, laid.done + n, signal), laid.at + laid.done, undefined, signal)
              laid.done += n
              this.laid.set(key, laid)
            }
            continue
          }
          // a positioned write, or the rest of an append a catchUp stopped part-way through: laid
          // where it goes around this host's own bytes (written since, so newer). A file cut here ends
          // where it ends now: the peer's bytes past it were cut by a truncate that did not see them
          // (an append's rest: by any truncate since its first piece, `cut`). One only grown here
          // (zeros, not this host's bytes) keeps them
          const start = ext.offset === undefined ? laid.at : ext.pos
          const end = ext.offset === undefined
            ? Math.min(start + ext.size, laid.cut ?? Infinity)
            : this.shrunk ? Math.min(start + ext.size, this.size) : start + ext.size
          for (let p = start + laid.done; p < end;) {
            const q = Math.min(end, p + CHUNK_SIZE)
            await this.aroundOwn(this.ownRanges(), p, q, async () => await this.peerBytes(base, ext, p - start, q - start, signal), signal)
            laid.done = q - start
            this.laid.set(key, laid)
            p = q
          }
        }
      } finally {
        this.laying = false
        this.appendOnly = appendOnly
        this.mtime = mtime
      }
      this.mark = state.mark
      this.laid.clear()
    }, signal)
  }

  /**
   * Bytes [from, to) of a peer's extent, in a buffer of this file's own: inline content is a view
   * of the op's signed bytes in the tree, and writeNow may keep what it is given as a chunk that
   * later writes change in place.
   */
  private async peerBytes (base: Base, ext: Extent, from: number, to: number, signal?: AbortSignal): Promise<Uint8Array> {
    const bytes = await this.extentBytes(base, ext, from, to, signal)
    return 'inline' in ext.content ? bytes.slice() : bytes
  }

  /**
   * The bytes written here as positioned extents over `c`'s content (a whole version of this
   * state just built): the ones that hold only this host's bytes, claiming nothing of what it did
   * not read, for a commit whose file keeps moving under it (volume.ts commitOpen). Undefined
   * when the state cannot be extents (a truncate, no content), and past MAX_OWN_EXTENTS ranges
   * (ownTooMany) unless `all`: then still one extent per range, up to OWN_EXTENTS_ALL_MAX (the
   * batch cuts them into ops of MAX_OP_EXTENTS), never one spanning them, whose bytes between
   * would be the state's as read, over what came since (review37m).
   */
  ownExtents (c: Committed, all = false): PatchExtent[] | undefined {
    if (this.truncated || c.content === null || c.append !== undefined || c.extents !== undefined) return undefined
    const mine = this.ownRanges()
    if (mine.length === 0 || mine.length > (all ? OWN_EXTENTS_ALL_MAX : MAX_OWN_EXTENTS)) return undefined
    const content = c.content
    // (inline bytes are an extent's whole content: each range its own slice of them)
    return mine.map(([from, to]) => 'inline' in content
      ? { content: { inline: content.inline.slice(from, to) }, at: 0, size: to - from, offset: from }
      : { content, at: from, size: to - from, offset: from })
  }

  /** True when this host's written bytes are more ranges than ownExtents lists (MAX_OWN_EXTENTS), and no truncate here. */
  ownTooMany (): boolean {
    return !this.truncated && this.ownRanges().length > MAX_OWN_EXTENTS
  }

  /**
   * Lay `state` (the tree's state of the file now: a version that came since this state's mark
   * and its extents) under the pending writes: its bytes everywhere but where this host wrote
   * since the base (`mine`, newer: they win), the file as long as `state` or as this host's last
   * written byte, zeros past `state`'s end that this host did not write. The open state then holds
   * `state` (its mark), and a whole version built from it may count it as seen (the close of more
   * ranges than its extents may list over a version that came: volume.ts commitOpen). A chunk's
   * worth at a time; stopped part-way (an abort, an unreadable chunk), the mark stays where it was
   * and the next one lays it all again (the same bytes). In a turn of the queue.
   */
  async layUnder (state: FileState, opts: AbortOptions = {}): Promise<void> {
    const signal = opts.signal
    await this.serial(async () => {
      if (!this.changed) return
      const base = baseOf(state)
      const appendOnly = this.appendOnly
      const mtime = this.mtime
      const mine = this.ownRanges()
      const end = Math.max(state.size, mine[mine.length - 1]?.[1] ?? 0)
      this.laying = true
      try {
        // (a cut here, not a truncate: this host cut nothing, the state is as long as that version)
        if (this.size > end) await this.resize(end, signal)
        for (let p = 0; p < end;) {
          const i = Math.floor(p / CHUNK_SIZE)
          const q = Math.min(end, (i + 1) * CHUNK_SIZE)
          await this.aroundOwn(mine, p, q, async () => {
            // a buffer of this file's own (writeNow may keep it as a chunk changed in place), zeros past the state's end
            const bytes = new Uint8Array(q - p)
            const src = await this.baseChunk(base, i, signal)
            if (src !== undefined) bytes.set(src.subarray(0, Math.min(src.byteLength, q - p)))
            return bytes
          }, signal)
          p = q
        }
      } finally {
        this.laying = false
        this.appendOnly = appendOnly
        this.mtime = mtime
      }
      this.mark = state.mark
      this.laid.clear()
    }, signal)
  }

  /**
   * Write bytes [from, to) of a piece (at most a chunk) but where this host wrote (`mine`: its own
   * ranges, ownRanges(), newer: they win), the walk of catchUp and layUnder. `piece()` gives the
   * piece's bytes in a buffer of this file's own (writeNow may keep it as a chunk changed in
   * place), read once, and only when some gap needs them. A gap short of the piece is copied out:
   * as a view it would be a patch holding the whole buffer while the file counts only the gap
   * (patchBytes), so the buffer bound never spilled it (review37m; catchUp's peer pieces too,
   * cache38); the whole piece is the buffer itself, counted as what it is.
   */
  private async aroundOwn (mine: ReadonlyArray<readonly [number, number]>, from: number, to: number, piece: () => Promise<Uint8Array>, signal?: AbortSignal): Promise<void> {
    let bytes: Uint8Array | undefined
    const lay = async (a: number, z: number): Promise<void> => {
      bytes ??= await piece()
      const gap = bytes.subarray(a - from, z - from)
      await this.writeNow(z - a === bytes.byteLength ? gap : gap.slice(), a, undefined, signal)
    }
    // the first range ending past `from` (sorted, apart: the ones before it are passed)
    let lo = 0
    let hi = mine.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (mine[mid][1] <= from) lo = mid + 1
      else hi = mid
    }
    let at = from
    for (let j = lo; j < mine.length; j++) {
      const [a, z] = mine[j]
      if (a >= to) break
      if (a > at) await lay(at, a)
      at = Math.max(at, z)
    }
    if (at < to) await lay(at, to)
  }

  /** The manifest of `base`'s own content (by default the current base's), loaded once per version. */
  private async loadManifest (signal?: AbortSignal, base: Base = this.base): Promise<Manifest | undefined> {
    const c = base.content
    if (c === null || !('manifest' in c)) return undefined
    base.manifest ??= await this.chunks.readManifest(c.manifest, { path: this.path(), signal })
    return base.manifest
  }

  /** Bytes [from, to) of an extent of `base` (its own offsets, from its first appended byte). */
  private async extentBytes (base: Base, ext: Extent, from: number, to: number, signal?: AbortSignal, range = false): Promise<Uint8Array> {
    const c = ext.content
    if ('inline' in c) return c.inline.subarray(ext.at + from, ext.at + to)
    const m = await this.extentManifest(base, c.manifest, signal)
    const out = new Uint8Array(to - from)
    const a = ext.at + from
    const b = ext.at + to
    for (let i = Math.floor(a / m.chunkSize); i * m.chunkSize < b; i++) {
      const found = chunkAt(m, i)
      if (found === undefined || found.ref.cid === null) continue
      const ref = found.ref
      const lo = Math.max(a, ref.offset)
      const hi = Math.min(b, ref.offset + ref.size)
      if (hi <= lo) continue
      // `range`: a small read takes only the leaves holding its bytes (readRange), not the chunk
      const bytes = range
        ? await this.chunks.readRange(ref, lo - ref.offset, hi - ref.offset, { path: this.path(), signal })
        : (await this.chunks.readChunk(ref, { path: this.path(), signal })).subarray(lo - ref.offset, hi - ref.offset)
      out.set(bytes, lo - a)
    }
    return out
  }

  /**
   * Bytes [from, to) (within chunk `i`, a small read) of the committed state `base` when extents
   * lie over some of them: the content's bytes and each extent's piece read by range (the leaves
   * holding them), not the chunk and every extent over it whole (after the close of sparse
   * writes, a chunk's extents lie in a dozen packed chunks). Undefined when no extent is there.
   */
  private async rangeWithExtents (base: Base, i: number, from: number, to: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    if (!overlaps(base, from, to)) return undefined
    const out = new Uint8Array(to - from)
    const c = base.content
    const cEnd = Math.min(to, base.contentEnd)
    if (c !== null && cEnd > from) {
      if ('inline' in c) {
        out.set(c.inline.subarray(from, cEnd))
      } else {
        const manifest = await this.loadManifest(signal, base)
        const found = manifest !== undefined ? chunkAt(manifest, i) : undefined
        const ref = found?.ref
        if (manifest === undefined || manifest.chunkSize !== CHUNK_SIZE) return undefined
        if (ref !== undefined && ref.cid !== null) {
          const hi = Math.min(cEnd, ref.offset + ref.size)
          if (hi > from) out.set(await this.chunks.readRange(ref, from - ref.offset, hi - ref.offset, { path: this.path(), signal }))
        }
      }
    }
    for (const { from: a, to: b, ext } of mapOf(base).within(from, to)) {
      out.set(await this.extentBytes(base, ext, a - ext.pos, b - ext.pos, signal, true), a - from)
    }
    return out
  }

  /** The manifest of an extent's content (read once per version). */
  private async extentManifest (base: Base, cid: CID, signal?: AbortSignal): Promise<Manifest> {
    const key = cid.toString()
    let m = base.extentManifests.get(key)
    if (m === undefined) {
      m = await this.chunks.readManifest(cid, { path: this.path(), signal })
      base.extentManifests.set(key, m)
    }
    return m
  }

  /**
   * Chunk `i` (`len` bytes) of `base` when one extent covers every byte of it with a whole chunk
   * of its content stored at the same place (a chunk a sparse commit recorded whole,
   * buildSparse()): that chunk's ref, at the chunk's offset in the file. A fold takes it as it
   * is: no read, no encode, no store, no placement (the commit placed it).
   */
  private async wholeExtentRef (base: Base, i: number, len: number, signal?: AbortSignal): Promise<ChunkRef | undefined> {
    const start = i * CHUNK_SIZE
    if (base.pieces.length === 0 || len <= 0 || start + len > this.baseLimit || start + len > base.size) return undefined
    const segs = mapOf(base).within(start, start + len)
    if (segs.length !== 1 || segs[0].from !== start || segs[0].to !== start + len) return undefined
    const ext = segs[0].ext
    const c = ext.content
    if ('inline' in c) return undefined
    const m = await this.extentManifest(base, c.manifest, signal)
    const at = ext.at + start - ext.pos
    if (m.chunkSize !== CHUNK_SIZE || at % CHUNK_SIZE !== 0) return undefined
    const found = chunkAt(m, at / CHUNK_SIZE)
    if (found === undefined || found.ref.cid === null || found.ref.offset !== at || found.ref.size !== len) return undefined
    return { ...found.ref, offset: start }
  }

  /**
   * The committed or spilled bytes of chunk `i` (not dirty, not patched), without a copy: the
   * readable prefix, possibly shorter than the chunk (the rest reads as zeros), or undefined.
   */
  private async source (i: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const start = i * CHUNK_SIZE
    const len = Math.max(0, Math.min(CHUNK_SIZE, this.size - start))
    const s = this.stored.get(i)
    if (s !== undefined) {
      const src = await this.chunks.readChunk(s, { path: this.path(), signal })
      return src.subarray(0, Math.min(len, src.byteLength))
    }
    const src = await this.baseChunk(this.base, i, signal)
    // base bytes past a truncation point read as zeros, even when the file grew again
    const limit = Math.min(len, Math.max(0, this.baseLimit - start))
    return src?.subarray(0, Math.min(limit, src.byteLength))
  }

  /**
   * Chunk `i` of the committed state `base` (its content, then its extents), the state's bytes
   * from the chunk's start, at most a chunk (without a copy when they come from one stored chunk),
   * or undefined for a hole or past the state's end.
   */
  private async baseChunk (base: Base, i: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const start = i * CHUNK_SIZE
    if (start >= base.size) return undefined
    let src: Uint8Array | undefined
    const c = start < base.contentEnd ? base.content : null
    if (c !== null && 'inline' in c) {
      src = c.inline.subarray(start, start + CHUNK_SIZE)
    } else if (c !== null) {
      const manifest = await this.loadManifest(signal, base)
      const found = manifest !== undefined ? chunkAt(manifest, i) : undefined
      // a hole (of one chunk or of a run of them) reads as zeros: nothing to fetch
      if (found !== undefined && found.ref.cid !== null) {
        // this chunk, when not fetched ahead already, is asked for first, then the chunks after it
        // (a sequential reader's, of this version only) are fetched ahead: asked after them, its
        // fetch queued behind theirs (this host's disk reads in the threadpool, the holders',
        // the pulls) and the run's first read waited for a window of chunks (cread44). take()
        // before fill(): fill() starts afresh for another version (take() has none of it either)
        const early = this.ahead.take(base, i)
        const own = early === undefined ? this.chunks.readChunk(found.ref, { path: this.path(), signal }) : undefined
        this.ahead.fill(base, manifest!, i, found.at, this.path())
        src = own !== undefined ? await own : (await raceSignal(early!, signal)) ?? await this.chunks.readChunk(found.ref, { path: this.path(), signal })
      }
    }
    const len = Math.min(CHUNK_SIZE, base.size - start)
    if (overlaps(base, start, start + len)) src = await this.withExtents(base, start, len, src, signal)
    return src
  }

  /**
   * Bytes [from, to) (within chunk `i`) of the committed state `base`, when they all come from
   * its content's manifest (no extent over them): read through ChunkService.readRange, which
   * fetches only the leaves of the data fragments holding them. Undefined when they do not
   * (inline content, extents, past the content): the caller reads the chunk (baseChunk).
   */
  private async baseRange (base: Base, i: number, from: number, to: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const c = base.content
    if (c === null || !('manifest' in c) || to > base.contentEnd || overlaps(base, from, to)) return undefined
    const manifest = await this.loadManifest(signal, base)
    if (manifest === undefined || manifest.chunkSize !== CHUNK_SIZE) return undefined
    const found = chunkAt(manifest, i)
    if (found === undefined) return undefined
    const ref = found.ref
    // a hole (of one chunk or of a run of them) reads as zeros: nothing to fetch
    if (ref.cid === null) return new Uint8Array(to - from)
    if (to - ref.offset > ref.size) return undefined
    return await this.chunks.readRange(ref, from - ref.offset, to - ref.offset, { path: this.path(), signal })
  }

  /** Bytes at `start` (`len` long, within a chunk) of `base` with extents: its content's part, then theirs over it, in op order. */
  private async withExtents (base: Base, start: number, len: number, content: Uint8Array | undefined, signal?: AbortSignal): Promise<Uint8Array> {
    const out = new Uint8Array(len)
    if (content !== undefined) out.set(content.subarray(0, Math.max(0, Math.min(len, base.contentEnd - start))))
    const end = start + len
    // each byte from the newest extent over it, found through the map: bytes a newer extent hides are never read
    for (const { from, to, ext } of mapOf(base).within(start, end)) {
      out.set(await this.extentBytes(base, ext, from - ext.pos, to - ext.pos, signal), from - start)
    }
    return out
  }

  /** A fresh copy of chunk `i` at its current length, patches applied. */
  private async assemble (i: number, signal?: AbortSignal): Promise<Uint8Array> {
    const len = Math.max(0, Math.min(CHUNK_SIZE, this.size - i * CHUNK_SIZE))
    const out = new Uint8Array(len)
    // taken before the await: a write meanwhile may move the patches into a buffer
    const patches = this.patches.get(i) ?? []
    const spilled = [...(this.spilled.get(i) ?? [])]
    const src = await this.source(i, signal)
    if (src !== undefined) out.set(src)
    // the spilled patches first: every one is older than every patch in memory. They are read by
    // range (a range read takes the leaves that hold it from the local fragment): a chunk's
    // patches lie in many packed chunks, and decoding each whole would be a MiB per patch. One
    // spill packs a chunk's patches next to each other (pack()): each such run is one range read
    const runs: Array<{ ref: ChunkRef, from: number, to: number, parts: Spilled[] }> = []
    for (const p of spilled) {
      if (p.at >= len) continue
      const run = runs[runs.length - 1]
      if (run !== undefined && run.ref === p.ref && run.to === p.off) {
        run.to += p.size
        run.parts.push(p)
      } else {
        runs.push({ ref: p.ref, from: p.off, to: p.off + p.size, parts: [p] })
      }
    }
    const read = await Promise.all(runs.map(async r => await this.chunks.readRange(r.ref, r.from, r.to, { path: this.path(), signal })))
    for (let j = 0; j < runs.length; j++) {
      // in the spilled order: a later patch wins where they overlap
      for (const p of runs[j].parts) out.set(read[j].subarray(p.off - runs[j].from, p.off - runs[j].from + Math.min(p.size, len - p.at)), p.at)
    }
    for (const p of patches) {
      if (p.at < len) out.set(p.bytes.subarray(0, len - p.at), p.at)
    }
    return out
  }

  /** Whether chunk `i` has patches, in memory or spilled. */
  private patched (i: number): boolean {
    return this.patches.has(i) || this.spilled.has(i)
  }

  private dropPatches (i: number): void {
    for (const p of this.patches.get(i) ?? []) this.patchBytes -= p.bytes.byteLength
    this.patches.delete(i)
    this.spilled.delete(i)
  }

  /** Chunk `i` as a dirty in-memory buffer (read and patched if needed), to modify in place. */
  private async materialize (i: number, signal?: AbortSignal): Promise<Uint8Array> {
    const d = this.dirty.get(i)
    if (d !== undefined) return d
    const bytes = await this.assemble(i, signal)
    this.dropPatches(i)
    this.dirty.set(i, bytes)
    this.dirtyBytes += bytes.byteLength
    this.stored.delete(i)
    return bytes
  }

  /**
   * The bytes [position, position + length) of the file as this handle sees it (fewer at the end
   * of file), in a buffer the caller owns; with `borrow`, the caller only reads them (and copies
   * what it keeps), so a read within one chunk of the committed state may be a view of that
   * chunk as stored or cached: no buffer of the read's length and no copy into it.
   */
  async read (position: number, length: number, opts: AbortOptions & { borrow?: boolean } = {}): Promise<Uint8Array> {
    const signal = opts.signal
    signal?.throwIfAborted()
    // nothing pending here: the bytes are those of the committed state as it is now (content and
    // extents), and this read returns that state whatever comes meanwhile (a state adopted from
    // elsewhere, a write, an append): never the start of one version and the rest of the next
    const pinned = this.changed ? undefined : this.base
    const end = Math.min(pinned?.size ?? this.size, position + length)
    if (position >= end) return new Uint8Array(0)
    this.ahead.observe(position, end - position)
    // a small random read of the committed state: just the bytes it needs (baseRange); a
    // sequential reader gets whole chunks, fetched ahead
    const small = pinned !== undefined && end - position <= RANGE_READ_MAX_BYTES && !this.ahead.sequential
    if (small && Math.floor(position / CHUNK_SIZE) === Math.floor((end - 1) / CHUNK_SIZE)) {
      // within one chunk: readRange's answer is the read's own buffer, returned as it is (no
      // buffer of the read's length and no copy into it: a 4 KiB random read is mostly this)
      const i = Math.floor(position / CHUNK_SIZE)
      const part = await this.baseRange(pinned, i, position, end, signal)
      if (part !== undefined && part.byteLength === end - position) return part
    }
    let first: Uint8Array | undefined
    if (opts.borrow === true && pinned !== undefined && !small && Math.floor(position / CHUNK_SIZE) === Math.floor((end - 1) / CHUNK_SIZE)) {
      // a sequential reader's request (up to 1 MiB through the mount) within one chunk: a view
      // of the chunk, which the caller copies (a fresh zeroed buffer and a copy per request were
      // a third of a one-host cold read's CPU)
      const start = Math.floor(position / CHUNK_SIZE) * CHUNK_SIZE
      first = await this.baseChunk(pinned, start / CHUNK_SIZE, signal)
      if (first !== undefined && first.byteLength >= end - start) return first.subarray(position - start, end - start)
    }
    const out = new Uint8Array(end - position)
    for (let i = Math.floor(position / CHUNK_SIZE); i * CHUNK_SIZE < end; i++) {
      const start = i * CHUNK_SIZE
      const [lo, hi] = [Math.max(position, start), Math.min(end, start + CHUNK_SIZE)]
      const part = small ? await this.baseRange(pinned, i, lo, hi, signal) ?? await this.rangeWithExtents(pinned, i, lo, hi, signal) : undefined
      if (part !== undefined) {
        out.set(part, Math.max(position, start) - position)
        continue
      }
      // reads run beside serialised writes: they assemble a copy and change no state
      const bytes = pinned !== undefined
        ? first ?? await this.baseChunk(pinned, i, signal)
        : this.dirty.get(i) ?? (this.patched(i) ? await this.assemble(i, signal) : await this.source(i, signal))
      if (bytes === undefined) continue
      const from = Math.max(position, start)
      const to = Math.min(end, start + bytes.byteLength)
      if (to > from) out.set(bytes.subarray(from - start, to - start), from - position)
    }
    return out
  }

  /**
   * Write `data` (already copied from any kernel buffer, and not reused by the caller) at
   * `position`, or, with `'end'` (O_APPEND), at the end of file as it is when this write's turn
   * comes: appends from any number of handles land whole, one after another, never over each
   * other. Returns where the bytes went. As POSIX has it for the maximum file size `maxEnd`: a
   * write that starts at or past it fails with EFBIG and writes nothing; one that would cross it
   * is cut short there.
   */
  async write (data: Uint8Array, at: number | 'end', opts: AbortOptions & { maxEnd?: number, deadlineMs?: number, by?: object, owner?: number, ends?: boolean } = {}): Promise<{ position: number, bytesWritten: number }> {
    // (an append waiting for its turn is its handle's writing now: `queued`)
    const by = at === 'end' && data.byteLength > 0 ? opts.by : undefined
    if (by !== undefined) this.queued.set(by, (this.queued.get(by) ?? 0) + 1)
    let waiting = by !== undefined
    const turned = (): void => {
      if (!waiting || by === undefined) return
      waiting = false
      const n = (this.queued.get(by) ?? 1) - 1
      if (n > 0) this.queued.set(by, n)
      else this.queued.delete(by)
    }
    try {
      return await this.appendTurn(data, at, opts, turned)
    } finally {
      turned()
    }
  }

  /** write()'s turn of the queue (`turned` called as it starts). */
  private async appendTurn (data: Uint8Array, at: number | 'end', opts: AbortOptions & { maxEnd?: number, deadlineMs?: number, by?: object, owner?: number, ends?: boolean }, turned: () => void): Promise<{ position: number, bytesWritten: number }> {
    return await this.serial(async () => {
      turned()
      // an append through another writer than the last one: the last one's write(2)s are whole
      // (`tail`); one with no writer named waits on no one. An empty one moves nothing
      if (at === 'end' && data.byteLength > 0 && (opts.by === undefined || !this.sameWriter(opts.by, opts.owner))) this.tail = opts.by === undefined ? undefined : { by: opts.by, owner: opts.owner, from: this.size, last: this.now() }
      const done = await this.writeNow(data, at, opts.maxEnd, opts.signal, true, opts.deadlineMs)
      // (answered now: the kernel sends the next piece of the write(2) from here)
      if (at === 'end' && data.byteLength > 0 && this.tail !== undefined && opts.by !== undefined && this.sameWriter(opts.by, opts.owner)) {
        // the last piece of its write(2) (`ends`): the run is whole, any commit takes it, and the
        // writer's next append starts a run of its own
        if (opts.ends === true) this.tail = undefined
        else {
          this.tail.last = this.now()
          this.tail.owner ??= opts.owner
        }
      }
      return done
    }, opts.signal)
  }

  /**
   * Whether handle `by` with lock owner `owner` is the writer of the last run (`tail`): its handle,
   * and its owner when both are named (a handle's writes or flushes that name none, the Volume's
   * own callers', are its run's).
   */
  private sameWriter (by: object | undefined, owner: number | undefined): boolean {
    const tail = this.tail
    return tail !== undefined && tail.by === by && (tail.owner === undefined || owner === undefined || tail.owner === owner)
  }

  /** The writer `by` is closed (every owner of it): its appends are whole, any commit takes them (`tail`). */
  letGo (by: object): void {
    if (this.tail?.by === by) this.tail = undefined
  }

  /**
   * write()'s turn. `behind`: the chunks this write finished are stored in a turn of their own
   * right after it (storeBehind), not before it returns, within `deadlineMs` (the write's own
   * deadline; storeBehindTimeoutMs when it names none).
   */
  private async writeNow (data: Uint8Array, at: number | 'end', maxEnd: number | undefined, signal: AbortSignal | undefined, behind = false, deadlineMs?: number): Promise<{ position: number, bytesWritten: number }> {
    const position = at === 'end' ? this.size : at
    if (maxEnd !== undefined && data.byteLength > 0) {
      if (position >= maxEnd) throw new FsError('EFBIG', 'write', this.path())
      data = data.subarray(0, maxEnd - position)
    }
    const end = position + data.byteLength
    // only O_APPEND writes since the last commit (and a base to append to): the commit may be an append
    this.appendOnly = this.current !== undefined && at === 'end' && (this.appendOnly || !this.changed)
    // marked first: a write stopped part-way (an abort, an unreachable chunk) keeps what it did
    this.changed = true
    this.mtime = nowNs()
    this.wrote(position, end)
    if (end > this.size) await this.resize(end, signal)
    for (let i = Math.floor(position / CHUNK_SIZE); i * CHUNK_SIZE < end; i++) {
      const start = i * CHUNK_SIZE
      const from = Math.max(position, start)
      const to = Math.min(end, start + CHUNK_SIZE)
      const piece = data.subarray(from - position, to - position)
      const bytes = this.dirty.get(i)
      if (bytes !== undefined) {
        bytes.set(piece, from - start)
      } else if (from === start && to === Math.min(this.size, start + CHUNK_SIZE)) {
        // the whole chunk is overwritten: nothing of the old one is needed. `data` is this
        // file's to keep (the volume's copy, or a buffer handed over: FileHandle.write), as
        // patches keep their pieces, so the chunk is the piece itself, not a copy (a 1 MiB
        // write through the mount: no 1 MiB allocation and copy here, issue 15). A piece is a
        // view of at most one write's buffer, so it holds at most that much memory.
        const fresh = piece
        this.dropPatches(i)
        this.dirty.set(i, fresh)
        this.dirtyBytes += fresh.byteLength
        this.stored.delete(i)
      } else {
        let list = this.patches.get(i)
        if (list === undefined) { list = []; this.patches.set(i, list) }
        list.push({ at: from - start, bytes: piece })
        this.patchBytes += piece.byteLength
        if (list.length + (this.spilled.get(i)?.length ?? 0) > PATCHES_PER_CHUNK_MAX) await this.materialize(i, signal)
      }
    }
    this.mtime = nowNs()
    const finished = this.early.finished(position, end)
    if (behind && finished.length > 0 && this.dirtyBytes + this.patchBytes <= this.bufferBytes) {
      // the write is answered now and the chunks it finished are hashed and stored in the next
      // turn, while the writer's next write is on its way (through the mount: its copy into the
      // kernel and to this process): the next turn of this inode starts once they are stored, so
      // the window's backpressure holds as before, one write later (issue 15). Only while the
      // buffer is within its bound: past it (stores behind that failed, a full disk), the write
      // stores and spills itself, and a failure there is the writer's, so the memory this file
      // holds stays bounded
      const stop = this.behindStop.signal
      const ms = deadlineMs ?? this.storeBehindTimeoutMs
      void this.serial(async () => { await this.storeBehind(finished, stop, ms) })
      return { position, bytesWritten: data.byteLength }
    }
    if (behind && finished.length > 0) {
      // past the bound: stored here, in the write's turn. An early store that fails leaves its
      // chunk for the spill (as behind), and a spill that fails (a full disk) fails this write:
      // memory stops growing with it
      try {
        for (const i of finished) await this.storeEarly(i, signal)
      } catch (err: any) {
        if (signal?.aborted === true) throw err
        log.error('store of a chunk written to %s failed: %s; it is spilled', this.path(), err?.message)
      }
      if (this.dirtyBytes + this.patchBytes > this.bufferBytes) await this.spill(signal)
      return { position, bytesWritten: data.byteLength }
    }
    for (const i of finished) await this.storeEarly(i, signal)
    if (this.dirtyBytes + this.patchBytes > this.bufferBytes) await this.spill(signal)
    return { position, bytesWritten: data.byteLength }
  }

  /**
   * The turn after a write that finished chunks `which`: they are stored early, then the buffer
   * bound is checked, as the write itself used to before returning. Bound to no request's
   * deadline (the write was answered) but to its own, the deadline the write had (`ms`: the
   * write's deadlineMs, or storeBehindTimeoutMs), and to `stop` (abandon()): a store that never settles would hold
   * this inode's turns for good. A store that fails or is stopped leaves its chunk in memory: the
   * commit stores it, and a failure that lasts is reported there (fsync, close), as a failed
   * writeback is, not to whichever write of the inode comes next. Never throws.
   */
  private async storeBehind (which: number[], stop: AbortSignal, ms: number): Promise<void> {
    // linked by listeners cleared once over (abort.ts), not AbortSignal.any on `stop`, which
    // lives as long as the file: no composite signal per finished chunk kept alive by it
    const { signal, clear } = boundedSignal([stop], ms)
    try {
      try {
        for (const i of which) await this.storeEarly(i, signal)
      } catch (err: any) {
        log.error('store behind a write to %s failed: %s; the chunk stays in memory for the commit', this.path(), err?.message)
      }
      // run whether the stores failed or not: a failed one left its chunk in memory
      try {
        if (this.dirtyBytes + this.patchBytes > this.bufferBytes) await this.spill(signal)
      } catch (err: any) {
        log.error('spill behind a write to %s failed: %s', this.path(), err?.message)
      }
    } finally {
      clear()
    }
  }

  /**
   * fallocate(2) in one turn (no write of another handle lands between its steps). `keepSize`:
   * the size stays (FALLOC_FL_KEEP_SIZE); otherwise a range past the end grows the file, with
   * zeros, as a truncate up does. `zero`: the range reads as zeros afterwards (PUNCH_HOLE,
   * ZERO_RANGE): written as zeros, a piece per chunk it touches (a whole zero chunk is stored
   * once, as a chunk's content is its hash, however many it stands for); a range reaching the end of file is cut
   * and regrown instead, which writes nothing. Without `zero` nothing is written: darkfs
   * reserves no blocks (a chunk's fragments are placed when it is committed), and the caller
   * checks the free space first.
   */
  async allocate (offset: number, length: number, opts: AbortOptions & { keepSize: boolean, zero: boolean }): Promise<void> {
    const signal = opts.signal
    await this.serial(async () => {
      const end = offset + length
      const size = this.size
      if (opts.zero && offset < size) {
        const to = Math.min(end, size)
        // marked first, as a write: no state adopted from elsewhere while it changes the bytes
        this.appendOnly = false
        this.changed = true
        if (to === size) {
          await this.truncateNow(offset, signal)
          await this.truncateNow(size, signal)
        } else {
          // a buffer per piece: the file keeps a whole chunk's piece as the chunk's own bytes
          for (let at = offset; at < to;) {
            const next = Math.min(to, (Math.floor(at / CHUNK_SIZE) + 1) * CHUNK_SIZE)
            await this.writeNow(new Uint8Array(next - at), at, undefined, signal)
            at = next
          }
        }
        this.mtime = nowNs()
      }
      if (!opts.keepSize && end > this.size) await this.truncateNow(end, signal)
    }, signal)
  }

  /**
   * Store full dirty chunks and patched chunks now (bounded memory for big or random writes): a
   * chunk whose patches in memory are a small share of it (SPILL_PACK_MAX) has them packed with
   * other chunks' into whole chunks, the rest are rewritten.
   */
  private async spill (signal?: AbortSignal): Promise<void> {
    const full = [...this.dirty].filter(([, bytes]) => bytes.byteLength === CHUNK_SIZE).map(([i]) => i)
    const sparse: number[] = []
    const dense: number[] = []
    for (const [i, list] of this.patches) (list.reduce((n, p) => n + p.bytes.byteLength, 0) <= SPILL_PACK_MAX ? sparse : dense).push(i)
    await forEachLimited([...full, ...dense], STORE_PARALLEL, async i => { await this.storeAside(i, signal) })
    // in file order: each packed chunk then holds the patches of neighbouring chunks, and a read
    // or fold going through the file meets each packed chunk once, not one in every chunk
    await this.pack(sparse.sort((a, b) => a - b), signal)
  }

  /**
   * Move the patches of chunks `which` out of memory: their bytes go one after another into
   * packed chunks stored here (durable, as any spill), each patch remembered by where it went.
   */
  private async pack (which: number[], signal?: AbortSignal): Promise<void> {
    const group = new PutGroup()
    let buf = new Uint8Array(CHUNK_SIZE)
    let used = 0
    let waiting: Array<{ i: number, p: Patch, off: number }> = []
    const moved: Array<{ i: number, s: Spilled }> = []
    const flush = async (): Promise<void> => {
      if (used === 0) return
      const { ref } = await this.chunks.storeChunk(buf.subarray(0, used), 0, { signal, group, recycle: true })
      this.holdAside(ref)
      for (const w of waiting) moved.push({ i: w.i, s: { at: w.p.at, size: w.p.bytes.byteLength, ref, off: w.off } })
      buf = new Uint8Array(CHUNK_SIZE)
      used = 0
      waiting = []
    }
    const packedList = which.map(i => ({ i, list: this.patches.get(i) ?? [] }))
    for (const { i, list } of packedList) {
      for (const p of list) {
        if (used + p.bytes.byteLength > CHUNK_SIZE) await flush()
        buf.set(p.bytes, used)
        waiting.push({ i, p, off: used })
        used += p.bytes.byteLength
      }
    }
    await flush()
    await group.done()
    // nothing awaited from here: the patches leave memory together, in their order (this runs in
    // the inode's turn, so no write came between)
    for (const { i, list } of packedList) {
      if (this.patches.get(i) !== list) continue
      for (const p of list) this.patchBytes -= p.bytes.byteLength
      this.patches.delete(i)
    }
    for (const { i, s } of moved) {
      let list = this.spilled.get(i)
      if (list === undefined) { list = []; this.spilled.set(i, list) }
      list.push(s)
    }
  }

  /**
   * A chunk stored aside (spill) is this open's until the commit or abandon() (`aside`), and
   * not placed (ChunkService.aside) until its commit places it (placingAside()).
   */
  private holdAside (ref: ChunkRef): void {
    if (ref.cid === null) return
    this.chunks.open.add(ref)
    this.chunks.aside.add(ref)
    this.aside.push({ ref, unplaced: true })
  }

  /** A commit places chunk `ref` stored aside: its own placement's handover may take its copies now. */
  private placingAside (ref: ChunkRef): void {
    const e = this.aside.find(a => a.ref === ref && a.unplaced)
    if (e === undefined) return
    e.unplaced = false
    this.chunks.aside.remove(ref)
  }

  /** Store chunk `i` (dirty or patched) and keep only its ref: it leaves memory. */
  private async storeAside (i: number, signal?: AbortSignal): Promise<ChunkRef> {
    const d = this.dirty.get(i)
    const bytes = d ?? await this.assemble(i, signal)
    const { ref } = await this.chunks.storeChunk(bytes, i * CHUNK_SIZE, { signal, recycle: true })
    this.holdAside(ref)
    this.stored.set(i, ref)
    if (d !== undefined) { this.dirty.delete(i); this.dirtyBytes -= d.byteLength } else this.dropPatches(i)
    return ref
  }

  /** A sequential writer moved past chunk `i`: a whole one is stored and placed now (early-chunks.ts). */
  private async storeEarly (i: number, signal?: AbortSignal): Promise<void> {
    const d = this.dirty.get(i)
    if (d === undefined || d.byteLength !== CHUNK_SIZE || this.patched(i)) return
    // the chunk the base ends in, filled by growth alone (made whole by its many small writes:
    // materialize): its old bytes are the base's, and a commit of the growth (buildGrowth) takes
    // only the new ones, so it waits in memory for the commit, which stores it only as a whole version
    if (i * CHUNK_SIZE < this.base.size && this.growth() !== undefined) return
    const ref = await this.early.store(i, d, { signal })
    this.dirty.delete(i)
    this.dirtyBytes -= d.byteLength
    this.stored.set(i, ref)
  }

  /** Change the size: chunks past the end go, the last one is cut or zero-extended. */
  private async resize (len: number, signal?: AbortSignal): Promise<void> {
    const old = this.size
    if (len === old) return
    // growing needs nothing of the old last chunk: whatever it reads from (its buffer, refit
    // below; a stored chunk, the base, its patches) ends at the old size, and assemble() reads
    // zeros past that. It was made whole here: every fsync of a growing file (a SQLite WAL, a
    // log) rebuilt its last chunk from the base and its extents, up to a MiB copied per commit
    if (len < old) {
      const keep = Math.ceil(len / CHUNK_SIZE)
      const cut = len % CHUNK_SIZE
      if (cut !== 0) await this.materialize(keep - 1, signal)
      for (const [i, bytes] of this.dirty) {
        if (i >= keep) { this.dirty.delete(i); this.dirtyBytes -= bytes.byteLength }
      }
      for (const i of [...this.patches.keys(), ...this.spilled.keys()]) if (i >= keep) this.dropPatches(i)
      for (const i of this.stored.keys()) if (i >= keep) this.stored.delete(i)
      if (this.base.size > len) this.baseLimit = Math.min(this.baseLimit, len)
    }
    this.size = len
    // grow or cut the buffer of the (new) last chunk to its length in the new size
    const last = Math.ceil(len / CHUNK_SIZE) - 1
    for (const [i, bytes] of this.dirty) {
      const want = Math.max(0, Math.min(CHUNK_SIZE, len - i * CHUNK_SIZE))
      if (bytes.byteLength !== want && i <= last) {
        this.dirty.set(i, refit(bytes, want))
        this.dirtyBytes += want - bytes.byteLength
      }
    }
  }

  /**
   * The byte ranges written since the last commit, sorted, disjoint and not adjacent; undefined
   * once they pass PATCH_COMMIT_BYTES or PATCH_COMMIT_RANGES, or after a truncate (the commit is
   * then a whole version).
   */
  private written: Array<[number, number]> | undefined = []
  private writtenBytes = 0

  /** Note that [from, to) was written (merged into `written`). */
  private wrote (from: number, to: number): void {
    this.own(from, to)
    const w = this.written
    if (w === undefined || to <= from) return
    let i = 0
    while (i < w.length && w[i][1] < from) i++
    let j = i
    while (j < w.length && w[j][0] <= to) {
      from = Math.min(from, w[j][0])
      to = Math.max(to, w[j][1])
      this.writtenBytes -= w[j][1] - w[j][0]
      j++
    }
    w.splice(i, j - i, [from, to])
    this.writtenBytes += to - from
    if (this.writtenBytes > PATCH_COMMIT_BYTES || w.length > PATCH_COMMIT_RANGES) this.written = undefined
  }

  /** Base bytes at or past this offset are gone (truncated), even if later regrown. */
  private baseLimit = Number.MAX_SAFE_INTEGER
  /** A truncate since the last commit (extents can neither cut a file nor grow it with zeros alone). */
  private truncated = false
  /** A truncate since the last commit made the file shorter (catchUp cuts a peer's extent at the end then). */
  private shrunk = false

  async truncate (len: number, opts: AbortOptions = {}): Promise<void> {
    await this.serial(async () => { await this.truncateNow(len, opts.signal) }, opts.signal)
  }

  /** truncate()'s turn (also allocate()'s cut and growth). */
  private async truncateNow (len: number, signal: AbortSignal | undefined): Promise<void> {
    // marked first, as a write: no state adopted from elsewhere (rebase) while it resizes
    this.appendOnly = false
    this.changed = true
    // a truncate is a new whole version (a write op): no positioned extents for this commit
    this.written = undefined
    this.truncated = true
    // a cut takes the bytes past it out of this host's; zeros it grows the file by are not its
    // own (a peer's write there, laid by catchUp, is not hidden under them)
    const old = this.size
    for (const l of this.laid.values()) l.cut = Math.min(l.cut ?? Infinity, len)
    if (len < old) {
      this.shrunk = true
      this.mine = this.mine.flatMap(([a, z]): Array<[number, number]> => a >= len ? [] : [[a, Math.min(z, len)]])
    }
    await this.resize(len, signal)
    this.mtime = nowNs()
  }

  /** True when the only change since the last commit is that the file was emptied (size 0). */
  emptiedOnly (): boolean {
    return this.changed && this.size === 0
  }

  /**
   * Make the current state a version: store what is buffered, build the content. Returns
   * undefined when nothing changed. For a state no other handle writes to (a staging file);
   * an open inode commits with commit(), which keeps writes out until the op is recorded.
   */
  async prepare (opts: AbortOptions = {}): Promise<Committed | undefined> {
    return await this.serial(async () => await this.build(opts.signal), opts.signal)
  }

  /**
   * prepare(), `record` (the caller appends the `write` op), committed(), as one turn of this
   * inode's queue: a write through another handle waits until the version is recorded, so it
   * is never taken for committed (and dropped) without being in that version. Does nothing and
   * returns undefined when nothing changed, or when `record` returns false (it recorded no
   * version: the state stays pending).
   */
  async commit (record: (c: Committed) => Promise<boolean | void>, opts: AbortOptions & CommitFor = {}): Promise<Committed | undefined> {
    return await this.serial(async () => {
      const keep = this.keptBack(opts)
      if (keep !== undefined && keep.from <= this.base.size) return undefined
      // the run kept back, copied out: the version ends where it starts, and it is written again after
      const rest = keep !== undefined ? await this.read(keep.from, this.size - keep.from, { signal: opts.signal }) : undefined
      this.pipelined = true
      let c: Committed | undefined
      try {
        c = await this.build(opts.signal, opts.sync === true, keep?.from)
      } finally {
        this.pipelined = false
      }
      if (c === undefined) return undefined
      if (keep !== undefined) c.kept = true
      // the kept run's time, the last write's: it stays pending with the bytes
      const mtime = this.mtime
      if (await record(c) === false) return undefined
      // the chunks stored early past the version's end are in no version: released
      if (keep !== undefined) for (const i of [...this.stored.keys()]) if ((i + 1) * CHUNK_SIZE > keep.from) this.stored.delete(i)
      c.placing = this.early.committed()
      this.committed(c)
      if (keep !== undefined && rest !== undefined) await this.writeBack(rest, keep, mtime)
      return c
    }, opts.signal)
  }

  /**
   * The appends a commit `opts` keeps back (in a turn of the queue): another open writer's last
   * run (`tail`) while every change since the last commit is an append; none for an fsync or a
   * last close (`all`), nor past APPEND_KEEP_MAX, nor for a run whose handle wrote nothing for
   * APPEND_KEEP_IDLE_MS (its write(2)s are whole: the next piece comes as soon as one is
   * answered). Positioned writes and truncates commit as they are (a whole version or extents:
   * nothing is kept back then).
   */
  private keptBack (opts: CommitFor): { by: object, owner?: number, from: number, last: number } | undefined {
    const tail = this.tail
    if (opts.all === true || tail === undefined || this.sameWriter(opts.by, opts.owner) || !this.changed || !this.appendOnly) return undefined
    if (this.baseLimit < this.base.size || tail.from < this.base.size) return undefined
    if (this.now() - tail.last > APPEND_KEEP_IDLE_MS && !this.queued.has(tail.by)) return undefined
    if (this.size - tail.from > APPEND_KEEP_MAX) {
      log('%s: %d bytes appended through another handle since its last flush: committed, not kept back', this.path(), this.size - tail.from)
      return undefined
    }
    return tail
  }

  /**
   * After a version that ends where the kept-back run starts: the run's bytes at the new end of
   * file (the tree's: the peers' appends that came are before it), still pending, still the
   * writer's run, with the time it was written. Bytes the state holds in memory: no write here
   * fails for want of a read (a failed store behind it leaves them in memory, logged).
   */
  private async writeBack (rest: Uint8Array, keep: { by: object, owner?: number, last: number }, mtime: bigint | undefined): Promise<void> {
    this.tail = { by: keep.by, owner: keep.owner, from: this.size, last: keep.last }
    try {
      await this.writeNow(rest, 'end', undefined, undefined, true)
    } catch (err: any) {
      // (a spill past the buffer's bound that failed: the bytes are in memory, the version recorded)
      log.error('%s: appends kept back past a commit not stored yet: %s', this.path(), err?.message)
    }
    if (mtime !== undefined) this.mtime = mtime
  }

  /** The content of the current state (in a turn of the queue). */
  private async build (signal?: AbortSignal, sync = false, end?: number): Promise<Committed | undefined> {
    if (!this.changed) return undefined
    // the chunks stored early are durable here before any version names them
    await raceSignal(this.early.durable(), signal)
    const c = end !== undefined ? await this.buildAppend(signal, end) : await this.buildContent(signal, sync)
    // the chunks stored early, and those the commit stored through the same write
    // (storeVersionChunk), are durable here before any version names them
    await raceSignal(this.early.durable(), signal)
    return c
  }

  /**
   * Set during commit()'s build: the chunks it stores are placed as they are stored
   * (storeVersionChunk), not after the version is recorded. Not in prepare(): a fold places its
   * chunks itself before its op, and a staging file's commit is its caller's.
   */
  private pipelined = false

  /**
   * Store chunk bytes of the version being built (at `offset` in the file). In a commit, through
   * the open file's write (early-chunks.ts storeNow): placed as it is stored, the commit waiting
   * for room in the placement window; else in `group`, and `fresh` gets it (placed once the
   * version is recorded).
   */
  private async storeVersionChunk (bytes: Uint8Array, offset: number, fresh: ChunkRef[], signal?: AbortSignal, group?: PutGroup): Promise<ChunkRef> {
    if (this.pipelined) return await this.early.storeNow(bytes, offset, { signal })
    const ref = (await this.chunks.storeChunk(bytes, offset, { signal, group, recycle: true })).ref
    fresh.push(ref)
    return ref
  }

  /**
   * Store the manifest of the version being built; returns once every chunk it may name (those
   * stored through the write too) is durable here and the manifest is too, or, with a `group`,
   * once its put joined the group: durable when the caller's group.done() resolves, which every
   * caller awaits before it returns (review32e). Its put syncs while theirs do, not
   * after: no op names the manifest before both are durable (build() waits for the chunks
   * again), and a crash between leaves it unreferenced, as a chunk stored for a commit that never
   * came (a new file of one chunk, git's checkout or tar's: one block sync round per close, not two).
   */
  private async storeVersionManifest (m: Manifest, opts: { signal?: AbortSignal, group?: PutGroup }): Promise<{ cid: CID, ref: ChunkRef }> {
    const chunks = raceSignal(this.early.durable(), opts.signal)
    const stored = this.chunks.storeManifest(m, opts)
    // both settle before this returns (no rejection left unheard; with a group, `stored` settles
    // as its put joins the group, which catches a failure of it); the chunks' failure first: then
    // a manifest put still in flight ends unreferenced, for GC
    const [c, s] = await Promise.allSettled([chunks, stored])
    if (c.status === 'rejected') throw c.reason
    if (s.status === 'rejected') throw s.reason
    return s.value
  }

  private async buildContent (signal?: AbortSignal, sync = false): Promise<Committed> {
    if (this.appendOnly && this.size > this.base.size && this.baseLimit >= this.base.size) return await this.buildAppend(signal)
    if (this.patchable() || (sync && this.freshInline())) return await this.buildPatch(signal)
    const growth = this.growth()
    if (growth !== undefined) return await this.buildGrowth(growth, signal)
    const sparse = this.sparseChunks()
    if (sparse !== undefined) return await this.buildSparse(sparse, signal)
    if (this.size <= INLINE_MAX) {
      const bytes = await this.read(0, this.size, { signal })
      return { content: this.size === 0 ? null : { inline: bytes }, size: this.size, refs: [] }
    }
    const base = this.base
    const manifest = await this.loadManifest(signal, base)
    const n = Math.ceil(this.size / CHUNK_SIZE)
    const baseEnd = Math.min(base.size, this.baseLimit)
    // the chunks that may hold data: written here, or data of the base version; the rest are holes
    const candidates = new Set<number>([...this.dirty.keys(), ...this.patches.keys(), ...this.spilled.keys(), ...this.stored.keys()])
    const c = base.content
    if (c !== null && 'inline' in c && baseEnd > 0) candidates.add(0)
    for (const r of manifest?.chunks ?? []) if (r.cid !== null && r.offset < baseEnd) candidates.add(Math.floor(r.offset / CHUNK_SIZE))
    // the chunks the base's extents cover: re-stored whole (this version holds them: a fold)
    const touched = new Set<number>()
    if (base.pieces.length > 0) for (let i = Math.floor(base.contentEnd / CHUNK_SIZE); i * CHUNK_SIZE < baseEnd; i++) touched.add(i)
    for (const ext of base.pieces) {
      const start = ext.pos
      for (let i = Math.floor(start / CHUNK_SIZE); i * CHUNK_SIZE < Math.min(start + ext.size, baseEnd); i++) touched.add(i)
    }
    for (const i of touched) candidates.add(i)
    const data = [...candidates].filter(i => i < n).sort((a, b) => a - b)
    const got = new Map<number, ChunkRef>()
    const fresh: ChunkRef[] = []
    // the chunks' and the manifest's puts overlap; all are durable before the version is returned
    const group = new PutGroup()
    await forEachLimited(data, STORE_PARALLEL, async i => {
      const start = i * CHUNK_SIZE
      const len = Math.min(CHUNK_SIZE, this.size - start)
      const found = manifest !== undefined ? chunkAt(manifest, i) : undefined
      const b = found?.ref.cid != null && found.ref.offset === start ? found.ref : undefined
      let ref = await this.localRef(i, fresh, signal, group)
      if (ref !== undefined) {
        // this state's own bytes
      } else if (b !== undefined && b.size === len && start + len <= this.baseLimit && start + len <= base.contentEnd && !touched.has(i)) {
        ref = b
      } else if (start < baseEnd && touched.has(i) && (ref = await this.wholeExtentRef(base, i, len, signal)) !== undefined) {
        // an extent holds the whole chunk, stored as it is: taken, not rewritten
      } else if (start < baseEnd) {
        // base chunk whose length changed (inline base, or cut/regrown), or that extents cover: re-store it
        ref = await this.storeVersionChunk(await this.assemble(i, signal), start, fresh, signal, group)
      }
      if (ref !== undefined) got.set(i, ref)
    })
    // data refs in order, and one hole ref for each run of chunks between them
    const refs: ChunkRef[] = []
    let at = 0
    for (const i of data) {
      const ref = got.get(i)
      if (ref === undefined) continue
      if (i * CHUNK_SIZE > at) refs.push(holeChunk(at, i * CHUNK_SIZE - at))
      refs.push(ref)
      at = i * CHUNK_SIZE + ref.size
    }
    if (this.size > at) refs.push(holeChunk(at, this.size - at))
    const next = manifestOf(this.size, refs)
    const stored = await this.storeVersionManifest(next, { signal, group })
    await group.done()
    // the manifest is placed like the chunks: without it on other hosts, the file dies with its writer;
    // the sum names the bytes however they are stored (equal bytes written elsewhere are one version)
    return { content: { manifest: stored.cid, sum: contentSum(next) }, size: this.size, refs: [...fresh, stored.ref] }
  }

  /**
   * Chunk i's ref when this state holds its bytes (written, patched, or stored early), stored now
   * if need be; `fresh` gets the refs whose placement has not started. Undefined: the base's
   * bytes, or a hole.
   */
  private async localRef (i: number, fresh: ChunkRef[], signal?: AbortSignal, group?: PutGroup): Promise<ChunkRef | undefined> {
    const d = this.dirty.get(i)
    if (d !== undefined) {
      // (in the commit's group, or its write: nothing here names the chunk until the version is recorded)
      return await this.storeVersionChunk(d, i * CHUNK_SIZE, fresh, signal, group)
    }
    if (this.patched(i) && this.stored.has(i)) {
      // patches over a chunk stored during this open: it is replaced (an early one released)
      const ref = await this.storeVersionChunk(await this.assemble(i, signal), i * CHUNK_SIZE, fresh, signal, group)
      this.stored.set(i, ref)
      this.dropPatches(i)
      return ref
    }
    if (this.patched(i)) {
      // in the commit's group or write too (its puts overlap the next chunk's reads; each waited
      // for its fsync alone before): the patches stay until the version is recorded, as a dirty chunk's bytes do
      return await this.storeVersionChunk(await this.assemble(i, signal), i * CHUNK_SIZE, fresh, signal, group)
    }
    const s = this.stored.get(i)
    // an early chunk's placement is under way already
    if (s !== undefined && !this.early.has(i)) fresh.push(s)
    return s
  }

  /**
   * The bytes appended since the base (a turn of the queue, appendOnly): inline when small, else a
   * manifest of the file as this state has it whose chunks before the first appended byte's are
   * a hole (the chunks written here are stored as they are, early ones included).
   */
  private async buildAppend (signal?: AbortSignal, end = this.size): Promise<Committed> {
    const at = this.base.size
    const n = end - at
    if (n <= INLINE_MAX) return { content: { inline: await this.read(at, n, { signal }) }, size: end, refs: [], append: { at: 0, size: n } }
    const fresh: ChunkRef[] = []
    const group = new PutGroup()
    const next = await this.tailManifest(Math.floor(at / CHUNK_SIZE), end, fresh, group, signal)
    const stored = await this.storeVersionManifest(next, { signal, group })
    await group.done()
    return { content: { manifest: stored.cid, sum: contentSum(next) }, size: end, refs: [...fresh, stored.ref], append: { at, size: n } }
  }

  /**
   * The manifest (not stored) of the file up to `end` whose chunks before chunk `first` are a
   * hole: the chunks from `first` on as this state has them, stored as they are (early ones
   * included) or now (`fresh` gets the refs whose placement has not started; their puts in
   * `group`). buildAppend's appended bytes and buildGrowth's grown ones.
   */
  private async tailManifest (first: number, end: number, fresh: ChunkRef[], group: PutGroup, signal?: AbortSignal): Promise<Manifest> {
    const refs: ChunkRef[] = first > 0 ? [holeChunk(0, first * CHUNK_SIZE)] : []
    for (let i = first; i * CHUNK_SIZE < end; i++) {
      signal?.throwIfAborted()
      const start = i * CHUNK_SIZE
      // the chunk the version ends in, when the state goes on past it (appends kept back): its bytes up to `end`
      let ref = end < Math.min(this.size, start + CHUNK_SIZE)
        ? await this.storeVersionChunk(await this.read(start, end - start, { signal }), start, fresh, signal, group)
        : await this.localRef(i, fresh, signal, group)
      ref ??= await this.storeVersionChunk(await this.assemble(i, signal), start, fresh, signal, group)
      refs.push(ref)
    }
    return manifestOf(end, refs)
  }

  /**
   * True when this state can be committed as positioned extents: a file the tree holds (not a
   * staging file, not the first content of a file created here: that stays one `first` write),
   * changed only by a few small writes since its base (no truncate, nothing spilled or stored
   * early), and not small enough to be one inline version anyway.
   */
  /**
   * A file created empty in this open, every byte of it written since (one range from 0 to its
   * end) and few enough of them for PATCH_COMMIT_RANGES inline pieces (64 KiB): an fsync commits
   * it as positioned inline extents over the empty create (buildPatch; the op says `first`), one
   * op-log write and no block. As a whole version it stored a chunk and a manifest, two block
   * files synced one after the other, before its op: a SQLite rollback journal (made, written,
   * fsynced and unlinked in every transaction) paid them each time. Only for an fsync: a close's
   * commit of a new small file (`tar x`, `cp`) stays one whole version, which no fold rewrites.
   */
  private freshInline (): boolean {
    const w = this.written
    return this.current !== undefined && this.createdEmpty && !this.truncated && w !== undefined && w.length === 1 &&
      w[0][0] === 0 && w[0][1] === this.size && this.size > INLINE_MAX && this.size <= PATCH_COMMIT_RANGES * INLINE_MAX &&
      this.base.size === 0 && this.stored.size === 0
  }

  private patchable (): boolean {
    return this.current !== undefined && !this.createdEmpty && this.written !== undefined && this.written.length > 0 &&
      this.size > INLINE_MAX && this.size >= this.base.size && this.baseLimit >= this.base.size && this.stored.size === 0
  }

  /**
   * The written ranges as positioned extents (a turn of the queue, patchable()): each range's
   * bytes as this state has them. When they fit in PATCH_COMMIT_RANGES inline pieces of at most
   * INLINE_MAX bytes (64 KiB: a few database pages), every piece is inline in its op: the commit
   * stores no block, its one durable write is the op log's. Else a range of at most INLINE_MAX
   * bytes is inline, the longer ones are packed one after another into one content (one chunk:
   * PATCH_COMMIT_BYTES is less than a chunk) and each op names its part.
   */
  private async buildPatch (signal?: AbortSignal): Promise<Committed> {
    const ranges = this.written as Array<[number, number]>
    const extents: PatchExtent[] = []
    const big: Array<{ offset: number, bytes: Uint8Array }> = []
    const pieces = ranges.reduce((n, [from, to]) => n + Math.ceil((to - from) / INLINE_MAX), 0)
    for (const [from, to] of ranges) {
      const bytes = await this.writtenBytesOf(from, to, signal)
      if (bytes.byteLength <= INLINE_MAX || pieces <= PATCH_COMMIT_RANGES) {
        for (let at = 0; at < bytes.byteLength; at += INLINE_MAX) {
          const piece = bytes.slice(at, at + INLINE_MAX)
          extents.push({ content: { inline: piece }, at: 0, size: piece.byteLength, offset: from + at })
        }
      } else {
        big.push({ offset: from, bytes })
      }
    }
    const refs: ChunkRef[] = []
    if (big.length > 0) {
      const total = big.reduce((n, x) => n + x.bytes.byteLength, 0)
      const packed = new Uint8Array(total)
      let at = 0
      for (const x of big) { packed.set(x.bytes, at); at += x.bytes.byteLength }
      const group = new PutGroup()
      const { ref } = await this.chunks.storeChunk(packed, 0, { signal, group, recycle: true })
      const m = manifestOf(total, [ref])
      const stored = await this.chunks.storeManifest(m, { signal, group })
      await group.done()
      refs.push(ref, stored.ref)
      const content: Content = { manifest: stored.cid, sum: contentSum(m) }
      at = 0
      for (const x of big) {
        extents.push({ content, at, size: x.bytes.byteLength, offset: x.offset })
        at += x.bytes.byteLength
      }
      // in file order, as the ranges are (disjoint: the order of their ops changes no byte)
      extents.sort((a, b) => a.offset - b.offset)
    }
    return { content: null, size: this.size, refs, extents }
  }

  /**
   * Where the bytes written here since the base start, when a commit of them is growth alone
   * (buildGrowth): a file the tree holds (not a staging file, not the first content of a file
   * created here), no truncate, and what this host wrote since the base is one range from at or
   * past the base's end to the end of file (a SQLite WAL, a log written by pwrite at its end: no
   * O_APPEND, so not an append). Undefined otherwise: a write inside the old bytes, a hole left
   * between written ranges, a peer's bytes laid past them (catchUp) make a whole version or the
   * other extents, as before.
   */
  private growth (): number | undefined {
    if (this.current === undefined || this.createdEmpty || this.truncated || this.baseLimit < this.base.size || this.growthRefused) return undefined
    if (this.size <= this.base.size || this.base.size <= INLINE_MAX) return undefined
    const mine = this.ownRanges()
    if (mine.length !== 1 || mine[0][0] < this.base.size || mine[0][1] !== this.size) return undefined
    return mine[0][0]
  }

  /**
   * The bytes [from, size) grown past the base since it (growth()) as positioned extents, never a
   * chunk of the base stored again: a head [from, the next chunk boundary) inline when small, else
   * as a chunk of its own (a manifest of one chunk), and the rest as a manifest in the file's
   * coordinates (a hole before its first chunk, as buildAppend's) of the chunks from that boundary
   * on, each at its own offset: stored early, dirty, or assembled, as a whole version would store
   * them. A fold (volume.ts) takes each of those whole chunks as it is (wholeExtentRef) and
   * rewrites only the chunks two extents share (the one the head lands in, each commit's last).
   * A whole version stored the base's last chunk again at every such commit, old bytes included
   * (a SQLite WAL's transactions past PATCH_COMMIT_BYTES: wal42).
   */
  private async buildGrowth (from: number, signal?: AbortSignal): Promise<Committed> {
    const end = this.size
    const boundary = Math.min(end, Math.ceil(from / CHUNK_SIZE) * CHUNK_SIZE)
    const extents: PatchExtent[] = []
    const fresh: ChunkRef[] = []
    const group = new PutGroup()
    if (boundary > from) {
      const head = await this.read(from, boundary - from, { signal })
      if (head.byteLength <= INLINE_MAX) {
        extents.push({ content: { inline: head }, at: 0, size: head.byteLength, offset: from })
      } else {
        const { ref } = await this.chunks.storeChunk(head, 0, { signal, group, recycle: true })
        const m = manifestOf(head.byteLength, [ref])
        const stored = await this.chunks.storeManifest(m, { signal, group })
        fresh.push(ref, stored.ref)
        extents.push({ content: { manifest: stored.cid, sum: contentSum(m) }, at: 0, size: head.byteLength, offset: from })
      }
    }
    if (end > boundary) {
      // (an append's manifest: buildAppend's, from the boundary on)
      const m = await this.tailManifest(boundary / CHUNK_SIZE, end, fresh, group, signal)
      const stored = await this.storeVersionManifest(m, { signal, group })
      fresh.push(stored.ref)
      extents.push({ content: { manifest: stored.cid, sum: contentSum(m) }, at: boundary, size: end - boundary, offset: boundary })
    }
    await group.done()
    return { content: null, size: end, refs: fresh, extents, growth: true }
  }

  /**
   * Set by refuseGrowth() until the next commit: this state is not committed as growth
   * (buildGrowth) but as before it, a whole version or the other extents.
   */
  private growthRefused = false

  /**
   * The file moved in the tree while its growth was built (a peer's append or write came): the
   * growth is not stamped as extents at its offsets, which would hide a peer's append that came
   * meanwhile (positioned extents land over it), but built again as a whole version, whose
   * stamp lays what came over the pending writes (catchUp) or stamps it concurrent with what
   * came, as before wal42 (Volume commitOpen). Until the next commit.
   */
  refuseGrowth (): void {
    this.growthRefused = true
  }

  /**
   * The chunks of a state committed as positioned extents (buildSparse), when it is one: many
   * small writes spread over a file the tree holds (too many for buildPatch), no truncate since
   * the base (extents can neither cut a file nor grow it with zeros alone). `sparse`: the patched
   * chunks whose patches (in memory and spilled) hold under commitExtentMax bytes, each
   * recorded as its patches; `whole`: the other chunks this state holds (dirty, stored, densely
   * patched, and the last one when the file grew and no patch ends it), each recorded as one
   * extent of its whole bytes. Undefined (a whole version) when sparse chunks are not the most:
   * a sequential writer's chunks are better a version of their own than extents a fold rewrites.
   */
  private sparseChunks (): { sparse: number[], whole: number[] } | undefined {
    if (this.current === undefined || this.createdEmpty || this.truncated || this.size <= INLINE_MAX) return undefined
    if (this.size < this.base.size || this.baseLimit < this.base.size || this.spilled.size + this.patches.size === 0) return undefined
    const sparse: number[] = []
    const whole = new Set<number>([...this.dirty.keys(), ...this.stored.keys()])
    for (const i of new Set([...this.spilled.keys(), ...this.patches.keys()])) {
      if (whole.has(i)) continue // patches over a chunk stored whole: that chunk is rewritten
      let n = 0
      for (const p of this.spilled.get(i) ?? []) n += p.size
      for (const p of this.patches.get(i) ?? []) n += p.bytes.byteLength
      if (n < this.commitExtentMax) sparse.push(i)
      else whole.add(i)
    }
    // the file's size after the extents land is where the last one ends: past the base, the
    // last chunk is whole unless a patch of it ends the file (a write cut short by an abort
    // may have grown the file further than its bytes)
    const last = Math.ceil(this.size / CHUNK_SIZE) - 1
    if (this.size > this.base.size && !whole.has(last)) {
      const start = last * CHUNK_SIZE
      const ends = [...(this.spilled.get(last) ?? []).map(p => start + p.at + p.size), ...(this.patches.get(last) ?? []).map(p => start + p.at + p.bytes.byteLength)]
      if (!ends.includes(this.size)) {
        whole.add(last)
        const k = sparse.indexOf(last)
        if (k >= 0) sparse.splice(k, 1)
      }
    }
    if (sparse.length <= whole.size) return undefined
    return { sparse: sparse.sort((a, b) => a - b), whole: [...whole].sort((a, b) => a - b) }
  }

  /**
   * The state as positioned extents (a turn of the queue, sparseChunks()), as an fsync records
   * its ranges, without rewriting the chunks the patches land in: each sparse chunk's patches,
   * oldest first, as extents over the packed chunks that hold them (the patches still in memory
   * are packed first), one manifest per packed chunk; neighbours in the file and in the packed
   * chunk are one extent. The whole chunks (rewritten, or stored already) go into one content at
   * their own offsets (holes between), one extent per run of them. Extents of different chunks
   * never overlap; a chunk's extents keep the order of its patches (newest wins per byte). The
   * folds (volume.ts) rewrite the chunks later, where worth it; a whole chunk is taken as it is.
   */
  private async buildSparse ({ sparse, whole }: { sparse: number[], whole: number[] }, signal?: AbortSignal): Promise<Committed> {
    await this.pack(sparse.filter(i => this.patches.has(i)), signal)
    const group = new PutGroup()
    const fresh: ChunkRef[] = []
    const byChunk: Array<{ i: number, list: PatchExtent[] }> = []
    if (whole.length > 0) {
      const refs = new Map<number, ChunkRef>()
      await forEachLimited(whole, STORE_PARALLEL, async i => {
        const start = i * CHUNK_SIZE
        const len = Math.min(CHUNK_SIZE, this.size - start)
        let ref = await this.localRef(i, fresh, signal, group)
        if (ref === undefined || ref.size !== len) {
          ref = await this.storeVersionChunk(await this.assemble(i, signal), start, fresh, signal, group)
        }
        refs.set(i, { ...ref, offset: start })
      })
      const chunks: ChunkRef[] = []
      const runs: Array<{ i: number, from: number, to: number }> = []
      let at = 0
      for (const i of whole) {
        const ref = refs.get(i) as ChunkRef
        if (ref.offset > at) chunks.push(holeChunk(at, ref.offset - at))
        chunks.push(ref)
        const run = runs[runs.length - 1]
        if (run !== undefined && run.to === ref.offset) run.to += ref.size
        else runs.push({ i, from: ref.offset, to: ref.offset + ref.size })
        at = ref.offset + ref.size
      }
      const m = manifestOf(at, chunks)
      const stored = await this.storeVersionManifest(m, { signal, group })
      fresh.push(stored.ref)
      const content: Content = { manifest: stored.cid, sum: contentSum(m) }
      for (const r of runs) byChunk.push({ i: r.i, list: [{ content, at: r.from, size: r.to - r.from, offset: r.from }] })
    }
    // one manifest per packed chunk (its refs are at their offsets: a short one ends a manifest)
    const packed = new Map<ChunkRef, Content>()
    for (const i of sparse) {
      for (const p of this.spilled.get(i) ?? []) {
        if (packed.has(p.ref)) continue
        const m = manifestOf(p.ref.size, [{ ...p.ref, offset: 0 }])
        const stored = await this.chunks.storeManifest(m, { signal, group })
        packed.set(p.ref, { manifest: stored.cid, sum: contentSum(m) })
        // in a commit, placed now within the window, as the chunks it rewrites (storeVersionChunk)
        if (this.pipelined) {
          this.placingAside(p.ref)
          await this.early.placeNow(p.ref, { signal })
        }
        else fresh.push(p.ref)
        fresh.push(stored.ref)
      }
    }
    for (const i of sparse) {
      const list: PatchExtent[] = []
      let prev: PatchExtent | undefined
      for (const p of this.spilled.get(i) ?? []) {
        const content = packed.get(p.ref) as Content
        const offset = i * CHUNK_SIZE + p.at
        if (prev !== undefined && prev.content === content && prev.at + prev.size === p.off && prev.offset + prev.size === offset) {
          prev.size += p.size
          continue
        }
        prev = { content, at: p.off, size: p.size, offset }
        list.push(prev)
      }
      byChunk.push({ i, list })
    }
    await group.done()
    byChunk.sort((a, b) => a.i - b.i)
    return { content: null, size: this.size, refs: fresh, extents: byChunk.flatMap(x => x.list) }
  }

  /**
   * Bytes [from, to) of a written range, from the dirty buffers and patches that hold them (every
   * byte of it was written since the base, patchable(): nothing spilled): without reading and
   * patching the chunks they land in, as read() would. A part that neither holds (none should)
   * is read.
   */
  private async writtenBytesOf (from: number, to: number, signal?: AbortSignal): Promise<Uint8Array> {
    const out = new Uint8Array(to - from)
    for (let i = Math.floor(from / CHUNK_SIZE); i * CHUNK_SIZE < to; i++) {
      const start = i * CHUNK_SIZE
      const lo = Math.max(from, start)
      const hi = Math.min(to, start + CHUNK_SIZE)
      const d = this.dirty.get(i)
      const patches = this.patches.get(i)
      if (d !== undefined) {
        out.set(d.subarray(lo - start, hi - start), lo - from)
      } else if (patches !== undefined && covered(patches, lo - start, hi - start)) {
        // oldest first: a later patch wins where they overlap
        for (const p of patches) {
          const a = Math.max(lo, start + p.at)
          const b = Math.min(hi, start + p.at + p.bytes.byteLength)
          if (b > a) out.set(p.bytes.subarray(a - start - p.at, b - start - p.at), a - from)
        }
      } else {
        out.set(await this.read(lo, hi - lo, { signal }), lo - from)
      }
    }
    return out
  }

  /**
   * The version built in this turn is now committed: it becomes the base (the tree's state of the
   * file when there is one: an append lands after whatever the tree holds).
   */
  private committed (c: Committed): void {
    this.setBase(this.current?.() ?? { content: c.content, size: c.size })
    this.size = this.base.size
    // the version's time is the tree's now: its mtime is the file's, and follows later ops
    // (a utimes from another host), not the last write's kept here
    this.mtime = undefined
    this.dirty.clear()
    this.stored.clear()
    this.dirtyBytes = 0
    this.patches.clear()
    this.patchBytes = 0
    this.spilled.clear()
    // the version recorded names the ones it kept (in the tree now), or the writes were given up
    for (const { ref, unplaced } of this.aside) {
      this.chunks.open.remove(ref)
      if (unplaced) this.chunks.aside.remove(ref)
    }
    this.aside.length = 0
    this.baseLimit = Number.MAX_SAFE_INTEGER
    this.truncated = false
    this.shrunk = false
    this.written = []
    this.writtenBytes = 0
    this.mine = []
    this.mineSorted = 0
    this.laid.clear()
    this.changed = false
    this.appendOnly = false
    this.createdEmpty = false
    this.tail = undefined
    this.growthRefused = false
  }

  /**
   * Give up what is pending since the last commit (the file was unlinked before its last close,
   * or that close could not commit): the chunks stored for it go, here and on peers, and the
   * state is the committed version again. Never throws.
   */
  async abandon (): Promise<void> {
    // before waiting for the turn: a store behind a write that does not settle holds it
    this.behindStop.abort(new DOMException(`the pending writes to ${this.path()} are given up`, 'AbortError'))
    this.behindStop = new AbortController()
    await this.serial(async () => {
      await this.early.abandon()
      this.committed({ content: this.base.content, size: this.base.size, refs: [] })
      this.mtime = undefined
    })
  }

  /** A new committed state arrived from elsewhere: adopt it when nothing is pending here. */
  rebase (base: FileState): void {
    if (this.changed) return
    this.createdEmpty = false
    this.setBase(base)
    this.size = base.size
  }
}

/**
 * A chunk buffer of `want` bytes holding `bytes`' first ones (zeros after them). A sequential
 * writer grows the file's last chunk by every write: a buffer cut to the exact length would be
 * reallocated and copied each time (a 1 MiB chunk written 4 KiB at a time: 128 copies of half a
 * MiB on average, most of the CPU of SQLite's page writes), so a buffer grows into spare room
 * behind it, doubling (at most a chunk), and is copied only when that runs out. Bytes past the
 * view are always zero: a buffer cut shorter zeroes what it leaves, so regrowing reads zeros.
 */
function refit (bytes: Uint8Array, want: number): Uint8Array {
  const room = bytes.buffer.byteLength - bytes.byteOffset
  if (want < bytes.byteLength) {
    // a buffer refit() did not make is never grown in place: its bytes past the view stay unread
    if (grown.has(bytes.buffer)) bytes.fill(0, want)
    return bytes.subarray(0, want)
  }
  if (want <= room && grown.has(bytes.buffer)) return new Uint8Array(bytes.buffer, bytes.byteOffset, want)
  const next = new Uint8Array(Math.min(CHUNK_SIZE, Math.max(want, 2 * bytes.byteLength)))
  next.set(bytes)
  grown.add(next.buffer)
  return next.subarray(0, want)
}

/** The buffers refit() made, whose room past any view of them is zeros (no other buffer is grown in place). */
const grown = new WeakSet<ArrayBufferLike>()

/** True when an extent of `base` lands on some byte of [from, to). */
function overlaps (base: Base, from: number, to: number): boolean {
  return base.pieces.length > 0 && mapOf(base).overlaps(from, to)
}

function mapOf (base: Base): ExtentMap {
  base.map ??= new ExtentMap(base.extents ?? [])
  return base.map
}

/** True when the patches of a chunk cover every byte of [from, to) (chunk offsets). */
function covered (patches: readonly Patch[], from: number, to: number): boolean {
  const spans = patches.map(p => [p.at, p.at + p.bytes.byteLength]).sort((a, b) => a[0] - b[0])
  let at = from
  for (const [a, b] of spans) {
    if (a > at) break
    if (b > at) at = b
  }
  return at >= to
}
