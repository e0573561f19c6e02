// node/net — this host on the network (DESIGN.md §3, §5, §7): the libp2p host (the only file
// that builds libp2p: tcp, noise, yamux, pnet, kad-dht, identify, ping), the Kademlia key
// space, membership and failure detection, presence (offline or not), uplinks, provider
// records, replication of the op log (sync), notices between hosts, keys and op signing,
// traffic accounting.
//
// Contract:
//  - Knows peers, streams and messages; knows nothing of files or placement policy. The data
//    path (node/data) is below it; the keeper (node/keeper) and the daemon (node/cli) are above.
//  - Every message from a peer is bounded and validated before use: a malformed or oversized
//    message closes that stream with a typed error, never the host.
//  - Every async call takes AbortOptions; a stopped part refuses new work and ends what runs.
//  - Keys: a host's identity is an Ed25519 key; every op is signed by its author and verified
//    before it enters the log; a peer without the network key cannot connect (pnet).
export { Announcer } from './announce.ts'
export { Membership } from './failure.ts'
export type { MembershipInit } from './failure.ts'
export { DHT_PROTOCOL, FULL_MESH_PEERS, PEX_MAX_MESSAGE_BYTES, PEX_PROTOCOL, PeerExchangeError, createHost, decodePex, encodePex } from './host.ts'
export type { Host } from './host.ts'
export { idleDeadline } from './idle.ts'
export { createNetworkKey, formatNetworkKey, loadOrCreateIdentity, readNetworkKey, writeNetworkKey } from './keys.ts'
export { Presence } from './presence.ts'
export { signerFor, verify } from './signing.ts'
export { SpaceNotices } from './space-notice.ts'
export { MAX_MESSAGE_BYTES, OPS_PROTOCOL, SyncProtocolError, createSync, decodeSyncMessage, encodeSyncMessage } from './sync.ts'
export type { Sync, SyncHost } from './sync.ts'
export { startUplinks, uploadCap, parseRate } from './uplink.ts'
export type { UplinkBook } from './uplink.ts'
export { keyKadId, peerKadId, compareDistance, targets, keeper, KAD_ID_CACHE_ENTRIES } from './kad.ts'
