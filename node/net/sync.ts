// Metadata replication over the host (DESIGN.md §5): protocol '/darkfs/ops/2.0.0'.
//
//  - Gossip (issue 14): every op this host commits is published on the network's gossipsub
//    topic (host.ts), batched like pushes: gossipsub sends its own messages to every subscribed
//    peer it is connected to and forwards others' to its mesh (a handful of peers whatever the
//    network's size). A received message is validated by taking it: the ops go into the tree
//    (which verifies every author's signature), their missing parents are fetched from the peer
//    it came through (which took them before forwarding, so it has them), and only then is it
//    accepted and forwarded. A malformed message or an op the tree refuses is rejected (its
//    forwarder's gossip score drops); a message of ops all held already is ignored (not sent on).
//    In a full mesh (host.beyondFullMesh() false: this host is connected to every member it
//    knows), a message that came straight from its author is taken but not forwarded (the
//    validator says 'ignore', which gossipsub neither forwards nor scores): the author published
//    it to every subscribed member itself (floodPublish), so each forward is a copy its receiver
//    already has, and with extents riding inline in ops that was most of the gossip bytes (the 6
//    hosts of `DARKFS_BENCH=small-sync` forwarded each op four times). A member the author missed
//    (one that joined and is not yet connected to it, a link to it that broke) still gets the
//    ops: its reconcile when it connects to the author, and the heads this host publishes once
//    the burst is over (headsSoon), whose missing ancestors it fetches from this host.
//    Ops that reach this host another way (a reconcile, a direct push) are not forwarded one by
//    one: the tree's heads are published once the burst is over, and the hosts that miss them
//    fetch what lies below from this host.
//  - Direct push, for peers gossip does not reach: a peer connected but not (yet) known to be
//    subscribed to the topic (the moments after a connection, or a host of an older version)
//    gets this host's own new ops, and the ops it receives, pushed on OPS_PROTOCOL as before.
//    Anti-entropy covers the rest: a reconcile on every (re)connection.
//  - Reconcile (issue 14 item 2): on every (re)connection each side learns which ops the other
//    holds that it lacks by range-based set reconciliation of op ids (node/tree/rbsr.ts,
//    Negentropy's protocol): a few rounds of range fingerprints, split where they differ, id
//    lists where ranges are small, so the bytes follow what differs, not the log's size (10
//    missing of 1,000,000: a few KiB, `npm run sim`), also when both sides made ops while apart.
//    Then it fetches exactly those ops by id, in bounded batches, and gives them to the tree
//    together (one undo/redo of the ops they interleave with, not one per batch). A host holding no ops yet, a
//    peer that does not answer rbsr (an older version: it closes the stream), or a run past
//    MAX_RBSR_ROUNDS takes the older way: ask the peer's heads and fetch what is missing,
//    walking parents in bounded batches (the responder sends the wanted ops plus their
//    ancestors, breadth first, stopping at the asker's heads), until nothing is missing. That
//    walk also fetches the missing parents of a push or a gossip message.
//  - One run both ways (issue 15 item 8; SyncInit.bothWays, on by default): the client of an
//    rbsr run learns both what it lacks and what the peer lacks (rbsr.ts `have`), so both hosts
//    running one on connect did the work twice (a 10,000-vs-10,000 merge: 8 rounds and ~880 KB
//    where 4 and ~440 KB do). A host of
//    this version offers, in its run's first message (`b`), to tell the peer what it lacks; the
//    peer takes the offer (`b` in its answer) unless it holds no ops (it walks heads). While both
//    hosts' runs offer, the host whose peer id sorts first answers the other's first message with
//    its own run's token (`d`, starting that run if none is in flight) instead of a range answer:
//    the other's run stops there and waits (SERVED_WAIT_MS, then it runs alone) for the lack list
//    of that token: `lack` calls carrying the ids the peer lacks as each round finds them, the
//    last one marked (`e`), whose ops it fetches by id in one fetch (one receive). A run that
//    fails or is cut short after it took the offer or said `d` fails (it is retried), and tells
//    the peer so (`a` with `e`, best effort): the peer's run stops waiting and runs rbsr itself,
//    as it does at once when the peer disconnects (a run past MAX_RBSR_ROUNDS that tells fails
//    too). Lack calls are taken only for a run whose offer this host took, or for the list its
//    own run waits on, LACK_MAX_LIST ids a list at most; a give-up of any other token than the
//    current list's (a stale one) is dropped. A list that ends not whole (past LACK_MAX_LIST,
//    given up, its wait ran out, a newer list replaced it, the peer gone) drops the ids its fetch
//    has not asked yet (what is in flight is taken); one cut short (given up, past LACK_MAX_LIST)
//    that no run of this host waits on has this host reconcile with the peer again. One list's
//    fetch runs at a time per peer (the next waits for the one before to end). A host of the
//    version before neither offers nor takes (it reads neither field), so with it both sides run
//    rbsr as before; it is never sent a `lack` call.
//    An author's ops a holder publishes for it (see "Relay") are given by id to no peer for a
//    while (HANDED_QUIET_MS after the ask, 3 request timeouts while it runs): a lack list leaves
//    them out, a byid answer too to a peer that offered in this connection (so takes this
//    host's offer). The ids kept from each peer are remembered until it was told them (a lack
//    list carried them, a byid answer gave them); once their time is over a recheck runs rbsr
//    with the peer (offering nothing), forgets those it holds and pushes it those it lacks. A
//    recheck that fails (a request, the heads walk) is tried again with backoff while the peer
//    stays connected, and after HANDED_RECHECK_TRIES the kept ops are pushed as they are: a
//    holder that published nothing strands nothing, nor does a failed run. A peer that
//    takes no offer (the mode off on either side, the version before) gets them by id as before:
//    nothing would tell it them after the quiet time, to its next write or reconnect. Without
//    the keeping, in test/cluster/hold-relay, an fsync's op went out from its author 2-3x (one
//    run both ways on): the author's reconciles with the hosts that
//    joined after it (retried 500 ms after the one on connect, which failed: the new host's sync
//    did not serve yet) fell in the fsync's ask, and each told its peer it lacked the op (or the
//    peer, whose id sorts first, ran as the rbsr client and learnt it), which the peer fetched
//    from the author by id before the holder's gossip message came. With the mode off the
//    author's runs only fetched; a peer's run in that window (as the client) did the same.
//  - Asks by digest (SyncInit.byDigest, on by default): a run's fetches ask for the ops by their
//    32-byte digests end to end (`bydigest`, as a lack list names them), not as a list of CIDs
//    (`byid`): a 10,000-vs-10,000 merge's 20,000 ids were each a CBOR tag the answering host's
//    dag-cbor decoder made a CID of (CID.decode: ~65 ms of main-thread CPU and ~40 MB for the
//    two hosts), and the asker's encoder a tagged copy of. A host of this version says so in
//    every rbsr message it sends and in every answer to one that said so (`i`); it asks a peer by
//    digest while its latest rbsr message said `i` (as client: in an rbsr answer; as server: in
//    an rbsr request), until it disconnects; an ask by digest it refuses (a peer restarted as the
//    version before on a connection that outlived the cut) is asked again by id, and so are its
//    next ones. A host of the version before neither says nor reads it, and is asked by id.
//  - Catch-up (issue 16): a connection may outlive a cut link (no reconnect, so no reconcile on
//    connect), and a push or a fetch may fail on a live connection. Nothing is left to the next
//    connection: a peer a push failed to (or whose outbox overflowed) is owed this host's heads,
//    pushed again (the peer fetches what it lacks below them) until one push goes through; a
//    peer this host failed to reconcile with, or to fetch a push's parents from, is reconciled
//    with again; both with backoff (RETRY_FIRST_MS doubling up to RETRY_MAX_MS) while the peer
//    is connected. A peer that disconnects meanwhile is reconciled with both ways on reconnect.
//  - Hold (DESIGN.md §5: an fsync returns once one lost host loses nothing): hold(cid, peers)
//    asks peers in turn to hold one of this host's ops, and with it every op below it (a peer
//    applies an op only once it holds its parents). The peer answers once the op and its parents
//    are written to its op log, in its kernel, not once they are synced (they are within
//    WRITTEN_SYNC_MS, like every op received): the fsync that asks waits for its own host's sync
//    of the op as well, so the op survives either host lost, and both crashing (the asker's disk
//    has it). Syncing before the answer (session 16) made the peer's disk flush most of a small
//    fsync's wait on six hosts. The ask carries the op, and the peer fetches the parents it lacks from the asker:
//    one peer gets the op's bytes twice (gossip brings them too). Asking by name only, the peer
//    waiting for gossip to bring the op, was tried first: each fsync then waited out gossip's
//    gathering on both sides (GOSSIP_GATHER_MS), and SQLite's DELETE workload on six hosts took
//    19.8 s (6.9 s with the op in the ask, 3.3 s with no hold at all). Hosts of older versions
//    do not know the request (they close the stream): the caller asks only peers that announce
//    the 'hold/1' feature (features.ts).
//    The ask goes on HOLD_PROTOCOL ('/darkfs/hold/1.0.0'), a kept protocol (rpc.ts): the stream
//    of one ask to a peer carries the next (an fsync's asks run one at a time, OpHold, mostly to
//    the same peer), so an ask after the first costs one round trip, not a stream's opening
//    (multistream-select's round trip) and then the ask's. A peer that does not speak it (a host
//    of the version before, which has 'hold/1' on OPS_PROTOCOL only) refuses the protocol when
//    the stream is opened: it is asked on OPS_PROTOCOL, as before, until it disconnects.
//  - Relay (issue 15; DESIGN.md §4: a host on a thin uplink uploads each byte about once): an
//    fsync's op carries its small writes inline (64 KiB for 16 pages), and its author sent it
//    once in the hold ask and once more to every peer by gossip (on six hosts, 400 of the 446 KB
//    on the wire per fsync of 16 pages were copies of it). Now the ask carries it alone: OpHold
//    tells Sync of each op it is about to ask for (holding(), called once the op is signed,
//    before it is applied), and that op, with this host's ops before it not yet published, is
//    held back from gossip; the ask says `r`, and the holder, once it holds them (the op, and
//    the parents it fetched from the asker), publishes them on gossip as its own message naming
//    itself (`r`: its peer id) and answers `r`. The author then drops them from its queue. An ask
//    that no peer held, or one held by a host of the version before (its answer has no `r`),
//    and unheld() (no peer to ask), end with the author publishing them after all. The ops of
//    this host that follow held-back ones wait for the ask's end (they name them), and after a
//    relayed ask a little more (GOSSIP_PUBLISH_GATHER_MS + GOSSIP_GATHER_MS: the holder's
//    gathering): a receiver that got them first fetched the relayed ops from this host (SQLite's
//    DELETE workload on six hosts: 1.5 MB of 1.9 MB of ops again). In a full mesh a receiver
//    does not forward a message straight from the holder that names itself, as one straight
//    from its author: the holder sent it to every member. Durability is the hold's, unchanged:
//    the fsync returns once the holder has the op written and this host has it synced, and a
//    holder that publishes nothing (stopped meanwhile) leaves the op to heads and reconciles.
//    The holder's message reaches the author too (gossipsub sends to every subscribed peer),
//    often before the author's own log sync of the op is done: freshOps() takes none of this
//    host's ops on their way to its log, and the author knows the ops it handed by their bytes
//    (a compare, not a hash: cameBack()). The ask carries, besides its op, this host's ops below
//    it that have not gone out yet (`b`: stamped with it in one commit, or waiting in the
//    publish queue, as the ops between two fsyncs of SQLite do during a burst), which the holder
//    fetched from the asker before, a round trip inside the fsync (unsentBelow()).
//
// Wire (rpc.ts: one request per stream, length-prefixed dag-cbor envelopes), bounded in bytes
// and in ops:
//   notice { t: 'push', ops: [block...] }          (and, on gossip, the same map; a heads
//                                                   message adds n: 8 random bytes, see publishOps;
//                                                   a relaying holder's adds r: its peer id)
//   call   { t: 'heads' }                          -> { t: 'heads', heads: [CID...] }
//   call   { t: 'get', want: [CID...], have: [CID...] } -> { t: 'ops', ops: [block...] }
//   call   { t: 'rbsr', m: bytes, b?: true, i?: true } -> { t: 'rbsr', m: bytes, b?: true, i?: true } | { t: 'rbsr', m: (empty), d: uint, i?: true }
//                                                   (rbsr.ts messages, the asker is the client; b, d: see "One run both
//                                                   ways"; i: the sender takes bydigest, see "Asks by digest")
//   call   { t: 'lack', k: uint, ids: bytes, e?: true } -> { t: 'lack' }  (ids: 32-byte op digests end to end, at most
//                                                   LACK_MAX_IDS; k: the run's token; e: the list's last call;
//                                                   a (with e, no ids): the run gave up, the list is cut short)
//   call   { t: 'byid', ids: [CID...], c?: true } -> { t: 'ops', ops: [block...] }  (exactly those it holds; with
//                                                   c, BYID_MAX_BYTES of them at most: the asker asks again)
//   call   { t: 'bydigest', ids: bytes, c?: true } -> { t: 'ops', ops: [block...] }  (byid with the ops named by
//                                                   their 32-byte digests end to end, 1..MAX_CIDS of them; asked only
//                                                   of a peer whose rbsr message said i: see "Asks by digest")
//   call   { t: 'hold', id: CID, op: block, r?: true, b?: [block...] } -> { t: 'held', held: bool, r?: true }  (see "Hold"
//                                                   and "Relay" above; also the one call of
//                                                   HOLD_PROTOCOL, whose streams are kept)
// A malformed message or an op the tree rejects closes that stream with an error; nothing
// already stored is touched (the tree verifies every op before it stores any of a batch).
import * as dagCbor from '@ipld/dag-cbor'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import type { Host } from './host.ts'
import { GOSSIP_MAX_MESSAGE_BYTES } from './host.ts'
import { KeptCaller, RpcProtocolError, RpcRemoteError, RpcTimeoutError, call, defineProtocol, notify, serve } from './rpc.ts'
import { MAX_OP_BYTES, RBSR_ID_BYTES, RbsrError, cidOf, idOf, opCidOf, rbsrContinue, rbsrInitiate, rbsrRespond } from '../tree/index.ts'
import type { OpsEventDetail, Tree } from '../tree/index.ts'
import { logger } from '../log.ts'
import { anySignal } from '../abort.ts'

const log = logger('net:sync')

/** 2.0.0: messages in rpc.ts's envelopes (1.0.0 sent the bare dag-cbor messages). */
export const OPS_PROTOCOL = '/darkfs/ops/2.0.0'
/** Hold asks on kept streams (see "Hold" in the header): hosts of older versions do not speak it. */
export const HOLD_PROTOCOL = '/darkfs/hold/1.0.0'
/** Hold calls open to one peer at once (HOLD.maxStreams; an asker keeps one stream, and opens another only while one is busy). */
export const MAX_HOLD_STREAMS = 8
/** Default most ops per message (push or get answer). */
export const DEFAULT_MAX_BATCH = 256
/** Largest message: a full batch of the largest ops fits. */
export const OPS_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
/** Most op blocks accepted in one message from a peer (whatever its own maxBatch). */
export const MAX_OPS_PER_MESSAGE = 4096
/** Most CIDs in a heads answer or a get request's want/have lists. */
export const MAX_CIDS = 1024
/**
 * Bounds of a reconcile's fetch by ids. It starts as the version before did, one request of
 * FETCH_IDS_START ids, and grows (the request's ids doubled up to FETCH_IDS_PER_REQUEST, then one
 * more request in flight up to FETCH_IN_FLIGHT) only while answers come back within
 * FETCH_GROW_FRACTION of the request timeout; an answer slower than FETCH_SLOW_FRACTION of it, or a
 * request timed out, shrinks them (a timed-out request's ids are asked again, fewer at once). What
 * is in flight is so bounded by what the link carries within the timeout: at 1 Mbit/s, 4 requests
 * of 1,024 ops each (the version before this one) never came within it.
 */
export const FETCH_IDS_START = DEFAULT_MAX_BATCH
export const FETCH_IDS_PER_REQUEST = 1024
export const FETCH_IN_FLIGHT = 4
export const FETCH_GROW_FRACTION = 1 / 4
export const FETCH_SLOW_FRACTION = 1 / 2
/** Whole quick answers at the size of the last short one before a request asks more again. */
export const FETCH_PROBE_AFTER = 8
/** Timeouts one after another (none answered between) that fail a fetch: a silent peer is given up. */
export const FETCH_TIMEOUTS_MAX = 3
/** Most ops in a byid answer unless SyncInit.maxBatch is given (an asker of an older version asks for at most its maxBatch). */
export const BYID_MAX_OPS = 1024
/**
 * Most op bytes in a byid answer to an asker that asks again for what an answer left out (its
 * request says so: `c`); an asker of an older version gets up to a message's bound, as before.
 * At 1 Mbit/s (README: --uplink 1mbit) it takes ~4.5 s, within REQUEST_TIMEOUT_MS with room: a
 * fetch's first request (256 ids of ~4.5 KB ops) capped at 1 MiB timed out there (8.4 s of bytes).
 */
export const BYID_MAX_BYTES = 512 * 1024
/** Fetched ops given to the tree in one receive() at most (reconcile by ids), and their bytes. */
export const FETCH_RECEIVE_OPS = 20_000
export const FETCH_RECEIVE_BYTES = 32 * 1024 * 1024
/** Most get rounds in one reconciliation (each fetches up to maxBatch ops). */
export const MAX_RECONCILE_ROUNDS = 4096
/** Most bytes of one rbsr message this host makes (rbsr.ts frame limit). */
export const RBSR_FRAME_BYTES = 256 * 1024
/** Largest rbsr message accepted (the peer's frame limit may differ a little: room for it). */
export const RBSR_MAX_MESSAGE_BYTES = RBSR_FRAME_BYTES + 4096
/** Most ids in one lack call (32 bytes each: 512 KiB). */
export const LACK_MAX_IDS = 16_384
/**
 * Most ids one lack list gives the host it serves (16 calls: 8 MiB of digests). Past it the
 * served host keeps the ids it took, drops the rest (the calls are still answered: the teller's
 * run is not failed and retried for it) and runs rbsr itself, which fetches what it lacks.
 */
export const LACK_MAX_LIST = 16 * LACK_MAX_IDS
/** A fetch drops the ids it asked for from its list once this many were (and at least half of it). */
const FETCH_TRIM_IDS = 4096
/** How long a run the peer's run serves (`d`) waits for its lack list's end before it runs rbsr itself (two request timeouts). */
export const SERVED_WAIT_MS = 20_000
/** Most rbsr rounds in one reconciliation; past it, the heads walk finishes the job (a run telling the peer what it lacks fails instead and is retried: its peer waits on its list; ~2M differences each way take 256 rounds at a 256 KiB frame). */
export const MAX_RBSR_ROUNDS = 256
/** Time for one request/answer exchange. */
export const REQUEST_TIMEOUT_MS = 10_000
/** OPS streams (calls and pushes) open to one peer at once (OPS.maxStreams; libp2p takes twice it per connection). */
export const MAX_INBOUND_STREAMS = 16
/** Most ops waiting to be pushed to one peer; beyond it the peer catches up by reconciling. */
export const MAX_OUTBOX_OPS = 10_000
/** First wait before a failed push or reconcile with a connected peer is tried again. */
export const RETRY_FIRST_MS = 500
/** Longest wait between two such tries (the wait doubles from RETRY_FIRST_MS). */
export const RETRY_MAX_MS = 30_000
/** Longest peer id string a relayed gossip message may name (an Ed25519 peer id is 52). */
const MAX_PEER_ID_CHARS = 128
/** Most own ops a hold ask carries below the op it names, and their bytes with it (see "Relay" in the header). */
const CARRY_MAX_OPS = 64
const CARRY_MAX_BYTES = 1024 * 1024
/**
 * How long after a hold ask's holder said it publishes this host's ops (see "Relay" in the
 * header) this host still gives them to no peer by id: a lack list leaves them out, a byid answer
 * too (the holder's gossip message is on its way: the holder's gathering, GOSSIP_PUBLISH_GATHER_MS,
 * and the receivers', GOSSIP_GATHER_MS, with room for a loaded host). A peer they were kept from
 * is reconciled with again once this is over (see "One run both ways" in the header).
 */
export const HANDED_QUIET_MS = 1000
/** Failed rechecks of the ops kept from a peer before they are pushed to it as they are. */
export const HANDED_RECHECK_TRIES = 3
/**
 * The same while the ask is under way (its op is held back from gossip), in request timeouts
 * (SyncInit.requestTimeoutMs): bounded, as an ask is (a commit that failed marks an op that never comes).
 */
export const HANDED_PENDING_TIMEOUTS = 3
/** Most own ops kept from peers that way at once (the oldest is given again past it). */
const MAX_HANDED = 1024
/** Most own ops remembered as published by a holder, to know them when its message comes back. */
const MAX_RETURNING = 256
/** Most op ids remembered as "came from peer X" (so they are not echoed back). */
const MAX_ORIGINS = 10_000
/** Ops that came by another way than gossip, or by gossip not forwarded, are followed by a heads publish this long after the last one. */
export const HEADS_PUBLISH_DELAY_MS = 500
/** Most heads in one heads publish. */
export const MAX_PUBLISHED_HEADS = 64
/** Bytes of ops in one gossip message (its envelope and gossipsub's fit in the rest). */
export const GOSSIP_BATCH_BYTES = GOSSIP_MAX_MESSAGE_BYTES - 4096
/** Most ops of waiting gossip messages taken into the tree in one receive (a message is never split). */
export const GOSSIP_RECEIVE_BATCH_OPS = 4096
/** A gossip message this soon after the last receive is part of a burst: it waits GOSSIP_GATHER_MS for more. */
export const GOSSIP_BURST_MS = 200
/**
 * How long the first gossip message of a batch waits for others during a burst (a tenth of the
 * gossip validation's 100 ms budget, and little beside close-to-open's "about a second").
 */
export const GOSSIP_GATHER_MS = 25
/**
 * How long this host's own first op of a gossip message waits for those that follow during a
 * burst. Longer than a receiver's GOSSIP_GATHER_MS: each message costs every peer a gossipsub
 * message, its decryption and a receive, whatever it holds, and an author making ops one file at
 * a time (a shell loop making 5,000 small files on six hosts: a create and a write op each)
 * sent a message every 3 files with 25 ms. Nothing waits for gossip but other hosts' views
 * (close-to-open, about a second): an fsync's ops reach a peer in its hold ask.
 */
export const GOSSIP_PUBLISH_GATHER_MS = 100

/**
 * Time markers of reconciles (issue 15 item 8), off unless a benchmark turns them on: per phase,
 * the wall ms summed over its runs, the runs, their ops or items, and their bytes.
 */
export interface SyncPhase { ms: number, runs: number, items: number, bytes: number }
export const syncTrace: { on: boolean, phases: Record<string, SyncPhase>, events?: Array<{ phase: string, start: number, end: number, items: number }> } = { on: false, phases: {} }
function traceMark (phase: string, t0: number, items = 0, bytes = 0): void {
  const p = (syncTrace.phases[phase] ??= { ms: 0, runs: 0, items: 0, bytes: 0 })
  const end = performance.now()
  // with `events`, each run's start and end too (performance.now()): a timeline of the merge
  syncTrace.events?.push({ phase, start: t0, end, items })
  p.ms += end - t0
  p.runs++
  p.items += items
  p.bytes += bytes
}

/** The part of the Tree sync uses (node/tree/index.ts); its 'ops' event carries OpsEventDetail. */
export type SyncTree = Pick<Tree, 'heads' | 'hasOp' | 'getOp' | 'authorOf' | 'receive' | 'written' | 'opSet' | 'addEventListener' | 'removeEventListener'>

/** The part of the Host sync uses. */
export type SyncHost = Pick<Host, 'peerId' | 'peers' | 'handle' | 'unhandle' | 'newStream' | 'addEventListener' | 'removeEventListener'> & Partial<Pick<Host, 'gossip' | 'beyondFullMesh'>>

export interface SyncInit {
  /** Most ops per message. Default DEFAULT_MAX_BATCH. */
  maxBatch?: number
  /** Time for one request/answer. Default REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number
  /**
   * One rbsr run serves both directions with a peer that does too (see "One run both ways" in
   * the header). Default true. A host with it off runs as the version before: it ignores a
   * peer's offer and takes no `lack` call.
   */
  bothWays?: boolean
  /** How long a run the peer's serves waits for its lack list's end. Default SERVED_WAIT_MS. */
  servedWaitMs?: number
  /** How long own ops a holder publishes are kept from peers asking by id after the ask. Default HANDED_QUIET_MS. */
  handedQuietMs?: number
  /**
   * Fetches ask a peer that says it takes them (`i`) by digest (see "Asks by digest" in the
   * header). Default true. A host with it off runs as the version before: it neither says `i`
   * nor takes a `bydigest` call, and asks by id.
   */
  byDigest?: boolean
}

export interface SyncComponents { host: SyncHost, tree: SyncTree }

export interface SyncStats {
  pushedOps: number
  receivedOps: number
  reconciles: number
  badMessages: number
  retries: number
  /** Ops this host published on gossip (its own, and heads), and in how many messages. */
  publishedOps: number
  publishedMessages: number
  /** Ops of other hosts this host published for them as their holder, and own ops a holder published for this host (see "Relay" in the header). */
  relayedOps: number
  handedOps: number
  /** Own ops a hold ask carried below the op it named (held back, not out yet: see "Relay" in the header). */
  carriedOps: number
  /** Own ops that came back in a holder's message, known by their bytes (not hashed again). */
  returnedOps: number
  /** Hold asks this host answered whose op's parents it fetched from the asker. */
  holdFetches: number
  /** tree.receive() calls that took gossip messages (several messages each during a burst). */
  gossipReceives: number
  /** Gossip messages accepted, ignored (nothing new, or parents not found), rejected. */
  gossipAccepted: number
  gossipIgnored: number
  gossipRejected: number
  /** Of the accepted, those not forwarded (full mesh, straight from their author: see the header). */
  gossipUnforwarded: number
  /** Rbsr rounds this host ran as the asker, and the bytes of their messages both ways. */
  rbsrRounds: number
  rbsrBytes: number
  /** Byid requests this host made to fetch what its reconciles found missing. */
  fetchRequests: number
  /** Of those, the ones asked by digest (`bydigest`: a peer that said `i`). */
  fetchByDigest: number
  /** Of those, requests that timed out and were asked again, fewer at once (a link slower than what was in flight). */
  fetchTimeouts: number
  /** Reconciliations that fell back to the heads walk (no ops here yet, an older peer, too many rounds). */
  headsReconciles: number
  /** Rbsr runs of this host the peer's own run served (it answered `d`), and ids this host's runs told peers they lack. */
  rbsrServed: number
  lackSent: number
  /** Own ops a lack list or a byid answer of this host left out while a holder publishes them (HANDED_QUIET_MS), and the reconciles run again for them. */
  handedKept: number
  handedRechecks: number
  /** Of those kept ops, the ones pushed without a run after HANDED_RECHECK_TRIES failed rechecks. */
  handedGivenUp: number
}

export interface Sync {
  start: () => Promise<void>
  /** Stop serving and gossiping. Idempotent. */
  stop: () => Promise<void>
  /**
   * Reconcile with `peer` now: fetch its heads and everything this host misses of them.
   * Resolves once done (concurrent calls for one peer share the run).
   */
  synced: (peer: string, opts?: AbortOptions) => Promise<void>
  /**
   * Have one of `peers`, asked in turn, hold this host's op `cid` and every op below it, written to
   * its op log (see "Hold" in the header). Resolves with the peer that does, or undefined when none did.
   */
  hold: (cid: CID, peers: readonly string[], opts?: AbortOptions & { op?: Uint8Array }) => Promise<string | undefined>
  /**
   * This host's op `cid` is about to be asked for with hold() (an fsync's, called once it is
   * signed, before it is applied): it and the ops of this host before it that have not gone out
   * yet are not published here; the ask carries them and the holder publishes them (see "Relay"
   * in the header), unless the ask ends with no holder that does, or unheld() is called.
   */
  holding: (cid: CID) => void
  /** No peer will be asked for op `cid` (none to ask): what holding() kept back up to it is published here. */
  unheld: (cid: CID) => void
  stats: () => SyncStats
}

/** A message on OPS_PROTOCOL that is malformed or breaks a bound. */
export class SyncProtocolError extends RpcProtocolError {
  override readonly name = 'SyncProtocolError'
}

/**
 * A hold ask; `r`: the holder publishes the op (and the parents it fetches) on the asker's
 * behalf; `b` (with `r`): the asker's ops below it not sent yet, oldest first (see "Relay" in the header).
 */
export type OpsRequest = { t: 'heads' } | { t: 'get', want: CID[], have: CID[] } | { t: 'rbsr', m: Uint8Array, b?: true, i?: true } | { t: 'lack', k: number, ids: Uint8Array, e?: true, a?: true } | { t: 'byid', ids: CID[], c?: true } | { t: 'bydigest', ids: Uint8Array, c?: true } | { t: 'hold', id: CID, op: Uint8Array, r?: true, b?: Uint8Array[] }
/** `r` of a held answer: the holder publishes what it took (asked with `r`; a host of the version before never says it). */
export type OpsReply = { t: 'heads', heads: CID[] } | { t: 'ops', ops: Uint8Array[] } | { t: 'rbsr', m: Uint8Array, b?: true, d?: number, i?: true } | { t: 'lack' } | { t: 'held', held: boolean, r?: true }
/** `r` (gossip only): the publisher's peer id, in a message that holds ops it relays for their author. */
export interface OpsPush { t: 'push', ops: Uint8Array[], r?: string }
export type HoldRequest = Extract<OpsRequest, { t: 'hold' }>
/** A reconcile's fetch by ids (openFetch): ids added as they are found, end() once all are. */
/**
 * add(): ids to fetch; end(): once every id is added, wait for them all. cut(): drop the ids not
 * asked yet (what is in flight is still waited for by end()), and take no more.
 */
interface Fetch { add: (digests: Uint8Array[]) => void, end: () => Promise<void>, cut: () => void }
export type HoldReply = Extract<OpsReply, { t: 'held' }>
/** The ops kept from a peer (see keptFrom in createSync). */
interface Kept { ids: Map<string, CID>, timer?: ReturnType<typeof setTimeout>, fails: number, until: number }

export function createSync (init: SyncInit = {}): (components: SyncComponents) => Sync {
  const maxBatch = Math.min(init.maxBatch ?? DEFAULT_MAX_BATCH, MAX_OPS_PER_MESSAGE)
  const requestTimeoutMs = init.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
  // a maxBatch given bounds byid answers too (as in older versions, whose answers held maxBatch ops at most)
  const byidMax = Math.min(init.maxBatch ?? BYID_MAX_OPS, MAX_CIDS)
  const bothWays = init.bothWays ?? true
  const byDigest = init.byDigest ?? true
  const servedWaitMs = init.servedWaitMs ?? SERVED_WAIT_MS
  const handedQuietMs = init.handedQuietMs ?? HANDED_QUIET_MS
  const handedPendingMs = HANDED_PENDING_TIMEOUTS * requestTimeoutMs
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError(`createSync: maxBatch must be an integer >= 1, got ${String(maxBatch)}`)

  return ({ host, tree }) => {
    let running = false
    const shutdown = new AbortController()
    const stats: SyncStats = { pushedOps: 0, receivedOps: 0, reconciles: 0, badMessages: 0, retries: 0, publishedOps: 0, publishedMessages: 0, relayedOps: 0, handedOps: 0, carriedOps: 0, returnedOps: 0, holdFetches: 0, gossipReceives: 0, gossipAccepted: 0, gossipIgnored: 0, gossipRejected: 0, gossipUnforwarded: 0, rbsrRounds: 0, rbsrBytes: 0, fetchRequests: 0, fetchByDigest: 0, fetchTimeouts: 0, headsReconciles: 0, rbsrServed: 0, lackSent: 0, handedKept: 0, handedRechecks: 0, handedGivenUp: 0 }
    const gossip = host.gossip
    /** Op ids taken from gossip (and their parents fetched meanwhile): gossipsub forwards those. */
    const gossiped = new Set<string>()
    const markGossiped = (id: string): void => {
      gossiped.add(id)
      if (gossiped.size > MAX_ORIGINS) gossiped.delete(gossiped.keys().next().value as string)
    }
    /**
     * This host's ops that a hold ask carries (holding()), held back from gossip: 'pending' while
     * the ask runs, then 'relayed' (the holder publishes them) or 'released' (this host does),
     * until the publisher (ready()) comes to them. In the order they were marked, which is the
     * order of this host's ops.
     */
    const holdMarks = new Map<string, 'pending' | 'relayed' | 'released'>()
    /** When the last ask whose holder publishes for this host ended. */
    let relayedAt = -Infinity
    /**
     * The ask for op `id` ended: it and the marks before it still pending (its ancestors, asked
     * for with it: OpHold asks for the newest op only), and those of the ops it carried (`also`).
     */
    const settle = (id: string, how: 'relayed' | 'released', also: readonly string[] = []): void => {
      if (!holdMarks.has(id)) return
      if (how === 'relayed') relayedAt = performance.now()
      for (const [k, v] of holdMarks) {
        if (v === 'pending') { holdMarks.set(k, how); handedEnd(k, how) }
        if (k === id) break
      }
      for (const k of also) if (holdMarks.get(k) === 'pending') { holdMarks.set(k, how); handedEnd(k, how) }
      void publish()
    }
    /**
     * This host's ops a holder publishes, or is being asked to (id -> until when they are kept
     * from peers that ask by id, or are told they lack them: HANDED_QUIET_MS after the ask's end,
     * HANDED_PENDING_TIMEOUTS request timeouts while it runs). The holder's gossip message brings them to every peer
     * (the reason for the relay: this host uploads each op about once); a reconcile running
     * meanwhile would have peers fetch them from here first (test/cluster/hold-relay: 2-3 copies
     * of an fsync's op went out from its author with one run both ways on).
     */
    const handed = new Map<string, number>()
    const handedStart = (id: string): void => {
      handed.delete(id)
      handed.set(id, performance.now() + handedPendingMs)
      if (handed.size > MAX_HANDED) handed.delete(handed.keys().next().value as string)
    }
    const handedEnd = (id: string, how: 'relayed' | 'released'): void => {
      if (!handed.has(id)) return
      // released: this host publishes them itself, as any op of its own
      if (how === 'released') handed.delete(id)
      else handed.set(id, performance.now() + handedQuietMs)
    }
    /** Entries past their time dropped: once none is left, lack lists and byid answers look up nothing (a merge's 10,000 ids). */
    const pruneHanded = (now: number): void => {
      for (const [id, until] of handed) if (until <= now) handed.delete(id)
    }
    /** Until when op `id` is kept from peers (0: it is not); expired entries are dropped. */
    const handedUntil = (id: string, now: number): number => {
      const until = handed.get(id)
      if (until === undefined) return 0
      if (until > now) return until
      handed.delete(id)
      return 0
    }
    /**
     * Peer -> this host's ops kept from it (id -> CID) that it was not told yet, the timer of
     * their recheck and how many rechecks failed. An entry ends only when the peer was told them
     * (a lack list carried them, a byid answer gave them), when a recheck's rbsr run found the
     * peer holds them, or when they were pushed to it; or when the peer goes away (its reconnect
     * reconciles both ways). `until`: the latest end of a quiet time asked for while a timer or a
     * run was under way (the next recheck waits for it).
     */
    const keptFrom = new Map<string, Kept>()
    /**
     * Peer -> its recheck running now: one at a time per peer (ops kept meanwhile are rechecked
     * once it ends), and stop() waits for them (their fetch applies ops to the tree).
     */
    const rechecksRunning = new Map<string, Promise<void>>()
    const keep = (peer: string, id: string, cid: CID): void => {
      let k = keptFrom.get(peer)
      if (k === undefined) keptFrom.set(peer, k = { ids: new Map(), fails: 0, until: 0 })
      k.ids.set(id, cid)
    }
    /** Op `id` reached `peer` (or is known to be there): it no longer waits on a recheck. */
    const toldOf = (peer: string, id: string): void => {
      const k = keptFrom.get(peer)
      if (k === undefined || !k.ids.delete(id) || k.ids.size > 0) return
      clearTimeout(k.timer)
      keptFrom.delete(peer)
    }
    /**
     * Ops were kept from `peer` until `until`: once that is over, a recheck runs rbsr with it
     * (offering nothing: its own run), pushes it those kept ops it lacks and forgets those it holds.
     * A recheck that fails is tried again with backoff while the peer stays connected; after
     * HANDED_RECHECK_TRIES failures the kept ops are pushed to it as they are (none is stranded
     * on a holder that published nothing, nor on a run that fell back to the heads walk).
     */
    const recheck = (peer: string, until: number): void => {
      const k = keptFrom.get(peer)
      if (!running || k === undefined) return
      if (until > k.until) k.until = until
      if (k.timer !== undefined || rechecksRunning.has(peer)) return
      until = k.until
      k.until = 0
      const wait = k.fails === 0 ? Math.max(0, Math.min(until - performance.now(), handedQuietMs)) + 1 : Math.min(RETRY_FIRST_MS * 2 ** (k.fails - 1), RETRY_MAX_MS)
      k.timer = setTimeout(() => {
        k.timer = undefined
        if (!running || rechecksRunning.has(peer)) return
        rechecksRunning.set(peer, runRecheck(peer, k).finally(() => {
          rechecksRunning.delete(peer)
          // again (a failed run, ops a holder still publishes, ops kept during the run)
          if ((keptFrom.get(peer)?.ids.size ?? 0) > 0) recheck(peer, 0)
        }))
      }, wait)
      k.timer.unref?.()
    }
    const runRecheck = async (peer: string, k: Kept): Promise<void> => {
      if (!running || keptFrom.get(peer) !== k) return
      if (k.ids.size === 0 || !host.peers().some(p => p.id === peer)) { keptFrom.delete(peer); return }
      stats.handedRechecks++
      const lacking = new Set<string>()
      const start = new Map(k.ids)
      // past the tries, the kept ops are pushed without a run
      const giveUp = k.fails >= HANDED_RECHECK_TRIES
      let ok = false
      if (!giveUp) {
        try {
          // after a reconcile in flight with the peer (not fetching the same ops twice at once)
          await reconciling.get(peer)?.catch(() => {})
          ok = running && await reconcileRanges(peer, undefined, false, lacking)
        } catch (err) {
          log('rechecking the ops kept from %s failed: %e', peer, err)
        }
      }
      if (!running || keptFrom.get(peer) !== k) return
      if (!ok && !giveUp) {
        // the run did not end (a failed request, the heads walk): again, with backoff (the run's end schedules it)
        k.fails++
        return
      }
      const now = performance.now()
      let until = 0
      for (const [id, cid] of start) {
        if (!k.ids.has(id)) continue
        // the run found the peer holds it
        if (ok && !lacking.has(id)) { k.ids.delete(id); continue }
        const u = handedUntil(id, now)
        if (u > 0) { if (u > until) until = u; continue } // still a holder's to publish
        const bytes = tree.getOp(cid)
        k.ids.delete(id)
        if (bytes === undefined) continue
        if (giveUp) stats.handedGivenUp++
        pushTo(peer, bytes)
      }
      if (k.ids.size === 0) { keptFrom.delete(peer); return }
      // those a holder was asked to publish again: rechecked once that is over (the run's end schedules it)
      k.fails = 0
      if (until > k.until) k.until = until
    }
    /** `ids` (32-byte digests) less this host's ops kept from peers now; `peer` is reconciled with again for those. */
    const withoutHanded = (peer: string, ids: Uint8Array[]): Uint8Array[] => {
      if (handed.size === 0) return ids
      const now = performance.now()
      pruneHanded(now)
      if (handed.size === 0) return ids
      let until = 0
      const out = ids.filter(d => {
        const cid = opCid(d)
        const id = idOf(cid)
        const u = handedUntil(id, now)
        if (u > until) until = u
        if (u > 0) keep(peer, id, cid)
        return u === 0
      })
      if (until > 0) {
        stats.handedKept += ids.length - out.length
        recheck(peer, until)
      }
      return out
    }
    /**
     * Own ops a holder publishes for this host (those an ask with `r` carried), by length: its
     * message comes back here too (gossipsub sends to every subscribed peer), and an op found
     * in it byte for byte is known without hashing it (oldest dropped past MAX_RETURNING).
     */
    const returning = new Map<number, Array<{ cid: CID, bytes: Uint8Array }>>()
    let returningCount = 0
    const expectBack = (cid: CID, bytes: Uint8Array): void => {
      if (returningCount >= MAX_RETURNING) {
        const [len, list] = returning.entries().next().value as [number, Array<{ cid: CID, bytes: Uint8Array }>]
        list.shift()
        returningCount--
        if (list.length === 0) returning.delete(len)
      }
      const list = returning.get(bytes.byteLength)
      if (list === undefined) returning.set(bytes.byteLength, [{ cid, bytes }])
      else list.push({ cid, bytes })
      returningCount++
    }
    /** The CID of `bytes` when it is an own op a holder publishes for this host (then forgotten). */
    const forgetBack = (bytes: Uint8Array): CID | undefined => {
      const list = returning.get(bytes.byteLength)
      if (list === undefined) return undefined
      for (let i = 0; i < list.length; i++) {
        if (Buffer.compare(list[i].bytes, bytes) !== 0) continue
        const { cid } = list.splice(i, 1)[0]
        returningCount--
        if (list.length === 0) returning.delete(bytes.byteLength)
        return cid
      }
      return undefined
    }
    const cameBack = (bytes: Uint8Array): CID | undefined => {
      const cid = forgetBack(bytes)
      if (cid !== undefined) stats.returnedOps++
      return cid
    }
    /** Ops taken in hold asks with `r`, and the parents fetched for them: published from here once applied. */
    const relayIds = new Set<string>()
    const markRelay = (id: string): void => {
      relayIds.add(id)
      if (relayIds.size > MAX_ORIGINS) relayIds.delete(relayIds.keys().next().value as string)
    }
    const reconciling = new Map<string, Promise<void>>()
    /** op id -> the peer it came from (not echoed back there). */
    const origins = new Map<string, string>()
    const outboxes = new Map<string, Uint8Array[]>()
    const flushing = new Set<string>()
    let unserve: (() => Promise<void>) | undefined
    let unserveHold: (() => Promise<void>) | undefined
    /** Hold asks on kept streams (made at start, closed at stop). */
    let holds: KeptCaller<HoldRequest, HoldReply> | undefined
    /** Connected peers that do not speak HOLD_PROTOCOL: asked on OPS_PROTOCOL until they disconnect. */
    const oldHolders = new Set<string>()
    const onHolderGone = (e: Event): void => { oldHolders.delete((e as CustomEvent<string>).detail) }
    /** A peer gone: the lack list its run told this host ends (what it brought is kept), and is forgotten. */
    const onServerGone = (e: Event): void => {
      const peer = (e as CustomEvent<string>).detail
      taken.delete(peer)
      offerers.delete(peer)
      digesters.delete(peer)
      const k = keptFrom.get(peer)
      if (k !== undefined) { clearTimeout(k.timer); keptFrom.delete(peer) }
      const st = served.get(peer)
      if (st === undefined) return
      served.delete(peer)
      endServed(peer, st, false, false)
    }

    // --- requests (this side asks) --------------------------------------------------------
    /** One call; the reply's kind follows the request's (OPS.reply checks it). */
    const request = async (peer: string, req: OpsRequest, opts?: AbortOptions): Promise<OpsReply> => {
      try {
        return await call(host, peer, OPS, req, { signal: anySignal([shutdown.signal, opts?.signal]), timeoutMs: requestTimeoutMs })
      } catch (err) {
        if (err instanceof RpcProtocolError) stats.badMessages++
        throw err
      }
    }

    /** Fetch `want` (and their missing ancestors) from peer into the tree. */
    const fetchFrom = async (peer: string, want: CID[], opts?: AbortOptions & { mark?: (id: string) => void }): Promise<void> => {
      let wanted = uniq(want.filter(c => !tree.hasOp(c)))
      for (let round = 0; wanted.length > 0 && round < MAX_RECONCILE_ROUNDS && running; round++) {
        const reply = await request(peer, { t: 'get', want: wanted.slice(0, MAX_CIDS), have: tree.heads().slice(0, MAX_CIDS) }, opts)
        const fresh = await freshOps(reply.t === 'ops' ? reply.ops : [])
        if (fresh.length === 0) return // the peer has none of what is wanted
        for (const { id } of fresh) { remember(id, peer); opts?.mark?.(id) }
        const t0 = performance.now()
        const result = await tree.receive(fresh.map(f => f.bytes), fresh)
        if (syncTrace.on) traceMark('walk.receive', t0, fresh.length)
        stats.receivedOps += result.applied
        const next = uniq(result.missing.filter(c => !tree.hasOp(c)))
        if (result.applied === 0 && sameCids(next, wanted)) return // no progress
        wanted = next
      }
    }

    const reconcile = async (peer: string, opts?: AbortOptions): Promise<void> => {
      if (tree.opSet().size === 0 || !await reconcileRanges(peer, opts)) {
        stats.headsReconciles++
        const reply = await request(peer, { t: 'heads' }, opts)
        await fetchFrom(peer, reply.t === 'heads' ? reply.heads : [], opts)
      }
      stats.reconciles++
    }

    /**
     * Learn by rbsr which ops the peer holds that this host lacks, and fetch them. False when
     * the heads walk should do it instead: the peer did not take the first message (an older
     * version closes the stream on an unknown request), or the run took MAX_RBSR_ROUNDS (a run
     * telling the peer its lack list throws then, to be retried).
     */
    const reconcileRanges = async (peer: string, opts?: AbortOptions, offer = bothWays, lacking?: Set<string>): Promise<boolean> => {
      const t00 = performance.now()
      const set = tree.opSet()
      let needed = 0
      // the ops each round finds missing are fetched while the next rounds run (the first round
      // of a 10,000-op merge finds most of them), not once the last round is back
      const fetch = openFetch(peer, opts)
      // one run both ways (see the header): offered in the first message (b); the peer's answer
      // takes it (b: what it lacks is told to it, `lack` calls of this run's token) or says its
      // own run serves this host (d)
      const token = runTokens++
      if (offer) lackPlans.set(peer, token)
      let tell = false
      let telling: Promise<void> = Promise.resolve()
      let told = true
      const tellLack = (ids: Uint8Array[], last: boolean): void => {
        for (let i = 0; i < ids.length || (last && i === 0); i += LACK_MAX_IDS) {
          const part = ids.slice(i, i + LACK_MAX_IDS)
          const end = last && i + LACK_MAX_IDS >= ids.length
          const req: OpsRequest = end ? { t: 'lack', k: token, ids: joinIds(part), e: true } : { t: 'lack', k: token, ids: joinIds(part) }
          telling = telling.then(async () => {
            if (!told) return
            await request(peer, req, opts)
            stats.lackSent += part.length
            if (keptFrom.has(peer)) for (const d of part) toldOf(peer, idOf(opCid(d)))
          }).catch((err: unknown) => {
            // the peer runs rbsr itself once it has waited SERVED_WAIT_MS for the end
            told = false
            log('telling %s what it lacks failed: %e', peer, err)
          })
        }
      }
      /** The list's end went to the peer (a run that told it, or promised it: `d`, and did not, says it gave up: `a`). */
      let listed = false
      const giveUp = (): void => {
        const req: OpsRequest = { t: 'lack', k: token, ids: new Uint8Array(0), e: true, a: true }
        // best effort, after what is being told: the peer runs rbsr itself at once (at worst
        // once its wait runs out or this host disconnects)
        telling.then(async () => { await request(peer, req) }).catch((err: unknown) => { log('telling %s this run gave up failed: %e', peer, err) })
      }
      let took = false
      try {
        let msg: Uint8Array | null = rbsrInitiate(set, { frameLimit: RBSR_FRAME_BYTES })
        for (let round = 0; msg !== null; round++) {
          // a run that tells the peer what it lacks and cannot finish fails (retried; the peer
          // is told it gave up): returning false would walk heads for this host alone
          if (round >= MAX_RBSR_ROUNDS && tell) throw new Error(`rbsr with ${peer} took ${MAX_RBSR_ROUNDS} rounds`)
          if (round >= MAX_RBSR_ROUNDS || !running) return false
          let reply: OpsReply
          const t0 = performance.now()
          try {
            const req: Extract<OpsRequest, { t: 'rbsr' }> = round === 0 && offer ? { t: 'rbsr', m: msg, b: true } : { t: 'rbsr', m: msg }
            if (byDigest) req.i = true
            reply = await request(peer, req, opts)
          } catch (err) {
            if (round > 0 || shutdown.signal.aborted || opts?.signal?.aborted === true) throw err
            log('%s did not take an rbsr message, reconciling by heads: %e', peer, err)
            return false
          }
          // each rbsr answer says it again: a peer that stops saying it (restarted as the previous
          // version on a connection that outlived the cut: no peer:disconnect here) is asked by id
          if (reply.t === 'rbsr') {
            if (byDigest && reply.i === true) digesters.add(peer)
            else digesters.delete(peer)
          }
          if (reply.t === 'rbsr' && reply.d !== undefined) {
            // the peer's run (its token d) tells this host what it lacks: that list is fetched
            // (servedBy); this run stops here, and runs alone if the list's end does not come
            lackPlans.delete(peer)
            stats.rbsrServed++
            if (syncTrace.on) traceMark('rbsr.served', t0)
            if (await waitServed(peer, reply.d)) return true
            took = true
            await fetch.end()
            return await reconcileRanges(peer, opts, false)
          }
          if (round === 0) {
            tell = offer && reply.t === 'rbsr' && reply.b === true
            if (!tell && lackPlans.get(peer) === token) lackPlans.delete(peer)
          }
          const answer = reply.t === 'rbsr' ? reply.m : new Uint8Array(0)
          stats.rbsrRounds++
          stats.rbsrBytes += msg.byteLength + answer.byteLength
          if (syncTrace.on) traceMark('rbsr.round', t0, 0, msg.byteLength + answer.byteLength)
          try {
            const t1 = performance.now()
            const step = rbsrContinue(set, answer, { frameLimit: RBSR_FRAME_BYTES })
            fetch.add(step.need)
            needed += step.need.length
            if (lacking !== undefined) for (const d of step.have) lacking.add(idOf(opCid(d)))
            if (tell && step.have.length > 0) {
              // this host's ops a holder is publishing now are left to its message
              const have = withoutHanded(peer, step.have)
              if (have.length > 0) tellLack(have, false)
            }
            msg = step.next
            if (syncTrace.on) traceMark('rbsr.client', t1, step.need.length)
          } catch (err) {
            if (!(err instanceof RbsrError)) throw err
            stats.badMessages++
            throw new SyncProtocolError(`bad rbsr answer from ${peer}: ${err.message}`)
          }
        }
        if (syncTrace.on) traceMark('rbsr.total', t00, needed)
        if (tell) tellLack([], true)
        if (lackPlans.get(peer) === token) lackPlans.delete(peer)
        took = true
        await fetch.end()
        await telling
        // the peer waits on this run for what it lacks: a list cut short fails the run (retried)
        if (tell && !told) throw new Error(`telling ${peer} what it lacks failed`)
        listed = tell
        return true
      } finally {
        if (lackPlans.get(peer) === token) lackPlans.delete(peer)
        if (!listed && (tell || promised.has(token))) giveUp()
        promised.delete(token)
        // a run that ends early (a failure, MAX_RBSR_ROUNDS) keeps what its fetch brought so far
        // (what is in flight is waited for; its own failure is not the one to report)
        if (!took) await fetch.end().catch((err: unknown) => { log('fetching from %s after a failed rbsr run: %e', peer, err) })
      }
    }

    /**
     * A peer's run serving this host (see "One run both ways" in the header): the ids it tells
     * this host it lacks (`lack` calls of its run's token) are fetched as they come, in one
     * fetch (one receive), ended by the call that says so (e).
     */
    interface Served { token: number, fetch: Fetch | undefined, ids: number, ended: boolean, waiting: boolean, done: Promise<boolean>, settle: (ok: boolean) => void }
    /**
     * Token of this host's next rbsr run: from a random 48-bit start, so that a restarted process
     * does not reuse a token the peer still remembers from the one before (an ended list: its
     * new run's lack calls were dropped).
     */
    let runTokens = randomBytes(6).readUIntBE(0, 6)
    /** Peer -> the token of this host's run in flight with it that offered to tell it what it lacks (until the list's end is sent). */
    const lackPlans = new Map<string, number>()
    /**
     * Peers whose run's offer this host took (answered `b`) and whose first lack call has not
     * come: that call's token starts the list. A lack call of no such run, nor of the list a run
     * of this host waits on (`d`), is refused (its ids would be fetched, and kept, for nothing).
     */
    const taken = new Set<string>()
    /**
     * Connected peers that sent an rbsr offer (`b`) while this host runs both ways: they take
     * this host's offer in turn (unless they hold no ops: they walk heads, never asking by id).
     * Only those are left without this host's ops a holder publishes in a byid answer: this
     * host's recheck after the quiet time gives them those they lack (`keptFrom`). A peer that does not take it
     * (the mode off, the version before) would be told nothing, and its own runs fetch the kept
     * ops only at its next reconcile (an op of this host's it lacks, a reconnect): it gets them
     * by id as before.
     */
    const offerers = new Set<string>()
    /** Connected peers that said `i` in an rbsr message: this host's fetches ask them by digest (see "Asks by digest" in the header). */
    const digesters = new Set<string>()
    /** Tokens of this host's runs in flight that the peer was told (`d`) serve it too. */
    const promised = new Set<number>()
    /** Peer -> the lack list of its latest run that tells this host (one per peer: a newer run's replaces it). */
    const served = new Map<string, Served>()
    /** Peer -> the end of its ended list's fetch still in flight (at most one served fetch per peer runs). */
    const servedFetching = new Map<string, Promise<void>>()
    /**
     * `whole`: the list's last call came, and the run waiting for it returns once its ops are
     * fetched. Otherwise (the peer's run gave up, the peer went away, a newer list replaced it)
     * that run is let go at once, to run rbsr alone; what the list brought is kept. `rerun`: a
     * list cut short that no run of this host waits on (a taken offer's, given up or past
     * LACK_MAX_LIST) has this host reconcile with the peer itself (nothing else would: the
     * peer's run returned); not when a newer list replaced it, the peer went away, or sync stops.
     */
    const endServed = (peer: string, st: Served, whole: boolean, rerun = !whole): void => {
      if (st.ended) return
      st.ended = true
      if (!whole) st.settle(false)
      if (!whole && rerun && !st.waiting) retry(peer, 'pull')
      // the entry stays (a run may wait for its token after its end came), its fetch does not:
      // the list's ids and what they brought are let go once fetched
      const fetch = st.fetch
      st.fetch = undefined
      if (fetch === undefined) return
      // a list cut short (replaced, given up, past LACK_MAX_LIST, the peer gone): the ids not
      // asked yet are dropped, what is in flight is still taken (a peer offering again and
      // again with long lists, answering slowly, made each list's ids stay wanted)
      if (!whole) fetch.cut()
      const ended = fetch.end().then(() => { st.settle(whole) }, (err: unknown) => {
        log('fetching what %s told this host it lacks failed: %e', peer, err)
        retry(peer, 'pull')
        st.settle(false)
      })
      // the peer's next list's fetch starts once this one is over
      servedFetching.set(peer, ended)
      void ended.then(() => { if (servedFetching.get(peer) === ended) servedFetching.delete(peer) })
    }
    const servedBy = (peer: string, token: number): Served => {
      const old = served.get(peer)
      if (old?.token === token) return old
      // an older run's list that never ended (that run failed): what it brought is kept
      if (old !== undefined) endServed(peer, old, false, false)
      let settle: (ok: boolean) => void = () => {}
      const done = new Promise<boolean>(resolve => { settle = resolve })
      const st: Served = { token, fetch: openFetch(peer, undefined, servedFetching.get(peer)), ids: 0, ended: false, waiting: false, done, settle }
      served.set(peer, st)
      return st
    }
    /**
     * Whether the peer's run `token` told this host all it lacks and that was fetched. servedWaitMs
     * bounds the list's arrival, not the fetch: a list whose end came is waited for until its ops
     * are fetched (each request has its timeout), however slow the link; one whose end did not
     * come in time ends there (later calls of it are answered, their ids dropped).
     */
    const waitServed = async (peer: string, token: number): Promise<boolean> => {
      const st = servedBy(peer, token)
      st.waiting = true
      let timer: ReturnType<typeof setTimeout> | undefined
      let onStop = (): void => {}
      const stop = new Promise<boolean>(resolve => {
        onStop = () => { resolve(false) }
        timer = setTimeout(() => { endServed(peer, st, false) }, servedWaitMs)
        shutdown.signal.addEventListener('abort', onStop, { once: true })
      })
      try {
        return await Promise.race([st.done, stop])
      } finally {
        clearTimeout(timer)
        shutdown.signal.removeEventListener('abort', onStop)
      }
    }

    /**
     * Fetch exactly these ops (by digest) from peer, in batches; parents still missing after, by
     * the heads walk. The batches are given to the tree together (up to FETCH_RECEIVE_OPS ops or
     * FETCH_RECEIVE_BYTES), not one by one: ops made while apart interleave in time with this
     * host's own, and each receive() undoes this host's ops after the earliest op it brings and
     * redoes them, so forty batches of a 10,000-op merge did that forty times (17 s, where one
     * receive takes 0.5 s); and the tree checks one signature per run of an author's ops it is
     * given together, where batches in digest order had most ops checked on their own.
     * The ids come in by add(), as the rbsr rounds find them: requests go out at once; end()
     * (once every id is added) waits for them all and gives what came to the tree.
     */
    const openFetch = (peer: string, opts?: AbortOptions, after?: Promise<void>): Fetch => {
      const t00 = performance.now()
      // `after`: no request goes out before it settles (one served fetch at a time per peer)
      let gated = after !== undefined
      let isCut = false
      const wanted: CID[] = []
      /** Ids added (wanted drops those asked). */
      let count = 0
      let missing: CID[] = []
      let held: Uint8Array[] = []
      let heldNames: Array<{ cid: CID, id: string }> = []
      let heldBytes = 0
      const take = async (): Promise<void> => {
        // stopping: what is held is fetched again at the next reconcile
        if (held.length === 0 || !running) return
        const blocks = held
        const names = heldNames
        held = []
        heldNames = []
        heldBytes = 0
        // the CIDs freshOps() derived: the tree does not hash the ops again
        const t0 = performance.now()
        const result = await tree.receive(blocks, names)
        if (syncTrace.on) traceMark('fetch.receive', t0, blocks.length)
        stats.receivedOps += result.applied
        missing = result.missing
      }
      // requests of `per` ids, `limit` of them in flight, both grown while answers come quickly
      // and shrunk when one is slow or times out (FETCH_IDS_START): a peer answers what fits its
      // bounds (a host of an older version at most its maxBatch, this version BYID_MAX_BYTES), and
      // what an answer that brought some of the ops asked left out is asked for again; an answer
      // with none of them ends those (the peer does not hold them)
      let next = 0
      let again: CID[] = []
      let per = Math.min(FETCH_IDS_START, FETCH_IDS_PER_REQUEST)
      let limit = 1
      /** Requests grow up to this: the size of the last short answer. Whole answers at it, one after another. */
      let ceiling = FETCH_IDS_PER_REQUEST
      let whole = 0
      const growBelow = requestTimeoutMs * FETCH_GROW_FRACTION
      const slowAbove = requestTimeoutMs * FETCH_SLOW_FRACTION
      let failure: { err: unknown } | undefined
      /** Timeouts since the last answer, each of a request sent after the one before timed out (those in flight with it share its cause). */
      let timeouts = 0
      let epoch = 0
      const one = async (ask: CID[]): Promise<void> => {
        const sent = epoch
        const t0 = performance.now()
        stats.fetchRequests++
        let reply: OpsReply
        try {
          if (byDigest && digesters.has(peer)) {
            stats.fetchByDigest++
            const digests = new Uint8Array(ask.length * RBSR_ID_BYTES)
            for (let i = 0; i < ask.length; i++) digests.set(ask[i].multihash.digest, i * RBSR_ID_BYTES)
            try {
              reply = await request(peer, { t: 'bydigest', ids: digests, c: true }, opts)
            } catch (err) {
              // refused (a peer that said it takes them no longer does: see the rbsr answers
              // above): asked by id from now on, these ids at once (review44d)
              if (!(err instanceof RpcRemoteError)) throw err
              log('%s refused an ask by digest, asking by id: %e', peer, err)
              digesters.delete(peer)
              reply = await request(peer, { t: 'byid', ids: ask, c: true }, opts)
            }
          } else {
            reply = await request(peer, { t: 'byid', ids: ask, c: true }, opts)
          }
        } catch (err) {
          // the link carries less than was in flight: the same ids again, fewer at once; one id
          // alone that does not come in time fails the fetch (the reconcile is retried)
          if (!(err instanceof RpcTimeoutError) || !running) throw err
          stats.fetchTimeouts++
          if (sent === epoch) {
            if (ask.length <= 1 || ++timeouts >= FETCH_TIMEOUTS_MAX) throw err
            epoch++
            limit = 1
            per = Math.max(1, Math.min(per, Math.floor(ask.length / 2)))
          }
          if (!isCut) again = ask.concat(again)
          return
        }
        timeouts = 0
        const took = performance.now() - t0
        const got = reply.t === 'ops' ? reply.ops : []
        if (syncTrace.on) traceMark('fetch.byid', t0, got.length, got.reduce((n, b) => n + b.byteLength, 0))
        const t1 = performance.now()
        const cids = got.map(cidOf)
        let short = false
        if (got.length > 0 && got.length < ask.length) {
          // asked again only after an answer that brought some of those asked (progress: a
          // peer answering with other ops gets no request after request for the same ids)
          const came = new Set(cids.map(idOf))
          const left = ask.filter(c => !came.has(idOf(c)))
          if (left.length < ask.length) {
            if (!isCut) for (const c of left) again.push(c)
            // asked of what such an answer holds (an older peer's maxBatch, a byte bound):
            // the same ids not asked again and again
            per = Math.min(per, ask.length - left.length)
            ceiling = per
            whole = 0
            short = true
          }
        }
        if (took > slowAbove) {
          if (limit > 1) limit = Math.max(1, Math.floor(limit / 2))
          else per = Math.max(1, Math.floor(per / 2))
        } else if (took < growBelow) {
          // an answer that held all it was asked grows the request again, up to the last short
          // answer's size (its peer's bound), past it only after FETCH_PROBE_AFTER whole answers
          // (that bound may have been bytes, and smaller ops follow); else one more in flight
          if (!short && per < ceiling) per = Math.min(ceiling, per * 2)
          else if (!short && per < FETCH_IDS_PER_REQUEST && ++whole >= FETCH_PROBE_AFTER) {
            per = Math.min(FETCH_IDS_PER_REQUEST, per * 2)
            ceiling = FETCH_IDS_PER_REQUEST
            whole = 0
          } else if (limit < FETCH_IN_FLIGHT) limit++
        }
        const fresh = await freshOps(got, cids)
        if (syncTrace.on) traceMark('fetch.hash', t1, fresh.length)
        for (const f of fresh) {
          remember(f.id, peer)
          held.push(f.bytes)
          heldNames.push(f)
          heldBytes += f.bytes.byteLength
        }
        if (held.length >= FETCH_RECEIVE_OPS || heldBytes >= FETCH_RECEIVE_BYTES) await take()
      }
      const flying = new Set<Promise<void>>()
      const launch = (): void => {
        while (!gated && running && failure === undefined && flying.size < limit) {
          let ask: CID[]
          if (again.length > 0) {
            ask = again.slice(0, per)
            again = again.slice(ask.length)
          } else if (next < wanted.length) {
            ask = wanted.slice(next, next + per)
            next += ask.length
            // the ids asked are not kept (a long list, told as it is found, grows while asked)
            if (next >= FETCH_TRIM_IDS && next * 2 >= wanted.length) {
              wanted.splice(0, next)
              next = 0
            }
          } else {
            return
          }
          const p: Promise<void> = one(ask)
            // kept, not ignored: no more requests go out, and it is thrown by end() once the others are done
            .catch((err: unknown) => { failure ??= { err } })
            .finally(() => {
              flying.delete(p)
              launch()
            })
          flying.add(p)
        }
      }
      const add = (digests: Uint8Array[]): void => {
        if (isCut) return
        for (const d of digests) {
          const c = opCid(d)
          if (!tree.hasOp(c)) { wanted.push(c); count++ }
        }
        launch()
      }
      const open = (): void => { gated = false; launch() }
      // the fetch before's failure is its own (logged where it ends)
      const opened = after === undefined ? Promise.resolve() : after.then(open, open)
      const cut = (): void => {
        isCut = true
        wanted.length = 0
        next = 0
        again = []
      }
      let ending: Promise<void> | undefined
      const finish = async (): Promise<void> => {
        try {
          await opened
          launch()
          // each request's end launches the next: wait until none is left
          while (flying.size > 0) await Promise.race(flying)
          if (failure !== undefined) throw failure.err
        } finally {
          // what came before a failed request is kept, as when each batch was received at once
          await take()
        }
        // ops held back for parents the peer's set did not show (it grew meanwhile): walk for them
        const left = uniq(missing.filter(c => !tree.hasOp(c)))
        if (syncTrace.on) traceMark('fetch.total', t00, count)
        if (left.length > 0) await fetchFrom(peer, left, opts)
      }
      return { add, cut, end: async () => { await (ending ??= finish()) } }
    }

    /** Runs per peer: the one in flight, and at most one queued behind it. */
    const queued = new Map<string, Promise<void>>()
    const synced = async (peer: string, opts?: AbortOptions): Promise<void> => {
      const inFlight = reconciling.get(peer)
      if (inFlight === undefined) {
        const run = reconcile(peer, opts).finally(() => { reconciling.delete(peer) })
        reconciling.set(peer, run)
        return await run
      }
      // the run in flight may have read the peer's heads before this call: queue a fresh one
      let next = queued.get(peer)
      if (next === undefined) {
        // the run in flight reports its own failure; the queued one runs after it either way
        next = inFlight.catch(() => {}).then(async () => {
          queued.delete(peer)
          await synced(peer, opts)
        })
        queued.set(peer, next)
      }
      return await next
    }

    /** One hold ask: on a kept stream, or on OPS_PROTOCOL to a peer that does not speak HOLD_PROTOCOL. */
    const askHold = async (peer: string, req: HoldRequest, opts?: AbortOptions): Promise<HoldReply> => {
      if (holds !== undefined && !oldHolders.has(peer)) {
        try {
          return await holds.call(peer, req, { signal: anySignal([shutdown.signal, opts?.signal]), timeoutMs: requestTimeoutMs })
        } catch (err: any) {
          if (err instanceof RpcProtocolError) stats.badMessages++
          if (err?.name !== 'UnsupportedProtocolError') throw err
          // a host of the version before: 'hold/1' on OPS_PROTOCOL only
          log('%s does not speak %s: hold asks go on %s', peer, HOLD_PROTOCOL, OPS_PROTOCOL)
          if (host.peers().some(p => p.id === peer)) oldHolders.add(peer)
        }
      }
      const r = await request(peer, req, opts)
      return r.t === 'held' ? r : { t: 'held', held: false }
    }

    // --- answers (the other side asks) -----------------------------------------------------
    const answer = async (req: OpsRequest, peer: string): Promise<OpsReply> => {
      if (req.t === 'heads') return { t: 'heads', heads: tree.heads().slice(0, MAX_CIDS) }
      if (req.t === 'hold') return await holdFor(peer, req)
      if (req.t === 'lack') {
        // a host of the version before does not know the call
        if (!bothWays) throw new SyncProtocolError('unknown request "lack"')
        const cur = served.get(peer)
        if (req.a === true && cur?.token !== req.k) {
          // a give-up of no list in flight: a stale one (its run returned, a newer run's offer
          // may be taken since) ends nothing and starts nothing. A taken offer's run that gave
          // up before its first call says so this way too: reconciled with again (cheap if stale)
          if (taken.has(peer)) retry(peer, 'pull')
          return { t: 'lack' }
        }
        let st: Served
        if (cur?.token === req.k) {
          // a call of the current list: an offer taken since is for the peer's next run
          st = cur
        } else if (taken.delete(peer)) {
          st = servedBy(peer, req.k)
        } else {
          throw new SyncProtocolError(`lack: no run of ${peer} with token ${req.k} serves this host`)
        }
        // a list that ended (its end came, this host's wait ran out, it grew past LACK_MAX_LIST)
        // takes no more ids; its calls are still answered
        if (st.ended) return { t: 'lack' }
        const ids = splitIds(req.ids)
        if (st.ids + ids.length > LACK_MAX_LIST) {
          // the list ends not whole: the ids its fetch has not asked are dropped (endServed)
          st.ids = LACK_MAX_LIST
          endServed(peer, st, false)
          return { t: 'lack' }
        }
        st.ids += ids.length
        st.fetch?.add(ids)
        if (req.e === true) endServed(peer, st, req.a !== true)
        return { t: 'lack' }
      }
      if (req.t === 'rbsr') {
        // a peer that says it takes asks by digest is asked so, and told this host does too
        const says = byDigest && req.i === true
        if (says) digesters.add(peer)
        else digesters.delete(peer)
        /** The answer, saying `i` back to a message that said it. */
        const answer = (r: Extract<OpsReply, { t: 'rbsr' }>): OpsReply => {
          if (says) r.i = true
          return r
        }
        // a peer that offers takes this host's offer too: own ops kept from it by id reach it
        // by this host's recheck after their quiet time (exactly, keptFrom)
        if (req.b === true && bothWays) offerers.add(peer)
        // an offer (b) while this host's own run with the peer offers too: the run of the host
        // whose id sorts first serves both ways, the other stops (see the header)
        if (req.b === true && bothWays && host.peerId < peer) {
          // none in flight (the peer's connect event came first, or its run is a retry): this
          // host's starts now, and offers (reconcileRanges marks it before its first await)
          if (!lackPlans.has(peer) && !reconciling.has(peer) && tree.opSet().size > 0) onConnect(new CustomEvent('peer:connect', { detail: peer }))
          const mine = lackPlans.get(peer)
          if (mine !== undefined) {
            promised.add(mine)
            return answer({ t: 'rbsr', m: new Uint8Array(0), d: mine })
          }
        }
        try {
          const t0 = performance.now()
          const m = rbsrRespond(tree.opSet(), req.m, { frameLimit: RBSR_FRAME_BYTES })
          if (syncTrace.on) traceMark('rbsr.server', t0, 0, m.byteLength)
          // taken: this host is told what it lacks (it runs rbsr itself when it holds no ops: the heads walk)
          if (req.b === true && bothWays && tree.opSet().size > 0) {
            taken.add(peer)
            return answer({ t: 'rbsr', m, b: true })
          }
          return answer({ t: 'rbsr', m })
        } catch (err) {
          if (err instanceof RbsrError) throw new SyncProtocolError(`bad rbsr message: ${err.message}`)
          throw err
        }
      }
      if (req.t === 'byid' || req.t === 'bydigest') {
        // (a host of the version before knows no bydigest call)
        if (req.t === 'bydigest' && !byDigest) throw new SyncProtocolError('unknown request "bydigest"')
        const t0 = performance.now()
        const ids = req.t === 'byid' ? req.ids : splitIds(req.ids).map(opCid)
        const ops = exactly(ids, req.c === true ? BYID_MAX_BYTES : OPS_MAX_MESSAGE_BYTES - 1024, offerers.has(peer) ? peer : undefined)
        if (syncTrace.on) traceMark('byid.server', t0, ops.length)
        return { t: 'ops', ops }
      }
      return { t: 'ops', ops: collect(req.want, req.have) }
    }

    /**
     * Whether this host holds op `id` (applied: its parents are held too) once it took `op`, the
     * asker's, its missing parents fetched from the asker; asked with `r`, the ops it took are
     * published from here (see "Relay" in the header).
     */
    const holdFor = async (peer: string, { id, op, r, b }: HoldRequest): Promise<HoldReply> => {
      if (!cidOf(op).equals(id)) throw new SyncProtocolError('hold: the op sent is not the one named')
      // no gossip here (a sync without it): the ops go out by direct push, as any received op
      const relay = r === true && gossip !== undefined
      // the asker's ops below it that it had not sent yet come with it (b), oldest first
      if (await takePush(peer, b === undefined ? [op] : [...b, op], relay ? markRelay : undefined)) stats.holdFetches++
      if (!tree.hasOp(id)) return { t: 'held', held: false }
      // held means written to this host's op log (in its kernel: it survives this process being
      // killed), not synced: received ops are synced within WRITTEN_SYNC_MS or with the next
      // sync (node/tree log.ts). The asker's fsync waits for its own sync too, so its disk has
      // the op: a lost asker leaves it here, a lost holder leaves it there, both crashing leave it
      // on the asker's disk (see "Hold" in the header). An op a receive running meanwhile
      // applied may not be written yet: written() waits for it
      await tree.written()
      return relay ? { t: 'held', held: true, r: true } : { t: 'held', held: true }
    }

    const onServeError = (err: Error, peer: string): void => {
      if (err instanceof RpcProtocolError || err.name === 'InvalidOpError') {
        stats.badMessages++
        log.error('bad ops message from %s: %s', peer, err.message)
      }
    }

    /** The wanted ops this host has, then their ancestors breadth first, stopping at `have`. */
    const collect = (want: CID[], have: CID[]): Uint8Array[] => {
      const stop = new Set(have.map(c => c.toString()))
      const seen = new Set<string>()
      const queue = [...want]
      const out: Uint8Array[] = []
      let bytes = 0
      while (queue.length > 0 && out.length < maxBatch) {
        const cid = queue.shift() as CID
        const id = cid.toString()
        if (seen.has(id)) continue
        seen.add(id)
        const block = tree.getOp(cid)
        if (block === undefined) continue
        if (bytes + block.byteLength > OPS_MAX_MESSAGE_BYTES - 1024) break
        out.push(block)
        bytes += block.byteLength
        for (const p of parentsOf(block)) {
          if (!stop.has(p.toString())) queue.push(p)
        }
      }
      return out
    }

    /**
     * The ops named that this host holds, within one message's bounds and `maxBytes` (one op at
     * least). `keepFrom`: the asker, when this host's ops a holder is publishing now are left out
     * for it (see `offerers`).
     */
    const exactly = (ids: CID[], maxBytes: number, keepFrom?: string): Uint8Array[] => {
      const out: Uint8Array[] = []
      let bytes = 0
      // this host's ops a holder is publishing now are left to its message: the asker (a peer's
      // run learnt it lacks them, as the rbsr client) gets them by gossip, or by this host's
      // recheck after (keptFrom: pushed to it if it still lacks them)
      if (keepFrom !== undefined && handed.size > 0) pruneHanded(performance.now())
      const now = keepFrom !== undefined && handed.size > 0 ? performance.now() : 0
      let until = 0
      let kept = 0
      for (const cid of ids) {
        if (out.length >= byidMax) break
        if (now > 0) {
          const u = handedUntil(idOf(cid), now)
          if (u > 0) {
            if (u > until) until = u
            kept++
            if (keepFrom !== undefined) keep(keepFrom, idOf(cid), cid)
            continue
          }
        }
        const block = tree.getOp(cid)
        if (block === undefined) continue
        if (bytes + block.byteLength > OPS_MAX_MESSAGE_BYTES - 1024) break
        if (out.length > 0 && bytes + block.byteLength > maxBytes) break
        out.push(block)
        bytes += block.byteLength
        if (keepFrom !== undefined && keptFrom.has(keepFrom)) toldOf(keepFrom, idOf(cid))
      }
      if (kept > 0 && keepFrom !== undefined) {
        stats.handedKept += kept
        recheck(keepFrom, until)
      }
      return out
    }

    /**
     * Ops a peer sent; `mark` hears the id of each fresh one and of each parent fetched for them.
     * Whether parents were fetched from the peer.
     */
    const takePush = async (peer: string, ops: Uint8Array[], mark?: (id: string) => void): Promise<boolean> => {
      const fresh = await freshOps(ops)
      if (fresh.length === 0) return false
      for (const { id } of fresh) { remember(id, peer); mark?.(id) }
      const t0 = performance.now()
      const result = await tree.receive(fresh.map(f => f.bytes), fresh)
      if (syncTrace.on) traceMark('push.receive', t0, fresh.length)
      stats.receivedOps += result.applied
      // parents the push did not bring: fetch them from the pusher
      if (result.missing.length > 0) {
        await parentsFrom(peer, result.missing, mark === undefined ? undefined : { mark }).catch((err: unknown) => {
          log('fetching the parents of %s\'s push: %e', peer, err)
          retry(peer, 'pull')
        })
        return true
      }
      return false
    }

    /**
     * Fetch from `peer` the parents `missing` of ops it sent (a push, a gossip message), which
     * wait in the tree for them. A reconcile with that peer in flight (on connect after a
     * partition, when both sides push their heads and publish them) fetches them already, in
     * large receives: walking down from the ops meanwhile fetched the same thousands of ops a
     * second time, in a receive per batch (each undoing and redoing this host's own ops made
     * while apart). So its end is waited for, and only what it did not bring is walked for.
     */
    const parentsFrom = async (peer: string, missing: CID[], opts?: AbortOptions & { mark?: (id: string) => void }): Promise<void> => {
      await reconciling.get(peer)?.catch(() => {}) // ignored: its own caller reports its failure; the walk below fetches the parents anyway
      // (fetchFrom asks only for those the tree still lacks)
      await fetchFrom(peer, missing, opts)
    }

    /**
     * The ops not held yet, once each; `cids` are the ops' CIDs when known. This host's own ops
     * on their way to its log (stamped: getOp has them) are not fresh: a holder's relay comes back
     * to the author (gossipsub publishes to every subscribed peer), often before the author's
     * own sync of the op; taken then, the tree would apply the op as a peer's, and never as this
     * host's own (Tree.newestLocal(), this host's publish of it).
     */
    const freshOps = async (ops: Uint8Array[], cids: CID[] = ops.map(cidOf)): Promise<Array<{ id: string, cid: CID, bytes: Uint8Array }>> => {
      const out: Array<{ id: string, cid: CID, bytes: Uint8Array }> = []
      const seen = new Set<string>()
      for (let i = 0; i < ops.length; i++) {
        const cid = cids[i]
        const id = idOf(cid)
        // by the id made here (the CID again would make it twice more)
        if (seen.has(id) || tree.hasOp(id) || tree.getOp(id) !== undefined) continue
        seen.add(id)
        out.push({ id, cid, bytes: ops[i] })
      }
      return out
    }

    const remember = (id: string, peer: string): void => {
      origins.set(id, peer)
      if (origins.size > MAX_ORIGINS) origins.delete(origins.keys().next().value as string)
    }

    // --- dissemination -----------------------------------------------------------------------
    /**
     * The connected peers' ids, read from the host once per change of its connections (its
     * peer:connect and peer:disconnect events), not once per op: host.peers() walks every
     * connection and lists its addresses, and dissemination asks for each op applied (six hosts
     * in one process: 3% of the CPU of a `tar x`).
     */
    let peerIds: string[] | undefined
    const connectedPeers = (): string[] => (peerIds ??= host.peers().map(p => p.id))
    const onPeersChanged = (): void => { peerIds = undefined }
    /**
     * The tree's 'ops' event: each op applied is sent on, in the order applied (its id and bytes:
     * a merge's thousands come in a few events). The gossip topic's subscribers are read once per
     * event, when a peer other than an op's origin is connected (not once per op).
     */
    const onOps = (evt: CustomEvent<OpsEventDetail>): void => {
      if (!running) return
      const { local, ops } = evt.detail
      let subscribed: Set<string> | undefined
      for (let i = 0; i < ops.length; i++) {
        const { id, bytes } = ops[i]
        const from = origins.get(id)
        origins.delete(id)
        if (gossip !== undefined) {
          if (local) {
            publishing.push({ id, bytes })
            void publish()
            continue
          }
          // taken in a hold ask with `r` (or fetched below one): published from here for its author
          if (relayIds.size > 0 && relayIds.delete(id)) {
            relays.push(bytes)
            void publish()
            continue
          }
          // gossipsub forwards what it accepted; other ops are followed by a heads publish
          if (!gossiped.delete(id)) headsSoon()
          // peers not subscribed to the topic (older versions) still get every op pushed
          for (const peer of connectedPeers()) {
            if (peer === from) continue
            subscribed ??= new Set(gossip.subscribers())
            if (!subscribed.has(peer)) pushTo(peer, bytes)
          }
          continue
        }
        for (const peer of connectedPeers()) {
          if (peer === from) continue
          pushTo(peer, bytes)
        }
      }
    }

    const pushTo = (peer: string, bytes: Uint8Array): void => {
      let box = outboxes.get(peer)
      if (box === undefined) outboxes.set(peer, box = [])
      if (box.length < MAX_OUTBOX_OPS) box.push(bytes)
      else retry(peer, 'push') // dropped here: the peer fetches it below the heads pushed later
      void flush(peer)
    }

    /**
     * This host's own new ops, waiting for the next gossip publish (one at a time, in order),
     * and the ops it publishes for their authors as their holder (`relays`, see "Relay" in the
     * header). During a burst (the last publish less than GOSSIP_BURST_MS ago) a new op waits
     * GOSSIP_PUBLISH_GATHER_MS for the ops that follow it, as a receiver does (receiveGossiped): one
     * message, sent and taken once by each receiver, for the create, write and setattrs a `tar x`
     * makes of a file one syscall at a time (and for the fsyncs of an author this host holds for:
     * each receiver checks one signature per run of an author's ops it takes together). A lone
     * op, or the first of a burst, goes at once.
     * An op may go before it is durable here (a namespace change: node/volume.ts): a host that loses power
     * before its sync gets its own op back from the peers that took it, as any op it lacks.
     */
    const publishing: Array<{ id: string, bytes: Uint8Array }> = []
    const relays: Uint8Array[] = []
    let publishRun: Promise<void> | undefined
    let lastPublish = -Infinity
    /**
     * How many of the ops at the head of `publishing` may go now. Those a holder publishes (the
     * ask that carried them ended 'relayed') are dropped; the ops up to one whose ask is under
     * way wait for its end (they are below it: the holder may publish them with it).
     */
    const ready = (): number => {
      if (holdMarks.size === 0) return publishing.length
      let n = 0
      for (let i = 0; i < publishing.length; i++) {
        const id = publishing[i].id
        const mark = holdMarks.get(id)
        if (mark === undefined) continue
        if (mark === 'pending') return n
        holdMarks.delete(id)
        if (mark === 'released') {
          n = i + 1
          continue
        }
        // relayed: it and the ops since the last released one (below it) go from the holder
        stats.handedOps += i + 1 - n
        publishing.splice(n, i + 1 - n)
        i = n - 1
      }
      return publishing.length
    }
    /**
     * This host's ops below `op` that have not gone out (stamped and on their way to its log, or
     * applied and waiting in `publishing`), oldest first, within CARRY_MAX_OPS and
     * CARRY_MAX_BYTES: a hold ask with `r` carries them, so its holder, which would otherwise
     * fetch them from here inside the fsync (a round trip), takes them with the op and
     * publishes them with it. Each is marked pending (not published from here during the ask).
     */
    const unsentBelow = (op: Uint8Array): Array<{ id: string, cid: CID, bytes: Uint8Array }> => {
      let queued: Map<string, Uint8Array> | undefined
      const unsent = (cid: CID, id: string): Uint8Array | undefined => {
        // an ask for it ended: it (with the ops below it) went out, or goes from here (one still
        // pending is an fsync's whose ask this one supersedes: OpHold asks for the newest only)
        const mark = holdMarks.get(id)
        if (mark !== undefined && mark !== 'pending') return undefined
        if (!tree.hasOp(cid)) return tree.getOp(cid) // this host's own on their way to its log
        if (publishing.length === 0) return undefined
        queued ??= new Map(publishing.map(e => [e.id, e.bytes]))
        return queued.get(id)
      }
      const out: Array<{ id: string, cid: CID, bytes: Uint8Array }> = []
      const seen = new Set<string>()
      let bytes = op.byteLength
      const queue = parentsOf(op)
      while (queue.length > 0 && out.length < CARRY_MAX_OPS) {
        const cid = queue.shift() as CID
        const id = idOf(cid)
        if (seen.has(id)) continue
        seen.add(id)
        const block = unsent(cid, id)
        if (block === undefined) continue
        if (bytes + block.byteLength > CARRY_MAX_BYTES) break
        bytes += block.byteLength
        out.push({ id, cid, bytes: block })
        queue.push(...parentsOf(block))
      }
      out.reverse()
      for (const c of out) { holdMarks.set(c.id, 'pending'); handedStart(c.id) }
      return out
    }
    const publish = async (): Promise<void> => {
      if (publishRun !== undefined || gossip === undefined) return
      publishRun = (async () => {
        try {
          if (performance.now() - lastPublish < GOSSIP_BURST_MS) {
            await new Promise<void>(resolve => { const t = setTimeout(resolve, GOSSIP_PUBLISH_GATHER_MS); t.unref?.() })
          } else {
            await Promise.resolve() // ops committed together go in one message
          }
          while (running) {
            let own = ready()
            if (own === 0 && relays.length === 0) break
            // own ops that follow ops a holder publishes for this host name them: they go once the
            // holder's message is out (it waits its gathering at most, begun before its answer),
            // or a receiver that got them first would fetch the relayed ops from this host
            const after = relayedAt + GOSSIP_PUBLISH_GATHER_MS + GOSSIP_GATHER_MS - performance.now()
            if (own > 0 && relays.length === 0 && after > 0) {
              await new Promise<void>(resolve => { const t = setTimeout(resolve, after); t.unref?.() })
              continue
            }
            lastPublish = performance.now()
            // one message: relays first (other authors' ops, which name none of this host's), then own ops
            const batch: Uint8Array[] = []
            let bytes = 0
            let relayed = 0
            const fits = (b: Uint8Array): boolean => batch.length === 0 || (batch.length < MAX_OPS_PER_MESSAGE && bytes + b.byteLength <= GOSSIP_BATCH_BYTES)
            while (relays.length > 0 && fits(relays[0])) {
              const b = relays.shift() as Uint8Array
              batch.push(b)
              bytes += b.byteLength
              relayed++
            }
            while (own > 0 && fits(publishing[0].bytes)) {
              const b = (publishing.shift() as { bytes: Uint8Array }).bytes
              batch.push(b)
              bytes += b.byteLength
              own--
            }
            stats.relayedOps += relayed
            await publishOps(batch, true, relayed > 0)
          }
        } finally {
          // cleared before the run's promise settles: an op (or an ask's end) that comes after
          // the loop's last look starts a run of its own
          publishRun = undefined
        }
      })()
      await publishRun
    }
    /**
     * One message of ops on gossip. With `direct`, the connected peers gossip did not send it
     * to (not known to be subscribed yet) get the ops pushed on OPS_PROTOCOL. `relayed`: it holds
     * ops this host publishes for their author, and names this host (see "Relay" in the header).
     */
    const publishOps = async (ops: Uint8Array[], direct: boolean, relayed = false): Promise<void> => {
      if (gossip === undefined) return
      let sent = new Set<string>()
      try {
        // a gossip message's id is the hash of its data (host.ts): a heads message gets a nonce,
        // or one of the same ops as the author's own message would be dropped as that message
        // by this host's gossipsub (which saw it) and by every receiver (the members the author
        // missed are the ones it is for)
        const message = !direct ? { t: 'push', ops, n: randomBytes(8) } : relayed ? { t: 'push', ops, r: host.peerId } : { t: 'push', ops }
        sent = new Set(await gossip.publish(dagCbor.encode(message)))
        stats.publishedOps += ops.length
        stats.publishedMessages++
      } catch (err) {
        // not published (stopping, or no buffer): the connected peers get a push instead
        log('publishing %d ops failed: %e', ops.length, err)
      }
      if (!direct) return
      for (const peer of connectedPeers()) {
        if (!sent.has(peer)) for (const op of ops) pushTo(peer, op)
      }
    }
    let headsTimer: ReturnType<typeof setTimeout> | undefined
    // called for every op a merge applies: the timer is armed once and, when it fires early
    // (ops came since), armed again for the rest of the delay, not cleared and made anew per op
    let headsDue = 0
    const headsSoon = (): void => {
      headsDue = performance.now() + HEADS_PUBLISH_DELAY_MS
      if (headsTimer === undefined) armHeads(HEADS_PUBLISH_DELAY_MS)
    }
    const armHeads = (ms: number): void => {
      headsTimer = setTimeout(() => {
        headsTimer = undefined
        if (!running) return
        const left = headsDue - performance.now()
        if (left > 1) {
          armHeads(left)
          return
        }
        const heads = tree.heads().slice(0, MAX_PUBLISHED_HEADS).map(c => tree.getOp(c)).filter((b): b is Uint8Array => b !== undefined)
        const batch = takeBatch(heads, GOSSIP_BATCH_BYTES)
        if (batch.length > 0) void publishOps(batch, false)
      }, ms)
      headsTimer.unref?.()
    }

    /**
     * The ops of gossip messages validated at once go into the tree together: gossipsub
     * validates the messages of every connection concurrently, and each tree.receive() is at
     * least one signature check (and was a log write with its fdatasync, before received ops
     * became written-only in the log), so the messages that come
     * while one receive is under way are taken by the next in one call (one signature
     * per run of an author's ops: the tree checks the newest, whose signed bytes name the rest).
     * During a burst (a message came less than GOSSIP_BURST_MS after the last receive) the first
     * message waits GOSSIP_GATHER_MS for those that follow: an author making ops one after
     * another (`tar x`: a create, a write and three setattrs per file, each its own message)
     * sends them a few milliseconds apart, never at once, so without the wait every receiver
     * paid a log write, its fdatasync and a signature check per op; a lone op, or the first of a
     * burst, is taken at once.
     * A batch the tree refuses (InvalidOpError names no message) is taken again one message at a
     * time, so only the bad message is refused (and its forwarder scored down). Each message
     * learns the parents still missing after its batch (the tree's answer: all it holds
     * parentless), and fetches them from the peer it came through.
     */
    const inbox: Array<{ ops: Uint8Array[], names: Array<{ cid: CID, id: string }>, resolve: (r: { missing: CID[] }) => void, reject: (err: unknown) => void }> = []
    let receiving = false
    let lastReceive = -Infinity
    const receiveGossiped = async (fresh: Array<{ cid: CID, id: string, bytes: Uint8Array }>): Promise<{ missing: CID[] }> => {
      const ops = fresh.map(f => f.bytes)
      const taken = new Promise<{ missing: CID[] }>((resolve, reject) => { inbox.push({ ops, names: fresh, resolve, reject }) })
      void drainInbox()
      return await taken
    }
    const drainInbox = async (): Promise<void> => {
      if (receiving) return
      receiving = true
      try {
        if (performance.now() - lastReceive < GOSSIP_BURST_MS) {
          await new Promise<void>(resolve => { const t = setTimeout(resolve, GOSSIP_GATHER_MS); t.unref?.() })
        }
        while (inbox.length > 0) {
          lastReceive = performance.now()
          let n = 0
          let count = 0
          while (n < inbox.length && (n === 0 || count + inbox[n].ops.length <= GOSSIP_RECEIVE_BATCH_OPS)) count += inbox[n++].ops.length
          const batch = inbox.splice(0, n)
          try {
            stats.gossipReceives++
            const r = batch.length === 1 ? await tree.receive(batch[0].ops, batch[0].names) : await tree.receive(batch.flatMap(b => b.ops), batch.flatMap(b => b.names))
            stats.receivedOps += r.applied
            for (const b of batch) b.resolve(r)
          } catch (err) {
            if (batch.length === 1 || (err as Error).name !== 'InvalidOpError') {
              for (const b of batch) b.reject(err)
              continue
            }
            for (const b of batch) {
              try {
                stats.gossipReceives++
                const r = await tree.receive(b.ops, b.names)
                stats.receivedOps += r.applied
                b.resolve(r)
              } catch (err) {
                b.reject(err)
              }
            }
          }
        }
      } finally {
        receiving = false
      }
    }

    /** A gossip message: taken into the tree before gossipsub forwards it (see the header). */
    const onGossip = async (data: Uint8Array, from: string): Promise<'accept' | 'ignore' | 'reject'> => {
      if (!running) return 'ignore'
      let ops: Uint8Array[]
      let relayer: string | undefined
      try {
        const m = OPS.notice!(dagCbor.decode(data))
        ops = m.ops
        relayer = m.r
      } catch (err) {
        stats.badMessages++
        stats.gossipRejected++
        log.error('bad gossip message through %s: %s', from, (err as Error).message)
        return 'reject'
      }
      let fresh: Array<{ id: string, cid: CID, bytes: Uint8Array }>
      let cids: CID[]
      try {
        // own ops a holder published for this host come back here: known by their bytes
        cids = relayer !== undefined && returningCount > 0 ? ops.map(b => cameBack(b) ?? cidOf(b)) : ops.map(cidOf)
        fresh = await freshOps(ops, cids)
      } catch (err) {
        stats.badMessages++
        stats.gossipRejected++
        log.error('bad op in a gossip message through %s: %s', from, (err as Error).message)
        return 'reject'
      }
      if (fresh.length === 0) { stats.gossipIgnored++; return 'ignore' }
      for (const { id } of fresh) { remember(id, from); markGossiped(id) }
      let result: { missing: CID[] }
      try {
        result = await receiveGossiped(fresh)
      } catch (err) {
        for (const { id } of fresh) gossiped.delete(id)
        if ((err as Error).name !== 'InvalidOpError') throw err
        stats.badMessages++
        stats.gossipRejected++
        log.error('gossip message through %s refused by the tree: %s', from, (err as Error).message)
        return 'reject'
      }
      if (result.missing.length > 0) {
        try {
          await parentsFrom(from, result.missing, { mark: markGossiped })
        } catch (err) {
          log('fetching the parents of a gossip message from %s: %e', from, err)
          retry(from, 'pull')
        }
      }
      if (fresh.some(f => !tree.hasOp(f.cid))) { stats.gossipIgnored++; return 'ignore' }
      stats.gossipAccepted++
      // straight from its author: every op in it is by the peer it came through (the ops'
      // authors are checked by the tree, that peer by the connection; gossip messages carry no
      // publisher, host.ts); or straight from the holder that relays it, which names itself (a
      // name that is not the peer it came through is someone else's message, forwarded)
      if (host.beyondFullMesh?.() === false && (relayer === from || cids.every(cid => tree.authorOf(cid) === from))) {
        // the publisher sent it to every member; those it missed get the heads (see the header)
        stats.gossipUnforwarded++
        headsSoon()
        return 'ignore'
      }
      return 'accept'
    }

    /** Push a peer's outbox in batches, one push at a time per peer (keeps op order). */
    const flush = async (peer: string): Promise<void> => {
      if (flushing.has(peer)) return
      flushing.add(peer)
      try {
        await Promise.resolve() // let ops committed together go in one batch
        for (let box = outboxes.get(peer); box !== undefined && box.length > 0 && running; box = outboxes.get(peer)) {
          const batch: Uint8Array[] = []
          let bytes = 0
          while (box.length > 0 && batch.length < maxBatch && bytes + box[0].byteLength <= OPS_MAX_MESSAGE_BYTES - 1024) {
            const op = box.shift() as Uint8Array
            batch.push(op)
            bytes += op.byteLength
          }
          try {
            await notify(host, peer, OPS, { t: 'push', ops: batch }, { signal: shutdown.signal, timeoutMs: requestTimeoutMs })
            stats.pushedOps += batch.length
          } catch (err) {
            // gone or failing: the heads are pushed again while it stays connected (retry), and
            // it reconciles when it reconnects
            log('push of %d ops to %s failed: %e', batch.length, peer, err)
            outboxes.delete(peer)
            retry(peer, 'push')
          }
        }
      } finally {
        flushing.delete(peer)
        if (outboxes.get(peer)?.length === 0) outboxes.delete(peer)
      }
    }

    const onConnect = (evt: CustomEvent<string>): void => {
      if (!running) return
      void synced(evt.detail).catch((err: unknown) => {
        // tried again while it stays connected; if it went away, the next connection does it
        log('reconciling with %s failed: %e', evt.detail, err)
        retry(evt.detail, 'pull')
      })
    }

    // --- catch-up after a failure ------------------------------------------------------------
    /** Peers owed a push of the heads (push) or a reconcile (pull), with their backoff. */
    const owed = new Map<string, { push: boolean, pull: boolean, delay: number, timer?: ReturnType<typeof setTimeout> }>()
    const retry = (peer: string, what: 'push' | 'pull'): void => {
      if (!running) return
      let o = owed.get(peer)
      if (o === undefined) owed.set(peer, o = { push: false, pull: false, delay: RETRY_FIRST_MS })
      o[what] = true
      if (o.timer !== undefined) return
      const wait = o.delay
      o.delay = Math.min(o.delay * 2, RETRY_MAX_MS)
      o.timer = setTimeout(() => { o.timer = undefined; void catchUp(peer) }, wait)
      o.timer.unref?.()
    }
    const catchUp = async (peer: string): Promise<void> => {
      const o = owed.get(peer)
      if (o === undefined || !running) return
      // not connected: its reconnect reconciles both ways (each side pulls on connect)
      if (!host.peers().some(p => p.id === peer)) { owed.delete(peer); return }
      stats.retries++
      if (o.pull) {
        o.pull = false
        await synced(peer).catch((err: unknown) => { log('reconciling with %s again failed: %e', peer, err); o.pull = true })
      }
      if (o.push) {
        o.push = false
        const heads = tree.heads().slice(0, maxBatch).map(c => tree.getOp(c)).filter((b): b is Uint8Array => b !== undefined)
        await notify(host, peer, OPS, { t: 'push', ops: heads }, { signal: shutdown.signal, timeoutMs: requestTimeoutMs })
          .then(() => { stats.pushedOps += heads.length }, (err: unknown) => { log('pushing the heads to %s again failed: %e', peer, err); o.push = true })
      }
      if (!o.push && !o.pull) { if (owed.get(peer) === o && o.timer === undefined) owed.delete(peer); return }
      if (o.timer === undefined) {
        const what = o.push ? 'push' : 'pull'
        retry(peer, what)
      }
    }

    return {
      start: async () => {
        if (running) return
        running = true
        unserve = await serve(host, OPS, { call: async (req, { peer }) => await answer(req, peer), notice: async (push, { peer }) => { await takePush(peer, push.ops) } }, {
          signal: shutdown.signal,
          timeoutMs: requestTimeoutMs,
          onError: onServeError
        })
        holds = new KeptCaller(host, HOLD)
        unserveHold = await serve(host, HOLD, { call: async (req, { peer }) => await holdFor(peer, req) }, {
          signal: shutdown.signal,
          timeoutMs: requestTimeoutMs,
          onError: onServeError
        })
        host.addEventListener('peer:disconnect', onHolderGone)
        host.addEventListener('peer:disconnect', onServerGone)
        tree.addEventListener('ops', onOps as EventListener)
        gossip?.handle(onGossip)
        host.addEventListener('peer:connect', onPeersChanged)
        host.addEventListener('peer:disconnect', onPeersChanged)
        host.addEventListener('peer:connect', onConnect)
        for (const { id } of host.peers()) onConnect(new CustomEvent('peer:connect', { detail: id }))
      },
      stop: async () => {
        if (!running) return
        running = false
        shutdown.abort()
        tree.removeEventListener('ops', onOps as EventListener)
        gossip?.handle(undefined)
        if (headsTimer !== undefined) clearTimeout(headsTimer)
        publishing.length = 0
        host.removeEventListener('peer:connect', onConnect)
        host.removeEventListener('peer:disconnect', onHolderGone)
        host.removeEventListener('peer:disconnect', onServerGone)
        for (const [peer, st] of served) endServed(peer, st, false, false)
        served.clear()
        servedFetching.clear()
        taken.clear()
        offerers.clear()
        digesters.clear()
        holds?.close()
        oldHolders.clear()
        host.removeEventListener('peer:connect', onPeersChanged)
        host.removeEventListener('peer:disconnect', onPeersChanged)
        peerIds = undefined
        outboxes.clear()
        relays.length = 0
        holdMarks.clear()
        handed.clear()
        for (const k of keptFrom.values()) clearTimeout(k.timer)
        keptFrom.clear()
        const rechecks = [...rechecksRunning.values()]
        relayIds.clear()
        for (const o of owed.values()) clearTimeout(o.timer)
        owed.clear()
        await unserve?.()
        await unserveHold?.()
        await Promise.allSettled([...reconciling.values(), ...rechecks])
      },
      synced,
      hold: async (cid, peers, opts) => {
        const id = idOf(cid)
        // the ask carries ops held back from gossip (holding()): the holder is asked to publish them
        const relay = holdMarks.get(id) === 'pending'
        let relayed = false
        let carried: Array<{ id: string, cid: CID, bytes: Uint8Array }> = []
        const op = opts?.op ?? tree.getOp(cid)
        try {
          if (op === undefined) throw new Error(`hold: op ${cid.toString()} is not held here`)
          if (relay) {
            carried = unsentBelow(op)
            // the holder's message may come back before its answer: known from now on
            for (const c of carried) expectBack(c.cid, c.bytes)
            expectBack(cid, op)
          }
          const req: HoldRequest = !relay ? { t: 'hold', id: cid, op } : carried.length === 0 ? { t: 'hold', id: cid, op, r: true } : { t: 'hold', id: cid, op, r: true, b: carried.map(c => c.bytes) }
          for (const peer of peers) {
            if (!running || opts?.signal?.aborted === true) return undefined
            try {
              // the op itself (see "Hold" in the header: asking by name waits for gossip's gathering)
              const reply = await askHold(peer, req, opts)
              if (reply.held) {
                // a host of the version before holds it and publishes nothing: this host does
                relayed = relay && reply.r === true
                if (relayed) stats.carriedOps += carried.length
                return peer
              }
            } catch (err) {
              log('%s did not hold op %s: %e', peer, cid, err)
            }
          }
          return undefined
        } finally {
          if (relay && !relayed) {
            // nobody publishes them for this host: nothing comes back
            for (const c of carried) forgetBack(c.bytes)
            if (op !== undefined) forgetBack(op)
          }
          if (relay) settle(id, relayed ? 'relayed' : 'released', carried.map(c => c.id))
        }
      },
      holding: (cid) => {
        if (!running || gossip === undefined) return
        const id = idOf(cid)
        // applied and no longer waiting to be published: it went out already
        if (tree.hasOp(cid) && !publishing.some(e => e.id === id)) return
        holdMarks.set(id, 'pending')
        handedStart(id)
        // a mark whose op never came (its commit failed) goes in time
        if (holdMarks.size > MAX_ORIGINS) holdMarks.delete(holdMarks.keys().next().value as string)
      },
      unheld: (cid) => { settle(idOf(cid), 'released') },
      stats: () => ({ ...stats })
    }
  }
}

// --- messages ----------------------------------------------------------------------------------

/** OPS_PROTOCOL on rpc.ts: heads and get are calls, push is a notice. */
export const OPS = defineProtocol<OpsRequest, OpsReply, OpsPush>({
  id: OPS_PROTOCOL,
  // calls and pushes open to one peer at once (the rest queue, rpc.ts slot()); libp2p takes twice it
  maxStreams: MAX_INBOUND_STREAMS,
  maxMessageBytes: OPS_MAX_MESSAGE_BYTES,
  timeoutMs: REQUEST_TIMEOUT_MS,
  malformed: SyncProtocolError,
  request: (v) => {
    const m = map(v)
    if (m.t === 'heads') return { t: 'heads' }
    if (m.t === 'get') return { t: 'get', want: cids(m.want), have: cids(m.have) }
    if (m.t === 'rbsr') {
      if (m.b !== undefined && m.b !== true) throw new SyncProtocolError('rbsr: b must be true when given')
      if (m.i !== undefined && m.i !== true) throw new SyncProtocolError('rbsr: i must be true when given')
      const r: Extract<OpsRequest, { t: 'rbsr' }> = m.b === true ? { t: 'rbsr', m: rbsrBytes(m.m), b: true } : { t: 'rbsr', m: rbsrBytes(m.m) }
      if (m.i === true) r.i = true
      return r
    }
    if (m.t === 'lack') {
      if (m.e !== undefined && m.e !== true) throw new SyncProtocolError('lack: e must be true when given')
      if (m.a !== undefined && (m.a !== true || m.e !== true)) throw new SyncProtocolError('lack: a must be true, and come with e')
      const ids = lackBytes(m.ids, m.e === true)
      if (m.a === true) return { t: 'lack', k: runToken(m.k), ids, e: true, a: true }
      return m.e === true ? { t: 'lack', k: runToken(m.k), ids, e: true } : { t: 'lack', k: runToken(m.k), ids }
    }
    if (m.t === 'bydigest') {
      if (m.c !== undefined && m.c !== true) throw new SyncProtocolError('bydigest: c must be true when given')
      if (!(m.ids instanceof Uint8Array) || m.ids.byteLength === 0 || m.ids.byteLength % RBSR_ID_BYTES !== 0 || m.ids.byteLength > MAX_CIDS * RBSR_ID_BYTES) throw new SyncProtocolError(`bydigest: ids must be 1..${MAX_CIDS} ids of ${RBSR_ID_BYTES} bytes end to end`)
      return m.c === true ? { t: 'bydigest', ids: m.ids, c: true } : { t: 'bydigest', ids: m.ids }
    }
    if (m.t === 'byid') {
      if (m.c !== undefined && m.c !== true) throw new SyncProtocolError('byid: c must be true when given')
      return m.c === true ? { t: 'byid', ids: cids(m.ids), c: true } : { t: 'byid', ids: cids(m.ids) }
    }
    if (m.t === 'hold') {
      const id = cids([m.id])[0]
      if (m.r !== undefined && m.r !== true) throw new SyncProtocolError('hold: r must be true when given')
      const op = blocks([m.op])[0]
      if (m.b !== undefined && m.r !== true) throw new SyncProtocolError('hold: b comes with r only')
      if (m.b !== undefined) {
        const b = blocks(m.b)
        if (b.length === 0) throw new SyncProtocolError('hold: b must not be empty when given')
        return { t: 'hold', id, op, r: true, b }
      }
      return m.r === true ? { t: 'hold', id, op, r: true } : { t: 'hold', id, op }
    }
    throw new SyncProtocolError(`unknown request ${JSON.stringify(String(m.t)).slice(0, 40)}`)
  },
  reply: (v, req) => {
    const m = map(v)
    if (req.t === 'heads' && m.t === 'heads') return { t: 'heads', heads: cids(m.heads) }
    if ((req.t === 'get' || req.t === 'byid' || req.t === 'bydigest') && m.t === 'ops') return { t: 'ops', ops: blocks(m.ops) }
    if (req.t === 'rbsr' && m.t === 'rbsr') {
      if (m.i !== undefined && (m.i !== true || req.i !== true)) throw new SyncProtocolError('rbsr: i must be true, and answer a message that said i')
      let r: Extract<OpsReply, { t: 'rbsr' }>
      if (m.d !== undefined) {
        if (req.b !== true) throw new SyncProtocolError('rbsr: d answers an offer (b) only')
        r = { t: 'rbsr', m: new Uint8Array(0), d: runToken(m.d) }
      } else {
        if (m.b !== undefined && (m.b !== true || req.b !== true)) throw new SyncProtocolError('rbsr: b must be true, and answer an offer')
        r = m.b === true ? { t: 'rbsr', m: rbsrBytes(m.m), b: true } : { t: 'rbsr', m: rbsrBytes(m.m) }
      }
      if (m.i === true) r.i = true
      return r
    }
    if (req.t === 'lack' && m.t === 'lack') return { t: 'lack' }
    if (req.t === 'hold' && m.t === 'held') {
      if (typeof m.held !== 'boolean') throw new SyncProtocolError('held must be a boolean')
      if (m.r !== undefined && m.r !== true) throw new SyncProtocolError('held: r must be true when given')
      return m.r === true && m.held ? { t: 'held', held: true, r: true } : { t: 'held', held: m.held }
    }
    throw new SyncProtocolError(`expected ${req.t === 'heads' || req.t === 'rbsr' || req.t === 'lack' ? req.t : req.t === 'hold' ? 'held' : 'ops'}, got ${JSON.stringify(String(m.t)).slice(0, 40)}`)
  },
  notice: (v) => {
    const m = map(v)
    if (m.t === 'push') {
      if (m.r === undefined) return { t: 'push', ops: blocks(m.ops) }
      if (typeof m.r !== 'string' || m.r.length === 0 || m.r.length > MAX_PEER_ID_CHARS) throw new SyncProtocolError(`r must be a peer id of 1..${MAX_PEER_ID_CHARS} characters`)
      return { t: 'push', ops: blocks(m.ops), r: m.r }
    }
    throw new SyncProtocolError(`unknown notice ${JSON.stringify(String(m.t)).slice(0, 40)}`)
  }
})

/** HOLD_PROTOCOL on rpc.ts: the hold call of OPS alone, on kept streams (see "Hold" in the header). */
export const HOLD = defineProtocol<HoldRequest, HoldReply>({
  id: HOLD_PROTOCOL,
  maxStreams: MAX_HOLD_STREAMS,
  kept: true,
  maxMessageBytes: MAX_OP_BYTES + 4096,
  timeoutMs: REQUEST_TIMEOUT_MS,
  malformed: SyncProtocolError,
  request: (v) => {
    const r = OPS.request?.(v)
    if (r?.t !== 'hold') throw new SyncProtocolError(`${HOLD_PROTOCOL} takes hold requests only`)
    return r
  },
  reply: (v, req) => OPS.reply?.(v, req) as HoldReply
})

function map (x: unknown): Record<string, unknown> {
  if (x === null || typeof x !== 'object' || Array.isArray(x) || x instanceof Uint8Array) throw new SyncProtocolError('message is not a map')
  return x as Record<string, unknown>
}

function blocks (x: unknown): Uint8Array[] {
  if (!Array.isArray(x) || x.length > MAX_OPS_PER_MESSAGE) throw new SyncProtocolError(`ops must be a list of at most ${MAX_OPS_PER_MESSAGE} blocks`)
  for (const b of x) {
    if (!(b instanceof Uint8Array) || b.byteLength === 0 || b.byteLength > MAX_OP_BYTES) throw new SyncProtocolError(`an op block must be 1..${MAX_OP_BYTES} bytes`)
  }
  return x
}

function cids (x: unknown): CID[] {
  if (!Array.isArray(x) || x.length > MAX_CIDS) throw new SyncProtocolError(`expected a list of at most ${MAX_CIDS} CIDs`)
  return x.map(c => {
    const cid = CID.asCID(c)
    if (cid === null) throw new SyncProtocolError('expected a CID')
    return cid
  })
}

/** A run's token: a safe integer >= 0. */
function runToken (x: unknown): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) throw new SyncProtocolError('a run token must be a safe integer >= 0')
  return x
}
/** A lack call's ids, end to end: 1..LACK_MAX_IDS of them (none in the call that ends a list, e). */
function lackBytes (x: unknown, end: boolean): Uint8Array {
  if (!(x instanceof Uint8Array) || x.byteLength % RBSR_ID_BYTES !== 0 || x.byteLength > LACK_MAX_IDS * RBSR_ID_BYTES || (x.byteLength === 0 && !end)) throw new SyncProtocolError(`lack: ids must be 1..${LACK_MAX_IDS} ids of ${RBSR_ID_BYTES} bytes end to end`)
  return x
}
function joinIds (ids: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(ids.length * RBSR_ID_BYTES)
  for (let i = 0; i < ids.length; i++) out.set(ids[i], i * RBSR_ID_BYTES)
  return out
}
function splitIds (bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let i = 0; i < bytes.byteLength; i += RBSR_ID_BYTES) out.push(bytes.subarray(i, i + RBSR_ID_BYTES))
  return out
}
function rbsrBytes (x: unknown): Uint8Array {
  if (!(x instanceof Uint8Array) || x.byteLength === 0 || x.byteLength > RBSR_MAX_MESSAGE_BYTES) throw new SyncProtocolError(`an rbsr message must be 1..${RBSR_MAX_MESSAGE_BYTES} bytes`)
  return x
}

/** The CID of the op whose block hashes to `digest` (every op CID is CIDv1, dag-cbor, sha2-256). */
function opCid (digest: Uint8Array): CID {
  if (digest.byteLength !== RBSR_ID_BYTES) throw new SyncProtocolError('an op id must be 32 bytes')
  return opCidOf(digest)
}

/** An op block's parents (dag-cbor field `parents`); none if it does not decode. */
function parentsOf (block: Uint8Array): CID[] {
  try {
    const op: any = dagCbor.decode(block)
    if (!Array.isArray(op?.parents)) return []
    return op.parents.map((p: unknown) => CID.asCID(p)).filter((p: CID | null): p is CID => p !== null)
  } catch {
    // an op block that does not decode has no parents to follow (the tree refuses it on receive)
    return []
  }
}

/** Take from the head of `queue` the ops of one message: at most `maxBytes` (at least one op). */
function takeBatch (queue: Uint8Array[], maxBytes: number): Uint8Array[] {
  const batch: Uint8Array[] = []
  let bytes = 0
  while (queue.length > 0 && batch.length < MAX_OPS_PER_MESSAGE && (batch.length === 0 || bytes + queue[0].byteLength <= maxBytes)) {
    const op = queue.shift() as Uint8Array
    batch.push(op)
    bytes += op.byteLength
  }
  return batch
}

function uniq (list: CID[]): CID[] {
  const seen = new Map<string, CID>()
  for (const c of list) seen.set(c.toString(), c)
  return [...seen.values()]
}

function sameCids (a: CID[], b: CID[]): boolean {
  if (a.length !== b.length) return false
  const s = new Set(a.map(c => c.toString()))
  return b.every(c => s.has(c.toString()))
}
