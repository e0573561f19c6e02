// libp2p writes a peer's record in its peer store on every protocol stream opened, at both ends
// (connection.js: peerStore.merge(peer, { protocols: [protocol] }) "so the peer is registered
// with that protocol"): a lock, a read and protobuf decode of the record, its addresses parsed
// twice, an encode and a write, even when the record already lists the protocol and nothing
// changes. On six hosts in one process that was ~930 of ~25,000 CPU samples of a sequential
// write (a stream per custody round and space notice, issue 15), and it is on every stream of
// every workload.
//
// skipKnownProtocolMerges() wraps one peer store (an instance, not libp2p's classes): such a
// merge whose protocols the peer's record was seen to list, in a write of the record in the
// last PROTOCOL_MERGE_REFRESH_MS, returns that record without touching the store. What it
// skips changes nothing there (the merge would add no protocol, so no 'peer:update' either)
// but the record's `updated` time, which the store ages peers by (6 hours, MAX_PEER_AGE): a
// record is still written at least once per PROTOCOL_MERGE_REFRESH_MS per peer. What the host
// knows of a record comes from the records merge() returns and from every 'peer:update' (an
// identify's patch that drops a protocol included), and from 'self:peer:update' for this host's
// own record (registrar.handle() merges a protocol into it, unhandle() patches it out, and identify
// tells peers what it lists); delete() forgets a record.
import type { Peer, PeerId, PeerStore, PeerData, AbortOptions } from '@libp2p/interface'

/** Longest a record is trusted to list a protocol without a write of it (see above). */
export const PROTOCOL_MERGE_REFRESH_MS = 60_000
/** Peers whose records are remembered; past it the oldest is forgotten (its next merge writes). */
export const PROTOCOL_MERGE_PEERS_MAX = 4096

export interface ProtocolMergeStats {
  /** Merges of protocols the record listed, answered without a write. */
  skipped: number
  /** Merges that went to the store. */
  written: number
}

interface Known { protocols: Set<string>, peer: Peer, at: number }

/**
 * Answer peerStore.merge(peer, { protocols }) from the last record seen when it lists them all
 * (see the top of this file). `events` is libp2p's (its 'peer:update' events). Returns counters.
 */
export function skipKnownProtocolMerges (peerStore: PeerStore, events: Pick<EventTarget, 'addEventListener'>, now: () => number = Date.now): ProtocolMergeStats {
  const stats: ProtocolMergeStats = { skipped: 0, written: 0 }
  const known = new Map<string, Known>()
  const learn = (peer: Peer): void => {
    const key = peer.id.toString()
    known.delete(key)
    known.set(key, { protocols: new Set(peer.protocols), peer, at: now() })
    if (known.size > PROTOCOL_MERGE_PEERS_MAX) known.delete(known.keys().next().value as string)
  }
  const merge = peerStore.merge.bind(peerStore)
  peerStore.merge = async (id: PeerId, data: PeerData, options?: AbortOptions): Promise<Peer> => {
    const protocols = data.protocols
    if (protocols !== undefined && protocols.length > 0 && Object.keys(data).length === 1) {
      const k = known.get(id.toString())
      if (k !== undefined && now() - k.at < PROTOCOL_MERGE_REFRESH_MS && protocols.every(p => k.protocols.has(p))) {
        options?.signal?.throwIfAborted()
        stats.skipped++
        return k.peer
      }
    }
    stats.written++
    const peer = await merge(id, data, options)
    learn(peer)
    return peer
  }
  const del = peerStore.delete.bind(peerStore)
  peerStore.delete = async (id: PeerId, options?: AbortOptions): Promise<void> => {
    known.delete(id.toString())
    await del(id, options)
  }
  // every write that changed a record, whoever made it (an identify's patch, a save); this
  // host's own record too (libp2p's unhandle() patches it, and identify tells peers what it lists)
  for (const type of ['peer:update', 'self:peer:update']) {
    events.addEventListener(type, (evt) => { learn((evt as CustomEvent<{ peer: Peer }>).detail.peer) })
  }
  return stats
}
