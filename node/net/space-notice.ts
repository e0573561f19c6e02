// Telling the peers that this host is full (issue 8, faults), the way failure.ts tells them it
// drains: a host whose disk is full (space.ts) sends a FULL notice to every connected peer, and
// a ROOM notice once it has room again; a peer that connects is told the current state. Each
// peer's Membership, and this host's own, then leaves a full host out of members() (placement
// and repair plan without it, the same plan everywhere) while it stays live (a source of the
// fragments it holds; the daemon keeps a full host from handing its copies over).
//
// The notices of one host carry an increasing sequence number, so a FULL and a ROOM sent close
// together on two streams cannot be applied in the wrong order. Notice (SPACE_NOTICE_BYTES):
//   state:u8 (1 full, 0 room) seq:u64 big-endian
import { lpStream } from '@libp2p/utils'
import type { Host } from './host.ts'
import type { Membership } from './failure.ts'
import type { Space } from '../data/index.ts'
import { anySignal } from '../abort.ts'

/** Protocol of FULL/ROOM notices. */
export const SPACE_PROTOCOL = '/darkfs/space/1.0.0'
/** The state byte of a notice: the sender's store takes no new blocks. */
export const FULL_NOTICE = 1
/** The state byte of a notice: the sender has room again. */
export const ROOM_NOTICE = 0
/** Size of a notice: state byte and sequence number. */
export const SPACE_NOTICE_BYTES = 9
/** Time to tell one peer. */
export const SPACE_NOTICE_TIMEOUT_MS = 5_000
/** Times a notice to a newly connected peer is retried (it may not handle the protocol yet). */
export const SPACE_NOTICE_RETRIES = 3
/** Wait between those retries. */
export const SPACE_NOTICE_RETRY_MS = 1_000

export class SpaceNoticeError extends Error {
  override readonly name = 'SpaceNoticeError'
}

export interface SpaceNoticeComponents {
  host: Pick<Host, 'peerId' | 'peers' | 'handle' | 'unhandle' | 'newStream' | 'addEventListener' | 'removeEventListener'>
  space: Pick<Space, 'isFull' | 'addEventListener' | 'removeEventListener'>
  membership: Pick<Membership, 'setFull' | 'addEventListener' | 'removeEventListener'>
}

export function encodeNotice (full: boolean, seq: number): Uint8Array {
  const out = new Uint8Array(SPACE_NOTICE_BYTES)
  out[0] = full ? FULL_NOTICE : ROOM_NOTICE
  new DataView(out.buffer).setBigUint64(1, BigInt(seq))
  return out
}

/** Decode a notice; SpaceNoticeError when it is not one. */
export function decodeNotice (bytes: Uint8Array): { full: boolean, seq: number } {
  if (bytes.byteLength !== SPACE_NOTICE_BYTES) throw new SpaceNoticeError(`a space notice is ${SPACE_NOTICE_BYTES} bytes, got ${bytes.byteLength}`)
  if (bytes[0] !== FULL_NOTICE && bytes[0] !== ROOM_NOTICE) throw new SpaceNoticeError(`unknown space notice state ${bytes[0]}`)
  const seq = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(1)
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) throw new SpaceNoticeError('space notice sequence number out of range')
  return { full: bytes[0] === FULL_NOTICE, seq: Number(seq) }
}

/** Sends this host's FULL/ROOM notices and applies the peers' to the membership. */
export class SpaceNotices {
  private readonly c: SpaceNoticeComponents
  /** Sequence number of this host's current state (starts from the clock: a restart goes on above it). */
  private seq = Date.now() * 1000
  /** Highest sequence number applied per peer. */
  private readonly heard = new Map<string, number>()
  private readonly shutdown = new AbortController()
  private started = false
  private readonly onChange = (): void => {
    this.c.membership.setFull(this.c.host.peerId, this.c.space.isFull())
    this.seq++
    const seq = this.seq
    for (const p of this.c.host.peers()) void this.tell(p.id, seq, 0)
  }

  private readonly onConnect = (evt: CustomEvent<string>): void => { void this.tell(evt.detail, this.seq, SPACE_NOTICE_RETRIES) }
  private readonly onGone = (evt: CustomEvent<string>): void => { this.heard.delete(evt.detail) }

  constructor (c: SpaceNoticeComponents) {
    this.c = c
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.c.host.handle(SPACE_PROTOCOL, (stream, peer) => { void this.take(stream, peer) })
    this.c.space.addEventListener('change', this.onChange)
    this.c.host.addEventListener('peer:connect', this.onConnect)
    this.c.membership.addEventListener('gone', this.onGone as EventListener)
    if (this.c.space.isFull()) this.c.membership.setFull(this.c.host.peerId, true)
    // peers that connected before this started
    for (const p of this.c.host.peers()) void this.tell(p.id, this.seq, SPACE_NOTICE_RETRIES)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.shutdown.abort()
    this.c.space.removeEventListener('change', this.onChange)
    this.c.host.removeEventListener('peer:connect', this.onConnect)
    this.c.membership.removeEventListener('gone', this.onGone as EventListener)
    await this.c.host.unhandle(SPACE_PROTOCOL).catch(() => {})
  }

  /** Tell one peer the state of `seq` (best effort; retried while it may not handle the protocol yet). */
  private async tell (peer: string, seq: number, retries: number): Promise<void> {
    for (let attempt = 0; attempt <= retries && this.started && seq === this.seq; attempt++) {
      if (attempt > 0) {
        await new Promise(resolve => setTimeout(resolve, SPACE_NOTICE_RETRY_MS).unref?.())
        if (!this.c.host.peers().some(p => p.id === peer)) return
      }
      try {
        const signal = anySignal([this.shutdown.signal], SPACE_NOTICE_TIMEOUT_MS)
        const stream = await this.c.host.newStream(peer, SPACE_PROTOCOL, { signal })
        try {
          await lpStream(stream, { maxDataLength: SPACE_NOTICE_BYTES }).write(encodeNotice(this.c.space.isFull(), seq), { signal })
          await stream.close({ signal }).catch(() => {})
          return
        } catch (err: any) {
          stream.abort(err instanceof Error ? err : new Error(String(err)))
        }
      } catch {}
    }
  }

  /** A peer's notice: apply it unless a later one of that peer's was applied already. */
  private async take (stream: Parameters<Parameters<Host['handle']>[1]>[0], peer: string): Promise<void> {
    try {
      const lp = lpStream(stream, { maxDataLength: SPACE_NOTICE_BYTES })
      const { full, seq } = decodeNotice((await lp.read({ signal: AbortSignal.timeout(SPACE_NOTICE_TIMEOUT_MS) })).subarray())
      if (seq >= (this.heard.get(peer) ?? 0)) {
        this.heard.set(peer, seq)
        this.c.membership.setFull(peer, full)
      }
      await stream.close().catch(() => {})
    } catch (err: any) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}
