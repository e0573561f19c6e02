// keeper/network.ts targetsHold: when a writer takes a chunk's placement as over (no longer
// pending). Counted against the hosts each fragment must be on (assignment.ts over the chunk's
// ranked members: those up and those away but not declared gone), not against how many hosts
// are connected: the old rule (as many hosts hold some fragment as are connected) called a chunk
// placed while a member coming back after a restart still lacked its fragment, and counted the
// writer's own copies of fragments it is no target of.
import assert from 'node:assert/strict'
import { assignment, targetsHold } from '../../node/keeper/index.ts'

const held = (...sets: string[][]): Array<Set<string>> => sets.map(s => new Set(s))

describe('keeper targetsHold (a placement is over)', function () {
  it('targetsHold(want, held) is false while one target, away but a member, lacks its fragment', () => {
    // 4+2 over six members; the writer W is no target and holds every fragment; F is away
    const ranked = ['A', 'B', 'C', 'D', 'E', 'F']
    const want = assignment(ranked, 4, 2)
    const acked = held(['W', 'A'], ['W', 'B'], ['W', 'C'], ['W', 'D'], ['W', 'E'], ['W'])
    // six hosts hold some fragment and six are connected (W and A..E): the old rule said placed
    assert.equal(new Set(acked.flatMap(s => [...s])).size, 6)
    assert.equal(targetsHold(want, acked), false)
    acked[5].add('F')
    assert.equal(targetsHold(want, acked), true)
  })

  it("targetsHold(want, held) counts no copy on a host that is not the fragment's target", () => {
    const want = assignment(['A', 'B', 'C', 'D'], 2, 2)
    // every fragment held twice, but fragment 3 by A and B (targets of 0 and 1), not by D
    assert.equal(targetsHold(want, held(['A', 'W'], ['B'], ['C'], ['A', 'B', 'W'])), false)
    assert.equal(targetsHold(want, held(['A'], ['B'], ['C'], ['D'])), true)
  })

  it('targetsHold([ranked], held) of a replicated chunk wants a copy on every ranked member', () => {
    // k = 1: fragment 0 stands for the m + 1 copies of one block
    const ranked = ['A', 'B', 'C']
    assert.equal(targetsHold([ranked], held(['W', 'A', 'B'])), false)
    assert.equal(targetsHold([ranked], held(['A', 'B', 'C'])), true)
  })

  it('targetsHold(want, held) with fewer members than fragments wants every copy assignment asks for', () => {
    // 4+2 on three members: each keeps one fragment, the other three on min(m + 1, 3) hosts each
    const want = assignment(['A', 'B', 'C'], 4, 2)
    assert.ok(want.some(hs => hs.length > 1))
    const one = want.map(hs => new Set([hs[0]]))
    assert.equal(targetsHold(want, one), false)
    assert.equal(targetsHold(want, want.map(hs => new Set(hs))), true)
  })

  it('targetsHold(want, held) with no target (no member to place on) is false', () => {
    assert.equal(targetsHold([], []), false)
    assert.equal(targetsHold([[], []], held(['W'], ['W'])), false)
  })
})
