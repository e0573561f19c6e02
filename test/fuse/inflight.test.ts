// Reads in flight hold no libfuse worker: the binding hands the kernel's READ to JS and the
// worker goes back to the device at once (fuse/binding.c, read_direct), the reply is written
// from the JS thread. So more reads than the binding has workers (MAX_THREADS, 64) wait on the
// Volume at once, and the mount goes on answering everything else meanwhile; with a worker
// blocked per read, the 65th request (read, open or stat) was never taken from the device until
// a read ended.
import assert from 'node:assert/strict'
import { teardown, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { mount } from '../../fuse/index.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'
import { wrapHandles } from '../helpers/wrap-handles.ts'

/** Reads held at once: more than the binding's MAX_THREADS workers (64). */
const READS = 80
const BLOCK = 4096

/** Block i of the test file: one letter, repeated. */
function blockOf (i: number): string {
  return String.fromCharCode(97 + (i % 26)).repeat(BLOCK)
}

describe('fuse reads in flight', function () {
  let t: Teardown
  beforeEach(function () { t = teardown() })
  afterEach(async function () { await t.run() })

  it(`${READS} O_DIRECT reads wait on the Volume at once, the mount answers other requests meanwhile, and each gets its own bytes`, async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/slow', Array.from({ length: READS }, (_, i) => blockOf(i)).join(''))
    await volume.writeFile('/fast', 'ok\n')
    // reads of /slow wait here until the test lets them all go
    const held: Array<() => void> = []
    let allHeld!: () => void
    const heldAll = new Promise<void>(resolve => { allHeld = resolve })
    wrapHandles(volume, path => path === '/slow', fh => ({
      readBytes: undefined,
      read: async (buffer, offset, length, position, options) => {
        await new Promise<void>(resolve => {
          held.push(resolve)
          if (held.length === READS) allHeld()
        })
        return await fh.read(buffer, offset, length, position, options)
      }
    }))
    t.add(() => { for (const release of held) release() })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir)
    t.add(async () => { await m.unmount() })

    const reads = Array.from({ length: READS }, async (_, i) =>
      await sh(`dd if="${dir}/slow" bs=${BLOCK} count=1 skip=${i} iflag=direct status=none`))
    // on a binding that blocks a worker per request this never settles (64 reads held, the rest
    // never taken from the device): the test fails at its timeout
    await heldAll
    assert.equal(held.length, READS)
    // every read is still held, and the mount answers an open, a stat and a read of another file
    assert.equal(await ok(`cat "${dir}/fast"; stat -c %s "${dir}/slow"`), `ok\n${READS * BLOCK}\n`)
    for (const release of held) release()
    const done = await Promise.all(reads)
    for (const [i, r] of done.entries()) {
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, blockOf(i), `block ${i}`)
    }
  })

  it('a read whose Volume call throws is answered with its error, and the mount goes on', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/bad', 'x'.repeat(BLOCK))
    await volume.writeFile('/good', 'ok\n')
    wrapHandles(volume, path => path === '/bad', () => ({ readBytes: undefined, read: async () => { throw Object.assign(new Error('no such device'), { code: 'ENXIO' }) } }))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir)
    t.add(async () => { await m.unmount() })
    const bad = await sh(`dd if="${dir}/bad" bs=${BLOCK} count=1 iflag=direct status=none`)
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /No such device or address/)
    assert.equal(await ok(`cat "${dir}/good"`), 'ok\n')
  })
})
