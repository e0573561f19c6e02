// One route of the control API (DESIGN.md §8): its method and path, its OpenAPI 3.1 operation
// (the document served at /v1/openapi.json is built from the routes, so a route and its
// description cannot drift apart) and its handler. Each part of node/api/ (resources, metrics,
// events, the dashboard) exports its routes as a list of these; the server serves the union, on
// the unix control socket and on `--api` TCP (bearer token first).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { UsageError } from '../errors.ts'

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
  handle: (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => Promise<void>
}

/** Largest JSON request body: 1 MiB. */
export const MAX_JSON_BODY = 1 << 20

/** A JSON reply (bigints as strings). A reply after headers went out closes the connection. */
export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) { res.destroy(); return }
  const text = JSON.stringify(body, (_k, v) => typeof v === 'bigint' ? v.toString() : v)
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(text)
}

/** A JSON request body, at most MAX_JSON_BODY bytes; malformed or too big: UsageError (400). */
export async function readJson (req: IncomingMessage, max = MAX_JSON_BODY): Promise<any> {
  let size = 0
  const parts: Buffer[] = []
  for await (const p of req) {
    size += (p as Buffer).byteLength
    if (size > max) throw new UsageError(`request body over ${max} bytes`)
    parts.push(p as Buffer)
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'))
  } catch {
    throw new UsageError('malformed JSON request')
  }
}
