import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { retained } from '../../node/keeper/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'

/** Whether any `lost` of the running hosts may vanish and every chunk still has k distinct fragments held. */
async function survives (hosts: ClusterHost[], refs: ChunkRef[], lost: number): Promise<boolean> {
  const up = hosts.filter(h => !h.stopped)
  for (const ref of refs) {
    const held = await Promise.all(up.map(async h => new Set((await Promise.all(ref.fragments.map(async f => await h.store.has(f) ? f.toString() : ''))).filter(x => x !== ''))))
    const pick = (from: number, gone: number[]): boolean => {
      if (gone.length === lost) return new Set(held.filter((_, i) => !gone.includes(i)).flatMap(s => [...s])).size >= ref.k
      for (let i = from; i < up.length; i++) if (!pick(i + 1, [...gone, i])) return false
      return true
    }
    if (!pick(0, [])) return false
  }
  return true
}

const keep = { failureTimeoutMs: 60_000, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

describe('keep.leave() (6 in-process hosts, k=4 m=2)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('drains the host: no chunk drops below full redundancy, and none needs it afterwards', async () => {
    const hosts = await startMesh(t, 6, { daemon: { keep } })
    const data = randomBytes((4 << 20) + 3)
    await hosts[0].volume.replaceFile('/l.bin', [data], { wait: 'safe' })
    await until('all redundant', async () => {
      const s = await hosts[0].keep.status()
      return s.total === 5 && s.redundant === 5
    }, 30_000)
    const leaver = hosts[5]
    const refs = [...(await retained(hosts[0].volume, 3600_000)).chunks.values()]
    // During the drain the other hosts plan without the leaver (their status reads degraded
    // until the copies land), so watch the stores themselves: any two hosts may vanish.
    let draining = true
    const samples: boolean[] = []
    const watch = (async () => {
      while (draining) {
        samples.push(await survives(hosts, refs, 2))
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    })()
    await leaver.keep.leave()
    draining = false
    await watch
    await leaver.keep.left
    assert.ok(samples.length > 0)
    assert.ok(samples.every(ok => ok), `some chunk could not survive two more losses during the drain (${samples.filter(ok => !ok).length}/${samples.length} samples)`)
    await until('peers drop the leaver from membership', () => !hosts[0].keep.membership.members().includes(leaver.host.peerId))
    await leaver.stop()
    const after = await hosts[0].keep.status()
    assert.equal(after.redundant, after.total)
    hosts[1].volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await hosts[1].volume.readFile('/l.bin')), data)
  })
})
