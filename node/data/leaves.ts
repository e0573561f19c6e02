// Verified slices of the fragments this host stores (issue 15 item 3, small reads at disk
// speed). A 4 KiB read of a chunk held here used to read every data fragment of it whole and
// hash them against their CIDs (a megabyte of disk and sha256 per page); a holder serving a
// peer's range want read and hashed the whole fragment twice (its CID, then its leaves). Here a
// host keeps each fragment's leaf hashes (32 bytes per 16 KiB leaf, merkle.ts) in memory once it
// has them from bytes it knows are sound: a chunk it just wrote, or a fragment it read whole and
// verified. After that a slice is read from disk alone, each leaf checked against its kept hash,
// and a proof for a peer is built from the hashes without touching the rest of the fragment.
//
// The hashes are a cache, bound in bytes (LEAF_HASHES_BYTES: 16 MiB covers 8 GiB of 1 MiB
// fragments), and never trusted beyond what they were computed from: a reader that knows the
// fragment's root from its manifest checks hashes computed from a whole read against it. A
// slice that does not match its hashes is a corrupt disk: the fragment is read whole, so the
// store finds and quarantines it (Store.get), and the caller falls back as for an absent one.
import type { CID } from 'multiformats/cid'
import { ChunkCache } from './cache.ts'
import { HASH_BYTES, LEAF_BYTES, innerNodes, leafCount, leafHashes, leafMatches, proofFromTree, rangeBytes, rootFromLeaves } from './merkle.ts'
import type { Store } from './store.ts'
import { SHA2_256, matchesOffThread } from './store.ts'
import { sha256Leaves, sha256Many } from './erasure.ts'
import { withMethods } from '../wrap.ts'
import { bytesKey, equalBytes } from '../bytes.ts'

/** Bytes of leaf hashes kept (32 per 16 KiB leaf: 16 MiB covers 8 GiB of fragments). */
export const LEAF_HASHES_BYTES = 16 << 20
/**
 * Bytes of the inner nodes of the Merkle trees of fragments peers asked proofs of (merkle.ts
 * innerNodes: 32 bytes per leaf but one), kept apart from the leaf hashes and only for the
 * fragments served: 4 MiB covers ~8,700 fragments of 256 KiB, 2 GiB of 1 MiB ones.
 */
export const INNER_NODES_BYTES = 4 << 20
/** Fragments from this size on are hashed into leaves on the threadpool when read whole (below, a round trip costs more). */
const OFF_THREAD_LEAVES_MIN_BYTES = 65536

/**
 * Leaves [first, end) of a fragment, and the hashes of all its leaves. `shared`: `bytes` views
 * memory others hold (a staged fragment), not a buffer of this read's: copy before changing it.
 */
export interface LeafSlice { bytes: Uint8Array, length: number, hashes: Uint8Array, shared?: boolean }

export class LocalLeaves {
  private readonly store: Store
  private readonly staged: (cid: CID) => Uint8Array | undefined
  /** Fragment CID -> u64be(length) || its root || its leaf hashes (the root computed once, when kept). */
  private readonly kept: ChunkCache
  /** Fragment CID -> the inner nodes of its tree (merkle.ts innerNodes), built at its first proof; dropped with its kept hashes. */
  private readonly inner: ChunkCache
  /**
   * Blocks check() found sound -> their CID and leaf hashes, until rememberStored() of the same
   * bytes keeps them; weak: bytes never stored (a failed put) take their entry with them.
   */
  private readonly checked = new WeakMap<Uint8Array, { cid: CID, hashes: Uint8Array, root: Uint8Array }>()
  /**
   * Slices read from disk and checked against kept hashes, whole reads done to get hashes, slices
   * read that did not match (a corrupt disk's sign), and slices of kept fragments the store no
   * longer gave (gone: moved off this host, deleted, or a file shorter than its hashes say).
   */
  readonly counters = { slices: 0, wholeReads: 0, mismatches: 0, gone: 0 }

  constructor (store: Store, opts: { staged?: (cid: CID) => Uint8Array | undefined, maxBytes?: number, maxInnerBytes?: number } = {}) {
    this.store = store
    this.staged = opts.staged ?? (() => undefined)
    this.kept = new ChunkCache(opts.maxBytes ?? LEAF_HASHES_BYTES)
    this.inner = new ChunkCache(opts.maxInnerBytes ?? INNER_NODES_BYTES)
  }

  /** Keep the leaf hashes of `bytes`, the sound content of fragment `cid` (just written, or verified); its Merkle root. */
  remember (cid: CID, bytes: Uint8Array): Uint8Array {
    const hashes = leafHashes(bytes)
    const root = rootFromLeaves(bytes.byteLength, hashes)
    this.keep(cid, bytes.byteLength, root, hashes)
    return root
  }

  /**
   * remember() for the data fragments of a chunk just encoded, with the leaves hashed on the
   * erasure addon's threadpool (sha256Many, one job per fragment) when it is there: a writer
   * hashes every leaf of every chunk it writes (256 per MiB), off the event loop its host (and,
   * in one process, the other hosts too) needs for everything else. The fragments' roots, in
   * order; the same hashes as remember()'s (each leaf is copied after its tag byte: sha256Many
   * hashes whole buffers). `blocks` must not change until it settles.
   */
  async rememberAll (blocks: Array<{ cid: CID, bytes: Uint8Array }>): Promise<Uint8Array[]> {
    const tree = sha256Leaves
    if (tree !== undefined && blocks.length > 0) {
      // one threadpool job per fragment, each its leaves and root in one pass, with no copy
      return await Promise.all(blocks.map(async ({ cid, bytes }) => {
        const { hashes, root } = await tree(bytes, LEAF_BYTES, false)
        this.keep(cid, bytes.byteLength, root, hashes)
        return root
      }))
    }
    const many = sha256Many
    if (many === undefined || blocks.length === 0) return blocks.map(b => this.remember(b.cid, b.bytes))
    const inputs: Uint8Array[] = []
    const cuts: number[] = []
    for (const { bytes } of blocks) {
      if (inputs.length > 0) cuts.push(inputs.length)
      const n = leafCount(bytes.byteLength)
      const tagged = new Uint8Array(bytes.byteLength + n)
      for (let i = 0; i < n; i++) {
        const leaf = bytes.subarray(i * LEAF_BYTES, (i + 1) * LEAF_BYTES)
        const at = i * (LEAF_BYTES + 1)
        // tagged[at] = 0: the leaf tag (merkle.ts LEAF_TAG), a fresh buffer's zero
        tagged.set(leaf, at + 1)
        inputs.push(tagged.subarray(at, at + 1 + leaf.byteLength))
      }
    }
    const digests = await many(inputs, cuts, 0)
    let next = 0
    return blocks.map(({ cid, bytes }) => {
      const n = leafCount(bytes.byteLength)
      const hashes = new Uint8Array(n * HASH_BYTES)
      for (let i = 0; i < n; i++) hashes.set(digests[next++], i * HASH_BYTES)
      const root = rootFromLeaves(bytes.byteLength, hashes)
      this.keep(cid, bytes.byteLength, root, hashes)
      return root
    })
  }

  /**
   * Keep the leaf hashes `hashes` and `root` of fragment `cid` (`length` bytes), computed by the
   * caller from bytes it knows are sound (a chunk it just hashed to its CID in the same pass:
   * ChunkService.storeChunk with erasure.sha256Leaves).
   */
  rememberHashed (cid: CID, length: number, root: Uint8Array, hashes: Uint8Array): void {
    this.keep(cid, length, root, hashes)
  }

  /**
   * Keep the leaf hashes of a block a peer pushed here (checked against its CID on arrival: by
   * check(), whose leaves of these very bytes are kept without hashing them again, or by the
   * swarm): a peer's range want for it is then served from a slice of the file, not a read and
   * hash of the whole fragment (issue 15 item 3: on six hosts, the first 4 KiB read of each
   * fragment read and hashed its 256 KiB on the holder, most of a random read's cost there).
   * Hashed off the event loop when the addon is there and the block is large; `bytes` must not
   * change until it settles. A failure keeps nothing: the first slice then reads it whole, as
   * before. A block of one leaf is not hashed now: its slice is the whole block anyway.
   */
  async rememberStored (cid: CID, bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength <= LEAF_BYTES) return
    // hashed by check() already, with its CID, in the same job
    const done = this.checked.get(bytes)
    if (done !== undefined) {
      this.checked.delete(bytes)
      if (done.cid.equals(cid)) {
        this.keep(cid, bytes.byteLength, done.root, done.hashes)
        return
      }
    }
    if (sha256Leaves === undefined || bytes.byteLength < OFF_THREAD_LEAVES_MIN_BYTES) {
      this.remember(cid, bytes)
      return
    }
    const { hashes, root } = await sha256Leaves(bytes, LEAF_BYTES, false)
    this.keep(cid, bytes.byteLength, root, hashes)
  }

  /**
   * Whether `bytes` hash to `cid` (a block a peer pushed here, checked before it is stored): its
   * sha256 and its leaf hashes in one threadpool job (erasure.sha256Leaves with `whole`), off the
   * event loop, where checking it and then rememberStored() hashed each byte in two passes, the
   * first on the event loop. On a match the leaves wait, with these very bytes, for their
   * rememberStored() (a put of them that succeeded: rememberingLeaves), which keeps them without
   * hashing again; nothing is kept for bytes that do not match, nor for a block never stored.
   * Without that addon function, or for a small block or one that is not sha256, it is
   * Store's matchesOffThread (rememberStored then hashes the leaves itself).
   */
  async check (cid: CID, bytes: Uint8Array): Promise<boolean> {
    const digest = cid.multihash.digest
    if (sha256Leaves === undefined || cid.multihash.code !== SHA2_256 || digest.byteLength !== HASH_BYTES || bytes.byteLength < OFF_THREAD_LEAVES_MIN_BYTES) return await matchesOffThread(cid, bytes)
    const { hashes, root, whole } = await sha256Leaves(bytes, LEAF_BYTES, true)
    if (whole === undefined || !equalBytes(whole, digest)) return false
    this.checked.set(bytes, { cid, hashes, root })
    return true
  }

  /** Whether the leaf hashes of fragment `cid` are kept (a slice of it is read without the rest). */
  keeps (cid: CID): boolean {
    return this.kept.get(keyOf(cid)) !== undefined
  }

  /**
   * The length of fragment `cid` as kept with its leaf hashes (it was written, pushed or read
   * whole here), else undefined: a holder serving the whole fragment reads it at that size, in
   * one job (Store.get's `size`: open, pread and close), not by readFile's open, fstat, read and
   * close, each a trip through the threadpool (a cold read through six hosts serves three of
   * every chunk's four fragments so). A length that no longer fits the file only costs that read.
   */
  length (cid: CID): number | undefined {
    const kept = this.kept.get(keyOf(cid))
    return kept === undefined ? undefined : Number(new DataView(kept.buffer, kept.byteOffset, 8).getBigUint64(0))
  }

  /** Forget everything kept (tests and benchmarks read cold). */
  clear (): void {
    this.kept.clear()
    this.inner.clear()
  }

  /**
   * Leaves [first, end) of fragment `cid` as stored here, each verified; undefined when it is not
   * here (or not sound: a corrupt one is quarantined on the way), or its leaves do not hash to
   * `root` when one is given (the manifest's: then the caller's fragment is not this one).
   */
  async slice (cid: CID, first: number, end: number, root?: Uint8Array): Promise<LeafSlice | undefined> {
    const key = keyOf(cid)
    const staged = this.staged(cid)
    if (staged !== undefined) {
      const got = await this.fromWhole(cid, staged, first, end, root)
      return got === undefined ? undefined : { ...got, shared: true }
    }
    const kept = this.kept.get(key)
    if (kept !== undefined) {
      const length = Number(new DataView(kept.buffer, kept.byteOffset, 8).getBigUint64(0))
      const hashes = kept.subarray(8 + HASH_BYTES)
      if (end > leafCount(length) || first < 0 || first >= end) return undefined
      if (root !== undefined && !equalBytes(kept.subarray(8, 8 + HASH_BYTES), root)) return undefined
      const bytes = await this.store.readSlice(cid, first * LEAF_BYTES, rangeBytes(length, first, end))
      if (bytes !== undefined && this.sound(bytes, hashes, first, end)) {
        this.counters.slices++
        return { bytes, length, hashes }
      }
      // no bytes: the fragment left the store since its hashes were kept (a holder asked for a
      // fragment it handed on: the swarm asks range() alone, rangeDeclines), no mismatch. Bytes
      // that do not match: the disk no longer holds what was hashed. Either way the hashes go,
      // and it is read whole if still here, which verifies it against its CID (and quarantines
      // it when corrupt)
      if (bytes === undefined) this.counters.gone++
      else this.counters.mismatches++
      this.kept.delete(key)
      this.inner.delete(key)
    }
    // not kept: the whole fragment, if here (has() answers "absent" from memory, mostly)
    if (!await this.store.has(cid)) return undefined
    const whole = await this.store.tryGet(cid)
    if (whole === undefined) return undefined
    this.counters.wholeReads++
    return await this.fromWhole(cid, whole, first, end, root)
  }

  /** The leaves [first, end) of fragment `cid` with their proof, for a peer's range want; undefined when not here. */
  async proof (cid: CID, first: number, end: number): Promise<{ bytes: Uint8Array, proof: Uint8Array[] } | undefined> {
    const got = await this.slice(cid, first, end)
    if (got === undefined) return undefined
    // the tree's inner nodes, from the same hashes: a fragment's bytes (and so its leaf hashes)
    // never change under its CID, so nodes built once fit every later slice of it
    const key = keyOf(cid)
    let inner = this.inner.get(key)
    if (inner === undefined || inner.byteLength !== (leafCount(got.length) - 1) * HASH_BYTES) {
      inner = innerNodes(got.length, got.hashes)
      this.inner.set(key, inner)
    }
    return { bytes: got.bytes, proof: proofFromTree(got.length, got.hashes, inner, first, end) }
  }

  private async fromWhole (cid: CID, whole: Uint8Array, first: number, end: number, root?: Uint8Array): Promise<LeafSlice | undefined> {
    // the leaves and root hashed off the event loop, in one addon job, where it is built: the
    // first small read of each chunk after a restart (or a dropped cache) hashes a whole fragment
    const tree = sha256Leaves !== undefined && whole.byteLength >= OFF_THREAD_LEAVES_MIN_BYTES ? await sha256Leaves(whole, LEAF_BYTES, false) : undefined
    const hashes = tree?.hashes ?? leafHashes(whole)
    const computed = tree?.root ?? rootFromLeaves(whole.byteLength, hashes)
    if (root !== undefined && !equalBytes(computed, root)) return undefined
    this.keep(cid, whole.byteLength, computed, hashes)
    if (end > leafCount(whole.byteLength) || first < 0 || first >= end) return undefined
    return { bytes: whole.subarray(first * LEAF_BYTES, Math.min(end * LEAF_BYTES, whole.byteLength)), length: whole.byteLength, hashes }
  }

  private sound (bytes: Uint8Array, hashes: Uint8Array, first: number, end: number): boolean {
    for (let l = first; l < end; l++) {
      const at = (l - first) * LEAF_BYTES
      if (!leafMatches(bytes.subarray(at, at + LEAF_BYTES), hashes, l)) return false
    }
    return true
  }

  private keep (cid: CID, length: number, root: Uint8Array, hashes: Uint8Array): void {
    if (hashes.byteLength !== leafCount(length) * HASH_BYTES) return
    const entry = new Uint8Array(8 + HASH_BYTES + hashes.byteLength)
    new DataView(entry.buffer).setBigUint64(0, BigInt(length))
    entry.set(root, 8)
    entry.set(hashes, 8 + HASH_BYTES)
    this.kept.set(keyOf(cid), entry)
  }
}

/**
 * `store` whose put() and putMany() also keep the leaf hashes of the blocks they stored
 * (LocalLeaves.rememberStored, not awaited: a put does not wait for them). The daemon stores what
 * comes from peers through it (a block pushed to the swarm's sink, a copy pins pull, a fragment
 * repair copies, rebuilds or keeps undelivered): a block stored past it is read and hashed whole
 * by its holder at a peer's first 4 KiB range want of it.
 */
export function rememberingLeaves<S extends Pick<Store, 'put' | 'putMany'>> (store: S, leaves: LocalLeaves): S {
  const remember = (blocks: Array<{ cid: CID, bytes: Uint8Array }>): void => {
    // ignored: without its hashes the first slice of a block reads it whole (rememberStored)
    for (const { cid, bytes } of blocks) void leaves.rememberStored(cid, bytes).catch(() => {})
  }
  const methods: Partial<S> = {
    put: async (cid: CID, bytes: Uint8Array, opts?: Parameters<Store['put']>[2]): Promise<void> => {
      await store.put(cid, bytes, opts)
      remember([{ cid, bytes }])
    },
    putMany: async (blocks: Array<{ cid: CID, bytes: Uint8Array }>, opts?: Parameters<Store['putMany']>[1]): Promise<void> => {
      await store.putMany(blocks, opts)
      remember(blocks)
    }
  } as Partial<S>
  return withMethods(store, methods)
}

/**
 * A fragment's key in the caches: its CID's bytes as latin1. Not its string: a holder's CID is
 * decoded from a peer's range want, a fresh object each time, whose toString() (base32, ~5 µs:
 * no cache spares it) cost a slice of a kept fragment about as much as reading it from the page cache.
 */
function keyOf (cid: CID): string {
  return bytesKey(cid.bytes)
}
