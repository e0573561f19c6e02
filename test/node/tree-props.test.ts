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
import { Teardown } from '../../harness/tmp.ts'
import { replica, allOps, snapshot, sync, ls, text } from '../helpers/tree.ts'
import { walk, play, assertNoWriteLost, assertNoLitter, type Step, type Written } from '../helpers/tree-play.ts'
import type { Content, Tree } from '../../node/tree/index.ts'
import { cidOf } from '../../node/data/index.ts'
import { Journal } from '../../node/tree/journal.ts'

/** The same stored form: the same inline bytes or the same manifest block (not merely the same sum). */
function sameStored (a: Content | null, b: Content | null): boolean {
  if (a === null || b === null) return a === b
  if ('inline' in a) return 'inline' in b && Buffer.from(a.inline).equals(b.inline)
  return 'manifest' in b && a.manifest.equals(b.manifest)
}

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
  { weight: 1, arbitrary: step.map((s): Step => ({ ...s, t: 13 })) },
  { weight: 1, arbitrary: step.map((s): Step => ({ ...s, t: 14 })) }
), { minLength: 5, maxLength: 40 })
/** How many replicas play the steps (step.r is taken modulo it). */
const hosts = fc.integer({ min: 3, max: 4 })

/** Mocha's time for one property at the default runs (fast-check shrinks failures within it). */
const PROPERTY_TIMEOUT_MS = 120_000

describe(`node/tree properties (seed ${PROP_SEED})`, function () {
  // every change() the CRDT makes with an old value it read checks that value (journal.ts)
  before(() => { Journal.checking = true })
  after(() => { Journal.checking = false })
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
    }), { seed: PROP_SEED, numRuns: 60 * RUNS })
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
    }), { seed: PROP_SEED, numRuns: 50 * RUNS })
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
    }), { seed: PROP_SEED, numRuns: 50 * RUNS })
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
    }), { seed: PROP_SEED, numRuns: 50 * RUNS })
  })

  it('identical content written at one name on every replica, however made, stored and delivered, is one version and no conflict', async () => {
    // how each replica makes the file: through a mount (an empty create, then the first write
    // of that open), as `put` (a create with the content), or a mount write into a file it got
    // before (a plain write); `gap`: ms its clock moves before; `syncFirst`: it gets the ops of
    // the replica before it first; `store`: which of three manifests holds the bytes (the
    // erasure parameters, holes and manifest version of its moment differ, the sum does not)
    const how = fc.record({ make: fc.constantFrom('mount', 'put'), gap: fc.nat(3), syncFirst: fc.boolean(), store: fc.nat(2) })
    const enc = new TextEncoder()
    const manifests = [0, 1, 2].map(i => cidOf(enc.encode(`a manifest of the same bytes, stored the ${i}th way`), 0x71))
    const sum = cidOf(enc.encode('the listing of the same bytes'))
    await fc.assert(fc.asyncProperty(fc.array(how, { minLength: 2, maxLength: 4 }), fc.constantFrom('inline', 'manifest'), fc.integer(), async (list, kind, seed) => {
      const t = new Teardown()
      try {
        const reps = []
        for (let i = 0; i < list.length; i++) reps.push(await replica(t))
        const size = kind === 'inline' ? 4 : 3_000_000
        const contentOf = (store: number): Content => kind === 'inline' ? { inline: enc.encode('same') } : { manifest: manifests[store], sum }
        for (const [i, h] of list.entries()) {
          const r = reps[i]
          r.clock.ms += h.gap
          // some replicas see what others made before they write (then the file exists for them)
          if (h.syncFirst && i > 0) await sync(reps[i - 1].tree, r.tree)
          const time = BigInt(r.clock.ms) * 1_000_000n
          const content = contentOf(h.store)
          const there = r.tree.lookup(r.tree.root, 'f')
          if (there !== undefined) {
            await r.tree.commit({ type: 'write', inode: there.inode, content, size, time })
          } else if (h.make === 'put') {
            await r.tree.commit({ type: 'create', parent: r.tree.root, name: 'f', kind: 'file', mode: 0o644, uid: 0, gid: 0, content, size, time })
          } else {
            const { id } = await r.tree.commit({ type: 'create', parent: r.tree.root, name: 'f', kind: 'file', mode: 0o644, uid: 0, gid: 0, time })
            r.clock.ms += 1
            await r.tree.commit({ type: 'write', inode: id, content, size, first: true, time: time + 1_000_000n })
          }
        }
        for (let round = 0; round < 2; round++) for (const a of reps) for (const b of reps) if (a !== b) await sync(a.tree, b.tree)
        // snapshot() shows the manifest: every replica references the same one
        const want = snapshot(reps[0].tree)
        for (const r of reps) {
          assert.equal(snapshot(r.tree), want)
          assert.deepEqual(ls(r.tree, '/'), ['f'])
          const c = r.tree.get(r.tree.lookup(r.tree.root, 'f')!.inode)!.content
          if (kind === 'inline') assert.equal(text(r.tree, '/f'), 'same')
          else assert.ok(c !== null && 'manifest' in c && c.sum?.equals(sum) === true && manifests.some(m => m.equals(c.manifest)))
          assert.deepEqual(r.tree.conflicts(), [])
        }
        const fresh = await replica(t)
        await deliver(fresh.tree, [...allOps(reps[0].tree).values()], seed)
        assert.equal(snapshot(fresh.tree), want)
        // no empty version of a create its first write filled; made concurrently (nobody saw
        // another's file before writing), one version; a rewrite after seeing it is a version
        const f = reps[0].tree.lookup(reps[0].tree.root, 'f')!
        const history = reps[0].tree.history(f.inode)
        const sizes = history.map(v => v.size)
        assert.ok(sizes.every(n => n === size), `history sizes ${sizes.join(' ')}`)
        if (list.every((h, i) => i === 0 || !h.syncFirst)) {
          assert.equal(sizes.length, 1)
          // the one version shown is the one in history: its manifest, not another's
          assert.ok(sameStored(reps[0].tree.get(f.inode)!.content, history[0].content), 'the file shows the manifest of its one version')
        }
      } finally {
        await t.run()
      }
    }), { seed: PROP_SEED, numRuns: 80 * RUNS })
  })

  it('appends and writes on several replicas, any delivery order: every replica reads the same bytes and no append is lost', async () => {
    // one file, made on replica 0 and known to all; then each step on replica r: an append of a
    // token (an O_APPEND commit), a whole-file write of what r reads plus a token (as a host that
    // saw the appends rewrites the file), a fold of some of r's appends (a compaction), or an
    // exchange of ops with another replica (partitions come and go)
    const act = fc.record({ r: fc.nat(3), what: fc.constantFrom('append', 'append', 'append', 'write', 'fold', 'sync', 'sync'), to: fc.nat(3), part: fc.nat(4), dt: fc.nat(2) })
    const enc = new TextEncoder()
    const dec = new TextDecoder()
    await fc.assert(fc.asyncProperty(fc.array(act, { minLength: 4, maxLength: 40 }), fc.integer({ min: 2, max: 4 }), fc.integer(), async (list, n, seed) => {
      const t = new Teardown()
      try {
        const reps = []
        for (let i = 0; i < n; i++) reps.push(await replica(t))
        const made = await reps[0].tree.commit({ type: 'create', parent: reps[0].tree.root, name: 'f', kind: 'file', mode: 0o644, uid: 0, gid: 0, time: BigInt(reps[0].clock.ms) * 1_000_000n })
        for (const r of reps.slice(1)) await sync(reps[0].tree, r.tree)
        const read = (tree: Tree): string => {
          const inode = tree.get(tree.lookup(tree.root, 'f')!.inode)!
          let out = inode.content === null ? '' : dec.decode((inode.content as { inline: Uint8Array }).inline)
          for (const x of inode.extents ?? []) out += dec.decode((x.content as { inline: Uint8Array }).inline.subarray(x.at, x.at + x.size))
          assert.equal(enc.encode(out).byteLength, inode.size)
          return out
        }
        const appended: string[][] = reps.map(() => [])
        let k = 0
        for (const a of list) {
          const r = reps[a.r % n]
          r.clock.ms += a.dt
          const time = BigInt(r.clock.ms) * 1_000_000n
          const inode = r.tree.lookup(r.tree.root, 'f')!.inode
          if (a.what === 'append') {
            const token = `<${a.r % n}.${k++}>`
            appended[a.r % n].push(token)
            const bytes = enc.encode(token)
            await r.tree.commit({ type: 'append', inode, content: { inline: bytes }, at: 0, size: bytes.byteLength, time })
          } else if (a.what === 'write') {
            const bytes = enc.encode(read(r.tree) + `[w${k++}]`)
            await r.tree.commit({ type: 'write', inode, content: { inline: bytes }, size: bytes.byteLength, time })
          } else if (a.what === 'fold') {
            const fp = r.tree.foldPoint(inode)
            if (fp === undefined) continue
            const j = 1 + (a.part % fp.extents.length)
            let text = fp.content === null ? '' : dec.decode((fp.content as { inline: Uint8Array }).inline)
            for (const x of fp.extents.slice(0, j)) text += dec.decode((x.content as { inline: Uint8Array }).inline)
            const bytes = enc.encode(text)
            await r.tree.commit({ type: 'fold', inode, base: fp.base, covers: fp.covered + j, content: bytes.byteLength === 0 ? null : { inline: bytes }, size: bytes.byteLength, time })
          } else if (a.to % n !== a.r % n) {
            await sync(r.tree, reps[a.to % n].tree)
          }
        }
        for (let round = 0; round < 2; round++) for (const a of reps) for (const b of reps) if (a !== b) await sync(a.tree, b.tree)
        const want = read(reps[0].tree)
        for (const r of reps) assert.equal(read(r.tree), want)
        const blocks = [...allOps(reps[0].tree).values()]
        for (const s of [seed, seed ^ 0x5bd1e995]) {
          const fresh = await replica(t)
          await deliver(fresh.tree, blocks, s)
          assert.equal(read(fresh.tree), want)
          assert.equal(snapshot(fresh.tree), snapshot(reps[0].tree))
        }
        // every append is in the file exactly once (a write holds those it saw, the others come
        // after it), and one replica's appends in the order it made them
        for (const tokens of appended) {
          let at = -1
          for (const token of tokens) {
            const i = want.indexOf(token)
            assert.ok(i >= 0, `append ${token} lost: ${want}`)
            assert.equal(want.indexOf(token, i + 1), -1, `append ${token} twice: ${want}`)
            assert.ok(i > at, `append ${token} out of its writer's order: ${want}`)
            at = i
          }
        }
        assert.ok(made.id !== undefined)
      } finally {
        await t.run()
      }
    }), { seed: PROP_SEED, numRuns: 80 * RUNS })
  })
})
