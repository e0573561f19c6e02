// Long paths below the mount point (issue 12, item 4): PATH_MAX bounds one system call's
// argument, not a file's depth. A relative path of 4,095 bytes made of 255-byte components is
// legal on Linux, and so is any depth reached by walking down; the mount must not re-impose a
// bound on the full path it rebuilds with its own prefix. Every case runs the same script on a
// local temp dir (ext4 or tmpfs) and on the mount, and the two must print the same.
import assert from 'node:assert/strict'
import { teardown, mountTemp, tempDir, ok } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'
import { LONGPATH_SCRIPT, DEEP_SCRIPT } from '../helpers/mount-scripts.ts'

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
    const out = await both(LONGPATH_SCRIPT)
    // the script itself is right: on the local disk every operation but the last succeeds
    assert.deepEqual(out.local.match(/ E[A-Z]+$/mg), [' ENAMETOOLONG'])
    assert.match(out.local, /\nname-too-long ENAMETOOLONG\n$/)
    assert.equal(out.mount, out.local)
  })

  it('a tree 30 directories of 255 bytes deep (7,680-byte paths) works, and rm -rf removes it', async function () {
    // find walks by directory fds: it prints the file's depth, size and path length in bytes
    const out = await both(DEEP_SCRIPT, `find . -name g -printf '%d %s ' -exec sh -c 'printf %s "$1" | wc -c' sh {} ';'`)
    assert.match(out.local, /^dangling deep \['g', 's'\]\n31 5 7683\n$/)
    assert.equal(out.mount, out.local)
    await ok(`rm -rf work && test ! -e work`, { cwd: m.dir })
  })
})
