// Failure detection (DESIGN.md §3): who the members are for placement and repair. A connected
// peer is live. A peer whose connection went away is suspect: still a member (its fragments
// are presumed where they were) until it has been away for the failure timeout, then it is
// declared gone and its fragments are rebuilt elsewhere. A peer that comes back is live again
// under the same id: a set of ids, so nothing is counted twice. A host that leaves on purpose
// (`darkfs leave`, after draining) says so with a LEAVE notice and is dropped at once. Before
// it drains it says so with a DRAIN notice: every host then plans placement without it (it stays
// live, a source of its fragments), so the copies it moves are where every host expects them
// and nobody drops them again; a STAY notice undoes that when the leave fails. A GONE notice
// carries the suspects the operator declared gone (`darkfs heal`).
//
// Lazy repair (issue 14, Total Recall): a peer declared gone by the failure timeout (its own or
// a neighbour's DOWN notice), not by a leave notice or heal, is away: it may still come back with
// its disk. For the repair delay (--repair-delay, counted from when it went away) the keeper may
// plan as if it still held its fragments, while its chunks keep a fragment to spare
// (keeper/lazy.ts); away() lists them, and 'lapsed' says one was away for the whole delay.
//
// Notices go over MEMBERSHIP_PROTOCOL (rpc.ts notices, sent to every connected peer by
// broadcast(), the seam a gossip transport could take over). A peer a notice did not go through
// to is sent it again, with backoff, while it stays connected (issue 16: a link cut while a
// notice is in flight, with a connection that outlives the cut); a peer that connects while
// this host drains is told so again (its Membership forgets a drain on a new connection).
//   { t: 'leave' } | { t: 'drain' } | { t: 'stay' } | { t: 'gone', ids: [peer id...] }
import type { Host } from './host.ts'
import { TRIM_GRACE_MS } from './host.ts'
import type { MemberTable } from './members.ts'
import { RpcProtocolError, broadcast, defineProtocol, notify, serve } from './rpc.ts'
import { logger } from '../log.ts'

const log = logger('net:membership')

/** Default time a peer may be unreachable before it is declared gone: 3 minutes. */
export const DEFAULT_FAILURE_TIMEOUT_MS = 3 * 60_000
/**
 * The repair delay (lazy repair, keeper/lazy.ts, `--repair-delay`): most outages (a night off, a
 * reboot, a router restarting, a holiday weekend) end within it. The history: in the simulator's
 * 30-day churn trace (npm run sim, about a fifth of the hosts away at any time) a 24 h delay cut repair bytes from 4.99x to 4.21x an oracle that
 * repairs permanent losses only, and lost 10 of 10,000 sampled chunks where repairing at once lost
 * 6. Only a 72 h delay with no spare came within 1.3x, at 8 lost. With keepers taking chunks at
 * risk first (lazy.ts byUrgency, the Repairer's order since) a 72 h delay with no spare moved
 * 1.37x at 3 lost (repairing at once: 5.87x, 5 lost); with a spare of 1, giving up one away
 * holder per chunk at k live instead of all, 4.5x, 5 lost. Every loss there was one
 * neighbourhood whose three leavers went weeks apart: chunks left unrepaired behind a thin
 * keeper's queue, found short of k live whenever their turn came. With chunks at risk queued by
 * urgency at their keeper (the sim passed them again whenever the keeper's clock came, and any
 * other chunk at risk took the cap first) and a pass ordering the rest of itself again as hosts
 * go and come back (repair.ts), and a chunk moving to the queue of the keeper it has now, 72 h
 * with no spare moved 1.30x at 1 lost, repairing at once 5.86x at 7 lost: every loss in one
 * neighbourhood whose three leavers came 506 h apart (the lazy run's chunk was short of k live
 * each time its turn came in a queue of 30 h sampled repairs). With the chunks a returning host
 * ranks first for taken ahead of every queued repair (repair.ts requeue(), a batch of their own;
 * the sim's --repair-jump): 1.2986x, still that 1 lost. Its keeper (a thin host) had so many
 * chunks brought back by returning hosts that this lane too was taken 40-50 h ahead; when its
 * turn came (702.9 h) it was short again. Not yet both goals (1.3x, 0 lost), so still not the
 * default. Next: another rebuilder for such a chunk (its fattest live holder) when its keeper's
 * lane is taken.
 * Session 16: the sim passes a repair again when its reads cannot start (REPAIR_CHUNK_TIMEOUT_MS)
 * instead of freezing its plan behind hundreds of hours of other reads, lazyPlan keeps an away
 * host on the fragment it was last seen holding (and waits for none that held nothing), and a
 * pass takes chunks by surviving fragments first (lazy.ts byUrgency). 72 h with no spare: seed 14
 * 1.45x, 0 lost -> 1.03x, 0 lost; seed 15 1.44x, 8 lost -> 1.03x, 9 lost (one neighbourhood of thin
 * keepers and holders whose three leavers came 370 h apart: the reads of its rebuilds waited on
 * thin uplinks while its other holders were away for days). Repairing at once: 10.5x and 11.0x,
 * 0 and 16 lost. Not both goals on every seed, so still not the default.
 * Session 17: a thin keeper leaves a chunk's rebuild to its live holder on the fastest uplink
 * (keeper/repair.ts rebuilderOf()), and the sim no longer books a push the repair cap holds on the
 * keeper's uplink before the cap lets it go (it blocked that host's reads meanwhile). 72 h with no
 * spare, seeds 14 to 18: 0 chunks lost on each, 0.99x to 1.02x the oracle's bytes (the old rule, the
 * keeper rebuilding whatever its uplink, on seed 15: 8 lost). So lazy repair
 * (72 h, REPAIR_SPARE 0) is the default; a host given only --failure-timeout repairs at once.
 * The trace's outages end within 3 days, which is why 72 h works there: a network whose outages
 * run longer needs longer.
 * Session 18: a chunk left at k live waits only the at-risk delay (keeper/lazy.ts
 * AT_RISK_DELAY_MS, 48 h), then one away holder's fragment is rebuilt: with 72 h for every chunk,
 * two disks dying on a small network left every chunk of theirs one loss from lost for 3 days.
 */
export const DEFAULT_REPAIR_DELAY_MS = 72 * 3600_000

/**
 * The repair delay a host runs with: `repairDelayMs` when given; else, when only a failure
 * timeout is given (tests, an operator who wants hosts declared gone rebuilt for at once), that
 * timeout: no lazy window; else DEFAULT_REPAIR_DELAY_MS. Never shorter than the failure timeout.
 */
export function repairDelay (failureTimeoutMs?: number, repairDelayMs?: number): number {
  const timeout = failureTimeoutMs ?? DEFAULT_FAILURE_TIMEOUT_MS
  return Math.max(timeout, repairDelayMs ?? (failureTimeoutMs === undefined ? DEFAULT_REPAIR_DELAY_MS : timeout))
}

/**
 * Membership notices: leave (after draining), drain (placement leaves the sender out), stay
 * (a failed leave: it is a member again), gone (suspects the operator declared gone, so every
 * host plans without them at once, not each after its own timeout). 2.0.0: one protocol in
 * rpc.ts's envelopes (1.0.0 was four: /darkfs/leave, /drain, /stay with one byte, /gone with
 * newline-separated ids).
 */
export const MEMBERSHIP_PROTOCOL = '/darkfs/membership/2.0.0'
/** Bound of a membership notice (a gone notice lists up to MAX_GONE_IDS ids). */
export const MAX_MEMBERSHIP_NOTICE_BYTES = 64 * 1024
/** Most peer ids in one gone notice (more are sent in further notices). */
export const MAX_GONE_IDS = 256
/** Longest peer id string accepted in a notice. */
export const MAX_NOTICE_PEER_ID_CHARS = 128
/** Time to tell one peer. */
export const LEAVE_NOTICE_TIMEOUT_MS = 5_000

/** First wait before a notice that did not go through to a connected peer is sent again (it doubles). */
export const MEMBERSHIP_RETRY_MS = 1_000
/** Longest wait between two tries; a notice is given up after MEMBERSHIP_RETRIES tries. */
export const MEMBERSHIP_RETRY_MAX_MS = 30_000
export const MEMBERSHIP_RETRIES = 10

/** A membership notice that is malformed or breaks a bound. */
export class MembershipNoticeError extends RpcProtocolError {
  override readonly name = 'MembershipNoticeError'
}

export type MembershipNotice = { t: 'leave' } | { t: 'drain' } | { t: 'stay' } | { t: 'gone', ids: string[] }

export const MEMBERSHIP = defineProtocol<never, never, MembershipNotice>({
  id: MEMBERSHIP_PROTOCOL,
  maxMessageBytes: MAX_MEMBERSHIP_NOTICE_BYTES,
  timeoutMs: LEAVE_NOTICE_TIMEOUT_MS,
  malformed: MembershipNoticeError,
  notice: (v) => {
    const m = v as { t?: unknown, ids?: unknown } | null
    if (m === null || typeof m !== 'object') throw new MembershipNoticeError('a membership notice is a map')
    if (m.t === 'leave' || m.t === 'drain' || m.t === 'stay') return { t: m.t }
    if (m.t === 'gone' && Array.isArray(m.ids) && m.ids.length <= MAX_GONE_IDS &&
      m.ids.every(id => typeof id === 'string' && id.length > 0 && id.length <= MAX_NOTICE_PEER_ID_CHARS)) return { t: 'gone', ids: m.ids }
    throw new MembershipNoticeError('malformed membership notice')
  }
})

export interface MembershipInit {
  /** Time a peer may be away before it is declared gone (default DEFAULT_FAILURE_TIMEOUT_MS). */
  failureTimeoutMs?: number
  /**
   * Time a host may be away (from its disconnect) before its fragments are rebuilt whatever its
   * chunks' spare (default: repairDelay(): DEFAULT_REPAIR_DELAY_MS, or the failure timeout when only that is given).
   */
  repairDelayMs?: number
  /**
   * The network's member table (members.ts): its members count for placement whether this host
   * is connected to them or not; beyond the full mesh only a member's XOR neighbours watch it,
   * and the one that gives it up publishes a DOWN notice (`publish`, gossip) the others take.
   */
  table?: MemberTable
  publish?: (msg: Uint8Array) => Promise<unknown>
  /**
   * Beyond the full mesh, whether a member answers a dial now: a watcher not connected to it
   * (either side trims connections) asks before giving it up. A probe that opened a connection
   * closes it once answered (cli/daemon.ts): left open, it put the host over its bound until
   * trimmed, and the trim made the member a suspect again (see BRIEF_CONNECTION_MS).
   */
  probe?: (peer: string) => Promise<boolean>
  /**
   * Clock in ms for this host's own intervals (a connection's age, the time a member has been away):
   * monotonic by default, so a wall clock stepped by NTP or a suspend changes no decision; tests give
   * their own.
   */
  now?: () => number
}

/**
 * Beyond the full mesh, a connection the peer closed within this of its opening says nothing of
 * the peer: no trim closes one so young (net/host.ts TRIM_GRACE_MS), so it was a watcher's probe,
 * which hangs up once answered. Taken as a sign of failure, each probe made the probed host
 * suspect its prober, probe it a failure timeout later and hang up in its turn: two watchers not
 * connected to each other probed each other every few minutes for good, on an idle network.
 */
export const BRIEF_CONNECTION_MS = TRIM_GRACE_MS

/**
 * Beyond the full mesh, a watcher's pass over the members it watches runs once per failure
 * timeout. A watched member this host is not connected to is made a suspect, to be probed when
 * its timeout ends: a disconnect is what makes a suspect, and a member whose watchers had all
 * closed or trimmed their connections to it (an unpopular member: none of its neighbours wanted
 * it among their own) saw no disconnect when it stopped, so nobody ever gave it up (one repair20
 * run: a stopped host not suspected in 900 s). A silent stop is given up within about two
 * timeouts then.
 */
export const WATCH_SHARE = 1
/**
 * The pass covers the members this host is one of the WATCH_PROBERS closest to (members.ts
 * watchedBy), not all NEIGHBOURS that watch a member: each probe is a dial and a handshake
 * (a few KB), and three independent probers are enough to give a stopped member up.
 */
export const WATCH_PROBERS = 3

/** Tries of a watcher's probe of a suspect (each address each time) before it is given up. */
export const PROBE_TRIES = 3
/** Time one dial of a probe may take. */
export const PROBE_TIMEOUT_MS = 10_000
/** Wait between two tries of a probe (doubled each time). */
export const PROBE_RETRY_MS = 5_000

/**
 * Whether a suspect answers a dial at one of `addrs` (its signed record's), tried PROBE_TRIES
 * times PROBE_RETRY_MS apart (doubling), each dial given PROBE_TIMEOUT_MS. One failed dial is no
 * proof: a busy host (its accept queue behind a loaded CPU, libp2p refusing inbound connections
 * at its cap) fails a handshake now and then, and each probe that gave a live member up sent a
 * DOWN notice that had every host of the network re-plan and survey at once (bench:scale, 30
 * hosts: each such storm of dials failed more probes). `dial` throws when the address does not
 * answer; `wait` sleeps (tests give their own).
 */
export async function probeMember (dial: (addr: string, timeoutMs: number) => Promise<void>, addrs: string[], opts: { tries?: number, retryMs?: number, timeoutMs?: number, wait?: (ms: number) => Promise<void>, onFail?: (addr: string, err: Error) => void } = {}): Promise<string | undefined> {
  const tries = opts.tries ?? PROBE_TRIES
  const wait = opts.wait ?? (async (ms: number) => { await new Promise(resolve => setTimeout(resolve, ms)) })
  let delay = opts.retryMs ?? PROBE_RETRY_MS
  for (let t = 0; t < tries; t++) {
    if (t > 0) { await wait(delay); delay *= 2 }
    for (const addr of addrs) {
      try {
        await dial(addr, opts.timeoutMs ?? PROBE_TIMEOUT_MS)
        return addr
      } catch (err) {
        opts.onFail?.(addr, err as Error)
      }
    }
  }
  return undefined
}

/** What a probe needs of the host (probePeer()). */
export type ProbeHost = Pick<Host, 'dial' | 'hangUp' | 'neighbours' | 'peers'>

/**
 * A probe of `peer` (the watch's or a suspect's, Membership's `probe`): whether it answers a dial
 * at one of `addrs` (probeMember()). A connection the probe opened is closed once it answered
 * unless the host keeps it: a neighbour's, or one `kept` names (Membership.watching(), which
 * the trim closes last). Left to the trim, any other put this host over its bound meanwhile;
 * hung up, a member the watch relies on was dialled again at every watch pass (bench:scale, 20
 * hosts: most of an idle host's new connections). Never throws for the hang-up.
 */
export async function probePeer (host: ProbeHost, peer: string, addrs: string[], kept: (peer: string) => boolean, opts: Parameters<typeof probeMember>[2] & { log?: (msg: string) => void } = {}): Promise<boolean> {
  const was = host.peers().some(p => p.id === peer)
  const at = await probeMember(async (addr, timeoutMs) => { await host.dial(addr, { timeoutMs }) }, addrs, opts)
  if (at === undefined) return false
  if (!was && !host.neighbours().includes(peer) && !kept(peer)) {
    await host.hangUp(peer).catch((err: Error) => { opts.log?.(`closing the probe's connection to ${peer}: ${err.message}`) })
  }
  return true
}

export type MembershipHost = Pick<Host, 'peerId' | 'peers' | 'addEventListener' | 'removeEventListener' | 'handle' | 'unhandle' | 'newStream'> & Partial<Pick<Host, 'beyondFullMesh' | 'closedHere' | 'trimmedThere' | 'peerIds'>>

export interface MembershipEvents {
  /** A peer was declared gone (timeout or leave notice): detail is its id. */
  gone: CustomEvent<string>
  /** A peer connected that was not a member (new, or back after being gone). */
  joined: CustomEvent<string>
  /** A suspect connected again before it was declared gone (it may have restarted, lost its disk). */
  back: CustomEvent<string>
  /** A peer declared gone by timeout stayed away for the repair delay (its fragments are rebuilt now). */
  lapsed: CustomEvent<string>
  /**
   * The members changed in a way none of the events above tells: a peer drains or stays, its
   * disk is full, or one this host never connected to is declared down by a neighbour's notice.
   * Repair plans over the members (keeper/repair.ts): its passes after this survey every chunk.
   */
  change: CustomEvent<string>
}

/**
 * A value worked out from what a change counter counts (Membership's up() and watching()):
 * kept until the counter moves, and only while `keep` (the table's events are heard, start() to
 * stop(): else a change would go unseen).
 */
class ChangeMemo<T> {
  private held: { changes: number, value: T } | undefined

  get (changes: number, keep: boolean, compute: () => T): T {
    if (keep && this.held !== undefined && this.held.changes === changes) return this.held.value
    const value = compute()
    this.held = keep ? { changes, value } : undefined
    return value
  }

  clear (): void {
    this.held = undefined
  }
}

/** A Set that calls `changed` on each add, delete and clear (Membership's memo of up()). */
class TrackedSet<T> extends Set<T> {
  private readonly changed: () => void
  constructor (changed: () => void) { super(); this.changed = changed }
  override add (v: T): this { if (!this.has(v)) this.changed(); return super.add(v) }
  override delete (v: T): boolean { const had = super.delete(v); if (had) this.changed(); return had }
  override clear (): void { if (this.size > 0) this.changed(); super.clear() }
}

/** A Map that calls `changed` when a key is added or removed (Membership's memo of up()). */
class TrackedMap<K, V> extends Map<K, V> {
  private readonly changed: () => void
  constructor (changed: () => void) { super(); this.changed = changed }
  override set (k: K, v: V): this { if (!this.has(k)) this.changed(); return super.set(k, v) }
  override delete (k: K): boolean { const had = super.delete(k); if (had) this.changed(); return had }
  override clear (): void { if (this.size > 0) this.changed(); super.clear() }
}

export class Membership extends EventTarget {
  private readonly host: MembershipHost
  private readonly timeoutMs: number
  private readonly repairDelayMs: number
  /**
   * Counts changes to what up() reads beyond the connections (the sets and maps below, the
   * table's members): its memo of the table's part is renewed when this moves.
   */
  private changes = 0
  private readonly bump = (): void => { this.changes++ }
  /** watching() as of `changes`. */
  private readonly watchMemo = new ChangeMemo<ReadonlySet<string>>()
  /** The table's members not left, gone here or away, as of `changes` (up()). */
  private readonly upMemo = new ChangeMemo<ReadonlySet<string>>()
  /** Peers declared gone by timeout, still within the repair delay -> when they went away, and the timer ending it. */
  private readonly awaySince = new TrackedMap<string, { since: number, timer: ReturnType<typeof setTimeout> }>(this.bump)
  /** Disconnected peers not yet gone -> timer declaring them gone. */
  private readonly suspect = new TrackedMap<string, ReturnType<typeof setTimeout>>(this.bump)
  /** Peers that announced they leave (ignored until they connect anew). */
  private readonly left = new TrackedSet<string>(this.bump)
  private readonly known = new Set<string>()
  /** Peers (or this host) draining before they leave: live, but not members for placement. */
  private readonly draining = new TrackedSet<string>(this.bump)
  /** Peers whose disk is full (space-notice.ts): live, a source of what they hold, not members. */
  private readonly full = new TrackedSet<string>(this.bump)
  private readonly table?: MemberTable
  private readonly publish?: (msg: Uint8Array) => Promise<unknown>
  private readonly probe?: (peer: string) => Promise<boolean>
  /** Peers declared gone here (timeout, heal, notices): not members, whatever the table says, until they connect or sign a newer record. */
  private readonly goneHere = new TrackedSet<string>(this.bump)
  /** Suspects being dialled before they are given up. */
  private readonly probing = new Set<string>()
  /** Watched members not connected here, dialled by the watch pass (check()). */
  private readonly checking = new Set<string>()
  /** Connected peers -> when their connection opened (this.now()). */
  private readonly connectedAt = new Map<string, number>()
  private readonly now: () => number
  private started = false
  private watchTimer: ReturnType<typeof setInterval> | undefined
  private unserve: (() => Promise<void>) | undefined
  private shutdown = new AbortController()
  private readonly onConnect = (evt: CustomEvent<string>): void => { this.connected(evt.detail) }
  private readonly onDisconnect = (evt: CustomEvent<string>): void => { this.disconnected(evt.detail) }
  /** A table member declared down by one of its neighbours: gone here unless it is connected here. */
  private readonly onDown = (evt: Event): void => {
    const peer = (evt as CustomEvent<string>).detail
    if (peer === this.host.peerId || this.host.peers().some(p => p.id === peer)) return
    this.declareGone(peer, false, true)
    this.markAway(peer)
  }
  /** A member heard of first (or again, after it was down) through the table. */
  private readonly onMember = (evt: Event): void => {
    const peer = (evt as CustomEvent<string>).detail
    if (peer === this.host.peerId || this.suspect.has(peer) || this.host.peers().some(p => p.id === peer)) return
    this.goneHere.delete(peer)
    this.notAway(peer)
    if (!this.known.has(peer)) {
      this.known.add(peer)
      this.left.delete(peer)
      this.dispatchEvent(new CustomEvent('joined', { detail: peer }))
    }
  }
  private readonly onExpired = (evt: Event): void => {
    const peer = (evt as CustomEvent<string>).detail
    if (!this.host.peers().some(p => p.id === peer)) { this.declareGone(peer, false, true); this.markAway(peer) }
  }

  constructor (host: MembershipHost, init: MembershipInit = {}) {
    super()
    this.host = host
    this.timeoutMs = init.failureTimeoutMs ?? DEFAULT_FAILURE_TIMEOUT_MS
    this.repairDelayMs = repairDelay(init.failureTimeoutMs, init.repairDelayMs)
    this.table = init.table
    this.publish = init.publish
    this.probe = init.probe
    this.now = init.now ?? (() => performance.now())
    if (!(this.timeoutMs >= 0)) throw new RangeError(`failure timeout must be >= 0 ms, got ${this.timeoutMs}`)
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.shutdown = new AbortController()
    for (const p of this.host.peers()) this.known.add(p.id)
    this.host.addEventListener('peer:connect', this.onConnect)
    this.host.addEventListener('peer:disconnect', this.onDisconnect)
    // every change to the table's members comes with one of these (members.ts): up()'s memo is renewed
    for (const type of ['down', 'member', 'expired']) this.table?.addEventListener(type, this.bump)
    this.table?.addEventListener('down', this.onDown)
    this.table?.addEventListener('member', this.onMember)
    this.table?.addEventListener('expired', this.onExpired)
    this.unserve = await serve(this.host, MEMBERSHIP, { notice: (n, { peer }) => { this.take(n, peer) } })
    if (this.table !== undefined) {
      this.watchTimer = setInterval(() => { this.watch() }, Math.max(1_000, this.timeoutMs * WATCH_SHARE))
      this.watchTimer.unref?.()
    }
  }

  /**
   * Beyond the full mesh, the members whose connections to this host the watch relies on: those
   * this host watches (watch()) and its own watchers (the WATCH_PROBERS members it is closest
   * to watch it). The host's trim closes them last (host.ts keepFirst()), and a probe that
   * opened a connection to one leaves it open (probePeer()): a watched member connected here
   * is not dialled again. Before, the trim closed such connections as readily as a transfer's
   * and the probe hung up on its own: at 20 hosts (bound 6) two of a host's three watched
   * members were not among its neighbours, and each watch pass dialled them again, with
   * identify, an op sync and the notices every new connection costs (bench:scale's idle
   * traffic). Kept until the members change. Empty within the full mesh (every member is
   * connected there).
   */
  watching (): ReadonlySet<string> {
    const table = this.table
    if (table === undefined || this.host.beyondFullMesh?.() !== true) return new Set()
    return this.watchMemo.get(this.changes, this.started, () => {
      const set = new Set([...table.watchedBy(this.host.peerId, WATCH_PROBERS), ...(table.has(this.host.peerId) ? table.neighbours(this.host.peerId, WATCH_PROBERS) : [])])
      for (const p of set) if (this.left.has(p) || this.goneHere.has(p)) set.delete(p)
      return set
    })
  }

  /**
   * One watch pass (every WATCH_SHARE of the failure timeout): beyond the full mesh, the members
   * this host is one of the WATCH_PROBERS closest to that it is not connected to, and that nobody declared gone, become
   * suspects; each is probed when its timeout ends and given up only if it does not answer (a
   * member that answers was only not wanted as a connection). Returns the new suspects.
   */
  watch (): string[] {
    const table = this.table
    if (!this.started || table === undefined || this.host.beyondFullMesh?.() !== true) return []
    const connected = new Set(this.host.peers().map(p => p.id))
    const out: string[] = []
    for (const p of table.watchedBy(this.host.peerId, WATCH_PROBERS)) {
      if (connected.has(p) || this.suspect.has(p) || this.checking.has(p) || this.left.has(p) || this.goneHere.has(p) || this.awaySince.has(p)) continue
      out.push(p)
      if (this.probe === undefined) this.suspectPeer(p)
      else this.check(p, this.probe)
    }
    if (out.length > 0) log('watched members not connected here, %s: %s', this.probe === undefined ? 'probed at their timeout' : 'probed now', out.join(', '))
    return out
  }

  /**
   * A watched member not connected here is dialled at once (the watch pass): one that answers
   * was only not wanted as a connection and is no suspect; one that does not becomes a suspect,
   * probed again at its timeout and given up only then. Made a suspect first and probed a
   * failure timeout later, every watched member some neighbour had trimmed was a suspect nearly
   * all the time (a pass each timeout, a suspect for a timeout): bench:scale's hosts never all
   * had none at once, at 20 hosts as at 50, and its repair never counted as settled. The dials
   * are as many as before (one per such member per pass), only earlier.
   */
  private check (peer: string, probe: (peer: string) => Promise<boolean>): void {
    this.checking.add(peer)
    void probe(peer).catch((err: unknown) => {
      log('probe of watched %s failed: %e', peer, err)
      return false
    }).then(alive => {
      this.checking.delete(peer)
      if (!this.started || alive || this.left.has(peer) || this.goneHere.has(peer) || this.awaySince.has(peer)) return
      log('watched %s does not answer: a suspect, probed again at its timeout', peer)
      this.suspectPeer(peer)
    })
  }

  /** A peer's notice. */
  private take (n: MembershipNotice, peer: string): void {
    log('%s notice from %s', n.t, peer)
    switch (n.t) {
      case 'leave': this.declareGone(peer, true); break
      case 'drain': if (!this.draining.has(peer)) { this.draining.add(peer); this.changed(peer) } break
      case 'stay': if (this.draining.delete(peer)) this.changed(peer); break
      // those of its ids that are suspects here are gone (a peer still connected to one keeps it)
      // (and those away here are not waited for: the operator says they will not be back)
      case 'gone': for (const id of n.ids) { if (this.suspect.has(id)) this.declareGone(id, false); this.notAway(id) } break
    }
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.shutdown.abort()
    clearInterval(this.watchTimer)
    this.watchTimer = undefined
    this.host.removeEventListener('peer:connect', this.onConnect)
    this.host.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const type of ['down', 'member', 'expired']) this.table?.removeEventListener(type, this.bump)
    this.table?.removeEventListener('down', this.onDown)
    this.table?.removeEventListener('member', this.onMember)
    this.table?.removeEventListener('expired', this.onExpired)
    this.upMemo.clear()
    this.watchMemo.clear()
    for (const t of this.suspect.values()) clearTimeout(t)
    this.suspect.clear()
    for (const a of this.awaySince.values()) clearTimeout(a.timer)
    this.awaySince.clear()
    this.connectedAt.clear()
    await this.unserve?.()
    this.unserve = undefined
  }

  /** Connected peers, this host included (ids). */
  live (): string[] {
    // the connected ids alone (Host.peerIds): peers() looks up every peer's addresses, and a
    // range read asks who is up and who the members are (live() twice) once per 4 KiB read
    const ids = this.host.peerIds?.() ?? this.host.peers().map(p => p.id)
    return [this.host.peerId, ...ids.filter(p => !this.left.has(p))]
  }

  /**
   * Hosts taken to be up, this host included: in a full mesh the connected ones (live()). Beyond
   * it a host is connected to a few members only, and a closed connection is no sign of failure
   * (either side may have trimmed it): the table's members are up unless declared down (a
   * neighbour's DOWN notice, a leave, heal) or away. A suspect is up until it is declared gone:
   * beyond the full mesh a neighbour's trimmed connection makes it one (it is probed at the
   * failure timeout), and counting it down made every chunk it holds look short for minutes
   * after each trim, a pass every interval on an idle network. Repair plans and surveys over
   * these (keeper/repair.ts), so a chunk whose targets are up but not connected here is not short
   * of them, and one keeper (the first-ranked up member) repairs it, not every host connected to
   * none of its targets.
   */
  up (): string[] {
    return [...this.upSet()]
  }

  /**
   * up() as a set, for reads that ask of a few hosts whether they are up (keeper/network.ts
   * reachable()): beyond the full mesh the table's part is kept until the members change (any
   * change to the table, or to who left, is gone here or away), so a read costs O(connections),
   * not O(members) (at 50 hosts a set of all members was built per 4 KiB read). The connected
   * peers are read each time: they are usually members already, and then the kept set is the
   * answer as it is.
   */
  upSet (): ReadonlySet<string> {
    const live = this.live()
    if (this.table === undefined || this.host.beyondFullMesh?.() !== true) return new Set(live)
    const table = this.table
    const members = this.upMemo.get(this.changes, this.started, () => {
      const set = new Set<string>()
      for (const p of table.members()) {
        if (!this.left.has(p) && !this.goneHere.has(p) && !this.awaySince.has(p)) set.add(p)
      }
      return set
    })
    if (live.every(p => members.has(p))) return members
    return new Set([...members, ...live])
  }

  /**
   * Live and suspect peers, and the table's members (connected or not), this host included, less
   * those draining or full: the set placement ranks.
   */
  members (): string[] {
    const table = this.table?.members().filter(p => !this.left.has(p) && !this.goneHere.has(p)) ?? []
    return [...new Set([...this.live(), ...this.suspect.keys(), ...table])].filter(p => !this.draining.has(p) && !this.full.has(p))
  }

  /**
   * A peer's disk is full (its store takes no new blocks) or has room again (space-notice.ts).
   * A peer with room again is a member again: 'joined'.
   */
  setFull (peer: string, full: boolean): void {
    if (full) { if (!this.full.has(peer)) { this.full.add(peer); this.changed(peer) } } else if (this.full.delete(peer)) this.dispatchEvent(new CustomEvent('joined', { detail: peer }))
  }

  /** Peers whose disk is full. */
  fullHosts (): string[] {
    return [...this.full]
  }

  /** Peers (this host included) draining before they leave. */
  drainers (): string[] {
    return [...this.draining]
  }

  /** Leave this host out of placement here and at every connected peer (`darkfs leave` starts). */
  async announceDrain (): Promise<void> {
    this.draining.add(this.host.peerId)
    this.changed(this.host.peerId)
    await this.notify({ t: 'drain' })
  }

  /** Undo announceDrain (the leave failed; this host stays a member). */
  async announceStay (): Promise<void> {
    if (this.draining.delete(this.host.peerId)) this.changed(this.host.peerId)
    await this.notify({ t: 'stay' })
  }

  /**
   * Whether the peer is declared down here: it left, a neighbour's DOWN notice or heal says it is
   * gone, or it is away past the failure timeout (the host's long link draws none of these).
   */
  down (peer: string): boolean {
    return this.left.has(peer) || this.goneHere.has(peer) || this.awaySince.has(peer)
  }

  /** Peers away for less than the failure timeout. */
  suspects (): string[] {
    return [...this.suspect.keys()]
  }

  /**
   * Peers declared gone by timeout that have been away for less than the repair delay: their
   * fragments may still be on their disks (lazy repair, keeper/lazy.ts).
   */
  away (): string[] {
    return [...this.awaySince.keys()]
  }

  /**
   * The away peers (as away() lists them) -> how long each has been away (ms, from about when it
   * disconnected): a chunk at k live waits for its away holders only the at-risk delay
   * (keeper/lazy.ts stopWaiting()).
   */
  awayFor (): Map<string, number> {
    const now = this.now()
    return new Map([...this.awaySince].map(([peer, a]) => [peer, Math.max(0, now - a.since)]))
  }

  /** A peer declared gone by timeout: away from about when it disconnected, for the rest of the repair delay. */
  private markAway (peer: string): void {
    if (this.awaySince.has(peer) || this.left.has(peer)) return
    // it disconnected a failure timeout ago (here, or at the neighbour whose DOWN notice came)
    // (on the monotonic clock: a wall clock stepped ahead ended the at-risk wait at once)
    const since = this.now() - this.timeoutMs
    const left = since + this.repairDelayMs - this.now()
    if (left <= 0) return
    const timer = setTimeout(() => {
      if (this.awaySince.get(peer)?.timer !== timer) return
      this.awaySince.delete(peer)
      this.dispatchEvent(new CustomEvent('lapsed', { detail: peer }))
    }, left)
    timer.unref?.()
    this.awaySince.set(peer, { since, timer })
  }

  /** Back, left for good or declared gone by the operator: no longer away. */
  private notAway (peer: string): void {
    const a = this.awaySince.get(peer)
    if (a === undefined) return
    clearTimeout(a.timer)
    this.awaySince.delete(peer)
  }

  /**
   * Declare every suspect gone now (`darkfs heal`: the operator says they will not be back),
   * here and at every connected peer (a peer still connected to one of them keeps it).
   */
  async expire (): Promise<string[]> {
    const gone = [...this.suspect.keys()]
    for (const p of gone) this.declareGone(p, false)
    // the operator says they will not be back: the peers already away are not waited for either
    const away = this.away()
    for (const p of away) this.notAway(p)
    if (away.length > 0) this.dispatchEvent(new CustomEvent('lapsed', { detail: away[0] }))
    for (let i = 0; i < gone.length; i += MAX_GONE_IDS) await this.notify({ t: 'gone', ids: gone.slice(i, i + MAX_GONE_IDS) })
    // hosts this one is not connected to hear it from DOWN notices (taken from a neighbour of each)
    for (const p of gone) {
      const down = this.table === undefined || this.publish === undefined ? undefined : await this.table.signDown(p)
      if (down !== undefined) await this.publish?.(down)
    }
    return gone
  }

  /** Tell every connected peer that this host leaves (after it drained). */
  async announceLeave (): Promise<void> {
    // beyond the peers it is connected to, the network hears it from its own DOWN notice
    const down = this.table === undefined || this.publish === undefined ? undefined : await this.table.signDown(this.host.peerId)
    if (down !== undefined) await this.publish?.(down)
    await this.notify({ t: 'leave' })
  }

  /**
   * Tell every connected peer; those it did not go through to are told again in the background
   * (resend()). Resolves after the first round.
   */
  private async notify (notice: MembershipNotice): Promise<void> {
    const told = new Set(await broadcast(this.host, MEMBERSHIP, notice, { signal: this.shutdown.signal }))
    for (const p of this.host.peers()) if (!told.has(p.id)) void this.resend(p.id, notice)
  }

  /** Send one peer a notice again, with backoff, until it goes through, the peer disconnects or this stops. */
  private async resend (peer: string, notice: MembershipNotice): Promise<void> {
    let wait = MEMBERSHIP_RETRY_MS
    for (let attempt = 0; attempt < MEMBERSHIP_RETRIES; attempt++) {
      await new Promise(resolve => setTimeout(resolve, wait).unref?.())
      wait = Math.min(wait * 2, MEMBERSHIP_RETRY_MAX_MS)
      if (!this.started || !this.host.peers().some(p => p.id === peer)) return
      try {
        await notify(this.host, peer, MEMBERSHIP, notice, { signal: this.shutdown.signal })
        return
      } catch (err) {
        log('%s notice to %s (try %d) failed: %e', notice.t, peer, attempt + 2, err)
      }
    }
  }

  private connected (peer: string): void {
    this.connectedAt.set(peer, this.now())
    // a peer that connects forgets that this host drains (below, on its side): tell it again
    if (this.draining.has(this.host.peerId)) void notify(this.host, peer, MEMBERSHIP, { t: 'drain' }, { signal: this.shutdown.signal })
      .catch((err: unknown) => { log('drain notice to %s failed: %e', peer, err); void this.resend(peer, { t: 'drain' }) })
    const timer = this.suspect.get(peer)
    if (timer !== undefined) {
      clearTimeout(timer)
      this.suspect.delete(peer)
      // back before the timeout: it never stopped being a member (one this host dialled to
      // see whether it is there was never away; beyond the full mesh a suspect is a neighbour
      // whose connection was trimmed, and every dial to it, a survey's among them, would call
      // for another pass, on an idle network without end; a copy lost with a restart is then
      // found by the next pass an event or the quiet interval brings)
      if (!this.probing.has(peer) && this.host.beyondFullMesh?.() !== true) this.dispatchEvent(new CustomEvent('back', { detail: peer }))
      return
    }
    // beyond the full mesh a member this host knows connects and disconnects as the hosts trim
    // and dial (a transfer, a query): that is no join, and a 'joined' each time made every such
    // connection start a repair pass on an idle network
    const rejoined = !this.known.has(peer) || this.host.beyondFullMesh?.() !== true || this.goneHere.has(peer) || this.left.has(peer)
    this.left.delete(peer)
    this.goneHere.delete(peer)
    this.notAway(peer)
    this.draining.delete(peer) // a new connection: whatever it was draining for is over
    this.known.add(peer)
    if (rejoined) this.dispatchEvent(new CustomEvent('joined', { detail: peer }))
  }

  private disconnected (peer: string): void {
    if (this.host.peers().some(p => p.id === peer)) return
    const opened = this.connectedAt.get(peer)
    this.connectedAt.delete(peer)
    if (this.left.has(peer) || this.suspect.has(peer)) return
    const table = this.table
    if (table !== undefined && this.host.beyondFullMesh?.() === true) {
      // beyond the full mesh a closed connection is no sign of failure (either side may have
      // trimmed it): only the member's neighbours watch it (a peer whose record has not come
      // yet is no member to watch), and not on a close this host made (its trim, its probe's
      // hang-up), nor one the peer said it made to keep its bound (its trim: host.ts
      // TRIM_PROTOCOL), nor a brief connection the peer closed (its probe: BRIEF_CONNECTION_MS). A
      // member a watcher trimmed is still watched by the neighbours it keeps connected, which
      // are among its watchers (net/host.ts: it dials its closest members and redials them). A
      // neighbour this host chose that closed it soon after it opened (over its own bound) is
      // still a suspect: leaving those out, a stopped host was given up by no one (cluster
      // members test, 8 hosts, bound 3).
      if (this.host.closedHere?.(peer) === true || this.host.trimmedThere?.(peer) === true) return
      if (opened !== undefined && this.now() - opened < BRIEF_CONNECTION_MS) return
      if (table.has(peer) && table.neighbours(peer).includes(this.host.peerId)) this.suspectPeer(peer)
      return
    }
    this.suspectPeer(peer)
  }

  private suspectPeer (peer: string): void {
    if (this.suspect.has(peer) || this.host.peers().some(p => p.id === peer)) return
    const timer = setTimeout(() => { this.giveUp(peer) }, this.timeoutMs)
    timer.unref?.()
    this.suspect.set(peer, timer)
  }

  /**
   * A suspect away for the failure timeout: gone here, and (a table member) DOWN for everyone.
   * Beyond the full mesh it is first dialled: one that answers was only trimmed, and stays a
   * member without a word (no 'back': nothing happened to it).
   */
  private giveUp (peer: string): void {
    if (this.probe !== undefined && this.host.beyondFullMesh?.() === true && this.suspect.has(peer)) {
      this.probing.add(peer)
      void this.probe(peer).catch((err: unknown) => {
        log('probe of %s failed: %e', peer, err)
        return false
      }).then(alive => {
        this.probing.delete(peer)
        if (!this.started || !this.suspect.has(peer)) return
        if (!alive) {
          this.lost(peer)
          return
        }
        clearTimeout(this.suspect.get(peer))
        this.suspect.delete(peer)
      })
      return
    }
    this.lost(peer)
  }

  private lost (peer: string): void {
    this.declareGone(peer, false)
    this.markAway(peer)
    if (this.table === undefined || this.publish === undefined) return
    const publish = this.publish
    void this.table.signDown(peer).then(async msg => {
      if (msg !== undefined) await publish(msg)
    }).catch((err: unknown) => { log('down notice for %s not published: %e', peer, err) })
  }

  private declareGone (peer: string, leaving: boolean, member = false): void {
    const timer = this.suspect.get(peer)
    if (timer !== undefined) clearTimeout(timer)
    const wasMember = this.suspect.delete(peer) || leaving || (member && this.known.has(peer))
    const newly = !this.goneHere.has(peer)
    this.goneHere.add(peer)
    if (leaving) { this.left.add(peer); this.notAway(peer) }
    this.draining.delete(peer)
    this.full.delete(peer)
    this.known.delete(peer)
    if (wasMember) this.dispatchEvent(new CustomEvent('gone', { detail: peer }))
    // a table member this host never connected to (a neighbour's DOWN notice): no 'gone', but
    // no longer a member here
    else if (newly) this.changed(peer)
  }

  /** The members changed with no other event to say so ('change'). */
  private changed (peer: string): void {
    this.dispatchEvent(new CustomEvent('change', { detail: peer }))
  }
}
