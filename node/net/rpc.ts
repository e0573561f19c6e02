// One wire layer for node's own protocols (DESIGN.md §7): every request/response and notice
// protocol of node/ (ops sync, peer exchange, membership and space notices, uplinks, custody,
// placement through a relay) speaks it. The swarm keeps its own binary codec (swarm/protocol.ts)
// and libp2p its own protocols (identify, ping, the DHT).
//
// Wire: a stream carries frames `uvarint(length) || body`, each body one dag-cbor map with
// exactly one key, the envelope:
//
//   caller -> answerer   { call: REQUEST }                      a request; replies follow
//                        { notice: NOTICE }                     a one-way message; no reply
//   answerer -> caller   { next: PROGRESS }*                    intermediate replies (progress)
//                        { ok: REPLY }                          the final reply
//                     or { error: { name, message } }           the call failed there
//
// One request (or notice) per stream, except on a protocol declared `kept` (a new protocol id:
// hosts of older versions do not speak it, so they never see the rule change): there a caller
// (KeptCaller) may send the next request on the same stream once the final reply to the one
// before arrived, one call at a time, and the answerer reads requests until the caller closes
// the stream or sends nothing for RPC_KEPT_IDLE_MS (then it closes it). A kept stream spares each
// call after the first the stream's opening: multistream-select in this libp2p negotiates every
// new stream with a round trip of its own before the request goes out (no optimistic select), so
// a call on a new stream costs two round trips, on a kept one one. A kept protocol's calls must be
// idempotent: a kept stream found ended when its call is sent is tried once more on a new one.
// A protocol is a value (defineProtocol) that names its id,
// its hard bound on one message (either direction, envelope included), its timeout, and the
// validators of each of its message kinds. Bounds and checks:
//  - A frame longer than the protocol's bound is refused from its length header, before any of
//    it is buffered (RpcTooLargeError); an encoder refuses to send one.
//  - A server may refuse a stream as it opens, before its frame is read or decoded (serve's
//    admit: a peer past a budget costs no decode); the refusal goes back as an error reply.
//  - Every decoded value passes the protocol's validator before use; a malformed message
//    (undecodable, not an envelope, a kind the protocol does not take, a validator's refusal) is
//    an RpcProtocolError (or the protocol's subclass of it).
//  - The answering side of a malformed message replies { error } and closes that stream with a
//    reset; a handler that fails replies { error } and closes the stream (a notice's handler that
//    fails resets it). Nothing a peer sends throws out of a handler: the host never crashes on
//    input.
//  - Timeouts are on silence of bytes, not whole messages (bugs38: a 512 KiB answer taking
//    longer than the timeout on a slow link failed while flowing): a caller gives up when the
//    other side sent no byte for the protocol's timeoutMs while its own request's bytes are not
//    going out either; the answering side reads a request the same way, and bounds each write by
//    the time its bytes make no progress out (a shorter write buffer or a drain: an empty buffer
//    waiting on a full connection is no progress). Each message also has a cap that progress does
//    not extend past: LOOP_TIME_MAX_FACTOR timeouts plus its bytes at RPC_MIN_BYTES_PER_SECOND
//    (review38b: a peer trickling a byte just under each timeout held a call with no signal open
//    for ~its bytes x the timeout). A call with intermediate replies starts the cap again at each,
//    so their number is bounded by what the request asks (the protocol's maxNext, RPC_MAX_NEXT by
//    default: past it, RpcTooManyRepliesError), and with it the call's whole life.
//  - Every call takes an AbortSignal; aborting it aborts the stream and rejects with its reason.
//  - Streams: a caller keeps at most the protocol's maxStreams (RPC_MAX_STREAMS) of its streams
//    open to one peer; further calls and notices wait in order, honouring their signal (their
//    silence timeout starts once they have a stream: small41; they give up once no reply came
//    on the protocol's streams to that peer for LOOP_TIME_MAX_FACTOR times it: review41b/c), and
//    a call made while a handler runs does not wait (slot(): nested calls never queue behind
//    calls waiting on them). libp2p takes RPC_STREAMS_HARD_FACTOR times it per connection either
//    way, and aborted the 33rd inbound stream by default, which callers saw as a raw
//    StreamStateError (streams40). A notice resolves once the answerer took it whole.
//  - Errors on the wire keep their stable `name`. The caller rebuilds the classes the protocol
//    lists (`errors`) from it; any other name arrives as RpcRemoteError (`remoteName`).
//
// Dissemination seam: notices to every connected peer go through broadcast(). A gossip transport
// (libp2p gossipsub on a topic private to the network) could replace it for the notices that
// need no per-peer answer, without touching their senders or receivers.
import { AsyncLocalStorage } from 'node:async_hooks'
import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from '@libp2p/utils'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { AbortOptions, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { logger } from '../log.ts'
import { anySignal } from '../abort.ts'
import { LOOP_STEPS, LOOP_TIME_MAX_FACTOR, loopTimeDeadline } from '../../swarm/index.ts'

const log = logger('net:rpc')

/** Smallest bound a protocol may declare on one message: an error reply always fits. */
export const RPC_MIN_MESSAGE_BYTES = 1024
/** Largest bound a protocol may declare on one message. */
export const RPC_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
/** Longest error name carried on the wire (longer ones are cut). */
export const RPC_MAX_ERROR_NAME_CHARS = 64
/** Longest error message carried on the wire (longer ones are cut; shorter still if the bound asks). */
export const RPC_MAX_ERROR_MESSAGE_CHARS = 1000
/** Time the answering side takes to send an error reply and close the stream. */
export const RPC_ERROR_REPLY_TIMEOUT_MS = 5_000
/** The answerer of a kept protocol closes a kept stream after this long without a request. */
export const RPC_KEPT_IDLE_MS = 60_000
/** A caller closes its idle kept stream to a peer after this long unused (before the answerer does). */
export const RPC_KEPT_CALLER_IDLE_MS = 30_000
/**
 * The slowest link a message is given time for (bytes/s): however steadily its bytes come (or go
 * out), one message may take LOOP_TIME_MAX_FACTOR timeouts plus its bytes at this rate, no more
 * (review38b: a peer sending one byte just under each timeout held a call without a signal of its
 * own open for ~its bytes x the timeout).
 */
export const RPC_MIN_BYTES_PER_SECOND = 8 * 1024
/**
 * Most intermediate replies one call takes, for a protocol that names no bound of its own
 * (RpcProtocol.maxNext): each reply starts the silence and the cap again, so a peer sending
 * replies for ever held a call open for ever (clocks39); one more is RpcTooManyRepliesError.
 */
export const RPC_MAX_NEXT = 1024
/**
 * Streams of one protocol a caller keeps open to one peer at once, for a protocol that names no
 * bound of its own (RpcProtocol.maxStreams): libp2p's registrar default for a handler's inbound
 * streams per connection (libp2p 3.3, registrar.ts DEFAULT_MAX_INBOUND_STREAMS), past which the
 * answerer aborted the stream once its protocol was selected and the caller's write failed with a
 * raw StreamStateError (streams40). Calls and notices past it wait for one of them to end (slot()).
 */
export const RPC_MAX_STREAMS = 32
/** Largest maxStreams a protocol may declare. */
export const RPC_MAX_STREAMS_LIMIT = 128
/**
 * libp2p's own limit of a protocol's streams per connection, either way, as a multiple of its
 * maxStreams (serve(), and a caller's newStream): the headroom takes the calls made from a
 * handler, which do not queue (slot()), and streams whose close is still on its way to the peer.
 */
export const RPC_STREAMS_HARD_FACTOR = 2
/** Unread bytes a stream may buffer beyond one whole message (a peer sending more is cut off). */
const READ_BUFFER_SLACK_BYTES = 64

// --- errors -----------------------------------------------------------------------------------

/** A message that is malformed, breaks a bound, or is not one the protocol takes. */
export class RpcProtocolError extends Error {
  override readonly name: string = 'RpcProtocolError'
}

/** A message over its protocol's bound (refused from its length, or refused to be sent). */
export class RpcTooLargeError extends RpcProtocolError {
  override readonly name: string = 'RpcTooLargeError'
}

/** A call got more intermediate replies than its bound (RpcProtocol.maxNext, CallOptions.maxNext): the peer is given up. */
export class RpcTooManyRepliesError extends RpcProtocolError {
  override readonly name: string = 'RpcTooManyRepliesError'
}

/** The other side sent nothing for the protocol's timeout. */
export class RpcTimeoutError extends Error {
  override readonly name = 'RpcTimeoutError'
}

/**
 * A call made from a handler found every stream this host may open of the protocol to that peer
 * taken (RPC_STREAMS_HARD_FACTOR x maxStreams): it was not sent. A handler's own calls do not wait
 * for a stream (the calls holding them may be waiting on that handler: slot()).
 */
export class RpcBusyError extends Error {
  override readonly name = 'RpcBusyError'
}

/** The stream ended before the reply (or, for a handler, the caller went away). */
export class RpcClosedError extends Error {
  override readonly name = 'RpcClosedError'
}

/** The peer answered with an error this protocol does not rebuild: its name is `remoteName`. */
export class RpcRemoteError extends Error {
  override readonly name = 'RpcRemoteError'
  readonly remoteName: string
  readonly peer: string
  constructor (peer: string, remoteName: string, message: string) {
    super(`${peer}: ${remoteName}: ${message}`)
    this.peer = peer
    this.remoteName = remoteName
  }
}

// --- protocols --------------------------------------------------------------------------------

export type ErrorClass = new (message: string) => Error

/**
 * One protocol. Req/Res: a call's request and final reply; Note: a notice; Next: a call's
 * intermediate replies. A validator gets the decoded dag-cbor value and returns it typed, or
 * throws (an RpcProtocolError subclass). A kind without a validator is refused.
 */
export interface RpcProtocol<Req = never, Res = never, Note = never, Next = never> {
  /** The libp2p protocol id. */
  readonly id: string
  /** Hard bound of one message, either direction, envelope included (bytes). */
  readonly maxMessageBytes: number
  /**
   * Bound of what the answering side reads (a call's request, a notice), envelope included, when
   * it is below maxMessageBytes: a frame over it is refused from its length prefix, before it is
   * buffered or decoded (a protocol whose replies are big and whose requests are small).
   */
  readonly maxIncomingBytes?: number
  /** Longest silence of bytes from the other side (ms); one message's cap is LOOP_TIME_MAX_FACTOR times it plus its bytes at RPC_MIN_BYTES_PER_SECOND. */
  readonly timeoutMs: number
  // (method syntax: a protocol without calls, Req = never, still fits where any protocol does)
  request? (value: unknown): Req
  reply? (value: unknown, request: Req): Res
  next? (value: unknown, request: Req): Next
  /**
   * Most intermediate replies a call of `request` takes (default RPC_MAX_NEXT): what the request
   * asks bounds them (one per fragment and holder, say). One more fails the call
   * (RpcTooManyRepliesError) and aborts its stream.
   */
  maxNext? (request: Req): number
  notice? (value: unknown): Note
  /** Error classes a caller rebuilds from a remote error's name. */
  readonly errors?: readonly ErrorClass[]
  /**
   * Streams of this protocol (calls and notices) a caller keeps open to one peer at once (default
   * RPC_MAX_STREAMS); the rest wait in order (slot()). libp2p's limit of its streams per
   * connection, either way, is RPC_STREAMS_HARD_FACTOR times it (serve(), newStream).
   */
  readonly maxStreams?: number
  /** Class of this protocol's malformed messages (default RpcProtocolError). */
  readonly malformed?: new (message: string) => RpcProtocolError
  /**
   * Calls may follow one another on one stream (see the header; KeptCaller): calls only, each
   * idempotent. Only for a protocol id hosts of older versions never spoke with one request per
   * stream.
   */
  readonly kept?: boolean
}

/** Check a protocol's bounds once, where it is defined. */
export function defineProtocol<Req = never, Res = never, Note = never, Next = never> (p: RpcProtocol<Req, Res, Note, Next>): RpcProtocol<Req, Res, Note, Next> {
  if (!Number.isSafeInteger(p.maxMessageBytes) || p.maxMessageBytes < RPC_MIN_MESSAGE_BYTES || p.maxMessageBytes > RPC_MAX_MESSAGE_BYTES) {
    throw new RangeError(`${p.id}: maxMessageBytes must be ${RPC_MIN_MESSAGE_BYTES}..${RPC_MAX_MESSAGE_BYTES}, got ${p.maxMessageBytes}`)
  }
  if (p.maxIncomingBytes !== undefined && (!Number.isSafeInteger(p.maxIncomingBytes) || p.maxIncomingBytes < RPC_MIN_MESSAGE_BYTES || p.maxIncomingBytes > p.maxMessageBytes)) {
    throw new RangeError(`${p.id}: maxIncomingBytes must be ${RPC_MIN_MESSAGE_BYTES}..maxMessageBytes (${p.maxMessageBytes}), got ${p.maxIncomingBytes}`)
  }
  if (p.maxStreams !== undefined && (!Number.isSafeInteger(p.maxStreams) || p.maxStreams < 1 || p.maxStreams > RPC_MAX_STREAMS_LIMIT)) {
    throw new RangeError(`${p.id}: maxStreams must be 1..${RPC_MAX_STREAMS_LIMIT}, got ${p.maxStreams}`)
  }
  if (!(p.timeoutMs > 0)) throw new RangeError(`${p.id}: timeoutMs must be > 0, got ${p.timeoutMs}`)
  if ((p.request === undefined) !== (p.reply === undefined)) throw new RangeError(`${p.id}: a protocol with calls validates both requests and replies`)
  if (p.request === undefined && p.notice === undefined) throw new RangeError(`${p.id}: takes neither calls nor notices`)
  if (p.kept === true && (p.request === undefined || p.notice !== undefined)) throw new RangeError(`${p.id}: a kept protocol takes calls only`)
  return Object.freeze({ ...p })
}

// --- frames -----------------------------------------------------------------------------------

export type Incoming<Req, Note> = { kind: 'call', value: Req } | { kind: 'notice', value: Note }
export type Reply<Res, Next> = { kind: 'ok', value: Res } | { kind: 'next', value: Next } | { kind: 'error', name: string, message: string }

type AnyProtocol = RpcProtocol<any, any, any, any>

function malformed (p: AnyProtocol, message: string): RpcProtocolError {
  return new (p.malformed ?? RpcProtocolError)(`${p.id}: ${message}`)
}

function encodeFrame (p: AnyProtocol, envelope: Record<string, unknown>): Uint8Array {
  const bytes = dagCbor.encode(envelope)
  if (bytes.byteLength > p.maxMessageBytes) throw new RpcTooLargeError(`${p.id}: a message of ${bytes.byteLength} bytes is over the bound of ${p.maxMessageBytes}`)
  return bytes
}

export function encodeCall<Req> (p: RpcProtocol<Req, any, any, any>, request: Req): Uint8Array {
  return encodeFrame(p, { call: request })
}

export function encodeNotice<Note> (p: RpcProtocol<any, any, Note, any>, notice: Note): Uint8Array {
  return encodeFrame(p, { notice })
}

export function encodeOk<Res> (p: RpcProtocol<any, Res, any, any>, reply: Res): Uint8Array {
  return encodeFrame(p, { ok: reply })
}

export function encodeNext<Next> (p: RpcProtocol<any, any, any, Next>, progress: Next): Uint8Array {
  return encodeFrame(p, { next: progress })
}

/** An error reply: its stable name and its message, cut to fit the protocol's bound. */
export function encodeError (p: AnyProtocol, err: unknown): Uint8Array {
  const e = err instanceof Error ? err : new Error(String(err))
  const name = String(e.name).slice(0, RPC_MAX_ERROR_NAME_CHARS)
  for (const chars of [RPC_MAX_ERROR_MESSAGE_CHARS, 100, 0]) {
    try {
      return encodeFrame(p, { error: { name, message: String(e.message).slice(0, chars) } })
    } catch (tooLarge) {
      if (chars === 0) throw tooLarge
    }
  }
  throw new RpcTooLargeError('unreachable')
}

/** The one key and value of an envelope; RpcTooLargeError or the protocol's RpcProtocolError. */
function envelope (p: AnyProtocol, bytes: Uint8Array): [string, unknown] {
  if (bytes.byteLength > p.maxMessageBytes) throw new RpcTooLargeError(`${p.id}: a message of ${bytes.byteLength} bytes is over the bound of ${p.maxMessageBytes}`)
  let v: unknown
  try {
    v = dagCbor.decode(bytes)
  } catch (err: any) {
    throw malformed(p, `undecodable message: ${String(err?.message ?? err).slice(0, 200)}`)
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array || CID.asCID(v) !== null) throw malformed(p, 'a message is a map with one key')
  const keys = Object.keys(v)
  if (keys.length !== 1) throw malformed(p, `a message is a map with one key, got ${keys.length}`)
  return [keys[0], (v as Record<string, unknown>)[keys[0]]]
}

/** Decode and validate what a caller sent (a call or a notice). */
export function decodeIncoming<Req, Note> (p: RpcProtocol<Req, any, Note, any>, bytes: Uint8Array): Incoming<Req, Note> {
  const [key, value] = envelope(p, bytes)
  if (key === 'call' && p.request !== undefined) return { kind: 'call', value: p.request(value) }
  if (key === 'notice' && p.notice !== undefined) return { kind: 'notice', value: p.notice(value) }
  throw malformed(p, `takes no ${JSON.stringify(key.slice(0, 20))} messages`)
}

/** Decode and validate one reply to `request`. */
export function decodeReply<Req, Res, Next> (p: RpcProtocol<Req, Res, any, Next>, bytes: Uint8Array, request: Req): Reply<Res, Next> {
  const [key, value] = envelope(p, bytes)
  if (key === 'ok' && p.reply !== undefined) return { kind: 'ok', value: p.reply(value, request) }
  if (key === 'next' && p.next !== undefined) return { kind: 'next', value: p.next(value, request) }
  if (key === 'error') {
    const e = value as { name?: unknown, message?: unknown } | null
    if (e === null || typeof e !== 'object' || typeof e.name !== 'string' || e.name === '' || typeof e.message !== 'string') throw malformed(p, 'an error reply is { name, message }')
    return { kind: 'error', name: e.name.slice(0, RPC_MAX_ERROR_NAME_CHARS), message: e.message.slice(0, RPC_MAX_ERROR_MESSAGE_CHARS) }
  }
  throw malformed(p, `not a reply: ${JSON.stringify(key.slice(0, 20))}`)
}

/** The error a caller throws for an error reply: a class the protocol lists, else RpcRemoteError. */
export function remoteError (p: AnyProtocol, peer: string, name: string, message: string): Error {
  for (const C of p.errors ?? []) {
    const e = new C(`${peer}: ${message}`)
    if (e.name === name) return e
  }
  return new RpcRemoteError(peer, name, message)
}

// --- streams ------------------------------------------------------------------------------------

/** What callers need of the host. */
export interface RpcDialer {
  /** maxOutboundStreams: libp2p's limit of the protocol's outbound streams per connection, when this host does not serve it. */
  newStream: (peer: string, protocol: string, opts?: AbortOptions & { maxOutboundStreams?: number }) => Promise<Stream>
}

/** libp2p's limit of `p`'s streams per connection, either way (RPC_STREAMS_HARD_FACTOR). */
function streamsCap (p: AnyProtocol): number {
  return RPC_STREAMS_HARD_FACTOR * (p.maxStreams ?? RPC_MAX_STREAMS)
}

/** The streams of one protocol a caller has open to one peer, and the calls waiting for one (in order). */
interface Gate {
  open: number
  queue: Array<() => void>
  /** Replies heard on the gate's streams (a call's or notice's answer included): its queue's progress. */
  heard: number
}

/** A stream slot (slot()): its release (once, however often called), and the note of a reply heard on it. */
interface Slot {
  release: () => void
  heard: () => void
}

/** Per dialer (a host), per protocol and peer: its gate (slot()). */
const gatesOf = new WeakMap<RpcDialer, Map<string, Gate>>()

/**
 * Set while a handler of serve() runs (its `running` cleared when it returns): the calls it makes
 * meanwhile are a handler's own (slot()).
 */
const handling = new AsyncLocalStorage<{ running: boolean }>()

/**
 * A stream of `p` to `peer` within the protocol's maxStreams: at once when fewer are open and
 * none waits, else in order behind the others. Leaving the queue when `signal` aborts (its reason
 * thrown), the caller's own signal, or with RpcTimeoutError once no reply was heard on the gate's
 * streams for LOOP_TIME_MAX_FACTOR times the call's silence timeout `ms` (loop time; at most
 * twice that after the last reply). A call's silence timer starts once it has its slot (callWatch()),
 * so a call queued behind slow ones is not given up having sent nothing (small41). Returns the
 * slot's release, which frees it once however often it is called (in a finally).
 *
 * A call made while a handler runs does not queue: the calls holding the slots may be waiting on
 * that very handler (A calls B, B's handler calls A, A's handler calls B: A's slots all held by
 * calls waiting on B deadlocked). It takes a slot at once up to libp2p's limit (streamsCap()),
 * past it fails with RpcBusyError. The handler's calls are bounded by what the peers let this
 * host answer at once; the answerer counts nothing itself, libp2p counts its streams until closed.
 */
async function slot (host: RpcDialer, peer: string, p: AnyProtocol, signal: AbortSignal | undefined, ms: number): Promise<Slot> {
  signal?.throwIfAborted()
  let gates = gatesOf.get(host)
  if (gates === undefined) {
    gates = new Map()
    gatesOf.set(host, gates)
  }
  const key = `${p.id} ${peer}`
  const g = gates.get(key) ?? { open: 0, queue: [], heard: 0 }
  gates.set(key, g)
  const max = p.maxStreams ?? RPC_MAX_STREAMS
  const map = gates
  let released = false
  const release = (): void => {
    if (released) return
    released = true
    g.open--
    // a handler's calls may hold slots past max: a waiting call goes only below it
    while (g.open < max && g.queue.length > 0) {
      g.open++
      g.queue.shift()!()
    }
    if (g.open === 0 && g.queue.length === 0) map.delete(key)
  }
  const taken: Slot = { release, heard: () => { g.heard++ } }
  if (handling.getStore()?.running === true) {
    if (g.open >= streamsCap(p)) {
      throw new RpcBusyError(`${p.id}: ${g.open} streams open to ${peer}, as many as libp2p takes: a handler's call is not queued`)
    }
    g.open++
    return taken
  }
  if (g.open < max && g.queue.length === 0) {
    g.open++
    return taken
  }
  const waitMs = LOOP_TIME_MAX_FACTOR * ms
  await new Promise<void>((resolve, reject) => {
    const go = (): void => {
      signal?.removeEventListener('abort', onAbort)
      deadline.clear()
      resolve()
    }
    const leave = (reason: unknown): void => {
      signal?.removeEventListener('abort', onAbort)
      deadline.clear()
      const i = g.queue.indexOf(go)
      if (i >= 0) g.queue.splice(i, 1)
      if (g.open === 0 && g.queue.length === 0) map.delete(key)
      reject(reason)
    }
    const onAbort = (): void => { leave(signal?.reason) }
    // a call with no signal of its own does not queue for ever behind a peer that holds every
    // stream and answers nothing (review41b): it leaves once no reply was heard on the gate's
    // streams for as long as one silent call ahead may last (its silence's cap), on the loop's own
    // clock as silences are. A queue moving on (replies heard, calls answered) keeps it waiting
    // (review41c): so between LOOP_TIME_MAX_FACTOR and twice that times `ms` after the last reply.
    let seen = g.heard
    const arm = (): { clear: () => void } => loopTimeDeadline(waitMs, () => {
      if (g.heard !== seen) {
        seen = g.heard
        deadline = arm()
        return
      }
      leave(new RpcTimeoutError(`${p.id} to ${peer}: no stream free and no reply heard for ${waitMs} ms (${g.open} open, ${g.queue.length - 1} waiting ahead or behind)`))
    }, { maxMs: Infinity, unref: false })
    let deadline = arm()
    signal?.addEventListener('abort', onAbort, { once: true })
    g.queue.push(go)
  })
  return taken
}

export interface RpcHandleOptions {
  /** Concurrent inbound streams of this protocol per connection (libp2p's limit). */
  maxInboundStreams?: number
  /** Concurrent outbound streams of this protocol per connection (libp2p's limit). */
  maxOutboundStreams?: number
}

/** What the answering side needs of the host. */
export interface RpcServer {
  handle: (protocol: string, handler: (stream: Stream, peer: string) => void, opts?: RpcHandleOptions) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
}

/** A length-prefixed stream of `p` that reads frames of at most `max` bytes (default: the protocol's bound). */
function framed (stream: Stream, p: AnyProtocol, max = p.maxMessageBytes): LengthPrefixedStream<Stream> {
  return lpStream(stream, { maxDataLength: max, maxBufferSize: max + READ_BUFFER_SLACK_BYTES })
}

/** A stream-level failure in rpc terms (length-prefix and buffer errors of @libp2p/utils). */
function streamError (p: AnyProtocol, err: any): Error {
  switch (err?.name) {
    case 'InvalidDataLengthError':
    case 'InvalidDataLengthLengthError':
    case 'StreamBufferError':
      return new RpcTooLargeError(`${p.id}: ${String(err.message)}`)
    case 'InvalidMessageLengthError':
      return malformed(p, String(err.message))
    case 'UnexpectedEOFError':
      return new RpcClosedError(`${p.id}: the stream ended before a whole message (${String(err.message)})`)
    default:
      return err instanceof Error ? err : new Error(String(err))
  }
}

/** A silence timer (silence()). */
interface Silence {
  signal: AbortSignal
  /** A whole message: the silence starts again, and the message's cap. */
  touch: () => void
  /** A piece of `bytes` bytes came (or went out): the silence starts again, the cap grows by their time at RPC_MIN_BYTES_PER_SECOND. */
  heard: (bytes: number) => void
  clear: () => void
}

/**
 * Call `timer.heard()` on every piece of bytes `stream` receives (a message event, before any frame
 * is whole): the silence a caller gives up on is of bytes. Returns the listener's removal.
 */
function hearing (stream: Stream, timer: Pick<Silence, 'heard'>): () => void {
  const heard = (evt: { data: { byteLength: number } }): void => { timer.heard(evt.data.byteLength) }
  stream.addEventListener('message', heard)
  return () => { stream.removeEventListener('message', heard) }
}

/**
 * While a write of `bytes` bytes (or a close, 0) on `stream` waits, and after it while bytes of it
 * are left in the stream's buffer: credit `timer` with the bytes once, and call `timer.heard(0)`
 * whenever some go out: its write buffer grew shorter (polled LOOP_STEPS times a timeout of `ms`),
 * or a 'drain' came (the muxer took more) while the write waited or bytes were left. An empty
 * buffer is no progress of itself: yamux's stream hands every byte to a full connection and waits
 * for its drain (review38b: counted as progress, a stalled connection held a reply forever); nor
 * is a drain once every byte was handed on (the muxer's drains go to all its streams). `written()`
 * says the write returned; `stop()` ends the watch.
 */
function outgoing (stream: Stream, timer: Pick<Silence, 'heard'>, bytes: number, ms: number): { written: () => void, stop: () => void } {
  timer.heard(bytes)
  let left = stream.writeBufferLength
  let waiting = true
  const drained = (): void => { if (waiting || stream.writeBufferLength > 0) timer.heard(0) }
  stream.addEventListener('drain', drained)
  const poll = setInterval(() => {
    const now = stream.writeBufferLength
    if (now < left) timer.heard(0)
    left = now
  }, Math.max(1, ms / LOOP_STEPS))
  poll.unref?.()
  return {
    written: () => { waiting = false },
    stop: () => {
      clearInterval(poll)
      stream.removeEventListener('drain', drained)
    }
  }
}

/**
 * A signal that aborts when a write of `bytes` bytes (or a close, 0) on `stream` sends none of them
 * for `ms` (in loop time, as silence()), or takes longer than its cap (silence(): the bytes counted
 * with those still in the stream's buffer). For the
 * answering side's writes, which waited for a whole frame's drain within `ms` (a big reply on a
 * slow link failed while its bytes were flowing). `clear()` ends it.
 */
function sending (stream: Stream, ms: number, what: string, bytes: number): { signal: AbortSignal, clear: () => void } {
  const timer = silence(ms, what, { unref: true })
  // the bytes still in the stream's buffer go first (a close waits for what a big reply left there)
  const out = outgoing(stream, timer, bytes + stream.writeBufferLength, ms)
  return { signal: timer.signal, clear: () => { out.stop(); timer.clear() } }
}

/**
 * A timer that aborts after `ms` of silence: touch() on every whole message, heard() on every
 * piece of bytes of one (hearing(), outgoing()). The silence is counted in the event loop's own
 * time (swarm/abort.ts loopTimeDeadline): a process whose loop lagged seconds (many hosts in a few
 * processes, bench:scale) took a peer whose answer sat unread in its socket for a silent one,
 * failed the call, and made its callers (surveys, placement, probes) retry or give the peer up.
 * It also aborts at its cap, in wall time, which pieces of bytes do not start again: LOOP_TIME_MAX_FACTOR
 * times `ms` after the last whole message (or the start), plus the time of the bytes heard since at
 * RPC_MIN_BYTES_PER_SECOND. So a silent peer is given up whatever the lag, a big message paced
 * steadily over a slow link comes whole, and a peer trickling bytes just under the silence is
 * given up in bounded time (review38b).
 */
function silence (ms: number, what: string, opts: { unref?: boolean } = {}): Silence {
  const c = new AbortController()
  const grace = LOOP_TIME_MAX_FACTOR * ms
  let capAt = performance.now() + grace
  let capTimer: ReturnType<typeof setTimeout> | undefined
  // kept referenced by default, as the plain timer was: a call waiting only on its deadline keeps the process up
  const deadline = loopTimeDeadline(ms, () => {
    if (capTimer !== undefined) clearTimeout(capTimer)
    capTimer = undefined
    c.abort(new RpcTimeoutError(`${what}: nothing for ${ms} ms`))
  }, { maxMs: Infinity, unref: opts.unref ?? false })
  const cap = (): void => {
    const left = capAt - performance.now()
    if (left > 0.5) {
      // the cap only moves later: one timer, set again when it fires early
      capTimer = setTimeout(cap, left)
      capTimer.unref?.()
      return
    }
    capTimer = undefined
    deadline.clear()
    c.abort(new RpcTimeoutError(`${what}: slower than ${RPC_MIN_BYTES_PER_SECOND} bytes/s after ${grace} ms`))
  }
  cap()
  return {
    signal: c.signal,
    touch: () => {
      deadline.touch()
      capAt = Math.max(capAt, performance.now() + grace)
    },
    heard: (bytes) => {
      deadline.touch()
      capAt += bytes * 1000 / RPC_MIN_BYTES_PER_SECOND
    },
    clear: () => {
      deadline.clear()
      if (capTimer !== undefined) clearTimeout(capTimer)
      capTimer = undefined
    }
  }
}

export interface CallOptions<Next> extends AbortOptions {
  /** Longest silence from the answering side (ms). Default: the protocol's timeoutMs. */
  timeoutMs?: number
  /** Hears each intermediate reply, in order. */
  onNext?: (progress: Next) => void
  /**
   * Bound of each reply read (bytes, envelope included) when this request's replies are smaller
   * than the protocol's bound: a bigger frame is refused from its length prefix (RpcTooLargeError).
   */
  maxReplyBytes?: number
  /** Most intermediate replies this call takes (RpcTooManyRepliesError past it). Default: the protocol's maxNext, else RPC_MAX_NEXT. */
  maxNext?: number
}

/**
 * Call `peer`: send `request`, hand intermediate replies to onNext, return the final reply.
 * Rejects with the caller's abort reason, RpcTimeoutError, RpcClosedError, an RpcProtocolError
 * (the reply is malformed or over the bound), the remote error (rebuilt, or RpcRemoteError),
 * RpcBusyError (a handler's call past libp2p's stream limit, slot()), or the dial's error. Past the
 * protocol's maxStreams to `peer` it waits for a stream (slot()): its signal aborts the wait, its
 * silence timeout starts once it has one.
 */
export async function call<Req, Res, Next> (host: RpcDialer, peer: string, p: RpcProtocol<Req, Res, any, Next>, request: Req, opts: CallOptions<Next> = {}): Promise<Res> {
  const bytes = encodeCall(p, request)
  const s = await slot(host, peer, p, opts.signal, opts.timeoutMs ?? p.timeoutMs)
  const w = held(s.release, () => callWatch(p, peer, opts))
  const { timer, signal } = w
  let stream: Stream | undefined
  try {
    stream = await host.newStream(peer, p.id, { signal, maxOutboundStreams: streamsCap(p) })
    const lp = framed(stream, p, Math.min(p.maxMessageBytes, opts.maxReplyBytes ?? Infinity))
    // the request's bytes going out keep the silence quiet: write() returns at the stream's first
    // drain, the rest of a big request still leaving while the reply is awaited
    w.watch(stream, bytes.byteLength)
    await lp.write(bytes, { signal })
    w.written()
    const value = await readReply(p, peer, request, stream, lp, heardBy(timer, s), signal, opts.onNext, opts.maxNext)
    const done = stream
    await done.close({ signal }).then(() => { closedBy(done, opts.timeoutMs ?? p.timeoutMs, `${p.id} call to ${peer}`) }, (err: unknown) => {
      log.trace('%s: closing a finished call to %s: %e', p.id, peer, err)
      // a close that did not finish (its bytes never went out before the call's signal aborted)
      // left the stream half-open until the connection ended
      done.abort(err instanceof Error ? err : new Error(String(err)))
    })
    return value
  } catch (err: any) {
    throw failure(p, err, stream, opts.signal, timer.signal)
  } finally {
    s.release()
    w.end()
  }
}

/**
 * A finished call's stream, its side closed: the answerer closes its own after the final reply
 * (serve()); one that has not within `ms` has the stream aborted, which otherwise stayed
 * half-open until the connection ended. The call does not wait for it.
 */
function closedBy (stream: Stream, ms: number, what: string): void {
  if (stream.status !== 'open' || stream.remoteWriteStatus !== 'writable') return
  const over = (): void => {
    clearTimeout(timer)
    stream.removeEventListener('remoteCloseWrite', over)
    stream.removeEventListener('close', over)
  }
  const timer = setTimeout(() => {
    over()
    log.trace('%s: the answerer kept its side open %d ms after the final reply', what, ms)
    stream.abort(new RpcTimeoutError(`${what}: the answerer did not close its side within ${ms} ms of its final reply`))
  }, ms)
  timer.unref?.()
  stream.addEventListener('remoteCloseWrite', over)
  stream.addEventListener('close', over)
}

/** One call's watch (call(), KeptCaller.call(): callWatch()). */
interface CallWatch {
  /** The silence timer of the call's replies (silence()). */
  timer: Silence
  /** What the call's steps take: the caller's signal and the timer's. */
  signal: AbortSignal
  /** The call's stream is there, its request of `bytes` bytes about to be written: its bytes heard (hearing()) and going out (outgoing()) keep the silence quiet. */
  watch: (stream: Stream, bytes: number) => void
  /** The request's write returned. */
  written: () => void
  /** Stops the watch of the stream and the timer (in a finally). */
  end: () => void
}

/** A silence timer with the caller's signal: the signal either aborts; the timer is cleared if they cannot be joined. */
function watched (timer: Silence, caller: AbortSignal | undefined): { timer: Silence, signal: AbortSignal } {
  try {
    return { timer, signal: anySignal([caller, timer.signal]) }
  } catch (err) {
    timer.clear()
    throw err
  }
}

/** A call's silence timer whose touches (whole replies) are noted on its slot too: its queue's progress (slot()). */
function heardBy (timer: Pick<Silence, 'touch'>, s: Slot): Pick<Silence, 'touch'> {
  return { touch: () => { timer.touch(); s.heard() } }
}

/** What a call sets up once it has its stream slot; the slot is released if that throws (review41b). */
function held<T> (release: () => void, make: () => T): T {
  try {
    return make()
  } catch (err) {
    release()
    throw err
  }
}

/** The silence timer of one call to `peer` and, once its stream is there, the watch of the stream. */
function callWatch (p: RpcProtocol<any, any, any, any>, peer: string, opts: AbortOptions & { timeoutMs?: number }): CallWatch {
  const ms = opts.timeoutMs ?? p.timeoutMs
  const { timer, signal } = watched(silence(ms, `${p.id} call to ${peer}`), opts.signal)
  let unhear: (() => void) | undefined
  let out: ReturnType<typeof outgoing> | undefined
  return {
    timer,
    signal,
    watch: (stream, bytes) => {
      unhear = hearing(stream, timer)
      out = outgoing(stream, timer, bytes, ms)
    },
    written: () => { out?.written() },
    end: () => {
      out?.stop()
      unhear?.()
      timer.clear()
    }
  }
}

/**
 * Read the replies to `request` on `stream` until the final one, which is returned: each reply
 * touches the silence timer, intermediate ones go to onNext; an error reply aborts the stream
 * (the answerer closes it after one) and throws the remote error.
 */
async function readReply<Req, Res, Next> (p: RpcProtocol<Req, Res, any, Next>, peer: string, request: Req, stream: Stream, lp: LengthPrefixedStream<Stream>,
  timer: Pick<Silence, 'touch'>, signal: AbortSignal, onNext?: (progress: Next) => void, maxNext?: number): Promise<Res> {
  const most = maxNext ?? p.maxNext?.(request) ?? RPC_MAX_NEXT
  for (let next = 0; ; next++) {
    const reply = decodeReply(p, (await lp.read({ signal })).subarray(), request)
    timer.touch()
    if (reply.kind === 'next') {
      // each reply starts the silence again: a peer replying for ever is given up here
      if (next >= most) throw new RpcTooManyRepliesError(`${p.id} call to ${peer}: more than ${most} intermediate replies`)
      onNext?.(reply.value)
      continue
    }
    if (reply.kind === 'error') {
      stream.abort(new RpcRemoteError(peer, reply.name, reply.message))
      throw remoteError(p, peer, reply.name, reply.message)
    }
    return reply.value
  }
}

/** A kept stream of a KeptCaller, idle in its pool or carrying one call. */
interface Kept {
  stream: Stream
  lp: LengthPrefixedStream<Stream>
  /** Closes it once it has been idle for idleMs (while it is in the pool). */
  timer?: ReturnType<typeof setTimeout>
}

export interface KeptCallerInit {
  /** An idle kept stream is closed after this long unused (ms). Default RPC_KEPT_CALLER_IDLE_MS. */
  idleMs?: number
}

/**
 * Calls on a kept protocol (see the header), each on a stream kept from the call before to the
 * same peer when one is idle: one idle stream kept per peer, a new one opened for a call while
 * another is under way (and kept after it when none is idle then). A stream is dropped when its
 * call fails, when the answerer closes it, and after idleMs unused. A call sent on a kept stream
 * that turns out to have ended before any reply is sent once more on a new stream (the calls of a
 * kept protocol are idempotent). `opened` counts the streams opened.
 */
export class KeptCaller<Req, Res> {
  private readonly host: RpcDialer
  private readonly p: RpcProtocol<Req, Res, any, any>
  private readonly idleMs: number
  private readonly idle = new Map<string, Kept>()
  private closed = false
  opened = 0

  constructor (host: RpcDialer, p: RpcProtocol<Req, Res, any, any>, init: KeptCallerInit = {}) {
    if (p.kept !== true) throw new RangeError(`${p.id}: not a kept protocol`)
    this.host = host
    this.p = p
    this.idleMs = init.idleMs ?? RPC_KEPT_CALLER_IDLE_MS
  }

  /** call() on a kept stream: the same rejections. */
  async call (peer: string, request: Req, opts: AbortOptions & { timeoutMs?: number } = {}): Promise<Res> {
    const p = this.p
    const bytes = encodeCall(p, request)
    for (let attempt = 0; ; attempt++) {
      // an idle kept stream holds no slot: libp2p's limit has room for it (RPC_STREAMS_HARD_FACTOR)
      const s = await slot(this.host, peer, p, opts.signal, opts.timeoutMs ?? p.timeoutMs)
      const w = held(s.release, () => callWatch(p, peer, opts))
      const { timer, signal } = w
      let k: Kept | undefined
      let reused = false
      let heard = false
      try {
        k = attempt === 0 ? this.take(peer) : undefined
        reused = k !== undefined
        if (k === undefined) {
          const stream = await this.host.newStream(peer, p.id, { signal, maxOutboundStreams: streamsCap(p) })
          this.opened++
          k = { stream, lp: framed(stream, p) }
        }
        w.watch(k.stream, bytes.byteLength)
        await k.lp.write(bytes, { signal })
        w.written()
        const value = await readReply(p, peer, request, k.stream, k.lp, heardBy(timer, s), signal, () => { heard = true })
        this.put(peer, k)
        return value
      } catch (err: any) {
        if (err instanceof RpcRemoteError || p.errors?.some(C => err instanceof C) === true) throw err
        // a kept stream the answerer had closed (idle, stopping) before this call reached it
        const ended = reused && !heard && opts.signal?.aborted !== true && !timer.signal.aborted &&
          (err?.name === 'UnexpectedEOFError' || err?.name === 'StreamStateError' || err?.name === 'StreamResetError' || k?.stream.status !== 'open')
        const e = failure(p, err, k?.stream, opts.signal, timer.signal)
        if (!ended) throw e
        log.trace('%s: kept stream to %s had ended (%e): sent again on a new one', p.id, peer, err)
      } finally {
        s.release()
        w.end()
      }
    }
  }

  /** Close every idle kept stream; later calls are one per stream. Idempotent. */
  close (): void {
    this.closed = true
    for (const peer of [...this.idle.keys()]) this.drop(peer)
  }

  /** The peers an idle kept stream, still open both ways, goes to now (one stream per peer at most). */
  keptPeers (): string[] {
    return [...this.idle].filter(([, k]) => k.stream.status === 'open' && k.stream.remoteWriteStatus === 'writable').map(([peer]) => peer)
  }

  /** The idle kept stream to `peer`, if one is still open both ways. */
  private take (peer: string): Kept | undefined {
    const k = this.idle.get(peer)
    if (k === undefined) return undefined
    this.idle.delete(peer)
    clearTimeout(k.timer)
    if (k.stream.status === 'open' && k.stream.writeStatus === 'writable' && k.stream.remoteWriteStatus === 'writable') return k
    k.stream.abort(new RpcClosedError(`${this.p.id}: the kept stream to ${peer} had ended`))
    return undefined
  }

  /** Keep `k` for the next call to `peer`, or close it when one is kept already. */
  private put (peer: string, k: Kept): void {
    if (this.closed || this.idle.has(peer) || k.stream.status !== 'open' || k.stream.remoteWriteStatus !== 'writable') {
      this.end(peer, k)
      return
    }
    k.timer = setTimeout(() => { this.drop(peer) }, this.idleMs)
    k.timer.unref?.()
    this.idle.set(peer, k)
  }

  private drop (peer: string): void {
    const k = this.idle.get(peer)
    if (k === undefined) return
    this.idle.delete(peer)
    clearTimeout(k.timer)
    this.end(peer, k)
  }

  private end (peer: string, k: Kept): void {
    k.stream.close({ signal: AbortSignal.timeout(RPC_ERROR_REPLY_TIMEOUT_MS) }).catch((err: unknown) => {
      log.trace('%s: closing a kept stream to %s: %e', this.p.id, peer, err)
      k.stream.abort(err instanceof Error ? err : new Error(String(err)))
    })
  }
}

/**
 * What a failed call or notice throws, once its stream is aborted: the caller's abort reason,
 * the silence timeout's, or the stream's error as the protocol's.
 */
function failure (p: RpcProtocol<any, any, any, any>, err: any, stream: Stream | undefined, caller: AbortSignal | undefined, silence: AbortSignal): unknown {
  stream?.abort(err instanceof Error ? err : new Error(String(err)))
  if (caller?.aborted === true) return caller.reason ?? err
  if (silence.aborted) return silence.reason
  return streamError(p, err)
}

/**
 * Send one notice to `peer` (no reply; resolves once the answerer read it whole and closed its
 * side: takenBy()). Waits for a stream as a call does (slot(): its silence timer starts once it has one).
 */
export async function notify<Note> (host: RpcDialer, peer: string, p: RpcProtocol<any, any, Note, any>, notice: Note, opts: AbortOptions & { timeoutMs?: number } = {}): Promise<void> {
  const ms = opts.timeoutMs ?? p.timeoutMs
  const bytes = encodeNotice(p, notice)
  const s = await slot(host, peer, p, opts.signal, ms)
  const { timer, signal } = held(s.release, () => watched(silence(ms, `${p.id} notice to ${peer}`), opts.signal))
  let stream: Stream | undefined
  let out: ReturnType<typeof outgoing> | undefined
  try {
    stream = await host.newStream(peer, p.id, { signal, maxOutboundStreams: streamsCap(p) })
    // bounded by its bytes' progress out (and its cap), through the close that waits for the last
    out = outgoing(stream, timer, bytes.byteLength, ms)
    const lp = framed(stream, p)
    await lp.write(bytes, { signal })
    await stream.close({ signal })
    await takenBy(stream, lp, p, peer, signal)
    s.heard()
  } catch (err: any) {
    throw failure(p, err, stream, opts.signal, timer.signal)
  } finally {
    s.release()
    out?.stop()
    timer.clear()
  }
}

/**
 * Resolves once the answerer closed its side of a notice's stream with nothing said, which
 * serve() does once it has read the whole notice (before it handles it): the notice was taken.
 * Rejects when the answerer said something instead (an error reply: a notice refused unread, by
 * `admit`, or over its bound; rebuilt as a call's is), or the stream was reset or aborted: a
 * refused notice is the sender's error, never a notice it was told had arrived (review39g,
 * review40a).
 */
async function takenBy (stream: Stream, lp: LengthPrefixedStream<Stream>, p: AnyProtocol, peer: string, signal: AbortSignal): Promise<void> {
  let bytes: Uint8Array
  try {
    bytes = (await lp.read({ signal })).subarray()
  } catch (err: any) {
    // the end of the answerer's side, with nothing before it: taken
    if (err?.name === 'UnexpectedEOFError' && stream.status !== 'reset' && stream.status !== 'aborted') return
    if (stream.status === 'reset' || stream.status === 'aborted') throw new RpcClosedError(`${p.id}: ${peer} did not take the notice: its stream was ${stream.status}`)
    throw err
  }
  const reply = decodeReply(p, bytes, undefined as never)
  if (reply.kind === 'error') {
    stream.abort(new RpcRemoteError(peer, reply.name, reply.message))
    throw remoteError(p, peer, reply.name, reply.message)
  }
  throw malformed(p, `${peer} answered a notice`)
}

/**
 * Send one notice to every connected peer, at once, best effort: resolves with the peers that
 * took it (the others are logged). The one way node/ disseminates notices: a gossip transport
 * can take its place.
 */
export async function broadcast<Note> (host: RpcDialer & { peers: () => Array<{ id: string }> }, p: RpcProtocol<any, any, Note, any>, notice: Note, opts: AbortOptions & { timeoutMs?: number } = {}): Promise<string[]> {
  const told: string[] = []
  await Promise.all(host.peers().map(async ({ id }) => {
    try {
      await notify(host, id, p, notice, opts)
      told.push(id)
    } catch (err) {
      log('%s: notice to %s not delivered: %e', p.id, id, err)
    }
  }))
  return told
}

export interface NoticeContext {
  /** The peer that sent it. */
  peer: string
  /** Aborts when the protocol stops being served. */
  signal: AbortSignal
}

export interface CallContext<Next> extends NoticeContext {
  /** `signal` also aborts when the caller goes away. Sends an intermediate reply (in order). */
  next: (progress: Next) => Promise<void>
}

export interface RpcHandlers<Req, Res, Note, Next> {
  call?: (request: Req, ctx: CallContext<Next>) => Promise<Res>
  notice?: (notice: Note, ctx: NoticeContext) => void | Promise<void>
}

export interface ServeOptions extends AbortOptions {
  /** Longest silence of the request's bytes, and of each reply's bytes going out (ms); the caps scale with it. Default: the protocol's. */
  timeoutMs?: number
  /** Hears every failure on this protocol (malformed input, a handler's error), with the peer. */
  onError?: (err: Error, peer: string) => void
  /** A kept protocol's stream is closed after this long without a request (ms). Default RPC_KEPT_IDLE_MS. */
  keptIdleMs?: number
  /**
   * Asked as a stream from `peer` opens, before its frame is read or decoded: an error refuses it
   * (replied as a handler's error, the stream closed, no reset: the caller rebuilds it if the
   * protocol lists it), so a peer past a budget costs no decode. Not for a kept protocol (its
   * later requests would pass unasked).
   */
  admit?: (peer: string) => Error | undefined
}

/**
 * Answer protocol `p` with `handlers` (one per kind the protocol takes). Returns stop(): the
 * protocol is no longer handled and the handlers' signal aborts.
 */
export async function serve<Req, Res, Note, Next> (host: RpcServer, p: RpcProtocol<Req, Res, Note, Next>, handlers: RpcHandlers<Req, Res, Note, Next>, opts: ServeOptions = {}): Promise<() => Promise<void>> {
  if ((p.request !== undefined) !== (handlers.call !== undefined) || (p.notice !== undefined) !== (handlers.notice !== undefined)) {
    throw new RangeError(`${p.id}: serve() needs a handler for each kind the protocol takes, and no other`)
  }
  if (opts.admit !== undefined && p.kept === true) throw new RangeError(`${p.id}: admit is not for a kept protocol`)
  const stopped = new AbortController()
  const alive = anySignal([stopped.signal, opts.signal])
  const timeoutMs = opts.timeoutMs ?? p.timeoutMs
  const keptIdleMs = opts.keptIdleMs ?? RPC_KEPT_IDLE_MS
  const report = (err: unknown, peer: string): void => {
    const e = err instanceof Error ? err : new Error(String(err))
    if (e instanceof RpcProtocolError) log.error('%s: malformed message from %s: %s', p.id, peer, e.message)
    else if (!alive.aborted) log('%s: with %s: %e', p.id, peer, e)
    try {
      opts.onError?.(e, peer)
    } catch (hook) {
      log.error('%s: onError hook failed: %e', p.id, hook)
    }
  }

  /**
   * One call's handler, with the calls it makes meanwhile marked as a handler's own: they do not
   * queue (slot()). Only while it runs: work it leaves behind (a timer, a promise not awaited)
   * queues as any call does once it has returned, and a kept stream's next request is a new
   * frame (review40a). A notice's handler gets none: its stream is closed, nobody waits on it.
   */
  const handled = async (request: Req, ctx: CallContext<Next>): Promise<Res> => {
    const frame = { running: true }
    try {
      return await handling.run(frame, async () => await handlers.call!(request, ctx))
    } finally {
      frame.running = false
    }
  }

  const answer = async (stream: Stream, peer: string): Promise<void> => {
    const lp = framed(stream, p, p.maxIncomingBytes)
    const refusal = opts.admit?.(peer)
    if (refusal !== undefined) {
      log.trace('%s: %s refused unread: %s', p.id, peer, refusal.message)
      await refuse(stream, lp, p, refusal, false)
      return
    }
    let incoming: Incoming<Req, Note>
    // the caller's silence of bytes, and the request's cap, as a caller's of the reply (silence())
    const first = silence(timeoutMs, `${p.id} request from ${peer}`, { unref: true })
    const unhear = hearing(stream, first)
    try {
      incoming = decodeIncoming(p, (await lp.read({ signal: anySignal([alive, first.signal]) })).subarray())
    } catch (err) {
      // no whole request (malformed, over the bound, silent, reset): say why, then reset
      const e = streamError(p, err)
      report(e, peer)
      await refuse(stream, lp, p, e, true)
      return
    } finally {
      unhear()
      first.clear()
    }
    if (incoming.kind === 'notice') {
      // nothing goes back: close our side at once (the sender's close completes), then act
      await stream.close({ signal: AbortSignal.timeout(RPC_ERROR_REPLY_TIMEOUT_MS) }).catch((err: unknown) => {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      })
      try {
        await handlers.notice?.(incoming.value, { peer, signal: alive })
      } catch (err) {
        // the notice was refused (a forged op, say): nothing goes back, the stream is reset
        report(err, peer)
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
      return
    }
    const gone = new AbortController()
    const onClose = (): void => { gone.abort(new RpcClosedError(`${p.id}: ${peer} closed the stream`)) }
    stream.addEventListener('close', onClose, { once: true })
    if (stream.status !== 'open') onClose()
    const signal = anySignal([alive, gone.signal])
    // replies go out in order; the chain itself never rejects (a write whose stream went away
    // fails its own caller, never an unhandled rejection)
    let writing = Promise.resolve()
    const write = async (bytes: Uint8Array): Promise<void> => {
      const next = writing.then(async () => {
        // bounded by the bytes' progress out, not the whole frame's (sending())
        const out = sending(stream, timeoutMs, `${p.id} reply to ${peer}`, bytes.byteLength)
        try {
          await lp.write(bytes, { signal: anySignal([signal, out.signal]) })
        } finally {
          out.clear()
        }
      })
      // the chain only orders writes; this write's error reaches its own caller below
      writing = next.catch(() => {})
      await next
    }
    const ctx: CallContext<Next> = { peer, signal, next: async (progress) => { await write(encodeNext(p, progress)) } }
    try {
      let request: Req | undefined = incoming.value
      while (request !== undefined) {
        await write(encodeOk(p, await handled(request, ctx)))
        // a kept stream: the caller's next request, until it closes the stream or goes silent
        request = p.kept === true ? await nextRequest(stream, lp, signal, gone.signal) : undefined
      }
      if (!gone.signal.aborted) {
        const out = sending(stream, timeoutMs, `${p.id} close to ${peer}`, 0)
        try {
          await stream.close({ signal: anySignal([signal, out.signal]) })
        } finally {
          out.clear()
        }
      }
    } catch (err) {
      report(err, peer)
      await writing
      const e = streamError(p, err)
      await refuse(stream, lp, p, e, e instanceof RpcProtocolError)
    } finally {
      stream.removeEventListener('close', onClose)
    }
  }

  /**
   * The next request on a kept stream; undefined once the caller closed its side (or the stream
   * went away), or sent nothing for keptIdleMs (this side then closes it).
   */
  const nextRequest = async (stream: Stream, lp: LengthPrefixedStream<Stream>, signal: AbortSignal, gone: AbortSignal): Promise<Req | undefined> => {
    const idle = new AbortController()
    const timer = setTimeout(() => { idle.abort(new RpcTimeoutError(`${p.id}: no request for ${keptIdleMs} ms`)) }, keptIdleMs)
    let bytes: Uint8Array
    try {
      bytes = (await lp.read({ signal: anySignal([signal, idle.signal]) })).subarray()
    } catch (err: any) {
      if (gone.aborted || (idle.signal.aborted && !signal.aborted)) return undefined
      // the caller closed its side: no more requests (a request it cut short is not answered)
      if (err?.name === 'UnexpectedEOFError' && stream.remoteWriteStatus !== 'writable') return undefined
      throw err
    } finally {
      clearTimeout(timer)
    }
    const incoming = decodeIncoming(p, bytes)
    if (incoming.kind !== 'call') throw malformed(p, 'a kept stream carries calls only')
    return incoming.value
  }

  await host.handle(p.id, (stream, peer) => {
    answer(stream, peer).catch((err: unknown) => {
      // answer() catches what it does; this is a bug, not input: say so, keep the host up
      log.error('%s: answering %s failed: %e', p.id, peer, err)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    })
  }, {
    // the protocol's maxStreams with its headroom, both ways: callers of this code keep within it
    // (slot()), so libp2p aborts no stream they open
    maxInboundStreams: streamsCap(p),
    maxOutboundStreams: streamsCap(p)
  })

  return async () => {
    stopped.abort(new RpcClosedError(`${p.id}: no longer served`))
    await host.unhandle(p.id).catch((err: unknown) => { log('%s: unhandle: %e', p.id, err) })
  }
}

/**
 * Tell the caller why (an error reply), then close the stream, and reset it when `reset` (a
 * request that never arrived whole, or broke the protocol: that peer gets no more of this stream).
 */
async function refuse (stream: Stream, lp: LengthPrefixedStream<Stream>, p: AnyProtocol, err: Error, reset: boolean): Promise<void> {
  const signal = AbortSignal.timeout(RPC_ERROR_REPLY_TIMEOUT_MS)
  try {
    if (stream.status === 'open' && stream.writeStatus === 'writable') {
      await lp.write(encodeError(p, err), { signal })
      await stream.close({ signal })
    }
    if (reset) stream.abort(err)
  } catch (writeErr) {
    log.trace('%s: error reply not delivered: %e', p.id, writeErr)
    stream.abort(err)
  }
}
