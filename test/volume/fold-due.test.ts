// Volume's fold trigger (volume.ts foldDue): past FOLD_EXTENTS a file is folded unless the fold
// would rewrite much more than its extents hold (small pages scattered over a large file), which
// waits for more of them, up to FOLD_EXTENTS_MAX or FOLD_BYTES.
import assert from 'node:assert/strict'
import { FOLD_AMPLIFICATION, FOLD_BYTES, FOLD_CHEAP_REWRITE, FOLD_EXTENTS, FOLD_EXTENTS_MAX, foldDue } from 'darkfs'

const MiB = 1 << 20
const KiB = 1024
/** n extents of `size` bytes, the i-th at pos(i). */
const extents = (n: number, size: number, pos: (i: number) => number): Array<{ pos: number, size: number }> =>
  Array.from({ length: n }, (_, i) => ({ pos: pos(i), size }))

describe('volume foldDue', function () {
  it('up to FOLD_EXTENTS small extents wait for a quiet file', () => {
    assert.equal(foldDue(extents(FOLD_EXTENTS, 4 * KiB, i => i * MiB)), false)
  })

  it('past FOLD_EXTENTS, a small file is folded whatever its extents (the rewrite is cheap)', () => {
    assert.ok(2 * MiB <= FOLD_CHEAP_REWRITE)
    assert.equal(foldDue(extents(FOLD_EXTENTS + 1, 100, i => (i * 7919) % (2 * MiB - 100))), true)
  })

  it('past FOLD_EXTENTS, 4 KiB pages over 16 MiB wait until the fold rewrites at most FOLD_AMPLIFICATION bytes per byte', () => {
    const page = 4 * KiB
    const spread = (i: number): number => (i * 104_729 * page) % (16 * MiB)
    // every one of the 16 chunks touched: folded once the pages hold 16 MiB / FOLD_AMPLIFICATION
    const enough = Math.ceil(16 * MiB / FOLD_AMPLIFICATION / page)
    assert.ok(enough > FOLD_EXTENTS + 1)
    assert.equal(foldDue(extents(FOLD_EXTENTS + 1, page, spread)), false)
    assert.equal(foldDue(extents(enough - 1, page, spread)), false)
    assert.equal(foldDue(extents(enough, page, spread)), true)
  })

  it('scattered over a large file, a fold is due at FOLD_EXTENTS_MAX extents or FOLD_BYTES', () => {
    const far = (i: number): number => i * 3 * MiB
    assert.equal(foldDue(extents(FOLD_EXTENTS_MAX, 4 * KiB, far)), false)
    assert.equal(foldDue(extents(FOLD_EXTENTS_MAX + 1, 4 * KiB, far)), true)
    assert.equal(foldDue(extents(2, FOLD_BYTES / 2 + 1, far)), true)
  })
})
