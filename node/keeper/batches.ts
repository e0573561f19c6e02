// Per-peer batches: what this host has for one peer (placement notices for a chunk's keeper,
// placed.ts; custody's drops asking a keeper to keep their blocks, custody.ts) waits `lingerMs`
// for what follows it and goes in one send with it, one send per peer at a time: what comes while
// a send is under way waits for the next. A sequential write makes such items every few tens of
// ms, and every send is a stream of its own (opened, negotiated, closed) on the writer's busiest
// time.
import { logger, shortPeer } from '../log.ts'

const log = logger('keeper:batches')

export interface PeerBatchesInit<T> {
  /** Sends items to a peer. It reports its own failures: a throw is only logged. */
  send: (peer: string, items: T[]) => Promise<void>
  /** How long a batch waits for the items that follow its first. */
  lingerMs: number
  /** Most items in one send (the rest go in the next, at once). Default: all waiting. */
  max?: number
  /**
   * The linger holds no process open: for items nobody awaits (notices). Items whose sender
   * waits for them keep a plain timer (at most lingerMs past a stop).
   */
  unref?: boolean
}

export class PeerBatches<T> {
  private readonly init: PeerBatchesInit<T>
  /** Per peer: whether a send to it is under way (or lingering), and the items waiting. */
  private readonly queues = new Map<string, { busy: boolean, items: T[] }>()
  /** The lingers under way (ended at stop()). */
  private readonly lingers = new Set<() => void>()
  private stopped = false

  constructor (init: PeerBatchesInit<T>) {
    this.init = init
  }

  /** Items taken again after a stop(). */
  start (): void {
    this.stopped = false
  }

  /** The items waiting are dropped (not sent), lingers end, and add() takes nothing until start(). */
  stop (): void {
    this.stopped = true
    for (const end of this.lingers) end()
    this.queues.clear()
  }

  /** Send `item` to `peer` with the others that come within the linger. false: stopped, not taken. */
  add (peer: string, item: T): boolean {
    if (this.stopped) return false
    let q = this.queues.get(peer)
    if (q === undefined) this.queues.set(peer, q = { busy: false, items: [] })
    q.items.push(item)
    if (!q.busy) void this.flush(peer, q)
    return true
  }

  /** lingerMs, or until stop(). */
  private async linger (): Promise<void> {
    await new Promise<void>(resolve => {
      const end = (): void => { clearTimeout(timer); this.lingers.delete(end); resolve() }
      const timer = setTimeout(end, this.init.lingerMs)
      if (this.init.unref === true) timer.unref?.()
      this.lingers.add(end)
    })
  }

  /** Sends what waits in `q`, again while more waits. */
  private async flush (peer: string, q: { busy: boolean, items: T[] }): Promise<void> {
    q.busy = true
    try {
      // a stop() lets `q` go (a start() right after it opens new queues): its items are not sent
      const current = (): boolean => !this.stopped && this.queues.get(peer) === q
      // (a full batch's rest goes at once: it waited its linger already)
      let full = false
      while (q.items.length > 0 && current()) {
        if (this.init.lingerMs > 0 && !full) await this.linger()
        if (!current()) break
        const batch = q.items.splice(0, this.init.max ?? q.items.length)
        full = this.init.max !== undefined && batch.length === this.init.max
        await this.init.send(peer, batch).catch((err: unknown) => {
          log.error('a batch of %d item(s) to %s failed: %e', batch.length, shortPeer(peer), err)
        })
      }
    } finally {
      q.busy = false
      if (this.queues.get(peer) === q && q.items.length === 0) this.queues.delete(peer)
    }
  }
}
