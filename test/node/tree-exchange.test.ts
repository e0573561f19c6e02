// RENAME_EXCHANGE as the Volume writes it (volume.ts exchangeBodies: three moves in one batch)
// merged with a concurrent change of either entry on another replica: every replica converges,
// the swap's own name is never where an entry ends up, and no entry is lost or doubled.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { exchangeBodies } from '../../node/volume.ts'
import type { OpBody, Tree } from '../../node/tree/index.ts'
import { replica, sync, mkdir, mkfile, text, ls, snapshot, sec, allOps, deliver, cidOfBytes } from '../helpers/tree.ts'
import type { Replica } from '../helpers/tree.ts'

const ASIDE = '.darkfs-exchange-0123456789ab'

/** Every name in the tree, with its path. */
function names (tree: Tree, dir = tree.root, prefix = ''): string[] {
  return tree.children(dir).flatMap(e => {
    const path = `${prefix}/${e.name}`
    return tree.get(e.inode)?.kind === 'dir' ? [path, ...names(tree, e.inode, path)] : [path]
  })
}

describe('node/tree: RENAME_EXCHANGE merged with concurrent changes', function () {
  let t: Teardown
  beforeEach(() => { t = new Teardown() })
  afterEach(async () => { await t.run() })

  /** Replicas a and b holding /p/x ('X'), /p/y ('Y') and /q. */
  async function setup (): Promise<{ a: Replica, b: Replica, ids: { p: string, q: string, x: string, y: string } }> {
    const a = await replica(t)
    const b = await replica(t)
    const p = (await a.tree.commit(mkdir(a.tree.root, 'p'))).id
    const q = (await a.tree.commit(mkdir(a.tree.root, 'q'))).id
    const x = (await a.tree.commit(mkfile(p, 'x', 'X'))).id
    const y = (await a.tree.commit(mkfile(p, 'y', 'Y'))).id
    await sync(a.tree, b.tree)
    return { a, b, ids: { p, q, x, y } }
  }

  const concurrent: Array<[string, (ids: { p: string, q: string, x: string, y: string }, tree: Tree) => OpBody]> = [
    ['x renamed elsewhere', ({ x }, tree) => ({ type: 'move', entry: tree.entries(x)[0].id, parent: tree.root, name: 'z', time: sec(3) })],
    ['y moved into another directory', ({ y, q }, tree) => ({ type: 'move', entry: tree.entries(y)[0].id, parent: q, name: 'w', time: sec(3) })],
    ['y unlinked', ({ y }, tree) => ({ type: 'unlink', entry: tree.entries(y)[0].id, time: sec(3) })],
    ['a new file created at the name x', ({ p }) => mkfile(p, 'x', 'N', sec(3))]
  ]

  for (const [what, change] of concurrent) {
    for (const exchangeFirst of [true, false]) {
      it(`exchange of /p/x and /p/y with ${what} concurrently (the exchange's ops ${exchangeFirst ? 'older' : 'newer'})`, async () => {
        const { a, b, ids } = await setup()
        a.clock.ms += exchangeFirst ? 1 : 5
        b.clock.ms += exchangeFirst ? 5 : 1
        const xe = a.tree.entries(ids.x)[0]
        const ye = a.tree.entries(ids.y)[0]
        await a.tree.commitMany(exchangeBodies(xe, ye, ASIDE, sec(3)))
        assert.equal(text(a.tree, '/p/x'), 'Y')
        assert.equal(text(a.tree, '/p/y'), 'X')
        await b.tree.commit(change(ids, b.tree))
        // b takes a's ops in a shuffled order, in small batches (gossip may split the batch)
        await deliver(b.tree, [...allOps(a.tree).values()].filter(op => !b.tree.hasOp(cidOfBytes(op))), 7)
        await sync(b.tree, a.tree)
        assert.equal(snapshot(a.tree), snapshot(b.tree))
        const all = names(a.tree)
        assert.ok(!all.some(n => n.includes('.darkfs-exchange-')), `left over: ${all.join(' ')}`)
        // x and y each where one of the two renames put it (or gone with the unlink), once
        for (const id of [ids.x, ids.y]) assert.ok(a.tree.entries(id).length <= 1, `${id} has ${a.tree.entries(id).length} names`)
        if (what !== 'y unlinked') assert.equal(a.tree.entries(ids.y).length, 1)
        assert.equal(a.tree.entries(ids.x).length, 1)
        assert.ok(ls(a.tree, '/q').length <= 1)
      })
    }
  }
})
