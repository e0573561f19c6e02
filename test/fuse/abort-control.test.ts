// unmount()'s last resort, aborting a FUSE connection that did not end after its lazy unmount,
// must abort that connection and no other: the minor it had is the next FUSE mount's once the
// kernel drops it, so the control is opened while the connection is ours (connectionAbort).
import assert from 'node:assert/strict'
import { stat } from 'node:fs/promises'
import { teardown, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { mount, connectionAbort } from '../../fuse/index.ts'
import type { Mount } from '../../fuse/index.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'

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
})
