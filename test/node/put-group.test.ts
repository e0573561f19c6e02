// PutGroup (node/data/blocks.ts): the block puts of one commit overlap, at most
// PUT_GROUP_PARALLEL at once, and done() resolves only once every one of them has, or rejects
// with the first failure (nothing may name a block whose put failed); on the real Volume, a file
// committed through it (a SQLite journal's size: one chunk and its manifest) reads back after a
// reopen.
import assert from 'node:assert/strict'
import { PutGroup, PUT_GROUP_PARALLEL } from '../../node/data/index.ts'
import { Volume } from '../../node/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

/** A promise and the functions that settle it. */
function deferred (): { p: Promise<void>, resolve: () => void, reject: (err: Error) => void } {
  let resolve!: () => void
  let reject!: (err: Error) => void
  const p = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  return { p, resolve, reject }
}

describe('PutGroup', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it(`add() returns while fewer than ${PUT_GROUP_PARALLEL} puts run, and waits for one to end past that; done() waits for all`, async () => {
    const group = new PutGroup()
    const puts = Array.from({ length: PUT_GROUP_PARALLEL + 1 }, () => deferred())
    for (const d of puts.slice(0, PUT_GROUP_PARALLEL - 1)) await group.add(d.p)
    let added = false
    const last = group.add(puts[PUT_GROUP_PARALLEL - 1].p).then(() => { added = true })
    // the group is full until one put ends: the caller waits (checked after the queued callbacks ran)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(added, false)
    puts[0].resolve()
    await last
    let done = false
    const all = group.done().then(() => { done = true })
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(done, false, 'done() before every put ended')
    for (const d of puts.slice(1)) d.resolve()
    await all
  })

  it('done() rejects with the first failure, after every put has ended', async () => {
    const group = new PutGroup()
    const a = deferred()
    const b = deferred()
    await group.add(a.p)
    const adding = group.add(b.p)
    a.reject(new Error('disk on fire'))
    await assert.rejects(adding, /disk on fire/)
    let settled = false
    const all = group.done().finally(() => { settled = true })
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(settled, false, 'done() settled with a put still running')
    b.resolve()
    await assert.rejects(all, /disk on fire/)
  })

  it('a file written once and fsynced (a chunk and a manifest, put together) reads back after a reopen', async () => {
    const dir = await tempDir(t)
    let vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const bytes = new Uint8Array(9000).map((_, i) => (i * 13) & 0xff)
    const fh = await vol.open('/db-journal', 'w+')
    await fh.write(bytes, 0, bytes.byteLength, 0)
    await fh.sync()
    await fh.close()
    await vol.close()
    vol = await Volume.open({ dir })
    assert.ok(Buffer.from(await vol.readFile('/db-journal')).equals(bytes))
  })
})
