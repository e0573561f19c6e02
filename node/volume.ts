// Volume: the filesystem API (shaped like node:fs/promises) over the replicated tree (metadata)
// and the chunk service (bytes). Path-based; every method validates its path, resolves it in
// the materialised tree and turns a change into one signed op. POSIX rules that belong to the
// filesystem itself (EEXIST, ENOTEMPTY, EISDIR, rename over, setgid inheritance, link counts)
// are enforced here; permission checks on behalf of a caller are the kernel's
// (default_permissions) through the mount. Every method takes AbortOptions last (VolumeApi in
// types.ts): metadata calls check the signal at entry, reads carry it down to the network fetch,
// commits check it before they store and wait with it for peers (placement itself goes on).
//
// Durability (issue 15, small files): a file's commit of its writes (at a flush, close or fsync)
// is durable in the op log before it returns, and so is every op before it (the file's create
// among them); an fsync syncs the log also when there is nothing to commit. A namespace or
// attribute change alone (create, mkdir, unlink, rmdir, rename, link, symlink, chmod, chown,
// utimes, xattrs) is written to the op log, not synced (node/tree log.ts): it survives this
// process being killed, and becomes durable with the next such commit, an fsync, a syncDir()
// (FUSE fsyncdir), or within WRITTEN_SYNC_MS (1 s), as a local file system commits such changes
// with its journal; a power cut may lose that last second of them. A chmod, chown or utimes of a
// file open here is held (answered from memory, as the file's buffered writes are) until this
// Volume's next commit, the file's next version, close (a FUSE release: close(2) does not wait
// for it), fsync, or HELD_ATTRS_MS, and then
// committed as one setattr op with the others held (tar's futimens, fchown and fchmod of every
// file it extracts: one op, in the log write of the file's version); a process killed meanwhile
// loses them with the file's buffered writes. No other change of this host is stamped before
// them, but for held times: they go after the file's version in its batch when its writes all
// came before them (the version's time, its last write's, would hide an explicit mtime), and
// while the file has writes not committed and no version of it is in the batch they stay held
// with those writes (their version, at the flush, close or fsync, takes them; within
// HELD_ATTRS_MS the hold's timer commits those writes with them, as a utimes of an open file
// did before it was held: a file kept open does not hold a `touch -d` back from a later one on
// another host). Times held with writes a close gave up, or that a closing Volume does not
// commit, are dropped (its mode and owner go): they would stamp the old bytes as new. One that sets
// every field to what it was (SQLite as root fchowns each journal it opens to the owner it has)
// makes no op when the file's version is stamped after it in the same batch (the journal's
// fsync): the version's time moves ctime as far, on every host. "What it was" is this host's
// view: a held change, else one in a batch not applied yet, else the tree's. The price: a
// concurrent chown on another host, not seen here yet, is no longer overridden by this host's
// no-change one (every host still converges on the same owner).
import { CID } from 'multiformats/cid'
import { CHUNK_SIZE, ChunkService, INLINE_MAX, contentSum, manifestOf } from './data/index.ts'
import type { ChunkRef, WriteProgress } from './data/index.ts'
import { nowNs, nsToMs } from './clock.ts'
import { BlockUnavailableError, FsError, NotConflictedError } from './errors.ts'
import { PERM_MASK, S_ISGID, typeOf, kindOf } from './modes.ts'
import { OpenFile, type CommitFor, type Committed, type FileState, type PatchExtent } from './open-file.ts'
import { split, checkName, join } from './paths.ts'
import type { Tree, Inode, Entry, OpBody, Content, Extent, InodeId, CommitOptions, Cut, Durability, FileMark, OpsEventDetail } from './tree/index.ts'
import { ExtentMap, GuardError, MAX_OP_EXTENTS, MAX_XATTR_VALUE_BYTES, extentEnd, extentKey, markedExtents, sameFileMark } from './tree/index.ts'
import type { Capacity, Caller, Dirent, FileHandle, Kind, OpenFlags, StatFs, Stats, TimeArg, VolumeApi } from './types.ts'
import type { Store, Network } from './data/index.ts'
import { constants } from 'node:fs'
import { randomBytes } from 'node:crypto'
import type { AbortOptions } from '@libp2p/interface'
import { raceSignal, settledWithin } from './abort.ts'
import { isPinXattr } from './types.ts'
import { logger } from './log.ts'

/** Symlinks followed while resolving one path before ELOOP (Linux's MAXSYMLINKS). */
export const MAX_SYMLINK_HOPS = 40
/**
 * Largest xattr value: what one setxattr op carries (MAX_XATTR_VALUE_BYTES, 60 KiB, under the
 * kernel's XATTR_SIZE_MAX of 64 KiB); past it ERANGE, the filesystem-specific limit setxattr(2)
 * names.
 */
export const XATTR_VALUE_MAX = MAX_XATTR_VALUE_BYTES
/**
 * Most bytes of xattr names on one inode, as listxattr returns them (each name and its NUL):
 * the kernel's XATTR_LIST_MAX, 64 KiB. A setxattr of a new name past it is ENOSPC (as ext4 when
 * an inode's xattr space is full), so listxattr always fits the kernel's buffer.
 */
export const XATTR_LIST_MAX = 65536
/**
 * Largest file: 16 TiB (2^44 bytes), ext4's limit with 4 KiB blocks. A size past it (a
 * truncate, a write starting at or past it) is EFBIG, as on ext4; a write crossing it is cut
 * short. Holes cost nothing (one manifest ref per run, data/chunks.ts), so a sparse file of
 * any legal size is cheap in memory and metadata. The data one file holds is bounded apart, by
 * what one manifest block describes: MAX_MANIFEST_BYTES (16 MiB, about 50-80 GiB of 1 MiB
 * chunks) is refused at commit with EFBIG, and a manifest moves between hosts only within the
 * swarm's block bound (1 MiB, about 3-5 GiB of data).
 */
export const FILE_SIZE_MAX = 2 ** 44
/**
 * The ops of a RENAME_EXCHANGE of entries `x` and `y` (Volume.exchange), in order: `x` to
 * `aside` (a free name in `y`'s directory), `y` to `x`'s name, `x` to `y`'s. Each entry's last
 * move is the later op, so merged with any concurrent rename of either, `aside` is never where
 * an entry ends up.
 */
export function exchangeBodies (x: Entry, y: Entry, aside: string, time: bigint): OpBody[] {
  return [
    { type: 'move', entry: x.id, parent: y.parent, name: aside, time },
    { type: 'move', entry: y.id, parent: x.parent, name: x.name, time },
    { type: 'move', entry: x.id, parent: y.parent, name: y.name, time }
  ]
}

/** fallocate(2) flags the Volume takes (linux/falloc.h). */
const FALLOC_KEEP_SIZE = 0x01
const FALLOC_PUNCH_HOLE = 0x02
const FALLOC_ZERO_RANGE = 0x10
const FALLOC_KNOWN = FALLOC_KEEP_SIZE | FALLOC_PUNCH_HOLE | FALLOC_ZERO_RANGE
/** Largest file read whole into memory (readFile, readVersion, `darkfs cat`): 2 GiB, as node:fs. */
export const READ_WHOLE_MAX = 2 ** 31 - 1
/**
 * Entries whose last resolved path is remembered (oldest forgotten first), so that an unlink or
 * move from a peer can name the old path the mount's kernel cache holds.
 */
export const SEEN_PATHS_MAX = 65536
/**
 * Longest a chmod, chown or utimes of a file open here is held before it is committed (see the
 * head of this file); times held with writes not committed are committed then with those writes.
 */
export const HELD_ATTRS_MS = 250
/**
 * Longest an fsync waits for the placement of a file's chunks on peers (DESIGN.md §5). The
 * bytes are durable locally before that wait starts; past it, fsync returns and placement
 * goes on (`darkfs status` shows those chunks as local-only or degraded until it is done).
 * Below the mount's request deadline (fuse REQUEST_TIMEOUT_MS, 30 s), so a slow network makes
 * a late placement, not an EIO from fsync.
 */
export const SYNC_PLACE_WAIT_MS = 20_000

/**
 * A file's appends read as pieces after its base (node/tree) are folded into one version (a
 * `fold` op, compaction) by the host that appends, once more than this many of them, or more
 * than FOLD_BYTES of them, are not folded yet.
 */
export const FOLD_EXTENTS = 64
export const FOLD_BYTES = 8 << 20
/**
 * A fold rewrites every whole chunk whose bytes it holds. Small writes scattered over a large
 * file (4 KiB pages over 1 GiB) would rewrite a 1 MiB chunk for each page: a fold then holds
 * its extents only in the chunks worth rewriting (a partial fold, node/tree crdt.ts), those
 * where its extents hold at least 1 / FOLD_AMPLIFICATION of the chunk (a dense chunk: at most
 * FOLD_AMPLIFICATION bytes rewritten per byte folded; a quarter, FOLD_INLINE_AMPLIFICATION, for
 * a chunk whose pieces are all inline); the others' extents stay read as pieces
 * until their chunk is dense too, or the file is quiet (then every chunk holding at least
 * 1 / FOLD_QUIET_AMPLIFICATION of extents is folded, FOLD_QUIET_AMPLIFICATION below).
 * Nothing is due up to FOLD_EXTENTS pieces and FOLD_BYTES of them. Past them, a file whose
 * whole fold rewrites at most FOLD_CHEAP_REWRITE bytes is folded whole; past FOLD_EXTENTS_MAX pieces (what a read merges and the tree keeps cut stays
 * bounded), the densest chunks are folded too, until half as many are left. When to fold, and
 * which chunks, is this host's own choice: what a fold holds is the tree's rule, the same on
 * every host.
 */
export const FOLD_AMPLIFICATION = 16
/**
 * FOLD_AMPLIFICATION for a chunk whose unfolded pieces are all inline in their ops (an fsync's
 * pages, PATCH_COMMIT_RANGES of INLINE_MAX): rewritten before the file is quiet once they hold a
 * quarter of it, as a commit rewrites a patched chunk (COMMIT_EXTENT_MAX) and a spill does
 * (SPILL_PACK_MAX). An inline piece is read from its op, which every host holds in memory
 * (a small read merges it without a fetch, open-file.ts rangeWithExtents), and a fold leaves that
 * op where it is; what the fold costs is the chunk rewritten, on a network its k + m fragments
 * (4+2 on six hosts: 1.5 MiB stored in six block files, 1.25 MiB sent). Folding such a chunk at
 * 1 / FOLD_AMPLIFICATION, fio's 4 KiB random writes with an fsync every 16 over 16 MiB on six
 * hosts (scripts/bench/_trace-costs.ts, 300 fsyncs) sent 267-394 KB of fold fragments per fsync
 * beside the 410-480 KB of its op's copies (gossip and hold); at a quarter, 131-206 KB. The
 * compare bench's darkfs-6 randwrite-fsync16 (512 MiB, 20 s), three back-to-back pairs: 357-509
 * IOPS and 27-35 ms of CPU per fsync, then 411-590 IOPS and 24-27 ms.
 */
export const FOLD_INLINE_AMPLIFICATION = 4
/**
 * The bound of a quiet file's fold (FOLD_QUIET_MS): it rewrites a chunk when its extents hold at
 * least 1 / FOLD_QUIET_AMPLIFICATION of it (or the whole fold is cheap, FOLD_CHEAP_REWRITE). It
 * folded every chunk its extents touched: after ten seconds of fio's 4 KiB random writes with
 * an fsync every 16 over a 1 GiB file on six hosts (`DARKFS_BENCH=small-sync`,
 * DARKFS_SMALL_SYNC_MIB=1024), about 2,300 pages, two or three a chunk, the quiet fold rewrote
 * and placed some 900 chunks (~100 bytes rewritten per byte folded, 1.7 GiB on the swarm), and
 * the SQLite and git workloads after it ran several times slower meanwhile. The sparse chunks'
 * pieces stay read as pieces (inline, merged through the extent index) until later writes make
 * their chunk dense; what stays bounds them as for a file being written (FOLD_EXTENTS_MAX,
 * FOLD_SPAN_MAX).
 */
export const FOLD_QUIET_AMPLIFICATION = 32
/**
 * A quiet file's fold is background work with no deadline (its pieces read well meanwhile): it
 * waits until this host made no op but folds for FOLD_IDLE_MS, and rewrites at most
 * FOLD_QUIET_BATCH chunks (the densest: a partial fold) per fold op, the next batch once the host
 * is idle again. Six hosts in one process share one thread: a quiet fold of ~900 chunks of a
 * 1 GiB file (fio's random writes, `DARKFS_BENCH=small-sync` at DARKFS_SMALL_SYNC_MIB=1024)
 * rewrote and placed them in one go while SQLite ran on another file, which took 42 s instead
 * of 5; on separate machines it would still take the writer's disk and link from its own work.
 * A burst of work that starts while a batch runs waits for that batch alone (16 MiB). A host
 * never idle still folds: a batch waits FOLD_IDLE_WAIT_MAX_MS at most.
 */
export const FOLD_IDLE_MS = 1_000
export const FOLD_IDLE_WAIT_MAX_MS = 60_000
export const FOLD_QUIET_BATCH = 16
export const FOLD_CHEAP_REWRITE = 4 << 20
export const FOLD_EXTENTS_MAX = 8192
/**
 * Every change of a file walks its extents since the oldest one some chunk still reads (the
 * tree's `covered`): partial folds leave the sparse chunks' extents, the oldest among them, so
 * past this many the chunks of the older half's pieces are folded too, and `covered` moves on.
 */
export const FOLD_SPAN_MAX = 4 * FOLD_EXTENTS_MAX
/**
 * A fold holds only appends at least this old (by their clock): a fold is read only when it
 * holds the file's first appends exactly, and appends still on their way from other hosts may
 * come before younger ones. Also the wait before a fold found moved under it a second time in a
 * row is made again (the first is made again at once: FOLD_MOVED_MAX_MS).
 */
export const FOLD_SETTLE_MS = 2_000
/**
 * Builds of a whole version made while the file moved under each (a peer's extents arriving
 * meanwhile: Volume.commitOpen) before this host's writes go as extents over it instead.
 */
export const WHOLE_WRITE_TRIES = 4
/**
 * A file this host wrote extents to is folded once it has had no new one from here for this
 * long, however few they are (compaction when the file is quiet: its reads stop paying for
 * pieces); and extents a fold had to leave (not settled yet) are folded once they settle, so a
 * burst never leaves hundreds of them behind.
 */
export const FOLD_QUIET_MS = 10_000
/**
 * Longest wait before a fold made again after folds found the file moved under them (a peer's
 * ops arriving while each was built, or this host's own): the first is made again as soon as
 * this host's ops on the file have landed, the second waits FOLD_SETTLE_MS, each next one twice
 * the last, up to this; a fold that stamps, or finds nothing to do, ends the back-off.
 */
export const FOLD_MOVED_MAX_MS = 64_000
/**
 * How many times a fold built and placed tries to stamp while its fold point holds but an op of
 * this host on the file is stamped and not yet applied (write36), each after those ops landed:
 * on a slow disk with a commit every few tens of ms, a fold made again from scratch stamps at the
 * same point of the write cycle and likely finds one in flight again (mend42a). Past it, the
 * fold is found moved (Volume.foldIfDue backs off).
 */
export const FOLD_STAMP_TRIES = 8

const log = logger('volume')

/**
 * Which chunks a fold of these extents (pieces, landed: `pos` set, oldest first; `content`, to
 * tell inline ones) rewrites before the file is quiet (FOLD_AMPLIFICATION, or
 * FOLD_INLINE_AMPLIFICATION; FOLD_CHEAP_REWRITE, FOLD_EXTENTS_MAX), or once it is
 * (`quiet`: whatever their count, FOLD_QUIET_AMPLIFICATION): `all`, every chunk they touch (a
 * whole fold), else `chunks` (indexes, increasing; none: no fold due).
 * `old`: the first `old` pieces' chunks are folded whatever their density (FOLD_SPAN_MAX);
 * `most`: at most so many chunks, the densest (FOLD_QUIET_BATCH).
 */
export function foldPlan (extents: ReadonlyArray<{ pos: number, size: number, content?: Content }>, old = 0, quiet = false, most = Infinity): { all: boolean, chunks: number[] } {
  // per chunk: bytes of extents in it, how many pieces meet it, and whether one is not inline
  const bytes = new Map<number, number>()
  const pieces = new Map<number, number>()
  const stored = new Set<number>()
  for (const x of extents) {
    const inline = x.content !== undefined && 'inline' in x.content
    for (let i = Math.floor(x.pos / CHUNK_SIZE); i * CHUNK_SIZE < x.pos + x.size; i++) {
      const n = Math.min(x.pos + x.size, (i + 1) * CHUNK_SIZE) - Math.max(x.pos, i * CHUNK_SIZE)
      bytes.set(i, (bytes.get(i) ?? 0) + n)
      pieces.set(i, (pieces.get(i) ?? 0) + 1)
      if (!inline) stored.add(i)
    }
  }
  let total = 0
  for (const n of bytes.values()) total += n
  if (!quiet && extents.length <= FOLD_EXTENTS && total <= FOLD_BYTES && old === 0) return { all: false, chunks: [] }
  if (bytes.size * CHUNK_SIZE <= FOLD_CHEAP_REWRITE && bytes.size <= most) return { all: true, chunks: [...bytes.keys()].sort((a, b) => a - b) }
  // (a chunk of inline pieces alone: FOLD_INLINE_AMPLIFICATION before the file is quiet)
  const amplification = (i: number): number => quiet ? FOLD_QUIET_AMPLIFICATION : stored.has(i) ? FOLD_AMPLIFICATION : FOLD_INLINE_AMPLIFICATION
  const chosen = new Set<number>()
  let left = extents.length
  const choose = (i: number): void => {
    if (chosen.has(i)) return
    chosen.add(i)
    left -= pieces.get(i) as number
  }
  for (const [i, n] of bytes) if (n * amplification(i) >= CHUNK_SIZE) choose(i)
  for (const x of extents.slice(0, old)) {
    for (let i = Math.floor(x.pos / CHUNK_SIZE); i * CHUNK_SIZE < x.pos + x.size; i++) choose(i)
  }
  if (left > FOLD_EXTENTS_MAX) {
    // too many pieces: the densest chunks too (a piece meeting two chunks counts in both: this
    // only ever folds more); ties by index, so the choice is the same whatever the map's order
    const rest = [...bytes.keys()].filter(i => !chosen.has(i)).sort((a, b) => (bytes.get(b) as number) - (bytes.get(a) as number) || a - b)
    for (const i of rest) {
      if (left <= FOLD_EXTENTS_MAX / 2) break
      choose(i)
    }
  }
  let chunks = [...chosen]
  if (chunks.length > most) {
    // the densest `most` of them (ties by index); the rest wait for a later fold
    chunks = chunks.sort((a, b) => (bytes.get(b) as number) - (bytes.get(a) as number) || a - b).slice(0, most)
  }
  chunks.sort((a, b) => a - b)
  return { all: chunks.length === bytes.size, chunks }
}

/**
 * Whether a file's unfolded extents are due a fold before the file is quiet (foldPlan); `span`,
 * how many extents since the oldest one still read (FOLD_SPAN_MAX).
 */
export function foldDue (extents: ReadonlyArray<{ pos: number, size: number, content?: Content }>, span = 0): boolean {
  return span > FOLD_SPAN_MAX || foldPlan(extents).chunks.length > 0
}

/** Whether `b` is a version of `held`'s file (a write or append) stamped at or after it: its ctime is at least as late. */
function versionAfter (b: OpBody, held: OpBody & { type: 'setattr' }): boolean {
  return isVersionOf(b, held.inode) && b.time >= held.time
}

/** Whether `b` is a version of file `inode` (a write or append). */
function isVersionOf (b: OpBody, inode: InodeId): boolean {
  return (b.type === 'write' || b.type === 'append') && b.inode === inode
}

/** The index of the last version of file `inode` in `bodies`, -1 when none. */
function lastVersionOf (bodies: OpBody[], inode: InodeId): number {
  for (let i = bodies.length - 1; i >= 0; i--) if (isVersionOf(bodies[i], inode)) return i
  return -1
}

/** Whether a time held in `h` is not in `left`, what is committed of it (cleanTimes). */
function droppedTimes (h: OpBody & { type: 'setattr' }, left: OpBody & { type: 'setattr' }): boolean {
  return (h.atime !== undefined && left.atime !== h.atime) || (h.mtime !== undefined && left.mtime !== h.mtime)
}

/** Whether a held setattr sets a time (utimes of a file open here). */
function hasTimes (h: OpBody & { type: 'setattr' }): boolean {
  return h.atime !== undefined || h.mtime !== undefined
}

type FoldPoint = NonNullable<ReturnType<Tree['foldPoint']>>

/**
 * True when the file reads now as at fold point `was` up to its extent `c`: the same version,
 * content read and fold state, and the same pieces (op, part, where they land) numbered up to
 * `c`. A fold of `c` built from `was` holds then exactly the bytes its op says it holds.
 */
export function sameFoldPoint (now: FoldPoint | undefined, was: FoldPoint, c: number): boolean {
  if (now === undefined || now.base !== was.base || now.content !== was.content || now.covered !== was.covered || now.over !== was.over || now.size !== was.size) return false
  if (now.sizes[c - now.covered - 1] !== was.sizes[c - was.covered - 1]) return false
  for (let i = 0; i < was.extents.length && was.numbers[i] <= c; i++) {
    const a = was.extents[i]
    const b = now.extents[i]
    if (b === undefined || now.numbers[i] !== was.numbers[i] || b.op !== a.op || b.part !== a.part || b.pos !== a.pos || b.size !== a.size || b.before !== a.before) return false
  }
  return true
}

/**
 * foldDue() of a file's extents kept up as they grow (Volume.foldIfDue asks at each commit of a
 * file): foldPlan's tallies per chunk (bytes, and whether a piece in it is stored: its
 * amplification), extended by the extents past the ones tallied when the list starts with those
 * (the same objects: the tree's read of a file extends its last one), else made anew. A commit
 * then costs a compare per extent and a tally of its own, not a tally of every extent of the
 * file (thousands of pages scattered over a database file, each commit).
 */
export class FoldTally {
  private seen: ReadonlyArray<{ pos: number, size: number, content?: Content }> = []
  private total = 0
  private readonly bytes = new Map<number, number>()
  private readonly stored = new Set<number>()
  /** Chunks dense before the file is quiet (foldPlan's amplification): only ever more, as pieces are added. */
  private dense = 0

  /** foldDue(extents, span). */
  due (extents: ReadonlyArray<{ pos: number, size: number, content?: Content }>, span = 0): boolean {
    const n = extents.length
    let from = this.seen.length
    if (n < from) from = 0
    for (let k = 0; k < from; k++) {
      if (extents[k] !== this.seen[k]) {
        from = 0
        break
      }
    }
    if (from === 0) {
      this.total = 0
      this.bytes.clear()
      this.stored.clear()
      this.dense = 0
    }
    for (let k = from; k < n; k++) this.add(extents[k])
    this.seen = extents
    if (span > FOLD_SPAN_MAX) return true
    // as foldPlan (not quiet, no old pieces, no batch): below the bounds nothing; a cheap
    // rewrite folds every chunk; else the dense chunks, and past FOLD_EXTENTS_MAX pieces the densest
    if (n <= FOLD_EXTENTS && this.total <= FOLD_BYTES) return false
    if (this.bytes.size * CHUNK_SIZE <= FOLD_CHEAP_REWRITE) return this.bytes.size > 0
    return this.dense > 0 || n > FOLD_EXTENTS_MAX
  }

  private add (x: { pos: number, size: number, content?: Content }): void {
    const inline = x.content !== undefined && 'inline' in x.content
    for (let i = Math.floor(x.pos / CHUNK_SIZE); i * CHUNK_SIZE < x.pos + x.size; i++) {
      const n = Math.min(x.pos + x.size, (i + 1) * CHUNK_SIZE) - Math.max(x.pos, i * CHUNK_SIZE)
      const was = this.bytes.get(i)
      const wasDense = was !== undefined && was * (this.stored.has(i) ? FOLD_AMPLIFICATION : FOLD_INLINE_AMPLIFICATION) >= CHUNK_SIZE
      const now = (was ?? 0) + n
      this.bytes.set(i, now)
      if (!inline) this.stored.add(i)
      if (!wasDense && now * (this.stored.has(i) ? FOLD_AMPLIFICATION : FOLD_INLINE_AMPLIFICATION) >= CHUNK_SIZE) this.dense++
      this.total += n
    }
  }
}

/**
 * The `append` ops of a commit's positioned extents (in their order): one op for each
 * `perOp` of them (at most MAX_OP_EXTENTS), the first extent in the op's own fields, the others
 * in `more`. One signature, one op-log record and one gossip message per fsync of a file, not
 * one per range; the tree reads the op as the same extents made by consecutive ops (crdt.ts).
 * Hosts from before multi-extent ops refuse them (unknown field `more`): while any member may be
 * such a host the Volume asks for `perOp` 1, one plain positioned append per extent (the same
 * bytes, the same order, the same file: test/node/tree-multiext).
 */
export function extentBodies (inode: InodeId, extents: readonly PatchExtent[], time: bigint, perOp = MAX_OP_EXTENTS): OpBody[] {
  if (!Number.isSafeInteger(perOp) || perOp < 1 || perOp > MAX_OP_EXTENTS) throw new RangeError(`extentBodies: extents per op from 1 to ${MAX_OP_EXTENTS}, got ${String(perOp)}`)
  const out: OpBody[] = []
  for (let i = 0; i < extents.length; i += perOp) {
    const [x, ...rest] = extents.slice(i, i + perOp)
    const body: OpBody = { type: 'append', inode, content: x.content, at: x.at, size: x.size, offset: x.offset, time }
    if (rest.length > 0) body.more = rest.map(y => ({ content: y.content, at: y.at, size: y.size, offset: y.offset }))
    out.push(body)
  }
  return out
}

/** The parts of `pieces` (landed extents, oldest first) within `ranges` (flat [from, to) pairs, increasing). */
function clip (pieces: readonly Extent[], ranges: readonly number[]): Extent[] {
  const out: Extent[] = []
  for (const x of pieces) {
    for (let r = 0; r < ranges.length; r += 2) {
      const a = Math.max(x.pos, ranges[r])
      const z = Math.min(x.pos + x.size, ranges[r + 1])
      if (a >= z) continue
      if (a === x.pos && z === x.pos + x.size) { out.push(x); continue }
      const cut: Extent = { ...x, pos: a, at: x.at + a - x.pos, size: z - a }
      if (x.offset !== undefined) cut.offset = a
      out.push(cut)
    }
  }
  return out
}

const ROOT: Caller = { uid: 0, gid: 0 }
const BLOCK = 4096
/** Files statfs reports (total and free): the tree sets no limit on their number. */
export const STATFS_FILES = 2 ** 30

export interface VolumeParts {
  tree: Tree
  chunks: ChunkService
  store?: Store
  /**
   * The space statfs reports (`df` on the mount): a host's is the network's, in bytes of file
   * data (keeper/capacity.ts). Default: the disk under the store, as a host alone has.
   */
  capacity?: (options?: AbortOptions) => Capacity | Promise<Capacity>
  /** What closing the Volume closes (the parts a library Volume owns); a host closes its parts itself. */
  close?: () => Promise<void>
  /** Longest an fsync waits for a placement, from the placement's start (default SYNC_PLACE_WAIT_MS). */
  syncPlaceWaitMs?: number
  /**
   * Whether a commit may make multi-extent ops (node/tree `more`) now: asked at each commit. A
   * host answers whether every member is known to take them (net/features.ts FeatureBook,
   * 'multiext/1'); while not, a commit's extents are one op each. Default: always (a library
   * Volume has no peers).
   */
  multiExtent?: () => boolean
  /** How long this host makes no op but folds before a quiet file's fold (default FOLD_IDLE_MS). */
  foldIdleMs?: number
  /** Longest an attribute change of a file open here is held (default HELD_ATTRS_MS; tests lengthen it to see what is held). */
  heldAttrsMs?: number
  /**
   * Resolves once a peer holds this host's op `cid` and every op below it, or none could
   * (net/op-hold.ts OpHold): an fsync waits for it as for a placement (SYNC_PLACE_WAIT_MS), so a
   * host lost right after the fsync loses none of its ops (DESIGN.md §5). `op`: the op's block,
   * given when the op is not applied here yet: an fsync asks as soon as its op is signed and
   * handed to the log, while the log's sync runs (the fsync waits for both). Default: none (a
   * library Volume has no peers).
   */
  held?: (cid: CID, op?: Uint8Array) => Promise<void>
}

/** Options of a library Volume on one data dir (`Volume.open({ dir, ... })`). */
export interface LocalOptions {
  /** Erasure parameters for chunks kept on this host alone (default one copy: k = 1, m = 0). */
  localParams?: { k: number, m: number }
  /** Where chunks not held here are fetched from and placed to (default none: a host alone). */
  network?: Network
  /** Longest an fsync waits for a placement, from the placement's start (default SYNC_PLACE_WAIT_MS). */
  syncPlaceWaitMs?: number
  /** Whether commits may make multi-extent ops now (VolumeParts.multiExtent; default always). */
  multiExtent?: () => boolean
  /** How long this host makes no op but folds before a quiet file's fold (default FOLD_IDLE_MS). */
  foldIdleMs?: number
  /** Longest an attribute change of a file open here is held (VolumeParts.heldAttrsMs; default HELD_ATTRS_MS). */
  heldAttrsMs?: number
  /** Resolves once a peer holds op `cid` and those below it (VolumeParts.held; default none). */
  held?: (cid: CID, op?: Uint8Array) => Promise<void>
  /** Longest a change written to the op log waits for its sync (TreeInit.writtenSyncMs; default WRITTEN_SYNC_MS). */
  writtenSyncMs?: number
}

interface Resolved { inode: Inode, entry?: Entry, path: string }

/**
 * What `darkfs resolve PATH` keeps: the version that holds the name now (`name-holder`), every
 * version (`both`: each sibling stays as a plain file under a name of its own), or one
 * sibling's content at PATH (`{ sibling }`: its name in PATH's directory, or its path).
 */
export type ResolveKeep = 'name-holder' | 'both' | { sibling: string }

/** What a resolve did: siblings removed, siblings kept as plain files (from -> to), siblings left as conflicts. */
export interface ResolveResult { path: string, removed: string[], kept: Array<{ from: string, to: string }>, left: string[] }

export class Volume implements VolumeApi {
  readonly tree: Tree
  readonly chunks: ChunkService
  private readonly store?: Store
  private readonly capacity?: VolumeParts['capacity']
  private readonly closeParts?: () => Promise<void>
  private closing?: Promise<void>
  private readonly open_ = new Map<InodeId, OpenFile>()
  /**
   * Mode, owner and time changes of files open here, not committed yet, by inode: each one
   * setattr body, its fields merged (see the head of this file). Stamped before any other op of
   * this Volume (stamp(); times with writes not committed after their version), with the file's
   * next version, at its close or fsync, or by `heldTimer` (HELD_ATTRS_MS).
   */
  private readonly heldAttrs = new Map<InodeId, OpBody & { type: 'setattr' }>()
  /**
   * The inodes of heldAttrs whose change sets every field to what it was (SQLite as root
   * fchowns each journal it opens to the database's owner, mostly the owner it has): their op
   * only moves ctime, and a version of the file stamped in the same batch at or after its time
   * moves ctime as far (a write's ctime is its time), so there it is left out (stamp).
   */
  private readonly heldSame = new Set<InodeId>()
  /**
   * Of the times held for a file open here (heldAttrs), the ones set while it had no writes
   * pending (its committed version's times, each field as last set then), with when they were
   * last set: writes after them that are given up (a last close that fails, a closing Volume)
   * take only the times set with or after them along; these stay and are committed.
   */
  private readonly heldClean = new Map<InodeId, { atime?: bigint, mtime?: bigint, time: bigint }>()
  /**
   * Held changes stamped in a batch the tree has not applied yet (it applies a batch once it is
   * durable), by inode, their fields merged, with how many batches carry them: until then the
   * tree still shows the fields before them, so a change made meanwhile is judged (setAttrs) and
   * shown (toStats) against these.
   */
  private readonly heldFlying = new Map<InodeId, { batches: number, body: OpBody & { type: 'setattr' } }>()
  private heldTimer: ReturnType<typeof setTimeout> | undefined
  /** The hold timer's commit under way (commitHeld), which close() waits for. */
  private heldCommit: Promise<void> | undefined
  /** Inode -> placements of its committed versions still in flight, each with when it began. */
  private readonly placing = new Map<InodeId, Set<{ done: Promise<void>, at: number }>>()
  private readonly syncPlaceWaitMs: number
  private readonly heldAttrsMs: number
  /** Whether a commit may make multi-extent ops now (VolumeParts.multiExtent). */
  private readonly multiExtent: () => boolean
  private readonly foldIdleMs: number
  private readonly held: ((cid: CID, op?: Uint8Array) => Promise<void>) | undefined
  /** The newest of this host's ops a directory fsync found held (syncDir). */
  private heldUpTo: CID | undefined
  /** Inodes a fold is being built for (one at a time per inode), and its work (close waits for it). */
  private readonly folding = new Map<InodeId, Promise<void>>()
  /** Inodes asked to fold while a fold of theirs ran (true: a quiet fold was asked): asked again when it ends. */
  private readonly foldAgain = new Map<InodeId, boolean>()
  /** Inode -> its folds found moved in a row (FOLD_MOVED_MAX_MS) and when the next may start (performance.now()). */
  private readonly foldMoved = new Map<InodeId, { n: number, at: number }>()
  /** foldDue()'s tallies of files with extents, kept from one commit to the next (FoldTally). */
  private readonly foldTallies = new Map<InodeId, FoldTally>()
  /** Inodes with a fold due later (quiet, or extents left to settle): its timer. */
  private readonly foldTimers = new Map<InodeId, ReturnType<typeof setTimeout>>()
  /** Inodes whose timer looks again at chunks left to settle (a partial fold's, not quiet): commits meanwhile do not. */
  private readonly foldWaits = new Set<InodeId>()
  /** Aborted at close: a fold waiting for the placement of its chunks gives up. */
  private readonly foldStop = new AbortController()
  /**
   * The folds running, by inode, each aborted when its file has no name left (an op unlinks it,
   * here or from a peer): the compare bench's fio file, removed right after its random writes,
   * went on being folded (its dense chunks rewritten: 120 MiB at 256 MiB) through the SQLite
   * cells that followed.
   */
  private readonly foldAborts = new Map<InodeId, AbortController>()
  /** When this host last committed an op of its own other than a fold (performance.now(); FOLD_IDLE_MS). */
  private busyAt = -Infinity
  /** Inodes whose quiet fold waits for the host to be idle, and since when (FOLD_IDLE_WAIT_MAX_MS). */
  private readonly foldDeferred = new Map<InodeId, number>()
  /** Inodes whose next fold is not put off for idleness: a fold found moved the first time, made again once its ops landed (mend42a). */
  private readonly foldNow = new Set<InodeId>()
  /** Entry id -> the canonical path it was last resolved at and its inode (bounded by SEEN_PATHS_MAX). */
  private readonly seen = new Map<string, { path: string, inode: InodeId }>()

  constructor (parts: VolumeParts) {
    this.tree = parts.tree
    this.chunks = parts.chunks
    this.store = parts.store
    this.capacity = parts.capacity
    this.closeParts = parts.close
    this.syncPlaceWaitMs = parts.syncPlaceWaitMs ?? SYNC_PLACE_WAIT_MS
    this.heldAttrsMs = parts.heldAttrsMs ?? HELD_ATTRS_MS
    this.multiExtent = parts.multiExtent ?? (() => true)
    this.foldIdleMs = parts.foldIdleMs ?? FOLD_IDLE_MS
    this.held = parts.held
    this.tree.addEventListener('ops', (e: Event) => {
      const { local, ops } = (e as CustomEvent<OpsEventDetail>).detail
      if (local && ops.some(op => op.body.type !== 'fold')) this.busyAt = performance.now()
      // an unlink, a rename over, an rmdir of a tree or a peer's merge may take a file's last name
      // (the tree is as the whole batch left it: one look per batch sees what one per op did)
      for (const [inode, stop] of this.foldAborts) if (this.unlinked(inode)) stop.abort()
      // (no file open here: nothing to rebase, and no lookup per op a peer makes)
      if (local || this.open_.size === 0) return
      for (const { body } of ops) {
        if (body.type !== 'write' && body.type !== 'append' && body.type !== 'fold') continue
        const inode = this.tree.get(body.inode)
        const open = inode === undefined ? undefined : this.open_.get(inode.id)
        if (open !== undefined && inode !== undefined) open.rebase(this.fileState(inode))
      }
    })
  }

  /**
   * Open a single-host volume in a data dir (library use: `Volume.open({ dir })`). The data dir
   * gets an identity on first use. A host (`darkfs up`) builds its Volume from parts instead.
   */
  static async open (init: { dir: string } & LocalOptions): Promise<Volume> {
    const { openLocal } = await import('./local.ts')
    return await openLocal(init.dir, init)
  }

  /**
   * Plan the folds of files whose extents this host wrote and had not folded yet (a restart
   * forgets the folds it had planned): each is folded as a quiet file is, once this host is idle.
   * The Volume's owner calls it once it serves (the daemon, a library Volume's open). Returns how
   * many files were planned.
   */
  resumeFolds (): number {
    const files = this.tree.filesWithOwnExtents()
    for (const inode of files) if (!this.foldTimers.has(inode) && !this.folding.has(inode)) this.foldLater(inode, FOLD_QUIET_MS, true)
    return files.length
  }

  /** Close what this Volume owns (a library Volume: its tree and store). Idempotent. */
  async close (): Promise<void> {
    // open writes renew their placed chunks' promises no more (a round in flight is aborted)
    this.chunks.close()
    // folds under way end first (positioned extents make them frequent): none stores chunks or
    // commits its op into a store or tree being closed; one still placing its chunks stops
    // there and commits nothing (its chunks are left to GC); none due later starts
    for (const timer of this.foldTimers.values()) clearTimeout(timer)
    this.foldTimers.clear()
    this.foldWaits.clear()
    this.foldTallies.clear()
    this.foldDeferred.clear()
    this.foldStop.abort()
    clearTimeout(this.heldTimer)
    this.heldTimer = undefined
    this.closing ??= Promise.all(this.folding.values()).then(async () => {
      // a timer's commit under way ends first (its version recorded before the stamp below looks
      // at what is pending), then held attribute changes are committed before the tree closes
      await this.heldCommit
      if (this.heldAttrs.size > 0) await this.stamp([], 'written').catch((err: Error) => { log.error('attribute changes held for open files not committed at close: %s', err.message) })
      await this.closeParts?.()
    })
    await this.closing
  }

  /** Every committed content of every live file (for status, GC and repair). */
  * liveContents (): Generator<Content> {
    const stack: InodeId[] = [this.tree.root]
    const seen = new Set<InodeId>()
    while (stack.length > 0) {
      const dir = stack.pop()!
      for (const e of this.tree.children(dir)) {
        if (seen.has(e.inode)) continue
        seen.add(e.inode)
        const inode = this.tree.get(e.inode)
        if (inode === undefined) continue
        if (inode.kind === 'dir') stack.push(inode.id)
        else yield * this.tree.contents(inode.id)
      }
    }
  }

  /** The paths whose cached entries or attributes an op (from a peer) makes stale. */
  changedPaths (body: OpBody): string[] {
    const pathOf = (inode: InodeId): string[] => inode === this.tree.root
      ? ['/']
      : this.tree.entries(inode).map(e => this.tree.path(e.id)).filter((p): p is string => p !== undefined)
    const out = new Set<string>()
    const add = (paths: string[]): void => { for (const p of paths) out.add(p) }
    switch (body.type) {
      case 'create': case 'link': case 'move':
        add(pathOf(body.parent).map(p => (p === '/' ? '' : p) + '/' + body.name))
        add(pathOf(body.parent))
        if (body.type !== 'create') add(pathOf(body.type === 'link' ? body.inode : this.tree.get(body.entry)?.id ?? body.entry))
        if (body.type === 'move') {
          // where the entry was, and the entry it replaced, as the kernel last saw them, and
          // the other names of the replaced file (one link fewer)
          for (const id of [body.entry, body.replace]) {
            const old = id === undefined ? undefined : this.seen.get(id)
            if (old !== undefined) { out.add(old.path); out.add(parentPath(old.path)) }
            if (old !== undefined && id === body.replace) add(pathOf(old.inode))
          }
        }
        break
      case 'unlink': {
        // the entry is gone from the tree: its old path is the one it was last resolved at; the
        // file's other names show one link fewer
        const old = this.seen.get(body.entry)
        if (old === undefined) out.add('/')
        else { out.add(old.path); out.add(parentPath(old.path)); add(pathOf(old.inode)) }
        break
      }
      case 'resolve': {
        // each sibling went (its old path) or took a plain name (both); the holder's content may have changed
        add(pathOf(body.inode))
        for (const { entry } of body.siblings) {
          const old = this.seen.get(entry)
          if (old !== undefined) { out.add(old.path); out.add(parentPath(old.path)) }
          const now = this.tree.path(entry)
          if (now !== undefined) { out.add(now); out.add(parentPath(now)) }
        }
        for (const p of pathOf(body.inode)) out.add(parentPath(p))
        break
      }
      default:
        add(pathOf(body.inode))
    }
    return [...out]
  }

  // ---- resolution -------------------------------------------------------------------------

  private walk (path: string, followLast: boolean, syscall: string): Resolved {
    let parts = split(path, syscall)
    let hops = 0
    for (;;) {
      let inode = this.tree.get(this.tree.root)!
      let entry: Entry | undefined
      let restarted = false
      for (let i = 0; i < parts.length; i++) {
        if (inode.kind !== 'dir') throw new FsError('ENOTDIR', syscall, path)
        const e = this.tree.lookup(inode.id, parts[i])
        if (e === undefined) throw new FsError('ENOENT', syscall, path)
        const next = this.tree.get(e.inode)
        if (next === undefined) throw new FsError('ENOENT', syscall, path)
        const last = i === parts.length - 1
        if (next.kind === 'symlink' && (!last || followLast)) {
          if (++hops > MAX_SYMLINK_HOPS) throw new FsError('ELOOP', syscall, path)
          const target = next.target ?? ''
          const base = target.startsWith('/') ? [] : parts.slice(0, i)
          parts = split(join([...base, ...target.split('/'), ...parts.slice(i + 1)].filter(p => p !== '')), syscall)
          restarted = true
          break
        }
        inode = next
        entry = e
      }
      if (!restarted) {
        if (entry !== undefined && hops === 0) this.remember(entry.id, join(parts), entry.inode)
        return { inode, entry, path }
      }
    }
  }

  private remember (entry: string, path: string, inode: InodeId): void {
    if (this.seen.get(entry)?.path === path) return
    this.seen.delete(entry)
    this.seen.set(entry, { path, inode })
    if (this.seen.size > SEEN_PATHS_MAX) this.seen.delete(this.seen.keys().next().value as string)
  }

  /** The directory that holds the last component of `path`, and that component's name. */
  private parentOf (path: string, syscall: string): { dir: Inode, name: string, existing?: Entry } {
    const parts = split(path, syscall)
    if (parts.length === 0) throw new FsError('EEXIST', syscall, path, 'the volume root')
    const name = parts[parts.length - 1]
    checkName(name, syscall, path)
    const { inode: dir } = this.walk(join(parts.slice(0, -1)), true, syscall)
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', syscall, path)
    return { dir, name, existing: this.tree.lookup(dir.id, name) }
  }

  /**
   * Commit a namespace or attribute change: written to the log, synced later (the head of this
   * file). A name change passes its call's signal: aborted while the op waits for its
   * turn in the tree, nothing is applied and the call rejects; once stamped it is applied and the
   * call resolves, aborted or not (Tree.commitMany), so a caller told the change failed (the
   * mount's deadline: fuse/index.ts) never sees it appear later.
   */
  private async commit (body: OpBody, signal?: AbortSignal): Promise<{ cid: CID, id: InodeId }> {
    return (await this.stamp([body], 'written', signal === undefined ? undefined : { signal }))[0]
  }

  /**
   * Tree.commitMany of `bodies`, after the attribute changes held for open files (heldAttrs: no
   * change of this host is stamped before them), in one batch; the results are `bodies`' own.
   * A batch that fails holds its attribute changes again (under any held since). `keeping`: the
   * inode whose version in `bodies` leaves writes pending (another handle's appends kept back,
   * Committed `kept`): its times stay held as for a file with no version in the batch.
   */
  private async stamp (bodies: OpBody[], durability: Durability, opts?: CommitOptions, keeping?: InodeId): Promise<Array<{ cid: CID, id: InodeId }>> {
    if (this.heldAttrs.size === 0) {
      const done = await this.tree.commitMany(bodies, durability, opts)
      this.cleanCommitted(bodies)
      return done
    }
    const held = [...this.heldAttrs.values()]
    const same = new Set(this.heldSame)
    this.heldAttrs.clear()
    this.heldSame.clear()
    // a change that changes nothing but ctime, with a version of its file at or after it here: left out
    let stamped = same.size === 0 ? held : held.filter(h => !(same.has(h.inode) && bodies.some(b => versionAfter(b, h))))
    // times held for a file whose pending writes go in no version of this batch (or only in part:
    // `keeping`, a run kept back after it) stay held with those writes (their version's time would
    // hide an explicit mtime), at most until the hold's timer commits the writes with them
    // (heldTimer, left running for them): the rest goes now.
    // A Volume closing commits no writes: their times are dropped (another host would see them
    // on the old bytes: `cp -u` and `tar --keep-newer-files` would skip the file)
    const kept: Array<OpBody & { type: 'setattr' }> = []
    stamped = stamped.flatMap(h => {
      // (times set before the writes, heldClean, count too: a chmod after the write took them
      // out of the held change, heldMerged, and a closing Volume commits them: review34a)
      if ((!hasTimes(h) && !this.heldClean.has(h.inode)) || !this.pendingVersion(h.inode) || (h.inode !== keeping && bodies.some(b => isVersionOf(b, h.inode)))) return [h]
      const { atime, mtime, ...rest } = h
      if (this.closing === undefined) {
        if (hasTimes(h)) {
          const times: OpBody & { type: 'setattr' } = { type: 'setattr', inode: h.inode, time: h.time }
          if (atime !== undefined) times.atime = atime
          if (mtime !== undefined) times.mtime = mtime
          kept.push(times)
        }
      } else {
        // (the times set before those writes describe the version that stays: committed)
        const left = this.cleanTimes(rest, h.inode)
        if (droppedTimes(h, left)) log.error('inode %s: times set on a file with or after its writes not committed dropped at close', h.inode)
        return left.mode === undefined && left.uid === undefined && left.gid === undefined && !hasTimes(left) ? [] : [left]
      }
      return rest.mode === undefined && rest.uid === undefined && rest.gid === undefined ? [] : [rest]
    })
    for (const k of kept) this.heldAttrs.set(k.inode, k)
    if (kept.length === 0) {
      clearTimeout(this.heldTimer)
      this.heldTimer = undefined
    } else this.holdTimer()
    // times held for a file go after its version in the batch when that version's writes all
    // came before them (its time, the last write's, is at or before theirs), so the version does
    // not move mtime past them: one setattr and one version, as the calls came
    const batch: OpBody[] = []
    const after = new Map<number, Array<OpBody & { type: 'setattr' }>>()
    for (const h of stamped) {
      const v = hasTimes(h) ? lastVersionOf(bodies, h.inode) : -1
      if (v >= 0 && bodies[v].time <= h.time) after.set(v, [...after.get(v) ?? [], h])
      else batch.push(h)
    }
    const own: number[] = []
    for (let i = 0; i < bodies.length; i++) {
      own.push(batch.length)
      batch.push(bodies[i], ...after.get(i) ?? [])
    }
    for (const h of stamped) {
      const f = this.heldFlying.get(h.inode)
      this.heldFlying.set(h.inode, { batches: (f?.batches ?? 0) + 1, body: f === undefined ? h : { ...f.body, ...h } })
    }
    try {
      if (batch.length === 0) return []
      const done = await this.tree.commitMany(batch, durability, opts)
      // an mtime set after a file's last write is its mtime now (the tree's), not that write's time
      for (const h of stamped) {
        const f = h.mtime === undefined ? undefined : this.open_.get(h.inode)
        if (f?.mtime !== undefined && f.mtime <= h.time) f.mtime = undefined
      }
      // what was held for a file is committed now, the times set before its writes with it, unless
      // they stay held with those writes (kept); not an entry set since (a later time), and only
      // the fields the change carried: a chmod after a write (heldMerged took the mtime out)
      // commits no time, and the one set before the write stays for a give-up (review34a)
      const waiting = new Set(kept.map(k => k.inode))
      for (const h of stamped) {
        const clean = this.heldClean.get(h.inode)
        if (clean === undefined || waiting.has(h.inode) || clean.time > h.time) continue
        if (h.atime !== undefined) delete clean.atime
        if (h.mtime !== undefined) delete clean.mtime
        if (clean.atime === undefined && clean.mtime === undefined) this.heldClean.delete(h.inode)
      }
      this.cleanCommitted(bodies)
      return own.map(i => done[i])
    } catch (err) {
      for (const b of held) {
        const now = this.heldAttrs.get(b.inode)
        if (same.has(b.inode) && (now === undefined || this.heldSame.has(b.inode))) this.heldSame.add(b.inode)
        else this.heldSame.delete(b.inode)
        // (a kept part of `b` is in heldAttrs already: merged again, the same fields). Merged
        // under a change held since, `b` takes its later time: its mtime goes when the file was
        // written after it (as heldMerged), or it would read as set after that write (review34a)
        this.heldAttrs.set(b.inode, now === undefined ? b : { ...this.writtenSince(b), ...now })
      }
      if (this.heldAttrs.size > 0) this.holdTimer()
      throw err
    } finally {
      for (const h of stamped) {
        const f = this.heldFlying.get(h.inode)
        if (f === undefined || f.batches <= 1) this.heldFlying.delete(h.inode)
        else f.batches--
      }
    }
  }

  /**
   * A version of a file in `bodies` is committed: the writes the times set before them
   * (heldClean) were kept for are in the tree, and those times no longer describe the file.
   */
  private cleanCommitted (bodies: OpBody[]): void {
    if (this.heldClean.size === 0) return
    for (const id of [...this.heldClean.keys()]) if (bodies.some(b => isVersionOf(b, id))) this.heldClean.delete(id)
  }

  /** Whether inode `id` is open here with writes not committed yet (a version to come, unless it is unlinked). */
  private pendingVersion (id: InodeId): boolean {
    const f = this.open_.get(id)
    return f !== undefined && f.changed && !this.unlinked(id)
  }

  /**
   * A mode or owner change: held while the file is open here (heldAttrs, with the changes held
   * before it: one op), else committed now.
   */
  private async setAttrs (inode: Inode, fields: { mode?: number, uid?: number, gid?: number }): Promise<void> {
    const body: OpBody & { type: 'setattr' } = { type: 'setattr', inode: inode.id, ...fields, time: nowNs() }
    const open = this.open_.get(inode.id)
    if (open === undefined || open.handles === 0 || this.closing !== undefined) {
      await this.commit(body)
      return
    }
    const before = this.heldMerged(inode.id, open)
    // the same fields as this host shows them now (the held change, else one in a batch not
    // applied yet, else the inode's)
    const shown = this.heldShown(inode.id)
    const same = (before === undefined || this.heldSame.has(inode.id)) &&
      (fields.mode === undefined || fields.mode === ((shown?.mode ?? inode.mode) & PERM_MASK)) &&
      (fields.uid === undefined || fields.uid === (shown?.uid ?? inode.uid)) &&
      (fields.gid === undefined || fields.gid === (shown?.gid ?? inode.gid))
    if (same) this.heldSame.add(inode.id)
    else this.heldSame.delete(inode.id)
    this.heldAttrs.set(inode.id, before === undefined ? body : { ...before, ...body })
    this.holdTimer()
  }

  /**
   * The change held for open file `f` (inode `id`), to merge a later one into: its mtime left out
   * when the file was written since it was held (that write's time is the file's mtime now, and
   * the merged change's time, later, would put it after the write's version: stamp()).
   */
  private heldMerged (id: InodeId, f: OpenFile): (OpBody & { type: 'setattr' }) | undefined {
    const before = this.heldAttrs.get(id)
    return before === undefined ? undefined : this.writtenSince(before, f)
  }

  /** Held change `h` without its mtime when its file (`f`, else the one open here) was written after it. */
  private writtenSince (h: OpBody & { type: 'setattr' }, f: OpenFile | undefined = this.open_.get(h.inode)): OpBody & { type: 'setattr' } {
    if (h.mtime === undefined || f?.mtime === undefined || f.mtime <= h.time) return h
    const { mtime, ...rest } = h
    return rest
  }

  /**
   * `rest` (a held change without its times) with the times held for inode `id` that were set
   * while it had no writes pending (heldClean): what is left of the change when the writes
   * pending now are given up. The entry is used up.
   */
  private cleanTimes (rest: OpBody & { type: 'setattr' }, id: InodeId): OpBody & { type: 'setattr' } {
    const clean = this.heldClean.get(id)
    this.heldClean.delete(id)
    const left: OpBody & { type: 'setattr' } = { ...rest }
    if (clean?.atime !== undefined) left.atime = clean.atime
    if (clean?.mtime !== undefined) left.mtime = clean.mtime
    return left
  }

  /**
   * The held mode and owner fields of an inode as this host shows them: a batch's not applied
   * yet, under the ones held since (field by field: a chown held after a chmod in flight leaves
   * the chmod's mode shown).
   */
  private heldShown (id: InodeId): (OpBody & { type: 'setattr' }) | undefined {
    const held = this.heldAttrs.get(id)
    let flying = this.heldFlying.get(id)?.body
    if (flying === undefined) return held
    // an mtime in flight from before a write of the open file since: that write's time is its
    // mtime now (as heldMerged), not to be shown under a change held after the write
    const open = this.open_.get(id)
    if (held !== undefined && flying.mtime !== undefined && open?.mtime !== undefined && open.mtime > flying.time) {
      const { mtime, ...rest } = flying
      flying = rest
    }
    return held === undefined ? flying : { ...flying, ...held }
  }

  /**
   * Commits what is held within HELD_ATTRS_MS: times held with writes not committed go with
   * those writes (the file's version, then the times: commitFile), as a chmod goes alone, so a
   * file kept open holds an explicit mtime no longer than a mode.
   */
  private holdTimer (): void {
    if (this.heldTimer !== undefined || this.closing !== undefined) return
    this.heldTimer = setTimeout(() => {
      this.heldTimer = undefined
      const run = this.commitHeld()
      this.heldCommit = run
      void run.finally(() => { if (this.heldCommit === run) this.heldCommit = undefined })
    }, this.heldAttrsMs)
  }

  /**
   * What holdTimer does when it fires. Each file's commit on its own: one that fails (no space)
   * or waits (placement room) holds back no other file's held changes, committed after them
   * whatever befell those commits. close() waits for a run under way before its own stamp.
   */
  private async commitHeld (): Promise<void> {
    if (this.heldAttrs.size === 0 || this.closing !== undefined) return
    const writing: OpenFile[] = []
    for (const h of this.heldAttrs.values()) {
      const f = hasTimes(h) && this.pendingVersion(h.inode) ? this.open_.get(h.inode) : undefined
      if (f !== undefined) writing.push(f)
    }
    // the others first (a mode or owner held for a file with no writes pending waits on no
    // file's commit: times held with writes stay held for them, stamp())
    if (this.heldAttrs.size > writing.length && this.closing === undefined) {
      await this.stamp([], 'written').catch((err: Error) => { log.error('attribute changes held for open files not committed: %s', err.message) })
    }
    // (a file's commit stamps every change held with its version)
    for (const f of writing) {
      if (!this.heldAttrs.has(f.inode) || this.closing !== undefined) continue
      await this.commitFile(f, 'none', {}, true, 'all').catch((err: Error) => { log.error('writes of an open file with times held not committed (the times stay held with them): %s', err.message) })
    }
  }

  // ---- attributes -------------------------------------------------------------------------

  private toStats (inode: Inode): Stats {
    const open = this.open_.get(inode.id)
    const size = open?.size ?? inode.size
    let mtime = open?.mtime !== undefined && open.mtime > inode.mtime ? open.mtime : inode.mtime
    // a mode or owner change held for the open file (heldAttrs) is this host's view already
    const held = this.heldAttrs.size === 0 && this.heldFlying.size === 0 ? undefined : this.heldShown(inode.id)
    let ctime = mtime > inode.ctime ? mtime : inode.ctime
    if (held !== undefined && held.time > ctime) ctime = held.time
    // times held for the open file, unless it was written since (that write's time is its mtime)
    if (held?.mtime !== undefined && (open?.mtime === undefined || open.mtime <= held.time)) mtime = held.mtime
    const kind = inode.kind
    return {
      ino: inode.ino,
      mode: typeOf(kind) | ((held?.mode ?? inode.mode) & PERM_MASK),
      kind,
      nlink: inode.nlink,
      uid: held?.uid ?? inode.uid,
      gid: held?.gid ?? inode.gid,
      rdev: inode.rdev,
      size: kind === 'symlink' ? Buffer.byteLength(inode.target ?? '') : size,
      blocks: Math.ceil(size / 512),
      blksize: BLOCK,
      atimeNs: held?.atime ?? inode.atime,
      mtimeNs: mtime,
      ctimeNs: ctime,
      birthtimeNs: inode.btime,
      atimeMs: nsToMs(held?.atime ?? inode.atime),
      mtimeMs: nsToMs(mtime),
      ctimeMs: nsToMs(ctime),
      isFile: () => kind === 'file',
      isDirectory: () => kind === 'dir',
      isSymbolicLink: () => kind === 'symlink'
    }
  }

  async stat (path: string, options: AbortOptions = {}): Promise<Stats> {
    options.signal?.throwIfAborted()
    return this.toStats(this.walk(path, true, 'stat').inode)
  }

  async lstat (path: string, options: AbortOptions = {}): Promise<Stats> {
    options.signal?.throwIfAborted()
    return this.toStats(this.walk(path, false, 'lstat').inode)
  }

  async chmod (path: string, mode: number, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.chmodOf(this.walk(path, true, 'chmod').inode, mode)
  }

  private async chmodOf (inode: Inode, mode: number): Promise<void> {
    await this.setAttrs(inode, { mode: mode & PERM_MASK })
  }

  async chown (path: string, uid: number, gid: number, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.setOwner(this.walk(path, true, 'chown').inode, uid, gid)
  }

  /** chown of a symlink itself. */
  async lchown (path: string, uid: number, gid: number, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.setOwner(this.walk(path, false, 'chown').inode, uid, gid)
  }

  private async setOwner (inode: Inode, uid: number, gid: number): Promise<void> {
    const fields: { uid?: number, gid?: number } = {}
    if (uid >= 0 && uid !== 0xffffffff) fields.uid = uid
    if (gid >= 0 && gid !== 0xffffffff) fields.gid = gid
    await this.setAttrs(inode, fields)
  }

  async utimes (path: string, atime: TimeArg, mtime: TimeArg, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.setTimes(this.walk(path, true, 'utimes').inode, atime, mtime, options)
  }

  /** utimes of a symlink itself. */
  async lutimes (path: string, atime: TimeArg, mtime: TimeArg, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.setTimes(this.walk(path, false, 'utimes').inode, atime, mtime, options)
  }

  private async setTimes (inode: Inode, atime: TimeArg, mtime: TimeArg, options: AbortOptions): Promise<void> {
    const open = this.open_.get(inode.id)
    const now = nowNs()
    const body: OpBody & { type: 'setattr' } = { type: 'setattr', inode: inode.id, time: now }
    const a = toNs(atime, now)
    const m = toNs(mtime, now)
    if (a !== undefined) body.atime = a
    if (m !== undefined) body.mtime = m
    // a file open here: held with its mode and owner changes (heldAttrs), and committed with
    // them, after the file's next version when that version's writes all came before (stamp():
    // tar's write, futimens, fchown, fchmod, close make one version and one setattr)
    if (open !== undefined && open.handles > 0 && this.closing === undefined && !this.unlinked(inode.id)) {
      const before = this.heldMerged(inode.id, open)
      this.heldSame.delete(inode.id)
      if (!open.changed) {
        const clean = { ...this.heldClean.get(inode.id), time: now }
        if (a !== undefined) clean.atime = a
        if (m !== undefined) clean.mtime = m
        this.heldClean.set(inode.id, clean)
      }
      this.heldAttrs.set(inode.id, before === undefined ? body : { ...before, ...body })
      this.holdTimer()
      return
    }
    // pending writes are committed first (in the same log append: one fdatasync for both), so
    // an explicit mtime is not hidden by their write time
    // the write and the times in one turn of the file's queue (no write slips in between)
    let together = false
    const c = open !== undefined && open.changed && !this.unlinked(inode.id)
      ? await this.commitOpen(open, async (bodies, _kept, guarded) => {
        await this.stamp([...bodies, body], 'durable', guarded)
        together = true
      }, options)
      : undefined
    if (open !== undefined && c !== undefined) this.placeCommitted(open, c)
    if (c?.append !== undefined || c?.extents !== undefined) this.foldIfDue(inode.id)
    if (!together) await this.commit(body)
    if (open !== undefined) open.mtime = undefined
  }

  // ---- directories ------------------------------------------------------------------------

  /** Names in a directory; with `{ withFileTypes: true }`, Dirents (as node:fs/promises). */
  async readdir (path: string, options?: AbortOptions & { withFileTypes?: false }): Promise<string[]>
  async readdir (path: string, options: AbortOptions & { withFileTypes: true }): Promise<Dirent[]>
  async readdir (path: string, options: AbortOptions & { withFileTypes?: boolean } = {}): Promise<string[] | Dirent[]> {
    const ents = await this.readdirents(path, options)
    return options.withFileTypes === true ? ents : ents.map(d => d.name)
  }

  async readdirents (path: string, options: AbortOptions = {}): Promise<Dirent[]> {
    options.signal?.throwIfAborted()
    const { inode } = this.walk(path, true, 'readdir')
    if (inode.kind !== 'dir') throw new FsError('ENOTDIR', 'readdir', path)
    const out: Dirent[] = []
    for (const e of this.tree.children(inode.id)) {
      const child = this.tree.get(e.inode)
      if (child !== undefined) out.push({ name: e.name, kind: child.kind, ino: child.ino })
    }
    return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  }

  /**
   * fsync(2) of a directory (FUSE fsyncdir): every change made here before the call, the
   * directory's entries among them (creates, renames, unlinks: written to the op log when their
   * call returns, synced later), is synced to this host's disk (the op log is one: all of them);
   * then, on a network, this waits, as a file's fsync does for its op, until a peer holds this
   * host's newest op and with it every earlier one, at most the fsync bound (SYNC_PLACE_WAIT_MS)
   * from this call. Nothing made here since the last hold that was done: no ask.
   */
  async syncDir (path: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const { inode } = this.walk(path, true, 'fsync')
    if (inode.kind !== 'dir') throw new FsError('ENOTDIR', 'fsync', path)
    // mode and owner changes held for open files are synced too
    if (this.heldAttrs.size > 0) await this.stamp([], 'written')
    await raceSignal(this.tree.sync(), options.signal)
    const newest = this.tree.newestLocal()
    if (newest === undefined || this.held === undefined || this.heldUpTo?.equals(newest) === true) return
    const held = this.held(newest).then(() => { this.heldUpTo = newest })
    await settledWithin(held, this.syncPlaceWaitMs, options.signal)
  }

  private owner (dir: Inode, caller: Caller, kind: Kind, mode: number): { uid: number, gid: number, mode: number } {
    let m = mode & PERM_MASK & ~(caller.umask ?? 0)
    let gid = caller.gid
    if ((dir.mode & S_ISGID) !== 0) {
      gid = dir.gid
      if (kind === 'dir') m |= S_ISGID
    }
    return { uid: caller.uid, gid, mode: m }
  }

  private async create (path: string, kind: Kind, mode: number, caller: Caller, extra: { target?: string, rdev?: number, content?: Content, size?: number } = {}, syscall = 'create', signal?: AbortSignal): Promise<InodeId> {
    const { dir, name, existing } = this.parentOf(path, syscall)
    if (existing !== undefined) throw new FsError('EEXIST', syscall, path)
    const own = this.owner(dir, caller, kind, mode)
    const body: OpBody = { type: 'create', parent: dir.id, name, kind, mode: own.mode, uid: own.uid, gid: own.gid, time: nowNs() }
    if (extra.target !== undefined) body.target = extra.target
    if (extra.rdev !== undefined) body.rdev = extra.rdev
    if (extra.content !== undefined) body.content = extra.content
    if (extra.size !== undefined) body.size = extra.size
    return (await this.commit(body, signal)).id
  }

  async mkdir (path: string, opts: { recursive?: boolean, mode?: number, caller?: Caller } & AbortOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted()
    const caller = opts.caller ?? ROOT
    const mode = opts.mode ?? 0o755
    if (opts.recursive === true) {
      const parts = split(path, 'mkdir')
      for (let i = 1; i <= parts.length; i++) {
        const p = join(parts.slice(0, i))
        let r: Resolved | undefined
        try { r = this.walk(p, true, 'mkdir') } catch (err: any) { if (err.code !== 'ENOENT') throw err }
        if (r === undefined) await this.create(p, 'dir', mode, caller, {}, 'mkdir', opts.signal)
        else if (r.inode.kind !== 'dir') throw new FsError('ENOTDIR', 'mkdir', p)
      }
      return
    }
    await this.create(path, 'dir', mode, caller, {}, 'mkdir', opts.signal)
  }

  async rmdir (path: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const { inode, entry } = this.walk(path, false, 'rmdir')
    if (entry === undefined) throw new FsError('EBUSY', 'rmdir', path, 'the volume root')
    if (inode.kind !== 'dir') throw new FsError('ENOTDIR', 'rmdir', path)
    if (this.tree.children(inode.id).length > 0) throw new FsError('ENOTEMPTY', 'rmdir', path)
    await this.commit({ type: 'unlink', entry: entry.id, time: nowNs() }, options.signal)
  }

  async unlink (path: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const { inode, entry } = this.walk(path, false, 'unlink')
    if (entry === undefined) throw new FsError('EISDIR', 'unlink', path)
    if (inode.kind === 'dir') throw new FsError('EISDIR', 'unlink', path)
    await this.commit({ type: 'unlink', entry: entry.id, time: nowNs() }, options.signal)
  }

  async rm (path: string, opts: { recursive?: boolean } & AbortOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted()
    const { inode, entry } = this.walk(path, false, 'rm')
    if (entry === undefined) throw new FsError('EBUSY', 'rm', path, 'the volume root')
    if (inode.kind !== 'dir') { await this.unlink(path, opts); return }
    if (opts.recursive !== true) {
      if (this.tree.children(inode.id).length > 0) throw new FsError('ENOTEMPTY', 'rm', path, 'a non-empty directory: use recursive')
      await this.rmdir(path, opts)
      return
    }
    // depth first: children, then the directory itself
    const base = split(path, 'rm')
    for (const child of this.tree.children(inode.id)) {
      await this.rm(join([...base, child.name]), opts)
    }
    await this.rmdir(path, opts)
  }

  async rename (from: string, to: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const src = this.walk(from, false, 'rename')
    if (src.entry === undefined) throw new FsError('EBUSY', 'rename', from, 'the volume root')
    const { dir, name, existing } = this.parentOf(to, 'rename')
    if (existing?.id === src.entry.id) return
    // a directory cannot move into itself or its own subtree
    if (src.inode.kind === 'dir' && this.isInside(dir.id, src.inode.id)) throw new FsError('EINVAL', 'rename', to, 'a directory cannot move into itself')
    const body: OpBody = { type: 'move', entry: src.entry.id, parent: dir.id, name, time: nowNs() }
    if (existing !== undefined) {
      const target = this.tree.get(existing.inode)!
      if (existing.inode === src.inode.id) {
        // two links to one inode: POSIX says do nothing
        return
      }
      if (src.inode.kind === 'dir') {
        if (target.kind !== 'dir') throw new FsError('ENOTDIR', 'rename', to)
        if (this.tree.children(target.id).length > 0) throw new FsError('ENOTEMPTY', 'rename', to)
      } else if (target.kind === 'dir') {
        throw new FsError('EISDIR', 'rename', to)
      }
      body.replace = existing.id
    }
    await this.commit(body, options.signal)
  }

  /** True when directory `dir` is `ancestor` or lies in its subtree (walking up by first parent link). */
  private isInside (dir: InodeId, ancestor: InodeId): boolean {
    for (let d: InodeId | undefined = dir; d !== undefined && d !== this.tree.root; d = this.tree.entries(d)[0]?.parent) {
      if (d === ancestor) return true
    }
    return false
  }

  /**
   * renameat2(RENAME_EXCHANGE): `a` and `b` (both must exist; any kinds) swap names, at once.
   * Three moves in one batch (commitMany: one log append, applied together here, and gossiped
   * together, so a peer applies them in one receive): `a` to a name of its own in `b`'s
   * directory, `b` to `a`'s name, `a` to `b`'s. No op kind of its own: every host of any version
   * merges moves, and a concurrent rename of either entry elsewhere merges as two renames do.
   * A directory cannot be swapped with one of its own descendants (EINVAL).
   */
  async exchange (a: string, b: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const x = this.walk(a, false, 'rename')
    const y = this.walk(b, false, 'rename')
    if (x.entry === undefined || y.entry === undefined) throw new FsError('EBUSY', 'rename', x.entry === undefined ? a : b, 'the volume root')
    if (x.entry.id === y.entry.id || x.inode.id === y.inode.id) return
    for (const [dir, other] of [[x, y], [y, x]] as const) {
      if (dir.inode.kind === 'dir' && this.isInside(other.entry!.parent, dir.inode.id)) throw new FsError('EINVAL', 'rename', b, 'a directory cannot be exchanged with one inside it')
    }
    const xe = x.entry
    const ye = y.entry
    const time = nowNs()
    // a name of its own for `a` while `b` takes its place
    let aside: string
    do aside = `.darkfs-exchange-${randomBytes(6).toString('hex')}`
    while (this.tree.lookup(ye.parent, aside) !== undefined)
    await this.stamp(exchangeBodies(xe, ye, aside, time), 'written', { signal: options.signal })
  }

  // ---- links ------------------------------------------------------------------------------

  async symlink (target: string, path: string, caller: Caller = ROOT, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    if (target.length === 0) throw new FsError('ENOENT', 'symlink', path, 'empty target')
    if (Buffer.byteLength(target) >= 4096) throw new FsError('ENAMETOOLONG', 'symlink', path)
    await this.create(path, 'symlink', 0o777, { ...caller, umask: 0 }, { target }, 'symlink', options.signal)
  }

  async readlink (path: string, options: AbortOptions = {}): Promise<string> {
    options.signal?.throwIfAborted()
    const { inode } = this.walk(path, false, 'readlink')
    if (inode.kind !== 'symlink') throw new FsError('EINVAL', 'readlink', path, 'not a symbolic link')
    return inode.target ?? ''
  }

  async link (existing: string, path: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const src = this.walk(existing, false, 'link')
    if (src.inode.kind === 'dir') throw new FsError('EPERM', 'link', existing, 'hard links to directories are not allowed')
    const { dir, name, existing: there } = this.parentOf(path, 'link')
    if (there !== undefined) throw new FsError('EEXIST', 'link', path)
    await this.commit({ type: 'link', parent: dir.id, name, inode: src.inode.id, time: nowNs() }, options.signal)
  }

  async mknod (path: string, mode: number, rdev: number, caller: Caller = ROOT, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const kind = kindOf(mode) ?? 'file'
    if (kind === 'dir' || kind === 'symlink') throw new FsError('EINVAL', 'mknod', path)
    if (kind === 'file') {
      await this.create(path, 'file', mode, caller, {}, 'mknod', options.signal)
      return
    }
    await this.create(path, kind, mode, caller, { rdev }, 'mknod', options.signal)
  }

  // ---- xattrs -----------------------------------------------------------------------------

  async getxattr (path: string, name: string, options: AbortOptions = {}): Promise<Uint8Array> {
    options.signal?.throwIfAborted()
    return this.getxattrOf(this.walk(path, true, 'getxattr').inode, name, path)
  }

  private getxattrOf (inode: Inode, name: string, path: string): Uint8Array {
    const v = inode.xattrs.get(name)
    if (v === undefined) throw new FsError('ENODATA', 'getxattr', path, name)
    return v
  }

  async setxattr (path: string, name: string, value: Uint8Array, flags: { create?: boolean, replace?: boolean } & AbortOptions = {}): Promise<void> {
    flags.signal?.throwIfAborted()
    await this.setxattrOf(this.walk(path, true, 'setxattr').inode, name, value, flags, path)
  }

  private async setxattrOf (inode: Inode, name: string, value: Uint8Array, flags: { create?: boolean, replace?: boolean }, path: string): Promise<void> {
    if (name.length === 0 || Buffer.byteLength(name) > 255) throw new FsError('ERANGE', 'setxattr', path, 'attribute name length')
    if (value.byteLength > XATTR_VALUE_MAX) throw new FsError('ERANGE', 'setxattr', path, 'value too large')
    const has = inode.xattrs.has(name)
    if (flags.create === true && has) throw new FsError('EEXIST', 'setxattr', path, name)
    if (flags.replace === true && !has) throw new FsError('ENODATA', 'setxattr', path, name)
    if (!has) {
      let list = Buffer.byteLength(name) + 1
      for (const n of inode.xattrs.keys()) list += Buffer.byteLength(n) + 1
      if (list > XATTR_LIST_MAX) throw new FsError('ENOSPC', 'setxattr', path, `the names of this inode's xattrs would pass ${XATTR_LIST_MAX} bytes`)
    }
    await this.commit({ type: 'setxattr', inode: inode.id, name, value: Uint8Array.from(value), time: nowNs() })
  }

  async listxattr (path: string, options: AbortOptions = {}): Promise<string[]> {
    options.signal?.throwIfAborted()
    return listxattrOf(this.walk(path, true, 'listxattr').inode)
  }

  async removexattr (path: string, name: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.removexattrOf(this.walk(path, true, 'removexattr').inode, name, path)
  }

  private async removexattrOf (inode: Inode, name: string, path: string): Promise<void> {
    if (!inode.xattrs.has(name)) throw new FsError('ENODATA', 'removexattr', path, name)
    await this.commit({ type: 'removexattr', inode: inode.id, name, time: nowNs() })
  }

  // ---- file contents ----------------------------------------------------------------------

  private openFile (inode: Inode, path: string): OpenFile {
    let f = this.open_.get(inode.id)
    if (f === undefined) {
      const id = inode.id
      const current = (): FileState | undefined => {
        const now = this.tree.get(id)
        return now === undefined ? undefined : this.fileState(now)
      }
      f = new OpenFile(id, this.fileState(inode), this.chunks, () => this.tree.path(this.tree.entries(id)[0]?.id ?? '') ?? path, current)
      this.open_.set(inode.id, f)
    }
    return f
  }

  /**
   * Commit an open file's pending state as a new version (one `write` op). The signal may stop
   * prepare() (reading base chunks from peers) and the wait for peers; the placement it starts
   * is the host's, not the caller's, and goes on without it.
   */
  private async commitFile (f: OpenFile, wait: 'none' | 'safe', options: AbortOptions = {}, attrs = true, by?: Pick<CommitFor, 'by' | 'owner'> | 'all'): Promise<void> {
    // an open file whose last name is gone (POSIX: it lives until its last close) makes no
    // version: its writes stay in the open file and end with it (its last close gives up what
    // it stored early), no op, nothing placed
    if (this.unlinked(f.inode)) {
      // (its mode and owner changes held are committed: fchmod of an unlinked file is an op as before)
      if (this.heldAttrs.has(f.inode)) await this.stamp([], 'written')
      if (f.handles === 0) await f.abandon()
      return
    }
    let newest: CID | undefined
    // an fsync's ask for a peer to hold its op, made while the op's log write syncs here
    let early: Promise<void> | undefined
    const held = this.held
    // (the batch's last op: times held with the version are stamped after it)
    const stamped = wait === 'safe' && held !== undefined
      ? (ops: Array<{ cid: CID, bytes: Uint8Array }>) => {
          const last = ops.at(-1)
          if (last !== undefined) {
            newest = last.cid
            early = held(last.cid, last.bytes)
          }
        }
      : undefined
    const c = await this.commitOpen(f, async (bodies, kept, guarded) => {
      // one batch: one log append and fdatasync for all of a commit's extents (a version that
      // keeps another handle's appends back: the times held for the file stay held with them)
      const own = (await this.stamp(bodies, 'durable', { stamped, ...guarded }, kept ? f.inode : undefined)).at(-1)?.cid
      newest ??= own
    }, { ...options, ...commitFor(f, wait, by) })
    if (c !== undefined) this.placeCommitted(f, c)
    // a mode or owner change held for the file, with no version to go with: its own op now
    // (`attrs` false, a flush: at the close, or with this host's next op, whichever comes first)
    else if (attrs && this.heldAttrs.has(f.inode)) await this.stamp([], 'written')
    // a peer holds the version's ops (the ops below them too) before an fsync returns, like its
    // chunks: asked by the fsync, for its own op, or with nothing to commit for this host's
    // newest (which has every earlier op of this host below it: a close's commit, the file's
    // create). A close alone asks no peer (6 hosts, 5,000 small files made by a shell: an ask
    // per close was a stream and an op log sync on a peer per file)
    if (wait === 'safe' && held !== undefined) {
      const cid = newest ?? this.tree.newestLocal()
      if (cid !== undefined) this.track(f.inode, (early ?? held(cid)).then(() => { this.heldUpTo = cid }))
    }
    if (c?.append !== undefined || c?.extents !== undefined) this.foldIfDue(f.inode)
    if (wait === 'safe') await raceSignal(this.placed(f.inode), options.signal)
  }

  /**
   * Commit an open file's pending state (OpenFile.commit), `stampIt` stamping its ops (and what the
   * caller adds to the batch) with `guard`. A whole version (a `write` op) counts every op applied
   * by its stamp as seen (its parents): built from a state read before a peer's append or
   * positioned write arrived, it would be taken as holding bytes it lacks, and they were lost under
   * it on every host (write36). So it is stamped only while the tree's state of the file is the
   * one the open state holds (its mark), with no op of this host on the file stamped and not yet
   * applied; else nothing is stamped, the peers' extents since are laid over the pending writes
   * (OpenFile.catchUp) and it is built again. A version that came meanwhile (a peer's whole write)
   * is not built over: this one, built again from the same state, is stamped at the mark's cut
   * (CommitOptions.at: its parents what it read), concurrent with that version on every host
   * (crdt.ts keeps the one that sorts first as a conflict sibling), unless an op this host stamped
   * since the mark saw what came (Tree.cutSees, an op on its way too): then no stamp can be
   * concurrent with it, and this host's written bytes go as positioned extents over it, which
   * hold nothing they did not read (OpenFile.ownExtents): the version that came is kept but where
   * this host wrote (mend37w; a state that cannot be extents, cut by a truncate, is built again over
   * it and replaces it, history keeping it, as before). Past WHOLE_WRITE_TRIES (a file that keeps
   * moving), this host's written bytes go as positioned extents over the version's content too;
   * a state that cannot be extents is stamped as it is then, and logged.
   */
  private async commitOpen (f: OpenFile, stampIt: (bodies: OpBody[], kept: boolean, guarded: Pick<CommitOptions, 'guard' | 'at'>) => Promise<void>, opts: AbortOptions & CommitFor): Promise<Committed | undefined> {
    let stuck = false
    // the cut of the mark a version came after (a peer's whole version arrived while this one was
    // built): the next build is stamped at it, concurrent with what came since
    let over: Cut | undefined
    // a version came that no stamp can be concurrent with (an op this host stamped since the
    // mark saw it: Tree.cutSees): this host's writes go as positioned extents over it (`mine`),
    // or, a state that cannot be extents, its version is built again over it (`asWhole`)
    let mine = false
    let asWhole = false
    // more ranges written here than extents may list (OpenFile.ownTooMany) over a version that
    // came and was seen: that version laid under them (OpenFile.layUnder), built again over it
    let under = false
    for (let tries = 1; ; tries++) {
      const last = stuck || tries >= WHOLE_WRITE_TRIES
      try {
        return await f.commit(async c => {
          if (this.unlinked(f.inode)) return false
          const whole = c.extents === undefined && c.append === undefined
          const mark = f.mark
          if (c.growth === true && mark !== undefined) {
            // a file's growth as extents (OpenFile buildGrowth) lands at its offsets whatever came
            // since: over a peer's append that came meanwhile it would hide it. Stamped only while
            // the file is as its mark has it; else built again as a whole version, as before wal42
            return await stampIt(this.writeBodies(f, c), c.kept === true, {
              guard: () => {
                if (!this.tree.unapplied(f.inode) && sameFileMark(this.tree.fileMark(f.inode), mark)) return true
                f.refuseGrowth()
                return false
              }
            })
          }
          if (!whole || mark === undefined) return await stampIt(this.writeBodies(f, c), c.kept === true, {})
          if (mine) {
            const own = f.ownExtents(c)
            if (own === undefined) {
              // (a truncate here, or no bytes written: built again over the version that came;
              // more ranges than extents may list: that version laid under them first, none of its
              // bytes between them stamped over with the ones this state read)
              mine = false
              if (f.ownTooMany()) under = true
              else asWhole = true
              throw new GuardError()
            }
            c.extents = own
            log('inode %s: a version came that an op of this host saw: its writes committed over it as %d extents', f.inode, own.length)
            return await stampIt(this.writeBodies(f, c), c.kept === true, {})
          }
          if (over !== undefined && !last) {
            // made over the mark's version, not the one that came since: stamped as made at the
            // mark (its parents what it read), so every host's CRDT takes the two versions as
            // concurrent (crdt.ts: the one that sorts first stays as a conflict sibling), while no
            // op of this host stamped since may have seen the version that came
            const at = over
            return await stampIt(this.writeBodies(f, c), c.kept === true, { guard: () => !this.tree.unapplied(f.inode) && !this.tree.cutSees(at, this.cameSince(f.inode, mark)), at })
          }
          if (last) {
            // (past MAX_OWN_EXTENTS ranges too, one extent each, several ops in the batch: never one
            // spanning them, whose bytes between, this state's as read, went over what came since
            // its last catch-up: a version that came and could not be laid under them, review37m)
            const own = f.ownExtents(c, true)
            if (own !== undefined) {
              c.extents = own
              log('inode %s: moved under %d builds of its version: its writes committed as %d extents', f.inode, tries - 1, own.length)
            } else if (f.ownTooMany() && !sameFileMark(this.tree.fileMark(f.inode), mark)) {
              // past OWN_EXTENTS_ALL_MAX ranges over what it did not read: not stamped over it; the
              // writes stay pending for the next flush, close or fsync
              throw new FsError('EIO', 'close', f.inode, `moved under ${tries - 1} builds of its version, more ranges written than OWN_EXTENTS_ALL_MAX: not committed over what it did not read`)
            } else if (!sameFileMark(this.tree.fileMark(f.inode), mark)) {
              log.error('inode %s: moved under %d builds of its cut version: committed over what it did not read', f.inode, tries - 1)
            }
            return await stampIt(this.writeBodies(f, c), c.kept === true, {})
          }
          await stampIt(this.writeBodies(f, c), c.kept === true, { guard: () => !this.tree.unapplied(f.inode) && sameFileMark(this.tree.fileMark(f.inode), mark) })
        }, opts)
      } catch (err) {
        if (!(err instanceof GuardError)) throw err
        // this host's own ops on the file land first; then the peers' extents since the mark
        await raceSignal(this.tree.landedFor(f.inode), opts.signal)
        const mark = f.mark as FileMark
        // (refused at the cut: again at it while what came is still unseen there, else as below)
        if (over !== undefined && !this.tree.cutSees(over, this.cameSince(f.inode, mark))) continue
        over = undefined
        const now = this.tree.get(f.inode)
        if (now === undefined) continue
        const state = this.fileState(now)
        let since = this.tree.extentsSince(f.inode, mark)
        if (since === undefined && state.mark !== undefined && mark.cut !== undefined && !f.partlyCaughtUp && !this.tree.cutSees(mark.cut, this.cameSince(f.inode, mark))) {
          // a version came between (a peer's whole write, acknowledged there): this one did not
          // read it, nor replaces it. Built again from the same state (nothing laid over it) and
          // stamped at the mark's cut: concurrent with that version and every op since (whole37)
          log('inode %s: a version came while its version was built: stamped as concurrent with it', f.inode)
          over = mark.cut
          continue
        }
        if (since === undefined && state.mark !== undefined && !asWhole && !under && !f.ownTooMany()) {
          // a version came between, and an op this host stamped since the mark saw it (no stamp
          // can leave it out of its past), or the mark has no cut, or a catch-up stopped part-way
          // laid peers' bytes over the state: this host's written bytes go over the version that
          // came as positioned extents (OpenFile.ownExtents), which keep it but where this host wrote
          mine = true
          continue
        }
        asWhole = false
        if (since === undefined && state.mark !== undefined && (under || f.ownTooMany())) {
          // the same, with more ranges written here than extents may list (review37j: one extent
          // spanning them put the bytes this state read over the version that came): that version
          // is laid under this host's bytes, and this one built again over it, under the usual guard
          under = false
          log('inode %s: a version came while its version was built, more ranges written than extents may list: laid under them', f.inode)
          try {
            await f.layUnder(state, opts)
          } catch (e: any) {
            if (opts.signal?.aborted === true) throw e
            log.error('inode %s: the version that came while its version was built not read: %s', f.inode, e?.message)
            stuck = true
          }
          continue
        }
        under = false
        if (since === undefined && state.mark !== undefined) {
          // a version came between, not to be left out of this one's past (as above), and this
          // state cannot be extents (a truncate here): this one replaces it as before (its history keeps it); the appends made over it land after this
          // host's bytes, as over a write that did not see them, and its positioned extents, made
          // over its bytes, go with it
          log('inode %s: a version came while its version was built: stamped over it', f.inode)
          // (but not those this state holds already: the appends of its mark, kept after that
          // version as they were made over a version that did not see them)
          const held = markedExtents(mark)
          since = (this.tree.extentsSince(f.inode, { version: state.mark.version, tail: undefined }) ?? [])
            .filter(x => x.offset === undefined && !held.has(extentKey(x)))
        }
        try {
          await f.catchUp(state, since ?? [], opts)
        } catch (e: any) {
          if (opts.signal?.aborted === true) throw e
          // (a peer's extent unreadable now): this host's writes go as extents, or as they are
          log.error('inode %s: the extents that came while its version was built not read: %s', f.inode, e?.message)
          stuck = true
        }
      }
    }
  }

  /**
   * The ops that made a file's state what it is now and were not in it at `mark`: the versions of
   * its head, and its extents, that the mark does not name.
   */
  private cameSince (inode: InodeId, mark: FileMark): string[] {
    const now = this.tree.fileMark(inode)
    if (now === undefined) return []
    const had = new Set(mark.version.split(','))
    const out = now.version.split(',').filter(id => id !== '' && !had.has(id))
    const held = markedExtents(mark)
    for (let x = now.tail; x !== undefined; x = x.prev) if (!held.has(extentKey(x.ext))) out.push(x.ext.op)
    return out
  }

  /**
   * The ops of an open file's prepared version: its positioned extents (issue 15 item 1: one
   * multi-extent op for up to MAX_OP_EXTENTS of them, several beyond, one batch; one op each
   * while some member may refuse multi-extent ops: multiExtent), its appended bytes, or the
   * whole file.
   */
  private writeBodies (f: OpenFile, c: Committed): OpBody[] {
    const time = f.mtime ?? nowNs()
    if (c.extents !== undefined) {
      const bodies = extentBodies(f.inode, c.extents, time, this.multiExtent() ? MAX_OP_EXTENTS : 1)
      // a new file's first bytes as extents (OpenFile freshInline): its version replaces the empty create
      if (f.createdEmpty && bodies[0].type === 'append') bodies[0].first = true
      return bodies
    }
    const body: OpBody = c.append !== undefined && c.content !== null
      ? { type: 'append', inode: f.inode, content: c.content, at: c.append.at, size: c.append.size, time }
      : { type: 'write', inode: f.inode, content: c.content, size: c.size, time }
    if (f.createdEmpty) body.first = true
    return [body]
  }

  /**
   * When foldPlan finds chunks worth it (past FOLD_EXTENTS or FOLD_BYTES of extents read as
   * pieces), fold the settled extents there (a partial fold), or in every chunk not too sparse
   * (FOLD_QUIET_AMPLIFICATION) when `quiet` (the file had no new extent from here for
   * FOLD_QUIET_MS): a `fold` op, in the background: it
   * changes no bytes, so a fold that fails or that the tree finds stale costs only its work.
   * Below the bounds, a fold is due once the file is quiet; extents a fold leaves unsettled are
   * looked at again once they settle.
   */
  private foldIfDue (inode: InodeId, quiet = false): void {
    // the retry of a fold found moved is made at once once (a commit meanwhile asks anew)
    const now = this.foldNow.delete(inode)
    // a file with no name left (a SQLite journal, unlinked after its transaction) is read by no
    // one again: a fold of it would only rewrite and place its chunks
    if (this.closing !== undefined || this.unlinked(inode)) {
      this.foldDeferred.delete(inode)
      this.foldTallies.delete(inode)
      this.foldMoved.delete(inode)
      return
    }
    if (!quiet) {
      // a commit: the file is not quiet, its idle wait starts again when it is
      this.foldDeferred.delete(inode)
      // the plan costs every extent of the file (thousands, with 4 KiB pages scattered over
      // a large one): not made on every commit while it cannot change what happens. A fold
      // under way looks again when done (and the file that goes quiet meanwhile is folded
      // then); a fold waiting for extents to settle looks again when they have
      if (this.foldWaits.has(inode)) return
      if (this.folding.has(inode)) {
        this.foldLater(inode, FOLD_QUIET_MS)
        return
      }
    }
    const extents = this.tree.get(inode)?.extents ?? []
    if (extents.length === 0) {
      this.foldTallies.delete(inode)
      return
    }
    let tally = this.foldTallies.get(inode)
    if (tally === undefined && !quiet) this.foldTallies.set(inode, tally = new FoldTally())
    if (!quiet && !(tally as FoldTally).due(extents, this.tree.foldSpan(inode))) {
      this.foldLater(inode, FOLD_QUIET_MS)
      return
    }
    if (quiet && !this.folding.has(inode) && !now) {
      // a quiet file's fold waits until this host is idle (FOLD_IDLE_MS), FOLD_IDLE_WAIT_MAX_MS at
      // most; not the retry of a fold found moved: the op it waited for made the host busy
      const at = performance.now()
      const since = this.foldDeferred.get(inode) ?? at
      const busy = this.busyAt + this.foldIdleMs - at
      if (busy > 0 && at - since < FOLD_IDLE_WAIT_MAX_MS) {
        this.foldDeferred.set(inode, since)
        this.foldLater(inode, busy, true)
        return
      }
      this.foldDeferred.delete(inode)
    }
    if (this.folding.has(inode)) {
      // asked while a fold runs (a timer's quiet ask: a commit meanwhile sets a timer instead, above):
      // that fold was planned from the extents before this ask, so the ask is kept and made once it ends
      this.foldAgain.set(inode, quiet || this.foldAgain.get(inode) === true)
      return
    }
    // folds found moved under them back off (each one read, built and placed its chunks for nothing)
    const moved = this.foldMoved.get(inode)
    if (moved !== undefined && moved.at > performance.now()) {
      this.foldLater(inode, moved.at - performance.now(), quiet)
      return
    }
    this.folding.set(inode, this.fold(inode, quiet).then(async left => {
      if (left === 'moved') {
        const n = (this.foldMoved.get(inode)?.n ?? 0) + 1
        if (n === 1) {
          // the first miss is made again as soon as this host's own ops on the file have landed
          // (one of them stamped, not applied yet, at each of the fold's FOLD_STAMP_TRIES, or the
          // fold point moved: a slow disk's fold outlasts the writes between): FOLD_SETTLE_MS later, a file written on meanwhile has that long of
          // extents too young to fold, and every later fold leaves them (fold42). Still the
          // fold's work (a commit meanwhile waits for it to end); found moved again, it backs off
          this.foldMoved.set(inode, { n, at: performance.now() })
          try {
            await raceSignal(this.tree.landedFor(inode), this.foldStop.signal)
          } catch {
            // the Volume closes: no fold is made after it (close() waits for this one)
            return
          }
          // a fold asked for meanwhile (a timer's, quiet: a commit meanwhile set a timer instead)
          // is this one, quiet if either was; not put off for idleness (the op it waited for
          // made the host busy)
          const again = quiet || this.foldAgain.get(inode) === true
          this.foldAgain.delete(inode)
          this.foldNow.add(inode)
          this.foldLater(inode, 0, again)
          return
        }
        const ms = Math.min(FOLD_MOVED_MAX_MS, FOLD_SETTLE_MS * 2 ** (n - 2))
        this.foldMoved.set(inode, { n, at: performance.now() + ms })
        this.foldLater(inode, ms, true)
        return
      }
      this.foldMoved.delete(inode)
      // a whole fold's unsettled extents are folded once they settle; a partial fold's chunks
      // left are looked at again then (they may be dense by now), and folded when the file is quiet
      if (left === 'settle') this.foldLater(inode, FOLD_SETTLE_MS, true)
      else if (left === 'dense') this.foldLater(inode, FOLD_SETTLE_MS, false)
      else if (left === 'quiet') this.foldLater(inode, FOLD_QUIET_MS, true)
      else if (left === 'more') this.foldLater(inode, this.foldIdleMs, true)
      else if (left === 'sparse') return
      else if ((this.tree.get(inode)?.extents?.length ?? 0) > 0 && !this.foldTimers.has(inode) && !this.foldStop.signal.aborted) {
        // extents left though the fold held all it saw: its op was found stale (the tree
        // ignored it), or new ones came meanwhile: tried again once the file is quiet
        this.foldLater(inode, FOLD_QUIET_MS, true)
      }
    }, (err: Error) => {
      // tried again once the file is quiet: extents are never left unfolded for good
      log('inode %s: fold not made: %s', inode, err.message)
      if (!this.foldStop.signal.aborted) this.foldLater(inode, FOLD_QUIET_MS, true)
    }).finally(() => {
      this.folding.delete(inode)
      // the fold changed the extents (tallied anew at the next commit): none kept meanwhile
      this.foldTallies.delete(inode)
      const again = this.foldAgain.get(inode)
      this.foldAgain.delete(inode)
      if (again !== undefined) this.foldIfDue(inode, again)
    }))
  }

  /** A fold of `inode` in `ms` (the one due before is put off: a file written again is not quiet); `quiet`: of every chunk. */
  private foldLater (inode: InodeId, ms: number, quiet = true): void {
    // a Volume closed (close() cleared the timers): none is set again, by a fold ending after it
    if (this.foldStop.signal.aborted) return
    clearTimeout(this.foldTimers.get(inode))
    if (quiet) this.foldWaits.delete(inode)
    else this.foldWaits.add(inode)
    const timer = setTimeout(() => {
      this.foldTimers.delete(inode)
      this.foldWaits.delete(inode)
      this.foldIfDue(inode, quiet)
    }, ms)
    timer.unref()
    this.foldTimers.set(inode, timer)
  }

  /**
   * Fold the file's settled extents into the chunks foldPlan picks (every chunk they touch, or
   * a partial fold; `quiet`: under FOLD_QUIET_AMPLIFICATION). What is left to fold: nothing,
   * extents not settled yet ('settle': a quiet or whole fold, 'dense': dense chunks to look at
   * again), chunks a partial fold left ('quiet'), chunks a quiet fold left as too sparse
   * ('sparse': folded when later writes make them dense), or past its batch ('more', FOLD_QUIET_BATCH).
   */
  private async fold (inode: InodeId, quiet: boolean): Promise<'none' | 'settle' | 'dense' | 'quiet' | 'sparse' | 'more' | 'moved'> {
    const fp = this.tree.foldPoint(inode)
    if (fp === undefined) return 'none'
    const settled = Date.now() - FOLD_SETTLE_MS
    let j = 0
    while (j < fp.extents.length && fp.extents[j].hlc[0] <= settled) j++
    // the extents it holds: the first c (at least every one the content holds somewhere)
    const c = Math.max(fp.top, j > 0 ? fp.numbers[j - 1] : 0)
    if (c <= fp.covered) return fp.extents.length > 0 ? (quiet ? 'settle' : 'dense') : 'none'
    while (j < fp.extents.length && fp.numbers[j] <= c) j++
    const unsettled = j < fp.extents.length
    const pieces = fp.extents.slice(0, j)
    // the file's size once the folded extents landed (positioned ones may land inside it)
    const size = fp.sizes[c - fp.covered - 1]
    // past FOLD_SPAN_MAX extents since `covered`, the older half's pieces are folded wherever they are
    const span = fp.sizes.length
    let old = 0
    if (span > FOLD_SPAN_MAX) while (old < pieces.length && fp.numbers[old] <= fp.covered + (span >> 1)) old++
    const plan = foldPlan(pieces, old, quiet, quiet ? FOLD_QUIET_BATCH : Infinity)
    // a quiet fold's batch: chunks worth it left past it are folded next, once the host is idle
    const more = quiet && !plan.all && plan.chunks.length === FOLD_QUIET_BATCH && foldPlan(pieces, old, true).chunks.length > FOLD_QUIET_BATCH
    // a quiet file's fold leaves the sparse chunks' pieces (FOLD_QUIET_AMPLIFICATION) until
    // later writes make them dense: no timer asks again ('sparse'), only unsettled extents
    if (!plan.all && plan.chunks.length === 0) return unsettled ? (quiet ? 'settle' : 'dense') : (quiet ? 'sparse' : 'quiet')
    let held = pieces
    let ranges: number[] | undefined
    if (!plan.all) {
      // the chosen chunks as byte ranges, neighbours merged; the pieces cut to them
      ranges = []
      for (const i of plan.chunks) {
        const from = i * CHUNK_SIZE
        const to = Math.min(size, from + CHUNK_SIZE)
        if (from >= to) continue
        if (ranges.length > 0 && ranges[ranges.length - 1] === from) ranges[ranges.length - 1] = to
        else ranges.push(from, to)
      }
      if (ranges.length === 0) return unsettled ? 'dense' : 'quiet'
      held = clip(pieces, ranges)
    }
    const f = new OpenFile(inode, { content: fp.content, size, extents: held }, this.chunks, () => this.tree.path(this.tree.entries(inode)[0]?.id ?? '') ?? inode)
    f.changed = true
    // the rewrite stops when the file loses its last name (no one reads it again) or the volume closes
    const stop = new AbortController()
    this.foldAborts.set(inode, stop)
    const signal = AbortSignal.any([this.foldStop.signal, stop.signal])
    let prepared: Committed | undefined
    try {
      if (this.unlinked(inode)) return 'none'
      prepared = await f.prepare({ signal })
      if (prepared === undefined) return 'none'
      // placed before its op is committed, not tracked for fsync: a fold changes no bytes, so no
      // fsync has to wait for its chunks (with FOLD_EXTENTS small random writes, every few fsyncs
      // of a database file made one, and each then waited for a dozen rewritten chunks to reach
      // their peers); and its op names no chunk before its placement was tried (a chunk left
      // pending, e.g. offline, is retried as any other)
      await this.chunks.place(prepared.refs, { inode, signal })
    } catch (err) {
      // what it stored is referenced by nothing: GC's
      if (signal.aborted) return 'none'
      throw err
    } finally {
      this.foldAborts.delete(inode)
    }
    if (signal.aborted) return 'none'
    const body: OpBody = { type: 'fold', inode, base: fp.base, covers: c, content: prepared.content, size: prepared.size, time: nowNs() }
    if (ranges !== undefined) {
      body.ranges = ranges
      if (fp.over !== undefined) body.over = fp.over
    }
    // stamped only while the file reads as it did at the fold point: the op counts as seen every
    // op applied by its stamp, so a peer's append received while the content was built, sorting
    // among the extents it holds (older than they: its author's log sync or the network slow),
    // would be taken as held by a content that lacks it, and lost under it (append35). A fold
    // found moved stamps nothing: its blocks are GC's, and it is made again later (backing off:
    // foldIfDue). An op of this host on the file stamped and not yet applied stops it too: the
    // fold's parents would count it as seen (write36); but while the fold point holds (an extent
    // past the held ones leaves it), the fold built waits for those ops to land and tries again,
    // FOLD_STAMP_TRIES times at most
    for (let tries = 1; ; tries++) {
      try {
        await this.stamp([body], 'written', { guard: () => !this.tree.unapplied(inode) && sameFoldPoint(this.tree.foldPoint(inode), fp, c) })
        break
      } catch (err) {
        if (!(err instanceof GuardError)) throw err
      }
      if (tries >= FOLD_STAMP_TRIES || !sameFoldPoint(this.tree.foldPoint(inode), fp, c)) {
        log('inode %s: the file changed while its fold was built; folded again later', inode)
        return 'moved'
      }
      try {
        await raceSignal(this.tree.landedFor(inode), signal)
      } catch {
        // the Volume closes
        return 'none'
      }
      // a file with no name left is read by no one again (its fold's abort is over: foldAborts)
      if (this.unlinked(inode)) return 'none'
    }
    // its blocks were put in the recent set when stored, before a placement that may have
    // outlasted the set's age: a give-up here of the same bytes spares them from the op on (review32h)
    this.chunks.recent.add(prepared.refs.flatMap(r => r.fragments))
    if (more) return 'more'
    if (ranges !== undefined) return unsettled ? (quiet ? 'settle' : 'dense') : (quiet ? 'sparse' : 'quiet')
    return unsettled ? 'settle' : 'none'
  }

  /**
   * A committed version's chunks are placed; fsync waits (through track()) until each survives
   * one lost host (DESIGN.md §5: `safe`, two copies of a block or k fragments left whichever
   * host goes), not for every copy: the rest go on in the background, the chunk pending (and
   * retried) until every target holds its part.
   */
  private placeCommitted (f: OpenFile, c: Committed): void {
    this.track(f.inode, Promise.all([this.chunks.place(c.refs, { inode: f.inode, safe: true }), c.placing]).then(() => {}))
  }

  /** Remember a placement in flight for an inode (fsync waits for every one of them). */
  private track (inode: InodeId, placing: Promise<void>): void {
    let set = this.placing.get(inode)
    if (set === undefined) this.placing.set(inode, set = new Set())
    const entry = {
      at: performance.now(),
      // the network logs each chunk whose placement fails (it stays pending, retried); this is anything else
      done: placing.catch((err: Error) => { log.error('inode %s: placement failed: %s', inode, err.message) }).then(() => {
        set.delete(entry)
        if (set.size === 0 && this.placing.get(inode) === set) this.placing.delete(inode)
      })
    }
    set.add(entry)
  }

  /**
   * Wait until the placements of an inode's committed versions are done, each at most until
   * SYNC_PLACE_WAIT_MS after it began: the bytes are durable here already, and placement goes on
   * after. The bound runs from the placement's start, not the fsync's: a placement already waited
   * out (a 1 GiB rewrite still spreading) does not hold every later fsync another 20 s, only
   * the placements that are its own.
   */
  private async placed (inode: InodeId): Promise<void> {
    const set = this.placing.get(inode)
    if (set === undefined) return
    const now = performance.now()
    await Promise.all([...set].map(async e => {
      const left = e.at + this.syncPlaceWaitMs - now
      if (left > 0) await settledWithin(e.done, left)
    }))
  }

  /**
   * An open file is dropped at its last close; unlinked, with whatever it held uncommitted.
   * `abandoned`: its last close gave its writes up (no space, ...).
   */
  private release (f: OpenFile, abandoned = false): void {
    if (f.handles === 0 && (!f.changed || this.unlinked(f.inode))) {
      this.open_.delete(f.inode)
      f.stopReadahead()
      const hadClean = this.heldClean.has(f.inode)
      // (times set before the writes given up, the rest of the held change committed already by
      // the hold's timer, a chmod: committed alone, review34a)
      // (stamped at the time those times were set, not now: a peer's utimes since must win)
      const clean = this.heldClean.get(f.inode)
      const held = this.heldAttrs.get(f.inode) ?? (abandoned && clean !== undefined ? { type: 'setattr', inode: f.inode, time: clean.time } : undefined)
      if (held === undefined) {
        this.heldClean.delete(f.inode)
        return
      }
      // times held with writes given up would stamp the old bytes as new (`cp -pu` would skip
      // the file): dropped, but the ones set before those writes, which describe the version
      // that stays; its mode and owner changes are committed within HELD_ATTRS_MS
      if (abandoned && (hasTimes(held) || hadClean)) {
        const { atime, mtime, ...rest } = held
        const left = this.cleanTimes(rest, f.inode)
        if (droppedTimes(held, left)) log.error('inode %s: times set on a file with or after its writes that were given up dropped', f.inode)
        if (left.mode === undefined && left.uid === undefined && left.gid === undefined && !hasTimes(left)) {
          this.heldAttrs.delete(f.inode)
          this.heldSame.delete(f.inode)
          return
        }
        this.heldAttrs.set(f.inode, left)
      }
      this.heldClean.delete(f.inode)
      this.holdTimer()
    }
  }

  /** The file has no name left: unlinked (or renamed over) on this host or by an op from a peer. */
  private unlinked (id: InodeId): boolean {
    return (this.tree.get(id)?.nlink ?? 0) === 0
  }

  async open (path: string, flags: OpenFlags = 'r', mode = 0o644, caller: Caller = ROOT, options: AbortOptions = {}): Promise<FileHandle> {
    options.signal?.throwIfAborted()
    const fl = parseFlags(flags)
    let r: Resolved | undefined
    try {
      r = this.walk(path, true, 'open')
    } catch (err: any) {
      if (err.code !== 'ENOENT' || !fl.create) throw err
    }
    if (r !== undefined && fl.create && fl.exclusive) throw new FsError('EEXIST', 'open', path)
    let created: InodeId | undefined
    if (r === undefined) {
      created = await this.create(path, 'file', mode, caller, {}, 'open', options.signal)
      r = { inode: this.tree.get(created)!, path }
    }
    const inode = r.inode
    if (inode.kind === 'dir' && fl.write) throw new FsError('EISDIR', 'open', path)
    const file = inode.kind === 'file' ? this.openFile(inode, path) : undefined
    // what this open writes before its first commit is the content of the file it created
    if (file !== undefined && created !== undefined && file.inode === created && !file.changed) file.createdEmpty = true
    if (file !== undefined) file.handles++
    // O_TRUNC cuts the file whatever the access mode, O_RDONLY too, as Linux's own file systems
    // do (the kernel asked for write permission before passing the flag on)
    if (fl.truncate && file !== undefined && file.size > 0) {
      try {
        await file.truncate(0, options)
      } catch (err) {
        // no handle is made: its count goes, else the open file (an unlinked one's bytes with
        // it) would never be let go. What the truncate did stays with the open file for the
        // next flush, close or fsync, as a close's uncommitted writes do
        file.handles--
        this.release(file)
        throw err
      }
    }
    const vol = this
    const current = (): Inode => vol.tree.get(inode.id) ?? inode
    let closed = false
    // this handle, as the writer of its appends (OpenFile `tail`): a flush or close of another
    // handle keeps back this one's last appends, which may be the first part of a write(2) whose
    // rest has not come (append37)
    const writer = {}
    const check = (syscall: string, write: boolean): OpenFile => {
      if (closed) throw new FsError('EBADF', syscall, path)
      if (file === undefined) throw new FsError(inode.kind === 'dir' ? 'EISDIR' : 'EINVAL', syscall, path)
      if (write && !fl.write) throw new FsError('EBADF', syscall, path, 'not open for writing')
      if (!write && !fl.read) throw new FsError('EBADF', syscall, path, 'not open for reading')
      return file
    }
    return {
      path,
      ino: inode.ino,
      async read (buffer, offset, length, position, options = {}) {
        const f = check('read', false)
        // never more than the buffer holds: the length alone sizes no allocation
        if (offset < 0 || offset > buffer.byteLength || length < 0 || position < 0) throw new FsError('EINVAL', 'read', path)
        // copied into the caller's buffer at once: the bytes may be borrowed
        const bytes = await f.read(position, Math.min(length, buffer.byteLength - offset), { ...options, borrow: true })
        buffer.set(bytes, offset)
        return { bytesRead: bytes.byteLength }
      },
      async readBytes (position, length, options = {}) {
        const f = check('read', false)
        if (length < 0 || position < 0) throw new FsError('EINVAL', 'read', path)
        return await f.read(position, length, options)
      },
      async write (buffer, offset, length, position, options = {}) {
        const f = check('write', true)
        // copy now (the caller may reuse its buffer), unless it hands the buffer over: OpenFile
        // keeps the bytes it is given (whole chunks, patches) without a copy of its own
        // (Uint8Array's slice: a Buffer's own slice() is a view of its memory, not a copy)
        const data = options.handOver === true ? buffer.subarray(offset, offset + length) : Uint8Array.prototype.slice.call(buffer, offset, offset + length)
        // O_APPEND (the handle's, or this write's: options.append): at the end of file when this
        // write's turn comes, whatever `position` says;
        // as POSIX: a write that starts at the limit fails, one that would cross it is cut short
        const { bytesWritten } = await f.write(data, (options.append ?? fl.append) ? 'end' : position, { signal: options.signal, maxEnd: FILE_SIZE_MAX, deadlineMs: options.deadlineMs, by: writer, owner: options.owner, ends: options.ends })
        return { bytesWritten }
      },
      async truncate (len = 0, options = {}) {
        if (len < 0 || !Number.isSafeInteger(len)) throw new FsError('EINVAL', 'ftruncate', path)
        if (len > FILE_SIZE_MAX) throw new FsError('EFBIG', 'ftruncate', path)
        await check('ftruncate', true).truncate(len, options)
      },
      async allocate (mode, offset, length, options = {}) {
        if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) throw new FsError('EINVAL', 'fallocate', path)
        if ((mode & ~FALLOC_KNOWN) !== 0) throw new FsError('ENOTSUP', 'fallocate', path, `mode 0x${mode.toString(16)}`)
        const keepSize = (mode & FALLOC_KEEP_SIZE) !== 0
        const punch = (mode & FALLOC_PUNCH_HOLE) !== 0
        const zero = (mode & FALLOC_ZERO_RANGE) !== 0
        if ((punch && !keepSize) || (punch && zero)) throw new FsError('ENOTSUP', 'fallocate', path, 'PUNCH_HOLE goes with KEEP_SIZE alone')
        if (offset + length > FILE_SIZE_MAX) throw new FsError('EFBIG', 'fallocate', path)
        const f = check('fallocate', true)
        if (!punch && !zero) {
          // room for the bytes past the end of file (darkfs reserves nothing: it checks)
          const past = offset + length - Math.max(offset, f.size)
          if (past > 0) {
            const fs = await vol.statfs(options)
            if (past > fs.bavail * fs.bsize) throw new FsError('ENOSPC', 'fallocate', path, `${past} bytes past the end of file, ${fs.bavail * fs.bsize} free`)
          }
        }
        await f.allocate(offset, length, { signal: options.signal, keepSize, zero: punch || zero })
      },
      // the inode's attributes, also once its last name is gone (fstat, fchmod... on an open
      // unlinked file): by inode, never by path
      async stat (options = {}) {
        options.signal?.throwIfAborted()
        return vol.toStats(current())
      },
      async chmod (mode, options = {}) {
        options.signal?.throwIfAborted()
        await vol.chmodOf(current(), mode)
      },
      async chown (uid, gid, options = {}) {
        options.signal?.throwIfAborted()
        await vol.setOwner(current(), uid, gid)
      },
      async utimes (atime, mtime, options = {}) {
        options.signal?.throwIfAborted()
        await vol.setTimes(current(), atime, mtime, options)
      },
      async getxattr (name, options = {}) {
        options.signal?.throwIfAborted()
        return vol.getxattrOf(current(), name, path)
      },
      async setxattr (name, value, flags = {}) {
        flags.signal?.throwIfAborted()
        await vol.setxattrOf(current(), name, value, flags, path)
      },
      async listxattr (options = {}) {
        options.signal?.throwIfAborted()
        return listxattrOf(current())
      },
      async removexattr (name, options = {}) {
        options.signal?.throwIfAborted()
        await vol.removexattrOf(current(), name, path)
      },
      async sync (options = {}) {
        if (file !== undefined) await vol.commitFile(file, 'safe', options)
        // the file's create and attribute changes too, when no write of its own synced them
        await raceSignal(vol.tree.sync(), options.signal)
      },
      async flush (options = {}) {
        // a file emptied and not written yet (an open with O_TRUNC, then a close of a duplicate of
        // its fd, as a shell's `>` does before it writes) is no version of its own: the bytes
        // written next, or the last close if none come, commit it. This host's readers see it
        // emptied at once (they read the open file); other hosts see the old version until then.
        // A commit syncs the log, and with it the file's create and every change before it; a
        // flush with nothing to commit syncs nothing (a shell's `>` flushes the new file once
        // before it writes: its create is synced by the flush after the write)
        // Mode and owner changes held for the file go with a version it commits, else with the
        // close: a FUSE flush is what close(2) waits for, a release is not (tar's fchown and
        // fchmod before each close: no log write of their own inside its close(2))
        // Appends another open handle made since this one's last write stay pending (its write(2)
        // may have come in part: one line would be two ops, a peer's append between them); its own
        // flush or close, the last close or an fsync commits them (OpenFile.commit `by`)
        // (and another lock owner's through this handle: a forked child's close, `owner`)
        if (file !== undefined && !file.emptiedOnly()) await vol.commitFile(file, 'none', options, false, { by: writer, owner: options.owner })
      },
      async close (options = {}) {
        if (closed) return
        // the handle is closed even when the signal has aborted: its pending writes stay with
        // the open file and are committed by the next flush, close or fsync of the inode
        closed = true
        if (file === undefined) return
        file.handles--
        // this handle's appends are whole now: any commit takes them
        file.letGo(writer)
        let abandoned = false
        try {
          await vol.commitFile(file, 'none', options, true, { by: writer })
        } catch (err: any) {
          // a release's error never reaches the app (close(2) returned at flush): said here
          log.error('inode %s: a close could not commit its writes (%d handles left): %s', file.inode, file.handles, err?.message)
          // the last close could not commit (no space, ...): its writes are given up, and the
          // chunks stored for them go here and on peers (a close whose caller gave up leaves
          // them to the next flush, close or fsync of the inode)
          if (file.handles === 0 && options.signal?.aborted !== true) {
            await file.abandon()
            abandoned = true
          }
          throw err
        } finally {
          vol.release(file, abandoned)
        }
      }
    }
  }

  /** A file's bytes; with an encoding (`'utf8'` or `{ encoding }`), a string (as node:fs/promises). */
  async readFile (path: string, options?: AbortOptions & { encoding?: null }): Promise<Uint8Array>
  async readFile (path: string, options: BufferEncoding | (AbortOptions & { encoding: BufferEncoding })): Promise<string>
  async readFile (path: string, options: BufferEncoding | (AbortOptions & { encoding?: BufferEncoding | null }) = {}): Promise<Uint8Array | string> {
    const o = typeof options === 'string' ? { encoding: options } : options
    const bytes = await this.readBytes(path, o)
    return o.encoding != null ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(o.encoding) : bytes
  }

  private async readBytes (path: string, options: AbortOptions): Promise<Uint8Array> {
    options.signal?.throwIfAborted()
    const { inode } = this.walk(path, true, 'readFile')
    if (inode.kind === 'dir') throw new FsError('EISDIR', 'read', path)
    const open = this.open_.get(inode.id)
    if (open !== undefined && open.size > READ_WHOLE_MAX) throw new FsError('EFBIG', 'readFile', path, `a file of ${open.size} bytes is not read whole into memory; read it in pieces`)
    if (open !== undefined) return await open.read(0, open.size, options)
    return await this.readState(stateOf(inode), path, options)
  }

  /** The bytes of a file state: its base content, then its extents (appends, positioned writes) over it. */
  private async readState (state: FileState, path: string, options: AbortOptions): Promise<Uint8Array> {
    const extents = state.extents ?? []
    if (extents.length === 0) return await this.readContent(state.content, state.size, path, options)
    if (state.size > READ_WHOLE_MAX) throw new FsError('EFBIG', 'read', path, `a file of ${state.size} bytes is not read whole into memory; read it in pieces`)
    const out = new Uint8Array(state.size)
    // the content up to where the first extent landed, then each byte from the newest extent over it
    const at = extents[0].before
    out.set((await this.readContent(state.content, at, path, options)).subarray(0, at))
    for (const { from, to, ext } of new ExtentMap(extents).within(0, state.size)) {
      out.set((await this.extentBytes(ext, path, options)).subarray(from - ext.pos, to - ext.pos), from)
    }
    return out
  }

  /** The bytes one append added. */
  private async extentBytes (x: Extent, path: string, options: AbortOptions): Promise<Uint8Array> {
    if ('inline' in x.content) return x.content.inline.subarray(x.at, x.at + x.size)
    const manifest = await this.chunks.readManifest(x.content.manifest, { path, signal: options.signal })
    const out = new Uint8Array(x.size)
    for (const ref of manifest.chunks) {
      if (ref.cid === null || ref.offset + ref.size <= x.at || ref.offset >= x.at + x.size) continue
      const bytes = await this.chunks.readChunk(ref, { path, signal: options.signal })
      const lo = Math.max(x.at, ref.offset)
      const hi = Math.min(x.at + x.size, ref.offset + bytes.byteLength)
      if (hi > lo) out.set(bytes.subarray(lo - ref.offset, hi - ref.offset), lo - x.at)
    }
    return out
  }

  /**
   * The file at `path` as it is now, to read whole (the control socket's GET: `darkfs cat` and
   * `get`): its size, and its bytes by range. Its committed version is pinned: a version
   * committed meanwhile, here or by a peer, changes neither, so the bytes are one version whole,
   * never the start of one and the rest of the next, nor one cut or padded to the other's size.
   * A file open here with writes not yet committed reads as its handles see it (those bytes are
   * no version yet), up to the size it had at this call.
   */
  async reader (path: string, options: AbortOptions = {}): Promise<{ size: number, read: (position: number, length: number, options?: AbortOptions) => Promise<Uint8Array> }> {
    options.signal?.throwIfAborted()
    const { inode } = this.walk(path, true, 'read')
    if (inode.kind === 'dir') throw new FsError('EISDIR', 'read', path)
    if (inode.kind !== 'file') throw new FsError('EINVAL', 'read', path, `not a regular file (${inode.kind})`)
    const open = this.open_.get(inode.id)
    if (open?.changed === true) {
      const size = open.size
      return { size, read: async (position, length, o = {}) => await open.read(position, Math.max(0, Math.min(length, size - position)), o) }
    }
    // an open file of its own, in no one's reach: nothing writes it or rebases it
    const version = new OpenFile(inode.id, stateOf(inode), this.chunks, () => path)
    return { size: inode.size, read: async (position, length, o = {}) => await version.read(position, length, o) }
  }

  /** The bytes of a committed version (also an old one from history). */
  async readContent (content: Content | null, size: number, path: string, options: AbortOptions = {}): Promise<Uint8Array> {
    options.signal?.throwIfAborted()
    if (content === null && size > READ_WHOLE_MAX) throw new FsError('EFBIG', 'read', path, `a file of ${size} bytes is not read whole into memory; read it in pieces`)
    if (content === null) return new Uint8Array(size)
    if ('inline' in content) return content.inline
    if (size > READ_WHOLE_MAX) throw new FsError('EFBIG', 'read', path, `a file of ${size} bytes is not read whole into memory; read it in pieces`)
    const manifest = await this.chunks.readManifest(content.manifest, { path, signal: options.signal })
    if (manifest.size > READ_WHOLE_MAX) throw new FsError('EFBIG', 'read', path, `a file of ${manifest.size} bytes is not read whole into memory; read it in pieces`)
    const out = new Uint8Array(manifest.size)
    for (let i = 0; i < manifest.chunks.length; i++) {
      const ref = manifest.chunks[i]
      if (ref.cid === null) continue // a hole: zeros, already there
      // this chunk asked for first, then the ones ahead (cread44: asked after them, it was the
      // last fetch to start); the prefetch is the host's: it outlives this call and stops only at
      // its own bound
      const own = this.chunks.readChunk(ref, { path, signal: options.signal })
      this.chunks.prefetch(manifest.chunks, i + 1, { path })
      out.set(await own, ref.offset)
    }
    return out
  }

  async writeFile (path: string, data: Uint8Array | string, opts: { mode?: number, caller?: Caller } & AbortOptions = {}): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
    await this.replaceFile(path, [bytes], opts)
  }

  /**
   * Write a whole file atomically from a stream of pieces: the bytes are stored first, then one
   * op (`create` with content for a new path, `write` for an existing file) makes them visible.
   * Interrupted at any point before that op (error, abort, crash), the path keeps its old state:
   * never a torn file. The chunks are placed on peers as they are stored, at most a window of
   * bytes ahead (ChunkWrite, PLACE_WINDOW_BYTES: backpressure on the pieces), and a write given
   * up before its op deletes the blocks it left here and on peers at once (ChunkWrite.abandon).
   * `onProgress`: bytes stored and placed so far, after each chunk is stored and placed.
   */
  async replaceFile (path: string, pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: { mode?: number, caller?: Caller, wait?: 'none' | 'safe', onProgress?: (p: WriteProgress) => void } & AbortOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted()
    const signal = opts.signal
    const { dir, existing } = this.parentOf(path, 'writeFile')
    let target = existing !== undefined ? this.tree.get(existing.inode) : undefined
    if (target?.kind === 'symlink') target = this.walk(path, true, 'writeFile').inode
    if (target?.kind === 'dir') throw new FsError('EISDIR', 'writeFile', path)
    // pinning hosts of the file (a new file: of the directory it goes in) get its chunks too
    const write = this.chunks.write({ inode: target?.id ?? dir.id, onProgress: opts.onProgress })
    let inode = target?.id
    try {
      // one chunk in memory at a time: each full one is stored and its placement started
      let pos = 0
      let buf = new Uint8Array(CHUNK_SIZE)
      let fill = 0
      const refs: ChunkRef[] = []
      for await (const piece of pieces) {
        if (pos + piece.byteLength > FILE_SIZE_MAX) throw new FsError('EFBIG', 'writeFile', path)
        signal?.throwIfAborted()
        let at = 0
        while (at < piece.byteLength) {
          const n = Math.min(CHUNK_SIZE - fill, piece.byteLength - at)
          buf.set(piece.subarray(at, at + n), fill)
          fill += n
          at += n
          if (fill === CHUNK_SIZE) {
            refs.push(await write.chunk(buf, pos + at - CHUNK_SIZE, { signal }))
            buf = new Uint8Array(CHUNK_SIZE)
            fill = 0
          }
        }
        pos += piece.byteLength
      }
      let content: Content | null = null
      if (pos > 0 && pos <= INLINE_MAX) {
        content = { inline: buf.slice(0, fill) }
      } else if (pos > 0) {
        if (fill > 0) refs.push(await write.chunk(buf.subarray(0, fill), pos - fill, { signal }))
        const manifest = manifestOf(pos, refs)
        const stored = await write.manifest(manifest, { signal })
        content = { manifest: stored.cid, sum: contentSum(manifest) }
      }
      // the last point of return: past it the new version is committed
      signal?.throwIfAborted()
      const now = nowNs()
      if (target !== undefined) {
        if (target.kind !== 'file') throw new FsError('EINVAL', 'writeFile', path, `not a regular file (${target.kind})`)
        const open = this.open_.get(target.id)
        // a whole file written (writeFile, `darkfs put`): durable when it returns, as a close is
        await this.stamp([{ type: 'write', inode: target.id, content, size: pos, time: now }], 'durable')
        const state = this.tree.get(target.id)
        if (state !== undefined) open?.rebase(this.fileState(state))
      } else {
        const caller = opts.caller ?? ROOT
        const own = this.owner(dir, caller, 'file', opts.mode ?? 0o644)
        const body: OpBody = { type: 'create', parent: dir.id, name: split(path, 'writeFile').pop()!, kind: 'file', mode: own.mode, uid: own.uid, gid: own.gid, size: pos, time: now }
        if (content !== null) body.content = content
        inode = (await this.stamp([body], 'durable'))[0].id
      }
    } catch (err) {
      // not committed: what this write stored goes again, here and on peers
      await write.abandon()
      throw err
    }
    write.committed()
    const placing = write.placed({ inode })
    if (inode !== undefined) this.track(inode, placing)
    placing.catch(() => {}) // ignored here: track() logs a failed placement, and a 'safe' wait below rethrows it
    // an abort ends the wait for peers; the placement is the host's and goes on
    if (opts.wait === 'safe') await raceSignal(placing, signal)
  }

  async truncate (path: string, len = 0, options: AbortOptions = {}): Promise<void> {
    const fh = await this.open(path, 'r+', undefined, undefined, options)
    // the close is not bound to the signal: a truncate that happened is committed
    try { await fh.truncate(len, options) } finally { await fh.close() }
  }

  /** Every version of a file, oldest first: time, author, size (for `darkfs log`). */
  async log (path: string, options: AbortOptions = {}): Promise<Array<{ version: string, author: string, time: bigint, size: number }>> {
    options.signal?.throwIfAborted()
    const { inode } = this.walk(path, true, 'log')
    if (inode.kind !== 'file') throw new FsError('EINVAL', 'log', path, 'not a regular file')
    return this.tree.history(inode.id).map(v => ({ version: v.op.toString(), author: v.author, time: v.time, size: v.size }))
  }

  /** The bytes of one version of a file from its history (`darkfs cat PATH@VERSION`). */
  async readVersion (path: string, version: string, options: AbortOptions = {}): Promise<Uint8Array> {
    options.signal?.throwIfAborted()
    const { inode } = this.walk(path, true, 'readVersion')
    const versions = this.tree.history(inode.id)
    const v = versions.find(x => x.op.toString() === version) ??
      (/^\d+$/.test(version) ? versions[Number(version) - 1] : undefined) ??
      versions.filter(x => x.op.toString().endsWith(version)).at(0)
    if (v === undefined) throw new FsError('ENOENT', 'readVersion', `${path}@${version}`, 'no such version in the file history')
    const state = this.tree.versionBytes(inode.id, v.op.toString())
    try {
      return await this.readState(state ?? { content: v.content, size: v.size }, path, options)
    } catch (err) {
      // GC keeps the blocks of every version younger than the retention period (keeper/retained.ts,
      // all a version reads); an older one's may be gone for good: say which version, and why it may be
      if (!(err instanceof BlockUnavailableError)) throw err
      const when = new Date(nsToMs(v.time)).toISOString()
      throw new FsError('EIO', 'readVersion', `${path}@${v.op.toString()}`, `the version of ${when} is not readable: ${err.message}; garbage collection removes the blocks of versions older than the retention period`)
    }
  }

  /** Conflict siblings in the tree (DESIGN.md §6). */
  conflicts (options: AbortOptions = {}): Array<{ path: string, author: string, time: bigint }> {
    options.signal?.throwIfAborted()
    return this.tree.conflicts().map(c => ({ path: c.path, author: c.author, time: c.time }))
  }

  /** The live conflict copies of the file at `path` (what resolve(path) settles), by path. */
  conflictsOf (path: string, options: AbortOptions = {}): Array<{ path: string, author: string, time: bigint }> {
    options.signal?.throwIfAborted()
    const { entry } = this.walk(path, false, 'conflicts')
    if (entry === undefined) return []
    return this.tree.conflictsOf(entry.id).map(c => ({ path: c.path, author: c.author, time: c.time }))
  }

  /**
   * Settle the conflict at `path` (`darkfs resolve`, DESIGN.md §6): its siblings (tree
   * conflictsOf) go, keeping the name holder's content or one sibling's, or all stay as plain
   * files (`both`). One `resolve` op (node/tree), after a `write` of the kept sibling's content to
   * the file at `path`; every version stays in `log(path)` (a removed sibling's join it) or in
   * the kept files' own. A path with no conflict: NotConflictedError; an unknown sibling: ENOENT;
   * a sibling's content kept when it or the file at `path` is not a file: ENOTSUP.
   * Nothing is changed when it throws.
   */
  async resolve (path: string, keep: ResolveKeep, options: AbortOptions = {}): Promise<ResolveResult> {
    options.signal?.throwIfAborted()
    const { inode, entry } = this.walk(path, false, 'resolve')
    if (entry === undefined) throw new NotConflictedError(path, 'the volume root')
    const sibs = this.tree.conflictsOf(entry.id)
    if (sibs.length === 0) {
      const self = this.tree.conflicts().find(c => c.entry === entry.id)
      const holder = self === undefined ? undefined : this.tree.entries(self.of).find(e => e.parent === entry.parent)
      const at = holder === undefined ? undefined : this.tree.path(holder.id)
      throw new NotConflictedError(path, at !== undefined ? `it is a conflict copy of ${at}: resolve ${at}` : undefined)
    }
    const bodies: OpBody[] = []
    const time = nowNs()
    if (typeof keep === 'object') {
      const dir = parentPath(this.tree.path(entry.id) ?? path)
      const want = keep.sibling.startsWith('/') ? keep.sibling : (dir === '/' ? '' : dir) + '/' + keep.sibling
      const chosen = sibs.find(c => c.path === want)
      if (chosen === undefined) throw new FsError('ENOENT', 'resolve', keep.sibling, `not a conflict copy of ${path}; its copies: ${sibs.map(c => c.path).join(', ')}`)
      const from = this.tree.get(chosen.inode)
      if (inode.kind !== 'file' || from?.kind !== 'file') throw new FsError('ENOTSUP', 'resolve', path, 'keeping a copy\'s content needs a file at the path and a file copy (keep the name holder, or both)')
      if (from.extents !== undefined) {
        // appends read after the copy's base: its bytes become one new version at the name
        const bytes = await this.readState(stateOf(from), chosen.path, options)
        await this.replaceFile(path, [bytes], options)
      } else {
        bodies.push({ type: 'write', inode: inode.id, content: from.content, size: from.size, time })
      }
    }
    const siblings = sibs.map(c => c.head === undefined ? { entry: c.entry } : { entry: c.entry, head: c.head })
    bodies.push({ type: 'resolve', inode: inode.id, keep: keep === 'both' ? 'both' : 'holder', siblings, time })
    options.signal?.throwIfAborted()
    await this.stamp(bodies, 'durable')
    const now = this.tree.get(inode.id)
    const open = this.open_.get(inode.id)
    if (bodies[0].type === 'write' && open !== undefined && now !== undefined) open.rebase(this.fileState(now))
    const result: ResolveResult = { path, removed: [], kept: [], left: [] }
    const still = new Set(this.tree.conflicts().map(c => c.entry))
    for (const c of sibs) {
      const at = this.tree.path(c.entry)
      if (at === undefined) result.removed.push(c.path)
      else if (still.has(c.entry)) result.left.push(at)
      else result.kept.push({ from: c.path, to: at })
    }
    return result
  }

  /** `df`: the space of the network (a host's Volume, see VolumeParts.capacity), else of the disk under the store. */
  async statfs (options: AbortOptions = {}): Promise<StatFs> {
    options.signal?.throwIfAborted()
    const c = await this.capacity?.(options) ?? await this.localCapacity()
    return {
      bsize: BLOCK,
      blocks: Math.floor(c.total / BLOCK),
      bfree: Math.floor(c.free / BLOCK),
      bavail: Math.floor(c.avail / BLOCK),
      files: STATFS_FILES,
      ffree: STATFS_FILES,
      namemax: 255
    }
  }

  /** A file's committed state as an open file reads it, with the tree's mark of it (FileMark). */
  private fileState (inode: Inode): FileState {
    const state = stateOf(inode)
    const mark = this.tree.fileMark(inode.id)
    // (with the tree's cut: a version built from this state is stamped at it when the file moved)
    if (mark !== undefined) state.mark = { ...mark, cut: this.tree.cut() }
    return state
  }

  private async localCapacity (): Promise<Capacity> {
    const disk = await this.store?.disk()
    return { total: disk?.capacity ?? 0, free: disk?.free ?? 0, avail: disk?.free ?? 0 }
  }
}

/** A file's committed state as an open file reads it. */
function stateOf (inode: Inode): FileState {
  const state: FileState = { content: inode.content, size: inode.size }
  if (inode.extents !== undefined) state.extents = inode.extents
  return state
}

function listxattrOf (inode: Inode): string[] {
  return [...inode.xattrs.keys()].filter(n => !isPinXattr(n)).sort()
}

function parentPath (path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

function toNs (t: TimeArg, now: bigint): bigint | undefined {
  if (t === 'omit') return undefined
  if (t === 'now') return now
  if (typeof t === 'bigint') return t
  if (t instanceof Date) return BigInt(t.getTime()) * 1_000_000n
  // numbers are seconds, as in node:fs utimes
  return BigInt(Math.round(t * 1e9))
}

interface Flags { read: boolean, write: boolean, create: boolean, exclusive: boolean, truncate: boolean, append: boolean }

export function parseFlags (flags: OpenFlags): Flags {
  if (typeof flags === 'string') {
    const table: Record<string, Flags> = {
      r: { read: true, write: false, create: false, exclusive: false, truncate: false, append: false },
      'r+': { read: true, write: true, create: false, exclusive: false, truncate: false, append: false },
      w: { read: false, write: true, create: true, exclusive: false, truncate: true, append: false },
      wx: { read: false, write: true, create: true, exclusive: true, truncate: true, append: false },
      'w+': { read: true, write: true, create: true, exclusive: false, truncate: true, append: false },
      'wx+': { read: true, write: true, create: true, exclusive: true, truncate: true, append: false },
      a: { read: false, write: true, create: true, exclusive: false, truncate: false, append: true },
      ax: { read: false, write: true, create: true, exclusive: true, truncate: false, append: true },
      'a+': { read: true, write: true, create: true, exclusive: false, truncate: false, append: true }
    }
    const f = table[flags]
    if (f === undefined) throw new FsError('EINVAL', 'open', undefined, `unknown open flags '${flags}'`)
    return f
  }
  const acc = flags & 3
  return {
    read: acc === constants.O_RDONLY || acc === constants.O_RDWR,
    write: acc === constants.O_WRONLY || acc === constants.O_RDWR,
    create: (flags & constants.O_CREAT) !== 0,
    exclusive: (flags & constants.O_EXCL) !== 0,
    truncate: (flags & constants.O_TRUNC) !== 0,
    append: (flags & constants.O_APPEND) !== 0
  }
}

/**
 * What a commit of an open file takes (OpenFile.commit): an fsync's and the last close's,
 * everything pending; a flush's or another close's (`by`, its handle), all but another open
 * handle's last appends; one naming no handle, all but any open handle's. An fsync commits a
 * write(2) that is there in part too: POSIX asks it for every write that returned, and the part
 * kept back cannot be told from that handle's writes before it. The commit of times held with
 * writes (`all`, commitHeld) takes them all as well: kept back, the times would stay held as
 * long as the writer keeps its file open, and the timer fire again and again for them.
 */
function commitFor (f: OpenFile, wait: 'none' | 'safe', by: Pick<CommitFor, 'by' | 'owner'> | 'all' | undefined): CommitFor {
  if (wait === 'safe') return { sync: true, all: true }
  if (f.handles === 0 || by === 'all') return { all: true }
  return by === undefined ? {} : { by: by.by, owner: by.owner }
}
