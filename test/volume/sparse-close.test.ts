// The close of a file written by many small writes spread over it, past the spill bound
// (node/open-file.ts buildSparse, issue 15): the commit records the patches as positioned
// extents over the packed chunks the spills stored (as an fsync records its ranges), and
// rewrites only the densely patched chunks whole, not every chunk a write landed in. Shown by
// the ops the close made (extents, no whole `write`), by what it stored, and by the bytes: read
// back against a model, after a restart, after the folds (which take the chunk the close stored
// whole as it is) compacted the extents (started by one
// more fsynced page: a restart forgets the folds planned before it), and after a restart again.
import assert from 'node:assert/strict'
import { Volume, CHUNK_SIZE, COMMIT_EXTENT_MAX, FOLD_QUIET_MS, FOLD_SETTLE_MS } from 'darkfs'
import type { Store } from '../../node/data/index.ts'
import type { OpBody } from '../../node/tree/index.ts'
import type { OpenFile } from '../../node/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { prngInts } from '../../harness/prng.ts'
import { onEachOp } from '../../harness/ops.ts'

const MiB = 1 << 20

function bytes (n: number, fill: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (fill + i * 13) & 0xff
  return b
}

describe('volume: the close of sparse small writes records extents', function () {
  this.timeout(240_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  for (const seed of [2, 9]) {
    it(`4 KiB writes over 24 chunks past the spill bound, two chunks dense, the file grown: the close makes extents, rewrites the dense and last chunks only; bytes right after a restart and the folds (seed ${seed})`, async () => {
      const dir = await tempDir(t, 'darkfs-sparse-close-')
      let vol = await Volume.open({ dir })
      t.add(async () => { await vol.close() })
      const next = prngInts(seed)
      const chunks = 24
      let model = bytes(chunks * MiB - 1000, seed)
      await vol.writeFile('/big', model)
      const id = vol.tree.byIno((await vol.stat('/big')).ino)!.id
      const write = (data: Uint8Array, pos: number): void => {
        if (pos + data.byteLength > model.byteLength) { const m = new Uint8Array(pos + data.byteLength); m.set(model); model = m }
        model.set(data, pos)
      }
      const made: OpBody[] = []
      onEachOp(vol.tree, (op, local) => {
        if (local && 'inode' in op.body && op.body.inode === id) made.push(op.body)
      })
      const fh = await vol.open('/big', 'r+')
      // the open file behind the handle: a small buffer, so these writes spill many times
      const f = (vol as unknown as { open_: Map<string, OpenFile> }).open_.get(id)!
      f.bufferBytes = 256 << 10
      const dense = 5
      let written = 0
      for (let step = 0; step < 1200; step++) {
        const r = next(100)
        let pos: number
        let len: number
        if (step === 300) {
          // a dense change of chunk 9 in one write: the next spill stores that chunk whole, and
          // the small writes after it patch a stored chunk (rewritten whole at the commit)
          len = 300_000
          pos = 9 * MiB + 1000
        } else if (r < 8) {
          // chunk 5 gets many: past COMMIT_EXTENT_MAX of patches, it is rewritten whole
          len = 4096
          pos = dense * MiB + next(MiB / 4096) * 4096
        } else if (r < 12) {
          // the same page again (a later write wins)
          len = 4096
          pos = 7 * MiB + 8192
        } else {
          len = r < 50 ? 4096 : 1 + next(6000)
          pos = next(model.byteLength - len)
        }
        const data = bytes(len, step)
        await fh.write(data, 0, len, pos)
        write(data, pos)
        written += len
      }
      // the file grows: a write past the end, into a new chunk
      const tail = bytes(3000, 77)
      await fh.write(tail, 0, tail.byteLength, model.byteLength + 5000)
      write(tail, model.byteLength + 5000)
      const store = (vol as unknown as { store: Store }).store
      const before = store.counters().added
      const opsBefore = made.length
      await fh.close()
      const stored = store.counters().added - before
      const ops = made.slice(opsBefore)
      assert.ok(ops.length > 0 && ops.every(b => b.type === 'append' && b.offset !== undefined), `the close made only positioned extents: ${ops.map(b => b.type).join(', ')}`)
      const extents = ops.flatMap(b => b.type === 'append' ? [b, ...(b.more ?? [])] : [])
      const wholeChunks = extents.filter(x => x.size === CHUNK_SIZE)
      assert.ok(wholeChunks.some(x => x.offset === dense * MiB), 'the dense chunk is one whole extent')
      assert.ok(wholeChunks.some(x => x.offset === 9 * MiB), 'chunk 9, stored whole by a spill, is one whole extent')
      // what the close stored: the dense chunk, chunk 9 (stored whole, then patched), the file's
      // new last chunk, the patches the last spill left in memory (under the buffer) and manifests: not the 24 chunks the writes landed in
      const bound = 4 * MiB + f.bufferBytes + 256 * 1024
      assert.ok(stored < bound, `the close stored ${stored} bytes (bound ${bound}) for ${written} written`)
      assert.ok(wholeChunks.length <= 4, `${wholeChunks.length} chunks were recorded whole`)
      assert.ok(COMMIT_EXTENT_MAX > 0)
      const check = async (what: string): Promise<void> => {
        assert.equal((await vol.stat('/big')).size, model.byteLength, `${what}: size`)
        assert.ok(Buffer.from(await vol.readFile('/big')).equals(model), `${what}: readFile`)
        const r = await vol.open('/big', 'r')
        try {
          for (const pos of [0, 7 * MiB + 8000, dense * MiB - 100, model.byteLength - 9000]) {
            const out = new Uint8Array(9000)
            const { bytesRead } = await r.read(out, 0, out.byteLength, pos)
            assert.ok(Buffer.from(out.subarray(0, bytesRead)).equals(model.subarray(pos, pos + 9000)), `${what}: read at ${pos}`)
          }
          // small reads anywhere (each by range: the content's leaves and the extents' pieces)
          const at = prngInts(seed + 1)
          for (let k = 0; k < 300; k++) {
            const len = 1 + at(9000)
            const pos = at(model.byteLength - len)
            const out = new Uint8Array(len)
            const { bytesRead } = await r.read(out, 0, len, pos)
            assert.ok(bytesRead === len && Buffer.from(out).equals(model.subarray(pos, pos + len)), `${what}: ${len} bytes at ${pos}`)
          }
        } finally {
          await r.close()
        }
      }
      await check('after the close')
      assert.ok((vol.tree.get(id)!.extents?.length ?? 0) > 0, 'the file has extents')
      await vol.close()
      vol = await Volume.open({ dir })
      // the chunks the folds store (the ones planned before the restart resume once the file is
      // quiet): not the dense one, which they take as the close stored it
      const offsets: number[] = []
      const cs = vol.chunks
      const storeChunk = cs.storeChunk.bind(cs)
      cs.storeChunk = async (b, offset, opts) => { offsets.push(offset); return await storeChunk(b, offset, opts) }
      await check('after a restart')
      // a page more, fsynced
      const page = bytes(4096, 99)
      const g = await vol.open('/big', 'r+')
      await g.write(page, 0, page.byteLength, 11 * MiB + 300)
      write(page, 11 * MiB + 300)
      await g.sync()
      await g.close()
      // the folds compact them (the file is quiet: every chunk), with no further write
      await until('every extent is folded', async () => (vol.tree.get(id)!.extents?.length ?? 0) === 0, 6 * (FOLD_QUIET_MS + FOLD_SETTLE_MS))
      await check('after the folds')
      assert.ok(offsets.includes(0) && !offsets.includes(dense * MiB), `the folds stored chunks at ${offsets.map(o => o / MiB).join(', ')} MiB`)
      await vol.close()
      vol = await Volume.open({ dir })
      await check('after the folds and a restart')
    })
  }
})
