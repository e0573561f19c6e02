// A ChunkWrite's deferred chunk (ChunkWrite.chunk `deferred`: an open file's early chunk,
// early-chunks.ts; issue 15 item 4) is not stored here first: its placement starts at once, from
// memory. It is durable (durable() resolves, so a commit may name it) only once that placement
// placed it (Network.placedNow), or, when it did not, once its data fragments are stored here.
// Against a network whose placements the test ends, and says placed or not.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { ChunkService, Staging, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { FsError } from '../../node/errors.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

/** Past REPLICATE_MAX_BYTES: erasure-coded with the network's k = 2, m = 1. */
const SIZE = 200_000

interface Placement { refs: ChunkRef[], over: PromiseWithResolvers<void> }

/**
 * A network (k=2, m=1) whose placements last until the test ends them (each in `placements`),
 * a chunk placed once its CID is in `placed`; `more` adds or replaces members.
 */
function heldNetwork (placements: Placement[], placed: Set<string>, more: Partial<Network> = {}): Network {
  return {
    params: () => ({ k: 2, m: 1 }),
    fetch: async () => new Map(),
    fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
    place: async refs => {
      const p: Placement = { refs, over: Promise.withResolvers<void>() }
      placements.push(p)
      await p.over.promise
    },
    placedNow: ref => placed.has(ref.cid!.toString()),
    ...more
  }
}

/** Whether each fragment of `ref` is in `store`. */
const onDisk = async (store: Store, ref: ChunkRef): Promise<boolean[]> => await Promise.all(ref.fragments.map(async f => await store.has(f)))

describe('ChunkWrite: a deferred chunk is placed before it is stored here, and stored here only when not placed', function () {
  this.timeout(30_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  async function service (): Promise<{ chunks: ChunkService, store: Store, placements: Placement[], placed: Set<string> }> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const placements: Placement[] = []
    const placed = new Set<string>()
    const network = heldNetwork(placements, placed)
    return { chunks: new ChunkService(store, { network }), store, placements, placed }
  }

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

// review43a: a deferred chunk is on no disk here while it is placed, its bytes in the staging and
// the cache alone; an fsync waits for it
describe('ChunkWrite: a deferred chunk\'s bytes, its durable() and its release (review43a)', function () {
  this.timeout(30_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  interface Held extends Placement { staged: Array<Uint8Array | undefined> }

  /**
   * A service over a network whose placements the test ends (never placed), recording the bytes
   * of each chunk's fragments its placement found staged once the test ended it; `holdPuts`:
   * the store's putMany waits for `puts[i].go` (each put recorded with its blocks' CIDs).
   */
  async function service (init: { staging?: Staging, deferredPlaceWaitMs?: number, holdPuts?: boolean } = {}): Promise<{ chunks: ChunkService, store: Store, placements: Held[], puts: Array<{ cids: string[], go: PromiseWithResolvers<void> }> }> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const placements: Held[] = []
    const puts: Array<{ cids: string[], go: PromiseWithResolvers<void> }> = []
    const putMany = store.putMany.bind(store)
    store.putMany = async (blocks, opts) => {
      const put = { cids: blocks.map(b => b.cid.toString()), go: Promise.withResolvers<void>() }
      puts.push(put)
      if (init.holdPuts === true) await put.go.promise
      await putMany(blocks, opts)
    }
    const network: Network = {
      params: () => ({ k: 2, m: 1 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      place: async (refs, opts) => {
        const p: Held = { refs, over: Promise.withResolvers<void>(), staged: [] }
        placements.push(p)
        await p.over.promise
        // what keeper/network.ts placeOne pushes first: the staged bytes (else the store's)
        p.staged = refs[0].fragments.map(f => opts?.staged?.(f))
      },
      placedNow: () => false
    }
    const chunks = new ChunkService(store, { network, staging: init.staging, deferredPlaceWaitMs: init.deferredPlaceWaitMs ?? 10 * 60_000 })
    return { chunks, store, placements, puts }
  }

  const storedOf = (puts: Array<{ cids: string[] }>, ref: ChunkRef): string[] => {
    const mine = new Set(ref.fragments.map(f => f.toString()))
    return puts.flatMap(p => p.cids).filter(c => mine.has(c))
  }

  it('other writes staging past the bound do not push a deferred chunk out while it is placed: it reads back, its placement finds its fragments (fails without pinning: evicted, the read fails unavailable)', async () => {
    // a chunk's fragments (k = 2, m = 1) are 300,000 bytes: two fit, a third is past the bound
    const { chunks, placements } = await service({ staging: new Staging(700_000) })
    const a = chunks.write()
    const bytes = randomBytes(SIZE)
    const ref = await a.chunk(bytes, 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    const b = chunks.write()
    const c = chunks.write()
    await b.chunk(randomBytes(SIZE), 0, { deferred: true })
    await c.chunk(randomBytes(SIZE), 0)
    await until('the other placements started', () => placements.length === 3)
    chunks.dropCache()
    assert.ok(Buffer.from(await chunks.readChunk(ref)).equals(bytes), 'the deferred chunk reads back while placed')
    for (const p of placements) p.over.resolve()
    await a.durable(); await b.durable(); await c.durable()
    assert.deepEqual(placements[0].staged.map(x => x?.byteLength), [100_000, 100_000, 100_000], 'its placement found every fragment staged')
    a.committed(); b.committed(); c.committed()
  })

  it('deferred chunks under way are bounded, every write\'s together: past the bound a chunk is stored here first, and deferred again once room is made (fails without: deferred, on no disk here)', async () => {
    // default bound: half of the staging's, one chunk's fragments (300,000 bytes) and not two
    const { chunks, store, placements } = await service({ staging: new Staging(700_000) })
    const a = chunks.write()
    const first = await a.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    assert.deepEqual(await onDisk(store, first), [false, false, false], 'the first deferred')
    const b = chunks.write()
    const second = await b.chunk(randomBytes(SIZE), 0, { deferred: true })
    // a chunk stored here first is placed only once its put is over
    await until('the second placement started', () => placements.length === 2)
    assert.deepEqual(await onDisk(store, second), [true, true, false], 'the second stored here before its placement, as a chunk not deferred')
    placements[0].over.resolve()
    placements[1].over.resolve()
    await a.durable(); await b.durable()
    const c = chunks.write()
    const third = await c.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('the third placement started', () => placements.length === 3)
    assert.deepEqual(await onDisk(store, third), [false, false, false], 'deferred again: the first one\'s bytes left the bound')
    placements[2].over.resolve()
    await c.durable()
    a.committed(); b.committed(); c.committed()
  })

  it('durable() waits for a placement that does not end at most deferredPlaceWaitMs, then its data fragments are stored here (fails without: durable() waits for the whole placement)', async function () {
    const { chunks, store, placements } = await service({ deferredPlaceWaitMs: 1 })
    const w = chunks.write()
    const bytes = randomBytes(SIZE)
    const ref = await w.chunk(bytes, 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    // the placement is held: only the bound ends this wait (else the test's timeout fails it)
    await w.durable()
    assert.deepEqual(await onDisk(store, ref), [true, true, false], 'its data fragments are here while its placement goes on')
    placements[0].over.resolve()
    await until('the placement over', () => placements[0].staged.length === 3)
    assert.deepEqual(placements[0].staged.map(x => x?.byteLength), [100_000, 100_000, 100_000], 'the placement still pushed from the staging')
    w.committed()
    chunks.dropCache()
    assert.ok(Buffer.from(await chunks.readChunk(ref)).equals(bytes))
  })

  it('released while its placement runs: nothing of it is stored here once the placement ends unplaced (fails without the release check in storeUnplaced)', async () => {
    const { chunks, store, placements, puts } = await service()
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    const keep = await w.chunk(randomBytes(SIZE), SIZE, { deferred: false })
    await until('its placement started', () => placements.length >= 1)
    w.release(ref)
    placements[0].over.resolve()
    await until('the other placement started', () => placements.length === 2)
    placements[1].over.resolve()
    await w.durable()
    assert.deepEqual(storedOf(puts, ref), [], 'no put of the released chunk\'s fragments')
    assert.deepEqual(await onDisk(store, ref), [false, false, false])
    assert.deepEqual(await onDisk(store, keep), [true, true, false])
    w.committed()
  })

  it('released while storeUnplaced stores it: the release deletes its fragments once stored (fails without waiting for that store: left on disk)', async () => {
    const { chunks, store, placements, puts } = await service({ holdPuts: true })
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    placements[0].over.resolve()
    await until('its data fragments are being stored here', () => storedOf(puts, ref).length === 2)
    w.release(ref)
    const gone = w.abandon()
    for (const p of puts) p.go.resolve()
    await gone
    assert.deepEqual(await onDisk(store, ref), [false, false, false], 'nothing of the released chunk is left here')
  })
  it('equal deferred chunks of two writes: the first placement over leaves the second\'s fragments staged, and it reads back (review43c: one pin for both, let go by the first)', async () => {
    const { chunks, placements } = await service({ staging: new Staging(2_000_000) })
    const bytes = randomBytes(SIZE)
    const a = chunks.write()
    const b = chunks.write()
    await a.chunk(bytes, 0, { deferred: true })
    const refB = await b.chunk(bytes, 0, { deferred: true })
    await until('both placements started', () => placements.length === 2)
    placements[0].over.resolve()
    await a.durable()
    chunks.dropCache()
    let read = 'read back'
    try { await chunks.readChunk(refB) } catch (err) { read = (err as Error).message }
    placements[1].over.resolve()
    await b.durable()
    a.committed(); b.committed()
    assert.equal(read, 'read back', 'the second deferred chunk reads back while placed')
    assert.deepEqual(placements[1].staged.map(x => x?.byteLength), [100_000, 100_000, 100_000], 'the second placement found its fragments staged')
  })

  it('two equal deferred chunks of one write (zero-filled): the second placement finds its fragments staged', async () => {
    const { chunks, placements } = await service({ staging: new Staging(2_000_000) })
    const w = chunks.write()
    await w.chunk(new Uint8Array(SIZE), 0, { deferred: true })
    await w.chunk(new Uint8Array(SIZE), SIZE, { deferred: true })
    await until('both placements started', () => placements.length === 2)
    placements[0].over.resolve()
    await until('the first placement over', () => placements[0].staged.length === 3)
    placements[1].over.resolve()
    await w.durable()
    w.committed()
    assert.deepEqual(placements[1].staged.map(x => x?.byteLength), [100_000, 100_000, 100_000], 'the second placement found its fragments staged')
  })

  it('an equal deferred chunk of a write abandoned meanwhile: the other write\'s chunk, still placed, reads back', async () => {
    const { chunks, placements } = await service({ staging: new Staging(2_000_000) })
    const bytes = randomBytes(SIZE)
    const a = chunks.write()
    const b = chunks.write()
    await a.chunk(bytes, 0, { deferred: true })
    const refB = await b.chunk(bytes, 0, { deferred: true })
    await until('both placements started', () => placements.length === 2)
    const gone = a.abandon()
    placements[0].over.resolve()
    await gone
    chunks.dropCache()
    let read = 'read back'
    try { await chunks.readChunk(refB) } catch (err) { read = (err as Error).message }
    placements[1].over.resolve()
    await b.durable()
    b.committed()
    assert.equal(read, 'read back', 'the deferred chunk of b reads back while placed')
  })
})

// pend44: a deferred chunk whose placement outlived the wait (ChunkService.deferredPlaceWaitMs) has
// its data fragments stored here late, while the placement goes on. Once that placement placed
// it, the write hands them over (Network.handOverLate: the placement's own end found none of them
// here); a late store that fails (a full disk) falls back to the placement, and fails the write
// plainly only when that did not place the chunk either.
describe('ChunkWrite: a deferred chunk stored here late, then placed (pend44)', function () {
  this.timeout(30_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  /**
   * `full`: the late store fails (ENOSPC), with `'part'` after storing its first block; `safe`:
   * the network's Network.safe (the chunk survives one lost host when it resolves).
   */
  async function service (init: { full?: boolean | 'part', safe?: Network['safe'] } = {}): Promise<{ chunks: ChunkService, store: Store, placements: Placement[], placed: Set<string>, late: ChunkRef[], failedPuts: () => number }> {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    let failed = 0
    const putMany = store.putMany.bind(store)
    if (init.full !== undefined && init.full !== false) {
      const part = init.full === 'part'
      store.putMany = async (blocks, opts) => {
        failed++
        if (part) await putMany(blocks.slice(0, 1), opts)
        throw new FsError('ENOSPC', 'put', undefined, 'the block store is full (test)')
      }
    }
    const placements: Placement[] = []
    const placed = new Set<string>()
    const late: ChunkRef[] = []
    const network = heldNetwork(placements, placed, { handOverLate: async ref => { late.push(ref) }, ...(init.safe === undefined ? {} : { safe: init.safe }) })
    // the placement outlives the wait at once
    return { chunks: new ChunkService(store, { network, deferredPlaceWaitMs: 1 }), store, placements, placed, late, failedPuts: () => failed }
  }

  it('placed after its data fragments were stored here: the write has the network hand them over (fails before: never asked, left to repair)', async () => {
    const { chunks, store, placements, placed, late } = await service()
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    await w.durable()
    assert.deepEqual(await onDisk(store, ref), [true, true, false], 'stored here late')
    assert.deepEqual(late, [], 'nothing handed over while it is being placed')
    placed.add(ref.cid!.toString())
    placements[0].over.resolve()
    await until('its late copies handed over', () => late.length === 1)
    assert.equal(late[0], ref)
    w.committed()
  })

  it('its late store fails (a full disk) and its placement places it: durable() resolves, the chunk on its holders (fails before: durable() threw ENOSPC with the chunk placed)', async () => {
    const { chunks, store, placements, placed, failedPuts } = await service({ full: true })
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    let settled: string | undefined
    const durable = w.durable().then(() => { settled = 'durable' }, (err: Error) => { settled = err.message })
    await until('its late store failed', () => failedPuts() === 1)
    placed.add(ref.cid!.toString())
    placements[0].over.resolve()
    await durable
    assert.equal(settled, 'durable')
    assert.deepEqual(await onDisk(store, ref), [false, false, false])
    w.committed()
  })

  it('its late store fails (a full disk) and its placement does not place it: durable() throws ENOSPC naming the chunk, once the placement is over', async () => {
    const { chunks, placements, failedPuts } = await service({ full: true })
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    let over = false
    const durable = w.durable().then(() => 'durable' as unknown, (err: unknown) => err).finally(() => { over = true })
    await until('its late store failed', () => failedPuts() === 1)
    assert.equal(over, false, 'durable() waits for the placement still under way')
    placements[0].over.resolve()
    const settled = await durable
    assert.ok(settled instanceof FsError, `durable(): ${String(settled)}`)
    assert.equal(settled.code, 'ENOSPC')
    assert.match(settled.message, new RegExp(`${ref.cid!.toString()} was neither placed nor stored here`))
    await w.abandon()
  })

  it('its late store fails part way (a disk full after one block) and its placement places it: what was stored here is handed over (fails before: never asked, kept until repair; review44a)', async () => {
    const { chunks, store, placements, placed, late, failedPuts } = await service({ full: 'part' })
    const w = chunks.write()
    const ref = await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    const durable = w.durable()
    await until('its late store failed', () => failedPuts() === 1)
    placed.add(ref.cid!.toString())
    placements[0].over.resolve()
    await durable
    assert.deepEqual(await onDisk(store, ref), [true, false, false], 'one block stored here before the disk was full')
    await until('the part stored here handed over', () => late.length === 1)
    assert.equal(late[0], ref)
    w.committed()
  })

  it('its late store fails (a full disk), and the chunk is safe on its holders (Network.safe) while its placement goes on: durable() resolves then, not at the placement\'s end (fails before: it waited for the whole placement, up to its 60 s bound; review44a)', async () => {
    const safe = Promise.withResolvers<void>()
    const { chunks, placements, failedPuts } = await service({ full: true, safe: async (_ref, opts) => { await Promise.race([safe.promise, new Promise<void>(resolve => opts?.signal?.addEventListener('abort', () => { resolve() }))]) } })
    const w = chunks.write()
    await w.chunk(randomBytes(SIZE), 0, { deferred: true })
    await until('its placement started', () => placements.length === 1)
    let settled: unknown
    const durable = w.durable().then(() => { settled = 'durable' }, (err: unknown) => { settled = err })
    await until('its late store failed', () => failedPuts() === 1)
    // not safe yet: still waiting
    for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
    assert.equal(settled, undefined, 'durable() waits while the chunk is neither safe nor placed')
    safe.resolve()
    await until('durable() over, the chunk safe', () => settled !== undefined)
    await durable
    assert.equal(settled, 'durable')
    // the placement goes on (its retries and repair make it whole); the write commits
    w.committed()
    placements[0].over.resolve()
  })
})
