// A commit stamped at a cut (CommitOptions.at, Tree.cut; whole37): a whole version built from a
// state read before a peer's version arrived names what it read as parents, so every replica's
// CRDT takes the two versions as concurrent (a conflict sibling), where the heads at its stamp
// would claim it saw the peer's version and replace it. This host's ops stay one chain.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { replica, mkfile, write, sync, snapshot, text } from '../helpers/tree.ts'
import { holdNextSync } from '../helpers/held-sync.ts'
import type { Tree } from '../../node/tree/index.ts'

/** The parents an op of `tree` names, as CID strings. */
function parentsOf (tree: Tree, cid: CID): string[] {
  const bytes = tree.getOp(cid)
  assert.ok(bytes !== undefined, `op ${cid.toString()} in the tree`)
  return (dagCbor.decode(bytes) as { parents: CID[] }).parents.map(p => p.toString())
}

function siblingsOf (tree: Tree, name: string): string[] {
  return tree.conflicts().filter(c => c.path.startsWith(`/${name}.conflict-`)).map(c => text(tree, c.path) as string)
}

describe('node/tree commits stamped at a cut', function () {
  let t: Teardown
  beforeEach(() => { t = new Teardown() })
  afterEach(async () => { await t.run() })

  /** Replicas a and b with /f ('a') on both; b's write of /f ('b') reaches a after a took a cut. */
  async function pair (): Promise<{ a: Tree, b: Tree, id: string, cut: ReturnType<Tree['cut']>, peer: string }> {
    const a = (await replica(t)).tree
    const b = (await replica(t)).tree
    const [{ id }] = await a.commitMany([mkfile(a.root, 'f', 'a')])
    await sync(a, b)
    const cut = a.cut()
    const [{ cid }] = await b.commitMany([write(id, 'b')])
    return { a, b, id, cut, peer: cid.toString() }
  }

  it('a write at a cut taken before a peer\'s write arrived is concurrent with it: a conflict sibling on both replicas', async () => {
    const { a, b, id, cut, peer } = await pair()
    await sync(b, a)
    assert.equal(a.cutSees(cut, [peer]), false)
    await a.commitMany([write(id, 'c')], 'durable', { at: cut })
    await sync(a, b)
    assert.equal(text(a, '/f'), 'c')
    assert.deepEqual(siblingsOf(a, 'f'), ['b'])
    assert.equal(snapshot(a), snapshot(b))
    // the next op of a names both heads: a's ops and b's are one DAG again
    await a.commitMany([mkfile(a.root, 'g', 'g')])
    await sync(a, b)
    assert.equal(snapshot(a), snapshot(b))
  })

  it('without a cut the same write counts the peer\'s as seen (the loss whole37 fixed in volume.ts)', async () => {
    const { a, b, id } = await pair()
    await sync(b, a)
    await a.commitMany([write(id, 'c')])
    await sync(a, b)
    assert.equal(text(a, '/f'), 'c')
    assert.deepEqual(siblingsOf(a, 'f'), [])
    assert.equal(snapshot(a), snapshot(b))
  })

  it('ops of this host stamped since the cut, before the peer\'s write arrived: named too, still concurrent', async () => {
    const { a, b, id, cut, peer } = await pair()
    const [{ cid: g }] = await a.commitMany([mkfile(a.root, 'g', 'g')])
    await sync(b, a)
    assert.equal(a.stampedSince(cut), true)
    assert.equal(a.cutSees(cut, [peer]), false)
    const [{ cid: x }] = await a.commitMany([write(id, 'c'), mkfile(a.root, 'h', 'h')], 'durable', { at: cut })
    // this host's ops stay one chain: the write at the cut names a's newest op, not only the cut's heads
    assert.ok(parentsOf(a, x).includes(g.toString()), 'the write at the cut names this host\'s newest op')
    assert.ok(!parentsOf(a, x).includes(peer), 'nor the peer\'s write')
    await sync(a, b)
    assert.equal(text(a, '/f'), 'c')
    assert.equal(text(a, '/g'), 'g')
    assert.deepEqual(siblingsOf(a, 'f'), ['b'])
    assert.equal(snapshot(a), snapshot(b))
    // a's next op, over its chain and b's write, merges on both alike
    await a.commitMany([mkfile(a.root, 'i', 'i')])
    await sync(a, b)
    assert.equal(snapshot(a), snapshot(b))
  })

  it('an op of this host stamped after the peer\'s write arrived saw it: cutSees says so', async () => {
    const { a, b, cut, peer } = await pair()
    await sync(b, a)
    await a.commitMany([mkfile(a.root, 'g', 'g')])
    assert.equal(a.cutSees(cut, [peer]), true)
  })

  it('an op of this host stamped before the peer\'s write arrived, its fsync not back yet: not seen, and a write at the cut stamped meanwhile is concurrent with the peer\'s', async () => {
    const { a, b, id, cut, peer } = await pair()
    const hold = holdNextSync(a)
    // a's op on another file, stamped before b's write reaches a, applied once its fsync is back
    let gApplied = false
    const g = a.commitMany([mkfile(a.root, 'g', 'g')], 'durable').then(r => { gApplied = true; return r })
    await hold.held
    await sync(b, a)
    assert.equal(gApplied, false)
    assert.equal(a.stampedSince(cut), true)
    assert.equal(a.cutSees(cut, [peer]), false, 'the op in flight named no op of b')
    // stamped at the cut while g is still in flight: over g (a's chain), not over b's write
    const x = a.commitMany([write(id, 'c')], 'durable', { at: cut, guard: () => !a.cutSees(cut, [peer]) })
    hold.release()
    const [[{ cid: gc }], [{ cid: xc }]] = await Promise.all([g, x])
    assert.equal(a.cutSees(cut, [peer]), false)
    assert.ok(parentsOf(a, xc).includes(gc.toString()), 'the write names this host\'s op in flight')
    assert.ok(!parentsOf(a, xc).includes(peer), 'not the peer\'s write')
    await sync(a, b)
    assert.equal(text(a, '/f'), 'c')
    assert.deepEqual(siblingsOf(a, 'f'), ['b'])
    assert.equal(snapshot(a), snapshot(b))
  })

  it('an op of this host stamped after the peer\'s write arrived, its fsync not back yet: seen', async () => {
    const { a, b, cut, peer } = await pair()
    await sync(b, a)
    const hold = holdNextSync(a)
    const g = a.commitMany([mkfile(a.root, 'g', 'g')], 'durable')
    await hold.held
    assert.equal(a.cutSees(cut, [peer]), true)
    hold.release()
    await g
    assert.equal(a.cutSees(cut, [peer]), true)
  })

  it('a cut taken while an op of this host on the file is stamped, not applied: that op, applied since, is seen at the cut (its heads name it)', async () => {
    const { a, id } = await pair()
    const hold = holdNextSync(a)
    const x = a.commitMany([write(id, 'x')], 'durable')
    await hold.held
    const cut = a.cut()
    hold.release()
    const [{ cid }] = await x
    assert.equal(a.stampedSince(cut), false)
    assert.equal(a.cutSees(cut, [cid.toString()]), true)
  })

  it('this host\'s newest op, stamped since the cut: seen at the cut (a write at it names that op)', async () => {
    const { a, id } = await pair()
    const cut = a.cut()
    const [{ cid }] = await a.commitMany([write(id, 'x')], 'durable')
    assert.equal(a.cutSees(cut, [cid.toString()]), true)
  })
})
