// A hostile host that holds the network key (DESIGN.md §7): a raw libp2p node speaking the
// darkfs protocols by hand against three honest in-process hosts on loopback TCP. Malformed,
// truncated and oversized swarm, ops, DHT and peer-exchange messages (ops and peer exchange
// speak node/net/rpc.ts); blocks that do not match
// their CID; forged ops; WANT floods; never-ending streams. The honest hosts stay up, keep
// memory bounded, drop the rogue where the protocol says so, and serve each other meanwhile.
// A host without the key cannot connect or learn anything.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { encode as encodeSwarm, PUSH, WANT, BLOCK, MAX_MESSAGE_BYTES, MAX_CIDS_PER_MESSAGE } from '../../swarm/protocol.ts'
import { PROTOCOL as SWARM_PROTOCOL } from '../../swarm/index.ts'
import { createOp } from '../../node/tree/op.ts'
import { ROOT } from '../../node/tree/index.ts'
import { OPS, OPS_PROTOCOL, encodeCall, encodeNotice } from '../../node/net/index.ts'
import { DHT_PROTOCOL, PEX, PEX_PROTOCOL } from '../../node/net/index.ts'
import { readNetworkKey, createNetworkKey } from '../../node/net/index.ts'
import { cidOf } from '../../node/data/index.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { Teardown } from '../../harness/tmp.ts'
import { rogueHost, sendAll, lp } from '../helpers/rogue.ts'
import type { Rogue, StreamEnd } from '../helpers/rogue.ts'

/** Heap growth over the whole attack that counts as "bounded" (generous: GC timing varies). */
const HEAP_GROWTH_BOUND_BYTES = 192 * 1024 * 1024
/** The never-ending stream: how much the rogue tries to send. */
const FLOOD_BYTES = 64 * 1024 * 1024

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heapUsed (): number {
  gc(); gc()
  return process.memoryUsage().heapUsed
}

function* repeat (chunk: Uint8Array, total: number): Generator<Uint8Array> {
  for (let sent = 0; sent < total; sent += chunk.byteLength) yield chunk
}

describe('a rogue host with the network key', function () {
  this.timeout(5 * 60_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]
  let key: Uint8Array
  let heapBefore: number

  before(async () => {
    hosts = await startCluster(t, 3, { transport: 'tcp' })
    key = await readNetworkKey(join(hosts[0].dir, 'network.key'))
    await until('the cluster meshes', () => hosts.every(h => h.host.peers().length === 2))
    heapBefore = heapUsed()
  })

  async function rogueAt (h: ClusterHost): Promise<Rogue> {
    const r = await rogueHost(t, { networkKey: key })
    await reconnect(r, h)
    return r
  }

  async function reconnect (r: Rogue, h: ClusterHost): Promise<void> {
    // libp2p admits INBOUND_CONNECTION_THRESHOLD (5) new connections per second per IP, and
    // every rogue here comes from 127.0.0.1: a refused dial waits out the second and retries
    for (let attempt = 0; ; attempt++) {
      try {
        await r.connect(h.address)
        return
      } catch (err) {
        if (attempt >= 10) throw err
        await new Promise(resolve => setTimeout(resolve, 1100))
      }
    }
  }

  /** An honest write on one host and read on another, byte-identical. */
  async function honestRoundTrip (tag: string): Promise<void> {
    const data = randomBytes((2 << 20) + 123)
    const path = `/honest-${tag}.bin`
    await hosts[1].volume.replaceFile(path, [data])
    await until(`${path} reaches h2`, async () => { try { await hosts[2].volume.stat(path); return true } catch { return false } })
    assert.deepEqual(Buffer.from(await hosts[2].volume.readFile(path)), data)
  }

  const swarmGarbage: Array<[string, () => Uint8Array[]]> = [
    ['random bytes (then end of stream)', () => [randomBytes(4096)]],
    ['an unknown message type', () => [lp(Uint8Array.of(99, 1, 2, 3))]],
    ['a truncated WANT', () => [lp(Uint8Array.of(WANT, 0, 5, 36, 1, 2))]],
    ['a CID that is not one', () => [lp(Uint8Array.of(BLOCK, 3, 1, 2, 3, 0))]],
    ['a WANT with more CIDs than allowed', () => [lp(Uint8Array.of(WANT, 0, 0xff, 0x7f))]]
  ]
  for (const [what, frames] of swarmGarbage) {
    it(`swarm: ${what} closes the stream; a protocol break bans and drops the rogue`, async () => {
      const target = hosts[0]
      const r = await rogueAt(target)
      const s = await r.stream(target.host.peerId, SWARM_PROTOCOL)
      const { end } = await sendAll(s, frames(), { closeWrite: true })
      assert.equal(end, 'closed')
      if (!what.startsWith('random bytes')) await until('the host hangs up on the rogue', () => !r.connected(target.host.peerId))
    })
  }

  it('swarm: an oversized frame length closes the stream before anything is buffered, bans and drops the rogue', async () => {
    const target = hosts[0]
    const r = await rogueAt(target)
    const s = await r.stream(target.host.peerId, SWARM_PROTOCOL)
    const { end } = await sendAll(s, [lp(new Uint8Array(16), MAX_MESSAGE_BYTES + 1)])
    assert.equal(end, 'closed')
    await until('the host hangs up on the rogue', () => !r.connected(target.host.peerId))
    // banned: back on a fresh connection, a well-formed WANT gets its swarm stream cut at once
    await reconnect(r, target)
    let refused: StreamEnd = 'closed'
    try {
      const again = await r.stream(target.host.peerId, SWARM_PROTOCOL)
      refused = (await sendAll(again, [encodeSwarm({ type: WANT, haveOnly: true, cids: [cidOf(Uint8Array.of(1))] }).subarray()], { waitMs: 3000 })).end
    } catch {
      // the stream was refused while it opened
    }
    assert.equal(refused, 'closed')
  })

  it('swarm: a never-ending frame is cut off and the host reads a bounded amount', async () => {
    const r = await rogueAt(hosts[0])
    const s = await r.stream(hosts[0].host.peerId, SWARM_PROTOCOL)
    const chunk = new Uint8Array(64 * 1024).fill(0xee)
    const { sent, end } = await sendAll(s, [lp(new Uint8Array(0), MAX_MESSAGE_BYTES), ...repeat(chunk, FLOOD_BYTES)])
    assert.equal(end, 'closed')
    assert.ok(sent < FLOOD_BYTES / 2, `the host took ${sent} bytes of a never-ending frame`)
  })

  it('swarm: a PUSH whose bytes do not match its CID is not stored, and the rogue is dropped', async () => {
    const target = hosts[0]
    const r = await rogueAt(target)
    const good = randomBytes(1000)
    const cid = cidOf(good)
    const s = await r.stream(target.host.peerId, SWARM_PROTOCOL)
    const { end } = await sendAll(s, [encodeSwarm({ type: PUSH, cid, hops: [], bytes: randomBytes(1000) }).subarray()])
    assert.equal(end, 'closed')
    await until('the host hangs up on the rogue', () => !r.connected(target.host.peerId))
    assert.equal(await target.store.has(cid), false)
  })

  it('swarm: a PUSH of a fragment-sized block one byte off its CID (checked with its leaves in one addon job) is not stored, and the rogue is dropped', async () => {
    const target = hosts[0]
    const r = await rogueAt(target)
    const good = randomBytes(256 * 1024)
    const cid = cidOf(good)
    const bad = Uint8Array.from(good)
    bad[200_000] ^= 0x01
    const s = await r.stream(target.host.peerId, SWARM_PROTOCOL)
    const { end } = await sendAll(s, [encodeSwarm({ type: PUSH, cid, hops: [], bytes: bad }).subarray()])
    assert.equal(end, 'closed')
    await until('the host hangs up on the rogue', () => !r.connected(target.host.peerId))
    assert.equal(await target.store.has(cid), false)
  })

  it('swarm: a WANT flood is cut off; the host keeps serving', async () => {
    const target = hosts[0]
    const r = await rogueAt(target)
    const s = await r.stream(target.host.peerId, SWARM_PROTOCOL)
    const wants = Array.from({ length: 200 }, (_, round) => encodeSwarm({
      type: WANT,
      haveOnly: false,
      cids: Array.from({ length: MAX_CIDS_PER_MESSAGE }, (_, i) => cidOf(Uint8Array.of(round, i >> 8, i & 0xff)))
    }).subarray())
    const { end } = await sendAll(s, wants)
    assert.equal(end, 'closed')
    assert.equal(target.swarm.stats().wantsQueued, 0)
  })

  it('ops: a forged author, a bad signature, a malformed or oversized message: nothing stored', async () => {
    const target = hosts[0]
    const heads = target.tree.heads().map(c => c.toString())
    const rogueKey = await generateKeyPair('Ed25519')
    const victim = hosts[1].host.peerId
    // signed by the rogue's key, claiming the victim as author
    const forged = await createOp({ author: victim, sign: async b => await rogueKey.sign(b) }, { type: 'create', parent: ROOT, name: 'forged', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: 1n }, [Date.now(), 0], [])
    // the rogue's own op with its signature bytes flipped
    const own = await createOp({ author: peerIdFromString((await rogueHost(t)).id).toString(), sign: async b => await rogueKey.sign(b) }, { type: 'create', parent: ROOT, name: 'badsig', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: 1n }, [Date.now(), 0], [])
    const flipped = new Uint8Array(own.bytes)
    flipped[flipped.byteLength - 3] ^= 0xff
    const bad0 = target.sync.stats().badMessages
    const r = await rogueAt(target)
    for (const frames of [
      [lp(encodeNotice(OPS, { t: 'push', ops: [forged.bytes] }))],
      [lp(encodeNotice(OPS, { t: 'push', ops: [flipped] }))],
      [lp(randomBytes(300))],
      [lp(new Uint8Array(8), 1 << 30)],
      [lp(Uint8Array.of(0xa1, 0x61, 0x74, 0x64, 0x70, 0x75, 0x73, 0x68))], // { t: 'push' } without ops or envelope
      [lp(encodeNotice(OPS, { t: 'push' } as any))], // the same in its envelope
      [lp(encodeCall(OPS, { t: 'push', ops: [forged.bytes] } as any))] // a push sent as a call
    ]) {
      const s = await r.stream(target.host.peerId, OPS_PROTOCOL)
      const { end } = await sendAll(s, frames)
      assert.equal(end, 'closed')
    }
    assert.equal(target.tree.hasOp(forged.cid), false)
    assert.equal(target.tree.hasOp(own.cid), false)
    assert.deepEqual(target.tree.heads().map(c => c.toString()), heads)
    assert.ok(target.sync.stats().badMessages > bad0, 'bad messages are counted')
  })

  it('DHT: garbage, truncated and oversized kad messages close the stream; the DHT keeps answering', async () => {
    const target = hosts[0]
    const r = await rogueAt(target)
    for (const frames of [
      [lp(randomBytes(500))],
      [lp(Uint8Array.of(0x08, 0x01, 0x12, 0x7f, 0x01))], // FIND_NODE with a key field that runs off the end
      [lp(new Uint8Array(8), 1 << 30)],
      [Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)] // a length prefix that never ends
    ]) {
      const s = await r.stream(target.host.peerId, DHT_PROTOCOL)
      const { end } = await sendAll(s, frames, { closeWrite: true })
      assert.equal(end, 'closed')
    }
    const key = cidOf(randomBytes(10))
    // (rogues of earlier tests are still members, so the lists are not compared across hosts)
    for (const h of hosts) assert.ok((await h.host.closestPeers(key.multihash.bytes, 3)).length > 0)
  })

  it('peer exchange: garbage, oversized and bogus member lists close the stream or are ignored', async () => {
    const target = hosts[0]
    const r = await rogueAt(target)
    const bogus = await Promise.all(Array.from({ length: 64 }, async () => (await rogueHost(t)).id))
    for (const frames of [
      [lp(randomBytes(200))],
      [lp(new TextEncoder().encode('['.repeat(60_000)))],
      [lp(new Uint8Array(8), 1 << 30)],
      [lp(encodeCall(PEX, { peers: bogus.map(id => ({ id, addrs: ['/ip4/127.0.0.1/tcp/1'] })) }))]
    ]) {
      const s = await r.stream(target.host.peerId, PEX_PROTOCOL)
      const { end } = await sendAll(s, frames, { closeWrite: true })
      assert.equal(end, 'closed')
    }
    // the bogus members are unreachable: the host knows only real peers
    await until('bogus dials give up', () => target.host.peers().every(p => !bogus.includes(p.id)))
  })

  it('honest hosts write and read while three rogues attack at once; memory stays bounded', async () => {
    const rogues = await Promise.all(hosts.map(async h => await rogueAt(h)))
    const chunk = new Uint8Array(64 * 1024).fill(0x42)
    const attacks = rogues.flatMap((r, i) => [
      (async () => { await sendAll(await r.stream(hosts[i].host.peerId, SWARM_PROTOCOL), [lp(new Uint8Array(0), MAX_MESSAGE_BYTES), ...repeat(chunk, FLOOD_BYTES)]) })(),
      (async () => { for (let n = 0; n < 20; n++) await sendAll(await r.stream(hosts[i].host.peerId, OPS_PROTOCOL), [lp(randomBytes(2000))]) })(),
      (async () => { for (let n = 0; n < 20; n++) await sendAll(await r.stream(hosts[i].host.peerId, DHT_PROTOCOL), [lp(randomBytes(300))]) })()
    ].map(async p => { await p.catch(() => {}) }))
    await Promise.all([honestRoundTrip('during'), Promise.all(attacks)])
    await honestRoundTrip('after')
    for (const h of hosts) assert.equal(h.host.peers().filter(p => hosts.some(o => o.host.peerId === p.id)).length, 2, `${h.name} keeps its honest peers`)
    const growth = heapUsed() - heapBefore
    assert.ok(growth < HEAP_GROWTH_BOUND_BYTES, `heap grew by ${(growth / 2 ** 20).toFixed(1)} MiB`)
  })
})

describe('a host without the network key', function () {
  this.timeout(60_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  for (const [what, networkKey] of [['another network key', createNetworkKey()], ['no network key', undefined]] as const) {
    it(`with ${what} cannot connect or learn anything`, async () => {
      const [h] = await startCluster(t, 1, { transport: 'tcp' })
      const r = await rogueHost(t, { networkKey })
      await assert.rejects(r.connect(h.address))
      assert.equal(r.connected(h.host.peerId), false)
      assert.ok(!h.host.peers().some(p => p.id === r.id))
      const protocols = await r.libp2p.peerStore.get(peerIdFromString(h.host.peerId)).then(p => p.protocols, () => [])
      assert.deepEqual(protocols, [], 'nothing learned about the host')
    })
  }
})
