// heldRead (node/tree/crdt.ts): the pieces a file reads over its content, kept with the list's
// head and extended from a recent head's when only extents were added since, are what a read of
// the whole list gives (the same list rebuilt from fresh nodes, so nothing kept applies), for
// lists grown from any earlier head (undo and redo) and read with any fold state (covered, and
// partial folds' held ranges), in any order (property).
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { heldRead } from '../../node/tree/crdt.ts'
import type { ExtNode, Held } from '../../node/tree/crdt.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261203)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))

/** The list `prev` extended by an extent of `size` bytes at `pos` (an append when pos is undefined). */
function push (prev: ExtNode | undefined, base: number, pos: number | undefined, size: number): ExtNode {
  const n = (prev?.n ?? 0) + 1
  const before = base + (prev?.bytes ?? 0)
  const at = pos ?? before
  const end = Math.max(before, at + size)
  const ext = { op: `op${n}-${at}-${size}`, hlc: [n, 0] as [number, number], content: { inline: new Uint8Array(0) }, at: 0, size, pos: at, before, ...(pos === undefined ? {} : { offset: pos }) }
  return { ext, prev, n, bytes: end - base }
}

/** The same list made of new nodes (nothing kept with them). */
function copy (tail: ExtNode | undefined): ExtNode | undefined {
  if (tail === undefined) return undefined
  return { ext: tail.ext, prev: copy(tail.prev), n: tail.n, bytes: tail.bytes }
}

/** Held ranges over [0, span): disjoint, sorted, each holding n in (covered, top]. */
const heldArb = (span: number): fc.Arbitrary<Array<{ cut: number, n: number }>> =>
  fc.array(fc.record({ cut: fc.nat(span), n: fc.nat() }), { maxLength: 5 })

function toHeld (cuts: Array<{ cut: number, n: number }>, covered: number, top: number): Held[] | undefined {
  if (top <= covered) return undefined
  const points = [...new Set(cuts.map(c => c.cut))].sort((a, b) => a - b)
  const out: Held[] = []
  for (let i = 0; i + 1 < points.length; i += 2) out.push({ from: points[i], to: points[i + 1], n: covered + 1 + (cuts[i].n % (top - covered)) })
  return out.length > 0 ? out : undefined
}

describe('node/tree heldRead', () => {
  it('kept and extended reads are what the whole list reads, for any growth and fold state (property)', () => {
    const BASE = 1000
    const step = fc.record({
      from: fc.nat(),
      newest: fc.boolean(),
      pos: fc.option(fc.nat(3000), { nil: undefined }),
      // at least one byte: an extent of none is refused where ops are checked (op.ts checkExtent),
      // and the fold cuts drop what is empty where a kept read's extension would list it
      size: fc.integer({ min: 1, max: 400 }),
      ask: fc.nat(3),
      query: fc.nat(),
      covered: fc.nat(),
      top: fc.nat(),
      held: heldArb(3500)
    })
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 200 }), steps => {
      const heads: ExtNode[] = []
      // fold states reused across queries (the same `held` object, as records keep it)
      const states = new Map<string, Held[] | undefined>()
      for (const s of steps) {
        const prev = heads.length === 0 ? undefined : s.newest ? heads[heads.length - 1] : heads[s.from % heads.length]
        heads.push(push(prev, BASE, s.pos, s.size))
        for (let q = 0; q < s.ask; q++) {
          const head = q === 0 ? heads[heads.length - 1] : heads[(s.query + q) % heads.length]
          const covered = s.covered % (head.n + 1) > head.n / 2 ? 0 : s.covered % (head.n + 1)
          const top = covered + (s.top % (head.n - covered + 1))
          const key = `${covered}:${top}`
          if (!states.has(key)) states.set(key, toHeld(s.held, covered, top))
          const held = states.get(key)
          const size = BASE + head.bytes
          const got = heldRead(head, covered, held, size)
          assert.deepEqual(got, heldRead(copy(head), covered, held, size))
          // asked again: the same pieces
          assert.deepEqual(heldRead(head, covered, held, size), got)
        }
      }
    }), { seed: PROP_SEED, numRuns: 100 * RUNS })
  })
})
