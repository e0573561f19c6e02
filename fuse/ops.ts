// FUSE operations -> Volume calls. One function per request kind; errors are not handled
// here but by the caller, which maps every thrown error through fuse/errno.ts once. Every
// Volume call of a request gets the request's signal (its deadline: fuse/index.ts), so a request
// the kernel has been answered EIO for stops the fetch behind it.
import type { AbortOptions } from '@libp2p/interface'
import type { Caller, FileHandle, Stats, VolumeApi, TimeArg } from '../node/index.ts'
import { FsError } from '../node/index.ts'
import type { Handles } from './handles.ts'
import { encodeStat, encodeStatFs, typeBits } from './stat.ts'
import { AppendOrder } from './append-order.ts'
import { createLinkNames } from './links.ts'

/** Request kinds, numbered as in fuse/binding.c. */
export const Op = {
  getattr: 1,
  readlink: 2,
  mknod: 3,
  mkdir: 4,
  unlink: 5,
  rmdir: 6,
  symlink: 7,
  rename: 8,
  link: 9,
  chmod: 10,
  chown: 11,
  truncate: 12,
  open: 13,
  read: 14,
  write: 15,
  statfs: 16,
  flush: 17,
  release: 18,
  fsync: 19,
  setxattr: 20,
  getxattr: 21,
  listxattr: 22,
  removexattr: 23,
  readdir: 24,
  access: 25,
  create: 26,
  utimens: 27,
  opendir: 28,
  releasedir: 29,
  fsyncdir: 30,
  fallocate: 31
} as const

/**
 * libfuse's name for a file unlinked (or renamed over) while it counts it open (hard_remove = 0):
 * it renames the file to this, asks for the file by this path from then on, and unlinks it at
 * its last release. Unique in the mount (libfuse's node id and a counter).
 */
const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/

/** Longest name of one directory entry, in UTF-8 bytes (NAME_MAX). */
export const NAME_MAX = 255
/**
 * Largest read request served: the kernel never asks more than max_pages pages (1 MiB with
 * the default fuse_max_pages_limit, 256 MiB at most); past this bound a read is EINVAL rather
 * than an allocation of whatever size a request names.
 */
export const READ_REQUEST_MAX = 256 * 1024 * 1024

const O_ACCMODE = 0o3
const O_CREAT = 0o100
const O_EXCL = 0o200
const O_TRUNC = 0o1000
const O_APPEND = 0o2000
/** The open flags the Volume acts on (the kernel handles the rest). */
const OPEN_FLAGS = O_ACCMODE | O_TRUNC | O_APPEND
const S_ISUID = 0o4000
const S_ISGID = 0o2000
const S_IXGRP = 0o10
/** n[2] of a write (fuse/binding.c write_bits): the kernel asks the filesystem to clear setuid/setgid. */
const WRITE_KILL_SUIDGID = 1
/** n[2] of a write: the file is O_APPEND at this write (fcntl F_SETFL may change it after open). */
const WRITE_APPEND = 2
/**
 * n[2] of a write: as long as a piece of a write(2) the kernel cut with more to come (fuse/binding.c
 * piece_pages: the mount's page limit, in bytes of one a page); a shorter one is the last of its write(2).
 */
const WRITE_PIECE = 4
const RENAME_NOREPLACE = 1
const RENAME_EXCHANGE = 2
/**
 * The flag of a rename that is the kernel's rmdir of `path`: fuse/binding.c (rmdir_as_rename)
 * hands libfuse every rmdir as a rename of the directory to a name of its own in the root, so
 * libfuse keeps a path for what is held open below it (no kernel rename has this flag).
 */
const RENAME_IS_RMDIR = 0x80000000
const XATTR_CREATE = 1
const XATTR_REPLACE = 2
const UTIME_NOW = (1 << 30) - 1
const UTIME_OMIT = (1 << 30) - 2

/** One kernel request, as the native edge hands it over. */
export interface Request {
  op: number
  path: string | null
  path2: string | null
  data: Uint8Array | null
  n: [number, number, number, number, number]
  caller: Caller
}

/** An answer: result >= 0 (bytes, fh) or -errno, plus op-specific payloads. */
export interface Answer { result: number, a?: Uint8Array | Float64Array | string[], b?: Float64Array }

const OK: Answer = { result: 0 }

function need (path: string | null, syscall: string): string {
  if (path === null) throw new FsError('ENOENT', syscall)
  return path
}

function checkName (path: string, syscall: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1)
  if (Buffer.byteLength(name) > NAME_MAX) throw new FsError('ENAMETOOLONG', syscall, path)
  return path
}

function parentOf (path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

function timeArg (sec: number, nsec: number): TimeArg {
  if (nsec === UTIME_OMIT) return 'omit'
  if (nsec === UTIME_NOW) return 'now'
  return BigInt(sec) * 1_000_000_000n + BigInt(nsec)
}

export type OpsVolume = VolumeApi

/**
 * A directory removed (rmdir) while held open: what is left of it until its last handle closes,
 * as on a local disk: its attributes (nlink 0) and xattrs, which fchmod, fchown, futimens and
 * f*xattr still change, and no entries. Only this mount sees it; the Volume has no such inode.
 */
interface RemovedDir { stats: Stats, xattrs: Map<string, Uint8Array> }

function nowNs (): bigint {
  return BigInt(Date.now()) * 1_000_000n
}

/** The removed directory `dir` after a change at `now`: ctime follows every change. */
function changed (dir: RemovedDir, change: Partial<Stats>): void {
  const ctimeNs = nowNs()
  dir.stats = { ...dir.stats, ...change, ctimeNs, ctimeMs: Number(ctimeNs / 1_000_000n) }
}

/** An open directory, in the same handle table as files; `path` follows renames on this mount. */
interface DirHandle extends FileHandle { path: string }

/**
 * An open directory: the path it was opened at (moved by renames on this mount, see `moved`);
 * after an rmdir on this mount, the directory's remains (`removed`, by inode).
 */
function dirHandle (volume: VolumeApi, at: string, ino: number, removed: Map<number, RemovedDir>): DirHandle {
  const isDir = async (): Promise<never> => { throw new FsError('EISDIR', 'read', at) }
  let path = at
  return {
    get path () { return path },
    set path (to: string) { path = to },
    ino,
    read: isDir,
    write: isDir,
    truncate: isDir,
    stat: async (options) => removed.get(ino)?.stats ?? await volume.lstat(path, options),
    chmod: async (mode, options) => {
      const dir = removed.get(ino)
      if (dir !== undefined) changed(dir, { mode: (dir.stats.mode & ~0o7777) | (mode & 0o7777) })
      else await volume.chmod(path, mode, options)
    },
    chown: async (uid, gid, options) => {
      const dir = removed.get(ino)
      if (dir !== undefined) changed(dir, { uid, gid })
      else await volume.chown(path, uid, gid, options)
    },
    utimes: async (atime, mtime, options) => {
      const dir = removed.get(ino)
      if (dir === undefined) { await volume.utimes(path, atime, mtime, options); return }
      const at = (t: TimeArg, was: bigint): bigint => t === 'omit' ? was : t === 'now' ? nowNs() : BigInt(t as bigint)
      const atimeNs = at(atime, dir.stats.atimeNs)
      const mtimeNs = at(mtime, dir.stats.mtimeNs)
      changed(dir, { atimeNs, mtimeNs, atimeMs: Number(atimeNs / 1_000_000n), mtimeMs: Number(mtimeNs / 1_000_000n) })
    },
    getxattr: async (name, options) => {
      const dir = removed.get(ino)
      if (dir === undefined) return await volume.getxattr(path, name, options)
      const value = dir.xattrs.get(name)
      if (value === undefined) throw new FsError('ENODATA', 'getxattr', path)
      return value
    },
    setxattr: async (name, value, flags) => {
      const dir = removed.get(ino)
      if (dir === undefined) { await volume.setxattr(path, name, value, flags); return }
      if (flags?.create === true && dir.xattrs.has(name)) throw new FsError('EEXIST', 'setxattr', path)
      if (flags?.replace === true && !dir.xattrs.has(name)) throw new FsError('ENODATA', 'setxattr', path)
      dir.xattrs.set(name, Uint8Array.from(value))
      changed(dir, {})
    },
    listxattr: async (options) => {
      const dir = removed.get(ino)
      return dir !== undefined ? [...dir.xattrs.keys()] : await volume.listxattr(path, options)
    },
    removexattr: async (name, options) => {
      const dir = removed.get(ino)
      if (dir === undefined) { await volume.removexattr(path, name, options); return }
      if (!dir.xattrs.delete(name)) throw new FsError('ENODATA', 'removexattr', path)
      changed(dir, {})
    },
    sync: async () => {},
    flush: async () => {},
    close: async () => {}
  }
}

/** A request's options: its signal aborts at its deadline, `deadlineMs` after it arrived. */
export interface RequestOptions extends AbortOptions {
  /** The request's deadline, ms: a write's stores behind it (node/open-file.ts) get as long. */
  deadlineMs?: number
}

/** Options of createOps. */
export interface OpsOptions {
  /** The bound of an O_APPEND piece's wait for the piece before it, ms (fuse/append-order.ts). */
  appendHoldMs?: number
}

/** Builds the request handler for one mount: `options.signal` is the request's deadline. */
export function createOps (volume: OpsVolume, handles: Handles, opts: OpsOptions = {}): (req: Request, options?: RequestOptions) => Promise<Answer> {
  const links = createLinkNames()
  /** The order of O_APPEND pieces in flight at once (fuse/append-order.ts). */
  const order = new AppendOrder({ holdMs: opts.appendHoldMs })
  /**
   * Files unlinked while open (POSIX: they live, nlink 0, until their last close). libfuse's
   * high-level API keeps the node of such a file under a hidden name and asks for it by that
   * path: the kernel sends fstat, fchmod, fchown, futimens and f*xattr without a file handle,
   * and with hard_remove libfuse would answer them ESTALE without asking us. So the rename to
   * the hidden name is an unlink in the Volume (no name is left: readdir, rmdir of the parent and
   * every other host see the file gone, and no write of it makes a version), and the hidden name
   * is this mount's alias of the inode, served through one of its open handles, by inode, until
   * the last one closes. Hidden name -> inode number.
   */
  const hidden = new Map<string, number>()
  /**
   * Directories removed on this mount while held open, by inode (their names in `hidden` are
   * the root names fuse/binding.c renames them to for libfuse: see RENAME_IS_RMDIR).
   */
  const removedDirs = new Map<number, RemovedDir>()
  /** Directories open now (opendir, not yet released). */
  const openDirs = new Set<DirHandle>()
  /**
   * The name libfuse knows each open file's node by (its kernel inode), moved by renames on this
   * mount: a change through the file refreshes its inode's other names (othersOf), never this one,
   * whose pages the kernel may hold locked for the very write being answered.
   */
  const filePaths = new Map<FileHandle, string>()

  /**
   * A rename on this mount moved `from` to `to`: open directories at or below `from` follow it
   * (libfuse hands readdir its file handle only, no path, and the Volume lists by path).
   */
  function moved (from: string, to: string): void {
    for (const d of openDirs) {
      if (d.path === from) d.path = to
      else if (d.path.startsWith(from + '/')) d.path = to + d.path.slice(from.length)
    }
    for (const [fh, p] of filePaths) {
      if (p === from) filePaths.set(fh, to)
      else if (p.startsWith(from + '/')) filePaths.set(fh, to + p.slice(from.length))
    }
  }

  /**
   * The names of an open file whose cached attributes a change through it leaves stale: those of
   * its inode but the one libfuse knows its node by (filePaths), which the kernel updates itself.
   * None for a file never seen with two links (a map lookup).
   */
  function othersOf (fh: FileHandle): string[] {
    const names = links.names(fh.ino)
    if (names.length === 0) return names
    const at = filePaths.get(fh) ?? fh.path
    return names.filter(p => p !== at)
  }

  /** The hidden names of inode `ino` and its remains go with its last handle. */
  function dropHidden (ino: number): void {
    if (hidden.size === 0 || handles.all().some(h => h.ino === ino)) return
    for (const [name, i] of hidden) if (i === ino) hidden.delete(name)
    removedDirs.delete(ino)
  }

  /** renameat2(RENAME_EXCHANGE): `a` and `b` swap names; open directories and link names follow. */
  async function exchange (a: string, b: string, o: AbortOptions): Promise<Answer> {
    if (volume.exchange === undefined) throw new FsError('EINVAL', 'rename', a, 'RENAME_EXCHANGE is not supported by this volume')
    await volume.exchange(a, b, o)
    const others = [...links.others(a), ...links.others(b)]
    links.forget(a)
    links.forget(b)
    // done: what follows is not bound to the signal (an answer after a change made is its success)
    const [sa, sb] = [await volume.lstat(a), await volume.lstat(b)]
    // what is at `a` now was at `b`, and the other way round: directories (and what is open
    // below them) follow, through a path no name can be (it holds a NUL)
    const aside = `${a}\0exchange`
    if (sa.kind === 'dir') links.moveDir(b, aside)
    if (sb.kind === 'dir') links.moveDir(a, b)
    if (sa.kind === 'dir') links.moveDir(aside, a)
    moved(b, aside)
    moved(a, b)
    moved(aside, a)
    if (sa.kind !== 'dir') links.note(a, sa)
    if (sb.kind !== 'dir') links.note(b, sb)
    return { result: 0, a: others }
  }

  /** rmdir, as fuse/binding.c hands it over: a rename of `path` to `as`, a name for libfuse. */
  async function rmdir (path: string, as: string, o: AbortOptions): Promise<Answer> {
    const held = openDirs.size > 0 ? await volume.lstat(path, o) : undefined
    let xattrs: Map<string, Uint8Array> | undefined
    if (held !== undefined && handles.all().some(h => h.ino === held.ino)) {
      xattrs = new Map()
      for (const name of await volume.listxattr(path, o)) xattrs.set(name, await volume.getxattr(path, name, o))
    }
    await volume.rmdir(path, o)
    if (held !== undefined && xattrs !== undefined) {
      removedDirs.set(held.ino, { stats: { ...held, nlink: 0 }, xattrs })
      hidden.set(as.slice(as.lastIndexOf('/') + 1), held.ino)
    }
    return OK
  }

  /** The open file a hidden name stands for, or undefined for any other path. */
  function aliased (path: string | null): FileHandle | undefined {
    if (hidden.size === 0 || path === null) return undefined
    const name = path.slice(path.lastIndexOf('/') + 1)
    const ino = hidden.get(name)
    if (ino === undefined) return undefined
    const fh = handles.all().find(h => h.ino === ino)
    if (fh === undefined) {
      hidden.delete(name)
      throw new FsError('ENOENT', 'fuse', path)
    }
    return fh
  }

  /** What a setattr acts on by inode: the request's open file, or the file a hidden name stands for. */
  function byHandle (path: string | null, fh: number): FileHandle | undefined {
    return fh >= 0 ? handles.get(fh) : aliased(path)
  }

  /**
   * A write the kernel sent without clearing setuid/setgid itself (direct I/O: an O_APPEND
   * handle, O_DIRECT) by a writer without CAP_FSETID: clear them before its bytes land, as the
   * kernel does on other writes (should_remove_suid): setuid always, setgid when the group may
   * execute (without it the bit marks mandatory locking, which a write leaves). Through the same
   * path fchmod takes.
   */
  async function killSuidGid (fh: FileHandle, o: AbortOptions): Promise<void> {
    const mode = (await fh.stat(o)).mode
    let kill = mode & S_ISUID
    if ((mode & S_IXGRP) !== 0) kill |= mode & S_ISGID
    if (kill !== 0) await fh.chmod(mode & 0o7777 & ~kill, o)
  }

  /** The caller that owns a new entry in `path`'s directory: setgid dirs pass on their gid. */
  async function owner (path: string, caller: Caller, o: AbortOptions): Promise<{ caller: Caller, setgid: boolean }> {
    const parent = await volume.lstat(parentOf(path), o)
    if ((parent.mode & S_ISGID) !== 0) return { caller: { ...caller, gid: parent.gid }, setgid: true }
    return { caller, setgid: false }
  }

  async function stat (path: string | null, fh: number, o: AbortOptions): Promise<Stats> {
    if (fh >= 0) return await handles.get(fh).stat(o)
    const alias = aliased(path)
    if (alias !== undefined) return await alias.stat(o)
    const p = checkName(need(path, 'stat'), 'stat')
    let st: Stats
    try {
      st = await volume.lstat(p, o)
    } catch (err: any) {
      // a name removed (by another host): no longer one of its file's names (review40d)
      if (err?.code === 'ENOENT') links.forget(p)
      throw err
    }
    links.note(p, st)
    return st
  }

  /** The kernel has resolved symlinks already: a setattr on a symlink means the link itself. */
  async function isSymlink (path: string, o: AbortOptions): Promise<boolean> {
    return (await volume.lstat(path, o)).kind === 'symlink'
  }


  /** Opened with `flags`: an O_TRUNC open (atomic_o_trunc) cut the file the kernel sized at 0. */
  async function open (fh: FileHandle, flags = 0): Promise<Answer> {
    order.opened(fh.ino)
    if ((flags & O_TRUNC) !== 0) order.truncated(fh.ino, 0)
    const n = handles.add(fh)
    filePaths.set(fh, fh.path)
    return { result: n }
  }

  /**
   * The attributes a change left at `path`, sent with its answer: libfuse asks for them right
   * after (setattr, create, mknod, mkdir, symlink, link) and the native edge answers that
   * getattr from this, without another request (fuse/binding.c, after_take).
   */
  async function after (path: string | null, fh: number, o: AbortOptions): Promise<Float64Array | undefined> {
    if (path === null) return undefined
    try {
      const st = await stat(path, fh, o)
      // the size the kernel takes from the answer (chmod, chown, utimens, truncate, create...)
      if (st.kind === 'file') order.sized(st.ino, st.size)
      return encodeStat(st)
    } catch {
      // the change is done and answered; libfuse's getattr then asks the Volume and gets the error
      return undefined
    }
  }

  return async function handle (req: Request, o: RequestOptions = {}): Promise<Answer> {
    const { path, path2, n, caller } = req
    switch (req.op) {
      case Op.getattr: {
        const st = await stat(path, n[0], o)
        // libfuse's getattr takes one link off the count of a hidden node (it counts the hidden
        // name as a link; here it is none): given one more, nlink 0 reaches the kernel as 0.
        // A removed directory's name is no hidden one (libfuse hides files only)
        if (st.kind === 'file') order.sized(st.ino, st.size)
        if (n[0] < 0 && st.kind !== 'dir' && aliased(path) !== undefined) return { result: 0, a: encodeStat({ ...st, nlink: st.nlink + 1 }) }
        return { result: 0, a: encodeStat(st) }
      }
      case Op.readlink:
        return { result: 0, a: Buffer.from(await volume.readlink(need(path, 'readlink'), o)) }
      case Op.mknod: {
        const p = checkName(need(path, 'mknod'), 'mknod')
        const own = await owner(p, caller, o)
        await volume.mknod(p, n[0], n[1], own.caller, o)
        return { result: 0, b: await after(p, -1, o) }
      }
      case Op.mkdir: {
        const p = checkName(need(path, 'mkdir'), 'mkdir')
        const own = await owner(p, caller, o)
        await volume.mkdir(p, { mode: (n[0] & 0o7777) | (own.setgid ? S_ISGID : 0), caller: own.caller, signal: o.signal })
        return { result: 0, b: await after(p, -1, o) }
      }
      case Op.unlink: {
        const p = need(path, 'unlink')
        if (aliased(p) !== undefined) {
          // libfuse's unlink of a hidden name at its node's last release: the Volume has no name
          hidden.delete(p.slice(p.lastIndexOf('/') + 1))
          return OK
        }
        await volume.unlink(p, o)
        const others = links.others(p)
        links.forget(p)
        return { result: 0, a: others }
      }
      case Op.rmdir:
        await volume.rmdir(need(path, 'rmdir'), o)
        return OK
      case Op.symlink: {
        const p = checkName(need(path, 'symlink'), 'symlink')
        const own = await owner(p, caller, o)
        await volume.symlink(need(path2, 'symlink'), p, own.caller, o)
        return { result: 0, b: await after(p, -1, o) }
      }
      case Op.rename: {
        if ((n[0] & RENAME_IS_RMDIR) !== 0) return await rmdir(need(path, 'rmdir'), need(path2, 'rmdir'), o)
        const from = need(path, 'rename')
        const to = checkName(need(path2, 'rename'), 'rename')
        if (n[0] === RENAME_EXCHANGE) return await exchange(from, to, o)
        if ((n[0] & ~RENAME_NOREPLACE) !== 0) throw new FsError('EINVAL', 'rename', from, 'whiteouts (and RENAME_EXCHANGE with other flags) are not supported')
        const hideAs = to.slice(to.lastIndexOf('/') + 1)
        if (HIDDEN_NAME.test(hideAs) && !hidden.has(hideAs)) {
          // libfuse hides a file it counts open (unlink, or rename over it): the name goes now.
          // A file no handle holds any more (close(2) does not wait for RELEASE) needs no alias
          const st = await volume.lstat(from, o)
          await volume.unlink(from, o)
          if (handles.all().some(h => h.ino === st.ino)) hidden.set(hideAs, st.ino)
          moved(from, to)
          const others = links.others(from)
          links.forget(from)
          return { result: 0, a: others }
        }
        if ((n[0] & RENAME_NOREPLACE) !== 0) {
          const exists = await volume.lstat(to, o).then(() => true, (err: { code?: string }) => {
            if (err.code === 'ENOENT') return false
            throw err
          })
          if (exists) throw new FsError('EEXIST', 'rename', to)
        }
        await volume.rename(from, to, o)
        // the names of the file replaced at `to` (one link fewer) and of the moved one (ctime)
        const others = [...links.others(to), ...links.others(from)]
        links.forget(to)
        links.forget(from)
        // the rename is done: its answer is success even if its signal aborted since (the
        // mount answers a name change with what the Volume did: fuse/index.ts)
        const st = await volume.lstat(to)
        if (st.kind === 'dir') {
          links.moveDir(from, to)
          moved(from, to)
        } else {
          links.note(to, st)
          moved(from, to)
          if (st.kind === 'file') order.sized(st.ino, st.size)
        }
        return { result: 0, a: others }
      }
      case Op.link: {
        const from = need(path, 'link')
        const to = checkName(need(path2, 'link'), 'link')
        await volume.link(from, to, o)
        // done: not bound to the signal any more (see rename)
        const st = await volume.lstat(to)
        links.note(from, st)
        links.note(to, st)
        if (st.kind === 'file') order.sized(st.ino, st.size)
        return { result: 0, a: links.others(to), b: encodeStat(st) }
      }
      case Op.chmod: {
        const h = byHandle(path, n[1])
        if (h !== undefined) await h.chmod(n[0] & 0o7777, o)
        else await volume.chmod(need(path, 'chmod'), n[0] & 0o7777, o)
        return { result: 0, a: path !== null ? links.others(path) : othersOf(h!), b: await after(path, n[1], o) }
      }
      case Op.chown: {
        const h = byHandle(path, n[2])
        let uid = n[0]
        let gid = n[1]
        if (uid < 0 || gid < 0) {
          const st = h !== undefined ? await h.stat(o) : await volume.lstat(need(path, 'chown'), o)
          if (uid < 0) uid = st.uid
          if (gid < 0) gid = st.gid
        }
        if (h !== undefined) await h.chown(uid, gid, o)
        else {
          const p = need(path, 'chown')
          if (volume.lchown !== undefined) await volume.lchown(p, uid, gid, o)
          else if (await isSymlink(p, o)) throw new FsError('ENOTSUP', 'lchown', p, 'the volume cannot chown a symlink itself')
          else await volume.chown(p, uid, gid, o)
        }
        return { result: 0, a: path !== null ? links.others(path) : othersOf(h!), b: await after(path, n[2], o) }
      }
      case Op.truncate: {
        const h = byHandle(path, n[1])
        if (h !== undefined) await h.truncate(n[0], o)
        else await volume.truncate(need(path, 'truncate'), n[0], o)
        const b = await after(path, n[1], o)
        if (h !== undefined) order.truncated(h.ino, n[0])
        else if (b !== undefined) order.truncated(b[0], n[0])
        return { result: 0, a: path !== null ? links.others(path) : othersOf(h!), b }
      }
      case Op.open:
        // the kernel checks permissions; the Volume gets the access mode, O_TRUNC and O_APPEND.
        // The offset the kernel puts on an O_APPEND write is its cached size, which another
        // name of a hard-linked file (another kernel inode here) or a concurrent commit makes
        // stale: the Volume writes appends at its own end of file, in the inode's write order
        // An O_TRUNC open cut the file: its other names' cached sizes go (as a truncate's)
        return { ...await open(await volume.open(need(path, 'open'), n[0] & OPEN_FLAGS, undefined, undefined, o), n[0]), ...((n[0] & O_TRUNC) !== 0 ? { a: links.others(path!) } : {}) }
      case Op.create: {
        const p = checkName(need(path, 'create'), 'create')
        const own = await owner(p, caller, o)
        const flags = (n[1] & (OPEN_FLAGS | O_EXCL)) | O_CREAT
        const answer = await open(await volume.open(p, flags, n[0] & 0o7777, own.caller, o), flags)
        const b = await after(p, answer.result, o)
        return { ...answer, b }
      }
      case Op.read: {
        if (!(n[1] >= 0 && n[1] <= READ_REQUEST_MAX)) throw new FsError('EINVAL', 'read', path ?? undefined, `a read of ${n[1]} bytes`)
        const fh = handles.get(n[0])
        // the file's own buffer when it gives one (no buffer here and no copy into it); the
        // binding writes the answer to the kernel from it, before reply() returns
        // (fuse/binding.c direct_reply)
        if (fh.readBytes !== undefined) {
          const bytes = await fh.readBytes(n[2], n[1], { ...o, borrow: true })
          return { result: bytes.byteLength, a: bytes }
        }
        const buf = Buffer.allocUnsafe(n[1])
        const { bytesRead } = await fh.read(buf, 0, n[1], n[2], o)
        return { result: bytesRead, a: buf.subarray(0, bytesRead) }
      }
      case Op.write: {
        const data = req.data ?? new Uint8Array(0)
        // the kernel's bytes in the request buffer the binding read them into, or for a small
        // write a copy of its own size (fuse/binding.c write_direct; op_write's own copy for the
        // writes libfuse takes), used by nothing after this request: handed over, so the volume
        // keeps it rather than copying it
        // and the chunks it finished are stored behind it within the write's own deadline
        const fh = handles.get(n[0])
        if ((n[2] & WRITE_KILL_SUIDGID) !== 0) await killSuidGid(fh, o)
        const append = (n[2] & WRITE_APPEND) !== 0
        // the writing process's lock owner, when the kernel names it (fuse/binding.c write_owner)
        const owner = n[3] >= 0 ? n[3] : undefined
        // a direct write too short to be a piece cut with more to come ends its write(2): the
        // run of appends it ends is whole (a log writer's line, published by another handle's flush)
        const ends = owner !== undefined && (n[2] & WRITE_PIECE) === 0 ? true : undefined
        const write = async (): Promise<{ bytesWritten: number }> => await fh.write(data, 0, data.length, n[1], { signal: o.signal, deadlineMs: o.deadlineMs, handOver: true, append, owner, ends })
        // the other names of a hard-linked file (other kernel inodes: their cached size, mtime and
        // pages) are refreshed before the write is answered (fuse/binding.c inval_reply,
        // finish_write); a file of one link has none, and its answer no list
        const refresh = (answer: Answer): Answer => {
          const others = othersOf(fh)
          return others.length > 0 ? { ...answer, a: others } : answer
        }
        // an O_APPEND write(2)'s pieces, in flight at once under AIO, laid in their kernel order
        if (append) return refresh({ result: (await order.run(fh.ino, n[1], data.length, write, o.signal)).bytesWritten })
        const { bytesWritten } = await write()
        // the kernel's size, where its next append on the inode starts, is now at least the end
        // of this write: an append after it is not held for a piece that never comes
        order.grew(fh.ino, n[1] + bytesWritten)
        return refresh({ result: bytesWritten })
      }
      case Op.statfs:
        return { result: 0, a: encodeStatFs(await volume.statfs(o)) }
      case Op.flush: {
        const fh = handles.get(n[0])
        // the closing process's lock owner: another one's last appends through this handle are
        // kept back (a forked child closing its copy between the pieces of its parent's write(2))
        await fh.flush(n[1] >= 0 ? { ...o, owner: n[1] } : o)
        return { result: 0, a: othersOf(fh) }
      }
      case Op.release: {
        const fh = handles.remove(n[0])
        if (fh === undefined) return OK
        filePaths.delete(fh)
        // the file's hidden names end with its last handle
        dropHidden(fh.ino)
        order.closed(fh.ino)
        // not bound to the request's deadline: nobody waits on a release (close(2) waited on
        // flush), and the commit of the last handle's writes is the host's to finish
        await fh.close()
        // attributes read while the file was open may lag what the close committed
        return { result: 0, a: [fh.path, ...othersOf(fh)] }
      }
      case Op.fsync:
        await handles.get(n[0]).sync(o)
        return OK
      case Op.fallocate: {
        const fh = handles.get(n[3])
        if (fh.allocate === undefined) throw new FsError('ENOTSUP', 'fallocate', fh.path)
        await fh.allocate(n[0], n[1], n[2], o)
        // without FALLOC_FL_KEEP_SIZE (1) the kernel's size grew to the range's end if short of it:
        // where its next append starts
        if ((n[0] & 1) === 0) order.grew(fh.ino, n[1] + n[2])
        return { result: 0, a: othersOf(fh) }
      }
      case Op.fsyncdir: {
        // the whole volume's changes are made durable (Volume.syncDir); a directory removed since
        // it was opened has no path left: the root stands for it. A volume whose changes are
        // durable at once has nothing to do
        const dir = n[0] >= 0 ? handles.get(n[0]) : undefined
        const p = dir !== undefined ? (removedDirs.has(dir.ino) ? '/' : dir.path) : need(path, 'fsyncdir')
        // a path gone meanwhile (the directory renamed by a peer): the root stands for it too
        if (volume.syncDir !== undefined) await volume.syncDir(p, o).catch(async (err: FsError) => { if (err.code === 'ENOENT' && p !== '/') await volume.syncDir!('/', o); else throw err })
        return OK
      }
      case Op.setxattr: {
        const p = need(path, 'setxattr')
        const flags = { create: (n[0] & XATTR_CREATE) !== 0, replace: (n[0] & XATTR_REPLACE) !== 0, signal: o.signal }
        const alias = aliased(p)
        if (alias !== undefined) await alias.setxattr(need(path2, 'setxattr'), req.data ?? new Uint8Array(0), flags)
        else await volume.setxattr(p, need(path2, 'setxattr'), req.data ?? new Uint8Array(0), flags)
        return OK
      }
      case Op.getxattr: {
        const alias = aliased(path)
        const name = need(path2, 'getxattr')
        return { result: 0, a: alias !== undefined ? await alias.getxattr(name, o) : await volume.getxattr(need(path, 'getxattr'), name, o) }
      }
      case Op.listxattr: {
        const alias = aliased(path)
        const names = alias !== undefined ? await alias.listxattr(o) : await volume.listxattr(need(path, 'listxattr'), o)
        return { result: 0, a: Buffer.from(names.map(name => name + '\0').join('')) }
      }
      case Op.removexattr: {
        const alias = aliased(path)
        if (alias !== undefined) await alias.removexattr(need(path2, 'removexattr'), o)
        else await volume.removexattr(need(path, 'removexattr'), need(path2, 'removexattr'), o)
        return OK
      }
      case Op.opendir: {
        const p = need(path, 'opendir')
        // a removed directory opened again (by a process whose cwd it is)
        const st = aliased(p)?.ino ?? (await volume.lstat(p, o))
        if (typeof st !== 'number' && st.kind !== 'dir') throw new FsError('ENOTDIR', 'opendir', p)
        const dir = dirHandle(volume, p, typeof st === 'number' ? st : st.ino, removedDirs)
        const answer = await open(dir)
        openDirs.add(dir)
        return answer
      }
      case Op.releasedir: {
        const fh = handles.remove(n[0])
        if (fh !== undefined) {
          openDirs.delete(fh as DirHandle)
          filePaths.delete(fh)
          dropHidden(fh.ino)
        }
        return OK
      }
      case Op.readdir: {
        const dir = n[0] >= 0 ? handles.get(n[0]) : undefined
        // a removed directory has no entries (the kernel does not ask for them: a safeguard)
        if (dir !== undefined && removedDirs.has(dir.ino)) {
          const nums = Float64Array.from([dir.ino, typeBits('dir'), dir.ino, typeBits('dir')])
          return { result: 0, a: ['.', '..'], b: nums }
        }
        const p = dir !== undefined ? dir.path : need(path, 'readdir')
        const [entries, self, parent] = await Promise.all([
          volume.readdirents(p, o), volume.lstat(p, o), volume.lstat(parentOf(p), o)
        ])
        const names = ['.', '..']
        const nums = new Float64Array(2 * (entries.length + 2))
        nums[0] = self.ino
        nums[1] = typeBits('dir')
        nums[2] = parent.ino
        nums[3] = typeBits('dir')
        let i = 4
        for (const e of entries) {
          names.push(e.name)
          nums[i++] = e.ino
          nums[i++] = typeBits(e.kind) ?? 0
        }
        return { result: 0, a: names, b: nums }
      }
      case Op.access:
        if (aliased(path) === undefined) await volume.lstat(need(path, 'access'), o)
        return OK
      case Op.utimens: {
        const [atime, mtime] = [timeArg(n[0], n[1]), timeArg(n[2], n[3])]
        const h = byHandle(path, n[4])
        if (h !== undefined) {
          // by inode; the Volume holds the times of a file open there with its pending writes
          await h.utimes(atime, mtime, o)
          return { result: 0, a: path !== null ? links.others(path) : othersOf(h), b: await after(path, n[4], o) }
        }
        const p = need(path, 'utimens')
        // explicit times (tar, cp -a, touch on an open file) are the last word over the file's
        // buffered writes: the Volume holds them for a file open there and stamps them after the
        // version of those writes, at the flush, close or fsync, or within HELD_ATTRS_MS
        // (VolumeApi.utimes; the kernel sends futimens by path, so this is tar's too: a flush of
        // each handle first was a commit and a log write of its own per file)
        if (volume.lutimes !== undefined) await volume.lutimes(p, atime, mtime, o)
        else if (await isSymlink(p, o)) throw new FsError('ENOTSUP', 'lutimes', p, 'the volume cannot set times of a symlink itself')
        else await volume.utimes(p, atime, mtime, o)
        return { result: 0, a: links.others(p), b: await after(path, n[4], o) }
      }
      default:
        throw new FsError('ENOTSUP', 'fuse', path ?? undefined, `request kind ${req.op}`)
    }
  }
}
