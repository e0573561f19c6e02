// The keeper loop (DESIGN.md §3): for every retained chunk, its first-ranked live member under
// its placement rule (its keeper, placement.ts keeperOf) checks that every fragment sits on the hosts it must be on (survey.ts,
// assignment.ts; the hosts its ref's placement rule ranks: placement.ts) and rebuilds what is missing from any k fragments, pushing it to where it
// belongs. The same pass moves fragments to hosts that joined (they become targets), and
// every host then drops the copies it holds but is no longer a target of, once their targets
// hold them (rebalance.ts). Repair traffic has its own rate limit, apart from the swarm's, so
// it never takes the whole link from reads and writes; only what is missing moves. The limit is
// on what this host pushes: the cap comes from its uplink, and the fragments it fetches to rebuild
// come in on its downlink, each sent under its holder's own upload cap. (It counted the fetches
// too: a keeper on a 1 Mbit/s uplink spent four fifths of its 64 KiB/s lane on bytes that never
// crossed that uplink, and npm run sim lost chunks whose last holders left 15 days apart, their
// repairs still queued behind a thin keeper's.)
//
// Lazy repair (lazy.ts): a member declared gone by the failure timeout is away for the repair
// delay (net/failure.ts), and its chunks are planned as if it still held its fragments while
// each keeps a fragment to spare; a chunk down to k live fragments waits the at-risk delay
// (--at-risk-delay, lazy.ts stopWaiting(), from Membership.awayFor()), then gets one fragment
// back, and one whose holder stayed away past the delay ('lapsed') is repaired on the next pass. A pass takes the chunks with the fewest live fragments first.
//
// An idle network costs nothing: a background pass surveys every peer (have-queries for every
// fragment), so the timer runs one only when something may have changed since the last pass that
// found every chunk redundant: the members (join, leave, drain, full disk), a member that came
// back (it may have lost its disk), the tree (new content), or that pass itself left work. With
// none of these it waits, up to the quiet interval (a safety net for copies lost where no event
// tells, such as a disk emptied under a running host: such a pass first has this host's store
// check its index of blocks against the disk, Store.resync).
//
// A background pass called for by new content alone surveys only what it must: a chunk an
// earlier pass found redundant under the same members, live hosts and hosts away (view()), with
// no copy here to hand over, is not asked about again. During a `tar x` every host passed over
// every chunk of the tree each interval, and each chunk's have-queries to every peer were most
// of what a pass cost. In a full mesh with every member up, such a pass also leaves an erasure-
// coded chunk to its keeper when this host holds exactly the fragments a fresh placement puts
// here and is neither its keeper nor its rebuilder (placedHere()): after a write every host
// surveyed every new chunk at once, and on six hosts sharing two cores those passes starved the
// reads that followed (issue 15). Every pass called for by the members changing, a host back, the quiet
// interval, or a caller (heal, a corrupt block, leave, status) surveys every chunk, and so does
// every pass under other members, hosts up or hosts away than the last full pass saw, whatever
// called for it (not every change comes with an event, and a change undone between two passes
// still moved fragments: Membership's 'change' says those).
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import type { Swarm } from '../../swarm/index.ts'
import { MAX_RANGE_LEAVES, tokenBucket } from '../../swarm/index.ts'
import type { RateLimiter } from '../../swarm/index.ts'
import type { AbortOptions } from '@libp2p/interface'
import { LEAF_BYTES, clayCode, matches, rebuildFragments, verifyRange } from '../data/index.ts'
import type { ChunkRef, LocalLeaves } from '../data/index.ts'
import type { Membership } from '../net/index.ts'
import type { PlacementPolicy } from './placement.ts'
import { handovers, wantedHere } from './rebalance.ts'
import { assignment } from './assignment.ts'
import type { Custody, Handover } from './custody.ts'
import type { Store } from '../data/index.ts'
import { SURVEY_DIALS, incomplete, plan, placed, survey } from './survey.ts'
import { LAZY_RULE, atRisk, byUrgency, lazyPlan, liveFragments, survivingFragments } from './lazy.ts'
import type { LazyRule } from './lazy.ts'
import { KEEPER_RANKS, LOST_CONFIRM_MS } from './status.ts'
import { chunkOfKey, codingKey, codingKeyOf } from './coding.ts'
import type { HealthBook } from './status.ts'
import { forEachLimited, limiter } from '../pool.ts'
import type { ChunkPlan, Health, Holdings } from './survey.ts'
import { logger, shortCid, shortPeers } from '../log.ts'
import { anySignal, boundedSignal } from '../abort.ts'

const log = logger('keeper:repair')

/** Default time between background repair passes (while something changed): 1 minute. */
export const DEFAULT_REPAIR_INTERVAL_MS = 60_000
/** Default longest time without a background pass when nothing changed: 1 hour. */
export const DEFAULT_REPAIR_QUIET_INTERVAL_MS = 3600_000
/**
 * Share of this host's data link (the swarm's upload cap: `--max-upload`, else a share of
 * `--uplink`) that repair traffic may take by default: the rest stays for reads and writes,
 * which the swarm serves in the order asked, background or not.
 */
export const REPAIR_LINK_SHARE = 0.5
/**
 * Repair traffic cap (bytes pushed; fetches are not counted, see the top) when the link is not known:
 * 64 MiB/s, about half a gigabit link. A fixed cap only ever bites on links faster than itself,
 * where it is least needed (32 MiB/s, the former default, held a keeper to ~8 MiB/s restored at
 * 4 bytes moved per byte lost, a quarter of a gigabit LAN); on a slower link the link itself is
 * the limit, shared with reads and writes. Configure `--uplink` for a cap that fits the link.
 */
export const DEFAULT_REPAIR_BYTES_PER_SECOND = 64 * 1024 * 1024
/** Lowest default cap from a known link: repair must still progress on a thin uplink. */
export const MIN_REPAIR_BYTES_PER_SECOND = 64 * 1024

/** The default repair cap for a host whose data link is `link` bytes/s (undefined: not known). */
export function repairRate (link?: number): number {
  if (link === undefined || !(link > 0)) return DEFAULT_REPAIR_BYTES_PER_SECOND
  return Math.max(MIN_REPAIR_BYTES_PER_SECOND, Math.floor(link * REPAIR_LINK_SHARE))
}
/**
 * Passes in a row a keeper leaves a copy to the target that pulls it (keeperDeliveries): a copy
 * still missing there after these (the target's plan disagreed, its passes failed) the keeper's
 * next pass delivers itself.
 */
export const PULL_GRACE_PASSES = 2
/** Placement notices (placedBy()) kept at most until a pass uses them (the oldest forgotten first). */
export const MAX_ACKED = 16_384
/** Chunks surveyed and repaired per batch (bounds the memory of one step). */
export const REPAIR_BATCH = 256
/** Chunks in a pass's first batch: the batches after it double, up to REPAIR_BATCH. */
export const REPAIR_FIRST_BATCH = 16
/** Chunks rebuilt at once. */
export const REPAIR_CONCURRENCY = 16
/** Wait after a membership change before a pass starts (changes come in bursts). */
export const REPAIR_DEBOUNCE_MS = 500
/** Time for one chunk's rebuild and delivery before it is left to the next pass. */
export const REPAIR_CHUNK_TIMEOUT_MS = 60_000
/**
 * The least a Clay helper's holder is given to answer one range want (clayRepair), beyond the
 * swarm's hedge time (500 ms): its fragment's one holder is the only one to ask, and a busy
 * host answering late cost k whole fragments instead.
 */
export const CLAY_HELPER_WAIT_MS = 15_000
/**
 * The most a Clay repair's helpers' phase takes (clayRepair) before the chunk is rebuilt from k
 * whole fragments: half the chunk's own bound, so that fallback always has the other half.
 */
export const CLAY_PHASE_MS = REPAIR_CHUNK_TIMEOUT_MS / 2
/**
 * Beyond the full mesh a survey asks each chunk's targets and the hosts ranked this many places
 * after them (a target displaced by a joiner keeps its copy until the joiner holds it: repair
 * copies it from there), not every host.
 */
export const SURVEY_SPARE_RANKS = 2
/**
 * Beyond the full mesh, the pass a member's going calls for starts after a random wait up to
 * this (on top of REPAIR_DEBOUNCE_MS): every host hears a DOWN notice within a moment, and the
 * hosts its chunks rank first would otherwise all dial each other at once.
 */
export const REPAIR_GONE_SPREAD_MS = 10_000

export interface RepairInit {
  /** Time between background passes (default DEFAULT_REPAIR_INTERVAL_MS; 0 = no background loop). */
  intervalMs?: number
  /**
   * Background passes called for by new content alone skip the chunks found redundant under the
   * same view (see `fine`; default true). It was off for a while: test/cluster/status-processes
   * waited for a full survey started 2 s after its peers' stop, and the one their declaration
   * started could come before that when a host took over half a second to exit after closing its
   * connections; with every pass full, the next pass (a minute later) hid it.
   */
  incremental?: boolean
  /**
   * Longest time between background passes while nothing changed (default
   * DEFAULT_REPAIR_QUIET_INTERVAL_MS; at most intervalMs passes every interval, as before).
   */
  quietIntervalMs?: number
  /** Repair traffic cap in bytes/s, on the bytes this host pushes (default DEFAULT_REPAIR_BYTES_PER_SECOND). */
  bytesPerSecond?: number
  /** The cap itself (default: a token bucket at bytesPerSecond; tests count what it is asked for). */
  limiter?: RateLimiter
  /** How long a chunk at k live waits for its away holders before one is rebuilt (default lazy.ts AT_RISK_DELAY_MS). */
  atRiskDelayMs?: number
  /**
   * The most a Clay repair's helpers' phase takes before the chunk is rebuilt from k whole
   * fragments (default CLAY_PHASE_MS; clayRepair). Less than the chunk's own bound
   * (REPAIR_CHUNK_TIMEOUT_MS), or the fallback never has time to run.
   */
  clayPhaseMs?: number
  /** The least a Clay helper's holder is given to answer one range want (default CLAY_HELPER_WAIT_MS). */
  clayHelperWaitMs?: number
}

export interface RepairComponents {
  self: string
  /**
   * Live hosts, the 'gone'/'joined'/'lapsed' events that start a pass and the 'back' events that
   * call for one; the hosts away within the repair delay (lazy.ts; none when not given).
   */
  membership: Pick<Membership, 'live' | 'addEventListener' | 'removeEventListener'> & Partial<Pick<Membership, 'away' | 'awayFor' | 'up'>>
  /**
   * True while this host keeps connections to a few members only (beyond the full mesh,
   * net/host.ts): a survey then asks each chunk the hosts its rule ranks first (its targets and
   * SURVEY_SPARE_RANKS more, dialled when not connected), not every connected peer (the hosts
   * planned over are membership.up() either way: the connected ones only in a full mesh). Not
   * given: a full mesh.
   */
  bounded?: () => boolean
  /** The tree: its 'ops' events (new content, new members' pins) call for a pass. */
  ops?: Pick<EventTarget, 'addEventListener' | 'removeEventListener'>
  /** The hosts placement ranks and the copies a replicated chunk needs (placement.ts). */
  policy: Pick<PlacementPolicy, 'members' | 'copies' | 'rank'>
  /**
   * The chunks that must stay redundant (retained.ts), how many manifests could not be read,
   * and the manifests themselves as replicated blocks (repaired too; status counts chunks).
   */
  chunks: (opts?: AbortOptions) => Promise<{ refs: ChunkRef[], unreadable: number, manifests?: ChunkRef[], byManifest?: Map<string, ChunkRef[]>, missing?: Set<string> }>
  store: Pick<Store, 'has' | 'get' | 'put' | 'putMany' | 'delete'> & Partial<Pick<Store, 'resync'>>
  /** pullRange: a Clay-coded chunk's lost fragment is rebuilt from its helpers' sub-chunk runs (clayRepair); without it, from k whole fragments. */
  swarm: Pick<Swarm, 'has' | 'pullAny' | 'push'> & Partial<Pick<Swarm, 'pullRange'>>
  /**
   * Verified slices of the fragments stored here (data/leaves.ts): a Clay repair reads this
   * host's own helper fragments' sub-chunk runs alone from disk (half a fragment at 4+2 d = 5),
   * not whole. Not given: read whole.
   */
  leaves?: Pick<LocalLeaves, 'slice'>
  /** Deletes a local copy only once its keepers promised to keep it. */
  custody: Pick<Custody, 'drop'>
  /**
   * Whether this host is placing any coding of a chunk (its CID) right now (network.ts): it may
   * act on the chunk (theirs). A repair waits for the placement instead of pushing the same
   * fragments again (from a thin writer, twice the bytes): of its own coding (`placingCoding`).
   */
  placing?: (chunk: string) => boolean
  /**
   * Whether this host is placing this coding of its chunk right now (network.ts): the repair of
   * that coding waits for the placement; another coding of the same bytes (another k) is not
   * kept waiting by it. Not given: `placing` (any coding of the chunk).
   */
  placingCoding?: (ref: ChunkRef) => boolean
  /** Where every pass and survey records what it saw of each chunk (`darkfs status` reads it). */
  health?: HealthBook
  /** Whether the chunk was written here and is still to be placed (kept in the health book meanwhile). */
  pending?: (chunk: string) => boolean
  /**
   * Given: this host fetches, in its own passes, the fragment copies it must hold that another
   * live host holds (it announces FEATURE_PULL, net/features.ts), and `pulls(peer)` tells whether
   * `peer` does too. A keeper then leaves such a copy to a target that pulls it (keeperDeliveries):
   * one fragment's bytes move, not two (fetched by the keeper, then pushed by it). Not given: the
   * keeper relays every copy itself, as hosts of older versions do.
   */
  pulls?: (peer: string) => boolean
  /**
   * The uplink (bytes/s) a host configured, this one included (`--uplink`), when known: a keeper
   * on a thin uplink leaves a chunk's rebuild to a live holder on a much faster one
   * (rebuilderOf()). Configured rates only, which every host learns alike (measured ones differ
   * from host to host, and two hosts could each take the other for the rebuilder). Not given:
   * the keeper rebuilds.
   */
  uplinkOf?: (peer: string) => number | undefined
  /**
   * Whether this host is connected to a peer now: beyond the full mesh a survey asks the
   * connected peers first and dials the others SURVEY_DIALS at a time (survey.ts). Not given:
   * SURVEY_CONCURRENCY peers at once, connected or not.
   */
  connected?: (peer: string) => boolean
}

export interface RepairProgress {
  running: boolean
  /** Chunks in the current (or last) pass, and how many were checked so far. */
  chunks: number
  checked: number
  /** Fragments delivered where they were missing, and their bytes. */
  fragmentsRepaired: number
  bytesPushed: number
  /** Bytes fetched from peers to rebuild fragments. */
  bytesFetched: number
  /** Chunks that could not be repaired in this pass (too few fragments reachable, target unreachable). */
  failed: number
  /** Local copies dropped because their targets hold them. */
  dropped: number
}

/** What every pass since this repairer started did, summed (monotonic: metrics count it). */
export interface RepairTotals {
  passes: number
  fragmentsRepaired: number
  bytesPushed: number
  bytesFetched: number
  failed: number
  /** Fragments of Clay-coded chunks rebuilt from their helpers' sub-chunks (clayRepair), not from k whole fragments. */
  clayRepairs: number
}

/**
 * Chunk health from a survey: lost only when every host that may hold the missing fragments
 * answered; short of k fragments otherwise, a chunk is unreachable (status.ts).
 */
export interface ChunkCounts { total: number, redundant: number, degraded: number, localOnly: number, lost: number, unreachable: number }

export interface PassOptions extends AbortOptions {
  /** Repair every chunk, not only those this host keeps (`darkfs heal`, leave). */
  all?: boolean
  /** Plan as if this host were gone (leave: its fragments go elsewhere; it stays a source). */
  leaving?: boolean
  /** Drop local copies this host is no longer a target of (default true unless leaving). */
  drop?: boolean
  /**
   * Skip the chunks an earlier pass found redundant under the same view, when nothing since
   * calls for a survey of every chunk (the background timer's passes; see the top of this file).
   */
  incremental?: boolean
}

/**
 * Events: 'start' (a pass starts), 'progress' (RepairProgress, as a pass goes), 'pass'
 * (RepairProgress, a pass ended),
 * 'skip' (the background timer found nothing changed and ran no pass).
 */
export class Repairer extends EventTarget {
  private readonly c: RepairComponents
  private readonly intervalMs: number
  private readonly quietIntervalMs: number
  private readonly limiter: RateLimiter
  /** RepairInit.clayPhaseMs and clayHelperWaitMs. */
  private readonly clayPhaseMs: number
  private readonly clayHelperWaitMs: number
  private progress_: RepairProgress = emptyProgress()
  private readonly totals_: RepairTotals = { passes: 0, fragmentsRepaired: 0, bytesPushed: 0, bytesFetched: 0, failed: 0, clayRepairs: 0 }
  private running?: Promise<RepairProgress>
  private timer?: ReturnType<typeof setTimeout>
  private debounce?: ReturnType<typeof setTimeout>
  private shutdown = new AbortController()
  private started = false
  private readonly onChange = (): void => { this.events++; this.dirty = true; this.full = true; this.schedule(REPAIR_DEBOUNCE_MS) }
  private readonly onActivity = (): void => { this.events++; this.dirty = true; this.full = true }
  /**
   * A member gone (failure timeout, a neighbour's DOWN notice, a leave), or one whose wait as
   * away ended ('lapsed'): beyond the full mesh, the next pass may be one for its chunks only
   * (goneOnly()), started after a random share of REPAIR_GONE_SPREAD_MS (every host hears a DOWN
   * notice within a moment, and each pass dials the hosts its chunks name). In a full mesh, a
   * pass of every chunk, as for any change.
   */
  private readonly onGone = (evt: Event): void => {
    const peer = (evt as CustomEvent<string>).detail
    if (this.c.bounded?.() !== true || typeof peer !== 'string') { this.onChange(); return }
    this.events++
    this.dirty = true
    this.goneSince.add(peer)
    this.schedule(REPAIR_DEBOUNCE_MS + Math.floor(Math.random() * REPAIR_GONE_SPREAD_MS))
  }
  /**
   * The members changed with no other event to say how ('change'): beyond the full mesh, a peer
   * no longer among the members (a DOWN notice about a member this host never connected to, a
   * drain) is taken as gone (onGone); anything else calls for a pass of every chunk at the next
   * tick, as before.
   */
  private readonly onMembersChange = (evt: Event): void => {
    const peer = (evt as CustomEvent<string>).detail
    if (this.c.bounded?.() === true && typeof peer === 'string' && !this.c.policy.members().includes(peer)) { this.onGone(evt); return }
    this.onActivity()
  }
  /** Members gone (or lapsed) since the last pass started, beyond the full mesh (onGone). */
  private readonly goneSince = new Set<string>()
  /** The members, hosts up and hosts away of the last pass that surveyed every chunk (fullView, as lists). */
  private fullParts?: ViewParts
  /** Membership events so far: a running pass looks for requeued chunks when it moved (runPass). */
  private events = 0
  /**
   * A tree op: a pass only if it changed the retained chunks (tick() compares them). Most ops
   * (a mkdir, a rename, a chmod) leave them as they were, and each had every host of the network
   * survey every chunk again.
   */
  private readonly onOps = (): void => { this.opsSince = true }
  /** Tree ops came since the last pass or check. */
  private opsSince = false
  /** The retained chunks (chunkKey()) the last settled pass looked at. */
  private settledChunks?: string
  /** The chunks the current (or last) pass looked at. */
  private passChunks?: string
  /** Something may have changed since the last pass that found nothing to do. */
  private dirty = true
  /** The members and live hosts (view()) as of the last pass that found nothing to do. */
  private settled?: string
  /** What the last pass left for the next, by reason (leftover()). */
  private left = new Map<string, number>()
  /** When that pass ended (performance.now(), ms: a wall clock stepped moves no pass). */
  private settledAt = -Infinity
  /** RepairInit.incremental. */
  private readonly incrementalPasses: boolean
  /** The next background pass surveys every chunk (not incremental): something since calls for it. */
  private full = true
  /** When the last pass that surveyed every chunk started (performance.now(), ms). */
  private fullAt = -Infinity
  /**
   * The view() under which the last pass that surveyed every chunk (and was no leave's) ran to
   * its end: a pass is incremental only under that same view. Events say most changes ('gone',
   * 'joined', 'lapsed', 'back', 'change'), not all of them (a suspect's connection closing in a
   * full mesh changes the hosts up), and whatever changed the plan of a chunk calls for every
   * chunk to be surveyed again.
   */
  private fullView?: string
  /**
   * Chunk (its coding: coding.ts codingKey, as every per-chunk map here) -> the view() under
   * which a pass last found it redundant with no copy here to hand over (or each such copy one
   * another chunk wants here: `blocked`): an incremental pass under that view skips it.
   */
  private readonly fine = new Map<string, string>()
  /**
   * Chunk (its coding) -> the blocks it would hand over, for a chunk fine only because another
   * coding of its bytes (or a chunk with an equal block) wants each of them here (the same bytes
   * at k = 1 m = 0 and k = 1 m = 1 both name the chunk's block). Skipped, it keeps those blocks here
   * as every fine chunk keeps its own; once no other coding wants one of them, it is surveyed
   * again, and the copy handed over.
   */
  private readonly blocked = new Map<string, string[]>()
  /**
   * Chunk -> the fragment indexes each host held when a survey last saw it live, kept for hosts
   * not live now while they are members or away (lazy.ts lazyPlan's `presumed`: what an away
   * host is waited for).
   */
  private readonly lastHeld = new Map<string, Map<string, number[]>>()
  /** The lazy-repair rule its plans follow (lazy.ts stopWaiting(); RepairInit.atRiskDelayMs). */
  private readonly rule: LazyRule
  /**
   * Chunk (its coding: the notice names its fragments) -> a member's word that its placement finished (placed.ts: the writer's
   * acknowledgements, or this host's own as the writer), with the view() when it came: an
   * incremental pass under that same view takes the chunk as placed without a survey
   * (provenPlaced()). Each is used by one pass, then forgotten.
   */
  private readonly acked = new Map<string, { fragments: string[], holders: string[][], view: string }>()
  /** Chunks incremental passes took as placed from acked (benches and tests read it). */
  readonly ackCounts = { taken: 0, ignored: 0, used: 0, refused: 0 }
  /** `<fragment>><target>` -> passes in a row that left that copy to its target to pull (runPass). */
  private leftToPull: ReadonlyMap<string, number> = new Map()

  constructor (components: RepairComponents, init: RepairInit = {}) {
    super()
    this.c = components
    this.intervalMs = init.intervalMs ?? DEFAULT_REPAIR_INTERVAL_MS
    this.incrementalPasses = init.incremental !== false
    this.quietIntervalMs = Math.max(this.intervalMs, init.quietIntervalMs ?? DEFAULT_REPAIR_QUIET_INTERVAL_MS)
    this.limiter = init.limiter ?? tokenBucket({ rate: init.bytesPerSecond ?? DEFAULT_REPAIR_BYTES_PER_SECOND })
    this.rule = { ...LAZY_RULE, atRiskDelayMs: init.atRiskDelayMs ?? LAZY_RULE.atRiskDelayMs }
    this.clayPhaseMs = init.clayPhaseMs ?? CLAY_PHASE_MS
    this.clayHelperWaitMs = init.clayHelperWaitMs ?? CLAY_HELPER_WAIT_MS
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.shutdown = new AbortController()
    this.c.membership.addEventListener('gone', this.onGone)
    this.c.membership.addEventListener('joined', this.onChange)
    this.c.membership.addEventListener('lapsed', this.onGone)
    this.c.membership.addEventListener('back', this.onActivity)
    this.c.membership.addEventListener('change', this.onMembersChange)
    this.c.ops?.addEventListener('ops', this.onOps)
    if (this.intervalMs > 0) this.schedule(this.intervalMs)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.c.membership.removeEventListener('gone', this.onGone)
    this.c.membership.removeEventListener('joined', this.onChange)
    this.c.membership.removeEventListener('lapsed', this.onGone)
    this.c.membership.removeEventListener('back', this.onActivity)
    this.c.membership.removeEventListener('change', this.onMembersChange)
    this.c.ops?.removeEventListener('ops', this.onOps)
    clearTimeout(this.timer)
    clearTimeout(this.debounce)
    clearTimeout(this.confirmTimer)
    this.confirmTimer = undefined
    this.confirming.clear()
    this.shutdown.abort(new Error('repair stopped'))
    // ignored: the pass was just aborted; its failure goes to pass()'s own caller
    await this.running?.catch(() => {})
  }

  /**
   * A finished placement of `chunk`, from `from`: who acknowledged each of `fragments` (placed.ts).
   * Taken only from a member (or this host), and only for a chunk of several fragments; the view
   * it came under is kept with it (a pass under another view surveys the chunk). False: ignored.
   */
  placedBy (from: string, chunk: string, fragments: string[], holders: string[][]): boolean {
    if (from !== this.c.self && !this.c.policy.members().includes(from)) { this.ackCounts.ignored++; return false }
    if (fragments.length < 2 || holders.length !== fragments.length) { this.ackCounts.ignored++; return false }
    // one coding of the chunk: a notice of another coding of the same bytes says nothing of this one
    const key = codingKeyOf(chunk, fragments)
    if (this.acked.size >= MAX_ACKED && !this.acked.has(key)) {
      // the oldest word forgotten: its chunk is surveyed, as before
      const oldest = this.acked.keys().next().value
      if (oldest !== undefined) this.acked.delete(oldest)
    }
    this.acked.delete(key)
    this.acked.set(key, { fragments, holders, view: this.view() })
    this.ackCounts.taken++
    return true
  }

  /**
   * Whether a placement notice for `chunk` (a coding key, codingKey(); a bare chunk CID: any of
   * its codings) waits for this host's next incremental pass (placedBy()).
   */
  noticed (chunk: string): boolean {
    if (this.acked.has(chunk)) return true
    if (chunk.includes(' ')) return false
    for (const key of this.acked.keys()) if (chunkOfKey(key) === chunk) return true
    return false
  }

  progress (): RepairProgress {
    return { ...this.progress_ }
  }

  /** Every pass since start, summed (the current one so far included). */
  totals (): RepairTotals {
    return { ...this.totals_ }
  }

  private schedule (ms: number): void {
    if (!this.started) return
    clearTimeout(this.debounce)
    this.debounce = setTimeout(() => {
      this.pass({ incremental: this.incrementalPasses }).then(p => {
        if (p.fragmentsRepaired > 0 || p.failed > 0 || p.dropped > 0) log('pass: %d chunk(s), %d fragment(s) repaired, %d failed, %d handed over', p.chunks, p.fragmentsRepaired, p.failed, p.dropped)
      }, (err: Error) => {
        if (this.started) log.error('pass failed: %s', err.message)
      }).finally(() => {
        clearTimeout(this.timer)
        if (this.started && this.intervalMs > 0) this.timer = setTimeout(() => { this.tick() }, this.intervalMs)
      })
    }, ms)
    this.debounce.unref?.()
  }

  /** The background timer: a pass if something may have changed, else wait another interval. */
  private tick (): void {
    if (!this.started) return
    // the safety net: every chunk surveyed (and the store checked against its disk) at least
    // once a quiet interval, whatever calls for passes meanwhile
    if (performance.now() - this.fullAt >= this.quietIntervalMs) this.full = true
    if (this.dirty || this.settled !== this.view() || performance.now() - this.settledAt >= this.quietIntervalMs) {
      this.schedule(0)
      return
    }
    if (this.opsSince) {
      // tree ops came: a pass if the retained chunks changed (read here: no message)
      this.opsSince = false
      this.c.chunks({ signal: this.shutdown.signal }).then(all => {
        if (chunkKey(all) !== this.settledChunks) this.dirty = true
      }, (err: Error) => {
        if (this.started) log('retained chunks not read (a pass looks): %s', err.message)
        this.dirty = true
      }).finally(() => {
        if (!this.started) return
        if (this.dirty) { this.schedule(0); return }
        this.dispatchEvent(new CustomEvent('skip'))
        this.timer = setTimeout(() => { this.tick() }, this.intervalMs)
      })
      return
    }
    this.dispatchEvent(new CustomEvent('skip'))
    this.timer = setTimeout(() => { this.tick() }, this.intervalMs)
  }

  /** What the last pass left for the next, by reason (empty when it settled); benches print it. */
  leftover (): Record<string, number> {
    return Object.fromEntries(this.left)
  }

  /** Why idle() is false now (benches print it). */
  why (): Record<string, boolean> {
    return { dirty: this.dirty, opsSince: this.opsSince, running: this.running !== undefined, looking: this.toLook.size > 0, viewChanged: this.settled !== this.view() }
  }

  /** The last pass found nothing to do, nothing changed since that calls for another, and no lookup of chunks it left to others runs. */
  idle (): boolean {
    return !this.dirty && !this.opsSince && this.running === undefined && this.toLook.size === 0 && this.settled === this.view()
  }

  /** What a pass's plan depends on besides the tree and the stores: members, live hosts and those away. */
  private view (): string {
    return viewKey(this.viewParts())
  }

  private viewParts (): ViewParts {
    return { members: this.c.policy.members(), up: this.up(), away: this.away() }
  }

  /**
   * The hosts a pass plans over: membership.up(), which is the connected ones in a full mesh and
   * beyond it the members taken to be up (a trimmed connection is no failure, and a view of the
   * connected peers changed with every dial and trim, each change a pass).
   */
  private up (): string[] {
    return this.c.membership.up?.() ?? this.c.membership.live()
  }

  /** Who a survey asks about a chunk: every live host in a full mesh (undefined), its first-ranked hosts beyond. */
  private askOf (members: string[]): ((ref: ChunkRef) => string[]) | undefined {
    if (this.c.bounded?.() !== true) return undefined
    return ref => this.c.policy.rank(ref, members, Math.min(members.length, ref.k + ref.m + SURVEY_SPARE_RANKS))
  }

  /** Hosts away within the repair delay (lazy.ts), less those that are members or live again. */
  private away (): string[] {
    return this.c.membership.away?.() ?? []
  }

  /** How long each away host has been away (ms; lazy.ts stopWaiting()); empty when not known. */
  private awayFor (): Map<string, number> {
    return this.c.membership.awayFor?.() ?? new Map()
  }

  /**
   * One pass over every retained chunk: survey, repair what this host keeps (or all, see
   * PassOptions), drop foreign copies. Passes never overlap: a call during a pass waits for
   * it and then runs one more, its own (and nothing else does: a pass that also scheduled
   * another when a call had waited for it made every such call arm the next, passes without end).
   */
  async pass (opts: PassOptions = {}): Promise<RepairProgress> {
    while (this.running !== undefined) {
      // ignored: that pass's failure went to its own caller; this call runs a pass of its own
      await this.running.catch(() => {})
    }
    const signal = anySignal([opts.signal, this.shutdown.signal])
    this.running = this.run({ ...opts, signal })
    try {
      return await this.running
    } finally {
      this.running = undefined
    }
  }

  /**
   * Redundancy of every retained chunk, asked of the hosts that hold them now (`darkfs status
   * --survey`, heal): per-peer messages for every chunk. What it sees goes to the health book.
   */
  async status (opts: AbortOptions = {}): Promise<ChunkCounts> {
    const end = this.c.health?.begin()
    try {
      const { refs, unreadable, byManifest, missing } = await this.c.chunks(opts)
      if (byManifest !== undefined) this.c.health?.listed(byManifest, this.c.pending ?? (() => false), missing)
      const counts: ChunkCounts = { total: refs.length + unreadable, redundant: 0, degraded: 0, localOnly: 0, lost: 0, unreachable: unreadable }
      await this.observe(refs, opts, health => { counts[health]++ })
      this.c.health?.surveyed()
      return counts
    } finally {
      end?.()
    }
  }

  private looking?: Promise<void>

  /**
   * Survey these chunks only (ones the health book has not seen yet), in the background of
   * `darkfs status`, and chunks found short of k once (a second look); one lookup at a time
   * (a call during one waits for it).
   */
  async look (refs: ChunkRef[], opts: AbortOptions = {}): Promise<void> {
    // ignored: that lookup's failure went to its own caller; this one runs a lookup of its own
    while (this.looking !== undefined) await this.looking.catch(() => {})
    const end = this.c.health?.begin()
    const signal = anySignal([opts.signal, this.shutdown.signal])
    this.looking = this.observe(refs, { signal }).finally(() => { end?.(); this.looking = undefined })
    await this.looking
  }

  /** Chunks lookLater() took, not looked at yet. */
  private readonly toLook = new Set<string>()

  /** A lookup (look()) of these chunks in the background, once; idle() waits for it. */
  private lookLater (refs: ChunkRef[]): void {
    const fresh = refs.filter(r => !this.toLook.has(codingKey(r)))
    if (fresh.length === 0 || this.c.health === undefined || !this.started) return
    for (const r of fresh) this.toLook.add(codingKey(r))
    this.look(fresh).catch((err: Error) => {
      if (this.started) log.error('looking at %d chunk(s) for status failed: %s', fresh.length, err.message)
    }).finally(() => { for (const r of fresh) this.toLook.delete(codingKey(r)) })
  }

  /** Survey `refs` in batches, record each chunk's health (book) and call `each` with it. */
  private async observe (refs: ChunkRef[], opts: AbortOptions, each: (health: Health | 'unreachable') => void = () => {}): Promise<void> {
    const members = this.c.policy.members()
    const away = this.away()
    const awayMs = this.awayFor()
    const live = this.up()
    const liveSet = new Set(live)
    const askOf = this.askOf(members)
    for (let b = 0; b < refs.length; b += REPAIR_BATCH) {
      const batch = refs.slice(b, b + REPAIR_BATCH)
      const unanswered = new Set<string>()
      const at = Date.now()
      const holdings = await survey(this.surveyor(), batch, live, { ...opts, unanswered, askOf })
      const confirm: ChunkRef[] = []
      for (const ref of batch) {
        const p = lazyPlan(ref, holdings, members, away, liveSet, this.c.self, this.c.policy, this.rule, undefined, awayMs)
        const partial = incomplete(p, liveSet, unanswered)
        // with its first-ranked members (its keeper: the first of them up when counted), ranked
        // among the list the plan ranked (placement.ts keeps one list prepared: another re-prepares it)
        const unconfirmed = this.c.health?.observe(ref, p, partial, at, liveSet.size < 2, this.c.policy.rank(ref, members, KEEPER_RANKS)) === 'confirm'
        if (unconfirmed) confirm.push(ref)
        each(p.health === 'lost' && (partial || unconfirmed) ? 'unreachable' : p.health)
      }
      this.confirmLater(confirm)
    }
  }

  private confirming = new Map<string, ChunkRef>()
  private confirmTimer?: ReturnType<typeof setTimeout>

  /** Look again, LOST_CONFIRM_MS later, at chunks one survey found short of k (status.ts: lost once confirmed). */
  private confirmLater (refs: ChunkRef[]): void {
    if (refs.length === 0 || !this.started) return
    for (const r of refs) this.confirming.set(codingKey(r), r)
    if (this.confirmTimer !== undefined) return
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = undefined
      const again = [...this.confirming.values()]
      this.confirming.clear()
      this.look(again).catch((err: Error) => {
        // the next pass looks at them again
        if (this.started) log.error('second look at %d chunk(s) short of k fragments failed: %s', again.length, err.message)
      })
    }, LOST_CONFIRM_MS + 1)
    this.confirmTimer.unref?.()
  }

  /** Health of every retained chunk planned without this host (leave checks it is not needed). */
  async healthWithout (self: string, opts: AbortOptions = {}): Promise<Record<Health, number>> {
    const { refs } = await this.c.chunks(opts)
    const out: Record<Health, number> = { redundant: 0, degraded: 0, localOnly: 0, lost: 0 }
    const members = this.c.policy.members().filter(p => p !== self)
    const live = this.up()
    const askOf = this.askOf(members)
    for (let b = 0; b < refs.length; b += REPAIR_BATCH) {
      const batch = refs.slice(b, b + REPAIR_BATCH)
      const holdings = await survey(this.surveyor(), batch, live, { ...opts, askOf })
      for (const ref of batch) out[plan(ref, holdings, members, new Set(live.filter(p => p !== self)), '', this.c.policy).health]++
    }
    return out
  }

  private surveyor (): Parameters<typeof survey>[0] {
    const connected = this.c.connected
    return {
      self: this.c.self,
      hasLocal: async cid => await this.c.store.has(cid),
      has: async (cids, peer, o) => await this.c.swarm.has(cids, peer, o),
      ...(connected !== undefined && this.c.bounded?.() === true ? { connected, dials: this.dials } : {})
    }
  }

  /** The slots of this host's surveys for peers not connected (survey.ts SURVEY_DIALS). */
  private readonly dials = limiter(SURVEY_DIALS)

  private async run (opts: PassOptions & { signal: AbortSignal }): Promise<RepairProgress> {
    // what happens from here on calls for the next pass; this one ends settled or dirty
    this.dirty = false
    this.opsSince = false
    this.passChunks = undefined
    let settled = opts.leaving !== true
    const parts = this.viewParts()
    const view = viewKey(parts)
    const gone = [...this.goneSince]
    this.goneSince.clear()
    // beyond the full mesh, a background pass after members went (and nothing else that calls
    // for a survey of every chunk) surveys their chunks only (goneOnly())
    const background = opts.incremental === true && !this.full && opts.leaving !== true && opts.all !== true
    const after = background && view !== this.fullView ? this.goneOnly(gone, parts) : undefined
    // a pass that surveys every chunk: whatever called for one is answered by this one
    const incremental = (background && view === this.fullView) || after !== undefined
    if (!incremental) { this.full = false; this.fullAt = performance.now() }
    const left = new Map<string, number>()
    const end = this.c.health?.begin()
    const started = Date.now()
    this.dispatchEvent(new CustomEvent('start'))
    try {
      const p = await this.runPass({ ...opts, incremental, after }, view, (why) => { settled = false; left.set(why, (left.get(why) ?? 0) + 1) })
      // a pass looked at every retained chunk: the book's figures are as fresh as its start
      if (opts.leaving !== true && !incremental) { this.c.health?.surveyed(started); this.fullView = view; this.fullParts = parts }
      // a pass after members went: every chunk it did not survey is as the last full pass saw it
      if (after !== undefined) { this.fullView = view; this.fullParts = parts }
      this.left = left
      if (settled) { this.settled = view; this.settledAt = performance.now(); this.settledChunks = this.passChunks }
      else if (left.size > 0) log('pass of %d chunk(s) leaves work for the next: %s', p.chunks, [...left].map(([why, n]) => `${n} ${why}`).join(', '))
      this.totals_.passes++
      this.dispatchEvent(new CustomEvent('pass', { detail: p }))
      return p
    } catch (err) {
      settled = false
      // what it skipped is surveyed by the next pass (a pass after members went: every chunk)
      if (!incremental || after !== undefined) this.full = true
      throw err
    } finally {
      end?.()
      if (!settled) this.dirty = true
    }
  }

  /**
   * Beyond the full mesh, when the only change since the last pass that surveyed every chunk is
   * that the members `gone` went (declared gone, drained, left, lapsed from away): what the next
   * pass surveys besides the chunks an incremental pass takes (goneChunks()). Undefined: a pass
   * of every chunk (a full mesh, nothing gone, or more changed than those members going).
   *
   * After a DOWN notice every host of the network hears of it within a moment, and each surveyed
   * every chunk it retains, dialling each chunk's first-ranked hosts: at 50 hosts bound 16 every
   * host dialled nearly every other at once, most dials failed past the connection bound,
   * holders went unanswered and the passes after it never settled (bench:scale). A member going
   * changes the plan only of the chunks it ranked for, and only the hosts those chunks rank first
   * (their keeper, targets and spares) act on it.
   */
  private goneOnly (gone: string[], now: ViewParts): { members: string[], fullView: string } | undefined {
    const before = this.fullParts
    if (this.c.bounded?.() !== true || gone.length === 0 || before === undefined || this.fullView === undefined) return undefined
    const g = new Set(gone)
    const awayNow = new Set(now.away)
    const expected: ViewParts = {
      members: before.members.filter(p => !g.has(p)),
      up: before.up.filter(p => !g.has(p)),
      // a member declared gone by the failure timeout may be away now (lazy.ts); one lapsed is not
      away: [...new Set([...before.away.filter(p => !g.has(p)), ...gone.filter(p => awayNow.has(p))])]
    }
    if (viewKey(expected) !== viewKey(now)) return undefined
    return { members: [...new Set([...before.members, ...gone])], fullView: this.fullView }
  }

  /** One pass; `unsettled()` when it leaves something for the next (a chunk short, copies to hand over). */
  private async runPass (opts: PassOptions & { signal: AbortSignal, after?: { members: string[], fullView: string } }, view: string, unsettled: (why: string) => void): Promise<RepairProgress> {
    // the safety net for losses no event tells of: the store's index checked against its disk
    // (while the chunks are listed; done before the survey asks this host)
    const resynced = opts.incremental !== true ? this.c.store.resync?.() : undefined
    // ignored here: awaited below, before the survey
    resynced?.catch(() => {})
    const all = await this.c.chunks(opts)
    await resynced
    // the copies this pass leaves to their targets to pull (keeperDeliveries), with how many
    // passes in a row left each: those still missing after PULL_GRACE_PASSES this pass delivers
    const pullsLeft = { before: this.leftToPull, now: new Map<string, number>() }
    this.passChunks = chunkKey(all)
    if (all.byManifest !== undefined) this.c.health?.listed(all.byManifest, this.c.pending ?? (() => false), all.missing)
    if (all.unreadable > 0) unsettled('manifests unreadable')
    const manifests = new Set(all.manifests ?? [])
    const listed = [...all.refs, ...manifests]
    // progress counts chunks, as status does; manifests are repaired alongside
    this.progress_ = { ...emptyProgress(), running: true, chunks: all.refs.length }
    const self = this.c.self
    const leaving = opts.leaving === true
    // the hosts a batch is planned over, as they are when it is surveyed: a pass over many chunks
    // on a thin uplink takes hours, and hosts go and come back meanwhile
    const viewNow = (): PassView => {
      const allLive = this.up()
      const members = this.c.policy.members().filter(p => !(leaving && p === self))
      return {
        allLive,
        members,
        askOf: this.askOf(members),
        live: new Set(allLive.filter(p => !(leaving && p === self))),
        // a leaving host plans as if gone at once: its fragments go elsewhere, whatever is away
        away: leaving ? [] : this.away(),
        awayMs: leaving ? new Map() : this.awayFor(),
        key: this.view()
      }
    }
    let v = viewNow()
    // chunks at risk first (lazy.ts byUrgency): fewest fragments on live hosts, as the last survey
    // saw them, first; never seen, last. A pass over many chunks on a thin uplink takes hours, and
    // a chunk one loss from unreadable must not wait behind ones with fragments to spare.
    const byRisk = (list: ChunkRef[], liveNow: Set<string>): ChunkRef[] => byUrgency(list.map(r => this.c.health?.liveSeen(r, liveNow) ?? r.k + r.m)).map(i => list[i])
    const ordered = byRisk(listed, new Set(v.allLive))
    // chunks found redundant under this view and nothing here to hand over (or every handover
    // blocked by another's need: `blocked`): not surveyed again by an incremental pass; each
    // fragment of theirs is kept here (dropped by no handover of another chunk), a blocked one's
    // handover blocks kept without counting as wanted (keptBlocked)
    const listedKeys = new Set(listed.map(r => codingKey(r)))
    for (const key of this.fine.keys()) if (!listedKeys.has(key)) this.fine.delete(key)
    for (const key of this.blocked.keys()) if (!listedKeys.has(key)) this.blocked.delete(key)
    for (const key of this.lastHeld.keys()) if (!listedKeys.has(key)) this.lastHeld.delete(key)
    // a pass after members went (goneOnly()): the chunks an incremental pass would take under
    // the last full pass's view, and those whose plan the members' going changed that this host
    // ranks for; every other chunk found redundant then is as it was (fine under this view too)
    const after = opts.after
    let skip = (r: ChunkRef): boolean => opts.incremental === true && this.fine.get(codingKey(r)) === view
    if (after !== undefined) {
      const theirs = goneChunks(self, listed, after.members, v.members, this.c.policy)
      const skipped = new Set(listed.filter(r => this.fine.get(codingKey(r)) === after.fullView && !theirs.has(r)))
      // (a chunk fine only while another wants its blocks here stays so: `blocked` is kept)
      for (const r of skipped) this.fine.set(codingKey(r), view)
      skip = r => skipped.has(r)
      log('pass after %d member(s) went: %d of %d chunk(s) to survey', after.members.length - v.members.length, listed.length - skipped.size, listed.length)
    }
    // beyond the full mesh an incremental pass (new content, members gone) surveys only the chunks
    // this host can act on (theirs()): every other chunk is as fine under this view as it is to
    // this host, which neither repairs, pulls nor hands over a copy of it (a full pass still
    // surveys every chunk)
    if (opts.incremental === true && v.askOf !== undefined && !leaving && opts.all !== true) {
      const askOf = v.askOf
      const others = new Set<ChunkRef>()
      for (const r of listed) {
        if (!skip(r) && !await this.theirs(r, askOf)) others.add(r)
      }
      if (others.size > 0) {
        for (const r of others) { this.fine.set(codingKey(r), view); this.blocked.delete(codingKey(r)) }
        const before = skip
        skip = r => before(r) || others.has(r)
        log('incremental pass: %d new or unsettled chunk(s) rank other hosts first, not surveyed here', others.size)
        // `darkfs status` counts every chunk this host retains: those it never saw are looked at
        // once, after the pass and apart from it (a lookup that finds holders unanswered says so
        // in the book, and is not tried again by the passes)
        this.lookLater([...others].filter(r => this.c.health?.liveSeen(r, new Set()) === undefined))
      }
    }
    // in a full mesh an incremental pass leaves a chunk to its keeper when this host has nothing
    // to do for it (placedHere()): every host of the network retains every chunk, and after a
    // write each of them surveyed each new chunk, asking every peer about every fragment; on six
    // hosts sharing two cores the six passes at once took ~12 s and starved the reads of the
    // cell after the write (issue 15: randread 56 IOPS, a read rebuilt). Its keeper still
    // surveys it and repairs what is missing; a full pass still surveys every chunk
    if (opts.incremental === true && v.askOf === undefined && !leaving && opts.all !== true && v.away.length === 0 && v.members.every(p => v.live.has(p))) {
      const others = new Set<ChunkRef>()
      for (const r of listed) {
        if (!skip(r) && !manifests.has(r) && await this.placedHere(r, v.members, v.live)) others.add(r)
      }
      if (others.size > 0) {
        for (const r of others) { this.fine.set(codingKey(r), view); this.blocked.delete(codingKey(r)) }
        const before = skip
        skip = r => before(r) || others.has(r)
        log('incremental pass: %d new chunk(s) held here as placed, left to their keepers', others.size)
      }
    }
    // an incremental pass takes as placed, without a survey, a chunk a member said it placed
    // (placed.ts: the writer's acknowledgements) under this same view, every fragment on every
    // host this view's placement puts it on, and nothing here but what is this host's: the
    // chunk's keeper surveyed each new chunk, asking every peer about every fragment, though the
    // writer's acknowledgements proved them placed (issue 15). A full pass still surveys it
    if (opts.incremental === true && !leaving && opts.all !== true && this.acked.size > 0) {
      const proven = new Map<ChunkRef, Array<Set<string>>>()
      for (const r of listed) {
        if (r.cid === null || skip(r) || manifests.has(r)) continue
        const key = codingKey(r)
        const a = this.acked.get(key)
        if (a === undefined) continue
        this.acked.delete(key)
        const held = a.view === view ? await this.provenPlaced(r, a, v.members, v.live) : undefined
        if (held === undefined) { this.ackCounts.refused++; continue }
        proven.set(r, held)
      }
      if (proven.size > 0) {
        const at = Date.now()
        for (const [r, held] of proven) {
          this.fine.set(codingKey(r), view)
          this.blocked.delete(codingKey(r))
          // the book (and the keeper's counts, kept.ts) as a survey would have found it
          if (this.c.health !== undefined) this.c.health.observe(r, { held, health: 'redundant' }, false, at, v.live.size < 2, this.c.policy.rank(r, [...v.live], KEEPER_RANKS))
        }
        this.ackCounts.used += proven.size
        const before = skip
        skip = r => before(r) || proven.has(r)
        log('incremental pass: %d new chunk(s) placed as their writers acknowledged, not surveyed', proven.size)
      }
    }
    // the chunks not yet taken into a batch, in the order they will be
    let queue = ordered.filter(r => !skip(r))
    // chunks this pass found short of k live fragments: taken again, ahead of the rest of the
    // pass, when a host they rank first comes back (requeue())
    const short = new Set<ChunkRef>()
    const again = new Set<ChunkRef>()
    const drop = opts.drop ?? !leaving
    // copies to hand over, dropped after the whole pass: a block (equal fragments of several
    // chunks) stays while any chunk wants it here
    const toDrop = new Map<string, Handover>()
    const wanted = new Set<string>()
    // the blocks a chunk skipped as blocked (`this.blocked`) would hand over: kept here this pass
    // too, but only another chunk wanting them keeps that chunk fine
    const keptBlocked = new Set<string>()
    const skippedBlocked: Array<[string, string[]]> = []
    for (const r of ordered) {
      if (!skip(r)) continue
      const drops = this.blocked.get(codingKey(r))
      if (drops !== undefined) skippedBlocked.push([codingKey(r), drops])
      for (const f of r.fragments) {
        const key = f.toString()
        if (drops?.includes(key) === true) keptBlocked.add(key)
        else wanted.add(key)
      }
      if (!manifests.has(r)) this.progress_.checked++
    }
    // chunks redundant under this view whose every copy to hand over another chunk may want here:
    // fine once the pass knows what it wants (below)
    const blockedNow = new Map<string, string[]>()
    try {
      // The pass is one pipeline: batches are surveyed one after the other, the next while
      // this one's chunks are repaired, and REPAIR_CONCURRENCY chunks are repaired at once
      // across batch boundaries (a batch's slowest chunk no longer holds up the next batch's).
      // The first batch is small and they double up to REPAIR_BATCH: repairs start once a few
      // chunks are surveyed, not every chunk of the first REPAIR_BATCH at every peer (a pass
      // after a loss spent as long surveying, before its first fetch, as repairing).
      // A batch takes its chunks from the queue when it is surveyed: when hosts went or came back
      // since the queue was ordered, it is ordered again against the hosts up now, with the
      // chunks found short whose hosts came back ahead, so a chunk a loss put at risk an hour
      // into the pass is not left for its end.
      // undefined: not surveyed yet; null: through, let go
      const batches: Array<Batch | null | undefined> = []
      let size = REPAIR_FIRST_BATCH
      const start = (i: number): Batch | null => {
        if (batches[i] === undefined) batches[i] = surveyed()
        return batches[i]!
      }
      /**
       * When hosts went or came back since the queue was ordered: the rest of it ordered again
       * against the hosts up now, and the chunks found short that a returning host ranks first
       * for (requeue()), taken out of it and returned.
       */
      const replan = (): Set<ChunkRef> => {
        const now = viewNow()
        if (now.key === v.key) return new Set()
        const back = requeue(short, v.allLive, now.allLive, now.members, this.c.policy)
        for (const r of back) { short.delete(r); again.add(r) }
        queue = byRisk(queue.filter(r => !back.has(r)), new Set(now.allLive))
        v = now
        return back
      }
      /** A batch of `items`, surveyed now over the current view; `then` once its survey answered. */
      const batchOf = (items: ChunkRef[], then?: () => void): Batch => {
        const view = v
        const unanswered = new Set<string>()
        const at = Date.now()
        const holdings = survey(this.surveyor(), items, view.allLive, { ...opts, unanswered, askOf: view.askOf })
        // within the batch, by what its survey found now: fewest surviving fragments (live, or
        // presumed on the away hosts the plan waits for) first, then fewest live (byUrgency)
        const ordered = holdings.then(h => {
          const away = new Set(view.away)
          const kept = new Set([...view.members, ...view.away])
          const planned = items.map(ref => ({ ref, p: lazyPlan(ref, h, view.members, view.away, view.live, self, this.c.policy, this.rule, this.presumed(ref, h, view.live, kept, view.away), view.awayMs) }))
          return byUrgency(planned.map(({ ref, p }) => survivingFragments(ref, p, away)), items.map(r => liveFragments(r, h, view.live))).map(x => planned[x])
        })
        if (then !== undefined) holdings.then(then, () => {}) // ignored: a failed survey starts none, its chunks' workers hear the failure
        // ignored here: awaited when the batch's chunks come, or the pass already failed
        ordered.catch(() => {})
        return { items, view, unanswered, at, holdings, ordered, done: 0 }
      }
      const surveyed = (): Batch => {
        // requeued chunks no event told of (a jump batch takes those an event did) head this batch
        const back = replan()
        if (back.size > 0) queue = byRisk([...back, ...queue], new Set(v.allLive))
        const items = queue.splice(0, size)
        size = Math.min(REPAIR_BATCH, size * 2)
        // the next batch is surveyed while this one is repaired (the chunks are other chunks)
        const i = batches.length
        return batchOf(items, () => { if (queue.length > 0 && !opts.signal.aborted) start(i + 1) })
      }
      // Chunks a returning host may bring back to k (requeue()) do not wait for the batches cut
      // already (up to two, REPAIR_BATCH chunks each: hours on a thin uplink, while the hosts
      // that hold their fragments may be gone again): when the membership told of a host back,
      // the next worker free surveys them in a batch of their own, and the workers take its
      // chunks before any other (npm run sim: the last chunk lost at 1,000 hosts had its k
      // fragments on four flaky hosts, and was short of k whenever its turn came).
      const jumps: Batch[] = []
      let jumpPos = 0
      let events = this.events
      // the next chunk to take: batch i's x-th (i -1: a jump batch), batches started as the
      // chunks come to them (most often started already, when the previous batch's survey answered)
      let cur = 0
      let pos = 0
      const nextSlot = (): { i: number, x: number, b: Batch } | undefined => {
        if (events !== this.events) {
          events = this.events
          const back = replan()
          if (back.size > 0) jumps.push(batchOf([...back]))
        }
        while (jumps.length > 0) {
          if (jumpPos < jumps[0].items.length) return { i: -1, x: jumpPos++, b: jumps[0] }
          jumps.shift()
          jumpPos = 0
        }
        for (;;) {
          let b = batches[cur]
          if (b === undefined) {
            if (queue.length === 0) return undefined
            b = start(cur)
          }
          if (b !== null && pos < b.items.length) return { i: cur, x: pos++, b }
          // every chunk of batch `cur` taken: on to the next batch, when there is one
          if (batches[cur + 1] === undefined && queue.length === 0) return undefined
          cur++
          pos = 0
        }
      }
      let failed: { err: unknown } | undefined
      const worker = async (): Promise<void> => {
        for (let slot = nextSlot(); slot !== undefined && failed === undefined; slot = nextSlot()) {
          const { i, x, b } = slot
          try {
            opts.signal.throwIfAborted()
            const holdings = await b.holdings
            const { ref, p } = (await b.ordered)[x]
            const { unanswered, at } = b
            const { live } = b.view
            // what the survey saw (before this pass repairs it: a repair that delivered every
            // fragment is recorded below); a leaving host's plan is not the network's. With it,
            // the chunk's first-ranked live hosts: its keeper counts it (kept.ts)
            const ranked = this.c.policy.rank(ref, [...live], KEEPER_RANKS)
            const observed = !leaving && !manifests.has(ref) && this.c.health !== undefined
            if (observed && this.c.health!.observe(ref, p, incomplete(p, live, unanswered), at, live.size < 2, ranked) === 'confirm') this.confirmLater([ref])
            if (p.health !== 'redundant') unsettled(p.health)
            if (p.health === 'lost') short.add(ref)
            // its keeper (placement.ts keeperOf: the first ranked), or a live holder on a much
            // faster uplink when the keeper's is thin
            const keeper = rebuilderOf(ranked[0], p, live, this.c.uplinkOf)
            const mine = opts.all === true || (keeper === self && !this.placingHere(ref))
            // hosts asked about this chunk that did not answer (a have-query cut by a trim, a
            // dial that failed): the plan takes them to hold nothing, but they may hold their
            // fragments. Rebuilt for, they got again what they held, and a fragment they held was
            // planned onto another target (bench:scale, 20 hosts: 22 deliveries for 6 fragments
            // lost, 10.5 bytes moved per byte lost). Left to the next pass, unless the chunk is at
            // risk even if each of them holds a fragment; then it is repaired, and nothing goes
            // to them. heal and leave (every chunk) repair as before.
            const blind = unsure(ref, live, unanswered, b.view.askOf)
            const wait = blind.size > 0 && opts.all !== true && p.health !== 'redundant' && p.health !== 'lost' && !atRisk(liveFragments(ref, holdings, live) + blind.size, ref.k)
            if (wait) unsettled('holders unanswered')
            const known = blind.size === 0 ? live : new Set([...live].filter(h => !blind.has(h)))
            if (wait) {
              // what they hold is asked again by the next pass
            } else if (mine && p.health !== 'redundant' && p.health !== 'lost') {
              const ok = await this.repairChunk(ref, p, holdings, known, opts, opts.all === true ? undefined : pullsLeft).catch((err: Error) => {
                if (!opts.signal.aborted) log.error('repair of chunk %s failed: %s', shortCid(ref.cid!), err.message)
                return false
              })
              if (!ok) { this.progress_.failed++; this.totals_.failed++ }
              // every fragment delivered where it must be (p.held has the acknowledgements): the
              // book (and the keeper's counts, kept.ts) say so now, not after the next pass's survey
              else if (observed && placed(p, live)) this.c.health!.observe(ref, { held: p.held, health: 'redundant' }, false, Date.now(), live.size < 2, ranked)
            } else if (mine && p.health === 'lost') {
              this.progress_.failed++
              this.totals_.failed++
            } else if (!mine && !leaving && this.c.pulls !== undefined && p.health !== 'lost' && !this.placingHere(ref)) {
              // a copy this host must hold that another live host holds: its keeper leaves it to
              // this host (keeperDeliveries), which fetches it from there itself
              const js = pullsHere(self, ref, p, keeper)
              if (js.length > 0) {
                const ok = await this.pullHere(ref, js, p, holdings, opts.signal).catch((err: Error) => {
                  if (!opts.signal.aborted) log.error('copying fragments of chunk %s here failed: %s', shortCid(ref.cid!), err.message)
                  return false
                })
                if (!ok) { this.progress_.failed++; this.totals_.failed++ }
              }
            }
            for (const key of wantedHere(self, ref, p)) wanted.add(key)
            // a chunk still pending here keeps its copies here: its placement pushes from them,
            // and rebuilds the parity it never stored from the data fragments here (network.ts
            // placeOne); it hands them over itself once every target holds its fragment
            const mineToDrop = drop && this.c.pending?.(ref.cid!.toString()) !== true ? handovers(self, ref, p, live) : []
            for (const h of mineToDrop) toDrop.set(h.cid.toString(), h)
            // a later incremental pass under this view need not ask about it again
            const key = codingKey(ref)
            this.blocked.delete(key)
            if (p.health === 'redundant' && drop && mineToDrop.length === 0 && b.view.key === view) this.fine.set(key, view)
            else {
              this.fine.delete(key)
              if (p.health === 'redundant' && drop && b.view.key === view) blockedNow.set(key, mineToDrop.map(h => h.cid.toString()))
            }
            // a chunk taken again (requeue()) was counted the first time
            if (!manifests.has(ref) && !again.has(ref)) this.progress_.checked++
            this.dispatchEvent(new CustomEvent('progress', { detail: this.progress() }))
          } catch (err) {
            // the first error fails the pass once the chunks under way are through
            failed ??= { err }
          } finally {
            // a batch's survey is let go once its last chunk is through (a pass's memory stays
            // that of a few batches)
            if (++b.done === b.items.length && i >= 0) batches[i] = null
          }
        }
      }
      await Promise.all(Array.from({ length: REPAIR_CONCURRENCY }, worker))
      if (failed !== undefined) throw failed.err
      if (opts.all !== true) this.leftToPull = pullsLeft.now
      // a chunk whose every copy to hand over another chunk wants here (review33b: the k = 1 m = 0
      // coding of a block the k = 1 m = 1 coding wants here proposed its handover on every pass,
      // and was surveyed again by every incremental pass, for ever): fine under this view, its
      // blocks kept. One skipped so whose block no chunk wants here now is surveyed again by the
      // next pass, which hands the copy over (not this one: what it last saw is a pass old)
      for (const [key, drops] of blockedNow) {
        if (drops.every(d => wanted.has(d))) { this.fine.set(key, view); this.blocked.set(key, drops) }
      }
      for (const [key, drops] of skippedBlocked) {
        if (drops.every(d => wanted.has(d))) continue
        this.fine.delete(key)
        this.blocked.delete(key)
        unsettled('copies to hand over')
      }
      const handover = [...toDrop.values()].filter(h => !wanted.has(h.cid.toString()) && !keptBlocked.has(h.cid.toString()))
      if (handover.length > 0) {
        unsettled('copies to hand over')
        this.progress_.dropped += (await this.c.custody.drop(handover, opts).catch((err: Error) => {
          // the copies stay here; the next pass hands them over again
          log.error('handing over %d copies failed: %s', handover.length, err.message)
          return []
        })).length
      }
    } finally {
      this.progress_.running = false
    }
    return this.progress()
  }

  /** Whether this host is placing `ref`'s coding of its chunk now (its repair waits for that). */
  private placingHere (ref: ChunkRef): boolean {
    return this.c.placingCoding !== undefined ? this.c.placingCoding(ref) : this.c.placing?.(ref.cid!.toString()) === true
  }

  /**
   * Whether this host may act on a chunk (beyond the full mesh): it ranks among the hosts a survey
   * asks (`askOf`: its keeper, targets and spares), places it, or holds a fragment of it (a copy to
   * hand over, a faster rebuilder). Every host retains every chunk of the tree, and after a write
   * each surveyed each new chunk, dialling its first-ranked hosts: at 50 hosts (bench:scale, bound
   * 16) 2,693 swarm dials, 1,275 of them failed, in the three minutes after 13 files, and none of
   * the 50 repairers settled in the ten minutes after (each pass left chunks with holders
   * unanswered). Local only: the rank, and this host's own store.
   */
  private async theirs (ref: ChunkRef, askOf: (ref: ChunkRef) => string[]): Promise<boolean> {
    const key = ref.cid!.toString()
    if (askOf(ref).includes(this.c.self) || this.c.pending?.(key) === true || this.c.placing?.(key) === true) return true
    for (const f of ref.fragments) if (await this.c.store.has(f)) return true
    return false
  }

  /**
   * Whether, in a full mesh with every member live, this host has nothing to do for an erasure-
   * coded chunk but hold what it holds: it is not the chunk's keeper (the first ranked live
   * member) nor could it be its rebuilder (rebuilderOf(): an uplink much faster than the keeper's),
   * it neither places the chunk nor has it pending, and it holds exactly the fragments a fresh
   * placement puts here (assignment.ts: nothing to hand over, nothing to pull). Local only: the
   * rank and this host's own store. Whether the other targets hold theirs is the keeper's to ask.
   */
  private async placedHere (ref: ChunkRef, members: string[], live: ReadonlySet<string>): Promise<boolean> {
    const key = ref.cid?.toString()
    const self = this.c.self
    if (key === undefined || ref.k < 2 || this.c.pending?.(key) === true || this.c.placing?.(key) === true) return false
    const keeper = this.c.policy.rank(ref, [...live], KEEPER_RANKS)[0]
    if (keeper === undefined || keeper === self) return false
    const own = this.c.uplinkOf?.(keeper)
    const mine = this.c.uplinkOf?.(self)
    if (own !== undefined && mine !== undefined && mine >= own / THIN_KEEPER_SHARE) return false
    const want = assignment(this.c.policy.rank(ref, members, Math.min(ref.k + ref.m, members.length)), ref.k, ref.m)
    for (const [j, f] of ref.fragments.entries()) {
      if (want[j]?.includes(self) !== await this.c.store.has(f)) return false
    }
    return true
  }

  /**
   * Who holds each fragment of `ref` by a member's word `a` (placedBy()), when that proves it
   * placed: the same fragments, each acknowledged by every host a placement among `members` puts
   * it on, all of them live, and this host holding exactly the fragments that placement gives it
   * (a copy to hand over is a survey's work). Undefined otherwise.
   */
  private async provenPlaced (ref: ChunkRef, a: { fragments: string[], holders: string[][] }, members: string[], live: ReadonlySet<string>): Promise<Array<Set<string>> | undefined> {
    const key = ref.cid?.toString()
    const self = this.c.self
    if (key === undefined || ref.k < 2 || this.c.pending?.(key) === true || this.c.placing?.(key) === true) return undefined
    if (a.fragments.length !== ref.fragments.length || !ref.fragments.every((f, j) => f.toString() === a.fragments[j])) return undefined
    if (!members.every(p => live.has(p))) return undefined
    const want = assignment(this.c.policy.rank(ref, members, Math.min(ref.k + ref.m, members.length)), ref.k, ref.m)
    const held: Array<Set<string>> = []
    for (const [j, f] of ref.fragments.entries()) {
      const mine = want[j]?.includes(self) === true
      if (mine !== await this.c.store.has(f)) return undefined
      const hs = new Set(a.holders[j].filter(h => h !== self && live.has(h)))
      if (mine) hs.add(self)
      if (want[j] === undefined || want[j].length === 0 || !want[j].every(h => hs.has(h))) return undefined
      held.push(hs)
    }
    return held
  }

  /**
   * Records what the live hosts hold of `ref` (its survey's `holdings`), keeping what hosts not
   * live were last seen holding while they are in `kept` (members or away); returns what the
   * `away` hosts were last seen holding, for lazyPlan(). Undefined when this chunk was never seen
   * before with an away host: lazyPlan() then waits for every away target, as it did.
   */
  private presumed (ref: ChunkRef, holdings: Holdings, live: ReadonlySet<string>, kept: ReadonlySet<string>, away: readonly string[]): Map<string, number[]> | undefined {
    const key = codingKey(ref)
    const before = this.lastHeld.get(key)
    const now = new Map<string, number[]>()
    ref.fragments.forEach((f, j) => {
      for (const h of holdings.get(f.toString()) ?? []) if (live.has(h)) now.set(h, [...now.get(h) ?? [], j])
    })
    for (const [h, js] of before ?? []) if (!live.has(h) && kept.has(h) && !now.has(h)) now.set(h, js)
    if (now.size > 0) this.lastHeld.set(key, now)
    else this.lastHeld.delete(key)
    if (away.length === 0 || before === undefined) return undefined
    const out = new Map<string, number[]>()
    for (const h of away) { const js = now.get(h); if (js !== undefined) out.set(h, js) }
    return out
  }

  /**
   * Rebuild the fragments missing from their live hosts (all of them in one decode) and deliver
   * them: stored here when this host must hold one, pushed in one delivery to the others. A
   * target that is not live (a suspect, maybe back within the failure timeout) is left alone: it
   * may still hold its fragment, and rebuilding for it would cost k fragments' transfer for
   * nothing; once it is declared gone, the plan no longer wants it. True when all landed.
   */
  private async repairChunk (ref: ChunkRef, p: ChunkPlan, holdings: Holdings, live: ReadonlySet<string>, opts: AbortOptions & { signal: AbortSignal }, pullsLeft?: { before: ReadonlyMap<string, number>, now: Map<string, number> }): Promise<boolean> {
    const signal = anySignal([opts.signal], REPAIR_CHUNK_TIMEOUT_MS)
    // a pass for every chunk (heal, leave: no pullsLeft) delivers every copy itself, the
    // operator waits on it; so does a pass that left a copy to its target PULL_GRACE_PASSES times
    const pulls = this.c.pulls
    const all = repairDeliveries(p, live)
    const key = (j: number, h: string): string => `${ref.fragments[j].toString()}>${h}`
    const missing = pulls === undefined || pullsLeft === undefined
      ? all
      : keeperDeliveries(all, p, live, this.c.self, (h, j) => pulls(h) && (pullsLeft.before.get(key(j, h)) ?? 0) < PULL_GRACE_PASSES)
    if (pullsLeft !== undefined) {
      for (const { j, to } of all) {
        const delivered = new Set(missing.find(x => x.j === j)?.to ?? [])
        for (const h of to) if (!delivered.has(h)) pullsLeft.now.set(key(j, h), (pullsLeft.before.get(key(j, h)) ?? 0) + 1)
      }
    }
    if (missing.length === 0) return true
    const fragments = await this.fragments(ref, missing.map(x => x.j), holdings, signal)
    const deliveries: Array<{ cid: CID, bytes: Uint8Array, to: string[] }> = []
    const here: Array<{ j: number, cid: CID, bytes: Uint8Array }> = []
    for (const { j, to } of missing) {
      const cid = ref.fragments[j]
      const bytes = fragments.get(j)!
      if (to.includes(this.c.self)) here.push({ j, cid, bytes })
      const remote = to.filter(h => h !== this.c.self)
      if (remote.length > 0) deliveries.push({ cid, bytes, to: remote })
    }
    // the copy kept here is stored while the others travel: a durable put (fsyncs) and a push
    // do not wait for each other, and the chunk counts as repaired only once both landed. Every
    // fragment at hand was checked against its CID already (the store's get and the swarm's
    // pull hash what they return, rebuildFragments what it rebuilds): neither hashes it again
    const stored = (async () => {
      if (here.length === 0) return
      await this.c.store.putMany(here, { verified: true })
      for (const { j, cid } of here) {
        p.held[j].add(this.c.self)
        holdings.get(cid.toString())?.add(this.c.self)
      }
    })()
    if (deliveries.length === 0) { await stored; return true }
    const pushed = (async () => {
      await this.limiter.take(deliveries.reduce((a, d) => a + d.bytes.byteLength * d.to.length, 0), { signal })
      return await this.c.swarm.push(deliveries, { signal, verified: true })
    })()
    const [acks] = await Promise.all([pushed, stored])
    let ok = true
    // a rebuilt (or copied) fragment a target did not take is kept here: the next pass pushes it
    // from this disk, not k - 1 fetches again (a push cut by a trim or a failed dial cost a second
    // rebuild); once its targets hold it, a handover drops the copy
    const unplaced: Array<{ cid: CID, bytes: Uint8Array }> = []
    for (const { cid, bytes, to } of deliveries) {
      const got = acks.get(cid.toString()) ?? []
      if (to.some(h => !got.includes(h)) && !ref.fragments.some((f, j) => f.equals(cid) && p.held[j].has(this.c.self))) unplaced.push({ cid, bytes })
    }
    if (unplaced.length > 0) {
      await this.c.store.putMany(unplaced, { verified: true }).catch((err: Error) => {
        // not kept: the next pass rebuilds it
        log.error('keeping %d undelivered fragment(s) of chunk %s here failed: %s', unplaced.length, shortCid(ref.cid!), err.message)
      })
    }
    for (const { cid, bytes, to } of deliveries) {
      const got = acks.get(cid.toString()) ?? []
      log('chunk %s fragment %s -> %s: acked by %s', shortCid(ref.cid!), shortCid(cid), shortPeers(to), shortPeers(got))
      ref.fragments.forEach((f, j) => { if (f.equals(cid)) for (const h of got) p.held[j].add(h) })
      for (const h of got) holdings.get(cid.toString())?.add(h)
      this.progress_.bytesPushed += bytes.byteLength * got.length
      this.progress_.fragmentsRepaired += got.length
      this.totals_.bytesPushed += bytes.byteLength * got.length
      this.totals_.fragmentsRepaired += got.length
      if (to.some(h => !got.includes(h))) ok = false
    }
    return ok
  }

  /** The bytes of fragments `wanted` of a chunk: from here, else rebuilt from any k. */
  private async fragments (ref: ChunkRef, wanted: number[], holdings: Holdings, signal: AbortSignal): Promise<Map<number, Uint8Array>> {
    const out = new Map<number, Uint8Array>()
    const have: Array<Uint8Array | undefined> = new Array(ref.fragments.length).fill(undefined)
    let count = 0
    // a Clay-coded chunk that lost one fragment, not held here nor by another live host: its
    // helpers' runs rebuild it, this host's own share read as runs too (clayRepair), not its
    // fragments whole; those are read only if that does not work out
    const clayLost = ref.clay !== undefined && this.c.leaves !== undefined && wanted.length === 1 ? wanted[0] : undefined
    let clayTried = false
    if (clayLost !== undefined && !await this.c.store.has(ref.fragments[clayLost]) && ![...(holdings.get(ref.fragments[clayLost].toString()) ?? [])].some(h => h !== this.c.self)) {
      const here: number[] = []
      for (const [j, f] of ref.fragments.entries()) if (j !== clayLost && await this.c.store.has(f)) here.push(j)
      if (here.length < ref.k) {
        clayTried = true
        const bytes = await this.clayRepair(ref, clayLost, have, holdings, signal, here)
        if (bytes !== undefined) {
          out.set(clayLost, bytes)
          return out
        }
      }
    }
    for (let j = 0; j < ref.fragments.length && count < ref.k; j++) {
      if (ref.k === 1 && count > 0) break
      const bytes = await this.local(ref.fragments[j])
      if (bytes !== undefined) { have[j] = bytes; count++ }
    }
    if (wanted.every(j => have[j] !== undefined)) {
      for (const j of wanted) out.set(j, have[j]!)
      return out
    }
    // a fragment some live host holds (a joiner takes over the copy of the host it displaces,
    // extra copies when hosts are few) is copied from there: one fragment's bytes, not k
    const copyable = wanted.filter(j => have[j] === undefined && [...(holdings.get(ref.fragments[j].toString()) ?? [])].some(h => h !== this.c.self))
    for (const j of copyable) {
      const f = ref.fragments[j]
      const from = new Map([[f.toString(), [...(holdings.get(f.toString()) ?? [])].filter(h => h !== this.c.self)]])
      const got = await this.c.swarm.pullAny([f], 1, from, { signal, background: true }).catch((err: Error) => {
        // not copied: rebuilt from any k below
        log('copy of fragment %s of chunk %s from %s failed: %s', shortCid(f), shortCid(ref.cid!), shortPeers(from.get(f.toString()) ?? []), err.message)
        return undefined
      })
      const b = got?.get(f.toString())
      if (b !== undefined) {
        ref.fragments.forEach((g, i) => { if (g.equals(f) && have[i] === undefined) have[i] = b })
        this.progress_.bytesFetched += b.byteLength
        this.totals_.bytesFetched += b.byteLength
      }
    }
    if (wanted.every(j => have[j] !== undefined)) {
      for (const j of wanted) out.set(j, have[j]!)
      return out
    }
    count = have.filter(b => b !== undefined).length
    // a Clay-coded chunk missing one fragment: rebuilt from its d helpers' sub-chunks (d / q
    // fragments' worth, 2.5 at 4+2 d = 5, less this host's own share), not from k whole ones
    const lost = wanted.filter(j => have[j] === undefined)
    if (ref.clay !== undefined && count < ref.k && lost.length === 1 && !clayTried) {
      const bytes = await this.clayRepair(ref, lost[0], have, holdings, signal)
      if (bytes !== undefined) {
        have[lost[0]] = bytes
        for (const j of wanted) out.set(j, have[j]!)
        return out
      }
    }
    if (count < ref.k) {
      const want = ref.fragments.filter((_, j) => have[j] === undefined)
      const from = new Map<string, string[]>()
      for (const f of want) from.set(f.toString(), [...(holdings.get(f.toString()) ?? [])].filter(h => h !== this.c.self))
      const got = await this.c.swarm.pullAny(want, ref.k - count, from, { signal, background: true })
      ref.fragments.forEach((f, j) => {
        const b = got.get(f.toString())
        if (b !== undefined && have[j] === undefined) { have[j] = b; this.progress_.bytesFetched += b.byteLength; this.totals_.bytesFetched += b.byteLength }
      })
    }
    // copies of one block (k = 1): the copy fetched is the fragment
    if (wanted.every(j => have[j] !== undefined)) {
      for (const j of wanted) out.set(j, have[j]!)
      return out
    }
    // every wanted fragment from one decode of the k at hand, each checked against its CID
    return rebuildFragments(ref, have, wanted)
  }

  /**
   * Fragment `lost` of a Clay-coded chunk (ref.clay; data/clay.ts), rebuilt from d helpers: from
   * each, its sub-chunks repairRuns(lost) (beta of alpha: half a fragment at 4+2 d = 5), read
   * from this host's disk where it holds the helper's fragment, else fetched as range wants of
   * whole Merkle leaves (LEAF_BYTES) of that fragment, each verified against its root
   * (ref.roots: all k + m of a Clay chunk) as it arrives; the result is checked against the
   * fragment's CID. undefined when it cannot be done that way, and the caller rebuilds from k
   * whole fragments as for Reed–Solomon: no roots, no range pulls, a column mate (clay.ts
   * columnMates) or enough helpers without a live holder, sub-chunks not on leaf boundaries (a
   * file's short last chunk, wide codes: their runs would read whole leaves around them), a
   * helper that did not deliver, or a result its CID refuses.
   */
  private async clayRepair (ref: ChunkRef, lost: number, have: Array<Uint8Array | undefined>, holdings: Holdings, signal: AbortSignal, sliced?: number[]): Promise<Uint8Array | undefined> {
    const pullRange = this.c.swarm.pullRange?.bind(this.c.swarm)
    const roots = ref.roots
    const n = ref.k + ref.m
    if (pullRange === undefined || roots === undefined || roots.length !== n || ref.cid === null) return undefined
    const code = clayCode(ref.k, ref.m, ref.clay!)
    const size = code.fragmentSize(ref.size)
    const s = size / code.alpha
    if (s % LEAF_BYTES !== 0) return undefined
    const runs = code.repairRuns(lost)
    if (runs.some(r => r.count * s / LEAF_BYTES > MAX_RANGE_LEAVES)) return undefined
    const holders = (j: number): string[] => [...(holdings.get(ref.fragments[j].toString()) ?? [])].filter(h => h !== this.c.self)
    // this host's own fragments first (they cost no transfer), then those live hosts hold
    // (`sliced`: the fragments here, read as runs through this.c.leaves, not given whole in `have`)
    const mine = (j: number): boolean => have[j] !== undefined || sliced?.includes(j) === true
    const here = ref.fragments.map((_, j) => j).filter(j => j !== lost && mine(j))
    const there = ref.fragments.map((_, j) => j).filter(j => j !== lost && !mine(j) && holders(j).length > 0)
    const helpers = code.repairHelpers(lost, [...here, ...there])
    if (helpers === undefined) {
      log('chunk %s: fragment %d has no %d Clay helpers with its column mates (%d here, %d live elsewhere): rebuilt from k', shortCid(ref.cid), lost, code.d, here.length, there.length)
      return undefined
    }
    const helped: Array<Uint8Array | undefined> = new Array(n).fill(undefined)
    // the helpers' phase has a bound of its own (a helper's holders are asked one after another,
    // clayHelperWaitMs each): the fallback to k whole fragments keeps the rest of the chunk's
    // time, and the first helper that fails stops the others' pulls
    const stop = new AbortController()
    const phase = boundedSignal([signal, stop.signal], this.clayPhaseMs)
    try {
      await Promise.all(helpers.map(async h => {
        const out = new Uint8Array(code.beta * s)
        let at = 0
        const parts = await Promise.all(runs.map(async ({ start, count }) => {
          const from = start * s
          const to = (start + count) * s
          const own = have[h]
          if (own !== undefined) return own.subarray(from, to)
          const first = from / LEAF_BYTES
          const end = to / LEAF_BYTES
          const root = roots[h]
          if (sliced?.includes(h) === true) {
            // this host's own: the run's leaves alone from disk, each checked (against the root too)
            const got = await this.c.leaves!.slice(ref.fragments[h], first, end, root)
            if (got === undefined || got.bytes.byteLength !== to - from) throw new Error(`leaves [${first}, ${end}) of fragment ${h} not read here`)
            return got.bytes
          }
          const bytes = await pullRange({ cid: ref.fragments[h], first, end, verify: (b, proof) => verifyRange(root, size, first, end, b, proof) }, holders(h), { signal: phase.signal, waitMs: this.clayHelperWaitMs })
          if (bytes.byteLength !== to - from) throw new Error(`leaves [${first}, ${end}) of fragment ${h} came as ${bytes.byteLength} bytes, not ${to - from}`)
          this.progress_.bytesFetched += bytes.byteLength
          this.totals_.bytesFetched += bytes.byteLength
          return bytes
        }))
        for (const p of parts) { out.set(p, at); at += p.byteLength }
        helped[h] = out
      }))
    } catch (err) {
      stop.abort(err)
      signal.throwIfAborted()
      log('chunk %s: Clay helpers for fragment %d did not all deliver, rebuilt from k: %s', shortCid(ref.cid), lost, (err as Error).message)
      return undefined
    } finally {
      phase.clear()
    }
    const bytes = code.repair(lost, helped)
    if (!matches(ref.fragments[lost], bytes)) {
      log.error('chunk %s: fragment %d repaired from Clay helpers to the wrong bytes, rebuilt from k', shortCid(ref.cid), lost)
      return undefined
    }
    this.totals_.clayRepairs++
    return bytes
  }

  /**
   * Fetches fragments `js` of `ref` (pullsHere: wanted here, held by another live host) from
   * their live holders and stores them here. True when all landed.
   */
  private async pullHere (ref: ChunkRef, js: number[], p: ChunkPlan, holdings: Holdings, passSignal: AbortSignal): Promise<boolean> {
    const signal = anySignal([passSignal], REPAIR_CHUNK_TIMEOUT_MS)
    const cids = [...new Map(js.map(j => [ref.fragments[j].toString(), ref.fragments[j]])).values()]
    const from = new Map(cids.map(f => [f.toString(), [...p.held.flatMap((hs, j) => ref.fragments[j].equals(f) ? [...hs] : [])].filter(h => h !== this.c.self)]))
    const got = await this.c.swarm.pullAny(cids, cids.length, from, { signal, background: true })
    const blocks = cids.flatMap(cid => { const bytes = got.get(cid.toString()); return bytes === undefined ? [] : [{ cid, bytes }] })
    if (blocks.length === 0) return false
    // the swarm's pull hashed what it returned
    await this.c.store.putMany(blocks, { verified: true })
    for (const { cid, bytes } of blocks) {
      ref.fragments.forEach((f, j) => { if (f.equals(cid)) p.held[j].add(this.c.self) })
      holdings.get(cid.toString())?.add(this.c.self)
      log('chunk %s fragment %s copied here from %s', shortCid(ref.cid!), shortCid(cid), shortPeers(from.get(cid.toString()) ?? []))
      this.progress_.bytesFetched += bytes.byteLength
      this.totals_.bytesFetched += bytes.byteLength
      this.progress_.fragmentsRepaired++
      this.totals_.fragmentsRepaired++
    }
    return blocks.length === cids.length
  }

  private async local (cid: CID): Promise<Uint8Array | undefined> {
    try {
      if (!await this.c.store.has(cid)) return undefined
      return await this.c.store.get(cid)
    } catch (err) {
      // unusable here: fetched (or rebuilt) from the other holders instead
      log.error('local fragment %s unreadable: %s', shortCid(cid), (err as Error).message)
      return undefined
    }
  }
}

/** The hosts a batch of a pass is surveyed and planned over (Repairer.runPass viewNow()). */
interface PassView {
  allLive: string[]
  members: string[]
  askOf: ((ref: ChunkRef) => string[]) | undefined
  live: Set<string>
  away: string[]
  /** How long each of `away` had been away then (ms). */
  awayMs: ReadonlyMap<string, number>
  /** Repairer.view() as of then: the view changed when this did. */
  key: string
}

/**
 * A keeper whose known uplink is under this share of a live holder's leaves the chunk's rebuild
 * to the fastest such holder (rebuilderOf()).
 */
export const THIN_KEEPER_SHARE = 0.25

/**
 * The live host that rebuilds and delivers chunk `p`'s missing fragments: its keeper, unless the
 * keeper's uplink is known and under THIN_KEEPER_SHARE of a live holder's; then the live holder
 * of a fragment with the fastest known uplink (equal ones: the smallest peer id, so every host
 * names the same one). A keeper on a thin uplink pushes through a repair cap of 64 KiB/s, and a
 * neighbourhood of them held chunks at k live fragments for days while a holder on fibre idled
 * (npm run sim, 1,000 hosts, seed 15: chunks lost whose last holders left 15 days apart). The
 * holder holds a fragment already, so the rebuild reads no more than the keeper's (k - 1). An
 * uplink not known (`uplinkOf` undefined, or no rate for the peer) changes nothing: the keeper.
 */
export function rebuilderOf (keeper: string | undefined, p: Pick<ChunkPlan, 'held'>, live: ReadonlySet<string>, uplinkOf?: (peer: string) => number | undefined): string | undefined {
  if (keeper === undefined || uplinkOf === undefined) return keeper
  const own = uplinkOf(keeper)
  if (own === undefined) return keeper
  let best = keeper
  let bestRate = own / THIN_KEEPER_SHARE
  for (const hs of p.held) {
    for (const h of hs) {
      if (h === keeper || !live.has(h)) continue
      const rate = uplinkOf(h)
      if (rate === undefined) continue
      if (rate > bestRate || (rate === bestRate && best !== keeper && h < best)) { best = h; bestRate = rate }
    }
  }
  return best
}

/**
 * The chunks a pass found short of k live fragments that it takes again, ahead of the rest of
 * the pass (in a batch of their own, surveyed at once, when the membership told of a host back;
 * the simulator runs it too, harness/sim/churn.ts): those one of whose first-ranked hosts (its
 * targets and SURVEY_SPARE_RANKS more, where its fragments are) is up `now` and was not `before`. Such a chunk was planned when too few of
 * its holders were up to rebuild it; left for the next pass, it waited for the end of this one,
 * hours on a thin uplink, one loss from unreadable (npm run sim: chunks lost in a neighbourhood
 * whose leavers came weeks apart). Only chunks a returning host ranks for: a pass under churn
 * does not survey every short chunk again each time any host comes back.
 */
export function requeue (short: Iterable<ChunkRef>, before: readonly string[], now: readonly string[], members: string[], policy: Pick<PlacementPolicy, 'rank'>): Set<ChunkRef> {
  const was = new Set(before)
  const back = new Set(now.filter(h => !was.has(h)))
  const out = new Set<ChunkRef>()
  if (back.size === 0) return out
  for (const r of short) if (policy.rank(r, members, Math.min(members.length, r.k + r.m + SURVEY_SPARE_RANKS)).some(h => back.has(h))) out.add(r)
  return out
}

/**
 * The live hosts a survey was to ask about `ref` (every live peer in a full mesh; beyond it
 * those `askOf` names) that did not answer: what they hold of it is not known.
 */
export function unsure (ref: ChunkRef, live: ReadonlySet<string>, unanswered: ReadonlySet<string>, askOf?: (ref: ChunkRef) => string[]): Set<string> {
  if (unanswered.size === 0) return new Set()
  const asked = askOf === undefined ? [...live] : askOf(ref)
  return new Set(asked.filter(h => live.has(h) && unanswered.has(h)))
}

/**
 * The deliveries a chunk's repair makes, as a pure function of its plan (the simulator runs it,
 * scripts/sim): for each fragment j, the live hosts the plan wants it on that do not hold it. A
 * target that is not live (a suspect, maybe back within the failure timeout) is left out: it
 * may still hold its fragment, and rebuilding for it would cost k fragments for nothing.
 */
export function repairDeliveries (p: Pick<ChunkPlan, 'want' | 'held'>, live: ReadonlySet<string>): Array<{ j: number, to: string[] }> {
  const missing: Array<{ j: number, to: string[] }> = []
  p.want.forEach((hosts, j) => {
    const to = hosts.filter(h => !p.held[j].has(h) && live.has(h))
    if (to.length > 0) missing.push({ j, to })
  })
  return missing
}

/**
 * The deliveries of `missing` (repairDeliveries) a keeper makes itself, as a pure function of the
 * chunk's plan: all of them, less a copy for a target that pulls (`pulls`, FEATURE_PULL): a
 * fragment the keeper does not hold but another live host does, which that target fetches from
 * there in its own pass (pullsHere). The keeper would fetch it and push it again: two fragments'
 * bytes for one (a host joining 6 hosts of a 4+2 code: 2.1 bytes moved per byte it took over,
 * scripts/bench/repair.ts). What the keeper holds, must hold too, or must rebuild it still
 * delivers itself.
 * `pulls(peer, j)`: whether `peer` pulls fragment j (not given: every delivery is the keeper's).
 */
export function keeperDeliveries (missing: Array<{ j: number, to: string[] }>, p: Pick<ChunkPlan, 'held'>, live: ReadonlySet<string>, self: string, pulls?: (peer: string, j: number) => boolean): Array<{ j: number, to: string[] }> {
  if (pulls === undefined) return missing
  const out: Array<{ j: number, to: string[] }> = []
  for (const { j, to } of missing) {
    // a copy the keeper must hold itself it fetches anyway, and pushes on from here (one fragment
    // each way, and no wait for the target's pass)
    const copyable = !p.held[j].has(self) && !to.includes(self) && [...p.held[j]].some(h => h !== self && live.has(h))
    const mine = copyable ? to.filter(h => !pulls(h, j)) : to
    if (mine.length > 0) out.push({ j, to: mine })
  }
  return out
}

/**
 * The fragments of `ref` a host that pulls (FEATURE_PULL) fetches itself when it is not the
 * chunk's keeper: those its plan wants on `self` that it lacks and another live host holds, and
 * that `keeper` neither holds nor must hold (those the keeper pushes: keeperDeliveries). One
 * index per block (copies of a replicated chunk are one block).
 */
export function pullsHere (self: string, ref: Pick<ChunkRef, 'fragments'>, p: Pick<ChunkPlan, 'want' | 'held'>, keeper: string | undefined): number[] {
  const seen = new Set<string>()
  const out: number[] = []
  p.want.forEach((hosts, j) => {
    const key = ref.fragments[j].toString()
    if (!hosts.includes(self) || seen.has(key)) return
    // held under any of its indexes (a replicated chunk's copies are index 0 of the plan)
    const holders = p.held.flatMap((hs, i) => ref.fragments[i].toString() === key ? [...hs] : [])
    if (holders.includes(self) || !holders.some(h => h !== self)) return
    // the keeper delivers what it holds or fetches for itself anyway
    if (keeper !== undefined && (holders.includes(keeper) || p.want.some((hs, i) => ref.fragments[i].toString() === key && hs.includes(keeper)))) return
    seen.add(key)
    out.push(j)
  })
  return out
}

/** One batch of a pass: its survey (started when the previous batch's answered), its chunks in repair order with their plans, how many are through. */
interface Batch { items: ChunkRef[], view: PassView, unanswered: Set<string>, at: number, holdings: Promise<Holdings>, ordered: Promise<Array<{ ref: ChunkRef, p: ChunkPlan }>>, done: number }

/** How many sorted coding keys chunkKey() hashes at a time (joined: ~0.5 MB). */
const CHUNK_KEY_RUN = 4096

/**
 * The retained chunks and manifests, as a digest of their sorted coding keys (equal when they
 * are the same). Not the keys joined: at 262,144 chunks that string was ~32 MB, and a repairer
 * holds two (the last settled pass's and this pass's); the keys are each ref's own (coding.ts).
 */
function chunkKey (all: { refs: ChunkRef[], unreadable: number, manifests?: ChunkRef[] }): string {
  const keys = [...all.refs, ...(all.manifests ?? [])].map(r => r.cid === null ? '' : codingKey(r)).sort()
  const hash = createHash('sha256').update(`${all.unreadable}|${keys.length}\n`)
  for (let i = 0; i < keys.length; i += CHUNK_KEY_RUN) hash.update(keys.slice(i, i + CHUNK_KEY_RUN).join('\n') + '\n')
  return hash.digest('base64')
}

function emptyProgress (): RepairProgress {
  return { running: false, chunks: 0, checked: 0, fragmentsRepaired: 0, bytesPushed: 0, bytesFetched: 0, failed: 0, dropped: 0 }
}

/** What a pass's plan depends on besides the tree and the stores (Repairer.view()). */
interface ViewParts { members: string[], up: string[], away: string[] }

function viewKey (v: ViewParts): string {
  return [...v.members].sort().join(',') + '|' + [...v.up].sort().join(',') + '|' + [...v.away].sort().join(',')
}

/**
 * The chunks of `refs` whose first-ranked hosts (targets and SURVEY_SPARE_RANKS more, as a
 * survey asks them) differ between the members `before` and `now` (a member gone ranked for
 * them, or one after it moved up), among which `self` ranks now: those a pass after members went
 * surveys (Repairer.goneOnly()). Their keeper, targets and spares are among those hosts; every
 * other host neither repairs, pulls nor hands over a copy of them. Each list is ranked in one
 * run (placement.ts keeps the last member list prepared).
 */
export function goneChunks (self: string, refs: ChunkRef[], before: string[], now: string[], policy: Pick<PlacementPolicy, 'rank'>): Set<ChunkRef> {
  const width = (r: ChunkRef, members: string[]): number => Math.min(members.length, r.k + r.m + SURVEY_SPARE_RANKS)
  const was = refs.map(r => policy.rank(r, before, width(r, before)))
  const out = new Set<ChunkRef>()
  refs.forEach((r, i) => {
    const is = policy.rank(r, now, width(r, now))
    if (!is.includes(self)) return
    if (is.length !== was[i].length || is.some((h, x) => h !== was[i][x])) out.add(r)
  })
  return out
}
