// A fold found moved under it (write36): Volume.fold stamps only while the file reads as at its
// fold point, with no op of this host on the file stamped and not yet applied (the fold's parents
// would count it as seen: Tree.unapplied). A fold found moved stamps nothing and is made again:
// the first time as soon as this host's own ops on the file have landed (fold42: FOLD_SETTLE_MS
// later, a file written on meanwhile has that long of extents too young to fold), then backing
// off: FOLD_SETTLE_MS, then twice as long each time (up to FOLD_MOVED_MAX_MS), not every
// FOLD_SETTLE_MS while ops keep coming (each one read, built and placed its chunks). A close
// while the first one waits for those ops sets nothing after it.
import assert from 'node:assert/strict'
import { Volume, FOLD_EXTENTS, FOLD_SETTLE_MS, FOLD_MOVED_MAX_MS } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'
import { stubPuts } from '../helpers/store-stubs.ts'

const enc = new TextEncoder()

type Spied = {
  foldLater: (inode: string, ms: number, quiet?: boolean) => void
  foldIfDue: (inode: string, quiet?: boolean) => void
  fold: (inode: string, quiet: boolean) => Promise<string>
  folding: Map<string, unknown>
  foldTimers: Map<string, unknown>
  foldMoved: Map<string, { n: number, at: number }>
}

/**
 * Spies on `vol`'s folds of `id`: `waits`, the delay of each fold asked for later; `moved`, for
 * each fold found moved, the index in `waits` of the next one asked for (its retry: the fold's
 * own handler asks before any timer or commit can run); `calls`, the folds begun.
 */
function spyFolds (vol: Volume, id: string): { v: Spied, waits: number[], moved: number[], calls: () => number } {
  const v = vol as unknown as Spied
  const waits: number[] = []
  const moved: number[] = []
  let calls = 0
  const foldLater = v.foldLater.bind(vol)
  v.foldLater = (inode, ms, quiet) => {
    if (inode === id) waits.push(ms)
    foldLater(inode, ms, quiet)
  }
  const fold = v.fold.bind(vol)
  v.fold = async (inode, quiet) => {
    if (inode === id) calls++
    const left = await fold(inode, quiet)
    if (inode === id && left === 'moved') moved.push(waits.length)
    return left
  }
  return { v, waits, moved, calls: () => calls }
}

describe('volume: a fold found moved backs off', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('refused while an op of this host on the file is unapplied; made again at once, then after FOLD_SETTLE_MS, then twice that; stamped once the file holds still', async () => {
    assert.ok(FOLD_MOVED_MAX_MS >= 2 * FOLD_SETTLE_MS)
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/log', enc.encode('start\n'))
    const id = vol.tree.byIno((await vol.stat('/log')).ino)!.id
    // while `moving`, the tree says an op of this host on the file is on its way (stamped, not
    // applied; landedFor knows of none: it resolves at once)
    let moving = true
    const tree = vol.tree as unknown as { unapplied: (inode: string) => boolean }
    const unapplied = tree.unapplied.bind(tree)
    tree.unapplied = inode => (moving && inode === id) || unapplied(inode)
    const { v, waits, moved } = spyFolds(vol, id)
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
    await until('two folds found the file moved', () => moved.length === 2, 60_000)
    assert.equal(folds, 0, 'nothing stamped')
    assert.equal(waits[moved[0]], 0, 'the first made again at once')
    assert.equal(waits[moved[1]], FOLD_SETTLE_MS, 'the second after FOLD_SETTLE_MS')
    // asked again meanwhile (a commit, a timer): it waits out the back-off, no fold starts. The
    // back-off is held ahead first: a loaded machine may stall this loop past it since the poll
    const backoff = v.foldMoved.get(id)
    assert.ok(backoff !== undefined && backoff.n === 2, 'backing off')
    backoff.at = performance.now() + FOLD_SETTLE_MS
    v.foldIfDue(id, true)
    assert.equal(v.folding.has(id), false, 'no fold within the back-off')
    assert.ok((waits.at(-1) as number) <= FOLD_SETTLE_MS && (waits.at(-1) as number) > 0)
    await until('the third fold found the file moved', () => moved.length === 3, 60_000)
    assert.equal(waits[moved[2]], 2 * FOLD_SETTLE_MS, 'then twice as long')
    moving = false
    await until('the fold stamped', () => folds > 0, 60_000)
    assert.equal(moved.length, 3)
    assert.equal(v.foldMoved.has(id), false, 'the back-off ended')
  })

  it('a fold found moved by a write of this host stamped and not yet applied is made again as soon as that write lands, not FOLD_SETTLE_MS later (fold42)', async () => {
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/db', new Uint8Array(256 * 1024).fill(7))
    const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
    const { v, waits, moved } = spyFolds(vol, id)
    let folds = 0
    onEachOp(vol.tree, (op) => {
      if (op.body.type === 'fold') folds++
    })
    // the fold's chunk puts are held (every put begun before the write below: only the fold's)
    let writing = false
    let held = 0
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    stubPuts(vol, async (putMany, b, opts) => {
      if (!writing) {
        held++
        await gate
      }
      await putMany(b, opts)
    })
    // the write's op is written to the log but applied only once `land` is called (a slow disk)
    let holdLog = false
    let land!: () => void
    const landing = new Promise<void>(resolve => { land = resolve })
    t.add(async () => { land() })
    const log = (vol.tree as unknown as { log: { append: (bytes: Uint8Array[], durability: unknown) => Promise<void> } }).log
    const append = log.append.bind(log)
    log.append = async (bytes, durability) => {
      const p = append(bytes, durability)
      if (holdLog) await landing
      await p
    }
    // positioned extents past FOLD_EXTENTS, one per fsync, 100 bytes 1000 apart: a fold is
    // due (the whole file is a cheap rewrite) once they settle
    const fh = await vol.open('/db', 'r+')
    for (let i = 0; i < FOLD_EXTENTS + 4; i++) {
      const b = new Uint8Array(100).fill(i)
      await fh.write(b, 0, b.byteLength, i * 1000)
      await fh.sync()
    }
    assert.ok((vol.tree.get(id)!.extents?.length ?? 0) > FOLD_EXTENTS, 'the fsyncs made positioned extents')
    await until('a fold of the settled extents is storing its chunk', () => held > 0, 60_000)
    assert.equal(moved.length, 0)
    // a write of this host on the file is stamped while the fold is held, and not applied yet
    writing = true
    holdLog = true
    const b = new Uint8Array(100).fill(200)
    await fh.write(b, 0, b.byteLength, 50)
    const synced = fh.sync()
    await until('the write is stamped', () => vol.tree.unapplied(id), 60_000)
    release()
    await until('the fold found the file moved', () => moved.length === 1, 60_000)
    assert.equal(v.foldMoved.get(id)?.n, 1)
    assert.equal(waits.length, moved[0], 'not asked again before the write landed')
    holdLog = false
    land()
    await synced
    await fh.close()
    await until('a fold stamped', () => folds > 0, 60_000)
    assert.equal(moved.length, 1, 'found moved once')
    assert.equal(waits[moved[0]], 0, `made again at once, not ${String(waits[moved[0]])} ms later`)
    await until('the settled extents are folded', () => (vol.tree.get(id)!.extents?.length ?? 0) < FOLD_EXTENTS / 2, 60_000)
    const out = await vol.readFile('/db')
    assert.deepEqual([out[0], out[49], out[50], out[149], out[150], out[1000], out[1100]], [0, 0, 200, 200, 7, 1, 7], 'the bytes as written')
  })

  it('a close while a fold found moved the first time waits for this host\'s ops on the file: no fold, no timer after it', async () => {
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir })
    let closed = false
    t.add(async () => { if (!closed) await vol.close() })
    await vol.writeFile('/log', enc.encode('start\n'))
    const id = vol.tree.byIno((await vol.stat('/log')).ino)!.id
    // an op of this host on the file is on its way, and lands only once `land` is called
    const tree = vol.tree as unknown as { unapplied: (inode: string) => boolean, landedFor: (inode: string) => Promise<void> }
    const unapplied = tree.unapplied.bind(tree)
    tree.unapplied = inode => inode === id || unapplied(inode)
    let land!: () => void
    const landed = new Promise<void>(resolve => { land = resolve })
    let waited = 0
    const landedFor = tree.landedFor.bind(tree)
    tree.landedFor = async inode => {
      if (inode !== id) return await landedFor(inode)
      waited++
      await landed
    }
    t.add(async () => { land() })
    const { v, waits, moved, calls } = spyFolds(vol, id)
    for (let i = 0; i < FOLD_EXTENTS + 4; i++) {
      const fh = await vol.open('/log', 'a')
      const b = enc.encode(`line ${i}\n`)
      await fh.write(b, 0, b.byteLength, 0)
      await fh.close()
    }
    await until('a fold found the file moved and waits for the op to land', () => moved.length === 1 && waited === 1, 60_000)
    const at = waits.length
    const begun = calls()
    assert.equal(v.foldMoved.get(id)?.n, 1)
    assert.equal(v.folding.has(id), true, 'the wait is the fold\'s work')
    // asked again meanwhile (a commit): no fold starts while it waits
    v.foldIfDue(id, false)
    assert.equal(calls(), begun, 'no fold begun')
    const closing = vol.close()
    closed = true
    await closing
    assert.equal(v.foldTimers.size, 0, 'no fold timer set after the close')
    assert.equal(waits.slice(at).includes(0), false, 'no retry asked for')
    land()
    await Promise.resolve()
    assert.equal(calls(), begun, 'no fold begun after the close')
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
