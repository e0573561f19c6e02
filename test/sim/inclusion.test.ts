// The sim's exact model of weighted rendezvous (harness/sim/inclusion.ts) against darkfs's own
// rendezvous(): the expected fragments per chunk it gives each member are what rendezvous()
// places, and where they part from proportional (a member holds at most one fragment of a chunk).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { rendezvous } from '../../node/keeper/index.ts'
import { rendezvousInclusion } from '../../harness/sim/inclusion.ts'

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
})
