// The shapes shared by the Volume, its control-socket client and the FUSE adapter.
// Times are nanoseconds since the epoch as bigint (POSIX timespec precision); the *Ms fields
// of Stats mirror node:fs for convenience.
import type { AbortOptions } from '@libp2p/interface'

/** Who is asking: the caller's numeric ids, as the kernel reports them (NFS-style, no mapping). */
export interface Caller { uid: number, gid: number, umask?: number }

export type Kind = 'file' | 'dir' | 'symlink' | 'fifo' | 'chr' | 'blk' | 'sock'

export interface Stats {
  /** Stable inode number (root is 1). Hard links share it. */
  ino: number
  /** Type bits and permission bits, as st_mode. */
  mode: number
  kind: Kind
  nlink: number
  uid: number
  gid: number
  rdev: number
  size: number
  blocks: number
  blksize: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  birthtimeNs: bigint
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
  isFile: () => boolean
  isDirectory: () => boolean
  isSymbolicLink: () => boolean
}

export interface Dirent { name: string, kind: Kind, ino: number }

/**
 * Space in bytes, as statfs reports it: the size, the free bytes, and those of them new data
 * may take (`avail`: free less what is kept back, e.g. a host's reserve). A host's Volume reports
 * the network's, in bytes of file data (keeper/capacity.ts).
 */
export interface Capacity {
  total: number
  free: number
  avail: number
}

export interface StatFs {
  bsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  namemax: number
}

/** Open flags as numbers (node:fs constants / POSIX O_*), or the node:fs strings 'r', 'w+', ... */
export type OpenFlags = number | string

/**
 * An open file. Every method takes `AbortOptions` last: an aborted call stops waiting for the
 * network (a fetch of the bytes it needs) and rejects with the signal's reason; local work
 * (storing chunks, committing an op) is checked at entry and never left half-done.
 */
export interface FileHandle {
  readonly path: string
  readonly ino: number
  read: (buffer: Uint8Array, offset: number, length: number, position: number, options?: AbortOptions) => Promise<{ bytesRead: number }>
  /**
   * read() without a buffer of the caller's: the bytes at `position` (at most `length`, fewer at
   * the end of file), in a buffer the caller owns. Spares the caller a buffer and a copy (the
   * FUSE edge replies with it: a 4 KiB read through the mount). With `borrow` the caller only
   * reads the bytes and keeps none of them past its next await (the FUSE edge: the binding copies
   * its reply): they may be a view of the file's stored or cached chunk, which must not change.
   */
  readBytes?: (position: number, length: number, options?: AbortOptions & { borrow?: boolean }) => Promise<Uint8Array>
  /**
   * `handOver`: the caller gives `buffer` away (it never reads or writes it again, as the FUSE
   * edge's request buffers: each is the request's own copy), so the file keeps its bytes as they
   * are instead of a copy: a 1 MiB write through the mount is one buffer, not three.
   * `deadlineMs`: the caller's deadline of this write (the FUSE edge's: its signal aborts then);
   * the chunks the write finished, stored after it is answered, get as long (default
   * STORE_BEHIND_TIMEOUT_MS, node/open-file.ts).
   * `append`: whether this write is an O_APPEND one (at the end of file when its turn comes,
   * whatever `position` says), over the handle's open flags: the FUSE edge's file flags at the
   * write (fcntl F_SETFL sets and clears O_APPEND after open).
   * `owner`: the lock owner of the write (the FUSE edge's: the writing process's file table), told
   * apart from the one of a flush of the same handle (`flush`).
   * `ends`: this write is the last piece of its write(2) (the FUSE edge's: too short to be a piece
   * the kernel cut with more to come), so the run of appends it ends is whole: another handle's
   * flush commits it. Left out, a run of appends is kept back while its handle wrote lately.
   */
  write: (buffer: Uint8Array, offset: number, length: number, position: number, options?: AbortOptions & { handOver?: boolean, deadlineMs?: number, append?: boolean, owner?: number, ends?: boolean }) => Promise<{ bytesWritten: number }>
  truncate: (len?: number, options?: AbortOptions) => Promise<void>
  /**
   * fallocate(2): `mode` is the kernel's flags (FALLOC_FL_KEEP_SIZE 1, PUNCH_HOLE 2, ZERO_RANGE
   * 0x10; PUNCH_HOLE only with KEEP_SIZE, as Linux has it). Mode 0 and KEEP_SIZE check that the
   * network has room for the range past the end of file (ENOSPC when it has not); mode 0 grows
   * the file to cover the range. PUNCH_HOLE and ZERO_RANGE leave the range reading as zeros.
   * Other flags (COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE) fail with ENOTSUP. Works on a
   * handle open for writing, O_APPEND or not (the range is where the caller says).
   */
  allocate?: (mode: number, offset: number, length: number, options?: AbortOptions) => Promise<void>
  /**
   * The inode's attributes and xattrs through the handle (fstat, fchmod, fchown, futimens,
   * f*xattr): they work by inode, also after the file's last name is unlinked while it is open
   * (POSIX: it lives until its last close, with nlink 0).
   */
  stat: (options?: AbortOptions) => Promise<Stats>
  chmod: (mode: number, options?: AbortOptions) => Promise<void>
  chown: (uid: number, gid: number, options?: AbortOptions) => Promise<void>
  utimes: (atime: TimeArg, mtime: TimeArg, options?: AbortOptions) => Promise<void>
  getxattr: (name: string, options?: AbortOptions) => Promise<Uint8Array>
  setxattr: (name: string, value: Uint8Array, flags?: { create?: boolean, replace?: boolean } & AbortOptions) => Promise<void>
  listxattr: (options?: AbortOptions) => Promise<string[]>
  removexattr: (name: string, options?: AbortOptions) => Promise<void>
  /**
   * Commit buffered writes: durable locally, and placed as far as peers allow (DESIGN.md §5).
   * An abort ends the wait for peers, not the placement, which goes on in the background.
   */
  sync: (options?: AbortOptions) => Promise<void>
  /**
   * Commit like sync without waiting for peers (close-to-open). `owner`: the lock owner closing
   * (the FUSE edge's FLUSH: processes sharing one open file description, a forked child's close):
   * the last appends another owner made through this handle are kept back as another handle's are.
   */
  flush: (options?: AbortOptions & { owner?: number }) => Promise<void>
  close: (options?: AbortOptions) => Promise<void>
}

export interface TimeSpec { ns: bigint }
export type TimeArg = number | bigint | Date | 'now' | 'omit'

/**
 * The filesystem API, shaped like node:fs/promises. Paths are absolute within the volume
 * ('/a/b'). Every call takes an optional Caller (default: root) that owns what it creates.
 *
 * Every call takes `AbortOptions` (from @libp2p/interface) as its last argument: in the options
 * object a call has anyway (`writeFile`, `mkdir`, `rm`, `setxattr`'s flags, as node:fs does), else
 * as a trailing `options`. The signal goes down to the network fetch behind the call (the FUSE
 * request's deadline, the control-socket request whose client may go away); an aborted call
 * rejects with the signal's reason. Calls that touch metadata only check the signal at entry.
 */
export interface VolumeApi {
  readFile: (path: string, options?: AbortOptions) => Promise<Uint8Array>
  writeFile: (path: string, data: Uint8Array | string, opts?: { mode?: number, caller?: Caller } & AbortOptions) => Promise<void>
  open: (path: string, flags?: OpenFlags, mode?: number, caller?: Caller, options?: AbortOptions) => Promise<FileHandle>
  stat: (path: string, options?: AbortOptions) => Promise<Stats>
  lstat: (path: string, options?: AbortOptions) => Promise<Stats>
  readdir: (path: string, options?: AbortOptions) => Promise<string[]>
  readdirents: (path: string, options?: AbortOptions) => Promise<Dirent[]>
  mkdir: (path: string, opts?: { recursive?: boolean, mode?: number, caller?: Caller } & AbortOptions) => Promise<void>
  rmdir: (path: string, options?: AbortOptions) => Promise<void>
  rm: (path: string, opts?: { recursive?: boolean } & AbortOptions) => Promise<void>
  unlink: (path: string, options?: AbortOptions) => Promise<void>
  rename: (from: string, to: string, options?: AbortOptions) => Promise<void>
  /** renameat2's RENAME_EXCHANGE: the two paths (both existing) swap names atomically. */
  exchange?: (a: string, b: string, options?: AbortOptions) => Promise<void>
  symlink: (target: string, path: string, caller?: Caller, options?: AbortOptions) => Promise<void>
  readlink: (path: string, options?: AbortOptions) => Promise<string>
  link: (existing: string, path: string, options?: AbortOptions) => Promise<void>
  mknod: (path: string, mode: number, rdev: number, caller?: Caller, options?: AbortOptions) => Promise<void>
  chmod: (path: string, mode: number, options?: AbortOptions) => Promise<void>
  chown: (path: string, uid: number, gid: number, options?: AbortOptions) => Promise<void>
  /**
   * Set atime and mtime; 'omit' leaves one as it is, 'now' sets the current time. The times are
   * the last word over writes made before the call through any open handle of the file: a
   * Volume that commits buffered writes later (at flush) commits them first, or with the times.
   */
  utimes: (path: string, atime: TimeArg, mtime: TimeArg, options?: AbortOptions) => Promise<void>
  /** utimes on `path` itself, not following a final symlink (FUSE setattr on a symlink); the same rule for buffered writes. */
  lutimes?: (path: string, atime: TimeArg, mtime: TimeArg, options?: AbortOptions) => Promise<void>
  /** chown on `path` itself, not following a final symlink (FUSE setattr on a symlink). */
  lchown?: (path: string, uid: number, gid: number, options?: AbortOptions) => Promise<void>
  truncate: (path: string, len?: number, options?: AbortOptions) => Promise<void>
  getxattr: (path: string, name: string, options?: AbortOptions) => Promise<Uint8Array>
  setxattr: (path: string, name: string, value: Uint8Array, flags?: { create?: boolean, replace?: boolean } & AbortOptions) => Promise<void>
  listxattr: (path: string, options?: AbortOptions) => Promise<string[]>
  removexattr: (path: string, name: string, options?: AbortOptions) => Promise<void>
  statfs: (options?: AbortOptions) => Promise<StatFs>
  /**
   * fsync(2) of a directory: every change made here before the call (a directory's entries
   * among them) is made durable as an fsync makes it (synced here; on a network, held by a peer).
   * Absent where every change is durable when its call returns.
   */
  syncDir?: (path: string, options?: AbortOptions) => Promise<void>
}

/** The xattr name prefix of a pin; the rest of the name is the pinning peer's id. */
export const PIN_XATTR_PREFIX = 'darkfs.pin.'

/** Whether an xattr name is a pin (hidden from listxattr). */
export function isPinXattr (name: string): boolean {
  return name.startsWith(PIN_XATTR_PREFIX)
}

/**
 * Named commands a running host answers on its control socket (`heal`, `pin`, ...): the keeper
 * and the daemon provide them, the control server routes to them with the request's signal
 * (aborted when the client goes away).
 */
export type Commands = Record<string, (args: any, options?: AbortOptions) => Promise<unknown>>

/** Progress of an upload through the control API: bytes received from the client, stored here, and placed on peers. */
export interface PutProgress { received: number, stored: number, placed: number }
