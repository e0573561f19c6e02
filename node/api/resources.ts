// The host's resources (DESIGN.md §8): status, peers, conflicts, pins, the keeper's commands
// (heal, leave, scrub), traffic, config and the tree's digest, plus the files (files.ts). Each
// is a Route with its OpenAPI operation; the daemon hands in the parts they read.
import type { AbortOptions } from '@libp2p/interface'
import { UsageError } from '../errors.ts'
import type { Volume } from '../index.ts'
import { queryPath, readObject, needString, sendJson } from './route.ts'
import type { Route } from './route.ts'
import { errorResponses, jsonBody, jsonResponse, queryParam } from './openapi.ts'
import { ref } from './schemas.ts'
import { fileRoutes } from './files.ts'
import type { FilesVolume } from './files.ts'

export interface ResourceDeps {
  volume: FilesVolume & Pick<Volume, 'conflicts'>
  /** The Status (schemas.ts): `chunks` false leaves out the chunk figures, `survey` asks every holder first. */
  status: (opts: { chunks: boolean, survey: boolean } & AbortOptions) => Promise<unknown>
  peers: () => Promise<unknown[]>
  pins?: {
    pin: (path: string, opts?: AbortOptions) => Promise<unknown>
    unpin: (path: string) => Promise<void>
    list: () => unknown[]
  }
  heal?: (opts?: AbortOptions) => Promise<unknown>
  leave?: (opts?: AbortOptions) => Promise<unknown>
  scrub?: (opts?: AbortOptions) => Promise<unknown>
  traffic?: () => Promise<unknown>
  config?: () => Promise<unknown>
  tree?: () => Promise<unknown>
}

/** One query flag: '1' true, '0' false, absent: the default; anything else 400. */
function flag (url: URL, name: string, dflt: boolean): boolean {
  const v = url.searchParams.get(name)
  if (v === null) return dflt
  if (v === '1') return true
  if (v === '0') return false
  throw new UsageError(`query parameter '${name}' takes 0 or 1, not ${JSON.stringify(v)}`)
}

function getter (path: string, operationId: string, summary: string, schemaName: string, fn: () => Promise<unknown>): Route {
  return {
    method: 'GET',
    path,
    operation: { operationId, summary, tags: ['host'], responses: { 200: jsonResponse(summary, ref(schemaName)), ...errorResponses() } },
    handle: async (_req, res) => { sendJson(res, 200, await fn()) }
  }
}

function command (path: string, operationId: string, summary: string, schemaName: string, fn: (opts: AbortOptions) => Promise<unknown>): Route {
  return {
    method: 'POST',
    path,
    operation: { operationId, summary, tags: ['keeper'], responses: { 200: jsonResponse('done', ref(schemaName)), ...errorResponses(400, 409) } },
    handle: async (_req, res, { signal }) => { sendJson(res, 200, await fn({ signal }) ?? {}) }
  }
}

export function resourceRoutes (deps: ResourceDeps): Route[] {
  const routes: Route[] = [
    {
      method: 'GET',
      path: '/v1/status',
      operation: {
        operationId: 'getStatus',
        summary: 'The host at a glance: peers, bytes, space, repair and chunk health (each figure with its age)',
        tags: ['host'],
        parameters: [
          queryParam('chunks', '0: without the chunk figures (cheaper)', { enum: ['0', '1'] }),
          queryParam('survey', '1: ask every holder of every chunk first (slow on many chunks)', { enum: ['0', '1'] })
        ],
        responses: { 200: jsonResponse('the status', ref('Status')), ...errorResponses(400) }
      },
      handle: async (_req, res, { url, signal }) => {
        sendJson(res, 200, await deps.status({ chunks: flag(url, 'chunks', true), survey: flag(url, 'survey', false), signal }))
      }
    },
    {
      method: 'GET',
      path: '/v1/peers',
      operation: {
        operationId: 'listPeers',
        summary: 'The peers connected now',
        tags: ['host'],
        responses: { 200: jsonResponse('the peers', { type: 'array', items: ref('Peer') }), ...errorResponses() }
      },
      handle: async (_req, res) => { sendJson(res, 200, await deps.peers()) }
    },
    {
      method: 'GET',
      path: '/v1/conflicts',
      operation: {
        operationId: 'listConflicts',
        summary: 'The conflicts (names two hosts gave to different files at once), as `darkfs conflicts --json`',
        tags: ['files'],
        responses: { 200: jsonResponse('the conflicts', { type: 'array', items: ref('Conflict') }), ...errorResponses() }
      },
      handle: async (_req, res, { signal }) => { sendJson(res, 200, deps.volume.conflicts({ signal })) }
    },
    ...fileRoutes(deps.volume)
  ]
  const pins = deps.pins
  if (pins !== undefined) {
    routes.push({
      method: 'GET',
      path: '/v1/pins',
      operation: {
        operationId: 'listPins',
        summary: 'The pinned paths and the hosts pinning each',
        tags: ['pins'],
        responses: { 200: jsonResponse('the pins', { type: 'array', items: ref('Pin') }), ...errorResponses() }
      },
      handle: async (_req, res) => { sendJson(res, 200, pins.list()) }
    }, {
      method: 'POST',
      path: '/v1/pins',
      operation: {
        operationId: 'pin',
        summary: 'Pin a path on this host and fetch everything under it not stored here yet',
        tags: ['pins'],
        requestBody: jsonBody({ type: 'object', required: ['path'], properties: { path: { type: 'string' } } }),
        responses: { 200: jsonResponse('pinned', ref('PinStats')), ...errorResponses(400, 404, 409, 413) }
      },
      handle: async (req, res, { signal }) => {
        const body = await readObject(req)
        sendJson(res, 200, await pins.pin(needString(body.path, 'path'), { signal }))
      }
    }, {
      method: 'DELETE',
      path: '/v1/pins',
      operation: {
        operationId: 'unpin',
        summary: 'Remove this host\'s pin of a path',
        tags: ['pins'],
        parameters: [queryParam('path', 'a volume path (absolute)', { type: 'string' }, true)],
        responses: { 200: jsonResponse('unpinned', ref('Ok')), ...errorResponses(400, 404) }
      },
      handle: async (_req, res, { url }) => {
        await pins.unpin(queryPath(url))
        sendJson(res, 200, { ok: true })
      }
    })
  }
  if (deps.heal !== undefined) routes.push(command('/v1/heal', 'heal', 'Repair until every chunk is fully redundant again (or nothing more can be done now); progress is in GET /v1/status repair', 'HealResult', deps.heal))
  if (deps.leave !== undefined) routes.push(command('/v1/leave', 'leave', 'Hand every chunk this host holds to others, then stop the host', 'LeaveResult', deps.leave))
  if (deps.scrub !== undefined) routes.push(command('/v1/scrub', 'scrub', 'Check every block stored here against its hash now', 'ScrubResult', deps.scrub))
  if (deps.traffic !== undefined) routes.push(getter('/v1/traffic', 'getTraffic', 'Bytes moved, by part, peer and protocol', 'Traffic', deps.traffic))
  if (deps.config !== undefined) routes.push(getter('/v1/config', 'getConfig', 'The settings this host runs with', 'Config', deps.config))
  if (deps.tree !== undefined) routes.push(getter('/v1/tree', 'getTree', 'The op log\'s heads and size and the tree\'s digest (equal on converged hosts)', 'Tree', deps.tree))
  return routes
}
