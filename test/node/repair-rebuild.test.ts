// What a keeper's repair of one erasure-coded chunk moves (node/keeper/repair.ts, issue 15 item
// 6), with fakes for the network and a real codec: each lost fragment is rebuilt once, all the
// fragments a chunk lost in one decode of the k at hand (k - 1 fetched when the keeper holds
// one, k when it holds none), and each goes to its own new target. At 4 + 2 over 8 hosts: one
// fragment lost moves 3 in + 1 out = 4 per fragment; two lost, 3 in + 2 out = 2.5; a keeper that
// is itself the new target (its disk emptied) fetches 4 and pushes nothing.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { Repairer, THIN_KEEPER_SHARE, rebuilderOf } from '../../node/keeper/repair.ts'
import { LAZY_RULE } from '../../node/keeper/lazy.ts'
import type { RepairComponents } from '../../node/keeper/repair.ts'
import { encodeChunk } from '../../node/data/index.ts'
import { codingOf } from '../../node/keeper/pending.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import type { RateLimiter } from '../../swarm/index.ts'

const MEMBERS = Array.from({ length: 8 }, (_, i) => `h${i}`)
const K = 4
const M = 2

interface World {
  repairer: Repairer
  /** What the repairer was made with (a test makes another from it). */
  c: RepairComponents
  /** Fragment blocks fetched by the keeper (h0), and the pullAny calls that fetched them. */
  fetched: string[]
  pulls: number
  /** Deliveries pushed: fragment CID -> the hosts it went to. */
  pushed: Map<string, string[]>
  /** Fragments stored on the keeper by its repair. */
  storedHere: string[]
  /** host -> the fragment CIDs it holds (pushes land here). */
  holds: Map<string, Set<string>>
}

/**
 * One chunk whose fragment j was placed on h_j; `gone` hosts are neither members nor live, `emptied` hosts
 * lost what they held. h0 is this host and, ranking first, the chunk's keeper.
 */
function world (ref: ChunkRef, blocks: Map<string, Uint8Array>, gone: string[], emptied: string[] = [], limiter?: RateLimiter, refuse = new Set<string>(), self = 'h0', uplinkOf?: (peer: string) => number | undefined, away = new Map<string, number>(), atRiskDelayMs?: number): World {
  const members = MEMBERS.filter(h => !gone.includes(h))
  const holds = new Map(MEMBERS.map(h => [h, new Set<string>()]))
  ref.fragments.forEach((f, j) => { if (!emptied.includes(MEMBERS[j])) holds.get(MEMBERS[j])!.add(f.toString()) })
  const w = { fetched: [], pulls: 0, pushed: new Map(), storedHere: [], holds } as unknown as World
  const here = holds.get(self)!
  const c = {
    self,
    uplinkOf,
    // `away`: gone hosts within the repair delay (lazy repair), with how long each has been away
    membership: { live: () => members, away: () => [...away.keys()], awayFor: () => new Map(away), addEventListener: () => {}, removeEventListener: () => {} },
    policy: { members: () => members, copies: () => M + 1, rank: (_r: unknown, hs: string[], n: number) => MEMBERS.filter(h => hs.includes(h)).slice(0, n) },
    chunks: async () => ({ refs: [ref], unreadable: 0 }),
    store: {
      has: async (cid: CID) => here.has(cid.toString()),
      get: async (cid: CID) => blocks.get(cid.toString())!,
      putMany: async (bs: Array<{ cid: CID, bytes: Uint8Array }>) => { for (const b of bs) { here.add(b.cid.toString()); w.storedHere.push(b.cid.toString()) } }
    },
    swarm: {
      has: async (cids: CID[], peer: string) => new Set(cids.map(f => f.toString()).filter(f => holds.get(peer)?.has(f) === true)),
      pullAny: async (cids: CID[], need: number, from: Map<string, string[]>) => {
        w.pulls++
        const out = new Map<string, Uint8Array>()
        for (const f of cids) {
          if (out.size >= need) break
          if ((from.get(f.toString()) ?? []).some(h => holds.get(h)?.has(f.toString()) === true)) out.set(f.toString(), blocks.get(f.toString())!)
        }
        w.fetched.push(...out.keys())
        return out
      },
      push: async (deliveries: Array<{ cid: CID, bytes: Uint8Array, to: string[] }>) => {
        const acks = new Map<string, string[]>()
        for (const d of deliveries) {
          assert.ok(Buffer.from(d.bytes).equals(blocks.get(d.cid.toString())!), 'the rebuilt fragment is the one lost')
          w.pushed.set(d.cid.toString(), [...(w.pushed.get(d.cid.toString()) ?? []), ...d.to])
          const took = d.to.filter(h => !refuse.has(h))
          for (const h of took) holds.get(h)!.add(d.cid.toString())
          acks.set(d.cid.toString(), took)
        }
        return acks
      }
    },
    custody: { drop: async () => [] }
  } as unknown as RepairComponents
  w.c = c
  w.repairer = new Repairer(c, { intervalMs: 0, bytesPerSecond: 1 << 30, limiter, atRiskDelayMs })
  return w
}

describe('Repairer: the bytes one chunk\'s repair moves (node/keeper/repair.ts)', () => {
  let ref: ChunkRef
  let data: Uint8Array
  const blocks = new Map<string, Uint8Array>()

  before(() => {
    data = randomBytes(64 << 10)
    const encoded = encodeChunk(data, 0, K, M)
    ref = encoded.ref
    for (const b of encoded.blocks) blocks.set(b.cid.toString(), b.bytes)
  })

  it('one fragment lost: the keeper, holding one, fetches k - 1 and pushes the rebuilt one to its new target only', async () => {
    const w = world(ref, blocks, ['h3'])
    const p = await w.repairer.pass()
    assert.equal(p.failed, 0)
    assert.equal(w.pulls, 1, 'one fetch')
    assert.equal(w.fetched.length, K - 1, `fetched ${w.fetched.length} fragments`)
    assert.ok(!w.fetched.includes(ref.fragments[0].toString()), 'not the fragment it holds')
    assert.deepEqual([...w.pushed], [[ref.fragments[3].toString(), ['h6']]])
    assert.equal(p.fragmentsRepaired, 1)
    assert.equal(p.bytesFetched + p.bytesPushed, (K - 1 + 1) * blocks.get(ref.fragments[3].toString())!.byteLength)
    // the next pass finds it redundant: nothing more moves
    const again = await w.repairer.pass()
    assert.equal(again.fragmentsRepaired, 0)
    assert.equal(w.pulls, 1)
  })

  it('a push its target did not take: the rebuilt fragment is kept here, and the next pass pushes it without fetching again', async () => {
    const refuse = new Set(['h6'])
    const w = world(ref, blocks, ['h3'], [], undefined, refuse)
    const p = await w.repairer.pass()
    assert.equal(p.failed, 1)
    assert.equal(p.fragmentsRepaired, 0)
    assert.equal(w.fetched.length, K - 1)
    assert.deepEqual(w.storedHere, [ref.fragments[3].toString()], 'kept here for the next pass')
    refuse.clear()
    const again = await w.repairer.pass()
    assert.equal(again.failed, 0)
    assert.equal(again.fragmentsRepaired, 1)
    assert.equal(w.pulls, 1, 'not fetched again')
    assert.equal(again.bytesFetched, 0)
    assert.deepEqual(w.pushed.get(ref.fragments[3].toString()), ['h6', 'h6'])
  })

  it('two fragments lost: one fetch of k - 1 rebuilds both, and each goes to its own new target', async () => {
    const w = world(ref, blocks, ['h3', 'h4'])
    const p = await w.repairer.pass()
    assert.equal(p.failed, 0)
    assert.equal(w.pulls, 1, 'one fetch for both')
    assert.equal(w.fetched.length, K - 1)
    assert.deepEqual([...w.pushed.keys()].sort(), [ref.fragments[3], ref.fragments[4]].map(f => f.toString()).sort())
    // each to one host, and not the same one: h6 and h7 hold nothing of the chunk
    assert.deepEqual([...w.pushed.values()].map(to => to.length), [1, 1])
    assert.deepEqual([...w.pushed.values()].flat().sort(), ['h6', 'h7'])
    assert.equal(p.fragmentsRepaired, 2)
    const size = blocks.get(ref.fragments[3].toString())!.byteLength
    // 5 fragments moved for 2 lost: 2.5 bytes per byte lost
    assert.equal(p.bytesFetched + p.bytesPushed, (K - 1 + 2) * size)
  })

  it('a keeper that is itself the new target (its copy lost) fetches k and pushes nothing', async () => {
    const w = world(ref, blocks, [], ['h0'])
    const p = await w.repairer.pass()
    assert.equal(p.failed, 0)
    assert.equal(w.pulls, 1)
    assert.equal(w.fetched.length, K)
    assert.equal(w.pushed.size, 0)
    assert.deepEqual(w.storedHere, [ref.fragments[0].toString()])
    assert.equal(p.bytesFetched, K * blocks.get(ref.fragments[0].toString())!.byteLength)
  })

  it('the repair cap is asked for the bytes pushed only: the fetches come in on the downlink', async () => {
    // the cap comes from the uplink (repairRate()): counting the k - 1 fetches too, a keeper on
    // a 1 Mbit/s uplink spent four fifths of its lane on bytes that never crossed it
    const taken: number[] = []
    const limiter: RateLimiter = { rate: 1, take: (bytes: number) => { taken.push(bytes) } }
    const w = world(ref, blocks, ['h3', 'h4'], [], limiter)
    const p = await w.repairer.pass()
    assert.equal(p.failed, 0)
    assert.equal(w.fetched.length, K - 1)
    const size = blocks.get(ref.fragments[3].toString())!.byteLength
    assert.equal(p.bytesPushed, 2 * size)
    assert.deepEqual(taken, [2 * size])
    // a keeper that rebuilds only for itself pushes nothing and takes nothing
    taken.length = 0
    const self = world(ref, blocks, [], ['h0'], limiter)
    assert.equal((await self.repairer.pass()).failed, 0)
    assert.equal(self.fetched.length, K)
    assert.deepEqual(taken, [])
  })

  describe('a keeper on a thin uplink (rebuilderOf)', () => {
    // h0 (the keeper) on 1 Mbit/s, h2 (holds fragment 2) on 100 Mbit/s, the others unknown
    const uplinks = new Map([['h0', 125_000], ['h2', 12_500_000]])
    const uplinkOf = (peer: string): number | undefined => uplinks.get(peer)

    it('leaves the rebuild to the live holder on the fastest uplink: the keeper moves nothing, the holder fetches k - 1 and pushes to the new target', async () => {
      const keeper = world(ref, blocks, ['h3'], [], undefined, undefined, 'h0', uplinkOf)
      const k = await keeper.repairer.pass()
      assert.equal(k.failed, 0)
      assert.equal(keeper.pulls, 0, 'the thin keeper fetches nothing')
      assert.equal(keeper.pushed.size, 0, 'and pushes nothing')
      const holder = world(ref, blocks, ['h3'], [], undefined, undefined, 'h2', uplinkOf)
      const h = await holder.repairer.pass()
      assert.equal(h.failed, 0)
      assert.equal(holder.fetched.length, K - 1, 'k - 1: it holds fragment 2')
      assert.ok(!holder.fetched.includes(ref.fragments[2].toString()))
      assert.deepEqual([...holder.pushed], [[ref.fragments[3].toString(), ['h6']]])
      assert.equal(h.fragmentsRepaired, 1)
    })

    it('the keeper rebuilds as before when no holder is much faster, or uplinks are not known', async () => {
      const near = new Map([['h0', 125_000], ['h2', 125_000 / THIN_KEEPER_SHARE]])
      for (const rates of [(p: string) => near.get(p), undefined]) {
        const keeper = world(ref, blocks, ['h3'], [], undefined, undefined, 'h0', rates)
        assert.equal((await keeper.repairer.pass()).fragmentsRepaired, 1)
        assert.equal(keeper.fetched.length, K - 1)
        const holder = world(ref, blocks, ['h3'], [], undefined, undefined, 'h2', rates)
        assert.equal((await holder.repairer.pass()).fragmentsRepaired, 0)
        assert.equal(holder.pulls + holder.pushed.size, 0)
      }
    })

    it('rebuilderOf(): the keeper unless a live holder is over 1 / THIN_KEEPER_SHARE times faster; then the fastest, equals by peer id', () => {
      const held = [new Set(['k']), new Set(['b', 'x']), new Set(['a']), new Set<string>()]
      const live = new Set(['k', 'a', 'b'])
      const of = (m: Record<string, number>) => (p: string) => m[p]
      assert.equal(rebuilderOf('k', { held }, live, of({ k: 1, a: 8, b: 8 })), 'a', 'equals: the smallest id')
      assert.equal(rebuilderOf('k', { held }, live, of({ k: 1, a: 8, b: 9 })), 'b')
      assert.equal(rebuilderOf('k', { held }, live, of({ k: 1, a: 4, b: 2 })), 'k', 'four times is not enough')
      assert.equal(rebuilderOf('k', { held }, live, of({ k: 1, x: 100 })), 'k', 'a holder that is not live')
      assert.equal(rebuilderOf('k', { held }, live, of({ a: 100 })), 'k', 'the keeper\'s uplink not known')
      assert.equal(rebuilderOf('k', { held }, live, undefined), 'k')
      assert.equal(rebuilderOf(undefined, { held }, live, of({ a: 100 })), undefined)
    })
  })

  it('lazy repair: a chunk left at k live by two away holders waits for them less than the at-risk delay; past it, the longest away one\'s fragment is rebuilt, the other still waited for', async () => {
    // h3 and h4 away (declared gone, within the repair delay): 4 of 6 fragments live, k = 4
    const H = 3600_000
    const D = 24 * H
    // h4 went away an hour short of it: the chunk is at k since then
    const early = world(ref, blocks, ['h3', 'h4'], [], undefined, undefined, 'h0', undefined, new Map([['h3', D + 5 * H], ['h4', D - H]]), D)
    const p = await early.repairer.pass()
    assert.equal(p.fragmentsRepaired + p.bytesFetched + p.bytesPushed + p.failed, 0, JSON.stringify(p))
    // both away past it: h3's fragment (away longest) is rebuilt on h6, h4's is waited for
    const late = world(ref, blocks, ['h3', 'h4'], [], undefined, undefined, 'h0', undefined, new Map([['h3', D + 5 * H], ['h4', D + H]]), D)
    const q = await late.repairer.pass()
    assert.equal(q.failed, 0)
    assert.equal(q.fragmentsRepaired, 1)
    assert.deepEqual([...late.pushed], [[ref.fragments[3].toString(), ['h6']]])
    // darkfs's default (LAZY_RULE): no at-risk delay short of the repair delay, nothing rebuilt
    if (!Number.isFinite(LAZY_RULE.atRiskDelayMs)) {
      const waits = world(ref, blocks, ['h3', 'h4'], [], undefined, undefined, 'h0', undefined, new Map([['h3', D + 5 * H], ['h4', D + H]]))
      assert.equal((await waits.repairer.pass()).fragmentsRepaired, 0)
    }
  })

  it('another coding of the same bytes being placed here does not hold up this coding\'s repair; this coding\'s own placement does', async () => {
    // the same bytes at k = 2 (another file, written when the network was smaller), placed now
    const other = encodeChunk(data, 0, 2, 1).ref
    assert.equal(other.cid!.toString(), ref.cid!.toString())
    const placingOther = { placing: (chunk: string) => chunk === ref.cid!.toString(), placingCoding: (r: ChunkRef) => codingOf(r) === codingOf(other) }
    const w = world(ref, blocks, ['h3'])
    const p = await new Repairer({ ...w.c, ...placingOther }, { intervalMs: 0, bytesPerSecond: 1 << 30 }).pass()
    assert.equal(p.failed, 0)
    assert.equal(p.fragmentsRepaired, 1, 'rebuilt while the other coding is placed')
    assert.deepEqual([...w.pushed], [[ref.fragments[3].toString(), ['h6']]])
    // this coding being placed here: its repair leaves it to the placement
    const placingThis = { placing: (chunk: string) => chunk === ref.cid!.toString(), placingCoding: (r: ChunkRef) => codingOf(r) === codingOf(ref) }
    const v = world(ref, blocks, ['h3'])
    const q = await new Repairer({ ...v.c, ...placingThis }, { intervalMs: 0, bytesPerSecond: 1 << 30 }).pass()
    assert.equal(q.fragmentsRepaired, 0)
    assert.equal(v.pulls, 0, 'nothing fetched')
    assert.equal(v.pushed.size, 0)
  })
})
