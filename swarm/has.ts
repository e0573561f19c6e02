// Have-queries: ask one peer which of some blocks it holds, without moving them (WANT with the
// have-only flag, answered HAVE or DONT_HAVE per CID; see serve.ts). Each query runs on its own
// short-lived stream, so its answers can never be confused with those of block wants on the
// peer's regular client stream (the server keys its queue by CID per stream).
import type { AbortOptions, Stream } from '@libp2p/interface'
import { anySignal, loopTimeSignal } from './abort.ts'
import type { CID } from 'multiformats/cid'
import { Channel } from './channel.ts'
import { wantKey } from './client.ts'
import { PeerGoneError, ProtocolError } from './errors.ts'
import { DONT_HAVE, HAVE, MAX_CIDS_PER_MESSAGE, WANT } from './protocol.ts'
import type { Message } from './protocol.ts'
import type { RateLimiter } from './rate.ts'

/**
 * Have-only wants outstanding per query at once: well under the server's MAX_WANTS_PER_PEER
 * (1024), so block wants we have queued with the same peer still fit beside them.
 */
export const HAVE_WINDOW = 128
/** Longest wait for a peer to answer a whole have-query (each query also takes the caller's signal). */
export const HAVE_TIMEOUT_MS = 15_000

export interface HasContext {
  peer: string
  open: (opts?: AbortOptions) => Promise<Stream>
  download: RateLimiter
  onSent: (bytes: number) => void
  onReceived: (bytes: number) => void
}

/** Which of `cids` the peer holds, by cid.toString(). Rejects when the peer cannot be asked. */
export async function has (ctx: HasContext, cids: CID[], opts: AbortOptions = {}): Promise<Set<string>> {
  const held = new Set<string>()
  const keys = [...new Map(cids.map(c => [c.toString(), c])).values()]
  if (keys.length === 0) return held
  // counted in the loop's own time: a lagging process does not give up a peer whose answers sit unread
  const bound = loopTimeSignal(HAVE_TIMEOUT_MS)
  const signal = anySignal([opts.signal, bound.signal])
  let stream: Stream
  try {
    stream = await ctx.open({ signal })
  } catch (err) {
    bound.clear()
    throw err
  }
  // by the CID's bytes (wantKey): each CID of an answer is a fresh object off the wire, whose
  // string (base32) cost ~5 µs; the string held is the asked CID's own (made once above)
  const pending = new Map<string, CID>()
  let wake: (() => void) | undefined
  let failure: Error | undefined
  const onMessage = (msg: Message): void => {
    if (msg.type !== HAVE && msg.type !== DONT_HAVE) throw new ProtocolError(`unexpected message type ${msg.type} in answer to a have-query`)
    for (const cid of msg.cids) {
      const key = wantKey(cid)
      const asked = pending.get(key)
      if (asked === undefined) continue
      pending.delete(key)
      if (msg.type === HAVE) held.add(asked.toString())
    }
    wake?.()
  }
  const channel = new Channel({
    stream,
    peer: ctx.peer,
    onMessage,
    onClose: (err) => { failure ??= new PeerGoneError(ctx.peer, err?.message ?? 'stream closed during a have-query'); wake?.() },
    download: ctx.download,
    onSent: ctx.onSent,
    onReceived: ctx.onReceived
  })
  const onAbort = (): void => { failure ??= signal.reason as Error; wake?.() }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    let next = 0
    while (next < keys.length || pending.size > 0) {
      if (failure !== undefined) throw failure
      const room = Math.min(HAVE_WINDOW - pending.size, MAX_CIDS_PER_MESSAGE, keys.length - next)
      if (room > 0) {
        const batch = keys.slice(next, next + room)
        next += room
        for (const c of batch) pending.set(wantKey(c), c)
        await channel.send({ type: WANT, cids: batch, haveOnly: true }, { signal })
        continue
      }
      await new Promise<void>(resolve => { wake = resolve })
      wake = undefined
    }
    return held
  } finally {
    bound.clear()
    signal.removeEventListener('abort', onAbort)
    if (failure !== undefined) channel.abort(failure)
    else await channel.close()
  }
}
