// Status without surveys beyond the full mesh (issue 14 item 5): the keeper counts are summed
// along a tree there (keeper/kept-tree.ts) and the root's totals go on gossip only when they
// move, so a host that joins an idle network is served the root's totals (keeper/kept-service.ts,
// after the member table), and the totals count it once its sum reached the root: every member,
// not only the few it connects to. Real hosts (in one process), --max-connections 3: more than
// a joiner meets while it joins (its DHT self-query and routing table dial up to 20 members, and
// each tells it its counts on connect; in a 12-host network it met every host). The tree is
// decided on the member table's size (kept.ts keptTreeMode): above 16 members here, not 64.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, startHost, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { init } from '../../node/cli/index.ts'
import { loadOrCreateIdentity } from '../../node/net/index.ts'
import { KEPT_RESEND_INTERVALS, keptIntervalOf, keptRoot } from '../../node/keeper/index.ts'

const HOSTS = 28
const BOUND = 3
const daemon = { maxConnections: BOUND, keptTreeMembers: 16, keep: { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 } }

/**
 * How long the totals may take to count every one of `members` by the tree's schedule (kept.ts):
 * sums up at most every up interval (one not taken sent again, backing off to
 * KEPT_RESEND_INTERVALS of them), the root's totals at most every root interval; that backoff
 * and four root intervals, beyond the 60 s a loaded run may need for the hops and gossip.
 */
const schedule = (members: number): number => KEPT_RESEND_INTERVALS * keptIntervalOf(members, 'up') + 4 * keptIntervalOf(members, 'root') + 60_000

describe(`keeper counts: a joiner of an idle network beyond the full mesh counts every member (${HOSTS} hosts and a joiner, --max-connections ${BOUND})`, function () {
  this.timeout(300_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  after(async () => { await t.run() })

  before(async () => {
    hosts = await startCluster(t, HOSTS, { daemon })
    await until('every host beyond the full mesh', () => hosts.every(h => h.host.beyondFullMesh()), 120_000)
  })

  it('every host counts every member, those that joined last too (the root\'s totals, summed along the tree)', async () => {
    // the totals follow the tree's schedule (kept.ts): sums up at most every up interval (a sum
    // not taken while views of the hosts up still differ: again after it, backing off to
    // KEPT_RESEND_INTERVALS of them), the root's totals at most every root interval. The bound:
    // schedule(), beyond the 60 s a quiet run needs
    await until('every host\'s totals count every member', () =>
      hosts.every(h => { const n = h.kept.totals(); return n.members === HOSTS && n.reporting === HOSTS }), schedule(HOSTS))
      .catch((err: Error) => {
        throw new Error(`${err.message}: ${hosts.map(h => `${h.name} ${h.kept.totals().reporting}/${h.kept.totals().members} from ${h.kept.held().map(r => r.peer.slice(-6)).join(',')}`).join('; ')}`)
      })
  })

  it('the joiner\'s totals count every member, from the root\'s totals (summed along the tree beyond the full mesh)', async () => {
    // the hosts the joiner ever connects to
    const met = new Set<string>()
    const joinerId: { id?: string } = {}
    for (const h of hosts) {
      const onConnect = (e: CustomEvent<string>): void => { if (e.detail === joinerId.id) met.add(h.host.peerId) }
      h.host.addEventListener('peer:connect', onConnect)
      t.add(async () => { h.host.removeEventListener('peer:connect', onConnect) })
    }
    const dir = join(hosts[0].dir, '..', 'joiner')
    await init(dir, { networkKey: join(hosts[0].dir, 'network.key') })
    joinerId.id = peerIdFromPrivateKey(await loadOrCreateIdentity(dir)).toString()
    const joiner = await startHost(t, dir, `kept-joiner-${Date.now()}`, [hosts[0].address], { daemon })
    const describe = (): string => {
      const n = joiner.kept.totals()
      return `${n.reporting}/${n.members} reporting; connected to ${joiner.host.peers().length}, ever to ${met.size}; totals held: ${joiner.kept.held().map(h => h.peer).join(', ')}`
    }
    // the joiner's sum goes up the tree (its parent may take it only once the joiner is a member
    // there: sent again, backing off) and the root publishes new totals once the sums the join
    // set off climbed the tree (keptRootSettleMs, 6 s here), or a root interval after its last
    // totals (17 s here) if later: a quiet run takes one of those; the bound is schedule()
    await until('the joiner\'s totals count every member', () => {
      const n = joiner.kept.totals()
      return n.members === HOSTS + 1 && n.reporting === HOSTS + 1
    }, schedule(HOSTS + 1)).catch((err: Error) => { throw new Error(`${err.message}: ${describe()}`) })
    // the joiner keeps few connections, but meets most hosts while it joins (its DHT queries):
    // on the code before the table was served it met 27 of the 28 within 30 s and counted 28 of
    // 29 members. Whether it met each is not asserted (under load it may meet them all first)
    assert.ok(joiner.host.beyondFullMesh(), describe())
    // beyond the full mesh the counts are summed along a tree (keeper/kept-tree.ts): the joiner
    // holds the root's totals, the root of its own view
    // (the joiner may be the root itself, the smallest id: it sums the counts itself and holds
    // its own totals once it published them, keptRootSettleMs after its view last changed)
    await until('the joiner holds the root\'s totals', () => {
      const held = joiner.kept.held().map(h => h.peer)
      return held.length === 1 && held[0] === keptRoot(joiner.keep.membership.up())
    }, schedule(HOSTS + 1)).catch((err: Error) => { throw new Error(`${err.message}: ${describe()}`) })
    assert.equal(joiner.kept.refused, 0)
    assert.equal(joiner.kept.totals().chunks.total, 0)
    console.log(`      joiner: ${describe()}`)
  })
})
