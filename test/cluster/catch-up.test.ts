import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import { agreed, shared, syncAbortedAtSecondLay, treeOf } from '../helpers/file-pair.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()
type Host = Awaited<ReturnType<typeof startMesh>>[number]

describe('catchUp: a whole write over a moving file (write36 mends)', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: Host[]
  before(async () => { hosts = await startMesh(t, 2) })

  it('a version came between, not seeing an append host 0 already holds: the append is not laid twice', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'v', enc.encode('base\n'))
    // host 1 receives nothing until the gate opens
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    const tree1 = h1.tree as any
    const receive = tree1.receive.bind(tree1)
    tree1.receive = async (...args: unknown[]) => { await gate; return await receive(...args) }
    try {
      const fa = await h0.volume.open('/v', 'a')
      await fa.write(enc.encode('X\n'), 0, 2, 0)
      await fa.close()
      const fh = await h0.volume.open('/v', 'r+')
      await fh.write(enc.encode('Z'), 0, 1, 0)
      await h1.volume.writeFile('/v', enc.encode('peer!\n'))
      await until('host 0 has host 1\'s version', () => treeOf(h0, 'v')?.size === 8, 60_000)
      open()
      await fh.close()
    } finally {
      open()
      tree1.receive = receive
    }
    const got = dec.decode(await agreed(h0, h1, 'v'))
    // host 0's version replaces host 1's; host 0's append, which host 1's version did not see, is kept once
    assert.equal(got, 'Zase\nX\n')
  })

  it('a truncate up here, a peer\'s positioned write across both ends: the peer\'s bytes are kept, past the new end too', async () => {
    const [h0, h1] = hosts
    const K = 256 << 10
    await shared(h0, h1, 'tu', new Uint8Array(K).fill(0x61))
    const fh = await h0.volume.open('/tu', 'r+')
    await fh.truncate(K + 20)
    const fp = await h1.volume.open('/tu', 'r+')
    await fp.write(enc.encode('P'.repeat(100)), 0, 100, K - 50)
    await fp.close()
    await until('host 0 has host 1\'s write', () => treeOf(h0, 'tu')?.size === K + 50, 60_000)
    assert.equal(treeOf(h0, 'tu')?.extents?.length, 1, 'host 1\'s write is a positioned extent')
    await fh.close()
    // the zeros the truncate grew the file by are not host 0's bytes, and it did not shrink the
    // file: the peer's write lies over them and past them
    const got = dec.decode(await agreed(h0, h1, 'tu'))
    assert.equal(got, 'a'.repeat(K - 50) + 'P'.repeat(100))
  })

  it('a truncate to 0 here, a peer\'s append then positioned write: the append\'s op bytes are not written over', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'm', new Uint8Array(256 << 10).fill(0x61))
    const fh = await h0.volume.open('/m', 'r+')
    await fh.truncate(0)
    const fa = await h1.volume.open('/m', 'a')
    await fa.write(enc.encode('R\n'), 0, 2, 0)
    await fa.close()
    const appendOp = (h1.tree as any).newestLocalOp
    const fp = await h1.volume.open('/m', 'r+')
    await fp.write(enc.encode('Q'), 0, 1, 0)
    await fp.close()
    await until('host 0 has both', () => (treeOf(h0, 'm')?.extents?.length ?? 0) === 2, 20_000)
    const mine = (h0.tree as any).dag.get(appendOp.id)
    const before = Buffer.from(mine.op.bytes).toString('hex')
    assert.equal(before, Buffer.from(appendOp.bytes).toString('hex'))
    await fh.close()
    const got = dec.decode(await agreed(h0, h1, 'm'))
    assert.equal(got, 'Q\n')
    assert.equal(Buffer.from(mine.op.bytes).toString('hex'), before, 'host 0\'s copy of host 1\'s append op is as signed')
  })

  it('an fsync aborted while it lays a peer\'s appends: the close after it lays none of them twice', async () => {
    const [h0, h1] = hosts
    const MiB = 1 << 20
    await shared(h0, h1, 'ab', new Uint8Array(2 * MiB).fill(0x61))
    const fh = await h0.volume.open('/ab', 'r+')
    await fh.write(new Uint8Array(MiB).fill(0x62), 0, MiB, 0)
    for (const line of ['R1\n', 'R2\n']) {
      const fa = await h1.volume.open('/ab', 'a')
      await fa.write(enc.encode(line), 0, 3, 0)
      await fa.close()
    }
    await until('host 0 has both appends', () => treeOf(h0, 'ab')?.size === 2 * MiB + 6, 60_000)
    await syncAbortedAtSecondLay(h0, 'ab', fh)
    await fh.close()
    const got = await agreed(h0, h1, 'ab')
    const tail = dec.decode(got.subarray(2 * MiB))
    assert.equal(tail, 'R1\nR2\n')
  })
})
