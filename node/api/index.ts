// The door of node/api/: the control API (routes, OpenAPI), metrics, events and the dashboard.
// node/cli builds the server in the daemon (the composition root): `new ApiServer({ socket,
// routes: [...resourceRoutes(deps), ...other parts' routes], tcp? })`; the OpenAPI document
// (GET /v1/openapi.json) is built from the routes it serves.
export type { Route, RouteContext, Method } from './route.ts'
export { sendJson, sendError, readJson, readObject, errorStatus, HttpError, MAX_JSON_BODY } from './route.ts'
export { ApiServer, DEFAULT_REQUESTS_PER_SECOND, DEFAULT_REQUEST_BURST } from './server.ts'
export type { ApiServerInit, ApiTcpInit } from './server.ts'
export { resourceRoutes } from './resources.ts'
export type { ResourceDeps } from './resources.ts'
export { STREAM_PIECE, PROGRESS_EVERY_MS } from './files.ts'
export { buildDocument, jsonResponse, errorResponses, queryParam, jsonBody, OPENAPI_PATH } from './openapi.ts'
export { SCHEMAS, ref } from './schemas.ts'
export { parseApiAddress, apiToken, API_TOKEN_FILE } from './access.ts'
export { EventLog, eventRoutes, sseMessage, EVENT_TYPES, EVENT_RING, HEARTBEAT_MS, MAX_CLIENT_BUFFER_BYTES, MAX_EVENT_CLIENTS } from './events.ts'
export type { HostEvent, EventType, EventLogInit, EventRoutesInit, ResetReason } from './events.ts'
export { feedEvents, REPAIR_PROGRESS_EVERY_MS } from './feed.ts'
export type { EventSources } from './feed.ts'
export { EventHook, HOOK_CONCURRENCY, HOOK_QUEUE, HOOK_TIMEOUT_MS } from './hook.ts'
export type { EventHookInit } from './hook.ts'
export { conflictRoutes, parseResolve, resolveStatus, MAX_RESOLVE_PATH_BYTES } from './conflicts.ts'
export type { ConflictRoutesDeps } from './conflicts.ts'
export { createMetrics, metricsRoutes, peerClass, FUSE_BUCKETS, MERGE_LAG_BUCKETS } from './metrics.ts'
export type { Metrics, MetricsComponents } from './metrics.ts'
