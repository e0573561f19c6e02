// Member messages spread by sync rounds (node/net/members.ts, member-service.ts) in a real
// cluster: a dozen hosts with --max-connections 3 and the pull threshold lowered to every size
// (DaemonOptions.memberPullMembers; the daemon's default, 256 members, keeps every other cluster
// test on gossip). Once every host knows its members, a fresh record, a stopped host's DOWN
// notice (signed by a neighbour) and a leaving host's own DOWN notice each reach every host's
// table by pushes and sync rounds, none of them on gossip.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { FEATURE_MEMBER_PULL, MEMBERS_GOSSIP_TAG } from '../../node/net/index.ts'

const HOSTS = 12
const BOUND = 3
const FAILURE_TIMEOUT_MS = 2_000

describe(`member pull mode (${HOSTS} hosts, --max-connections ${BOUND})`, function () {
  this.timeout(600_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  /** Member messages each host published on gossip, from `mark` on. */
  const onGossip: string[] = []
  let mark = false
  after(async () => { await t.run() })

  before(async () => {
    hosts = await startCluster(t, HOSTS, { daemon: { maxConnections: BOUND, memberPullMembers: 1, keep: { failureTimeoutMs: FAILURE_TIMEOUT_MS } } })
    for (const h of hosts) {
      const publish = h.host.gossip.publish.bind(h.host.gossip)
      h.host.gossip.publish = async (data: Uint8Array) => {
        if (mark && data[0] === MEMBERS_GOSSIP_TAG) onGossip.push(h.name)
        return await publish(data)
      }
    }
    // every test starts from a settled cluster (each may run alone)
    const settled = (h: ClusterHost): boolean => JSON.stringify(table(h)) === JSON.stringify(ids()) && h.host.beyondFullMesh() && h.features.supportedByAll(FEATURE_MEMBER_PULL)
    await until('every host with every member, beyond the full mesh, every member taking sync rounds', () => live().every(settled), 240_000).catch(lagging(settled))
    mark = true
  })

  /**
   * Pushes taken over the live hosts, after checking none was refused or dropped (every host
   * pushes only what it signed, far within its budget), and no call refused over its asker's
   * budget (every host asks by the rules: member-gate.ts).
   */
  const pushesTaken = (): number => {
    let taken = 0
    for (const h of live()) {
      const p = h.memberService.pushes()
      assert.equal(p.refused, 0, `${h.name}: pushes refused`)
      assert.equal(p.dropped, 0, `${h.name}: pushes dropped`)
      assert.equal(h.memberService.calls().refused, 0, `${h.name}: calls refused over their askers' budgets`)
      taken += p.taken
    }
    return taken
  }

  const live = (): ClusterHost[] => hosts.filter(h => !h.stopped)
  const ids = (): string[] => live().map(h => h.host.peerId).sort()
  const table = (h: ClusterHost): string[] => h.members.members().sort()
  const lagging = (ok: (h: ClusterHost) => boolean, more: () => string = () => '') => (err: Error): never => {
    // each lagging host's connections by name: a set of them connected only among themselves
    // (an island of the overlay at --max-connections 3) shows as such
    const name = (id: string): string => hosts.find(h => h.host.peerId === id)?.name ?? id
    throw new Error(`${err.message}: not yet ${live().filter(h => !ok(h)).map(h => `${h.name} (${h.host.peers().length} peers: ${h.host.peers().map(p => name(p.id)).join(' ')}; ${table(h).length} members)`).join('; ')}${more()}`)
  }

  it('a fresh record, pushed to its author\'s connections, reaches every table, not on gossip', async () => {
    const author = hosts[5]
    const taken0 = pushesTaken()
    const msg = await author.members.signOwn(author.host.addresses())
    assert.ok(msg !== undefined)
    const seq = author.members.record(author.host.peerId)!.seq
    // pushed to its connections, not published on gossip
    assert.deepEqual(await author.memberService.publish(msg), [])
    // this record or a newer one of its author's: the author signs a newer record at once when a
    // neighbour declared it down (a probe failed on a loaded machine: the failure timeout is 2 s
    // here), and that one replaces this one on every table, so with `=== seq` the wait could
    // never end
    const took = (h: ClusterHost): boolean => (h.members.record(author.host.peerId)?.seq ?? -1) >= seq
    const seqs = (): string => `; the author's record on each host, ms past the fresh one's seq: ${live().map(h => `${h.name} ${(h.members.record(author.host.peerId)?.seq ?? -Infinity) - seq}`).join(', ')}; pushes (taken, refused, dropped) and calls refused on each host: ${live().map(h => { const p = h.memberService.pushes(); return `${h.name} ${p.taken}/${p.refused}/${p.dropped}/${h.memberService.calls().refused}` }).join(', ')}`
    await until('every host took the fresh record', () => live().every(took), 240_000).catch(lagging(took, seqs))
    assert.deepEqual(onGossip, [], 'no member message on gossip')
    assert.ok(pushesTaken() > taken0, 'its connections took the push')
  })

  it('a stopped host: its neighbour\'s DOWN notice reaches every host\'s table, not on gossip', async () => {
    const victim = hosts[HOSTS - 3]
    await victim.stop()
    const dropped = (h: ClusterHost): boolean => !h.members.has(victim.host.peerId)
    await until('every host took the stopped host out', () => live().every(dropped), 240_000).catch(lagging(dropped))
    for (const h of live()) assert.deepEqual(table(h), ids(), `${h.name}: the others stay members`)
    assert.deepEqual(onGossip, [], 'no member message on gossip')
  })

  it('a leaving host: its own DOWN notice, pushed as it leaves, reaches every host\'s table, not on gossip', async () => {
    const leaver = hosts[HOSTS - 1]
    const taken0 = pushesTaken()
    await leaver.keep.membership.announceLeave()
    await leaver.stop()
    const dropped = (h: ClusterHost): boolean => !h.members.has(leaver.host.peerId)
    await until('every host took the leaving host out', () => live().every(dropped), 240_000).catch(lagging(dropped))
    for (const h of live()) assert.deepEqual(table(h), ids(), `${h.name}: the others stay members`)
    assert.deepEqual(onGossip, [], 'no member message on gossip')
    assert.ok(pushesTaken() > taken0, 'its connections took its DOWN as a push')
  })
})
