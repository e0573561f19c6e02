// The composition root of a running host (`darkfs up`): build the parts in order, close them in
// reverse order under one shutdown. DESIGN.md §1.
import type { CID } from 'multiformats/cid'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { ChunkService, chunkBytes, defaultCacheBytes, LocalLeaves, Space, Staging, Store, rememberingLeaves } from '../data/index.ts'
import type { Codec, SpaceInit } from '../data/index.ts'
import { loadConfig, saveConfig, NETWORK_KEY_FILE } from './config.ts'
import { ApiServer, resourceRoutes, conflictRoutes, dashboardRoutes, apiToken, parseApiAddress } from '../api/index.ts'
import type { Route } from '../api/index.ts'
import { VERSION } from './version.ts'
import { CONTROL_SOCKET } from './client.ts'
import { createHost, FeatureBook, FEATURES, FEATURE_CLAY, FEATURE_MEMBER_PULL, MEMBER_PULL_MIN_MEMBERS, FEATURE_HOLD, FEATURE_KEPT_TREE, FEATURE_MULTIEXT, FEATURE_ORIGINS, FEATURE_PULL, OpHold, loadOrCreateIdentity, readNetworkKey, signerFor, verify, createSync, Presence, Membership, MemberTable, MAX_CAPACITY_CLASS, keepMembersSince, loadMembersSince, SpaceNotices, startMemberService, startUplinks, uploadCap, probePeer } from '../net/index.ts'
import type { Host, MemberService, MembershipInit, Sync } from '../net/index.ts'
import { Tree, treeDigest } from '../tree/index.ts'
import { Volume, lockDataDir, PID_FILE, LOCK_GRACE_MS } from '../index.ts'
import { createSwarm } from '../../swarm/index.ts'
import type { Swarm } from '../../swarm/index.ts'
import { ChunkNetwork, CUSTODY_PROMISE_MS, capacityClass, networkCapacity, PLACE_RETRY_INTERVAL_MS, throughRelays, PendingPlacements, placementPolicy, Custody, startRedundancy, Pins, guardStore, pinnersOf, createForwarder, Release, releasingSink, saveReleaseRecords, ReleaseOpening, DEFAULT_RETENTION_MS, repairRate, KeptNotices, KEPT_GOSSIP_TAG, KEPT_SUM_GOSSIP_TAG, keptTreeMode, sendKeptSum, startKeptService } from '../keeper/index.ts'
import type { Redundancy, RedundancyOptions, Forwarder, HandoverEvent, PlacementPolicy, DataFragments, KeptService } from '../keeper/index.ts'
import { EventLog, EventHook, eventRoutes, feedEvents } from '../api/index.ts'
import { logger } from '../log.ts'
import { createMetrics, metricsRoutes } from '../api/index.ts'
import type { Metrics } from '../api/index.ts'
import { inviteRoutes } from '../api/index.ts'

const log = logger('cli:daemon')

export { PID_FILE, LOCK_GRACE_MS }

export interface DaemonOptions {
  dir: string
  listen?: string[]
  join?: string[]
  announce?: string[]
  allowFrom?: string[]
  /** Connections kept open once settled (`--max-connections`, default 64; net/host.ts). */
  maxConnections?: number
  /**
   * The keeper counts are summed along a tree in networks of more members than this (keeper/kept.ts
   * keptTreeMode; default FULL_MESH_PEERS): tests of a few tens of hosts set it lower.
   */
  keptTreeMembers?: number
  /**
   * Member messages spread by sync rounds in tables of at least this many members (net/members.ts
   * MEMBER_PULL_MIN_MEMBERS, the default; no flag): tests of a dozen hosts set it lower.
   */
  memberPullMembers?: number
  /** The host's first dial backoff (net/host.ts HostInit.dialBackoffMs; no flag: tests). */
  dialBackoffMs?: number
  /** Data upload/download caps in bytes/s (swarm traffic; DHT and control are apart). */
  maxUpload?: number
  maxDownload?: number
  /** This host's uplink in bytes/s, told to peers so fat uplinks take the forwarding (default: measured). */
  uplink?: number
  /** Lost hosts tolerated by new chunks (default 2). */
  redundancy?: number
  /** The bound on data fragments (k) of new chunks, or 'auto' (`--data-fragments`; default 4, keeper/placement.ts). */
  dataFragments?: DataFragments
  /** Repair, failure detection, scrub, GC and retention settings (keeper/redundancy.ts, net/failure.ts). */
  keep?: RedundancyOptions & MembershipInit
  /** When the disk under the store counts as full (node/space.ts: reserve, margin, interval). */
  space?: SpaceInit
  /**
   * The disk size in bytes this host announces for placement: its capacity class, signed into
   * its member record, weighs how many fragments it is given (keeper/balance.ts). Default: the
   * size of the filesystem under the store. A host sharing part of a disk (and tests) say less.
   */
  capacityBytes?: number
  /** How long a promise to keep a block holds (keeper/custody.ts CUSTODY_PROMISE_MS; tests shorten it). */
  custodyPromiseMs?: number
  /** How long after a released block arrives relayed its second look runs (release.ts RELAYED_RECHECK_MS; tests shorten it). */
  releaseRecheckMs?: number
  /** Tests: awaited just before the release is made (a put, a promise landing during the start: ReleaseOpening). */
  beforeRelease?: () => Promise<void>
  /** Bytes of fragments a write may hold here ahead of their placement (data/blocks.ts PLACE_WINDOW_BYTES). */
  placeWindowBytes?: number
  /**
   * The erasure code of new chunks (`--codec rs|clay`, default rs; data/blocks.ts Codec): with
   * clay, chunks are Clay-coded (less traffic per repair) once every member takes them (FEATURE_CLAY).
   */
  codec?: Codec
  /** Bound of the decoded-chunk cache in bytes (`--cache`, in MiB; default data/cache.ts defaultCacheBytes: a share of the RAM). */
  cacheBytes?: number
  /** Serve the control API on TCP too (`--api HOST:PORT`; loopback, private or VPN only), with the data dir's token. */
  api?: string
  /** Requests per second per TCP client of the API (`--api-rate`; node/api/server.ts). */
  apiRate?: number
  /** More routes of the control API (metrics, events, the dashboard, ...), beside the resources. */
  routes?: Route[]
  /** A shell command run per event, the event as JSON on its stdin (`up --on-event`, api/hook.ts). */
  onEvent?: string
  /**
   * The features this host announces (net/features.ts; default FEATURES, all this version
   * understands). Tests of rolling upgrades give fewer to play a host of an older version.
   */
  features?: readonly string[]
}

export interface Daemon {
  readonly volume: Volume
  readonly host: Host
  readonly tree: Tree
  readonly swarm: Swarm
  readonly sync: Sync
  readonly network: ChunkNetwork
  /** This host's promises to keep blocks (keeper/custody.ts). */
  readonly custody: Custody
  /** Deletes what abandoned writes left here, when asked (keeper/release.ts). */
  readonly release: Release
  readonly store: Store
  readonly pins: Pins
  /** Relays chunks for thin-uplink writers and places this host's own through relays (node/forward.ts). */
  readonly forwarder: Forwarder
  readonly presence: Presence
  /** Free space of the store's disk: full hosts refuse new blocks and leave placement (node/space.ts). */
  readonly space: Space
  /** FULL/ROOM notices and disk figures to and from the peers (net/space-notice.ts). */
  readonly spaceNotices: SpaceNotices
  /** This host's keeper counts, told on change, and every member's heard (keeper/kept.ts): status's network totals. */
  readonly kept: KeptNotices
  /** Redundancy, the k/m rule and the members placement ranks (shared by network, survey, repair). */
  readonly policy: PlacementPolicy
  /** Keeps the redundancy: membership, repair, scrub, GC, leave (node/redundancy.ts). */
  readonly keep: Redundancy
  /** Every member of the network, signed by itself (net/members.ts). */
  readonly members: MemberTable
  /** How the member table spreads (net/member-service.ts): its publish() is what a record or DOWN notice goes out by. */
  readonly memberService: MemberService
  /** What this host knows of its peers' features (net/features.ts): the gate of multi-extent ops. */
  readonly features: FeatureBook
  /** The join addresses this host dials: `--join` and the config's, once each. */
  readonly join: string[]
  /** The control API server (unix socket, and TCP with `api`). */
  readonly api: ApiServer
  /** What happens to this host and its network (GET /v1/events, api/events.ts). */
  readonly events: EventLog
  /** Prometheus metrics (node/api/metrics.ts), served at GET /metrics; the mount reports to it. */
  readonly metrics: Metrics
  close: () => Promise<void>
}

export async function startDaemon (opts: DaemonOptions): Promise<Daemon> {
  const { dir } = opts
  // a bad --api address is refused before anything starts
  const apiAt = opts.api === undefined ? undefined : parseApiAddress(opts.api)
  const config = await loadConfig(dir)
  await mkdir(dir, { recursive: true })
  const unlock = await lockDataDir(dir)
  const closers: Array<() => Promise<void>> = [unlock]
  const close = async (): Promise<void> => {
    while (closers.length > 0) {
      const c = closers.pop()!
      // one part failing to close does not keep the others open
      await c().catch((err: Error) => { log.error('while closing %s: %s', dir, err.message) })
    }
  }
  try {
    const privateKey = await loadOrCreateIdentity(dir)
    const networkKey = await readNetworkKey(join(dir, NETWORK_KEY_FILE))
    // the space gate watches the disk under the store, and the store asks it before each block
    const storeDir = join(dir, 'store')
    await mkdir(storeDir, { recursive: true })
    const space = new Space(storeDir, opts.space)
    await space.start()
    closers.push(async () => { space.stop() })
    const store = await Store.open(storeDir, { space })
    closers.push(async () => { await store.close() })
    // one walk now, before anything writes: metrics read the running figure from then on
    await store.tally()
    await mkdir(join(dir, 'tree'), { recursive: true })
    const tree = await Tree.open({ dir: join(dir, 'tree'), signer: signerFor(privateKey), verify })
    closers.push(async () => { await tree.close() })

    const listen = opts.listen !== undefined && opts.listen.length > 0 ? opts.listen : config.listen
    const join_ = [...new Set([...(opts.join ?? []), ...config.join])]
    const host = await createHost({ privateKey, networkKey, listen, join: join_, announce: opts.announce, allowFrom: opts.allowFrom, maxConnections: opts.maxConnections, features: opts.features, dialBackoffMs: opts.dialBackoffMs })
    closers.push(async () => { await host.stop() })

    // no provider records for the blocks stored here: every host holds the member table, and
    // a chunk's placement rule over it names each fragment's holder (keeper/network.ts
    // reachable()); the DHT serves routing (closest peers, the neighbourhood) only
    const uplinks = await startUplinks(host, opts.uplink)
    closers.push(uplinks.stop)
    const upload = uploadCap(opts.maxUpload, opts.uplink)
    // the chunks this host is still placing: kept by the network, read by the swarm (pending.ts)
    const relayed = throughRelays(upload)
    const pending = new PendingPlacements({ relayed })
    // written fragments wait in memory until placed: placement pushes them and relays pull them
    // without reading them back from disk (data/staging.ts)
    const staging = new Staging()
    const localLeaves = new LocalLeaves(store, { staged: cid => staging.get(cid) })
    // what this host stores from peers (pushed, pulled by pins, copied or rebuilt by repair)
    // keeps its leaf hashes: a peer's range want of it is then a slice of its file
    const keeping = rememberingLeaves(store, localLeaves)
    // a block of an abandoned write that lands after its release goes again (release.ts)
    let release: Release | undefined
    // who put each block, kept at a clean stop for the next start (keeper/release-records.ts):
    // this closes after the swarm, custody, the release service, GC, pins and repair (closed
    // first, made later), when no record changes any more; `release` is set only once the
    // records the last stop kept were restored into it
    closers.push(async () => { if (release !== undefined) await saveReleaseRecords(dir, release.records(), host.peerId) })
    // those records are taken now, before any put can land (a crash after this re-reads a file
    // no put came after), and the puts, promises and removals told before the release is made
    // (below: it needs the volume, custody, pins) are kept and told to it after the records
    // (review37b: restored over them, they let the last stop's putter delete a block another
    // writer pushed or was promised during the start)
    // one monotonic clock for both (a push told to the opening is stamped on it, and the
    // release times its windows from that stamp: ReleaseComponents `clock`)
    const releaseClock = (): number => performance.now()
    const opening = new ReleaseOpening({ clock: releaseClock })
    await opening.take(dir, host.peerId)
    // a start failing before the release is made (bad options, a swarm or sync start error, a
    // stop meanwhile) writes them back if nothing was told since (review37f: they were lost);
    // runs once the swarm, custody and the rest made after it are closed
    closers.push(async () => {
      const back = opening.untold
      if (release === undefined && back.length > 0) await saveReleaseRecords(dir, back, host.peerId)
    })
    // a block that leaves the store (GC, a handover, a pin's end, a local delete, a quarantine)
    // takes its record of who put it along: a later put of the same bytes starts afresh (review36c)
    store.onGone = cid => { opening.teller().gone(cid) }
    // what peers push here, kept with its leaf hashes (`keeping`), told to the release as put by
    // its writer (releasingSink). `check`: a pushed block's sha256 and its leaf hashes in one
    // threadpool job, off the event loop (LocalLeaves.check), the leaves then kept by the put of
    // those bytes without hashing them again
    const sink = { ...releasingSink(keeping, () => opening.teller()), check: async (cid: CID, bytes: Uint8Array) => await localLeaves.check(cid, bytes) }
    // whether a want of `cid` from `peer` is served at all, held or not: every refusal goes here,
    // where the swarm's has() and range() below both ask (a range want is answered from range()
    // alone, rangeDeclines: a refusal only has() made would not reach it). Background wants
    // (repair, pins' catch-up) are refused what this host is still placing through relays: the
    // relays deliver it to those hosts (pending.ts); a range want is a read's, never background
    const serves = (cid: CID, _peer: string | undefined, o?: { background?: boolean }): boolean =>
      !(o?.background === true && pending.withholdsBackground(cid))
    const swarm = createSwarm({ maxUploadBytesPerSecond: upload, maxDownloadBytesPerSecond: opts.maxDownload, uplink: uplinks.book.rates })({
      peerId: host.peerId,
      handle: async (protocol, handler, o) => {
        await host.handle(protocol, (stream, peer) => { handler(stream, { remotePeer: { toString: () => peer } }) }, o)
      },
      unhandle: async protocol => { await host.unhandle(protocol) },
      dialProtocol: async (peer, protocol, o) => await host.newStream(peer, protocol, o),
      hangUp: async peer => { await host.hangUp(peer) },
      // a pushed fragment's frame (most arrive in several socket reads) joined into memory whose
      // pages are faulted in by one call, not one fault per 4 KiB under the copy (seqwrite on six
      // hosts: the receivers' frame joins were ~4% of the CPU, most of it page faults)
      frameBytes: chunkBytes,
      blocks: {
        // a staged fragment may be on no disk here (the parity of a chunk written here,
        // ChunkService.storeChunk): served to the wants of it (relays pull it, placement's
        // targets), but a have-query (a keeper's survey, a placement's count of holders) is
        // answered from the store alone: it counts the answer as this host keeping the block,
        // and staged parity is gone with a restart (the pending list too, pending.ts)
        has: async (cid, peer, o) => serves(cid, peer, o) &&
          ((o?.haveOnly !== true && staging.has(cid)) || await store.has(cid)),
        // a fragment still waiting for its placement is served from memory (relays pull it)
        get: async cid => staging.get(cid) ?? await store.get(cid, { size: localLeaves.length(cid) }),
        // (from disk, one whose leaf hashes are kept is read at its known length, in one job:
        // LocalLeaves.length). Both check what they give: staged fragments were hashed by the
        // writer's encode, and Store.get hashes what it reads (the swarm does not hash them again)
        verifies: true,
        // leaves of a fragment with their Merkle proof, for a reader's small read (range wants):
        // read alone from disk once this host has the fragment's leaf hashes (it wrote the
        // fragment, or read it whole once), and the proof built from them (data/leaves.ts)
        range: async (cid, first, end, o) => serves(cid, o?.peer) ? await localLeaves.proof(cid, first, end) : undefined,
        // range() declines what has() would: serves() above, and proof() answers undefined for a
        // fragment neither staged nor in the store (kept leaf hashes alone serve nothing: LocalLeaves
        // drops them when the store no longer gives the fragment), so a range want is looked up once
        rangeDeclines: true
      },
      sink
    })
    await swarm.start()
    closers.push(async () => { await swarm.stop() })
    const forwarder = createForwarder({ host, swarm, sink, uplinks: uplinks.book })
    await forwarder.start()
    closers.push(async () => { await forwarder.stop() })
    // the member table (issue 14): every member, signed by itself, spread by gossip; at scale only
    // a member's XOR neighbours watch it and declare it down (members.ts). Its gossip tag is
    // taken before the op handler starts (and given up after it stops): no member message is
    // ever handed to the op handler, which would blame its forwarder
    // its capacity class goes into every record it signs: the weight balanced placement gives it
    // on every host alike (keeper/placement.ts); from the filesystem's size as last measured,
    // which space.start() did above (none until a measure: it weighs as the median meanwhile)
    if (opts.capacityBytes !== undefined && !(Number.isSafeInteger(opts.capacityBytes) && opts.capacityBytes > 0)) {
      throw new RangeError(`capacityBytes: a disk size in bytes, got ${String(opts.capacityBytes)}`)
    }
    const capacityClassNow = (): number | undefined => {
      const total = opts.capacityBytes ?? space.snapshot().capacity
      return total > 0 ? Math.min(capacityClass(total), MAX_CAPACITY_CLASS) : undefined
    }
    // the features are signed into the record (and go on identify, host.ts): hosts of the
    // previous version decode the field (hosts older than that refuse such a record: net/members.ts
    // header); with them every host knows whether every member takes member sync rounds
    const ownFeatures = [...new Set(opts.features ?? FEATURES)].sort()
    const members = new MemberTable({ self: host.peerId, signer: signerFor(privateKey), verify, capacityClass: capacityClassNow, features: () => ownFeatures })
    // when each member was first taken here, kept across restarts: its standing, the depth of the
    // shared call budget's reserve its calls may take (net/members-since.ts, member-gate.ts)
    await loadMembersSince(dir, members)
    const membersSince = keepMembersSince(dir, members)
    closers.push(membersSince.stop)
    const features = new FeatureBook({
      self: host.peerId,
      own: opts.features,
      members: () => members.members(),
      connected: () => host.peers().map(p => p.id),
      recordFeatures: peer => members.features(peer),
      identifyFeatures: peer => host.features(peer),
      // a host of a network knows every member only while online and once it pulled a table
      known: () => !presence.belongs() || (!presence.offline() && memberService.pulled())
    })
    // each member table pulled from a peer is followed by its table of keeper counts (keeper/kept-service.ts; started below)
    let keptService: KeptService | undefined
    const pullKept = (peer: string): void => {
      keptService?.pull(peer).catch((err: unknown) => { log('keeper counts of %s not pulled: %e', peer, err) })
    }
    // member messages spread by sync rounds in a network of MEMBER_PULL_MIN_MEMBERS members or
    // more, beyond the full mesh, once every member takes them (net/members.ts); on gossip until
    // then (and until this host knows its members: `known` above, set up below), and in a
    // smaller network, as before (gossip costs little there, and spreads at once)
    let membersKnowable = false
    const large = (): boolean => members.size >= (opts.memberPullMembers ?? MEMBER_PULL_MIN_MEMBERS)
    const memberService: MemberService = await startMemberService(host, members, {
      onPulled: pullKept,
      syncs: peer => large() && features.supports(host.peerId, FEATURE_MEMBER_PULL) && features.supports(peer, FEATURE_MEMBER_PULL),
      gossips: () => !membersKnowable || !large() || !host.beyondFullMesh() || !features.supportedByAll(FEATURE_MEMBER_PULL)
    })
    closers.push(async () => { await memberService.stop() })
    const sync = createSync()({ host, tree })
    await sync.start()
    closers.push(async () => { await sync.stop() })
    // offline mode (DESIGN.md §6): chunks written alone stay pending
    const presence = new Presence({ peers: () => host.peers(), events: host as any }, { dir, join: join_ })
    await presence.start()
    closers.push(async () => { presence.stop() })
    membersKnowable = true
    // membership with failure detection; the one placement policy the network, the survey and
    // the repairer share (placement.ts)
    const membership = new Membership(host, {
      failureTimeoutMs: opts.keep?.failureTimeoutMs,
      repairDelayMs: opts.keep?.repairDelayMs,
      table: members,
      publish: async msg => await memberService.publish(msg),
      // a member this host is not connected to answers a dial to an address it signed; the
      // connection the probe opened is closed once it answered, unless the host keeps it (a
      // neighbour's, or one the watch relies on: failure.ts probePeer())
      probe: async peer => {
        const addrs = (members.record(peer)?.addrs ?? []).map(addr => addr.includes('/p2p/') ? addr : `${addr}/p2p/${peer}`)
        return await probePeer(host, peer, addrs, p => membership.watching().has(p), {
          onFail: (addr, err) => { log('probe of %s at %s: %s', peer, addr, err.message) },
          log: msg => { log('%s', msg) }
        })
      }
    })
    await membership.start()
    closers.push(async () => { await membership.stop() })
    host.keepFirst(() => membership.watching())
    host.declaredDown(peer => membership.down(peer))
    const policy = placementPolicy({ members: () => membership.members(), capacityClass: peer => members.capacityClass(peer) }, { redundancy: opts.redundancy, dataFragments: opts.dataFragments })

    // asks the holders of an abandoned write's fragments to delete them (release.ts); built
    // below, once the Volume and custody it consults are
    // the chunk service is built below, on this network: its open files' spilled chunks (aside)
    // keep their fragments here against a placement of the same bytes handing them over
    let aside: ChunkService['aside'] | undefined
    const network = new ChunkNetwork({
      needed: f => aside?.hasFragment(f) === true,
      release: {
        ask: async (peer, cids, o) => await release?.ask(peer, cids, o) ?? new Set(),
        mayDelete: cid => release?.mayDelete(cid) ?? false,
        // (built before any write: none before it means no tree to reference anything)
        referenced: async (cids, o) => await release?.referenced(cids, o) ?? new Set(cids.map(c => c.toString()))
      },
      host,
      swarm,
      store,
      policy,
      pending,
      // pinning hosts ride the push chains: who pins a file is replicated metadata (pins.ts)
      pinners: inode => pinnersOf(tree, inode),
      offline: () => presence.offline(),
      up: () => membership.upSet(),
      forward: relayed ? forwarder : undefined
    })
    // pending placements are retried when a peer connects, one retry at a time and backing off
    // while they place nothing (network.retrySoon; it logs its failures)
    const onConnect = (): void => { network.retrySoon() }
    host.addEventListener('peer:connect', onConnect)
    // a member back, joined or declared gone: a chunk pending on it as a target is placed now
    // (it takes its fragment, or the members ranked without it do), not after the backed-off wait
    const onMembersPlace = (): void => { network.retrySoon({ members: true }) }
    for (const e of ['back', 'joined', 'gone']) membership.addEventListener(e, onMembersPlace)
    closers.push(async () => {
      host.removeEventListener('peer:connect', onConnect)
      for (const e of ['back', 'joined', 'gone']) membership.removeEventListener(e, onMembersPlace)
      network.stopRetries()
    })
    // a placement some target did not acknowledge (a push lost on the way) is tried again
    // while peers are connected too, not only when one connects
    const retryPlacement = setInterval(() => { network.retrySoon() }, PLACE_RETRY_INTERVAL_MS)
    retryPlacement.unref()
    closers.push(async () => { clearInterval(retryPlacement) })
    // Clay-coded chunks (--codec clay) only while every member reads them (net/features.ts): a
    // host of an older version refuses their manifests (v3); said in the log when it turns
    let clayNow: boolean | undefined
    const clayReadable = (): boolean => {
      const now = features.supportedByAll(FEATURE_CLAY)
      if (now !== clayNow) {
        if (now) log('every member reads Clay-coded chunks: new chunks are Clay-coded (--codec clay)')
        else log('some member may not read Clay-coded chunks (%s): new chunks are Reed–Solomon-coded', features.lacking(FEATURE_CLAY).slice(0, 4).join(', ') || 'the members are not known yet')
        clayNow = now
      }
      return now
    }
    // a write open longer than a promise has its placed chunks' targets promise them again at
    // half of it (ChunkWrite, a custody round alone: network.renew): the round has the other half
    const renewMs = Math.max(1, Math.floor((opts.custodyPromiseMs ?? CUSTODY_PROMISE_MS) / 2))
    // a write given up here spares the blocks of versions committed here within a promise time (data/recent.ts)
    const chunks = new ChunkService(store, { cacheBytes: opts.cacheBytes ?? defaultCacheBytes(), network, staging, localLeaves, placeWindowBytes: opts.placeWindowBytes, codec: opts.codec, clayReadable, renewMs })
    aside = chunks.aside
    // a full host tells its peers, which leave it out of members() (placement, repair); the
    // notices carry every host's disk figures, which `df` on the mount sums (started below)
    // with them, each host's signed counts of the chunks it is the keeper of (keeper/kept.ts):
    // `darkfs status` sums the members' into its network totals (built below, with the keeper)
    let kept: KeptNotices | undefined
    const spaceNotices = new SpaceNotices({
      host,
      space,
      membership,
      stored: () => store.stored(),
      kept: { own: () => kept?.ownRecord(), take: (msg, from) => { void kept?.take(msg, from) } }
    })
    // `df`: the live hosts' space, in bytes of data under the code new chunks get now
    const capacity = (): ReturnType<typeof networkCapacity> => networkCapacity(spaceNotices.disks(membership.live()), network.params())
    // multi-extent ops only while every member takes them (net/features.ts): a host of an older
    // version refuses them and scores down whoever forwards them; said in the log when it turns
    let multiExtent: boolean | undefined
    const multiExtentNow = (): boolean => {
      const now = features.supportedByAll(FEATURE_MULTIEXT)
      if (now !== multiExtent) {
        if (now) log('every member takes multi-extent ops: one op per fsync of a file')
        else log('some member may refuse multi-extent ops (%s): one op per range', features.lacking(FEATURE_MULTIEXT).slice(0, 4).join(', ') || 'the members are not known yet')
        multiExtent = now
      }
      return now
    }
    // an fsync returns once a connected peer holds its ops too (net/op-hold.ts), asked only of
    // peers that know the request; while offline none is asked
    const stopping = new AbortController()
    closers.push(async () => { stopping.abort() })
    const opHold = new OpHold({
      hold: async (cid, peers, o) => await sync.hold(cid, peers, o),
      holding: cid => { sync.holding(cid) },
      unheld: cid => { sync.unheld(cid) },
      peers: () => presence.offline() ? [] : host.peers().map(p => p.id).filter(p => features.supports(p, FEATURE_HOLD))
    }, { signal: stopping.signal })
    const volume = new Volume({ tree, chunks, store, capacity, multiExtent: multiExtentNow, held: async (cid, op) => { await opHold.held(cid, op) } })
    // the folds this host had planned before it stopped (its own extents not folded yet)
    const resumed = volume.resumeFolds()
    if (resumed > 0) log('%d files hold extents of this host not folded yet: folds planned', resumed)

    const pins = new Pins({ peerId: host.peerId, volume, tree, chunks, store: keeping, fetch: async (cids, need, o) => await network.fetch(cids, need, { ...o, background: true }), arriving: cid => forwarder.relaying(cid) })
    pins.start()
    closers.push(async () => { await pins.stop() })
    const kickPins = (): void => { pins.kick() }
    host.addEventListener('peer:connect', kickPins)
    closers.push(async () => { host.removeEventListener('peer:connect', kickPins) })
    // GC, rebalance and repair delete through a store that spares pinned copies
    const guarded = guardStore(keeping, async cid => await pins.keeps(cid))
    // a copy is deleted (writer, rebalance) only once the hosts keeping it promised to
    const custody = new Custody({ host, store: guarded, keep: f => aside?.hasFragment(f) === true, promisedTo: (cids, peer) => { opening.teller().noted(cids, peer) } }, { promiseMs: opts.custodyPromiseMs })
    await custody.start()
    // (closers run last first: the placement retries stop before custody does, so a retry's
    // promise round never runs against a stopped custody)
    closers.push(async () => { network.stopRetries(); await custody.stop() })
    // the writer hands over the copies of a placed chunk that are not its own (network.ts 'handover')
    const onHandover = (e: CustomEvent<HandoverEvent>): void => {
      // the targets (this host among them) promise every fragment: another writer of the same
      // bytes giving up then cannot have them deleted before this write commits (release.ts),
      // and a target that does not hold what the placement counted (its record is a hint) is
      // refused: the chunk is placed again. The copies stay here on any failure (extra copies,
      // safe): rebalance and GC offer them again later
      const { handovers, keeps } = e.detail
      e.detail.waitUntil(custody.settle(handovers, keeps, { refused: e.detail.refused, promised: e.detail.promised }).then(e.detail.dropped, (err: Error) => { log.error('custody round of %d placed fragments failed, copies kept: %s', handovers.length + keeps.length, err.message) }))
    }
    network.addEventListener('handover', onHandover as EventListener)
    closers.push(async () => { network.removeEventListener('handover', onHandover as EventListener) })
    // (tests: what lands while the daemon starts, before its release is made)
    await opts.beforeRelease?.()
    const made = new Release({ host, store: guarded, volume, promised: (cid, except) => custody.promised(cid, except), inUse: cid => chunks.open.hasFragment(cid), deleteUnpromised: async (cid, except, del) => await custody.deleteUnpromised(cid, except, del), disown: (cids, peer) => { custody.disown(cids, peer) }, retentionMs: opts.keep?.retentionMs ?? DEFAULT_RETENTION_MS, relayedRecheckMs: opts.releaseRecheckMs, originsByAll: () => features.supportedByAll(FEATURE_ORIGINS), member: peer => members.record(peer) !== undefined || host.connected(peer), clock: releaseClock })
    // the records the last clean stop kept (taken above), then what was told since (ReleaseOpening)
    const keptRecords = opening.taken
    const restored = await opening.open(made)
    if (keptRecords > 0) log('who put the blocks held here, kept at the last stop: %d of %d record(s) taken', restored, keptRecords)
    release = made
    await release.start()
    closers.push(async () => { await release?.stop() })
    // a full host keeps its copies: handing them over would empty it, make it a member again
    // and fill it again (its peers copy what they want elsewhere meanwhile; space.ts)
    const keepWhileFull = { drop: async (...a: Parameters<Custody['drop']>) => space.isFull() ? [] : await custody.drop(...a) }
    const keep = await startRedundancy({
      host,
      membership,
      policy,
      swarm,
      store: guarded,
      volume,
      custody: keepWhileFull,
      promises: custody,
      placing: chunk => network.isPlacing(chunk),
      placingCoding: ref => network.isPlacingCoding(ref),
      // the health book hears of finished placements and counts pending ones (keeper/status.ts)
      pending,
      placement: ref => network.heldOf(ref),
      placedHosts: chunk => network.holders(chunk)?.hosts ?? 0,
      offline: () => presence.offline(),
      // copies this host must hold are fetched by its own passes; a keeper leaves them to the
      // peers that announce they do the same (keeper/repair.ts keeperDeliveries)
      ...(features.supports(host.peerId, FEATURE_PULL) ? { pulls: (peer: string) => features.supports(peer, FEATURE_PULL) } : {}),
      // a thin keeper leaves a rebuild to a live holder on a much faster uplink (keeper/repair.ts
      // rebuilderOf): the rates hosts configured (`--uplink`), which every host learns alike
      uplinkOf: (peer: string) => peer === host.peerId ? opts.uplink : uplinks.book.get(peer)?.source === 'configured' ? uplinks.book.get(peer)?.bytesPerSecond : undefined
    }, { ...opts.keep, repairBytesPerSecond: opts.keep?.repairBytesPerSecond ?? repairRate(upload), dataDir: dir })
    closers.push(keep.stop)
    const signer = signerFor(privateKey)
    // the counts are summed along the tree in a network of more than FULL_MESH_PEERS members
    // (keptTreeMode: the member table's size, the same on every host, not this host's
    // connections), by a host that announces it does (its features; a test's older host not)
    const keptTree = (): boolean => keptTreeMode(members.size, opts.keptTreeMembers) && features.supports(host.peerId, FEATURE_KEPT_TREE)
    const keptNow = new KeptNotices({
      signer,
      verify,
      counts: () => keep.kept(),
      up: () => membership.up(),
      member: peer => members.record(peer) !== undefined || host.peers().some(p => p.id === peer),
      tell: () => { spaceNotices.tellKept() },
      // beyond the full mesh a host is connected to a few members only: its record goes on
      // gossip too, so every member hears it (in a full mesh every peer gets its space notice)
      publish: () => host.beyondFullMesh() || keptTree()
        ? async (msg: Uint8Array, sum?: boolean) => {
          const data = new Uint8Array(msg.byteLength + 1)
          // the root's totals under their own tag: a host of an older version ignores it (no
          // handler), where it would refuse a sum record under the records' tag and score down
          // the peer that forwarded it
          data[0] = sum === true ? KEPT_SUM_GOSSIP_TAG : KEPT_GOSSIP_TAG
          data.set(msg, 1)
          return await host.gossip.publish(data)
        }
        : undefined,
      // and beyond it the counts are summed along a tree (keeper/kept-tree.ts): a host sends its
      // group's sum to its parent, and only the root's totals go on gossip
      // (a parent that announced it does not sum so, a host of an older version, is not called:
      // the send failed, tried again later)
      sendUp: async (parent, msg) => {
        if (host.features(parent) !== undefined && !features.supports(parent, FEATURE_KEPT_TREE)) return false
        return await sendKeptSum(host, parent, msg)
      },
      // (the root's totals may claim as many hosts as are members here not declared down)
      members: () => members.members().length,
      tree: keptTree,
      onRefused: (err, from) => { log('keeper counts from %s refused: %s', from, err.message) }
    })
    kept = keptNow
    // a record heard before its host was a member here is counted when it becomes one
    const onMemberAdded = (e: Event): void => { keptNow.memberAdded((e as CustomEvent<string>).detail) }
    members.addEventListener('member', onMemberAdded)
    host.addEventListener('peer:connect', onMemberAdded)
    const onKept = async (data: Uint8Array, from: string): Promise<'accept' | 'ignore' | 'reject'> => {
      const r = await keptNow.take(data, from)
      return r === 'new' ? 'accept' : r === 'old' ? 'ignore' : 'reject'
    }
    host.gossip.handleTagged(KEPT_GOSSIP_TAG, onKept)
    host.gossip.handleTagged(KEPT_SUM_GOSSIP_TAG, onKept)
    // the counts follow the book's observations and the hosts up (a holder gone counts at once)
    keep.book.onObserve = () => { keptNow.changed() }
    const keptEvents = ['gone', 'joined', 'lapsed', 'back', 'change']
    const onMembers = (): void => { keptNow.upChanged() }
    for (const e of keptEvents) membership.addEventListener(e, onMembers)
    // and each connection: a record signed in a full mesh goes on gossip once beyond it (KeptNotices.gossipOwn)
    host.addEventListener('peer:connect', onMembers)
    keptNow.changed()
    keptService = await startKeptService(host, keptNow)
    closers.push(async () => { await keptService?.stop(); keptService = undefined })
    // the member table was pulled before the keeper started: the counts from a peer now
    if (memberService.pulled()) {
      const first = host.peers()[0]
      if (first !== undefined) pullKept(first.id)
    }
    closers.push(async () => {
      keptNow.stop()
      members.removeEventListener('member', onMemberAdded)
      host.removeEventListener('peer:connect', onMemberAdded)
      keep.book.onObserve = undefined
      host.gossip.handleTagged(KEPT_GOSSIP_TAG, undefined)
      host.gossip.handleTagged(KEPT_SUM_GOSSIP_TAG, undefined)
      for (const e of keptEvents) membership.removeEventListener(e, onMembers)
      host.removeEventListener('peer:connect', onMembers)
    })
    await spaceNotices.start()
    closers.push(async () => { await spaceNotices.stop() })

    // the event stream, fed by the parts above (api/feed.ts), and the --on-event hook
    const events = new EventLog()
    const stopFeed = feedEvents(events, { membership, host, offline: () => presence.offline(), book: keep.book, repairer: keep.repairer, tree, space, pins })
    closers.push(async () => { stopFeed() })
    if (opts.onEvent !== undefined) {
      const hook = new EventHook(events, { command: opts.onEvent })
      hook.start()
      closers.push(async () => { hook.stop() })
    }

    if ((opts.join ?? []).length > 0) {
      await saveConfig(dir, { ...config, join: [...new Set([...config.join, ...(opts.join ?? [])])] })
    }

    // read at each scrape from what the parts keep in memory (node/api/metrics.ts)
    const metrics = createMetrics({
      chunks: () => keep.known(),
      network: () => keptNow.totals(),
      stored: () => store.stored(),
      space: () => space.snapshot(),
      repair: () => ({ progress: keep.repairer.progress(), totals: keep.repairer.totals() }),
      pendingPlacements: () => network.pending.size,
      swarm: () => swarm.stats(),
      uplink: peer => uplinks.book.get(peer)?.bytesPerSecond,
      traffic: () => host.traffic(),
      relays: () => forwarder.stats(),
      releaseRefusals: () => ({ ...release.refusals }),
      reads: () => chunks.readCounters(),
      cache: () => chunks.cacheFigures(),
      peers: () => {
        const connected = host.peers().length
        const suspect = membership.suspects().length
        return { connected, known: connected + suspect, suspect }
      },
      offline: () => presence.offline(),
      ops: () => tree.size,
      conflicts: () => tree.conflicts().length,
      tree,
      membership
    })
    metrics.start()
    closers.push(async () => { metrics.stop() })

    // the bearer token of `--api` (made here for data dirs initialised before there was one)
    const token = await apiToken(dir)
    const tcp = apiAt === undefined ? undefined : { ...apiAt, token, requestsPerSecond: opts.apiRate }
    const resources = resourceRoutes({
      volume,
      // answered from what this host keeps (no message to any peer), every figure with its age;
      // `survey` asks every holder first (keeper/status.ts)
      status: async ({ chunks, survey, signal }) => {
        // bytes stored: the running figure (no walk of the store per call; data/store.ts stored())
        const disk = await store.disk()
        const stored = store.stored() ?? (await store.usage()).bytesStored
        const peers = host.peers()
        const { full, free, reserve } = space.snapshot()
        return {
          peerId: host.peerId,
          addresses: host.addresses(),
          peers: peers.length,
          offline: presence.offline(),
          ...(chunks ? { chunks: await keep.health({ survey, signal }) } : {}),
          // every chunk of the network by health: the sum of the counts each member up keeps of
          // the chunks it is the keeper of, as last told (keeper/kept.ts; no message)
          ...(chunks ? { network: keptNow.totals() } : {}),
          repair: keep.repairer.progress(),
          bytesStored: stored,
          capacity: disk.capacity,
          space: { full, free, reserve },
          fullPeers: membership.fullHosts(),
          // the code new chunks are written with now, and the policy that picks it (placement.ts)
          placement: { ...network.params(), redundancy: policy.redundancy, dataFragments: policy.dataFragments },
          // peers, bytes stored and the disk are read as the status is made; chunks carry their own ages
          at: Date.now()
        }
      },
      // each with what it last told of its disk and the bytes of blocks it holds (space notices)
      peers: async () => host.peers().map(p => {
        const { disk, stored } = spaceNotices.figures(p.id)
        return { ...p, ...(stored !== undefined ? { bytesStored: stored } : {}), ...(disk !== undefined ? { disk } : {}) }
      }),
      pins: { pin: async (path, o) => await pins.pin(path, o), unpin: async path => { await pins.unpin(path) }, list: () => pins.list() },
      heal: async o => await keep.commands.heal({}, o),
      leave: async o => await keep.commands.leave({}, o),
      scrub: async o => await keep.commands.scrub({}, o),
      // what the fault run compares across hosts to see that they converged (issue 16)
      tree: async () => ({ heads: tree.heads().map(c => c.toString()).sort(), ops: tree.size, ...treeDigest(tree) }),
      traffic: async () => ({ swarm: swarm.stats(), forward: forwarder.stats(), uplinks: Object.fromEntries(uplinks.book.snapshot()), host: host.traffic() }),
      config: async () => ({
        dataDir: dir,
        listen,
        join: join_,
        announce: opts.announce ?? [],
        redundancy: opts.redundancy ?? null,
        dataFragments: opts.dataFragments ?? null,
        api: opts.api ?? null,
        apiRate: opts.apiRate ?? null,
        maxConnections: opts.maxConnections ?? null,
        maxUpload: opts.maxUpload ?? null,
        maxDownload: opts.maxDownload ?? null,
        uplink: opts.uplink ?? null
      })
    })
    const api = new ApiServer({ socket: join(dir, CONTROL_SOCKET), routes: [...resources, ...conflictRoutes({ volume }), ...eventRoutes(events), ...metricsRoutes(metrics), ...inviteRoutes({ networkKey, host }), ...dashboardRoutes(), ...(opts.routes ?? [])], tcp, version: VERSION, onError: status => { metrics.error('api', String(status)) } })
    await api.start()
    closers.push(async () => { await api.stop() })
    // (pushed last: runs first) open writes stop renewing their chunks' promises before the
    // custody, the network and the host they renew through stop (a round in flight is aborted)
    closers.push(async () => { chunks.close() })
    return { volume, host, tree, swarm, sync, network, custody, release, store, pins, forwarder, presence, space, spaceNotices, kept: keptNow, policy, keep, members, memberService, features, join: join_, api, events, metrics, close }
  } catch (err) {
    await close()
    throw err
  }
}
