// The write path's parity in recycled memory (issue 15 item 7; node/data/staging.ts ShardLease):
// a chunk stored with `recycle` codes its parity into the chunk service's ShardPool, and that
// memory goes back to the pool only once the put succeeded and the staging let go of it. Nothing
// may read a fragment after its memory went back: a staged fragment keeps its bytes whatever is
// encoded after it, a fragment given out by the staging (placement, the swarm) is never recycled,
// and a failed put leaves its memory to the collector.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { ChunkService, ShardLease, ShardPool, Staging, Store, encodeChunk } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { sha256Many } from '../../node/data/erasure.ts'
import { matches } from '../../node/data/store.ts'
import { seededBytes } from '../../harness/prng.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

const MiB = 1 << 20

describe('ShardLease', function () {
  it('gives the memory back when the last holder lets go, not before; never once kept', () => {
    const pool = new ShardPool()
    const data = seededBytes(MiB, 1)
    const a = pool.encode(data, 4, 2)
    const parity = a.shards[4]
    const lease = new ShardLease(a)
    lease.hold()
    lease.letGo()
    assert.equal(pool.counters.released, 0, 'one holder left')
    assert.equal(parity.byteLength, 1 << 18)
    lease.letGo()
    assert.equal(pool.counters.released, 1)
    assert.equal(parity.byteLength, 0, 'detached in the holder\'s hands')
    assert.throws(() => { lease.hold() }, /after the last holder/)
    assert.throws(() => { lease.letGo() }, /without a hold/)

    const b = pool.encode(data, 4, 2)
    const kept = new ShardLease(b)
    kept.keep()
    kept.letGo()
    assert.equal(pool.counters.released, 1, 'kept: not given back')
    assert.equal(b.shards[4].byteLength, 1 << 18)
    assert.ok(kept.kept)
  })

  it('Staging holds a lease while a pooled block of it is staged, and get() keeps it for good', () => {
    const pool = new ShardPool()
    const s = new Staging(64 * MiB)
    const stage = (seed: number, name: string): { lease: ShardLease, blocks: Array<{ cid: CID, bytes: Uint8Array }>, parity: Uint8Array } => {
      const data = seededBytes(MiB, seed)
      const p = pool.encode(data, 4, 2)
      const { blocks } = encodeChunk(data, 0, 4, 2) // the CIDs (and the same bytes, fresh)
      const staged = blocks.map((b, j) => ({ cid: b.cid, bytes: p.shards[j] }))
      const lease = new ShardLease(p)
      s.stage(name, staged, { lease, pooled: j => j >= 4 })
      return { lease, blocks, parity: p.shards[4] }
    }
    const a = stage(2, 'a')
    a.lease.letGo() // the maker (the put) is done: the staging alone holds it
    assert.equal(pool.counters.released, 0)
    assert.ok(matches(a.blocks[4].cid, a.parity), 'staged bytes intact')
    s.release('a')
    assert.equal(pool.counters.released, 1, 'released once unstaged')
    assert.equal(a.parity.byteLength, 0)

    const b = stage(3, 'b')
    b.lease.letGo()
    const taken = s.get(b.blocks[5].cid)!
    s.release('b')
    assert.equal(pool.counters.released, 1, 'a parity block given out by get(): never recycled')
    assert.ok(matches(b.blocks[5].cid, taken))
  })
})

describe('ChunkService.storeChunk({ recycle }): parity in recycled memory', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  before(function () {
    if (sha256Many === undefined) this.skip() // without the addon, chunks are coded synchronously and fresh
  })

  /** A chunk service over a new store (`opened` gets it) with a network whose place() runs `placeHook`. */
  async function service (placeHook: (refs: ChunkRef[], staged: ((cid: CID) => Uint8Array | undefined) | undefined, lend: ((cid: CID) => { bytes: Uint8Array, done: (clean: boolean) => void } | undefined) | undefined) => Promise<void> = async () => {}, opened?: (store: Store) => void): Promise<ChunkService> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    opened?.(store)
    t.add(async () => { await store.close() })
    const network: Network = {
      params: () => ({ k: 4, m: 2 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      place: async (refs: ChunkRef[], opts = {}) => { await placeHook(refs, opts.staged, opts.lend) }
    }
    return new ChunkService(store, { network })
  }

  it('a staged chunk\'s parity is never rewritten by later encodes; once placed (and stored), its memory is the next chunk\'s', async () => {
    const chunks = await service()
    const first = await chunks.storeChunk(seededBytes(MiB, 10), 0, { recycle: true })
    const parity = first.ref.fragments.slice(4)
    // more chunks while the first waits for placement: none may code into its memory
    const later = []
    for (let i = 1; i <= 6; i++) later.push(await chunks.storeChunk(seededBytes(MiB, 10 + i), i * MiB, { recycle: true }))
    assert.equal(chunks.shardPool.counters.reused, 0, 'nothing released while staged')
    assert.equal(chunks.shardPool.counters.made, 7)
    for (const [j, cid] of parity.entries()) {
      assert.ok(matches(cid, first.blocks[4 + j].bytes), `parity ${j} of the staged chunk intact`)
    }
    await chunks.place([first.ref]) // placed (this network takes nothing from the staging): unstaged
    assert.equal(chunks.shardPool.counters.released, 1)
    assert.equal(first.blocks[4].bytes.byteLength, 0, 'the released parity is detached in the caller\'s hands')
    const next = await chunks.storeChunk(seededBytes(MiB, 20), 7 * MiB, { recycle: true })
    assert.equal(chunks.shardPool.counters.reused, 1, 'the next chunk coded into the released memory')
    const fresh = encodeChunk(seededBytes(MiB, 20), 7 * MiB, 4, 2)
    assert.deepEqual(next.ref.fragments.map(String), fresh.ref.fragments.map(String), 'the same fragments as a fresh encode')
    for (const [j, b] of next.blocks.entries()) assert.ok(matches(b.cid, b.bytes), `fragment ${j} of the recycled encode`)
    for (const l of later) for (const b of l.blocks) assert.ok(matches(b.cid, b.bytes), 'the other staged chunks intact')
  })

  it('a parity fragment placement took from the staging is never recycled (the network may still send it)', async () => {
    const took: Array<{ cid: CID, bytes: Uint8Array }> = []
    const chunks = await service(async (refs, staged) => {
      for (const r of refs) for (const f of r.fragments.slice(r.k)) took.push({ cid: f, bytes: staged!(f)! })
    })
    const a = await chunks.storeChunk(seededBytes(MiB, 30), 0, { recycle: true })
    await chunks.place([a.ref])
    assert.equal(chunks.shardPool.counters.released, 0, 'given out: left to the collector')
    for (let i = 1; i <= 4; i++) {
      const c = await chunks.storeChunk(seededBytes(MiB, 30 + i), i * MiB, { recycle: true })
      await chunks.place([c.ref])
    }
    assert.equal(chunks.shardPool.counters.reused, 0)
    assert.equal(took.length, 10)
    for (const { cid, bytes } of took) assert.ok(matches(cid, bytes), 'what placement holds keeps its bytes')
  })

  it('a parity fragment lent to placement is recycled only when its push said done(true) (every target acknowledged it)', async () => {
    const pushed: Array<{ cid: CID, bytes: Uint8Array }> = []
    let clean = true
    const chunks = await service(async (refs, _staged, lend) => {
      for (const r of refs) {
        for (const f of r.fragments.slice(r.k)) {
          const l = lend!(f)!
          pushed.push({ cid: f, bytes: l.bytes })
          assert.ok(matches(f, l.bytes), 'lent bytes are the fragment')
          l.done(clean)
        }
      }
    })
    clean = false // a push not acknowledged by every target: the bytes may still be queued to send
    const a = await chunks.storeChunk(seededBytes(MiB, 60), 0, { recycle: true })
    await chunks.place([a.ref])
    assert.equal(chunks.shardPool.counters.released, 0)
    clean = true
    const b = await chunks.storeChunk(seededBytes(MiB, 61), MiB, { recycle: true })
    await chunks.place([b.ref])
    assert.equal(chunks.shardPool.counters.released, 1, 'acknowledged everywhere, unstaged, stored: given back')
    const c = await chunks.storeChunk(seededBytes(MiB, 62), 2 * MiB, { recycle: true })
    assert.equal(chunks.shardPool.counters.reused, 1)
    for (const blk of c.blocks) assert.ok(matches(blk.cid, blk.bytes))
    for (const { cid, bytes } of pushed.slice(0, 2)) assert.ok(matches(cid, bytes), 'the unacknowledged push still holds its bytes')
  })

  it('Staging.lend holds the lease until done(); done(false) keeps the memory for good', () => {
    const pool = new ShardPool()
    const s = new Staging(64 * MiB)
    const data = seededBytes(MiB, 70)
    const p = pool.encode(data, 4, 2)
    const { blocks } = encodeChunk(data, 0, 4, 2)
    const lease = new ShardLease(p)
    s.stage('x', blocks.map((b, j) => ({ cid: b.cid, bytes: p.shards[j] })), { lease, pooled: j => j >= 4 })
    lease.letGo()
    const l = s.lend(blocks[4].cid)!
    s.release('x')
    assert.equal(pool.counters.released, 0, 'lent: not given back while the push runs')
    assert.ok(matches(blocks[4].cid, l.bytes))
    l.done(true)
    assert.equal(pool.counters.released, 1)
    assert.throws(() => { l.done(true) }, /twice/)
    assert.equal(s.lend(blocks[4].cid), undefined, 'not staged any more')
  })

  it('without `recycle`, and for a chunk whose length is not a multiple of k, parity is fresh memory', async () => {
    const chunks = await service()
    const plain = await chunks.storeChunk(seededBytes(MiB, 40), 0)
    const odd = await chunks.storeChunk(seededBytes(MiB - 1, 41), MiB, { recycle: true })
    await chunks.place([plain.ref, odd.ref])
    assert.deepEqual(chunks.shardPool.counters, { made: 0, reused: 0, released: 0, dropped: 0 })
    for (const b of [...plain.blocks, ...odd.blocks]) assert.ok(matches(b.cid, b.bytes))
  })

  it('a failed put leaves its parity to the collector (writes of its other blocks may still run)', async () => {
    let store: Store | undefined
    const chunks = await service(undefined, s => { store = s })
    const putMany = store!.putMany.bind(store)
    store!.putMany = async () => { throw new Error('disk on fire') }
    await assert.rejects(chunks.storeChunk(seededBytes(MiB, 50), 0, { recycle: true }), /disk on fire/)
    store!.putMany = putMany
    const again = await chunks.storeChunk(seededBytes(MiB, 51), MiB, { recycle: true })
    await chunks.place([again.ref])
    assert.deepEqual(chunks.shardPool.counters, { made: 2, reused: 0, released: 1, dropped: 0 }, 'the failed one made and never released')
  })
})
