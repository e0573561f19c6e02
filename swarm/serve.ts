// The serving side of one inbound swarm stream: answers WANTs from the local block source,
// takes PUSHes (verify, store durably, ACK, forward along the plan, DONE) and CANCELs.
//
// Bounds: a peer may have MAX_WANTS_PER_PEER wants queued with us over all its streams (more is
// a protocol violation: the stream is closed); wants are served one at a time per stream, each
// under one of the node's upload slots and the upload caps; at most
// MAX_PUSHES_IN_FLIGHT_PER_PEER pushes of a stream are processed at once, after which the stream
// is paused (backpressure to the sender).
import type { AbortOptions, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { Channel } from './channel.ts'
import { MAX_PUSHES_IN_FLIGHT_PER_PEER, rangeKey, wantKey } from './client.ts'
import { MessageTooLargeError, ProtocolError, TooManyRequestsError, WrongBlockError } from './errors.ts'
import type { Route } from './plan.ts'
import type { DeliverOptions } from './push.ts'
import { ACK, BLOCK, CANCEL, DONE, DONT_HAVE, HAVE, MAX_CIDS_PER_MESSAGE, PUSH, RANGE, RANGE_WANT, WANT } from './protocol.ts'
import type { Hop, Message } from './protocol.ts'
import type { RateLimiter } from './rate.ts'
import type { Slots } from './slots.ts'
import { matches } from './verify.ts'
import { logger, shortCid, shortPeer } from './log.ts'

const log = logger('serve')

/** Most wants one peer may have queued with us, over all its streams. */
export const MAX_WANTS_PER_PEER = 1024
/** Block lookups at once while answering one stream's have-only wants (as many as libuv's default thread pool). */
export const HAVE_LOOKUPS = 4

/**
 * Local blocks. `has` is told the asking peer when a block would be sent to it, so the host may
 * decline to serve that peer (it is answered DONT_HAVE); have-only queries are answered truthfully.
 */
/**
 * The blocks a node serves. has(cid, peer, { background }) may answer false for a block held
 * here: for what this node withholds from that peer (forward.ts), or, for a background want
 * (repair, a pin's catch-up), for what it is still placing on a thin uplink. `haveOnly`: the
 * answer is a have-query's (HAVE or DONT_HAVE, no block sent), which the asker counts as this
 * node holding the block (keepers' surveys, placement): a node may answer it from what it keeps
 * durably only, and still serve a block it holds for a while (in memory) to a want of it.
 */
export interface BlockSource {
  has: (cid: CID, peer?: string, opts?: { background?: boolean, haveOnly?: boolean }) => Promise<boolean>
  get: (cid: CID, opts?: AbortOptions) => Promise<Uint8Array>
  /**
   * true: get() returns only bytes it checked against the CID (a store that hashes what it
   * reads), so they are served without hashing them once more here; otherwise every block is
   * hashed before it is served.
   */
  verifies?: boolean
  /**
   * Leaves [first, end) of a local block and their proof (its Merkle tree: node/data/merkle.ts),
   * or undefined when the block is not held or the range is not within it. Absent: every
   * RANGE_WANT is answered "not held".
   */
  range?: (cid: CID, first: number, end: number, opts?: AbortOptions & { peer?: string }) => Promise<{ bytes: Uint8Array, proof: Uint8Array[] } | undefined>
  /**
   * true: range() itself answers undefined for what has(cid, opts.peer) would refuse (a block not
   * held, or not served to that peer), so a RANGE_WANT is answered from range() alone, without a
   * has() before it (a second lookup of the block per small read). Otherwise has() is asked first.
   */
  rangeDeclines?: boolean
}
/**
 * Where pushed blocks are stored. `verified`: the swarm checked the bytes against the CID on
 * arrival (onPush), so the sink need not hash them again. `from`: the peer that pushed the block
 * (not given for a block fetched). `check`, when given, is that check of a pushed block: true
 * when `bytes` hash to `cid` (a sink may hash off the event loop, and keep what it learned in the
 * same pass for the put of these very bytes that follows); the swarm then neither hashes the
 * block itself nor stores, acknowledges or forwards it before the check said true, and a false
 * drops the pusher as for a wrong block. Absent: the swarm hashes each pushed block on arrival.
 */
export interface BlockSink {
  put: (cid: CID, bytes: Uint8Array, opts?: AbortOptions & { verified?: boolean, from?: string, origin?: string }) => Promise<void>
  check?: (cid: CID, bytes: Uint8Array) => Promise<boolean>
}

export interface ServeContext {
  self: string
  blocks: BlockSource
  sink: BlockSink
  uploadSlots: Slots
  upload: (peer: string) => RateLimiter
  download: RateLimiter
  /** Wants queued per peer, over all its streams. */
  wantsQueued: Map<string, number>
  /** Deliver a block along a route, reporting each holder's ACK. */
  deliver: (cid: CID, bytes: Uint8Array, route: Route, onAck: (holder: string) => void, opts?: DeliverOptions) => Promise<void>
  misbehaved: (peer: string, err: Error) => void
  onSent: (peer: string, bytes: number) => void
  onReceived: (peer: string, bytes: number) => void
  /** Memory for a large received frame in several pieces (SwarmComponents.frameBytes). */
  frameBytes?: (length: number) => Uint8Array
  signal: AbortSignal
}

interface Wanted { cid: CID, haveOnly: boolean, background: boolean, range?: { first: number, end: number } }

/** Serve one inbound stream from `peer` until it closes. */
export function serve (stream: Stream, peer: string, ctx: ServeContext): Channel {
  const queue = new Map<string, Wanted>()
  let serving = false
  /** Range wants in `queue`: served before block wants (a few KiB a reader waits on, not a 1 MiB fragment). */
  let ranges = 0
  let pushes = 0
  let pushDone: (() => void) | undefined

  const channel = new Channel({
    stream,
    peer,
    onMessage,
    onClose,
    download: ctx.download,
    ...(ctx.frameBytes !== undefined ? { join: ctx.frameBytes } : {}),
    onSent: (n) => { ctx.onSent(peer, n) },
    onReceived: (n) => { ctx.onReceived(peer, n) }
  })
  return channel

  function count (delta: number): void {
    const n = (ctx.wantsQueued.get(peer) ?? 0) + delta
    if (n <= 0) ctx.wantsQueued.delete(peer)
    else ctx.wantsQueued.set(peer, n)
  }

  function onClose (err?: Error): void {
    count(-queue.size)
    queue.clear()
    ranges = 0
    // a frame announcing more than MAX_MESSAGE_BYTES is no honest host's: it is misbehaving too
    if (err instanceof ProtocolError || err instanceof MessageTooLargeError || err instanceof WrongBlockError || err instanceof TooManyRequestsError) ctx.misbehaved(peer, err)
  }

  function onMessage (msg: Message): void | Promise<void> {
    switch (msg.type) {
      case WANT: {
        const background = msg.background === true
        // a read joining a background want of the same block makes it a read
        // keyed by the CIDs' bytes (wantKey): each is a fresh object off the wire, whose string
        // (base32, ~5 µs) made three times per CID was most of serving a survey's have-queries
        const keys = msg.cids.map(wantKey)
        if (!background) for (const k of keys) { const q = queue.get(k); if (q !== undefined) q.background = false }
        const fresh = msg.cids.filter((_, i) => !queue.has(keys[i]))
        if ((ctx.wantsQueued.get(peer) ?? 0) + fresh.length > MAX_WANTS_PER_PEER) {
          throw new TooManyRequestsError(`peer ${peer} has more than ${MAX_WANTS_PER_PEER} wants queued`)
        }
        for (const cid of fresh) queue.set(wantKey(cid), { cid, haveOnly: msg.haveOnly, background })
        count(fresh.length)
        if (!msg.haveOnly) for (const cid of fresh) void refuseEarly(cid)
        if (!serving) void work()
        return
      }
      case RANGE_WANT: {
        const key = rangeKey(msg.cid, msg.first, msg.end)
        if (queue.has(key)) return
        if ((ctx.wantsQueued.get(peer) ?? 0) + 1 > MAX_WANTS_PER_PEER) {
          throw new TooManyRequestsError(`peer ${peer} has more than ${MAX_WANTS_PER_PEER} wants queued`)
        }
        queue.set(key, { cid: msg.cid, haveOnly: false, background: false, range: { first: msg.first, end: msg.end } })
        ranges++
        count(1)
        if (!serving) void work()
        return
      }
      case CANCEL:
        for (const cid of msg.cids) {
          if (queue.delete(wantKey(cid))) count(-1)
        }
        return
      case PUSH:
        return onPush(msg.cid, msg.bytes, msg.hops, msg.origin)
      default:
        throw new ProtocolError(`unexpected message type ${msg.type} from the requesting side`)
    }
  }

  async function work (): Promise<void> {
    serving = true
    try {
      while (queue.size > 0 && channel.isOpen) {
        const [key, wanted] = nextWant()
        if (wanted.range !== undefined) {
          const release = await ctx.uploadSlots.acquire({ signal: ctx.signal })
          try {
            const got = await readRange(wanted)
            dequeue(key, wanted)
            const { first, end } = wanted.range
            await channel.send({ type: RANGE, cid: wanted.cid, first, end, bytes: got?.bytes, proof: got?.proof }, { signal: ctx.signal, pace: ctx.upload(peer) })
          } finally {
            release()
          }
          continue
        }
        if (wanted.haveOnly) {
          // the have-only wants queued now (a have-query sends them in windows of up to
          // MAX_CIDS_PER_MESSAGE), answered in one HAVE and one DONT_HAVE: a survey of
          // thousands of fragments costs a few messages, not one round per block. Looked up
          // HAVE_LOOKUPS at a time: each lookup is a file-system call on libuv's small thread
          // pool, and a window's worth at once (times every surveying peer) would queue this
          // host's own reads and writes behind them
          const batch: Wanted[] = []
          for (const [k, w] of queue) {
            if (!w.haveOnly || batch.length >= MAX_CIDS_PER_MESSAGE) break
            queue.delete(k)
            batch.push(w)
          }
          count(-batch.length)
          const held: boolean[] = new Array(batch.length).fill(false)
          let next = 0
          await Promise.all(Array.from({ length: Math.min(HAVE_LOOKUPS, batch.length) }, async () => {
            for (let i = next++; i < batch.length; i = next++) {
              const w = batch[i]
              held[i] = await ctx.blocks.has(w.cid, undefined, { background: w.background, haveOnly: true }).catch((err: Error) => {
                log.error('has(%s) for %s failed, answering DONT_HAVE: %s', shortCid(w.cid), shortPeer(peer), err.message)
                return false
              })
            }
          }))
          const have = batch.filter((_, i) => held[i]).map(w => w.cid)
          const dontHave = batch.filter((_, i) => !held[i]).map(w => w.cid)
          if (have.length > 0) await channel.send({ type: HAVE, cids: have })
          if (dontHave.length > 0) await channel.send({ type: DONT_HAVE, cids: dontHave })
          continue
        }
        const release = await ctx.uploadSlots.acquire({ signal: ctx.signal })
        try {
          // the want may have been cancelled while we waited for a slot
          if (queue.get(key) !== wanted) continue
          const bytes = await read(wanted)
          if (bytes === undefined) {
            dequeue(key, wanted)
            await channel.send({ type: DONT_HAVE, cids: [wanted.cid] })
            continue
          }
          if (queue.get(key) !== wanted) continue
          dequeue(key, wanted)
          // the upload cap paces the block as it is written (Channel.send)
          await channel.send({ type: BLOCK, cid: wanted.cid, bytes }, { signal: ctx.signal, pace: ctx.upload(peer) })
        } finally {
          release()
        }
      }
    } catch (err) {
      if (channel.isOpen && !ctx.signal.aborted) channel.abort(err as Error)
    } finally {
      serving = false
    }
  }

  /**
   * DONT_HAVE at once for a want we cannot serve, not after the blocks queued before it: a
   * reader that guessed the holder wrong moves on after one round trip, not after seconds of
   * other blocks crossing a thin uplink.
   */
  async function refuseEarly (cid: CID): Promise<void> {
    const key = wantKey(cid)
    const wanted = queue.get(key)
    if (wanted === undefined) return
    const have = await ctx.blocks.has(cid, peer, { background: wanted.background }).catch((err: Error) => {
      log.error('has(%s) for %s failed, answering DONT_HAVE: %s', shortCid(cid), shortPeer(peer), err.message)
      return false
    })
    if (have) return
    if (queue.get(key) !== wanted || !channel.isOpen) return
    dequeue(key, wanted)
    // ignored: a send fails only when the stream is gone, and its close ends this serving
    await channel.send({ type: DONT_HAVE, cids: [cid] }).catch(() => {})
  }

  function dequeue (key: string, wanted: Wanted): void {
    if (queue.get(key) === wanted) {
      queue.delete(key)
      count(-1)
      if (wanted.range !== undefined) ranges--
    }
  }

  /** The next want to serve: the oldest range want if any, else the oldest want. */
  function nextWant (): [string, Wanted] {
    if (ranges > 0) for (const e of queue) if (e[1].range !== undefined) return e
    return queue.entries().next().value as [string, Wanted]
  }

  /** Leaves of a local block and their proof, if held and served to this peer. */
  async function readRange ({ cid, range }: Wanted): Promise<{ bytes: Uint8Array, proof: Uint8Array[] } | undefined> {
    if (range === undefined || ctx.blocks.range === undefined) return undefined
    try {
      if (ctx.blocks.rangeDeclines !== true && !await ctx.blocks.has(cid, peer)) return undefined
      return await ctx.blocks.range(cid, range.first, range.end, { signal: ctx.signal, peer })
    } catch (err) {
      // answered "not held": the reader asks another holder, or reads the chunk whole
      if (!ctx.signal.aborted) log.error('range [%d, %d) of %s for %s failed: %s', range.first, range.end, shortCid(cid), shortPeer(peer), (err as Error).message)
      return undefined
    }
  }

  /** The local block, if held and intact (nothing unverified is served). */
  async function read ({ cid, background }: Wanted): Promise<Uint8Array | undefined> {
    try {
      if (!await ctx.blocks.has(cid, peer, { background })) return undefined
      const bytes = await ctx.blocks.get(cid, { signal: ctx.signal })
      if (ctx.blocks.verifies === true || matches(cid, bytes)) return bytes
      log.error('local block %s does not match its CID: not served to %s', shortCid(cid), shortPeer(peer))
      return undefined
    } catch (err) {
      // answered DONT_HAVE: the reader asks another holder
      if (!ctx.signal.aborted) log.error('read of %s for %s failed: %s', shortCid(cid), shortPeer(peer), (err as Error).message)
      return undefined
    }
  }

  function onPush (cid: CID, bytes: Uint8Array, hops: Hop[], origin: string | undefined): void | Promise<void> {
    // with the sink's own check, handlePush runs it before anything else (off this stream's
    // turn: the next push is read meanwhile, within MAX_PUSHES_IN_FLIGHT_PER_PEER)
    if (ctx.sink.check === undefined && !matches(cid, bytes)) throw new WrongBlockError(cid.toString(), peer)
    pushes++
    let freed = false
    // the stream's push slot is held while the block is stored and written onwards, not while
    // the rest of the chain works: that is what bounds memory, and holding it longer could
    // deadlock chains that cross each other
    const free = (): void => {
      if (freed) return
      freed = true
      pushes--
      const wake = pushDone
      pushDone = undefined
      wake?.()
    }
    void handlePush(cid, bytes, hops, origin, free).finally(free)
    if (pushes >= MAX_PUSHES_IN_FLIGHT_PER_PEER) {
      return new Promise<void>(resolve => { pushDone = resolve })
    }
  }

  async function handlePush (cid: CID, bytes: Uint8Array, hops: Hop[], origin: string | undefined, written: () => void): Promise<void> {
    const opts = { signal: ctx.signal }
    const ack = (holder: string): void => {
      // ignored: a send fails only when the stream is gone; the sender then counts no ACK from us
      if (channel.isOpen) void channel.send({ type: ACK, cid, holder }).catch(() => {})
    }
    const check = ctx.sink.check
    if (check !== undefined) {
      let sound: boolean
      try {
        sound = await check(cid, bytes)
      } catch (err) {
        // not checked, so not taken: no ACK, no forwarding; DONE tells the sender we are finished
        log.error('check of pushed %s from %s failed: %s', shortCid(cid), shortPeer(peer), (err as Error).message)
        // ignored: a send fails only when the stream is gone
        if (channel.isOpen) await channel.send({ type: DONE, cid }).catch(() => {})
        return
      }
      if (!sound) {
        // a wrong block: the stream is closed and its sender dropped (onClose), as onPush does
        // when it hashes the block itself; nothing stored, acknowledged or forwarded. A stream
        // its sender closed or reset while the check ran has no close left to tell: the sender
        // is dropped here (review35b: a liar that pushed and hung up at once was never banned)
        const err = new WrongBlockError(cid.toString(), peer)
        if (channel.isOpen) channel.abort(err)
        else ctx.misbehaved(peer, err)
        return
      }
    }
    try {
      let stored = false
      try {
        // checked against the CID: by onPush, or by the sink's check above
        await ctx.sink.put(cid, bytes, origin === undefined ? { ...opts, verified: true, from: peer } : { ...opts, verified: true, from: peer, origin })
        stored = true
      } catch (err) {
        // not stored here: no ACK from us, but the rest of the plan still gets the block
        log.error('store of pushed %s from %s failed: %s', shortCid(cid), shortPeer(peer), (err as Error).message)
      }
      if (stored) ack(ctx.self)
      // forwarded naming whose block it is: the origin it came with, or the peer that sent it
      if (hops.length > 0) await ctx.deliver(cid, bytes, { first: undefined, hops }, ack, { ...opts, onWritten: written, origin: origin ?? peer })
    } catch (err) {
      // a forwarding failure only means fewer ACKs; DONE still tells the sender we are finished
      log('forwarding %s from %s failed: %s', shortCid(cid), shortPeer(peer), (err as Error).message)
    }
    // ignored: a send fails only when the stream is gone, and the sender then routes around us
    if (channel.isOpen) await channel.send({ type: DONE, cid }).catch(() => {})
  }
}
