// unmount()'s last resort, aborting a FUSE connection that did not end after its lazy unmount,
// must abort that connection and no other: the minor it had is the next FUSE mount's once the
// kernel drops it, so the control is opened while the connection is ours (connectionAbort).
import assert from 'node:assert/strict'
import { stat, readdir, readlink } from 'node:fs/promises'
import { teardown, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { mount, connectionAbort } from '../../fuse/index.ts'
import type { Mount } from '../../fuse/index.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'

/** This process's open files under fusectl's connections/N. */
async function controls (): Promise<string[]> {
  const links = await Promise.all((await readdir('/proc/self/fd')).map(async fd => await readlink(`/proc/self/fd/${fd}`).catch(() => '')))
  return links.filter(l => l.startsWith('/sys/fs/fuse/connections/'))
}

const minorOf = (dev: number): number => (dev & 0xff) | ((dev >>> 12) & ~0xff)

describe('fuse connection abort control', function () {
  let t: Teardown
  beforeEach(function () { t = teardown() })
  afterEach(async function () { await t.run() })

  async function mounted (): Promise<{ dir: string, m: Mount, dev: number }> {
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(createMemoryVolume(), dir)
    t.add(async () => { await m.unmount() })
    return { dir, m, dev: (await stat(dir)).dev }
  }

  it('aborts the live connection it was opened for', async function () {
    const { dir, m, dev } = await mounted()
    await ok(`echo x > "${dir}/f"`)
    const control = await connectionAbort(dev)
    t.add(async () => { await control.close() })
    await control.abort()
    assert.match((await sh(`ls "${dir}"`)).stderr, /Software caused connection abort|Transport endpoint is not connected/)
    await m.unmount() // the session ended with the abort: unmount() does not wait for a grace
    // (libfuse leaves an aborted connection's mount point to its owner, as after a crash)
    await ok(`umount -l "${dir}"`)
    assert.equal((await sh(`findmnt -n --mountpoint "${dir}"`)).stdout, '')
  })

  it('opened for a connection since gone, leaves the mount that took its minor alone', async function () {
    const a = await mounted()
    const control = await connectionAbort(a.dev)
    t.add(async () => { await control.close() })
    await a.m.unmount()
    // the anonymous device allocator hands out the lowest free minor: a's, unless another
    // mount on the machine took it in between
    let b = await mounted()
    for (let i = 0; i < 5 && minorOf(b.dev) !== minorOf(a.dev); i++) {
      await b.m.unmount()
      b = await mounted()
    }
    if (minorOf(b.dev) !== minorOf(a.dev)) this.skip() // (another mount holds a's minor)
    await ok(`echo kept > "${b.dir}/f"`)
    await control.abort()
    assert.equal(await ok(`cat "${b.dir}/f"; ls "${b.dir}"`), 'kept\nf\n')
  })

  it('mount() holds its own connection\'s control open, and closes it at unmount() or when unmounted from outside', async function () {
    const before = await controls()
    const a = await mounted()
    assert.deepEqual((await controls()).filter(l => !before.includes(l)), [`/sys/fs/fuse/connections/${minorOf(a.dev)}/abort`])
    await a.m.unmount()
    assert.deepEqual(await controls(), before)
    const b = await mounted()
    assert.equal((await controls()).length, before.length + 1)
    await ok(`fusermount3 -uz "${b.dir}"`)
    // (the session's end reaches the event loop, then the control closes)
    for (let i = 0; i < 200 && (await controls()).length > before.length; i++) await new Promise(resolve => setTimeout(resolve, 25))
    assert.deepEqual(await controls(), before)
  })
})
