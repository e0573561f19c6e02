// Volume's fold trigger and chunk choice (volume.ts foldPlan, foldDue): up to FOLD_EXTENTS
// pieces nothing is due; past them, a small file is folded whole (the rewrite is cheap), and a
// large one only in the chunks its extents make dense (a partial fold: at most
// FOLD_AMPLIFICATION bytes rewritten per byte folded); past FOLD_EXTENTS_MAX pieces, the
// densest chunks too, until half as many are left; past FOLD_SPAN_MAX extents since the oldest
// one still read, the chunks of the oldest pieces too. Once the file is quiet (`quiet`), whatever
// the count: every chunk holding 1 / FOLD_QUIET_AMPLIFICATION of extents (all when cheap); the
// sparser ones' pieces stay; `most` keeps the densest chunks only (a quiet fold's batch). A
// chunk whose pieces are all inline in their ops is dense before the file is quiet only at
// 1 / FOLD_INLINE_AMPLIFICATION (extents without `content` here count as stored ones).
import assert from 'node:assert/strict'
import { FOLD_AMPLIFICATION, FOLD_BYTES, FOLD_CHEAP_REWRITE, FOLD_EXTENTS, FOLD_EXTENTS_MAX, FOLD_INLINE_AMPLIFICATION, FOLD_QUIET_AMPLIFICATION, FOLD_QUIET_BATCH, FOLD_SPAN_MAX, FoldTally, foldDue, foldPlan } from 'darkfs'
import type { Content } from '../../node/tree/index.ts'
import { CID } from 'multiformats/cid'

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

  it('4 KiB pages inline in their ops: a chunk is dense at 1 / FOLD_INLINE_AMPLIFICATION, not 1 / FOLD_AMPLIFICATION; one stored piece in it, at the latter', () => {
    // (the old plan folded a chunk of inline pages at 1 / FOLD_AMPLIFICATION: 16 KiB rewritten
    // per 1 KiB of pages, on six hosts its 4+2 fragments placed anew every 16 fsyncs of fio's)
    assert.ok(FOLD_INLINE_AMPLIFICATION < FOLD_AMPLIFICATION)
    const inline = { inline: new Uint8Array(page) }
    const stored = { manifest: CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy') }
    const spread = (i: number): number => (i % 16 === 5 ? 6 : i % 16) * MiB + Math.floor(i / 16) * page
    const some = extents(FOLD_EXTENTS + 1, page, spread).map(x => ({ ...x, content: inline }))
    const pages = (n: number): Array<{ pos: number, size: number, content: Content }> => extents(n, page, i => 5 * MiB + i * 2 * page).map(x => ({ ...x, content: inline }))
    // chunk 5 with 1 / FOLD_AMPLIFICATION of inline pages: not dense
    const amp = Math.ceil(MiB / FOLD_AMPLIFICATION / page)
    assert.equal(foldDue([...some, ...pages(amp)]), false)
    // ... until they hold 1 / FOLD_INLINE_AMPLIFICATION of it: that chunk alone
    const dense = Math.ceil(MiB / FOLD_INLINE_AMPLIFICATION / page)
    assert.deepEqual(foldPlan([...some, ...pages(dense)]), { all: false, chunks: [5] })
    assert.equal(foldDue([...some, ...pages(dense - 1)]), false)
    // a piece of a packed chunk among chunk 5's inline pages: dense at 1 / FOLD_AMPLIFICATION
    const mixed = [...some, ...pages(amp - 1), { pos: 5 * MiB + 600 * KiB, size: page, content: stored }]
    assert.deepEqual(foldPlan(mixed), { all: false, chunks: [5] })
    // once the file is quiet, inline or not: 1 / FOLD_QUIET_AMPLIFICATION
    const quietDense = Math.ceil(MiB / FOLD_QUIET_AMPLIFICATION / page)
    const lone = extents(20, page, i => (i + 20) * MiB).map(x => ({ ...x, content: inline }))
    assert.deepEqual(foldPlan([...lone, ...pages(quietDense).map(x => ({ ...x, pos: x.pos + 64 * MiB }))], 0, true), { all: false, chunks: [69] })
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

  it('a quiet file: a few pieces of a small file are folded whole; over a large one, only the chunks holding 1 / FOLD_QUIET_AMPLIFICATION', () => {
    assert.ok(FOLD_QUIET_AMPLIFICATION > FOLD_AMPLIFICATION)
    // two pages of a small file: below FOLD_EXTENTS, folded whole once quiet
    assert.deepEqual(foldPlan(extents(2, page, i => i * MiB), 0, true), { all: true, chunks: [0, 1] })
    // fio's 4 KiB random writes over 1 GiB: two or three pages a chunk (what a quiet fold rewrote
    // whole, ~100 bytes per byte folded), and chunk 9 with just enough for the quiet bound
    const sparse = extents(3 * 1024, page, i => (i % 1024) * MiB + Math.floor(i / 1024) * 2 * page)
    const quietDense = Math.ceil(MiB / FOLD_QUIET_AMPLIFICATION / page)
    assert.ok(quietDense > 3 && quietDense * page * FOLD_AMPLIFICATION < MiB, 'dense for a quiet fold only')
    const xs = [...sparse, ...extents(quietDense - 3, page, i => 9 * MiB + (i + 8) * page)]
    assert.deepEqual(foldPlan(xs, 0, true), { all: false, chunks: [9] })
    // not before the file is quiet
    assert.deepEqual(foldPlan(xs).chunks, [])
    // nothing worth rewriting: no chunk
    assert.deepEqual(foldPlan(sparse, 0, true), { all: false, chunks: [] })
  })

  it('most: the densest chunks only, ties by index (a quiet fold\'s batch, FOLD_QUIET_BATCH)', () => {
    // chunk i holds 8 + (i % 3) pages, over FOLD_QUIET_BATCH + 8 chunks of a large file
    const n = FOLD_QUIET_BATCH + 8
    const xs: Array<{ pos: number, size: number }> = []
    for (let i = 0; i < n; i++) xs.push(...extents(8 + (i % 3), page, j => i * MiB + j * 2 * page))
    assert.equal(foldPlan(xs, 0, true).chunks.length, n)
    const batch = foldPlan(xs, 0, true, FOLD_QUIET_BATCH)
    assert.equal(batch.all, false)
    const tens = Array.from({ length: n }, (_, i) => i).filter(i => i % 3 === 2)
    const nines = Array.from({ length: n }, (_, i) => i).filter(i => i % 3 === 1)
    assert.deepEqual(batch.chunks, [...tens, ...nines.slice(0, FOLD_QUIET_BATCH - tens.length)].sort((a, b) => a - b))
  })

  it('FoldTally (foldDue kept up across commits) answers as foldDue as a list grows, is cut, or changes inside', () => {
    const inline = { inline: new Uint8Array(page) }
    const stored = { manifest: CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy') }
    // a seeded generator: the same pieces every run
    let seed = 12345
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n }
    const piece = (fileMiB: number): { pos: number, size: number, content?: Content } => {
      const size = [page, 100, 3 * page, 0, MiB + 17][rand(5)]
      const pos = rand(fileMiB * MiB / page) * page + (rand(4) === 0 ? rand(page) : 0)
      const c = rand(3)
      return c === 0 ? { pos, size, content: inline } : c === 1 ? { pos, size, content: stored } : { pos, size }
    }
    let answers = 0
    let dues = 0
    for (const fileMiB of [2, 16, 256]) {
      const tally = new FoldTally()
      let list: Array<{ pos: number, size: number, content?: Content }> = []
      for (let step = 0; step < 400; step++) {
        const r = rand(40)
        if (r === 0 && list.length > 4) list = list.slice(rand(list.length)) // a fold: a prefix gone
        else if (r === 1 && list.length > 2) { list = list.slice(); list[rand(list.length - 1)] = piece(fileMiB) } // a piece clipped
        else list = [...list, ...Array.from({ length: 1 + rand(40) }, () => piece(fileMiB))] // a commit's extents
        const span = rand(50) === 0 ? FOLD_SPAN_MAX + 1 : list.length
        const want = foldDue(list, span)
        assert.equal(tally.due(list, span), want, `file of ${fileMiB} MiB, step ${step}, ${list.length} pieces`)
        answers++
        if (want) dues++
      }
    }
    // both answers came up often enough to mean something
    assert.ok(dues > 50 && answers - dues > 50, `${dues} due of ${answers}`)
    // a long list whose chunks are none of them dense, then one page more makes a chunk dense
    const tally = new FoldTally()
    const spread = extents(FOLD_EXTENTS_MAX / 2, 100, i => (i % 256) * MiB + Math.floor(i / 256) * page)
    assert.equal(tally.due(spread), false)
    const denser = [...spread, ...extents(Math.ceil(MiB / FOLD_AMPLIFICATION / page), page, i => 7 * MiB + 64 * KiB + i * page).map(x => ({ ...x, content: stored }))]
    assert.equal(tally.due(denser), true)
    assert.equal(tally.due(denser.slice(0, -1)), foldDue(denser.slice(0, -1)))
    // the dense pages clipped away inside the list (a partial fold's cut), its first and last
    // pieces the same: no chunk dense any more
    const tail = extents(1, 100, () => 200 * MiB)
    const before = [...denser, ...tail]
    assert.equal(tally.due(before), true)
    const cut = [...spread, ...denser.slice(spread.length).map((x, i) => ({ pos: (i % 256) * MiB + 40 * page, size: 100, content: stored })), ...tail]
    assert.equal(foldDue(cut), false)
    assert.equal(tally.due(cut), false)
  })
})
