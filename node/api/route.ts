// One route of the control API (DESIGN.md §8): its method and path, its OpenAPI 3.1 operation
// (the document served at /v1/openapi.json is built from the routes, so a route and its
// description cannot drift apart) and its handler. Each part of node/api/ (resources, metrics,
// events, the dashboard) exports its routes as a list of these; the server serves the union, on
// the unix control socket and on `--api` TCP (bearer token first).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { FsError, UsageError, toWire } from '../errors.ts'

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'

export interface RouteContext {
  /** The request's URL (query parameters included). */
  url: URL
  /** Values of the path's `{name}` segments. */
  params: Record<string, string>
  /** Aborts when the client goes away before the response is complete, or the server stops. */
  signal: AbortSignal
}

export interface Route {
  method: Method
  /** `/v1/...`, exact or with `{name}` segments (OpenAPI's path template syntax). */
  path: string
  /** The OpenAPI 3.1 Operation Object (summary, operationId, parameters, requestBody, responses). */
  operation: Record<string, unknown>
  /**
   * Schemas the operation refers to as `#/components/schemas/NAME` beyond the shared ones of
   * node/api/schemas.ts (optional; the document builder merges them, a clash is an error).
   */
  schemas?: Record<string, unknown>
  /**
   * Served over `--api` TCP without the bearer token (the rate limit still applies): only for
   * what carries nothing of the volume or the host, the dashboard's static files, which a
   * browser must load before the page can send the token (its operation says `security: []`).
   */
  public?: boolean
  handle: (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => Promise<void>
}

/** Largest JSON request body: 1 MiB. */
export const MAX_JSON_BODY = 1 << 20

/**
 * An error with its HTTP status, for the refusals that are about the request itself (too big,
 * too many, no token): `name` is stable, as every error of darkfs.
 */
export class HttpError extends Error {
  readonly status: number
  readonly headers: Record<string, string>
  constructor (status: number, name: string, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = name
    this.status = status
    this.headers = headers
  }
}

/** A JSON reply (bigints as strings). A reply after headers went out closes the connection. */
export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) { res.destroy(); return }
  const text = JSON.stringify(body, (_k, v) => typeof v === 'bigint' ? v.toString() : v)
  res.writeHead(status, { ...headers, 'content-type': 'application/json' })
  res.end(text)
}

/**
 * The status of an error reply: 400 for a bad request (UsageError, a bad path), 404 for a
 * missing file, 409 for a filesystem refusal (EEXIST, ENOTEMPTY, EISDIR, ...), 500 otherwise.
 */
export function errorStatus (err: any): number {
  if (err instanceof HttpError) return err.status
  if (err instanceof UsageError || err?.name === 'ManifestError') return 400
  // the host cannot leave now (too few hosts): a refusal of the request in this state
  if (err?.name === 'LeaveError') return 409
  if (err instanceof FsError) {
    if (err.code === 'ENOENT') return 404
    if (err.code === 'EINVAL' || err.code === 'ENAMETOOLONG') return 400
    return err.code === 'EIO' ? 500 : 409
  }
  return 500
}

/** The error reply: `{ error: { name, message, code?, path?, syscall? } }` with its status. */
export function sendError (res: ServerResponse, err: unknown): void {
  sendJson(res, errorStatus(err), { error: toWire(err) }, err instanceof HttpError ? err.headers : {})
}

/** A JSON request body, at most `max` bytes: too big 413, malformed 400 (nothing is done). */
export async function readJson (req: IncomingMessage, max = MAX_JSON_BODY): Promise<any> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > max) throw new HttpError(413, 'BodyTooLargeError', `request body of ${declared} bytes is over the limit of ${max} bytes`)
  let size = 0
  const parts: Buffer[] = []
  for await (const p of req) {
    size += (p as Buffer).byteLength
    if (size > max) throw new HttpError(413, 'BodyTooLargeError', `request body over the limit of ${max} bytes`)
    parts.push(p as Buffer)
  }
  const text = Buffer.concat(parts).toString('utf8')
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new UsageError(`malformed JSON request body: ${(err as Error).message}`)
  }
}

/** A JSON object body (400 for anything else). */
export async function readObject (req: IncomingMessage, max = MAX_JSON_BODY): Promise<Record<string, unknown>> {
  const body = await readJson(req, max)
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new UsageError('the request body must be a JSON object')
  return body
}

/** A string field of a body or a query parameter that must be there (400 otherwise; an empty path is the Volume's to refuse). */
export function needString (v: unknown, what: string): string {
  if (typeof v !== 'string') throw new UsageError(`${what} is required (a string)`)
  return v
}

/** The `path` query parameter: required, an absolute volume path. */
export function queryPath (url: URL, name = 'path'): string {
  return needString(url.searchParams.get(name) ?? undefined, `query parameter '${name}'`)
}
