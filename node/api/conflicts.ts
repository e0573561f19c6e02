// Resolving conflicts through the control API (issue 13 item 6): POST /v1/conflicts/resolve
// {path, keep: "name-holder" | "both" | {"sibling": NAME}} settles the conflict copies of the
// file at `path` (Volume.resolve: one `resolve` op in the tree, so it merges and is in history).
// `darkfs resolve` and the dashboard go through it. Errors: a malformed body or a bad path 400,
// a path or copy that does not exist 404, a path without a conflict 409; nothing is changed.
import type { AbortOptions } from '@libp2p/interface'
import { FsError, NotConflictedError, UsageError, toWire } from '../index.ts'
import type { ResolveKeep, ResolveResult } from '../index.ts'
import { readJson, sendJson, type Route } from './route.ts'
import { jsonResponse } from './openapi.ts'
import { ref } from './schemas.ts'

export interface ConflictRoutesDeps {
  volume: { resolve: (path: string, keep: ResolveKeep, options?: AbortOptions) => Promise<ResolveResult> }
}

/** Longest `path` or sibling name a request may carry (bytes of UTF-8): PATH_MAX. */
export const MAX_RESOLVE_PATH_BYTES = 4096

const errorResponse = (description: string): Record<string, unknown> => jsonResponse(description, ref('Error'))

const resolveOperation = {
  operationId: 'resolveConflict',
  summary: 'Resolve the conflict at a path',
  description: 'Settles the conflict copies of the file at `path` with one op in the replicated tree, so it merges with concurrent changes on every host and is in history. `name-holder`: the version holding the name stays, the copies go (their versions join `GET /v1/history?path=`). `both`: every copy stays as a plain file named `NAME (conflict from <author> <date>).EXT`. `{"sibling": NAME}`: that copy\'s content becomes the file at `path` (a new version), the copies go. A copy written to since it was listed stays a conflict (`left`).',
  tags: ['conflicts'],
  requestBody: {
    required: true,
    content: {
      'application/json': {
        schema: {
          type: 'object',
          required: ['path', 'keep'],
          additionalProperties: false,
          properties: {
            path: { type: 'string', description: 'absolute volume path of the file holding the name', examples: ['/docs/report.txt'] },
            keep: {
              oneOf: [
                { type: 'string', enum: ['name-holder', 'both'] },
                {
                  type: 'object',
                  required: ['sibling'],
                  additionalProperties: false,
                  properties: { sibling: { type: 'string', description: 'a conflict copy of `path`: its name in the same directory, or its path' } }
                }
              ]
            }
          }
        }
      }
    }
  },
  responses: {
    200: {
      description: 'Resolved',
      content: {
        'application/json': {
          schema: {
            type: 'object',
            required: ['path', 'removed', 'kept', 'left'],
            properties: {
              path: { type: 'string' },
              removed: { type: 'array', items: { type: 'string' }, description: 'copies removed (paths)' },
              kept: { type: 'array', items: { type: 'object', required: ['from', 'to'], properties: { from: { type: 'string' }, to: { type: 'string' } } }, description: 'copies kept as plain files' },
              left: { type: 'array', items: { type: 'string' }, description: 'copies that changed meanwhile and are still conflicts' }
            }
          }
        }
      }
    },
    400: errorResponse('Malformed request: not JSON, unknown fields, a bad `keep`, or a path that is not an absolute volume path'),
    404: errorResponse('No such file at `path`, or `sibling` is not a conflict copy of it'),
    409: errorResponse('`path` has no conflict to resolve (NotConflictedError), or a copy\'s content cannot replace what is at `path` (not a file)'),
    500: errorResponse('The host failed')
  }
}

/** The status of an error from Volume.resolve. */
export function resolveStatus (err: unknown): number {
  if (err instanceof UsageError) return 400
  if (err instanceof NotConflictedError) return 409
  if (err instanceof FsError) {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return 404
    if (err.code === 'EINVAL' || err.code === 'ENAMETOOLONG') return 400
    return err.code === 'EIO' ? 500 : 409
  }
  return 500
}

/** The request body, checked: UsageError (400) when it is not `{path, keep}` as described. */
export function parseResolve (body: unknown): { path: string, keep: ResolveKeep } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UsageError('the body must be a JSON object {path, keep}')
  const b = body as Record<string, unknown>
  for (const k of Object.keys(b)) if (k !== 'path' && k !== 'keep') throw new UsageError(`unknown field ${k}`)
  const { path, keep } = b
  if (typeof path !== 'string' || path.length === 0) throw new UsageError('path must be a non-empty string')
  if (Buffer.byteLength(path) > MAX_RESOLVE_PATH_BYTES) throw new UsageError(`path is over ${MAX_RESOLVE_PATH_BYTES} bytes`)
  if (keep === 'name-holder' || keep === 'both') return { path, keep }
  if (typeof keep === 'object' && keep !== null && !Array.isArray(keep)) {
    const k = keep as Record<string, unknown>
    if (Object.keys(k).length === 1 && typeof k.sibling === 'string' && k.sibling.length > 0 && Buffer.byteLength(k.sibling) <= MAX_RESOLVE_PATH_BYTES) return { path, keep: { sibling: k.sibling } }
  }
  throw new UsageError('keep must be "name-holder", "both" or {"sibling": NAME}')
}

export function conflictRoutes (deps: ConflictRoutesDeps): Route[] {
  return [{
    method: 'POST',
    path: '/v1/conflicts/resolve',
    operation: resolveOperation,
    handle: async (req, res, ctx) => {
      try {
        const { path, keep } = parseResolve(await readJson(req))
        sendJson(res, 200, await deps.volume.resolve(path, keep, { signal: ctx.signal }))
      } catch (err) {
        sendJson(res, resolveStatus(err), { error: toWire(err) })
      }
    }
  }]
}
