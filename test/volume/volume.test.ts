import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Volume, FsError, AlreadyRunningError } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { assertSameBytes } from '../helpers/same-bytes.ts'
import { onEachOp } from '../../harness/ops.ts'

async function rejectsCode (p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.ok(err instanceof FsError, `expected FsError, got ${err?.name}: ${err?.message}`)
    assert.equal(err.code, code)
    return true
  })
}

describe('Volume (one host, real data dir)', function () {
  const t = new Teardown()
  let dir: string
  let vol: Awaited<ReturnType<typeof Volume.open>>

  beforeEach(async () => {
    dir = await tempDir(t)
    vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
  })
  afterEach(async () => { await t.run() })

  it('volume.writeFile(p) then readFile(p) round-trips small, chunk-sized and multi-chunk files', async () => {
    for (const size of [0, 1, 4096, 4097, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 12345]) {
      const data = randomBytes(size)
      await vol.writeFile(`/f${size}`, data)
      assert.deepEqual(Buffer.from(await vol.readFile(`/f${size}`)), data, `size ${size}`)
      assert.equal((await vol.stat(`/f${size}`)).size, size)
    }
  })

  it('volume.open() handles: positioned writes, reads through another handle before close, truncate', async () => {
    const a = await vol.open('/x', 'w+')
    const b = await vol.open('/x', 'r')
    const chunk = 1 << 20
    const tail = randomBytes(100)
    await a.write(tail, 0, 100, 2 * chunk + 50) // sparse start
    const buf = new Uint8Array(150)
    const { bytesRead } = await b.read(buf, 0, 150, 2 * chunk)
    assert.equal(bytesRead, 150)
    assert.deepEqual(Buffer.from(buf.subarray(0, 50)), Buffer.alloc(50))
    assert.deepEqual(Buffer.from(buf.subarray(50)), tail)
    await a.truncate(2 * chunk + 60)
    await a.write(Buffer.from('hello'), 0, 5, 10)
    await a.close()
    await b.close()
    const all = await vol.readFile('/x')
    assert.equal(all.byteLength, 2 * chunk + 60)
    assert.equal(Buffer.from(all.subarray(10, 15)).toString(), 'hello')
    assert.deepEqual(Buffer.from(all.subarray(2 * chunk + 50)), tail.subarray(0, 10))
  })

  it('a handle\'s write copies a Buffer it is given: the caller may reuse it once write() resolves (as node:fs)', async () => {
    // Buffer#slice is a view, not a copy: the bytes written must not follow the caller's buffer
    const fh = await vol.open('/reuse', 'w')
    const buf = Buffer.alloc(1 << 20)
    const want: Buffer[] = []
    for (let i = 0; i < 3; i++) {
      buf.fill(0x61 + i)
      want.push(Buffer.from(buf))
      await fh.write(buf, 0, buf.byteLength, i * buf.byteLength)
    }
    buf.fill(0x7a)
    await fh.close()
    // (compared without a diff: a deepEqual of 3 MiB that differ built one for minutes, and
    // the failing test looked like a hung close: bugs38)
    assertSameBytes(await vol.readFile('/reuse'), Buffer.concat(want), '/reuse')
  })

  it('volume.truncate() shrinks then grows with zeros, never old bytes', async () => {
    const data = randomBytes(3 << 20)
    await vol.writeFile('/t', data)
    const fh = await vol.open('/t', 'r+')
    await fh.truncate(1000)
    await fh.truncate(3 << 20)
    await fh.close()
    const back = await vol.readFile('/t')
    assert.deepEqual(Buffer.from(back.subarray(0, 1000)), data.subarray(0, 1000))
    assert.ok(back.subarray(1000).every(b => b === 0))
  })

  it('volume.mkdir/readdir/rmdir/rm with POSIX errors', async () => {
    await vol.mkdir('/a')
    await rejectsCode(vol.mkdir('/a'), 'EEXIST')
    await vol.mkdir('/a/b/c', { recursive: true })
    await vol.writeFile('/a/b/c/f', 'x')
    assert.deepEqual(await vol.readdir('/a'), ['b'])
    await rejectsCode(vol.rmdir('/a/b'), 'ENOTEMPTY')
    await rejectsCode(vol.rm('/a'), 'ENOTEMPTY')
    await rejectsCode(vol.readdir('/a/b/c/f'), 'ENOTDIR')
    await rejectsCode(vol.unlink('/a'), 'EISDIR')
    await rejectsCode(vol.stat('/nope'), 'ENOENT')
    await rejectsCode(vol.writeFile('/a/b/c/f/g', 'x'), 'ENOTDIR')
    await vol.rm('/a', { recursive: true })
    assert.deepEqual(await vol.readdir('/'), [])
  })

  it('volume.rename(a, b) over an existing file replaces it atomically', async () => {
    await vol.writeFile('/a', 'new')
    await vol.writeFile('/b', 'old')
    const before = await vol.stat('/a')
    await vol.rename('/a', '/b')
    assert.equal(Buffer.from(await vol.readFile('/b')).toString(), 'new')
    assert.equal((await vol.stat('/b')).ino, before.ino)
    await rejectsCode(vol.stat('/a'), 'ENOENT')
    assert.deepEqual(await vol.readdir('/'), ['b'])
  })

  it('volume.rename() of directories: over an empty dir, not over a non-empty one, not into itself', async () => {
    await vol.mkdir('/d1/sub', { recursive: true })
    await vol.mkdir('/d2')
    await vol.mkdir('/d3/x', { recursive: true })
    await rejectsCode(vol.rename('/d1', '/d1/sub/in'), 'EINVAL')
    await rejectsCode(vol.rename('/d1', '/d3'), 'ENOTEMPTY')
    await vol.writeFile('/f', '1')
    await rejectsCode(vol.rename('/f', '/d2'), 'EISDIR')
    await rejectsCode(vol.rename('/d1', '/f'), 'ENOTDIR')
    await vol.rename('/d1', '/d2')
    assert.deepEqual(await vol.readdir('/d2'), ['sub'])
  })

  it('volume.link() shares the inode and counts links; unlink drops one', async () => {
    await vol.writeFile('/a', 'data')
    await vol.link('/a', '/b')
    const [sa, sb] = [await vol.stat('/a'), await vol.stat('/b')]
    assert.equal(sa.ino, sb.ino)
    assert.equal(sa.nlink, 2)
    await vol.unlink('/a')
    assert.equal((await vol.stat('/b')).nlink, 1)
    assert.equal(Buffer.from(await vol.readFile('/b')).toString(), 'data')
    await vol.mkdir('/d')
    await rejectsCode(vol.link('/d', '/d2'), 'EPERM')
  })

  it('volume.link(), unlink() and rename() over a link change the ctime of the inode whose links remain', async () => {
    await vol.writeFile('/a', 'data')
    const c0 = (await vol.stat('/a')).ctimeNs
    await vol.link('/a', '/b')
    const c1 = (await vol.stat('/a')).ctimeNs
    assert.ok(c1 > c0, 'link')
    assert.equal((await vol.stat('/b')).ctimeNs, c1)
    await vol.link('/a', '/c')
    await vol.unlink('/c')
    const c2 = (await vol.stat('/a')).ctimeNs
    assert.ok(c2 > c1, 'unlink')
    await vol.writeFile('/x', 'other')
    await vol.rename('/x', '/b')
    const c3 = (await vol.stat('/a')).ctimeNs
    assert.ok(c3 > c2, 'rename over a link')
    assert.equal((await vol.stat('/a')).nlink, 1)
  })

  it('volume.changedPaths(op) of an unlink or a rename over a hard link names the file\'s other names', async () => {
    const bodies: any[] = []
    onEachOp(vol.tree, (op) => { bodies.push(op.body) })
    await vol.mkdir('/d')
    await vol.writeFile('/a', 'data')
    await vol.link('/a', '/d/b')
    await vol.link('/a', '/c')
    await vol.stat('/d/b')
    await vol.unlink('/d/b')
    assert.deepEqual(vol.changedPaths(bodies.at(-1)).sort(), ['/a', '/c', '/d', '/d/b'])
    await vol.writeFile('/x', 'other')
    await vol.stat('/c')
    await vol.rename('/x', '/c')
    assert.ok(vol.changedPaths(bodies.at(-1)).includes('/a'))
  })

  it('volume.symlink/readlink, followed by stat, not by lstat', async () => {
    await vol.mkdir('/dir')
    await vol.writeFile('/dir/file', 'abc')
    await vol.symlink('dir/file', '/ln')
    await vol.symlink('/dir', '/abs')
    assert.equal(await vol.readlink('/ln'), 'dir/file')
    assert.equal((await vol.stat('/ln')).size, 3)
    assert.ok((await vol.lstat('/ln')).isSymbolicLink())
    assert.equal(Buffer.from(await vol.readFile('/abs/file')).toString(), 'abc')
    await vol.symlink('loop2', '/loop1')
    await vol.symlink('loop1', '/loop2')
    await rejectsCode(vol.stat('/loop1'), 'ELOOP')
  })

  it('volume.chmod/chown/utimes with nanoseconds and one time alone', async () => {
    await vol.writeFile('/f', 'x', { caller: { uid: 1000, gid: 1000 } })
    let s = await vol.stat('/f')
    assert.equal(s.uid, 1000)
    await vol.chmod('/f', 0o4750)
    await vol.chown('/f', 7, 8)
    s = await vol.stat('/f')
    assert.equal(s.mode & 0o7777, 0o4750)
    assert.deepEqual([s.uid, s.gid], [7, 8])
    await vol.utimes('/f', 1_000_000_123_456_789n, 'omit')
    const before = await vol.stat('/f')
    assert.equal(before.atimeNs, 1_000_000_123_456_789n)
    await vol.utimes('/f', 'omit', 2_000_000_000_000_000_001n)
    const after = await vol.stat('/f')
    assert.equal(after.atimeNs, 1_000_000_123_456_789n)
    assert.equal(after.mtimeNs, 2_000_000_000_000_000_001n)
  })

  it('volume xattrs: set, get, list, remove, create/replace flags', async () => {
    await vol.writeFile('/f', 'x')
    await vol.setxattr('/f', 'user.a', Buffer.from('1'))
    await rejectsCode(vol.setxattr('/f', 'user.a', Buffer.from('2'), { create: true }), 'EEXIST')
    await rejectsCode(vol.setxattr('/f', 'user.b', Buffer.from('2'), { replace: true }), 'ENODATA')
    assert.deepEqual(await vol.listxattr('/f'), ['user.a'])
    assert.equal(Buffer.from(await vol.getxattr('/f', 'user.a')).toString(), '1')
    await vol.removexattr('/f', 'user.a')
    await rejectsCode(vol.getxattr('/f', 'user.a'), 'ENODATA')
  })

  it('bad paths: relative, escaping the root with .., over-long names', async () => {
    await rejectsCode(vol.writeFile('rel', 'x'), 'EINVAL')
    await rejectsCode(vol.writeFile('/../etc/passwd', 'x'), 'EINVAL')
    await rejectsCode(vol.writeFile('/' + 'n'.repeat(256), 'x'), 'ENAMETOOLONG')
    await vol.writeFile('/' + 'n'.repeat(255), 'x')
    assert.equal((await vol.readdir('/')).length, 1)
  })

  it('setgid directories pass their group on; umask applies', async () => {
    await vol.mkdir('/g', { mode: 0o2775 })
    await vol.chown('/g', 0, 50)
    await vol.mkdir('/g/sub', { caller: { uid: 1000, gid: 1000, umask: 0o022 }, mode: 0o777 })
    const s = await vol.stat('/g/sub')
    assert.equal(s.gid, 50)
    assert.equal(s.mode & 0o7777, 0o2755)
  })

  it('volume.readFile(p, \'utf8\') and readFile(p, { encoding }) give a string, as node:fs/promises', async () => {
    await vol.writeFile('/t.txt', 'héllo\n')
    assert.equal(await vol.readFile('/t.txt', 'utf8'), 'héllo\n')
    assert.equal(await vol.readFile('/t.txt', { encoding: 'utf8' }), 'héllo\n')
    assert.equal(await vol.readFile('/t.txt', { encoding: 'base64' }), Buffer.from('héllo\n').toString('base64'))
    assert.ok((await vol.readFile('/t.txt')) instanceof Uint8Array)
  })

  it('volume.readdir(p, { withFileTypes: true }) gives Dirents, as node:fs/promises', async () => {
    await vol.mkdir('/d')
    await vol.mkdir('/d/sub')
    await vol.writeFile('/d/f', 'x')
    assert.deepEqual((await vol.readdir('/d')).sort(), ['f', 'sub'])
    const ents = await vol.readdir('/d', { withFileTypes: true })
    assert.deepEqual(ents.map(e => [e.name, e.kind]).sort(), [['f', 'file'], ['sub', 'dir']])
  })

  it('Volume.open() of a data dir another Volume holds fails (one process per data dir), and works once it is closed', async () => {
    await assert.rejects(Volume.open({ dir }), (err: any) => err instanceof AlreadyRunningError)
    await vol.close()
    const again = await Volume.open({ dir })
    t.add(async () => { await again.close() })
    assert.deepEqual(await again.readdir('/'), [])
  })

  it('the tree survives a restart unchanged', async () => {
    await vol.mkdir('/a/b', { recursive: true })
    await vol.writeFile('/a/b/f', randomBytes(2 << 20))
    await vol.symlink('b/f', '/a/l')
    await vol.link('/a/b/f', '/h')
    await vol.chmod('/a', 0o700)
    await vol.setxattr('/h', 'user.k', Buffer.from('v'))
    const snapshot = async (v: typeof vol): Promise<unknown> => {
      const out: unknown[] = []
      const walk = async (p: string): Promise<void> => {
        for (const name of await v.readdir(p)) {
          const c = (p === '/' ? '' : p) + '/' + name
          const s = await v.lstat(c)
          out.push([c, s.ino, s.mode, s.nlink, s.size, s.mtimeNs, s.kind === 'file' ? Buffer.from(await v.readFile(c)).toString('base64') : null])
          if (s.isDirectory()) await walk(c)
        }
      }
      await walk('/')
      return out
    }
    const before = await snapshot(vol)
    await vol.close()
    const again = await Volume.open({ dir })
    t.add(async () => { await again.close() })
    assert.deepEqual(await snapshot(again), before)
  })
})
