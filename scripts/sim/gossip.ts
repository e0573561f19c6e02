// Dissemination figures of the simulator (issue 14 items 2, 3 and 7); the idle traffic model is
// harness/sim/idle.ts's (re-exported at the end).
//
// Dissemination: one op published by one host, spread as darkfs's gossipsub spreads it
// (node/net/host.ts): the author sends it to every peer it is connected to (floodPublish, at most
// --max-connections), every other host forwards its first copy to its mesh peers but the one it
// came from; later copies are dropped. The mesh is drawn as gossipsub's heartbeat keeps it: each
// host grafts D random peers, a peer takes grafts up to Dhi (so degrees fall between D and Dhi).
// Copies leave one after another over the sender's uplink (events.ts), and arrive one link latency
// later. IHAVE/IWANT lazy repair is not simulated here (the mesh alone reaches every live host in
// these runs), but its bytes are counted in the idle figure (harness/sim/idle.ts). Hosts that are down (`downShare`,
// before any heartbeat repaired the mesh around them) neither receive nor forward.
//
// The mesh's degrees are host.ts's (GOSSIP_MESH_OPTIONS, which it hands to gossipsub).
import { DEFAULT_MAX_CONNECTIONS, GOSSIP_D, GOSSIP_DHI } from '../../node/net/index.ts'
import { GOSSIP_OVERHEAD_BYTES } from '../../harness/sim/idle.ts'
import { prng } from '../../harness/prng.ts'
import { EventQueue, Uplinks } from '../../harness/sim/events.ts'
import { simUplink } from '../../harness/sim/churn.ts'

export interface DisseminationOptions {
  hosts: number
  seed: number
  opBytes: number
  latencyMs: number
  /** Ops published (from random hosts); figures are over all of them. */
  ops: number
  /** Share of hosts down when the ops are published. */
  downShare: number
}

export interface Dissemination {
  /** Virtual ms until 50%, 99% and 100% of the live hosts had the op (the worst op of the run for 99%). */
  t50: number
  t99: number
  t99Mean: number
  t100: number
  /** Bytes each host sent per op, mean and max, and copies received per host per op. */
  bytesPerHostMean: number
  bytesPerHostMax: number
  copiesPerHost: number
  /** Live hosts some op did not reach. */
  missed: number
  meshDegreeMean: number
  meshDegreeMax: number
}

export function runDissemination (o: DisseminationOptions): Dissemination {
  const rand = prng(o.seed)
  const N = o.hosts
  const uplinks = Array.from({ length: N }, () => simUplink(rand))
  // the mesh: each host grafts D random peers; a peer at Dhi refuses (the graft is tried elsewhere)
  const mesh: Array<Set<number>> = Array.from({ length: N }, () => new Set())
  for (let h = 0; h < N; h++) {
    let tries = 0
    while (mesh[h].size < Math.min(GOSSIP_D, N - 1) && tries++ < 100) {
      const p = Math.floor(rand() * N)
      if (p === h || mesh[h].has(p) || mesh[p].size >= GOSSIP_DHI) continue
      mesh[h].add(p); mesh[p].add(h)
    }
  }
  const conns = Math.min(N - 1, DEFAULT_MAX_CONNECTIONS)
  const live = new Uint8Array(N).fill(1)
  for (let h = 0; h < N; h++) if (rand() < o.downShare) live[h] = 0
  const liveCount = live.reduce((s, x) => s + x, 0)
  const wire = o.opBytes + GOSSIP_OVERHEAD_BYTES
  const sentTotal = new Float64Array(N)
  let copies = 0
  let missed = 0
  const t99s: number[] = []
  let t50 = 0
  let t100 = 0
  for (let op = 0; op < o.ops; op++) {
    const q = new EventQueue()
    const links = new Uplinks(uplinks)
    const got = new Float64Array(N).fill(Infinity)
    let author = Math.floor(rand() * N)
    while (live[author] === 0) author = Math.floor(rand() * N)
    const arrivals: number[] = []
    const deliver = (to: number, from: number, t: number): void => {
      q.at(t, () => {
        copies++
        if (live[to] === 0 || got[to] < Infinity) return
        got[to] = q.now
        arrivals.push(q.now)
        for (const p of mesh[to]) if (p !== from && p !== author) deliver(p, to, links.send(to, wire, q.now, o.latencyMs))
      })
    }
    got[author] = 0
    arrivals.push(0)
    // floodPublish: every connected peer, the mesh first, then others up to the bound
    const targets = new Set(mesh[author])
    while (targets.size < conns) { const p = Math.floor(rand() * N); if (p !== author) targets.add(p) }
    for (const p of targets) deliver(p, author, links.send(author, wire, 0, o.latencyMs))
    q.run()
    for (let h = 0; h < N; h++) sentTotal[h] += links.sent[h]
    arrivals.sort((a, b) => a - b)
    const at = (share: number): number => arrivals[Math.min(arrivals.length - 1, Math.ceil(share * liveCount) - 1)]
    t99s.push(arrivals.length >= Math.ceil(0.99 * liveCount) ? at(0.99) : Infinity)
    t50 = Math.max(t50, at(0.5))
    t100 = Math.max(t100, arrivals.length === liveCount ? arrivals[arrivals.length - 1] : Infinity)
    missed += liveCount - arrivals.length
  }
  const perHost = Array.from(sentTotal, b => b / o.ops)
  const degrees = mesh.map(s => s.size)
  return {
    t50,
    t99: Math.max(...t99s),
    t99Mean: t99s.reduce((s, x) => s + x, 0) / t99s.length,
    t100,
    bytesPerHostMean: perHost.reduce((s, x) => s + x, 0) / N,
    bytesPerHostMax: Math.max(...perHost),
    copiesPerHost: copies / o.ops / N,
    missed,
    meshDegreeMean: degrees.reduce((s, x) => s + x, 0) / N,
    meshDegreeMax: Math.max(...degrees)
  }
}

export { GOSSIP_OVERHEAD_BYTES, idleTraffic } from '../../harness/sim/idle.ts'
export type { IdleOptions } from '../../harness/sim/idle.ts'

export { modelPullSpread, runPullSpread } from '../../harness/sim/pull.ts'
export type { PullSpread, PullSpreadOptions } from '../../harness/sim/pull.ts'
