// What the repair-bytes tests (cluster/repair-bytes, cluster/repair-clay) share: the keeper
// options that leave every repair to the test, the bytes a cluster sent, the blocks a host holds.
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
