// Tree.liveContents (what keeper/retained.ts retainedContents lists for GC and repair) read from
// the tree's records: the same contents, the same objects, in the same order, as the walk it
// replaced made through the tree's copying accessors (children(), get(), contents(),
// versionContents()). Checked as a property over trees that replicas made concurrently (moves,
// unlinks, hard links, conflict siblings, resolutions, rewrites), at several retention horizons.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Teardown } from '../../harness/tmp.ts'
import { play, type Step } from '../helpers/tree-play.ts'
import type { Content, InodeId, Tree } from '../../node/tree/index.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261207)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))

/** The walk retainedContents made before Tree.liveContents (keeper/retained.ts at 3c14423). */
function copyingWalk (tree: Tree, horizon: bigint): Content[] {
  const out: Content[] = []
  const stack: InodeId[] = [tree.root]
  const seen = new Set<InodeId>()
  while (stack.length > 0) {
    const dir = stack.pop()!
    for (const e of tree.children(dir)) {
      if (seen.has(e.inode)) continue
      seen.add(e.inode)
      const inode = tree.get(e.inode)
      if (inode === undefined) continue
      if (inode.kind === 'dir') { stack.push(inode.id); continue }
      if (inode.kind !== 'file') { if (inode.content !== null) out.push(inode.content); continue }
      out.push(...tree.contents(inode.id))
      out.push(...tree.versionContents(inode.id, horizon))
    }
  }
  return out
}

/** Every version time of every live file (horizons at which versions drop out of the list). */
function versionTimes (tree: Tree): bigint[] {
  const times = new Set<bigint>()
  const stack: InodeId[] = [tree.root]
  while (stack.length > 0) {
    for (const e of tree.children(stack.pop()!)) {
      const inode = tree.get(e.inode)
      if (inode?.kind === 'dir') stack.push(inode.id)
      else if (inode?.kind === 'file') for (const v of tree.history(inode.id)) times.add(v.time)
    }
  }
  return [...times].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
}

const step = fc.record({ r: fc.nat(3), t: fc.nat(14), a: fc.nat(1000), b: fc.nat(1000), c: fc.nat(1000), dt: fc.nat(3) })

describe(`Tree.liveContents (seed ${PROP_SEED})`, function () {
  this.timeout(120_000 * RUNS)

  it('lists what the copying walk listed: the same content objects in the same order, at any horizon', async () => {
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: 40 }), fc.integer({ min: 2, max: 3 }), fc.nat(), async (list: Step[], n, pick) => {
      const t = new Teardown()
      try {
        const reps = await play(t, list, [], n)
        for (const r of reps) {
          const times = versionTimes(r.tree)
          const horizons = [0n, times[pick % Math.max(1, times.length)] ?? 0n, (times.at(-1) ?? 0n) + 1n]
          for (const h of horizons) {
            const want = copyingWalk(r.tree, h)
            const got = r.tree.liveContents(h)
            assert.equal(got.length, want.length, `horizon ${h}`)
            for (let i = 0; i < want.length; i++) assert.ok(got[i] === want[i], `content ${i} at horizon ${h}`)
          }
        }
      } finally {
        await t.run()
      }
    }), { seed: PROP_SEED, numRuns: 40 * RUNS })
  })
})
