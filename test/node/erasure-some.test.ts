// reconstructSome (repair's rebuild, node/data/chunks.ts rebuildFragments): the wanted shards
// alone, byte-identical to what reconstruct gives for them, on both codecs.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ErasureError, codecs } from '../../node/data/erasure.ts'
import type { ErasureCodec } from '../../node/data/erasure.ts'
import { seededBytes as bytes } from '../../harness/prng.ts'

for (const name of ['typescript', 'native'] as const) {
  describe(`erasure reconstructSome, ${name} codec${name === 'native' && codecs.native === undefined ? ' (skipped: the addon is not built; erasure.test.ts says whether it must be)' : ''}`, () => {
    let codec: ErasureCodec
    before(function () {
      if (name === 'native' && codecs.native === undefined) this.skip()
      codec = name === 'native' ? codecs.native! : codecs.typescript
    })

    it('gives exactly the wanted shards, equal to the encoded ones, for any erasure pattern up to m; interleaved with reconstruct on one codec (its decoding matrices cached by the shards used and rebuilt) (property)', () => {
      fc.assert(fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 1e6 }), fc.infiniteStream(fc.integer({ min: 0, max: 1e9 })), (k, m, length, seed, rnd) => {
        const it = rnd[Symbol.iterator]()
        const next = (n: number): number => (it.next().value as number) % n
        const shards = codec.encode(bytes(length, seed), k, m).map(s => s.slice())
        const n = k + m
        const lost = new Set(Array.from({ length: next(m + 1) }, () => next(n)))
        const damaged = shards.map((s, i) => lost.has(i) ? undefined : s)
        const wanted = Array.from({ length: 1 + next(n) }, () => next(n))
        const got = codec.reconstructSome(damaged, k, m, wanted)
        assert.deepEqual([...got.keys()].sort((a, b) => a - b), [...new Set(wanted)].sort((a, b) => a - b))
        for (const [j, b] of got) {
          assert.deepEqual(Array.from(b), Array.from(shards[j]), `shard ${j}`)
          if (!lost.has(j)) assert.equal(b, damaged[j], `shard ${j} present: given back as is`)
        }
        // the full rebuild right after, through the same decoder cache
        assert.deepEqual(codec.reconstruct(damaged, k, m).map(s => Array.from(s)), shards.map(s => Array.from(s)))
      }), { numRuns: 300, seed: 15 })
    })

    it('a data shard and a parity shard lost: wanting the data shard rebuilds it, wanting the parity one rebuilds it (through the data shard)', () => {
      const k = 4
      const m = 2
      const shards = codec.encode(bytes(1 << 16, 3), k, m)
      const damaged = shards.map((s, i) => i === 1 || i === 5 ? undefined : s)
      assert.deepEqual(Array.from(codec.reconstructSome(damaged, k, m, [1]).get(1)!), Array.from(shards[1]))
      assert.deepEqual(Array.from(codec.reconstructSome(damaged, k, m, [5]).get(5)!), Array.from(shards[5]))
    })

    it('refuses bad wanted indices and too few shards with ErasureError', () => {
      const shards: Array<Uint8Array | undefined> = codec.encode(bytes(4000, 4), 4, 2)
      assert.throws(() => codec.reconstructSome(shards, 4, 2, [6]), ErasureError)
      assert.throws(() => codec.reconstructSome(shards, 4, 2, [-1]), ErasureError)
      assert.throws(() => codec.reconstructSome(shards, 4, 2, [1.5]), ErasureError)
      assert.throws(() => codec.reconstructSome([shards[0], undefined, undefined, undefined, shards[4], shards[5]], 4, 2, [1]), ErasureError)
    })
  })
}
