// The OpenAPI 3.1 document of the control API, built from the routes' operation objects (so a
// route and its description cannot drift apart; test/api/openapi.test.ts checks every route
// served against it and validates the replies), served at GET /v1/openapi.json.
import type { Route } from './route.ts'
import { SCHEMAS, ref } from './schemas.ts'

export const OPENAPI_PATH = '/v1/openapi.json'

/** A JSON response object with the schema given. */
export function jsonResponse (description: string, schema: unknown): Record<string, unknown> {
  return { description, content: { 'application/json': { schema } } }
}

/** The error responses of a route, by status (400, 404, 409, ...), each an Error body. */
export function errorResponses (...statuses: number[]): Record<string, unknown> {
  const text: Record<number, string> = {
    400: 'bad request (malformed JSON, a missing or invalid parameter, a path outside the tree)',
    401: 'no or wrong bearer token (TCP only)',
    404: 'no such file or route',
    405: 'the path exists with other methods',
    409: 'the filesystem refused (exists, not empty, is a directory, ...)',
    413: 'request body too large',
    416: 'range not satisfiable',
    429: 'too many requests from this client (TCP only); see Retry-After',
    500: 'the host failed'
  }
  return Object.fromEntries([...new Set([...statuses, 401, 429, 500])].sort().map(s => [String(s), jsonResponse(text[s] ?? 'error', ref('Error'))]))
}

/** A query parameter object. */
export function queryParam (name: string, description: string, schema: unknown = { type: 'string' }, required = false): Record<string, unknown> {
  return { name, in: 'query', required, description, schema }
}

/** A JSON request body object. */
export function jsonBody (schema: unknown, required = true): Record<string, unknown> {
  return { required, content: { 'application/json': { schema } } }
}

/** The document for a list of routes (the document's own route among them). */
export function buildDocument (routes: readonly Route[], info: { version?: string } = {}): Record<string, any> {
  const paths: Record<string, Record<string, unknown>> = {}
  const schemas: Record<string, unknown> = { ...SCHEMAS }
  for (const r of routes) {
    const item = paths[r.path] ?? (paths[r.path] = {})
    const method = r.method.toLowerCase()
    if (item[method] !== undefined) throw new Error(`two routes for ${r.method} ${r.path}`)
    // every request may meet the server's own refusals (TCP token and rate, a failure): each
    // operation lists them whether or not its part wrote them out
    const own = r.public === true ? [429, 500] : [401, 429, 500]
    const responses = { ...(r.operation.responses as Record<string, unknown> ?? {}) }
    for (const [status, response] of Object.entries(errorResponses(...own))) {
      if (own.includes(Number(status)) && responses[status] === undefined) responses[status] = response
    }
    item[method] = { ...r.operation, responses }
    for (const [name, schema] of Object.entries(r.schemas ?? {})) {
      if (schemas[name] !== undefined && JSON.stringify(schemas[name]) !== JSON.stringify(schema)) throw new Error(`schema ${name} of ${r.method} ${r.path} clashes with another of that name`)
      schemas[name] = schema
    }
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'darkfs control API',
      version: info.version ?? '1',
      description: 'Drive a running darkfs host. Served on the unix socket `control.sock` in the data dir (no token: the file\'s permissions are the access control) and, with `darkfs up --api ADDR`, on TCP, where every request needs `Authorization: Bearer <token>` (the data dir\'s `api.token`) and each client is held to a request rate. Errors are `{ "error": { "name", "message", "code"? } }` with a 4xx/5xx status.'
    },
    paths,
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'the data dir\'s api.token (TCP only)' } }
    },
    security: [{}, { bearer: [] }]
  }
}

/** GET /v1/openapi.json: the document of every route the server serves (asked for each time). */
export function openapiRoute (routes: () => readonly Route[], version?: string): Route {
  let cached: { text: string, of: number } | undefined
  return {
    method: 'GET',
    path: OPENAPI_PATH,
    operation: {
      operationId: 'getOpenapi',
      summary: 'This document',
      tags: ['api'],
      responses: { 200: jsonResponse('the OpenAPI 3.1 document', { type: 'object', required: ['openapi', 'paths'] }), ...errorResponses() }
    },
    handle: async (_req, res) => {
      const list = routes()
      if (cached?.of !== list.length) cached = { text: JSON.stringify(buildDocument(list, { version })), of: list.length }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(cached.text)
    }
  }
}
