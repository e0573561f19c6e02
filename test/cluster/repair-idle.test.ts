import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { Story } from '../../harness/story.ts'

// Background passes every 200 ms (instead of a minute), so that "no pass while nothing changes"
// shows over many timer rounds.
const keep = { failureTimeoutMs: 1000, repairIntervalMs: 200, scrubIntervalMs: 0, gcIntervalMs: 0 }

/** Count a host's repair passes and the timer rounds that ran none. */
function counter (h: ClusterHost): { passes: number, skips: number } {
  const c = { passes: 0, skips: 0 }
  h.keep.repairer.addEventListener('pass', () => { c.passes++ })
  h.keep.repairer.addEventListener('skip', () => { c.skips++ })
  return c
}

describe('keep.repairer on an idle network (4 in-process hosts)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  let counts: Array<{ passes: number, skips: number }>
  const story = new Story()

  before(async () => {
    hosts = await startCluster(t, 4, { daemon: { keep } })
    counts = hosts.map(counter)
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
    await hosts[0].volume.replaceFile('/a.bin', [randomBytes((2 << 20) + 5)], { wait: 'safe' })
    await until('every host sees the file', async () => {
      try { for (const h of hosts) await h.volume.stat('/a.bin'); return true } catch { return false }
    })
  })
  after(async () => { await t.run() })

  /** Wait until every host's repairer has settled (its last pass found nothing to do). */
  const settled = async (hs: ClusterHost[]): Promise<void> => {
    await until('every repairer is idle', () => hs.every(h => h.keep.repairer.idle()), 60_000)
  }

  it('once every chunk is redundant, the timer runs no pass while nothing changes', story.step(async () => {
    await settled(hosts)
    const before = counts.map(c => ({ ...c }))
    await until('ten timer rounds on every host', () => counts.every((c, i) => c.skips >= before[i].skips + 10), 30_000)
    assert.deepEqual(counts.map(c => c.passes), before.map(c => c.passes), 'no host ran a pass')
    const s = await hosts[1].keep.status()
    assert.equal(s.redundant, s.total)
  }))

  it('a new file (a tree op) brings a pass on every host, then they settle again', story.step(async () => {
    const before = counts.map(c => c.passes)
    await hosts[2].volume.replaceFile('/b.bin', [randomBytes(3 << 20)], { wait: 'safe' })
    await until('a pass on every host', () => counts.every((c, i) => c.passes > before[i]), 30_000)
    await settled(hosts)
  }))

  it('a member that is gone brings a pass that repairs its fragments, then the survivors settle', story.step(async () => {
    const survivors = hosts.slice(0, 3)
    await hosts[3].stop()
    await until('every chunk is redundant on the survivors', async () => {
      const s = await hosts[0].keep.status()
      return s.total > 0 && s.redundant === s.total
    }, 60_000)
    await settled(survivors)
    const before = counts.map(c => ({ ...c }))
    await until('ten more timer rounds', () => survivors.every((_, i) => counts[i].skips >= before[i].skips + 10), 30_000)
    assert.deepEqual(counts.slice(0, 3).map(c => c.passes), before.slice(0, 3).map(c => c.passes))
  }))
})
