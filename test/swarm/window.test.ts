// Swarm streams grant their sender a receive window of STREAM_WINDOW_BYTES (swarm/channel.ts):
// yamux's 256 KiB window never grows where its keep-alive pings are off (darkfs's hosts), and a
// fragment of 256 KiB and its frame header did not fit in it. Real libp2p nodes on loopback TCP.
import assert from 'node:assert/strict'
import type { Libp2p, Stream } from '@libp2p/interface'
import { STREAM_WINDOW_BYTES } from '../../swarm/channel.ts'
import { PROTOCOL, PROTOCOL_ORIGINS, PROTOCOL_RANGES } from '../../swarm/index.ts'
import { Net, block, randomBytes } from './net.ts'
import { until } from '../../harness/cluster.ts'

/** The swarm streams of `node`'s connection to `peer` (yamux streams: their window fields are read). */
function swarmStreams (node: Libp2p, peer: Libp2p): Array<Stream & { recvWindow: number, sendWindowCapacity: number }> {
  return node.getConnections(peer.peerId).flatMap(c => c.streams)
    .filter(s => s.protocol === PROTOCOL || s.protocol === PROTOCOL_RANGES || s.protocol === PROTOCOL_ORIGINS) as any
}

describe('swarm stream windows (loopback TCP, yamux without keep-alive pings, as darkfs hosts run it)', function () {
  const net = new Net('tcp', { keepAlive: false })
  after(async () => { await net.stop() })

  it('a pull: the reader grants the holder STREAM_WINDOW_BYTES, and tells it of room only once half the window is used', async () => {
    const a = await net.node()
    const b = await net.node()
    await net.mesh()
    const blocks = await Promise.all(Array.from({ length: 13 }, async (_, i) => {
      const bytes = randomBytes(1024 * 1024, 10 + i)
      return { bytes, cid: await block(bytes) }
    }))
    for (const x of blocks) b.store.map.set(x.cid.toString(), x.bytes)
    // the first block opens the stream
    assert.deepEqual(await a.swarm.pull(blocks[0].cid, [b.id]), blocks[0].bytes)
    const mine = swarmStreams(a.libp2p, b.libp2p)
    assert.equal(mine.length, 1, 'the reader has one swarm stream to the holder')
    assert.equal(mine[0].recvWindow, STREAM_WINDOW_BYTES)
    // window updates the reader sends on it from now on (yamux frame type 1)
    const s = mine[0] as any
    const sendFrame = s.sendFrame
    let updates = 0
    s.sendFrame = (header: { type: number }, data?: unknown) => { if (header.type === 1) updates++; return sendFrame(header, data) }
    const rest = blocks.slice(1)
    const got = await a.swarm.pullAny(rest.map(x => x.cid), rest.length, [b.id])
    for (const x of rest) assert.deepEqual(got.get(x.cid.toString()), x.bytes)
    const moved = rest.length * 1024 * 1024
    assert.ok(updates > 0 && updates <= Math.ceil(moved / (STREAM_WINDOW_BYTES / 2)) + 1, `${updates} window updates for ${rest.length} MiB`)
    // the holder is never short of room: what it may send is what the reader has room for, over half the window
    await until('the holder and the reader agree on the room left', () => {
      const theirs = swarmStreams(b.libp2p, a.libp2p)
      return theirs.length === 1 && theirs[0].sendWindowCapacity === s.recvWindowCapacity
    })
    assert.ok(s.recvWindowCapacity > STREAM_WINDOW_BYTES / 2, `room left: ${s.recvWindowCapacity}`)
  })

  it('a push: the receiver grants the pusher STREAM_WINDOW_BYTES', async () => {
    const a = await net.node()
    const b = await net.node()
    await net.mesh()
    const bytes = randomBytes(1024 * 1024, 4)
    const cid = await block(bytes)
    const acks = await a.swarm.push([{ cid, bytes, to: [b.id] }])
    assert.deepEqual(acks.get(cid.toString()), [b.id])
    assert.deepEqual(b.store.map.get(cid.toString()), bytes)
    const theirs = swarmStreams(b.libp2p, a.libp2p)
    assert.ok(theirs.length > 0)
    for (const s of theirs) assert.equal(s.recvWindow, STREAM_WINDOW_BYTES)
    await until('the pusher may send what the receiver has room for, over half the window', () => {
      const mine = swarmStreams(a.libp2p, b.libp2p)
      return mine.length > 0 && mine.every(s => s.sendWindowCapacity > STREAM_WINDOW_BYTES / 2)
    })
  })
})
