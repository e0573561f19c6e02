// A fold found moved under it (write36): Volume.fold stamps only while the file reads as at its
// fold point, with no op of this host on the file stamped and not yet applied (the fold's parents
// would count it as seen: Tree.unapplied). A fold found moved stamps nothing and is made again
// later, backing off: FOLD_SETTLE_MS, then twice as long each time (up to FOLD_MOVED_MAX_MS),
// not every FOLD_SETTLE_MS while ops keep coming (each one read, built and placed its chunks).
import assert from 'node:assert/strict'
import { Volume, FOLD_EXTENTS, FOLD_SETTLE_MS, FOLD_MOVED_MAX_MS } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'

const enc = new TextEncoder()

describe('volume: a fold found moved backs off', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('refused while an op of this host on the file is unapplied; made again after FOLD_SETTLE_MS, then twice that; stamped once the file holds still', async () => {
    assert.ok(FOLD_MOVED_MAX_MS >= 2 * FOLD_SETTLE_MS)
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/log', enc.encode('start\n'))
    const id = vol.tree.byIno((await vol.stat('/log')).ino)!.id
    // while `moving`, the tree says an op of this host on the file is on its way (stamped, not applied)
    let moving = true
    const tree = vol.tree as unknown as { unapplied: (inode: string) => boolean }
    const unapplied = tree.unapplied.bind(tree)
    tree.unapplied = inode => (moving && inode === id) || unapplied(inode)
    const v = vol as unknown as { foldLater: (inode: string, ms: number, quiet?: boolean) => void, foldIfDue: (inode: string, quiet?: boolean) => void, folding: Map<string, unknown> }
    const foldLater = v.foldLater.bind(vol)
    const waits: number[] = []
    v.foldLater = (inode, ms, quiet) => {
      if (inode === id) waits.push(ms)
      foldLater(inode, ms, quiet)
    }
    let tried = 0
    const fold = (vol as unknown as { fold: (inode: string, quiet: boolean) => Promise<string> }).fold.bind(vol)
    ;(vol as unknown as { fold: (inode: string, quiet: boolean) => Promise<string> }).fold = async (inode, quiet) => {
      const left = await fold(inode, quiet)
      if (inode === id && left === 'moved') tried++
      return left
    }
    let folds = 0
    onEachOp(vol.tree, (op) => {
      if (op.body.type === 'fold') folds++
    })
    // past FOLD_EXTENTS: a fold is due once they settle
    for (let i = 0; i < FOLD_EXTENTS + 4; i++) {
      const fh = await vol.open('/log', 'a')
      const b = enc.encode(`line ${i}\n`)
      await fh.write(b, 0, b.byteLength, 0)
      await fh.close()
    }
    await until('a fold found the file moved', () => tried === 1, 60_000)
    assert.equal(folds, 0, 'nothing stamped')
    assert.equal(waits.at(-1), FOLD_SETTLE_MS, 'made again after FOLD_SETTLE_MS')
    // asked again meanwhile (a commit, a timer): it waits out the back-off, no fold starts. The
    // back-off is held ahead first: a loaded machine may stall this loop past it since the poll
    const moved = (vol as unknown as { foldMoved: Map<string, { n: number, at: number }> }).foldMoved.get(id)
    assert.ok(moved !== undefined, 'backing off')
    moved.at = performance.now() + FOLD_SETTLE_MS
    v.foldIfDue(id, true)
    assert.equal(v.folding.has(id), false, 'no fold within the back-off')
    assert.ok((waits.at(-1) as number) <= FOLD_SETTLE_MS && (waits.at(-1) as number) > 0)
    await until('the second fold found the file moved', () => tried === 2, 60_000)
    assert.equal(waits.at(-1), 2 * FOLD_SETTLE_MS, 'then twice as long')
    moving = false
    await until('the fold stamped', () => folds > 0, 60_000)
    assert.equal(tried, 2)
    assert.equal((vol as unknown as { foldMoved: Map<string, unknown> }).foldMoved.has(id), false, 'the back-off ended')
  })

  it('a fold found moved as the Volume closes sets no timer after the close', async () => {
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir })
    let closed = false
    t.add(async () => { if (!closed) await vol.close() })
    await vol.writeFile('/log', enc.encode('start\n'))
    const id = vol.tree.byIno((await vol.stat('/log')).ino)!.id
    const v = vol as unknown as { fold: (inode: string, quiet: boolean) => Promise<string>, foldTimers: Map<string, unknown> }
    let started = false
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    // the fold ends found moved, once the close has begun
    v.fold = async () => { started = true; await gate; return 'moved' }
    for (let i = 0; i < FOLD_EXTENTS + 4 && !started; i++) {
      const fh = await vol.open('/log', 'a')
      const b = enc.encode(`line ${i}\n`)
      await fh.write(b, 0, b.byteLength, 0)
      await fh.close()
    }
    await until('a fold started', () => started, 60_000)
    const closing = vol.close()
    closed = true
    open()
    await closing
    assert.equal(v.foldTimers.size, 0, 'no fold timer set after the close')
  })
})
