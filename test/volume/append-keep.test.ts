// A flush or close of one handle keeps back another open handle's last appends (append37): the
// kernel may deliver one O_APPEND write(2) as several writes, and a commit between them made one
// line two ops (test/cluster/append-split-flush.test.ts shows a peer's append landing inside it).
// What each commit takes, on one host: the tree's size of the file is what is committed.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Volume, APPEND_KEEP_MAX, APPEND_KEEP_IDLE_MS } from 'darkfs'
import type { OpenFile } from '../../node/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()
const MiB = 1 << 20

/** The open file behind a handle (Volume keeps them by inode id). */
function openFileOf (volume: Volume, ino: bigint | number): OpenFile {
  const id = volume.tree.byIno(Number(ino))!.id
  return (volume as unknown as { open_: Map<string, OpenFile> }).open_.get(id)!
}

describe('volume: a flush keeps back another handle\'s last appends (one host)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let volume: Volume

  before(async () => {
    volume = await Volume.open({ dir: await tempDir(t, 'darkfs-append-keep-') })
    t.add(async () => { await volume.close() })
  })

  /** The committed size of /name (the tree's). */
  const committed = async (name: string): Promise<number> => {
    const ino = (await volume.stat(`/${name}`)).ino
    return volume.tree.byIno(ino)!.size
  }
  /** Stops the clock of /name's open file: runs are kept back however slow the machine (APPEND_KEEP_IDLE_MS). */
  const steady = async (name: string): Promise<void> => { openFileOf(volume, (await volume.stat(`/${name}`)).ino).now = () => 0 }
  const text = async (name: string): Promise<string> => dec.decode(await volume.readFile(`/${name}`))
  const put = async (fh: { write: (b: Uint8Array, o: number, l: number, p: number, opts?: { append?: boolean }) => Promise<unknown> }, s: string, opts?: { append?: boolean }): Promise<void> => {
    const b = enc.encode(s)
    await fh.write(b, 0, b.byteLength, 0, opts)
  }

  it('a flush commits its own appends and those before them, not another open handle\'s after them; that handle\'s close commits them as one append', async () => {
    await volume.writeFile('/a', enc.encode('base\n'))
    const before = (await volume.log('/a')).length
    const x = await volume.open('/a', 'a')
    const y = await volume.open('/a', 'a')
    await steady('a')
    await put(x, 'x1\n')
    await put(y, 'y1\n')
    await put(x, 'D2B2')
    await y.flush()
    assert.equal(await committed('a'), 11, 'base, x1 and y1 committed; X\'s last run kept back')
    assert.equal(await text('a'), 'base\nx1\ny1\nD2B2', 'this host reads the pending bytes')
    await put(x, '39\n')
    await y.close()
    assert.equal(await committed('a'), 11, 'a close that is not the last keeps them back too')
    await x.close()
    assert.equal(await committed('a'), 18)
    assert.equal(await text('a'), 'base\nx1\ny1\nD2B239\n')
    assert.deepEqual((await volume.log('/a')).slice(before).map(v => v.size), [11, 18], 'X\'s line is one append')
  })

  it('a handle with nothing of its own after the other\'s run commits nothing of it; an fsync commits everything', async () => {
    await volume.writeFile('/s', enc.encode('base\n'))
    const x = await volume.open('/s', 'a')
    const r = await volume.open('/s', 'r')
    await steady('s')
    await put(x, 'half')
    await r.flush()
    assert.equal(await committed('s'), 5)
    await r.sync()
    assert.equal(await committed('s'), 9, 'fsync: every write the file has (POSIX), a write(2) there in part included')
    await r.close()
    await x.close()
  })

  it('the last close commits everything, and a handle closed with its signal aborted leaves its appends to any next flush', async () => {
    await volume.writeFile('/c', enc.encode('base\n'))
    const x = await volume.open('/c', 'a')
    const y = await volume.open('/c', 'a')
    await steady('c')
    await put(x, 'x whole\n')
    const gone = new AbortController()
    gone.abort()
    await x.close({ signal: gone.signal }).then(() => {}, () => {})
    assert.equal(await committed('c'), 5, 'the aborted close committed nothing')
    await y.flush()
    assert.equal(await committed('c'), 13, 'X is closed: its appends are whole, the flush takes them')
    await put(y, 'y\n')
    const z = await volume.open('/c', 'a')
    await put(z, 'z part')
    await y.close()
    assert.equal(await committed('c'), 15)
    await z.close()
    assert.equal(await text('c'), 'base\nx whole\ny\nz part')
    assert.equal(await committed('c'), 21)
  })

  it('times set on the file while another handle\'s run is pending: their timer\'s commit takes the run with them', async () => {
    await volume.writeFile('/t', enc.encode('base\n'))
    const x = await volume.open('/t', 'a')
    const y = await volume.open('/t', 'a')
    await steady('t')
    await put(x, 'half')
    await volume.utimes('/t', new Date(1_000_000), new Date(2_000_000))
    // held with the writes, then committed with them (HELD_ATTRS_MS): not held as long as X is open
    await until('the held times and X\'s run are committed', async () => await committed('t') === 9 && (await volume.stat('/t')).mtimeMs === 2_000_000, 10_000)
    await x.close()
    await y.close()
  })

  it('times set after another handle\'s kept-back append stay held with its run: a flush that keeps the run back does not stamp them under the run\'s version (review37a)', async () => {
    await volume.writeFile('/u', enc.encode('base\n'))
    const x = await volume.open('/u', 'a')
    const y = await volume.open('/u', 'a')
    await steady('u')
    await put(y, 'y1\n')
    await put(x, 'half')
    await volume.utimes('/u', new Date(1_000_000), new Date(2_000_000))
    await y.flush()
    assert.equal(await committed('u'), 8, 'X\'s run kept back')
    assert.equal((await volume.stat('/u')).mtimeMs, 2_000_000, 'the utimes came after every write: its mtime is shown')
    await x.close()
    assert.equal(await committed('u'), 12)
    assert.equal((await volume.stat('/u')).mtimeMs, 2_000_000, 'stamped after the run\'s version')
    await y.close()
    assert.equal((await volume.stat('/u')).mtimeMs, 2_000_000)
  })

  it(`a run whose handle wrote nothing for ${APPEND_KEEP_IDLE_MS} ms is committed by another handle's flush; one written within it is kept back (review37a: a log writer keeping its fd open)`, async () => {
    await volume.writeFile('/i', enc.encode('base\n'))
    const x = await volume.open('/i', 'a')
    const y = await volume.open('/i', 'a')
    const f = openFileOf(volume, (await x.stat()).ino)
    let now = 1_000_000
    f.now = () => now
    await put(x, 'line 1\n')
    now += APPEND_KEEP_IDLE_MS - 1
    await y.flush()
    assert.equal(await committed('i'), 5, 'written within the bound: the rest of its write(2) may come')
    now += 2
    await y.flush()
    assert.equal(await committed('i'), 12, 'idle past the bound: its write(2)s are whole, published by another handle\'s flush')
    await put(x, 'line 2\n')
    now += APPEND_KEEP_IDLE_MS - 1
    await put(x, 'li')
    now += APPEND_KEEP_IDLE_MS - 1
    await y.close()
    assert.equal(await committed('i'), 12, 'the bound counts from the run\'s last write')
    now += 2
    const z = await volume.open('/i', 'r')
    await z.flush()
    assert.equal(await committed('i'), 21)
    await z.close()
    await x.close()
  })

  it('a write that ends its write(2) (`ends`, a short piece through the mount) ends its run: a writer of a line every moment has each committed by another handle\'s flush; pieces with more to come are still kept back (mend37a2)', async () => {
    await volume.writeFile('/w', enc.encode('base\n'))
    const before = (await volume.log('/w')).length
    const x = await volume.open('/w', 'a')
    const y = await volume.open('/w', 'a')
    // the clock stopped: every run is as fresh as can be (APPEND_KEEP_IDLE_MS never passes)
    await steady('w')
    let size = 5
    for (const line of ['l1\n', 'line 2\n', 'l3\n']) {
      await put(x, line, { owner: 7, ends: true } as any)
      size += line.length
      await y.flush()
      assert.equal(await committed('w'), size, `"${line.trim()}" committed by Y's flush while X writes on`)
    }
    // a piece with more to come (no `ends`): kept back until the last piece of its write(2)
    await put(x, 'D2B2', { owner: 7 } as any)
    await y.flush()
    assert.equal(await committed('w'), size, 'a piece with more to come is kept back')
    await put(x, '39\n', { owner: 7, ends: true } as any)
    await y.flush()
    assert.equal(await committed('w'), size + 7, 'its last piece ends the run: committed whole')
    assert.deepEqual((await volume.log('/w')).slice(before).map(v => v.size), [8, 15, 18, 25], 'each write(2) one append')
    assert.equal(await text('w'), 'base\nl1\nline 2\nl3\nD2B239\n')
    await x.close()
    await y.close()
  })

  it('a run whose next piece waits for its turn behind the commit is not idle, however long the queue held it (review37a)', async () => {
    await volume.writeFile('/q', enc.encode('base\n'))
    const x = await volume.open('/q', 'a')
    const y = await volume.open('/q', 'a')
    const f = openFileOf(volume, (await x.stat()).ino) as any
    let now = 1_000_000
    f.now = () => now
    await put(x, 'D2B2')
    // the file's queue held (a slow turn before the commit), the clock past the bound meanwhile
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    const held = f.serial(async () => await gate)
    let queued!: () => void
    const commitQueued = new Promise<void>(resolve => { queued = resolve })
    const commit = f.commit.bind(f)
    f.commit = (...args: any[]) => { const p = commit(...args); queued(); return p }
    const flushing = y.flush()
    await commitQueued
    // the rest of X's write(2) came, behind the commit
    const rest = put(x, '39\n')
    now += 2 * APPEND_KEEP_IDLE_MS
    open()
    await Promise.all([held, flushing, rest])
    f.commit = commit
    assert.equal(await committed('q'), 5, 'kept back: its next piece was waiting')
    await x.close()
    assert.deepEqual(await text('q'), 'base\nD2B239\n')
    assert.equal(await committed('q'), 12)
    await y.close()
  })

  it('an empty append through another handle does not take the run over: its flush keeps the run back (review37a)', async () => {
    await volume.writeFile('/e', enc.encode('base\n'))
    const x = await volume.open('/e', 'a')
    const y = await volume.open('/e', 'a')
    await steady('e')
    await put(x, 'half')
    await put(y, '')
    await y.flush()
    assert.equal(await committed('e'), 5, 'X\'s run kept back')
    await x.close()
    assert.equal(await committed('e'), 9)
    await y.close()
  })

  it('O_APPEND set after open (options.append per write) is kept back as well; a positioned write commits as before', async () => {
    await volume.writeFile('/f', enc.encode('base\n'))
    const x = await volume.open('/f', 'r+')
    const y = await volume.open('/f', 'a')
    await steady('f')
    await put(x, 'fcntl', { append: true })
    await y.flush()
    assert.equal(await committed('f'), 5)
    // a positioned write makes the commit a whole version (or extents): nothing is kept back then
    const z = await volume.open('/f', 'r+')
    await put(z, 'B')
    await y.flush()
    assert.equal(await committed('f'), 10)
    assert.equal(await text('f'), 'Base\nfcntl')
    for (const h of [x, y, z]) await h.close()
  })

  it('a version that ends inside a chunk another handle\'s run goes on in (stored early): both read back whole', async () => {
    const base = randomBytes(1000)
    await volume.writeFile('/big', base)
    const x = await volume.open('/big', 'a')
    const y = await volume.open('/big', 'a')
    await steady('big')
    const mine = randomBytes(MiB + MiB / 2 - 1000)
    const theirs = randomBytes(MiB + 12345)
    await y.write(mine, 0, mine.byteLength, 0)
    // X goes on where Y ended (a sequential writer: the chunk it finishes is stored early)
    await x.write(theirs, 0, MiB / 2, 0)
    await x.write(theirs, MiB / 2, theirs.byteLength - MiB / 2, 0)
    await y.close()
    assert.equal(await committed('big'), MiB + MiB / 2)
    assert.ok(Buffer.from(await volume.readFile('/big')).equals(Buffer.concat([base, mine, theirs])))
    await x.close()
    assert.equal(await committed('big'), MiB + MiB / 2 + theirs.byteLength)
    assert.ok(Buffer.from(await volume.readFile('/big')).equals(Buffer.concat([base, mine, theirs])))
    const fresh = await volume.open('/big', 'r')
    const got = new Uint8Array(MiB * 4)
    const { bytesRead } = await fresh.read(got, 0, got.byteLength, 0)
    await fresh.close()
    assert.ok(Buffer.from(got.subarray(0, bytesRead)).equals(Buffer.concat([base, mine, theirs])), 'the committed versions read back')
  })

  it(`past ${APPEND_KEEP_MAX} bytes in another handle's run, a flush commits them (nothing held twice in memory)`, async () => {
    await volume.writeFile('/huge', enc.encode('base\n'))
    const x = await volume.open('/huge', 'a')
    const y = await volume.open('/huge', 'a')
    const run = new Uint8Array(APPEND_KEEP_MAX + 1).fill(0x61)
    await x.write(run, 0, run.byteLength, 0)
    await y.flush()
    assert.equal(await committed('huge'), 5 + run.byteLength)
    await x.close()
    await y.close()
  })
})
