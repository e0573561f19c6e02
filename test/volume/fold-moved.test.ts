// A fold found moved under it (write36): Volume.fold stamps only while the file reads as at its
// fold point, with no op of this host on the file stamped and not yet applied (the fold's parents
// would count it as seen: Tree.unapplied). A fold built that finds such ops while its fold point
// holds waits for them to land and stamps then (FOLD_STAMP_TRIES times at most: mend42a, a slow
// disk's commits every 50 ms). A fold found moved stamps nothing and is made again:
// the first time as soon as this host's own ops on the file have landed (fold42: FOLD_SETTLE_MS
// later, a file written on meanwhile has that long of extents too young to fold), then backing
// off: FOLD_SETTLE_MS, then twice as long each time (up to FOLD_MOVED_MAX_MS), not every
// FOLD_SETTLE_MS while ops keep coming (each one read, built and placed its chunks); that retry is
// not put off for idleness, and is quiet if a quiet fold was asked meanwhile. A close while a fold
// waits for those ops sets nothing after it, nor does a file unlinked while its fold waits to stamp.
import assert from 'node:assert/strict'
import { Volume, FOLD_EXTENTS, FOLD_SETTLE_MS, FOLD_MOVED_MAX_MS, FOLD_STAMP_TRIES } from 'darkfs'
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
  foldAgain: Map<string, boolean>
  busyAt: number
  foldTallies: Map<string, { due: () => boolean }>
}

/**
 * Spies on `vol`'s folds of `id`: `waits`, the delay of each fold asked for later; `moved`, for
 * each fold found moved, the index in `waits` of the next one asked for; `after(i)`, the delays
 * asked for since the i-th miss (its retry and a commit's, if any came); `calls`, the folds begun.
 */
function spyFolds (vol: Volume, id: string): { v: Spied, waits: number[], moved: number[], calls: () => number, after: (i: number) => number[] } {
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
  // the delays asked for from the i-th miss to the next (its retry among them: a commit meanwhile
  // asks FOLD_QUIET_MS, a back-off's wait is under the one that set it)
  const after = (i: number): number[] => waits.slice(moved[i], moved[i + 1] ?? waits.length)
  return { v, waits, moved, calls: () => calls, after }
}

/** `n` lines appended to `/log`, each by its own open, write and close (an append op each). */
async function appendLines (vol: Volume, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const fh = await vol.open('/log', 'a')
    const b = enc.encode(`line ${i}\n`)
    await fh.write(b, 0, b.byteLength, 0)
    await fh.close()
  }
}

/**
 * An op of this host on `id` on its way: Tree.unapplied() answers true for it while `pending()`
 * holds (faked, when given), and Tree.landedFor(id), while `held()` holds, waits until `land()`
 * (`waited()`: how many such waits began).
 */
function holdLanding (t: Teardown, vol: Volume, id: string, opts: { pending?: () => boolean, held?: () => boolean } = {}): { land: () => void, waited: () => number } {
  const tree = vol.tree as unknown as { unapplied: (inode: string) => boolean, landedFor: (inode: string) => Promise<void> }
  const { pending, held = () => true } = opts
  if (pending !== undefined) {
    const unapplied = tree.unapplied.bind(tree)
    tree.unapplied = inode => (inode === id && pending()) || unapplied(inode)
  }
  let land!: () => void
  const landed = new Promise<void>(resolve => { land = resolve })
  t.add(async () => { land() })
  let waited = 0
  const landedFor = tree.landedFor.bind(tree)
  tree.landedFor = async inode => {
    if (inode !== id || !held()) return await landedFor(inode)
    waited++
    await landed
  }
  return { land, waited: () => waited }
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
    const { v, waits, moved, after } = spyFolds(vol, id)
    let folds = 0
    onEachOp(vol.tree, (op) => {
      if (op.body.type === 'fold') folds++
    })
    // past FOLD_EXTENTS: a fold is due once they settle
    await appendLines(vol, FOLD_EXTENTS + 4)
    await until('two folds found the file moved', () => moved.length === 2, 60_000)
    assert.equal(folds, 0, 'nothing stamped')
    assert.ok(after(0).includes(0), `the first made again at once: ${String(after(0))}`)
    assert.ok(after(1).includes(FOLD_SETTLE_MS), `the second after FOLD_SETTLE_MS: ${String(after(1))}`)
    // asked again meanwhile (a commit, a timer): it waits out the back-off, no fold starts. The
    // back-off is held ahead first: a loaded machine may stall this loop past it since the poll
    const backoff = v.foldMoved.get(id)
    assert.ok(backoff !== undefined && backoff.n === 2, 'backing off')
    backoff.at = performance.now() + FOLD_SETTLE_MS
    v.foldIfDue(id, true)
    assert.equal(v.folding.has(id), false, 'no fold within the back-off')
    assert.ok((waits.at(-1) as number) <= FOLD_SETTLE_MS && (waits.at(-1) as number) > 0)
    await until('the third fold found the file moved', () => moved.length === 3, 60_000)
    assert.ok(after(2).includes(2 * FOLD_SETTLE_MS), `then twice as long: ${String(after(2))}`)
    moving = false
    await until('the fold stamped', () => folds > 0, 60_000)
    assert.equal(moved.length, 3)
    assert.equal(v.foldMoved.has(id), false, 'the back-off ended')
  })

  // the write in flight lies over extents the fold holds, or past them: either way a newer
  // extent, which leaves the fold point (sameFoldPoint: the pieces numbered up to the fold's last)
  for (const [where, at] of [['over', 50], ['past', 200_000]] as const) {
  it(`a fold whose stamp finds a write of this host ${where} its extents unapplied stamps the fold built once it landed: not built again, not found moved (fold42, mend42a)`, async () => {
    assert.ok(FOLD_STAMP_TRIES > 1)
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/db', new Uint8Array(256 * 1024).fill(7))
    const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
    const { moved, calls } = spyFolds(vol, id)
    let writing = false
    let folds = 0
    let wrote = 0
    let foldAfterWrite = false
    onEachOp(vol.tree, (op) => {
      if (op.body.type === 'fold') {
        folds++
        foldAfterWrite = wrote > 0
      } else if (writing) wrote++
    })
    // the fold's chunk puts are held (every put begun before the write below: only the fold's)
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
    const tree = vol.tree as unknown as { landedFor: (inode: string) => Promise<void> }
    let waiting = 0
    const landedFor = tree.landedFor.bind(tree)
    tree.landedFor = async inode => {
      if (inode === id && holdLog) waiting++
      await landedFor(inode)
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
    const begun = calls()
    // a write of this host on the file is stamped while the fold is held, and not applied yet
    writing = true
    holdLog = true
    const b = new Uint8Array(100).fill(200)
    await fh.write(b, 0, b.byteLength, at)
    const synced = fh.sync()
    await until('the write is stamped', () => vol.tree.unapplied(id), 60_000)
    release()
    await until('the fold waits for the write to land', () => waiting > 0, 60_000)
    assert.equal(moved.length, 0, 'not found moved before the write landed')
    holdLog = false
    land()
    await synced
    await fh.close()
    await until('a fold stamped', () => folds > 0, 60_000)
    assert.deepEqual({ moved: moved.length, built: calls() - begun, foldAfterWrite }, { moved: 0, built: 0, foldAfterWrite: true }, 'the fold built stamped once the write landed')
    await until('the settled extents are folded', () => (vol.tree.get(id)!.extents?.length ?? 0) < FOLD_EXTENTS / 2, 60_000)
    const out = await vol.readFile('/db')
    assert.deepEqual([out[0], out[at - 1], out[at], out[at + 99], out[at + 100], out[1000], out[1100]], [0, at < 100 ? 0 : 7, 200, 200, 7, 1, 7], 'the bytes as written')
  })
  }

  it('a close while a fold found moved the first time waits for this host\'s ops on the file: no fold, no timer after it', async () => {
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir })
    let closed = false
    t.add(async () => { if (!closed) await vol.close() })
    await vol.writeFile('/log', enc.encode('start\n'))
    const id = vol.tree.byIno((await vol.stat('/log')).ino)!.id
    const { v, waits, moved, calls } = spyFolds(vol, id)
    // an op of this host on the file is on its way; once the fold is found moved (its stamp's
    // FOLD_STAMP_TRIES waits for it end at once), it lands only at the close
    const { waited } = holdLanding(t, vol, id, { pending: () => true, held: () => moved.length > 0 })
    await appendLines(vol, FOLD_EXTENTS + 4)
    await until('a fold found the file moved and waits for the op to land', () => moved.length === 1 && waited() === 1, 60_000)
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
    // (the close waited for the fold's work, which gave up the wait: nothing is left to begin one)
  })

  it('a close while a fold built waits in its stamp for this host\'s ops on the file: nothing stamped, no timer after it (mend42a)', async () => {
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir })
    let closed = false
    t.add(async () => { if (!closed) await vol.close() })
    await vol.writeFile('/log', enc.encode('start\n'))
    const id = vol.tree.byIno((await vol.stat('/log')).ino)!.id
    const { v, moved } = spyFolds(vol, id)
    let folds = 0
    onEachOp(vol.tree, (op) => {
      if (op.body.type === 'fold') folds++
    })
    // an op of this host on the file is on its way, and lands only at the close
    const { waited } = holdLanding(t, vol, id, { pending: () => true })
    await appendLines(vol, FOLD_EXTENTS + 4)
    await until('a fold built waits for the op to land', () => waited() === 1, 60_000)
    assert.equal(moved.length, 0, 'not found moved')
    assert.equal(v.folding.has(id), true, 'the wait is the fold\'s work')
    const closing = vol.close()
    closed = true
    await closing
    assert.deepEqual({ timers: v.foldTimers.size, folds, moved: moved.length }, { timers: 0, folds: 0, moved: 0 }, 'nothing stamped, no timer after the close')
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

  /**
   * A Volume whose folds of `/log` are scripted (the first found moved, the next ones leave
   * nothing to do) and whose tree has an op of this host on the file on its way until `land`:
   * `folds`, each fold begun (quiet or not, and what it left once it ends); `asks`, each fold
   * asked for later.
   */
  async function scripted (foldIdleMs?: number): Promise<{ v: Spied, id: string, land: () => void, waited: () => number, folds: Array<{ quiet: boolean, left?: string }>, asks: Array<{ ms: number, quiet: boolean | undefined }> }> {
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir, foldIdleMs })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/log', enc.encode('start\n'))
    await appendLines(vol, 4)
    const id = vol.tree.byIno((await vol.stat('/log')).ino)!.id
    const v = vol as unknown as Spied
    // the commits' fold timer is dropped: the folds below are the test's alone
    clearTimeout(v.foldTimers.get(id) as ReturnType<typeof setTimeout>)
    v.foldTimers.delete(id)
    const { land, waited } = holdLanding(t, vol, id)
    const asks: Array<{ ms: number, quiet: boolean | undefined }> = []
    const foldLater = v.foldLater.bind(vol)
    v.foldLater = (inode, ms, quiet) => {
      if (inode === id) asks.push({ ms, quiet })
      foldLater(inode, ms, quiet)
    }
    const folds: Array<{ quiet: boolean, left?: string }> = []
    v.fold = async (inode, quiet) => {
      const rec: { quiet: boolean, left?: string } = { quiet }
      folds.push(rec)
      await Promise.resolve()
      rec.left = folds.length === 1 ? 'moved' : 'sparse'
      return rec.left
    }
    return { v, id, land, waited, folds, asks }
  }

  it('a quiet fold found moved the first time is made again once its ops landed, not put off for idleness (mend42a)', async () => {
    // foldIdleMs long: a fold put off for idleness is not made before the test looks
    const { v, id, land, waited, folds, asks } = await scripted(60_000)
    // the file is quiet and the host idle: a quiet fold (as its FOLD_QUIET_MS timer asks)
    v.busyAt = -Infinity
    v.foldIfDue(id, true)
    assert.equal(folds.length, 1, 'the quiet fold began')
    await until('the fold found the file moved and waits for the op to land', () => folds[0].left === 'moved' && waited() === 1, 60_000)
    // the op it waits for is a local one: the host is busy as of its commit
    v.busyAt = performance.now()
    const at = asks.length
    land()
    await until('the retry began or was put off', () => folds.length > 1 || asks.length > at + 1, 60_000)
    assert.deepEqual({ folds: folds.map(f => f.quiet), asks: asks.slice(at) }, { folds: [true, true], asks: [{ ms: 0, quiet: true }] }, 'made again at once, quiet')
  })

  it('a quiet fold asked while a fold found moved waits for its ops makes the retry quiet, and no second fold follows it (mend42a)', async () => {
    const { v, id, land, waited, folds, asks } = await scripted()
    // a commit's fold (not quiet: its extents past the bounds), found moved
    v.foldTallies.set(id, { due: () => true })
    v.foldIfDue(id, false)
    assert.equal(folds.length, 1, 'the fold began')
    assert.equal(folds[0].quiet, false)
    await until('the fold found the file moved and waits for the op to land', () => folds[0].left === 'moved' && waited() === 1, 60_000)
    // its FOLD_QUIET_MS timer fires meanwhile: a quiet fold is asked, kept for when the fold's work ends
    v.foldIfDue(id, true)
    assert.equal(v.foldAgain.get(id), true, 'the quiet ask is kept')
    const at = asks.length
    land()
    await until('the retry fold ended, nothing due at once', () => folds.length > 1 && folds.every(f => f.left !== undefined) && !v.folding.has(id) && !v.foldTimers.has(id), 60_000)
    assert.deepEqual(asks.slice(at), [{ ms: 0, quiet: true }], 'the retry is quiet: it stands for the quiet ask')
    assert.deepEqual(folds.map(f => f.quiet), [false, true], 'one fold made again, none right behind it')
    assert.equal(v.foldAgain.has(id), false)
  })

  it('a fold waiting in its stamp for this host\'s op, whose file loses its last name meanwhile, stamps nothing once the op lands (review42c)', async () => {
    const dir = await tempDir(t, 'darkfs-fold-moved-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/log', enc.encode('start\n'))
    const id = vol.tree.byIno((await vol.stat('/log')).ino)!.id
    const v = vol as unknown as Spied
    const lefts: string[] = []
    const fold = v.fold.bind(vol)
    v.fold = async (inode, quiet) => {
      const left = await fold(inode, quiet)
      if (inode === id) lefts.push(left)
      return left
    }
    let folds = 0
    onEachOp(vol.tree, (op) => { if (op.body.type === 'fold') folds++ })
    let faking = true
    const { land, waited } = holdLanding(t, vol, id, { pending: () => faking, held: () => faking })
    await appendLines(vol, FOLD_EXTENTS + 4)
    await until('a fold built waits in its stamp for the op', () => waited() === 1 && v.folding.has(id), 60_000)
    const before = lefts.length
    await vol.unlink('/log')
    faking = false
    land()
    await until('the fold ended', () => lefts.length > before && !v.folding.has(id), 60_000)
    assert.deepEqual({ folds, left: lefts.slice(before) }, { folds: 0, left: ['none'] }, 'no fold op for a file with no name')
  })
})
