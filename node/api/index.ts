// The door of node/api/: the control API (routes, OpenAPI), metrics, events and the dashboard.
export type { Route, RouteContext, Method } from './route.ts'
export { sendJson, readJson, MAX_JSON_BODY } from './route.ts'
export { inviteRoutes } from './invites.ts'
export type { InviteDeps } from './invites.ts'
