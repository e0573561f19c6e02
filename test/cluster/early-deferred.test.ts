// An open file's early chunks are placed without being stored whole on the writer first (issue
// 15 item 4, early-chunks.ts): the writer's disk takes only the fragment it keeps of each chunk a
// sequential writer moved past, nothing it deletes again once placed; the close (or fsync) finds
// every such chunk on its holders, so the file reads back on another host with the writer gone.
// Six in-process hosts, k = 4, m = 2. Measured by the store counters, never by timing.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { chunksOf } from '../helpers/chunks.ts'

const MiB = 1 << 20
/** The manifest and its copies, and the metadata of the op log. */
const SLACK = 256 * 1024

describe('cluster: an open file\'s early chunks are placed, not stored whole on the writer first (six in-process hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  after(async () => { await t.run() })

  before(async function () {
    hosts = await startMesh(t, 6, { members: true })
    assert.deepEqual(hosts[0].volume.chunks.params(), { k: 4, m: 2 })
  })

  it('filehandle.write() of 16 MiB in 128 KiB pieces, sync, close: the writer stores its own fragment of each early chunk and deletes nothing (fails on the old code: each chunk whole, then 3/4 deleted)', async () => {
    const size = 16 * MiB
    const [w, r] = hosts
    const data = randomBytes(size)
    const before = w.store.counters()
    const fh = await w.volume.open('/deferred.bin', 'w')
    for (let at = 0; at < size; at += 128 * 1024) await fh.write(data, at, 128 * 1024, at)
    await fh.sync()
    await fh.close()
    const refs = (await chunksOf(w, '/deferred.bin')).filter(c => c.k > 1)
    assert.equal(refs.length, 16)
    await until('every chunk is placed', () => w.network.pending.size === 0, 120_000)
    for (const ref of refs) {
      for (const f of ref.fragments) {
        const on = (await Promise.all(hosts.map(async h => await h.store.has(f)))).filter(Boolean).length
        assert.ok(on >= 1, `fragment ${f.toString()} is on ${on} hosts`)
      }
    }
    const after = w.store.counters()
    const added = after.added - before.added
    const removed = after.removed - before.removed
    // 15 early chunks: a quarter each (the writer is one of six targets); the last, stored at the
    // commit, whole (1 MiB, three quarters of it handed over later). It was 16 MiB + 4 MiB, 12 MiB removed
    assert.ok(added <= 16 * MiB / 4 + MiB + SLACK, `the writer stored ${(added / MiB).toFixed(2)} MiB for 16 MiB written`)
    assert.ok(removed <= MiB, `the writer removed ${(removed / MiB).toFixed(2)} MiB`)
    await until(`${r.name} sees /deferred.bin`, async () => { try { return (await r.volume.stat('/deferred.bin')).size === size } catch { return false } })
    await w.stop()
    assert.equal(createHash('sha256').update(await r.volume.readFile('/deferred.bin')).digest('hex'), createHash('sha256').update(data).digest('hex'), `${r.name} reads it back, the writer stopped`)
  })
})
