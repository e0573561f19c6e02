// The daemon's release from its first put on (review37b). The daemon starts the swarm and custody
// before it can make its release (which needs the volume, custody and pins): a put, a promise or a
// removal told meanwhile went nowhere, and the records the last clean stop kept
// (release-records.ts), restored afterwards over those blocks, named only the putters before the
// stop (W pushed X before the stop; B, during the start, was promised X and pushed it; once B's
// promise ended, W's release deleted B's block). Now the daemon takes the records before its swarm
// starts (a crash after that re-reads a file no put came after), keeps here, in order, what it is
// told until the release is made, and open() restores the records into the release and then tells
// it those calls, as if it had been there from the start.
import { performance } from 'node:perf_hooks'
import type { CID } from 'multiformats/cid'
import { takeReleaseRecords } from './release-records.ts'
import type { KeptPutRecord } from './release-records.ts'
import type { Release, ReleaseTeller } from './release.ts'
import { logger } from '../log.ts'

const log = logger('keeper:release')

/**
 * Calls told while the daemon starts (puts, promises, removals; see ReleaseOpening) kept at most:
 * a push through the sink is four (its landing's begin and end, arriving, arrived), so 8,192
 * pushes of 256 KiB fragments, 2 GiB landing before the release is made, ~6 MiB here.
 * Past it every one is dropped and no record restored (every block held is nobody's, as before
 * gc37).
 */
export const OPENING_CALLS_MAX = 32_768

/** A put begun on the opening (landingOf): its block, and its landing's end on the release once begun there. */
interface OpeningPut { readonly cid: CID, end?: () => void }

/** What the daemon tells its release until it is made (see the top of this file). */
export class ReleaseOpening implements ReleaseTeller {
  private kept: KeptPutRecord[] = []
  private calls: Array<(r: Release) => void> = []
  private over = false
  /** open() is restoring: every call is kept (the bound is for the start's window, restore() is short). */
  private opening = false
  private opened?: Release
  /** Told anything (a put, a promise, a removal, a put begun) or open() begun: the records taken may be stale since (see untold). */
  private told = false
  /** The release's monotonic clock (ReleaseComponents `clock`): a put told here is stamped when told. */
  private readonly clock: () => number
  /**
   * The puts begun here and still under way (releasingSink's landingOf), not bounded by
   * OPENING_CALLS_MAX (there are as many as puts in flight). Each put's landing on the release
   * begins and ends in order with the calls replayed at open() (mend37g3, review37i: a put begun
   * and ended before open() kept no landing in the replay, so a record its calls made could be
   * forgotten for room mid-replay where, told live, the landing kept it); one still under way as
   * open() begins is handed on at once, before restore() fills the table (review37f: a record
   * forgotten for room before the put landed was rebuilt clean by arrived(), naming its pusher
   * alone, the review36c hole).
   */
  private readonly under = new Set<OpeningPut>()

  constructor (opts: { clock?: () => number } = {}) {
    this.clock = opts.clock ?? (() => performance.now())
  }

  /** Takes the records the last clean stop of host `self` kept in `dir` (before any put can land here). */
  async take (dir: string, self: string): Promise<void> {
    this.kept = await takeReleaseRecords(dir, self)
  }

  /** Who to tell now: the release once open() made it so, else this. */
  teller (): ReleaseTeller {
    return this.opened ?? this
  }

  private keep (call: (r: Release) => void): void {
    this.told = true
    if (this.over) return
    if (!this.opening && this.calls.length >= OPENING_CALLS_MAX) {
      this.over = true
      this.calls = []
      log.error('over %d puts, promises or removals while the release was made: the records the last stop kept are left out (every block held is nobody\'s)', OPENING_CALLS_MAX)
      return
    }
    this.calls.push(call)
  }

  landingOf (cid: CID): () => void {
    this.told = true
    const p: OpeningPut = { cid }
    this.under.add(p)
    // (its own landing, begun on the release in its place among the calls; at once if handed on before)
    this.keep(r => { p.end ??= r.landingOf(cid) })
    let ended = false
    return () => {
      if (ended) return
      ended = true
      this.under.delete(p)
      // once the release is told directly (or no call is replayed: past the bound), ended now;
      // else in its place among the calls (a landing handed on keeps its record meanwhile)
      if (this.opened !== undefined || this.over) p.end?.()
      else this.keep(() => { p.end?.() })
    }
  }

  /** Begins a landing on `release` for every put begun here, still under way and not handed on yet (past the bound, each counted as of a block held). */
  private handLandings (release: Release): void {
    for (const p of this.under) {
      // past the bound, a put begun here counts as of a block held before it: its store stat may
      // predate another writer's put of the same bytes, dropped here (review37f: B's put saw Y
      // not held, C's put of Y landed and was dropped, B's arrived() after open() made Y B's
      // alone, and B's release deleted the copy C needs)
      p.end ??= release.landingOf(p.cid, { held: this.over })
    }
  }

  arriving (...a: Parameters<Release['arriving']>): void {
    const [cid, from, origin, opts] = a
    // timed from now, not from open() (a pending origin's window, a push's freshness: mend37g2)
    const told = { ...opts, at: opts?.at ?? this.clock() }
    this.keep(r => { r.arriving(cid, from, origin, told) })
  }
  // (nothing was released before the release was made: nothing to drop on arrival)
  async arrived (...a: Parameters<Release['arrived']>): Promise<boolean> {
    const [cid, from, origin, opts] = a
    this.arriving(cid, from, origin, opts)
    return false
  }

  noted (cids: Iterable<CID>, peer: string): void {
    const list = [...cids]
    this.keep(r => { r.noted(list, peer) })
  }

  gone (cid: CID): void { this.keep(r => { r.gone(cid) }) }

  /**
   * Makes `release` the one told from now on: the kept records restored into it, then the calls
   * told meanwhile (in order, none past the bound). How many records were taken.
   */
  async open (release: Release): Promise<number> {
    // (calls told while restore() runs are kept too: this is still the teller)
    this.opening = true
    this.told = true
    // the puts under way keep their records from now on (restore() may fill the table)
    this.handLandings(release)
    let n = 0
    try {
      if (!this.over) n = await release.restore(this.kept)
    } finally {
      this.opening = false
    }
    const calls = this.over ? [] : this.calls
    this.kept = []
    this.calls = []
    // past the bound no call is replayed: the puts begun while restore() ran and still under way
    // are handed on here (the others begin theirs in the replay)
    if (this.over) this.handLandings(release)
    for (const call of calls) call(release)
    this.opened = release
    return n
  }

  /** Records taken from the file (before open()). */
  get taken (): number { return this.kept.length }

  /**
   * The records taken, as they were, while this was told nothing and open() never began: a start
   * failing before its release is made writes them back (review37f: they were lost, every block
   * nobody's after the next start). None once anything was told: the file would then name the
   * last stop's putters over what happened since (review37b), so they stay lost (safe: nobody's).
   */
  get untold (): readonly KeptPutRecord[] { return this.told ? [] : this.kept }
}
