// The mount tests' teardown (test/helpers/fuse-mount.ts): a mount left behind fails the test that
// made it, with the reason, and is unmounted so later tests do not inherit it; a step that fails
// does not keep the later ones from running.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { teardown, mountTemp, isMounted, checkUnmounted, ok, tempDir } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { until } from '../../harness/cluster.ts'

describe('fuse test helpers: teardown', function () {
  this.timeout(60_000)
  // this test's own teardown, for what the teardown under test leaves
  let own: Teardown
  beforeEach(function () { own = teardown() })
  afterEach(async function () { await own.run() })

  it('a failing step fails run(), with its reason, after every other step has run', async function () {
    const t = teardown()
    const ran: string[] = []
    t.add(() => { ran.push('first added') })
    t.add(() => { throw new Error('this step failed') })
    t.add(() => { ran.push('last added') })
    await assert.rejects(t.run(), /this step failed/)
    assert.deepEqual(ran, ['last added', 'first added'])
  })

  it('a mount its unmount leaves behind (another mounted over it): run() fails naming the mountpoint, and nothing is left mounted', async function () {
    const t = teardown()
    const { dir } = await mountTemp(t)
    // the mountpoint covered by another mount: unmount() (a lazy detach of the top one) leaves
    // the darkfs mount below it in place
    await ok(`mount -t tmpfs darkfs-test-cover "${dir}"`)
    own.add(async () => { while (await isMounted(dir)) await ok(`umount -l "${dir}"`) })
    await assert.rejects(t.run(), (err: Error) => err.message.includes(dir) && err.message.includes('still mounted after unmount()'))
    assert.equal(await isMounted(dir), false)
  })

  it('a mount something still uses (EBUSY): retried, then detached, and the failure names the reason', async function () {
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-busy-'))
    own.add(async () => { await rm(dir, { recursive: true, force: true }) })
    await ok(`mount -t tmpfs darkfs-test-busy "${dir}"`)
    own.add(async () => { while (await isMounted(dir)) await ok(`umount -l "${dir}"`) })
    // a process whose cwd is inside it, for the whole of the retries
    const user = spawn('sleep', ['600'], { cwd: dir, stdio: 'ignore' })
    own.add(() => { user.kill('SIGKILL') })
    await until('the process inside', async () => (await ok(`readlink /proc/${user.pid!}/cwd`)).trim() === dir)
    await assert.rejects(checkUnmounted(dir, 'the test'), (err: Error) => err.message.includes(dir) && /busy/i.test(err.message))
    assert.equal(await isMounted(dir), false)
  })

  it('a mount unmounted: nothing to report', async function () {
    const dir = await tempDir(own, 'darkfs-none-')
    await checkUnmounted(dir, 'the test')
  })
})
