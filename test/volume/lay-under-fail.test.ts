// Past MAX_OWN_EXTENTS written ranges over a version that came (a version of this host in flight
// at the open: own-extents-span.test.ts), the close lays that version under this host's bytes
// (OpenFile.layUnder). A chunk of it that could not be read there (a peer unreachable for a
// moment) made the next try the last, which committed one extent from the first written byte to
// the last: the bytes between this host's ranges were the old ones as this state read them, over
// the version that came, acknowledged (review37m). The last try now commits each range as its
// own extent (several ops), the version that came kept between them.
import assert from 'node:assert/strict'
import { Volume, OpenFile, MAX_OWN_EXTENTS } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { writeWhileComing } from '../helpers/held-sync.ts'

type Reader = { baseChunk: (...args: unknown[]) => Promise<Uint8Array | undefined> }

describe('volume: a version that came not read under this host\'s writes', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it(`${MAX_OWN_EXTENTS + 1} written ranges, a chunk read failing: the version that came kept between them`, async () => {
    const dir = await tempDir(t, 'darkfs-lay-fail-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    const n = MAX_OWN_EXTENTS + 1
    const size = 3 * n + 16
    await vol.writeFile('/f', new Uint8Array(size).fill(0x61))
    // every chunk read while a version is laid under the writes fails
    const lay = OpenFile.prototype.layUnder
    let failed = 0
    OpenFile.prototype.layUnder = async function (this: OpenFile, ...args: Parameters<OpenFile['layUnder']>) {
      const r = this as unknown as Reader
      r.baseChunk = async () => { failed++; throw new Error('injected: chunk unreachable') }
      try {
        await lay.apply(this, args)
      } finally {
        delete (r as Partial<Reader>).baseChunk
      }
    }
    t.add(async () => { OpenFile.prototype.layUnder = lay })
    // a version of this host (0x62s) comes while the ranges are written: its log append written, its fsync held until they are
    await writeWhileComing(vol, '/f', new Uint8Array(size).fill(0x62), async fh => {
      for (let i = 0; i < n; i++) await fh.write(new Uint8Array([0x58]), 0, 1, 2 * i)
    })
    assert.ok(failed > 0, 'a chunk read failed while the version that came was laid under the writes')
    const got = await vol.readFile('/f')
    assert.equal(got.byteLength, size)
    let bad = 0
    let first = -1
    for (let i = 0; i < size; i++) {
      if (got[i] !== (i % 2 === 0 && i < 2 * n ? 0x58 : 0x62)) {
        bad++
        if (first < 0) first = i
      }
    }
    assert.equal(bad, 0, `${bad} bytes of ${size} not as written, the first at ${first}`)
  })
})
