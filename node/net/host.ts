// The libp2p host (DESIGN.md §3, §7): the ONLY file that builds libp2p and its transports.
//
// One host = tcp (+ memory, for in-process tests) + pnet (mandatory) + noise + yamux + identify +
// ping + kad-dht on darkfs's own protocol id, so a darkfs network is its own private DHT that
// keeps VPN and loopback addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fd00::/8, 127/8).
//
// Membership is the libp2p peer set: a host dials its join addresses, then learns every other
// member from identify, the DHT and a tiny peer exchange (PEX_PROTOCOL, an rpc.ts call), and keeps a
// connection to every member of a small network (up to FULL_MESH_PEERS). A peer is live while
// its connection answers pings (darkfs's own monitor below, pingIntervalMs(): libp2p's pings
// every connection at a fixed interval, a cost per host that grows with its connections);
// dropped members are redialled with capped, jittered backoff for as long as they stay away
// (see redial()).
//
// Bounded connections (issue 14): a host keeps at most `maxConnections` (`--max-connections`,
// default DEFAULT_MAX_CONNECTIONS) open once things settle. While it knows no more members than
// that, it is the full mesh above. Beyond, it wants its neighbours (kad.ts neighbours(): its
// ring successor, the next member by kad id, which keeps the network connected at any bound, then
// the closest member of each k-bucket, then its XOR neighbourhood), tags them NEIGHBOUR_TAG in the
// peer store, dials them and redials only them; it never trims its ring predecessor (the member
// whose successor it is); the other connections (peers that want this host, transfers, DHT
// queries) are trimmed lowest tag value first (gossipsub tags its mesh peers too) once over the
// bound. libp2p's connection manager holds the hard cap a little above the bound (CONNECTION_SLACK): at its cap it refuses
// inbound connections, which would lock a joiner out of a full seed, and its pruner never closes
// a connection carrying gossipsub's long-lived streams, so it could not hold the bound itself.
//
// Gossip (issue 14): a gossipsub service on one topic private to the network (derived from its
// key: two networks never share one), StrictNoSign (below), the mesh degree at gossipsub's defaults
// (D 6, at most 12), messages up to GOSSIP_MAX_MESSAGE_BYTES. Its one user hands a validator
// (host.gossip.handle); a message it rejects lowers the forwarder's score (P4, GOSSIP_TOPIC_SCORE),
// and a peer that keeps sending such is graylisted.
//
// Gossip messages are not signed (StrictNoSign: no author, sequence number, key or signature;
// the message id is the SHA-256 of the data, so identical data is one message). Nothing that
// gossip carries takes gossipsub's word for who published it: an op is signed by its author and
// the tree checks that signature (or a signed descendant's by the same author: tree.ts
// authenticate) before it stores or applies it, a member record is signed by its subject
// (members.ts), and the peer a message came through is known from the connection itself (noise,
// inside the network's pnet: only members hold the key). StrictSign added an Ed25519 signature
// per message and a check per receiver, on top of the tree's own: with six hosts in one process,
// a tenth of the CPU of a `tar x` (signing, verifying, and making key objects for both). The
// topic's version is 2: a host of an older version (StrictSign, topic version 1) is not
// subscribed to it, so neither rejects the other's messages (and scores it down): sync.ts pushes
// ops directly to connected peers that are not subscribed.
//
// Features (features.ts): each feature this host understands is a protocol it handles
// (/darkfs/feature/<name>/<version>), registered before its first dial, so identify lists them to
// every peer it connects to; features(peer) is what a peer's last identify listed. Nothing is
// spoken on those protocols (a stream opened on one is closed at once). Hosts of older versions
// list none and ignore the ones they do not know: the channel needs no change they would refuse.
//
// A wrong network key is reported as such: libp2p only sees a broken handshake, so the pnet
// protector is wrapped to check that the first decrypted bytes are multistream-select's header
// (any libp2p peer sends it first); garbage there means the two sides' keys differ. Both sides
// then say so: dial() throws NetworkKeyMismatchError, and a 'peer:key-mismatch' event carries
// the remote address on either side.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { memory } from '@libp2p/memory'
import { preSharedKey } from '@libp2p/pnet'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { gossipsub, StrictNoSign, TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { createPeerScoreParams, createTopicScoreParams } from '@libp2p/gossipsub/score'
import { AbstractMessageStream, AdaptiveTimeout, byteStream } from '@libp2p/utils'
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { createTrafficMeter, dialCause } from './traffic.ts'
import type { TrafficSnapshot } from './traffic.ts'
import { noise } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { yamux } from '@chainsafe/libp2p-yamux'
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { KEEP_ALIVE, TimeoutError } from '@libp2p/interface'
import type { AbortOptions, Connection, ConnectionProtector, MessageStream, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { NetworkKeyMismatchError, UsageError } from '../errors.ts'
import { formatNetworkKey } from './keys.ts'
import { isListenFailure, listenError } from './listen.ts'
import { neighbours, ringNeighbours, targets } from './kad.ts'
import { cidrContains, parseCidr } from './cidr.ts'
import type { Cidr } from './cidr.ts'
import { RpcProtocolError, call, defineProtocol, serve } from './rpc.ts'
import { FEATURES, featureProtocol, featuresOfProtocols } from './features.ts'
import type { RpcDialer, RpcServer } from './rpc.ts'
import { logger } from '../log.ts'
import { anySignal } from '../abort.ts'
import { loopTimeSignal } from '../../swarm/index.ts'
import { forEachLimited } from '../pool.ts'
import { releasePnetCiphers, renewXsalsa20Views } from './xsalsa20.ts'
import { halfWindowYamux, inPlacePnetInbound, leanNoise, leanNoiseCrypto, pnetSend, skipUnheardEvents } from './lean-transport.ts'
import type { PnetSocketSide } from './lean-transport.ts'
import { accountExternalMemoryInHeapLimit } from './heap.ts'
import { skipKnownProtocolMerges } from './peer-protocols.ts'

// pnet's cipher must not die on a busy process's large writes (xsalsa20.ts): corrected before any connection
renewXsalsa20Views()
// yamux streams grant room once half their window is used, not after every frame (lean-transport.ts)
halfWindowYamux(YamuxStream.prototype)
// streams and connection layers make no event nobody listens to ('idle' after every send: lean-transport.ts)
skipUnheardEvents(AbstractMessageStream.prototype)
// Buffer churn must not force a full GC every 64 MiB (heap.ts)
accountExternalMemoryInHeapLimit()

const log = logger('net:host')

export type { Stream } from '@libp2p/interface'

/** Default time for one dial (transport connect + pnet + noise + yamux). */
export const DEFAULT_DIAL_TIMEOUT_MS = 3000
/** The pnet nonce exchange must finish within this. */
export const PNET_HANDSHAKE_TIMEOUT_MS = 2000
/** The DHT's protocol id: a darkfs network is its own DHT, never the public IPFS one. */
export const DHT_PROTOCOL = '/darkfs/kad/1.0.0'
/**
 * Peer exchange protocol: "these are the members I am connected to", answered in kind. 2.0.0:
 * dag-cbor in rpc.ts's envelope (1.0.0 was bare JSON).
 */
export const PEX_PROTOCOL = '/darkfs/peers/2.0.0'
/** Networks up to this many members keep a connection to every member (full mesh). */
export const FULL_MESH_PEERS = 64
/** Most peers listed in one peer-exchange message. */
export const PEX_MAX_PEERS = FULL_MESH_PEERS
/** Most addresses per peer in a peer-exchange message. */
export const PEX_MAX_ADDRS = 16
/** Largest peer-exchange message. */
export const PEX_MAX_MESSAGE_BYTES = 64 * 1024
/** Time for one whole peer exchange. */
export const PEX_TIMEOUT_MS = 3000
/** New members seen within this window are announced to everyone in one round. */
export const PEX_DEBOUNCE_MS = 150
/** Concurrent dials to members learned by peer exchange. */
export const PEX_DIAL_CONCURRENCY = 8
/** libp2p's ping protocol (the peer's ping service answers it) and its payload. */
const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_BYTES = 32
/** Concurrent ping streams per connection and direction (libp2p's default: 1 out, 2 in). */
export const PING_MAX_STREAMS = 4
/**
 * Liveness: every connection is pinged (by both ends) at least this often while a host has few
 * connections; a failed ping closes it. A ping is a new stream (yamux, multistream-select, 32
 * bytes each way, Noise on every frame): about 540 bytes on the wire per connection and round,
 * before TCP/IP. At 5 s that alone was 4.3 kbit/s per idle host of a 6-host network; at 30 s it
 * is about 0.7. A link that dies without a word (no FIN, no RST) is noticed within the interval
 * plus the ping timeout; a peer that stops or crashes closes its connections and is noticed at
 * once.
 */
export const PING_INTERVAL_MS = 30_000
/**
 * Upload a host spends on pings, bytes/s (0.8 kbit/s, of the 2 kbit/s an idle host may send:
 * issue 14). At a fixed 30 s a host with 64 connections sent 6 kbit/s of pings alone; the
 * interval grows with the connections instead (pingIntervalMs), so the cost per host stays this
 * whatever the network's size, and a silent link is noticed later on a host with many
 * connections: within about 7.5 minutes (and the ping timeout) at 64, beside a failure timeout
 * of 3; up to 4 connections, 30 s as before.
 */
export const PING_BUDGET_BYTES_PER_S = 100
/**
 * A host's upload per connection and ping round: its own ping and its answer to the peer's.
 * Measured between two hosts on loopback TCP (200 pings, host.traffic()): 280 bytes into the
 * socket from the pinger, 250 from the answerer (a new yamux stream, multistream-select, 32
 * bytes, the close, each frame in Noise); with TCP/IP headers (~40 bytes a segment, about four
 * segments a side) about 700.
 */
export const PING_ROUND_SENT_BYTES = 700
/** Longest interval between two pings of a connection, however many it has. */
export const PING_INTERVAL_MAX_MS = 600_000
/** The monitor looks for connections due for a ping this often. */
export const PING_TICK_MS = 5_000

/** Interval between two pings of each connection of a host with `connections` open. */
export function pingIntervalMs (connections: number): number {
  return Math.min(PING_INTERVAL_MAX_MS, Math.max(PING_INTERVAL_MS, Math.ceil(connections * PING_ROUND_SENT_BYTES / PING_BUDGET_BYTES_PER_S * 1000)))
}
/**
 * Time between the DHT's queries for this host's own id (kad-dht's default is 5 minutes). A
 * network up to FULL_MESH_PEERS is a full mesh: every member is connected and known, so the
 * self-query finds nothing new; it only matters beyond, and slowly.
 */
export const DHT_SELF_QUERY_INTERVAL_MS = 30 * 60_000
/**
 * Time between the DHT's routing-table refreshes (kad-dht's is 5 minutes, and not an option: set
 * on its refresher after start). A refresh is a query per common-prefix length, each dialling
 * peers this host is not connected to (and pinging the new contacts it hears of): measured at
 * 20 hosts bound 6, 6.3 new connections per idle host and minute came from the DHT, each with its
 * handshakes and identify. Every member is known from the member table; the DHT only serves
 * closestPeers() beyond the full mesh (no provider records: the member table locates every fragment), and each query refreshes the buckets
 * it passes through.
 */
export const DHT_TABLE_REFRESH_INTERVAL_MS = 30 * 60_000
/**
 * Shortest time a ping may take before its connection is closed (libp2p's adaptive timeout
 * grows from here; its own floor is 5 s). A writer on a 1 Mbit/s uplink whose TCP is backing
 * off after losses stalls for 5 s and more; at 5 s the monitor closed its connections to the
 * relays in the middle of chunks, and each chunk was pulled from the thin uplink again (seen on
 * the mesh: 2 relays lost, 1.22x of data). A cut link is noticed at most this much later.
 */
export const PING_TIMEOUT_MIN_MS = 15_000
/**
 * Time a new stream may take to agree on its protocol. A stream a peer opens while its thin
 * uplink is busy reaches us behind seconds of its queued data (and TCP's recovery from the
 * shaper's drops): libp2p's 10 s default reset the relay placements of a writer at 1 Mbit/s.
 */
export const STREAM_NEGOTIATION_TIMEOUT_MS = 60_000
/**
 * First redial delay of a dropped member; each next one is RECONNECT_BACKOFF times longer, up to
 * RECONNECT_MAX_DELAY_MS. A member is redialled until it is back, is hung up on purpose (it left),
 * or this host stops: never given up on, since a laptop may be offline for hours (DESIGN.md §6).
 */
export const RECONNECT_RETRY_INTERVAL_MS = 500
export const RECONNECT_BACKOFF = 2
/** Longest wait between two redials of one member. */
export const RECONNECT_MAX_DELAY_MS = 60_000
/**
 * Each wait is drawn between (1 - RECONNECT_JITTER) and 1 times its backoff delay, so the hosts
 * that lost a member at the same moment do not all redial it in lockstep.
 */
export const RECONNECT_JITTER = 0.25
/** A connection that lasted this long was stable: its member's next redial starts at the first delay again. */
export const RECONNECT_STABLE_MS = 60_000
/** Default bound on the connections a host keeps open (`--max-connections`). */
export const DEFAULT_MAX_CONNECTIONS = 64
/**
 * Connections libp2p accepts above the bound, briefly (its hard cap is bound + this): joiners
 * reaching a full seed (libp2p refuses inbound connections at its cap, which a joiner sees as a
 * failed handshake), transfers and DHT queries to hosts beyond the neighbours. Trimmed back.
 */
export const connectionSlack = (bound: number): number => Math.max(16, bound)
/**
 * Neighbours a host wants beyond the full mesh: half its bound, the other half is room for the
 * peers that want it (a connection counts at both ends, so wanting more than half the bound
 * cannot be granted everywhere: hosts would trim each other's wants away in a loop).
 */
export const neighbourCount = (bound: number): number => Math.max(1, Math.floor(bound / 2))
/**
 * A neighbour that closed this host's connection soon after it opened (it is over its own bound
 * and does not want this host) is left out of the neighbours for this long: another is chosen.
 */
export const REFUSED_NEIGHBOUR_MS = 120_000
/**
 * Each time the same neighbour closes this host's connection again, it is left out twice as long,
 * up to this; a connection to it that lasts RECONNECT_STABLE_MS starts over. A host that more
 * members choose than its bound holds trims some of them, and each came back every
 * REFUSED_NEIGHBOUR_MS for good: a dial, the trim and the prober's probe a failure timeout later,
 * most of the new connections on an idle 10-host network (bench:scale, bound 4).
 */
export const REFUSED_NEIGHBOUR_MAX_MS = 3600_000
/**
 * The rotating long link (member38, issue 14): beyond the full mesh, every this often a host
 * connects to one member it knows of, drawn at random among those it is not connected to, and
 * exchanges member lists with it (PEX_PROTOCOL), then closes the link unless it is wanted now
 * (rotateLongLink()). Wanted connections (neighbours(), the ring successor first) keep the
 * overlay joined only while the members' lists agree: two groups that started apart, or whose
 * tables each lacked the other group when connections were trimmed to the bound, each see a ring
 * of their own, and beyond the full mesh a peer exchange runs only with a peer heard of first, so
 * a member of the other group that one host heard of, not its neighbour, was never dialled: the
 * groups stayed apart for good (test/cluster/split-heal). The link counts against the bound: it
 * is made only with room below it (the trim makes room, never closing a neighbour or the ring
 * predecessor), and skipped for the period when there is none; the peer's bound it may pass by
 * one while the exchange lasts (an inbound connection, as a transfer's). Measured on loopback TCP,
 * 8 hosts at bound 3: about 3.8 KB sent per host and period (dial, identify, the exchange both
 * ways, the close), 0.1 kbit/s at this period.
 */
export const LONG_LINK_MS = 300_000
/** The wait before a host's next long link: uniform over 0.5 to 1.5 of `periodMs` (`random` in [0, 1)). */
export function longLinkDelay (periodMs: number, random = Math.random()): number {
  return Math.round(periodMs * (0.5 + random))
}
/**
 * The members a host's long link may draw from: known, not this host, not connected nor being
 * dialled, not declared down by the membership (a leave, a DOWN notice, a failure timeout), and
 * no dial to them failed within the last period (`failedUntil`: the end of a dial backoff, or
 * when a long link's dial failed). A member that left was drawn every period before: `known` is
 * never pruned, and the dial backoff (30 s at most) ends well within a period.
 */
export function longLinkPool (known: Iterable<string>, o: { self: string, connected: ReadonlySet<string>, dialing: (id: string) => boolean, down: (id: string) => boolean, failedUntil: (id: string) => number | undefined, now: number, periodMs: number }): string[] {
  const pool: string[] = []
  for (const id of known) {
    if (id === o.self || o.connected.has(id) || o.dialing(id) || o.down(id)) continue
    // undefined: no dial to it ever failed (not 0: on the monotonic clock a young process's now - periodMs is below 0)
    const failed = o.failedUntil(id)
    if (failed !== undefined && failed > o.now - o.periodMs) continue
    pool.push(id)
  }
  return pool
}
/** Peer-store tag of the neighbours (libp2p's pruner and the trim below close lowest-valued first). */
export const NEIGHBOUR_TAG = 'darkfs-neighbour'
/** libp2p's peer store refuses a tag value above 100: at 500 no neighbour was ever tagged (each refresh logged the refusal). */
export const NEIGHBOUR_TAG_VALUE = 100
/**
 * After a dial to a peer (by id) failed, the next dials to it fail at once for this long,
 * doubling with each failure up to DIAL_BACKOFF_MAX_MS, until a connection to it opens (either
 * way). Every part retries on its own (a survey's have-query four times, the writer's pending
 * placements on every new connection, the DHT's queries): on an overloaded machine (bench:scale,
 * 30 hosts bound 10) dials timed out, the retries were 1,500 failed swarm dials per 30 s, and the
 * hosts' accept queues held hundreds of connections nobody waited for any more. A dial to an
 * address (join, redial, a watcher's probe) is not held back.
 */
export const DIAL_BACKOFF_MS = 1_000
export const DIAL_BACKOFF_MAX_MS = 30_000
/** Per peer, how many addresses that dials failed at are kept (failedAt in createHost). */
export const FAILED_ADDRS_KEPT = 32
/**
 * Peers whose failed dials are remembered (their backoff and the addresses they failed at,
 * failedAt in createHost), the latest failed: a member gone for good is never connected again,
 * which is what forgot them before. One forgotten is dialled again once, its backoff then anew.
 */
export const DIAL_FAILURES_KEPT = 1024
/**
 * Peers still backing off are kept past DIAL_FAILURES_KEPT, up to this many times it (a bound on
 * memory only: more than that failing within DIAL_BACKOFF_MAX_MS is beyond what a host dials).
 */
export const DIAL_FAILURES_HELD = 8

/** A dial refused here, without a socket: the last dial to the peer failed lately (DIAL_BACKOFF_MS). */
export class DialBackoffError extends Error {
  override readonly name = 'DialBackoffError'
}

/** A connection younger than this is not trimmed: a joiner's peer exchange, a transfer's start. */
export const TRIM_GRACE_MS = 5_000
/**
 * Trim notice: a host that closes a connection to keep its bound (the trim) first tells the peer
 * so on this protocol (an rpc.ts call, answered once taken; then it hangs up). Beyond the full
 * mesh the peer then knows that close says nothing of the trimmer (trimmedThere(), failure.ts):
 * without it a member's XOR neighbours could not tell its trim from its failure, so each trim of
 * a watcher's connection (a transfer, a survey, a DHT query to it) made the member a suspect
 * there, dialled by a probe a failure timeout later (bench:scale, 20 hosts bound 6: 14 of 20
 * hosts had suspects 10 minutes after the writes, 28 in all, never none: each probe's
 * connection and the syncs it started were trimmed again; on a loaded machine probes failed,
 * live members were declared down and repair moved their fragments: 15 copies beyond their
 * targets, 8.8 kbit/s per idle host. With the notice: no suspect, 1.0 kbit/s, 1 copy beyond).
 * Under load a notice is sometimes not taken within TRIM_NOTICE_TIMEOUT_MS (two in five at
 * 20 hosts in one process): the trimmer hangs up all the same. A host that stops, or fails,
 * sends none: its watchers still suspect it. A peer of an older version (no such protocol in its
 * identify) is not told.
 */
export const TRIM_PROTOCOL = '/darkfs/trim/1.0.0'
/** Time the trimmer waits for the peer to take its notice before it hangs up anyway. */
export const TRIM_NOTICE_TIMEOUT_MS = 2_000
/** A trim notice explains a close by its sender that comes within this of the notice (later ones are taken as any close). */
export const TRIM_NOTICE_VALID_MS = 10_000

/** Listeners per event type a host's parts add before Node warns of a leak (each part adds one). */
const HOST_EVENT_LISTENERS = 64
/** Membership changes within this window are folded into one neighbour refresh. */
export const NEIGHBOUR_REFRESH_MS = 200
/** kad-dht's keep-alive tag on its closest peers (its constants.ts KEEP_ALIVE_TAG, not exported). */
const KAD_KEEP_ALIVE_TAG = `${KEEP_ALIVE}-kad-dht`
/** What darkfs's own protocols start with: only streams of these keep a connection from being trimmed. */
const OWN_PROTOCOL_PREFIX = '/darkfs/'
/** Streams that do not keep a connection from being trimmed (run on every connection). */
const BACKGROUND_PROTOCOLS = ['/ipfs/id/', '/ipfs/ping/', '/meshsub/', '/floodsub/', DHT_PROTOCOL, PEX_PROTOCOL, TRIM_PROTOCOL]
/**
 * Smallest gossip message a receiver sends IDONTWANT for to its mesh peers, beyond the full mesh
 * (gossipsub's default). In a full mesh a receiver forwards nothing an author sent it directly
 * (net/sync.ts), so no peer would send it a copy to decline: there each receiver's IDONTWANTs
 * (one per op of 512 bytes or more, to every other host) were four control messages per op and
 * per receiver on six hosts, as many socket writes as the ops themselves. `tar x` of 763 files
 * on six hosts in one process: 42-52 s of CPU with them, 32 s without.
 */
export const GOSSIP_IDONTWANT_MIN_BYTES = 512
/** idontwantMinDataSize that sends none. */
const NO_IDONTWANT = Number.MAX_SAFE_INTEGER

/**
 * The gossip mesh: each host grafts GOSSIP_D peers and keeps at most GOSSIP_DHI (gossipsub's
 * defaults), with a heartbeat every GOSSIP_HEARTBEAT_MS (its default too).
 */
export const GOSSIP_D = 6
export const GOSSIP_DHI = 12
export const GOSSIP_HEARTBEAT_MS = 1000
/**
 * Lazy repair (IHAVE): at each heartbeat a host advertises the ids of the messages it saw in the
 * last GOSSIP_HISTORY_GOSSIP heartbeats to GOSSIP_DLAZY connected peers outside its mesh. So each
 * message costs a host at most GOSSIP_DLAZY x GOSSIP_HISTORY_GOSSIP IHAVE frames (12), whatever
 * its connections. gossipsub's defaults advertised to max(Dlazy, gossipFactor 0.25 x the non-mesh
 * peers) over 3 heartbeats: at 64 connections 14 peers x 3 = 42 frames a message, about 0.84
 * kbit/s of the 2 an idle host may send at 1,000 hosts (scripts/sim idle figure, issue 14: the
 * member records and DOWN notices of the churn trace); here 0.24. A host its mesh missed still
 * hears of a message from about 12 of its neighbours (each of ~56 non-mesh neighbours picks it
 * with odds 6/56 a heartbeat, two heartbeats): missed by all with odds about e^-12; the author
 * floods every connection, and anti-entropy (net/anti-entropy.ts, member-service.ts digests)
 * mends the rest.
 */
export const GOSSIP_DLAZY = 6
export const GOSSIP_FACTOR = 0
export const GOSSIP_HISTORY_GOSSIP = 2
/** gossipsub's options for the mesh and lazy repair (above), as createHost() passes them. */
export const GOSSIP_MESH_OPTIONS = {
  D: GOSSIP_D,
  Dhi: GOSSIP_DHI,
  Dlazy: GOSSIP_DLAZY,
  gossipFactor: GOSSIP_FACTOR,
  mcacheGossip: GOSSIP_HISTORY_GOSSIP,
  heartbeatInterval: GOSSIP_HEARTBEAT_MS
} as const

/** Largest gossip message (an op is at most tree's MAX_OP_BYTES; ops are batched below this). */
export const GOSSIP_MAX_MESSAGE_BYTES = 1024 * 1024
/**
 * Score of the gossip topic: only invalid messages count (P4, squared, decaying by half each
 * decay interval), so one rejected message puts its forwarder at the publish threshold and a
 * second graylists it. The delivery-rate terms (P2, P3) stay off: an idle darkfs network sends
 * nothing for hours, which gossipsub's defaults would punish.
 */
const GOSSIP_TOPIC_SCORE = { topicWeight: 1, timeInMeshWeight: 0, firstMessageDeliveriesWeight: 0, meshMessageDeliveriesWeight: 0, meshFailurePenaltyWeight: 0, invalidMessageDeliveriesWeight: -50, invalidMessageDeliveriesDecay: 0.5 }
/** closestPeers(): the DHT query part gives up after this; connected peers still answer. */
export const CLOSEST_PEERS_QUERY_TIMEOUT_MS = 2000
/** findProviders(): the query gives up after this unless the caller aborts sooner. */
export const FIND_PROVIDERS_TIMEOUT_MS = 5000
/** Why a private-network handshake failed: the peer reset the connection before its nonce. */
export const PNET_REFUSED = 'the peer closed the connection before its private-network handshake (it refuses this address, is at its connection cap, or is not a darkfs host)'
/** Why a private-network handshake failed: the peer sent no nonce before the deadline. */
export const PNET_SILENT = 'the peer did not complete the private-network handshake (it has no network key, a different network, or refuses this address)'
/** A join address that refused the connection before its handshake (or was silent through it) is dialled again this many times, */
export const JOIN_REFUSED_RETRIES = 4
/** after this, doubled each time (0.25 + 0.5 + 1 + 2 s in all). */
export const JOIN_REFUSED_BACKOFF_MS = 250
/**
 * The first bytes of tagged gossip messages (Gossip.handleTagged): 0x40 to 0x5f ('@' to '_':
 * members' 'M', kept records' 'K'). A message starting with one is never an op message (those
 * are dag-cbor maps, 0xa0 to 0xbf).
 */
export const GOSSIP_TAGS = { first: 0x40, last: 0x5f }
/** Inbound connections accepted per second from one IP (libp2p's default is 5). */
export const INBOUND_CONNECTIONS_PER_SECOND_PER_IP = 64
/** Inbound connections in their handshake at once (libp2p's default is 10). */
export const MAX_INCOMING_PENDING_CONNECTIONS = 64
/** Most peers whose identified features are kept (the oldest identified first forgotten). */
export const IDENTIFIED_PEERS_MAX = 65_536
/** Most mismatch records remembered (to turn a failed dial into NetworkKeyMismatchError). */
const MISMATCH_RECORDS = 256

export interface HostInit {
  privateKey: PrivateKey
  /** The network's 32-byte pre-shared key (keys.ts); mandatory: no key, no host. */
  networkKey: Uint8Array
  /** Multiaddrs to listen on: '/ip4/10.0.0.5/tcp/4001', or '/memory/<name>' for in-process tests. */
  listen: string[]
  /** Members to dial at start. */
  join?: string[]
  /** Time for one dial. Default DEFAULT_DIAL_TIMEOUT_MS. */
  dialTimeoutMs?: number
  /** Accept inbound connections only from these CIDRs ('10.0.0.0/8', 'fd00::/8'). Default: all. */
  allowFrom?: string[]
  /** Addresses to advertise instead of the listen addresses (e.g. the VPN address). */
  announce?: string[]
  /** Networks up to this many members keep a connection to every member. Default FULL_MESH_PEERS. */
  fullMeshPeers?: number
  /** Connections kept open once settled (`--max-connections`). Default DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: number
  /**
   * The monotonic clock (ms) this host times intervals kept in memory on: dial backoffs, the long
   * link's failed-dial memory, refused neighbours, pings (default performance.now). A wall clock
   * stepped (NTP, a resume) neither ends them at once nor stretches them by the step (clocks39:
   * they were on Date.now). Times of libp2p's own (connection and stream timelines) stay on the wall clock.
   */
  clock?: () => number
  /** The first dial backoff after a failed dial (doubling to DIAL_BACKOFF_MAX_MS). Default DIAL_BACKOFF_MS; no flag: tests of the backoff set it long, so no stall of a loaded machine outlasts it. */
  dialBackoffMs?: number
  /** Peers whose failed dials are remembered, the latest (DIAL_FAILURES_KEPT). Default DIAL_FAILURES_KEPT; tests set it small. */
  dialFailuresKept?: number
  /** The rotating long link's period (LONG_LINK_MS), 0 for none. Default LONG_LINK_MS; no flag: tests set it short. */
  longLinkMs?: number
  /**
   * Features announced on identify (features.ts). Default FEATURES, what this version
   * understands; tests of rolling upgrades give fewer to play a host of an older version.
   */
  features?: readonly string[]
}

/** What the gossip handler says of a message: deliver and forward it, drop it, or drop it and blame the sender. */
export type GossipVerdict = 'accept' | 'ignore' | 'reject'
/**
 * Validates and takes a gossip message; `from` is the peer it came through (it has it). Messages
 * carry no publisher (StrictNoSign): what they hold must be signed by its makers (see the header).
 */
export type GossipHandler = (data: Uint8Array, from: string) => Promise<GossipVerdict>

export interface Gossip {
  /** The network's topic (from its key). */
  readonly topic: string
  /** Publish on the topic; resolves to the peers it was sent to (every subscribed connected peer). */
  publish: (data: Uint8Array) => Promise<string[]>
  /** The one validator and handler of incoming messages; the host is subscribed to the topic while it has one. */
  handle: (handler: GossipHandler | undefined) => void
  /**
   * The handler of the messages whose first byte is `tag` (given without it), beside the op
   * handler's (which never sees them): members.ts's records. A tag is a byte of GOSSIP_TAGS (never
   * a dag-cbor map's first byte); a message of a tag nobody handles (yet: a part of this host
   * that starts after sync, as the kept records' handler; or any more: stopping; or a newer
   * version's) is ignored, not handed to the op handler.
   */
  handleTagged: (tag: number, handler: GossipHandler | undefined) => void
  /** Connected peers subscribed to the topic. */
  subscribers: () => string[]
  /** Peers in this host's gossip mesh. */
  mesh: () => string[]
}

export interface InboundState {
  /** libp2p's count of inbound connections upgrading (acceptIncomingConnection to afterUpgradeInbound). */
  pending: number
  /** Inbound upgrades begun and not yet settled, as seen around the upgrader. */
  upgrading: number
  /** Age of the oldest of those, ms (0 with none). */
  oldestMs: number
  /** Open connections (getConnections()) and libp2p's cap on them. */
  connections: number
  maxConnections: number
  /** Inbound connections refused since the start, by libp2p's reason. */
  refused: { pending: number, rate: number, connections: number }
  /** Failed pnet nonce exchanges since the start, by direction and how ('outbound deadline', 'inbound UnexpectedEOFError'). */
  pnetFailed: Record<string, number>
}

export interface HostPeer { id: string, addresses: string[], latencyMs?: number }

export interface KeyMismatch {
  /** The remote transport address (without /p2p). */
  address: string
  direction: 'inbound' | 'outbound'
  reason: string
}

export interface HostEventMap {
  'peer:connect': CustomEvent<string>
  'peer:disconnect': CustomEvent<string>
  'peer:key-mismatch': CustomEvent<KeyMismatch>
}

export type StreamHandler = (stream: Stream, peer: string) => void | Promise<void>

export interface HandleOptions {
  /** Concurrent inbound streams of this protocol per connection. */
  maxInboundStreams?: number
  /** Concurrent outbound streams of this protocol per connection. */
  maxOutboundStreams?: number
}

export interface Host {
  readonly peerId: string
  /** Full multiaddrs (with /p2p/<id>) others can dial; never unspecified (0.0.0.0, ::). */
  addresses: () => string[]
  /** Connected peers (the live members). */
  peers: () => HostPeer[]
  /** The ids of peers(), without their addresses and latencies (a 4 KiB read asks this: peers() looks up each one's addresses). */
  peerIds?: () => string[]
  /** Whether a connection to `peer` is open now (no list of every peer built). */
  connected: (peer: string) => boolean
  /** Connected peer -> when its oldest open connection opened (epoch ms): how long it has been kept (benches). */
  connectedSince: () => Map<string, number>
  /**
   * Connect to a member; NetworkKeyMismatchError when the handshake fails as a wrong key does.
   * `timeoutMs`: how long the dial may take (default the host's dial timeout).
   */
  dial: (addr: string, opts?: AbortOptions & { timeoutMs?: number }) => Promise<void>
  /**
   * Members heard of elsewhere (the member table): their addresses kept for dialing by id (a
   * placement on a member this host is not connected to), and they count among the members
   * neighbours are chosen from.
   */
  remember: (peers: Array<{ id: string, addrs: string[] }>) => Promise<void>
  /** The n live peers (this one included) closest to key by XOR distance of kad ids, closest first. */
  closestPeers: (key: Uint8Array, n: number, opts?: AbortOptions) => Promise<string[]>
  /** Announce in the DHT that this host holds cid. */
  provide: (cid: CID, opts?: AbortOptions) => Promise<void>
  /** Peers the DHT says hold cid (this one included if it provides it). */
  findProviders: (cid: CID, opts?: AbortOptions & { max?: number }) => Promise<string[]>
  handle: (protocol: string, handler: StreamHandler, opts?: HandleOptions) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
  newStream: (peer: string, protocol: string, opts?: AbortOptions) => Promise<Stream>
  hangUp: (peer: string, opts?: AbortOptions) => Promise<void>
  addEventListener: <K extends keyof HostEventMap>(type: K, listener: (evt: HostEventMap[K]) => void, opts?: AddEventListenerOptions) => void
  removeEventListener: <K extends keyof HostEventMap>(type: K, listener: (evt: HostEventMap[K]) => void) => void
  /** Bytes this host sent, per protocol and into its sockets (node/traffic.ts). */
  traffic: () => TrafficSnapshot
  /** Dissemination over gossipsub on the network's topic. */
  gossip: Gossip
  /** Connections kept open once settled. */
  readonly maxConnections: number
  /** Members up to this many are all connected (full mesh); beyond, a host has neighbours. */
  readonly fullMeshPeers: number
  /** The peers this host keeps connected beyond the full mesh (all known members within it). */
  neighbours: () => string[]
  /** True while this host knows more members than its full mesh holds: it keeps neighbours, not everyone. */
  beyondFullMesh: () => boolean
  /**
   * Whether this host closed its last connection to the peer itself (the trim, hangUp()), not
   * the peer nor a failure; false once the peer connects again. Beyond the full mesh such a
   * close says nothing of the peer (net/failure.ts).
   */
  closedHere: (peer: string) => boolean
  /**
   * Whether the peer told this host, within TRIM_NOTICE_VALID_MS, that it closes their connection
   * to keep its bound (TRIM_PROTOCOL); false once it connects again. Beyond the full mesh such a
   * close says nothing of the peer either (net/failure.ts).
   */
  trimmedThere: (peer: string) => boolean
  /**
   * The peers whose connections the trim closes last (beyond the full mesh, after every other
   * connection it may close): the membership's watch (failure.ts watching(): the members this
   * host watches and those that watch it). Without it the trim closed a watched member's
   * connection as readily as a transfer's, and the watch dialled it again a failure timeout later.
   */
  keepFirst: (peers: () => ReadonlySet<string>) => void
  /**
   * The members the membership declared down (a leave, a DOWN notice, a failure timeout:
   * failure.ts down()): the rotating long link draws none of them (it drew a member gone for good
   * every period, `known` never forgetting it).
   */
  declaredDown: (down: (peer: string) => boolean) => void
  /**
   * Each open connection as the trim sees it, one line per peer (diagnostics: bench:scale prints
   * the hosts found over their bound): neighbour or not, direction, age, and its streams with
   * their protocol and how long since they moved data.
   */
  describeConnections: () => string[]
  /**
   * The inbound side of the connection manager (diagnostics: bench:scale logs it with its dial
   * summaries): inbound connections libp2p counts as upgrading (its cap is
   * MAX_INCOMING_PENDING_CONNECTIONS), those still upgrading as seen here and the oldest's age,
   * open connections against libp2p's hard cap, and inbound connections refused since the start
   * by the reason libp2p refused them.
   */
  inbound: () => InboundState
  /** The smallest gossip message this host sends IDONTWANT for (none in a full mesh: GOSSIP_IDONTWANT_MIN_BYTES). */
  idontwantMinBytes: () => number
  /**
   * The features `peer` announced on its last identify (features.ts; empty from a host of an
   * older version); undefined when this host never identified it.
   */
  features: (peer: string) => readonly string[] | undefined
  /** Stop listening and close every connection. Idempotent. */
  stop: () => Promise<void>
}

/** Start a host: listen, dial the join addresses, and keep the membership up to date. */
export async function createHost (init: HostInit): Promise<Host> {
  if (!(init.networkKey instanceof Uint8Array)) throw new UsageError('createHost: a network key is required (darkfs networks are private)')
  const psk = new TextEncoder().encode(formatNetworkKey(init.networkKey))
  const dialTimeoutMs = init.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS
  const maxConnections = init.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  const dialBackoffMs = init.dialBackoffMs ?? DIAL_BACKOFF_MS
  const mono = init.clock ?? (() => performance.now())
  if (!Number.isSafeInteger(dialBackoffMs) || dialBackoffMs < 1) throw new UsageError(`createHost: dialBackoffMs must be a whole number >= 1, got ${String(dialBackoffMs)}`)
  const dialFailuresKept = init.dialFailuresKept ?? DIAL_FAILURES_KEPT
  if (!Number.isSafeInteger(dialFailuresKept) || dialFailuresKept < 1) throw new UsageError(`createHost: dialFailuresKept must be a whole number >= 1, got ${String(dialFailuresKept)}`)
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) throw new UsageError(`createHost: maxConnections must be a whole number >= 1, got ${String(maxConnections)}`)
  const fullMesh = Math.min(init.fullMeshPeers ?? FULL_MESH_PEERS, maxConnections)
  const longLinkMs = init.longLinkMs ?? LONG_LINK_MS
  if (!Number.isSafeInteger(longLinkMs) || longLinkMs < 0) throw new UsageError(`createHost: longLinkMs must be a whole number >= 0, got ${String(longLinkMs)}`)
  const topic = gossipTopic(init.networkKey)
  const allowFrom = (init.allowFrom ?? []).map(parseCidr)
  const events = new EventTarget()
  // every part of a daemon (sync, failure detection, members, space notices, uplink, ...) listens
  // to peer:connect and peer:disconnect once: more than Node's default of 10 is no leak, and its
  // warning would be a stray line on a stderr that --log-format json keeps to JSON lines
  setMaxListeners(HOST_EVENT_LISTENERS, events)
  const mismatches: Array<KeyMismatch & { at: number }> = []
  const usesMemory = [...init.listen, ...(init.join ?? [])].some(a => a.startsWith('/memory/'))

  const onMismatch = (m: KeyMismatch): void => {
    mismatches.push({ ...m, at: mono() })
    if (mismatches.length > MISMATCH_RECORDS) mismatches.shift()
    events.dispatchEvent(new CustomEvent('peer:key-mismatch', { detail: m }))
  }
  /**
   * Outbound connections past the nonce exchange whose first decrypted bytes were not yet right,
   * with the signal their upgrade ran under (aborted: the upgrade was cut off by a deadline).
   */
  const unverified: Array<{ address: string, at: number, verified: boolean, signal?: AbortSignal }> = []
  const onProtected = (address: string, signal?: AbortSignal): { verified: () => void } => {
    const r = { address, at: mono(), verified: false, signal }
    unverified.push(r)
    if (unverified.length > MISMATCH_RECORDS) unverified.shift()
    return { verified: () => { r.verified = true } }
  }

  const meter = createTrafficMeter()
  /** Failed pnet nonce exchanges, by direction and how (host.inbound()). */
  const pnetFailed: Record<string, number> = {}
  const libp2p = await createLibp2p({
    privateKey: init.privateKey,
    metrics: meter.metrics,
    addresses: { listen: init.listen, announce: init.announce ?? [] },
    transports: usesMemory ? [tcp(), memory()] : [tcp()],
    connectionProtector: guardedPreSharedKey(psk, onMismatch, onProtected, pnetFailed),
    // the same Noise, with fewer copies on its receiving side (lean-transport.ts)
    connectionEncrypters: [leanNoise(noise({ crypto: leanNoiseCrypto(defaultCrypto) }))],
    // no yamux keep-alive pings (every 30 s each way): the liveness pings (below) already keep
    // every connection busy enough, and they close a dead one; yamux's do not
    streamMuxers: [yamux({ enableKeepAlive: false })],
    connectionGater: {
      denyInboundConnection: (maConn) => allowFrom.length > 0 && !addressAllowed(maConn.remoteAddr, allowFrom),
      // loopback and VPN ranges are the normal case here
      denyDialMultiaddr: () => false
    },
    connectionManager: {
      maxConnections: maxConnections + connectionSlack(maxConnections),
      dialTimeout: dialTimeoutMs,
      // redials are done here (see redial()), at the member's last known addresses
      reconnectRetries: 0,
      // libp2p refuses a sixth inbound connection per second from one IP: hosts behind one
      // address (loopback, a NAT) and a wrong-key host's retries then see resets, not reasons
      inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_SECOND_PER_IP,
      maxIncomingPendingConnections: MAX_INCOMING_PENDING_CONNECTIONS,
      inboundStreamProtocolNegotiationTimeout: STREAM_NEGOTIATION_TIMEOUT_MS,
      outboundStreamProtocolNegotiationTimeout: STREAM_NEGOTIATION_TIMEOUT_MS
    },
    // darkfs pings its connections itself (the liveness section below), at an interval that
    // follows their number
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      // the liveness pings and the DHT's contact checks both ping: with
      // libp2p's limit of one outbound ping stream, a DHT ping waiting behind bulk data on a busy
      // connection made the next heartbeat fail with TooManyOutboundProtocolStreamsError, and
      // the monitor closed a live connection (and every transfer on it)
      ping: ping({ maxOutboundStreams: PING_MAX_STREAMS, maxInboundStreams: PING_MAX_STREAMS }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        allowQueryWithZeroPeers: true,
        querySelfInterval: DHT_SELF_QUERY_INTERVAL_MS
      }),
      pubsub: gossipsub({
        // unsigned messages, their id the SHA-256 of their data (see the header)
        globalSignaturePolicy: StrictNoSign,
        allowedTopics: [topic],
        // a darkfs network speaks gossipsub only (no floodsub, which floods every peer)
        fallbackToFloodsub: false,
        // own messages go to every subscribed peer (at most the bound); forwarded ones to the mesh
        floodPublish: true,
        allowPublishToZeroTopicPeers: true,
        // the mesh's degree and IHAVE's reach: see GOSSIP_DLAZY
        ...GOSSIP_MESH_OPTIONS,
        doPX: false,
        emitSelf: false,
        maxInboundDataLength: GOSSIP_MAX_MESSAGE_BYTES,
        // no IDONTWANT in a full mesh (the start; refreshNeighbours sets it by mode): see GOSSIP_IDONTWANT_MIN_BYTES
        idontwantMinDataSize: NO_IDONTWANT,
        scoreParams: createPeerScoreParams({
          topics: { [topic]: createTopicScoreParams(GOSSIP_TOPIC_SCORE) },
          // every member holds the network key; hosts behind one address (loopback, a NAT) are normal
          IPColocationFactorWeight: 0
        })
      }) as (components: any) => GossipSub
    }
  }).catch(async (err: unknown) => {
    // a port in use is the user's to fix: say so in their words, not libp2p's (listen.ts)
    throw isListenFailure(err) ? await listenError(init.listen, err) : err
  })
  const self = libp2p.peerId.toString()
  let stopped = false
  // a stream opened on a protocol the peer's record lists already does not rewrite the record
  // (peer-protocols.ts: libp2p does, at both ends of every stream)
  skipKnownProtocolMerges(libp2p.peerStore, libp2p)
  // the refresher reads its interval each time it arms the next refresh (DHT_TABLE_REFRESH_INTERVAL_MS)
  const refresher = (libp2p.services.dht as unknown as { routingTableRefresh?: { refreshInterval: number } }).routingTableRefresh
  if (refresher !== undefined && typeof refresher.refreshInterval === 'number') refresher.refreshInterval = DHT_TABLE_REFRESH_INTERVAL_MS
  else log.error('the DHT routing-table refresher was not found: its table refreshes every 5 minutes')
  // every connection this host opens to a peer it had none with is counted by what asked for it
  // (traffic.ts dials): the stack is taken then only, not per stream
  const connectionManager = (libp2p as unknown as { components: { connectionManager: { openConnection: (peer: unknown, opts?: unknown) => Promise<Connection> } } }).components.connectionManager
  const openConnection = connectionManager.openConnection.bind(connectionManager)
  /** Peer id -> the backoff of its last failed dial, and until when dials to it fail at once (DIAL_BACKOFF_MS). */
  const backoff = new Map<string, { ms: number, until: number }>()
  /**
   * Peer id -> the addresses it was known at when dials to it failed (since it last connected):
   * only an address not among them ends its backoff (learn). Two stale lists from two peers,
   * heard in turn, each ended it: a dial storm at a member that is down.
   */
  const failedAt = new Map<string, Set<string>>()
  /** The addresses this host knows a peer at (heard of, and its identify's listen addresses). */
  const addrsOf = (id: string): string[] => [...(known.get(id) ?? []), ...(listenAddrs.get(id) ?? [])]
  /** `addrs` has one no dial to the peer failed at: its backoff says nothing of it, and is ended. */
  const newAddress = (id: string, addrs: string[]): boolean => {
    const failed = failedAt.get(id)
    if (!addrs.some(a => failed?.has(a) !== true)) return false
    backoff.delete(id)
    return true
  }
  /** A dial to `id` failed (set once the neighbours' refresh exists): a chosen neighbour is replaced. */
  let neighbourDialFailed = (id: string): void => {}
  connectionManager.openConnection = async (peer, opts) => {
    const id = typeof (peer as PeerId)?.toMultihash === 'function' ? (peer as PeerId).toString() : undefined
    let cause: string | undefined
    const fresh = id === undefined || libp2p.getConnections(peer as PeerId).length === 0
    // the addresses this dial goes to (as known when it starts): failed at, if it fails
    const tried = id !== undefined && fresh ? addrsOf(id) : []
    if (id !== undefined && fresh) {
      const b = backoff.get(id)
      if (b !== undefined && mono() < b.until) throw new DialBackoffError(`not dialling ${id}: a dial to it failed ${Math.round((mono() - b.until + b.ms) / 100) / 10} s ago (backing off ${b.ms / 1000} s)`)
    }
    if (fresh) {
      const limit = Error.stackTraceLimit
      Error.stackTraceLimit = 40
      const stack = new Error('dial').stack
      Error.stackTraceLimit = limit
      cause = dialCause(stack)
      meter.dialed(cause)
    }
    try {
      return await openConnection(peer, opts)
    } catch (err) {
      if (cause !== undefined) {
        meter.dialFailed(cause)
        log('dial of %s for %s failed: %e', String(peer), cause, err)
        // a caller's own abort says nothing of the peer
        if (id !== undefined && (opts as AbortOptions | undefined)?.signal?.aborted !== true && libp2p.getConnections(peer as PeerId).length === 0) {
          const ms = Math.min(Math.max(DIAL_BACKOFF_MAX_MS, dialBackoffMs), (backoff.get(id)?.ms ?? dialBackoffMs / 2) * 2)
          // entered again, so the maps' order is the failures' (the oldest first, forgotten first)
          backoff.delete(id)
          backoff.set(id, { ms, until: mono() + ms })
          neighbourDialFailed(id)
          const failed = failedAt.get(id) ?? new Set<string>()
          for (const a of tried) failed.add(a)
          // bounded: a member restarted on many ports keeps its latest ones
          for (const a of failed) { if (failed.size <= FAILED_ADDRS_KEPT) break; failed.delete(a) }
          failedAt.delete(id)
          failedAt.set(id, failed)
          // and the peers: members gone for good are never connected again (DIAL_FAILURES_KEPT):
          // those whose backoff is over are forgotten first, the oldest first; one still backing
          // off only beyond DIAL_FAILURES_HELD times the bound (forgotten, it was redialled at once)
          const now = mono()
          for (const map of [backoff, failedAt]) {
            for (const old of map.keys()) {
              if (map.size <= dialFailuresKept) break
              if (!(now < (backoff.get(old)?.until ?? 0))) map.delete(old)
            }
            for (const old of map.keys()) { if (map.size <= DIAL_FAILURES_HELD * dialFailuresKept) break; map.delete(old) }
          }
        }
      }
      throw err
    }
  }
  const listenAddrs = new Map<string, string[]>()
  // the inbound side as libp2p counts it (host.inbound(), diagnostics)
  const cm = connectionManager as unknown as { incomingPendingConnections: number, getMaxConnections: () => number, getConnections: () => Connection[], acceptIncomingConnection: (maConn: unknown) => boolean }
  const refusedInbound = { pending: 0, rate: 0, connections: 0 }
  const acceptIncoming = cm.acceptIncomingConnection.bind(cm)
  cm.acceptIncomingConnection = (maConn) => {
    const pendingBefore = cm.incomingPendingConnections
    const ok = acceptIncoming(maConn)
    if (!ok) {
      if (pendingBefore >= MAX_INCOMING_PENDING_CONNECTIONS) refusedInbound.pending++
      else if (cm.getConnections().length >= cm.getMaxConnections()) refusedInbound.connections++
      else refusedInbound.rate++
    }
    return ok
  }
  const upgrader = (libp2p as unknown as { components: { upgrader: { upgradeInbound: (maConn: unknown, opts: unknown) => Promise<unknown> } } }).components.upgrader
  const upgradeInbound = upgrader.upgradeInbound.bind(upgrader)
  const upgrading = new Map<unknown, number>()
  upgrader.upgradeInbound = async (maConn, opts) => {
    upgrading.set(maConn, mono())
    try {
      return await upgradeInbound(maConn, opts)
    } finally {
      upgrading.delete(maConn)
    }
  }

  // --- liveness: each connection pinged every pingIntervalMs(connections) -------------------
  // What libp2p's connection monitor does (a 32-byte ping on a new stream, an adaptive timeout
  // from PING_TIMEOUT_MIN_MS, a failed ping closes the connection, conn.rtt from the answer),
  // but each connection on its own clock (staggered over the interval, not all at once) and the
  // interval sized to the budget, not fixed.
  const pingTimeout = new AdaptiveTimeout({ minTimeout: PING_TIMEOUT_MIN_MS })
  const pingAbort = new AbortController()
  const pingedAt = new WeakMap<Connection, number>()
  const pinging = new WeakSet<Connection>()
  const pingConnection = async (conn: Connection): Promise<void> => {
    let start = mono()
    const signal = pingTimeout.getTimeoutSignal({ signal: pingAbort.signal })
    let stream: Stream | undefined
    try {
      stream = await conn.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
      const bytes = byteStream(stream)
      start = mono()
      await Promise.all([
        bytes.write(crypto.getRandomValues(new Uint8Array(PING_BYTES)), { signal }),
        bytes.read({ bytes: PING_BYTES, signal })
      ])
      conn.rtt = mono() - start
      await stream.close({ signal })
    } catch (err) {
      stream?.abort(err as Error)
      // a peer without the ping protocol answered multistream-select: it is there (as libp2p's
      // monitor has it), two round trips
      if ((err as Error).name !== 'UnsupportedProtocolError') throw err
      conn.rtt = (mono() - start) / 2
    } finally {
      pingTimeout.cleanUp(signal)
    }
  }
  const pinger = setInterval(() => {
    const conns = libp2p.getConnections()
    const every = pingIntervalMs(conns.length)
    const now = mono()
    for (const conn of conns) {
      const last = pingedAt.get(conn)
      // a new connection: its first ping somewhere in the next interval
      if (last === undefined) { pingedAt.set(conn, now - Math.random() * every); continue }
      if (now - last < every || pinging.has(conn) || conn.status !== 'open') continue
      pingedAt.set(conn, now)
      pinging.add(conn)
      pingConnection(conn).catch((err: unknown) => {
        if (stopped) return
        log('ping of %s failed, closing the connection: %e', conn.remotePeer.toString(), err)
        conn.abort(err as Error)
      }).finally(() => { pinging.delete(conn) })
    }
  }, PING_TICK_MS)
  pinger.unref()

  // --- membership: keep-alive tags, peer exchange --------------------------------------------
  /**
   * Connections by peer id, straight from the connection manager: each connection's remotePeer
   * keeps its id string, where libp2p.getPeers() decodes and re-encodes every id on each call
   * (peers() runs per op received, per placement, per fetch: with six hosts in one process
   * that was a tenth of the CPU of a small-write workload).
   */
  const connectionsById = (): Map<string, Connection[]> => {
    const out = new Map<string, Connection[]>()
    for (const c of libp2p.getConnections()) {
      const id = c.remotePeer.toString()
      const list = out.get(id)
      if (list === undefined) out.set(id, [c])
      else list.push(c)
    }
    return out
  }
  // the ids of connectionsById, kept until a connection opens or closes: asked several times per
  // 4 KiB read (the reader's range fetch, its membership's live peers: each a map of every
  // connection made afresh, ~15 µs of a read on six hosts). A copy each time: callers may change it
  let ids: string[] | undefined
  const forgetIds = (): void => { ids = undefined }
  for (const e of ['connection:open', 'connection:close', 'peer:connect', 'peer:disconnect'] as const) libp2p.addEventListener(e, forgetIds)
  const connectedIds = (): string[] => [...(ids ??= [...connectionsById().keys()])]
  const knownAddrs = (id: string): string[] => {
    const addrs = listenAddrs.get(id) ?? []
    return addrs.filter(a => !isUnspecified(a)).slice(0, PEX_MAX_ADDRS)
  }
  const members = (): PexPeer[] => {
    const list: PexPeer[] = [{ id: self, addrs: ownAddrs() }]
    const connected = connectedIds()
    for (const id of connected) {
      const addrs = knownAddrs(id)
      if (addrs.length > 0) list.push({ id, addrs })
    }
    // beyond the full mesh a host is connected to few members: it tells the others it knows of too
    const listed = new Set([self, ...connected])
    for (const [id, addrs] of known) {
      if (list.length >= PEX_MAX_PEERS) break
      if (!listed.has(id)) list.push({ id, addrs: addrs.slice(0, PEX_MAX_ADDRS) })
    }
    return list.slice(0, PEX_MAX_PEERS)
  }
  const ownAddrs = (): string[] => libp2p.getMultiaddrs().map(a => a.toString()).filter(a => !isUnspecified(a)).slice(0, PEX_MAX_ADDRS)

  /** Peers being dialled (dialLearned) -> the addresses that dial knew of at its start. */
  const dialing = new Map<string, Set<string>>()
  /**
   * Peers heard of again at an address the dial in flight to them did not know -> those
   * addresses: the peer is dialled again (by id, the addresses merged) once that dial ends
   * without a connection. A member restarted on a new address was dropped here: the dial in
   * flight (its old address, from a peer's list made while it was down) knew only the addresses
   * of its start, failed, and nothing dialled the new one.
   */
  const heardAgain = new Map<string, Set<string>>()
  /** Members heard of (peer exchange, identify) -> their addresses: who neighbours are chosen from. */
  const known = new Map<string, string[]>()
  const learn = async (peers: PexPeer[]): Promise<void> => {
    const size = known.size
    for (const p of peers) {
      if (p.id === self || p.addrs.length === 0) continue
      // an address not heard of before (a member restarted on a new port): the backoff of the
      // dials that failed at its old ones (DIAL_BACKOFF_MS, up to 30 s) says nothing of it. It
      // refused the dial to the new address, and nothing dialled it again
      if (backoff.has(p.id)) newAddress(p.id, p.addrs)
      known.set(p.id, p.addrs)
    }
    if (known.size !== size) refreshSoon()
    const connected = new Set(connectedIds())
    const want = wanted()
    const fresh = peers.filter(p => p.id !== self && !connected.has(p.id) && (want === undefined || want.has(p.id)))
    for (const p of fresh) {
      const inFlight = dialing.get(p.id)
      const added = inFlight === undefined ? [] : p.addrs.filter(a => !inFlight.has(a))
      if (added.length === 0) continue
      const again = heardAgain.get(p.id) ?? new Set<string>()
      for (const a of added) again.add(a)
      heardAgain.set(p.id, again)
    }
    const room = want === undefined ? fullMesh - connected.size - dialing.size : maxConnections - connected.size - dialing.size
    const queue = fresh.filter(p => !dialing.has(p.id)).slice(0, Math.max(0, room))
    await forEachLimited(queue, PEX_DIAL_CONCURRENCY, async p => { await dialLearned(p) })
  }
  /** Dial a member learned of, by id: at `p.addrs` and every address the peer store has for it. */
  const dialLearned = async (p: PexPeer): Promise<void> => {
    if (stopped) return
    dialing.set(p.id, new Set([...p.addrs, ...addrsOf(p.id)]))
    // the dial's bound in the event loop's time (loopTimeSignal), as the handshake's
    const bound = loopTimeSignal(dialTimeoutMs)
    let peerId: PeerId | undefined
    try {
      peerId = peerIdFromString(p.id)
      const addrs = p.addrs.map(a => multiaddr(a))
      await libp2p.peerStore.merge(peerId, { multiaddrs: addrs })
      await libp2p.dial(peerId, { signal: bound.signal })
    } catch {
      // unreachable now: it dials us, or we hear of it again later (heardAgain)
    } finally {
      bound.clear()
      dialing.delete(p.id)
      const again = heardAgain.get(p.id)
      heardAgain.delete(p.id)
      // dialled by id, so a failure sets the backoff again; the one this dial set is ended here:
      // the addresses heard are ones this dial did not go to (`added` above), whatever another
      // dial by id that joined this one put in failedAt (it counts the addresses it knew of,
      // these among them, as failed: newAddress would say they are not new)
      if (again !== undefined && again.size > 0 && peerId !== undefined && libp2p.getConnections(peerId).length === 0) {
        backoff.delete(p.id)
        void dialLearned({ id: p.id, addrs: [...again] })
      }
    }
  }

  /** Gossipsub's live options (it reads idontwantMinDataSize per message; GOSSIP_IDONTWANT_MIN_BYTES). */
  const gossipOpts = (): { idontwantMinDataSize: number } => (libp2p.services.pubsub as unknown as { opts: { idontwantMinDataSize: number } }).opts

  // --- bounded connections: neighbours and the trim ------------------------------------------
  /** The members this host keeps connected, or undefined while it knows few enough for a full mesh. */
  let chosen: Set<string> | undefined
  /** Neighbours that closed this host's connection -> until when they are not chosen again. */
  const refused = new Map<string, number>()
  /** Neighbours that closed this host's connection -> how long they were left out the last time. */
  const refusedFor = new Map<string, number>()
  /**
   * The member whose ring successor this host is (kad.ts ringNeighbours()): it wants this host
   * first of its neighbours, and the successor edges are what keep the overlay in one piece at
   * any bound (island34), so the trim never closes its connection either (above bound 1, where
   * one neighbour and it fill the bound at most; not within the full mesh: spareRing). The trim
   * finds it among the connected peers (a predecessor connected has no connected peer between it
   * and this host): over every member known it could be a member gone, that no connection
   * stands for, and the live one that wants this host was trimmed (review34h); and a second pass
   * over every member's kad id doubled wanted()'s cost past the id cache (~2 s at 50,000).
   */
  let spareRing = false
  const wanted = (): Set<string> | undefined => {
    const members = new Set([...known.keys(), ...connectedIds()])
    members.delete(self)
    spareRing = false
    if (members.size + 1 <= fullMesh) return undefined
    spareRing = neighbourCount(maxConnections) < maxConnections
    const now = mono()
    for (const [id, until] of refused) {
      if (until <= now) refused.delete(id)
      else members.delete(id)
    }
    // a member whose dial failed lately, not connected, is no neighbour while its backoff lasts:
    // a host gone (not yet declared down here) stayed chosen, and when it was the one link
    // between two halves of the overlay, the halves stayed apart, the DOWN notice that would
    // have ended the choice unable to cross
    const connected = new Set(connectedIds())
    for (const [id, b] of backoff) if (now < b.until && !connected.has(id)) members.delete(id)
    return new Set(neighbours(self, members, neighbourCount(maxConnections)))
  }
  const refreshNeighbours = async (): Promise<void> => {
    const before = chosen ?? new Set<string>()
    chosen = wanted()
    // IDONTWANT only beyond the full mesh (GOSSIP_IDONTWANT_MIN_BYTES); gossipsub reads the option per message
    gossipOpts().idontwantMinDataSize = chosen === undefined ? NO_IDONTWANT : GOSSIP_IDONTWANT_MIN_BYTES
    const now = chosen ?? new Set<string>()
    const tag = async (id: string, value: { value: number } | undefined): Promise<void> => {
      await libp2p.peerStore.merge(peerIdFromString(id), { tags: { [NEIGHBOUR_TAG]: value } }).catch((err: unknown) => {
        // a peer the store lost: tagged again at a later refresh (or a trim closes it)
        log('tagging %s failed: %e', id, err)
      })
    }
    await Promise.all([
      ...[...before].filter(id => !now.has(id)).map(async id => { await tag(id, undefined) }),
      ...[...now].filter(id => !before.has(id)).map(async id => { await tag(id, { value: NEIGHBOUR_TAG_VALUE }) })
    ])
    if (chosen === undefined) return
    const connected = new Set(connectedIds())
    await Promise.all([...new Set([...connected, ...before])].map(async id => { await keepAlive(id, chosen?.has(id) === true) }))
    await learn([...chosen].filter(id => !connected.has(id)).map(id => ({ id, addrs: known.get(id) ?? listenAddrs.get(id) ?? [] })).filter(p => p.addrs.length > 0))
    trimSoon()
  }
  /**
   * `work` run once, `delay` ms after the first call since its last run (calls meanwhile join
   * that run); never after stop. Its failure is logged as `what`.
   */
  const coalesced = (what: string, work: () => Promise<void>): { soon: (delay: number) => void, cancel: () => void } => {
    let timer: ReturnType<typeof setTimeout> | undefined
    return {
      soon: delay => {
        if (stopped || timer !== undefined) return
        timer = setTimeout(() => {
          timer = undefined
          work().catch((err: unknown) => { log('%s failed: %e', what, err) })
        }, delay)
        timer.unref?.()
      },
      cancel: () => { if (timer !== undefined) clearTimeout(timer) }
    }
  }
  const refresh = coalesced('neighbour refresh', refreshNeighbours)
  const refreshSoon = (): void => { refresh.soon(NEIGHBOUR_REFRESH_MS) }
  neighbourDialFailed = id => { if (chosen?.has(id) === true) refreshSoon() }
  /**
   * Keep-alive tags (any tag named keep-alive*): libp2p's reconnect queue tries to reconnect a
   * peer that has one when it drops. Ours marks every member in a full mesh, none beyond;
   * kad-dht's marks its 20 closest peers, and is dropped beyond the full mesh with ours, or a
   * trimmed peer would be dialled straight back by both ends.
   */
  const keepAlive = async (id: string, on: boolean): Promise<void> => {
    // beyond the full mesh none: redial() brings a neighbour back, with its backoff and the
    // refusals above; libp2p's queue redialled a neighbour that trimmed this host at once,
    // each time (its p-retry dials were half the new connections of an idle bounded network)
    const value = on && chosen === undefined ? { value: 1 } : undefined
    // ignored: a peer the store does not know has no tag to drop (and gets one when it connects)
    await libp2p.peerStore.merge(peerIdFromString(id), { tags: { [KEEP_ALIVE]: value, ...(chosen === undefined ? {} : { [KAD_KEEP_ALIVE_TAG]: value }) } }).catch(() => {})
  }
  /**
   * A connection to `id` the trim spares for now: younger than TRIM_GRACE_MS, or with a stream of
   * this host's own protocols that moved data lately, either way (the swarm keeps one stream per
   * peer open for good: judged by its opening, a push on it to a host the writer was connected to
   * since an earlier file was cut by the first trim, and its chunk left pending until a retry
   * dialled the target again). A stream counts once its protocol is negotiated and darkfs's own:
   * one still negotiating ('' or none: the peer's identify or ping just opened, 1-5 ms old) kept
   * nearly every long link open past the peer's bound (review38e).
   */
  const busy = (id: string, now: number, young = true): boolean => {
    const lately = (st: Stream): boolean => now - Math.max(st.timeline.open, meter.activeAt(st) ?? 0) < TRIM_GRACE_MS
    const own = (st: Stream): boolean => st.protocol?.startsWith(OWN_PROTOCOL_PREFIX) === true && !BACKGROUND_PROTOCOLS.some(b => st.protocol?.startsWith(b) === true)
    return libp2p.getConnections(peerIdFromString(id)).some(c => (young && now - c.timeline.open < TRIM_GRACE_MS) || c.streams.some(st => own(st) && lately(st)))
  }
  /**
   * Close the connection to a peer this host does not want (not redialled), telling it why;
   * unless `spare`, asked last, just before the hang-up, says it is wanted after all. Whether closed.
   */
  const closeUnwanted = async (id: string, spare?: () => boolean): Promise<boolean> => {
    trimmed.add(id)
    await keepAlive(id, false)
    await tellTrimmed(id)
    if (spare?.() === true) {
      trimmed.delete(id)
      return false
    }
    await libp2p.hangUp(peerIdFromString(id)).catch((err: unknown) => { log('closing the connection to %s failed: %e', id, err) })
    return true
  }
  /** Peers closed by the trim: not redialled (they are not neighbours). */
  const trimmed = new Set<string>()
  /** The peers the trim closes last (keepFirst()). */
  let kept: () => ReadonlySet<string> = () => new Set()
  const trimming = coalesced('trimming connections', async () => { await trim() })
  const trimSoon = (delay = 0): void => { trimming.soon(delay) }
  /**
   * Close connections above the bound: never a neighbour's nor the ring predecessor's (the member
   * that wants this host first, spareRing), nor one younger than TRIM_GRACE_MS
   * or carrying this host's own protocols (a transfer, a sync) now: those are tried again later.
   * `limit` below the bound makes room for the rotating long link (rotateLongLink()).
   */
  const trim = async (limit = maxConnections): Promise<void> => {
    const ids = connectedIds()
    if (stopped || ids.length <= limit) return
    const now = Date.now()
    const ringPredecessor = spareRing ? ringNeighbours(self, ids)?.predecessor : undefined
    /** The watch's peers (keepFirst()): closed last. */
    const first = kept()
    let later = false
    /** Connections spared for now (young, busy) that are not the watch's: closed once they may be. */
    let spared = 0
    const candidates: Array<{ id: string, value: number }> = []
    for (const id of ids) {
      if (chosen?.has(id) === true || id === ringPredecessor) continue
      if (busy(id, now)) {
        later = true
        if (!first.has(id)) spared++
        continue
      }
      let value = 0
      try {
        for (const t of (await libp2p.peerStore.get(peerIdFromString(id))).tags.values()) value += t.value
      } catch {
        // a peer the store does not know has no tags: value 0
      }
      candidates.push({ id, value })
    }
    // lowest tag value first, the watch's peers last; and of the watch's only as many as the
    // others, those spared for now included, leave over the bound: a spared one is closed once it
    // may be (a writer's placement dials, a joiner's exchange), and the watch's stays
    candidates.sort((a, b) => a.value - b.value || (a.id < b.id ? -1 : 1))
    const excess = ids.length - limit
    const others = candidates.filter(c => !first.has(c.id))
    const watch = candidates.filter(c => first.has(c.id))
    const closing = [...others.slice(0, excess), ...watch.slice(0, Math.max(0, excess - others.length - spared))]
    await Promise.all(closing.map(async ({ id }) => {
      log('over %d connections: closing the one to %s', limit, id)
      await closeUnwanted(id)
    }))
    if (later || connectedIds().length > maxConnections) trimSoon(TRIM_GRACE_MS)
  }

  /** Peers that told this host they close their connection to it to keep their bound -> when. */
  const trimmedBy = new Map<string, number>()
  /** Tell a peer this host closes their connection to keep its bound (TRIM_PROTOCOL), if it takes such notices. */
  const tellTrimmed = async (id: string): Promise<void> => {
    try {
      const peer = await libp2p.peerStore.get(peerIdFromString(id))
      if (!peer.protocols.includes(TRIM_PROTOCOL)) return
      await call(wire, id, TRIM, {}, { timeoutMs: TRIM_NOTICE_TIMEOUT_MS })
    } catch (err) {
      // it closes all the same; its watchers may suspect this host meanwhile (a probe answers)
      log('trim notice to %s not taken: %e', id, err)
    }
  }

  // the features this host understands, as protocols identify lists (see the header): before any
  // dial, so the first identify of every connection carries them
  for (const f of init.features ?? FEATURES) {
    await libp2p.handle(featureProtocol(f), (stream: Stream) => {
      stream.abort(new Error(`nothing is spoken on ${featureProtocol(f)}: it only announces a feature`))
    }, { maxInboundStreams: 1, maxOutboundStreams: 1 })
  }
  /** Peer -> the features its last identify listed (IDENTIFIED_PEERS_MAX, oldest first dropped). */
  const identified = new Map<string, string[]>()

  // node's own protocols on this libp2p node (rpc.ts); the Host below hands out the same
  const wire: RpcDialer & RpcServer = {
    handle: async (protocol, handler, opts) => {
      await libp2p.handle(protocol, async (stream: Stream, connection: Connection) => {
        await handler(stream, connection.remotePeer.toString())
      }, { ...opts })
    },
    unhandle: async (protocol) => { await libp2p.unhandle(protocol) },
    newStream: async (peer, protocol, opts) => await libp2p.dialProtocol(toPeerId(peer), protocol, opts)
  }

  const remember = async (peers: Array<{ id: string, addrs: string[] }>): Promise<void> => {
    const usable: PexPeer[] = []
    for (const p of peers) {
      if (p.id === self || p.addrs.length === 0) continue
      try {
        await libp2p.peerStore.merge(peerIdFromString(p.id), { multiaddrs: p.addrs.map(a => multiaddr(a)) })
        usable.push(p)
      } catch (err) {
        // a record whose id or addresses do not parse: not dialable, still a member
        log('addresses of %s not kept: %e', p.id, err)
      }
    }
    await learn(usable)
  }

  const exchange = async (peer: string): Promise<void> => {
    if (stopped) return
    try {
      const reply = await call(wire, peer, PEX, { peers: members() })
      await learn(reply.peers)
    } catch (err) {
      log('peer exchange with %s failed: %e', peer, err)
    }
  }

  let rotating = false
  /** Members the membership declared down (declaredDown()): the long link draws none of them. */
  let isDown: (peer: string) => boolean = () => false
  /** Members a long link's dial failed to -> when: not drawn again for a period. */
  const linkFailed = new Map<string, number>()
  /**
   * One period of the rotating long link (LONG_LINK_MS): room made below the bound; one member
   * known of and not connected, drawn at random, dialled; member lists exchanged with it; the
   * link closed again unless what this host learnt makes it wanted (a neighbour, the ring
   * predecessor) or something else uses it now. Open for the exchange only, it holds a place
   * below the bound here, and above the peer's for as long only (the peer's trim spares a young
   * connection for TRIM_GRACE_MS, and a link kept open at each end for a whole period left hosts
   * above their bound for seconds each period).
   */
  const rotateLongLink = async (): Promise<void> => {
    if (stopped || chosen === undefined || rotating) return
    rotating = true
    try {
      // the link counts against the bound: room made for it, or none this period
      if (connectedIds().length >= maxConnections) await trim(maxConnections - 1)
      if (stopped || chosen === undefined) return
      if (connectedIds().length >= maxConnections) {
        log('no room below %d connections for a long link this period', maxConnections)
        return
      }
      // a member whose dial failed here is left out for a period; and one drawn that did not
      // answer leaves a second draw this period (a member gone took the whole period)
      for (const [peer, at] of linkFailed) { if (at <= mono() - longLinkMs) linkFailed.delete(peer) }
      let id: string | undefined
      for (let draw = 0; draw < 2 && id === undefined; draw++) {
        if (stopped) return
        const pool = longLinkPool(known.keys(), {
          self,
          connected: new Set(connectedIds()),
          dialing: peer => dialing.has(peer),
          down: peer => isDown(peer),
          failedUntil: peer => {
            const until = backoff.get(peer)?.until
            const failed = linkFailed.get(peer)
            return until === undefined && failed === undefined ? undefined : Math.max(until ?? -Infinity, failed ?? -Infinity)
          },
          now: mono(),
          periodMs: longLinkMs
        })
        if (pool.length === 0) return
        const drawn = pool[Math.floor(Math.random() * pool.length)]
        const bound = loopTimeSignal(dialTimeoutMs)
        try {
          const peerId = peerIdFromString(drawn)
          await libp2p.peerStore.merge(peerId, { multiaddrs: (known.get(drawn) ?? []).map(a => multiaddr(a)) })
          await libp2p.dial(peerId, { signal: bound.signal })
          id = drawn
        } catch (err) {
          log('long link to %s not made: %e', drawn, err)
          linkFailed.set(drawn, mono())
        } finally {
          bound.clear()
        }
      }
      if (id === undefined) return
      log('long link to %s: exchanging member lists', id)
      await exchange(id)
      if (stopped) return
      await closeLongLink(id)
    } finally {
      rotating = false
    }
  }
  /**
   * Whether this host wants the long link to `id`, or the peer would by the members this host
   * knows now (it heard of them in the exchange too): closed, it took the close for a refusal and
   * left this host out of its neighbours for REFUSED_NEIGHBOUR_MS (a heal took 51 periods, not 10).
   */
  const wantedLink = (id: string): boolean => wanted()?.has(id) !== false || neighbours(id, [self, ...known.keys()], neighbourCount(maxConnections)).includes(self)
  /** Long links spared as busy -> the next try at closing them. */
  const longLinkCloses = new Map<string, ReturnType<typeof setTimeout>>()
  /**
   * Close the long link to `id` unless wanted (wantedLink()) or a stream of darkfs's own uses it
   * now (busy()), both asked again just before the hang-up; spared as busy, tried again after
   * TRIM_GRACE_MS (the trim leaves a link within this host's bound alone, and the peer is above
   * its own by it).
   */
  const closeLongLink = async (id: string): Promise<void> => {
    clearTimeout(longLinkCloses.get(id))
    longLinkCloses.delete(id)
    const stays = (): boolean => stopped || !connectedIds().includes(id) || wantedLink(id)
    if (stays()) return
    if (!busy(id, Date.now(), false) && await closeUnwanted(id, () => wantedLink(id) || busy(id, Date.now(), false))) return
    if (stays()) return
    log('long link to %s in use: closing it later', id)
    const later = setTimeout(() => { closeLongLink(id).catch((err: unknown) => { log('closing the long link to %s failed: %e', id, err) }) }, TRIM_GRACE_MS)
    later.unref?.()
    longLinkCloses.set(id, later)
  }
  /**
   * The next period's long link: 0.5 to 1.5 periods away, drawn each time (a fixed interval from
   * the start had hosts started together draw, dial and exchange together every period).
   */
  let longLinkTimer: ReturnType<typeof setTimeout> | undefined
  const nextLongLink = (): void => {
    if (stopped || longLinkMs === 0) return
    longLinkTimer = setTimeout(() => {
      rotateLongLink().catch((err: unknown) => { log('long link failed: %e', err) }).finally(nextLongLink)
    }, longLinkDelay(longLinkMs))
    longLinkTimer.unref?.()
  }
  nextLongLink()

  await serve(wire, TRIM, {
    call: async (_req, { peer }) => {
      trimmedBy.set(peer, mono())
      return {}
    }
  })

  await serve(wire, PEX, {
    call: async ({ peers }) => {
      void learn(peers)
      return { peers: members() }
    }
  })

  // a new member is announced to every member in one debounced round, so members that joined
  // through the same host at the same moment still meet each other
  let announceTimer: ReturnType<typeof setTimeout> | undefined
  const announceSoon = (): void => {
    if (stopped || announceTimer !== undefined) return
    announceTimer = setTimeout(() => {
      announceTimer = undefined
      const ids = connectedIds()
      if (ids.length > fullMesh) return
      for (const id of ids) void exchange(id)
    }, PEX_DEBOUNCE_MS)
    announceTimer.unref?.()
  }

  libp2p.addEventListener('peer:identify', (evt) => {
    const id = evt.detail.peerId.toString()
    const wasKnown = known.has(id)
    // a member that is stopping pushes an empty address list: keep the last good one to redial
    if (evt.detail.listenAddrs.length > 0) {
      listenAddrs.set(id, evt.detail.listenAddrs.map(a => withPeer(a, id)))
      known.set(id, knownAddrs(id))
      refreshSoon()
      // its features too (its farewell push, which unhandles them, says nothing of what it
      // understands when it comes back; a host that comes back older says so on its identify)
      identified.delete(id)
      identified.set(id, featuresOfProtocols(evt.detail.protocols))
      if (identified.size > IDENTIFIED_PEERS_MAX) identified.delete(identified.keys().next().value as string)
    }
    if (!evt.detail.protocols.includes(PEX_PROTOCOL)) return
    // beyond the full mesh a connection opens and closes with every transfer, survey and query
    // (the trim), and the member table (members.ts) tells every member of every other: a peer
    // this host knew already is not sent the list again (64 members with their addresses, both
    // ways, on each such connection was most of an idle host's traffic at 30 hosts). One heard
    // of first here (a joiner) still is, and tells this host whom it knows.
    if (chosen !== undefined && wasKnown) return
    void exchange(id)
    announceSoon()
  })
  libp2p.addEventListener('peer:connect', (evt) => {
    const id = evt.detail.toString()
    backoff.delete(id)
    failedAt.delete(id)
    redials.get(id)?.abort()
    hungUp.delete(id)
    // keep-alive: libp2p's reconnect queue tries once to reconnect a member that dropped; beyond
    // the full mesh only neighbours have it (a trimmed peer must stay away)
    void keepAlive(id, chosen === undefined || chosen.has(id))
    trimmed.delete(id)
    trimmedBy.delete(id)
    connectedAt.set(id, mono())
    if (connectedIds().length > maxConnections) trimSoon(TRIM_GRACE_MS)
    events.dispatchEvent(new CustomEvent('peer:connect', { detail: id }))
  })
  libp2p.addEventListener('peer:disconnect', (evt) => {
    const id = evt.detail.toString()
    // a neighbour that closed the connection soon after it opened does not want this host: left
    // out for a while, longer each time it does so again (REFUSED_NEIGHBOUR_MAX_MS)
    const lasted = mono() - (connectedAt.get(id) ?? -Infinity)
    if (lasted >= RECONNECT_STABLE_MS) refusedFor.delete(id)
    if (chosen?.has(id) === true && !trimmed.has(id) && !hungUp.has(id) && !stopped && lasted < RECONNECT_STABLE_MS) {
      const out = Math.min(REFUSED_NEIGHBOUR_MAX_MS, refusedFor.has(id) ? refusedFor.get(id)! * 2 : REFUSED_NEIGHBOUR_MS)
      refusedFor.set(id, out)
      log('neighbour %s closed the connection: choosing another for %d s', id, Math.round(out / 1000))
      refused.set(id, mono() + out)
      refreshSoon()
    }
    events.dispatchEvent(new CustomEvent('peer:disconnect', { detail: id }))
    if (!hungUp.has(id)) redial(id)
  })

  // a member that dropped is redialled with backoff at its last known addresses (libp2p's own
  // reconnect queue only knows the peer store, which the member's farewell identify-push empties)
  const redials = new Map<string, AbortController>()
  const hungUp = new Set<string>()
  /**
   * First redial delay of a member whose last connection did not last RECONNECT_STABLE_MS (a
   * neighbour that keeps trimming this host away, being over its bound): it doubles each time,
   * so such a pair settles into rare tries instead of a connection every few seconds.
   */
  const firstDelay = new Map<string, number>()
  const connectedAt = new Map<string, number>()
  const redial = (id: string): void => {
    const addrs = listenAddrs.get(id)
    if (stopped || addrs === undefined || redials.has(id)) return
    // beyond the full mesh only neighbours are redialled; a trimmed peer is not wanted back
    if (trimmed.has(id) || (chosen !== undefined && !chosen.has(id))) return
    const controller = new AbortController()
    redials.set(id, controller)
    const lasted = mono() - (connectedAt.get(id) ?? -Infinity)
    const start = lasted >= RECONNECT_STABLE_MS ? RECONNECT_RETRY_INTERVAL_MS : Math.min((firstDelay.get(id) ?? RECONNECT_RETRY_INTERVAL_MS / RECONNECT_BACKOFF) * RECONNECT_BACKOFF, RECONNECT_MAX_DELAY_MS)
    firstDelay.set(id, start)
    void (async () => {
      let delay = start
      for (let back = false; !back && !controller.signal.aborted;) {
        await sleep(delay * (1 - RECONNECT_JITTER * Math.random()), controller.signal)
        delay = Math.min(delay * RECONNECT_BACKOFF, RECONNECT_MAX_DELAY_MS)
        if (controller.signal.aborted || libp2p.getConnections(peerIdFromString(id)).length > 0) break
        // no longer a neighbour (another was chosen meanwhile): not redialled
        if (chosen !== undefined && !chosen.has(id)) break
        for (const addr of listenAddrs.get(id) ?? addrs) {
          const bound = loopTimeSignal(dialTimeoutMs)
          try {
            await libp2p.dial(multiaddr(addr), { signal: anySignal([controller.signal, bound.signal]) })
            back = true
            break
          } catch {
            // down still: next address, then back off
          } finally {
            bound.clear()
          }
        }
      }
    })().finally(() => { if (redials.get(id) === controller) redials.delete(id) })
  }

  // --- the Host -------------------------------------------------------------------------
  const dial = async (addr: string, opts?: AbortOptions & { timeoutMs?: number }): Promise<void> => {
    let ma: Multiaddr
    try {
      ma = multiaddr(addr)
    } catch (err: any) {
      throw new UsageError(`not a multiaddr: ${JSON.stringify(addr)} (${err?.message ?? String(err)})`)
    }
    const started = mono()
    const transport = stripPeer(ma.toString())
    // the dial's bound in the event loop's time (loopTimeSignal), as the handshake's
    const bound = loopTimeSignal(opts?.timeoutMs ?? dialTimeoutMs)
    const signal = anySignal([opts?.signal, bound.signal])
    try {
      await libp2p.dial(ma, { signal })
    } catch (err: any) {
      const seen = mismatches.find(m => m.direction === 'outbound' && m.at >= started && m.address === transport)
      // libp2p's upgrader turns every failure of the encryption step into an EncryptionFailedError
      // that keeps only the message: one cut off by a deadline (libp2p's per-address dial timeout,
      // a peer too starved to answer in time) is a timeout, retryable, and no sign of a wrong key.
      // Told by the upgrade's signal, not by the message.
      const cutOff = unverified.some(r => r.address === transport && r.at >= started && !r.verified && r.signal?.aborted === true)
      if (seen === undefined && cutOff && !isConnectionDrop(err)) {
        throw new TimeoutError(`could not connect to ${addr}: the handshake did not finish in time after the private-network handshake (${describeError(err)})`)
      }
      if (seen !== undefined || isHandshakeFailure(err)) {
        throw new NetworkKeyMismatchError(addr, seen?.reason ?? describeError(err))
      }
      // the peer hung up after the nonce exchange, before a single right byte: it could not
      // read ours (it saw the wrong key first and reset the connection)
      if (unverified.some(r => r.address === transport && r.at >= started && !r.verified) && isConnectionDrop(err)) {
        throw new NetworkKeyMismatchError(addr, `the peer closed the connection right after the private-network handshake (${describeError(err)}): it most likely uses a different network key`)
      }
      throw err
    } finally {
      bound.clear()
    }
  }

  const closestPeers = async (key: Uint8Array, n: number, opts?: AbortOptions): Promise<string[]> => {
    const live = new Set([self, ...connectedIds()])
    if (live.size > n && live.size >= fullMesh) {
      // a small network is a full mesh: the connected peers are every live member. Beyond
      // it, the DHT knows members this host is not connected to.
      try {
        const signal = anySignal([opts?.signal], CLOSEST_PEERS_QUERY_TIMEOUT_MS)
        for await (const ev of libp2p.services.dht.getClosestPeers(key, { signal })) {
          if (ev.name === 'FINAL_PEER') live.add(ev.peer.id.toString())
        }
      } catch (err) {
        if (opts?.signal?.aborted === true) throw err
      }
    }
    return targets(key, live, n)
  }

  const findProviders = async (cid: CID, opts?: AbortOptions & { max?: number }): Promise<string[]> => {
    const found = new Set<string>()
    const max = opts?.max ?? Infinity
    const signal = anySignal([opts?.signal], FIND_PROVIDERS_TIMEOUT_MS)
    try {
      for await (const info of libp2p.contentRouting.findProviders(cid, { signal })) {
        found.add(info.id.toString())
        if (found.size >= max) break
      }
    } catch (err) {
      if (opts?.signal?.aborted === true) throw err
      // a timed-out or failed query still returns what it found
    }
    return [...found]
  }

  // --- gossip ----------------------------------------------------------------------------------
  const pubsub = libp2p.services.pubsub
  let gossipHandler: GossipHandler | undefined
  const tagged = new Map<number, GossipHandler>()
  const VERDICTS = { accept: TopicValidatorResult.Accept, ignore: TopicValidatorResult.Ignore, reject: TopicValidatorResult.Reject }
  pubsub.topicValidators.set(topic, async (from, msg) => {
    if (msg.topic !== topic) return TopicValidatorResult.Ignore
    // a tagged message goes to its tag's handler or nowhere: with none (the kept records' is
    // registered after sync starts, and dropped before sync stops) the op handler took it for a
    // malformed op message, rejected it and scored its sender down (test/cluster/bounded)
    const isTagged = msg.data.byteLength > 0 && msg.data[0] >= GOSSIP_TAGS.first && msg.data[0] <= GOSSIP_TAGS.last
    const byTag = isTagged ? tagged.get(msg.data[0]) : undefined
    const handler = isTagged ? byTag : gossipHandler
    if (handler === undefined) return TopicValidatorResult.Ignore
    try {
      return VERDICTS[await handler(byTag !== undefined ? msg.data.subarray(1) : msg.data, from.toString())]
    } catch (err) {
      // the handler's own failure (a closed tree): not the sender's fault
      log('gossip handler failed: %e', err)
      return TopicValidatorResult.Ignore
    }
  })
  /** Subscribed to the topic while something takes its messages. */
  const subscribed = (): void => {
    if (stopped) return
    if (gossipHandler !== undefined || tagged.size > 0) pubsub.subscribe(topic)
    else pubsub.unsubscribe(topic)
  }
  const gossip: Gossip = {
    topic,
    publish: async (data) => {
      if (data.byteLength > GOSSIP_MAX_MESSAGE_BYTES) throw new RangeError(`a gossip message is at most ${GOSSIP_MAX_MESSAGE_BYTES} bytes, got ${data.byteLength}`)
      // no subscribed peer: nobody to send it to (a peer that comes later reconciles, and one
      // connected without gossip yet gets a direct push). Not handed to gossipsub then: it
      // remembers a published message's id for its seen TTL (2 minutes) even when the message
      // went to nobody, and refuses the same bytes as a duplicate until then (a kept record is
      // published again as is until someone got it: a host whose first peer's subscription had
      // not arrived yet told it to nobody for 2 minutes)
      if (pubsub.getSubscribers(topic).length === 0) return []
      const { recipients } = await pubsub.publish(topic, data)
      return recipients.map(p => p.toString())
    },
    // a host subscribes to the topic only while something takes its messages: a peer that does
    // not (an older version, a part that stopped) is not sent any, and gets ops by direct push
    handle: (handler) => {
      gossipHandler = handler
      subscribed()
    },
    handleTagged: (tag, handler) => {
      if (!(tag >= GOSSIP_TAGS.first && tag <= GOSSIP_TAGS.last)) throw new RangeError(`gossip tag 0x${tag.toString(16)} is not one of 0x${GOSSIP_TAGS.first.toString(16)} to 0x${GOSSIP_TAGS.last.toString(16)}`)
      if (handler === undefined) tagged.delete(tag)
      else tagged.set(tag, handler)
      subscribed()
    },
    subscribers: () => pubsub.getSubscribers(topic).map(p => p.toString()),
    mesh: () => (pubsub as unknown as { getMeshPeers: (t: string) => string[] }).getMeshPeers(topic)
  }

  const host: Host = {
    peerId: self,
    gossip,
    maxConnections,
    fullMeshPeers: fullMesh,
    neighbours: () => [...(chosen ?? new Set([...known.keys(), ...connectedIds()]))],
    beyondFullMesh: () => chosen !== undefined,
    closedHere: peer => trimmed.has(peer) || hungUp.has(peer),
    keepFirst: peers => { kept = peers },
    declaredDown: down => { isDown = down },
    trimmedThere: peer => mono() - (trimmedBy.get(peer) ?? -Infinity) < TRIM_NOTICE_VALID_MS,
    describeConnections: () => {
      const now = Date.now()
      const secs = (ms: number): string => `${Math.round(ms / 100) / 10}s`
      return [...connectionsById()].map(([id, conns]) => `${id.slice(-6)}${chosen?.has(id) === true ? ' neighbour' : ''}${kept().has(id) ? ' watch' : ''}${trimmed.has(id) ? ' trimmed' : ''}: ` +
        conns.map(c => `${c.direction} ${secs(now - c.timeline.open)} [${c.streams.map(st => `${st.protocol ?? '?'} ${secs(now - Math.max(st.timeline.open, meter.activeAt(st) ?? 0))}`).join(', ')}]`).join('; '))
    },
    inbound: () => {
      let oldest = Infinity
      for (const at of upgrading.values()) oldest = Math.min(oldest, at)
      return {
        pending: cm.incomingPendingConnections,
        upgrading: upgrading.size,
        oldestMs: upgrading.size === 0 ? 0 : mono() - oldest,
        connections: cm.getConnections().length,
        maxConnections: cm.getMaxConnections(),
        refused: { ...refusedInbound },
        pnetFailed: { ...pnetFailed }
      }
    },
    idontwantMinBytes: () => gossipOpts().idontwantMinDataSize,
    features: peer => identified.get(peer),
    addresses: () => (init.announce !== undefined && init.announce.length > 0
      ? libp2p.getMultiaddrs().map(a => a.toString())
      : ownAddrs()).filter(a => !isUnspecified(a)),
    peers: () => [...connectionsById()].map(([id, conns]) => {
      const rtts = conns.map(c => c.rtt).filter((r): r is number => typeof r === 'number')
      const addresses = knownAddrs(id)
      return {
        id,
        addresses: addresses.length > 0 ? addresses : conns.map(c => withPeer(c.remoteAddr, id)),
        ...(rtts.length > 0 ? { latencyMs: Math.min(...rtts) } : {})
      }
    }),
    peerIds: connectedIds,
    connected: peer => libp2p.getConnections().some(c => c.remotePeer.toString() === peer),
    connectedSince: () => new Map([...connectionsById()].map(([id, conns]) => [id, Math.min(...conns.map(c => c.timeline.open))])),
    dial,
    remember,
    closestPeers,
    traffic: meter.snapshot,
    provide: async (cid, opts) => { await libp2p.contentRouting.provide(cid, opts) },
    findProviders,
    handle: wire.handle,
    unhandle: wire.unhandle,
    newStream: wire.newStream,
    hangUp: async (peer, opts) => {
      const peerId = toPeerId(peer)
      hungUp.add(peer)
      redials.get(peer)?.abort()
      // ignored: a peer the store does not know has no keep-alive tag to drop
      await libp2p.peerStore.merge(peerId, { tags: { [KEEP_ALIVE]: undefined } }).catch(() => {})
      await libp2p.hangUp(peerId, opts)
    },
    addEventListener: (type, listener, opts) => { events.addEventListener(type, listener as EventListener, opts) },
    removeEventListener: (type, listener) => { events.removeEventListener(type, listener as EventListener) },
    stop: async () => {
      if (stopped) return
      stopped = true
      clearInterval(pinger)
      if (longLinkTimer !== undefined) clearTimeout(longLinkTimer)
      for (const later of longLinkCloses.values()) clearTimeout(later)
      longLinkCloses.clear()
      pingAbort.abort()
      if (announceTimer !== undefined) clearTimeout(announceTimer)
      refresh.cancel()
      trimming.cancel()
      gossipHandler = undefined
      for (const controller of redials.values()) controller.abort()
      await libp2p.stop()
    }
  }

  // a malformed join address is the user's mistake: refused before anything is dialled
  for (const addr of init.join ?? []) {
    try {
      multiaddr(addr)
    } catch (err: any) {
      await host.stop()
      throw new UsageError(`--join: not a multiaddr: ${JSON.stringify(addr)} (${err?.message ?? String(err)})`)
    }
  }
  // a join address that reset the connection before its handshake may be a member at its
  // connection cap whose trim has not caught up (many hosts joining through it at once), and one
  // silent through the nonce exchange a member too starved to answer in time (a loaded machine:
  // any pnet host sends its nonce first, whatever its key, so silence is no sign of a wrong
  // one): either is dialled again a few times before the join takes it for a host of no darkfs network
  const joinDial = async (addr: string): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await dial(addr)
        return
      } catch (err) {
        if (!(err instanceof NetworkKeyMismatchError) || !(err.message.endsWith(PNET_REFUSED) || err.message.endsWith(PNET_SILENT)) || attempt >= JOIN_REFUSED_RETRIES) throw err
        log('join address %s refused or did not answer the private-network handshake: dialling again', addr)
        await new Promise(resolve => setTimeout(resolve, JOIN_REFUSED_BACKOFF_MS * 2 ** attempt))
      }
    }
  }
  let joined = false
  for (const addr of init.join ?? []) {
    try {
      await joinDial(addr)
      joined = true
    } catch (err) {
      if (err instanceof NetworkKeyMismatchError) {
        await host.stop()
        throw err
      }
      // an unreachable join address is not fatal: others may be up, members dial us, and
      // rejoin() below keeps trying while this host has no peer
      log('join address %s did not answer: %s', addr, (err as Error).message)
    }
  }
  // no member answered (the seed is not up yet, the link is down): redial the join addresses
  // with backoff until one does or any member dials in
  if (!joined && (init.join ?? []).length > 0) rejoin(init.join!)
  return host

  function rejoin (addrs: string[]): void {
    const controller = new AbortController()
    redials.set(JOIN_REDIAL, controller)
    void (async () => {
      let delay = RECONNECT_RETRY_INTERVAL_MS
      while (!controller.signal.aborted && connectedIds().length === 0) {
        await sleep(delay * (1 - RECONNECT_JITTER * Math.random()), controller.signal)
        delay = Math.min(delay * RECONNECT_BACKOFF, RECONNECT_MAX_DELAY_MS)
        for (const addr of addrs) {
          if (controller.signal.aborted || connectedIds().length > 0) break
          try {
            await dial(addr, { signal: controller.signal })
            log('joined through %s', addr)
            break
          } catch (err) {
            // down still (or a wrong key, which dial() names): next address, then back off
            log('join address %s did not answer: %s', addr, (err as Error).message)
          }
        }
      }
    })().finally(() => { if (redials.get(JOIN_REDIAL) === controller) redials.delete(JOIN_REDIAL) })
  }
}

/**
 * The network's gossip topic: a hash of its key, so two networks never share a topic (and the
 * topic says nothing of the key).
 */
export function gossipTopic (networkKey: Uint8Array): string {
  const h = createHash('sha256').update('darkfs gossip topic\0').update(networkKey).digest('hex')
  // version 2: unsigned messages (StrictNoSign; version 1 was StrictSign), see the header
  return `/darkfs/gossip/2/${h.slice(0, 32)}`
}

/** The key of the join addresses' redial in the redial table (no peer id is this string). */
const JOIN_REDIAL = 'join'

// --- pnet with a key-mismatch detector ---------------------------------------------------------

/**
 * Largest piece pnet's stream cipher (the `xsalsa20` WebAssembly module, shared by every
 * connection) is handed at once. pnet passes whatever the connection has queued in one call,
 * which under backpressure can be tens of MiB; the module's memory stops growing at 16-64 MiB
 * and throws, killing the connection in the middle of a transfer. XOR in slices instead: the
 * key stream is the same, the memory stays small.
 */
export const PNET_XOR_SLICE_BYTES = 256 * 1024

/**
 * Patch the cipher class once, from the first protected connection's cipher object (found on
 * the connection rather than by module resolution, so it also works inside the single binary).
 */
function boundPnetCipher (conn: unknown): void {
  const xor = (conn as any)?.outboundXor
  const proto = xor !== undefined && xor !== null ? Object.getPrototypeOf(xor) : undefined
  if (proto === undefined || proto === null || typeof proto.update !== 'function' || proto.__darkfsSliced === true) return
  const update = proto.update
  proto.update = function (input: Uint8Array, output?: Uint8Array): Uint8Array {
    if (input.byteLength <= PNET_XOR_SLICE_BYTES) return update.call(this, input, output)
    const out = output ?? new Uint8Array(input.byteLength)
    for (let at = 0; at < input.byteLength; at += PNET_XOR_SLICE_BYTES) {
      const end = Math.min(input.byteLength, at + PNET_XOR_SLICE_BYTES)
      update.call(this, input.subarray(at, end), out.subarray(at, end))
    }
    return out
  }
  proto.__darkfsSliced = true
}

/**
 * pnet's send without its copies: @libp2p/pnet 3 joins what the connection queued into one buffer
 * (Uint8ArrayList.subarray(), a copy of every byte sent) and then XORs it into another; here what
 * Noise sealed for it (lean-transport.ts leanEncrypt: one buffer per write, no one else's) is
 * XORed in place (and reused once the socket has written it: lean-transport.ts pnetSend), and any
 * other piece straight into its place in one new buffer (the same key stream, in the same order:
 * the cipher's position moves on piece by piece). Patched once on the
 * class, from the first protected connection (as boundPnetCipher).
 */
function gatheredPnetSend (conn: unknown): void {
  const proto = conn !== undefined && conn !== null ? Object.getPrototypeOf(conn) : undefined
  if (proto === undefined || proto === null || typeof proto.sendData !== 'function' || proto.__darkfsGathered === true) return
  const sendData = proto.sendData
  proto.sendData = function (this: { outboundXor?: { update: (input: Uint8Array, output?: Uint8Array) => Uint8Array }, maConn?: PnetSocketSide }, data: Uint8Array | Iterable<Uint8Array> & { byteLength: number }): { sentBytes: number, canSendMore: boolean } {
    const xor = this.outboundXor
    const maConn = this.maConn
    if (data instanceof Uint8Array || xor === undefined || maConn === undefined) return sendData.call(this, data)
    return { sentBytes: data.byteLength, canSendMore: pnetSend(xor, data, maConn) }
  }
  proto.__darkfsGathered = true
}

/** What every libp2p peer sends first after pnet: multistream-select's header. */
const MSS_HEADER = new Uint8Array([19, ...new TextEncoder().encode('/multistream/1.0.0\n')])

function guardedPreSharedKey (psk: Uint8Array, onMismatch: (m: KeyMismatch) => void, onProtected: (address: string, signal?: AbortSignal) => { verified: () => void }, failed: Record<string, number> = {}): () => ConnectionProtector {
  return () => {
    const inner = preSharedKey({ psk, timeout: PNET_HANDSHAKE_TIMEOUT_MS })()
    return {
      async protect (connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
        const address = stripPeer(String((connection as any).remoteAddr ?? 'unknown'))
        const direction = connection.direction
        // own deadline for the nonce exchange: a silent peer is a refused handshake, not a hang
        // counted in the event loop's own time (swarm/abort.ts loopTimeSignal): a busy process's lag
        // is no silence of the peer's
        const bound = loopTimeSignal(PNET_HANDSHAKE_TIMEOUT_MS)
        const deadline = bound.signal
        const signal = anySignal([options?.signal, deadline])
        let protectedConn: MessageStream
        try {
          protectedConn = await inner.protect(connection, { ...options, signal })
          // its ciphers' slots are given back when the socket closes (xsalsa20.ts)
          releasePnetCiphers(protectedConn)
          boundPnetCipher(protectedConn)
          gatheredPnetSend(protectedConn)
          inPlacePnetInbound(protectedConn)
        } catch (err: any) {
          const how = `${direction} ${deadline.aborted ? 'deadline' : options?.signal?.aborted === true ? 'aborted' : String(err?.name ?? err?.code ?? 'error')}`
          failed[how] = (failed[how] ?? 0) + 1
          if (options?.signal?.aborted === true && !deadline.aborted) throw err
          // this side's own failure (a cipher without room threw RangeError: xsalsa20.ts
          // releasePnetCiphers) says nothing of the peer or its key
          if (!deadline.aborted && (err instanceof RangeError || err instanceof TypeError)) throw err
          // a reset before the peer's nonce is a refusal (its connection cap or rate limit,
          // its allow list) or no darkfs host; silence until the deadline, no darkfs host
          const reason = deadline.aborted ? PNET_SILENT : PNET_REFUSED
          onMismatch({ address, direction, reason })
          throw new NetworkKeyMismatchError(address, reason)
        } finally {
          bound.clear()
        }
        const check = direction === 'outbound' ? onProtected(address, options?.signal) : undefined
        watchFirstBytes(protectedConn, () => {
          const reason = direction === 'inbound'
            ? 'a peer connected with a different network key (or without one)'
            : 'the peer uses a different network key (or none)'
          onMismatch({ address, direction, reason })
          protectedConn.abort(new NetworkKeyMismatchError(address, reason))
        }, () => { check?.verified() })
        return protectedConn
      }
    }
  }
}

/**
 * Check the first decrypted bytes of a pnet connection against MSS_HEADER without consuming
 * them: bytes that arrived with the nonce already sit in the stream's read buffer (peeked);
 * later ones pass through its `onData`, which is wrapped until the header has been seen (or
 * found wrong).
 */
function watchFirstBytes (conn: MessageStream, onWrong: () => void, onRight: () => void = () => {}): void {
  const target = conn as unknown as { onData: (data: Uint8Array) => void, readBuffer?: { byteLength: number, subarray: () => Uint8Array } }
  let seen = 0
  let wrong = false
  const check = (bytes: Uint8Array): boolean => {
    for (let i = 0; i < bytes.length && seen < MSS_HEADER.length; i++, seen++) {
      if (bytes[i] !== MSS_HEADER[seen]) return false
    }
    return true
  }
  const early = target.readBuffer
  if (early !== undefined && early.byteLength > 0 && !check(early.subarray())) wrong = true
  if (wrong) {
    queueMicrotask(onWrong)
    return
  }
  if (seen >= MSS_HEADER.length) { onRight(); return }
  if (typeof target.onData !== 'function') return
  const original = target.onData
  target.onData = function (this: unknown, data: Uint8Array) {
    const bytes = data instanceof Uint8Array ? data : (data as any).subarray()
    if (!check(bytes)) {
      target.onData = original
      onWrong()
      return
    }
    if (seen >= MSS_HEADER.length) { target.onData = original; onRight() }
    original.call(conn, data)
  }
}

/** Socket error codes of a connection the peer dropped. */
const DROP_CODES = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'])
/** libp2p's (and it-*'s) error names for a connection or stream the other side ended. */
const DROP_NAMES = new Set(['StreamResetError', 'StreamClosedError', 'StreamAbortedError', 'StreamStateError', 'ConnectionClosedError',
  'ConnectionClosingError', 'MuxerClosedError', 'UnexpectedEOFError'])

/** A connection the peer reset or closed (as opposed to a timeout or a refused dial), by code and name, never by message. */
function isConnectionDrop (err: any): boolean {
  return flattenErrors(err).some(e => DROP_CODES.has(e?.code) || DROP_NAMES.has(e?.name))
}

function isHandshakeFailure (err: any): boolean {
  for (const e of flattenErrors(err)) {
    if (e?.name === 'EncryptionFailedError' || e?.name === 'NetworkKeyMismatchError') return true
  }
  return false
}

function flattenErrors (err: any, depth = 0): any[] {
  if (err == null || depth > 4) return []
  const nested = [...(Array.isArray(err.errors) ? err.errors : []), ...(err.cause !== undefined ? [err.cause] : [])]
  return [err, ...nested.flatMap(e => flattenErrors(e, depth + 1))]
}

function describeError (err: any): string {
  return String(err?.message ?? err)
}

function isTimeout (reason: any): boolean {
  return reason?.name === 'TimeoutError'
}

// --- peer exchange messages ------------------------------------------------------------------

export interface PexPeer { id: string, addrs: string[] }

/** A peer-exchange message that is malformed or breaks a bound. */
export class PeerExchangeError extends RpcProtocolError {
  override readonly name = 'PeerExchangeError'
}

/** PEX_PROTOCOL on rpc.ts: a call with this host's members, answered with the peer's. */
export const PEX = defineProtocol<{ peers: PexPeer[] }, { peers: PexPeer[] }>({
  id: PEX_PROTOCOL,
  maxStreams: 4,
  maxMessageBytes: PEX_MAX_MESSAGE_BYTES,
  timeoutMs: PEX_TIMEOUT_MS,
  malformed: PeerExchangeError,
  request: (v) => ({ peers: validatePex(v) }),
  reply: (v) => ({ peers: validatePex(v) })
})

/** A trim notice that is not an empty map. */
export class TrimNoticeError extends RpcProtocolError {
  override readonly name = 'TrimNoticeError'
}

/** TRIM_PROTOCOL on rpc.ts: an empty call, answered empty once taken. */
export const TRIM = defineProtocol<Record<string, never>, Record<string, never>>({
  id: TRIM_PROTOCOL,
  maxStreams: 2,
  maxMessageBytes: 1024,
  timeoutMs: TRIM_NOTICE_TIMEOUT_MS,
  malformed: TrimNoticeError,
  request: (v) => emptyMap(v),
  reply: (v) => emptyMap(v)
})

function emptyMap (v: unknown): Record<string, never> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length > 0) throw new TrimNoticeError('a trim notice is an empty map')
  return {}
}

/** A bounded, validated peer list; throws PeerExchangeError on anything else. */
function validatePex (msg: any): PexPeer[] {
  if (msg === null || typeof msg !== 'object' || !Array.isArray(msg.peers) || msg.peers.length > PEX_MAX_PEERS) {
    throw new PeerExchangeError('malformed peer-exchange message')
  }
  const out: PexPeer[] = []
  for (const p of msg.peers) {
    if (p === null || typeof p !== 'object' || typeof p.id !== 'string' || !Array.isArray(p.addrs)) throw new PeerExchangeError('malformed peer-exchange entry')
    const addrs = p.addrs.filter((a: unknown) => typeof a === 'string').slice(0, PEX_MAX_ADDRS) as string[]
    try {
      peerIdFromString(p.id)
      for (const a of addrs) multiaddr(a)
    } catch (err: any) {
      throw new PeerExchangeError(`malformed peer-exchange entry: ${String(err?.message)}`)
    }
    out.push({ id: p.id, addrs })
  }
  return out
}

// --- addresses ---------------------------------------------------------------------------------

function toPeerId (peer: string): PeerId {
  try {
    return peerIdFromString(peer)
  } catch (err: any) {
    throw new UsageError(`not a peer id: ${JSON.stringify(peer)}`)
  }
}

function withPeer (ma: Multiaddr, id: string): string {
  const s = ma.toString()
  return s.includes('/p2p/') ? s : `${s}/p2p/${id}`
}

function stripPeer (addr: string): string {
  const i = addr.indexOf('/p2p/')
  return i >= 0 ? addr.slice(0, i) : addr
}

function isUnspecified (addr: string): boolean {
  return /^\/ip4\/0\.0\.0\.0\//.test(addr) || /^\/ip6\/::\//.test(addr)
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const timer = setTimeout(done, ms)
    function done (): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

function addressAllowed (addr: Multiaddr, ranges: Cidr[]): boolean {
  const first = addr.getComponents()[0]
  if (first === undefined) return false
  // in-process memory connections have no IP: only tests use them
  if (first.name === 'memory') return true
  if ((first.name !== 'ip4' && first.name !== 'ip6') || first.value === undefined) return false
  return ranges.some(r => cidrContains(r, first.value as string))
}
