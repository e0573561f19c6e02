// ExtentMap (node/tree/extent-map.ts): the segments it resolves a file's extents to read the same
// bytes as laying every extent over the base one by one in op order, for any extents and any
// read range (property, against that plain overlay); hidden extents are never returned.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ExtentMap } from '../../node/tree/index.ts'
import type { Extent } from '../../node/tree/index.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261202)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))

/** Extent number i: `size` bytes of value i + 1, landed at `pos`. */
const ext = (i: number, pos: number, size: number): Extent => ({
  op: `op${i}`, hlc: [i, 0], content: { inline: new Uint8Array(size).fill(i + 1) }, at: 0, size, offset: pos, pos, before: 0
})

/** The plain overlay: every extent over a zeroed file, in order. */
function overlay (extents: Extent[], size: number): Uint8Array {
  const out = new Uint8Array(size)
  for (const x of extents) out.set((x.content as { inline: Uint8Array }).inline, x.pos)
  return out
}

describe('node/tree ExtentMap', () => {
  it('reads what the plain overlay reads, for any extents and range (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ pos: fc.nat(200), size: fc.integer({ min: 1, max: 60 }) }), { maxLength: 40 }),
      fc.nat(260), fc.nat(260),
      (list, a, b) => {
        const extents = list.map((x, i) => ext(i, x.pos, x.size))
        const size = 260
        const want = overlay(extents, size)
        const map = new ExtentMap(extents)
        const [from, to] = a <= b ? [a, b] : [b, a]
        const got = new Uint8Array(size)
        let last = from
        for (const s of map.within(from, to)) {
          assert.ok(s.from >= last && s.to > s.from && s.to <= to, 'disjoint, sorted, clipped')
          last = s.to
          got.set((s.ext.content as { inline: Uint8Array }).inline.subarray(s.from - s.ext.pos, s.to - s.ext.pos), s.from)
        }
        assert.deepEqual(got.subarray(from, to), want.subarray(from, to))
        assert.equal(map.overlaps(from, to), want.subarray(from, to).some(v => v !== 0))
        // a segment's extent is the newest covering it: no extent hidden whole ever shows
        const shown = new Set(map.within(0, size).map(s => s.ext.op))
        for (const [i, x] of extents.entries()) {
          const hidden = extents.slice(i + 1).some(y => y.pos <= x.pos && y.pos + y.size >= x.pos + x.size)
          if (hidden) assert.ok(!shown.has(x.op))
        }
      }), { seed: PROP_SEED, numRuns: 300 * RUNS })
  })

  it('resolves many small overwrites of one page to one segment per byte run', () => {
    const extents = Array.from({ length: 1000 }, (_, i) => ext(i, (i % 4) * 1024, 1024))
    const map = new ExtentMap(extents)
    assert.equal(map.segments, 4)
    assert.deepEqual(map.within(0, 4096).map(s => s.ext.op), ['op996', 'op997', 'op998', 'op999'])
  })
})
