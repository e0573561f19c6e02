// Property tests of the tree CRDT (fast-check): replicas making ops concurrently under random
// partitions converge; any delivery order of the same op set gives the same tree; no write is
// lost; no cycles, no orphans.
import assert from 'node:assert/strict'
import fc from 'fast-check'

// Property runs are seeded so CI is repeatable: DARKFS_PROP_SEED=<n> replays a seed, and
// DARKFS_PROP_SEED=random draws a new one; DARKFS_PROP_RUNS=<n> multiplies the runs of each
// property (default 1). Counterexamples found so far are replayed in tree-regress.test.ts.
const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261121)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))
fc.configureGlobal({ seed: PROP_SEED })
import { Teardown } from '../../harness/tmp.ts'
import { replica, allOps, snapshot } from '../helpers/tree.ts'
import { walk, play, assertNoWriteLost, assertNoLitter, type Step, type Written } from '../helpers/tree-play.ts'
import type { Tree } from '../../node/tree/index.ts'

const step = fc.record({
  r: fc.nat(3),
  t: fc.nat(11),
  a: fc.nat(1000),
  b: fc.nat(1000),
  c: fc.nat(1000),
  dt: fc.nat(3)
})

/** A small deterministic PRNG for delivery orders. */
function rng (seed: number): () => number {
  let x = (seed >>> 0) || 1
  return () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x / 0x100000000
  }
}

/** Deliver blocks to a tree in a shuffled order, in random batch sizes. */
async function deliver (tree: Tree, blocks: Uint8Array[], seed: number): Promise<void> {
  const rand = rng(seed)
  const list = [...blocks]
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[list[i], list[j]] = [list[j], list[i]]
  }
  let missing = 0
  while (list.length > 0) {
    const batch = list.splice(0, 1 + Math.floor(rand() * 5))
    missing = (await tree.receive(batch)).missing.length
  }
  assert.equal(missing, 0)
}

/** User ops, with syncs (t 12) and resolutions of conflict siblings (t 13) mixed in. */
const steps = fc.array(fc.oneof(
  { weight: 5, arbitrary: step },
  { weight: 1, arbitrary: step.map((s): Step => ({ ...s, t: 12 })) },
  { weight: 1, arbitrary: step.map((s): Step => ({ ...s, t: 13 })) }
), { minLength: 5, maxLength: 40 })
/** How many replicas play the steps (step.r is taken modulo it). */
const hosts = fc.integer({ min: 3, max: 4 })

/** Mocha's time for one property at the default runs (fast-check shrinks failures within it). */
const PROPERTY_TIMEOUT_MS = 120_000

describe(`node/tree properties (seed ${PROP_SEED})`, function () {
  this.timeout(PROPERTY_TIMEOUT_MS * RUNS)
  it('3 or 4 replicas under random partitions converge, and every delivery order gives the same tree', async () => {
    await fc.assert(fc.asyncProperty(steps, hosts, fc.integer(), async (list, n, seed) => {
      const t = new Teardown()
      try {
        const reps = await play(t, list, [], n)
        const want = snapshot(reps[0].tree)
        for (const r of reps.slice(1)) assert.equal(snapshot(r.tree), want)
        const blocks = [...allOps(reps[0].tree).values()]
        const fresh = await replica(t)
        await deliver(fresh.tree, blocks, seed)
        assert.equal(snapshot(fresh.tree), want)
        const again = await replica(t)
        await deliver(again.tree, blocks, seed ^ 0x5bd1e995)
        assert.equal(snapshot(again.tree), want)
      } finally {
        await t.run()
      }
    }), { numRuns: 60 * RUNS })
  })

  it('no write is lost: every version is in history(), every unsuperseded one is visible', async () => {
    await fc.assert(fc.asyncProperty(steps, hosts, async (list, n) => {
      const t = new Teardown()
      try {
        const written: Written[] = []
        const reps = await play(t, list, written, n)
        assertNoWriteLost(reps[0].tree, written)
      } finally {
        await t.run()
      }
    }), { numRuns: 50 * RUNS })
  })

  it('merges never litter: no conflict of a conflict, no copy of a conflict, no second name for one file', async () => {
    await fc.assert(fc.asyncProperty(steps, async (list) => {
      const t = new Teardown()
      try {
        const reps = await play(t, list, [])
        assertNoLitter(reps[0].tree)
      } finally {
        await t.run()
      }
    }), { numRuns: 50 * RUNS })
  })

  it('no cycles and no orphans: every live entry has a path from the root', async () => {
    await fc.assert(fc.asyncProperty(steps, async (list) => {
      const t = new Teardown()
      try {
        const reps = await play(t, list, [])
        const tree = reps[0].tree
        snapshot(tree) // throws on a directory reachable twice or a cycle
        const reachable = new Set(walk(tree).map(x => x.e.id))
        for (const [cid] of allOps(tree)) {
          const inode = tree.get(cid)
          if (inode === undefined || inode.id !== cid) continue
          for (const e of tree.entries(cid)) {
            assert.ok(tree.path(e.id) !== undefined, `live entry ${e.id} has no path`)
            assert.ok(reachable.has(e.id), `live entry ${e.id} is not reachable from the root`)
          }
          if (inode.kind === 'dir') assert.equal(inode.nlink > 0, tree.path(cid) !== undefined)
        }
      } finally {
        await t.run()
      }
    }), { numRuns: 50 * RUNS })
  })
})
