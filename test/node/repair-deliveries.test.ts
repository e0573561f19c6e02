// repairDeliveries (node/keeper/repair.ts): what a chunk's repair pushes, as a pure function of
// its plan: the live targets lacking their fragment, never a suspect target (it may be back
// within the failure timeout, fragment and all), never a target that holds it.
import assert from 'node:assert/strict'
import { keeperDeliveries, pullsHere, repairDeliveries } from '../../node/keeper/repair.ts'

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

// keeperDeliveries / pullsHere: a copy of a fragment the keeper does not hold, held by another
// live host, is left to a target that pulls (FEATURE_PULL), and that target's pass fetches it
// itself: one fragment's bytes, not two (fetched by the keeper, then pushed).
describe('keeperDeliveries, pullsHere (node/keeper/repair.ts)', () => {
  const cid = (n: number): { toString: () => string } => ({ toString: () => `f${n}` })
  // keeper k holds fragment 0; the joiner j is fragment 1's target, which d (displaced) holds;
  // fragment 2 was lost (nobody live holds it): the keeper rebuilds it for t
  const want = [['k'], ['j'], ['t']]
  const held = [new Set(['k']), new Set(['d']), new Set<string>()]
  const live = new Set(['k', 'j', 'd', 't'])
  const missing = repairDeliveries({ want, held }, live)

  it('leaves a copy the keeper lacks to a target that pulls, and delivers what it holds or rebuilds', () => {
    assert.deepEqual(missing, [{ j: 1, to: ['j'] }, { j: 2, to: ['t'] }])
    assert.deepEqual(keeperDeliveries(missing, { held }, live, 'k', () => true), [{ j: 2, to: ['t'] }])
  })

  it('delivers every copy itself to a target that does not pull, or with no pulls given (older hosts)', () => {
    assert.deepEqual(keeperDeliveries(missing, { held }, live, 'k', h => h !== 'j'), missing)
    assert.deepEqual(keeperDeliveries(missing, { held }, live, 'k'), missing)
  })

  it('delivers a copy it must hold too (it fetches it anyway) to every target, pulling or not', () => {
    const want2 = [['k'], ['j', 'k'], ['t']]
    const missing2 = repairDeliveries({ want: want2, held }, live)
    assert.deepEqual(missing2[0], { j: 1, to: ['j', 'k'] })
    assert.deepEqual(keeperDeliveries(missing2, { held }, live, 'k', () => true), missing2)
  })

  it('pushes a copy it holds itself (one fragment either way), and one whose only holder is not live', () => {
    const held2 = [new Set(['k']), new Set(['d', 'k']), new Set<string>()]
    assert.deepEqual(keeperDeliveries(missing, { held: held2 }, live, 'k', () => true), missing)
    assert.deepEqual(keeperDeliveries(missing, { held }, new Set(['k', 'j', 't']), 'k', () => true), missing)
  })

  it('the target pulls what its plan wants on it, lacks, and another host holds; nothing it holds or nobody holds', () => {
    const ref = { fragments: [cid(0), cid(1), cid(2)] } as any
    assert.deepEqual(pullsHere('j', ref, { want, held }, 'k'), [1])
    assert.deepEqual(pullsHere('t', ref, { want, held }, 'k'), [], 'a lost fragment is the keeper\'s to rebuild')
    assert.deepEqual(pullsHere('k', ref, { want, held }, 'k'), [], 'held already')
    assert.deepEqual(pullsHere('d', ref, { want, held }, 'k'), [], 'not wanted there')
    // what the keeper pushes (keeperDeliveries) the target does not pull too
    assert.deepEqual(pullsHere('j', ref, { want, held: [new Set(['k']), new Set(['d', 'k']), new Set<string>()] }, 'k'), [], 'the keeper holds it')
    assert.deepEqual(pullsHere('j', ref, { want: [['k'], ['j', 'k'], ['t']], held }, 'k'), [], 'the keeper must hold it too')
  })

  it('a replicated chunk (k = 1): its keeper is among the hosts wanted, so it delivers; one pull of its one block otherwise', () => {
    const ref = { fragments: [cid(0), cid(0), cid(0)] } as any
    const p = { want: [['a', 'b', 'c'], [], []], held: [new Set(['a']), new Set<string>(), new Set<string>()] }
    assert.deepEqual(pullsHere('b', ref, p, 'c'), [], 'the keeper must hold it too: it pushes it on')
    assert.deepEqual(pullsHere('b', ref, p, 'a'), [], 'the keeper holds it: it pushes it')
    assert.deepEqual(pullsHere('b', ref, p, 'x'), [0])
    assert.deepEqual(pullsHere('a', ref, p, 'x'), [], 'held already')
  })
})
