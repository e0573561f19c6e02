// ChunkWrite.placeStored() (EarlyChunks.placeNow: an open file's packed chunks, stored before the
// commit, that its version points into) had its chunks join no set of the writes in flight here
// (ChunkService.open): another write of the same bytes given up asked the peers to delete their
// fragments, and the first write committed a version whose chunk was gone there (place34). Now
// they join it until committed()/abandon(), and a release of the same fragments already under way
// is over before the chunk is placed (or counted on). Against a network that records what it is
// asked; the packed chunk's entry in the set of recent commits has aged out (an open file held
// open longer than RECENT_COMMIT_MS), so only the open set can keep it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { ChunkService, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

describe('ChunkWrite.placeStored(): its chunks are the write\'s in flight until its commit; a placement waits for a release under way', function () {
  this.timeout(30_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  interface Asked { released: string[], events: string[], gate?: PromiseWithResolvers<void> }
  const AGE_MS = 50

  async function service (): Promise<{ chunks: ChunkService, store: Store, asked: Asked }> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const asked: Asked = { released: [], events: [] }
    const network: Network = {
      params: () => ({ k: 2, m: 1 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      place: async (refs: ChunkRef[]) => { for (const r of refs) if (r.cid !== null) asked.events.push(`place ${r.cid.toString()}`) },
      abandon: async (refs: ChunkRef[], opts: { keep?: (f: CID) => boolean } = {}) => {
        asked.events.push('release asked')
        for (const r of refs) for (const f of r.fragments) if (opts.keep?.(f) !== true) asked.released.push(f.toString())
        if (asked.gate !== undefined) await asked.gate.promise
      }
    }
    return { chunks: new ChunkService(store, { network, recentCommitMs: AGE_MS }), store, asked }
  }

  /** A chunk stored here without a ChunkWrite (an open file's packed patches), its recent entry aged out. */
  async function packed (chunks: ChunkService, x: Uint8Array): Promise<ChunkRef> {
    const ref = (await chunks.storeChunk(x, 0)).ref
    assert.equal(ref.k, 2, 'an erasure-coded chunk')
    // the condition is the clock itself
    const end = performance.now() + 2 * AGE_MS
    await until('the recent entry aged', () => performance.now() >= end)
    assert.equal(chunks.recent.among(ref.fragments).size, 0, 'no longer in the set of recent commits')
    return ref
  }

  it('a write of the same bytes given up while it is open leaves its fragments, here and on the peers; the version it commits reads back', async () => {
    const { chunks, store, asked } = await service()
    const x = randomBytes(200_000)
    const ref = await packed(chunks, x)
    const first = chunks.write()
    await first.placeStored(ref)
    const second = chunks.write()
    const b = await second.chunk(x, 0)
    assert.deepEqual(b.fragments.map(String), ref.fragments.map(String), 'the same coding')
    await second.durable()
    await second.abandon()
    assert.deepEqual(asked.released, [], 'no peer is asked to delete a fragment of the chunk the open write places')
    await first.placed()
    first.committed()
    for (const f of ref.fragments.slice(0, ref.k)) assert.equal(await store.has(f), true, `${f.toString()} still here`)
    chunks.dropCache()
    assert.deepEqual(Buffer.from(await chunks.readChunk(ref)), Buffer.from(x), 'the committed chunk reads back')
    assert.equal(chunks.open.has(ref), false, 'out of the open set once committed')
  })

  it('once the write committed or gave up, the chunk leaves the open set (a later give-up releases it)', async () => {
    const { chunks, asked } = await service()
    const x = randomBytes(200_000)
    const ref = await packed(chunks, x)
    const first = chunks.write()
    await first.placeStored(ref)
    assert.equal(chunks.open.has(ref), true, 'open while the write is')
    await first.abandon()
    assert.equal(chunks.open.has(ref), false, 'out of the open set after abandon()')
    assert.deepEqual(asked.released, [], 'abandon() leaves a chunk it did not store')
    const second = chunks.write()
    await second.chunk(x, 0)
    await second.durable()
    await second.abandon()
    assert.deepEqual(new Set(asked.released), new Set(ref.fragments.map(String)), 'nothing open or recent keeps it any more')
  })

  it('a release of the same fragments under way is over before the chunk is placed', async () => {
    const { chunks, asked } = await service()
    const x = randomBytes(200_000)
    const ref = await packed(chunks, x)
    const second = chunks.write()
    await second.chunk(x, 0)
    await second.durable()
    // (its own placement over: only what follows is looked at)
    await second.placed()
    asked.events.length = 0
    asked.gate = Promise.withResolvers<void>()
    const giving = second.abandon()
    await until('the release asked', () => asked.events.includes('release asked'))
    const first = chunks.write()
    let placedStored = false
    const p = first.placeStored(ref).then(() => { placedStored = true })
    // every turn of the event loop the placement could have taken (no time: the gate is the condition)
    for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
    assert.equal(placedStored, false, 'placeStored() waits for the release')
    asked.events.push('release over')
    asked.gate.resolve()
    await giving
    await p
    await first.placed()
    assert.deepEqual(asked.events, ['release asked', 'release over', `place ${ref.cid!.toString()}`])
    first.committed()
  })

  it('a chunk placed outside a ChunkWrite (ChunkService.place: an open file\'s commit, a fold) waits for a release of its fragments under way', async () => {
    // (the same race as placeStored()'s: the chunks of an open file's spill, placed at its commit)
    const { chunks, asked } = await service()
    const x = randomBytes(200_000)
    const ref = await packed(chunks, x)
    const second = chunks.write()
    await second.chunk(x, 0)
    await second.durable()
    await second.placed()
    asked.events.length = 0
    asked.gate = Promise.withResolvers<void>()
    const giving = second.abandon()
    await until('the release asked', () => asked.events.includes('release asked'))
    let placed = false
    const p = chunks.place([ref], { safe: true }).then(() => { placed = true })
    for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
    assert.equal(placed, false, 'place() waits for the release')
    asked.events.push('release over')
    asked.gate.resolve()
    await giving
    await p
    assert.deepEqual(asked.events, ['release asked', 'release over', `place ${ref.cid!.toString()}`])
  })

  it('a release under way that deleted the chunk here fails placeStored() (the version must not name it)', async () => {
    // (the release's own steps are not ordered here: it is begun by hand, and the block deleted
    // as its last step would, before placeStored() is asked)
    const { chunks, store } = await service()
    const ref = await packed(chunks, randomBytes(200_000))
    const end = chunks.releasing.begin(ref.fragments)
    await store.delete(ref.fragments[0])
    const first = chunks.write()
    const p = first.placeStored(ref)
    let settled = false
    p.then(() => { settled = true }, () => { settled = true })
    for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
    assert.equal(settled, false, 'placeStored() waits for the release')
    end()
    await assert.rejects(p, (err: any) => err.code === 'EIO')
    await first.abandon()
  })

  it('a chunk no longer whole here fails placeStored() with no release under way (review34a: a write of the same bytes placed, its copies handed over, then given up)', async () => {
    // the handover and the give-up's release are over before placeStored() is asked: nothing
    // tells it of them but the store (the release deleted the fragments on the peers too)
    const { chunks, store, asked } = await service()
    const ref = await packed(chunks, randomBytes(200_000))
    for (const f of ref.fragments.slice(0, ref.k)) await store.delete(f)
    assert.equal(chunks.releasing.busy(ref), false)
    const first = chunks.write()
    await assert.rejects(first.placeStored(ref), (err: any) => err.code === 'EIO')
    assert.deepEqual(asked.events, [], 'not placed')
    await first.abandon()
  })

  it('a chunk this write placed before is placed again though no longer whole here (a commit tried again: its copies were handed over)', async () => {
    const { chunks, store, asked } = await service()
    const ref = await packed(chunks, randomBytes(200_000))
    const first = chunks.write()
    await first.placeStored(ref)
    await first.placed()
    // the placement handed this host's copies over
    for (const f of ref.fragments.slice(0, ref.k)) await store.delete(f)
    await first.placeStored(ref)
    await first.placed()
    assert.deepEqual(asked.events, [`place ${ref.cid!.toString()}`, `place ${ref.cid!.toString()}`])
    first.committed()
  })

  it('a put of the same block by another write, queued before a given-up write deletes it, keeps the block here (Store.deleteClaimed)', async () => {
    // the give-up checked its claim, then deleted: a put of the same bytes (an open file's spill,
    // unclaimed) that was under way in between dropped the claim, and the block went from under it
    const { chunks, store, asked } = await service()
    const x = randomBytes(200_000)
    const second = chunks.write()
    // stored new: claimed by the write given up below
    const b = await second.chunk(x, 0)
    await second.durable()
    await second.placed()
    asked.gate = Promise.withResolvers<void>()
    const giving = second.abandon()
    await until('the release asked', () => asked.events.includes('release asked'))
    // the spill's put of the same blocks is under way, held at its look at the disk
    const s = store as unknown as { presentOnDisk: (...a: unknown[]) => Promise<boolean>, delete: (...a: unknown[]) => Promise<void>, deleteClaimed?: (...a: unknown[]) => Promise<boolean> }
    const look = s.presentOnDisk.bind(store)
    const putHeld = Promise.withResolvers<void>()
    let looking = 0
    s.presentOnDisk = async (...a: unknown[]) => { looking++; await putHeld.promise; return await look(...a) }
    // the give-up's deletes, seen as it asks for them (either call)
    let deletes = 0
    const del = s.delete.bind(store)
    s.delete = async (...a: unknown[]) => { deletes++; await del(...a) }
    if (s.deleteClaimed !== undefined) {
      const dc = s.deleteClaimed.bind(store)
      s.deleteClaimed = async (...a: unknown[]) => { deletes++; return await dc(...a) }
    }
    const spill = chunks.storeChunk(x, 0)
    await until('the spill\'s put is under way', () => looking > 0)
    asked.gate.resolve()
    await until('the give-up asked to delete its blocks', () => deletes > 0)
    putHeld.resolve()
    const { ref } = await spill
    await giving
    for (const f of ref.fragments.slice(0, ref.k)) assert.equal(await store.has(f), true, `${f.toString()} still here`)
    assert.equal(b.cid!.toString(), ref.cid!.toString())
    chunks.dropCache()
    assert.deepEqual(Buffer.from(await chunks.readChunk(ref)), Buffer.from(x))
  })
})
