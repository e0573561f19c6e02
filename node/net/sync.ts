// Metadata replication over the host (DESIGN.md §5): protocol '/darkfs/ops/1.0.0'.
//
//  - Gossip: every op this host commits is pushed at once to every connected peer; a host that
//    receives an op it did not have forwards it to its other peers, so ops reach peers that are
//    not directly connected. Each host forwards an op at most once (the tree's 'op' event fires
//    once per new op), never back to the peer it came from.
//  - Reconcile: on every (re)connection each side asks the other for its heads and fetches what
//    it misses, walking parents in bounded batches (the responder sends the wanted ops plus
//    their ancestors, breadth first, stopping at the asker's heads), until nothing is missing.
//
// Wire: one request per stream, each message length-prefixed dag-cbor, bounded in bytes and
// in ops:
//   { t: 'push', ops: [block...] }                     (no answer)
//   { t: 'heads' }                 -> { t: 'heads', heads: [CID...] }
//   { t: 'get', want: [CID...], have: [CID...] } -> { t: 'ops', ops: [block...] }
// A malformed message or an op the tree rejects aborts that stream with an error; nothing
// already stored is touched (the tree verifies every op before it stores any of a batch).
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { lpStream } from '@libp2p/utils'
import type { AbortOptions } from '@libp2p/interface'
import type { Host, Stream } from './host.ts'
import { MAX_OP_BYTES } from '../tree/index.ts'
import type { OpEventDetail, Tree } from '../tree/index.ts'
import { anySignal } from '../abort.ts'

export const OPS_PROTOCOL = '/darkfs/ops/1.0.0'
/** Default most ops per message (push or get answer). */
export const DEFAULT_MAX_BATCH = 256
/** Largest message: a full batch of the largest ops fits. */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024
/** Most op blocks accepted in one message from a peer (whatever its own maxBatch). */
export const MAX_OPS_PER_MESSAGE = 4096
/** Most CIDs in a heads answer or a get request's want/have lists. */
export const MAX_CIDS = 1024
/** Most get rounds in one reconciliation (each fetches up to maxBatch ops). */
export const MAX_RECONCILE_ROUNDS = 4096
/** Time for one request/answer exchange. */
export const REQUEST_TIMEOUT_MS = 10_000
/** Concurrent inbound ops streams per connection. */
export const MAX_INBOUND_STREAMS = 16
/** Most ops waiting to be pushed to one peer; beyond it the peer catches up by reconciling. */
export const MAX_OUTBOX_OPS = 10_000
/** Most op ids remembered as "came from peer X" (so they are not echoed back). */
const MAX_ORIGINS = 10_000

/** The part of the Tree sync uses (node/tree/index.ts); its 'op' event carries OpEventDetail. */
export type SyncTree = Pick<Tree, 'heads' | 'hasOp' | 'getOp' | 'receive' | 'addEventListener' | 'removeEventListener'>

/** The part of the Host sync uses. */
export type SyncHost = Pick<Host, 'peerId' | 'peers' | 'handle' | 'unhandle' | 'newStream' | 'addEventListener' | 'removeEventListener'>

export interface SyncInit {
  /** Most ops per message. Default DEFAULT_MAX_BATCH. */
  maxBatch?: number
  /** Time for one request/answer. Default REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number
}

export interface SyncComponents { host: SyncHost, tree: SyncTree }

export interface SyncStats { pushedOps: number, receivedOps: number, reconciles: number, badMessages: number }

export interface Sync {
  start: () => Promise<void>
  /** Stop serving and gossiping. Idempotent. */
  stop: () => Promise<void>
  /**
   * Reconcile with `peer` now: fetch its heads and everything this host misses of them.
   * Resolves once done (concurrent calls for one peer share the run).
   */
  synced: (peer: string, opts?: AbortOptions) => Promise<void>
  stats: () => SyncStats
}

/** A message on '/darkfs/ops/1.0.0' that is malformed or breaks a bound. */
export class SyncProtocolError extends Error {
  static override readonly name = 'SyncProtocolError'
  override readonly name = 'SyncProtocolError'
}

type Message =
  | { t: 'push', ops: Uint8Array[] }
  | { t: 'heads', heads?: CID[] }
  | { t: 'get', want: CID[], have: CID[] }
  | { t: 'ops', ops: Uint8Array[] }

export function createSync (init: SyncInit = {}): (components: SyncComponents) => Sync {
  const maxBatch = Math.min(init.maxBatch ?? DEFAULT_MAX_BATCH, MAX_OPS_PER_MESSAGE)
  const requestTimeoutMs = init.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError(`createSync: maxBatch must be an integer >= 1, got ${String(maxBatch)}`)

  return ({ host, tree }) => {
    let running = false
    const shutdown = new AbortController()
    const stats: SyncStats = { pushedOps: 0, receivedOps: 0, reconciles: 0, badMessages: 0 }
    const reconciling = new Map<string, Promise<void>>()
    /** op id -> the peer it came from (not echoed back there). */
    const origins = new Map<string, string>()
    const outboxes = new Map<string, Uint8Array[]>()
    const flushing = new Set<string>()

    // --- requests (this side asks) --------------------------------------------------------
    const request = async (peer: string, msg: Message, opts?: AbortOptions): Promise<Message | undefined> => {
      const signal = anySignal([shutdown.signal, opts?.signal], requestTimeoutMs)
      const stream = await host.newStream(peer, OPS_PROTOCOL, { signal })
      try {
        const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
        await lp.write(encode(msg), { signal })
        if (msg.t === 'push') {
          await stream.close({ signal })
          return undefined
        }
        const reply = decode((await lp.read({ signal })).subarray())
        await stream.close({ signal }).catch(() => {})
        return reply
      } catch (err: any) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        if (err instanceof SyncProtocolError) stats.badMessages++
        throw err
      }
    }

    /** Fetch `want` (and their missing ancestors) from peer into the tree. */
    const fetchFrom = async (peer: string, want: CID[], opts?: AbortOptions): Promise<void> => {
      let wanted = uniq(want.filter(c => !tree.hasOp(c)))
      for (let round = 0; wanted.length > 0 && round < MAX_RECONCILE_ROUNDS && running; round++) {
        const reply = await request(peer, { t: 'get', want: wanted.slice(0, MAX_CIDS), have: tree.heads().slice(0, MAX_CIDS) }, opts)
        if (reply?.t !== 'ops') throw new SyncProtocolError(`expected ops, got ${reply?.t ?? 'nothing'}`)
        const fresh = await freshOps(reply.ops)
        if (fresh.length === 0) return // the peer has none of what is wanted
        for (const { id } of fresh) remember(id, peer)
        const result = await tree.receive(fresh.map(f => f.bytes))
        stats.receivedOps += result.applied
        const next = uniq(result.missing.filter(c => !tree.hasOp(c)))
        if (result.applied === 0 && sameCids(next, wanted)) return // no progress
        wanted = next
      }
    }

    const reconcile = async (peer: string, opts?: AbortOptions): Promise<void> => {
      const reply = await request(peer, { t: 'heads' }, opts)
      if (reply?.t !== 'heads' || reply.heads === undefined) throw new SyncProtocolError(`expected heads, got ${reply?.t ?? 'nothing'}`)
      await fetchFrom(peer, reply.heads, opts)
      stats.reconciles++
    }

    /** Runs per peer: the one in flight, and at most one queued behind it. */
    const queued = new Map<string, Promise<void>>()
    const synced = async (peer: string, opts?: AbortOptions): Promise<void> => {
      const inFlight = reconciling.get(peer)
      if (inFlight === undefined) {
        const run = reconcile(peer, opts).finally(() => { reconciling.delete(peer) })
        reconciling.set(peer, run)
        return await run
      }
      // the run in flight may have read the peer's heads before this call: queue a fresh one
      let next = queued.get(peer)
      if (next === undefined) {
        next = inFlight.catch(() => {}).then(async () => {
          queued.delete(peer)
          await synced(peer, opts)
        })
        queued.set(peer, next)
      }
      return await next
    }

    // --- answers (the other side asks) -----------------------------------------------------
    const serve = async (stream: Stream, peer: string): Promise<void> => {
      const signal = anySignal([shutdown.signal], requestTimeoutMs)
      try {
        const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
        const msg = decode((await lp.read({ signal })).subarray())
        if (msg.t === 'heads') {
          await lp.write(encode({ t: 'heads', heads: tree.heads().slice(0, MAX_CIDS) }), { signal })
          await stream.close({ signal }).catch(() => {})
        } else if (msg.t === 'get') {
          await lp.write(encode({ t: 'ops', ops: collect(msg.want, msg.have) }), { signal })
          await stream.close({ signal }).catch(() => {})
        } else if (msg.t === 'push') {
          await stream.close({ signal }).catch(() => {})
          await takePush(peer, msg.ops)
        } else {
          throw new SyncProtocolError(`unexpected ${msg.t} request`)
        }
      } catch (err: any) {
        if (err?.name === 'SyncProtocolError' || err?.name === 'InvalidOpError') stats.badMessages++
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
    }

    /** The wanted ops this host has, then their ancestors breadth first, stopping at `have`. */
    const collect = (want: CID[], have: CID[]): Uint8Array[] => {
      const stop = new Set(have.map(c => c.toString()))
      const seen = new Set<string>()
      const queue = [...want]
      const out: Uint8Array[] = []
      let bytes = 0
      while (queue.length > 0 && out.length < maxBatch) {
        const cid = queue.shift() as CID
        const id = cid.toString()
        if (seen.has(id)) continue
        seen.add(id)
        const block = tree.getOp(cid)
        if (block === undefined) continue
        if (bytes + block.byteLength > MAX_MESSAGE_BYTES - 1024) break
        out.push(block)
        bytes += block.byteLength
        for (const p of parentsOf(block)) {
          if (!stop.has(p.toString())) queue.push(p)
        }
      }
      return out
    }

    const takePush = async (peer: string, ops: Uint8Array[]): Promise<void> => {
      const fresh = await freshOps(ops)
      if (fresh.length === 0) return
      for (const { id } of fresh) remember(id, peer)
      const result = await tree.receive(fresh.map(f => f.bytes))
      stats.receivedOps += result.applied
      // parents the push did not bring: fetch them from the pusher
      if (result.missing.length > 0) await fetchFrom(peer, result.missing).catch(() => {})
    }

    const freshOps = async (ops: Uint8Array[]): Promise<Array<{ id: string, bytes: Uint8Array }>> => {
      const out: Array<{ id: string, bytes: Uint8Array }> = []
      const seen = new Set<string>()
      for (const bytes of ops) {
        const cid = CID.createV1(dagCbor.code, await sha256.digest(bytes))
        const id = cid.toString()
        if (seen.has(id) || tree.hasOp(cid)) continue
        seen.add(id)
        out.push({ id, bytes })
      }
      return out
    }

    const remember = (id: string, peer: string): void => {
      origins.set(id, peer)
      if (origins.size > MAX_ORIGINS) origins.delete(origins.keys().next().value as string)
    }

    // --- gossip -------------------------------------------------------------------------------
    const onOp = (evt: CustomEvent<OpEventDetail>): void => {
      if (!running) return
      const id = evt.detail.cid.toString()
      const bytes = tree.getOp(evt.detail.cid)
      const from = origins.get(id)
      origins.delete(id)
      if (bytes === undefined) return
      for (const { id: peer } of host.peers()) {
        if (peer === from) continue
        let box = outboxes.get(peer)
        if (box === undefined) outboxes.set(peer, box = [])
        if (box.length < MAX_OUTBOX_OPS) box.push(bytes)
        void flush(peer)
      }
    }

    /** Push a peer's outbox in batches, one push at a time per peer (keeps op order). */
    const flush = async (peer: string): Promise<void> => {
      if (flushing.has(peer)) return
      flushing.add(peer)
      try {
        await Promise.resolve() // let ops committed together go in one batch
        for (let box = outboxes.get(peer); box !== undefined && box.length > 0 && running; box = outboxes.get(peer)) {
          const batch: Uint8Array[] = []
          let bytes = 0
          while (box.length > 0 && batch.length < maxBatch && bytes + box[0].byteLength <= MAX_MESSAGE_BYTES - 1024) {
            const op = box.shift() as Uint8Array
            batch.push(op)
            bytes += op.byteLength
          }
          try {
            await request(peer, { t: 'push', ops: batch })
            stats.pushedOps += batch.length
          } catch {
            // gone or failing: it reconciles when it reconnects
            outboxes.delete(peer)
          }
        }
      } finally {
        flushing.delete(peer)
        if (outboxes.get(peer)?.length === 0) outboxes.delete(peer)
      }
    }

    const onConnect = (evt: CustomEvent<string>): void => {
      if (!running) return
      void synced(evt.detail).catch(() => {
        // the peer went away or misbehaved: the next connection tries again
      })
    }

    return {
      start: async () => {
        if (running) return
        running = true
        await host.handle(OPS_PROTOCOL, serve, { maxInboundStreams: MAX_INBOUND_STREAMS, maxOutboundStreams: MAX_INBOUND_STREAMS })
        tree.addEventListener('op', onOp as EventListener)
        host.addEventListener('peer:connect', onConnect)
        for (const { id } of host.peers()) void synced(id).catch(() => {})
      },
      stop: async () => {
        if (!running) return
        running = false
        shutdown.abort()
        tree.removeEventListener('op', onOp as EventListener)
        host.removeEventListener('peer:connect', onConnect)
        outboxes.clear()
        await host.unhandle(OPS_PROTOCOL).catch(() => {})
        await Promise.allSettled([...reconciling.values()])
      },
      synced,
      stats: () => ({ ...stats })
    }
  }
}

// --- messages ----------------------------------------------------------------------------------

/** Exported for the fuzz tests (test/faults). */
export { encode as encodeSyncMessage, decode as decodeSyncMessage }

function encode (msg: Message): Uint8Array {
  return dagCbor.encode(msg)
}

/** Decode and validate one message; SyncProtocolError on anything malformed or over a bound. */
function decode (bytes: Uint8Array): Message {
  let msg: any
  try {
    msg = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new SyncProtocolError(`undecodable message: ${err?.message ?? String(err)}`)
  }
  if (msg === null || typeof msg !== 'object') throw new SyncProtocolError('message is not a map')
  switch (msg.t) {
    case 'push':
    case 'ops':
      return { t: msg.t, ops: blocks(msg.ops) }
    case 'heads':
      return msg.heads === undefined ? { t: 'heads' } : { t: 'heads', heads: cids(msg.heads) }
    case 'get':
      return { t: 'get', want: cids(msg.want), have: cids(msg.have) }
    default:
      throw new SyncProtocolError(`unknown message type ${JSON.stringify(String(msg.t)).slice(0, 40)}`)
  }
}

function blocks (x: unknown): Uint8Array[] {
  if (!Array.isArray(x) || x.length > MAX_OPS_PER_MESSAGE) throw new SyncProtocolError(`ops must be a list of at most ${MAX_OPS_PER_MESSAGE} blocks`)
  for (const b of x) {
    if (!(b instanceof Uint8Array) || b.byteLength === 0 || b.byteLength > MAX_OP_BYTES) throw new SyncProtocolError(`an op block must be 1..${MAX_OP_BYTES} bytes`)
  }
  return x
}

function cids (x: unknown): CID[] {
  if (!Array.isArray(x) || x.length > MAX_CIDS) throw new SyncProtocolError(`expected a list of at most ${MAX_CIDS} CIDs`)
  for (const c of x) {
    if (CID.asCID(c) === null) throw new SyncProtocolError('expected a CID')
  }
  return x.map(c => CID.asCID(c) as CID)
}


/** An op block's parents (dag-cbor field `parents`); none if it does not decode. */
function parentsOf (block: Uint8Array): CID[] {
  try {
    const op: any = dagCbor.decode(block)
    if (!Array.isArray(op?.parents)) return []
    return op.parents.map((p: unknown) => CID.asCID(p)).filter((p: CID | null): p is CID => p !== null)
  } catch {
    return []
  }
}

function uniq (list: CID[]): CID[] {
  const seen = new Map<string, CID>()
  for (const c of list) seen.set(c.toString(), c)
  return [...seen.values()]
}

function sameCids (a: CID[], b: CID[]): boolean {
  if (a.length !== b.length) return false
  const s = new Set(a.map(c => c.toString()))
  return b.every(c => s.has(c.toString()))
}
