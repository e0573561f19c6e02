// Prometheus metrics of a running host (DESIGN.md §8), at `GET /metrics`: the only file that
// imports prom-client. Every figure is read when Prometheus scrapes, from what the host's parts
// keep in memory (the daemon hands them in as plain functions: this room imports none of the
// live parts), so a scrape never walks the store or the tree per file, and sends no message:
//
//   darkfs_chunks{health}                       chunks by health, from the keeper's health book
//                                               (keeper/status.ts countKnown; no survey): redundant,
//                                               degraded, local-only, placing, unreachable, lost, unknown
//   darkfs_network_chunks{state}, darkfs_network_bytes{state}
//                                               the network totals `darkfs status` shows: the sum of
//                                               the keeper counts each member up signed and told
//                                               (keeper/kept.ts; no survey): redundant, degraded,
//                                               at-risk, unreachable, lost (bytes: their plaintext)
//   darkfs_network_members, darkfs_network_reporting_members
//                                               members up, and those of them whose counts are known
//   darkfs_network_counts_age_seconds           age of the oldest observation behind the sums
//   darkfs_stored_bytes, darkfs_store_free_bytes, darkfs_store_capacity_bytes, darkfs_store_full
//                                               block files held here (a running figure: data/store.ts
//                                               stored()); the disk under the store as last measured
//   darkfs_repair_queued_chunks, darkfs_repair_running, darkfs_placement_pending_chunks
//   darkfs_repair_passes_total, darkfs_repair_fragments_total, darkfs_repair_pushed_bytes_total,
//   darkfs_repair_fetched_bytes_total, darkfs_repair_failures_total       (since the host started)
//   darkfs_swarm_sent_bytes_total{peer_class}, darkfs_swarm_received_bytes_total{peer_class}
//                                               block exchange payload, by the class of the peer's
//                                               uplink: thin (below keeper's RELAY_BELOW_BYTES_PER_SECOND,
//                                               the uplinks that place through relays), fat, unknown
//   darkfs_protocol_sent_bytes_total{protocol}, darkfs_protocol_streams_total{protocol},
//   darkfs_wire_sent_bytes_total                what each libp2p protocol wrote, and what went into the
//                                               sockets (net/traffic.ts; bytes received are counted only
//                                               by the swarm: see there why)
//   darkfs_relay_chunks_total{role, result}     chunks placed through a relay (role "sent") or relayed
//                                               for others ("relayed"), ok or failed
//   darkfs_release_refused_blocks_total{reason} blocks a peer's release asked deleted that were kept
//                                               (keeper/release.ts refusals): not_put (the asker
//                                               never put it here), claimed (another writer did),
//                                               named (a retained version names it), promised
//   darkfs_chunk_reads_total{path}              erasure-coded chunks read whole here (data/blocks.ts
//                                               ReadCounters): data (its data fragments, no decode),
//                                               parity_here (decoded through a parity fragment stored
//                                               here), parity_fetched (through one from a peer: a data
//                                               fragment missing, or its request past its hedge time)
//   darkfs_chunk_cache_bytes,                   decoded chunks held in memory (data/cache.ts), and the
//   darkfs_chunk_cache_max_bytes                cache's bound (`--cache`)
//   darkfs_peers_connected, darkfs_peers_known, darkfs_peers_suspect, darkfs_peers_gone_total,
//   darkfs_offline
//   darkfs_oplog_ops                            ops in the op log (tree.size)
//   darkfs_ops_applied_total{origin}            ops applied here since start, local or remote
//   darkfs_merge_lag_seconds                    histogram, remote ops: from the op's stamp at its author
//                                               (HLC wall time) to its apply here. Gossip delay while
//                                               connected; after a reconnection, the time away
//   darkfs_fuse_requests_total{op, result}, darkfs_fuse_request_duration_seconds{op}
//   darkfs_conflicts_open                       live conflict siblings
//   darkfs_errors_total{source, kind}           FUSE errors by errno name, control API errors by
//                                               status; other code counts with error()
// and prom-client's default process and Node.js metrics (process_*, nodejs_*), under their own
// standard names. Names follow Prometheus's conventions (base units, `_total` counters) and pass
// `promtool check metrics` (test/cluster/metrics.test.ts).
import { constants } from 'node:os'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { CHUNK_STATES, KEPT_STATES, RELAY_BELOW_BYTES_PER_SECOND } from '../keeper/index.ts'
import type { ChunkState, KeptState, NetworkTotals, RepairProgress, RepairTotals } from '../keeper/index.ts'
import type { Route } from './route.ts'
import { jsonResponse } from './openapi.ts'
import { ref } from './schemas.ts'

/** What a scrape reads: plain functions over the running host's parts (wired by node/cli/daemon.ts). */
export interface MetricsComponents {
  /** Chunks by health from the health book (keeper Redundancy.known()). */
  chunks: () => Record<ChunkState, number>
  /** The network totals: the members' keeper counts summed (keeper KeptNotices.totals()). */
  network: () => NetworkTotals
  /** Bytes of blocks stored here (data/store.ts stored(); undefined before its tally). */
  stored: () => number | undefined
  /** The disk under the store as last measured (data/space.ts snapshot()). */
  space: () => { free: number, capacity: number, full: boolean }
  repair: () => { progress: RepairProgress, totals: RepairTotals }
  /** Chunks written here still to be placed. */
  pendingPlacements: () => number
  /** Bytes exchanged with each peer by the swarm since start (swarm.stats().peers). */
  swarm: () => { peers: Record<string, { sent: number, received: number }> }
  /** A peer's uplink in bytes/s, when known (net/uplink.ts UplinkBook). */
  uplink: (peer: string) => number | undefined
  /** Bytes sent per libp2p protocol and into the sockets (host.traffic()). */
  traffic: () => { wire: { sent: number }, protocols: Record<string, { sent: number, streams: number }> }
  /** Relayed placements (keeper/forward.ts stats()). */
  relays: () => { sent: number, failed: number, relayed: number, relayFailed: number }
  /** Blocks a peer's release asked deleted that were kept, by reason (keeper Release.refusals). Not given: none. */
  releaseRefusals?: () => { notPut: number, claimed: number, named: number, promised: number }
  /** What the read path did (data/blocks.ts ChunkService.readCounters()). Not given: nothing read. */
  reads?: () => { coded: number, rebuilt: number, parityFetched: number }
  /** The decoded-chunk cache: bytes held and its bound (data/blocks.ts ChunkService.cacheFigures()). Not given: none. */
  cache?: () => { bytes: number, maxBytes: number }
  peers: () => { connected: number, known: number, suspect: number }
  offline: () => boolean
  /** Ops in the op log. */
  ops: () => number
  /** Live conflict siblings. */
  conflicts: () => number
  /** The tree: its 'ops' events (OpsEventDetail: local, each op's hlc) feed the merge lag. */
  tree?: EventTarget
  /** The membership: its 'gone' events count peers gone. */
  membership?: EventTarget
}

/** Buckets of FUSE request latency, seconds: 100 µs to 30 s (the default request deadline). */
export const FUSE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
/** Buckets of merge lag, seconds: 10 ms (gossip on a LAN) to a day (a host back from a trip). */
export const MERGE_LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400]

/** Label values of darkfs_chunks (the keeper's states, as Prometheus label values). */
const HEALTH_LABEL: Record<ChunkState, string> = {
  redundant: 'redundant',
  degraded: 'degraded',
  localOnly: 'local-only',
  placing: 'placing',
  unreachable: 'unreachable',
  lost: 'lost',
  unknown: 'unknown'
}

/** Label values of darkfs_network_chunks and _bytes (keeper/kept.ts's states). */
const KEPT_LABEL: Record<KeptState, string> = {
  redundant: 'redundant',
  degraded: 'degraded',
  atRisk: 'at-risk',
  unreachable: 'unreachable',
  lost: 'lost'
}

/** errno number -> its name (EIO, ENOENT, ...), from node:os. */
const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(constants.errno).map(([name, n]) => [n, name]))

/** The class of a peer by its uplink: thin ones place through relays (keeper/network.ts). */
export function peerClass (uplinkBytesPerSecond: number | undefined): 'thin' | 'fat' | 'unknown' {
  if (uplinkBytesPerSecond === undefined) return 'unknown'
  return uplinkBytesPerSecond < RELAY_BELOW_BYTES_PER_SECOND ? 'thin' : 'fat'
}

/**
 * The process's metrics (prom-client's defaults: CPU, memory, event loop lag, GC, handles), in
 * one registry per process: they describe the process, and a process that runs several hosts
 * (the in-process test clusters) starts prom-client's observers once.
 */
let processRegistry: Registry | undefined
function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
    // gauges named like counters (promtool warns): their labelled twins (nodejs_active_handles{type}, ...) say it all
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) processRegistry.removeSingleMetric(name)
  }
  return processRegistry
}

export interface Metrics {
  readonly registry: Registry
  /** The text a scrape answers (Prometheus text format), and its content type. */
  render: () => Promise<{ contentType: string, text: string }>
  /** A FUSE request was answered (fuse/ MountOptions.onOp). */
  fuseOp: (op: string, seconds: number, errno: number) => void
  /** Count one error of `kind` from `source` (e.g. 'fuse', 'EIO'; 'api', '500'). */
  error: (source: string, kind: string) => void
  /** Listen to the tree and the membership (idempotent). */
  start: () => void
  stop: () => void
}

export function createMetrics (c: MetricsComponents): Metrics {
  const registry = new Registry()
  const r = [registry]

  new Gauge({
    name: 'darkfs_chunks',
    help: 'Chunks by health, as this host last saw them (no survey).',
    labelNames: ['health'],
    registers: r,
    collect () {
      const counts = c.chunks()
      for (const s of CHUNK_STATES) this.set({ health: HEALTH_LABEL[s] }, counts[s])
    }
  })
  // the network totals, summed once per scrape (render()) for the five gauges that read them
  let scraped: NetworkTotals | undefined
  const totals = (): NetworkTotals => scraped ?? c.network()
  new Gauge({
    name: 'darkfs_network_chunks',
    help: 'Chunks of the network by state: the sum of the counts each member up signed for the chunks it is the keeper of (no survey).',
    labelNames: ['state'],
    registers: r,
    collect () { const n = totals(); for (const s of KEPT_STATES) this.set({ state: KEPT_LABEL[s] }, n.chunks[s]) }
  })
  new Gauge({
    name: 'darkfs_network_bytes',
    help: 'Plaintext bytes of the network\'s chunks by state, summed as darkfs_network_chunks.',
    labelNames: ['state'],
    registers: r,
    collect () { const n = totals(); for (const s of KEPT_STATES) this.set({ state: KEPT_LABEL[s] }, n.bytes[s]) }
  })
  new Gauge({ name: 'darkfs_network_members', help: 'Members up now, whose counts the network totals sum.', registers: r, collect () { this.set(totals().members) } })
  new Gauge({ name: 'darkfs_network_reporting_members', help: 'Members up now whose keeper counts this host holds (itself included).', registers: r, collect () { this.set(totals().reporting) } })
  new Gauge({
    name: 'darkfs_network_counts_age_seconds',
    help: 'Age of the oldest observation behind the network totals (as each member told it, plus since it was heard).',
    registers: r,
    collect () { const a = totals().ageMs; if (a === null) this.reset(); else this.set(a / 1000) }
  })
  new Gauge({
    name: 'darkfs_stored_bytes',
    help: 'Bytes of blocks (fragments, chunks, manifests) stored on this host.',
    registers: r,
    collect () { const b = c.stored(); if (b !== undefined) this.set(b) }
  })
  new Gauge({ name: 'darkfs_store_free_bytes', help: 'Free bytes of the disk under the store, as last measured.', registers: r, collect () { this.set(c.space().free) } })
  new Gauge({ name: 'darkfs_store_capacity_bytes', help: 'Size in bytes of the disk under the store.', registers: r, collect () { this.set(c.space().capacity) } })
  new Gauge({ name: 'darkfs_store_full', help: 'Whether the disk under the store counts as full (1) and new blocks are refused.', registers: r, collect () { this.set(c.space().full ? 1 : 0) } })

  new Gauge({
    name: 'darkfs_repair_queued_chunks',
    help: 'Chunks the running repair pass has still to check (0 between passes).',
    registers: r,
    collect () { const p = c.repair().progress; this.set(p.running ? Math.max(0, p.chunks - p.checked) : 0) }
  })
  new Gauge({ name: 'darkfs_repair_running', help: 'Whether a repair pass is running (1) or not (0).', registers: r, collect () { this.set(c.repair().progress.running ? 1 : 0) } })
  new Gauge({ name: 'darkfs_placement_pending_chunks', help: 'Chunks written here whose placement on peers has not finished.', registers: r, collect () { this.set(c.pendingPlacements()) } })
  const total = (name: string, help: string, value: () => number): void => {
    new Counter({ name, help, registers: r, collect () { this.reset(); this.inc(value()) } })
  }
  total('darkfs_repair_passes_total', 'Repair passes finished since the host started.', () => c.repair().totals.passes)
  total('darkfs_repair_fragments_total', 'Fragments repair delivered where they were missing.', () => c.repair().totals.fragmentsRepaired)
  total('darkfs_repair_pushed_bytes_total', 'Bytes of fragments repair delivered to peers.', () => c.repair().totals.bytesPushed)
  total('darkfs_repair_fetched_bytes_total', 'Bytes repair fetched from peers to rebuild fragments.', () => c.repair().totals.bytesFetched)
  total('darkfs_repair_failures_total', 'Chunks a repair pass could not repair (too few fragments reachable, target unreachable).', () => c.repair().totals.failed)

  // swarm bytes by peer class: a peer's class can change (its uplink becomes known), so each
  // scrape adds what moved since the last one to the peer's class now; the counters never go down
  const swarmSeen = new Map<string, { sent: number, received: number }>()
  const swarmByClass = { sent: new Map<string, number>(), received: new Map<string, number>() }
  const swarmTally = (): void => {
    for (const [peer, now] of Object.entries(c.swarm().peers)) {
      const before = swarmSeen.get(peer) ?? { sent: 0, received: 0 }
      const cls = peerClass(c.uplink(peer))
      for (const dir of ['sent', 'received'] as const) {
        // a peer the swarm forgot and met again starts from 0
        const delta = now[dir] >= before[dir] ? now[dir] - before[dir] : now[dir]
        swarmByClass[dir].set(cls, (swarmByClass[dir].get(cls) ?? 0) + delta)
      }
      swarmSeen.set(peer, { sent: now.sent, received: now.received })
    }
  }
  for (const dir of ['sent', 'received'] as const) {
    new Counter({
      name: `darkfs_swarm_${dir}_bytes_total`,
      help: `Block bytes the swarm ${dir} by the uplink class of the peer (thin: places through relays; fat; unknown).`,
      labelNames: ['peer_class'],
      registers: r,
      collect () {
        swarmTally()
        this.reset()
        for (const cls of ['thin', 'fat', 'unknown']) this.inc({ peer_class: cls }, swarmByClass[dir].get(cls) ?? 0)
      }
    })
  }
  new Counter({
    name: 'darkfs_protocol_sent_bytes_total',
    help: 'Bytes each libp2p protocol wrote on its streams (payload before stream multiplexing and encryption).',
    labelNames: ['protocol'],
    registers: r,
    collect () { this.reset(); for (const [p, t] of Object.entries(c.traffic().protocols)) this.inc({ protocol: p }, t.sent) }
  })
  new Counter({
    name: 'darkfs_protocol_streams_total',
    help: 'Streams opened or accepted per libp2p protocol.',
    labelNames: ['protocol'],
    registers: r,
    collect () { this.reset(); for (const [p, t] of Object.entries(c.traffic().protocols)) this.inc({ protocol: p }, t.streams) }
  })
  total('darkfs_wire_sent_bytes_total', 'Bytes written into the TCP sockets of every connection (framing and encryption included).', () => c.traffic().wire.sent)
  new Counter({
    name: 'darkfs_relay_chunks_total',
    help: 'Chunks placed through a relay (role sent) and relayed for other hosts (role relayed), by result.',
    labelNames: ['role', 'result'],
    registers: r,
    collect () {
      const s = c.relays()
      this.reset()
      this.inc({ role: 'sent', result: 'ok' }, s.sent)
      this.inc({ role: 'sent', result: 'failed' }, s.failed)
      this.inc({ role: 'relayed', result: 'ok' }, s.relayed)
      this.inc({ role: 'relayed', result: 'failed' }, s.relayFailed)
    }
  })

  new Counter({
    name: 'darkfs_release_refused_blocks_total',
    help: 'Blocks a peer asked this host to release that it kept: not_put (the asker never put it here), claimed (another writer put it), named (a retained version names it), promised (to another peer).',
    labelNames: ['reason'],
    registers: r,
    collect () {
      const s = c.releaseRefusals?.() ?? { notPut: 0, claimed: 0, named: 0, promised: 0 }
      this.reset()
      this.inc({ reason: 'not_put' }, s.notPut)
      this.inc({ reason: 'claimed' }, s.claimed)
      this.inc({ reason: 'named' }, s.named)
      this.inc({ reason: 'promised' }, s.promised)
    }
  })

  new Counter({
    name: 'darkfs_chunk_reads_total',
    help: 'Erasure-coded chunks read whole by this host: data (from its data fragments, no decode), parity_here (decoded through a parity fragment stored here), parity_fetched (decoded through a parity fragment from a peer: a data fragment missing or slow).',
    labelNames: ['path'],
    registers: r,
    collect () {
      const s = c.reads?.() ?? { coded: 0, rebuilt: 0, parityFetched: 0 }
      this.reset()
      this.inc({ path: 'data' }, Math.max(0, s.coded - s.rebuilt))
      this.inc({ path: 'parity_here' }, Math.max(0, s.rebuilt - s.parityFetched))
      this.inc({ path: 'parity_fetched' }, s.parityFetched)
    }
  })

  new Gauge({ name: 'darkfs_chunk_cache_bytes', help: 'Bytes of decoded chunks held in memory (the chunk cache).', registers: r, collect () { this.set(c.cache?.().bytes ?? 0) } })
  new Gauge({ name: 'darkfs_chunk_cache_max_bytes', help: 'Bound of the chunk cache in bytes (--cache).', registers: r, collect () { this.set(c.cache?.().maxBytes ?? 0) } })
  new Gauge({ name: 'darkfs_peers_connected', help: 'Peers connected now.', registers: r, collect () { this.set(c.peers().connected) } })
  new Gauge({ name: 'darkfs_peers_known', help: 'Members known: connected, and away for less than the failure timeout.', registers: r, collect () { this.set(c.peers().known) } })
  new Gauge({ name: 'darkfs_peers_suspect', help: 'Members away for less than the failure timeout.', registers: r, collect () { this.set(c.peers().suspect) } })
  const gone = new Counter({ name: 'darkfs_peers_gone_total', help: 'Peers declared gone (failure timeout or leave) since the host started.', registers: r })
  new Gauge({ name: 'darkfs_offline', help: 'Whether this host has lost its peers (1) and keeps writes local-only.', registers: r, collect () { this.set(c.offline() ? 1 : 0) } })

  new Gauge({ name: 'darkfs_oplog_ops', help: 'Ops in the op log (the replicated metadata).', registers: r, collect () { this.set(c.ops()) } })
  const applied = new Counter({ name: 'darkfs_ops_applied_total', help: 'Ops applied here since the host started, by origin (local or remote).', labelNames: ['origin'], registers: r })
  applied.inc({ origin: 'local' }, 0)
  applied.inc({ origin: 'remote' }, 0)
  const lag = new Histogram({
    name: 'darkfs_merge_lag_seconds',
    help: 'Seconds from a remote op\'s stamp at its author to its apply here (gossip delay; time away after a reconnection).',
    buckets: MERGE_LAG_BUCKETS,
    registers: r
  })
  new Gauge({ name: 'darkfs_conflicts_open', help: 'Live conflict siblings (NAME.conflict-...) in the tree.', registers: r, collect () { this.set(c.conflicts()) } })

  const fuseRequests = new Counter({ name: 'darkfs_fuse_requests_total', help: 'FUSE requests answered, by operation and result (ok or error).', labelNames: ['op', 'result'], registers: r })
  const fuseSeconds = new Histogram({ name: 'darkfs_fuse_request_duration_seconds', help: 'Seconds from a FUSE request\'s arrival to its answer, by operation.', labelNames: ['op'], buckets: FUSE_BUCKETS, registers: r })
  const errors = new Counter({ name: 'darkfs_errors_total', help: 'Errors by source (fuse: by errno name; api: by HTTP status) and kind.', labelNames: ['source', 'kind'], registers: r })

  const onOps = (e: Event): void => {
    const { local, ops } = (e as CustomEvent<{ local: boolean, ops: ReadonlyArray<{ hlc?: readonly [number, number] }> }>).detail
    applied.inc({ origin: local ? 'local' : 'remote' }, ops.length)
    if (local) return
    const now = Date.now()
    for (let i = 0; i < ops.length; i++) {
      const hlc = ops[i].hlc
      if (hlc !== undefined) lag.observe(Math.max(0, now - hlc[0]) / 1000)
    }
  }
  const onGone = (): void => { gone.inc() }
  let listening = false

  return {
    registry,
    // the two registries' texts, one after the other (no name is in both)
    render: async () => {
      scraped = c.network()
      try {
        return { contentType: registry.contentType, text: await processMetrics().metrics() + await registry.metrics() }
      } finally {
        scraped = undefined
      }
    },
    fuseOp: (op, seconds, errno) => {
      fuseRequests.inc({ op, result: errno === 0 ? 'ok' : 'error' })
      fuseSeconds.observe({ op }, seconds)
      if (errno !== 0) errors.inc({ source: 'fuse', kind: ERRNO_NAMES[errno] ?? `errno${errno}` })
    },
    error: (source, kind) => { errors.inc({ source, kind }) },
    start: () => {
      if (listening) return
      listening = true
      c.tree?.addEventListener('ops', onOps)
      c.membership?.addEventListener('gone', onGone)
    },
    stop: () => {
      if (!listening) return
      listening = false
      c.tree?.removeEventListener('ops', onOps)
      c.membership?.removeEventListener('gone', onGone)
    }
  }
}

/** `GET /metrics`: the Prometheus text format. */
export function metricsRoutes (metrics: Pick<Metrics, 'render'>): Route[] {
  return [{
    method: 'GET',
    path: '/metrics',
    operation: {
      operationId: 'getMetrics',
      summary: 'Prometheus metrics of this host',
      description: 'The host\'s metrics in the Prometheus text exposition format (version 0.0.4): chunks by health, the network totals (the members\' keeper counts), bytes stored and free, repair, swarm traffic by peer class and protocol, peers, op log and merge lag, FUSE requests and latency, conflicts, errors, and the process. Read from memory: a scrape sends no message and walks neither the store nor the tree.',
      tags: ['metrics'],
      responses: {
        200: {
          description: 'The metrics.',
          content: { 'text/plain': { schema: { type: 'string' } } }
        },
        500: jsonResponse('The metrics could not be collected.', ref('Error'))
      }
    },
    handle: async (_req, res) => {
      const { contentType, text } = await metrics.render()
      res.writeHead(200, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(text)) })
      res.end(text)
    }
  }]
}
