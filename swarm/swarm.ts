// The swarm: one node's side of '/darkfs/swarm/1.0.0'. Ties the inbound handler (serve.ts),
// the per-peer clients (client.ts), multi-source pull (pull.ts) and push with forwarding
// (push.ts, plan.ts) to the components and caps it is given. See index.ts for the contract.
import type { AbortOptions, Stream } from '@libp2p/interface'
import { anySignal } from './abort.ts'
import type { CID } from 'multiformats/cid'
import { Client } from './client.ts'
import type { Channel } from './channel.ts'
import { SwarmStoppedError, WrongBlockError } from './errors.ts'
import { PeerBook } from './peers.ts'
import { plan } from './plan.ts'
import { PROTOCOL, PROTOCOL_ORIGINS, PROTOCOL_RANGES } from './protocol.ts'
import { MIN_HEDGE_MS, pullAny, pullRange } from './pull.ts'
import type { RangeOptions } from './pull.ts'
import type { RangeWant } from './client.ts'
import type { PullCounters, PullOptions } from './pull.ts'
import { PUSH_HOP_TIMEOUT_MS, deliver } from './push.ts'
import { has } from './has.ts'
import type { DeliverContext } from './push.ts'
import { allOf, tokenBucket } from './rate.ts'
import type { RateLimiter } from './rate.ts'
import { serve } from './serve.ts'
import type { BlockSink, BlockSource } from './serve.ts'
import { slots } from './slots.ts'
import { checkCid, matches } from './verify.ts'
import { logger, shortCid, shortPeer } from './log.ts'

const log = logger('swarm')

/** Upload slots: blocks being read and sent to peers at once, over all peers. */
export const DEFAULT_UPLOAD_SLOTS = 8
/** Inbound (and outbound) swarm streams allowed per connection. */
export const MAX_STREAMS_PER_CONNECTION = 4

export interface SwarmInit {
  /** Total upload cap in bytes/s over all peers (default: none). */
  maxUploadBytesPerSecond?: number
  /** Upload cap per peer in bytes/s (default: none), so one reader cannot take all the uplink. */
  maxUploadBytesPerSecondPerPeer?: number
  /** Total download cap in bytes/s (default: none). */
  maxDownloadBytesPerSecond?: number
  /** Blocks served at once over all peers (default DEFAULT_UPLOAD_SLOTS). */
  uploadSlots?: number
  /** Known uplink of peers in bytes/s (configured or measured), for the forwarding plan. */
  uplink?: Map<string, number>
  /** Children per forwarder in push plans: 1 = chains (default). */
  fanout?: number
  /** Shortest wait before a slow block request is hedged (default MIN_HEDGE_MS). */
  hedgeMs?: number
  /** Longest wait for one hop of a push before routing around it (default PUSH_HOP_TIMEOUT_MS). */
  pushHopTimeoutMs?: number
}

/** The remote end of an inbound stream, as libp2p's Connection gives it. */
export interface RemoteConnection { remotePeer: { toString: () => string } }

export interface SwarmComponents {
  /** This node's peer id. */
  peerId: string
  handle: (protocol: string, handler: (stream: Stream, connection: RemoteConnection) => void, opts: { maxInboundStreams: number, maxOutboundStreams: number }) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
  dialProtocol: (peer: string, protocol: string, opts?: AbortOptions) => Promise<Stream>
  hangUp: (peer: string) => Promise<void>
  /** Verified local blocks (served to peers, and used before asking any). */
  blocks: BlockSource
  /** Durable local store for pushed blocks. */
  sink: BlockSink
  /**
   * Fresh memory of `length` bytes for a large frame a peer sent in several pieces on a stream
   * it opened to this host (a pushed block, mostly), which the swarm joins there (FrameDecoder's
   * `join`); default: a fresh buffer of its own. The host's can have its pages faulted in at once
   * (node/data chunkBytes). Not used for answers to this host's own asks (they land, or are
   * joined into a fresh buffer).
   */
  frameBytes?: (length: number) => Uint8Array
}

export interface Delivery { cid: CID, bytes: Uint8Array, to: string[] }

/**
 * Options of Swarm.push. `verified`: the caller hashed each delivery's bytes to its CID (its
 * encode made them, or its store checked them on reading), so push does not hash them again;
 * every receiver checks them on arrival whatever this says.
 */
export interface PushOptions extends AbortOptions {
  onAck?: (cid: CID, peer: string) => void
  verified?: boolean
  /** The peer whose blocks these are (default: this host; a relay pushes a writer's, keeper/forward.ts): told to holders that speak PROTOCOL_ORIGINS. */
  origin?: string
}

export interface SwarmStats {
  bytesSent: number
  bytesReceived: number
  peers: Record<string, { sent: number, received: number, rttMs?: number }>
  /** Wants peers have queued with us now (bounded by MAX_WANTS_PER_PEER each). */
  wantsQueued: number
  /** Block requests of pulls (pullAny) that went past their hedge time since start. */
  hedged: number
  /** Times `ordered` pulls asked a later block with an earlier one passed over, its holder known to be slow (ORDERED_SLOW_FACTOR): events, not blocks (one block passed over for two later ones counts twice). */
  passedOver: number
}

export interface Swarm {
  start: () => Promise<void>
  stop: () => Promise<void>
  pull: (cid: CID, from: string[], opts?: AbortOptions) => Promise<Uint8Array>
  pullAny: (cids: CID[], need: number, from: Map<string, string[]> | string[], opts?: PullOptions) => Promise<Map<string, Uint8Array>>
  /** Leaves [first, end) of a block with their proof, checked by `range.verify`, from any of `from` (RANGE_WANT). */
  pullRange: (range: RangeWant, from: string[], opts?: RangeOptions) => Promise<Uint8Array>
  push: (deliveries: Delivery[], opts?: PushOptions) => Promise<Map<string, string[]>>
  stats: () => SwarmStats
  /** Which of `cids` `peer` holds (have-only wants; nothing is moved), by cid.toString(). */
  has: (cids: CID[], peer: string, opts?: AbortOptions) => Promise<Set<string>>
}

export function createSwarm (init: SwarmInit = {}): (components: SwarmComponents) => Swarm {
  return (components) => new SwarmNode(init, components)
}

class SwarmNode implements Swarm {
  private readonly init: SwarmInit
  private readonly components: SwarmComponents
  private readonly book = new PeerBook()
  private readonly pulls: PullCounters = { hedged: 0, passedOver: 0 }
  private readonly clients = new Map<string, Client>()
  private readonly inbound = new Set<Channel>()
  private readonly wantsQueued = new Map<string, number>()
  /** Peers that do not speak PROTOCOL_RANGES (bounded by the peers this host talks to). */
  private readonly noRanges = new Set<string>()
  /** Peers that do not speak PROTOCOL_ORIGINS (bounded the same way). */
  private readonly noOrigins = new Set<string>()
  private readonly totalUpload: RateLimiter
  private readonly download: RateLimiter
  private readonly peerUpload = new Map<string, RateLimiter>()
  private readonly uploadSlots
  private shutdown = new AbortController()
  private pulling?: Parameters<typeof pullAny>[0]
  private running = false
  private bytesSent = 0
  private bytesReceived = 0

  constructor (init: SwarmInit, components: SwarmComponents) {
    this.init = init
    this.components = components
    this.totalUpload = tokenBucket({ rate: init.maxUploadBytesPerSecond })
    this.download = tokenBucket({ rate: init.maxDownloadBytesPerSecond })
    this.uploadSlots = slots(init.uploadSlots ?? DEFAULT_UPLOAD_SLOTS)
    this.shutdown.abort(new SwarmStoppedError())
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.shutdown = new AbortController()
    // one serving side for all: PROTOCOL_RANGES is PROTOCOL with range wants, PROTOCOL_ORIGINS
    // that with pushes naming their origin
    for (const protocol of [PROTOCOL, PROTOCOL_RANGES, PROTOCOL_ORIGINS]) {
      await this.components.handle(protocol, (stream, connection) => { this.onStream(stream, connection.remotePeer.toString()) }, {
        maxInboundStreams: MAX_STREAMS_PER_CONNECTION,
        maxOutboundStreams: MAX_STREAMS_PER_CONNECTION
      })
    }
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.shutdown.abort(new SwarmStoppedError())
    // ignored: the host may be stopping too, and a protocol left registered takes no more streams once we stopped
    for (const protocol of [PROTOCOL, PROTOCOL_RANGES, PROTOCOL_ORIGINS]) await this.components.unhandle(protocol).catch(() => {})
    for (const client of this.clients.values()) client.stop()
    this.clients.clear()
    await Promise.all([...this.inbound].map(async ch => { await ch.close() }))
    this.inbound.clear()
  }

  async pull (cid: CID, from: string[], opts?: AbortOptions): Promise<Uint8Array> {
    const got = await this.pullAny([cid], 1, from, opts)
    return got.get(cid.toString()) as Uint8Array
  }

  async pullAny (cids: CID[], need: number, from: Map<string, string[]> | string[], opts?: PullOptions): Promise<Map<string, Uint8Array>> {
    if (!this.running) throw new SwarmStoppedError()
    return await pullAny(this.pullContext(), cids, need, from, opts)
  }

  async pullRange (range: RangeWant, from: string[], opts?: RangeOptions): Promise<Uint8Array> {
    if (!this.running) throw new SwarmStoppedError()
    return await pullRange(this.pullContext(), range, from, opts)
  }

  /** The pulls' context, made again only with a new shutdown signal (a restart): not per pull. */
  private pullContext (): Parameters<typeof pullAny>[0] {
    if (this.pulling?.signal === this.shutdown.signal) return this.pulling
    this.pulling = {
      client: (peer) => this.client(peer),
      book: this.book,
      blocks: this.components.blocks,
      hedgeMs: this.init.hedgeMs ?? MIN_HEDGE_MS,
      signal: this.shutdown.signal,
      uplink: this.init.uplink,
      counters: this.pulls
    }
    return this.pulling
  }

  async push (deliveries: Delivery[], opts?: PushOptions): Promise<Map<string, string[]>> {
    if (!this.running) throw new SwarmStoppedError()
    for (const d of deliveries) {
      checkCid(d.cid)
      if (opts?.verified !== true && !matches(d.cid, d.bytes)) throw new WrongBlockError(d.cid.toString(), this.components.peerId)
    }
    const routes = plan(deliveries.map(d => ({ to: d.to, size: d.bytes.byteLength })), {
      self: this.components.peerId,
      uplink: this.init.uplink,
      fanout: this.init.fanout
    })
    const signal = anySignal([opts?.signal, this.shutdown.signal])
    const acks = new Map<string, string[]>()
    for (const d of deliveries) acks.set(d.cid.toString(), [])
    await Promise.all(deliveries.map(async (d, i) => {
      const holders = acks.get(d.cid.toString()) as string[]
      const onAck = (peer: string): void => {
        if (holders.includes(peer)) return
        holders.push(peer)
        opts?.onAck?.(d.cid, peer)
      }
      await deliver(this.deliverContext(), d.cid, d.bytes, routes[i], onAck, { signal, origin: opts?.origin ?? this.components.peerId }).catch((err: Error) => {
        // the result says it: holders that did not ACK are absent from it
        log('push of %s failed after %d ack(s) of %d: %s', shortCid(d.cid), holders.length, d.to.length, err.message)
      })
    }))
    signal.throwIfAborted()
    return acks
  }

  async has (cids: CID[], peer: string, opts?: AbortOptions): Promise<Set<string>> {
    if (!this.running) throw new SwarmStoppedError()
    const signal = anySignal([opts?.signal, this.shutdown.signal])
    return await has({
      peer,
      open: async (o) => await this.components.dialProtocol(peer, PROTOCOL, o),
      download: this.download,
      onSent: (n) => { this.bytesSent += n },
      onReceived: (n) => { this.bytesReceived += n }
    }, cids, { signal })
  }

  stats (): SwarmStats {
    const peers: SwarmStats['peers'] = {}
    for (const [peer, rec] of this.book.entries()) {
      peers[peer] = { sent: rec.sent, received: rec.received, ...(rec.rttMs !== undefined ? { rttMs: rec.rttMs } : {}) }
    }
    let wantsQueued = 0
    for (const n of this.wantsQueued.values()) wantsQueued += n
    return { bytesSent: this.bytesSent, bytesReceived: this.bytesReceived, peers, wantsQueued, hedged: this.pulls.hedged, passedOver: this.pulls.passedOver }
  }

  private deliverContext (): DeliverContext {
    return { client: (peer) => this.client(peer), hopTimeoutMs: this.init.pushHopTimeoutMs ?? PUSH_HOP_TIMEOUT_MS }
  }

  private upload (peer: string): RateLimiter {
    let limiter = this.peerUpload.get(peer)
    if (limiter === undefined) {
      limiter = this.init.maxUploadBytesPerSecondPerPeer === undefined
        ? this.totalUpload
        : allOf([tokenBucket({ rate: this.init.maxUploadBytesPerSecondPerPeer }), this.totalUpload])
      this.peerUpload.set(peer, limiter)
    }
    return limiter
  }

  private client (peer: string): Client {
    let client = this.clients.get(peer)
    if (client === undefined) {
      client = new Client({
        peer,
        open: async (opts) => await this.openClientStream(peer, opts),
        book: this.book,
        download: this.download,
        upload: this.upload(peer),
        misbehaved: (p, err) => { this.misbehaved(p, err) },
        onSent: (n) => { this.bytesSent += n },
        onReceived: (n) => { this.bytesReceived += n }
      })
      if (!this.running) client.stop()
      else this.clients.set(peer, client)
    }
    return client
  }

  /**
   * A client stream to `peer`: PROTOCOL_RANGES, or PROTOCOL when the peer does not speak it (an
   * older host; remembered, so it costs one failed negotiation per peer and run).
   */
  private async openClientStream (peer: string, opts?: AbortOptions): Promise<Stream> {
    if (!this.noOrigins.has(peer) && !this.noRanges.has(peer)) {
      try {
        return await this.components.dialProtocol(peer, PROTOCOL_ORIGINS, opts)
      } catch (err) {
        if ((err as Error).name !== 'UnsupportedProtocolError') throw err
        log('%s does not speak %s: its pushes name no origin', shortPeer(peer), PROTOCOL_ORIGINS)
        this.noOrigins.add(peer)
      }
    }
    if (!this.noRanges.has(peer)) {
      try {
        return await this.components.dialProtocol(peer, PROTOCOL_RANGES, opts)
      } catch (err) {
        if ((err as Error).name !== 'UnsupportedProtocolError') throw err
        log('%s does not speak %s: no range wants to it', shortPeer(peer), PROTOCOL_RANGES)
        this.noRanges.add(peer)
      }
    }
    return await this.components.dialProtocol(peer, PROTOCOL, opts)
  }

  private misbehaved (peer: string, err: Error): void {
    log.error('banned %s for %s: %s', shortPeer(peer), err.name, err.message)
    this.book.ban(peer)
    this.clients.get(peer)?.stop()
    this.clients.delete(peer)
    void this.components.hangUp(peer).catch((err: Error) => {
      log('hang up on banned %s failed (it is refused anyway): %s', shortPeer(peer), err.message)
    })
  }

  private onStream (stream: Stream, peer: string): void {
    if (!this.running || this.book.banned(peer)) {
      stream.abort(new SwarmStoppedError())
      return
    }
    const channel = serve(stream, peer, {
      self: this.components.peerId,
      blocks: this.components.blocks,
      sink: this.components.sink,
      uploadSlots: this.uploadSlots,
      upload: (p) => this.upload(p),
      download: this.download,
      wantsQueued: this.wantsQueued,
      deliver: async (cid, bytes, route, onAck, opts) => { await deliver(this.deliverContext(), cid, bytes, route, onAck, opts) },
      misbehaved: (p, err) => { this.misbehaved(p, err) },
      onSent: (p, n) => { this.bytesSent += n; this.book.sent(p, n) },
      onReceived: (p, n) => { this.bytesReceived += n; this.book.received(p, n) },
      ...(this.components.frameBytes !== undefined ? { frameBytes: this.components.frameBytes } : {}),
      signal: this.shutdown.signal
    })
    this.inbound.add(channel)
    stream.addEventListener('close', () => { this.inbound.delete(channel) })
  }
}
