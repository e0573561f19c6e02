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

interface NoiseHandshake { decrypt: (ciphertext: Uint8Array | Uint8ArrayList, dst?: Uint8Array) => Uint8Array | Uint8ArrayList }
interface NoiseStream {
  handshake: NoiseHandshake
  metrics?: { decryptedPackets: { increment: () => void }, decryptErrors: { increment: () => void } }
  decoder?: unknown
  decrypt: (chunk: Uint8Array | Uint8ArrayList) => Uint8ArrayList
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
// the tag returned as a list of the two: the connection's next layer, pnet, host.ts
// gatheredPnetSend, XORs each piece into its own output anyway) and opened by the default.
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
        // every byte of it is written: the ciphertext, then the tag
        const out = Buffer.allocUnsafeSlow(plaintext.byteLength + CHACHA_TAG_LENGTH)
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
