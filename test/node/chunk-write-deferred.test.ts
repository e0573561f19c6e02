// A ChunkWrite's deferred chunk (ChunkWrite.chunk `deferred`: an open file's early chunk,
// early-chunks.ts; issue 15 item 4) is not stored here first: its placement starts at once, from
// memory. It is durable (durable() resolves, so a commit may name it) only once that placement
// placed it (Network.placedNow), or, when it did not, once its data fragments are stored here.
// Against a network whose placements the test ends, and says placed or not.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { ChunkService, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

/** Past REPLICATE_MAX_BYTES: erasure-coded with the network's k = 2, m = 1. */
const SIZE = 200_000

interface Placement { refs: ChunkRef[], over: PromiseWithResolvers<void> }

describe('ChunkWrite: a deferred chunk is placed before it is stored here, and stored here only when not placed', function () {
  this.timeout(30_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  async function service (): Promise<{ chunks: ChunkService, store: Store, placements: Placement[], placed: Set<string> }> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const placements: Placement[] = []
    const placed = new Set<string>()
    const network: Network = {
      params: () => ({ k: 2, m: 1 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      // a placement lasts until the test ends it
      place: async refs => {
        const p: Placement = { refs, over: Promise.withResolvers<void>() }
        placements.push(p)
        await p.over.promise
      },
      placedNow: ref => placed.has(ref.cid!.toString())
    }
    return { chunks: new ChunkService(store, { network }), store, placements, placed }
  }

  const onDisk = async (store: Store, ref: ChunkRef): Promise<boolean[]> => await Promise.all(ref.fragments.map(async f => await store.has(f)))

  it('placed: nothing of it is stored here, and durable() waits for the placement (fails on the old code: its data fragments stored here)', async () => {
    const { chunks, store, placements, placed } = await service()
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    assert.equal(ref.k, 2)
    await until('its placement started', () => placements.length === 1)
    let durable = false
    const waiting = w.durable().then(() => { durable = true })
    // (the placement is not over: nothing can make the chunk durable; the turn lets what already could resolve)
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(durable, false, 'durable() waits for the placement of a chunk not stored here')
    placed.add(ref.cid!.toString())
    placements[0].over.resolve()
    await waiting
    assert.deepEqual(await onDisk(store, ref), [false, false, false], 'no fragment of the placed chunk was stored here by the write')
    w.committed()
  })

  it('read while its placement is under way and out of the cache: from its staged fragments (fails without: on no disk here, and no holder has it yet)', async () => {
    const { chunks, placements, placed } = await service()
    const w = chunks.write()
    const bytes = randomBytes(SIZE)
    const ref = await w.chunk(bytes, 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    chunks.dropCache()
    assert.ok(Buffer.from(await chunks.readChunk(ref)).equals(bytes), 'the chunk reads back')
    placed.add(ref.cid!.toString())
    placements[0].over.resolve()
    await w.durable()
    w.committed()
  })

  it('not placed (offline, a target away): its data fragments are stored here before durable() resolves', async () => {
    const { chunks, store, placements } = await service()
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    assert.deepEqual(await onDisk(store, ref), [false, false, false], 'nothing stored while it is being placed')
    placements[0].over.resolve()
    await w.durable()
    assert.deepEqual(await onDisk(store, ref), [true, true, false], 'its data fragments are here (the chunk\'s bytes), its parity is not')
    chunks.dropCache()
    assert.equal((await chunks.readChunk(ref)).byteLength, SIZE, 'it reads back from here')
    w.committed()
  })

  it('given up before its placement is over: nothing stored here', async () => {
    const { chunks, store, placements } = await service()
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    const gone = w.abandon()
    placements[0].over.resolve()
    await gone
    assert.deepEqual(await onDisk(store, ref), [false, false, false])
  })

  it('a chunk not deferred is stored here first, as before', async () => {
    const { chunks, store, placements } = await service()
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0)
    await w.durable()
    assert.deepEqual(await onDisk(store, ref), [true, true, false])
    await until('its placement started', () => placements.length === 1)
    placements[0].over.resolve()
    w.committed()
  })
})
