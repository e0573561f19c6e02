// The control API server (DESIGN.md §8): HTTP+JSON on the unix socket in the data dir (as the
// CLI uses it), and optionally on TCP (`darkfs up --api ADDR`), serving a list of routes
// (route.ts) and the OpenAPI document built from them (openapi.ts).
//
// On the unix socket the file's permissions are the access control. On TCP, before anything
// else: every request needs `Authorization: Bearer <token>` (the data dir's api.token; 401
// otherwise; only routes marked `public`, the dashboard's static files, are served without),
// and each client address gets a token bucket of requests (429 with Retry-After
// when it is empty). Then the route: an unknown path is 404, a known path with another method
// 405. A refused request does nothing.
//
// Every request has a signal, handed to what its handler runs (AbortOptions): it aborts when
// the client goes away before the response is complete (its connection closed: a killed CLI, a
// script's timeout) and when the server stops, so no work runs on for a caller that is gone.
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse, Server } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import { unlink } from 'node:fs/promises'
import { HttpError, sendError, errorStatus } from './route.ts'
import type { Route } from './route.ts'
import { openapiRoute } from './openapi.ts'
import { logger } from '../log.ts'

const log = logger('api:server')

/** Requests per second a TCP client may make on average (`--api-rate`). */
export const DEFAULT_REQUESTS_PER_SECOND = 100
/** Requests a TCP client may make at once before the rate applies (the bucket's size). */
export const DEFAULT_REQUEST_BURST = 200
/** Bytes of a refused request's body read and dropped so its client sees the reply; beyond, the connection closes. */
export const MAX_DRAIN_BYTES = 64 << 20
/** Client addresses whose buckets are remembered at most (the oldest is forgotten first). */
export const MAX_CLIENTS = 4096

export interface ApiTcpInit {
  host: string
  /** 0: any free port (see address()). */
  port: number
  /** The bearer token every TCP request must carry. */
  token: string
  requestsPerSecond?: number
  burst?: number
}

export interface ApiServerInit {
  /** The unix socket path. */
  socket: string
  /** What the server serves; the OpenAPI document's route is added to them. */
  routes: Route[]
  /** The document's info.version (darkfs's version). */
  version?: string
  /** Also serve on TCP (bearer token, rate limit). */
  tcp?: ApiTcpInit
  /**
   * Node's HTTP server timeouts. `requestTimeoutMs` (default 0: none): a `put` streams its body
   * for as long as it takes, and a client that goes away aborts its request instead;
   * `checkIntervalMs`: how often Node enforces it (Node's default, 30 s).
   */
  timeouts?: { requestTimeoutMs?: number, checkIntervalMs?: number }
  /** Told of every request answered with an error: its status and the error (metrics count them). */
  onError?: (status: number, err: unknown) => void
}

interface Compiled { route: Route, re: RegExp, names: string[] }

/** `/v1/ui/{file}` -> a regular expression with one group per `{name}` segment. */
export function compilePath (path: string): { re: RegExp, names: string[] } {
  const names: string[] = []
  const source = path.split('/').map(seg => {
    const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(seg)
    if (m === null) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    names.push(m[1])
    return '([^/]+)'
  }).join('/')
  return { re: new RegExp(`^${source}$`), names }
}

export class ApiServer {
  private readonly init: ApiServerInit
  private readonly compiled: Compiled[]
  private readonly all: Route[]
  private unix?: Server
  private tcp?: Server
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  private readonly token?: Buffer

  constructor (init: ApiServerInit) {
    this.init = init
    const all = [...init.routes]
    all.push(openapiRoute(() => this.all, init.version))
    const seen = new Set<string>()
    for (const r of all) {
      const key = `${r.method} ${r.path}`
      if (seen.has(key)) throw new Error(`two routes for ${key}`)
      seen.add(key)
    }
    this.all = all
    this.compiled = all.map(route => ({ route, ...compilePath(route.path) }))
    if (init.tcp !== undefined) this.token = Buffer.from(init.tcp.token)
  }

  /** Every route served, the document's own included. */
  routes (): readonly Route[] {
    return this.all
  }

  async start (): Promise<void> {
    if (this.unix !== undefined) return
    await unlink(this.init.socket).catch(() => {}) // ignored: a socket left by an earlier run may not be there; listen() reports a real problem
    const unix = this.createServer(false)
    await listen(unix, s => s.listen(this.init.socket))
    this.unix = unix
    const tcp = this.init.tcp
    if (tcp !== undefined) {
      const server = this.createServer(true)
      try {
        await listen(server, s => s.listen(tcp.port, tcp.host))
      } catch (err) {
        await this.stop()
        throw err
      }
      this.tcp = server
    }
  }

  /** The TCP address served (undefined without `tcp`). */
  address (): { host: string, port: number } | undefined {
    const a = this.tcp?.address()
    return a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : undefined
  }

  /** Node's settings of the running unix server that bound a request's time (0: none). */
  limits (): { requestTimeout: number, timeout: number } | undefined {
    const s = this.unix
    return s === undefined ? undefined : { requestTimeout: s.requestTimeout, timeout: s.timeout }
  }

  async stop (): Promise<void> {
    const servers = [this.tcp, this.unix].filter((s): s is Server => s !== undefined)
    const hadUnix = this.unix !== undefined
    this.tcp = undefined
    this.unix = undefined
    for (const server of servers) {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
    if (hadUnix) await unlink(this.init.socket).catch(() => {}) // ignored: the socket may already be gone
  }

  private createServer (overTcp: boolean): Server {
    // no request timeout: a `put` of a large file streams its body for as long as it takes
    // (Node's default, 300 s, cut every upload longer than five minutes); a client that goes
    // away aborts its request instead (below)
    const t = this.init.timeouts ?? {}
    const server = createServer({ requestTimeout: t.requestTimeoutMs ?? 0, ...(t.checkIntervalMs !== undefined ? { connectionsCheckingInterval: t.checkIntervalMs } : {}) }, (req, res) => {
      // the client went away (or stop() closed its connection) before the response was complete
      const gone = new AbortController()
      res.once('close', () => { if (!res.writableFinished) gone.abort(new DOMException(`the control client went away during ${req.method ?? 'GET'} ${req.url ?? '/'}`, 'AbortError')) })
      this.handle(req, res, overTcp, gone.signal).catch(async err => {
        if (errorStatusOf(err) >= 500) log.error('%s %s failed: %s', req.method, req.url, (err as Error)?.message)
        this.init.onError?.(errorStatus(err), err)
        await drain(req, res)
        if (res.destroyed) return
        sendError(res, err)
      })
    })
    // no idle timeout on a connection either (Node's default is none: kept so, on purpose)
    server.timeout = 0
    return server
  }

  private async handle (req: IncomingMessage, res: ServerResponse, overTcp: boolean, signal: AbortSignal): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://darkfs')
    let pathname: string | undefined
    try { pathname = decodeURI(url.pathname) } catch { pathname = undefined } // refused below, after the token
    // the route that serves the request, and the methods the path has otherwise
    let found: { c: Compiled, m: RegExpExecArray } | undefined
    const allowed = new Set<string>()
    for (const c of pathname === undefined ? [] : this.compiled) {
      const m = c.re.exec(pathname!)
      if (m === null) continue
      if (c.route.method !== req.method) { allowed.add(c.route.method); continue }
      found = { c, m }
      break
    }
    if (overTcp) {
      // the token first, unless the route is public (the dashboard's files: nothing of the volume)
      if (found?.c.route.public !== true) this.authorize(req)
      this.admit(req.socket.remoteAddress ?? '?')
    }
    if (pathname === undefined) throw new HttpError(400, 'UsageError', `malformed URL path ${url.pathname}`)
    if (found !== undefined) {
      const params: Record<string, string> = {}
      found.c.names.forEach((name, i) => { params[name] = found.m[i + 1] })
      await found.c.route.handle(req, res, { url, params, signal })
      return
    }
    if (allowed.size > 0) throw new HttpError(405, 'MethodNotAllowedError', `${req.method ?? '?'} is not allowed on ${pathname} (allowed: ${[...allowed].join(', ')})`, { allow: [...allowed].join(', ') })
    throw new HttpError(404, 'NotFoundError', `no route ${req.method ?? 'GET'} ${pathname} (the routes are in GET /v1/openapi.json)`)
  }

  /** TCP: the bearer token, compared in constant time; 401 before anything is read or done. */
  private authorize (req: IncomingMessage): void {
    const header = req.headers.authorization ?? ''
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
    const given = m === null ? undefined : Buffer.from(m[1])
    const ok = given !== undefined && this.token !== undefined && given.byteLength === this.token.byteLength && timingSafeEqual(given, this.token)
    if (!ok) throw new HttpError(401, 'UnauthorizedError', header === '' ? 'this API needs Authorization: Bearer <token> (the token is in the data dir, api.token)' : 'wrong bearer token', { 'www-authenticate': 'Bearer realm="darkfs"' })
  }

  /** TCP: one token from the client's bucket, or 429 with the seconds until the next one. */
  private admit (client: string): void {
    const rate = this.init.tcp?.requestsPerSecond ?? DEFAULT_REQUESTS_PER_SECOND
    const burst = this.init.tcp?.burst ?? DEFAULT_REQUEST_BURST
    const now = Date.now()
    let b = this.buckets.get(client)
    if (b === undefined) {
      if (this.buckets.size >= MAX_CLIENTS) this.buckets.delete(this.buckets.keys().next().value!)
      b = { tokens: burst, at: now }
    } else {
      this.buckets.delete(client) // re-inserted below: the map keeps the most recent last
    }
    b.tokens = Math.min(burst, b.tokens + (now - b.at) * rate / 1000)
    b.at = now
    this.buckets.set(client, b)
    if (b.tokens < 1) {
      const wait = Math.max(1, Math.ceil((1 - b.tokens) / rate))
      throw new HttpError(429, 'TooManyRequestsError', `over ${rate} requests per second from ${client}; retry in ${wait} s`, { 'retry-after': String(wait) })
    }
    b.tokens -= 1
  }
}

function errorStatusOf (err: any): number {
  return err instanceof HttpError ? err.status : 500
}

async function listen (server: Server, start: (s: Server) => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.once('listening', () => { server.off('error', reject); resolve() })
    start(server)
  })
}

/**
 * Read and drop what is left of a request's body before an error reply ends: a reply ended
 * under a client still uploading closes the socket on unread bytes, and the client then sees
 * EPIPE or ECONNRESET instead of the reply (a bad `put` path failed with no message). Past
 * MAX_DRAIN_BYTES the reply goes out with `connection: close` instead.
 */
async function drain (req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.complete || req.destroyed) return
  let dropped = 0
  await new Promise<void>(resolve => {
    const onData = (p: Buffer): void => {
      dropped += p.byteLength
      if (dropped <= MAX_DRAIN_BYTES) return
      req.off('data', onData)
      req.pause()
      res.shouldKeepAlive = false
      resolve()
    }
    req.on('data', onData)
    req.once('end', resolve)
    req.once('close', resolve)
    req.resume()
  })
}
