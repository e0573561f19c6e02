// A writer whose disk is full, with an early (deferred) chunk of an open file under way
// (data/blocks.ts storeUnplaced): its late store fails, and so does the placement's own fragment
// (the writer is one of the six targets, on the same disk), so the placement as a whole never
// succeeds; the fsync is durable once the chunk survives one lost host on its peers (five of six
// fragments), not failed with ENOSPC after waiting out the placement (review44a, mend44a).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { FsError } from '../../node/errors.ts'

describe('a full writer that is a target of its own deferred chunk (six in-process hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('the fsync returns once the chunk is on five of six targets (fails before: ENOSPC after waiting out the placement)', async () => {
    const hosts = await startMesh(t, 6, { members: true })
    const [w] = hosts
    const gate = Promise.withResolvers<void>()
    const swarm = (w.network as unknown as { swarm: { push: (...args: unknown[]) => Promise<unknown> } }).swarm
    const push = swarm.push.bind(swarm)
    swarm.push = async (...args: unknown[]) => { await gate.promise; return await push(...args) }
    // the writer's disk refuses fragment-sized blocks (the op log's small ones still go)
    const putMany = w.store.putMany.bind(w.store)
    let refused = 0
    w.store.putMany = async (blocks, opts) => {
      if (blocks.some(b => b.bytes.byteLength >= 64 * 1024)) { refused++; throw new FsError('ENOSPC', 'put', undefined, 'the block store is full (test)') }
      await putMany(blocks, opts)
    }
    try {
      const fh = await w.volume.open('/full.bin', 'w')
      const piece = 128 * 1024
      const data = randomBytes(9 * piece)
      for (let at = 0; at < data.byteLength; at += piece) await fh.write(data, at, piece, at)
      let early: ChunkRef | undefined
      await until('the early chunk is being placed', () => {
        early = [...w.network.pending.values()].find(r => r.k > 1)
        return early !== undefined
      })
      const ref = early!
      const synced = fh.sync().then(() => 'synced', (err: Error) => err)
      await until('the placement\'s own fragment and the late store refused', () => refused >= 2, 30_000)
      gate.resolve()
      const result = await synced
      const held = w.network.heldOf(ref)
      const peersHolding = held === undefined ? [] : held.map(s => [...s].filter(p => p !== w.host.peerId).length)
      assert.equal(result, 'synced', `the fsync: ${result instanceof Error ? result.message : result} (fragments held by peers per index: ${peersHolding.join(' ')})`)
      assert.ok(peersHolding.filter(n => n > 0).length >= ref.k + 1, `on ${peersHolding.join(' ')}: survives one lost host`)
    } finally {
      gate.resolve()
      w.store.putMany = putMany
    }
  })
})
