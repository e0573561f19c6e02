// A whole-file write refused by its guard (write36: an op of this host on the file stamped and not
// yet applied) waits for this host's ops on the file to land (Tree.landedFor) before it builds
// again: that wait follows the caller's signal, as the rest of the commit does.
import assert from 'node:assert/strict'
import { Volume } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

const enc = new TextEncoder()

describe('volume: a refused whole write waits for its own ops within its signal', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('an fsync aborted while it waits for this host\'s ops on the file to land returns, aborted', async () => {
    const dir = await tempDir(t, 'darkfs-whole-abort-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/f', enc.encode('start\n'))
    const id = vol.tree.byIno((await vol.stat('/f')).ino)!.id
    const fh = await vol.open('/f', 'r+')
    await fh.write(enc.encode('S'), 0, 1, 0)
    // the tree says an op of this host on the file is on its way, and it never lands
    const tree = vol.tree as unknown as { unapplied: (inode: string) => boolean, landedFor: (inode: string) => Promise<void> }
    const unapplied = tree.unapplied.bind(tree)
    const landedFor = tree.landedFor.bind(tree)
    let waiting = false
    tree.unapplied = inode => inode === id || unapplied(inode)
    tree.landedFor = async inode => {
      if (inode !== id) return await landedFor(inode)
      waiting = true
      return await new Promise<void>(() => {})
    }
    const ac = new AbortController()
    let settled: unknown
    const sync = fh.sync({ signal: ac.signal }).then(() => { settled = 'synced' }, (err: unknown) => { settled = err })
    await until('the commit waits for this host\'s ops to land', () => waiting, 20_000)
    ac.abort()
    await until('the fsync returned', () => settled !== undefined, 20_000)
    await sync
    assert.equal(settled, ac.signal.reason)
    tree.unapplied = unapplied
    tree.landedFor = landedFor
    await fh.close()
    assert.equal(new TextDecoder().decode(await vol.readFile('/f')), 'Start\n')
  })
})
