// ChunkWrite.placed({ safe: true }) (an fsync's wait, DESIGN.md §5: until one lost host loses
// nothing) waited for chunk()'s chunks alone: a placeStored() chunk (an open file's packed
// patches, which a pipelined commit's version points into) was not among them, so the fsync
// returned while that chunk was on the writer alone (review34a). Against a network that takes
// nothing: no chunk ever survives a lost host, so placed({ safe }) never settles while it waits.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { ChunkService, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

describe('ChunkWrite.placed({ safe }) waits for placeStored() chunks as for chunk()\'s', function () {
  this.timeout(30_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  async function service (): Promise<{ chunks: ChunkService, placing: string[], safeAsked: string[] }> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const placing: string[] = []
    const safeAsked: string[] = []
    const never = new Promise<void>(() => {})
    const network: Network = {
      params: () => ({ k: 2, m: 1 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      place: async (refs: ChunkRef[]) => { for (const r of refs) if (r.cid !== null) placing.push(r.cid.toString()); await never },
      safe: async (ref: ChunkRef) => { safeAsked.push(ref.cid!.toString()); await never },
      abandon: async () => {}
    }
    return { chunks: new ChunkService(store, { network }), placing, safeAsked }
  }

  /** Whether `p` has settled a few turns after `asked` holds (the placement's wait began). */
  async function settlesAfter (p: Promise<void>, asked: () => boolean): Promise<boolean> {
    let done = false
    p.then(() => { done = true }, () => { done = true })
    await until('the placement under way', asked)
    for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
    return done
  }

  it('a chunk() of the write is waited for (control)', async () => {
    const { chunks, safeAsked } = await service()
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(200_000), 0)
    await w.durable()
    w.committed()
    assert.equal(await settlesAfter(w.placed({ safe: true }), () => safeAsked.includes(ref.cid!.toString())), false)
  })

  it('a placeStored() chunk is waited for too', async () => {
    const { chunks, placing, safeAsked } = await service()
    const ref = (await chunks.storeChunk(randomBytes(200_000), 0)).ref
    const w = chunks.write()
    await w.placeStored(ref)
    w.committed()
    // (the wait is told by its outcome alone: before, placed({ safe }) asked nothing of the chunk)
    assert.equal(await settlesAfter(w.placed({ safe: true }), () => placing.includes(ref.cid!.toString())), false, 'placed({ safe }) returned with the packed chunk unplaced')
    assert.ok(safeAsked.includes(ref.cid!.toString()), 'its safety was asked about')
  })
})
