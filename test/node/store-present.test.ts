// Store.has() answers from memory once tally() walked the store (node/data/present.ts, an exact
// index): it must say "here" of every block stored (before the walk, during it, after it, across
// a reopen) and "not here" of every other: never stored, deleted, found corrupt, refused by a full
// disk; a put and a delete of one block at once end as the disk does. A file removed behind the
// store's back leaves the index once a read finds it gone, or at the next resync().
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Store, cidOf } from '../../node/data/index.ts'
import { FsError } from '../../node/errors.ts'
import { PRESENT_MIN_SLOTS, PresentIndex } from '../../node/data/present.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

describe('Store.has() from the present index', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('finds blocks stored before the walk, during it and after; not the others, deleted ones, nor files found removed under it', async () => {
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
    // a deletion and a put of one block at once, either way round: has() says what the disk holds
    await Promise.all([store.delete(blocks[2].cid), store.putMany([blocks[2]])])
    assert.equal(await store.has(blocks[2].cid), true, 'the put after the delete: stored')
    await Promise.all([store.putMany([blocks[3]]), store.delete(blocks[3].cid)])
    assert.equal(await store.has(blocks[3].cid), false, 'the delete after the put: gone')
    assert.equal((await store.usage()).blocks, 29, 'the disk agrees')

    // block files removed behind the store's back (a disk emptied): a read that finds one gone
    // forgets it; resync() forgets the rest
    await rm(join(dir, 'blocks'), { recursive: true })
    assert.equal(await store.tryGet(blocks[1].cid), undefined)
    assert.equal(await store.has(blocks[1].cid), false, 'a block a read found gone is not found')
    await store.resync()
    for (const b of blocks.slice(0, 30)) assert.equal(await store.has(b.cid), false, 'after resync() no removed block is found')
    // stored again: found again (and a put of a block the index held but the disk lost writes it)
    await store.putMany([blocks[1]])
    assert.equal(await store.has(blocks[1].cid), true)
    assert.deepEqual(await store.get(blocks[1].cid), blocks[1].bytes)
  })

  it('a block found corrupt, or refused by a full disk, is not here; a reopen finds what the disk holds', async () => {
    const dir = await tempDir(t)
    let full = false
    const space = {
      admit: () => { if (full) throw new FsError('ENOSPC', 'put', dir, 'full') },
      noSpace: () => {},
      freed: () => {}
    }
    let store = await Store.open(dir, { space })
    t.add(async () => { await store.close() })
    await store.tally()
    const blocks = [100, 2000, 3000, 4000].map(n => randomBytes(n)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    await store.putMany(blocks.slice(0, 3))
    // corrupt the 2000-byte block on disk: a read moves it aside, and it is no longer held
    const root = join(dir, 'blocks')
    let file = ''
    for (const d of await readdir(root)) {
      for (const n of await readdir(join(root, d))) if ((await stat(join(root, d, n))).size === 2000) file = join(root, d, n)
    }
    assert.notEqual(file, '')
    await writeFile(file, randomBytes(2000))
    assert.equal(await store.tryGet(blocks[1].cid), undefined)
    assert.equal(await store.has(blocks[1].cid), false, 'a quarantined block is not here')
    // a full disk refuses a new block: not here
    full = true
    await assert.rejects(store.putMany([blocks[3]]), (err: any) => err.code === 'ENOSPC')
    assert.equal(await store.has(blocks[3].cid), false, 'a refused block is not here')
    full = false
    await store.delete(blocks[2].cid)
    await store.close()

    store = await Store.open(dir, { space })
    await store.tally()
    assert.deepEqual(await Promise.all(blocks.map(async b => await store.has(b.cid))), [true, false, false, false])
    // the corrupt block stored again (sound): written over, and here
    await store.putMany([blocks[1]])
    assert.equal(await store.has(blocks[1].cid), true)
    assert.deepEqual(await store.get(blocks[1].cid), blocks[1].bytes)
  })

  it('onGone is told of each block that leaves the store (a delete, a claimed delete), not of puts (release.ts forgets its putters then)', async () => {
    const dir = await tempDir(t)
    const blocks = Array.from({ length: 3 }, () => randomBytes(64)).map(bytes => ({ cid: cidOf(bytes), bytes }))
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await store.tally()
    const gone: string[] = []
    store.onGone = cid => { gone.push(cid.toString()) }
    await store.putMany([blocks[0], blocks[2]])
    const claim = {}
    await store.put(blocks[1].cid, blocks[1].bytes, { claim })
    assert.deepEqual(gone, [], 'a put is no leaving')
    await store.delete(blocks[0].cid)
    assert.equal(await store.deleteClaimed(blocks[1].cid, claim), true)
    assert.deepEqual(gone, [blocks[0].cid.toString(), blocks[1].cid.toString()])
  })

  it('onGone is told of a delete only once its unlink succeeded: a failed one (the block stays) tells nothing (review36f)', async () => {
    const dir = await tempDir(t)
    const bytes = randomBytes(64)
    const cid = cidOf(bytes)
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await store.tally()
    await store.put(cid, bytes)
    const gone: string[] = []
    const seen: boolean[] = []
    store.onGone = c => { gone.push(c.toString()) }
    const blocks = (store as any).blocks
    const del = blocks.delete.bind(blocks)
    let calls = 0
    blocks.delete = async (c: any) => {
      if (calls++ === 0) throw Object.assign(new Error('EIO: i/o error, unlink'), { code: 'EIO' })
      seen.push(gone.length > 0)
      return await del(c)
    }
    await assert.rejects(store.delete(cid), /EIO/)
    assert.equal(await store.has(cid), true, 'still held')
    assert.deepEqual(gone, [], 'a failed delete is no leaving')
    await store.delete(cid)
    assert.deepEqual(seen, [false], 'told after the unlink, not before')
    assert.deepEqual(gone, [cid.toString()])
  })

  it('the index agrees with a set through adds and deletes, as it grows and with crowded probe runs', () => {
    const digest = (i: number): Uint8Array => createHash('sha256').update(`block ${i}`).digest()
    // digests whose first word is equal (one home slot): long probe runs, deletions shift them back
    const crowded = (i: number): Uint8Array => { const d = Buffer.from(digest(i)); d.writeUInt32BE(7, 0); return d }
    const index = new PresentIndex()
    const model = new Set<string>()
    const key = (d: Uint8Array): string => Buffer.from(d).toString('hex')
    let seed = 1
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    const n = 3 * PRESENT_MIN_SLOTS
    for (let step = 0; step < 4 * n; step++) {
      const i = rand(n)
      const d = i % 10 === 0 ? crowded(i) : digest(i)
      if (rand(3) === 0) { index.delete(d); model.delete(key(d)) } else { index.add(d); model.add(key(d)) }
    }
    // the all-zero key too (it cannot sit in a slot)
    const zero = new Uint8Array(32)
    index.add(zero)
    model.add(key(zero))
    assert.equal(index.size, model.size)
    for (let i = 0; i < n; i++) {
      for (const d of [digest(i), crowded(i)]) assert.equal(index.has(d), model.has(key(d)), `block ${i}`)
    }
    assert.equal(index.has(zero), true)
    index.delete(zero)
    assert.equal(index.has(zero), false)
  })
})
