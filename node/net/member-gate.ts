// What one peer may ask of this host's member service (issue 14, bad input: one insider must not
// keep a host's event loop busy), as a pure part over a clock, so the sim (harness/sim/pull.ts)
// runs the same rules as the daemon (member-service.ts):
//  - calls (sync, digest, table) cost units of a per-peer budget, CALL_BURST at most, refilled
//    by one every CALL_REFILL_MS: a sync or digest round costs 1 (a sync request's keys cost one
//    more per SYNC_KEYS_PER_UNIT, the table is hashed either way: ~29 ms for a maximal request at
//    10,000 members), a table answer 1 up front, and TABLE_CALL_COST in all when it is big (more
//    than member-service.ts TABLE_ANSWER_UNPACED members go back, of changes or the whole table:
//    the rest charged after, charge(); a small table's whole-table pull costs 1, so the hosts of a
//    fresh network all pulling one seed at once are not refused for a table of a few hundred
//    members, review32c). A host's own rounds ask one
//    peer every TABLE_SYNC_MS; a round whose tables are apart makes five calls (sync, recheck,
//    changes, sync, whole table): 20 units at most, with a sync request at MAX_MEMBERS keys (a mass event:
//    thousands of DOWN notices named for MEMBER_SYNC_KEYS_MS), within the burst and within what
//    comes back in one TABLE_SYNC_MS (20), so a peer that asks by the rules never meets the bound
//    however often its rounds are apart (test/node/member-gate). Past it the call is refused
//    with MembersBusyError (a reply the asker rebuilds: it is no network fault, and the asker
//    leaves that peer alone for a while, member-service.ts), and the refusal costs no table work.
//    A call costing more than the burst is taken when the budget is full, leaving a debt;
//  - pushes (a member message its author sends) cost 1 of another budget (PUSH_BURST, one back
//    every PUSH_REFILL_MS); a push not signed by its sender is refused before its signature is
//    checked, and a refused one (that, malformed, badly signed) costs PUSH_REFUSED_COST;
//  - the budgets of at most BUDGETS_KEPT peers are kept, the least lately used forgotten first
//    (a peer forgotten starts full: forgetting one takes BUDGETS_KEPT other peers asking since);
//  - under the budgets per peer, one shared by every asker (ALL_CALLS_BURST, one unit back every
//    ALL_CALLS_REFILL_MS): an insider with many peer ids gets a budget per id, not more of the
//    host. A call is taken only when both allow it; one the shared budget refuses costs its asker
//    one unit of its own (what a refusal costs, so ids flooding past the shared budget soon meet
//    their own bounds, admit()) and the shared budget nothing;
//  - the shared budget is first come, first served, so ids flooding at their full per-peer rate
//    (9 of them, review32c) took all of it and every honest asker was refused: it may go into a
//    debt of ALL_CALLS_RESERVE units for an asker with standing, refused no call (by either
//    budget) in the last RESERVE_QUIET_MS. A flooder past the shared budget is refused (and so
//    left out of the reserve for that long), an honest asker never is: its rounds go through on
//    the reserve while the flood goes on (test/node/member-gate: 16 flooding ids, one honest
//    asker). A refusal is remembered only for a member of this table (a fresh id's refusals,
//    thousands of them, flushed the members' out of the BUDGETS_KEPT remembered, review33c), and
//    RESERVE_QUIET_MS is less than member-service.ts BUSY_BACKOFF_MS: a member refused when the
//    reserve was spent, asking again as it is told, has the reserve again (it was 60 s against a
//    30 s backoff: a joiner was refused every time). Standing: the asker is a member of this
//    table whose first record was taken here STANDING_MS ago or more (table.memberFor: its
//    newer records keep it; measured on the monotonic clock, as this host saw it run: bugs38). Without membership, ids never refused yet drew on the reserve too:
//    a flooder minting fresh ids, each refused nothing, spent it and the honest asker was
//    refused (note-s32 Left 8). Without the age, membership was bought with one self-signed
//    record pushed (pushes have no admit): ids minted as members every few seconds spent the
//    reserve as fresh ids did (review33c: 187 of 200 honest calls refused over 10 min). And ids
//    minted STANDING_MS ahead and kept (records that spread to every table, refreshed by their
//    signer, bounded by MAX_MEMBERS) drew on the whole reserve as members do: a few hundred of
//    them, each asking once per RESERVE_QUIET_MS (a refused one loses nothing it had), kept it
//    spent and a member of weeks was refused every round (session 33 left; test/node/member-gate:
//    400 ids an hour old). A cap per member bounds nothing there (ids cost nothing to mint), so
//    the reserve's depth follows standing instead (RESERVE_DEPTHS): a member may take the shared
//    budget only as deep into its debt as its age here allows (a quarter from STANDING_MS, half
//    from an hour, three quarters from a day, all from a week), and ids minted lately pin the debt
//    at their depth, the bands under it left to the members that were here before them. What it
//    leaves: ids kept as long as a member has been here share its band with it (a week for the
//    deepest); the standings are kept across restarts (MemberTable standings(), the
//    daemon's members-since file), so a host that restarted keeps its members' standing. And a
//    fresh honest host waits STANDING_MS for the reserve of a flooded host: its
//    first table pull goes to any of its first peers (member-service.ts TABLE_PULL_PEERS, a busy
//    one asked again later), within the shared budget of a host not flooded; its record reaches
//    the flooded host by push or gossip (pushes are not calls: MEMBER_PUSH_PROTOCOL), and
//    STANDING_MS later its rounds there draw on the reserve as a young member's. A member
//    asking exactly at the refill rate (never refused) draws on the reserve until it is spent;
//  - admit(): a peer with less than a unit of its call budget left is refused before its
//    request's frame is decoded (member-service.ts asks it as the stream opens: rpc.ts serve()
//    admit), the clear refusal an asker already rebuilds and backs off from.
import { MembersBusyError, SYNC_KEY_BYTES, memberAuthor, memberLeaving } from './members.ts'
import type { MemberTable, MembersRequest, Taken } from './members.ts'

/** A peer's call budget: units at most, and one unit back this often (ms). */
export const CALL_BURST = 32
export const CALL_REFILL_MS = 750
/** A sync request costs one unit more per this many keys. */
export const SYNC_KEYS_PER_UNIT = 16_384
/** Units a big table answer costs in all (1 up front, the rest charged after; it is also paced: member-service.ts TABLE_ANSWER_MIN_INTERVAL_MS). */
export const TABLE_CALL_COST = 4
/**
 * Pushes a peer may send at once (an author pushes only its own changes: its record, the DOWN
 * notices it signs as a neighbour, a few a day; a push only starts a spread the sync rounds
 * finish, so one dropped costs a little time, nothing more), refilled by one every
 * PUSH_REFILL_MS; a refused push costs PUSH_REFUSED_COST. Past the budget a peer's pushes are
 * dropped as they come: a flood of them costs this host a frame's read each, no signature check.
 */
export const PUSH_BURST = 16
export const PUSH_REFILL_MS = 15_000
export const PUSH_REFUSED_COST = 8
/**
 * The budget every asker shares: ALL_CALLS_BURST units, one back every ALL_CALLS_REFILL_MS
 * (~10.7 a second, 8 askers at their full per-peer rate). An honest host is asked about one round
 * per TABLE_SYNC_MS on average (each of its peers asks its connections in turn), a round at most
 * 20 units (all apart, at MAX_MEMBERS keys): ~1.3 units a second; the burst takes 25 such rounds
 * at once, the refill 8 askers all apart every round without end (test/node/member-gate). What it
 * bounds: at ~5-10 ms a unit at 10,000 members (note-s31: an empty sync answer 4.9 ms, a maximal
 * one 9.8), at most ~5-11% of a core on member calls, however many ids ask.
 */
export const ALL_CALLS_BURST = 16 * CALL_BURST
export const ALL_CALLS_REFILL_MS = CALL_REFILL_MS / 8
/**
 * The debt the shared budget may go into for an asker with standing (a member first taken here
 * STANDING_MS ago, and only as deep as its age allows: RESERVE_DEPTHS) refused no call in the last RESERVE_QUIET_MS (see the header): six rounds at
 * the worst (20 units each), back in ~12 s. RESERVE_QUIET_MS is less than member-service.ts
 * BUSY_BACKOFF_MS (30 s), the wait of an asker refused (test/node/member-gate).
 */
export const ALL_CALLS_RESERVE = ALL_CALLS_BURST / 4
export const RESERVE_QUIET_MS = 20_000
export const STANDING_MS = 10 * 60_000
/**
 * How deep into the reserve a member may take the shared budget, by how long it has been a
 * member here (table.memberFor): from STANDING_MS a quarter of ALL_CALLS_RESERVE, from an hour
 * half, from a day three quarters, from a week all of it (each band 32 units, more than an honest
 * round all apart at MAX_MEMBERS keys, 20). Ids minted and kept until they have standing pin the
 * debt at their age's depth, not below: the bands under it are left to the members that were
 * here before them (see the header).
 */
export const RESERVE_DEPTHS: ReadonlyArray<{ standingMs: number, share: number }> = [
  { standingMs: 7 * 24 * 3600_000, share: 1 },
  { standingMs: 24 * 3600_000, share: 3 / 4 },
  { standingMs: 3600_000, share: 1 / 2 },
  { standingMs: STANDING_MS, share: 1 / 4 }
]

/** The debt (units) the shared budget may go into for a member that was first taken `standingMs` ago (0: none, no standing). */
export function reserveDepth (standingMs: number): number {
  const d = RESERVE_DEPTHS.find(d => standingMs >= d.standingMs)
  return d === undefined ? 0 : Math.floor(ALL_CALLS_RESERVE * d.share)
}
/** Peers whose budgets (each kind) are kept, the least lately used forgotten beyond it. */
export const BUDGETS_KEPT = 1024

/**
 * Sync keys past twice the answering table's members and SYNC_KEYS_SLACK cost one unit more per
 * this many: an honest asker names only states it took lately (at most about one per member, a
 * fresh table's asker a few thousand), while a request naming up to MAX_MEMBERS keys at a 10,000
 * member table cost ~10x a small one's CPU for 4 units (review31f).
 */
export const SYNC_KEYS_EXCESS_PER_UNIT = 1024
export const SYNC_KEYS_SLACK = 1024

/** The shared budget's key. */
const ALL_CALLS = ''

/** Units a call costs (see the header); `tableSize`: the answering table's members, when known. */
export function callCost (req: MembersRequest, tableSize?: number): number {
  if (req.t === 'sync') {
    const keys = req.k.byteLength / SYNC_KEY_BYTES
    const excess = tableSize === undefined ? 0 : Math.max(0, keys - 2 * tableSize - SYNC_KEYS_SLACK)
    return 1 + Math.floor(keys / SYNC_KEYS_PER_UNIT) + Math.floor(excess / SYNC_KEYS_EXCESS_PER_UNIT)
  }
  // a table answer's size is known only once it is made: a big one is charged the rest then
  return 1
}

/** Token buckets per peer, at most `kept` peers (the least lately used forgotten). */
export class PeerBudgets {
  private readonly left = new Map<string, { left: number, at: number }>()
  private readonly burst: number
  private readonly refillMs: number
  private readonly now: () => number
  private readonly kept: number

  constructor (burst: number, refillMs: number, now: () => number, kept = BUDGETS_KEPT) {
    this.burst = burst
    this.refillMs = refillMs
    this.now = now
    this.kept = kept
  }

  get size (): number {
    return this.left.size
  }

  /**
   * Spend `cost` of `peer`'s budget: false (nothing spent) when what is left is less than
   * min(cost, burst); `owed`: spent whatever is left, down to a debt of one burst.
   */
  spend (peer: string, cost: number, owed = false): boolean {
    const now = this.now()
    const b = this.left.get(peer) ?? { left: this.burst, at: now }
    b.left = Math.min(this.burst, b.left + Math.max(0, now - b.at) / this.refillMs)
    b.at = Math.max(b.at, now)
    // least lately used last in the map's order: the first is forgotten beyond the bound
    this.left.delete(peer)
    this.left.set(peer, b)
    if (this.left.size > this.kept) this.left.delete(this.left.keys().next().value!)
    if (owed) {
      b.left = Math.max(-this.burst, b.left - cost)
      return true
    }
    if (b.left < Math.min(cost, this.burst)) return false
    b.left -= cost
    return true
  }

  /** Units `peer` has now (a peer not kept: the burst). */
  units (peer: string): number {
    const b = this.left.get(peer)
    if (b === undefined) return this.burst
    return Math.min(this.burst, b.left + Math.max(0, this.now() - b.at) / this.refillMs)
  }

  /** Ms until `peer` has `units` again (0: now). */
  waitMs (peer: string, units = 1): number {
    const b = this.left.get(peer)
    if (b === undefined) return 0
    const left = Math.min(this.burst, b.left + Math.max(0, this.now() - b.at) / this.refillMs)
    return Math.max(0, Math.ceil((Math.min(units, this.burst) - left) * this.refillMs))
  }
}

/**
 * Pacing of big table answers per asker (member-service.ts TABLE_ANSWER_MIN_INTERVAL_MS): when
 * each peer was last given one, and whether it was of the changes `since` a time (the whole
 * table asked right after it is the same round's second pull, answered once more within the
 * interval). At most `kept` peers, the least lately answered forgotten first (it grew per asker).
 */
export class TablePacing {
  private readonly last = new Map<string, { at: number, since: boolean }>()
  private readonly intervalMs: number
  private readonly now: () => number
  private readonly kept: number

  constructor (intervalMs: number, now: () => number = Date.now, kept = BUDGETS_KEPT) {
    this.intervalMs = intervalMs
    this.now = now
    this.kept = kept
  }

  get size (): number {
    return this.last.size
  }

  /**
   * Whether a big table answer to `peer` (of changes when `since`) is given now (recorded) or
   * paced (an empty one goes back instead): one per interval, and one whole table right after a
   * paced answer of changes (a long partition left the tables apart: the peer would else pull
   * changes and get an empty table every round, never catching up).
   */
  answer (peer: string, since: boolean): boolean {
    const now = this.now()
    const last = this.last.get(peer)
    if (last !== undefined && now - last.at < this.intervalMs) {
      if (since || !last.since) return false
      this.keep(peer, { at: last.at, since: false })
      return true
    }
    this.keep(peer, { at: now, since })
    return true
  }

  private keep (peer: string, v: { at: number, since: boolean }): void {
    this.last.delete(peer)
    this.last.set(peer, v)
    if (this.last.size > this.kept) this.last.delete(this.last.keys().next().value!)
  }
}

export interface MemberGateCounts {
  /** Pushes taken (new or not), refused (not the sender's, malformed, badly signed), dropped over the budget. */
  taken: number
  refused: number
  dropped: number
  /** Calls answered, and refused over the asker's budget or the shared one (callsUnread of them before their request was decoded, admit()). */
  calls: number
  callsRefused: number
  callsUnread: number
}

/** The budgets and the author check in front of one member table (see the header). */
export class MemberGate {
  readonly counts: MemberGateCounts = { taken: 0, refused: 0, dropped: 0, calls: 0, callsRefused: 0, callsUnread: 0 }
  private readonly calls: PeerBudgets
  /** The budget every asker shares (one key: ALL_CALLS). */
  private readonly allCalls: PeerBudgets
  private readonly pushes: PeerBudgets
  /** Peers whose own DOWN (leaving) was taken past their budget (at most BUDGETS_KEPT, the oldest forgotten). */
  private readonly leaveTaken = new Set<string>()
  private readonly table: Pick<MemberTable, 'take' | 'memberFor'> & { readonly size?: number }
  /** When each member was last refused a call (at most `kept`, the least lately refused forgotten; other askers never: a flood of fresh ids flushed it). */
  private readonly refusedAt = new Map<string, number>()
  private readonly now: () => number
  private readonly keptPeers: number

  constructor (table: Pick<MemberTable, 'take' | 'memberFor'> & { readonly size?: number }, now: () => number = Date.now, kept = BUDGETS_KEPT) {
    this.table = table
    this.now = now
    this.keptPeers = kept
    this.calls = new PeerBudgets(CALL_BURST, CALL_REFILL_MS, now, kept)
    this.allCalls = new PeerBudgets(ALL_CALLS_BURST, ALL_CALLS_REFILL_MS, now, 1)
    this.pushes = new PeerBudgets(PUSH_BURST, PUSH_REFILL_MS, now, kept)
  }

  /** Peers whose budgets are kept (each kind). */
  kept (): { calls: number, pushes: number } {
    return { calls: this.calls.size, pushes: this.pushes.size }
  }

  /**
   * Whether a call from `peer` may be read at all (nothing spent): refused with MembersBusyError
   * (counted) when its call budget has less than one unit left, before its request is decoded.
   */
  admit (peer: string): MembersBusyError | undefined {
    if (this.calls.units(peer) >= 1) return undefined
    this.refusedNow(peer)
    this.counts.callsRefused++
    this.counts.callsUnread++
    return new MembersBusyError(`members: over ${peer}'s call budget, ask again in ${this.calls.waitMs(peer)} ms`)
  }

  /** Admit a call from `peer` (its cost spent, of its budget and the shared one), or throw MembersBusyError (nothing done). */
  call (peer: string, req: MembersRequest): void {
    const cost = callCost(req, this.table.size)
    if (this.calls.units(peer) < Math.min(cost, CALL_BURST)) {
      this.calls.spend(peer, cost)
      this.refusedNow(peer)
      this.counts.callsRefused++
      throw new MembersBusyError(`members: over ${peer}'s call budget, ask again in ${this.calls.waitMs(peer, cost)} ms`)
    }
    if (!this.allCalls.spend(ALL_CALLS, cost) && !this.reserve(peer, cost)) {
      // refused for everyone's sake: the asker pays what a refusal costs, the shared budget nothing
      this.calls.spend(peer, 1)
      this.refusedNow(peer)
      this.counts.callsRefused++
      throw new MembersBusyError(`members: over the call budget of all askers, ask again in ${this.allCalls.waitMs(ALL_CALLS, cost)} ms`)
    }
    this.calls.spend(peer, cost)
    this.counts.calls++
  }

  /** Take `cost` of the reserve (the shared budget into debt) for `peer`, when it is a member of the table first taken STANDING_MS ago, was refused nothing for RESERVE_QUIET_MS and the debt stays within its standing's depth (reserveDepth). */
  private reserve (peer: string, cost: number): boolean {
    const standing = this.table.memberFor(peer)
    const depth = standing === undefined ? 0 : reserveDepth(standing)
    if (depth === 0) return false
    const at = this.refusedAt.get(peer)
    if (at !== undefined && this.now() - at < RESERVE_QUIET_MS) return false
    if (this.allCalls.units(ALL_CALLS) - cost < -depth) return false
    return this.allCalls.spend(ALL_CALLS, cost, true)
  }

  /** A call of `peer` refused: remembered when it is a member (the reserve's quiet time), else not. */
  private refusedNow (peer: string): void {
    if (this.table.memberFor(peer) === undefined) return
    this.refusedAt.delete(peer)
    this.refusedAt.set(peer, this.now())
    if (this.refusedAt.size > this.keptPeers) this.refusedAt.delete(this.refusedAt.keys().next().value!)
  }

  /** Charge `peer` `units` more for a call already answered (owed: down to a debt of one burst; the shared budget too). */
  charge (peer: string, units: number): void {
    if (units <= 0) return
    this.calls.spend(peer, units, true)
    this.allCalls.spend(ALL_CALLS, units, true)
  }

  /**
   * A push from `peer`: dropped over its budget, refused when not signed by it (before the
   * signature is checked) or refused by the table, else taken. A host's own DOWN as it leaves is
   * taken past its budget, once per peer kept (the hosts told of a leave never sign a DOWN of it
   * themselves: dropped here, it would be lost for good, every table keeping a host that is gone).
   * The message is read for that only when over the budget, and only a DOWN its sender signed
   * about itself passes (a flood of pushes costs a frame's read each, not two decodes).
   */
  async push (peer: string, msg: Uint8Array): Promise<'dropped' | 'refused' | Exclude<Taken, 'invalid'>> {
    if (!this.pushes.spend(peer, 1)) {
      if (this.leaveTaken.has(peer) || !memberLeaving(msg) || memberAuthor(msg) !== peer) {
        this.counts.dropped++
        return 'dropped'
      }
      this.leaveTaken.add(peer)
      if (this.leaveTaken.size > BUDGETS_KEPT) this.leaveTaken.delete(this.leaveTaken.values().next().value!)
    }
    const own = memberAuthor(msg) === peer
    const r = own ? await this.table.take(msg) : 'invalid'
    if (r === 'invalid') {
      this.refused(peer, PUSH_REFUSED_COST - 1)
      return 'refused'
    }
    this.counts.taken++
    return r
  }

  /** A refused push or a malformed request from `peer`: costs `cost` of its push budget (owed). */
  refused (peer: string, cost = PUSH_REFUSED_COST): void {
    this.counts.refused++
    this.pushes.spend(peer, cost, true)
  }
}
