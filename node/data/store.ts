// Local block storage: fragments, chunks and manifests on disk (blockstore-fs), the only owner
// of that package. Guarantees:
//  - put() returns only once the block file and its directory entry are fsynced;
//  - get() hashes what it read and compares it with the CID: a corrupt block is moved aside
//    (never deleted: it is evidence), reported as CorruptBlockError, and never returned;
//  - a full disk surfaces as FsError ENOSPC, and nothing already stored is touched; with a
//    space gate (space.ts) new blocks are refused while the host is full, and the gate hears
//    of every ENOSPC and delete.
import { open, mkdir, rename, stat, statfs, readFile, readdir } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CorruptBlockError, FsError } from '../errors.ts'
import { logger } from '../log.ts'
import { PresentFilter } from './present.ts'
import { sha256Many } from './erasure.ts'

const SHA256 = 0x12
const log = logger('data:store')
/** Deleted blocks remembered as gone (has() answers from memory; older ones ask the disk). */
export const MAX_GONE_REMEMBERED = 65536
/** Quarantined blocks remembered as corrupt (oldest forgotten first). */
export const MAX_CORRUPTED_REMEMBERED = 4096

/** sha256 of bytes as a CIDv1 with the given codec (raw by default). */
export function cidOf (bytes: Uint8Array, codec: number = raw.code): CID {
  const digest = createHash('sha256').update(bytes).digest()
  return CID.createV1(codec, createDigest(SHA256, digest))
}

/** True when bytes hash to the CID's sha256 multihash. */
export function matches (cid: CID, bytes: Uint8Array): boolean {
  if (cid.multihash.code !== SHA256) return false
  const digest = createHash('sha256').update(bytes).digest()
  return Buffer.compare(digest, cid.multihash.digest) === 0
}

/**
 * matches(), with the hashing of a large block on the erasure addon's threadpool
 * (erasure.sha256Many) when it is there: get() serves every read of a block here, a peer's pull
 * included, and on a busy host the event loop, not the cores, is what runs out (issue 15 item
 * 4: a cold read through six hosts spent ~7% of its main thread in get()'s hash). `bytes` must
 * not change until it settles (they were just read from disk and nobody else has them yet).
 */
export async function matchesOffThread (cid: CID, bytes: Uint8Array): Promise<boolean> {
  const many = sha256Many
  if (many === undefined || cid.multihash.code !== SHA256 || bytes.byteLength < OFF_THREAD_HASH_MIN_BYTES) return matches(cid, bytes)
  const [digest] = await many([bytes], [], 0)
  return Buffer.compare(digest, cid.multihash.digest) === 0
}

/** Blocks below this many bytes are hashed on the calling thread (a threadpool round trip costs more). */
const OFF_THREAD_HASH_MIN_BYTES = 65536

export interface StoreEvents { corrupt: (cid: CID, file: string) => void }

/** What the store tells the space watcher (space.ts) and asks it before storing a block. */
export interface SpaceGate {
  /** Throws FsError ENOSPC when no block of `bytes` may be stored now. */
  admit: (bytes: number) => void
  /** A write failed with ENOSPC. */
  noSpace: () => void
  /** Blocks were deleted. */
  freed: () => void
}

export interface StoreOptions {
  /** Told of every block found corrupt (and quarantined). */
  onCorrupt?: (cid: CID) => void
  /** The space gate (space.ts, built on the store's dir before the store): refuses new blocks while the disk is full. */
  space?: SpaceGate
}

export class Store {
  readonly dir: string
  private readonly blocks: FsBlockstore
  private readonly shards = new NextToLast()
  private readonly onCorrupt?: (cid: CID) => void
  /** Blocks quarantined by this process (until stored again), so later reads say corrupt, not absent. */
  private readonly corrupted = new Set<string>()
  /** Refuses new blocks while the disk is full (space.ts); blocks already stored are kept. */
  private readonly space?: SpaceGate
  /** Bytes of blocks this process wrote (new ones only) and removed (deleted, quarantined); see counters(). */
  private added = 0
  private removed = 0
  /** The highest added - removed since markPeak(). */
  private peak = 0
  /** Bytes of block files when tally() walked the store, less `net` then (stored()). */
  private base?: number
  /**
   * Block -> the write that stored it and is the only one to have stored it since (claim()):
   * a write abandoned before its commit deletes exactly these (a block another write or a peer
   * stored too is shared, and left to GC).
   */
  private readonly claims = new Map<string, object>()
  /**
   * The blocks this store may hold (present.ts), from tally()'s walk and every put since: has()
   * answers "not here" from memory. Undefined before tally() (every has() asks the disk).
   */
  private present?: PresentFilter
  /** The filter tally() is filling (puts during its walk go in too). */
  private filling?: PresentFilter
  /**
   * Blocks deleted by this process and not stored since (multihash, base64 -> the deletion),
   * the last MAX_GONE_REMEMBERED: the filter cannot forget them, so has() checks here before
   * asking the disk (a writer's staged fragments, copies handed over: most "maybe"s otherwise).
   */
  private readonly gone = new Map<string, object>()
  /** Blocks being written now (by putMany), so a concurrent put of the same block waits and counts it once. */
  private readonly writing = new Map<string, Promise<void>>()

  private constructor (dir: string, opts: StoreOptions) {
    this.dir = dir
    this.onCorrupt = opts.onCorrupt
    this.space = opts.space
    this.blocks = new FsBlockstore(join(dir, 'blocks'), { shardingStrategy: this.shards })
  }

  static async open (dir: string, opts: StoreOptions = {}): Promise<Store> {
    const store = new Store(dir, opts)
    await mkdir(join(dir, 'blocks'), { recursive: true })
    await mkdir(join(dir, 'corrupt'), { recursive: true })
    await store.blocks.open()
    return store
  }

  async close (): Promise<void> {
    await this.blocks.close()
  }

  private file (cid: CID): { dir: string, file: string } {
    const { dir, file } = this.shards.encode(cid)
    return { dir: join(this.dir, 'blocks', dir), file: join(this.dir, 'blocks', dir, file) }
  }

  async has (cid: CID): Promise<boolean> {
    if (this.absent(cid)) return false
    await this.written(cid)
    return await this.blocks.has(cid)
  }

  /**
   * Until a put of `cid` in progress here is over (never throws: its caller hears a failure):
   * a block is read, or found, once its file is whole and synced, not as absent while a write
   * that goes on without waiting for its put (blocks.ts ChunkWrite) still stores it.
   */
  private async written (cid: CID): Promise<void> {
    const writing = this.writing.get(cid.toString())
    if (writing !== undefined) await writing.catch(() => {}) // ignored: the put's caller hears its failure
  }

  /** Surely not stored here (present.ts, or deleted since); false means "ask the disk". */
  private absent (cid: CID): boolean {
    if (this.present === undefined || cid.multihash.code !== SHA256) return false
    return !this.present.mayHave(cid.multihash.digest) || this.gone.has(goneKey(cid))
  }

  /** Note a block about to be stored (before its file exists: the filter never says "not here" of a stored block). */
  private noteStored (cid: CID): void {
    if (cid.multihash.code !== SHA256) return
    this.gone.delete(goneKey(cid))
    this.filling?.add(cid.multihash.digest)
    if (this.present !== this.filling) this.present?.add(cid.multihash.digest)
  }

  /**
   * Store blocks durably. Each block's bytes must hash to its CID. `claim`: the write storing
   * them (any object): a block it stores new is claimed by it (claimed()), until anything else
   * stores the same block. `verified`: the caller hashed these very bytes to their CIDs a moment
   * ago (the writer's encode, the swarm's check on arrival) and they do not change meanwhile, so
   * they are not hashed again here (issue 15 item 4: on a write through six hosts the second
   * hash of every fragment, on the writer and on each receiver, was ~3% of the CPU).
   */
  async putMany (blocks: Array<{ cid: CID, bytes: Uint8Array }>, opts: { claim?: object, verified?: boolean } = {}): Promise<void> {
    if (opts.verified !== true) {
      for (const { cid, bytes } of blocks) {
        if (!matches(cid, bytes)) throw new CorruptBlockError(cid.toString(), 'refused to store')
      }
    }
    // equal blocks (equal shards of one chunk) are written, and counted, once
    const distinct = [...new Map(blocks.map(b => [b.cid.toString(), b])).values()]
    try {
      await Promise.all(distinct.map(async ({ cid, bytes }) => {
        const key = cid.toString()
        const { dir, file } = this.file(cid)
        this.corrupted.delete(key)
        // the same block being stored by another call: it counts once, and is shared
        const other = this.writing.get(key)
        // in `writing` from the call on (not from the file write on): a read of the block waits
        // for it (written()), whatever this put still checks first
        const writing = (async () => {
          if (other !== undefined) await other.catch(() => {}) // ignored: that call reports its own failure; this one checks the file below
          // a block surely absent needs no stat (a failing one: an exception on the main thread)
          if (!this.absent(cid) && await this.presentOnDisk(file, bytes.byteLength)) {
            // stored by someone else too (or before): no longer one write's alone
            if (this.claims.get(key) !== opts.claim) this.claims.delete(key)
            return
          }
          this.space?.admit(bytes.byteLength)
          this.noteStored(cid)
          // the file's bytes and its directory entry are synced at once, not one after the other:
          // both must be durable before put() returns, in no order between them (a small write's
          // fsync on a host waits for a few of these in a row: each sync is a disk flush)
          await this.blocks.put(cid, bytes)
          await Promise.all([fsyncPath(file), fsyncPath(dir)])
          // written: not gone, even if a deletion began while it was being written
          this.gone.delete(goneKey(cid))
          this.count(bytes.byteLength)
          if (opts.claim !== undefined) this.claims.set(key, opts.claim)
          else this.claims.delete(key)
        })()
        this.writing.set(key, writing)
        try { await writing } finally { if (this.writing.get(key) === writing) this.writing.delete(key) }
      }))
    } catch (err: any) {
      if (err instanceof FsError) throw err // the space gate refused: it knows
      const text = String(err?.message ?? err)
      if (err?.code === 'ENOSPC' || text.includes('ENOSPC')) {
        this.space?.noSpace()
        throw new FsError('ENOSPC', 'put', this.dir, 'the block store is full')
      }
      throw err
    }
  }

  async put (cid: CID, bytes: Uint8Array, opts: { claim?: object, verified?: boolean } = {}): Promise<void> {
    await this.putMany([{ cid, bytes }], opts)
  }

  /** Whether `claim` stored this block new and nothing else stored it since (putMany). */
  claimed (cid: CID | string, claim: object): boolean {
    return this.claims.get(cid.toString()) === claim
  }

  /** Whether some write in flight here claims this block (it stored it new and has not committed). */
  isClaimed (cid: CID | string): boolean {
    return this.claims.has(cid.toString())
  }

  /** Forget a write's claim on a block (it committed: the tree references the block now). */
  unclaim (cid: CID | string, claim: object): void {
    const key = cid.toString()
    if (this.claims.get(key) === claim) this.claims.delete(key)
  }

  /**
   * What this process changed in the store, in bytes of block files: `added` (blocks written
   * new), `removed` (deleted or quarantined), `net` = added - removed (how far the store's
   * bytesStored moved since it was opened), and `peak`, the highest `net` since markPeak().
   * Exact, from the writes themselves: no sampling.
   */
  counters (): { added: number, removed: number, net: number, peak: number } {
    return { added: this.added, removed: this.removed, net: this.added - this.removed, peak: this.peak }
  }

  /**
   * Walk the store once (as usage() does) so that stored() can answer from then on. Call it
   * before anything writes or deletes (the daemon does, right after open): a block written
   * during the walk could be counted twice.
   */
  async tally (): Promise<void> {
    const filter = new PresentFilter()
    this.filling = filter
    try {
      const { bytesStored } = await this.walk(filter)
      this.base = bytesStored - (this.added - this.removed)
      this.present = filter
    } finally {
      if (this.filling === filter) this.filling = undefined
    }
  }

  /**
   * Bytes of block files stored here now, with no walk: the figure tally() found, moved by
   * every block written, deleted or quarantined since. Undefined before tally().
   */
  stored (): number | undefined {
    return this.base === undefined ? undefined : this.base + this.added - this.removed
  }

  /** Start a new high-water mark of counters().net (from now). */
  markPeak (): void {
    this.peak = this.added - this.removed
  }

  private count (bytes: number): void {
    if (bytes > 0) this.added += bytes
    else this.removed -= bytes
    this.peak = Math.max(this.peak, this.added - this.removed)
  }

  private async presentOnDisk (file: string, size: number): Promise<boolean> {
    try {
      return (await stat(file)).size === size
    } catch { return false } // absent (ENOENT) or unreadable: either way it is written again
  }

  /** Read a block, verified. Throws CorruptBlockError (and quarantines it) on a hash mismatch. */
  async get (cid: CID): Promise<Uint8Array> {
    const { file } = this.file(cid)
    await this.written(cid)
    let bytes: Uint8Array
    try {
      bytes = await readFile(file)
    } catch (err: any) {
      if (err.code === 'ENOENT') {
        // quarantined by an earlier read (a prefetch, say): still the corruption, not an absence
        if (this.corrupted.has(cid.toString())) throw new CorruptBlockError(cid.toString(), `on disk in ${this.dir} (quarantined)`)
        throw new FsError('ENOENT', 'get', cid.toString(), 'block not stored here')
      }
      throw err
    }
    if (!await matchesOffThread(cid, bytes)) {
      await this.quarantine(cid, file)
      throw new CorruptBlockError(cid.toString(), `on disk in ${this.dir}`)
    }
    return bytes
  }

  /**
   * Bytes [offset, offset + length) of a stored block, NOT verified (a slice cannot be checked
   * against the block's CID): the caller checks it, against the leaf hashes of the block's
   * Merkle tree (data/leaves.ts). Undefined when the block is not here or shorter than that.
   */
  async readSlice (cid: CID, offset: number, length: number): Promise<Uint8Array | undefined> {
    if (this.absent(cid)) return undefined
    await this.written(cid)
    let fh
    try {
      fh = await open(this.file(cid).file, 'r')
    } catch (err: any) {
      if (err.code === 'ENOENT') return undefined
      throw err
    }
    try {
      const out = new Uint8Array(length)
      let got = 0
      while (got < length) {
        const { bytesRead } = await fh.read(out, got, length - got, offset + got)
        if (bytesRead === 0) return undefined
        got += bytesRead
      }
      return out
    } finally {
      await fh.close()
    }
  }

  /** A local block if present and sound; undefined when absent or corrupt (corrupt ones are quarantined). */
  async tryGet (cid: CID): Promise<Uint8Array | undefined> {
    try {
      return await this.get(cid)
    } catch (err: any) {
      if (err.code === 'ENOENT' || err instanceof CorruptBlockError) return undefined
      throw err
    }
  }

  private async quarantine (cid: CID, file: string): Promise<void> {
    if (this.corrupted.size >= MAX_CORRUPTED_REMEMBERED) this.corrupted.delete(this.corrupted.values().next().value as string)
    this.corrupted.add(cid.toString())
    try {
      const size = (await stat(file)).size
      await rename(file, join(this.dir, 'corrupt', `${cid.toString()}.${Date.now()}`))
      this.count(-size)
      this.claims.delete(cid.toString())
      log.error('block %s is corrupt on disk: moved to %s/corrupt', cid.toString(), this.dir)
    } catch (err) {
      // still remembered as corrupt (this.corrupted) and reported below; a later read tries again
      log.error('block %s is corrupt on disk, and moving it aside failed: %s', cid.toString(), (err as Error).message)
    }
    this.onCorrupt?.(cid)
  }

  async delete (cid: CID): Promise<void> {
    const { file } = this.file(cid)
    // remembered as gone from now on (has() says "not here" while it is being deleted), unless
    // the deletion fails or the block is stored again meanwhile (noteStored forgets it)
    const key = goneKey(cid)
    const mark = {}
    this.gone.delete(key)
    this.gone.set(key, mark)
    if (this.gone.size > MAX_GONE_REMEMBERED) this.gone.delete(this.gone.keys().next().value as string)
    try {
      // ignored: an absent block frees nothing (blockstore-fs deletes it without complaint too)
      const size = await stat(file).then(s => s.size, () => 0)
      await this.blocks.delete(cid)
      this.claims.delete(cid.toString())
      if (size > 0) this.count(-size)
      this.space?.freed()
    } catch (err) {
      if (this.gone.get(key) === mark) this.gone.delete(key)
      throw err
    }
  }

  /** Every stored block's CID (as raw-codec CIDs: the store is keyed by multihash). */
  async * cids (): AsyncGenerator<CID> {
    const root = join(this.dir, 'blocks')
    for (const d of await readdir(root)) {
      let names: string[]
      try { names = await readdir(join(root, d)) } catch { continue } // not a shard directory (or just removed)
      for (const n of names) {
        if (!n.endsWith('.data')) continue
        let cid: CID
        try { cid = CID.createV1(raw.code, this.shards.decode(n).multihash) } catch { continue } // not a block file's name: not ours
        yield cid
      }
    }
  }

  /** Bytes used by blocks and the capacity of the disk under the store. */
  async usage (): Promise<{ bytesStored: number, blocks: number, capacity: number, free: number }> {
    return { ...await this.walk(), ...await this.disk() }
  }

  /** Bytes and count of the block files, each block's digest added to `filter` when given. */
  private async walk (filter?: PresentFilter): Promise<{ bytesStored: number, blocks: number }> {
    let bytesStored = 0
    let blocks = 0
    const root = join(this.dir, 'blocks')
    for (const d of await readdir(root)) {
      let names: string[]
      try { names = await readdir(join(root, d)) } catch { continue } // not a shard directory (or just removed)
      for (const n of names) {
        try { bytesStored += (await stat(join(root, d, n))).size; blocks++ } catch { continue } // deleted since the readdir: not counted
        if (filter !== undefined && n.endsWith('.data')) {
          try {
            const { multihash } = this.shards.decode(n)
            if (multihash.code === SHA256) filter.add(multihash.digest)
          } catch {} // not a block file's name: not ours
        }
      }
    }
    return { bytesStored, blocks }
  }

  /** The capacity and free bytes of the disk under the store (one statfs, no walk of the blocks). */
  async disk (): Promise<{ capacity: number, free: number }> {
    const fs = await statfs(this.dir)
    return { capacity: fs.blocks * fs.bsize, free: fs.bavail * fs.bsize }
  }
}

/** A block's key in Store.gone: its multihash (the store is keyed by multihash, not codec). */
function goneKey (cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64')
}

async function fsyncPath (path: string): Promise<void> {
  const fh = await open(path, 'r')
  try { await fh.sync() } finally { await fh.close() }
}
