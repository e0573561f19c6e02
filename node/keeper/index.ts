// node/keeper — who must hold what, and making it so (DESIGN.md §3, §4, §6): the placement
// policy (erasure parameters and XOR-ranked targets, as pure functions), the assignment of
// fragments to hosts, placing a writer's chunks (directly or through a relay on a thin
// uplink), the keeper's repair passes, rebalance and leave, surveys of who holds what,
// custody (no copy is deleted before its keepers promised to hold it), garbage collection
// and retention, pins, scrub, and the health of every chunk as last seen (status.ts: what
// `darkfs status` answers from, without a message).
//
// Contract:
//  - Policy is pure (placement.ts, assignment.ts, survey.ts's plan): same inputs, same answer,
//    on every host; the loops around it (repair.ts, gc.ts, pins.ts) act on what it decides.
//  - Nothing here deletes a copy that the plan still needs or that a keeper has not promised
//    to keep (custody.ts); pinned copies are spared (pins.ts guardStore).
//  - The keeper reads files through the Volume (node/), moves bytes through the swarm, and
//    talks to peers through node/net; it never reaches the disk but through node/data's Store.
export { networkCapacity } from './capacity.ts'
export { CUSTODY, CUSTODY_PROMISE_MS, Custody, CustodyProtocolError } from './custody.ts'
export { FragmentMismatchError, PLACE, PlaceProtocolError, RelayBusyError, createForwarder, isStreamRace } from './forward.ts'
export type { Forwarder } from './forward.ts'
export { ChunkNetwork, PLACE_RETRY_INTERVAL_MS, RELAY_BELOW_BYTES_PER_SECOND, survivesOneLoss, targetsHold, throughRelays } from './network.ts'
export type { HandoverEvent } from './network.ts'
export { PendingPlacements } from './pending.ts'
export { placementPolicy, rankByRule, DEFAULT_REDUNDANCY, MAX_DATA_FRAGMENTS, MAX_WIDTH } from './placement.ts'
export type { PlacementPolicy, DataFragments } from './placement.ts'
export { Pins, guardStore, pinnersOf } from './pins.ts'
export type { PinComplete } from './pins.ts'
export { startRedundancy } from './redundancy.ts'
export type { Redundancy, RedundancyOptions, HealthOptions } from './redundancy.ts'
export { DEFAULT_REPAIR_INTERVAL_MS, REPAIR_CHUNK_TIMEOUT_MS, REPAIR_DEBOUNCE_MS, SURVEY_SPARE_RANKS, THIN_KEEPER_SHARE, rebuilderOf, repairDeliveries, repairRate, requeue } from './repair.ts'
export type { RepairProgress, RepairTotals } from './repair.ts'
export { Release, RELEASE, ReleaseProtocolError, releasingSink } from './release.ts'
export { saveReleaseRecords, takeReleaseRecords, RELEASE_RECORDS_FILE } from './release-records.ts'
export { ReleaseOpening, OPENING_CALLS_MAX } from './release-opening.ts'
export type { KeptPutRecord } from './release-records.ts'
export type { ReleaseTeller } from './release.ts'
export { retained, DEFAULT_RETENTION_MS } from './retained.ts'
export { HealthBook, CHUNK_STATES, KEEPER_RANKS, LOST_CONFIRM_MS, stateOf } from './status.ts'
export { KEPT_DEBOUNCE_MS, KEPT_ROOT_CANDIDATES, keptRootSettleMs, KEPT_EARLY_FORWARDS, KEPT_EARLY_MAX, KEPT_GOSSIP_TAG, KEPT_RESEND_INTERVALS, KEPT_ROOT_SETTLE_INTERVALS, KEPT_SUM_GOSSIP_TAG, realKeptClock, KEPT_MESSAGE_BYTES, KEPT_MIN_INTERVAL_MS, KEPT_MS_PER_MEMBER, KEPT_ROOT_MAX_INTERVAL_MS, KEPT_ROOT_MS_PER_MEMBER, KEPT_UP_MAX_INTERVAL_MS, KEPT_UP_MS_PER_MEMBER, keptInterval, keptIntervalOf, keptTreeMode, KEPT_STATES, KeptNotices, KeptRecordError, KeptTable, MAX_KEPT_CHUNKS, emptyKept, openKept, sameKept, signKept } from './kept.ts'
export type { KeptClock, KeptRole, KeptSumAnswer, KeptCounts, KeptRecord, KeptState, NetworkTotals } from './kept.ts'
export { KEPT_SYNC_MS, KEPT_SYNC_RECHECK_MS, KEPT_TABLE, KEPT_TABLE_PROTOCOL, KeptTableError, MAX_KEPT_TABLE_BYTES, keptDigest, sendKeptSum, startKeptService } from './kept-service.ts'
export { keptParent, keptRoot } from './kept-tree.ts'
export type { KeptService, KeptServiceHost } from './kept-service.ts'
export type { ChunkState, ChunkStatus, HealthView, ShortChunk } from './status.ts'
export { plan } from './survey.ts'
export { assignment } from './assignment.ts'
export { PLACED, PLACED_PROTOCOL, PlacedNotices, PlacedProtocolError } from './placed.ts'
export type { PlacedNotice } from './placed.ts'
export { AT_RISK_CLOCK, AT_RISK_DELAY_MS, LAZY_RULE, REPAIR_SPARE, atRisk, byUrgency, giveUp, lazyPlan, liveFragments, mayWait, stopWaiting, survivingFragments } from './lazy.ts'
export type { AtRiskClock, LazyRule } from './lazy.ts'
export type { ChunkPlan, Holdings } from './survey.ts'
export { handovers } from './rebalance.ts'
export { CAPACITY_CLASS_STEPS, WEIGHT_CAP_CLASSES, balancedTargets, capacityClass, classWeight, placementWeights, rendezvous } from './balance.ts'
export type { Candidate } from './balance.ts'
// the Kademlia key space and the k/m rule, for the simulator (scripts/sim): the same functions placement runs
export { closest, compareDistance, erasureParams, keyKadId, peerKadId, targets } from './placement.ts'
