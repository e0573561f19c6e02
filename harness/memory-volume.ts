// A small in-memory VolumeApi for the FUSE adapter's tests (test-only): inodes with hard
// links, symlinks, device nodes, xattrs and nanosecond times, with POSIX errors. Every call
// takes AbortOptions last, as VolumeApi says, and checks the signal at entry (nothing here waits).
// A test that needs a call to wait on its signal replaces that method (test/fuse/deadline.test.ts).
import type { AbortOptions } from '@libp2p/interface'
import { FsError } from '../node/index.ts'
import type { Caller, Dirent, FileHandle, Kind, OpenFlags, StatFs, Stats, TimeArg, VolumeApi } from '../node/index.ts'

const IFMT = 0o170000
const kinds: Array<[Kind, number]> = [['file', 0o100000], ['dir', 0o040000], ['symlink', 0o120000], ['fifo', 0o010000], ['chr', 0o020000], ['blk', 0o060000], ['sock', 0o140000]]
const bitsOf = new Map(kinds)
const kindOf = new Map(kinds.map(([k, b]) => [b, k]))

interface Node {
  ino: number
  kind: Kind
  perm: number
  uid: number
  gid: number
  rdev: number
  nlink: number
  data: Buffer
  size: number
  target: string
  children: Map<string, Node> | null
  xattrs: Map<string, Uint8Array>
  atime: bigint
  mtime: bigint
  ctime: bigint
  btime: bigint
}

const now = (): bigint => BigInt(Date.now()) * 1_000_000n + process.hrtime.bigint() % 1_000_000n

function toNs (t: TimeArg, current: bigint): bigint {
  if (t === 'omit') return current
  if (t === 'now') return now()
  if (typeof t === 'bigint') return t
  if (t instanceof Date) return BigInt(t.getTime()) * 1_000_000n
  return BigInt(Math.round(t * 1000)) * 1_000_000n
}

/** A call's entry: an aborted signal stops it before it does anything. */
function entry (options?: AbortOptions): void {
  options?.signal?.throwIfAborted()
}

export function createMemoryVolume (): VolumeApi {
  let nextIno = 1
  const mk = (kind: Kind, perm: number, caller: Caller): Node => {
    const t = now()
    return { ino: nextIno++, kind, perm: perm & 0o7777, uid: caller.uid, gid: caller.gid, rdev: 0, nlink: kind === 'dir' ? 2 : 1, data: Buffer.alloc(0), size: 0, target: '', children: kind === 'dir' ? new Map() : null, xattrs: new Map(), atime: t, mtime: t, ctime: t, btime: t }
  }
  const root = mk('dir', 0o755, { uid: 0, gid: 0 })
  const ROOT: Caller = { uid: 0, gid: 0 }

  function parts (path: string): string[] {
    return path.split('/').filter(p => p !== '')
  }
  function walk (path: string, syscall: string): Node {
    let n = root
    for (const p of parts(path)) {
      if (n.children === null) throw new FsError('ENOTDIR', syscall, path)
      const c = n.children.get(p)
      if (c === undefined) throw new FsError('ENOENT', syscall, path)
      n = c
    }
    return n
  }
  function parentAndName (path: string, syscall: string): [Node, string] {
    const ps = parts(path)
    const name = ps.pop()
    if (name === undefined) throw new FsError('EEXIST', syscall, path)
    const parent = walk('/' + ps.join('/'), syscall)
    if (parent.children === null) throw new FsError('ENOTDIR', syscall, path)
    if (Buffer.byteLength(name) > 255) throw new FsError('ENAMETOOLONG', syscall, path)
    return [parent, name]
  }
  function add (path: string, node: Node, syscall: string): void {
    const [parent, name] = parentAndName(path, syscall)
    if (parent.children!.has(name)) throw new FsError('EEXIST', syscall, path)
    parent.children!.set(name, node)
    if (node.kind === 'dir') parent.nlink++
    parent.mtime = parent.ctime = now()
  }
  function statOf (n: Node): Stats {
    const ms = (t: bigint): number => Number(t / 1_000_000n)
    return {
      ino: n.ino, mode: bitsOf.get(n.kind)! | n.perm, kind: n.kind, nlink: n.nlink, uid: n.uid, gid: n.gid, rdev: n.rdev,
      size: n.kind === 'symlink' ? Buffer.byteLength(n.target) : n.size, blocks: Math.ceil(n.size / 512), blksize: 4096,
      atimeNs: n.atime, mtimeNs: n.mtime, ctimeNs: n.ctime, birthtimeNs: n.btime, atimeMs: ms(n.atime), mtimeMs: ms(n.mtime), ctimeMs: ms(n.ctime),
      isFile: () => n.kind === 'file', isDirectory: () => n.kind === 'dir', isSymbolicLink: () => n.kind === 'symlink'
    }
  }
  function reserve (n: Node, len: number): void {
    if (len <= n.data.length) return
    const grown = Buffer.alloc(Math.max(len, n.data.length * 2))
    n.data.copy(grown, 0, 0, n.size)
    n.data = grown
  }
  function resize (n: Node, len: number): void {
    reserve(n, len)
    if (len > n.size) n.data.fill(0, n.size, len)
    n.size = len
    n.mtime = n.ctime = now()
  }
  /** Attribute and xattr changes of one node, by path or through a handle (also once unlinked). */
  const attrs = {
    chmod (n: Node, mode: number): void { n.perm = mode & 0o7777; n.ctime = now() },
    chown (n: Node, uid: number, gid: number): void { n.uid = uid; n.gid = gid; n.ctime = now() },
    utimes (n: Node, atime: TimeArg, mtime: TimeArg): void {
      n.atime = toNs(atime, n.atime)
      n.mtime = toNs(mtime, n.mtime)
      n.ctime = now()
    },
    getxattr (n: Node, name: string, path: string): Uint8Array {
      const v = n.xattrs.get(name)
      if (v === undefined) throw new FsError('ENODATA', 'getxattr', path)
      return v
    },
    setxattr (n: Node, name: string, value: Uint8Array, flags: { create?: boolean, replace?: boolean }, path: string): void {
      if (flags.create === true && n.xattrs.has(name)) throw new FsError('EEXIST', 'setxattr', path)
      if (flags.replace === true && !n.xattrs.has(name)) throw new FsError('ENODATA', 'setxattr', path)
      n.xattrs.set(name, Uint8Array.from(value))
      n.ctime = now()
    },
    removexattr (n: Node, name: string, path: string): void {
      if (!n.xattrs.delete(name)) throw new FsError('ENODATA', 'removexattr', path)
      n.ctime = now()
    }
  }
  function handle (path: string, n: Node, append: boolean): FileHandle {
    return {
      path,
      ino: n.ino,
      async read (buffer, offset, length, position, o) {
        entry(o)
        const src = n.data.subarray(Math.min(position, n.size), Math.min(position + length, n.size))
        Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength).set(src, offset)
        return { bytesRead: src.length }
      },
      async write (buffer, offset, length, position, o) {
        entry(o)
        if (append) position = n.size
        if (position > n.size) resize(n, position)
        reserve(n, position + length)
        n.size = Math.max(n.size, position + length)
        n.data.set(buffer.subarray(offset, offset + length), position)
        n.mtime = n.ctime = now()
        return { bytesWritten: length }
      },
      async truncate (len = 0, o) { entry(o); resize(n, len) },
      async stat (o) { entry(o); return statOf(n) },
      async chmod (mode, o) { entry(o); attrs.chmod(n, mode) },
      async chown (uid, gid, o) { entry(o); attrs.chown(n, uid, gid) },
      async utimes (atime, mtime, o) { entry(o); attrs.utimes(n, atime, mtime) },
      async getxattr (name, o) { entry(o); return attrs.getxattr(n, name, path) },
      async setxattr (name, value, flags = {}) { entry(flags); attrs.setxattr(n, name, value, flags, path) },
      async listxattr (o) { entry(o); return [...n.xattrs.keys()] },
      async removexattr (name, o) { entry(o); attrs.removexattr(n, name, path) },
      async sync (o) { entry(o) },
      async flush (o) { entry(o) },
      async close () {}
    }
  }
  function flagsOf (flags: OpenFlags): number {
    if (typeof flags === 'number') return flags
    const table: Record<string, number> = { r: 0, 'r+': 2, w: 0o1101, 'w+': 0o1102, a: 0o2101, 'a+': 0o2102, wx: 0o1301, 'wx+': 0o1302 }
    return table[flags] ?? 0
  }
  function unlinkNode (path: string, dir: boolean, syscall: string): void {
    const [parent, name] = parentAndName(path, syscall)
    const n = parent.children!.get(name)
    if (n === undefined) throw new FsError('ENOENT', syscall, path)
    if (dir && n.kind !== 'dir') throw new FsError('ENOTDIR', syscall, path)
    if (!dir && n.kind === 'dir') throw new FsError('EISDIR', syscall, path)
    if (dir && n.children!.size > 0) throw new FsError('ENOTEMPTY', syscall, path)
    parent.children!.delete(name)
    if (dir) parent.nlink--
    n.nlink -= dir ? 2 : 1
    n.ctime = parent.mtime = parent.ctime = now()
  }

  const vol: VolumeApi = {
    async readFile (path, o) { entry(o); const n = walk(path, 'open'); return Buffer.from(n.data.subarray(0, n.size)) },
    async writeFile (path, data, opts = {}) {
      const fh = await vol.open(path, 'w', opts.mode ?? 0o666, opts.caller, opts)
      const buf = typeof data === 'string' ? Buffer.from(data) : data
      await fh.write(buf, 0, buf.length, 0, opts)
    },
    async open (path, flags = 'r', mode = 0o666, caller = ROOT, o) {
      entry(o)
      const f = flagsOf(flags)
      let n: Node
      try {
        n = walk(path, 'open')
        if ((f & 0o300) === 0o300) throw new FsError('EEXIST', 'open', path)
      } catch (err: any) {
        if (err.code !== 'ENOENT' || (f & 0o100) === 0) throw err
        n = mk('file', mode & ~(caller.umask ?? 0), caller)
        add(path, n, 'open')
      }
      if (n.kind === 'dir' && (f & 3) !== 0) throw new FsError('EISDIR', 'open', path)
      if ((f & 0o1000) !== 0 && n.kind === 'file') resize(n, 0)
      return handle(path, n, (f & 0o2000) !== 0)
    },
    async stat (path, o) { entry(o); return statOf(walk(path, 'stat')) },
    async lstat (path, o) { entry(o); return statOf(walk(path, 'lstat')) },
    async readdir (path, o) { return (await vol.readdirents(path, o)).map(d => d.name) },
    async readdirents (path, o): Promise<Dirent[]> {
      entry(o)
      const n = walk(path, 'scandir')
      if (n.children === null) throw new FsError('ENOTDIR', 'scandir', path)
      return [...n.children].map(([name, c]) => ({ name, kind: c.kind, ino: c.ino }))
    },
    async mkdir (path, opts = {}) {
      entry(opts)
      const caller = opts.caller ?? ROOT
      add(path, mk('dir', (opts.mode ?? 0o777) & ~(caller.umask ?? 0), caller), 'mkdir')
    },
    async rmdir (path, o) { entry(o); unlinkNode(path, true, 'rmdir') },
    async rm (path, o) { entry(o); unlinkNode(path, walk(path, 'rm').kind === 'dir', 'rm') },
    async unlink (path, o) { entry(o); unlinkNode(path, false, 'unlink') },
    async rename (from, to, o) {
      entry(o)
      const [sp, sn] = parentAndName(from, 'rename')
      const n = sp.children!.get(sn)
      if (n === undefined) throw new FsError('ENOENT', 'rename', from)
      if (to === from || to.startsWith(from + '/')) {
        if (to === from) return
        throw new FsError('EINVAL', 'rename', to)
      }
      const [dp, dn] = parentAndName(to, 'rename')
      const old = dp.children!.get(dn)
      if (old === n) return
      if (old !== undefined) {
        if (old.kind === 'dir' && n.kind !== 'dir') throw new FsError('EISDIR', 'rename', to)
        if (old.kind !== 'dir' && n.kind === 'dir') throw new FsError('ENOTDIR', 'rename', to)
        unlinkNode(to, old.kind === 'dir', 'rename')
      }
      sp.children!.delete(sn)
      dp.children!.set(dn, n)
      if (n.kind === 'dir') { sp.nlink--; dp.nlink++ }
      sp.mtime = sp.ctime = dp.mtime = dp.ctime = n.ctime = now()
    },
    async symlink (target, path, caller = ROOT, o) {
      entry(o)
      const n = mk('symlink', 0o777, caller)
      n.target = target
      add(path, n, 'symlink')
    },
    async readlink (path, o) {
      entry(o)
      const n = walk(path, 'readlink')
      if (n.kind !== 'symlink') throw new FsError('EINVAL', 'readlink', path)
      return n.target
    },
    async link (existing, path, o) {
      entry(o)
      const n = walk(existing, 'link')
      if (n.kind === 'dir') throw new FsError('EPERM', 'link', existing)
      add(path, n, 'link')
      n.nlink++
      n.ctime = now()
    },
    async mknod (path, mode, rdev, caller = ROOT, o) {
      entry(o)
      const kind = kindOf.get(mode & IFMT) ?? 'file'
      const n = mk(kind, mode & ~(caller.umask ?? 0), caller)
      n.rdev = rdev
      add(path, n, 'mknod')
    },
    async chmod (path, mode, o) { entry(o); attrs.chmod(walk(path, 'chmod'), mode) },
    async chown (path, uid, gid, o) { entry(o); attrs.chown(walk(path, 'chown'), uid, gid) },
    async utimes (path, atime, mtime, o) { entry(o); attrs.utimes(walk(path, 'utimes'), atime, mtime) },
    async lutimes (path, atime, mtime, o) { await vol.utimes(path, atime, mtime, o) },
    async lchown (path, uid, gid, o) { await vol.chown(path, uid, gid, o) },
    async truncate (path, len = 0, o) {
      entry(o)
      const n = walk(path, 'truncate')
      if (n.kind === 'dir') throw new FsError('EISDIR', 'truncate', path)
      resize(n, len)
    },
    async getxattr (path, name, o) { entry(o); return attrs.getxattr(walk(path, 'getxattr'), name, path) },
    async setxattr (path, name, value, flags = {}) { entry(flags); attrs.setxattr(walk(path, 'setxattr'), name, value, flags, path) },
    async listxattr (path, o) { entry(o); return [...walk(path, 'listxattr').xattrs.keys()] },
    async removexattr (path, name, o) { entry(o); attrs.removexattr(walk(path, 'removexattr'), name, path) },
    async statfs (o): Promise<StatFs> {
      entry(o)
      return { bsize: 4096, blocks: 1 << 24, bfree: 1 << 23, bavail: 1 << 23, files: 1 << 20, ffree: (1 << 20) - nextIno, namemax: 255 }
    }
  }
  return vol
}
