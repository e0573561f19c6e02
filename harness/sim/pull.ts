// Member messages spread by pull (node/net/members.ts sync rounds; `npm run sim`'s
// `members_pull.h<N>.*`, and the idle figure's pullBodiesPerChange), what darkfs runs for member
// messages once every member takes them: every host asks one of its connections (in turn, from a random
// start) every TABLE_SYNC_MS, each host at its own phase; the answer carries a change when the
// answerer took it within MEMBER_OFFER_MS and the asker did not name it (it names what it took
// within MEMBER_SYNC_KEYS_MS): once to a host that lacked it, again (a duplicate) to one that took
// it more than that long ago. A host's connections: min(hosts - 1, DEFAULT_MAX_CONNECTIONS) drawn
// at random. The author pushes the change to its live connections first (member-service.ts
// publish: one notice each, leaving its uplink one after another, PUSH_GAP_MS apart as on a
// 1 Mbit/s link). Hosts down (`downShare`) neither ask nor answer (a call to them fails). Not modelled:
// the recheck after a round found the tables apart (member-service.ts: it delays the host's next
// round by TABLE_SYNC_RECHECK_MS), answers bounded by SYNC_MAX_MESSAGES (a change at a time here).
import { DEFAULT_MAX_CONNECTIONS, MEMBER_OFFER_MS, MEMBER_SYNC_KEYS_MS, TABLE_SYNC_MS } from '../../node/net/index.ts'
import { prng } from '../prng.ts'
export interface PullSpreadOptions {
  hosts: number
  seed: number
  /** Changes spread (from random live hosts, one at a time); figures are over all of them. */
  changes: number
  latencyMs: number
  downShare: number
}

export interface PullSpread {
  /** Virtual ms until 50%, 99% (the worst change, and the mean) and 100% of the live hosts took the change. */
  t50: number
  t99: number
  t99Mean: number
  t100: number
  /** Live hosts a change never reached (within MAX_PULL_ROUNDS). */
  missed: number
  /** Messages each live host received per change (the first copy and any duplicate), and the duplicates alone. */
  bodiesPerHost: number
  duplicatesPerHost: number
  /** Pushes each live host sent per change, on average (the author's, shared out). */
  pushesPerHost: number
}

/** Time between two pushes leaving the author (a push of ~650 bytes on a 1 Mbit/s uplink). */
export const PUSH_GAP_MS = 5

/** Rounds a change is followed for. */
const MAX_PULL_ROUNDS = 400

export function runPullSpread (o: PullSpreadOptions): PullSpread {
  const rand = prng(o.seed)
  const N = o.hosts
  const C = Math.min(N - 1, DEFAULT_MAX_CONNECTIONS)
  const conns: Int32Array[] = Array.from({ length: N }, (_, h) => {
    const s = new Set<number>()
    while (s.size < C) { const p = Math.floor(rand() * N); if (p !== h) s.add(p) }
    return Int32Array.from(s)
  })
  const live = new Uint8Array(N)
  for (let h = 0; h < N; h++) live[h] = rand() < o.downShare ? 0 : 1
  const liveCount = live.reduce((s, x) => s + x, 0)
  const T = TABLE_SYNC_MS
  const t99s: number[] = []
  let t50 = 0
  let t100 = 0
  let missed = 0
  let bodies = 0
  let duplicates = 0
  let pushes = 0
  for (let c = 0; c < o.changes; c++) {
    // each host's phase and first turn, hosts in phase order
    const phase = Float64Array.from({ length: N }, () => rand() * T)
    const turn = Int32Array.from({ length: N }, () => Math.floor(rand() * C))
    const order = Array.from({ length: N }, (_, h) => h).sort((a, b) => phase[a] - phase[b])
    const taken = new Float64Array(N).fill(Infinity)
    let origin = Math.floor(rand() * N)
    while (live[origin] === 0) origin = Math.floor(rand() * N)
    taken[origin] = 0
    let have = 1
    let pushed = 0
    for (const p of conns[origin]) {
      if (live[p] === 0) continue
      taken[p] = o.latencyMs + pushed++ * PUSH_GAP_MS
      have++
    }
    bodies += pushed
    pushes += pushed
    let lastOffer = MEMBER_OFFER_MS
    for (let j = 0; j < MAX_PULL_ROUNDS && have < liveCount; j++) {
      const start = j * T
      // no live host offers it any more: it is where it will ever be (the digest finds the rest)
      if (start > lastOffer + T) break
      for (const h of order) {
        if (live[h] === 0) continue
        const t = start + phase[h]
        const p = conns[h][(turn[h] + j) % C]
        if (live[p] === 0) continue
        const at = t + o.latencyMs
        if (!(taken[p] <= at && at - taken[p] <= MEMBER_OFFER_MS)) continue
        if (taken[h] <= t && t - taken[h] <= MEMBER_SYNC_KEYS_MS) continue
        bodies++
        if (taken[h] < Infinity) { duplicates++; continue }
        taken[h] = at + o.latencyMs
        lastOffer = Math.max(lastOffer, taken[h] + MEMBER_OFFER_MS)
        have++
      }
    }
    const arrivals = Array.from(taken).filter((x, h) => live[h] === 1 && x < Infinity).sort((a, b) => a - b)
    const at = (share: number): number => arrivals[Math.min(arrivals.length - 1, Math.ceil(share * liveCount) - 1)]
    t99s.push(arrivals.length >= Math.ceil(0.99 * liveCount) ? at(0.99) : Infinity)
    t50 = Math.max(t50, at(0.5))
    t100 = Math.max(t100, arrivals.length === liveCount ? arrivals[arrivals.length - 1] : Infinity)
    missed += liveCount - arrivals.length
  }
  return {
    t50,
    t99: Math.max(...t99s),
    t99Mean: t99s.reduce((s, x) => s + x, 0) / t99s.length,
    t100,
    missed,
    bodiesPerHost: bodies / o.changes / liveCount,
    duplicatesPerHost: duplicates / o.changes / liveCount,
    pushesPerHost: pushes / o.changes / liveCount
  }
}
