// Content sums (node/data contentSum): the identity of a version's bytes whatever manifest
// stores them, and its place in write ops (node/tree op.ts: checked on commit and on receive,
// compared by sameContent).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CHUNK_SIZE, contentSum, encodeChunk, encodeManifest, holeChunk, manifestOf, cidOf } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { InvalidOpError, sameContent } from '../../node/tree/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { replica, sync, mkfile } from '../helpers/tree.ts'

/** The refs of `bytes` cut into chunks, each coded with k, m (zero chunks stored as data). */
function refsOf (bytes: Uint8Array, k: number, m: number): ChunkRef[] {
  const refs: ChunkRef[] = []
  for (let at = 0; at < bytes.byteLength; at += CHUNK_SIZE) refs.push(encodeChunk(bytes.subarray(at, at + CHUNK_SIZE), at, k, m).ref)
  return refs
}

describe('contentSum(manifest)', () => {
  const bytes = randomBytes(2 * CHUNK_SIZE + 12_345)

  it('equal bytes under other erasure parameters: other manifests, one sum', () => {
    const ms = [[1, 0], [1, 2], [2, 1], [4, 2]].map(([k, m]) => manifestOf(bytes.byteLength, refsOf(bytes, k, m)))
    const cids = new Set(ms.map(m => encodeManifest(m).cid.toString()))
    assert.equal(cids.size, ms.length)
    const sums = new Set(ms.map(m => contentSum(m).toString()))
    assert.equal(sums.size, 1)
    const sum = contentSum(ms[0])
    assert.equal(sum.code, 0x55)
    assert.equal(sum.multihash.code, 0x12)
  })

  it('written zeros, one-chunk holes (v1) and a hole spanning chunks (v2) are one sum', () => {
    const size = 3 * CHUNK_SIZE + 100
    const data = randomBytes(CHUNK_SIZE)
    const head = encodeChunk(data, 0, 1, 0).ref
    const written = new Uint8Array(size)
    written.set(data)
    const asBytes = manifestOf(size, refsOf(written, 1, 2))
    const v1 = manifestOf(size, [head, holeChunk(CHUNK_SIZE, CHUNK_SIZE), holeChunk(2 * CHUNK_SIZE, CHUNK_SIZE), holeChunk(3 * CHUNK_SIZE, 100)])
    const v2 = manifestOf(size, [head, holeChunk(CHUNK_SIZE, size - CHUNK_SIZE)])
    assert.equal(v1.v, 1)
    assert.equal(v2.v, 2)
    // a zero chunk between holes, as a writer that wrote one chunk of zeros makes it
    const mixed = manifestOf(size, [head, holeChunk(CHUNK_SIZE, CHUNK_SIZE), encodeChunk(new Uint8Array(CHUNK_SIZE), 2 * CHUNK_SIZE, 2, 1).ref, holeChunk(3 * CHUNK_SIZE, 100)])
    const sums = new Set([asBytes, v1, v2, mixed].map(m => contentSum(m).toString()))
    assert.equal(sums.size, 1)
    // all zeros: a file of holes only and one of written zeros
    const allZeros = new Uint8Array(size)
    assert.ok(contentSum(manifestOf(size, [holeChunk(0, size)])).equals(contentSum(manifestOf(size, refsOf(allZeros, 1, 0)))))
  })

  it('different bytes never share a sum: other data, zeros elsewhere, another length of zeros', () => {
    const other = Uint8Array.from(bytes)
    other[5] ^= 1
    const base = contentSum(manifestOf(bytes.byteLength, refsOf(bytes, 1, 0)))
    assert.ok(!base.equals(contentSum(manifestOf(other.byteLength, refsOf(other, 1, 0)))))
    const data = encodeChunk(randomBytes(CHUNK_SIZE), 0, 1, 0).ref
    const at = (i: number, r: ChunkRef): ChunkRef => ({ ...r, offset: i * CHUNK_SIZE })
    const zerosFirst = manifestOf(2 * CHUNK_SIZE, [holeChunk(0, CHUNK_SIZE), at(1, data)])
    const zerosLast = manifestOf(2 * CHUNK_SIZE, [at(0, data), holeChunk(CHUNK_SIZE, CHUNK_SIZE)])
    const longer = manifestOf(2 * CHUNK_SIZE + 1, [at(0, data), holeChunk(CHUNK_SIZE, CHUNK_SIZE + 1)])
    const sums = new Set([zerosFirst, zerosLast, longer].map(m => contentSum(m).toString()))
    assert.equal(sums.size, 3)
  })
})

describe('content sums in ops', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  const enc = new TextEncoder()
  const m1 = cidOf(enc.encode('manifest 1'), 0x71)
  const m2 = cidOf(enc.encode('manifest 2'), 0x71)
  const sum = cidOf(enc.encode('sum'))
  const time = 1_700_000_000_000_000_000n

  it('sameContent(): one manifest, or equal sums; a content without a sum only by its manifest', () => {
    assert.ok(sameContent({ manifest: m1, sum }, { manifest: m2, sum }))
    assert.ok(sameContent({ manifest: m1 }, { manifest: m1, sum }))
    assert.ok(!sameContent({ manifest: m1 }, { manifest: m2, sum }))
    assert.ok(!sameContent({ manifest: m1, sum }, { manifest: m2, sum: cidOf(enc.encode('another sum')) }))
    assert.ok(!sameContent({ manifest: m1, sum }, { inline: new Uint8Array(1) }))
  })

  it('tree.commit() takes { manifest, sum } and a peer receives it; a bad sum or an unknown field is InvalidOpError', async () => {
    const a = await replica(t)
    const b = await replica(t)
    const { id } = await a.tree.commit(mkfile(a.tree.root, 'f', 'x'))
    await a.tree.commit({ type: 'write', inode: id, content: { manifest: m1, sum }, size: 10_000, time })
    await sync(a.tree, b.tree)
    const c = b.tree.get(id)!.content
    assert.ok(c !== null && 'manifest' in c && c.manifest.equals(m1) && c.sum?.equals(sum) === true)
    // an undefined sum is no field (old writers' shape)
    await a.tree.commit({ type: 'write', inode: id, content: { manifest: m2, sum: undefined }, size: 10_000, time: time + 1n })
    await sync(a.tree, b.tree)
    assert.deepEqual(Object.keys(b.tree.get(id)!.content!), ['manifest'])
    const bad: any[] = [
      { manifest: m1, sum: m2 }, // a dag-cbor CID is no sum
      { manifest: m1, sum: 'abc' },
      { manifest: m1, sum, extra: 1 },
      { inline: new Uint8Array(1), sum },
      { sum }
    ]
    for (const content of bad) {
      await assert.rejects(a.tree.commit({ type: 'write', inode: id, content, size: 10_000, time: time + 2n }), InvalidOpError, JSON.stringify(Object.keys(content)))
    }
    // nothing of the refused ops was applied
    const now = a.tree.get(id)!.content
    assert.ok(now !== null && 'manifest' in now && now.manifest.equals(m2))
  })
})
