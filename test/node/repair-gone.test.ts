// After a member goes (a DOWN notice, the failure timeout), beyond the full mesh (node/keeper/
// repair.ts, survey.ts; issue 14): every host of the network hears of it within a moment, and
// each surveyed every chunk it retains, dialling each chunk's first-ranked hosts, most of them
// not connected. At 50 hosts (bench:scale, bound 16) that dial storm burst past every host's
// connection bound, holders went unanswered and repair never settled. Now the pass a member's
// going calls for surveys only the chunks whose first-ranked hosts it changed (the gone host
// ranked for them) and that this host ranks for, and every survey asks the peers connected here
// first and dials the others SURVEY_DIALS at a time. Fakes stand for the network: who was asked
// what, and how many unconnected peers were asked at once, is recorded.
import assert from 'node:assert/strict'
import { Repairer, SURVEY_SPARE_RANKS, goneChunks } from '../../node/keeper/repair.ts'
import type { RepairComponents } from '../../node/keeper/repair.ts'
import { SURVEY_DIALS, survey } from '../../node/keeper/survey.ts'
import { limiter } from '../../node/pool.ts'
import { HealthBook } from '../../node/keeper/status.ts'
import type { CID } from 'multiformats/cid'
import type { ChunkRef } from '../../node/data/index.ts'
import type { PlacementPolicy } from '../../node/keeper/placement.ts'
import { MEMBERS, chunk } from '../helpers/repair-chunks.ts'

/**
 * A rank stable when members go (as placement's rules are: a member that goes leaves the others
 * in their order): chunk i ranks h_i, h_i+1, ... around a ring of the 12 members, skipping those
 * not given.
 */
const ringRank = (ref: Pick<ChunkRef, 'offset'>, members: string[], n: number): string[] => {
  const at = (h: string): number => (Number(h.slice(1)) - ref.offset % 12 + 12) % 12
  return [...members].sort((a, b) => at(a) - at(b)).slice(0, n)
}

/** ringRank as placement's rank (its refs carry an offset). */
const policyRank = ringRank as unknown as PlacementPolicy['rank']

/** Connected here (h0): its two ring neighbours; every other member is a dial away. */
const CONNECTED = new Set(['h1', 'h11'])

interface World {
  c: RepairComponents
  members: Set<string>
  /** The chunks whose fragments each have-query named, by peer. */
  asked: Map<string, Set<number>>
  /** Have-queries to unconnected peers in flight now, and the most at once. */
  dialling: { now: number, max: number }
  listeners: Map<string, Set<(e: Event) => void>>
}

/**
 * Chunks 0..11, fragment j of each on the member ranked j, and the `copies` beyond (host, chunk,
 * fragment); this host is h0, connected to h1 and h11.
 */
function world (refs: ChunkRef[], copies: Array<[string, number, number]> = []): World {
  const members = new Set(MEMBERS)
  const asked = new Map<string, Set<number>>()
  const holds = new Map<string, Set<string>>()
  const chunkOf = new Map<string, number>()
  for (const ref of refs) {
    const targets = ringRank(ref, MEMBERS, 3)
    ref.fragments.forEach((f, j) => {
      holds.set(targets[j], (holds.get(targets[j]) ?? new Set()).add(f.toString()))
      chunkOf.set(f.toString(), ref.offset)
    })
  }
  for (const [h, i, j] of copies) holds.set(h, (holds.get(h) ?? new Set()).add(refs[i].fragments[j].toString()))
  const dialling = { now: 0, max: 0 }
  const listeners = new Map<string, Set<(e: Event) => void>>()
  const unused = (): never => { throw new Error('h0 keeps none of the chunks a member going leaves short') }
  const c: RepairComponents = {
    self: 'h0',
    membership: {
      live: () => MEMBERS.filter(h => CONNECTED.has(h) || h === 'h0'),
      up: () => MEMBERS.filter(h => members.has(h)),
      away: () => [],
      addEventListener: (type: string, fn: (e: Event) => void) => { listeners.set(type, (listeners.get(type) ?? new Set()).add(fn)) },
      removeEventListener: (type: string, fn: (e: Event) => void) => { listeners.get(type)?.delete(fn) }
    } as unknown as RepairComponents['membership'],
    bounded: () => true,
    connected: (peer: string) => CONNECTED.has(peer),
    policy: { members: () => MEMBERS.filter(h => members.has(h)), copies: () => 3, rank: policyRank },
    chunks: async () => ({ refs, unreadable: 0 }),
    store: { has: async (cid: CID) => holds.get('h0')?.has(cid.toString()) === true, get: unused, put: unused, putMany: unused, delete: unused },
    swarm: {
      has: async (cids: CID[], peer: string) => {
        const a = asked.get(peer) ?? new Set<number>()
        for (const f of cids) a.add(chunkOf.get(f.toString())!)
        asked.set(peer, a)
        const far = !CONNECTED.has(peer)
        if (far) { dialling.now++; dialling.max = Math.max(dialling.max, dialling.now) }
        // a dial takes a few turns of the loop
        for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve))
        if (far) dialling.now--
        return new Set(cids.map(f => f.toString()).filter(f => holds.get(peer)?.has(f) === true))
      },
      pullAny: unused,
      push: unused
    },
    custody: { drop: async () => [] }
  } as unknown as RepairComponents
  return { c, members, asked, dialling, listeners }
}

/** The chunks any have-query named. */
const chunksAsked = (w: World): number[] => [...new Set([...w.asked.values()].flatMap(s => [...s]))].sort((a, b) => a - b)

describe('repair after a member goes, beyond the full mesh (node/keeper/repair.ts)', function () {
  it('surveys only the chunks the gone host ranked for that this host ranks for, with at most SURVEY_DIALS dials at once', async () => {
    const refs = await Promise.all(Array.from({ length: 12 }, async (_, i) => await chunk(i)))
    const w = world(refs)
    const r = new Repairer(w.c, { intervalMs: 0 })
    r.start()
    try {
      // the first pass surveys every chunk (each chunk's first five: h0 ranks for 8..11 and 0)
      await r.pass({ incremental: true })
      assert.deepEqual(chunksAsked(w), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
      assert.ok(r.idle(), 'every chunk redundant: the pass settled')
      assert.ok(w.dialling.max >= 1 && w.dialling.max <= SURVEY_DIALS, `unconnected peers asked at once: ${w.dialling.max}`)
      // h10 goes (it held fragments of chunks 8, 9 and 10, and ranked among the first five of 6..10)
      w.asked.clear()
      w.dialling.max = 0
      w.members.delete('h10')
      for (const fn of w.listeners.get('gone') ?? []) fn(new CustomEvent('gone', { detail: 'h10' }))
      await r.pass({ incremental: true })
      // 6..10 rank other hosts first now; h0 is among the first five of 7..10 (not of 6)
      assert.deepEqual(chunksAsked(w), [7, 8, 9, 10])
      for (const [peer, chunks] of w.asked) {
        for (const i of chunks) assert.ok(ringRank(refs[i], [...w.members], 3 + SURVEY_SPARE_RANKS).includes(peer), `${peer} asked about chunk ${i}, which does not rank it`)
      }
      assert.ok(w.dialling.max >= 1 && w.dialling.max <= SURVEY_DIALS, `unconnected peers asked at once: ${w.dialling.max}`)
      // the chunks h10 held are short (their keepers rebuild them): the next pass looks at those
      // again, and at nothing the going did not touch
      assert.ok(!r.idle())
      w.asked.clear()
      await r.pass({ incremental: true })
      assert.deepEqual(chunksAsked(w), [8, 9, 10])
    } finally {
      await r.stop()
    }
  })

  it('a change beyond members going (a member joins) surveys every chunk', async () => {
    const refs = await Promise.all(Array.from({ length: 12 }, async (_, i) => await chunk(i)))
    const w = world(refs)
    w.members.delete('h10')
    const r = new Repairer(w.c, { intervalMs: 0 })
    r.start()
    try {
      await r.pass({ incremental: true })
      w.asked.clear()
      // h10 back and h5 gone since: not a member going alone
      w.members.add('h10')
      w.members.delete('h5')
      for (const fn of w.listeners.get('gone') ?? []) fn(new CustomEvent('gone', { detail: 'h5' }))
      await r.pass({ incremental: true })
      assert.deepEqual(chunksAsked(w), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    } finally {
      await r.stop()
    }
  })

  it('a pass for new content surveys only the new chunks this host ranks for, holds a copy of or places', async () => {
    const refs = await Promise.all(Array.from({ length: 12 }, async (_, i) => await chunk(i)))
    // h0 holds a copy of chunk 6's fragment 0 (it ranks for neither 6 nor 7), and places chunk 5
    const w = world(refs, [['h0', 6, 0]])
    const listed = refs.slice(0, 5)
    w.c.chunks = async () => ({ refs: listed, unreadable: 0 })
    w.c.pending = chunk => chunk === refs[5].cid!.toString()
    const r = new Repairer(w.c, { intervalMs: 0 })
    r.start()
    try {
      // the first pass surveys every chunk listed
      await r.pass({ incremental: true })
      assert.deepEqual(chunksAsked(w), [0, 1, 2, 3, 4])
      assert.ok(r.idle())
      // files written: chunks 5..11 come, the members as they were
      listed.push(...refs.slice(5))
      w.asked.clear()
      await r.pass({ incremental: true })
      // h0 is among the first five of 8..11, places 5 and holds a copy of 6; 7 ranks others alone
      assert.deepEqual(chunksAsked(w), [5, 6, 8, 9, 10, 11])
      // what it did not survey it does not survey again under the same members
      w.asked.clear()
      await r.pass({ incremental: true })
      assert.ok(!(w.asked.get('h7')?.has(7) ?? false) && !chunksAsked(w).includes(7), `asked about ${chunksAsked(w).join(', ')}`)
      // a full pass still surveys every chunk
      w.asked.clear()
      await r.pass()
      assert.deepEqual(chunksAsked(w), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    } finally {
      await r.stop()
    }
  })

  it('a new chunk it leaves to others is looked at once for status, apart from the pass; idle() waits for that', async () => {
    const refs = await Promise.all(Array.from({ length: 12 }, async (_, i) => await chunk(i)))
    const w = world(refs)
    const listed = refs.slice(0, 5)
    w.c.chunks = async () => ({ refs: listed, unreadable: 0 })
    const book = new HealthBook()
    w.c.health = book
    const r = new Repairer(w.c, { intervalMs: 0 })
    r.start()
    const settled = async (): Promise<void> => { while (!r.idle()) await new Promise(resolve => setImmediate(resolve)) }
    try {
      await r.pass({ incremental: true })
      await settled()
      listed.push(refs[6], refs[7])
      w.asked.clear()
      await r.pass({ incremental: true })
      // the pass surveyed neither (they rank other hosts first); a lookup of both runs after it
      assert.ok(!r.idle(), 'a lookup of the chunks left to others is under way')
      await settled()
      assert.deepEqual(chunksAsked(w), [6, 7])
      const live = new Set(MEMBERS)
      for (const i of [6, 7]) assert.equal(book.liveSeen(refs[i], live), 3, `chunk ${i} seen with its 3 fragments`)
      // seen now: neither the next pass nor a lookup asks about them again
      w.asked.clear()
      await r.pass({ incremental: true })
      await settled()
      assert.deepEqual(chunksAsked(w), [])
    } finally {
      await r.stop()
    }
  })

  it('goneChunks(): the chunks whose first-ranked hosts changed, that rank this host now', async () => {
    const refs = await Promise.all(Array.from({ length: 12 }, async (_, i) => await chunk(i)))
    const before = MEMBERS
    const now = MEMBERS.filter(h => h !== 'h10')
    assert.deepEqual([...goneChunks('h0', refs, before, now, { rank: policyRank })].map(r => r.offset).sort((a, b) => a - b), [7, 8, 9, 10])
    // h5 ranks for none of the chunks h10 ranked for (6..10)
    assert.deepEqual([...goneChunks('h5', refs, before, now, { rank: policyRank })], [])
    // nothing changed: nothing to survey
    assert.deepEqual([...goneChunks('h0', refs, before, before, { rank: policyRank })], [])
  })
})

describe('survey beyond the full mesh (node/keeper/survey.ts)', function () {
  it('asks the connected peers at once and the others through SURVEY_DIALS slots', async () => {
    const refs = await Promise.all(Array.from({ length: 12 }, async (_, i) => await chunk(i)))
    const w = world(refs)
    const order: string[] = []
    const has = w.c.swarm.has
    const dials = limiter(SURVEY_DIALS)
    const holdings = await survey({
      self: 'h0',
      hasLocal: async cid => await w.c.store.has(cid),
      has: async (cids, peer, o) => { order.push(peer); return await has(cids, peer, o) },
      connected: (peer: string) => CONNECTED.has(peer),
      dials
    }, refs, MEMBERS)
    assert.equal(w.dialling.max, SURVEY_DIALS)
    // the connected peers are not held up behind the dials
    assert.ok(order.indexOf('h1') < SURVEY_DIALS + 2 && order.indexOf('h11') < SURVEY_DIALS + 2, `asked in the order ${order.join(', ')}`)
    // and every holder answered
    for (const ref of refs) for (const f of ref.fragments) assert.equal(holdings.get(f.toString())?.size, 1)
  })
})
