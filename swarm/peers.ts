// What this node knows of each peer: bytes moved, how fast it answers, and whether it is
// banned for misbehaving; and the pure picker that chooses whom to ask for a block.

/** Weight of a new sample in the moving averages. */
const EWMA_WEIGHT = 0.3
/** Service time assumed for a peer never asked: low, so that new peers get tried. */
export const UNKNOWN_SERVICE_MS = 20
/** How long a peer that sent a wrong block or broke the protocol is not asked again. */
export const BAN_MS = 10 * 60 * 1000
/** Penalty added to a peer's service time per recent failure (timeout, gone, DONT_HAVE). */
const FAILURE_PENALTY_MS = 250

export interface PeerRecord {
  sent: number
  received: number
  /** Shortest request-to-answer time seen, about the round-trip time. */
  rttMs?: number
  /** Moving average of request-to-answer time of block requests. */
  serviceMs?: number
  failures: number
  bannedUntil?: number
}

/** What the picker needs to know of a candidate. */
export interface PeerView { serviceMs?: number, failures: number, queued: number, banned: boolean }

export class PeerBook {
  private readonly peers = new Map<string, PeerRecord>()
  private readonly now: () => number

  constructor (now: () => number = Date.now) { this.now = now }

  get (peer: string): PeerRecord {
    let rec = this.peers.get(peer)
    if (rec === undefined) {
      rec = { sent: 0, received: 0, failures: 0 }
      this.peers.set(peer, rec)
    }
    return rec
  }

  sent (peer: string, bytes: number): void { this.get(peer).sent += bytes }
  received (peer: string, bytes: number): void { this.get(peer).received += bytes }

  /** An answer arrived `ms` after its request (`block`: it carried a block). */
  answered (peer: string, ms: number, block: boolean): void {
    const rec = this.get(peer)
    rec.rttMs = rec.rttMs === undefined ? ms : Math.min(rec.rttMs, ms)
    if (block) {
      rec.serviceMs = rec.serviceMs === undefined ? ms : rec.serviceMs + EWMA_WEIGHT * (ms - rec.serviceMs)
      rec.failures = Math.max(0, rec.failures - 1)
    }
  }

  failed (peer: string): void { this.get(peer).failures++ }

  ban (peer: string): void { this.get(peer).bannedUntil = this.now() + BAN_MS }

  banned (peer: string): boolean {
    const until = this.peers.get(peer)?.bannedUntil
    return until !== undefined && until > this.now()
  }

  entries (): IterableIterator<[string, PeerRecord]> { return this.peers.entries() }
}

/** Expected time for `peer` to deliver one more block, given what it already has queued. */
export function expectedMs (v: PeerView): number {
  return ((v.serviceMs ?? UNKNOWN_SERVICE_MS) + v.failures * FAILURE_PENALTY_MS) * (v.queued + 1)
}

/**
 * The best candidate to ask next: not banned, not in `exclude`, least expected time; ties keep
 * the candidates' order. Undefined when none is left.
 */
export function pickPeer (candidates: string[], view: (peer: string) => PeerView, exclude: Set<string>): string | undefined {
  let best: string | undefined
  let bestMs = Infinity
  for (const peer of candidates) {
    if (exclude.has(peer)) continue
    const v = view(peer)
    if (v.banned) continue
    const ms = expectedMs(v)
    if (ms < bestMs) { best = peer; bestMs = ms }
  }
  return best
}
