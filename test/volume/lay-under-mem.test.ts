// OpenFile.layUnder (mend37w2) lays a version that came under this host's written bytes, a chunk
// at a time. Each chunk's base bytes were read into a fresh chunk-sized buffer and every gap
// between this host's ranges written as a view of it: a gap shorter than the chunk became a patch
// that kept the whole buffer alive while the file's accounting (patchBytes) counted only the gap,
// so the buffer bound never spilled it (review37m: a 401-chunk file with a one-byte gap per
// chunk held ~400 MiB past the bound). After layUnder the memory the file's pending bytes
// reference must be what its accounting counts.
import assert from 'node:assert/strict'
import { Volume, OpenFile, CHUNK_SIZE, MAX_OWN_EXTENTS } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { writeWhileComing } from '../helpers/held-sync.ts'
import { held } from '../helpers/held-bytes.ts'

describe('volume: a version laid under this host\'s writes holds only the memory it counts', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('a one-byte gap per chunk is not a view of a whole chunk', async () => {
    const dir = await tempDir(t, 'darkfs-lay-mem-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const chunks = 4
    const size = (chunks + 1) * CHUNK_SIZE
    await vol.writeFile('/f', new Uint8Array(size).fill(0x61))
    const lay = OpenFile.prototype.layUnder
    const seen: Array<{ referenced: number, counted: number }> = []
    OpenFile.prototype.layUnder = async function (this: OpenFile, ...args: Parameters<OpenFile['layUnder']>) {
      await lay.apply(this, args)
      seen.push(held(this))
    }
    t.add(async () => { OpenFile.prototype.layUnder = lay })
    // a version of this host (0x62s) comes while the ranges are written: its log append written, its fsync held until they are
    await writeWhileComing(vol, '/f', new Uint8Array(size).fill(0x62), async fh => {
      // past MAX_OWN_EXTENTS ranges in chunk 0 (the close lays the version under them), then
      // every other chunk written but its first byte
      for (let i = 0; i <= MAX_OWN_EXTENTS; i++) await fh.write(new Uint8Array([0x58]), 0, 1, 2 * i)
      for (let c = 1; c <= chunks; c++) await fh.write(new Uint8Array(CHUNK_SIZE - 1).fill(0x59), 0, CHUNK_SIZE - 1, c * CHUNK_SIZE + 1)
    })
    assert.ok(seen.length > 0, 'the close laid the version that came under its writes')
    for (const { referenced, counted } of seen) {
      // (slack for small copies sharing a buffer: far under one chunk)
      assert.ok(referenced <= counted + (64 << 10), `pending bytes reference ${referenced} bytes, the file counts ${counted}`)
    }
    const got = await vol.readFile('/f')
    let bad = 0
    for (let c = 1; c <= chunks; c++) if (got[c * CHUNK_SIZE] !== 0x62 || got[c * CHUNK_SIZE + 1] !== 0x59) bad++
    for (let i = 0; i <= MAX_OWN_EXTENTS; i++) if (got[2 * i] !== 0x58 || got[2 * i + 1] !== 0x62) bad++
    assert.equal(bad, 0)
  })
})
