// Deleting what an abandoned write left on other hosts (issue 17): a `put` that fails or is
// cancelled before its commit has pushed fragments to their holders already (placement runs as
// the write goes: data/blocks.ts ChunkWrite). The writer asks each holder to delete them at
// once, instead of leaving them to GC's retention (days). A holder deletes a block only when
// nothing it knows of needs it:
//  - no retained version in its tree references it (retained.ts: what GC keeps; nothing is
//    deleted while some retained manifest cannot be read);
//  - it promised nobody to keep it (custody.ts), but the asker (a writer that handed its copy
//    over, and now gives the block up itself). A writer has every target of a chunk it placed
//    promise its fragment (itself too, for its own: custody.settle), not only the ones it handed
//    its copies to: another writer of the same bytes that gives up its write (and asks every
//    host) would otherwise have the fragments deleted that this write pushed and has not
//    committed yet, more of them than the code survives (review30d). Promises are per peer:
//    two writes of the same bytes on one host are told apart by the writer (data/blocks.ts
//    OpenChunks: one given up does not ask about the chunks the other still has);
//  - no write of its own in flight stored it (Store claims), and no pin keeps it (guardStore).
// A delete and a promise exclude each other (custody.deleteUnpromised). A release that deletes
// a block another writer pushed here before that placement's promise round is found by that
// round: no promise is given for a block not held, and the writer places the chunk again (from
// its copies, which it keeps until then). A block released a moment ago that arrives again,
// pushed by the peer that asked (its give-up overtook its own push), is dropped and not
// acknowledged; another peer's push of it is kept (it places the same bytes). That other peer
// may be a hop of the asker's own push chain (the asker pushes to one holder, which forwards to
// the next: swarm PUSH hops), whose forward lands after the release: a block released a moment
// ago that another peer pushes here is looked at again RELAYED_RECHECK_MS later, by the same
// rules: a relayed copy of the abandoned write goes (a release ends the asker's promises of what
// it gave up: custody.disown), a block promised meanwhile stays — to a writer of the same bytes,
// the asker's own new write of them included (review33i: its fresh promise was not counted, and
// a fragment it had handed over went) — and a block deleted before a writer's promise round is
// found by that round and placed again from the writer's copies. A write open
// longer than CUSTODY_PROMISE_MS has its placed chunks' holders promise them again every half of
// it until its commit (data/blocks.ts ChunkWrite, network.ts renew(): a promise round alone); a
// promise that ended keeps nothing, not even when its block is promised again to another
// (custody.ts). A writer giving up leaves out of its release what its own tree references
// (referenced(): another write of the same bytes here committed, unseen yet by the peers).
// Who may ask (review: session 34, #14 "bad input"): a release deletes only blocks the asker
// put here (pushed them: the swarm push's origin, '/darkfs/swarm/1.2.0', which a hop of its
// chain or a relay forwarding its blocks names, when that origin is a member here or the
// sender itself: a push naming any other keeps it pending a while, PENDING_ORIGIN_MS, and makes
// its block nobody's meanwhile, gc37 and mend37g; else the sink's `from`) or was promised here
// (custody.ts, a record that outlives the promise and the asker's disown), or that another peer
// pushed here a moment ago naming no origin (RELAYED_FRESH_MS: an older host's push, maybe a hop
// of the asker's chain; only while some member does not announce FEATURE_ORIGINS, net/features.ts:
// once every member names its pushes' origins, a push naming none is its sender's alone), and
// that no other peer was promised here or pushed here naming itself, and has not released since
// (a writer of the same bytes: a member that pushes, or asks a promise of, another's block
// cannot then release it, before that writer's promise round as after it); any other release
// of a held block is refused, counted (refusals.notPut, .claimed) and logged. So a buggy or
// malicious member, or a stale release, cannot have a fragment of another writer's committed
// version deleted here when this host has not heard of that commit (or no longer retains a
// record of it). A promise a holder gives itself (its own fragment) is no record: another
// writer's give-up of the same bytes is refused only while it lasts. A record goes with its
// block when a release deletes it. Records are in memory (kept across a clean restart only:
// release-records.ts, gc37) and bounded (PUT_REMEMBER_MAX, least
// recently put of the peer holding the most records forgotten first): a block held with no record (its record forgotten, or lost in
// a restart that was not clean, or the block pulled here) is refused to everyone and left to GC, and stays so when
// it is pushed or promised again (session 36: a member pushing it again was its only putter,
// and could have another writer's block deleted); but a record of one putter forgotten for room
// comes back when that putter puts it again (PUT_EVICTED_MAX: a long write's renewal), and that
// putter alone may still release it meanwhile (its abandoned write longer than the table). A record
// goes with its block whenever the store loses it (Store onGone: GC, handover, pins, local
// deletes, once the file is gone), is not forgotten for room while a put of its block lands,
// and lists PUT_NAMES_MAX peers at most (past that the block is nobody's). A put of a block held
// when it began whose record went before it landed (the block's removal told, a release made
// only after the put's stat at startup) makes the block nobody's, not its pusher's alone.
// Wire (an rpc.ts call): [CID...] -> [boolean...] (deleted).
import { performance } from 'node:perf_hooks'
import { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import { RpcProtocolError, call, defineProtocol, serve } from '../net/index.ts'
import type { Host } from '../net/index.ts'
import type { Store } from '../data/index.ts'
import type { Volume } from '../index.ts'
import type { Retained } from './retained.ts'
import { RetainedWalks } from './retained-walk.ts'
import { logger } from '../log.ts'
import { cidFlags } from './cid-flags.ts'
import { deleteUnpromised } from './unpromised.ts'
import type { DeleteUnpromised } from './unpromised.ts'
import type { BlockSink } from '../../swarm/index.ts'
import type { KeptPutRecord } from './release-records.ts'

/** How long a drop on arrival waits for the tree's walk (a stuck one is aborted, not joined for ever: review32g). */
const ARRIVED_DROP_TIMEOUT_MS = 60_000

const log = logger('keeper:release')

export const RELEASE_PROTOCOL = '/darkfs/release/1.0.0'
/** Most CIDs in one request (the rest go in further requests). */
export const MAX_RELEASE_CIDS = 1024
/** Bound of one request or reply message. */
export const MAX_RELEASE_MESSAGE_BYTES = MAX_RELEASE_CIDS * 64 + 1024
/** Time for one peer to answer (it reads the retained manifests first). */
export const RELEASE_TIMEOUT_MS = 30_000
/**
 * How long a released block is remembered: a push of it cut short by the abort that lands after
 * the release (a different stream) is dropped on arrival (arrived()), by the same rules.
 */
export const RELEASE_REMEMBER_MS = 60_000
/**
 * How long after a released block arrives from a peer other than the asker it is looked at again
 * (a relay of the asker's push chain: its copy goes then; another writer's is promised by then:
 * longer than a custody round can take, CUSTODY_TIMEOUT_MS and its linger, on a loaded host).
 */
export const RELAYED_RECHECK_MS = 20_000
/** Released blocks remembered at most (the oldest forgotten first). */
export const RELEASE_REMEMBER_MAX = 65_536
/**
 * Blocks whose putters (the peers that pushed them here or were promised them here) are
 * remembered at most, the least recently put forgotten first: 16 GiB of 256 KiB fragments, about
 * 17 MiB of heap (measured: ~260 B a record of one pusher and one promisee; session 36's named
 * list and per-peer share added ~220 B a record, ~31 MiB in all). Pushes naming made-up origins
 * (any string up to 128 B) cost ~1.3 KB a record listing PUT_NAMES_MAX of them (measured:
 * 16,384 records, 20 MiB; 171 MiB when a record listed 64), ~80 MiB for a table of them: since
 * gc37 an origin is listed only when it is a member here or the push's sender (member(); any
 * other makes the block nobody's and lists nothing), so a record's names are peer ids (52 B) of
 * members, not strings a sender makes up (not measured again). A release comes within
 * minutes of the put it undoes; a block whose record was forgotten is refused to every asker,
 * pushed here again or not (GC removes what nothing needs, after its retention). When the
 * table is full, the record forgotten is the least recently put of the peer whose puts made the
 * most records (record()): one writer, or one relay, may fill the table alone (review36h: a
 * quarter share each refused the release of all but the last 16,384 blocks of one long abandoned
 * put), and a member flooding a holder with pushes forgets its own records once it holds more than
 * any other writer (65,536 tiny pushes once emptied the table of every other writer's records).
 * Several members flooding together can still push out the records of a writer holding more than
 * each of them: its releases are refused then (space held until GC), its blocks not deleted.
 */
export const PUT_REMEMBER_MAX = 65_536
/**
 * Records forgotten for room that had one putter (its own block: no other peer pushed it,
 * named it or was promised it, and it was not held before any record) kept aside at most, the
 * oldest dropped first: that peer's next push or promise of the block (an open write's renewal)
 * brings the record back instead of making the block nobody's (review36c: a write longer than its
 * share of records had its own release of its early blocks refused), and that peer alone may
 * release it meanwhile (mayRelease()). ~590 B of heap each (measured: 16,384 kept aside, two
 * runs): ~9.2 MiB in all.
 */
export const PUT_EVICTED_MAX = 16_384
/**
 * Peers one record lists at most in each of its lists (pushers, promisees, named origins): a push
 * names any string as its origin (swarm readPeer), and 40,000 tiny pushes of one block, each
 * naming a new one, took 9 s of the holder's CPU (review36c: O(n) lookups in unbounded lists).
 * Past it the block is nobody's (`unknown`: refused to every asker, left to GC); a block has a
 * few writers, not dozens. Small, since origins are any strings a sender names (review36f: 64
 * of 128 B each made 16,384 records 171 MiB of heap; 4, 20 MiB: PUT_REMEMBER_MAX).
 */
export const PUT_NAMES_MAX = 4
/**
 * How long a push's origin that is no member here (nor its sender) is kept pending on its block's
 * record: taken as the block's writer if it is a member by the time a release is asked within
 * it, and the block nobody's after it (review37b: a new member writing through a relay before its
 * record reached the holder had its blocks nobody's for ever, its own release refused once it
 * joined). A record keeps one (a second stranger named makes the block nobody's at once), only
 * a string a peer id could be (PEER_NAME), against its sender's share: a table of such records,
 * each naming another made-up id, is ~5 MiB more than gc37's (measured: 65,536 records of one
 * sender naming a new 52-character id each, 42.7 MiB of heap against 37.3, the blocks held and
 * their CIDs included). A writer's release comes within minutes of its put
 * (a promise is CUSTODY_PROMISE_MS, 10 minutes).
 */
export const PENDING_ORIGIN_MS = 10 * 60_000
/** What a pending origin may be: a peer id as libp2p writes it (base58btc, 52 characters for an Ed25519 key), not any string of 128 B. */
const PEER_NAME = /^[1-9A-HJ-NP-Za-km-z]{1,64}$/
/**
 * How long after a block was pushed here by a peer other than the asker a release may still
 * delete it, when the push named no origin (an older host's, swarm 1.1.0 or 1.0.0): it may be a
 * hop of the asker's own push chain, landed before the writer's promise round named it. A writer of those bytes that
 * placed them has been promised them by then, which keeps them.
 */
export const RELAYED_FRESH_MS = 60_000

export class ReleaseProtocolError extends RpcProtocolError {
  override readonly name = 'ReleaseProtocolError'
}

export const RELEASE = defineProtocol<CID[], boolean[]>({
  id: RELEASE_PROTOCOL,
  maxMessageBytes: MAX_RELEASE_MESSAGE_BYTES,
  timeoutMs: RELEASE_TIMEOUT_MS,
  malformed: ReleaseProtocolError,
  ...cidFlags('release', MAX_RELEASE_CIDS, ReleaseProtocolError)
})

export interface ReleaseComponents {
  host: Pick<Host, 'peerId' | 'handle' | 'unhandle' | 'newStream'>
  /** Deletes through the pin guard (guardStore); claims are the store's own. */
  store: Pick<Store, 'has' | 'delete' | 'isClaimed'>
  volume: Volume
  /** Whether this host promised a peer (other than `except`) to keep the block (custody.ts). */
  promised: (cid: CID, except?: string) => boolean
  /**
   * Runs a delete unless the block is promised to a peer other than `except`, with no promise
   * given meanwhile (custody.ts deleteUnpromised): a promise then never covers a block deleted
   * under it. Not given: `promised` is looked at just before the delete.
   */
  deleteUnpromised?: DeleteUnpromised
  /**
   * Whether a write open here will name the block (ChunkService.open: an open file's spilled or
   * stored chunks, a write placing): kept whoever asks, since no tree, promise or claim names it
   * yet (review34e: a peer's give-up of the same bytes deleted a spilled chunk here, and the
   * file's commit named a chunk gone everywhere). Not given: none.
   */
  inUse?: (cid: CID) => boolean
  /** Ends `peer`'s promises of blocks it released (custody.ts disown). Not given: none kept per peer. */
  disown?: (cids: CID[], peer: string) => void
  /** Retention of old versions (the same as GC's). */
  retentionMs: number
  /** RELAYED_RECHECK_MS (tests shorten it). */
  relayedRecheckMs?: number
  /** RELAYED_FRESH_MS (tests change it). */
  relayedFreshMs?: number
  /**
   * Whether every member names the origin of its pushes (net/features.ts FEATURE_ORIGINS): then a
   * push naming none is its sender's alone, and the RELAYED_FRESH_MS rule is off. Not given: some
   * member may not (the rule is on).
   */
  originsByAll?: () => boolean
  /**
   * Whether `peer` is a member known here (the daemon: in its member table, declared down or
   * not, or connected now): a push naming another peer as its origin that is none makes its
   * block nobody's, that origin pending a while (arriving(), PENDING_ORIGIN_MS; gc37: made-up
   * origins, any string of 128 B, filled the records table, ~80 MiB). Not given: every origin is
   * taken.
   */
  member?: (peer: string) => boolean
  /** PENDING_ORIGIN_MS (tests shorten it). */
  pendingOriginMs?: number
  /**
   * The monotonic clock (ms) the pending-origin window, a push's freshness (RELAYED_FRESH_MS) and
   * how long a release is remembered (RELEASE_REMEMBER_MS) are timed on (default
   * performance.now): a wall clock stepped (NTP, fake-hwclock at boot) neither ends nor stretches
   * them (mend37g2, as GC's ages: gc.ts; bugs38: the remembered releases were on Date.now, so a
   * step forward forgot a release at once and a step back kept it for as long as the step).
   */
  clock?: () => number
}

/**
 * Who put a block here (Release.putBy): the peers that pushed it, the ones promised it, when it
 * was last pushed naming no origin; `named`, the writers pushes named as its origin (swarm
 * PROTOCOL_ORIGINS); `unknown`, held here before any record of it (a restart, a record forgotten
 * for room, a block pulled here): whoever pushes or is promised it later, no release deletes it.
 */
interface PutRecord {
  pushed: string[]
  claimed: string[]
  named: string[]
  pushedAt: number
  unknown?: true
  by: string
  /** A push's origin that was no member here (arriving()), until when it may become one (PENDING_ORIGIN_MS): refused to all meanwhile. */
  pending?: { origin: string, until: number }
}

export class Release {
  private readonly c: ReleaseComponents
  private unserve?: () => Promise<void>
  /** `${block}/${asking peer}` -> until when a late arrival of it from that peer is dropped (RELEASE_REMEMBER_MS). */
  private readonly released = new Map<string, number>()
  /** block -> the peer that asked its release last, and until when (RELEASE_REMEMBER_MS). */
  private readonly releasedFor = new Map<string, { asker: string, until: number }>()
  /** block -> the timer of its second look (RELAYED_RECHECK_MS): one per block. */
  private readonly rechecks = new Map<string, ReturnType<typeof setTimeout>>()
  /** One walk for many requests while the tree takes no op (retained-walk.ts). */
  readonly walks: RetainedWalks
  /** How long after a relayed arrival its second look runs (RELAYED_RECHECK_MS). */
  relayedRecheckMs: number
  /** Second looks at relayed arrivals run to their end (deleted or not). */
  rechecked = 0
  /**
   * What release requests were refused or kept, per block asked: `notPut`, held here but never
   * put here by the asker nor promised to it (nor freshly relayed); `claimed`, promised here to
   * another writer that has not released it (its record outlives the promise); `named`, a retained version
   * this host knows of names it; `promised`, promised to another peer or claimed by a write here.
   */
  readonly refusals = { notPut: 0, claimed: 0, named: 0, promised: 0 }
  /** Blocks made nobody's, or pending (PENDING_ORIGIN_MS), by a push naming as origin a peer that is no member here (arriving()). */
  strangeOrigins = 0
  /**
   * block -> the peers that pushed it here (`pushed`) and the ones promised it here (`claimed`,
   * custody.ts: a writer placing it), least recently put first (PUT_REMEMBER_MAX). A peer leaves
   * both at its release (it gave the block up).
   */
  private readonly putBy = new Map<string, PutRecord>()
  /** peer -> the records its puts made, least recently put first (the most held are forgotten first: record()). */
  private readonly madeBy = new Map<string, Set<string>>()
  /**
   * block -> puts of it under way (releasingSink: from before its store stat to after arrived()):
   * their records are not forgotten for room meanwhile (review36c: a record of a block held with
   * none, `unknown`, evicted by its pusher's further pushes while its store put was in flight,
   * was rebuilt clean by arrived(), making the pusher its only putter).
   */
  private readonly landing = new Map<string, number>()
  /**
   * block -> puts of it under way that count as of a block held before them (landingOf `held`):
   * ReleaseOpening past its bound dropped every call told before open(), so a put begun then
   * that found the block not held may have had another writer's put of it land meanwhile, never
   * told here; its arrived() makes the block nobody's rather than its pusher's alone (review37f).
   */
  private readonly heldLanding = new Map<string, number>()
  /** block -> its record forgotten for room, of one putter (PUT_EVICTED_MAX), oldest first. */
  private readonly evicted = new Map<string, PutRecord>()

  /** See ReleaseComponents `clock`. */
  private readonly clock: () => number

  constructor (c: ReleaseComponents) {
    this.c = c
    this.clock = c.clock ?? (() => performance.now())
    this.walks = new RetainedWalks(c.volume, c.retentionMs)
    this.relayedRecheckMs = c.relayedRecheckMs ?? RELAYED_RECHECK_MS
  }

  async start (): Promise<void> {
    if (this.unserve !== undefined) return
    this.unserve = await serve(this.c.host, RELEASE, {
      call: async (cids, ctx) => await this.answer(cids, ctx.peer, { signal: ctx.signal })
    })
  }

  /**
   * `peer` was promised these blocks here (custody.ts: a writer placing them, or handing its copy
   * over; custody promises only blocks held here, and never tells a promise to itself): it may
   * release them (not a block held here before any record of it), and another peer's release of them is refused while it has not
   * released them itself (a writer of the same bytes; see mayRelease()).
   */
  noted (cids: Iterable<CID>, peer: string): void {
    for (const cid of cids) {
      // a promise is of a block held here: with no record of who put it (forgotten, lost in a
      // restart, pulled here), the promise does not make it the promisee's (see arriving())
      const had = this.putBy.has(cid.toString()) || this.revive(cid.toString(), peer)
      const r = this.record(cid.toString(), peer)
      if (!had) r.unknown = true
      listed(r, r.claimed, peer)
    }
  }

  /**
   * `peer` put this block here (a push naming it as origin, a relay's own fragment of its chunk).
   * `by`: the peer that sent it (a record it makes counts against its share: record()).
   */
  pushed (cid: CID, peer: string, by: string = peer): void {
    const put = this.record(cid.toString(), by)
    listed(put, put.pushed, peer)
  }

  /**
   * The record of who put `key` here, made the most recently put. A new one counts against `by`
   * (the peer whose push or promise makes it); past PUT_REMEMBER_MAX records, the least recently
   * put of the peer with the most records is forgotten: one writer's long put (or one relay's) may
   * fill the table alone, and one member's flood of pushes forgets its own records, not another
   * writer's holding fewer (review36h: a fixed quarter share per peer refused a long abandoned
   * put's release of its early blocks).
   */
  private record (key: string, by: string): PutRecord {
    let r = this.putBy.get(key)
    if (r === undefined) {
      r = { pushed: [], claimed: [], named: [], pushedAt: -Infinity, by }
      // a record kept aside is of an older put: this one is made afresh (revive() brings it back first)
      this.evicted.delete(key)
      const mine = this.madeBy.get(by) ?? new Set<string>()
      mine.add(key)
      this.madeBy.set(by, mine)
    } else {
      this.putBy.delete(key)
      // put again (a push, a promise: an open write's renewal): the youngest of its maker's share
      // too, so a long write's early blocks are not forgotten before its later ones (review36c:
      // their renewal then found no record and made them nobody's, refusing the writer's own
      // release). It only reorders the maker's own share: no peer evicts another's records.
      const mine = this.madeBy.get(r.by)
      if (mine !== undefined) { mine.delete(key); mine.add(key) }
    }
    this.putBy.set(key, r)
    this.forgetForRoom(key)
    return r
  }

  /**
   * Past PUT_REMEMBER_MAX records, forgets the least recently put of the peer with the most
   * (never `except`, the record just made): a scan of the peers that made records, only while the
   * table is full. (When all of that peer's records are of puts under way, the table stays over
   * its bound until they land: few.)
   */
  private forgetForRoom (except: string): void {
    while (this.putBy.size > PUT_REMEMBER_MAX) {
      let most: Set<string> | undefined
      for (const mine of this.madeBy.values()) if (most === undefined || mine.size > most.size) most = mine
      if (most === undefined || !this.forgetOldest(most, except)) return
    }
  }

  /**
   * Forgets the first of `keys` (oldest first) with no put of it under way (`landing`): whether
   * one was. (Records of puts under way, few, may exceed a bound for as long as they land.)
   */
  private forgetOldest (keys: Iterable<string>, except?: string): boolean {
    for (const k of keys) {
      if (this.landing.has(k) || k === except) continue
      const r = this.putBy.get(k)
      this.forget(k)
      if (r !== undefined && soleOf(r) !== undefined) {
        this.evicted.set(k, r)
        while (this.evicted.size > PUT_EVICTED_MAX) this.evicted.delete(this.evicted.keys().next().value!)
      }
      return true
    }
    return false
  }

  /**
   * Every record, least recently put first, then the ones kept aside (oldest first): what a
   * clean stop keeps for the next start (release-records.ts; the daemon asks once nothing puts,
   * promises or releases here any more).
   */
  records (): KeptPutRecord[] {
    const out: KeptPutRecord[] = []
    const kept = (block: string, r: PutRecord, aside: boolean): KeptPutRecord => ({ block, by: r.by, pushed: [...r.pushed], claimed: [...r.claimed], named: [...r.named], unknown: r.unknown === true || r.pending !== undefined, aside })
    for (const [k, r] of this.putBy) out.push(kept(k, r, false))
    for (const [k, r] of this.evicted) out.push(kept(k, r, true))
    return out
  }

  /**
   * Takes back the records a clean stop kept (records(), release-records.ts), before this host
   * takes a put or a release (the daemon: before its sink tells this release anything): the ones
   * of blocks the store holds and of which no record was made since, in their order, within the
   * table's bounds. A restored record is not fresh (its last push naming no origin is not kept).
   * How many were taken.
   */
  async restore (records: readonly KeptPutRecord[], opts: AbortOptions = {}): Promise<number> {
    let n = 0
    const HAS_BATCH = 64
    for (let i = 0; i < records.length; i += HAS_BATCH) {
      opts.signal?.throwIfAborted()
      const batch = records.slice(i, i + HAS_BATCH)
      const held = await Promise.all(batch.map(async r => {
        let cid: CID
        try {
          cid = CID.parse(r.block)
        } catch (err) {
          log('a kept release record names no block (%s): left out', (err as Error).message)
          return false
        }
        return await this.c.store.has(cid)
      }))
      batch.forEach((k, j) => {
        if (!held[j] || this.putBy.has(k.block) || this.evicted.has(k.block)) return
        const r: PutRecord = { pushed: k.pushed.slice(0, PUT_NAMES_MAX), claimed: k.claimed.slice(0, PUT_NAMES_MAX), named: k.named.slice(0, PUT_NAMES_MAX), pushedAt: -Infinity, by: k.by }
        // (a list longer than the bound makes the block nobody's, as listed() does)
        if (k.unknown || [k.pushed, k.claimed, k.named].some(l => l.length > PUT_NAMES_MAX)) r.unknown = true
        if (k.aside) {
          this.evicted.set(k.block, r)
          while (this.evicted.size > PUT_EVICTED_MAX) this.evicted.delete(this.evicted.keys().next().value!)
        } else {
          this.putBy.set(k.block, r)
          const mine = this.madeBy.get(k.by) ?? new Set<string>()
          mine.add(k.block)
          this.madeBy.set(k.by, mine)
          this.forgetForRoom(k.block)
        }
        n++
      })
    }
    return n
  }

  /**
   * Brings back `key`'s record forgotten for room when `peer` was its one putter (its own block,
   * put again by it): whether it did. Any other peer's put of it makes a record afresh (`unknown`
   * when held: record()).
   */
  private revive (key: string, peer: string | undefined): boolean {
    const old = this.evicted.get(key)
    if (old === undefined || peer === undefined || soleOf(old) !== peer) return false
    this.evicted.delete(key)
    const r = this.record(key, old.by)
    r.pushed = old.pushed
    r.claimed = old.claimed
    r.named = old.named
    r.pushedAt = old.pushedAt
    return true
  }

  /**
   * A put of `cid` is under way here (releasingSink): its record is not forgotten for room until
   * the returned function is called (once its arrived() ran, or the put failed). `held`: whatever
   * it says, the put counts as of a block held before it (ReleaseOpening past its bound: a put
   * begun before the release was made, whose store stat may predate another writer's put that
   * was never told; see heldLanding).
   */
  landingOf (cid: CID, opts: { held?: boolean } = {}): () => void {
    const key = cid.toString()
    const count = (m: Map<string, number>, d: number): void => {
      const n = (m.get(key) ?? 0) + d
      if (n > 0) m.set(key, n)
      else m.delete(key)
    }
    count(this.landing, 1)
    if (opts.held === true) count(this.heldLanding, 1)
    let ended = false
    return () => {
      if (ended) return
      ended = true
      count(this.landing, -1)
      if (opts.held === true) count(this.heldLanding, -1)
    }
  }

  /**
   * The store no longer holds `cid` (Store onGone: deleted by GC, a handover, a pin's end, a
   * local delete, a release; quarantined; found missing): who put it goes with it, and a later put
   * of the same bytes starts afresh (review36c: a stale `unknown` flag or named origin refused the
   * next writer's release of its own abandoned write). A put of it under way keeps its pusher:
   * arrived() records it again.
   */
  gone (cid: CID): void {
    this.forget(cid.toString())
  }

  /** Forgets who put `key` here (its record and its place in its maker's share). */
  private forget (key: string): void {
    this.evicted.delete(key)
    const r = this.putBy.get(key)
    if (r === undefined) return
    this.putBy.delete(key)
    const mine = this.madeBy.get(r.by)
    mine?.delete(key)
    if (mine?.size === 0) this.madeBy.delete(r.by)
  }

  /**
   * Whether `asker` may have a held block deleted: it pushed the block here or was promised it
   * here (a record kept after the promise ended), or another peer pushed it here a moment ago
   * (RELAYED_FRESH_MS: a hop of the asker's chain, while some member names no origins); it was
   * not held here before any record of it; and no other peer promised it here, or pushed it
   * naming itself, that has not released it since (a writer of the same bytes: a member pushing,
   * or asking a promise of, another's block then releasing it deletes nothing). Any other
   * release of a held block is refused (#14 "bad input": one member cannot have another's data
   * deleted). A block whose record was forgotten for room is the asker's when the record kept
   * aside (`evicted`: only of one putter, dropped at any other peer's put of the block) lists
   * the asker alone (review36h: a long abandoned put's early blocks, otherwise left to GC).
   */
  private mayRelease (cid: CID, asker: string): 'yes' | 'notPut' | 'claimed' {
    const key = cid.toString()
    const r = this.putBy.get(key)
    if (r === undefined) {
      const old = this.evicted.get(key)
      return old !== undefined && soleOf(old) === asker && (old.pushed.includes(asker) || old.claimed.includes(asker)) ? 'yes' : 'notPut'
    }
    if (r.claimed.some(p => p !== asker)) return 'claimed'
    // a push's origin that was no member here: taken once it is one, the block nobody's once
    // its time is past (PENDING_ORIGIN_MS)
    if (r.pending !== undefined && r.unknown !== true) {
      if (this.clock() >= r.pending.until) r.unknown = true
      else if (this.c.member?.(r.pending.origin) !== false) {
        listed(r, r.pushed, r.pending.origin)
        listed(r, r.named, r.pending.origin)
      } else return 'notPut'
      r.pending = undefined
    }
    // held before anything was recorded here: maybe another writer's, whose record is gone; a
    // push or promise since does not make it the asker's
    if (r.unknown === true) return 'notPut'
    if (!r.pushed.includes(asker) && !r.claimed.includes(asker) && !this.fresh(r)) return 'notPut'
    // another writer pushed the same bytes naming itself: its promise round may not have come
    // yet, and would find them gone (session 36: a push alone kept nothing)
    return r.named.some(p => p !== asker) ? 'claimed' : 'yes'
  }

  /**
   * Whether a push naming no origin was here a moment ago (RELAYED_FRESH_MS), while some member
   * may push naming none (an older host's hop of anyone's chain): once every member names them
   * (FEATURE_ORIGINS), a push naming none is its sender's alone (session 36: a push naming no
   * one let any member release the block for a minute, another writer's pushed naming itself too).
   */
  private fresh (r: PutRecord): boolean {
    return this.clock() - r.pushedAt < (this.c.relayedFreshMs ?? RELAYED_FRESH_MS) && this.c.originsByAll?.() !== true
  }

  /**
   * A release request of `asker` (RELEASE): which blocks were deleted. A held block the asker
   * may not release (mayRelease()) is refused, counted and logged; one not held (a push of the
   * asker's still in flight) is remembered, its late arrival dropped (arrived()); the rest are
   * deleted when nothing here needs them (drop()).
   */
  async answer (cids: CID[], asker: string, opts: AbortOptions = {}): Promise<boolean[]> {
    // read after the asker stopped waiting (its call timed out): it may be writing the same
    // bytes anew already, so nothing is remembered, disowned or deleted
    if (opts.signal?.aborted === true) return cids.map(() => false)
    const refused: CID[] = []
    const asked: CID[] = []
    for (const c of cids) {
      const may = this.mayRelease(c, asker)
      if (may !== 'yes' && await this.c.store.has(c)) {
        refused.push(c)
        this.refusals[may]++
      } else asked.push(c)
    }
    // the asker gave all of them up: it no longer counts as their putter (nor keeps them from
    // another putter's release)
    for (const c of cids) {
      const r = this.putBy.get(c.toString())
      // (a record kept aside is of one putter: the asker's, given up, goes)
      if (r === undefined && soleOf(this.evicted.get(c.toString())) === asker) this.evicted.delete(c.toString())
      if (r === undefined) continue
      r.pushed = r.pushed.filter(p => p !== asker)
      r.claimed = r.claimed.filter(p => p !== asker)
      r.named = r.named.filter(p => p !== asker)
    }
    if (refused.length > 0) {
      // the asker gave these up too: its promises of them end, as for the ones it may release
      // (review35c: two writers of the same bytes that both gave up left them for GC, the first
      // refusal having kept the asker's promise, which then refused the other's release)
      this.c.disown?.(refused, asker)
      const r = this.putBy.get(refused[0].toString())
      log.error('%s asked to release %d block(s) it did not put here or another writer holds (first %s, pushed by %s, promised to %s): refused', asker, refused.length, refused[0].toString(), r?.pushed.join(' ') ?? '-', r?.claimed.join(' ') ?? '-')
    }
    const gone = await this.releaseOf(asked, asker, opts)
    return cids.map(c => gone.has(c.toString()))
  }

  /** The release of blocks `asker` may release (answer()): the ones deleted. */
  private async releaseOf (cids: CID[], asker: string, opts: AbortOptions): Promise<Set<string>> {
    if (cids.length === 0) return new Set()
    const until = this.clock() + RELEASE_REMEMBER_MS
    for (const c of cids) {
      const key = `${c.toString()}/${asker}`
      this.released.delete(key)
      this.released.set(key, until)
      this.releasedFor.delete(c.toString())
      this.releasedFor.set(c.toString(), { asker, until })
    }
    while (this.released.size > RELEASE_REMEMBER_MAX) this.released.delete(this.released.keys().next().value!)
    while (this.releasedFor.size > RELEASE_REMEMBER_MAX) this.releasedFor.delete(this.releasedFor.keys().next().value!)
    // the asker gave these up: its promises of them end (a new write of the same bytes asks again)
    this.c.disown?.(cids, asker)
    // its earlier promises ended above: one it was given while this drop runs is a new
    // write's (its call timed out meanwhile), and counts (review33j)
    const gone = await this.drop(cids, { signal: opts.signal, asker: this.c.disown === undefined ? asker : undefined, count: true })
    if (gone.size > 0) log('%s: deleted %d of %d block(s) of an abandoned write', asker, gone.size, cids.length)
    return gone
  }

  async stop (): Promise<void> {
    const u = this.unserve
    this.unserve = undefined
    for (const t of this.rechecks.values()) clearTimeout(t)
    this.rechecks.clear()
    await u?.()
  }

  /**
   * A block is about to be stored here (releasingSink, before its store put): pushed by peer
   * `from`, naming `origin` (swarm PROTOCOL_ORIGINS: the writer whose block a hop or a relay
   * forwards), or a relay's own fragment of `origin`'s chunk (no `from`). Its putter is recorded
   * before the store has it: a release answered after the store took the block and before the
   * sink's arrived() found no putter, and refused the writer its own block (session 34's Ctrl-C
   * put flake: the block stayed). A push naming no origin (an older host's) is recorded as
   * `from`'s, fresh (RELAYED_FRESH_MS: it may be a hop of anyone's chain). `held`: the store had
   * the block before this put (releasingSink asks): with no record of it here, it is nobody's.
   * `at`: when it was told, on `clock` (ReleaseOpening's replayed calls; default now).
   */
  arriving (cid: CID, from: string | undefined, origin: string | undefined, opts: { held?: boolean, at?: number } = {}): void {
    // (a record counts against the peer that sent the push, not the origin it names: anyone may
    // name anyone; a relay's own fragment, sent by no peer, against the writer)
    const by = from ?? origin
    if (by === undefined) return
    const held = opts.held === true || this.heldLanding.has(cid.toString())
    // (when it was told: a call kept while the release was made is replayed later, ReleaseOpening)
    const at = opts.at ?? this.clock()
    // an origin that is no member here (made up, or a member whose record has not reached this
    // host yet, not connected to it): not listed, and the block is nobody's (refused to every
    // asker, left to GC), as when a record lists too many. Its sender, connected, is one.
    // Kept pending a while (PENDING_ORIGIN_MS, one a record: a new member writing through a
    // relay, its record still on its way), refused to all meanwhile; a second stranger makes it
    // nobody's at once, as does a block held before any record of it
    if (origin !== undefined && origin !== from && this.c.member?.(origin) === false) {
      const key = cid.toString()
      const had = this.putBy.has(key)
      const r = this.record(key, by)
      if (r.unknown === true) return
      if ((held && !had) || (r.pending !== undefined && r.pending.origin !== origin) || !PEER_NAME.test(origin)) {
        r.unknown = true
        r.pending = undefined
      } else if (r.pending === undefined) r.pending = { origin, until: at + (this.c.pendingOriginMs ?? PENDING_ORIGIN_MS) }
      // (the same push told again: arrived())
      else return
      if ((++this.strangeOrigins & (this.strangeOrigins - 1)) === 0) log('%s pushed %s naming %s, no member here, as its origin: kept pending, nobody\'s meanwhile (%d block(s) so far)', from ?? '-', key, origin.slice(0, 64), this.strangeOrigins)
      return
    }
    // held here already and no record of it: whoever put it is not known, so no one may release
    // it (left to GC; a record forgotten, flushed by a flood of pushes, or lost in a restart,
    // must not make a later pusher of the same bytes its only putter)
    // (a record of one putter forgotten for room comes back when that putter puts it again)
    if (held && !this.putBy.has(cid.toString()) && !this.revive(cid.toString(), origin ?? by)) this.record(cid.toString(), by).unknown = true
    if (origin !== undefined) {
      this.pushed(cid, origin, by)
      const r = this.putBy.get(cid.toString())!
      listed(r, r.named, origin)
    } else if (from !== undefined) {
      this.pushed(cid, from)
      // (pushed() just made its record the most recently put: never the one forgotten for room)
      this.putBy.get(cid.toString())!.pushedAt = at
    }
  }

  /**
   * A block was pushed here by peer `from` (the swarm's sink): when that peer had it released a
   * moment ago (its push overtaken by its release), it goes again, by the same rules. Another
   * peer's push of it is kept: a writer of the same bytes placing them, whose chunk would stay
   * pending for as long as the release is remembered. Whether it went: the sink then does not
   * acknowledge it (a writer counting it held would call its chunk placed with this fragment
   * nowhere). Never throws.
   */
  async arrived (cid: CID, from: string, origin?: string, opts: { held?: boolean, at?: number } = {}): Promise<boolean> {
    // (the sink told arriving() before storing it; a caller that did not is told here). `held`:
    // the store had the block when the put began: a record gone meanwhile (the block's removal
    // told, a restart's release made only now) is not rebuilt as this pusher's alone (review36f)
    this.arriving(cid, from, origin, { held: opts.held, at: opts.at })
    const key = `${cid.toString()}/${from}`
    const until = this.released.get(key)
    if (until === undefined) {
      // (the second look asks mayRelease(): a push naming another writer than the release's
      // asker stays)
      this.recheckRelayed(cid, from)
      return false
    }
    if (until < this.clock()) { this.released.delete(key); return false }
    try {
      // bounded: a walk this waits on is aborted once every caller gave up (retained-walk.ts)
      const gone = await this.drop([cid], { signal: AbortSignal.timeout(ARRIVED_DROP_TIMEOUT_MS) })
      if (gone.size > 0) log('dropped %s on arrival: released a moment ago', cid.toString())
      // deleted by the release itself while this push was landing (arriving()): gone too, so
      // not acknowledged either
      return gone.size > 0 || !(await this.c.store.has(cid))
    } catch (err) {
      log.error('dropping released block %s on arrival failed (GC removes it later): %s', cid.toString(), (err as Error).message)
      return false
    }
  }

  /**
   * A block released a moment ago at another peer's request arrived from `from`: a hop of that
   * peer's push chain forwarding it (its forward overtaken by the release), or a writer of the
   * same bytes. Kept and acknowledged now; looked at again RELAYED_RECHECK_MS later by the
   * release's rules, every promise standing then counted (the asker's own ended at its release:
   * one it gave since is a new write's; see the top of this file).
   */
  private recheckRelayed (cid: CID, from: string): void {
    const block = cid.toString()
    const r = this.releasedFor.get(block)
    if (r === undefined || r.asker === from || this.unserve === undefined) return
    if (r.until < this.clock()) { this.releasedFor.delete(block); return }
    if (this.rechecks.has(block)) return
    const timer = setTimeout(() => {
      this.rechecks.delete(block)
      // the release no longer remembered (its time over, forgotten for room): the block stays
      const now = this.releasedFor.get(block)
      if (now === undefined || now.until < this.clock() || this.unserve === undefined) { this.rechecked++; return }
      // by the release's rules of who may ask (a push since naming its writer, or no longer fresh)
      const may = this.mayRelease(cid, now.asker)
      if (may !== 'yes') { this.refusals[may]++; this.rechecked++; log('%s stays: released by %s, who may not have it deleted (%s)', block, now.asker, may); return }
      this.drop([cid], { signal: AbortSignal.timeout(ARRIVED_DROP_TIMEOUT_MS) }).then(gone => {
        if (gone.size > 0) log('dropped %s: released a moment ago, relayed here by %s', block, from)
      }, (err: Error) => {
        log.error('dropping released block %s relayed by %s failed (GC removes it later): %s', block, from, err.message)
      }).finally(() => { this.rechecked++ })
    }, this.relayedRecheckMs)
    timer.unref?.()
    this.rechecks.set(block, timer)
  }

  private inUse (cid: CID): boolean {
    return this.c.inUse?.(cid) === true
  }

  /**
   * Whether a local block may be deleted now by this host's own writes: no peer was promised it
   * (a promise to itself, a placed chunk's own fragment kept until the write commits, does not
   * stop the write that placed it giving it up).
   */
  mayDelete (cid: CID): boolean {
    return !this.c.promised(cid, this.c.host.peerId)
  }

  /**
   * Delete the blocks nothing here needs (see the top of this file); returns the ones deleted.
   * `asker`: the peer asking, whose own custody promises do not keep a block (it gave it up).
   */
  async drop (cids: CID[], opts: AbortOptions & { asker?: string, count?: boolean } = {}): Promise<Set<string>> {
    const out = new Set<string>()
    const r = await this.walks.get(opts)
    if (r.unreadable > 0) {
      log('%d retained manifest(s) cannot be read: nothing released (GC removes it later)', r.unreadable)
      return out
    }
    const needed = neededBy(r)
    for (const cid of cids) {
      // a caller that gave up (an asker whose call timed out) has nothing more deleted
      opts.signal?.throwIfAborted()
      const key = cid.toString()
      if (needed.has(key)) {
        // (a block not held here is no refusal)
        if (opts.count === true && await this.c.store.has(cid)) this.refusals.named++
        continue
      }
      if (this.inUse(cid) || this.c.promised(cid, opts.asker) || this.c.store.isClaimed(cid)) {
        if (opts.count === true && await this.c.store.has(cid)) this.refusals.promised++
        continue
      }
      if (!(await this.c.store.has(cid))) continue
      // looked at again after the awaits above: a promise or an open write may have come meanwhile
      const may = (): boolean => !this.c.promised(cid, opts.asker) && !this.c.store.isClaimed(cid) && !this.inUse(cid)
      // (who put it goes with it through the store's onGone, told once the file is gone: forgotten
      // here again, a re-push's fresh record landed since went too: review36f)
      if (await deleteUnpromised(cid, { store: this.c.store, deleteUnpromised: this.c.deleteUnpromised, except: opts.asker, may })) out.add(key)
    }
    return out
  }

  /**
   * Of `cids`, the ones this host's own tree needs (retained.ts): a writer giving up a write
   * leaves them out of its release and keeps its copies (review31g: another write of the same
   * bytes here committed a moment ago, and the hosts that have not seen that commit yet would
   * delete its fragments). All of them when some retained manifest cannot be read.
   */
  async referenced (cids: CID[], opts: AbortOptions = {}): Promise<Set<string>> {
    const r = await this.walks.get(opts)
    if (r.unreadable > 0) return new Set(cids.map(c => c.toString()))
    const needed = neededBy(r)
    return new Set(cids.map(c => c.toString()).filter(k => needed.has(k)))
  }

  /** Ask a peer to delete blocks of an abandoned write: the ones it deleted. Unreachable peers delete nothing. */
  async ask (peer: string, cids: CID[], opts: AbortOptions = {}): Promise<Set<string>> {
    const out = new Set<string>()
    for (let b = 0; b < cids.length; b += MAX_RELEASE_CIDS) {
      const batch = cids.slice(b, b + MAX_RELEASE_CIDS)
      try {
        const reply = await call(this.c.host, peer, RELEASE, batch, opts)
        batch.forEach((c, i) => { if (reply[i]) out.add(c.toString()) })
      } catch (err) {
        // unreachable or failing: that peer's copies are left to its GC
        log('release of %d block(s) asked of %s: %e', batch.length, peer, err)
      }
    }
    return out
  }
}

/** The one peer record `r` lists (pushed, promised, named), if one only and it was not held before any record. */
function soleOf (r: PutRecord | undefined): string | undefined {
  if (r === undefined || r.unknown === true || r.pending !== undefined) return undefined
  let sole: string | undefined
  for (const p of [...r.pushed, ...r.claimed, ...r.named]) {
    if (sole === undefined) sole = p
    else if (p !== sole) return undefined
  }
  return sole
}

/**
 * Adds `peer` to `list`, one of record `r`'s: past PUT_NAMES_MAX peers the block becomes nobody's
 * (`unknown`, refused to every asker) instead of the list growing.
 */
function listed (r: PutRecord, list: string[], peer: string): void {
  if (list.includes(peer)) return
  if (list.length >= PUT_NAMES_MAX) { r.unknown = true; return }
  list.push(peer)
}

/** neededBy() of each walk result (a reused result answers many requests). */
const neededOf = new WeakMap<Retained, Set<string>>()

/** The blocks a retained set names: its manifests and every fragment of its chunks. */
function neededBy (r: Retained): Set<string> {
  const had = neededOf.get(r)
  if (had !== undefined) return had
  const needed = new Set<string>(r.manifests.keys())
  // every coding of a chunk (from every manifest; r.chunks keeps one ref per coding): the same bytes in two files
  // written at different k carry two fragment sets, both needed (review32g)
  for (const refs of r.byManifest.values()) for (const ref of refs) for (const f of ref.fragments) needed.add(f.toString())
  neededOf.set(r, needed)
  return needed
}

/**
 * The swarm's sink on a holder: what peers push here (and a relay's own fragments of a writer's
 * chunk, keeper/forward.ts) is stored through `store` (keeping its leaf hashes) and told to the
 * release (`release()`: none before the daemon made it) as put by its writer; a block released a
 * moment ago by its pusher is dropped again on arrival and not acknowledged (the swarm
 * acknowledges a put that returns). `verified`: the swarm hashed the bytes on arrival.
 */
/** What the daemon tells the release of (the sink's puts, custody's promises, the store's removals): the release, or ReleaseOpening while it is made. */
export type ReleaseTeller = Pick<Release, 'landingOf' | 'arriving' | 'arrived' | 'noted' | 'gone'>

export function releasingSink (store: Pick<Store, 'put' | 'has'>, release: () => ReleaseTeller | undefined): BlockSink {
  return {
    put: async (cid, bytes, o) => {
      // its record is kept (not forgotten for room) from the stat to arrived(): an `unknown` one
      // evicted in between would be rebuilt clean by arrived() (review36c)
      const landed = release()?.landingOf(cid)
      try {
        // held already? (one held with no record of who put it stays no one's: arriving()).
        // Asked even before the daemon made its release: a put spanning that moment tells it
        // at arrived() (review36f: it made a clean record of a block held before the restart)
        const held = await store.has(cid)
        // who put it, told before the store has it (arriving()); a relay's own fragment of a
        // writer's chunk (keeper/forward.ts) names the writer
        const early = release()
        early?.arriving(cid, o?.from, o?.origin, { held })
        await store.put(cid, bytes, { verified: o?.verified })
        // a relay's own fragment (no arrived()) stored as the release came: told now
        if (o?.from === undefined && early === undefined) release()?.arriving(cid, undefined, o?.origin, { held })
        // dropped again: not stored, so not acknowledged
        if (o?.from !== undefined && await release()?.arrived(cid, o.from, o.origin, { held }) === true) throw new Error(`${cid.toString()} was released here a moment ago: dropped on arrival`)
      } finally {
        landed?.()
      }
    }
  }
}
