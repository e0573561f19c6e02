// Every request has a deadline: a Volume call that never finishes becomes EIO for the caller,
// and the mount keeps serving everything else.
import assert from 'node:assert/strict'
import { teardown, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { mount } from '../../fuse/index.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'

describe('fuse request deadlines', function () {
  let t: Teardown
  beforeEach(function () { t = teardown() })
  afterEach(async function () { await t.run() })

  it('mount(volume, dir, { requestTimeoutMs }) answers a hung Volume call with EIO and keeps serving', async function () {
    const volume = createMemoryVolume()
    const hung: Array<() => void> = []
    volume.readlink = async () => await new Promise<string>((resolve) => { hung.push(() => { resolve('late') }) })
    t.add(() => { for (const release of hung) release() })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { requestTimeoutMs: 200 })
    t.add(async () => { await m.unmount() })
    await ok(`cd "${dir}" && echo ok > f && ln -s f s`)
    const [slow, fast] = await Promise.all([sh(`readlink "${dir}/s"`), ok(`cat "${dir}/f"`)])
    assert.equal(fast, 'ok\n')
    assert.notEqual(slow.code, 0)
    assert.equal(hung.length, 1)
    assert.equal(await ok(`cat "${dir}/f"; ls "${dir}"`), 'ok\nf\ns\n')
  })
})
