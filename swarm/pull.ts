// Multi-source pull (DESIGN.md §4): fetch any `need` of a list of blocks, in preference order,
// from the peers that may hold them.
//
//  - each wanted block is asked of one peer at a time, the one expected to answer first
//    (pickPeer: fastest so far, least queued, unknown peers tried early), so `need` blocks are
//    fetched from several peers at once; when more blocks are offered than needed (the k + m
//    fragments of a chunk, k needed), the earlier ones (data fragments) are asked unless their
//    holders are expected to take over PREFER_FACTOR times as long as another's, so a reader's
//    requests spread over the holders by their speed and load without decoding healthy chunks;
//  - a DONT_HAVE, a dropped stream or a wrong block (its sender is dropped) moves the block to
//    its next holder; a block with no holder left gives way to the next block of the list;
//  - a request slower than HEDGE_FACTOR times its peer's expected time (at least `hedgeMs`)
//    is hedged: the block is also asked elsewhere, or the next spare block is fetched; the
//    first verified copy wins and the other requests are cancelled (endgame). A peer that is
//    sending us bytes meanwhile is busy, not stalled: it gets up to PATIENCE_ROUNDS more such
//    periods first (hedging a thin but working uplink only adds load to the others).
import type { AbortOptions } from '@libp2p/interface'
import { anySignal, onAbort } from './abort.ts'
import { Deadlines } from './deadlines.ts'
import type { CID } from 'multiformats/cid'
import type { Client, RangeWant } from './client.ts'
import { BlockNotFoundError } from './errors.ts'
import { expectedMs, pickPeer } from './peers.ts'
import type { PeerBook } from './peers.ts'
import type { BlockSource } from './serve.ts'
import { checkCid } from './verify.ts'
import { logger, shortCid } from './log.ts'
import type { Landing } from './protocol.ts'

const log = logger('pull')

/** A request is hedged once it takes this many times its peer's expected time. */
export const HEDGE_FACTOR = 4
/**
 * pullAny asks an earlier block of its list (a data fragment: the chunk is then their
 * concatenation, no decode and no parity moved) rather than a later one whose holder is expected
 * to answer sooner, unless the earlier block's holder is expected to take more than this many
 * times as long (clearly busier or slower; expectedMs: service time x (queued + 1)): load still
 * spreads away from a holder with two blocks queued when another is idle, or one under half as
 * fast, but one block queued against an idle holder does not turn a read into a decode (issue 15: 235 of 256 chunks of a cold read on six hosts were
 * rebuilt through parity when the least-loaded holder always won).
 */
export const PREFER_FACTOR = 2
/**
 * An `ordered` pull passes over an earlier block up front only when its holder is known to be this
 * many times slower per block than another's (expectedMs with nothing queued: a thin uplink,
 * failures; and by MIN_HEDGE_MS at least: slower()), the other's known or, unknown, guessed at
 * UNKNOWN_SERVICE_MS; never for the requests queued on it: those are
 * the reader's own, spread over the data holders whichever blocks it asks (a six-host cold read
 * took parity for 15% of its chunks by load, PREFER_FACTOR).
 */
export const ORDERED_SLOW_FACTOR = 4
/**
 * Whether a holder expected to take `ms` per block (nothing queued) is too slow for an `ordered`
 * pull beside one taking `bestMs`: ORDERED_SLOW_FACTOR times as long, and by at least
 * MIN_HEDGE_MS (per-block times of a few ms to tens of ms differ by more than the factor from
 * one sample to the next on a busy host, and the EWMA of a holder counts our own queue there).
 */
function slower (ms: number, bestMs: number): boolean {
  return ms > ORDERED_SLOW_FACTOR * bestMs && ms - bestMs >= MIN_HEDGE_MS
}
/**
 * An `ordered` pull also passes over an earlier block when its holder, with the requests queued on
 * it, is expected to take ORDERED_SLOW_FACTOR times as long as the best holder with its queue, and
 * this long at least (ms): a holder under ORDERED_SLOW_FACTOR slower per block still falls behind
 * when every readahead chunk's data fragment queues on it (six hosts, one on a 3.8x thinner
 * uplink, 16 chunks at once: 3 of 16 ordered pulls aborted at the read's 20 s fetch timeout).
 * The floor keeps a healthy mesh data-only: there the reader's own queue on a data holder is a
 * few per-block times of tens of ms, far under it, whatever the idle parity holders' times.
 */
export const ORDERED_QUEUED_FLOOR_MS = 4000
/**
 * The longest an `ordered` request is waited on, its patience rounds included, before a spare is
 * asked too (ms): a quarter of a chunk read's fetch timeout (keeper/network.ts FETCH_TIMEOUT_MS,
 * 20 s), so a parity request always has time. Without it a thin holder still sending (earlier
 * queued blocks count as bytes from it) kept a request 4 hedge times (4 x 6.2 s) past the timeout.
 */
export const ORDERED_MAX_WAIT_MS = 5000
/** Never hedge sooner than this (ms). */
export const MIN_HEDGE_MS = 500
/** Extra hedge periods granted to a request whose peer keeps sending us bytes. */
export const PATIENCE_ROUNDS = 3
/**
 * Block size assumed to turn a peer's known uplink into its expected service time before it has
 * served us any block (a fragment of a 1 MiB chunk at k = 4): a peer on a thin uplink is then
 * not among the "unknown, try early" peers.
 */
export const ASSUMED_BLOCK_BYTES = 256 * 1024

/** pullRange's hedge times, every swarm's of this process on one timer (deadlines.ts). */
const hedges = new Deadlines()

export interface PullContext {
  client: (peer: string) => Client
  book: PeerBook
  blocks: BlockSource
  hedgeMs: number
  signal: AbortSignal
  /** Known uplinks of peers in bytes/s (configured or measured). */
  uplink?: Map<string, number>
  /** Counted into, when given. */
  counters?: PullCounters
}

interface Request { peer: string, cancel: () => void, timer: ReturnType<typeof setTimeout>, slow: boolean, received: number, patience: number }
interface Wanted { cid: CID, key: string, tried: Set<string>, requests: Map<string, Request>, done: boolean, exhausted: boolean }

/** Options of a pull: `background` marks it as repair or a pin's catch-up (see WANT in protocol.ts). */
export interface PullOptions extends AbortOptions {
  background?: boolean
  /**
   * The list is an order, not a preference: its first `need` blocks are asked, and a later one
   * (a spare) only for an earlier one that cannot be had (no holder left: DONT_HAVE, a dropped
   * stream, a wrong block) or whose request is past its hedge time (HEDGE_FACTOR times its
   * peer's per-block time with nothing queued, at least `hedgeMs`), or whose holder is known to be
   * ORDERED_SLOW_FACTOR times slower per block than the best of the other holders (an unknown one
   * counted at UNKNOWN_SERVICE_MS), never because its holder is less loaded. A chunk
   * read (keeper/network.ts fetch): data fragments are the chunk, a parity fragment makes the
   * reader decode. Without it, pullAny spreads over the holders by load (PREFER_FACTOR), as
   * repair wants.
   */
  ordered?: boolean
  /**
   * Where a block may be written as it arrives from a peer (protocol.ts Landing; a chunk read
   * gives its data fragments' places in the chunk): asked once per frame that could land, for the
   * block's CID and length. A block that landed is verified there like any other before the pull
   * takes it; the memory may be written by a frame that then fails its check, or is still
   * arriving when the pull is over (a hedged request's), so the caller trusts no byte of it that
   * the pull did not return.
   */
  land?: (cid: CID, bytes: number) => Landing | undefined
}

/** What pulls did, for tests and benchmarks (Swarm.stats()). */
export interface PullCounters {
  /** Requests that went past their hedge time (the block was asked elsewhere too, or a spare taken). */
  hedged: number
  /** Times an `ordered` pull asked a later block with an earlier one passed over, its holder slow (ORDERED_SLOW_FACTOR): events, not blocks (a block passed over for two later ones counts twice). */
  passedOver: number
}

export async function pullAny (ctx: PullContext, cids: CID[], need: number, from: Map<string, string[]> | string[], opts?: PullOptions): Promise<Map<string, Uint8Array>> {
  const wanted: Wanted[] = []
  const seen = new Set<string>()
  for (const cid of cids) {
    checkCid(cid)
    const key = cid.toString()
    if (seen.has(key)) continue
    seen.add(key)
    wanted.push({ cid, key, tried: new Set(), requests: new Map(), done: false, exhausted: false })
  }
  if (!Number.isInteger(need) || need < 1 || need > wanted.length) {
    throw new RangeError(`need must be an integer from 1 to ${wanted.length} (the distinct CIDs given), not ${need}`)
  }
  const signal = anySignal([opts?.signal, ctx.signal])
  const land = opts?.land
  signal.throwIfAborted()

  const results = new Map<string, Uint8Array>()
  for (const w of wanted) {
    if (results.size >= need) break
    try {
      if (await ctx.blocks.has(w.cid)) {
        results.set(w.key, await ctx.blocks.get(w.cid, { signal }))
        w.done = true
      }
    } catch (err) {
      // not usable locally: fetch it
      log('local %s unusable, fetching it: %s', shortCid(w.cid), (err as Error).message)
    }
  }
  if (results.size >= need) return results

  const holders = (key: string): string[] => Array.isArray(from) ? from : from.get(key) ?? []
  const problems: string[] = []

  return await new Promise((resolve, reject) => {
    let settled = false
    const onAbort = (): void => { finish(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })

    function finish (err?: unknown): void {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', onAbort)
      for (const w of wanted) for (const r of w.requests.values()) drop(w, r)
      if (err === undefined) resolve(results)
      else reject(err)
    }

    function drop (w: Wanted, r: Request): void {
      clearTimeout(r.timer)
      w.requests.delete(r.peer)
      r.cancel()
    }

    function view (peer: string): ReturnType<typeof peerView> { return peerView(ctx, peer) }

    function schedule (): void {
      if (settled) return
      if (results.size >= need) { finish(); return }
      const missing = need - results.size
      let active = wanted.filter(w => !w.done && [...w.requests.values()].some(r => !r.slow)).length
      // the next block to ask: of those without a live request, the earliest in the caller's
      // order (data fragments before parity) whose best holder is expected to answer within
      // PREFER_FACTOR times the soonest any holder would: a later block is taken only when the
      // earlier ones' holders are clearly busier or slower (see PREFER_FACTOR). `ordered`: the
      // earliest, whatever its holder's load (a later one is open only once every earlier one
      // is done, has no holder left, or has only requests past their hedge time), unless its
      // holder is known to be ORDERED_SLOW_FACTOR times slower per block
      while (active < missing) {
        let first: { w: Wanted, peer: string, ms: number } | undefined
        let bestMs = Infinity
        let bestUnloaded = Infinity
        const open: Array<{ w: Wanted, peer: string, ms: number, unloaded: number, known: boolean }> = []
        for (const w of wanted) {
          if (w.done || w.exhausted || [...w.requests.values()].some(r => !r.slow)) continue
          const peer = pickPeer(holders(w.key), view, w.tried)
          if (peer === undefined) {
            if (w.requests.size === 0) w.exhausted = true
            continue
          }
          const v = view(peer)
          const ms = expectedMs(v)
          const unloaded = expectedMs({ ...v, queued: 0 })
          // only a holder known to be slow (measured, its uplink, or failures on record) is
          // passed over: an unknown one's UNKNOWN_SERVICE_MS is a guess made to try it early.
          // The best is taken over every holder, an unknown one at that guess: on a fresh
          // reader the only known holder is often a thin one (its announced uplink), and
          // compared only with itself it was never passed over (every readahead chunk queued on it)
          const known = v.serviceMs !== undefined || v.failures > 0
          open.push({ w, peer, ms, unloaded, known })
          bestMs = Math.min(bestMs, ms)
          bestUnloaded = Math.min(bestUnloaded, unloaded)
        }
        if (opts?.ordered === true) {
          // a known holder is passed over when slower per block (slower()), or when its queue makes
          // it far slower than the best holder with its own (ORDERED_QUEUED_FLOOR_MS)
          const tooSlow = (o: typeof open[number]): boolean => o.known &&
            (slower(o.unloaded, bestUnloaded) || (o.ms > ORDERED_SLOW_FACTOR * bestMs && o.ms >= ORDERED_QUEUED_FLOOR_MS))
          for (const o of open) if (!tooSlow(o)) { first = o; break }
          if (first !== undefined && first !== open[0] && ctx.counters !== undefined) ctx.counters.passedOver++
        } else {
          for (const o of open) if (o.ms <= PREFER_FACTOR * bestMs) { first = o; break }
        }
        if (first === undefined) break
        ask(first.w, first.peer)
        active++
      }
      if (!wanted.some(w => w.requests.size > 0)) {
        finish(new BlockNotFoundError(wanted.filter(w => !w.done).map(w => w.key),
          `${results.size} of ${need} fetched; ${problems.length > 0 ? problems.slice(0, 5).join('; ') : 'no peer to ask'}`))
      }
    }

    function ask (w: Wanted, peer: string): void {
      w.tried.add(peer)
      // `ordered`: the hedge time is the holder's per-block time with nothing queued, not times
      // the requests queued on it (the reader's own, asked whatever the holder's load): else the
      // nth chunk queued on a silent holder waited ~n times as long, past the read's fetch
      // timeout. A busy holder still sending gets its PATIENCE_ROUNDS; hedge time and patience
      // end ORDERED_MAX_WAIT_MS after the ask at the latest
      const v = view(peer)
      const ordered = opts?.ordered === true
      const hedgeAfter = Math.max(ctx.hedgeMs, HEDGE_FACTOR * expectedMs(ordered ? { ...v, queued: 0 } : v))
      const waitUntil = performance.now() + Math.max(ctx.hedgeMs, ORDERED_MAX_WAIT_MS)
      const nextWait = (): number => ordered ? Math.min(hedgeAfter, waitUntil - performance.now()) : hedgeAfter
      const hedge = (): void => {
        const received = ctx.book.get(peer).received
        const left = nextWait()
        if (received > request.received && request.patience > 0 && left > 0) {
          // bytes are arriving from it: busy, not stalled
          request.received = received
          request.patience--
          request.timer = setTimeout(hedge, left)
          return
        }
        request.slow = true
        if (ctx.counters !== undefined) ctx.counters.hedged++
        schedule()
      }
      const request: Request = {
        peer,
        slow: false,
        cancel: () => {},
        received: ctx.book.get(peer).received,
        patience: PATIENCE_ROUNDS,
        timer: setTimeout(hedge, nextWait())
      }
      w.requests.set(peer, request)
      request.cancel = ctx.client(peer).want(w.cid, {
        block: (bytes) => {
          if (settled || w.requests.get(peer) !== request) return
          clearTimeout(request.timer)
          w.requests.delete(peer)
          if (!w.done) {
            w.done = true
            results.set(w.key, bytes)
            for (const other of [...w.requests.values()]) drop(w, other)
          }
          schedule()
        },
        miss: (err) => {
          if (settled || w.requests.get(peer) !== request) return
          clearTimeout(request.timer)
          w.requests.delete(peer)
          problems.push(err.message)
          schedule()
        }
      }, { background: opts?.background, land: land === undefined ? undefined : (bytes) => land(w.cid, bytes) })
    }

    schedule()
  })
}

/** pullRange's options. */
export interface RangeOptions extends AbortOptions {
  /**
   * Once every peer of `from` was asked, how much longer (ms) the requests still out (past their
   * hedge time, with no answer yet) are waited for before the pull gives up (default 0: at once,
   * as soon as the last peer's hedge time passed).
   */
  lingerMs?: number
  /**
   * The least a peer is given to answer before the next is asked too (default the hedge time):
   * a caller with nowhere else to turn (a repair asking a fragment's one holder,
   * keeper/repair.ts) waits longer on a busy peer.
   */
  waitMs?: number
}

/**
 * Leaves of a block with their proof (RANGE_WANT), verified by `range.verify`, from the first of
 * `from` that delivers: peers are asked one at a time, the one expected to answer first
 * (pickPeer); a "not held", a dropped stream or a wrong answer (its sender is reported by the
 * client) moves the request to the next peer. A peer with no answer within the hedge time (as
 * pullAny's, at least `hedgeMs`) is not given up: the next peer is asked too, and the first
 * answer of either wins (a holder that misses the hedge on a busy host answered a moment later,
 * and its answer was thrown away: with one holder of a data fragment, the read then rebuilt the
 * chunk from k fragments, issue 15). Once every peer was asked, the requests still out are
 * waited for `opts.lingerMs` more. Rejects with BlockNotFoundError when none delivered. Nothing
 * is taken from the local store: a caller holding the block reads it there.
 */
export async function pullRange (ctx: PullContext, range: RangeWant, from: string[], opts?: RangeOptions): Promise<Uint8Array> {
  checkCid(range.cid)
  // the swarm's signal through onAbort (one listener for every pull), the caller's listened to
  // (no AbortSignal.any per 4 KiB read)
  const own = opts?.signal === undefined || opts.signal === ctx.signal ? undefined : opts.signal
  ctx.signal.throwIfAborted()
  own?.throwIfAborted()
  const lingerMs = opts?.lingerMs ?? 0
  const tried = new Set<string>()
  const problems: string[] = []
  const view = (peer: string): ReturnType<typeof peerView> => peerView(ctx, peer)
  return await new Promise<Uint8Array>((resolve, reject) => {
    /** Requests out: peer -> its cancel (its hedge deadline's too). */
    const out = new Map<string, () => void>()
    let over = false
    let linger: ReturnType<typeof setTimeout> | undefined
    const finish = (err: unknown, bytes?: Uint8Array): void => {
      if (over) return
      over = true
      clearTimeout(linger)
      stopped()
      own?.removeEventListener('abort', onOwnAbort)
      for (const cancel of out.values()) cancel()
      out.clear()
      if (bytes !== undefined) resolve(bytes)
      else reject(err)
    }
    function onOwnAbort (this: AbortSignal): void { finish(this.reason) }
    const notFound = (): BlockNotFoundError => new BlockNotFoundError([range.cid.toString()], `leaves [${range.first}, ${range.end}): ${problems.length > 0 ? problems.slice(0, 5).join('; ') : 'no peer to ask'}`)
    /** Ask the next peer; with none left, wait for the requests out (lingerMs), or give up. */
    const next = (): void => {
      if (over) return
      const peer = pickPeer(from, view, tried)
      if (peer === undefined) {
        if (out.size === 0) finish(notFound())
        else if (linger === undefined) {
          linger = setTimeout(() => { finish(notFound()) }, lingerMs)
        }
        return
      }
      tried.add(peer)
      const waitMs = Math.max(opts?.waitMs ?? ctx.hedgeMs, HEDGE_FACTOR * expectedMs(view(peer)))
      let hedged = false
      const hedge = hedges.add(waitMs, () => {
        hedged = true
        problems.push(`${peer} did not answer in ${waitMs} ms`)
        next()
      })
      const cancel = ctx.client(peer).wantRange(range, {
        block: (bytes) => { finish(undefined, bytes) },
        miss: (err) => {
          hedges.cancel(hedge)
          out.delete(peer)
          problems.push(err.message)
          // hedged already: the next peer was asked then; the last one out that misses ends the wait
          if (!hedged) next()
          else if (out.size === 0 && pickPeer(from, view, tried) === undefined) finish(notFound())
        }
      })
      out.set(peer, () => { hedges.cancel(hedge); cancel() })
    }
    const stopped = onAbort(ctx.signal, reason => { finish(reason) })
    own?.addEventListener('abort', onOwnAbort, { once: true })
    next()
  })
}

function peerView (ctx: PullContext, peer: string): { serviceMs?: number, failures: number, queued: number, banned: boolean } {
  const rec = ctx.book.get(peer)
  const uplink = ctx.uplink?.get(peer)
  const serviceMs = rec.serviceMs ?? (uplink === undefined ? undefined : ASSUMED_BLOCK_BYTES / uplink * 1000)
  return { serviceMs, failures: rec.failures, queued: ctx.client(peer).queued, banned: ctx.book.banned(peer) }
}
