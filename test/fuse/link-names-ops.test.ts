// A file back to one link, its other name removed by another host (the Volume directly): its
// writes refresh no names (review40d: every write's answer still listed the gone name, each write
// then held its reply on a thread of its own).
import assert from 'node:assert/strict'
import { createOps, Op } from '../../fuse/ops.ts'
import type { Request } from '../../fuse/ops.ts'
import { createHandles } from '../../fuse/handles.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'

const caller = { uid: 0, gid: 0, umask: 0o022 }
function req (op: number, path: string | null, n: number[] = [], data: Uint8Array | null = null): Request {
  const nn = [...n, -1, -1, -1, -1, -1].slice(0, 5) as Request['n']
  return { op, path, path2: null, data, n: nn, caller }
}

describe('fuse ops: the names of a file whose other link went elsewhere', function () {
  it('a write to a file of one link (its other name unlinked by another host) lists no names', async function () {
    const volume = createMemoryVolume()
    const ops = createOps(volume, createHandles())
    const fh = await volume.open('/a', 0o102 /* O_RDWR|O_CREAT */, 0o644, caller)
    await fh.close()
    await volume.link('/a', '/b')
    await ops(req(Op.getattr, '/a'))
    await ops(req(Op.getattr, '/b'))
    const h = (await ops(req(Op.open, '/a', [2 /* O_RDWR */]))).result
    // another host removes b: this mount sees the file with one link from then on
    await volume.unlink('/b')
    const st = await ops(req(Op.getattr, '/a'))
    assert.equal(st.result, 0)
    const w = await ops(req(Op.write, null, [h, 0, 0, -1], Buffer.from('xyz')))
    assert.equal(w.result, 3)
    assert.equal(w.a, undefined, `a one-link file's write answer lists names ${JSON.stringify(w.a)}: a held reply and a thread per write`)
  })
})
