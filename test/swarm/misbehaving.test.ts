import assert from 'node:assert/strict'
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { MAX_CIDS_PER_MESSAGE, MAX_MESSAGE_BYTES, MAX_WANTS_PER_PEER, PROTOCOL } from '../../swarm/index.ts'
import { BLOCK, FrameDecoder, WANT, decode, encode } from '../../swarm/protocol.ts'
import { Net, block, closed, randomBytes } from './net.ts'
import type { TestNode } from './net.ts'
import { until } from '../../harness/cluster.ts'

describe('swarm with misbehaving peers', function () {
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  /** A bare peer pushes `a` a 100 kB block one bit off its CID, on a stream of its own. */
  async function pushOneBitOff (a: TestNode): Promise<{ liar: Awaited<ReturnType<Net['bare']>>, cid: Awaited<ReturnType<typeof block>>, stream: Stream }> {
    const liar = await net.bare()
    await liar.dial(a.libp2p.getMultiaddrs()[0])
    const bytes = randomBytes(100_000, 1)
    const cid = await block(bytes)
    const corrupt = Uint8Array.from(bytes)
    corrupt[77_777] ^= 1
    const stream = await liar.dialProtocol(a.libp2p.peerId, PROTOCOL)
    stream.send(encode({ type: 5, cid, hops: [], bytes: corrupt }))
    return { liar, cid, stream }
  }

  it('swarm.pull drops a peer that serves a wrong block and gets the block from another', async () => {
    const a = await net.node()
    const good = await net.node()
    const liar = await net.bare()
    // the liar answers every WANT with garbage under the wanted CID
    await liar.handle(PROTOCOL, (stream: Stream) => {
      const frames = new FrameDecoder()
      stream.addEventListener('message', (evt) => {
        for (const body of frames.push(evt.data)) {
          const msg = decode(body)
          if (msg.type !== WANT) continue
          for (const cid of msg.cids) stream.send(encode({ type: BLOCK, cid, bytes: randomBytes(1000, 99) }))
        }
      })
    })
    await net.mesh()
    await a.libp2p.dial(liar.getMultiaddrs()[0])
    const bytes = randomBytes(1000, 42)
    const cid = await block(bytes)
    good.store.map.set(cid.toString(), bytes)
    // the liar comes first, so it is asked first
    const got = await a.swarm.pull(cid, [liar.peerId.toString(), good.id])
    assert.deepEqual(got, bytes)
    assert.equal(a.libp2p.getConnections(liar.peerId).length, 0, 'the liar was disconnected')
    assert.ok(!a.store.map.has(cid.toString()), 'pull stores nothing itself')
    // and it is not asked again
    const other = randomBytes(500, 43)
    const cid2 = await block(other)
    good.store.map.set(cid2.toString(), other)
    assert.deepEqual(await a.swarm.pull(cid2, [liar.peerId.toString(), good.id]), other)
    assert.equal(a.libp2p.getConnections(liar.peerId).length, 0)
  })

  it('a holder whose block source says it verifies (so serving does not hash again) but holds a wrong block: the reader still refuses it and gets it elsewhere', async () => {
    const a = await net.node()
    const rotten = await net.node()
    const good = await net.node()
    await net.mesh()
    // the source's promise (BlockSource.verifies) is what a store that hashes on reading makes;
    // this one breaks it: the reader's own check on arrival is what stands
    Object.assign(rotten.store, { verifies: true })
    const bytes = randomBytes(100_000, 44)
    const cid = await block(bytes)
    rotten.store.map.set(cid.toString(), randomBytes(100_000, 45))
    good.store.map.set(cid.toString(), bytes)
    const got = await a.swarm.pull(cid, [rotten.id, good.id])
    assert.deepEqual(got, bytes)
    assert.ok((a.swarm.stats().peers[good.id]?.received ?? 0) >= bytes.byteLength, 'the block came from the good holder')
  })

  it('a PUSH whose bytes do not match its CID is not stored and its sender is dropped', async () => {
    const a = await net.node()
    const liar = await net.bare()
    await liar.dial(a.libp2p.getMultiaddrs()[0])
    const cid = await block(randomBytes(1000, 1))
    const stream = await liar.dialProtocol(a.libp2p.peerId, PROTOCOL)
    stream.send(encode({ type: 5, cid, hops: [], bytes: randomBytes(1000, 2) }))
    await closed(stream)
    assert.equal(a.store.puts, 0)
  })

  it('with the sink\'s own check, a PUSH whose bytes do not match its CID is checked there, not stored, and its sender dropped', async () => {
    const checked: string[] = []
    const a = await net.node({}, undefined, async (cid, bytes) => {
      checked.push(cid.toString())
      return (await block(bytes)).equals(cid)
    })
    const { liar, cid, stream } = await pushOneBitOff(a)
    await closed(stream)
    assert.deepEqual(checked, [cid.toString()])
    assert.equal(a.store.puts, 0)
    await until('a hangs up on the liar', () => a.libp2p.getConnections(liar.peerId).length === 0, 10_000)
  })

  it('with the sink\'s own check, a liar that pushes a wrong block and closes its stream before the check answers is still dropped (review35b)', async () => {
    const box: { a?: TestNode } = {}
    const a = await net.node({}, undefined, async () => {
      // a slow check (a busy threadpool): it answers once the pusher's stream is gone here
      await until('the serving stream gone', () => box.a!.libp2p.getConnections().flatMap(c => c.streams).filter(s => s.protocol === PROTOCOL && s.direction === 'inbound').length === 0, 10_000)
      return false
    })
    box.a = a
    const { liar, cid, stream } = await pushOneBitOff(a)
    await stream.close()
    await until('a hangs up on the liar', () => a.libp2p.getConnections(liar.peerId).length === 0, 10_000)
    assert.equal(a.store.puts, 0)
  })

  it('a PUSH the sink\'s check refuses is not stored, acknowledged or forwarded, whatever the swarm would say of it', async () => {
    // the sink's check is the one that decides: the swarm does not store a block it refused
    const b = await net.node()
    const a = await net.node({}, undefined, async () => false)
    const w = await net.node()
    await net.mesh()
    const bytes = randomBytes(5000, 3)
    const cid = await block(bytes)
    const acks = await w.swarm.push([{ cid, bytes, to: [a.id, b.id] }]).catch(() => new Map<string, string[]>())
    assert.equal(a.store.puts, 0)
    assert.ok(!(acks.get(cid.toString()) ?? []).includes(a.id), 'no ACK from the refusing holder')
  })

  for (const [what, frame] of [
    ['an oversized frame length', Uint8Array.from([0xff, 0xff, 0xff, 0x7f])],
    ['an over-long length prefix', Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x01])],
    ['an unknown message type', Uint8Array.from([2, 99, 0])],
    ['a truncated WANT', Uint8Array.from([4, WANT, 0, 5, 36])],
    ['a WANT with too many CIDs', Uint8Array.from([4, WANT, 0, 0x81, 0x10])],
    ['a CID that is not one', Uint8Array.from([6, BLOCK, 3, 1, 2, 3, 0])],
    ['a frame of length zero', Uint8Array.from([0])]
  ] as const) {
    it(`the serving side closes the stream on ${what} and keeps serving others`, async () => {
      const a = await net.node()
      const b = await net.node()
      const bad = await net.bare()
      await net.mesh()
      await bad.dial(a.libp2p.getMultiaddrs()[0])
      const stream = await bad.dialProtocol(a.libp2p.peerId, PROTOCOL)
      stream.send(frame)
      await closed(stream)
      const bytes = randomBytes(2000, 8)
      const cid = await block(bytes)
      a.store.map.set(cid.toString(), bytes)
      assert.deepEqual(await b.swarm.pull(cid, [a.id]), bytes)
    })
  }

  it('a never-ending frame is cut off at MAX_MESSAGE_BYTES and the stream closed', async () => {
    const a = await net.node()
    const bad = await net.bare()
    await bad.dial(a.libp2p.getMultiaddrs()[0])
    const stream = await bad.dialProtocol(a.libp2p.peerId, PROTOCOL)
    // announce a maximal frame of garbage, then keep sending
    const header = Uint8Array.from([(MAX_MESSAGE_BYTES & 0x7f) | 0x80, ((MAX_MESSAGE_BYTES >> 7) & 0x7f) | 0x80, MAX_MESSAGE_BYTES >> 14])
    stream.send(header)
    let sent = 0
    const chunk = new Uint8Array(64 * 1024).fill(0xee)
    while (stream.status === 'open' && sent < 64 * 1024 * 1024) {
      try {
        if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(30_000) })
      } catch { break }
      sent += chunk.byteLength
    }
    await closed(stream)
    assert.ok(sent < 32 * 1024 * 1024, `the server read ${sent} bytes before closing`)
  })

  it('a WANT flood is cut off at MAX_WANTS_PER_PEER', async () => {
    const a = await net.node()
    const bad = await net.bare()
    await bad.dial(a.libp2p.getMultiaddrs()[0])
    const stream = await bad.dialProtocol(a.libp2p.peerId, PROTOCOL)
    // a burst of distinct wants, far more than a peer may have queued, in one write
    let maxQueued = 0
    const watch = setInterval(() => { maxQueued = Math.max(maxQueued, a.swarm.stats().wantsQueued) }, 1)
    const rounds = 20
    const burst = new Uint8ArrayList()
    for (let round = 0; round < rounds; round++) {
      const cids = await Promise.all(Array.from({ length: MAX_CIDS_PER_MESSAGE }, async (_, i) => await block(new Uint8Array([round, i >> 8, i & 0xff]))))
      burst.append(encode({ type: WANT, cids, haveOnly: false }))
    }
    try {
      stream.send(burst)
      await closed(stream)
    } finally {
      clearInterval(watch)
    }
    assert.ok(maxQueued <= MAX_WANTS_PER_PEER, `${maxQueued} wants were queued`)
    assert.equal(a.swarm.stats().wantsQueued, 0, 'the closed stream\'s wants were dropped')
  })

  it('frames split across many small writes are reassembled', async () => {
    const a = await net.node()
    const bad = await net.bare()
    await bad.dial(a.libp2p.getMultiaddrs()[0])
    const bytes = randomBytes(3000, 12)
    const cid = await block(bytes)
    a.store.map.set(cid.toString(), bytes)
    const stream = await bad.dialProtocol(a.libp2p.peerId, PROTOCOL)
    const frame = encode({ type: WANT, cids: [cid], haveOnly: false }).subarray()
    for (const b of frame) stream.send(Uint8Array.from([b]))
    const frames = new FrameDecoder()
    const reply = await new Promise<Uint8Array>((resolve) => {
      const got = new Uint8ArrayList()
      stream.addEventListener('message', (evt) => {
        got.append(evt.data)
        const out = frames.push(evt.data)
        if (out.length > 0) resolve(out[0])
      })
    })
    const msg = decode(reply)
    assert.equal(msg.type, BLOCK)
    assert.deepEqual(msg.type === BLOCK ? msg.bytes : undefined, bytes)
  })
})
