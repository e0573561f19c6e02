// Bytes <-> chunks <-> erasure fragments, and the manifest that names a file version
// (DESIGN.md §2). Pure apart from hashing: no I/O here.
//
// A chunk is a fixed-offset slice of a file (CHUNK_SIZE), named by its CIDv1 raw sha256.
// It is coded with a systematic Reed–Solomon code into k data + m parity fragments, each a
// raw block with its own CID. With k = 1 the fragments are m + 1 copies of the chunk itself
// (one CID). A run of zeros nobody wrote is a hole: `cid: null`, stored nowhere.
//
// Manifest versions: v1 lists one ref per chunk (a hole is one chunk long). v2 lets one hole
// ref span many chunks, so a sparse file costs manifest bytes (and memory) in proportion to
// the data it holds, not to its length: `truncate -s 1T` is one ref, not a million. Writers
// use v1 whenever no hole spans more than one chunk, so older readers keep reading those.
// v3 is v2 whose data refs may name a Clay code (ChunkRef.clay, clay.ts): written only when a
// chunk is Clay-coded (the codec gate, ChunkService.codec), so an older host, which refuses a
// version it does not know, never reads a Clay chunk as a Reed–Solomon one.
import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { SHA2_256, cidOf, matches, matchesOffThread } from './store.ts'
import * as erasure from './erasure.ts'
import { ClayCode } from './clay.ts'
import { HASH_BYTES, LEAF_BYTES, leafCount, merkleRoot } from './merkle.ts'

/** Fixed chunk size: 1 MiB. */
export const CHUNK_SIZE = 1 << 20
/** Largest manifest block accepted (decoding bound): 16 MiB describes ~60 GiB files. */
export const MAX_MANIFEST_BYTES = 16 << 20
/** Manifest versions this code reads (see the top of this file). */
export const MANIFEST_VERSIONS = [1, 2, 3] as const
/** Files up to this size live inline in their write op, not in chunks. */
export const INLINE_MAX = 4096

export interface ChunkRef {
  offset: number
  size: number
  /** The chunk's CID (raw sha256), or null for a hole (all zeros). */
  cid: CID | null
  k: number
  m: number
  /** k + m fragment CIDs, data fragments first. Equal to [cid] * (m+1) when k = 1. */
  fragments: CID[]
  /**
   * The Merkle roots (merkle.ts) of the k data fragments, in order (with k = 1: of the chunk),
   * so a small read checks a few leaves of one against its root without the rest (issue 15
   * item 3; ChunkService.readRange). Absent for holes and in manifests written before them:
   * such chunks are read whole, as before. Older readers ignore the field.
   */
  roots?: Uint8Array[]
  /**
   * The placement rule the chunk's fragments follow (issue 14 item 4): PLACEMENT_BALANCED for
   * chunks written since hosts place by capacity-weighted rendezvous (keeper/balance.ts);
   * absent: the k + m XOR-closest members (manifests written before it, holes, manifests
   * themselves). Every host ranks a chunk's holders by the rule its own ref names, so chunks
   * placed under the old rule stay where they are and readable, and only new chunks follow the
   * new one (keeper/placement.ts placementPolicy rank).
   */
  rule?: typeof PLACEMENT_BALANCED
  /**
   * d of the Clay code (clay.ts: k < d < k + m) the chunk's fragments are coded with; absent:
   * Reed–Solomon (erasure.ts). Only in v3 manifests. The data fragments are the chunk's bytes
   * as with Reed–Solomon (systematic), cut at ClayCode.fragmentSize(size), not shardSize; roots,
   * where recorded, are those of all k + m fragments (a repair checks parity sub-chunks too).
   */
  clay?: number
}

/** ChunkRef.rule of a chunk placed by capacity-weighted rendezvous over every member. */
export const PLACEMENT_BALANCED = 1

export interface Manifest {
  v: 1 | 2 | 3
  size: number
  chunkSize: number
  chunks: ChunkRef[]
}

export interface EncodedChunk {
  ref: ChunkRef
  /** Distinct fragment blocks (with k = 1 there is just one: the chunk). */
  blocks: Array<{ cid: CID, bytes: Uint8Array }>
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError'
}

/**
 * Cut-and-code one chunk of a file, on the calling thread. Hashing dominates (sha256 of the chunk
 * and of every fragment: 2.5x the chunk's bytes at 4+2, against one pass of the codec), so the
 * write path uses encodeChunkAsync; this one serves where a result is needed at once.
 */
export function encodeChunk (bytes: Uint8Array, offset: number, k: number, m: number, clay?: number): EncodedChunk {
  if (k === 1) return replicated(bytes, offset, cidOf(bytes), m)
  const shards = clay !== undefined ? clayCode(k, m, clay).encode(bytes) : erasure.encode(bytes, k, m)
  const head = headPrefix(bytes, shards)
  const h = createHash('sha256').update(bytes.subarray(0, head))
  const digests = shards.map((s, j) => j === 0 && head > 0 ? h.copy().digest() : createHash('sha256').update(s).digest())
  return coded(bytes, offset, k, m, shards, h.update(bytes.subarray(head)).digest(), digests, clay)
}

/** The Clay codes in use, by `${k}+${m}/${d}` (a handful: one per network shape), at most CLAY_CODES_MAX. */
const clayCodes = new Map<string, ClayCode>()
const CLAY_CODES_MAX = 16

/**
 * The Clay code of k + m fragments with d helpers (clay.ts), made once. Its methods are
 * synchronous and keep no view of their working memory, so one instance serves every caller.
 * Throws ErasureError for parameters it cannot take (decodeManifest checks them first).
 */
export function clayCode (k: number, m: number, d: number): ClayCode {
  const key = `${k}+${m}/${d}`
  let code = clayCodes.get(key)
  if (code === undefined) {
    code = new ClayCode(k, m, d)
    // bounded: a manifest from a peer may name any code decodeManifest accepts
    if (clayCodes.size >= CLAY_CODES_MAX) clayCodes.clear()
    clayCodes.set(key, code)
  }
  return code
}

/**
 * d of the Clay code a chunk of `size` bytes is written with when the codec gate is on: k + m - 1
 * (every other fragment helps: the least read per helper), or undefined where Clay cannot help:
 * replicated chunks (k = 1), m = 1 (no d with k < d < k + m), and codes too wide to build
 * (clay.ts's sub-chunk bound: 4+2 has 8 sub-chunks, 23+2 would need 8,192): Reed–Solomon then,
 * not a write that fails.
 */
export function clayFor (k: number, m: number): number | undefined {
  const d = k + m - 1
  return k > 1 && m >= 2 && validClay(k, m, d) ? d : undefined
}

/** Bytes of each fragment of a chunk: the chunk itself (k = 1), the Clay code's fragmentSize, else erasure.shardSize. */
export function fragmentBytes (ref: ChunkRef): number {
  if (ref.k === 1) return ref.size
  return ref.clay !== undefined ? clayCode(ref.k, ref.m, ref.clay).fragmentSize(ref.size) : erasure.shardSize(ref.size, ref.k)
}

/**
 * encodeChunk, with the hashing on the addon's threadpool (erasure.sha256Many) in two parallel
 * jobs: the chunk (fragment 0 with it), and the other fragments. The event loop is free while
 * they run, and on a host with two cores or more they run side by side. The same result as
 * encodeChunk, byte for byte; it is encodeChunk when the addon is absent or the chunk is small
 * (under ASYNC_HASH_MIN_BYTES a threadpool round trip costs more than the hashing). `bytes` must
 * not change until the promise settles.
 */
export async function encodeChunkAsync (bytes: Uint8Array, offset: number, k: number, m: number, clay?: number): Promise<EncodedChunk> {
  return await encodeChunkPooled(bytes, offset, k, m, undefined, clay)
}

/**
 * encodeChunkAsync, with the parity coded into `pool`'s memory when there is any to make and
 * every data fragment is a view of `bytes` (its length a multiple of k): then `pooled` is that
 * memory's handle, and the parity blocks' bytes are pooled memory until pooled.release() (see
 * PooledShards: call it only once nothing reads them any more). Else as encodeChunkAsync, no
 * `pooled`. A failed hash gives the memory back (its jobs are over once the promise settles).
 */
export async function encodeChunkPooled (bytes: Uint8Array, offset: number, k: number, m: number, pool: erasure.ShardPool | undefined, clay?: number): Promise<EncodedChunk & { pooled?: erasure.PooledShards }> {
  const many = erasure.sha256Many
  if (many === undefined || bytes.byteLength < ASYNC_HASH_MIN_BYTES) return encodeChunk(bytes, offset, k, m, clay)
  if (k === 1) {
    const [digest] = await many([bytes], [], 0)
    return replicated(bytes, offset, rawCid(digest), m)
  }
  // a Clay code's parity is coded in its own memory (the pool lays out Reed–Solomon shards)
  const pooled = pool !== undefined && clay === undefined && m > 0 && bytes.byteLength % k === 0 ? pool.encode(bytes, k, m) : undefined
  const shards = pooled?.shards ?? (clay !== undefined ? clayCode(k, m, clay).encode(bytes) : erasure.encode(bytes, k, m))
  const head = headPrefix(bytes, shards)
  const rest = head > 0 ? shards.slice(1) : shards
  let digests: Uint8Array[]
  try {
    digests = await many([bytes, ...rest], [1], head)
  } catch (err) {
    pooled?.release()
    throw err
  }
  const chunk = digests[0]
  const fragments = head > 0 ? [digests[digests.length - 1], ...digests.slice(1, -1)] : digests.slice(1)
  return { ...coded(bytes, offset, k, m, shards, chunk, fragments, clay), ...(pooled !== undefined ? { pooled } : {}) }
}

/**
 * A replicated chunk (k = 1: its one block is the chunk) coded with its leaf hashes, in one job
 * and one pass over its bytes on the addon's threadpool (erasure.sha256Leaves): its CID, and the
 * Merkle root (in the ref's roots) and leaf hashes of its one data fragment. What a host writing
 * alone (k = 1, m = 0) or a small chunk needs, where encodeChunkAsync then LocalLeaves.rememberAll
 * were two jobs, two passes and a tagged copy of the chunk. undefined without that addon function
 * or below ASYNC_HASH_MIN_BYTES (the caller codes it the other way).
 */
export async function encodeReplicatedWithLeaves (bytes: Uint8Array, offset: number, m: number): Promise<{ encoded: EncodedChunk, hashes: Uint8Array } | undefined> {
  const tree = erasure.sha256Leaves
  if (tree === undefined || bytes.byteLength < ASYNC_HASH_MIN_BYTES) return undefined
  const { hashes, root, whole } = await tree(bytes, LEAF_BYTES, true)
  const encoded = replicated(bytes, offset, rawCid(whole!), m)
  encoded.ref.roots = [root]
  return { encoded, hashes }
}

/** Chunks below this many bytes are hashed on the calling thread (see encodeChunkAsync). */
const ASYNC_HASH_MIN_BYTES = 65536

/**
 * How many leading bytes of the chunk fragment 0 is (it is a view of `bytes` then), else 0:
 * sha256 runs over the bytes in order, so the chunk's hash passes through fragment 0's on the
 * way and one pass yields both.
 */
function headPrefix (bytes: Uint8Array, shards: Uint8Array[]): number {
  const first = shards[0]
  return first.buffer === bytes.buffer && first.byteOffset === bytes.byteOffset && first.byteLength <= bytes.byteLength ? first.byteLength : 0
}

function rawCid (digest: Uint8Array): CID {
  return CID.createV1(raw.code, createDigest(SHA2_256, digest.slice()))
}

function replicated (bytes: Uint8Array, offset: number, cid: CID, m: number): EncodedChunk {
  return {
    ref: { offset, size: bytes.byteLength, cid, k: 1, m, fragments: Array.from({ length: m + 1 }, () => cid) },
    blocks: [{ cid, bytes }]
  }
}

function coded (bytes: Uint8Array, offset: number, k: number, m: number, shards: Uint8Array[], chunk: Uint8Array, digests: Uint8Array[], clay: number | undefined): EncodedChunk {
  const blocks = shards.map((s, j) => ({ cid: rawCid(digests[j]), bytes: s }))
  const ref: ChunkRef = { offset, size: bytes.byteLength, cid: rawCid(chunk), k, m, fragments: blocks.map(b => b.cid) }
  if (clay !== undefined) ref.clay = clay
  return { ref, blocks }
}

/**
 * `encoded` with the Merkle roots of its data fragments (of all k + m for a Clay-coded chunk)
 * recorded in its ref (ChunkRef.roots): one more sha256 pass over the chunk's bytes (and its
 * parity). Holes have none.
 */
export function withRoots (encoded: EncodedChunk): EncodedChunk {
  const { ref, blocks } = encoded
  if (ref.cid === null) return encoded
  // with k = 1 the one block is the chunk; else blocks are the k + m shards in order
  ref.roots = blocks.slice(0, rootCount(ref)).map(b => merkleRoot(b.bytes))
  return encoded
}

/** How many fragments' Merkle roots a ref records (ChunkRef.roots): k, or k + m for a Clay-coded chunk. */
export function rootCount (ref: Pick<ChunkRef, 'k' | 'm' | 'clay'>): number {
  return ref.clay !== undefined ? ref.k + ref.m : ref.k
}

/** Where chunk bytes sit in a data fragment's leaves: fragment `fragment`, leaves [first, end), the wanted bytes at [from, to) of those leaves' bytes. */
export interface FragmentSlice { fragment: number, fragmentBytes: number, first: number, end: number, from: number, to: number }

/**
 * The data-fragment leaves that hold bytes [start, end) of a chunk (0 <= start < end <=
 * ref.size), one slice per data fragment they cross. The code is systematic: data fragment i
 * is chunk bytes [i * s, (i + 1) * s) with s = fragmentBytes(ref) (erasure.shardSize(size, k),
 * or a Clay code's fragmentSize), the last one zero-padded to s (with k = 1 the fragment is the chunk).
 */
export function fragmentSlices (ref: ChunkRef, start: number, end: number): FragmentSlice[] {
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start < end && end <= ref.size)) {
    throw new RangeError(`[${start}, ${end}) is not within the ${ref.size} bytes of the chunk`)
  }
  const s = fragmentBytes(ref)
  const out: FragmentSlice[] = []
  for (let i = Math.floor(start / s); i * s < end; i++) {
    const lo = Math.max(start, i * s) - i * s
    const hi = Math.min(end, (i + 1) * s) - i * s
    const first = Math.floor(lo / LEAF_BYTES)
    const last = Math.min(leafCount(s), Math.ceil(hi / LEAF_BYTES))
    out.push({ fragment: i, fragmentBytes: s, first, end: last, from: lo - first * LEAF_BYTES, to: hi - first * LEAF_BYTES })
  }
  return out
}

/**
 * A manifest as a replicated block (k = 1): placement and repair keep it on as many hosts as
 * the network's redundancy asks, like a chunk, so a file stays readable when its writer is gone.
 */
export function manifestRef (cid: CID, size: number): ChunkRef {
  return { offset: 0, size, cid, k: 1, m: 0, fragments: [cid] }
}

/**
 * The manifest of a file version from its refs (contiguous from offset 0): v3 when a chunk is
 * Clay-coded, else v2 when a hole spans more than one chunk, else v1.
 */
export function manifestOf (size: number, refs: ChunkRef[], chunkSize = CHUNK_SIZE): Manifest {
  return { v: refs.some(r => r.clay !== undefined) ? 3 : refs.some(r => r.size > chunkSize) ? 2 : 1, size, chunkSize, chunks: refs }
}

/**
 * The ref that holds chunk `i` of a manifest (a data ref starting at i * chunkSize, or a hole
 * covering it) and its index in `manifest.chunks`; undefined past the end. O(1) for v1, a
 * binary search for v2.
 */
export function chunkAt (manifest: Manifest, i: number): { ref: ChunkRef, at: number } | undefined {
  const offset = i * manifest.chunkSize
  const refs = manifest.chunks
  const direct = refs[i]
  if (direct !== undefined && direct.offset === offset) return { ref: direct, at: i }
  let lo = 0
  let hi = refs.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const r = refs[mid]
    if (offset < r.offset) hi = mid - 1
    else if (offset >= r.offset + r.size) lo = mid + 1
    else return { ref: r, at: mid }
  }
  return undefined
}

/** A hole: `size` zero bytes at `offset`, stored nowhere (one chunk, or in v2 a run of them). */
export function holeChunk (offset: number, size: number): ChunkRef {
  return { offset, size, cid: null, k: 1, m: 0, fragments: [] }
}

/**
 * Rebuild a chunk from fragments (by index; any k present). Verifies the result against
 * the chunk CID, so a wrong fragment can never yield wrong bytes. `verified`: the caller checked
 * every fragment given against its CID (ref.fragments[j]) already. With k = 1 (the fragment is
 * the chunk, under the chunk's own CID) the copy is then not hashed again; with k > 1 and all k
 * data fragments given, the chunk is their concatenation (the code is systematic: no decoding),
 * and the fragments are the ones the manifest names, so it is not hashed again either (issue 15
 * item 4: on a cold read that third hash of each byte, after the holder's and the reader's
 * checks of its fragment, was ~5% of the CPU). A chunk rebuilt through parity is checked: each
 * data fragment rebuilt against its own CID (rebuiltDataMatch), else the whole chunk against its CID.
 */
export function decodeChunk (ref: ChunkRef, fragments: Array<Uint8Array | undefined>, opts: { verified?: boolean } = {}): Uint8Array {
  if (ref.cid === null) return new Uint8Array(ref.size)
  let bytes: Uint8Array
  if (ref.k === 1) {
    const copy = fragments.find(f => f !== undefined)
    if (copy === undefined) throw new ManifestError(`no fragment of chunk ${ref.cid.toString()}`)
    bytes = copy
    if (opts.verified === true && ref.fragments.every(f => f.equals(ref.cid!))) return bytes
  } else {
    bytes = decodeData(ref, fragments)
    if (opts.verified === true && fragments.length >= ref.k && rebuiltDataMatch(ref, fragments, bytes)) return bytes
  }
  if (!matches(ref.cid, bytes)) throw new ManifestError(`chunk ${ref.cid.toString()} rebuilt to the wrong bytes`)
  return bytes
}

/**
 * decodeChunk(ref, fragments, { verified: true }), with the hashes it needs (each data fragment
 * rebuilt through parity, else the chunk whole) on the erasure addon's threadpool
 * (matchesOffThread): a cold read on six hosts rebuilds a data fragment for most chunks whose
 * reader holds a parity fragment, and its event loop, not the cores, is what runs out. The same
 * answer as decodeChunk, wrong bytes refused with ManifestError the same way. `into`: ref.size
 * bytes the chunk is decoded into (a Reed–Solomon chunk's), where the fragments that already lie
 * at their place in it (landed there as they arrived: ChunkService.fetchChunk) are not copied.
 */
export async function decodeChunkOffThread (ref: ChunkRef, fragments: Array<Uint8Array | undefined>, into?: Uint8Array): Promise<Uint8Array> {
  if (ref.cid === null || ref.k === 1) return decodeChunk(ref, fragments, { verified: true })
  const bytes = decodeData(ref, fragments, into)
  const size = fragments.find(f => f !== undefined)?.byteLength
  const checks: Array<Promise<boolean>> = []
  let whole = size === undefined
  for (let j = 0; j < ref.k && !whole; j++) {
    if (fragments[j] !== undefined) continue
    if ((j + 1) * size! > bytes.byteLength || ref.fragments[j] === undefined) whole = true
    else checks.push(matchesOffThread(ref.fragments[j], bytes.subarray(j * size!, (j + 1) * size!)))
  }
  // a rebuilt fragment that is the short last one: its CID covers padding the chunk does not
  // hold, so the chunk is checked whole (as decodeChunk does)
  const ok = whole ? await matchesOffThread(ref.cid, bytes) : (await Promise.all(checks)).every(Boolean)
  if (!ok && (whole || !matches(ref.cid, bytes))) throw new ManifestError(`chunk ${ref.cid.toString()} rebuilt to the wrong bytes`)
  return bytes
}

/** The chunk's bytes from any k of its fragments (k > 1), by its code: Clay (ref.clay) or Reed–Solomon. */
function decodeData (ref: ChunkRef, fragments: Array<Uint8Array | undefined>, into?: Uint8Array): Uint8Array {
  if (ref.clay === undefined) return erasure.decode(fragments, ref.k, ref.m, ref.size, into)
  // systematic: the k data fragments at hand are the chunk (no decode, no copy of the code's)
  const code = clayCode(ref.k, ref.m, ref.clay)
  return code.decode(Array.from({ length: code.n }, (_, j) => fragments[j]), ref.size)
}

/**
 * decodeChunk's check of a chunk decoded from verified fragments: true when each data fragment
 * the decode rebuilt (one missing from `fragments`) is, as it lies in `bytes`, the fragment its CID
 * (ref.fragments[j]) names. The chunk is then the concatenation of the manifest's data fragments,
 * as when all k were given (nothing rebuilt: true at once), so it needs no hash of its own: a
 * rebuilt data fragment costs a hash of its own bytes, not of the whole chunk (issue 15: a cold
 * read through six hosts decodes most chunks through a parity fragment, and hashed each whole
 * chunk again). False when a rebuilt fragment is the short last one (its CID covers the padding
 * the chunk does not hold: decodeChunk then hashes the chunk, as before) or does not match.
 */
function rebuiltDataMatch (ref: ChunkRef, fragments: Array<Uint8Array | undefined>, bytes: Uint8Array): boolean {
  const size = fragments.find(f => f !== undefined)?.byteLength
  if (size === undefined) return false
  for (let j = 0; j < ref.k; j++) {
    if (fragments[j] !== undefined) continue
    if ((j + 1) * size > bytes.byteLength || ref.fragments[j] === undefined) return false
    if (!matches(ref.fragments[j], bytes.subarray(j * size, (j + 1) * size))) return false
  }
  return true
}

/**
 * Fragments `wanted` (indexes) of an erasure-coded chunk, rebuilt in one decode from any k of
 * its fragments (`fragments[j]`, undefined where absent; those given must be the right bytes),
 * each checked against its CID. Only the wanted shards missing from `fragments` are computed
 * (and a missing data shard a wanted parity shard is coded from); the
 * chunk itself is neither assembled nor hashed. Throws ManifestError for a replicated (k = 1)
 * or hole ref, or when a fragment rebuilds to bytes other than its CID names.
 */
export function rebuildFragments (ref: ChunkRef, fragments: Array<Uint8Array | undefined>, wanted: number[]): Map<number, Uint8Array> {
  if (ref.cid === null || ref.k === 1) throw new ManifestError(`chunk ${String(ref.cid)} has no erasure-coded fragments to rebuild`)
  const n = ref.k + ref.m
  // only the wanted shards: repair rebuilds the one (or two) lost of the n - k not at hand
  const given = Array.from({ length: n }, (_, j) => fragments[j])
  // a Clay code rebuilds every missing fragment in one decode (its planes couple them all)
  const shards = ref.clay !== undefined ? clayCode(ref.k, ref.m, ref.clay).reconstruct(given) : erasure.reconstructSome(given, ref.k, ref.m, wanted)
  const out = new Map<number, Uint8Array>()
  for (const j of wanted) {
    const bytes = shards instanceof Map ? shards.get(j)! : shards[j]
    if (fragments[j] === undefined && !matches(ref.fragments[j], bytes)) throw new ManifestError(`fragment ${j} of chunk ${ref.cid.toString()} rebuilt to the wrong bytes`)
    out.set(j, bytes)
  }
  return out
}

export function encodeManifest (manifest: Manifest): { cid: CID, bytes: Uint8Array } {
  const bytes = dagCbor.encode(manifest)
  return { cid: cidOf(bytes, dagCbor.code), bytes }
}

/**
 * The identity of a version's bytes, however they are stored (DESIGN.md §6: identical content
 * is one version). A manifest records choices of its writer's moment: k, m and the fragments
 * (the hosts it could reach), a hole ref or written zeros, v1 or v2; so equal bytes written on
 * two hosts get different manifest CIDs. The sum leaves all of that out: it is the raw CIDv1
 * (sha256) of a listing of the bytes, never stored: SUM_TAG, the size (8 bytes big-endian), then
 * in order, each chunk holding data as 0x01 + its CID's bytes, and each run of zeros (hole refs
 * and all-zero chunks, merged) as 0x00 + its length (8 bytes big-endian). Equal bytes cut at
 * the same chunk boundaries have one sum on every host; different bytes never share one, since
 * a chunk CID names its bytes. Costs one pass over the refs (plus hashing one short zero chunk
 * when the last chunk is short): no chunk is read.
 */
export function contentSum (manifest: Manifest): CID {
  const h = createHash('sha256').update(SUM_TAG).update(u64(manifest.size))
  let zeros = 0
  for (const ref of manifest.chunks) {
    if (ref.cid === null || ref.cid.equals(zeroCid(ref.size))) {
      zeros += ref.size
      continue
    }
    if (zeros > 0) h.update(ZERO_RUN).update(u64(zeros))
    zeros = 0
    h.update(DATA).update(ref.cid.bytes)
  }
  if (zeros > 0) h.update(ZERO_RUN).update(u64(zeros))
  return CID.createV1(raw.code, createDigest(SHA2_256, h.digest()))
}

/** Where a content sum's listing starts (a new listing format gets a new tag). */
const SUM_TAG = new TextEncoder().encode('darkfs/content-sum/1')
const DATA = Uint8Array.of(1)
const ZERO_RUN = Uint8Array.of(0)

function u64 (n: number): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n))
  return b
}

/** CIDs of all-zero chunks by size; bounded: full chunks and a few short tails. */
const zeroCids = new Map<number, CID>()
const ZERO_CIDS_MAX = 8

function zeroCid (size: number): CID {
  let cid = zeroCids.get(size)
  if (cid === undefined) {
    cid = cidOf(new Uint8Array(size))
    if (zeroCids.size >= ZERO_CIDS_MAX) zeroCids.clear()
    zeroCids.set(size, cid)
  }
  return cid
}

/** Decode and validate a manifest block (bounded, every field checked). */
export function decodeManifest (bytes: Uint8Array): Manifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw new ManifestError(`manifest of ${bytes.byteLength} bytes exceeds ${MAX_MANIFEST_BYTES}`)
  let m: any
  try { m = dagCbor.decode(bytes) } catch (err: any) { throw new ManifestError(`malformed manifest: ${err.message}`) }
  const isInt = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0
  if (!MANIFEST_VERSIONS.includes(m?.v) || !isInt(m.size) || !isInt(m.chunkSize) || m.chunkSize === 0 || !Array.isArray(m.chunks)) {
    throw new ManifestError('malformed manifest: bad header')
  }
  let expect = 0
  for (const c of m.chunks) {
    const okCid = c?.cid === null || CID.asCID(c?.cid) != null
    if (!isInt(c?.offset) || !isInt(c.size) || !okCid || !isInt(c.k) || !isInt(c.m) || c.k < 1 || c.k + c.m > 255 ||
      !Array.isArray(c.fragments) || c.fragments.some((f: unknown) => CID.asCID(f) == null) ||
      (c.cid !== null && c.fragments.length !== c.k + c.m) || c.offset !== expect ||
      // v1: one ref per chunk; v2: data refs are one chunk at a chunk boundary, holes may span chunks
      (m.v === 1 ? c.size > m.chunkSize : c.offset % m.chunkSize !== 0 || (c.cid !== null && c.size > m.chunkSize)) ||
      // the Clay code, where named: of an erasure-coded data chunk, in v3, one this code takes
      (c.clay !== undefined && (m.v < 3 || c.cid === null || !validClay(c.k, c.m, c.clay))) ||
      // roots, where recorded: one per data fragment of a data chunk (per fragment when Clay-coded)
      (c.roots !== undefined && (c.cid === null || !Array.isArray(c.roots) || c.roots.length !== rootCount(c) ||
        c.roots.some((r: unknown) => !(r instanceof Uint8Array) || r.byteLength !== HASH_BYTES))) ||
      // the placement rule, where recorded: of a data chunk, and one this code knows
      (c.rule !== undefined && (c.cid === null || c.rule !== PLACEMENT_BALANCED))) {
      throw new ManifestError('malformed manifest: bad chunk reference')
    }
    expect += c.size
  }
  if (expect !== m.size) throw new ManifestError(`malformed manifest: chunks cover ${expect} bytes, size says ${m.size}`)
  return m as Manifest
}

/** Whether a manifest's k, m and clay name a Clay code this host can decode (k < d < k + m, sub-chunks within MAX_SUBCHUNKS). */
function validClay (k: number, m: number, d: unknown): boolean {
  if (!Number.isSafeInteger(d) || k < 2 || (d as number) <= k || (d as number) >= k + m) return false
  try {
    clayCode(k, m, d as number)
    return true
  } catch {
    // a code this host cannot build (too many sub-chunks or shards): the manifest is refused as malformed
    return false
  }
}

/** The chunk indexes overlapping [start, end). */
export function chunkRange (start: number, end: number, chunkSize = CHUNK_SIZE): [number, number] {
  return [Math.floor(start / chunkSize), Math.ceil(end / chunkSize)]
}
