// Footprints of tree ops (crdt.ts `touched`), which let a merge leave applied the local ops that
// commute with the ones it brings (Tree.insert). The invariant that rests on: two ops whose
// footprints (the keys of the tree state each read or changed) are disjoint give the same state
// in either order, each with the same footprint. Checked here on random op sets (the property
// tests' replicas and steps) op pair by op pair, on the whole internal state (every map of the
// TreeState, not only what the Tree shows), and end to end: every delivery order and batching
// leaves the state the fold of every op in total order, with the merge's plan as foreseen
// (TreeState.predict) and with nothing foreseen (every plan fails its check and falls back).
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { Teardown } from '../../harness/tmp.ts'
import { replica, allOps, sync, cidOfBytes } from '../helpers/tree.ts'
import { play, type Step } from '../helpers/tree-play.ts'
import { TreeState, undo } from '../../node/tree/crdt.ts'
import { Dag, type DagNode } from '../../node/tree/dag.ts'
import { decodeOp } from '../../node/tree/op.ts'
import type { Tree } from '../../node/tree/index.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261203)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))

const step = fc.record({ r: fc.nat(3), t: fc.nat(11), a: fc.nat(1000), b: fc.nat(1000), c: fc.nat(1000), dt: fc.nat(3) })
const steps = fc.array(fc.oneof(
  { weight: 5, arbitrary: step },
  { weight: 1, arbitrary: step.map((s): Step => ({ ...s, t: 12 })) },
  { weight: 1, arbitrary: step.map((s): Step => ({ ...s, t: 13 })) },
  { weight: 1, arbitrary: step.map((s): Step => ({ ...s, t: 14 })) }
), { minLength: 5, maxLength: 40 })

/** The maps of a TreeState (all its state). */
const MAPS = ['inodes', 'entries', 'dirs', 'links', 'live', 'subdirs', 'inodeAlias', 'entryAlias', 'versions', 'head', 'conflicts', 'siblingsOf', 'byIno'] as const

/**
 * A value as text, maps and objects by key. The order of a map's keys is how the ops were applied:
 * undoing a delete sets the key again at the end (so since before footprints: readdir lists a
 * directory in that order); no op reads a map in its order.
 */
function text (v: unknown): string {
  if (v === undefined) return 'u'
  if (v === null || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'symbol') return String(v)
  if (v instanceof Uint8Array) return `b${Buffer.from(v).toString('hex')}`
  const cid = CID.asCID(v)
  if (cid !== null) return `c${cid.toString()}`
  if (Array.isArray(v)) return `[${v.map(text).join(',')}]`
  if (v instanceof Map) return `M{${[...v].map(([k, x]) => `${text(k)}:${text(x)}`).sort().join(',')}}`
  const o = v as Record<string, unknown>
  return `{${Object.keys(o).filter(k => o[k] !== undefined).sort().map(k => `${k}:${text(o[k])}`).join(',')}}`
}

/** The whole state as text. */
function dump (s: TreeState): string {
  return MAPS.map(m => {
    const map = s[m] as Map<unknown, unknown>
    return `${m}=` + [...map].map(([k, v]) => `${text(k)}:${text(v)}`).sort().join('\n')
  }).join('\n#\n')
}

/** Every op of a tree, decoded, in total order, in a DAG of their own. */
async function opsOf (tree: Tree): Promise<{ dag: Dag, nodes: DagNode[] }> {
  const ops = await Promise.all([...allOps(tree).values()].map(async b => await decodeOp(b)))
  ops.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  const dag = new Dag()
  // total order respects causality: parents come first
  return { dag, nodes: ops.map(op => dag.add(op, op.id)) }
}

const stateOf = (tree: Tree): TreeState => (tree as unknown as { state: TreeState }).state

/** Deliver blocks in a shuffled order and random batches (a seeded xorshift). */
async function deliver (tree: Tree, blocks: Uint8Array[], seed: number): Promise<void> {
  let x = (seed >>> 0) || 1
  const rand = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x100000000 }
  const list = [...blocks]
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[list[i], list[j]] = [list[j], list[i]]
  }
  while (list.length > 0) await tree.receive(list.splice(0, 1 + Math.floor(rand() * 8)))
}

describe(`node/tree footprints (seed ${PROP_SEED})`, function () {
  this.timeout(180_000 * RUNS)
  before(() => { fc.configureGlobal({ seed: PROP_SEED }) })

  it('two ops whose footprints are disjoint give the same state in either order, with the same footprints', async () => {
    let swapped = 0
    await fc.assert(fc.asyncProperty(steps, fc.integer({ min: 3, max: 4 }), async (list, n) => {
      const t = new Teardown()
      try {
        const reps = await play(t, list, [], n)
        const { dag, nodes } = await opsOf(reps[0].tree)
        const s = new TreeState()
        const undos = []
        const feet: Array<Set<unknown>> = []
        for (let i = 0; i < nodes.length; i++) {
          undos.push(s.apply(nodes[i], dag, true))
          feet.push(new Set(s.footprint))
          if (i === 0 || [...feet[i]].some(k => feet[i - 1].has(k))) continue
          // x then y (total order) against y then x
          const want = dump(s)
          undo(undos[i])
          undo(undos[i - 1])
          const uy = s.apply(nodes[i], dag, true)
          const fy = new Set(s.footprint)
          const ux = s.apply(nodes[i - 1], dag, true)
          const fx = new Set(s.footprint)
          assert.equal(dump(s), want, `ops ${i - 1} (${nodes[i - 1].op.body.type}) and ${i} (${nodes[i].op.body.type}) do not commute`)
          assert.deepEqual(fx, feet[i - 1])
          assert.deepEqual(fy, feet[i])
          // back to total order, for the ops after them
          undo(ux)
          undo(uy)
          undos[i - 1] = s.apply(nodes[i - 1], dag, true)
          undos[i] = s.apply(nodes[i], dag, true)
          swapped++
        }
      } finally {
        await t.run()
      }
    }), { numRuns: 40 * RUNS })
    assert.ok(swapped > 20, `only ${swapped} pairs of ops with disjoint footprints`)
  })

  for (const foresee of [true, false]) {
    it(`every delivery order leaves the state the fold of every op in total order (${foresee ? 'plans foreseen' : 'nothing foreseen: every plan that keeps a conflicting op falls back'})`, async () => {
      const predict = TreeState.prototype.predict
      if (!foresee) TreeState.prototype.predict = () => {}
      let kept = 0
      let fallbacks = 0
      try {
        await fc.assert(fc.asyncProperty(steps, fc.integer({ min: 3, max: 4 }), fc.integer(), async (list, n, seed) => {
          const t = new Teardown()
          try {
            const reps = await play(t, list, [], n)
            for (const r of reps.slice(1)) await sync(r.tree, reps[0].tree)
            const { dag, nodes } = await opsOf(reps[0].tree)
            const s = new TreeState()
            for (const node of nodes) s.apply(node, dag, false)
            const want = dump(s)
            const blocks = [...allOps(reps[0].tree).values()]
            for (const r of [...reps, await replica(t), await replica(t)]) {
              await deliver(r.tree, blocks.filter(b => !r.tree.hasOp(cidOfBytes(b))), seed ^ r.tree.size)
              assert.equal(dump(stateOf(r.tree)), want)
              const st = r.tree.receiveStats()
              kept += st.mergeKept
              fallbacks += st.mergeFallbacks
            }
          } finally {
            await t.run()
          }
        }), { numRuns: 40 * RUNS })
      } finally {
        TreeState.prototype.predict = predict
      }
      assert.ok(kept > 0, 'no merge left an op applied')
      if (!foresee) assert.ok(fallbacks > 0, 'no plan fell back')
    })
  }
})
