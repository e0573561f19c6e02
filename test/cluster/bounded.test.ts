// Issue 14, items 1 and 2: hosts keep at most --max-connections open (their XOR neighbours and a
// link per k-bucket), and tree ops spread over gossipsub on the network's private topic, so an
// op written on one host reaches hosts it is not connected to; a file written on one host reads
// on a host that never had a connection to it (its fragments found where the member table's
// placement rule puts them, dialled: no DHT provider record is made or looked up), and then
// every host's repair settles and its status counts every chunk redundant. New chunks are coded
// for the members (4+2), not for the few peers a host is connected to. A rogue
// member's malformed gossip is rejected, changes no tree and is not forwarded.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { createHost, readNetworkKey } from '../../node/net/index.ts'
import { treeDigest } from '../../node/tree/index.ts'

const HOSTS = 10
const BOUND = 4

const digest = (h: ClusterHost): string => JSON.stringify(treeDigest(h.tree))
const heads = (h: ClusterHost): string => h.tree.heads().map(c => c.toString()).sort().join(',')

/** Whether the hosts' connections join them all into one network. */
function connected (hosts: ClusterHost[]): boolean {
  const seen = new Set([hosts[0].host.peerId])
  const queue = [hosts[0]]
  const byId = new Map(hosts.map(h => [h.host.peerId, h]))
  while (queue.length > 0) {
    const h = queue.shift()!
    for (const p of h.host.peers()) {
      const next = byId.get(p.id)
      if (next !== undefined && !seen.has(p.id)) { seen.add(p.id); queue.push(next) }
    }
  }
  return seen.size === hosts.length
}

describe(`bounded connections and gossip (${HOSTS} hosts, --max-connections ${BOUND})`, function () {
  const t = new Teardown()
  let hosts: ClusterHost[]
  after(async () => { await t.run() })

  before(async function () {
    hosts = await startCluster(t, HOSTS, { daemon: { maxConnections: BOUND } })
    // every host has heard of enough members to choose neighbours, and the trim has settled
    await until(`every host within ${BOUND} connections, the network connected`, () =>
      hosts.every(h => h.host.peers().length >= 1 && h.host.peers().length <= BOUND) && connected(hosts), 120_000)
      .catch((err: Error) => { throw new Error(`${err.message}: ${hosts.map(h => `${h.name} ${h.host.peers().length} peers, ${h.host.neighbours().length} neighbours`).join('; ')}`) })
  })

  it(`no host keeps more than ${BOUND} connections, and hosts are not all connected to each other`, () => {
    for (const h of hosts) assert.ok(h.host.peers().length <= BOUND, `${h.name} has ${h.host.peers().length} connections`)
    assert.ok(hosts.some(h => h.host.peers().length < HOSTS - 1))
    // beyond the full mesh, each host has chosen neighbours (tagged, redialled)
    for (const h of hosts) assert.ok(h.host.neighbours().length > 0 && h.host.neighbours().length <= BOUND, `${h.name} neighbours`)
  })

  it('new chunks are coded for the members, not for the few peers connected: 4+2 on every host', async () => {
    // with BOUND connections a host sees at most BOUND + 1 hosts; coding for those gave 3+2
    await until('every host codes new chunks 4+2', () => hosts.every(h => {
      const p = h.volume.chunks.params()
      return p.k === 4 && p.m === 2
    }), 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${hosts.map(h => `${h.name} ${JSON.stringify(h.volume.chunks.params())} with ${h.host.peers().length} peers`).join('; ')}`)
    })
  })

  it('a directory made on one host reaches every host through gossip (equal tree digests)', async () => {
    await hosts[0].volume.mkdir('/gossiped')
    await until('every host has the directory and the same tree', () =>
      hosts.every(h => digest(h) === digest(hosts[0]) && heads(h) === heads(hosts[0])), 60_000)
    for (const h of hosts) await h.volume.stat('/gossiped')
    assert.ok(hosts.reduce((n, h) => n + h.sync.stats().gossipAccepted, 0) > 0, 'ops came through gossip')
    for (const h of hosts) assert.equal(h.sync.stats().gossipRejected, 0, h.name)
  })

  it('a file written on one host reads on a host not connected to it, located by the member table: no DHT provider record made or asked for', async () => {
    const data = randomBytes((1 << 20) + 17)
    const writer = hosts[0]
    // chosen before the write: placing the file dials the hosts its fragments go to, and for a
    // moment the writer may be connected to every host; once the trim has settled, at most
    // BOUND of the other HOSTS - 1 are
    await until(`every host within ${BOUND} connections`, () => hosts.every(h => h.host.peers().length <= BOUND), 60_000)
    const far = hosts.filter(h => h !== writer && !h.host.peers().some(p => p.id === writer.host.peerId))
    assert.ok(far.length > 0, 'some host is not connected to the writer')
    const reader = far[0]
    // every provider record made or looked up, on any host (the DHT stays for routing only)
    const dht = { provides: 0, lookups: 0 }
    for (const h of hosts) {
      const { provide, findProviders } = h.host
      h.host.provide = async (cid, o) => { dht.provides++; await provide(cid, o) }
      h.host.findProviders = async (cid, o) => { dht.lookups++; return await findProviders(cid, o) }
    }
    await writer.volume.replaceFile('/far.bin', [data], { wait: 'safe' })
    await until(`${reader.name} sees /far.bin`, async () => { try { await reader.volume.stat('/far.bin'); return true } catch { return false } }, 60_000)
    assert.deepEqual(Buffer.from(await reader.volume.readFile('/far.bin')), data)
    assert.deepEqual(dht, { provides: 0, lookups: 0 })
    await until(`every host back within ${BOUND} connections`, () => hosts.every(h => h.host.peers().length <= BOUND), 60_000)
  })

  it('then every host\'s repair settles, and status counts every chunk redundant from kept state with no swarm message', async function () {
    // background passes come a minute apart: the write's, then maybe another that hands copies over
    this.timeout(420_000)
    // a host plans over the members that are up, connected or not: the chunks whose targets it
    // is not connected to are redundant, its pass settles, and the timer surveys nothing more
    // (each pass found them short before, and every host surveyed every chunk each interval)
    await until('every repairer settled', () => hosts.every(h => h.keep.repairer.idle()), 360_000)
      .catch((err: Error) => { throw new Error(`${err.message}: ${hosts.filter(h => !h.keep.repairer.idle()).map(h => h.name).join(', ')} not settled`) })
    for (const h of hosts) {
      const swarm = (): number => Object.entries(h.host.traffic().protocols).filter(([p]) => p.startsWith('/darkfs/swarm/')).reduce((a, [, v]) => a + v.streams, 0)
      const before = swarm()
      const s = await h.keep.health()
      assert.equal(s.source, 'kept')
      assert.ok(s.total > 0, `${h.name} counts no chunk`)
      assert.equal(s.redundant, s.total, `${h.name}: ${JSON.stringify(s)}`)
      assert.equal(swarm(), before, `${h.name}'s status opened swarm streams`)
    }
    // the network totals (keeper/kept.ts): each chunk counted once, by its keeper, and every
    // member's counts heard by every host, connected to it or not (gossip beyond the full mesh)
    const total = (await hosts[0].keep.health()).total
    await until('every host\'s network totals count every chunk redundant, told by every member', () => hosts.every(h => {
      const n = h.kept.totals()
      return n.reporting === HOSTS && n.members === HOSTS && n.chunks.redundant === total && n.chunks.total === total
    }), 60_000).catch((err: Error) => { throw new Error(`${err.message}: ${total} chunks; ${hosts.map(h => JSON.stringify(h.kept.totals().chunks) + ` from ${h.kept.totals().reporting}`).join('; ')}`) })
  })
})

describe('a rogue member\'s gossip', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('a malformed gossip message is rejected, changes nothing and is not forwarded', async () => {
    const hosts = await startCluster(t, 3)
    await until('full mesh', () => hosts.every(h => h.host.peers().length === 2))
    await hosts[0].volume.mkdir('/before')
    await until('same tree everywhere', () => hosts.every(h => heads(h) === heads(hosts[0])))
    const before = hosts.map(h => [heads(h), h.tree.size])

    // a member with the network key (pnet lets it in), speaking gossipsub on the network's topic
    const rogue = await createHost({
      privateKey: await generateKeyPair('Ed25519'),
      networkKey: await readNetworkKey(join(hosts[0].dir, 'network.key')),
      listen: [`/memory/rogue-${randomBytes(4).toString('hex')}`],
      join: [hosts[1].address],
      // it stays connected to hosts[1] only
      maxConnections: 1
    })
    t.add(async () => { await rogue.stop() })
    assert.equal(rogue.gossip.topic, hosts[1].host.gossip.topic)
    await until('hosts[1] is subscribed as seen by the rogue', () => rogue.gossip.subscribers().includes(hosts[1].host.peerId))
    // not dag-cbor at all; then the right envelope with an op block that is no signed op
    const got = new Set([
      ...await rogue.gossip.publish(new Uint8Array([0xff, 0x00, 0x13, 0x37])),
      ...await rogue.gossip.publish(dagCbor.encode({ t: 'push', ops: [randomBytes(200)] }))
    ])
    assert.ok(got.has(hosts[1].host.peerId))
    const direct = hosts.filter(h => got.has(h.host.peerId))
    await until('every host the rogue sent them to rejected both', () => direct.every(h => h.sync.stats().gossipRejected >= 2))
    assert.deepEqual(hosts.map(h => [heads(h), h.tree.size]), before)
    // rejected messages are not forwarded: hosts the rogue did not send them to never saw them
    // (the rogue, bounded to one connection, may have reached another host than hosts[1] by then)
    for (const h of hosts.filter(h => !got.has(h.host.peerId))) assert.equal(h.sync.stats().gossipRejected, 0, h.name)
    // and a real op still spreads afterwards
    await hosts[2].volume.mkdir('/after')
    await until('the op reaches every host', () => hosts.every(h => heads(h) === heads(hosts[2])))
  })
})
