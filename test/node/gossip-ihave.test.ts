// gossipsub's lazy repair (IHAVE) as darkfs configures it (node/net/host.ts GOSSIP_MESH_OPTIONS):
// a message costs a host at most GOSSIP_DLAZY IHAVE frames a heartbeat over GOSSIP_HISTORY_GOSSIP
// heartbeats, however many non-mesh peers it has (gossipsub's default gossipFactor, 0.25 of the
// non-mesh peers a heartbeat, made it grow with the connections: the largest part of an idle
// host's upload at 1,000 hosts, issue 14). Real gossipsub instances on the memory transport: one
// hub with many subscribed peers (a host at its connection bound), each of them connected to the
// hub only, so every IHAVE counted is the hub's.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { memory } from '@libp2p/memory'
import { identify } from '@libp2p/identify'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { gossipsub, StrictNoSign } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { GOSSIP_DHI, GOSSIP_DLAZY, GOSSIP_HISTORY_GOSSIP, GOSSIP_MESH_OPTIONS } from '../../node/net/host.ts'

/** Polls until check() holds; the test's own mocha timeout bounds it. */
async function until (check: () => boolean, what: string, stepMs = 50): Promise<void> {
  for (let i = 0; ; i++) {
    if (check()) return
    if (i > 600) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
}

const TOPIC = 'darkfs-ihave-test'
/** Peers of the hub: enough that gossipsub's default factor (0.25 x non-mesh peers) would exceed Dlazy. */
const LEAVES = 48

type Node = Libp2p<{ pubsub: GossipSub }>

async function node (listen: string[] = []): Promise<Node> {
  return await createLibp2p({
    addresses: { listen },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: LEAVES + 16 },
    services: {
      identify: identify(),
      // as host.ts has it, but for the network key and the score
      pubsub: gossipsub({
        globalSignaturePolicy: StrictNoSign,
        fallbackToFloodsub: false,
        floodPublish: true,
        allowPublishToZeroTopicPeers: true,
        ...GOSSIP_MESH_OPTIONS,
        doPX: false,
        emitSelf: false
      }) as (components: any) => GossipSub
    }
  })
}

describe('gossip IHAVE (host.ts GOSSIP_MESH_OPTIONS)', function () {
  const nodes: Node[] = []
  after(async function () {
    await Promise.all(nodes.map(async n => { await n.stop() }))
  })

  it(`a message is advertised to at most GOSSIP_DLAZY (${GOSSIP_DLAZY}) peers a heartbeat over GOSSIP_HISTORY_GOSSIP (${GOSSIP_HISTORY_GOSSIP}) heartbeats, with ${LEAVES} subscribed peers`, async function () {
    const hub = await node([`/memory/darkfs-${randomBytes(6).toString('hex')}`])
    nodes.push(hub)
    const leaves = await Promise.all(Array.from({ length: LEAVES }, async () => await node()))
    nodes.push(...leaves)
    hub.services.pubsub.subscribe(TOPIC)
    for (const l of leaves) l.services.pubsub.subscribe(TOPIC)
    await Promise.all(leaves.map(async l => await l.dial(multiaddr(hub.getMultiaddrs()[0]))))
    const ps = hub.services.pubsub
    await until(() => ps.getSubscribers(TOPIC).length === LEAVES, 'every leaf subscribed as the hub sees it')
    // the leaves graft the hub at their heartbeats; the hub's heartbeat prunes its mesh to D when above Dhi
    const mesh = (): string[] => (ps as unknown as { getMeshPeers: (t: string) => string[] }).getMeshPeers(TOPIC)
    let ticks = 0
    ps.addEventListener('gossipsub:heartbeat', () => { ticks++ })
    await until(() => ticks >= 3 && mesh().length <= GOSSIP_DHI, 'the hub\'s mesh settled')
    const nonMesh = LEAVES - mesh().length
    // with this many peers outside its mesh, gossipsub's default factor would advertise to more than Dlazy
    assert.ok(0.25 * nonMesh > GOSSIP_DLAZY, `${nonMesh} peers outside the hub's mesh`)

    // every IHAVE the hub sends, by heartbeat (the instance's own method, not the prototype's)
    const sent: Array<{ tick: number, peer: string, ids: number }> = []
    const spy = ps as unknown as { pushGossip: (id: string, ihave: { topicID?: string, messageIDs?: Uint8Array[] }) => void }
    const push = spy.pushGossip.bind(ps)
    spy.pushGossip = (id, ihave) => {
      sent.push({ tick: ticks, peer: id, ids: ihave.messageIDs?.length ?? 0 })
      push(id, ihave)
    }
    const got = leaves.map(() => 0)
    leaves.forEach((l, i) => { l.services.pubsub.addEventListener('message', () => { got[i]++ }) })
    const at = ticks
    const published = await ps.publish(TOPIC, randomBytes(300))
    assert.equal(published.recipients.length, LEAVES, 'the author sends its message to every subscribed peer')
    // the message stays in the hub's cache for mcacheLength (5) heartbeats: past them nothing more is advertised
    await until(() => ticks >= at + 7, 'seven heartbeats after the publish')
    await until(() => got.every(n => n === 1), 'every leaf got the message once')

    assert.ok(sent.length > 0, 'the hub advertised the message (lazy repair is on)')
    assert.ok(sent.every(s => s.ids === 1), 'one id per IHAVE: the one message')
    const perTick = new Map<number, number>()
    for (const s of sent) perTick.set(s.tick, (perTick.get(s.tick) ?? 0) + 1)
    for (const [tick, n] of perTick) assert.ok(n <= GOSSIP_DLAZY, `${n} IHAVEs at heartbeat ${tick - at + 1} after the publish (at most ${GOSSIP_DLAZY})`)
    assert.ok(perTick.size <= GOSSIP_HISTORY_GOSSIP, `advertised at ${perTick.size} heartbeats (at most ${GOSSIP_HISTORY_GOSSIP})`)
    assert.ok(sent.length <= GOSSIP_DLAZY * GOSSIP_HISTORY_GOSSIP)
    // and never twice to one peer at one heartbeat
    assert.equal(new Set(sent.map(s => `${s.tick} ${s.peer}`)).size, sent.length)
  })
})
