// The churn figures of the simulator (issue 14 item 7): repair under a 30-day churn trace
// against an oracle that repairs permanent losses only, chunks lost with m = 2, how long repair
// takes on the hosts' own uplinks, and how many round trips a reader needs to find k fragments
// when its member table is stale. The engine is harness/sim/churn.ts (darkfs's plan, keeper,
// deliveries, handovers and repair cap, in virtual time); this file draws the network and the
// trace and turns the runs into flat named figures.
import { CHUNK_SIZE } from '../../node/data/index.ts'
import { AT_RISK_CLOCK, AT_RISK_DELAY_MS, REPAIR_SPARE } from '../../node/keeper/index.ts'
import type { AtRiskClock } from '../../node/keeper/index.ts'
import { DEFAULT_REPAIR_DELAY_MS, repairDelay } from '../../node/net/index.ts'
import { prng } from '../../harness/prng.ts'
import { churnTrace, permanentOnly, runChurn } from '../../harness/sim/churn.ts'
import type { ChurnResult, TraceEvent } from '../../harness/sim/churn.ts'
import { churnSetup } from './trace.ts'
import type { TraceSettings } from './trace.ts'

const HOUR = 3600_000
const DAY = 24 * HOUR

export interface ChurnFigureOptions extends TraceSettings {
  /** Sampled chunks. */
  chunks: number
  /**
   * Failure timeouts run (ms): the first is darkfs's default, run eagerly (every host declared
   * gone rebuilt for at once, as a host given only --failure-timeout repairs) and lazily, as darkfs
   * runs by default (`.lazy.` keys: --repair-delay, --repair-spare); the others, eager, show what a
   * longer failure timeout alone buys.
   */
  timeouts: number[]
  /** The lazy run's repair delay (ms; net/failure.ts DEFAULT_REPAIR_DELAY_MS). */
  repairDelayMs: number
  /** The lazy run's spare (keeper/lazy.ts REPAIR_SPARE). */
  repairSpare: number
  /**
   * The lazy runs' at-risk rules (keeper/lazy.ts AT_RISK_DELAY_MS, AT_RISK_CLOCK): one lazy run
   * each, on the same trace and oracle; darkfs's carries nothing in its key.
   */
  atRisk: Array<{ delayMs: number, clock: AtRiskClock }>
  /** The order keepers take the chunks waiting for their repair cap in (harness/sim/churn.ts). */
  order: 'fifo' | 'urgent'
  /** Requeued chunks go ahead of their keeper's queued repairs (harness/sim/churn.ts ChurnOptions.jump; darkfs's: true). */
  jump: boolean
  /** Who rebuilds a chunk (harness/sim/churn.ts ChurnOptions.rebuilder; darkfs's: 'holder'). */
  rebuilder: 'keeper' | 'holder'
  /** Which of the first timeout's runs ('eager', 'lazy') and the lookup figures ('lookup') to run. */
  runs: ReadonlySet<string>
  latencyMs: number
  /** The lookup figure: churn per hour, length (ms) and reads sampled every (ms). */
  lookupChurnPerHour: number
  lookupDuration: number
  lookupEveryMs: number
  /** Dissemination delay of a DOWN notice (from the gossip figure), ms. */
  noticeDelayMs: number
  log: (line: string) => void
}

export function runChurnFigures (o: ChurnFigureOptions): Record<string, number> {
  const { joiners, hosts, uplinks, k, m, realChunks, duration, trace } = churnSetup(o)
  const scale = realChunks / o.chunks
  const out: Record<string, number> = {}
  const pre = `churn.h${o.hosts}`
  const chunkSeed = o.seed * 7 + 1
  const run = (t: TraceEvent[], timeout: number, extra: Partial<Parameters<typeof runChurn>[0]> = {}): ChurnResult => runChurn({
    hosts, uplinks, initial: o.hosts, trace: t, chunks: o.chunks, scale, k, m, chunkBytes: CHUNK_SIZE, failureTimeoutMs: timeout,
    latencyMs: o.latencyMs, duration, rand: prng(chunkSeed), rebuilder: o.rebuilder, ...extra
  })
  out[`${pre}.k`] = k
  out[`${pre}.m`] = m
  out[`${pre}.days`] = o.days
  out[`${pre}.chunks_sampled`] = o.chunks
  out[`${pre}.chunks_real`] = Math.round(realChunks)
  out[`${pre}.trace.outages`] = trace.filter(e => e.kind === 'down').length
  out[`${pre}.trace.outages_per_host_day`] = round(out[`${pre}.trace.outages`] / o.hosts / o.days)
  out[`${pre}.trace.leave_forever`] = trace.filter(e => e.kind === 'leave').length
  out[`${pre}.trace.joins`] = joiners
  out[`${pre}.thin_uplink_share`] = round(uplinks.filter(u => u <= 1e6).length / uplinks.length)

  let t = performance.now()
  const oracle = run(permanentOnly(trace), o.timeouts[0])
  const oracleBytes = oracle.bytesFetched + oracle.bytesPushed
  o.log(`h${o.hosts}: oracle (permanent losses and joins only): ${gb(oracleBytes)} GB moved, ${oracle.events} events, ${oracle.plans} plans (${secs(t)} s)`)
  out[`${pre}.oracle.repair_bytes`] = Math.round(oracleBytes)
  out[`${pre}.oracle.chunks_lost`] = oracle.chunksLost
  // the keepers' order, darkfs's ('urgent') carries nothing in the keys
  const order = (o.order === 'urgent' ? '' : `.order_${o.order}`) + (o.jump ? '' : '.no_jump') + (o.rebuilder === 'holder' ? '' : `.rebuilder_${o.rebuilder}`)
  /** An at-risk rule's part of a lazy run's key: none for darkfs's. */
  const riskKey = (a: { delayMs: number, clock: AtRiskClock }): string => a.delayMs === AT_RISK_DELAY_MS && (a.clock === AT_RISK_CLOCK || !Number.isFinite(a.delayMs))
    ? ''
    : Number.isFinite(a.delayMs) ? `.at_risk_${a.clock}_${Math.round(a.delayMs / 60_000)}min` : '.at_risk_none'
  const runs: Array<{ timeout: number, delay: number, p: string, atRisk?: { delayMs: number, clock: AtRiskClock } }> = o.timeouts.flatMap((timeout, i) => i === 0
    ? [
        // eager (repairDelay() of a failure timeout alone: no lazy window) carries nothing in its
        // key; the lazy run (darkfs's default; --repair-delay, --repair-spare, --at-risk) carries
        // `.lazy` and the choices that are not darkfs's defaults
        ...o.runs.has('eager') ? [{ timeout, delay: repairDelay(timeout), p: pre + order }] : [],
        ...o.runs.has('lazy')
          ? o.atRisk.map(a => ({ timeout, delay: o.repairDelayMs, atRisk: a, p: `${pre}.lazy` + (o.repairDelayMs === DEFAULT_REPAIR_DELAY_MS ? '' : `.delay_${Math.round(o.repairDelayMs / 60_000)}min`) + (o.repairSpare === REPAIR_SPARE ? '' : `.spare_${o.repairSpare}`) + riskKey(a) + order }))
          : []
      ]
    : [{ timeout, delay: timeout, p: `${pre}.timeout_${Math.round(timeout / 60_000)}min` + order }])
  runs.forEach(({ timeout, delay, p, atRisk }) => {
    t = performance.now()
    const r = run(trace, timeout, { repairDelayMs: delay, repairSpare: o.repairSpare, order: o.order, jump: o.jump, atRiskDelayMs: atRisk?.delayMs ?? Infinity, atRiskClock: atRisk?.clock })
    const bytes = r.bytesFetched + r.bytesPushed
    o.log(`h${o.hosts}: failure timeout ${timeout / 60_000} min, repair delay ${delay / 60_000} min${atRisk === undefined ? '' : `, at-risk delay ${atRisk.delayMs / 60_000} min (${atRisk.clock})`}: ${gb(bytes)} GB moved (${round(bytes / oracleBytes)}x the oracle), ${r.chunksLost} chunks lost (${r.chunksLostUnavoidable} at once; m + 1 losses within ${r.lostSpansMs.map(x => round(x / HOUR, 1)).join(', ')} h), ${r.events} events, ${r.plans} plans (${secs(t)} s); at k live ${round(r.atKShare * 100, 2)}% of chunk-time, spells at k on disks ${r.exposedSpellsMs.length}, longest ${round(Math.max(0, ...r.exposedSpellsMs) / HOUR, 1)} h`)
    out[`${p}.failure_timeout_ms`] = timeout
    out[`${p}.repair_delay_ms`] = delay
    out[`${p}.away_declared`] = r.awayDeclared
    out[`${p}.back_within_delay`] = r.backWithinDelay
    out[`${p}.lapsed`] = r.lapsed
    out[`${p}.deferred`] = r.deferred
    out[`${p}.repair_bytes`] = Math.round(bytes)
    out[`${p}.repair_bytes_fetched`] = Math.round(r.bytesFetched)
    out[`${p}.repair_bytes_pushed`] = Math.round(r.bytesPushed)
    out[`${p}.repair_vs_oracle`] = round(bytes / oracleBytes)
    out[`${p}.chunks_lost`] = r.chunksLost
    out[`${p}.chunks_lost_unavoidable`] = r.chunksLostUnavoidable
    out[`${p}.lost_span_hours_min`] = round(Math.min(...r.lostSpansMs, Infinity) / HOUR)
    out[`${p}.unavailable_share`] = round(r.unavailableShare, 6)
    if (atRisk !== undefined) {
      out[`${p}.at_risk_delay_ms`] = Number.isFinite(atRisk.delayMs) ? atRisk.delayMs : -1
      out[`${p}.overdue`] = r.overdue
    }
    // spells with no fragment to spare: k live or fewer (one more host away: unreadable), k on
    // disks or fewer (one more disk lost: lost)
    const atK = r.atKSpellsMs.slice().sort((a, b) => a - b)
    const exposed = r.exposedSpellsMs.slice().sort((a, b) => a - b)
    out[`${p}.at_k_share`] = round(r.atKShare, 6)
    out[`${p}.at_k_spell_hours_p99`] = round(pick(atK, 0.99) / HOUR)
    out[`${p}.at_k_spell_hours_max`] = round((atK[atK.length - 1] ?? 0) / HOUR)
    out[`${p}.exposed_share`] = round(r.exposedShare, 6)
    out[`${p}.exposed_spells`] = exposed.length
    out[`${p}.exposed_spell_hours_p50`] = round(pick(exposed, 0.5) / HOUR)
    out[`${p}.exposed_spell_hours_max`] = round((exposed[exposed.length - 1] ?? 0) / HOUR)
    out[`${p}.declared_gone`] = r.declaredGone
    out[`${p}.back_within_timeout`] = r.backInTime
    out[`${p}.returned_after_gone`] = r.returnedAfterGone
    const ms = r.repairMs.slice().sort((a, b) => a - b)
    out[`${p}.repair_hours_p50`] = round(pick(ms, 0.5) / HOUR)
    out[`${p}.repair_hours_p99`] = round(pick(ms, 0.99) / HOUR)
    out[`${p}.repair_hours_max`] = round((ms[ms.length - 1] ?? 0) / HOUR)
    // repair upload against each host's uplink over the trace
    const util = Array.from(r.sentByHost, (b, h) => b / (uplinks[h] / 8 * duration / 1000)).sort((a, b) => a - b)
    out[`${p}.uplink_share_mean`] = round(util.reduce((s, x) => s + x, 0) / util.length, 6)
    out[`${p}.uplink_share_max`] = round(util[util.length - 1], 6)
    out[`${p}.repair_bytes_per_host_day`] = Math.round(bytes / hosts.length / o.days)
  })

  if (!o.runs.has('lookup')) return out
  // finding who holds a fragment: steady state, and a trace at lookupChurnPerHour
  t = performance.now()
  const lookupDuration = o.lookupDuration
  const steady = runChurn({
    hosts, uplinks, initial: o.hosts, trace: [], chunks: Math.min(o.chunks, 2000), scale, k, m, chunkBytes: CHUNK_SIZE,
    failureTimeoutMs: o.timeouts[0], latencyMs: o.latencyMs, duration: HOUR, rand: prng(chunkSeed), lookupEveryMs: 1000, noticeDelayMs: o.noticeDelayMs
  })
  const churnTrace10 = churnTrace({ hosts: o.hosts, joiners: 0, leavers: Math.round(o.hosts * o.leaveShare * lookupDuration / duration), duration: lookupDuration, churnPerHour: o.lookupChurnPerHour }, prng(o.seed + 3))
  const churned = runChurn({
    hosts, uplinks, initial: o.hosts, trace: churnTrace10, chunks: Math.min(o.chunks, 2000), scale, k, m, chunkBytes: CHUNK_SIZE,
    failureTimeoutMs: o.timeouts[0], latencyMs: o.latencyMs, duration: lookupDuration, rand: prng(chunkSeed), lookupEveryMs: o.lookupEveryMs, noticeDelayMs: o.noticeDelayMs
  })
  o.log(`h${o.hosts}: lookups, steady and at ${o.lookupChurnPerHour * 100}%/h churn (${secs(t)} s)`)
  const lp = `lookup.h${o.hosts}`
  const s = steady.lookupRounds.slice().sort((a, b) => a - b)
  out[`${lp}.steady.reads`] = s.length
  out[`${lp}.steady.round_trips_max`] = s[s.length - 1] ?? 0
  const c = churned.lookupRounds.slice().sort((a, b) => a - b)
  const pc = `${lp}.churn${Math.round(o.lookupChurnPerHour * 100)}`
  out[`${pc}.reads`] = c.length + churned.lookupsFailed
  out[`${pc}.round_trips_mean`] = round(c.reduce((a, b) => a + b, 0) / Math.max(1, c.length))
  out[`${pc}.round_trips_p50`] = pick(c, 0.5)
  out[`${pc}.round_trips_p99`] = pick(c, 0.99)
  out[`${pc}.round_trips_max`] = c[c.length - 1] ?? 0
  out[`${pc}.unreadable_share`] = round(churned.lookupsFailed / Math.max(1, c.length + churned.lookupsFailed), 6)
  out[`${pc}.notice_delay_ms`] = Math.round(o.noticeDelayMs)
  return out
}

function pick (sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

function round (x: number, digits = 4): number {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x
}

function gb (bytes: number): string { return (bytes / 1e9).toFixed(1) }
function secs (t: number): string { return ((performance.now() - t) / 1000).toFixed(1) }
