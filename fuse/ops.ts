// FUSE operations -> Volume calls. One function per request kind; errors are not handled
// here but by the caller, which maps every thrown error through fuse/errno.ts once. Every
// Volume call of a request gets the request's signal (its deadline: fuse/index.ts), so a request
// the kernel has been answered EIO for stops the fetch behind it.
import type { AbortOptions } from '@libp2p/interface'
import type { Caller, FileHandle, Stats, VolumeApi, TimeArg } from '../node/index.ts'
import { FsError } from '../node/index.ts'
import type { Handles } from './handles.ts'
import { encodeStat, encodeStatFs, typeBits } from './stat.ts'
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
  releasedir: 29
} as const

/**
 * libfuse's name for a file unlinked (or renamed over) while open (hard_remove = 0): it renames
 * the file to this and unlinks it at the last release.
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
const S_ISGID = 0o2000
const RENAME_NOREPLACE = 1
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

/** An open directory: the path it was opened at, in the same handle table as files. */
function dirHandle (volume: VolumeApi, path: string, ino: number): FileHandle {
  const isDir = async (): Promise<never> => { throw new FsError('EISDIR', 'read', path) }
  return {
    path,
    ino,
    read: isDir,
    write: isDir,
    truncate: isDir,
    stat: async (options) => await volume.lstat(path, options),
    sync: async () => {},
    flush: async () => {},
    close: async () => {}
  }
}

/** Builds the request handler for one mount: `options.signal` is the request's deadline. */
export function createOps (volume: OpsVolume, handles: Handles): (req: Request, options?: AbortOptions) => Promise<Answer> {
  const links = createLinkNames()
  /** Inode number -> the hidden name libfuse gave it while open (unlinked at its last release). */
  const hidden = new Map<number, string>()

  /** The caller that owns a new entry in `path`'s directory: setgid dirs pass on their gid. */
  async function owner (path: string, caller: Caller, o: AbortOptions): Promise<{ caller: Caller, setgid: boolean }> {
    const parent = await volume.lstat(parentOf(path), o)
    if ((parent.mode & S_ISGID) !== 0) return { caller: { ...caller, gid: parent.gid }, setgid: true }
    return { caller, setgid: false }
  }

  async function stat (path: string | null, fh: number, o: AbortOptions): Promise<Stats> {
    if (fh >= 0) return await handles.get(fh).stat(o)
    const p = checkName(need(path, 'stat'), 'stat')
    const st = await volume.lstat(p, o)
    links.note(p, st)
    return st
  }

  /** The kernel has resolved symlinks already: a setattr on a symlink means the link itself. */
  async function isSymlink (path: string, o: AbortOptions): Promise<boolean> {
    return (await volume.lstat(path, o)).kind === 'symlink'
  }

  function pathOf (path: string | null, fh: number, syscall: string): string {
    if (path !== null) return path
    if (fh >= 0) return handles.get(fh).path
    throw new FsError('ENOENT', syscall)
  }

  async function open (fh: FileHandle): Promise<Answer> {
    return { result: handles.add(fh) }
  }

  /**
   * The attributes a change left at `path`, sent with its answer: libfuse asks for them right
   * after (setattr, create, mknod, mkdir, symlink, link) and the native edge answers that
   * getattr from this, without another request (fuse/binding.c, after_take).
   */
  async function after (path: string | null, fh: number, o: AbortOptions): Promise<Float64Array | undefined> {
    if (path === null) return undefined
    try {
      return encodeStat(await stat(path, fh, o))
    } catch {
      // the change is done and answered; libfuse's getattr then asks the Volume and gets the error
      return undefined
    }
  }

  return async function handle (req: Request, o: AbortOptions = {}): Promise<Answer> {
    const { path, path2, n, caller } = req
    switch (req.op) {
      case Op.getattr:
        return { result: 0, a: encodeStat(await stat(path, n[0], o)) }
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
        const from = need(path, 'rename')
        const to = checkName(need(path2, 'rename'), 'rename')
        if ((n[0] & ~RENAME_NOREPLACE) !== 0) throw new FsError('EINVAL', 'rename', from, 'RENAME_EXCHANGE and whiteouts are not supported')
        if (HIDDEN_NAME.test(to.slice(to.lastIndexOf('/') + 1))) {
          // libfuse hides a file it believes open; its release may have come and gone while it
          // decided (close(2) does not wait for RELEASE): a file no handle holds is unlinked, or
          // the hidden name would stay forever. An open one keeps it until its last release here.
          const st = await volume.lstat(from, o)
          if (!handles.all().some(h => h.ino === st.ino)) {
            await volume.unlink(from, o)
            const others = links.others(from)
            links.forget(from)
            return { result: 0, a: others }
          }
          hidden.set(st.ino, to)
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
        const st = await volume.lstat(to, o)
        if (st.kind === 'dir') links.moveDir(from, to)
        else links.note(to, st)
        return { result: 0, a: others }
      }
      case Op.link: {
        const from = need(path, 'link')
        const to = checkName(need(path2, 'link'), 'link')
        await volume.link(from, to, o)
        const st = await volume.lstat(to, o)
        links.note(from, st)
        links.note(to, st)
        return { result: 0, a: links.others(to), b: encodeStat(st) }
      }
      case Op.chmod: {
        const p = pathOf(path, n[1], 'chmod')
        await volume.chmod(p, n[0] & 0o7777, o)
        return { result: 0, a: links.others(p), b: await after(path, n[1], o) }
      }
      case Op.chown: {
        const p = pathOf(path, n[2], 'chown')
        let uid = n[0]
        let gid = n[1]
        if (uid < 0 || gid < 0) {
          const st = await volume.lstat(p, o)
          if (uid < 0) uid = st.uid
          if (gid < 0) gid = st.gid
        }
        if (volume.lchown !== undefined) await volume.lchown(p, uid, gid, o)
        else if (await isSymlink(p, o)) throw new FsError('ENOTSUP', 'lchown', p, 'the volume cannot chown a symlink itself')
        else await volume.chown(p, uid, gid, o)
        return { result: 0, a: links.others(p), b: await after(path, n[2], o) }
      }
      case Op.truncate: {
        const p = pathOf(path, n[1], 'truncate')
        if (n[1] >= 0) await handles.get(n[1]).truncate(n[0], o)
        else await volume.truncate(p, n[0], o)
        return { result: 0, a: links.others(p), b: await after(path, n[1], o) }
      }
      case Op.open:
        // the kernel checks permissions; the Volume gets the access mode, O_TRUNC and O_APPEND.
        // The offset the kernel puts on an O_APPEND write is its cached size, which another
        // name of a hard-linked file (another kernel inode here) or a concurrent commit makes
        // stale: the Volume writes appends at its own end of file, in the inode's write order
        return await open(await volume.open(need(path, 'open'), n[0] & OPEN_FLAGS, undefined, undefined, o))
      case Op.create: {
        const p = checkName(need(path, 'create'), 'create')
        const own = await owner(p, caller, o)
        const flags = (n[1] & (OPEN_FLAGS | O_EXCL)) | O_CREAT
        const answer = await open(await volume.open(p, flags, n[0] & 0o7777, own.caller, o))
        return { ...answer, b: await after(p, answer.result, o) }
      }
      case Op.read: {
        if (!(n[1] >= 0 && n[1] <= READ_REQUEST_MAX)) throw new FsError('EINVAL', 'read', path ?? undefined, `a read of ${n[1]} bytes`)
        const buf = Buffer.allocUnsafe(n[1])
        const { bytesRead } = await handles.get(n[0]).read(buf, 0, n[1], n[2], o)
        return { result: bytesRead, a: buf.subarray(0, bytesRead) }
      }
      case Op.write: {
        const data = req.data ?? new Uint8Array(0)
        const { bytesWritten } = await handles.get(n[0]).write(data, 0, data.length, n[1], o)
        return { result: bytesWritten }
      }
      case Op.statfs:
        return { result: 0, a: encodeStatFs(await volume.statfs(o)) }
      case Op.flush: {
        const fh = handles.get(n[0])
        await fh.flush(o)
        return { result: 0, a: links.others(fh.path) }
      }
      case Op.release: {
        const fh = handles.remove(n[0])
        if (fh === undefined) return OK
        // not bound to the request's deadline: nobody waits on a release (close(2) waited on
        // flush), and the commit of the last handle's writes is the host's to finish
        await fh.close()
        const hiddenAs = hidden.get(fh.ino)
        if (hiddenAs !== undefined && !handles.all().some(h => h.ino === fh.ino)) {
          hidden.delete(fh.ino)
          // libfuse unlinks it too when it saw the release after hiding: one of the two finds it gone
          await volume.unlink(hiddenAs).catch((err: { code?: string }) => { if (err.code !== 'ENOENT') throw err })
        }
        // attributes read while the file was open may lag what the close committed
        return { result: 0, a: [fh.path, ...links.others(fh.path)] }
      }
      case Op.fsync:
        await handles.get(n[0]).sync(o)
        return OK
      case Op.setxattr: {
        const p = need(path, 'setxattr')
        const flags = { create: (n[0] & XATTR_CREATE) !== 0, replace: (n[0] & XATTR_REPLACE) !== 0, signal: o.signal }
        await volume.setxattr(p, need(path2, 'setxattr'), req.data ?? new Uint8Array(0), flags)
        return OK
      }
      case Op.getxattr:
        return { result: 0, a: await volume.getxattr(need(path, 'getxattr'), need(path2, 'getxattr'), o) }
      case Op.listxattr: {
        const names = await volume.listxattr(need(path, 'listxattr'), o)
        return { result: 0, a: Buffer.from(names.map(name => name + '\0').join('')) }
      }
      case Op.removexattr:
        await volume.removexattr(need(path, 'removexattr'), need(path2, 'removexattr'), o)
        return OK
      case Op.opendir: {
        const p = need(path, 'opendir')
        const st = await volume.lstat(p, o)
        if (st.kind !== 'dir') throw new FsError('ENOTDIR', 'opendir', p)
        return await open(dirHandle(volume, p, st.ino))
      }
      case Op.releasedir:
        handles.remove(n[0])
        return OK
      case Op.readdir: {
        const p = n[0] >= 0 ? handles.get(n[0]).path : need(path, 'readdir')
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
        await volume.lstat(need(path, 'access'), o)
        return OK
      case Op.utimens: {
        const p = pathOf(path, n[4], 'utimens')
        // buffered writes commit at flush and stamp their mtime then: commit them first, so
        // explicit times (tar, cp -a, touch on an open file) are the last word
        await Promise.all(handles.all().filter(h => h.path === p).map(async h => { await h.flush(o) }))
        const [atime, mtime] = [timeArg(n[0], n[1]), timeArg(n[2], n[3])]
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
