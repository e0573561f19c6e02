// Fewer allocations and copies on both sides of a connection's two encryption layers (Noise,
// then pnet) and fewer yamux window updates (issue 15: a sequential write through six hosts costs
// ~60 ms of CPU per MiB, most of it moving bytes between hosts). The same ciphers, keys and
// checks; only what is done with the bytes around them changes. Receiving:
//
// - pnet (inPlacePnetInbound): @libp2p/pnet XORs each chunk read from the socket into a new
//   buffer (xsalsa20.ts: one Buffer.allocUnsafeSlow, its own ArrayBuffer, per read). The chunk is
//   the socket's and nobody else's (a fresh buffer per read, handed to pnet alone), so it is
//   XORed in place: the same key stream over the same bytes, one allocation and one buffer's
//   worth of memory traffic less per read, and less garbage.
// - Noise (leanNoise): @chainsafe/libp2p-noise 17 decrypts a message whose bytes span two socket
//   reads (most 64 KiB messages do) after copying all of it once into `dst`, which its node:crypto
//   path (messages of 1200 bytes and more) never reads; and its length decoder throws a new
//   RangeError (a stack trace captured) at the end of every read, when fewer than 2 bytes are
//   left, and reads a length that spans two chunks through a copy and a DataView. Here a message
//   in pieces is decrypted without that copy, and messages are split without exceptions
//   (NoiseDecoder).
// Sending (see "the send path" below):
// - Noise (leanEncrypt): a write is sealed into ONE buffer (each message's length, then the
//   message sealed straight into its place by the addon), not a list of 2n fresh ones.
// - pnet (pnetSend, through host.ts gatheredPnetSend): such a buffer is XORed in place (nobody
//   else holds it), other bytes into one copy; and once the socket has written it, it goes back to
//   a pool (SealPool, at most SEAL_POOL_FREE_BYTES) to be sealed into again.
// Also: the addon's AEAD for Noise's messages (leanNoiseCrypto), and yamux window updates only
// once half the window is used (halfWindowYamux).
import type { ConnectionEncrypter } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { createCipheriv } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { chacha20Poly1305Native } from '../data/index.ts'

/** The list class (a value: Uint8ArrayList is also used as a type below). */
const ListCtor = Uint8ArrayList

/** Bytes from which Noise's default crypto decrypts with node:crypto (which ignores `dst`), as @chainsafe/libp2p-noise 17. */
export const NOISE_NODE_CRYPTO_MIN_BYTES = 1200
/**
 * Bytes from which the addon seals and opens a message (when built): from about 300 bytes it is
 * 2-5x faster than the library's WebAssembly cipher that takes messages under 1200 (seal 22.7
 * -> 6.5 us, open 18.9 -> 3.5 us at 1,100 bytes; at 41-100 bytes no faster).
 */
export const NOISE_NATIVE_AEAD_MIN_BYTES = 256
/** Noise's tag (ChaCha20-Poly1305) and largest message, as @chainsafe/libp2p-noise 17. */
const CHACHA_TAG_LENGTH = 16
const NOISE_MSG_MAX_LENGTH_BYTES = 65535

interface Xor { update: (input: Uint8Array, output?: Uint8Array) => Uint8Array, __darkfsInPlace?: true }

/**
 * Make pnet's inbound cipher of `conn` (a @libp2p/pnet BoxMessageStream) XOR what it is given
 * in place. Only for the inbound cipher: what it is given are socket reads no one else holds (the
 * outbound one is given what the muxer queued, which is not ours to change). A connection of
 * another shape is left as it is. The class's update is looked up on every call (host.ts patches
 * it too).
 */
export function inPlacePnetInbound (conn: unknown): void {
  const xor = (conn as { inboundXor?: Xor } | null | undefined)?.inboundXor
  if (xor === undefined || xor === null || typeof xor.update !== 'function' || xor.__darkfsInPlace === true) return
  const proto = Object.getPrototypeOf(xor) as Xor | null
  if (proto === null || typeof proto.update !== 'function') return
  xor.update = function (this: Xor, input: Uint8Array, output?: Uint8Array): Uint8Array {
    return (Object.getPrototypeOf(xor) as Xor).update.call(this, input, output ?? input)
  }
  xor.__darkfsInPlace = true
}

/** Most bytes a Noise connection's decoder holds (@chainsafe/libp2p-noise 17's maxBufferSize). */
export const NOISE_MAX_BUFFER_BYTES = 16 * 1024 * 1024

/** Thrown (the same object each time: no stack trace taken) when fewer than 2 bytes of a length are there. */
const SHORT_LENGTH = new RangeError('Could not decode int16BE')

/** Noise's 2-byte big-endian message length, read in place (throws SHORT_LENGTH, a RangeError, when incomplete). */
export function noiseLength (data: Uint8Array | Uint8ArrayList): number {
  if (data.byteLength < 2) throw SHORT_LENGTH
  if (data instanceof Uint8Array) return (data[0] << 8) | data[1]
  return (data.get(0) << 8) | data.get(1)
}

/**
 * Splits a Noise connection's bytes into its messages (2-byte big-endian length, then the
 * message), as @libp2p/utils' LengthPrefixedDecoder with Noise's settings, but without an
 * exception at the end of every read (its length decoder throws when fewer than 2 bytes are
 * left, which is how every read ends) and without a copy to read a length.
 */
export class NoiseDecoder {
  private readonly buffer: Uint8ArrayList
  constructor (buffer: Uint8ArrayList) { this.buffer = buffer }

  /** Add received bytes; returns the complete messages now available (a message of length 0 is skipped, as LengthPrefixedDecoder does). */
  decode (data: Uint8Array | Uint8ArrayList): Uint8ArrayList[] {
    const buf = this.buffer
    buf.append(data)
    if (buf.byteLength > NOISE_MAX_BUFFER_BYTES) throw new RangeError(`Buffer length limit exceeded - ${buf.byteLength}/${NOISE_MAX_BUFFER_BYTES}`)
    const out: Uint8ArrayList[] = []
    while (buf.byteLength >= 2) {
      const n = (buf.get(0) << 8) | buf.get(1)
      if (buf.byteLength < 2 + n) break
      if (n > 0) out.push(buf.sublist(2, 2 + n))
      buf.consume(2 + n)
    }
    return out
  }
}

interface NoiseHandshake {
  encrypt: (plaintext: Uint8Array | Uint8ArrayList) => Uint8Array | Uint8ArrayList
  decrypt: (ciphertext: Uint8Array | Uint8ArrayList, dst?: Uint8Array) => Uint8Array | Uint8ArrayList
}
interface NoiseStream {
  handshake: NoiseHandshake
  metrics?: { encryptedPackets?: { increment: () => void }, decryptedPackets: { increment: () => void }, decryptErrors: { increment: () => void } }
  decoder?: unknown
  encrypt: (chunk: Uint8Array | Uint8ArrayList) => Uint8Array | Uint8ArrayList
  decrypt: (chunk: Uint8Array | Uint8ArrayList) => Uint8ArrayList
  __darkfsLean?: true
}

// --- the send path: one buffer per write, XORed by pnet in place ------------------------------
//
// @chainsafe/libp2p-noise 17 seals what the muxer queued as messages of up to 64 KiB, each in a
// buffer of its own behind a 2-byte length of its own (a list of 2n pieces), and pnet then XORs
// all of it into one more buffer for the socket (host.ts gatheredPnetSend): two fresh buffers per
// byte sent, the second as large as the first. Short-lived Buffer memory is what starts the
// collector's full collections on six hosts (issue 15), so here a write is sealed into ONE buffer
// (each message's length, then the message, as on the wire), which pnet XORs in place.
//
// Ownership (what makes the in-place XOR safe): a buffer leanEncrypt makes is written by it alone
// (lengths, and each message sealed straight into its place: sealInto below), is handed to the one
// stream under Noise (pnet's) and to nobody else, and is read once more after that, by pnet's XOR,
// which writes each byte over itself once; after that only the socket reads it (until it is
// written). pnet knows such a buffer by its ArrayBuffer (sealedForPnet): any other bytes it is
// given (the handshake's messages, which Noise may hash after sending, or another encrypter's) are
// XORed into a copy, as before.
//
// Reuse (SealPool): a sealed buffer goes back to its pool, to be sealed into again, only when all
// of these hold at once: every byte of it has been XORed and handed to the connection (pnetSend
// counts them down: a buffer split across two sends is not done after the first), and right after
// that hand-over, or at a later send on the same connection or its socket's next 'drain', the
// connection queued nothing (its write queue is empty) and its socket holds nothing unwritten
// (net.Socket.writableLength 0: the kernel has every byte, and Node keeps no reference to a write
// it finished; a socket writes in order, so every earlier write is finished too). A connection of
// another shape (no socket: the in-memory transport of tests), a send still queued anywhere, a
// send that threw, a connection that closed with it queued, no room left in the pool's bound
// (free and held buffers together): the buffer is never reused, and the collector takes it, as
// before. So no one can read a reused buffer but its new writer: the socket has let go of it, and
// nothing else ever had it.

/** Sealed buffers pnet may XOR in place, by ArrayBuffer, with their bytes not yet handed to the connection. */
const sealedForPnet = new WeakMap<ArrayBufferLike, { unsent: number }>()

/** True when `piece` lies in a buffer leanEncrypt sealed (pnet may XOR it in place: see above). */
export function ownedBySend (piece: Uint8Array): boolean {
  return sealedForPnet.has(piece.buffer)
}

/** Smallest and largest write whose sealed buffer is pooled (smaller ones are left to the collector: cheap). */
export const SEAL_POOL_MIN_BYTES = 32 * 1024
export const SEAL_POOL_MAX_BYTES = 4 * 1024 * 1024
/**
 * Most bytes of sealed buffers one process (isolate) keeps for reuse: free in the pool, and held
 * on connections until their socket has written them (SealPool.hold), together.
 */
export const SEAL_POOL_FREE_BYTES = 8 * 1024 * 1024
/**
 * Room a size class has over its power of two: a write of 2^k plaintext bytes (a yamux frame of
 * 64 or 256 KiB with its 12-byte header, or several frames) seals to a little more (2 + 16 bytes
 * per Noise message of up to 64 KiB: 90 for a 256 KiB frame, 1,170 for 4 MiB), and lands in the
 * class 2^k + SEAL_CLASS_SLACK_BYTES, not in the next power of two (twice its size).
 */
export const SEAL_CLASS_SLACK_BYTES = 4 * 1024

/**
 * Sealed buffers kept for reuse, by size class (sizeClass), at most SEAL_POOL_FREE_BYTES in all:
 * free ones, and ones held on a connection until its socket has written them (see Reuse above
 * for when a buffer comes back).
 */
class SealPool {
  private readonly free = new Map<number, ArrayBuffer[]>()
  private freeBytes = 0
  /** Bytes of the buffers connections hold for the pool (counted until given back or dropped). */
  private heldBytes = 0
  /** Buffers taken from the pool and given back to it (counters, for tests and figures). */
  reused = 0
  returned = 0

  /** Bytes of free buffers, and of buffers held on connections for the pool (for tests and figures). */
  get bytes (): { free: number, held: number } { return { free: this.freeBytes, held: this.heldBytes } }

  /** A buffer of `bytes` (its ArrayBuffer of a size class when the size is pooled). */
  take (bytes: number): Buffer {
    const size = sizeClass(bytes)
    if (size === undefined) return Buffer.allocUnsafeSlow(bytes)
    const ab = this.free.get(size)?.pop()
    if (ab === undefined) return Buffer.from(Buffer.allocUnsafeSlow(size).buffer, 0, bytes)
    this.freeBytes -= size
    this.reused++
    return Buffer.from(ab, 0, bytes)
  }

  /** Take `ab` back (a buffer of a size class only, while there is room). */
  give (ab: ArrayBufferLike): void {
    if (!pooled(ab) || this.freeBytes + this.heldBytes + ab.byteLength > SEAL_POOL_FREE_BYTES) return
    let list = this.free.get(ab.byteLength)
    if (list === undefined) this.free.set(ab.byteLength, list = [])
    list.push(ab)
    this.freeBytes += ab.byteLength
    this.returned++
  }

  /**
   * Count `ab` (to be given back once a connection has written it) as held, while there is room:
   * false when it is not of a size class or there is no room (then nothing remembers it: the
   * collector takes it).
   */
  hold (ab: ArrayBufferLike): boolean {
    if (!pooled(ab) || this.freeBytes + this.heldBytes + ab.byteLength > SEAL_POOL_FREE_BYTES) return false
    this.heldBytes += ab.byteLength
    return true
  }

  /** `held` (buffers hold counted) are written: back to the pool (as give), or only uncounted when `drop`. */
  release (held: ArrayBufferLike[], drop = false): void {
    for (const ab of held) this.heldBytes -= ab.byteLength
    if (!drop) for (const ab of held) this.give(ab)
  }
}

/** True when `ab` is a whole buffer of a size class (one SealPool.take made). */
function pooled (ab: ArrayBufferLike): ab is ArrayBuffer {
  return ab instanceof ArrayBuffer && sizeClass(ab.byteLength) === ab.byteLength
}

/** The buffer size a write of `bytes` sealed bytes takes: 2^k + SEAL_CLASS_SLACK_BYTES, the smallest that fits; undefined when not pooled. */
export function sizeClass (bytes: number): number | undefined {
  if (bytes < SEAL_POOL_MIN_BYTES || bytes > SEAL_POOL_MAX_BYTES + SEAL_CLASS_SLACK_BYTES) return undefined
  return 2 ** Math.max(0, Math.ceil(Math.log2(bytes - SEAL_CLASS_SLACK_BYTES))) + SEAL_CLASS_SLACK_BYTES
}

/** This process's pool of sealed buffers (its counters: sealPool.reused, .returned). */
export const sealPool = new SealPool()

/**
 * Where the seal under way writes its message (leanNoiseCrypto's seal, when the size matches):
 * set by leanEncrypt around one handshake.encrypt call (synchronous), undefined otherwise, so the
 * handshake's own seals (encryptAndHash) allocate as before.
 */
let sealInto: Uint8Array | undefined

/** Largest plaintext of one Noise message (@chainsafe/libp2p-noise 17 NOISE_MSG_MAX_LENGTH_BYTES_WITHOUT_TAG). */
const NOISE_MSG_MAX_PLAINTEXT_BYTES = NOISE_MSG_MAX_LENGTH_BYTES - CHACHA_TAG_LENGTH

/**
 * Noise's EncryptedMessageStream.encrypt into one buffer: the same messages (64 KiB at most), each
 * after its 2-byte big-endian length, sealed by the same handshake in the same order; the bytes
 * are the library's, in one buffer instead of a list of 2n.
 */
function leanEncrypt (this: NoiseStream, chunk: Uint8Array | Uint8ArrayList): Uint8Array {
  const total = chunk.byteLength
  const messages = Math.ceil(total / NOISE_MSG_MAX_PLAINTEXT_BYTES)
  const out = sealPool.take(total + messages * (2 + CHACHA_TAG_LENGTH))
  let at = 0
  for (let i = 0; i < total; i += NOISE_MSG_MAX_PLAINTEXT_BYTES) {
    const end = Math.min(i + NOISE_MSG_MAX_PLAINTEXT_BYTES, total)
    const length = end - i + CHACHA_TAG_LENGTH
    out[at] = length >> 8
    out[at + 1] = length & 0xff
    const place = out.subarray(at + 2, at + 2 + length)
    let sealed: Uint8Array | Uint8ArrayList
    sealInto = place
    try {
      sealed = this.handshake.encrypt(chunk instanceof Uint8Array ? chunk.subarray(i, end) : chunk.sublist(i, end))
    } finally {
      sealInto = undefined
    }
    if (sealed.byteLength !== length) throw new Error(`Noise sealed ${sealed.byteLength} bytes for a ${end - i} byte message`)
    // sealed elsewhere (no addon, or a plaintext in too many pieces): copied into its place
    if (sealed !== place) {
      if (sealed instanceof Uint8Array) place.set(sealed)
      else copyList(sealed, place)
    }
    this.metrics?.encryptedPackets?.increment()
    at += 2 + length
  }
  sealedForPnet.set(out.buffer, { unsent: out.byteLength })
  return out
}

function copyList (list: Uint8ArrayList, into: Uint8Array): void {
  let at = 0
  for (const piece of list) { into.set(piece, at); at += piece.byteLength }
}

/** A pnet connection's socket side as pnetSend sees it (@libp2p/tcp 11's TCPSocketMultiaddrConnection). */
export interface PnetSocketSide {
  send: (bytes: Uint8Array | Uint8ArrayList) => boolean
  /** Bytes its stream queued, not yet given to the socket (@libp2p/utils AbstractMessageStream). */
  writeBuffer?: { byteLength: number }
  socket?: {
    writableLength?: number
    destroyed?: boolean
    on?: (event: 'drain', listener: () => void) => unknown
    once?: (event: 'close', listener: () => void) => unknown
  }
}

/**
 * pnet's send of `data` (the pieces its stream queued) through `conn`: XORed by `xor` in order (a
 * piece of a buffer leanEncrypt sealed in place, a run of other pieces into one new buffer; one
 * buffer goes to the connection as it is, several as a list, which the socket writes in order),
 * then sealed buffers handed over whole go back to the pool if the connection has written every
 * byte (see Reuse above). Returns the connection's answer (false: wait for its drain).
 */
export function pnetSend (xor: { update: (input: Uint8Array, output?: Uint8Array) => Uint8Array }, data: Iterable<Uint8Array> & { byteLength: number }, conn: PnetSocketSide): boolean {
  // sealed buffers handed over whole by earlier sends, unwritten then: written by now?
  giveBackWritten(conn)
  const out: Uint8Array[] = []
  const whole: ArrayBufferLike[] = []
  let foreign: Uint8Array[] = []
  let foreignBytes = 0
  const flush = (): void => {
    if (foreignBytes === 0) return
    const copy = Buffer.allocUnsafeSlow(foreignBytes)
    let at = 0
    for (const piece of foreign) {
      xor.update(piece, copy.subarray(at, at + piece.byteLength))
      at += piece.byteLength
    }
    out.push(copy)
    foreign = []
    foreignBytes = 0
  }
  for (const piece of data) {
    if (piece.byteLength === 0) continue
    const sealed = sealedForPnet.get(piece.buffer)
    if (sealed !== undefined) {
      flush()
      xor.update(piece, piece)
      out.push(piece)
      sealed.unsent -= piece.byteLength
      if (sealed.unsent === 0) whole.push(piece.buffer)
    } else {
      foreign.push(piece)
      foreignBytes += piece.byteLength
    }
  }
  flush()
  let more: boolean
  if (out.length === 1) more = conn.send(out[0])
  else {
    const list = new ListCtor()
    for (const piece of out) list.append(piece)
    more = conn.send(list)
  }
  const now = written(conn)
  for (const ab of whole) {
    // no longer pnet's to XOR in place, whatever comes of it
    sealedForPnet.delete(ab)
    if (now) sealPool.give(ab)
    else holdUntilWritten(conn, ab)
  }
  return more
}

/**
 * Sealed buffers a connection was handed whole while it still held bytes unwritten (queued, or in
 * its socket), counted as held by the pool (SealPool.hold: with the free ones, at most
 * SEAL_POOL_FREE_BYTES in the process, however many connections): given back to the pool once the
 * connection is found holding nothing unwritten (its socket writes in order: then it has written
 * these too), at its next send or its socket's next 'drain'; dropped (uncounted, left to the
 * collector) when its socket closes.
 */
const unwrittenSealed = new WeakMap<PnetSocketSide, ArrayBufferLike[]>()
/** Most such buffers remembered per connection (the rest are left to the collector). */
const MAX_UNWRITTEN_SEALED = 16

/** Remember `ab` on `conn` until it has written it (see unwrittenSealed), when there is room; else leave it to the collector. */
function holdUntilWritten (conn: PnetSocketSide, ab: ArrayBufferLike): void {
  const socket = conn.socket
  // only a TCP connection's shape: its queue and socket say when it has written, and its socket when it closes
  if (socket === undefined || conn.writeBuffer === undefined || typeof socket.on !== 'function' || typeof socket.once !== 'function') return
  if (socket.destroyed === true) return
  let list = unwrittenSealed.get(conn)
  if (list !== undefined && list.length >= MAX_UNWRITTEN_SEALED) return
  if (!sealPool.hold(ab)) return
  if (list === undefined) {
    unwrittenSealed.set(conn, list = [])
    if (!watchedSockets.has(conn)) {
      watchedSockets.add(conn)
      socket.on('drain', () => { giveBackWritten(conn) })
      socket.once('close', () => {
        const held = unwrittenSealed.get(conn)
        unwrittenSealed.delete(conn)
        if (held !== undefined) sealPool.release(held, true)
      })
    }
  }
  list.push(ab)
}

/** Connections whose socket's 'drain' and 'close' give back or drop what they hold (listened to once each). */
const watchedSockets = new WeakSet<PnetSocketSide>()

/** Give back what `conn` holds for the pool when it has written everything. */
function giveBackWritten (conn: PnetSocketSide): void {
  const held = unwrittenSealed.get(conn)
  if (held === undefined || !written(conn)) return
  unwrittenSealed.delete(conn)
  sealPool.release(held)
}

/** True when `conn` (a TCP connection's shape, its socket not destroyed) holds no byte unwritten: nothing queued, nothing in its socket. */
function written (conn: PnetSocketSide): boolean {
  // a destroyed socket's writes may be cancelled rather than written: nothing comes back from it
  return conn.writeBuffer?.byteLength === 0 && conn.socket?.writableLength === 0 && conn.socket.destroyed !== true
}

/**
 * Noise's EncryptedMessageStream.decrypt without the copy into `dst` for a chunk in pieces: the
 * same messages, decrypted and checked by the same handshake in the same order.
 */
function leanDecrypt (this: NoiseStream, chunk: Uint8Array | Uint8ArrayList): Uint8ArrayList {
  const output = new UInt8ArrayListCtor()
  for (let i = 0; i < chunk.byteLength; i += NOISE_MSG_MAX_LENGTH_BYTES) {
    const end = Math.min(i + NOISE_MSG_MAX_LENGTH_BYTES, chunk.byteLength)
    if (end - CHACHA_TAG_LENGTH < i) throw new Error('Invalid chunk')
    let encrypted: Uint8Array | Uint8ArrayList
    let dst: Uint8Array | undefined
    if (chunk instanceof Uint8Array) {
      encrypted = chunk.subarray(i, end)
      // decrypted in place where the crypto takes a destination (Noise's own reuse)
      dst = chunk.subarray(i, end - CHACHA_TAG_LENGTH)
    } else {
      encrypted = chunk.sublist(i, end)
      // a small message goes to the WebAssembly crypto, which copies it whole anyway (with the
      // addon, one from NOISE_NATIVE_AEAD_MIN_BYTES is opened in a copy there: no dst needed)
      dst = end - i < (chacha20Poly1305Native === undefined ? NOISE_NODE_CRYPTO_MIN_BYTES : NOISE_NATIVE_AEAD_MIN_BYTES) ? chunk.subarray(i, end - CHACHA_TAG_LENGTH) : undefined
    }
    try {
      output.append(this.handshake.decrypt(encrypted, dst))
      this.metrics?.decryptedPackets.increment()
    } catch (e) {
      this.metrics?.decryptErrors.increment()
      throw e
    }
  }
  return output
}

// the list class Noise's own decrypt returns (set from the first connection's decoder buffer)
let UInt8ArrayListCtor: new () => Uint8ArrayList

/** Lean the receive and send paths of one Noise connection (see the top of this file, and leanEncrypt); another shape is left as it is. */
export function leanNoiseConnection (conn: unknown): void {
  const c = conn as NoiseStream | null | undefined
  if (c === null || c === undefined || typeof c.decrypt !== 'function' || c.handshake === undefined) return
  const decoder = c.decoder as { decode?: unknown, buffer?: Uint8ArrayList } | undefined
  if (decoder === undefined || typeof decoder.decode !== 'function' || decoder.buffer === undefined) return
  UInt8ArrayListCtor ??= decoder.buffer.constructor as new () => Uint8ArrayList
  const proto = Object.getPrototypeOf(c) as NoiseStream
  if (proto.__darkfsLean !== true) {
    proto.decrypt = leanDecrypt
    proto.encrypt = leanEncrypt
    proto.__darkfsLean = true
  }
  // the stream's listener looks its decoder up on every read; swapped only while it holds
  // nothing (bytes of a message begun stay with the decoder that has them)
  if (decoder.buffer.byteLength === 0) c.decoder = new NoiseDecoder(new UInt8ArrayListCtor())
}

/** `factory` (noise()) whose connections get leanNoiseConnection once the handshake is done. */
export function leanNoise<C> (factory: (components: C) => ConnectionEncrypter): (components: C) => ConnectionEncrypter {
  return (components: C) => {
    const enc = factory(components)
    const inbound = enc.secureInbound.bind(enc)
    const outbound = enc.secureOutbound.bind(enc)
    enc.secureInbound = (async (...args: Parameters<typeof inbound>) => {
      const secured = await inbound(...args)
      leanNoiseConnection(secured.connection)
      return secured
    }) as typeof enc.secureInbound
    enc.secureOutbound = (async (...args: Parameters<typeof outbound>) => {
      const secured = await outbound(...args)
      leanNoiseConnection(secured.connection)
      return secured
    }) as typeof enc.secureOutbound
    return enc
  }
}

// --- yamux window updates ----------------------------------------------------------------------
//
// @chainsafe/libp2p-yamux 8 answers every data frame a stream receives with a window update
// (YamuxStream.sendWindowUpdate, called from handleData: it sends one whenever any of the window is
// used). Each is a 12-byte frame of its own on the connection: a Noise message, a pnet XOR and a
// socket write on this side, the same to read on the other, and a 'drain' there. A fragment
// pushed in 256 KiB costs its receiver as many of those as the frames it came in. Here a stream
// tells its peer about room only once at least half its receive window is used, as hashicorp's
// yamux (the protocol's reference) does; a frame with flags to send (SYN's ACK) goes at once, as
// before. The sender is never stalled by it: it is stopped only when the whole window is used,
// and then the update is due. Peers with either rule talk to each other unchanged (an update is
// a grant of more room, whenever it comes).

/** YamuxStream's fields and methods sendWindowUpdate uses (@chainsafe/libp2p-yamux 8). */
interface YamuxStreamLike {
  state: number
  recvWindow: number
  recvWindowCapacity: number
  maxStreamWindowSize: number
  epochStart: number
  streamId: number
  getRTT: () => number
  getSendFlags: () => number
  sendFrame: (header: { type: number, flag: number, streamID: number, length: number }) => boolean
  sendWindowUpdate: () => void
  __darkfsHalfWindow?: true
}

/** yamux's StreamState.Paused and FrameType.WindowUpdate (@chainsafe/libp2p-yamux 8). */
const YAMUX_PAUSED = 5
const YAMUX_WINDOW_UPDATE = 1

/** yamux's sendWindowUpdate, with an update sent only once half the receive window (or more) is used, or with flags. */
function halfWindowUpdate (this: YamuxStreamLike): void {
  if (this.state === YAMUX_PAUSED) {
    // as yamux: no room is granted while paused, and the epoch starts again
    this.epochStart = Date.now()
    return
  }
  const flags = this.getSendFlags()
  const now = Date.now()
  const rtt = this.getRTT()
  // yamux's window growth: a window used up within 4 round trips doubles (up to the maximum)
  if (flags === 0 && rtt > -1 && (now - this.epochStart) <= (rtt * 4)) {
    this.recvWindow = Math.min(this.recvWindow * 2, this.maxStreamWindowSize)
  }
  const delta = this.recvWindow - this.recvWindowCapacity
  if (flags === 0 && (delta <= 0 || delta < this.recvWindow / 2)) return
  this.recvWindowCapacity = this.recvWindow
  this.epochStart = now
  this.sendFrame({ type: YAMUX_WINDOW_UPDATE, flag: flags, streamID: this.streamId, length: delta })
}

/**
 * Make yamux streams (the class whose prototype is `proto`: YamuxStream of
 * @chainsafe/libp2p-yamux 8) send a window update only once half the receive window is used
 * (see above). Idempotent; a prototype of another shape is left as it is.
 */
export function halfWindowYamux (proto: unknown): void {
  const p = proto as YamuxStreamLike | null | undefined
  if (p === null || p === undefined || typeof p.sendWindowUpdate !== 'function' || p.__darkfsHalfWindow === true) return
  p.sendWindowUpdate = halfWindowUpdate
  p.__darkfsHalfWindow = true
}

// --- events nobody listens to --------------------------------------------------------------------
//
// @libp2p/utils 7's AbstractMessageStream (every stream, and each layer of a connection: the
// socket's, pnet's, Noise's) tells 'idle' each time its write buffer empties, i.e. once per send
// at each of those layers, and 'drain', 'end', 'remoteCloseWrite' and more, through
// main-event's safeDispatchEvent: a new CustomEvent, dispatched through node's EventTarget,
// whether anything listens or not. Nothing listens to 'idle' on the data path, and making node
// Events there was ~2.5% of the CPU of a request and its answer over a connection (perf, the
// `wire` part of scripts/bench/_range-costs.ts). An event with no listener is not made: nothing
// could see it (dispatching it calls no one and returns true, not cancelled).

/** What skipUnheardEvents() reaches of an event emitter (main-event 1 TypedEventEmitter). */
interface Emitter {
  listenerCount: (type: string) => number
  safeDispatchEvent: (type: string, detail?: unknown) => boolean
  __darkfsUnheard?: true
}

/**
 * Make safeDispatchEvent of the class whose prototype is `proto` (AbstractMessageStream of
 * @libp2p/utils 7) make and dispatch an event only when something listens to its type
 * (listenerCount, which counts every listener added through the emitter's addEventListener,
 * once and signal ones included, until removed). Idempotent; a prototype of another shape is
 * left as it is.
 */
export function skipUnheardEvents (proto: unknown): void {
  const p = proto as Emitter | null | undefined
  if (p === null || p === undefined || typeof p.safeDispatchEvent !== 'function' || typeof p.listenerCount !== 'function' || p.__darkfsUnheard === true) return
  const dispatch = p.safeDispatchEvent
  p.safeDispatchEvent = function (this: Emitter, type: string, detail?: unknown): boolean {
    if (this.listenerCount(type) === 0) return true
    return dispatch.call(this, type, detail)
  }
  p.__darkfsUnheard = true
}

// --- Noise's AEAD ------------------------------------------------------------------------------
//
// @chainsafe/libp2p-noise 17's default crypto seals and opens a message of 1200 bytes or more with
// node:crypto (OpenSSL's ChaCha20-Poly1305: already native). Each message (up to 64 KiB) then
// costs a JavaScript cipher object (createCipheriv/createDecipheriv, setAAD, update, final, the
// tag), a fresh output buffer for every update and, on the send side, a join of the ciphertext and
// the tag (Buffer.concat: a second allocation and copy of every byte sent). On six hosts in one
// process that fresh memory is a good part of the page faults and the collector's work per MiB
// moved (issue 15). With the erasure addon built (node/data/native: OpenSSL's EVP
// chacha20-poly1305 through the process's own exports), a large message is:
// - opened IN PLACE, in one native call: the plaintext is written over the ciphertext, as the
//   library itself does where its crypto takes a `dst` (its decrypt passes the ciphertext's own
//   bytes as `dst`: "memory allocation is not cheap so reuse the encrypted Uint8Array"). A message
//   in pieces (its bytes span socket reads: a Uint8ArrayList of the connection decoder's views,
//   consumed once decrypted) is opened in place piece by piece; no one reads a message's
//   ciphertext after it is decrypted. A ciphertext given alone without that `dst` is copied first
//   (nothing the caller did not offer is changed). A tag that does not match throws, as before,
//   and nothing decrypted is returned.
// - sealed into one buffer (ciphertext, then tag) in one native call.
// Without the addon, a message is sealed through node:crypto without the join (the ciphertext and
// the tag returned as a list of the two, which leanEncrypt copies into its place in the write's
// one buffer: copyList) and opened by the default.
// With the addon, messages from NOISE_NATIVE_AEAD_MIN_BYTES (below the library's 1200, where it
// uses its WebAssembly cipher) take the same native calls.
// Passed to noise() through its `crypto` option (the library's extension point); small messages
// and every other operation are the library's default. The bytes on the wire are the default's,
// so hosts with and without it talk to each other unchanged.

/** The part of Noise's crypto interface (ICryptoInterface of @chainsafe/libp2p-noise 17) leanNoiseCrypto changes. */
export interface NoiseSeal {
  chaCha20Poly1305Encrypt: (plaintext: Uint8Array | Uint8ArrayList, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array) => Uint8Array | Uint8ArrayList
  chaCha20Poly1305Decrypt: (ciphertext: Uint8Array | Uint8ArrayList, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array, dst?: Uint8Array) => Uint8Array | Uint8ArrayList
}

/** The addon's AEAD (node/data/erasure.ts chacha20Poly1305Native), or undefined to use node:crypto. */
export type NativeAead = typeof chacha20Poly1305Native
/** Most pieces the addon takes in one call (erasure.c MAX_AEAD_PIECES); a message in more goes the other way. */
const MAX_AEAD_PIECES = 64

/**
 * `base` (Noise's default crypto, given by host.ts: only it imports the library), sealing and
 * opening large messages as described above; every other operation is `base`'s. `native`: the
 * AEAD to use (default: the addon's, when built; null: node:crypto, for tests).
 */
export function leanNoiseCrypto<C> (base: C, native: NativeAead | null = chacha20Poly1305Native): C {
  const aead = native ?? undefined
  const seal = (base as unknown as NoiseSeal).chaCha20Poly1305Encrypt
  const open = (base as unknown as NoiseSeal).chaCha20Poly1305Decrypt
  const lean: NoiseSeal = {
    chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
      if (plaintext.byteLength < (aead === undefined ? NOISE_NODE_CRYPTO_MIN_BYTES : NOISE_NATIVE_AEAD_MIN_BYTES)) return seal(plaintext, nonce, ad, k)
      const pieces = plaintext instanceof Uint8Array ? [plaintext] : [...plaintext]
      if (aead !== undefined && pieces.length <= MAX_AEAD_PIECES) {
        // every byte of it is written: the ciphertext, then the tag (into its place in
        // leanEncrypt's buffer when that is under way)
        const into = sealInto
        const out = into !== undefined && into.byteLength === plaintext.byteLength + CHACHA_TAG_LENGTH ? into : Buffer.allocUnsafeSlow(plaintext.byteLength + CHACHA_TAG_LENGTH)
        aead.seal(k, nonce, ad, pieces, out)
        return out
      }
      const cipher = createCipheriv('chacha20-poly1305', k, nonce, { authTagLength: CHACHA_TAG_LENGTH })
      cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
      const out = new ListCtor()
      for (const piece of pieces) out.append(cipher.update(piece))
      const final = cipher.final()
      if (final.byteLength > 0) out.append(final)
      out.append(cipher.getAuthTag())
      return out
    },
    chaCha20Poly1305Decrypt (ciphertext, nonce, ad, k, dst) {
      const length = ciphertext.byteLength - CHACHA_TAG_LENGTH
      if (aead === undefined || ciphertext.byteLength < NOISE_NATIVE_AEAD_MIN_BYTES) return open(ciphertext, nonce, ad, k, dst)
      let text: Uint8Array | Uint8ArrayList
      let pieces: Uint8Array[]
      if (ciphertext instanceof Uint8Array) {
        // in place where the caller offered the ciphertext's own bytes (Noise's decrypt does),
        // else in a copy: the caller's ciphertext is left as it was
        const inPlace = dst !== undefined && dst.buffer === ciphertext.buffer && dst.byteOffset === ciphertext.byteOffset && dst.byteLength >= length
        const t = inPlace ? ciphertext.subarray(0, length) : Buffer.from(ciphertext.subarray(0, length))
        text = t
        pieces = [t]
      } else if (ciphertext.byteLength < NOISE_NODE_CRYPTO_MIN_BYTES) {
        // a small message in pieces is opened in a copy: the handshake gives its ciphertext
        // alone and hashes it after decrypting (the library's decryptAndHash), so its bytes must
        // stay as they are; the library's WebAssembly cipher, which took these, copies too
        const t = Buffer.from(ciphertext.subarray(0, length))
        text = t
        pieces = [t]
      } else {
        const list = ciphertext.sublist(0, length)
        pieces = [...list]
        if (pieces.length > MAX_AEAD_PIECES) return open(ciphertext, nonce, ad, k, dst)
        text = list
      }
      // a copy of the tag (16 bytes; a view when it lies in one piece): it may share a piece with text
      const tag = ciphertext.subarray(length)
      if (!aead.open(k, nonce, ad, pieces, tag)) throw new Error('Invalid chacha20poly1305 decryption')
      return text
    }
  }
  return { ...base, ...lean }
}
