// The op DAG finds its ops through its id table's numbers (node/tree/dag.ts, ids.ts): for any
// run of adds (new ops, ops added again, ids that share their last characters or differ only in
// length, strings the table keeps that are no op's, like ROOT), the DAG answers as a plain
// Map/Set model does: has/get/size, every node in the order it was first added, the heads (the
// parents out, then the op in, in place when a head already) in order (past FEW_HEADS too: up to
// 81 authors' chains), and each op's clock (its
// authors' ops in its causal past, walked out). Lookups of ids never added, sharing an added
// id's tail, miss.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Dag, type DagNode } from '../../node/tree/dag.ts'
import { cidOf } from '../../node/tree/op.ts'
import type { Op } from '../../node/tree/types.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261207)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))
const enc = new TextEncoder()

function op (id: string, author: string, parentIds: string[]): Op {
  return { id, author, parentIds, hlc: [0, 0] } as unknown as Op
}

// ids crowding few hash chains: a prefix (of several lengths, some the same length) and one of
// a few 12-char tails (the characters the table hashes), or a real op CID, or a short one
const TAILS = ['aaaaaaaaaaaa', 'bafyreiqwxyz', 'zzzzzzzzzzz2', '234567abcdef']
const idArb = fc.oneof(
  fc.tuple(fc.stringMatching(/^[a-z2-7]{0,6}$/), fc.constantFrom(...TAILS)).map(([p, t]) => p + t),
  fc.nat(300).map(n => cidOf(enc.encode(`op${n}`)).toString()),
  fc.stringMatching(/^[a-z0-9]{1,14}$/)
)
const stepArb = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('add' as const), id: idArb, author: fc.oneof(fc.nat(3), fc.nat(80)), also: fc.array(fc.nat(500), { maxLength: 2 }), dup: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('again' as const), pick: fc.nat(500), fresh: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('keep' as const), id: idArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('miss' as const), id: idArb }) }
)

describe('node/tree DAG lookups through id numbers', () => {
  it('has/get/size/nodes/heads/clocks are a Map/Set model\'s, for any adds (property)', () => {
    fc.assert(fc.property(fc.array(stepArb, { minLength: 1, maxLength: 200, size: 'max' }), steps => {
      const dag = new Dag()
      dag.ids.add('ROOT')
      const model = new Map<string, { author: string, parents: string[], node: DagNode }>()
      const heads = new Map<string, true>()
      const last = new Map<string, string>()
      const misses = new Set<string>(['ROOT'])
      for (const s of steps) {
        if (s.kind === 'add') {
          if (model.has(s.id) || misses.has(s.id)) continue
          const author = `author${s.author}`
          const parents = new Set<string>()
          const prev = last.get(author)
          if (prev !== undefined) parents.add(prev)
          const known = [...model.keys()]
          for (const k of s.also) if (known.length > 0) parents.add(known[k % known.length])
          const ps = [...parents]
          if (s.dup && ps.length > 0) ps.push(ps[0])
          // the parents passed as fresh strings (as a decoder makes them): found by their characters
          const node = dag.add(op(s.id, author, ps.map(p => p.split('').join(''))), s.id.split('').join(''))
          model.set(s.id, { author, parents: [...parents], node })
          for (const p of ps) heads.delete(p)
          heads.set(s.id, true)
          last.set(author, s.id)
        } else if (s.kind === 'again') {
          // added again (Dag.add does not refuse it; the tree asks has() first): one node still
          const known = [...model.keys()]
          if (known.length === 0) continue
          const id = known[s.pick % known.length]
          const m = model.get(id) as { author: string, parents: string[], node: DagNode }
          const before = m.node
          const node = dag.add(op(id, m.author, [...m.parents]), id)
          assert.equal(node.seq, before.seq)
          m.node = node
          for (const p of m.parents) heads.delete(p)
          heads.set(id, true)
        } else if (s.kind === 'keep') {
          // a string the table keeps that is no op's (ROOT): no node
          if (model.has(s.id)) continue
          dag.ids.add(s.id)
          misses.add(s.id)
        } else if (!model.has(s.id)) {
          misses.add(s.id)
        }
        assert.equal(dag.size, model.size)
        assert.deepEqual(dag.nodes().map(n => n.id), [...model.keys()])
        assert.deepEqual(dag.heads(), [...heads.keys()])
        for (const [id, m] of model) {
          const copy = id.split('').join('')
          assert.ok(dag.has(copy), id)
          assert.equal(dag.get(copy), m.node, id)
          assert.equal(m.node.id, id)
        }
        for (const id of misses) {
          assert.equal(dag.has(id), false, id)
          assert.equal(dag.get(id.split('').join('')), undefined, id)
        }
      }
      // each op's clock: its authors' ops in its causal past, walked out through the model
      const past = (id: string): Set<string> => {
        const out = new Set<string>()
        const todo = [id]
        while (todo.length > 0) {
          const x = todo.pop() as string
          if (out.has(x)) continue
          out.add(x)
          todo.push(...(model.get(x)?.parents ?? []))
        }
        return out
      }
      for (const [id, m] of model) {
        const p = [...past(id)]
        for (let a = 0; a <= 80; a++) {
          const author = `author${a}`
          assert.equal(dag.seen(m.node, author), p.filter(x => model.get(x)?.author === author).length, `${id} ${author}`)
        }
      }
    }), { seed: PROP_SEED, numRuns: 300 * RUNS })
  })
})
