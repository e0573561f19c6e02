// Written fragments wait in memory until placed (node/data/staging.ts): placement pushes them
// without reading them back from the store, and the memory they take is bounded.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { ChunkService, Staging, Store, encodeChunk } from '../../node/data/index.ts'
import type { ChunkRef, Network } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

describe('Staging', function () {
  it('stage(chunk, blocks) keeps the bytes until release(chunk); equal fragments of two chunks are one block', () => {
    const s = new Staging(1 << 20)
    const a = encodeChunk(randomBytes(1000), 0, 2, 1)
    s.stage('a', a.blocks)
    s.stage('b', [a.blocks[0]])
    const bytes = a.blocks.reduce((n, b) => n + b.bytes.byteLength, 0)
    assert.equal(s.size(), bytes)
    for (const b of a.blocks) assert.deepEqual(s.get(b.cid), b.bytes)
    s.release('a')
    assert.deepEqual(s.get(a.blocks[0].cid), a.blocks[0].bytes, 'chunk b still names the block')
    assert.equal(s.get(a.blocks[1].cid), undefined)
    s.release('b')
    assert.equal(s.size(), 0)
  })

  it('forgets the oldest chunks past its byte bound', () => {
    const one = encodeChunk(randomBytes(4096), 0, 1, 0)
    const s = new Staging(2 * one.blocks[0].bytes.byteLength)
    const chunks = [0, 1, 2].map(i => encodeChunk(randomBytes(4096), i * 4096, 1, 0))
    chunks.forEach((c, i) => { s.stage(`c${i}`, c.blocks) })
    assert.equal(s.get(chunks[0].blocks[0].cid), undefined, 'the oldest went')
    assert.ok(s.get(chunks[1].blocks[0].cid) !== undefined)
    assert.ok(s.get(chunks[2].blocks[0].cid) !== undefined)
    assert.ok(s.size() <= 2 * one.blocks[0].bytes.byteLength)
  })

  it('never forgets a pinned chunk for room, only by release() (fails without pinning: the oldest went, pinned or not)', () => {
    const one = encodeChunk(randomBytes(4096), 0, 1, 0)
    const s = new Staging(2 * one.blocks[0].bytes.byteLength)
    const chunks = [0, 1, 2, 3].map(i => encodeChunk(randomBytes(4096), i * 4096, 1, 0))
    s.stage('c0', chunks[0].blocks, undefined, true)
    s.stage('c1', chunks[1].blocks)
    // staged unpinned first, pinned by a second stage() of the same chunk
    s.stage('c2', chunks[2].blocks)
    s.stage('c2', chunks[2].blocks, undefined, true)
    assert.ok(s.get(chunks[0].blocks[0].cid) !== undefined, 'the pinned oldest stayed')
    assert.equal(s.get(chunks[1].blocks[0].cid), undefined, 'the oldest unpinned went')
    assert.ok(s.get(chunks[2].blocks[0].cid) !== undefined)
    // two pinned chunks fill the bound: a third is staged past it, nothing pinned goes
    s.stage('c3', chunks[3].blocks)
    assert.ok(s.get(chunks[0].blocks[0].cid) !== undefined && s.get(chunks[2].blocks[0].cid) !== undefined, 'pinned chunks stay past the bound')
    assert.equal(s.get(chunks[3].blocks[0].cid), undefined, 'the unpinned one went at once')
    s.release('c0')
    assert.ok(s.get(chunks[0].blocks[0].cid) !== undefined, 'release() does not take a pinned chunk')
    s.unpin('c0')
    assert.equal(s.get(chunks[0].blocks[0].cid), undefined, 'its last unpin() forgets a pinned chunk')
    s.stage('c0', chunks[0].blocks)
    s.stage('c1', chunks[1].blocks)
    assert.equal(s.get(chunks[0].blocks[0].cid), undefined, 'staged again unpinned: forgotten for room as any other')
    s.release('c1'); s.unpin('c2')
    assert.equal(s.size(), 0)
  })

  it('equal chunks pinned by two stagers stay until both let go (review43c: the first unpin forgot them for both)', () => {
    const c = encodeChunk(randomBytes(4096), 0, 1, 0)
    const s = new Staging(1 << 20)
    s.stage('c', c.blocks, undefined, true)
    s.stage('c', c.blocks, undefined, true)
    s.release('c')
    s.unpin('c')
    assert.ok(s.get(c.blocks[0].cid) !== undefined, 'one pin left: staged')
    s.unpin('c')
    assert.equal(s.get(c.blocks[0].cid), undefined, 'the last pin gone: forgotten')
    assert.equal(s.size(), 0)
  })
})

describe('ChunkService.place(): fragments from memory', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('hands the network the staged bytes of every fragment it coded, and forgets them once placed', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const seen: Array<Map<string, Uint8Array | undefined>> = []
    const network: Network = {
      params: () => ({ k: 2, m: 1 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      place: async (refs: ChunkRef[], opts = {}) => {
        seen.push(new Map(refs.flatMap(r => r.fragments.map((f: CID) => [f.toString(), opts.staged?.(f)]))))
      }
    }
    const chunks = new ChunkService(store, { network })
    const { ref, blocks } = await chunks.storeChunk(randomBytes(100_000), 0)
    for (const b of blocks) assert.deepEqual(chunks.staged(b.cid), b.bytes)
    await chunks.place([ref])
    assert.equal(seen.length, 1)
    for (const b of blocks) assert.deepEqual(seen[0].get(b.cid.toString()), b.bytes, 'placement got the bytes from memory')
    for (const b of blocks) assert.equal(chunks.staged(b.cid), undefined, 'released after placement')
    // the k data fragments are the chunk's bytes, durable here; the parity was never written
    // here (placement stores the one this host keeps, or rebuilds it: keeper/network.ts)
    for (const b of blocks.slice(0, ref.k)) assert.deepEqual(new Uint8Array(await store.get(b.cid)), new Uint8Array(b.bytes), 'the data fragments stay in the store')
    for (const b of blocks.slice(ref.k)) assert.equal(await store.has(b.cid), false, 'no parity fragment was written here')
  })

  it('writes the k data fragments of a chunk alone to the store, the parity only to memory (fails on the old code: every fragment was written)', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const network: Network = {
      params: () => ({ k: 4, m: 2 }),
      fetch: async () => new Map(),
      fetchOne: async cid => { throw new Error(`not here: ${cid.toString()}`) },
      place: async () => {}
    }
    const chunks = new ChunkService(store, { network })
    const bytes = randomBytes(1 << 20)
    const before = store.counters().added
    const { ref, blocks } = await chunks.storeChunk(bytes, 0)
    assert.equal(ref.k, 4)
    assert.equal(store.counters().added - before, bytes.byteLength, 'the chunk\'s bytes once: its four data fragments')
    for (const b of blocks.slice(4)) {
      assert.equal(await store.has(b.cid), false)
      assert.ok(chunks.staged(b.cid) !== undefined, 'the parity is staged for its placement')
    }
    // read back from the store alone (cache and staging dropped): the data fragments are the chunk
    chunks.dropCache()
    await chunks.place([ref])
    assert.deepEqual(new Uint8Array(await chunks.readChunk(ref)), new Uint8Array(bytes))
  })

  it('a host alone (no network) stages nothing', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const chunks = new ChunkService(store)
    const { blocks } = await chunks.storeChunk(randomBytes(10_000), 0)
    assert.equal(chunks.staged(blocks[0].cid), undefined)
  })
})
