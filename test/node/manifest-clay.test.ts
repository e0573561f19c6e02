// Clay-coded chunks in manifests (issue 15 item 6; node/data/chunks.ts, clay.ts): a chunk ref
// names its code (ChunkRef.clay = d) only in a v3 manifest, which a host of an older version
// refuses (it reads v1 and v2 alone); its roots are those of all k + m fragments; its data
// fragments are the chunk's bytes (systematic), so a read needs no decode while they are there;
// any k fragments decode it, and any lost ones rebuild from any k. With the codec gate off
// (ChunkService.codec 'rs', the default) nothing changes: manifests stay v1/v2, byte for byte.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import {
  CHUNK_SIZE, ChunkService, MANIFEST_VERSIONS, ManifestError, Store, clayCode, clayFor, decodeChunk, decodeChunkOffThread, decodeManifest,
  encodeChunk, encodeChunkAsync, encodeManifest, holeChunk, manifestOf, merkleRoot, rebuildFragments, withRoots
} from '../../node/data/index.ts'
import type { ChunkRef, Manifest } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { seededBytes } from '../../harness/prng.ts'
import { readVerifiedSlices } from '../helpers/slices.ts'

/** Every subset of `size` of 0..n-1. */
function subsets (n: number, size: number): number[][] {
  if (size === 0) return [[]]
  if (n < size) return []
  return [...subsets(n - 1, size), ...subsets(n - 1, size - 1).map(s => [...s, n - 1])]
}

const roundTrip = (m: Manifest): Manifest => decodeManifest(encodeManifest(m).bytes)

describe('Clay-coded chunks: manifest v3, encode, decode, rebuild', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('a Clay-coded chunk (4+2, d = 5) names its code, roots of all six fragments, and its data fragments are its bytes', () => {
    for (const size of [CHUNK_SIZE, 300_001, 65_537]) {
      const bytes = seededBytes(size, size)
      const { ref, blocks } = withRoots(encodeChunk(bytes, 0, 4, 2, 5))
      assert.equal(ref.clay, 5)
      assert.equal(blocks.length, 6)
      const f = clayCode(4, 2, 5).fragmentSize(size)
      for (const b of blocks) assert.equal(b.bytes.byteLength, f)
      // systematic: the data fragments, end to end, are the chunk (zero-padded)
      const joined = Buffer.concat(blocks.slice(0, 4).map(b => b.bytes))
      assert.deepEqual(joined.subarray(0, size), Buffer.from(bytes))
      assert.ok(joined.subarray(size).every(x => x === 0))
      assert.equal(ref.roots?.length, 6)
      blocks.forEach((b, j) => { assert.deepEqual(ref.roots![j], merkleRoot(b.bytes)) })
      // not Reed–Solomon: the parity differs (so an older host must not take it for RS)
      const rs = encodeChunk(bytes, 0, 4, 2)
      assert.equal(rs.ref.clay, undefined)
      assert.ok(!rs.ref.fragments[4].equals(ref.fragments[4]))
      const m = manifestOf(size, [ref])
      assert.equal(m.v, 3)
      const back = roundTrip(m)
      assert.equal(back.v, 3)
      assert.equal(back.chunks[0].clay, 5)
      assert.deepEqual(back.chunks[0].roots, ref.roots)
      assert.ok(back.chunks[0].fragments.every((c, j) => c.equals(ref.fragments[j])))
    }
  })

  it('encodeChunkAsync codes a Clay chunk to the same fragments as encodeChunk', async () => {
    for (const size of [CHUNK_SIZE, 200_000]) {
      const bytes = seededBytes(size, 7)
      const a = encodeChunk(bytes, 0, 4, 2, 5)
      const b = await encodeChunkAsync(bytes, 0, 4, 2, 5)
      assert.equal(b.ref.clay, 5)
      assert.ok(a.ref.cid!.equals(b.ref.cid!))
      assert.deepEqual(a.ref.fragments.map(String), b.ref.fragments.map(String))
    }
  })

  it('any k fragments decode the chunk (checked against its CID), and any lost ones rebuild from any k to their CIDs', async () => {
    for (const size of [CHUNK_SIZE, 123_457]) {
      const bytes = seededBytes(size, 3)
      const { ref, blocks } = encodeChunk(bytes, 0, 4, 2, 5)
      const all = blocks.map(b => b.bytes)
      for (const keep of subsets(6, 4)) {
        const frags = all.map((f, j) => keep.includes(j) ? f : undefined)
        assert.deepEqual(Buffer.from(decodeChunk(ref, frags, { verified: true })), Buffer.from(bytes), `from ${keep.join(',')}`)
        assert.deepEqual(Buffer.from(await decodeChunkOffThread(ref, frags)), Buffer.from(bytes), `from ${keep.join(',')} off thread`)
        const lost = [0, 1, 2, 3, 4, 5].filter(j => !keep.includes(j))
        for (const wanted of [lost, [lost[0]], [lost[1]]]) {
          const got = rebuildFragments(ref, frags, wanted)
          for (const j of wanted) assert.deepEqual(Buffer.from(got.get(j)!), Buffer.from(all[j]), `fragment ${j} from ${keep.join(',')}`)
        }
      }
      // a wrong fragment never yields wrong bytes
      const bad = all.map((f, j) => j === 0 ? undefined : j === 1 ? Uint8Array.from(f, x => x ^ 1) : f)
      assert.throws(() => decodeChunk(ref, bad, { verified: true }), ManifestError)
      assert.throws(() => rebuildFragments(ref, bad, [0]), ManifestError)
    }
  })

  it('fragmentSlices cuts a Clay chunk at its fragment size (not shardSize): every slice verifies against its root', () => {
    fc.assert(fc.property(fc.integer({ min: 65_537, max: 400_000 }), fc.nat(), fc.nat(), (size, a, w) => {
      const bytes = seededBytes(size, size)
      const { ref, blocks } = withRoots(encodeChunk(bytes, 0, 4, 2, 5))
      const start = a % size
      const end = start + 1 + (w % Math.min(size - start, 70_000))
      assert.deepEqual(readVerifiedSlices(ref, j => blocks[j].bytes, start, end), bytes.subarray(start, end))
    }), { numRuns: 60 })
  })

  it('refuses a code where it cannot be: in a v1 or v2 manifest, on a hole, d outside k < d < k + m, roots of the data fragments alone', () => {
    const size = 200_000
    const { ref } = withRoots(encodeChunk(seededBytes(size, 1), 0, 4, 2, 5))
    const v3 = manifestOf(size, [ref])
    assert.doesNotThrow(() => roundTrip(v3))
    for (const v of [1, 2]) assert.throws(() => roundTrip({ ...v3, v } as Manifest), ManifestError, `clay in v${v}`)
    const bad: unknown[] = [
      { ...ref, clay: 4 }, { ...ref, clay: 6 }, { ...ref, clay: 3 }, { ...ref, clay: 5.5 }, { ...ref, clay: '5' }, { ...ref, clay: null },
      { ...ref, roots: ref.roots!.slice(0, 4) },
      { ...ref, k: 1, m: 5 }
    ]
    for (const r of bad) assert.throws(() => roundTrip({ ...v3, chunks: [r as ChunkRef] }), ManifestError, JSON.stringify({ clay: (r as ChunkRef).clay, roots: (r as ChunkRef).roots?.length }))
    assert.throws(() => roundTrip({ ...v3, chunks: [{ ...holeChunk(0, size), clay: 5 } as ChunkRef] }), ManifestError, 'clay on a hole')
    // a code too wide to take (2^32 sub-chunks): refused, not built
    const wide = withRoots(encodeChunk(seededBytes(size, 2), 0, 30, 2))
    assert.throws(() => roundTrip(manifestOf(size, [{ ...wide.ref, clay: 31, roots: [...wide.ref.roots!, ...wide.ref.roots!.slice(0, 2)] }])), ManifestError)
    // v3 without a Clay chunk still reads (v2's rules: a hole may span chunks)
    assert.equal(roundTrip({ v: 3, size: 3 * CHUNK_SIZE, chunkSize: CHUNK_SIZE, chunks: [holeChunk(0, 3 * CHUNK_SIZE)] }).v, 3)
  })

  it('refuses a manifest version it does not know (as a host before v3 refuses v3)', () => {
    assert.deepEqual([...MANIFEST_VERSIONS], [1, 2, 3])
    const { ref } = encodeChunk(seededBytes(5000, 1), 0, 2, 1)
    for (const v of [0, 4, 255, '3', null]) {
      const bytes = dagCbor.encode({ v, size: 5000, chunkSize: CHUNK_SIZE, chunks: [ref] })
      assert.throws(() => decodeManifest(bytes), /bad header/, String(v))
    }
  })

  it('with the gate off nothing changes: Reed–Solomon refs, manifests v1/v2 byte for byte as before (no clay field)', () => {
    const size = 300_001
    const { ref } = withRoots(encodeChunk(seededBytes(size, 9), 0, 4, 2))
    assert.equal('clay' in ref, false)
    const v1 = manifestOf(size, [ref])
    assert.equal(v1.v, 1)
    assert.deepEqual(encodeManifest(v1).bytes, dagCbor.encode({ v: 1, size, chunkSize: CHUNK_SIZE, chunks: [ref] }))
    const hole = holeChunk(size, 3 * CHUNK_SIZE)
    const v2 = manifestOf(size + 3 * CHUNK_SIZE, [ref, hole])
    assert.equal(v2.v, 2)
    assert.deepEqual(encodeManifest(v2).bytes, dagCbor.encode({ v: 2, size: size + 3 * CHUNK_SIZE, chunkSize: CHUNK_SIZE, chunks: [ref, hole] }))
  })

  it('ChunkService: codec rs (the default) stores Reed–Solomon chunks, codec clay Clay-coded ones (k > 1, m >= 2), read back from any k', async () => {
    const store = await Store.open(join(await tempDir(t), 'store'))
    t.add(async () => { await store.close() })
    const chunks = new ChunkService(store, { localParams: { k: 4, m: 2 }, cacheBytes: 0 })
    assert.equal(chunks.codec, 'rs')
    const bytes = seededBytes(CHUNK_SIZE, 11)
    const rs = await chunks.storeChunk(bytes, 0)
    assert.equal(rs.ref.clay, undefined)
    chunks.codec = 'clay'
    const other = seededBytes(CHUNK_SIZE, 12)
    const clay = await chunks.storeChunk(other, 0)
    assert.equal(clay.ref.clay, 5)
    assert.equal(clay.ref.roots?.length, 6)
    // small chunks stay replicated copies (k = 1): no code to name
    const small = await chunks.storeChunk(seededBytes(5000, 13), 0)
    assert.equal(small.ref.k, 1)
    assert.equal(small.ref.clay, undefined)
    // m = 1: no d with k < d < k + m, Reed–Solomon
    const narrow = new ChunkService(store, { localParams: { k: 2, m: 1 }, cacheBytes: 0, codec: 'clay' })
    assert.equal((await narrow.storeChunk(seededBytes(CHUNK_SIZE, 14), 0)).ref.clay, undefined)
    // a code too wide to build (23+2 would need 8,192 sub-chunks): Reed–Solomon, not a write that fails
    assert.equal(clayFor(23, 2), undefined)
    assert.equal(clayFor(4, 2), 5)
    const wide = new ChunkService(store, { localParams: { k: 23, m: 2 }, cacheBytes: 0, codec: 'clay' })
    const wideRef = (await wide.storeChunk(seededBytes(CHUNK_SIZE, 17), 0)).ref
    assert.equal(wideRef.k, 23)
    assert.equal(wideRef.clay, undefined)
    // the gate says no (a member does not read Clay yet): Reed–Solomon
    const gated = new ChunkService(store, { localParams: { k: 4, m: 2 }, cacheBytes: 0, codec: 'clay', clayReadable: () => false })
    assert.equal((await gated.storeChunk(seededBytes(CHUNK_SIZE, 15), 0)).ref.clay, undefined)
    chunks.dropCache()
    assert.deepEqual(Buffer.from(await chunks.readChunk(clay.ref)), Buffer.from(other))
    // two data fragments gone from the disk: rebuilt through the Clay parity
    for (const j of [0, 2]) await store.delete(clay.ref.fragments[j])
    chunks.dropCache()
    assert.deepEqual(Buffer.from(await chunks.readChunk(clay.ref)), Buffer.from(other))
    assert.deepEqual(Buffer.from(await chunks.readRange(clay.ref, 300_000, 310_000)), Buffer.from(other.subarray(300_000, 310_000)))
    // a short chunk (a file's last): its fragments are the Clay code's size, not shardSize's
    const tail = seededBytes(300_001, 16)
    const short = await chunks.storeChunk(tail, 0)
    assert.equal(short.ref.clay, 5)
    chunks.dropCache()
    assert.deepEqual(Buffer.from(await chunks.readChunk(short.ref)), Buffer.from(tail))
    assert.deepEqual(Buffer.from(await chunks.readRange(short.ref, 200_000, 200_100)), Buffer.from(tail.subarray(200_000, 200_100)))
    await store.delete(short.ref.fragments[3])
    chunks.dropCache()
    assert.deepEqual(Buffer.from(await chunks.readChunk(short.ref)), Buffer.from(tail))
  })
})
