// `darkfs events [--json]`: tails GET /v1/events (api/events.ts). Human lines by default: the
// time (UTC), the type, then the fields as key=value; --json: each event as one JSON object per
// line (its `id`, `type`, `at` and fields; a `reset` says events were missed). A stream the host
// dropped because this reader fell behind (`overflow`) is resumed from the last id seen. Runs
// until Ctrl-C (the caller's signal) or until the host stops, which is an error.
import type { AbortOptions } from '@libp2p/interface'
import type { ControlClient } from './client.ts'

/** One event as a human line: `2024-05-01T12:00:00.000Z peer-gone peer=12D3...`. */
export function eventLine (e: Record<string, unknown>): string {
  const at = typeof e.at === 'number' ? new Date(e.at).toISOString() : '-'
  const fields = Object.entries(e)
    .filter(([k]) => k !== 'id' && k !== 'type' && k !== 'at')
    .map(([k, v]) => `${k}=${value(v)}`)
  return [at, String(e.type), ...fields].join(' ')
}

function value (v: unknown): string {
  if (Array.isArray(v)) return v.map(value).join(',')
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v
  if (v !== null && typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

export async function tailEvents (client: ControlClient, json: boolean, out: (line: string) => void, options: AbortOptions = {}): Promise<never> {
  let last: string | undefined
  for (;;) {
    let overflow = false
    const headers: Record<string, string> = last !== undefined ? { 'last-event-id': last } : {}
    for await (const m of client.stream('/v1/events', headers, options)) {
      if (m.id !== undefined) last = m.id
      if (m.event === 'overflow') { overflow = true; continue }
      let e: Record<string, unknown>
      try { e = JSON.parse(m.data) } catch { throw new Error(`bad event from the host: ${m.data.slice(0, 200)}`) }
      out(json ? JSON.stringify(e) : eventLine(e))
    }
    options.signal?.throwIfAborted()
    if (!overflow) throw new Error('the host closed the event stream (it stopped)')
  }
}
