// Uplinks (DESIGN.md §4): how fast each peer can send, so that forwarding work goes to the
// peers with the most of it. A rate is configured (`darkfs up --uplink RATE`, which the host
import type { AbortOptions } from '@libp2p/interface'
import { RpcProtocolError, call, defineProtocol, serve } from './rpc.ts'
import type { RpcDialer, RpcServer } from './rpc.ts'
import { logger } from '../log.ts'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { anySignal } from '../abort.ts'

// tells peers that ask over UPLINK_PROTOCOL) or measured (how fast a relay forwarded a chunk's
// fragments, reported by the relay itself). Also parses the rates the CLI takes.
//
// Wire (an rpc.ts call): null -> { uplink: bytes/s | null }
// tells peers that ask over '/darkfs/uplink/1.0.0') or measured (how fast a relay forwarded a
// chunk's fragments, reported by the relay itself). Also parses the rates the CLI takes.

const log = logger('net:uplink')

/** 2.0.0: rpc.ts's envelope (1.0.0 answered a bare JSON object to an empty stream). */
export const UPLINK_PROTOCOL = '/darkfs/uplink/2.0.0'
/** Largest uplink message (a tiny map; rpc.ts's smallest bound). */
export const MAX_UPLINK_MESSAGE_BYTES = 1024
/** Time to answer an uplink question before giving up on that peer. */
export const UPLINK_QUERY_TIMEOUT_MS = 5_000
/** Weight of a new measurement in the running average of a peer's measured uplink. */
export const MEASURE_WEIGHT = 0.3
/** Fewest bytes a measurement must cover to count (smaller transfers measure latency). */
export const MIN_MEASURED_BYTES = 128 * 1024
/**
 * Share of a configured uplink (`--uplink`) the swarm's data may take when no `--max-upload` is
 * given. Unpaced, a writer fills its socket buffers with seconds of data; pings queue behind
 * it, fail, and the connections (and every transfer on them) are dropped and started again.
 * The rest is headroom for what the data costs on the wire besides itself (TCP/IP and VPN
 * headers, about 7% on Tinc) and for the host's other traffic (pings, gossip, DHT: a few kB/s):
 * at 0.9 a 1 Mbit/s writer's queue still grew for the whole upload, until its peers' pings
 * (5 s) failed and reset the relays' streams.
 */
export const UPLINK_PACING = 0.8

/** The swarm's upload cap: `--max-upload`, else UPLINK_PACING of a configured uplink, else none. */
export function uploadCap (maxUpload: number | undefined, uplink: number | undefined): number | undefined {
  return maxUpload ?? (uplink === undefined ? undefined : uplink * UPLINK_PACING)
}

/** Largest rate accepted anywhere (bytes/s): 100 GB/s. */
export const MAX_RATE_BYTES_PER_SECOND = 100e9

export class BadRateError extends Error {
  override readonly name = 'BadRateError'
}

const UNITS: Record<string, number> = {
  bit: 1 / 8,
  kbit: 1000 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
  b: 1,
  kb: 1000,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 * 1024,
  gib: 1024 * 1024 * 1024
}

/**
 * A rate as the CLI takes it, in bytes per second: `1mbit`, `500kbit` (bits, tc's units:
 * k = 1000), `2MiB`, `300KB`, `1000B` (bytes), a bare number is bytes. A `/s` suffix is allowed.
 */
export function parseRate (text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)(?:\/s)?\s*$/i.exec(text)
  const unit = m?.[2].toLowerCase() === '' ? 'b' : m?.[2].toLowerCase()
  const scale = unit !== undefined ? UNITS[unit] : undefined
  if (m === null || scale === undefined) throw new BadRateError(`bad rate '${text}' (e.g. 1mbit, 500kbit, 2MiB)`)
  const rate = Number(m[1]) * scale
  if (!(rate >= 1) || rate > MAX_RATE_BYTES_PER_SECOND) throw new BadRateError(`rate '${text}' out of range (1 B/s to 100 GB/s)`)
  return rate
}

export interface UplinkEstimate { bytesPerSecond: number, source: 'configured' | 'measured' }

/** What is known of peers' uplinks. Configured rates win over measured ones. */
export class UplinkBook {
  private readonly configured = new Map<string, number>()
  private readonly measured = new Map<string, number>()
  /**
   * Every known uplink (bytes/s; configured wins over measured), kept current as the book
   * learns: the swarm reads it at push time to plan who forwards (SwarmInit.uplink).
   */
  readonly rates = new Map<string, number>()

  private update (peer: string): void {
    const e = this.get(peer)
    if (e === undefined) this.rates.delete(peer)
    else this.rates.set(peer, e.bytesPerSecond)
  }

  /** A peer's own statement of its uplink (bytes/s). Ignored unless a sane number. */
  configure (peer: string, bytesPerSecond: number): void {
    if (Number.isFinite(bytesPerSecond) && bytesPerSecond >= 1 && bytesPerSecond <= MAX_RATE_BYTES_PER_SECOND) {
      this.configured.set(peer, bytesPerSecond)
      this.update(peer)
    }
  }

  /** `bytes` sent by `peer` in `ms`: folded into its running average. */
  observe (peer: string, bytes: number, ms: number): void {
    if (!(bytes >= MIN_MEASURED_BYTES) || !(ms > 0)) return
    const rate = Math.min(MAX_RATE_BYTES_PER_SECOND, bytes / ms * 1000)
    const old = this.measured.get(peer)
    this.measured.set(peer, old === undefined ? rate : old + MEASURE_WEIGHT * (rate - old))
    this.update(peer)
  }

  get (peer: string): UplinkEstimate | undefined {
    const c = this.configured.get(peer)
    if (c !== undefined) return { bytesPerSecond: c, source: 'configured' }
    const m = this.measured.get(peer)
    return m === undefined ? undefined : { bytesPerSecond: m, source: 'measured' }
  }

  forget (peer: string): void {
    this.configured.delete(peer)
    this.measured.delete(peer)
    this.rates.delete(peer)
  }

  /** Every known uplink, for status and the swarm's forwarding plan. */
  snapshot (): Map<string, number> {
    return new Map(this.rates)
  }
}

/** An uplink message that is malformed. */
export class UplinkProtocolError extends RpcProtocolError {
  override readonly name = 'UplinkProtocolError'
}

export const UPLINK = defineProtocol<null, { uplink: number | null }>({
  id: UPLINK_PROTOCOL,
  maxMessageBytes: MAX_UPLINK_MESSAGE_BYTES,
  timeoutMs: UPLINK_QUERY_TIMEOUT_MS,
  malformed: UplinkProtocolError,
  request: (v) => {
    if (v !== null) throw new UplinkProtocolError('an uplink question is null')
    return null
  },
  reply: (v) => {
    const rate = (v as { uplink?: unknown } | null)?.uplink
    if (rate === null || (typeof rate === 'number' && Number.isFinite(rate))) return { uplink: rate }
    throw new UplinkProtocolError('an uplink answer is { uplink: bytes/s | null }')
  }
})

/** What the uplink exchange needs of the host. */
export type UplinkHost = RpcDialer & RpcServer

/**
 * Answers UPLINK_PROTOCOL with this host's configured uplink (bytes/s, or null when not
 * configured). Returns stop().
 */
export async function serveUplink (host: UplinkHost, own: number | undefined): Promise<() => Promise<void>> {
  return await serve(host, UPLINK, { call: async () => ({ uplink: own ?? null }) })
}

/** Asks a peer for its configured uplink and records it; resolves undefined when it has none. */
export async function askUplink (host: UplinkHost, book: UplinkBook, peer: string, opts: AbortOptions = {}): Promise<number | undefined> {
  const { uplink: rate } = await call(host, peer, UPLINK, null, opts)
  if (rate === null) return undefined
  book.configure(peer, rate)
  return book.get(peer)?.source === 'configured' ? rate : undefined
}

/** What startUplinks needs of the host: the exchange plus membership events. */
export interface UplinkMembership extends UplinkHost {
  peers: () => Array<{ id: string }>
  addEventListener: (type: 'peer:connect' | 'peer:disconnect', listener: (evt: CustomEvent<string>) => void) => void
  removeEventListener: (type: 'peer:connect' | 'peer:disconnect', listener: (evt: CustomEvent<string>) => void) => void
}

/**
 * Serve this host's configured uplink (bytes/s, or undefined) and learn every connecting
 * peer's. Returns the book and stop().
 */
export async function startUplinks (host: UplinkMembership, own: number | undefined): Promise<{ book: UplinkBook, stop: () => Promise<void> }> {
  const book = new UplinkBook()
  const shutdown = new AbortController()
  const unserve = await serveUplink(host, own)
  const onConnect = (evt: CustomEvent<string>): void => {
    askUplink(host, book, evt.detail, { signal: shutdown.signal }).catch((err: unknown) => { log('asking %s for its uplink: %e', evt.detail, err) })
  }
  const onDisconnect = (evt: CustomEvent<string>): void => { book.forget(evt.detail) }
  host.addEventListener('peer:connect', onConnect)
  host.addEventListener('peer:disconnect', onDisconnect)
  for (const p of host.peers()) onConnect(new CustomEvent('peer:connect', { detail: p.id }))
  return {
    book,
    stop: async () => {
      shutdown.abort()
      host.removeEventListener('peer:connect', onConnect)
      host.removeEventListener('peer:disconnect', onDisconnect)
      await unserve()
    }
  }
}
