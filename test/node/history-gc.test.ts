// History versions survive garbage collection (DESIGN.md §3: GC keeps every version younger than
// the retention period). A positioned extent's version reads the file as it was right after it
// (Tree.versionBytes): the content read then (the base, or the fold standing in for it) and the
// extents over it. Folds replace that content: after a second fold, the first fold's content is
// read by no current state, only by the versions made over it; and after a whole write, the base
// and every extent are read only by history. retained() (what GC keeps, repair keeps redundant and
// status counts) must list all of it for every version within the retention period, and each such
// version reads back as it was after GC; a version past the retention period whose blocks GC
// removed fails with a clear error, never with wrong bytes. A second host that receives the ops
// has the same history, reading the same contents. A fold made stale by an append that arrives
// late (made offline, sorting between appends two folds held) leaves the file readable and
// foldable after GC removed the blocks of the fold before it (crdt.ts stale()).
import assert from 'node:assert/strict'
import { Volume, FOLD_SETTLE_MS } from 'darkfs'
import { Collector } from '../../node/keeper/gc.ts'
import { retained } from '../../node/keeper/retained.ts'
import type { Store } from '../../node/data/index.ts'
import type { CID } from 'multiformats/cid'
import type { Content, InodeId } from '../../node/tree/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { replica } from '../helpers/tree.ts'
import { BlockUnavailableError } from '../../node/errors.ts'
import { onEachOp } from '../../harness/ops.ts'

const MiB = 1 << 20
const HOUR = 3600_000

function bytes (n: number, fill: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (fill + i * 7) & 0xff
  return b
}

/** The Volume's private parts this test drives: its store, and its fold of a file. */
interface Inside {
  store: Store
  folding: Map<InodeId, Promise<void>>
  foldIfDue: (inode: InodeId, quiet?: boolean) => void
}

/** Fold every extent of a file now (they settle first: a fold holds only settled ones). */
async function foldAll (vol: Volume, inside: Inside, id: InodeId): Promise<void> {
  const last = vol.tree.get(id)!.extents!.at(-1)!
  await until('the extents settle', async () => last.hlc[0] <= Date.now() - FOLD_SETTLE_MS, 60_000)
  await until('a fold holds every extent', async () => {
    inside.foldIfDue(id, true)
    await inside.folding.get(id)
    return vol.tree.get(id)!.extents === undefined
  }, 60_000)
}

describe('volume: history versions and GC', function () {
  this.timeout(180_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  /** A volume on a fresh directory whose ops are recorded (for a second host), with /f written (closed on teardown; close is idempotent). */
  async function withFile (prefix: string): Promise<{ dir: string, vol: Volume, inside: Inside, ops: Uint8Array[], first: Uint8Array, id: InodeId }> {
    const dir = await tempDir(t, prefix)
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const ops: Uint8Array[] = []
    onEachOp(vol.tree, (op) => { ops.push(vol.tree.getOp(op.cid)!) })
    const first = bytes(3 * MiB + 1234, 1)
    await vol.writeFile('/f', first)
    const id = vol.tree.byIno((await vol.stat('/f')).ino)!.id
    return { dir, vol, inside: vol as unknown as Inside, ops, first, id }
  }

  it('every version within retention reads back after two folds, a whole write and GC; one past it fails clearly', async () => {
    const { dir, vol, inside, ops, first: written, id } = await withFile('darkfs-history-gc-')
    let model = written
    /** version op -> its bytes, read as soon as it was made */
    const expected = new Map<string, Uint8Array>()
    const newest = async (): Promise<void> => {
      const vs = vol.tree.history(id)
      for (const v of vs) {
        const op = v.op.toString()
        if (!expected.has(op)) expected.set(op, await vol.readVersion('/f', op))
      }
      assert.ok(Buffer.from(expected.get(vs[vs.length - 1].op.toString())!).equals(model), 'the newest version is the file')
    }
    await newest()
    // positioned extents, longer than inline (stored content), one fsync each
    const fh = await vol.open('/f', 'r+')
    t.add(async () => { await fh.close().catch(() => {}) })
    let k = 0
    const extent = async (): Promise<void> => {
      const pos = (k % 3) * MiB + 8192 * (k + 1)
      const data = bytes(20_000, 40 + k++)
      await fh.write(data, 0, data.byteLength, pos)
      model.set(data, pos)
      await fh.sync()
      assert.ok((vol.tree.get(id)!.extents?.length ?? 0) > 0, 'a positioned extent')
      await newest()
    }
    const fold = async (): Promise<void> => {
      await foldAll(vol, inside, id)
      assert.ok(Buffer.from(await vol.readFile('/f')).equals(model), 'a fold changes no byte')
    }
    await extent()
    await extent()
    await fold()
    const first = vol.tree.foldPoint(id)
    assert.equal(first, undefined, 'nothing left to fold')
    const f1 = vol.tree.get(id)!.content
    // an extent over the first fold: its version reads the first fold's content
    await extent()
    await fold()
    assert.notDeepEqual(vol.tree.get(id)!.content, f1, 'the second fold replaced the first')
    await extent()
    await fh.close()
    // a whole write: the base, both folds and every extent are history's alone now
    model = bytes(2 * MiB + 77, 9)
    await vol.writeFile('/f', model)
    await newest()
    const versions = vol.tree.history(id)
    assert.ok(versions.length >= 6, 'write, 4 fsyncs of extents, write')
    assert.equal(expected.size, versions.length)

    // what every version reads: the manifests of its content and extents
    const needs = (op: string, on = vol): string[] => {
      const s = on.tree.versionBytes(id, op)!
      const out: string[] = []
      for (const c of [s.content, ...s.extents.map(x => x.content)]) if (c !== null && 'manifest' in c) out.push(c.manifest.toString())
      return out
    }
    const oldest = Number(versions[0].time / 1_000_000n)
    // retention covers every version: retained() lists all they read
    const keep = await retained(vol, HOUR, { now: oldest + 1000 })
    for (const v of versions) {
      for (const m of needs(v.op.toString())) assert.ok(keep.manifests.has(m), `version ${v.op.toString()} reads manifest ${m}, not retained`)
    }
    // a second host that receives the ops: the same history, reading the same contents
    const dir2 = await tempDir(t, 'darkfs-history-gc-2-')
    const vol2 = await Volume.open({ dir: dir2 })
    t.add(async () => { await vol2.close() })
    assert.equal((await vol2.tree.receive(ops)).missing.length, 0)
    const keys = (cs: Content[]): string[] => [...new Set(cs.map(c => 'manifest' in c ? c.manifest.toString() : Buffer.from(c.inline).toString('hex')))].sort()
    assert.deepEqual(vol2.tree.history(id).map(v => v.op.toString()), versions.map(v => v.op.toString()))
    assert.deepEqual(keys(vol2.tree.versionContents(id)), keys(vol.tree.versionContents(id)))
    for (const v of versions) assert.deepEqual(needs(v.op.toString(), vol2), needs(v.op.toString()))

    // GC on a host whose clock is a little behind the writer's (by the test's length): its
    // rounds mark now, and remove an hour later (its clock), when every version is still within
    // the retention period
    const store = inside.store
    let now = oldest - 1000
    const gc = new Collector({ volume: vol, store, now: () => now }, { retentionMs: HOUR, intervalMs: 0 })
    const mark = await gc.collect()
    assert.equal(mark.skipped, false)
    assert.equal(mark.removed.length, 0, 'first seen unreferenced: only marked')
    now += HOUR
    const sweep = await gc.collect()
    assert.equal(sweep.skipped, false)
    vol.chunks.dropCache()
    for (const v of versions) {
      const op = v.op.toString()
      const got = await vol.readVersion('/f', op)
      assert.ok(Buffer.from(got).equals(expected.get(op)!), `version ${op} reads back as it was`)
    }
    assert.ok(Buffer.from(await vol.readFile('/f')).equals(model), 'the current content')

    // past the retention period (by this clock): the old versions' blocks go; reading one fails
    // with an error that says so, never with other bytes
    now += 10 * HOUR
    await gc.collect()
    now += 2 * HOUR
    const gone = await gc.collect()
    assert.ok(gone.removed.length > 0, 'blocks of versions past retention are removed')
    vol.chunks.dropCache()
    for (const v of versions.slice(0, -1)) {
      await assert.rejects(vol.readVersion('/f', v.op.toString()), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'EIO', err.message)
        assert.match(err.message, /not readable: block .* is unavailable.*retention period/)
        return true
      })
    }
    assert.ok(Buffer.from(await vol.readVersion('/f', versions.at(-1)!.op.toString())).equals(model), 'the current version')
    assert.ok(Buffer.from(await vol.readFile('/f')).equals(model), 'the current content')
  })

  it('an append that sorts between two folds\' extents, arriving after GC removed the first fold: the file reads and folds', async () => {
    const opened = await withFile('darkfs-stale-fold-')
    const { dir, ops, first: base, id } = opened
    let { vol, inside } = opened
    let fh = await vol.open('/f', 'a')
    t.add(async () => { await fh.close().catch(() => {}) })
    const append = async (fill: number): Promise<Uint8Array> => {
      const data = bytes(20_000, fill)
      // O_APPEND: at the end whatever the position says
      await fh.write(data, 0, data.byteLength, 0)
      await fh.sync()
      return data
    }
    const fold = async (): Promise<void> => { await foldAll(vol, inside, id) }
    const a1 = await append(40)
    const e1 = vol.tree.get(id)!.extents!.at(-1)!
    // host C saw the file up to A's first append, then went offline
    const c = await replica(t)
    assert.equal((await c.tree.receive([...ops])).missing.length, 0)
    await fold()
    const f1 = vol.tree.get(id)!.content!
    const a2 = await append(41)
    await fold()
    assert.notDeepEqual(vol.tree.get(id)!.content, f1, 'the second fold replaced the first')
    // C's append, made offline: it sorts after A's first append and before its second
    c.clock.ms = e1.hlc[0] + 1
    const cData = bytes(3000, 77)
    const made = await c.tree.commit({ type: 'append', inode: id, content: { inline: cData }, at: 0, size: cData.byteLength, time: BigInt(c.clock.ms) * 1_000_000n })
    const late = c.tree.getOp(made.cid)!
    // GC, long after (by its clock): the first fold is read by no current state and by no version
    // within retention: its blocks go
    const store = inside.store
    let now = Date.now() + 3 * HOUR
    const gc = new Collector({ volume: vol, store, now: () => now }, { retentionMs: HOUR, intervalMs: 0 })
    assert.equal((await gc.collect()).skipped, false)
    now += 2 * HOUR
    const sweep = await gc.collect()
    assert.ok(sweep.removed.length > 0, 'blocks past retention are removed')
    // read cold, as any host that has not read it lately (or restarted since): a volume opened again
    await fh.close()
    await vol.close()
    vol = await Volume.open({ dir })
    const reopened = vol
    t.add(async () => { await reopened.close() })
    inside = vol as unknown as Inside
    await assert.rejects(vol.readContent(f1, vol.tree.get(id)!.size, '/f'), BlockUnavailableError, 'the first fold\'s blocks are gone')
    assert.ok(Buffer.from(await vol.readFile('/f')).equals(Buffer.concat([base, a1, a2])), 'the file reads the second fold')
    // C comes back: its append lands between A's, the second fold is stale
    assert.equal((await vol.tree.receive([late])).missing.length, 0)
    const want = Buffer.concat([base, a1, cData, a2])
    assert.ok(Buffer.from(await vol.readFile('/f')).equals(want), 'the file reads base, A1, C1, A2')
    // and folds again: an append, a fold holding every extent, the same bytes
    fh = await vol.open('/f', 'a')
    const a3 = await append(42)
    await fold()
    assert.ok(Buffer.from(await vol.readFile('/f')).equals(Buffer.concat([want, a3])), 'a fold over it changes no byte')
    await fh.close()
  })
})
