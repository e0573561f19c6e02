// The member table on a running host (issue 14 item 3; the table and its rules: members.ts):
//  - this host signs its record when it starts, every memberRefreshMs(table size) (a day and
//    more: members.ts says why), and at once when a
//    neighbour declared it down (it is not: the newer record brings it back everywhere), and
//    publishes it on gossip (tagged: host.ts routes it here, never to the op handler);
//  - records and DOWN notices from gossip go into the table (a refused one blames its
//    forwarder, as a bad op does); new members' addresses go to the host (dialable by id);
//  - it answers MEMBERS_PROTOCOL with its table, and pulls the table from its first peers (until
//    one answered, TABLE_PULL_PEERS tries; a peer that connected before it served its table, as
//    a joiner does while its host dials, is asked again: TABLE_PULL_RETRY_MS, TABLE_PULL_RETRIES);
//  - a record published before gossip knows who listens (a host that just started) reaches
//    nobody: it is published again, with backoff (ANNOUNCE_RETRY_*), until some peer got it;
//  - anti-entropy: every TABLE_SYNC_MS it asks one connected peer (in turn) for its table's
//    digest, and pulls the table only when the digests differ: 32 bytes a round when the tables
//    agree, however big the network (gossip during startup, before meshes form, misses some).
//    Digests that differ are compared once more TABLE_SYNC_RECHECK_MS later before the table is
//    pulled: a record or DOWN notice still spreading (gossip reaches 99% of 10,000 hosts in a
//    quarter of a second) makes two tables differ for a moment, and a pull moves the whole table
//    (megabytes at scale) for a difference gossip was about to mend. A host that was in step
//    with a peer's table before (a digest round found them alike) pulls only what the peer took
//    since then, less MEMBER_MAX_SKEW_MS (members.ts: a host back from an outage missed the
//    records and DOWN notices of that time, a handful, not the table), and the whole table only
//    when that left the digests apart (or the peer is of an older version). Table answers of more
//    than TABLE_ANSWER_UNPACED messages are paced per peer (a big answer of changes is followed
//    by the whole table when the peer asks for it next: the same round's second pull);
//  - in a large network, beyond the full mesh, once every member takes sync rounds (opts.gossips,
//    from the features in their records), member messages are no longer published on gossip but pushed by their
//    author to its connections; the round with a peer that announced memberpull/1 (opts.syncs)
//    is a sync round (members.ts: the states this host took lately named, the peer's that it
//    lacks answered, and a digest that leaves out what is still spreading), and that is how
//    records and DOWN notices reach every host, each about once; pushes go on a protocol of
//    their own (MEMBER_PUSH_PROTOCOL: a push and a call on one protocol shared its admit, so a
//    peer whose call budget was spent had its pushes refused unread, its own DOWN as it leaves
//    included; a push's frame is small and read whole, its budget is the push budget,
//    member-gate.ts), to a peer of an older version on MEMBERS_PROTOCOL as before (one known
//    so only once a push there went through: a host still starting serves neither; forgotten
//    when it disconnects: it may come back upgraded);
//  - records no one refreshed for memberExpireMs(table size) leave the table (checked every
//    MEMBER_REFRESH_CHECK_MS).
import type { Host, GossipVerdict } from './host.ts'
import { MAX_SYNC_ANSWER_BYTES, MEMBERS, MEMBERS_GOSSIP_TAG, MEMBER_PUSHES, MEMBER_SYNC_KEYS_MS, MembersBusyError, memberRefreshMs, pullMembers } from './members.ts'
import { BUDGETS_KEPT, MemberGate, TABLE_CALL_COST, TablePacing } from './member-gate.ts'
import type { MemberTable, MembersReply } from './members.ts'
import { RpcProtocolError, RpcTooLargeError, call, notify, serve } from './rpc.ts'
import { startAntiEntropy } from './anti-entropy.ts'
import { equalBytes } from '../bytes.ts'
import { logger } from '../log.ts'

const log = logger('net:members')

/** Peers asked for their table at start, one after another, until one answers. */
export const TABLE_PULL_PEERS = 3
/** A failed table pull from a peer is tried again after this, doubling, at most TABLE_PULL_RETRIES times per peer. */
export const TABLE_PULL_RETRY_MS = 1_000
export const TABLE_PULL_RETRIES = 3
/** Table answers are paced: at most one per peer this often (a table is big at scale), */
export const TABLE_ANSWER_MIN_INTERVAL_MS = 10_000
/** but for answers of up to this many messages (what changed since the asker was in step). */
export const TABLE_ANSWER_UNPACED = 256
/** A record that reached no peer is published again after this, doubling up to the max. */
export const ANNOUNCE_RETRY_MS = 500
export const ANNOUNCE_RETRY_MAX_MS = 30_000
/** One digest comparison with a connected peer this often. */
export const TABLE_SYNC_MS = 15_000
/** How often a host checks whether its record is due (memberRefreshMs) and drops expired ones. */
export const MEMBER_REFRESH_CHECK_MS = 3600_000
/** Digests that differed are compared again after this before the table is pulled. */
export const TABLE_SYNC_RECHECK_MS = 5_000
/**
 * A whole table pulled by anti-entropy (the tables apart: a partition healed, a change missed
 * past the windows) brings its new members as changes, named and offered on in the next sync
 * rounds as pushed ones are, up to this many (the rest held, found by the digests: a restarting
 * host's first pull brings every member and offers none, members.ts take()).
 */
export const PULLED_OFFERED = 256
/** A peer that refused a call over this host's budget there (MembersBusyError) is not asked again for this long. */
export const BUSY_BACKOFF_MS = 2 * TABLE_SYNC_MS
export { PUSH_BURST, PUSH_REFILL_MS, PUSH_REFUSED_COST } from './member-gate.ts'

export type MemberServiceHost = Pick<Host, 'peerId' | 'peers' | 'addresses' | 'gossip' | 'remember' | 'handle' | 'unhandle' | 'newStream' | 'addEventListener' | 'removeEventListener'>

export interface MemberService {
  /** Publish a signed message (this host's record, a DOWN notice) on gossip. */
  publish: (msg: Uint8Array) => Promise<string[]>
  /**
   * Pull a peer's table into this one (records and DOWN notices checked one by one); with
   * `since` (this host's clock), only what the peer took since then (members.ts). How many were new.
   */
  pull: (peer: string, since?: number) => Promise<number>
  /**
   * Whether this table was filled from a peer's since start: one pulled, or a digest that matched
   * a peer's (before, it may lack members: net/features.ts asks it).
   */
  pulled: () => boolean
  /** When (this host's clock) a digest round last found this table like a peer's: later rounds pull what changed since. */
  inStepAt: () => number | undefined
  /** Pushes handled since start: taken (new or not), refused (PUSH_REFUSED_COST; malformed or oversized requests too), dropped over a peer's budget. */
  pushes: () => { taken: number, refused: number, dropped: number }
  /** Calls (sync, digest, table) answered since start, and refused over the asker's budget or the shared one (member-gate.ts); `unread`: of those refused, before their request was decoded. */
  calls: () => { answered: number, refused: number, unread: number }
  stop: () => Promise<void>
}

export interface MemberServiceOptions {
  /**
   * Whether `peer` takes sync requests (it announced memberpull/1, members.ts; the daemon: and
   * the table holds MEMBER_PULL_MIN_MEMBERS members or more): the anti-entropy round with it is a
   * sync round (it carries the changes still spreading); else a digest round. Default: none does.
   */
  syncs?: (peer: string) => boolean
  /**
   * Whether member messages (this host's record, DOWN notices) are published on gossip (the
   * daemon: below MEMBER_PULL_MIN_MEMBERS members, in a full mesh, and while some member is not
   * known to take sync rounds, features.ts supportedByAll). Default: always.
   */
  gossips?: () => boolean
  /**
   * Called after each table pulled from a peer (at start, and when anti-entropy found the tables
   * differ): the keeper pulls that peer's table of keeper counts then (keeper/kept-service.ts),
   * once the hosts its records name are members here.
   */
  onPulled?: (peer: string) => void
}

export async function startMemberService (host: MemberServiceHost, table: MemberTable, opts: MemberServiceOptions = {}): Promise<MemberService> {
  let stopped = false
  let pulled = false
  /** Big table answers paced per asker (at most BUDGETS_KEPT askers remembered: member-gate.ts). */
  const pacing = new TablePacing(TABLE_ANSWER_MIN_INTERVAL_MS)

  const syncs = opts.syncs ?? (() => false)
  const gossips = opts.gossips ?? (() => true)
  const publish = async (msg: Uint8Array): Promise<string[]> => {
    // every member pulls: the message is in this table (signOwn, signDown took it), offered to
    // the next sync requests that do not name it, and pushed to the connections (the spread
    // starts from them: every one takes pushes, or gossips() would say so, and one not yet
    // identified here is no exception); a host that leaves waits for the pushes of its own DOWN
    // notice (it is gone before its peers' rounds would pull it from it: those that took it
    // offer it on, as any other change), and says which peers took them
    if (!gossips()) {
      const to = host.peers().map(p => p.id)
      const pushed = Promise.all(to.map(async peer => await push(peer, msg).then(() => peer, (err: unknown) => {
        log('member message not pushed to %s: %e', peer, err)
        return undefined
      })))
      if (!table.leaves()) {
        void pushed
        return []
      }
      return (await pushed).filter(p => p !== undefined)
    }
    const data = new Uint8Array(msg.byteLength + 1)
    data[0] = MEMBERS_GOSSIP_TAG
    data.set(msg, 1)
    try {
      return await host.gossip.publish(data)
    } catch (err) {
      // no subscribed peer yet (gossipsub refuses to publish to nobody): the table pull covers it
      log('member message not published: %e', err)
      return []
    }
  }

  /**
   * Peers that do not speak MEMBER_PUSH_PROTOCOL (an older version): pushed to on MEMBERS (at
   * most BUDGETS_KEPT, the oldest forgotten). Marked only when the push on MEMBERS went through
   * (a host still starting serves neither yet), forgotten when the peer disconnects (it may come
   * back upgraded).
   */
  const oldPushees = new Set<string>()
  const push = async (peer: string, msg: Uint8Array): Promise<void> => {
    if (!oldPushees.has(peer)) {
      try {
        await notify(host, peer, MEMBER_PUSHES, { t: 'push', m: msg })
        return
      } catch (err: any) {
        if (err?.name !== 'UnsupportedProtocolError') throw err
      }
      await notify(host, peer, MEMBERS, { t: 'push', m: msg })
      log('%s does not take member pushes on their own protocol: pushed on the members protocol', peer)
      oldPushees.add(peer)
      if (oldPushees.size > BUDGETS_KEPT) oldPushees.delete(oldPushees.values().next().value!)
      return
    }
    await notify(host, peer, MEMBERS, { t: 'push', m: msg })
  }
  const onDisconnect = (e: Event): void => {
    oldPushees.delete((e as CustomEvent<string>).detail)
  }
  host.addEventListener('peer:disconnect', onDisconnect)

  const remember = async (peers: string[]): Promise<void> => {
    const list = peers.map(p => table.record(p)).filter(r => r !== undefined).map(r => ({ id: r.peer, addrs: r.addrs }))
    if (list.length > 0) await host.remember(list)
  }

  // a member's first or newer record: its addresses to the host (dialable by id)
  const onMember = (e: Event): void => {
    remember([(e as CustomEvent<string>).detail]).catch((err: unknown) => { log('addresses of a member not kept: %e', err) })
  }
  table.addEventListener('member', onMember)

  host.gossip.handleTagged(MEMBERS_GOSSIP_TAG, async (data): Promise<GossipVerdict> => {
    const r = await table.take(data)
    return r === 'new' ? 'accept' : r === 'old' ? 'ignore' : 'reject'
  })

  // the budgets per peer and the author check (member-gate.ts)
  const gate = new MemberGate(table)

  // a change its author pushed: taken as from gossip, once the peer's budget allows one
  const pushed = async (n: { m: Uint8Array }, { peer }: { peer: string }): Promise<void> => {
    const r = await gate.push(peer, n.m)
    if (r === 'dropped') log('member message pushed by %s dropped: over its push budget', peer)
    else if (r === 'refused') log('member message pushed by %s refused', peer)
  }
  // a malformed request or push, or one over the protocol's bound (refused from its frame's
  // length), is charged to its sender's push budget as a refused push
  const malformed = (err: Error, peer: string): void => {
    if (!(err instanceof RpcProtocolError) && !(err instanceof RpcTooLargeError)) return
    gate.refused(peer)
  }
  // pushes on their own protocol: no admit (a push is one small frame, read whole; the push
  // budget drops a flood of them before any signature check, and lets a host's own DOWN as it
  // leaves through once, member-gate.ts push())
  const unservePushes = await serve(host, MEMBER_PUSHES, { notice: pushed }, { onError: malformed })
  const unserve = await serve(host, MEMBERS, {
    // a push from a host of an older version (this version pushes on MEMBER_PUSH_PROTOCOL)
    notice: pushed,
    call: async (req, { peer }): Promise<MembersReply> => {
      // over the asker's budget: refused before any table work (MembersBusyError)
      gate.call(peer, req)
      if (req.t === 'digest') return { t: 'digest', d: table.digest() }
      if (req.t === 'sync') return { t: 'sync', ...table.syncAnswer(req.k) }
      const members = table.messages(req.since)
      if (members.length <= TABLE_ANSWER_UNPACED) return { t: 'table', members }
      // a big answer (the whole table, or changes since a time before most of it) costs
      // TABLE_CALL_COST in all: one unit was taken up front (member-gate.ts callCost)
      gate.charge(peer, TABLE_CALL_COST - 1)
      // paced: one big answer per interval, and the whole table pulled right after a paced answer
      // of changes (its round's second pull: a long partition left the tables apart)
      return { t: 'table', members: pacing.answer(peer, req.since !== undefined) ? members : [] }
    }
  }, {
    // a peer with no unit of its call budget left is refused before its frame is decoded (a
    // push on this protocol from it too: only a host of an older version pushes here)
    admit: peer => gate.admit(peer),
    onError: malformed
  })

  // peers that refused a call over this host's budget there: left alone until then
  const busyUntil = new Map<string, number>()
  const noteBusy = (peer: string, err: unknown): void => {
    if (!(err instanceof MembersBusyError)) return
    // (the monotonic clock: a wall clock stepped neither ends the backoff nor stretches it)
    busyUntil.set(peer, performance.now() + BUSY_BACKOFF_MS)
    for (const [p, until] of busyUntil) if (until <= performance.now()) busyUntil.delete(p)
  }
  const askable = (peer: string): boolean => (busyUntil.get(peer) ?? -Infinity) <= performance.now()

  const pull = async (peer: string, since?: number): Promise<number> => {
    const reply = await call(host, peer, MEMBERS, since === undefined ? { t: 'table' } : { t: 'table', since }).catch((err: unknown) => {
      noteBusy(peer, err)
      throw err
    })
    const members = reply.t === 'table' ? reply.members : []
    let fresh = 0
    // a whole table pulled at start brings no changes to offer on (members.ts take()); one
    // pulled later (the tables apart) brings its new members as changes, up to PULLED_OFFERED
    const later = pulled
    for (const msg of members) {
      if (stopped) break
      if (await table.take(msg, members.length, since !== undefined || (later && fresh < PULLED_OFFERED)) === 'new') fresh++
    }
    // an empty answer is a paced one (TABLE_ANSWER_MIN_INTERVAL_MS): nothing was pulled
    if (members.length === 0) {
      if (since === undefined) throw new MembersBusyError(`members: ${peer} paced its whole table`)
      return fresh
    }
    if (!stopped) opts.onPulled?.(peer)
    return fresh
  }

  /** Sign this host's record and publish it; true when some peer got it by gossip. */
  const announce = async (): Promise<boolean> => {
    const msg = await table.signOwn(host.addresses())
    // a host that declared itself down (it leaves) announces nothing: done; with every member
    // pulling, the record is in the table, offered to the next sync requests (and pushed): done
    if (msg === undefined) return true
    const pulling = !gossips()
    const reached = await publish(msg)
    return pulling || reached.length > 0
  }

  /** Announce until some peer got the record (one loop at a time). */
  let announcing: Promise<void> | undefined
  let again: ReturnType<typeof setTimeout> | undefined
  const announceUntilReached = (): void => {
    announcing ??= (async () => {
      let wait = ANNOUNCE_RETRY_MS
      while (!stopped && !(await announce().catch((err: unknown) => { log('record not published: %e', err); return false }))) {
        await new Promise<void>(resolve => { again = setTimeout(resolve, wait); again.unref() })
        wait = Math.min(wait * 2, ANNOUNCE_RETRY_MAX_MS)
      }
    })().finally(() => { announcing = undefined })
  }
  announceUntilReached()

  let tries = 0
  const retries = new Map<string, number>()
  const retryTimers = new Set<ReturnType<typeof setTimeout>>()
  const onConnect = (evt: CustomEvent<string>): void => {
    const peer = evt.detail
    if (stopped || pulled || tries >= TABLE_PULL_PEERS) return
    tries++
    void pull(peer).then(() => { pulled = true }, (err: unknown) => {
      tries--
      log('table from %s: %e', peer, err)
      // a joiner connects while its host dials, before it serves its table: the seed it joined
      // asked too early, and no other peer may connect to it for long
      const n = retries.get(peer) ?? 0
      if (stopped || pulled || n >= TABLE_PULL_RETRIES) return
      retries.set(peer, n + 1)
      // a peer busy (over this host's budget there, or pacing its whole table): asked again
      // once its busy time is over, not at the next short retry
      const delay = TABLE_PULL_RETRY_MS * 2 ** n
      const timer = setTimeout(() => {
        retryTimers.delete(timer)
        if (host.peers().some(p => p.id === peer)) onConnect(new CustomEvent('peer:connect', { detail: peer }))
      }, err instanceof MembersBusyError ? Math.max(delay, BUSY_BACKOFF_MS) : delay)
      timer.unref()
      retryTimers.add(timer)
    })
  }
  host.addEventListener('peer:connect', onConnect)
  for (const p of host.peers()) onConnect(new CustomEvent('peer:connect', { detail: p.id }))

  const onDown = (evt: Event): void => {
    if ((evt as CustomEvent<string>).detail !== host.peerId || stopped) return
    announceUntilReached()
  }
  table.addEventListener('down', onDown)

  // anti-entropy: the connected peers in turn, a digest each round, a table when they differ:
  // what changed since this table was last in step with one (inStepAt), and the whole table
  // when the digests still differ after that
  let inStepAt: number | undefined
  const differs = async (peer: string): Promise<boolean> => await compare(peer).catch((err: unknown) => {
    noteBusy(peer, err)
    throw err
  })
  const compare = async (peer: string): Promise<boolean> => {
    const asked = Date.now()
    if (syncs(peer)) {
      // a sync round: the changes still spreading come with it; alike is alike but for those
      // (the states either side took within MEMBER_SYNC_KEYS_MS: a later pull `since` reaches
      // back past them)
      const keys = table.syncKeys()
      const reply = await call(host, peer, MEMBERS, { t: 'sync', k: keys }, { maxReplyBytes: MAX_SYNC_ANSWER_BYTES })
      if (reply.t !== 'sync') return true
      const { alike } = await table.takeSync(keys, reply)
      if (alike) inStepAt = asked - MEMBER_SYNC_KEYS_MS
      return !alike
    }
    const reply = await call(host, peer, MEMBERS, { t: 'digest' })
    const apart = reply.t === 'digest' && !equalBytes(reply.d, table.digest())
    if (!apart) inStepAt = asked
    return apart
  }
  const stopAntiEntropy = startAntiEntropy({
    peers: () => host.peers().filter(p => askable(p.id)),
    everyMs: TABLE_SYNC_MS,
    recheckMs: TABLE_SYNC_RECHECK_MS,
    differs,
    // (a whole table pulled: in step once a later digest matches)
    pull: async peer => await pullMembers(inStepAt, async since => await pull(peer, since), async () => await differs(peer)),
    synced: () => { pulled = true },
    failed: (peer, err) => { log('table sync with %s: %e', peer, err) }
  })

  // expiry is checked every MEMBER_REFRESH_CHECK_MS; this host's record is signed again once
  // memberRefreshMs(table size) went by since the last one (the table grows after the start)
  // (on the monotonic clock: a wall clock stepped back held the refresh for as long as the step)
  let signedAt = performance.now()
  const refresh = setInterval(() => {
    table.expire()
    if (performance.now() - signedAt < memberRefreshMs(table.size)) return
    signedAt = performance.now()
    announceUntilReached()
  }, MEMBER_REFRESH_CHECK_MS)
  refresh.unref()

  return {
    publish,
    pull,
    pulled: () => pulled,
    inStepAt: () => inStepAt,
    pushes: () => ({ taken: gate.counts.taken, refused: gate.counts.refused, dropped: gate.counts.dropped }),
    calls: () => ({ answered: gate.counts.calls, refused: gate.counts.callsRefused, unread: gate.counts.callsUnread }),
    stop: async () => {
      if (stopped) return
      stopped = true
      clearInterval(refresh)
      stopAntiEntropy()
      clearTimeout(again)
      for (const timer of retryTimers) clearTimeout(timer)
      host.removeEventListener('peer:connect', onConnect)
      host.removeEventListener('peer:disconnect', onDisconnect)
      table.removeEventListener('down', onDown)
      table.removeEventListener('member', onMember)
      host.gossip.handleTagged(MEMBERS_GOSSIP_TAG, undefined)
      await unserve()
      await unservePushes()
    }
  }
}
