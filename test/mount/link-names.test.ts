// An open file's current name followed through an exchange and a hidden rename (fuse/ops.ts
// filePaths): a write through it refreshes the file's other names but never its own, whose pages
// the kernel holds locked until the write is answered (refreshing it hung the write to its
// deadline, then EIO). Found by review40d: each fails with its moved() call taken out.
import assert from 'node:assert/strict'
import { mountEach, ok } from '../helpers/fuse-mount.ts'

describe('mount: an open hard-linked file\'s name through exchange and hidden rename', function () {
  this.timeout(60_000)
  const here = mountEach({ attrTimeout: 30, syncTimeoutMs: 8000 })
  const py = (body: string): string => [
    'import os, ctypes',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'def xchg(a, b):',
    '  assert libc.syscall(316, -100, a.encode(), -100, b.encode(), 2) == 0, ctypes.get_errno()',
    'def st(n): s = os.stat(n); return "%d %d" % (s.st_size, s.st_mtime_ns)',
    ...body.split('\n')
  ].join('\n')

  it('a exchanged with x while open, then a write: answered (not its own name refreshed), b follows', async function () {
    const { m } = here()
    await ok('head -c 3000 /dev/zero > a && ln a b && echo hi > x', { cwd: m.dir })
    const out = await ok(`python3 -c '${py('fa = os.open("a", os.O_RDWR)\nos.stat("b")\nxchg("a", "x")\nos.stat("x")\nos.pwrite(fa, b"xyz", 3000)\nprint(st("x") == st("b"), st("b").split()[0])\nos.close(fa)')}'`, { cwd: m.dir })
    assert.equal(out, 'True 3003\n')
  })

  it('a unlinked while open (hidden), ln b a again, then a write: the new a follows', async function () {
    const { m } = here()
    await ok('head -c 3000 /dev/zero > a && ln a b', { cwd: m.dir })
    const out = await ok(`python3 -c '${py('fa = os.open("a", os.O_RDWR)\nos.unlink("a")\nos.link("b", "a")\nos.stat("a")\nos.stat("b")\nos.pwrite(fa, b"xyz", 3000)\nprint(st("a") == st("b"), st("a").split()[0])\nos.close(fa)')}'`, { cwd: m.dir })
    assert.equal(out, 'True 3003\n')
  })
})
