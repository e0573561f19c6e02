// Keeper counts for tests of node/keeper/kept.ts: `redundant` and `degraded` chunks of 1,000
// bytes each, the other states none.
import { emptyKept } from '../../node/keeper/index.ts'
import type { KeptCounts } from '../../node/keeper/index.ts'

export function keptCounts (redundant: number, degraded = 0): KeptCounts {
  const c = emptyKept()
  c.chunks.redundant = redundant
  c.chunks.degraded = degraded
  c.bytes.redundant = redundant * 1000
  c.bytes.degraded = degraded * 1000
  return c
}
