// The space watcher (node/space.ts) on a real tiny tmpfs, and the FULL/ROOM notice codec.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Space, bounds, fullAfter, RESERVE_MIN_BYTES } from '../../node/data/space.ts'
import { decodeNotice, drifted, encodeNotice, SPACE, SPACE_NOTICE_BYTES, SpaceNoticeError } from '../../node/net/space-notice.ts'
import { encodeNotice as encodeRpcNotice } from '../../node/net/rpc.ts'
import { networkCapacity } from '../../node/keeper/capacity.ts'
import { Store, cidOf } from '../../node/data/store.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { run } from '../../harness/mesh.ts'

const MiB = 1024 * 1024

describe('space', function () {
  this.timeout(60_000)

  it('bounds(capacity): 1% of the disk, at least 64 MiB, at most 10%; margin half the reserve', () => {
    assert.deepEqual(bounds(48 * MiB), { reserve: Math.ceil(4.8 * MiB), margin: Math.ceil(2.4 * MiB) })
    assert.equal(bounds(1024 * MiB).reserve, RESERVE_MIN_BYTES)
    assert.equal(bounds(1024 * 1024 * MiB).reserve, Math.ceil(1024 * 1024 * MiB * 0.01))
    assert.deepEqual(bounds(1024 * MiB, { reserveBytes: 5, marginBytes: 1 }), { reserve: 5, margin: 1 })
  })

  it('fullAfter(): full below the reserve, room again only above reserve + margin', () => {
    assert.equal(fullAfter(false, 99, 100, 50), true)
    assert.equal(fullAfter(false, 100, 100, 50), false)
    assert.equal(fullAfter(true, 120, 100, 50), true)
    assert.equal(fullAfter(true, 150, 100, 50), false)
  })

  it('new Space(dir, bad bounds) throws RangeError', () => {
    assert.throws(() => new Space('/tmp', { reserveBytes: -1 }), RangeError)
    assert.throws(() => new Space('/tmp', { intervalMs: 0 }), RangeError)
  })

  it('encodeNotice/decodeNotice round-trip; malformed notices are SpaceNoticeError', () => {
    assert.deepEqual(decodeNotice(encodeNotice(true, 1234567)), { full: true, seq: 1234567 })
    assert.deepEqual(decodeNotice(encodeNotice(false, Date.now() * 1000)).full, false)
    assert.throws(() => decodeNotice(new Uint8Array(SPACE_NOTICE_BYTES - 1)), SpaceNoticeError)
    const bad = encodeNotice(true, 1)
    bad[0] = 7
    assert.throws(() => decodeNotice(bad), SpaceNoticeError)
    const huge = new Uint8Array(SPACE_NOTICE_BYTES).fill(0xff)
    huge[0] = 1
    assert.throws(() => decodeNotice(huge), SpaceNoticeError)
  })

  it('a notice carries the disk figures { total, free, avail }; bad figures are SpaceNoticeError', () => {
    const disk = { total: 2 ** 40, free: 3 * 2 ** 38, avail: 2 ** 38 }
    assert.deepEqual(decodeNotice(encodeNotice(false, 9, disk)), { full: false, seq: 9, disk })
    for (const bad of [null, 5, { total: 1, free: 1 }, { total: -1, free: 0, avail: 0 }, { total: 1.5, free: 0, avail: 0 }, { total: 2 ** 60, free: 0, avail: 0 }]) {
      assert.throws(() => decodeNotice(encodeRpcNotice(SPACE, { full: false, seq: 1, disk: bad } as any)), SpaceNoticeError, JSON.stringify(bad))
    }
  })

  it('drifted(told, now): figures are told again once free moved 1% of the disk (at least 1 MiB), or the size changed', () => {
    const told = { total: 1000 * MiB, free: 500 * MiB, avail: 400 * MiB }
    assert.equal(drifted(undefined, told), true)
    assert.equal(drifted(told, { ...told, free: 491 * MiB, avail: 391 * MiB }), false)
    assert.equal(drifted(told, { ...told, free: 490 * MiB, avail: 390 * MiB }), true)
    assert.equal(drifted(told, { ...told, total: 1001 * MiB }), true)
    const small = { total: 10 * MiB, free: 5 * MiB, avail: 4 * MiB }
    assert.equal(drifted(small, { ...small, free: 5 * MiB - 1000, avail: 4 * MiB - 1000 }), false)
  })

  it('networkCapacity(hosts, {k, m}): the hosts\' figures summed, times k/(k+m)', () => {
    const hosts = [{ total: 300, free: 150, avail: 90 }, { total: 600, free: 300, avail: 210 }]
    assert.deepEqual(networkCapacity(hosts, { k: 1, m: 0 }), { total: 900, free: 450, avail: 300 })
    assert.deepEqual(networkCapacity(hosts, { k: 1, m: 2 }), { total: 300, free: 150, avail: 100 })
    assert.deepEqual(networkCapacity(hosts, { k: 4, m: 2 }), { total: 600, free: 300, avail: 200 })
    assert.deepEqual(networkCapacity([], { k: 1, m: 0 }), { total: 0, free: 0, avail: 0 })
    assert.throws(() => networkCapacity(hosts, { k: 0, m: 1 }), RangeError)
  })

  describe('on a 16 MiB tmpfs', () => {
    const t = new Teardown()
    let dir: string
    let store: Store
    let space: Space
    const stored: Array<{ cid: ReturnType<typeof cidOf>, bytes: Uint8Array }> = []

    before(async () => {
      dir = join(await tempDir(t, 'darkfs-space-'), 'disk')
      await mkdir(dir)
      await run('mount', ['-t', 'tmpfs', '-o', `size=${16 * MiB}`, 'tmpfs', dir])
      t.add(async () => { await run('umount', ['-l', dir]) })
      // the gate is built first, on the store's dir, and handed to the store as it opens
      await mkdir(join(dir, 'store'))
      space = new Space(join(dir, 'store'), { reserveBytes: 4 * MiB, marginBytes: 2 * MiB, intervalMs: 50 })
      await space.start()
      t.add(() => { space.stop() })
      store = await Store.open(join(dir, 'store'), { space })
      t.add(async () => { await store.close() })
    })
    after(async () => { await t.run() })

    it('store.put until the reserve is reached: then FsError ENOSPC, a change event, and every block stored stays readable', async () => {
      const changes: boolean[] = []
      space.addEventListener('change', (e) => { changes.push((e as CustomEvent<boolean>).detail) })
      let refused: any
      for (let i = 0; i < 40 && refused === undefined; i++) {
        const bytes = randomBytes(512 * 1024)
        const cid = cidOf(bytes)
        try {
          await store.put(cid, bytes)
          stored.push({ cid, bytes })
        } catch (err) {
          refused = err
        }
        await space.check() // a measurement lands before the next put
      }
      assert.equal(refused?.code, 'ENOSPC', 'a put was refused with ENOSPC')
      assert.ok(space.isFull())
      assert.deepEqual(changes, [true])
      const fs = await statfs(dir)
      assert.ok(fs.bavail * fs.bsize > MiB, 'the reserve is kept: the disk itself is not full')
      for (const { cid, bytes } of stored) assert.deepEqual(await store.get(cid), bytes)
      // a block already stored is still put (idempotent): nothing new is written
      await store.put(stored[0].cid, stored[0].bytes)
    })

    it('deleting below reserve + margin keeps it full; deleting past it gives room (hysteresis)', async () => {
      const { free, reserve, margin } = await space.check()
      assert.ok(free < reserve)
      // free one block (512 KiB, less than the margin): over the reserve, under reserve + margin
      await store.delete(stored.pop()!.cid)
      const after = await space.check()
      assert.ok(after.free < reserve + margin, `${after.free} free`)
      assert.ok(space.isFull(), 'still full')
      while (stored.length > 0 && (await space.check()).free < reserve + margin) await store.delete(stored.pop()!.cid)
      await until('room again', () => !space.isFull())
      const bytes = randomBytes(1000)
      await store.put(cidOf(bytes), bytes)
    })

    it('a real ENOSPC from the disk (no reserve left) makes it full at once', async () => {
      const s = new Space(store.dir, { reserveBytes: 0, marginBytes: 0, intervalMs: 60_000 })
      await s.start()
      t.add(() => { s.stop() })
      // the same blocks, behind this gate
      const gated = await Store.open(store.dir, { space: s })
      t.add(async () => { await gated.close() })
      const fs = await statfs(dir)
      const ballast = join(dir, 'ballast')
      await writeFile(ballast, Buffer.alloc(fs.bavail * fs.bsize))
      try {
        const bytes = randomBytes(64 * 1024)
        await assert.rejects(gated.put(cidOf(bytes), bytes), (err: any) => err.code === 'ENOSPC')
        assert.ok(s.isFull())
      } finally {
        await rm(ballast)
      }
    })
  })
})
