// An open file's spilled chunk (stored aside here before its commit, not placed) and another write
// of the same bytes on the same host that is placed, then given up (review34a): the placement
// handed this host's copies of the data fragments over (it is not their target), and the give-up
// asked their targets to delete them (RecentCommits had let the spilled chunk's entry go: a file
// held open longer than RECENT_COMMIT_MS, stood for by a fresh set). The commit then named a
// chunk that was nowhere. The spilled chunk joins ChunkService.open (and aside) when it is stored.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { RecentCommits } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'

const MiB = 1 << 20

describe('an open file\'s spilled chunk vs a write of the same bytes placed, then given up, on the same host (six hosts)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]

  before(async () => { hosts = await startMesh(t, 6) })

  it('the spilled chunk stays whole here through the placement, and the committed version reads on another host', async () => {
    const [, b, , r] = hosts
    const chunks = b.volume.chunks
    const x = randomBytes(MiB)
    const fh = await b.volume.open('/spilled.bin', 'w+')
    t.add(async () => { await fh.close().catch(() => {}) })
    const id = b.volume.tree.byIno(Number((await fh.stat()).ino))!.id
    const file = (b.volume as unknown as { open_: Map<string, { bufferBytes: number, stored: Map<number, ChunkRef>, early: { has: (i: number) => boolean } }> }).open_.get(id)!
    file.bufferBytes = 256 << 10
    // the second chunk, written first: past the buffer it is spilled (stored aside, not early)
    await fh.write(x, 0, MiB, MiB)
    const ref = file.stored.get(1)
    assert.ok(ref !== undefined && ref.cid !== null && !file.early.has(1), 'chunk 1 was spilled')
    assert.ok(ref.k > 1 && ref.m > 0, `an erasure-coded chunk (k=${ref.k} m=${ref.m})`)
    ;(chunks as unknown as { recent: RecentCommits }).recent = new RecentCommits()

    // another write of the same bytes here: placed (its settle waits for its handover), given up
    const second = chunks.write()
    await second.chunk(x, MiB)
    await second.durable()
    await second.placed()
    assert.ok(await chunks.hasLocally(ref), 'the spilled chunk is whole here after the placement of the same bytes')
    await second.abandon()
    assert.ok(await chunks.hasLocally(ref), 'the spilled chunk is whole here after the give-up')

    // the open file commits (fsync waits until the chunk survives one lost host), then another host reads it
    await fh.sync()
    await fh.close()
    r.volume.chunks.dropCache()
    const read = await r.volume.chunks.readChunk(ref)
    assert.ok(Buffer.from(read).equals(x), 'the chunk reads back on another host')
  })
})
