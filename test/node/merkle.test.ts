import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { HASH_BYTES, LEAF_BYTES, SMALL_LEAF_BYTES, innerNodes, leafCount, leafHashes, merkleRoot, proofFromLeaves, proofFromTree, rangeBytes, rangeProof, verifyRange } from '../../node/data/merkle.ts'
import { seededBytes } from '../../harness/prng.ts'

/** Fragment lengths around the leaf boundaries that matter: empty, one short leaf, a few leaves, a 1 MiB chunk. */
const lengthArb = fc.oneof(
  fc.integer({ min: 0, max: 3 * LEAF_BYTES + 5 }),
  fc.constantFrom(LEAF_BYTES, 2 * LEAF_BYTES, 5 * LEAF_BYTES - 1, 1 << 18, Math.floor((1 << 20) / 3) + 1, 1 << 20)
)

/** A fragment and a leaf range within it. */
const caseArb = lengthArb.chain(length => {
  const n = leafCount(length)
  return fc.tuple(fc.constant(length), fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 1, max: n }), fc.nat())
    .map(([len, a, w, seed]) => ({ length: len, first: a, end: Math.min(n, a + w), seed }))
})

describe('merkle: verified ranges of a fragment', function () {
  this.timeout(120_000)

  it('a range and its proof verify against the root; the proof is O(log n) hashes', () => {
    fc.assert(fc.property(caseArb, ({ length, first, end, seed }) => {
      const bytes = seededBytes(length, seed)
      const root = merkleRoot(bytes)
      assert.equal(root.byteLength, HASH_BYTES)
      const { bytes: slice, proof } = rangeProof(bytes, first, end)
      assert.deepEqual(slice, bytes.subarray(first * LEAF_BYTES, Math.min(end * LEAF_BYTES, length)))
      assert.equal(slice.byteLength, rangeBytes(length, first, end))
      assert.ok(proof.length <= 2 * Math.ceil(Math.log2(leafCount(length)) + 1), `${proof.length} hashes for ${leafCount(length)} leaves`)
      assert.ok(verifyRange(root, length, first, end, slice, proof))
    }), { numRuns: 150 })
  })

  it('one flipped byte of the slice fails', () => {
    fc.assert(fc.property(caseArb, fc.nat(), fc.integer({ min: 1, max: 255 }), ({ length, first, end, seed }, at, flip) => {
      if (length === 0) return
      const bytes = seededBytes(length, seed)
      const root = merkleRoot(bytes)
      const { bytes: slice, proof } = rangeProof(bytes, first, end)
      const bad = Uint8Array.from(slice)
      bad[at % bad.byteLength] ^= flip
      assert.ok(!verifyRange(root, length, first, end, bad, proof))
    }), { numRuns: 100 })
  })

  it('a tampered, dropped, extra or reordered proof hash fails', () => {
    fc.assert(fc.property(caseArb, fc.nat(), fc.integer({ min: 0, max: 3 }), ({ length, first, end, seed }, at, how) => {
      const bytes = seededBytes(length, seed)
      const root = merkleRoot(bytes)
      const { bytes: slice, proof } = rangeProof(bytes, first, end)
      let bad: Uint8Array[]
      if (how === 0) {
        if (proof.length === 0) return
        bad = proof.map(h => Uint8Array.from(h))
        bad[at % bad.length][at % HASH_BYTES] ^= 1
      } else if (how === 1) {
        if (proof.length === 0) return
        bad = proof.filter((_, i) => i !== at % proof.length)
      } else if (how === 2) {
        bad = [...proof, new Uint8Array(HASH_BYTES)]
      } else {
        if (proof.length < 2 || proof.every(h => Buffer.compare(h, proof[0]) === 0)) return
        bad = [...proof].reverse()
        if (bad.every((h, i) => Buffer.compare(h, proof[i]) === 0)) return
      }
      assert.ok(!verifyRange(root, length, first, end, slice, bad))
    }), { numRuns: 150 })
  })

  it('a slice shifted to another range, cut short or claimed for another length fails', () => {
    fc.assert(fc.property(caseArb, ({ length, first, end, seed }) => {
      const bytes = seededBytes(length, seed)
      const n = leafCount(length)
      const root = merkleRoot(bytes)
      const { bytes: slice, proof } = rangeProof(bytes, first, end)
      if (slice.byteLength > 0) assert.ok(!verifyRange(root, length, first, end, slice.subarray(0, slice.byteLength - 1), proof))
      // the same proof for the neighbouring range (when the tree has one of the same width)
      if (end < n && rangeBytes(length, first + 1, end + 1) === slice.byteLength) assert.ok(!verifyRange(root, length, first + 1, end + 1, slice, proof))
      assert.ok(!verifyRange(root, length + 1, first, end, slice, proof))
      assert.ok(!verifyRange(root, length, first, n + 1, slice, proof))
      assert.ok(!verifyRange(root, length, end, first, slice, proof))
    }), { numRuns: 100 })
  })

  it('matches RFC 6962 for a tree of three leaves, with the length bound into the root', () => {
    const bytes = seededBytes(2 * LEAF_BYTES + 10, 7)
    const h = (...parts: Uint8Array[]): Buffer => { const x = createHash('sha256'); for (const p of parts) x.update(p); return x.digest() }
    const leaf = (i: number): Buffer => h(Uint8Array.of(0), bytes.subarray(i * LEAF_BYTES, (i + 1) * LEAF_BYTES))
    const top = h(Uint8Array.of(1), h(Uint8Array.of(1), leaf(0), leaf(1)), leaf(2))
    const len = Buffer.alloc(8)
    len.writeBigUInt64BE(BigInt(bytes.byteLength))
    assert.deepEqual(Buffer.from(merkleRoot(bytes)), h(Uint8Array.of(2), len, top))
    // leaf 2's proof is the hash of the left subtree of leaves 0 and 1
    assert.deepEqual(rangeProof(bytes, 2, 3).proof.map(p => Buffer.from(p)), [h(Uint8Array.of(1), leaf(0), leaf(1))])
  })

  it('a proof looked up in the inner nodes (proofFromTree) is the computed one, hash for hash, and verifies', () => {
    fc.assert(fc.property(caseArb, ({ length, first, end, seed }) => {
      const bytes = seededBytes(length, seed)
      const hashes = leafHashes(bytes)
      const inner = innerNodes(length, hashes)
      assert.equal(inner.byteLength, (leafCount(length) - 1) * HASH_BYTES)
      const proof = proofFromTree(length, hashes, inner, first, end)
      assert.deepEqual(proof.map(p => Buffer.from(p)), proofFromLeaves(length, hashes, first, end).map(p => Buffer.from(p)))
      assert.ok(verifyRange(merkleRoot(bytes), length, first, end, bytes.subarray(first * LEAF_BYTES, Math.min(end * LEAF_BYTES, length)), proof))
    }), { numRuns: 150 })
    const hashes = leafHashes(seededBytes(3 * LEAF_BYTES, 2))
    assert.throws(() => proofFromTree(3 * LEAF_BYTES, hashes, new Uint8Array(HASH_BYTES), 0, 1), RangeError, 'inner nodes of another tree')
    assert.throws(() => proofFromTree(3 * LEAF_BYTES, hashes, innerNodes(3 * LEAF_BYTES, hashes), 2, 4), RangeError)
  })

  it('over SMALL_LEAF_BYTES leaves: hashes, inner nodes, proofs and checks are of that tree, and verify', () => {
    const L = SMALL_LEAF_BYTES
    const smallCase = fc.oneof(fc.integer({ min: 0, max: 9 * L + 5 }), fc.constantFrom(L, 3 * L, 1 << 18, Math.floor((1 << 20) / 3) + 1)).chain(length => {
      const n = leafCount(length, L)
      return fc.tuple(fc.constant(length), fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 1, max: n }), fc.nat())
        .map(([len, a, w, seed]) => ({ length: len, first: a, end: Math.min(n, a + w), seed }))
    })
    fc.assert(fc.property(smallCase, ({ length, first, end, seed }) => {
      const bytes = seededBytes(length, seed)
      const n = leafCount(length, L)
      assert.equal(n, Math.max(1, Math.ceil(length / L)))
      const hashes = leafHashes(bytes, L)
      assert.equal(hashes.byteLength, n * HASH_BYTES)
      const root = merkleRoot(bytes, L)
      const inner = innerNodes(length, hashes, L)
      const proof = proofFromTree(length, hashes, inner, first, end, L)
      assert.deepEqual(proof.map(p => Buffer.from(p)), proofFromLeaves(length, hashes, first, end, L).map(p => Buffer.from(p)))
      const { bytes: slice, proof: computed } = rangeProof(bytes, first, end, L)
      assert.deepEqual(computed.map(p => Buffer.from(p)), proof.map(p => Buffer.from(p)))
      assert.deepEqual(slice, bytes.subarray(first * L, Math.min(end * L, length)))
      assert.equal(slice.byteLength, rangeBytes(length, first, end, L))
      assert.ok(verifyRange(root, length, first, end, slice, proof, L))
      if (length > 0) {
        const bad = new Uint8Array(slice)
        bad[seed % bad.byteLength] ^= 1
        assert.equal(verifyRange(root, length, first, end, bad, proof, L), false)
      }
    }), { numRuns: 150 })
  })

  it('the leaf size is part of a root: a slice proved over one size fails against the other tree; the default is LEAF_BYTES', () => {
    const L = SMALL_LEAF_BYTES
    const bytes = seededBytes(256 * 1024, 3)
    // roots recorded before leaf sizes were given are those of LEAF_BYTES leaves
    assert.deepEqual(merkleRoot(bytes), merkleRoot(bytes, LEAF_BYTES))
    const big = merkleRoot(bytes)
    const small = merkleRoot(bytes, L)
    assert.notDeepEqual(Buffer.from(big), Buffer.from(small))
    // leaf 0 of each tree, checked against the other tree's root (same length, other leaves)
    const s = rangeProof(bytes, 0, 1, L)
    const b = rangeProof(bytes, 0, 1)
    assert.equal(verifyRange(big, bytes.byteLength, 0, 1, s.bytes, s.proof), false)
    assert.equal(verifyRange(big, bytes.byteLength, 0, 1, s.bytes, s.proof, L), false)
    assert.equal(verifyRange(small, bytes.byteLength, 0, 1, b.bytes, b.proof, L), false)
    assert.equal(verifyRange(small, bytes.byteLength, 0, 1, b.bytes, b.proof), false)
    // the 16 KiB leaf 0 is 4 KiB leaves 0..3: the four small leaves verify only as the small tree's
    const four = rangeProof(bytes, 0, 4, L)
    assert.deepEqual(four.bytes, b.bytes)
    assert.ok(verifyRange(small, bytes.byteLength, 0, 4, four.bytes, four.proof, L))
    assert.equal(verifyRange(big, bytes.byteLength, 0, 1, four.bytes, four.proof), false)
    // RFC 6962 over three small leaves, as for the default size
    const three = seededBytes(2 * L + 10, 7)
    const h = (...parts: Uint8Array[]): Buffer => { const x = createHash('sha256'); for (const p of parts) x.update(p); return x.digest() }
    const leaf = (i: number): Buffer => h(Uint8Array.of(0), three.subarray(i * L, (i + 1) * L))
    const len = Buffer.alloc(8)
    len.writeBigUInt64BE(BigInt(three.byteLength))
    assert.deepEqual(Buffer.from(merkleRoot(three, L)), h(Uint8Array.of(2), len, h(Uint8Array.of(1), h(Uint8Array.of(1), leaf(0), leaf(1)), leaf(2))))
  })

  it('rejects an out-of-bounds range when proving', () => {
    const bytes = seededBytes(3 * LEAF_BYTES, 1)
    assert.throws(() => rangeProof(bytes, 2, 4), RangeError)
    assert.throws(() => rangeProof(bytes, 1, 1), RangeError)
    assert.throws(() => rangeProof(bytes, -1, 1), RangeError)
  })
})
