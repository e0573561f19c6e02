// Times set on a file open here are held with its writes not committed yet (node/volume.ts, the
// head): they are committed after those writes' version, never onto bytes that are not in it.
// A Volume closed while a file holds writes not committed, or a close that gives its writes up
// (no space), drops the times held with them (another host would see the old bytes as new:
// `cp -pu` and `tar --keep-newer-files` skip such a file); the mode and owner held with them go.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Volume } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { stubChunkStores } from '../helpers/store-stubs.ts'
import { onEachOp } from '../../harness/ops.ts'

const MTIME = new Date('2001-02-03T04:05:06Z')

describe('Volume: times held with writes not committed', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('a Volume closed with a file open drops the times held with its writes and commits its mode', async () => {
    const dir = await tempDir(t, 'darkfs-held-')
    const vol = await Volume.open({ dir })
    let closed = false
    t.add(async () => { if (!closed) await vol.close() })
    // the hold's timer (HELD_ATTRS_MS) would commit the writes with the times first: left out, so
    // what is held is still held when the Volume closes
    ;(vol as unknown as { holdTimer: () => void }).holdTimer = () => {}
    const before = await (async () => { await vol.writeFile('/f', 'old'); return await vol.stat('/f') })()
    const fh = await vol.open('/f', 'r+')
    await fh.write(Buffer.from('new bytes'), 0, 9, 0)
    await fh.utimes(MTIME, MTIME)
    await fh.chmod(0o600)
    assert.equal((await fh.stat()).mtimeMs, MTIME.getTime(), 'held: this host shows the times')
    await vol.close()
    closed = true
    const again = await Volume.open({ dir })
    t.add(async () => { await again.close() })
    const st = await again.stat('/f')
    assert.equal(Buffer.from(await again.readFile('/f')).toString(), 'old', 'the writes were not committed')
    assert.equal(st.mode & 0o7777, 0o600, 'the mode held went')
    assert.equal(st.mtimeMs, before.mtimeMs, 'the old bytes keep their mtime')
    assert.notEqual(st.atimeMs, MTIME.getTime())
  })

  it('a close that gives its writes up (no space) drops the times held with them; the mode goes within HELD_ATTRS_MS', async () => {
    const dir = await tempDir(t, 'darkfs-held-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/f', 'old')
    const before = await vol.stat('/f')
    const setattrs: Array<Record<string, unknown>> = []
    onEachOp(vol.tree, (op, local) => { if (local && op.body.type === 'setattr') setattrs.push(op.body) })
    ;(vol as unknown as { holdTimer: () => void }).holdTimer = () => {}
    const fh = await vol.open('/f', 'r+')
    const data = randomBytes(200_000)
    await fh.write(data, 0, data.byteLength, 0)
    await fh.utimes(MTIME, MTIME)
    await fh.chmod(0o600)
    const full = (): Error => Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
    stubChunkStores(vol, async () => { throw full() })
    vol.chunks.storeChunk = async () => { throw full() }
    // the timer back, for the mode held: it is what commits it once the file is dropped
    delete (vol as unknown as { holdTimer?: () => void }).holdTimer
    await assert.rejects(fh.close(), (err: any) => err.code === 'ENOSPC')
    await until('the held mode committed', () => setattrs.length > 0, 10_000)
    assert.deepEqual(setattrs.map(b => [b.mode, b.mtime, b.atime]), [[0o600, undefined, undefined]])
    const st = await vol.stat('/f')
    assert.equal(Buffer.from(await vol.readFile('/f')).toString(), 'old')
    assert.equal(st.mode & 0o7777, 0o600)
    assert.equal(st.mtimeMs, before.mtimeMs, 'the old bytes keep their mtime')
  })

  it('a close that gives its writes up keeps the times set before those writes (they describe the version that stays), not the ones set after', async () => {
    // place34: the release of a file whose writes were given up dropped every time held, those
    // set while the file had no writes pending too
    const dir = await tempDir(t, 'darkfs-held-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/f', 'old')
    const setattrs: Array<Record<string, unknown>> = []
    onEachOp(vol.tree, (op, local) => { if (local && op.body.type === 'setattr') setattrs.push(op.body) })
    ;(vol as unknown as { holdTimer: () => void }).holdTimer = () => {}
    const fh = await vol.open('/f', 'r+')
    const ATIME = new Date('2003-01-01T00:00:00Z')
    const LATER = new Date('2010-01-01T00:00:00Z')
    // set with no write pending: the committed version's times
    await fh.utimes(ATIME, MTIME)
    const data = randomBytes(200_000)
    await fh.write(data, 0, data.byteLength, 0)
    // set after the writes: go with them
    await fh.utimes(LATER, LATER)
    await fh.chmod(0o600)
    assert.equal((await fh.stat()).mtimeMs, LATER.getTime(), 'held: this host shows the later times')
    const full = (): Error => Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
    stubChunkStores(vol, async () => { throw full() })
    vol.chunks.storeChunk = async () => { throw full() }
    delete (vol as unknown as { holdTimer?: () => void }).holdTimer
    await assert.rejects(fh.close(), (err: any) => err.code === 'ENOSPC')
    await until('the held change committed', () => setattrs.length > 0, 10_000)
    const ns = (d: Date): bigint => BigInt(d.getTime()) * 1_000_000n
    assert.deepEqual(setattrs.map(b => [b.mode, b.mtime, b.atime]), [[0o600, ns(MTIME), ns(ATIME)]])
    const st = await vol.stat('/f')
    assert.equal(Buffer.from(await vol.readFile('/f')).toString(), 'old')
    assert.equal(st.mode & 0o7777, 0o600)
    assert.equal(st.mtimeMs, MTIME.getTime(), 'the times set before the writes given up')
    assert.equal(st.atimeMs, ATIME.getTime())
  })

  it('a Volume closed with a file open commits the times set before its writes not committed, not the ones set with them', async () => {
    const dir = await tempDir(t, 'darkfs-held-')
    const vol = await Volume.open({ dir })
    let closed = false
    t.add(async () => { if (!closed) await vol.close() })
    ;(vol as unknown as { holdTimer: () => void }).holdTimer = () => {}
    await vol.writeFile('/f', 'old')
    const fh = await vol.open('/f', 'r+')
    await fh.utimes(MTIME, MTIME)
    await fh.write(Buffer.from('new bytes'), 0, 9, 0)
    const LATER = new Date('2010-01-01T00:00:00Z')
    await fh.utimes(LATER, LATER)
    await vol.close()
    closed = true
    const again = await Volume.open({ dir })
    t.add(async () => { await again.close() })
    const st = await again.stat('/f')
    assert.equal(Buffer.from(await again.readFile('/f')).toString(), 'old', 'the writes were not committed')
    assert.equal(st.mtimeMs, MTIME.getTime(), 'the times set before the writes')
    assert.equal(st.atimeMs, MTIME.getTime())
  })

  it('a Volume closed with a file open commits an mtime set before its writes when a chmod came after them (review34a)', async () => {
    // the chmod took the mtime out of the held change (heldMerged: the file was written since),
    // and the closing stamp, seeing no time held, never looked at the times set before the writes
    const dir = await tempDir(t, 'darkfs-held-')
    const vol = await Volume.open({ dir })
    let closed = false
    t.add(async () => { if (!closed) await vol.close() })
    ;(vol as unknown as { holdTimer: () => void }).holdTimer = () => {}
    await vol.writeFile('/f', 'old')
    const fh = await vol.open('/f', 'r+')
    await fh.utimes('omit', MTIME)
    await fh.write(Buffer.from('new bytes'), 0, 9, 0)
    await fh.chmod(0o600)
    await vol.close()
    closed = true
    const again = await Volume.open({ dir })
    t.add(async () => { await again.close() })
    const st = await again.stat('/f')
    assert.equal(Buffer.from(await again.readFile('/f')).toString(), 'old', 'the writes were not committed')
    assert.equal(st.mode & 0o7777, 0o600)
    assert.equal(st.mtimeMs, MTIME.getTime(), 'the mtime set before the writes')
  })

  it("a close that gives its writes up after the hold's timer committed a chmod commits the mtime set before the writes (review34a)", async () => {
    // the timer's stamp of the chmod alone let the times set before the writes go, though it
    // committed none of them
    const dir = await tempDir(t, 'darkfs-held-')
    const vol = await Volume.open({ dir, heldAttrsMs: 50 })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/f', 'old')
    const setattrs: Array<Record<string, unknown>> = []
    onEachOp(vol.tree, (op, local) => { if (local && op.body.type === 'setattr') setattrs.push(op.body) })
    const fh = await vol.open('/f', 'r+')
    await fh.utimes('omit', MTIME)
    const data = randomBytes(200_000)
    await fh.write(data, 0, data.byteLength, 0)
    await fh.chmod(0o600)
    await until('the timer committed the chmod', () => setattrs.length > 0, 10_000)
    assert.deepEqual(setattrs.map(b => [b.mode, b.mtime]), [[0o600, undefined]], 'the chmod alone: the writes are pending')
    const full = (): Error => Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
    stubChunkStores(vol, async () => { throw full() })
    vol.chunks.storeChunk = async () => { throw full() }
    await assert.rejects(fh.close(), (err: any) => err.code === 'ENOSPC')
    const ns = (d: Date): bigint => BigInt(d.getTime()) * 1_000_000n
    await until('the mtime set before the writes committed', () => setattrs.some(b => b.mtime === ns(MTIME)), 10_000)
    // stamped when it was set, not at the give-up: a utimes from a peer since then wins the merge
    // (the chmod after it was committed before, stamped with the chmod's time)
    const stamp = setattrs.find(b => b.mtime === ns(MTIME))!.time as bigint
    assert.ok(stamp < (setattrs[0].time as bigint), `the times' setattr (${stamp}) is stamped before the chmod's (${String(setattrs[0].time)})`)
    assert.equal(Buffer.from(await vol.readFile('/f')).toString(), 'old')
    assert.equal((await vol.stat('/f')).mtimeMs, MTIME.getTime(), 'the mtime set before the writes given up')
  })

  it('times set before writes that were committed since are not committed when later writes are given up', async () => {
    // (the times set before the writes stay past a chmod's commit now: the version of those
    // writes, committed, ends them)
    const dir = await tempDir(t, 'darkfs-held-')
    const vol = await Volume.open({ dir, heldAttrsMs: 50 })
    let closed = false
    t.add(async () => { if (!closed) await vol.close() })
    await vol.writeFile('/f', 'old')
    const setattrs: Array<Record<string, unknown>> = []
    onEachOp(vol.tree, (op, local) => { if (local && op.body.type === 'setattr') setattrs.push(op.body) })
    const fh = await vol.open('/f', 'r+')
    await fh.utimes('omit', MTIME)
    await fh.write(Buffer.from('first'), 0, 5, 0)
    await fh.chmod(0o600)
    await until('the timer committed the chmod', () => setattrs.length > 0, 10_000)
    await fh.sync()
    const written = (await vol.stat('/f')).mtimeMs
    assert.notEqual(written, MTIME.getTime(), 'the committed write\'s time')
    const data = randomBytes(200_000)
    await fh.write(data, 0, data.byteLength, 0)
    const full = (): Error => Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
    stubChunkStores(vol, async () => { throw full() })
    vol.chunks.storeChunk = async () => { throw full() }
    await assert.rejects(fh.close(), (err: any) => err.code === 'ENOSPC')
    // a closing Volume commits whatever is still held
    await vol.close()
    closed = true
    const again = await Volume.open({ dir })
    t.add(async () => { await again.close() })
    assert.equal(Buffer.from(await again.readFile('/f')).toString(), 'first')
    assert.equal((await again.stat('/f')).mtimeMs, written, 'the version\'s mtime, not the one set before it')
  })

  it('a batch that fails holds its mtime again, not as set after a write that came after it (review34a)', async () => {
    // the change held back was merged under a chmod held since, and took the chmod's time: an
    // mtime set before a write then read as set after it, hiding that write's time
    const dir = await tempDir(t, 'darkfs-held-')
    const vol = await Volume.open({ dir })
    let closed = false
    t.add(async () => { if (!closed) await vol.close() })
    ;(vol as unknown as { holdTimer: () => void }).holdTimer = () => {}
    await vol.writeFile('/f', 'old')
    const fh = await vol.open('/f', 'r+')
    await fh.utimes('omit', MTIME)
    // the next batch (a mkdir's, with the held mtime) fails once its caller wrote and chmodded
    const tree = vol.tree as unknown as { commitMany: (...a: unknown[]) => Promise<unknown> }
    const commitMany = tree.commitMany.bind(vol.tree)
    const gate = Promise.withResolvers<void>()
    let entered = false
    tree.commitMany = async (...a: unknown[]) => {
      tree.commitMany = commitMany
      entered = true
      await gate.promise
      throw Object.assign(new Error('the log append failed'), { code: 'EIO' })
    }
    const failing = vol.mkdir('/d')
    await until('the batch is under way', () => entered)
    await fh.write(Buffer.from('new bytes'), 0, 9, 0)
    const written = (await fh.stat()).mtimeMs
    await fh.chmod(0o600)
    gate.resolve()
    await assert.rejects(failing, (err: any) => err.code === 'EIO')
    assert.equal((await fh.stat()).mtimeMs, written, 'the write\'s time, after the mtime set')
    await fh.close()
    const st = await vol.stat('/f')
    assert.equal(Buffer.from(await vol.readFile('/f')).toString(), 'new bytes')
    assert.equal(st.mode & 0o7777, 0o600)
    assert.notEqual(st.mtimeMs, MTIME.getTime(), 'the version\'s mtime, not the one set before its write')
  })

  it("a file whose writes fail to commit with its times held holds back no other file's held mode (the hold's timer)", async () => {
    const dir = await tempDir(t, 'darkfs-held-')
    const vol = await Volume.open({ dir, heldAttrsMs: 50 })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/a', 'a')
    await vol.writeFile('/b', 'b')
    const setattrs: Array<Record<string, unknown>> = []
    onEachOp(vol.tree, (op, local) => { if (local && op.body.type === 'setattr') setattrs.push(op.body) })
    const a = await vol.open('/a', 'r+')
    const [openA] = [...(vol as any).open_.values()]
    const b = await vol.open('/b', 'r+')
    t.add(async () => { await b.close() })
    // a's commit fails (as with no space), whatever the timer or a close asks of it
    let failed = 0
    openA.commit = async () => { failed++; throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }) }
    await a.write(Buffer.from('new'), 0, 3, 0)
    await a.utimes(MTIME, MTIME)
    await b.chmod(0o600)
    await until("b's mode committed by the timer", () => setattrs.some(s => s.mode === 0o600), 10_000)
    assert.equal((await vol.stat('/b')).mode & 0o7777, 0o600)
    assert.ok(failed > 0, "a's commit was tried (and failed)")
    await assert.rejects(a.close())
  })
})
