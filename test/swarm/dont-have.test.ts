import assert from 'node:assert/strict'
import { BlockNotFoundError } from '../../swarm/index.ts'
import { Net, block, randomBytes } from './net.ts'
import { until } from '../../harness/cluster.ts'

describe('swarm: DONT_HAVE behind queued blocks', function () {
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  it('swarm.pull(cid, [holder]) of a block the holder lacks fails before the blocks queued ahead of it are sent', async () => {
    // the holder's upload cap makes its four blocks take about a second each
    const BLOCK_BYTES = 256 * 1024
    const holder = await net.node({ maxUploadBytesPerSecond: BLOCK_BYTES })
    const reader = await net.node()
    await net.mesh()
    const cids = []
    for (let i = 0; i < 4; i++) {
      const bytes = randomBytes(BLOCK_BYTES, 100 + i)
      const cid = await block(bytes)
      holder.store.map.set(cid.toString(), bytes)
      cids.push(cid)
    }
    let bulkDone = false
    const bulk = reader.swarm.pullAny(cids, cids.length, [holder.id]).finally(() => { bulkDone = true })
    await until('the wants are queued at the holder', () => holder.swarm.stats().wantsQueued > 0)
    const missing = await block(randomBytes(100, 5))
    await assert.rejects(reader.swarm.pull(missing, [holder.id]), (err: Error) => err.name === BlockNotFoundError.name)
    assert.equal(bulkDone, false, 'the DONT_HAVE waited for every queued block')
    const got = await bulk
    assert.equal(got.size, cids.length)
  })

  it('swarm.pullAny(cids, need, from, { background: true }): a holder may refuse a background want and still serve a read of the same block', async () => {
    const holder = await net.node()
    const reader = await net.node()
    await net.mesh()
    const bytes = randomBytes(64 * 1024, 7)
    const cid = await block(bytes)
    holder.store.map.set(cid.toString(), bytes)
    const asked: Array<boolean | undefined> = []
    // the holder refuses background wants (as a thin writer does for what it is still placing)
    ;(holder.store as any).has = async (c: typeof cid, _peer?: string, o?: { background?: boolean }) => {
      asked.push(o?.background)
      return o?.background !== true && holder.store.map.has(c.toString())
    }
    await assert.rejects(reader.swarm.pullAny([cid], 1, [holder.id], { background: true }), (err: Error) => err.name === BlockNotFoundError.name)
    assert.ok(asked.includes(true), 'the holder saw a background want')
    const got = await reader.swarm.pullAny([cid], 1, [holder.id])
    assert.deepEqual(got.get(cid.toString()), bytes)
  })
})
