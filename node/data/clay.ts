// Clay codes: an MDS erasure code that repairs one lost fragment with less traffic than
// Reed–Solomon (issue 15 item 6). Construction and algorithms from M. Vajha, V. Ramkumar,
// B. Puranik, G. Kini, E. Lobo, B. Sasidharan, P. V. Kumar, A. Barg, M. Ye, S. Narayanamurthy,
// S. Hussain, S. Nandi, "Clay Codes: Moulding MDS Codes to Yield an MSR Code", USENIX FAST 2018
// (the code Ceph ships as its "clay" erasure-code plugin). Written here from the paper.
//
// Parameters: k data and m parity fragments, n = k + m, and d helpers for a repair, k < d < n.
// q = d - k + 1; when q does not divide n, `virtual` = q - n mod q all-zero data fragments are
// added (the paper's shortening): k' = k + virtual, n' = n + virtual, t = n' / q. Each fragment
// is cut into alpha = q^t sub-chunks of `s` bytes; a repair reads beta = alpha / q of them from
// each of d helpers: d / q fragments' worth in all, against k for Reed–Solomon (4+2, d = 5:
// 2.5 against 4). Any k fragments decode (MDS). The data fragments are the data, as with
// erasure.ts (systematic).
//
// The layout. Internal node i (0 <= i < n') sits at (x, y) = (i mod q, floor(i / q)): the data
// fragments are nodes 0..k-1, the virtual ones k..k'-1, the parity ones k'..n'-1 (parity j of
// the caller is node k' + j - k). Sub-chunk (plane) z, 0 <= z < alpha, has the base-q digits
// z_y = floor(z / q^y) mod q, and sits at byte z * s of its fragment. In plane z, node (x, y) is
// "red" when x = z_y; every other (x, y, z) is paired with (z_y, y, z with its digit y set to x),
// and the stored (coupled) bytes C of a pair are made from the uncoupled U by
//   C(p) = U(p) + gamma U(p*),   C(p*) = U(p*) + gamma U(p)        (red: C = U)
// where, in every plane z, U(., ., z) across the n' nodes is a codeword of the systematic
// Reed–Solomon code of erasure.ts with k' data and m parity shards (its coding matrix). gamma is
// neither 0 nor 1, so any two of C(p), C(p*), U(p), U(p*) give the other two.
//
// Decoding (encoding is decoding the m parity fragments) and repair follow the paper's
// algorithms (§3.3, §3.4), noted at each function below. The arithmetic is erasure.ts's kernel
// (ISA-L when the addon is built, else TypeScript) on sub-chunks: pairs are 2-input products,
// planes are Reed–Solomon decodes. With d = k (q = 1, alpha = 1) there are no pairs and the
// code is erasure.ts's Reed–Solomon code, byte for byte.
//
// Wired into darkfs behind a feature gate (`up --codec clay`, off by default; data/blocks.ts
// Codec):
//  - Manifest: ChunkRef.clay = d (absent: Reed–Solomon), in manifests of version 3 alone
//    (chunks.ts manifestOf; decodeManifest checks k < d < k + m and that this code can be built,
//    alpha <= MAX_SUBCHUNKS). A host of an older version refuses a version it does not know, so
//    it never takes a Clay chunk for a Reed–Solomon one (its parity would rebuild to bytes its
//    CID refuses, and fragmentSlices would cut the short last chunk at shardSize(size, k), not
//    fragmentSize: chunks.ts fragmentBytes). `roots` holds all n fragments' Merkle roots, not the
//    k data ones: helpers send parity fragments' sub-chunks too, each checked as it arrives.
//  - Write gate: a host whose codec is 'clay' writes Clay chunks (d = k + m - 1, chunks.ts
//    clayFor; not replicated chunks, not m = 1) only while every member announces FEATURE_CLAY
//    (net/features.ts, on identify); Reed–Solomon until then. Chunks already written keep their
//    code (the manifest names it). A Clay chunk is never placed through a relay (forward.ts
//    re-encodes with Reed–Solomon).
//  - Reads: the data fragments are the chunk (systematic), so reads and range reads are as for
//    Reed–Solomon; a missing data fragment is decoded from any k (chunks.ts decodeData).
//  - Repair (keeper/repair.ts clayRepair): a chunk missing one fragment whose column mates
//    (columnMates) and d helpers in all are here or on live holders: repairHelpers(lost, this
//    host's fragments first, then the live holders'), this host's own share read from disk, the
//    others' repairRuns(lost) fetched as range wants (PROTOCOL_RANGES, [first, end) leaves with
//    a proof against the fragment's root), repair(), the result checked against the fragment's
//    CID. At 4+2 d=5 with 1 MiB chunks a fragment is 256 KiB and a sub-chunk 32 KiB, two
//    LEAF_BYTES leaves, so every run is whole leaves: a lost fragment 0 or 1 (column 0) takes 4
//    runs of 2 leaves from each helper, 2 or 3 two runs of 4, 4 or 5 one run of 8
//    (MAX_RANGE_LEAVES is 64). With two lost, a column mate down, no roots, runs that are not
//    whole leaves (a file's short last chunk; wide codes: 8+3 d=10 at 1 MiB has 1,620-byte
//    sub-chunks, 10+4 d=13 412), or a helper that does not deliver: reconstruct() from any k
//    whole fragments, as for Reed–Solomon (chunks.ts rebuildFragments). Bytes moved per byte
//    lost at 4+2 d=5: a rebuilder holding a fragment fetches 4 x 0.5 and pushes 1 (3 in all;
//    Reed–Solomon 3 + 1), a rebuilder that is the new holder fetches 5 x 0.5 = 2.5 and pushes
//    nothing (Reed–Solomon 4). Measured (DARKFS_BENCH=repair, 7 hosts): 3.1 against 4.1.
import { Buffer } from 'node:buffer'
import { ErasureError, MAX_SHARDS, gf256, kernels } from './erasure.ts'
import type { Kernel } from './erasure.ts'

/** Largest sub-packetization accepted: past it sub-chunks of a 1 MiB chunk get too small to be worth it. */
export const MAX_SUBCHUNKS = 4096
/** The coupling coefficient: any field element but 0 and 1 keeps the pairs invertible. */
const GAMMA = 2

export interface ClayOptions {
  /** The kernel (erasure.ts `kernels`): the native one when built, else TypeScript. */
  kernel?: Kernel
  /**
   * The coupling coefficient (default 2). 0 removes the coupling (each plane is then a plain
   * Reed–Solomon codeword; encode and decode still work, repair is refused): for tests only.
   */
  gamma?: number
}

/** A run of sub-chunks: `count` of them from sub-chunk `start` (bytes start * s to (start + count) * s). */
export interface SubChunkRun { start: number, count: number }

export class ClayCode {
  readonly k: number
  readonly m: number
  readonly d: number
  readonly n: number
  /** d - k + 1: the nodes of a column, and the factor by which a repair reads less per helper. */
  readonly q: number
  /** Columns: n' / q. */
  readonly t: number
  /** Sub-chunks per fragment: q^t. */
  readonly alpha: number
  /** Sub-chunks each helper sends for a repair: alpha / q. */
  readonly beta: number
  /** All-zero data fragments added so that q divides n' = n + virtual (never stored or sent). */
  readonly virtual: number
  private readonly kk: number
  private readonly nn: number
  private readonly kernel: Kernel
  private readonly gamma: number
  /** q^y for each column y. */
  private readonly pow: number[]
  /** The n' x k' systematic coding matrix of the planes. */
  private readonly gen: Uint8Array
  /** U(p) = C(p) + gamma X: also C(p) = U(p) + gamma U(p*). */
  private readonly oneGamma: Uint8Array
  /** U(p) = (C(p) + gamma C(p*)) / (1 + gamma^2). */
  private readonly pairInverse: Uint8Array
  /** C(lost, z') = C(mate, z) / gamma + (1 / gamma + gamma) U(mate, z). */
  private readonly lostFromMate: Uint8Array
  private readonly decoders = new Map<string, Uint8Array>()
  /** Zeros for the virtual nodes' sub-chunks (never written). */
  private zeros: Uint8Array = new Uint8Array(0)
  /** Working memory for U, reused (the methods are synchronous; no view of it escapes). */
  private scratch: Uint8Array = new Uint8Array(0)

  constructor (k: number, m: number, d: number = k + m - 1, opts: ClayOptions = {}) {
    if (!Number.isSafeInteger(k) || k < 1) throw new ErasureError(`k must be an integer >= 1, got ${k}`)
    if (!Number.isSafeInteger(m) || m < 1) throw new ErasureError(`m must be an integer >= 1, got ${m}`)
    if (!Number.isSafeInteger(d) || d < k || d > k + m - 1) throw new ErasureError(`d must be an integer from k = ${k} to n - 1 = ${k + m - 1}, got ${d}`)
    this.k = k
    this.m = m
    this.d = d
    this.n = k + m
    this.q = d - k + 1
    this.virtual = (this.q - (this.n % this.q)) % this.q
    this.kk = k + this.virtual
    this.nn = this.n + this.virtual
    if (this.nn > MAX_SHARDS) throw new ErasureError(`n + virtual nodes must be at most ${MAX_SHARDS}, got ${this.nn}`)
    this.t = this.nn / this.q
    this.alpha = this.q ** this.t
    if (this.alpha > MAX_SUBCHUNKS) throw new ErasureError(`${k}+${m} with d = ${d} needs ${this.q}^${this.t} = ${this.alpha} sub-chunks per fragment, more than ${MAX_SUBCHUNKS}`)
    this.beta = this.alpha / this.q
    this.pow = Array.from({ length: this.t }, (_, y) => this.q ** y)
    const kernel = opts.kernel ?? kernels.native ?? kernels.typescript
    this.kernel = kernel
    const gamma = opts.gamma ?? GAMMA
    if (!Number.isInteger(gamma) || gamma < 0 || gamma > 255 || gamma === 1) throw new ErasureError(`gamma must be a field element other than 1, got ${gamma}`)
    this.gamma = gamma
    this.gen = gf256.codingMatrix(this.kk, m)
    const { mul, inv } = gf256
    const delta = inv(1 ^ mul(gamma, gamma))
    this.oneGamma = Uint8Array.of(1, gamma)
    this.pairInverse = Uint8Array.of(delta, mul(gamma, delta))
    this.lostFromMate = gamma === 0 ? new Uint8Array(2) : Uint8Array.of(inv(gamma), inv(gamma) ^ gamma)
  }

  /** Bytes per sub-chunk for `length` bytes of data: ceil(length / (k alpha)) up to a multiple of 4, at least 4. */
  subChunkSize (length: number): number {
    if (!Number.isSafeInteger(length) || length < 0) throw new ErasureError(`length must be an integer >= 0, got ${length}`)
    return Math.max(4, Math.ceil(length / (this.k * this.alpha) / 4) * 4)
  }

  /** Bytes per fragment for `length` bytes of data: alpha sub-chunks. */
  fragmentSize (length: number): number {
    return this.alpha * this.subChunkSize(length)
  }

  /**
   * The n fragments of `data`: k data fragments (views of `data`, or zero-padded copies for the
   * last ones), then m parity fragments in fresh memory.
   */
  encode (data: Uint8Array): Uint8Array[] {
    if (!(data instanceof Uint8Array)) throw new ErasureError('data must be a Uint8Array')
    const s = this.subChunkSize(data.length)
    const size = this.alpha * s
    const whole = Math.min(this.k, Math.floor(data.length / size))
    const made = fresh((this.k - whole + this.m) * size)
    const frags: Uint8Array[] = []
    for (let j = 0; j < this.k; j++) {
      if (j < whole) {
        frags.push(data.subarray(j * size, (j + 1) * size))
      } else {
        const f = made.subarray((j - whole) * size, (j - whole + 1) * size)
        const tail = j * size < data.length ? data.subarray(j * size) : data.subarray(0, 0)
        f.set(tail)
        f.fill(0, tail.length)
        frags.push(f)
      }
    }
    for (let j = 0; j < this.m; j++) frags.push(made.subarray((this.k - whole + j) * size, (this.k - whole + j + 1) * size))
    this.rebuild(frags, Array.from({ length: this.m }, (_, j) => this.k + j), s)
    return frags
  }

  /**
   * All n fragments from at least k of them (missing ones undefined, by index): the present
   * ones as given, the missing ones rebuilt in fresh memory. Throws ErasureError when fewer
   * than k are present or the fragments are malformed.
   */
  reconstruct (fragments: Array<Uint8Array | undefined>): Uint8Array[] {
    const { size, missing } = this.survey(fragments)
    const out = Array.from({ length: this.n }, (_, i) => fragments[i]) as Uint8Array[]
    if (missing.length === 0) return out
    const made = fresh(missing.length * size)
    missing.forEach((j, i) => { out[j] = made.subarray(i * size, (i + 1) * size) })
    this.rebuild(out, missing, size / this.alpha)
    return out
  }

  /** The first `length` bytes of the data from at least k fragments. */
  decode (fragments: Array<Uint8Array | undefined>, length: number): Uint8Array {
    if (!Number.isSafeInteger(length) || length < 0) throw new ErasureError(`length must be an integer >= 0, got ${length}`)
    const { size } = this.survey(fragments)
    if (length > size * this.k) throw new ErasureError(`length ${length} exceeds the ${this.k} data fragments of ${size} bytes`)
    let data = fragments
    for (let j = 0; j < this.k; j++) if (fragments[j] == null) { data = this.reconstruct(fragments); break }
    const out = new Uint8Array(length)
    for (let j = 0; j * size < length; j++) out.set((data[j] as Uint8Array).subarray(0, Math.min(size, length - j * size)), j * size)
    return out
  }

  /** The sub-chunk indices (ascending) each helper sends to repair fragment `lost`: beta of them. */
  repairSubChunks (lost: number): number[] {
    const { x0, y0 } = this.lostNode(lost)
    const out: number[] = []
    for (let z = 0; z < this.alpha; z++) if (this.digit(z, y0) === x0) out.push(z)
    return out
  }

  /**
   * repairSubChunks as runs of consecutive sub-chunks (for range reads): alpha / q^(y0+1) runs of
   * q^y0 sub-chunks each, where y0 is the lost fragment's column.
   */
  repairRuns (lost: number): SubChunkRun[] {
    const { x0, y0 } = this.lostNode(lost)
    const w = this.pow[y0]
    const runs: SubChunkRun[] = []
    for (let base = 0; base < this.alpha; base += w * this.q) runs.push({ start: base + x0 * w, count: w })
    return runs
  }

  /**
   * d helpers for repairing `lost` from the fragments `available` (indices), or undefined when
   * these cannot repair it (decode from k then): every other fragment of the lost one's column
   * must be among them (the paper's helper condition), and d in all. Column mates first, then
   * the others in the order given.
   */
  repairHelpers (lost: number, available: number[]): number[] | undefined {
    this.lostNode(lost)
    const have = new Set(available.filter(i => Number.isInteger(i) && i >= 0 && i < this.n && i !== lost))
    const mates = this.columnMates(lost)
    if (mates.some(i => !have.has(i))) return undefined
    const out = [...mates]
    for (const i of have) {
      if (out.length >= this.d) break
      if (!mates.includes(i)) out.push(i)
    }
    return out.length === this.d ? out : undefined
  }

  /** The other real fragments in the lost fragment's column: every repair needs them. */
  columnMates (lost: number): number[] {
    const { x0, y0 } = this.lostNode(lost)
    const out: number[] = []
    for (let x = 0; x < this.q; x++) {
      const r = this.real(y0 * this.q + x)
      if (x !== x0 && r >= 0) out.push(r)
    }
    return out
  }

  /**
   * Fragment `lost`, rebuilt from d helpers: `helped[i]` is what fragment i's holder sent, its
   * sub-chunks repairSubChunks(lost) one after another (beta sub-chunks of s bytes); exactly d
   * present, every column mate among them (repairHelpers). The paper's repair (§3.4): in each
   * plane z with z_y0 = x0 (the lost node is red there), U of the helpers outside the lost
   * column comes from their pairs (both in such planes), or, for a helper paired with a node
   * that is not a helper ("aloof"), from that node's U decoded in an earlier plane (planes go
   * by how many aloof nodes are red in them); a Reed–Solomon decode gives U of the lost column
   * and the aloof nodes; the lost node's C there is its U, and each column mate's C and U give
   * the lost node's C in the plane paired with it.
   */
  repair (lost: number, helped: Array<Uint8Array | undefined>): Uint8Array {
    const { x0, y0 } = this.lostNode(lost)
    if (this.gamma === 0) throw new ErasureError('an uncoupled code (gamma = 0) cannot repair from sub-chunks: decode from k fragments')
    if (!Array.isArray(helped)) throw new ErasureError('helped must be an array')
    if (helped.length > this.n) throw new ErasureError(`got ${helped.length} helper entries for n = ${this.n}`)
    if (helped[lost] != null) throw new ErasureError(`helper ${lost} is the lost fragment itself`)
    let b = -1
    let count = 0
    for (let i = 0; i < helped.length; i++) {
      const h = helped[i]
      if (h == null) continue
      if (!(h instanceof Uint8Array)) throw new ErasureError(`helper ${i} is not a Uint8Array`)
      if (b === -1) b = h.length
      else if (h.length !== b) throw new ErasureError(`helper ${i} sent ${h.length} bytes, another sent ${b}: every helper sends the same ${this.beta} sub-chunks`)
      count++
    }
    if (count !== this.d) throw new ErasureError(`${count} helpers sent sub-chunks, repair takes exactly d = ${this.d}`)
    if (b === 0 || b % (4 * this.beta) !== 0) throw new ErasureError(`helpers sent ${b} bytes each: it must be ${this.beta} sub-chunks of a positive multiple of 4 bytes`)
    const missingMates = this.columnMates(lost).filter(i => helped[i] == null)
    if (missingMates.length > 0) throw new ErasureError(`repair of fragment ${lost} needs its column mates ${this.columnMates(lost).join(', ')} among the helpers; ${missingMates.join(', ')} missing: decode from k fragments instead`)
    const s = b / this.beta
    const { q, nn, alpha, beta } = this
    const planes = this.repairSubChunks(lost)
    const slot = new Map<number, number>()
    planes.forEach((z, i) => slot.set(z, i))
    const L = this.internal(lost)
    const zeros = this.zerosOf(s)
    // C of node i in repair plane z (a helper's, or a virtual node's zeros)
    const cOf = (i: number, z: number): Uint8Array => {
      const r = this.real(i)
      if (r < 0) return zeros
      const p = slot.get(z) as number
      return (helped[r] as Uint8Array).subarray(p * s, (p + 1) * s)
    }
    // all that node i sent (its repair planes in order), zeros for a virtual node
    const sentZeros = this.zerosOf(beta * s)
    const sent = (i: number): Uint8Array => { const r = this.real(i); return r < 0 ? sentZeros : helped[r] as Uint8Array }
    const aloof: number[] = []
    for (let i = 0; i < nn; i++) {
      const r = this.real(i)
      if (r >= 0 && r !== lost && helped[r] == null) aloof.push(i)
    }
    const isAloof = new Uint8Array(nn)
    for (const a of aloof) isAloof[a] = 1
    const column = Array.from({ length: q }, (_, x) => y0 * q + x)
    const unknown = [...column, ...aloof].sort((a, b) => a - b)
    const known: number[] = []
    for (let i = 0; i < nn; i++) if (Math.floor(i / q) !== y0 && isAloof[i] === 0) known.push(i)
    const coeffs = this.decoder(known, unknown)
    // U of node i in repair plane z: slot (i, slot(z)) of the scratch
    const scratch = this.scratchOf(nn * beta * s)
    const uAt = (i: number, z: number): Uint8Array => {
      const o = (i * beta + (slot.get(z) as number)) * s
      return scratch.subarray(o, o + s)
    }
    const out = fresh(alpha * s)
    const order = planes.map(z => ({ z, red: aloof.reduce((c, a) => c + (this.digit(z, Math.floor(a / q)) === a % q ? 1 : 0), 0) }))
    order.sort((a, b) => a.red - b.red || a.z - b.z)
    // U of every known node whose pair is a helper's (or a virtual node's) needs no plane order:
    // made in runs of consecutive repair planes (in the helpers' sends, the planes with digit y
    // = v are runs of q^y', y' = y less one past y0, and so are their pairs')
    for (const i of known) {
      const x = i % q
      const y = Math.floor(i / q)
      const w = this.pow[y < y0 ? y : y - 1]
      for (let v = 0; v < q; v++) {
        const partner = y * q + v
        if (v === x || isAloof[partner] === 1) continue
        const mine = sent(i)
        const theirs = sent(partner)
        for (let base = 0; base < beta; base += w * q) {
          const a = base + v * w
          const b = base + x * w
          this.kernel.mul(this.pairInverse, 2, 1, [mine.subarray(a * s, (a + w) * s), theirs.subarray(b * s, (b + w) * s)], [scratch.subarray((i * beta + a) * s, (i * beta + a + w) * s)], w * s)
        }
      }
    }
    const inputs: Uint8Array[] = new Array(known.length)
    const outputs: Uint8Array[] = new Array(unknown.length)
    for (const { z } of order) {
      known.forEach((i, j) => {
        const x = i % q
        const y = Math.floor(i / q)
        const zy = this.digit(z, y)
        if (x === zy) { inputs[j] = cOf(i, z); return }
        const partner = y * q + zy
        const u = uAt(i, z)
        // paired with an aloof node: its U from a plane earlier in the order
        if (isAloof[partner] === 1) this.kernel.mul(this.oneGamma, 2, 1, [cOf(i, z), uAt(partner, z + (x - zy) * this.pow[y])], [u], s)
        inputs[j] = u
      })
      // the lost node is red here: its U is its C, decoded straight into the output
      unknown.forEach((i, j) => { outputs[j] = i === L ? out.subarray(z * s, (z + 1) * s) : uAt(i, z) })
      this.kernel.mul(coeffs, known.length, unknown.length, inputs, outputs, s)
    }
    // the lost node's C in the planes paired with a column mate's repair planes: run by run of
    // the repair planes (q^y0 consecutive planes each)
    const w0 = this.pow[y0]
    for (let x = 0; x < q; x++) {
      if (x === x0) continue
      const mate = y0 * q + x
      const mine = sent(mate)
      for (let r = 0; r * w0 < beta; r++) {
        const zp = r * w0 * q + x * w0
        this.kernel.mul(this.lostFromMate, 2, 1, [mine.subarray(r * w0 * s, (r + 1) * w0 * s), scratch.subarray((mate * beta + r * w0) * s, (mate * beta + (r + 1) * w0) * s)], [out.subarray(zp * s, (zp + w0) * s)], w0 * s)
      }
    }
    return out
  }

  // ---- internals ---------------------------------------------------------------------------

  /**
   * The paper's decoding (§3.3): fills fragments `erasedReal` (at most m real indices; their
   * entries in `frags` are buffers of alpha * s bytes to overwrite) from the others in `frags`.
   * Planes go in increasing order of how many erased nodes are red in them; in each, U of every
   * node not erased comes from its C (red), its pair's C, or, when its pair node is erased,
   * that node's U from a plane one lower in the order; a Reed–Solomon decode gives U of the
   * erased nodes there (straight into C for those red there). Last, C of each erased node from
   * its U and its pair's.
   */
  private rebuild (frags: Uint8Array[], erasedReal: number[], s: number): void {
    const { q, nn, alpha } = this
    const zeros = this.zerosOf(alpha * s)
    const C = Array.from({ length: nn }, (_, i) => { const r = this.real(i); return r < 0 ? zeros : frags[r] })
    const cAt = (i: number, z: number): Uint8Array => C[i].subarray(z * s, (z + 1) * s)
    const erased = erasedReal.map(r => this.internal(r)).sort((a, b) => a - b)
    const isErased = new Uint8Array(nn)
    for (const e of erased) isErased[e] = 1
    const present: number[] = []
    for (let i = 0; i < nn; i++) if (isErased[i] === 0) present.push(i)
    const known = present.slice(0, this.kk)
    const coeffs = this.decoder(known, erased)
    const scratch = this.scratchOf(nn * alpha * s)
    // U of node i in plane z: C itself when red and not erased, else scratch slot (i, z); an
    // erased node red in z has its U decoded straight into C
    const uAt = (i: number, z: number): Uint8Array => {
      if (this.digit(z, Math.floor(i / q)) === i % q) return cAt(i, z)
      const o = (i * alpha + z) * s
      return scratch.subarray(o, o + s)
    }
    const order = Array.from({ length: alpha }, (_, z) => ({ z, red: erased.reduce((c, e) => c + (this.digit(z, Math.floor(e / q)) === e % q ? 1 : 0), 0) }))
    order.sort((a, b) => a.red - b.red || a.z - b.z)
    // U of every present node paired with a present one needs no plane order: made in runs of
    // consecutive planes (those with digit y = v are runs of q^y, and so are their pairs')
    for (const i of present) {
      const x = i % q
      const y = Math.floor(i / q)
      const w = this.pow[y]
      for (let v = 0; v < q; v++) {
        const partner = y * q + v
        if (v === x || isErased[partner] === 1) continue
        for (let base = 0; base < alpha; base += w * q) {
          const a = base + v * w
          const b = base + x * w
          this.kernel.mul(this.pairInverse, 2, 1, [C[i].subarray(a * s, (a + w) * s), C[partner].subarray(b * s, (b + w) * s)], [scratch.subarray((i * alpha + a) * s, (i * alpha + a + w) * s)], w * s)
        }
      }
    }
    const inputs: Uint8Array[] = new Array(known.length)
    const outputs: Uint8Array[] = new Array(erased.length)
    for (const { z } of order) {
      for (const i of present) {
        const x = i % q
        const y = Math.floor(i / q)
        const zy = this.digit(z, y)
        if (x === zy) continue // U = C
        const partner = y * q + zy
        // paired with an erased node: its U from a plane earlier in the order
        if (isErased[partner] === 1) this.kernel.mul(this.oneGamma, 2, 1, [cAt(i, z), uAt(partner, z + (x - zy) * this.pow[y])], [uAt(i, z)], s)
      }
      known.forEach((i, j) => { inputs[j] = uAt(i, z) })
      erased.forEach((i, j) => { outputs[j] = uAt(i, z) })
      this.kernel.mul(coeffs, known.length, erased.length, inputs, outputs, s)
    }
    // C of the erased nodes where they are not red (red: decoded in place), in runs of planes
    for (const i of erased) {
      const x = i % q
      const y = Math.floor(i / q)
      const w = this.pow[y]
      for (let v = 0; v < q; v++) {
        if (v === x) continue
        const partner = y * q + v
        for (let base = 0; base < alpha; base += w * q) {
          const a = base + v * w
          const b = base + x * w
          this.kernel.mul(this.oneGamma, 2, 1, [scratch.subarray((i * alpha + a) * s, (i * alpha + a + w) * s), scratch.subarray((partner * alpha + b) * s, (partner * alpha + b + w) * s)], [C[i].subarray(a * s, (a + w) * s)], w * s)
        }
      }
    }
  }

  /** Rows that give the planes' U at internal nodes `wanted` from U at the k' nodes `known` (cached, stable identity). */
  private decoder (known: number[], wanted: number[]): Uint8Array {
    const key = `${known.join(',')}>${wanted.join(',')}`
    let rows = this.decoders.get(key)
    if (rows !== undefined) return rows
    const kk = this.kk
    const sub = new Uint8Array(kk * kk)
    known.forEach((row, i) => sub.set(this.gen.subarray(row * kk, row * kk + kk), i * kk))
    const inv = gf256.invert(sub, kk)
    if (inv === undefined) throw new ErasureError(`singular decoding matrix for nodes ${known.join(',')}`)
    const pick = new Uint8Array(wanted.length * kk)
    wanted.forEach((row, i) => pick.set(this.gen.subarray(row * kk, row * kk + kk), i * kk))
    rows = gf256.multiply(pick, inv, wanted.length, kk, kk)
    if (this.decoders.size >= 256) this.decoders.delete(this.decoders.keys().next().value as string)
    this.decoders.set(key, rows)
    return rows
  }

  /** Checks fragments; returns their common length and the missing real indices. */
  private survey (fragments: Array<Uint8Array | undefined>): { size: number, missing: number[] } {
    if (!Array.isArray(fragments)) throw new ErasureError('fragments must be an array')
    if (fragments.length > this.n) throw new ErasureError(`got ${fragments.length} fragments for n = ${this.n}`)
    let size = -1
    const missing: number[] = []
    for (let i = 0; i < this.n; i++) {
      const f = fragments[i]
      if (f == null) { missing.push(i); continue }
      if (!(f instanceof Uint8Array)) throw new ErasureError(`fragment ${i} is not a Uint8Array`)
      if (size === -1) size = f.length
      else if (f.length !== size) throw new ErasureError(`fragment ${i} has ${f.length} bytes, another has ${size}: fragments must be the same length`)
    }
    if (this.n - missing.length < this.k) throw new ErasureError(`${this.n - missing.length} of ${this.n} fragments present, ${this.k} needed to decode (k=${this.k}, m=${this.m})`)
    if (size === 0 || size % (4 * this.alpha) !== 0) throw new ErasureError(`fragments of ${size} bytes: a fragment is ${this.alpha} sub-chunks of a positive multiple of 4 bytes (fragmentSize)`)
    return { size, missing }
  }

  private lostNode (lost: number): { x0: number, y0: number } {
    if (!Number.isInteger(lost) || lost < 0 || lost >= this.n) throw new ErasureError(`lost must be a fragment index below ${this.n}, got ${lost}`)
    const i = this.internal(lost)
    return { x0: i % this.q, y0: Math.floor(i / this.q) }
  }

  /** Digit y of plane z in base q. */
  private digit (z: number, y: number): number {
    return Math.floor(z / this.pow[y]) % this.q
  }

  /** Internal node of real fragment r (the virtual nodes sit between data and parity). */
  private internal (r: number): number {
    return r < this.k ? r : r + this.virtual
  }

  /** Real fragment of internal node i, -1 for a virtual node. */
  private real (i: number): number {
    if (i < this.k) return i
    return i < this.kk ? -1 : i - this.virtual
  }

  private zerosOf (bytes: number): Uint8Array {
    if (this.zeros.length < bytes) this.zeros = new Uint8Array(bytes)
    return this.zeros.subarray(0, bytes)
  }

  private scratchOf (bytes: number): Uint8Array {
    if (this.scratch.length < bytes) this.scratch = fresh(bytes)
    return this.scratch.subarray(0, bytes)
  }
}

/** `bytes` of fresh memory left unfilled (every byte is written before it is read), a plain Uint8Array on a 4-byte boundary. */
function fresh (bytes: number): Uint8Array {
  const buf = Buffer.allocUnsafeSlow(bytes)
  return new Uint8Array(buf.buffer, buf.byteOffset, bytes)
}
