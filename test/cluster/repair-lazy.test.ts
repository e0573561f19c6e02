import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, startHost, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { Story } from '../../harness/story.ts'

// Lazy repair (keeper/lazy.ts; --repair-delay, net/failure.ts repairDelay()), in real hosts: a host
// declared gone is away for the repair delay, and its chunks wait for it while they keep k + 1 live
// fragments; once the delay lapses it is rebuilt for. 7 hosts, k = 4, m = 2:
// every fragment on its own host. Background passes off (interval 0): passes come when a host
// is declared gone, joins again or lapses, and when the test asks.
const REPAIR_DELAY_MS = 30_000
const keep = { failureTimeoutMs: 1000, repairDelayMs: REPAIR_DELAY_MS, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0, repairBytesPerSecond: 1 << 30 }
const FILES = 3
const FILE_BYTES = 2 << 20

const repaired = (hs: ClusterHost[]): number => hs.reduce((a, h) => { const t = h.keep.repairer.totals(); return a + t.fragmentsRepaired + t.bytesFetched + t.bytesPushed }, 0)

describe('lazy repair (7 in-process hosts, k=4 m=2, repair delay 30 s)', function () {
  this.timeout(300_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  const files = new Map<string, Buffer>()
  const story = new Story()

  before(async () => {
    hosts = await startCluster(t, 7, { daemon: { keep } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === 6), 60_000)
    for (let i = 0; i < FILES; i++) {
      const data = randomBytes(FILE_BYTES)
      files.set(`/z${i}.bin`, data)
      await hosts[i].volume.replaceFile(`/z${i}.bin`, [data], { wait: 'safe' })
    }
    await until('every chunk redundant', async () => {
      await Promise.all(hosts.map(async h => await h.keep.repairer.pass()))
      const s = await hosts[0].keep.status()
      return s.total > 0 && s.redundant === s.total
    }, 120_000)
  })
  after(async () => { await t.run() })

  it('a host gone briefly (declared gone, back within the repair delay) costs no repair', story.step(async () => {
    const away = hosts[6]
    const survivors = hosts.slice(0, 6)
    const lapsed: string[] = []
    for (const h of survivors) h.keep.membership.addEventListener('lapsed', e => { lapsed.push((e as CustomEvent<string>).detail) })
    const base = repaired(survivors)
    await away.stop()
    await until('every survivor declared it gone: away, no longer a member', () => survivors.every(h =>
      !h.keep.membership.members().includes(away.host.peerId) && h.keep.membership.away().includes(away.host.peerId)), 30_000)
    // the passes its declaration started, and one more each: nothing rebuilt, fetched or pushed
    const passes = await Promise.all(survivors.map(async h => await h.keep.repairer.pass()))
    for (const p of passes) assert.equal(p.fragmentsRepaired + p.bytesFetched + p.bytesPushed + p.failed, 0, JSON.stringify(p))
    const s = await survivors[0].keep.status()
    assert.equal(s.lost, 0)
    assert.ok(s.degraded > 0, `its chunks wait for it: ${JSON.stringify(s)}`)
    // back with its disk, under the same peer id
    const back = await startHost(t, away.dir, `${away.name}-back`, [hosts[0].address], { daemon: { keep } })
    hosts[6] = back
    await until('every host knows every other again', () => hosts.every(h => h.host.peers().length === 6), 60_000)
    assert.deepEqual(lapsed, [], 'it came back within the repair delay (else this test says nothing)')
    await until('every chunk redundant', async () => {
      await Promise.all(hosts.map(async h => await h.keep.repairer.pass()))
      const now = await hosts[0].keep.status()
      return now.redundant === now.total
    }, 60_000)
    assert.equal(repaired(survivors), base, 'nothing was repaired for a host that came back')
  }))

  it('a host gone for good is rebuilt for once its repair delay lapses, before a second and third loss would lose data', story.step(async () => {
    const victim = hosts[6]
    const survivors = hosts.slice(0, 6)
    const base = repaired(survivors)
    await victim.stop()
    await until('every survivor declared it gone', () => survivors.every(h => h.keep.membership.away().includes(victim.host.peerId)), 30_000)
    await until('its repair delay lapsed on every survivor', () => survivors.every(h => !h.keep.membership.away().includes(victim.host.peerId)), REPAIR_DELAY_MS + 30_000)
    await until('every chunk redundant again on the 6 left', async () => {
      const ps = await Promise.all(survivors.map(async h => await h.keep.repairer.pass()))
      const s = await survivors[0].keep.status()
      return s.redundant === s.total && ps.every(p => p.fragmentsRepaired === 0)
    }, 120_000)
    assert.ok(repaired(survivors) > base, 'its fragments were rebuilt')
    // two more go at once (before any repair delay): each chunk keeps k of its 6 fragments
    await hosts[5].stop()
    await hosts[4].stop()
    const left = hosts.slice(0, 4)
    await until('the survivors notice', () => left.every(h => h.host.peers().length === 3), 30_000)
    for (const h of left) {
      h.volume.chunks.dropCache()
      for (const [path, data] of files) assert.deepEqual(Buffer.from(await h.volume.readFile(path)), data, `${path} on ${h.name}`)
    }
  }))
})
