// Small reads of chunks stored here read their page, not the chunk (node/data/leaves.ts): every
// slice is checked against the fragment's leaf hashes, a corrupt disk is caught (never served),
// and a holder's proof for a peer verifies against the manifest's root.
import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkService, LEAF_BYTES, LocalLeaves, Store, leafHashes, merkleRoot, rememberingLeaves, verifyRange } from '../../node/data/index.ts'
import { until } from '../../harness/cluster.ts'
import { cidOf } from '../../node/data/store.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { prng, seededBytes } from '../../harness/prng.ts'

/** The file of the store under `dir` that holds exactly `bytes`. */
async function fileHolding (dir: string, bytes: Uint8Array): Promise<string> {
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue
    const path = join(e.parentPath, e.name)
    const got = await readFile(path)
    if (got.byteLength === bytes.byteLength && Buffer.compare(got, bytes) === 0) return path
  }
  throw new Error('no block file holds those bytes')
}

describe('local range reads (LocalLeaves)', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  async function service (params: { k: number, m: number }): Promise<{ store: Store, chunks: ChunkService, dir: string }> {
    const dir = join(await tempDir(t), 'store')
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    return { store, dir, chunks: new ChunkService(store, { localParams: params, cacheBytes: 0 }) }
  }

  it('rememberAll (leaves hashed off the event loop) keeps the same roots and leaf hashes as remember, for fragments of every shape', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const sizes = [0, 1, LEAF_BYTES - 1, LEAF_BYTES, LEAF_BYTES + 1, 256 * 1024, 256 * 1024 + 7]
    const blocks = sizes.map((n, i) => { const bytes = seededBytes(n, 40 + i); return { cid: cidOf(bytes), bytes } })
    const off = new LocalLeaves(store)
    const on = new LocalLeaves(store)
    const roots = await off.rememberAll(blocks)
    blocks.forEach((b, i) => {
      assert.deepEqual(Buffer.from(roots[i]), Buffer.from(merkleRoot(b.bytes)), `root of ${sizes[i]} bytes`)
      assert.deepEqual(Buffer.from(on.remember(b.cid, b.bytes)), Buffer.from(roots[i]))
    })
    // the kept hashes are the leaves': a proof built from them verifies against the root
    const big = blocks[blocks.length - 1]
    for (const [first, end] of [[0, 1], [3, 5], [16, 17]]) {
      await store.put(big.cid, big.bytes)
      const got = await off.proof(big.cid, first, end)
      assert.ok(got !== undefined && verifyRange(roots[roots.length - 1], big.bytes.byteLength, first, end, got.bytes, got.proof), `leaves [${first}, ${end})`)
    }
    assert.equal(leafHashes(big.bytes).byteLength, 17 * 32)
  })

  for (const params of [{ k: 1, m: 0 }, { k: 4, m: 2 }]) {
    it(`reads pages of a chunk it wrote (k=${params.k}, m=${params.m}) from the disk alone, each byte right`, async () => {
      const { chunks } = await service(params)
      const bytes = seededBytes(1 << 20, 3)
      const { ref } = await chunks.storeChunk(bytes, 0)
      chunks.dropCache()
      assert.ok(ref.roots !== undefined)
      const rnd = prng(5)
      // cold: the first read of each fragment reads it whole once (and keeps its leaf hashes)
      for (let i = 0; i < 200; i++) {
        const start = Math.floor(rnd() * (ref.size - 4096))
        const got = await chunks.readRange(ref, start, start + 4096)
        assert.deepEqual(new Uint8Array(got), bytes.subarray(start, start + 4096), `bytes at ${start}`)
      }
      const c = chunks.localLeaves.counters
      assert.ok(c.wholeReads <= params.k, `at most one whole read per data fragment (${c.wholeReads})`)
      assert.ok(c.slices >= 200 - params.k, `the other reads were slices (${c.slices})`)
      assert.equal(c.mismatches, 0)
      assert.equal(chunks.readCounters().rangeFallbacks, 0)
    })
  }

  it('a store wrapped by rememberingLeaves keeps the leaf hashes of what put() and putMany() stored (repair\'s copies), and serves it by slices', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const leaves = new LocalLeaves(store)
    const wrapped = rememberingLeaves(store, leaves)
    const blocks = [0, 1, 2].map(i => { const bytes = seededBytes(256 * 1024, 70 + i); return { cid: cidOf(bytes), bytes } })
    await wrapped.putMany(blocks.slice(0, 2), { verified: true })
    await wrapped.put(blocks[2].cid, blocks[2].bytes)
    for (const { cid } of blocks) await until(`the leaf hashes of ${cid.toString()} kept`, () => leaves.keeps(cid), 10_000)
    // the wrapper is the store otherwise
    assert.equal(await wrapped.has(blocks[0].cid), true)
    const before = { ...leaves.counters }
    const got = await leaves.slice(blocks[1].cid, 3, 5)
    assert.ok(got !== undefined)
    assert.equal(leaves.counters.wholeReads - before.wholeReads, 0, 'read by a slice, not whole')
  })

  it('check() (a pushed block\'s CID and leaves in one job) refuses corrupt, cut or misnamed bytes, and its leaves are kept by the put that follows', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const leaves = new LocalLeaves(store)
    const wrapped = rememberingLeaves(store, leaves)
    // 1,000 bytes: hashed on the calling thread; the others in one addon job with their leaves
    for (const [i, size] of [1000, 64 * 1024, 256 * 1024, 256 * 1024 + 7].entries()) {
      const bytes = seededBytes(size, 90 + i)
      const cid = cidOf(bytes)
      for (const at of [0, size >> 1, size - 1]) {
        const corrupt = Uint8Array.from(bytes)
        corrupt[at] ^= 0x10
        assert.equal(await leaves.check(cid, corrupt), false, `${size} bytes, byte ${at} flipped`)
      }
      assert.equal(await leaves.check(cid, bytes.slice(0, size - 1)), false, `${size} bytes, cut short`)
      assert.equal(await leaves.check(cidOf(seededBytes(size, 190 + i)), bytes), false, `${size} bytes, another block's CID`)
      assert.equal(leaves.keeps(cid), false, 'nothing kept for bytes refused')
      assert.equal(await leaves.check(cid, bytes), true, `${size} bytes, sound`)
      await wrapped.put(cid, bytes, { verified: true })
      if (size <= LEAF_BYTES) continue
      await until(`the leaf hashes of ${cid.toString()} kept`, () => leaves.keeps(cid), 10_000)
      // the kept hashes are the right ones: a proof from them verifies against the root of the bytes
      const got = await leaves.proof(cid, 1, 3)
      assert.ok(got !== undefined && verifyRange(merkleRoot(bytes), size, 1, 3, got.bytes, got.proof), `${size} bytes: leaves [1, 3) prove`)
    }
  })

  it('length(): a fragment whose leaf hashes are kept is read whole at that length (a holder serving it), and a corrupt one is still refused', async () => {
    const dir = join(await tempDir(t), 'store')
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    const leaves = new LocalLeaves(store)
    const wrapped = rememberingLeaves(store, leaves)
    const sizes = [1, LEAF_BYTES, 256 * 1024 + 7]
    const blocks = sizes.map((n, i) => { const bytes = seededBytes(n, 90 + i); return { cid: cidOf(bytes), bytes } })
    const unknown = seededBytes(1000, 99)
    await wrapped.putMany(blocks, { verified: true })
    await store.put(cidOf(unknown), unknown)
    // a block of one leaf is not hashed when stored (its slice is the whole block): no length
    await until('the leaf hashes of the larger blocks kept', () => leaves.keeps(blocks[2].cid), 10_000)
    assert.equal(leaves.length(blocks[2].cid), sizes[2])
    assert.equal(leaves.length(cidOf(unknown)), undefined, 'nothing kept of a block stored past the leaves')
    for (const { cid, bytes } of [...blocks, { cid: cidOf(unknown), bytes: unknown }]) {
      assert.deepEqual(new Uint8Array(await store.get(cid, { size: leaves.length(cid) })), bytes, 'the whole block, right')
    }
    // on disk the block changed: read at its kept length it is refused, as without one
    const path = await fileHolding(dir, blocks[2].bytes)
    const bad = Buffer.from(blocks[2].bytes)
    bad[5] ^= 0xff
    await writeFile(path, bad)
    await assert.rejects(store.get(blocks[2].cid, { size: leaves.length(blocks[2].cid) }), (err: any) => /corrupt/i.test(String(err?.message)))
  })

  it('a chunk just written is read by slices at once (its leaf hashes were kept when it was stored)', async () => {
    const { chunks } = await service({ k: 1, m: 0 })
    const bytes = seededBytes(1 << 20, 4)
    const { ref } = await chunks.storeChunk(bytes, 0)
    // the chunk cache (0 bytes here) is not what serves it: the store is
    assert.deepEqual(new Uint8Array(await chunks.readRange(ref, 300_000, 304_096)), bytes.subarray(300_000, 304_096))
    assert.equal(chunks.localLeaves.counters.wholeReads, 0)
    assert.equal(chunks.localLeaves.counters.slices, 1)
  })

  it('a page corrupted on disk is never returned: alone, the read fails; with parity here, the chunk is rebuilt', async () => {
    for (const params of [{ k: 1, m: 0 }, { k: 4, m: 2 }]) {
      const { chunks, dir } = await service(params)
      const bytes = seededBytes(1 << 20, 6)
      const { ref, blocks } = await chunks.storeChunk(bytes, 0)
      const path = await fileHolding(dir, blocks[0].bytes)
      const bad = Buffer.from(blocks[0].bytes)
      bad[LEAF_BYTES + 10] ^= 0xff // leaf 1 of data fragment 0
      await writeFile(path, bad)
      const start = LEAF_BYTES + 4
      const read = chunks.readRange(ref, start, start + 100)
      if (params.k === 1) {
        await assert.rejects(read, (err: any) => /corrupt/i.test(String(err?.message)), 'the only copy is corrupt: an error, not wrong bytes')
      } else {
        assert.deepEqual(new Uint8Array(await read), bytes.subarray(start, start + 100), 'rebuilt from the other fragments')
      }
      assert.equal(chunks.localLeaves.counters.mismatches, 1, 'the slice did not match its leaf hash')
      await t.run()
    }
  })

  it('proof(): a holder answers a range want from kept leaf hashes, and the answer verifies against the root', async () => {
    const { chunks, store } = await service({ k: 4, m: 2 })
    const { ref, blocks } = await chunks.storeChunk(seededBytes(1 << 20, 7), 0)
    const frag = blocks[1]
    const root = merkleRoot(frag.bytes)
    assert.deepEqual(ref.roots![1], root)
    const n = Math.ceil(frag.bytes.byteLength / LEAF_BYTES)
    for (const [first, end] of [[0, 1], [n - 1, n], [2, 5], [0, n]]) {
      const got = await chunks.localLeaves.proof(frag.cid, first, end)
      assert.ok(got !== undefined)
      assert.ok(verifyRange(root, frag.bytes.byteLength, first, end, got.bytes, got.proof), `leaves [${first}, ${end})`)
    }
    assert.equal(await chunks.localLeaves.proof(frag.cid, 0, n + 1), undefined, 'a range past the end: not served')
    chunks.localLeaves.clear()
    const cold = await chunks.localLeaves.proof(frag.cid, 1, 2)
    assert.ok(cold !== undefined && verifyRange(root, frag.bytes.byteLength, 1, 2, cold.bytes, cold.proof), 'cold: read whole once')
    await store.delete(frag.cid)
    assert.equal(await chunks.localLeaves.proof(frag.cid, 1, 2), undefined, 'gone from the store: not served')
  })

  it('a former holder (the fragment moved off, its leaf hashes still kept) asked for a range answers "not here" and counts no mismatch (review of read39, F1)', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const leaves = new LocalLeaves(store)
    const bytes = seededBytes(256 * 1024, 120)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)
    leaves.remember(cid, bytes)
    assert.ok(await leaves.proof(cid, 1, 2) !== undefined, 'served while here')
    // handed on (a placement moved it to its target, a repair's handover): gone from the store,
    // its hashes still kept; the swarm asks proof() alone for a peer's range want (rangeDeclines)
    await store.delete(cid)
    assert.equal(leaves.keeps(cid), true)
    for (let i = 0; i < 3; i++) assert.equal(await leaves.proof(cid, 2, 3), undefined, 'not here: not served')
    assert.equal(leaves.counters.mismatches, 0, 'an absent fragment is no slice that did not match')
    assert.equal(leaves.counters.gone, 1, 'counted gone once: its hashes were dropped at the first want')
    assert.equal(leaves.keeps(cid), false, 'the hashes of a fragment no longer here are dropped')
    // a slice that came back and did not match still counts (a corrupt disk)
    const other = seededBytes(256 * 1024, 121)
    const otherCid = cidOf(other)
    await store.put(otherCid, other)
    const wrong = Uint8Array.from(other)
    wrong[LEAF_BYTES + 3] ^= 0x01
    leaves.remember(otherCid, wrong) // hashes that the disk's bytes do not match
    assert.ok(await leaves.slice(otherCid, 1, 2) !== undefined, 'read whole instead, and sound')
    assert.equal(leaves.counters.mismatches, 1)
    assert.equal(leaves.counters.gone, 1)
  })

  it('a ref whose root is not the stored fragment\'s is not served from it', async () => {
    const { chunks } = await service({ k: 1, m: 0 })
    const bytes = seededBytes(1 << 20, 8)
    const { ref } = await chunks.storeChunk(bytes, 0)
    const wrong: ChunkRef = { ...ref, roots: [new Uint8Array(32)] }
    // no network, and the fragment here does not hash to the (wrong) root: the chunk is read
    // whole, verified by its CID
    assert.deepEqual(new Uint8Array(await chunks.readRange(wrong, 0, 4096)), bytes.subarray(0, 4096))
    assert.equal(chunks.readCounters().ranges, 0, 'not served from the leaves')
    assert.equal(chunks.localLeaves.counters.slices, 0)
  })
})
