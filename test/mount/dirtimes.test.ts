// A directory's times follow its entries (issue 12, item 3): create, mkdir, mknod, symlink,
// link, unlink, rmdir and rename change the mtime and ctime of the directory that gains or
// loses the entry, both directories of a rename. The same script runs on a local temp dir
// (ext4 or tmpfs) to show the expectation is the kernel's, then on the mount, also as an
// unprivileged user.
import assert from 'node:assert/strict'
import { teardown, mountTemp, tempDir, ok, testUser } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'

/**
 * For each operation: the times of the directories it touches before and after (a pause
 * before it, longer than a local disk's timestamp granularity), printed as
 * `<op> <dir> mtime=<changed> ctime=<changed>`.
 */
const SCRIPT = String.raw`
set -e
mkdir a b
: > a/keep; mkdir a/e
times () { for d in $1; do stat -c '%n %.9Y %.9Z' "$d"; done; }
check () {
  op=$1; dirs=$2; shift 2
  before=$(times "$dirs")
  sleep 0.05
  "$@"
  paste -d ' ' <(echo "$before") <(times "$dirs") | while read -r d m1 c1 d2 m2 c2; do
    echo "$op $d mtime=$([ "$m1" != "$m2" ] && echo changed || echo same) ctime=$([ "$c1" != "$c2" ] && echo changed || echo same)"
  done
}
check create a touch a/f
check mkdir a mkdir a/d
check mknod a mknod a/p p
check mkfifo a mkfifo a/q
check symlink a ln -s f a/s
check link b ln a/f b/l
check unlink b rm b/l
check rmdir a rmdir a/d
check rename-within a mv a/f a/g
check rename-across 'a b' mv a/g b/g
check rename-over 'a b' mv a/keep b/g
check rename-dir 'a b' mv a/e b/e
stat -c '%n %h' a b
`

describe('mount: directory times', function () {
  let t: Teardown
  let m: Mounted
  let local: string

  beforeEach(async function () {
    t = teardown()
    m = await mountTemp(t)
    local = await tempDir(t, 'darkfs-local-')
  })
  afterEach(async function () { await t.run() })

  it('create, mkdir, mknod, symlink, link, unlink, rmdir and rename change the parent mtime and ctime', async function () {
    const expected = await ok(SCRIPT, { cwd: local })
    assert.doesNotMatch(expected, /same/)
    assert.equal(expected.split('\n').filter(l => / mtime=/.test(l)).length, 15)
    assert.equal(await ok(SCRIPT, { cwd: m.dir }), expected)
  })

  it('the same as an unprivileged user in a directory of their own', async function () {
    const user = await testUser()
    await ok(`mkdir u && chown ${user.uid}:${user.gid} u`, { cwd: m.dir })
    const out = await ok(SCRIPT.replace('mknod a/p p', 'mkfifo a/p'), { cwd: `${m.dir}/u`, user })
    assert.doesNotMatch(out, /same/)
    assert.equal(out.split('\n').filter(l => / mtime=/.test(l)).length, 15)
  })
})
