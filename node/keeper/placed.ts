// Placement notices (issue 15): a writer whose placement of a chunk finished tells the chunk's
// keeper (placement.ts keeperOf: its first-ranked live member) who acknowledged each fragment,
// so the keeper's next incremental pass takes the chunk as placed instead of surveying it (a
// have-query to every peer for every fragment; on six hosts sharing two cores the keepers'
// surveys of a write's new chunks landed in the reads that followed it).
//
// Trust: a notice is taken only from a member (its sender is the stream's remote peer, whose key
// the connection's handshake proved; the member table lists members by those keys), and only
// for what it names: the chunk's own fragments, each held by every host a fresh placement puts
// it on. The keeper takes it only while the members, the hosts up and the hosts away are as they
// were when the notice came (repair.ts placedBy()), and a full pass (members changing, a host
// back, heal, the quiet interval) surveys every chunk whatever notices said.
//
// Wire (an rpc.ts notice, no reply): [{c: chunk CID, f: [fragment CID...], h: [[peer id...]...]}...].
// Notices to one keeper wait PLACED_LINGER_MS for the next chunks' (a sequential write places a
// chunk every few tens of ms), in batches.ts's per-peer batches as custody's drops do; notices
// still waiting at stop are not sent (their keepers survey those chunks).
import { CID } from 'multiformats/cid'
import { RpcProtocolError, defineProtocol, notify, serve } from '../net/index.ts'
import type { Host } from '../net/index.ts'
import { logger, shortPeer } from '../log.ts'
import { PeerBatches } from './batches.ts'

const log = logger('keeper:placed')

export const PLACED_PROTOCOL = '/darkfs/placed/1.0.0'
/** Chunks named in one notice (the rest go in further notices). */
export const MAX_PLACED_CHUNKS = 256
/** Fragments of one chunk a notice may name (placement.ts MAX_WIDTH is lower). */
export const MAX_PLACED_FRAGMENTS = 64
/** Holders named per fragment. */
export const MAX_PLACED_HOLDERS = 64
/** Longest peer id string taken. */
export const MAX_PEER_ID_CHARS = 128
/** Bound of one notice. */
export const MAX_PLACED_MESSAGE_BYTES = 4 * 1024 * 1024
/** Time for one notice to go. */
export const PLACED_TIMEOUT_MS = 10_000
/**
 * How long a notice to a keeper waits for the chunks placed after it (one stream for them all):
 * the keeper's pass that reads it comes at the repair interval (a minute) after the write, and
 * every notice is a stream of its own (opened, negotiated, closed) on the writer's busiest time.
 */
export const PLACED_LINGER_MS = 5_000

/** A finished placement: chunk, its fragments in order, and who acknowledged each (peer ids). */
export interface PlacedNotice {
  chunk: CID
  fragments: CID[]
  holders: string[][]
}

export class PlacedProtocolError extends RpcProtocolError {
  override readonly name = 'PlacedProtocolError'
}

function bad (why: string): never {
  throw new PlacedProtocolError(`placed notice: ${why}`)
}

function cidOf (x: unknown): CID {
  const c = CID.asCID(x)
  if (c === null) bad('not a CID')
  return c
}

export const PLACED = defineProtocol<never, never, PlacedNotice[]>({
  id: PLACED_PROTOCOL,
  maxMessageBytes: MAX_PLACED_MESSAGE_BYTES,
  timeoutMs: PLACED_TIMEOUT_MS,
  malformed: PlacedProtocolError,
  notice: (v) => {
    if (!Array.isArray(v) || v.length > MAX_PLACED_CHUNKS) bad(`expected an array of at most ${MAX_PLACED_CHUNKS} chunks`)
    return v.map((x: any) => {
      if (typeof x !== 'object' || x === null) bad('expected {c, f, h}')
      const { c, f, h } = x
      if (!Array.isArray(f) || f.length === 0 || f.length > MAX_PLACED_FRAGMENTS) bad(`expected 1..${MAX_PLACED_FRAGMENTS} fragments`)
      if (!Array.isArray(h) || h.length !== f.length) bad('expected one holder list per fragment')
      const holders = h.map((hs: unknown) => {
        if (!Array.isArray(hs) || hs.length > MAX_PLACED_HOLDERS || !hs.every(p => typeof p === 'string' && p.length > 0 && p.length <= MAX_PEER_ID_CHARS)) bad('a holder list is not peer ids')
        return hs as string[]
      })
      return { chunk: cidOf(c), fragments: f.map(cidOf), holders }
    })
  }
})

/** The wire form of a notice (placed.ts's header). */
function wire (n: PlacedNotice): { c: CID, f: CID[], h: string[][] } {
  return { c: n.chunk, f: n.fragments, h: n.holders }
}

export interface PlacedComponents {
  host: Pick<Host, 'peerId' | 'handle' | 'unhandle' | 'newStream'>
  /** Takes a notice from `from` (the repairer checks the sender is a member: repair.ts placedBy()). */
  placed: (from: string, notice: PlacedNotice) => void
}

/** Sends and receives placement notices (the header). */
export class PlacedNotices {
  private readonly c: PlacedComponents
  private unserve?: () => Promise<void>
  /** Per keeper, the notices waiting for the next send (sent as the header says). */
  private readonly batches: PeerBatches<PlacedNotice>
  /** Notices sent and chunks named (benches print them). */
  readonly sent = { notices: 0, chunks: 0, failed: 0 }

  constructor (c: PlacedComponents, init: { lingerMs?: number } = {}) {
    this.c = c
    this.batches = new PeerBatches({
      send: async (keeper, batch) => { await this.send(keeper, batch) },
      lingerMs: init.lingerMs ?? PLACED_LINGER_MS,
      max: MAX_PLACED_CHUNKS,
      // nobody waits for a notice: no process is held open for one
      unref: true
    })
  }

  async start (): Promise<void> {
    if (this.unserve !== undefined) return
    this.batches.start()
    this.unserve = await serve(this.c.host, PLACED, {
      notice: async (notices, ctx) => {
        for (const n of notices) this.c.placed(ctx.peer, n)
      }
    })
  }

  async stop (): Promise<void> {
    this.batches.stop()
    await this.unserve?.()
    this.unserve = undefined
  }

  /** Tell `keeper` of a finished placement (with the others placed within PLACED_LINGER_MS). */
  tell (keeper: string, notice: PlacedNotice): void {
    this.batches.add(keeper, notice)
  }

  private async send (keeper: string, batch: PlacedNotice[]): Promise<void> {
    try {
      await notify(this.c.host, keeper, PLACED, batch.map(wire) as unknown as PlacedNotice[])
      this.sent.notices++
      this.sent.chunks += batch.length
    } catch (err) {
      // the keeper surveys those chunks, as before (an older host, one gone, a failed dial)
      this.sent.failed++
      log('placement notice of %d chunk(s) to %s not sent: %s', batch.length, shortPeer(keeper), (err as Error).message)
    }
  }
}
