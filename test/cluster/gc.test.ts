import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster } from '../../harness/cluster.ts'

const RETENTION_MS = 300
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('keep.collector (garbage collection)', function () {
  this.timeout(60_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('collect() removes blocks of versions past retention, keeps current ones and uncommitted writes', async () => {
    const [h] = await startCluster(t, 1, { daemon: { keep: { retentionMs: RETENTION_MS, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 } } })
    const v1 = randomBytes(2 << 20)
    const v2 = randomBytes((1 << 20) + 5)
    await h.volume.replaceFile('/a', [v1])
    const before = (await h.store.usage()).blocks
    await h.volume.replaceFile('/a', [v2])
    // v1 is in history within retention: nothing goes
    assert.equal((await h.keep.collector.collect()).removed.length, 0)
    await sleep(RETENTION_MS + 100)
    const first = await h.keep.collector.collect()
    assert.equal(first.removed.length, 0, 'first seen unreferenced: only marked')
    assert.ok(first.unreferenced >= 3, `v1's two chunks and manifest are unreferenced: ${JSON.stringify(first)}`)
    // an uncommitted write lands now: fresh, so the next round must keep it
    const inflight = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
    await sleep(RETENTION_MS + 100)
    const second = await h.keep.collector.collect()
    assert.equal(second.removed.length, first.unreferenced)
    assert.ok(await h.store.has(inflight.ref.cid!), 'the uncommitted chunk is kept')
    assert.ok((await h.store.usage()).blocks < before + 3)
    h.volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await h.volume.readFile('/a')), v2)
  })
})
