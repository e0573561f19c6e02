// The wire format of '/darkfs/swarm/1.0.0': frames of `uvarint(length) || body`, where the
// body is one message in a compact binary form:
//
//   body      = type:u8 payload
//   WANT      = flags:u8 count:uvarint cid*          flags bit 0: answer HAVE/DONT_HAVE only;
//                                                   bit 1: background (repair, pin catch-up),
//                                                   which a holder may refuse and a read not
//   HAVE      = count:uvarint cid*
//   DONT_HAVE = count:uvarint cid*
//   CANCEL    = count:uvarint cid*
//   BLOCK     = cid data                            data: the rest of the frame
//   PUSH      = cid hops:uvarint (peer via:uvarint)* data
//   PUSH_FROM = cid origin:peer hops:uvarint (peer via:uvarint)* data
//                                                   a PUSH naming the peer whose block it is (the
//                                                   writer a hop or a relay forwards for); only on
//                                                   PROTOCOL_ORIGINS streams
//   ACK       = cid holder:peer                     `holder` stored the block (durable)
//   DONE      = cid                                 no more ACKs for `cid` will come on this stream
//   RANGE_WANT = cid first:uvarint end:uvarint       leaves [first, end) of block `cid`, with a proof
//   RANGE     = cid first:uvarint end:uvarint status:u8 [count:uvarint hash{32}* data]
//                                                   status 0: the leaves' bytes (data: the rest of
//                                                   the frame) and the proof's hashes; 1: not held
//   cid       = len:uvarint bytes                   CIDv1, sha2-256, raw or dag-cbor
//   peer      = len:uvarint utf8                    a peer id string
//
// A PUSH carries the forwarding plan below its receiver as a list of hops in which `via` is
// 0 for a hop the receiver sends to itself, or i + 1 for a hop that hop i forwards to (see
// plan.ts). A RANGE_WANT asks for a few leaves of a block (node/data/merkle.ts: the block's
// Merkle tree, whose root the asker knows from elsewhere, a manifest): the swarm moves the
// leaves and the proof opaquely, and the asker's verifier checks them before anyone sees them
// (a wrong answer is treated as a wrong block). Every bound below is enforced on decode: a frame that breaks one throws, and the
// stream carrying it is closed.
import { CID } from 'multiformats/cid'
import { Uint8ArrayList } from 'uint8arraylist'
import { MessageTooLargeError, ProtocolError } from './errors.ts'
import { checkCid } from './verify.ts'

export const PROTOCOL = '/darkfs/swarm/1.0.0'
/**
 * The same protocol with range wants (RANGE_WANT, RANGE). A host serves both; a client dials this
 * one first and falls back to PROTOCOL when the peer does not speak it (an older host, which
 * would take a RANGE_WANT for a protocol violation and ban the sender), and asks such a peer for
 * no ranges.
 */
export const PROTOCOL_RANGES = '/darkfs/swarm/1.1.0'
/**
 * PROTOCOL_RANGES with PUSH_FROM: a forwarded push names its origin (the writer), so a holder
 * knows who put a block a hop relayed (node/keeper/release.ts: who may have it deleted). A client
 * dials this one first and falls back to PROTOCOL_RANGES (and sends plain PUSHes) when the peer
 * does not speak it.
 */
export const PROTOCOL_ORIGINS = '/darkfs/swarm/1.2.0'

/** Largest block the swarm moves: a whole 1 MiB chunk (k = 1) or one fragment of it. */
export const MAX_BLOCK_BYTES = 1024 * 1024
/** Largest message body: a block plus room for its CID and a full forwarding plan. */
export const MAX_MESSAGE_BYTES = MAX_BLOCK_BYTES + 16 * 1024
/** Most CIDs in one WANT, HAVE, DONT_HAVE or CANCEL. */
export const MAX_CIDS_PER_MESSAGE = 256
/** Longest encoded CID accepted (a CIDv1 sha2-256 is 36 bytes). */
export const MAX_CID_BYTES = 64
/** Longest peer id string accepted (an Ed25519 peer id is 52 characters). */
export const MAX_PEER_ID_BYTES = 128
/** Most hops in one PUSH plan (holders below the receiver). */
export const MAX_HOPS = 32
/** Most leaves one RANGE_WANT asks for (64 leaves of 16 KiB: a whole 1 MiB block). */
export const MAX_RANGE_LEAVES = 64
/** Highest leaf index a RANGE_WANT may name (blocks are at most MAX_BLOCK_BYTES). */
export const MAX_LEAF_INDEX = MAX_BLOCK_BYTES
/** Most hashes in a RANGE's proof (a tree of 2^32 leaves needs under 64). */
export const MAX_PROOF_HASHES = 64
/** Bytes of one proof hash. */
export const PROOF_HASH_BYTES = 32
/** Longest frame-length prefix: 4 bytes of uvarint cover 2^28 > MAX_MESSAGE_BYTES. */
const MAX_LENGTH_PREFIX_BYTES = 4

export const WANT = 1
export const HAVE = 2
export const DONT_HAVE = 3
export const BLOCK = 4
export const PUSH = 5
export const ACK = 6
export const CANCEL = 7
export const DONE = 8
export const RANGE_WANT = 9
export const RANGE = 10
export const PUSH_FROM = 11

/** One hop of a forwarding plan: `peer` receives the block from hop `via` (-1: from the receiver). */
export interface Hop { peer: string, via: number }

export type Message =
  | { type: typeof WANT, cids: CID[], haveOnly: boolean, background?: boolean }
  | { type: typeof HAVE | typeof DONT_HAVE | typeof CANCEL, cids: CID[] }
  | { type: typeof BLOCK, cid: CID, bytes: Uint8Array }
  /** `origin`: the peer whose block it is, when the sender forwards it for another (sent as PUSH_FROM). */
  | { type: typeof PUSH, cid: CID, hops: Hop[], bytes: Uint8Array, origin?: string }
  | { type: typeof ACK, cid: CID, holder: string }
  | { type: typeof DONE, cid: CID }
  | { type: typeof RANGE_WANT, cid: CID, first: number, end: number }
  /** `bytes` and `proof` undefined: the block is not held (or the range is not within it). */
  | { type: typeof RANGE, cid: CID, first: number, end: number, bytes?: Uint8Array, proof?: Uint8Array[] }

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder('utf-8', { fatal: true })

// --- encoding -------------------------------------------------------------------------------

/** Byte strings up to this long (CIDs, proof hashes, peer ids) are copied into the frame's head, not kept as parts of their own. */
const INLINE_BYTES = 128

/**
 * A frame being written: the small fields, one after another, in one buffer (the head), with room
 * for the length prefix before them; a large byte string (a block, leaves) is a part of its own,
 * not copied. A RANGE frame is so two parts (prefix, header and proof hashes; the leaves), not
 * eleven: each part is work again for the muxer and the transport below (Uint8ArrayList walks,
 * views, an encryption's gather).
 */
class Writer {
  readonly parts: Uint8Array[] = []
  private buf: Uint8Array = Buffer.allocUnsafe(256)
  private pos = MAX_LENGTH_PREFIX_BYTES
  /** Where the current head starts in `buf` (the first's after the room for the prefix). */
  private start = MAX_LENGTH_PREFIX_BYTES
  /** Bytes of the body in `parts`. */
  private size = 0
  /** The first head (with the room for the prefix before it): parts[0] once flushed. */
  private first?: Uint8Array

  byte (b: number): void { this.room(1); this.buf[this.pos++] = b }
  uvarint (n: number): void {
    this.room(10)
    while (n >= 0x80) { this.buf[this.pos++] = (n & 0x7f) | 0x80; n = Math.floor(n / 128) }
    this.buf[this.pos++] = n
  }

  bytes (b: Uint8Array): void { this.uvarint(b.byteLength); this.raw(b) }
  raw (b: Uint8Array): void {
    if (b.byteLength <= INLINE_BYTES) {
      this.room(b.byteLength)
      this.buf.set(b, this.pos)
      this.pos += b.byteLength
      return
    }
    this.flush()
    this.parts.push(b)
    this.size += b.byteLength
  }

  /** The frame: the body written so far behind its length prefix. RangeError over MAX_MESSAGE_BYTES. */
  frame (): Uint8ArrayList {
    this.flush()
    if (this.size > MAX_MESSAGE_BYTES) throw new RangeError(`message of ${this.size} bytes is over the limit of ${MAX_MESSAGE_BYTES}`)
    // the prefix right before the first head, in the room left for it
    let prefixBytes = 1
    for (let n = this.size; n >= 0x80; n = Math.floor(n / 128)) prefixBytes++
    const first = this.first as Uint8Array
    let at = MAX_LENGTH_PREFIX_BYTES - prefixBytes
    for (let n = this.size; ; n = Math.floor(n / 128)) {
      if (n < 0x80) { first[at] = n; break }
      first[at++] = (n & 0x7f) | 0x80
    }
    this.parts[0] = first.subarray(MAX_LENGTH_PREFIX_BYTES - prefixBytes)
    return new Uint8ArrayList(...this.parts)
  }

  private flush (): void {
    if (this.first === undefined) {
      // the first head, even empty: it holds the prefix
      this.first = this.buf.subarray(0, this.pos)
      this.parts.push(this.first)
      this.size += this.pos - MAX_LENGTH_PREFIX_BYTES
    } else if (this.pos > this.start) {
      this.parts.push(this.buf.subarray(this.start, this.pos))
      this.size += this.pos - this.start
    } else return
    this.start = this.pos
  }

  private room (n: number): void {
    if (this.pos + n <= this.buf.byteLength) return
    // a new buffer for the rest of the head; what was written stays where it is (the first head
    // keeps its room for the prefix): the head so far becomes a part of its own
    this.flush()
    this.buf = Buffer.allocUnsafe(Math.max(2 * this.buf.byteLength, 2 * n))
    this.pos = 0
    this.start = 0
  }
}

/** Encode one message as a frame (length prefix included), without copying block bytes. */
export function encode (msg: Message): Uint8ArrayList {
  const w = new Writer()
  w.byte(msg.type === PUSH && msg.origin !== undefined ? PUSH_FROM : msg.type)
  switch (msg.type) {
    case WANT:
      w.byte((msg.haveOnly ? 1 : 0) | (msg.background === true ? 2 : 0))
      cidList(w, msg.cids)
      break
    case HAVE: case DONT_HAVE: case CANCEL:
      cidList(w, msg.cids)
      break
    case BLOCK:
      w.bytes(msg.cid.bytes)
      blockBytes(msg.bytes)
      w.raw(msg.bytes)
      break
    case PUSH:
      w.bytes(msg.cid.bytes)
      if (msg.origin !== undefined) w.bytes(peerBytes(msg.origin))
      if (msg.hops.length > MAX_HOPS) throw new RangeError(`a push plan has at most ${MAX_HOPS} hops`)
      w.uvarint(msg.hops.length)
      for (const hop of msg.hops) {
        w.bytes(peerBytes(hop.peer))
        w.uvarint(hop.via + 1)
      }
      blockBytes(msg.bytes)
      w.raw(msg.bytes)
      break
    case ACK:
      w.bytes(msg.cid.bytes)
      w.bytes(peerBytes(msg.holder))
      break
    case DONE:
      w.bytes(msg.cid.bytes)
      break
    case RANGE_WANT:
      w.bytes(msg.cid.bytes)
      leafRange(w, msg.first, msg.end)
      break
    case RANGE:
      w.bytes(msg.cid.bytes)
      leafRange(w, msg.first, msg.end)
      if (msg.bytes === undefined || msg.proof === undefined) {
        w.byte(1)
        break
      }
      w.byte(0)
      if (msg.proof.length > MAX_PROOF_HASHES) throw new RangeError(`a proof has at most ${MAX_PROOF_HASHES} hashes`)
      w.uvarint(msg.proof.length)
      for (const h of msg.proof) {
        if (h.byteLength !== PROOF_HASH_BYTES) throw new RangeError(`a proof hash is ${PROOF_HASH_BYTES} bytes`)
        w.raw(h)
      }
      blockBytes(msg.bytes)
      w.raw(msg.bytes)
      break
  }
  return w.frame()
}

function cidList (w: Writer, cids: CID[]): void {
  if (cids.length > MAX_CIDS_PER_MESSAGE) throw new RangeError(`a message carries at most ${MAX_CIDS_PER_MESSAGE} CIDs`)
  w.uvarint(cids.length)
  for (const cid of cids) w.bytes(cid.bytes)
}

function leafRange (w: Writer, first: number, end: number): void {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(end) || first < 0 || end <= first || end - first > MAX_RANGE_LEAVES || end > MAX_LEAF_INDEX) {
    throw new RangeError(`leaf range [${first}, ${end}) must be 1..${MAX_RANGE_LEAVES} leaves below ${MAX_LEAF_INDEX}`)
  }
  w.uvarint(first)
  w.uvarint(end)
}

function blockBytes (b: Uint8Array): void {
  if (b.byteLength > MAX_BLOCK_BYTES) throw new RangeError(`block of ${b.byteLength} bytes is over the limit of ${MAX_BLOCK_BYTES}`)
}

function peerBytes (peer: string): Uint8Array {
  const b = utf8.encode(peer)
  if (b.byteLength === 0 || b.byteLength > MAX_PEER_ID_BYTES) throw new RangeError(`peer id must be 1..${MAX_PEER_ID_BYTES} bytes`)
  return b
}

// --- decoding -------------------------------------------------------------------------------

class Reader {
  private pos = 0
  private readonly buf: Uint8Array
  constructor (buf: Uint8Array) { this.buf = buf }
  get rest (): number { return this.buf.byteLength - this.pos }
  byte (): number {
    if (this.pos >= this.buf.byteLength) throw new ProtocolError('truncated message')
    return this.buf[this.pos++]
  }

  uvarint (max: number): number {
    let n = 0
    for (let shift = 0; shift < 28; shift += 7) {
      const b = this.byte()
      n += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) {
        if (n > max) throw new ProtocolError(`value ${n} is over the limit of ${max}`)
        return n
      }
    }
    throw new ProtocolError('varint too long')
  }

  bytes (max: number): Uint8Array {
    const len = this.uvarint(max)
    if (len > this.rest) throw new ProtocolError('truncated message')
    const out = this.buf.subarray(this.pos, this.pos + len)
    this.pos += len
    return out
  }

  raw (len: number): Uint8Array {
    if (len > this.rest) throw new ProtocolError('truncated message')
    const out = this.buf.subarray(this.pos, this.pos + len)
    this.pos += len
    return out
  }

  tail (): Uint8Array {
    const out = this.buf.subarray(this.pos)
    this.pos = this.buf.byteLength
    return out
  }

  end (): void {
    if (this.rest !== 0) throw new ProtocolError(`${this.rest} unexpected bytes after the message`)
  }
}

function readCid (r: Reader): CID {
  const bytes = r.bytes(MAX_CID_BYTES)
  let cid: CID
  try {
    cid = CID.decode(bytes)
  } catch (err) {
    throw new ProtocolError(`malformed CID: ${(err as Error).message}`)
  }
  try {
    checkCid(cid)
  } catch (err) {
    throw new ProtocolError((err as Error).message)
  }
  return cid
}

function readCids (r: Reader): CID[] {
  const n = r.uvarint(MAX_CIDS_PER_MESSAGE)
  const cids: CID[] = []
  for (let i = 0; i < n; i++) cids.push(readCid(r))
  return cids
}

function readPeer (r: Reader): string {
  const b = r.bytes(MAX_PEER_ID_BYTES)
  if (b.byteLength === 0) throw new ProtocolError('empty peer id')
  try {
    return fromUtf8.decode(b)
  } catch {
    throw new ProtocolError('peer id is not utf-8')
  }
}

function readLeafRange (r: Reader): { first: number, end: number } {
  const first = r.uvarint(MAX_LEAF_INDEX)
  const end = r.uvarint(MAX_LEAF_INDEX)
  if (end <= first || end - first > MAX_RANGE_LEAVES) throw new ProtocolError(`leaf range [${first}, ${end}) is empty or over ${MAX_RANGE_LEAVES} leaves`)
  return { first, end }
}

function readBlock (r: Reader): Uint8Array {
  const bytes = r.tail()
  if (bytes.byteLength > MAX_BLOCK_BYTES) throw new ProtocolError(`block of ${bytes.byteLength} bytes is over the limit of ${MAX_BLOCK_BYTES}`)
  return bytes
}

/** Decode one message body (without its length prefix). Throws ProtocolError on any defect. */
export function decode (body: Uint8Array): Message {
  if (body.byteLength > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(body.byteLength, MAX_MESSAGE_BYTES)
  const r = new Reader(body)
  const type = r.byte()
  let msg: Message
  switch (type) {
    case WANT: {
      const flags = r.byte()
      if ((flags & ~3) !== 0) throw new ProtocolError(`unknown WANT flags ${flags}`)
      msg = { type, haveOnly: (flags & 1) === 1, cids: readCids(r) }
      if ((flags & 2) === 2) msg.background = true
      break
    }
    case HAVE: case DONT_HAVE: case CANCEL:
      msg = { type, cids: readCids(r) }
      break
    case BLOCK: {
      const cid = readCid(r)
      msg = { type, cid, bytes: readBlock(r) }
      break
    }
    case PUSH: case PUSH_FROM: {
      const cid = readCid(r)
      const origin = type === PUSH_FROM ? readPeer(r) : undefined
      const n = r.uvarint(MAX_HOPS)
      const hops: Hop[] = []
      for (let i = 0; i < n; i++) {
        const peer = readPeer(r)
        const via = r.uvarint(MAX_HOPS) - 1
        if (via >= i) throw new ProtocolError('a push plan hop must come after the hop that forwards to it')
        hops.push({ peer, via })
      }
      msg = { type: PUSH, cid, hops, bytes: readBlock(r) }
      if (origin !== undefined) msg.origin = origin
      break
    }
    case ACK: {
      const cid = readCid(r)
      msg = { type, cid, holder: readPeer(r) }
      break
    }
    case DONE:
      msg = { type, cid: readCid(r) }
      break
    case RANGE_WANT: {
      const cid = readCid(r)
      msg = { type, cid, ...readLeafRange(r) }
      break
    }
    case RANGE: {
      const cid = readCid(r)
      const range = readLeafRange(r)
      const status = r.byte()
      if (status === 1) {
        msg = { type, cid, ...range }
        break
      }
      if (status !== 0) throw new ProtocolError(`unknown RANGE status ${status}`)
      const n = r.uvarint(MAX_PROOF_HASHES)
      const proof: Uint8Array[] = []
      for (let i = 0; i < n; i++) proof.push(r.raw(PROOF_HASH_BYTES))
      msg = { type, cid, ...range, proof, bytes: readBlock(r) }
      break
    }
    default:
      throw new ProtocolError(`unknown message type ${type}`)
  }
  r.end()
  return msg
}

/**
 * `bytes` as a plain Uint8Array (a view of the same memory, no copy) when it is a subclass (a
 * node Buffer). A frame lying in one received piece is that piece's view, and a piece read from a
 * socket, or sealed by lean-transport.ts into one buffer and handed over as it is by the memory
 * transport, is a Buffer: its blocks then reached callers as Buffers, which compare unequal to
 * Uint8Arrays under strict deep equality, and whose slice() shares memory where a Uint8Array's
 * copies (13 swarm tests failed so once lean hosts had sealed into one buffer, read34).
 */
function plain (bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Bytes of a BLOCK's type and CID the decoder reads ahead to find its landing (LAND_MIN_BYTES). */
const BLOCK_HEAD_BYTES = 1 + 2 + MAX_CID_BYTES
/**
 * A BLOCK frame from this many bytes on, arriving in pieces, may land in memory its asker gave
 * (FrameDecoder's `land`): a fragment of a chunk read (256 KiB) is copied once, from the
 * received pieces into the chunk, not joined into a frame first and then copied into the chunk.
 */
export const LAND_MIN_BYTES = 64 * 1024

/**
 * Where a BLOCK's bytes are written as they arrive: `bytes` (exactly the block's length), then
 * `landed()` once every byte is there. The block is verified by the asker's client afterwards
 * like any other (the bytes reach no one before); a landing is given out for one frame only.
 */
export interface Landing { bytes: Uint8Array, landed: () => void }

/** A frame the decoder split off: its body, or a BLOCK already decoded into its landing. */
export type Frame = Uint8Array | { msg: Message & { type: typeof BLOCK }, length: number }

/**
 * The type and CID at the start of a BLOCK body (`head`: its first bytes, maybe fewer than the
 * body), and how many bytes they take; undefined for any other message or a head too short.
 */
export function blockHead (head: Uint8Array): { cid: CID, at: number } | undefined {
  if (head.byteLength === 0 || head[0] !== BLOCK) return undefined
  const r = new Reader(head)
  r.byte()
  let cid: CID
  try {
    cid = readCid(r)
  } catch {
    // a head cut short (or a malformed CID, which decode() reports on the whole frame): no landing
    return undefined
  }
  return { cid, at: head.byteLength - r.rest }
}

/**
 * Splits a byte stream into frame bodies. Holds at most one frame (MAX_MESSAGE_BYTES plus the
 * prefix) plus the bytes of one incoming chunk; a length over the bound throws at once, before
 * any of the frame is buffered. With `land`, a BLOCK frame of LAND_MIN_BYTES or more that is not
 * in one received piece is written, piece by piece as it arrives, into the memory `land` gives for its CID
 * (when it gives any), and comes out decoded ({ msg, length }): no frame buffer is made for it.
 * With `join`, any other frame of LAND_MIN_BYTES or more that is not in one received piece is
 * joined into the memory `join(length)` gives (fresh memory, the frame's alone from then on:
 * a server's pushed blocks, whose pages the host's allocator can fault in at once), not into a
 * fresh buffer of Uint8ArrayList's (Buffer.concat: a page fault per 4 KiB as the copy goes).
 */
export class FrameDecoder {
  private readonly buf = new Uint8ArrayList()
  private want = -1
  private readonly land?: (cid: CID, bytes: number) => Landing | undefined
  private readonly join?: (length: number) => Uint8Array
  /** The BLOCK landing now: its message (bytes: the landing's), the landing, bytes written. */
  private landing?: { msg: Message & { type: typeof BLOCK }, to: Landing, at: number, length: number }

  constructor (opts: { land?: (cid: CID, bytes: number) => Landing | undefined, join?: (length: number) => Uint8Array } = {}) {
    this.land = opts.land
    this.join = opts.join
  }

  /** Add received bytes; returns the complete frame bodies now available (a decoder without `land`). */
  push (chunk: Uint8Array | Uint8ArrayList): Uint8Array[] {
    if (this.land !== undefined) throw new TypeError('a FrameDecoder with land gives frames(), not push()')
    return this.frames(chunk) as Uint8Array[]
  }

  /** Add received bytes; returns the complete frames now available (landed BLOCKs decoded). */
  frames (chunk: Uint8Array | Uint8ArrayList): Frame[] {
    this.buf.append(chunk)
    const out: Frame[] = []
    for (;;) {
      if (this.landing !== undefined) {
        const l = this.landing
        const n = Math.min(this.buf.byteLength, l.to.bytes.byteLength - l.at)
        for (const piece of this.buf.sublist(0, n)) {
          l.to.bytes.set(piece, l.at)
          l.at += piece.byteLength
        }
        this.buf.consume(n)
        if (l.at < l.to.bytes.byteLength) break
        this.landing = undefined
        l.to.landed()
        out.push({ msg: l.msg, length: l.length })
        continue
      }
      if (this.want < 0) {
        const len = this.readLength()
        if (len < 0) break
        this.want = len
        if (this.startLanding(len)) continue
      }
      if (this.buf.byteLength < this.want) break
      out.push(this.frame(this.want))
      this.buf.consume(this.want)
      this.want = -1
    }
    return out
  }

  /** The first `length` bytes held, a plain Uint8Array: a view of one piece, else joined (see `join`). */
  private frame (length: number): Uint8Array {
    const join = this.join
    if (join === undefined || length < LAND_MIN_BYTES) return plain(this.buf.subarray(0, length))
    for (const first of this.buf) {
      if (first.byteLength >= length) return plain(first.subarray(0, length))
      break
    }
    const out = join(length)
    if (out.byteLength !== length) throw new TypeError(`join(${length}) gave ${out.byteLength} bytes`)
    let at = 0
    for (const piece of this.buf.sublist(0, length)) {
      out.set(piece, at)
      at += piece.byteLength
    }
    return plain(out)
  }

  /** Whether the frame of `length` bytes starting now lands (see `land`); its head is consumed then. */
  private startLanding (length: number): boolean {
    if (this.land === undefined || length < LAND_MIN_BYTES) return false
    // a frame here whole in one received piece is a view of it (no copy): it need not land
    for (const first of this.buf) {
      if (first.byteLength >= length) return false
      break
    }
    const head = blockHead(this.buf.subarray(0, Math.min(this.buf.byteLength, BLOCK_HEAD_BYTES)))
    if (head === undefined || length - head.at > MAX_BLOCK_BYTES) return false
    const to = this.land(head.cid, length - head.at)
    if (to === undefined || to.bytes.byteLength !== length - head.at) return false
    this.buf.consume(head.at)
    this.want = -1
    this.landing = { msg: { type: BLOCK, cid: head.cid, bytes: to.bytes }, to, at: 0, length }
    return true
  }

  /** Bytes of a partial frame held. */
  get buffered (): number { return this.buf.byteLength }

  private readLength (): number {
    let n = 0
    for (let i = 0; i < MAX_LENGTH_PREFIX_BYTES; i++) {
      if (i >= this.buf.byteLength) return -1
      const b = this.buf.get(i)
      n += (b & 0x7f) * 2 ** (7 * i)
      if ((b & 0x80) === 0) {
        if (n > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(n, MAX_MESSAGE_BYTES)
        if (n === 0) throw new ProtocolError('empty frame')
        this.buf.consume(i + 1)
        return n
      }
    }
    throw new MessageTooLargeError(2 ** 28, MAX_MESSAGE_BYTES)
  }
}
