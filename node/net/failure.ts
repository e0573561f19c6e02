// Failure detection (DESIGN.md §3): who the members are for placement and repair. A connected
// peer is live. A peer whose connection went away is suspect: still a member (its fragments
// are presumed where they were) until it has been away for the failure timeout, then it is
// declared gone and its fragments are rebuilt elsewhere. A peer that comes back is live again
// under the same id: a set of ids, so nothing is counted twice. A host that leaves on purpose
// (`darkfs leave`, after draining) says so over LEAVE_PROTOCOL and is dropped at once. Before
// it drains it says so over DRAIN_PROTOCOL: every host then plans placement without it (it stays
// live, a source of its fragments), so the copies it moves are where every host expects them
// and nobody drops them again; STAY_PROTOCOL undoes that when the leave fails.
import { lpStream } from '@libp2p/utils'
import type { Host } from './host.ts'

/** Default time a peer may be unreachable before it is declared gone: 3 minutes. */
export const DEFAULT_FAILURE_TIMEOUT_MS = 3 * 60_000
/** Protocol a draining host uses to tell its peers it is leaving. */
export const LEAVE_PROTOCOL = '/darkfs/leave/1.0.0'
/** Protocol a host uses to tell its peers it starts draining (placement leaves it out). */
export const DRAIN_PROTOCOL = '/darkfs/drain/1.0.0'
/**
 * Protocol a host uses to tell its peers which suspects the operator declared gone (`darkfs
 * heal`), so every host plans without them at once, not each after its own timeout.
 */
export const GONE_PROTOCOL = '/darkfs/gone/1.0.0'
/** Bound of a gone notice (peer ids, one per line). */
export const MAX_GONE_NOTICE_BYTES = 64 * 1024
/** Protocol a host uses to tell its peers it stopped draining and stays (a failed leave). */
export const STAY_PROTOCOL = '/darkfs/stay/1.0.0'
/** Time to tell one peer we leave. */
export const LEAVE_NOTICE_TIMEOUT_MS = 5_000
/** The one byte a leave notice carries. */
const LEAVE_NOTICE = new Uint8Array([1])

export interface MembershipInit {
  /** Time a peer may be away before it is declared gone (default DEFAULT_FAILURE_TIMEOUT_MS). */
  failureTimeoutMs?: number
}

export type MembershipHost = Pick<Host, 'peerId' | 'peers' | 'addEventListener' | 'removeEventListener' | 'handle' | 'unhandle' | 'newStream'>

export interface MembershipEvents {
  /** A peer was declared gone (timeout or leave notice): detail is its id. */
  gone: CustomEvent<string>
  /** A peer connected that was not a member (new, or back after being gone). */
  joined: CustomEvent<string>
}

export class Membership extends EventTarget {
  private readonly host: MembershipHost
  private readonly timeoutMs: number
  /** Disconnected peers not yet gone -> timer declaring them gone. */
  private readonly suspect = new Map<string, ReturnType<typeof setTimeout>>()
  /** Peers that announced they leave (ignored until they connect anew). */
  private readonly left = new Set<string>()
  private readonly known = new Set<string>()
  /** Peers (or this host) draining before they leave: live, but not members for placement. */
  private readonly draining = new Set<string>()
  /** Peers whose disk is full (space-notice.ts): live, a source of what they hold, not members. */
  private readonly full = new Set<string>()
  private started = false
  private readonly onConnect = (evt: CustomEvent<string>): void => { this.connected(evt.detail) }
  private readonly onDisconnect = (evt: CustomEvent<string>): void => { this.disconnected(evt.detail) }

  constructor (host: MembershipHost, init: MembershipInit = {}) {
    super()
    this.host = host
    this.timeoutMs = init.failureTimeoutMs ?? DEFAULT_FAILURE_TIMEOUT_MS
    if (!(this.timeoutMs >= 0)) throw new RangeError(`failure timeout must be >= 0 ms, got ${this.timeoutMs}`)
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    for (const p of this.host.peers()) this.known.add(p.id)
    this.host.addEventListener('peer:connect', this.onConnect)
    this.host.addEventListener('peer:disconnect', this.onDisconnect)
    await this.host.handle(LEAVE_PROTOCOL, (stream, peer) => {
      this.declareGone(peer, true)
      void stream.close().catch(() => { stream.abort(new Error('leave notice')) })
    })
    await this.host.handle(DRAIN_PROTOCOL, (stream, peer) => {
      this.draining.add(peer)
      void stream.close().catch(() => { stream.abort(new Error('drain notice')) })
    })
    await this.host.handle(GONE_PROTOCOL, (stream) => { void this.takeGone(stream) })
    await this.host.handle(STAY_PROTOCOL, (stream, peer) => {
      this.draining.delete(peer)
      void stream.close().catch(() => { stream.abort(new Error('stay notice')) })
    })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.host.removeEventListener('peer:connect', this.onConnect)
    this.host.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const t of this.suspect.values()) clearTimeout(t)
    this.suspect.clear()
    await this.host.unhandle(LEAVE_PROTOCOL).catch(() => {})
    await this.host.unhandle(DRAIN_PROTOCOL).catch(() => {})
    await this.host.unhandle(STAY_PROTOCOL).catch(() => {})
    await this.host.unhandle(GONE_PROTOCOL).catch(() => {})
  }

  /** Connected peers, this host included (ids). */
  live (): string[] {
    return [this.host.peerId, ...this.host.peers().map(p => p.id).filter(p => !this.left.has(p))]
  }

  /** Live and suspect peers, this host included, less those draining or full: the set placement ranks. */
  members (): string[] {
    return [...new Set([...this.live(), ...this.suspect.keys()])].filter(p => !this.draining.has(p) && !this.full.has(p))
  }

  /**
   * A peer's disk is full (its store takes no new blocks) or has room again (space-notice.ts).
   * A peer with room again is a member again: 'joined'.
   */
  setFull (peer: string, full: boolean): void {
    if (full) this.full.add(peer)
    else if (this.full.delete(peer)) this.dispatchEvent(new CustomEvent('joined', { detail: peer }))
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
    await this.notify(DRAIN_PROTOCOL)
  }

  /** Undo announceDrain (the leave failed; this host stays a member). */
  async announceStay (): Promise<void> {
    this.draining.delete(this.host.peerId)
    await this.notify(STAY_PROTOCOL)
  }

  /** Peers away for less than the failure timeout. */
  suspects (): string[] {
    return [...this.suspect.keys()]
  }

  /**
   * Declare every suspect gone now (`darkfs heal`: the operator says they will not be back),
   * here and at every connected peer (a peer still connected to one of them keeps it).
   */
  async expire (): Promise<string[]> {
    const gone = [...this.suspect.keys()]
    for (const p of gone) this.declareGone(p, false)
    if (gone.length > 0) await this.notify(GONE_PROTOCOL, new TextEncoder().encode(gone.join('\n')))
    return gone
  }

  /** A peer's gone notice: declare those of its ids that are suspects here gone. */
  private async takeGone (stream: Parameters<Parameters<Host['handle']>[1]>[0]): Promise<void> {
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_GONE_NOTICE_BYTES })
      const ids = new TextDecoder().decode((await lp.read({ signal: AbortSignal.timeout(LEAVE_NOTICE_TIMEOUT_MS) })).subarray()).split('\n')
      for (const id of ids) if (this.suspect.has(id)) this.declareGone(id, false)
      await stream.close().catch(() => {})
    } catch (err: any) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** Tell every connected peer that this host leaves (after it drained). */
  async announceLeave (): Promise<void> {
    await this.notify(LEAVE_PROTOCOL)
  }

  /** Open `protocol` to every connected peer with a notice: one byte, or `payload` length-prefixed (best effort). */
  private async notify (protocol: string, payload?: Uint8Array): Promise<void> {
    await Promise.all(this.host.peers().map(async p => {
      try {
        const signal = AbortSignal.timeout(LEAVE_NOTICE_TIMEOUT_MS)
        const stream = await this.host.newStream(p.id, protocol, { signal })
        // protocol selection may be lazy: the peer hears of the stream with its first byte
        if (payload === undefined) stream.send(LEAVE_NOTICE)
        else await lpStream(stream, { maxDataLength: MAX_GONE_NOTICE_BYTES }).write(payload, { signal })
        await stream.close({ signal }).catch(() => {})
      } catch {}
    }))
  }

  private connected (peer: string): void {
    const timer = this.suspect.get(peer)
    if (timer !== undefined) {
      clearTimeout(timer)
      this.suspect.delete(peer)
      return // back before the timeout: it never stopped being a member
    }
    this.left.delete(peer)
    this.draining.delete(peer) // a new connection: whatever it was draining for is over
    this.known.add(peer)
    this.dispatchEvent(new CustomEvent('joined', { detail: peer }))
  }

  private disconnected (peer: string): void {
    if (this.left.has(peer) || this.suspect.has(peer)) return
    if (this.host.peers().some(p => p.id === peer)) return
    const timer = setTimeout(() => { this.declareGone(peer, false) }, this.timeoutMs)
    timer.unref?.()
    this.suspect.set(peer, timer)
  }

  private declareGone (peer: string, leaving: boolean): void {
    const timer = this.suspect.get(peer)
    if (timer !== undefined) clearTimeout(timer)
    const wasMember = this.suspect.delete(peer) || leaving
    if (leaving) this.left.add(peer)
    this.draining.delete(peer)
    this.full.delete(peer)
    this.known.delete(peer)
    if (wasMember) this.dispatchEvent(new CustomEvent('gone', { detail: peer }))
  }
}
