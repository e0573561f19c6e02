// The health book (node/keeper/status.ts): what `darkfs status` counts, from what passes and
// placements saw, against the live hosts of now. Pure: no network.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cidOf } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { HealthBook, LOST_CONFIRM_MS, stateOf } from '../../node/keeper/index.ts'
import type { HealthView } from '../../node/keeper/index.ts'

function ref (k: number, m: number): ChunkRef {
  const fragments = Array.from({ length: k + m }, () => cidOf(randomBytes(16)))
  return { offset: 0, size: 100, cid: cidOf(randomBytes(16)), k, m, fragments } as unknown as ChunkRef
}

const view = (live: string[], more: Partial<HealthView> = {}): HealthView => ({
  self: 'A',
  live: new Set(live),
  placing: () => false,
  pendingHosts: () => 1,
  offline: false,
  ...more
})

describe('keeper status: the health book', () => {
  it('stateOf(): a chunk whose holders went away is unreachable, not lost', () => {
    const seen = { k: 2, held: [['A'], ['B'], ['C']], health: 'redundant' as const, incomplete: false, at: 1, alone: false }
    assert.equal(stateOf(seen, new Set(['A', 'B', 'C']), 'A'), 'redundant')
    assert.equal(stateOf(seen, new Set(['A', 'B']), 'A'), 'degraded')
    assert.equal(stateOf(seen, new Set(['A']), 'A'), 'unreachable')
    assert.equal(stateOf(undefined, new Set(['A', 'B']), 'A'), 'unknown')
    // seen while alone, peers back: unknown until looked at again
    assert.equal(stateOf({ ...seen, held: [['A'], [], []], health: 'localOnly', alone: true }, new Set(['A', 'B']), 'A'), 'unknown')
  })

  it('stateOf(): lost only when every host that could hold a fragment answered', () => {
    const short = { k: 2, held: [['B'], [], []], health: 'lost' as const, incomplete: false, at: 1, alone: false }
    assert.equal(stateOf(short, new Set(['A', 'B', 'C']), 'A'), 'lost')
    assert.equal(stateOf({ ...short, incomplete: true }, new Set(['A', 'B', 'C']), 'A'), 'unreachable')
    // alone, nothing is known lost
    assert.equal(stateOf({ ...short, held: [[], [], []] }, new Set(['A']), 'A'), 'unreachable')
  })

  it('book.liveSeen(): fragments the last survey saw on hosts live now (the order of a repair pass)', () => {
    const book = new HealthBook()
    const a = ref(2, 1)
    const copies = ref(1, 2)
    assert.equal(book.liveSeen(a, new Set(['A'])), undefined)
    book.observe(a, { held: [new Set(['A', 'D']), new Set(['B']), new Set(['C'])], health: 'redundant' }, false)
    assert.equal(book.liveSeen(a, new Set(['A', 'B', 'C'])), 3)
    assert.equal(book.liveSeen(a, new Set(['D', 'C'])), 2, 'fragment 0 on D, live; B away')
    assert.equal(book.liveSeen(a, new Set([])), 0)
    book.observe(copies, { held: [new Set(['A', 'B', 'C']), new Set(), new Set()], health: 'redundant' }, false)
    assert.equal(book.liveSeen(copies, new Set(['A', 'C'])), 2, 'a replicated block: live copies')
  })

  it('book.count(): pending chunks are placing while in flight, local-only offline; every figure has an age', () => {
    const book = new HealthBook()
    const a = ref(2, 1)
    const b = ref(2, 1)
    const c = ref(1, 1)
    book.listed(new Map([['m1', [a, b]]]), () => false)
    book.observe(a, { held: [new Set(['A']), new Set(['B']), new Set(['C'])], health: 'redundant' }, false, Date.now() - 5000)
    const s = book.count(['m1', 'm2'], [c], view(['A', 'B', 'C'], { placing: r => r === c }))
    assert.equal(s.total, 4)
    assert.equal(s.redundant, 1)
    assert.equal(s.unknown, 2, 'b never seen, m2 never read')
    assert.equal(s.placing, 1)
    assert.equal(s.lost, 0)
    assert.ok(s.ageMs.redundant! >= 5000)
    assert.equal(s.ageMs.placing, 0)
    assert.equal(s.ageMs.unknown, null)
    const offline = book.count(['m1'], [c], view(['A'], { placing: r => r === c, offline: true }))
    assert.equal(offline.placing, 0)
    assert.equal(offline.localOnly, 1)
    assert.equal(offline.unreachable, 1)
    assert.equal(offline.lost, 0)
  })

  it('book.observe(): lost only when a second complete survey LOST_CONFIRM_MS later agrees', () => {
    const book = new HealthBook()
    const a = ref(2, 1)
    const short = { held: [new Set(['B']), new Set<string>(), new Set<string>()], health: 'lost' as const }
    const t0 = Date.now() - 60_000
    assert.equal(book.observe(a, short, false, t0), 'confirm')
    const live = view(['A', 'B', 'C'])
    assert.equal(book.count(['m'], [], live).unknown, 1)
    book.listed(new Map([['m', [a]]]), () => false)
    assert.equal(book.count(['m'], [], live).unreachable, 1, 'one survey: not known lost')
    assert.equal(book.observe(a, short, false, t0 + 1000), 'confirm', 'too soon to confirm')
    assert.equal(book.observe(a, short, false, t0 + LOST_CONFIRM_MS), undefined)
    assert.equal(book.count(['m'], [], live).lost, 1)
    // a survey that could not ask everyone starts over
    book.observe(a, short, true, t0 + LOST_CONFIRM_MS + 1)
    assert.equal(book.count(['m'], [], live).unreachable, 1)
  })

  it('book.listed() forgets chunks no longer retained, keeps pending ones', () => {
    const book = new HealthBook()
    const a = ref(1, 1)
    const b = ref(1, 1)
    for (const r of [a, b]) book.observe(r, { held: [new Set(['A', 'B']), new Set(['A', 'B'])], health: 'redundant' }, false)
    book.listed(new Map(), k => k === b.cid!.toString())
    assert.deepEqual(book.unseen([]), [])
    book.listed(new Map([['m', [a, b]]]), () => false)
    assert.deepEqual(book.unseen(['m']).map(r => r.cid!.toString()), [a.cid!.toString()])
  })
})
