// Erasure coding of chunks into fragments (DESIGN.md §2): a systematic Reed–Solomon code over
// GF(2^8) with the polynomial 0x11d, k data and m parity shards, any k of which rebuild the rest.
//
// The coding matrix is the classic one: a (k+m) x k Vandermonde matrix (row r = [r^0, r^1, ...])
// multiplied by the inverse of its top k x k square, so the top k rows are the identity. It is
// the construction of Backblaze's JavaReedSolomon and of the Rust `reed-solomon-erasure` crate,
// so the parity bytes here are identical to theirs (the tests cross-check them).
//
// Two implementations of the one hot loop (multiply a small coefficient matrix by a set of
// shards) sit behind the same API and give byte-identical results:
//  - 'isa-l': Intel ISA-L through the N-API addon node/data/native/build/erasure.node (built by
//    node/data/native/build.sh), used when it is present and loads;
//  - 'typescript': table-driven GF(2^8) on 32-bit words, the fallback.
// DARKFS_ERASURE=typescript forces the fallback. The codec's functions are synchronous and pure;
// the native calls run on the calling thread and take well under a millisecond per MiB.
// The addon also hashes (sha256Many below): the chunk write path's sha256 of a chunk and its
// fragments costs several times the coding, so it runs on the libuv threadpool, in parallel.
// Loading the addon also sets glibc's malloc policy for the process (erasure.c, tune_malloc):
// freed buffers stay mapped for reuse, since fresh shards on fresh pages cost as much as coding.
import { Buffer } from 'node:buffer'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getRawAsset, isSea } from 'node:sea'

/** Bad arguments or not enough shards: thrown before any output is produced. */
export class ErasureError extends Error {
  static override readonly name = 'ErasureError'
  override readonly name = 'ErasureError'
}

/** Largest k + m: the Vandermonde rows need distinct field elements (GF(2^8) has 256). */
export const MAX_SHARDS = 255
/** Bytes per block of the TypeScript kernel: the working set of one pass stays in L1/L2. */
const BLOCK_BYTES = 32768
/** Shard length from which the TypeScript kernel uses (and builds) 128 KiB wide tables. */
const WIDE_MIN_BYTES = 16384
/** How many wide tables (128 KiB each) are kept: 8 MiB. */
const WIDE_TABLE_ENTRIES = 64
/** How many encoding matrices (one per k, m) are kept. */
const MATRIX_CACHE_ENTRIES = 64
/** How many decoding matrices (one per k, m and set of present shards) are kept. */
const DECODE_CACHE_ENTRIES = 256
/**
 * Output shards made in one call share one allocation, each starting on a multiple of this
 * many bytes (a cache line, and a whole number of the TypeScript kernel's 32-bit words).
 */
const SHARD_ALIGN = 64
/** The field polynomial x^8 + x^4 + x^3 + x^2 + 1. */
const GF_POLY = 0x11d

// ---- GF(2^8) -------------------------------------------------------------------------------

const EXP = new Uint8Array(512)
const LOG = new Uint8Array(256)
{
  let x = 1
  for (let i = 0; i < 255; i++) {
    EXP[i] = x
    LOG[x] = i
    x <<= 1
    if ((x & 0x100) !== 0) x ^= GF_POLY
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]
}

function gfMul (a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]]
}

function gfInv (a: number): number {
  return EXP[255 - LOG[a]]
}

/** a^n, with 0^0 = 1 as in the Vandermonde construction. */
function gfPow (a: number, n: number): number {
  if (n === 0) return 1
  if (a === 0) return 0
  return EXP[(LOG[a] * n) % 255]
}

/** MUL[(c << 8) | x] = c * x: 64 KiB, every product of the field. */
const MUL = new Uint8Array(65536)
for (let c = 1; c < 256; c++) {
  for (let x = 1; x < 256; x++) MUL[(c << 8) | x] = EXP[LOG[c] + LOG[x]]
}

// ---- matrices (row-major Uint8Array, `cols` wide) ------------------------------------------

/** Inverse of the n x n matrix `a` (Gauss–Jordan); undefined when it is singular. */
function invert (a: Uint8Array, n: number): Uint8Array | undefined {
  const w = 2 * n
  const t = new Uint8Array(n * w)
  for (let r = 0; r < n; r++) {
    t.set(a.subarray(r * n, r * n + n), r * w)
    t[r * w + n + r] = 1
  }
  for (let col = 0; col < n; col++) {
    let pivot = col
    while (pivot < n && t[pivot * w + col] === 0) pivot++
    if (pivot === n) return undefined
    if (pivot !== col) {
      const tmp = t.slice(pivot * w, pivot * w + w)
      t.copyWithin(pivot * w, col * w, col * w + w)
      t.set(tmp, col * w)
    }
    const scale = gfInv(t[col * w + col])
    for (let c = 0; c < w; c++) t[col * w + c] = gfMul(t[col * w + c], scale)
    for (let r = 0; r < n; r++) {
      const f = t[r * w + col]
      if (r === col || f === 0) continue
      for (let c = 0; c < w; c++) t[r * w + c] ^= gfMul(f, t[col * w + c])
    }
  }
  const inv = new Uint8Array(n * n)
  for (let r = 0; r < n; r++) inv.set(t.subarray(r * w + n, r * w + w), r * n)
  return inv
}

/** (rows x inner) * (inner x cols). */
function multiply (a: Uint8Array, b: Uint8Array, rows: number, inner: number, cols: number): Uint8Array {
  const out = new Uint8Array(rows * cols)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let v = 0
      for (let i = 0; i < inner; i++) v ^= gfMul(a[r * inner + i], b[i * cols + c])
      out[r * cols + c] = v
    }
  }
  return out
}

/** A small LRU over a Map (insertion order = recency). */
function cached<V> (cache: Map<string, V>, limit: number, key: string, make: () => V): V {
  let v = cache.get(key)
  if (v !== undefined) {
    cache.delete(key)
  } else {
    v = make()
    if (cache.size >= limit) cache.delete(cache.keys().next().value as string)
  }
  cache.set(key, v)
  return v
}

const matrices = new Map<string, Uint8Array>()

/** The (k+m) x k systematic coding matrix (top k rows = identity). */
function codingMatrix (k: number, m: number): Uint8Array {
  return cached(matrices, MATRIX_CACHE_ENTRIES, `${k},${m}`, () => {
    const n = k + m
    const vandermonde = new Uint8Array(n * k)
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < k; c++) vandermonde[r * k + c] = gfPow(r, c)
    }
    const topInverse = invert(vandermonde.subarray(0, k * k), k)
    if (topInverse === undefined) throw new ErasureError(`no coding matrix for k=${k}, m=${m}`)
    return multiply(vandermonde, topInverse, n, k, k)
  })
}

/** The m x k parity rows of the coding matrix (a cached view, stable identity). */
function parityRows (k: number, m: number): Uint8Array {
  return cached(matrices, MATRIX_CACHE_ENTRIES, `p${k},${m}`, () => codingMatrix(k, m).slice(k * k))
}

// ---- the kernel: outputs[r] = sum_j coeffs[r * n + j] * inputs[j] over `len` bytes ----------

export interface Kernel {
  readonly name: string
  mul (coeffs: Uint8Array, n: number, rows: number, inputs: Uint8Array[], outputs: Uint8Array[], len: number): void
}

const scratch = new Uint8Array(BLOCK_BYTES)
const scratch32 = new Uint32Array(scratch.buffer)

/** Per-coefficient views of MUL: BYTE_TABLES[c][x] = c * x. */
const BYTE_TABLES = Array.from({ length: 256 }, (_, c) => MUL.subarray(c << 8, (c << 8) + 256))

/**
 * Wide tables, WIDE[c][x] = c * low byte of x | (c * high byte of x) << 8, for x < 65536: two
 * lookups per 32-bit word instead of four. 128 KiB each, built on first use, at most
 * WIDE_TABLE_ENTRIES kept (LRU).
 */
const wideTables = new Map<string, Uint16Array>()

function wideTable (c: number): Uint16Array {
  return cached(wideTables, WIDE_TABLE_ENTRIES, String(c), () => {
    const t8 = BYTE_TABLES[c]
    const t = new Uint16Array(65536)
    for (let hi = 0; hi < 256; hi++) {
      const h = t8[hi] << 8
      for (let lo = 0; lo < 256; lo++) t[(hi << 8) | lo] = h | t8[lo]
    }
    return t
  })
}

/** dst[i] (^)= c * src[i + so - from] for words i in [from, to), two wide-table lookups per word. */
function mulWordsWide (t: Uint16Array, src: Uint32Array, so: number, dst: Uint32Array, from: number, to: number, xor: boolean): void {
  const d = so - from
  if (xor) {
    for (let i = from; i < to; i++) {
      const w = src[i + d]
      dst[i] ^= t[w & 0xffff] | (t[w >>> 16] << 16)
    }
  } else {
    for (let i = from; i < to; i++) {
      const w = src[i + d]
      dst[i] = t[w & 0xffff] | (t[w >>> 16] << 16)
    }
  }
}

/** As mulWordsWide with a 256-entry table: four lookups per word, nothing to build. */
function mulWordsNarrow (t: Uint8Array, src: Uint32Array, so: number, dst: Uint32Array, from: number, to: number, xor: boolean): void {
  const d = so - from
  if (xor) {
    for (let i = from; i < to; i++) {
      const w = src[i + d]
      dst[i] ^= t[w & 255] | (t[(w >>> 8) & 255] << 8) | (t[(w >>> 16) & 255] << 16) | (t[w >>> 24] << 24)
    }
  } else {
    for (let i = from; i < to; i++) {
      const w = src[i + d]
      dst[i] = t[w & 255] | (t[(w >>> 8) & 255] << 8) | (t[(w >>> 16) & 255] << 16) | (t[w >>> 24] << 24)
    }
  }
}

/** dst[i] (^)= src[i + so - from]: multiplication by 1. */
function copyWords (src: Uint32Array, so: number, dst: Uint32Array, from: number, to: number, xor: boolean): void {
  const d = so - from
  if (xor) for (let i = from; i < to; i++) dst[i] ^= src[i + d]
  else for (let i = from; i < to; i++) dst[i] = src[i + d]
}

/** Byte-wise dst[i] (^)= c * src[i] for bytes [from, to). */
function mulBytes (c: number, src: Uint8Array, dst: Uint8Array, from: number, to: number, xor: boolean): void {
  const t = BYTE_TABLES[c]
  if (xor) for (let i = from; i < to; i++) dst[i] ^= t[src[i]]
  else for (let i = from; i < to; i++) dst[i] = t[src[i]]
}

function words (a: Uint8Array): Uint32Array | undefined {
  return a.byteOffset % 4 === 0 ? new Uint32Array(a.buffer, a.byteOffset, a.byteLength >>> 2) : undefined
}

const typescriptKernel: Kernel = {
  name: 'typescript',
  mul (coeffs, n, rows, inputs, outputs, len) {
    const wordLen = len >>> 2
    const wide = len >= WIDE_MIN_BYTES
    const in32 = inputs.map(words)
    const out32 = outputs.map(o => words(o) as Uint32Array) // outputs are allocated here, aligned
    for (let start = 0; start < wordLen; start += BLOCK_BYTES >>> 2) {
      const end = Math.min(wordLen, start + (BLOCK_BYTES >>> 2))
      for (let j = 0; j < n; j++) {
        let src = in32[j]
        let so = start
        if (src === undefined) { // unaligned input: copy this block to an aligned scratch
          scratch.set(inputs[j].subarray(start << 2, end << 2))
          src = scratch32
          so = 0
        }
        for (let r = 0; r < rows; r++) {
          const c = coeffs[r * n + j]
          if (c === 0) {
            if (j === 0) out32[r].fill(0, start, end)
          } else if (c === 1) {
            copyWords(src, so, out32[r], start, end, j !== 0)
          } else if (wide) {
            mulWordsWide(wideTable(c), src, so, out32[r], start, end, j !== 0)
          } else {
            mulWordsNarrow(BYTE_TABLES[c], src, so, out32[r], start, end, j !== 0)
          }
        }
      }
    }
    for (let j = 0; j < n; j++) { // the tail bytes past the last whole word
      for (let r = 0; r < rows; r++) mulBytes(coeffs[r * n + j], inputs[j], outputs[r], wordLen << 2, len, j !== 0)
    }
  }
}

/** The addon's surface (node/data/native/erasure.c). */
interface NativeAddon {
  xsalsa20Xor?: (subkey: Uint8Array, nonce: Uint8Array, position: number, input: Uint8Array, output: Uint8Array) => void
  hsalsa20?: (key: Uint8Array, nonce16: Uint8Array) => Uint8Array
  initTables (k: number, rows: number, coeffs: Uint8Array): Uint8Array
  encodeData (len: number, k: number, rows: number, tables: Uint8Array, sources: Uint8Array[], targets: Uint8Array[]): void
  encodeLoop (len: number, k: number, rows: number, tables: Uint8Array, sources: Uint8Array[], targets: Uint8Array[], times: number): void
  /** Absent when the process exports no OpenSSL SHA256_* symbols (see erasure.c). */
  sha256Many?: (buffers: Uint8Array[], cuts: number[], prefix: number, callback: (err: Error | null, digests: Uint8Array) => void) => void
  /** Absent in addons built before it. */
  readSlice?: (file: string, offset: number, into: Uint8Array, callback: (err: (Error & { code?: string }) | null, whole: boolean) => void) => void
  /** Absent in addons built before it. */
  readSliceNow?: (fd: number, offset: number, into: Uint8Array) => boolean
  populate?: (bytes: Uint8Array) => void
  /** Absent as sha256Many is, and in addons built before it. */
  readBlock?: (file: string, into: Uint8Array, callback: (err: (Error & { code?: string }) | null, whole: boolean, digest?: Uint8Array) => void) => void
  /** Absent in addons built before it. */
  writeBlocks?: (dirs: string[], files: string[], tmps: string[], buffers: Uint8Array[], callback: (outcomes: Array<(Error & { code?: string }) | null>) => void) => void
  /** Absent in addons built before it. */
  writeBlock?: (dir: string, file: string, tmp: string, bytes: Uint8Array, callback: (err: (Error & { code?: string }) | null) => void) => void
  /** Absent when the process exports no OpenSSL EVP chacha20-poly1305, and in addons built before it (see erasure.c). */
  chachaOpen?: (key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, pieces: Uint8Array[], tag: Uint8Array) => boolean
  /** Present with chachaOpen. */
  chachaSeal?: (key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, pieces: Uint8Array[], out: Uint8Array) => void
  /** Absent as sha256Many is, and in addons built before it. */
  sha256Leaves?: (buffer: Uint8Array, leafBytes: number, whole: boolean, callback: (err: Error | null, digests: Uint8Array) => void) => void
}

function nativeKernel (addon: NativeAddon): Kernel {
  const tables = new WeakMap<Uint8Array, Uint8Array>() // per cached coefficient matrix
  return {
    name: 'isa-l',
    mul (coeffs, n, rows, inputs, outputs, len) {
      let t = tables.get(coeffs)
      if (t === undefined) {
        t = addon.initTables(n, rows, coeffs)
        tables.set(coeffs, t)
      }
      addon.encodeData(len, n, rows, t, inputs, outputs)
    }
  }
}

/** The addon path, relative to this file. */
const ADDON_PATH = './native/build/erasure.node'
/** The addon's asset name inside the single executable (scripts/build-bin.ts embeds it). */
const ADDON_ASSET = 'node/data/native/build/erasure.node'

/**
 * The addon module: the file beside this one, or, inside the single executable (no files beside
 * the code), the embedded asset written to a private temp dir, dlopen()ed and deleted (the
 * library stays mapped). Synchronous like require(): it runs once, as this module initialises.
 */
function requireAddon (): NativeAddon {
  if (!isSea()) return createRequire(import.meta.url)(ADDON_PATH) as NativeAddon
  const dir = mkdtempSync(join(tmpdir(), 'darkfs-addon-'))
  try {
    const file = join(dir, 'erasure.node')
    writeFileSync(file, new Uint8Array(getRawAsset(ADDON_ASSET)), { mode: 0o700 })
    const module = { exports: {} }
    process.dlopen(module, file)
    return module.exports as NativeAddon
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The addon's kernel, or why it is not in use: forced off, not built, or failed to load. */
function loadNative (): { addon?: NativeAddon, kernel?: Kernel, problem?: string } {
  if (process.env.DARKFS_ERASURE === 'typescript') return { problem: 'DARKFS_ERASURE=typescript' }
  try {
    const addon = requireAddon()
    return { addon, kernel: nativeKernel(addon) }
  } catch (err) { // not built (no libisal) or unloadable: the TypeScript kernel serves
    return { problem: `${ADDON_PATH} did not load (run node/data/native/build.sh): ${(err as Error).message}` }
  }
}

const native = loadNative()

// ---- the codec -----------------------------------------------------------------------------

/** The erasure API over one kernel; the module's own functions use the best one available. */
export interface ErasureCodec {
  readonly codec: string
  encode (data: Uint8Array, k: number, m: number): Uint8Array[]
  /**
   * encode, with the shards it makes (parity, zero-padded data) written into the caller's `out`
   * (at least encodeOutputBytes(data.length, k, m) bytes, 4-byte aligned, not overlapping
   * `data`) instead of fresh memory: the returned shards view `data` and `out`. Every byte of
   * those shards is written; bytes of `out` between and after them are left as they were.
   */
  encodeInto (data: Uint8Array, k: number, m: number, out: Uint8Array): Uint8Array[]
  reconstruct (shards: Array<Uint8Array | undefined>, k: number, m: number): Uint8Array[]
  /**
   * Shards `wanted` (indices) only, from at least k present: the present ones as given, the
   * missing ones rebuilt, and no other shard computed or kept (a data shard missing beside a
   * wanted parity shard is rebuilt on the way, as parity needs every data shard). Repair
   * wants one or two of the n - k missing shards. The same checks and errors as reconstruct.
   */
  reconstructSome (shards: Array<Uint8Array | undefined>, k: number, m: number, wanted: number[]): Map<number, Uint8Array>
  decode (shards: Array<Uint8Array | undefined>, k: number, m: number, length: number, into?: Uint8Array): Uint8Array
}

/** Bytes per shard for `length` bytes in k data shards: ceil(length / k), at least 1. */
export function shardSize (length: number, k: number): number {
  checkLength(length)
  checkParams(k, 0)
  return Math.max(1, Math.ceil(length / k))
}

function checkParams (k: number, m: number): void {
  if (!Number.isSafeInteger(k) || k < 1) throw new ErasureError(`k must be an integer >= 1, got ${k}`)
  if (!Number.isSafeInteger(m) || m < 0) throw new ErasureError(`m must be an integer >= 0, got ${m}`)
  if (k + m > MAX_SHARDS) throw new ErasureError(`k + m must be at most ${MAX_SHARDS}, got ${k} + ${m}`)
}

function checkLength (length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) throw new ErasureError(`length must be an integer >= 0, got ${length}`)
}

/**
 * `count` shards of `size` bytes in one allocation, SHARD_ALIGN-aligned, left unfilled: only
 * for shards every byte of which is written before anyone sees them (the kernels overwrite
 * every output byte). Zeroing, then overwriting, fresh memory cost more than the coding itself
 * (scripts/bench/erasure.ts); one allocation instead of one per shard halves the page faults
 * and the external-memory GC pressure. Plain Uint8Arrays (a Buffer's `slice` shares memory).
 */
function unfilledShards (count: number, size: number): Uint8Array[] {
  if (count === 0) return []
  const stride = Math.ceil(size / SHARD_ALIGN) * SHARD_ALIGN
  const buf = Buffer.allocUnsafeSlow(count * stride)
  return Array.from({ length: count }, (_, i) => new Uint8Array(buf.buffer, buf.byteOffset + i * stride, size))
}

/**
 * Bytes of output memory encodeInto needs for `length` bytes of data in k + m shards: the parity
 * and the zero-padded data shards (the short last one, and any past the end), each starting on a
 * multiple of SHARD_ALIGN bytes. 0 when there is nothing to make (m = 0, length a multiple of k).
 */
export function encodeOutputBytes (length: number, k: number, m: number): number {
  checkParams(k, m)
  const size = shardSize(length, k)
  const whole = Math.min(k, Math.floor(length / size))
  return (k - whole + m) * Math.ceil(size / SHARD_ALIGN) * SHARD_ALIGN
}

/**
 * `count` shards of `size` bytes laid out in the caller's `out` as unfilledShards lays them out in
 * its own allocation. Refuses (ErasureError) an `out` that is too small, not on a 4-byte boundary
 * (the TypeScript kernel writes 32-bit words), or sharing a byte with `data`: the kernels would
 * read bytes they had just overwritten.
 */
function shardsIn (out: Uint8Array, data: Uint8Array, count: number, size: number): Uint8Array[] {
  if (!(out instanceof Uint8Array)) throw new ErasureError('out must be a Uint8Array')
  const stride = Math.ceil(size / SHARD_ALIGN) * SHARD_ALIGN
  if (out.byteLength < count * stride) throw new ErasureError(`out has ${out.byteLength} bytes, the shards need ${count * stride} (encodeOutputBytes)`)
  if (out.byteOffset % 4 !== 0) throw new ErasureError(`out must start on a 4-byte boundary of its buffer (byteOffset ${out.byteOffset})`)
  if (count > 0 && out.buffer === data.buffer && out.byteOffset < data.byteOffset + data.byteLength && data.byteOffset < out.byteOffset + count * stride) {
    throw new ErasureError('out overlaps data: the shards would overwrite the bytes they are coded from')
  }
  return Array.from({ length: count }, (_, i) => out.subarray(i * stride, i * stride + size))
}

/** `length` bytes left unfilled (the same caveat as unfilledShards), a plain Uint8Array. */
function unfilledBytes (length: number): Uint8Array {
  const buf = Buffer.allocUnsafeSlow(length)
  return new Uint8Array(buf.buffer, buf.byteOffset, length)
}

/**
 * `length` bytes, not zeroed, for a chunk about to be filled on the event loop (decode's output,
 * a chunk read's landing): its pages faulted in at once, not one by one under the copies into it
 * (erasure.c populate).
 */
export function chunkBytes (length: number): Uint8Array {
  const out = unfilledBytes(length)
  native.addon?.populate?.(out)
  return out
}

function createCodec (kernel: Kernel): ErasureCodec {
  const decoders = new Map<string, { rows: Uint8Array, sources: number[] }>()

  function encode (data: Uint8Array, k: number, m: number): Uint8Array[] {
    return encodeTo(data, k, m, undefined)
  }

  function encodeInto (data: Uint8Array, k: number, m: number, out: Uint8Array): Uint8Array[] {
    return encodeTo(data, k, m, out)
  }

  /** encode; with `out`, the shards it makes are views of `out` (checked: big enough, aligned, apart from `data`). */
  function encodeTo (data: Uint8Array, k: number, m: number, out: Uint8Array | undefined): Uint8Array[] {
    checkParams(k, m)
    if (!(data instanceof Uint8Array)) throw new ErasureError('data must be a Uint8Array')
    const size = shardSize(data.length, k)
    const whole = Math.min(k, Math.floor(data.length / size)) // data shards that are views of `data`
    // the zero-padded data shards (the last, or past the end) and the parity: one allocation,
    // or the caller's `out`
    const made = out === undefined ? unfilledShards(k - whole + m, size) : shardsIn(out, data, k - whole + m, size)
    const shards: Uint8Array[] = []
    for (let j = 0; j < k; j++) {
      const start = j * size
      if (j < whole) {
        shards.push(data.subarray(start, start + size))
      } else {
        const padded = made[j - whole]
        const tail = start < data.length ? data.subarray(start) : data.subarray(0, 0)
        padded.set(tail)
        padded.fill(0, tail.length)
        shards.push(padded)
      }
    }
    if (m > 0) {
      const parity = made.slice(k - whole)
      kernel.mul(parityRows(k, m), k, m, shards, parity, size)
      shards.push(...parity)
    }
    return shards
  }

  /** Checks the shard list; returns the common shard length and the indices present. */
  function survey (shards: Array<Uint8Array | undefined>, k: number, m: number): { size: number, present: number[] } {
    checkParams(k, m)
    if (!Array.isArray(shards)) throw new ErasureError('shards must be an array')
    if (shards.length > k + m) throw new ErasureError(`got ${shards.length} shards for k=${k}, m=${m} (at most ${k + m})`)
    const present: number[] = []
    let size = -1
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i]
      if (s === undefined || s === null) continue
      if (!(s instanceof Uint8Array)) throw new ErasureError(`shard ${i} is not a Uint8Array`)
      if (size === -1) size = s.length
      else if (s.length !== size) throw new ErasureError(`shard ${i} has ${s.length} bytes, shard ${present[0]} has ${size}: shards must be the same length`)
      present.push(i)
    }
    if (present.length < k) throw new ErasureError(`${present.length} of ${k + m} shards present, ${k} needed to rebuild (k=${k}, m=${m})`)
    return { size, present }
  }

  /**
   * Rebuilds the missing data shards (indices `missing`, in order) from the first k present
   * shards into `targets` (one per missing shard, `size` bytes each).
   */
  function rebuildData (shards: Array<Uint8Array | undefined>, k: number, m: number, size: number, present: number[], missing: number[], targets: Uint8Array[]): void {
    const used = present.slice(0, k) // every present data shard, then parity: `missing` follows from it
    // the rows depend on the shards used and on the ones rebuilt (reconstructSome rebuilds a subset)
    const decoder = cached(decoders, DECODE_CACHE_ENTRIES, `${k},${m}:${used.join(',')}>${missing.join(',')}`, () => {
      const matrix = codingMatrix(k, m)
      const sub = new Uint8Array(k * k)
      used.forEach((row, i) => sub.set(matrix.subarray(row * k, row * k + k), i * k))
      const inv = invert(sub, k)
      if (inv === undefined) throw new ErasureError(`singular decoding matrix for k=${k}, m=${m}, shards ${used.join(',')}`)
      // only the rows for missing data shards are needed
      const rows = new Uint8Array(missing.length * k)
      missing.forEach((j, i) => rows.set(inv.subarray(j * k, j * k + k), i * k))
      return { rows, sources: used }
    })
    kernel.mul(decoder.rows, k, missing.length, decoder.sources.map(i => shards[i] as Uint8Array), targets, size)
  }

  /** The indices in [from, to) whose shard is absent. */
  function absent (shards: Array<Uint8Array | undefined>, from: number, to: number): number[] {
    const out: number[] = []
    for (let i = from; i < to; i++) if (shards[i] == null) out.push(i)
    return out
  }

  function reconstruct (shards: Array<Uint8Array | undefined>, k: number, m: number): Uint8Array[] {
    const { size, present } = survey(shards, k, m)
    const missingData = absent(shards, 0, k)
    const missingParity = absent(shards, k, k + m)
    const out = Array.from({ length: k + m }, (_, i) => shards[i]) as Uint8Array[]
    const made = unfilledShards(missingData.length + missingParity.length, size) // every rebuilt shard: one allocation
    if (missingData.length > 0) {
      const rebuilt = made.slice(0, missingData.length)
      rebuildData(shards, k, m, size, present, missingData, rebuilt)
      missingData.forEach((j, i) => { out[j] = rebuilt[i] })
    }
    if (missingParity.length > 0) {
      const parity = parityRows(k, m)
      const rows = missingParity.length === m
        ? parity
        : cached(matrices, MATRIX_CACHE_ENTRIES, `p${k},${m}:${missingParity.join(',')}`, () => {
          const r = new Uint8Array(missingParity.length * k)
          missingParity.forEach((p, i) => r.set(parity.subarray((p - k) * k, (p - k + 1) * k), i * k))
          return r
        })
      const rebuilt = made.slice(missingData.length)
      kernel.mul(rows, k, missingParity.length, out.slice(0, k), rebuilt, size)
      missingParity.forEach((p, i) => { out[p] = rebuilt[i] })
    }
    return out
  }

  function reconstructSome (shards: Array<Uint8Array | undefined>, k: number, m: number, wanted: number[]): Map<number, Uint8Array> {
    const { size, present } = survey(shards, k, m)
    if (!Array.isArray(wanted) || wanted.some(j => !Number.isInteger(j) || j < 0 || j >= k + m)) throw new ErasureError(`wanted must be shard indices below ${k + m}`)
    const want = [...new Set(wanted)].sort((a, b) => a - b)
    const missingParity = want.filter(j => j >= k && shards[j] == null)
    // parity is coded from every data shard: with a parity shard to rebuild, every missing data
    // shard is rebuilt too (kept only when wanted); else only the data shards wanted
    const missingData = missingParity.length > 0 ? absent(shards, 0, k) : want.filter(j => j < k && shards[j] == null)
    const made = unfilledShards(missingData.length + missingParity.length, size)
    const data = Array.from({ length: k }, (_, i) => shards[i]) as Uint8Array[]
    if (missingData.length > 0) {
      const rebuilt = made.slice(0, missingData.length)
      rebuildData(shards, k, m, size, present, missingData, rebuilt)
      missingData.forEach((j, i) => { data[j] = rebuilt[i] })
    }
    const out = new Map<number, Uint8Array>()
    if (missingParity.length > 0) {
      const parity = parityRows(k, m)
      const rows = cached(matrices, MATRIX_CACHE_ENTRIES, `p${k},${m}:${missingParity.join(',')}`, () => {
        const r = new Uint8Array(missingParity.length * k)
        missingParity.forEach((p, i) => r.set(parity.subarray((p - k) * k, (p - k + 1) * k), i * k))
        return r
      })
      const rebuilt = made.slice(missingData.length)
      kernel.mul(rows, k, missingParity.length, data, rebuilt, size)
      missingParity.forEach((p, i) => out.set(p, rebuilt[i]))
    }
    for (const j of want) if (!out.has(j)) out.set(j, j < k ? data[j] : shards[j] as Uint8Array)
    return out
  }

  function decode (shards: Array<Uint8Array | undefined>, k: number, m: number, length: number, into?: Uint8Array): Uint8Array {
    checkLength(length)
    const { size, present } = survey(shards, k, m)
    if (length > size * k) throw new ErasureError(`length ${length} exceeds the ${k} data shards of ${size} bytes`)
    if (into !== undefined && into.byteLength !== length) throw new ErasureError(`into has ${into.byteLength} bytes, not ${length}`)
    // every byte is copied or rebuilt below (a shard that already lies in `into` at its place stays)
    const out = into ?? chunkBytes(length)
    const missing = absent(shards, 0, k)
    if (missing.length > 0) {
      // a missing shard that lies whole inside `out` at a word-aligned offset is rebuilt in
      // place; the others (the short last one, and unaligned ones for the TypeScript kernel)
      // into a scratch allocation, copied below
      const inPlace = (j: number): boolean => (j + 1) * size <= length && (j * size) % 4 === 0
      const scratch = unfilledShards(missing.filter(j => !inPlace(j)).length, size)
      let s = 0
      const targets = missing.map(j => inPlace(j) ? out.subarray(j * size, (j + 1) * size) : scratch[s++])
      rebuildData(shards, k, m, size, present, missing, targets)
      missing.forEach((j, i) => { if (!inPlace(j) && j * size < length) out.set(targets[i].subarray(0, Math.min(size, length - j * size)), j * size) })
    }
    for (let j = 0, at = 0; at < length; j++, at += size) {
      const shard = shards[j]
      // a shard that arrived into its place in `into` (a chunk read's landing) is not copied onto itself
      if (shard != null && !(shard.buffer === out.buffer && shard.byteOffset === out.byteOffset + at)) out.set(shard.subarray(0, Math.min(size, length - at)), at)
    }
    return out
  }

  return { codec: kernel.name, encode, encodeInto, reconstruct, reconstructSome, decode }
}

/** Both implementations, for tests and benchmarks; `native` is undefined when the addon is absent. */
export const codecs: { typescript: ErasureCodec, native: ErasureCodec | undefined } = {
  typescript: createCodec(typescriptKernel),
  native: native.kernel === undefined ? undefined : createCodec(native.kernel)
}

const best = codecs.native ?? codecs.typescript

/**
 * The kernels beneath `codecs` (outputs[r] = sum_j coeffs[r * n + j] * inputs[j] over `len`
 * bytes; every output byte overwritten; outputs on 4-byte boundaries, inputs anywhere; the
 * native kernel caches its tables per `coeffs` array, so pass the same array for the same
 * matrix), for codes built on this one's field and matrices (node/data/clay.ts).
 */
export const kernels: { typescript: Kernel, native: Kernel | undefined } = { typescript: typescriptKernel, native: native.kernel }

/**
 * The field and matrices of this codec, for codes built on it (node/data/clay.ts): products,
 * inverses, the (k+m) x k systematic coding matrix (cached: do not modify it), matrix inverse
 * (undefined when singular) and product.
 */
export const gf256 = { mul: gfMul, inv: gfInv, codingMatrix, invert, multiply }

/** Which implementation the functions below use: 'isa-l' (native) or 'typescript'. */
export const codec: string = best.codec

/** Why the native codec is not in use (undefined when it is), for status reports. */
export const codecNote: string | undefined = native.problem

/**
 * Splits `data` into k data shards of shardSize(data.length, k) bytes (views of `data`, the
 * last one a zero-padded copy) and computes m parity shards: k + m shards in all. The shards
 * made here (padded and parity) are views of one fresh allocation, each its own bytes.
 */
export function encode (data: Uint8Array, k: number, m: number): Uint8Array[] {
  return best.encode(data, k, m)
}

/** Shards from ShardPool.encode, and the way to give their memory back. */
export interface PooledShards {
  /** As encode's: views of `data` (whole data shards) and of the pool's memory (parity, padded). */
  readonly shards: Uint8Array[]
  /**
   * Gives the pool's memory back for the next encode. Every shard made in it (parity, padded
   * data) is detached at once, in whoever's hands it is: its length is 0 from then on, a read of
   * it gives undefined and its methods throw TypeError, so a holder that was not done fails
   * loudly instead of reading another chunk's bytes. Shards that view `data` are untouched.
   * Call it only once nothing reads the shards any more, native work included: a threadpool job
   * that was given one (sha256Many, writeBlock, fs writes, a socket write) reads through a raw
   * pointer that a detach does not stop; wait for its promise to settle first. A second call
   * throws ErasureError.
   */
  release (): void
}

/**
 * Recycled output memory for encode (issue 15 item 7). An encode that makes its parity in fresh
 * memory pays for that memory more than for the coding: the kernel's page faults and zeroing of
 * new pages, then the collector's work to free it (scripts/bench/erasure.ts: ~0.1 of ISA-L's
 * speed, ISA-L itself ~0.4 of the samples). A pool hands out the memory of released encodes
 * again (same output size), so a caller that encodes, uses the shards and releases them codes
 * into memory already mapped and in cache, as ISA-L's own benchmark does.
 *
 * Ownership: each encode's output is one ArrayBuffer that belongs to its PooledShards until
 * release(); the pool never hands out a buffer that is not released, and release() detaches the
 * released buffer (ArrayBuffer.prototype.transfer: the memory moves, without a copy, into a new
 * ArrayBuffer the pool keeps), so no view made before the release can see what a later encode
 * writes there. At most `maxFreeBytes` of released memory is kept; the rest goes to the collector.
 * Memory never released is simply collected, as encode's: forgetting release() costs speed only.
 */
export class ShardPool {
  /** Released buffers ready for reuse, by byte length. */
  private readonly free = new Map<number, ArrayBuffer[]>()
  private freeBytes = 0
  private readonly maxFreeBytes: number
  private readonly codec: ErasureCodec
  /** made: fresh buffers allocated; reused: encodes into a released one; dropped: released past maxFreeBytes. */
  readonly counters = { made: 0, reused: 0, released: 0, dropped: 0 }

  constructor (opts: { maxFreeBytes?: number, codec?: ErasureCodec } = {}) {
    this.maxFreeBytes = opts.maxFreeBytes ?? 16 << 20
    this.codec = opts.codec ?? best
  }

  /** Bytes of released memory the pool holds for reuse. */
  get freeByteCount (): number { return this.freeBytes }

  /** encode(data, k, m), the shards it makes written into pooled memory. */
  encode (data: Uint8Array, k: number, m: number): PooledShards {
    const bytes = encodeOutputBytes(data.length, k, m)
    if (bytes === 0) { // nothing made: the shards are views of `data`, which is not the pool's
      const shards = this.codec.encode(data, k, m)
      let done = false
      return { shards, release: () => { if (done) throw new ErasureError('shards released twice'); done = true } }
    }
    let owned: ArrayBuffer | undefined = this.take(bytes)
    let shards: Uint8Array[]
    try {
      shards = this.codec.encodeInto(data, k, m, new Uint8Array(owned))
    } catch (err) {
      this.give(owned.transfer())
      throw err
    }
    return {
      shards,
      release: () => {
        if (owned === undefined) throw new ErasureError('shards released twice')
        const mine = owned
        owned = undefined
        this.counters.released++
        this.give(mine.transfer()) // detaches `mine`, and with it every shard handed out
      }
    }
  }

  private take (bytes: number): ArrayBuffer {
    const list = this.free.get(bytes)
    const ab = list?.pop()
    if (ab !== undefined) {
      this.freeBytes -= bytes
      if (list!.length === 0) this.free.delete(bytes)
      this.counters.reused++
      return ab
    }
    this.counters.made++
    return new ArrayBuffer(bytes)
  }

  private give (ab: ArrayBuffer): void {
    if (this.freeBytes + ab.byteLength > this.maxFreeBytes) { this.counters.dropped++; return }
    let list = this.free.get(ab.byteLength)
    if (list === undefined) { list = []; this.free.set(ab.byteLength, list) }
    list.push(ab)
    this.freeBytes += ab.byteLength
  }
}

/**
 * Given at least k present shards of one length (missing ones undefined, by index), returns
 * all k + m shards: the present ones as given, the missing ones rebuilt. Throws ErasureError
 * when fewer than k are present, lengths differ, or k/m are out of range.
 */
export function reconstruct (shards: Array<Uint8Array | undefined>, k: number, m: number): Uint8Array[] {
  return best.reconstruct(shards, k, m)
}

/** Shards `wanted` alone, present or rebuilt (ErasureCodec.reconstructSome). */
export function reconstructSome (shards: Array<Uint8Array | undefined>, k: number, m: number, wanted: number[]): Map<number, Uint8Array> {
  return best.reconstructSome(shards, k, m, wanted)
}

/** The original `length` bytes from any k shards (no arithmetic when the data shards are all present). */
export function decode (shards: Array<Uint8Array | undefined>, k: number, m: number, length: number, into?: Uint8Array): Uint8Array {
  return best.decode(shards, k, m, length, into)
}

/**
 * The sha256 digests of `buffers`, hashed off the main thread by the addon: one threadpool job
 * per part of `buffers` cut at the indices `cuts` (ascending, in 1..n-1), so the parts hash in
 * parallel. With `prefix` > 0 one more digest follows: that of buffers[0]'s first `prefix`
 * bytes, from the same pass. undefined when the addon (or its hashing) is absent: hash in
 * JavaScript then. The buffers must not be written to (or their ArrayBuffer transferred) until
 * the promise settles: the threads read them in place, without a copy.
 */
export const sha256Many: ((buffers: Uint8Array[], cuts: number[], prefix: number) => Promise<Uint8Array[]>) | undefined = (() => {
  const many = native.addon?.sha256Many
  if (many === undefined) return undefined
  return async (buffers: Uint8Array[], cuts: number[], prefix: number) => await new Promise<Uint8Array[]>((resolve, reject) => {
    many(buffers, cuts, prefix, (err, digests) => {
      if (err !== null) reject(err)
      else resolve(Array.from({ length: digests.length / 32 }, (_, i) => digests.subarray(32 * i, 32 * i + 32)))
    })
  })
})()

/**
 * The Merkle tree of merkle.ts over `buffer`'s `leafBytes` leaves, hashed off the main thread by
 * the addon in one job and one pass, without a copy: the leaf hashes (32 bytes each, one after
 * another), the root, and with `whole` the buffer's own sha256 (its raw CID's digest), from the
 * same pass. undefined when the addon (or this function of it) is absent. `buffer` must not
 * change until the promise settles.
 */
export const sha256Leaves: ((buffer: Uint8Array, leafBytes: number, whole: boolean) => Promise<{ hashes: Uint8Array, root: Uint8Array, whole?: Uint8Array }>) | undefined = (() => {
  const leaves = native.addon?.sha256Leaves
  if (leaves === undefined) return undefined
  return async (buffer: Uint8Array, leafBytes: number, whole: boolean) => await new Promise((resolve, reject) => {
    leaves(buffer, leafBytes, whole, (err, digests) => {
      if (err !== null) { reject(err); return }
      const n = digests.length / 32 - (whole ? 2 : 1)
      resolve({
        hashes: digests.subarray(0, 32 * n),
        root: digests.slice(32 * n, 32 * n + 32),
        ...(whole ? { whole: digests.subarray(32 * n + 32) } : {})
      })
    })
  })
})()

/**
 * A block file written durably in one threadpool job (store.ts writeBlock: `bytes` to `tmp` in
 * the shard directory `dir`, made when missing, renamed to `file`, the file and `dir` synced);
 * rejects with the failing call's errno as `code` (ENOSPC...). undefined without the addon (or
 * with one built before it): store.ts makes the same calls through node:fs/promises then.
 */
export const writeBlockNative: ((dir: string, file: string, tmp: string, bytes: Uint8Array) => Promise<void>) | undefined = (() => {
  const write = native.addon?.writeBlock
  if (write === undefined) return undefined
  return async (dir: string, file: string, tmp: string, bytes: Uint8Array) => { await new Promise<void>((resolve, reject) => { write(dir, file, tmp, bytes, err => { if (err !== null) reject(err); else resolve() }) }) }
})()

/**
 * Block files written durably as one group commit in one threadpool job (store.ts BlockWriter):
 * every block written to its `tmp` and renamed to its `file` (its shard directory `dir` made when
 * missing), then each file synced, then each distinct directory synced once. Resolves with one
 * outcome per block: null once its file and directory are synced, or the error of the call that
 * failed it (with the errno as `code`: ENOSPC...), the others unaffected. undefined without the
 * addon (or with one built before it).
 */
export const writeBlocksNative: ((blocks: Array<{ dir: string, file: string, tmp: string, bytes: Uint8Array }>) => Promise<Array<(Error & { code?: string }) | null>>) | undefined = (() => {
  const write = native.addon?.writeBlocks
  if (write === undefined) return undefined
  return async (blocks) => await new Promise(resolve => {
    write(blocks.map(b => b.dir), blocks.map(b => b.file), blocks.map(b => b.tmp), blocks.map(b => b.bytes), resolve)
  })
})()

/**
 * Fill `into` with the bytes of `file` from `offset` in one threadpool job (open, pread, close):
 * true when it was filled, false when the file ends first; rejects with the errno as `code`
 * (ENOENT...). undefined without the addon (or with one built before it).
 */
export const readSliceNative: ((file: string, offset: number, into: Uint8Array) => Promise<boolean>) | undefined = (() => {
  const read = native.addon?.readSlice
  if (read === undefined) return undefined
  return async (file: string, offset: number, into: Uint8Array) => await new Promise<boolean>((resolve, reject) => { read(file, offset, into, (err, whole) => { if (err !== null) reject(err); else resolve(whole) }) })
})()

/**
 * Fill `into` with the first bytes of `file`, as readSliceNative from offset 0, and, when every
 * byte was read, hash them in the same threadpool job: `digest` is their sha256 (undefined when
 * the file ends first). Rejects with the errno as `code` (ENOENT...). undefined without the
 * addon, without OpenSSL's SHA256_* in the process, or with an addon built before it.
 */
export const readBlockNative: ((file: string, into: Uint8Array) => Promise<{ whole: boolean, digest?: Uint8Array }>) | undefined = (() => {
  const read = native.addon?.readBlock
  if (read === undefined) return undefined
  return async (file: string, into: Uint8Array) => await new Promise<{ whole: boolean, digest?: Uint8Array }>((resolve, reject) => {
    read(file, into, (err, whole, digest) => { if (err !== null) reject(err); else resolve({ whole, digest }) })
  })
})()

/**
 * Fill `into` with the bytes of open file `fd` from `offset`, from the page cache alone, on this
 * thread (preadv2 RWF_NOWAIT: it never waits for the disk): true when every byte was there;
 * false when some were not, the file ends first, or RWF_NOWAIT is not taken (then read through
 * readSliceNative). undefined without the addon (or with one built before it).
 */
export const readSliceNowNative: ((fd: number, offset: number, into: Uint8Array) => boolean) | undefined = native.addon?.readSliceNow

/**
 * XSalsa20 in the addon (erasure.c), for pnet's cipher (node/net/xsalsa20.ts): `hsalsa20` makes
 * the subkey of a 32-byte key and a 24-byte nonce's first 16 bytes; `xor` XORs `input` into
 * `output` with the Salsa20 key stream of (subkey, the nonce's last 8 bytes) from stream byte
 * `position` on. undefined without the addon (or with an addon built before it).
 */
export const xsalsa20Native: { hsalsa20: (key: Uint8Array, nonce16: Uint8Array) => Uint8Array, xor: (subkey: Uint8Array, nonce8: Uint8Array, position: number, input: Uint8Array, output: Uint8Array) => void } | undefined = (() => {
  const a = native.addon
  if (a?.xsalsa20Xor === undefined || a.hsalsa20 === undefined) return undefined
  return { hsalsa20: a.hsalsa20, xor: a.xsalsa20Xor }
})()

/**
 * ChaCha20-Poly1305 (Noise's AEAD) on the addon, OpenSSL's EVP underneath (erasure.c): `open`
 * decrypts the ciphertext `pieces` (one after another) in place and says whether `tag` matched
 * (when not, the pieces hold garbage); `seal` encrypts `pieces` into `out` (their length + 16:
 * the ciphertext, then the tag). undefined without the addon or the EVP functions.
 */
export const chacha20Poly1305Native: { open: (key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, pieces: Uint8Array[], tag: Uint8Array) => boolean, seal: (key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, pieces: Uint8Array[], out: Uint8Array) => void } | undefined = (() => {
  const a = native.addon
  if (a?.chachaOpen === undefined || a.chachaSeal === undefined) return undefined
  return { open: a.chachaOpen, seal: a.chachaSeal }
})()

/**
 * For benchmarks (scripts/bench/erasure.ts): ISA-L alone, the speed the native codec is held
 * to. Returns a function that runs ec_encode_data `times` times in one native call on buffers
 * allocated once, with the coefficients the codec uses for the same work: the m parity rows of
 * (k, m) to encode a chunk of `length` bytes, or, with `lost` (data shard indices), the decoding
 * rows that rebuild those shards from the first k shards left. Nothing around it: no argument
 * checks, allocation, N-API crossing per call or matrix setup. undefined without the addon.
 */
export function isalBaseline (k: number, m: number, length: number, lost: number[] = []): ((times: number) => void) | undefined {
  const addon = native.addon
  if (addon === undefined) return undefined
  checkParams(k, m)
  const size = shardSize(length, k)
  let coeffs: Uint8Array
  let rows: number
  if (lost.length === 0) {
    coeffs = parityRows(k, m)
    rows = m
  } else {
    if (lost.length > m || lost.some(j => !Number.isInteger(j) || j < 0 || j >= k)) throw new ErasureError(`lost must be at most ${m} data shard indices below ${k}`)
    const used = Array.from({ length: k + m }, (_, i) => i).filter(i => !lost.includes(i)).slice(0, k)
    const matrix = codingMatrix(k, m)
    const sub = new Uint8Array(k * k)
    used.forEach((row, i) => sub.set(matrix.subarray(row * k, row * k + k), i * k))
    const inv = invert(sub, k) as Uint8Array // a Vandermonde-derived code: every k rows are independent
    coeffs = new Uint8Array(lost.length * k)
    lost.forEach((j, i) => coeffs.set(inv.subarray(j * k, j * k + k), i * k))
    rows = lost.length
  }
  const tables = addon.initTables(k, rows, coeffs)
  // laid out as the codec's own work: the sources back to back in one buffer (a chunk's data
  // shards are views of the chunk), the targets on SHARD_ALIGN strides in one ArrayBuffer (as
  // encodeInto and ShardPool lay them out), so alignment and 4 KiB aliasing are alike in both
  const chunk = new Uint8Array(k * size)
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 167 + 13) & 255
  const sources = Array.from({ length: k }, (_, j) => chunk.subarray(j * size, (j + 1) * size))
  const stride = Math.ceil(size / SHARD_ALIGN) * SHARD_ALIGN
  const out = new ArrayBuffer(rows * stride)
  const targets = Array.from({ length: rows }, (_, r) => new Uint8Array(out, r * stride, size))
  return (times) => { addon.encodeLoop(size, k, rows, tables, sources, targets, times) }
}
