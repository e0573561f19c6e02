// Positioned extents on the real Volume (issue 15): small pwrites made durable by fsync are
// recorded as positioned extents (`append` ops with `offset`, node/open-file.ts buildPatch),
// never a rewrite of the chunks they land in; the file reads back as written through handles,
// readFile, Volume.reader and after a restart, and past FOLD_EXTENTS the settled extents are
// folded into one version with the bytes unchanged; a burst of them, and a quiet file's few, are
// folded with no further write (a file unlinked first is not); pages scattered over a large file
// are folded only in the chunks they make dense (a partial fold: one chunk rewritten, not the
// file's), the rest once it is quiet; extents made past the bounds while a fold runs are folded
// once it ends (a fold asked for meanwhile is not lost); a quiet large file's pages too sparse to
// be worth a chunk's rewrite (FOLD_QUIET_AMPLIFICATION) stay read as pieces, and the rest are
// folded in batches of FOLD_QUIET_BATCH chunks, once the host has made no op for a while (a
// quiet file's fold waits while the host works on another). An fsync of 16 random 4 KiB writes is one
// multi-extent op (issue 15 item 1), not one op per page.
import assert from 'node:assert/strict'
import { constants } from 'node:fs'
import { Volume, FOLD_AMPLIFICATION, FOLD_INLINE_AMPLIFICATION, FOLD_CHEAP_REWRITE, FOLD_EXTENTS, FOLD_QUIET_AMPLIFICATION, FOLD_QUIET_BATCH, FOLD_QUIET_MS, FOLD_SETTLE_MS, PATCH_COMMIT_BYTES } from 'darkfs'
import type { Store } from '../../node/data/index.ts'
import type { OpBody } from '../../node/tree/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { prngInts } from '../../harness/prng.ts'
import { stubPuts } from '../helpers/store-stubs.ts'
import { onEachOp } from '../../harness/ops.ts'

const MiB = 1 << 20

function bytes (n: number, fill: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (fill + i * 7) & 0xff
  return b
}

describe('volume: positioned extents (one host)', function () {
  this.timeout(180_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  for (const seed of [3, 11]) {
    it(`random pwrites, each batch fsynced: positioned extents, read back as written, after a restart and after a fold (seed ${seed})`, async () => {
      const dir = await tempDir(t, 'darkfs-extents-')
      let vol = await Volume.open({ dir })
      t.add(async () => { await vol.close() })
      const next = prngInts(seed)
      let model = bytes(2 * MiB + 12345, seed)
      await vol.writeFile('/db', model)
      const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
      const write = (data: Uint8Array, pos: number): void => {
        if (pos + data.byteLength > model.byteLength) { const m = new Uint8Array(pos + data.byteLength); m.set(model); model = m }
        model.set(data, pos)
      }
      const check = async (what: string): Promise<void> => {
        assert.equal((await vol.stat('/db')).size, model.byteLength, `${what}: size`)
        assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), `${what}: readFile`)
        const r = await vol.open('/db', 'r')
        // pieces across chunk boundaries through a handle
        for (const pos of [0, MiB - 3000, 2 * MiB - 1, model.byteLength - 5000]) {
          const out = new Uint8Array(9000)
          const { bytesRead } = await r.read(out, 0, out.byteLength, pos)
          assert.ok(Buffer.from(out.subarray(0, bytesRead)).equals(model.subarray(pos, pos + 9000)), `${what}: read at ${pos}`)
        }
        await r.close()
        const file = await vol.reader('/db')
        assert.ok(Buffer.from(await file.read(0, file.size)).equals(model), `${what}: Volume.reader`)
      }
      const fh = await vol.open('/db', 'r+')
      let extentsSeen = 0
      for (let step = 0; step < 60; step++) {
        // a transaction: a few pages anywhere (some past the end, some longer than inline), then fsync
        const n = 1 + next(4)
        for (let i = 0; i < n; i++) {
          const len = next(5) === 0 ? 4097 + next(20_000) : 1 + next(4096)
          const pos = next(8) === 0 ? model.byteLength + next(5000) : next(model.byteLength)
          const data = bytes(len, step * 10 + i)
          await fh.write(data, 0, len, pos)
          write(data, pos)
        }
        const ops = vol.tree.history(id).length
        await fh.sync()
        const inode = vol.tree.get(id)!
        // each fsync of small writes: positioned extents over the base, one version each
        assert.ok(vol.tree.history(id).length > ops, `step ${step}: fsync made a version`)
        extentsSeen = Math.max(extentsSeen, inode.extents?.length ?? 0)
        if (step % 15 === 0) await check(`step ${step}`)
      }
      assert.ok(extentsSeen > 0, 'the fsyncs made positioned extents')
      await check('before the restart')
      await fh.close()
      await vol.close()
      vol = await Volume.open({ dir })
      await check('after a restart')
      // past FOLD_EXTENTS, the settled extents are folded (a fold starts at a commit)
      const more = async (): Promise<void> => {
        const g = await vol.open('/db', 'r+')
        const data = bytes(100, next(256))
        const pos = next(model.byteLength)
        await g.write(data, 0, data.byteLength, pos)
        write(data, pos)
        await g.sync()
        await g.close()
      }
      while ((vol.tree.get(id)!.extents?.length ?? 0) <= FOLD_EXTENTS) await more()
      const last = vol.tree.get(id)!.extents!.at(-1)!
      await until('the extents settle', async () => last.hlc[0] <= Date.now() - FOLD_SETTLE_MS, 60_000)
      await until('a fold holds the settled extents', async () => {
        await more()
        return (vol.tree.get(id)!.extents?.length ?? 0) < FOLD_EXTENTS / 2
      }, 60_000)
      await check('after a fold')
      // a big write is a whole version: no extent left to read
      const g = await vol.open('/db', 'r+')
      const big = bytes(PATCH_COMMIT_BYTES + 1, 99)
      await g.write(big, 0, big.byteLength, 1000)
      write(big, 1000)
      await g.close()
      assert.equal(vol.tree.get(id)!.extents, undefined)
      await check('after a whole write')
      await vol.close()
      vol = await Volume.open({ dir })
      await check('after a second restart')
    })
  }

  it('random 4 KiB pwrites, 16 per fsync: each fsync is one multi-extent op (one signature, one log record) holding all 16 extents', async () => {
    const dir = await tempDir(t, 'darkfs-multiext-')
    let vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const next = prngInts(7)
    const model = bytes(4 * MiB, 5)
    await vol.writeFile('/db', model)
    const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
    /** the ops this host made for /db, in order */
    const made: OpBody[] = []
    onEachOp(vol.tree, (op, local) => {
      if (local && 'inode' in op.body && op.body.inode === id && op.body.type === 'append') made.push(op.body)
    })
    const fh = await vol.open('/db', 'r+')
    for (let sync = 0; sync < 8; sync++) {
      // 16 distinct 4 KiB pages (fio randwrite, bs=4k, fsync=16)
      const pages = new Set<number>()
      while (pages.size < 16) pages.add(next(model.byteLength / 4096))
      for (const page of pages) {
        const data = bytes(4096, sync * 31 + page)
        await fh.write(data, 0, 4096, page * 4096)
        model.set(data, page * 4096)
      }
      const before = made.length
      const versions = vol.tree.history(id).length
      await fh.sync()
      assert.equal(made.length, before + 1, `fsync ${sync}: one op`)
      const op = made[made.length - 1] as Extract<OpBody, { type: 'append' }>
      assert.equal(1 + (op.more?.length ?? 0), 16, `fsync ${sync}: the op holds the 16 extents`)
      assert.equal(vol.tree.history(id).length, versions + 1, `fsync ${sync}: one version`)
      const offsets = [op.offset, ...(op.more ?? []).map(x => x.offset)].sort((a, b) => a! - b!)
      assert.deepEqual(offsets, [...pages].sort((a, b) => a - b).map(p => p * 4096))
    }
    await fh.close()
    assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), 'reads back as written')
    await vol.close()
    vol = await Volume.open({ dir })
    assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), 'reads back after a restart (the ops decoded from the log)')
  })

  it('a new file written and fsynced (a SQLite journal): one op with its bytes inline and no block stored, its version the create\'s; a close alone stays a whole version', async () => {
    const dir = await tempDir(t, 'darkfs-fresh-')
    let vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    let blocks = 0
    stubPuts(vol, async (putMany, b, opts) => { blocks += b.length; await putMany(b, opts) })
    const made: OpBody[] = []
    onEachOp(vol.tree, (op, local) => {
      if (local) made.push(op.body)
    })
    // SQLite's journal: O_RDWR | O_CREAT, a 512-byte header, then page records (4 + 4096 + 4 bytes), one fsync
    const journal = new Uint8Array(512 + 2 * 4104)
    journal.set(bytes(journal.byteLength, 9))
    const fh = await vol.open('/db-journal', constants.O_RDWR | constants.O_CREAT)
    await fh.write(journal, 0, 512, 0)
    for (let at = 512; at < journal.byteLength; at += 4104) await fh.write(journal, at, 4104, at)
    const id = vol.tree.byIno((await vol.stat('/db-journal')).ino)!.id
    const before = made.length
    await fh.sync()
    assert.equal(blocks, 0, 'the fsync stored no block (no chunk, no manifest)')
    const ops = made.slice(before).filter(b => 'inode' in b && b.inode === id)
    assert.equal(ops.length, 1, 'one op')
    const op = ops[0] as Extract<OpBody, { type: 'append' }>
    assert.equal(op.type, 'append')
    assert.equal(op.first, true, 'the first bytes of the file created empty')
    for (const x of [op, ...(op.more ?? [])]) assert.ok('inline' in x.content, 'every piece inline')
    assert.equal(vol.tree.history(id).length, 1, 'one version: the empty create\'s left history')
    // the header rewritten and fsynced again (SQLite's second journal sync): a positioned extent
    await fh.write(bytes(12, 1), 0, 12, 0)
    journal.set(bytes(12, 1), 0)
    await fh.sync()
    assert.equal(blocks, 0, 'still no block')
    await fh.close()
    assert.ok(Buffer.from(await vol.readFile('/db-journal')).equals(journal), 'reads back as written')
    // a new file of the same size written and closed, no fsync (`cp`, `tar x`): a whole version
    const g = await vol.open('/copy', constants.O_RDWR | constants.O_CREAT)
    await g.write(journal, 0, journal.byteLength, 0)
    await g.close()
    assert.ok(blocks > 0, 'a close stores the new file whole')
    assert.equal(vol.tree.get(vol.tree.byIno((await vol.stat('/copy')).ino)!.id)!.extents, undefined, 'no extent')
    await vol.close()
    vol = await Volume.open({ dir })
    assert.ok(Buffer.from(await vol.readFile('/db-journal')).equals(journal), 'reads back after a restart')
    assert.ok(Buffer.from(await vol.readFile('/copy')).equals(journal), 'the copy too')
  })

  it('a burst of extents past FOLD_EXTENTS, and a quiet file\'s few, are folded with no further write', async () => {
    const dir = await tempDir(t, 'darkfs-extents-quiet-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const next = prngInts(5)
    const model = bytes(MiB + 777, 1)
    await vol.writeFile('/db', model)
    await vol.writeFile('/few', bytes(5000, 2))
    const ino = async (path: string): Promise<string> => vol.tree.byIno((await vol.stat(path)).ino)!.id
    const [db, few] = [await ino('/db'), await ino('/few')]
    // the burst: one handle, a page and an fsync each, as fast as they go
    const fh = await vol.open('/db', 'r+')
    for (let i = 0; i < FOLD_EXTENTS + 20; i++) {
      const data = bytes(1 + next(3000), i)
      const pos = next(model.byteLength)
      await fh.write(data, 0, data.byteLength, pos)
      model.set(data, pos)
      await fh.sync()
    }
    await fh.close()
    // a journal's life: a few pages, fsynced, then unlinked (its quiet fold would come before /few's)
    await vol.writeFile('/gone', bytes(5000, 4))
    const gone = await ino('/gone')
    const folded = new Set<string>()
    onEachOp(vol.tree, (op) => {
      const body = op.body
      if (body.type === 'fold' && body.inode !== undefined) folded.add(body.inode)
    })
    const j = await vol.open('/gone', 'r+')
    await j.write(bytes(10, 5), 0, 10, 200)
    await j.sync()
    await j.close()
    assert.ok((vol.tree.get(gone)!.extents?.length ?? 0) > 0, 'the journal\'s write is a positioned extent')
    await vol.unlink('/gone')
    // a few pages on another file, then nothing
    const g = await vol.open('/few', 'r+')
    await g.write(bytes(10, 3), 0, 10, 100)
    await g.sync()
    await g.close()
    const fewModel = bytes(5000, 2)
    fewModel.set(bytes(10, 3), 100)
    assert.ok((vol.tree.get(few)!.extents?.length ?? 0) > 0, 'the small write is a positioned extent')
    // no write from here: both files end with every extent folded (settled, then quiet)
    await until('every extent of both files is folded', async () => {
      return (vol.tree.get(db)!.extents?.length ?? 0) === 0 && (vol.tree.get(few)!.extents?.length ?? 0) === 0
    }, 6 * (FOLD_QUIET_MS + FOLD_SETTLE_MS))
    assert.ok(folded.has(few) && !folded.has(gone), 'a file with no name left is not folded')
    assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), 'the folds changed no byte of /db')
    assert.ok(Buffer.from(await vol.readFile('/few')).equals(fewModel), 'the folds changed no byte of /few')
  })

  it('a restart forgets no fold: the extents this host wrote and had not folded are folded once it is quiet, with no further write', async () => {
    const dir = await tempDir(t, 'darkfs-extents-restart-')
    let vol = await Volume.open({ dir })
    const model = bytes(MiB + 333, 6)
    await vol.writeFile('/db', model)
    const fh = await vol.open('/db', 'r+')
    for (const pos of [100, 70_000, 500_000]) {
      const data = bytes(10, pos & 0xff)
      await fh.write(data, 0, data.byteLength, pos)
      model.set(data, pos)
      await fh.sync()
    }
    await fh.close()
    const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
    assert.equal(vol.tree.get(id)!.extents?.length, 3, 'three positioned extents, not folded yet')
    // stopped before the quiet fold was due: its timer goes with the process
    await vol.close()
    vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    assert.deepEqual(vol.tree.filesWithOwnExtents(), [id])
    await until('the extents are folded after the restart', async () => (vol.tree.get(id)!.extents?.length ?? 0) === 0, 6 * (FOLD_QUIET_MS + FOLD_SETTLE_MS))
    assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), 'the fold changed no byte')
    assert.deepEqual(vol.tree.filesWithOwnExtents(), [])
  })

  it('extents made past the bounds while a fold runs are folded once it ends, with no further write', async () => {
    const dir = await tempDir(t, 'darkfs-extents-during-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const model = bytes(MiB + 321, 6)
    await vol.writeFile('/db', model)
    const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
    // a fold's placement (the only place() without `safe`) waits until released: the fold runs
    // as long as this test needs
    const chunks = vol.chunks as unknown as { place: (refs: unknown[], opts?: { safe?: boolean }) => Promise<void> }
    const place = chunks.place.bind(chunks)
    let held = 0
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    chunks.place = async (refs, opts = {}) => {
      if (opts.safe !== true) { held++; await gate }
      await place(refs, opts)
    }
    const fh = await vol.open('/db', 'r+')
    let k = 0
    const extent = async (): Promise<void> => {
      const data = bytes(100 + k, k)
      const pos = (k++ * 9973) % (model.byteLength - 200)
      await fh.write(data, 0, data.byteLength, pos)
      model.set(data, pos)
      await fh.sync()
    }
    // past FOLD_EXTENTS on a small file: a whole fold is due, made once they settle
    for (let i = 0; i <= FOLD_EXTENTS; i++) await extent()
    await until('a fold of the settled extents is under way', async () => held > 0, 60_000)
    // more while it runs: each commit asks for a fold (past the bounds still)
    await extent()
    await extent()
    assert.ok((vol.tree.get(id)!.extents?.length ?? 0) > FOLD_EXTENTS, 'past the bounds')
    release()
    await fh.close()
    // no write from here: the extents made during the fold are folded too
    await until('every extent is folded', async () => (vol.tree.get(id)!.extents?.length ?? 0) === 0, 6 * (FOLD_QUIET_MS + FOLD_SETTLE_MS))
    assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), 'the folds changed no byte')
  })

  it('pages scattered over a large file: a partial fold rewrites only the chunk they make dense, the rest are folded once the file is quiet', async () => {
    const dir = await tempDir(t, 'darkfs-extents-partial-')
    let vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const size = 8 * MiB
    assert.ok(size > FOLD_CHEAP_REWRITE, 'a whole fold of it is not cheap')
    const model = bytes(size, 4)
    await vol.writeFile('/db', model)
    const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
    const store = (vol as unknown as { store: Store }).store
    const page = 4096
    // (pages fsynced one by one are inline in their ops: FOLD_INLINE_AMPLIFICATION)
    const dense = Math.ceil(MiB / FOLD_INLINE_AMPLIFICATION / page)
    // FOLD_EXTENTS pages a few in each chunk but chunk 3, then enough in chunk 3 to make it dense
    const spots: number[] = []
    for (let i = 0; i < FOLD_EXTENTS; i++) spots.push((i % 7 < 3 ? i % 7 : i % 7 + 1) * MiB + Math.floor(i / 7) * 2 * page)
    for (let i = 0; i < dense; i++) spots.push(3 * MiB + i * 3 * page)
    const fh = await vol.open('/db', 'r+')
    for (const [k, pos] of spots.entries()) {
      const data = bytes(page, k + 10)
      await fh.write(data, 0, page, pos)
      model.set(data, pos)
      await fh.sync()
    }
    await fh.close()
    const stored = store.counters().added
    const inChunk3 = (): number => (vol.tree.get(id)!.extents ?? []).filter(x => x.pos < 4 * MiB && x.pos + x.size > 3 * MiB).length
    assert.equal(inChunk3(), dense)
    // once they settle: chunk 3 folded, the other pages still read as extents
    await until('a partial fold holds chunk 3', async () => inChunk3() === 0, 6 * FOLD_SETTLE_MS + FOLD_QUIET_MS)
    const left = vol.tree.get(id)!.extents?.length ?? 0
    if (left > 0) {
      // (not yet folded whole by the quiet file's fold, which comes FOLD_QUIET_MS later)
      assert.equal(left, FOLD_EXTENTS)
      const rewrote = store.counters().added - stored
      assert.ok(rewrote >= MiB && rewrote < 2 * MiB, `the partial fold stored ${rewrote} bytes: chunk 3 and a manifest`)
    }
    assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), 'a partial fold changed no byte')
    await until('the quiet file is folded whole', async () => (vol.tree.get(id)!.extents?.length ?? 0) === 0, 6 * (FOLD_QUIET_MS + FOLD_SETTLE_MS))
    assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), 'the folds changed no byte')
    await vol.close()
    vol = await Volume.open({ dir })
    assert.ok(Buffer.from(await vol.readFile('/db')).equals(model), 'the same bytes after a restart')
  })

  it('a fold under way stops when its file is unlinked: the chunks left are not rewritten, no fold op', async () => {
    const dir = await tempDir(t, 'darkfs-extents-unlinked-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const chunks = 16
    await vol.writeFile('/db', bytes(chunks * MiB, 6))
    const id = vol.tree.byIno((await vol.stat('/db')).ino)!.id
    const folding = (vol as unknown as { folding: Map<string, Promise<unknown>> }).folding
    const page = 4096
    // (up to PATCH_COMMIT_RANGES pages per fsync are inline in its op: FOLD_INLINE_AMPLIFICATION)
    const dense = Math.ceil(MiB / FOLD_INLINE_AMPLIFICATION / page)
    // every chunk made dense, 16 of one chunk's pages per fsync: a fold of all of them once they settle
    const fh = await vol.open('/db', 'r+')
    for (let c = 0; c < chunks; c++) {
      for (let i = 0; i < dense; i++) {
        await fh.write(bytes(page, c + i), 0, page, c * MiB + i * 3 * page)
        if (i % 16 === 15) await fh.sync()
      }
      await fh.sync()
    }
    await fh.close()
    let folds = 0
    onEachOp(vol.tree, (op) => {
      const body = op.body
      if (body.type === 'fold') folds++
    })
    // the fold's first chunk stored: the file is unlinked then (as `rm` does while it runs)
    let unlinked: Promise<void> | undefined
    let after = 0
    stubPuts(vol, async (putMany, b, opts) => {
      unlinked ??= vol.unlink('/db')
      await unlinked
      for (const x of b) after += x.bytes.byteLength
      await putMany(b, opts)
    })
    await until('the fold started', async () => unlinked !== undefined, 6 * FOLD_SETTLE_MS + FOLD_QUIET_MS)
    await unlinked
    await until('no fold runs', async () => !folding.has(id), 60_000)
    assert.equal(folds, 0, 'no fold op')
    assert.ok(after < 4 * MiB, `${after} bytes stored after the unlink, of ${chunks} MiB to rewrite (old code: all of it)`)
  })

  it('a quiet large file: the chunks its pages hold 1 / FOLD_QUIET_AMPLIFICATION of are folded, a page alone in its chunk is left a piece', async () => {
    const dir = await tempDir(t, 'darkfs-extents-quiet-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const size = 8 * MiB
    assert.ok(size > FOLD_CHEAP_REWRITE, 'a whole fold of it is not cheap')
    const model = bytes(size, 9)
    await vol.writeFile('/big', model)
    const id = vol.tree.byIno((await vol.stat('/big')).ino)!.id
    const store = (vol as unknown as { store: Store }).store
    const page = 4096
    // a page in each of chunks 0 to 6, and chunk 7 dense for a quiet fold only
    const dense = Math.ceil(MiB / FOLD_QUIET_AMPLIFICATION / page)
    assert.ok(dense * page * FOLD_AMPLIFICATION < MiB, 'not dense before the file is quiet')
    const spots = [...Array.from({ length: 7 }, (_, i) => i * MiB + 5 * page), ...Array.from({ length: dense }, (_, i) => 7 * MiB + i * 2 * page)]
    const fh = await vol.open('/big', 'r+')
    for (const [k, pos] of spots.entries()) {
      const data = bytes(page, k + 20)
      await fh.write(data, 0, page, pos)
      model.set(data, pos)
      await fh.sync()
    }
    await fh.close()
    const stored = store.counters().added
    const inChunk7 = (): number => (vol.tree.get(id)!.extents ?? []).filter(x => x.pos >= 7 * MiB).length
    assert.equal(inChunk7(), dense)
    await until('the quiet file\'s fold holds chunk 7', async () => inChunk7() === 0, 6 * (FOLD_QUIET_MS + FOLD_SETTLE_MS))
    await until('its fold is over', async () => !(vol as unknown as { folding: Map<string, unknown> }).folding.has(id), 60_000)
    // the seven lone pages stay pieces, and nothing asks for their fold again
    assert.equal(vol.tree.get(id)!.extents?.length, 7)
    assert.equal((vol as unknown as { foldTimers: Map<string, unknown> }).foldTimers.has(id), false, 'no fold timer left')
    const rewrote = store.counters().added - stored
    assert.ok(rewrote >= MiB && rewrote < 2 * MiB, `the quiet fold stored ${rewrote} bytes: chunk 7 and a manifest`)
    assert.ok(Buffer.from(await vol.readFile('/big')).equals(model), 'the fold changed no byte')
  })

  it('a quiet file with more chunks worth a fold than FOLD_QUIET_BATCH: folded in batches, partial folds of at most that many, then what is left', async () => {
    const dir = await tempDir(t, 'darkfs-extents-batch-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const n = FOLD_QUIET_BATCH + 3
    const model = bytes(n * MiB, 13)
    await vol.writeFile('/big', model)
    const id = vol.tree.byIno((await vol.stat('/big')).ino)!.id
    const folds: Array<Extract<OpBody, { type: 'fold' }>> = []
    onEachOp(vol.tree, (op, local) => {
      const { body } = op
      if (local && body.type === 'fold' && body.inode === id) folds.push(body)
    })
    const page = 4096
    // in every chunk enough pages for a quiet fold, not for one before
    const dense = Math.ceil(MiB / FOLD_QUIET_AMPLIFICATION / page)
    assert.ok(dense * page * FOLD_AMPLIFICATION < MiB)
    const fh = await vol.open('/big', 'r+')
    let k = 0
    for (let j = 0; j < dense; j++) {
      for (let i = 0; i < n; i++) {
        const data = bytes(page, i + j)
        const pos = i * MiB + j * 2 * page
        await fh.write(data, 0, page, pos)
        model.set(data, pos)
        // a few pages per fsync: positioned extents (PATCH_COMMIT_RANGES)
        if (++k % 8 === 0) await fh.sync()
      }
    }
    await fh.close()
    assert.equal(vol.tree.get(id)!.extents?.length, n * dense)
    await until('every extent is folded', async () => (vol.tree.get(id)!.extents?.length ?? 0) === 0, 6 * (FOLD_QUIET_MS + FOLD_SETTLE_MS))
    assert.ok(folds.length >= 2, `${folds.length} fold(s)`)
    // each but the last a partial fold (the last may hold all that is left: a whole fold)
    for (const f of folds.slice(0, -1)) {
      assert.ok(f.ranges !== undefined, 'a partial fold')
      let held = 0
      for (let k = 0; k < f.ranges.length; k += 2) held += f.ranges[k + 1] - f.ranges[k]
      assert.ok(held <= FOLD_QUIET_BATCH * MiB, `a fold of ${held} bytes`)
    }
    assert.ok(Buffer.from(await vol.readFile('/big')).equals(model), 'the folds changed no byte')
  })

  it('a quiet file\'s fold waits while this host commits ops on another file, and is made once it stops', async () => {
    const dir = await tempDir(t, 'darkfs-extents-idle-')
    // idle = no op of this host for 5 s: the busy loop below commits far more often, even on a loaded machine
    const vol = await Volume.open({ dir, foldIdleMs: 5_000 })
    t.add(async () => { await vol.close() })
    const model = bytes(MiB, 17)
    await vol.writeFile('/quiet', model)
    await vol.writeFile('/busy', bytes(MiB, 18))
    const id = vol.tree.byIno((await vol.stat('/quiet')).ino)!.id
    let folded = 0
    onEachOp(vol.tree, (op, local) => {
      const { body } = op
      if (local && body.type === 'fold' && body.inode === id) folded++
    })
    const fh = await vol.open('/quiet', 'r+')
    await fh.write(bytes(100, 1), 0, 100, 5000)
    model.set(bytes(100, 1), 5000)
    await fh.sync()
    await fh.close()
    assert.equal(vol.tree.get(id)!.extents?.length, 1)
    // past the time /quiet's fold is due (quiet, its extent settled), this host commits to /busy
    const b = await vol.open('/busy', 'r+')
    const until_ = performance.now() + FOLD_QUIET_MS + FOLD_SETTLE_MS + 3_000
    for (let k = 0; performance.now() < until_; k++) {
      await b.write(bytes(64, k), 0, 64, (k * 4096) % MiB)
      await b.sync()
    }
    assert.equal(folded, 0, 'no fold of the quiet file while the host works')
    await b.close()
    await until('the quiet file is folded', async () => (vol.tree.get(id)!.extents?.length ?? 0) === 0, 6 * (FOLD_QUIET_MS + FOLD_SETTLE_MS))
    assert.equal(folded, 1)
    assert.ok(Buffer.from(await vol.readFile('/quiet')).equals(model), 'the fold changed no byte')
  })
})
