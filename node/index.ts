// darkfs, the library door, and the door of node/'s own room: the Volume (the filesystem API),
// open files, and the vocabulary every room of node/ shares (errors, types, modes, paths,
// clocks, logs, signals, pools). Other rooms (fuse/, the keeper and the CLI above it, tests,
// scripts) import only this file; the sub-rooms below it (net/, data/, tree/) never import it.
//
// The Volume is the one place where file semantics live: it resolves paths in the replicated
// tree (node/tree), writes and reads bytes through the chunk service (node/data), and commits
// every change as one signed op. All handles of an inode on this host share one OpenFile, so a
// read through any handle sees every write through any other at once.
//
//   import { Volume } from 'darkfs'
//   const vol = await Volume.open({ dir: '/var/lib/darkfs' })
//   await vol.writeFile('/hello.txt', 'hi')
//
// Volume has the shape of node:fs/promises (see VolumeApi in types.ts); every method takes
// absolute volume paths and fails with FsError carrying a POSIX `code`. Every method takes
// AbortOptions (from @libp2p/interface) last, whose signal reaches the network fetch behind the
// call: `await vol.readFile('/big', { signal: AbortSignal.timeout(5000) })`. Inside node/,
// signals are merged only through anySignal() (abort.ts).
export type { Caller, Kind, Stats, Dirent, StatFs, OpenFlags, FileHandle, TimeArg, VolumeApi } from './types.ts'
export type { ResolveKeep, ResolveResult } from './volume.ts'
export { FsError, CorruptBlockError, BlockUnavailableError, NotInitialisedError, NoHostRunningError, AlreadyRunningError, UsageError, NetworkKeyMismatchError, NotConflictedError, toWire, fromWire } from './errors.ts'
export type { FsCode, WireError } from './errors.ts'
export { Volume, FoldTally, FILE_SIZE_MAX, FOLD_EXTENTS, FOLD_BYTES, FOLD_SETTLE_MS, WHOLE_WRITE_TRIES, FOLD_QUIET_MS, FOLD_MOVED_MAX_MS, FOLD_STAMP_TRIES, FOLD_AMPLIFICATION, FOLD_INLINE_AMPLIFICATION, FOLD_QUIET_AMPLIFICATION, FOLD_IDLE_MS, FOLD_IDLE_WAIT_MAX_MS, FOLD_QUIET_BATCH, FOLD_CHEAP_REWRITE, FOLD_EXTENTS_MAX, FOLD_SPAN_MAX, foldDue, foldPlan } from './volume.ts'
export { CHUNK_SIZE } from './data/index.ts'
export { S_IFMT, typeOf } from './modes.ts'
export { OPEN_FILE_BUFFER_BYTES, PATCHES_PER_CHUNK_MAX, PATCH_COMMIT_BYTES, PATCH_COMMIT_RANGES, SPILL_PACK_MAX, COMMIT_EXTENT_MAX, STORE_BEHIND_TIMEOUT_MS, APPEND_KEEP_MAX, APPEND_KEEP_IDLE_MS, MAX_OWN_EXTENTS, OWN_EXTENTS_ALL_MAX, OpenFile } from './open-file.ts'
export { PIN_XATTR_PREFIX } from './types.ts'
export { logger } from './log.ts'
export type { Logger } from './log.ts'
export { lockDataDir, PID_FILE, LOCK_GRACE_MS } from './lock.ts'
