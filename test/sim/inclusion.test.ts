// The sim's exact model of weighted rendezvous (harness/sim/inclusion.ts) against darkfs's own
// rendezvous(): the expected fragments per chunk it gives each member are what rendezvous()
// places, and where they part from proportional (a member holds at most one fragment of a chunk).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { capacityClass, placementWeights, rendezvous } from '../../node/keeper/index.ts'
import { rendezvousInclusion } from '../../harness/sim/inclusion.ts'
import { simHosts } from '../../harness/sim/hosts.ts'
import { prng } from '../../harness/prng.ts'

const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest())

describe('harness/sim/inclusion', function () {
  it('gives n / N to each of N equal members, and n in all', function () {
    for (const [N, n] of [[10, 3], [40, 6], [7, 1]]) {
      const pi = rendezvousInclusion(new Array(N).fill(5), n)
      assert.ok(Math.abs(pi.reduce((s, x) => s + x, 0) - n) < 1e-5)
      for (const x of pi) assert.ok(Math.abs(x - n / N) < 1e-5, `${x} vs ${n / N}`)
    }
    assert.deepEqual(rendezvousInclusion([1, 2, 0], 2), [1, 1, 0])
  })

  it('is what rendezvous() places, on skewed weights where it is far from proportional', function () {
    const weights = [1, 1, 1, 2, 4, 8, 16, 32]
    const n = 3
    const pi = rendezvousInclusion(weights, n)
    const cands = weights.map((weight, i) => ({ id: sha256(`peer ${i}`), weight }))
    const held = weights.map(() => 0)
    const keys = 30_000
    for (let k = 0; k < keys; k++) for (const i of rendezvous(sha256(`key ${k}`), cands, n)) held[i]++
    weights.forEach((w, i) => {
      const sd = Math.sqrt(pi[i] * (1 - pi[i]) / keys)
      // fixed keys: the same counts every run; 6 standard deviations of a fair draw
      assert.ok(Math.abs(held[i] / keys - pi[i]) < 6 * sd, `member ${i}: ${held[i] / keys} vs ${pi[i]}`)
    })
    // proportional would put 3 * 32 / 65 = 1.48 fragments of each chunk on the heaviest: it holds one at most
    const total = weights.reduce((s, w) => s + w, 0)
    assert.ok(pi[7] < 0.95 && pi[7] < n * weights[7] / total)
    assert.ok(pi[0] > n * weights[0] / total * 1.5, 'the light ones take the rest')
  })

  it('darkfs\'s weights over the sim\'s 1,000 disks of 0.25-8 TB put every host within 10% of its disk\'s share (issue 14 item 4), the rule itself within 1% of its weight\'s', function () {
    const hosts = simHosts(1000, prng(1014))
    const w = placementWeights(new Map(hosts.map(h => [h.peer, capacityClass(h.disk)])))
    const weights = hosts.map(h => w.get(h.peer)!)
    const pi = rendezvousInclusion(weights, 6, 0.03)
    const ratios = (share: number[]): number[] => {
      const total = share.reduce((s, x) => s + x, 0)
      return pi.map((p, i) => p / (6 * share[i] / total))
    }
    const vsDisk = ratios(hosts.map(h => h.disk))
    assert.ok(Math.max(...vsDisk) <= 1.1, `max ${Math.max(...vsDisk)}`)
    for (const r of ratios(weights)) assert.ok(Math.abs(r - 1) < 0.01, `vs weight ${r}`)
  })
})
