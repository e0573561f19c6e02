// A process serving a mount is SIGKILLed; the next mount() at the same dir cleans the stale
// mount ("Transport endpoint is not connected") and serves again.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { teardown, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { mount, MountError } from '../../fuse/index.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'

const server = fileURLToPath(new URL('../helpers/serve-mount.ts', import.meta.url))

describe('fuse stale mounts', function () {
  let t: Teardown
  beforeEach(function () { t = teardown() })
  afterEach(async function () { await t.run() })

  it('mount(volume, dir) cleans a stale mount left by a SIGKILLed server', async function () {
    const dir = await tempDir(t, 'darkfs-mnt-')
    t.add(async () => { await sh(`umount -l "${dir}" 2>/dev/null`) })
    const child = spawn(process.execPath, [server, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
    t.add(() => { child.kill('SIGKILL') })
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => { out += d })
    while (!out.includes('mounted')) {
      if (child.exitCode !== null) assert.fail(`server exited (${child.exitCode})`)
      await once(child.stdout, 'data')
    }
    await ok(`echo from-child > "${dir}/f"`)
    child.kill('SIGKILL')
    await once(child, 'exit')

    const stale = await sh(`stat "${dir}"`)
    assert.match(stale.stderr, /Transport endpoint is not connected/)

    const m = await mount(createMemoryVolume(), dir)
    t.add(async () => { await m.unmount() })
    assert.equal(await ok(`echo again > "${dir}/g"; cat "${dir}/g"; ls "${dir}"`), 'again\ng\n')
    assert.equal((await ok(`findmnt -n -o SOURCE --mountpoint "${dir}"`)).trim(), 'darkfs')
  })

  it('mount.unmount() twice is idempotent and leaves no mount behind', async function () {
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(createMemoryVolume(), dir)
    t.add(async () => { await m.unmount() })
    await ok(`touch "${dir}/x"`)
    await Promise.all([m.unmount(), m.unmount()])
    await m.unmount()
    assert.equal((await sh(`findmnt -n --mountpoint "${dir}"`)).stdout, '')
    assert.equal(await ok(`ls -A "${dir}"`), '')
  })

  it('mount(volume, dir) rejects a missing dir or a file with MountError', async function () {
    const dir = await tempDir(t, 'darkfs-mnt-')
    await assert.rejects(mount(createMemoryVolume(), `${dir}/missing`), MountError)
    await ok(`touch "${dir}/file"`)
    await assert.rejects(mount(createMemoryVolume(), `${dir}/file`), MountError)
    assert.equal((await sh(`findmnt -n -R "${dir}"`)).stdout, '')
  })
})
