// An open file's early chunk is placed from memory (deferred, early-chunks.ts); an fsync waits for
// that placement at most DEFERRED_PLACE_WAIT_MS, then stores the chunk's data fragments on the
// writer while the placement goes on (ChunkWrite.storeUnplaced). When that placement then
// placed the chunk, the data fragments stored late stayed on the writer (its end had found none of
// them there) until a repair pass handed them over. The placement that outlived the wait hands
// them over now (ChunkNetwork.handOverLate), as any placement hands over the writer's copies.
// Six in-process hosts, k = 4, m = 2; the writer's pushes are held until the test lets them go.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ChunkRef } from '../../node/data/index.ts'

describe('cluster: a deferred chunk stored on the writer late, then placed, is handed over by its placement (six in-process hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('its data fragments stored on the writer past the wait leave it once the placement is over, each on its target (fails before: kept on the writer)', async () => {
    const hosts = await startMesh(t, 6, { members: true })
    const [w] = hosts
    assert.deepEqual(w.volume.chunks.params(), { k: 4, m: 2 })
    const gate = Promise.withResolvers<void>()
    const swarm = (w.network as unknown as { swarm: { push: (...args: unknown[]) => Promise<unknown> } }).swarm
    const push = swarm.push.bind(swarm)
    swarm.push = async (...args: unknown[]) => { await gate.promise; return await push(...args) }
    try {
      const fh = await w.volume.open('/late.bin', 'w')
      const piece = 128 * 1024
      const data = randomBytes(9 * piece)
      // past the first chunk: it is stored early, deferred (placed from memory)
      for (let at = 0; at < data.byteLength; at += piece) await fh.write(data, at, piece, at)
      let early: ChunkRef | undefined
      await until('the early chunk is being placed', () => {
        early = [...w.network.pending.values()].find(r => r.k > 1)
        return early !== undefined
      })
      const ref = early!
      const synced = fh.sync()
      synced.catch(() => {}) // awaited below
      // the placement held past the wait: the fsync stores its data fragments here
      await until('its data fragments stored on the writer', async () => (await Promise.all(ref.fragments.slice(0, ref.k).map(async f => await w.store.has(f)))).every(Boolean), 30_000)
      gate.resolve()
      await synced
      await fh.close()
      await until('every chunk of the writer placed', () => w.network.pending.size === 0, 60_000)
      const self = w.host.peerId
      const ranked = w.policy.rank(ref, w.policy.members(), ref.k + ref.m)
      const byId = new Map(hosts.map(h => [h.host.peerId, h]))
      for (let j = 0; j < ref.k; j++) {
        const target = byId.get(ranked[j])!
        assert.equal(await target.store.has(ref.fragments[j]), true, `f${j} on its target`)
      }
      const notMine = ref.fragments.slice(0, ref.k).filter((_, j) => ranked[j] !== self)
      assert.ok(notMine.length >= ref.k - 1)
      await until('the writer\'s late copies handed over', async () => (await Promise.all(notMine.map(async f => await w.store.has(f)))).every(h => !h), 30_000)
      // the one the writer is a target of (if any) stays
      for (let j = 0; j < ref.k; j++) if (ranked[j] === self) assert.equal(await w.store.has(ref.fragments[j]), true, `f${j}, the writer's own, stays`)
    } finally {
      gate.resolve()
    }
  })
})
