import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLibp2p } from 'libp2p'
import { memory } from '@libp2p/memory'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { DIAL_FAILURES_HELD, NEIGHBOUR_TAG, NEIGHBOUR_TAG_VALUE, PING_BUDGET_BYTES_PER_S, PING_INTERVAL_MAX_MS, PING_INTERVAL_MS, PING_ROUND_SENT_BYTES, TRIM_GRACE_MS, createHost, pingIntervalMs } from '../../node/net/host.ts'
import { parseCidr, cidrContains } from '../../node/net/cidr.ts'
import type { Host, KeyMismatch, Stream } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { targets } from '../../node/keeper/placement.ts'
import { neighbours, ringNeighbours } from '../../node/net/kad.ts'
import { NetworkKeyMismatchError } from '../../node/errors.ts'

/** Polls until check() holds; the test's own mocha timeout bounds it. */
async function until (check: () => boolean | Promise<boolean>, what: string, stepMs = 50): Promise<void> {
  for (let i = 0; ; i++) {
    if (await check()) return
    if (i > 400) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
}

function memAddr (): string {
  return `/memory/darkfs-${randomBytes(6).toString('hex')}`
}

describe('node/host', function () {
  const teardown: Array<() => Promise<void>> = []
  afterEach(async function () {
    while (teardown.length > 0) await teardown.pop()!().catch(() => {})
  })

  async function host (networkKey: Uint8Array, listen: string[], join: string[] = [], extra: Partial<Parameters<typeof createHost>[0]> = {}): Promise<Host> {
    const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey, listen, join, ...extra })
    teardown.push(async () => { await h.stop() })
    return h
  }

  async function cluster (n: number, networkKey = createNetworkKey()): Promise<Host[]> {
    const first = await host(networkKey, [memAddr()])
    const rest = await Promise.all(Array.from({ length: n - 1 }, async () => await host(networkKey, [memAddr()], [first.addresses()[0]])))
    return [first, ...rest]
  }

  const fullyMeshed = (hosts: Host[]) => () => hosts.every(h => {
    const ids = new Set(h.peers().map(p => p.id))
    return hosts.every(o => o === h || ids.has(o.peerId))
  })

  it('createHost() refuses to start without a network key', async function () {
    await assert.rejects(createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: undefined as any, listen: [memAddr()] }), { name: 'UsageError' })
  })

  it('host.addresses() are full multiaddrs with /p2p/<id>, never unspecified', async function () {
    const h = await host(createNetworkKey(), ['/ip4/0.0.0.0/tcp/0', memAddr()])
    const addrs = h.addresses()
    assert.ok(addrs.length > 0)
    for (const a of addrs) {
      assert.ok(a.endsWith(`/p2p/${h.peerId}`), a)
      assert.ok(!a.includes('/0.0.0.0/') && !a.startsWith('/ip6/::/'), a)
    }
    assert.ok(addrs.some(a => a.startsWith('/memory/')))
  })

  it('host.peers(): 6 hosts joining through one address all learn every other host', async function () {
    const hosts = await cluster(6)
    await until(fullyMeshed(hosts), 'full mesh')
    for (const h of hosts) {
      assert.equal(h.peers().length, hosts.length - 1)
      for (const p of h.peers()) assert.ok(p.addresses.every(a => a.endsWith(`/p2p/${p.id}`)))
    }
  })

  it('host.peers(): 5 hosts over loopback TCP (127.0.0.1 only) all learn every other host', async function () {
    const key = createNetworkKey()
    const first = await host(key, ['/ip4/127.0.0.1/tcp/0'])
    const rest = await Promise.all(Array.from({ length: 4 }, async () => await host(key, ['/ip4/127.0.0.1/tcp/0'], [first.addresses()[0]])))
    const hosts = [first, ...rest]
    await until(fullyMeshed(hosts), 'full mesh over TCP')
    for (const h of hosts) {
      for (const p of h.peers()) assert.ok(p.addresses.every(a => a.startsWith('/ip4/127.0.0.1/tcp/')), p.addresses.join())
    }
  })

  it('host.peers(): a host joining late is known to every member and knows every member', async function () {
    const key = createNetworkKey()
    const hosts = await cluster(5, key)
    await until(fullyMeshed(hosts), 'first mesh')
    // joins through the last member, not the first
    const late = await host(key, [memAddr()], [hosts[4].addresses()[0]])
    await until(fullyMeshed([...hosts, late]), 'late host meshed')
  })

  it('host.dial() with the wrong network key throws NetworkKeyMismatchError and both sides report it', async function () {
    const a = await host(createNetworkKey(), [memAddr()])
    const b = await host(createNetworkKey(), [memAddr()])
    const seenA: KeyMismatch[] = []
    const seenB: KeyMismatch[] = []
    a.addEventListener('peer:key-mismatch', e => { seenA.push(e.detail) })
    b.addEventListener('peer:key-mismatch', e => { seenB.push(e.detail) })
    await assert.rejects(b.dial(a.addresses()[0]), (err: any) => {
      assert.ok(err instanceof NetworkKeyMismatchError)
      assert.equal(err.name, 'NetworkKeyMismatchError')
      return true
    })
    await until(() => seenA.length > 0, 'listener reports the mismatch')
    assert.equal(seenA[0].direction, 'inbound')
    assert.equal(a.peers().length, 0)
    assert.equal(b.peers().length, 0)
  })

  it('host.dial() over TCP with the wrong key is a NetworkKeyMismatchError every time, whoever notices first (20 dials)', async function () {
    const a = await host(createNetworkKey(), ['/ip4/127.0.0.1/tcp/0'])
    for (let i = 0; i < 20; i++) {
      const b = await host(createNetworkKey(), ['/ip4/127.0.0.1/tcp/0'])
      await assert.rejects(b.dial(a.addresses()[0]), (err: any) => { assert.equal(err?.name, 'NetworkKeyMismatchError', `dial ${i}: ${err?.name}: ${err?.message} ${JSON.stringify(err?.errors?.map((e: any) => e?.name + ':' + e?.code + ':' + e?.message))}`); return true })
      await b.stop()
    }
  })

  it('createHost({ join }) with the wrong network key fails with NetworkKeyMismatchError', async function () {
    const a = await host(createNetworkKey(), [memAddr()])
    await assert.rejects(createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: createNetworkKey(), listen: [memAddr()], join: [a.addresses()[0]] }), { name: 'NetworkKeyMismatchError' })
  })

  it('gossip: a tagged message whose tag has no handler (yet) is ignored, never handed to the op handler', async function () {
    // a daemon's kept records' handler is registered well after sync's op handler: a record
    // gossiped in between went to the op handler, which rejected it as a malformed op message
    const key = createNetworkKey()
    const a = await host(key, [memAddr()])
    const b = await host(key, [memAddr()], [a.addresses()[0]])
    const seen: number[] = []
    const tagged: number[] = []
    b.gossip.handle(async data => { seen.push(data[0]); return 'accept' })
    a.gossip.handle(async () => 'accept')
    await until(() => a.gossip.subscribers().includes(b.peerId), 'b subscribed as a sees it')
    // an op message (a dag-cbor map), a record of a tag b does not handle, then one it does
    b.gossip.handleTagged(0x4d, async data => { tagged.push(data.byteLength); return 'accept' })
    assert.ok((await a.gossip.publish(new Uint8Array([0xa1, 0x61, 0x74, 0x01]))).includes(b.peerId))
    assert.ok((await a.gossip.publish(new Uint8Array([0x4b, 0x01, 0x02, 0x03]))).includes(b.peerId))
    assert.ok((await a.gossip.publish(new Uint8Array([0x4d, 0x01, 0x02]))).includes(b.peerId))
    await until(() => tagged.length === 1, 'b took the record of its tag')
    // and a last op message, which comes after the untaken record
    assert.ok((await a.gossip.publish(new Uint8Array([0xa1, 0x61, 0x74, 0x02]))).includes(b.peerId))
    await until(() => seen.length >= 2, 'b took the last op message')
    assert.deepEqual(seen, [0xa1, 0xa1])
    assert.deepEqual(tagged, [2])
    assert.throws(() => { b.gossip.handleTagged(0xa1, undefined) }, RangeError)
  })

  it('gossip.publish() of large messages to three subscribed peers: each peer takes every message byte for byte, in order', async function () {
    // a holder's relay of an fsync's ops is one 64 KiB message sent to every member (sync.ts
    // "Relay"): every peer's stream carries the same bytes
    const key = createNetworkKey()
    const a = await host(key, [memAddr()])
    a.gossip.handleTagged(0x4b, async () => 'accept')
    const peers = [await host(key, [memAddr()], [a.addresses()[0]]), await host(key, [memAddr()], [a.addresses()[0]]), await host(key, [memAddr()], [a.addresses()[0]])]
    const heard = new Map<string, Uint8Array[]>()
    for (const p of peers) {
      heard.set(p.peerId, [])
      p.gossip.handleTagged(0x4b, async d => { heard.get(p.peerId)!.push(d.slice()); return 'accept' })
    }
    await until(() => peers.every(p => a.gossip.subscribers().includes(p.peerId)), 'every peer subscribed as a sees it')
    const bodies = [randomBytes(64 << 10), randomBytes(100_000), randomBytes(3)]
    for (const body of bodies) {
      const data = new Uint8Array(1 + body.byteLength)
      data[0] = 0x4b
      data.set(body, 1)
      assert.deepEqual(new Set(await a.gossip.publish(data)), new Set(peers.map(p => p.peerId)))
    }
    await until(() => peers.every(p => heard.get(p.peerId)!.length === bodies.length), 'every peer took every message')
    for (const p of peers) {
      assert.deepEqual(heard.get(p.peerId)!.map(d => Buffer.from(d).toString('hex')), bodies.map(b => b.toString('hex')), `the messages ${p.peerId} took`)
    }
  })

  it('gossip: a message published while no connected peer is subscribed reached nobody, and the same bytes published later reach the peers subscribed then', async function () {
    // gossipsub remembers a published message's id (the SHA-256 of its data) for 2 minutes even
    // when it went to nobody: a host publishing a kept record (keeper/kept.ts publishUntilSent,
    // the same bytes until someone got them) while its first peer's subscription had not arrived
    // had every retry refused as a duplicate for those 2 minutes
    const key = createNetworkKey()
    const a = await host(key, [memAddr()])
    const b = await host(key, [memAddr()], [a.addresses()[0]])
    a.gossip.handleTagged(0x4b, async () => 'accept')
    const heard: number[] = []
    // b's gossip stream is open (a saw it subscribe), and b takes no gossip for a while
    b.gossip.handleTagged(0x4b, async () => 'accept')
    await until(() => a.gossip.subscribers().includes(b.peerId), 'b subscribed as a sees it')
    b.gossip.handleTagged(0x4b, undefined)
    await until(() => !a.gossip.subscribers().includes(b.peerId), 'b unsubscribed as a sees it')
    const data = new Uint8Array([0x4b, 0x01, 0x02, 0x03])
    assert.deepEqual(await a.gossip.publish(data), [], 'b takes no gossip now')
    b.gossip.handleTagged(0x4b, async d => { heard.push(d.byteLength); return 'accept' })
    await until(() => a.gossip.subscribers().includes(b.peerId), 'b subscribed as a sees it')
    assert.deepEqual(await a.gossip.publish(data), [b.peerId])
    await until(() => heard.length === 1, 'b heard the message')
  })

  it('host.dial() over loopback TCP with the wrong key is refused on both sides', async function () {
    const a = await host(createNetworkKey(), ['/ip4/127.0.0.1/tcp/0'])
    const b = await host(createNetworkKey(), ['/ip4/127.0.0.1/tcp/0'])
    const seenA: KeyMismatch[] = []
    a.addEventListener('peer:key-mismatch', e => { seenA.push(e.detail) })
    await assert.rejects(b.dial(a.addresses()[0]), { name: 'NetworkKeyMismatchError' })
    await until(() => seenA.length > 0, 'listener reports the mismatch')
    assert.match(seenA[0].address, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/)
  })

  /**
   * A TCP relay to `port` that passes the dialer's bytes and only the listener's first `pass`
   * bytes (24: its pnet nonce): a peer with the right key whose answers stop after the nonce
   * exchange (its event loop starved on a loaded machine), so the dialer's handshake runs out of time.
   * Connections after the first `stalled` pass everything.
   */
  async function stallingRelay (port: number, pass = 24, stalled = Infinity): Promise<number> {
    const sockets = new Set<Socket>()
    let connections = 0
    const server = createServer(client => {
      const upstream = connect(port, '127.0.0.1')
      sockets.add(client).add(upstream)
      let passed = 0
      const stall = ++connections <= stalled
      upstream.on('data', (d: Buffer) => {
        if (!stall) { client.write(d); return }
        const n = Math.min(d.length, pass - passed)
        if (n > 0) { client.write(d.subarray(0, n)); passed += n }
      })
      client.on('data', (d: Buffer) => { upstream.write(d) })
      const end = (): void => { client.destroy(); upstream.destroy() }
      client.on('close', end).on('error', end)
      upstream.on('close', end).on('error', end)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    teardown.push(async () => {
      for (const s of sockets) s.destroy()
      await new Promise(resolve => server.close(resolve))
    })
    return (server.address() as AddressInfo).port
  }

  it('a handshake with the right key that runs out of time is a timeout, not a key mismatch, and a join through it starts the host', async function () {
    // the dial's own bound (timeoutMs) longer than libp2p's per-address dial timeout: that one
    // cuts the handshake off, and libp2p's upgrader reports it as an EncryptionFailedError
    const key = createNetworkKey()
    const a = await host(key, ['/ip4/127.0.0.1/tcp/0'])
    const seen: KeyMismatch[] = []
    a.addEventListener('peer:key-mismatch', e => { seen.push(e.detail) })
    const port = Number(/\/tcp\/(\d+)/.exec(a.addresses()[0])![1])
    const stalled = `/ip4/127.0.0.1/tcp/${await stallingRelay(port)}/p2p/${a.peerId}`
    const b = await host(key, ['/ip4/127.0.0.1/tcp/0'])
    b.addEventListener('peer:key-mismatch', e => { seen.push(e.detail) })
    await assert.rejects(b.dial(stalled, { timeoutMs: 60_000 }), (err: any) => {
      assert.equal(err?.name, 'TimeoutError', `${err?.name}: ${err?.message}`)
      return true
    })
    // the join goes on (as through an unreachable address) instead of stopping the host
    const c = await host(key, ['/ip4/127.0.0.1/tcp/0'], [stalled], { dialTimeoutMs: 60_000 })
    assert.deepEqual(seen, [], 'neither side reported a key mismatch')
    // and c is a working host: a dial to a itself succeeds
    await c.dial(a.addresses()[0])
    assert.ok(c.peers().some(p => p.id === a.peerId))
  })

  it('a join address with the right key silent through the nonce exchange (starved) is dialled again, and the join succeeds', async function () {
    const key = createNetworkKey()
    const a = await host(key, ['/ip4/127.0.0.1/tcp/0'])
    const port = Number(/\/tcp\/(\d+)/.exec(a.addresses()[0])![1])
    // its first connection gets not even the nonce: the old join stopped the host with a key mismatch
    const silentOnce = `/ip4/127.0.0.1/tcp/${await stallingRelay(port, 0, 1)}/p2p/${a.peerId}`
    const b = await host(key, ['/ip4/127.0.0.1/tcp/0'], [silentOnce])
    assert.equal(b.inbound().pnetFailed['outbound deadline'], 1, 'the first nonce exchange ran out of time')
    assert.ok(b.peers().some(p => p.id === a.peerId), 'joined through the retried address')
  })

  it('a plain libp2p node without a network key is refused, and the host says why', async function () {
    const a = await host(createNetworkKey(), [memAddr()])
    const seen: KeyMismatch[] = []
    a.addEventListener('peer:key-mismatch', e => { seen.push(e.detail) })
    const plain = await createLibp2p({ transports: [memory()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    teardown.push(async () => { await plain.stop() })
    await assert.rejects(plain.dial(multiaddr(a.addresses()[0]), { signal: AbortSignal.timeout(5000) }))
    await until(() => seen.length > 0, 'host reports the plain peer')
    assert.equal(a.peers().length, 0)
    // and the other way round: the host dialling a plain node
    const plainListener = await createLibp2p({ addresses: { listen: [memAddr()] }, transports: [memory()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    teardown.push(async () => { await plainListener.stop() })
    await assert.rejects(a.dial(plainListener.getMultiaddrs()[0].toString()), { name: 'NetworkKeyMismatchError' })
  })

  it('host.dial() to a closed port fails with a connection error, not a key mismatch; traffic() counts it a failed dial', async function () {
    const a = await host(createNetworkKey(), ['/ip4/127.0.0.1/tcp/0'])
    const b = await host(createNetworkKey(), ['/ip4/127.0.0.1/tcp/0'])
    const addr = b.addresses()[0]
    await b.stop()
    const sum = (r: Record<string, number>): number => Object.values(r).reduce((x, y) => x + y, 0)
    const before = a.traffic()
    await assert.rejects(a.dial(addr), (err: any) => err.name !== 'NetworkKeyMismatchError')
    const after = a.traffic()
    assert.equal(sum(after.dials) - sum(before.dials), 1)
    assert.equal(sum(after.dialFailures) - sum(before.dialFailures), 1)
  })

  it('host.closestPeers() agrees across hosts and matches placement.targets()', async function () {
    const hosts = await cluster(5)
    await until(fullyMeshed(hosts), 'full mesh')
    const all = hosts.map(h => h.peerId)
    for (let i = 0; i < 5; i++) {
      const key = randomBytes(32)
      const answers = await Promise.all(hosts.map(async h => await h.closestPeers(key, 3)))
      for (const a of answers) assert.deepEqual(a, targets(key, all, 3))
    }
    assert.deepEqual((await hosts[0].closestPeers(randomBytes(8), 10)).sort(), [...all].sort())
  })

  it('host.closestPeers() beyond the full mesh asks the DHT and still agrees across hosts', async function () {
    const key = createNetworkKey()
    const first = await host(key, [memAddr()], [], { fullMeshPeers: 3 })
    const rest: Host[] = []
    for (let i = 0; i < 6; i++) rest.push(await host(key, [memAddr()], [first.addresses()[0]], { fullMeshPeers: 3 }))
    const hosts = [first, ...rest]
    const all = hosts.map(h => h.peerId)
    // some hosts are not connected to every other one
    assert.ok(rest.some(h => h.peers().length < hosts.length - 1))
    for (let i = 0; i < 3; i++) {
      const k = randomBytes(32)
      const expected = targets(k, all, 3)
      await until(async () => (await Promise.all(hosts.map(async h => await h.closestPeers(k, 3)))).every(a => a.join() === expected.join()), 'DHT answers agree')
    }
  })

  it('host.findProviders() finds a provider announced on another host', async function () {
    const hosts = await cluster(5)
    await until(fullyMeshed(hosts), 'full mesh')
    const cid = CID.createV1(raw.code, await sha256.digest(randomBytes(64)))
    await hosts[1].provide(cid)
    const found = await hosts[3].findProviders(cid, { max: 1 })
    assert.deepEqual(found, [hosts[1].peerId])
  })

  it('host.newStream() reaches a handler registered with host.handle(), which sees the caller', async function () {
    const hosts = await cluster(2)
    await until(fullyMeshed(hosts), 'connected')
    const callers: string[] = []
    await hosts[0].handle('/darkfs/test-echo/1.0.0', async (stream, peer) => {
      callers.push(peer)
      for await (const chunk of stream) stream.send(chunk)
      await stream.close()
    })
    const stream = await hosts[1].newStream(hosts[0].peerId, '/darkfs/test-echo/1.0.0')
    stream.send(new TextEncoder().encode('hello'))
    await stream.close()
    let got = ''
    for await (const chunk of stream) got += new TextDecoder().decode(chunk.subarray())
    assert.equal(got, 'hello')
    assert.deepEqual(callers, [hosts[1].peerId])
    await hosts[0].unhandle('/darkfs/test-echo/1.0.0')
    await assert.rejects(hosts[1].newStream(hosts[0].peerId, '/darkfs/test-echo/1.0.0'))
  })

  it('host.traffic() counts what each protocol sends, and the socket bytes carrying it', async function () {
    const key = createNetworkKey()
    const first = await host(key, ['/ip4/127.0.0.1/tcp/0'])
    const hosts = [first, await host(key, ['/ip4/127.0.0.1/tcp/0'], [first.addresses()[0]])]
    await until(fullyMeshed(hosts), 'connected')
    const protocol = '/darkfs/test-sink/1.0.0'
    const received: number[] = []
    await hosts[0].handle(protocol, async (stream) => {
      let n = 0
      for await (const chunk of stream) n += chunk.byteLength
      received.push(n)
      await stream.close()
    })
    const before = hosts[1].traffic()
    const stream = await hosts[1].newStream(hosts[0].peerId, protocol)
    for (let i = 0; i < 10; i++) stream.send(randomBytes(100_000))
    await stream.close()
    await until(() => received.length === 1, 'the handler read everything')
    const after = hosts[1].traffic()
    assert.deepEqual(after.protocols[protocol], { sent: 1_000_000, streams: 1 })
    assert.equal(before.protocols[protocol], undefined)
    // Noise, yamux and pnet wrap it: the socket carried at least the payload, and not much more
    const wire = after.wire.sent - before.wire.sent
    assert.ok(wire >= 1_000_000 && wire < 1_010_000, `socket bytes ${wire} for 1,000,000 of payload`)
    // the receiving side counts the stream it accepted, on which it sent nothing
    assert.deepEqual(hosts[0].traffic().protocols[protocol], { sent: 0, streams: 1 })
    assert.ok(Object.keys(after.protocols).some(p => p.startsWith('/ipfs/id/')), JSON.stringify(Object.keys(after.protocols)))
  })

  it('beyond the full mesh the trim spares a connection whose old stream carries data either way, and closes it once the stream is quiet', async function () {
    // the swarm keeps one stream per peer for good: a transfer on it long after it opened
    this.timeout(180_000)
    const key = createNetworkKey()
    const a = await host(key, [memAddr()], [], { maxConnections: 1 })
    const b = await host(key, [memAddr()], [a.addresses()[0]])
    const c = await host(key, [memAddr()], [a.addresses()[0]])
    await until(() => a.beyondFullMesh() && a.neighbours().length === 1, 'a chose its one neighbour', 500)
    // the one a does not keep: a trims its connection while over its bound of 1
    const x = [b, c].find(h => !a.neighbours().includes(h.peerId))!
    const protocol = '/darkfs/test-transfer/1.0.0'
    let served: Stream | undefined
    let received = 0
    await a.handle(protocol, async (stream) => {
      served = stream
      for await (const chunk of stream) received += chunk.byteLength
    })
    const stream = await x.newStream(a.peerId, protocol)
    const closed: number[] = []
    a.addEventListener('peer:disconnect', e => { if (e.detail === x.peerId) closed.push(Date.now()) })
    const pace = async (send: () => void): Promise<void> => {
      // three trim rounds (one each TRIM_GRACE_MS while a is over its bound) with data moving
      const end = Date.now() + 3 * TRIM_GRACE_MS
      while (Date.now() < end) {
        send()
        await new Promise(resolve => setTimeout(resolve, 250))
      }
    }
    // x sends, a receives
    await pace(() => { stream.send(randomBytes(1024)) })
    assert.deepEqual(closed, [], 'a trimmed the connection while it received on the stream')
    assert.ok(received > 0)
    // a sends on the same stream, x reads
    let back = 0
    void (async () => { for await (const chunk of stream) back += chunk.byteLength })().catch(() => {})
    await pace(() => { served!.send(randomBytes(1024)) })
    assert.deepEqual(closed, [], 'a trimmed the connection while it sent on the stream')
    await until(() => back > 0, 'x read what a sent')
    // quiet: trimmed (the stream still open)
    await until(() => closed.length > 0, 'a trimmed the quiet connection', 500)
  })

  it('beyond the full mesh the trim closes last the connections keepFirst() names (the watch\'s): it keeps one over the others, whatever their ids', async function () {
    this.timeout(60_000)
    const key = createNetworkKey()
    // bound 3, one neighbour and the ring predecessor (never trimmed, kad.ts ringNeighbours()):
    // of the two others one connection stays
    const a = await host(key, [memAddr()], [], { maxConnections: 3 })
    const closed: string[] = []
    a.addEventListener('peer:disconnect', e => { closed.push(e.detail) })
    const others: Host[] = []
    for (let i = 0; i < 4; i++) others.push(await host(key, [memAddr()], [a.addresses()[0]]))
    // the neighbour a chooses among the four (kad.ts), its predecessor, and of the rest the one
    // the trim closed first before (lowest tag value, then id: the smallest id of equals), kept
    // first now (set before any trim: none comes within TRIM_GRACE_MS of a connection's opening)
    const neighbour = neighbours(a.peerId, others.map(h => h.peerId), 1)[0]
    const predecessor = ringNeighbours(a.peerId, others.map(h => h.peerId))!.predecessor
    assert.notEqual(neighbour, predecessor)
    const rest = others.map(h => h.peerId).filter(id => id !== neighbour && id !== predecessor).sort()
    const watched = rest[0]
    a.keepFirst(() => new Set([watched]))
    await until(() => a.beyondFullMesh() && a.neighbours().join() === neighbour, 'a chose its one neighbour of the four', 500)
    await until(() => closed.includes(rest[1]) || closed.includes(predecessor), 'a trimmed one over its bound', 500)
    assert.ok(closed.includes(rest[1]), 'a did not trim the other of the two')
    assert.ok(!closed.includes(watched), 'the trim closed the connection the watch relies on')
    assert.ok(!closed.includes(predecessor), 'the trim closed the ring predecessor\'s connection')
    assert.ok(a.peers().some(p => p.id === watched))
  })

  it('beyond the full mesh a trimmed peer is told: trimmedThere() holds on its side when the trim closes the connection, and not after another close', async function () {
    this.timeout(60_000)
    const key = createNetworkKey()
    const a = await host(key, [memAddr()], [], { maxConnections: 1 })
    const b = await host(key, [memAddr()], [a.addresses()[0]])
    const c = await host(key, [memAddr()], [a.addresses()[0]])
    await until(() => a.beyondFullMesh() && a.neighbours().length === 1, 'a chose its one neighbour', 500)
    const kept = [b, c].find(h => a.neighbours().includes(h.peerId))!
    const x = [b, c].find(h => h !== kept)!
    // what x knew of a's close when its connection to a went away
    let told: boolean | undefined
    x.addEventListener('peer:disconnect', e => { if (e.detail === a.peerId && told === undefined) told = x.trimmedThere(a.peerId) })
    await until(() => told !== undefined, 'a trimmed its connection to x', 500)
    assert.equal(told, true, 'x was not told that a trimmed it')
    // a close that is no trim (a hang-up) says nothing: the neighbour a keeps was never told
    let keptTold: boolean | undefined
    kept.addEventListener('peer:disconnect', e => { if (e.detail === a.peerId && keptTold === undefined) keptTold = kept.trimmedThere(a.peerId) })
    await a.hangUp(kept.peerId)
    await until(() => keptTold !== undefined, 'the hang-up reached the kept neighbour')
    assert.equal(keptTold, false)
  })

  it('a dial by id to a peer whose last dial failed fails at once (DialBackoffError), until a connection to it opens', async function () {
    const key = createNetworkKey()
    const identity = await generateKeyPair('Ed25519')
    const addr = memAddr()
    const a = await host(key, [memAddr()])
    const b1 = await createHost({ privateKey: identity, networkKey: key, listen: [addr], join: [a.addresses()[0]] })
    teardown.push(async () => { await b1.stop() })
    await until(() => a.peers().some(p => p.id === b1.peerId && p.addresses.length > 0), 'b joined')
    await b1.stop()
    await until(() => a.peers().length === 0, 'b gone')
    const sum = (r: Record<string, number>): number => Object.values(r).reduce((x, y) => x + y, 0)
    const dials = (): number => sum(a.traffic().dials)
    // a fails to reach b (this dial, or one of its parts' just before: backing off already)
    await until(async () => await a.newStream(b1.peerId, '/ipfs/id/1.0.0').then(() => false, (err: Error) => err.name !== 'DialBackoffError'), 'a dial to b failed', 200)
    const before = dials()
    // held back: no connection tried
    await assert.rejects(a.newStream(b1.peerId, '/ipfs/id/1.0.0'), { name: 'DialBackoffError' })
    assert.equal(dials(), before)
    // b back, dialling a: the backoff is over at once
    const b2 = await host(key, [addr], [a.addresses()[0]], { privateKey: identity })
    await until(() => a.peers().some(p => p.id === b2.peerId), 'b back')
    await b2.hangUp(a.peerId)
    await until(() => a.peers().length === 0, 'b hung up')
    const stream = await a.newStream(b2.peerId, '/ipfs/id/1.0.0')
    stream.abort(new Error('done'))
  })

  it('a dial backoff is timed on the monotonic clock: a wall clock stepped a day ahead (NTP, a resume) does not end it', async function () {
    const key = createNetworkKey()
    const a = await host(key, [memAddr()], [], { dialBackoffMs: 600_000 })
    const b = await host(key, [memAddr()], [a.addresses()[0]])
    await until(() => a.peers().some(p => p.id === b.peerId && p.addresses.length > 0), 'b joined')
    await b.stop()
    await until(() => a.peers().length === 0, 'b gone')
    await until(async () => await a.newStream(b.peerId, '/ipfs/id/1.0.0').then(() => false, (err: Error) => err.name !== 'DialBackoffError'), 'a dial to b failed', 200)
    const wall = Date.now
    Date.now = () => wall.call(Date) + 24 * 3600_000
    try {
      await assert.rejects(a.newStream(b.peerId, '/ipfs/id/1.0.0'), { name: 'DialBackoffError' })
    } finally {
      Date.now = wall
    }
  })

  it('failed dials are remembered for the latest dialFailuresKept peers, past it while they back off: none is dialled before its backoff ends (fails on the old code: the oldest forgotten and dialled again at once), and beyond DIAL_FAILURES_HELD times the bound the oldest is forgotten', async function () {
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const a = await host(createNetworkKey(), [memAddr()], [], { dialFailuresKept: 2, dialBackoffMs: 600_000 })
    // members heard of at addresses nobody listens on (gone for good)
    const gone = await Promise.all(Array.from({ length: 2 * DIAL_FAILURES_HELD + 1 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    const backingOff = async (id: string): Promise<boolean> => await a.newStream(id, '/ipfs/id/1.0.0').then(s => { s.abort(new Error('done')); return false }, (err: Error) => err.name === 'DialBackoffError')
    const fail = async (id: string): Promise<void> => {
      await a.remember([{ id, addrs: [memAddr()] }])
      // its dial failed (the one remember() started, or this one): backing off now
      await until(async () => await backingOff(id), 'a dial to a gone member failed', 20)
    }
    const sum = (r: Record<string, number>): number => Object.values(r).reduce((x, y) => x + y, 0)
    for (const id of gone.slice(0, 3)) await fail(id)
    let before = sum(a.traffic().dials)
    for (const id of gone.slice(0, 3)) assert.equal(await backingOff(id), true, 'still backing off')
    assert.equal(sum(a.traffic().dials), before, 'held back: no dial')
    // the bound on memory: beyond DIAL_FAILURES_HELD times dialFailuresKept, the oldest goes
    for (const id of gone.slice(3, 2 * DIAL_FAILURES_HELD)) await fail(id)
    before = sum(a.traffic().dials)
    assert.equal(await backingOff(gone[0]), true, 'kept up to the bound')
    assert.equal(sum(a.traffic().dials), before, 'held back: no dial')
    await fail(gone[2 * DIAL_FAILURES_HELD])
    before = sum(a.traffic().dials)
    assert.equal(await backingOff(gone[1]), true)
    assert.equal(await backingOff(gone[0]), false, 'the oldest failure was forgotten past the bound')
    assert.ok(sum(a.traffic().dials) > before, 'the forgotten one was dialled again')
  })

  it('past dialFailuresKept, a failed dial whose backoff is over is forgotten before an older one still backing off (review32c: no case had a backoff over)', async function () {
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    // long enough that no stall of a loaded machine outlasts the doubled one below, short enough to wait out once
    const backoffMs = 5_000
    const a = await host(createNetworkKey(), [memAddr()], [], { dialFailuresKept: 2, dialBackoffMs: backoffMs })
    const [old, expired, third] = await Promise.all(Array.from({ length: 3 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    /** The backoff (s) a dial to `id` meets now, or undefined when it was dialled (and failed: its backoff set anew). */
    const backoffOf = async (id: string): Promise<number | undefined> => await a.newStream(id, '/ipfs/id/1.0.0').then(s => { s.abort(new Error('done')); throw new Error(`${id} answered`) }, (err: Error) => {
      if (err.name !== 'DialBackoffError') return undefined
      const m = /backing off ([\d.]+) s/.exec(err.message)
      assert.ok(m !== null, err.message)
      return Number(m[1])
    })
    const fail = async (id: string): Promise<number> => {
      await a.remember([{ id, addrs: [memAddr()] }])
      let s: number | undefined
      await until(async () => (s = await backoffOf(id)) !== undefined, 'a dial to a gone member failed', 20)
      return s!
    }
    // the older one fails twice: backing off twice as long, entered again (the order is the failures')
    assert.equal(await fail(old), backoffMs / 1000)
    let again: number | undefined
    await until(async () => (again = await backoffOf(old)) === 2 * backoffMs / 1000, `${old}'s backoff over, dialled again and failed`, 100)
    assert.equal(again, 2 * backoffMs / 1000)
    // the newer one fails once: its backoff over before the older one's
    const failedAt = Date.now()
    assert.equal(await fail(expired), backoffMs / 1000)
    await until(() => Date.now() > failedAt + backoffMs, 'the newer one\'s backoff over', 100)
    // a third failure past the bound of 2: the one whose backoff is over goes, not the older one
    await fail(third)
    assert.equal(await backoffOf(old), 2 * backoffMs / 1000, 'the older one, still backing off, kept')
    // the forgotten one is dialled (its backoff over either way), fails, and backs off anew: the
    // first backoff, not the doubled one it would have had, remembered
    assert.equal(await backoffOf(expired), undefined)
    assert.equal(await backoffOf(expired), backoffMs / 1000, 'the expired one was forgotten')
  })

  it('NEIGHBOUR_TAG_VALUE is a tag value libp2p\'s peer store takes', async function () {
    const node = await createLibp2p({ transports: [memory()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    teardown.push(async () => { await node.stop() })
    const other = await generateKeyPair('Ed25519')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const id = peerIdFromPrivateKey(other)
    await node.peerStore.merge(id, { tags: { [NEIGHBOUR_TAG]: { value: NEIGHBOUR_TAG_VALUE } } })
    assert.equal((await node.peerStore.get(id)).tags.get(NEIGHBOUR_TAG)?.value, NEIGHBOUR_TAG_VALUE)
  })

  it('host emits peer:disconnect on hangUp and host.stop() is idempotent', async function () {
    const hosts = await cluster(2)
    await until(fullyMeshed(hosts), 'connected')
    const gone: string[] = []
    hosts[0].addEventListener('peer:disconnect', e => { gone.push(e.detail) })
    await hosts[0].hangUp(hosts[1].peerId)
    await until(() => gone.includes(hosts[1].peerId), 'disconnect event')
    await hosts[1].stop()
    await hosts[1].stop()
  })

  it('pingIntervalMs(): 30 s for a few connections; beyond, what keeps a host\'s pings within their budget, up to the max', function () {
    assert.equal(pingIntervalMs(4), PING_INTERVAL_MS)
    const at64 = pingIntervalMs(64)
    assert.ok(at64 > PING_INTERVAL_MS && at64 < PING_INTERVAL_MAX_MS)
    assert.ok(64 * PING_ROUND_SENT_BYTES / (at64 / 1000) <= PING_BUDGET_BYTES_PER_S)
    assert.equal(pingIntervalMs(10_000), PING_INTERVAL_MAX_MS)
  })

  it('a host pings its connections (their latency is known) and closes one whose peer stops answering pings', async function () {
    // the first ping of a connection comes within PING_INTERVAL_MS, a failed one after the ping timeout
    this.timeout(240_000)
    const [a, b] = await cluster(2)
    await until(() => a.peers().some(p => p.id === b.peerId && typeof p.latencyMs === 'number'), 'a pinged b', 500)
    // b's ping service replaced by one that reads and never answers: a live link a cannot tell from a dead one
    await b.unhandle('/ipfs/ping/1.0.0')
    await b.handle('/ipfs/ping/1.0.0', async (stream) => { for await (const _ of stream) { /* never answered */ } })
    const gone: string[] = []
    a.addEventListener('peer:disconnect', e => { gone.push(e.detail) })
    await until(() => gone.includes(b.peerId), 'a closed its connection to b', 500)
  })

  it('host redials a member that dropped and comes back', async function () {
    const key = createNetworkKey()
    const identity = await generateKeyPair('Ed25519')
    const addr = memAddr()
    const a = await host(key, [memAddr()])
    const b1 = await createHost({ privateKey: identity, networkKey: key, listen: [addr], join: [a.addresses()[0]] })
    teardown.push(async () => { await b1.stop() })
    // identified: a knows b's listen address, not only the connection's
    await until(() => a.peers().some(p => p.id === b1.peerId && p.addresses.includes(`${addr}/p2p/${b1.peerId}`)), 'b joined')
    await b1.stop()
    await until(() => a.peers().length === 0, 'b gone')
    const b2 = await host(key, [addr], [], { privateKey: identity })
    await until(() => a.peers().some(p => p.id === b2.peerId), 'a redialled b')
  })

  it('createHost({ allowFrom }) refuses inbound connections from outside the ranges', async function () {
    const key = createNetworkKey()
    const a = await host(key, ['/ip4/127.0.0.1/tcp/0'], [], { allowFrom: ['10.0.0.0/8'] })
    const b = await host(key, ['/ip4/127.0.0.1/tcp/0'])
    await assert.rejects(b.dial(a.addresses()[0]), (err: any) => err.name !== 'NetworkKeyMismatchError')
    const c = await host(key, ['/ip4/127.0.0.1/tcp/0'], [], { allowFrom: ['127.0.0.0/8', 'fd00::/8'] })
    await b.dial(c.addresses()[0])
    assert.ok(c.peers().some(p => p.id === b.peerId) || b.peers().some(p => p.id === c.peerId))
  })

  it('parseCidr()/cidrContains() match IPv4, IPv6 and IPv4-mapped addresses', function () {
    assert.ok(cidrContains(parseCidr('10.0.0.0/8'), '10.200.3.4'))
    assert.ok(!cidrContains(parseCidr('10.0.0.0/8'), '11.0.0.1'))
    assert.ok(cidrContains(parseCidr('100.64.0.0/10'), '100.127.255.255'))
    assert.ok(!cidrContains(parseCidr('100.64.0.0/10'), '100.128.0.0'))
    assert.ok(cidrContains(parseCidr('172.16.0.0/12'), '::ffff:172.31.0.1'))
    assert.ok(cidrContains(parseCidr('fd00::/8'), 'fd12:3456::1'))
    assert.ok(!cidrContains(parseCidr('fd00::/8'), 'fe80::1'))
    assert.ok(cidrContains(parseCidr('192.168.1.7'), '192.168.1.7'))
    assert.ok(!cidrContains(parseCidr('192.168.1.7'), '192.168.1.8'))
    assert.ok(cidrContains(parseCidr('0.0.0.0/0'), '8.8.8.8'))
    for (const bad of ['10.0.0.0/33', '300.1.1.1/8', 'nonsense', 'fd00::/129', '1:2:3']) {
      assert.throws(() => parseCidr(bad), { name: 'UsageError' }, bad)
    }
  })
})
