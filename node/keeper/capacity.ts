// The network's space as `df` on a mount shows it (issue 17): what the live hosts have, in
// bytes of file data. Each host's disk figures come from its space notices (net/space-notice.ts)
// and this host's from its own measure (data/space.ts); a chunk of k data fragments takes
// k + m fragments' worth of disk, so the raw sums are scaled by k / (k + m) of the chunks
// written now (placement.ts erasureParams). Pure: same figures, same answer.
import type { Capacity } from '../types.ts'
import type { ErasureParams } from './placement.ts'

/** The space of `hosts` (each one's raw disk figures) as file bytes under erasure code `params`. */
export function networkCapacity (hosts: Capacity[], params: ErasureParams): Capacity {
  const { k, m } = params
  if (!(Number.isSafeInteger(k) && k >= 1 && Number.isSafeInteger(m) && m >= 0)) throw new RangeError(`networkCapacity: bad erasure parameters k=${k} m=${m}`)
  const sum = (f: (c: Capacity) => number): number => hosts.reduce((s, h) => s + f(h), 0)
  const scale = (bytes: number): number => Math.floor(bytes * k / (k + m))
  return { total: scale(sum(h => h.total)), free: scale(sum(h => h.free)), avail: scale(sum(h => h.avail)) }
}
