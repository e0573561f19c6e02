// Repair under churn, in virtual time (issue 14 item 7): a churn trace (hosts away for minutes,
// hours or days and back, some gone for good, some joining) played against a sample of chunks,
// with darkfs's own decisions at every step:
//  - failure: a host away for the failure timeout (node/net/failure.ts
//    DEFAULT_FAILURE_TIMEOUT_MS) is declared gone; one back before it never stopped being a
//    member (a suspect is still ranked by placement);
//  - the plan: which hosts must hold each fragment and the chunk's health is node/keeper's plan()
//    (survey.ts: XOR targets among the members, assignment.ts: fragments stay where they are);
//  - the keeper is keeper() (the closest live host), what it delivers is repairDeliveries()
//    (only live targets that lack their fragment), and copies are dropped by handovers()
//    (rebalance.ts: only once every host that must hold the fragment does);
//  - the repair traffic cap is repairRate() of the keeper's upload cap (repair.ts: half of it,
//    at least 64 KiB/s; net/uplink.ts uploadCap(): 0.8 of the uplink), as the daemon sets it
//    for a host started with `--uplink` (without it the cap is 64 MiB/s: the whole link);
//  - lazy repair: a host declared gone stays away for the repair delay (net/failure.ts
//    repairDelay(), counted from its disconnect), and each chunk is planned by lazyPlan()
//    (keeper/lazy.ts: the away hosts count as members while the chunk keeps a fragment to
//    spare); when the delay ends ('lapsed') the chunks it touches get a pass;
//  - requeue (order 'urgent'): a chunk its last pass found short of k live fragments that a host
//    back ranks first for (repair.ts requeue()) is passed again ahead of every repair its keeper
//    has queued, at risk or not (the Repairer surveys such chunks in a batch of their own that its
//    workers take before the batches cut already): a chunk whose k fragments sit on flaky hosts
//    is rebuilt while they are up, not when its turn comes behind sampled repairs hours long.
// What is modelled here, not run: the survey's answers (who holds what is known exactly, for
// live hosts), and the reads of a rebuild, which follow repair.ts fragments(): fragments held
// by the keeper cost nothing, a wanted fragment a live host holds is copied (one fragment's
// bytes), and the rest is decoded from k fragments (k less those at hand, fetched).
//
// Bytes move in virtual time over the hosts' uplinks (events.ts): fetches over the holders'
// uplinks, pushes over the keeper's and through its repair cap (fetches are not counted there, as
// in repair.ts: they come in on the keeper's downlink). A
// repair lands when its last push arrives. Chunks are sampled: each sampled chunk stands for
// `scale` real chunks (the data the disks hold divided by the sample), so a sampled fragment
// occupies an uplink as long as the fragments it stands for would, and bytes are counted at full
// scale. A keeper plans a chunk when its repair cap gets to it (its earlier repairs still using
// it defer the pass), so a plan is never older than the bytes it moves. Approximations: a
// transfer whose source goes away midway still lands, and so does one whose target is away (not
// gone for good) when it ends; a pass is one event per chunk (debounced as
// the Repairer debounces), not a sweep over every chunk; a sampled chunk's repair is one transfer
// of `scale` fragments between the same hosts (in darkfs those chunks' keepers and holders are
// the same XOR neighbourhood, so the load lands on the same few uplinks).
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import {
  DEFAULT_REPAIR_INTERVAL_MS, REPAIR_CHUNK_TIMEOUT_MS, REPAIR_DEBOUNCE_MS, SURVEY_SPARE_RANKS, atRisk, closest, compareDistance, handovers, keyKadId, lazyPlan, peerKadId, rebuilderOf, repairDeliveries, repairRate, requeue
} from '../../node/keeper/index.ts'
import type { AtRiskClock, ChunkPlan, Holdings } from '../../node/keeper/index.ts'
import { LAZY_RULE } from '../../node/keeper/index.ts'
import { rankByRule } from '../../node/keeper/index.ts'
import { uploadCap } from '../../node/net/index.ts'

import type { ChunkRef } from '../../node/data/index.ts'
import { PLACEMENT_BALANCED } from '../../node/data/index.ts'

/** The sim's chunks carry no placement rule: plan() ranks them as darkfs ranks such refs (XOR-closest). */
const noWeights = new Map<string, number>()
/** Kad ids of the simulated peers (simHosts(): peerKadId() of each), registered by runChurn(). */
const simKadIds = new Map<string, Uint8Array>()
/** Kad ids of the sampled chunks' CIDs, by CID object. */
const cidKadIds = new WeakMap<object, Uint8Array>()

/**
 * rankByRule() of a ref without a rule: darkfs's own ranking (node/net/kad.ts closest(), which
 * targets() runs: the members by XOR distance of their kad ids from sha256 of the CID, ties by
 * peer id), the CID's kad id and the peers' looked up instead of derived (targets() hashes the
 * CID on each call, and a sampled chunk is ranked at every pass of its keeper). runChurn()
 * checks the ids on its first chunks, test/sim/churn.test.ts on random member lists; a balanced
 * ref goes to rankByRule() itself.
 */
export function simXorRank (ref: Pick<ChunkRef, 'cid' | 'rule'>, members: string[], n: number): string[] {
  if (ref.cid === null || ref.rule === PLACEMENT_BALANCED) return rankByRule(ref, members, n, () => noWeights)
  let target = cidKadIds.get(ref.cid)
  if (target === undefined) { target = keyKadId(ref.cid.bytes); cidKadIds.set(ref.cid, target) }
  return closest(target, members, n, simKadId)
}
const simKadId = (peer: string): Uint8Array => simKadIds.get(peer) ?? peerKadId(peer)
const xorRank = simXorRank
import { EventQueue, Uplinks } from './events.ts'
import { KeySpace } from './keyspace.ts'
import type { SimHost } from './hosts.ts'

const HOUR = 3600_000
const DAY = 24 * HOUR

/** Uplinks of a community network, bits/s, with their shares: most on ADSL, some on fibre. */
export const UPLINK_MIX: Array<[number, number]> = [[1e6, 0.6], [20e6, 0.3], [100e6, 0.1]]

export function simUplink (rand: () => number): number {
  let r = rand()
  for (const [rate, share] of UPLINK_MIX) {
    if (r < share) return rate
    r -= share
  }
  return UPLINK_MIX[UPLINK_MIX.length - 1][0]
}

/**
 * How long a host is away, ms: a reboot or a network blip (30 s to 3 min), an evening or a night
 * off (30 min to 8 h, log-uniform), or days (1 to 3 days: a holiday, a broken router).
 */
export const OUTAGE_MIX: Array<[share: number, from: number, to: number]> = [
  [0.4, 30_000, 3 * 60_000], [0.5, 30 * 60_000, 8 * HOUR], [0.1, DAY, 3 * DAY]
]

export function outageLength (rand: () => number): number {
  let r = rand()
  for (const [share, from, to] of OUTAGE_MIX) {
    if (r < share) return Math.exp(Math.log(from) + rand() * (Math.log(to) - Math.log(from)))
    r -= share
  }
  return OUTAGE_MIX[0][1]
}

export type TraceKind = 'down' | 'up' | 'leave' | 'join'
export interface TraceEvent { t: number, host: number, kind: TraceKind }

export interface TraceOptions {
  /** Hosts at the start (indexes 0..hosts-1). */
  hosts: number
  /** Hosts that join during the trace (indexes hosts..hosts+joiners-1), at uniform times. */
  joiners: number
  /** Hosts (of those at the start) that leave for good, silently, at uniform times. */
  leavers: number
  /** Length of the trace, ms. */
  duration: number
  /** Outages per host per hour while it is up (0.1: a tenth of the hosts leave each hour). */
  churnPerHour: number
}

/** A churn trace, in time order (ties in host order). */
export function churnTrace (o: TraceOptions, rand: () => number): TraceEvent[] {
  const events: TraceEvent[] = []
  const leaveAt = new Float64Array(o.hosts + o.joiners).fill(Infinity)
  const joinAt = new Float64Array(o.hosts + o.joiners)
  // the leavers: a random subset, each at a uniform time
  const order = Array.from({ length: o.hosts }, (_, i) => i)
  for (let i = order.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [order[i], order[j]] = [order[j], order[i]] }
  for (const h of order.slice(0, o.leavers)) leaveAt[h] = rand() * o.duration
  for (let h = o.hosts; h < o.hosts + o.joiners; h++) { joinAt[h] = rand() * o.duration; events.push({ t: joinAt[h], host: h, kind: 'join' }) }
  for (let h = 0; h < o.hosts + o.joiners; h++) {
    if (leaveAt[h] < Infinity) events.push({ t: leaveAt[h], host: h, kind: 'leave' })
    if (!(o.churnPerHour > 0)) continue
    let t = joinAt[h]
    for (;;) {
      t += -Math.log(1 - rand()) / o.churnPerHour * HOUR
      if (t >= Math.min(o.duration, leaveAt[h])) break
      const back = t + outageLength(rand)
      events.push({ t, host: h, kind: 'down' })
      // one still away when it leaves for good never comes back; the trace's end cuts nothing
      if (back >= leaveAt[h]) break
      events.push({ t: back, host: h, kind: 'up' })
      t = back
    }
  }
  return events.sort((a, b) => a.t - b.t || a.host - b.host)
}

/** The trace less its temporary outages: what an oracle that repairs permanent losses only sees. */
export function permanentOnly (trace: TraceEvent[]): TraceEvent[] {
  return trace.filter(e => e.kind === 'join' || e.kind === 'leave')
}

export interface ChurnOptions {
  /** Every host of the run (those at the start, then the joiners), with their disks. */
  hosts: SimHost[]
  /** Uplinks of every host, bits/s. */
  uplinks: number[]
  /** Hosts at the start. */
  initial: number
  trace: TraceEvent[]
  /** Sampled chunks, and how many real chunks each stands for. */
  chunks: number
  scale: number
  k: number
  m: number
  chunkBytes: number
  failureTimeoutMs: number
  /**
   * Time a host may be away (from its disconnect) before its chunks are repaired whatever their
   * spare (net/failure.ts repairDelay(); default here: the failure timeout, no lazy window; darkfs's is 72 h).
   */
  repairDelayMs?: number
  /** Fragments beyond k a chunk keeps on live hosts to wait for its away holders (lazy.ts REPAIR_SPARE by default). */
  repairSpare?: number
  /**
   * How long a chunk at k + spare live waits for its away holders before one is rebuilt, and
   * what that is counted from (lazy.ts AT_RISK_DELAY_MS, AT_RISK_CLOCK by default).
   */
  atRiskDelayMs?: number
  atRiskClock?: AtRiskClock
  /** The order a keeper takes the chunks waiting for its repair cap in (default 'fifo'; the Repairer's is 'urgent'). */
  order?: 'fifo' | 'urgent'
  /**
   * A chunk its last pass found short of k live fragments that a returning host ranks first for
   * (repair.ts requeue()) is passed again at once, ahead of every repair its keeper has queued,
   * urgent or not (the Repairer surveys such chunks in a batch of their own that its workers take
   * before the batches already cut). Default: with order 'urgent'.
   */
  jump?: boolean
  latencyMs: number
  /** Virtual time the run covers (ms). */
  duration: number
  /**
   * Who rebuilds a chunk: 'holder' (darkfs's, repair.ts rebuilderOf()): its keeper, or a live
   * holder on a much faster uplink when the keeper's is thin; 'keeper': the keeper always.
   */
  rebuilder?: 'keeper' | 'holder'
  /** Reads sampled (finding who holds a fragment) this often, ms; 0: none. */
  lookupEveryMs?: number
  /** How long a DOWN notice takes to reach a reader (the gossip's dissemination delay), ms. */
  noticeDelayMs?: number
  /** Chunk keys are drawn from this. */
  rand: () => number
  /** Tracing (scripts/sim/trace-chunk.ts): what happens to this sampled chunk, and the repairs this host keeps, to watchLog. */
  watch?: number
  watchKeeper?: number
  watchLog?: (line: string) => void
}

export interface ChurnResult {
  /** Repair traffic over the run, bytes at full scale: fetched to rebuild or copy, and pushed. */
  bytesFetched: number
  bytesPushed: number
  /** Fragments delivered (at full scale). */
  fragmentsRepaired: number
  /** Copies dropped by handovers (at full scale). */
  fragmentsDropped: number
  /** Sampled chunks with fewer than k fragments on disks that still exist, at the end. */
  chunksLost: number
  /** Their indexes. */
  lost: number[]
  /**
   * Of those, chunks whose last m + 1 fragment losses (their last holder left for good) came
   * within one failure timeout: lost before any repair could start, whatever the policy; and for
   * every lost chunk, the time those m + 1 losses spanned (ms).
   */
  chunksLostUnavoidable: number
  lostSpansMs: number[]
  /** Share of chunk-time with fewer than k fragments on live hosts (sampled every UNAVAILABLE_SAMPLE_MS). */
  unavailableShare: number
  /**
   * No fragment to spare, sampled every MARGIN_SAMPLE_MS: share of chunk-time with k live
   * fragments or fewer (one more host away and the chunk is unreadable), and how long each such
   * spell lasted (ms, to the sample that found it over; one still on at the end: to the end);
   * the same for k fragments or fewer on disks that still exist ('exposed': one more disk lost
   * and the chunk is lost).
   */
  atKShare: number
  atKSpellsMs: number[]
  exposedShare: number
  exposedSpellsMs: number[]
  /** Hosts declared gone (failure timeout), and those of them that came back after. */
  declaredGone: number
  returnedAfterGone: number
  /** Outages shorter than the failure timeout. */
  backInTime: number
  /** Hosts declared gone that were away within the repair delay, those back within it, and those whose delay ended. */
  awayDeclared: number
  backWithinDelay: number
  lapsed: number
  /** Hosts declared gone that were still away at the at-risk delay. */
  overdue: number
  /**
   * Passes whose reads could not start within REPAIR_CHUNK_TIMEOUT_MS (their holders' uplinks
   * busy): left to a later pass, as darkfs's timeout leaves them.
   */
  deferred: number
  /** Repairs (chunk deliveries) and their duration from start to last push landed, ms. */
  repairs: number
  repairMs: number[]
  /** Extra round trips of sampled reads (rounds - 1), and reads that found too few fragments. */
  lookupRounds: number[]
  lookupsFailed: number
  /** Events the queue ran; plans computed. */
  events: number
  plans: number
  /** Repair bytes each host sent (at full scale). */
  sentByHost: Float64Array
  /** Sampled fragments each host holds on its disk, at the start and at the end. */
  fragmentsAtStart: Uint32Array
  fragmentsAtEnd: Uint32Array
  /** Sampled chunks whose every fragment is on a distinct live member at the end (their plan's health 'redundant'). */
  redundantAtEnd: number
}

/**
 * When a pass whose reads can start at `startBy` at the earliest is passed again, as darkfs's
 * REPAIR_CHUNK_TIMEOUT_MS (`patience`: at least a sampled read's length) times out its reads:
 * `startBy - patience`, strictly after `now`; undefined when the reads start in time and the
 * repair goes ahead. (Compared as `startBy > now + patience`, one ulp held while `startBy -
 * patience` rounded to `now`, and seed 16's run passed five chunks again at one virtual time
 * without end: over 20 CPU-minutes, never done.)
 */
export function deferredTo (now: number, startBy: number, patience: number): number | undefined {
  const retry = startBy - patience
  return retry > now ? retry : undefined
}

/** Chunks' availability is sampled this often (virtual ms). */
const UNAVAILABLE_SAMPLE_MS = 3 * HOUR
/** Chunks' margin (fragments beyond k, live and on disks) is sampled this often (virtual ms). */
const MARGIN_SAMPLE_MS = HOUR

/** Candidates per chunk: its XOR-closest hosts of the whole run, a superset of its targets at every moment. */
const CANDIDATE_FACTOR = 4

/**
 * Runs one trace against `chunks` sampled chunks placed at the start as a fresh write would
 * place them (fragment j on the target ranked j).
 */
export function runChurn (o: ChurnOptions): ChurnResult {
  const H = o.hosts.length
  const n = o.k + o.m
  const peers = o.hosts.map(h => h.peer)
  const index = new Map(peers.map((p, i) => [p, i]))
  const q = new EventQueue()
  const links = new Uplinks(o.uplinks)
  // the keeper's repair cap (repair.ts limiter): its own clock, bytes / repairRate(link)
  const capUntil = new Float64Array(H)
  // order 'urgent': a chunk at risk (lazy.ts atRisk()) goes ahead of the keeper's queued repairs
  // under the same cap (as the Repairer takes its pass's chunks at risk first): its own clock, and
  // the queued work ends that much later
  const capUrgent = new Float64Array(H)
  // jump: a chunk a returning host may bring back to k (requeue()) goes ahead of the urgent ones too
  const capJump = new Float64Array(H)
  /** The cap's clocks by tier: 0 queued, 1 at risk ('urgent'), 2 requeued ('jump'). */
  const clocks = [capUntil, capUrgent, capJump]
  /**
   * Charge `bytes` to keeper kp's repair cap from `at` in tier `tier`: after that tier's earlier
   * work, ahead of the lower tiers' (whose queued work ends that much later); the time they are
   * through it.
   */
  const capTake = (kp: number, at: number, bytes: number, tier: number): number => {
    const d = bytes / capPerMs[kp]
    const end = Math.max(at, clocks[tier][kp]) + d
    clocks[tier][kp] = end
    for (let v = 0; v < tier; v++) clocks[v][kp] = clocks[v][kp] > at ? clocks[v][kp] + d : Math.max(clocks[v][kp], end)
    return end
  }
  // (as the daemon sets it, daemon.ts: repairRate() of the upload cap, uploadCap() of `--uplink`)
  const capPerMs = Float64Array.from(o.uplinks, b => repairRate(uploadCap(undefined, b / 8)) / 1000)
  const up = new Uint8Array(H)
  const member = new Uint8Array(H)
  const disk = new Uint8Array(H) // its store still exists (not left for good)
  const goneAt = new Float64Array(H).fill(-Infinity)
  // declared gone and within the repair delay until then (lazy.ts: planned as if still holding)
  const awayUntil = new Float64Array(H).fill(-Infinity)
  const delay = Math.max(o.failureTimeoutMs, o.repairDelayMs ?? o.failureTimeoutMs)
  const rule = { spare: o.repairSpare ?? LAZY_RULE.spare, atRiskDelayMs: o.atRiskDelayMs ?? LAZY_RULE.atRiskDelayMs, clock: o.atRiskClock ?? LAZY_RULE.clock }
  const outage = new Uint32Array(H)
  for (let i = 0; i < o.initial; i++) { up[i] = 1; member[i] = 1; disk[i] = 1 }
  const fragBytes = Math.ceil(o.chunkBytes / o.k)

  // sampled chunks: keys, CIDs (plan() keys fragments by CID string), candidates
  const ks = new KeySpace(o.hosts.map(h => h.id), Array.from({ length: H }, (_, i) => i))
  for (const h of o.hosts) simKadIds.set(h.peer, h.id)
  const refs: ChunkRef[] = []
  const cand: Int32Array[] = []
  const held: Array<Array<Set<number>>> = []
  const byHost: number[][] = Array.from({ length: H }, () => [])
  const cidOf = (bytes: Uint8Array): CID => CID.createV1(0x55, createDigest(0x12, keyKadId(bytes)))
  for (let c = 0; c < o.chunks; c++) {
    const key = new Uint8Array(32)
    for (let i = 0; i < 32; i++) key[i] = Math.floor(o.rand() * 256)
    const cid = cidOf(key)
    const fragments = Array.from({ length: n }, (_, j) => cidOf(new Uint8Array([...key, j])))
    refs.push({ offset: 0, size: o.chunkBytes, cid, k: o.k, m: o.m, fragments })
    // ranked by distance from the chunk's kad id (KeySpace returns a set: sort it)
    const keyId = keyKadId(cid.bytes)
    const near = ks.nearest(keyId, CANDIDATE_FACTOR * n)
    near.sort((a, b) => compareDistance(keyId, o.hosts[a].id, o.hosts[b].id))
    cand.push(Int32Array.from(near))
    for (const h of near) byHost[h].push(c)
    held.push(Array.from({ length: n }, () => new Set<number>()))
  }
  // the fast rank against darkfs's own on the first chunks, over their candidates
  for (let c = 0; c < Math.min(o.chunks, 16); c++) {
    const list = Array.from(cand[c], h => peers[h])
    if (simXorRank(refs[c], list, n).join() !== rankByRule(refs[c], list, n, () => noWeights).join()) throw new Error('sim: simXorRank disagrees with rankByRule()')
  }
  /** Each chunk's fragment CIDs as strings (plan()'s holdings are keyed so). */
  const fragKeys = refs.map(ref => ref.fragments.map(f => f.toString()))

  const r: ChurnResult = {
    bytesFetched: 0, bytesPushed: 0, fragmentsRepaired: 0, fragmentsDropped: 0, chunksLost: 0, lost: [], chunksLostUnavoidable: 0, lostSpansMs: [], unavailableShare: 0, atKShare: 0, atKSpellsMs: [], exposedShare: 0, exposedSpellsMs: [],
    declaredGone: 0, returnedAfterGone: 0, backInTime: 0, awayDeclared: 0, backWithinDelay: 0, lapsed: 0, overdue: 0, deferred: 0, repairs: 0, repairMs: [], lookupRounds: [], lookupsFailed: 0, events: 0, plans: 0,
    sentByHost: links.sent, fragmentsAtStart: new Uint32Array(H), fragmentsAtEnd: new Uint32Array(H), redundantAtEnd: 0
  }
  const countFragments = (into: Uint32Array): void => { for (const hs of held) for (const s of hs) for (const h of s) into[h]++ }

  /** The members (as `isMember` says) among chunk c's candidates, closest first; widened when too few. */
  const membersOf = (c: number, isMember: (h: number) => boolean): number[] => {
    let list = Array.from(cand[c]).filter(isMember)
    if (list.length < n) {
      const keyId = keyKadId(refs[c].cid!.bytes)
      list = ks.nearest(keyId, H).filter(isMember).sort((a, b) => compareDistance(keyId, o.hosts[a].id, o.hosts[b].id))
    }
    return list
  }

  const planOf = (c: number, self: string): { p: ChunkPlan, live: Set<string> } => {
    const members = membersOf(c, h => member[h] === 1)
    const live = new Set<string>()
    for (const h of cand[c]) if (up[h] === 1) live.add(peers[h])
    for (const h of members) if (up[h] === 1) live.add(peers[h])
    // the longest away first, as Membership.away() lists them (lazy.ts gives those up first)
    const away = Array.from(cand[c]).filter(h => member[h] === 0 && awayUntil[h] > q.now).sort((a, b) => awayUntil[a] - awayUntil[b]).map(h => peers[h])
    const holdings: Holdings = new Map()
    fragKeys[c].forEach((f, j) => {
      const s = new Set<string>()
      for (const h of held[c][j]) if (up[h] === 1) { s.add(peers[h]); live.add(peers[h]) }
      holdings.set(f, s)
    })
    // what each away host held when last seen (the Repairer remembers it from its surveys); a
    // host that left for good is presumed to hold what it held then
    const presumed = new Map<string, number[]>()
    if (away.length > 0) {
      const isAway = (h: number): boolean => member[h] === 0 && awayUntil[h] > q.now
      held[c].forEach((s, j) => { for (const h of s) if (up[h] === 0 && isAway(h)) presumed.set(peers[h], [...presumed.get(peers[h]) ?? [], j]) })
      for (const [h, j] of leftHeld[c] ?? []) if (isAway(h)) presumed.set(peers[h], [...presumed.get(peers[h]) ?? [], j])
    }
    // how long each has been away (from its disconnect: awayUntil less the repair delay)
    const awayMs = new Map<string, number>()
    for (const h of cand[c]) if (member[h] === 0 && awayUntil[h] > q.now) awayMs.set(peers[h], q.now - (awayUntil[h] - delay))
    r.plans++
    // members beyond the first n + a few never rank: plan() sorts what it is given
    return { p: lazyPlan(refs[c], holdings, members.slice(0, n + 2).map(h => peers[h]), away, live, self, { copies: (m: number) => m + 1, rank: xorRank }, rule, presumed, awayMs), live }
  }

  // the initial write: fragment j on the target ranked j
  for (let c = 0; c < o.chunks; c++) {
    const { p } = planOf(c, '')
    p.want.forEach((hs, j) => { for (const h of hs) held[c][j].add(index.get(h)!) })
  }

  countFragments(r.fragmentsAtStart)

  /** When each chunk lost a fragment for good (its last holder left): the losses' windows. */
  const goneFragments: number[][] = []
  const due = new Float64Array(o.chunks).fill(Infinity)
  const busy = new Uint8Array(o.chunks)
  /** The chunk's last pass found it short of redundant (work left, maybe waiting for a host). */
  const unsettled = new Uint8Array(o.chunks)
  /** The chunk's last pass found it short of k live fragments (nothing to rebuild from then). */
  const short = new Uint8Array(o.chunks)
  /** Requeued (o.jump): its next pass goes ahead of its keeper's queued repairs. */
  const jump = new Uint8Array(o.chunks)
  const again = new Uint8Array(o.chunks)
  const schedule = (c: number, t: number): void => {
    W(c, () => `schedule at ${(t / HOUR).toFixed(2)} busy ${busy[c]} due ${(due[c] / HOUR).toFixed(2)}`)
    if (busy[c] === 1) { again[c] = 1; return }
    if (due[c] <= t) return
    due[c] = t
    q.at(t, () => {
      if (due[c] !== t) return
      due[c] = Infinity
      // a repair of it started meanwhile (from its keeper's queue): its landing passes again
      if (busy[c] === 1) { again[c] = 1; return }
      pass(c)
    })
  }

  // chunks waiting for their keeper's repair cap, in the order they came; the keeper takes the
  // next when its cap is free (one event per repair, not one per waiting chunk). Chunks at risk
  // wait in a queue of their own, taken on the urgent clock (capUrgent) in the same order: as the
  // Repairer's pass takes them, fewest live fragments first over every chunk it has, not in the
  // order their passes came. (Before, a chunk at risk whose keeper's urgent clock was ahead was
  // passed again when that clock came, and any other chunk at risk passed at that moment took the
  // cap first: a chunk at k waited behind weeks of later ones on a thin keeper and was lost.)
  const queues = clocks.map(clock => ({ list: Array.from({ length: H }, (): number[] => []), at: new Int32Array(o.chunks).fill(-1), waking: new Uint8Array(H), clock }))
  const arm = (k: number, u: number): void => {
    const w = queues[u]
    if (w.waking[k] === 1 || w.list[k].length === 0) return
    w.waking[k] = 1
    q.at(w.clock[k], () => {
      w.waking[k] = 0
      while (w.list[k].length > 0 && w.clock[k] <= q.now) {
        const next = takeNext(w.list[k])
        w.at[next] = -1
        if (busy[next] === 1) { again[next] = 1; continue }
        pass(next)
      }
      arm(k, u)
    })
  }
  /** Distinct fragments of chunk c on live hosts. */
  const liveCount = (c: number): number => {
    let live = 0
    for (const s of held[c]) for (const h of s) if (up[h] === 1) { live++; break }
    return live
  }
  /**
   * Distinct fragments of chunk c that still exist as its plan presumes them (lazy.ts
   * survivingFragments()): on live hosts, or on hosts away within the repair delay.
   */
  const survivingCount = (c: number): number => {
    let count = 0
    for (let j = 0; j < n; j++) {
      let hit = false
      for (const h of held[c][j]) if (up[h] === 1 || awayUntil[h] > q.now) { hit = true; break }
      // a host that left for good is presumed to hold its fragment while it is away within the
      // delay: darkfs cannot tell it from one away for a night
      if (!hit) for (const [h, i] of leftHeld[c] ?? []) if (i === j && awayUntil[h] > q.now) { hit = true; break }
      if (hit) count++
    }
    return count
  }
  /**
   * The keeper's next chunk: the first that came ('fifo'), or the one with the fewest fragments
   * that still exist now, then the fewest on live hosts, the first that came among equals ('urgent', lazy.ts byUrgency).
   */
  const takeNext = (list: number[]): number => {
    if (o.order !== 'urgent') return list.shift()!
    let best = 0
    let bestKey = Infinity
    for (let i = 0; i < list.length; i++) {
      const key = survivingCount(list[i]) * (n + 1) + liveCount(list[i])
      if (key < bestKey) { best = i; bestKey = key }
    }
    return list.splice(best, 1)[0]
  }
  const wait = (k: number, c: number, u: number): void => {
    const w = queues[u]
    W(c, () => `waits in keeper ${k}'s tier ${u} queue (${w.list[k].length} ahead)`)
    // in the queue of the keeper it has now: one queued at another keeper (its keeper then, away
    // or outranked since) moves here, as each host's pass takes the chunks it keeps now (left
    // there, a chunk at k waited weeks in a thin host's queue while its keeper, a fat one, idled);
    // a requeued one leaves the lower tiers' queues (its pass there would come after it)
    for (const [v, x] of queues.entries()) {
      if (x.at[c] < 0 || (v === u && x.at[c] === k) || (v !== u && u !== 2)) continue
      const l = x.list[x.at[c]]
      l.splice(l.indexOf(c), 1)
      x.at[c] = -1
    }
    if (w.at[c] !== k) {
      w.at[c] = k
      w.list[k].push(c)
    }
    arm(k, u)
  }

  /** A keeper's pass over chunk c: plan, deliver what is missing, hand over what is not wanted. */
  const W = (c: number, line: () => string): void => { if (c === o.watch) o.watchLog!(`${(q.now / HOUR).toFixed(2)} h c${c}: ${line()}`) }
  const hs = (c: number): string => held[c].map((s, j) => `f${j}[${[...s].map(h => `${h}${up[h] === 1 ? '' : member[h] === 1 ? '~' : '-'}/${o.uplinks[h] / 1e6}`).join(' ')}]`).join(' ')
  /**
   * The host that rebuilds chunk c (repair.ts rebuilderOf()): its keeper, or a live holder on an
   * uplink over 1 / THIN_KEEPER_SHARE times the keeper's (o.rebuilder 'keeper': the keeper always).
   */
  const uplinkOf = (peer: string): number | undefined => o.uplinks[index.get(peer)!]
  const rebuilder = (c: number, keeper: number | undefined): number | undefined => {
    if (keeper === undefined || o.rebuilder === 'keeper') return keeper
    const live = new Set<string>()
    const heldLive = held[c].map(s => {
      const out = new Set<string>()
      for (const h of s) if (up[h] === 1) { out.add(peers[h]); live.add(peers[h]) }
      return out
    })
    return index.get(rebuilderOf(peers[keeper], { held: heldLive }, live, uplinkOf)!)
  }
  const pass = (c: number): void => {
    const keeperIdx = rebuilder(c, Array.from(cand[c]).find(h => up[h] === 1))
    W(c, () => `pass keeper ${keeperIdx} (${o.uplinks[keeperIdx ?? 0] / 1e6} Mb) live ${liveCount(c)} clocks ${clocks.map(x => ((x[keeperIdx ?? 0] - q.now) / HOUR).toFixed(1)).join('/')} h ahead; ${hs(c)}`)
    if (keeperIdx === undefined) return
    // a keeper works through its chunks at its repair cap: one whose cap is taken further ahead
    // gets to this chunk then, and plans it as things are then (a host back meanwhile costs nothing)
    // (at risk of loss: its surviving fragments, lazy.ts byUrgency(); with no repair delay the live ones)
    const urgent = o.order === 'urgent' && atRisk(survivingCount(c), o.k)
    const tier = jump[c] === 1 ? 2 : urgent ? 1 : 0
    if (clocks[tier][keeperIdx] > q.now) { wait(keeperIdx, c, tier); return }
    jump[c] = 0
    const self = peers[keeperIdx]
    const { p, live } = planOf(c, self)
    unsettled[c] = p.health === 'redundant' ? 0 : 1
    short[c] = p.health === 'lost' ? 1 : 0
    // copies no longer wanted, dropped by their holders' own passes (one custody round each)
    for (let j = 0; j < n; j++) {
      for (const h of [...held[c][j]]) {
        if (up[h] !== 1) continue
        for (const d of handovers(peers[h], refs[c], p, live)) {
          refs[c].fragments.forEach((f, i) => { if (f.equals(d.cid) && held[c][i].delete(h)) r.fragmentsDropped += o.scale })
        }
      }
    }
    W(c, () => `planned ${p.health} tier ${tier} want ${p.want.map(w => [...w].map(x => index.get(x)).join('+')).join(' ')}`)
    if (p.health === 'redundant' || p.health === 'lost') return
    const missing = repairDeliveries(p, live)
    if (missing.length === 0) return
    // the reads, as repair.ts fragments() makes them
    const holdsHere = (j: number): boolean => held[c][j].has(keeperIdx)
    const wanted = missing.map(x => x.j)
    let have = 0
    for (let j = 0; j < n && have < o.k; j++) if (holdsHere(j)) have++
    const now = q.now
    const urgentLane = tier > 0
    // the holders the reads come from (chosen first, sent only once the repair goes ahead)
    const sources: number[] = []
    const fetch = (j: number): void => {
      // from the live holder whose uplink is free first
      let best = -1
      for (const h of held[c][j]) if (up[h] === 1 && h !== keeperIdx && (best < 0 || links.startAt(h, now, urgentLane) < links.startAt(best, now, urgentLane))) best = h
      if (best < 0) return
      sources.push(best)
      have++
    }
    const got = new Set<number>()
    for (const j of wanted) if (holdsHere(j)) got.add(j)
    if (got.size < wanted.length) {
      for (const j of wanted) if (!got.has(j) && [...held[c][j]].some(h => up[h] === 1 && h !== keeperIdx)) { fetch(j); got.add(j) }
      if (got.size < wanted.length) {
        // decode: k fragments at hand, fetched from holders of the fragments not here
        // as swarm pullAny() takes them: the first k - have to arrive, from the holders whose
        // uplinks are free first (in fragment order, a decode queued behind the one busy holder
        // of fragment 0 while the others idled)
        const freeAt = (j: number): number => Math.min(...[...held[c][j]].filter(h => up[h] === 1 && h !== keeperIdx).map(h => links.startAt(h, now, urgentLane)))
        const js: number[] = []
        for (let j = 0; j < n; j++) if (!holdsHere(j) && !got.has(j) && Number.isFinite(freeAt(j))) js.push(j)
        js.sort((a, b) => freeAt(a) - freeAt(b))
        for (const j of js) { if (have >= o.k) break; fetch(j) }
      }
    }
    // a read that cannot start within REPAIR_CHUNK_TIMEOUT_MS (its holder's uplink busy with
    // other repairs' reads) times out in darkfs (repair.ts repairChunk), and the chunk is left
    // to a later pass, planned afresh then: it is passed again when those uplinks are free, as
    // things are then. (The sim queued such reads behind hundreds of hours of others, and the
    // chunk, busy meanwhile, was never planned again: three of a chunk's holders left for good
    // while a repair planned before the first left waited for its reads, and the repair made
    // for a host back long since still moved its bytes.)
    // A sampled read stands for `scale` real ones, each of which waits its turn among the reads
    // its holder serves at the time: one may start behind one other sampled transfer on each
    // uplink (the two interleave), not behind a queue of them
    const startBy = sources.reduce((t, h) => Math.max(t, links.startAt(h, now, urgentLane)), now)
    const patience = sources.reduce((t, h) => Math.max(t, fragBytes * o.scale / links.rate(h)), REPAIR_CHUNK_TIMEOUT_MS)
    const retry = deferredTo(now, startBy, patience)
    if (retry !== undefined) {
      r.deferred++
      W(c, () => `reads from ${sources.join(' ')} cannot start before ${(startBy / HOUR).toFixed(1)} h: passed again then`)
      schedule(c, retry)
      return
    }
    let ready = now
    for (const h of sources) {
      ready = Math.max(ready, links.send(h, fragBytes, now, o.latencyMs, o.scale, urgentLane))
      r.bytesFetched += fragBytes * o.scale
    }
    // pushes from the keeper's uplink, through its repair cap
    const lands: Array<{ j: number, h: number }> = []
    const starts: number[] = []
    for (const { j, to } of missing) {
      for (const peer of to) {
        const h = index.get(peer)!
        lands.push({ j, h })
        if (h === keeperIdx) continue
        // the cap is taken from now, not from when the fetches are in: the Repairer rebuilds
        // REPAIR_CONCURRENCY chunks at once, so its cap pushes another chunk's fragments while
        // this one's fetches come over their holders' uplinks (taken from `ready`, the cap
        // idled for the fetches' hours and a thin keeper did one sampled repair at a time)
        starts.push(Math.max(ready, capTake(keeperIdx, now, fragBytes * o.scale, tier) - fragBytes * o.scale / capPerMs[keeperIdx]))
      }
    }
    busy[c] = 1
    r.repairs++
    const pushes = missing.map(x => `f${x.j}->${x.to.map(t => index.get(t)).join('+')}`).join(' ')
    const land = (landed: number): void => {
      if (keeperIdx === o.watchKeeper) o.watchLog!(`${(now / HOUR).toFixed(2)} h keeper ${keeperIdx}: c${c} tier ${tier} live ${liveCount(c)} ${p.health} fetched by ${(ready / HOUR).toFixed(1)} lands ${(landed / HOUR).toFixed(1)} h; pushes ${pushes}; queues ${queues.map(w => w.list[keeperIdx].length).join('/')}`)
      W(c, () => `repair (passed at ${(now / HOUR).toFixed(2)} h): fetched by ${(ready / HOUR).toFixed(1)} h, lands ${(landed / HOUR).toFixed(1)} h, pushes ${pushes}`)
      q.at(landed, () => {
        W(c, () => `landed; ${hs(c)}`)
        busy[c] = 0
        r.repairMs.push(landed - now)
        for (const { j, h } of lands) {
          // a target that left for good meanwhile did not take it (its next pass sends it again);
          // one only away at the end took it: a sampled repair stands for `scale` real ones pushed
          // one after another over the hours it takes, most of them while the target was up (with
          // the target up at the landing only, a fifth of the hosts away at any time and sampled
          // repairs 30 h long on a thin keeper, most sampled pushes were lost and sent again, each
          // taking the keeper's cap that long again: a chunk at k waited weeks for its fragment)
          if (disk[h] === 1 && !held[c][j].has(h)) { held[c][j].add(h); r.fragmentsRepaired += o.scale }
        }
        again[c] = 0
        schedule(c, q.now)
      })
    }
    if (starts.length === 0) { land(ready); return }
    // each push enters the keeper's uplink when its cap lets it go (the Repairer's limiter.take()
    // before swarm.push()): until then the uplink serves other reads. (Booked on the uplink's
    // queue at once, a push the cap held for a day blocked the reads of other keepers' repairs
    // from this host for that day, the uplink idle: a thin keeper's own queue stalled its
    // neighbours' rebuilds.)
    let landed = ready
    let left = starts.length
    for (const start of starts) {
      q.at(start, () => {
        landed = Math.max(landed, links.send(keeperIdx, fragBytes, q.now, o.latencyMs, o.scale, urgentLane))
        r.bytesPushed += fragBytes * o.scale
        if (--left === 0) land(landed)
      })
    }
  }

  /**
   * Chunks host h held fragments of when it left for good (its copies are gone at once, its
   * failure is found a failure timeout later): their passes come when it is declared gone, or
   * its repair delay ends, whether it still ranks among their targets or not. (Without this a
   * holder displaced as a target by a joiner, and still holding its copy as handovers wait for
   * every target, took its fragment away unnoticed: no pass ever came for that chunk, where
   * darkfs's Repairer passes over every chunk; six chunks of one neighbourhood were lost so.)
   */
  const heldWhenLeft: number[][] = Array.from({ length: H }, () => [])
  /** Per chunk, the fragments (host, index) hosts held when they left for good. */
  const leftHeld: Array<Array<[number, number]>> = []
  /** Chunks whose plan host h's change may touch: h holds a fragment (or did when it left), or ranks among the first n members. */
  const touched = (h: number): number[] => {
    const out: number[] = [...heldWhenLeft[h]]
    const seen = new Set(out)
    for (const c of byHost[h]) {
      if (seen.has(c)) continue
      let hit = false
      for (const s of held[c]) if (s.has(h)) { hit = true; break }
      if (!hit) {
        let before = 0
        for (const x of cand[c]) { if (x === h) { hit = before < n; break } if (member[x] === 1) before++ }
      }
      if (hit) out.push(c)
    }
    return out
  }

  /**
   * o.jump: the chunks whose last pass found them short of k that host h, back, ranks first for
   * (repair.ts requeue(), over the members its rank looks at) go ahead of their keeper's queued
   * repairs at their next pass (which its return calls for).
   */
  const jumps = o.jump ?? o.order === 'urgent'
  const requeueFor = (h: number): void => {
    if (!jumps) return
    for (const c of touched(h)) {
      if (short[c] !== 1) continue
      const members = membersOf(c, x => member[x] === 1).slice(0, n + SURVEY_SPARE_RANKS).map(x => peers[x])
      if (requeue([refs[c]], [], [peers[h]], members, { rank: xorRank }).size > 0) jump[c] = 1
    }
  }

  const gone = (h: number): void => {
    member[h] = 0
    goneAt[h] = q.now
    r.declaredGone++
    // away from its disconnect, a failure timeout ago (failure.ts markAway)
    const until = q.now - o.failureTimeoutMs + delay
    if (until > q.now) {
      awayUntil[h] = until
      const mine = outage[h]
      r.awayDeclared++
      // away for the at-risk delay (from its disconnect): its chunks at k + spare live that wait
      // for it are passed (Membership's 'overdue', lazy.ts stopWaiting())
      const overdue = q.now - o.failureTimeoutMs + rule.atRiskDelayMs
      if (overdue < until) {
        q.at(Math.max(q.now, overdue), () => {
          if (outage[h] !== mine || member[h] === 1) return
          r.overdue++
          for (const c of touched(h)) schedule(c, q.now + REPAIR_DEBOUNCE_MS)
        })
      }
      // 'lapsed': still away at the end of the delay, its chunks are repaired whatever their spare
      q.at(until, () => {
        if (outage[h] !== mine || member[h] === 1) return
        r.lapsed++
        for (const c of touched(h)) schedule(c, q.now + REPAIR_DEBOUNCE_MS)
      })
    }
    for (const c of touched(h)) schedule(c, q.now + REPAIR_DEBOUNCE_MS)
  }

  for (const e of o.trace) {
    q.at(e.t, () => {
      const h = e.host
      switch (e.kind) {
        case 'down': {
          if (up[h] === 0) return
          up[h] = 0
          const mine = ++outage[h]
          q.after(o.failureTimeoutMs, () => { if (up[h] === 0 && outage[h] === mine && member[h] === 1) gone(h) })
          return
        }
        case 'up': {
          if (disk[h] === 0) return
          up[h] = 1
          outage[h]++
          if (member[h] === 1) {
            // back before the timeout: 'back', a pass at the next interval (it may have lost its disk)
            // (only chunks a pass would act on: one left short, or one whose target it is and
            // lacks a fragment; a chunk it holds a fragment of that was settled stays settled)
            r.backInTime++
            requeueFor(h)
            for (const c of touched(h)) if (unsettled[c] === 1 || !held[c].some(s => s.has(h))) schedule(c, q.now + DEFAULT_REPAIR_INTERVAL_MS)
          } else {
            // back after it was declared gone: 'joined' (its newer record brings it back everywhere)
            member[h] = 1
            if (awayUntil[h] > q.now) r.backWithinDelay++
            awayUntil[h] = -Infinity
            r.returnedAfterGone++
            requeueFor(h)
            for (const c of touched(h)) schedule(c, q.now + REPAIR_DEBOUNCE_MS)
          }
          return
        }
        case 'join': {
          up[h] = 1; member[h] = 1; disk[h] = 1
          for (const c of touched(h)) schedule(c, q.now + REPAIR_DEBOUNCE_MS)
          return
        }
        case 'leave': {
          // silently, for good: its disk is gone; the others find out by the failure timeout
          const wasUp = up[h] === 1
          up[h] = 0; disk[h] = 0
          for (const c of byHost[h]) {
            let had = false
            for (const [j, s] of held[c].entries()) {
              if (!s.delete(h)) continue
              had = true
              if (leftHeld[c] === undefined) leftHeld[c] = []
              leftHeld[c].push([h, j])
              W(c, () => `holder ${h} (${o.uplinks[h] / 1e6} Mb) left for good`)
              if (s.size === 0) (goneFragments[c] ??= []).push(q.now)
            }
            if (had) heldWhenLeft[h].push(c)
          }
          if (wasUp) {
            const mine = ++outage[h]
            q.after(o.failureTimeoutMs, () => { if (outage[h] === mine && member[h] === 1) gone(h) })
          }
        }
      }
    })
  }

  // every UNAVAILABLE_SAMPLE_MS: chunks short of k fragments on live hosts
  let unavailable = 0
  let samples = 0
  for (let t = UNAVAILABLE_SAMPLE_MS; t <= o.duration; t += UNAVAILABLE_SAMPLE_MS) {
    q.at(t, () => {
      samples++
      for (let c = 0; c < o.chunks; c++) {
        let live = 0
        for (const s of held[c]) for (const h of s) if (up[h] === 1) { live++; break }
        if (live < o.k) unavailable++
      }
    })
  }

  // every MARGIN_SAMPLE_MS: chunks with no fragment to spare, live and on disks that still exist
  const atKFrom = new Float64Array(o.chunks).fill(-1)
  const exposedFrom = new Float64Array(o.chunks).fill(-1)
  let atK = 0
  let exposed = 0
  let marginSamples = 0
  const spell = (from: Float64Array, c: number, on: boolean, spells: number[]): void => {
    if (on && from[c] < 0) from[c] = q.now
    else if (!on && from[c] >= 0) { spells.push(q.now - from[c]); from[c] = -1 }
  }
  for (let t = MARGIN_SAMPLE_MS; t <= o.duration; t += MARGIN_SAMPLE_MS) {
    q.at(t, () => {
      marginSamples++
      for (let c = 0; c < o.chunks; c++) {
        let live = 0
        let kept = 0
        for (const s of held[c]) {
          let l = false
          let d = false
          for (const h of s) { if (up[h] === 1) l = true; if (disk[h] === 1) d = true }
          if (l) live++
          if (d) kept++
        }
        if (live <= o.k) atK++
        if (kept <= o.k) exposed++
        spell(atKFrom, c, live <= o.k, r.atKSpellsMs)
        spell(exposedFrom, c, kept <= o.k, r.exposedSpellsMs)
      }
    })
  }

  // sampled reads: a live reader whose table still counts hosts declared gone less than the
  // notice delay ago asks the closest members for fragments, k at a time, until it has k
  if ((o.lookupEveryMs ?? 0) > 0) {
    const delay = o.noticeDelayMs ?? 0
    for (let t = o.lookupEveryMs!; t <= o.duration; t += o.lookupEveryMs!) {
      q.at(t, () => {
        const c = Math.floor(o.rand() * o.chunks)
        const order = membersOf(c, h => member[h] === 1 || q.now - goneAt[h] < delay)
        const found = new Set<number>()
        let next = 0
        let rounds = 0
        const limit = 3 * n
        while (found.size < o.k && next < Math.min(order.length, limit)) {
          rounds++
          const ask = order.slice(next, next + o.k - found.size)
          next += ask.length
          for (const h of ask) {
            if (up[h] !== 1) continue
            const j = held[c].findIndex((s, i) => s.has(h) && !found.has(i))
            if (j >= 0) found.add(j)
          }
        }
        if (found.size < o.k) r.lookupsFailed++
        else r.lookupRounds.push(rounds - 1)
      })
    }
  }

  q.run(o.duration)
  r.events = q.ran
  r.unavailableShare = samples === 0 ? 0 : unavailable / (samples * o.chunks)
  r.atKShare = marginSamples === 0 ? 0 : atK / (marginSamples * o.chunks)
  r.exposedShare = marginSamples === 0 ? 0 : exposed / (marginSamples * o.chunks)
  for (let c = 0; c < o.chunks; c++) {
    if (atKFrom[c] >= 0) r.atKSpellsMs.push(o.duration - atKFrom[c])
    if (exposedFrom[c] >= 0) r.exposedSpellsMs.push(o.duration - exposedFrom[c])
  }
  for (let c = 0; c < o.chunks; c++) {
    if (held[c].filter(s => s.size > 0).length < o.k) {
      r.chunksLost++
      r.lost.push(c)
      // the last m + 1 fragments it lost came within this long: shorter than the failure
      // timeout, no repair could have started in between (lost whatever the repair policy)
      const t = goneFragments[c] ?? []
      const span = t.length > o.m ? t[t.length - 1] - t[t.length - 1 - o.m] : Infinity
      r.lostSpansMs.push(span)
      if (span <= o.failureTimeoutMs) r.chunksLostUnavoidable++
    }
    if (planOf(c, '').p.health === 'redundant') r.redundantAtEnd++
  }
  countFragments(r.fragmentsAtEnd)
  return r
}
