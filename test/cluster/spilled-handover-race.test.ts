// A placement's handover is planned, then its custody round asks the keepers; a spill of the same
// bytes is stored here in between. The copies the handover would delete are asked about again just
// before the delete (custody keep: ChunkService.aside), so the spilled chunk stays whole here and
// the file's commit reads back (review34e: the handover deleted them, planned before the spill).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { ChunkRef } from '../../node/data/index.ts'

const MiB = 1 << 20

describe('cluster: a handover planned before a spill of the same bytes', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]
  before(async () => { hosts = await startMesh(t, 6) })

  it('leaves the spilled chunk whole here, and the commit reads on another host', async () => {
    const [, b, , r] = hosts
    const chunks = b.volume.chunks
    const x = randomBytes(MiB)
    const fh = await b.volume.open('/spilled.bin', 'w+')
    let closed = false
    t.add(async () => { if (!closed) await fh.close() })
    const id = b.volume.tree.byIno(Number((await fh.stat()).ino))!.id
    const file = (b.volume as unknown as { open_: Map<string, { bufferBytes: number, stored: Map<number, ChunkRef>, early: { has: (i: number) => boolean } }> }).open_.get(id)!
    file.bufferBytes = 256 << 10
    // hold B's custody round of the placement below until the spill is stored
    const custody = b.custody as unknown as { askTogether: (...a: unknown[]) => Promise<unknown> }
    const orig = custody.askTogether.bind(custody)
    const gate = Promise.withResolvers<void>()
    let asked = 0
    custody.askTogether = async (...a: unknown[]) => { asked++; await gate.promise; return await orig(...a) }
    t.add(() => { custody.askTogether = orig; gate.resolve() })
    const w = chunks.write()
    await w.chunk(x, MiB)
    await w.durable()
    const placed = w.placed()
    await until('the handover round began', () => asked > 0, 30_000)
    await fh.write(x, 0, MiB, MiB)
    const ref = file.stored.get(1)
    assert.ok(ref !== undefined && ref.cid !== null && !file.early.has(1), 'chunk 1 was spilled')
    assert.ok(await chunks.hasLocally(ref), 'whole here right after the spill')
    gate.resolve()
    custody.askTogether = orig
    await placed
    assert.ok(await chunks.hasLocally(ref), 'the spilled chunk is whole here after the handover')
    await w.abandon()
    await fh.write(Buffer.from('x'), 0, 1, 0)
    await fh.sync()
    closed = true
    await fh.close()
    r.volume.chunks.dropCache()
    assert.ok(Buffer.from(await r.volume.chunks.readChunk(ref)).equals(x), 'the chunk reads on R')
  })
})
