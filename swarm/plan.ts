// The forwarding plan (DESIGN.md §4, push with forwarding): a writer sends each block once, to
// the first holder of its plan, with the rest of the plan; every holder stores the block and
// forwards it to its own children. A pure function of the deliveries and what is known of the
// peers' uplinks, so it is tested without a network.
//
// Policy:
//  - the holders of one block form a chain (or, with `fanout` > 1, a tree of that fan-out);
//  - a forwarder uploads the block once per child, the last holders upload nothing, so the
//    holders are ordered by when their uplink would be free after forwarding one more block
//    ((work so far + size) / uplink): fat uplinks carry more, a thin one forwards only once the
//    others are as busy, and with equal (or unknown) uplinks the work rotates evenly over the
//    holders of many blocks;
//  - the writer itself is never a hop (it already has the block) and duplicates are dropped.
import type { Hop } from './protocol.ts'

/** Uplink assumed for a peer whose uplink is neither configured nor measured (bytes/s). */
export const DEFAULT_UPLINK_BYTES_PER_SECOND = 10 * 1024 * 1024

export interface PlanDelivery { to: string[], size: number }

export interface PlanOptions {
  /** The writer's peer id: dropped from every `to`. */
  self?: string
  /** Known uplink of peers in bytes per second (configured or measured). */
  uplink?: Map<string, number>
  /** Children per forwarder: 1 makes chains (the default), 2 binary trees, ... */
  fanout?: number
}

export interface Route {
  /** The peer the writer sends the block to; undefined when there is no holder besides the writer. */
  first?: string
  /** The plan sent with the block to `first` (hop.via = -1: `first` forwards to it). */
  hops: Hop[]
}

/** Routes for every delivery, in order. */
export function plan (deliveries: PlanDelivery[], opts: PlanOptions = {}): Route[] {
  const fanout = Math.max(1, Math.floor(opts.fanout ?? 1))
  const load = new Map<string, number>()
  const uplink = (p: string): number => opts.uplink?.get(p) ?? DEFAULT_UPLINK_BYTES_PER_SECOND
  // when its uplink would be done if it forwarded one more block of `size` bytes
  const cost = (p: string, size: number): number => ((load.get(p) ?? 0) + size) / uplink(p)

  return deliveries.map(({ to, size }) => {
    const holders = [...new Set(to)].filter(p => p !== opts.self)
    if (holders.length === 0) return { hops: [] }
    // stable sort: ties keep the caller's order
    const order = holders
      .map((peer, i) => ({ peer, i, c: cost(peer, size), u: uplink(peer) }))
      .sort((a, b) => a.c - b.c || b.u - a.u || a.i - b.i)
      .map(x => x.peer)
    // node t of the tree (0 = first) has parent floor((t - 1) / fanout)
    const hops: Hop[] = []
    for (let t = 1; t < order.length; t++) {
      const parent = Math.floor((t - 1) / fanout)
      hops.push({ peer: order[t], via: parent - 1 })
      load.set(order[parent], (load.get(order[parent]) ?? 0) + size)
    }
    return { first: order[0], hops }
  })
}

/** Splits the plan a receiver got into one route per child it must forward to. */
export function children (hops: Hop[]): Route[] {
  const routes: Route[] = []
  for (let i = 0; i < hops.length; i++) {
    if (hops[i].via !== -1) continue
    routes.push({ first: hops[i].peer, hops: subtree(hops, i) })
  }
  return routes
}

/** The hops below hop `root`, re-indexed so that `root` is the receiver (via -1). */
function subtree (hops: Hop[], root: number): Hop[] {
  const index = new Map<number, number>([[root, -1]])
  const out: Hop[] = []
  for (let i = root + 1; i < hops.length; i++) {
    const parent = index.get(hops[i].via)
    if (parent === undefined) continue
    index.set(i, out.length)
    out.push({ peer: hops[i].peer, via: parent })
  }
  return out
}

/** Every peer of a route, first included. */
export function holdersOf (route: Route): string[] {
  return route.first === undefined ? [] : [route.first, ...route.hops.map(h => h.peer)]
}
