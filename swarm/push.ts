// Push with forwarding (DESIGN.md §4): each block goes once to the first holder of its route,
// with the rest of the route; holders store, ACK and forward. When a hop cannot be reached its
// children are served by whoever would have sent to it, so one dead holder does not cut off the
// rest of its chain.
import type { AbortOptions } from '@libp2p/interface'
import { anySignal, loopTimeSignal } from './abort.ts'
import type { CID } from 'multiformats/cid'
import type { Client } from './client.ts'
import { children } from './plan.ts'
import type { Route } from './plan.ts'
import { logger, shortCid, shortPeer } from './log.ts'

const log = logger('push')

/** How long one hop may take to report its part of a plan done before we route around it. */
export const PUSH_HOP_TIMEOUT_MS = 60_000

export interface DeliverContext {
  client: (peer: string) => Client
  hopTimeoutMs: number
}

export interface DeliverOptions extends AbortOptions {
  /** Called once when the block has been written to every first hop (or they failed). */
  onWritten?: () => void
  /** The peer whose block it is, when not the sender (a hop forwarding, a relay): told to each hop that reads it. */
  origin?: string
}

/**
 * Send `bytes` along `route`. With `route.first` undefined the caller is the root itself and
 * sends to each of its children. Resolves when every reachable part of the route is done.
 */
export async function deliver (ctx: DeliverContext, cid: CID, bytes: Uint8Array, route: Route, onAck: (holder: string) => void, opts: DeliverOptions = {}): Promise<void> {
  const { onWritten, ...rest } = opts
  if (route.first === undefined) {
    const kids = children(route.hops)
    let left = kids.length
    if (left === 0) onWritten?.()
    const one = (): void => { if (--left === 0) onWritten?.() }
    await Promise.all(kids.map(async child => { await deliver(ctx, cid, bytes, child, onAck, { ...rest, onWritten: one }) }))
    return
  }
  await deliverTo(ctx, cid, bytes, { first: route.first, hops: route.hops }, onAck, rest, onWritten)
}

async function deliverTo (ctx: DeliverContext, cid: CID, bytes: Uint8Array, route: Route & { first: string }, onAck: (holder: string) => void, opts: AbortOptions & { origin?: string }, onWritten?: () => void): Promise<void> {
  const acked = new Set<string>()
  // the hop's deadline in the loop's own time: a lagging process does not route around a hop whose acks sit unread
  const hop = loopTimeSignal(ctx.hopTimeoutMs)
  const signal = anySignal([opts?.signal, hop.signal])
  try {
    await ctx.client(route.first).push(cid, bytes, route.hops, {
      ack: (holder) => { acked.add(holder); onAck(holder) },
      written: onWritten
    }, { signal, origin: opts.origin })
    hop.clear()
  } catch (err) {
    hop.clear()
    opts.signal?.throwIfAborted()
    // the first hop failed or went silent: serve its children whose own ACK has not come back
    const rest = children(route.hops).filter(c => c.first !== undefined && !acked.has(c.first))
    if (rest.length === 0 && !acked.has(route.first)) throw err
    await Promise.all(rest.map(async child => {
      await deliver(ctx, cid, bytes, child, onAck, opts).catch((err: Error) => {
        // a lost branch only means fewer ACKs (the caller counts them)
        log('push of %s around %s to %s failed: %s', shortCid(cid), shortPeer(route.first), shortPeer(child.first ?? '?'), err.message)
      })
    }))
  }
}
