// What the repair-bytes tests (cluster/repair-bytes, cluster/repair-clay) share: the keeper
// options that leave every repair to the test, the bytes a cluster sent, the blocks a host holds.
import { until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

/** Long failure timeout: a stopped host stays a suspect (a member) until the test declares it gone; no timer-driven pass, scrub or GC. */
export const REPAIR_BY_HAND = { failureTimeoutMs: 600_000, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0, repairBytesPerSecond: 1 << 30 }

/** Bytes the swarms of `hs` sent, all told. */
export const sent = (hs: ClusterHost[]): number => hs.reduce((a, h) => a + h.swarm.stats().bytesSent, 0)

/** The CIDs a host's store holds. */
export async function held (h: ClusterHost): Promise<Set<string>> {
  const out = new Set<string>()
  for await (const c of h.store.cids()) out.add(c.toString())
  return out
}

/**
 * Stops `victims`; once the survivors notice, the operator says they will not be back: every
 * survivor drops them and runs a pass of its own, then passes run until every chunk is redundant
 * again. Returns the bytes the survivors' swarms sent in the passes on leaving (the repair and
 * its surveys' have-queries, nothing else).
 */
export async function loseAndRepair (survivors: ClusterHost[], victims: ClusterHost[]): Promise<number> {
  const base = sent(survivors)
  await Promise.all(victims.map(async v => { await v.stop() }))
  await until('the survivors notice', () => survivors.every(h => h.host.peers().length === survivors.length - 1), 30_000)
  const passes = survivors.map(() => 0)
  survivors.forEach((h, i) => { h.keep.repairer.addEventListener('pass', () => { passes[i]++ }) })
  await survivors[0].keep.membership.expire()
  const gone = victims.map(v => v.host.peerId)
  await until('every survivor dropped them', () => survivors.every(h => gone.every(p => !h.keep.membership.members().includes(p))), 30_000)
  await until('every survivor ran its pass', () => passes.every(n => n > 0) && survivors.every(h => !h.keep.repairer.progress().running), 120_000)
  const moved = sent(survivors) - base
  await until('every chunk redundant again', async () => {
    const again = await Promise.all(survivors.map(async h => await h.keep.repairer.pass()))
    const s = await survivors[0].keep.status()
    return s.redundant === s.total && again.every(p => p.fragmentsRepaired === 0)
  }, 120_000)
  return moved
}
