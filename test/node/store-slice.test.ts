// Slice reads of the store (node/data/store.ts readSlice) keep block files open between reads
// (SLICE_FILES_OPEN, least recently read closed first): the bytes are those stored, many reads
// at once share a file, more blocks than are kept read right, and a block deleted after a slice
// read is no longer read through the kept file (absent), nor after it is stored again (its bytes).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Store, cidOf } from '../../node/data/index.ts'
import { SLICE_FILES_OPEN } from '../../node/data/store.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

describe('Store.readSlice', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

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
})
