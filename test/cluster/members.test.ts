// Issue 14 item 3: every host knows every member, connected or not, from the member table
// (node/net/members.ts: records signed by their subjects, spread by sync rounds), so with connections
// bounded (--max-connections) placement still ranks the whole network on every host, and a
// connection closed to stay under the bound is no failure: no host is declared gone by a trim.
// A host that stops is given up by its XOR neighbours, whose one DOWN notice takes it out of
// every host's members, those never connected to it included.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

const HOSTS = 8
const BOUND = 3
const FAILURE_TIMEOUT_MS = 2_000

describe(`member table (${HOSTS} hosts, --max-connections ${BOUND})`, function () {
  this.timeout(300_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  /** Every 'gone' each host's membership declared, and when each host first lost a connection. */
  const gone: string[] = []
  const firstDisconnect = new Map<string, number>()
  after(async () => { await t.run() })

  before(async () => {
    hosts = await startCluster(t, HOSTS, { daemon: { maxConnections: BOUND, keep: { failureTimeoutMs: FAILURE_TIMEOUT_MS } } })
    for (const h of hosts) {
      h.keep.membership.addEventListener('gone', e => { gone.push(`${h.name}: ${(e as CustomEvent<string>).detail}`) })
      h.host.addEventListener('peer:disconnect', () => { if (!firstDisconnect.has(h.name)) firstDisconnect.set(h.name, Date.now()) })
    }
  })

  const ids = (): string[] => hosts.filter(h => !h.stopped).map(h => h.host.peerId).sort()
  const members = (h: ClusterHost): string[] => [...h.keep.membership.members()].sort()

  it('every host ranks every member, connected or not; no trimmed connection makes a host gone', async () => {
    // (the bound itself: test/cluster/bounded; here a watcher dials a member it lost the
    // connection to before it gives it up, and the trim closes that connection again)
    // (in its table, not only connected: beyond the full mesh records spread by sync rounds, a
    // round every 15 s, and a member connected now and trimmed later must be in the table)
    await until('every host with every member in its table, the trim under way', () =>
      firstDisconnect.size > 0 && hosts.every(h => JSON.stringify(members(h)) === JSON.stringify(ids()) && ids().every(id => h.members.has(id))), 120_000)
      .catch((err: Error) => { throw new Error(`${err.message}: ${hosts.map(h => `${h.name} ${h.host.peers().length} peers, ${members(h).length} members`).join('; ')}`) })
    assert.ok(hosts.every(h => h.host.beyondFullMesh()), 'every host keeps neighbours, not everyone')
    // beyond the full mesh hosts forward, and decline copies they already have (host.ts GOSSIP_IDONTWANT_MIN_BYTES)
    assert.ok(hosts.every(h => h.host.idontwantMinBytes() === 512), 'IDONTWANT beyond the full mesh')
    // connections were closed (the trim) and the failure timeout has passed since, twice over
    await until('a trim happened, two failure timeouts ago', () =>
      firstDisconnect.size > 0 && Date.now() - Math.min(...firstDisconnect.values()) > 2 * FAILURE_TIMEOUT_MS, 120_000)
    assert.deepEqual(gone, [], 'no member was declared gone')
    for (const h of hosts) assert.deepEqual(members(h), ids(), `${h.name} ranks every member`)
  })

  it('a stopped host is declared down by its neighbours, and leaves every host\'s members', async () => {
    const victim = hosts[HOSTS - 3]
    const strangers = hosts.filter(h => h !== victim && !h.host.peers().some(p => p.id === victim.host.peerId))
    await victim.stop()
    await until('every host left the stopped one out', () =>
      hosts.filter(h => !h.stopped).every(h => !members(h).includes(victim.host.peerId)), 120_000)
      .catch((err: Error) => { throw new Error(`${err.message}: ${hosts.filter(h => !h.stopped && members(h).includes(victim.host.peerId)).map(h => h.name).join(', ')} still rank it`) })
    for (const h of hosts.filter(h => !h.stopped)) assert.deepEqual(members(h), ids(), `${h.name}: the others stay members`)
    // hosts that had no connection to it heard it from the neighbours' DOWN notice
    for (const h of strangers) assert.ok(!h.members.has(victim.host.peerId), `${h.name} took the DOWN notice`)
  })
})
