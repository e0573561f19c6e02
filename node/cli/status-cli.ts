// The chunk lines of `darkfs status` (keeper/status.ts ChunkStatus): one line per state with its
// count and the age of the figure, so a reader sees how fresh each number is.
import { bytes } from './progress.ts'

/** What each state means, in the words status prints. */
const MEANING: Record<string, string> = {
  redundant: 'redundant',
  degraded: 'degraded (fewer copies than wanted)',
  localOnly: 'local-only (only on this host)',
  placing: 'placing (this host is placing them now)',
  unreachable: 'unreachable (their holders cannot be reached now; not known lost)',
  lost: 'lost (fewer than k fragments on hosts that all answered)',
  unknown: 'unknown (not seen yet; being looked up)'
}
/** Always printed; the others only when some chunk is in them. */
const ALWAYS = new Set(['redundant', 'degraded', 'localOnly', 'lost'])

/** '12s ago', '3min ago', '2h ago'. */
export function ago (ms: number): string {
  const s = Math.round(ms / 1000)
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}min ago` : `${Math.round(s / 3600)}h ago`
}

/** The age of a figure: 'now' under a second, else 'as of 12s ago'; '' when it has none. */
export function ageText (ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return ''
  return ms < 1000 ? 'now' : `as of ${ago(ms)}`
}

export function chunkLines (c: any): string[] {
  if (c === undefined || c === null) return []
  const source = c.source === 'survey'
    ? 'every holder asked just now'
    : `as this host keeps them, ${c.surveyedAt == null ? 'no full survey yet' : `last full survey ${ago(Number(c.at) - Number(c.surveyedAt))}`} (darkfs status --survey asks every holder now)`
  const lines = [`chunks    ${c.total} total, ${source}`]
  for (const state of Object.keys(MEANING)) {
    const n = Number(c[state] ?? 0)
    if (n === 0 && !ALWAYS.has(state)) continue
    const age = n > 0 ? ageText(c.ageMs?.[state]) : ''
    lines.push(`  ${String(n).padStart(8)} ${MEANING[state]}${age !== '' ? `, ${age}` : ''}`)
  }
  return lines
}

/** What each keeper state means in the network totals (keeper/kept.ts). */
const NETWORK_MEANING: Record<string, string> = {
  redundant: 'redundant',
  degraded: 'degraded (fewer fragments than wanted, more than k)',
  atRisk: 'at risk (k fragments left: one loss from lost)',
  unreachable: 'unreachable (holders not answering their keeper; not known lost)',
  lost: 'lost (fewer than k fragments, confirmed by their keeper)'
}

/** The network lines of `darkfs status`: every chunk by health, summed over the keepers' counts. */
export function networkLines (n: any): string[] {
  if (n === undefined || n === null) return []
  const age = ageText(n.ageMs)
  const lines = [`network   ${n.chunks.total} chunks (${bytes(Number(n.bytes.total))}) kept by ${n.reporting} of ${n.members} members up, as their keepers told${age !== '' ? ` ${age === 'now' ? 'just now' : age}` : ''}`]
  for (const state of Object.keys(NETWORK_MEANING)) {
    const c = Number(n.chunks[state] ?? 0)
    if (c === 0 && state !== 'redundant' && state !== 'lost') continue
    lines.push(`  ${String(c).padStart(8)} ${NETWORK_MEANING[state]}${c > 0 && state !== 'redundant' ? `, ${bytes(Number(n.bytes[state] ?? 0))}` : ''}`)
  }
  return lines
}
