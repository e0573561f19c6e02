// TailIndex (node/tree/tail-index.ts): the extents of a file's list that meet a byte range, found
// through the index, are exactly those the walk of the whole list finds, in the same order
// (newest first), for any extents (small and huge, overlapping, empty) and any range; also as
// lists grow from older heads (the index moves between heads, or is built anew), as undo and redo
// make them (property, against the walk).
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { TailIndex, meeting, INDEX_FROM } from '../../node/tree/tail-index.ts'
import type { ExtNode } from '../../node/tree/crdt.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261203)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))

/** The list `prev` extended by an extent of `size` bytes at `pos`. */
function push (prev: ExtNode | undefined, pos: number, size: number): ExtNode {
  const n = (prev?.n ?? 0) + 1
  return { ext: { op: `op${n}-${pos}`, hlc: [n, 0], content: { inline: new Uint8Array(0) }, at: 0, size, offset: pos, pos, before: 0 }, prev, n, bytes: 0 }
}

/** The walk: every node of the list meeting [lo, hi), newest first. */
function walk (tail: ExtNode | undefined, lo: number, hi: number): ExtNode[] {
  const out: ExtNode[] = []
  for (let x = tail; x !== undefined; x = x.prev) {
    if (Math.max(lo, x.ext.pos) < Math.min(hi, x.ext.pos + x.ext.size)) out.push(x)
  }
  return out
}

// positions and sizes over several of the index's scales: 64 KiB buckets, and 4x wider each level
const MiB = 1 << 20
const extentArb = fc.oneof(
  fc.record({ pos: fc.nat(4 * MiB), size: fc.integer({ min: 0, max: 8192 }) }),
  fc.record({ pos: fc.nat(4 * MiB), size: fc.integer({ min: 0, max: 2 * MiB }) }),
  fc.record({ pos: fc.nat(2 ** 40), size: fc.integer({ min: 1, max: 2 ** 30 }) })
)
const rangeArb = fc.oneof(
  fc.tuple(fc.nat(5 * MiB), fc.integer({ min: 0, max: 65536 })),
  fc.tuple(fc.nat(5 * MiB), fc.integer({ min: 0, max: 4 * MiB })),
  fc.tuple(fc.nat(2 ** 40), fc.integer({ min: 0, max: 2 ** 32 }))
).map(([lo, len]) => [lo, lo + len] as const)

describe('node/tree TailIndex', () => {
  it('meets what the walk meets, newest first, for any extents and range (property)', () => {
    fc.assert(fc.property(
      fc.array(extentArb, { maxLength: 120 }),
      fc.array(rangeArb, { minLength: 1, maxLength: 8 }),
      (list, ranges) => {
        let tail: ExtNode | undefined
        for (const x of list) tail = push(tail, x.pos, x.size)
        for (const [lo, hi] of ranges) {
          const want = walk(tail, lo, hi)
          assert.deepEqual(meeting(tail, lo, hi), want)
          // the index itself, also on lists too short for meeting() to use it
          if (tail !== undefined) assert.deepEqual(TailIndex.of(tail).meeting(lo, hi), want)
        }
      }
    ), { seed: PROP_SEED, numRuns: 200 * RUNS })
  })

  it('stays exact as lists grow from any earlier head, queried at any point (property)', () => {
    // each step extends some earlier head (the newest mostly: growth; an older one: an undo and
    // a redo of other ops), then queries one of the heads made so far
    const step = fc.record({ from: fc.nat(), newest: fc.boolean(), ext: extentArb, query: fc.nat(), range: rangeArb, ask: fc.boolean() })
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 300 }), steps => {
      const heads: ExtNode[] = []
      for (const s of steps) {
        const prev = heads.length === 0 ? undefined : s.newest ? heads[heads.length - 1] : heads[s.from % heads.length]
        heads.push(push(prev, s.ext.pos, s.ext.size))
        if (!s.ask) continue
        const head = heads[s.query % heads.length]
        const [lo, hi] = s.range
        assert.deepEqual(TailIndex.of(head).meeting(lo, hi), walk(head, lo, hi))
      }
    }), { seed: PROP_SEED, numRuns: 60 * RUNS })
  })

  it('finds the extents meeting a 4 KiB page among thousands of scattered ones', () => {
    let tail: ExtNode | undefined
    const pages = 8192
    for (let i = 0; i < pages; i++) tail = push(tail, ((i * 7919) % pages) * 4096, 4096)
    assert.ok((tail as ExtNode).n > INDEX_FROM)
    // page p was written by node i with i * 7919 = p (mod pages); plus a write over two pages
    tail = push(tail, 4096 * 10 + 2048, 4096)
    const got = meeting(tail, 4096 * 10, 4096 * 11)
    assert.deepEqual(got, walk(tail, 4096 * 10, 4096 * 11))
    assert.equal(got.length, 2)
    assert.equal(got[0], tail)
  })
})
