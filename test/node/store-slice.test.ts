// Slice reads of the store (node/data/store.ts readSlice) keep block files open between reads
// (SLICE_FILES_OPEN, least recently read closed first): the bytes are those stored, many reads
// at once share a file, more blocks than are kept read right, and a block deleted after a slice
// read is no longer read through the kept file (absent), nor after it is stored again (its bytes).
// With the native addon, a slice of a kept file whose pages are cached is read on the event loop
// (readSliceNow), not by a threadpool job: the right bytes, and never through a file since deleted;
// one whose pages are not cached is read through the kept descriptor (a pread on the threadpool),
// not by opening its path again.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Store, cidOf } from '../../node/data/index.ts'
import { SLICE_FILES_OPEN } from '../../node/data/store.ts'
import { readSliceNowNative } from '../../node/data/erasure.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { Worker } from 'node:worker_threads'
import { execFile } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'

/** Drop the page cache of one file (posix_fadvise DONTNEED through GNU dd; its pages are clean: the store syncs what it writes). */
async function dropFileCache (file: string): Promise<void> {
  await new Promise<void>((resolve, reject) => { execFile('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], err => { if (err !== null) reject(err); else resolve() }) })
}

/** The block files under a store's dir. */
async function blockFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const shard of await readdir(join(dir, 'blocks'), { withFileTypes: true })) {
    if (shard.isDirectory()) for (const f of await readdir(join(dir, 'blocks', shard.name))) if (f.endsWith('.data')) out.push(join(dir, 'blocks', shard.name, f))
  }
  return out
}

describe('Store.readSlice', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  /** A store in a temp dir (closed at teardown) holding one 256 KiB block of random bytes. */
  async function storeWithOneBlock (): Promise<{ dir: string, store: Store, bytes: Uint8Array, cid: ReturnType<typeof cidOf> }> {
    const dir = await tempDir(t)
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await store.tally()
    const bytes = randomBytes(256 * 1024)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)
    return { dir, store, bytes, cid }
  }

  it('reads the stored bytes through kept files, past the bound of open files, and never a deleted block', async () => {
    const dir = await tempDir(t)
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await store.tally()
    const blocks = Array.from({ length: SLICE_FILES_OPEN + 8 }, () => randomBytes(20_000)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    await store.putMany(blocks)
    // every block, twice round, several slices of each at once
    for (let round = 0; round < 2; round++) {
      for (const b of blocks) {
        const got = await Promise.all([0, 4096, 12_000].map(async at => await store.readSlice(b.cid, at, 5000)))
        for (const [j, at] of [0, 4096, 12_000].entries()) assert.ok(got[j] !== undefined && Buffer.from(got[j]!).equals(b.bytes.subarray(at, at + 5000)), `block ${b.cid.toString()} at ${at}`)
      }
    }
    // past the end: undefined
    assert.equal(await store.readSlice(blocks[0].cid, 19_000, 5000), undefined)
    // deleted after a slice read (its file kept open): absent, not read
    const last = blocks[blocks.length - 1]
    assert.ok(await store.readSlice(last.cid, 0, 100) !== undefined)
    await store.delete(last.cid)
    assert.equal(await store.readSlice(last.cid, 0, 100), undefined)
    // stored again: its bytes
    await store.put(last.cid, last.bytes)
    assert.ok(Buffer.from((await store.readSlice(last.cid, 100, 300))!).equals(last.bytes.subarray(100, 400)))
  })

  it('reads a slice of a kept block file from the page cache on the event loop, the right bytes, and not once the block is deleted', async function () {
    if (readSliceNowNative === undefined) this.skip()
    const { dir, store, bytes, cid } = await storeWithOneBlock()
    // the first slice opens the file, kept from then on (read now if its pages are cached, else
    // by a threadpool job): the same slice again (its pages cached by then) is read now, with no job
    assert.ok(Buffer.from((await store.readSlice(cid, 16_384, 16_384))!).equals(bytes.subarray(16_384, 32_768)))
    const first = { ...store.sliceCounters }
    assert.equal(first.now + first.kept + first.pooled, 1)
    assert.ok(Buffer.from((await store.readSlice(cid, 16_384, 16_384))!).equals(bytes.subarray(16_384, 32_768)))
    assert.deepEqual(store.sliceCounters, { now: first.now + 1, kept: first.kept, pooled: first.pooled })
    // each slice read right, the second read of it from the page cache (the first one may have
    // found its pages dropped by someone's drop_caches, and read them back in)
    for (const at of [0, 100_000, 245_760]) {
      for (let i = 0; i < 2; i++) {
        const now = store.sliceCounters.now
        const got = await store.readSlice(cid, at, 16_384)
        assert.ok(got !== undefined && Buffer.from(got).equals(bytes.subarray(at, at + 16_384)), `slice at ${at}`)
        if (i === 1) assert.equal(store.sliceCounters.now, now + 1, `the second slice at ${at} read now`)
      }
    }
    const before = store.sliceCounters.now
    // past the end: not read now, and undefined
    assert.equal(await store.readSlice(cid, 250_000, 16_384), undefined)
    await store.delete(cid)
    assert.equal(await store.readSlice(cid, 0, 100), undefined)
    assert.equal(store.sliceCounters.now, before, 'none read now past the end or once deleted')
  })

  it('reads a slice of a kept block file whose pages are not cached through its kept descriptor, not by opening its path', async function () {
    // before: the addon's threadpool job opened the path, read and closed it, beside the descriptor kept open
    if (readSliceNowNative === undefined) this.skip()
    const { dir, store, bytes, cid } = await storeWithOneBlock()
    const files = await blockFiles(dir)
    assert.equal(files.length, 1)
    // kept open by a first slice
    assert.ok(Buffer.from((await store.readSlice(cid, 0, 4096))!).equals(bytes.subarray(0, 4096)))
    for (const at of [65_536, 163_840]) {
      await dropFileCache(files[0])
      const before = { ...store.sliceCounters }
      const got = await store.readSlice(cid, at, 16_384)
      assert.ok(got !== undefined && Buffer.from(got).equals(bytes.subarray(at, at + 16_384)), `slice at ${at}`)
      assert.equal(store.sliceCounters.pooled, before.pooled, `the slice at ${at} not read by opening the path`)
      // read now when someone read the pages back in meanwhile, else through the kept descriptor
      assert.equal(store.sliceCounters.kept + store.sliceCounters.now, before.kept + before.now + 1)
    }
    assert.ok(store.sliceCounters.kept > 0, 'no slice read through the kept descriptor (the pages were never dropped?)')
  })

  it('in a worker thread (where a host runs), keeps and closes its files without Node warning of a descriptor it did not open', async function () {
    // a descriptor the addon opened and node:fs closed warned "File descriptor N closed but not
    // opened in unmanaged mode" on every close: Node tracks a worker's descriptors
    this.timeout(60_000)
    const dir = await tempDir(t)
    const code = `
      const { parentPort, workerData } = require('node:worker_threads')
      const warnings = []
      process.on('warning', w => { warnings.push(String(w.message)) })
      ;(async () => {
        const { Store, cidOf } = await import(workerData.data)
        const { randomBytes } = await import('node:crypto')
        const store = await Store.open(workerData.dir)
        await store.tally()
        const cids = []
        for (let i = 0; i < 4; i++) {
          const bytes = randomBytes(64 * 1024)
          const cid = cidOf(bytes)
          await store.put(cid, bytes)
          cids.push(cid)
        }
        let read = 0
        for (const cid of cids) for (let i = 0; i < 3; i++) if (await store.readSlice(cid, 4096 * i, 4096) !== undefined) read++
        await store.delete(cids[0])
        await store.close()
        // a warning is emitted on the next tick after the close that raised it
        await new Promise(resolve => setImmediate(resolve))
        parentPort.postMessage({ read, warnings })
      })().catch(err => { parentPort.postMessage({ error: String(err.stack ?? err) }) })
    `
    const worker = new Worker(code, { eval: true, workerData: { dir, data: new URL('../../node/data/index.ts', import.meta.url).href } })
    const result = await new Promise<{ read?: number, warnings?: string[], error?: string }>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    await worker.terminate()
    assert.equal(result.error, undefined)
    assert.equal(result.read, 12)
    assert.deepEqual(result.warnings, [])
  })
})
