// Narrows a libp2p node to the SwarmComponents the swarm uses. The node is created elsewhere
// (node/host.ts owns createLibp2p); this file only adapts its methods to peer id strings.
import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { BlockSink, BlockSource } from './serve.ts'
import type { SwarmComponents } from './swarm.ts'

export function libp2pComponents (node: Libp2p, blocks: BlockSource, sink: BlockSink): SwarmComponents {
  return {
    peerId: node.peerId.toString(),
    handle: async (protocol, handler, opts) => { await node.handle(protocol, handler, opts) },
    unhandle: async (protocol) => { await node.unhandle(protocol) },
    dialProtocol: async (peer, protocol, opts) => await node.dialProtocol(peerIdFromString(peer), protocol, opts),
    hangUp: async (peer) => { await node.hangUp(peerIdFromString(peer)) },
    blocks,
    sink
  }
}
