// The shapes shared by the Volume, its control-socket client and the FUSE adapter.
// Times are nanoseconds since the epoch as bigint (POSIX timespec precision); the *Ms fields
// of Stats mirror node:fs for convenience.

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

export interface FileHandle {
  readonly path: string
  readonly ino: number
  read: (buffer: Uint8Array, offset: number, length: number, position: number) => Promise<{ bytesRead: number }>
  write: (buffer: Uint8Array, offset: number, length: number, position: number) => Promise<{ bytesWritten: number }>
  truncate: (len?: number) => Promise<void>
  stat: () => Promise<Stats>
  /** Commit buffered writes: durable locally, and placed as far as peers allow (DESIGN.md §5). */
  sync: () => Promise<void>
  /** Commit like sync without waiting for peers (close-to-open). */
  flush: () => Promise<void>
  close: () => Promise<void>
}

export interface TimeSpec { ns: bigint }
export type TimeArg = number | bigint | Date | 'now' | 'omit'

/**
 * The filesystem API, shaped like node:fs/promises. Paths are absolute within the volume
 * ('/a/b'). Every call takes an optional Caller (default: root) that owns what it creates.
 */
export interface VolumeApi {
  readFile: (path: string) => Promise<Uint8Array>
  writeFile: (path: string, data: Uint8Array | string, opts?: { mode?: number, caller?: Caller }) => Promise<void>
  open: (path: string, flags?: OpenFlags, mode?: number, caller?: Caller) => Promise<FileHandle>
  stat: (path: string) => Promise<Stats>
  lstat: (path: string) => Promise<Stats>
  readdir: (path: string) => Promise<string[]>
  readdirents: (path: string) => Promise<Dirent[]>
  mkdir: (path: string, opts?: { recursive?: boolean, mode?: number, caller?: Caller }) => Promise<void>
  rmdir: (path: string) => Promise<void>
  rm: (path: string, opts?: { recursive?: boolean }) => Promise<void>
  unlink: (path: string) => Promise<void>
  rename: (from: string, to: string) => Promise<void>
  symlink: (target: string, path: string, caller?: Caller) => Promise<void>
  readlink: (path: string) => Promise<string>
  link: (existing: string, path: string) => Promise<void>
  mknod: (path: string, mode: number, rdev: number, caller?: Caller) => Promise<void>
  chmod: (path: string, mode: number) => Promise<void>
  chown: (path: string, uid: number, gid: number) => Promise<void>
  /** Set atime and mtime; 'omit' leaves one as it is, 'now' sets the current time. */
  utimes: (path: string, atime: TimeArg, mtime: TimeArg) => Promise<void>
  /** utimes on `path` itself, not following a final symlink (FUSE setattr on a symlink). */
  lutimes?: (path: string, atime: TimeArg, mtime: TimeArg) => Promise<void>
  /** chown on `path` itself, not following a final symlink (FUSE setattr on a symlink). */
  lchown?: (path: string, uid: number, gid: number) => Promise<void>
  truncate: (path: string, len?: number) => Promise<void>
  getxattr: (path: string, name: string) => Promise<Uint8Array>
  setxattr: (path: string, name: string, value: Uint8Array, flags?: { create?: boolean, replace?: boolean }) => Promise<void>
  listxattr: (path: string) => Promise<string[]>
  removexattr: (path: string, name: string) => Promise<void>
  statfs: () => Promise<StatFs>
}

/** The xattr name prefix of a pin; the rest of the name is the pinning peer's id. */
export const PIN_XATTR_PREFIX = 'darkfs.pin.'

/** Whether an xattr name is a pin (hidden from listxattr). */
export function isPinXattr (name: string): boolean {
  return name.startsWith(PIN_XATTR_PREFIX)
}

/** Named commands a running host answers on its control socket (`heal`, `pin`, ...): the keeper and the daemon provide them, the control server routes to them. */
export type Commands = Record<string, (args: any) => Promise<unknown>>
