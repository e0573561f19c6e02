import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Volume } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'

/** Files already corrupted (flipping one twice would repair it). */
const flipped = new Set<string>()

/** Flip one byte in up to `limit` stored block files that `pick` accepts by size. */
async function corruptBlocks (dir: string, pick: (size: number) => boolean, limit = Infinity): Promise<number> {
  let n = 0
  const root = join(dir, 'store', 'blocks')
  for (const d of await readdir(root)) {
    for (const f of await readdir(join(root, d))) {
      const p = join(root, d, f)
      if (flipped.has(p)) continue
      const bytes = await readFile(p)
      if (!pick(bytes.byteLength) || n >= limit) continue
      flipped.add(p)
      bytes[bytes.byteLength >> 1] ^= 0xff
      await writeFile(p, bytes)
      n++
    }
  }
  return n
}

describe('corrupt blocks on disk', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('a corrupt chunk with no surviving copy is a clear EIO naming the file, never wrong bytes', async () => {
    const dir = await tempDir(t)
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const data = randomBytes(2 << 20)
    await vol.writeFile('/doc.bin', data)
    vol.chunks.dropCache()
    assert.equal(await corruptBlocks(dir, size => size === 1 << 20, 1), 1)
    await assert.rejects(vol.readFile('/doc.bin'), (err: any) => {
      assert.equal(err.name, 'CorruptBlockError')
      assert.equal(err.code, 'EIO')
      assert.match(err.message, /\/doc\.bin/)
      return true
    })
    // the rest of the volume is untouched
    await vol.writeFile('/other', 'fine')
    assert.equal(Buffer.from(await vol.readFile('/other')).toString(), 'fine')
  })

  it('with erasure-coded local fragments (k=2, m=1), a corrupt fragment is rebuilt from the others', async () => {
    const dir = await tempDir(t)
    const vol = await Volume.open({ dir, localParams: { k: 2, m: 1 } })
    t.add(async () => { await vol.close() })
    const data = randomBytes(1 << 20) // one chunk: three fragments of 512 KiB
    await vol.writeFile('/doc.bin', data)
    vol.chunks.dropCache()
    assert.equal(await corruptBlocks(dir, size => size === 1 << 19, 1), 1)
    assert.deepEqual(Buffer.from(await vol.readFile('/doc.bin')), data)
    // a second lost fragment leaves fewer than k: a clear error, not wrong bytes
    vol.chunks.dropCache()
    assert.equal(await corruptBlocks(dir, size => size === 1 << 19, 1), 1)
    await assert.rejects(vol.readFile('/doc.bin'), /corrupt.*\/doc\.bin/)
  })
})
