import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { ManifestError, decodeManifest, encodeChunk, encodeManifest, holeChunk, manifestOf, withRoots } from '../../node/data/chunks.ts'
import { merkleRoot } from '../../node/data/merkle.ts'
import { readVerifiedSlices } from '../helpers/slices.ts'

describe('chunk refs: Merkle roots of data fragments, and where chunk bytes sit in them', function () {
  this.timeout(120_000)

  it('records one root per data fragment; manifests keep them, and old manifests without them still decode', () => {
    for (const [k, m] of [[1, 2], [4, 2], [3, 0]]) {
      const bytes = randomBytes(300_001)
      const { ref, blocks } = withRoots(encodeChunk(bytes, 0, k, m))
      assert.equal(ref.roots?.length, k)
      for (let i = 0; i < k; i++) assert.deepEqual(ref.roots![i], merkleRoot(blocks[i].bytes))
      const back = decodeManifest(encodeManifest(manifestOf(bytes.byteLength, [ref])).bytes)
      assert.deepEqual(back.chunks[0].roots, ref.roots)
      const old = encodeChunk(bytes, 0, k, m).ref
      const oldBack = decodeManifest(encodeManifest(manifestOf(bytes.byteLength, [old])).bytes)
      assert.equal(oldBack.chunks[0].roots, undefined)
    }
  })

  it('rejects roots of the wrong count or length, or on a hole', () => {
    const { ref } = withRoots(encodeChunk(randomBytes(5000), 0, 2, 1))
    const bad = [
      { ...ref, roots: ref.roots!.slice(1) },
      { ...ref, roots: [ref.roots![0], ref.roots![1].subarray(1)] },
      { ...ref, roots: [ref.roots![0], 'x'] as any }
    ]
    for (const r of bad) assert.throws(() => decodeManifest(encodeManifest(manifestOf(5000, [r])).bytes), ManifestError)
    const hole = { ...holeChunk(0, 5000), roots: [ref.roots![0]] }
    assert.throws(() => decodeManifest(encodeManifest(manifestOf(5000, [hole])).bytes), ManifestError)
  })

  it('fragmentSlices names the data-fragment leaves that hold a byte range, as erasure lays them out (padding included)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 200_000 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 2 }), fc.nat(), fc.nat(), fc.nat(),
      (size, k, m, a, w, seed) => {
        const bytes = new Uint8Array(size)
        for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff
        const { ref, blocks } = withRoots(encodeChunk(bytes, 0, k, m))
        const start = a % size
        const end = start + 1 + (w % Math.min(size - start, 70_000))
        assert.deepEqual(readVerifiedSlices(ref, j => blocks[k === 1 ? 0 : j].bytes, start, end), bytes.subarray(start, end))
      }), { numRuns: 200 })
  })
})
