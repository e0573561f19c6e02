// A file opened while this host's own version of it is stamped and not applied yet (a writeFile
// whose fsync is not back): the open state's mark is the state before that version, the tree's
// cut (the heads a local op would name) has it. A whole version built from that state, stamped at
// the cut (whole37), named that version as seen and replaced it: its bytes gone from the file
// (history kept them), no conflict sibling.
import assert from 'node:assert/strict'
import { Volume } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { writeWhileComing } from '../helpers/held-sync.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()

describe('volume: a whole version built from a state read while a version of this host was in flight', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('a writeFile in flight at the open is kept: the open\'s writes go over it', async () => {
    const dir = await tempDir(t, 'darkfs-cut-inflight-')
    const vol = await Volume.open({ dir })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/f', enc.encode('aaaa\n'))
    // the writeFile's append (its op holds its bytes) is written, its fsync back once the open's
    // writes are done
    const ofBbbb = (records: Uint8Array[]): boolean => records.some(r => Buffer.from(r.buffer, r.byteOffset, r.byteLength).includes('bbbb'))
    await writeWhileComing(vol, '/f', enc.encode('bbbb\n'), async fh => {
      await fh.write(enc.encode('X'), 0, 1, 0)
    }, ofBbbb)
    assert.equal(dec.decode(await vol.readFile('/f')), 'Xbbb\n')
  })
})
