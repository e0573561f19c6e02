// An open file's spilled chunks on B, and another host A writing the same bytes, placing them and
// giving them up: A's release asks every holder, B among them. Nothing names B's spilled chunks
// yet (no tree, no promise, no claim), but B's open file will: B keeps them (release.ts inUse),
// and B's commit of the file reads back everywhere (review34e: B's copies went, and a commit after
// the staged copies had left named chunks gone from every host).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { ChunkRef } from '../../node/data/index.ts'

const MiB = 1 << 20
const N = 6

describe('cluster: a peer giving up the same bytes keeps an open file\'s spilled chunks', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]
  before(async () => { hosts = await startMesh(t, 6) })

  it('spilled on B, placed and given up on A: B still whole, the commit readable on R', async () => {
    const [a, b, , r] = hosts
    const fh = await b.volume.open('/spilled.bin', 'w+')
    let closed = false
    t.add(async () => { if (!closed) await fh.close() })
    const id = b.volume.tree.byIno(Number((await fh.stat()).ino))!.id
    const file = (b.volume as unknown as { open_: Map<string, { bufferBytes: number, stored: Map<number, ChunkRef>, early: { has: (i: number) => boolean } }> }).open_.get(id)!
    file.bufferBytes = 256 << 10
    const xs: Buffer[] = []
    // chunks N..1 written first (not from 0 in order: spilled, not placed early)
    for (let i = N; i >= 1; i--) { const x = randomBytes(MiB); xs[i] = x; await fh.write(x, 0, MiB, i * MiB) }
    const refs: ChunkRef[] = []
    for (let i = 1; i <= N; i++) {
      const ref = file.stored.get(i)
      assert.ok(ref !== undefined && ref.cid !== null && !file.early.has(i), `chunk ${i} spilled`)
      refs[i] = ref
      assert.ok(await b.volume.chunks.hasLocally(ref), `B whole for chunk ${i} before`)
    }
    for (let i = 1; i <= N; i++) {
      const w = a.volume.chunks.write()
      await w.chunk(xs[i], i * MiB)
      await w.durable()
      await w.placed()
      await w.abandon()
    }
    const lost: number[] = []
    for (let i = 1; i <= N; i++) if (!await b.volume.chunks.hasLocally(refs[i])) lost.push(i)
    assert.deepEqual(lost, [], 'B lost spilled chunks to A\'s release')
    // as once more than the staging memory was spilled: B's commit reads its chunks from its store
    const staging = (b.volume.chunks as unknown as { staging: { release: (c: string) => void } }).staging
    for (let i = 1; i <= N; i++) staging.release(refs[i].cid!.toString())
    b.volume.chunks.dropCache()
    await fh.write(Buffer.from('x'), 0, 1, 0)
    await fh.sync()
    closed = true
    await fh.close()
    r.volume.chunks.dropCache()
    for (let i = 1; i <= N; i++) {
      assert.ok(Buffer.from(await r.volume.chunks.readChunk(refs[i])).equals(xs[i]), `chunk ${i} read on R`)
    }
  })
})
