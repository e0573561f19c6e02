// A sequential writer's finished chunks are stored before the commit (node/early-chunks.ts): the
// file still reads back as written when such chunks are rewritten or cut off before the commit,
// and the replaced chunks' blocks are deleted, not left to GC (one host, one copy per chunk).
// The writer goes on while a finished chunk's local put syncs; the commit waits for every such
// put, and one that failed fails the commit. A finished chunk is stored in a turn behind the write
// that finished it: a store that fails there (or passes its deadline, or is given up) leaves the
// chunk in memory, fails no later write, and the commit stores it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Volume } from 'darkfs'
import type { OpenFile } from '../../node/index.ts'
import { STORE_BEHIND_TIMEOUT_MS } from '../../node/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { stubChunkStores, stubPuts } from '../helpers/store-stubs.ts'

const MiB = 1 << 20

/** The open file behind a handle (Volume keeps them by inode id). */
function openFileOf (volume: Volume, ino: bigint | number): OpenFile {
  const id = volume.tree.byIno(Number(ino))!.id
  return (volume as unknown as { open_: Map<string, OpenFile> }).open_.get(id)!
}

/**
 * Makes the chunk stores of early placement (ChunkWrite.chunk) of `volume` never settle until
 * their signal aborts, until unstick(); returns the reasons they were aborted with, and a count
 * of the stores held.
 */
function stickEarlyStores (volume: Volume): { aborted: unknown[], begun: () => number, unstick: () => void } {
  const aborted: unknown[] = []
  let begun = 0
  let stuck = true
  stubChunkStores(volume, async (store, bytes, offset, o = {}) => {
    if (!stuck) return await store(bytes, offset, o)
    begun++
    const signal = o.signal
    return await new Promise((_resolve, reject) => {
      // a signal already aborted (a store begun after abandon()) fails at once, not never
      if (signal?.aborted === true) { aborted.push(signal.reason); reject(signal.reason); return }
      signal?.addEventListener('abort', () => { aborted.push(signal.reason); reject(signal.reason) }, { once: true })
    })
  })
  return { aborted, begun: () => begun, unstick: () => { stuck = false } }
}

async function blockBytes (dir: string): Promise<number> {
  let n = 0
  for (const d of await readdir(dir)) for (const f of await readdir(join(dir, d))) n += (await stat(join(dir, d, f))).size
  return n
}

describe('open files: chunks stored before the commit (one host)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('fh.write sequentially, then rewrites and a truncation of finished chunks: the file reads back as written, and the store holds only its version', async () => {
    const dir = await tempDir(t, 'darkfs-early-')
    const volume = await Volume.open({ dir })
    t.add(async () => { await volume.close() })
    const model = new Uint8Array(8 * MiB)
    const fh = await volume.open('/f.bin', 'w+')
    const put = async (data: Uint8Array, at: number): Promise<void> => {
      await fh.write(data, 0, data.byteLength, at)
      model.set(data, at)
    }
    // 6 MiB in 256 KiB pieces: chunks 0-4 are finished (the writer moved past them)
    for (let at = 0; at < 6 * MiB; at += 256 * 1024) await put(randomBytes(256 * 1024), at)
    // small rewrites of two finished chunks, and one whole finished chunk written again
    await put(randomBytes(5000), MiB + 777)
    await put(randomBytes(3000), 3 * MiB - 1000)
    await put(randomBytes(MiB), 2 * MiB)
    // cut into chunk 4 (finished) and write on past it to 8 MiB
    await fh.truncate(4 * MiB + 12345)
    model.fill(0, 4 * MiB + 12345)
    for (let at = 4 * MiB + 12345; at < 8 * MiB; at += 100_000) await put(randomBytes(Math.min(100_000, 8 * MiB - at)), at)
    const mid = new Uint8Array(8 * MiB)
    await fh.read(mid, 0, mid.byteLength, 0)
    assert.ok(Buffer.from(mid).equals(Buffer.from(model)), 'the open file reads back as written before its commit')
    await fh.close()
    assert.ok(Buffer.from(await volume.readFile('/f.bin')).equals(Buffer.from(model)), 'the committed version is what was written')
    // eight chunks of 1 MiB (k=1: one block each) and the manifest; the replaced chunks are gone
    const held = await blockBytes(join(dir, 'store', 'blocks'))
    assert.ok(held >= 8 * MiB && held < 8 * MiB + 64 * 1024, `the store holds ${held} bytes, not the version's 8 MiB and its manifest`)
  })

  it('fh.write goes on while finished chunks sync; the chunks read back meanwhile; fsync commits only once their puts are over', async () => {
    const dir = await tempDir(t, 'darkfs-early-')
    const volume = await Volume.open({ dir })
    t.add(async () => { await volume.close() })
    // chunk puts (raw blocks) wait for the gate; any other put (the manifest) notes how many of
    // the early chunks' puts (the first two) were still open
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    let started = 0
    let bothStarted!: () => void
    const both = new Promise<void>(resolve => { bothStarted = resolve })
    const over = new Set<number>()
    const openAtManifest: number[] = []
    stubPuts(volume, async (putMany, blocks, opts) => {
      if (blocks.every(b => b.cid.code === 0x55)) {
        const n = started++
        if (started === 2) bothStarted()
        try { await gate; return await putMany(blocks, opts) } finally { over.add(n) }
      }
      openAtManifest.push([0, 1].filter(n => !over.has(n)).length)
      return await putMany(blocks, opts)
    })
    const data = randomBytes(3 * MiB)
    const fh = await volume.open('/f.bin', 'w+')
    // 1 MiB writes: chunks 0 and 1 are finished and stored early, their puts held at the gate
    for (let at = 0; at < data.byteLength; at += MiB) await fh.write(data, at, MiB, at)
    // chunk 1 is stored in the turn behind the write that finished it (OpenFile.storeBehind)
    await both
    assert.equal(started, 2, 'the writes returned while the puts of both finished chunks were held')
    const back = new Uint8Array(data.byteLength)
    await fh.read(back, 0, back.byteLength, 0)
    assert.ok(Buffer.from(back).equals(data), 'the file reads back as written while its chunks sync')
    const synced = fh.sync()
    // time for a commit that did not wait to reach its manifest (one that waits cannot: the gate is shut)
    await new Promise(resolve => setTimeout(resolve, 100))
    open()
    await synced
    assert.ok(openAtManifest.length > 0 && openAtManifest.every(n => n === 0), `the manifest was stored with ${openAtManifest.join(', ')} early chunk put(s) not over`)
    await fh.close()
    assert.ok(Buffer.from(await volume.readFile('/f.bin')).equals(data), 'the committed version is what was written')
  })

  it('a finished chunk whose store behind the write fails: later writes (of any handle) go on, and the commit stores the chunk', async () => {
    const dir = await tempDir(t, 'darkfs-early-')
    const volume = await Volume.open({ dir })
    t.add(async () => { await volume.close() })
    // the first chunk stored early fails (before any put), the others are stored
    let failed = 0
    stubChunkStores(volume, async (store, ...args) => {
      if (failed++ === 0) throw Object.assign(new Error('the encoder said no'), { code: 'EIO' })
      return await store(...args)
    })
    const data = randomBytes(4 * MiB)
    const fh = await volume.open('/h.bin', 'w+')
    // the second write finishes chunk 0, whose store behind it fails: the chunk stays in memory
    await fh.write(data, 0, MiB, 0)
    await fh.write(data, MiB, MiB, MiB)
    // another handle's append is not told of it (nor is any write): it lands
    const other = await volume.open('/h.bin', 'a')
    await other.write(data, 2 * MiB, MiB, 0) // O_APPEND: at the end, whatever the position
    await other.close()
    for (let at = 3 * MiB; at < data.byteLength; at += MiB) await fh.write(data, at, MiB, at)
    await fh.sync()
    await fh.close()
    assert.ok(Buffer.from(await volume.readFile('/h.bin')).equals(data), 'the committed version is what was written, chunk 0 with it')
  })

  it('finished chunks whose stores behind the writes all fail: the buffer bound still holds (they are spilled), and the commit has the file', async () => {
    const dir = await tempDir(t, 'darkfs-early-')
    const volume = await Volume.open({ dir })
    t.add(async () => { await volume.close() })
    const chunks = volume.chunks
    let early = 0
    let failing = true
    // every store of a finished chunk fails; the commit's (storeNow) go through
    stubChunkStores(volume, async (store, ...args) => {
      if (failing) { early++; throw Object.assign(new Error('the encoder said no'), { code: 'EIO' }) }
      return await store(...args)
    })
    // what the spill stores (ChunkWrite.chunk, failing here, stores nothing)
    let spilled = 0
    const storeChunk = chunks.storeChunk.bind(chunks)
    chunks.storeChunk = async (...args) => {
      if (failing) spilled += args[0].byteLength
      return await storeChunk(...args)
    }
    const data = randomBytes(8 * MiB)
    const fh = await volume.open('/b.bin', 'w+')
    openFileOf(volume, (await fh.stat()).ino).bufferBytes = 2 * MiB
    for (let at = 0; at < data.byteLength; at += MiB) await fh.write(data, at, MiB, at)
    // the last write's turn behind it is over once another turn of the inode is
    await fh.truncate(data.byteLength)
    failing = false
    assert.ok(early >= 1, 'stores behind the writes were tried')
    assert.ok(spilled >= 5 * MiB, `${spilled} bytes spilled: the buffer of 2 MiB was not kept to`)
    await fh.close()
    assert.ok(Buffer.from(await volume.readFile('/b.bin')).equals(data), 'the committed version is what was written')
  })

  it('finished chunks whose stores and spills all fail (a full disk): a write fails, and the memory held stays within the buffer bound', async () => {
    const dir = await tempDir(t, 'darkfs-early-')
    const volume = await Volume.open({ dir })
    t.add(async () => { await volume.close() })
    const full = (): Error => Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
    stubChunkStores(volume, async () => { throw full() })
    volume.chunks.storeChunk = async () => { throw full() }
    const data = randomBytes(16 * MiB)
    const fh = await volume.open('/full.bin', 'w+')
    const file = openFileOf(volume, (await fh.stat()).ino)
    file.bufferBytes = 2 * MiB
    const held = (): number => { const f = file as unknown as { dirtyBytes: number, patchBytes: number }; return f.dirtyBytes + f.patchBytes }
    let refused: any
    let most = 0
    for (let at = 0; at < data.byteLength && refused === undefined; at += MiB) {
      await fh.write(data, at, MiB, at).catch((err: unknown) => { refused = err })
      most = Math.max(most, held())
    }
    assert.equal(refused?.code, 'ENOSPC', `a write is refused with the disk's error (${String(refused)})`)
    // the bound, the write that found it passed, and the one finished chunk behind it
    assert.ok(most <= 4 * MiB, `${most} bytes held in memory with a buffer of 2 MiB`)
    await fh.close().catch(() => {})
  })

  it('a store behind a write that never settles gives up at its deadline: later writes go on, and the commit stores the chunk', async () => {
    const dir = await tempDir(t, 'darkfs-early-')
    const volume = await Volume.open({ dir })
    t.add(async () => { await volume.close() })
    const data = randomBytes(3 * MiB)
    const fh = await volume.open('/s.bin', 'w+')
    const f = openFileOf(volume, (await fh.stat()).ino)
    f.storeBehindTimeoutMs = 50
    const stuck = stickEarlyStores(volume)
    // the second write finishes chunk 0: its store behind it never settles until its deadline;
    // without one the third write (the inode's next turn) would wait for good
    for (let at = 0; at < data.byteLength; at += MiB) await fh.write(data, at, MiB, at)
    assert.ok(stuck.begun() >= 1, 'a store behind a write was begun')
    assert.ok(stuck.aborted.length >= 1 && stuck.aborted.every(r => r instanceof DOMException && r.name === 'TimeoutError'), `stores aborted: ${String(stuck.aborted)}`)
    stuck.unstick()
    await fh.close()
    assert.ok(Buffer.from(await volume.readFile('/s.bin')).equals(data), 'the committed version is what was written, chunk 0 with it')
  })

  it('fh.write(..., { deadlineMs }): a store behind the write gives up at the write\'s own deadline (the mount\'s), not the default', async () => {
    const dir = await tempDir(t, 'darkfs-early-')
    const volume = await Volume.open({ dir })
    t.add(async () => { await volume.close() })
    const data = randomBytes(3 * MiB)
    const fh = await volume.open('/d.bin', 'w+')
    const f = openFileOf(volume, (await fh.stat()).ino)
    assert.equal(f.storeBehindTimeoutMs, STORE_BEHIND_TIMEOUT_MS)
    const stuck = stickEarlyStores(volume)
    // as the second test, with the deadline given by each write (fuse/ops.ts gives the mount's)
    for (let at = 0; at < data.byteLength; at += MiB) await fh.write(data, at, MiB, at, { deadlineMs: 50 })
    assert.ok(stuck.begun() >= 1, 'a store behind a write was begun')
    assert.ok(stuck.aborted.length >= 1 && stuck.aborted.every(r => r instanceof DOMException && r.name === 'TimeoutError'), `stores aborted: ${String(stuck.aborted)}`)
    stuck.unstick()
    await fh.close()
    assert.ok(Buffer.from(await volume.readFile('/d.bin')).equals(data), 'the committed version is what was written, chunk 0 with it')
  })

  it('abandon() stops a store behind a write that never settles (it waits for no deadline)', async () => {
    const dir = await tempDir(t, 'darkfs-early-')
    const volume = await Volume.open({ dir })
    t.add(async () => { await volume.close() })
    await volume.writeFile('/a.bin', 'before')
    const data = randomBytes(2 * MiB)
    const fh = await volume.open('/a.bin', 'r+')
    const f = openFileOf(volume, (await fh.stat()).ino)
    const stuck = stickEarlyStores(volume)
    for (let at = 0; at < data.byteLength; at += MiB) await fh.write(data, at, MiB, at)
    await f.abandon()
    assert.equal(stuck.begun(), 1)
    assert.ok(stuck.aborted.length === 1 && (stuck.aborted[0] as DOMException).name === 'AbortError', `stores aborted: ${String(stuck.aborted)}`)
    assert.equal((await fh.stat()).size, 'before'.length, 'the open file is the committed version again')
    stuck.unstick()
    await fh.close()
    assert.equal(Buffer.from(await volume.readFile('/a.bin')).toString(), 'before')
  })

  it('a finished chunk whose put fails: the write goes on, the fsync fails with the put\'s error and nothing is committed', async () => {
    const dir = await tempDir(t, 'darkfs-early-')
    const volume = await Volume.open({ dir })
    t.add(async () => { await volume.close() })
    stubPuts(volume, async (putMany, blocks, opts) => {
      if (blocks.some(b => b.bytes.byteLength === MiB)) throw Object.assign(new Error('the disk said no'), { code: 'EIO' })
      return await putMany(blocks, opts)
    })
    const fh = await volume.open('/g.bin', 'w+')
    const data = randomBytes(2 * MiB)
    for (let at = 0; at < data.byteLength; at += MiB) await fh.write(data, at, MiB, at)
    await assert.rejects(fh.sync(), /the disk said no/)
    await fh.close().catch(() => {}) // the last close commits again, and fails the same way
    assert.equal((await volume.stat('/g.bin')).size, 0, 'no version names the chunk that was not stored')
  })

  // the order is checked where it matters, at the stamp of the op naming the manifest (no sleep:
  // review32e), once with the chunk's put held and once with the manifest's
  for (const held of ['chunk', 'manifest'] as const) {
    it(`a new small file's close: its manifest's put syncs while its chunk's does, and no op names the manifest before both puts are over (the ${held}'s put held)`, async () => {
      const dir = await tempDir(t, 'darkfs-early-')
      const volume = await Volume.open({ dir })
      t.add(async () => { await volume.close() })
      let open!: () => void
      const gate = new Promise<void>(resolve => { open = resolve })
      const started = { chunk: false, manifest: false }
      const over = { chunk: false, manifest: false }
      stubPuts(volume, async (putMany, blocks, opts) => {
        // the chunk is a raw block, the manifest dag-cbor
        const kind = blocks.every(b => b.cid.code === 0x55) ? 'chunk' : 'manifest'
        started[kind] = true
        if (kind === held) await gate
        try { return await putMany(blocks, opts) } finally { over[kind] = true }
      })
      // which puts were over when the op naming the manifest was stamped
      const v = volume as any
      const stamp = v.stamp.bind(v)
      const atStamp: Array<typeof over> = []
      v.stamp = async (bodies: any[], ...rest: any[]) => {
        if (bodies.some(b => b.content?.manifest !== undefined)) atStamp.push({ ...over })
        return await stamp(bodies, ...rest)
      }
      // past INLINE_MAX: one chunk, stored at the close
      const data = randomBytes(10_000)
      const fh = await volume.open('/small.bin', 'w')
      await fh.write(data, 0, data.byteLength, 0)
      const closed = fh.close()
      // the chunk's put held: the manifest's starts anyway (it waited for the chunk's before)
      await until('both puts started', () => started.chunk && started.manifest)
      assert.deepEqual(atStamp, [], 'no op names the manifest while a put is held')
      assert.equal(volume.tree.byIno(Number(fh.ino))?.size, 0, 'no version yet')
      open()
      await closed
      assert.deepEqual(atStamp, [{ chunk: true, manifest: true }], 'the op naming the manifest stamped once both puts were over')
      assert.ok(Buffer.from(await volume.readFile('/small.bin')).equals(data), 'the committed version is what was written')
    })
  }
})
