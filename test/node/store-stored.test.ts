// The store's running figure of bytes stored (node/data/store.ts tally()/stored()): what a
// metrics scrape reads instead of walking the store. It must agree with a walk (usage()) after
// puts, repeated puts, deletes and quarantines, and across a reopen.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Store, cidOf } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

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
})
