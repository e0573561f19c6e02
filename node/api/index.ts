// The door of node/api/: the control API (routes, OpenAPI), metrics, events and the dashboard.
export type { Route, RouteContext, Method } from './route.ts'
export { sendJson, readJson, MAX_JSON_BODY } from './route.ts'
export { EventLog, eventRoutes, sseMessage, EVENT_TYPES, EVENT_RING, HEARTBEAT_MS, MAX_CLIENT_BUFFER_BYTES, MAX_EVENT_CLIENTS } from './events.ts'
export type { HostEvent, EventType, EventLogInit, EventRoutesInit, ResetReason } from './events.ts'
export { feedEvents, REPAIR_PROGRESS_EVERY_MS } from './feed.ts'
export type { EventSources } from './feed.ts'
export { EventHook, HOOK_CONCURRENCY, HOOK_QUEUE, HOOK_TIMEOUT_MS } from './hook.ts'
export type { EventHookInit } from './hook.ts'
