// encodeChunk and encodeChunkAsync (node/data/chunks.ts) name a chunk and its fragments exactly as
// stored data expects: the chunk's CID is the raw sha256 CID of its bytes and fragment j's that of
// shard j of the erasure code (cross-checked here against the TypeScript codec and node's own
// sha256, independently of the single pass and the addon's threadpool hashing those functions
// use), whatever the size (short chunks, padded last shards, a fragment 0 that is not a view of
// the chunk) and shape.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CHUNK_SIZE, SMALL_LEAF_BYTES, encodeChunk, encodeChunkAsync, leafHashes, merkleRoot } from '../../node/data/index.ts'
import { encodeReplicatedWithLeaves } from '../../node/data/chunks.ts'
import { codecs, sha256Leaves } from '../../node/data/erasure.ts'
import { seededBytes as bytes } from '../../harness/prng.ts'


function rawCid (b: Uint8Array): string {
  return CID.createV1(raw.code, createDigest(0x12, createHash('sha256').update(b).digest())).toString()
}

const shapes: Array<[number, number]> = [[1, 0], [1, 2], [2, 1], [3, 2], [4, 2], [10, 4], [16, 4]]
const lengths = [0, 1, 100, 4097, 65535, 65536, 65537, 300001, CHUNK_SIZE - 1, CHUNK_SIZE]

describe('chunk encoding', () => {
  it('encodeChunk and encodeChunkAsync give the CIDs of sha256 over the chunk and over every fragment, and the same blocks', async () => {
    let seed = 1
    for (const [k, m] of shapes) {
      for (const length of lengths) {
        const data = bytes(length, seed++)
        const chunk = rawCid(data)
        const fragments = k === 1 ? Array.from({ length: m + 1 }, () => chunk) : codecs.typescript.encode(data, k, m).map(rawCid)
        const shards = k === 1 ? [data] : codecs.typescript.encode(data, k, m)
        for (const [name, encoded] of [['encodeChunk', encodeChunk(data, 7, k, m)], ['encodeChunkAsync', await encodeChunkAsync(data, 7, k, m)]] as const) {
          const what = `${name} ${k}+${m}, ${length} bytes`
          assert.equal(encoded.ref.cid?.toString(), chunk, what)
          assert.deepEqual(encoded.ref.fragments.map(String), fragments, what)
          assert.deepEqual({ offset: encoded.ref.offset, size: encoded.ref.size, k: encoded.ref.k, m: encoded.ref.m }, { offset: 7, size: length, k, m }, what)
          assert.equal(encoded.blocks.length, shards.length, what)
          encoded.blocks.forEach((b, j) => {
            assert.equal(b.cid.toString(), rawCid(shards[j]), `${what}, block ${j}`)
            assert.deepEqual(b.bytes, shards[j], `${what}, block ${j}`)
          })
        }
      }
    }
  })

  it('encodeReplicatedWithLeaves (the addon\'s one pass) gives the CID, the Merkle root and the leaf hashes of merkle.ts', async function () {
    if (sha256Leaves === undefined) this.skip() // no addon: the write path codes such chunks the other way
    let seed = 500
    for (const length of [65536, 65537, 16384 * 5, 300001, CHUNK_SIZE - 1, CHUNK_SIZE]) {
      const data = bytes(length, seed++)
      const got = await encodeReplicatedWithLeaves(data, 9, 2)
      assert.ok(got !== undefined, `${length} bytes`)
      assert.equal(got.encoded.ref.cid?.toString(), rawCid(data), `${length} bytes`)
      assert.deepEqual(got.encoded.ref.fragments.map(String), [rawCid(data), rawCid(data), rawCid(data)])
      assert.deepEqual({ offset: got.encoded.ref.offset, size: got.encoded.ref.size, k: got.encoded.ref.k, m: got.encoded.ref.m }, { offset: 9, size: length, k: 1, m: 2 })
      assert.equal(got.encoded.blocks.length, 1)
      assert.equal(got.encoded.blocks[0].bytes, data, 'the block is the chunk itself, not a copy')
      assert.deepEqual(Buffer.from(got.encoded.ref.roots![0]), Buffer.from(merkleRoot(data)), `root of ${length} bytes`)
      assert.deepEqual(Buffer.from(got.hashes), Buffer.from(leafHashes(data)), `leaf hashes of ${length} bytes`)
    }
    // below the threadpool's break-even it leaves the chunk to encodeChunk
    assert.equal(await encodeReplicatedWithLeaves(bytes(65535, 1), 0, 0), undefined)
    // the addon's own edge: an empty buffer is one empty leaf
    const empty = await sha256Leaves(new Uint8Array(0), 16384, true)
    assert.deepEqual(Buffer.from(empty.root), Buffer.from(merkleRoot(new Uint8Array(0))))
    assert.deepEqual(Buffer.from(empty.hashes), Buffer.from(leafHashes(new Uint8Array(0))))
    assert.equal(Buffer.from(empty.whole!).toString('hex'), createHash('sha256').digest('hex'))
  })

  it('the addon\'s sha256Leaves over SMALL_LEAF_BYTES leaves gives the tree of merkle.ts over them (a writer of 4 KiB-leaf fragments)', async function () {
    if (sha256Leaves === undefined) this.skip() // no addon: merkle.ts hashes them on the calling thread
    let seed = 700
    for (const length of [0, 1, SMALL_LEAF_BYTES, SMALL_LEAF_BYTES + 1, 65536, 300001, CHUNK_SIZE / 4, CHUNK_SIZE]) {
      const data = bytes(length, seed++)
      const got = await sha256Leaves(data, SMALL_LEAF_BYTES, false)
      assert.deepEqual(Buffer.from(got.root), Buffer.from(merkleRoot(data, SMALL_LEAF_BYTES)), `root of ${length} bytes`)
      assert.deepEqual(Buffer.from(got.hashes), Buffer.from(leafHashes(data, SMALL_LEAF_BYTES)), `leaf hashes of ${length} bytes`)
      if (length > SMALL_LEAF_BYTES) assert.notDeepEqual(Buffer.from(got.root), Buffer.from(merkleRoot(data)), `${length} bytes: the 4 KiB tree is not the 16 KiB one`)
    }
  })

  it('encodeChunkAsync runs chunks side by side: each gets its own CIDs', async () => {
    const datas = Array.from({ length: 6 }, (_, i) => bytes(CHUNK_SIZE - i * 1000, 100 + i))
    const all = await Promise.all(datas.map(async d => await encodeChunkAsync(d, 0, 4, 2)))
    all.forEach((e, i) => {
      assert.equal(e.ref.cid?.toString(), rawCid(datas[i]))
      assert.deepEqual(e.ref.fragments.map(String), codecs.typescript.encode(datas[i], 4, 2).map(rawCid))
    })
  })
})
