// Writes in flight hold no libfuse worker: the binding hands the kernel's WRITE to JS in the
// buffer the kernel wrote it into, the worker goes back to the device at once (fuse/binding.c,
// write_direct), and the reply is written from the JS thread. So more writes than the binding
// has workers (MAX_THREADS, 64) wait on the Volume at once while the mount answers everything
// else; with a worker blocked per write, the 65th request was never taken from the device until
// a write ended. Past the mount's cap on such writes (directWrites) a write waits in a worker
// again (backpressure), and still lands. A small write reaches JS in a copy of its own size, not
// in the 1 MiB request buffer (which a kept 4 KiB write would pin); a sequential writer's 1 MiB
// writes reach the Volume whole, one call each, in their request buffers.
import assert from 'node:assert/strict'
import { teardown, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { mount } from '../../fuse/index.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'
import { wrapHandles } from '../helpers/wrap-handles.ts'

/** Writes held at once: more than the binding's MAX_THREADS workers (64). */
const WRITES = 80
const BLOCK = 4096
const MiB = 1 << 20

/** The bytes of file i: one letter, repeated. */
function blockOf (i: number): string {
  return String.fromCharCode(97 + (i % 26)).repeat(BLOCK)
}

/** Hold every write to /w* on `volume` until the test lets it go; `heldAll` settles once `count` are held. */
function holdWrites (volume: Parameters<typeof wrapHandles>[0], count: number): { held: Array<() => void>, heldAll: Promise<void> } {
  const held: Array<() => void> = []
  const all = Promise.withResolvers<void>()
  wrapHandles(volume, path => path.startsWith('/w'), fh => ({
    write: async (buffer, offset, length, position, options) => {
      await new Promise<void>(resolve => {
        held.push(resolve)
        if (held.length === count) all.resolve()
      })
      return await fh.write(buffer, offset, length, position, options)
    }
  }))
  return { held, heldAll: all.promise }
}

describe('fuse writes in flight', function () {
  let t: Teardown
  beforeEach(function () { t = teardown() })
  afterEach(async function () { await t.run() })

  it(`${WRITES} O_DIRECT writes (one a file) wait on the Volume at once, the mount answers other requests meanwhile, and each lands with its own bytes`, async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/fast', 'ok\n')
    for (let i = 0; i < WRITES; i++) await volume.writeFile(`/w${i}`, '')
    // writes to /w* wait here until the test lets them all go
    const { held, heldAll } = holdWrites(volume, WRITES)
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir)
    t.add(async () => { await m.unmount() })
    // teardown runs last added first: a failed assertion lets the held writes go before the
    // unmount waits for them
    t.add(() => { for (const release of held) release() })

    // each file is written by a process of its own: the kernel serializes the writes of one file
    const writes = Array.from({ length: WRITES }, async (_, i) =>
      await sh(`printf '%s' "${blockOf(i)}" | dd of="${dir}/w${i}" bs=${BLOCK} count=1 oflag=direct conv=notrunc status=none`))
    // on a binding that blocks a worker per write this never settles (64 writes held, the rest
    // never taken from the device): the test fails at its timeout
    await heldAll
    assert.equal(held.length, WRITES)
    // every write is still held, and the mount answers an open, a read and a stat
    assert.equal(await ok(`cat "${dir}/fast"; stat -c %s "${dir}/w0"`), 'ok\n0\n')
    for (const release of held) release()
    for (const r of await Promise.all(writes)) assert.equal(r.code, 0, r.stderr)
    for (let i = 0; i < WRITES; i++) assert.equal((await volume.readFile(`/w${i}`)).toString(), blockOf(i), `file ${i}`)
  })

  it('past the cap on direct writes, writes wait in libfuse workers: the direct ones never pass the cap, and every write lands', async function () {
    const cap = 8
    const writes = 40 // past the cap, and fewer than cap + the binding's 64 workers
    const volume = createMemoryVolume()
    await volume.writeFile('/fast', 'ok\n')
    for (let i = 0; i < writes; i++) await volume.writeFile(`/w${i}`, '')
    const { held, heldAll } = holdWrites(volume, writes)
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { directWrites: cap })
    t.add(async () => { await m.unmount() })
    t.add(() => { for (const release of held) release() })
    const done = Array.from({ length: writes }, async (_, i) =>
      await sh(`printf '%s' "${blockOf(i)}" | dd of="${dir}/w${i}" bs=${BLOCK} count=1 oflag=direct conv=notrunc status=none`))
    await heldAll
    const during = m.writeStats()
    assert.equal(during.writes, cap)
    assert.equal(during.writesMax, cap)
    assert.equal(during.overCap, writes - cap)
    assert.equal(await ok(`cat "${dir}/fast"`), 'ok\n')
    for (const release of held) release()
    for (const r of await Promise.all(done)) assert.equal(r.code, 0, r.stderr)
    for (let i = 0; i < writes; i++) assert.equal((await volume.readFile(`/w${i}`)).toString(), blockOf(i), `file ${i}`)
    const after = m.writeStats()
    assert.equal(after.writes, 0)
    assert.equal(after.writeBytes, 0)
    assert.equal(after.writesMax, cap)
  })

  it('a small write is copied out of the request buffer (JS keeps its bytes, not a 1 MiB buffer); a large one is handed over whole', async function () {
    const volume = createMemoryVolume()
    const kept: Buffer[] = []
    wrapHandles(volume, path => path === '/small' || path === '/big', fh => ({
      write: async (buffer, offset, length, position, options) => {
        kept.push(buffer as Buffer)
        return await fh.write(buffer, offset, length, position, options)
      }
    }))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir)
    t.add(async () => { await m.unmount() })
    const src = await tempDir(t, 'darkfs-src-')
    const count = 200
    await ok(`head -c ${count * BLOCK} /dev/urandom > "${src}/small"; dd if="${src}/small" of="${dir}/small" bs=${BLOCK} oflag=direct status=none; cmp "${src}/small" "${dir}/small"`)
    const small = m.writeStats()
    assert.equal(kept.length, count)
    assert.equal(small.copied, count)
    assert.equal(small.handed, 0)
    await ok(`head -c ${2 * MiB} /dev/urandom > "${src}/big"; dd if="${src}/big" of="${dir}/big" bs=${MiB} oflag=direct status=none; cmp "${src}/big" "${dir}/big"`)
    const big = m.writeStats()
    assert.equal(big.handed, 2)
    assert.equal(big.copied, count)
    assert.equal(big.writes, 0)
  })

  it('a mount refuses a cap on direct writes that is not a whole number >= 0', async function () {
    const dir = await tempDir(t, 'darkfs-mnt-')
    await assert.rejects(mount(createMemoryVolume(), dir, { directWrites: -1 }), /directWrites must be a whole number/)
  })

  it('a sequential writer\'s 1 MiB writes reach the Volume whole, one call each, with the bytes written', async function () {
    const volume = createMemoryVolume()
    const lengths: number[] = []
    wrapHandles(volume, path => path === '/big', fh => ({
      write: async (buffer, offset, length, position, options) => {
        lengths.push(length)
        return await fh.write(buffer, offset, length, position, options)
      }
    }))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir)
    t.add(async () => { await m.unmount() })
    // 4 MiB of distinct bytes, made on the local disk, copied in 1 MiB writes
    const src = await tempDir(t, 'darkfs-src-')
    await ok(`head -c ${4 * MiB} /dev/urandom > "${src}/big"; dd if="${src}/big" of="${dir}/big" bs=${MiB} status=none; cmp "${src}/big" "${dir}/big"`)
    assert.deepEqual(lengths, [MiB, MiB, MiB, MiB])
    assert.equal(await ok(`sha256sum < "${src}/big"`), await ok(`sha256sum < "${dir}/big"`))
  })

  it('a write whose Volume call throws is answered with its error, and the mount goes on', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/bad', '')
    await volume.writeFile('/good', 'ok\n')
    wrapHandles(volume, path => path === '/bad', () => ({ write: async () => { throw Object.assign(new Error('no space'), { code: 'ENOSPC' }) } }))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir)
    t.add(async () => { await m.unmount() })
    const bad = await sh(`printf x | dd of="${dir}/bad" bs=1 count=1 conv=notrunc status=none`)
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /No space left on device/)
    assert.equal(await ok(`cat "${dir}/good"; printf y >> "${dir}/good"; cat "${dir}/good"`), 'ok\nok\ny')
  })
})
