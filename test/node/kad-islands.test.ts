// island34 (#14): whatever the connection bound, the connections the hosts want (kad.ts
// neighbours(), neighbourCount(bound) each) must join every member into one overlay. Before the
// ring successor led the neighbours, a host at bound 3 wanted only the closest member of its
// farthest bucket, and the union of those wants split into islands (member-pull.test.ts: 4 of 12
// hosts connected only to each other for 12 minutes).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { neighbours, ringNeighbours } from '../../node/net/kad.ts'
import { neighbourCount } from '../../node/net/host.ts'

/** `count` members named m0.. with random 32-byte kad ids, and the id lookup. */
function drawMembers (count: number): { members: string[], idOf: (peer: string) => Uint8Array } {
  const ids = new Map<string, Uint8Array>()
  for (let i = 0; i < count; i++) ids.set(`m${i}`, new Uint8Array(randomBytes(32)))
  return { members: [...ids.keys()], idOf: peer => ids.get(peer)! }
}

/** The connected components of the union of every member's wanted connections (as undirected edges). */
function components (members: string[], wants: Map<string, string[]>): number {
  const parent = new Map(members.map(m => [m, m]))
  const find = (m: string): string => {
    let r = m
    while (parent.get(r) !== r) r = parent.get(r)!
    parent.set(m, r)
    return r
  }
  for (const [m, ns] of wants) for (const n of ns) parent.set(find(m), find(n))
  return new Set(members.map(find)).size
}

describe('kad neighbours: no islands at any bound (island34, #14)', function () {
  this.timeout(120_000)
  const cases: Array<{ members: number, bounds: number[], sets: number }> = [
    { members: 4, bounds: [3, 4, 5, 8], sets: 40 },
    { members: 5, bounds: [3, 4, 6, 8], sets: 40 },
    { members: 7, bounds: [3, 4, 6, 12], sets: 40 },
    { members: 12, bounds: [3, 4, 5, 6, 8, 16], sets: 40 },
    { members: 33, bounds: [3, 4, 6, 8, 16, 64], sets: 20 },
    { members: 200, bounds: [3, 4, 8, 16, 64], sets: 4 },
    { members: 2000, bounds: [3, 64], sets: 1 }
  ]
  for (const c of cases) {
    it(`${c.members} members, bounds ${c.bounds.join(', ')}: the wanted connections form one component (${c.sets} random id sets)`, () => {
      for (let s = 0; s < c.sets; s++) {
        const { members, idOf } = drawMembers(c.members)
        for (const bound of c.bounds) {
          const n = neighbourCount(bound)
          const wants = new Map(members.map(m => [m, neighbours(m, members, n, idOf)]))
          for (const [m, ns] of wants) {
            assert.ok(ns.length === Math.min(n, members.length - 1) && !ns.includes(m) && new Set(ns).size === ns.length, `${m}: ${ns.length} distinct neighbours, not itself`)
          }
          const parts = components(members, wants)
          assert.equal(parts, 1, `bound ${bound} (${n} neighbours each), ${c.members} members: ${parts} islands`)
        }
      }
    })
  }

  it('ringNeighbours: each member is the predecessor of its successor, and the successor leads its neighbours', () => {
    for (const count of [2, 3, 9, 100]) {
      const { members, idOf } = drawMembers(count)
      for (const m of members) {
        const ring = ringNeighbours(m, members, idOf)!
        assert.equal(ringNeighbours(ring.successor, members, idOf)!.predecessor, m)
        assert.equal(neighbours(m, members, 1, idOf)[0], ring.successor)
      }
      // one cycle through all members: following successors from any member visits each once
      const seen = new Set<string>()
      let at = members[0]
      while (!seen.has(at)) { seen.add(at); at = ringNeighbours(at, members, idOf)!.successor }
      assert.equal(seen.size, count)
      assert.equal(at, members[0])
    }
    assert.equal(ringNeighbours('m0', ['m0'], drawMembers(1).idOf), undefined)
  })
})
