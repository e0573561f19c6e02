// Chunk service: where the Volume's bytes go and come from. Stores every chunk it writes
// locally first (durable before the write op is committed), but an open file's early chunk, placed
// first and stored here only when not placed (ChunkWrite.chunk `deferred`), and reads through a bounded
// cache, the local store, then the network (when it is given a Network: swarm pull of any k
// fragments from their holders; see network.ts). Every read takes the caller's signal down to the
// network fetch; a fetch that several readers wait on runs until the last of them gives up.
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { raceSignal, settledWithin } from '../abort.ts'
import { ChunkCache, LeafCache } from './cache.ts'
import { CHUNK_SIZE, MAX_MANIFEST_BYTES, ManifestError, clayFor, fragmentBytes, decodeChunkOffThread, encodeChunkPooled, encodeReplicatedWithLeaves, decodeManifest, encodeManifest, fragmentSlices, manifestRef, rootCount, PLACEMENT_BALANCED } from './chunks.ts'
import type { ChunkRef, FragmentSlice, Manifest } from './chunks.ts'
import { BlockUnavailableError, CorruptBlockError, FsError } from '../errors.ts'
import type { Store } from './store.ts'
import { ShardLease, Staging } from './staging.ts'
import { ShardPool, chunkBytes } from './erasure.ts'
import { LEAF_BYTES } from './merkle.ts'
import { LocalLeaves } from './leaves.ts'
import { RecentCommits } from './recent.ts'
import type { LeafSlice } from './leaves.ts'
import { logger } from '../log.ts'

const log = logger('data:chunks')

/**
 * Most bytes one sequential reader has fetched ahead of where it reads (chunks in flight, or
 * decoded and not read yet): 16 MiB, 16 chunks. A chunk from other hosts costs a have-query and
 * a pull of k fragments, hundreds of ms on a busy host; one reader needs this many in flight to
 * keep its link full (scripts/bench/read-cold.ts). ChunkServiceInit.readaheadBytes changes it
 * (0: no readahead).
 */
export const READAHEAD_MAX_BYTES = 16 << 20
/** The window a sequential reader starts with; it doubles with each new chunk it reads, up to the max. */
export const READAHEAD_INITIAL_BYTES = 4 << 20
/**
 * Bytes of chunks fetched ahead on this host at once, over all readers: past it a reader fetches
 * only what it reads (the memory of readahead stays bounded however many files are read).
 */
export const READAHEAD_TOTAL_BYTES = 64 << 20
/**
 * Largest read of a chunk served from a few leaves of its data fragments (readRange) rather
 * than the whole chunk: past it, the leaves and proofs are a good part of the chunk anyway,
 * and the whole chunk, cached, serves the reads around it too.
 */
export const RANGE_READ_MAX_BYTES = 256 << 10
/**
 * Bytes of verified fragment leaves kept from range reads (readRange): a page read again and
 * again (a database's hot pages) is fetched once, as the chunk cache does for whole chunks.
 */
export const LEAF_CACHE_BYTES = 16 << 20
/** Decoded manifests kept in memory. */
export const MANIFEST_CACHE_ENTRIES = 4096
/**
 * Bytes of fragments one write (a ChunkWrite: `put`, writeFile) may hold on this host ahead of
 * their placement: 64 MiB, about 42 chunks of 4+2 at 1 MiB (the same as the staging memory
 * bound, so every fragment is pushed from memory). A chunk leaves the window once its placement
 * is over: its fragments are on their holders and the copies that are not this host's are
 * handed over (deleted here), or it is left pending (offline: then it stays here whole). The
 * write waits for room (backpressure up to the writer), so the writer's disk holds at most this
 * plus its own share of what is placed.
 */
export const PLACE_WINDOW_BYTES = 64 * 1024 * 1024
/**
 * How long a deferred chunk's durable() (ChunkWrite.chunk `deferred`: an fsync, a flush, a commit
 * of an open file) waits for its placement before its data fragments are stored here anyway (the
 * placement goes on): 2 s. On a LAN a chunk is placed in milliseconds; one target that takes a
 * push and stalls would hold every fsync for the placement's own bound (PLACE_TIMEOUT_MS per
 * attempt), past FUSE's request timeout (review43a). On a thin uplink this is the old cost: the
 * chunk stored here first.
 */
export const DEFERRED_PLACE_WAIT_MS = 2000
/**
 * Chunks of at most this many bytes are replicated (k = 1, m + 1 copies: the same losses
 * tolerated) rather than erasure-coded (DESIGN.md §5: "replicated when small, erasure-coded when
 * large"). A small chunk's cost is per fragment, not per byte: at k = 4, m = 2 a 5 KiB file was
 * six blocks of 1.3 KiB, each a push, a store with its fsync and a custody exchange on a host of
 * its own, where three copies cost two pushes (issue 15: a 1,000-file `git clone` on six hosts).
 * Its bytes count three times on disk instead of 1.5, which at this size is less than the
 * metadata around it. Reads need one block from any of three holders, not four.
 */
export const REPLICATE_MAX_BYTES = 64 * 1024

/** A slot of fetchChunk's fragments being read from this host's store (not the network's). */
const READ_HERE = new Uint8Array(0)

/** Whether two refs are one coding of one chunk (the chunk's CID, k and the same fragments). */
function sameCoding (a: ChunkRef, b: ChunkRef): boolean {
  if (a.cid === null || b.cid === null || a.k !== b.k || a.fragments.length !== b.fragments.length || !a.cid.equals(b.cid)) return false
  return a.fragments.every((f, i) => f.equals(b.fragments[i]))
}

/** The parameters a chunk of `size` bytes is stored with, from the network's (REPLICATE_MAX_BYTES). */
export function paramsFor (size: number, p: { k: number, m: number }): { k: number, m: number } {
  return p.k > 1 && size <= REPLICATE_MAX_BYTES ? { k: 1, m: p.m } : p
}

/**
 * Memory a fragment may be written into as it arrives from a peer (the swarm's Landing): exactly
 * the fragment's length; `landed()` once every byte is written.
 */
export interface Landing { bytes: Uint8Array, landed: () => void }

/**
 * A chunk read's buffer, with the places of the data fragments it fetches from peers in it
 * (Network.fetch `land`): each fragment's frame is written there as it arrives (swarm/protocol.ts
 * FrameDecoder), so a fragment is copied once, from the received pieces into the chunk, not
 * joined into a buffer of its own and copied into the chunk by the decode (issue 15: those two
 * copies and the fresh memory under the first were ~15% of a cold read's event loop on six
 * hosts). Nothing here is trusted for being written: a fragment counts only when the fetch
 * returns it (verified against its CID by the swarm), and the buffer becomes the chunk only when
 * no place can be written any more but by what the fetch returned (close()).
 */
export class ChunkLanding {
  /** The chunk's bytes to be (ref.size). */
  readonly bytes: Uint8Array
  /** Places by fragment CID: the first data fragment of that CID not read here, and whether a frame took it (1) and finished (2). */
  private readonly places = new Map<string, { at: Uint8Array, state: 0 | 1 | 2 }>()
  private closed = false
  /** Places that hold what the fetch returned, once closed (ReadCounters.landed). */
  arrived = 0

  /**
   * For `ref` (Reed–Solomon, k > 1) whose data fragments `frags` (undefined: not here) are
   * `size` bytes each; undefined when no data fragment whole in the chunk is to be fetched.
   */
  static for (ref: ChunkRef, frags: Array<Uint8Array | undefined>, size: number, bytes: Uint8Array): ChunkLanding | undefined {
    if (!ChunkLanding.lands(ref, size)) return undefined
    const wanted: number[] = []
    for (let j = 0; j < ref.k; j++) if (frags[j] === undefined && (j + 1) * size <= ref.size) wanted.push(j)
    return wanted.length === 0 ? undefined : new ChunkLanding(ref, wanted, size, bytes)
  }

  /** Whether `ref`'s data fragments (`size` bytes each) can lie in place in its chunk: Reed–Solomon, k > 1. */
  static lands (ref: ChunkRef, size: number): boolean {
    return ref.cid !== null && ref.k > 1 && ref.clay === undefined && size > 0
  }

  /** `bytes`: the chunk's buffer (ref.size, chunkBytes), where no one but this landing writes from now on. */
  private constructor (ref: ChunkRef, wanted: number[], size: number, bytes: Uint8Array) {
    this.bytes = bytes
    for (const j of wanted) {
      const key = ref.fragments[j].toString()
      // a CID twice among the data fragments (equal fragments): one place; the others are copied
      if (!this.places.has(key)) this.places.set(key, { at: this.bytes.subarray(j * size, (j + 1) * size), state: 0 })
    }
  }

  /** Network.fetch's `land`: a place for the first frame of a fragment, while the fetch runs. */
  readonly land = (cid: CID, bytes: number): Landing | undefined => {
    if (this.closed) return undefined
    const place = this.places.get(cid.toString())
    if (place === undefined || place.state !== 0 || place.at.byteLength !== bytes) return undefined
    place.state = 1
    return { bytes: place.at, landed: () => { place.state = 2 } }
  }

  /** No place is given out from now on (the read is over, whatever its outcome). */
  shut (): void {
    this.closed = true
  }

  /**
   * The fetch is over: no place is given out from now on. The chunk's buffer to decode into when
   * every place is either untouched or holds, finished, exactly the fragment `frags` has there (the
   * fetch returned that landing); undefined when a frame is still writing one (a hedged request's,
   * arriving late) or one holds bytes the fetch did not return (a frame that failed its check, or
   * came after the pull had its answer from another peer): decoding into it then could put
   * unverified bytes in the chunk, or change bytes someone else was given.
   */
  close (frags: Array<Uint8Array | undefined>): Uint8Array | undefined {
    this.closed = true
    let arrived = 0
    for (const place of this.places.values()) {
      if (place.state === 0) continue
      if (place.state === 1 || !frags.includes(place.at)) return undefined
      arrived++
    }
    this.arrived = arrived
    return this.bytes
  }
}

/** What the chunk service needs of the network (implemented in network.ts over host + swarm). */
export interface Network {
  /** Erasure parameters for new chunks, from the live network (DESIGN.md §2). */
  params: () => { k: number, m: number }
  /**
   * Fetch `need` of the given fragment CIDs (data first) from peers; verified. `chunk`: the
   * chunk they belong to, so its targets can be asked who holds what first.
   */
  fetch: (cids: CID[], need: number, opts?: AbortOptions & { chunk?: ChunkRef, land?: (cid: CID, bytes: number) => Landing | undefined }) => Promise<Map<string, Uint8Array>>
  /**
   * Place the fragments of newly written chunks on their targets and resolve when the attempt
   * is over (acknowledged, or left pending for a retry); `inode`: the file they belong to;
   * `staged`: fragments still in memory (else they are read from the local store); `lend`: the
   * same, each lent until its push is over (Staging.lend: done(true) only when every target
   * acknowledged it), preferred to `staged` where given; `isStaged`: whether one is staged.
   */
  place: (refs: ChunkRef[], opts?: AbortOptions & { inode?: string, staged?: (cid: CID) => Uint8Array | undefined, lend?: (cid: CID) => { bytes: Uint8Array, done: (clean: boolean) => void } | undefined, isStaged?: (cid: CID) => boolean, settle?: boolean, safe?: boolean }) => Promise<void>
  /**
   * Resolves once the chunk survives one lost host by the acknowledgements of its placement so
   * far (two holders of its block, or k fragments left whichever host goes), or when `signal`
   * aborts (it then resolves too: the caller races it with the placement itself). Optional:
   * without it a ChunkWrite's safe wait is its whole placement.
   */
  safe?: (ref: ChunkRef, opts?: AbortOptions) => Promise<void>
  /**
   * Leaves [slice.first, slice.end) of one data fragment of `ref`, verified against its Merkle
   * root (ref.roots), from a holder (range wants). Optional: without it chunks are read whole.
   */
  fetchRange?: (ref: ChunkRef, slice: FragmentSlice, opts?: AbortOptions) => Promise<Uint8Array>
  /** Fetch one block (e.g. a manifest) from whoever has it. */
  fetchOne: (cid: CID, opts?: AbortOptions) => Promise<Uint8Array>
  /**
   * A write that stored these chunks was abandoned before its commit: stop placing them, and
   * ask the hosts that took their fragments to delete what nothing else needs there.
   */
  abandon?: (refs: ChunkRef[], opts?: AbortOptions & { keep?: (fragment: CID) => boolean }) => Promise<void>
  /** Whether a local block may be deleted now (no peer was promised it: custody). */
  mayDelete?: (cid: CID) => boolean
  /**
   * Have the holders of chunks placed before promise them again (a write still open past its
   * targets' promises: ChunkWrite), nothing pushed; resolves when the round is over, or at once
   * when `signal` aborts. `live(ref)`: whether the chunk is still the write's (a chunk released
   * meanwhile, ChunkWrite.release(), gets no new record and is not placed again). Optional:
   * without it nothing is renewed.
   */
  renew?: (refs: ChunkRef[], opts?: AbortOptions & { inode?: string, live?: (ref: ChunkRef) => boolean }) => Promise<void>
  /**
   * Of `cids`, the ones this host's own tree needs: a write given up (abandon(), release())
   * neither asks peers to delete them nor deletes them here (another write of the same bytes
   * here committed; peers that have not seen that commit would delete them). Optional: none.
   */
  referenced?: (cids: CID[], opts?: AbortOptions) => Promise<Set<string>>
  /**
   * Whether the placement of `ref` is over with every fragment on a holder that acknowledged it
   * durably stored (not pending, not being placed): the chunk is durable without a copy here.
   * Optional: without it a ChunkWrite stores every chunk here (no chunk is deferred).
   */
  placedNow?: (ref: ChunkRef) => boolean
  /**
   * These chunks, stored here, are committed (the op naming them is in the tree) and this host
   * places them with a place() to come (ChunkWrite.placed(): a version's manifest, after its
   * chunks): pending from now, and this host's repair leaves them to that placement as to one in
   * flight (it neither places them first nor hands this host's copy over meanwhile). Optional:
   * without it they are pending from their place() alone.
   */
  pend?: (refs: ChunkRef[], opts?: { inode?: string }) => void
  /**
   * A placed chunk's fragments stored here after its placement began (a deferred chunk's data
   * fragments, stored once its placement outlived ChunkService.deferredPlaceWaitMs: ChunkWrite
   * storeUnplaced()): the ones this host is no target of are handed over as that placement's end
   * hands copies over (once their keepers promised them; kept on any failure). Resolves when the
   * round is over. Optional: without it they are left to repair's redundancy pass.
   */
  handOverLate?: (ref: ChunkRef, opts?: { inode?: string }) => Promise<void>
}

/** How far a ChunkWrite is: bytes stored here, and bytes whose placement is over. */
export interface WriteProgress { stored: number, placed: number }

export interface ChunkWriteOptions {
  /** The inode whose pinning hosts get the chunks (for a new file: the directory it goes in). */
  inode?: string
  /** Bytes of fragments held ahead of their placement (default PLACE_WINDOW_BYTES). */
  windowBytes?: number
  /** Told after each chunk is stored and after each chunk's placement is over. */
  onProgress?: (p: WriteProgress) => void
}

/**
 * What the read path did (tests and benchmarks): chunk fetches that went to the network in all,
 * in flight now and at most at once since markReadPeak(), and chunks fetched ahead of a reader.
 */
export interface ReadCounters {
  fetches: number
  fetching: number
  fetchingPeak: number
  ahead: number
  /** Small reads served from leaves of data fragments (readRange), and those that fell back to the whole chunk. */
  ranges: number
  rangeFallbacks: number
  /** Erasure-coded chunks (k > 1) read whole (fetched, or read from this host's store). */
  coded: number
  /** Of those, the ones decoded through a parity fragment (a data fragment rebuilt). */
  rebuilt: number
  /**
   * Of those, the ones that took a parity fragment from a peer (for a data fragment it could not
   * have, or whose request went past its hedge time: swarm `ordered`). The rest of `rebuilt`
   * used a parity fragment this host holds, which saves fetching a data fragment for a decode
   * (six hosts at 4+2: a third of the chunks).
   */
  parityFetched: number
  /** Data fragments from peers written into their chunk as they arrived (ChunkLanding), with no copy of their own. */
  landed: number
}

/**
 * A chunk fetch shared by its readers: aborted when the last waiting reader gives up. `ahead`:
 * started by readAhead(), ahead of any reader (its deadline ran from then).
 */
interface SharedFetch { promise: Promise<Uint8Array>, controller: AbortController, waiting: number, ahead: boolean }

export interface ChunkServiceInit {
  /** Bound of the decoded-chunk cache in bytes (data/cache.ts; default DEFAULT_CACHE_BYTES; a host's: `--cache`, defaultCacheBytes). */
  cacheBytes?: number
  /** Where chunks not stored here come from and new ones go (keeper/network.ts); none: local only. */
  network?: Network
  /** Erasure parameters while no network is attached (default k = 1, m = 0: one local copy). */
  localParams?: { k: number, m: number }
  /**
   * Where written fragments wait in memory until placed (staging.ts); the host shares it with
   * the swarm, which serves relays from it. Default: a new one when there is a network.
   */
  staging?: Staging
  /** Bytes of fragments a ChunkWrite holds ahead of their placement (default PLACE_WINDOW_BYTES). */
  placeWindowBytes?: number
  /**
   * Bytes of the fragments of deferred chunks (on no disk here while placed, pinned in the
   * staging: storeChunk `local: false`) under way at once, every write's together; a chunk past
   * it is stored here first, as any other. Default: half of the staging's bound, so the rest of
   * the staging still serves the other writes (review43a: one write's window is that much already).
   */
  deferredBytesMax?: number
  /** How long a deferred chunk's durable() waits for its placement (default DEFERRED_PLACE_WAIT_MS). */
  deferredPlaceWaitMs?: number
  /**
   * Leaf hashes of the fragments stored here (leaves.ts), shared with the swarm's range
   * serving; default: a new one over `store` and the staging.
   */
  localLeaves?: LocalLeaves
  /** Most bytes a sequential reader fetches ahead (default READAHEAD_MAX_BYTES; 0: none). */
  readaheadBytes?: number
  /** The placement rule new chunks record (ChunkRef.rule; default PLACEMENT_BALANCED; null: none, the XOR rule). */
  placementRule?: typeof PLACEMENT_BALANCED | null
  /** The code new erasure-coded chunks are written with (ChunkService.codec; default 'rs'). */
  codec?: Codec
  /**
   * Whether every member reads Clay-coded chunks now (the daemon: net/features.ts FEATURE_CLAY);
   * while it says no, a 'clay' codec writes Reed–Solomon. Default: yes (a host alone).
   */
  clayReadable?: () => boolean
  /**
   * How often a write still open has the holders of the chunks it placed promise them again
   * (ChunkWrite; the daemon: half of keeper/custody.ts CUSTODY_PROMISE_MS). Their promises hold
   * that long: another writer of the same bytes that gives up after they ended would have the
   * fragments deleted that this write placed and has not committed yet (keeper/release.ts).
   * Default: never (no custody; a host alone).
   */
  renewMs?: number
  /**
   * How long the blocks of a version committed here are remembered, so a write given up here
   * leaves them out of its release (recent.ts; default RECENT_COMMIT_MS), and at most how many
   * (default RECENT_COMMIT_ENTRIES).
   */
  recentCommitMs?: number
  recentCommitEntries?: number
  /** The clock of that memory (default performance.now: tests step their own). */
  recentCommitClock?: () => number
}

/**
 * The erasure code new chunks are written with: 'rs', Reed–Solomon (erasure.ts), or 'clay', a
 * Clay code with d = k + m - 1 (clay.ts; a repair reads d / (d - k + 1) fragments' worth, not k),
 * recorded in each chunk's ref (ChunkRef.clay, a v3 manifest). A feature gate, off by default:
 * a host that does not know v3 refuses such a manifest, so turn it on only once every member
 * runs a release that reads them. Replicated chunks (k = 1) and m = 1 stay as they are.
 */
export type Codec = 'rs' | 'clay'
export const CODECS: readonly Codec[] = ['rs', 'clay']

/**
 * Released parity memory the chunk service keeps for the next chunks' encodes (ShardPool): 16 MiB,
 * 32 chunks of 4+2 at 1 MiB. What is in use (staged, being stored) is not counted here.
 */
export const SHARD_POOL_BYTES = 16 << 20

/** Block puts one commit runs at once at most (PutGroup): two, so each overlaps the next. */
export const PUT_GROUP_PARALLEL = 2
/**
 * Chunk puts one ChunkWrite runs at once at most while its writer goes on (chunk() waits past
 * it): four, so the writer encodes the next chunks while earlier ones sync; the place window
 * bounds the bytes besides.
 */
export const CHUNK_WRITE_PUTS_PARALLEL = 4

/**
 * The block puts of one commit (a version's chunks, then its manifest), run so that their disk
 * syncs overlap instead of following one another: a put joins the group once its blocks are
 * encoded and the caller goes on (to encode the next chunk, to store the manifest), while at most
 * PUT_GROUP_PARALLEL run (chunk stores all at once made sequential writes slower, open-file.ts
 * STORE_PARALLEL). done() resolves once every put is durable, and rejects with the first failure:
 * nothing may name the blocks before it resolves. A SQLite journal's commit stores a chunk and a
 * manifest: one sync round trip instead of two.
 */
export class PutGroup {
  private readonly running = new Set<Promise<void>>()
  /** track()'s: done() waits for them, add() does not. */
  private readonly tracked = new Set<Promise<void>>()
  private failed?: { err: unknown }
  private readonly parallel: number

  /** `parallel`: puts run at once at most (add() waits past it). */
  constructor (parallel: number = PUT_GROUP_PARALLEL) {
    this.parallel = parallel
  }

  /** Run `put` in the group; waits while the group is full; throws a failure seen so far. */
  async add (put: Promise<void>): Promise<void> {
    const run: Promise<void> = put.catch((err: unknown) => { this.failed ??= { err } }).finally(() => { this.running.delete(run) }) // kept: the next add() or done() throws it
    this.running.add(run)
    while (this.running.size >= this.parallel) await Promise.race(this.running)
    if (this.failed !== undefined) throw this.failed.err
  }

  /**
   * Count `put` in the group (done() waits for it, its failure is thrown) outside its `parallel`
   * bound: add() never waits for it (a deferred chunk's, ChunkWrite.storeUnplaced(), which lasts
   * its whole placement).
   */
  track (put: Promise<void>): void {
    const run: Promise<void> = put.catch((err: unknown) => { this.failed ??= { err } }).finally(() => { this.tracked.delete(run) }) // kept: the next add() or done() throws it
    this.tracked.add(run)
  }

  /** Throws the first failure of the group's puts so far, if any. */
  throwIfFailed (): void {
    if (this.failed !== undefined) throw this.failed.err
  }

  /** Every put of the group durable (or the first failure thrown). */
  async done (): Promise<void> {
    while (this.running.size > 0 || this.tracked.size > 0) await Promise.all([...this.running, ...this.tracked])
    if (this.failed !== undefined) throw this.failed.err
  }
}

/**
 * Chunks (each coding of one: its fragments) that writes in flight here stored, with how many of
 * them, and the same per fragment (two codings may share one): a write given up asks the hosts
 * that took its fragments to delete them (abandon()), and their promises are per peer (the
 * asking host's promises do not keep a block), so another write of the same bytes on this host,
 * not committed yet, would lose its remote fragments with it.
 */
export class OpenChunks {
  private readonly counts = new Map<string, number>()
  private readonly fragments = new Map<string, number>()

  private static key (ref: ChunkRef): string {
    return `${ref.cid?.toString() ?? ''}/${ref.fragments.map(f => f.toString()).join(',')}`
  }

  private static bump (map: Map<string, number>, key: string, by: number): void {
    const n = (map.get(key) ?? 0) + by
    if (n > 0) map.set(key, n)
    else map.delete(key)
  }

  add (ref: ChunkRef): void {
    OpenChunks.bump(this.counts, OpenChunks.key(ref), 1)
    for (const f of ref.fragments) OpenChunks.bump(this.fragments, f.toString(), 1)
  }

  /** One write no longer has `ref` (committed, given up, rewritten). */
  remove (ref: ChunkRef): void {
    if (!this.counts.has(OpenChunks.key(ref))) return
    OpenChunks.bump(this.counts, OpenChunks.key(ref), -1)
    for (const f of ref.fragments) OpenChunks.bump(this.fragments, f.toString(), -1)
  }

  /** Whether a write in flight has `ref` (this coding of it). */
  has (ref: ChunkRef): boolean {
    return this.counts.has(OpenChunks.key(ref))
  }

  /** Whether a write in flight has a chunk with this fragment (of any coding). */
  hasFragment (cid: CID): boolean {
    return this.fragments.has(cid.toString())
  }
}

/**
 * Fragments a write given up here is asking its peers (and this host) to delete: another write
 * of the same bytes here places them only after that (ChunkWrite), or the release, sent once
 * that write's fragments were pushed and promised, would delete them everywhere (promises to
 * the asking host do not keep a block: release.ts).
 */
export class Releasing {
  private readonly running = new Map<string, Set<Promise<void>>>()

  /** `fragments` are being released from now on, until the returned function is called. */
  begin (fragments: CID[]): () => void {
    const over = Promise.withResolvers<void>()
    const keys = [...new Set(fragments.map(f => f.toString()))]
    for (const key of keys) {
      let set = this.running.get(key)
      if (set === undefined) this.running.set(key, set = new Set())
      set.add(over.promise)
    }
    return () => {
      for (const key of keys) {
        const set = this.running.get(key)
        set?.delete(over.promise)
        if (set?.size === 0) this.running.delete(key)
      }
      over.resolve()
    }
  }

  /** Whether a fragment of `ref` is being released now. */
  busy (ref: ChunkRef): boolean {
    return ref.fragments.some(f => this.running.has(f.toString()))
  }

  /** Wait until no fragment of `ref` is being released. */
  async over (ref: ChunkRef, opts: AbortOptions = {}): Promise<void> {
    for (;;) {
      const waits = ref.fragments.flatMap(f => [...(this.running.get(f.toString()) ?? [])])
      if (waits.length === 0) return
      await raceSignal(Promise.all(waits), opts.signal)
    }
  }
}

export class ChunkService {
  /** The chunks the writes in flight here stored (ChunkWrite). */
  readonly open = new OpenChunks()
  /**
   * The chunks open files stored aside here (spilled) that no placement has taken yet: also in
   * `open`, but unlike a write's own chunks, nothing places them before their commit, so another
   * write of the same bytes placed meanwhile keeps its copies of their fragments here (its
   * handover: Network 'needed', keeper/network.ts) instead of leaving them on its targets alone.
   */
  readonly aside = new OpenChunks()
  /** The fragments writes given up here are releasing (ChunkWrite.abandon(), release()). */
  readonly releasing = new Releasing()
  /** The blocks of the versions committed here lately (ChunkWrite.committed()): what a write given up here spares (inTree()). */
  readonly recent: RecentCommits
  /** What stops each open write's renewals (ChunkWrite.renewLater()): close() calls them all. */
  readonly renewals = new Set<() => void>()
  /** close() was called: no write starts renewing after it. */
  closed = false
  private readonly store: Store
  private readonly cache: ChunkCache
  /** Verified leaves of data fragments from range reads, by `${fragment CID}/${leaf}` (LEAF_CACHE_BYTES). */
  /** Verified leaves of range reads, each a copy in the cache's own slots (LeafCache: get() gives a view to copy before awaiting). */
  private readonly leaves = new LeafCache(LEAF_CACHE_BYTES, LEAF_BYTES)
  private readonly localParams: { k: number, m: number }
  /** Decoded manifests read recently (oldest first), bounded by MANIFEST_CACHE_ENTRIES. */
  private readonly manifests = new Map<string, Manifest>()
  /** Chunk fetches in progress, by chunk CID. */
  private readonly reading = new Map<string, SharedFetch>()
  private readonly network?: Network
  /** Written fragments not yet placed, kept in memory for placement (none without a network). */
  private readonly staging?: Staging
  /** Verified slices of the fragments stored here, read without reading them whole (leaves.ts). */
  readonly localLeaves: LocalLeaves
  /**
   * Parity memory of stored chunks, recycled (storeChunk with `recycle`; ShardLease says when).
   * Its counters tell how often a write coded into recycled memory (shardPool.counters.reused).
   */
  readonly shardPool = new ShardPool({ maxFreeBytes: SHARD_POOL_BYTES })

  /** ChunkWrite's default window (PLACE_WINDOW_BYTES). */
  readonly placeWindowBytes: number
  /** See ChunkServiceInit.deferredPlaceWaitMs. */
  readonly deferredPlaceWaitMs: number
  private readonly deferredBytesMax: number
  /** Staged bytes of the deferred chunks under way (storeChunk `local: false`, until deferredOver()). */
  private deferredBytes = 0
  /** The deferred chunks under way (each storeChunk's own ref) and their staged bytes. */
  private readonly deferredRefs = new Map<ChunkRef, number>()
  /** How often a ChunkWrite still open renews its placed chunks' promises (ChunkServiceInit.renewMs; undefined: never). */
  readonly renewMs?: number
  /** Most bytes one sequential reader fetches ahead (READAHEAD_MAX_BYTES). */
  readonly readaheadBytes: number
  /**
   * The placement rule new chunks record in their refs (ChunkRef.rule): PLACEMENT_BALANCED, or
   * null for none (the XOR rule of manifests written before it). Writable: a test writes the
   * chunks of "older" files with null, then sets it back.
   */
  placementRule: typeof PLACEMENT_BALANCED | null
  /** The code new erasure-coded chunks are written with (Codec). Writable: a test turns the gate on and off. */
  codec: Codec
  private readonly clayReadable: () => boolean
  /** Bytes of chunks being fetched ahead now, over all readers (bounded by READAHEAD_TOTAL_BYTES). */
  private aheadBytes = 0
  private readonly counters: ReadCounters = { fetches: 0, fetching: 0, fetchingPeak: 0, ahead: 0, ranges: 0, rangeFallbacks: 0, coded: 0, rebuilt: 0, parityFetched: 0, landed: 0 }

  constructor (store: Store, init: ChunkServiceInit = {}) {
    this.store = store
    this.placeWindowBytes = init.placeWindowBytes ?? PLACE_WINDOW_BYTES
    this.deferredPlaceWaitMs = init.deferredPlaceWaitMs ?? DEFERRED_PLACE_WAIT_MS
    if (init.renewMs !== undefined && !(init.renewMs > 0)) throw new RangeError(`renewMs must be a positive number of ms, not ${init.renewMs}`)
    this.renewMs = init.renewMs
    this.recent = new RecentCommits({ ageMs: init.recentCommitMs, max: init.recentCommitEntries, now: init.recentCommitClock })
    this.readaheadBytes = Math.max(0, init.readaheadBytes ?? READAHEAD_MAX_BYTES)
    this.placementRule = init.placementRule === undefined ? PLACEMENT_BALANCED : init.placementRule
    this.codec = init.codec ?? 'rs'
    this.clayReadable = init.clayReadable ?? (() => true)
    this.cache = new ChunkCache(init.cacheBytes)
    this.localParams = init.localParams ?? { k: 1, m: 0 }
    this.network = init.network
    this.staging = init.staging ?? (init.network !== undefined ? new Staging() : undefined)
    const staging = this.staging
    this.deferredBytesMax = init.deferredBytesMax ?? Math.floor((staging?.maxBytes ?? 0) / 2)
    this.localLeaves = init.localLeaves ?? new LocalLeaves(store, { staged: cid => staging?.get(cid.toString()) })
  }

  /** A written fragment still waiting for placement, from memory (the swarm serves relays from it). */
  staged (cid: CID): Uint8Array | undefined {
    return this.staging?.get(cid)
  }

  params (): { k: number, m: number } {
    return this.network?.params() ?? this.localParams
  }

  /** What the read path did so far (ReadCounters). */
  readCounters (): ReadCounters {
    return { ...this.counters }
  }

  /** Bytes of decoded chunks the cache holds now, and its bound (`--cache`). */
  cacheFigures (): { bytes: number, maxBytes: number } {
    return { bytes: this.cache.size, maxBytes: this.cache.maxBytes }
  }

  /** Start counting the most chunk fetches in flight at once afresh. */
  markReadPeak (): void {
    this.counters.fetchingPeak = this.counters.fetching
  }

  /**
   * Drop decoded chunks and manifests from memory (tests and benchmarks read cold); `leafHashes:
   * false` keeps the leaf hashes of local fragments (leaves.ts), as after writing them or reading
   * them once.
   */
  dropCache (opts: { leafHashes?: boolean } = {}): void {
    this.cache.clear()
    this.manifests.clear()
    this.leaves.clear()
    if (opts.leafHashes !== false) this.localLeaves.clear()
  }

  /** A write of a whole new version that places its chunks as it stores them (ChunkWrite). */
  /**
   * The service's owner closes (Volume.close()): every open write stops renewing its placed
   * chunks' promises at once (a round in flight is aborted), and none starts after it. Idempotent.
   */
  close (): void {
    this.closed = true
    for (const stop of [...this.renewals]) stop()
    this.renewals.clear()
  }

  write (opts: ChunkWriteOptions = {}): ChunkWrite {
    return new ChunkWrite(this, this.store, this.network, opts.windowBytes ?? this.placeWindowBytes, opts.inode, opts.onProgress)
  }

  /**
   * Encode and store a chunk locally (fsynced: with a network and k > 1 its k data fragments
   * alone, the parity only staged, see below). Placement happens at commit. `claim`: see
   * Store.putMany. With a `group`, it returns once the chunk is encoded: its put runs in the
   * group, and is durable once group.done() resolves (PutGroup); `stored` is that put alone
   * (it rejects as the group does: whoever waits on it handles the failure too).
   * The decoded chunk (cache) and its fragments (staging) are in memory from the encode on, not
   * from the put's end: a read of the chunk, or its placement, never goes to a disk or a network
   * that does not have it yet while the put runs in a group.
   * `recycle`: the caller reads only the ref and the blocks' CIDs, never their bytes: the parity
   * is then coded into recycled memory (shardPool), which goes back to the pool once the put
   * succeeded and the staging let go of it, unless someone took it from the staging (ShardLease);
   * the returned parity blocks' bytes are detached from then on (length 0).
   * `local: false`, with a network and k > 1: nothing is stored here (`deferred` says so): the
   * chunk is only encoded, cached and staged for a placement that starts at once, which stores
   * the fragments this host keeps; the caller stores the data fragments here itself if that
   * placement does not place the chunk (ChunkWrite.chunk's `deferred`). Its fragments are staged
   * pinned (never forgotten for room) until deferredOver(ref); a chunk that does not fit in
   * ChunkServiceInit.deferredBytesMax with the deferred ones under way is stored here as any other.
   */
  async storeChunk (bytes: Uint8Array, offset: number, opts: AbortOptions & { claim?: object, params?: { k: number, m: number }, group?: PutGroup, recycle?: boolean, local?: boolean } = {}): Promise<{ ref: ChunkRef, blocks: Array<{ cid: CID, bytes: Uint8Array }>, stored: Promise<void>, deferred: boolean }> {
    // local work: checked at entry, never torn half-way
    opts.signal?.throwIfAborted()
    const { k, m } = paramsFor(bytes.byteLength, opts.params ?? this.params())
    // hashed off the event loop; the data fragments' Merkle roots (range reads, as withRoots) are
    // one more pass here, and their leaf hashes are kept: a small read of the chunk later reads
    // only its page from disk (leaves.ts)
    // (k = 1: the CID and the leaves from one pass, encodeReplicatedWithLeaves)
    const one = k === 1 ? await encodeReplicatedWithLeaves(bytes, offset, m) : undefined
    // `recycle`: the parity in the pool's memory, given back once stored and no longer staged
    // (ShardLease; the lease's first hold is this function's, until the put succeeds)
    const clay = this.codec === 'clay' && k > 1 && this.clayReadable() ? clayFor(k, m) : undefined
    const coded = one === undefined ? await encodeChunkPooled(bytes, offset, k, m, opts.recycle === true ? this.shardPool : undefined, clay) : undefined
    const encoded = one?.encoded ?? coded!
    const lease = coded?.pooled !== undefined ? new ShardLease(coded.pooled) : undefined
    let put: Promise<void>
    let deferred = false
    try {
      if (encoded.ref.cid !== null) {
        if (one !== undefined) this.localLeaves.rememberHashed(encoded.ref.cid, bytes.byteLength, encoded.ref.roots![0], one.hashes)
        // (a Clay-coded chunk's parity too: its repair checks their sub-chunks against them)
        else encoded.ref.roots = await this.localLeaves.rememberAll(encoded.blocks.slice(0, rootCount(encoded.ref)))
        if (this.placementRule !== null) encoded.ref.rule = this.placementRule
      }
      // verified: encodeChunkAsync hashed these very blocks to their CIDs just now, and `bytes`
      // (which the fragments view or were coded from) must not change: the cache keeps it as the chunk.
      // With a network and k > 1 only the k data fragments go to disk: they are the chunk's bytes
      // (systematic code), all "durable locally" needs (DESIGN.md §5). The parity is staged
      // (memory) for its placement, which stores the one this host keeps, if any, and rebuilds
      // parity from the data fragments here when it is no longer staged (keeper/network.ts
      // placeOne): writing parity bound for other hosts, then deleting it once they took it,
      // was a third of the writer's disk bytes (seqwrite on six hosts: 1.5x the bytes written)
      // `local: false` (a ChunkWrite's chunk that placement takes at once, issue 15 item 4): not
      // even those; the caller stores them only if the placement does not place the chunk
      const staged = encoded.blocks.reduce((n, b) => n + b.bytes.byteLength, 0)
      deferred = this.network !== undefined && this.staging !== undefined && encoded.ref.k > 1 && encoded.ref.cid !== null && opts.local === false &&
        this.deferredBytes + staged <= this.deferredBytesMax
      if (deferred) {
        this.deferredBytes += staged
        this.deferredRefs.set(encoded.ref, staged)
      }
      put = deferred
        ? Promise.resolve()
        : this.store.putMany(this.network !== undefined && encoded.ref.k > 1 ? encoded.blocks.slice(0, encoded.ref.k) : encoded.blocks, { claim: opts.claim, verified: true })
    } catch (err) {
      // rememberAll reads only data fragments (views of `bytes`), and its jobs are over: but be
      // as careful as below, the memory goes to the collector
      lease?.keep()
      throw err
    }
    // a put that succeeded wrote every block (its writes are over); a failed one may still have
    // writes of other blocks running (Promise.all): the memory is then left to the collector
    put.then(() => { lease?.letGo() }, () => { lease?.keep() })
    // stored outside a ChunkWrite (an open file's chunks and manifests, patches, spills, folds):
    // whatever version names it commits by another path than ChunkWrite.committed(), so a write
    // of the same bytes given up here meanwhile must spare it (inTree(); review32f). A claimed
    // put is a ChunkWrite's: its own give-up must still release what it stored new.
    if (opts.claim === undefined) this.recent.add(encoded.ref.fragments)
    const chunk = encoded.ref.cid?.toString()
    if (chunk !== undefined) {
      this.cache.set(chunk, bytes)
      // the parity blocks (k.. of the k + m) are the pooled ones: every data fragment is a view of `bytes`
      this.staging?.stage(chunk, encoded.blocks, lease !== undefined ? { lease, pooled: j => j >= k } : undefined, deferred)
      // a failed put leaves no chunk to place: its fragments leave the staging memory
      put.catch(() => { this.staging?.release(chunk) })
    }
    try {
      if (opts.group !== undefined) await opts.group.add(put)
      else await put
    } catch (err) {
      // (no caller to place it: not under way)
      this.deferredOver(encoded.ref)
      throw err
    }
    return { ...encoded, stored: put, deferred }
  }

  /**
   * A deferred chunk (storeChunk `local: false`, its `ref`) is no longer under way: its placement
   * is over, or it never ran (the chunk released, the write given up). Its pin of the staged
   * fragments goes (Staging.unpin: they leave with the last pin; place()'s release does not take
   * a pinned chunk's) and its bytes the bound of deferred chunks. Once per ref; nothing for any other.
   */
  deferredOver (ref: ChunkRef): void {
    const staged = this.deferredRefs.get(ref)
    if (staged === undefined) return
    this.deferredRefs.delete(ref)
    this.deferredBytes -= staged
    if (ref.cid !== null) this.staging?.unpin(ref.cid.toString())
  }

  /**
   * Read a whole chunk: cache, local fragments, then the network. One fetch per chunk at a time:
   * a read joins a fetch of the same chunk already running (another read, a prefetch). The
   * caller's signal ends its own wait; the fetch is aborted once no caller waits for it.
   */
  async readChunk (ref: ChunkRef, opts: AbortOptions & { path?: string } = {}): Promise<Uint8Array> {
    return await this.joinFetch(ref, opts, false)
  }

  /**
   * Bytes [start, end) of a chunk (0 <= start < end <= ref.size), for a small read that is not
   * part of a sequential run (issue 15 item 3). When the chunk is not cached, not being fetched,
   * not rebuildable here, records the Merkle roots of its data fragments and the range is at
   * most RANGE_READ_MAX_BYTES, only the leaves of the data fragment(s) holding the range are
   * fetched (from the local store when the fragment is here), each verified against its root.
   * Any failure of that path falls back to reading the chunk whole (readChunk: any k fragments,
   * parity included), so a missing data fragment costs what a read cost before. Fetched leaves
   * are kept (LEAF_CACHE_BYTES), so reading the same bytes again moves nothing. The answer is
   * the caller's own buffer (never a view of a cache), returned without a copy when it can be.
   */
  async readRange (ref: ChunkRef, start: number, end: number, opts: AbortOptions & { path?: string } = {}): Promise<Uint8Array> {
    if (ref.cid === null) return new Uint8Array(end - start)
    const key = ref.cid.toString()
    // a copy: the chunk is the cache's (the answer is the caller's, who may change it). Not
    // .slice(): on a Buffer (a chunk read from disk is one) that is a view, as subarray()
    const whole = async (): Promise<Uint8Array> => new Uint8Array((await this.readChunk(ref, opts)).subarray(start, end))
    const network = this.network
    const roots = ref.roots
    if (roots === undefined || end - start > RANGE_READ_MAX_BYTES || this.cache.get(key) !== undefined || this.reading.has(key)) return await whole()
    const slices = fragmentSlices(ref, start, end)
    const fallBack = async (err: unknown): Promise<Uint8Array> => {
      opts.signal?.throwIfAborted()
      this.counters.rangeFallbacks++
      log('chunk %s: leaves of its data fragments not read, reading it whole: %s', key, (err as Error).message)
      return await whole()
    }
    // the data fragments holding the range, where they are here: their leaves alone, each
    // checked against the fragment's leaf hashes (leaves.ts); the others come from the network,
    // unless this host can rebuild the chunk itself (from parity it holds)
    let local: Array<LeafSlice | undefined>
    try {
      local = await Promise.all(slices.map(async s => await this.localLeaves.slice(ref.fragments[s.fragment], s.first, s.end, roots[s.fragment])))
    } catch (err) { // not lost: fallBack logs it, then reads the chunk whole
      return await fallBack(err)
    }
    if (local.some(l => l === undefined) && (network?.fetchRange === undefined || await this.hasLocally(ref))) return await whole()
    try {
      // a part read from the disk views a buffer of this read's alone, one from the network or a
      // staged fragment a shared (or larger) one (copied below when it is the answer: callers own
      // what they get), one from the leaf cache is copied at once (its slot may be another leaf's
      // by the time the other parts are here)
      let shared = false
      const parts = await Promise.all(slices.map(async (s, i) => {
        const here = local[i]
        if (here !== undefined) {
          if (here.shared === true) shared = true
          return here.bytes.subarray(s.from, s.to)
        }
        const frag = ref.fragments[s.fragment].toString()
        const cached = this.cachedLeaves(frag, s.first, s.end, s.from, s.to)
        if (cached !== undefined) return cached
        const leaves = await network!.fetchRange!(ref, s, { signal: opts.signal })
        // the leaves copied into the leaf cache's slots (LeafCache: the buffer they came in then
        // dies young, not ~1,000 reads later in the old generation: gc44), the read's own bytes
        // copied out below (`shared`): a 4 KiB buffer, not a view holding the received 16 KiB
        for (let l = s.first; l < s.end; l++) {
          const at = (l - s.first) * LEAF_BYTES
          this.leaves.set(`${frag}/${l}`, leaves.subarray(at, at + LEAF_BYTES))
        }
        shared = true
        return leaves.subarray(s.from, s.to)
      }))
      // one part: no copy of a buffer this read owns (a 4 KiB read through the mount was four
      // buffers and three copies; each ArrayBuffer counts toward V8's next full GC, issue 15)
        if (parts.length === 1) { this.counters.ranges++; return shared ? new Uint8Array(parts[0]) : parts[0] }
      const out = new Uint8Array(end - start)
      let at = 0
      for (const p of parts) { out.set(p, at); at += p.byteLength }
      this.counters.ranges++
      return out
    } catch (err) { // not lost: fallBack logs it, then reads the chunk whole
      return await fallBack(err)
    }
  }

  /**
   * Bytes [from, to) of leaves [first, end) of fragment `frag` joined (offsets from leaf
   * `first`'s start), a copy of the caller's own (the cache's slots are reused), when every one of
   * those leaves is in the leaf cache.
   */
  private cachedLeaves (frag: string, first: number, end: number, from: number, to: number): Uint8Array | undefined {
    const keys: string[] = []
    for (let l = first; l < end; l++) {
      const key = `${frag}/${l}`
      if (this.leaves.get(key) === undefined) return undefined
      keys.push(key)
    }
    // (gets again: each get() is a view valid until the next set(), and none comes between)
    const out = new Uint8Array(to - from)
    for (let i = 0; i < keys.length; i++) {
      const leaf = this.leaves.get(keys[i])!
      const at = i * LEAF_BYTES
      const a = Math.max(from, at)
      const b = Math.min(to, at + leaf.byteLength)
      if (b > a) out.set(leaf.subarray(a - at, b - at), a - from)
    }
    return out
  }

  /**
   * readChunk(), for a read (`ahead` false) or a fetch ahead of the reader (readAhead()). A read
   * that joined a fetch started ahead, which then failed, fetches the chunk again, once, on its
   * own: that fetch's deadline (FETCH_TIMEOUT_MS in keeper/network.ts) ran from when it was
   * started, possibly long before this read and behind a window of other fetches ahead, so on a
   * loaded host it may have timed out where the read's own fetch would not. A read fails only
   * when a fetch of its own finds the bytes unreachable (or corrupt: asking again cannot help).
   */
  private async joinFetch (ref: ChunkRef, opts: AbortOptions & { path?: string }, ahead: boolean, retry = true): Promise<Uint8Array> {
    if (ref.cid === null) {
      // a hole of a v2 manifest may span terabytes: readers skip holes, they never read them whole
      if (ref.size > CHUNK_SIZE) throw new ManifestError(`a hole of ${ref.size} bytes at ${ref.offset} is not read as one chunk`)
      return new Uint8Array(ref.size)
    }
    opts.signal?.throwIfAborted()
    const key = ref.cid.toString()
    const cached = this.cache.get(key)
    if (cached !== undefined) return cached
    let shared = this.reading.get(key)
    const joinedAhead = retry && !ahead && shared?.ahead === true
    if (shared === undefined) {
      const controller = new AbortController()
      const promise = this.fetchChunk(ref, key, { path: opts.path, signal: controller.signal })
      const s: SharedFetch = { promise, controller, waiting: 0, ahead }
      shared = s
      this.reading.set(key, s)
      // its waiters see the outcome; nobody may be left to, once all of them gave up
      promise.catch(() => {}).finally(() => { if (this.reading.get(key) === s) this.reading.delete(key) })
    }
    shared.waiting++
    try {
      return await raceSignal(shared.promise, opts.signal)
    } catch (err) {
      if (!joinedAhead || opts.signal?.aborted === true || err instanceof CorruptBlockError) throw err
      log('chunk %s: the fetch started ahead of the read failed, fetching it again for the read: %s', key, (err as Error).message)
      // the failed fetch is over: the read starts its own (or joins a read's), never this one again
      if (this.reading.get(key) === shared) this.reading.delete(key)
      return await this.joinFetch(ref, opts, false, false)
    } finally {
      if (--shared.waiting === 0 && opts.signal?.aborted === true) {
        // the last reader gave up: stop fetching, and let the next reader start afresh
        if (this.reading.get(key) === shared) this.reading.delete(key)
        shared.controller.abort(opts.signal.reason)
      }
    }
  }

  /**
   * Fetch a chunk a sequential reader will ask for soon (DESIGN.md §5), in the background:
   * undefined when it is cached already (nothing to fetch) or when READAHEAD_TOTAL_BYTES are being
   * fetched ahead already (the reader then fetches it when it gets there). The fetch stops when
   * `signal` aborts and no one else waits for it. A failure is left to the real read.
   */
  readAhead (ref: ChunkRef, opts: AbortOptions & { path?: string } = {}): Promise<Uint8Array | undefined> | undefined {
    if (ref.cid === null || ref.size > CHUNK_SIZE || this.cache.get(ref.cid.toString()) !== undefined) return undefined
    if (this.aheadBytes + ref.size > READAHEAD_TOTAL_BYTES) return undefined
    this.aheadBytes += ref.size
    this.counters.ahead++
    return this.joinFetch(ref, opts, true).catch((err: Error) => {
      // a guess: the real read fetches again and reports its own failure
      log.trace('readahead of chunk %s failed: %s', ref.cid!.toString(), err.message)
      return undefined
    }).finally(() => { this.aheadBytes -= ref.size })
  }

  /**
   * Warm the cache with the chunks a reader of a whole version will ask for next: those within
   * readaheadBytes after `refs[from - 1]`, fetched in the background (readAhead()). A prefetched
   * chunk lands only in the cache, so the window is kept within the cache's bound less the chunk
   * being read: a window past it would evict its own chunks before the reader comes to them and
   * every chunk would be fetched twice or more (`--cache` smaller than the window: no prefetch).
   */
  prefetch (refs: ChunkRef[], from: number, opts: { path?: string } = {}): void {
    const window = Math.min(this.readaheadBytes, this.cache.maxBytes - CHUNK_SIZE)
    let bytes = 0
    for (let i = from; i < refs.length; i++) {
      const ref = refs[i]
      if (bytes + ref.size > window) break
      bytes += ref.size
      if (ref.cid === null || this.reading.has(ref.cid.toString())) continue
      void this.readAhead(ref, opts)
    }
  }

  private async fetchChunk (ref: ChunkRef, key: string, opts: AbortOptions & { path?: string }): Promise<Uint8Array> {
    const frags: Array<Uint8Array | undefined> = new Array(ref.k + ref.m).fill(undefined)
    let have = 0
    let corrupt = 0
    let unreachable = ''
    // data fragments first: no decoding needed when all k are here. A fragment not held is
    // known from memory (Store.has, the store's index): no failed open per fragment (five per
    // chunk on six hosts, each a threadpool round trip and an error with its stack); one
    // quarantined here still counts as corrupt (the read's error says so). A fragment's size is
    // known, so it is read in one job (Store.get's size)
    const size = fragmentBytes(ref)
    // the chunk's buffer: a data fragment here is read into its place in it (Store.get `into`),
    // one from peers lands there (ChunkLanding); the decode copies neither again
    const chunk = ChunkLanding.lands(ref, size) ? chunkBytes(ref.size) : undefined
    const placeOf = (i: number): Uint8Array | undefined => chunk !== undefined && i < ref.k && (i + 1) * size <= ref.size ? chunk.subarray(i * size, (i + 1) * size) : undefined
    // the fragments to read from this host's store (at most the k - have still needed), data first
    const local: number[] = []
    for (let i = 0; i < ref.fragments.length && have + local.length < ref.k; i++) {
      // a data fragment still staged (never pooled memory): an early chunk being placed is on
      // no disk here (ChunkWrite.chunk `deferred`), and its holders may not have it yet
      const staged = i < ref.k ? this.staging?.get(ref.fragments[i]) : undefined
      if (staged !== undefined && staged.byteLength === size) {
        const place = placeOf(i)
        place?.set(staged)
        frags[i] = place ?? staged
        have++
      } else if (await this.store.has(ref.fragments[i])) {
        local.push(i)
      } else if (this.store.quarantined(ref.fragments[i])) corrupt++
    }
    // the store's reads run while the fragments not here are fetched (cread44): waiting for this
    // host's disk first put a disk read (a threadpool job behind every other read's) before each
    // chunk's fetch from peers, and the chunk took their sum (a cold read on six hosts reads one
    // fragment of most chunks here and three or four from peers). A read here that fails (corrupt,
    // gone) has what it stood for fetched afterwards (below).
    const reads = local.map(async i => await this.store.get(ref.fragments[i], { size, into: placeOf(i) }))
    let landing: ChunkLanding | undefined
    try {
      // slots being read here are not the network's: no landing place, not asked for
      const pending: Array<Uint8Array | undefined> = frags.map((f, i) => f ?? (local.includes(i) ? READ_HERE : undefined))
      let fetched: Promise<Map<string, Uint8Array>> | undefined
      if (have + local.length < ref.k && this.network !== undefined) {
        // the data fragments from peers are written into the chunk as they arrive (ChunkLanding)
        landing = chunk === undefined ? undefined : ChunkLanding.for(ref, pending, size, chunk)
        // its landing gives no place once the pull is over (ended, failed, or aborted: an aborted
        // read's dropped buffer while its reads here still run, review44b), as a read's end did
        fetched = this.fetchMissing(ref, ref.fragments.filter((_, i) => pending[i] === undefined), ref.k - have - local.length, opts, landing, err => { unreachable = err })
          .finally(() => { landing?.shut() })
        // (awaited below, after the reads here: an abort meanwhile is no unhandled rejection)
        fetched.catch(() => {})
      }
      const results = await Promise.allSettled(reads)
      let failedHere = false
      let thrown: unknown
      results.forEach((r, n) => {
        if (r.status === 'fulfilled') { frags[local[n]] = r.value; have++; return }
        failedHere = true
        const err = r.reason as any
        if (err instanceof CorruptBlockError) corrupt++
        else if (err?.code !== 'ENOENT') thrown ??= err
      })
      let parity = false
      const take = (got: Map<string, Uint8Array>): void => {
        ref.fragments.forEach((cid, i) => {
          const b = got.get(cid.toString())
          if (b !== undefined && frags[i] === undefined) { frags[i] = b; have++; parity ||= i >= ref.k }
        })
      }
      if (fetched !== undefined) take(await fetched)
      if (thrown !== undefined) throw thrown
      // a fragment here that could not be read (rotted, gone): the other fragments held here
      // first (a parity fragment here rebuilds a rotted data fragment with no peer reachable, as a
      // local volume's whole coding does: review44b), read into fresh memory (the chunk's places
      // may hold anything by now), one at a time as before cread44
      for (let i = 0; failedHere && have < ref.k && i < ref.fragments.length; i++) {
        if (frags[i] !== undefined || local.includes(i) || !(await this.store.has(ref.fragments[i]))) continue
        try {
          frags[i] = await this.store.get(ref.fragments[i], { size })
          have++
        } catch (err: any) {
          if (err instanceof CorruptBlockError) corrupt++
          else if (err?.code !== 'ENOENT') throw err
        }
      }
      // then the rest of the k from peers (no landing: its place may hold anything)
      if (failedHere && have < ref.k && this.network !== undefined) {
        take(await this.fetchMissing(ref, ref.fragments.filter((_, i) => frags[i] === undefined), ref.k - have, opts, undefined, err => { unreachable = err }))
      }
      if (parity && ref.k > 1) this.counters.parityFetched++
      if (have < ref.k && corrupt > 0) {
        throw new CorruptBlockError(key, `chunk at offset ${ref.offset}${opts.path !== undefined ? ` of ${opts.path}` : ''}, and no intact copy is reachable`)
      }
      if (have < ref.k) {
        throw new BlockUnavailableError(key, `${have} of the ${ref.k} fragments needed are reachable${opts.path !== undefined ? ` (file ${opts.path})` : ''}${unreachable !== '' ? `: ${unreachable}` : ''}`)
      }
      // every fragment here was checked against its CID (Store.get, the swarm's pull): with k = 1
      // the fragment is the chunk, with k > 1 and the k data fragments here it is their
      // concatenation, and hashing it again would only add to the read's CPU (decodeChunk)
      if (ref.k > 1) this.counters.coded++
      if (ref.k > 1 && frags.slice(0, ref.k).some(f => f === undefined)) this.counters.rebuilt++
      // (closed at once: no frame takes a place from here on). Without a landing (nothing fetched,
      // or no data fragment from peers) only this read's store jobs wrote the buffer, all over now
      const into = landing === undefined ? chunk : landing.close(frags)
      if (into !== undefined && landing !== undefined) this.counters.landed += landing.arrived
      const bytes = await decodeChunkOffThread(ref, frags, into)
      this.cache.set(key, bytes)
      return bytes
    } finally {
      // a read that failed or was aborted gives no place from here on (a want another pull keeps
      // alive would land its frames in this read's dropped buffer: review42d)
      landing?.shut()
    }
  }

  /**
   * `need` of the fragments `want` of `ref` from peers (fetchChunk), counted (ReadCounters); an
   * empty map when they are unreachable (`unreachable` told why), an abort thrown.
   */
  private async fetchMissing (ref: ChunkRef, want: CID[], need: number, opts: AbortOptions & { path?: string }, landing: ChunkLanding | undefined, unreachable: (why: string) => void): Promise<Map<string, Uint8Array>> {
    const c = this.counters
    c.fetches++
    c.fetchingPeak = Math.max(c.fetchingPeak, ++c.fetching)
    // an unreachable chunk is an error naming the file (EIO through the mount), never a hang
    return await this.network!.fetch(want, need, { ...opts, chunk: ref, land: landing?.land }).catch((err: any) => {
      opts.signal?.throwIfAborted()
      // reported by fetchChunk, with what was reachable: the read's error names the file and the cause
      unreachable(err?.message ?? String(err))
      return new Map<string, Uint8Array>()
    }).finally(() => { c.fetching-- })
  }

  /** Store a manifest durably here; its ref (manifestRef) is what placement spreads. */
  async storeManifest (manifest: Manifest, opts: AbortOptions & { claim?: object, group?: PutGroup } = {}): Promise<{ cid: CID, ref: ChunkRef }> {
    opts.signal?.throwIfAborted()
    const { cid, bytes } = encodeManifest(manifest)
    // no host would read it back (decodeManifest's bound): the file holds more chunks of data
    // than one manifest describes (about 60 GiB; holes cost nothing)
    if (bytes.byteLength > MAX_MANIFEST_BYTES) throw new FsError('EFBIG', 'write', undefined, `a manifest of ${manifest.chunks.length} chunks is over ${MAX_MANIFEST_BYTES} bytes`)
    const put = this.store.put(cid, bytes, { claim: opts.claim, verified: true })
    // (as storeChunk: a manifest stored outside a ChunkWrite is spared by a give-up here; and
    // its chunks with it: the manifest is stored as its version commits, and an open file may
    // have stored a chunk longer than the set's age before)
    // a chunk a write here claims (stored new, not committed: its data fragments hold the claim, an
    // unclaimed put of them drops it) is left out: that write's commit adds it (committed()), and
    // its give-up must still release it (a version whose op never came: review32h)
    if (opts.claim === undefined) this.recent.add([cid, ...manifest.chunks.filter(r => !r.fragments.some(f => this.store.isClaimed(f))).flatMap(r => r.fragments)])
    if (opts.group !== undefined) await opts.group.add(put)
    else await put
    return { cid, ref: manifestRef(cid, bytes.byteLength) }
  }

  /**
   * A file version's manifest: from this store, else from peers. A fetched manifest is kept in
   * memory only, unless `keep` (pins): storing every manifest a host reads would make it hold
   * blocks it is not a placement target of, which repair then drops again, pass after pass.
   */
  async readManifest (cid: CID, opts: AbortOptions & { path?: string, keep?: boolean } = {}): Promise<Manifest> {
    opts.signal?.throwIfAborted()
    const key = cid.toString()
    const cached = this.manifests.get(key)
    if (cached !== undefined && opts.keep !== true) return cached
    let bytes = await this.store.tryGet(cid)
    let why = 'no peer is reachable'
    if (bytes === undefined && this.network !== undefined) {
      bytes = await this.network.fetchOne(cid, opts).catch((err: any) => {
        opts.signal?.throwIfAborted()
        // reported below in the read's error, which names the file
        why = err?.message ?? String(err)
        return undefined
      })
      if (bytes !== undefined && opts.keep === true) await this.store.put(cid, bytes)
    }
    if (bytes === undefined) throw new BlockUnavailableError(key, `the manifest${opts.path !== undefined ? ` of ${opts.path}` : ''} is not stored here and no peer sent it (${why})`)
    const manifest = decodeManifest(bytes)
    if (this.manifests.size >= MANIFEST_CACHE_ENTRIES) this.manifests.delete(this.manifests.keys().next().value!)
    this.manifests.set(key, manifest)
    return manifest
  }

  /**
   * Hand freshly written chunks to the network for placement; resolves when the attempt is over
   * (the Volume decides how long an fsync waits for it), or with `safe` once each chunk survives
   * one lost host (keeper/network.ts). Their staged fragments are forgotten then: a chunk left
   * pending, or still being placed, is pushed from the store.
   * A release of their fragments under way (a write of the same bytes given up here) is over
   * first: its delete requests, sent after this placement's pushes, would take them from their
   * holders (promises to this host do not keep a block: keeper/release.ts). A version committed
   * outside a ChunkWrite (an open file's spilled or stored chunks, a fold's) is placed here.
   */
  async place (refs: ChunkRef[], opts: AbortOptions & { inode?: string, settle?: boolean, safe?: boolean } = {}): Promise<void> {
    if (this.network === undefined || refs.length === 0) return
    try {
      for (const r of refs) if (this.releasing.busy(r)) await this.releasing.over(r, { signal: opts.signal })
      await this.network.place(refs, { ...opts, staged: cid => this.staging?.get(cid), lend: cid => this.staging?.lend(cid), isStaged: cid => this.staging?.has(cid) === true })
    } finally {
      for (const r of refs) if (r.cid !== null) this.staging?.release(r.cid.toString())
    }
  }

  /** Whether this host alone holds enough fragments to rebuild the chunk. */
  async hasLocally (ref: ChunkRef): Promise<boolean> {
    if (ref.cid === null) return true
    const frags = ref.fragments
    // each distinct fragment once (CIDs compared, no strings made: readRange asks this on every
    // small read whose data fragment is elsewhere), with the copies the chunk has of it. With
    // k = 1 (m + 1 copies of one block) one of them held is enough
    let have = 0
    // fragments not yet asked about: once even all of them could not make k, the answer is no
    // (a reader holding one fragment of a 4+2 chunk asks of three, not six)
    let left = frags.length
    for (let i = 0; i < frags.length; i++) {
      const f = frags[i]
      let seen = false
      for (let j = 0; j < i && !seen; j++) seen = frags[j].equals(f)
      if (seen) continue
      if (ref.k !== 1 && have + left < ref.k) return false
      let copies = 1
      if (ref.k !== 1) for (let j = i + 1; j < frags.length; j++) if (frags[j].equals(f)) copies++
      if (await this.store.has(f)) have += ref.k === 1 ? ref.k : copies
      if (have >= ref.k) return true
      if (ref.k !== 1) left -= copies
    }
    return have >= ref.k
  }

  isCorrupt (err: unknown): boolean {
    return err instanceof CorruptBlockError
  }
}

/**
 * One write of a whole new version (`put`, writeFile: Volume.replaceFile), placed as it goes
 * (DESIGN.md §5; issue 17): each chunk is encoded, stored here (fsynced) and handed to the
 * network once it is durable here (a `deferred` one handed over at once, chunk()), and the write waits while more than `windowBytes` of its
 * fragments are still being stored or placed (PLACE_WINDOW_BYTES). chunk() returns once the
 * chunk is encoded: its local put runs while the writer goes on (at most
 * CHUNK_WRITE_PUTS_PARALLEL at once), so a sequential writer's next chunk is not held for this
 * one's disk syncs (on six hosts one process's syncs queue behind each other: 12 per chunk on
 * the writer); durable() (and manifest()) wait until every put is over and throw the first
 * failure, so nothing names a chunk before it is durable here. The blocks it stores new are claimed (Store.putMany), so a
 * write abandoned before its commit (an error, a cancelled `put`) deletes exactly what it left,
 * here and on the hosts that took fragments, without waiting for GC's retention.
 *
 * Use: chunk() for each chunk in order, manifest(), then either committed() once the op that
 * names the version is in the tree, and placed() to wait for the placement; or abandon().
 */
export class ChunkWrite {
  private readonly chunks: ChunkService
  private readonly store: Store
  private readonly network?: Network
  private readonly window: number
  private readonly inode?: string
  /** Aborts the placements of this write: only abandon() does (a commit's placement goes on without its caller). */
  private readonly stop = new AbortController()
  /** Every block this write stored, by CID. */
  private readonly blocks = new Map<string, CID>()
  /** Every chunk (and the manifest) this write stored, in order, but the ones it released. */
  readonly refs: ChunkRef[] = []
  /** Placements in flight, with the bytes each holds in the window. */
  private readonly inflight = new Set<Promise<void>>()
  /**
   * Each chunk's placement, until the chunk survives one lost host (or its placement is over):
   * what placed({ safe: true }) waits for.
   */
  private readonly safes: Array<Promise<void>> = []
  /** Each chunk's placement in flight and what stops it alone (release()). */
  private readonly placing = new Map<ChunkRef, { run: Promise<void>, stop: AbortController }>()
  /** Each deferred chunk's storeUnplaced() until it is over (a release() deletes what it stored). */
  private readonly unplaced = new Map<ChunkRef, Promise<void>>()
  /** Releases of chunks given up one by one (release()), one after another; chunk() waits for them. */
  private releasing: Promise<void> = Promise.resolve()
  /** The local puts of the chunks stored (durable() waits for them, and throws their first failure). */
  private readonly puts = new PutGroup(CHUNK_WRITE_PUTS_PARALLEL)
  private held = 0
  private done: 'open' | 'committed' | 'abandoned' = 'open'
  /** The erasure parameters of every chunk of this version, fixed at its first chunk. */
  private params?: { k: number, m: number }
  readonly progress: WriteProgress = { stored: 0, placed: 0 }
  /** The manifest, placed by placed() once the chunks are. */
  private manifestRef?: ChunkRef
  /**
   * The chunks whose placement is over while the write is open (chunk()'s and placeStored()'s,
   * but the ones it released): their holders' promises are renewed every ChunkService.renewMs
   * until the commit or abandon() (renew()).
   */
  private readonly placedRefs = new Set<ChunkRef>()
  /** The chunks stored before and placed by this write (placeStored()): named by its version too. */
  private readonly stored: ChunkRef[] = []
  private renewTimer?: NodeJS.Timeout
  /** The renewal round in flight (one at a time: a tick while it runs is skipped). */
  private renewing?: Promise<void>
  /** Stops renewing at once: committed() and abandon() abort it (a round is not waited for). */
  private readonly renewStop = new AbortController()
  /** stopRenewing(), as ChunkService.close() calls it. */
  private readonly stopRenewal = (): void => { this.stopRenewing() }

  private readonly onProgress?: (p: WriteProgress) => void

  constructor (chunks: ChunkService, store: Store, network: Network | undefined, windowBytes: number, inode: string | undefined, onProgress?: (p: WriteProgress) => void) {
    this.onProgress = onProgress
    this.chunks = chunks
    this.store = store
    this.network = network
    this.window = windowBytes
    this.inode = inode
  }

  /** Bytes of this write's fragments whose placement is not over (at most the window, but for one chunk). */
  get holding (): number {
    return this.held
  }

  /**
   * Store one chunk of the version (at `offset`) and start placing it; waits for room in the
   * window first. `waitMs`: wait for room at most this long, then store the chunk anyway (the
   * window is overrun while the network does not take the bytes; default: wait as long as it takes).
   * `deferred` (an open file's early chunk, early-chunks.ts; issue 15 item 4): with a network that
   * says whether a chunk is placed (Network.placedNow), k > 1 and room in the window, nothing is
   * stored here first: the placement starts at once from memory and stores the fragment this host
   * keeps, and the chunk is durable once placed, or once its data fragments are stored here when
   * it was not (storeUnplaced(); durable() waits for either). On six hosts the writer wrote each
   * chunk's bytes here, synced them and deleted three quarters once placed (0.85 MiB deleted and
   * 1.4 syncs per MiB written).
   */
  async chunk (bytes: Uint8Array, offset: number, opts: AbortOptions & { waitMs?: number, deferred?: boolean } = {}): Promise<ChunkRef> {
    if (this.done !== 'open') throw new Error(`chunk() on a ${this.done} write`)
    this.params ??= this.chunks.params()
    const { k, m } = this.params
    const cost = Math.ceil(bytes.byteLength / Math.max(1, k)) * (k + m)
    // backpressure: the write goes on once enough of what it stored is placed
    await this.room(cost, opts)
    // a chunk given up a moment ago is gone here and on peers before one with its blocks is stored
    await raceSignal(this.releasing, opts.signal)
    if (this.done !== 'open') throw new Error(`chunk() on a ${this.done} write`)
    // an earlier chunk's put failed (a full disk): this write fails at its next chunk, not only at its commit
    this.puts.throwIfFailed()
    // `deferred`: not stored here first, placed at once (issue 15 item 4), while it fits in the
    // window (past WINDOW_WAIT_MS the network is not taking the bytes: stored here, as before)
    const defer = opts.deferred === true && this.network?.placedNow !== undefined && this.held + cost <= this.window
    // held from before the encode: the window bounds the chunks being stored too
    this.held += cost
    let stored: Promise<void>
    let ref: ChunkRef
    // a deferred chunk's data fragments (views of `bytes`), stored here if its placement does not place it
    let data: Array<{ cid: CID, bytes: Uint8Array }> | undefined
    try {
      // recycle: only the CIDs of the blocks are kept here (and a deferred chunk's data fragments)
      const encoded = await this.chunks.storeChunk(bytes, offset, { signal: opts.signal, claim: this, params: this.params, group: this.puts, recycle: true, local: !defer })
      stored = encoded.stored
      ref = encoded.ref
      if (encoded.deferred) data = encoded.blocks.slice(0, ref.k)
      for (const b of encoded.blocks) this.blocks.set(b.cid.toString(), b.cid)
    } catch (err) {
      this.held -= cost
      throw err
    }
    this.refs.push(ref)
    this.chunks.open.add(ref)
    if (this.network === undefined || ref.cid === null) {
      const run: Promise<void> = stored.then(() => {
        this.progress.stored += bytes.byteLength
        this.progress.placed += bytes.byteLength
        if (this.done !== 'abandoned') this.onProgress?.(this.progress)
      }, () => {}) // the put's failure: durable() throws it
        .finally(() => { this.inflight.delete(run); this.placing.delete(ref); this.held -= cost })
      this.inflight.add(run)
      // a release() of the chunk deletes its blocks once the put is over (they are claimed then)
      this.placing.set(ref, { run, stop: new AbortController() })
      return ref
    }
    const stop = new AbortController()
    // resolved once the placement has begun (the chunk pending: ChunkService.place reaches the
    // network's pending list before its first await), never when nothing is placed: safeOrOver()
    // asks whether the chunk is safe only then, so a remembered record is never taken for
    // placed while this placement still checks it (not by the order of the microtasks)
    const started = Promise.withResolvers<void>()
    // the placement ran (not a failed put, nor a chunk released first): only then is it renewed
    let ran = false
    // placed once durable here (a chunk is pending, and placement may hand copies over, only
    // once this host holds it): a put that failed places nothing, and durable() throws its failure
    const run: Promise<void> = stored.then(async () => {
      this.progress.stored += bytes.byteLength
      if (this.done !== 'abandoned') this.onProgress?.(this.progress)
      const signal = AbortSignal.any([this.stop.signal, stop.signal])
      // another write here giving up the same fragments releases them first; this chunk
      // released itself meanwhile (release() waits for this run): no placement (review31g: the
      // two waited on each other for ever)
      try {
        await this.chunks.releasing.over(ref, { signal })
      } catch {
        return // aborted: the chunk released (or the write stopped), nothing to place
      }
      const placing = this.chunks.place([ref], { inode: this.inode, signal, settle: true })
      ran = true
      started.resolve()
      await placing.catch((err: Error) => { log.error('placement of chunk %s failed (it stays pending): %s', ref.cid!.toString(), err.message) })
    }, () => {}) // the put's failure: nothing to place, and durable() throws it
      .finally(() => {
        this.inflight.delete(run)
        this.placing.delete(ref)
        this.held -= cost
        // a deferred chunk's pinned fragments leave the staging, its bytes the service's bound
        if (data !== undefined) this.chunks.deferredOver(ref)
        this.progress.placed += bytes.byteLength
        // (before the progress is told: a placed chunk is renewed from then on)
        if (ran && this.refs.includes(ref) && !stop.signal.aborted) this.renewLater(ref)
        if (this.done !== 'abandoned') this.onProgress?.(this.progress)
      })
    this.inflight.add(run)
    this.placing.set(ref, { run, stop })
    const safe = this.safeOrOver(ref, started.promise, run)
    this.safes.push(safe.then(() => {}))
    if (data !== undefined) {
      const late = this.storeUnplaced(ref, data, run, safe, stop.signal)
      const unplaced = late.then(() => {})
      this.unplaced.set(ref, unplaced)
      this.puts.track(unplaced.finally(() => { this.unplaced.delete(ref) }))
      // stored here late, placed after: the placement that outlived the wait hands them over
      // (its own end found none of them here)
      void Promise.all([late, run]).then(async ([stored]) => { if (stored) await this.handOverLate(ref, stop.signal) }, () => {})
    }
    return ref
  }

  /**
   * A deferred chunk's data fragments stored here late (storeUnplaced()) once its placement is
   * over: placed, the ones this host is no target of are handed over (Network.handOverLate), as
   * a placement hands over the copies it found here; not placed, they stay (its retries push
   * from them, and hand them over when one places it). Nothing for a chunk released or a write
   * given up (their blocks are theirs to delete). Never throws.
   */
  private async handOverLate (ref: ChunkRef, released: AbortSignal): Promise<void> {
    const network = this.network
    if (network?.handOverLate === undefined || this.done === 'abandoned' || released.aborted || network.placedNow?.(ref) !== true) return
    await network.handOverLate(ref, { inode: this.inode }).catch((err: Error) => {
      log.error('chunk %s: handing over its data fragments stored here late failed (kept; repair hands them over): %s', ref.cid!.toString(), err.message)
    })
  }

  /**
   * A deferred chunk (chunk()'s `deferred`: nothing of it stored here first) is durable once its
   * placement `run` is over: on its holders when that placed it (Network.placedNow), else (offline,
   * a target away, a failed push) its data fragments are stored here now, as chunk() stores
   * every other chunk, and the chunk stays pending (its retries read them from here). The
   * placement is waited for at most ChunkService.deferredPlaceWaitMs: past it (a target that took
   * a push and stalls) the data fragments are stored here as well, while the placement goes on
   * (from the staged fragments, pinned until it is over), so an fsync never waits for a
   * placement's own bound (review43a). durable() waits for this, so a commit never names a chunk
   * that is neither placed nor here. Nothing is stored for a chunk given up meanwhile (released,
   * the write abandoned); a release() waits for this before it deletes the chunk's blocks. A late
   * store that fails (a full disk) waits for the placement instead, until the chunk survives one
   * lost host by its acknowledgements so far (`safe`: safeOrOver(), what placed({ safe }) waits
   * for; on a full writer that is a target itself, the placement's own fragment fails on the same
   * disk and the placement as a whole never succeeds: review44a) or the placement is over: safe or placed, the
   * chunk is durable; neither, this throws (FsError, the store's code, naming the chunk). Whether
   * some of them may be stored here (once the placement placed the chunk, chunk() has it hand
   * them over: handOverLate(), which looks at what is here: a store that failed part way too).
   */
  private async storeUnplaced (ref: ChunkRef, data: Array<{ cid: CID, bytes: Uint8Array }>, run: Promise<void>, safe: Promise<boolean>, released: AbortSignal): Promise<boolean> {
    await settledWithin(run, this.chunks.deferredPlaceWaitMs)
    // (a function: the write may be given up while this waits)
    const over = (): boolean => this.network?.placedNow?.(ref) === true || this.done === 'abandoned' || released.aborted
    if (over()) return false
    log('chunk %s: not placed (yet), its data fragments stored here', ref.cid!.toString())
    try {
      await this.store.putMany(data, { claim: this, verified: true })
      return true
    } catch (err) {
      // not stored here (a full disk; maybe part of them): the placement under way, its
      // fragments pinned in the staging until it is over, is the chunk's one way to durability
      // now; waited for until the chunk is safe on its holders (its own fragment here may fail on
      // this same disk) or the placement is over. Safe or placed, the chunk is durable; neither,
      // the write fails with this error, said plainly (the bytes are the caller's to write again)
      log.error('chunk %s: storing its data fragments here failed, waiting for its placement: %s', ref.cid!.toString(), (err as Error).message)
      if (await safe || over()) return true
      const code = err instanceof FsError ? err.code : 'EIO'
      throw new FsError(code, 'write', undefined, `chunk ${ref.cid!.toString()} was neither placed nor stored here: ${(err as Error).message}`)
    }
  }

  /**
   * A chunk's placement until it survives one lost host (Network.safe, asked once the placement
   * has `started`: durable here, no other write here releasing its fragments, the chunk pending),
   * or until `run` (the whole placement) is over: whether it was safe first (false when `run`
   * ended first: then placedNow() says whether it placed the chunk; a put that failed places
   * nothing, durable() throws it). Without Network.safe: the placement's end, false.
   */
  private async safeOrOver (ref: ChunkRef, started: Promise<void>, run: Promise<void>): Promise<boolean> {
    const network = this.network
    if (network?.safe === undefined) { await run; return false }
    const over = new AbortController()
    try {
      // (safe() resolves on the abort too: only a resolution before it counts)
      return await Promise.race([run.then(() => false), started.then(async () => { await network.safe?.(ref, { signal: over.signal }); return !over.signal.aborted })])
    } finally {
      over.abort()
    }
  }


  /**
   * Wait until `cost` more bytes of fragments fit in the placement window (or nothing of this
   * write is in flight), at most `waitMs` when given: the backpressure of chunk() and placeStored().
   */
  private async room (cost: number, opts: AbortOptions & { waitMs?: number }): Promise<void> {
    const until = opts.waitMs !== undefined ? performance.now() + opts.waitMs : Infinity
    while (this.held > 0 && this.held + cost > this.window) {
      const left = until - performance.now()
      if (left <= 0) break
      await settledWithin(Promise.race(this.inflight), left, opts.signal)
    }
  }

  /**
   * Place a chunk stored here before, not by this write (an open file's packed patches, which the
   * version this write's commit records points into: open-file.ts buildSparse), within the window
   * as chunk() places its own: waits for room first (`waitMs` as in chunk()). placed() waits for
   * it too. Not this write's blocks: release() and abandon() leave them (GC's, as before).
   * The chunk joins the writes in flight here (ChunkService.open) until committed() or abandon():
   * another write of the same bytes given up meanwhile leaves its fragments, here and on the
   * peers (place34: it released them, and this write committed a version whose chunk was gone).
   * A release of its fragments begun before is waited for first; throws EIO when it left the
   * chunk unreadable here (the version must not name it).
   */
  async placeStored (ref: ChunkRef, opts: AbortOptions & { waitMs?: number } = {}): Promise<void> {
    if (this.done !== 'open') throw new Error(`placeStored() on a ${this.done} write`)
    // placed by this write before (a commit tried again after its op was not recorded): its
    // placement may have handed this host's copies over already
    const again = this.stored.some(s => sameCoding(s, ref))
    this.stored.push(ref)
    this.chunks.open.add(ref)
    if (ref.cid === null) return
    if (this.chunks.releasing.busy(ref)) await this.chunks.releasing.over(ref, { signal: opts.signal })
    // every time, not only after a release seen under way: a write of the same bytes here placed
    // and given up before (its copies handed over, then released on the peers) leaves nothing of
    // it anywhere, and the version must not name a missing chunk (review34a)
    if (!again && !await this.chunks.hasLocally(ref)) throw new FsError('EIO', 'write', undefined, `chunk ${ref.cid.toString()} is no longer whole here (a write of the same bytes given up deleted its fragments)`)
    if (this.network === undefined) return
    const cost = Math.ceil(ref.size / Math.max(1, ref.k)) * (ref.k + ref.m)
    await this.room(cost, opts)
    if (this.done !== 'open') throw new Error(`placeStored() on a ${this.done} write`)
    this.held += cost
    // as chunk()'s: resolved once the placement has begun (safeOrOver)
    const started = Promise.withResolvers<void>()
    const placing = this.chunks.place([ref], { inode: this.inode, signal: this.stop.signal, settle: true })
    started.resolve()
    const run: Promise<void> = placing
      .catch((err: Error) => { log.error('placement of chunk %s failed (it stays pending): %s', ref.cid!.toString(), err.message) })
      .finally(() => {
        this.inflight.delete(run)
        this.held -= cost
        this.renewLater(ref)
      })
    this.inflight.add(run)
    // placed({ safe }) waits for it as for chunk()'s (an fsync: DESIGN.md §5; review34a: the
    // packed chunk of a pipelined commit was on the writer alone when the fsync returned)
    this.safes.push(this.safeOrOver(ref, started.promise, run).then(() => {}))
  }

  /**
   * A chunk of this write is placed: its holders promised to keep it for the custody promise
   * time (keeper/custody.ts), and this write may stay open longer (a big or slow upload, a file
   * written over minutes before its commit). Until the commit or abandon(), every
   * ChunkService.renewMs the chunks placed so far have their holders promise them again
   * (Network.renew: a promise round alone, nothing pushed). Without it, another writer of the
   * same bytes that gives up after the promises ended would have this write's fragments deleted
   * (keeper/release.ts) before it commits.
   */
  private renewLater (ref: ChunkRef): void {
    const every = this.chunks.renewMs
    if (this.done !== 'open' || every === undefined || this.network?.renew === undefined || ref.cid === null || this.chunks.closed || this.renewStop.signal.aborted) return
    this.placedRefs.add(ref)
    if (this.renewTimer !== undefined) return
    this.chunks.renewals.add(this.stopRenewal)
    this.renewTimer = setInterval(() => { this.renew() }, every)
    // a write nobody finishes does not keep the process alive
    this.renewTimer.unref()
  }

  /** One renewal round of the chunks placed so far (renewLater()); none while the last one runs. */
  private renew (): void {
    if (this.done !== 'open') return this.stopRenewing()
    const network = this.network
    if (this.renewing !== undefined || this.placedRefs.size === 0 || network?.renew === undefined) return
    const refs = [...this.placedRefs]
    log('open write: renewing the promises of %d placed chunk(s)', refs.length)
    // live by coding, not by object: a round renews one ref of each coding, and this write may
    // hold the same chunk twice (equal bytes at two offsets), one of them released meanwhile
    // while its twin still needs the renewal (review32h)
    const live = (r: ChunkRef): boolean => {
      if (this.placedRefs.has(r)) return true
      for (const p of this.placedRefs) if (sameCoding(p, r)) return true
      return false
    }
    const run: Promise<void> = network.renew(refs, { inode: this.inode, signal: this.renewStop.signal, live })
      .catch((err: Error) => { if (!this.renewStop.signal.aborted) log.error('renewing the promises of %d placed chunk(s) failed (tried again in %d ms): %s', refs.length, this.chunks.renewMs, err.message) })
      .finally(() => { if (this.renewing === run) this.renewing = undefined })
    this.renewing = run
  }

  /** No more renewals, and the one in flight is not acted on (not waited for). */
  private stopRenewing (): void {
    this.chunks.renewals.delete(this.stopRenewal)
    clearInterval(this.renewTimer)
    this.renewTimer = undefined
    this.placedRefs.clear()
    this.renewStop.abort(new DOMException('the write is over', 'AbortError'))
  }

  /**
   * One chunk this write stored is no longer part of it (an open file's chunk rewritten before
   * the commit): its placement stops, and, in the background, the hosts that took its fragments
   * are asked to delete them and its blocks are deleted here, as abandon() does for a whole
   * write, but for the blocks no other chunk of this write has. The next chunk() waits until
   * that is done (it may store the same blocks again). Before committed() only.
   */
  release (ref: ChunkRef): void {
    const at = this.refs.indexOf(ref)
    if (at < 0 || this.done !== 'open') return
    this.refs.splice(at, 1)
    this.chunks.open.remove(ref)
    this.placedRefs.delete(ref)
    if (ref.cid === null) return
    // what the rest of this write still has (equal chunks, equal shards) stays
    const live = new Set<string>()
    for (const r of this.refs) {
      if (r.cid !== null) live.add(r.cid.toString())
      for (const f of r.fragments) live.add(f.toString())
    }
    if (live.has(ref.cid.toString())) return
    // another write here has the same chunk: its fragments are that write's too
    if (this.chunks.open.has(ref)) return
    const gone = ref.fragments.filter(f => !live.has(f.toString()) && !this.chunks.open.hasFragment(f))
    // no longer this write's: committed() leaves them claimed, so the release below still deletes them
    for (const f of gone) this.blocks.delete(f.toString())
    this.placing.get(ref)?.stop.abort(new DOMException('the chunk was rewritten', 'AbortError'))
    // from the check above on: a write of the same bytes here starting meanwhile places them after the release
    const end = this.chunks.releasing.begin(gone)
    this.releasing = this.releasing.then(async () => {
      try { await this.drop(ref, gone, live) } finally { end() }
    })
  }

  /**
   * Of `cids`, the ones this host's tree needs: the blocks of the versions committed here lately
   * (ChunkService.recent, O(cids)); only when that set had to let a recent entry go for room,
   * the walk of the whole tree (Network.referenced); all of them when that cannot be told.
   */
  private async inTree (cids: CID[]): Promise<Set<string>> {
    const network = this.network
    if (cids.length === 0) return new Set()
    const recent = this.chunks.recent
    if (network?.referenced === undefined || !recent.overflowed()) return recent.among(cids)
    try {
      return await network.referenced(cids)
    } catch (err) {
      log.error('given-up write: which of its blocks this host\'s tree needs could not be told, all kept (GC removes them later): %s', (err as Error).message)
      return new Set(cids.map(c => c.toString()))
    }
  }

  /** release()'s work: never throws (what it cannot delete is left to GC). */
  private async drop (ref: ChunkRef, gone: CID[], live: Set<string>): Promise<void> {
    await this.placing.get(ref)?.run
    // a deferred chunk's store here, begun before the release (its failure is durable()'s)
    await this.unplaced.get(ref)?.catch(() => {})
    // after the open check (release()): a write of the same bytes here that committed since is in the tree
    const inTree = await this.inTree(gone)
    if (this.network?.abandon !== undefined) {
      await this.network.abandon([ref], { keep: f => live.has(f.toString()) || this.chunks.open.hasFragment(f) || inTree.has(f.toString()) }).catch((err: Error) => { log.error('rewritten chunk %s: asking peers to delete its fragments failed (GC removes them later): %s', ref.cid!.toString(), err.message) })
    }
    let freed = 0
    for (const cid of gone) {
      if (!this.store.claimed(cid, this) || inTree.has(cid.toString()) || this.network?.mayDelete?.(cid) === false) continue
      try {
        // (still claimed in its turn: a put of the same block by another write keeps it)
        if (await this.store.deleteClaimed(cid, this)) freed++
      } catch (err) {
        log.error('rewritten chunk: deleting block %s failed (GC removes it later): %s', cid.toString(), (err as Error).message)
      }
    }
    log('rewritten chunk %s released: %d block(s) deleted here', ref.cid!.toString(), freed)
  }

  /**
   * Every chunk stored so far is durable here (their puts are over); throws the first put that
   * failed. Before anything names the chunks (a manifest, an op).
   */
  async durable (): Promise<void> {
    await this.puts.done()
  }

  /** Store the version's manifest (claimed like the chunks; placed by placed()), once every chunk is durable here. */
  async manifest (manifest: Manifest, opts: AbortOptions = {}): Promise<{ cid: CID, ref: ChunkRef }> {
    await raceSignal(this.durable(), opts.signal)
    const stored = await this.chunks.storeManifest(manifest, { signal: opts.signal, claim: this })
    this.blocks.set(stored.cid.toString(), stored.cid)
    this.refs.push(stored.ref)
    this.chunks.open.add(stored.ref)
    this.manifestRef = stored.ref
    return stored
  }

  /** The op naming this version is in the tree: its blocks are referenced now, no longer this write's to delete. */
  committed (): void {
    // a write of the same bytes given up here from now on spares them (inTree()): the peers may not have seen the commit yet
    const wasOpen = this.done === 'open'
    if (wasOpen) this.chunks.recent.add(this.committedBlocks())
    this.done = 'committed'
    // referenced by the tree now: a release spares them (keeper/retained.ts), the promises may end
    this.stopRenewing()
    for (const cid of this.blocks.values()) this.store.unclaim(cid, this)
    // the manifest is placed by placed(), once the chunks are: this host's placement work from the
    // commit on (pending), not a block no one places that this host's repair pass takes over
    // meanwhile (mend43c: it placed it first and handed the writer's copy over)
    if (wasOpen && this.manifestRef !== undefined) this.network?.pend?.([this.manifestRef], { inode: this.inode })
    // once (counts: a second call, or one after abandon(), would take another write's entries)
    if (wasOpen) for (const ref of [...this.refs, ...this.stored]) this.chunks.open.remove(ref)
  }

  /**
   * Every block the committed version names that this write stored or placed, as inTree() asks
   * about them: the fragments of its chunks and placeStored()'s (with k = 1 the fragment is the
   * chunk; an erasure-coded chunk's own CID is no block and is never asked about), the manifest.
   */
  private * committedBlocks (): Iterable<CID> {
    for (const ref of [...this.refs, ...this.stored]) yield * ref.fragments
    yield * this.blocks.values()
  }

  /**
   * Wait until every chunk's placement (and release) is over, then place the manifest (`inode`:
   * the file, now known). `safe` (an fsync's wait, DESIGN.md §5): until each chunk and the
   * manifest survive one lost host instead; the rest of their placement goes on.
   */
  async placed (opts: { inode?: string, safe?: boolean } = {}): Promise<void> {
    if (opts.safe === true) await Promise.all(this.safes)
    else while (this.inflight.size > 0) await Promise.race(this.inflight)
    await this.releasing
    const m = this.manifestRef
    this.manifestRef = undefined
    if (m !== undefined) await this.chunks.place([m], { inode: opts.inode ?? this.inode, safe: opts.safe === true })
  }

  /**
   * Give the write up before its commit (an error, a cancelled put): its placements stop, the
   * hosts that took fragments are asked to delete them (network.abandon), and the blocks it
   * stored new here, that nothing else stored since, are deleted. Idempotent; never throws.
   */
  async abandon (): Promise<void> {
    if (this.done !== 'open') return
    this.done = 'abandoned'
    this.stopRenewing()
    this.stop.abort(new DOMException('the write was abandoned', 'AbortError'))
    await Promise.allSettled([...this.inflight])
    // (a deferred chunk's store here after its placement: storeUnplaced)
    await this.puts.done().catch(() => {})
    await this.releasing
    for (const ref of this.refs) this.chunks.open.remove(ref)
    // not the chunks another write here still has (OpenChunks), nor a fragment of one: their
    // fragments are its too
    const open = this.chunks.open
    const refs = this.refs.filter(r => r.cid !== null && !open.has(r))
    // from the check above on: a write of the same bytes here starting meanwhile places them after the release
    const end = this.chunks.releasing.begin(refs.flatMap(r => r.fragments.filter(f => !open.hasFragment(f))))
    let freed = 0
    try {
      // looked at after the open check above: a write of the same bytes here is either still
      // open or committed, in this host's tree then (review31g: its fragments were released on
      // the peers that had not seen the commit yet)
      const inTree = await this.inTree([...refs.flatMap(r => r.fragments), ...this.blocks.values()])
      if (this.network?.abandon !== undefined && refs.length > 0) {
        await this.network.abandon(refs, { keep: f => open.hasFragment(f) || inTree.has(f.toString()) }).catch((err: Error) => { log.error('abandoned write: asking peers to delete its fragments failed (GC removes them later): %s', err.message) })
      }
      for (const cid of this.blocks.values()) {
        if (!this.store.claimed(cid, this) || open.hasFragment(cid) || inTree.has(cid.toString()) || this.network?.mayDelete?.(cid) === false) continue
        try {
          // (still claimed in its turn: a put of the same block by another write keeps it)
          if (await this.store.deleteClaimed(cid, this)) freed++
        } catch (err) {
          log.error('abandoned write: deleting block %s failed (GC removes it later): %s', cid.toString(), (err as Error).message)
        }
      }
    } finally {
      end()
      // (after the release: not this write's blocks, which it leaves)
      for (const ref of this.stored) this.chunks.open.remove(ref)
    }
    log('abandoned write: %d chunk(s), %d block(s) deleted here', refs.length, freed)
  }
}
