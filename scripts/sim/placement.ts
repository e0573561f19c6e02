// The placement figure of the simulator (issue 14 items 4 and 7): how evenly chunks' fragments
// load hosts of mixed disk sizes, under today's rule (the k + m XOR-closest members,
// node/net/kad.ts targets) and under weighted rendezvous over the XOR neighbourhood
// (node/keeper/balance.ts), and how much data moves when one host joins, leaves, or changes
// its capacity class.
//
// Load of a host = fragments it holds (every fragment of a chunk is the same size). Its ideal
// is its share of all fragments in proportion to its disk: ratio = load / ideal, 1 is perfect.
// "vs weight" divides by the share of its placement weight instead (classes, the cap): what the
// rule aims at, which separates the rule's spread from what quantization and the cap cost.
// A finite number of chunks adds sampling noise of its own: `noise.*` is the same figure for a
// perfect proportional placement of as many fragments (a Poisson count per host), the floor no
// rule goes below at that number of chunks. `hrwall.expected.*` is the every-member rule with
// no sampling at all: each host's expected fragments, computed exactly (harness/sim/inclusion.ts),
// against its disk, its weight (`vs_weight`: the rule's own departure from proportional, a host
// holding at most one fragment of a chunk), disks as weights (`exact_weights`: no classes, no
// cap) and classes without the cap (`uncapped`); `hrwall.z_stddev` checks the sampled loads
// against it (~1). At 1,000 hosts (seed 14): expected max 1.060 = 1.005 (rule) x 1.044 (classes
// of 1/8 doubling) x 1.012 (the 8x cap, which leaves the 8 TB disks at 0.85-1.01 and loads the
// rest); sampled at 500 chunks per host it reads 1.13 against a noise floor of 1.10.
//
// Real code: peer kad ids, key kad ids, erasureParams, capacityClass/placementWeights and
// rendezvous are darkfs's functions. The XOR neighbourhood is found by KeySpace (keyspace.ts),
// checked here against targets() and balancedTargets() on sampled keys before any figure, and
// the every-member rule and XOR against the rank a running host places chunks by
// (placementPolicy().rank with the classes members sign, node/keeper/placement.ts) on real CIDs.
import {
  DEFAULT_REDUNDANCY, balancedTargets, capacityClass, erasureParams, keyKadId, placementPolicy, placementWeights, rendezvous, targets
} from '../../node/keeper/index.ts'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { createHash } from 'node:crypto'
import { PLACEMENT_BALANCED } from '../../node/data/index.ts'
import type { Candidate } from '../../node/keeper/index.ts'
import { prng } from '../../harness/prng.ts'
import { KeySpace } from '../../harness/sim/keyspace.ts'
import { rendezvousInclusion } from '../../harness/sim/inclusion.ts'
import { simHosts } from '../../harness/sim/hosts.ts'
import type { SimHost } from '../../harness/sim/hosts.ts'

export interface Rule {
  name: string
  /** Member indexes holding the chunk of kad id `keyId` (n of them). */
  place: (keyId: Uint8Array) => number[]
}

export function xorRule (ks: KeySpace, n: number): Rule {
  return { name: 'xor', place: keyId => ks.nearest(keyId, n) }
}

/** Weighted rendezvous among the `factor * n` XOR-closest members; `weights[i]` of host i. */
export function rendezvousRule (ks: KeySpace, hosts: SimHost[], weights: number[], n: number, factor: number): Rule {
  const cands: Candidate[] = hosts.map((h, i) => ({ id: h.id, weight: weights[i] }))
  if (!Number.isFinite(factor)) {
    // every member: no neighbourhood to find, one candidate list for all keys
    const members = ks.nearest(new Uint8Array(32), Infinity)
    const list = members.map(i => cands[i])
    return { name: 'hrwall', place: keyId => rendezvous(keyId, list, n).map(p => members[p]) }
  }
  return {
    name: `hrw${factor}`,
    place: keyId => {
      const near = ks.nearest(keyId, factor * n)
      return rendezvous(keyId, near.map(i => cands[i]), n).map(p => near[p])
    }
  }
}

/** Placement weights of `members` (indexes into hosts), from their disks' classes; 0 for non-members. */
export function weightsOf (hosts: SimHost[], members: number[]): number[] {
  const w = placementWeights(new Map(members.map(i => [hosts[i].peer, capacityClass(hosts[i].disk)])))
  return hosts.map(h => w.get(h.peer) ?? 0)
}

/** Chunk keys (stand-ins for CID bytes) and their kad ids. */
export function chunkKeys (count: number, rand: () => number): Uint8Array[] {
  return Array.from({ length: count }, () => {
    const key = new Uint8Array(32)
    for (let i = 0; i < 32; i += 4) {
      const w = Math.floor(rand() * 2 ** 32)
      key[i] = w >>> 24; key[i + 1] = (w >>> 16) & 255; key[i + 2] = (w >>> 8) & 255; key[i + 3] = w & 255
    }
    return key
  })
}

export interface Spread { max: number, p99: number, min: number, stddev: number, gini: number }

/** The spread of a rule less the sampling noise's: sqrt(stddev^2 - noise stddev^2), the rule's own. */
function excess (s: Spread, noise: Spread): number {
  return Math.sqrt(Math.max(0, s.stddev ** 2 - noise.stddev ** 2))
}

/** Spread of load[i] / ideal[i] over the members, ideal in proportion to share[i]. */
export function spread (load: ArrayLike<number>, share: number[], members: number[]): Spread {
  const total = members.reduce((s, i) => s + load[i], 0)
  const shares = members.reduce((s, i) => s + share[i], 0)
  const r = members.map(i => load[i] / (total * share[i] / shares)).sort((a, b) => a - b)
  return ratios(r)
}

function ratios (r: number[]): Spread {
  const mean = r.reduce((s, x) => s + x, 0) / r.length
  const stddev = Math.sqrt(r.reduce((s, x) => s + (x - mean) ** 2, 0) / r.length)
  // Gini over the sorted ratios: sum((2i - n - 1) x_i) / (n sum(x))
  const gini = r.reduce((s, x, i) => s + (2 * (i + 1) - r.length - 1) * x, 0) / (r.length * r.reduce((s, x) => s + x, 0))
  return { max: r[r.length - 1], p99: r[Math.min(r.length - 1, Math.floor(0.99 * r.length))], min: r[0], stddev, gini }
}

/** The floor of sampling noise: a perfect placement's Poisson counts, ratio 1 + z / sqrt(ideal). */
function noiseFloor (fragments: number, share: number[], members: number[], rand: () => number): Spread {
  const shares = members.reduce((s, i) => s + share[i], 0)
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
  return ratios(members.map(i => { const ideal = fragments * share[i] / shares; return 1 + gauss() / Math.sqrt(ideal) }).sort((a, b) => a - b))
}

/** Check the fast key space and the rules against darkfs's own functions on `samples` keys. */
function check (hosts: SimHost[], members: number[], ks: KeySpace, weights: number[], n: number, factor: number, keys: Uint8Array[]): void {
  const peers = members.map(i => hosts[i].peer)
  const weightMap = new Map(members.map(i => [hosts[i].peer, weights[i]]))
  const rule = rendezvousRule(ks, hosts, weights, n, factor)
  const policy = placementPolicy({ members: () => peers, capacityClass: p => capacityClass(hosts[members[peers.indexOf(p)]].disk) })
  const names = (xs: number[]): string => xs.map(i => hosts[i].peer).sort().join()
  for (const key of keys) {
    const keyId = keyKadId(key)
    const c = Math.min(factor * n, peers.length)
    const real = targets(key, peers, c)
    if (real.slice().sort().join() !== names(ks.nearest(keyId, c))) throw new Error('sim: KeySpace.nearest disagrees with targets()')
    const balanced = balancedTargets(key, peers, weightMap, n, c)
    if (balanced.join() !== rule.place(keyId).map(i => hosts[i].peer).join()) throw new Error('sim: rendezvous rule disagrees with balancedTargets()')
    if (Number.isFinite(factor)) continue
    // the rank hosts place by, on a real chunk CID, weights from the classes members sign
    const cid = CID.createV1(raw.code, createDigest(0x12, createHash('sha256').update(key).digest()))
    const cidId = keyKadId(cid.bytes)
    if (policy.rank({ cid, rule: PLACEMENT_BALANCED }, peers, n).join() !== rule.place(cidId).map(i => hosts[i].peer).join()) throw new Error('sim: rendezvous rule disagrees with the hosts\' placementPolicy().rank')
    if (policy.rank({ cid }, peers, n).sort().join() !== names(ks.nearest(cidId, n))) throw new Error('sim: XOR rule disagrees with the hosts\' placementPolicy().rank of an old chunk')
  }
}

export interface PlacementOptions {
  hosts: number
  seed: number
  /** Chunks per host for the load figure. */
  chunksPerHost: number
  /** Chunks for the movement figures. */
  moveChunks: number
  /** Neighbourhood factors of the rendezvous rules measured (Infinity: every member). */
  factors: number[]
  /** Keys checked against targets()/balancedTargets(). */
  checks: number
  log: (line: string) => void
}

/** Runs the placement figures for one network size; returns flat named figures. */
export function runPlacement (o: PlacementOptions): Record<string, number> {
  const rand = prng(o.seed)
  const all = simHosts(o.hosts + 1, rand) // the last one joins in the movement figure
  const members = Array.from({ length: o.hosts }, (_, i) => i)
  const { k, m } = erasureParams(o.hosts, DEFAULT_REDUNDANCY)
  const n = k + m
  const ks = new KeySpace(all.map(h => h.id), members)
  const weights = weightsOf(all, members)
  const disks = all.map(h => h.disk)
  const out: Record<string, number> = {}
  const pre = `placement.h${o.hosts}`
  out[`${pre}.k`] = k
  out[`${pre}.m`] = m
  const capped = members.filter(i => weights[i] < capacityWeightUncapped(all[i].disk) * 0.999).length
  out[`${pre}.capped_hosts`] = capped

  let t = performance.now()
  for (const f of o.factors) check(all, members, ks, weights, n, f, chunkKeys(o.checks, rand))
  o.log(`h${o.hosts}: KeySpace and rules agree with targets()/balancedTargets() on ${o.checks} keys (${((performance.now() - t) / 1000).toFixed(1)} s)`)

  const rules = [xorRule(ks, n), ...o.factors.map(f => rendezvousRule(ks, all, weights, n, f))]
  const loads = rules.map(() => new Float64Array(all.length))
  const chunks = o.chunksPerHost * o.hosts
  // the sample sizes, with the figures (they differ between sizes: --chunks-per-host-large)
  out[`${pre}.chunks_sampled`] = chunks
  out[`${pre}.move_chunks_sampled`] = o.moveChunks
  t = performance.now()
  const batch = 10_000
  for (let done = 0; done < chunks; done += batch) {
    for (const key of chunkKeys(Math.min(batch, chunks - done), rand)) {
      const keyId = keyKadId(key)
      for (let r = 0; r < rules.length; r++) for (const i of rules[r].place(keyId)) loads[r][i]++
    }
  }
  o.log(`h${o.hosts}: ${chunks} chunks of ${n} fragments placed by ${rules.length} rules (${((performance.now() - t) / 1000).toFixed(1)} s)`)
  const put = (name: string, s: Spread): void => {
    out[`${pre}.${name}.max`] = round(s.max)
    out[`${pre}.${name}.p99`] = round(s.p99)
    out[`${pre}.${name}.min`] = round(s.min)
    out[`${pre}.${name}.stddev`] = round(s.stddev)
    out[`${pre}.${name}.gini`] = round(s.gini)
  }
  const noise = noiseFloor(chunks * n, disks, members, rand)
  put('noise', noise)
  // today's rule against an even share (capacity aside): the key space's own unevenness
  put('xor.vs_even', spread(loads[0], all.map(() => 1), members))
  rules.forEach((rule, r) => {
    const vsDisk = spread(loads[r], disks, members)
    const vsWeight = spread(loads[r], weights, members)
    put(rule.name, vsDisk)
    put(`${rule.name}.vs_weight`, vsWeight)
    out[`${pre}.${rule.name}.excess_stddev`] = round(excess(vsDisk, noise))
    out[`${pre}.${rule.name}.vs_weight.excess_stddev`] = round(excess(vsWeight, noise))
  })

  // the every-member rule without sampling noise (harness/sim/inclusion.ts): each host's
  // expected fragments, against its disk and its weight, and what each departure from
  // proportional costs: `expected.vs_weight` the rule's own (a host holds at most one fragment of
  // a chunk), `expected.exact_weights` the rule's with weights equal to the disks (no classes, no
  // cap), `expected.uncapped` classes without the cap (quantization and the rule). `z_stddev`:
  // the sampled loads' stddev about the expectation in Poisson units, ~1 when they agree.
  // (computed at every size: ~5 s at 10,000 hosts, where the rule is not sampled)
  const every = rules.findIndex(r => r.name === 'hrwall')
  {
    const expectOf = (w: number[]): Float64Array => {
      const pi = rendezvousInclusion(members.map(i => w[i]), n)
      const e = new Float64Array(all.length)
      members.forEach((i, j) => { e[i] = pi[j] * chunks })
      return e
    }
    const expected = expectOf(weights)
    put('hrwall.expected', spread(expected, disks, members))
    put('hrwall.expected.vs_weight', spread(expected, weights, members))
    put('hrwall.expected.exact_weights', spread(expectOf(disks), disks, members))
    const isMember = new Set(members)
    const uncapped = all.map((h, i) => isMember.has(i) ? capacityWeightUncapped(h.disk) : 0)
    put('hrwall.expected.uncapped', spread(expectOf(uncapped), disks, members))
    if (every >= 0) {
      const z = members.map(i => (loads[every][i] - expected[i]) / Math.sqrt(expected[i]))
      out[`${pre}.hrwall.z_stddev`] = round(Math.sqrt(z.reduce((s, x) => s + x * x, 0) / z.length))
    }
  }

  // movement: one host joins, one leaves, one's disk doubles (its class + 8)
  t = performance.now()
  const keys = chunkKeys(o.moveChunks, rand).map(keyKadId)
  const sizes = [n, ...o.factors.map(f => f * n)]
  const leaver = members[Math.floor(rand() * members.length)]
  const grower = members.find(i => all[i].disk > 0.95e12 && all[i].disk < 1.05e12) ?? members[0]
  const grown = all.map((h, i) => i === grower ? { ...h, disk: h.disk * 2 } : h)
  const scenario = (name: string, host: number, after: number[], hosts: SimHost[]): void => {
    const w = weightsOf(hosts, after)
    const space = new KeySpace(all.map(h => h.id), after)
    const afterRules = [xorRule(space, n), ...o.factors.map(f => rendezvousRule(space, hosts, w, n, f))]
    const wasMember = members.includes(host)
    const isMember = after.includes(host)
    // when no other member's weight moved (the median class held), a chunk can move only if the
    // host is among its candidates before or after: the others are skipped, not placed twice
    const othersSame = after.every(i => i === host || w[i] === weights[i])
    afterRules.forEach((rule, r) => {
      let moved = 0
      let hostBefore = 0
      let hostAfter = 0
      for (const key of keys) {
        if (othersSame && Number.isFinite(sizes[r])) {
          const near = (wasMember && ks.nearest(key, sizes[r]).includes(host)) || (isMember && space.nearest(key, sizes[r]).includes(host))
          if (!near) continue
        }
        const old = rules[r].place(key)
        const now = rule.place(key)
        for (const i of now) if (!old.includes(i)) moved++
        if (old.includes(host)) hostBefore++
        if (now.includes(host)) hostAfter++
      }
      // what must move: the fragments the host gains or loses
      const must = Math.abs(hostAfter - hostBefore)
      const share = moved / (keys.length * n)
      out[`${pre}.${rule.name}.${name}.moved_share`] = round(share, 6)
      out[`${pre}.${rule.name}.${name}.moved_vs_host`] = must === 0 ? (moved === 0 ? 1 : Infinity) : round(moved / must)
      // in shares of an average host (1 / hosts of all fragments)
      out[`${pre}.${rule.name}.${name}.moved_vs_average_host`] = round(share * o.hosts)
    })
  }
  scenario('join', o.hosts, [...members, o.hosts], all)
  scenario('leave', leaver, members.filter(i => i !== leaver), all)
  scenario('grow', grower, members, grown)
  o.log(`h${o.hosts}: movement over ${o.moveChunks} chunks (${((performance.now() - t) / 1000).toFixed(1)} s)`)
  return out
}

function capacityWeightUncapped (disk: number): number {
  return placementWeights(new Map([['x', capacityClass(disk)]])).get('x')!
}

function round (x: number, digits = 4): number {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x
}
