// keeper/network.ts survivesOneLoss: what an fsync waits for (DESIGN.md §5, "one lost host loses
// nothing"): two holders of a replicated chunk's block; k fragments left whichever host goes.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { survivesOneLoss } from '../../node/keeper/index.ts'

const held = (...hosts: string[][]): Array<Set<string>> => hosts.map(h => new Set(h))

describe('keeper survivesOneLoss', function () {
  it('a replicated chunk (k = 1) needs a second holder of its block', () => {
    assert.equal(survivesOneLoss(held(['w'], [], []), 1), false)
    assert.equal(survivesOneLoss(held(['w', 'a'], [], []), 1), true)
    // only the block (index 0) counts: copy indexes are filled in after the placement
    assert.equal(survivesOneLoss(held(['w'], ['a'], ['b']), 1), false)
  })

  it('an erasure-coded chunk (k = 4, m = 2) written here: the writer holds all six, peers must hold four', () => {
    const all = ['w']
    assert.equal(survivesOneLoss(held(all, all, all, all, all, all), 4), false)
    assert.equal(survivesOneLoss(held(['w', 'a'], ['w', 'b'], ['w', 'c'], all, all, all), 4), false)
    assert.equal(survivesOneLoss(held(['w', 'a'], ['w', 'b'], ['w', 'c'], all, all, ['w', 'd']), 4), true)
    // four fragments on one peer: losing the writer leaves them, losing that peer leaves the writer's
    assert.equal(survivesOneLoss(held(['w', 'a'], ['w', 'a'], ['w', 'a'], ['w', 'a'], all, all), 4), true)
    // after a handover (the writer keeps its own fragment only): five hosts of six fragments
    assert.equal(survivesOneLoss(held(['w'], ['a'], ['b'], ['c'], ['d'], []), 4), true)
    assert.equal(survivesOneLoss(held(['w'], ['a'], ['b'], ['c'], [], []), 4), false)
  })

  it('agrees with dropping each host in turn and counting the fragments left, and more holders never hurt', () => {
    const hostsArb = fc.subarray(['w', 'a', 'b', 'c', 'd', 'e'])
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.array(hostsArb, { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 5 }), fc.constantFrom('w', 'a', 'f'), (k, hs, j, extra) => {
      const h = hs.map(x => new Set(x))
      const sets = k === 1 ? h.slice(0, 1) : h
      const everyone = new Set(sets.flatMap(s => [...s]))
      const expected = everyone.size >= 2 && [...everyone].every(lost => sets.filter(s => [...s].some(p => p !== lost)).length >= k)
      assert.equal(survivesOneLoss(h, k), expected)
      if (expected && j < h.length) {
        h[j].add(extra)
        assert.equal(survivesOneLoss(h, k), true)
      }
    }), { numRuns: 500 })
  })
})
