// Member messages spread by pull (node/net/members.ts sync rounds; `npm run sim`'s
// `members_pull.h<N>.*`, and the idle figure's pullBodiesPerChange), what darkfs runs for member
// messages once every member takes them, run on darkfs's own MemberTable (issue 14 item 7): each
// host holds a table, and a round is that table's syncKeys(), the peer table's syncAnswer() and
// takeSync(), in virtual time (the tables' clock), with no libp2p below (signatures are not
// made or checked: a fixed 64-byte signature, a verifier that says yes). Every host asks one of
// its connections (in turn, from a random start) every TABLE_SYNC_MS, each host at its own
// phase. A host's connections: min(hosts - 1, DEFAULT_MAX_CONNECTIONS) drawn at random. The
// author pushes its change to its live connections first (member-service.ts publish: one notice
// each, leaving its uplink one after another, PUSH_GAP_MS apart as on a 1 Mbit/s link). Hosts
// down (`downShare`) neither ask nor answer (a call to them fails). The changes, one at a time
// from random live hosts, alternate: a host's record (its first: it joins), then that host's own
// DOWN notice (it leaves: pushed, then gone). Every table starts with BASE_MEMBERS records (so
// the rounds' digests cover members that do not change). Rounds go on until no host names the
// change any more (MEMBER_SYNC_KEYS_MS after the last took it): what the requests' keys cost
// is counted whole. A round whose digests differ (`apartPerHost`) is one the daemon follows with a
// recheck and a table pull (member-service.ts): its four calls charged to the peer's gate (at
// once, each the worst: stricter than the daemon), and its pull run (what the peer took since
// the asker was last in step, then a sync, then the whole table if still apart). Rounds are
// apart only when a host missed a change past the windows: `awayShare` of the hosts are away
// for each change and back at the next (note-s32: without it no round was ever apart, so the
// gates never met an apart round but as --pull-charge all's stand-in). Not modelled: the recheck
// after such a round (it delays the host's next round by TABLE_SYNC_RECHECK_MS), calls
// overlapping in time (a round is taken whole at its start, its answer at the answerer's clock a
// latency later). Every host's table sits behind darkfs's own MemberGate (node/net/member-gate.ts:
// the call and push budgets per peer and the one all askers share, the author check), on the
// tables' clock: the author's pushes and every call of every round go through it. `flooders`
// hosts (drawn apart from the rest, so the spread's own
// draws are those of a run without them) also send FLOOD_CALLS sync requests to each of their
// connections at each of their rounds: answered or refused by the gate (the answers counted, not
// computed: their cost is the table's); `forgers` hosts push, at each of their rounds, a record
// of a member that is not them to each connection (the sim checks no signature: only the author
// check keeps it out); `idFlooders` hosts are an insider with FLOOD_IDS peer ids: at each of
// their rounds each id sends FLOOD_CALLS sync requests to one connection (the first live one), so
// that host's shared budget (ALL_CALLS_*) meets many ids at once. Every call goes through the
// gate as the daemon's (member-service.ts): admit() as its stream opens, then call(). A flooded
// or forged-at host's own rounds go on; a round of a host by the rules refused is counted
// (`honestRefused`: none expected).
import {
  DEFAULT_MAX_CONNECTIONS, FEATURES, MEMBER_MAX_SKEW_MS, MEMBER_OFFER_MS, MEMBER_SYNC_KEYS_MS, MemberGate, MemberTable, TABLE_CALL_COST, TABLE_SYNC_MS
} from '../../node/net/index.ts'
import type { MembersRequest } from '../../node/net/index.ts'
import * as dagCbor from '@ipld/dag-cbor'
import { prng } from '../prng.ts'

export interface PullSpreadOptions {
  hosts: number
  seed: number
  /** Changes spread (from random live hosts, one at a time); figures are over all of them. */
  changes: number
  latencyMs: number
  downShare: number
  /**
   * Rounds whose follow-up calls (recheck, changes, sync, whole table) are charged to the gates:
   * those whose digests differ (default), or every round (`all`: each host's every round apart, the
   * most a host by the rules asks of a peer; the spread itself is the same).
   */
  charge?: 'apart' | 'all'
  /** Hosts that flood their connections with sync requests, and hosts that push others' records (default none). */
  flooders?: number
  forgers?: number
  /** Hosts flooding one connection from FLOOD_IDS peer ids each (default none). */
  idFlooders?: number
  /**
   * Share of the live hosts away for each change (drawn per change, the author never): they
   * neither ask, answer nor take its pushes until the next change starts, past the windows
   * (MEMBER_SYNC_KEYS_MS, MEMBER_OFFER_MS), so their first rounds back find the tables apart
   * and pull (default 0: no round is ever apart). Away hosts are left out of that change's
   * spread figures (they are counted in `awayHostChanges`), and so are the hosts a leave is
   * nothing to (away when the leaver joined: they never took its record). None is away for the
   * last change.
   */
  awayShare?: number
}

/** What the member gates did with the flooders' and forgers' requests, and with the rounds by the rules. */
export interface GateCounts {
  floodAnswered: number
  floodRefused: number
  /** The many-ids flooders' calls answered and refused (of both kinds of flood: refused by admit(), before their frame is read). */
  idFloodAnswered: number
  idFloodRefused: number
  floodUnread: number
  forgedRefused: number
  forgedDropped: number
  forgedTaken: number
  /** Calls of the rounds by the rules charged to the gates, and refused. */
  honestCalls: number
  honestRefused: number
}

export interface PullSpread {
  /** Virtual ms until 50%, 99% (the worst change, and the mean) and 100% of the live hosts took the change. */
  t50: number
  t99: number
  t99Mean: number
  t100: number
  /** Live hosts a change never reached (within MAX_PULL_ROUNDS). */
  missed: number
  /** Messages each live host received per change (the first copy and any duplicate), and the duplicates alone. */
  bodiesPerHost: number
  duplicatesPerHost: number
  /** Pushes each live host sent per change, on average (the author's, shared out). */
  pushesPerHost: number
  /** Bytes of sync request keys each live host sent per change (0 in the model). */
  syncKeyBytesPerHost: number
  /** Rounds per live host per change whose digests differed (each a table pull in the daemon; 0 in the model). */
  apartPerHost: number
  /** Apart rounds in all, the messages their pulls moved (changes since, whole tables), and the host-changes spent away (awayShare). */
  apartRounds: number
  apartPulledMessages: number
  awayHostChanges: number
  /** Hosts still apart from a peer when the run ended (each round with it apart): none expected. */
  apartAtEnd: number
  /** The member gates' counts (zeros in the model, and without flooders or forgers). */
  gate: GateCounts
}

/** Sync requests a flooder sends each connection at each of its rounds. */
export const FLOOD_CALLS = 100

/** Peer ids a many-ids flooder asks from. */
export const FLOOD_IDS = 16

/** Time between two pushes leaving the author (a push of ~650 bytes on a 1 Mbit/s uplink). */
export const PUSH_GAP_MS = 5

/** Rounds a change is followed for. */
const MAX_PULL_ROUNDS = 400

/** Records every table holds from the start (members that do not change). */
const BASE_MEMBERS = 16

/** A peer id's length (an Ed25519 id in base58: `12D3KooW` and 44 more). */
const simPeerId = (h: number): string => `12D3KooWsim${String(h).padStart(41, '0')}`
const SIGNATURE = new Uint8Array(64)

/** When each change reached the live hosts, over the changes followed: what both spreads report. */
class SpreadTimes {
  private readonly t99s: number[] = []
  private t50 = 0
  private t100 = 0
  private missed = 0

  /** One change: `taken[h]`, when host h took it (Infinity: never); `live[h]`, 1 for a live host. */
  add (taken: Float64Array, live: Uint8Array, liveCount: number): void {
    const arrivals = Array.from(taken).filter((x, h) => live[h] === 1 && x < Infinity).sort((a, b) => a - b)
    const at = (share: number): number => arrivals[Math.min(arrivals.length - 1, Math.ceil(share * liveCount) - 1)]
    this.t99s.push(arrivals.length >= Math.ceil(0.99 * liveCount) ? at(0.99) : Infinity)
    this.t50 = Math.max(this.t50, at(0.5))
    this.t100 = Math.max(this.t100, arrivals.length === liveCount ? arrivals[arrivals.length - 1] : Infinity)
    this.missed += liveCount - arrivals.length
  }

  result (): { t50: number, t99: number, t99Mean: number, t100: number, missed: number } {
    return {
      t50: this.t50,
      t99: Math.max(...this.t99s),
      t99Mean: this.t99s.reduce((s, x) => s + x, 0) / this.t99s.length,
      t100: this.t100,
      missed: this.missed
    }
  }
}

/** Both spreads' network: each host's C connections drawn at random, and which hosts are live (`downShare` not). */
function simNetwork (o: PullSpreadOptions, rand: () => number): { N: number, C: number, conns: Int32Array[], live: Uint8Array } {
  const N = o.hosts
  const C = Math.min(N - 1, DEFAULT_MAX_CONNECTIONS)
  const conns: Int32Array[] = Array.from({ length: N }, (_, h) => {
    const s = new Set<number>()
    while (s.size < C) { const p = Math.floor(rand() * N); if (p !== h) s.add(p) }
    return Int32Array.from(s)
  })
  const live = new Uint8Array(N)
  for (let h = 0; h < N; h++) live[h] = rand() < o.downShare ? 0 : 1
  return { N, C, conns, live }
}

const equalDigest = (a: Uint8Array, b: Uint8Array): boolean => a.byteLength === b.byteLength && a.every((x, i) => x === b[i])

const noGateCounts = (): GateCounts => ({ floodAnswered: 0, floodRefused: 0, idFloodAnswered: 0, idFloodRefused: 0, floodUnread: 0, forgedRefused: 0, forgedDropped: 0, forgedTaken: 0, honestCalls: 0, honestRefused: 0 })

export async function runPullSpread (o: PullSpreadOptions): Promise<PullSpread> {
  const rand = prng(o.seed)
  const { N, C, conns, live } = simNetwork(o, rand)
  const T = TABLE_SYNC_MS
  // the tables' clock; each change starts well past the windows of the one before
  let clock = 1.7e12
  const tables = Array.from({ length: N }, (_, h) => new MemberTable({
    self: simPeerId(h),
    signer: { author: simPeerId(h), sign: async () => SIGNATURE },
    verify: async () => true,
    now: () => clock,
    features: () => FEATURES
  }))
  // every host is a member of every table in a network (its record spread when it joined): the
  // sim's tables start with BASE_MEMBERS records only (each record is a take at every table), so
  // the gates ask membership (the shared budget's reserve, member-gate.ts) of the hosts' ids,
  // members long since; a many-ids flooder's ids are no host's (fresh ids, never members)
  const hostIds = new Set(Array.from({ length: N }, (_, h) => simPeerId(h)))
  const gates = tables.map(t => new MemberGate({ take: async (msg: Uint8Array) => await t.take(msg), memberFor: (peer: string) => hostIds.has(peer) ? Infinity : t.memberFor(peer), get size () { return t.size } }, () => clock))
  const gate = noGateCounts()
  // the flooders and forgers, live hosts drawn apart (the spread's own draws unchanged)
  const bad = prng(o.seed ^ 0x6a7e)
  const role = new Uint8Array(N)
  const FLOODER = 1
  const FORGER = 2
  const ID_FLOODER = 3
  let room = live.reduce((s, x) => s + x, 0)
  for (const [r, n] of [[FLOODER, o.flooders ?? 0], [FORGER, o.forgers ?? 0], [ID_FLOODER, o.idFlooders ?? 0]] as const) {
    for (let i = 0; i < n && room > 0; i++, room--) {
      let h = Math.floor(bad() * N)
      while (role[h] !== 0 || live[h] === 0) h = (h + 1) % N
      role[h] = r
    }
  }
  let forgedSeq = 0
  const address = (h: number): string[] => [`/ip4/10.${(h >> 16) & 255}.${(h >> 8) & 255}.${h & 255}/tcp/4001`]
  const base: Uint8Array[] = []
  for (let b = 0; b < Math.min(BASE_MEMBERS, N); b++) {
    const msg = await tables[b].signOwn(address(b))
    if (msg !== undefined) base.push(msg)
  }
  for (const t of tables) for (const msg of base) await t.take(msg)
  const spread = new SpreadTimes()
  let bodies = 0
  let duplicates = 0
  let pushes = 0
  let keyBytes = 0
  let apart = 0
  let apartPulled = 0
  let awayHostChanges = 0
  let hostChanges = 0
  // away hosts drawn apart from the spread's own draws; when each host's table was last in step
  // with a peer's (an alike sync round: member-service.ts inStepAt), its pulls ask changes since
  const awayRand = prng(o.seed ^ 0xa3a7)
  const away = new Uint8Array(N)
  const inStepAt = new Float64Array(N).fill(NaN)
  /**
   * An apart round's pull as the daemon's (member-service.ts pullMembers): what `p` took since
   * `h` was last in step with a peer, then a sync; still apart, the whole table. Whether it
   * brought `change` (the one spreading) new.
   */
  const pullApart = async (h: number, p: number, change: Uint8Array): Promise<boolean> => {
    let brought = false
    const take = async (m: Uint8Array, n: number): Promise<void> => {
      if (await tables[h].take(m, n, true) === 'new' && equalDigest(m, change)) brought = true
    }
    const since = inStepAt[h]
    if (!Number.isNaN(since)) {
      const changes = tables[p].messages(since - MEMBER_MAX_SKEW_MS)
      apartPulled += changes.length
      for (const m of changes) await take(m, changes.length)
      const keys = tables[h].syncKeys()
      const answer = tables[p].syncAnswer(keys)
      const r = await tables[h].takeSync(keys, answer)
      if (r.fresh > 0 && answer.m.some(m => equalDigest(m, change))) brought = true
      if (r.alike) return brought
    }
    const whole = tables[p].messages()
    apartPulled += whole.length
    for (const m of whole) await take(m, whole.length)
    return brought
  }
  let joiner = -1
  /** Whether `p`'s gate answers `h`'s round (a refusal counted). */
  const admitted = (h: number, p: number, req: MembersRequest): boolean => {
    gate.honestCalls++
    try {
      const refusal = gates[p].admit(simPeerId(h))
      if (refusal !== undefined) throw refusal
      gates[p].call(simPeerId(h), req)
      return true
    } catch {
      gate.honestRefused++
      return false
    }
  }
  const NONE = new Uint8Array(0)
  /** A flooder's requests, or a forger's pushes, to its live connections (at its round). */
  /** `id`'s FLOOD_CALLS sync requests to `p`, at one instant: past the first refusal every call is refused (counted, not made). */
  const flood = (id: string, p: number): { answered: number, refused: number } => {
    for (let k = 0; k < FLOOD_CALLS; k++) {
      if (gates[p].admit(id) !== undefined) {
        gate.floodUnread += FLOOD_CALLS - k
        return { answered: k, refused: FLOOD_CALLS - k }
      }
      try {
        gates[p].call(id, { t: 'sync', k: NONE })
      } catch {
        return { answered: k, refused: FLOOD_CALLS - k }
      }
    }
    return { answered: FLOOD_CALLS, refused: 0 }
  }
  const misbehave = async (h: number, to: Int32Array): Promise<void> => {
    if (role[h] === ID_FLOODER) {
      const p = to.find(p => live[p] === 1)
      if (p === undefined) return
      for (let i = 0; i < FLOOD_IDS; i++) {
        const r = flood(`${simPeerId(h)}.${i}`, p)
        gate.idFloodAnswered += r.answered
        gate.idFloodRefused += r.refused
      }
      return
    }
    const forged = role[h] === FORGER ? forgedRecord(h) : undefined
    for (const p of to) {
      if (live[p] === 0) continue
      if (forged !== undefined) {
        const r = await gates[p].push(simPeerId(h), forged)
        if (r === 'refused') gate.forgedRefused++
        else if (r === 'dropped') gate.forgedDropped++
        else gate.forgedTaken++
        continue
      }
      const r = flood(simPeerId(h), p)
      gate.floodAnswered += r.answered
      gate.floodRefused += r.refused
    }
  }
  /** A record of a member no host is, "signed" (the sim checks no signature), pushed by forger `h`. */
  const forgedRecord = (h: number): Uint8Array => {
    const peer = simPeerId(N + h * 1000 + (forgedSeq++ % 1000))
    const r = dagCbor.encode({ peer, seq: clock, addrs: address(h) })
    return dagCbor.encode({ t: 'member', r, s: SIGNATURE })
  }
  for (let c = 0; c < o.changes; c++) {
    clock += 2 * (MEMBER_SYNC_KEYS_MS + MEMBER_OFFER_MS)
    const start = clock
    // each host's phase and first turn, hosts in phase order
    const phase = Float64Array.from({ length: N }, () => rand() * T)
    const turn = Int32Array.from({ length: N }, () => Math.floor(rand() * C))
    const order = Array.from({ length: N }, (_, h) => h).sort((a, b) => phase[a] - phase[b])
    const taken = new Float64Array(N).fill(Infinity)
    // even changes: a live host past the base members signs its first record; odd: it leaves
    const leaving = c % 2 === 1 && joiner >= 0
    let origin = leaving ? joiner : -1
    while (origin < 0 || live[origin] === 0 || (!leaving && origin < BASE_MEMBERS && N > BASE_MEMBERS)) origin = Math.floor(rand() * N)
    // a leave is nothing to a host that never took the leaver's record (away when it joined)
    const unaware = leaving ? Uint8Array.from(tables, t => t.has(simPeerId(origin)) ? 0 : 1) : new Uint8Array(N)
    const msg = leaving ? await tables[origin].signDown(simPeerId(origin)) : await tables[origin].signOwn(address(origin))
    if (msg === undefined) throw new Error(`sim: host ${origin} signed nothing`)
    joiner = leaving ? -1 : origin
    taken[origin] = 0
    // the hosts away for this change (back at the next one), never its author nor the next leaver
    away.fill(0)
    // (none for the last change: every host is back for its rounds, the tables in step at the end)
    if ((o.awayShare ?? 0) > 0 && c < o.changes - 1) {
      for (let h = 0; h < N; h++) if (live[h] === 1 && h !== origin && awayRand() < o.awayShare!) away[h] = 1
    }
    const present = (h: number): boolean => live[h] === 1 && away[h] === 0
    let pushed = 0
    for (const p of conns[origin]) {
      if (!present(p)) continue
      const at = o.latencyMs + pushed++ * PUSH_GAP_MS
      clock = start + at
      if (await gates[p].push(simPeerId(origin), msg) === 'new') taken[p] = at
    }
    bodies += pushed
    pushes += pushed
    // the host that left neither asks nor answers from here on
    if (leaving) live[origin] = 0
    const liveCount = live.reduce((s, x) => s + x, 0)
    hostChanges += liveCount
    const awayCount = away.reduce((s, x) => s + x, 0)
    awayHostChanges += awayCount
    let lastTaken = Math.max(...Array.from(taken).filter(x => x < Infinity))
    for (let j = 0; j < MAX_PULL_ROUNDS; j++) {
      // no live host names it any more (nor offers it: it is where it will ever be)
      if (j * T > lastTaken + MEMBER_SYNC_KEYS_MS + T) break
      for (const h of order) {
        if (!present(h)) continue
        const t = j * T + phase[h]
        const p = conns[h][(turn[h] + j) % C]
        if (present(p)) {
          clock = start + t
          const keys = tables[h].syncKeys()
          keyBytes += keys.byteLength
          clock = start + t + o.latencyMs
          if (admitted(h, p, { t: 'sync', k: keys })) {
            const answer = tables[p].syncAnswer(keys)
            clock = start + t + 2 * o.latencyMs
            const r = await tables[h].takeSync(keys, answer)
            bodies += answer.m.length
            duplicates += answer.m.length - r.fresh
            if (!r.alike) apart++
            else inStepAt[h] = start + t - MEMBER_SYNC_KEYS_MS
            let allAdmitted = true
            if (!r.alike || o.charge === 'all') {
              // the daemon follows it with four more calls (member-service.ts: the recheck, the
              // changes since, a sync, the whole table), each charged as its gate charges them:
              // here at once, the worst (the changes as large as a paced answer), no refill
              // between them (stricter than the daemon's TABLE_SYNC_RECHECK_MS later)
              for (const req of [{ t: 'sync', k: keys }, { t: 'table', since: start }, { t: 'sync', k: keys }, { t: 'table' }] as const) {
                if (!admitted(h, p, req)) {
                  allAdmitted = false
                  break
                }
                if (req.t === 'table') gates[p].charge(simPeerId(h), TABLE_CALL_COST - 1)
              }
            }
            // and pulls: the tables in step again (what was charged above, at most), only when
            // the round's calls were all answered (a refused one ends the daemon's round)
            if (!r.alike && allAdmitted && await pullApart(h, p, msg) && taken[h] === Infinity) {
              taken[h] = t + 2 * o.latencyMs
              lastTaken = Math.max(lastTaken, taken[h])
            }
            if (r.fresh > 0 && taken[h] === Infinity) {
              taken[h] = t + 2 * o.latencyMs
              lastTaken = Math.max(lastTaken, taken[h])
            }
          }
        }
        // a flooder's or forger's own round is by the rules; then it misbehaves
        if (role[h] !== 0) {
          clock = start + t + 2 * o.latencyMs
          await misbehave(h, conns[h])
        }
      }
    }
    clock = start + MAX_PULL_ROUNDS * T
    // the spread over the hosts present for it (away ones took it at the next change's rounds)
    // that knew of it (a leave: those that took the leaver's record)
    const here = Uint8Array.from(live, (x, h) => x === 1 && away[h] === 0 && unaware[h] === 0 ? 1 : 0)
    spread.add(taken, here, here.reduce((s, x) => s + x, 0))
  }
  // every live host back: a table still apart from a connection's would be pulled every round
  let apartAtEnd = 0
  for (let h = 0; h < N; h++) {
    if (live[h] === 0) continue
    const d = tables[h].digest()
    if (conns[h].some(p => live[p] === 1 && !equalDigest(d, tables[p].digest()))) apartAtEnd++
  }
  return {
    ...spread.result(),
    bodiesPerHost: bodies / hostChanges,
    duplicatesPerHost: duplicates / hostChanges,
    pushesPerHost: pushes / hostChanges,
    syncKeyBytesPerHost: keyBytes / hostChanges,
    apartPerHost: apart / hostChanges,
    apartRounds: apart,
    apartPulledMessages: apartPulled,
    awayHostChanges,
    apartAtEnd,
    gate
  }
}

/**
 * The model the sim ran before it ran MemberTable (kept to compare: `members_pull.h<N>.model.*`):
 * the offer and naming windows as rules on arrival times, no table, no digest.
 */
export function modelPullSpread (o: PullSpreadOptions): PullSpread {
  const rand = prng(o.seed)
  const { N, C, conns, live } = simNetwork(o, rand)
  const liveCount = live.reduce((s, x) => s + x, 0)
  const T = TABLE_SYNC_MS
  const spread = new SpreadTimes()
  let bodies = 0
  let duplicates = 0
  let pushes = 0
  for (let c = 0; c < o.changes; c++) {
    // each host's phase and first turn, hosts in phase order
    const phase = Float64Array.from({ length: N }, () => rand() * T)
    const turn = Int32Array.from({ length: N }, () => Math.floor(rand() * C))
    const order = Array.from({ length: N }, (_, h) => h).sort((a, b) => phase[a] - phase[b])
    const taken = new Float64Array(N).fill(Infinity)
    let origin = Math.floor(rand() * N)
    while (live[origin] === 0) origin = Math.floor(rand() * N)
    taken[origin] = 0
    let have = 1
    let pushed = 0
    for (const p of conns[origin]) {
      if (live[p] === 0) continue
      taken[p] = o.latencyMs + pushed++ * PUSH_GAP_MS
      have++
    }
    bodies += pushed
    pushes += pushed
    let lastOffer = MEMBER_OFFER_MS
    for (let j = 0; j < MAX_PULL_ROUNDS && have < liveCount; j++) {
      const start = j * T
      // no live host offers it any more: it is where it will ever be (the digest finds the rest)
      if (start > lastOffer + T) break
      for (const h of order) {
        if (live[h] === 0) continue
        const t = start + phase[h]
        const p = conns[h][(turn[h] + j) % C]
        if (live[p] === 0) continue
        const at = t + o.latencyMs
        if (!(taken[p] <= at && at - taken[p] <= MEMBER_OFFER_MS)) continue
        if (taken[h] <= t && t - taken[h] <= MEMBER_SYNC_KEYS_MS) continue
        bodies++
        if (taken[h] < Infinity) { duplicates++; continue }
        taken[h] = at + o.latencyMs
        lastOffer = Math.max(lastOffer, taken[h] + MEMBER_OFFER_MS)
        have++
      }
    }
    spread.add(taken, live, liveCount)
  }
  return {
    ...spread.result(),
    bodiesPerHost: bodies / o.changes / liveCount,
    duplicatesPerHost: duplicates / o.changes / liveCount,
    pushesPerHost: pushes / o.changes / liveCount,
    syncKeyBytesPerHost: 0,
    apartPerHost: 0,
    apartRounds: 0,
    apartPulledMessages: 0,
    awayHostChanges: 0,
    apartAtEnd: 0,
    gate: noGateCounts()
  }
}
