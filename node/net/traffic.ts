// Traffic per protocol (DESIGN.md §4): what this host sends, split by libp2p protocol, so the
// data a thin uplink carries can be told apart from the DHT, identify, ping, tree sync and the
// other control protocols. A libp2p `metrics` component: libp2p hands it every connection it
// upgrades and every protocol stream it opens or accepts.
//
// Only bytes sent are counted. Counting bytes received would need a 'message' listener on each
// stream, and a stream with a listener delivers what arrives at once instead of keeping it for
// the reader that has not attached yet: the count would take data from the protocol.
//
// The per-protocol counts are what the protocol wrote (before yamux framing and Noise); `wire`
// is what went into the TCP socket (pnet, Noise, yamux and stream negotiation included).
// TCP/IP and VPN headers come on top of that and are not seen here.
import type { Metrics, MultiaddrConnection, Stream } from '@libp2p/interface'

export interface TrafficSnapshot {
  /** Bytes written into TCP sockets: every protocol, with its framing and encryption. */
  wire: { sent: number }
  /** Bytes each protocol wrote on its streams (payload before yamux and Noise). */
  protocols: Record<string, { sent: number, streams: number }>
  /**
   * Connections this host opened to peers it had none with, by what asked for them (dialCause():
   * the darkfs file, or the libp2p service, whose call opened it): what keeps a bounded host
   * dialling on an idle network.
   */
  dials: Record<string, number>
  /**
   * Those of `dials` that failed (refused, timed out, reset in the handshake), by the same
   * causes: a bounded host that dials and fails is not told apart from one whose peer trims
   * it by the connection counts alone.
   */
  dialFailures: Record<string, number>
}

export interface TrafficMeter {
  /** The libp2p `metrics` option. */
  metrics: () => Metrics
  snapshot: () => TrafficSnapshot
  /** Count a connection opened to a peer this host had none with (host.ts), by cause. */
  dialed: (cause: string) => void
  /** Count one of those dials that failed. */
  dialFailed: (cause: string) => void
  /**
   * When a protocol stream last moved data either way (ms since the epoch; undefined for a
   * stream the meter never saw): a stream opened long ago may carry a transfer now (the swarm
   * keeps one stream per peer for good), which its opening time does not tell (host.ts trim).
   */
  activeAt: (stream: Stream) => number | undefined
}

/**
 * What asked for a new connection, from the stack of the call that opens it (taken only when a
 * connection is opened, not per stream): the first darkfs source file outside net/host.ts and
 * rpc.ts (their callers are what asks) and past cli/daemon.ts's adapters, else the libp2p package
 * (kad-dht, gossipsub), else 'other'.
 */
export function dialCause (stack: string | undefined): string {
  const frames = (stack ?? '').split('\n').slice(1)
  let pkg: string | undefined
  let adapter: string | undefined
  for (const f of frames) {
    const m = /node_modules\/(@[^/]+\/[^/]+|[^/@][^/]*)\//.exec(f)
    if (m !== null) { pkg ??= m[1] === 'libp2p' ? undefined : m[1]; continue }
    const own = /\/((?:node|swarm)\/[\w/.-]+\.ts)/.exec(f)
    if (own === null || /net\/(host|rpc|traffic)\.ts$/.test(own[1])) continue
    // the daemon wires the parts to the host (the swarm's dialProtocol, the membership's probe):
    // the part that called through it is the cause, when the stack still shows it
    if (own[1] === 'node/cli/daemon.ts') { adapter ??= own[1]; continue }
    return own[1]
  }
  return adapter ?? pkg ?? 'other'
}

/** A stand-in for the metrics libp2p components register (gauges, counters, histograms): none are kept. */
const ignored: any = new Proxy(function () {}, {
  get: (_t, key) => key === 'then' || typeof key === 'symbol' ? undefined : ignored,
  apply: () => ignored
})

type Sender = { send: (data: any) => boolean }
/** The muxer's hook for data that arrived on a stream (@libp2p/utils AbstractMessageStream.onData, which yamux calls on the stream). */
type Receiver = { onData?: (data: any) => void }

/** Marks a send() that counts already (libp2p may hand the same object over twice). */
const COUNTED = Symbol('darkfs.traffic.counted')

/** Make `target.onData` call `seen` first (once per object; a stream without the hook is left alone). */
function watchData (target: Receiver, seen: () => void): void {
  const onData = target.onData
  if (typeof onData !== 'function' || (onData as any)[COUNTED] === true) return
  const watched = function (this: unknown, data: unknown): void {
    seen()
    onData.call(target, data)
  }
  ;(watched as any)[COUNTED] = true
  target.onData = watched
}

/** Make `target.send` count what it is given into `count` (once per object). */
function countSends (target: Sender, count: (n: number) => void): void {
  const send = target.send
  if (typeof send !== 'function' || (send as any)[COUNTED] === true) return
  const counted = function (this: unknown, data: { byteLength: number }): boolean {
    count(data.byteLength)
    return send.call(target, data)
  }
  ;(counted as any)[COUNTED] = true
  target.send = counted
}

export function createTrafficMeter (): TrafficMeter {
  const wire = { sent: 0 }
  const protocols = new Map<string, { sent: number, streams: number }>()
  const dials = new Map<string, number>()
  const dialFailures = new Map<string, number>()
  const active = new WeakMap<Stream, number>()
  const metrics: Metrics = {
    trackMultiaddrConnection: (maConn: MultiaddrConnection) => {
      countSends(maConn as unknown as Sender, n => { wire.sent += n })
    },
    trackProtocolStream: (stream: Stream) => {
      const protocol = stream.protocol ?? 'unknown'
      let rec = protocols.get(protocol)
      if (rec === undefined) protocols.set(protocol, rec = { sent: 0, streams: 0 })
      rec.streams++
      const r = rec
      active.set(stream, Date.now())
      countSends(stream as unknown as Sender, n => { r.sent += n; active.set(stream, Date.now()) })
      watchData(stream as unknown as Receiver, () => { active.set(stream, Date.now()) })
    },
    registerMetric: (() => ignored) as any,
    registerMetricGroup: (() => ignored) as any,
    registerCounter: (() => ignored) as any,
    registerCounterGroup: (() => ignored) as any,
    registerHistogram: (() => ignored) as any,
    registerHistogramGroup: (() => ignored) as any,
    registerSummary: (() => ignored) as any,
    registerSummaryGroup: (() => ignored) as any,
    traceFunction: ((_name: string, fn: any) => fn) as any,
    createTrace: () => undefined
  }
  return {
    metrics: () => metrics,
    snapshot: () => ({
      wire: { ...wire },
      protocols: Object.fromEntries([...protocols].map(([p, r]) => [p, { ...r }])),
      dials: Object.fromEntries(dials),
      dialFailures: Object.fromEntries(dialFailures)
    }),
    dialed: cause => { dials.set(cause, (dials.get(cause) ?? 0) + 1) },
    dialFailed: cause => { dialFailures.set(cause, (dialFailures.get(cause) ?? 0) + 1) },
    activeAt: stream => active.get(stream)
  }
}
