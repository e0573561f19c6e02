// The member table (issue 14 item 3): every host knows every member of its network, not only the
// peers it is connected to. With connections bounded (host.ts, `--max-connections`) a host of a
// large network talks to a few dozen peers, yet placement must rank every member the same way on
// every host (a reader computes who holds a fragment with no round trip), and a peer this host
// closed a connection to, to stay under its bound, is not a failed host.
//
// A member is known by its record, signed by the host it describes (its peer id embeds the
// Ed25519 key, so anyone checks it offline): { peer, seq, addrs, cap? }. `seq` is the host's wall clock
// in ms when it signed: a newer record replaces an older one; a host signs a new record when it
// starts and every memberRefreshMs(members). Records spread by gossip (host.ts, the network's topic,
// tagged MEMBERS_GOSSIP_TAG so the op handler never sees them), and a host that starts pulls the
// table from its first peers (MEMBERS_PROTOCOL), each record still checked one by one. A table
// entry nobody refreshed for memberExpireMs(members) (three refreshes missed) is dropped: a host
// that ended without a word and whose neighbours are all gone too does not stay a member forever.
//
// Refresh is a safety net, not liveness (issue 14, idle traffic): liveness is decided by a host's
// XOR neighbours and spread as one DOWN notice (below), and a host that comes back signs a new
// record at once. Every refresh reaches every host by gossip (each host sends about 6 copies of
// it, plus the IHAVE lists it causes), so a refresh period fixed in time costs each host in
// proportion to the network's size: hourly, 27 kbit/s per idle host at 1,000 hosts and 130 at
// 10,000 (`npm run sim`). So the period is at least MEMBER_REFRESH_MS (a day) and grows with the
// table, MEMBER_REFRESH_PER_MEMBER_MS per member: network-wide at most one refresh per that
// time, whatever the size, and the per-host cost of refreshes is bounded (~0.2 kbit/s with its
// IHAVE lists at host.ts's GOSSIP_DLAZY, 0.4 at gossipsub's default reach: a day up to 480
// members, 50 h at 1,000, 21 days at 10,000; expiry three times that). A record is refused on
// arrival only when it is older than the expiry for the larger of this table and the table it
// came with (a joiner pulling a big network's table holds few records yet); the periodic
// expire() uses this table's size.
//
// `cap` is the host's capacity class (keeper/balance.ts capacityClass: 8 classes per doubling of
// its disk's size), the weight balanced placement gives it (issue 14 item 4). It sits in the
// signed record because every host must compute the same fragment targets: a value each host
// measured for itself (space notices reach only connected peers) would differ from host to host.
// A host signs its current class with every record (a changed class reaches the network with the
// next seq, as a changed address does); the class moves only when the disk's size moves by a
// class step (~9%), so records do not flap with free space. Taken only as an integer from 0 to
// MAX_CAPACITY_CLASS (a disk of 2^(255/8) GiB, ~4 EiB, far above any real one); a record without
// it (a host of an older version) has no class, and placement weighs it as the median member.
// A host announcing a huge class is capped by placement (balance.ts placementWeights: 8x the
// median's weight), and never holds more than one fragment of a chunk: it cannot make others
// hold its share, only take more of it.
//
// `features` is the list of features the host understands (features.ts: sorted, unique
// `<name>/<version>` names, at most MAX_FEATURES), so a writer makes a new kind of op only once
// every member takes it. Decoded here and validated (a malformed list refuses the record, as a
// bad address does); signed by a table given a `features` init, which the daemon gives from this
// version on (member sync rounds need every host to know whether every member takes them). The
// previous version decodes the field; a host older than that decodes records strictly, refuses
// one with a field it does not know, whole, keeps its subject out of its table and scores down
// the peer that forwarded it: such hosts are upgraded to the previous version first. Features
// also travel on identify (features.ts: /darkfs/feature/... protocols).
//
// Failure at scale is decided by a host's XOR neighbours, not by everyone: the NEIGHBOURS members
// closest to a host in Kademlia's key space (the peers host.ts keeps connected anyway) watch it,
// and the first of them to give it up (failure.ts: away for the failure timeout) publishes one
// signed DOWN notice { by, peer, seq }. A host takes a DOWN only from one of the subject's
// neighbours as its own table ranks them, and only for the record it holds (seq): the subject
// comes back by signing a newer record. So one host cannot talk the network out of its members,
// and a forged or flooded table is bounded (MAX_MEMBERS entries, each signed by its subject,
// addresses bounded in number and length) and never holds a record its subject did not sign.
//
// Dissemination by pull (issue 14, idle traffic independent of the network's size): on gossip,
// each member message reaches every host about 6 times over (the mesh's degree, each copy with
// gossipsub's framing, signature and IHAVE lists), and every host hears of every member that goes
// and comes back: at a given churn per host that cost grows with the network, ~20x the bytes of
// the messages themselves. So member messages spread on the anti-entropy round instead, once a
// network takes it (feature memberpull/1, member-service.ts): every TABLE_SYNC_MS a host sends one
// connected peer (in turn) a sync request naming the states it took lately (SYNC_KEY_BYTES each:
// a member's key and its state's, MEMBER_SYNC_KEYS_MS of them), and the peer answers with the
// states it took within MEMBER_OFFER_MS that the request does not name, and its digest over the
// members named by neither (syncDigest: those still spreading are left out, so a difference
// there means one side missed a change older than that: then the table is pulled, as before). A
// host gets each change about once (and a few bytes of key per round for each change still
// spreading), instead of 6 copies on gossip. What a whole table pulled brings (a host starting)
// is held but neither named nor offered: a host that restarted named and offered the whole
// table in its rounds for MEMBER_OFFER_MS; its peers offer it the few changes still spreading
// instead (changes pulled `since` a time are taken as changes, and so are the new members a whole
// table pulled later brings, when the tables were apart: up to member-service.ts PULLED_OFFERED). The author of a change (the host signing its own
// record, the neighbour signing a DOWN) pushes it to its connections that take sync rounds
// (MembersNotice, taken from its author only and within a budget per peer, member-service.ts;
// at most max-connections copies per change, so each host's share of these
// pushes does not grow with the network), which starts the spread from that many hosts at once.
// The price is time: a change reaches every host in
// a number of rounds that grows with the log of the network (a host's DOWN notice or its return
// reaches 99% of 10,000 hosts in about 2 minutes, every one in under 3, not a quarter of a second;
// the neighbours decided the DOWN after the failure timeout anyway). In a network of fewer than
// MEMBER_PULL_MIN_MEMBERS members (where gossip costs little) it all stays as before: gossip,
// and digest rounds. And until every member's record lists the feature, member messages are
// also published on gossip (hosts of older versions take them
// only there and from their digest rounds); a peer that did not announce the feature is asked
// for its digest as before. Keys are short: two members whose keys collide are both left out
// of a round's digest, and a state whose key collides with another state of the same member is
// not sent that round (the digest, once both states are past the window, finds it).
//
// Gossip wire (after the tag byte), dag-cbor:
//   { t: 'member', r: bytes(dag-cbor { peer, seq, addrs, cap?, features? }), s: signature of r by peer }
//   { t: 'down',   r: bytes(dag-cbor { by, peer, seq }),    s: signature of r by `by` }
// MEMBERS_PROTOCOL (rpc.ts calls): { t: 'table' } -> { t: 'table', members: [member message...] }
//                                  { t: 'table', since: ms } -> the same, only what changed since
//                                  { t: 'digest' } -> { t: 'digest', d: bytes(32) }
//                                  { t: 'sync', k: bytes(SYNC_KEY_BYTES x n) } -> { t: 'sync', m: [member message...], d: bytes(32) }
//                                  notice { t: 'push', m: member message }
// MEMBER_PUSH_PROTOCOL (notices only): { t: 'push', m: member message } (hosts of older versions: the notice above)
// (the digest: sha256 of the members' ids and record seqs in order; two tables with equal
// digests hold the same records, so anti-entropy pulls a table only when they differ).
// A table answer carries the records of the members up, then the DOWN notices held (a host that
// was away when one spread takes it from the next table it pulls: with records only, its table
// kept the member up, differed from every other one at each digest round, and it pulled the
// whole table every round until that member came back or expired). `since` (the asker's clock,
// less MEMBER_MAX_SKEW_MS) asks for only the records and DOWN notices the answerer took at or
// after it, by its own clock: a host back from an outage pulls what changed while it was away,
// not the whole table (megabytes at 10,000 members). A host of an older version refuses a
// request with `since`; the asker then pulls the whole table.
import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import type { Signer, Verify } from '../tree/index.ts'
import { compareDistance, peerKadId } from './kad.ts'
import { RpcProtocolError, defineProtocol } from './rpc.ts'
import { parseFeatures } from './features.ts'
import { logger } from '../log.ts'
import { equalBytes } from '../bytes.ts'

const log = logger('net:members')

/** First byte of a member gossip message (not a dag-cbor map: the op handler's messages are). */
export const MEMBERS_GOSSIP_TAG = 0x4d
export const MEMBERS_PROTOCOL = '/darkfs/members/1.0.0'
/**
 * Member pushes on a protocol of their own (member-service.ts): on MEMBERS_PROTOCOL a push and a
 * call share the stream's admit (member-gate.ts), so a peer with no call budget left had its
 * pushes refused unread, its own DOWN as it leaves included. A host of an older version does not
 * speak it: a push to it goes on MEMBERS_PROTOCOL as before.
 */
export const MEMBER_PUSH_PROTOCOL = '/darkfs/member-push/1.0.0'
/** A host signs a fresh record at least this often (and when it starts): see memberRefreshMs(). */
export const MEMBER_REFRESH_MS = 24 * 3600_000
/** The refresh period grows by this per member: network-wide at most one refresh per this time. */
export const MEMBER_REFRESH_PER_MEMBER_MS = 180_000
/** Refreshes a record may miss before it leaves the table. */
export const MEMBER_EXPIRE_REFRESHES = 3
/** A record not refreshed for this long leaves a table of up to MEMBER_REFRESH_MS / MEMBER_REFRESH_PER_MEMBER_MS members (480). */
export const MEMBER_EXPIRE_MS = MEMBER_EXPIRE_REFRESHES * MEMBER_REFRESH_MS

/** Time between two records of a host in a network of `members` (see the header). */
export function memberRefreshMs (members: number): number {
  return Math.max(MEMBER_REFRESH_MS, members * MEMBER_REFRESH_PER_MEMBER_MS)
}

/** Age at which a record leaves a table of `members`. */
export function memberExpireMs (members: number): number {
  return MEMBER_EXPIRE_REFRESHES * memberRefreshMs(members)
}
/** A record dated further ahead than this of the local clock is refused (it would never expire). */
export const MEMBER_MAX_SKEW_MS = 600_000
/** Most members a table holds (about 10 MB at 200 bytes each). */
export const MAX_MEMBERS = 50_000
/** Most addresses in a record, and the longest one. */
export const MAX_MEMBER_ADDRS = 8
export const MAX_MEMBER_ADDR_CHARS = 256
/** Longest peer id in a record. */
export const MAX_MEMBER_ID_CHARS = 128
/** Largest member message (one record with its signature). */
export const MAX_MEMBER_MESSAGE_BYTES = 4096
/** Members that watch a host (its XOR neighbours) and may declare it down. */
export const NEIGHBOURS = 8
/** Highest capacity class a record may carry (see the header; balance.ts capacityClass). */
export const MAX_CAPACITY_CLASS = 255
/** Largest table answer. */
export const MAX_TABLE_MESSAGE_BYTES = 16 * 1024 * 1024
/**
 * Pull dissemination (see the header): a member's state (its record, or the DOWN notice that
 * took it out) taken here within MEMBER_OFFER_MS is offered to a peer whose sync request does not
 * name it; a sync request names every state taken here within MEMBER_SYNC_KEYS_MS (twice the
 * offer: a host that took a state early is not offered it again by one that took it late, as
 * long as the spread takes less than the offer; `npm run sim`, with the author's pushes: 99% of
 * 10,000 hosts in 2.1 minutes, every one in 2.7, no copy twice).
 */
export const MEMBER_OFFER_MS = 3 * 60_000
export const MEMBER_SYNC_KEYS_MS = 2 * MEMBER_OFFER_MS
/**
 * Member messages spread by sync rounds only in a table of at least this many members (below,
 * by gossip and digest rounds, as before: gossip costs an idle host ~0.35 kbit/s at 200 hosts
 * under the churn trace, `npm run sim`, and spreads in a quarter of a second).
 */
export const MEMBER_PULL_MIN_MEMBERS = 256
/**
 * A state's key in a sync request: 4 bytes of the hash of the member's id, 2 of its state's. The
 * member's part leaves it out of the round's digest (syncDigest): members whose parts collide
 * are left out together, and with 2 bytes, near certain from a few hundred members, a member
 * signing a state every few minutes (or one whose key was ground to match) kept another out of
 * every round's comparison: a change of that one a host missed was never found. With 4, a
 * collision is rare among 10,000 members (about 1 in 80 networks) and costs 2^32 keys to grind.
 */
export const SYNC_KEY_BYTES = 6
/** Most messages a sync answer carries (the rest: the next rounds). */
export const SYNC_MAX_MESSAGES = 256
/**
 * Largest request or push a host reads on MEMBERS_PROTOCOL (a sync request naming every member,
 * with its envelope): a bigger frame is refused from its length prefix, never buffered or decoded
 * (table answers go the other way, up to MAX_TABLE_MESSAGE_BYTES).
 */
export const MAX_MEMBERS_INCOMING_BYTES = MAX_MEMBERS * SYNC_KEY_BYTES + 1024
/** Largest sync answer a host reads (SYNC_MAX_MESSAGES messages of MAX_MEMBER_MESSAGE_BYTES, the digest, framing). */
export const MAX_SYNC_ANSWER_BYTES = SYNC_MAX_MESSAGES * (MAX_MEMBER_MESSAGE_BYTES + 8) + 1024

export class MemberRecordError extends RpcProtocolError {
  override readonly name = 'MemberRecordError'
}

/**
 * A call the answering host refused over the asker's call budget (member-gate.ts): no network
 * fault; ask that peer again later (the message says when). Rebuilt by callers from its name.
 */
export class MembersBusyError extends Error {
  override readonly name = 'MembersBusyError'
}

/**
 * `cap`: the host's capacity class (see the header), absent in records of older hosts;
 * `features`: the features it understands (features.ts), absent in records of hosts that do not
 * sign them (every host of this version and older: see the header).
 */
export interface MemberRecord { peer: string, seq: number, addrs: string[], cap?: number, features?: string[] }
/**
 * `at`: this host's clock when it took the record (what a table answer `since` selects by);
 * `changed`: when it took it as a change (what sync rounds name and offer: not a record a whole
 * table pulled brought, -Infinity then); `key`: the member's key in sync requests (peerSyncKey).
 */
/** `first`: when this peer's first record was taken here, on the table's monotonic clock (kept across its newer records: member-gate.ts standing). */
interface Entry extends MemberRecord { msg: Uint8Array, at: number, first: number, changed: number, key: number }
/** A DOWN notice held: the seq of the record that went down with it, the notice, when it was taken here, and as a change (Entry). */
interface Down { seq: number, msg: Uint8Array, at: number, changed: number }

export type MembersRequest = { t: 'table', since?: number } | { t: 'digest' } | { t: 'sync', k: Uint8Array }
export type MembersReply = { t: 'table', members: Uint8Array[] } | { t: 'digest', d: Uint8Array } | { t: 'sync', m: Uint8Array[], d: Uint8Array }
/** A member message its author (the host it is about, or the neighbour that declared it down) pushes to its connections. */
export interface MembersNotice { t: 'push', m: Uint8Array }

export const MEMBERS = defineProtocol<MembersRequest, MembersReply, MembersNotice>({
  id: MEMBERS_PROTOCOL,
  // streams open to one peer at once (the rest queue, rpc.ts slot()); libp2p takes twice it
  maxStreams: 4,
  maxMessageBytes: MAX_TABLE_MESSAGE_BYTES,
  maxIncomingBytes: MAX_MEMBERS_INCOMING_BYTES,
  timeoutMs: 30_000,
  malformed: MemberRecordError,
  errors: [MembersBusyError],
  request: (v) => {
    const m = v as { t?: unknown, since?: unknown, k?: unknown } | null
    const keys = typeof m === 'object' && m !== null ? Object.keys(m) : []
    if (m !== null && m.t === 'sync') {
      if (keys.length !== 2 || !(m.k instanceof Uint8Array) || m.k.byteLength % SYNC_KEY_BYTES !== 0 || m.k.byteLength > MAX_MEMBERS * SYNC_KEY_BYTES) {
        throw new MemberRecordError(`a sync request is { t: 'sync', k: bytes (${SYNC_KEY_BYTES} a state, at most ${MAX_MEMBERS}) }`)
      }
      return { t: 'sync', k: m.k }
    }
    if (m === null || (m.t !== 'table' && m.t !== 'digest') || keys.length !== (keys.includes('since') ? 2 : 1) || (keys.includes('since') && (m.t !== 'table' || !Number.isSafeInteger(m.since) || (m.since as number) < 0))) {
      throw new MemberRecordError('a members request is { t: \'table\', since?: ms } | { t: \'digest\' } | { t: \'sync\', k: bytes }')
    }
    return m.t === 'table' && keys.includes('since') ? { t: 'table', since: m.since as number } : { t: m.t }
  },
  reply: (v, req) => {
    const m = v as { t?: unknown, members?: unknown, d?: unknown, m?: unknown } | null
    if (req.t === 'digest') {
      if (typeof m !== 'object' || m === null || m.t !== 'digest' || !(m.d instanceof Uint8Array) || m.d.byteLength !== 32) throw new MemberRecordError('a digest answer is { t: \'digest\', d: bytes(32) }')
      return { t: 'digest', d: m.d }
    }
    if (req.t === 'sync') {
      if (typeof m !== 'object' || m === null || m.t !== 'sync' || !(m.d instanceof Uint8Array) || m.d.byteLength !== 32 || !Array.isArray(m.m) || m.m.length > SYNC_MAX_MESSAGES || !m.m.every(memberMessageBytes)) {
        throw new MemberRecordError(`a sync answer is { t: 'sync', m: [bytes (at most ${MAX_MEMBER_MESSAGE_BYTES})...] (at most ${SYNC_MAX_MESSAGES}), d: bytes(32) }`)
      }
      return { t: 'sync', m: m.m as Uint8Array[], d: m.d }
    }
    if (typeof m !== 'object' || m === null || m.t !== 'table' || !Array.isArray(m.members) || m.members.length > MAX_MEMBERS || !m.members.every(memberMessageBytes)) {
      throw new MemberRecordError(`a table answer is { t: 'table', members: [bytes (at most ${MAX_MEMBER_MESSAGE_BYTES})...] }`)
    }
    return { t: 'table', members: m.members as Uint8Array[] }
  },
  notice: (v) => {
    const n = v as { t?: unknown, m?: unknown } | null
    if (typeof n !== 'object' || n === null || n.t !== 'push' || Object.keys(n).length !== 2 || !memberMessageBytes(n.m)) {
      throw new MemberRecordError(`a push is { t: 'push', m: bytes (a member message, at most ${MAX_MEMBER_MESSAGE_BYTES}) }`)
    }
    return { t: 'push', m: n.m }
  }
})

/** A push alone (MEMBER_PUSH_PROTOCOL): one member message, read whole (a small frame), no admit. */
export const MEMBER_PUSHES = defineProtocol<never, never, MembersNotice>({
  id: MEMBER_PUSH_PROTOCOL,
  maxStreams: 4,
  maxMessageBytes: MAX_MEMBER_MESSAGE_BYTES + 1024,
  timeoutMs: 30_000,
  malformed: MemberRecordError,
  notice: (v) => MEMBERS.notice!(v)
})

/**
 * One anti-entropy pull of the member table once the digests differ (member-service.ts): a
 * table that was in step with a peer's at `inStepAt` (this host's clock) pulls what the peer took
 * since then, less MEMBER_MAX_SKEW_MS (the peer selects by its own clock), and the whole table
 * when the digests still differ after that (or the changes could not be pulled: a peer of an
 * older version refuses `since`); a table never in step pulls the whole table. What it pulled.
 */
export async function pullMembers (inStepAt: number | undefined, pull: (since?: number) => Promise<unknown>, differs: () => Promise<boolean>): Promise<'changes' | 'table'> {
  if (inStepAt !== undefined) {
    const pulled = await pull(Math.max(0, Math.floor(inStepAt - MEMBER_MAX_SKEW_MS))).then(() => true, (err: unknown) => {
      // a peer over this host's budget there: not asked for the whole table at once after it
      if (err instanceof MembersBusyError) throw err
      log('changes not pulled: %e', err)
      return false
    })
    if (pulled && !(await differs())) return 'changes'
  }
  await pull()
  return 'table'
}

/** A member's part of a state's key in a sync request (SYNC_KEY_BYTES): 4 bytes of its id's hash. */
export function peerSyncKey (peer: string): number {
  const h = createHash('sha256').update(peer).digest()
  return h.readUInt32BE(0)
}

/** A state's key in a sync request: the member's key, then 2 bytes of the hash of its seq and whether it is down. */
function stateSyncKey (peerKey: number, peer: string, seq: number, down: boolean): number {
  const h = createHash('sha256').update(`${peer} ${seq} ${down ? 'down' : 'up'}`).digest()
  return (peerKey * 0x10000) + ((h[0] << 8) | h[1])
}

/** The keys of a sync request (syncKeys()), each a member's part and the whole state key (stateSyncKey). */
function * readSyncKeys (keys: Uint8Array): Generator<{ member: number, state: number }> {
  const view = new DataView(keys.buffer, keys.byteOffset, keys.byteLength)
  for (let i = 0; i + SYNC_KEY_BYTES <= keys.byteLength; i += SYNC_KEY_BYTES) {
    const member = view.getUint32(i)
    yield { member, state: member * 0x10000 + view.getUint16(i + 4) }
  }
}

/** Whether `v` may be a member message: bytes, at most MAX_MEMBER_MESSAGE_BYTES (checked before anything decodes it). */
function memberMessageBytes (v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.byteLength <= MAX_MEMBER_MESSAGE_BYTES
}

/** A member message's record, read but not checked; undefined when it cannot be read (or is over the size bound, undecoded). */
function readMemberMessage (msg: Uint8Array): { t: unknown, r: any } | undefined {
  if (!memberMessageBytes(msg)) return undefined
  try {
    const v = dagCbor.decode<any>(msg)
    return { t: v?.t, r: dagCbor.decode<any>(v.r) }
  } catch {
    // not a member message: take() refuses it (and says why)
    return undefined
  }
}

/** The member a member message is about (its record's `peer`), or undefined when it cannot be read. */
export function memberSubject (msg: Uint8Array): string | undefined {
  const r = readMemberMessage(msg)?.r
  return typeof r?.peer === 'string' ? r.peer : undefined
}

/**
 * Who signed a member message, as it claims (a record: its subject; a DOWN notice: `by`), not
 * checked; undefined when it cannot be read. A push comes from its author (member-service.ts).
 */
export function memberAuthor (msg: Uint8Array): string | undefined {
  const m = readMemberMessage(msg)
  const who = m?.t === 'member' ? m.r?.peer : m?.t === 'down' ? m.r?.by : undefined
  return typeof who === 'string' ? who : undefined
}

/** Whether a member message is, as it claims (not checked), a DOWN notice its subject signed: a host leaving. */
export function memberLeaving (msg: Uint8Array): boolean {
  const m = readMemberMessage(msg)
  return m?.t === 'down' && typeof m.r?.by === 'string' && m.r.by === m.r?.peer
}

const str = (v: unknown, max: number, what: string): string => {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new MemberRecordError(`bad ${what}`)
  return v
}
const seqOf = (v: unknown): number => {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new MemberRecordError('bad seq')
  return v as number
}
/** A capacity class as a record carries it: an integer from 0 to MAX_CAPACITY_CLASS. */
export function validCapacityClass (v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_CAPACITY_CLASS
}

export interface MemberTableInit {
  self: string
  signer: Signer
  verify: Verify
  /** Wall clock in ms (tests give their own). */
  now?: () => number
  /**
   * A monotonic clock (ms) a member's standing is measured on (memberFor(), standings()). Not
   * given: `now` when given (a test's clock, moving both), else performance.now().
   */
  clock?: () => number
  /** Most members held (default MAX_MEMBERS). */
  maxMembers?: number
  /**
   * This host's capacity class now (balance.ts capacityClass of its disk size), signed into each
   * of its records; none: its records carry no class (it weighs as the median member).
   */
  capacityClass?: () => number | undefined
  /**
   * The features this host signs into each of its records (features.ts); none: its records
   * carry no `features` field. The daemon leaves it unset in this version: hosts of older
   * versions refuse a record with the field (see the header).
   */
  features?: () => readonly string[] | undefined
}

/** What taking a message did: a new or newer fact, nothing new, or a refusal (blame the sender). */
export type Taken = 'new' | 'old' | 'invalid'

/**
 * Events: 'member' (a peer's first or newer record: detail the peer id), 'down' (a neighbour
 * declared a member down: detail the peer id; this host's own id when a neighbour gave it up,
 * which leaves it a member here: it answers with a newer record), 'expired' (detail the peer id).
 */
export class MemberTable extends EventTarget {
  private readonly self: string
  private readonly signer: Signer
  private readonly verifySig: Verify
  private readonly now: () => number
  private readonly clock: () => number
  private readonly max: number
  private readonly capacityOf?: () => number | undefined
  private readonly featuresOf?: () => readonly string[] | undefined
  private readonly entries = new Map<string, Entry>()
  /** Members declared down, with the notice that said so. */
  private readonly downAt = new Map<string, Down>()
  /** This host declared itself down (it leaves): it signs no record again. */
  private leaving = false
  /**
   * When members not (yet) in the table were first taken here before this host restarted
   * (restoreStandings(), on `clock`): a record of one of them taken again keeps that time.
   * Forgotten once this host has run memberExpireMs since (a member not seen again by then is
   * gone). `restoredAt` is on `clock` too.
   */
  private readonly restored = new Map<string, number>()
  private restoredAt = 0
  /** Members first taken here (new entries) since start: whether standings() changed. */
  private firstCount = 0

  constructor (init: MemberTableInit) {
    super()
    this.self = init.self
    this.signer = init.signer
    this.verifySig = init.verify
    this.now = init.now ?? Date.now
    this.clock = init.clock ?? init.now ?? (() => performance.now())
    this.max = init.maxMembers ?? MAX_MEMBERS
    this.capacityOf = init.capacityClass
    this.featuresOf = init.features
  }

  get size (): number {
    return this.entries.size
  }

  /** Whether this host declared itself down (it leaves). */
  leaves (): boolean {
    return this.leaving
  }

  /** Members not declared down (this host included once it signed its record). */
  members (): string[] {
    return [...this.entries.keys()].filter(p => !this.downAt.has(p))
  }

  has (peer: string): boolean {
    return this.entries.has(peer) && !this.downAt.has(peer)
  }

  /**
   * How long (ms) `peer` has been a member here: since its first record was taken (its newer
   * records keep it), as this host saw it run, on the monotonic clock (a wall clock stepped
   * forward or back neither grants standing nor takes it: bugs38, review34g), for a member
   * (has()); undefined for any other peer.
   */
  memberFor (peer: string): number | undefined {
    if (this.downAt.has(peer)) return undefined
    const first = this.entries.get(peer)?.first
    return first === undefined ? undefined : Math.max(0, this.clock() - first)
  }

  /**
   * How long (ms) each member held (and each restored one not taken again yet) has been one here
   * (memberFor()), at most the table's bound of them: what a host keeps across restarts (the
   * daemon's members-since file), so a member's standing here (member-gate.ts) does not start
   * again. Ages, not times: a restart counts only the time this host saw.
   */
  standings (): Array<[string, number]> {
    const now = this.clock()
    const out: Array<[string, number]> = []
    for (const e of this.entries.values()) out.push([e.peer, Math.max(0, Math.floor(now - e.first))])
    for (const [peer, first] of this.restored) if (!this.entries.has(peer)) out.push([peer, Math.max(0, Math.floor(now - first))])
    return out.slice(0, this.max)
  }

  /** How many members were first taken here since start (a save of standings() is due when it moved). */
  get firstTakenCount (): number {
    return this.firstCount
  }

  /**
   * Standings kept from before a restart (standings(): ms each peer had been a member here): a
   * member held, or taken later, keeps the longer of its standing and the kept one. Malformed
   * pairs (a negative or fractional age) are left out; at most the table's bound of them are kept.
   */
  restoreStandings (ages: Iterable<[string, number]>): number {
    const now = this.clock()
    let n = 0
    this.restoredAt = now
    for (const [peer, age] of ages) {
      if (typeof peer !== 'string' || peer.length === 0 || peer.length > MAX_MEMBER_ID_CHARS || !Number.isSafeInteger(age) || age < 0) continue
      const first = now - age
      const e = this.entries.get(peer)
      if (e !== undefined) {
        e.first = Math.min(e.first, first)
      } else {
        if (this.restored.size >= this.max && !this.restored.has(peer)) continue
        this.restored.set(peer, Math.min(this.restored.get(peer) ?? first, first))
      }
      n++
    }
    return n
  }

  record (peer: string): MemberRecord | undefined {
    const e = this.entries.get(peer)
    return e === undefined ? undefined : { peer: e.peer, seq: e.seq, addrs: e.addrs, ...(e.cap === undefined ? {} : { cap: e.cap }), ...(e.features === undefined ? {} : { features: e.features }) }
  }

  /** The features `peer` signed into its record; undefined when its record has none (or no record). */
  features (peer: string): readonly string[] | undefined {
    return this.entries.get(peer)?.features
  }

  /** The capacity class `peer` signed into its record; undefined when none (or no record). */
  capacityClass (peer: string): number | undefined {
    return this.entries.get(peer)?.cap
  }

  /** The table's digest: equal digests, equal records (ids and seqs of the members, in order). */
  digest (): Uint8Array {
    return this.syncDigest(new Set())
  }

  /**
   * The digest a sync round compares (see the header): digest()'s, less the members whose key is
   * in `excluded` (those either side took a state of lately: still spreading).
   */
  syncDigest (excluded: ReadonlySet<number>): Uint8Array {
    const h = createHash('sha256')
    for (const p of this.members().sort()) {
      const e = this.entries.get(p) as Entry
      if (!excluded.has(e.key)) h.update(`${p} ${e.seq}\n`)
    }
    return new Uint8Array(h.digest())
  }

  /** Each member's state held (its DOWN notice when down, else its record) taken here as a change at or after `since`, with its keys. */
  private * states (since: number): Generator<{ key: number, msg: Uint8Array, state: number }> {
    for (const e of this.entries.values()) {
      const d = this.downAt.get(e.peer)
      if (d !== undefined) {
        if (d.changed >= since) yield { key: e.key, msg: d.msg, state: stateSyncKey(e.key, e.peer, d.seq, true) }
      } else if (e.changed >= since) {
        yield { key: e.key, msg: e.msg, state: stateSyncKey(e.key, e.peer, e.seq, false) }
      }
    }
  }

  /** A sync request's keys: every state taken here within MEMBER_SYNC_KEYS_MS (SYNC_KEY_BYTES each). */
  syncKeys (): Uint8Array {
    const keys: number[] = []
    for (const s of this.states(this.now() - MEMBER_SYNC_KEYS_MS)) keys.push(s.state)
    const out = new Uint8Array(keys.length * SYNC_KEY_BYTES)
    const view = new DataView(out.buffer)
    keys.forEach((k, i) => {
      view.setUint32(i * SYNC_KEY_BYTES, Math.floor(k / 0x10000))
      view.setUint16(i * SYNC_KEY_BYTES + 4, k % 0x10000)
    })
    return out
  }

  /**
   * A sync answer to a peer's request keys: the states taken here within MEMBER_OFFER_MS that the
   * request does not name (at most `max`), and the syncDigest() over the members named by neither
   * (the request's keys, the messages sent).
   */
  syncAnswer (keys: Uint8Array, max = SYNC_MAX_MESSAGES): { m: Uint8Array[], d: Uint8Array } {
    if (keys.byteLength % SYNC_KEY_BYTES !== 0) throw new MemberRecordError('sync keys are whole')
    const asked = new Set<number>()
    const excluded = new Set<number>()
    for (const { member, state } of readSyncKeys(keys)) {
      asked.add(state)
      excluded.add(member)
    }
    const m: Uint8Array[] = []
    for (const s of this.states(this.now() - MEMBER_OFFER_MS)) {
      if (m.length >= max) break
      if (asked.has(s.state)) continue
      m.push(s.msg)
      excluded.add(s.key)
    }
    return { m, d: this.syncDigest(excluded) }
  }

  /**
   * Take a sync answer to `keys` (this host's request): each message checked as any other
   * (take()); whether this table then agrees with the answerer's on every member neither side
   * took a state of lately (its digest `d`), how many messages were new, and how many refused.
   * A message over MAX_MEMBER_MESSAGE_BYTES is refused undecoded: it names no member, so it
   * leaves none out of the digest.
   */
  async takeSync (keys: Uint8Array, answer: { m: Uint8Array[], d: Uint8Array }, tableSize = 0): Promise<{ fresh: number, refused: number, alike: boolean }> {
    const excluded = new Set<number>()
    for (const { member } of readSyncKeys(keys)) excluded.add(member)
    let fresh = 0
    let refused = 0
    for (const msg of answer.m) {
      const peer = memberSubject(msg)
      if (peer !== undefined) excluded.add(peerSyncKey(peer))
      const r = await this.take(msg, tableSize)
      if (r === 'new') fresh++
      else if (r === 'invalid') refused++
    }
    const d = this.syncDigest(excluded)
    return { fresh, refused, alike: equalBytes(d, answer.d) }
  }

  /**
   * What MEMBERS_PROTOCOL answers: the records of the members up, then the DOWN notices held, as
   * signed messages, at most `max` of them (the table answer's bound); with `since` (this host's
   * clock, ms), only those taken here at or after it.
   */
  messages (since = -Infinity, max = this.max): Uint8Array[] {
    const out: Uint8Array[] = []
    for (const e of this.entries.values()) if (!this.downAt.has(e.peer) && e.at >= since) out.push(e.msg)
    for (const d of this.downAt.values()) if (d.at >= since) out.push(d.msg)
    return out.slice(0, max)
  }

  /** Sign this host's record (now), take it, and return its message (to publish); undefined once it declared itself down. */
  async signOwn (addrs: string[]): Promise<Uint8Array | undefined> {
    if (this.leaving) return undefined
    const prev = this.entries.get(this.self)?.seq ?? -1
    const cap = this.capacityOf?.()
    if (cap !== undefined && !validCapacityClass(cap)) throw new RangeError(`signOwn: a capacity class is an integer from 0 to ${MAX_CAPACITY_CLASS}, got ${String(cap)}`)
    const listed = this.featuresOf?.()
    // checked as receivers check it: a list they would refuse is never signed
    const features = listed === undefined ? undefined : parseFeatures([...listed])
    const r = dagCbor.encode({ peer: this.self, seq: Math.max(prev + 1, this.now()), addrs: addrs.slice(0, MAX_MEMBER_ADDRS).filter(a => a.length <= MAX_MEMBER_ADDR_CHARS), ...(cap === undefined ? {} : { cap }), ...(features === undefined ? {} : { features }) })
    const msg = dagCbor.encode({ t: 'member', r, s: await this.signer.sign(r) })
    await this.take(msg)
    return msg
  }

  /** Sign a DOWN notice for `peer` (this host gave it up), take it here, and return it (to publish); undefined when not a member. */
  async signDown (peer: string): Promise<Uint8Array | undefined> {
    const e = this.entries.get(peer)
    if (e === undefined || this.downAt.has(peer)) return undefined
    if (peer === this.self) this.leaving = true
    const r = dagCbor.encode({ by: this.self, peer, seq: e.seq })
    const msg = dagCbor.encode({ t: 'down', r, s: await this.signer.sign(r) })
    this.markDown(peer, { seq: e.seq, msg, at: this.now(), changed: this.now() })
    return msg
  }

  /**
   * A member or DOWN message (without the gossip tag). `tableSize`: the size of the table it came
   * with (a pulled table's answer), so a record that is young for that network is not refused as
   * expired by a table that is still filling. `change`: false for what a whole table pulled
   * brought (a host starting takes every member so): held, but neither named nor offered in sync
   * rounds (each of those, for MEMBER_OFFER_MS, would cost the network a copy of the whole
   * table: a host that restarted offered all of it); the changes pulled `since` a time are.
   */
  async take (msg: Uint8Array, tableSize = 0, change = true): Promise<Taken> {
    let v: any
    try {
      if (msg.byteLength > MAX_MEMBER_MESSAGE_BYTES) throw new MemberRecordError('member message too large')
      v = dagCbor.decode(msg)
      if (typeof v !== 'object' || v === null || !(v.r instanceof Uint8Array) || !(v.s instanceof Uint8Array) || Object.keys(v).length !== 3) throw new MemberRecordError('bad member message')
      if (v.t === 'member') return await this.takeRecord(v.r, v.s, msg, tableSize, change)
      if (v.t === 'down') return await this.takeDown(v.r, v.s, msg, change)
      throw new MemberRecordError('bad member message kind')
    } catch (err) {
      log('member message refused: %s', (err as Error).message)
      return 'invalid'
    }
  }

  private async takeRecord (r: Uint8Array, s: Uint8Array, msg: Uint8Array, tableSize: number, change: boolean): Promise<Taken> {
    const v = dagCbor.decode<any>(r)
    // { peer, seq, addrs } and, from hosts that tell them, cap and features: nothing else
    const keys = typeof v === 'object' && v !== null ? Object.keys(v) : []
    const hasCap = keys.includes('cap')
    const hasFeatures = keys.includes('features')
    if (keys.length !== 3 + (hasCap ? 1 : 0) + (hasFeatures ? 1 : 0) || !Array.isArray(v.addrs) || v.addrs.length > MAX_MEMBER_ADDRS) throw new MemberRecordError('bad member record')
    if (hasCap && !validCapacityClass(v.cap)) throw new MemberRecordError('bad capacity class')
    let features: string[] | undefined
    if (hasFeatures) {
      try {
        features = parseFeatures(v.features)
      } catch (err) {
        throw new MemberRecordError(`bad member record: ${(err as Error).message}`)
      }
    }
    const peer = str(v.peer, MAX_MEMBER_ID_CHARS, 'peer id')
    const rec: Entry = { peer, seq: seqOf(v.seq), addrs: v.addrs.map((a: unknown) => str(a, MAX_MEMBER_ADDR_CHARS, 'address')), ...(hasCap ? { cap: v.cap as number } : {}), ...(features === undefined ? {} : { features }), msg, at: this.now(), first: this.entries.get(peer)?.first ?? this.restored.get(peer) ?? this.clock(), changed: change ? this.now() : -Infinity, key: this.entries.get(peer)?.key ?? peerSyncKey(peer) }
    if (rec.seq > this.now() + MEMBER_MAX_SKEW_MS) throw new MemberRecordError('member record from the future')
    const held = this.entries.get(rec.peer)
    const down = this.downAt.get(rec.peer)
    if (held !== undefined && held.seq >= rec.seq) return 'old'
    if (down !== undefined && down.seq >= rec.seq) return 'old'
    if (rec.seq + memberExpireMs(Math.min(this.max, Math.max(this.entries.size, tableSize))) < this.now()) return 'old'
    if (held === undefined && this.entries.size >= this.max) return 'old'
    if (!(await this.verifySig(rec.peer, r, s))) throw new MemberRecordError(`member record of ${rec.peer} not signed by it`)
    if (held === undefined) {
      this.firstCount++
      this.restored.delete(rec.peer)
    }
    this.entries.set(rec.peer, rec)
    this.downAt.delete(rec.peer)
    this.dispatchEvent(new CustomEvent('member', { detail: rec.peer }))
    return 'new'
  }

  private async takeDown (r: Uint8Array, s: Uint8Array, msg: Uint8Array, change: boolean): Promise<Taken> {
    const v = dagCbor.decode<any>(r)
    if (typeof v !== 'object' || v === null || Object.keys(v).length !== 3) throw new MemberRecordError('bad down notice')
    const by = str(v.by, MAX_MEMBER_ID_CHARS, 'peer id')
    const peer = str(v.peer, MAX_MEMBER_ID_CHARS, 'peer id')
    const seq = seqOf(v.seq)
    const held = this.entries.get(peer)
    // about a record this host no longer has, or one older than it holds: nothing to do
    if (held === undefined || held.seq > seq || this.downAt.has(peer)) return 'old'
    if (peer === this.self && by === peer) return 'old'
    if (by !== peer && !this.neighbours(peer).includes(by)) {
      // not one of the subject's watchers as this table ranks them (tables may differ for a
      // while): not taken, and not held against the forwarder
      log('down notice for %s from %s, not its neighbour here: not taken', peer, by)
      return 'old'
    }
    if (!(await this.verifySig(by, r, s))) throw new MemberRecordError(`down notice not signed by ${by}`)
    if (peer === this.self) {
      // a neighbour gave this host up (a probe that failed under load, or past a peer's
      // connection cap): every other host takes this host out of placement. It is not down here:
      // 'down' tells the member service, which signs a newer record (the notice names this
      // seq), and that brings it back everywhere (dropped here without a word, the host stayed
      // down on every other table for good, and each digest comparison with it differed).
      if (this.leaving) return 'old'
      this.dispatchEvent(new CustomEvent('down', { detail: peer }))
      return 'old'
    }
    this.markDown(peer, { seq, msg, at: this.now(), changed: change ? this.now() : -Infinity })
    return 'new'
  }

  private markDown (peer: string, down: Down): void {
    this.downAt.set(peer, down)
    this.dispatchEvent(new CustomEvent('down', { detail: peer }))
  }

  /** The NEIGHBOURS members closest to `peer` in key space (itself left out), closest first. */
  neighbours (peer: string, n = NEIGHBOURS): string[] {
    const to = peerKadId(peer)
    const ranked = this.members().filter(p => p !== peer).map(p => ({ p, id: peerKadId(p) }))
    ranked.sort((a, b) => compareDistance(to, a.id, b.id) || (a.p < b.p ? -1 : a.p > b.p ? 1 : 0))
    return ranked.slice(0, n).map(x => x.p)
  }

  /**
   * The members `watcher` is a neighbour of (neighbours(p, n) holds it): those it watches. Exact,
   * not a guess from the watcher's own closest (XOR closeness is not a ranking both ways: a member
   * alone in its part of the key space has watchers that each have many members closer than it,
   * and a shortlist of the watcher's closest would leave exactly that member unwatched). For each
   * member the others are counted while closer to it than the watcher, stopping at n: a member
   * far from the watcher stops after a few, so a pass costs about n x members x log(members)
   * comparisons, not members squared.
   */
  watchedBy (watcher: string, n = NEIGHBOURS): string[] {
    const members = this.members()
    if (!members.includes(watcher)) return []
    const ids = members.map(p => peerKadId(p))
    const me = peerKadId(watcher)
    const out: string[] = []
    for (let i = 0; i < members.length; i++) {
      const p = members[i]
      if (p === watcher) continue
      const to = ids[i]
      let closer = 0
      for (let j = 0; j < members.length && closer < n; j++) {
        if (j === i || members[j] === watcher) continue
        // neighbours()'s order: distance, then the id string
        const c = compareDistance(to, ids[j], me)
        if (c < 0 || (c === 0 && members[j] < watcher)) closer++
      }
      if (closer < n) out.push(p)
    }
    return out
  }

  /** Drop the records not refreshed for memberExpireMs(this table's size) (this host's own never). */
  expire (): string[] {
    const out: string[] = []
    const horizon = this.now() - memberExpireMs(this.entries.size)
    if (this.restored.size > 0 && this.clock() - this.restoredAt > memberExpireMs(this.entries.size)) this.restored.clear()
    for (const [peer, e] of this.entries) {
      if (peer === this.self || e.seq >= horizon) continue
      this.entries.delete(peer)
      this.downAt.delete(peer)
      out.push(peer)
      this.dispatchEvent(new CustomEvent('expired', { detail: peer }))
    }
    return out
  }
}
