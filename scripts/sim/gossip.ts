// Dissemination and idle traffic figures of the simulator (issue 14 items 2, 3 and 7).
//
// Dissemination: one op published by one host, spread as darkfs's gossipsub spreads it
// (node/net/host.ts): the author sends it to every peer it is connected to (floodPublish, at most
// --max-connections), every other host forwards its first copy to its mesh peers but the one it
// came from; later copies are dropped. The mesh is drawn as gossipsub's heartbeat keeps it: each
// host grafts D random peers, a peer takes grafts up to Dhi (so degrees fall between D and Dhi).
// Copies leave one after another over the sender's uplink (events.ts), and arrive one link latency
// later. IHAVE/IWANT lazy repair is not simulated here (the mesh alone reaches every live host in
// these runs), but its bytes are counted in the idle figure. Hosts that are down (`downShare`,
// before any heartbeat repaired the mesh around them) neither receive nor forward.
//
// Idle traffic: what a host sends per second with nothing written, from darkfs's periods
// (member-service.ts digest every TABLE_SYNC_MS, members.ts record refresh every
// memberRefreshMs(hosts), DOWN notices and fresh records as the churn trace makes them, host.ts's
// ping of each connection every pingIntervalMs(connections), gossipsub heartbeats) and wire sizes
// estimated below (framing included; not measured on a socket). The per-message gossip cost is
// the dissemination run's bytes per host per op. The keeper counts' traffic (kept-service.ts's
// digest round, kept.ts's records on each change of the hosts up, and their IHAVEs) is given
// beside, as kept_*, and in total_with_kept; `total` leaves it out, as it did before those were
// counted.
// The mesh's degrees and the IHAVE settings are host.ts's (GOSSIP_MESH_OPTIONS, which it hands to gossipsub).
import {
  DEFAULT_MAX_CONNECTIONS, GOSSIP_D, GOSSIP_DHI, GOSSIP_DLAZY, GOSSIP_FACTOR, GOSSIP_HEARTBEAT_MS, GOSSIP_HISTORY_GOSSIP,
  PING_ROUND_SENT_BYTES, TABLE_SYNC_MS, memberRefreshMs, pingIntervalMs
} from '../../node/net/index.ts'
import { KEPT_SYNC_MS, keptInterval } from '../../node/keeper/index.ts'
import { prng } from '../../harness/prng.ts'
import { EventQueue, Uplinks } from '../../harness/sim/events.ts'
import { simUplink } from '../../harness/sim/churn.ts'

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
/** A signed member record message (members.ts: peer id, seq, two addresses, signature) and a DOWN notice. */
export const MEMBER_RECORD_BYTES = 260
export const DOWN_NOTICE_BYTES = 180
/** A keeper counts record (keeper/kept.ts signKept: 200 bytes with counts of 84,000 chunks, and the tag byte). */
export const KEPT_RECORD_BYTES = 200

export interface DisseminationOptions {
  hosts: number
  seed: number
  opBytes: number
  latencyMs: number
  /** Ops published (from random hosts); figures are over all of them. */
  ops: number
  /** Share of hosts down when the ops are published. */
  downShare: number
}

export interface Dissemination {
  /** Virtual ms until 50%, 99% and 100% of the live hosts had the op (the worst op of the run for 99%). */
  t50: number
  t99: number
  t99Mean: number
  t100: number
  /** Bytes each host sent per op, mean and max, and copies received per host per op. */
  bytesPerHostMean: number
  bytesPerHostMax: number
  copiesPerHost: number
  /** Live hosts some op did not reach. */
  missed: number
  meshDegreeMean: number
  meshDegreeMax: number
}

export function runDissemination (o: DisseminationOptions): Dissemination {
  const rand = prng(o.seed)
  const N = o.hosts
  const uplinks = Array.from({ length: N }, () => simUplink(rand))
  // the mesh: each host grafts D random peers; a peer at Dhi refuses (the graft is tried elsewhere)
  const mesh: Array<Set<number>> = Array.from({ length: N }, () => new Set())
  for (let h = 0; h < N; h++) {
    let tries = 0
    while (mesh[h].size < Math.min(GOSSIP_D, N - 1) && tries++ < 100) {
      const p = Math.floor(rand() * N)
      if (p === h || mesh[h].has(p) || mesh[p].size >= GOSSIP_DHI) continue
      mesh[h].add(p); mesh[p].add(h)
    }
  }
  const conns = Math.min(N - 1, DEFAULT_MAX_CONNECTIONS)
  const live = new Uint8Array(N).fill(1)
  for (let h = 0; h < N; h++) if (rand() < o.downShare) live[h] = 0
  const liveCount = live.reduce((s, x) => s + x, 0)
  const wire = o.opBytes + GOSSIP_OVERHEAD_BYTES
  const sentTotal = new Float64Array(N)
  let copies = 0
  let missed = 0
  const t99s: number[] = []
  let t50 = 0
  let t100 = 0
  for (let op = 0; op < o.ops; op++) {
    const q = new EventQueue()
    const links = new Uplinks(uplinks)
    const got = new Float64Array(N).fill(Infinity)
    let author = Math.floor(rand() * N)
    while (live[author] === 0) author = Math.floor(rand() * N)
    const arrivals: number[] = []
    const deliver = (to: number, from: number, t: number): void => {
      q.at(t, () => {
        copies++
        if (live[to] === 0 || got[to] < Infinity) return
        got[to] = q.now
        arrivals.push(q.now)
        for (const p of mesh[to]) if (p !== from && p !== author) deliver(p, to, links.send(to, wire, q.now, o.latencyMs))
      })
    }
    got[author] = 0
    arrivals.push(0)
    // floodPublish: every connected peer, the mesh first, then others up to the bound
    const targets = new Set(mesh[author])
    while (targets.size < conns) { const p = Math.floor(rand() * N); if (p !== author) targets.add(p) }
    for (const p of targets) deliver(p, author, links.send(author, wire, 0, o.latencyMs))
    q.run()
    for (let h = 0; h < N; h++) sentTotal[h] += links.sent[h]
    arrivals.sort((a, b) => a - b)
    const at = (share: number): number => arrivals[Math.min(arrivals.length - 1, Math.ceil(share * liveCount) - 1)]
    t99s.push(arrivals.length >= Math.ceil(0.99 * liveCount) ? at(0.99) : Infinity)
    t50 = Math.max(t50, at(0.5))
    t100 = Math.max(t100, arrivals.length === liveCount ? arrivals[arrivals.length - 1] : Infinity)
    missed += liveCount - arrivals.length
  }
  const perHost = Array.from(sentTotal, b => b / o.ops)
  const degrees = mesh.map(s => s.size)
  return {
    t50,
    t99: Math.max(...t99s),
    t99Mean: t99s.reduce((s, x) => s + x, 0) / t99s.length,
    t100,
    bytesPerHostMean: perHost.reduce((s, x) => s + x, 0) / N,
    bytesPerHostMax: Math.max(...perHost),
    copiesPerHost: copies / o.ops / N,
    missed,
    meshDegreeMean: degrees.reduce((s, x) => s + x, 0) / N,
    meshDegreeMax: Math.max(...degrees)
  }
}

export interface IdleOptions {
  hosts: number
  /** Copies of a gossip message a host sends, on average (the dissemination figure: bytes per host per op / wire size). */
  copiesPerMessage: number
  /** Hosts declared gone, and hosts back after that, per host per hour (the churn trace). */
  goneHostHour: number
  returnedHostHour: number
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
  const records = o.hosts / (memberRefreshMs(o.hosts) / 1000) + o.hosts * o.returnedHostHour / 3600
  const downs = o.hosts * o.goneHostHour / 3600
  const perRecord = o.copiesPerMessage * (MEMBER_RECORD_BYTES + GOSSIP_OVERHEAD_BYTES)
  const perDown = o.copiesPerMessage * (DOWN_NOTICE_BYTES + GOSSIP_OVERHEAD_BYTES)
  // heartbeats: IHAVE to max(Dlazy, factor * non-mesh peers) peers, each message id advertised
  // in GOSSIP_HISTORY_GOSSIP heartbeats; a heartbeat with no id to advertise sends nothing
  const lazy = Math.max(GOSSIP_DLAZY, Math.floor(GOSSIP_FACTOR * Math.max(0, conns - GOSSIP_D)))
  const ihaveOf = (msgs: number): number => {
    const perHeartbeat = msgs * GOSSIP_HEARTBEAT_MS / 1000 * GOSSIP_HISTORY_GOSSIP
    // (a heartbeat has an id to advertise with odds about min(1, ids per heartbeat))
    return lazy * (IHAVE_FRAME_BYTES * Math.min(1, perHeartbeat) + IHAVE_ID_BYTES * perHeartbeat) / (GOSSIP_HEARTBEAT_MS / 1000)
  }
  const msgs = records + downs
  const ihave = ihaveOf(msgs)
  const gossip = records * perRecord + downs * perDown
  const total = digest + ping + gossip + ihave
  // Keeper counts (keeper/kept.ts, kept-service.ts), not in `total` (which stays the figure it
  // was): the kept table's own anti-entropy round every KEPT_SYNC_MS, and the records. A host
  // counts again when the hosts up change (a DOWN notice, a return) and tells its record when a
  // figure moved, at most once per keptInterval(hosts). Taken here: every such change moves every
  // keeper's counts (at 1,000 hosts each keeper keeps chunks with fragments on any given host),
  // so after each record a host waits keptInterval, then for the next change network-wide.
  const keptDigest = (DIGEST_CALL_SENT_BYTES + DIGEST_CALL_ANSWER_BYTES) / (KEPT_SYNC_MS / 1000)
  const changes = o.hosts * (o.goneHostHour + o.returnedHostHour) / 3600
  const interval = keptInterval(o.hosts) / 1000
  const keptPerHost = changes > 0 ? 1 / (interval + Math.exp(-changes * interval) / changes) : 0
  const kept = o.hosts * keptPerHost
  const keptRecords = kept * o.copiesPerMessage * (KEPT_RECORD_BYTES + GOSSIP_OVERHEAD_BYTES)
  const keptIhave = ihaveOf(msgs + kept) - ihave
  return {
    digest,
    ping,
    records: records * perRecord,
    downs: downs * perDown,
    ihave,
    total,
    fixed: digest + ping,
    kept_digest: keptDigest,
    kept_records: keptRecords,
    kept_ihave: keptIhave,
    total_with_kept: total + keptDigest + keptRecords + keptIhave
  }
}
