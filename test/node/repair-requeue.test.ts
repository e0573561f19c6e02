// A repair pass orders the rest of itself again when hosts go or come back (node/keeper/repair.ts,
// issue 14): a pass over many chunks on a thin uplink takes hours, and the simulator (npm run sim)
// lost chunks that waited for the next pass one loss from unreadable. A chunk the pass found short
// of k live fragments is surveyed again in the same pass, ahead of the rest, once a host it ranks
// first is back; a chunk that hosts going put at risk goes ahead of chunks with fragments to
// spare. Fakes stand for the network (full mesh: every live host is asked): who was asked what,
// in which order, is recorded; the membership's live hosts change while the pass runs.
import assert from 'node:assert/strict'
import { REPAIR_BATCH, Repairer, requeue } from '../../node/keeper/repair.ts'
import type { RepairComponents } from '../../node/keeper/repair.ts'
import { HealthBook } from '../../node/keeper/status.ts'
import type { CID } from 'multiformats/cid'
import type { ChunkRef } from '../../node/data/index.ts'
import { MEMBERS, rank, chunk } from '../helpers/repair-chunks.ts'
import type { PlacementPolicy } from '../../node/keeper/placement.ts'


/**
 * `count` chunks ranking none of h4, h5 (offsets 6..11, 0, 1 mod 12: their targets stay live and
 * hold their fragments, so they are redundant and nothing is rebuilt), in list order.
 */
async function plainChunks (count: number): Promise<ChunkRef[]> {
  const rests = [6, 7, 8, 9, 10, 11, 0, 1]
  return await Promise.all(Array.from({ length: count }, async (_, i) => await chunk(12 * (i + 1) + rests[i % rests.length])))
}

interface World {
  c: RepairComponents
  /** Hosts live now (the membership reads it at each call). */
  live: Set<string>
  /** Every have-query, in order: peer and fragment. */
  asked: Array<{ peer: string, cid: string }>
}

/** Every chunk's fragment j held by its target ranked j. */
function world (refs: ChunkRef[], health?: HealthBook): World {
  const asked: World['asked'] = []
  const holds = new Map<string, Set<string>>()
  for (const ref of refs) {
    const targets = rank(ref, MEMBERS, 3)
    ref.fragments.forEach((f, j) => { holds.set(targets[j], (holds.get(targets[j]) ?? new Set()).add(f.toString())) })
  }
  const live = new Set(MEMBERS)
  const unused = (): never => { throw new Error('nothing is rebuilt here') }
  const c: RepairComponents = {
    self: 'h0',
    membership: {
      live: () => MEMBERS.filter(h => live.has(h)),
      away: () => [],
      addEventListener: () => {},
      removeEventListener: () => {}
    },
    policy: { members: () => MEMBERS, copies: () => 3, rank },
    chunks: async () => ({ refs, unreadable: 0 }),
    store: { has: async (cid: CID) => holds.get('h0')?.has(cid.toString()) === true, get: unused, put: unused, putMany: unused, delete: unused },
    swarm: {
      has: async (cids: CID[], peer: string) => {
        for (const f of cids) asked.push({ peer, cid: f.toString() })
        return new Set(cids.map(f => f.toString()).filter(f => holds.get(peer)?.has(f) === true))
      },
      pullAny: unused,
      push: unused
    },
    custody: { drop: async () => [] },
    health
  } as unknown as RepairComponents
  return { c, live, asked }
}

describe('Repairer: the rest of a pass ordered again as hosts go and come back (node/keeper/repair.ts)', function () {
  it('a chunk found short of k is surveyed again in the same pass once a host it ranks first is back', async () => {
    // x: targets h3, h4, h5; h4 and h5 are down when the pass starts: 1 live fragment of k = 2
    const x = await chunk(3)
    const refs = [x, ...await plainChunks(2 * REPAIR_BATCH + 50)]
    const { c, live, asked } = world(refs)
    live.delete('h4')
    live.delete('h5')
    const r = new Repairer(c, { intervalMs: 0 })
    // h4 comes back while the pass works through its first batch (after it found x short)
    r.addEventListener('progress', () => { live.add('h4') })
    r.start()
    try {
      const p = await r.pass()
      const x1 = x.fragments[1].toString()
      assert.ok(asked.some(a => a.peer === 'h4' && a.cid === x1), 'h4, back during the pass, was asked about the fragment of x it holds')
      // taken ahead of the rest: the first chunk surveyed after the view changed
      const firstAfter = asked.findIndex(a => a.peer === 'h4')
      assert.equal(asked[firstAfter].cid, x.fragments[0].toString(), 'x is the first chunk of the batch surveyed after h4 came back')
      assert.equal(p.checked, refs.length, 'x is counted once')
      assert.equal(p.failed, 0)
      assert.equal(p.fragmentsRepaired, 0)
    } finally {
      await r.stop()
    }
  })

  it('a host back that the membership tells of: the chunks short for it are surveyed again at once, before the batches cut already', async () => {
    // x: targets h3, h4, h5, first in the list; h4 and h5 are down when the pass starts
    const x = await chunk(3)
    const refs = [x, ...await plainChunks(2 * REPAIR_BATCH + 50)]
    const { c, live, asked } = world(refs)
    live.delete('h4')
    live.delete('h5')
    const events = new EventTarget()
    c.membership = { ...c.membership, addEventListener: events.addEventListener.bind(events), removeEventListener: events.removeEventListener.bind(events) }
    // the second batch's survey answers only once the first batch's chunks are through: the third
    // batch (where requeue() without the event puts x) is cut only then
    const first = new Set(refs.slice(0, 16).map(r => r.cid!.toString()))
    const second = new Set(refs.slice(16, 48).flatMap(r => r.fragments.map(f => f.toString())))
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const has = c.swarm.has
    c.swarm = { ...c.swarm, has: async (cids, peer, o) => { const out = await has(cids, peer, o); if (cids.some(f => second.has(f.toString()))) await gate; return out } }
    let through = 0
    const r = new Repairer(c, { intervalMs: 0 })
    // h4 comes back (and the membership says so) once x, the first chunk taken, was found short
    r.addEventListener('progress', () => {
      if (!live.has('h4')) { live.add('h4'); events.dispatchEvent(new CustomEvent('back', { detail: 'h4' })) }
      if (++through >= first.size) release()
    })
    r.start()
    try {
      const p = await r.pass()
      const x1 = x.fragments[1].toString()
      const again = asked.findIndex(a => a.peer === 'h4' && a.cid === x1)
      assert.ok(again >= 0, 'h4, back during the pass, was asked about the fragment of x it holds')
      const third = new Set(refs.slice(48, 48 + REPAIR_BATCH).flatMap(ref => ref.fragments.map(f => f.toString())))
      const thirdAt = asked.findIndex(a => third.has(a.cid))
      assert.ok(thirdAt >= 0 && again < thirdAt, `x was surveyed again (ask ${again}) before the third batch was (ask ${thirdAt})`)
      assert.equal(p.checked, refs.length, 'x is counted once')
      assert.equal(p.failed, 0)
    } finally {
      release()
      await r.stop()
    }
  })

  it('a chunk that hosts going put at risk goes ahead of the rest of the pass (the health book\'s order)', async () => {
    // y: targets h4, h5, h6, last in the list; 4 batches, y in the last
    const y = await chunk(4)
    const refs = [...await plainChunks(3 * REPAIR_BATCH + 50), y]
    const health = new HealthBook()
    const { c, live, asked } = world(refs, health)
    const r = new Repairer(c, { intervalMs: 0 })
    r.start()
    try {
      // a first pass with every host up: the book saw every chunk with 3 live fragments
      await r.pass()
      asked.length = 0
      // the second: h4 and h5 go while it works through its first batch; y is left with 1
      // live fragment, every other chunk with 3
      r.addEventListener('progress', () => { live.delete('h4'); live.delete('h5') })
      await r.pass()
      const y2 = y.fragments[2].toString()
      const atY = asked.findIndex(a => a.cid === y2)
      assert.ok(atY >= 0, 'y was surveyed')
      const third = new Set(refs.slice(2 * REPAIR_BATCH, 3 * REPAIR_BATCH).flatMap(ref => ref.fragments.map(f => f.toString())))
      const firstOfThird = asked.findIndex(a => third.has(a.cid))
      assert.ok(atY < firstOfThird, 'y, last in the list, was surveyed before the third batch\'s chunks of the list (with the third batch instead of the fourth)')
    } finally {
      await r.stop()
    }
  })

  it('requeue: only the short chunks one of whose first-ranked hosts came back', async () => {
    const a = await chunk(3) // ranks h3..h7
    const b = await chunk(8) // ranks h8..h11, h0
    // the fake ranks by offset; requeue() passes its refs through
    const policy = { rank } as unknown as Pick<PlacementPolicy, 'rank'>
    assert.deepEqual([...requeue([a, b], ['h0', 'h3'], ['h0', 'h3'], MEMBERS, policy)], [], 'nobody came back')
    assert.deepEqual([...requeue([a, b], ['h0', 'h3'], ['h0', 'h5'], MEMBERS, policy)], [a], 'h5 came back (h3 went: no matter)')
    assert.deepEqual([...requeue([a, b], ['h0'], ['h0', 'h9', 'h7'], MEMBERS, policy)], [a, b])
    assert.deepEqual([...requeue([a, b], ['h0'], ['h0', 'h2'], MEMBERS, policy)], [], 'h2 ranks for neither among its first five')
  })
})
