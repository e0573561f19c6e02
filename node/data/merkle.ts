// Merkle trees over fragments (issue 15 item 3, verified range reads): a small read fetches a
// few 16 KiB leaves of one data fragment plus the sibling hashes that tie them to the
// fragment's root, recorded in the manifest (ChunkRef.roots), and checks them without the
// rest of the fragment. Pure: no I/O.
//
// The tree is the one of RFC 6962 (Certificate Transparency) over LEAF_BYTES leaves, with its
// domain separation: leaf = H(0x00 || bytes), node = H(0x01 || left || right), a tree of n > 1
// leaves splitting at the largest power of two below n (so every proof has O(log n) hashes and
// no leaf is ever duplicated, the flaw of Bitcoin's odd-node rule). The last leaf may be short
// and the fragment's length is bound into the root: root = H(0x02 || u64be(length) || top), so
// a slice is checked for where it sits and how long it is, not only for its bytes.
//
// H is sha256 (node:crypto): the rest of darkfs names blocks by sha256 already, it runs in
// OpenSSL's native code at a few GB/s with SHA extensions, and it needs no new dependency.
// BLAKE3 (bao, iroh-blobs) would hash faster and has this tree built in, but only through a
// native addon this project does not ship; at 16 KiB leaves the hashing is not what bounds a
// 4 KiB read (the round trip is).
//
// The leaf size is a parameter of the tree (every function takes it last, LEAF_BYTES by default:
// the size of every root recorded so far). A 4 KiB read over 16 KiB leaves moves and hashes four
// times the bytes it needs; over SMALL_LEAF_BYTES leaves (measured on a loaded 2-core machine) a
// holder's check and proof take ~5 us instead of ~14, a reader's check ~16 instead of ~25, the
// answer crosses the connection in ~30 us less CPU (both ends), and a writer's off-thread leaf
// hashing of a 256 KiB fragment ~5% more; the kept leaf hashes and inner nodes are 4x larger.
// No manifest records a leaf size yet: that, a range want that names it, and the caches keyed
// by it are what using SMALL_LEAF_BYTES takes.
import { createHash, hash } from 'node:crypto'
import { equalBytes } from '../bytes.ts'

/** Bytes per leaf: a 4 KiB read moves one leaf plus about log2(leaves) 32-byte hashes. */
export const LEAF_BYTES = 16 * 1024
/**
 * Leaf sizes a tree may be built over: LEAF_BYTES (every fragment's so far) and SMALL_LEAF_BYTES.
 * Every function below takes the leaf size last, LEAF_BYTES when not given: the tree of a fragment
 * and its root depend on it, so whoever records a root records the leaf size it was built over.
 */
export const SMALL_LEAF_BYTES = 4 * 1024
/** Bytes of one hash (a root, a proof entry). */
export const HASH_BYTES = 32

const LEAF_TAG = Uint8Array.of(0)
const NODE_TAG = Uint8Array.of(1)
const ROOT_TAG = Uint8Array.of(2)

/** Leaves of a fragment of `length` bytes (an empty fragment has one empty leaf). */
export function leafCount (length: number, leafBytes: number = LEAF_BYTES): number {
  return Math.max(1, Math.ceil(length / leafBytes))
}

/** The fragment's root (HASH_BYTES). */
export function merkleRoot (bytes: Uint8Array, leafBytes: number = LEAF_BYTES): Uint8Array {
  return rootFromLeaves(bytes.byteLength, leafHashes(bytes, leafBytes), leafBytes)
}

/**
 * The hashes of every leaf of `bytes`, one after another (leafCount * HASH_BYTES): what a host
 * keeps of a fragment it stores (data/leaves.ts) to serve and check slices of it later without
 * reading it whole; rootFromLeaves() and proofFromLeaves() work from them.
 */
export function leafHashes (bytes: Uint8Array, leafBytes: number = LEAF_BYTES): Uint8Array {
  const n = leafCount(bytes.byteLength, leafBytes)
  const out = new Uint8Array(n * HASH_BYTES)
  for (let i = 0; i < n; i++) out.set(leafHash(bytes.subarray(i * leafBytes, (i + 1) * leafBytes)), i * HASH_BYTES)
  return out
}

/** The root of a fragment of `length` bytes from its leaf hashes (leafHashes()). */
export function rootFromLeaves (length: number, hashes: Uint8Array, leafBytes: number = LEAF_BYTES): Uint8Array {
  const leaves = split32(length, hashes, leafBytes)
  return rootOf(length, subtree(leaves, 0, leaves.length))
}

/** Whether `leaf` (the bytes of leaf `index`) hashes to entry `index` of `hashes` (leafHashes()). */
export function leafMatches (leaf: Uint8Array, hashes: Uint8Array, index: number): boolean {
  const at = index * HASH_BYTES
  if (at < 0 || at + HASH_BYTES > hashes.byteLength) return false
  return equalBytes(leafHash(leaf), hashes.subarray(at, at + HASH_BYTES))
}

/**
 * The bytes of leaves [first, end) of `bytes` and the proof that ties them to its root: the
 * hashes of the subtrees outside the range, left to right, as verifyRange() consumes them.
 * Hashes the whole fragment (its leaves) once. Throws RangeError for a range out of bounds.
 */
export function rangeProof (bytes: Uint8Array, first: number, end: number, leafBytes: number = LEAF_BYTES): { bytes: Uint8Array, proof: Uint8Array[] } {
  const proof = proofFromLeaves(bytes.byteLength, leafHashes(bytes, leafBytes), first, end, leafBytes)
  return { bytes: bytes.subarray(first * leafBytes, Math.min(end * leafBytes, bytes.byteLength)), proof }
}

/**
 * rangeProof()'s proof for leaves [first, end) of a fragment of `length` bytes, from its leaf
 * hashes alone (no byte of the fragment). Throws RangeError for a range out of bounds or hashes
 * that do not fit the length.
 */
export function proofFromLeaves (length: number, hashes: Uint8Array, first: number, end: number, leafBytes: number = LEAF_BYTES): Uint8Array[] {
  const leaves = split32(length, hashes, leafBytes)
  const n = leaves.length
  checkRange(n, first, end)
  const proof: Uint8Array[] = []
  const walk = (lo: number, hi: number): void => {
    if (hi <= first || lo >= end) { proof.push(subtree(leaves, lo, hi)); return }
    if (hi - lo === 1) return
    const mid = lo + split(hi - lo)
    walk(lo, mid)
    walk(mid, hi)
  }
  walk(0, n)
  return proof
}

/**
 * The inner nodes of the tree over the leaf hashes of a fragment of `length` bytes (leafHashes()),
 * in preorder (a node, then its left subtree's, then its right's): leafCount - 1 hashes, one after
 * another, the first the tree's top (none for one leaf). What a holder keeps of a fragment it
 * serves slices of (data/leaves.ts), so each proof is a lookup of hashes, not a dozen node hashes
 * (proofFromLeaves: ~15 µs of a 256 KiB fragment's one-leaf proof, per range want served).
 * RangeError for hashes that do not fit the length.
 */
export function innerNodes (length: number, hashes: Uint8Array, leafBytes: number = LEAF_BYTES): Uint8Array {
  const leaves = split32(length, hashes, leafBytes)
  const out = new Uint8Array((leaves.length - 1) * HASH_BYTES)
  let next = 0
  const fill = (lo: number, hi: number): Uint8Array => {
    if (hi - lo === 1) return leaves[lo]
    const at = next++ * HASH_BYTES
    const mid = lo + split(hi - lo)
    const left = fill(lo, mid)
    out.set(nodeHash(left, fill(mid, hi)), at)
    return out.subarray(at, at + HASH_BYTES)
  }
  fill(0, leaves.length)
  return out
}

/**
 * proofFromLeaves()'s proof, its hashes looked up in the leaf hashes and the inner nodes
 * (innerNodes() of the same hashes) rather than computed: views of them, not copies. Throws
 * RangeError for a range out of bounds or hashes and nodes that do not fit the length.
 */
export function proofFromTree (length: number, hashes: Uint8Array, inner: Uint8Array, first: number, end: number, leafBytes: number = LEAF_BYTES): Uint8Array[] {
  const n = leafCount(length, leafBytes)
  if (hashes.byteLength !== n * HASH_BYTES || inner.byteLength !== (n - 1) * HASH_BYTES) {
    throw new RangeError(`${hashes.byteLength} bytes of leaf hashes and ${inner.byteLength} of inner nodes for the ${n} leaves of a ${length}-byte fragment`)
  }
  checkRange(n, first, end)
  const proof: Uint8Array[] = []
  // `at`: the preorder index of the inner node [lo, hi) (hi - lo > 1); its left child is at + 1,
  // its right child at + (mid - lo) (after the left subtree's mid - lo - 1 inner nodes)
  const walk = (lo: number, hi: number, at: number): void => {
    if (hi <= first || lo >= end) {
      proof.push(hi - lo === 1 ? hashes.subarray(lo * HASH_BYTES, (lo + 1) * HASH_BYTES) : inner.subarray(at * HASH_BYTES, (at + 1) * HASH_BYTES))
      return
    }
    if (hi - lo === 1) return
    const mid = lo + split(hi - lo)
    walk(lo, mid, at + 1)
    walk(mid, hi, at + mid - lo)
  }
  walk(0, n, 0)
  return proof
}

/** The leaf hashes of a fragment of `length` bytes as one view per leaf; RangeError when they do not fit. */
function split32 (length: number, hashes: Uint8Array, leafBytes: number): Uint8Array[] {
  const n = leafCount(length, leafBytes)
  if (hashes.byteLength !== n * HASH_BYTES) throw new RangeError(`${hashes.byteLength} bytes of leaf hashes for the ${n} leaves of a ${length}-byte fragment`)
  const out: Uint8Array[] = []
  for (let i = 0; i < n; i++) out.push(hashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES))
  return out
}

/** Bytes leaves [first, end) hold in a fragment of `length` bytes. */
export function rangeBytes (length: number, first: number, end: number, leafBytes: number = LEAF_BYTES): number {
  return Math.min(end * leafBytes, length) - first * leafBytes
}

/**
 * Whether `slice` is leaves [first, end) of the fragment of `length` bytes whose root is
 * `root`, by `proof` (rangeProof's). False for any mismatch: a wrong byte, a wrong or missing
 * or extra proof hash, a slice of the wrong length, a range out of bounds. Hashes only the slice.
 */
export function verifyRange (root: Uint8Array, length: number, first: number, end: number, slice: Uint8Array, proof: Uint8Array[], leafBytes: number = LEAF_BYTES): boolean {
  if (!Number.isSafeInteger(length) || length < 0) return false
  const n = leafCount(length, leafBytes)
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(end) || first < 0 || end > n || first >= end) return false
  if (slice.byteLength !== rangeBytes(length, first, end, leafBytes)) return false
  if (proof.some(h => h.byteLength !== HASH_BYTES)) return false
  let used = 0
  let short = false
  const calc = (lo: number, hi: number): Uint8Array => {
    if (hi <= first || lo >= end) {
      if (used >= proof.length) { short = true; return new Uint8Array(HASH_BYTES) }
      return proof[used++]
    }
    if (hi - lo === 1) {
      const at = (lo - first) * leafBytes
      return leafHash(slice.subarray(at, at + leafBytes))
    }
    const mid = lo + split(hi - lo)
    const left = calc(lo, mid)
    return nodeHash(left, calc(mid, hi))
  }
  const top = calc(0, n)
  return !short && used === proof.length && equalBytes(rootOf(length, top), root)
}

function checkRange (n: number, first: number, end: number): void {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(end) || first < 0 || end > n || first >= end) {
    throw new RangeError(`leaf range [${first}, ${end}) is not within the ${n} leaves of the fragment`)
  }
}

/** The largest power of two below n (n > 1): RFC 6962's split. */
function split (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

function subtree (leaves: Uint8Array[], lo: number, hi: number): Uint8Array {
  if (hi - lo === 1) return leaves[lo]
  const mid = lo + split(hi - lo)
  return nodeHash(subtree(leaves, lo, mid), subtree(leaves, mid, hi))
}

/**
 * LEAF_TAG || leaf, filled for each leaf hash of up to its size: one one-shot hash of a copy
 * (a 16 KiB copy costs less than a Hash object and its two updates: ~1 µs of ~11 per leaf).
 * Grown for a larger leaf; the hash is taken before anything else can fill it (no await between).
 */
let leafInput = new Uint8Array(1 + LEAF_BYTES)

function leafHash (bytes: Uint8Array): Uint8Array {
  if (leafInput.byteLength < 1 + bytes.byteLength) leafInput = new Uint8Array(1 + bytes.byteLength)
  leafInput[0] = LEAF_TAG[0]
  leafInput.set(bytes, 1)
  return hash('sha256', leafInput.subarray(0, 1 + bytes.byteLength), 'buffer')
}

/** NODE_TAG || left || right, filled for each node hash (one one-shot hash, not a Hash object and three updates: half the time). */
const nodeInput = new Uint8Array(1 + 2 * HASH_BYTES)
nodeInput[0] = NODE_TAG[0]

function nodeHash (left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.byteLength !== HASH_BYTES || right.byteLength !== HASH_BYTES) return createHash('sha256').update(NODE_TAG).update(left).update(right).digest()
  nodeInput.set(left, 1)
  nodeInput.set(right, 1 + HASH_BYTES)
  return hash('sha256', nodeInput, 'buffer')
}

/** ROOT_TAG || u64be(length) || top, filled for each root (a one-shot hash: ~1 µs, not ~2 of a Hash object's). */
const rootInput = new Uint8Array(1 + 8 + HASH_BYTES)
rootInput[0] = ROOT_TAG[0]
const rootLength = new DataView(rootInput.buffer, 1, 8)

function rootOf (length: number, top: Uint8Array): Uint8Array {
  if (top.byteLength !== HASH_BYTES) {
    const len = new Uint8Array(8)
    new DataView(len.buffer).setBigUint64(0, BigInt(length))
    return new Uint8Array(createHash('sha256').update(ROOT_TAG).update(len).update(top).digest())
  }
  rootLength.setBigUint64(0, BigInt(length))
  rootInput.set(top, 9)
  // a plain Uint8Array (not a Buffer): roots go into manifests (dag-cbor)
  return new Uint8Array(hash('sha256', rootInput, 'buffer'))
}
