// repairDeliveries (node/keeper/repair.ts): what a chunk's repair pushes, as a pure function of
// its plan: the live targets lacking their fragment, never a suspect target (it may be back
// within the failure timeout, fragment and all), never a target that holds it.
import assert from 'node:assert/strict'
import { repairDeliveries } from '../../node/keeper/repair.ts'

describe('repairDeliveries (node/keeper/repair.ts)', () => {
  it('delivers to live targets that lack their fragment, and to no one else', () => {
    const want = [['a'], ['b'], ['c'], ['d', 'e']]
    const held = [new Set(['a']), new Set<string>(), new Set<string>(), new Set(['d'])]
    const live = new Set(['a', 'b', 'd', 'e'])
    // b lacks 1 (live), c lacks 2 (not live: left alone), e lacks 3 (d holds it, e is live)
    assert.deepEqual(repairDeliveries({ want, held }, live), [{ j: 1, to: ['b'] }, { j: 3, to: ['e'] }])
  })

  it('delivers nothing when every live target holds its fragment', () => {
    const want = [['a'], ['b'], ['c']]
    const held = [new Set(['a']), new Set(['b']), new Set<string>()]
    assert.deepEqual(repairDeliveries({ want, held }, new Set(['a', 'b'])), [])
  })
})
