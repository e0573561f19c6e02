// ChunkNetwork.keep (fragment -> codings wanting it here as their target) after committed writes:
// a coding's claims end once its placement is settled and it is committed (review38d: the map
// only grew, and handOver took every fragment this host was ever a target of as needed for good).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

const MiB = 1 << 20

describe('keep claims of committed codings', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]
  before(async () => { hosts = await startMesh(t, 6, { members: true }) })

  it('the claims of committed, placed chunks end', async () => {
    const w = hosts[0]
    const keep = (w.network as any).keep as Map<string, Set<string>>
    const before = keep.size
    for (let i = 0; i < 20; i++) {
      const fh = await w.volume.open(`/k${i}.bin`, 'w')
      try { await fh.write(randomBytes(MiB), 0, MiB, 0) } finally { await fh.close() }
    }
    await until('nothing pending', () => w.network.pending.size === 0, 60_000)
    // delete them all: nothing names those chunks any more
    for (let i = 0; i < 20; i++) await w.volume.unlink(`/k${i}.bin`)
    // (the custody rounds of the last placements may still run)
    const ended = await until('the claims of the committed chunks end', () => keep.size <= before + 2, 30_000).then(() => true, () => false)
    console.log(`      keep entries: ${before} before, ${keep.size} after 20 committed-and-deleted files; codings held: ${[...keep.values()].reduce((a, s) => a + s.size, 0)}`)
    assert.ok(ended && keep.size <= before + 2, `keep grew by ${keep.size - before} entries for chunks committed (and since deleted)`)
  })
})
