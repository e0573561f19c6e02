// The event stream (issue 13 item 3, DESIGN.md §8): what happens to this host and its network,
// kept in a bounded ring and served as server-sent events at GET /v1/events.
//
// Each event has an id `<boot>-<n>`: `boot` is drawn when the host starts, `n` counts up from 1
// in that run. A client resumes with the last id it saw (`Last-Event-ID`, or `?since=ID`) and
// gets exactly the events after it, when they are all still in the ring. Otherwise (an id of an
// earlier run of the host, one older than the ring, or none this host made: `?since=0`) it gets
// a first `event: reset` (no id; data says why) and then every event still in the ring, oldest
// first: it missed something and should read the state again (GET /v1/status, ...). Without
// an id, a client gets the events from now on.
//
// The types and their fields (every event's data also has `id`, `type` and `at`, ms since the
// epoch); feed.ts says where each comes from:
//   peer-joined, peer-gone  { peer }                      membership (failure detection)
//   chunk-degraded          { chunks, reason, sample }    a survey found chunks short
//   repair-progress         { done, total, repaired, bytes }  a pass repairing (throttled)
//   repair-done             { repaired, bytes, fetched, failed, chunks, seconds }
//   conflict-created        { path, entry, author, time } a conflict copy appeared
//   conflict-resolved       { path, entry }               it went away (resolved, removed)
//   offline, online         {}                            presence
//   disk-full               { free, reserve }             the store's disk
//   pin-complete            { path, files, chunks }       everything pinned is here
//
// A stream sends a comment (`: keep-alive`) every HEARTBEAT_MS so proxies keep it open. A client
// that stops reading is dropped once MAX_CLIENT_BUFFER_BYTES wait for it, with a last
// `event: overflow`: it resumes with its last id. At most MAX_EVENT_CLIENTS streams at once.
import { randomBytes } from 'node:crypto'
import type { Route } from './route.ts'
import { sendJson } from './route.ts'
import { logger } from '../log.ts'

const log = logger('api:events')

export const EVENT_TYPES = ['peer-joined', 'peer-gone', 'chunk-degraded', 'repair-progress', 'repair-done', 'conflict-created', 'conflict-resolved', 'offline', 'online', 'disk-full', 'pin-complete'] as const
export type EventType = typeof EVENT_TYPES[number]

/** One event: its id, type and time (ms), and the fields of its type. */
export interface HostEvent {
  id: string
  type: EventType
  at: number
  [field: string]: unknown
}

/** Events kept for clients that resume: 1,024. */
export const EVENT_RING = 1024
/** Time between two keep-alive comments on a stream: 15 s. */
export const HEARTBEAT_MS = 15_000
/** Bytes waiting for a client that does not read before it is dropped: 1 MiB. */
export const MAX_CLIENT_BUFFER_BYTES = 1 << 20
/** Streams served at once: 64. */
export const MAX_EVENT_CLIENTS = 64
/** Reconnection delay a client is told (SSE `retry:`): 2 s. */
export const RETRY_MS = 2000

export interface EventLogInit {
  /** Events kept (default EVENT_RING). */
  capacity?: number
  /** This run's id (default: drawn now). */
  boot?: string
}

/** Why a resuming client gets the whole ring after a reset. */
export type ResetReason = 'unknown-id' | 'expired'

const ID = /^([0-9a-z]+)-([1-9][0-9]{0,15})$/

export class EventLog {
  /** This run of the host: the first part of every id. */
  readonly boot: string
  private readonly capacity: number
  private next = 1
  /** The last events, oldest first, with their n. */
  private readonly ring: Array<{ n: number, event: HostEvent }> = []
  private readonly listeners = new Set<(e: HostEvent) => void>()

  constructor (init: EventLogInit = {}) {
    this.boot = init.boot ?? Date.now().toString(36) + randomBytes(3).toString('hex')
    if (!/^[0-9a-z]+$/.test(this.boot)) throw new RangeError(`an event log's boot id is lower-case letters and digits, got ${JSON.stringify(this.boot)}`)
    this.capacity = init.capacity ?? EVENT_RING
    if (!(Number.isInteger(this.capacity) && this.capacity > 0)) throw new RangeError(`an event log keeps at least 1 event, got ${this.capacity}`)
  }

  /** Record an event now and tell every subscriber (a failing one is logged, never the emitter's problem). */
  emit (type: EventType, fields: Record<string, unknown> = {}): HostEvent {
    const n = this.next++
    const head = { id: `${this.boot}-${n}`, type, at: Date.now() }
    // id, type and time first, and never overwritten by a field
    const event: HostEvent = Object.assign({}, head, fields, head)
    this.ring.push({ n, event })
    if (this.ring.length > this.capacity) this.ring.shift()
    for (const l of [...this.listeners]) {
      try { l(event) } catch (err) { log.error('an event listener failed on %s: %s', type, (err as Error).message) }
    }
    return event
  }

  /** Hear every event from now on; returns the unsubscribe. */
  subscribe (fn: (e: HostEvent) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  /** Subscribers now (the streams and the hook). */
  get subscribers (): number {
    return this.listeners.size
  }

  /** The events kept, oldest first. */
  recent (): HostEvent[] {
    return this.ring.map(r => r.event)
  }

  /**
   * What a client that saw `id` last missed: the events after it; or, when `id` is not one this
   * run made or is older than the ring, a reset and every event kept. No id: nothing (live).
   */
  after (id: string | undefined): { events: HostEvent[], reset?: ResetReason } {
    if (id === undefined) return { events: [] }
    const m = ID.exec(id)
    const n = m === null || m[1] !== this.boot ? undefined : Number(m[2])
    if (n === undefined || n >= this.next) return { events: this.recent(), reset: 'unknown-id' }
    const first = this.ring[0]?.n ?? this.next
    if (n < first - 1) return { events: this.recent(), reset: 'expired' }
    return { events: this.ring.filter(r => r.n > n).map(r => r.event) }
  }
}

/** One SSE message. */
export function sseMessage (event: string, data: unknown, id?: string): string {
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

export interface EventRoutesInit {
  heartbeatMs?: number
  maxClientBufferBytes?: number
  maxClients?: number
}

const eventSchema = {
  type: 'object',
  required: ['id', 'type', 'at'],
  properties: {
    id: { type: 'string', description: '`<boot>-<n>`: the run of the host, and the event\'s number in it' },
    type: { type: 'string', enum: [...EVENT_TYPES] },
    at: { type: 'integer', description: 'ms since the epoch' }
  },
  additionalProperties: true
}

/** GET /v1/events (node/api/route.ts). */
export function eventRoutes (events: EventLog, init: EventRoutesInit = {}): Route[] {
  const heartbeatMs = init.heartbeatMs ?? HEARTBEAT_MS
  const maxBuffer = init.maxClientBufferBytes ?? MAX_CLIENT_BUFFER_BYTES
  const maxClients = init.maxClients ?? MAX_EVENT_CLIENTS
  let clients = 0
  return [{
    method: 'GET',
    path: '/v1/events',
    operation: {
      operationId: 'events',
      summary: 'The event stream (server-sent events)',
      description: 'Each message has `id: <boot>-<n>`, `event: <type>` and `data:` one JSON object (the event: `id`, `type`, `at` and the fields of its type). `Last-Event-ID` (or `?since=`) resumes after that id; an id the host no longer has gives a first `event: reset` (no id) and every event kept. Comments (`: keep-alive`) come every 15 s. A client that does not read is dropped after a last `event: overflow`.',
      tags: ['events'],
      parameters: [
        { name: 'since', in: 'query', required: false, schema: { type: 'string' }, description: 'resume after this event id (`0`: everything kept, after a reset)' },
        { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' }, description: 'resume after this event id (wins over `since`)' }
      ],
      responses: {
        200: {
          description: 'the stream, until the client goes away',
          content: { 'text/event-stream': { schema: { type: 'string' }, 'x-event-data': eventSchema } }
        },
        503: {
          description: 'too many streams open',
          content: { 'application/json': { schema: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['name', 'message'], properties: { name: { type: 'string' }, message: { type: 'string' } } } } } } }
        }
      }
    },
    handle: async (req, res, ctx) => {
      if (clients >= maxClients) {
        sendJson(res, 503, { error: { name: 'BusyError', message: `${maxClients} event streams are open already` } })
        return
      }
      const header = req.headers['last-event-id']
      const since = (typeof header === 'string' && header !== '' ? header : undefined) ?? ctx.url.searchParams.get('since') ?? undefined
      clients++
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' })
      let open = true
      let unsubscribe = (): void => {}
      let heartbeat: ReturnType<typeof setInterval> | undefined
      const close = (): void => {
        if (!open) return
        open = false
        clients--
        unsubscribe()
        clearInterval(heartbeat)
      }
      const write = (text: string): void => {
        if (!open) return
        if (res.writableLength > maxBuffer) {
          // a client that does not read: its last word, then it goes (it resumes with its last id)
          log('dropping an event client %d bytes behind', res.writableLength)
          res.end(sseMessage('overflow', { type: 'overflow', at: Date.now(), buffered: res.writableLength }))
          close()
          return
        }
        res.write(text)
      }
      // the backlog and the subscription in one step: no event falls between them
      const { events: missed, reset } = events.after(since)
      unsubscribe = events.subscribe(e => { write(sseMessage(e.type, e, e.id)) })
      res.once('close', close)
      write(`retry: ${RETRY_MS}\n: darkfs events ${events.boot}\n\n`)
      if (reset !== undefined) write(sseMessage('reset', { type: 'reset', at: Date.now(), reason: reset, since, events: missed.length }))
      for (const e of missed) write(sseMessage(e.type, e, e.id))
      heartbeat = setInterval(() => { write(': keep-alive\n\n') }, heartbeatMs)
      heartbeat.unref?.()
      if (!open) return
      await new Promise<void>(resolve => {
        if (ctx.signal.aborted) resolve()
        ctx.signal.addEventListener('abort', () => { resolve() }, { once: true })
        res.once('close', () => { resolve() })
      })
      close()
    }
  }]
}
