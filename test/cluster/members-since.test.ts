// A host that restarts keeps how long each member has been one there (node/net/members-since.ts,
// the daemon's members-since file in its data dir, ages on the monotonic clock): a member's standing there, the depth of the
// shared call budget's reserve its calls may take under a flood (member-gate.ts), does not start
// again with the restart (it did: the table pulled afresh took every member as new).
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, startHost, until } from '../../harness/cluster.ts'

describe('member standings across a daemon restart (3 hosts)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('the restarted host\'s table, filled again, has each member standing at least as long as before the restart, and not for the time it was down', async () => {
    const hosts = await startCluster(t, 3)
    const [a, b, c] = hosts
    const others = [a.host.peerId, b.host.peerId]
    await until('c has a and b in its table', () => others.every(p => c.members.memberFor(p) !== undefined), 60_000)
    const t0 = performance.now()
    const before = others.map(p => c.members.memberFor(p) as number)
    await c.stop()
    const again = await startHost(t, c.dir, `${c.name}-again`, [a.address])
    await until('the restarted c has a and b in its table again', () => others.every(p => again.members.memberFor(p) !== undefined), 60_000)
    const after = others.map(p => again.members.memberFor(p) as number)
    const elapsed = performance.now() - t0
    // kept (the file holds the ages at the stop), and no more than the time since counted
    for (const [i, ms] of after.entries()) assert.ok(ms >= Math.floor(before[i]) && ms <= before[i] + elapsed, `${others[i]}: ${ms} ms after, ${before[i]} before, ${elapsed} ms since`)
  })
})
