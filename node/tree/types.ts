// The shapes of the replicated metadata tree (DESIGN.md §2): inodes, directory entries, ops.
// Times are bigint nanoseconds since the epoch. Ids are the string form of op CIDs.
import type { CID } from 'multiformats/cid'
import type { Kind } from '../types.ts'

export type { Kind }

/** An inode's stable id: the string form of the CID of the op that created it; the root is 'root'. */
export type InodeId = string
/** A directory entry's stable id: the CID string of the op that made it (a dir's entry id = its inode id). */
export type EntryId = string

/**
 * A file's bytes: inline (tiny files) or a manifest block (DESIGN.md §2). `sum`: the identity
 * of the bytes whatever manifest stores them (node/data contentSum: k/m, fragments, holes and
 * manifest version left out), set by writers since it exists; identical content is one version
 * when the sums are equal, or, for content without a sum, when the manifests are (sameContent).
 */
export type Content = { inline: Uint8Array } | { manifest: CID, sum?: CID }

export type OpBody =
  | { type: 'create', parent: InodeId, name: string, kind: Kind, mode: number, uid: number, gid: number, rdev?: number, target?: string, content?: Content, size?: number, time: bigint }
  | { type: 'link', parent: InodeId, name: string, inode: InodeId, time: bigint }
  /** Rename; `replace` = the entry at the destination, unlinked in the same op (rename over). */
  | { type: 'move', entry: EntryId, parent: InodeId, name: string, replace?: EntryId, time: bigint }
  | { type: 'unlink', entry: EntryId, time: bigint }
  /** ctime = time */
  | { type: 'setattr', inode: InodeId, mode?: number, uid?: number, gid?: number, atime?: bigint, mtime?: bigint, time: bigint }
  /**
   * A new version; mtime = ctime = time. `first`: the first content of a file this author
   * created empty (`inode` is that create op) in the same open: the empty create and this
   * write are one version, not two.
   */
  | { type: 'write', inode: InodeId, content: Content | null, size: number, first?: true, time: bigint }
  /**
   * Bytes added at the end of a file through O_APPEND (DESIGN.md §6): they land after the file's
   * base version, whatever other hosts wrote or appended meanwhile, and never conflict. The
   * appended bytes are bytes [at, at + size) of `content`: inline content holds exactly them
   * (at = 0); a manifest is the writer's file as it saw it, the chunks before `at`'s a hole.
   * `first`: as for a write, the first bytes of a file this author created empty in the same open.
   * `offset` (issue 15, positioned extents): the file position where the bytes land, instead of
   * the end: a pwrite made durable by one fsync without rewriting its chunk. The file's size then
   * becomes max(size, offset + size). Such an extent lands like an append (after the base, in
   * total order with the others, newest wins per byte); a manifest holding its bytes is any content
   * they are bytes [at, at + size) of (the writer packs the ranges of one commit into one content).
   * One op type for both: an append is the extent whose position is the file's end when it lands,
   * and every rule (what a write saw, folds, unlink) is the same; a host without positioned
   * extents refuses an op with `offset` (unknown field) rather than reading it as an append.
   * `more` (issue 15 item 1, multi-extent ops): further positioned extents of the same file in
   * the same op (only with `offset`), landing after the first one, in list order: the ranges one
   * fsync made durable, one op, one signature, one log write and one gossip message for all of
   * them. Every rule reads it as the same extents made by consecutive ops of its author in that
   * order (each seeing the ones before it): newest wins per byte in that order, each extent is
   * one Extent of the file (`part`: its index in the op), and the op is one version of the file
   * (history, versionBytes: the file after its last extent). At most MAX_OP_EXTENTS in all (op.ts).
   */
  | { type: 'append', inode: InodeId, content: Content, at: number, size: number, offset?: number, more?: MoreExtent[], first?: true, time: bigint }
  /**
   * A compaction: `content` holds the bytes of the version `base` (an op of the file's current
   * head) followed by the file's first `covers` appends since it, `size` bytes in all. It adds
   * no bytes and no version: the tree reads it in place of those pieces when it matches them
   * exactly (those appends all in its causal past, `base` still the head), and ignores it otherwise.
   * A partial fold (issue 15 item 2) holds them only over `ranges` (flat [from, to) pairs, in
   * increasing order: the chunks worth rewriting); elsewhere `content` holds the bytes of the
   * content the file read when it was made, that of the fold `over` (absent: the base version's
   * own), and the extents it covers are still read there. It is read only while that content is.
   */
  | { type: 'fold', inode: InodeId, base: string, covers: number, content: Content | null, size: number, ranges?: number[], over?: string, time: bigint }
  | { type: 'setxattr', inode: InodeId, name: string, value: Uint8Array, time: bigint }
  /**
   * A user settles the conflict siblings of the file `inode` holds at its name (`darkfs
   * resolve`): with `keep: 'holder'` they go (unlinked; their versions join `inode`'s history),
   * with `keep: 'both'` each stays as a plain file under a name of its own (conflictKeptName).
   * `siblings`: the conflict entries the user saw, each with the op of the version it showed
   * (`head`, files only). A sibling is settled only while it still shows exactly that version
   * (a write to it, or a branch switch showing another version in it, that the resolver did
   * not see keeps it a conflict), and only while `inode` is still linked.
   * Keeping a sibling's content (`--keep SIBLING`) is a `write` of it to `inode` followed by a
   * resolve with `keep: 'holder'`, in one batch.
   */
  | { type: 'resolve', inode: InodeId, keep: 'holder' | 'both', siblings: ResolvedSibling[], time: bigint }
  | { type: 'removexattr', inode: InodeId, name: string, time: bigint }

export type OpType = OpBody['type']

/** One more positioned extent of an `append` op (its `more`): bytes [at, at + size) of `content` land at `offset`. */
export interface MoreExtent { content: Content, at: number, size: number, offset: number }

/** One conflict sibling a `resolve` op settles: its entry and the version it showed. */
export interface ResolvedSibling { entry: EntryId, head?: string }

/** Hybrid logical clock stamp: [wall clock ms, counter]. */
export type Hlc = [number, number]

/**
 * A decoded, verified op. `bytes` is its dag-cbor block, `cid` its CIDv1 (dag-cbor, sha256),
 * `digest` that CID's sha-256 digest (32 bytes). The total order of ops is op.ts compareOps();
 * the signature is in `bytes` (op.ts DecodedOp has it while it is checked).
 */
export interface Op {
  readonly cid: CID
  /** cid.toString(), made once. */
  id: string
  /** The parents' CID strings (op.ts parentCids() gives their CIDs: an op keeps no CID objects for them). */
  parentIds: string[]
  readonly digest: Uint8Array
  bytes: Uint8Array
  body: OpBody
  author: string
  hlc: Hlc
}

/**
 * Bytes one `append` op added after a file's base version: bytes [at, at + size) of `content`.
 * `op` is the append's op id; `offset`, the op's own position (absent: an append at the end).
 * Where they land in the file as the tree reads it now (they depend on the base and the
 * extents before this one, so the tree sets them): `pos`, the file position of the first byte;
 * `before`, the file's size just before it (its size after it is extentEnd(), crdt.ts).
 * `part`: which extent of a multi-extent op it is (its index; absent: the op's first or only
 * one): `op` and `part` together name an extent.
 */
export interface Extent { op: string, hlc: Hlc, content: Content, at: number, size: number, offset?: number, pos: number, before: number, part?: number }

export interface Inode {
  id: InodeId
  /** Stable: root = 1, else 52 bits of sha256(id) as a safe integer. */
  ino: number
  kind: Kind
  /** Permission bits incl. suid/sgid/sticky, no type bits. */
  mode: number
  uid: number
  gid: number
  rdev: number
  /** Bytes in all: the base `content` and the `extents` over it. */
  size: number
  /** The base bytes (extents[0].before of them when there are extents, else `size`). */
  content: Content | null
  /** Files: extents (appends, positioned writes) read over `content`, in order, newest wins per byte (absent when none). */
  extents?: readonly Extent[]
  target?: string
  atime: bigint
  mtime: bigint
  ctime: bigint
  btime: bigint
  /** Read-only: replaced, never mutated, when an xattr changes. */
  xattrs: Map<string, Uint8Array>
  /** Files: live entries naming it. Dirs: 2 + live subdirectories while linked, else 0. */
  nlink: number
}

export interface Entry { id: EntryId, parent: InodeId, name: string, inode: InodeId }

export interface Signer { author: string, sign: (bytes: Uint8Array) => Promise<Uint8Array> }
/**
 * Checks an op's signature. `now`, when given, is the same check run on the calling thread, or
 * undefined when it cannot be run there (the call itself then checks): Tree.receive uses it for
 * at most VERIFY_INLINE_CHECKS checks of a receive (tree.ts).
 */
export type Verify = ((author: string, bytes: Uint8Array, sig: Uint8Array) => Promise<boolean>) & {
  now?: (author: string, bytes: Uint8Array, sig: Uint8Array) => boolean | undefined
}

/**
 * One version of a file (for `darkfs log`): made by a write or an append. `size`: the file's
 * size after it. `appended`: an append's bytes (its `content` is then the append's own; the
 * file's bytes at that version come from Tree.versionBytes).
 */
export interface Version { op: CID, author: string, hlc: [number, number], time: bigint, size: number, content: Content | null, appended?: number }

/**
 * A visible conflict sibling: `entry` (naming `inode`) lost the name to `of`. `head`: the op of
 * the version a file sibling shows (what a `resolve` op names).
 */
export interface Conflict { path: string, entry: EntryId, inode: InodeId, of: InodeId, author: string, time: bigint, head?: string }

/**
 * An op as the tree's 'ops' event tells it: `id` is cid.toString() and `bytes` its block (what
 * Tree.getOp(cid) gives); `hlc`, its author's stamp ([wall ms, counter]: metrics time merge lag
 * by it). The CID is made when read (listeners of a merge's thousands of ops read id and bytes).
 */
export type AppliedOp = Readonly<Pick<Op, 'cid' | 'id' | 'bytes' | 'body' | 'hlc'>>

/**
 * The tree's 'ops' event, one per batch applied (a commit's ops, the ready ops of a receive):
 * `ops` in the order they were applied (total order), `local` whether this host made them.
 * Listeners run once per batch, not once per op: a merge's 10k ops are one or a few events.
 */
export interface OpsEventDetail { local: boolean, ops: readonly AppliedOp[] }
