// Tree: the replicated metadata tree of one host. It owns the op DAG, the durable op log and
// the materialised tree (crdt.ts), and takes ops from two sides: commit() for local changes and
// receive() for ops from peers. A commit is durable in the log before it is applied, unless it
// is only written (log.ts); received ops are written, synced later.
import { CID } from 'multiformats/cid'
import { createClock, compareHlc, type Clock } from './clock.ts'
import { TreeState, ROOT, UNDO_WINDOW, MAX_DEPTH, heldRead, heldTop, publicVersion, type EntryRec, type ExtNode, type InodeRec } from './crdt.ts'
import { Dag, Heads, type DagNode } from './dag.ts'
import { baseName } from './conflicts.ts'
import { InvalidOpError, TreeClosedError } from './errors.ts'
import { openLog, type Durability, type LogCounters, type OpLog } from './log.ts'
import { checkBody, checkSignature, compareOps, createOp, decodeOp, decodeUnverified, digestInto, idOf, MAX_PARENTS, type DecodedOp } from './op.ts'
import { OpSet, RBSR_ID_BYTES } from './rbsr.ts'
import { IdLayers, IdTable } from './ids.ts'
import type { Conflict, Content, Entry, EntryId, Extent, Hlc, Inode, InodeId, Op, OpBody, OpsEventDetail, Signer, Verify, Version } from './types.ts'

/** Received ops held while their parents are missing; beyond this, further ones are dropped. */
export const MAX_PENDING_OPS = 100_000
/** Most op blocks one receive() call takes. */
export const MAX_RECEIVE_BATCH = 100_000
/**
 * Most signature checks one receive makes on the event loop (the verifier's `now`); the rest go
 * the way the verifier takes by default (net/signing.ts: libuv's thread pool). A receive checks
 * one signature per run of an author's ops given together: a hold ask's op, a gossip message of
 * one author's, a merge's whole fetch of 10,000 ops by one peer (tree.ts authenticate) each check
 * one, or a few. A hand-over to the pool and back is most of that check's time on a busy machine
 * (scripts/bench/_sqlite-costs.ts, SQLite's DELETE and WAL workloads on six hosts in one process,
 * load 9-13, seven alternating pairs: 2.1-8.1 ms a check through the pool, 0.2-1.5 ms on the
 * loop; DELETE's 315 fsyncs waited for peer holds 2.5 s before, 1.7 s after, medians), and the
 * receive holds the tree's turn (serial) meanwhile: its continuation waits for the loop, behind
 * whatever ran there (a 10,000-op merge's one check, two hosts in one process: 300-1,100 ms
 * behind the other host's receive, scripts/bench/_sync-trace.ts), and every commit and receive
 * queued on the tree with it. A large receive's own apply runs on the loop anyway (a 10,000-op
 * merge: hundreds of ms), so its few checks there cost it little. But a peer can send a message
 * of ops by as many keys it made, each its own check: capped by checks, not ops, the loop does at
 * most this many per receive whatever the ops' authors.
 */
export const VERIFY_INLINE_CHECKS = 2

export interface CommitOptions {
  /**
   * Hears a commit's ops once they are signed and handed to the log, before their sync (see
   * commitMany). Must not throw (a throw fails the commit, whose ops may still reach the log).
   */
  stamped?: (ops: Array<{ cid: CID, bytes: Uint8Array }>) => void
  /**
   * Cancels the commit while it waits for its turn (behind other commits and received batches):
   * aborted before its ops are stamped, it stamps nothing and rejects with the signal's reason
   * at once. Once stamped it is not cancelled: it goes on to the log and is applied, and the
   * commit resolves (a caller told "failed" must not see the change appear later).
   */
  signal?: AbortSignal
  /**
   * Checked in the commit's turn, right before its ops are stamped (no received op is applied
   * between the check and the stamp, so the ops' parents are the state it checked): false stamps
   * nothing and rejects with a GuardError. What a commit built from an earlier read of the tree
   * (a fold's content: node/volume.ts) needs, as its op counts every op applied by then as seen.
   */
  guard?: () => boolean
  /**
   * Stamp the batch as made at `at` (a Tree.cut() taken when the state it was built from was
   * read): its first op names that cut's heads as parents, each next one the op before it, so an
   * op received since is not in the batch's causal past and the CRDT takes the two as concurrent
   * (its rules for concurrent writes, the same on every host), where the heads at the stamp would
   * claim the batch saw it. This host's ops form a chain: with ops of this host stamped since the
   * cut, the first op names the newest of them too, applied or on its way (what it saw is then in
   * the batch's past: cutSees() tells, for a guard).
   */
  at?: Cut
}

/**
 * The heads a local op would name at one moment (Tree.cut), and this host's newest op then:
 * what a commit built from a state read then names as parents (CommitOptions.at).
 */
export interface Cut {
  readonly heads: readonly Op[]
  readonly last: string | undefined
  /**
   * The heads that were this host's ops stamped and not applied yet when the cut was taken (the
   * only ones an op applied since can be in the past of: cutSees). Absent: any of `heads`.
   */
  readonly flying?: readonly Op[]
}

/** A commit whose `guard` (CommitOptions) said no: nothing was stamped. */
export class GuardError extends Error {
  constructor () {
    super('the tree changed under the commit: nothing stamped')
    this.name = 'GuardError'
  }
}

/**
 * What a file's committed state is made of, taken with that state (Tree.fileMark): its version
 * (the heads of its writes) and its list of extents since that version. Two marks of one file
 * are alike (sameFileMark) while no version and no extent came between them (a fold may: it
 * changes no byte).
 */
export interface FileMark {
  readonly version: string
  readonly tail: ExtNode | undefined
  /** The tree's cut when the mark was taken (Tree.cut), where the taker keeps one: not compared. */
  readonly cut?: Cut
}

/** An extent's name among a file's extents: its op, and its part of a multi-extent op. */
export function extentKey (x: Extent): string {
  return x.part === undefined ? x.op : `${x.op}/${x.part}`
}

/** The names (extentKey) of the extents a mark holds. */
export function markedExtents (mark: FileMark): Set<string> {
  const had = new Set<string>()
  for (let x = mark.tail; x !== undefined; x = x.prev) had.add(extentKey(x.ext))
  return had
}

/** True when two marks of a file name the same version and the same extents. */
export function sameFileMark (a: FileMark | undefined, b: FileMark | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  if (a.version !== b.version) return false
  const x = a.tail
  const y = b.tail
  if (x === undefined || y === undefined) return x === y
  return x === y || (x.n === y.n && x.bytes === y.bytes && x.ext.op === y.ext.op && x.ext.part === y.ext.part)
}

export interface TreeInit {
  /** Directory for the op log (created if missing). */
  dir: string
  /** Signs local ops; `author` is this host's peer id string. */
  signer: Signer
  /** Checks a received op's signature against its author's public key. */
  verify: Verify
  /** Wall clock in ms (default Date.now), for tests. */
  now?: () => number
  /** Longest an op written to the log ('written' commits, received ops) waits for its sync (default WRITTEN_SYNC_MS). */
  writtenSyncMs?: number
}

export interface ReceiveResult {
  /** Ops from this batch (and earlier held ones) stored and applied now. */
  applied: number
  /** Parents that are neither known nor held: fetch them and receive them. */
  missing: CID[]
}

/**
 * Where receive() spends its time, summed over every call since open (milliseconds of wall time
 * per stage, for benchmarks and metrics): decode (hash, CID, dag-cbor, shape checks), verify
 * (signature checks), order (which ops are fresh, which are ready, in causal order), journal (log append and its
 * fdatasync), dag (DAG insert, vector clocks), crdt (slotting into the total order and applying to
 * the materialised tree, undo/redo included), events (the 'ops' event of each batch applied).
 */
export interface ReceiveStats {
  /** Op blocks received (fresh or not). */
  ops: number
  /** Ops stored and applied. */
  applied: number
  /** Signatures checked. */
  verified: number
  decodeMs: number
  verifyMs: number
  orderMs: number
  journalMs: number
  dagMs: number
  crdtMs: number
  eventsMs: number
}

export class Tree extends EventTarget {
  readonly root: InodeId = ROOT
  private readonly signer: Signer
  private readonly verify: Verify
  private readonly clock: Clock
  private readonly log: OpLog
  private readonly dag = new Dag()
  /** Every op in the DAG as (hlc wall, digest), for range-based reconciliation (rbsr.ts). */
  private readonly opIndex = new OpSet()
  private state = new TreeState()
  /**
   * Applied ops in total order; `undoAt[i]`, where op i's undo records start in the state's
   * journal (ops from `floor` on are undoable).
   */
  private applied: DagNode[] = []
  private undoAt: number[] = []
  private floor = 0
  /** Received ops waiting for parents, by id. */
  private readonly pending = new Map<string, Op>()
  /**
   * What the next local op names as parents: the DAG heads plus stamped local ops, with their ops
   * (whose CIDs are made when named: parsing one per op stamped cost more than signing it half as
   * much again, and a received op's CID is made only if a local op names it).
   */
  private readonly stampHeads = new Heads<Op>()
  private lastLocal: string | undefined
  /**
   * This host's ops stamped and not applied yet (their fsync not back), by id: what such an op
   * saw is what its parents saw (cutSees, cutParents), as the DAG does not hold it yet.
   */
  private readonly onTheirWay = new Map<string, Op>()
  /**
   * This host's ops stamped and on their way to the log, not applied yet (commitMany waits for
   * their sync): getOp gives them too, to a peer asked to hold one before it is durable here
   * (CommitOptions.stamped) that fetches its parents from this host.
   */
  private readonly unsettled = new Map<string, Uint8Array>()
  /** Inode -> this host's commits naming it, stamped and not yet applied (unapplied()). */
  private readonly inFlight = new Map<InodeId, Set<Promise<unknown>>>()
  /** The newest op of this host applied here (newestLocal()). */
  private newestLocalOp: Op | undefined
  private chain: Promise<unknown> = Promise.resolve()
  private failed: Error | undefined
  private closed = false
  private readonly stats: ReceiveStats = { ops: 0, applied: 0, verified: 0, decodeMs: 0, verifyMs: 0, orderMs: 0, journalMs: 0, dagMs: 0, crdtMs: 0, eventsMs: 0 }

  private constructor (init: TreeInit, log: OpLog) {
    super()
    this.signer = init.signer
    this.verify = init.verify
    this.clock = createClock(init.now)
    this.log = log
    this.dag.ids.add(ROOT)
  }

  /** Open (or create) the tree stored in `init.dir`, replaying its op log. */
  static async open (init: TreeInit): Promise<Tree> {
    const { log, records } = await openLog(init.dir, { writtenSyncMs: init.writtenSyncMs })
    const tree = new Tree(init, log)
    try {
      await tree.replay(records)
    } catch (err) {
      await log.close()
      throw err
    }
    return tree
  }

  private async replay (records: Uint8Array[]): Promise<void> {
    const ops: Op[] = []
    const ids = new IdLayers(new IdTable(records.length), this.dag.ids)
    for (const bytes of records) {
      try {
        ops.push(await decodeOp(bytes, undefined, ids))
      } catch {
        // a record that passed its checksum but is not an op: skip it, keep the rest
      }
    }
    const nodes: DagNode[] = []
    for (const op of ops) {
      const id = op.id
      if (this.dag.has(id) || !op.parentIds.every(p => this.dag.has(p))) continue
      nodes.push(this.dag.add(op, id))
      this.clock.observe(op.hlc)
      if (op.author === this.signer.author) {
        this.lastLocal = id
        this.newestLocalOp = op
      }
    }
    for (const h of this.dag.heads()) this.stampHeads.add([], h, (this.dag.get(h) as DagNode).op)
    // the index's items packed (no item object nor digest array per op: at 500k ops those were
    // ~134 MB more while the tree opened)
    const ts = new Float64Array(nodes.length)
    const digests = new Uint8Array(nodes.length * RBSR_ID_BYTES)
    for (let i = 0; i < nodes.length; i++) {
      ts[i] = nodes[i].op.hlc[0]
      digestInto(nodes[i].op, digests, i * RBSR_ID_BYTES)
    }
    this.opIndex.addPacked(ts, digests)
    this.rebuild()
  }

  // --- reading ---------------------------------------------------------------------------

  /** The inode (aliases of merged inodes resolve to the survivor); nlink 0 once unlinked. */
  get (id: InodeId): Inode | undefined {
    const rec = this.state.inodes.get(this.state.ri(id))
    return rec === undefined ? undefined : toInode(rec, this.state.nlink(rec))
  }

  byIno (ino: number): Inode | undefined {
    const id = this.state.byIno.get(ino)
    return id === undefined ? undefined : this.get(id)
  }

  lookup (dir: InodeId, name: string): Entry | undefined {
    const id = this.state.dirs.get(this.state.ri(dir))?.get(name)
    return id === undefined ? undefined : entry(this.state.entries.get(id) as EntryRec)
  }

  /** Live entries of a directory, by name. */
  children (dir: InodeId): Entry[] {
    const index = this.state.dirs.get(this.state.ri(dir))
    if (index === undefined) return []
    const out: Entry[] = []
    for (const id of index.values()) out.push(entry(this.state.entries.get(id) as EntryRec))
    return out.sort(byName)
  }

  /** Live entries naming an inode (hard links). */
  entries (inode: InodeId): Entry[] {
    const out: Entry[] = []
    for (const id of this.state.links.get(this.state.ri(inode)) ?? []) {
      const e = this.state.entries.get(id) as EntryRec
      if (e.live) out.push(entry(e))
    }
    return out
  }

  /** '/a/b' for a live entry, undefined otherwise. */
  path (entryId: EntryId): string | undefined {
    const s = this.state
    let e = s.entries.get(s.re(entryId))
    const names: string[] = []
    for (let depth = 0; e !== undefined && e.live && depth <= MAX_DEPTH; depth++) {
      names.push(e.name)
      if (e.parent === ROOT) return '/' + names.reverse().join('/')
      e = s.entries.get(e.parent)
    }
    return undefined
  }

  heads (): CID[] {
    return this.dag.heads().map(id => (this.dag.get(id) as DagNode).op.cid)
  }

  /** Whether the op is held: named by its CID, or by its id (idOf() of it, when the caller has it: not made again). */
  hasOp (cid: CID | string): boolean {
    return this.dag.has(typeof cid === 'string' ? cid : idOf(cid))
  }

  /** The index of the ops held, for range-based reconciliation with a peer (read only: the tree adds to it). */
  opSet (): OpSet {
    return this.opIndex
  }

  /** The author (peer id string) of an op held, checked when it came: its signature or a signed descendant's. */
  authorOf (cid: CID): string | undefined {
    return this.dag.get(idOf(cid))?.op.author
  }

  /**
   * Live files with extents (not folded yet) among which one is this host's op: the folds a host
   * had planned before a restart (a host folds the extents it wrote; Volume.resumeFolds).
   */
  filesWithOwnExtents (): InodeId[] {
    const out: InodeId[] = []
    for (const [id, rec] of this.state.inodes) {
      if (rec.kind !== 'file' || rec.tail === undefined || this.state.ri(id) !== id || this.state.nlink(rec) === 0) continue
      const extents = this.get(id)?.extents ?? []
      if (extents.some(e => this.dag.get(e.op)?.op.author === this.signer.author)) out.push(id)
    }
    return out
  }

  /** An op's block bytes, to send to a peer: named by its CID, or by its id (as hasOp()). */
  getOp (cid: CID | string): Uint8Array | undefined {
    const id = typeof cid === 'string' ? cid : idOf(cid)
    return this.dag.get(id)?.op.bytes ?? (this.unsettled.size > 0 ? this.unsettled.get(id) : undefined)
  }

  /** Every version of a file (writes and appends), oldest first (concurrent identical writes count once). */
  history (inode: InodeId): Version[] {
    return (this.state.versions.get(this.state.ri(inode)) ?? []).map(v => publicVersion(v.version))
  }

  /**
   * The bytes of one version from history(), as pieces to read: `content` then `extents`
   * (`size` in all). A write's version is its own content; an append's, the file as it was
   * right after it (its base, and the appends up to it; a multi-extent op's, after its last extent).
   */
  versionBytes (inode: InodeId, op: string): { content: Content | null, size: number, extents: Extent[] } | undefined {
    // the newest of the op's versions: a multi-extent op whose later extents branched off to a
    // conflict sibling has two in the file's history (crdt.ts addVersion), the file after its last extent is the later
    const v = (this.state.versions.get(this.state.ri(inode)) ?? []).findLast(x => x.version.of.id === op)
    if (v === undefined) return undefined
    if (v.state === undefined) return { content: v.version.content, size: v.version.size, extents: [] }
    return { content: v.state.content, size: v.state.size, extents: heldRead(v.state.tail, v.state.covered, v.state.held, v.state.size) }
  }

  /**
   * What a fold (compaction) of a file's current state builds on: `base`, the op its `fold`
   * names (the head); `content`, the content read now (`size` bytes of it hold file bytes) and
   * `extents`, the pieces read over it (heldRead: without the bytes partial folds hold), with
   * `numbers[i]`, the number of the extent (since the base) piece i is of, and `sizes[n -
   * covered - 1]`, the file's size right after extent n. The first `covered`
   * extents are in `content` everywhere, the first `top` somewhere (or, after a fold went stale
   * (crdt.ts stale()), `top` is as many as a fold must hold since); `over`, the fold whose
   * content it is (what a partial fold names). A fold holding the first c extents (c >= top,
   * c > covered: every piece numbered up to c laid over `content`) is `{ type: 'fold', base,
   * covers: c, size }`, its size `sizes[c - covered - 1]`; a partial one adds `ranges`
   * (where those pieces are laid: elsewhere it keeps `content`'s bytes) and `over`.
   * Undefined when the file has no extents to fold.
   */
  foldPoint (inode: InodeId): { base: string, content: Content | null, size: number, covered: number, top: number, over?: string, extents: Extent[], numbers: number[], sizes: number[] } | undefined {
    const id = this.state.ri(inode)
    const rec = this.state.inodes.get(id)
    const head = this.state.head.get(id)
    if (rec === undefined || rec.tail === undefined || head === undefined || head.length === 0) return undefined
    const covered = rec.covered ?? 0
    const extents = heldRead(rec.tail, covered, rec.held, rec.size)
    if (extents.length === 0) return undefined
    // each extent's number, and the file's size right after each extent since `covered`
    // by op and, for the later extents of a multi-extent op, part (an op's extents share its id)
    const byOp = new Map<string, number>()
    const baseSize = rec.size - rec.tail.bytes
    const sizes: number[] = []
    for (let x: typeof rec.tail | undefined = rec.tail; x !== undefined && x.n > covered; x = x.prev) {
      byOp.set(x.ext.part === undefined ? x.ext.op : `${x.ext.op}/${x.ext.part}`, x.n)
      sizes[x.n - covered - 1] = baseSize + x.bytes
    }
    const numbers = extents.map(x => byOp.get(x.part === undefined ? x.op : `${x.op}/${x.part}`) as number)
    const fp: { base: string, content: Content | null, size: number, covered: number, top: number, over?: string, extents: Extent[], numbers: number[], sizes: number[] } =
      { base: head[head.length - 1], content: rec.content, size: extents[0].before, covered, top: Math.max(heldTop(covered, rec.held), rec.least ?? 0), extents, numbers, sizes }
    if (rec.folded !== undefined) fp.over = rec.folded
    return fp
  }

  /** The mark of a file's committed state as it is now (FileMark); undefined for no file. */
  fileMark (inode: InodeId): FileMark | undefined {
    const id = this.state.ri(inode)
    const rec = this.state.inodes.get(id)
    if (rec === undefined || rec.kind !== 'file') return undefined
    return { version: (this.state.head.get(id) ?? []).join(','), tail: rec.tail }
  }

  /**
   * The extents of a file that came since `mark` (oldest first, landed as they are now), when
   * its version is still the mark's and every extent the mark names is still there; undefined
   * otherwise (a version came between: its bytes are not extents over the mark's).
   */
  extentsSince (inode: InodeId, mark: FileMark): Extent[] | undefined {
    const now = this.fileMark(inode)
    if (now === undefined || now.version !== mark.version) return undefined
    const had = markedExtents(mark)
    const out: Extent[] = []
    let kept = 0
    for (let x = now.tail; x !== undefined; x = x.prev) {
      if (had.has(extentKey(x.ext))) kept++
      else out.push(x.ext)
    }
    return kept === had.size ? out.reverse() : undefined
  }

  /**
   * True while an op of this host naming `inode` is stamped (its parents taken) and not yet
   * applied to the tree: a commit guarded on the file's state (CommitOptions.guard) must not
   * count on a state that op is about to change.
   */
  unapplied (inode: InodeId): boolean {
    return (this.inFlight.get(inode)?.size ?? 0) > 0
  }

  /** Resolves once every op of this host naming `inode` stamped so far is applied (or failed): unapplied() is false then, unless more came. */
  async landedFor (inode: InodeId): Promise<void> {
    const now = this.inFlight.get(inode)
    if (now !== undefined) await Promise.allSettled([...now])
  }

  /** A commit's ops (naming `named`) are applied, or failed: no longer counted as unapplied. */
  private landed (named: readonly InodeId[], landing: Promise<void>, done: () => void): void {
    for (const inode of named) {
      const set = this.inFlight.get(inode)
      set?.delete(landing)
      if (set?.size === 0) this.inFlight.delete(inode)
    }
    done()
  }

  /** How many extents since the oldest one a file still reads somewhere (every change of it walks them; 0 without extents). */
  foldSpan (inode: InodeId): number {
    const rec = this.state.inodes.get(this.state.ri(inode))
    return rec?.tail === undefined ? 0 : rec.tail.n - (rec.covered ?? 0)
  }

  /**
   * Every content the current state of a file reads or may read again (what the network keeps):
   * its read content, its base version's own content while a fold stands in for it, and every
   * append since that base, also those a fold holds (a write concurrent with the fold reads them).
   */
  contents (inode: InodeId): Content[] {
    const out: Content[] = []
    this.contentsInto(inode, out)
    return out
  }

  private contentsInto (inode: InodeId, out: Content[]): void {
    const rec = this.state.inodes.get(this.state.ri(inode))
    if (rec === undefined) return
    if (rec.content !== null) out.push(rec.content)
    if (rec.real?.content != null) out.push(rec.real.content)
    for (let x = rec.tail; x !== undefined; x = x.prev) out.push(x.ext.content)
  }

  /**
   * Every content the versions of a file's history made at `since` (ns, their time) or later
   * read (versionBytes): a write's own content; an append's extent, and the file as it read
   * right after it: the content read then (the base, or a fold standing in for it, which a later
   * fold or write may have replaced since, so contents() no longer lists it) and every extent
   * over it (also the bytes a partial fold held: a superset of heldRead's pieces). What GC must
   * keep for those versions to read back (keeper/retained.ts). Versions share the tails of
   * their extent lists: each node is walked once (down to the lowest `covered` it was asked
   * for), so a long history costs its extents, not versions times extents.
   */
  versionContents (inode: InodeId, since = 0n): Content[] {
    const out: Content[] = []
    this.versionContentsInto(inode, since, out)
    return out
  }

  private versionContentsInto (inode: InodeId, since: bigint, out: Content[]): void {
    /** extent node -> the `covered` a walk through it went down to */
    let walked: Map<ExtNode, number> | undefined
    for (const v of this.state.versions.get(this.state.ri(inode)) ?? []) {
      if (v.version.time < since) continue
      if (v.version.content !== null) out.push(v.version.content)
      const st = v.state
      if (st === undefined) continue
      if (st.content !== null) out.push(st.content)
      for (let x = st.tail; x !== undefined && x.n > st.covered; x = x.prev) {
        walked ??= new Map()
        const down = walked.get(x)
        if (down !== undefined && down <= st.covered) break
        walked.set(x, st.covered)
        out.push(x.ext.content)
      }
    }
  }

  /**
   * Every content of every live inode, current and in history since `since` (ns): what
   * keeper/retained.ts retainedContents() lists for GC and repair. A walk from the root through
   * each directory's live entries by name (children()'s order), each inode once (by the inode its
   * entry names): a file's contents() then its versionContents(since), any other inode's own
   * content. Read from the state's records as they are: the same walk through get(), children(),
   * contents() and versionContents() copied every record and entry it passed, and made arrays
   * for each file (a repair pass after a merge of 10k vs 10k ops walks 20,000 files: ~30 MB).
   */
  liveContents (since = 0n): Content[] {
    const s = this.state
    const out: Content[] = []
    const stack: InodeId[] = [this.root]
    const seen = new Set<InodeId>()
    const kids: EntryRec[] = []
    while (stack.length > 0) {
      const index = s.dirs.get(s.ri(stack.pop() as InodeId))
      if (index === undefined) continue
      kids.length = 0
      for (const id of index.values()) kids.push(s.entries.get(id) as EntryRec)
      kids.sort(byName)
      for (const e of kids) {
        if (seen.has(e.inode)) continue
        seen.add(e.inode)
        const rec = s.inodes.get(s.ri(e.inode))
        if (rec === undefined) continue
        if (rec.kind === 'dir') { stack.push(rec.id); continue }
        if (rec.kind !== 'file') { if (rec.content !== null) out.push(rec.content); continue }
        this.contentsInto(rec.id, out)
        this.versionContentsInto(rec.id, since, out)
      }
    }
    return out
  }

  /** Live conflict siblings. */
  conflicts (): Conflict[] {
    const out: Conflict[] = []
    for (const [id, c] of this.state.conflicts) {
      const e = this.state.entries.get(id)
      const path = e !== undefined && e.live ? this.path(id) : undefined
      if (e === undefined || path === undefined) continue
      const conflict: Conflict = { path, entry: id, inode: e.inode, of: c.of, author: c.author, time: c.time }
      const head = this.state.head.get(e.inode)
      if (head !== undefined && head.length > 0) conflict.head = head[0]
      out.push(conflict)
    }
    return out
  }

  /**
   * The live conflict siblings of the live entry `entry` (what `darkfs resolve PATH` settles):
   * conflicts in its directory that lost the name to its inode, or carry its name as their base.
   */
  conflictsOf (entry: EntryId): Conflict[] {
    const s = this.state
    const e = s.entries.get(s.re(entry))
    if (e === undefined || !e.live) return []
    return this.conflicts().filter(c => {
      const sib = s.entries.get(c.entry) as EntryRec
      return sib.id !== e.id && sib.parent === e.parent && (s.ri(c.of) === e.inode || baseName(sib.name) === e.name)
    })
  }

  /**
   * This host's newest op (committed here, or found in the log at open), if any. This host's ops
   * form a chain, so a peer that holds it holds every one before it.
   */
  newestLocal (): CID | undefined {
    return this.newestLocalOp?.cid
  }

  /** Number of ops known (applied). */
  get size (): number {
    return this.dag.size
  }

  // --- writing ---------------------------------------------------------------------------

  /**
   * Stamp (hlc, parents), sign, append durably, then apply a local op. `id` is the created
   * inode (create) or entry (link), else the op's target entry or inode.
   */
  async commit (body: OpBody, durability: Durability = 'durable'): Promise<{ cid: CID, id: InodeId }> {
    return (await this.commitMany([body], durability))[0]
  }

  /** Resolves once every op committed or received before the call is durable in the log. */
  async sync (): Promise<void> {
    this.usable()
    await this.log.sync().catch((err: Error) => {
      this.failed ??= err
      throw err
    })
  }

  /**
   * Resolves once every op committed or received before the call is written to the log (in the
   * kernel: it survives this process being killed, not a power cut; synced within
   * WRITTEN_SYNC_MS, or with the next sync). What a hold answers on (node/net/sync.ts holdFor).
   */
  async written (): Promise<void> {
    this.usable()
    await this.log.written().catch((err: Error) => {
      this.failed ??= err
      throw err
    })
  }

  /** The op log's syncs so far and the bytes it holds written but not synced. */
  logCounters (): LogCounters {
    return this.log.counters()
  }

  /**
   * commit() of several bodies at once, in order (each the parent of the next): one log append,
   * one fdatasync, for a request that makes two ops (a flush and the times it sets). Nothing of
   * the batch is applied unless all of it is durable, or with `durability` 'written', written
   * to the log (log.ts: synced with the next durable commit, a sync(), or within
   * WRITTEN_SYNC_MS). `stamped` hears the batch's ops (CID and block) once they are signed and
   * handed to the log, before their sync: an fsync asks a peer to hold its op meanwhile
   * (getOp gives them from then on).
   */
  async commitMany (bodies: OpBody[], durability: Durability = 'durable', opts: CommitOptions = {}): Promise<Array<{ cid: CID, id: InodeId }>> {
    this.usable()
    const signal = opts.signal
    signal?.throwIfAborted()
    let stamping = false
    // the inodes the batch names change until it is applied (unapplied()): counted from its stamp
    const named = [...new Set(bodies.flatMap(b => 'inode' in b && typeof b.inode === 'string' ? [b.inode] : []))]
    let done!: () => void
    const landing = new Promise<void>(resolve => { done = resolve })
    const turn = this.serial(async () => {
      this.usable()
      // cancelled while it waited: nothing stamped (the caller was told so at the abort)
      signal?.throwIfAborted()
      stamping = true
      // every body checked before any is stamped: a bad one leaves the heads as they were
      for (const body of bodies) checkBody(body)
      if (opts.guard !== undefined && !opts.guard()) throw new GuardError()
      const ops: Op[] = []
      // stamped at a cut: the first op over its heads, each next one over the op before it
      let at = opts.at !== undefined ? this.cutParents(opts.at) : undefined
      for (const body of bodies) {
        const hlc = this.clock.tick()
        const op = await createOp(this.signer, body, hlc, at ?? this.parentsForStamp())
        if (at !== undefined) at = [op.cid]
        const id = op.id
        this.stampHeads.add(op.parentIds, id, op)
        this.lastLocal = id
        this.onTheirWay.set(id, op)
        ops.push(op)
      }
      for (const inode of named) {
        let set = this.inFlight.get(inode)
        if (set === undefined) this.inFlight.set(inode, set = new Set())
        set.add(landing)
      }
      const durable = this.log.append(ops.map(op => op.bytes), durability).catch((err: Error) => {
        this.failed ??= err
        throw err
      })
      if (opts.stamped !== undefined) for (const op of ops) this.unsettled.set(op.id, op.bytes)
      return { ops, durable }
    })
    const { ops, durable } = signal === undefined ? await turn : await new Promise<Awaited<typeof turn>>((resolve, reject) => {
      // an abort while the commit waits for its turn rejects now; its turn then stamps nothing
      const onAbort = (): void => { if (!stamping) reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
      turn.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
    })
    try {
      opts.stamped?.(ops.map(op => ({ cid: op.cid, bytes: op.bytes })))
      await durable
      this.integrate(ops, true)
    } finally {
      if (opts.stamped !== undefined) for (const op of ops) this.unsettled.delete(op.id)
      for (const op of ops) this.onTheirWay.delete(op.id)
      this.landed(named, landing, done)
    }
    return ops.map(op => {
      const b = op.body
      const id = b.type === 'create' || b.type === 'link' ? op.id : 'entry' in b ? b.entry : b.inode
      return { cid: op.cid, id }
    })
  }

  /**
   * Ops from a peer. Every block is decoded (bounded), hash-named and signature-checked first;
   * if any is invalid, InvalidOpError is thrown and none of the batch is stored. Valid ops whose
   * parents are known (or in the batch) are stored (fsync) and applied, in any order; the rest
   * are held, and their unknown parents returned in `missing`.
   * `named[i]`: the CID and id of `blocks[i]` when the caller derived them from those bytes
   * (cidOf(), idOf()), as sync does to tell which ops it fetched are fresh: not hashed again.
   */
  async receive (blocks: Uint8Array[], named?: ReadonlyArray<{ cid: CID, id: string }>): Promise<ReceiveResult> {
    this.usable()
    if (!Array.isArray(blocks) || blocks.length > MAX_RECEIVE_BATCH) throw new InvalidOpError(`a batch holds at most ${MAX_RECEIVE_BATCH} ops`)
    if (named !== undefined && named.length !== blocks.length) throw new TypeError('receive: one name per block')
    const stats = this.stats
    const t0 = performance.now()
    // the ops of the batch name known ops, and each other, by the strings kept for them (ids.ts)
    const ids = new IdLayers(new IdTable(blocks.length), this.dag.ids)
    // the DAG only grows: while it holds as many ops as now, an op fresh at decoding is still fresh
    const dagSize = this.dag.size
    const decoded = named === undefined ? blocks.map(b => decodeUnverified(b, undefined, ids)) : blocks.map((b, i) => decodeUnverified(b, named[i], ids))
    stats.ops += decoded.length
    stats.decodeMs += performance.now() - t0
    return await this.serial(async () => {
      this.usable()
      let t = performance.now()
      const g = this.candidates(decoded, this.dag.size === dagSize)
      const { ops, held, parents, start } = g
      const n = ops.length
      stats.orderMs += performance.now() - t
      t = performance.now()
      if (n > held) await this.authenticate(g)
      // what the checks needed (a wrapper and a signature view per op) is let go before the ops
      // are applied: a merge's young-generation collections run while it applies them, and
      // would copy it all (nearly everything a large receive allocates lives on: the ops, the
      // DAG's nodes, the tree's new records)
      decoded.length = 0
      g.checks.length = 0
      stats.verifyMs += performance.now() - t
      t = performance.now()
      // which ops are ready (all parents known or ready), parents first: Kahn's order over the
      // candidates, by their numbers (no map per op: a merge brings thousands)
      const blocked = g.blocked
      const childStart = new Int32Array(n + 1)
      for (let i = 0; i < n; i++) childStart[i + 1] = childStart[i] + g.kids[i]
      const fill = childStart.slice(0, n)
      const children = new Int32Array(childStart[n])
      for (let i = 0; i < n; i++) {
        for (let k = start[i]; k < start[i + 1]; k++) {
          const j = parents[k]
          if (j >= 0) children[fill[j]++] = i
        }
      }
      const queue: number[] = []
      for (let i = 0; i < n; i++) if (blocked[i] === 0) queue.push(i)
      const ready: Op[] = []
      const isReady = new Uint8Array(n)
      while (queue.length > 0) {
        const i = queue.pop() as number
        const op = ops[i]
        // causality: an op's clock is past its parents' (so total order respects causality)
        let late = false
        for (let k = start[i]; k < start[i + 1] && !late; k++) {
          const j = parents[k]
          const hlc = j >= 0 ? ops[j].hlc : (this.dag.get(op.parentIds[k - start[i]]) as DagNode).op.hlc
          late = compareHlc(hlc, op.hlc) >= 0
        }
        if (late) {
          if (i >= held) throw new InvalidOpError('its hlc is not after its parents\'', op.id)
          this.pending.delete(op.id)
          continue
        }
        ready.push(op)
        isReady[i] = 1
        for (let k = childStart[i]; k < childStart[i + 1]; k++) {
          const c = children[k]
          if (--blocked[c] === 0) queue.push(c)
        }
      }
      stats.orderMs += performance.now() - t
      t = performance.now()
      // written, not synced: a peer's op is durable here with the next sync (an op held for a
      // peer's fsync too: the asker's own disk has it already, node/net/sync.ts holdFor). The
      // write is queued now and runs while the ops are applied: the log takes records in order,
      // so anything appended, synced or waited for after this (a local op naming these as
      // parents, a hold's written()) is behind them in the file. receive() returns once the
      // write is done; a failed write fails the tree (usable(): every later call refuses), its
      // ops applied in memory by then.
      let written: Promise<void> | undefined
      if (ready.length > 0) {
        written = this.log.append(ready.map(op => op.bytes), 'written').catch((err: Error) => {
          this.failed ??= err
          throw err
        })
      }
      stats.journalMs += performance.now() - t
      t = performance.now()
      // (no lookup per op when nothing was held: most receives)
      if (this.pending.size > 0) for (let i = 0; i < ready.length; i++) this.pending.delete(ready[i].id)
      // fresh ops not ready wait for their parents (held ones not ready are still held)
      for (let i = held; i < n && this.pending.size < MAX_PENDING_OPS; i++) {
        if (isReady[i] === 0) this.pending.set(ops[i].id, ops[i])
      }
      stats.orderMs += performance.now() - t
      try {
        this.integrate(ready, false)
      } catch (err) {
        await written?.catch(() => {}) // ignored: the apply's failure is the one to report (a failed write set this.failed too)
        throw err
      }
      t = performance.now()
      await written
      stats.journalMs += performance.now() - t
      stats.applied += ready.length
      t = performance.now()
      const missing = new Map<string, CID>()
      for (const op of this.pending.values()) {
        for (let i = 0; i < op.parentIds.length; i++) {
          const s = op.parentIds[i]
          if (!this.dag.has(s) && !missing.has(s) && !this.pending.has(s)) missing.set(s, CID.parse(s))
        }
      }
      stats.orderMs += performance.now() - t
      return { applied: ready.length, missing: [...missing.values()] }
    })
  }

  /**
   * The ops a receive() considers, numbered: the held ones first (`held` of them), then the fresh
   * ones of `decoded` (not known, not held, not twice), with the parent links among them.
   */
  private candidates (decoded: DecodedOp[], sure: boolean): Candidates {
    const ops: Op[] = []
    const checks: Array<DecodedOp | undefined> = []
    // candidate i is the id table's string i (an IdTable, not a Map keyed by the ids: most are
    // fresh strings, which a Map would internalize, ~1.4 us each in a merge: IdTable.indexOf)
    const index = new IdTable(this.pending.size + decoded.length)
    for (const op of this.pending.values()) {
      index.add(op.id)
      ops.push(op)
      checks.push(undefined)
    }
    const held = ops.length
    let links = 0
    for (let i = 0; i < decoded.length; i++) {
      const d = decoded[i]
      // an op already known is those very bytes (same CID), checked when it came
      // (`sure`: the DAG is as it was when the batch was decoded, so an op not in its id table
      // then, `fresh`, is not in it now: no lookup of a new string that would miss)
      if (index.has(d.id) || (!(sure && d.fresh === true) && this.dag.has(d.id))) continue
      index.add(d.id)
      ops.push(d.op)
      checks.push(d)
    }
    const n = ops.length
    for (let i = 0; i < n; i++) links += ops[i].parentIds.length
    const parents = new Int32Array(links)
    const start = new Int32Array(n + 1)
    const blocked = new Int32Array(n)
    const kids = new Int32Array(n)
    let k = 0
    for (let i = 0; i < n; i++) {
      start[i] = k
      const ids = ops[i].parentIds
      for (let p = 0; p < ids.length; p++) {
        const j = index.indexOf(ids[p])
        if (j >= 0) {
          parents[k++] = j
          kids[j]++
          blocked[i]++
        } else if (this.dag.has(ids[p])) {
          parents[k++] = KNOWN
        } else {
          parents[k++] = MISSING
          blocked[i]++
        }
      }
    }
    start[n] = k
    return { ops, checks, held, parents, start, blocked, kids }
  }

  /**
   * Check that every fresh op of the candidates (the held ones were checked when they came) was
   * made by its author; throws InvalidOpError at the first that was not. An op is its author's
   * when its signature verifies, or when it is in the causal past of an op of the same author
   * that is its author's: that op's signed bytes name its parents by hash, theirs name theirs,
   * so the author's one signature covers every byte of its ancestors, and so vouches for each of
   * them that claims that author (an op claiming another author is checked on its own, or
   * vouched for by that author). The ops are walked newest first, so a run of one author's ops
   * costs one signature check at its newest, not one per op; a forged or altered op is named by
   * no signed op (altering it changes its hash), so its own signature is checked, and fails.
   */
  private async authenticate (g: Candidates): Promise<void> {
    const { ops, checks, parents, start } = g
    const n = ops.length
    // at most VERIFY_INLINE_CHECKS checks on this thread, whatever the receive's size; the rest
    // the verifier's own way
    const now = this.verify.now
    let inline = now !== undefined ? VERIFY_INLINE_CHECKS : 0
    const verify: Verify = now === undefined || inline === 0 ? this.verify : async (a, b, s) => (inline-- > 0 ? now(a, b, s) : undefined) ?? await this.verify(a, b, s)
    /** children among the candidates not walked yet */
    const left = g.kids.slice()
    /** the authors whose checked ops have it in their causal past (sets shared, never changed) */
    const vouched: Array<ReadonlySet<string> | undefined> = new Array(n)
    const queue: number[] = []
    for (let i = 0; i < n; i++) if (left[i] === 0) queue.push(i)
    while (queue.length > 0) {
      const i = queue.pop() as number
      const op = ops[i]
      let by = vouched[i] ?? NOBODY
      if (!by.has(op.author)) {
        const d = checks[i]
        if (d !== undefined) {
          await checkSignature(d, verify)
          this.stats.verified++
        }
        by = new Set(by).add(op.author)
      }
      vouched[i] = undefined
      for (let k = start[i]; k < start[i + 1]; k++) {
        const j = parents[k]
        if (j < 0) continue
        const have = vouched[j]
        if (have === undefined) vouched[j] = by
        else if (have !== by && ![...by].every(a => have.has(a))) vouched[j] = new Set([...have, ...by])
        if (--left[j] === 0) queue.push(j)
      }
    }
  }

  /** Where receive() spent its time since open (a copy). */
  receiveStats (): ReceiveStats {
    return { ...this.stats }
  }

  /** Wait for in-flight commits, then close the log. Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    // ignored: each queued call's failure went to its own caller (serial)
    await this.chain.catch(() => {})
    await this.log.close()
  }

  // --- internals -------------------------------------------------------------------------

  private usable (): void {
    if (this.closed) throw new TreeClosedError()
    this.failed ??= this.log.failure()
    if (this.failed !== undefined) throw this.failed
  }

  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    // one call after the other, whatever the previous one did: its failure went to its own caller
    const run = this.chain.then(fn, fn)
    this.chain = run.catch(() => {}) // ignored here for the same reason: `run` is returned
    return await run
  }

  /**
   * The heads a local op would name now, and this host's newest op: a commit built from what is
   * read now and stamped later names these (CommitOptions.at), not the heads at its stamp.
   */
  cut (): Cut {
    const heads = this.stampHeads.keys().map(id => this.stampHeads.get(id) as Op)
    return { heads, last: this.lastLocal, flying: heads.filter(op => !this.dag.has(op.id)) }
  }

  /** True when an op of this host was stamped since `cut` was taken. */
  stampedSince (cut: Cut): boolean {
    return this.lastLocal !== cut.last
  }

  /**
   * True when a commit stamped at `cut` now (CommitOptions.at) would have one of the ops `ids`
   * (ops applied since the state the cut goes with was read) in its causal past: one of the cut's
   * heads is it or saw it (an op of this host stamped, not applied, when the cut was taken), or
   * this host's newest op, stamped since the cut, is it or saw it. An op of this host not applied
   * yet saw what its parents saw (an op stamped before one of `ids` arrived did not see it, its
   * fsync back or not).
   */
  cutSees (cut: Cut, ids: Iterable<string>): boolean {
    // A head applied when the cut was taken was in the state read then, and so was its past: an
    // op applied since (each of `ids`) is in none of theirs. Only the heads on their way then,
    // and this host's newest op stamped since, are walked: once, through the ops still on their
    // way, to the applied ops their past enters the DAG by (review37j: every id against every
    // head, a walk each, was 26 ms for 12,800 ids and 16 heads, in the tree's serial turn)
    const starts = (cut.flying ?? cut.heads).map(op => op.id)
    if (this.stampedSince(cut)) starts.push(this.lastLocal as string)
    if (starts.length === 0) return false
    // `reached`: the starts and every op walked from them (each is seen); `entries`: the applied
    // ones, whose causal past is seen too
    const reached = new Set<string>()
    const entries: DagNode[] = []
    let unknown = false
    const stack = [...starts]
    while (stack.length > 0) {
      const x = stack.pop() as string
      if (reached.has(x)) continue
      reached.add(x)
      const n = this.dag.get(x)
      if (n !== undefined) {
        entries.push(n)
        continue
      }
      const op = this.onTheirWay.get(x)
      // (an op neither applied nor on its way counts as seen: below())
      if (op === undefined) unknown = true
      else stack.push(...op.parentIds)
    }
    const checked = new Set<string>()
    for (const id of ids) {
      if (checked.has(id)) continue
      checked.add(id)
      // (a start that is `id` is it; one of its parents walked that is `id`, it saw it)
      if (unknown || reached.has(id)) return true
      const target = this.dag.get(id)
      if (target !== undefined && entries.some(n => this.dag.before(target, n))) return true
    }
    return false
  }

  /**
   * True when op `id` is in the causal past of this host's op `of` (a strict ancestor): `of`
   * applied, or stamped and on its way (its past then its parents' and theirs: the ops on their
   * way are this host's newest few, each walked once). An op neither known nor on its way counts
   * as seen.
   */
  private below (id: string, of: string): boolean {
    const target = this.dag.get(id)
    const walked = new Set<string>()
    const reaches = (x: string): boolean => {
      if (x === id) return true
      const n = this.dag.get(x)
      if (n !== undefined) return target !== undefined && this.dag.before(target, n)
      if (walked.has(x)) return false
      walked.add(x)
      const op = this.onTheirWay.get(x)
      return op === undefined || op.parentIds.some(reaches)
    }
    const n = this.dag.get(of)
    if (n !== undefined) return target !== undefined && this.dag.before(target, n)
    const op = this.onTheirWay.get(of)
    return op === undefined || op.parentIds.some(reaches)
  }

  /**
   * The parents of an op stamped at `cut`: its heads, and this host's newest op when stamped
   * since (the heads in that one's past left out, that op applied or on its way): this host's
   * ops stay one chain.
   */
  private cutParents (cut: Cut): CID[] {
    let heads = cut.heads
    const newest = this.lastLocal
    if (this.stampedSince(cut) && newest !== undefined) {
      const last = this.dag.get(newest)?.op ?? this.onTheirWay.get(newest) ?? this.stampHeads.get(newest)
      if (last === undefined) throw new Error(`this host's newest op ${newest} is neither applied nor on its way`)
      heads = [...heads.filter(op => op.id !== newest && !this.below(op.id, newest)), last]
    }
    let ops = [...heads].sort(byId)
    if (ops.length > MAX_PARENTS) {
      const keep = ops.filter(op => op.id === newest)
      ops = keep.concat(ops.filter(op => op.id !== newest).slice(0, MAX_PARENTS - keep.length)).sort(byId)
    }
    return ops.map(op => op.cid)
  }

  private parentsForStamp (): CID[] {
    let ids = this.stampHeads.keys().sort()
    if (ids.length > MAX_PARENTS) {
      const keep = ids.filter(id => id === this.lastLocal)
      ids = keep.concat(ids.filter(id => id !== this.lastLocal).slice(0, MAX_PARENTS - keep.length)).sort()
    }
    return ids.map(id => (this.stampHeads.get(id) as Op).cid)
  }

  /** Add persisted ops (parents first) to the DAG and the materialised tree, then announce them. */
  private integrate (ops: Op[], local: boolean): void {
    let t = performance.now()
    const nodes: DagNode[] = []
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]
      const id = op.id
      if (this.dag.has(id)) continue
      nodes.push(this.dag.add(op, id))
      // (the digest written into a scratch array: the index copies it)
      digestInto(op, digestScratch, 0)
      this.opIndex.add(op.hlc[0], digestScratch)
      this.clock.observe(op.hlc)
      if (local) this.newestLocalOp = op
      if (!local) {
        this.stampHeads.add(op.parentIds, id, op)
      }
    }
    if (!local) this.stats.dagMs += performance.now() - t
    if (nodes.length === 0) return
    t = performance.now()
    this.insert(nodes)
    if (!local) this.stats.crdtMs += performance.now() - t
    t = performance.now()
    // one event for the batch (insert() sorted `nodes` into total order: the order they are told
    // in): one per op cost a merge 30-43 ms per 10k ops in EventTarget's dispatch to ~6 listeners
    const applied: Op[] = new Array(nodes.length)
    for (let i = 0; i < nodes.length; i++) applied[i] = nodes[i].op
    const detail: OpsEventDetail = { local, ops: applied }
    this.dispatchEvent(new CustomEvent('ops', { detail }))
    if (!local) this.stats.eventsMs += performance.now() - t
  }

  /** Slot new ops into the total order: apply at the end, or undo back to them and redo. */
  private insert (nodes: DagNode[]): void {
    nodes.sort(byKey)
    const first = nodes[0].op
    let lo = 0
    let hi = this.applied.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareOps(this.applied[mid].op, first) < 0) lo = mid + 1
      else hi = mid
    }
    const pos = lo
    if (pos < this.floor) {
      this.applied.push(...nodes)
      this.rebuild()
      return
    }
    // the records of the ops from pos on are the journal's last, oldest first: undone newest first
    if (pos < this.applied.length) this.state.j.undoTo(this.undoAt[pos])
    const tail = this.applied.splice(pos)
    this.undoAt.splice(pos)
    const merged = tail.length === 0 ? nodes : mergeSorted(tail, nodes)
    for (let i = 0; i < merged.length; i++) this.applyOne(merged[i], true)
    this.trim()
  }

  /** Materialise from scratch: every known op, in total order. */
  private rebuild (): void {
    this.state = new TreeState()
    const all = this.dag.nodes().sort(byKey)
    this.applied = []
    this.undoAt = []
    this.floor = Math.max(0, all.length - UNDO_WINDOW)
    for (let i = 0; i < all.length; i++) this.applyOne(all[i], i >= this.floor)
  }

  private applyOne (node: DagNode, record: boolean): void {
    this.undoAt.push(this.state.j.mark())
    this.state.apply(node, this.dag, record)
    this.applied.push(node)
  }

  private trim (): void {
    if (this.applied.length - this.floor <= UNDO_WINDOW) return
    this.floor = this.applied.length - UNDO_WINDOW
    // the ops below the floor are never undone: their records go
    this.state.j.forget(this.undoAt[this.floor])
  }
}

/** Ops by id (parents are named sorted). */
function byId (a: Op, b: Op): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

const NOBODY: ReadonlySet<string> = new Set()

/** Where integrate() writes each op's digest for the reconciliation index (which copies it). */
const digestScratch = new Uint8Array(RBSR_ID_BYTES)

/** A parent link (Candidates.parents) to an op the DAG holds, or to one neither held nor given. */
const KNOWN = -1
const MISSING = -2

/**
 * The ops one receive() considers, by number (Tree.candidates): `ops[i]`, with `checks[i]` what
 * its signature check needs (fresh ops; undefined for the first `held`, held since an earlier
 * call). Op i's parents are `parents[start[i]]` to `parents[start[i + 1] - 1]`, in its own
 * order: a candidate's number, KNOWN or MISSING; `blocked[i]`, how many of them are not known
 * (candidates or missing); `kids[i]`, how many candidates name op i as a parent.
 */
interface Candidates {
  ops: Op[]
  checks: Array<DecodedOp | undefined>
  held: number
  parents: Int32Array
  start: Int32Array
  blocked: Int32Array
  kids: Int32Array
}

function toInode (rec: InodeRec, nlink: number): Inode {
  const { tail, covered, held, folded, real, least, appends, ...rest } = rec
  const inode: Inode = { ...rest, nlink }
  if (tail !== undefined && tail.n > (covered ?? 0)) {
    const extents = readOf(rec)
    if (extents.length > 0) inode.extents = extents
  }
  return inode
}

/**
 * The extents a file record reads: heldRead() keeps them with the list's head, once per state,
 * and makes a new state's from the last one (not per record: records of past states live on in
 * the undo journal, and each would keep its array of every extent alive).
 */
function readOf (rec: InodeRec): Extent[] {
  return heldRead(rec.tail, rec.covered ?? 0, rec.held, rec.size)
}

/** Entries by name: children()'s order, and liveContents()'s walk. */
function byName (a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

function entry (e: EntryRec): Entry {
  return { id: e.id, parent: e.parent, name: e.name, inode: e.inode }
}

/** Ops in total order (op.ts compareOps). */
function byKey (a: DagNode, b: DagNode): number {
  return compareOps(a.op, b.op)
}

function mergeSorted (a: DagNode[], b: DagNode[]): DagNode[] {
  // sized at once (a merge's list is tens of thousands long: grown by push, it was copied as it grew)
  const out: DagNode[] = new Array(a.length + b.length)
  let i = 0
  let j = 0
  let k = 0
  while (i < a.length && j < b.length) out[k++] = byKey(a[i], b[j]) <= 0 ? a[i++] : b[j++]
  while (i < a.length) out[k++] = a[i++]
  while (j < b.length) out[k++] = b[j++]
  return out
}
