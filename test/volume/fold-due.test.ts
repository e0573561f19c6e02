// Volume's fold trigger and chunk choice (volume.ts foldPlan, foldDue): up to FOLD_EXTENTS
// pieces nothing is due; past them, a small file is folded whole (the rewrite is cheap), and a
// large one only in the chunks its extents make dense (a partial fold: at most
// FOLD_AMPLIFICATION bytes rewritten per byte folded); past FOLD_EXTENTS_MAX pieces, the
// densest chunks too, until half as many are left; past FOLD_SPAN_MAX extents since the oldest
// one still read, the chunks of the oldest pieces too.
import assert from 'node:assert/strict'
import { FOLD_AMPLIFICATION, FOLD_BYTES, FOLD_CHEAP_REWRITE, FOLD_EXTENTS, FOLD_EXTENTS_MAX, FOLD_SPAN_MAX, foldDue, foldPlan } from 'darkfs'

const MiB = 1 << 20
const KiB = 1024
const page = 4 * KiB
/** n extents of `size` bytes, the i-th at pos(i). */
const extents = (n: number, size: number, pos: (i: number) => number): Array<{ pos: number, size: number }> =>
  Array.from({ length: n }, (_, i) => ({ pos: pos(i), size }))

describe('volume foldPlan', function () {
  it('up to FOLD_EXTENTS small extents wait for a quiet file', () => {
    assert.equal(foldDue(extents(FOLD_EXTENTS, page, i => i * MiB)), false)
    // even all in one chunk
    assert.equal(foldDue(extents(FOLD_EXTENTS, page, i => i * page)), false)
  })

  it('past FOLD_EXTENTS, a small file is folded whole whatever its extents (the rewrite is cheap)', () => {
    assert.ok(2 * MiB <= FOLD_CHEAP_REWRITE)
    assert.deepEqual(foldPlan(extents(FOLD_EXTENTS + 1, 100, i => (i * 27_919) % (2 * MiB - 100))), { all: true, chunks: [0, 1] })
  })

  it('4 KiB pages over 16 MiB: only the chunks they make dense are folded, none while none is', () => {
    // a page per chunk in turn, chunk 5 left out
    const spread = (i: number): number => (i % 16 === 5 ? 6 : i % 16) * MiB + Math.floor(i / 16) * page
    // a few pages in every chunk: none holds 1 MiB / FOLD_AMPLIFICATION
    assert.equal(foldDue(extents(FOLD_EXTENTS + 1, page, spread)), false)
    // and enough pages into chunk 5: that chunk alone
    const dense = Math.ceil(MiB / FOLD_AMPLIFICATION / page)
    const xs = [...extents(FOLD_EXTENTS + 1, page, spread), ...extents(dense, page, i => 5 * MiB + i * page)]
    const plan = foldPlan(xs)
    assert.equal(plan.all, false)
    assert.deepEqual(plan.chunks, [5])
    assert.equal(foldDue(xs.slice(0, -1)), false)
  })

  it('scattered over a large file, past FOLD_EXTENTS_MAX pieces the densest chunks are folded until half are left', () => {
    // 1 GiB, one page in each of the first chunks, two in every 7th
    const xs = extents(FOLD_EXTENTS_MAX, page, i => i * MiB)
    assert.equal(foldDue(xs), false)
    const more = [...xs, ...extents(Math.ceil(FOLD_EXTENTS_MAX / 7), page, i => i * 7 * MiB + 8 * page)]
    const plan = foldPlan(more)
    assert.equal(plan.all, false)
    // every chunk with two pages first (smallest index first among equals), then the ones with one
    const twos = Math.ceil(FOLD_EXTENTS_MAX / 7)
    const left = more.length - twos * 2 - (plan.chunks.length - twos)
    assert.ok(left <= FOLD_EXTENTS_MAX / 2 && left > FOLD_EXTENTS_MAX / 2 - 2, `${left} pieces left`)
    for (let i = 0; i < twos; i++) assert.ok(plan.chunks.includes(i * 7))
  })

  it('past FOLD_BYTES in a few big extents, their dense chunks are folded', () => {
    const plan = foldPlan(extents(2, FOLD_BYTES / 2 + 1, i => i * 64 * MiB))
    assert.equal(plan.all, false)
    // the chunk with the extents' last byte only is not dense
    assert.deepEqual(plan.chunks, [0, 1, 2, 3, 64, 65, 66, 67])
  })

  it('past FOLD_SPAN_MAX extents since the oldest still read, the chunks of the oldest pieces are folded however sparse', () => {
    // one page in each of 200 chunks of a large file: nothing dense, nothing due
    const xs = extents(200, page, i => i * MiB)
    assert.equal(foldDue(xs), false)
    assert.equal(foldDue(xs, FOLD_SPAN_MAX), false)
    assert.equal(foldDue(xs, FOLD_SPAN_MAX + 1), true)
    // the first 3 pieces' chunks, and a dense one
    const plan = foldPlan([...xs, ...extents(16, page, i => 150 * MiB + i * page)], 3)
    assert.deepEqual(plan, { all: false, chunks: [0, 1, 2, 150] })
  })
})
