// A write given up here (ChunkWrite.abandon(), release()) leaves out of its release what a
// version committed here lately names (review31g: the peers that had not seen that commit
// deleted its fragments). It asked the whole tree (Network.referenced: a retained() walk reading
// every manifest), 0.7-1.2 s at 5,000 files per given-up write and per rewritten chunk
// (review32b); now ChunkService.recent answers (data/recent.ts), and the walk runs only when
// that set let a recent entry go for room. Against a network that counts what it is asked.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { ChunkService, RecentCommits, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

describe('ChunkWrite: a write given up spares the blocks of versions committed here lately (ChunkService.recent)', function () {
  this.timeout(30_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  interface Asked { walks: number, kept: string[], released: string[] }

  async function service (init: { recentCommitEntries?: number, recentCommitMs?: number, recentCommitClock?: () => number } = {}): Promise<{ chunks: ChunkService, store: Store, asked: Asked }> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const asked: Asked = { walks: 0, kept: [], released: [] }
    const network: Network = {
      params: () => ({ k: 2, m: 1 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      place: async () => {},
      // the tree walk: counted; it knows of nothing
      referenced: async () => { asked.walks++; return new Set() },
      abandon: async (refs: ChunkRef[], opts: { keep?: (f: CID) => boolean } = {}) => {
        for (const r of refs) for (const f of r.fragments) (opts.keep?.(f) === true ? asked.kept : asked.released).push(f.toString())
      }
    }
    return { chunks: new ChunkService(store, { network, ...init }), store, asked }
  }

  it('a write of the same bytes given up after the other committed keeps its fragments here and on the peers, without walking the tree', async () => {
    const { chunks, store, asked } = await service()
    const x = randomBytes(200_000)
    const first = chunks.write()
    const second = chunks.write()
    const a = await first.chunk(x, 0)
    await second.chunk(x, 0)
    assert.equal(a.k, 2, 'an erasure-coded chunk')
    await first.durable()
    await second.durable()
    first.committed()
    await second.abandon()
    assert.equal(asked.walks, 0, 'the tree was not walked')
    assert.deepEqual(asked.released, [], 'no peer is asked to delete a fragment of the committed version')
    assert.deepEqual(new Set(asked.kept), new Set(a.fragments.map(String)), 'every fragment kept')
    // (the data fragments: the parity waits in memory until placed)
    for (const f of a.fragments.slice(0, a.k)) assert.equal(await store.has(f), true, `${f.toString()} still here`)
  })

  it('a write given up that shares nothing with a commit releases everything, without walking the tree', async () => {
    const { chunks, store, asked } = await service()
    const first = chunks.write()
    await first.chunk(randomBytes(200_000), 0)
    await first.durable()
    first.committed()
    const second = chunks.write()
    const b = await second.chunk(randomBytes(200_000), 0)
    await second.durable()
    await second.abandon()
    assert.equal(asked.walks, 0, 'the tree was not walked')
    assert.deepEqual(new Set(asked.released), new Set(b.fragments.map(String)), 'every fragment released')
    for (const f of b.fragments) assert.equal(await store.has(f), false, `${f.toString()} deleted here`)
  })

  it('a chunk rewritten in an open write (release()) spares a committed version\'s fragments, without walking the tree', async () => {
    const { chunks, store, asked } = await service()
    const x = randomBytes(200_000)
    const first = chunks.write()
    const a = await first.chunk(x, 0)
    await first.durable()
    const second = chunks.write()
    const c = await second.chunk(x, 0)
    first.committed()
    second.release(c)
    // the release is over once the next chunk may go on
    await second.chunk(randomBytes(200_000), 0)
    assert.equal(asked.walks, 0, 'the tree was not walked')
    assert.deepEqual(asked.released, [], 'no peer is asked to delete a fragment of the committed version')
    // (the data fragments: the parity waits in memory until placed)
    for (const f of a.fragments.slice(0, a.k)) assert.equal(await store.has(f), true, `${f.toString()} still here`)
    await second.abandon()
  })

  it('a write given up spares the chunks and manifest of a version stored without a ChunkWrite (an open file\'s), without walking the tree', async () => {
    // review32f: an open file stores its chunks and manifest unclaimed (open-file.ts) and commits
    // them by its own op, never through ChunkWrite.committed(): /a written through a handle, then
    // a replaceFile('/b') of the same bytes given up released /a's blocks on every peer
    const { chunks, store, asked } = await service()
    const x = randomBytes(200_000)
    const a = (await chunks.storeChunk(x, 0)).ref
    assert.equal(a.k, 2, 'an erasure-coded chunk')
    const manifest = { v: 3 as const, size: x.byteLength, chunkSize: x.byteLength, chunks: [a] }
    const am = await chunks.storeManifest(manifest)
    const second = chunks.write()
    await second.chunk(x, 0)
    const bm = await second.manifest(manifest)
    assert.equal(bm.cid.toString(), am.cid.toString(), 'the same manifest')
    await second.abandon()
    assert.equal(asked.walks, 0, 'the tree was not walked')
    assert.deepEqual(asked.released, [], 'no peer is asked to delete a block of the version stored without a ChunkWrite')
    assert.deepEqual(new Set(asked.kept), new Set([...a.fragments.map(String), am.cid.toString()]), 'its fragments and manifest kept')
    for (const f of a.fragments.slice(0, a.k)) assert.equal(await store.has(f), true, `${f.toString()} still here`)
    assert.equal(await store.has(am.cid), true, 'the manifest still here')
  })

  it('a chunk stored without a ChunkWrite longer than the set\'s age before its manifest (an open file held open) is spared once the manifest is stored', async () => {
    const ageMs = 50
    // the set's own clock, stepped here: the steps after the age are not raced against it (a
    // loaded host took more than 50 ms between the manifest's store and the give-up)
    let clock = 0
    const { chunks, asked } = await service({ recentCommitMs: ageMs, recentCommitClock: () => clock })
    const x = randomBytes(200_000)
    const a = (await chunks.storeChunk(x, 0)).ref
    // the chunk's own entry is past the age
    clock += 2 * ageMs
    assert.equal(chunks.recent.among(a.fragments).size, 0, 'the chunk\'s entries left with age')
    // the close commits the version: its manifest names the chunk
    await chunks.storeManifest({ v: 3, size: x.byteLength, chunkSize: x.byteLength, chunks: [a] })
    const second = chunks.write()
    await second.chunk(x, 0)
    await second.durable()
    await second.abandon()
    assert.equal(asked.walks, 0, 'the tree was not walked')
    assert.deepEqual(asked.released, [], 'no peer is asked to delete a fragment the committed version names')
  })

  // an open file's close stores its version's manifest unclaimed, naming the early write's
  // claimed chunks before the op: a close that then records nothing (the file unlinked meanwhile,
  // a failed last close) gave up a write whose own chunks were spared (review32h)
  it('a manifest stored without a claim leaves out the chunks a write here still claims: that write\'s give-up releases them', async () => {
    const { chunks, asked } = await service()
    const x = randomBytes(200_000)
    const w = chunks.write()
    const a = await w.chunk(x, 0)
    await w.durable()
    await chunks.storeManifest({ v: 3, size: x.byteLength, chunkSize: x.byteLength, chunks: [a] })
    assert.equal(chunks.recent.among(a.fragments).size, 0, 'the claimed chunk\'s fragments are not in the set')
    await w.abandon()
    assert.deepEqual(new Set(asked.released), new Set(a.fragments.map(String)), 'the given-up write releases its own chunk')
  })

  it('an erasure-coded chunk\'s own CID (no block, never asked about) takes no entry', async () => {
    const { chunks } = await service()
    const w = chunks.write()
    const a = await w.chunk(randomBytes(200_000), 0)
    await w.durable()
    w.committed()
    assert.equal(a.k, 2)
    assert.equal(chunks.recent.size, a.fragments.length, 'one entry per fragment')
    assert.equal(chunks.recent.among([a.cid!]).size, 0)
  })

  it('once the set let a recent entry go for room, a give-up walks the tree', async () => {
    // fewer entries than one erasure-coded chunk's blocks: the first commit overflows it
    const { chunks, asked } = await service({ recentCommitEntries: 2 })
    const first = chunks.write()
    await first.chunk(randomBytes(200_000), 0)
    await first.durable()
    first.committed()
    assert.equal(chunks.recent.overflowed(), true)
    const second = chunks.write()
    await second.chunk(randomBytes(200_000), 0)
    await second.durable()
    await second.abandon()
    assert.equal(asked.walks, 1, 'the tree was walked once')
  })

  it('RecentCommits: entries leave after ageMs, the oldest first past max, and overflowed() holds while a young one that left would still be kept', () => {
    let now = 0
    const r = new RecentCommits({ ageMs: 100, max: 3, now: () => now })
    const cids = Array.from({ length: 4 }, () => {
      const b = randomBytes(16)
      return { toString: () => b.toString('hex') } as unknown as CID
    })
    r.add(cids.slice(0, 3))
    assert.deepEqual(r.among(cids).size, 3)
    assert.equal(r.overflowed(), false)
    now = 50
    r.add([cids[3]])
    assert.equal(r.size, 3, 'at most max')
    assert.equal(r.among([cids[0]]).size, 0, 'the oldest left first')
    assert.equal(r.overflowed(), true, 'the entry that left was 50 ms old')
    now = 101
    assert.equal(r.overflowed(), false, 'it would have left by now')
    assert.deepEqual([...r.among(cids)], [cids[3].toString()], 'the ones older than ageMs left')
    assert.throws(() => new RecentCommits({ max: 0 }), RangeError)
    assert.throws(() => new RecentCommits({ ageMs: -1 }), RangeError)
  })
})
