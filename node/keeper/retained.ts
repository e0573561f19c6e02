// What the network must keep (DESIGN.md §2, §3): the manifests and chunks of every live file's
// current content and of every version in its history younger than the retention period.
// Repair keeps these redundant, status counts them, GC keeps exactly these.
import type { CID } from 'multiformats/cid'
import type { ChunkRef } from '../data/index.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Volume } from '../index.ts'
import type { Content } from '../tree/index.ts'
import { codingKey } from './coding.ts'
import { logger } from '../log.ts'

const log = logger('keeper:retained')

/** Default time old versions (from history) stay retained: 7 days. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600_000

export interface Retained {
  /** Manifest CIDs, by cid.toString(). */
  manifests: Map<string, CID>
  /**
   * Chunks (no holes), by coding (coding.ts codingKey): the same bytes at two codings (two files
   * written at different k) are two entries, each repaired and counted on its own.
   */
  chunks: Map<string, ChunkRef>
  /** Manifests that could not be read (here or from any peer): their chunks are unknown. */
  unreadable: number
  /** The chunks of each manifest read, by manifest cid.toString() (status counts per file version). */
  byManifest: Map<string, ChunkRef[]>
  /** The manifests that could not be read (their keys). */
  missing: Set<string>
}

/** Every content of every live file, current and in history within `retentionMs`. */
export function retainedContents (volume: Volume, retentionMs: number, now = Date.now()): Content[] {
  // a walk from the root by name, each inode once: a file's contents and its versions' since the
  // horizon (Tree.liveContents, over the tree's records: no copy of each inode and entry)
  return volume.tree.liveContents(BigInt(Math.max(0, now - retentionMs)) * 1_000_000n)
}

/**
 * Read the manifests of the retained contents and collect their chunks. `known`: the chunks of
 * manifests read before (a former result's byManifest): a manifest is named by its hash and never
 * changes, so those are not read again. A repair pass lists every retained manifest, and past the
 * chunk service's manifest cache (a tree of more files than it holds) each listing read every
 * manifest again from the disk, or from a peer when this host holds no copy of it. `refs`: the
 * keeper-wide cache of manifests read before (manifestRefs(volume) when not given), shared by GC,
 * repair and release: every manifest read here is put in it.
 */
export async function retained (volume: Volume, retentionMs: number, opts: AbortOptions & { now?: number, known?: ReadonlyMap<string, ChunkRef[]>, refs?: ManifestRefs } = {}): Promise<Retained> {
  const refs = opts.refs ?? manifestRefs(volume)
  const result: Retained = { manifests: new Map(), chunks: new Map(), unreadable: 0, byManifest: new Map(), missing: new Set() }
  for (const content of retainedContents(volume, retentionMs, opts.now)) {
    if (!('manifest' in content)) continue
    const key = content.manifest.toString()
    if (result.manifests.has(key)) continue
    result.manifests.set(key, content.manifest)
    opts.signal?.throwIfAborted()
    const known = opts.known?.get(key) ?? refs.get(key)
    if (known !== undefined) {
      collect(result, key, known)
      continue
    }
    let manifest
    try {
      manifest = await volume.chunks.readManifest(content.manifest, opts)
    } catch (err) {
      // counted: GC removes nothing in a round where some retained manifest is unknown
      log('manifest %s unreadable: %s', key, (err as Error).message)
      result.unreadable++
      result.missing.add(key)
      continue
    }
    const chunks = manifest.chunks.filter(ref => ref.cid !== null)
    refs.set(key, chunks)
    collect(result, key, chunks)
  }
  // what the tree retains no more leaves the cache (it held the refs of deleted files and expired
  // versions until pushed out: review32g)
  refs.prune(result.manifests)
  return result
}

/** Add one manifest's data chunks to the result. */
function collect (result: Retained, key: string, refs: ChunkRef[]): void {
  for (const ref of refs) {
    // one chunk in manifests of both placement rules (equal bytes written before and after
    // the switch: placement.ts): the balanced ref wins whatever the order of the manifests, so
    // every pass plans the chunk by one rule and its fragments do not go back and forth
    // (a rule is not part of the coding: the fragments are the same under both)
    const key = codingKey(ref)
    const had = result.chunks.get(key)
    if (had === undefined || (had.rule === undefined && ref.rule !== undefined)) result.chunks.set(key, ref)
  }
  result.byManifest.set(key, refs)
}

/** Most manifests a ManifestRefs holds. */
export const MANIFEST_REFS_ENTRIES = 65_536
/**
 * Most heap (estimated: refHeapBytes) the refs a ManifestRefs holds may take: 128 MiB, ~6,900
 * refs of 4 + 2 coded chunks or ~12,000 small files' refs (k = 1, three copies) at the estimate,
 * well past the 5,000 files a walk was measured at (walk32: 17-27 ms per release with every
 * manifest held, 730-1,190 ms read from the disk), and what a storage host can spare for a cache.
 * It was 262,144 refs: up to 5 GB at the estimate. Filled with real decoded refs to the bound, the
 * heap they took measured 43.6-45.4 MiB as decoded and 126.9-128.7 MiB with every string made.
 */
export const MANIFEST_REFS_BYTES = 128 << 20

/**
 * Heap of one decoded ref, by its fragment count, measured (cache33: decodeManifest's refs held,
 * after GC, Node 26): the ref, its chunk CID and each fragment CID as an object of its own
 * (multihash and bytes views, the decoded manifest's buffer), its roots, and, once a walk, repair
 * or status has asked for them, the CIDs' cached strings and the coding key. A 4 + 2 ref measured
 * 6.5 KB as decoded and 18.9 KB once every CID had made its string (multiformats' base32 builds
 * it a character at a time: a rope of ~1.7 KB per CID until it is used as a map key and flattened;
 * 8.9 KB then); a replicated ref (three copies, four CID objects) 3.8, 10.9 and 5.0 KB. The
 * estimate is the upper line through both: 3,000 B + 2,700 B per fragment (19.2 and 11.1 KB).
 */
export const REF_HEAP_BYTES = 3_000
export const FRAGMENT_HEAP_BYTES = 2_700

/** The estimated heap a ref takes held (see REF_HEAP_BYTES). */
export function refHeapBytes (ref: Pick<ChunkRef, 'fragments'>): number {
  return REF_HEAP_BYTES + FRAGMENT_HEAP_BYTES * ref.fragments.length
}

/**
 * The data chunks of manifests read before, by manifest cid.toString(): a manifest is named by its
 * hash and never changes, so an entry is never stale. Least recently used first out, bounded by
 * manifests and by the estimated heap of its refs (refHeapBytes summed: a manifest of more than
 * the bound is not kept). Past the chunk service's own manifest cache (4,096) every retained()
 * walk read every manifest from the disk again (730-1,190 ms per walk at 5,000 files). Held
 * decoded, not as the manifest's bytes (~500 B per ref) decoded on use: a decode and its coding
 * keys cost 60-105 µs per ref against 0.6-4.5 µs for a held one (cache33), 0.3-0.5 s more per
 * walk of 5,000 files where a walk now takes 17-27 ms.
 */
export class ManifestRefs {
  private readonly entries = new Map<string, { refs: ChunkRef[], bytes: number }>()
  private chunks = 0
  private heap = 0
  readonly maxEntries: number
  readonly maxBytes: number

  constructor (opts: { maxEntries?: number, maxBytes?: number } = {}) {
    this.maxEntries = opts.maxEntries ?? MANIFEST_REFS_ENTRIES
    this.maxBytes = opts.maxBytes ?? MANIFEST_REFS_BYTES
  }

  /** Manifests held. */
  get size (): number { return this.entries.size }
  /** Chunk refs held, summed over the manifests. */
  get chunkCount (): number { return this.chunks }
  /** The estimated heap of the refs held (refHeapBytes summed). */
  get bytes (): number { return this.heap }

  get (key: string): ChunkRef[] | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    // most recently used last
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.refs
  }

  /**
   * Hold `key`'s refs, unless full: a walk visits the manifests in the same order every time, so
   * evicting the least recently used to make room would evict the very next one it needs and, past
   * the bound, no walk would hit at all (review32g); a full cache keeps the ones it has instead
   * (prune() makes room for new ones as old ones stop being retained).
   */
  set (key: string, refs: ChunkRef[]): void {
    this.forget(key)
    if (this.maxEntries < 1) return
    let bytes = 0
    for (const ref of refs) bytes += refHeapBytes(ref)
    if (this.entries.size + 1 > this.maxEntries || this.heap + bytes > this.maxBytes) return
    this.entries.set(key, { refs, bytes })
    this.chunks += refs.length
    this.heap += bytes
  }

  /** Forget every manifest not in `live` (a complete walk's manifests: the others are retained no more). */
  prune (live: ReadonlyMap<string, unknown>): void {
    for (const key of this.entries.keys()) {
      if (!live.has(key)) this.forget(key)
    }
  }

  private forget (key: string): void {
    const entry = this.entries.get(key)
    if (entry === undefined) return
    this.entries.delete(key)
    this.chunks -= entry.refs.length
    this.heap -= entry.bytes
  }
}

const shared = new WeakMap<Volume, ManifestRefs>()

/** The keeper-wide ManifestRefs of a volume (one for GC, repair and release). */
export function manifestRefs (volume: Volume): ManifestRefs {
  let refs = shared.get(volume)
  if (refs === undefined) { refs = new ManifestRefs(); shared.set(volume, refs) }
  return refs
}
