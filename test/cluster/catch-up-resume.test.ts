// A peer's append longer than a chunk is laid over a closing file's pending writes a chunk at a time
// (OpenFile.catchUp). When the fsync that lays it is aborted part-way, the next catch-up lays the rest
// where the first piece went: like a positioned write, so it neither writes over what this host wrote
// there since nor goes past a truncate made here since (review36g found both).
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import { agreed, shared, syncAbortedAtSecondLay, treeOf } from '../helpers/file-pair.ts'

const enc = new TextEncoder()
type Host = Awaited<ReturnType<typeof startMesh>>[number]
const MiB = 1 << 20

describe('catch-up: a peer\'s append a close stopped part-way through laying (review36g)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: Host[]
  before(async () => { hosts = await startMesh(t, 2) })

  // host 0: 2 MiB file, 1 MiB written at 0 (pending); host 1 appends 1 MiB + 4 KiB; host 0's fsync aborted after
  // the append's first piece is laid; returns host 0's handle
  async function interrupted (name: string): Promise<any> {
    const [h0, h1] = hosts
    await shared(h0, h1, name, new Uint8Array(2 * MiB).fill(0x61))
    const fh = await h0.volume.open(`/${name}`, 'r+')
    await fh.write(new Uint8Array(MiB).fill(0x62), 0, MiB, 0)
    const fa = await h1.volume.open(`/${name}`, 'a')
    await fa.write(new Uint8Array(MiB + 4096).fill(0x52), 0, MiB + 4096, 0)
    await fa.close()
    await until('host 0 has the append', () => treeOf(h0, name)?.size === 3 * MiB + 4096, 60_000)
    await syncAbortedAtSecondLay(h0, name, fh)
    return fh
  }

  it('an append resumed after an abort does not write over bytes written here since', async () => {
    const [h0, h1] = hosts
    const fh = await interrupted('ra')
    // this host writes where the file ends now (after the append's first piece)
    await fh.write(enc.encode('LLLLLLLLLL'), 0, 10, 3 * MiB)
    await fh.close()
    const got = Buffer.from(await agreed(h0, h1, 'ra'))
    assert.equal(got.subarray(3 * MiB, 3 * MiB + 10).toString(), 'LLLLLLLLLL', 'this host\'s write kept')
  })

  it('an append resumed after an abort and a truncate here: no hole of zeros and half an append past the cut', async () => {
    const [h0, h1] = hosts
    const fh = await interrupted('rt')
    await fh.truncate(1000)
    await fh.close()
    const got = Buffer.from(await agreed(h0, h1, 'rt'))
    assert.equal(got.byteLength, 1000)
  })
})
