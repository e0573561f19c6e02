// Fewer allocations and copies on the receiving side of a connection's two encryption layers
// (issue 15: a sequential write through six hosts costs ~60 ms of CPU per MiB, most of it moving
// bytes between hosts). The same ciphers, keys and checks; only what is done with the bytes
// around them changes:
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
import type { ConnectionEncrypter } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { createCipheriv } from 'node:crypto'
import { aeadNative } from '../data/index.ts'

/** The list class (a value: Uint8ArrayList is also used as a type below). */
const ListCtor = Uint8ArrayList

/** Bytes from which Noise's default crypto decrypts with node:crypto (which ignores `dst`), as @chainsafe/libp2p-noise 17. */
export const NOISE_NODE_CRYPTO_MIN_BYTES = 1200
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
  decrypt: (ciphertext: Uint8Array | Uint8ArrayList, dst?: Uint8Array) => Uint8Array | Uint8ArrayList
  encrypt: (plaintext: Uint8Array | Uint8ArrayList) => Uint8Array | Uint8ArrayList
}
interface NoiseStream {
  handshake: NoiseHandshake
  metrics?: { decryptedPackets: { increment: () => void }, decryptErrors: { increment: () => void }, encryptedPackets: { increment: () => void } }
  decoder?: unknown
  decrypt: (chunk: Uint8Array | Uint8ArrayList) => Uint8ArrayList
  encrypt: (chunk: Uint8Array | Uint8ArrayList) => Uint8Array | Uint8ArrayList
  __darkfsLean?: true
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
      // a small message goes to the WebAssembly crypto, which copies it whole anyway
      dst = end - i < NOISE_NODE_CRYPTO_MIN_BYTES ? chunk.subarray(i, end - CHACHA_TAG_LENGTH) : undefined
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

/** Lean the receive path of one Noise connection (see the top of this file); another shape is left as it is. */
export function leanNoiseConnection (conn: unknown): void {
  const c = conn as NoiseStream | null | undefined
  if (c === null || c === undefined || typeof c.decrypt !== 'function' || c.handshake === undefined) return
  const decoder = c.decoder as { decode?: unknown, buffer?: Uint8ArrayList } | undefined
  if (decoder === undefined || typeof decoder.decode !== 'function' || decoder.buffer === undefined) return
  UInt8ArrayListCtor ??= decoder.buffer.constructor as new () => Uint8ArrayList
  const proto = Object.getPrototypeOf(c) as NoiseStream
  if (proto.__darkfsLean !== true) {
    proto.decrypt = leanDecrypt
    // the send side in one buffer only where the crypto seals into it (the addon's; see below)
    if (aeadNative !== undefined && typeof proto.encrypt === 'function') proto.encrypt = sealedEncrypt
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

// --- Noise's transport messages in buffers we own ---------------------------------------------
//
// @chainsafe/libp2p-noise 17's default crypto seals and opens a message of 1200 bytes or more
// with node:crypto (OpenSSL's ChaCha20-Poly1305): a cipher object made per message, its output
// in a new buffer, and on the send side the ciphertext and the tag joined into another
// (Buffer.concat), each message's 2-byte length in a buffer of its own, and then pnet (host.ts
// gatheredPnetSend) XORs all of it into yet another buffer for the socket. In a six-host write,
// sealing and opening this way were the largest costs of the hosts' threads after the kernel's.
// With the addon (data/erasure.ts aeadNative: the same OpenSSL cipher, called on our buffers):
//
// - a connection's send (sealedEncrypt) lays out every message of what it sends in one fresh
//   buffer, [length, ciphertext, tag] after one another, each message sealed straight into its
//   place (Noise's own CipherState still keeps the nonce: the crypto is only told where to
//   write, through `sealInto`), and the buffer is marked ours (ownedSend), so pnet XORs it in
//   place: one buffer and one pass of each cipher per send, where there were four buffers;
// - a transport message (empty associated data: only the transport's messages have none) is
//   opened in place (the bytes are the socket's read, handed to this connection alone; Noise's
//   own decrypt writes its plaintext over them too), and its plaintext returned only once the
//   tag matched; a wrong tag throws as before, and the connection is closed.
//
// The bytes on the wire are the library's (same cipher, keys, nonces, lengths and split into
// messages of at most 65535 bytes), so hosts with and without this talk to each other unchanged.
// The handshake's messages (associated data: the handshake hash) stay on the library's path.

/** The part of Noise's crypto interface (ICryptoInterface of @chainsafe/libp2p-noise 17) leanNoiseCrypto changes. */
export interface NoiseSeal {
  chaCha20Poly1305Encrypt: (plaintext: Uint8Array | Uint8ArrayList, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array) => Uint8Array | Uint8ArrayList
  chaCha20Poly1305Decrypt: (ciphertext: Uint8Array | Uint8ArrayList, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array, dst?: Uint8Array) => Uint8Array | Uint8ArrayList
}

/** Where the next seal writes (set by sealedEncrypt around one handshake.encrypt call; synchronous, so never seen by another). */
let sealInto: Uint8Array | undefined

/** The ArrayBuffers of sends laid out by sealedEncrypt: ours alone, so pnet may XOR them in place. */
const ownedSends = new WeakSet<ArrayBufferLike>()

/** Whether `piece` is (part of) a send laid out by sealedEncrypt, no one else's: host.ts's pnet send XORs it in place. */
export function ownedSend (piece: Uint8Array): boolean {
  return ownedSends.has(piece.buffer)
}

// Sends of SEND_POOL_MIN_BYTES or more are laid out in memory used again: a send buffer's
// memory is given back by host.ts's pnet send once the socket holds none of it (sendDone), and
// the next send takes it. Fresh memory per send was a page fault per 4 KiB written, and garbage
// V8 collects in batches. A buffer not given back (the socket still had bytes queued) is left to
// the collector, as any other.
/** Capacity of a send buffer used again (a 256 KiB fragment's frames and their messages fit). */
export const SEND_POOL_BYTES = 512 * 1024
/** Smaller sends get a buffer of their own size (one kept for them would mostly hold nothing). */
export const SEND_POOL_MIN_BYTES = 64 * 1024
/** Most send buffers kept for reuse (per thread). */
const SEND_POOL_MAX = 8
const sendPool: ArrayBuffer[] = []
/** A send buffer in use → the end of the send laid out in it (its last piece marks it sent). */
const pooledEnds = new WeakMap<ArrayBufferLike, number>()

/** Memory for a send of `bytes` (see above); marked ours. */
function sendBuffer (bytes: number): Buffer {
  if (bytes < SEND_POOL_MIN_BYTES || bytes > SEND_POOL_BYTES) {
    const out = Buffer.allocUnsafeSlow(bytes)
    ownedSends.add(out.buffer)
    return out
  }
  let memory = sendPool.pop()
  if (memory === undefined) {
    // a new buffer to keep only for a send that fills half of one (most of it is used even when
    // it is never given back); a smaller one gets its own size, as before
    if (bytes < SEND_POOL_BYTES / 2) {
      const out = Buffer.allocUnsafeSlow(bytes)
      ownedSends.add(out.buffer)
      return out
    }
    memory = Buffer.allocUnsafeSlow(SEND_POOL_BYTES).buffer
  }
  ownedSends.add(memory)
  pooledEnds.set(memory, bytes)
  return Buffer.from(memory, 0, bytes)
}

/**
 * Called by host.ts's pnet send once `piece` (a piece of a send laid out by sealedEncrypt) has
 * gone to the socket and the socket holds no bytes queued: when it was the send's last piece,
 * every byte of that send is in the kernel, and its memory is taken by a later send.
 */
export function sendDone (piece: Uint8Array): void {
  const memory = piece.buffer
  const end = pooledEnds.get(memory)
  if (end === undefined || piece.byteOffset + piece.byteLength !== end) return
  pooledEnds.delete(memory)
  if (sendPool.length < SEND_POOL_MAX) sendPool.push(memory as ArrayBuffer)
}

/** Send buffers kept for reuse now (for tests). */
export function sendPoolSize (): number {
  return sendPool.length
}

/** Noise's largest message without its tag (@chainsafe/libp2p-noise 17). */
const NOISE_MSG_MAX_PLAINTEXT = NOISE_MSG_MAX_LENGTH_BYTES - CHACHA_TAG_LENGTH

/** The buffers of `data`, as an array (the addon takes one). */
function piecesOf (data: Uint8Array | Uint8ArrayList): Uint8Array[] {
  if (data instanceof Uint8Array) return [data]
  const out: Uint8Array[] = []
  for (const b of data) out.push(b)
  return out
}

/**
 * Noise's EncryptedMessageStream.encrypt into one buffer of ours (see above): the same messages
 * (at most 65519 bytes of plaintext each, a 2-byte big-endian length before each), sealed by the
 * same handshake (its nonces) in the same order.
 */
function sealedEncrypt (this: NoiseStream, chunk: Uint8Array | Uint8ArrayList): Uint8Array {
  const total = chunk.byteLength
  const count = Math.ceil(total / NOISE_MSG_MAX_PLAINTEXT)
  // an ArrayBuffer of its own (never Buffer.allocUnsafe's shared pool: the whole ArrayBuffer is
  // marked ours, and pnet writes over it)
  const out = sendBuffer(total + count * (2 + CHACHA_TAG_LENGTH))
  let at = 0
  for (let i = 0; i < total; i += NOISE_MSG_MAX_PLAINTEXT) {
    const end = Math.min(i + NOISE_MSG_MAX_PLAINTEXT, total)
    const length = end - i + CHACHA_TAG_LENGTH
    out[at] = length >> 8
    out[at + 1] = length & 0xff
    const into = out.subarray(at + 2, at + 2 + length)
    sealInto = into
    let sealed: Uint8Array | Uint8ArrayList
    try {
      sealed = this.handshake.encrypt(chunk instanceof Uint8Array ? chunk.subarray(i, end) : chunk.sublist(i, end))
    } finally {
      sealInto = undefined
    }
    // a crypto that did not write into its place (not ours): its output copied there
    if (sealed !== into) {
      if (sealed.byteLength !== length) throw new Error(`Noise sealed ${sealed.byteLength} bytes where ${length} were due`)
      if (sealed instanceof Uint8Array) into.set(sealed)
      else { let p = 0; for (const b of sealed) { into.set(b, p); p += b.byteLength } }
    }
    this.metrics?.encryptedPackets.increment()
    at += 2 + length
  }
  return out
}

/**
 * `base` (Noise's default crypto, given by host.ts: only it imports the library), sealing and
 * opening the transport's messages with the addon (see above) where it has the cipher; without
 * it, a large message is sealed by node:crypto as ciphertext and tag without joining them (pnet's
 * send XORs each piece into its own output anyway). Every other operation is `base`'s.
 */
export function leanNoiseCrypto<C> (base: C): C {
  const { chaCha20Poly1305Encrypt: seal, chaCha20Poly1305Decrypt: open } = base as unknown as NoiseSeal
  const aead = aeadNative
  const lean: Partial<NoiseSeal> = {
    chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
      const into = sealInto
      if (aead !== undefined && into !== undefined && into.byteLength === plaintext.byteLength + CHACHA_TAG_LENGTH) {
        aead.seal(k, nonce, ad, piecesOf(plaintext), into)
        return into
      }
      if (plaintext.byteLength < NOISE_NODE_CRYPTO_MIN_BYTES) return seal(plaintext, nonce, ad, k)
      const cipher = createCipheriv('chacha20-poly1305', k, nonce, { authTagLength: CHACHA_TAG_LENGTH })
      cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
      const out = new ListCtor()
      if (plaintext instanceof Uint8Array) out.append(cipher.update(plaintext))
      else for (const piece of plaintext) out.append(cipher.update(piece))
      const final = cipher.final()
      if (final.byteLength > 0) out.append(final)
      out.append(cipher.getAuthTag())
      return out
    }
  }
  if (aead !== undefined) {
    lean.chaCha20Poly1305Decrypt = (ciphertext, nonce, ad, k, dst) => {
      // in place only for a transport message (no associated data): the handshake hashes its
      // ciphertexts after decrypting them, so those must stay as they came
      if (ad.byteLength !== 0 || ciphertext.byteLength < CHACHA_TAG_LENGTH) return open(ciphertext, nonce, ad, k, dst)
      const n = ciphertext.byteLength - CHACHA_TAG_LENGTH
      if (ciphertext instanceof Uint8Array) {
        if (!aead.open(k, nonce, ad, [ciphertext.subarray(0, n)], ciphertext.subarray(n))) throw new Error('Invalid chacha20poly1305 decryption')
        return ciphertext.subarray(0, n)
      }
      const text = ciphertext.sublist(0, n)
      if (!aead.open(k, nonce, ad, piecesOf(text), ciphertext.subarray(n))) throw new Error('Invalid chacha20poly1305 decryption')
      return text
    }
  }
  return { ...base, ...lean }
}
