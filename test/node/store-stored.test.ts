// The store's running figure of bytes stored (node/data/store.ts tally()/stored()): what a
// metrics scrape reads instead of walking the store. It must agree with a walk (usage()) after
// puts, repeated puts, deletes and quarantines, and across a reopen.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Store, cidOf } from '../../node/data/index.ts'
import { SLICE_FILES_OPEN } from '../../node/data/store.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { writeBlockNative } from '../../node/data/erasure.ts'

describe('Store.stored()', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('stored() is undefined before tally(), then follows put, put again, delete and quarantine as usage() counts them, across a reopen', async () => {
    const dir = await tempDir(t)
    const blocks = [100, 2000, 30000].map(n => randomBytes(n)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    let store = await Store.open(dir)
    await store.putMany(blocks.slice(0, 2))
    await store.close()

    store = await Store.open(dir)
    t.add(async () => { await store.close() })
    assert.equal(store.stored(), undefined)
    await store.tally()
    const walked = async (): Promise<number> => (await store.usage()).bytesStored
    assert.equal(store.stored(), await walked())
    assert.equal(store.stored(), 2100)
    await store.put(blocks[2].cid, blocks[2].bytes)
    await store.put(blocks[2].cid, blocks[2].bytes) // stored already: counted once
    assert.equal(store.stored(), 32100)
    assert.equal(store.stored(), await walked())
    await store.delete(blocks[0].cid)
    await store.delete(blocks[0].cid) // absent: frees nothing
    assert.equal(store.stored(), 32000)
    assert.equal(store.stored(), await walked())
    // a block corrupted on disk is moved aside when read: no longer stored
    const shard = join(dir, 'blocks')
    let file = ''
    for (const d of await readdir(shard)) {
      for (const n of await readdir(join(shard, d))) if ((await stat(join(shard, d, n))).size === 2000) file = join(shard, d, n)
    }
    assert.notEqual(file, '')
    await writeFile(file, randomBytes(2000))
    assert.equal(await store.tryGet(blocks[1].cid), undefined)
    assert.equal(store.stored(), 30000)
    assert.equal(store.stored(), await walked())
  })

  it('a block file is written whole into its shard directory (made when missing) with no temporary left, by the addon\'s writeBlock as by node:fs; a failure names its errno', async function () {
    const dir = await tempDir(t)
    const blocks = [0, 1, 70_000, 1 << 20].map(n => randomBytes(n)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await store.putMany(blocks)
    for (const b of blocks) assert.deepEqual(Buffer.from(await store.get(b.cid)), Buffer.from(b.bytes))
    const names = (await readdir(dir, { recursive: true })).map(String)
    assert.deepEqual(names.filter(n => n.endsWith('.tmp')), [], 'no temporary file is left')
    if (writeBlockNative === undefined) this.skip() // no addon: store.ts writes through node:fs alone
    // the addon's function itself: a missing shard directory and its missing parent are made; a shard
    // "directory" that is a file fails with its errno as the code, and leaves nothing behind
    const shard = join(dir, 'x', 'y')
    await writeBlockNative(shard, join(shard, 'b.data'), join(shard, '.b.data.tmp'), blocks[2].bytes)
    assert.deepEqual(Buffer.from(await readFile(join(shard, 'b.data'))), Buffer.from(blocks[2].bytes))
    assert.deepEqual(await readdir(shard), ['b.data'])
    await mkdir(join(dir, 'z'))
    await writeFile(join(dir, 'z', 'file'), 'x')
    const bad = join(dir, 'z', 'file')
    await assert.rejects(writeBlockNative(bad, join(bad, 'b.data'), join(bad, '.b.data.tmp'), blocks[1].bytes), (err: Error & { code?: string }) => err.code === 'ENOTDIR')
  })

  it('readSlice reads any slice of a block right (through the addon in one job, where it is built), nothing past its end, a deleted block as absent and one put again anew, and leaves no file open once closed', async () => {
    const dir = await tempDir(t)
    /** Files of the store this process holds open. */
    const open = async (): Promise<number> => {
      let n = 0
      for (const fd of await readdir('/proc/self/fd')) {
        // ignored: an fd closed while listed has no target
        if ((await readlink(join('/proc/self/fd', fd)).catch(() => '')).startsWith(dir)) n++
      }
      return n
    }
    const blocks = Array.from({ length: 20 }, () => randomBytes(40_000)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await store.putMany(blocks)
    for (let round = 0; round < 2; round++) {
      await Promise.all(blocks.map(async (b, i) => {
        const at = (i * 997 + round * 5000) % 30_000
        assert.deepEqual(Buffer.from((await store.readSlice(b.cid, at, 10_000))!), Buffer.from(b.bytes.subarray(at, at + 10_000)), `block ${i}, round ${round}`)
      }))
    }
    assert.deepEqual(Buffer.from((await store.readSlice(blocks[0].cid, 39_990, 10))!), Buffer.from(blocks[0].bytes.subarray(39_990)))
    // past the end of the block: no slice
    assert.equal(await store.readSlice(blocks[0].cid, 39_000, 2000), undefined)
    assert.equal(await store.readSlice(blocks[0].cid, 50_000, 10), undefined)
    const last = blocks[blocks.length - 1]
    await store.delete(last.cid)
    assert.equal(await store.readSlice(last.cid, 0, 10), undefined, 'a deleted block reads as absent')
    await store.put(last.cid, last.bytes)
    assert.deepEqual(Buffer.from((await store.readSlice(last.cid, 100, 10))!), Buffer.from(last.bytes.subarray(100, 110)))
    // files read are kept open for the next slices (SLICE_FILES_OPEN), and closed with the store
    assert.ok(await open() <= SLICE_FILES_OPEN, 'no more block files open than are kept')
    await store.close()
    assert.equal(await open(), 0, 'no block file is left open once the store is closed')
  })
})
