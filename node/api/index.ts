// The door of node/api/: the control API (routes, OpenAPI), metrics, events and the dashboard.
export type { Route, RouteContext, Method } from './route.ts'
export { sendJson, readJson, MAX_JSON_BODY } from './route.ts'
export { createMetrics, metricsRoutes, peerClass, FUSE_BUCKETS, MERGE_LAG_BUCKETS } from './metrics.ts'
export type { Metrics, MetricsComponents } from './metrics.ts'
