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
 * 16,384 pushes of 256 KiB fragments are 4 GiB landing before the release is made, ~3 MiB here.
 * Past it every one is dropped and no record restored (every block held is nobody's, as before
 * gc37).
 */
export const OPENING_CALLS_MAX = 16_384

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
  /**
   * block -> the puts of it under way that began here (releasingSink's landingOf), not bounded by
   * OPENING_CALLS_MAX (there are as many as puts in flight): open() begins one landing on the
   * release for each still under way, its record then not forgotten for room before the put's
   * arrived() (review37f: a record replayed at open() and forgotten for room before the put
   * landed was rebuilt clean by arrived(), naming its pusher alone, the review36c hole).
   * `ends`: the release's own landings, ended one by one as these puts end.
   */
  /** The release's monotonic clock (ReleaseComponents `clock`): a put told here is stamped when told. */
  private readonly clock: () => number
  private readonly landings = new Map<string, { cid: CID, n: number, ends: Array<() => void> }>()

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
    const key = cid.toString()
    let l = this.landings.get(key)
    if (l === undefined) {
      l = { cid, n: 0, ends: [] }
      this.landings.set(key, l)
    }
    const landing = l
    landing.n++
    let ended = false
    return () => {
      if (ended) return
      ended = true
      // (one of the release's landings of it, once open() began them)
      landing.ends.pop()?.()
      if (--landing.n === 0 && this.landings.get(key) === landing) this.landings.delete(key)
    }
  }

  /** Begins a landing on `release` for every put begun here and still under way (see `landings`; past the bound, each counted as of a block held). */
  private handLandings (release: Release): void {
    for (const l of this.landings.values()) {
      // past the bound, a put begun here counts as of a block held before it: its store stat may
      // predate another writer's put of the same bytes, dropped here (review37f: B's put saw Y
      // not held, C's put of Y landed and was dropped, B's arrived() after open() made Y B's
      // alone, and B's release deleted the copy C needs)
      while (l.ends.length < l.n) l.ends.push(release.landingOf(l.cid, { held: this.over }))
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
    // (and those begun while restore() ran)
    this.handLandings(release)
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
