// Long paths below the mount point (issue 12, item 4): PATH_MAX bounds one system call's
// argument, not a file's depth. A relative path of 4,095 bytes made of 255-byte components is
// legal on Linux, and so is any depth reached by walking down; the mount must not re-impose a
// bound on the full path it rebuilds with its own prefix. Every case runs the same script on a
// local temp dir (ext4 or tmpfs) and on the mount, and the two must print the same.
import assert from 'node:assert/strict'
import { teardown, mountTemp, tempDir, ok } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'

/**
 * Python, because it hands a path to the system call as it is. Builds P, a relative path of
 * PATH_MAX - 1 = 4,095 bytes (15 directories of 255 bytes, then a 255-byte name), and siblings
 * of its last component, then runs every operation of the item on them, printing one line per
 * result (an errno name when it fails).
 */
const SCRIPT = String.raw`
import errno, os, stat, sys
def name(c): return c * 255
dirs = '/'.join(name(c) for c in 'abcdefghijklmno')
os.makedirs(dirs)
P = dirs + '/' + name('p')
Q = dirs + '/' + name('q')
R = dirs + '/' + name('r')
assert len(P.encode()) == 4095, len(P.encode())
def run(label, fn):
    try:
        r = fn()
        print(label, 'ok' if r is None else r)
    except OSError as e:
        print(label, errno.errorcode[e.errno])
def kind(p): return stat.filemode(os.lstat(p).st_mode)
def creat():
    fd = os.open(P, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    os.write(fd, b'hello long path\n')
    os.close(fd)
def read():
    fd = os.open(P, os.O_RDONLY)
    try: return os.read(fd, 100).decode().strip()
    finally: os.close(fd)
run('create', creat)
run('open', read)
run('chmod', lambda: os.chmod(P, 0o640))
run('mode', lambda: kind(P))
run('chown', lambda: os.chown(P, 65534, 65533))
run('owner', lambda: '%d:%d' % (os.lstat(P).st_uid, os.lstat(P).st_gid))
run('truncate', lambda: os.truncate(P, 5))
run('size', lambda: os.lstat(P).st_size)
run('link', lambda: os.link(P, Q))
run('nlink', lambda: os.lstat(P).st_nlink)
run('rename', lambda: os.rename(Q, R))
run('renamed', lambda: os.path.exists(Q) or os.lstat(R).st_size)
run('unlink', lambda: os.unlink(R))
run('unlink', lambda: os.unlink(P))
run('gone', lambda: os.path.lexists(P))
run('mkdir', lambda: os.mkdir(P, 0o755))
run('isdir', lambda: kind(P))
run('rmdir', lambda: os.rmdir(P))
run('symlink', lambda: os.symlink('some/target', P))
run('readlink', lambda: os.readlink(P))
run('unlink', lambda: os.unlink(P))
run('mkfifo', lambda: os.mkfifo(P, 0o600))
run('fifo', lambda: kind(P))
run('unlink', lambda: os.unlink(P))
run('mknod', lambda: os.mknod(P, stat.S_IFIFO | 0o640))
run('node', lambda: kind(P))
run('unlink', lambda: os.unlink(P))
run('mknod-chr', lambda: os.mknod(P, stat.S_IFCHR | 0o600, os.makedev(1, 3)))
run('chr', lambda: '%s %d,%d' % (kind(P), os.major(os.lstat(P).st_rdev), os.minor(os.lstat(P).st_rdev)))
run('unlink', lambda: os.unlink(P))
run('listing', lambda: os.listdir(dirs))
run('name-too-long', lambda: os.mkdir(dirs + '/' + 'x' * 256))
`

/** Walks 30 directories of 255 bytes down (7,680 bytes of path), and works at the bottom. */
const DEEP = String.raw`
import os
n = 'd' * 255
top = os.getcwd()
for i in range(30):
    os.mkdir(n)
    os.chdir(n)
with open('f', 'w') as f: f.write('deep\n')
os.symlink('f', 's')
os.rename('f', 'g')
print(open('s').read() if os.path.exists('s') else 'dangling', open('g').read().strip(), sorted(os.listdir('.')))
`

describe('mount: long paths', function () {
  let t: Teardown
  let m: Mounted
  let local: string

  beforeEach(async function () {
    t = teardown()
    m = await mountTemp(t)
    local = await tempDir(t, 'darkfs-local-')
  })
  afterEach(async function () { await t.run() })

  /** Runs the python script, then the shell lines `after`, in a fresh dir on each side. */
  async function both (script: string, after = ''): Promise<{ local: string, mount: string }> {
    await ok('mkdir work', { cwd: local })
    await ok('mkdir work', { cwd: m.dir })
    const py = `set -e\npython3 - <<'PY'\n${script}\nPY\n${after}`
    return { local: await ok(py, { cwd: `${local}/work` }), mount: await ok(py, { cwd: `${m.dir}/work` }) }
  }

  it('every operation on a 4,095-byte relative path of 255-byte components works as on a local disk', async function () {
    const out = await both(SCRIPT)
    // the script itself is right: on the local disk every operation but the last succeeds
    assert.deepEqual(out.local.match(/ E[A-Z]+$/mg), [' ENAMETOOLONG'])
    assert.match(out.local, /\nname-too-long ENAMETOOLONG\n$/)
    assert.equal(out.mount, out.local)
  })

  it('a tree 30 directories of 255 bytes deep (7,680-byte paths) works, and rm -rf removes it', async function () {
    // find walks by directory fds: it prints the file's depth, size and path length in bytes
    const out = await both(DEEP, `find . -name g -printf '%d %s ' -exec sh -c 'printf %s "$1" | wc -c' sh {} ';'`)
    assert.match(out.local, /^dangling deep \['g', 's'\]\n31 5 7683\n$/)
    assert.equal(out.mount, out.local)
    await ok(`rm -rf work && test ! -e work`, { cwd: m.dir })
  })
})
