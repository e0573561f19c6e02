// Our requests to one peer, on one outbound stream opened when first needed: wants (answered
// by BLOCK or DONT_HAVE) and pushes (answered by ACKs and a final DONE). At most
// MAX_REQUESTS_IN_FLIGHT_PER_PEER wants are sent at a time, the rest wait here; every BLOCK is
// verified against its CID before anyone sees it, and a peer sending a wrong one is dropped.
import type { AbortOptions, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { Channel } from './channel.ts'
import { MessageTooLargeError, PeerGoneError, ProtocolError, SwarmStoppedError, WrongBlockError } from './errors.ts'
import type { PeerBook } from './peers.ts'
import { ACK, BLOCK, CANCEL, DONE, DONT_HAVE, HAVE, MAX_CIDS_PER_MESSAGE, PROTOCOL_ORIGINS, PROTOCOL_RANGES, PUSH, RANGE, RANGE_WANT, WANT } from './protocol.ts'
import type { Hop, Landing, Message } from './protocol.ts'
import type { RateLimiter } from './rate.ts'
import { slots } from './slots.ts'
import type { Slots } from './slots.ts'
import { matches } from './verify.ts'

/** Most block requests outstanding at one peer; more wait on our side. */
export const MAX_REQUESTS_IN_FLIGHT_PER_PEER = 16
/** Most pushes outstanding at one peer (the receiver reads no further PUSH beyond this). */
export const MAX_PUSHES_IN_FLIGHT_PER_PEER = 4

export interface WantListener {
  block: (bytes: Uint8Array) => void
  miss: (err: Error) => void
}

/**
 * A range want (RANGE_WANT): leaves [first, end) of block `cid`; `verify` checks an answer's
 * bytes and proof (against a root the asker knows) before the listener hears it.
 */
export interface RangeWant { cid: CID, first: number, end: number, verify: (bytes: Uint8Array, proof: Uint8Array[]) => boolean }

/**
 * A block's key among the client's wants and pushes, a serving side's want queue and a
 * have-query's pending set: its CID's bytes as latin1. Not the CID's string: a CID decoded from a
 * frame (BLOCK, DONT_HAVE, ACK, DONE, a WANT) is a fresh object, whose toString() (base32, ~5 µs:
 * more than decoding the frame) no cache spares. Never a rangeKey: a CID's bytes are never
 * another CID's followed by '#'.
 */
export function wantKey (cid: CID): string {
  const b = cid.bytes
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}

/** Key of a range want among the client's wants (and the serving side's queue): wantKey, then the range. */
export function rangeKey (cid: CID, first: number, end: number): string {
  return `${wantKey(cid)}#${first}-${end}`
}

/** A range want as errors name it (the key before rangeKey: the CID's string, then the range). */
function rangeLabel (cid: CID, first: number, end: number): string {
  return `${cid.toString()}#${first}-${end}`
}

export interface PushListener {
  ack: (holder: string) => void
  /** The PUSH frame has been handed to the stream (or could not be): its bytes are no longer needed here. */
  written?: () => void
}

export interface ClientInit {
  peer: string
  open: (opts?: AbortOptions) => Promise<Stream>
  book: PeerBook
  download: RateLimiter
  upload: RateLimiter
  /** The peer sent a wrong block or broke the protocol. */
  misbehaved: (peer: string, err: Error) => void
  onSent: (bytes: number) => void
  onReceived: (bytes: number) => void
}

/** A want is background while every pull waiting on it is (see WANT in protocol.ts). */
interface Want { cid: CID, listeners: Set<WantListener>, background: boolean, sentAt?: number, range?: RangeWant, land?: (bytes: number) => Landing | undefined }
interface Push { ack: (holder: string) => void, done: () => void, fail: (err: Error) => void }

export class Client {
  readonly peer: string
  private readonly init: ClientInit
  private channel?: Promise<Channel>
  private readonly wants = new Map<string, Want>()
  private readonly waiting: string[] = []
  private readonly pushes = new Map<string, Push>()
  private readonly pushSlots: Slots = slots(MAX_PUSHES_IN_FLIGHT_PER_PEER)
  private inFlight = 0
  private stopped = false
  /** Whether the stream open now speaks PROTOCOL_RANGES (else range wants miss at once). */
  private ranges = false
  /** Whether the stream open now speaks PROTOCOL_ORIGINS (else pushes name no origin). */
  private origins = false

  constructor (init: ClientInit) {
    this.init = init
    this.peer = init.peer
  }

  /** Wants sent or waiting to be sent. */
  get queued (): number { return this.wants.size }

  /**
   * Ask for `cid`; the listener hears exactly once unless cancelled by the returned function.
   * A `background` want (repair, a pin's catch-up) may be refused by a holder that is still
   * placing the block from a thin uplink; a read joining it makes it a read.
   */
  want (cid: CID, listener: WantListener, opts: { background?: boolean, land?: (bytes: number) => Landing | undefined } = {}): () => void {
    const key = wantKey(cid)
    if (this.stopped) {
      queueMicrotask(() => { listener.miss(new SwarmStoppedError()) })
      return () => {}
    }
    const background = opts.background === true
    let want = this.wants.get(key)
    if (want === undefined) {
      want = { cid, listeners: new Set(), background }
      this.wants.set(key, want)
      this.waiting.push(key)
      queueMicrotask(() => { this.pump() })
    } else if (want.background && !background) {
      want.background = false
      // already asked as background: ask again as a read (the holder upgrades its queued want)
      if (want.sentAt !== undefined) this.sendQuietly({ type: WANT, cids: [cid], haveOnly: false })
    }
    want.listeners.add(listener)
    // where its block may be written as it arrives: the first asker's that has one
    want.land ??= opts.land
    const w = want
    return () => {
      // its landing leaves with it (the memory of a read that is over: review42d)
      if (opts.land !== undefined && w.land === opts.land) w.land = undefined
      if (!w.listeners.delete(listener) || w.listeners.size > 0 || this.wants.get(key) !== w) return
      this.wants.delete(key)
      if (w.sentAt !== undefined) {
        this.inFlight--
        this.sendQuietly({ type: CANCEL, cids: [cid] })
        this.pump()
      }
    }
  }

  /**
   * Ask for leaves [first, end) of a block with their proof (RANGE_WANT); the listener hears
   * the verified bytes (range.verify passed) or a miss, exactly once unless cancelled. An
   * answer that fails verification is a wrong block: the stream closes and the peer is
   * reported (misbehaved), as for a BLOCK that does not match its CID.
   */
  wantRange (range: RangeWant, listener: WantListener): () => void {
    const key = rangeKey(range.cid, range.first, range.end)
    if (this.stopped) {
      queueMicrotask(() => { listener.miss(new SwarmStoppedError()) })
      return () => {}
    }
    let want = this.wants.get(key)
    if (want === undefined) {
      want = { cid: range.cid, listeners: new Set(), background: false, range }
      this.wants.set(key, want)
      this.waiting.push(key)
      queueMicrotask(() => { this.pump() })
    }
    want.listeners.add(listener)
    const w = want
    return () => {
      if (!w.listeners.delete(listener) || w.listeners.size > 0 || this.wants.get(key) !== w) return
      this.wants.delete(key)
      // no CANCEL (it names a whole block's want): the answer, when it comes, is dropped
      if (w.sentAt !== undefined) {
        this.inFlight--
        this.pump()
      }
    }
  }

  /**
   * Push a block with its forwarding plan; `listener.ack` hears each holder that stored it.
   * Resolves when the peer reports its part of the plan finished (DONE), rejects when the
   * stream fails. A push slot is held only until the frame is written, not until DONE: waiting
   * for DONE holds nothing a forwarding receiver needs, so chains crossing each other cannot
   * deadlock on slots.
   */
  async push (cid: CID, bytes: Uint8Array, hops: Hop[], listener: PushListener, opts?: AbortOptions & { origin?: string }): Promise<void> {
    const key = wantKey(cid)
    let written = false
    const wrote = (): void => { if (!written) { written = true; listener.written?.() } }
    let release: (() => void) | undefined
    try {
      release = await this.pushSlots.acquire(opts)
      while (this.pushes.has(key)) {
        // one push of a CID to a peer at a time: ACKs and DONE name only the CID
        await new Promise(resolve => setTimeout(resolve, 10))
        opts?.signal?.throwIfAborted()
      }
      const channel = await this.connect(opts)
      const finished = new Promise<void>((resolve, reject) => {
        const signal = opts?.signal
        const onAbort = (): void => { this.pushes.delete(key); reject(signal?.reason) }
        signal?.addEventListener('abort', onAbort, { once: true })
        this.pushes.set(key, {
          ack: listener.ack,
          done: () => { signal?.removeEventListener('abort', onAbort); resolve() },
          fail: (err) => { signal?.removeEventListener('abort', onAbort); reject(err) }
        })
      })
      try {
        // the upload cap paces the block as it is written (Channel.send)
        // the origin only to a peer that reads it (an older one takes PUSH_FROM for a violation)
        const origin = this.origins ? opts?.origin : undefined
        await channel.send(origin === undefined ? { type: PUSH, cid, hops, bytes } : { type: PUSH, cid, hops, bytes, origin }, { signal: opts?.signal, pace: this.init.upload })
      } catch (err) {
        this.pushes.get(key)?.fail(err as Error)
        this.pushes.delete(key)
      }
      wrote()
      release()
      release = undefined
      await finished
    } finally {
      release?.()
      wrote()
    }
  }

  /** Close the stream; outstanding requests fail with SwarmStoppedError. */
  stop (): void {
    this.stopped = true
    this.fail(new SwarmStoppedError())
    // a channel that never opened has nothing to close (connect() already failed its wants)
    void this.channel?.then(async ch => { await ch.close() }, () => {})
    this.channel = undefined
  }

  private async connect (opts?: AbortOptions): Promise<Channel> {
    if (this.stopped) throw new SwarmStoppedError()
    if (this.channel === undefined) {
      const p = this.init.open(opts).then(stream => {
        this.ranges = stream.protocol === PROTOCOL_RANGES || stream.protocol === PROTOCOL_ORIGINS
        this.origins = stream.protocol === PROTOCOL_ORIGINS
        return stream
      }).then(stream => new Channel({
        stream,
        peer: this.peer,
        onMessage: (msg) => { this.onMessage(msg) },
        onClose: (err) => { this.onClose(p, err) },
        download: this.init.download,
        onSent: (n) => { this.init.book.sent(this.peer, n); this.init.onSent(n) },
        onReceived: (n) => { this.init.book.received(this.peer, n); this.init.onReceived(n) },
        land: (cid, bytes) => {
          // only a block asked for and still wanted (it is verified on arrival as any other)
          const want = this.wants.get(wantKey(cid))
          return want?.sentAt === undefined || want.range !== undefined ? undefined : want.land?.(bytes)
        }
      }))
      this.channel = p
      p.catch((err: Error) => { this.onClose(p, new PeerGoneError(this.peer, err.message)) })
    }
    return await this.channel
  }

  /** Send waiting wants while in-flight slots are free. */
  private pump (): void {
    if (this.stopped || this.waiting.length === 0 || this.inFlight >= MAX_REQUESTS_IN_FLIGHT_PER_PEER) return
    const batches: [CID[], CID[]] = [[], []]
    const ranges: RangeWant[] = []
    const now = performance.now()
    while (this.waiting.length > 0 && this.inFlight < MAX_REQUESTS_IN_FLIGHT_PER_PEER && batches[0].length + batches[1].length < MAX_CIDS_PER_MESSAGE) {
      const want = this.wants.get(this.waiting.shift() as string)
      if (want === undefined || want.sentAt !== undefined) continue
      want.sentAt = now
      this.inFlight++
      if (want.range !== undefined) ranges.push(want.range)
      else batches[want.background ? 1 : 0].push(want.cid)
    }
    const [reads, background] = batches
    if (reads.length === 0 && background.length === 0 && ranges.length === 0) return
    this.connect().then(async ch => {
      if (ranges.length > 0 && !this.ranges) {
        for (const r of ranges) this.unserved(r)
      } else {
        for (const r of ranges) await ch.send({ type: RANGE_WANT, cid: r.cid, first: r.first, end: r.end })
      }
      if (reads.length > 0) await ch.send({ type: WANT, cids: reads, haveOnly: false })
      if (background.length > 0) await ch.send({ type: WANT, cids: background, haveOnly: false, background: true })
    }).catch((err: Error) => { this.fail(err instanceof PeerGoneError ? err : new PeerGoneError(this.peer, err.message)) })
  }

  private sendQuietly (msg: Message): void {
    // ignored: a re-WANT or CANCEL that cannot be sent goes with its stream, whose close fails
    // the wants still waiting on it (onClose)
    void this.channel?.then(async ch => { await ch.send(msg) }).catch(() => {})
  }

  private onMessage (msg: Message): void {
    switch (msg.type) {
      case BLOCK: {
        const key = wantKey(msg.cid)
        const want = this.wants.get(key)
        if (want === undefined || want.sentAt === undefined) return // cancelled meanwhile, or unasked
        if (!matches(msg.cid, msg.bytes)) throw new WrongBlockError(msg.cid.toString(), this.peer)
        this.settle(key, want)
        this.init.book.answered(this.peer, performance.now() - want.sentAt, true)
        for (const l of want.listeners) l.block(msg.bytes)
        return
      }
      case DONT_HAVE:
        for (const cid of msg.cids) {
          const key = wantKey(cid)
          const want = this.wants.get(key)
          if (want?.sentAt === undefined) continue
          this.settle(key, want)
          this.init.book.answered(this.peer, performance.now() - want.sentAt, false)
          const err = new PeerGoneError(this.peer, `it does not have ${cid.toString()}`)
          for (const l of want.listeners) l.miss(err)
        }
        return
      case RANGE: {
        const key = rangeKey(msg.cid, msg.first, msg.end)
        const want = this.wants.get(key)
        if (want?.range === undefined || want.sentAt === undefined) return // cancelled meanwhile, or unasked
        if (msg.bytes !== undefined && !want.range.verify(msg.bytes, msg.proof ?? [])) {
          throw new WrongBlockError(rangeLabel(msg.cid, msg.first, msg.end), this.peer)
        }
        this.settle(key, want)
        this.init.book.answered(this.peer, performance.now() - want.sentAt, msg.bytes !== undefined)
        if (msg.bytes === undefined) {
          const err = new PeerGoneError(this.peer, `it does not have leaves [${msg.first}, ${msg.end}) of ${msg.cid.toString()}`)
          for (const l of want.listeners) l.miss(err)
        } else {
          for (const l of want.listeners) l.block(msg.bytes)
        }
        return
      }
      case HAVE:
        return // we send no have-only wants; a stray HAVE is harmless
      case ACK:
        this.pushes.get(wantKey(msg.cid))?.ack(msg.holder)
        return
      case DONE: {
        const key = wantKey(msg.cid)
        const push = this.pushes.get(key)
        this.pushes.delete(key)
        push?.done()
        return
      }
      default:
        throw new ProtocolError(`unexpected message type ${msg.type} from the serving side`)
    }
  }

  /** A range want this peer cannot serve (it does not speak PROTOCOL_RANGES): a miss at once. */
  private unserved (r: RangeWant): void {
    const key = rangeKey(r.cid, r.first, r.end)
    const want = this.wants.get(key)
    if (want?.range === undefined || want.sentAt === undefined) return
    this.settle(key, want)
    const err = new PeerGoneError(this.peer, 'it serves no ranges (an older version)')
    for (const l of want.listeners) l.miss(err)
  }

  private settle (key: string, want: Want): void {
    this.wants.delete(key)
    this.inFlight--
    this.pump()
  }

  private onClose (which: Promise<Channel>, err?: Error): void {
    if (this.channel !== which) return
    this.channel = undefined
    if (err instanceof WrongBlockError || err instanceof ProtocolError || err instanceof MessageTooLargeError) this.init.misbehaved(this.peer, err)
    this.fail(err instanceof WrongBlockError ? err : new PeerGoneError(this.peer, err?.message ?? 'stream closed'))
  }

  private fail (err: Error): void {
    const wants = [...this.wants.values()]
    this.wants.clear()
    this.waiting.length = 0
    this.inFlight = 0
    const pushes = [...this.pushes.values()]
    this.pushes.clear()
    if (wants.length > 0 || pushes.length > 0) this.init.book.failed(this.peer)
    for (const w of wants) for (const l of w.listeners) l.miss(err)
    for (const p of pushes) p.fail(err)
  }
}
