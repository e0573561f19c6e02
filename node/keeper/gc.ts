// Garbage collection (DESIGN.md §3): remove stored blocks that no retained version references
// (retained.ts: live contents, and history within the retention period). A block is removed
// only after GC has seen it unreferenced, continuously, for the retention period: blocks of a
// write not yet committed (OpenFile spills, replaceFile staging, fragments pushed before their
// op arrived) are referenced by nothing yet, and that grace keeps them. Nothing is removed in a
// round where some retained manifest cannot be read (its chunks are unknown). A block this host
// promised to keep (custody.ts: a writer's placement asked it, the write not committed yet) is
// kept too, and its unreferenced time starts again once the promise is over: bytes unreferenced
// for days and then written again were deleted under a fresh promise (review31b). A delete that
// fails is counted as such, not as removed, and the next round tries it again. Given the host's
// data dir, the unreferenced times outlive a restart (gc-since.ts: written after every round, read
// before the first; only time GC saw counts): held in memory alone, a host restarted at least
// once a retention period never removed an unreferenced block (session 37). That time is measured
// on a monotonic clock (`clock`), not the wall clock: a wall clock stepped at boot or later
// (fake-hwclock, NTP) neither adds nor takes any (review37b). A time read back is held an hour
// short of the retention (GC_LOADED_GRACE_MS): no block goes on the file's strength before the
// restarted host's tree could catch up with its peers'.
import { performance } from 'node:perf_hooks'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { retained } from './retained.ts'
import { deleteUnpromised } from './unpromised.ts'
import { loadGcSince, saveGcSince } from './gc-since.ts'
import type { DeleteUnpromised } from './unpromised.ts'
import type { Store } from '../data/index.ts'
import type { Volume } from '../index.ts'
import { logger } from '../log.ts'

const log = logger('keeper:gc')

/** Default time between GC rounds: 1 hour. */
export const DEFAULT_GC_INTERVAL_MS = 3600_000
/**
 * A time read from the data dir is held at least this much short of the retention (or the GC
 * interval, when longer; none past the retention itself): a host down a while may have missed
 * versions naming the block (or lost ops a power loss took), and its tree catches up with its
 * peers' in the minutes after it starts (sync.ts reconciles with each peer on connect); a block
 * near the retention at the stop went in the first round after the start (review37b). An hour
 * leaves that catch-up room to spare. No round removes a block on the strength of the file alone
 * earlier than that after the start: a time held at the cap reaches the retention max(grace,
 * interval) after it, which is the first timed round (one interval after the start) when the
 * interval is the longer or equal, as by default; a block held at the cap may go then
 * (mend37g2: an earlier comment said that round removed none). A retention no longer than this
 * makes every time read back 0: such a host, restarted within its retention, never collects (as
 * before gc37).
 */
export const GC_LOADED_GRACE_MS = 3600_000

export interface GcInit {
  /** Retention period of old versions and of unreferenced blocks (default retained.ts DEFAULT_RETENTION_MS). */
  retentionMs: number
  /** Time between rounds (default DEFAULT_GC_INTERVAL_MS; 0 = none in the background). */
  intervalMs?: number
  /** The host's data dir: the unreferenced times are kept there across restarts (gc-since.ts). Not given: memory only. */
  dir?: string
  /** The host's peer id, written in the file and checked when it is read (default '-'). */
  self?: string
}

export interface GcComponents {
  volume: Pick<Volume, 'tree' | 'chunks'>
  /** isClaimed: a block a write on this host is storing or placing now is never deleted (the store's claim). */
  store: Pick<Store, 'cids' | 'delete' | 'has'> & Partial<Pick<Store, 'isClaimed'>>
  /** The wall clock (ms): the retention of old versions (retained.ts). */
  now?: () => number
  /**
   * A monotonic clock (ms) the unreferenced time is measured on. Not given: `now` when given (a
   * test's clock, moving both), else performance.now().
   */
  clock?: () => number
  /**
   * This host's promises (custody.ts): a promised block is not deleted, and a delete excludes a
   * promise given meanwhile (deleteUnpromised, with no peer excepted). Not given: none.
   */
  custody?: {
    promised: (cid: CID) => boolean
    deleteUnpromised: DeleteUnpromised
  }
}

/** `removed`: the blocks deleted; `failed`: deletes that threw (logged; tried again next round). */
export interface GcReport { referenced: number, unreferenced: number, removed: string[], failed: number, skipped: boolean }

export class Collector {
  private readonly c: GcComponents
  private readonly retentionMs: number
  private readonly intervalMs: number
  private readonly clock: () => number
  /** Block multihash -> when GC first saw it unreferenced, on `clock` (the oldest first; its age kept in `dir` across restarts). */
  private since = new Map<string, number>()
  private readonly dir?: string
  private readonly self: string
  /** The kept times read (once, before the first round). */
  private loaded?: Promise<void>
  /** The last save asked for (they take turns: save()). */
  private saving: Promise<void> = Promise.resolve()
  private timer?: ReturnType<typeof setTimeout>
  private running?: Promise<GcReport>
  private started = false

  constructor (components: GcComponents, init: GcInit) {
    this.c = components
    this.retentionMs = init.retentionMs
    this.intervalMs = init.intervalMs ?? DEFAULT_GC_INTERVAL_MS
    this.dir = init.dir
    this.self = init.self ?? '-'
    this.clock = components.clock ?? components.now ?? (() => performance.now())
    if (!(this.retentionMs >= 0)) throw new RangeError(`retention must be >= 0 ms, got ${this.retentionMs}`)
  }

  start (): void {
    if (this.started) return
    this.started = true
    void this.load()
    this.arm()
  }

  async stop (): Promise<void> {
    this.started = false
    clearTimeout(this.timer)
    // ignored: a round's failure goes to collect()'s own caller (logged for the timed rounds)
    await this.running?.catch(() => {})
    // the ages as of now (a round wrote them; the time since that round counts as seen)
    // (after the read: a stop before it ends must not write an empty file over the kept times)
    if (this.loaded !== undefined) { await this.loaded; await this.save() }
  }

  /** Reads the kept times (once): the first round waits for them. */
  private load (): Promise<void> {
    const dir = this.dir
    if (this.loaded !== undefined || dir === undefined) return this.loaded ?? Promise.resolve()
    // (the ages are as of the start: the read's time counts as seen)
    const at = this.clock()
    // (held short of the retention: the tree catches up first, GC_LOADED_GRACE_MS)
    const most = Math.max(0, this.retentionMs - Math.max(GC_LOADED_GRACE_MS, this.intervalMs))
    this.loaded = loadGcSince(dir, this.self).then(ages => {
      if (ages.size > 0) log('%d unreferenced block time(s) read from the last run', ages.size)
      const since = new Map<string, number>()
      for (const [k, age] of ages) since.set(k, at - Math.min(age, most))
      // (a time set before the read, none today, is the newer)
      for (const [k, ms] of this.since) since.set(k, ms)
      this.since = since
    })
    return this.loaded
  }

  /**
   * Writes the times to `dir` (a failure is logged: the next round writes them again), one save
   * at a time: a round asked for (`gc`) while stop() saved wrote the same temporary file at once,
   * and left a file failing its sum (review37b).
   */
  private async save (): Promise<void> {
    const dir = this.dir
    if (dir === undefined) return
    const turn = this.saving.then(async () => {
      try {
        await saveGcSince(dir, this.since, this.clock(), this.self)
      } catch (err) {
        log.error('unreferenced times not written (a restart now starts them afresh): %s', (err as Error).message)
      }
    })
    this.saving = turn
    await turn
  }

  private arm (): void {
    if (!this.started || this.intervalMs <= 0) return
    this.timer = setTimeout(() => {
      this.collect().then(r => {
        if (r.skipped) log('round skipped: some retained manifest cannot be read')
        else if (r.removed.length > 0 || r.failed > 0) log('removed %d unreferenced block(s), %d delete(s) failed (%d referenced)', r.removed.length, r.failed, r.referenced)
      }, (err: Error) => { log.error('round failed: %s', err.message) }).finally(() => { this.arm() })
    }, this.intervalMs)
    this.timer.unref?.()
  }

  /** One round: mark what is unreferenced now, remove what has been so for the retention period. */
  async collect (opts: AbortOptions = {}): Promise<GcReport> {
    if (this.running !== undefined) return await this.running
    this.running = this.load().then(async () => await this.run(opts)).finally(async () => { if (this.dir !== undefined) await this.save() })
    try { return await this.running } finally { this.running = undefined }
  }

  private async run (opts: AbortOptions): Promise<GcReport> {
    const now = this.c.now ?? Date.now
    const keep = await retained(this.c.volume as Volume, this.retentionMs, { ...opts, now: now() })
    const report: GcReport = { referenced: 0, unreferenced: 0, removed: [], failed: 0, skipped: keep.unreadable > 0 }
    if (report.skipped) return report
    const referenced = new Set<string>()
    for (const cid of keep.manifests.values()) referenced.add(key(cid.multihash.bytes))
    // every coding of a chunk, from every manifest that names it (review32g; keep.chunks too lists
    // one ref per coding since repair33)
    for (const refs of keep.byManifest.values()) for (const ref of refs) for (const f of ref.fragments) referenced.add(key(f.multihash.bytes))
    const seen = new Set<string>()
    for await (const cid of this.c.store.cids()) {
      opts.signal?.throwIfAborted()
      const k = key(cid.multihash.bytes)
      seen.add(k)
      if (referenced.has(k)) { report.referenced++; this.since.delete(k); continue }
      report.unreferenced++
      // promised: a write in flight placed it here; unreferenced from the promise's end on
      if (this.c.custody?.promised(cid) === true || this.c.store.isClaimed?.(cid) === true) { this.since.delete(k); continue }
      const first = this.since.get(k)
      if (first === undefined) { this.since.set(k, this.clock()); continue }
      if (this.clock() - first < this.retentionMs) continue
      let gone = false
      try {
        gone = await deleteUnpromised(cid, { store: this.c.store, deleteUnpromised: this.c.custody?.deleteUnpromised.bind(this.c.custody), may: () => this.c.store.isClaimed?.(cid) !== true })
      } catch (err) {
        // not counted removed; its unreferenced time kept (since `first`): the next round that
        // meets it tries again at once
        log.error('delete of unreferenced block %s failed: %s', cid.toString(), (err as Error).message)
        report.failed++
        continue
      }
      if (gone) {
        this.since.delete(k)
        report.removed.push(cid.toString())
      } else {
        // kept: promised or claimed meanwhile, by the pin guard, or stored again by a write between
        // the delete and the check after it (a write's new copy, not yet promised): its unreferenced
        // time starts again, so a copy a write just stored gets the whole retention (review32a)
        this.since.delete(k)
      }
    }
    for (const k of this.since.keys()) if (!seen.has(k)) this.since.delete(k)
    return report
  }
}

function key (multihash: Uint8Array): string {
  return Buffer.from(multihash).toString('base64')
}
