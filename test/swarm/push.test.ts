import assert from 'node:assert/strict'
import { PROTOCOL_ORIGINS, WrongBlockError } from '../../swarm/index.ts'
import { Net, block, randomBytes } from './net.ts'

describe('swarm.push', function () {
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  it('swarm.push([{ cid, bytes, to: [a, b, c] }]) chains the block: all store and ACK, the writer sends it once', async () => {
    const w = await net.node()
    const [a, b, c] = [await net.node(), await net.node(), await net.node()]
    await net.mesh()
    const bytes = randomBytes(512 * 1024, 21)
    const cid = await block(bytes)
    const heard: string[] = []
    const acks = await w.swarm.push([{ cid, bytes, to: [a.id, b.id, c.id] }], { onAck: (_cid, peer) => heard.push(peer) })
    assert.deepEqual([...(acks.get(cid.toString()) ?? [])].sort(), [a.id, b.id, c.id].sort())
    assert.deepEqual(heard.sort(), [a.id, b.id, c.id].sort())
    for (const h of [a, b, c]) assert.deepEqual(h.store.map.get(cid.toString()), bytes)
    // the writer uploaded the block once (plus framing), to one peer only
    const sent = w.swarm.stats().bytesSent
    assert.ok(sent >= bytes.byteLength && sent < bytes.byteLength * 1.05, `writer sent ${sent} bytes for a ${bytes.byteLength}-byte block`)
    const receivers = [a, b, c].filter(h => (w.swarm.stats().peers[h.id]?.sent ?? 0) > 1000)
    assert.equal(receivers.length, 1)
    // and every holder but the last forwarded it once
    const forwarded = [a, b, c].map(h => h.swarm.stats().bytesSent).sort((x, y) => x - y)
    assert.ok(forwarded[0] < 10_000, 'the last holder forwards nothing')
    assert.ok(forwarded[1] < bytes.byteLength * 1.05 && forwarded[2] < bytes.byteLength * 1.05)
  })

  it('with their sinks\' own check, every holder of a chain has the block checked there once, then stores, ACKs and forwards it', async () => {
    const checks = new Map<string, number>()
    const holder = async (): Promise<Awaited<ReturnType<Net['node']>>> => {
      const n: { id?: string } = {}
      const node = await net.node({}, undefined, async (cid, bytes) => {
        checks.set(n.id!, (checks.get(n.id!) ?? 0) + 1)
        return (await block(bytes)).equals(cid)
      })
      n.id = node.id
      return node
    }
    const w = await net.node()
    const [a, b, c] = [await holder(), await holder(), await holder()]
    await net.mesh()
    const bytes = randomBytes(300 * 1024, 22)
    const cid = await block(bytes)
    const acks = await w.swarm.push([{ cid, bytes, to: [a.id, b.id, c.id] }])
    assert.deepEqual([...(acks.get(cid.toString()) ?? [])].sort(), [a.id, b.id, c.id].sort())
    for (const h of [a, b, c]) {
      assert.deepEqual(h.store.map.get(cid.toString()), bytes)
      assert.equal(checks.get(h.id), 1)
    }
  })

  it('swarm.push(deliveries) of many blocks spreads the forwarding over the holders', async () => {
    const w = await net.node()
    const hs = [await net.node(), await net.node(), await net.node()]
    await net.mesh()
    const deliveries = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const bytes = randomBytes(32 * 1024, 40 + i)
      return { cid: await block(bytes), bytes, to: hs.map(h => h.id) }
    }))
    const acks = await w.swarm.push(deliveries)
    for (const d of deliveries) {
      assert.equal(acks.get(d.cid.toString())?.length, 3)
      for (const h of hs) assert.deepEqual(h.store.map.get(d.cid.toString()), d.bytes)
    }
    for (const h of hs) assert.ok(h.swarm.stats().bytesSent > 4 * 32 * 1024, 'every holder took a share of the forwarding')
  })

  it('swarm.push routes around a holder that is gone', async () => {
    const w = await net.node()
    const [a, b, c] = [await net.node(), await net.node(), await net.node()]
    await net.mesh()
    await b.swarm.stop() // b refuses the protocol: a must forward to c directly
    const bytes = randomBytes(100_000, 61)
    const cid = await block(bytes)
    const acks = await w.swarm.push([{ cid, bytes, to: [a.id, b.id, c.id] }])
    assert.deepEqual([...(acks.get(cid.toString()) ?? [])].sort(), [a.id, c.id].sort())
    assert.ok(c.store.map.has(cid.toString()))
    assert.ok(!b.store.map.has(cid.toString()))
  })

  it('swarm.push rejects a delivery whose bytes do not match its CID, sending nothing', async () => {
    const [w, a] = [await net.node(), await net.node()]
    await net.mesh()
    const cid = await block(randomBytes(1000, 1))
    await assert.rejects(w.swarm.push([{ cid, bytes: randomBytes(1000, 2), to: [a.id] }]), (err: Error) => err.name === WrongBlockError.name)
    assert.equal(a.store.puts, 0)
    assert.equal(w.swarm.stats().bytesSent, 0)
  })

  it('swarm.push([{ to: [] }]) resolves with no holders', async () => {
    const w = await net.node()
    const bytes = randomBytes(100, 3)
    const cid = await block(bytes)
    const acks = await w.swarm.push([{ cid, bytes, to: [w.id] }])
    assert.deepEqual(acks.get(cid.toString()), [])
  })

  // a holder learns whose block a hop forwarded (node/keeper/release.ts: who may have it deleted)
  it('a chained push names its origin to every hop: each holder hears the writer, the first from the writer, the rest from a hop', async () => {
    const w = await net.node()
    const [a, b, c] = [await net.node(), await net.node(), await net.node()]
    await net.mesh()
    const bytes = randomBytes(64 * 1024, 71)
    const cid = await block(bytes)
    await w.swarm.push([{ cid, bytes, to: [a.id, b.id, c.id] }])
    const heard = [a, b, c].map(h => h.store.pushed.get(cid.toString()))
    for (const h of heard) assert.equal(h?.origin, w.id, `origin ${JSON.stringify(h)}`)
    assert.equal(heard.filter(h => h?.from === w.id).length, 1, 'one holder had it from the writer')
    // a relay pushes another's block: its origin is that writer
    const bytes2 = randomBytes(64 * 1024, 72)
    const cid2 = await block(bytes2)
    await a.swarm.push([{ cid: cid2, bytes: bytes2, to: [b.id] }], { origin: w.id })
    assert.deepEqual(b.store.pushed.get(cid2.toString()), { from: a.id, origin: w.id })
  })

  it('a holder that does not speak PROTOCOL_ORIGINS (an older host) gets plain pushes, and forwards them', async () => {
    const w = await net.node()
    const old = await net.node()
    const [a, b] = [await net.node(), await net.node()]
    // an older host: no PROTOCOL_ORIGINS (it would take a PUSH_FROM for a violation)
    await old.libp2p.unhandle(PROTOCOL_ORIGINS)
    await net.mesh()
    const bytes = randomBytes(64 * 1024, 73)
    const cid = await block(bytes)
    const acks = await w.swarm.push([{ cid, bytes, to: [old.id, a.id, b.id] }])
    assert.deepEqual([...(acks.get(cid.toString()) ?? [])].sort(), [old.id, a.id, b.id].sort(), 'every holder stored and acknowledged it')
    const o = old.store.pushed.get(cid.toString())
    assert.equal(o?.origin, undefined, `no origin sent to the older host: ${JSON.stringify(o)}`)
    assert.ok(o?.from !== undefined)
    assert.equal(w.libp2p.getConnections(old.libp2p.peerId).length, 1, 'the older host is still connected')
  })
})
