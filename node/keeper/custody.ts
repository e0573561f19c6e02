// Custody of fragments (DESIGN.md §3): a host deletes its copy of a fragment only after the
// hosts that must keep it have promised to, at that moment. A promise says "I hold this block
// now and will not drop it myself for CUSTODY_PROMISE_MS".
//
// Why: drops are planned from surveys that age while a pass runs, and hosts plan from different
// snapshots and membership views (a suspect here is gone there). Trusting a snapshot, X can drop
// its copy because Y holds one while Y drops its copy because Z holds one while Z drops because
// X holds one: every copy gone. With promises, a drop needs a fresh yes from a live holder, and
// a holder that said yes cannot drop the block until the promise expires; two hosts asking each
// other at once both see their own promise and both keep. So at every moment each fragment a
// host dropped is still held by a host that promised it.
//
// Wire (an rpc.ts call): [CID...] -> [boolean...] (one per CID: promised).
import { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import { RpcProtocolError, call, defineProtocol, serve } from '../net/index.ts'
import type { Host } from '../net/index.ts'
import type { Store } from '../data/index.ts'
import { logger } from '../log.ts'
import { cidFlags } from './cid-flags.ts'
import { PeerBatches } from './batches.ts'

const log = logger('keeper:custody')

/** 2.0.0: rpc.ts's envelope (1.0.0 sent the bare dag-cbor lists). */
export const CUSTODY_PROTOCOL = '/darkfs/custody/2.0.0'
/** How long a promise to keep a block holds. Longer than any pass's plan is trusted. */
export const CUSTODY_PROMISE_MS = 10 * 60_000
/** Most CIDs asked in one request (the rest go in further requests). */
export const MAX_CUSTODY_CIDS = 1024
/** Bound of one request or reply message. */
export const MAX_CUSTODY_MESSAGE_BYTES = MAX_CUSTODY_CIDS * 64 + 1024
/** Time for one peer to answer a custody request. */
export const CUSTODY_TIMEOUT_MS = 10_000
/**
 * How long a drop's call to a keeper waits for the drops that follow it (askTogether()): a
 * sequential write hands over the copies of each chunk it placed, one chunk every few tens of ms,
 * and each call is a stream of its own (opened, negotiated, answered, closed: on six hosts in one
 * process ~9 custody streams per MiB written, several percent of the write's CPU). The copies
 * wait this much longer on the writer's disk before they are deleted (extra copies: safe).
 */
export const CUSTODY_LINGER_MS = 500
/** Promises remembered before expired ones are swept. */
export const CUSTODY_SWEEP_AT = 65_536

export class CustodyProtocolError extends RpcProtocolError {
  override readonly name = 'CustodyProtocolError'
}

export const CUSTODY = defineProtocol<CID[], boolean[]>({
  id: CUSTODY_PROTOCOL,
  maxMessageBytes: MAX_CUSTODY_MESSAGE_BYTES,
  timeoutMs: CUSTODY_TIMEOUT_MS,
  malformed: CustodyProtocolError,
  ...cidFlags('custody', MAX_CUSTODY_CIDS, CustodyProtocolError)
})

export interface CustodyComponents {
  host: Pick<Host, 'peerId' | 'handle' | 'unhandle' | 'newStream'>
  store: Pick<Store, 'has' | 'delete'>
  /**
   * Hears the blocks held here that were just promised to `peer` (release.ts: a peer may have
   * deleted only what it put here or was promised here, a record that outlives the promise).
   */
  promisedTo?: (cids: CID[], peer: string) => void
  /**
   * Blocks a write open here will name that no placement has taken (ChunkService.aside: an open
   * file's spilled chunks): a handover leaves their copies. Asked again just before each delete:
   * the handover was planned before the custody round trip, and a spill of the same bytes can be
   * stored meanwhile (review34e). Not given: none.
   */
  keep?: (cid: CID) => boolean
}

/** A local copy to drop, and the hosts that must keep the block (all must promise). */
export interface Handover { cid: CID, keepers: string[] }

/**
 * A keeper's answer: the blocks it promised, and the ones it gave no answer for (unreachable,
 * failing, timed out, this host stopping): not a "no", which only a keeper that answered and
 * does not hold the block gives.
 */
export interface CustodyAnswer { promised: Set<string>, unanswered: Set<string> }

const noAnswer = (cids: CID[]): CustodyAnswer => ({ promised: new Set(), unanswered: new Set(cids.map(c => c.toString())) })

export class Custody {
  private readonly c: CustodyComponents
  /** Block -> when this host's promise to keep it ends (on `clock`). */
  private readonly promises = new Map<string, number>()
  /**
   * Block -> the peers its live promise was made to ('' when not known): a peer that asks to
   * delete a block it alone was promised (release.ts: a write it gave up) is not held back by it.
   */
  private readonly promisees = new Map<string, Set<string>>()
  /** Blocks this host is dropping now (it promises none of them). */
  private readonly dropping = new Set<string>()
  /** Per keeper, the drops' blocks waiting for the next call to it (askTogether()). */
  private readonly asking: PeerBatches<{ cids: CID[], answer: (answer: CustodyAnswer) => void }>
  private readonly promiseMs: number
  /** The monotonic clock (ms) promises are timed on. */
  private readonly clock: () => number
  private started = false
  private unserve: (() => Promise<void>) | undefined

  /**
   * `clock`: the monotonic clock (ms) a promise's end is timed on (default performance.now): a
   * wall clock stepped (NTP, a resume from suspend) neither ends promises early nor keeps them
   * for as long as the step (clocks39: they were on Date.now). Promises live in memory only.
   */
  constructor (c: CustodyComponents, init: { promiseMs?: number, lingerMs?: number, clock?: () => number } = {}) {
    this.c = c
    this.promiseMs = init.promiseMs ?? CUSTODY_PROMISE_MS
    this.clock = init.clock ?? (() => performance.now())
    this.asking = new PeerBatches({
      send: async (peer, batch) => {
        const cids = [...new Map(batch.flatMap(w => w.cids).map(c => [c.toString(), c])).values()]
        // query() reports its own failures (no answer); anything else is no answer too
        const answer = await this.query(peer, cids).catch(() => noAnswer(cids))
        for (const w of batch) w.answer(answer)
      },
      // (a plain timer: the drops wait for their answers, at most lingerMs past a stop)
      lingerMs: init.lingerMs ?? CUSTODY_LINGER_MS
    })
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.unserve = await serve(this.c.host, CUSTODY, {
      call: async (cids, ctx) => {
        const kept = await this.promise(cids, ctx.peer)
        return cids.map(c => kept.has(c.toString()))
      }
    })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.unserve?.()
    this.unserve = undefined
  }

  /**
   * Whether this host promised to keep the block (and the promise has not ended); `except`: a
   * promise made to this peer alone does not count (it asks for the block to go itself).
   */
  promised (cid: CID | string, except?: string): boolean {
    const key = typeof cid === 'string' ? cid : cid.toString()
    const until = this.promises.get(key)
    if (until === undefined) return false
    if (until <= this.clock()) {
      this.forget(key)
      return false
    }
    if (except === undefined) return true
    const to = this.promisees.get(key)
    return to === undefined || [...to].some(p => p !== except)
  }

  /**
   * `peer` gave these blocks up (release.ts: a write it abandoned): its promises of them end, and
   * a block promised to it alone is promised no more. Another promise it asks for later counts
   * again (the same bytes written anew).
   */
  disown (cids: Iterable<CID>, peer: string): void {
    for (const cid of cids) {
      const key = cid.toString()
      const to = this.promisees.get(key)
      if (to === undefined || !to.delete(peer)) continue
      if (to.size === 0) this.forget(key)
    }
  }

  private forget (key: string): void {
    this.promises.delete(key)
    this.promisees.delete(key)
  }

  /**
   * Promise to keep the blocks this host holds: the ones returned. Synchronous with respect to
   * drops: a block being dropped is never promised, a promised one is never dropped.
   */
  async promise (cids: CID[], to = ''): Promise<Set<string>> {
    const out = new Set<string>()
    const now = this.clock()
    const fresh: CID[] = []
    for (const cid of cids) {
      const key = cid.toString()
      if (this.dropping.has(key)) continue
      // a promise that ended keeps nothing: its peers are not carried into this one (a writer's
      // ended promise counted again when another writer asked, and that writer's release was
      // then held back by it; an open write renews its own: data/blocks.ts ChunkWrite)
      if ((this.promises.get(key) ?? Infinity) <= now) this.forget(key)
      // promise before looking (a drop that starts while we look must see the promise)
      // renewed at the end: the map stays in order of expiry (one promiseMs for all), so a sweep
      // stops at the first promise still on
      if ((this.promises.get(key) ?? 0) < now + this.promiseMs) {
        this.promises.delete(key)
        this.promises.set(key, now + this.promiseMs)
      }
      let peers = this.promisees.get(key)
      if (peers === undefined) this.promisees.set(key, peers = new Set())
      peers.add(to)
      fresh.push(cid)
    }
    const kept: CID[] = []
    for (const cid of fresh) {
      const key = cid.toString()
      // a store that cannot answer holds nothing we can promise: the promise is not renewed
      if (await this.c.store.has(cid).catch(() => false)) { out.add(key); kept.push(cid) } else this.forget(key)
    }
    this.sweep()
    // not a promise to itself (its own fragment of a chunk it placed): a record of it would
    // refuse every other writer's release of the same bytes here for as long as it is kept
    // (review35c), where the promise itself ends
    if (to !== '' && to !== this.c.host.peerId && kept.length > 0) this.c.promisedTo?.(kept, to)
    return out
  }

  /** Ask a peer to keep blocks: the ones it holds and promised. Unreachable peers promise nothing. */
  async ask (peer: string, cids: CID[], opts: AbortOptions = {}): Promise<Set<string>> {
    return (await this.query(peer, cids, opts)).promised
  }

  /** ask(), telling the blocks a peer did not answer for (unreachable, failing) from the ones it refused. */
  async query (peer: string, cids: CID[], opts: AbortOptions = {}): Promise<CustodyAnswer> {
    const out: CustodyAnswer = { promised: new Set(), unanswered: new Set() }
    for (let b = 0; b < cids.length; b += MAX_CUSTODY_CIDS) {
      const batch = cids.slice(b, b + MAX_CUSTODY_CIDS)
      try {
        const reply = await call(this.c.host, peer, CUSTODY, batch, opts)
        batch.forEach((c, i) => { if (reply[i]) out.promised.add(c.toString()) })
      } catch (err) {
        // unreachable or failing: it promises nothing of this batch, and refuses none of it
        log('custody of %d blocks asked of %s: %e', batch.length, peer, err)
        for (const c of batch) out.unanswered.add(c.toString())
      }
    }
    return out
  }

  /**
   * ask(), for drops: one call to a keeper at a time, and the blocks of the drops that come
   * meanwhile go together in the next one. A sequential write hands over the copies of each
   * chunk it placed (five keepers per chunk at 4+2): one call per keeper per chunk was a stream
   * of its own each (opened, negotiated, closed), several per MiB written; under way, the chunks
   * placed while a call runs share the next, and a call waits CUSTODY_LINGER_MS for the drops
   * that follow it before it goes. With a signal, the call is the caller's own.
   */
  private async askTogether (peer: string, cids: CID[], opts: AbortOptions): Promise<CustodyAnswer> {
    if (opts.signal !== undefined) return await this.query(peer, cids, opts)
    // (not taken, stopped: no answer, as a failed call)
    return await new Promise<CustodyAnswer>(resolve => { if (!this.asking.add(peer, { cids, answer: resolve })) resolve(noAnswer(cids)) })
  }

  /**
   * Have each block's keepers promise to keep it, this host among them (a promise to itself),
   * deleting nothing: what a writer asks of the targets of a chunk it placed, so that another
   * writer of the same bytes that gives up its write (release.ts, which spares a block promised
   * to anyone but the asker) does not have them deleted before this write commits. Returns how
   * many (block, keeper) pairs were not promised (a keeper that does not hold it, unreachable).
   */
  async keep (keeps: Handover[], opts: AbortOptions = {}): Promise<number> {
    const self = this.c.host.peerId
    const byPeer = new Map<string, CID[]>()
    for (const h of keeps) for (const p of h.keepers) addTo(byPeer, p, h.cid)
    let missing = 0
    await Promise.all([...byPeer].map(async ([peer, cids]) => {
      const promised = peer === self ? await this.promise(cids, self) : (await this.askTogether(peer, cids, opts)).promised
      const not = cids.filter(c => !promised.has(c.toString())).length
      if (not > 0) log('%s promised %d of %d placed block(s)', peer, cids.length - not, cids.length)
      missing += not
    }))
    return missing
  }

  /**
   * A placed chunk's round (network.ts 'handover'): every keeper of every block, `handovers`'
   * and `keeps`', is asked to promise it (one call per keeper, askTogether()), this host's own
   * copies of `handovers` are deleted once all their keepers promised, and `refused` hears each
   * block some keeper did not promise, with those keepers: a promise is given only for a block
   * held, so a keeper that does not hold what the placement's record says (deleted since by GC
   * or another writer's release, dropped on arrival) is found here. When any keeper refused,
   * nothing is deleted (the writer places the chunk again, from these copies). A keeper that
   * gives no answer (unreachable, timed out) refuses nothing: it still counts as a holder, and
   * the copies it keeps are not deleted here; `promised` hears each block's keepers that did.
   * Returns the CIDs deleted.
   */
  async settle (handovers: Handover[], keeps: Handover[], opts: { refused?: (cid: string, keepers: string[]) => void, promised?: (cid: string, keepers: string[]) => void } = {}): Promise<string[]> {
    const self = this.c.host.peerId
    // every handed-over block's keepers are asked (a copy this host is not dropping now, e.g.
    // one being dropped by another round, is checked all the same); only `mine` are deleted
    const asked = handovers.filter(h => h.keepers.length > 0)
    const mine = asked.filter(h => {
      const key = h.cid.toString()
      return !h.keepers.includes(self) && !this.dropping.has(key) && !this.promised(key)
    })
    for (const h of mine) this.dropping.add(h.cid.toString())
    const dropped: string[] = []
    try {
      const byPeer = new Map<string, CID[]>()
      for (const h of [...asked, ...keeps]) for (const p of h.keepers) addTo(byPeer, p, h.cid)
      const answers = new Map<string, CustodyAnswer>()
      await Promise.all([...byPeer].map(async ([peer, cids]) => {
        answers.set(peer, peer === self ? { promised: await this.promise(cids, self), unanswered: new Set() } : await this.askTogether(peer, cids, {}))
      }))
      const promised = (p: string, key: string): boolean => answers.get(p)?.promised.has(key) === true
      let refusals = 0
      for (const h of [...asked, ...keeps]) {
        const key = h.cid.toString()
        if (opts.promised !== undefined) {
          const yes = h.keepers.filter(p => promised(p, key))
          if (yes.length > 0) opts.promised(key, yes)
        }
        // an explicit no only: a keeper that did not answer is no refusal
        const not = h.keepers.filter(p => !promised(p, key) && answers.get(p)?.unanswered.has(key) !== true)
        if (not.length === 0) continue
        refusals++
        log('%d keeper(s) did not promise placed block %s', not.length, key)
        opts.refused?.(key, not)
      }
      if (refusals > 0) return dropped
      await this.deletePromised(mine, promised, dropped)
    } finally {
      for (const h of mine) this.dropping.delete(h.cid.toString())
    }
    return dropped
  }

  /**
   * Delete a local block unless it is promised to a peer other than `except` (release.ts): no
   * promise is given for it while it is being deleted, so a promise given is never for a block
   * deleted under it. Whether it was deleted (by `del`).
   */
  async deleteUnpromised (cid: CID, except: string | undefined, del: () => Promise<boolean>): Promise<boolean> {
    const key = cid.toString()
    if (this.dropping.has(key) || this.promised(key, except)) return false
    this.dropping.add(key)
    try {
      return await del()
    } finally {
      this.dropping.delete(key)
    }
  }

  /**
   * Delete local copies, each only once every one of its keepers promised to keep the block and
   * this host has not promised it to anyone. Returns the CIDs deleted.
   */
  async drop (handovers: Handover[], opts: AbortOptions = {}): Promise<string[]> {
    const self = this.c.host.peerId
    const mine = handovers.filter(h => {
      const key = h.cid.toString()
      return h.keepers.length > 0 && !h.keepers.includes(self) && !this.dropping.has(key) && !this.promised(key)
    })
    for (const h of mine) this.dropping.add(h.cid.toString())
    const dropped: string[] = []
    try {
      const byPeer = new Map<string, CID[]>()
      for (const h of mine) for (const p of h.keepers) addTo(byPeer, p, h.cid)
      const promised = new Map<string, Set<string>>()
      await Promise.all([...byPeer].map(async ([peer, cids]) => { promised.set(peer, (await this.askTogether(peer, cids, opts)).promised) }))
      await this.deletePromised(mine, (p, key) => promised.get(p)?.has(key) === true, dropped)
    } finally {
      for (const h of mine) this.dropping.delete(h.cid.toString())
    }
    return dropped
  }

  /**
   * Delete each of `mine` whose keepers all promised it (`promisedBy`: a keeper that did not
   * answer promised nothing, so the copy stays) and that no peer asked this host to keep
   * meanwhile; the CIDs deleted go to `dropped`.
   */
  private async deletePromised (mine: Handover[], promisedBy: (peer: string, key: string) => boolean, dropped: string[]): Promise<void> {
    for (const h of mine) {
      const key = h.cid.toString()
      if (!h.keepers.every(p => promisedBy(p, key))) continue
      if (this.promised(key)) continue // a peer asked us to keep it while we asked
      if (this.c.keep?.(h.cid) === true) continue // an open file stored it meanwhile
      await this.c.store.delete(h.cid)
      dropped.push(key)
    }
  }

  private sweep (): void {
    if (this.promises.size < CUSTODY_SWEEP_AT) return
    // the ended ones only (the map is in order of expiry): every placed chunk's targets promise
    // now (rel30), and a full map of live promises was scanned whole at each promise() call
    const now = this.clock()
    for (const [k, until] of this.promises) {
      if (until > now) break
      this.forget(k)
    }
  }
}

/**
 * Append to a per-peer list in place (a renewal round asks about every placed chunk of an open
 * write at once: a list copied at each block made a round quadratic in them).
 */
function addTo (byPeer: Map<string, CID[]>, peer: string, cid: CID): void {
  const list = byPeer.get(peer)
  if (list === undefined) byPeer.set(peer, [cid])
  else list.push(cid)
}
