// Placement through a relay (DESIGN.md §4, push with forwarding): a writer on a thin uplink
// sends each byte of a chunk about once. Protocol PLACE_PROTOCOL, an rpc.ts call:
//
//   writer -> relay   call  {chunk, size, k, m, fragments[k+m], targets[k+m], pinners[], have?[k+m]}
//   relay  -> writer  next  {t: 'got', n}*          the relay holds n of the fragments it needs
//                     next  {t: 'ack', i, holder}*  fragment i is stored (durably) on `holder`
//                     ok    {t: 'done', bytes, ms}  the relay forwarded `bytes` in `ms` (its uplink)
//                  or error {name, message}         (RelayBusyError, FragmentMismatchError rebuilt)
//
// No block bytes travel on this protocol: they go through the swarm (pulled by the relay,
// pushed by it), so every message here is small and request/response fits it whole.
//
// The relay (a target of the chunk, chosen for its uplink) pulls the k data fragments from the
// writer through the swarm (so the bytes are capped, counted and verified against their CIDs
// like any block), never a spare: parity is asked of targets only, for data fragments the
// writer no longer holds (a retried chunk does not cross the thin uplink twice). It rebuilds the chunk, checks it against the chunk's CID,
// computes the parity itself, checks that every fragment it made has the CID the request names,
// keeps its own fragment and pushes the others to their targets (swarm push; every holder
// verifies); data fragments also go to the hosts pinning the file, on the same chain as their
// target. So the writer uploads the k data fragments (1x the chunk) per relay it tries.
// `have` (optional, bits per fragment: 1 its target, 2 << i pinners[i]) names the holders that
// already hold a fragment (an earlier relay's acknowledgements, a retried placement's): the relay
// sends them nothing, and pulls those fragments (k at most) from their targets rather than from
// the writer, which then uploads only the data fragments still short of k (asked once those
// targets delivered or a grace passed with none arriving, haveGraceMs: a dead or silent one does
// not stall the relay, a slow one still moving is waited for).
// A relay that does not know the field pulls from the writer and forwards to every holder, as
// before.
//
// Time bounds are on progress, not on the whole job (idle.ts): at 1 Mbit/s, a few chunks in
// flight take minutes and are healthy as long as fragments keep arriving. Each side gives up
// after RELAY_IDLE_TIMEOUT_MS without progress; the writer then tries one more relay (which
// pulls what the first one placed from the targets), and anything still unplaced is left to the
// caller (network.ts pushes it directly).
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import type { BlockSink, Swarm } from '../../swarm/index.ts'
import { DEFAULT_UPLINK_BYTES_PER_SECOND } from '../../swarm/index.ts'
import type { AbortOptions } from '@libp2p/interface'
import { CHUNK_SIZE, decodeChunk, encodeChunkAsync } from '../data/index.ts'
import type { ChunkRef } from '../data/index.ts'
import { RpcProtocolError, call, defineProtocol, idleDeadline, serve } from '../net/index.ts'
import type { CallContext, RpcDialer, RpcServer, UplinkBook } from '../net/index.ts'
import { logger, shortCid, shortPeer } from '../log.ts'
import { anySignal } from '../abort.ts'
import { limiter } from '../pool.ts'

const log = logger('keeper:forward')

/** 2.0.0: rpc.ts's envelope (1.0.0 sent bare dag-cbor messages, errors as an ERROR reply). */
export const PLACE_PROTOCOL = '/darkfs/place/2.0.0'
/** Largest place message: a request names at most MAX_FRAGMENTS CIDs and peer ids. */
export const MAX_PLACE_MESSAGE_BYTES = 16 * 1024
/** Most fragments (k + m) a relayed chunk may have. */
export const MAX_FRAGMENTS = 32
/** Most pinning hosts named in one request. */
export const MAX_PINNERS = 16
/** Longest peer id string accepted in a request. */
export const MAX_PEER_ID_CHARS = 128
/** Chunks this host relays for others at once; more are refused (the writer pushes itself). */
export const MAX_RELAYS_IN_PROGRESS = 8
/**
 * Longest time without progress (a fragment reached the relay, a holder acknowledged one) before
 * either side gives up on a relayed chunk. A 256 KiB fragment at 1 Mbit/s shared by
 * MAX_OWN_RELAYED_CHUNKS relays takes about 5 s: this leaves room for a loaded, slower link.
 */
export const RELAY_IDLE_TIMEOUT_MS = 60_000
/**
 * Chunks this host has relays working on at once. On a thin uplink every relay in flight
 * shares it: more at once only makes each chunk take longer; two keep the uplink busy while a
 * relay forwards.
 */
export const MAX_OWN_RELAYED_CHUNKS = 2
/** Times a relay asks the writer for one data fragment before looking for it at the targets. */
export const WRITER_PULL_ATTEMPTS = 3
/**
 * How long a relay waits on the targets the writer says hold fragments (the request's `have`)
 * with no fragment arriving from them before it asks the writer for the data fragments still
 * short of k: a target that is down or stalled held a second relay up to its idle timeout
 * (RELAY_IDLE_TIMEOUT_MS). Restarted at each arrival, and a fragment's time at
 * HAVE_PULL_MIN_BYTES_PER_SECOND added (haveGraceMs): a 256 KiB fragment from a target at
 * 1 Mbit/s takes about 2 s, a 1 MiB one about 8 s, and the writer uploaded it anyway.
 */
export const HAVE_PULL_GRACE_MS = 5_000
/** The slowest link from a target a relay's grace allows for one fragment (1 Mbit/s; haveGraceMs). */
export const HAVE_PULL_MIN_BYTES_PER_SECOND = 125_000

/** The grace a relay gives the targets between arrivals (HAVE_PULL_GRACE_MS) for a chunk of `size` bytes coded with `k`. */
export function haveGraceMs (size: number, k: number): number {
  const fragment = Math.ceil(Math.max(0, size) / Math.max(1, k))
  return Math.min(RELAY_IDLE_TIMEOUT_MS / 2, HAVE_PULL_GRACE_MS + Math.ceil(fragment * 1000 / HAVE_PULL_MIN_BYTES_PER_SECOND))
}
/** Relays tried for one chunk before the rest is left to the caller's direct pushes. */
export const MAX_RELAY_ATTEMPTS = 2

export class ForwardError extends Error {
  override readonly name: string = 'ForwardError'
}

/** A malformed place message (the stream carrying it is closed). */
export class PlaceProtocolError extends RpcProtocolError {
  override readonly name = 'PlaceProtocolError'
}

/** The relay made fragments whose CIDs differ from the request's: nothing is forwarded. */
export class FragmentMismatchError extends ForwardError {
  override readonly name = 'FragmentMismatchError'
}

/** The relay is relaying MAX_RELAYS_IN_PROGRESS chunks already. */
export class RelayBusyError extends ForwardError {
  override readonly name = 'RelayBusyError'
}

export interface PlaceRequest {
  chunk: CID
  size: number
  k: number
  m: number
  fragments: CID[]
  targets: string[]
  pinners: string[]
  /** Per fragment, its holders that hold it already: bit 0 its target, bit i + 1 pinners[i]. */
  have?: number[]
}
export type PlaceProgress = { t: 'got', n: number } | { t: 'ack', i: number, holder: string }
export interface PlaceDone { t: 'done', bytes: number, ms: number }
type PlaceReply = PlaceProgress | PlaceDone

export interface ForwardHost extends RpcDialer, RpcServer {
  readonly peerId: string
}

export interface ForwardComponents {
  host: ForwardHost
  swarm: Pick<Swarm, 'pullAny' | 'push'>
  /** Durable local store (and announcement) for the relay's own fragments. */
  sink: BlockSink
  /** Peers' uplinks: picks relays, and learns from what relays report. */
  uplinks: UplinkBook
}

export interface ForwardStats {
  /** Chunks this host sent through a relay. */
  sent: number
  /** Chunks this host relayed for others. */
  relayed: number
  /** Relayed placements that failed (the writer then pushes what is missing itself). */
  failed: number
  /** Why the last one failed. */
  lastError?: string
  /** Chunks this host failed to relay for others (the writer was told why, when it could be). */
  relayFailed: number
  /** Why the last of those failed. */
  lastRelayError?: string
}

export interface PlaceViaOptions extends AbortOptions {
  /** Hosts pinning the chunk's file: they get the data fragments too. */
  pinners?: string[]
  /** Fragment `index` is stored on `holder`. */
  onAck: (index: number, holder: string) => void
  /** Per fragment, the hosts known to hold it already: no relay sends it to them again. */
  held?: ReadonlyArray<ReadonlySet<string>>
}

export interface Forwarder {
  start: () => Promise<void>
  stop: () => Promise<void>
  /**
   * Place chunk `ref` (k > 1, its fragments in the local store) on `targets` (fragment j on
   * targets[j % targets.length]) through one relay. Resolves when the relay is done (at once
   * when opts.held says every target and pinner holds its fragments); rejects when it fails
   * (acknowledged fragments have been reported). A second relay tried is told what the first
   * placed.
   */
  place: (ref: ChunkRef, targets: string[], opts: PlaceViaOptions) => Promise<void>
  /** The relay `place` would pick among these peers. */
  pickRelay: (candidates: string[]) => string | undefined
  stats: () => ForwardStats
  /**
   * Whether this host is relaying chunk `chunk` now (gathering, storing or forwarding it). A
   * pinning host that is also the relay gets the data fragments that way: fetching them again
   * for its pin while the relay gathers them would pull them twice from the writer.
   */
  relaying: (chunk: CID) => boolean
}

/**
 * The fragments a relay (`self`) rebuilds the chunk from: the k data fragments from the writer
 * (never a spare: its uplink is the thin one); for those it no longer holds (placed and dropped
 * by an earlier attempt), any fragments from the targets. Targets are not asked first: on a
 * first attempt none holds anything, and every DONT_HAVE counts against a peer in the pull's
 * choice; but the fragments the writer says their targets hold (req.have) are asked of those
 * targets first, and the writer only for the data fragments still short of k once they came or
 * `graceMs` passed with none arriving (a target down or stalled does not hold the relay up to
 * its idle timeout; its pull goes on, and is given up once k are in hand; one slow but moving
 * is waited for). `progress` hears the count in hand after each arrival.
 */
export async function gatherFragments (swarm: Pick<Swarm, 'pullAny'>, self: string, req: PlaceRequest, writer: string, signal: AbortSignal, progress: (n: number) => void, graceMs = haveGraceMs(req.size, req.k)): Promise<Map<string, Uint8Array>> {
  const targets = [...new Set(req.targets.filter(p => p !== self && p !== writer))]
  const got = new Map<string, Uint8Array>()
  const covered = (): number => req.fragments.filter(f => got.has(f.toString())).length
  const distinct = (cids: CID[]): CID[] => [...new Map(cids.map(f => [f.toString(), f])).values()]
  /** One fragment from `peer` (`who` and `attempt`, for the log): whether it came. */
  const pullFrom = async (cid: CID, peer: string, who: string, on: AbortSignal, attempt?: number): Promise<boolean> => {
    const bytes = (await swarm.pullAny([cid], 1, [peer], { signal: on }).catch((err: Error) => {
      log('chunk %s: pulling %s from %s %s failed%s: %s', shortCid(req.chunk), shortCid(cid), who, shortPeer(peer), attempt === undefined ? '' : ` (attempt ${attempt})`, err.message)
      return undefined
    }))?.get(cid.toString())
    if (bytes === undefined) return false
    got.set(cid.toString(), bytes)
    arrived()
    progress(covered())
    return true
  }
  /** Told of each arrival: the grace on the targets starts again (set while it runs). */
  let arrived = (): void => {}
  // placed already (an earlier relay, an earlier attempt): from their targets, not across the
  // writer's uplink again (this relay's own: from its store, pullAny reads it there first)
  const placed = req.fragments.flatMap((cid, j) => ((req.have?.[j] ?? 0) & 1) !== 0 && (targets.includes(req.targets[j]) || req.targets[j] === self) ? [{ cid, from: req.targets[j] }] : [])
  const enough = new AbortController()
  const fromTargets = anySignal([signal, enough.signal])
  const pulls = Promise.all(placed.slice(0, req.k).map(async ({ cid, from }) => await pullFrom(cid, from, from === self ? 'this relay' : 'its target', fromTargets)))
  try {
    if (placed.length > 0) {
      // over when graceMs pass with no fragment arriving, the pulls came first, or the relay is
      // given up (checked next)
      const graceOver = Promise.withResolvers<void>()
      let timer = setTimeout(graceOver.resolve, graceMs)
      arrived = () => { clearTimeout(timer); timer = setTimeout(graceOver.resolve, graceMs) }
      const over = (): void => { graceOver.resolve() }
      signal.addEventListener('abort', over, { once: true })
      try {
        await Promise.race([pulls, graceOver.promise])
      } finally {
        clearTimeout(timer)
        arrived = () => {}
        signal.removeEventListener('abort', over)
      }
    }
    signal.throwIfAborted()
    const fromWriter = distinct(req.fragments.slice(0, req.k).filter(f => !got.has(f.toString()))).slice(0, Math.max(0, req.k - covered()))
    await Promise.all(fromWriter.map(async cid => {
      // a want this host sent the writer before it was chosen (its keeper's repair, say) was
      // refused, and a pull joining it shares the refusal: ask again with a want of our own
      for (let i = 0; i < WRITER_PULL_ATTEMPTS && !signal.aborted; i++) {
        if (got.has(cid.toString()) || await pullFrom(cid, writer, 'the writer', signal, i + 1)) return
      }
    }))
    signal.throwIfAborted()
    // the targets' pulls still out: given up when k are in hand, else what they bring counts
    if (covered() >= req.k) enough.abort()
    await pulls
    signal.throwIfAborted()
  } finally {
    enough.abort()
  }
  const rest = distinct(req.fragments.filter(f => !got.has(f.toString())))
  if (covered() < req.k && rest.length > 0 && targets.length > 0) {
    const more = await swarm.pullAny(rest, Math.min(rest.length, req.k - covered()), targets, { signal })
    for (const [key, bytes] of more) got.set(key, bytes)
    progress(covered())
  }
  return got
}

export function createForwarder (c: ForwardComponents): Forwarder {
  const self = c.host.peerId
  const busy = new Map<string, number>()
  const stats: ForwardStats = { sent: 0, relayed: 0, failed: 0, relayFailed: 0 }
  let relaying = 0
  /** chunk CID -> relay requests for it in progress here. */
  const inRelay = new Map<string, number>()
  /** Slots for this host's own chunks going through a relay (MAX_OWN_RELAYED_CHUNKS). */
  const own = limiter(MAX_OWN_RELAYED_CHUNKS)
  let shutdown = new AbortController()
  let running = false
  let unserve: (() => Promise<void>) | undefined

  const pickRelay = (candidates: string[]): string | undefined => {
    let best: string | undefined
    let bestScore = -1
    for (const p of new Set(candidates)) {
      if (p === self) continue
      const up = c.uplinks.get(p)?.bytesPerSecond ?? DEFAULT_UPLINK_BYTES_PER_SECOND
      const score = up / (1 + (busy.get(p) ?? 0))
      if (score > bestScore) { best = p; bestScore = score }
    }
    return best
  }

  const place = async (ref: ChunkRef, targets: string[], opts: PlaceViaOptions): Promise<void> => {
    if (ref.cid === null || ref.k < 2) throw new ForwardError('only erasure-coded chunks are placed through a relay')
    const perFragment = ref.fragments.map((_, j) => targets[j % targets.length])
    const pinners = [...new Set(opts.pinners ?? [])].filter(p => p !== self).slice(0, MAX_PINNERS)
    // who holds each fragment: what the caller knows, and the acknowledgements as they come (a
    // relay tried next is not sent to them again)
    const held = ref.fragments.map((_, j) => new Set(opts.held?.[j] ?? []))
    const holders = (j: number): string[] => [perFragment[j], ...(j < ref.k ? pinners : [])]
    if (ref.fragments.every((_, j) => holders(j).every(p => p === self || held[j].has(p)))) return
    const onAck = (j: number, holder: string): void => { held[j].add(holder); opts.onAck(j, holder) }
    // the targets' repair and the pinning hosts' catch-up do not fetch the chunk from here
    // meanwhile: background wants for a pending chunk are refused (network.ts withholdsBackground)
    const waitSignal = anySignal([opts.signal, shutdown.signal])
    await own(async () => {
      const tried = new Set<string>()
      for (let attempt = 0; ; attempt++) {
        const relay = pickRelay(perFragment.filter(p => !tried.has(p)))
        if (relay === undefined) return
        tried.add(relay)
        log('chunk %s: through relay %s (attempt %d)', shortCid(ref.cid!), shortPeer(relay), attempt + 1)
        try {
          await placeVia(ref, relay, perFragment, pinners, held, onAck, waitSignal)
          return
        } catch (err) {
          log('chunk %s: relay %s failed: %s', shortCid(ref.cid!), shortPeer(relay), (err as Error).message)
          // the caller's abort or shutdown ends it; a wrong request would be wrong at any relay
          if (waitSignal.aborted || err instanceof FragmentMismatchError || attempt + 1 >= MAX_RELAY_ATTEMPTS) throw err
        }
      }
    }, { signal: waitSignal })
  }

  /** One attempt through `relay`, given up after RELAY_IDLE_TIMEOUT_MS without a reply. */
  const placeVia = async (ref: ChunkRef, relay: string, perFragment: string[], pinners: string[], held: Array<Set<string>>, onAck: (index: number, holder: string) => void, parent: AbortSignal): Promise<void> => {
    busy.set(relay, (busy.get(relay) ?? 0) + 1)
    try {
      const have = held.map((hs, j) => (hs.has(perFragment[j]) ? 1 : 0) + (j < ref.k ? pinners.reduce((bits, p, i) => hs.has(p) ? bits + (2 << i) : bits, 0) : 0))
      const req: PlaceRequest = { chunk: ref.cid!, size: ref.size, k: ref.k, m: ref.m, fragments: ref.fragments, targets: perFragment, pinners, ...(have.some(b => b !== 0) ? { have } : {}) }
      const done = await call(c.host, relay, PLACE, req, {
        signal: parent,
        onNext: (reply) => {
          // only the fragment's own target counts as its holder
          if (reply.t === 'ack' && (reply.holder === perFragment[reply.i] || (reply.i < ref.k && pinners.includes(reply.holder)))) onAck(reply.i, reply.holder)
        }
      })
      c.uplinks.observe(relay, done.bytes, done.ms)
      stats.sent++
      log('chunk %s placed through relay %s', ref.cid!.toString(), relay)
    } catch (err: any) {
      stats.failed++
      stats.lastError = `${String(err?.name)}: ${String(err?.message).slice(0, 300)}`
      log('chunk %s through relay %s failed: %e', ref.cid!.toString(), relay, err)
      throw err
    } finally {
      busy.set(relay, (busy.get(relay) ?? 1) - 1)
      if (busy.get(relay) === 0) busy.delete(relay)
    }
  }

  /** The relay's side of one request. */
  const relay = async (req: PlaceRequest, ctx: CallContext<PlaceProgress>): Promise<PlaceDone> => {
    const writer = ctx.peer
    // the writer gone (its stream reset, the connection lost) aborts ctx.signal and ends the
    // work: a relay that went on gathering would pull the chunk from the writer's thin uplink a
    // second time, beside the relay the writer picks next
    const idle = idleDeadline(RELAY_IDLE_TIMEOUT_MS, `relaying for ${writer}`, ctx.signal)
    const signal = idle.signal
    // progress is fire-and-forget (rpc.ts keeps replies in order): a write whose stream went
    // away fails the job through ctx.signal, not here
    const post = (reply: PlaceProgress): void => {
      ctx.next(reply).catch((err: unknown) => { log.trace('progress to %s not sent: %e', writer, err) })
    }
    let counted = false
    const chunkKey = req.chunk.toString()
    try {
      if (relaying >= MAX_RELAYS_IN_PROGRESS) throw new RelayBusyError(`relaying ${MAX_RELAYS_IN_PROGRESS} chunks already`)
      relaying++
      counted = true
      inRelay.set(chunkKey, (inRelay.get(chunkKey) ?? 0) + 1)
      // fragments, each verified against its CID by the swarm; every arrival is progress
      const got = await gatherFragments(c.swarm, self, req, writer, signal, (n) => { idle.touch(); post({ t: 'got', n }) })
      let chunk: Uint8Array
      try {
        chunk = decodeChunk({ offset: 0, size: req.size, cid: req.chunk, k: req.k, m: req.m, fragments: req.fragments }, req.fragments.map(f => got.get(f.toString())))
      } catch (err: any) {
        throw new FragmentMismatchError(`the fragments of chunk ${req.chunk.toString()} do not rebuild it: ${err.message}`)
      }
      const { ref, blocks } = await encodeChunkAsync(chunk, 0, req.k, req.m)
      const wrong = ref.fragments.findIndex((f, j) => !f.equals(req.fragments[j]))
      if (wrong >= 0) throw new FragmentMismatchError(`fragment ${wrong} of chunk ${req.chunk.toString()} encodes to ${ref.fragments[wrong].toString()}, the request names ${req.fragments[wrong].toString()}`)
      // each fragment's holders (its target, the pinners for a data fragment) that lack it: the
      // writer's `have` names those that hold it already
      const holders = (j: number): string[] => {
        const bits = req.have?.[j] ?? 0
        const all = [[req.targets[j], 1], ...(j < req.k ? req.pinners.map((p, i): [string, number] => [p, 2 << i]) : [])] as Array<[string, number]>
        return [...new Set(all.filter(([, bit]) => (bits & bit) === 0).map(([p]) => p))]
      }
      // own fragments first: durable here before anything is forwarded
      for (let j = 0; j < blocks.length; j++) {
        if (!holders(j).includes(self)) continue
        // (the writer's block: it may release it here, keeper/release.ts)
        await c.sink.put(blocks[j].cid, blocks[j].bytes, { signal, origin: writer })
        post({ t: 'ack', i: j, holder: self })
      }
      const deliveries = blocks
        .map((b, j) => ({ cid: b.cid, bytes: b.bytes, to: holders(j).filter(p => p !== self && p !== writer) }))
        .filter(d => d.to.length > 0)
      const start = performance.now()
      await c.swarm.push(deliveries, {
        signal,
        // the holders that read it learn whose blocks these are (keeper/release.ts)
        origin: writer,
        onAck: (cid, peer) => {
          idle.touch()
          req.fragments.forEach((f, j) => { if (holders(j).includes(peer) && f.equals(cid)) post({ t: 'ack', i: j, holder: peer }) })
        }
      })
      // what this relay uploaded itself: the first hop of each delivery (the swarm chains the rest)
      const bytes = deliveries.reduce((s, d) => s + d.bytes.byteLength, 0)
      stats.relayed++
      log('relayed chunk %s for %s: %d bytes forwarded', chunkKey, writer, bytes)
      return { t: 'done', bytes, ms: performance.now() - start }
    } catch (err: any) {
      // rpc.ts tells the writer (the error reply) and closes the stream
      const e = err instanceof Error ? err : new Error(String(err))
      stats.relayFailed++
      stats.lastRelayError = `${e.name}: ${e.message.slice(0, 300)}`
      throw e
    } finally {
      idle.clear()
      if (counted) {
        relaying--
        const n = (inRelay.get(chunkKey) ?? 1) - 1
        if (n > 0) inRelay.set(chunkKey, n)
        else inRelay.delete(chunkKey)
      }
    }
  }

  return {
    async start () {
      if (running) return
      running = true
      shutdown = new AbortController()
      unserve = await serve(c.host, PLACE, { call: relay }, {
        signal: shutdown.signal,
        onError: (err, peer) => {
          // a request that never reached relay() (malformed, unreadable) fails here too
          if (err instanceof RpcProtocolError) { stats.relayFailed++; stats.lastRelayError = `${err.name}: ${err.message.slice(0, 300)}` }
          log('relaying for %s failed: %e', peer, err)
        }
      })
    },
    async stop () {
      if (!running) return
      running = false
      shutdown.abort(new ForwardError('forwarder stopped'))
      await unserve?.()
      unserve = undefined
    },
    place,
    pickRelay,
    stats: () => ({ ...stats }),
    relaying: (chunk) => inRelay.has(chunk.toString())
  }
}

const isCount = (x: unknown, max: number): x is number => Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= max
const isPeer = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= MAX_PEER_ID_CHARS

function cbor (bytes: Uint8Array): any {
  try { return dagCbor.decode(bytes) } catch (err: any) { throw new PlaceProtocolError(`malformed place message: ${err.message}`) }
}

/** A request, validated (bounded, every field checked). */
function validateRequest (r: any): PlaceRequest {
  const ok = r !== null && typeof r === 'object' &&
    CID.asCID(r.chunk) != null && isCount(r.size, CHUNK_SIZE) && r.size > 0 &&
    isCount(r.k, MAX_FRAGMENTS) && r.k >= 2 && isCount(r.m, MAX_FRAGMENTS) && r.k + r.m <= MAX_FRAGMENTS &&
    Array.isArray(r.fragments) && r.fragments.length === r.k + r.m && r.fragments.every((f: unknown) => CID.asCID(f) != null) &&
    Array.isArray(r.targets) && r.targets.length === r.k + r.m && r.targets.every(isPeer) &&
    (r.pinners === undefined || (Array.isArray(r.pinners) && r.pinners.length <= MAX_PINNERS && r.pinners.every(isPeer))) &&
    (r.have === undefined || (Array.isArray(r.have) && r.have.length === r.k + r.m && r.have.every((b: unknown) => isCount(b, (2 << (r.pinners?.length ?? 0)) - 1))))
  if (!ok) throw new PlaceProtocolError('malformed place request')
  return {
    chunk: CID.asCID(r.chunk)!, size: r.size, k: r.k, m: r.m, fragments: r.fragments.map((f: unknown) => CID.asCID(f)!), targets: r.targets, pinners: r.pinners ?? [],
    ...(r.have === undefined ? {} : { have: r.have })
  }
}

/** A reply to a request for `n` fragments, validated. */
function validateReply (r: any, n: number): PlaceReply {
  if (r?.t === 'got' && isCount(r.n, n)) return { t: 'got', n: r.n }
  if (r?.t === 'ack' && isCount(r.i, n - 1) && isPeer(r.holder)) return { t: 'ack', i: r.i, holder: r.holder }
  if (r?.t === 'done' && typeof r.bytes === 'number' && r.bytes >= 0 && typeof r.ms === 'number' && r.ms >= 0) return { t: 'done', bytes: r.bytes, ms: r.ms }
  throw new PlaceProtocolError('malformed place reply')
}

/** Most progress replies one place call takes (PLACE's maxNext). */
export function placeProgressMax (req: Pick<PlaceRequest, 'fragments' | 'pinners'>): number {
  return 4 * req.fragments.length * (2 + req.pinners.length)
}

/** PLACE_PROTOCOL on rpc.ts. */
export const PLACE = defineProtocol<PlaceRequest, PlaceDone, never, PlaceProgress>({
  id: PLACE_PROTOCOL,
  maxMessageBytes: MAX_PLACE_MESSAGE_BYTES,
  // on silence: a relay sends progress as fragments arrive and holders acknowledge them
  timeoutMs: RELAY_IDLE_TIMEOUT_MS,
  malformed: PlaceProtocolError,
  errors: [RelayBusyError, FragmentMismatchError],
  request: validateRequest,
  reply: (v, req) => {
    const r = validateReply(v, req.fragments.length)
    if (r.t !== 'done') throw new PlaceProtocolError(`a final place reply is done, got ${r.t}`)
    return r
  },
  next: (v, req) => {
    const r = validateReply(v, req.fragments.length)
    if (r.t === 'done') throw new PlaceProtocolError('done is a final reply')
    return r
  },
  // a relay's progress: a 'got' per fragment it gathers, an 'ack' per fragment and holder (its
  // target, and the pinners of a data fragment); four times that leaves room for repeats (a
  // fragment pulled from two sources at once, acks of a retried push). Each starts
  // the call's silence again: unbounded, a relay replying for ever held the writer's call for ever
  maxNext: (req) => placeProgressMax(req)
})

/** Decode and validate a bare request value (dag-cbor). */
export function decodeRequest (bytes: Uint8Array): PlaceRequest {
  return validateRequest(cbor(bytes))
}

/** Decode and validate a bare reply value (dag-cbor) to a request for `n` fragments. */
export function decodeReply (bytes: Uint8Array, n: number): PlaceReply {
  return validateReply(cbor(bytes), n)
}

/**
 * Whether an uncaught exception is libp2p's write on a connection that closed while a stream
 * was being opened on it (yamux queues the stream's first frame as a microtask, outside any
 * promise): it costs that connection only, so a host logs it and keeps running.
 */
export function isStreamRace (err: unknown): boolean {
  const e = err as { name?: unknown, stack?: unknown } | null
  return e?.name === 'StreamStateError' && typeof e.stack === 'string' && e.stack.includes('libp2p-yamux')
}
