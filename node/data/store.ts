// Local block storage: fragments, chunks and manifests on disk (blockstore-fs), the only owner
// of that package. Guarantees:
//  - put() returns only once the block file and its directory entry are fsynced (blocks put
//    at about the same time share one job, GroupCommit: each put still waits for its own file's
//    and its own directory's sync, and fails alone when its own calls or syncs do);
//  - get() hashes what it read and compares it with the CID: a corrupt block is moved aside
//    (never deleted: it is evidence), reported as CorruptBlockError, and never returned;
//  - a full disk surfaces as FsError ENOSPC, and nothing already stored is touched; with a
//    space gate (space.ts) new blocks are refused while the host is full, and the gate hears
//    of every ENOSPC and delete;
//  - after tally(), has() answers from memory (present.ts: every block stored, deleted or found
//    corrupt changes the index, one change of a block at a time), and says "here" only of a block
//    whose put returned; a block file removed behind the store leaves the index when a read finds
//    it gone or at the next resync().
import { open, mkdir, rename, stat, statfs, readFile, readdir, unlink } from 'node:fs/promises'
import { close as closeFd, open as openFd, read as readFd } from 'node:fs'
import { promisify } from 'node:util'
import { createHash } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CorruptBlockError, FsError } from '../errors.ts'
import { logger } from '../log.ts'
import { bytesKey } from '../bytes.ts'
import { PresentIndex } from './present.ts'
import { readBlockNative, readSliceNative, readSliceNowNative, sha256Many, writeBlockNative, writeBlocksNative } from './erasure.ts'

/** Multihash code of sha2-256, the hash of every block's CID here (chunks.ts and leaves.ts use it too). */
export const SHA2_256 = 0x12
/**
 * Block files kept open for slice reads (readSlice), the least recently read closed first. With
 * the native addon a slice of a kept file whose pages are cached is read on the event loop
 * (readSliceNow: preadv2 RWF_NOWAIT, a few microseconds, never a wait for the disk), and any
 * other slice by a threadpool job (open, pread, close); the file of a first slice is opened
 * through node:fs and kept. Without the addon, through the kept descriptor. A peer's 4 KiB read was a threadpool job on
 * its holder: two thread wakeups, ~0.2 ms (1 ms at p90) of a six-host read on a loaded machine
 * (issue 15). A range read of a chunk's pages opened and closed its fragment's file for every
 * slice through node:fs: ~10% of a close that read spilled patches back (issue 15). A block's bytes never change under its CID,
 * so a kept descriptor reads them as stored; a block deleted, found lost or quarantined is
 * closed here (noteGone) and read again only through a fresh open. 1,024: a host's fragments of
 * 1 GiB of 4+2 chunks at 1 MiB.
 */
export const SLICE_FILES_OPEN = 1024
const log = logger('data:store')
const openFile = promisify(openFd)
const readAt = promisify(readFd)
/**
 * The descriptors a Store kept open for slice reads, closed when the Store is collected without
 * close(): descriptors, not FileHandles, which Node 26 turns into an uncaught exception when one
 * is closed by garbage collection.
 */
const leftOpen = new FinalizationRegistry<Set<number>>(fds => { for (const fd of fds) closeFd(fd, () => {}) })
/** Quarantined blocks remembered as corrupt (oldest forgotten first). */
export const MAX_CORRUPTED_REMEMBERED = 4096

/** sha256 of bytes as a CIDv1 with the given codec (raw by default). */
export function cidOf (bytes: Uint8Array, codec: number = raw.code): CID {
  const digest = createHash('sha256').update(bytes).digest()
  return CID.createV1(codec, createDigest(SHA2_256, digest))
}

/** True when bytes hash to the CID's sha256 multihash. */
export function matches (cid: CID, bytes: Uint8Array): boolean {
  if (cid.multihash.code !== SHA2_256) return false
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
  if (many === undefined || cid.multihash.code !== SHA2_256 || bytes.byteLength < OFF_THREAD_HASH_MIN_BYTES) return matches(cid, bytes)
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
  /** Bytes read from block files: whole blocks (get) and slices (readSlice); see counters(). */
  private readBytes = 0
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
   * The blocks this store holds (present.ts), from tally()'s walk and every put, delete and
   * quarantine since: has() answers from memory. Undefined before tally() (every has() asks the
   * disk).
   */
  private present?: PresentIndex
  /** The index tally() or resync() is filling (puts during its walk go in too). */
  private filling?: PresentIndex
  /** Blocks deleted while the index was being filled (the walk may have listed them before). */
  private deletedWhileFilling = new Set<string>()
  /**
   * The change of each block under way (put, delete, a lost file's check), by multihash: changes
   * of one block run one after the other, so the index always ends where the disk does.
   */
  private readonly busy = new Map<string, Promise<void>>()
  /**
   * Slice reads served from the page cache on the event loop (readSliceNow), by a pread of a kept
   * descriptor on the threadpool, and by the addon's threadpool job (open, pread, close of the path).
   */
  readonly sliceCounters = { now: 0, kept: 0, pooled: 0 }
  /** Open block files of slice reads by multihash (sliceKey; SLICE_FILES_OPEN), most recently read last. */
  private readonly sliceFiles = new Map<string, SliceFile>()
  /** The descriptors of sliceFiles open now (closed if the Store is collected unclosed: leftOpen). */
  private readonly sliceFds = new Set<number>()
  /** Block files written in group commits (where the addon has writeBlocks), else one by one. */
  private readonly writer: (dir: string, file: string, bytes: Uint8Array) => Promise<void>
  private readonly group?: GroupCommit
  /**
   * Told of every block that leaves the store (deleted by anyone, quarantined, its file found
   * missing), when it leaves; must not throw. keeper/release.ts forgets who put it (a later put of
   * the same bytes starts afresh). Set by the daemon once its release exists.
   */
  onGone?: (cid: CID) => void
  /** Set by close(): a put after it is refused (a host torn down must not write into a removed data dir). */
  private closed = false

  private constructor (dir: string, opts: StoreOptions) {
    this.dir = dir
    this.onCorrupt = opts.onCorrupt
    this.space = opts.space
    // open() makes the directory first: a store opened while its data dir is being removed fails
    // instead of making it again (a host started as a test tore down left empty blocks/ in /tmp)
    this.blocks = new FsBlockstore(join(dir, 'blocks'), { shardingStrategy: this.shards, createIfMissing: false })
    const group = writeBlocksNative !== undefined ? new GroupCommit(writeBlocksNative) : undefined
    this.group = group
    this.writer = group !== undefined ? async (d, f, b) => { await group.write(d, f, b) } : writeBlock
    leftOpen.register(this, this.sliceFds)
  }

  static async open (dir: string, opts: StoreOptions = {}): Promise<Store> {
    const store = new Store(dir, opts)
    await mkdir(join(dir, 'blocks'), { recursive: true })
    await mkdir(join(dir, 'corrupt'), { recursive: true })
    await store.blocks.open()
    return store
  }

  async close (): Promise<void> {
    this.closed = true
    // the kept files no read uses are closed before this resolves (the others once their reads end)
    await Promise.all([...this.sliceFiles.keys()].map(async key => { await this.dropSliceFile(key) }))
    await this.blocks.close()
  }

  /** The open file of a slice read (kept under `key`, or `path` opened now); release() it after the read. */
  private sliceFile (key: string, path: string): SliceFile {
    let f = this.sliceFiles.get(key)
    if (f !== undefined) {
      this.sliceFiles.delete(key)
      this.sliceFiles.set(key, f)
    } else {
      const opened: SliceFile = { opening: openFile(path, 'r'), users: 0, dropped: false }
      f = opened
      this.sliceFiles.set(key, f)
      // the descriptor, for reads on the event loop (readSliceNow) while it is kept; a failed
      // open is no file to keep (the reader hears the error)
      opened.opening.then(fd => { opened.fd = fd; this.sliceFds.add(fd) }, () => { if (this.sliceFiles.get(key) === opened) this.sliceFiles.delete(key) })
      while (this.sliceFiles.size > SLICE_FILES_OPEN) void this.dropSliceFile(this.sliceFiles.keys().next().value as string)
    }
    f.users++
    return f
  }

  /** A slice read is done with `f`: a file dropped meanwhile is closed once no read uses it. */
  private releaseSliceFile (f: SliceFile): void {
    f.users--
    if (f.dropped && f.users === 0) void this.closeSliceFile(f)
  }

  /** Keep the file kept under `key` open no longer (closed now, or when its last read ends); settles once closed now. */
  private async dropSliceFile (key: string): Promise<void> {
    const f = this.sliceFiles.get(key)
    if (f === undefined) return
    this.sliceFiles.delete(key)
    f.dropped = true
    if (f.users === 0) await this.closeSliceFile(f)
  }

  private async closeSliceFile (f: SliceFile): Promise<void> {
    // ignored: a file that failed to open has nothing to close, and a close that fails frees the descriptor anyway
    const fd = await f.opening.catch(() => undefined)
    if (fd === undefined) return
    this.sliceFds.delete(fd)
    await new Promise<void>(resolve => { closeFd(fd, () => { resolve() }) })
  }

  private file (cid: CID): { dir: string, file: string } {
    const { dir, file } = this.shards.encode(cid)
    return { dir: join(this.dir, 'blocks', dir), file: join(this.dir, 'blocks', dir, file) }
  }

  /** Whether a read here found the block corrupt and quarantined it (remembered for the last MAX_CORRUPTED_REMEMBERED). */
  quarantined (cid: CID): boolean {
    return this.corrupted.has(cid.toString())
  }

  /** Whether the block is stored here: from memory once tally() walked the store (present.ts), else asked of the disk. */
  async has (cid: CID): Promise<boolean> {
    // a put under way (a write goes on without waiting for its put: blocks.ts ChunkWrite): the
    // block is found once its file is whole and synced, not as absent meanwhile
    if (this.busy.size > 0) await this.written(cid)
    const known = this.known(cid)
    if (known !== undefined) return known
    return await this.blocks.has(cid)
  }

  /**
   * Until the changes of `cid` under way here (a put, a delete) are over; never throws (their
   * callers hear their failures). A read waits for a put still storing the block.
   */
  private async written (cid: CID): Promise<void> {
    const busy = this.busy.get(blockKey(cid))
    if (busy !== undefined) await busy
  }

  /** What the index says of a block (undefined: no index yet, or not a sha256 block: ask the disk). */
  private known (cid: CID): boolean | undefined {
    if (this.present === undefined || cid.multihash.code !== SHA2_256) return undefined
    return this.present.has(cid.multihash.digest)
  }

  /** Surely not stored here (the index says so); false means "ask the disk". */
  private absent (cid: CID): boolean {
    return this.known(cid) === false
  }

  /** Note a block stored (its file and directory entry durable). */
  private noteStored (cid: CID): void {
    if (cid.multihash.code !== SHA2_256) return
    const key = blockKey(cid)
    this.deletedWhileFilling.delete(key)
    this.filling?.add(cid.multihash.digest)
    if (this.present !== this.filling) this.present?.add(cid.multihash.digest)
  }

  /**
   * Note a block gone (deleted, quarantined, or its file found missing). `tell` false: onGone is
   * told later by the caller (a delete tells it once its unlink succeeded: review36f).
   */
  private noteGone (cid: CID, tell = true): void {
    if (tell) this.onGone?.(cid)
    if (cid.multihash.code !== SHA2_256) return
    void this.dropSliceFile(sliceKey(cid))
    if (this.filling !== undefined) {
      this.deletedWhileFilling.add(blockKey(cid))
      this.filling.delete(cid.multihash.digest)
    }
    if (this.present !== this.filling) this.present?.delete(cid.multihash.digest)
  }

  /**
   * Run one change of a block after the changes of it under way (put, delete, a lost file's
   * check): the index and the disk then agree whatever order they were asked in.
   */
  private async serial<T> (cid: CID, change: () => Promise<T>): Promise<T> {
    const key = blockKey(cid)
    const before = this.busy.get(key)
    // `before` never rejects (it is the `done` below)
    const run = before === undefined ? change() : before.then(change)
    // ignored: this change's failure goes to its caller below; the next change only waits for it to end
    const done = run.then(() => {}, () => {})
    this.busy.set(key, done)
    try {
      return await run
    } finally {
      if (this.busy.get(key) === done) this.busy.delete(key)
    }
  }

  /**
   * A block the index holds whose file a read did not find: the file went behind the store's back
   * (a disk emptied under it). Checked again after the changes under way, and forgotten if gone.
   */
  private async lost (cid: CID, file: string): Promise<void> {
    if (this.known(cid) !== true) return
    await this.serial(cid, async () => {
      if (this.known(cid) !== true) return
      // ignored: any failure to stat is taken as the file gone (ENOENT, most likely)
      const there = await stat(file).then(() => true, () => false)
      if (there) return
      log.error('block %s is no longer on disk in %s (removed behind the store): forgotten', cid.toString(), this.dir)
      this.noteGone(cid)
    })
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
    // a put that arrives after close (a fragment received as its host stopped) is refused: it
    // wrote a block file, and the directories over it, into a data dir being removed
    if (this.closed) throw new FsError('EIO', 'put', this.dir, 'the block store is closed')
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
        // after any change of the same block under way (a put: it counts once, and is shared)
        await this.serial(cid, async () => {
          // a block the index does not hold needs no stat (a failing one: an exception on the main
          // thread); one it holds is checked on disk (a file lost behind the store is written again)
          if (!this.absent(cid) && await this.presentOnDisk(file, bytes.byteLength)) {
            // stored by someone else too (or before): no longer one write's alone
            if (this.claims.get(key) !== opts.claim) this.claims.delete(key)
            this.noteStored(cid)
            return
          }
          this.space?.admit(bytes.byteLength)
          await this.writer(dir, file, bytes)
          // in the index once durable: has() never says "here" of a block a crash could lose
          this.noteStored(cid)
          this.count(bytes.byteLength)
          if (opts.claim !== undefined) this.claims.set(key, opts.claim)
          else this.claims.delete(key)
        })
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

  /**
   * The group commits this store ran (GroupCommit): `jobs` of them, writing `blocks` block files
   * in all. Undefined where blocks are written one by one (no addon, or one built before writeBlocks).
   */
  groupCommits (): { jobs: number, blocks: number } | undefined {
    return this.group === undefined ? undefined : { jobs: this.group.jobs, blocks: this.group.blocks }
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
   * Exact, from the writes themselves: no sampling. `read`: bytes read from block files, whole
   * (get) or sliced (readSlice), from the disk or its page cache alike.
   */
  counters (): { added: number, removed: number, net: number, peak: number, read: number } {
    return { added: this.added, removed: this.removed, net: this.added - this.removed, peak: this.peak, read: this.readBytes }
  }

  /**
   * Walk the store once (as usage() does) so that stored() can answer from then on. Call it
   * before anything writes or deletes (the daemon does, right after open): a block written
   * during the walk could be counted twice.
   */
  async tally (): Promise<void> {
    await this.fill(async index => {
      const { bytesStored } = await this.walk(index, true)
      this.base = bytesStored - (this.added - this.removed)
    })
  }

  /**
   * Build the index again from the files on disk (names only, no stat): what went behind the
   * store's back since (a disk emptied under a running host, a block file removed by hand) leaves
   * it, so has() stops saying "here" of it. A repair pass that surveys every chunk calls it
   * first (keeper/repair.ts): the safety net for losses no event tells of. No effect before tally().
   */
  async resync (): Promise<void> {
    if (this.present === undefined) return
    await this.fill(async index => { await this.walk(index, false) })
  }

  /** Fill a new index by `walk`, with every put and delete during it, then answer from it. */
  private async fill (walk: (index: PresentIndex) => Promise<void>): Promise<void> {
    // one fill at a time (a second waits, then walks again: the disk may have changed since)
    while (this.filling !== undefined) await this.filled
    const index = new PresentIndex(this.present?.size ?? 0)
    this.filling = index
    this.deletedWhileFilling = new Set()
    let done!: () => void
    this.filled = new Promise(resolve => { done = resolve })
    try {
      await walk(index)
      // deleted while the walk went: it may have listed them before their deletion
      for (const key of this.deletedWhileFilling) index.delete(Buffer.from(key, 'base64').subarray(-32))
      this.present = index
    } finally {
      this.filling = undefined
      this.deletedWhileFilling = new Set()
      done()
    }
  }

  /** Resolves when the fill under way (filling) ends. */
  private filled?: Promise<void>

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

  /**
   * Read a block, verified. Throws CorruptBlockError (and quarantines it) on a hash mismatch.
   * `size`: the block's length, when the caller knows it (a chunk's fragment): it is then read in
   * one threadpool job (open, pread, close, and its sha256 when the addon hashes) into a buffer
   * of that size, where readFile took four
   * round trips through the event loop (open, fstat, read, close; issue 15: a cold read on six
   * hosts reads a fragment of most chunks here). Any surprise (shorter on disk, not matching)
   * reads it again the ordinary way, which reports and quarantines; a file longer than `size`
   * whose first `size` bytes match the CID holds the block's bytes (a CID names them all).
   * `into` (`size` bytes): where that one job reads it (a data fragment's place in its chunk,
   * ChunkService.fetchChunk); the block is `into` itself only when that read was whole and
   * matched, else its bytes are elsewhere and `into` may hold anything.
   */
  async get (cid: CID, opts: { size?: number, into?: Uint8Array } = {}): Promise<Uint8Array> {
    const { file } = this.file(cid)
    await this.written(cid)
    if (opts.size !== undefined && opts.size > 0 && readSliceNative !== undefined && cid.multihash.code === SHA2_256 && !this.corrupted.has(cid.toString())) {
      // a Buffer, as readFile gives (or the caller's place); every byte is read into it (whole) before it is used
      const into = opts.into?.byteLength === opts.size ? opts.into : Buffer.allocUnsafeSlow(opts.size)
      if (readBlockNative !== undefined) {
        // read and hashed in one threadpool job (a read job, then a hash job, took two trips);
        // ignored: any failure here (absent, unreadable) is met again, and reported, by the
        // ordinary read below
        const { whole, digest } = await readBlockNative(file, into).catch(() => ({ whole: false, digest: undefined }))
        if (whole) this.readBytes += opts.size
        if (whole && digest !== undefined && Buffer.compare(digest, cid.multihash.digest) === 0) return into
      } else {
        // ignored: any failure here (absent, unreadable) is met again, and reported, by the
        // ordinary read below
        const whole = await readSliceNative(file, 0, into).catch(() => false)
        if (whole) this.readBytes += opts.size
        if (whole && await matchesOffThread(cid, into)) return into
      }
    }
    let bytes: Uint8Array
    try {
      bytes = await readFile(file)
    } catch (err: any) {
      if (err.code === 'ENOENT') {
        // quarantined by an earlier read (a prefetch, say): still the corruption, not an absence
        if (this.corrupted.has(cid.toString())) throw new CorruptBlockError(cid.toString(), `on disk in ${this.dir} (quarantined)`)
        await this.lost(cid, file)
        throw new FsError('ENOENT', 'get', cid.toString(), 'block not stored here')
      }
      throw err
    }
    this.readBytes += bytes.byteLength
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
    if (this.busy.size > 0) await this.written(cid)
    if (this.absent(cid)) return undefined
    // counted when asked (an absent or short block reads less)
    this.readBytes += length
    const key = sliceKey(cid)
    const out = new Uint8Array(length)
    // a kept file (open, not dropped) whose slice's pages are cached: read now, on this thread,
    // with no path made and no promise waited on (a holder's part of every peer's 4 KiB read:
    // the block's path, base32 of its multihash joined to the store's dir, and the wait on the
    // open's promise were 2-4 µs of its ~10, measured alone)
    const kept = this.sliceFiles.get(key)
    let tried = false
    if (readSliceNowNative !== undefined && kept?.fd !== undefined && !kept.dropped) {
      this.sliceFiles.delete(key)
      this.sliceFiles.set(key, kept)
      if (readSliceNowNative(kept.fd, offset, out)) { this.sliceCounters.now++; return out }
      tried = true
    }
    const { file } = this.file(cid)
    // a file not kept yet, or kept: opened through node:fs and kept from now on (a descriptor
    // the addon's job opened and handed over was Node's to close but not its own: every close of
    // one warned "closed but not opened in unmanaged mode" in a worker thread, where a host
    // runs); its slice read now when its pages are cached, else by a pread of the kept
    // descriptor on the threadpool (not an open, pread and close of its path: issue 15). A file
    // whose open is in flight, or dropped, goes to the addon's job (open, pread, close in one).
    if (readSliceNative === undefined || kept === undefined || (kept.fd !== undefined && !kept.dropped)) {
      const opened = await this.openSlice(cid, key, file)
      if (opened === undefined) return undefined
      try {
        if (!tried && readSliceNowNative !== undefined && readSliceNowNative(opened.fd, offset, out)) { this.sliceCounters.now++; return out }
        this.sliceCounters.kept++
        let got = 0
        while (got < length) {
          const { bytesRead } = await readAt(opened.fd, out, got, length - got, offset + got)
          if (bytesRead === 0) return undefined
          got += bytesRead
        }
        return out
      } finally {
        this.releaseSliceFile(opened.f)
      }
    }
    this.sliceCounters.pooled++
    try {
      return await readSliceNative(file, offset, out) ? out : undefined
    } catch (err: any) {
      if (err.code === 'ENOENT') { await this.lost(cid, file); return undefined }
      throw err
    }
  }

  /**
   * The kept (or now opened) file of block `cid` at `file` for a slice read, and its descriptor:
   * releaseSliceFile(f) after the read. Undefined when the file is gone (the block noted lost).
   */
  private async openSlice (cid: CID, key: string, file: string): Promise<{ f: SliceFile, fd: number } | undefined> {
    const f = this.sliceFile(key, file)
    try {
      return { f, fd: await f.opening }
    } catch (err: any) {
      this.releaseSliceFile(f)
      if (err.code === 'ENOENT') { await this.lost(cid, file); return undefined }
      throw err
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
    // not held from now on, moved aside or not: a corrupt block is no fragment (a put of it
    // again writes it over, with no stat: the index does not hold it)
    this.noteGone(cid)
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
    await this.serial(cid, async () => { await this.deleteNow(cid) })
  }

  /**
   * Delete a block only if `claim` still claims it when its turn comes, after the changes of it
   * under way (claimed(): a write given up deletes what it stored new). A put of the same block
   * that came first (another write here storing the same bytes) dropped the claim, and keeps it:
   * a claimed() check before delete() let that put pass in between, and the block went from
   * under the version that named it (place34). Whether it was deleted.
   */
  async deleteClaimed (cid: CID, claim: object): Promise<boolean> {
    return await this.serial(cid, async () => {
      if (this.claims.get(cid.toString()) !== claim) return false
      await this.deleteNow(cid)
      return true
    })
  }

  /** delete()'s work, in the block's turn (serial). */
  private async deleteNow (cid: CID): Promise<void> {
    const { file } = this.file(cid)
    // not held from now on (has() says "not here" while it is being deleted); onGone only once
    // the file is gone: told before, a failed unlink left the block here with its putters
    // forgotten, and a push of it landing then made its pusher the only one (review36f)
    this.noteGone(cid, false)
    try {
      // ignored: an absent block frees nothing (blockstore-fs deletes it without complaint too)
      const size = await stat(file).then(s => s.size, () => 0)
      await this.blocks.delete(cid)
      this.claims.delete(cid.toString())
      if (size > 0) this.count(-size)
      this.space?.freed()
    } catch (err) {
      // still there, maybe: the disk says
      // ignored: any failure to stat is taken as the file gone
      if (await stat(file).then(() => true, () => false)) this.noteStored(cid)
      else this.onGone?.(cid)
      throw err
    }
    this.onGone?.(cid)
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

  /**
   * Bytes and count of the block files, each block's digest added to `index` when given; with
   * `sizes` false no file is stat'ed (the figures are then 0: only the index is filled).
   */
  private async walk (index?: PresentIndex, sizes = true): Promise<{ bytesStored: number, blocks: number }> {
    let bytesStored = 0
    let blocks = 0
    const root = join(this.dir, 'blocks')
    // no block directory (removed under the store): no block
    const dirs = await readdir(root).catch((err: any) => { if (err.code === 'ENOENT') return [] as string[]; throw err })
    for (const d of dirs) {
      let names: string[]
      try { names = await readdir(join(root, d)) } catch { continue } // not a shard directory (or just removed)
      for (const n of names) {
        if (sizes) {
          try { bytesStored += (await stat(join(root, d, n))).size; blocks++ } catch { continue } // deleted since the readdir: not counted
        }
        if (index !== undefined && n.endsWith('.data')) {
          try {
            const { multihash } = this.shards.decode(n)
            if (multihash.code === SHA2_256) index.add(multihash.digest)
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

/**
 * A block's key in Store.sliceFiles: its multihash's bytes as latin1 (its file's name is the
 * multihash's, whatever the codec), made without base32 or a path.
 */
function sliceKey (cid: CID): string {
  return bytesKey(cid.multihash.bytes)
}

/** A block's key in Store.busy and deletedWhileFilling: its multihash (the store is keyed by multihash, not codec). */
function blockKey (cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64')
}

/**
 * Write a block file durably: its bytes to a temporary name in its shard directory, renamed into
 * place (a reader never sees part of a block under its name), then the file and the directory
 * synced at once, not one after the other: both must be durable before put() returns, in no order
 * between them (a small write's fsync on a host waits for a few of these in a row: each sync is a
 * disk flush). The file is synced through the handle that wrote it, and the shard directory made
 * only when the open finds it missing: blockstore-fs's put (a mkdir, a write through steno, then
 * an open of the file again to sync it) cost four more system calls a block, on every host that
 * takes a copy of it.
 */
async function writeBlock (dir: string, file: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dir, `.${basename(file)}.tmp`)
  // the same calls in one threadpool job of the addon, where it is built: eight round trips
  // through the threadpool and the event loop per block were most of the main thread's share of
  // a sequential write (issue 15). It syncs the file, then the directory (here: both at once)
  if (writeBlockNative !== undefined) { await writeBlockNative(dir, file, tmp, bytes); return }
  let fh
  try {
    fh = await open(tmp, 'w')
  } catch (err: any) {
    if (err.code !== 'ENOENT') throw err
    // the shard directory, and blocks/ over it when that is gone too (a disk emptied under the
    // store), never the store's own dir: one removed (a host's data dir removed as it stopped)
    // fails here rather than being made again (erasure.c mkdir_shard)
    await mkdirShard(dir)
    fh = await open(tmp, 'w')
  }
  let renamed = false
  try {
    await fh.writeFile(bytes)
    await rename(tmp, file)
    renamed = true
    await Promise.all([fh.sync(), fsyncPath(dir)])
  } finally {
    await fh.close()
    // ignored: a temporary file that cannot be removed is overwritten by the next put of the block
    if (!renamed) await unlink(tmp).catch(() => {})
  }
}

/** Blocks written in one group commit at most (one threadpool job). */
export const GROUP_COMMIT_MAX_BLOCKS = 64
/**
 * Group commits under way at once per store: as many as the threadpool has threads (libuv's
 * default 4; it is shared with hashing and reads). 2, with every file's writeback started
 * before the first fsync (sync_file_range), measured slower than no grouping on the six-host
 * write (3 pairs of 3); 4 without it faster (issue 15, session 20).
 */
export const GROUP_COMMITS_IN_FLIGHT = 4

/**
 * Group commit of block files (issue 15: a write through six hosts stores one 256 KiB file per
 * fragment, each through its own threadpool job and its own file and directory syncs). The blocks
 * put in one turn of the event loop (a chunk's fragments, putMany) go out together, and so do
 * those put while GROUP_COMMITS_IN_FLIGHT commits are under way: one job writes and renames
 * them all, syncs each file, then each directory once (erasure.c writeBlocks). A put resolves
 * once its own file and directory are synced, exactly as alone; one whose calls or syncs fail
 * rejects with its own error, the others of its group unaffected. A block alone goes out at the
 * next microtask: no put waits for others to come.
 */
class GroupCommit {
  private readonly queue: Array<{ dir: string, file: string, tmp: string, bytes: Uint8Array, resolve: () => void, reject: (err: Error) => void }> = []
  private inFlight = 0
  private scheduled = false
  /** Jobs run, and the blocks they wrote (Store.groupCommits). */
  jobs = 0
  blocks = 0
  private readonly writeMany: NonNullable<typeof writeBlocksNative>

  constructor (writeMany: NonNullable<typeof writeBlocksNative>) { this.writeMany = writeMany }

  async write (dir: string, file: string, bytes: Uint8Array): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ dir, file, tmp: join(dir, `.${basename(file)}.tmp`), bytes, resolve, reject })
      if (this.scheduled) return
      this.scheduled = true
      queueMicrotask(() => { this.scheduled = false; this.flush() })
    })
  }

  private flush (): void {
    while (this.inFlight < GROUP_COMMITS_IN_FLIGHT && this.queue.length > 0) {
      const batch = this.queue.splice(0, GROUP_COMMIT_MAX_BLOCKS)
      this.inFlight++
      this.jobs++
      this.blocks += batch.length
      this.writeMany(batch).then(outcomes => {
        batch.forEach((b, i) => {
          const err = outcomes[i]
          if (err === null) b.resolve()
          else b.reject(err ?? new Error(`writeBlocks gave no outcome for ${b.file}`))
        })
      }, (err: Error) => {
        // the job could not run at all (its argument checks): no block of it was written
        for (const b of batch) b.reject(err)
      }).finally(() => {
        this.inFlight--
        this.flush()
      })
    }
  }
}

async function mkdirShard (dir: string): Promise<void> {
  const made = async (path: string): Promise<boolean> => await mkdir(path).then(() => true, (e: any) => { if (e.code === 'EEXIST') return true; if (e.code === 'ENOENT') return false; throw e })
  if (await made(dir)) return
  if (!await made(dirname(dir)) || !await made(dir)) throw Object.assign(new Error(`ENOENT: no such file or directory, mkdir '${dir}'`), { code: 'ENOENT', syscall: 'mkdir', path: dir })
}

async function fsyncPath (path: string): Promise<void> {
  const fh = await open(path, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

/**
 * A block file kept open for slice reads: `users`, reads using it now; `dropped`, no longer kept
 * (closed when unused); `fd`, its descriptor once open (never read once dropped: it may be
 * closed, and its number reused).
 */
interface SliceFile { opening: Promise<number>, users: number, dropped: boolean, fd?: number }
