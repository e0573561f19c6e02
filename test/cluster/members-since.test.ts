// A host that restarts keeps when it first took each member (node/net/members-since.ts, the
// daemon's members-since file in its data dir): a member's standing there, the depth of the
// shared call budget's reserve its calls may take under a flood (member-gate.ts), does not start
// again with the restart (it did: the table pulled afresh took every member as new).
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, startHost, until } from '../../harness/cluster.ts'

describe('member first-taken times across a daemon restart (3 hosts)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('the restarted host\'s table, filled again, has each member since when it first took it before the restart', async () => {
    const hosts = await startCluster(t, 3)
    const [a, b, c] = hosts
    const others = [a.host.peerId, b.host.peerId]
    await until('c has a and b in its table', () => others.every(p => c.members.memberSince(p) !== undefined), 60_000)
    const before = others.map(p => c.members.memberSince(p))
    await c.stop()
    const again = await startHost(t, c.dir, `${c.name}-again`, [a.address])
    await until('the restarted c has a and b in its table again', () => others.every(p => again.members.memberSince(p) !== undefined), 60_000)
    assert.deepEqual(others.map(p => again.members.memberSince(p)), before)
  })
})
