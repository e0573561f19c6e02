// darkfs, the library door. Other rooms (fuse/, tests, scripts) import only this file.
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
export { FsError, CorruptBlockError, BlockUnavailableError, NotInitialisedError, NoHostRunningError, AlreadyRunningError, UsageError, NetworkKeyMismatchError, toWire, fromWire } from './errors.ts'
export type { FsCode, WireError } from './errors.ts'
export { Volume, FILE_SIZE_MAX } from './volume.ts'
export { CHUNK_SIZE } from './data/index.ts'
export { S_IFMT, typeOf } from './modes.ts'
export { OPEN_FILE_BUFFER_BYTES, PATCHES_PER_CHUNK_MAX } from './open-file.ts'
export { PIN_XATTR_PREFIX } from './types.ts'
export { logger } from './log.ts'
export type { Logger } from './log.ts'
