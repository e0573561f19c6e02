// The health of every chunk as this host last saw it (DESIGN.md §5, §8 status), kept up to date
// by what runs anyway: repair passes (a survey of every retained chunk), the placements this host
// finishes (their acknowledgements), and lookups of chunks it has not seen yet. Membership is
// read when the figures are counted, so a holder that went away counts at once, without a
// message. `darkfs status` answers from here in memory: no per-chunk or per-peer message, and
// each figure says how old it is (the oldest observation behind it).
//
// The states of a chunk:
//   redundant    every fragment on every host it must be on
//   degraded     at least k fragments on live hosts, fewer than it should have
//   localOnly    only this host holds it (offline writes, or no peer has it yet)
//   placing      this host is placing it now (a write in flight): not short, not done
//   unreachable  fewer than k fragments on hosts this host can reach, while some host that may
//                hold the rest cannot be asked (stopped, unreachable, or this host is offline)
//   lost         fewer than k fragments anywhere, and every host that could hold them answered,
//                in two surveys at least LOST_CONFIRM_MS apart (one survey asks its hosts one
//                after another: a fragment handed over between two answers is seen by neither)
//   unknown      not seen since this host started (the next pass or lookup tells)
// `lost` is said only when it is known: a host that cannot reach the holders says unreachable.
import type { CID } from 'multiformats/cid'
import type { ChunkRef } from '../data/index.ts'
import type { ChunkPlan, Health } from './survey.ts'
import { emptyKept } from './kept.ts'
import { chunkOfKey, codingKey } from './coding.ts'
import type { KeptCounts } from './kept.ts'

export type ChunkState = Health | 'placing' | 'unreachable' | 'unknown'

/** Time between the two surveys that must both find a chunk short of k fragments before it is lost. */
export const LOST_CONFIRM_MS = 10_000

export const CHUNK_STATES: readonly ChunkState[] = ['redundant', 'degraded', 'localOnly', 'placing', 'unreachable', 'lost', 'unknown']

/** The chunk figures of `darkfs status`. */
export interface ChunkStatus extends Record<ChunkState, number> {
  total: number
  /**
   * Age in ms of each figure: of the oldest observation among the chunks it counts (0: known
   * now, like placements in flight; null: nothing counted, or never seen).
   */
  ageMs: Record<ChunkState, number | null>
  /** When this was counted (ms since the epoch). */
  at: number
  /** 'kept': from what this host keeps; 'survey': every holder was asked just now (`--survey`). */
  source: 'kept' | 'survey'
  /** When the last full survey (repair pass or `--survey`) ended; null: none yet. */
  surveyedAt: number | null
  /** Surveys and lookups this host ran since it started (a change means new observations). */
  surveys: number
  /** Whether a survey or lookup is running now. */
  surveying: boolean
}

/** One chunk as last seen. */
interface Seen {
  k: number
  /** Live holders of each fragment then. */
  held: string[][]
  health: Health
  /** Some host that may hold a fragment did not answer, or this host had no peer (or lost is not confirmed yet). */
  incomplete: boolean
  at: number
  /** When a complete survey first found it short of k fragments (lost once confirmed). */
  shortSince?: number
  /** Seen while this host had no peer: says nothing once peers are back (unknown again). */
  alone: boolean
  /**
   * The chunk's first-ranked live hosts when it was seen (its keeper first, KEEPER_RANKS of
   * them): its keeper now is the first of them up now (kept.ts counts). Not known: none.
   */
  ranked?: readonly string[]
  /** The chunk's bytes (plaintext). */
  size?: number
}

/**
 * Hosts of a chunk's rank kept with what was seen of it: its keeper is the first of them up now,
 * so a keeper that went away hands its counts to the next at once (until a pass sees it again).
 */
export const KEEPER_RANKS = 3

export interface HealthView {
  self: string
  /** Hosts reachable now, this one included. */
  live: Set<string>
  /**
   * Whether this host is placing this coding of a pending chunk right now (network.ts): not
   * another coding of the same bytes (two files at different k), which says nothing of this one.
   */
  placing: (ref: ChunkRef) => boolean
  /** Hosts known to hold a pending chunk (from placement acknowledgements; this one included). */
  pendingHosts: (chunk: string) => number
  /** Whether this host has lost its peers (presence.ts). */
  offline: boolean
}

/**
 * Fragments of a chunk as seen that are on hosts `live` now: distinct fragments with a live
 * holder; of a replicated block (k = 1: its fragments are m + 1 copies of one block, held alike),
 * the live hosts holding a copy.
 */
function liveFragments (seen: Pick<Seen, 'k' | 'held'>, live: ReadonlySet<string>): number {
  if (seen.k === 1) return (seen.held[0] ?? []).filter(h => live.has(h)).length
  return seen.held.filter(hs => hs.some(h => live.has(h))).length
}

/**
 * The state of one chunk now, from what was seen of it (pure). Holders that are not live now
 * no longer count: their fragments are unreachable until they are back or repaired elsewhere.
 */
export function stateOf (seen: Seen | undefined, live: Set<string>, self: string): ChunkState {
  if (seen === undefined || (seen.alone && live.size > 1)) return 'unknown'
  const now = seen.held.map(hs => hs.filter(h => live.has(h)))
  const changed = now.some((hs, j) => hs.length !== seen.held[j].length)
  if (liveFragments(seen, live) < seen.k) return seen.incomplete || changed || live.size < 2 ? 'unreachable' : 'lost'
  const hosts = new Set(now.flat())
  if (hosts.size === 1 && hosts.has(self)) return 'localOnly'
  if (seen.health === 'redundant' && !changed) return 'redundant'
  return 'degraded'
}

/**
 * A chunk a survey (or a placement's acknowledgements) found short of its redundancy, where it
 * was not before (first seen so, or seen in another state): the event stream's chunk-degraded.
 * Not said of what a survey that could not ask every holder saw, nor of what a host with no
 * peer saw (it is offline: presence says so), nor of a lost chunk before a second survey agrees.
 */
export interface ShortChunk { chunk: string, health: Exclude<Health, 'redundant'> }

/** Events: 'short' (ShortChunk). */
export class HealthBook extends EventTarget {
  /** Called after each observation (kept.ts: the keeper's counts are counted again, debounced). */
  onObserve: (() => void) | undefined
  /**
   * Chunk (its coding: coding.ts codingKey; the same bytes at two codings are two chunks, each
   * with its own fragments and health) -> as last seen.
   */
  private readonly seen = new Map<string, Seen>()
  /** Manifest -> its chunks (from the last listing, and manifests read since). */
  private readonly manifests = new Map<string, ChunkRef[]>()
  /** Manifests the last listing could not read (here or from a peer), and when. */
  private readonly missing = new Map<string, number>()
  private surveyedAt: number | null = null
  private surveys = 0
  private running = 0

  /** A survey (pass, lookup or `--survey`) starts; `end` when it is over. */
  begin (): () => void {
    this.running++
    let ended = false
    return () => {
      if (ended) return
      ended = true
      this.running--
      this.surveys++
    }
  }

  /** A full survey ended now (a repair pass or `--survey` looked at every retained chunk). */
  surveyed (at = Date.now()): void {
    this.surveyedAt = at
  }

  /**
   * The retained set as a pass listed it: manifest -> chunks. Chunks no longer retained (and not
   * pending) are forgotten.
   */
  listed (manifests: Map<string, ChunkRef[]>, pending: (chunk: string) => boolean, missing: Iterable<string> = [], at = Date.now()): void {
    this.manifests.clear()
    this.missing.clear()
    for (const m of missing) this.missing.set(m, at)
    const keep = new Set<string>()
    for (const [m, refs] of manifests) {
      this.manifests.set(m, refs)
      for (const r of refs) keep.add(codingKey(r))
    }
    for (const key of this.seen.keys()) if (!keep.has(key) && !pending(chunkOfKey(key))) this.seen.delete(key)
  }

  /** A manifest read since the last listing. */
  manifest (cid: CID | string, refs: ChunkRef[]): void {
    this.missing.delete(cid.toString())
    this.manifests.set(cid.toString(), refs.filter(r => r.cid !== null))
  }

  /** Whether the chunks of this manifest are known. */
  knows (manifest: CID | string): boolean {
    return this.manifests.has(manifest.toString())
  }

  /**
   * What a survey (or a placement's acknowledgements) found of a chunk: `plan` (survey.ts) over
   * the then live hosts; `incomplete` when some host that may hold a fragment could not be asked;
   * `alone` when this host had no peer then. Returns 'confirm' when the chunk looked lost for the
   * first time: look again LOST_CONFIRM_MS later.
   */
  observe (ref: ChunkRef, plan: Pick<ChunkPlan, 'held' | 'health'>, incomplete: boolean, at = Date.now(), alone = false, ranked?: readonly string[]): 'confirm' | undefined {
    const key = codingKey(ref)
    const before = this.seen.get(key)
    if (before !== undefined && before.at > at) return undefined
    let shortSince: number | undefined
    let partial = incomplete
    if (plan.health === 'lost' && !incomplete) {
      // lost only once a later survey agrees: until then unreachable, and looked at again
      shortSince = before?.shortSince ?? at
      partial = at - shortSince < LOST_CONFIRM_MS
    }
    this.seen.set(key, { k: ref.k, held: plan.held.map(s => [...s]), health: plan.health, incomplete: partial, at, shortSince, alone, ranked: ranked ?? before?.ranked, size: ref.size })
    this.onObserve?.()
    if (plan.health !== 'redundant' && !partial && !alone && (before === undefined || before.health !== plan.health || before.incomplete || before.alone)) {
      this.dispatchEvent(new CustomEvent<ShortChunk>('short', { detail: { chunk: ref.cid!.toString(), health: plan.health } }))
    }
    return plan.health === 'lost' && !incomplete && partial ? 'confirm' : undefined
  }

  /**
   * Distinct fragments of the chunk the last survey saw on hosts that are `live` now (copies of a
   * replicated block: live hosts holding one); undefined when never seen. The Repairer takes a
   * pass's chunks fewest first (lazy.ts byUrgency()).
   */
  liveSeen (ref: ChunkRef, live: Set<string>): number | undefined {
    const seen = this.seen.get(codingKey(ref))
    return seen === undefined ? undefined : liveFragments(seen, live)
  }

  /** Chunks of the manifests whose health is unknown: never seen, or seen alone while `live` hosts are up now. */
  unseen (manifests: Iterable<string>, live = 1): ChunkRef[] {
    const out = new Map<string, ChunkRef>()
    for (const m of manifests) {
      for (const r of this.manifests.get(m) ?? []) {
        const key = codingKey(r)
        const seen = this.seen.get(key)
        if (seen === undefined || (seen.alone && live > 1)) out.set(key, r)
      }
    }
    return [...out.values()]
  }

  /**
   * The chunks this host is the keeper of now (the first of each chunk's `ranked` hosts that is
   * in `live`), by kept.ts state, with their bytes and the age of the oldest observation: what
   * it tells its peers (kept.ts). Memory only.
   */
  keptCounts (self: string, live: ReadonlySet<string>, now = Date.now()): KeptCounts {
    const out = emptyKept()
    let oldest = now
    const liveSet = live as Set<string>
    for (const seen of this.seen.values()) {
      const keeper = seen.ranked?.find(h => live.has(h))
      if (keeper !== self) continue
      const state = stateOf(seen, liveSet, self)
      let kept: keyof KeptCounts['chunks']
      if (state === 'redundant' || state === 'unreachable' || state === 'lost') kept = state
      else if (state === 'localOnly') kept = 'atRisk'
      else if (state === 'degraded') {
        // one loss from fewer than k: k fragments (one copy) on live hosts
        kept = liveFragments(seen, live) <= seen.k ? 'atRisk' : 'degraded'
      } else continue
      out.chunks[kept]++
      out.bytes[kept] += seen.size ?? 0
      if (seen.at < oldest) oldest = seen.at
    }
    out.ageMs = Math.max(0, now - oldest)
    return out
  }

  /**
   * Count what this book knows, with no walk of the tree: the chunks of the manifests of the
   * last listing and those read since (an unreadable one counts as one chunk, unreachable),
   * every chunk seen since (placements finished here), and `pendingChunks`. A file deleted
   * since the last listing still counts until the next; one written elsewhere and not looked
   * at yet does not count until then. Metrics scrape this (node/api/metrics.ts).
   */
  countKnown (pendingChunks: Iterable<ChunkRef>, view: HealthView): ChunkStatus {
    return this.count([...this.manifests.keys(), ...this.missing.keys()], pendingChunks, view, 'kept', this.seen.keys())
  }

  /**
   * Count the chunks of the retained manifests (`contents`, by manifest key) and those pending
   * placement here (`pendingChunks`: every coding pending here, pending.ts; one not among them is
   * not pending), in memory: no message, no disk. A manifest whose chunks are not known yet
   * counts as one chunk: unknown, or unreachable when the last listing could not read it.
   */
  count (contents: Iterable<string>, pendingChunks: Iterable<ChunkRef>, view: HealthView, source: ChunkStatus['source'] = 'kept', chunks: Iterable<string> = []): ChunkStatus {
    const at = Date.now()
    const counts = Object.fromEntries(CHUNK_STATES.map(s => [s, 0])) as Record<ChunkState, number>
    const oldest = Object.fromEntries(CHUNK_STATES.map(s => [s, Infinity])) as Record<ChunkState, number>
    let total = 0
    const add = (state: ChunkState, seenAt: number): void => {
      counts[state]++
      total++
      if (seenAt < oldest[state]) oldest[state] = seenAt
    }
    const counted = new Set<string>()
    // the codings pending here (codingKey): another coding of the same bytes pending says
    // nothing of this one (its fragments lost, it is lost, not placing)
    const pending = new Map<string, ChunkRef>()
    for (const r of pendingChunks) pending.set(codingKey(r), r)
    // key: a coding (codingKey); its hosts while pending are asked by chunk CID (network.ts
    // holders: those of the worst pending coding)
    const one = (key: string): void => {
      if (counted.has(key)) return
      counted.add(key)
      const ref = pending.get(key)
      if (ref !== undefined) {
        // written here, not placed yet: in flight, or waiting for a peer (offline) or a retry
        if (view.placing(ref) && !view.offline) add('placing', at)
        else add(view.pendingHosts(chunkOfKey(key)) > 1 ? 'degraded' : 'localOnly', at)
        return
      }
      const seen = this.seen.get(key)
      add(stateOf(seen, view.live, view.self), seen?.at ?? -Infinity)
    }
    for (const m of new Set(contents)) {
      const refs = this.manifests.get(m)
      if (refs === undefined) {
        // not read yet: unknown; a listing that could not read it from anyone: unreachable
        const tried = this.missing.get(m)
        add(tried === undefined ? 'unknown' : 'unreachable', tried ?? -Infinity)
        continue
      }
      for (const r of refs) one(codingKey(r))
    }
    for (const key of pending.keys()) one(key)
    for (const key of chunks) one(key)
    const ageMs = Object.fromEntries(CHUNK_STATES.map(s => {
      const o = oldest[s]
      return [s, o === Infinity || o === -Infinity ? null : Math.max(0, at - o)]
    })) as Record<ChunkState, number | null>
    return { total, ...counts, ageMs, at, source, surveyedAt: this.surveyedAt, surveys: this.surveys, surveying: this.running > 0 }
  }
}
