// A byte range of a chunk read back from its fragments as fragmentSlices cuts it, every slice
// checked against its fragment's root with its proof (fragment-roots, manifest-clay).
import assert from 'node:assert/strict'
import { fragmentSlices } from '../../node/data/chunks.ts'
import { rangeProof, verifyRange } from '../../node/data/merkle.ts'
import type { ChunkRef } from '../../node/data/index.ts'

/** Bytes [start, end) of `ref`'s chunk from its data fragments' verified slices (`fragment(j)`: fragment j's bytes). */
export function readVerifiedSlices (ref: ChunkRef, fragment: (j: number) => Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start)
  let at = 0
  for (const s of fragmentSlices(ref, start, end)) {
    assert.ok(s.fragment < ref.k, `slice of fragment ${s.fragment}, not a data fragment`)
    const frag = fragment(s.fragment)
    assert.equal(frag.byteLength, s.fragmentBytes)
    const { bytes: slice, proof } = rangeProof(frag, s.first, s.end)
    assert.ok(verifyRange(ref.roots![s.fragment], s.fragmentBytes, s.first, s.end, slice, proof))
    out.set(slice.subarray(s.from, s.to), at)
    at += s.to - s.from
  }
  assert.equal(at, end - start)
  return out
}
