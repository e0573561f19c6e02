// Keeping the redundancy (DESIGN.md §3), composed for a running host: the keeper's repair loop,
// scrub, GC, and leave, over the membership (failure detection) and the placement policy the
// daemon built before it (the network places with the same two). Its control commands are
// `heal`, `leave`, `repair.progress`, `scrub`, `gc`. The health book (status.ts) keeps what the
// passes and placements saw of every chunk, so `darkfs status` answers from memory.
import type { CID } from 'multiformats/cid'
import type { Swarm } from '../../swarm/index.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Commands } from '../types.ts'
import type { Membership } from '../net/index.ts'
import { Collector } from './gc.ts'
import type { Host } from '../net/index.ts'
import { drain } from './leave.ts'
import { Repairer } from './repair.ts'
import type { ChunkCounts, RepairProgress } from './repair.ts'
import { DEFAULT_RETENTION_MS, retained, retainedContents } from './retained.ts'
import { decodeManifest, manifestRef } from '../data/index.ts'
import type { ChunkRef } from '../data/index.ts'
import { HealthBook, KEEPER_RANKS } from './status.ts'
import type { KeptCounts } from './kept.ts'
import type { ChunkStatus, HealthView } from './status.ts'
import { incomplete, plan } from './survey.ts'
import type { PendingPlacements } from './pending.ts'
import { Scrubber } from './scrub.ts'
import type { Store } from '../data/index.ts'
import type { Custody } from './custody.ts'
import type { Volume } from '../index.ts'
import { keeperOf } from './placement.ts'
import type { PlacementPolicy } from './placement.ts'
import { PlacedNotices } from './placed.ts'
import { logger } from '../log.ts'

const log = logger('keeper:redundancy')

/**
 * Time the `leave` control command's reply gets to reach the CLI before `left` resolves and
 * the host stops (stopping closes the control socket's connections, replies in flight too).
 */
export const LEAVE_REPLY_GRACE_MS = 500

/** Repair passes `darkfs heal` runs before it reports the chunks still short. */
export const HEAL_MAX_PASSES = 5
/** Wait between heal passes that left chunks short (pushes to a peer that was busy, say). */
export const HEAL_RETRY_MS = 1_000

/** What `darkfs heal` did over all its passes, and the chunk counts after the last. */
export interface HealResult extends RepairProgress {
  passes: number
  remaining: ChunkCounts
}

export interface RedundancyOptions {
  /** Time between background repair passes (default repair.ts DEFAULT_REPAIR_INTERVAL_MS). */
  repairIntervalMs?: number
  /** Longest time without a background pass while nothing changed (default repair.ts DEFAULT_REPAIR_QUIET_INTERVAL_MS). */
  repairQuietIntervalMs?: number
  /** Repair traffic cap in bytes/s (default repair.ts DEFAULT_REPAIR_BYTES_PER_SECOND; the daemon's: repairRate() of its link). */
  repairBytesPerSecond?: number
  /** How long a chunk at k live waits for its away holders (`--at-risk-delay`; default lazy.ts AT_RISK_DELAY_MS). */
  atRiskDelayMs?: number
  /** A Clay repair's helpers' phase bound and a helper's wait (repair.ts RepairInit.clayPhaseMs, clayHelperWaitMs; tests). */
  clayPhaseMs?: number
  clayHelperWaitMs?: number
  /** Time between background scrubs (default scrub.ts DEFAULT_SCRUB_INTERVAL_MS). */
  scrubIntervalMs?: number
  /** Retention of old versions and unreferenced blocks (default retained.ts DEFAULT_RETENTION_MS). */
  retentionMs?: number
  /** Time between GC rounds (default gc.ts DEFAULT_GC_INTERVAL_MS). */
  gcIntervalMs?: number
  /** The host's data dir: GC keeps its unreferenced times there across restarts (gc-since.ts). Not given: memory only. */
  dataDir?: string
}

export interface RedundancyComponents {
  host: Host
  /** Membership with failure detection, started (and stopped) by the daemon. */
  membership: Membership
  /** The placement policy the network places with: members, redundancy (placement.ts). */
  policy: Pick<PlacementPolicy, 'members' | 'copies' | 'rank'>
  swarm: Pick<Swarm, 'has' | 'pullAny' | 'push'> & Partial<Pick<Swarm, 'pullRange'>>
  store: Store
  volume: Volume
  /** Deletes copies only once their keepers promised to keep them (shared with the writer). */
  custody: Pick<Custody, 'drop'>
  /** This host's promises to keep blocks (custody.ts): GC keeps a promised block. */
  promises?: Pick<Custody, 'promised' | 'deleteUnpromised'>
  /** Whether this host is placing any coding of a chunk (its CID) now (it may act on it: repair.ts theirs). */
  placing?: (chunk: string) => boolean
  /** Whether this host is placing this coding of a chunk now (network.ts isPlacingCoding): that coding's repair waits, status counts it placing. */
  placingCoding?: (ref: ChunkRef) => boolean
  /**
   * The chunks written here still to be placed, and who acknowledged each fragment of a chunk
   * (network.ts placement): finished placements go to the health book, pending ones count as
   * placing (or local-only while offline).
   */
  pending?: Pick<PendingPlacements, 'has' | 'values' | 'addEventListener' | 'removeEventListener'>
  /** The acknowledgements of a placement this host finished, of the ref's encoding (ChunkNetwork.heldOf). */
  placement?: (ref: ChunkRef) => Array<Set<string>> | undefined
  /** The hosts that acknowledged any fragment of a chunk being placed here (status: degraded or local only). */
  placedHosts?: (chunk: string) => number
  /** Whether this host has lost its peers (presence.ts). */
  offline?: () => boolean
  /** Given when this host fetches the copies it must hold itself: which peers do too (repair.ts RepairComponents.pulls). */
  pulls?: (peer: string) => boolean
  /** The uplink a host configured (bytes/s), this one included, when known (repair.ts RepairComponents.uplinkOf). */
  uplinkOf?: (peer: string) => number | undefined
}

export interface HealthOptions extends AbortOptions {
  /** Ask every holder now (a survey of every chunk) instead of answering from the book. */
  survey?: boolean
}

export interface Redundancy {
  readonly membership: Membership
  readonly repairer: Repairer
  readonly scrubber: Scrubber
  readonly collector: Collector
  /** Resolves once `leave` has drained this host and told its peers (the host should stop). */
  readonly left: Promise<void>
  /** Chunks redundant/degraded/local-only/lost/unreachable, asked of the holders now (a survey). */
  status: (opts?: AbortOptions) => Promise<ChunkCounts>
  /**
   * The health of every chunk from what this host keeps (no message; `survey`: after asking
   * every holder), each figure with its age. Chunks never seen are looked up in the background.
   */
  health: (opts?: HealthOptions) => Promise<ChunkStatus>
  readonly book: HealthBook
  /**
   * The health of the chunks the book knows (HealthBook.countKnown): memory only, no walk of
   * the tree, no disk, no message, no lookup started. What a metrics scrape reads.
   */
  known: () => ChunkStatus
  /**
   * The chunks this host is the keeper of now, by health, from the book (kept.ts): memory only.
   * What it tells its peers for their network totals.
   */
  kept: () => KeptCounts
  /** Repair now, every chunk, treating unreachable members as gone. */
  heal: (opts?: AbortOptions) => Promise<HealResult>
  /** Drain this host, then resolve `left` (after graceMs, when given). */
  leave: (opts?: AbortOptions & { graceMs?: number }) => Promise<{ passes: number, progress: RepairProgress }>
  commands: Commands
  stop: () => Promise<void>
}

export async function startRedundancy (c: RedundancyComponents, o: RedundancyOptions = {}): Promise<Redundancy> {
  const retentionMs = o.retentionMs ?? DEFAULT_RETENTION_MS
  const membership = c.membership
  const book = new HealthBook()
  const pendingHas = (chunk: string): boolean => c.pending?.has(chunk) ?? false
  let known: ReadonlyMap<string, ChunkRef[]> | undefined
  const repairer = new Repairer({
    health: book,
    pending: pendingHas,
    self: c.host.peerId,
    membership,
    bounded: () => c.host.beyondFullMesh(),
    connected: peer => c.host.connected(peer),
    ops: c.volume.tree,
    policy: c.policy,
    leaves: c.volume.chunks.localLeaves,
    store: c.store,
    swarm: c.swarm,
    custody: c.custody,
    placing: c.placing,
    placingCoding: c.placingCoding,
    pulls: c.pulls,
    uplinkOf: c.uplinkOf,
    chunks: async (opts) => {
      // the chunks of the manifests the last listing read (they never change): not read again
      const r = await retained(c.volume, retentionMs, { ...opts, known })
      known = r.byManifest
      // manifests are replicated blocks (k = 1): without one, its file's chunks are unreachable
      return { refs: [...r.chunks.values()], unreadable: r.unreadable, manifests: [...r.manifests.values()].map(cid => manifestRef(cid, 0)), byManifest: r.byManifest, missing: r.missing }
    }
  }, { intervalMs: o.repairIntervalMs, quietIntervalMs: o.repairQuietIntervalMs, bytesPerSecond: o.repairBytesPerSecond, atRiskDelayMs: o.atRiskDelayMs, clayPhaseMs: o.clayPhaseMs, clayHelperWaitMs: o.clayHelperWaitMs })
  repairer.start()
  // placement notices (placed.ts): a keeper hears from the writer that a chunk is placed
  const notices = new PlacedNotices({
    host: c.host,
    placed: (from, n) => { repairer.placedBy(from, n.chunk.toString(), n.fragments.map(f => f.toString()), n.holders) }
  })
  await notices.start()
  // a placement this host finished: its acknowledgements say who holds what, now
  const onPlaced = (e: CustomEvent<ChunkRef>): void => {
    const ref = e.detail
    const acked = c.placement?.(ref)
    if (acked === undefined) return
    const live = new Set(membership.up())
    // its keeper (the first-ranked host up) takes it as placed without a survey (placed.ts);
    // this host's own word when it is the keeper
    if (ref.k > 1) {
      const keeper = keeperOf(ref, live, c.policy)
      const holders = acked.map(hs => [...hs])
      if (keeper === c.host.peerId) repairer.placedBy(keeper, ref.cid!.toString(), ref.fragments.map(f => f.toString()), holders)
      else if (keeper !== undefined) notices.tell(keeper, { chunk: ref.cid!, fragments: ref.fragments, holders })
    }
    const holdings = new Map<string, Set<string>>()
    ref.fragments.forEach((f, j) => {
      const hs = holdings.get(f.toString()) ?? new Set<string>()
      for (const h of acked[j] ?? []) hs.add(h)
      holdings.set(f.toString(), hs)
    })
    const p = plan(ref, holdings, c.policy.members(), live, c.host.peerId, c.policy)
    // ranked among the members, the list placement ranks (placement.ts keeps one list prepared):
    // its keeper is the first of them up when counted
    book.observe(ref, p, incomplete(p, live, new Set()), Date.now(), live.size < 2, c.policy.rank(ref, c.policy.members(), KEEPER_RANKS))
  }
  c.pending?.addEventListener('placed', onPlaced as EventListener)
  /** Background lookups of chunks the book has not seen (started by health(), one at a time). */
  let lookup: Promise<void> | undefined
  const lookUp = (manifests: string[], cids: Map<string, CID>): void => {
    if (lookup !== undefined) return
    lookup = (async () => {
      for (const m of manifests) {
        if (book.knows(m)) continue
        // read from here, else from a peer: in the background, never in status's answer
        const manifest = await c.volume.chunks.readManifest(cids.get(m)!).catch((err: Error) => {
          log('manifest %s not readable for status yet: %s', m, err.message)
          return undefined
        })
        if (manifest !== undefined) book.manifest(m, manifest.chunks)
      }
      const unseen = book.unseen(manifests, membership.live().length)
      if (unseen.length > 0) await repairer.look(unseen)
    })().catch((err: Error) => { log.error('looking up %d file version(s) for status failed: %s', manifests.length, err.message) })
      .finally(() => { lookup = undefined })
  }
  const view = (): HealthView => ({
    self: c.host.peerId,
    // the hosts taken to be up (beyond the full mesh: members not declared down, connected or not)
    live: new Set(membership.up()),
    placing: ref => c.placingCoding?.(ref) ?? c.placing?.(ref.cid!.toString()) ?? false,
    pendingHosts: chunk => c.placedHosts?.(chunk) ?? 0,
    offline: c.offline?.() ?? false
  })
  const health = async (opts: HealthOptions = {}): Promise<ChunkStatus> => {
    if (opts.survey === true) await repairer.status(opts)
    const cids = new Map<string, CID>()
    for (const content of retainedContents(c.volume, retentionMs)) {
      if ('manifest' in content) cids.set(content.manifest.toString(), content.manifest)
    }
    const manifests = [...cids.keys()]
    // manifests stored here are read from the disk now (no message); the others are looked up
    // in the background below
    for (const [m, cid] of cids) {
      if (book.knows(m)) continue
      const bytes = await c.store.tryGet(cid)
      if (bytes === undefined) continue
      try {
        book.manifest(m, decodeManifest(bytes).chunks)
      } catch (err) {
        // a manifest this host cannot decode counts as unknown; the passes report it
        log('manifest %s undecodable: %s', m, (err as Error).message)
      }
    }
    const s = book.count(manifests, c.pending?.values() ?? [], view(), opts.survey === true ? 'survey' : 'kept')
    const live = membership.live().length
    if (s.unknown > 0 && opts.survey !== true) lookUp(manifests.filter(m => !book.knows(m) || book.unseen([m], live).length > 0), cids)
    return s
  }
  const scrubber = new Scrubber({
    store: c.store,
    onCorrupt: () => {
      // the periodic pass tries again
      repairer.pass({ all: true }).catch((err: Error) => { log.error('repair pass after a corrupt block failed: %s', err.message) })
    }
  }, { intervalMs: o.scrubIntervalMs })
  scrubber.start()
  const promises = c.promises
  const collector = new Collector({
    volume: c.volume,
    store: c.store,
    ...(promises !== undefined ? { custody: { promised: cid => promises.promised(cid), deleteUnpromised: async (cid, except, del) => await promises.deleteUnpromised(cid, except, del) } } : {})
  }, { retentionMs, intervalMs: o.gcIntervalMs, dir: o.dataDir, self: c.host.peerId })
  collector.start()
  let markLeft = (): void => {}
  const left = new Promise<void>(resolve => { markLeft = resolve })

  const heal = async (opts?: AbortOptions): Promise<HealResult> => {
    await membership.expire()
    let total: HealResult | undefined
    for (let pass = 1; ; pass++) {
      const p = await repairer.pass({ ...opts, all: true })
      const remaining = await repairer.status(opts)
      total = {
        ...p,
        fragmentsRepaired: p.fragmentsRepaired + (total?.fragmentsRepaired ?? 0),
        bytesPushed: p.bytesPushed + (total?.bytesPushed ?? 0),
        bytesFetched: p.bytesFetched + (total?.bytesFetched ?? 0),
        dropped: p.dropped + (total?.dropped ?? 0),
        passes: pass,
        remaining
      }
      // lost chunks cannot be healed; local-only ones only once there is a peer
      const short = remaining.degraded + (membership.live().length > 1 ? remaining.localOnly : 0)
      if (short === 0 || pass >= HEAL_MAX_PASSES) return total
      await new Promise(resolve => setTimeout(resolve, HEAL_RETRY_MS))
    }
  }
  const leave = async (opts?: AbortOptions & { graceMs?: number }): Promise<{ passes: number, progress: RepairProgress }> => {
    const r = await drain({ self: c.host.peerId, repairer, membership }, opts)
    if (opts?.graceMs === undefined) markLeft()
    else setTimeout(markLeft, opts.graceMs)
    return r
  }
  return {
    membership,
    repairer,
    scrubber,
    collector,
    left,
    status: async (opts) => await repairer.status(opts),
    health,
    book,
    known: () => book.countKnown(c.pending?.values() ?? [], view()),
    kept: () => book.keptCounts(c.host.peerId, new Set(membership.up())),
    heal,
    leave,
    commands: {
      heal: async () => await heal(),
      leave: async () => await leave({ graceMs: LEAVE_REPLY_GRACE_MS }),
      'repair.progress': async () => repairer.progress(),
      scrub: async () => await scrubber.scrub(),
      gc: async () => await collector.collect()
    },
    stop: async () => {
      c.pending?.removeEventListener('placed', onPlaced as EventListener)
      await notices.stop()
      await collector.stop()
      await scrubber.stop()
      await repairer.stop()
    }
  }
}
