// The churn trace's settings, their command-line options and the network they draw (hosts,
// uplinks, code, trace): the churn figures (churn.ts), the keeper counts (kept.ts) and the one
// chunk's trace (trace-chunk.ts) play the same trace from the same settings (the same seed: the
// same trace).
import { CHUNK_SIZE } from '../../node/data/index.ts'
import { DEFAULT_REDUNDANCY, erasureParams } from '../../node/keeper/index.ts'
import { prng } from '../../harness/prng.ts'
import { simHosts } from '../../harness/sim/hosts.ts'
import type { SimHost } from '../../harness/sim/hosts.ts'
import { churnTrace, simUplink } from '../../harness/sim/churn.ts'
import type { TraceEvent } from '../../harness/sim/churn.ts'

const DAY = 24 * 3600_000

export interface TraceSettings {
  /** Hosts at the start. */
  hosts: number
  seed: number
  days: number
  /** Outages per host per hour while up. */
  churnPerHour: number
  /** Share of the hosts at the start that leave for good during the trace, and that join. */
  leaveShare: number
  joinShare: number
  /** Share of the hosts' disks holding data (how many real chunks there are). */
  fill: number
}

/** The trace's options (parseArgs), with their defaults. */
export const TRACE_OPTIONS = {
  days: { type: 'string', default: '30' },
  'churn-per-hour': { type: 'string', default: String(1 / 24) },
  'leave-share': { type: 'string', default: '0.05' },
  'join-share': { type: 'string', default: '0.05' },
  fill: { type: 'string', default: '0.1' }
} as const

export type TraceValues = { [K in keyof typeof TRACE_OPTIONS]: string }

/** The options' defaults (`npm run sim`'s trace). */
export const TRACE_DEFAULTS = Object.fromEntries(Object.entries(TRACE_OPTIONS).map(([name, o]) => [name, o.default])) as TraceValues

/** The trace's settings at `hosts` from the options given: seeded `seed + hosts` (each size its own trace). */
export function traceSettings (values: TraceValues, seed: number, hosts: number): TraceSettings {
  const settings = {
    hosts,
    seed: seed + hosts,
    days: Number(values.days),
    churnPerHour: Number(values['churn-per-hour']),
    leaveShare: Number(values['leave-share']),
    joinShare: Number(values['join-share']),
    fill: Number(values.fill)
  }
  for (const [name, v] of Object.entries(settings)) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`sim trace: ${name} must be a number >= 0, got ${String(v)}`)
  }
  return settings
}

export interface TraceSetup {
  /** Hosts that join during the trace (after the `hosts` at the start). */
  joiners: number
  hosts: SimHost[]
  /** Each host's uplink, bits/s. */
  uplinks: number[]
  /** The code a host of this network picks (the default --data-fragments). */
  k: number
  m: number
  /** Chunks on the hosts' disks at `fill`. */
  realChunks: number
  /** The trace's length, ms. */
  duration: number
  trace: TraceEvent[]
}

/** The hosts, uplinks, code and churn trace of a run. */
export function churnSetup (o: TraceSettings): TraceSetup {
  const rand = prng(o.seed)
  const joiners = Math.round(o.hosts * o.joinShare)
  const hosts = simHosts(o.hosts + joiners, rand)
  const uplinks = hosts.map(() => simUplink(rand))
  const { k, m } = erasureParams(o.hosts, DEFAULT_REDUNDANCY)
  const diskTotal = hosts.slice(0, o.hosts).reduce((s, h) => s + h.disk, 0)
  const realChunks = o.fill * diskTotal / (CHUNK_SIZE * (k + m) / k)
  const duration = o.days * DAY
  const trace = churnTrace({ hosts: o.hosts, joiners, leavers: Math.round(o.hosts * o.leaveShare), duration, churnPerHour: o.churnPerHour }, rand)
  return { joiners, hosts, uplinks, k, m, realChunks, duration, trace }
}
