// Chunk service: where the Volume's bytes go and come from. Stores every chunk it writes
// locally first (durable before the write op is committed), and reads through a bounded
// cache, the local store, then the network (when it is given a Network: swarm pull of any k
// fragments from their holders; see network.ts). Every read takes the caller's signal down to the
// network fetch; a fetch that several readers wait on runs until the last of them gives up.
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { raceSignal } from '../abort.ts'
import { ChunkCache } from './cache.ts'
import { CHUNK_SIZE, MAX_MANIFEST_BYTES, ManifestError, decodeChunk, encodeChunk, decodeManifest, encodeManifest, manifestRef } from './chunks.ts'
import type { ChunkRef, Manifest } from './chunks.ts'
import { BlockUnavailableError, CorruptBlockError, FsError } from '../errors.ts'
import type { Store } from './store.ts'
import { Staging } from './staging.ts'
import { logger } from '../log.ts'

const log = logger('data:chunks')

/** Chunks fetched ahead of a sequential reader. */
export const PREFETCH_CHUNKS = 4
/** Decoded manifests kept in memory. */
export const MANIFEST_CACHE_ENTRIES = 4096

/** What the chunk service needs of the network (implemented in network.ts over host + swarm). */
export interface Network {
  /** Erasure parameters for new chunks, from the live network (DESIGN.md §2). */
  params: () => { k: number, m: number }
  /**
   * Fetch `need` of the given fragment CIDs (data first) from peers; verified. `chunk`: the
   * chunk they belong to, so its targets can be asked who holds what first.
   */
  fetch: (cids: CID[], need: number, opts?: AbortOptions & { chunk?: ChunkRef }) => Promise<Map<string, Uint8Array>>
  /**
   * Place the fragments of newly written chunks on their targets and resolve when the attempt
   * is over (acknowledged, or left pending for a retry); `inode`: the file they belong to;
   * `staged`: fragments still in memory (else they are read from the local store).
   */
  place: (refs: ChunkRef[], opts?: AbortOptions & { inode?: string, staged?: (cid: CID) => Uint8Array | undefined }) => Promise<void>
  /** Fetch one block (e.g. a manifest) from whoever has it. */
  fetchOne: (cid: CID, opts?: AbortOptions) => Promise<Uint8Array>
}

/** A chunk fetch shared by its readers: aborted when the last waiting reader gives up. */
interface SharedFetch { promise: Promise<Uint8Array>, controller: AbortController, waiting: number }

export interface ChunkServiceInit {
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
}

export class ChunkService {
  private readonly store: Store
  private readonly cache: ChunkCache
  private readonly localParams: { k: number, m: number }
  /** Decoded manifests read recently (oldest first), bounded by MANIFEST_CACHE_ENTRIES. */
  private readonly manifests = new Map<string, Manifest>()
  /** Chunk fetches in progress, by chunk CID. */
  private readonly reading = new Map<string, SharedFetch>()
  private readonly network?: Network
  /** Written fragments not yet placed, kept in memory for placement (none without a network). */
  private readonly staging?: Staging

  constructor (store: Store, init: ChunkServiceInit = {}) {
    this.store = store
    this.cache = new ChunkCache(init.cacheBytes)
    this.localParams = init.localParams ?? { k: 1, m: 0 }
    this.network = init.network
    this.staging = init.staging ?? (init.network !== undefined ? new Staging() : undefined)
  }

  /** A written fragment still waiting for placement, from memory (the swarm serves relays from it). */
  staged (cid: CID): Uint8Array | undefined {
    return this.staging?.get(cid)
  }

  params (): { k: number, m: number } {
    return this.network?.params() ?? this.localParams
  }

  /** Drop decoded chunks from memory (tests and benchmarks read cold). */
  dropCache (): void {
    this.cache.clear()
  }

  /** Encode and store a chunk locally (fsynced). Placement happens at commit. */
  async storeChunk (bytes: Uint8Array, offset: number, opts: AbortOptions = {}): Promise<{ ref: ChunkRef, blocks: Array<{ cid: CID, bytes: Uint8Array }> }> {
    // local work: checked at entry, never torn half-way
    opts.signal?.throwIfAborted()
    const { k, m } = this.params()
    const encoded = encodeChunk(bytes, offset, k, m)
    await this.store.putMany(encoded.blocks)
    if (encoded.ref.cid !== null) {
      this.cache.set(encoded.ref.cid.toString(), bytes)
      this.staging?.stage(encoded.ref.cid.toString(), encoded.blocks)
    }
    return encoded
  }

  /**
   * Read a whole chunk: cache, local fragments, then the network. One fetch per chunk at a time:
   * a read joins a fetch of the same chunk already running (another read, a prefetch). The
   * caller's signal ends its own wait; the fetch is aborted once no caller waits for it.
   */
  async readChunk (ref: ChunkRef, opts: AbortOptions & { path?: string } = {}): Promise<Uint8Array> {
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
    if (shared === undefined) {
      const controller = new AbortController()
      const promise = this.fetchChunk(ref, key, { path: opts.path, signal: controller.signal })
      const s: SharedFetch = { promise, controller, waiting: 0 }
      shared = s
      this.reading.set(key, s)
      // its waiters see the outcome; nobody may be left to, once all of them gave up
      promise.catch(() => {}).finally(() => { if (this.reading.get(key) === s) this.reading.delete(key) })
    }
    shared.waiting++
    try {
      return await raceSignal(shared.promise, opts.signal)
    } finally {
      if (--shared.waiting === 0 && opts.signal?.aborted === true) {
        // the last reader gave up: stop fetching, and let the next reader start afresh
        if (this.reading.get(key) === shared) this.reading.delete(key)
        shared.controller.abort(opts.signal.reason)
      }
    }
  }

  /**
   * Warm the cache with the chunks a sequential reader will ask for next (DESIGN.md §5): the
   * PREFETCH_CHUNKS after `refs[from - 1]`, fetched in the background, failures left to the
   * real read.
   */
  prefetch (refs: ChunkRef[], from: number, opts: { path?: string } = {}): void {
    for (const ref of refs.slice(from, from + PREFETCH_CHUNKS)) {
      if (ref.cid === null || this.cache.get(ref.cid.toString()) !== undefined || this.reading.has(ref.cid.toString())) continue
      this.readChunk(ref, opts).catch((err: Error) => {
        // a prefetch is a guess: the real read fetches again and reports its own failure
        log.trace('prefetch of chunk %s failed: %s', ref.cid!.toString(), err.message)
      })
    }
  }

  private async fetchChunk (ref: ChunkRef, key: string, opts: AbortOptions & { path?: string }): Promise<Uint8Array> {
    const frags: Array<Uint8Array | undefined> = new Array(ref.k + ref.m).fill(undefined)
    let have = 0
    let corrupt = 0
    let unreachable = ''
    // data fragments first: no decoding needed when all k are here
    for (let i = 0; i < ref.fragments.length && have < ref.k; i++) {
      let f: Uint8Array | undefined
      try {
        f = await this.store.get(ref.fragments[i])
      } catch (err: any) {
        if (err instanceof CorruptBlockError) corrupt++
        else if (err.code !== 'ENOENT') throw err
      }
      if (f !== undefined) {
        frags[i] = f
        have++
        if (ref.k === 1) break
      }
    }
    if (have < ref.k && this.network !== undefined) {
      const want = ref.fragments.filter((_, i) => frags[i] === undefined)
      // an unreachable chunk is an error naming the file (EIO through the mount), never a hang
      const got = await this.network.fetch(want, ref.k - have, { ...opts, chunk: ref }).catch((err: any) => {
        opts.signal?.throwIfAborted()
        // reported below, with what was reachable: the read's error names the file and the cause
        unreachable = err?.message ?? String(err)
        return new Map<string, Uint8Array>()
      })
      ref.fragments.forEach((cid, i) => {
        const b = got.get(cid.toString())
        if (b !== undefined && frags[i] === undefined) { frags[i] = b; have++ }
      })
    }
    if (have < ref.k && corrupt > 0) {
      throw new CorruptBlockError(key, `chunk at offset ${ref.offset}${opts.path !== undefined ? ` of ${opts.path}` : ''}, and no intact copy is reachable`)
    }
    if (have < ref.k) {
      throw new BlockUnavailableError(key, `${have} of the ${ref.k} fragments needed are reachable${opts.path !== undefined ? ` (file ${opts.path})` : ''}${unreachable !== '' ? `: ${unreachable}` : ''}`)
    }
    const bytes = decodeChunk(ref, frags)
    this.cache.set(key, bytes)
    return bytes
  }

  /** Store a manifest durably here; its ref (manifestRef) is what placement spreads. */
  async storeManifest (manifest: Manifest, opts: AbortOptions = {}): Promise<{ cid: CID, ref: ChunkRef }> {
    opts.signal?.throwIfAborted()
    const { cid, bytes } = encodeManifest(manifest)
    // no host would read it back (decodeManifest's bound): the file holds more chunks of data
    // than one manifest describes (about 60 GiB; holes cost nothing)
    if (bytes.byteLength > MAX_MANIFEST_BYTES) throw new FsError('EFBIG', 'write', undefined, `a manifest of ${manifest.chunks.length} chunks is over ${MAX_MANIFEST_BYTES} bytes`)
    await this.store.put(cid, bytes)
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
   * (the Volume decides how long an fsync waits for it). Their staged fragments are forgotten
   * then: a chunk left pending is pushed again later from the store.
   */
  async place (refs: ChunkRef[], opts: AbortOptions & { inode?: string } = {}): Promise<void> {
    if (this.network === undefined || refs.length === 0) return
    try {
      await this.network.place(refs, { ...opts, staged: cid => this.staging?.get(cid) })
    } finally {
      for (const r of refs) if (r.cid !== null) this.staging?.release(r.cid.toString())
    }
  }

  /** Whether this host alone holds enough fragments to rebuild the chunk. */
  async hasLocally (ref: ChunkRef): Promise<boolean> {
    if (ref.cid === null) return true
    let have = 0
    for (const f of new Set(ref.fragments.map(c => c.toString()))) {
      const cid = ref.fragments.find(c => c.toString() === f)!
      if (await this.store.has(cid)) have += ref.k === 1 ? ref.k : ref.fragments.filter(c => c.toString() === f).length
    }
    return have >= ref.k
  }

  isCorrupt (err: unknown): boolean {
    return err instanceof CorruptBlockError
  }
}
