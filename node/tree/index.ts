// node/tree — the replicated metadata tree (DESIGN.md §2, §5, §6). The door of this room: the
// rest of node/ imports only this file.
//
//   const tree = await Tree.open({ dir, signer, verify })
//   const { id } = await tree.commit({ type: 'create', parent: tree.root, name: 'a', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time })
//   tree.lookup(tree.root, 'a')       // -> Entry naming inode `id`
//   tree.addEventListener('ops', e => gossip((e as CustomEvent<OpsEventDetail>).detail.ops))
//
// The tree is a pure function of the set of ops it holds: every host holding the same ops
// shows the same tree, whatever order they arrived in.
//
// Ids. An inode's id is the CID string of the op that created it ('root' for the root); an
// entry's id is the CID string of the op that made it (create or link), so a directory's one
// entry has the directory's id. Merged inodes (concurrent mkdir of one name, concurrent creates
// of identical files) keep both ids: the later one is an alias that get(), lookup(),
// children(), history() and every op resolve to the survivor.
//
// Ops. commit(body) stamps a hybrid logical clock and the current heads as parents, signs with
// the Signer, fsyncs the op to the log, applies it, and fires 'ops' ({ local: true, ops: [op] }:
// one event per batch applied, local or received, its ops in the order applied); commit(body,
// 'written') waits only until the op is written to the log (the kernel has it: it
// survives the process being killed), and it is synced with the next durable commit, a sync(),
// or within WRITTEN_SYNC_MS (log.ts). The host gossips local ops and answers peers with
// heads()/hasOp()/getOp(); ops from peers go through receive(blocks): decoded (at most
// MAX_OP_BYTES), hash-named, signature-checked with Verify(author, ...), written to the log
// (as commit(body, 'written')) before they are applied, and held while their parents are missing
// (returned as `missing` so the caller fetches them). Any invalid op throws InvalidOpError and
// nothing of that batch is stored. Bodies are validated on commit as on receive: names 1..255
// bytes without '/' or NUL and not '.' or '..', inline content at most MAX_INLINE_BYTES.
// commit() checks shapes, not existence: the caller (Volume) checks ENOENT/EEXIST/ENOTEMPTY
// first; an op naming something unknown or gone simply has no effect.
//
// Merge rules (DESIGN.md §6), decided from causality: concurrent identical writes are one
// version (identical: sameContent, by manifest or by content sum, so equal bytes stored with
// other erasure parameters or holes are identical; the op first in total order keeps its
// manifest on every host); attributes and xattrs are last-writer-wins per field; concurrent different writes:
// the later (hlc, author) keeps the name, the other becomes one sibling entry
// `NAME.conflict-<author tail>-<YYYYMMDD-HHMMSS>` (a new inode; see conflicts()); write beats a
// concurrent unlink; concurrent mkdir merges; concurrent links of one file under one name are
// one name (either entry id resolves to it); a name clash of different things keeps the later
// under the name and gives the other a conflict name; a move that would create a cycle is
// skipped; rmdir of a directory that gained children concurrently is skipped; nothing is
// orphaned. history(inode) keeps every version, the losers included.
//
// Empty creates (a file made by open with O_CREAT, touch, mknod: no content) are placeholders:
// a `write` with `first: true` (the first commit of the open that created the file; its
// `inode` is that create) fills the create, and the two are one version in history(); an
// empty create at the name of a file created concurrently is that file (O_CREAT), and a head of
// empty creates only is no version a write conflicts with. So identical content written
// through two mounts at one name is one file and one version.
//
// Appends (issue 12 item 1; the first step to issue 15's extents). A commit made only of
// O_APPEND writes past the end its open saw is an `append` op (the appended bytes, inline or as
// a manifest), not a whole-file `write`. A file is its base version (the write rule above)
// followed by every append not in the causal past of that base, in total order (which respects
// causality, so one writer's appends stay in its order): concurrent appends never conflict with
// each other or with a write (they land after it), and a write by a host that saw them holds
// their bytes (they leave the list: compaction for free). get() gives the base `content` and the
// `extents` to read after it (`size` counts both). Each append is a version in history() (what
// `darkfs log` lists, as one host's closes were before); versionBytes() reads one back. A `fold`
// op (compaction) holds the base and the file's first `covers` appends in one content; the tree
// reads it in their place only when it matches them exactly (base still the head, those appends
// all in its causal past, the size theirs), else ignores it: it adds no version and never
// conflicts, so folds made on several hosts at once are harmless. A partial fold (issue 15 item
// 2, `ranges`) holds them only over some byte ranges (the chunks worth rewriting) and keeps the
// content it was made over (`over`) elsewhere; it is read only while that content still is, and
// the extents it holds are then read only outside its ranges (foldPoint gives the pieces).
// contents(inode) lists what a file's current state may read (for GC, repair and pins).
// Positioned extents (issue 15 item 1): an `append` with `offset` lands its bytes there instead
// of at the end (a small pwrite made durable by fsync without rewriting its chunk); the size
// becomes max(size, offset + size). Every one not in the base's causal past, in total order,
// newest wins per byte, as appends; a write (truncate included: it is a write of a new version)
// that saw it holds its bytes. Across hosts (issue 15 item 5) extents writing disjoint bytes
// (or equal bytes) merge, no conflict; an extent is never laid over bytes its author did not
// see: one made over a version a concurrent write (or truncate) replaced, or where a concurrent
// extent wrote other bytes, keeps its branch — the version its author saw, the extents it saw,
// itself — as one conflict sibling (the name keeps the other side, whichever sorts first), and
// its branch's later extents land in that sibling. Each Extent says where it lands (`pos`, `before`).
//
// Resolving (issue 13 item 6). conflicts() lists the live siblings, each with the version it
// shows (`head`). A `resolve` op settles the siblings it names while they still show that
// version: `keep: 'holder'` unlinks them and their versions join the name holder's history
// (`darkfs log PATH` keeps every version), `keep: 'both'` keeps each as a plain file named
// keptName() (`a (conflict from <author> <date>).txt`). Keeping a sibling's content is a write
// of it to the holder, then a resolve keeping the holder. A sibling written to, or showing
// another version, since the resolver saw it stays a conflict; concurrent resolves of one
// sibling: the first in total order decides, on every host.
//
// get() returns unlinked inodes too (nlink 0), so open handles keep working. Times are bigint
// ns. Directory nlink is 2 + live subdirectories.
export { Tree, GuardError, sameFileMark, extentKey, markedExtents, MAX_PENDING_OPS, MAX_RECEIVE_BATCH, VERIFY_INLINE_CHECKS } from './tree.ts'
export type { CommitOptions, Cut, FileMark, TreeInit, ReceiveResult, ReceiveStats } from './tree.ts'
export { WRITTEN_SYNC_MS, LOG_FILE } from './log.ts'
export type { Durability, LogCounters } from './log.ts'
export { InvalidOpError, TreeClosedError } from './errors.ts'
export { MAX_OP_BYTES, MAX_OP_EXTENTS, MAX_INLINE_BYTES, MAX_NAME_BYTES, MAX_XATTR_VALUE_BYTES, MAX_TARGET_BYTES, MAX_PARENTS, MAX_RESOLVE_SIBLINGS, checkName, sameContent, cidOf, idOf, opCidOf } from './op.ts'
export { ROOT, UNDO_WINDOW, inoOf, extentEnd } from './crdt.ts'
export { conflictName, keptName, isConflictName, baseName } from './conflicts.ts'
export { ExtentMap } from './extent-map.ts'
export type { Segment } from './extent-map.ts'
export { treeDigest } from './digest.ts'
export { OpSet, RbsrError, RBSR_ID_BYTES, rbsrInitiate, rbsrRespond, rbsrContinue, rbsrReconcileInMemory } from './rbsr.ts'
export type { RbsrItem, RbsrOptions, RbsrStep, RbsrRun } from './rbsr.ts'
export type { InodeId, EntryId, Kind, Content, Extent, MoreExtent, OpBody, OpType, Inode, Entry, Signer, Verify, Version, Conflict, ResolvedSibling, AppliedOp, OpsEventDetail, Hlc } from './types.ts'
