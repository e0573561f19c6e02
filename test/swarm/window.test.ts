// Swarm streams grant their sender a receive window of STREAM_WINDOW_BYTES (swarm/channel.ts):
// yamux's 256 KiB window never grows where its keep-alive pings are off (darkfs's hosts), and a
// fragment of 256 KiB and its frame header did not fit in it. Real libp2p nodes on loopback TCP.
import assert from 'node:assert/strict'
import type { Libp2p, Stream } from '@libp2p/interface'
import { STREAM_WINDOW_BYTES } from '../../swarm/channel.ts'
import { PROTOCOL, PROTOCOL_RANGES } from '../../swarm/index.ts'
import { Net, block, randomBytes } from './net.ts'
import { until } from '../../harness/cluster.ts'

/** The swarm streams of `node`'s connection to `peer` (yamux streams: their window fields are read). */
function swarmStreams (node: Libp2p, peer: Libp2p): Array<Stream & { recvWindow: number, sendWindowCapacity: number }> {
  return node.getConnections(peer.peerId).flatMap(c => c.streams)
    .filter(s => s.protocol === PROTOCOL || s.protocol === PROTOCOL_RANGES) as any
}

describe('swarm stream windows (loopback TCP, yamux without keep-alive pings, as darkfs hosts run it)', function () {
  const net = new Net('tcp', { keepAlive: false })
  after(async () => { await net.stop() })

  it('a pull: the reader grants the holder STREAM_WINDOW_BYTES, the holder may send that much at once', async () => {
    const a = await net.node()
    const b = await net.node()
    await net.mesh()
    const bytes = randomBytes(1024 * 1024, 3)
    const cid = await block(bytes)
    b.store.map.set(cid.toString(), bytes)
    assert.deepEqual(await a.swarm.pull(cid, [b.id]), bytes)
    const mine = swarmStreams(a.libp2p, b.libp2p)
    assert.ok(mine.length > 0, 'the reader has a swarm stream to the holder')
    for (const s of mine) assert.equal(s.recvWindow, STREAM_WINDOW_BYTES)
    // the holder's side: its send window refilled to the grant once the block was read
    await until('the holder may send a whole window again', () => {
      const theirs = swarmStreams(b.libp2p, a.libp2p)
      return theirs.length > 0 && theirs.every(s => s.sendWindowCapacity === STREAM_WINDOW_BYTES)
    })
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
    for (const s of swarmStreams(b.libp2p, a.libp2p)) assert.equal(s.recvWindow, STREAM_WINDOW_BYTES)
    await until('the pusher may send a whole window again', () => {
      const mine = swarmStreams(a.libp2p, b.libp2p)
      return mine.length > 0 && mine.every(s => s.sendWindowCapacity === STREAM_WINDOW_BYTES)
    })
  })
})
