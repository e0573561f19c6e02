// Readdir under change (issue 12, item 2): a listing returns every entry that exists
// throughout it exactly once, while other processes unlink and create entries of the same
// directory, and `rm -rf` removes a large directory in one pass. The mount's listing is the
// snapshot libfuse takes at the first readdir of an open directory (the whole directory, from
// one Volume.readdirents call); the kernel's offsets index that snapshot, so they never shift
// while entries come and go.
import assert from 'node:assert/strict'
import { teardown, mountTemp, ok, sh } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'

/** What these tests read of the real Volume's tree: a file's versions after its name is gone. */
interface TreeView {
  root: string
  lookup: (dir: string, name: string) => { inode: string } | undefined
  history: (inode: string) => Array<{ size: number }>
}

/** Files in the directories of these tests. */
const FILES = 2000

/**
 * Lists `dir` (os.listdir: a readdir loop of 32 KiB getdents calls) until the file `stop`
 * exists, and reports listings with a duplicate or without one of the `keep*` files, which
 * nobody touches; prints `listings <n> bad <n>`.
 */
const LISTER = String.raw`
import os, sys
d, n, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
keep = {'keep%d' % i for i in range(n)}
runs = bad = 0
while True:
    last = os.path.exists(stop)
    names = os.listdir(d)
    runs += 1
    if len(set(names)) != len(names) or not keep <= set(names):
        bad += 1
        print('duplicates', len(names) - len(set(names)), 'missing', len(keep - set(names)), file=sys.stderr)
    if last: break
print('listings', runs, 'bad', bad)
`

describe('mount: readdir while entries come and go', function () {
  let t: Teardown
  let m: Mounted

  beforeEach(async function () {
    t = teardown()
    m = await mountTemp(t)
  })
  afterEach(async function () { await t.run() })

  it(`rm -rf of a directory of ${FILES} files succeeds in one pass and leaves nothing`, async function () {
    await ok(`mkdir d && cd d && for i in $(seq 1 ${FILES}); do echo "$i" > "file-$i"; done && ls | wc -l`, { cwd: m.dir })
    const r = await sh('rm -rf d; echo "rc=$?"; ls -a d 2>&1 | wc -l; ls -A', { cwd: m.dir })
    assert.equal(r.stdout, 'rc=0\n1\n')
    assert.equal(r.stderr, '')
  })

  it('a readdir loop that unlinks each entry as it reads it removes them all (git clean, rmtree)', async function () {
    const out = await ok(`mkdir d && cd d && for i in $(seq 1 ${FILES}); do : > "f$i"; done && cd .. && python3 -c "
import os
n = 0
with os.scandir('d') as it:
    for e in it:
        os.unlink(e.path); n += 1
print(n, os.listdir('d'))
os.rmdir('d')
"`, { cwd: m.dir })
    assert.equal(out, `${FILES} []\n`)
  })

  it('listings while another process unlinks and creates show every untouched entry once, no duplicates', async function () {
    const half = FILES / 2
    await ok(`mkdir d && cd d && for i in $(seq 0 ${half - 1}); do : > "keep$i"; : > "old$i"; done`, { cwd: m.dir })
    const lister = ok(`python3 - d ${half} .stop <<'PY'\n${LISTER}\nPY`, { cwd: m.dir })
    const writer = ok(`for i in $(seq 0 ${half - 1}); do rm "d/old$i"; : > "d/new$i"; done; touch .stop`, { cwd: m.dir })
    const [listed] = await Promise.all([lister, writer])
    const [, runs, bad] = /^listings (\d+) bad (\d+)\n$/.exec(listed) ?? []
    assert.ok(Number(runs) > 1, listed)
    assert.equal(Number(bad), 0, listed)
    const final = await ok('ls d | sort | uniq -d | wc -l; ls d | grep -c "^keep"; ls d | grep -c "^new"; ls d | grep -c "^old" || true', { cwd: m.dir })
    assert.equal(final, `0\n${half}\n${half}\n0\n`)
  })

  it('rm -rf while another process lists the directory removes everything', async function () {
    await ok(`mkdir d && cd d && for i in $(seq 1 ${FILES}); do : > "f$i"; done`, { cwd: m.dir })
    const lister = sh('while [ -d d ]; do ls -f d > /dev/null 2>&1; done; echo done', { cwd: m.dir })
    const r = await sh('rm -rf d; echo "rc=$?"; test -e d && ls -A d | wc -l', { cwd: m.dir })
    assert.equal(r.stdout, 'rc=0\n')
    assert.equal((await lister).stdout, 'done\n')
  })

  it('an unlink right after close, or of a file held open, leaves no entry', async function () {
    const out = await ok(`python3 -c "
import os
os.mkdir('d')
for i in range(${FILES}):
    with open('d/f%d' % i, 'w') as f: f.write('x')
    os.unlink('d/f%d' % i)
print(os.listdir('d'))
"; echo x > d/held; (exec 3<d/held; sleep 2) & sleep 0.5; rm -rf d; echo "rc=$?"; wait`, { cwd: m.dir })
    assert.equal(out, '[]\nrc=0\n')
  })

  it('a file held open lives on after another process removes it (read, write, fstat nlink 0, fchmod, xattrs) and leaves nothing at its close', async function () {
    await ok('mkdir d && printf start > d/f', { cwd: m.dir })
    const tree = m.kind === 'real' ? (m.volume as unknown as { tree: TreeView }).tree : undefined
    const id = tree !== undefined ? tree.lookup(tree.lookup(tree.root, 'd')!.inode, 'f')!.inode : undefined
    const out = await ok(`python3 - <<'PY'
import os, subprocess
fd = os.open('d/f', os.O_RDWR)
os.pwrite(fd, b'held', 0)
os.fsync(fd)
subprocess.run(['rm', 'd/f'], check=True)
print('gone', os.path.exists('d/f'), os.listdir('d'))
os.pwrite(fd, b' and written after', 4)
print('read', os.pread(fd, 100, 0))
st = os.fstat(fd)
print('nlink', st.st_nlink, 'size', st.st_size)
os.fchmod(fd, 0o600)
os.setxattr(fd, 'user.k', b'v')
print('mode', oct(os.fstat(fd).st_mode & 0o777), 'xattr', os.getxattr(fd, 'user.k'), os.listxattr(fd))
os.ftruncate(fd, 8)
os.fsync(fd)
print('read', os.pread(fd, 100, 0), os.fstat(fd).st_nlink)
os.close(fd)
print('after', os.listdir('d'))
os.rmdir('d')
PY`, { cwd: m.dir })
    assert.equal(out, [
      'gone False []',
      "read b'held and written after'",
      'nlink 0 size 22',
      "mode 0o600 xattr b'v' ['user.k']",
      "read b'held and' 0",
      'after []',
      ''
    ].join('\n'))
    assert.equal(await ok('ls -A', { cwd: m.dir }), '')
    if (tree !== undefined && id !== undefined) {
      // every handle closed (unmount closes what the kernel has not released yet): the writes
      // after the rm made no version; the file's history ends with the fsync before it
      await m.mount.unmount()
      assert.deepEqual(tree.history(id).map(v => v.size), [5, 5])
    }
  })

  it('rm -rf of a tree with files held open succeeds in one pass; the holders read and write on', async function () {
    await ok('mkdir -p d/a/b d/c && for f in d/top d/a/one d/a/b/two d/c/three; do printf "%s" "$f" > "$f"; done', { cwd: m.dir })
    const out = await ok(`python3 - <<'PY'
import os, subprocess
one = os.open('d/a/one', os.O_RDONLY)
two = os.open('d/a/b/two', os.O_WRONLY | os.O_APPEND)
three = os.open('d/c/three', os.O_RDWR)
r = subprocess.run(['rm', '-rf', 'd'])
print('rc', r.returncode, os.path.exists('d'))
print(os.pread(one, 100, 0), os.write(two, b' more'), os.pwrite(three, b'3', 4), os.pread(three, 100, 0))
for fd in (one, two, three): os.close(fd)
print(os.listdir('.'))
PY`, { cwd: m.dir })
    assert.equal(out, "rc 0 False\nb'd/a/one' 5 1 b'd/c/3hree'\n[]\n")
  })

  it('a rename over a file held open: the holder reads the old bytes, the name shows the new, nothing hidden remains', async function () {
    const out = await ok(`mkdir d && printf old > d/f && exec 3<d/f && printf new > d/g && mv d/g d/f && cat d/f && echo && cat <&3 && echo && exec 3<&- && ls -A d`, { cwd: m.dir })
    assert.equal(out, 'new\nold\nf\n')
  })
})
