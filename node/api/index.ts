// The door of node/api/: the control API (routes, OpenAPI), metrics, events and the dashboard.
export type { Route, RouteContext, Method } from './route.ts'
export { sendJson, readJson, MAX_JSON_BODY } from './route.ts'
export { conflictRoutes, parseResolve, resolveStatus, MAX_RESOLVE_PATH_BYTES } from './conflicts.ts'
export type { ConflictRoutesDeps } from './conflicts.ts'
