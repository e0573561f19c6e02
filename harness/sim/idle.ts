// Idle traffic: what a host sends per second with nothing written, from darkfs's periods
// (member-service.ts digest every TABLE_SYNC_MS, members.ts record refresh every
// memberRefreshMs(hosts), DOWN notices and fresh records as the churn trace makes them, host.ts's
// ping of each connection every pingIntervalMs(connections), gossipsub heartbeats) and wire sizes
// estimated below (framing included; not measured on a socket). The per-message gossip cost is
// the dissemination run's bytes per host per op. The keeper counts' traffic is in `total`:
// kept-service.ts's digest round, and kept.ts's messages at the rates the simulator measured by
// running every host's KeptNotices on the churn trace (harness/sim/kept.ts): the sums sent up
// the tree (an rpc call each, as a digest call) and the root's totals on gossip with their
// IHAVEs (kept_*).
// The breakdown by kind (issue 14: which parts grow with the network): `fixed` (digest rounds and
// pings, and the keeper counts' digest round: per connection, and connections are bounded), `refresh` (every member's periodic record,
// network-wide at most one per MEMBER_REFRESH_PER_MEMBER_MS, and its IHAVEs), `churn` (DOWN
// notices and the fresh record of each host back after one, and their IHAVEs, and the keeper
// counts' sums and totals, which move when the hosts up do: every host hears of
// every member that goes and comes back, so this grows with the network at a given churn per
// host), and `table_sync` (the member-table pull of a host back from an outage:
// harness/sim/table-sync.ts, darkfs's own tables and pull rule; given by the caller).
// Member messages go by gossip, or (`pullBodiesPerChange`, what darkfs runs once every member
// takes member sync rounds: node/net/members.ts) by pull: each host receives each change about
// once, bare in a sync answer or its author's push, names the changes still spreading in each
// round's request (`sync_keys`), and sends its share of the authors' pushes (a new stream each),
// with no gossip copies or IHAVE for them.
// `churn_floor` is what churn would cost if each host received each DOWN notice and fresh record
// once, bare (no gossip copies, framing or IHAVE): the least any design costs in which every host
// hears of every member that goes and comes back; it too grows with the network (not in `total`).
// `npm run sim` runs it (scripts/sim/gossip.ts re-exports it), as does bench:scale beside its measured figure.
// The mesh's degrees and the IHAVE settings are host.ts's (GOSSIP_MESH_OPTIONS, which it hands to gossipsub).
import {
  DEFAULT_MAX_CONNECTIONS, GOSSIP_D, GOSSIP_DLAZY, GOSSIP_FACTOR, GOSSIP_HEARTBEAT_MS, GOSSIP_HISTORY_GOSSIP,
  MEMBER_SYNC_KEYS_MS, PING_ROUND_SENT_BYTES, SYNC_KEY_BYTES, TABLE_SYNC_MS, memberRefreshMs, pingIntervalMs
} from '../../node/net/index.ts'
import { KEPT_SYNC_MS } from '../../node/keeper/index.ts'

/**
 * Estimated wire sizes, bytes, with TCP/IP (40 per packet), noise (18 per frame) and yamux
 * (12 per frame) framing:
 *  - a gossip message carries, besides its data, gossipsub's RPC framing, the author's key (from),
 *    seqno, topic (a 64-char hash) and an Ed25519 signature: about 180 bytes, plus 70 of framing;
 *  - a message id in an IHAVE (StrictSign: author + seqno) about 50;
 *  - a digest call (member-service.ts): a new stream (multistream-select both ways), the
 *    request and the 32-byte answer in rpc.ts's envelope, yamux and noise frames: from the real
 *    idle bench (scripts/bench/idle.ts: 125 B/s into the sockets of each host of a 6-host mesh,
 *    88 of them pings at 530 bytes a round) about 550 bytes into the sockets a call, both sides;
 *    with TCP/IP headers about 700, 350 of it from the asker;
 *  - a ping round of a connection (host.ts pings on a new stream, both ends): host.ts's
 *    PING_ROUND_SENT_BYTES, measured (the figure follows the code).
 */
export const GOSSIP_OVERHEAD_BYTES = 250
export const IHAVE_ID_BYTES = 50
export const IHAVE_FRAME_BYTES = 100
export const DIGEST_CALL_SENT_BYTES = 350
export const DIGEST_CALL_ANSWER_BYTES = 350
/**
 * A signed member record message (members.ts: peer id, seq, two addresses, signature; and the
 * features list hosts sign into it since member sync rounds, 66 bytes with this version's
 * features, measured with dag-cbor) and a DOWN notice.
 */
export const MEMBER_RECORD_FEATURES_BYTES = 66
export const MEMBER_RECORD_BYTES = 260 + MEMBER_RECORD_FEATURES_BYTES
export const DOWN_NOTICE_BYTES = 180
/** What a message adds to a sync answer besides its own bytes (dag-cbor byte-string header). */
export const SYNC_ITEM_BYTES = 3
/** A keeper counts record (keeper/kept.ts signKept: 200 bytes with counts of 84,000 chunks, and the tag byte). */
export const KEPT_RECORD_BYTES = 200

export interface IdleOptions {
  hosts: number
  /** Copies of a gossip message a host sends, on average (the dissemination figure: bytes per host per op / wire size). */
  copiesPerMessage: number
  /** Hosts declared gone, and hosts back after that, per host per hour (the churn trace). */
  goneHostHour: number
  returnedHostHour: number
  /** Member-table pulls after outages, bytes/s per host (table-sync.ts); 0 when not measured. */
  tableSyncBytesPerS?: number
  /**
   * Keeper counts records published network-wide per second (harness/sim/kept.ts runKeptSim on
   * the same trace; 0 with no churn: an idle network's counts do not move), and their mean size
   * (the signed record; KEPT_RECORD_BYTES less the tag byte when not given).
   */
  keptRecordsPerS: number
  keptRecordBytes?: number
  /** Sums sent up the tree network-wide per second (kept-service.ts sendKeptSum calls), and their mean record size. */
  keptUpsPerS?: number
  keptUpBytes?: number
  /**
   * Member messages spread by sync rounds (node/net/members.ts; what darkfs runs once every
   * member's record lists memberpull/1): the messages each host receives per change (the pull
   * spread's figure, duplicates included), none on gossip. Absent: on gossip, as before.
   */
  pullBodiesPerChange?: number
  /** With it: pushes each host sends per change (the author's to its connections, shared out). */
  pullPushesPerChange?: number
}

/** Idle upload of one host, bytes/s, by source. */
export function idleTraffic (o: IdleOptions): Record<string, number> {
  const conns = Math.min(o.hosts - 1, DEFAULT_MAX_CONNECTIONS)
  // anti-entropy: one digest call a round, and on average one answered
  const digest = (DIGEST_CALL_SENT_BYTES + DIGEST_CALL_ANSWER_BYTES) / (TABLE_SYNC_MS / 1000)
  // host.ts pings each connection from both ends, at an interval that follows their number
  const ping = conns * PING_ROUND_SENT_BYTES / (pingIntervalMs(conns) / 1000)
  // gossip messages network-wide per second: every host's record once per memberRefreshMs, a DOWN notice per host
  // declared gone, a fresh record per host back after that
  const refreshes = o.hosts / (memberRefreshMs(o.hosts) / 1000)
  const returns = o.hosts * o.returnedHostHour / 3600
  const records = refreshes + returns
  const downs = o.hosts * o.goneHostHour / 3600
  const pull = o.pullBodiesPerChange
  // (a push: a notice on a new stream, as the asker's side of a digest call, and the message)
  const pushes = o.pullPushesPerChange ?? 0
  const perRecord = pull !== undefined ? pull * (MEMBER_RECORD_BYTES + SYNC_ITEM_BYTES) + pushes * DIGEST_CALL_SENT_BYTES : o.copiesPerMessage * (MEMBER_RECORD_BYTES + GOSSIP_OVERHEAD_BYTES)
  const perDown = pull !== undefined ? pull * (DOWN_NOTICE_BYTES + SYNC_ITEM_BYTES) + pushes * DIGEST_CALL_SENT_BYTES : o.copiesPerMessage * (DOWN_NOTICE_BYTES + GOSSIP_OVERHEAD_BYTES)
  // heartbeats: IHAVE to max(Dlazy, factor * non-mesh peers) peers, each message id advertised
  // in GOSSIP_HISTORY_GOSSIP heartbeats; a heartbeat with no id to advertise sends nothing
  const lazy = Math.max(GOSSIP_DLAZY, Math.floor(GOSSIP_FACTOR * Math.max(0, conns - GOSSIP_D)))
  const ihaveOf = (msgs: number): number => {
    const perHeartbeat = msgs * GOSSIP_HEARTBEAT_MS / 1000 * GOSSIP_HISTORY_GOSSIP
    // (a heartbeat has an id to advertise with odds about min(1, ids per heartbeat))
    return lazy * (IHAVE_FRAME_BYTES * Math.min(1, perHeartbeat) + IHAVE_ID_BYTES * perHeartbeat) / (GOSSIP_HEARTBEAT_MS / 1000)
  }
  // Keeper counts (keeper/kept.ts, kept-service.ts): the kept table's own anti-entropy round
  // every KEPT_SYNC_MS, and the records at the rate measured (each a gossip message)
  const keptDigest = (DIGEST_CALL_SENT_BYTES + DIGEST_CALL_ANSWER_BYTES) / (KEPT_SYNC_MS / 1000)
  const kept = o.keptRecordsPerS
  const keptRecords = kept * o.copiesPerMessage * ((o.keptRecordBytes ?? KEPT_RECORD_BYTES - 1) + 1 + GOSSIP_OVERHEAD_BYTES)
  const msgs = records + downs
  // pulled: no IHAVE for member messages, and each round's request names the changes taken
  // within MEMBER_SYNC_KEYS_MS (the sync call's framing is the digest call's, in `digest`)
  const ihave = pull !== undefined ? 0 : ihaveOf(msgs)
  const keptIhave = ihaveOf((pull !== undefined ? 0 : msgs) + kept) - ihave
  const syncKeys = pull !== undefined ? msgs * (MEMBER_SYNC_KEYS_MS / 1000) * SYNC_KEY_BYTES / (TABLE_SYNC_MS / 1000) : 0
  const syncKeysRefresh = msgs > 0 ? syncKeys * refreshes / msgs : 0
  // a sum sent up: a call on a new stream (the asker's side of a digest call, and the record),
  // its answer from the parent: per host, the network's calls shared out
  const keptUps = (o.keptUpsPerS ?? 0) / o.hosts * (DIGEST_CALL_SENT_BYTES + (o.keptUpBytes ?? KEPT_RECORD_BYTES) + DIGEST_CALL_ANSWER_BYTES)
  const gossip = records * perRecord + downs * perDown
  const tableSync = o.tableSyncBytesPerS ?? 0
  const total = digest + ping + gossip + ihave + syncKeys + tableSync + keptDigest + keptRecords + keptIhave + keptUps
  // IHAVEs by the messages that caused them (a heartbeat's frame shared in proportion)
  const ihaveRefresh = msgs > 0 ? ihave * refreshes / msgs : 0
  return {
    digest,
    ping,
    records: records * perRecord,
    records_refresh: refreshes * perRecord,
    records_returned: returns * perRecord,
    downs: downs * perDown,
    ihave,
    ihave_refresh: ihaveRefresh,
    ihave_churn: ihave - ihaveRefresh,
    sync_keys: syncKeys,
    table_sync: tableSync,
    total,
    fixed: digest + ping + keptDigest,
    refresh: refreshes * perRecord + ihaveRefresh + syncKeysRefresh,
    churn: returns * perRecord + downs * perDown + ihave - ihaveRefresh + syncKeys - syncKeysRefresh + keptRecords + keptIhave + keptUps,
    churn_messages_per_s: msgs - refreshes,
    churn_floor: returns * MEMBER_RECORD_BYTES + downs * DOWN_NOTICE_BYTES,
    kept_digest: keptDigest,
    kept_records: keptRecords,
    kept_ihave: keptIhave,
    kept_ups: keptUps
  }
}
