import assert from 'node:assert/strict'
import fc from 'fast-check'
import { assignment } from '../../node/keeper/assignment.ts'

/** Seeded like the other property tests: DARKFS_PROP_SEED=<n> replays, =random draws. */
const seed = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261121)
const hostsNamed = (n: number): string[] => Array.from({ length: n }, (_, i) => `h${i}`)

/** Fragments (distinct indexes) left with a holder after `lost` hosts are gone. */
function survivors (want: string[][], lost: Set<string>): number {
  return want.filter(hs => hs.some(h => !lost.has(h))).length
}

function subsets<T> (xs: T[], size: number): T[][] {
  if (size === 0) return [[]]
  if (xs.length < size) return []
  const [first, ...rest] = xs
  return [...subsets(rest, size - 1).map(s => [first, ...s]), ...subsets(rest, size)]
}

/** Holdings as assignment() takes them: per fragment index, its holders. */
const holding = (h: Map<number, Set<string>>): Array<Set<string>> => Array.from({ length: 16 }, (_, j) => h.get(j) ?? new Set())

describe('assignment(ranked, k, m, holds) (node/assignment.ts)', () => {
  it('assignment() of a fresh chunk puts fragment j on the host ranked j, one per host', () => {
    assert.deepEqual(assignment(hostsNamed(6), 4, 2), [['h0'], ['h1'], ['h2'], ['h3'], ['h4'], ['h5']])
    assert.deepEqual(assignment(hostsNamed(8), 4, 2), [['h0'], ['h1'], ['h2'], ['h3'], ['h4'], ['h5']])
  })

  it('assignment() with k = 1 puts copy j on ranked[j mod L]; with no hosts, nowhere', () => {
    assert.deepEqual(assignment(['a', 'b'], 1, 2), [['a'], ['b'], ['a']])
    assert.deepEqual(assignment([], 4, 2), [[], [], [], [], [], []])
  })

  it('assignment() after a target is lost moves only the fragment it held', () => {
    // h2 (fragment 2) is gone: h3..h5 now rank 2..4 and h6 joins the targets at rank 5
    const before = hostsNamed(7)
    const held = new Map([[0, new Set(['h0'])], [1, new Set(['h1'])], [3, new Set(['h3'])], [4, new Set(['h4'])], [5, new Set(['h5'])]])
    const after = assignment(before.filter(h => h !== 'h2'), 4, 2, holding(held))
    assert.deepEqual(after, [['h0'], ['h1'], ['h6'], ['h3'], ['h4'], ['h5']])
  })

  it('assignment() when a closer host joins moves only the fragment of the host it displaces', () => {
    // 'new' ranks first; h5 (fragment 5) falls out of the 6 targets
    const held = new Map(hostsNamed(6).map((h, j) => [j, new Set([h])]))
    const after = assignment(['new', ...hostsNamed(6)], 4, 2, holding(held))
    assert.deepEqual(after, [['h0'], ['h1'], ['h2'], ['h3'], ['h4'], ['new']])
  })

  it('assignment() with fewer hosts than fragments survives any min(m, L - 1) losses, with fewer copies than one per fragment per host', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 7 }), fc.array(fc.tuple(fc.nat(6), fc.nat(6)), { maxLength: 12 }), (k, m, L, pairs) => {
      const n = k + m
      const hosts = hostsNamed(L)
      const held = new Map<number, Set<string>>()
      for (const [j, h] of pairs) if (j < n && h < L) held.set(j, new Set([...(held.get(j) ?? []), hosts[h]]))
      const want = assignment(hosts, k, m, holding(held))
      assert.equal(want.length, n)
      for (const hs of want) {
        assert.ok(hs.length >= 1, 'every fragment has a host')
        assert.equal(new Set(hs).size, hs.length, 'no host twice for one fragment')
        for (const h of hs) assert.ok(hosts.includes(h))
      }
      const tolerate = Math.min(m, L - 1)
      for (const lost of subsets(hosts, tolerate)) {
        assert.ok(survivors(want, new Set(lost)) >= k, `losing ${lost.join(',')} leaves fewer than k=${k} of ${JSON.stringify(want)}`)
      }
      if (L >= n) assert.equal(new Set(want.flat()).size, n, 'enough hosts: one fragment per host')
      else assert.equal(want.flat().length, L + (n - L) * Math.min(m + 1, L), 'few hosts: L primaries and m + 1 copies of the rest')
    }), { seed, numRuns: 500 })
  })

  it('assignment() keeps every fragment held by a target on a target holding it (only missing fragments move)', () => {
    fc.assert(fc.property(fc.integer({ min: 6, max: 10 }), fc.array(fc.tuple(fc.nat(5), fc.nat(9)), { maxLength: 8 }), (L, pairs) => {
      const hosts = hostsNamed(L)
      const n = 6
      const held = new Map<number, Set<string>>()
      // each target holds at most one fragment (as after a clean placement and some losses)
      const used = new Set<string>()
      for (const [j, h] of pairs) {
        if (h >= L || used.has(hosts[h]) || held.has(j)) continue
        used.add(hosts[h])
        held.set(j, new Set([hosts[h]]))
      }
      const targets = hosts.slice(0, n)
      const want = assignment(hosts, 4, 2, holding(held))
      for (const [j, hs] of held) {
        const h = [...hs][0]
        if (targets.includes(h)) assert.deepEqual(want[j], [h], `fragment ${j} held by target ${h} stays`)
      }
      for (const hs of want) assert.ok(targets.includes(hs[0]), 'only the n closest are targets')
    }), { seed, numRuns: 500 })
  })

  it('assignment() with fewer hosts than fragments keeps a copy of every left-over fragment on the closest target (its keeper rebuilds it)', () => {
    // 6 hosts held fragments 0..5; h3 (fragment 3) is gone: fragment 3 goes on 3 hosts, h0 first
    const held = new Map(hostsNamed(6).filter(h => h !== 'h3').map(h => [Number(h.slice(1)), new Set([h])]))
    const want = assignment(hostsNamed(6).filter(h => h !== 'h3'), 4, 2, holding(held))
    assert.deepEqual(want, [['h0'], ['h1'], ['h2'], ['h0', 'h4', 'h5'], ['h4'], ['h5']])
    fc.assert(fc.property(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 7 }), (k, m, L) => {
      const hosts = hostsNamed(L)
      // one fragment per host, as after a clean placement and the loss of the hosts past L
      const held = new Map(hosts.map((h, j) => [j, new Set([h])]))
      const want = assignment(hosts, k, m, holding(held))
      for (let j = L; j < k + m; j++) assert.ok(want[j].includes('h0'), `left-over fragment ${j} on ${want[j].join(',')}`)
      // a layout that already holds its copies elsewhere is kept: nothing moves
      const spread = new Map(want.map((hs, j) => [j, new Set(hs.includes('h0') && hs.length > 1 ? [...hs.filter(h => h !== 'h0'), hosts[(j + 2) % L]] : hs)]))
      const again = assignment(hosts, k, m, holding(spread))
      for (let j = L; j < k + m; j++) if (spread.get(j)!.size >= Math.min(m + 1, L)) assert.deepEqual(new Set(again[j]), new Set([...spread.get(j)!].slice(0, Math.min(m + 1, L))))
    }), { seed, numRuns: 200 })
  })
})
