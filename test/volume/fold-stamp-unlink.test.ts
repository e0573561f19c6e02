// A fold built that waits in its stamp (mend42a) for this host's op on the file, while the
// file loses its last name: once the op lands, nothing is stamped (Volume.fold's `unlinked` check
// after the wait: a fold op for a file no one reads again would only rewrite its chunks)
import assert from 'node:assert/strict'
import { Volume, FOLD_EXTENTS } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'

const enc = new TextEncoder()

describe('volume: a fold waiting in its stamp for a file unlinked meanwhile', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('stamps nothing once the op lands (review42c)', async () => {
    const dir = await tempDir(t, 'darkfs-fold-unlink-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/log', enc.encode('start\n'))
    const id = vol.tree.byIno((await vol.stat('/log')).ino)!.id
    const v = vol as unknown as { folding: Map<string, unknown>, fold: (inode: string, quiet: boolean) => Promise<string> }
    const lefts: string[] = []
    const fold = v.fold.bind(vol)
    v.fold = async (inode, quiet) => {
      const left = await fold(inode, quiet)
      if (inode === id) lefts.push(left)
      return left
    }
    let folds = 0
    onEachOp(vol.tree, (op) => { if (op.body.type === 'fold') folds++ })
    // an op of this host on the file is on its way until `land`
    let faking = true
    const tree = vol.tree as unknown as { unapplied: (inode: string) => boolean, landedFor: (inode: string) => Promise<void> }
    const unapplied = tree.unapplied.bind(tree)
    tree.unapplied = inode => (faking && inode === id) || unapplied(inode)
    let land!: () => void
    const landed = new Promise<void>(resolve => { land = resolve })
    t.add(async () => { land() })
    let waited = 0
    const landedFor = tree.landedFor.bind(tree)
    tree.landedFor = async inode => {
      if (inode !== id || !faking) return await landedFor(inode)
      waited++
      await landed
    }
    for (let i = 0; i < FOLD_EXTENTS + 4; i++) {
      const fh = await vol.open('/log', 'a')
      const b = enc.encode(`line ${i}\n`)
      await fh.write(b, 0, b.byteLength, 0)
      await fh.close()
    }
    await until('a fold built waits in its stamp for the op', () => waited === 1 && v.folding.has(id), 60_000)
    const before = lefts.length
    await vol.unlink('/log')
    faking = false
    land()
    await until('the fold ended', () => lefts.length > before && !v.folding.has(id), 60_000)
    assert.deepEqual({ folds, left: lefts.slice(before) }, { folds: 0, left: ['none'] })
  })
})
