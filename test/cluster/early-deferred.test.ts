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
import { CHUNK_SIZE } from '../../node/data/index.ts'

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

describe('cluster: an open file\'s early chunks written with every peer gone are stored whole on the writer (six in-process hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('their placement places nothing: the close finds their data fragments on the writer\'s disk, and the file reads back there', async () => {
    const hosts = await startMesh(t, 6, { members: true })
    const [w, ...peers] = hosts
    assert.deepEqual(w.volume.chunks.params(), { k: 4, m: 2 })
    const size = 5 * MiB
    const data = randomBytes(size)
    const fh = await w.volume.open('/alone.bin', 'w')
    // online: the write's parameters (k = 4, m = 2) are fixed by its first early chunk
    for (let at = 0; at < 2 * MiB; at += 128 * 1024) await fh.write(data, at, 128 * 1024, at)
    // every peer stopped (still members: suspects, for the failure timeout)
    await Promise.all(peers.map(async p => { await p.stop() }))
    await until('the writer is offline', () => w.host.peers().length === 0 && w.presence.offline(), 60_000)
    for (let at = 2 * MiB; at < size; at += 128 * 1024) await fh.write(data, at, 128 * 1024, at)
    await fh.sync()
    await fh.close()
    const refs = await chunksOf(w, '/alone.bin')
    assert.equal(refs.length, 5)
    // chunks 1 to 3 were early chunks written offline (the last, 4, is stored at the commit)
    for (const ref of refs.filter(r => r.offset >= CHUNK_SIZE && r.offset < 4 * CHUNK_SIZE)) {
      assert.deepEqual([ref.k, ref.m], [4, 2])
      for (const f of ref.fragments.slice(0, ref.k)) assert.ok(await w.store.has(f), `chunk at ${ref.offset}: data fragment ${f.toString()} is on the writer's disk`)
    }
    // (chunk 0, placed while online, is on its holders: the writer keeps one fragment of it)
    w.volume.chunks.dropCache()
    const back = new Uint8Array(size - CHUNK_SIZE)
    const rh = await w.volume.open('/alone.bin', 'r')
    try {
      for (let at = 0; at < back.byteLength; at += MiB) await rh.read(back, at, MiB, CHUNK_SIZE + at)
    } finally { await rh.close() }
    assert.ok(Buffer.from(back).equals(data.subarray(CHUNK_SIZE)), 'the writer reads what it wrote offline back from its own disk')
  })
})
