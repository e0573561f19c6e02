// A file grown by pwrite at its end (a SQLite WAL: no O_APPEND, so not an append) past
// PATCH_COMMIT_BYTES between fsyncs is committed as positioned extents of the grown bytes alone
// (node/open-file.ts buildGrowth, wal42): the base's last chunk, old bytes included, is never
// stored again; the store is asked for about the bytes written; the file reads back as written
// after a restart and after a fold, which takes the grown extents' whole chunks as they are
// (their CIDs) and rewrites only the chunks two extents share. A rewrite from offset 0 (a WAL
// after a checkpoint) is still a whole version; a write inside the old bytes beside the growth,
// a hole left past the end, and a truncate with the growth all still read back as written.
import assert from 'node:assert/strict'
import { Volume, FOLD_SETTLE_MS } from 'darkfs'
import type { ChunkRef } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { prngInts, seededBytes } from '../../harness/prng.ts'
import { stubPuts } from '../helpers/store-stubs.ts'

const MiB = 1 << 20
const PAGE = 4096
/** A SQLite WAL frame: a 24-byte header and a page. */
const FRAME = 24 + PAGE

describe('volume: growth by pwrite at the end as positioned extents (one host)', function () {
  this.timeout(180_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('WAL frames (24-byte header, 4 KiB page) pwritten at the end, fsync every 1-8, 40-120 or 200-700 frames: the store gets the bytes written once, never the base\'s last chunk; read back after a restart and after a fold, which keeps the whole chunks\' CIDs', async () => {
    const dir = await tempDir(t, 'darkfs-growth-')
    let vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    // the base ends inside its second chunk: those bytes are the "old tail" no commit may store again
    let model = seededBytes(MiB + MiB / 2 + 1234, 42)
    await vol.writeFile('/wal', model)
    const id = vol.tree.byIno((await vol.stat('/wal')).ino)!.id
    const tailMarks = [model.subarray(MiB, MiB + 64), model.subarray(model.byteLength - 64)]
    let put = 0
    let oldTailPuts = 0
    let watching = true
    const watch = (v: Volume): void => {
      stubPuts(v, async (putMany, blocks, o) => {
        if (watching) {
          for (const b of blocks) {
            put += b.bytes.byteLength
            if (tailMarks.some(m => Buffer.from(b.bytes).indexOf(m) >= 0)) oldTailPuts++
          }
        }
        return await putMany(blocks, o)
      })
    }
    watch(vol)
    const next = prngInts(9)
    const fh = await vol.open('/wal', 'r+')
    let appended = 0
    let step = 0
    const grow = async (pages: number): Promise<void> => {
      // WAL frames: a 24-byte header, then the page, each its own pwrite (as SQLite's walWriteOneFrame)
      const data = seededBytes(pages * FRAME, 1000 + step++)
      for (let p = 0; p < pages * FRAME; p += FRAME) {
        await fh.write(data, p, 24, model.byteLength + p)
        await fh.write(data, p + 24, PAGE, model.byteLength + p + 24)
      }
      const m = new Uint8Array(model.byteLength + data.byteLength)
      m.set(model)
      m.set(data, model.byteLength)
      model = m
      appended += data.byteLength
      await fh.sync()
    }
    // small transactions, medium ones, and a few of several MiB (SQLite's 10,000 rows in one)
    while (appended < 8 * MiB) await grow(step % 6 === 2 ? 40 + next(81) : step % 6 === 5 ? 200 + next(500) : 1 + next(8))
    const inode = vol.tree.get(id)!
    assert.equal(inode.size, model.byteLength)
    // one host: one copy of each chunk (k = 1, m = 0); each grown chunk's fragments are k + m blocks of a k-th of it
    const aligned = new Map<number, ChunkRef>()
    let factor = 1
    for (const x of inode.extents ?? []) {
      if (!('manifest' in x.content) || x.offset === undefined || x.at !== x.offset) continue
      const m = await vol.chunks.readManifest(x.content.manifest)
      for (const r of m.chunks) {
        if (r.cid === null) continue
        factor = Math.max(factor, (r.k + r.m) / r.k)
        if (r.size === MiB && r.offset >= x.at && r.offset + r.size <= x.at + x.size) aligned.set(r.offset, r)
      }
    }
    assert.equal(oldTailPuts, 0, 'no block stored since the first base holds bytes of its last chunk (the later bases\' last chunks: the byte bound below)')
    assert.ok(put <= appended * factor * 1.1, `bytes stored ${put} for ${appended} appended, ${factor}x coded`)
    assert.ok(aligned.size >= 2, `the grown bytes' whole chunks are extents at their own offsets (found ${aligned.size})`)
    const check = async (what: string): Promise<void> => {
      assert.equal((await vol.stat('/wal')).size, model.byteLength, `${what}: size`)
      assert.ok(Buffer.from(await vol.readFile('/wal')).equals(model), `${what}: readFile`)
      const r = await vol.open('/wal', 'r')
      for (const pos of [MiB + MiB / 2 + 1000, 2 * MiB - 100, model.byteLength - 9000]) {
        const out = new Uint8Array(9000)
        const { bytesRead } = await r.read(out, 0, out.byteLength, pos)
        assert.ok(Buffer.from(out.subarray(0, bytesRead)).equals(model.subarray(pos, pos + 9000)), `${what}: read at ${pos}`)
      }
      await r.close()
    }
    await check('written')
    await fh.close()
    await vol.close()
    vol = await Volume.open({ dir })
    watch(vol)
    await check('after a restart')
    // folded: each whole chunk of a grown extent is taken as it is (same CID at the same offset)
    watching = false
    const last = vol.tree.get(id)!.extents!.at(-1)!
    await until('the extents settle', async () => last.hlc[0] <= Date.now() - FOLD_SETTLE_MS, 60_000)
    const grown = model.byteLength
    const g = await vol.open('/wal', 'r+')
    await until('a fold holds the grown extents', async () => {
      const data = seededBytes(PAGE, 5000 + step++)
      await g.write(data, 0, PAGE, model.byteLength)
      const m = new Uint8Array(model.byteLength + PAGE)
      m.set(model)
      m.set(data, model.byteLength)
      model = m
      await g.sync()
      return vol.tree.get(id)!.extents === undefined || vol.tree.get(id)!.extents!.every(x => x.pos >= grown)
    }, 60_000)
    await g.close()
    const folded = vol.tree.get(id)!
    assert.ok(folded.content !== null && 'manifest' in folded.content)
    const fm = await vol.chunks.readManifest(folded.content.manifest)
    let kept = 0
    for (const [offset, ref] of aligned) {
      const r = fm.chunks.find(c => c.offset === offset)
      assert.ok(r?.cid?.equals(ref.cid!), `the fold keeps the grown chunk at ${offset} as it was`)
      kept++
    }
    assert.equal(kept, aligned.size)
    await check('after a fold')
  })

  it('a hole past the end, a write inside the old bytes beside the growth, a truncate with it, a rewrite from offset 0: each fsync reads back as written, and after a restart', async () => {
    const dir = await tempDir(t, 'darkfs-growth-mixed-')
    let vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    let model = seededBytes(MiB + MiB / 2 + 77, 7)
    await vol.writeFile('/wal', model)
    const id = vol.tree.byIno((await vol.stat('/wal')).ino)!.id
    const fh = await vol.open('/wal', 'r+')
    let seed = 100
    const write = async (at: number, n: number): Promise<void> => {
      const data = seededBytes(n, seed++)
      for (let p = 0; p < n; p += PAGE) await fh.write(data, p, Math.min(PAGE, n - p), at + p)
      if (at + n > model.byteLength) { const m = new Uint8Array(at + n); m.set(model); model = m }
      model.set(data, at)
    }
    const check = async (what: string): Promise<void> => {
      assert.equal((await vol.stat('/wal')).size, model.byteLength, `${what}: size`)
      assert.ok(Buffer.from(await vol.readFile('/wal')).equals(model), `${what}: readFile`)
    }
    // growth alone: extents over the base
    await write(model.byteLength, 300 * 1024)
    await fh.sync()
    assert.ok((vol.tree.get(id)!.extents?.length ?? 0) > 0, 'the growth is extents')
    await check('growth')
    // a hole left between the end and the growth (zeros, written by no one)
    await write(model.byteLength + 5000, 2 * MiB + 300 * 1024 + 11)
    await fh.sync()
    await check('growth past a hole')
    // a page inside the old bytes beside the growth
    await write(100, PAGE)
    await write(model.byteLength, 700 * 1024)
    await fh.sync()
    await check('growth and a page inside the old bytes')
    // a truncate below the end, then growth past the old end, in one commit
    await fh.truncate(model.byteLength - 200_000)
    model = model.slice(0, model.byteLength - 200_000)
    await write(model.byteLength, 600 * 1024)
    await fh.sync()
    await check('a truncate and growth')
    // a WAL after a checkpoint: rewritten from offset 0 (more than PATCH_COMMIT_BYTES)
    await write(0, 400 * 1024)
    await fh.sync()
    assert.equal(vol.tree.get(id)!.extents, undefined, 'a rewrite from 0 is a whole version')
    await check('a rewrite from 0')
    await fh.close()
    await vol.close()
    vol = await Volume.open({ dir })
    await check('after a restart')
  })
})
