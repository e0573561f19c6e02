// A write's chunks wait in memory while they are placed (node/data/blocks.ts HeldChunk, issue 15:
// on six hosts the writer stored and fsynced the data fragments of every chunk, and deleted
// five of six after the handover). A chunk whose targets all acknowledged it before durability
// is asked for is never stored here; one still being placed when durable() is called is stored
// (synced) before it returns, and handed over once placed; one left short by its placement is
// stored as soon as that is known. A real store and chunk service; the network is a stand-in
// whose placements end when the test says.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { ChunkService, Store } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

const MiB = 1 << 20

/** A network of k = 4, m = 2 whose placements end on release(): `away` says which chunks every target then holds. */
function gatedNetwork (): { network: Network, calls: ChunkRef[], away: Set<string>, release: () => void, started: () => Promise<void> } {
  const calls: ChunkRef[] = []
  const away = new Set<string>()
  let gate = Promise.withResolvers<void>()
  let begun = Promise.withResolvers<void>()
  const network: Network = {
    params: () => ({ k: 4, m: 2 }),
    fetch: async () => new Map(),
    fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
    place: async (refs: ChunkRef[]) => {
      calls.push(...refs)
      begun.resolve()
      await gate.promise
    },
    placedAway: ref => away.has(ref.cid!.toString())
  }
  return {
    network,
    calls,
    away,
    release: () => { gate.resolve(); gate = Promise.withResolvers<void>() },
    started: async () => { await begun.promise; begun = Promise.withResolvers<void>() }
  }
}

async function has (store: Store, ref: ChunkRef): Promise<boolean[]> {
  return await Promise.all(ref.fragments.map(async f => await store.has(f)))
}

describe('ChunkWrite: chunks held in memory while placed', function () {
  this.timeout(60_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  async function setup (heldBytes?: number): Promise<{ dir: string, store: Store, chunks: ChunkService, net: ReturnType<typeof gatedNetwork> }> {
    const dir = join(await tempDir(t, 'darkfs-held-'), 'store')
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    const net = gatedNetwork()
    const chunks = new ChunkService(store, { network: net.network, ...(heldBytes !== undefined ? { heldBytes } : {}) })
    return { dir, store, chunks, net }
  }

  it('a chunk every target acknowledged before durable() is never written here, and leaves memory (fails on the old code: its data fragments were stored and fsynced)', async () => {
    const { store, chunks, net } = await setup()
    const bytes = randomBytes(MiB)
    const write = chunks.write()
    const ref = await write.chunk(bytes, 0)
    assert.equal(ref.k, 4)
    await net.started()
    // held: on no disk, served from memory (the cache dropped: a read goes to the staging)
    assert.deepEqual(await has(store, ref), ref.fragments.map(() => false), 'nothing of it is on disk while it is placed')
    chunks.dropCache()
    assert.deepEqual(new Uint8Array(await chunks.readChunk(ref)), new Uint8Array(bytes), 'the chunk reads back from memory')
    net.away.add(ref.cid!.toString())
    net.release()
    await write.placed()
    await write.durable()
    assert.equal(store.counters().added, 0, 'no byte of the chunk was written here')
    assert.deepEqual(await has(store, ref), ref.fragments.map(() => false))
    for (const f of ref.fragments) assert.equal(chunks.staged(f), undefined, 'its memory is let go')
    assert.equal(net.calls.length, 1, 'placed once')
    assert.deepEqual(chunks.heldCounters, { held: 1, persisted: 0 })
  })

  it('a chunk still being placed when durable() is called is stored here before it returns (a store opened afresh on the same directory, as after a crash, has it), then placed again for its handover', async () => {
    const { dir, store, chunks, net } = await setup()
    const bytes = randomBytes(MiB)
    const write = chunks.write()
    const ref = await write.chunk(bytes, 0)
    await net.started()
    await write.durable()
    assert.deepEqual((await has(store, ref)).slice(0, ref.k), [true, true, true, true], 'its data fragments are on disk once durable() returns')
    assert.deepEqual((await has(store, ref)).slice(ref.k), [false, false], 'its parity is not (placement stores what this host keeps)')
    assert.equal(store.counters().added, bytes.byteLength)
    // another store on the same directory, the first never closed: what a restart after a crash finds
    const again = await Store.open(dir)
    t.add(async () => { await again.close() })
    const alone = new ChunkService(again)
    assert.deepEqual(new Uint8Array(await alone.readChunk(ref)), new Uint8Array(bytes), 'the chunk reads back from the disk alone')
    // its placement ends with every target holding it: placed once more (its copies here are handed over)
    net.away.add(ref.cid!.toString())
    net.release()
    await net.started()
    assert.equal(net.calls.length, 2)
    assert.equal(net.calls[1], ref)
    net.release()
    await write.placed()
    for (const f of ref.fragments) assert.equal(chunks.staged(f), undefined, 'its memory is let go')
    assert.deepEqual(chunks.heldCounters, { held: 1, persisted: 1 })
  })

  it('a chunk its placement left short is stored here as soon as that is known; durable() then writes nothing more', async () => {
    const { store, chunks, net } = await setup()
    const bytes = randomBytes(MiB)
    const write = chunks.write()
    const ref = await write.chunk(bytes, 0)
    await net.started()
    assert.equal(store.counters().added, 0)
    // not away: a target did not acknowledge (left pending)
    net.release()
    await write.placed()
    assert.deepEqual((await has(store, ref)).slice(0, ref.k), [true, true, true, true], 'its data fragments are on disk')
    assert.equal(net.calls.length, 1, 'not placed again here (the network retries its pending chunks)')
    await write.durable()
    assert.equal(store.counters().added, bytes.byteLength, 'stored once')
    chunks.dropCache()
    assert.deepEqual(new Uint8Array(await chunks.readChunk(ref)), new Uint8Array(bytes))
  })

  it('a write given up while its chunk is held stores nothing and lets the memory go', async () => {
    const { store, chunks, net } = await setup()
    const write = chunks.write()
    const ref = await write.chunk(randomBytes(MiB), 0)
    await net.started()
    const abandoning = write.abandon()
    net.release()
    await abandoning
    assert.equal(store.counters().added, 0)
    for (const f of ref.fragments) assert.equal(chunks.staged(f), undefined)
  })

  it('past the held bound a chunk is stored at once, as before', async () => {
    const { store, chunks, net } = await setup(MiB)
    const bytes = randomBytes(MiB)
    const write = chunks.write()
    const ref = await write.chunk(bytes, 0)
    await write.durable()
    assert.equal(store.counters().added, bytes.byteLength)
    assert.deepEqual((await has(store, ref)).slice(0, ref.k), [true, true, true, true])
    assert.deepEqual(chunks.heldCounters, { held: 0, persisted: 0 })
    net.away.add(ref.cid!.toString())
    net.release()
    await write.placed()
  })
})
