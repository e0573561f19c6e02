// Where the events of events.ts come from: the running host's parts, which know nothing of the
// API and only dispatch their own events (the daemon hands them to feedEvents):
//   membership  'joined' / 'gone' (net/failure.ts: the failure detector, not a connection blip)
//                -> peer-joined / peer-gone, each peer once per stay
//   host        'peer:connect' / 'peer:disconnect', read with presence's offline()
//                -> offline / online on a change (none at start: a host starts as it is)
//   book        'short' (keeper/status.ts: a survey found a chunk short where it was not)
//                -> chunk-degraded, one event per reason for what arrives together
//   repairer    'start' / 'progress' / 'pass' (keeper/repair.ts) -> repair-progress (only in a
//                pass that repaired something, at most every REPAIR_PROGRESS_EVERY_MS) and
//                repair-done (a pass that repaired something ended)
//   tree        'ops' (tree/tree.ts), read with conflicts() -> conflict-created / -resolved as
//                the conflict list changes (whoever resolved it: an op like any other)
//   space       'change' (data/space.ts) -> disk-full when the disk becomes full
//   pins        'complete' (keeper/pins.ts) -> pin-complete
import type { EventLog } from './events.ts'
import type { PinComplete, ShortChunk } from '../keeper/index.ts'
import type { Host } from '../net/index.ts'
import { logger } from '../log.ts'

const log = logger('api:feed')

/** Shortest time between two repair-progress events of one pass: 1 s. */
export const REPAIR_PROGRESS_EVERY_MS = 1000
/** Chunk ids named in one chunk-degraded event (`sample`); `chunks` counts them all. */
export const DEGRADED_SAMPLE = 16

type Target = Pick<EventTarget, 'addEventListener' | 'removeEventListener'>

interface Progress { chunks: number, checked: number, fragmentsRepaired: number, bytesPushed: number, bytesFetched: number, failed: number }

export interface EventSources {
  membership: Target & { live: () => string[] }
  host: Pick<Host, 'addEventListener' | 'removeEventListener'>
  offline: () => boolean
  book: Target
  repairer: Target
  tree: Target & { conflicts: () => Array<{ path: string, entry: string, author: string, time: bigint }> }
  space: Target & { snapshot: () => { free: number, reserve: number } }
  pins: Target
}

const REASONS: Record<ShortChunk['health'], string> = { degraded: 'degraded', localOnly: 'local-only', lost: 'lost' }

/** Feed `events` from the host's parts; returns the function that stops it. */
export function feedEvents (events: EventLog, s: EventSources): () => void {
  const offs: Array<() => void> = []
  const on = (target: Target, type: string, fn: (detail: any) => void): void => {
    const listener = (e: Event): void => {
      try { fn((e as CustomEvent).detail) } catch (err) { log.error('making the event for %s failed: %s', type, (err as Error).message) }
    }
    target.addEventListener(type, listener)
    offs.push(() => { target.removeEventListener(type, listener) })
  }
  let stopped = false
  /** After the current turn (one setImmediate: nothing to clear, stopped says not to act). */
  const later = (fn: () => void): void => {
    setImmediate(() => { if (!stopped) fn() })
  }

  // membership: each peer joins once per stay ('joined' also says a full peer has room again)
  const members = new Set(s.membership.live())
  on(s.membership, 'joined', (peer: string) => {
    if (members.has(peer)) return
    members.add(peer)
    events.emit('peer-joined', { peer })
  })
  on(s.membership, 'gone', (peer: string) => {
    members.delete(peer)
    events.emit('peer-gone', { peer })
  })

  // presence, looked at once the connection events of one turn are in
  let offline = s.offline()
  let presenceQueued = false
  const presence = (): void => {
    if (presenceQueued) return
    presenceQueued = true
    later(() => {
      presenceQueued = false
      const now = s.offline()
      if (now === offline) return
      offline = now
      events.emit(now ? 'offline' : 'online')
    })
  }
  for (const type of ['peer:connect', 'peer:disconnect'] as const) {
    s.host.addEventListener(type, presence)
    offs.push(() => { s.host.removeEventListener(type, presence) })
  }

  // chunks found short, gathered per turn (a pass observes its batch together)
  const short = new Map<string, { chunks: number, sample: string[] }>()
  let shortQueued = false
  const flushShort = (): void => {
    for (const [reason, { chunks, sample }] of short) events.emit('chunk-degraded', { chunks, reason, sample })
    short.clear()
  }
  on(s.book, 'short', (c: ShortChunk) => {
    const reason = REASONS[c.health]
    const r = short.get(reason) ?? { chunks: 0, sample: [] }
    r.chunks++
    if (r.sample.length < DEGRADED_SAMPLE) r.sample.push(c.chunk)
    short.set(reason, r)
    if (shortQueued) return
    shortQueued = true
    later(() => { shortQueued = false; flushShort() })
  })

  // repair passes that repair something
  let passStart = Date.now()
  let lastProgress = 0
  on(s.repairer, 'start', () => { passStart = Date.now(); lastProgress = 0 })
  on(s.repairer, 'progress', (p: Progress) => {
    if (p.fragmentsRepaired === 0) return
    const now = Date.now()
    if (now - lastProgress < REPAIR_PROGRESS_EVERY_MS) return
    lastProgress = now
    flushShort() // what the pass found short comes before what it repaired
    events.emit('repair-progress', { done: p.checked, total: p.chunks, repaired: p.fragmentsRepaired, bytes: p.bytesPushed })
  })
  on(s.repairer, 'pass', (p: Progress) => {
    if (p.fragmentsRepaired === 0) return
    flushShort()
    events.emit('repair-done', { repaired: p.fragmentsRepaired, bytes: p.bytesPushed, fetched: p.bytesFetched, failed: p.failed, chunks: p.chunks, seconds: (Date.now() - passStart) / 1000 })
  })

  // the conflict list, compared once the ops of one turn are applied
  let conflicts = new Map(s.tree.conflicts().map(c => [c.entry, c.path]))
  let treeQueued = false
  on(s.tree, 'ops', () => {
    if (treeQueued) return
    treeQueued = true
    later(() => {
      treeQueued = false
      const now = s.tree.conflicts()
      const next = new Map(now.map(c => [c.entry, c.path]))
      for (const c of now) {
        if (!conflicts.has(c.entry)) events.emit('conflict-created', { path: c.path, entry: c.entry, author: c.author, time: Number(c.time / 1_000_000n) })
      }
      for (const [entry, path] of conflicts) if (!next.has(entry)) events.emit('conflict-resolved', { path, entry })
      conflicts = next
    })
  })

  on(s.space, 'change', (full: boolean) => {
    if (!full) return
    const { free, reserve } = s.space.snapshot()
    events.emit('disk-full', { free, reserve })
  })

  on(s.pins, 'complete', (p: PinComplete) => { events.emit('pin-complete', { path: p.path, files: p.files, chunks: p.chunks }) })

  return () => {
    stopped = true
    for (const off of offs.splice(0)) off()
  }
}
