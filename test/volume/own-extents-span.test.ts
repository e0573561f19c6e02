// A version of this host in flight (a writeFile whose log append is held) when a file is opened:
// the open state's mark is before it, and the close, finding it applied and seen by this host's own
// op, commits this host's written bytes over it as positioned extents (mend37w, OpenFile.ownExtents).
// Past MAX_OWN_EXTENTS written ranges those were one extent from the first written byte to the
// last, holding the open state's bytes between them as read: the version that came, acknowledged,
// overwritten there by the old bytes (review37j). Past the bound that version is laid under this
// host's ranges and the close built again over it (OpenFile.layUnder).
import assert from 'node:assert/strict'
import { Volume, MAX_OWN_EXTENTS } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { writeWhileComing } from '../helpers/held-sync.ts'

describe('volume: this host\'s writes over a version of its own that was in flight at the open', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  const cases = [
    { n: 100, came: 3 * 100 + 16 },
    { n: MAX_OWN_EXTENTS + 1, came: 3 * (MAX_OWN_EXTENTS + 1) + 16 },
    // a shorter version came: the file as long as this host's last written byte, zeros past that version but where this host wrote
    { n: MAX_OWN_EXTENTS + 1, came: MAX_OWN_EXTENTS }
  ]
  for (const { n, came } of cases) {
    it(`${n} written ranges over a version of ${came} bytes: its bytes between them kept`, async () => {
      const dir = await tempDir(t, 'darkfs-own-span-')
      const vol = await Volume.open({ dir })
      t.add(async () => { await vol.close() })
      const size = 3 * n + 16
      await vol.writeFile('/f', new Uint8Array(size).fill(0x61))
      // a version of this host (0x62s) comes while the ranges are written: its log append written, its fsync held until they are
      await writeWhileComing(vol, '/f', new Uint8Array(came).fill(0x62), async fh => {
        for (let i = 0; i < n; i++) await fh.write(new Uint8Array([0x58]), 0, 1, 2 * i)
      })
      const got = await vol.readFile('/f')
      const end = Math.max(came, 2 * n - 1)
      assert.equal(got.byteLength, end)
      let bad = 0
      let first = -1
      for (let i = 0; i < end; i++) {
        if (got[i] !== (i % 2 === 0 && i < 2 * n ? 0x58 : i < came ? 0x62 : 0)) {
          bad++
          if (first < 0) first = i
        }
      }
      assert.equal(bad, 0, `${bad} bytes of ${end} not as written, the first at ${first}`)
    })
  }
})
