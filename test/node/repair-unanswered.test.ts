// A keeper's pass whose survey could not ask a holder (node/keeper/repair.ts unsure()): beyond
// the full mesh a have-query is often cut when a connection is trimmed under it, and the plan
// takes that holder to hold nothing. The keeper rebuilt its fragment and pushed it again
// (bench:scale, 20 hosts: 22 deliveries for 6 fragments lost, 10.5 bytes moved per byte lost).
// Now a chunk that is not at risk even if the silent hosts hold their fragments is left to the
// next pass, which asks them again: nothing is fetched or pushed for it. Fakes stand for the
// network; chunk 0 ranks h0 (this host, its keeper), h1, h2.
import assert from 'node:assert/strict'
import { Repairer, unsure } from '../../node/keeper/repair.ts'
import type { RepairComponents } from '../../node/keeper/repair.ts'
import type { CID } from 'multiformats/cid'
import type { ChunkRef } from '../../node/data/index.ts'
import { MEMBERS, rank, chunk } from '../helpers/repair-chunks.ts'

interface World {
  c: RepairComponents
  /** Peers whose next have-query fails (their answer is cut). */
  silent: Set<string>
  /** Fragments fetched and pushed by the keeper. */
  pulled: string[]
  pushed: string[]
}

/** Chunk 0's fragment j held by its target ranked j; beyond the full mesh (every member up). */
function world (ref: ChunkRef): World {
  const holds = new Map<string, Set<string>>()
  rank(ref, MEMBERS, 3).forEach((h, j) => holds.set(h, new Set([ref.fragments[j].toString()])))
  const w = { silent: new Set<string>(), pulled: [], pushed: [] } as unknown as World
  w.c = {
    self: 'h0',
    membership: { live: () => ['h0', 'h5'], up: () => MEMBERS, away: () => [], addEventListener: () => {}, removeEventListener: () => {} },
    bounded: () => true,
    policy: { members: () => MEMBERS, copies: () => 3, rank },
    chunks: async () => ({ refs: [ref], unreadable: 0 }),
    store: {
      has: async (cid: CID) => holds.get('h0')?.has(cid.toString()) === true,
      get: async () => new Uint8Array(150),
      put: async () => {},
      putMany: async () => {},
      delete: async () => {}
    },
    swarm: {
      has: async (cids: CID[], peer: string) => {
        if (w.silent.delete(peer)) throw new Error(`peer ${peer} is gone: stream closed during a have-query`)
        return new Set(cids.map(f => f.toString()).filter(f => holds.get(peer)?.has(f) === true))
      },
      pullAny: async (cids: CID[]) => { w.pulled.push(...cids.map(f => f.toString())); throw new Error('no fetch expected') },
      push: async (ds: Array<{ cid: CID }>) => { w.pushed.push(...ds.map(d => d.cid.toString())); return new Map() }
    },
    custody: { drop: async () => [] }
  } as unknown as RepairComponents
  return w
}

describe('Repairer: a holder whose have-query was cut (node/keeper/repair.ts)', function () {
  it('the keeper rebuilds and pushes nothing for it; the next pass asks it again and the chunk is redundant', async () => {
    const ref = await chunk(0)
    const w = world(ref)
    const r = new Repairer(w.c, { intervalMs: 0 })
    r.start()
    try {
      w.silent.add('h1')
      const p = await r.pass()
      assert.deepEqual(w.pulled, [], 'nothing fetched to rebuild h1\'s fragment')
      assert.deepEqual(w.pushed, [], 'nothing pushed to h1')
      assert.equal(p.fragmentsRepaired, 0)
      assert.ok(!r.idle(), 'the pass leaves the chunk to the next')
      assert.deepEqual(r.leftover()['holders unanswered'], 1)
      const again = await r.pass()
      assert.equal(again.fragmentsRepaired, 0)
      assert.deepEqual(w.pushed, [])
      assert.ok(r.idle(), 'h1 answered: every chunk redundant, the pass settles')
    } finally {
      await r.stop()
    }
  })

  it('unsure(): the hosts to ask about a chunk that did not answer (every live peer in a full mesh, the ranked ones beyond)', async () => {
    const ref = await chunk(0)
    const live = new Set(MEMBERS)
    assert.deepEqual([...unsure(ref, live, new Set())], [])
    assert.deepEqual([...unsure(ref, live, new Set(['h1', 'h9']))].sort(), ['h1', 'h9'])
    assert.deepEqual([...unsure(ref, live, new Set(['h1', 'h9']), r => rank(r, MEMBERS, 5))], ['h1'])
    assert.deepEqual([...unsure(ref, new Set(['h0', 'h2']), new Set(['h1']), r => rank(r, MEMBERS, 5))], [])
  })
})
