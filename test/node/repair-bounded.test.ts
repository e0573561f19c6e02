// A repair pass beyond the full mesh (node/keeper/repair.ts, issue 14): a host is connected to a
// few members only. Its pass asks each chunk's first-ranked hosts (targets and SURVEY_SPARE_RANKS
// more), dialled or not, and never the connected peers the chunk does not name; it plans over
// the members that are up (not the connected ones), so a chunk whose targets hold their
// fragments is redundant though none of them is connected here, and the pass settles: the
// timer runs none after it while nothing changes (every pass found chunks short before, as their
// targets were not connected, and an idle host surveyed again every interval). In a full mesh
// every connected peer is still asked about every chunk. Fakes stand for the network: who was
// asked what is recorded.
import assert from 'node:assert/strict'
import { Repairer, SURVEY_SPARE_RANKS } from '../../node/keeper/repair.ts'
import type { RepairComponents } from '../../node/keeper/repair.ts'
import type { CID } from 'multiformats/cid'
import type { ChunkRef } from '../../node/data/index.ts'
import { MEMBERS, rank, chunk } from '../helpers/repair-chunks.ts'


interface World {
  c: RepairComponents
  /** peer -> the fragment CIDs it was asked about, over every have-query. */
  asked: Map<string, Set<string>>
}

/** Every chunk's fragment j held by its target ranked j; this host connected to h1 and h2 only. */
function world (refs: ChunkRef[], bounded: boolean): World {
  const asked = new Map<string, Set<string>>()
  const holds = new Map<string, Set<string>>()
  for (const ref of refs) {
    const targets = rank(ref, MEMBERS, 3)
    ref.fragments.forEach((f, j) => { holds.set(targets[j], (holds.get(targets[j]) ?? new Set()).add(f.toString())) })
  }
  const connected = ['h0', 'h1', 'h2']
  const unused = (): never => { throw new Error('not used when every chunk is redundant') }
  const c: RepairComponents = {
    self: 'h0',
    membership: {
      live: () => connected,
      up: () => bounded ? MEMBERS : connected,
      away: () => [],
      addEventListener: () => {},
      removeEventListener: () => {}
    },
    bounded: () => bounded,
    policy: { members: () => MEMBERS, copies: () => 3, rank },
    chunks: async () => ({ refs, unreadable: 0 }),
    store: { has: async (cid: CID) => holds.get('h0')?.has(cid.toString()) === true, get: unused, put: unused, putMany: unused, delete: unused },
    swarm: {
      has: async (cids: CID[], peer: string) => {
        const a = asked.get(peer) ?? new Set<string>()
        for (const f of cids) a.add(f.toString())
        asked.set(peer, a)
        return new Set(cids.map(f => f.toString()).filter(f => holds.get(peer)?.has(f) === true))
      },
      pullAny: unused,
      push: unused
    },
    custody: { drop: async () => [] }
  } as unknown as RepairComponents
  return { c, asked }
}

describe('Repairer beyond the full mesh (node/keeper/repair.ts)', function () {
  it('a pass asks each chunk\'s first-ranked hosts only, finds the chunks redundant and settles', async () => {
    const refs = await Promise.all([3, 7].map(chunk))
    const { c, asked } = world(refs, true)
    const r = new Repairer(c, { intervalMs: 0 })
    r.start()
    try {
      const p = await r.pass()
      assert.equal(p.failed, 0)
      assert.equal(p.fragmentsRepaired, 0)
      assert.ok(r.idle(), 'the pass found every chunk redundant and settled')
      for (const [peer, cids] of asked) {
        for (const f of cids) {
          const ref = refs.find(x => x.fragments.some(g => g.toString() === f))!
          assert.ok(rank(ref, MEMBERS, 3 + SURVEY_SPARE_RANKS).includes(peer), `${peer} was asked about a chunk that does not name it`)
        }
      }
      // the connected peers h1 and h2 are not among either chunk's first five (3..7, 7..11)
      assert.ok(!asked.has('h1') && !asked.has('h2'), 'no connected peer the chunks do not name was asked')
      assert.deepEqual([...asked.keys()].sort(), ['h10', 'h11', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8', 'h9'])
    } finally {
      await r.stop()
    }
  })

  it('in a full mesh every connected peer is asked about every chunk', async () => {
    const refs = await Promise.all([3, 7].map(chunk))
    const { c, asked } = world(refs, false)
    const r = new Repairer(c, { intervalMs: 0 })
    r.start()
    try {
      await r.pass()
      assert.deepEqual([...asked.keys()].sort(), ['h1', 'h2'])
      for (const cids of asked.values()) assert.equal(cids.size, 6)
      assert.ok(!r.idle(), 'chunks whose targets are not connected are short in a full mesh: the pass does not settle')
    } finally {
      await r.stop()
    }
  })
})
