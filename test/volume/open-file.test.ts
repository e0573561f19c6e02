// The write path of open files (node/open-file.ts) against a plain in-memory model: random
// positioned writes (small ones become patches of chunks not in memory), truncates, flushes
// (commits), reads through a second handle and after a restart.
import assert from 'node:assert/strict'
import { Volume } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { PATCHES_PER_CHUNK_MAX, OPEN_FILE_BUFFER_BYTES, SPILL_PACK_MAX, OpenFile } from '../../node/index.ts'
import { onEachOp } from '../../harness/ops.ts'

const MiB = 1 << 20

/** A small deterministic generator (xorshift32), so a failure replays. */
function rng (seed: number): (n: number) => number {
  let x = seed >>> 0 || 1
  return (n: number) => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x % n
  }
}

function bytes (n: number, fill: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (fill + i * 31) & 0xff
  return b
}

/** The first offset where a and b differ (or where the shorter ends), -1 when they are equal. */
function firstDiff (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return a.byteLength === b.byteLength ? -1 : n
}

/** The model: a growable byte array with POSIX write/truncate semantics. */
class Model {
  buf = new Uint8Array(0)
  write (data: Uint8Array, pos: number): void {
    if (pos + data.byteLength > this.buf.byteLength) this.truncate(pos + data.byteLength)
    this.buf.set(data, pos)
  }

  truncate (len: number): void {
    const next = new Uint8Array(len)
    next.set(this.buf.subarray(0, Math.min(len, this.buf.byteLength)))
    this.buf = next
  }
}

describe('open files (node/open-file.ts) on the real Volume', function () {
  const t = new Teardown()
  let dir: string
  let vol: Awaited<ReturnType<typeof Volume.open>>

  beforeEach(async () => {
    dir = await tempDir(t)
    vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
  })
  afterEach(async () => { await t.run() })

  for (const seed of [1, 7, 42]) {
    it(`fh.write/truncate/flush in random order match a model (seed ${seed})`, async () => {
      const next = rng(seed)
      const model = new Model()
      const fh = await vol.open('/f', 'w+')
      const reader = await vol.open('/f', 'r')
      for (let step = 0; step < 300; step++) {
        const r = next(100)
        if (r < 70) {
          // mostly small writes anywhere in a ~3.5 MiB file, some across chunk boundaries
          const len = next(10) === 0 ? 1 + next(2 * MiB) : 1 + next(8192)
          const pos = next(10) === 0 ? MiB - next(100) : next(3 * MiB + MiB / 2)
          const data = bytes(len, step)
          await fh.write(data, 0, len, pos)
          model.write(data, pos)
        } else if (r < 78) {
          const len = next(4 * MiB)
          await fh.truncate(len)
          model.truncate(len)
        } else if (r < 88) {
          await fh.flush()
        } else {
          const pos = next(model.buf.byteLength + 1)
          const len = next(2 * MiB)
          const out = new Uint8Array(len)
          const { bytesRead } = await reader.read(out, 0, len, pos)
          assert.deepEqual(out.subarray(0, bytesRead), model.buf.subarray(pos, pos + len), `read at step ${step}`)
        }
      }
      await fh.close()
      await reader.close()
      assert.deepEqual(await vol.readFile('/f'), model.buf)
      assert.equal((await vol.stat('/f')).size, model.buf.byteLength)
      await vol.close()
      vol = await Volume.open({ dir })
      assert.deepEqual(await vol.readFile('/f'), model.buf, 'after a restart')
    })
  }

  it('fh.write with handOver keeps whole chunks as given (no copy), and they stay right through later writes, cuts and commits; without it the caller may reuse its buffer', async () => {
    const model = new Model()
    const fh = await vol.open('/h', 'w+')
    const write = async (data: Uint8Array, pos: number, handOver: boolean): Promise<void> => {
      model.write(data, pos) // the model copies first: a buffer handed over is not the caller's to read
      await fh.write(data, 0, data.byteLength, pos, { handOver })
    }
    // whole chunks from one buffer (2 MiB: two chunks viewing it), from a buffer at an offset,
    // and one past the end (the last chunk, then grown by the next write)
    await write(bytes(2 * MiB, 1), 0, true)
    await write(bytes(MiB, 2), 2 * MiB, true)
    await write(bytes(MiB + 4096, 3), 3 * MiB - 4096, true)
    // small writes into the chunks kept as given, one overwriting part of two of them
    await write(bytes(100, 4), MiB - 50, true)
    await write(bytes(5000, 5), 2 * MiB + 10, true)
    await fh.flush()
    // a whole chunk over a committed one, then cut inside it, then grown again
    await write(bytes(MiB, 6), MiB, true)
    await fh.truncate(MiB + 5000)
    model.truncate(MiB + 5000)
    await write(bytes(3 * MiB, 7), MiB + 5000 + 20_000, true)
    // without handOver the file copies: the caller writes over its buffer at once
    const reused = bytes(MiB, 8)
    await write(reused, 0, false)
    reused.fill(0xee)
    const out = new Uint8Array(model.buf.byteLength)
    await fh.read(out, 0, out.byteLength, 0)
    assert.equal(firstDiff(out, model.buf), -1, 'read through the handle')
    await fh.close()
    assert.equal(firstDiff(await vol.readFile('/h'), model.buf), -1, 'after the close')
    await vol.close()
    vol = await Volume.open({ dir })
    assert.equal(firstDiff(await vol.readFile('/h'), model.buf), -1, 'after a restart')
  })

  it('fh.readBytes answers as fh.read does, small reads in one chunk included, and each answer is the caller\'s to change', async () => {
    const data = bytes(3 * MiB + 12_345, 9)
    await vol.writeFile('/r', data)
    for (const cold of [false, true]) {
      if (cold) { await vol.close(); vol = await Volume.open({ dir }) }
      const fh = await vol.open('/r', 'r')
      assert.ok(fh.readBytes !== undefined)
      const next = rng(cold ? 5 : 3)
      const ranges: Array<[number, number]> = [[0, 4096], [MiB - 100, 200], [2 * MiB + 16_380, 10], [data.byteLength - 10, 4096], [data.byteLength + 5, 100], [5, 0]]
      for (let j = 0; j < 40; j++) ranges.push([next(data.byteLength), 1 + next(j % 4 === 0 ? 2 * MiB : 8192)])
      for (const [pos, len] of ranges) {
        const got = await fh.readBytes!(pos, len)
        const want = data.subarray(Math.min(pos, data.byteLength), Math.min(pos + len, data.byteLength))
        assert.equal(firstDiff(got, want), -1, `readBytes(${pos}, ${len})${cold ? ' after a restart' : ''}`)
        // the answer is the caller's: scribbling on it changes no later read
        assert.ok(got.buffer !== data.buffer, `shares data ${pos} ${len}`)
        got.fill(0xa5)
        const again = new Uint8Array(len)
        const { bytesRead } = await fh.read(again, 0, len, pos)
        assert.equal(firstDiff(again.subarray(0, bytesRead), want), -1, `read(${pos}, ${len}) after the caller changed readBytes' answer`)
      }
      await fh.close()
    }
  })

  it('fh.readBytes with borrow: the same bytes, across chunk edges, holes, extents and unsaved writes; a read within one stored chunk is a view of it, not a copy', async () => {
    const data = bytes(3 * MiB + 12_345, 7)
    await vol.writeFile('/b', data)
    // a hole (chunk 4 onwards), then an extent over chunk 1, committed by the close
    const w = await vol.open('/b', 'r+')
    await w.truncate(6 * MiB)
    const patch = bytes(50_000, 3)
    await w.write(patch, 0, patch.byteLength, MiB + 1000)
    await w.close()
    const want = new Uint8Array(6 * MiB)
    want.set(data)
    want.set(patch, MiB + 1000)
    for (const cold of [false, true]) {
      if (cold) { await vol.close(); vol = await Volume.open({ dir }) }
      const fh = await vol.open('/b', 'r+')
      const next = rng(cold ? 11 : 13)
      const ranges: Array<[number, number]> = [[0, MiB], [2 * MiB, MiB], [MiB, MiB], [MiB - 10, 20], [3 * MiB, MiB], [4 * MiB, MiB], [6 * MiB - 5, 100]]
      for (let j = 0; j < 30; j++) ranges.push([next(want.byteLength), 1 + next(j % 2 === 0 ? MiB : 8192)])
      for (const [pos, len] of ranges) {
        const got = await fh.readBytes!(pos, len, { borrow: true })
        const end = Math.min(pos + len, want.byteLength)
        assert.equal(firstDiff(got, want.subarray(Math.min(pos, end), end)), -1, `readBytes(${pos}, ${len}, borrow)${cold ? ' after a restart' : ''}`)
      }
      // chunk 2 is stored whole and no extent covers it: a borrowed read in it is a view of the
      // chunk's bytes (a copy would be a buffer of its own, of the read's length)
      const a = await fh.readBytes!(2 * MiB, MiB, { borrow: true })
      const b = await fh.readBytes!(2 * MiB + 4096, MiB / 2, { borrow: true })
      assert.ok(b.byteOffset >= 4096 && b.buffer.byteLength >= MiB, `a view of the chunk, not a copy (offset ${b.byteOffset} in ${b.buffer.byteLength} bytes)`)
      // unsaved writes are read as they are, borrowed or not
      const fresh = bytes(4096, 42)
      await fh.write(fresh, 0, fresh.byteLength, 2 * MiB + 8192)
      const after = await fh.readBytes!(2 * MiB, MiB, { borrow: true })
      assert.equal(firstDiff(after.subarray(8192, 8192 + 4096), fresh), -1, 'an unsaved write is read back, borrowed')
      assert.equal(firstDiff(a.subarray(8192, 8192 + 4096), want.subarray(2 * MiB + 8192, 2 * MiB + 8192 + 4096)), -1, 'a write changes no borrowed answer given before it')
      await fh.close()
      want.set(fresh, 2 * MiB + 8192)
    }
  })

  it('fh.write growing the last chunk 4 KiB at a time, cut shorter, then written past the end: the gap reads zeros', async () => {
    // the last chunk's buffer grows into room behind it (open-file.ts refit): bytes it held before
    // a cut must not come back when the file grows again
    const model = new Model()
    const fh = await vol.open('/g', 'w+')
    const write = async (data: Uint8Array, pos: number): Promise<void> => {
      await fh.write(data, 0, data.byteLength, pos)
      model.write(data, pos)
    }
    for (let pos = 0; pos < MiB + 300_000; pos += 4096) await write(bytes(4096, pos >> 12), pos)
    for (const [cut, gap] of [[MiB + 100_000, 50_000], [MiB + 7, 200_000], [300_000, 10_000]]) {
      await fh.truncate(cut)
      model.truncate(cut)
      await write(bytes(4096, cut & 0xff), cut + gap)
      const out = new Uint8Array(model.buf.byteLength)
      await fh.read(out, 0, out.byteLength, 0)
      // the first byte that differs, not a diff of a MiB
      assert.equal(firstDiff(out, model.buf), -1, `after the cut at ${cut}`)
    }
    await fh.close()
    assert.equal(firstDiff(await vol.readFile('/g'), model.buf), -1)
  })

  it('a file grown by small writes at its end, each fsynced (a SQLite WAL): no write reads the last chunk, the file reads as written', async () => {
    const model = new Model()
    const base = bytes(600_000, 5)
    await vol.writeFile('/wal', base)
    model.write(base, 0)
    const chunks = vol.chunks as unknown as { readChunk: (...args: any[]) => Promise<Uint8Array> }
    const readChunk = chunks.readChunk.bind(chunks)
    let reads = 0
    chunks.readChunk = async (...args) => { reads++; return await readChunk(...args) }
    const fh = await vol.open('/wal', 'r+')
    // frames of 24 + 4096 bytes written at the end, a commit (fsync) after every two, past the chunk's end too
    for (let frame = 0; frame < 120; frame++) {
      const data = bytes(4120, frame)
      const pos = model.buf.byteLength
      await fh.write(data, 0, data.byteLength, pos)
      model.write(data, pos)
      if (frame % 2 === 1) await fh.sync()
    }
    assert.equal(reads, 0, 'no write or commit read a chunk of the file (old code: the last chunk, rebuilt at every growth)')
    const out = new Uint8Array(model.buf.byteLength)
    await fh.read(out, 0, out.byteLength, 0)
    assert.equal(firstDiff(out, model.buf), -1, 'through the handle')
    await fh.close()
    assert.equal(firstDiff(await vol.readFile('/wal'), model.buf), -1, 'readFile')
  })

  it(`fh.write: more than ${PATCHES_PER_CHUNK_MAX} small writes into one committed chunk, then read`, async () => {
    const base = bytes(2 * MiB, 3)
    await vol.writeFile('/p', base)
    const model = new Model()
    model.write(base, 0)
    const fh = await vol.open('/p', 'r+')
    for (let i = 0; i < PATCHES_PER_CHUNK_MAX + 50; i++) {
      const data = bytes(100, i)
      const pos = MiB + ((i * 997) % (MiB - 100))
      await fh.write(data, 0, 100, pos)
      model.write(data, pos)
    }
    const out = new Uint8Array(2 * MiB)
    await fh.read(out, 0, 2 * MiB, 0)
    assert.deepEqual(out, model.buf)
    await fh.close()
    assert.deepEqual(await vol.readFile('/p'), model.buf)
  })

  it('fh.write and fh.read at once through two handles: no write is lost', async () => {
    await vol.writeFile('/c', bytes(2 * MiB, 9))
    const model = new Model()
    model.write(bytes(2 * MiB, 9), 0)
    const w = await vol.open('/c', 'r+')
    const r = await vol.open('/c', 'r')
    const pending: Array<Promise<unknown>> = []
    for (let i = 0; i < PATCHES_PER_CHUNK_MAX * 2; i++) {
      const data = bytes(64, i)
      const pos = (i * 4099) % (2 * MiB - 64)
      model.write(data, pos)
      pending.push(w.write(data, 0, 64, pos))
      if (i % 7 === 0) pending.push(r.read(new Uint8Array(4096), 0, 4096, pos))
    }
    await Promise.all(pending)
    const out = new Uint8Array(2 * MiB)
    await r.read(out, 0, 2 * MiB, 0)
    assert.ok(Buffer.from(out).equals(Buffer.from(model.buf)))
    await w.close()
    await r.close()
    assert.ok(Buffer.from(await vol.readFile('/c')).equals(Buffer.from(model.buf)))
  })

  it('fh.write through handles opened \'a\', at once with flushes and closes: every append lands whole, once', async () => {
    const lines = (k: number): string[] => Array.from({ length: 200 }, (_, i) => `h${k}-${i}`)
    const writer = async (k: number): Promise<void> => {
      // a handle per line, like `echo >> log`: its close commits while the others write
      for (const line of lines(k)) {
        const fh = await vol.open('/log', 'a')
        const data = new TextEncoder().encode(line + '\n')
        // the position is the caller's guess of the end, stale by design: 'a' writes at the end
        await fh.write(data, 0, data.byteLength, 0)
        await fh.close()
      }
    }
    const held = await vol.open('/log', 'a')
    const held2 = await vol.open('/log', 'a')
    await Promise.all([writer(0), writer(1), writer(2), (async () => {
      for (const line of lines(3)) {
        const h = line.endsWith('0') ? held2 : held
        const data = new TextEncoder().encode(line + '\n')
        await h.write(data, 0, data.byteLength, 0)
        if (line.endsWith('5')) await h.flush()
      }
    })()])
    await held.close()
    await held2.close()
    const got = new TextDecoder().decode(await vol.readFile('/log')).split('\n')
    assert.equal(got.pop(), '')
    assert.deepEqual(got.slice().sort(), [0, 1, 2, 3].flatMap(lines).sort())
  })

  it(`fh.write: unaligned writes past the ${OPEN_FILE_BUFFER_BYTES >> 20} MiB buffer spill, and the file reads back whole`, async () => {
    const total = (OPEN_FILE_BUFFER_BYTES >> 20) + 8
    const model = new Model()
    const fh = await vol.open('/big', 'w+')
    // 1 MiB writes offset by half a chunk: every chunk is written as two patches
    await fh.write(bytes(MiB / 2, 0), 0, MiB / 2, 0)
    model.write(bytes(MiB / 2, 0), 0)
    for (let i = 0; i < total; i++) {
      const data = bytes(MiB, i + 1)
      await fh.write(data, 0, MiB, MiB / 2 + i * MiB)
      model.write(data, MiB / 2 + i * MiB)
    }
    await fh.sync()
    await fh.close()
    const back = await vol.readFile('/big')
    assert.equal(back.byteLength, model.buf.byteLength)
    assert.ok(Buffer.from(back).equals(Buffer.from(model.buf)))
  })

  it('spills of small writes spread over a file pack them (no chunk rewritten), and the file reads as the model through spills, a truncate and a commit', async () => {
    const size = 16 * MiB
    const model = new Model()
    model.write(bytes(size, 3), 0)
    await vol.writeFile('/f', model.buf)
    const id = vol.tree.byIno((await vol.stat('/f')).ino)!.id
    const node = vol.tree.get(id)!
    const f = new OpenFile(id, { content: node.content, size: node.size }, vol.chunks, () => '/f')
    // a small buffer: 256 KiB of patches over 16 chunks is 16 KiB a chunk, well under SPILL_PACK_MAX
    f.bufferBytes = 256 << 10
    assert.ok(f.bufferBytes / 16 < SPILL_PACK_MAX)
    let stored = 0
    const chunks = vol.chunks
    const storeChunk = chunks.storeChunk.bind(chunks)
    chunks.storeChunk = async (b, offset, opts) => { stored += b.byteLength; return await storeChunk(b, offset, opts) }
    t.add(async () => { chunks.storeChunk = storeChunk })
    const next = rng(5)
    let written = 0
    const check = async (pos: number, len: number, what: string): Promise<void> => {
      const got = await f.read(pos, len)
      const want = model.buf.subarray(pos, pos + len)
      assert.equal(firstDiff(got, want), -1, `${what}: read [${pos}, ${pos + len}) differs at ${firstDiff(got, want)}`)
    }
    for (let step = 0; step < 3000; step++) {
      const r = next(1000)
      if (step === 1500) {
        // a cut through spilled patches, then writes past the new end regrow it
        await f.truncate(11 * MiB + 777)
        model.truncate(11 * MiB + 777)
      } else if (r < 5) {
        // a dense change of one chunk (rewritten at the next spill, not packed)
        const pos = next(size - 400_000)
        const data = bytes(300_000, step)
        await f.write(data, pos)
        model.write(data, pos)
        written += data.byteLength
      } else if (r < 950) {
        const len = 1 + next(4096)
        const pos = next(size - len)
        const data = bytes(len, step)
        await f.write(data, pos)
        model.write(data, pos)
        written += len
      } else {
        const pos = next(model.buf.byteLength)
        await check(pos, Math.min(1 + next(3 * MiB), model.buf.byteLength - pos), `step ${step}`)
      }
    }
    await check(0, model.buf.byteLength, 'the whole file before the commit')
    // rewriting every patched chunk at each spill would store about 16 MiB each time, hundreds of
    // MiB in all; packing stores what was written (and the few dense chunks)
    assert.ok(stored < 4 * written, `stored ${stored} bytes for ${written} written`)
    const c = await f.prepare()
    assert.ok(c !== undefined)
    await check(0, model.buf.byteLength, 'the whole file after the commit stored it')
  })

  for (const how of ['unlink', 'rename over'] as const) {
    it(`fh after ${how} of its last name: reads, writes, attributes by inode, nlink 0; its writes make no version or op, and nothing is left at close`, async () => {
      await vol.writeFile('/f', 'named')
      const id = vol.tree.lookup(vol.tree.root, 'f')!.inode
      const fh = await vol.open('/f', 'r+')
      await fh.write(bytes(3, 1), 0, 3, 0)
      await fh.flush()
      const versions = vol.tree.history(id).length
      const ops: string[] = []
      onEachOp(vol.tree, (op) => { ops.push(op.body.type) })
      if (how === 'unlink') await vol.unlink('/f')
      else { await vol.writeFile('/g', 'other'); await vol.rename('/g', '/f') }
      ops.length = 0
      const model = new Model()
      model.write(bytes(3, 1), 0)
      model.write(new TextEncoder().encode('named').subarray(3), 3)
      const big = bytes(2 * MiB + 5, 9)
      await fh.write(big, 0, big.byteLength, 100)
      model.write(big, 100)
      await fh.sync()
      await fh.chmod(0o600)
      await fh.setxattr('user.k', new Uint8Array([1]))
      const st = await fh.stat()
      assert.equal(st.nlink, 0)
      assert.equal(st.size, model.buf.byteLength)
      assert.equal(st.mode & 0o777, 0o600)
      assert.deepEqual(await fh.getxattr('user.k'), new Uint8Array([1]))
      assert.deepEqual(await fh.listxattr(), ['user.k'])
      const out = new Uint8Array(model.buf.byteLength)
      await fh.read(out, 0, out.byteLength, 0)
      assert.deepEqual(out, model.buf)
      await fh.close()
      // attributes are ops on the inode (no name, no version); its bytes made none
      assert.deepEqual(ops, ['setattr', 'setxattr'])
      assert.equal(vol.tree.history(id).length, versions)
      assert.deepEqual(await vol.readdir('/'), how === 'unlink' ? [] : ['f'])
      if (how === 'rename over') assert.equal(await vol.readFile('/f', 'utf8'), 'other')
    })
  }
})

describe('mode changes held for an open file while a batch carrying one is in flight', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  async function openWith0644 (): Promise<{ vol: Volume, fh: Awaited<ReturnType<Volume['open']>> }> {
    const vol = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/f', 'x')
    await vol.chmod('/f', 0o644)
    const fh = await vol.open('/f', 'r+')
    t.add(async () => { await fh.close().catch(() => {}) })
    return { vol, fh }
  }

  it('a chmod back to the mode the tree still shows is a change, kept past a write and fsync (review31a)', async () => {
    const { vol, fh } = await openWith0644()
    await fh.chmod(0o600) // held
    const other = vol.mkdir('/d') // stamps the held change; the tree applies it once durable
    await fh.chmod(0o644) // back: the tree still shows 0644, but the batch in flight makes it 0600
    await other
    const mid = (await fh.stat()).mode & 0o7777
    await fh.write(Buffer.from('y'), 0, 1, 0)
    await fh.sync()
    const end = (await vol.stat('/f')).mode & 0o7777
    assert.deepEqual([mid, end], [0o644, 0o644], `mode after chmod back: ${mid.toString(8)}, then ${end.toString(8)} after the fsync`)
  })

  it('a chown held after a chmod in flight leaves the chmod shown, and a chmod back after it is a change (review31f)', async () => {
    const { vol, fh } = await openWith0644()
    const st = await fh.stat()
    await fh.chmod(0o600)
    const other = vol.mkdir('/d')
    await fh.chown(st.uid, st.gid) // held, the same owner
    const shown = (await fh.stat()).mode & 0o7777
    await fh.chmod(0o644) // back: a change against the 0600 in flight
    await other
    await fh.write(Buffer.from('y'), 0, 1, 0)
    await fh.sync()
    const end = (await vol.stat('/f')).mode & 0o7777
    assert.deepEqual([shown.toString(8), end.toString(8)], ['600', '644'])
  })

  it('stat shows a held change while the batch carrying it is in flight', async () => {
    const { vol, fh } = await openWith0644()
    await fh.chmod(0o600)
    const other = vol.mkdir('/d')
    const during = (await fh.stat()).mode & 0o7777
    await other
    assert.equal(during.toString(8), '600')
    assert.equal(((await vol.stat('/f')).mode & 0o7777).toString(8), '600')
  })
})
