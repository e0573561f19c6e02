// Hostile input for the fault tests (test/faults): byte generators for fuzzing the decoders of
// network input (fast-check arbitraries), and a rogue host — a raw libp2p node that holds the
// network key and speaks darkfs's protocols by hand, badly.
import fc from 'fast-check'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { Libp2p, Stream } from '@libp2p/interface'
import { formatNetworkKey } from '../../node/net/index.ts'
import type { Teardown } from '../../harness/tmp.ts'

// --- fuzz inputs ------------------------------------------------------------------------------

/** Bytes that mean "a very long thing follows" in the formats we decode. */
const HUGE_HEADERS: Uint8Array[] = [
  Uint8Array.of(0xff, 0xff, 0xff, 0x7f), // uvarint 2^28 - 1
  Uint8Array.of(0x81, 0x80, 0x80, 0x40), // uvarint just over MAX_MESSAGE_BYTES territory
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), // a uvarint longer than any bound
  Uint8Array.of(0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), // cbor byte string of 2^64 - 1 bytes
  Uint8Array.of(0x7b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00), // cbor text of 2^32 bytes
  Uint8Array.of(0x9b, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff), // cbor array of 2^32 - 1 items
  Uint8Array.of(0xbb, 0x00, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff), // cbor map of 2^31 - 1 pairs
  Uint8Array.of(0x9f, 0x9f, 0x9f, 0x9f), // indefinite-length arrays (not dag-cbor)
  Uint8Array.of(0xd8, 0x2a, 0x58, 0x25, 0x00), // tag 42 (CID) with a short payload
  Uint8Array.of(0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff) // cbor uint 2^64 - 1
]

type Mutation = (b: Uint8Array) => Uint8Array

/** One edit of a byte string: flip, set, insert, delete, duplicate, or a huge length header. */
function mutation (): fc.Arbitrary<Mutation> {
  const at = fc.nat()
  return fc.oneof(
    fc.tuple(at, fc.integer({ min: 1, max: 255 })).map(([i, x]) => (b: Uint8Array) => {
      if (b.byteLength === 0) return b
      const out = new Uint8Array(b); out[i % b.byteLength] ^= x; return out
    }),
    fc.tuple(at, fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff, 0x18, 0x19, 0x1a, 0x1b, 0x9f, 0xbf, 0xf6, 0xf7, 0xd8)).map(([i, x]) => (b: Uint8Array) => {
      if (b.byteLength === 0) return b
      const out = new Uint8Array(b); out[i % b.byteLength] = x; return out
    }),
    fc.tuple(at, fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([i, ins]) => (b: Uint8Array) => splice(b, i % (b.byteLength + 1), 0, ins)),
    fc.tuple(at, fc.integer({ min: 1, max: 64 })).map(([i, n]) => (b: Uint8Array) => splice(b, i % (b.byteLength + 1), n, new Uint8Array(0))),
    fc.tuple(at, fc.integer({ min: 1, max: 64 })).map(([i, n]) => (b: Uint8Array) => {
      const start = i % (b.byteLength + 1)
      return splice(b, start, 0, b.subarray(start, start + n))
    }),
    fc.tuple(at, fc.constantFrom(...HUGE_HEADERS)).map(([i, h]) => (b: Uint8Array) => splice(b, i % (b.byteLength + 1), 0, h)),
    fc.tuple(at, fc.constantFrom(...HUGE_HEADERS)).map(([i, h]) => (b: Uint8Array) => splice(b, i % (b.byteLength + 1), h.byteLength, h))
  )
}

function splice (b: Uint8Array, start: number, remove: number, insert: Uint8Array): Uint8Array {
  const end = Math.min(b.byteLength, start + remove)
  const out = new Uint8Array(start + insert.byteLength + b.byteLength - end)
  out.set(b.subarray(0, start), 0)
  out.set(insert, start)
  out.set(b.subarray(end), start + insert.byteLength)
  return out
}

/** A dag-cbor value of any shape (no floats: dag-cbor has strict rules for them). */
export function cborValue (cids: CID[]): fc.Arbitrary<unknown> {
  const { value } = fc.letrec<{ value: unknown }>(tie => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }),
      fc.string({ maxLength: 40 }),
      fc.constantFrom('push', 'ops', 'heads', 'get', 'create', 'write', 'move', 'file', 'dir', 'inline', 'manifest', 'leave', 'drain', 'stay', 'gone', 'got', 'ack', 'done', 'RpcProtocolError'),
      fc.uint8Array({ maxLength: 64 }),
      fc.constantFrom(...cids),
      fc.array(tie('value'), { maxLength: 6 }),
      fc.dictionary(fc.constantFrom('t', 'v', 'ops', 'heads', 'want', 'have', 'body', 'type', 'size', 'chunks', 'k', 'm', 'cid', 'peers', 'id', 'addrs', 'x', 'call', 'notice', 'ok', 'next', 'error', 'name', 'message', 'ids', 'full', 'seq', 'uplink', 'chunk', 'fragments', 'targets', 'pinners', 'n', 'i', 'holder'), tie('value'), { maxKeys: 6 })
    )
  }))
  return value
}

/** Replace, drop or add one field somewhere inside a decoded value. */
function structuralEdit (value: unknown, path: number[], replacement: unknown, kind: number): unknown {
  if (path.length === 0 || value === null || typeof value !== 'object' || value instanceof Uint8Array || CID.asCID(value) !== null) return replacement
  if (Array.isArray(value)) {
    if (value.length === 0) return kind === 0 ? [replacement] : value
    const i = path[0] % value.length
    const out = value.slice()
    if (path.length === 1 && kind === 1) out.splice(i, 1)
    else if (path.length === 1 && kind === 2) out.splice(i, 0, replacement)
    else out[i] = structuralEdit(value[i], path.slice(1), replacement, kind)
    return out
  }
  const keys = Object.keys(value)
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) }
  if (keys.length === 0 || (path.length === 1 && kind === 2)) { out[`k${path[0] % 7}`] = replacement; return out }
  const k = keys[path[0] % keys.length]
  if (path.length === 1 && kind === 1) delete out[k]
  else out[k] = structuralEdit(out[k], path.slice(1), replacement, kind)
  return out
}

export interface FuzzInputOptions {
  /** Valid encodings to mutate and truncate. */
  seeds: Uint8Array[]
  /** The seeds are dag-cbor: also decode, edit a field, re-encode. */
  cbor?: boolean
  /** CIDs to use inside random dag-cbor values. */
  cids?: CID[]
  /** Longest random byte string. */
  maxRandomBytes?: number
  /** A few oversized inputs (built once) mixed in rarely. */
  oversized?: Uint8Array[]
}

/**
 * Hostile inputs for one decoder: random bytes, valid encodings with edits, truncations,
 * huge length headers, random dag-cbor values, structurally edited valid values, and oversized
 * inputs.
 */
export function fuzzInput (opts: FuzzInputOptions): fc.Arbitrary<Uint8Array> {
  // copies: a Buffer's slice() is a view, and no input may write into a seed
  const seed = fc.constantFrom(...opts.seeds.map(s => new Uint8Array(s)))
  const arbs: Array<fc.Arbitrary<Uint8Array>> = [
    fc.uint8Array({ maxLength: opts.maxRandomBytes ?? 256 }),
    fc.tuple(seed, fc.array(mutation(), { minLength: 1, maxLength: 4 })).map(([b, ms]) => ms.reduce<Uint8Array>((acc, m) => m(acc), b)),
    fc.tuple(seed, fc.nat()).map(([b, n]) => b.subarray(0, n % (b.byteLength + 1))),
    fc.tuple(seed, fc.nat(), fc.array(mutation(), { maxLength: 2 })).map(([b, n, ms]) => ms.reduce<Uint8Array>((acc, m) => m(acc), b.subarray(0, n % (b.byteLength + 1))))
  ]
  if (opts.cbor === true) {
    const cids = opts.cids ?? []
    arbs.push(cborValue(cids).map(v => encodeOr(v)))
    const decoded = opts.seeds.map(s => dagCbor.decode(s))
    arbs.push(fc.tuple(fc.constantFrom(...decoded), fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), cborValue(cids), fc.integer({ min: 0, max: 2 }))
      .map(([v, path, r, kind]) => encodeOr(structuralEdit(v, path, r, kind))))
  }
  const weighted = arbs.map(arbitrary => ({ arbitrary, weight: 10 }))
  if (opts.oversized !== undefined && opts.oversized.length > 0) weighted.push({ arbitrary: fc.constantFrom(...opts.oversized), weight: 1 })
  return fc.oneof(...weighted)
}

function encodeOr (v: unknown): Uint8Array {
  try {
    return dagCbor.encode(v)
  } catch {
    return new TextEncoder().encode(String(v))
  }
}

/**
 * Run `decode` on `runs` hostile inputs: it must return or throw one of `allowed`, never
 * anything else. Returns counts and the slowest single input (ms), for the report.
 */
export async function fuzzDecoder (name: string, decode: (b: Uint8Array) => unknown, allowed: Array<new (...args: any[]) => Error>, input: fc.Arbitrary<Uint8Array>, runs: number, seed?: number): Promise<{ accepted: number, rejected: number, slowestMs: number }> {
  let accepted = 0
  let rejected = 0
  let slowestMs = 0
  await fc.assert(fc.asyncProperty(input, async (bytes) => {
    const start = performance.now()
    try {
      await decode(bytes)
      accepted++
    } catch (err) {
      if (!allowed.some(C => err instanceof C)) {
        throw new Error(`${name}: undocumented ${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`)
      }
      rejected++
    } finally {
      slowestMs = Math.max(slowestMs, performance.now() - start)
    }
  }), { numRuns: runs, seed, endOnFailure: true })
  return { accepted, rejected, slowestMs }
}

// --- the rogue host ---------------------------------------------------------------------------

export interface Rogue {
  readonly libp2p: Libp2p
  readonly id: string
  /** Dial a host by its full multiaddr (with /p2p/<id>). */
  connect: (addr: string) => Promise<void>
  /** Open a stream for `protocol` to a connected host. */
  stream: (peer: string, protocol: string) => Promise<Stream>
  /** True while the rogue holds an open connection to `peer`. */
  connected: (peer: string) => boolean
  stop: () => Promise<void>
}

/**
 * A raw libp2p node on loopback TCP: pnet with `networkKey` (none: a plain node), Noise and
 * yamux, and nothing else — no identify, no DHT, no darkfs handlers. Tests speak the darkfs
 * protocols over its streams by hand. Stopped at teardown.
 */
export async function rogueHost (t: Teardown, opts: { networkKey?: Uint8Array } = {}): Promise<Rogue> {
  const libp2p = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    ...(opts.networkKey !== undefined ? { connectionProtector: preSharedKey({ psk: new TextEncoder().encode(formatNetworkKey(opts.networkKey)) }) } : {}),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { dialTimeout: 3000, reconnectRetries: 0 }
  })
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await libp2p.stop()
  }
  t.add(stop)
  return {
    libp2p,
    id: libp2p.peerId.toString(),
    connect: async (addr) => { await libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(5000) }) },
    stream: async (peer, protocol) => await libp2p.dialProtocol(peerIdFromString(peer), protocol, { signal: AbortSignal.timeout(5000), runOnLimitedConnection: true }),
    connected: (peer) => libp2p.getConnections(peerIdFromString(peer)).some(c => c.status === 'open'),
    stop
  }
}

/** How a stream ended: closed or reset by the remote, or still open when we stopped waiting. */
export type StreamEnd = 'closed' | 'open'

/**
 * Send `frames` (waiting on backpressure), then wait until the remote ends the stream or
 * `waitMs` passes (closeWrite: end our side first, as a peer that is done). Sending stops early when the stream goes away. Returns the bytes that went
 * out and how it ended.
 */
export async function sendAll (stream: Stream, frames: Iterable<Uint8Array>, opts: { waitMs?: number, closeWrite?: boolean } = {}): Promise<{ sent: number, end: StreamEnd }> {
  const gone = new Promise<void>(resolve => {
    if (stream.status !== 'open') { resolve(); return }
    stream.addEventListener('close', () => { resolve() }, { once: true })
  })
  let sent = 0
  for (const f of frames) {
    if (stream.status !== 'open' || stream.writeStatus !== 'writable') break
    try {
      if (!stream.send(f)) await Promise.race([new Promise<void>(resolve => { stream.addEventListener('drain', () => { resolve() }, { once: true }) }), gone])
    } catch {
      break
    }
    sent += f.byteLength
  }
  if (opts.closeWrite === true && stream.writeStatus === 'writable') await stream.close({ signal: AbortSignal.timeout(opts.waitMs ?? 10_000) }).catch(() => {})
  const timer = new Promise<'open'>(resolve => { setTimeout(() => { resolve('open') }, opts.waitMs ?? 10_000).unref() })
  const end = await Promise.race([gone.then(() => 'closed' as const), timer])
  if (end === 'open') stream.abort(new Error('rogue gives up'))
  return { sent, end }
}

/** A length-prefixed frame (unsigned varint length, as it-length-prefixed and the swarm use). */
export function lp (body: Uint8Array, declared = body.byteLength): Uint8Array {
  const head: number[] = []
  let n = declared
  while (n >= 0x80) { head.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  head.push(n)
  const out = new Uint8Array(head.length + body.byteLength)
  out.set(head, 0)
  out.set(body, head.length)
  return out
}
