// The tree CRDT: the materialised tree as a pure fold of the op set in total order
// (hlc, author, cid). Every mutation goes through a Journal so a late op can be slotted in by
// undoing the ops after it, applying it, and redoing them (Kleppmann et al., "A highly-available
// move operation for replicated trees"). Merge rules (DESIGN.md §6) are decided from causality
// (the Dag's vector clocks), never from arrival order:
//  - a move that would put a directory under itself is skipped; an op that needs a dead
//    directory brings it back (nothing is orphaned); rmdir of a directory that still has live
//    children is skipped;
//  - a name clash: the entry named by the later op keeps the name, the other becomes a
//    conflict sibling; concurrent mkdir of one name merges the directories, concurrent creates
//    of identical files are one file (not a create that saw the other file's creation), two links of one file under one name are one name (also
//    when one of them lost that name to a clash earlier and still has the conflict name);
//  - a rename over an entry (`replace`) unlinks the entry the user saw there, even if a
//    concurrent clash gave it a conflict name since; over another link of the same file it
//    always does (nothing is deleted), else a write it did not see keeps the file;
//  - identical content is decided by sameContent (op.ts): equal inline bytes, the same manifest,
//    or equal content sums (the same bytes stored under manifests that differ in k/m, fragments,
//    holes): never by which host wrote it or how. The merged file keeps the content of the op
//    that sorts first (the fold applies ops in total order), so every host references the same
//    manifest and the other's blocks are left to GC;
//  - a write concurrent with the current version: identical content is one version; otherwise
//    the later keeps the name and the earlier gets one conflict sibling (a new inode, marked
//    as write-made: only those are reused or retired by later branch switches, never an entry
//    that lost a name clash, which still names a user's file);
//  - a write concurrent with an unlink brings the entry back; an unlink concurrent with a write
//    is skipped; attributes and xattrs are last-writer-wins per field;
//  - appends and positioned extents: a file is its base version (the write rule above) with every
//    extent not in the causal past of that base over it, in total order (newest wins per byte;
//    an append lands at the end as it is then, a positioned one at its offset). An append never
//    conflicts: it lands after the base, concurrent ones one after another; a write that saw an
//    append holds its bytes (the append leaves the list), a write that did not gets it after its
//    own bytes. Positioned extents of several hosts merge when they write disjoint bytes (or the
//    same bytes); one made over a version a concurrent whole write replaced, or over bytes a
//    concurrent extent wrote differently, keeps its branch (the version it saw, the extents it
//    saw, itself) in one conflict sibling, whichever sorts first, and its branch's later extents
//    land there (branchOff); a write that did not see a positioned extent leaves it to that
//    sibling too. Nothing is laid over bytes its author did not see. An append,
//    like a write, beats a concurrent unlink. A fold (compaction) is read in place of the base
//    and the first `covers` appends when it matches them exactly; it changes no bytes, no head,
//    no history, so folds made anywhere never conflict. A partial fold (`ranges`) holds them only
//    over those byte ranges (the chunks worth rewriting) and the content it was made over
//    elsewhere (`over`: the fold whose content that is, none for the base's own); it is read only
//    while that content is still the one read, so of two partial folds made over the same
//    content the first in total order stands and the other is ignored. Over its ranges the
//    extents it holds are no longer read; elsewhere they still are (heldRead()). A fold covers
//    at least every extent the content already holds somewhere, so what it holds never goes back.
//    A fold a late op made stale (an extent its author did not see sorts among those it holds)
//    leaves the file read as its base and every extent since it (stale()): never is a fold a
//    later fold replaced read again, as no host keeps its blocks;
//  - a multi-extent op (an append with `more`: the ranges one fsync made durable) is read as
//    its extents made by consecutive ops of its author, in its order: each one Extent (op and
//    `part` name it), each seeing the ones before it; the op is one version of the file;
//  - a resolve (`darkfs resolve`) settles the conflict siblings it names that still show the
//    version its author saw: unlinked (their versions join the name holder's history) or kept as
//    plain files under a name of their own (keptName); see resolve() below.
import { hash } from 'node:crypto'
import { baseName, conflictName, keptName } from './conflicts.ts'
import { Journal, type Unmake } from './journal.ts'
import { compareOps, sameContent } from './op.ts'
import type { Dag, DagNode } from './dag.ts'
import type { Content, EntryId, Extent, Inode, InodeId, MoreExtent, Op, OpBody, Version } from './types.ts'
import { meeting, type ExtNode } from './tail-index.ts'

export const ROOT: InodeId = 'root'
/** Ops kept undoable; an op that sorts before all of them triggers a full replay instead. */
export const UNDO_WINDOW = 100_000
/** Longest parent chain walked when checking a move for cycles (deeper trees are refused). */
export const MAX_DEPTH = 100_000

export type { ExtNode }

/**
 * Stored inode: the Inode without nlink (derived on read) and extents (read from `tail`).
 * Files: `tail`, the appends since the base version; `covered`, how many of the oldest of them a
 * fold holds in `content`; `real`, the base version's own content while a fold stands in for it.
 * `size` is always the base version's size plus `tail.bytes` (how much its extents grew it).
 * `least`: after a fold went stale (fold(), stale()), how many extents a fold must hold at
 * least to be read.
 */
export type InodeRec = Omit<Inode, 'nlink' | 'extents'> & { tail?: ExtNode, covered?: number, held?: readonly Held[], folded?: string, real?: { content: Content | null }, least?: number, appends?: ReadonlyMap<string, AuthorNode> }

/**
 * Partial folds (issue 15 item 2): over file bytes [from, to) the read content holds the base
 * with the first `n` extents since it laid over it, n > the record's `covered` (which holds
 * everywhere else). Disjoint, sorted by offset. An InodeRec's `folded`: the fold op whose
 * content `content` is (absent: the base version's own), what a partial fold names as `over`.
 */
export interface Held { readonly from: number, readonly to: number, readonly n: number }

/**
 * Every append made to a file, by author, newest first: a write's appends to come after it are
 * the ones past its vector clock in each author's chain, a suffix of each list (found without
 * walking what it saw), even those an earlier write that lost to it had taken in.
 */
export interface AuthorNode { ext: Extent, seq: number, op: Op, prev: AuthorNode | undefined }

/** The file's size right after an extent landed. */
export function extentEnd (x: Extent): number {
  return Math.max(x.before, x.pos + x.size)
}

/** The extent `ext` landing on a file of `size` bytes: where it lands and the file's size after it. */
export function land (ext: Extent, size: number): { ext: Extent, end: number } {
  const pos = ext.offset ?? size
  const placed: Extent = { ...ext, pos, before: size }
  return { ext: placed, end: extentEnd(placed) }
}

/** The appends of a list, oldest first; with `skip`, without the oldest `skip` of them. */
export function extentsOf (tail: ExtNode | undefined, skip = 0): Extent[] {
  const out: Extent[] = []
  for (let x = tail; x !== undefined && x.n > skip; x = x.prev) out.push(x.ext)
  return out.reverse()
}

/** The highest extent number a content holds somewhere (`covered` without partial folds). */
export function heldTop (covered: number, held: readonly Held[] | undefined): number {
  let top = covered
  for (const h of held ?? []) if (h.n > top) top = h.n
  return top
}

/** Index of the first of `held` ending after `at` (held.length when none). */
function firstHeld (held: readonly Held[], at: number): number {
  let lo = 0
  let hi = held.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (held[mid].to > at) hi = mid
    else lo = mid + 1
  }
  return lo
}

/**
 * The extents read over a content (oldest first) that holds the first `covered` extents of
 * `tail`, and more over the `held` ranges: each extent without the bytes a partial fold holds
 * (cut into pieces: same op, `pos`, `at` and `size` of the piece). `size` is the file's size
 * with every extent. A piece's `before` is at least the size of the bytes the content holds,
 * so the first piece's `before` is where the content ends, as for whole extents.
 *
 * Made once per list head and fold state, and kept with the head (the array is shared: callers
 * never change it); when only extents were added since a recent node whose read is kept, from
 * that one: an fsync's few new extents then cost a piece each and a copy of the array, not a
 * walk cutting every extent of the file again (thousands, with partial folds).
 */
export function heldRead (tail: ExtNode | undefined, covered: number, held: readonly Held[] | undefined, size: number): Extent[] {
  if (tail === undefined || tail.n <= covered) return []
  const cuts = held !== undefined && held.length > 0 ? held : undefined
  const baseSize = size - tail.bytes
  const same = (m: ReadMemo): boolean => m.covered === covered && m.held === cuts && m.baseSize === baseSize
  const memo = readMemo.get(tail)
  if (memo !== undefined && same(memo)) return memo.out
  // a recent node's read: the extents since it lie past every fold (no partial fold cuts them)
  const top = heldTop(covered, cuts)
  const since: ExtNode[] = [tail]
  for (let x = tail.prev; x !== undefined && x.n >= top && since.length <= READ_CATCH_UP; x = x.prev) {
    const m = readMemo.get(x)
    if (m !== undefined && same(m)) {
      const out = m.out.slice()
      for (let i = since.length - 1; i >= 0; i--) {
        const ext = since[i].ext
        const before = Math.max(ext.before, m.heldEnd)
        out.push(before === ext.before ? ext : { ...ext, before })
      }
      // the read moves to the head: a list keeps one (an older head asked again is read anew)
      readMemo.delete(x)
      readMemo.set(tail, { covered, held: cuts, baseSize, heldEnd: m.heldEnd, out })
      return out
    }
    since.push(x)
  }
  const fresh = freshRead(tail, covered, cuts, baseSize)
  readMemo.set(tail, { covered, held: cuts, baseSize, heldEnd: fresh.heldEnd, out: fresh.out })
  return fresh.out
}

/** A heldRead() kept with the newest node of the list it read (the fold state it read with). */
interface ReadMemo { covered: number, held: readonly Held[] | undefined, baseSize: number, heldEnd: number, out: Extent[] }
const readMemo = new WeakMap<ExtNode, ReadMemo>()
/** How far back from a head heldRead() looks for a kept read to extend. */
const READ_CATCH_UP = 256

/** heldRead() walking the whole list; `heldEnd`, the least `before` of every piece. */
function freshRead (tail: ExtNode, covered: number, held: readonly Held[] | undefined, baseSize: number): { out: Extent[], heldEnd: number } {
  if (held === undefined) return { out: extentsOf(tail, covered), heldEnd: 0 }
  const top = heldTop(covered, held)
  const nodes: ExtNode[] = []
  for (let x: ExtNode | undefined = tail; x !== undefined && x.n > covered; x = x.prev) nodes.push(x)
  const topNode = nodes.find(x => x.n === top)
  const heldEnd = baseSize + (topNode?.bytes ?? 0)
  const out: Extent[] = []
  for (let k = nodes.length - 1; k >= 0; k--) {
    const { ext, n } = nodes[k]
    const before = Math.max(ext.before, heldEnd)
    const end = ext.pos + ext.size
    let p = ext.pos
    const piece = (a: number, z: number): void => {
      if (a >= z) return
      if (a === ext.pos && z === end && before === ext.before) { out.push(ext); return }
      const cut: Extent = { ...ext, pos: a, at: ext.at + a - ext.pos, size: z - a, before }
      if (ext.offset !== undefined) cut.offset = a
      out.push(cut)
    }
    if (n <= top) {
      for (let i = firstHeld(held, p); i < held.length && held[i].from < end; i++) {
        if (held[i].n < n) continue
        piece(p, Math.max(p, held[i].from))
        p = Math.max(p, held[i].to)
      }
    }
    piece(p, end)
  }
  return { out, heldEnd }
}

/** `held` with [from, to) of each of `ranges` (flat pairs, increasing) holding `n` extents now. */
function holdRanges (held: readonly Held[], ranges: readonly number[], n: number): Held[] {
  let out: Held[] = [...held]
  for (let r = 0; r < ranges.length; r += 2) {
    const a = ranges[r]
    const b = ranges[r + 1]
    const next: Held[] = []
    for (const h of out) {
      if (h.to <= a || h.from >= b) { next.push(h); continue }
      if (h.from < a) next.push({ from: h.from, to: a, n: h.n })
      if (h.to > b) next.push({ from: b, to: h.to, n: h.n })
    }
    next.push({ from: a, to: b, n })
    out = next.sort((x, y) => x.from - y.from)
  }
  // neighbours holding as many extents are one range
  const merged: Held[] = []
  for (const h of out) {
    const last = merged[merged.length - 1]
    if (last !== undefined && last.to === h.from && last.n === h.n) merged[merged.length - 1] = { from: last.from, to: h.to, n: h.n }
    else merged.push(h)
  }
  return merged
}

/** True when every byte of extent number `n` lies where `held` holds it (a range with n or more). */
function allHeld (ext: Extent, n: number, held: readonly Held[]): boolean {
  let p = ext.pos
  const end = ext.pos + ext.size
  for (let i = firstHeld(held, p); i < held.length && held[i].from <= p && p < end; i++) {
    if (held[i].n < n) return false
    p = held[i].to
  }
  return p >= end
}

/** The file's base version: its own content and size (without the appends after it). */
export function baseOf (rec: InodeRec): { content: Content | null, size: number } {
  return { content: rec.real !== undefined ? rec.real.content : rec.content, size: rec.size - (rec.tail?.bytes ?? 0) }
}

export interface EntryRec {
  id: EntryId
  parent: InodeId
  name: string
  inode: InodeId
  live: boolean
  /**
   * The author and time of the op that last gave the entry its name (two fields, not an object
   * of them: one object less for every entry and every rename kept).
   */
  byAuthor: string
  byTime: bigint
  /** The op that unlinked it, while dead. */
  unlinkedBy?: string
  /** The op whose branch took the name back and retired it (a merge-made sibling), while dead. */
  retiredBy?: string
}

/**
 * A conflict sibling: `of` is the inode that kept the name. `write`: a new inode made by a
 * concurrent write (sibling()); else an entry that lost its name in a clash (attach()), which
 * still names its own inode, maybe `of` itself (a hard link renamed over another). `cause`, of a
 * write-made sibling: the op on the name holder's side its branch did not see (the write that
 * beat it, or the extent its bytes overlapped): a positioned extent that saw the sibling's
 * version but not its cause was written on the sibling's branch, and lands there.
 */
export interface ConflictRec { of: InodeId, author: string, time: bigint, write: boolean, cause?: string }

/**
 * A Version as the tree keeps it: the op that made it (`of`) in place of its CID, which
 * Tree.history() makes when asked (an op's CID is made when asked for: types.ts Op).
 */
export type StoredVersion = Omit<Version, 'op'> & { of: Op }

/** The Version (types.ts) of a stored one: its op's CID, the fields in Version's order. */
export function publicVersion (v: StoredVersion): Version {
  const out: Version = { op: v.of.cid, author: v.author, hlc: v.hlc, time: v.time, size: v.size, content: v.content }
  if (v.appended !== undefined) out.appended = v.appended
  return out
}

/**
 * `state`: an append's version, the file as it was then (its read content, size, appends and how
 * many a fold held): Tree.versionBytes.
 */
export interface VersionRec { version: StoredVersion, id: string, state?: { content: Content | null, size: number, tail: ExtNode | undefined, covered: number, held?: readonly Held[] } }

/**
 * The xattrs of every inode that has none: one Map shared by all (a Map each weighed ~250
 * bytes per file held). Xattrs are never changed in place (setxattr copies them), and this one
 * refuses changes, so sharing it cannot leak an xattr from one inode to another.
 */
class NoXattrs extends Map<string, Uint8Array> {
  override set (): this {
    throw new TypeError('an inode\'s xattrs are read only')
  }

  override delete (): boolean {
    throw new TypeError('an inode\'s xattrs are read only')
  }

  override clear (): void {
    throw new TypeError('an inode\'s xattrs are read only')
  }
}
const NO_XATTRS: Map<string, Uint8Array> = new NoXattrs()

/** 52 bits of sha256(id), as a safe integer; root = 1. */
export function inoOf (id: InodeId): number {
  if (id === ROOT) return 1
  // the digest as a latin1 string (a byte per char): half the cost of a Buffer of it
  const h = hash('sha256', id, 'latin1')
  let n = 0
  for (let i = 0; i < 6; i++) n = n * 256 + h.charCodeAt(i)
  n = n * 16 + (h.charCodeAt(6) >> 4)
  return n < 2 ? n + 2 : n
}

export class TreeState implements Unmake {
  readonly j = new Journal()
  readonly inodes = new Map<InodeId, InodeRec>()
  readonly entries = new Map<EntryId, EntryRec>()
  /** dir -> name -> live entry */
  readonly dirs = new Map<InodeId, Map<string, EntryId>>()
  /**
   * inode -> every entry (live or dead) that ever named it, in the order they came: a list never
   * changed in place (a new link sets a longer copy), so the journal keeps the old list as is.
   * Most inodes have one link: a list of one weighs a fraction of a Map.
   */
  readonly links = new Map<InodeId, readonly EntryId[]>()
  readonly live = new Map<InodeId, number>()
  readonly subdirs = new Map<InodeId, number>()
  readonly inodeAlias = new Map<InodeId, InodeId>()
  readonly entryAlias = new Map<EntryId, EntryId>()
  readonly versions = new Map<InodeId, VersionRec[]>()
  /** inode -> the ops of its current version (several when concurrent identical versions merged) */
  readonly head = new Map<InodeId, string[]>()
  readonly conflicts = new Map<EntryId, ConflictRec>()
  /**
   * inode -> its write-made conflict siblings (the entries of `conflicts` with write set and
   * `of` that inode): what ownSiblings() reads on every conflicting write and positioned extent,
   * without a scan of every conflict in the tree. Kept by setConflict()/deleteConflict().
   */
  readonly siblingsOf = new Map<InodeId, Map<EntryId, true>>()
  readonly byIno = new Map<number, InodeId>()
  constructor () {
    const root: InodeRec = { id: ROOT, ino: 1, kind: 'dir', mode: 0o755, uid: 0, gid: 0, rdev: 0, size: 0, content: null, atime: 0n, mtime: 0n, ctime: 0n, btime: 0n, xattrs: new Map() }
    this.inodes.set(ROOT, root)
    this.byIno.set(1, ROOT)
  }

  /**
   * The inode an id resolves to (merged inodes alias the survivor). Aliases are rare: with none,
   * no lookup (a Map lookup by a string decoded from an op makes V8 internalize the string, and
   * most ops resolve an id or two).
   */
  ri (id: InodeId): InodeId {
    return this.inodeAlias.size === 0 ? id : this.inodeAlias.get(id) ?? id
  }

  /** The entry an id resolves to (entries merged into another one alias it, maybe in a chain). */
  re (id: EntryId): EntryId {
    if (this.entryAlias.size === 0) return id
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const next = this.entryAlias.get(id)
      if (next === undefined) return id
      id = next
    }
    return id
  }

  nlink (rec: InodeRec): number {
    if (rec.kind !== 'dir') return this.live.get(rec.id) ?? 0
    if (rec.id !== ROOT && (this.live.get(rec.id) ?? 0) === 0) return 0
    return 2 + (this.subdirs.get(rec.id) ?? 0)
  }

  /**
   * Journal.made()'s undo of a create: its own id, a key of these maps absent until the create
   * (later ops change it — writes its versions and head, links its links and live, a move or
   * unlink its entry — each through the journal, so undone before the create's record).
   */
  unmake (id: unknown): void {
    const k = id as string
    this.inodes.delete(k)
    this.entries.delete(k)
    this.links.delete(k)
    this.live.delete(k)
    this.versions.delete(k)
    this.head.delete(k)
  }

  absent (id: unknown): boolean {
    const k = id as string
    return !this.inodes.has(k) && !this.entries.has(k) && !this.links.has(k) && !this.live.has(k) && !this.versions.has(k) && !this.head.has(k)
  }

  /** Applies ops (one Apply for all: every op applied, and applied again in a merge, made one). */
  private readonly applier = new Apply(this)

  /**
   * Apply one op (its parents already applied), with `record`, its undo records in the journal
   * (j.mark() before the call and j.undoTo() of it undo the op).
   */
  apply (node: DagNode, dag: Dag, record: boolean): void {
    const mark = this.j.mark()
    this.j.begin(record)
    try {
      this.applier.run(node, dag)
    } catch (err) {
      // a half-applied op's records are dropped, as they always were
      this.j.drop(mark)
      throw err
    } finally {
      this.j.end()
    }
  }
}

/**
 * What create() read for the entry it makes, for attach(): its directory's map of names as it
 * is (`names`, undefined when none), the entry holding the name there now (`clash`), and whether
 * the new inode is a directory. The entry and its inode are new: attach() looks up no entry,
 * live count or other link of them.
 */
interface Made { names: Map<string, EntryId> | undefined, clash: EntryId | undefined, isDir: boolean }

/** The application of ops to a TreeState, one at a time (run() sets the op being applied). */
class Apply {
  private readonly s: TreeState
  private readonly j: Journal
  private node!: DagNode
  private dag!: Dag
  private time = 0n

  constructor (s: TreeState) {
    this.s = s
    this.j = s.j
  }

  run (node: DagNode, dag: Dag): void {
    this.node = node
    this.dag = dag
    this.time = node.op.body.time
    const b = node.op.body
    switch (b.type) {
      case 'create': return this.create(b)
      case 'link': return this.link(b.parent, b.name, b.inode)
      case 'move': return this.move(b.entry, b.parent, b.name, b.replace)
      case 'unlink': {
        const e = this.s.entries.get(this.s.re(b.entry))
        if (e !== undefined && e.live) this.unlink(e)
        return
      }
      case 'setattr': {
        const id = this.s.ri(b.inode)
        const rec = this.s.inodes.get(id)
        if (rec === undefined) return
        // a copy with the fields set (what { ...rec, ...patch } gives, without V8's slow path
        // for a second spread of an object of varying shape: one of the commonest ops)
        const next = { ...rec }
        next.ctime = b.time
        if (b.mode !== undefined) next.mode = b.mode
        if (b.uid !== undefined) next.uid = b.uid
        if (b.gid !== undefined) next.gid = b.gid
        if (b.atime !== undefined) next.atime = b.atime
        if (b.mtime !== undefined) next.mtime = b.mtime
        this.j.change(this.s.inodes, id, rec, next)
        return
      }
      case 'write': return this.write(this.s.ri(b.inode), b)
      case 'append': return this.append(this.s.ri(b.inode), b)
      case 'fold': return this.fold(this.s.ri(b.inode), b)
      case 'resolve': return this.resolve(this.s.ri(b.inode), b)
      case 'setxattr':
      case 'removexattr': {
        const id = this.s.ri(b.inode)
        const rec = this.s.inodes.get(id)
        if (rec === undefined) return
        const xattrs = new Map(rec.xattrs)
        if (b.type === 'setxattr') xattrs.set(b.name, b.value)
        else xattrs.delete(b.name)
        const next = { ...rec }
        next.xattrs = xattrs
        next.ctime = b.time
        this.j.change(this.s.inodes, id, rec, next)
      }
    }
  }

  /**
   * Inode `id`'s ctime, and mtime unless undefined, become these: changed in its record in place
   * (Journal.setTime: no copy of the record, which the journal would keep for the undo), nothing
   * when they are already (every op that links, moves or writes a file touches its inode).
   */
  private touch (id: InodeId, ctime: bigint, mtime?: bigint): void {
    const rec = this.s.inodes.get(id)
    if (rec === undefined) return
    if (mtime !== undefined && rec.mtime !== mtime) this.j.setTime(rec, 'mtime', mtime)
    if (rec.ctime !== ctime) this.j.setTime(rec, 'ctime', ctime)
  }

  /** The inode number of what this op creates: inoOf(its id), made once per op (DagNode.ino). */
  private ino (): number {
    const n = this.node
    if (n.ino === 0) n.ino = inoOf(n.id)
    return n.ino
  }

  private isDir (id: InodeId): boolean {
    return this.s.inodes.get(id)?.kind === 'dir'
  }

  private create (b: Extract<DagNode['op']['body'], { type: 'create' }>): void {
    const s = this.s
    const parent = s.ri(b.parent)
    if (!this.isDir(parent)) return
    const id = this.node.id
    const content = b.content ?? null
    const size = b.size ?? (content !== null && 'inline' in content ? content.inline.byteLength : 0)
    const rec: InodeRec = { id, ino: this.ino(), kind: b.kind, mode: b.mode, uid: b.uid, gid: b.gid, rdev: b.rdev ?? 0, size, content, atime: b.time, mtime: b.time, ctime: b.time, btime: b.time, xattrs: NO_XATTRS }
    if (b.target !== undefined) rec.target = b.target
    const dir = s.dirs.get(parent)
    const clash = dir?.get(b.name)
    if (clash !== undefined) {
      const other = s.entries.get(clash) as EntryRec
      const otherInode = s.inodes.get(other.inode) as InodeRec
      // identical files are one only when created concurrently: a file created after seeing
      // the other (which a concurrent rename brought here) is the user's new file
      const seen = rec.kind === 'file' && this.seen(otherInode.id)
      if (mergeable(otherInode, rec) && !seen) {
        this.alias(id, other)
        // identical files are one version: a write that saw either supersedes both
        const head = s.head.get(otherInode.id)
        if (head !== undefined) this.j.set(s.head, otherInode.id, [...head, id])
        return
      }
      if (rec.kind === 'file' && otherInode.kind === 'file' && !seen && this.asCreated(other)) {
        if (isEmptyCreate(b)) {
          // an empty file made at the name of one made concurrently is that file (O_CREAT): its
          // content comes from the writes that follow (first writes included), never as a conflict
          // with the other's content; the empty version stays in history until a first write fills it
          this.alias(id, other)
          this.j.set(s.versions, otherInode.id, [...s.versions.get(otherInode.id) ?? [], { version: this.version(null, 0), id }])
          return
        }
        if (this.onlyEmptyCreates(s.head.get(otherInode.id) ?? [])) {
          // the other is still the empty file its create made: this create's content is its next version
          this.alias(id, other)
          this.setBase(otherInode.id, content, size)
          this.touch(otherInode.id, b.time, b.time)
          this.j.set(s.versions, otherInode.id, [...s.versions.get(otherInode.id) ?? [], { version: this.version(content, size), id }])
          this.j.set(s.head, otherInode.id, [id])
          return
        }
      }
    }
    // keys (its own id) absent until this op, applied once until undone: no lookup to learn it;
    // later ops that change them journal it (the ino is a hash of the id: another's may share it, looked up)
    // (one undo record for them all: TreeState.unmake() deletes them; attach() sets the entry and its live count)
    this.j.made(s, id)
    s.inodes.set(id, rec)
    this.j.set(s.byIno, rec.ino, id)
    // its head and its links are both [id]: one list for the two (neither is changed in place)
    const one = [id]
    if (b.kind === 'file') {
      s.versions.set(id, [{ version: this.version(content, size), id }])
      s.head.set(id, one)
    }
    // the entry this create makes (its own id) names the inode it makes: new, as is its list of links
    const e: EntryRec = { id, parent, name: b.name, inode: id, live: true, byAuthor: this.node.op.author, byTime: this.time }
    s.links.set(id, one)
    this.attach(e, { names: dir, clash, isDir: b.kind === 'dir' })
  }

  /** The create op `id` (inode and entry) is merged into the live entry `into` and its inode. */
  private alias (id: string, into: EntryRec): void {
    this.j.set(this.s.inodeAlias, id, into.inode)
    this.j.set(this.s.entryAlias, id, into.id)
  }

  /** True when `e` is the entry its file's create made, still where that create put it. */
  private asCreated (e: EntryRec): boolean {
    const c = this.dag.get(e.inode)?.op
    return e.id === e.inode && c?.body.type === 'create' && c.author === e.byAuthor && c.body.time === e.byTime
  }

  /** True when every op of a head is the create of an empty file (no content yet: a placeholder). */
  private onlyEmptyCreates (head: string[]): boolean {
    return head.length > 0 && head.every(h => {
      const n = this.dag.get(h)
      return n !== undefined && isEmptyCreate(n.op.body)
    })
  }

  /** True when the op `id` is in this op's causal past. */
  private seen (id: string): boolean {
    const n = this.dag.get(id)
    return n !== undefined && this.dag.before(n, this.node)
  }

  private link (parentId: InodeId, name: string, inodeId: InodeId): void {
    const parent = this.s.ri(parentId)
    const inode = this.s.ri(inodeId)
    const rec = this.s.inodes.get(inode)
    if (!this.isDir(parent) || rec === undefined || rec.kind === 'dir') return
    this.addEntry(this.node.id, parent, name, inode)
    // a new link count is an inode change
    this.touch(inode, this.time)
  }

  private addEntry (id: EntryId, parent: InodeId, name: string, inode: InodeId): void {
    // not in `entries` yet: attach() puts this very record there (made live already: no copy)
    const e: EntryRec = { id, parent, name, inode, live: true, byAuthor: this.node.op.author, byTime: this.time }
    const links = this.s.links.get(inode)
    if (links === undefined) this.j.change(this.s.links, inode, links, [id])
    else if (!links.includes(id)) this.j.change(this.s.links, inode, links, [...links, id])
    this.attach(e)
  }

  private move (entryId: EntryId, parentId: InodeId, name: string, replace: EntryId | undefined): void {
    const s = this.s
    const e = s.entries.get(s.re(entryId))
    const parent = s.ri(parentId)
    if (e === undefined || !e.live || !this.isDir(parent)) return
    if (this.isDir(e.inode)) {
      // Kleppmann's rule: never make a directory its own descendant
      let x: InodeId | undefined = parent
      for (let depth = 0; x !== undefined && x !== ROOT; depth++) {
        if (x === e.inode || depth > MAX_DEPTH) return
        x = s.entries.get(x)?.parent
      }
    }
    if (replace !== undefined) {
      const r = s.entries.get(s.re(replace))
      // the entry the user saw at the name, unless moved away since (a merge's clash renaming
      // it to a conflict name is no move: the user's rename over still replaces it)
      const there = r !== undefined && r.parent === parent && (r.name === name || (s.conflicts.get(r.id)?.write === false && baseName(r.name) === name))
      if (r !== undefined && there && r.live && r.id !== e.id) {
        // renaming a hard link over another link of the same file deletes nothing: no write
        // can bring that name back (it would stay as a conflict-named second link)
        if (r.inode === e.inode) this.remove(r)
        else this.unlink(r)
      }
    }
    this.detach(e)
    const moved: EntryRec = { ...e, parent, name, byAuthor: this.node.op.author, byTime: this.time }
    this.j.set(s.entries, e.id, moved)
    this.attach(moved)
    this.touch(e.inode, this.time)
  }

  /** Unlink a live entry unless a write it did not see, or a live child, keeps it. */
  private unlink (e: EntryRec): void {
    const s = this.s
    if (this.isDir(e.inode) && (s.dirs.get(e.inode)?.size ?? 0) > 0) return
    for (const v of s.versions.get(e.inode) ?? []) {
      const vn = this.dag.get(v.id)
      if (vn !== undefined && !this.dag.before(vn, this.node)) return
    }
    this.remove(e)
  }

  /** Unlink a live entry unconditionally (the inode's ctime changes: its links remain, or it lives on open). */
  private remove (e: EntryRec): void {
    this.detach(e)
    const cur = this.s.entries.get(e.id) as EntryRec
    this.j.change(this.s.entries, e.id, cur, { ...cur, live: false, unlinkedBy: this.node.id })
    this.touch(e.inode, this.time)
  }

  /**
   * Write (or append) vs. unlink: entries of file `id` unlinked, or retired as a sibling (a user
   * editing the copy), by ops this op did not see come back.
   */
  private reviveUnseen (id: InodeId): void {
    const s = this.s
    for (const eid of linksOf(s, id)) {
      const e = s.entries.get(eid) as EntryRec
      const by = e.unlinkedBy ?? e.retiredBy
      if (e.live || by === undefined) continue
      const u = this.dag.get(by)
      if (u === undefined || this.dag.before(u, this.node)) continue
      // replaced by another link of this same file: the name already shows it
      const holder = s.entries.get(s.dirs.get(e.parent)?.get(e.name) ?? '')
      if (holder === undefined || holder.inode !== id) this.revive(e)
    }
  }

  /**
   * The file's base version becomes `content` (`size` bytes) by this op: the appends it saw are
   * in it and leave the list; the ones it did not see stay, after it (and no fold stands): every
   * append, and the positioned extents over the version it replaces unless `branched` (they
   * went to their branch's sibling).
   */
  private setBase (id: InodeId, content: Content | null, size: number, branched = false): void {
    const rec = this.s.inodes.get(id) as InodeRec
    if (rec.tail === undefined && rec.appends === undefined && rec.covered === undefined && rec.held === undefined &&
        rec.folded === undefined && rec.real === undefined && rec.least === undefined) {
      // no extent, append or fold over the version it replaces (most writes): what the general
      // path below gives then, without its sets, lists and patch
      this.j.change(this.s.inodes, id, rec, clean({ ...rec, content, size }))
      return
    }
    // the positioned extents over the version now: an unseen one elsewhere is on another
    // branch's sibling (or in history), never over this version
    const over = new Set<string>()
    if (!branched) for (let x = rec.tail; x !== undefined; x = x.prev) if (x.ext.offset !== undefined) over.add(extentKey(x.ext))
    const kept: AuthorNode[] = []
    for (const [author, list] of rec.appends ?? []) {
      const saw = this.dag.seen(this.node, author)
      for (let x: AuthorNode | undefined = list; x !== undefined && x.seq > saw; x = x.prev) {
        if (x.ext.offset === undefined || over.has(extentKey(x.ext))) kept.push(x)
      }
    }
    kept.sort(inOrder)
    let tail: ExtNode | undefined
    let end = size
    for (const { ext } of kept) {
      const l = land(ext, end)
      end = l.end
      tail = { ext: l.ext, prev: tail, n: (tail?.n ?? 0) + 1, bytes: end - size }
    }
    const patch: Partial<InodeRec> = { content, size: end, tail, covered: 0, held: undefined, folded: undefined, real: undefined, least: undefined }
    this.j.change(this.s.inodes, id, rec, clean({ ...rec, ...patch }))
  }

  private write (id: InodeId, b: Extract<DagNode['op']['body'], { type: 'write' }>): void {
    const s = this.s
    const rec = s.inodes.get(id)
    if (rec === undefined || rec.kind !== 'file') return
    this.reviveUnseen(id)
    if (b.first === true) this.fills(id, b.inode)
    const head = s.head.get(id) ?? []
    const vs = s.versions.get(id) ?? []
    const seen = head.some(h => {
      const n = this.dag.get(h)
      return n === undefined || this.dag.before(n, this.node)
    })
    // a head of empty creates only (files made concurrently, not written yet) is no version to
    // conflict with: a write fills the file
    if (head.length > 0 && !seen && !this.onlyEmptyCreates(head)) {
      const base = baseOf(rec)
      if (sameContent(base.content, b.content) && base.size === b.size) {
        // concurrent identical writes are one version (the appends either saw are in it)
        this.j.set(s.head, id, [...head, this.node.id])
        this.setBase(id, base.content, base.size)
        this.touch(id, b.time > rec.ctime ? b.time : rec.ctime, b.time > rec.mtime ? b.time : rec.mtime)
        return
      }
      // the losing branch is the file as it reads now: its head version and the extents over it
      const loser = rec.tail !== undefined ? versionOfTail(vs, rec.tail) : versionById(vs, head[0])
      if (loser !== undefined) this.sibling(rec, loser, shownOf(rec), this.node.id)
      // this write's own branch takes the name back: the sibling that showed it retires
      this.retire(rec.id)
      this.setBase(id, b.content, b.size, true)
    } else if (this.unseenPositioned(rec)) {
      // a positioned extent this write did not see was written over bytes this write replaced
      // (a whole write overlaps every byte): its branch, the file as it reads now, keeps one
      // sibling and this write the name, whichever of them sorts first
      const loser = rec.tail !== undefined ? versionOfTail(vs, rec.tail) : undefined
      if (loser !== undefined) this.sibling(rec, loser, shownOf(rec), this.node.id)
      this.retire(rec.id)
      this.setBase(id, b.content, b.size, true)
    } else {
      this.setBase(id, b.content, b.size)
    }
    this.touch(id, b.time, b.time)
    const version = { version: this.version(b.content, b.size), id: this.node.id }
    if (vs.length === 0) this.j.set(s.versions, id, [version])
    else this.j.push(vs, version)
    this.j.set(s.head, id, [this.node.id])
  }

  /** True when the file's extents hold a positioned one this op did not see. */
  private unseenPositioned (rec: InodeRec): boolean {
    for (let x = rec.tail; x !== undefined; x = x.prev) {
      if (x.ext.offset === undefined) continue
      const n = this.dag.get(x.ext.op)
      if (n === undefined || !this.dag.before(n, this.node)) return true
    }
    return false
  }

  /**
   * The first content of a file this author created empty (`created`) in the same open: the
   * empty create and this op are one version (the create's version leaves history).
   */
  private fills (id: InodeId, created: InodeId): void {
    const s = this.s
    const c = this.dag.get(created)
    if (c !== undefined && c.op.author === this.node.op.author && isEmptyCreate(c.op.body) && this.dag.before(c, this.node)) {
      const before = s.versions.get(id) ?? []
      if (before.some(v => v.id === created)) this.j.set(s.versions, id, before.filter(v => v.id !== created))
    }
  }

  /**
   * Bytes over the base (at the end, or at `offset`): the next extent in the list, never a
   * conflict. A multi-extent op (`more`) lands its extents one after another, each as the
   * extent of an op that saw the ones before it would (each over the file as the previous one
   * left it, its own earlier extents seen: branchOff()); the op is one version of the file.
   */
  private append (id: InodeId, b: Extract<DagNode['op']['body'], { type: 'append' }>): void {
    const s = this.s
    if (s.inodes.get(id)?.kind !== 'file') return
    this.reviveUnseen(id)
    if (b.first === true) this.fills(id, b.inode)
    const op = this.node.op
    const more = b.more
    const n = more === undefined ? 1 : 1 + more.length
    for (let part = 0; part < n; part++) {
      const x = part === 0 ? b : (more as MoreExtent[])[part - 1]
      const rec = s.inodes.get(id) as InodeRec
      const raw: Extent = { op: this.node.id, hlc: op.hlc, content: x.content, at: x.at, size: x.size, pos: 0, before: 0 }
      if (part > 0) raw.part = part
      if (x.offset !== undefined) {
        raw.offset = x.offset
        if (this.branchOff(rec, raw, b.time)) continue
      }
      this.addVersion(id, this.landOn(rec, raw, b.time))
    }
  }

  /**
   * This op's version joins inode `id`'s history; when the history's last version is already
   * this op's (an earlier extent of a multi-extent op), it is replaced: one version per op, the
   * file after its last extent, its `appended` the bytes of all of them, its content the first's.
   */
  private addVersion (id: InodeId, v: VersionRec): void {
    const vs = this.s.versions.get(id)
    if (vs === undefined) {
      this.j.set(this.s.versions, id, [v])
      return
    }
    const last = vs[vs.length - 1]
    // replaced only when the new state continues the last one (the extent landed on the state
    // that version read); an extent of the op that branched off to a sibling is a version of
    // its own, as it is for consecutive ops (versionOfTail() tells them apart)
    if (last === undefined || last.id !== this.node.id || v.id !== this.node.id || v.state === undefined || last.state === undefined || v.state.tail?.prev !== last.state.tail) {
      this.j.push(vs, v)
      return
    }
    const version: StoredVersion = { ...v.version, content: last.version.content }
    if (last.version.appended !== undefined || v.version.appended !== undefined) version.appended = (last.version.appended ?? 0) + (v.version.appended ?? 0)
    this.j.setLast(vs, { ...v, version })
  }

  /** This op's extent `raw` lands on file `rec` (the last of its extents); its version, the file right after it. */
  private landOn (rec: InodeRec, raw: Extent, time: bigint): VersionRec {
    const op = this.node.op
    const { ext, end: size } = land(raw, rec.size)
    const tail: ExtNode = { ext, prev: rec.tail, n: (rec.tail?.n ?? 0) + 1, bytes: (rec.tail?.bytes ?? 0) + size - rec.size }
    const appends = new Map(rec.appends)
    appends.set(op.author, { ext, seq: this.node.seq, op, prev: appends.get(op.author) })
    const next = { ...(this.s.inodes.get(rec.id) as InodeRec) }
    next.tail = tail
    next.size = size
    next.appends = appends
    next.mtime = time
    next.ctime = time
    this.j.set(this.s.inodes, rec.id, next)
    return {
      version: { ...this.version(raw.content, size), appended: raw.size },
      id: this.node.id,
      state: rec.held === undefined ? { content: rec.content, size, tail, covered: rec.covered ?? 0 } : { content: rec.content, size, tail, covered: rec.covered ?? 0, held: rec.held }
    }
  }

  /**
   * A positioned extent that conflicts: made over a version a concurrent whole write has since
   * replaced (the head is not in its causal past: a whole write overlaps every byte), or over
   * bytes a concurrent extent it did not see wrote differently (newest wins per byte holds for
   * extents one author saw; for two authors' different bytes in one place it would make a file
   * neither wrote). Its bytes stay as its author wrote them, over the version it saw, in one
   * conflict sibling; the name keeps the other side, whichever sorts first. An extent of a branch
   * that already has a sibling (a live merge-made sibling whose newest op it saw and whose cause
   * it did not) lands in that sibling, under the same rule: when the sibling holds other bytes
   * it did not see where it writes (a sibling showing a file as it read, extents of several
   * authors merged), the sibling shows the extent's own view instead (its former version stays
   * in its history). True when it went to a sibling.
   */
  private branchOff (rec: InodeRec, raw: Extent, time: bigint): boolean {
    const s = this.s
    // this op itself counts as seen: the earlier extents of a multi-extent op are seen by its
    // later ones, as consecutive ops of one author see each other
    const saw = (id: string): boolean => {
      if (id === this.node.id) return true
      const n = this.dag.get(id)
      return n !== undefined && this.dag.before(n, this.node)
    }
    const vs = s.versions.get(rec.id) ?? []
    const own = this.ownSiblings(rec.id).filter(o => saw(o.head) && o.cause !== undefined && !saw(o.cause)).pop()
    const into = own === undefined ? rec : s.inodes.get(own.e.inode) as InodeRec
    // what it lands on holds other bytes it did not see where it writes: its branch's own view
    const cause = this.overlapped(into, raw, saw)
    if (own !== undefined && cause === undefined) {
      const version = this.landOn(into, raw, time)
      this.addVersion(rec.id, version)
      this.addVersion(into.id, version)
      this.j.set(s.head, into.id, [this.node.id])
      return true
    }
    if (cause === undefined) return false
    // the newest whole version this extent saw, and the extents it saw made after that version
    let base: VersionRec | undefined
    for (let i = vs.length - 1; i >= 0 && base === undefined; i--) if (vs[i].state === undefined && saw(vs[i].id)) base = vs[i]
    const bn = base === undefined ? undefined : this.dag.get(base.id)
    if (base === undefined || bn === undefined) return false
    const seen: AuthorNode[] = []
    for (const [author, list] of rec.appends ?? []) {
      const upto = this.dag.seen(this.node, author)
      const after = this.dag.seen(bn, author)
      for (let x: AuthorNode | undefined = list; x !== undefined && x.seq > after; x = x.prev) if (x.seq <= upto) seen.push(x)
    }
    seen.sort(inOrder)
    const from = base.version.size
    let end = from
    let tail: ExtNode | undefined
    for (const x of [...seen.map(n => n.ext), raw]) {
      const l = land(x, end)
      end = l.end
      tail = { ext: l.ext, prev: tail, n: (tail?.n ?? 0) + 1, bytes: end - from }
    }
    const version: VersionRec = { version: { ...this.version(raw.content, end), appended: raw.size }, id: this.node.id, state: { content: base.version.content, size: end, tail, covered: 0 } }
    this.addVersion(rec.id, version)
    this.sibling(rec, version, { content: base.version.content, size: end, tail, covered: 0, held: undefined, folded: undefined, real: undefined, least: undefined, appends: rec.appends }, cause)
    return true
  }

  /**
   * What a positioned extent conflicts with on the name holder's side, if anything: a head
   * version it did not see, or the newest extent it did not see that wrote other bytes where it
   * writes (same bytes in the overlap merge: nothing differs).
   */
  private overlapped (rec: InodeRec, raw: Extent, saw: (id: string) => boolean): string | undefined {
    const head = this.s.head.get(rec.id) ?? []
    if (head.length > 0 && !head.some(saw) && !this.onlyEmptyCreates(head)) return head[0]
    // an op that saw every extent of the list (one writer's next fsync: nearly every extent
    // applied) has none to conflict with: the per-author count answers without the extents
    // meeting its bytes, which for a page every commit rewrites (a database's header) are all of them
    if (this.sawAll(rec.tail)) return undefined
    const lo = raw.offset as number
    const hi = lo + raw.size
    // the extents meeting its bytes, newest first (through an index: tail-index.ts)
    for (const x of meeting(rec.tail, lo, hi)) {
      if (saw(x.ext.op)) continue
      const a = Math.max(lo, x.ext.pos)
      const z = Math.min(hi, x.ext.pos + x.ext.size)
      if (!sameBytes(x.ext, x.ext.pos, raw, lo, a, z)) return x.ext.op
    }
    return undefined
  }

  /**
   * True when this op has every extent of the list ending at `tail` in its causal past (or is
   * its op: the earlier extents of a multi-extent op): each author's newest extent in the list
   * (tailAuthors) is at most what the op's vector clock counts of that author.
   */
  private sawAll (tail: ExtNode | undefined): boolean {
    if (tail === undefined) return true
    const newest = tailAuthors(tail, this.dag)
    if (newest === undefined) return false
    for (const [author, seq] of newest) if (this.dag.seen(this.node, author) < seq) return false
    return true
  }

  /**
   * A compaction, read in place of the base and its first appends when it holds exactly them:
   * everywhere, or (a partial fold) over its `ranges`, the content it was made over (`over`)
   * being kept elsewhere. It covers at least every extent the content holds somewhere.
   */
  private fold (id: InodeId, b: Extract<DagNode['op']['body'], { type: 'fold' }>): void {
    const rec = this.s.inodes.get(id)
    if (rec === undefined || rec.kind !== 'file' || rec.tail === undefined) return
    if (b.covers <= (rec.covered ?? 0) || b.covers < (rec.least ?? 0) || b.covers > rec.tail.n) return
    if (!(this.s.head.get(id) ?? []).includes(b.base)) return
    let x: ExtNode | undefined = rec.tail
    while (x !== undefined && x.n > b.covers) x = x.prev
    // the appends it holds: the oldest `covers`, every one in its causal past
    const last = x as ExtNode
    // one of them it did not see: a late op sorts among them
    let unseen = false
    for (; x !== undefined && !unseen; x = x.prev) {
      const n = this.dag.get(x.ext.op)
      unseen = n === undefined || !this.dag.before(n, this.node)
    }
    if (unseen) {
      this.stale(id, rec, b)
      return
    }
    if (b.covers < heldTop(rec.covered ?? 0, rec.held)) return
    // a partial fold keeps the content it saw outside its ranges: only over that very content
    if (b.ranges !== undefined && b.over !== rec.folded) return
    if (baseOf(rec).size + last.bytes !== b.size) return
    const real = rec.real ?? { content: rec.content }
    if (b.ranges === undefined) {
      this.j.set(this.s.inodes, id, clean({ ...rec, content: b.content, covered: b.covers, held: undefined, folded: this.node.id, real, least: undefined }))
      return
    }
    let held = holdRanges(rec.held ?? [], b.ranges, b.covers)
    // the oldest extents now held wherever they wrote are read no more: `covered` moves past them
    let covered = rec.covered ?? 0
    for (const ext of extentsOf(rec.tail, covered)) {
      if (covered >= b.covers || !allHeld(ext, covered + 1, held)) break
      covered++
    }
    held = held.filter(h => h.n > covered)
    this.j.set(this.s.inodes, id, clean({ ...rec, content: b.content, covered, held: held.length > 0 ? held : undefined, folded: this.node.id, real, least: undefined }))
  }

  /**
   * A fold made stale by a late op: an extent its author did not see sorts
   * among the `covers` it holds, so it no longer holds the file's first extents. Ignoring it (as
   * before) left the file reading the content that stood before it, which may be a fold a later
   * fold replaced on every host that had no late op: nothing kept that one (GC keeps the current
   * state's contents and history's within retention), and an op arriving after the retention
   * period and GC's grace left the file unreadable for good, and every fold made over it.
   *
   * Weighed and not done: keeping every superseded fold while an extent it covers could still be
   * reordered under it (unbounded: an offline host may come back any time, so an append-only file
   * would keep a fold per fold made); falling back on read when the blocks are gone (each read
   * first waits for every peer to say no); reading the stale fold's own content with the extents
   * read now laid over it (same bytes only while every extent it holds is still this file's: a
   * late positioned extent can send one of them to a conflict sibling, and its bytes would show).
   *
   * So the file reads its base version and every extent since it (`real`, covered 0): the same
   * bytes, all of which every host reading a fold over that base keeps (Tree.contents()), until a
   * fold over them stands; the volume folds them again (a rewrite of the extents' chunks, only
   * after a late op). Also when the content read holds the extent this fold did not see (a fold
   * that saw the late op stands): with `least` raised below it would stay read where hosts without
   * that fold read this one, or a fold after it, and kept no other.
   *
   * `least`: from now on a fold must hold as many extents as it would have had to hold had this
   * one been read (more than a whole fold held, at least as many as a partial one: `covered`,
   * heldTop()), else a fold holding fewer, ignored where this one was read, would be read here:
   * a content the hosts that ignored it did not keep. foldPoint() says so (Tree.foldPoint `top`).
   */
  private stale (id: InodeId, rec: InodeRec, b: Extract<DagNode['op']['body'], { type: 'fold' }>): void {
    const least = Math.max(rec.least ?? 0, b.ranges === undefined ? b.covers + 1 : b.covers)
    const content = rec.real !== undefined ? rec.real.content : rec.content
    this.j.set(this.s.inodes, id, clean({ ...rec, content, covered: 0, held: undefined, folded: undefined, real: undefined, least }))
  }


  /**
   * A user settles conflict siblings (`darkfs resolve`). Why a new op rather than existing ones
   * composed: an `unlink` of a sibling would drop a clash sibling's versions from the history of
   * the name (`darkfs log PATH`), and a `move` to a plain name would leave it listed as a
   * conflict (and open to reuse by a later branch switch); nor could either say "only if it
   * still shows what I saw". Keeping a sibling's bytes needs no new rule: it is a plain `write`
   * to the name holder before this op (a concurrent write there conflicts as any write does).
   *
   * Each sibling is settled only when it is still a live conflict showing the version the
   * resolver saw (`head`), and only while the holder is linked: a resolve never hides a version
   * its author did not see; what it skips stays a conflict, to resolve again. `holder`: the
   * sibling is unlinked and its versions join the holder's history (nothing leaves `darkfs
   * log`); a non-empty directory stays. `both`: the sibling stops being a conflict and takes
   * keptName() in its directory. Two resolves of one sibling made concurrently: the first in
   * total order settles it, the second finds it no longer a live conflict and leaves it, so
   * every host ends with the same tree (and a sibling a keep-both kept is a user's file).
   */
  private resolve (holder: InodeId, b: Extract<DagNode['op']['body'], { type: 'resolve' }>): void {
    const s = this.s
    const hrec = s.inodes.get(holder)
    if (hrec === undefined || s.nlink(hrec) === 0) return
    for (const sib of b.siblings) {
      const id = s.re(sib.entry)
      const e = s.entries.get(id)
      const c = s.conflicts.get(id)
      if (e === undefined || !e.live || c === undefined) continue
      const head = s.head.get(e.inode)
      if (head !== undefined ? sib.head === undefined || !head.includes(sib.head) : sib.head !== undefined) continue
      if (b.keep === 'holder') {
        if (this.isDir(e.inode) && (s.dirs.get(e.inode)?.size ?? 0) > 0) continue
        if (e.inode !== holder && hrec.kind === 'file') this.adopt(holder, e.inode)
        this.remove(e)
      } else {
        const dir = s.dirs.get(e.parent)
        const name = keptName(e.name, c.author, c.time, n => dir?.has(n) ?? false)
        this.deleteConflict(id)
        this.detach(e)
        const kept: EntryRec = { ...e, name, byAuthor: this.node.op.author, byTime: this.time }
        this.j.set(s.entries, id, kept)
        this.attach(kept)
      }
    }
  }

  /** The versions of `from` that `into`'s history lacks join it, in order of their clocks. */
  private adopt (into: InodeId, from: InodeId): void {
    const s = this.s
    const have = s.versions.get(into) ?? []
    const ids = new Set(have.map(v => v.id))
    const more = (s.versions.get(from) ?? []).filter(v => !ids.has(v.id))
    if (more.length === 0) return
    // stable: the history's own order (total order) stays as it is among equal clocks
    const all = [...have, ...more].sort((a, b) => compareClock(a.version, b.version))
    this.j.set(s.versions, into, all)
  }

  /**
   * The conflict siblings of `inode` made by the merge itself (never renamed, unlinked or
   * written by a user since): the ones a branch switch may retire or reuse.
   */
  private ownSiblings (inode: InodeId): Array<{ e: EntryRec, head: string, cause?: string }> {
    const s = this.s
    const out: Array<{ e: EntryRec, head: string, cause?: string }> = []
    const ids = s.siblingsOf.get(inode)
    if (ids === undefined) return out
    for (const id of ids.keys()) {
      const c = s.conflicts.get(id) as ConflictRec
      const e = s.entries.get(id)
      const head = s.head.get(id)
      if (e === undefined || e.unlinkedBy !== undefined || e.inode !== id || head?.length !== 1) continue
      // renamed by a user, or showing a version written to the sibling itself: the user's now
      if (e.byAuthor !== c.author || e.byTime !== c.time) continue
      if (versionById(s.versions.get(inode) ?? [], head[0]) === undefined) continue
      out.push({ e, head: head[0], cause: c.cause })
    }
    // by entry id (unique): an insertion sort in place, as an inode has few siblings (sort()
    // allocates a work array per call, and this runs on every conflicting write)
    for (let i = 1; i < out.length; i++) {
      const x = out[i]
      let k = i
      for (; k > 0 && out[k - 1].e.id > x.e.id; k--) out[k] = out[k - 1]
      out[k] = x
    }
    return out
  }

  /** Set entry `id`'s conflict record, keeping the index of write-made siblings (siblingsOf). */
  private setConflict (id: EntryId, c: ConflictRec): void {
    const s = this.s
    const was = s.conflicts.get(id)
    // (unindex() changes siblingsOf only: `was` is still what conflicts holds)
    if (was?.write === true && (!c.write || was.of !== c.of)) this.unindex(id, was.of)
    this.j.change(s.conflicts, id, was, c)
    if (c.write && (was?.write !== true || was.of !== c.of)) {
      let ids = s.siblingsOf.get(c.of)
      if (ids === undefined) {
        ids = new Map()
        this.j.change(s.siblingsOf, c.of, undefined, ids)
      }
      this.j.set(ids, id, true)
    }
  }

  /** Entry `id` is no conflict any more (and no write-made sibling in siblingsOf). */
  private deleteConflict (id: EntryId): void {
    const s = this.s
    const was = s.conflicts.get(id)
    if (was === undefined) return
    if (was.write) this.unindex(id, was.of)
    this.j.delete(s.conflicts, id)
  }

  private unindex (id: EntryId, of: InodeId): void {
    const ids = this.s.siblingsOf.get(of)
    if (ids !== undefined) this.j.delete(ids, id)
  }

  /** Hide the live merge-made siblings of `inode` whose version this op has seen. */
  private retire (inode: InodeId): void {
    for (const { e, head } of this.ownSiblings(inode)) {
      const n = this.dag.get(head)
      if (!e.live || n === undefined || !this.dag.before(n, this.node)) continue
      this.detach(e)
      this.j.set(this.s.entries, e.id, { ...e, live: false, retiredBy: this.node.id })
    }
  }

  /**
   * The losing version of a concurrent write stays visible once, as a new file beside it; when
   * its branch already has a merge-made sibling (an older version of that branch), that sibling
   * shows the new version instead, so a run of writes on both sides leaves one sibling.
   */
  private sibling (rec: InodeRec, loser: VersionRec, shown: Shown | undefined, cause: string): void {
    const s = this.s
    let primary: EntryRec | undefined
    for (const eid of s.links.get(rec.id) ?? []) {
      const e = s.entries.get(eid) as EntryRec
      if (e.live && (primary === undefined || e.id < primary.id)) primary = e
    }
    if (primary === undefined) return // unlinked: the loser stays in history()
    const ln = this.dag.get(loser.id)
    const reuse = ln === undefined
      ? undefined
      : this.ownSiblings(rec.id).find(({ e, head }) => {
        const n = this.dag.get(head)
        // the loser's own op: an older state of its branch only when the sibling shows no later
        // extent of that op (a multi-extent op's later extent may have branched off alone)
        if (head === loser.id) return partOf(s.inodes.get(e.inode)?.tail, head) <= partOf(shown?.tail ?? loser.state?.tail, head)
        return n !== undefined && this.dag.before(n, ln)
      })
    if (reuse !== undefined) {
      const id = reuse.e.id
      const v = loser.version
      const was = s.inodes.get(id)
      if (was !== undefined) {
        const sh = shown ?? plain(v)
        // (no extent or fold on either side, most siblings: the record clean() would give, made at once)
        const next = bare(was) && bareShown(sh) ? { ...was, content: sh.content, size: sh.size, mtime: v.time, ctime: this.time } : clean({ ...was, ...sh, mtime: v.time, ctime: this.time })
        this.j.change(s.inodes, id, was, next)
      }
      // a later extent of the op that made the sibling show: its version replaces the earlier one's
      if (reuse.head !== loser.id) this.j.push(s.versions.get(id) as VersionRec[], loser)
      else if (loser.id === this.node.id) this.addVersion(id, loser)
      this.j.set(s.head, id, [loser.id])
      const c = s.conflicts.get(id) as ConflictRec
      this.setConflict(id, { ...c, cause })
      if (!reuse.e.live) this.revive(reuse.e)
      return
    }
    const id = this.node.id
    const v = loser.version
    const sh = shown ?? plain(v)
    const sib: InodeRec = bare(rec) && bareShown(sh)
      ? { ...rec, id, ino: this.ino(), content: sh.content, size: sh.size, mtime: v.time, ctime: this.time, btime: v.time }
      : clean({ ...rec, id, ino: this.ino(), ...sh, mtime: v.time, ctime: this.time, btime: v.time })
    this.j.set(s.inodes, id, sib)
    this.j.set(s.byIno, sib.ino, id)
    this.j.set(s.versions, id, [loser])
    this.j.set(s.head, id, [loser.id])
    const dir = s.dirs.get(primary.parent)
    const name = conflictName(primary.name, v.author, v.time, n => dir?.has(n) ?? false)
    // put in `entries` by attach() as it is
    const e: EntryRec = { id, parent: primary.parent, name, inode: id, live: true, byAuthor: v.author, byTime: v.time }
    this.j.set(s.links, id, [id])
    this.attach(e)
    this.setConflict(id, { of: rec.id, author: v.author, time: v.time, write: true, cause })
  }

  private version (content: Version['content'], size: number): StoredVersion {
    const op = this.node.op
    return { of: op, author: op.author, hlc: op.hlc, time: this.time, size, content }
  }

  /** Bring a dead entry back (and its dead ancestors). */
  private revive (e: EntryRec): void {
    // e without unlinkedBy and retiredBy, made as addEntry() makes one: a copy that `delete`d
    // them was a slow (dictionary) object, as were the copies of it every later change made
    // (a conflicting write revives its branch's retired sibling: thousands in a merge)
    const back: EntryRec = { id: e.id, parent: e.parent, name: e.name, inode: e.inode, live: false, byAuthor: e.byAuthor, byTime: e.byTime }
    this.j.set(this.s.entries, e.id, back)
    this.attach(back)
  }

  /**
   * Make an entry live at its (parent, name). A live entry already there loses the name to it
   * and becomes a conflict sibling. A dead parent directory comes back first.
   */
  private attach (e: EntryRec, made?: Made): void {
    const s = this.s
    if (e.parent !== ROOT) {
      const pe = s.entries.get(e.parent)
      // (a parent brought back goes into its own parent's names: e's directory's names stay as `made` read them)
      if (pe !== undefined && !pe.live) this.revive(pe)
    }
    let dir = made !== undefined ? made.names : s.dirs.get(e.parent)
    if (dir === undefined) {
      dir = new Map()
      this.j.change(s.dirs, e.parent, undefined, dir)
    }
    const clash = made !== undefined ? made.clash : dir.get(e.name)
    /** what the name holds before this entry takes it (the journal's undo record) */
    let held = clash
    const other = clash === undefined || clash === e.id ? undefined : s.entries.get(clash) as EntryRec
    if (other !== undefined && other.inode === e.inode) {
      // two links of one file under one name are one name: the newcomer takes it over, and
      // ops naming the old entry resolve to it
      this.detach(other)
      this.j.set(s.entries, other.id, { ...other, live: false })
      this.j.set(s.entryAlias, other.id, e.id)
      held = dir.get(e.name)
    } else if (other !== undefined) {
      // (under a name other than e's: the name e takes still holds `clash`)
      const name = conflictName(other.name, other.byAuthor, other.byTime, n => dir.has(n) || n === e.name)
      this.j.set(s.entries, other.id, { ...other, name })
      this.j.set(dir, name, other.id)
      if (!s.conflicts.has(other.id)) this.setConflict(other.id, { of: e.inode, author: other.byAuthor, time: other.byTime, write: false })
    }
    this.j.change(dir, e.name, held, e.id)
    if (made !== undefined) {
      // a create's own entry and inode: no entry, live count or other link of them yet (keys
      // create() recorded as made: Journal.made)
      s.entries.set(e.id, e)
      s.live.set(e.inode, 1)
      if (made.isDir) this.subdir(e.parent, +1)
      this.changed(e.parent)
      return
    }
    // a new entry (addEntry, sibling: made live) is not in `entries` yet; a moved one is there live already
    const cur = s.entries.get(e.id)
    if (cur === undefined) this.j.change(s.entries, e.id, cur, e.live ? e : { ...e, live: true })
    else if (!cur.live) this.j.change(s.entries, e.id, cur, { ...cur, live: true })
    this.count(e, +1)
    this.changed(e.parent)
    this.absorb(e)
  }

  /**
   * Links of e's file in e's directory that lost e's name in a clash (and kept the conflict
   * name after the clash's winner left) are e's name too: they merge into e like a clash of
   * two links of one file.
   */
  private absorb (e: EntryRec): void {
    const s = this.s
    for (const id of linksOf(s, e.inode)) {
      if (id === e.id) continue
      const l = s.entries.get(id) as EntryRec
      if (!l.live || l.parent !== e.parent || s.conflicts.get(id)?.write !== false || baseName(l.name) !== e.name) continue
      this.detach(l)
      this.j.set(s.entries, id, { ...l, live: false })
      this.j.set(s.entryAlias, id, e.id)
    }
  }

  private detach (e: EntryRec): void {
    const dir = this.s.dirs.get(e.parent)
    if (dir?.get(e.name) === e.id) this.j.delete(dir, e.name)
    this.count(e, -1)
    this.changed(e.parent)
  }

  /**
   * A directory's entries changed (an entry came or went, by any op or merge): its mtime and
   * ctime become the op's time, as POSIX has it for create, mkdir, mknod, symlink, link, unlink,
   * rmdir and both directories of a rename. Part of the fold, so every host shows the same times.
   */
  private changed (dir: InodeId): void {
    // in place (touch()): this runs for every entry that comes or goes
    const rec = this.s.inodes.get(dir)
    if (rec === undefined) return
    // times already the op's (a move within one directory changes it twice): nothing to change
    if (rec.mtime !== this.time) this.j.setTime(rec, 'mtime', this.time)
    if (rec.ctime !== this.time) this.j.setTime(rec, 'ctime', this.time)
  }

  private count (e: EntryRec, by: number): void {
    const s = this.s
    const live = s.live.get(e.inode)
    this.j.change(s.live, e.inode, live, (live ?? 0) + by)
    if (this.isDir(e.inode)) this.subdir(e.parent, by)
  }

  private subdir (dir: InodeId, by: number): void {
    const subdirs = this.s.subdirs.get(dir)
    this.j.change(this.s.subdirs, dir, subdirs, (subdirs ?? 0) + by)
  }
}

/**
 * The version op `id` made in a history (perf: searched from the end, where the recent versions
 * are; an op adds its version to a history once, so there is one at most).
 */
function versionById (vs: VersionRec[], id: string | undefined): VersionRec | undefined {
  for (let i = vs.length - 1; i >= 0; i--) if (vs[i].id === id) return vs[i]
  return undefined
}

/**
 * The version of a history whose state is the extent list `tail` (the file as it reads with
 * it): the version of the op of its newest extent, the one whose state it is when that op has
 * several (a multi-extent op whose later extents branched off to a sibling), else the newest.
 */
function versionOfTail (vs: VersionRec[], tail: ExtNode): VersionRec | undefined {
  const id = tail.ext.op
  let found: VersionRec | undefined
  for (let i = vs.length - 1; i >= 0; i--) {
    if (vs[i].id !== id) {
      // an op's versions in one history are next to each other: past them, none is
      if (found !== undefined) break
      continue
    }
    if (vs[i].state?.tail === tail) return vs[i]
    found ??= vs[i]
  }
  return found
}

/** Which extent of op `id` the newest of `tail` is (0 when it is not one of that op's). */
function partOf (tail: ExtNode | undefined, id: string): number {
  return tail !== undefined && tail.ext.op === id ? tail.ext.part ?? 0 : 0
}

/**
 * Each author's newest op (its seq in the author's chain) among the extents of the list ending
 * at `tail`. Kept with the head (weak) and taken over by the next head, as tail-index.ts's
 * indexes are: a list grows by one extent at a time, so that is one step and no copy; a list
 * with no kept ancestor within TAIL_CATCH_UP (after an undo, the first ask) is walked whole.
 * undefined when an extent's op is not in the DAG (never, for a list the tree built: the caller
 * then walks the extents).
 */
function tailAuthors (tail: ExtNode, dag: Dag): ReadonlyMap<string, number> | undefined {
  const held = newestByAuthor.get(tail)
  if (held !== undefined) return held === UNKNOWN ? undefined : held
  const since: ExtNode[] = []
  let out: Map<string, number> | typeof UNKNOWN | undefined
  for (let x: ExtNode | undefined = tail; x !== undefined && since.length <= TAIL_CATCH_UP; x = x.prev) {
    out = newestByAuthor.get(x)
    if (out !== undefined) {
      newestByAuthor.delete(x)
      break
    }
    since.push(x)
  }
  if (out === undefined) {
    out = new Map()
    since.length = 0
    for (let x: ExtNode | undefined = tail; x !== undefined; x = x.prev) since.push(x)
  }
  for (let i = since.length - 1; i >= 0 && out !== UNKNOWN; i--) {
    const n = dag.get(since[i].ext.op)
    if (n === undefined) out = UNKNOWN
    else if ((out.get(n.op.author) ?? 0) < n.seq) out.set(n.op.author, n.seq)
  }
  newestByAuthor.set(tail, out)
  return out === UNKNOWN ? undefined : out
}

/** tailAuthors() of a list head, until the next head takes it over. */
const newestByAuthor = new WeakMap<ExtNode, Map<string, number> | typeof UNKNOWN>()
/** A list with an extent whose op the DAG lacks. */
const UNKNOWN = Symbol('unknown')
/** How far back from a head tailAuthors() looks for a kept ancestor before it walks the list whole. */
const TAIL_CATCH_UP = 256

/** What names an extent: its op, and for the later extents of a multi-extent op, which one. */
function extentKey (x: Extent): string {
  return x.part === undefined ? x.op : `${x.op}/${x.part}`
}

/**
 * The entries that ever named inode `id`, sorted. The caller may change the links meanwhile: the
 * list is never changed in place (TreeState.links), so one of a single link (most files) is
 * returned as it is, and a longer one sorted in a copy.
 */
function linksOf (s: TreeState, id: InodeId): readonly string[] {
  const links = s.links.get(id)
  if (links === undefined) return NO_LINKS
  return links.length < 2 ? links : [...links].sort()
}

const NO_LINKS: readonly string[] = []

/**
 * Extents (by author lists) in the order they land: their ops' total order, and within one
 * multi-extent op, the order of its extents.
 */
function inOrder (a: AuthorNode, b: AuthorNode): number {
  const c = a.op === b.op ? 0 : compareOps(a.op, b.op)
  return c !== 0 ? c : (a.ext.part ?? 0) - (b.ext.part ?? 0)
}

/** Versions by (hlc, author): the total order's first two keys. */
function compareClock (a: StoredVersion, b: StoredVersion): number {
  if (a.hlc[0] !== b.hlc[0]) return a.hlc[0] - b.hlc[0]
  if (a.hlc[1] !== b.hlc[1]) return a.hlc[1] - b.hlc[1]
  return a.author < b.author ? -1 : a.author > b.author ? 1 : 0
}

/** What a conflict sibling shows: a base version and the extents over it. */
type Shown = Pick<InodeRec, 'content' | 'size' | 'tail' | 'covered' | 'held' | 'folded' | 'real' | 'least' | 'appends'>

/**
 * The file as it reads now, for a sibling to show: its base version and every extent over it,
 * not a fold standing for them. The fold read now may be one a later fold replaced on every
 * host that lacked the op making this sibling (a whole write made offline that sorts before that
 * later fold): no host kept its blocks (GC keeps the current state's contents: Tree.contents()),
 * while every host reading a fold kept the base and the extents since it. The same bytes.
 */
function shownOf (rec: InodeRec): Shown {
  if (rec.real !== undefined) return { content: rec.real.content, size: rec.size, tail: rec.tail, covered: 0, held: undefined, folded: undefined, real: undefined, least: undefined, appends: rec.appends }
  return { content: rec.content, size: rec.size, tail: rec.tail, covered: rec.covered, held: rec.held, folded: rec.folded, real: rec.real, least: rec.least, appends: rec.appends }
}

/** True when extents x (landed at xPos) and y (at yPos) hold the same bytes over [a, z). */
function sameBytes (x: Extent, xPos: number, y: Extent, yPos: number, a: number, z: number): boolean {
  if ('inline' in x.content && 'inline' in y.content) {
    const p = x.content.inline.subarray(x.at + a - xPos, x.at + z - xPos)
    const q = y.content.inline.subarray(y.at + a - yPos, y.at + z - yPos)
    for (let i = 0; i < p.byteLength; i++) if (p[i] !== q[i]) return false
    return true
  }
  // stored content: the same bytes only when it is the same content at the same alignment
  return sameContent(x.content, y.content) && x.at - xPos === y.at - yPos
}

/** A whole version alone, without extents. */
function plain (v: StoredVersion): Shown {
  return { content: v.content, size: v.size, tail: undefined, covered: 0, held: undefined, folded: undefined, real: undefined, least: undefined, appends: undefined }
}

/** True when `rec` has none of the file fields clean() takes out (no extents, appends or fold, and no key of them). */
function bare (rec: InodeRec): boolean {
  return !('tail' in rec) && !('covered' in rec) && !('real' in rec) && !('appends' in rec) && !('held' in rec) && !('folded' in rec) && !('least' in rec)
}

/** True when a Shown has no extents, appends or fold (clean() would take every field of it but content and size out). */
function bareShown (sh: Shown): boolean {
  return sh.tail === undefined && (sh.covered === undefined || sh.covered === 0) && sh.real === undefined && sh.appends === undefined && sh.held === undefined && sh.folded === undefined && sh.least === undefined
}

/** An inode record without the file fields that are empty (no appends, no fold). */
function clean (rec: InodeRec): InodeRec {
  if (!('tail' in rec && rec.tail === undefined) && !('covered' in rec && (rec.covered === 0 || rec.covered === undefined)) &&
    !('real' in rec && rec.real === undefined) && !('appends' in rec && rec.appends === undefined) &&
    !('held' in rec && rec.held === undefined) && !('folded' in rec && rec.folded === undefined) && !('least' in rec && rec.least === undefined)) return rec
  // a copy without them, keys in the same order: `delete` would turn the record into a slow
  // (dictionary) object, and every later read and copy of it would take V8's slow path
  const out: Record<string, unknown> = {}
  for (const k in rec) {
    const v = (rec as Record<string, unknown>)[k]
    if (v === undefined && (k === 'tail' || k === 'covered' || k === 'held' || k === 'folded' || k === 'real' || k === 'least' || k === 'appends')) continue
    if (k === 'covered' && v === 0) continue
    out[k] = v
  }
  return out as InodeRec
}

/** The create of an empty file (open with O_CREAT, touch, mknod): no content yet. */
function isEmptyCreate (b: OpBody): boolean {
  return b.type === 'create' && b.kind === 'file' && b.content === undefined && (b.size ?? 0) === 0
}

/** Concurrent creates of one name that are the same thing: two dirs, or equal files/links/nodes. */
function mergeable (a: InodeRec, b: InodeRec): boolean {
  if (a.kind !== b.kind) return false
  switch (a.kind) {
    case 'dir': return true
    case 'file': return a.size === b.size && sameContent(a.content, b.content)
    case 'symlink': return a.target === b.target
    case 'chr':
    case 'blk': return a.rdev === b.rdev
    default: return true
  }
}

