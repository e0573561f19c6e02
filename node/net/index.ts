// node/net — this host on the network (DESIGN.md §3, §5, §7): the libp2p host (the only file
// that builds libp2p: tcp, noise, yamux, pnet, kad-dht, identify, ping), the Kademlia key
// space, membership and failure detection, presence (offline or not), uplinks, replication of the op log (sync), notices between hosts, keys and op signing,
// traffic accounting.
//
// Contract:
//  - Knows peers, streams and messages; knows nothing of files or placement policy. The data
//    path (node/data) is below it; the keeper (node/keeper) and the daemon (node/cli) are above.
//  - node's own protocols (ops sync, peer exchange, membership and space notices, uplinks, and
//    the keeper's custody and place) all speak rpc.ts: length-prefixed dag-cbor envelopes, a
//    hard bound per message and protocol, a timeout on silence, an AbortSignal on every call,
//    errors on the wire by stable name. The swarm keeps its own binary codec.
//  - Every message from a peer is bounded and validated before use: a malformed or oversized
//    message closes that stream with a typed error, never the host.
//  - Ops spread over gossipsub (host.gossip, on a topic private to the network; sync.ts) with
//    direct pushes only to peers not subscribed; a host keeps at most its bound of connections
//    (host.ts). Notices to every peer still go through rpc.ts's broadcast(): the seam where
//    gossip could replace direct streams for them too (issue 14, item 2).
//  - Every async call takes AbortOptions; a stopped part refuses new work and ends what runs.
//  - Keys: a host's identity is an Ed25519 key; every op is signed by its author and verified
//    before it enters the log; a peer without the network key cannot connect (pnet).
export { DEFAULT_FAILURE_TIMEOUT_MS, DEFAULT_REPAIR_DELAY_MS, repairDelay, MEMBERSHIP, MEMBERSHIP_PROTOCOL, Membership, MembershipNoticeError, probeMember, probePeer } from './failure.ts'
export { MEMBERS, MEMBERS_GOSSIP_TAG, MEMBERS_PROTOCOL, MEMBER_PUSHES, MEMBER_PUSH_PROTOCOL, MEMBER_EXPIRE_MS, MEMBER_MAX_SKEW_MS, MEMBER_OFFER_MS, MEMBER_PULL_MIN_MEMBERS, MEMBER_SYNC_KEYS_MS, MAX_MEMBERS_INCOMING_BYTES, MAX_SYNC_ANSWER_BYTES, SYNC_KEY_BYTES, SYNC_MAX_MESSAGES, memberAuthor, memberSubject, peerSyncKey, pullMembers, MEMBER_REFRESH_MS, MEMBER_REFRESH_PER_MEMBER_MS, MAX_CAPACITY_CLASS, memberExpireMs, memberRefreshMs, MAX_MEMBERS, MemberRecordError, MemberTable, MembersBusyError, NEIGHBOURS, validCapacityClass } from './members.ts'
export type { MemberRecord, MemberTableInit, MembersRequest } from './members.ts'
export { TABLE_ANSWER_MIN_INTERVAL_MS, TABLE_SYNC_MS, startMemberService } from './member-service.ts'
export { ALL_CALLS_BURST, ALL_CALLS_REFILL_MS, ALL_CALLS_RESERVE, BUDGETS_KEPT, CALL_BURST, CALL_REFILL_MS, MemberGate, PUSH_BURST, PUSH_REFILL_MS, PUSH_REFUSED_COST, PeerBudgets, RESERVE_DEPTHS, RESERVE_QUIET_MS, STANDING_MS, TABLE_CALL_COST, TablePacing, callCost, reserveDepth } from './member-gate.ts'
export type { MemberGateCounts } from './member-gate.ts'
export { MEMBERS_SINCE_FILE, MEMBERS_SINCE_SAVE_MS, MEMBERS_SINCE_AGES_SAVE_MS, keepMembersSince, loadMembersSince, saveMembersSince } from './members-since.ts'
export { startAntiEntropy } from './anti-entropy.ts'
export type { AntiEntropy } from './anti-entropy.ts'
export { FEATURES, FEATURE_CLAY, FEATURE_HOLD, FEATURE_KEPT_TREE, FEATURE_MEMBER_PULL, FEATURE_MULTIEXT, FEATURE_ORIGINS, FEATURE_PULL, FEATURE_PATTERN, FEATURE_PROTOCOL_PREFIX, FeatureBook, FeatureListError, MAX_FEATURES, MAX_FEATURE_CHARS, featureProtocol, featuresOfProtocols, parseFeatures } from './features.ts'
export type { FeatureSources } from './features.ts'
export type { MemberService } from './member-service.ts'
export type { MembershipInit, MembershipNotice } from './failure.ts'
export { DEFAULT_MAX_CONNECTIONS, DHT_PROTOCOL, FULL_MESH_PEERS, GOSSIP_D, GOSSIP_DHI, GOSSIP_DLAZY, GOSSIP_FACTOR, GOSSIP_HEARTBEAT_MS, GOSSIP_HISTORY_GOSSIP, GOSSIP_MAX_MESSAGE_BYTES, GOSSIP_MESH_OPTIONS, PING_BUDGET_BYTES_PER_S, PING_INTERVAL_MAX_MS, PING_INTERVAL_MS, PING_ROUND_SENT_BYTES, PEX, PEX_MAX_MESSAGE_BYTES, PEX_PROTOCOL, PeerExchangeError, LONG_LINK_MS, longLinkDelay, longLinkPool, REFUSED_NEIGHBOUR_MS, TRIM_GRACE_MS, createHost, IDENTIFIED_PEERS_MAX, neighbourCount, pingIntervalMs } from './host.ts'
export type { Gossip, GossipHandler, GossipVerdict, Host } from './host.ts'
export { idleDeadline } from './idle.ts'
export { createNetworkKey, formatNetworkKey, loadOrCreateIdentity, readNetworkKey, writeNetworkKey } from './keys.ts'
export { BadInviteError, DEFAULT_INVITE_VALID, INVITE_PREFIX, InviteExpiredError, MAX_INVITE_ADDRESSES, decodeInvite, encodeInvite, readInvite, inviteAddresses, parseInviteValidity } from './invite.ts'
export type { Invite } from './invite.ts'
export { Presence } from './presence.ts'
export { signerFor, verify } from './signing.ts'
export { SPACE, SPACE_PROTOCOL, SpaceNoticeError, SpaceNotices } from './space-notice.ts'
export { BYID_MAX_BYTES, HANDED_RECHECK_TRIES, HOLD, LACK_MAX_IDS, LACK_MAX_LIST, SERVED_WAIT_MS, HOLD_PROTOCOL, OPS, OPS_MAX_MESSAGE_BYTES, OPS_PROTOCOL, RBSR_FRAME_BYTES, SyncProtocolError, createSync, syncTrace } from './sync.ts'
export type { OpsPush, OpsReply, OpsRequest, Sync, SyncHost, SyncPhase } from './sync.ts'
export { UPLINK, UPLINK_PROTOCOL, UplinkProtocolError, startUplinks, uploadCap, parseRate } from './uplink.ts'
export {
  RPC_ERROR_REPLY_TIMEOUT_MS, RPC_KEPT_CALLER_IDLE_MS, RPC_KEPT_IDLE_MS, RPC_MAX_ERROR_MESSAGE_CHARS, RPC_MAX_ERROR_NAME_CHARS, RPC_MAX_MESSAGE_BYTES, RPC_MAX_NEXT, RPC_MIN_MESSAGE_BYTES,
  KeptCaller, RpcClosedError, RpcProtocolError, RpcRemoteError, RpcTimeoutError, RpcTooLargeError, RpcTooManyRepliesError,
  broadcast, call, decodeIncoming, decodeReply, defineProtocol, encodeCall, encodeError, encodeNext, encodeNotice, encodeOk, notify, remoteError, serve
} from './rpc.ts'
export type { CallContext, CallOptions, ErrorClass, KeptCallerInit, Incoming, NoticeContext, Reply, RpcDialer, RpcHandleOptions, RpcHandlers, RpcProtocol, RpcServer, ServeOptions } from './rpc.ts'
export type { UplinkBook } from './uplink.ts'
export { keyKadId, peerKadId, compareDistance, closest, targets, keeper, neighbours, ringNeighbours, KAD_ID_CACHE_ENTRIES } from './kad.ts'
export { OpHold } from './op-hold.ts'
export type { OpHoldSources } from './op-hold.ts'
