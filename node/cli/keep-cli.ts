// The CLI side of `darkfs heal` and `darkfs leave` (DESIGN.md §8): call the host, draw repair
// progress on stderr while it works. The logic lives in the host (node/redundancy.ts).
import type { ControlClient } from './client.ts'
import { UsageError } from '../errors.ts'
import type { RepairProgress } from '../keeper/index.ts'

/** How often the progress line is redrawn. */
export const PROGRESS_POLL_MS = 250
/** Width of the progress bar in characters. */
export const PROGRESS_BAR_WIDTH = 30

/** `--failure-timeout SECONDS` (or another option's, `flag`) -> ms. */
export function parseFailureTimeout (v: string | undefined, flag = 'failure-timeout'): number | undefined {
  if (v === undefined) return undefined
  const s = Number(v)
  if (!Number.isFinite(s) || s < 0) throw new UsageError(`--${flag} takes a number of seconds >= 0, got ${JSON.stringify(v)}`)
  return Math.round(s * 1000)
}

export function progressLine (p: RepairProgress): string {
  const frac = p.chunks === 0 ? 1 : Math.min(1, p.checked / p.chunks)
  const filled = Math.round(frac * PROGRESS_BAR_WIDTH)
  return `[${'#'.repeat(filled)}${'.'.repeat(PROGRESS_BAR_WIDTH - filled)}] ${p.checked}/${p.chunks} chunks, ${p.fragmentsRepaired} fragments repaired (${p.bytesPushed} bytes)`
}

/** Run a long host command (`heal`, `leave`) while drawing repair progress on stderr. */
export async function withProgress<T> (client: ControlClient, op: 'heal' | 'leave', tty: boolean, write: (s: string) => void): Promise<T> {
  let done = false
  const draw = async (): Promise<void> => {
    while (!done) {
      await new Promise(resolve => setTimeout(resolve, PROGRESS_POLL_MS))
      if (done) return
      const p = await repairProgress(client)
      if (p !== undefined && !done && tty) write(`\r${progressLine(p)}`)
    }
  }
  const drawing = draw()
  let result: any
  try {
    result = await client.command(op)
    return result as T
  } finally {
    done = true
    await drawing
    // the pass this command ran (`heal` returns it, `leave` its last drain pass); a background
    // pass may have started since, so the host's current progress is only the fallback
    const p = isProgress(result) ? result : isProgress(result?.progress) ? result.progress : await repairProgress(client)
    if (p !== undefined) write(`${tty ? '\r' : ''}${progressLine(p)}\n`)
  }
}

/** The host's repair progress (GET /v1/status?chunks=0), or undefined if it cannot be had now. */
async function repairProgress (client: ControlClient): Promise<RepairProgress | undefined> {
  // ignored: the progress line is cosmetic; a host gone away fails the command itself
  return await client.get('/v1/status?chunks=0').then((s: any) => s?.repair, () => undefined)
}

function isProgress (x: any): x is RepairProgress {
  return x !== null && typeof x === 'object' && typeof x.checked === 'number' && typeof x.chunks === 'number'
}

/**
 * What `darkfs heal` could not do, as one line (undefined when every chunk is redundant again):
 * chunks still degraded, local-only, unreachable or lost after its passes.
 */
export function healShortfall (result: unknown): string | undefined {
  const r = result as { passes?: number, remaining?: { total: number, degraded: number, localOnly: number, lost: number, unreachable?: number } } | undefined
  const c = r?.remaining
  const unreachable = c?.unreachable ?? 0
  if (c === undefined || c.degraded + c.localOnly + c.lost + unreachable === 0) return undefined
  const parts = [
    c.degraded > 0 ? `${c.degraded} degraded` : '',
    c.localOnly > 0 ? `${c.localOnly} local-only (no peer reachable)` : '',
    unreachable > 0 ? `${unreachable} unreachable (fewer than k fragments on hosts that answered)` : '',
    c.lost > 0 ? `${c.lost} lost (fewer than k fragments left anywhere)` : ''
  ].filter(x => x !== '')
  return `heal: ${parts.join(', ')} of ${c.total} chunks after ${r?.passes ?? 1} pass(es); see darkfs status`
}
