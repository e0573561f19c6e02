// The chunk service's view of the network (DESIGN.md §3, §5): erasure parameters from the live
// membership, placement of fragments on the members each chunk's rule ranks (placement.ts rank:
// capacity-weighted rendezvous for chunks written since issue 14, the XOR-closest for older
// ones; reads ask those same members who holds what), and fetching any k fragments from
// whoever holds them. Built on the host (membership, DHT) and the swarm
// (verified block exchange with forwarding).
import type { CID } from 'multiformats/cid'
import type { Swarm } from '../../swarm/index.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Network } from '../data/index.ts'
import type { ChunkRef, FragmentSlice } from '../data/index.ts'
import { rebuildFragments, verifyRange } from '../data/index.ts'
import { BlockUnavailableError } from '../errors.ts'
import { forEachLimited } from '../pool.ts'
import type { Forwarder } from './forward.ts'
import type { Host } from '../net/index.ts'
import { assignment } from './assignment.ts'
import type { Handover } from './custody.ts'
import type { PlacementPolicy } from './placement.ts'
import type { PendingPlacements } from './pending.ts'
import { codingOf, encodingOf } from './pending.ts'
import type { Store } from '../data/index.ts'
import { logger, shortCid, shortPeer, shortPeers } from '../log.ts'
import { anySignal, boundedSignal } from '../abort.ts'

/** The placement path's lines (`--log debug`): each chunk's plan, the peers chosen, the acknowledgements. */
const placeLog = logger('keeper:place')
/** The fetch path's lines. */
const log = logger('keeper:fetch')

/** Time to find and fetch the fragments of one chunk before a read fails (EIO, not a hang). */
export const FETCH_TIMEOUT_MS = 20_000
/**
 * How long a read with no peer connected (a host just back, or offline) tries the members ranked
 * for its blocks before it fails as offline: their dials fail fast when the host is truly cut
 * off, and a read must not wait the whole FETCH_TIMEOUT_MS for it.
 */
export const OFFLINE_FETCH_MS = 3_000
/** Time for the chunk's targets to say which fragments they hold before a read asks every peer. */
export const HOLDERS_TIMEOUT_MS = 2_000
/**
 * How long a small read's request to a data fragment's target, past its hedge time, is still
 * waited for once no other target is left to ask (swarm pullRange's lingerMs), before the read
 * asks who else holds the fragment and, when no one does, reads the chunk whole (k fragments,
 * and a decode when one is missing). A target on a busy host that missed the hedge by a moment
 * (a repair pass's surveys on six hosts sharing two cores) turned a 4 KiB read into a rebuild,
 * and the randread cell collapsed (issue 15); a target that is gone costs this much more.
 */
export const RANGE_LINGER_MS = 2_000
/** Time to wait for acknowledgements before a placement gives up (the chunk stays local-only). */
export const PLACE_TIMEOUT_MS = 60_000
/** Time between retries of the placements that are still short (pending): the repair pass cadence, so a thin writer is not made to push again while its relays work. */
export const PLACE_RETRY_INTERVAL_MS = 60_000
/** The least time between the starts of two retries of pending placements (retrySoon()). */
export const PLACE_RETRY_MIN_GAP_MS = 2_000
/** Chunks placed at once by one writer. */
export const PLACE_CONCURRENCY = 8
/**
 * Placed chunks whose acknowledgements (`ChunkNetwork.placement`) are remembered, the latest
 * written: 16 GiB of 1 MiB chunks, a few MiB of memory.
 */
export const PLACEMENT_REMEMBERED = 16_384

export interface NetworkComponents {
  host: Pick<Host, 'peerId' | 'peers' | 'peerIds'>
  swarm: Pick<Swarm, 'has' | 'pullAny' | 'push' | 'pullRange'>
  store: Pick<Store, 'has' | 'get' | 'put' | 'delete' | 'isClaimed'>
  /** Redundancy, the k/m rule and the members placement ranks (placement.ts), shared with the repairer. */
  policy: PlacementPolicy
  /** The chunks still being placed; the swarm reads it too (pending.ts), so it is built before both. */
  pending: PendingPlacements
  /** Hosts pinning a file (pins.ts pinnersOf over the tree): they get its chunks through the push chains. */
  pinners: (inode: string) => string[]
  /** Whether this host has lost its peers (presence.ts): chunks held only here stay pending. */
  offline: () => boolean
  /**
   * The members taken to be up (Membership.up(): the connected ones in a full mesh, beyond it
   * the table's members not away or gone), which reads dial for the fragments placement put on
   * them, as a set (Membership.upSet(): kept until the members change). Not given: the
   * connected peers.
   */
  up?: () => ReadonlySet<string>
  /**
   * Places erasure-coded chunks through a relay, so the writer uploads each byte about once
   * (forward.ts); given only when this host's uplink is thin (throughRelays).
   */
  forward?: Pick<Forwarder, 'place'>
  /** Asks peers to delete an abandoned write's fragments (release.ts); none: they are left to GC. */
  release?: Releaser
  /**
   * Whether something on this host not placed yet needs a fragment stored here (an open file's
   * spilled chunk: ChunkService.aside): a placement of the same bytes does not hand this host's
   * copy over. None: nothing does.
   */
  needed?: (fragment: CID) => boolean
}

/**
 * Uplinks below this (100 Mbit/s) place chunks through a relay: the writer then sends each byte
 * once instead of (k + m - 1) / k times, which is what counts on a thin link. On a faster one the
 * relay's extra hop and round trips cost more than the bytes they save (a 5-host loopback put:
 * a relayed chunk took ~500 ms to place, a directly pushed one a fraction of that).
 */
export const RELAY_BELOW_BYTES_PER_SECOND = 12_500_000

/**
 * Whether a host with this upload rate (bytes/s; `--uplink`, or `--max-upload` when lower;
 * undefined when unknown) places its chunks through relays.
 */
export function throughRelays (uploadBytesPerSecond: number | undefined): boolean {
  return uploadBytesPerSecond !== undefined && uploadBytesPerSecond < RELAY_BELOW_BYTES_PER_SECOND
}

/**
 * A chunk is placed and this host holds copies it is not a target of: whoever listens (the
 * daemon, with custody.ts) hands them over once their keepers promise to keep them, and calls
 * `dropped` with the blocks deleted here. `keeps`: the rest of the chunk's fragments and the
 * targets that took them (this host among them when it is one): each is asked to promise its
 * fragment too, nothing is deleted. Until the write commits, nothing but those promises stops
 * another writer of the same bytes that gives up from having them deleted (release.ts).
 */
export interface HandoverEvent {
  handovers: Handover[]
  keeps: Handover[]
  dropped: (cids: string[]) => void
  /** The listener's work on it (the custody round): a placement with `settle` waits for it. */
  waitUntil: (work: Promise<unknown>) => void
  /**
   * A block's keepers that did not promise it (they do not hold it: the acknowledgements were a
   * record of the past, GC or a release deleted it since, or it was dropped on arrival): they no
   * longer count as holding it, and the chunk is pending again (placed again, by a `settle`
   * placement at once).
   */
  refused: (cid: string, keepers: string[]) => void
  /** A block's keepers that promised it (a renewal round, renew(), hears them; optional). */
  promised?: (cid: string, keepers: string[]) => void
}

/**
 * Deleting the fragments of an abandoned write on the hosts that took them (release.ts), and
 * whether a local block may be deleted now (custody: no peer was promised it).
 */
export interface Releaser {
  ask: (peer: string, cids: CID[], opts?: AbortOptions) => Promise<Set<string>>
  mayDelete: (cid: CID) => boolean
  /** Of `cids`, the ones this host's own tree needs (release.ts referenced()); optional: none. */
  referenced?: (cids: CID[], opts?: AbortOptions) => Promise<Set<string>>
}

export interface NetworkEvents {
  handover: CustomEvent<HandoverEvent>
}

/**
 * Where each fragment of a chunk is known to be (peer ids), from acknowledgements: chunk CID ->
 * coding (encodingOf) -> per fragment index, its holders. Two codings of the same bytes (another
 * k) are two placements, each with its own record.
 */
export type Placement = Map<string, Map<string, Array<Set<string>>>>

/** One coding of a chunk as its writer knows it (holders(), for status). */
export interface CodingHolders {
  /** Which coding (pending.ts encodingOf). */
  encoding: string
  /** Hosts known to hold any of its fragments (this one included). */
  hosts: number
  /** Its fragments known held somewhere. */
  fragments: number
  /** Whether its placement has not finished. */
  pending: boolean
}

/** Options of ChunkNetwork.place (the Network.place of data/blocks.ts). */
export interface PlaceOptions extends AbortOptions {
  /** The file the chunks belong to (its pinning hosts get the data fragments too). */
  inode?: string
  /** Fragments still in memory (data/staging.ts); the rest are read from the store. */
  staged?: (cid: CID) => Uint8Array | undefined
  /**
   * As `staged`, each lent for its push (Staging.lend): placeOne says done(true) once every
   * target of the delivery acknowledged it, done(false) when not. Preferred to `staged` where given.
   */
  lend?: (cid: CID) => { bytes: Uint8Array, done: (clean: boolean) => void } | undefined
  /** Whether a fragment is staged (no bytes given out: pooled memory stays recyclable, Staging.has). */
  isStaged?: (cid: CID) => boolean
  /**
   * Resolve only once the copies this host is not a target of are handed over (deleted here)
   * too, not as soon as the targets acknowledged: a write's placement window (ChunkWrite) counts
   * its bytes on this disk until then.
   */
  settle?: boolean
  /**
   * Resolve a chunk as soon as one lost host would lose nothing of it (survivesOneLoss: two
   * hosts hold its block, or every host but any one still holds k of its fragments), what an
   * fsync waits for (DESIGN.md §5); its placement on the rest of its targets goes on in the
   * background, tracked as before (pending until every target acknowledged).
   */
  safe?: boolean
}

/**
 * Whether a chunk whose fragment j is held by the hosts in held[j] survives the loss of any one
 * host: a replicated chunk (k = 1, one block) has two holders, an erasure-coded one keeps k
 * fragments held elsewhere whichever host is lost.
 */
export function survivesOneLoss (held: Array<Set<string>>, k: number): boolean {
  const sets = k === 1 ? held.slice(0, 1) : held
  const hosts = new Set(sets.flatMap(h => [...h]))
  if (hosts.size < 2) return false
  for (const lost of hosts) {
    let left = 0
    for (const h of sets) if (h.size > (h.has(lost) ? 1 : 0)) left++
    if (left < k) return false
  }
  return true
}

/**
 * Whether a placement is over: every host a fragment must be on (`want[j]`: assignment.ts over
 * the chunk's ranked members, those up and those away but not declared gone) acknowledged it
 * (`held[j]`). Hosts holding a fragment they are not a target of (the writer's copies, pinning
 * hosts) count for nothing here.
 */
export function targetsHold (want: ReadonlyArray<readonly string[]>, held: ReadonlyArray<ReadonlySet<string>>): boolean {
  return want.length > 0 && want.every((hs, j) => hs.length > 0 && hs.every(h => held[j]?.has(h) === true))
}

export class ChunkNetwork extends EventTarget implements Network {
  private readonly c: NetworkComponents
  private readonly host: NetworkComponents['host']
  private readonly swarm: NetworkComponents['swarm']
  private readonly store: NetworkComponents['store']
  private readonly policy: PlacementPolicy
  private readonly forward?: Pick<Forwarder, 'place'>
  /** chunk CID -> coding -> per fragment index, the hosts that acknowledged holding it (heldOf()). */
  readonly placement: Placement = new Map()
  /** Chunks written here whose placement has not finished (retried on reconnect). */
  readonly pending: PendingPlacements
  /**
   * Fragments this host is a target of for some chunk. Fragments are content-addressed, so one
   * fragment can belong to several chunks (equal shards): a fragment is dropped only when no
   * chunk wants it here and no pending chunk still has to send it.
   */
  private readonly keep = new Set<string>()
  /**
   * Parity fragments a placement stored here new (the share this host keeps of a chunk written
   * here, which the write itself stored only as its data fragments): the write knows nothing of
   * them, so when it is abandoned abandon() deletes them here (at most PLACEMENT_REMEMBERED, the
   * oldest forgotten first: a write is given up long before that many chunks later).
   */
  private readonly storedHere = new Set<string>()
  /**
   * Codings (codingOf) being placed now: a retry (every reconnect) joins the placement in flight
   * of the same coding; another coding of the same bytes (another k) is a placement of its own.
   */
  private readonly placing = new Map<string, Promise<void>>()
  /**
   * Codings (codingOf) committed here and pending whose placement is to come (pend(): a version's
   * manifest, placed once its chunks are): until it starts (run()), this host's repair takes them
   * as being placed here (isPlacing, isPlacingCoding).
   */
  private readonly due = new Set<string>()
  /** chunk CID -> how many of its codings are being placed now (isPlacing). */
  private readonly placingChunks = new Map<string, number>()
  /**
   * Chunks whose placement finished (not pending), oldest first: beyond PLACEMENT_REMEMBERED the
   * oldest are forgotten from `placement` (a host writing for months kept an entry, six sets,
   * per chunk it ever wrote). A forgotten chunk's holders are the keepers' business (their book,
   * repair passes); written again, it is placed afresh from what the store and the peers hold.
   */
  private readonly placedOrder = new Set<string>()
  /** How many placed chunks' records placedOrder keeps (tests set fewer). */
  placementRemembered = PLACEMENT_REMEMBERED
  /** Codings (codingOf) whose copies are being handed over now (a 'handover' listener's work): `settle` waits for them. */
  private readonly handing = new Map<string, Promise<void>>()
  /** Codings a keeper refused to promise a fragment of since their last placement (refused()): a `settle` placement places them again. */
  private readonly refusedCodings = new Set<string>()
  /**
   * Coding (codingOf) -> the `safe` waits of place() until survivesOneLoss holds for it (checked
   * at each acknowledgement of that coding: another coding's say nothing of it).
   */
  private readonly safeWaits = new Map<string, Array<() => void>>()

  constructor (components: NetworkComponents) {
    super()
    this.c = components
    this.host = components.host
    this.swarm = components.swarm
    this.store = components.store
    this.policy = components.policy
    this.pending = components.pending
    this.forward = components.forward
  }

  /**
   * Erasure parameters of new chunks: from the hosts that can take fragments now, the members
   * reachable() (connected, or taken to be up: beyond the full mesh a host is connected to a few
   * of them, and its chunks go to the members the placement ranks, dialled; counting only the
   * connected ones gave a host with --max-connections 4 among 10 members a 3+2 code). A host
   * that is full or draining is up but no member; in a full mesh a suspect is a member but not
   * reachable. This host counts even when full: its chunks start here.
   */
  params (): { k: number, m: number } {
    const live = this.reachable(this.peerIds())
    const takers = new Set([this.host.peerId, ...this.policy.members().filter(p => live.has(p))])
    return this.policy.params(takers.size)
  }

  private signal (opts: AbortOptions | undefined, ms: number): AbortSignal {
    return anySignal([opts?.signal], ms)
  }

  /** Any `need` of the fragments from peers; `background` for repair and pins' catch-up (see withholdsBackground). */
  async fetch (cids: CID[], need: number, opts: AbortOptions & { chunk?: ChunkRef, background?: boolean, land?: (cid: CID, bytes: number) => { bytes: Uint8Array, landed: () => void } | undefined } = {}): Promise<Map<string, Uint8Array>> {
    const signal = this.signal(opts, FETCH_TIMEOUT_MS)
    // a read of an erasure-coded chunk (`cids` data fragments first: ChunkService.fetchChunk)
    // asks the data fragments and a parity fragment only for one that cannot be had or is past
    // its hedge time (swarm `ordered`): taking parity because its holder was less loaded
    // (PREFER_FACTOR) had a cold read on six hosts with every data fragment placed fetch parity,
    // and decode, for 15% of its chunks (coldread36). Repair and pins' catch-up (background)
    // still spread by load
    const ordered = opts.chunk !== undefined && opts.chunk.k > 1 && opts.background !== true
    // (`land`: where the chunk read wants its data fragments written as they arrive, ChunkService.fetchChunk)
    const pull = { background: opts.background, ordered, land: opts.land }
    const peers = this.peerIds()
    if (peers.length === 0) {
      // a host back with no connection yet (or offline): the members ranked for these blocks are
      // dialled and asked, within a bound of their own, before the read fails as offline
      const offline = new BlockUnavailableError(cids[0]?.toString() ?? '?', 'no peer is reachable (offline)')
      const unseen = this.unseenHolders(cids, opts.chunk, { all: true })
      if (unseen.length === 0) throw offline
      log('fetch of %d block(s) with no peer connected: asking %d member(s) ranked for them', cids.length, unseen.length)
      return await this.swarm.pullAny(cids, need, unseen, { signal: anySignal([signal], OFFLINE_FETCH_MS), ...pull }).catch((also: Error) => {
        signal.throwIfAborted()
        log('fetch from the members ranked for them failed too: %s', also.message)
        throw offline
      })
    }
    // first, each fragment from the target a placement put it on (assignment.ts: fragment j on
    // the member ranked j), with no have-query before: they hold it unless membership changed
    // since. A have-query is a stream of its own per target (its opening, protocol
    // negotiation and close): on a cold read through six hosts, five per chunk
    const guess = opts.chunk?.cid != null ? this.placedOn(opts.chunk, cids, need, peers) : undefined
    if (guess !== undefined) {
      const got = await this.swarm.pullAny(cids, need, guess, { signal, ...pull }).catch((err: Error) => {
        signal.throwIfAborted()
        // a target without its fragment (moved by repair or rebalance): who holds what is asked below
        log('fetch of %d fragment(s) from their placement targets failed, asking who holds them: %s', cids.length, err.message)
        return undefined
      })
      if (got !== undefined) return got
    }
    // who holds which fragment, asked of the chunk's targets (one small round trip): the
    // pull then takes each fragment from a host that has it, spread over the fastest
    const holders = opts.chunk?.cid != null ? await this.whoHolds(opts.chunk, cids, peers, signal) : undefined
    if (holders !== undefined) {
      const got = await this.swarm.pullAny(cids, need, holders, { signal, ...pull }).catch((err: Error) => {
        // the holders the targets named did not deliver: every connected peer is asked below
        log('fetch of %d fragment(s) from their named holders failed, asking every peer: %s', cids.length, err.message)
        return undefined
      })
      if (got !== undefined) return got
    }
    // a block read by its CID alone (a manifest: replicated on the XOR-closest members, rule
    // none): first from the members its CID ranks first, connected or not
    if (opts.chunk === undefined) {
      const ranked = this.blockHolders(cids)
      if ([...ranked.values()].some(hs => hs.length > 0)) {
        const got = await this.swarm.pullAny(cids, need, ranked, { signal, ...pull }).catch((err: Error) => {
          signal.throwIfAborted()
          log('fetch of %d block(s) from the members their CIDs rank first failed, asking every peer: %s', cids.length, err.message)
          return undefined
        })
        if (got !== undefined) return got
      }
    }
    try {
      return await this.swarm.pullAny(cids, need, peers, { signal, ...pull })
    } catch (err) {
      signal.throwIfAborted()
      // the hosts seen up did not deliver: the members ranked for these blocks that are not seen
      // up here (a host just back that has not yet met every other; a link down from here
      // alone) are dialled and asked before the read fails
      // with the hosts seen up, first: what each of them holds counts too (k = 4: two fragments on
      // hosts seen up and two on hosts not seen up make a read)
      const unseen = this.unseenHolders(cids, opts.chunk)
      if (unseen.length === 0) throw err
      log('fetch of %d block(s) from the hosts seen up failed, asking them and %d member(s) not seen up: %s', cids.length, unseen.length, (err as Error).message)
      return await this.swarm.pullAny(cids, need, [...peers, ...unseen], { signal, ...pull }).catch((also: Error) => {
        // an abort during this last resort is the caller's, not an unavailable block
        signal.throwIfAborted()
        log('fetch from the members not seen up failed too: %s', also.message)
        throw err
      })
    }
  }

  /**
   * The members a chunk's placement ranks (its k + m + redundancy), or those a block's CID ranks
   * first (blockHolders' rule), that are neither connected nor taken to be up: a read's last
   * resort (fetch). `all`: those taken to be up too (a host with no connection: nobody is seen).
   */
  private unseenHolders (cids: CID[], chunk?: ChunkRef, opts: { all?: boolean } = {}): string[] {
    const members = this.policy.members()
    const reachable = this.reachable(this.peerIds())
    const self = this.host.peerId
    const ranked = chunk?.cid != null
      ? this.policy.rank(chunk, members, chunk.k + chunk.m + this.policy.redundancy)
      : cids.flatMap(c => this.policy.rank({ cid: c }, members, 2 * this.policy.copies(0, members.length)))
    return [...new Set(ranked)].filter(p => p !== self && (opts.all === true || !reachable.has(p)))
  }

  /**
   * Block -> the members its CID ranks first (the rule of a block with no chunk ref: manifests,
   * placement.ts), as many as its copies and as many again, those reachable().
   */
  private blockHolders (cids: CID[]): Map<string, string[]> {
    const members = this.policy.members()
    const n = 2 * this.policy.copies(0, members.length)
    const reachable = this.reachable(this.peerIds())
    return new Map(cids.map(c => [c.toString(), this.policy.rank({ cid: c }, members, n).filter(p => reachable.has(p))]))
  }

  /** The connected peers' ids (Host.peerIds when the host has it: no address look-up per peer). */
  private peerIds (): string[] {
    return this.host.peerIds?.() ?? this.host.peers().map(p => p.id)
  }

  /**
   * The hosts a read may ask: the connected peers and the members taken to be up
   * (NetworkComponents.up), this host apart. Beyond the full mesh most of a chunk's targets are
   * not connected; the member table says where each fragment is, so they are dialled (0 round
   * trips to locate), as placement and repair's surveys dial them. In a full mesh a member not
   * connected is a suspect, not dialled. No provider records are made or looked up.
   */
  private reachable (peers: string[]): Pick<ReadonlySet<string>, 'has'> {
    // asked of a few hosts per read: no set of all members built per 4 KiB read (O(members))
    const up = this.c.up?.()
    const self = this.host.peerId
    return { has: p => p !== self && (peers.includes(p) || up?.has(p) === true) }
  }

  /**
   * Fragment -> the hosts a placement of `chunk` among the members now puts it on (connected, or
   * live members dialled: reachable())
   * (assignment.ts, as fetchRange guesses); undefined when fewer than `need` of `cids` have one,
   * or the chunk is replicated (k = 1: its holders are asked who has it, as before).
   */
  private placedOn (chunk: ChunkRef, cids: CID[], need: number, peers: string[]): Map<string, string[]> | undefined {
    if (chunk.k === 1) return undefined
    const connected = this.reachable(peers)
    const ranked = this.policy.rank(chunk, this.policy.members(), chunk.k + chunk.m)
    const want = assignment(ranked, chunk.k, chunk.m)
    const wanted = new Set(cids.map(c => c.toString()))
    const out = new Map<string, string[]>()
    chunk.fragments.forEach((f, j) => {
      const key = f.toString()
      if (!wanted.has(key)) return
      const hosts = out.get(key) ?? []
      for (const h of want[j] ?? []) if (connected.has(h) && !hosts.includes(h)) hosts.push(h)
      out.set(key, hosts)
    })
    const reachable = [...out.values()].filter(hs => hs.length > 0).length
    return reachable >= need ? out : undefined
  }

  /**
   * Fragment -> the connected targets of `chunk` that hold it; undefined when fewer than k
   * fragments are found and every target answered. A target that did not answer in time (a busy
   * host, many reads ahead at once) is not taken as holding nothing: a fragment no answer names
   * is asked of those targets first, then of every other connected peer, so one slow answer
   * costs the pull a DONT_HAVE, not the fall back to asking every peer for every fragment.
   */
  private async whoHolds (chunk: ChunkRef, cids: CID[], peers: string[], signal: AbortSignal): Promise<Map<string, string[]> | undefined> {
    const connected = this.reachable(peers)
    const asked = this.policy.rank(chunk, this.policy.members(), chunk.k + chunk.m + this.policy.redundancy).filter(p => connected.has(p))
    const out = new Map<string, string[]>(cids.map(c => [c.toString(), []]))
    const silent: string[] = []
    const ask = anySignal([signal], HOLDERS_TIMEOUT_MS)
    await Promise.all(asked.map(async peer => {
      const held = await this.swarm.has(cids, peer, { signal: ask }).catch((err: Error) => {
        // a target that does not answer in time may hold any of them: asked last, below
        log.trace('have-query to %s failed: %s', shortPeer(peer), err.message)
        silent.push(peer)
        return new Set<string>()
      })
      for (const key of held) out.get(key)?.push(peer)
    }))
    const found = [...out.values()].filter(hs => hs.length > 0).length
    if (found >= Math.min(chunk.k, cids.length)) return out
    if (silent.length === 0) return undefined
    const rest = [...silent, ...peers.filter(p => !asked.includes(p))]
    for (const hs of out.values()) if (hs.length === 0) hs.push(...rest)
    return out
  }

  /**
   * Leaves [slice.first, slice.end) of data fragment `slice.fragment` of `ref`, verified against
   * its Merkle root (ref.roots), asked of one host at a time (swarm.pullRange): first of the
   * target a fresh write put the fragment on (assignment.ts: fragment j on the target ranked j),
   * which still holds it unless membership changed, so a small read costs one round trip; then
   * of the holders the chunk's targets name (a have-query, as fetch()). Rejects when the chunk
   * records no roots or no holder delivered; the caller then reads the chunk whole.
   */
  async fetchRange (ref: ChunkRef, slice: FragmentSlice, opts: AbortOptions = {}): Promise<Uint8Array> {
    const root = ref.roots?.[slice.fragment]
    const cid = ref.fragments[slice.fragment]
    if (root === undefined || cid === undefined || ref.cid === null) throw new BlockUnavailableError(ref.cid?.toString() ?? '?', 'the chunk records no Merkle roots')
    const peers = this.peerIds()
    if (peers.length === 0) throw new BlockUnavailableError(cid.toString(), 'no peer is reachable (offline)')
    return await this.rangeFrom(ref, slice, root, cid, peers, opts.signal)
  }

  private async rangeFrom (ref: ChunkRef, slice: FragmentSlice, root: Uint8Array, cid: CID, peers: string[], signal?: AbortSignal): Promise<Uint8Array> {
    const { first, end, fragmentBytes } = slice
    const want = { cid, first, end, verify: (bytes: Uint8Array, proof: Uint8Array[]) => verifyRange(root, fragmentBytes, first, end, bytes, proof) }
    const ranked = this.policy.rank(ref, this.policy.members(), ref.k + ref.m + this.policy.redundancy)
    // every copy of the fragment's CID (with k = 1 the m + 1 copies are one block)
    const targets = [...new Set(assignment(ranked, ref.k, ref.m).filter((_, j) => ref.fragments[j]?.equals(cid)).flat())]
    // the connected ones (known from `peers` alone); only when none is, those up to be dialled
    // (beyond the full mesh): who is up was asked of the membership on every 4 KiB read
    let guess = targets.filter(p => peers.includes(p))
    if (guess.length === 0) {
      const connected = this.reachable(peers)
      guess = targets.filter(p => connected.has(p))
    }
    if (guess.length > 0) {
      // under the caller's signal alone: pullRange gives each of these few targets its hedge
      // time (a target that misses it is still waited for while the others are asked, and
      // RANGE_LINGER_MS after), then gives up, so this try ends by itself (no FETCH_TIMEOUT_MS timer
      // and controller made and stopped for every 4 KiB read, whose answer is nearly always here)
      try {
        return await this.swarm.pullRange(want, guess, { signal, lingerMs: RANGE_LINGER_MS })
      } catch (err) {
        signal?.throwIfAborted()
        log('leaves of fragment %s not at its first targets, asking who holds it: %s', shortCid(cid), (err as Error).message)
      }
    }
    // the have-queries and the pull after them within FETCH_TIMEOUT_MS (a timer stopped when
    // they are over: boundedSignal)
    const bound = boundedSignal([signal], FETCH_TIMEOUT_MS)
    try {
      const holders = ((await this.whoHolds(ref, [cid], peers, bound.signal))?.get(cid.toString()) ?? []).filter(p => !guess.includes(p))
      return await this.swarm.pullRange(want, holders.length > 0 ? holders : peers.filter(p => !guess.includes(p)), { signal: bound.signal })
    } finally {
      bound.clear()
    }
  }

  async fetchOne (cid: CID, opts: AbortOptions = {}): Promise<Uint8Array> {
    const got = await this.fetch([cid], 1, opts)
    return got.get(cid.toString())!
  }

  /**
   * Place the fragments of each chunk on the hosts the placement plan wants them on
   * (assignment.ts: fragment j on the member ranked j, on a fresh write; self included).
   * Resolves when every chunk's attempt is over: acknowledged, or left pending for a retry (the
   * Volume bounds how long an fsync waits for it); with `safe`, as soon as each chunk survives
   * one lost host. Fragments are taken from `staged` (the
   * chunk service's memory) when it has them, else read from the store. Fragments held here
   * that are not this host's to keep are handed over once their targets promised to keep them
   * (custody.ts, through the 'handover' event).
   */
  async place (refs: ChunkRef[], opts: PlaceOptions = {}): Promise<void> {
    const work = refs.filter(r => r.cid !== null)
    for (const r of work) this.pending.add(r, opts.inode)
    // each chunk's attempt over (acknowledged, or left pending)
    const over = work.map(() => Promise.withResolvers<void>())
    const all = forEachLimited(work.map((r, i) => ({ r, i })), PLACE_CONCURRENCY, async ({ r, i }) => {
      const key = r.cid!.toString()
      const coding = codingOf(r)
      await this.run(r, opts)
      over[i].resolve()
      if (opts.settle !== true) return
      await this.handing.get(coding)
      // a keeper refused its promise (handOver()'s refused): the chunk is pending again, placed
      // again now (once here; the retries go on after that)
      if (!this.refusedCodings.delete(coding) || !this.pending.hasCoding(r)) return
      placeLog('chunk %s: placed again (a keeper did not promise its fragment)', shortCid(key))
      await this.run(r, opts)
      await this.handing.get(coding)
    })
    if (opts.safe !== true) return await all
    // the whole placement goes on at its own pace (PLACE_CONCURRENCY chunks at a time); the
    // caller goes on once each chunk survives one lost host, or its attempt is over (a failure
    // of the whole, e.g. an abort, still reaches it)
    const safe = Promise.all(work.map(async (r, i) => { await Promise.race([over[i].promise, this.whenSafe(r)]) }))
    await Promise.race([all, safe])
  }

  /** The placement of a chunk's coding under way, or a new one (one at a time per coding). */
  private async run (r: ChunkRef, opts: PlaceOptions): Promise<void> {
    const key = r.cid!.toString()
    const coding = codingOf(r)
    let run = this.placing.get(coding)
    if (run === undefined) {
      // (pend()'s coding: its placement is here)
      this.due.delete(coding)
      run = this.placeOne(r, opts).catch((err: Error) => {
        // the chunk stays pending (local-only until then): retried below
        placeLog.error('chunk %s: placement failed, left pending: %s', shortCid(key), err.message)
      }).finally(() => {
        this.placing.delete(coding)
        const n = (this.placingChunks.get(key) ?? 1) - 1
        if (n > 0) this.placingChunks.set(key, n)
        else this.placingChunks.delete(key)
        // waits still here raced this run, which is over
        this.safeWaits.delete(coding)
        this.remember(key)
        // a chunk left pending (an attempt that failed, or targets that did not all acknowledge)
        // is retried with the others (retrySoon(): PLACE_RETRY_MIN_GAP_MS after, the wait
        // doubling while retries place nothing), not only on the next connection or the
        // daemon's minute timer: with every peer connected, an acknowledgement lost to a busy
        // host left the chunk short for a minute
        if (this.pending.hasCoding(r)) this.retrySoon()
      })
      this.placing.set(coding, run)
      this.placingChunks.set(key, (this.placingChunks.get(key) ?? 0) + 1)
    }
    await run
  }

  /**
   * Resolves once the chunk survives one lost host by the acknowledgements so far, or when
   * `signal` aborts (Network.safe: a ChunkWrite's fsync wait, raced with the placement itself).
   */
  async safe (ref: ChunkRef, opts: AbortOptions = {}): Promise<void> {
    if (ref.cid === null || opts.signal?.aborted === true) return
    const key = codingOf(ref)
    if (this.survivesNow(ref)) return
    await new Promise<void>(resolve => {
      const done = (): void => {
        opts.signal?.removeEventListener('abort', done)
        const list = this.safeWaits.get(key)
        const i = list?.indexOf(done) ?? -1
        if (i >= 0) list!.splice(i, 1)
        if (list?.length === 0) this.safeWaits.delete(key)
        resolve()
      }
      const list = this.safeWaits.get(key)
      if (list === undefined) this.safeWaits.set(key, [done])
      else list.push(done)
      opts.signal?.addEventListener('abort', done, { once: true })
    })
  }

  /** Resolves once the chunk survives one lost host (or never: place() races it with the placement). */
  private async whenSafe (ref: ChunkRef): Promise<void> {
    const key = codingOf(ref)
    if (this.survivesNow(ref)) return
    await new Promise<void>(resolve => {
      const list = this.safeWaits.get(key)
      if (list === undefined) this.safeWaits.set(key, [resolve])
      else list.push(resolve)
    })
  }

  /**
   * Whether the record of `ref`'s coding says it survives one lost host and is not being checked:
   * a record is a hint (its holders may have lost the blocks since: GC, a release), so while the
   * coding is pending, being placed or its keepers' promises are being asked (handing), only the
   * acknowledgements of this placement (checkSafe) or its end count.
   */
  private survivesNow (ref: ChunkRef): boolean {
    const held = this.heldOf(ref)
    if (held === undefined || !survivesOneLoss(held, ref.k)) return false
    const coding = codingOf(ref)
    return !this.pending.hasCoding(ref) && !this.placing.has(coding) && !this.handing.has(coding)
  }

  /** An acknowledgement came for a coding (codingOf): resolve its `safe` waits if it now survives one lost host. */
  private checkSafe (coding: string, held: Array<Set<string>>, k: number): void {
    const list = this.safeWaits.get(coding)
    if (list === undefined || !survivesOneLoss(held, k)) return
    this.safeWaits.delete(coding)
    for (const resolve of list) resolve()
  }

  /**
   * A write that stored these chunks was abandoned before its commit (ChunkWrite.abandon): they
   * are no longer pending, and every host known to hold one of their fragments is asked to
   * delete it (release.ts: each deletes only what nothing it knows of needs). `keep`: fragments
   * not to ask about (the same write still has them in another chunk).
   */
  async abandon (refs: ChunkRef[], opts: AbortOptions & { keep?: (fragment: CID) => boolean } = {}): Promise<void> {
    const cids = new Map<string, CID>()
    for (const ref of refs) {
      if (ref.cid === null) continue
      const key = ref.cid.toString()
      await this.placing.get(codingOf(ref))
      this.due.delete(codingOf(ref))
      this.pending.delete(ref)
      const records = this.placement.get(key)
      records?.delete(encodingOf(ref))
      if (records?.size === 0) {
        this.placement.delete(key)
        this.placedOrder.delete(key)
      }
      for (const f of ref.fragments) if (opts.keep?.(f) !== true) cids.set(f.toString(), f)
    }
    // the parity a placement stored here for these chunks (storedHere): the write deletes what it
    // stored itself, not these. Kept when another write in flight stored it too, another pending
    // chunk needs it, or a peer was promised it
    for (const ref of refs) {
      for (const f of ref.fragments) {
        const key = f.toString()
        if (!this.storedHere.has(key) || opts.keep?.(f) === true) continue
        this.storedHere.delete(key)
        if (this.store.isClaimed(f) || this.pending.neededByOther(ref, f) || !this.mayDelete(f)) continue
        this.keep.delete(key)
        await this.store.delete(f).catch((err: Error) => { placeLog('abandoned write: deleting kept parity %s failed (GC removes it later): %s', key, err.message) })
      }
    }
    const release = this.c.release
    if (release === undefined || cids.size === 0) return
    // every connected peer, not only the ones that acknowledged: a push cut short by the abort
    // may have stored its block without the acknowledgement coming back (a block that lands
    // after this request is dropped on arrival: release.ts)
    await Promise.all(this.host.peers().map(async ({ id: peer }) => {
      const gone = await release.ask(peer, [...cids.values()], opts)
      placeLog('abandoned write: %s deleted %d of %d fragment(s) asked', shortPeer(peer), gone.size, cids.size)
    }))
  }

  /** Of `cids`, the ones this host's own tree needs: a write given up here releases none of them (release.ts). */
  async referenced (cids: CID[], opts: AbortOptions = {}): Promise<Set<string>> {
    return await this.c.release?.referenced?.(cids, opts) ?? new Set()
  }

  /** Whether a local block may be deleted now (no peer was promised it). */
  mayDelete (cid: CID): boolean {
    return this.c.release?.mayDelete(cid) ?? true
  }

  /**
   * Chunks stored here and committed whose placement comes later (Network.pend: a version's
   * manifest, placed by ChunkWrite.placed() once its chunks are): pending from now, with the file
   * they belong to, and this host's repair leaves them to that placement (isPlacingCoding) as to
   * one in flight; a retry places them too (so one whose place() never comes is not left).
   */
  pend (refs: ChunkRef[], opts: { inode?: string } = {}): void {
    for (const r of refs) {
      if (r.cid === null) continue
      this.pending.add(r, opts.inode)
      const coding = codingOf(r)
      if (!this.placing.has(coding)) this.due.add(coding)
    }
  }

  /** Whether `ref`'s coding is pend()'s, its placement not started yet (and still pending). */
  private isDue (ref: ChunkRef): boolean {
    const coding = codingOf(ref)
    if (!this.due.has(coding)) return false
    if (this.pending.hasCoding(ref)) return true
    // no longer pending (given up): forgotten
    this.due.delete(coding)
    return false
  }

  /** Retry placement of every chunk still pending (after a reconnect). */
  async retry (): Promise<void> {
    await this.place([...this.pending.values()])
  }

  private retryRunning = false
  private retryAgain = false
  private retryTimer?: ReturnType<typeof setTimeout>
  private retryLast = -Infinity
  private retryGap = PLACE_RETRY_MIN_GAP_MS
  private retryStopped = false

  /**
   * A reason to retry the pending placements (a peer connected, the retry timer): one retry
   * (retry()) at a time, and those asked for meanwhile make one more after it; a retry that
   * placed none of the chunks it tried makes the next wait twice as long after it began
   * (PLACE_RETRY_MIN_GAP_MS up to PLACE_RETRY_INTERVAL_MS), one that placed any brings the wait
   * back down. Beyond the full mesh connections open and close all the time (surveys, transfers,
   * the trim), and each one retried every chunk whose last attempt failed: on a lagging
   * process whose dials failed (bench:scale, 50 hosts in one process) the writer pushed its
   * pending chunks again on every connection, hundreds of failing dials per 30 s.
   *
   * `members`: the members changed (one back, one joined, one declared gone): the wait goes back
   * down to PLACE_RETRY_MIN_GAP_MS. A chunk whose target is away stays pending, its retries
   * placing nothing (the wait grows to a minute), until that target is back or gone; then its
   * retry is what places it.
   */
  retrySoon (opts: { members?: boolean } = {}): void {
    if (opts.members === true) {
      this.retryGap = PLACE_RETRY_MIN_GAP_MS
      // a retry waiting out the longer gap is due sooner
      if (this.retryTimer !== undefined) { clearTimeout(this.retryTimer); this.retryTimer = undefined }
    }
    if (this.retryStopped || this.pending.size === 0) return
    if (this.retryRunning) { this.retryAgain = true; return }
    if (this.retryTimer !== undefined) return
    const wait = this.retryLast + this.retryGap - performance.now()
    if (wait > 0) {
      this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.retrySoon() }, wait)
      this.retryTimer.unref?.()
      return
    }
    this.retryRunning = true
    this.retryLast = performance.now()
    const tried = [...this.pending.values()].map(r => r.cid!.toString())
    this.retry().catch((err: Error) => {
      placeLog.error('placement retry of %d pending chunk(s) failed: %s', tried.length, err.message)
    }).finally(() => {
      this.retryRunning = false
      this.retryGap = tried.some(k => !this.pending.has(k)) ? PLACE_RETRY_MIN_GAP_MS : Math.min(this.retryGap * 2, PLACE_RETRY_INTERVAL_MS)
      if (this.retryAgain) { this.retryAgain = false; this.retrySoon() }
    })
  }

  /** No retry from retrySoon() after this. */
  stopRetries (): void {
    this.retryStopped = true
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
  }

  private async placeOne (ref: ChunkRef, opts: PlaceOptions): Promise<void> {
    const key = ref.cid!.toString()
    const self = this.host.peerId
    const n = ref.fragments.length
    const signal = this.signal(opts, PLACE_TIMEOUT_MS)
    const coding = codingOf(ref)
    const inode = this.pending.inode(ref)
    const pinners = inode === undefined ? [] : this.c.pinners(inode)
    const members = this.policy.members()
    // a replicated chunk written while the network was smaller (e.g. offline) gets the copies
    // the network can hold now: extra copies of its one block need no new manifest
    const copies = ref.k === 1 ? this.policy.copies(ref.m, members.length) : n
    const ranked = this.policy.rank(ref, members, Math.min(copies, members.length))
    let held = this.heldOf(ref)
    if (held === undefined) {
      held = Array.from({ length: n }, () => new Set<string>())
      const records = this.placement.get(key) ?? new Map<string, Array<Set<string>>>()
      records.set(encodingOf(ref), held)
      this.placement.set(key, records)
    }
    for (let j = 0; j < n; j++) if (await this.store.has(ref.fragments[j])) held[j].add(self)
    // a chunk written here is stored as its k data fragments alone (ChunkService.storeChunk): its
    // parity is staged or rebuilt from them (parityOf), so while they are all here this host
    // counts as holding the parity too in the plan: the plan of a fresh write is fragment j on
    // the member ranked j, as when the writer stored every fragment (and as keepers repair to).
    // `held` itself says what is on disk (safe waits, handover, status)
    const derivable = ref.k > 1 && held.slice(0, ref.k).every(s => s.has(self))
    const plan = derivable ? held.map((s, j) => j >= ref.k && !s.has(self) ? new Set([...s, self]) : s) : held
    // the same plan the keepers repair to (assignment.ts), from what this host knows is where
    const want = ref.k === 1 ? [ranked] : assignment(ranked, ref.k, ref.m, plan)
    const chunk = shortCid(key)
    if (placeLog.enabled) {
      const plan = ref.k === 1
        ? `${copies} copies on ${shortPeers(ranked)}`
        : want.map((hs, j) => `f${j} ${shortCid(ref.fragments[j])} -> ${shortPeers(hs)}`).join(', ')
      placeLog('chunk %s (k=%d m=%d, %d bytes) of %d members, written on %s: %s%s', chunk, ref.k, ref.m, ref.size, members.length, shortPeer(self), plan,
        pinners.length > 0 ? `; pinners ${shortPeers(pinners)}` : '')
    }
    const index = (cid: CID): number => ref.fragments.findIndex(f => f.equals(cid))
    // a target that is not up (a suspect: away, not declared gone) is not pushed to: it cannot
    // take it now, and the chunk stays pending until it is back (a retry on its connection) or
    // declared gone (a retry ranks the members without it). Each retry dialled every such target
    // once per pending chunk.
    const up = this.reachable(this.peerIds())
    const deliveries: Array<{ cid: CID, bytes: Uint8Array, to: string[] }> = []
    // staged bytes lent for the push, given back after it: clean when every target of the
    // delivery acknowledged the whole block (nothing of ours can still be sending it then). A
    // lend an exception skips is never given back: its pooled memory is left to the collector
    const lent = new Map<string, (clean: boolean) => void>()
    // parity neither staged nor stored here, rebuilt once per attempt from the data fragments
    // here (a placement retried after its staging was let go: a peer was down, the staging
    // bound), each checked against its CID (rebuildFragments)
    let rebuilt: Promise<Map<number, Uint8Array>> | undefined
    const parityOf = async (j: number): Promise<Uint8Array | undefined> => {
      if (!derivable || j < ref.k) return undefined
      rebuilt ??= (async () => {
        const data = await Promise.all(ref.fragments.slice(0, ref.k).map(async f => await this.store.get(f)))
        placeLog('chunk %s: parity rebuilt from the data fragments here', chunk)
        return rebuildFragments(ref, data, Array.from({ length: ref.m }, (_, i) => ref.k + i))
      })()
      return (await rebuilt).get(j)
    }
    const bytesOf = async (cid: CID): Promise<Uint8Array> => {
      const l = lent.has(cid.toString()) ? undefined : opts.lend?.(cid)
      if (l !== undefined) { lent.set(cid.toString(), l.done); return l.bytes }
      const staged = opts.staged?.(cid)
      if (staged !== undefined) return staged
      const j = index(cid)
      if (!held[j].has(self)) {
        const parity = await parityOf(j)
        if (parity !== undefined) return parity
      }
      return await this.store.get(cid)
    }
    // the fragments this host keeps and does not hold yet (its own parity of a chunk written
    // here, not stored by storeChunk): stored now, beside the pushes; a kept fragment is on
    // disk before the chunk counts as placed
    // (or, of a chunk not stored here first, ChunkWrite's deferred one, any fragment still staged)
    const own = ref.k === 1 ? [] : want.flatMap((hs, j) => hs.includes(self) && !held[j].has(self) && (derivable || opts.isStaged?.(ref.fragments[j]) === true) ? [j] : [])
    const storing = Promise.all(own.map(async j => {
      const cid = ref.fragments[j]
      const l = opts.lend?.(cid)
      let clean = false
      try {
        // verified: the writer's encode output (staged), or rebuilt and checked (parityOf)
        await this.store.put(cid, l?.bytes ?? opts.staged?.(cid) ?? (await parityOf(j))!, { verified: true })
        clean = true
      } finally {
        l?.done(clean)
      }
      held[j].add(self)
      this.storedHere.add(cid.toString())
      if (this.storedHere.size > this.placementRemembered) this.storedHere.delete(this.storedHere.values().next().value!)
      placeLog('chunk %s: f%d stored here (kept here)', chunk, j)
    }))
    // its failure is thrown below, after the pushes (the chunk then stays pending)
    storing.catch(() => {})
    if (ref.k === 1) {
      // replication: one block, every target a holder; the swarm forwards along a chain
      const to = [...new Set([...ranked, ...pinners])].filter(p => p !== self && !held[0].has(p) && up.has(p))
      // a block stored here and gone since (neither here nor staged): handed over by this host's
      // own repair pass, which placed it meanwhile (a committed manifest before its writer's
      // placed() did, when it was not pending yet: it is from its commit now, pend()). Nothing here can push it, ever: left
      // pending, every retry failed on reading it and the chunk stayed pending for good (mend43c);
      // it is repair's now. (A replicated chunk is always stored here before it is placed.)
      if (to.length > 0 && !(await this.hasBytes(ref.fragments[0], opts))) {
        held[0].delete(self)
        // (no holder known: lost here without a hand-over, a disk's fault; repair reports it)
        if (held[0].size === 0) placeLog.error('chunk %s: its block is no longer here and no holder of it is known: left to repair', chunk)
        else placeLog('chunk %s: its block is no longer here (handed over since): not placed from here, left to repair', chunk)
        this.pending.delete(ref)
        return
      }
      if (to.length > 0) deliveries.push({ cid: ref.fragments[0], bytes: await bytesOf(ref.fragments[0]), to })
    } else {
      // through a relay first; whatever it could not place is pushed directly below
      const missing = want.some((hosts, j) => [...hosts, ...(j < ref.k ? pinners : [])].some(p => p !== self && !held[j].has(p)))
      // (not a Clay-coded chunk: a relay re-encodes the chunk with Reed–Solomon, forward.ts)
      if (this.forward !== undefined && missing && ranked.length >= n && ref.clay === undefined) {
        // the relay's own time bounds start once the writer's upload is free for it (forward.ts)
        placeLog('chunk %s: through a relay', chunk)
        await this.forward.place(ref, want.map(hs => hs[0]), {
          signal: opts.signal,
          pinners,
          // the relay sends nothing to the hosts that hold their fragment already (a retry)
          held,
          onAck: (j, p) => { held[j].add(p); placeLog('chunk %s: f%d acked by %s (relayed)', chunk, j, shortPeer(p)); this.checkSafe(coding, held, ref.k) }
        }).catch((err: Error) => {
          // what the relay could not place is pushed directly below
          placeLog('chunk %s: relay failed, pushing directly: %s', chunk, err.message)
        })
      }
      for (let j = 0; j < n; j++) {
        if (want[j].includes(self)) this.keep.add(ref.fragments[j].toString())
        // pinning hosts get the k data fragments, on the same chain as the target
        const to = [...want[j], ...(j < ref.k ? pinners : [])].filter(p => p !== self && !held[j].has(p) && up.has(p))
        if (to.length === 0) continue
        deliveries.push({ cid: ref.fragments[j], bytes: await bytesOf(ref.fragments[j]), to: [...new Set(to)] })
      }
    }
    if (deliveries.length > 0) {
      if (placeLog.enabled) placeLog('chunk %s: pushing %s', chunk, deliveries.map(d => `f${index(d.cid)} to ${shortPeers(d.to)}`).join(', '))
      const acks = await this.swarm.push(deliveries, {
        signal: this.signal(opts, PLACE_TIMEOUT_MS),
        // each delivery's bytes are the writer's encode output (staged) or Store.get's (checked on reading)
        verified: true,
        onAck: (cid, p) => {
          placeLog('chunk %s: f%d acked by %s', chunk, index(cid), shortPeer(p))
          // held as it comes, so a `safe` wait ends at the acknowledgement that makes it so
          ref.fragments.forEach((f, j) => { if (f.equals(cid)) held[j].add(p) })
          this.checkSafe(coding, held, ref.k)
        }
      })
      for (const d of deliveries) {
        const peers = acks.get(d.cid.toString()) ?? []
        ref.fragments.forEach((f, j) => { if (f.equals(d.cid)) for (const p of peers) held[j].add(p) })
        const done = lent.get(d.cid.toString())
        lent.delete(d.cid.toString())
        done?.(d.to.every(p => peers.includes(p)))
      }
    }
    await storing
    if (own.length > 0) this.checkSafe(coding, held, ref.k)
    if (ref.k === 1) {
      // every copy index counts the hosts holding the one block
      for (let j = 1; j < n; j++) for (const p of held[0]) held[j].add(p)
    }
    const hosts = new Set(held.flatMap(s => [...s]))
    // placed once every target among the members holds its fragment (targetsHold), not as soon
    // as as many hosts as are connected hold some: a member away but not declared gone is still
    // a target, and counting against the connected ones called a chunk placed with its fragments
    // missing from the members coming back one by one (after a restart or a partition)
    const placed = targetsHold(ref.k === 1 ? [ranked] : want, held) && !(hosts.size < 2 && this.c.offline())
    if (placeLog.enabled) {
      placeLog('chunk %s %s: %d host(s) hold it: %s', chunk, placed ? 'placed' : 'still pending', hosts.size,
        held.map((hs, j) => `f${j} ${shortPeers(hs)}`).join(', '))
    }
    if (placed) {
      this.pending.delete(ref)
      // handing over the copies that are not this host's waits on the targets' promises, and
      // the targets promise the rest too: in the background (the listener's), so the write does
      // not wait for it (a `settle` placement does)
      this.handOver(ref, want, ref.k > 1 && !pinners.includes(self), inode)
    }
  }

  /**
   * Offer the fragments this host is not a target of, once their targets hold them, when
   * `handOver`; and have the targets holding the rest promise them ('handover').
   */
  private handOver (ref: ChunkRef, want: string[][], handOver: boolean, inode: string | undefined): void {
    const self = this.host.peerId
    const held = this.heldOf(ref)
    if (held === undefined) return
    const mine = new Set(ref.fragments.filter((_, j) => want[j]?.includes(self)).map(f => f.toString()))
    const stillNeeded = (f: CID): boolean => this.keep.has(f.toString()) || this.pending.neededByOther(ref, f) || this.c.needed?.(f) === true
    // (a replicated chunk's `want` is its one block's copies)
    const planned = want.map((keepers, j) => ({ cid: ref.fragments[j], j, keepers }))
    const handovers = !handOver
      ? []
      : planned
        // (parity this host never stored, storeChunk's, has nothing to hand over)
        .filter(h => held[h.j].has(self) && !mine.has(h.cid.toString()) && !stillNeeded(h.cid) && h.keepers.length > 0 && h.keepers.every(p => held[h.j].has(p)))
    const handed = new Set(handovers.map(h => h.j))
    const keeps = planned
      .filter(h => !handed.has(h.j))
      .map(h => ({ cid: h.cid, keepers: h.keepers.filter(p => held[h.j].has(p)) }))
      .filter(h => h.keepers.length > 0)
    if (handovers.length === 0 && keeps.length === 0) return
    const dropped = (cids: string[]): void => {
      const gone = new Set(cids)
      for (const h of handovers) if (gone.has(h.cid.toString())) held[h.j].delete(self)
      if (gone.size > 0) placeLog('chunk %s: handed over %d fragment(s) to their keepers', shortCid(ref.cid!), gone.size)
    }
    const coding = codingOf(ref)
    // the acknowledgements this placement counted are a record, not proof: a keeper promises a
    // block only while it holds it, so one that does not is no holder, and the chunk is placed
    // again (GC or another writer's release deleted it since the record was made, or it was
    // dropped on arrival): left pending, it counted as placed with its fragments missing
    const refused = (cid: string, keepers: string[]): void => {
      let lost = 0
      ref.fragments.forEach((f, j) => { if (f.toString() === cid) for (const p of keepers) if (held[j].delete(p)) lost++ })
      if (lost === 0 || this.heldOf(ref) !== held) return
      placeLog('chunk %s: %d keeper(s) of %s did not promise it: placed again', shortCid(ref.cid!), lost, shortCid(cid))
      this.refusedCodings.delete(coding)
      this.refusedCodings.add(coding)
      if (this.refusedCodings.size > this.placementRemembered) this.refusedCodings.delete(this.refusedCodings.values().next().value!)
      if (!this.pending.hasCoding(ref)) {
        this.pending.add(ref, inode)
        this.retrySoon()
      }
    }
    const work: Array<Promise<unknown>> = []
    const waitUntil = (p: Promise<unknown>): void => { work.push(p) }
    this.dispatchEvent(new CustomEvent<HandoverEvent>('handover', { detail: { handovers: handovers.map(({ cid, keepers }) => ({ cid, keepers })), keeps, dropped, waitUntil, refused } }))
    if (work.length === 0) return
    // ignored here: the listener logs its own failures (the copies then stay, which is safe)
    const all: Promise<void> = Promise.allSettled(work).then(() => { if (this.handing.get(coding) === all) this.handing.delete(coding) })
    this.handing.set(coding, all)
  }

  /**
   * A placed chunk's fragments stored here after its placement read what was here (a deferred
   * chunk's data fragments, stored by its write once the placement outlived the write's wait:
   * data/blocks.ts storeUnplaced): the placement's end found none of them, so it handed nothing
   * over. Now they are in its record as held here, and the ones this host is no target of are
   * handed over as that end does (handOver(): once their keepers promised them; kept on any
   * failure). Nothing for a chunk that is not placed (pending, being placed: a retry that places
   * it hands them over), nor a replicated one (a placement leaves its writer's copy). Resolves
   * when the custody round is over.
   */
  async handOverLate (ref: ChunkRef, opts: { inode?: string } = {}): Promise<void> {
    if (ref.cid === null || ref.k === 1 || !this.placedNow(ref)) return
    const held = this.heldOf(ref)!
    const self = this.host.peerId
    let found = 0
    for (let j = 0; j < ref.fragments.length; j++) {
      if (!held[j].has(self) && await this.store.has(ref.fragments[j])) { held[j].add(self); found++ }
    }
    // (placed again or given up meanwhile: that one's business)
    if (found === 0 || !this.placedNow(ref) || this.heldOf(ref) !== held) return
    const inode = opts.inode
    const pinners = inode === undefined ? [] : this.c.pinners(inode)
    const members = this.policy.members()
    const n = ref.fragments.length
    // the plan the placement and the keepers follow (assignment.ts): each target keeps what it
    // holds, so the copies here are not this host's unless it is their fragment's target
    const want = assignment(this.policy.rank(ref, members, Math.min(n, members.length)), ref.k, ref.m, held)
    placeLog('chunk %s: %d fragment(s) stored here after its placement began, handed over', shortCid(ref.cid), found)
    this.handOver(ref, want, !pinners.includes(self), inode)
    await this.handing.get(codingOf(ref))
  }

  /**
   * Renew the custody promises of chunks placed before (a write still open: data/blocks.ts
   * ChunkWrite, every half promise time until its commit): a promise round alone, nothing pushed
   * and nothing read. Each fragment's holders by the placement record are asked to promise it
   * again (the 'handover' event with no handovers: custody.settle, per keeper in the custody
   * calls' batches); a chunk whose record was forgotten (placementRemembered) has its planned
   * targets asked instead, and a new record holds the ones that promised, only once they did (an
   * fsync's safe() never sees an assumed holder). A keeper that refuses (it does not hold the
   * fragment: GC, a joiner displacing it) leaves the record; the chunk is pending again (placed
   * again by the retries) only when this host holds the refused fragment's bytes: a writer hands
   * its fragments over and deletes them, and a retry could never place them (review32b), so a
   * fragment gone here is left to repair after the commit, as an open write without renewal
   * would. The chunk's other fragments are renewed all the same. A keeper that gives no answer
   * (down, restarting, overloaded) refuses nothing: it stays in the record and is asked again
   * next round (review32b: counting it as refusing dropped real holders for good). Chunks being placed now are skipped (their
   * placement has its own round); a pending one is renewed all the same. Resolves when the round is over, or at once when `signal`
   * aborts (a commit, abandon()): nothing of the round is acted on after that. `live(ref)` false:
   * the write released the chunk during the round (ChunkWrite.release()): it gets no new record,
   * no notice, and is not made pending again.
   */
  async renew (refs: ChunkRef[], opts: AbortOptions & { inode?: string, live?: (ref: ChunkRef) => boolean } = {}): Promise<void> {
    const self = this.host.peerId
    // fragment -> its keepers asked (one entry per block: a replicated chunk's copies are one block)
    const keeps = new Map<string, Handover>()
    // fragment -> the chunks asked about it, with the record each was asked from (undefined:
    // forgotten, asked of its planned targets)
    const asked = new Map<string, Array<{ ref: ChunkRef, held?: Array<Set<string>> }>>()
    const seen = new Set<string>()
    for (const ref of refs) {
      if (ref.cid === null || opts.signal?.aborted === true) continue
      const coding = codingOf(ref)
      // (a pending chunk not being placed now is renewed too: a retry that cannot place it, e.g.
      // a fragment handed over and lost on its keeper, must not end the promises of the rest)
      if (seen.has(coding) || this.placing.has(coding) || this.handing.has(coding)) continue
      seen.add(coding)
      const held = this.heldOf(ref)
      const keepers = held !== undefined ? held.map(s => [...s]) : await this.plannedTargets(ref)
      ref.fragments.forEach((cid, j) => {
        const ks = keepers[j] ?? []
        if (ks.length === 0) return
        const key = cid.toString()
        const keep = keeps.get(key)
        if (keep === undefined) keeps.set(key, { cid, keepers: [...new Set(ks)] })
        else keep.keepers = [...new Set([...keep.keepers, ...ks])]
        const list = asked.get(key)
        if (list === undefined) asked.set(key, [{ ref, held }])
        else if (!list.some(a => a.ref === ref)) list.push({ ref, held })
      })
    }
    if (keeps.size === 0 || opts.signal?.aborted === true) return
    const promisedBy = new Map<string, string[]>()
    const refusedBy = new Map<string, string[]>()
    const work: Array<Promise<unknown>> = []
    this.dispatchEvent(new CustomEvent<HandoverEvent>('handover', {
      detail: {
        handovers: [],
        keeps: [...keeps.values()],
        dropped: () => {},
        waitUntil: p => { work.push(p) },
        refused: (cid, keepers) => { refusedBy.set(cid, [...(refusedBy.get(cid) ?? []), ...keepers]) },
        promised: (cid, keepers) => { promisedBy.set(cid, [...(promisedBy.get(cid) ?? []), ...keepers]) }
      }
    }))
    if (work.length === 0) return
    const signal = opts.signal
    // (the custody calls go on after an abort; their answers are not acted on)
    const aborted = Promise.withResolvers<void>()
    const onAbort = (): void => { aborted.resolve() }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      if (signal?.aborted !== true) await Promise.race([Promise.allSettled(work), aborted.promise])
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
    if (signal?.aborted === true) return
    // (a function: read again after each await below)
    const stopped = (): boolean => signal?.aborted === true
    // a chunk the write released meanwhile (rewritten in an open file): no record, not placed
    // again (its bytes here are being deleted: a push would leave orphans on the targets)
    const gone = (ref: ChunkRef): boolean => opts.live?.(ref) === false
    const again = new Set<ChunkRef>()
    // chunk -> its fragments a keeper refused (dropped from the record)
    const refused = new Map<ChunkRef, Set<CID>>()
    const made = new Map<ChunkRef, Array<Set<string>>>()
    // whether this host holds a fragment, looked at once per round for the fresh records (a
    // chunk's fragments may be shared by two codings)
    const looked = new Map<string, boolean>()
    const holds = async (f: CID): Promise<boolean> => {
      const key = f.toString()
      let has = looked.get(key)
      if (has === undefined) looked.set(key, has = await this.store.has(f))
      return has
    }
    let renewed = 0
    for (const [key, list] of asked) {
      const yes = promisedBy.get(key) ?? []
      // only a refusal: a keeper that gave no answer stays in the record, asked again next round
      const no = refusedBy.get(key) ?? []
      for (const { ref, held } of list) {
        const coding = codingOf(ref)
        // placed again meanwhile (a retry, another write): that placement's round is the check
        if (this.placing.has(coding)) continue
        const now = this.heldOf(ref)
        let record = held === undefined ? made.get(ref) : held
        if (record === undefined) {
          if (now !== undefined) continue // recorded again meanwhile (a placement): that record stands
          // the targets that promised (a promise is given only for a block held): a new record,
          // with what this host holds itself
          const fresh = Array.from({ length: ref.fragments.length }, () => new Set<string>())
          for (let j = 0; j < ref.fragments.length; j++) if (await holds(ref.fragments[j])) fresh[j].add(self)
          // the write committed or was abandoned meanwhile: no record for a chunk it released
          if (stopped()) return
          if (this.heldOf(ref) !== undefined || gone(ref)) continue
          const records = this.placement.get(ref.cid!.toString()) ?? new Map<string, Array<Set<string>>>()
          records.set(encodingOf(ref), fresh)
          this.placement.set(ref.cid!.toString(), records)
          this.remember(ref.cid!.toString())
          made.set(ref, record = fresh)
        } else if (now !== record) continue
        ref.fragments.forEach((f, j) => {
          if (f.toString() !== key) return
          for (const p of yes) record[j].add(p)
          for (const p of no) {
            if (record[j].delete(p) || held === undefined) {
              const fs = refused.get(ref) ?? new Set<CID>()
              fs.add(f)
              refused.set(ref, fs)
            }
          }
        })
        if (yes.length > 0) renewed++
      }
    }
    // placed again only from bytes this host holds: the retry's placement reads them here
    const left: ChunkRef[] = []
    for (const [ref, fragments] of refused) {
      let here = true
      for (const f of fragments) {
        // looked at again, not the fresh record's look: a fragment deleted here since must not
        // make the chunk pending with its bytes gone (it is left to repair instead)
        if (!(await this.store.has(f))) { here = false; break }
        if (stopped()) return
      }
      if (stopped()) return
      if (here) again.add(ref)
      else {
        placeLog('chunk %s: a keeper did not renew its promise of a fragment this host no longer holds: left to repair after the commit', shortCid(ref.cid!))
        left.push(ref)
      }
    }
    if (stopped()) return
    // its keeper took the writer's placement notice (placed.ts) as proof that every fragment is
    // held, so the first incremental pass after the commit would take the chunk as placed without
    // a survey, and only a full pass (a member change, the quiet interval) would repair it
    // (review32f): the pruned record goes to the keeper as a new notice, which fails that proof
    for (const ref of left) if (!gone(ref)) this.pending.recorded(ref)
    for (const ref of again) {
      if (gone(ref)) continue
      placeLog('chunk %s: a keeper did not renew its promise: placed again', shortCid(ref.cid!))
      if (!this.pending.hasCoding(ref)) this.pending.add(ref, opts.inode)
    }
    if (again.size > 0) this.retrySoon()
    placeLog('renewal: %d fragment(s) of %d chunk(s) promised again, %d chunk(s) placed again, %d refused and left to repair', renewed, seen.size, again.size, refused.size - again.size)
  }

  /** The hosts the plan wants each fragment of a chunk on now (placeOne's plan, from what this host holds). */
  private async plannedTargets (ref: ChunkRef): Promise<string[][]> {
    const self = this.host.peerId
    const n = ref.fragments.length
    const members = this.policy.members()
    const copies = ref.k === 1 ? this.policy.copies(ref.m, members.length) : n
    const ranked = this.policy.rank(ref, members, Math.min(copies, members.length))
    if (ref.k === 1) return Array.from({ length: n }, () => ranked)
    const plan = await Promise.all(ref.fragments.map(async f => await this.store.has(f) ? new Set([self]) : new Set<string>()))
    const derivable = plan.slice(0, ref.k).every(s => s.has(self))
    return assignment(ranked, ref.k, ref.m, derivable ? plan.map(() => new Set([self])) : plan)
  }

  /**
   * Whether a background want (a keeper's repair, a pinning host's catch-up) for this fragment
   * is refused here: on a thin uplink (placement through relays), while a chunk of it is still
   * pending. The placement delivers it to its targets and the pinning hosts through a relay;
   * serving their own fetches meanwhile would upload it from here once more each. Reads are
   * served.
   */
  withholdsBackground (fragment: CID): boolean {
    return this.pending.withholdsBackground(fragment)
  }

  /** A placement of `key` is over: a placed chunk joins placedOrder, and the oldest beyond the bound are forgotten. */
  private remember (key: string): void {
    this.placedOrder.delete(key)
    // a chunk left pending is placed again (and remembered then): its record is the retry's start
    if (this.pending.has(key)) return
    this.placedOrder.add(key)
    for (const old of this.placedOrder) {
      if (this.placedOrder.size <= this.placementRemembered) break
      this.placedOrder.delete(old)
      if (this.placingChunks.has(old) || this.pending.has(old)) continue
      this.placement.delete(old)
    }
  }

  /**
   * The acknowledgements recorded for `ref`'s coding of its chunk (encodingOf): each coding has
   * its own record.
   */
  heldOf (ref: ChunkRef): Array<Set<string>> | undefined {
    if (ref.cid === null) return undefined
    return this.placement.get(ref.cid.toString())?.get(encodingOf(ref))
  }

  /**
   * Whether `ref`'s placement is over with every fragment acknowledged by a holder (stored there
   * durably, or here): not pending, not being placed nor handed over (Network.placedNow).
   */
  placedNow (ref: ChunkRef): boolean {
    const held = this.heldOf(ref)
    if (held === undefined || !held.every(s => s.size > 0)) return false
    const coding = codingOf(ref)
    return !this.pending.hasCoding(ref) && !this.placing.has(coding) && !this.handing.has(coding)
  }

  /** Whether a block's bytes are here for a push: staged (the placement's `opts`), or in the store. */
  private async hasBytes (cid: CID, opts: PlaceOptions): Promise<boolean> {
    if (opts.isStaged !== undefined ? opts.isStaged(cid) : opts.staged?.(cid) !== undefined) return true
    return await this.store.has(cid)
  }

  /** Whether this host is placing any coding of the chunk (its CID) now. */
  isPlacing (chunk: string): boolean {
    if (this.placingChunks.has(chunk)) return true
    if (this.due.size === 0) return false
    // committed here, its placement to come (pend(): due codings are pending ones, codingOf)
    for (const encoding of this.pending.encodings(chunk)) if (this.due.has(`${chunk} ${encoding}`)) return true
    return false
  }

  /**
   * Whether this host is placing this coding of its chunk now (its keepers' repair leaves it to
   * the placement; status counts it placing). Another coding of the same bytes placed here says
   * nothing of this one: its repair does not wait for it.
   */
  isPlacingCoding (ref: ChunkRef): boolean {
    return this.placing.has(codingOf(ref)) || (ref.cid !== null && this.due.size > 0 && this.isDue(ref))
  }

  /**
   * What this host knows of a chunk's placement, for status: each coding of it placed here (or
   * pending with no record yet: nothing acknowledged), with the hosts holding any of its
   * fragments and how many of its fragments are held; and `hosts` and `fragments` of the worst
   * coding, of the pending ones when any is pending. Two codings of the same bytes (another k)
   * are read each through its own manifest: one placed on six hosts says nothing of another
   * pending on the writer alone (that one is local only, not degraded).
   */
  holders (chunk: string): { hosts: number, fragments: number, pending: boolean, codings: CodingHolders[] } | undefined {
    const records = this.placement.get(chunk)
    if (records === undefined) return undefined
    const pending = this.pending.encodings(chunk)
    const codings: CodingHolders[] = [...records].map(([encoding, held]) => ({
      encoding,
      hosts: new Set(held.flatMap(s => [...s])).size,
      fragments: held.filter(s => s.size > 0).length,
      pending: pending.has(encoding)
    }))
    for (const encoding of pending) if (!records.has(encoding)) codings.push({ encoding, hosts: 0, fragments: 0, pending: true })
    const judged = pending.size > 0 ? codings.filter(c => c.pending) : codings
    const hosts = Math.min(...judged.map(c => c.hosts))
    const fragments = Math.min(...judged.map(c => c.fragments))
    return { hosts: judged.length === 0 ? 0 : hosts, fragments: judged.length === 0 ? 0 : fragments, pending: pending.size > 0, codings }
  }
}
