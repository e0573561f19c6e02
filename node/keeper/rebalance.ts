// Rebalance and leave (DESIGN.md §3). When hosts join, the keepers' repair passes deliver
// fragments to their new targets (repair.ts); each host then drops a copy it is no longer a
// target of, but only once every host that must hold that fragment is live and reported
// holding it (a have-query answered from its store, i.e. after it stored and ACKed). `leave`
// drains this host: every chunk is planned as if it were gone and completed from its copies,
// and it is dropped from membership only when nothing needs it any more. A copy is deleted only
// once the hosts that must keep it promised to (custody.ts).
import type { ChunkRef } from '../data/chunks.ts'
import type { Membership } from '../net/failure.ts'
import type { Repairer, RepairProgress } from './repair.ts'
import type { Handover } from './custody.ts'
import type { ChunkPlan } from './survey.ts'
import type { AbortOptions } from '../data/blocks.ts'

/** Drain passes `leave` runs before giving up (each one completes what the last could not). */
export const LEAVE_MAX_PASSES = 5
/** Wait between drain passes that left chunks short. */
export const LEAVE_RETRY_MS = 1_000

export class LeaveError extends Error {
  override readonly name = 'LeaveError'
  readonly notRedundant: number
  constructor (notRedundant: number) {
    super(`cannot leave: ${notRedundant} chunk(s) would not be fully redundant without this host (too few hosts, or they are unreachable)`)
    this.notRedundant = notRedundant
  }
}

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

/**
 * Drain this host: tell the peers it drains (they plan without it, so the copies it moves stay
 * where they land), repair every chunk as if it were gone (its copies serve as sources, none
 * is deleted meanwhile, so no chunk drops below full redundancy), check that every chunk is
 * redundant without it, then tell the peers it leaves. Throws LeaveError when that cannot be
 * reached (e.g. fewer hosts than a chunk needs), after telling the peers it stays.
 */
export async function drain (c: { self: string, repairer: Repairer, membership: Pick<Membership, 'announceLeave' | 'announceDrain' | 'announceStay'> }, opts: AbortOptions = {}): Promise<{ passes: number, progress: RepairProgress }> {
  let short = 0
  await c.membership.announceDrain()
  try {
    for (let pass = 1; pass <= LEAVE_MAX_PASSES; pass++) {
      const progress = await c.repairer.pass({ ...opts, all: true, leaving: true, drop: false })
      const health = await c.repairer.healthWithout(c.self, opts)
      short = health.degraded + health.localOnly + health.lost
      if (short === 0) {
        await c.membership.announceLeave()
        return { passes: pass, progress }
      }
      await new Promise(resolve => setTimeout(resolve, LEAVE_RETRY_MS))
    }
  } catch (err) {
    await c.membership.announceStay()
    throw err
  }
  await c.membership.announceStay()
  throw new LeaveError(short)
}
