// Readdir under change (issue 12, item 2): a listing returns every entry that exists
// throughout it exactly once, while other processes unlink and create entries of the same
// directory, and `rm -rf` removes a large directory in one pass. The mount's listing is the
// snapshot libfuse takes at the first readdir of an open directory (the whole directory, from
// one Volume.readdirents call); the kernel's offsets index that snapshot, so they never shift
// while entries come and go.
import assert from 'node:assert/strict'
import { teardown, mountTemp, ok, sh } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'

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

  // Known gap: libfuse's high-level API renames an unlinked file that it still counts as open
  // to `.fuse_hidden*` (hard_remove = 0), and the kernel sends RELEASE after close() has
  // returned, so an unlink right after a close, or of a file another process holds open,
  // leaves a hidden entry behind and the parent's rmdir fails with ENOTEMPTY (ext4: rm -rf
  // succeeds). Fixing it needs unlinked-open inodes served by handle (hard_remove = 1 with
  // fchmod/fchown/futimens/fgetxattr by inode), not by path.
  it.skip('an unlink right after close, or of a file held open, leaves no entry (pending: .fuse_hidden)', async function () {
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
})
