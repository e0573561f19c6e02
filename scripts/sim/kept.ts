// The keeper counts' records on the churn trace (`kept.h<N>.*`): harness/sim/kept.ts runs every
// host's KeptNotices (node/keeper/kept.ts) in virtual time against the changes of the hosts up
// that the churn run's trace makes (the same seed: the same trace), for a window of --kept-hours
// after a warm-up; the idle figure counts its records (idle.h<N>.kept_records).
import { churnSetup } from './trace.ts'
import type { TraceSettings } from './trace.ts'
import { runKeptSim, upChanges } from '../../harness/sim/kept.ts'
import { prng } from '../../harness/prng.ts'
import { keptIntervalOf } from '../../node/keeper/index.ts'
import type { KeptRole } from '../../node/keeper/index.ts'
import { DEFAULT_FAILURE_TIMEOUT_MS } from '../../node/net/index.ts'

export interface KeptFigureOptions extends TraceSettings {
  /** Length of the window measured (ms). */
  windowMs: number
  /** Along the tree (the daemon's, beyond the full mesh), or every host's record on gossip ('flat', as before the tree). */
  tree: boolean
  latencyMs: number
  interval?: (members: number, role: KeptRole) => number
  log: (line: string) => void
}

export interface KeptRates {
  /** Gossip records network-wide per second and their mean bytes; sums sent up the tree per second and their mean bytes. */
  recordsPerS: number
  recordBytes: number
  upsPerS: number
  upBytes: number
  /** Hosts declared gone, and back after that, per host per hour over the whole trace (upChanges). */
  goneHostHour: number
  returnedHostHour: number
}

export async function runKeptFigures (o: KeptFigureOptions): Promise<{ figures: Record<string, number>, rates: KeptRates }> {
  const t = performance.now()
  const setup = churnSetup(o)
  const changes = upChanges(setup.trace, DEFAULT_FAILURE_TIMEOUT_MS, setup.duration)
  const interval = o.interval ?? keptIntervalOf
  const warm = interval(o.hosts, o.tree ? 'root' : 'tell')
  const r = await runKeptSim({
    hosts: o.hosts,
    joiners: setup.joiners,
    changes,
    duration: Math.min(o.windowMs, setup.duration - warm),
    chunks: Math.round(setup.realChunks / o.hosts),
    width: setup.k + setup.m,
    rand: prng(o.seed + 5),
    interval: o.interval,
    tree: o.tree,
    latencyMs: o.latencyMs
  })
  o.log(`h${o.hosts}: keeper counts on the churn trace, ${o.tree ? 'along the tree' : 'flat'}, ${Math.round(o.windowMs / 3600_000)} h (${((performance.now() - t) / 1000).toFixed(1)} s)`)
  const p = `kept.h${o.hosts}${o.tree ? '' : '.flat'}`
  const perS = (n: number): number => n / (o.windowMs / 1000)
  const s = (ms: number): number => Math.round(ms / 1000)
  return {
    rates: {
      recordsPerS: r.recordsPerS,
      recordBytes: r.records === 0 ? 0 : r.recordBytes / r.records,
      upsPerS: perS(r.ups),
      upBytes: r.ups === 0 ? 0 : r.upBytes / r.ups,
      goneHostHour: changes.filter(c => !c.up).length / (o.hosts * setup.duration / 3600_000),
      returnedHostHour: changes.filter(c => c.up && c.join !== true).length / (o.hosts * setup.duration / 3600_000)
    },
    figures: {
      [`${p}.window_hours`]: Math.round(o.windowMs / 3600_000),
      ...(o.tree
        ? {
            [`${p}.up_interval_s`]: s(interval(o.hosts, 'up')),
            [`${p}.root_interval_s`]: s(interval(o.hosts, 'root')),
            [`${p}.ups`]: r.ups,
            [`${p}.ups_per_host_per_s`]: Number((perS(r.ups) / o.hosts).toFixed(5)),
            [`${p}.totals_stale_s_mean`]: s(r.totalsStaleMean),
            [`${p}.totals_stale_s_p99`]: s(r.totalsStaleP99),
            [`${p}.totals_stale_s_max`]: s(r.totalsStaleMax),
            [`${p}.totals_error_mean`]: Number(r.totalsErrorMean.toFixed(6)),
            [`${p}.totals_error_max`]: Number(r.totalsErrorMax.toFixed(6))
          }
        : { [`${p}.interval_s`]: s(interval(o.hosts, 'tell')) }),
      [`${p}.up_changes`]: r.changes,
      [`${p}.records`]: r.records,
      [`${p}.records_per_s`]: Number(r.recordsPerS.toFixed(4)),
      [`${p}.record_bytes_mean`]: r.records === 0 ? 0 : Math.round(r.recordBytes / r.records),
      // each host's own record's delay (flat only: along the tree only the root publishes)
      ...(o.tree
        ? {}
        : {
            [`${p}.stale_s_mean`]: s(r.staleMean),
            [`${p}.stale_s_p99`]: s(r.staleP99),
            [`${p}.stale_s_max`]: s(r.staleMax),
            [`${p}.untold_at_end`]: r.untold,
            [`${p}.untold_s_max`]: s(r.untoldMax)
          })
    }
  }
}
