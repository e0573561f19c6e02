// What each host keeps, counted by its keeper (issue 14 item 5, "status without surveys"): every
// chunk has one keeper, its first-ranked live member (placement.ts keeperOf), which surveys it in
// its repair passes and repairs it. So each host counts the chunks it is the keeper of by health
// (from its health book, status.ts: what its passes, placements and repairs saw; no extra survey),
// signs those few numbers, and tells them on change on its space notices to the peers it is
// connected to (net/space-notice.ts). In a full mesh that is every member: a host's network
// totals are the sum of the latest counts of the members up now. Beyond the full mesh the counts
// are summed along a tree (kept-tree.ts): each host sends its group's sum (its own counts and its
// children's sums, a sum record: the counts and the hosts summed, signed) to its parent
// (kept-service.ts 'sum' calls), at most once per keptIntervalOf(members, 'up') and only when
// it moved, its parent changed or the hosts up did, or unchanged after KEPT_RESEND_INTERVALS up
// intervals (a parent that restarted forgot it, and nothing the child sees changed); a sum the
// parent did not take (taken: false: it does not see the sender as its child, or not yet as a
// member) or could not be sent is sent again after the up interval, doubling. The root publishes
// the network's totals on gossip (tagged KEPT_SUM_GOSSIP_TAG, which a host of an older version
// ignores) at most once per keptIntervalOf(members, 'root'), at the up pace for its first
// KEPT_ROOT_SETTLE_INTERVALS up intervals as root (its first totals lack the sums of the old
// root's children), and, after the hosts up changed, once the sums the change set off climbed the
// tree (keptRootSettleMs); every host keeps the root's latest, from gossip or, should gossip miss
// it, from its parent's answer to its next sum (kept-service.ts). Tree or not is decided on the
// member table's size (keptTreeMode), the same on every host, not on its connections.
//
// Trust: in a full mesh each host's counts are signed by it, and a host sums them itself. Along
// the tree the totals are as honest as the root and the hosts between it and the counts: any
// member can make keys until one is the smallest id up (among n hosts about n tries, cheap; a
// salt of the ranking by a known epoch would only make it redo that each epoch, so it is not
// done) and dictate the totals, and an inner host can alter its group's sum within its bounds.
// A host checks: the root's signature and that it is the smallest id up here, that its totals
// claim at most the hosts up here or the members not declared down in its member table,
// whichever is more (+ KEPT_GROUP_SLACK; a host starting sees only its connected peers up);
// a parent, that a sum is its child's
// own, of at most twice its group's hosts. The root's figures are not checked against a host's
// own (they are minutes old: its group's newer counts may exceed them honestly). (Every host's record on gossip, as before the tree, was ~3.5
// records a second network-wide at 1,000 hosts under churn: over 100 kbit/s a host with gossip's
// copies and IHAVEs; along the tree ~0.13 kbit/s, the root's totals in each sum's answer
// (~200 bytes) a little more, `npm run sim` kept.h1000.) Either way `darkfs
// status` answers from memory, with no message, and sees a chunk its keeper repaired as
// redundant without asking anyone; along the tree its totals are minutes old (their age says
// how old: the oldest count behind them). An idle host tells nothing, so a host that starts is
// served the table of records (kept-service.ts, after the member table; and by anti-entropy, as
// the member table is; along the tree the root's totals), and a gossiped record that reached no
// peer (a host that just started) is published again until one got it.
//
// The states (disjoint):
//   redundant    every fragment on every host it must be on
//   degraded     fewer fragments than wanted, but more than k on live hosts (or copies: more than one)
//   atRisk       exactly k fragments on live hosts (one copy; or only its keeper holds it): one loss from lost
//   unreachable  fewer than k fragments reachable while some holder could not be asked
//   lost         fewer than k fragments anywhere, confirmed (status.ts)
// with the bytes of the chunks in each (their plaintext size).
//
// A record: dag-cbor { t: 'kept', r, s }, r = dag-cbor { peer, seq, c: [5 counts], b: [5 byte
// sums], age } signed by `peer` (its libp2p key, net/signing.ts); `seq` increases with each
// record of a host (a restart goes on above it: it starts from the clock), `age` is how old
// (ms) the oldest observation behind the counts was when signed. A record is taken only when
// signed by the host it describes, at most KEPT_MESSAGE_BYTES, with every figure a safe integer
// >= 0 (counts at most MAX_KEPT_CHUNKS), and newer than the one held for that host. A sum record
// has a sixth field, n, the hosts summed (1 to MAX_MEMBERS; counts at most n x MAX_KEPT_CHUNKS):
// a parent takes it from its signer only (the caller), of a member, counted while the signer is
// its child; a host takes the network's totals from the root only (the smallest id up here).
import * as dagCbor from '@ipld/dag-cbor'
import type { Signer, Verify } from '../tree/index.ts'
import { FULL_MESH_PEERS, MAX_MEMBERS } from '../net/index.ts'
import { KEPT_TREE_BITS, keptGroupSize, keptParent, keptRoot, keptUpDigest } from './kept-tree.ts'

/** The states a keeper counts, in the order of a record's arrays. */
export const KEPT_STATES = ['redundant', 'degraded', 'atRisk', 'unreachable', 'lost'] as const
export type KeptState = typeof KEPT_STATES[number]

/** Largest signed record taken (one is about 170 bytes). */
export const KEPT_MESSAGE_BYTES = 512
/** Most chunks one host may say it keeps in one state (2^40: far beyond any disk). */
export const MAX_KEPT_CHUNKS = 2 ** 40
/** The first byte of a gossiped record (host.gossip.handleTagged); members.ts uses 0x4d. */
export const KEPT_GOSSIP_TAG = 0x4b
/**
 * The first byte of the root's totals on gossip (a sum record, along the tree): not
 * KEPT_GOSSIP_TAG, whose handler on a host of an older version refuses a record with a sixth
 * field and has gossip score down the peer that forwarded it; such a host has no handler for
 * this tag and ignores it (host.ts).
 */
export const KEPT_SUM_GOSSIP_TAG = 0x53
/** Least time between two records of one host (changes in between go out together). */
export const KEPT_MIN_INTERVAL_MS = 2_000
/**
 * ...and more with more members: a record per KEPT_MS_PER_MEMBER of the network's, so while
 * every host's counts move (a repair after a loss) every host hears about 4 records a second
 * whatever the network's size (about 1 KB/s; at 1,000 members a host tells its counts at most
 * every 250 s). Idle, none: a record goes out only when a figure moved.
 */
export const KEPT_MS_PER_MEMBER = 250
/** Longest wait between a change and its record. */
export const KEPT_MAX_INTERVAL_MS = 600_000
/** A record gossip sent to nobody is published again after this, doubling up to the max. */
export const KEPT_PUBLISH_RETRY_MS = 500
export const KEPT_PUBLISH_RETRY_MAX_MS = 30_000
/** Wait after a change before counting (changes come in bursts: a pass's batches). */
export const KEPT_DEBOUNCE_MS = 500

export class KeptRecordError extends Error {
  override readonly name = 'KeptRecordError'
}

/** One host's counts: chunks and bytes per state, and the age of its oldest observation (ms). */
export interface KeptCounts {
  chunks: Record<KeptState, number>
  bytes: Record<KeptState, number>
  ageMs: number
}

export function emptyKept (): KeptCounts {
  const zero = (): Record<KeptState, number> => Object.fromEntries(KEPT_STATES.map(s => [s, 0])) as Record<KeptState, number>
  return { chunks: zero(), bytes: zero(), ageMs: 0 }
}

/** Whether two counts say the same (the age aside: only a change of a figure is told). */
export function sameKept (a: KeptCounts | undefined, b: KeptCounts): boolean {
  return a !== undefined && KEPT_STATES.every(s => a.chunks[s] === b.chunks[s] && a.bytes[s] === b.bytes[s])
}

/** Least time between two records of a host among `members` (KEPT_MIN_INTERVAL_MS, KEPT_MS_PER_MEMBER). */
export function keptInterval (members: number): number {
  return Math.min(KEPT_MAX_INTERVAL_MS, Math.max(KEPT_MIN_INTERVAL_MS, members * KEPT_MS_PER_MEMBER))
}

/**
 * Beyond the full mesh the counts are summed along a tree (kept-tree.ts): a host sends its
 * group's sum to its parent at most once per keptUpInterval(members), 60 ms per member up to a
 * minute (a few seconds in a network of tens of hosts, a minute from 1,000); the root publishes the network's
 * totals on gossip at most once per keptRootInterval(members), 0.6 s per member up to 10 minutes:
 * network-wide one gossip message per 10 minutes from 1,000 members, whatever the size.
 */
export const KEPT_UP_MS_PER_MEMBER = 60
export const KEPT_UP_MAX_INTERVAL_MS = 60_000
export const KEPT_ROOT_MS_PER_MEMBER = 600
export const KEPT_ROOT_MAX_INTERVAL_MS = 600_000

/**
 * An unchanged sum is sent again after this many up intervals (10 minutes from 1,000 members): a
 * parent that restarted (it forgets its children) or did not take it (it saw the tree otherwise
 * for a moment) counts it again within that, though nothing this host sees changed. A send that
 * failed or was not taken is tried again after the up interval, doubling up to this.
 */
export const KEPT_RESEND_INTERVALS = 10
/**
 * A host that just became the root publishes the totals at the up pace (not the root's) for this
 * many up intervals: the children of the root gone send it their sums within about one, and its
 * first totals (published at once) lack them.
 */
export const KEPT_ROOT_SETTLE_INTERVALS = 2

/**
 * How long the root waits, after the hosts up changed, before it publishes totals: the up
 * intervals a sum takes to climb the tree (one a level below the root, about log16(members)),
 * and one more. The change makes every host send its sum again, each level at most an up
 * interval after its last; published at once, the totals lacked most of them (a host that joined
 * was counted only in the root's next totals, a root interval later: 17 s at 29 members, 10
 * minutes from 1,000), and took one more message on gossip. Counted from the first change since
 * the root's last totals, so a stream of changes delays them no more.
 */
export function keptRootSettleMs (members: number, interval: (members: number, role: KeptRole) => number = keptIntervalOf): number {
  const levels = Math.max(1, Math.ceil(Math.log2(Math.max(2, members)) / KEPT_TREE_BITS))
  return (levels + 1) * interval(members, 'up')
}

/** A child's sum may claim at most twice the hosts up in its group here, and this many more (views of who is up differ a while). */
export const KEPT_GROUP_SLACK = 16

/**
 * Whether a network of `members` (the member table's size, this host included) sums its counts
 * along the tree: beyond FULL_MESH_PEERS members. Decided on the member table, which every host's
 * agrees on (anti-entropy), not on this host's connections (host.beyondFullMesh() follows its
 * --max-connections and the peers it remembers): all hosts of a network sum the same way, and a
 * host's sum never goes to a parent that ignores it.
 */
export function keptTreeMode (members: number, above = FULL_MESH_PEERS): boolean {
  return members > above
}

/** What a host's record is for: told to its peers (a full mesh), sent up the tree, or the root's totals on gossip. */
export type KeptRole = 'tell' | 'up' | 'root'

/** Least time between two records of a host in `role` among `members` (see above). */
export function keptIntervalOf (members: number, role: KeptRole): number {
  if (role === 'tell') return keptInterval(members)
  const [per, max] = role === 'up' ? [KEPT_UP_MS_PER_MEMBER, KEPT_UP_MAX_INTERVAL_MS] : [KEPT_ROOT_MS_PER_MEMBER, KEPT_ROOT_MAX_INTERVAL_MS]
  return Math.min(max, Math.max(KEPT_MIN_INTERVAL_MS, members * per))
}

/** A parent's answer to a sum sent up: taken or not, and the root's totals it holds (kept-service.ts). */
export interface KeptSumAnswer { taken: boolean, root?: Uint8Array }

/** A host's counts as signed, and when they were taken here; `hosts`: a sum record's hosts summed. */
export interface KeptRecord extends KeptCounts { peer: string, seq: number, msg: Uint8Array, heardAt: number, hosts?: number }

/** `rec` as its signer's in `records`, heard last (of at most `max` signers: the one heard first dropped). */
function putNewest (records: Map<string, KeptRecord>, rec: KeptRecord, max: number): void {
  records.delete(rec.peer)
  records.set(rec.peer, rec)
  if (records.size > max) records.delete(records.keys().next().value as string)
}

/** Signers whose totals a host keeps while they are not the root here (KeptNotices.offerRoot). */
export const KEPT_ROOT_CANDIDATES = 16
/** Records of hosts not yet members kept until they are (KeptNotices.early): ~0.5 MB at most. */
export const KEPT_EARLY_MAX = 1024
/** Early records (of hosts not members here yet) gossip forwards a minute; beyond, kept but not forwarded. */
export const KEPT_EARLY_FORWARDS = 64

/**
 * Sign this host's counts as record `seq`; with `hosts`, a sum record: the counts of that many
 * hosts summed (its group's, kept-tree.ts), told up the tree or, by the root, on gossip.
 */
export async function signKept (signer: Signer, seq: number, counts: KeptCounts, hosts?: number): Promise<Uint8Array> {
  const r = dagCbor.encode({
    peer: signer.author,
    seq,
    c: KEPT_STATES.map(s => counts.chunks[s]),
    b: KEPT_STATES.map(s => counts.bytes[s]),
    age: Math.max(0, Math.round(counts.ageMs)),
    ...(hosts === undefined ? {} : { n: hosts })
  })
  const msg = dagCbor.encode({ t: 'kept', r, s: await signer.sign(r) })
  if (msg.byteLength > KEPT_MESSAGE_BYTES) throw new RangeError(`a kept record is at most ${KEPT_MESSAGE_BYTES} bytes, this one ${msg.byteLength}`)
  return msg
}

const figures = (v: unknown, max: number, what: string): number[] => {
  if (!Array.isArray(v) || v.length !== KEPT_STATES.length) throw new KeptRecordError(`a kept record's ${what} are ${KEPT_STATES.length} figures`)
  for (const x of v) if (!Number.isSafeInteger(x) || x < 0 || x > max) throw new KeptRecordError(`a kept record's ${what} are integers from 0 to ${max}`)
  return v as number[]
}

/**
 * Decode and check a record (its signature included): the record, or KeptRecordError when it is
 * malformed, oversized, out of range or not signed by the host it names.
 */
export async function openKept (msg: Uint8Array, verify: Verify, heardAt = Date.now()): Promise<KeptRecord> {
  if (!(msg instanceof Uint8Array)) throw new KeptRecordError('a kept record is bytes')
  if (msg.byteLength > KEPT_MESSAGE_BYTES) throw new KeptRecordError(`kept record of ${msg.byteLength} bytes, over ${KEPT_MESSAGE_BYTES}`)
  let v: any
  let r: any
  try {
    v = dagCbor.decode(msg)
    if (typeof v !== 'object' || v === null || v.t !== 'kept' || !(v.r instanceof Uint8Array) || !(v.s instanceof Uint8Array) || Object.keys(v).length !== 3) throw new Error('not { t, r, s }')
    r = dagCbor.decode(v.r)
  } catch (err) {
    throw new KeptRecordError(`bad kept record: ${(err as Error).message}`)
  }
  const sum = typeof r === 'object' && r !== null && 'n' in r
  if (typeof r !== 'object' || r === null || Object.keys(r).length !== (sum ? 6 : 5)) throw new KeptRecordError('a kept record is { peer, seq, c, b, age } and a sum record { peer, seq, c, b, age, n }')
  if (sum && (!Number.isSafeInteger(r.n) || r.n < 1 || r.n > MAX_MEMBERS)) throw new KeptRecordError(`a sum record's hosts are an integer from 1 to ${MAX_MEMBERS}`)
  const hosts: number = sum ? r.n : 1
  if (typeof r.peer !== 'string' || r.peer.length === 0 || r.peer.length > 128) throw new KeptRecordError('a kept record names its peer')
  if (!Number.isSafeInteger(r.seq) || r.seq < 0) throw new KeptRecordError('a kept record\'s seq is an integer >= 0')
  if (!Number.isSafeInteger(r.age) || r.age < 0) throw new KeptRecordError('a kept record\'s age is an integer >= 0')
  const c = figures(r.c, Math.min(Number.MAX_SAFE_INTEGER, MAX_KEPT_CHUNKS * hosts), 'counts')
  const b = figures(r.b, Number.MAX_SAFE_INTEGER, 'bytes')
  if (!(await verify(r.peer, v.r, v.s))) throw new KeptRecordError(`kept record of ${String(r.peer)} not signed by it`)
  const of = (xs: number[]): Record<KeptState, number> => Object.fromEntries(KEPT_STATES.map((s, i) => [s, xs[i]])) as Record<KeptState, number>
  return { peer: r.peer, seq: r.seq, chunks: of(c), bytes: of(b), ageMs: r.age, msg, heardAt, ...(sum ? { hosts } : {}) }
}

/** The network totals `darkfs status` shows: the sum of the latest counts of the members up now. */
export interface NetworkTotals {
  /** Chunks per state, summed; `total` over every state. */
  chunks: Record<KeptState, number> & { total: number }
  bytes: Record<KeptState, number> & { total: number }
  /** Members up now whose counts are known (this host included), of `members` up. */
  reporting: number
  members: number
  /** Age (ms) of the oldest observation behind the sums (each host's as told, plus since it was heard); null: none. */
  ageMs: number | null
}

/** Network totals from summed counts: `reporting` hosts summed of `members` up. */
function totalsOf (sum: KeptCounts, reporting: number, members: number, ageMs: number | null): NetworkTotals {
  const total = (x: Record<KeptState, number>): number => KEPT_STATES.reduce((a, s) => a + x[s], 0)
  return {
    chunks: { ...sum.chunks, total: total(sum.chunks) },
    bytes: { ...sum.bytes, total: total(sum.bytes) },
    reporting,
    members,
    ageMs
  }
}

/** The latest record of each host. */
export class KeptTable {
  private readonly records = new Map<string, KeptRecord>()

  /** A record (checked already): 'new' when newer than the one held for its host, else 'old'. */
  put (rec: KeptRecord): 'new' | 'old' {
    const held = this.records.get(rec.peer)
    if (held !== undefined && held.seq >= rec.seq) return 'old'
    this.records.set(rec.peer, rec)
    return 'new'
  }

  get (peer: string): KeptRecord | undefined {
    return this.records.get(peer)
  }

  /** The record held for each host. */
  all (): IterableIterator<KeptRecord> {
    return this.records.values()
  }

  /** The sum over `up` (the members up now), with this host's own counts `own` (now). */
  totals (up: Iterable<string>, self: string, own: KeptCounts, now = Date.now()): NetworkTotals {
    const sum = emptyKept()
    let reporting = 0
    let members = 0
    let oldest = -1
    const add = (k: KeptCounts, age: number): void => {
      reporting++
      for (const s of KEPT_STATES) { sum.chunks[s] += k.chunks[s]; sum.bytes[s] += k.bytes[s] }
      if (age > oldest) oldest = age
    }
    for (const p of new Set(up)) {
      members++
      if (p === self) { add(own, own.ageMs); continue }
      const r = this.records.get(p)
      if (r !== undefined) add(r, r.ageMs + Math.max(0, now - r.heardAt))
    }
    return totalsOf(sum, reporting, members, reporting === 0 ? null : oldest)
  }
}

/** The clock and timers KeptNotices runs on: the process's, or a simulator's virtual ones (harness/sim/kept.ts). */
export interface KeptClock {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

/** The process's clock; its timers do not hold the process open. */
export const realKeptClock: KeptClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => { const t = setTimeout(fn, ms); t.unref?.(); return t },
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout> | undefined) }
}

export interface KeptNoticesComponents {
  signer: Signer
  verify: Verify
  /** This host's counts now (HealthBook.keptCounts over the hosts up). */
  counts: () => KeptCounts
  /** The members up now (whose counts are summed), this host included. */
  up: () => string[]
  /** Whether a peer is a member (records of others are not kept). */
  member: (peer: string) => boolean
  /** Tell the connected peers this host's record (SpaceNotices.tellKept(): it reads own()). */
  tell: () => void
  /**
   * Publish a record on gossip (tagged KEPT_GOSSIP_TAG): the peers it was sent to. Given beyond
   * the full mesh only, where peers are not all connected.
   */
  publish?: () => ((msg: Uint8Array, sum?: boolean) => Promise<string[]>) | undefined
  /** Called with each record refused (a forged or malformed one) and the peer it came from. */
  onRefused?: (err: KeptRecordError, from: string) => void
  /** Clock and timers (default realKeptClock). */
  clock?: KeptClock
  /** Least time between two records of this host in `role` among `members` (default keptIntervalOf; the simulator tries others). */
  interval?: (members: number, role: KeptRole) => number
  /**
   * Send this host's sum record to its parent in the tree (kept-service.ts sendKeptSum): given,
   * beyond the full mesh (publish() given) the counts are summed along the tree (kept-tree.ts)
   * and only the root's totals go on gossip; not given, every host's record goes on gossip.
   */
  sendUp?: (parent: string, msg: Uint8Array) => Promise<boolean | KeptSumAnswer>
  /**
   * The members in the member table (up or not): the root's totals may claim at most as many
   * hosts as this or the hosts up, whichever is more (+ slack). A host starting sees only its
   * connected peers up until it knows itself beyond the full mesh. Default: the hosts up.
   */
  members?: () => number
  /**
   * Whether the counts are summed along the tree (with sendUp and publish given): decided on what
   * every host sees alike (the daemon: the member table's size, and a feature every host
   * announces), not on this host's connections. Default: whenever publish() is given.
   */
  tree?: () => boolean
}

/**
 * This host's keeper counts told on change, and every member's heard (KeptTable). A change
 * (an observation in the health book, the hosts up changing) calls changed(): the counts are
 * taken again after KEPT_DEBOUNCE_MS, at most once per keptInterval(members up), and told only
 * when a figure moved. An idle network tells nothing.
 */
export class KeptNotices {
  readonly table = new KeptTable()
  private readonly c: KeptNoticesComponents
  private readonly clock: KeptClock
  /** Sequence number of this host's records (from the clock: a restart goes on above it). */
  private seq: number
  private own: Uint8Array | undefined
  /** The record of this host last put on gossip (gossipOwn). */
  private gossiped: Uint8Array | undefined
  private ownSeq = 0
  private told: KeptCounts | undefined
  private toldAt = 0
  /** The tree (sendUp given): the children's latest sums, the root's totals, the sum last sent and when. */
  private readonly children = new Map<string, KeptRecord>()
  private root: KeptRecord | undefined
  /** Totals of members not the root here when they came (offerRoot), by signer, taken once one is. */
  private readonly candidates = new Map<string, KeptRecord>()
  private sent: { parent: string | undefined, sum: KeptCounts, hosts: number, up: number } | undefined
  private sentAt = 0
  /** Sends up failed or not taken in a row (the next is tried after the up interval x 2^failures), to `failedParent`. */
  private failures = 0
  private failedParent: string | undefined
  /** Since when this host is the root (in the tree), while it is. */
  private rootSince: number | undefined
  /** At the root: the first change of the hosts up since its last totals (keptRootSettleMs). */
  private upChangedAt: number | undefined
  /** When this host last published the root's totals. */
  private publishedAt: number | undefined
  private settle: unknown
  /** Wakes a host along the tree to send its unchanged sum again (KEPT_RESEND_INTERVALS). */
  private refresh: unknown
  private timer: unknown
  private again: unknown
  private stopped = false
  /** Records refused so far (forged, malformed, oversized). */
  refused = 0
  /**
   * Signed records of hosts not members here yet, the newest per host (at most KEPT_EARLY_MAX,
   * the oldest heard dropped first): a host that just started gossips its record beside its
   * member record, and the record may arrive first. Taken when the host becomes a member
   * (memberAdded(), on the member table's 'member' event and a peer's connect); before, such a
   * record was dropped and an idle host never tells a newer one, so the
   * gap waited for an anti-entropy round with a peer that had it.
   */
  private readonly early = new Map<string, KeptRecord>()
  /** Early records forwarded (taken as 'new') in the minute from `start`. */
  private earlyWindow = { start: 0, forwarded: 0 }

  constructor (c: KeptNoticesComponents) {
    this.c = c
    this.clock = c.clock ?? realKeptClock
    this.seq = this.clock.now() * 1000
  }

  /** This host's signed record, once it has one. */
  ownRecord (): Uint8Array | undefined {
    return this.own
  }

  /**
   * The signed records this host holds of members (kept-service.ts serves and digests them):
   * its own and the latest of each other member, ordered by host.
   */
  held (): Array<{ peer: string, seq: number, msg: Uint8Array }> {
    // along the tree, the root's totals only: what a host starting needs, the same on every host
    if (this.tree()) return this.root === undefined ? [] : [{ peer: this.root.peer, seq: this.root.seq, msg: this.root.msg }]
    const out: Array<{ peer: string, seq: number, msg: Uint8Array }> = []
    if (this.own !== undefined) out.push({ peer: this.c.signer.author, seq: this.ownSeq, msg: this.own })
    for (const r of this.table.all()) if (this.c.member(r.peer)) out.push({ peer: r.peer, seq: r.seq, msg: r.msg })
    return out.sort((a, b) => a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0)
  }

  /** Along the tree, the root's totals this host holds (signed; its own at the root): given down the tree in the answer to each sum sent up. */
  rootTotals (): Uint8Array | undefined {
    return this.tree() ? this.root?.msg : undefined
  }

  /** Something the counts follow changed: count again soon, tell if a figure moved. */
  changed (): void {
    if (this.stopped || this.timer !== undefined) return
    const up = this.c.up()
    const tree = this.tree()
    const role: KeptRole = !tree ? 'tell' : keptParent(up, this.c.signer.author) === undefined ? 'root' : 'up'
    const now = this.clock.now()
    const interval = this.c.interval ?? keptIntervalOf
    if (role !== 'root') { this.rootSince = undefined; this.upChangedAt = undefined }
    else this.rootSince ??= now
    let every = interval(up.length, role)
    // a new root: at the up pace while its children's sums come in (KEPT_ROOT_SETTLE_INTERVALS)
    if (role === 'root' && now - (this.rootSince ?? now) < KEPT_ROOT_SETTLE_INTERVALS * interval(up.length, 'up')) every = Math.min(every, interval(up.length, 'up'))
    // sends not taken: backing off, from the parent that did not take them (a new parent is sent
    // to at the up pace)
    if (role === 'up' && this.failures > 0 && keptParent(up, this.c.signer.author) !== this.failedParent) this.failures = 0
    if (role === 'up' && this.failures > 0) every = Math.min(KEPT_RESEND_INTERVALS * every, every * 2 ** Math.min(this.failures - 1, 10))
    // (the root's pace from its last totals: a new root's last sum sent up does not hold its first back)
    const last = role === 'root' ? (this.publishedAt !== undefined && this.publishedAt >= (this.rootSince ?? now) ? this.publishedAt : -Infinity) : tree ? this.sentAt : this.toldAt
    const wait = Math.max(KEPT_DEBOUNCE_MS, last + every - now)
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.recount().catch((err: Error) => { if (!this.stopped) this.c.onRefused?.(new KeptRecordError(`own counts not signed: ${err.message}`), this.c.signer.author) })
    }, wait)
  }

  /**
   * Count now; sign and tell when a figure moved. Unmoved, a record told only to the connected
   * peers (signed in a full mesh) goes on gossip once the host is beyond it (gossipOwn).
   */
  async recount (): Promise<boolean> {
    const counts = this.c.counts()
    if (this.tree()) await this.sumUp(counts)
    if (sameKept(this.told, counts)) {
      this.gossipOwn()
      return false
    }
    this.told = counts
    this.toldAt = this.clock.now()
    const seq = ++this.seq
    const own = await signKept(this.c.signer, seq, counts)
    // a recount begun later signed a newer one meanwhile
    if (seq < this.ownSeq) return false
    this.own = own
    this.ownSeq = seq
    if (this.stopped) return false
    // beyond the full mesh gossip reaches every member (the connected peers too); in a full mesh
    // every member is a peer, told on its space notice. A peer that connects later gets the
    // record on the space notice it is sent then
    if (this.c.publish?.() === undefined) this.c.tell()
    else this.gossipOwn()
    return true
  }

  /**
   * The hosts up changed (the membership's events): along the tree, the children's sums of hosts
   * no longer children here are forgotten now (should one be a child again, its sum counts once
   * it sends it again, which it does as the hosts up changed), then as changed().
   */
  upChanged (): void {
    const up = this.c.up()
    const tree = this.tree()
    // totals heard from a host that is the root now (offerRoot), no older than a root interval
    if (this.candidates.size > 0) {
      const now = this.clock.now()
      const oldest = now - (this.c.interval ?? keptIntervalOf)(up.length, 'root')
      for (const [peer, r] of this.candidates) if (r.heardAt < oldest) this.candidates.delete(peer)
      const root = keptRoot(up)
      const candidate = root === undefined ? undefined : this.candidates.get(root)
      if (candidate !== undefined) {
        this.candidates.delete(candidate.peer)
        const held = this.root
        if (held?.peer !== candidate.peer || held.seq < candidate.seq) this.takeRoot(candidate, up, candidate.peer)
      }
    }
    // the root: its next totals wait for the sums the change sets off (keptRootSettleMs)
    // (a connection alone, the hosts up as at its last totals, is no change)
    if (tree && keptParent(up, this.c.signer.author) === undefined && keptUpDigest(up) !== this.sent?.up) this.upChangedAt ??= this.clock.now()
    if (tree && this.children.size > 0) {
      const self = this.c.signer.author
      for (const peer of [...this.children.keys()]) if (keptParent(up, peer) !== self) this.children.delete(peer)
    }
    // backing off from a parent that is no longer this host's: the new one is sent to at the up pace
    if (this.failures > 0 && this.timer !== undefined && tree && keptParent(up, this.c.signer.author) !== this.failedParent) {
      this.clock.clearTimeout(this.timer)
      this.timer = undefined
    }
    this.changed()
  }

  /** Whether the counts are summed along the tree: beyond the full mesh, with sendUp given. */
  private tree (): boolean {
    return this.c.sendUp !== undefined && this.c.publish?.() !== undefined && (this.c.tree?.() ?? true)
  }

  /**
   * This host's group's sum (kept-tree.ts): its own counts and the latest sum of each child it
   * has among the hosts `up`, with the hosts summed and the oldest observation behind them.
   */
  private groupSum (up: readonly string[], own: KeptCounts): { sum: KeptCounts, hosts: number } {
    const self = this.c.signer.author
    const now = this.clock.now()
    const sum = emptyKept()
    let hosts = 1
    let age = own.ageMs
    const add = (k: KeptCounts): void => { for (const s of KEPT_STATES) { sum.chunks[s] += k.chunks[s]; sum.bytes[s] += k.bytes[s] } }
    add(own)
    for (const [peer, r] of this.children) {
      // a host no longer a child here (gone down, or another's child now) is forgotten: should
      // it be one again, its sum counts once it sends it again (it does when the hosts up change)
      if (keptParent(up, peer) !== self) { this.children.delete(peer); continue }
      add(r)
      hosts += r.hosts ?? 1
      age = Math.max(age, r.ageMs + Math.max(0, now - r.heardAt))
    }
    sum.ageMs = age
    return { sum, hosts }
  }

  /**
   * Along the tree: the group's sum to the parent when it moved, the parent changed or the hosts
   * up did (a parent forgets a host no longer its child, one down for a while included), or
   * unchanged after KEPT_RESEND_INTERVALS up intervals; or, at the root, the network's totals on
   * gossip. A send that failed or was not taken is tried again after the up interval, doubling
   * (changed()).
   */
  private async sumUp (own: KeptCounts): Promise<void> {
    const up = this.c.up()
    const parent = keptParent(up, this.c.signer.author)
    if (parent === null) return
    const { sum, hosts } = this.groupSum(up, own)
    const sent = this.sent
    const digest = keptUpDigest(up)
    const now = this.clock.now()
    // unchanged: sent again after KEPT_RESEND_INTERVALS up intervals (a parent that restarted)
    const resendMs = KEPT_RESEND_INTERVALS * (this.c.interval ?? keptIntervalOf)(up.length, 'up')
    if (parent === undefined && this.upChangedAt !== undefined) {
      const until = this.upChangedAt + keptRootSettleMs(up.length, this.c.interval)
      if (now < until) {
        this.clock.clearTimeout(this.settle)
        this.settle = this.clock.setTimeout(() => { this.settle = undefined; this.changed() }, until - now)
        return
      }
      // settled (whether or not the totals moved: the hosts up may be back as they were)
      this.upChangedAt = undefined
    }
    if (sent !== undefined && sent.parent === parent && sent.hosts === hosts && sent.up === digest && sameKept(sent.sum, sum) && (parent === undefined || now < this.sentAt + resendMs)) return
    this.sentAt = now
    this.sent = { parent, sum, hosts, up: digest }
    const seq = ++this.seq
    const msg = await signKept(this.c.signer, seq, sum, hosts)
    if (this.stopped || this.sent?.sum !== sum) return
    if (parent === undefined) {
      this.upChangedAt = undefined
      this.publishedAt = now
      this.root = { ...sum, peer: this.c.signer.author, seq, msg, heardAt: this.clock.now(), hosts }
      this.publishRoot(this.root)
      return
    }
    let failed: string | undefined
    let root: Uint8Array | undefined
    try {
      const answer = await this.c.sendUp?.(parent, msg)
      const taken = typeof answer === 'object' ? answer.taken : answer
      if (taken === false) failed = 'not taken'
      if (typeof answer === 'object') root = answer.root
    } catch (err) {
      // logged below (onRefused), with the parent it was sent to, and tried again
      failed = (err as Error).message
    }
    if (this.stopped) return
    // the root's totals down the tree, in the parent's answer: a host gossip missed them on (a
    // message published once, while its connections change) is no staler than its next sum
    // sent (KEPT_RESEND_INTERVALS up intervals at most, idle), not until the next totals or an
    // anti-entropy round that reaches a peer with them
    if (root !== undefined && this.tree()) await this.take(root, parent, true).catch(() => 'reject')
    if (this.stopped) return
    if (failed === undefined) {
      this.failures = 0
      // nothing changing: sent again after KEPT_RESEND_INTERVALS up intervals
      this.clock.clearTimeout(this.refresh)
      this.refresh = this.clock.setTimeout(() => { this.refresh = undefined; this.changed() }, resendMs)
      return
    }
    // a failed send: tried again later (after the up interval, doubling: changed())
    if (this.sent?.sum === sum) this.sent = undefined
    if (parent !== this.failedParent) this.failures = 0
    this.failedParent = parent
    this.failures++
    this.c.onRefused?.(new KeptRecordError(`sum not sent to ${parent}: ${failed}`), this.c.signer.author)
    this.changed()
  }

  /**
   * The root's totals on gossip until some peer was sent them (as publishUntilSent, signed anew
   * each retry, their age grown by the wait), while this host is the root (one that was away
   * sums anew when it is back, and tells what it sums then).
   */
  private publishRoot (root: KeptRecord, wait = KEPT_PUBLISH_RETRY_MS): void {
    const publish = this.c.publish?.()
    const current = (): boolean => !this.stopped && this.root === root && keptRoot(this.c.up()) === this.c.signer.author
    if (!current() || publish === undefined) return
    // a failed publish is one that reached nobody: tried again as such
    void publish(root.msg, true).catch(() => []).then(sent => {
      if (sent.length > 0 || !current()) return
      this.clock.clearTimeout(this.again)
      this.again = this.clock.setTimeout(() => {
        if (!current()) return
        const seq = ++this.seq
        const now = this.clock.now()
        const aged = { ...root, ageMs: root.ageMs + Math.max(0, now - root.heardAt) }
        void signKept(this.c.signer, seq, aged, root.hosts).then(msg => {
          if (!current()) return
          this.root = { ...aged, seq, msg, heardAt: now }
          this.publishRoot(this.root, Math.min(wait * 2, KEPT_PUBLISH_RETRY_MAX_MS))
        }, (err: Error) => { if (!this.stopped) this.c.onRefused?.(new KeptRecordError(`own counts not signed: ${err.message}`), this.c.signer.author) })
      }, wait)
    })
  }

  /**
   * A child's sum sent up the tree (kept-service.ts, from `from`): 'new' when taken, 'old' when
   * not newer or not of a member, 'reject' when forged, malformed, oversized or not the sender's own sum.
   */
  async takeSum (msg: Uint8Array, from: string): Promise<'new' | 'old' | 'reject'> {
    // a flood from one host: sums closer together than a host sends them (keptIntervalOf(_, 'up'),
    // at least KEPT_MIN_INTERVAL_MS) are dropped before their signature is checked
    const last = this.children.get(from)
    if (last !== undefined && this.clock.now() - last.heardAt < KEPT_MIN_INTERVAL_MS / 4) return 'old'
    // and a sender not a child here is not counted: refused before its signature is checked (the
    // parents are memoised on the hosts up); it tries again later, and is counted once the
    // views of the tree agree
    if (keptParent(this.c.up(), from) !== this.c.signer.author) return 'old'
    let rec: KeptRecord
    try {
      rec = await openKept(msg, this.c.verify, this.clock.now())
      if (rec.hosts === undefined || rec.peer !== from) throw new KeptRecordError(`a sum sent up the tree is its sender's sum record (${from} sent ${rec.hosts === undefined ? 'a host\'s record' : `${rec.peer}'s sum`})`)
      // its hosts at most those of its group here, with room for hosts up there not yet here
      const group = keptGroupSize(this.c.up(), from)
      if (rec.hosts > 2 * group + KEPT_GROUP_SLACK) throw new KeptRecordError(`${from}'s sum claims ${rec.hosts} hosts, its group has ${group} up here`)
    } catch (err) {
      if (!(err instanceof KeptRecordError)) throw err
      this.refused++
      this.c.onRefused?.(err, from)
      return 'reject'
    }
    if (!this.c.member(rec.peer)) return 'old'
    const held = this.children.get(rec.peer)
    if (held !== undefined && held.seq >= rec.seq) return 'old'
    this.children.set(rec.peer, rec)
    this.changed()
    return 'new'
  }

  /**
   * This host's record on gossip, once per record, when beyond the full mesh. A record signed in
   * a full mesh was told on space notices only: a host that started alone (its join address
   * silent, or resetting at its connection cap) signed its record with no peer, joined a
   * network beyond the full mesh later, and told it to the peers it connected to, no other; an
   * idle host tells no newer one, so the other members heard it only from the kept tables'
   * anti-entropy, a hop per 15 s round with one of a few peers (kept-joiner: hosts short of
   * records after 60 s). The daemon calls changed() on each connection, which comes here.
   */
  private gossipOwn (): void {
    // (along the tree a host's own record goes to its peers' space notices and into its sum only)
    if (this.stopped || this.own === undefined || this.gossiped === this.own || this.c.publish?.() === undefined || this.tree()) return
    this.gossiped = this.own
    this.publishUntilSent(this.own)
  }

  /**
   * Publish `msg` until some peer was sent it (KEPT_PUBLISH_RETRY_MS, doubling), while it is this
   * host's latest record: one published before gossip knows who listens (a host that just
   * started) reaches nobody, and an idle host tells no newer one (member-service.ts announces
   * its member record so too). The peers that connect get it on their space notice anyway.
   * Each retry is the same counts signed anew (a higher seq): gossipsub keeps the id of a message
   * it published for its seen TTL (2 minutes) even when no peer could be sent it (a subscriber
   * whose stream was not open yet), and refuses the same bytes as a duplicate until then.
   */
  private publishUntilSent (msg: Uint8Array, wait = KEPT_PUBLISH_RETRY_MS): void {
    const publish = this.c.publish?.()
    if (this.stopped || this.own !== msg || publish === undefined) return
    // a failed publish is one that reached nobody: tried again as such
    void publish(msg).catch(() => []).then(sent => {
      if (sent.length > 0 || this.stopped || this.own !== msg) return
      this.clock.clearTimeout(this.again)
      this.again = this.clock.setTimeout(() => {
        void this.resign(msg).then(next => {
          if (next !== undefined) this.publishUntilSent(next, Math.min(wait * 2, KEPT_PUBLISH_RETRY_MAX_MS))
        }, (err: Error) => { if (!this.stopped) this.c.onRefused?.(new KeptRecordError(`own counts not signed: ${err.message}`), this.c.signer.author) })
      }, wait)
    })
  }

  /** `msg`'s counts signed with the next seq, as this host's record (undefined when a newer one came meanwhile). */
  private async resign (msg: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.stopped || this.own !== msg || this.told === undefined) return undefined
    const seq = ++this.seq
    const own = await signKept(this.c.signer, seq, this.told)
    if (this.stopped || this.own !== msg || seq < this.ownSeq) return undefined
    this.own = own
    this.ownSeq = seq
    this.gossiped = own
    return own
  }

  /**
   * A peer's record (from a space notice or gossip): 'new' when taken (of a host not a member
   * here yet: kept until it is one, see `early`), 'old' when not newer (or too soon after the
   * last of its host), 'reject' when forged, malformed or oversized (or, `sumOnly`, not a sum record).
   */
  async take (msg: Uint8Array, from: string, sumOnly = false): Promise<'new' | 'old' | 'reject'> {
    let rec: KeptRecord
    try {
      rec = await openKept(msg, this.c.verify, this.clock.now())
      // (the root's totals in a parent's answer: a sum record, nothing else)
      if (sumOnly && rec.hosts === undefined) throw new KeptRecordError(`${from} answered a sum with ${rec.peer}'s record, not the root's totals`)
    } catch (err) {
      if (!(err instanceof KeptRecordError)) throw err
      this.refused++
      this.c.onRefused?.(err, from)
      return 'reject'
    }
    if (rec.peer === this.c.signer.author) return 'old'
    // a flood of records from one host: those closer together than a host sends them are dropped
    const tooSoon = (held: KeptRecord | undefined): boolean => held !== undefined && rec.seq > held.seq && rec.heardAt - held.heardAt < KEPT_MIN_INTERVAL_MS / 4
    if (rec.hosts !== undefined) {
      // a sum on gossip or in a table: the network's totals, taken from the root only (the
      // smallest id up here: kept-tree.ts); from the same root, only a newer one
      const held = this.root
      if (held?.peer === rec.peer && (rec.seq <= held.seq || tooSoon(held))) return 'old'
      const up = this.c.up()
      if (keptRoot(up) !== rec.peer) {
        this.offerRoot(rec)
        return 'old'
      }
      return this.takeRoot(rec, up, from)
    }
    if (!this.c.member(rec.peer)) {
      // kept until its host is a member here, and 'new' (gossip forwards it): only the order of
      // arrival made it early. Ignored, gossip neither forwarded it nor let another copy of it in
      // (gossipsub holds the ids of the messages it saw for 2 minutes, ignored ones too), so the
      // members past this host heard it only from the kept tables' anti-entropy, a hop per round
      const had = this.early.get(rec.peer)
      if ((had !== undefined && rec.seq <= had.seq) || tooSoon(had)) return 'old'
      putNewest(this.early, rec, KEPT_EARLY_MAX)
      // forwarded at most KEPT_EARLY_FORWARDS a minute: anyone holding the network key can make
      // keys at will, and each such record would otherwise go to the whole mesh (kept here still)
      if (rec.heardAt - this.earlyWindow.start >= 60_000) this.earlyWindow = { start: rec.heardAt, forwarded: 0 }
      if (this.earlyWindow.forwarded >= KEPT_EARLY_FORWARDS) return 'old'
      this.earlyWindow.forwarded++
      return 'new'
    }
    const held = this.table.get(rec.peer)
    if (tooSoon(held)) return 'old'
    return this.table.put(rec)
  }

  /**
   * The root's totals `rec` (newer than those held, from the root of `up`, this host's view):
   * taken unless they claim more hosts than are up here (with room for views that differ a
   * while): then this host keeps the totals it had (see the header: the trust in the tree).
   */
  private takeRoot (rec: KeptRecord, up: readonly string[], from: string): 'new' | 'old' {
    const members = Math.max(new Set(up).size, this.c.members?.() ?? 0)
    // (an eighth more, at least KEPT_GROUP_SLACK: after many hosts went down at once, the sums
    // up the tree count them for an up interval, and the root tells them for a root interval)
    if ((rec.hosts ?? 1) > members + Math.max(KEPT_GROUP_SLACK, members >> 3)) {
      this.refused++
      this.c.onRefused?.(new KeptRecordError(`the root's totals claim ${rec.hosts} hosts, ${members} are up here (or members)`), from)
      return 'old'
    }
    this.root = rec
    const candidate = this.candidates.get(rec.peer)
    if (candidate !== undefined && candidate.seq <= rec.seq) this.candidates.delete(rec.peer)
    return 'new'
  }

  /**
   * Totals signed by a member that is not the root here (yet): kept, the latest per signer (at
   * most KEPT_ROOT_CANDIDATES signers, the first heard dropped first), and taken by upChanged()
   * once their signer is the root here, if no older than a root interval. A host that starts
   * pulls the root's totals right after the member table, before its view of the hosts up
   * settled (until it knows itself beyond the full mesh, only its connected peers are up):
   * dropped then, it held no totals until the root's next on gossip, a root interval or more
   * later, and counted the few members it met meanwhile. Several, not the smallest id offered:
   * an old root's totals still held by some peers (its id smaller than the root's, by kad id)
   * would displace the root's; a bounded few, so sums from many made-up keys hold nothing more.
   */
  private offerRoot (rec: KeptRecord): void {
    if (!this.c.member(rec.peer)) return
    const had = this.candidates.get(rec.peer)
    if (had !== undefined && had.seq >= rec.seq) return
    putNewest(this.candidates, rec, KEPT_ROOT_CANDIDATES)
  }

  /** The network totals: the latest counts of the members up now, this host's own counted now. */
  totals (): NetworkTotals {
    const up = this.c.up()
    if (this.tree()) {
      const members = new Set(up).size
      // the root sums now; the others hold the root's latest totals (of a root gone since: the
      // latest there are, until the next root's come)
      if (keptRoot(up) === this.c.signer.author) {
        const { sum, hosts } = this.groupSum(up, this.c.counts())
        return totalsOf(sum, hosts, members, sum.ageMs)
      }
      const r = this.root
      if (r !== undefined) return totalsOf(r, r.hosts ?? 1, members, r.ageMs + Math.max(0, this.clock.now() - r.heardAt))
    }
    return this.table.totals(up, this.c.signer.author, this.c.counts(), this.clock.now())
  }

  /**
   * `peer` is a member here now (its member record taken, or it connected): its record heard
   * before, if any, into the table, and counted.
   */
  memberAdded (peer: string): void {
    const rec = this.early.get(peer)
    if (rec === undefined || !this.c.member(peer)) return
    this.early.delete(peer)
    this.table.put(rec)
  }

  stop (): void {
    this.stopped = true
    this.clock.clearTimeout(this.timer)
    this.clock.clearTimeout(this.again)
    this.clock.clearTimeout(this.refresh)
    this.clock.clearTimeout(this.settle)
    this.timer = undefined
  }
}
