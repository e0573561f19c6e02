import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { ManifestError, encodeChunk, rebuildFragments } from '../../node/data/index.ts'

describe('rebuildFragments(ref, fragments, wanted) (node/data/chunks.ts)', () => {
  it('rebuildFragments() gives every missing fragment of a 4+2 chunk from any 4, in one call', () => {
    for (const size of [1 << 20, (1 << 20) - 13, 1000]) {
      const { ref, blocks } = encodeChunk(randomBytes(size), 0, 4, 2)
      for (const lost of [[0, 5], [1, 2], [4, 5], [3]]) {
        const have = blocks.map((b, j) => lost.includes(j) ? undefined : b.bytes)
        const got = rebuildFragments(ref, have, lost)
        assert.deepEqual([...got.keys()], lost)
        for (const j of lost) assert.deepEqual(Buffer.from(got.get(j)!), Buffer.from(blocks[j].bytes), `fragment ${j} of a ${size}-byte chunk`)
      }
    }
  })

  it('rebuildFragments() refuses a fragment that rebuilds to other bytes than its CID, and a replicated chunk', () => {
    const { ref, blocks } = encodeChunk(randomBytes(1 << 16), 0, 4, 2)
    const have: Array<Uint8Array | undefined> = blocks.map(b => b.bytes)
    have[0] = undefined
    have[1] = randomBytes(blocks[1].bytes.byteLength) // wrong bytes given for fragment 1
    assert.throws(() => rebuildFragments(ref, have, [0]), ManifestError)
    const copy = encodeChunk(randomBytes(100), 0, 1, 2)
    assert.throws(() => rebuildFragments(copy.ref, [copy.blocks[0].bytes], [1]), ManifestError)
  })
})
