// Leave (DESIGN.md §3): `darkfs leave` drains this host. Every chunk is planned as if the host
// were gone and completed from its copies, and the host is dropped from membership only when
// nothing needs it any more (the repair passes of repair.ts do the moving).
import type { Membership } from '../net/index.ts'
import type { Repairer, RepairProgress } from './repair.ts'
import type { AbortOptions } from '@libp2p/interface'

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
