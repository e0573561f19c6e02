// The blocks of the versions this host committed lately (ChunkWrite.committed(); and every block
// stored without a ChunkWrite's claim, ChunkService.storeChunk/storeManifest: an open file's
// chunks and manifests, patches, spills, folds, whose ops commit them by other paths), so a write
// given up here (ChunkWrite.abandon(), release()) leaves them out of its release without walking
// the whole tree (review32b: keeper/release.ts referenced() read every live file's and old
// version's manifest, 0.7-1.2 s at 5,000 files, per given-up write and per chunk rewritten in an
// open file, before the writer's next chunk). The race it guards is a recent one: another write
// of the same bytes here committed a moment ago, and the peers that have not seen that op yet
// would delete its fragments (review31g). An older commit is in every peer's tree, which their
// own release checks; and here only blocks the given-up write stored new are deleted.
// Bounded: entries older than `ageMs` leave, and past `max` the oldest leave first; while an
// entry left that was younger than `ageMs` could still matter, overflowed() says so and the
// caller falls back to the walk.
import type { CID } from 'multiformats/cid'

/**
 * How long a committed version's blocks are remembered (ChunkServiceInit.recentCommitMs): the
 * race is a peer releasing before the commit's op reached it, and ops reach the peers in seconds
 * (gossip; a peer cut off meanwhile syncs on reconnect, and its release request from here is
 * lost with it too). Two minutes is many times that, and keeps the set small enough (review32f:
 * at the custody promise time, 10 min, a few GiB of writes overflowed it and every give-up fell
 * back to the tree walk for as long).
 */
export const RECENT_COMMIT_MS = 2 * 60_000
/** Most block CIDs remembered (a 1 MiB chunk at k=4 m=2 is 6 fragments): ~10,900 chunks, ~10 GiB of writes at 1 MiB chunks within the age. */
export const RECENT_COMMIT_ENTRIES = 65_536

export class RecentCommits {
  readonly ageMs: number
  readonly max: number
  /** Block CID -> when a version naming it was committed here (oldest first). */
  private readonly at = new Map<string, number>()
  /** Until when an entry that left for room (younger than ageMs then) would still have been kept. */
  private overflowUntil = 0
  private readonly now: () => number

  constructor (init: { ageMs?: number, max?: number, now?: () => number } = {}) {
    this.ageMs = init.ageMs ?? RECENT_COMMIT_MS
    this.max = init.max ?? RECENT_COMMIT_ENTRIES
    if (!(this.ageMs >= 0)) throw new RangeError(`recent commit age must be a number of ms >= 0, not ${this.ageMs}`)
    if (!(this.max >= 1) || !Number.isInteger(this.max)) throw new RangeError(`recent commit entries must be a positive integer, not ${this.max}`)
    // (monotonic: a wall-clock step, NTP, neither keeps entries for ever nor drops them at once)
    this.now = init.now ?? (() => performance.now())
  }

  /** A version naming these blocks was committed here now. */
  add (cids: Iterable<CID>): void {
    const now = this.now()
    this.expire(now)
    for (const cid of cids) {
      const key = cid.toString()
      // (moved to the end: the newest)
      this.at.delete(key)
      this.at.set(key, now)
      if (this.at.size > this.max) {
        const [oldest, t] = this.at.entries().next().value!
        this.at.delete(oldest)
        this.overflowUntil = Math.max(this.overflowUntil, t + this.ageMs)
      }
    }
  }

  /** Whether an entry left for room that would still be kept now: the set cannot answer alone. */
  overflowed (): boolean {
    return this.now() < this.overflowUntil
  }

  /** Of `cids`, the ones a version committed here within ageMs names. */
  among (cids: CID[]): Set<string> {
    this.expire(this.now())
    const out = new Set<string>()
    for (const cid of cids) {
      const key = cid.toString()
      if (this.at.has(key)) out.add(key)
    }
    return out
  }

  get size (): number {
    return this.at.size
  }

  private expire (now: number): void {
    for (const [key, t] of this.at) {
      if (now - t <= this.ageMs) break
      this.at.delete(key)
    }
  }
}
