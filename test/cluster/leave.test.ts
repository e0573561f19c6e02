import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../helpers/tmp.ts'
import { startCluster, until } from '../helpers/cluster.ts'

const keep = { failureTimeoutMs: 60_000, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

describe('keep.leave() (6 in-process hosts, k=4 m=2)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('drains the host: no chunk drops below full redundancy, and none needs it afterwards', async () => {
    const hosts = await startCluster(t, 6, { daemon: { keep } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
    const data = randomBytes((4 << 20) + 3)
    await hosts[0].volume.replaceFile('/l.bin', [data], { wait: 'safe' })
    await until('all redundant', async () => {
      const s = await hosts[0].keep.status()
      return s.total === 5 && s.redundant === 5
    }, 30_000)
    const leaver = hosts[5]
    let draining = true
    const samples: Array<{ redundant: number, total: number }> = []
    const watch = (async () => {
      while (draining) {
        samples.push(await hosts[0].keep.status())
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    })()
    await leaver.keep.leave()
    draining = false
    await watch
    await leaver.keep.left
    assert.ok(samples.length > 0)
    for (const s of samples) assert.equal(s.redundant, s.total, `during the drain: ${JSON.stringify(s)}`)
    await until('peers drop the leaver from membership', () => !hosts[0].keep.membership.members().includes(leaver.host.peerId))
    await leaver.stop()
    const after = await hosts[0].keep.status()
    assert.equal(after.redundant, after.total)
    hosts[1].volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await hosts[1].volume.readFile('/l.bin')), data)
  })
})
