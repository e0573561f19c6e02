// Property tests of the tree CRDT under partitions (issue 16): hosts share a small tree, split
// into two sides, and each side renames the same file to different names, writes what the
// other deletes, renames what the other deletes, writes one file on both sides (conflict
// siblings) and crosses moves of two dirs, with partial anti-entropy inside each side (a random
// subset of a peer's ops, in any order, duplicated) and restarts (the tree reopened from its
// op log). After the heal every host holds the same op set and shows the same tree, and fresh
// replicas fed every op in any order, duplicated, in random batches, show it too.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Teardown } from '../../harness/tmp.ts'
import { Tree, treeDigest, type InodeId, type OpBody } from '../../node/tree/index.ts'
import { replica, allOps, snapshot, resolve, cidOfBytes, verify, type Replica } from '../helpers/tree.ts'
import { walk } from '../helpers/tree-play.ts'
import { Journal } from '../../node/tree/journal.ts'

// seeded like tree-props.test.ts: DARKFS_PROP_SEED=<n> replays, =random draws, DARKFS_PROP_RUNS multiplies
const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261216)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))
const PROPERTY_TIMEOUT_MS = 180_000
const enc = new TextEncoder()

/** A small deterministic PRNG (xorshift32). */
function rng (seed: number): () => number {
  let x = (seed >>> 0) || 1
  return () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x / 0x100000000
  }
}

function shuffle<T> (list: T[], rand: () => number): T[] {
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

/**
 * Deliver `blocks` to `tree` in random batches, shuffled, some twice; returns the parents still
 * missing at the end (none when `blocks` is closed under ancestry over what `tree` holds).
 */
async function deliver (tree: Tree, blocks: Uint8Array[], rand: () => number): Promise<number> {
  const list = shuffle([...blocks, ...blocks.filter(() => rand() < 0.3)], rand)
  let missing = 0
  while (list.length > 0) missing = (await tree.receive(list.splice(0, 1 + Math.floor(rand() * 4)))).missing.length
  return missing
}

/** What a host does in one step of the partition. */
const action = fc.record({
  /** which host of its side acts */
  h: fc.nat(4),
  /** 0-1 write, 2 unlink, 3-4 rename, 5 move a dir into the other, 6 partial sync, 7 full sync, 8 restart, 9 create */
  t: fc.nat(9),
  a: fc.nat(1000),
  b: fc.nat(1000),
  dt: fc.nat(3)
})

type Action = { h: number, t: number, a: number, b: number, dt: number }

const FILES = ['same', 'delwrite', 'ren', 'other']
const RENAMES = ['renA', 'renB', 'ren', 'same', 'new']
const TEXTS = ['x', 'y', 'z']

/** The user's op for an action on this host's view, or null. */
function choose (tree: Tree, s: { t: number, a: number, b: number }, time: bigint): OpBody | null {
  const all = walk(tree)
  const files = all.filter(x => x.kind === 'file')
  const dirs = all.filter(x => x.kind === 'dir')
  const parents: InodeId[] = [tree.root, ...dirs.map(d => d.e.inode)]
  switch (s.t) {
    case 0: case 1: {
      if (files.length === 0) return null
      const f = files[s.a % files.length].e
      const text = TEXTS[s.b % TEXTS.length]
      return { type: 'write', inode: f.inode, content: { inline: enc.encode(text) }, size: text.length, time }
    }
    case 2: {
      if (files.length === 0) return null
      return { type: 'unlink', entry: files[s.a % files.length].e.id, time }
    }
    case 3: case 4: {
      if (files.length === 0) return null
      const f = files[s.a % files.length].e
      const dir = parents[(s.b >> 3) % parents.length]
      const name = RENAMES[s.b % RENAMES.length]
      const there = tree.lookup(dir, name)
      if (there !== undefined && (there.id === f.id || tree.get(there.inode)?.kind === 'dir')) return null
      return { type: 'move', entry: f.id, parent: dir, name, ...(there !== undefined ? { replace: there.id } : {}), time }
    }
    case 5: {
      if (dirs.length < 2) return null
      const d = dirs[s.a % dirs.length].e
      const into = dirs[s.b % dirs.length].e
      if (d.id === into.id || tree.lookup(into.inode, d.name) !== undefined) return null
      return { type: 'move', entry: d.id, parent: into.inode, name: d.name, time }
    }
    default: {
      const dir = parents[s.a % parents.length]
      const name = FILES[s.b % FILES.length]
      if (tree.lookup(dir, name) !== undefined) return null
      const text = TEXTS[(s.b >> 2) % TEXTS.length]
      return { type: 'create', parent: dir, name, kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: enc.encode(text) }, size: text.length, time }
    }
  }
}

interface Host { r: Replica }

/** Reopen a host's tree from its op log (a restart; a kill -9 after the last fsync is the same). */
async function restart (t: Teardown, h: Host): Promise<void> {
  await h.r.tree.close()
  const clock = h.r.clock
  h.r = { ...h.r, tree: await Tree.open({ dir: h.r.dir, signer: h.r.signer, verify, now: () => clock.ms }) }
  const tree = h.r.tree
  t.add(async () => { await tree.close() })
}

/** Send `from` every op `to` lacks (ops held for parents another host has may stay held). */
async function full (from: Tree, to: Tree): Promise<number> {
  return (await to.receive([...allOps(from).values()].filter(b => !to.hasOp(cidOfBytes(b))))).missing.length
}

/** Send `from` a random subset of the ops `to` lacks (any order, some twice): partial anti-entropy. */
async function partial (from: Tree, to: Tree, rand: () => number): Promise<void> {
  const lacking = [...allOps(from).values()].filter(b => !to.hasOp(cidOfBytes(b)))
  await deliver(to, lacking.filter(() => rand() < 0.5), rand)
}

async function run (t: Teardown, n: number, cut: number, steps: Array<Action & { side: number }>, seed: number): Promise<Host[]> {
  const rand = rng(seed)
  const hosts: Host[] = []
  for (let i = 0; i < n; i++) hosts.push({ r: await replica(t) })
  // the shared start: dirs x and y, files same, delwrite, ren; everyone holds it
  const h0 = hosts[0].r
  const x = await h0.tree.commit({ type: 'create', parent: h0.tree.root, name: 'x', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: 1n })
  await h0.tree.commit({ type: 'create', parent: h0.tree.root, name: 'y', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: 1n })
  for (const name of ['same', 'delwrite', 'ren']) await h0.tree.commit({ type: 'create', parent: h0.tree.root, name, kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: enc.encode('o') }, size: 1, time: 1n })
  await h0.tree.commit({ type: 'create', parent: x.id, name: 'other', kind: 'file', mode: 0o644, uid: 0, gid: 0, time: 1n })
  for (const h of hosts.slice(1)) await full(h0.tree, h.r.tree)
  const sides = [hosts.slice(0, cut), hosts.slice(cut)]
  for (const s of steps) {
    const side = sides[s.side % 2]
    const h = side[s.h % side.length]
    h.r.clock.ms += s.dt
    if (s.t === 6 || s.t === 7) {
      const peer = side[(s.h + 1 + s.a) % side.length]
      if (peer === h) continue
      if (s.t === 6) await partial(peer.r.tree, h.r.tree, rand)
      else await full(peer.r.tree, h.r.tree)
      continue
    }
    if (s.t === 8) { await restart(t, h); continue }
    const body = choose(h.r.tree, s, BigInt(h.r.clock.ms) * 1_000_000n)
    if (body !== null) await h.r.tree.commit(body)
  }
  // the heal: pairs reconcile in a random order, partially first, then fully
  for (let i = 0; i < n; i++) {
    const a = hosts[Math.floor(rand() * n)]
    const b = hosts[Math.floor(rand() * n)]
    if (a !== b) await partial(a.r.tree, b.r.tree, rand)
  }
  for (let round = 0; round < 2; round++) for (const a of hosts) for (const b of hosts) if (a !== b) await full(a.r.tree, b.r.tree)
  for (const a of hosts) for (const b of hosts) if (a !== b) assert.equal(await full(a.r.tree, b.r.tree), 0, 'ops still missing after the heal')
  return hosts
}

const heads = (tree: Tree): string => tree.heads().map(c => c.toString()).sort().join(',')

describe(`node/tree under partitions (seed ${PROP_SEED})`, function () {
  // every change() the CRDT makes with an old value it read checks that value (journal.ts)
  before(() => { Journal.checking = true })
  after(() => { Journal.checking = false })
  this.timeout(PROPERTY_TIMEOUT_MS * RUNS)

  it('2..5 hosts split in two: after the heal every host, and fresh replicas fed any order with duplicates, show one tree', async () => {
    const plan = fc.integer({ min: 2, max: 5 }).chain(n => fc.record({
      n: fc.constant(n),
      cut: fc.integer({ min: 1, max: n - 1 }),
      steps: fc.array(fc.record({ side: fc.nat(1) }).chain(s => action.map(a => ({ ...a, ...s }))), { minLength: 4, maxLength: 40 }),
      seed: fc.integer()
    }))
    await fc.assert(fc.asyncProperty(plan, async ({ n, cut, steps, seed }) => {
      const t = new Teardown()
      try {
        const hosts = await run(t, n, cut, steps, seed)
        const want = snapshot(hosts[0].r.tree)
        for (const h of hosts.slice(1)) {
          assert.equal(heads(h.r.tree), heads(hosts[0].r.tree))
          assert.equal(snapshot(h.r.tree), want)
          assert.equal(treeDigest(h.r.tree).digest, treeDigest(hosts[0].r.tree).digest)
        }
        // every host after a restart (the tree rebuilt from its log)
        for (const h of hosts) { await restart(t, h); assert.equal(snapshot(h.r.tree), want) }
        const blocks = [...allOps(hosts[0].r.tree).values()]
        for (const s of [seed, seed ^ 0x5bd1e995]) {
          const fresh = await replica(t)
          assert.equal(await deliver(fresh.tree, blocks, rng(s)), 0)
          assert.equal(snapshot(fresh.tree), want)
        }
        // nothing orphaned, no cycle (snapshot throws on a dir reachable twice)
        for (const { e } of walk(hosts[0].r.tree)) assert.ok(hosts[0].r.tree.path(e.id) !== undefined)
        assert.ok(resolve(hosts[0].r.tree, '/') !== undefined)
      } finally {
        await t.run()
      }
    }), { numRuns: 80 * RUNS })
  })
})
