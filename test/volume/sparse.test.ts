// Sizes and counts from callers never size an allocation: a sparse file's manifest holds one
// hole ref per run of empty chunks (v2), so its bytes follow the data, not the length; sizes past
// FILE_SIZE_MAX are EFBIG; a whole-file read of more than READ_WHOLE_MAX is EFBIG, not a 1 TiB
// buffer; xattr names per inode stay within the kernel's listxattr bound.
import assert from 'node:assert/strict'
import { Volume, FILE_SIZE_MAX, CHUNK_SIZE } from '../../node/index.ts'
import { chunkAt, decodeManifest, encodeManifest, holeChunk, manifestOf } from '../../node/data/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

const TiB = 2 ** 40
const code = (c: string) => (err: any): boolean => { assert.equal(err?.code, c, String(err)); return true }

describe('sparse files and size bounds (Volume)', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  async function volume (): Promise<Volume> {
    const v = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await v.close() })
    return v
  }

  async function manifest (v: Volume, path: string): Promise<ReturnType<typeof decodeManifest>> {
    const inode = v.tree.byIno((await v.stat(path)).ino)!
    const c = inode.content
    assert.ok(c !== null && 'manifest' in c)
    return await v.chunks.readManifest(c.manifest)
  }

  it('volume.truncate(p, 1 TiB), a write in the middle: a v2 manifest of a few refs, the bytes read back', async () => {
    const v = await volume()
    await v.writeFile('/s', 'head')
    // the truncate and the write in one open: one whole version (a write alone after a committed
    // truncate would be a positioned extent over it, read over the manifest until a fold)
    const fh = await v.open('/s', 'r+')
    await fh.truncate(TiB)
    await fh.write(new TextEncoder().encode('middle'), 0, 6, TiB / 2 + 5)
    await fh.close()
    assert.equal((await v.stat('/s')).size, TiB)
    const m = await manifest(v, '/s')
    assert.equal(m.v, 2)
    assert.equal(m.chunks.length, 4) // head chunk, hole, middle chunk, hole
    assert.deepEqual(m.chunks.map(r => r.cid === null), [false, true, false, true])
    assert.equal(chunkAt(m, TiB / 2 / CHUNK_SIZE)?.ref.cid?.toString(), m.chunks[2].cid?.toString())
    assert.equal(chunkAt(m, 7)?.at, 1)
    const r = await v.open('/s', 'r')
    const buf = new Uint8Array(16)
    assert.equal((await r.read(buf, 0, 16, TiB / 2)).bytesRead, 16)
    assert.equal(new TextDecoder().decode(buf.subarray(5, 11)), 'middle')
    assert.equal((await r.read(buf, 0, 16, 0)).bytesRead, 16)
    assert.equal(new TextDecoder().decode(buf.subarray(0, 4)), 'head')
    assert.equal((await r.read(buf, 0, 16, TiB - 8)).bytesRead, 8)
    assert.deepEqual([...buf.subarray(0, 8)], new Array(8).fill(0))
    // a length larger than the buffer reads what the buffer holds
    assert.equal((await r.read(buf, 0, 2 ** 40, TiB / 2)).bytesRead, 16)
    await r.close()
    await assert.rejects(v.readFile('/s'), code('EFBIG'))
  })

  it('a file of whole chunks and one-chunk holes keeps a v1 manifest (older hosts read it)', async () => {
    const v = await volume()
    const fh = await v.open('/d', 'w')
    await fh.write(new Uint8Array(10).fill(1), 0, 10, 0)
    await fh.write(new Uint8Array(10).fill(2), 0, 10, 2 * CHUNK_SIZE)
    await fh.close()
    const m = await manifest(v, '/d')
    assert.equal(m.v, 1)
    assert.deepEqual(m.chunks.map(r => r.size), [CHUNK_SIZE, CHUNK_SIZE, 10])
    assert.deepEqual([...(await v.readFile('/d')).subarray(2 * CHUNK_SIZE)], new Array(10).fill(2))
  })

  it('truncate and write past FILE_SIZE_MAX are EFBIG; a write crossing it is cut short', async () => {
    const v = await volume()
    await v.writeFile('/f', 'x')
    await assert.rejects(v.truncate('/f', 999999999999999), code('EFBIG'))
    await assert.rejects(v.truncate('/f', FILE_SIZE_MAX + 1), code('EFBIG'))
    const fh = await v.open('/f', 'r+')
    await assert.rejects(fh.write(new Uint8Array(4), 0, 4, FILE_SIZE_MAX), code('EFBIG'))
    assert.equal((await fh.write(new Uint8Array(4), 0, 4, FILE_SIZE_MAX - 1)).bytesWritten, 1)
    await fh.close()
    assert.equal((await v.stat('/f')).size, FILE_SIZE_MAX)
  })

  it('decodeManifest: v2 holes may span chunks; data refs stay one chunk on a chunk boundary', () => {
    const ok = encodeManifest(manifestOf(3 * CHUNK_SIZE, [holeChunk(0, 3 * CHUNK_SIZE)]))
    assert.equal(decodeManifest(ok.bytes).v, 2)
    // v1 with a multi-chunk hole is malformed (an older writer never made one)
    assert.throws(() => decodeManifest(encodeManifest({ v: 1, size: 3 * CHUNK_SIZE, chunkSize: CHUNK_SIZE, chunks: [holeChunk(0, 3 * CHUNK_SIZE)] }).bytes), { name: 'ManifestError' })
    // a hole not on a chunk boundary
    assert.throws(() => decodeManifest(encodeManifest({ v: 2, size: 3 * CHUNK_SIZE, chunkSize: CHUNK_SIZE, chunks: [holeChunk(0, 10), holeChunk(10, 3 * CHUNK_SIZE - 10)] }).bytes), { name: 'ManifestError' })
  })

  it('setxattr past 64 KiB of names on one inode is ENOSPC; a value past the op bound is ERANGE', async () => {
    const v = await volume()
    await v.writeFile('/x', 'x')
    const name = (i: number): string => `user.${String(i).padStart(250, 'n')}`
    let i = 0
    for (; i < 300; i++) {
      try { await v.setxattr('/x', name(i), new Uint8Array(1)) } catch (err: any) { assert.equal(err.code, 'ENOSPC'); break }
    }
    assert.equal(i, Math.floor(65536 / 256))
    assert.ok(Buffer.byteLength((await v.listxattr('/x')).map(n => n + '\0').join('')) <= 65536)
    await v.setxattr('/x', name(0), new Uint8Array(2)) // replacing a value adds no name
    await assert.rejects(v.setxattr('/x', 'user.big', new Uint8Array(62 * 1024)), code('ERANGE'))
  })
})
