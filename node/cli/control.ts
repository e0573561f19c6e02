// The control API: HTTP+JSON on a unix socket in the data dir (DESIGN.md §8). The CLI and any
// script drive a running host through it. Routes (all under /v1):
//   GET  /status               -> Status JSON, from what the host keeps: no message to any peer
//                                 (chunk health with the age of each figure: keeper/status.ts)
//        /status?survey=1      asks every holder of every chunk first (slow on many chunks)
//        /status?chunks=0      without the chunk figures
//   GET  /peers                -> [{ id, addresses, ... }]
//   POST /fs  { op, args }     -> { result }   filesystem calls by name (see FS_OPS)
//   PUT  /file?path=P&mode=M   body = bytes    write a whole file (committed at the end)
//        &progress=1           -> NDJSON lines as it goes: {progress:{received,stored,placed}}...,
//                               then {result} or {error} (the status is 200 once streaming)
//   GET  /file?path=P          -> bytes         read a whole file, streamed
//   POST /call { op, args }    -> { result }   host commands (heal, pin, log, ...)
// Errors travel as { error: WireError } with a 4xx/5xx status, so the client rethrows the
// same error class the library would.
//
// Every request has a signal, handed to the Volume call or command it runs (AbortOptions as the
// last argument): it aborts when the client goes away before the response is complete (its
// connection closed: a killed CLI, a script's timeout) and when the server stops, so no work
// runs on for a caller that is gone.
import type { AbortOptions } from '@libp2p/interface'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse, Server } from 'node:http'
import { unlink } from 'node:fs/promises'
import { once } from 'node:events'
import { FsError, UsageError, toWire } from '../errors.ts'
import { decodeArg, encodeArg } from './wire.ts'
import type { Volume } from '../index.ts'
import type { Commands } from '../types.ts'
import type { Route } from '../api/index.ts'

/** Largest JSON request body: 1 MiB. */
export const MAX_JSON_BODY = 1 << 20
/** Bytes per read/write while streaming a file through the socket: 1 MiB. */
export const STREAM_PIECE = 1 << 20
/** Shortest time between two progress lines of a `put` (PUT /v1/file?progress=1). */
export const PROGRESS_EVERY_MS = 200

/** Progress of a `put`: bytes received from the client, stored here, and placed on peers. */
export interface PutProgress { received: number, stored: number, placed: number }

/**
 * The filesystem calls the socket exposes, each with the position of its options argument
 * (AbortOptions, or the options object that carries it, as in VolumeApi): a client sends at most
 * that many arguments plus the options; the server puts the request's signal there.
 */
export const FS_OPS: Readonly<Record<string, number>> = {
  log: 1,
  conflicts: 0,
  stat: 1,
  lstat: 1,
  readdir: 1,
  readdirents: 1,
  mkdir: 1,
  rmdir: 1,
  rm: 1,
  unlink: 1,
  rename: 2,
  symlink: 3,
  readlink: 1,
  link: 2,
  chmod: 2,
  chown: 3,
  utimes: 3,
  truncate: 2,
  getxattr: 2,
  setxattr: 3,
  listxattr: 1,
  removexattr: 2,
  statfs: 0,
  mknod: 4
}

export interface ControlInit {
  socket: string
  /**
   * Node's HTTP server timeouts. `requestTimeoutMs` (default 0: none): a `put` streams its body
   * for as long as it takes, and a client that goes away aborts its request instead;
   * `checkIntervalMs`: how often Node enforces it (Node's default, 30 s). Tests set both to show
   * which one a slow upload runs into.
   */
  timeouts?: { requestTimeoutMs?: number, checkIntervalMs?: number }
  volume: Volume
  status: (opts: { chunks: boolean, survey: boolean } & AbortOptions) => Promise<unknown>
  peers: () => Promise<unknown>
  commands?: Commands
  /** More routes (node/api/route.ts), matched by method and exact path before the built-in ones. */
  routes?: Route[]
  /** Told of every request answered with an error: its status and the error (metrics count them). */
  onError?: (status: number, err: unknown) => void
}

export class ControlServer {
  private server?: Server
  private readonly init: ControlInit

  constructor (init: ControlInit) {
    this.init = init
  }

  async start (): Promise<void> {
    if (this.server !== undefined) return
    await unlink(this.init.socket).catch(() => {}) // ignored: a socket left by an earlier run may not be there; listen() reports a real problem
    // no request timeout: a `put` of a large file streams its body for as long as it takes
    // (Node's default, 300 s, cut every upload longer than five minutes); a client that goes
    // away aborts its request instead (below)
    const t = this.init.timeouts ?? {}
    const server = createServer({ requestTimeout: t.requestTimeoutMs ?? 0, ...(t.checkIntervalMs !== undefined ? { connectionsCheckingInterval: t.checkIntervalMs } : {}) }, (req, res) => {
      // the client went away (or stop() closed its connection) before the response was complete
      const gone = new AbortController()
      res.once('close', () => { if (!res.writableFinished) gone.abort(new DOMException(`the control client went away during ${req.method ?? 'GET'} ${req.url ?? '/'}`, 'AbortError')) })
      this.handle(req, res, { signal: gone.signal }).catch(async err => {
        await drain(req)
        const status = errorStatus(err)
        this.init.onError?.(status, err)
        send(res, status, { error: toWire(err) })
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.init.socket, () => { server.off('error', reject); resolve() })
    })
    // no idle timeout on a connection either (Node's default is none: kept so, on purpose)
    server.timeout = 0
    this.server = server
  }

  /** Node's settings of the running server that bound a request's time (0: none). */
  limits (): { requestTimeout: number, timeout: number } | undefined {
    const s = this.server
    return s === undefined ? undefined : { requestTimeout: s.requestTimeout, timeout: s.timeout }
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    await unlink(this.init.socket).catch(() => {}) // ignored: the socket may already be gone
  }

  private async handle (req: IncomingMessage, res: ServerResponse, options: AbortOptions): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://darkfs')
    const route = `${req.method ?? 'GET'} ${url.pathname}`
    const vol = this.init.volume
    const extra = this.init.routes?.find(r => r.method === req.method && r.path === url.pathname)
    if (extra !== undefined) { await extra.handle(req, res, { url, params: {}, signal: options.signal! }); return }
    switch (route) {
      case 'GET /v1/status': send(res, 200, await this.init.status({ chunks: url.searchParams.get('chunks') !== '0', survey: url.searchParams.get('survey') === '1', ...options })); return
      case 'GET /v1/peers': send(res, 200, await this.init.peers()); return
      case 'POST /v1/fs': {
        const { op, args } = await readJson(req)
        const at = typeof op === 'string' && Object.hasOwn(FS_OPS, op) ? FS_OPS[op] : undefined
        if (at === undefined || !Array.isArray(args)) throw new UsageError(`unknown filesystem call '${String(op)}'`)
        const result = await (vol as any)[op](...withSignal(op, args.map(decodeArg), at, options))
        send(res, 200, { result: encodeResult(result) })
        return
      }
      case 'POST /v1/call': {
        const { op, args } = await readJson(req)
        const cmd = typeof op === 'string' && this.init.commands !== undefined && Object.hasOwn(this.init.commands, op) ? this.init.commands[op] : undefined
        if (cmd === undefined) throw new UsageError(`unknown command '${String(op)}'`)
        send(res, 200, { result: encodeResult(await cmd(args ?? {}, options)) })
        return
      }
      case 'PUT /v1/file': {
        const path = url.searchParams.get('path') ?? ''
        const mode = Number(url.searchParams.get('mode') ?? '420')
        if (url.searchParams.get('progress') !== '1') {
          await putFile(vol, path, Number.isInteger(mode) ? mode : 0o644, req, options)
          send(res, 200, { result: null })
          return
        }
        // progress as it goes: NDJSON lines, the outcome last
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        const line = (v: unknown): void => { res.write(JSON.stringify(v) + '\n') }
        let last = 0
        try {
          await putFile(vol, path, Number.isInteger(mode) ? mode : 0o644, req, options, p => {
            const now = Date.now()
            if (now - last < PROGRESS_EVERY_MS) return
            last = now
            line({ progress: p })
          })
          line({ result: null })
        } catch (err) {
          line({ error: toWire(err) })
          // the client stops its upload once it reads the error line, or we read the rest
          await drain(req)
        }
        res.end()
        return
      }
      case 'GET /v1/file': {
        const path = url.searchParams.get('path') ?? ''
        const version = url.searchParams.get('version')
        if (version !== null) {
          const bytes = await vol.readVersion(path, version, options)
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) })
          res.end(bytes)
          return
        }
        await getFile(vol, path, res, options)
        return
      }
      default:
        this.init.onError?.(404, undefined)
        send(res, 404, { error: { name: 'UsageError', message: `no route ${route}` } })
    }
  }
}

/**
 * The arguments of a filesystem call with the request's signal in its options argument (at
 * `at`): merged into an options object the client sent there, else put there.
 */
function withSignal (op: string, args: unknown[], at: number, options: AbortOptions): unknown[] {
  if (args.length > at + 1) throw new UsageError(`'${op}' takes at most ${at + 1} arguments, not ${args.length}`)
  const given = args[at]
  if (given !== undefined && given !== null && (typeof given !== 'object' || Array.isArray(given))) {
    throw new UsageError(`argument ${at + 1} of '${op}' must be an options object`)
  }
  const out = Array.from({ length: at + 1 }, (_, i) => args[i])
  out[at] = { ...(given ?? {}), signal: options.signal }
  return out
}

async function putFile (vol: Volume, path: string, mode: number, req: IncomingMessage, options: AbortOptions, onProgress?: (p: PutProgress) => void): Promise<void> {
  let received = 0
  async function * pieces (): AsyncGenerator<Uint8Array> {
    // a write that fails part-way must not destroy the request: its error reply goes back on it
    for await (const piece of req.iterator({ destroyOnReturn: false })) {
      received += (piece as Buffer).byteLength
      yield piece as Buffer
    }
    if (!req.complete) throw new FsError('EIO', 'put', path, 'upload interrupted')
  }
  // atomic: an interrupted upload leaves the path as it was (and what it stored is deleted)
  const report = onProgress === undefined ? undefined : (p: { stored: number, placed: number }) => { onProgress({ received, stored: p.stored, placed: p.placed }) }
  await vol.replaceFile(path, pieces(), { mode, wait: 'safe', signal: options.signal, onProgress: report })
}

async function getFile (vol: Volume, path: string, res: ServerResponse, options: AbortOptions): Promise<void> {
  // one version, pinned at the start: its size is the content-length, and a version committed
  // while the bytes stream (here or by a peer) changes none of them
  const file = await vol.reader(path, options)
  const piece = async (pos: number): Promise<Uint8Array> => await file.read(pos, Math.min(STREAM_PIECE, file.size - pos), options)
  // read the first piece before committing to a 200, so an unreadable file is an error reply
  let bytes = await piece(0)
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(file.size) })
  let pos = 0
  try {
    while (bytes.byteLength > 0) {
      // a client gone meanwhile never drains: the request's signal ends the wait
      if (!res.write(bytes)) await once(res, 'drain', { signal: options.signal })
      pos += bytes.byteLength
      bytes = await piece(pos)
    }
    // short (a file open here, cut by its writer meanwhile): an error, never fewer bytes than said
    if (pos !== file.size) throw new FsError('EIO', 'read', path, `the file ended at ${pos} of its ${file.size} bytes`)
    res.end()
  } catch (err) {
    res.destroy(err as Error)
  }
}

/**
 * Read and drop what is left of a request's body before an error reply ends: a reply ended
 * under a client still uploading closes the socket on unread bytes, and the client then sees
 * EPIPE or ECONNRESET instead of the reply (a bad `put` path failed with no message).
 */
async function drain (req: IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed) return
  req.resume()
  await new Promise<void>(resolve => { req.once('end', resolve); req.once('close', resolve) })
}

function errorStatus (err: any): number {
  if (err instanceof UsageError || err?.name === 'ManifestError') return 400
  if (err instanceof FsError) return err.code === 'EIO' ? 500 : 409
  return 500
}

function send (res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) { res.destroy(); return }
  const text = JSON.stringify(body, (_k, v) => typeof v === 'bigint' ? v.toString() : v)
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(text)
}

async function readJson (req: IncomingMessage): Promise<any> {
  let size = 0
  const parts: Buffer[] = []
  for await (const p of req) {
    size += (p as Buffer).byteLength
    if (size > MAX_JSON_BODY) throw new UsageError(`request body over ${MAX_JSON_BODY} bytes`)
    parts.push(p as Buffer)
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'))
  } catch {
    throw new UsageError('malformed JSON request')
  }
}

const encodeResult = encodeArg
