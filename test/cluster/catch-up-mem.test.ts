// OpenFile.catchUp lays a peer's positioned extents that came while a file was open around this
// host's written bytes, a piece (up to a chunk) at a time. Each piece's bytes were read into a
// fresh buffer and every gap between this host's ranges written as a view of it: a gap shorter
// than the piece became a patch holding the whole buffer while the file counted only the gap
// (patchBytes), the memory pattern layUnder had until review37m (test/volume/lay-under-mem). After
// catchUp the memory the file's pending bytes reference must be what its accounting counts.
import assert from 'node:assert/strict'
import { OpenFile } from 'darkfs'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import { agreed, shared, treeOf } from '../helpers/file-pair.ts'
import { held } from '../helpers/held-bytes.ts'

const K = 1024
/** The peer's extents: RANGES ranges of SPAN bytes, one commit each. */
const RANGES = 4
const SPAN = 200 * K
const at = (r: number): number => r * 256 * K + 10 * K

describe('catchUp: a peer\'s extents laid around this host\'s writes hold only the memory the file counts', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('a one-byte gap in each of a peer\'s 200 KiB extents is not a view of the whole extent', async () => {
    const [h0, h1] = await startMesh(t, 2)
    const size = 2 * 1024 * K
    await shared(h0, h1, 'm', new Uint8Array(size).fill(0x61))
    const catchUp = OpenFile.prototype.catchUp
    const seen: Array<{ referenced: number, counted: number }> = []
    OpenFile.prototype.catchUp = async function (this: OpenFile, ...args: Parameters<OpenFile['catchUp']>) {
      await catchUp.apply(this, args)
      seen.push(held(this))
    }
    t.add(async () => { OpenFile.prototype.catchUp = catchUp })
    // host 0: a truncate (its close is a whole version, caught up over what came) and each of
    // the peer's ranges written here but one byte in its middle
    const fh = await h0.volume.open('/m', 'r+')
    await fh.truncate(size + 10)
    for (let r = 0; r < RANGES; r++) {
      await fh.write(new Uint8Array(SPAN / 2).fill(0x58), 0, SPAN / 2, at(r))
      await fh.write(new Uint8Array(SPAN / 2 - 1).fill(0x58), 0, SPAN / 2 - 1, at(r) + SPAN / 2 + 1)
    }
    // host 1: each range a positioned extent of its own
    for (let r = 0; r < RANGES; r++) {
      const fp = await h1.volume.open('/m', 'r+')
      await fp.write(new Uint8Array(SPAN).fill(0x50), 0, SPAN, at(r))
      await fp.close()
    }
    await until('host 0 has host 1\'s extents', () => treeOf(h0, 'm')?.extents?.length === RANGES, 60_000)
    await fh.close()
    assert.ok(seen.length > 0, 'the close caught up with the extents that came')
    for (const { referenced, counted } of seen) {
      // (slack for small copies sharing a buffer: far under one extent)
      assert.ok(referenced <= counted + (64 << 10), `pending bytes reference ${referenced} bytes, the file counts ${counted}`)
    }
    const got = await agreed(h0, h1, 'm')
    assert.equal(got.byteLength, size + 10)
    let bad = 0
    for (let r = 0; r < RANGES; r++) {
      const mid = at(r) + SPAN / 2
      if (got[mid - 1] !== 0x58 || got[mid] !== 0x50 || got[mid + 1] !== 0x58 || got[at(r)] !== 0x58 || got[at(r) + SPAN - 1] !== 0x58) bad++
    }
    assert.equal(bad, 0)
  })
})
