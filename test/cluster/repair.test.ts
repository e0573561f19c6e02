import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, startMesh, until } from '../../harness/cluster.ts'
import { retained } from '../../node/keeper/index.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { Story } from '../../harness/story.ts'

// Background passes off (interval 0): repair runs when a member is declared gone, or on heal.
const keep = { failureTimeoutMs: 1000, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

describe('keep.repairer (6 in-process hosts, k=4 m=2)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  const files = new Map<string, Buffer>()
  // the tests are the stages of one story (hosts stop, repair follows): each runs the ones before it
  const story = new Story()

  before(async () => {
    hosts = await startMesh(t, 6, { daemon: { keep } })
    for (const [i, size] of [[0, 3 << 20], [1, (2 << 20) + 7], [2, 1 << 20]] as const) {
      const data = randomBytes(size)
      files.set(`/r${i}.bin`, data)
      await hosts[i].volume.replaceFile(`/r${i}.bin`, [data], { wait: 'safe' })
    }
    await until('h0 sees every file', async () => {
      try { for (const p of files.keys()) await hosts[0].volume.stat(p); return true } catch { return false }
    })
  })
  after(async () => { await t.run() })

  it('keep.status() counts every chunk redundant once placed, whoever wrote it', story.step(async () => {
    await until('all redundant', async () => {
      const s = await hosts[0].keep.status()
      return s.total === 7 && s.redundant === 7
    }, 30_000)
  }))

  it('after two hosts stop: degraded, then repaired back to redundant', story.step(async () => {
    await hosts[4].stop()
    await hosts[5].stop()
    await until('the survivors notice', () => hosts[0].host.peers().length === 3)
    const s = await hosts[0].keep.status()
    assert.equal(s.lost, 0)
    assert.ok(s.degraded > 0, `some chunk lost fragments: ${JSON.stringify(s)}`)
    await until('repair brings every chunk back to redundant', async () => {
      const now = await hosts[0].keep.status()
      return now.redundant === now.total
    }, 60_000)
  }))

  it('manifests are repaired too: each is back on redundancy + 1 = 3 live hosts', story.step(async () => {
    const { manifests } = await retained(hosts[0].volume, 3600_000)
    assert.equal(manifests.size, files.size)
    await until('every manifest on 3 live hosts', async () => {
      for (const cid of manifests.values()) {
        let holders = 0
        for (const h of hosts.slice(0, 4)) if (await h.store.has(cid)) holders++
        if (holders < 3) return false
      }
      return true
    }, 30_000)
  }))

  it('then two more stop: every file still reads byte-identical', story.step(async () => {
    await hosts[2].stop()
    await hosts[3].stop()
    await until('the survivors notice', () => hosts[0].host.peers().length === 1 && hosts[1].host.peers().length === 1)
    for (const h of [hosts[0], hosts[1]]) {
      h.volume.chunks.dropCache()
      for (const [path, data] of files) {
        assert.deepEqual(Buffer.from(await h.volume.readFile(path)), data, `${path} on ${h.name}`)
      }
    }
  }))
})

describe('keep.heal() (5 in-process hosts, failure timeout 10 minutes)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('heal on one host: every peer drops the dead suspects at once, and every chunk is redundant after it', async () => {
    const hosts = await startCluster(t, 5, { daemon: { keep: { ...keep, failureTimeoutMs: 600_000 } } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
    const data = randomBytes((2 << 20) + 11)
    await hosts[0].volume.replaceFile('/h.bin', [data], { wait: 'safe' })
    await until('all redundant', async () => { const s = await hosts[1].keep.status(); return s.total === 3 && s.redundant === 3 }, 30_000)
    const dead = hosts[4].host.peerId
    await hosts[4].stop()
    await until('the survivors notice', () => hosts.slice(0, 4).every(h => h.host.peers().length === 3))
    // still suspects (10 minute timeout): members everywhere
    for (const h of hosts.slice(0, 4)) assert.ok(h.keep.membership.members().includes(dead))
    const r = await hosts[1].keep.heal()
    assert.deepEqual(r.remaining, { total: 3, redundant: 3, degraded: 0, localOnly: 0, lost: 0, unreachable: 0 })
    assert.ok(r.fragmentsRepaired > 0)
    await until('every survivor dropped the dead host', () => hosts.slice(0, 4).every(h => !h.keep.membership.members().includes(dead)), 5_000)
    const s = await hosts[0].keep.status()
    assert.equal(s.redundant, s.total)
    hosts[2].volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await hosts[2].volume.readFile('/h.bin')), data)
  })
})
