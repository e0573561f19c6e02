// The keeper counts table served to a host that starts (issue 14 item 5; the records: kept.ts).
// A host tells its counts only when a figure moves, so a host that joins an idle network hears
// those of the peers it connects to (their space notices) and no other: beyond the full mesh
// its network totals would sum a few members' counts for as long as the network stays idle. So
// it is served the table the way the member table is (net/member-service.ts): each time this
// host pulled a peer's member table (when it starts, and when anti-entropy found the tables
// differ), it pulls that peer's kept table too, right after, so the records' hosts are members
// here when they arrive. Each record is checked as a gossiped one is (KeptNotices.take: signed
// by the host it names, at most KEPT_MESSAGE_BYTES, figures in range, newer than the one held,
// of a member); the answer is bounded (MAX_MEMBERS records of at most KEPT_MESSAGE_BYTES, at
// most MAX_KEPT_TABLE_BYTES in all) and paced (one per peer per TABLE_ANSWER_MIN_INTERVAL_MS,
// as member tables are: a refused one answers an empty table).
//
// Anti-entropy, as for the member table: a record gossiped while meshes form reaches some
// members only, and an idle host tells no newer one. So every KEPT_SYNC_MS a host asks one
// connected peer (in turn) for the digest of its records, and pulls its table only when the
// digests still differ KEPT_SYNC_RECHECK_MS later (a record still spreading): 32 bytes a round
// while the tables agree, whatever the network's size. A round every 2 minutes, not the member
// table's 15 s: a call is ~700 bytes on the wire both ways (0.37 kbit/s a host at 15 s, as much
// as the member table's round), the records it mends are no older than the totals' own age
// (minutes, along the tree), and a host that starts pulls the table at once anyway. Both digest the records of members only
// (the member tables agree by their own anti-entropy), so a gone host's record, held by some,
// makes no difference.
//
// KEPT_TABLE_PROTOCOL (rpc.ts calls): { t: 'kept' } -> { t: 'kept', records: [record...] }
//                                     { t: 'digest' } -> { t: 'digest', d: bytes(32) }
//                                     { t: 'sum', r: record } -> { t: 'sum', taken: bool, root?: record }
// (the digest: sha256 of the hosts' ids and their records' seqs, in the order of the ids; 'sum':
// beyond the full mesh, a host's group sum sent to its parent in the tree, kept-tree.ts, taken
// by KeptNotices.takeSum: the sender's own sum record, signed, of a member; the answer carries
// the root's totals the parent holds, so they go down the tree too: a host gossip missed them on
// has them with its next sum's answer; a host of the previous version ignores the field, and
// answers without it). Along the tree a
// host holds the root's totals only (KeptNotices.held()): that is what a host starting pulls and
// what the digests compare, the same on every host once the root's latest has spread.
// A host of an older version does not serve it: the pull fails, the next member pull tries again.
import { createHash } from 'node:crypto'
import { MAX_MEMBERS, RpcProtocolError, TABLE_ANSWER_MIN_INTERVAL_MS, call, defineProtocol, serve, startAntiEntropy } from '../net/index.ts'
import type { Host, RpcDialer, RpcServer } from '../net/index.ts'
import { KEPT_MESSAGE_BYTES } from './kept.ts'
import type { KeptNotices, KeptSumAnswer } from './kept.ts'
import { logger } from '../log.ts'
import { equalBytes } from '../bytes.ts'

const log = logger('keeper:kept')

export const KEPT_TABLE_PROTOCOL = '/darkfs/kept/1.0.0'
/** One digest comparison with a connected peer this often (see the header). */
export const KEPT_SYNC_MS = 120_000
/** Digests that differed are compared again after this before the table is pulled. */
export const KEPT_SYNC_RECHECK_MS = 5_000
/** Largest kept table answer (about 90,000 records of 170 bytes; MAX_MEMBERS fit). */
export const MAX_KEPT_TABLE_BYTES = 16 * 1024 * 1024

export class KeptTableError extends RpcProtocolError {
  override readonly name = 'KeptTableError'
}

export type KeptTableRequest = { t: 'kept' } | { t: 'digest' } | { t: 'sum', r: Uint8Array }
export type KeptTableReply = { t: 'kept', records: Uint8Array[] } | { t: 'digest', d: Uint8Array } | { t: 'sum', taken: boolean, root?: Uint8Array }

export const KEPT_TABLE = defineProtocol<KeptTableRequest, KeptTableReply>({
  id: KEPT_TABLE_PROTOCOL,
  maxStreams: 4,
  maxMessageBytes: MAX_KEPT_TABLE_BYTES,
  timeoutMs: 30_000,
  malformed: KeptTableError,
  request: (v) => {
    const m = v as { t?: unknown, r?: unknown } | null
    if (typeof m === 'object' && m !== null && m.t === 'sum' && Object.keys(m).length === 2 && m.r instanceof Uint8Array && m.r.byteLength <= KEPT_MESSAGE_BYTES) return { t: 'sum', r: m.r }
    if (typeof m !== 'object' || m === null || (m.t !== 'kept' && m.t !== 'digest') || Object.keys(m).length !== 1) throw new KeptTableError(`a kept table request is { t: 'kept' | 'digest' } or { t: 'sum', r: a record of at most ${KEPT_MESSAGE_BYTES} bytes }`)
    return { t: m.t }
  },
  reply: (v, req) => {
    const m = v as { t?: unknown, records?: unknown, d?: unknown, taken?: unknown, root?: unknown } | null
    if (req.t === 'sum') {
      if (typeof m !== 'object' || m === null || m.t !== 'sum' || typeof m.taken !== 'boolean' ||
        (m.root !== undefined && !(m.root instanceof Uint8Array && m.root.byteLength <= KEPT_MESSAGE_BYTES))) {
        throw new KeptTableError(`a kept sum answer is { t: 'sum', taken: boolean, root?: a record of at most ${KEPT_MESSAGE_BYTES} bytes }`)
      }
      return m.root === undefined ? { t: 'sum', taken: m.taken } : { t: 'sum', taken: m.taken, root: m.root as Uint8Array }
    }
    if (req.t === 'digest') {
      if (typeof m !== 'object' || m === null || m.t !== 'digest' || !(m.d instanceof Uint8Array) || m.d.byteLength !== 32) throw new KeptTableError('a kept digest answer is { t: \'digest\', d: bytes(32) }')
      return { t: 'digest', d: m.d }
    }
    if (typeof m !== 'object' || m === null || m.t !== 'kept' || !Array.isArray(m.records) || m.records.length > MAX_MEMBERS ||
      !m.records.every((x: unknown) => x instanceof Uint8Array && x.byteLength <= KEPT_MESSAGE_BYTES)) {
      throw new KeptTableError(`a kept table answer is { t: 'kept', records: [bytes...] }, at most ${MAX_MEMBERS} records of at most ${KEPT_MESSAGE_BYTES} bytes`)
    }
    return { t: 'kept', records: m.records as Uint8Array[] }
  }
})

/** The digest of the records a host holds (see the header). */
export function keptDigest (held: Array<{ peer: string, seq: number }>): Uint8Array {
  const h = createHash('sha256')
  for (const r of held) h.update(`${r.peer} ${r.seq}\n`)
  return new Uint8Array(h.digest())
}

/**
 * Send `msg`, this host's group sum, to its parent `peer` in the tree (KeptNotices' sendUp):
 * whether the parent took it, and the root's totals it holds. Not taken (it does not see the sender as its child yet, the sender
 * is not a member there yet, its sum claims more hosts than its group has there, too soon) is a
 * send that failed: the sender tries again later.
 */
export async function sendKeptSum (host: RpcDialer, peer: string, msg: Uint8Array): Promise<KeptSumAnswer> {
  const reply = await call(host, peer, KEPT_TABLE, { t: 'sum', r: msg })
  return reply.t === 'sum' ? { taken: reply.taken, ...(reply.root === undefined ? {} : { root: reply.root }) } : { taken: false }
}

export interface KeptService {
  /** Pull a peer's kept table into this host's (each record checked); how many were new. */
  pull: (peer: string) => Promise<number>
  stop: () => Promise<void>
}

export interface KeptServiceHost extends RpcServer, RpcDialer {
  peers: Host['peers']
}

export async function startKeptService (host: KeptServiceHost, kept: KeptNotices, opts: { syncMs?: number, recheckMs?: number } = {}): Promise<KeptService> {
  let stopped = false
  const answered = new Map<string, number>()
  const unserve = await serve(host, KEPT_TABLE, {
    call: async (req, { peer }): Promise<KeptTableReply> => {
      if (req.t === 'digest') return { t: 'digest', d: keptDigest(kept.held()) }
      // (a refused sum is answered taken: false, not failed: the sender tries again later)
      // (with the root's totals held here: the sender takes them if gossip missed them, kept.ts)
      if (req.t === 'sum') {
        const taken = await kept.takeSum(req.r, peer) === 'new'
        const root = kept.rootTotals()
        return root === undefined ? { t: 'sum', taken } : { t: 'sum', taken, root }
      }
      // (the monotonic clock: a wall clock stepped back refused every peer's table for as long)
      const last = answered.get(peer) ?? -Infinity
      if (performance.now() - last < TABLE_ANSWER_MIN_INTERVAL_MS) return { t: 'kept', records: [] }
      answered.set(peer, performance.now())
      const records: Uint8Array[] = []
      // the bound leaves room for the encoding around the records (a few bytes each)
      let bytes = 64
      for (const { msg } of kept.held()) {
        if (records.length >= MAX_MEMBERS || bytes + msg.byteLength + 8 > MAX_KEPT_TABLE_BYTES) break
        records.push(msg)
        bytes += msg.byteLength + 8
      }
      return { t: 'kept', records }
    }
  })

  const pull = async (peer: string): Promise<number> => {
    const reply = await call(host, peer, KEPT_TABLE, { t: 'kept' })
    const records = reply.t === 'kept' ? reply.records : []
    let fresh = 0
    for (const msg of records) {
      if (stopped) break
      if (await kept.take(msg, peer) === 'new') fresh++
    }
    log('kept table from %s: %d records, %d new', peer, records.length, fresh)
    return fresh
  }

  // anti-entropy: the connected peers in turn, a digest each round, a table when they differ
  const stopSync = startAntiEntropy({
    peers: () => host.peers(),
    everyMs: opts.syncMs ?? KEPT_SYNC_MS,
    recheckMs: opts.recheckMs ?? KEPT_SYNC_RECHECK_MS,
    differs: async peer => {
      const reply = await call(host, peer, KEPT_TABLE, { t: 'digest' })
      return reply.t === 'digest' && !equalBytes(reply.d, keptDigest(kept.held()))
    },
    pull,
    failed: (peer, err) => { log('kept table sync with %s: %e', peer, err) }
  })

  return {
    pull,
    stop: async () => {
      if (stopped) return
      stopped = true
      stopSync()
      await unserve()
    }
  }
}
