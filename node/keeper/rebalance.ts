// Rebalance (DESIGN.md §3). When hosts join, the keepers' repair passes deliver
// fragments to their new targets (repair.ts); each host then drops a copy it is no longer a
// target of, but only once every host that must hold that fragment is live and reported
// holding it (a have-query answered from its store, i.e. after it stored and ACKed). A copy is
// deleted only once the hosts that must keep it promised to (custody.ts). Leaving is leave.ts.
import type { ChunkRef } from '../data/index.ts'
import type { Handover } from './custody.ts'
import type { ChunkPlan } from './survey.ts'

/**
 * The local copies of `ref`'s fragments this host is not a target of, once every host that must
 * hold them is live and holds them, with those hosts as their keepers (custody.ts deletes a copy
 * only after its keepers promise to keep the block). A block wanted here under any index stays.
 */
export function handovers (self: string, ref: ChunkRef, p: ChunkPlan, live: Set<string>): Handover[] {
  const out: Handover[] = []
  const byCid = new Map<string, number[]>()
  ref.fragments.forEach((f, j) => { byCid.set(f.toString(), [...(byCid.get(f.toString()) ?? []), j]) })
  for (const js of byCid.values()) {
    if (!js.some(j => p.held[j].has(self))) continue
    // the hosts wanted for this block under any of its indexes (copies of a replicated chunk
    // are all index 0 of the plan)
    const wanted = [...new Set(js.flatMap(j => p.want[j]))]
    if (wanted.includes(self)) continue
    const placed = wanted.length > 0 && wanted.every(h => live.has(h) && js.some(j => p.held[j].has(h)))
    if (placed) out.push({ cid: ref.fragments[js[0]], keepers: wanted })
  }
  return out
}

/** The blocks of `ref` this host must hold under `p`. */
export function wantedHere (self: string, ref: ChunkRef, p: ChunkPlan): string[] {
  return ref.fragments.filter((_, j) => p.want[j].includes(self)).map(f => f.toString())
}
