// Who holds which fragment, asked of the hosts themselves (swarm have-only queries), and what
// that means for each chunk's redundancy (DESIGN.md §3, §8 status). Truthful for every chunk,
// whoever wrote it: nothing here relies on placement remembered by the writer.
import type { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import type { ChunkRef } from '../data/index.ts'
import { assignment } from './assignment.ts'
import { forEachLimited } from '../pool.ts'
import type { Limiter } from '../pool.ts'
import type { PlacementPolicy } from './placement.ts'
import { logger, shortPeer } from '../log.ts'

const log = logger('keeper:survey')

/** Peers asked at once during a survey. */
export const SURVEY_CONCURRENCY = 8
/** Fragment CIDs asked of one peer in one have-query (a survey of many chunks is cut in batches). */
export const SURVEY_BATCH = 4096
/**
 * Peers not connected here asked at once by the surveys of one host beyond the full mesh (each a
 * dial and a handshake; SurveyComponents.dials): the connected ones are asked first, SURVEY_CONCURRENCY at once.
 */
export const SURVEY_DIALS = 2

export interface SurveyComponents {
  self: string
  /** Whether this host holds a block. */
  hasLocal: (cid: CID) => Promise<boolean>
  /** Which of `cids` a peer holds (swarm have-query). */
  has: (cids: CID[], peer: string, opts?: AbortOptions) => Promise<Set<string>>
  /**
   * Whether this host is connected to a peer now. Given (beyond the full mesh), the connected
   * peers are asked first, and those not connected (a dial each) only through `dials`.
   */
  connected?: (peer: string) => boolean
  /**
   * The slots for asking peers not connected (a limiter of SURVEY_DIALS, shared by every survey
   * of the host: a pass surveys its next batch while it repairs the last). Not given: no bound
   * beyond SURVEY_CONCURRENCY.
   */
  dials?: Limiter
}

/** Fragment cid.toString() -> the live hosts that hold it (this host included). */
export type Holdings = Map<string, Set<string>>

export interface SurveyOptions extends AbortOptions {
  /** Peers that could not be asked are added here (what they hold is not known). */
  unanswered?: Set<string>
  /**
   * The hosts to ask about a chunk (beyond the full mesh: the first its rule ranks, repair.ts);
   * those not in `live` are not asked. Not given: every live host is asked about every chunk.
   */
  askOf?: (ref: ChunkRef) => string[]
}

/**
 * Ask every live host (self included; or those `opts.askOf` names for each chunk) which of the
 * chunks' fragments it holds. Unreachable peers hold nothing here, and are added to
 * `opts.unanswered` (what they hold is not known).
 */
export async function survey (c: SurveyComponents, refs: ChunkRef[], live: string[], opts: SurveyOptions = {}): Promise<Holdings> {
  const cids = [...new Map(refs.flatMap(r => r.fragments).map(f => [f.toString(), f])).values()]
  const holdings: Holdings = new Map(cids.map(f => [f.toString(), new Set<string>()]))
  // one after the other: the store answers from memory (data/present.ts), and a queue around
  // each lookup cost more than the lookup
  for (const f of cids) {
    opts.signal?.throwIfAborted()
    if (await c.hasLocal(f)) holdings.get(f.toString())!.add(c.self)
  }
  const liveSet = new Set(live)
  liveSet.delete(c.self)
  // each peer is asked about every fragment (a full mesh), or about the fragments of the chunks
  // that name it (askOf: beyond the full mesh, a chunk's first-ranked hosts)
  const asked = new Map<string, CID[]>()
  if (opts.askOf === undefined) {
    for (const p of liveSet) asked.set(p, cids)
  } else {
    const per = new Map<string, Map<string, CID>>()
    for (const ref of refs) {
      for (const p of opts.askOf(ref)) {
        if (!liveSet.has(p)) continue
        let m = per.get(p)
        if (m === undefined) per.set(p, m = new Map())
        for (const f of ref.fragments) m.set(f.toString(), f)
      }
    }
    for (const [p, m] of per) asked.set(p, [...m.values()])
  }
  const ask = async (peer: string): Promise<void> => {
    const mine = asked.get(peer)!
    for (let b = 0; b < mine.length; b += SURVEY_BATCH) {
      opts.signal?.throwIfAborted()
      const held = await askWithRetry(c, mine.slice(b, b + SURVEY_BATCH), peer, opts)
      if (held === undefined) { opts.unanswered?.add(peer); continue }
      for (const key of held) holdings.get(key)?.add(peer)
    }
  }
  // beyond the full mesh: the peers connected here first (no dial), then the others through the
  // host's few dial slots. Every host of a network surveys after a DOWN notice, and a survey that
  // dialled SURVEY_CONCURRENCY peers at once from each burst past every host's connection bound
  // (bench:scale, 50 hosts bound 16)
  const peers = [...asked.keys()]
  const connected = c.connected
  const dials = c.dials
  if (connected === undefined) {
    await forEachLimited(peers, SURVEY_CONCURRENCY, ask, opts)
  } else {
    const near = peers.filter(p => connected(p))
    const far = peers.filter(p => !connected(p))
    await Promise.all([
      forEachLimited(near, SURVEY_CONCURRENCY, ask, opts),
      forEachLimited(far, SURVEY_CONCURRENCY, async p => {
        // connected meanwhile (another survey's dial, a transfer): asked at once
        if (dials === undefined || connected(p)) await ask(p)
        else await dials(async () => { await ask(p) }, opts)
      }, opts)
    ])
  }
  return holdings
}

/** Tries of a have-query before a peer is taken to hold nothing (streams may be briefly over their limit). */
export const SURVEY_TRIES = 4
/**
 * Failures worth another try: the peer's streams of the protocol were over their limit for a
 * moment (libp2p's TooManyInboundProtocolStreamsError and its outbound twin). A peer that could
 * not be reached (a dial that failed or timed out) is unanswered at once: retried, each of a
 * bounded network's surveys dialled every such peer four times, and on an overloaded machine
 * (bench:scale, 30 hosts) those retries were most of 1,500 failed dials per 30 s.
 */
const RETRIED = /^TooMany\w*StreamsError$/
/** Wait before retrying a have-query, doubled per try. */
export const SURVEY_RETRY_MS = 100

/** Which of `cids` the peer holds; undefined when it could not be asked. */
async function askWithRetry (c: SurveyComponents, cids: CID[], peer: string, opts: AbortOptions): Promise<Set<string> | undefined> {
  for (let i = 0; ; i++) {
    try {
      return await c.has(cids, peer, opts)
    } catch (err) {
      // a peer that cannot be asked is taken to hold nothing (its fragments count as missing
      // for repair); the caller learns it did not answer (status: unreachable, not lost)
      if (i + 1 >= SURVEY_TRIES || opts.signal?.aborted === true || !RETRIED.test((err as Error).name)) {
        if (opts.signal?.aborted !== true) log('have-query of %d block(s) to %s failed (try %d), taken as holding none: %s', cids.length, shortPeer(peer), i + 1, (err as Error).message)
        return undefined
      }
      await new Promise(resolve => setTimeout(resolve, SURVEY_RETRY_MS << i))
    }
  }
}

export type Health = 'redundant' | 'degraded' | 'localOnly' | 'lost'

/**
 * Whether a survey's verdict on a chunk may miss fragments: this host had no peer, or a host the
 * plan wants it on (or any peer) could not be asked. A chunk short of k fragments is then
 * unreachable, not lost (status.ts).
 */
export function incomplete (p: Pick<ChunkPlan, 'want'>, live: ReadonlySet<string>, unanswered: ReadonlySet<string>): boolean {
  return live.size < 2 || unanswered.size > 0 || p.want.some(hs => hs.some(h => !live.has(h)))
}

export interface ChunkPlan {
  /** Hosts that must hold fragment j (from the members ranked by the chunk's rule: placement.ts rank). */
  want: string[][]
  /** Live hosts that hold fragment j now. */
  held: Array<Set<string>>
  health: Health
}

/** Whether every fragment of a plan sits on every host it must be on, all of them live (plan()'s redundant; repair.ts asks it of a plan it carried out). */
export function placed (p: Pick<ChunkPlan, 'want' | 'held'>, live: ReadonlySet<string>): boolean {
  return p.want.every((hs, j) => hs.every(h => live.has(h) && p.held[j].has(h)))
}

/**
 * The chunk's required placement among `members` and its health given who holds what:
 * lost when fewer than k distinct fragments have a live holder; local-only when this host is
 * the only holder (the network, if any, holds nothing of it); redundant when every fragment is on every host it
 * must be on (all of them live); degraded otherwise. `policy`: the copies a replicated chunk needs,
 * and the rank of its holders (by the rule its ref names).
 */
export function plan (ref: ChunkRef, holdings: Holdings, members: string[], live: Set<string>, self: string, policy: Pick<PlacementPolicy, 'copies' | 'rank'>): ChunkPlan {
  const n = ref.k + ref.m
  const held = ref.fragments.map(f => new Set([...(holdings.get(f.toString()) ?? [])].filter(p => live.has(p))))
  let want: string[][]
  if (ref.k === 1) {
    // copies of one block: fragment 0 stands for all of them, on as many hosts as the network's
    // redundancy asks now (a chunk written offline with one copy catches up)
    const copies = policy.copies(ref.m, members.length)
    want = [policy.rank(ref, members, Math.min(copies, members.length)), ...Array.from({ length: n - 1 }, () => [])]
  } else {
    // fragments stay on the targets that hold them; only what is missing moves (assignment.ts)
    want = assignment(policy.rank(ref, members, Math.min(n, members.length)), ref.k, ref.m, held)
  }
  const available = ref.k === 1 ? (held[0].size > 0 ? 1 : 0) : held.filter(s => s.size > 0).length
  const hosts = new Set(held.flatMap(s => [...s]))
  let health: Health
  if (available < ref.k) health = 'lost'
  else if (hosts.size === 1 && hosts.has(self)) health = 'localOnly'
  else if (placed({ want, held }, live)) health = 'redundant'
  else health = 'degraded'
  return { want, held, health }
}
