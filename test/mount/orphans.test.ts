// Open files and directories whose directory is removed (issue 12, POSIX to the letter): a
// process holds a file and its directory open, another process runs `rm -rf` on the directory.
// On a local disk the holder's fds work on: fstat (nlink 0), fchmod, futimens, ftruncate,
// f*xattr, read and write on the file; fstat (nlink 0) on the directory, whose listing is
// ENOENT (the kernel refuses to read a removed directory); close frees them. The same script
// runs on a local temp dir (ext4 or tmpfs) to show the expectation is the kernel's, then on
// the mount, whose output must be the same.
import assert from 'node:assert/strict'
import { teardown, mountTemp, tempDir, ok } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'

const SCRIPT = String.raw`python3 - <<'PY'
import os, subprocess, stat
os.makedirs('d/sub')
with open('d/sub/f', 'wb') as f: f.write(b'hello world')
fd = os.open('d/sub/f', os.O_RDWR)
dfd = os.open('d/sub', os.O_RDONLY | os.O_DIRECTORY)
top = os.open('d', os.O_RDONLY | os.O_DIRECTORY)
subprocess.run(['rm', '-rf', 'd'], check=True)
print('gone', os.path.exists('d'), os.listdir('.'))
def attempt(what, fn):
    try:
        print(what, fn())
    except OSError as e:
        print(what, 'error', e.errno, os.strerror(e.errno))
def fst(f):
    st = os.fstat(f)
    return (st.st_nlink, st.st_size, oct(st.st_mode))
attempt('fstat', lambda: fst(fd))
attempt('fchmod', lambda: (os.fchmod(fd, 0o640), oct(os.fstat(fd).st_mode & 0o7777))[1])
attempt('futimens', lambda: (os.utime(fd, ns=(1_000_000_001, 2_000_000_002)), os.fstat(fd).st_atime_ns, os.fstat(fd).st_mtime_ns)[1:])
attempt('ftruncate', lambda: (os.ftruncate(fd, 5), os.fstat(fd).st_size)[1])
attempt('pwrite', lambda: os.pwrite(fd, b' there', 5))
attempt('pread', lambda: os.pread(fd, 100, 0))
attempt('fsetxattr', lambda: os.setxattr(fd, 'user.k', b'v'))
attempt('fgetxattr', lambda: (os.getxattr(fd, 'user.k'), os.listxattr(fd)))
attempt('fremovexattr', lambda: (os.removexattr(fd, 'user.k'), os.listxattr(fd))[1])
attempt('fsync', lambda: os.fsync(fd))
attempt('fstat', lambda: fst(fd))
for name, f in (('sub', dfd), ('top', top)):
    attempt(name + ' fstat', lambda: (os.fstat(f).st_nlink, stat.S_ISDIR(os.fstat(f).st_mode)))
    attempt(name + ' fchmod', lambda: (os.fchmod(f, 0o700), oct(os.fstat(f).st_mode & 0o7777))[1])
    attempt(name + ' listdir', lambda: os.listdir(f))
for f in (fd, dfd, top): os.close(f)
print('after', os.listdir('.'))
PY`

/** An open directory renamed (itself, or a directory above it) lists what it holds. */
const RENAMED = String.raw`python3 - <<'PY'
import os
os.makedirs('d/s/x')
fd = os.open('d', os.O_RDONLY | os.O_DIRECTORY)
sub = os.open('d/s', os.O_RDONLY | os.O_DIRECTORY)
os.rename('d', 'e')
print('renamed', sorted(os.listdir(fd)), sorted(os.listdir(sub)), os.fstat(sub).st_nlink)
os.rename('e/s', 't')
print('moved out', sorted(os.listdir(fd)), sorted(os.listdir(sub)))
for f in (fd, sub): os.close(f)
PY`

describe('mount: files and directories held open while their directory is removed', function () {
  let t: Teardown
  let m: Mounted
  let local: string

  beforeEach(async function () {
    t = teardown()
    m = await mountTemp(t)
    local = await tempDir(t, 'darkfs-local-')
  })
  afterEach(async function () { await t.run() })

  it('fstat, fchmod, futimens, ftruncate, xattrs, read and write work on as on a local disk; close frees them', async function () {
    const expected = await ok(SCRIPT, { cwd: local })
    assert.match(expected, /^fstat \(0, 11, '0o100644'\)$/m)
    assert.match(expected, /^sub fstat \(0, True\)$/m)
    assert.doesNotMatch(expected.replace(/listdir error 2 .*/g, ''), /error/)
    assert.equal(await ok(SCRIPT, { cwd: m.dir }), expected)
    assert.equal(await ok('ls -A', { cwd: m.dir }), '')
  })

  it('an open directory renamed on the mount lists its entries by its new path', async function () {
    const expected = await ok(RENAMED, { cwd: local })
    assert.equal(expected, "renamed ['s'] ['x'] 3\nmoved out [] ['x']\n")
    assert.equal(await ok(RENAMED, { cwd: m.dir }), expected)
  })
})
