// Provider records off the data path (DESIGN.md §3): a host announces in the DHT the blocks it
// stores, but a DHT provide is a network query plus messages to the closest peers, which costs
// more than storing a 256 KiB fragment. Announcements go through this bounded queue, deduplicated
// and a few at a time, so writes and repair never wait on them; when the queue is full the
// oldest wait for the DHT's own republishing. Reads ask connected peers first and the DHT only
// when they do not have a block, so a late record costs nothing in the common case.
//
// In a network small enough that every host keeps a connection to every other (host.ts
// FULL_MESH_PEERS), records are not made at all: a reader's have-queries to its peers already
// reach every holder, and measured on a 5-host put, the provides took about 35% of all CPU.
import type { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import { anySignal } from '../abort.ts'
import { logger } from '../log.ts'

const log = logger('net:announce')

/** Provides in flight at once. */
export const ANNOUNCE_CONCURRENCY = 2
/** Most blocks waiting to be announced; beyond it the oldest are left to republishing. */
export const MAX_ANNOUNCE_QUEUE = 65_536
/** Time for one provide before it is given up. */
export const ANNOUNCE_TIMEOUT_MS = 30_000

export interface AnnouncerStats { announced: number, failed: number, skipped: number, queued: number }

export class Announcer {
  private readonly provide: (cid: CID, opts?: AbortOptions) => Promise<void>
  private readonly queue = new Map<string, CID>()
  private readonly inFlight = new Set<string>()
  private stopped = false
  private readonly shutdown = new AbortController()
  private readonly stats_: AnnouncerStats = { announced: 0, failed: 0, skipped: 0, queued: 0 }

  /** Whether records are worth making now (the network is beyond the full mesh). */
  private readonly wanted: () => boolean

  constructor (provide: (cid: CID, opts?: AbortOptions) => Promise<void>, wanted: () => boolean = () => true) {
    this.provide = provide
    this.wanted = wanted
  }

  /** Announce cid soon (returns at once). */
  announce (cid: CID): void {
    if (this.stopped || !this.wanted()) return
    const key = cid.toString()
    if (this.queue.has(key) || this.inFlight.has(key)) return
    if (this.queue.size >= MAX_ANNOUNCE_QUEUE) {
      this.queue.delete(this.queue.keys().next().value as string)
      this.stats_.skipped++
    }
    this.queue.set(key, cid)
    this.pump()
  }

  stats (): AnnouncerStats {
    return { ...this.stats_, queued: this.queue.size }
  }

  stop (): void {
    this.stopped = true
    this.queue.clear()
    this.shutdown.abort(new Error('announcer stopped'))
  }

  private pump (): void {
    while (this.inFlight.size < ANNOUNCE_CONCURRENCY && this.queue.size > 0 && !this.stopped) {
      const [key, cid] = this.queue.entries().next().value as [string, CID]
      this.queue.delete(key)
      this.inFlight.add(key)
      const signal = anySignal([this.shutdown.signal], ANNOUNCE_TIMEOUT_MS)
      this.provide(cid, { signal })
        .then(() => { this.stats_.announced++ }, (err: Error) => {
          // counted in stats (failed); peers find the block by asking the chunk's targets meanwhile
          this.stats_.failed++
          log('announcing %s failed: %s', key, err.message)
        })
        .finally(() => { this.inFlight.delete(key); this.pump() })
    }
  }
}
