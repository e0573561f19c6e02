// A sequential writer's finished chunks are stored before the commit (node/early-chunks.ts): the
// file still reads back as written when such chunks are rewritten or cut off before the commit,
// and the replaced chunks' blocks are deleted, not left to GC (one host, one copy per chunk).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Volume } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'

const MiB = 1 << 20

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
})
