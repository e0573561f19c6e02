// darkfs swarm, the door of swarm/ (DESIGN.md §4). Other rooms import only this file.
//
// The swarm moves verified, content-addressed blocks (CIDv1, sha2-256, raw or dag-cbor)
// between libp2p peers over the protocol '/darkfs/swarm/1.0.0'. It knows nothing of files,
// chunks or trees.
//
//   const swarm = createSwarm({ maxUploadBytesPerSecond: 2e6 })(libp2pComponents(libp2p, blocks, sink))
//   await swarm.start()
//   const bytes = await swarm.pull(cid, [peerA, peerB])
//   const frags = await swarm.pullAny(fragmentCids, k, holdersByCid)
//   const acks = await swarm.push([{ cid, bytes, to: [a, b, c] }], { onAck })
//   const held = await swarm.has(fragmentCids, peer)   // have-only query: nothing moves
//   const leaves = await swarm.pullRange({ cid, first, end, verify }, [peerA])  // a few leaves + proof
//   await swarm.stop()
//
// Contract:
//  - start()/stop() are idempotent. stop() closes every swarm stream; calls in progress reject
//    (SwarmStoppedError, or the error of the stream that went away); calls after it reject.
//  - pull(cid, from) fetches one block from any of `from`: the fastest peers are asked first,
//    a peer that lacks the block, goes away or is slow is replaced by the next one. The bytes
//    are verified against the CID. Rejects with BlockNotFoundError when no peer delivered it.
//    A block already in `blocks` is returned without asking anyone.
//  - pullAny(cids, need, from) resolves with the first `need` verified blocks, keyed by
//    cid.toString(), preferring the earlier CIDs (e.g. data fragments before parity), and
//    cancels the rest. `from` is one list of peers for all CIDs, or peers per cid.toString().
//  - pullRange({ cid, first, end, verify }, from) fetches leaves [first, end) of a block with
//    the proof of its Merkle tree (RANGE_WANT; the holder's BlockSource.range makes them), from
//    one peer at a time. The swarm knows no tree: `verify` (the asker's, holding the root)
//    checks every answer before it is returned, and a peer whose answer fails it is treated as
//    one that sent a wrong block (banned). Rejects with BlockNotFoundError when no peer delivered.
//  - push(deliveries) sends each block once, to the first holder of its plan (plan.ts), with
//    the rest of the plan; every holder verifies, stores durably (sink.put), ACKs and forwards.
//    Resolves with the holders that ACKed, per cid.toString() (holders that failed are simply
//    absent); `onAck` reports them as they come. A delivery whose bytes do not match its CID
//    rejects at once with WrongBlockError (nothing is sent).
//  - has(cids, peer) asks one peer which of the blocks it holds (have-only wants on a stream of
//    their own, HAVE_WINDOW outstanding, HAVE_TIMEOUT_MS per query); rejects when the peer
//    cannot be reached or breaks the protocol.
//  - Every block received (BLOCK or PUSH) is hashed against its CID before it is stored,
//    served, forwarded or returned; a peer that sends a wrong block, or breaks the protocol, is
//    banned for BAN_MS and disconnected (components.hangUp). A pull's `land` (PullOptions) lets a
//    BLOCK of LAND_MIN_BYTES or more that arrives in pieces be written straight into memory the
//    asker gives (one place per frame, asked for by CID and length) rather than a frame buffer;
//    it is hashed there like any other before the pull returns it, so the asker trusts only the
//    places the pull returned: a refused or late frame may have written the others. On a
//    served (inbound) stream, any frame of LAND_MIN_BYTES or more received in pieces (a pushed
//    block, mostly) is joined into memory of components.frameBytes when given (the daemon's has
//    its pages faulted in at once), else into a fresh buffer; an asker's stream joins what it
//    does not land (a pull without `land`, a large range answer) into a fresh buffer.
//  - Bounds (protocol.ts, client.ts, serve.ts, channel.ts): MAX_MESSAGE_BYTES per frame,
//    MAX_CIDS_PER_MESSAGE, MAX_WANTS_PER_PEER queued, MAX_REQUESTS_IN_FLIGHT_PER_PEER and
//    MAX_PUSHES_IN_FLIGHT_PER_PEER outstanding, MAX_STREAMS_PER_CONNECTION, upload slots, and
//    the upload/download caps of SwarmInit (token buckets). A malformed, truncated or oversized
//    frame closes its stream; the node carries on.
//  - Every call takes AbortOptions (from @libp2p/interface) last; an aborted pull cancels its
//    wants (CANCEL) and rejects with the signal's reason. The swarm merges a caller's signal with
//    its own bounds (shutdown, hop and query timeouts) only through anySignal() (abort.ts).
export { createSwarm, DEFAULT_UPLOAD_SLOTS, MAX_STREAMS_PER_CONNECTION } from './swarm.ts'
export type { Swarm, SwarmInit, SwarmComponents, SwarmStats, Delivery, PushOptions, RemoteConnection } from './swarm.ts'
export type { BlockSource, BlockSink } from './serve.ts'
export type { PullOptions } from './pull.ts'
export type { RangeWant } from './client.ts'
export { MAX_WANTS_PER_PEER } from './serve.ts'
export { HAVE_WINDOW, HAVE_TIMEOUT_MS } from './has.ts'
export { MAX_REQUESTS_IN_FLIGHT_PER_PEER, MAX_PUSHES_IN_FLIGHT_PER_PEER } from './client.ts'
export { libp2pComponents } from './libp2p.ts'
export { loopTimeSignal, loopTimeDeadline, LOOP_STEPS, LOOP_TIME_MAX_FACTOR } from './abort.ts'
export { plan, children, holdersOf, DEFAULT_UPLINK_BYTES_PER_SECOND } from './plan.ts'
export type { Route, PlanDelivery, PlanOptions } from './plan.ts'
export { PROTOCOL, PROTOCOL_RANGES, PROTOCOL_ORIGINS, MAX_BLOCK_BYTES, MAX_MESSAGE_BYTES, MAX_CIDS_PER_MESSAGE, MAX_HOPS, MAX_RANGE_LEAVES, MAX_PROOF_HASHES } from './protocol.ts'
export type { Hop, Landing } from './protocol.ts'
export { LAND_MIN_BYTES } from './protocol.ts'
export { BAN_MS } from './peers.ts'
export { tokenBucket } from './rate.ts'
export type { RateLimiter } from './rate.ts'
export { ProtocolError, MessageTooLargeError, WrongBlockError, UnsupportedCidError, TooManyRequestsError, BlockNotFoundError, SwarmStoppedError, PeerGoneError } from './errors.ts'
