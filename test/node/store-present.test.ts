// Store.has() answers "not here" from memory once tally() walked the store (node/data/present.ts):
// it must never say "not here" of a block stored (before the walk, during it or after), must ask
// the disk for the rest (a block deleted, or its file removed under the store, is not there), and
// the filter must stay truthful as it grows past the size it started with.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Store, cidOf } from '../../node/data/index.ts'
import { PRESENT_MIN_BLOCKS, PresentFilter } from '../../node/data/present.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

describe('Store.has() with the present filter', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('finds blocks stored before the walk, during it and after; says absent of the others and of files removed under it', async () => {
    const dir = await tempDir(t)
    const blocks = Array.from({ length: 40 }, () => randomBytes(64)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    let store = await Store.open(dir)
    await store.putMany(blocks.slice(0, 10))
    await store.close()

    store = await Store.open(dir)
    t.add(async () => { await store.close() })
    const during = store.putMany(blocks.slice(10, 20))
    await store.tally()
    await during
    await store.putMany(blocks.slice(20, 30))
    for (const b of blocks.slice(0, 30)) assert.equal(await store.has(b.cid), true, 'a stored block is found')
    for (const b of blocks.slice(30)) assert.equal(await store.has(b.cid), false, 'a block never stored is not')

    await store.delete(blocks[0].cid)
    assert.equal(await store.has(blocks[0].cid), false, 'a deleted block is not found')
    await store.putMany([blocks[0]])
    assert.equal(await store.has(blocks[0].cid), true, 'a block stored again after its deletion is found')
    // a deletion and a put of one block at once: whichever lands last, has() says what the disk holds
    await Promise.all([store.delete(blocks[2].cid), store.putMany([blocks[2]])])
    assert.equal(await store.has(blocks[2].cid), (await store.usage()).blocks === 30, 'has() agrees with the disk')
    // a block file removed behind the store's back (a disk emptied): the disk says so
    await rm(join(dir, 'blocks'), { recursive: true })
    assert.equal(await store.has(blocks[1].cid), false, 'a removed block file is not found')
    // stored again: found again
    await store.putMany([blocks[1]])
    assert.equal(await store.has(blocks[1].cid), true)
  })

  it('the filter never forgets a block as it grows, and mostly tells absent blocks apart', () => {
    const digest = (i: number): Uint8Array => createHash('sha256').update(`block ${i}`).digest()
    const filter = new PresentFilter()
    // past two layers' capacity: a third layer takes the last ones
    const n = 3 * PRESENT_MIN_BLOCKS + 100
    for (let i = 0; i < n; i++) filter.add(digest(i))
    for (let i = 0; i < n; i++) assert.equal(filter.mayHave(digest(i)), true)
    let maybe = 0
    const probes = 20_000
    for (let i = n; i < n + probes; i++) if (filter.mayHave(digest(i))) maybe++
    // ~0.3% per layer at its fill (two layers full, one nearly empty): far below 5%
    assert.ok(maybe < probes * 0.05, `${maybe} of ${probes} absent blocks taken as maybe present`)
  })
})
