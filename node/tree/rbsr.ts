// Range-based set reconciliation of op ids (issue 14 item 2): two hosts learn which ops each
// holds that the other does not, exchanging what differs, not what exists. Pure (no network):
// node/net/sync.ts carries the messages, scripts/sim runs both sides in memory.
//
// The method is Aljoscha Meyer's range-based set reconciliation as the Negentropy protocol (v1,
// github.com/hoytech/negentropy, docs/negentropy-protocol-v1.md) specifies it, and the wire
// format is that spec's:
//  - Items are (timestamp, 32-byte id), sorted by timestamp then id. Here the id is the sha-256
//    digest of the op block (its CID's multihash digest) and the timestamp the wall part of the
//    op's HLC: the ops a host missed while apart, and those both sides made while apart, are
//    the recent ones, so the differences cluster in a few ranges at the end of the order.
//  - A message is a version byte and adjacent ranges covering the whole key space, each an
//    exclusive upper bound and a mode: Skip (nothing to do), Fingerprint (16 bytes: sha-256 of
//    the sum mod 2^256 of the range's ids read little-endian, then the varint count), or IdList
//    (every id the sender holds in the range).
//  - The initiator (client) sends its whole range split in BUCKETS fingerprints. A side that
//    receives a fingerprint unlike its own splits its part of that range into BUCKETS ranges by
//    count, or sends its id list when it holds fewer than 2 * BUCKETS ids there; the responder
//    (server) answers an id list with its own; the client compares id lists to learn `have`
//    (it holds, the server lacks) and `need` (the server holds, it lacks). The client stops
//    when its next message would hold only skips. The server keeps no state between messages.
//  - Messages are bounded (frameLimit): a side whose answer grows past it ends the answer with
//    one fingerprint over the rest of the key space, to be split in the next round.
// Bounds are minimal: a bound between two items of one timestamp carries only as many id
// bytes as tell them apart (the rest read as zeros).
//
// OpSet is the index both sides answer from: items in chunks of at most CHUNK_MAX sorted items,
// each chunk with its count and id sum, and Fenwick trees of the chunk counts and sums, so the
// rank of a bound, the item at a rank and a range's fingerprint cost O(log n) chunk steps plus
// at most CHUNK_MAX / 2 additions inside one chunk. Ops are only ever added.
//
// Why a sum and not a XOR: anyone may make ops (and so choose ids among many tries); a XOR of
// ids is linear, so a crafted set of ids could make two different ranges look alike and hide
// ops from a reconcile. A sum mod 2^256 hashed with the count has no such shortcut known.
import { hash } from 'node:crypto'
import { bytesKey, equalBytes } from '../bytes.ts'

/** Bytes of an id. */
export const RBSR_ID_BYTES = 32
/** The protocol version byte (Negentropy v1). */
export const RBSR_VERSION = 0x61
/** Bytes of a fingerprint. */
export const RBSR_FINGERPRINT_BYTES = 16
/** Ranges a mismatched range is split into. */
export const RBSR_BUCKETS = 16
/** Smallest frame limit: room for a full split and the closing fingerprint. */
export const RBSR_MIN_FRAME_BYTES = 4096
/** Most items per chunk of an OpSet (a chunk past it splits in two). */
const CHUNK_MAX = 512
/** Chunk size of a bulk build (room to grow before splitting). */
const CHUNK_BUILD = 256
const MODE_SKIP = 0
const MODE_FINGERPRINT = 1
const MODE_IDLIST = 2
/** Margin under the frame limit kept for the closing fingerprint. */
const FRAME_MARGIN = 200
const LANES = 8

/** An item of the set: the op's HLC wall time and its 32-byte id. */
export interface RbsrItem { ts: number, id: Uint8Array }

/** A message that does not parse, or breaks a bound. */
export class RbsrError extends Error {
  override readonly name = 'RbsrError'
}

const EMPTY = new Uint8Array(0)

/** (ts, id) order; `b` may be a bound whose id is a prefix (missing bytes read as zeros). */
function compare (aTs: number, aId: Uint8Array, bTs: number, bId: Uint8Array): number {
  if (aTs !== bTs) return aTs < bTs ? -1 : 1
  for (let i = 0; i < RBSR_ID_BYTES; i++) {
    const x = i < aId.length ? aId[i] : 0
    const y = i < bId.length ? bId[i] : 0
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

// --- 256-bit sums in eight little-endian 32-bit lanes ----------------------------------------------

function addId (sum: Uint32Array, at: number, id: Uint8Array, from = 0): void {
  let carry = 0
  for (let j = 0; j < LANES; j++) {
    const k = from + 4 * j
    const v = sum[at + j] + ((id[k] | (id[k + 1] << 8) | (id[k + 2] << 16) | (id[k + 3] << 24)) >>> 0) + carry
    sum[at + j] = v >>> 0
    carry = v > 0xffffffff ? 1 : 0
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
const LANE = 2 ** 32

/**
 * Add the ids of items [first, end) of `ids` (32 bytes each, end to end) to `sum`: each lane
 * summed apart in a double and the carries propagated once at the end (exact up to 2^21 items,
 * past a chunk's CHUNK_MAX), read as 32-bit words where the buffer allows. A fingerprint's bound
 * inside a chunk adds up to half a chunk: per id, eight adds, not eight carried additions of
 * bytes put together (addId), which were most of a 10,000-op reconcile's CPU.
 */
function addIds (sum: Uint32Array, ids: Uint8Array, first: number, end: number): void {
  if (end <= first) return
  let a0 = 0; let a1 = 0; let a2 = 0; let a3 = 0; let a4 = 0; let a5 = 0; let a6 = 0; let a7 = 0
  if (LITTLE_ENDIAN && ids.byteOffset % 4 === 0) {
    const w = new Uint32Array(ids.buffer, ids.byteOffset, end * LANES)
    for (let i = first * LANES; i < end * LANES; i += LANES) {
      a0 += w[i]; a1 += w[i + 1]; a2 += w[i + 2]; a3 += w[i + 3]
      a4 += w[i + 4]; a5 += w[i + 5]; a6 += w[i + 6]; a7 += w[i + 7]
    }
  } else {
    const acc = new Float64Array(LANES)
    for (let i = first; i < end; i++) {
      for (let j = 0; j < LANES; j++) {
        const k = i * RBSR_ID_BYTES + 4 * j
        acc[j] += (ids[k] | (ids[k + 1] << 8) | (ids[k + 2] << 16) | (ids[k + 3] << 24)) >>> 0
      }
    }
    a0 = acc[0]; a1 = acc[1]; a2 = acc[2]; a3 = acc[3]; a4 = acc[4]; a5 = acc[5]; a6 = acc[6]; a7 = acc[7]
  }
  let carry = 0
  const lanes = [a0, a1, a2, a3, a4, a5, a6, a7]
  for (let j = 0; j < LANES; j++) {
    const v = sum[j] + lanes[j] + carry
    const low = v % LANE
    sum[j] = low
    carry = (v - low) / LANE
  }
}

function addSum (sum: Uint32Array, at: number, other: Uint32Array, oat: number): void {
  let carry = 0
  for (let j = 0; j < LANES; j++) {
    const v = sum[at + j] + other[oat + j] + carry
    sum[at + j] = v >>> 0
    carry = v > 0xffffffff ? 1 : 0
  }
}

function subSum (sum: Uint32Array, other: Uint32Array): void {
  let borrow = 0
  for (let j = 0; j < LANES; j++) {
    const v = sum[j] - other[j] - borrow
    sum[j] = v >>> 0
    borrow = v < 0 ? 1 : 0
  }
}

/** Where fingerprintOf() lays out a sum and a count before hashing them. */
const fpInput = new Uint8Array(RBSR_ID_BYTES + 8)

/**
 * The Negentropy fingerprint of a range: sha-256(sum LE || varint(count)), first 16 bytes. The
 * input is laid out in one reused buffer and hashed one-shot (no Hash object and no Writer per
 * fingerprint: a reconciliation of two logs that interleave takes tens of thousands).
 */
function fingerprintOf (sum: Uint32Array, count: number): Uint8Array {
  const bytes = fpInput
  for (let j = 0; j < LANES; j++) {
    const v = sum[j]
    bytes[4 * j] = v & 0xff
    bytes[4 * j + 1] = (v >>> 8) & 0xff
    bytes[4 * j + 2] = (v >>> 16) & 0xff
    bytes[4 * j + 3] = v >>> 24
  }
  // the count as Writer.varint() writes it: base 128, most significant digit first, every digit
  // but the last with its high bit set
  let digits = 1
  for (let c = count; c >= 128; c = Math.floor(c / 128)) digits++
  let c = count
  for (let k = 0; k < digits; k++) {
    bytes[RBSR_ID_BYTES + digits - 1 - k] = (c % 128) | (k > 0 ? 0x80 : 0)
    c = Math.floor(c / 128)
  }
  return new Uint8Array(hash('sha256', bytes.subarray(0, RBSR_ID_BYTES + digits), 'buffer').subarray(0, RBSR_FINGERPRINT_BYTES))
}

// --- the index ----------------------------------------------------------------------------------------

/**
 * Sorted items: `ts[i]` and the id at bytes [32 i, 32 i + 32) of `ids` (which may be longer: room
 * to grow). The ids end to end in one buffer, not a view each: a view weighed about three times
 * the 32 bytes it shows, and the set keeps one item per op the tree holds.
 */
interface Chunk { ts: number[], ids: Uint8Array, sum: Uint32Array }

/** A chunk of `ts.length` items whose ids are the first 32 * ts.length bytes of `ids`. */
function chunkOf (ts: number[], ids: Uint8Array): Chunk {
  const sum = new Uint32Array(LANES)
  addIds(sum, ids, 0, ts.length)
  return { ts, ids, sum }
}

/** Item i's id, a view of the chunk's buffer (ids read out: reconciliation's id lists and bounds). */
function idIn (c: Chunk, i: number): Uint8Array {
  return c.ids.subarray(i * RBSR_ID_BYTES, (i + 1) * RBSR_ID_BYTES)
}

/** compare() of chunk item i and (ts, id), with no view of the item made. */
function compareAt (c: Chunk, i: number, ts: number, id: Uint8Array): number {
  const t = c.ts[i]
  if (t !== ts) return t < ts ? -1 : 1
  const ids = c.ids
  const at = i * RBSR_ID_BYTES
  for (let k = 0; k < RBSR_ID_BYTES; k++) {
    const x = ids[at + k]
    const y = k < id.length ? id[k] : 0
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

/** compare() of packed items a and b (OpSet.addPacked): timestamps `ts[x]`, ids the 32 bytes of `ids` from 32 x. */
function comparePacked (ts: Float64Array, ids: Uint8Array, a: number, b: number): number {
  const x = ts[a]
  const y = ts[b]
  if (x !== y) return x < y ? -1 : 1
  const p = a * RBSR_ID_BYTES
  const q = b * RBSR_ID_BYTES
  for (let k = 0; k < RBSR_ID_BYTES; k++) {
    const u = ids[p + k]
    const v = ids[q + k]
    if (u !== v) return u < v ? -1 : 1
  }
  return 0
}

/** Most bytes of ids a chunk holds: CHUNK_MAX items, and the one that splits it. */
const CHUNK_ID_BYTES = (CHUNK_MAX + 1) * RBSR_ID_BYTES

/** Insert (ts, id) at item `at` of a chunk, its id buffer grown (doubled, at most CHUNK_ID_BYTES) when full. */
function insertAt (c: Chunk, at: number, ts: number, id: Uint8Array): void {
  const n = c.ts.length
  const used = n * RBSR_ID_BYTES
  if (used + RBSR_ID_BYTES > c.ids.length) {
    const more = new Uint8Array(Math.min(CHUNK_ID_BYTES, Math.max(used + RBSR_ID_BYTES, 2 * c.ids.length, 16 * RBSR_ID_BYTES)))
    more.set(c.ids.subarray(0, used))
    c.ids = more
  }
  // (at the end, most often: ops come in about the order of their clocks; splice() makes an array of what it removes)
  if (at === n) c.ts.push(ts)
  else {
    c.ts.splice(at, 0, ts)
    c.ids.copyWithin((at + 1) * RBSR_ID_BYTES, at * RBSR_ID_BYTES, used)
  }
  c.ids.set(id, at * RBSR_ID_BYTES)
}

function checkItem (ts: number, id: Uint8Array): void {
  if (!Number.isSafeInteger(ts) || ts < 0) throw new RangeError(`an item's timestamp must be a safe integer >= 0, got ${String(ts)}`)
  if (!(id instanceof Uint8Array) || id.length !== RBSR_ID_BYTES) throw new RangeError(`an item's id must be ${RBSR_ID_BYTES} bytes`)
}

/** The set of (ts, id) items of one host, answering ranks and fingerprints (see the header). */
export class OpSet {
  private chunks: Chunk[] = []
  private count = 0
  /** Fenwick trees (1-based) over the chunks' counts and sums; rebuilt after a chunk split. */
  private fenCount = new Float64Array(1)
  private fenSum = new Uint32Array(LANES)
  private stale = false

  get size (): number { return this.count }

  /** Add one item; false if it was there already. */
  add (ts: number, id: Uint8Array): boolean {
    checkItem(ts, id)
    if (this.chunks.length === 0) {
      this.chunks.push(chunkOf([ts], id.slice()))
      this.count = 1
      this.stale = true
      return true
    }
    // the first chunk whose last item is >= the new one (or the last chunk)
    let lo = 0
    let hi = this.chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const c = this.chunks[mid]
      if (compareAt(c, c.ts.length - 1, ts, id) < 0) lo = mid + 1
      else hi = mid
    }
    const c = this.chunks[lo]
    const at = lowerIn(c, 0, c.ts.length, ts, id)
    if (at < c.ts.length && compareAt(c, at, ts, id) === 0) return false
    insertAt(c, at, ts, id)
    addId(c.sum, 0, id)
    this.count++
    if (c.ts.length > CHUNK_MAX) {
      const half = c.ts.length >>> 1
      const n = c.ts.length
      this.chunks.splice(lo, 1, chunkOf(c.ts.slice(0, half), c.ids.slice(0, half * RBSR_ID_BYTES)), chunkOf(c.ts.slice(half), c.ids.slice(half * RBSR_ID_BYTES, n * RBSR_ID_BYTES)))
      this.stale = true
    } else if (!this.stale) {
      // the id added to each Fenwick node's sum in place (the same 256-bit sum as adding it to
      // a zero sum first and that sum to the node's: no array per op added)
      for (let i = lo + 1; i <= this.chunks.length; i += i & -i) {
        this.fenCount[i]++
        addId(this.fenSum, i * LANES, id)
      }
    }
    return true
  }

  /** Add many items; a batch as large as the set rebuilds it in one sort. Returns how many were new. */
  addMany (items: Iterable<RbsrItem>): number {
    const list = [...items]
    if (list.length < 1024 || list.length < this.count) {
      let n = 0
      for (const { ts, id } of list) if (this.add(ts, id)) n++
      return n
    }
    for (const { ts, id } of list) checkItem(ts, id)
    const ts = new Float64Array(list.length)
    const ids = new Uint8Array(list.length * RBSR_ID_BYTES)
    for (let i = 0; i < list.length; i++) {
      ts[i] = list[i].ts
      ids.set(list[i].id, i * RBSR_ID_BYTES)
    }
    return this.addPacked(ts, ids)
  }

  /**
   * addMany() of items given packed: item i's timestamp `ts[i]` and its id the 32 bytes of `ids`
   * from 32 i (a tree's open adds every op it holds: an item object and an id array of its own
   * per op, for a moment, weighed ~270 bytes each). Neither array is kept. Returns how many were new.
   */
  addPacked (ts: ArrayLike<number>, ids: Uint8Array): number {
    const n = ts.length
    if (ids.length < n * RBSR_ID_BYTES) throw new RangeError(`${n} items need ${n * RBSR_ID_BYTES} bytes of ids`)
    for (let i = 0; i < n; i++) {
      const t = ts[i]
      if (!Number.isSafeInteger(t) || t < 0) throw new RangeError(`an item's timestamp must be a safe integer >= 0, got ${String(t)}`)
    }
    if (n < 1024 || n < this.count) {
      let added = 0
      for (let i = 0; i < n; i++) if (this.add(ts[i], ids.subarray(i * RBSR_ID_BYTES, (i + 1) * RBSR_ID_BYTES))) added++
      return added
    }
    // the items held and the new ones, packed end to end, then sorted by their numbers
    const before = this.count
    const total = before + n
    const allTs = new Float64Array(total)
    const allIds = new Uint8Array(total * RBSR_ID_BYTES)
    let k = 0
    for (const c of this.chunks) {
      allIds.set(c.ids.subarray(0, c.ts.length * RBSR_ID_BYTES), k * RBSR_ID_BYTES)
      for (let i = 0; i < c.ts.length; i++) allTs[k++] = c.ts[i]
    }
    allTs.set(ts, k)
    allIds.set(ids.subarray(0, n * RBSR_ID_BYTES), k * RBSR_ID_BYTES)
    const order = new Int32Array(total)
    for (let i = 0; i < total; i++) order[i] = i
    order.sort((a, b) => comparePacked(allTs, allIds, a, b))
    // duplicates (equal neighbours in the order) kept once
    const keep: number[] = []
    for (let i = 0; i < total; i++) {
      if (keep.length > 0 && comparePacked(allTs, allIds, keep[keep.length - 1], order[i]) === 0) continue
      keep.push(order[i])
    }
    this.chunks = []
    for (let i = 0; i < keep.length; i += CHUNK_BUILD) {
      const end = Math.min(keep.length, i + CHUNK_BUILD)
      const packed = new Uint8Array((end - i) * RBSR_ID_BYTES)
      const cts: number[] = []
      for (let j = i; j < end; j++) {
        const x = keep[j]
        cts.push(allTs[x])
        packed.set(allIds.subarray(x * RBSR_ID_BYTES, (x + 1) * RBSR_ID_BYTES), (j - i) * RBSR_ID_BYTES)
      }
      this.chunks.push(chunkOf(cts, packed))
    }
    this.count = keep.length
    this.stale = true
    return this.count - before
  }

  has (ts: number, id: Uint8Array): boolean {
    const i = this.lowerBound(ts, id, 0)
    return i < this.count && compare(...this.keyAt(i), ts, id) === 0
  }

  /** The item at rank i (0 <= i < size). Its id is a view into the set, good until the next add/addMany: copy it to keep it. */
  at (i: number): RbsrItem {
    const [c, off] = this.locate(i)
    const ch = this.chunks[c]
    return { ts: ch.ts[off], id: idIn(ch, off) }
  }

  /** The rank of the first item >= (ts, id), searching from rank `from`. */
  lowerBound (ts: number, id: Uint8Array, from: number): number {
    this.fresh()
    let lo = 0
    let hi = this.chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const c = this.chunks[mid]
      if (compareAt(c, c.ts.length - 1, ts, id) < 0) lo = mid + 1
      else hi = mid
    }
    if (lo === this.chunks.length) return Math.max(from, this.count)
    const c = this.chunks[lo]
    return Math.max(from, this.countBefore(lo) + lowerIn(c, 0, c.ts.length, ts, id))
  }

  /** Call fn on the items of ranks [begin, end) in order until it returns false. */
  iterate (begin: number, end: number, fn: (item: RbsrItem, rank: number) => boolean): void {
    if (begin >= end) return
    let [c, off] = this.locate(begin)
    for (let r = begin; r < end; r++) {
      const ch = this.chunks[c]
      if (!fn({ ts: ch.ts[off], id: idIn(ch, off) }, r)) return
      if (++off === ch.ts.length) { c++; off = 0 }
    }
  }

  /** The fingerprint of ranks [begin, end). */
  fingerprint (begin: number, end: number): Uint8Array {
    const sum = this.sumBefore(end)
    subSum(sum, this.sumBefore(begin))
    return fingerprintOf(sum, end - begin)
  }

  /**
   * The fingerprints of the consecutive ranges [at[0], at[1]), [at[1], at[2]), ...: each bound's
   * prefix sum computed once, where fingerprint() of each range computes both of its own.
   */
  fingerprints (at: number[]): Uint8Array[] {
    const out: Uint8Array[] = []
    let before = this.sumBefore(at[0])
    for (let i = 1; i < at.length; i++) {
      const after = this.sumBefore(at[i])
      const sum = after.slice()
      subSum(sum, before)
      out.push(fingerprintOf(sum, at[i] - at[i - 1]))
      before = after
    }
    return out
  }

  private keyAt (i: number): [number, Uint8Array] {
    const { ts, id } = this.at(i)
    return [ts, id]
  }

  private fresh (): void {
    if (!this.stale) return
    const n = this.chunks.length
    this.fenCount = new Float64Array(n + 1)
    this.fenSum = new Uint32Array((n + 1) * LANES)
    for (let i = 1; i <= n; i++) {
      const c = this.chunks[i - 1]
      this.fenCount[i] += c.ts.length
      addSum(this.fenSum, i * LANES, c.sum, 0)
      const parent = i + (i & -i)
      if (parent <= n) {
        this.fenCount[parent] += this.fenCount[i]
        addSum(this.fenSum, parent * LANES, this.fenSum, i * LANES)
      }
    }
    this.stale = false
  }

  /** Items in chunks [0, c). */
  private countBefore (c: number): number {
    let n = 0
    for (let i = c; i > 0; i -= i & -i) n += this.fenCount[i]
    return n
  }

  /** The chunk holding rank i (0 <= i < size) and the offset in it. */
  private locate (i: number): [number, number] {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`rank ${i} out of 0..${this.count - 1}`)
    this.fresh()
    // Fenwick descent: the largest chunk prefix holding <= i items
    let pos = 0
    let rest = i
    let step = 1
    while (step * 2 <= this.chunks.length) step *= 2
    for (; step > 0; step >>>= 1) {
      const next = pos + step
      if (next <= this.chunks.length && this.fenCount[next] <= rest) {
        pos = next
        rest -= this.fenCount[next]
      }
    }
    return [pos, rest]
  }

  /** The sum of the ids of ranks [0, i). */
  private sumBefore (i: number): Uint32Array {
    const sum = new Uint32Array(LANES)
    if (i <= 0) return sum
    this.fresh()
    let c: number
    let off: number
    if (i >= this.count) { c = this.chunks.length; off = 0 } else [c, off] = this.locate(i)
    for (let k = c; k > 0; k -= k & -k) addSum(sum, 0, this.fenSum, k * LANES)
    if (off === 0) return sum
    const ch = this.chunks[c]
    if (off <= ch.ts.length / 2) {
      addIds(sum, ch.ids, 0, off)
    } else {
      // the whole chunk minus its tail: fewer additions
      const tail = new Uint32Array(LANES)
      addIds(tail, ch.ids, off, ch.ts.length)
      addSum(sum, 0, ch.sum, 0)
      subSum(sum, tail)
    }
    return sum
  }
}

function lowerIn (c: Chunk, lo: number, hi: number, ts: number, id: Uint8Array): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareAt(c, mid, ts, id) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

// --- wire ---------------------------------------------------------------------------------------------

class Writer {
  private buf = new Uint8Array(256)
  length = 0

  private room (n: number): void {
    if (this.length + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.length + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.length))
    this.buf = next
  }

  byte (b: number): void { this.room(1); this.buf[this.length++] = b }

  put (bytes: Uint8Array): void { this.room(bytes.length); this.buf.set(bytes, this.length); this.length += bytes.length }

  /** Base-128, most significant digit first, high bit on every byte but the last. */
  varint (n: number): void {
    // its digits counted first, then written from the last byte back (no array of them per call)
    let count = 1
    for (let m = Math.floor(n / 128); m > 0; m = Math.floor(m / 128)) count++
    this.room(count)
    let at = this.length + count - 1
    this.buf[at] = n % 128
    for (n = Math.floor(n / 128); n > 0; n = Math.floor(n / 128)) this.buf[--at] = (n % 128) | 0x80
    this.length += count
  }

  /** What `w` holds, written here (w's bytes copied: w may be reset and written again). */
  append (w: Writer): void {
    this.room(w.length)
    this.buf.set(w.buf.subarray(0, w.length), this.length)
    this.length += w.length
  }

  /** Empty again, its array kept. */
  reset (): void { this.length = 0 }

  bytes (): Uint8Array { return this.buf.slice(0, this.length) }
}

class Reader {
  private at = 0
  private readonly buf: Uint8Array
  constructor (buf: Uint8Array) { this.buf = buf }

  get done (): boolean { return this.at >= this.buf.length }

  byte (): number {
    if (this.at >= this.buf.length) throw new RbsrError('message ends early')
    return this.buf[this.at++]
  }

  take (n: number): Uint8Array {
    if (this.buf.length - this.at < n) throw new RbsrError('message ends early')
    const out = this.buf.subarray(this.at, this.at + n)
    this.at += n
    return out
  }

  varint (): number {
    let n = 0
    for (let i = 0; i < 8; i++) {
      const b = this.byte()
      n = n * 128 + (b & 0x7f)
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(n)) throw new RbsrError('varint too large')
        return n
      }
    }
    throw new RbsrError('varint too long')
  }

  remaining (): number { return this.buf.length - this.at }
}

interface Bound { ts: number, id: Uint8Array }

const INFINITY: Bound = { ts: Infinity, id: EMPTY }

class BoundWriter {
  private last = 0
  write (w: Writer, b: Bound): void {
    if (b.ts === Infinity) { w.varint(0) } else { w.varint(1 + b.ts - this.last); this.last = b.ts }
    w.varint(b.id.length)
    w.put(b.id)
  }
}

class BoundReader {
  private last = 0
  read (r: Reader): Bound {
    const t = r.varint()
    let ts: number
    if (t === 0) ts = Infinity
    else {
      ts = this.last + t - 1
      if (!Number.isSafeInteger(ts)) throw new RbsrError('timestamp too large')
      this.last = ts
    }
    const len = r.varint()
    if (len > RBSR_ID_BYTES) throw new RbsrError(`a bound's id prefix holds at most ${RBSR_ID_BYTES} bytes, got ${len}`)
    return { ts, id: r.take(len) }
  }
}

function minimalBound (prev: RbsrItem, curr: RbsrItem): Bound {
  if (curr.ts !== prev.ts) return { ts: curr.ts, id: EMPTY }
  let shared = 0
  while (shared < RBSR_ID_BYTES && curr.id[shared] === prev.id[shared]) shared++
  return { ts: curr.ts, id: curr.id.slice(0, shared + 1) }
}

// --- the protocol -------------------------------------------------------------------------------------

export interface RbsrOptions {
  /** Most bytes of one message (>= RBSR_MIN_FRAME_BYTES); 0: unbounded. */
  frameLimit?: number
}

/** What a client learned from one server message, and what it sends next (null: done). */
export interface RbsrStep {
  next: Uint8Array | null
  /** Ids the client holds and the server lacks. */
  have: Uint8Array[]
  /** Ids the server holds and the client lacks. */
  need: Uint8Array[]
}

function frameLimitOf (opts: RbsrOptions): number {
  const limit = opts.frameLimit ?? 0
  if (limit !== 0 && (!Number.isSafeInteger(limit) || limit < RBSR_MIN_FRAME_BYTES)) throw new RangeError(`frameLimit must be 0 or >= ${RBSR_MIN_FRAME_BYTES}, got ${String(limit)}`)
  return limit
}

/** The client's first message: its whole set, split. */
export function rbsrInitiate (set: OpSet, opts: RbsrOptions = {}): Uint8Array {
  frameLimitOf(opts)
  const w = new Writer()
  w.byte(RBSR_VERSION)
  splitRange(set, 0, set.size, INFINITY, w, new BoundWriter())
  return w.bytes()
}

/** The server's answer to a client message. Throws RbsrError on a malformed message. */
export function rbsrRespond (set: OpSet, msg: Uint8Array, opts: RbsrOptions = {}): Uint8Array {
  return run(set, msg, false, frameLimitOf(opts)).out as Uint8Array
}

/** The client's step on a server answer. Throws RbsrError on a malformed message. */
export function rbsrContinue (set: OpSet, msg: Uint8Array, opts: RbsrOptions = {}): RbsrStep {
  const { out, have, need } = run(set, msg, true, frameLimitOf(opts))
  return { next: out, have, need }
}


function run (set: OpSet, msg: Uint8Array, client: boolean, frameLimit: number): { out: Uint8Array | null, have: Uint8Array[], need: Uint8Array[] } {
  if (!(msg instanceof Uint8Array)) throw new RbsrError('message is not bytes')
  const have: Uint8Array[] = []
  const need: Uint8Array[] = []
  const r = new Reader(msg)
  const version = r.byte()
  if (version !== RBSR_VERSION) throw new RbsrError(`unsupported version byte 0x${version.toString(16)}`)
  const full = new Writer()
  full.byte(RBSR_VERSION)
  const bounds = new BoundWriter()
  const inBounds = new BoundReader()
  const exceeded = (n: number): boolean => frameLimit !== 0 && n > frameLimit - FRAME_MARGIN
  const size = set.size
  let prevBound: Bound = { ts: 0, id: EMPTY }
  let prevIndex = 0
  let skip = false
  let sawEnd = false
  /** The rank at the last bound written to `full` (where a closing range would start). */
  let written = 0

  // one range's output, and a server's id list, each one Writer reset per range (a Writer per
  // range, with its array, and a copy of its bytes to append: thousands per merge's round)
  const o = new Writer()
  const ids = new Writer()
  const doSkip = (): void => {
    if (!skip) return
    skip = false
    bounds.write(o, prevBound)
    o.varint(MODE_SKIP)
  }
  while (!r.done) {
    if (sawEnd) throw new RbsrError('a range follows the infinity bound')
    o.reset()
    const currBound = inBounds.read(r)
    if (compare(currBound.ts, currBound.id, prevBound.ts, prevBound.id) < 0) throw new RbsrError('ranges out of order')
    if (currBound.ts === Infinity) sawEnd = true
    const mode = r.varint()
    const lower = prevIndex
    let upper = currBound.ts === Infinity ? size : set.lowerBound(currBound.ts, currBound.id, prevIndex)
    let endBound = currBound

    if (mode === MODE_SKIP) {
      skip = true
    } else if (mode === MODE_FINGERPRINT) {
      const theirs = r.take(RBSR_FINGERPRINT_BYTES)
      const ours = set.fingerprint(lower, upper)
      if (equalBytes(theirs, ours)) skip = true
      else {
        doSkip()
        splitRange(set, lower, upper, currBound, o, bounds)
      }
    } else if (mode === MODE_IDLIST) {
      const n = r.varint()
      if (n * RBSR_ID_BYTES > r.remaining()) throw new RbsrError('id list longer than the message')
      if (client) {
        const theirs = new Map<string, Uint8Array>()
        for (let i = 0; i < n; i++) {
          const id = r.take(RBSR_ID_BYTES)
          theirs.set(bytesKey(id), id)
        }
        skip = true
        set.iterate(lower, upper, (item) => {
          if (!theirs.delete(bytesKey(item.id))) have.push(item.id.slice()) // a copy: item ids are views into a chunk that later adds rewrite
          return true
        })
        for (const id of theirs.values()) need.push(new Uint8Array(id))
      } else {
        r.take(n * RBSR_ID_BYTES) // the server answers with its own list; the client compares
        doSkip()
        ids.reset()
        let count = 0
        set.iterate(lower, upper, (item, rank) => {
          if (exceeded(full.length + o.length + ids.length)) {
            endBound = item
            upper = rank // the rest of the range goes into the closing fingerprint
            return false
          }
          ids.put(item.id)
          count++
          return true
        })
        bounds.write(o, endBound)
        o.varint(MODE_IDLIST)
        o.varint(count)
        o.append(ids)
      }
    } else {
      throw new RbsrError(`unknown range mode ${mode}`)
    }

    if (exceeded(full.length + o.length)) {
      // over the frame: one fingerprint over everything after the last bound written, split in
      // the next round (a server's id list cut short is kept: its rest starts at its bound)
      let from = written
      if (endBound !== currBound) { full.append(o); from = upper }
      bounds.write(full, INFINITY)
      full.varint(MODE_FINGERPRINT)
      full.put(set.fingerprint(from, size))
      return { out: full.bytes(), have, need }
    }
    if (o.length > 0) { full.append(o); written = upper }
    prevIndex = upper
    prevBound = endBound
  }
  if (client && full.length === 1) return { out: null, have, need }
  return { out: full.bytes(), have, need }
}

/** Ranks [lower, upper) ending at `upperBound`: an id list if small, else BUCKETS fingerprints. */
function splitRange (set: OpSet, lower: number, upper: number, upperBound: Bound, w: Writer, bounds: BoundWriter): void {
  const n = upper - lower
  if (n < RBSR_BUCKETS * 2) {
    bounds.write(w, upperBound)
    w.varint(MODE_IDLIST)
    w.varint(n)
    set.iterate(lower, upper, (item) => { w.put(item.id); return true })
    return
  }
  const per = Math.floor(n / RBSR_BUCKETS)
  const extra = n % RBSR_BUCKETS
  const at = [lower]
  for (let i = 0; i < RBSR_BUCKETS; i++) at.push(at[i] + per + (i < extra ? 1 : 0))
  const fps = set.fingerprints(at)
  for (let i = 0; i < RBSR_BUCKETS; i++) {
    const fp = fps[i]
    const curr = at[i + 1]
    const next = curr === upper ? upperBound : minimalBound(set.at(curr - 1), set.at(curr))
    bounds.write(w, next)
    w.varint(MODE_FINGERPRINT)
    w.put(fp)
  }
}


/** One reconciliation of two in-memory sets (the simulator's and the tests'): what it learned and cost. */
export interface RbsrRun { have: Uint8Array[], need: Uint8Array[], rounds: number, bytesSent: number, bytesReceived: number }

/** Run client and server to the end in memory; `maxRounds` bounds it (RbsrError past it). */
export function rbsrReconcileInMemory (client: OpSet, server: OpSet, opts: RbsrOptions & { maxRounds?: number } = {}): RbsrRun {
  const maxRounds = opts.maxRounds ?? 1024
  const run: RbsrRun = { have: [], need: [], rounds: 0, bytesSent: 0, bytesReceived: 0 }
  let msg: Uint8Array | null = rbsrInitiate(client, opts)
  while (msg !== null) {
    if (run.rounds >= maxRounds) throw new RbsrError(`not reconciled in ${maxRounds} rounds`)
    run.rounds++
    run.bytesSent += msg.length
    const answer = rbsrRespond(server, msg, opts)
    run.bytesReceived += answer.length
    const step = rbsrContinue(client, answer, opts)
    for (const id of step.have) run.have.push(id)
    for (const id of step.need) run.need.push(id)
    msg = step.next
  }
  return run
}
