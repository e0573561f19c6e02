// The op DAG's vector clocks (node/tree/dag.ts): for any DAG of ops by a few authors, each
// author's ops a chain (each names its author's previous op, as hosts stamp them), an op's clock
// counts the ops of each author in its causal past, itself included (property, against the
// ancestors walked out); before() and concurrent() follow from it, and the heads are the ops no
// op names, in the order they were added.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Dag, Heads, nextHeads } from '../../node/tree/dag.ts'
import type { Op, Signer } from '../../node/tree/types.ts'
import { createOp } from '../../node/tree/op.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261203)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))

/** An op with what the DAG reads: its id, author and parents. */
function op (id: string, author: string, parentIds: string[]): Op {
  return { id, author, parentIds, hlc: [0, 0] } as unknown as Op
}

// each step: its author, and which earlier ops it names beside its author's previous one
const step = fc.record({ author: fc.nat(3), also: fc.array(fc.nat(200), { maxLength: 3 }) })

describe('node/tree DAG vector clocks', () => {
  it('an op\'s clock counts each author\'s ops in its causal past (property)', () => {
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), steps => {
      const dag = new Dag()
      const made: Array<{ id: string, author: string, parents: string[] }> = []
      const last = new Map<string, string>()
      for (let i = 0; i < steps.length; i++) {
        const author = `author${steps[i].author}`
        const parents = new Set<string>()
        const prev = last.get(author)
        if (prev !== undefined) parents.add(prev)
        for (const k of steps[i].also) if (made.length > 0) parents.add(made[k % made.length].id)
        const id = `op${i}`
        dag.add(op(id, author, [...parents]))
        made.push({ id, author, parents: [...parents] })
        last.set(author, id)
      }
      const byId = new Map(made.map(m => [m.id, m]))
      const past = (id: string): Set<string> => {
        const out = new Set<string>()
        const todo = [id]
        while (todo.length > 0) {
          const x = todo.pop() as string
          if (out.has(x)) continue
          out.add(x)
          todo.push(...(byId.get(x)?.parents ?? []))
        }
        return out
      }
      const pasts = new Map(made.map(m => [m.id, past(m.id)]))
      for (const m of made) {
        const node = dag.get(m.id)
        assert.ok(node !== undefined)
        for (let a = 0; a < 4; a++) {
          const author = `author${a}`
          const want = [...(pasts.get(m.id) as Set<string>)].filter(x => byId.get(x)?.author === author).length
          assert.equal(dag.seen(node, author), want, `${m.id} saw ${want} of ${author}'s ops`)
        }
      }
      for (const x of made) {
        for (const y of made) {
          const a = dag.get(x.id)
          const b = dag.get(y.id)
          if (a === undefined || b === undefined) continue
          const want = x.id !== y.id && (pasts.get(y.id) as Set<string>).has(x.id)
          assert.equal(dag.before(a, b), want, `${x.id} before ${y.id}`)
        }
      }
      // the heads in the order they were added (sync sends the first MAX_CIDS of them)
      const named = new Set(made.flatMap(m => m.parents))
      assert.deepEqual(dag.heads(), made.map(m => m.id).filter(id => !named.has(id)))
    }), { seed: PROP_SEED, numRuns: 150 * RUNS })
  })

  it('an op the tree makes is its own node; added to a second DAG, it gets a node of its own there', async () => {
    const signers: Signer[] = ['A', 'B', 'C'].map(a => ({ author: `12D3KooW${a}`, sign: async () => new Uint8Array(64).fill(1) }))
    const ops: Op[] = []
    // a chain of A, then B and C each naming the last op, then A naming all heads
    ops.push(await createOp(signers[0], { type: 'setattr', inode: 'root', mode: 0o700, time: 1n }, [1, 0], []))
    ops.push(await createOp(signers[1], { type: 'setattr', inode: 'root', mode: 0o701, time: 2n }, [2, 0], [ops[0].cid]))
    ops.push(await createOp(signers[2], { type: 'setattr', inode: 'root', mode: 0o702, time: 3n }, [3, 0], [ops[1].cid]))
    ops.push(await createOp(signers[0], { type: 'setattr', inode: 'root', mode: 0o703, time: 4n }, [4, 0], [ops[2].cid]))
    const one = new Dag()
    for (const op of ops) assert.equal(one.add(op), op)
    const two = new Dag()
    // the second DAG numbers the authors the other way round
    two.add({ id: 'x', author: '12D3KooWC', parentIds: [], hlc: [0, 0] } as unknown as Op)
    two.add({ id: 'y', author: '12D3KooWB', parentIds: [], hlc: [0, 0] } as unknown as Op)
    for (const op of ops) {
      const n = two.add(op)
      assert.notEqual(n, op)
      assert.equal(n.op, op)
    }
    for (const [dag, name] of [[one, 'one'], [two, 'two']] as const) {
      const last = dag.get(ops[3].id)
      assert.ok(last !== undefined)
      assert.deepEqual(signers.map(s => dag.seen(last, s.author)), [2, 1, 1], name)
      assert.equal(last.seq, 2)
      assert.ok(dag.before(dag.get(ops[0].id)!, last))
      assert.ok(!dag.before(last, dag.get(ops[2].id)!))
    }
  })

  it('nextHeads and Heads leave the heads a delete of the parents then an add leaves, in order (property)', () => {
    // each step names some of the heads (all of them often: a chain), and maybe ops that are no
    // head, and maybe one parent twice (Dag.add does not refuse it: the decoders do)
    const steps = fc.array(fc.record({ all: fc.boolean(), dup: fc.boolean(), pick: fc.array(fc.nat(20), { maxLength: 4 }), gone: fc.array(fc.nat(200), { maxLength: 2 }) }), { minLength: 1, maxLength: 80 })
    fc.assert(fc.property(steps, ss => {
      // arrays up to the default FEW_HEADS, and a small `few` that goes to its Map and back
      const tips = new Heads<number>()
      const small = new Heads<number>(2)
      let heads = new Map<string, number>()
      const want = new Map<string, number>()
      for (let i = 0; i < ss.length; i++) {
        const now = [...want.keys()]
        const parents = new Set<string>(ss[i].all ? now : ss[i].pick.filter(k => now.length > 0).map(k => now[k % now.length]))
        for (const g of ss[i].gone) if (g < i && !want.has(`op${g}`)) parents.add(`op${g}`)
        const id = `op${i}`
        const ps = [...parents]
        if (ss[i].dup && ps.length > 0) ps.push(ps[0])
        for (const p of ps) want.delete(p)
        want.set(id, i)
        tips.add(ps, id, i)
        small.add(ps, id, i)
        heads = nextHeads(heads, ps, id, i)
        assert.deepEqual(tips.keys(), [...want.keys()])
        assert.equal(tips.size, want.size)
        for (const [k, v] of want) assert.equal(tips.get(k), v)
        assert.equal(tips.get(`op${i + 1}`), undefined)
        assert.deepEqual(small.keys(), [...want.keys()])
        assert.equal(small.size, want.size)
        for (const [k, v] of want) assert.equal(small.get(k), v)
        assert.deepEqual([...heads], [...want])
      }
    }), { seed: PROP_SEED, numRuns: 200 * RUNS })
  })
})

