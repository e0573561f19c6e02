// Telling the peers that this host is full (issue 8, faults), the way failure.ts tells them it
// drains: a host whose disk is full (space.ts) sends a FULL notice to every connected peer, and
// a ROOM notice once it has room again; a peer that connects is told the current state. Each
// peer's Membership, and this host's own, then leaves a full host out of members() (placement
// and repair plan without it, the same plan everywhere) while it stays live (a source of the
// fragments it holds; the daemon keeps a full host from handing its copies over).
//
// The notices also carry the host's disk figures (bytes: its size, free, and free above its
// reserve), which `df` on a mount sums over the live hosts (keeper/capacity.ts): a host tells
// them when a peer connects, when it becomes full or has room again, and when a measure finds
// its free space moved by SPACE_FIGURES_DRIFT since it last told them (an idle host sends none).
//
// A notice that does not go through (a cut link the connection outlives, a stream refused) is
// sent again, with backoff, until it does, while the peer stays connected and no newer state
// replaced it (issue 16); a peer that (re)connects is told the current state the same way.
//
// The notices of one host carry an increasing sequence number, so a FULL and a ROOM sent close
// together on two streams cannot be applied in the wrong order. Notice (an rpc.ts notice):
//   { full: boolean, seq: integer >= 0, disk?: { total, free, avail: integers >= 0 } }
// (`disk` is optional: a host of an older version sends none, and is left out of the sums.)
//
// A notice may also carry `kept`: the host's signed counts of the chunks it is the keeper of
// (keeper/kept.ts: at most SPACE_KEPT_BYTES; opened and checked, signature included, by the
// `kept` component, which sums them into `darkfs status`'s network totals). A host tells its
// notice again when those counts change (tellKept(), rate-bounded by its caller), as when its
// disk figures drift; a host of an older version ignores the field.
import type { Host } from './host.ts'
import type { Membership } from './failure.ts'
import { RpcProtocolError, decodeIncoming, defineProtocol, encodeNotice as encodeRpcNotice, notify, serve } from './rpc.ts'
import { availableBytes } from '../data/index.ts'
import type { Space } from '../data/index.ts'
import type { Capacity } from '../types.ts'
import { logger } from '../log.ts'
import { anySignal } from '../abort.ts'

const log = logger('net:space-notice')

/** Protocol of FULL/ROOM notices. 2.0.0: rpc.ts's envelope (1.0.0 was 9 bytes: state, u64 seq). */
export const SPACE_PROTOCOL = '/darkfs/space/2.0.0'
/** Bound of one notice (a notice is about 20 bytes; this is rpc.ts's smallest bound). */
export const SPACE_NOTICE_BYTES = 1024
/** Time to tell one peer. */
export const SPACE_NOTICE_TIMEOUT_MS = 5_000
/** First wait before a notice that did not go through is sent again (the wait doubles). */
export const SPACE_NOTICE_RETRY_MS = 1_000
/** Longest wait between two tries of one notice. */
export const SPACE_NOTICE_RETRY_MAX_MS = 30_000

/** Bound of a notice's `kept` record (keeper/kept.ts KEPT_MESSAGE_BYTES). */
export const SPACE_KEPT_BYTES = 512

/** Share of its disk a host's free space moves by before it tells its figures again: 1%. */
export const SPACE_FIGURES_DRIFT = 0.01
/** Least move of the bytes held told again: 64 KiB. */
export const STORED_DRIFT_MIN_BYTES = 64 << 10
/** Least move of the free space told again (small disks): 1 MiB. */
export const SPACE_FIGURES_DRIFT_MIN_BYTES = 1 << 20

export class SpaceNoticeError extends RpcProtocolError {
  override readonly name = 'SpaceNoticeError'
}

/** `stored`: bytes of blocks the host holds (for the operator: the dashboard's network map). */
export interface SpaceNotice { full: boolean, seq: number, disk?: Capacity, stored?: number, kept?: Uint8Array }

export const SPACE = defineProtocol<never, never, SpaceNotice>({
  id: SPACE_PROTOCOL,
  maxMessageBytes: SPACE_NOTICE_BYTES,
  timeoutMs: SPACE_NOTICE_TIMEOUT_MS,
  malformed: SpaceNoticeError,
  notice: (v) => {
    const m = v as { full?: unknown, seq?: unknown } | null
    if (m === null || typeof m !== 'object' || typeof m.full !== 'boolean') throw new SpaceNoticeError('a space notice is { full, seq }')
    if (!Number.isSafeInteger(m.seq) || (m.seq as number) < 0) throw new SpaceNoticeError('space notice sequence number out of range')
    const bytes = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0
    const stored = (m as { stored?: unknown }).stored
    if (stored !== undefined && !bytes(stored)) throw new SpaceNoticeError('a space notice\'s stored is a count of bytes')
    const kept = (m as { kept?: unknown }).kept
    if (kept !== undefined && (!(kept instanceof Uint8Array) || kept.byteLength > SPACE_KEPT_BYTES)) throw new SpaceNoticeError(`a space notice's kept is a record of at most ${SPACE_KEPT_BYTES} bytes`)
    const held = { ...(stored === undefined ? {} : { stored }), ...(kept === undefined ? {} : { kept }) }
    const disk = (m as { disk?: unknown }).disk
    if (disk === undefined) return { full: m.full, seq: m.seq as number, ...held }
    const d = disk as Record<string, unknown> | null
    if (d === null || typeof d !== 'object' || !bytes(d.total) || !bytes(d.free) || !bytes(d.avail)) throw new SpaceNoticeError('a space notice\'s disk is { total, free, avail } in bytes')
    return { full: m.full, seq: m.seq as number, disk: { total: d.total, free: d.free, avail: d.avail }, ...held }
  }
})

export interface SpaceNoticeComponents {
  host: Pick<Host, 'peerId' | 'peers' | 'handle' | 'unhandle' | 'newStream' | 'addEventListener' | 'removeEventListener'>
  space: Pick<Space, 'isFull' | 'snapshot' | 'addEventListener' | 'removeEventListener'>
  membership: Pick<Membership, 'setFull' | 'addEventListener' | 'removeEventListener'>
  /** Bytes of blocks this host holds (told with the disk figures; undefined: not told). */
  stored?: () => number | undefined
  /**
   * This host's signed keeper counts to tell (keeper/kept.ts; undefined: none yet), and where a
   * peer's go (`take` checks them: a bad one is dropped there).
   */
  kept?: { own: () => Uint8Array | undefined, take: (msg: Uint8Array, from: string) => void }
}

/** A notice as it goes on the wire (an rpc.ts frame body). */
export function encodeNotice (full: boolean, seq: number, disk?: Capacity): Uint8Array {
  return encodeRpcNotice(SPACE, disk === undefined ? { full, seq } : { full, seq, disk })
}

/** Whether figures moved enough since `told` to be told again (SPACE_FIGURES_DRIFT). */
export function drifted (told: Capacity | undefined, now: Capacity): boolean {
  if (told === undefined) return true
  const step = Math.max(SPACE_FIGURES_DRIFT_MIN_BYTES, now.total * SPACE_FIGURES_DRIFT)
  return told.total !== now.total || Math.abs(told.free - now.free) >= step || Math.abs(told.avail - now.avail) >= step
}

/**
 * Whether the bytes of blocks held here moved enough since `told` to be told again: from or to
 * none, or by SPACE_FIGURES_DRIFT of the figure told (at least STORED_DRIFT_MIN_BYTES).
 */
export function storedDrifted (told: number | undefined, now: number | undefined): boolean {
  if (now === undefined || told === now) return false
  if (told === undefined || told === 0 || now === 0) return true
  return Math.abs(now - told) >= Math.max(STORED_DRIFT_MIN_BYTES, told * SPACE_FIGURES_DRIFT)
}

/** Decode a notice (a frame body); SpaceNoticeError when it is not one (RpcTooLargeError when over the bound). */
export function decodeNotice (bytes: Uint8Array): SpaceNotice {
  const m = decodeIncoming(SPACE, bytes)
  if (m.kind !== 'notice') throw new SpaceNoticeError('not a notice')
  return m.value
}

/** Sends this host's FULL/ROOM notices and applies the peers' to the membership. */
export class SpaceNotices {
  private readonly c: SpaceNoticeComponents
  /** Sequence number of this host's current state (starts from the clock: a restart goes on above it). */
  private seq = Date.now() * 1000
  /** Highest sequence number applied per peer. */
  private readonly heard = new Map<string, number>()
  /** The disk figures each peer told last. */
  private readonly peerDisks = new Map<string, Capacity>()
  /** The bytes of blocks each peer told it holds, last. */
  private readonly peerStored = new Map<string, number>()
  /** This host's figures when it last told every peer. */
  private told: Capacity | undefined
  /** The bytes of blocks held here when it last told every peer. */
  private toldStored: number | undefined
  private readonly shutdown = new AbortController()
  private started = false
  private unserve: (() => Promise<void>) | undefined
  private readonly onChange = (): void => {
    this.c.membership.setFull(this.c.host.peerId, this.c.space.isFull())
    this.tellAll()
  }

  private readonly onMeasure = (): void => {
    if (drifted(this.told, this.disk()) || storedDrifted(this.toldStored, this.c.stored?.())) this.tellAll()
  }

  private readonly onConnect = (evt: CustomEvent<string>): void => { void this.tell(evt.detail, this.seq) }
  private readonly onGone = (evt: CustomEvent<string>): void => {
    this.heard.delete(evt.detail)
    this.peerDisks.delete(evt.detail)
    this.peerStored.delete(evt.detail)
  }

  constructor (c: SpaceNoticeComponents) {
    this.c = c
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.unserve = await serve(this.c.host, SPACE, { notice: (n, { peer }) => { this.take(n, peer) } }, { signal: this.shutdown.signal })
    this.c.space.addEventListener('change', this.onChange)
    this.c.space.addEventListener('measure', this.onMeasure)
    this.c.host.addEventListener('peer:connect', this.onConnect)
    this.c.membership.addEventListener('gone', this.onGone as EventListener)
    if (this.c.space.isFull()) this.c.membership.setFull(this.c.host.peerId, true)
    // peers that connected before this started
    this.told = this.disk()
    this.toldStored = this.c.stored?.()
    for (const p of this.c.host.peers()) void this.tell(p.id, this.seq)
  }

  /** This host's disk figures, from its last measure. */
  disk (): Capacity {
    const s = this.c.space.snapshot()
    return { total: s.capacity, free: Number.isFinite(s.free) ? s.free : 0, avail: availableBytes(s) }
  }

  /** The disk figures of `peers` (this host's included) that are known: those that told none are left out. */
  disks (peers: string[]): Capacity[] {
    const out: Capacity[] = []
    for (const p of new Set(peers)) {
      const d = p === this.c.host.peerId ? this.disk() : this.peerDisks.get(p)
      if (d !== undefined) out.push(d)
    }
    return out
  }

  /** What a peer (or this host) last told of its disk and the bytes of blocks it holds. */
  figures (peer: string): { disk?: Capacity, stored?: number } {
    if (peer === this.c.host.peerId) return { disk: this.disk(), stored: this.c.stored?.() }
    return { disk: this.peerDisks.get(peer), stored: this.peerStored.get(peer) }
  }

  /** This host's keeper counts changed (SpaceNoticeComponents.kept): told to every peer. */
  tellKept (): void {
    if (this.started) this.tellAll()
  }

  /** A new state (full or not, figures) under a new sequence number, told to every peer. */
  private tellAll (): void {
    this.seq++
    this.told = this.disk()
    this.toldStored = this.c.stored?.()
    const seq = this.seq
    for (const p of this.c.host.peers()) void this.tell(p.id, seq)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.shutdown.abort()
    this.c.space.removeEventListener('change', this.onChange)
    this.c.space.removeEventListener('measure', this.onMeasure)
    this.c.host.removeEventListener('peer:connect', this.onConnect)
    this.c.membership.removeEventListener('gone', this.onGone as EventListener)
    await this.unserve?.()
    this.unserve = undefined
  }

  /**
   * Tell one peer the state of `seq`, again and again with backoff until it goes through, while
   * the peer is connected (a reconnect tells it anew) and `seq` is the current state.
   */
  private async tell (peer: string, seq: number): Promise<void> {
    let wait = SPACE_NOTICE_RETRY_MS
    for (let attempt = 0; this.started && seq === this.seq; attempt++) {
      if (attempt > 0) {
        await new Promise(resolve => setTimeout(resolve, wait).unref?.())
        wait = Math.min(wait * 2, SPACE_NOTICE_RETRY_MAX_MS)
        if (!this.started || seq !== this.seq || !this.c.host.peers().some(p => p.id === peer)) return
      }
      try {
        const stored = this.c.stored?.()
        const kept = this.c.kept?.own()
        await notify(this.c.host, peer, SPACE, { full: this.c.space.isFull(), seq, disk: this.disk(), ...(stored === undefined ? {} : { stored }), ...(kept === undefined ? {} : { kept }) }, { signal: this.shutdown.signal })
        return
      } catch (err) {
        log('telling %s (attempt %d) failed: %e', peer, attempt + 1, err)
      }
    }
  }

  /** A peer's notice: apply it unless a later one of that peer's was applied already. */
  private take ({ full, seq, disk, stored, kept }: SpaceNotice, peer: string): void {
    if (seq < (this.heard.get(peer) ?? 0)) return
    this.heard.set(peer, seq)
    if (disk !== undefined) this.peerDisks.set(peer, disk)
    if (stored !== undefined) this.peerStored.set(peer, stored)
    if (kept !== undefined) this.c.kept?.take(kept, peer)
    this.c.membership.setFull(peer, full)
  }
}
