// A fast path for decoding op blocks (dag-cbor), on the path of every op received and replayed.
// @ipld/dag-cbor's decoder makes a token object per item and checks options item by item;
// op blocks are small maps of short strings, ints, byte strings and CIDs, which this decoder
// reads directly. It only ever accepts a subset of what dag-cbor accepts, and gives the same
// value for it (byte strings are views into the block where dag-cbor copies them; an op CID is
// built as cidOf builds one, any other by the same CID.decode): canonical items only (shortest
// argument encodings, definite lengths, text map keys in strictly increasing canonical order,
// so no duplicates), tag 42 only, false/true/null only, and nothing after the item. Anything else
// (floats, negative ints, undefined, other tags or simple values, a key `__proto__`, truncation,
// nesting past MAX_DEPTH, a CID that does not decode) is handed to dag-cbor itself, which
// decodes it or throws its own error: so blocks decode exactly as they did with dag-cbor alone.
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { Digest } from 'multiformats/hashes/digest'

/** Deepest nesting the fast path reads (op blocks are 4 deep at most). */
const MAX_DEPTH = 16

const DAG_CBOR = 0x71
const SHA2_256 = 0x12
const textDecoder = new TextDecoder()

/** Thrown inside the fast path: the block goes to dag-cbor. */
const BAIL = new Error('not a block the fast path reads')

/**
 * Buffer's latin1 reader, on any Uint8Array (the block is not wrapped in a Buffer per op): one
 * flat string, where a string grown char by char is a rope (and op ids key maps).
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (this: Uint8Array, start: number, end: number) => string }).latin1Slice

/** Bytes `start` to `end` of `bytes` as one flat string, a char per byte. */
export function latin1 (bytes: Uint8Array, start: number, end: number): string {
  return latin1Slice.call(bytes, start, end)
}

/**
 * Bytes [s, end) of ASCII as a string: up to 8 by one String.fromCharCode() of its chars (a flat
 * string; one grown char by char was a new string per char), longer ones by latin1().
 */
export function asciiText (d: Uint8Array, s: number, end: number): string {
  switch (end - s) {
    case 0: return ''
    case 1: return String.fromCharCode(d[s])
    case 2: return String.fromCharCode(d[s], d[s + 1])
    case 3: return String.fromCharCode(d[s], d[s + 1], d[s + 2])
    case 4: return String.fromCharCode(d[s], d[s + 1], d[s + 2], d[s + 3])
    case 5: return String.fromCharCode(d[s], d[s + 1], d[s + 2], d[s + 3], d[s + 4])
    case 6: return String.fromCharCode(d[s], d[s + 1], d[s + 2], d[s + 3], d[s + 4], d[s + 5])
    case 7: return String.fromCharCode(d[s], d[s + 1], d[s + 2], d[s + 3], d[s + 4], d[s + 5], d[s + 6])
    case 8: return String.fromCharCode(d[s], d[s + 1], d[s + 2], d[s + 3], d[s + 4], d[s + 5], d[s + 6], d[s + 7])
    default: return latin1Slice.call(d, s, end)
  }
}

/** The block being read (a plain Uint8Array view, as cborg reads it), and where. */
const EMPTY = new Uint8Array(0)
let data: Uint8Array = EMPTY
let pos = 0

/** Decode a dag-cbor block: the same value (or error) as dagCbor.decode(bytes). */
export function decodeBlock (bytes: Uint8Array): unknown {
  const fast = decodeFast(bytes)
  return fast !== undefined ? fast.value : dagCbor.decode(bytes)
}

/**
 * Decode an op block (op.ts): decodeBlock(), except that when the fast path reads it, the op
 * CIDs (CIDv1, dag-cbor, sha2-256) of its top-level `parents` list are their id strings
 * (idOfBytes), not CID objects. An op keeps its parents by id: a CID object is five objects
 * (the CID, its Digest, three views), made for every parent of every op received only to be
 * turned into its id and dropped. A block with any other `parents` (another CID, not a list)
 * or one the fast path leaves to dag-cbor decodes as decodeBlock() gives it: CIDs there.
 * `fast`: the fast path read it (a `parents` list is then ids only; else its items are what
 * dag-cbor gives, strings included, which are no ids: the caller checks them as CIDs).
 * `exact`: the fast path read it and every string in it is ASCII, so the value (parents as
 * CIDs) encodes to these very bytes (op.ts reads the signed bytes out of the block then).
 */
export function decodeOpBlock (bytes: Uint8Array): { value: unknown, fast: boolean, exact: boolean } {
  parentsAsIds = true
  inexact = false
  try {
    const fast = decodeFast(bytes)
    if (fast !== undefined) return { value: fast.value, fast: true, exact: !inexact }
  } finally {
    parentsAsIds = false
  }
  return { value: dagCbor.decode(bytes), fast: false, exact: false }
}

/** decodeOpBlock() is reading: a top-level `parents` list of op CIDs is read as ids. */
let parentsAsIds = false
/**
 * A string of the block being read was not ASCII. The fast path reads only canonical items, so
 * the value of a block it reads encodes to the block's very bytes again, except where a string
 * is read through the TextDecoder (as dag-cbor reads it): bytes that are not UTF-8 come back as
 * U+FFFD, a leading byte order mark is dropped. decodeOpBlock()'s `exact` says none was.
 */
let inexact = false

/** The fast path alone: undefined when it leaves the block to dag-cbor. */
export function decodeFast (bytes: Uint8Array): { value: unknown } | undefined {
  if (bytes.constructor !== Uint8Array && !Buffer.isBuffer(bytes)) return undefined
  data = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  pos = 0
  try {
    const value = item(0)
    return pos === data.length ? { value } : undefined
  } catch (err) {
    if (err === BAIL) return undefined
    throw err
  } finally {
    data = EMPTY
  }
}

/**
 * The top-level `parents` of an op block, read as ids (decodeOpBlock): a list of op CIDs, each
 * as its id string. Anything else in its place is read as any item (so the op's checks refuse
 * it as they would the CIDs dag-cbor gives): the value is then not all strings.
 */
function parentIdList (depth: number): unknown {
  const start = pos
  const b = byte()
  if (b >>> 5 !== 4) {
    pos = start
    return item(depth)
  }
  const n = length(b & 31)
  const out: unknown[] = new Array(n)
  for (let i = 0; i < n; i++) {
    // tag 42, a byte string of 37 bytes (0x58 0x25), 0x00, then the op CID's 36 bytes
    const at = pos
    if (at + 41 <= data.length && data[at] === 0xd8 && data[at + 1] === 42 && data[at + 2] === 0x58 && data[at + 3] === 37 && data[at + 4] === 0 &&
        data[at + 5] === 1 && data[at + 6] === DAG_CBOR && data[at + 7] === SHA2_256 && data[at + 8] === 32) {
      out[i] = idOfBytes(data, at + 5, at + 41)
      pos = at + 41
    } else {
      // not an op CID: the whole block goes to dag-cbor (decodeOpBlock), which gives CIDs
      throw BAIL
    }
  }
  return out
}

function byte (): number {
  if (pos >= data.length) throw BAIL
  return data[pos++]
}

/** An item's argument, in its shortest encoding only; bigint past the safe range (uints only). */
function argument (minor: number, big: boolean): number | bigint {
  if (minor < 24) return minor
  const n = minor === 24 ? 1 : minor === 25 ? 2 : minor === 26 ? 4 : minor === 27 ? 8 : 0
  if (n === 0 || pos + n > data.length) throw BAIL
  const d = data
  const p = pos
  pos += n
  if (n === 1) {
    if (d[p] < 24) throw BAIL
    return d[p]
  }
  if (n === 2) {
    const v = (d[p] << 8) | d[p + 1]
    if (v < 256) throw BAIL
    return v
  }
  if (n === 4) {
    const v = d[p] * 16777216 + (d[p + 1] << 16) + (d[p + 2] << 8) + d[p + 3]
    if (v < 65536) throw BAIL
    return v
  }
  const hi = d[p] * 16777216 + (d[p + 1] << 16) + (d[p + 2] << 8) + d[p + 3]
  const lo = d[p + 4] * 16777216 + (d[p + 5] << 16) + (d[p + 6] << 8) + d[p + 7]
  if (hi === 0) throw BAIL // fits in 4 bytes: not the shortest encoding
  if (hi < 0x200000) return hi * 4294967296 + lo // at most 2^53 - 1: a number, as cborg gives
  if (!big) throw BAIL
  return (BigInt(hi) << 32n) + BigInt(lo)
}

function length (minor: number): number {
  const n = argument(minor, false) as number
  if (pos + n > data.length && n > 0) {
    // a length past the block's end: truncated (maps and arrays hold at least a byte per item)
    throw BAIL
  }
  return n
}

function item (depth: number): unknown {
  if (depth > MAX_DEPTH) throw BAIL
  const b = byte()
  const minor = b & 31
  switch (b >>> 5) {
    case 0: return argument(minor, true)
    case 2: {
      // a view into the block, where cborg copies: the block stays with the op anyway, and
      // nothing writes into op fields (an array buffer per byte string was most of the cost)
      const n = length(minor)
      if (pos + n > data.length) throw BAIL
      const out = data.subarray(pos, pos + n)
      pos += n
      return out
    }
    case 3: return string(length(minor))
    case 4: {
      const n = length(minor)
      const out: unknown[] = new Array(n)
      for (let i = 0; i < n; i++) out[i] = item(depth + 1)
      return out
    }
    case 5: {
      const n = length(minor)
      const out: Record<string, unknown> = {}
      let prevStart = 0
      let prevLength = -1
      for (let i = 0; i < n; i++) {
        const k = byte()
        if (k >>> 5 !== 3) throw BAIL
        const kl = length(k & 31)
        const ks = pos
        // canonical order (shorter first, then bytewise), strictly: no key twice
        if (prevLength >= 0 && !keyAfter(prevStart, prevLength, ks, kl)) throw BAIL
        const key = keyString(kl)
        if (key === '__proto__') throw BAIL
        prevStart = ks
        prevLength = kl
        out[key] = depth === 0 && parentsAsIds && key === 'parents' ? parentIdList(depth + 1) : item(depth + 1)
      }
      return out
    }
    case 6: {
      // tag 42 (its shortest form: one byte after the head), then bytes: 0x00 and a CID
      if (b !== 0xd8 || byte() !== 42) throw BAIL
      // the byte string read here, not by item(): the CID's bytes are cut from the block
      // directly (a view of the byte string, then one past its 0x00, was a view too many)
      const h = byte()
      if (h >>> 5 !== 2) throw BAIL
      const n = length(h & 31)
      if (n === 0 || pos + n > data.length || data[pos] !== 0) throw BAIL
      pos += n
      return cid(data.subarray(pos - n + 1, pos))
    }
    case 7:
      if (b === 0xf4) return false
      if (b === 0xf5) return true
      if (b === 0xf6) return null
      throw BAIL
    default:
      throw BAIL
  }
}

/** Map keys known (key hash -> its strings), bounded: op blocks use a score of keys, ever. */
const keys = new Map<number, string[]>()
const MAX_KEYS = 256
/** Longest key looked up in `keys`. */
const MAX_KEY_BYTES = 12

/**
 * A map key of `n` bytes: a known key is the string it was the first time. A string built from
 * bytes is a new string, and storing a property under a new string makes V8 look it up in its
 * table of property names (hashing it) before it can find the property: op maps have their few
 * keys stored once per op, and that lookup was most of decoding one. Unknown keys, long ones and
 * non-ASCII ones are read as any string (and kept while `keys` has room).
 */
function keyString (n: number): string {
  if (n > MAX_KEY_BYTES || pos + n > data.length) return string(n)
  const start = pos
  let h = n
  for (let i = start; i < start + n; i++) h = (Math.imul(h, 31) + data[i]) | 0
  const known = keys.get(h)
  if (known !== undefined) {
    for (const k of known) {
      let same = true
      for (let i = 0; i < n && same; i++) same = k.charCodeAt(i) === data[start + i]
      if (same && k.length === n) {
        pos += n
        return k
      }
    }
  }
  const fresh = string(n)
  if (keys.size >= MAX_KEYS || fresh.length !== n) return fresh // (non-ASCII: chars are not bytes)
  // the property name V8 keeps (the string itself would be looked up again on every use)
  const k = Object.keys({ [fresh]: 0 })[0]
  if (known === undefined) keys.set(h, [k])
  else known.push(k)
  return k
}

/** `n` bytes of UTF-8 as cborg reads them (ASCII as is, the rest through a TextDecoder). */
function string (n: number): string {
  if (pos + n > data.length) throw BAIL
  const start = pos
  pos += n
  if (n < 13) {
    // short (names, op types, kinds): made by one String.fromCharCode() of its chars, where one
    // grown char by char (flat below 13 characters) was a new string per char
    const d = data
    for (let i = start; i < pos; i++) {
      if (d[i] >= 0x80) {
        inexact = true
        return textDecoder.decode(d.subarray(start, pos))
      }
    }
    return asciiText(d, start, pos)
  }
  for (let i = start; i < pos; i++) {
    if (data[i] >= 0x80) {
      inexact = true
      return textDecoder.decode(data.subarray(start, pos))
    }
  }
  return latin1Slice.call(data, start, pos)
}

function keyAfter (aStart: number, aLength: number, bStart: number, bLength: number): boolean {
  if (aLength !== bLength) return aLength < bLength
  if (bStart + bLength > data.length) throw BAIL
  for (let i = 0; i < aLength; i++) {
    const x = data[aStart + i]
    const y = data[bStart + i]
    if (x !== y) return x < y
  }
  return false
}

/** cid() for opdecode.ts: the CID whose bytes are `bytes` (built as the fast path builds it), or undefined when they hold none. */
export function cidOfBytes (bytes: Uint8Array): CID | undefined {
  try {
    return cid(bytes)
  } catch (err) {
    if (err === BAIL) return undefined
    throw err
  }
}

/** A CID: an op's (CIDv1, dag-cbor, sha2-256) built as cidOf does, any other by CID.decode. */
function cid (bytes: Uint8Array): CID {
  if (bytes.length === 36 && bytes[0] === 1 && bytes[1] === DAG_CBOR && bytes[2] === SHA2_256 && bytes[3] === 32) {
    return new CID(1, DAG_CBOR, new Digest(SHA2_256, 32, bytes.subarray(4), bytes.subarray(2)), bytes) as CID
  }
  try {
    return CID.decode(bytes)
  } catch {
    // not a CID: dag-cbor says so in its own words
    throw BAIL
  }
}

const BASE32 = new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz234567')
/** Where idOfBytes() writes an id's characters before reading them as one string. */
let idScratch = new Uint8Array(128)

/**
 * The id of the CIDv1 whose bytes are `bytes[start, end)`: its string form (multibase base32,
 * 'b' prefix), as CID.toString() gives it. The characters are put in a buffer and read as one
 * string: a string grown by `+=` is a rope of one piece per character, and every Map lookup or
 * comparison keyed by it (the DAG, the pending set) walks the rope.
 */
export function idOfBytes (bytes: Uint8Array, start: number, end: number): string {
  // (idText() may replace idScratch with a larger one: read it after)
  const n = idText(bytes, start, end)
  return latin1(idScratch, 0, n)
}

/**
 * idOfBytes() with an id table (ids.ts): the string `ids` holds for that id when it holds one
 * (an op known or decoded already: the very string the tree's maps are keyed by), else a new one.
 */
export function idOfBytesIn (bytes: Uint8Array, start: number, end: number, ids: IdSource | undefined): string {
  const n = idText(bytes, start, end)
  return ids?.find(idScratch, 0, n) ?? latin1(idScratch, 0, n)
}

/** Each ASCII char's value in BASE32, -1 for chars not in it. */
const BASE32_VALUE = (() => {
  const t = new Int8Array(128).fill(-1)
  for (let i = 0; i < BASE32.length; i++) t[BASE32[i]] = i
  return t
})()

/** A char's value in BASE32, -1 for chars not in it. */
function base32Value (c: number): number {
  return c < 128 ? BASE32_VALUE[c] : -1
}

/**
 * The bytes an id (idOfBytes(): 'b', then base32 without padding) was made of, or undefined when
 * `id` is not of that shape. idOfBytes(bytesOfId(id)) is `id` for every id idOfBytes() makes.
 */
export function bytesOfId (id: string): Uint8Array | undefined {
  const length = id.length
  if (length < 1 || id.charCodeAt(0) !== 0x62) return undefined
  const out = new Uint8Array(Math.floor((length - 1) * 5 / 8))
  return bytesOfIdInto(id, out, 0) < 0 ? undefined : out
}

/**
 * bytesOfId() written into `out` from `at` (room for floor((id.length - 1) * 5 / 8) bytes is
 * the caller's to give): how many bytes, or -1 when `id` is not of that shape (some bytes may
 * be written then). No array made: the tree reads each op's digest back from its id once, for
 * the reconciliation index, which copies it into its own buffer.
 */
export function bytesOfIdInto (id: string, out: Uint8Array, at: number): number {
  const length = id.length
  if (length < 1 || id.charCodeAt(0) !== 0x62) return -1
  let k = at
  let i = 1
  // eight chars are five bytes: whole groups first, without a bit buffer (the tree reads every
  // op's digest back from its id for the reconciliation index: a char at a time, with a bit
  // buffer, cost more than the rest of the op's DAG insert)
  for (; i + 8 <= length; i += 8) {
    const v0 = base32Value(id.charCodeAt(i))
    const v1 = base32Value(id.charCodeAt(i + 1))
    const v2 = base32Value(id.charCodeAt(i + 2))
    const v3 = base32Value(id.charCodeAt(i + 3))
    const v4 = base32Value(id.charCodeAt(i + 4))
    const v5 = base32Value(id.charCodeAt(i + 5))
    const v6 = base32Value(id.charCodeAt(i + 6))
    const v7 = base32Value(id.charCodeAt(i + 7))
    if ((v0 | v1 | v2 | v3 | v4 | v5 | v6 | v7) < 0) return -1
    out[k++] = (v0 << 3) | (v1 >> 2)
    out[k++] = ((v1 & 3) << 6) | (v2 << 1) | (v3 >> 4)
    out[k++] = ((v3 & 15) << 4) | (v4 >> 1)
    out[k++] = ((v4 & 1) << 7) | (v5 << 2) | (v6 >> 3)
    out[k++] = ((v6 & 7) << 5) | v7
  }
  let bits = 0
  let value = 0
  for (; i < length; i++) {
    const v = base32Value(id.charCodeAt(i))
    if (v < 0) return -1
    // (at most 7 bits wait for the next char: 12 bits kept are enough)
    value = ((value << 5) | v) & 0xfff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[k++] = (value >> bits) & 0xff
    }
  }
  // the bits after the last byte are zeros in an id idOfBytes() made
  if ((value & ((1 << bits) - 1)) !== 0) return -1
  return k - at
}

/** Strings by their characters (ids.ts IdTable): the one string kept for an id, if any. */
export interface IdSource {
  /** The string whose chars are the bytes `bytes[start, end)` (ASCII), if held. */
  find: (bytes: Uint8Array, start: number, end: number) => string | undefined
}

/** Writes the id's characters into idScratch; returns how many. */
function idText (bytes: Uint8Array, start: number, end: number): number {
  const length = 1 + Math.ceil((end - start) * 8 / 5)
  if (idScratch.length < length) idScratch = new Uint8Array(length * 2)
  const out = idScratch
  out[0] = 0x62 // 'b'
  const A = BASE32
  let n = 1
  let i = start
  // five bytes are eight characters: whole groups first, without a bit buffer
  for (; i + 5 <= end; i += 5) {
    const b0 = bytes[i]
    const b1 = bytes[i + 1]
    const b2 = bytes[i + 2]
    const b3 = bytes[i + 3]
    const b4 = bytes[i + 4]
    out[n++] = A[b0 >> 3]
    out[n++] = A[((b0 & 7) << 2) | (b1 >> 6)]
    out[n++] = A[(b1 >> 1) & 31]
    out[n++] = A[((b1 & 1) << 4) | (b2 >> 4)]
    out[n++] = A[((b2 & 15) << 1) | (b3 >> 7)]
    out[n++] = A[(b3 >> 2) & 31]
    out[n++] = A[((b3 & 3) << 3) | (b4 >> 5)]
    out[n++] = A[b4 & 31]
  }
  let bits = 0
  let value = 0
  for (; i < end; i++) {
    value = ((value << 8) | bytes[i]) & 0xfff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out[n++] = A[(value >>> bits) & 31]
    }
  }
  if (bits > 0) out[n++] = A[(value << (5 - bits)) & 31]
  return n
}
