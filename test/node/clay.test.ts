import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ClayCode, MAX_SUBCHUNKS } from '../../node/data/clay.ts'
import { ErasureError, encode as rsEncode, kernels, reconstruct as rsReconstruct } from '../../node/data/erasure.ts'
import type { Kernel } from '../../node/data/erasure.ts'
import { seededBytes as bytes } from '../../harness/prng.ts'
import { CHUNK_SIZE } from '../../node/data/chunks.ts'
import { LEAF_BYTES } from '../../node/data/merkle.ts'
import { MAX_RANGE_LEAVES } from '../../swarm/index.ts'

/** Every subset of {0..n-1} with exactly `size` members, ascending. */
function choose (n: number, size: number): number[][] {
  const out: number[][] = []
  const pick = (from: number, acc: number[]): void => {
    if (acc.length === size) { out.push(acc); return }
    for (let i = from; i <= n - (size - acc.length); i++) pick(i + 1, [...acc, i])
  }
  pick(0, [])
  return out
}

function keepOnly (frags: Uint8Array[], keep: number[]): Array<Uint8Array | undefined> {
  return frags.map((f, i) => keep.includes(i) ? f : undefined)
}

/** What fragment `i`'s holder sends for a repair of `lost`: its sub-chunks repairSubChunks(lost), one after another. */
function send (code: ClayCode, frag: Uint8Array, lost: number): Uint8Array {
  const s = frag.length / code.alpha
  const subs = code.repairSubChunks(lost)
  const out = new Uint8Array(subs.length * s)
  subs.forEach((z, j) => out.set(frag.subarray(z * s, (z + 1) * s), j * s))
  return out
}

function helpedBy (code: ClayCode, frags: Uint8Array[], lost: number, helpers: number[]): Array<Uint8Array | undefined> {
  const helped: Array<Uint8Array | undefined> = new Array(code.n).fill(undefined)
  for (const i of helpers) helped[i] = send(code, frags[i], lost)
  return helped
}

const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

/** The kernels to test: TypeScript always, ISA-L when the addon is built (erasure.test.ts fails when it should be and is not). */
const kernelList: Array<[string, Kernel | undefined]> = [['typescript', kernels.typescript], ['native', kernels.native]]

describe('clay', () => {
  it('derives q, t, alpha, beta and the virtual nodes from (k, m, d) as the paper does; d defaults to n - 1', () => {
    const shape = (c: ClayCode): number[] => [c.q, c.t, c.alpha, c.beta, c.virtual]
    assert.deepEqual(shape(new ClayCode(4, 2)), [2, 3, 8, 4, 0])
    assert.equal(new ClayCode(4, 2).d, 5)
    assert.deepEqual(shape(new ClayCode(3, 3, 5)), [3, 2, 9, 3, 0])
    assert.deepEqual(shape(new ClayCode(6, 3, 7)), [2, 5, 32, 16, 1])
    assert.deepEqual(shape(new ClayCode(8, 3, 10)), [3, 4, 81, 27, 1])
    assert.deepEqual(shape(new ClayCode(10, 4, 13)), [4, 4, 256, 64, 2])
    assert.deepEqual(shape(new ClayCode(4, 2, 4)), [1, 6, 1, 1, 0]) // d = k: plain Reed–Solomon
    assert.equal(new ClayCode(4, 2).fragmentSize(1 << 20), 1 << 18)
    assert.equal(new ClayCode(4, 2).subChunkSize(0), 4)
    assert.equal(new ClayCode(4, 2).subChunkSize(33), 4) // ceil(33 / 32) = 2, up to 4
    assert.equal(new ClayCode(4, 2).subChunkSize(1000), 32) // ceil(1000 / 32) = 32
  })

  it('refuses bad parameters with ErasureError', () => {
    const bad: Array<[number, number, number]> = [[0, 2, 1], [4, 0, 4], [4, 2, 6], [4, 2, 3], [1.5, 2, 2], [4, 2, 4.5], [200, 60, 259]]
    for (const [k, m, d] of bad) assert.throws(() => new ClayCode(k, m, d), ErasureError, `${k}+${m} d=${d}`)
    // 30+6, d = 35: q = 6, t = 6, alpha = 46656
    assert.throws(() => new ClayCode(30, 6, 35), (e: Error) => e instanceof ErasureError && e.message.includes(String(MAX_SUBCHUNKS)))
    assert.throws(() => new ClayCode(4, 2, 5, { gamma: 1 }), ErasureError)
  })

  it('4+2 d=5 on a whole chunk: data fragments cut as erasure.ts cuts them, and every run a helper sends is whole Merkle leaves, one range want each (the sub-chunk reads repair would make)', () => {
    const code = new ClayCode(4, 2, 5)
    assert.equal(code.fragmentSize(CHUNK_SIZE), CHUNK_SIZE / 4)
    const data = bytes(CHUNK_SIZE, 11)
    const ours = code.encode(data)
    rsEncode(data, 4, 2).slice(0, 4).forEach((f, j) => assert.ok(eq(f, ours[j]), `data fragment ${j}`))
    const s = code.subChunkSize(CHUNK_SIZE)
    assert.equal(s % LEAF_BYTES, 0)
    for (let lost = 0; lost < 6; lost++) {
      const runs = code.repairRuns(lost)
      assert.equal(runs.reduce((n, r) => n + r.count, 0), code.beta)
      for (const r of runs) assert.ok(r.count * s / LEAF_BYTES <= MAX_RANGE_LEAVES)
    }
  })

  for (const [name, kernel] of kernelList) {
    describe(`${name} kernel${kernel === undefined ? ' (skipped: the addon is not built)' : ''}`, () => {
      before(function () { if (kernel === undefined) this.skip() })
      const make = (k: number, m: number, d?: number, gamma?: number): ClayCode => new ClayCode(k, m, d, { kernel, gamma })

      for (const [k, m, d] of [[4, 2, 5], [3, 3, 5], [6, 3, 7], [5, 3, 6], [8, 3, 9]] as Array<[number, number, number]>) {
        it(`${k}+${m} d=${d}: decode and reconstruct from every k-subset give the data and the fragments (property over lengths)`, () => {
          const code = make(k, m, d)
          const subsets = choose(k + m, k)
          fc.assert(fc.property(fc.integer({ min: 0, max: 3000 }), fc.nat(), (length, seed) => {
            const data = bytes(length, seed)
            const frags = code.encode(data)
            assert.equal(frags.length, k + m)
            for (const f of frags) assert.equal(f.length, code.fragmentSize(length))
            for (const keep of subsets) {
              const part = keepOnly(frags, keep)
              const all = code.reconstruct(part)
              all.forEach((f, i) => assert.ok(eq(f, frags[i]), `fragment ${i} from ${keep.join(',')}`))
              assert.ok(eq(code.decode(part, length), data), `decode from ${keep.join(',')}`)
            }
          }), { numRuns: 8 })
        })

        it(`${k}+${m} d=${d}: repair of every fragment from every d-subset of helpers that holds its column mates equals the fragment; the others are refused`, () => {
          const code = make(k, m, d)
          const data = bytes(4 * k * code.alpha * 3 + 5, k * 100 + d)
          const frags = code.encode(data)
          let repaired = 0
          for (let lost = 0; lost < k + m; lost++) {
            const others = Array.from({ length: k + m }, (_, i) => i).filter(i => i !== lost)
            const mates = code.columnMates(lost)
            for (const pick of choose(others.length, d)) {
              const helpers = pick.map(j => others[j])
              const helped = helpedBy(code, frags, lost, helpers)
              if (mates.every(i => helpers.includes(i))) {
                assert.ok(eq(code.repair(lost, helped), frags[lost]), `repair ${lost} from ${helpers.join(',')}`)
                assert.deepEqual(new Set(code.repairHelpers(lost, helpers)), new Set(helpers))
                repaired++
              } else {
                assert.throws(() => code.repair(lost, helped), (e: Error) => e instanceof ErasureError && e.message.includes('column mates'))
                assert.equal(code.repairHelpers(lost, helpers), undefined)
              }
            }
          }
          assert.ok(repaired >= k + m)
        })
      }

      for (const [k, m, d] of [[8, 3, 10], [10, 4, 13]] as Array<[number, number, number]>) {
        it(`${k}+${m} d=${d} (virtual nodes): every fragment repairs from the n - 1 others; decode from random k-subsets (property)`, () => {
          const code = make(k, m, d)
          const data = bytes(4 * k * code.alpha * 2 - 3, k)
          const frags = code.encode(data)
          for (let lost = 0; lost < k + m; lost++) {
            const helpers = code.repairHelpers(lost, Array.from({ length: k + m }, (_, i) => i)) as number[]
            assert.equal(helpers.length, d)
            assert.ok(eq(code.repair(lost, helpedBy(code, frags, lost, helpers)), frags[lost]), `repair ${lost}`)
          }
          fc.assert(fc.property(fc.shuffledSubarray(Array.from({ length: k + m }, (_, i) => i), { minLength: k, maxLength: k }), keep => {
            const part = keepOnly(frags, keep)
            assert.ok(eq(code.decode(part, data.length), data))
            code.reconstruct(part).forEach((f, i) => assert.ok(eq(f, frags[i]), `fragment ${i} from ${keep.join(',')}`))
          }), { numRuns: 15 })
        })
      }

      it('fewer than m lost (one): reconstruct rebuilds it; encode, reconstruct and repair take views at unaligned offsets', () => {
        const code = make(4, 2, 5)
        const data = bytes(5000, 13)
        const frags = code.encode(data)
        const odd = (b: Uint8Array, by: number): Uint8Array => { const c = new Uint8Array(b.length + by); c.set(b, by); return c.subarray(by) }
        code.encode(odd(data, 1)).forEach((f, i) => assert.ok(eq(f, frags[i]), `encode of an unaligned view: fragment ${i}`))
        const unaligned = frags.map(f => odd(f, 1))
        for (let lost = 0; lost < 6; lost++) {
          const all = code.reconstruct(unaligned.map((f, i) => i === lost ? undefined : f))
          assert.ok(eq(all[lost], frags[lost]), `reconstruct ${lost}`)
          const helped = helpedBy(code, frags, lost, [0, 1, 2, 3, 4, 5].filter(i => i !== lost)).map(h => h === undefined ? undefined : odd(h, 3))
          assert.ok(eq(code.repair(lost, helped), frags[lost]), `repair ${lost}`)
        }
      })

      it('a repair reads exactly d * alpha / q sub-chunks, and every byte it reads matters (flipping any one changes the result)', () => {
        for (const [k, m, d] of [[4, 2, 5], [6, 3, 7], [3, 3, 5]] as Array<[number, number, number]>) {
          const code = make(k, m, d)
          const s = 8
          const data = bytes(k * code.alpha * s, 7)
          const frags = code.encode(data)
          for (let lost = 0; lost < k + m; lost++) {
            const subs = code.repairSubChunks(lost)
            assert.equal(subs.length, code.alpha / code.q)
            assert.deepEqual(code.repairRuns(lost).flatMap(r => Array.from({ length: r.count }, (_, j) => r.start + j)), subs)
            const helpers = code.repairHelpers(lost, Array.from({ length: k + m }, (_, i) => i)) as number[]
            const helped = helpedBy(code, frags, lost, helpers)
            const read = helped.reduce((n, h) => n + (h?.length ?? 0), 0)
            assert.equal(read, d * (code.alpha / code.q) * s)
            assert.equal(read / frags[0].length, d / code.q) // fragments' worth: 2.5 for 4+2 d=5
            for (const i of helpers) {
              for (let z = 0; z < subs.length; z++) {
                const h = helped[i] as Uint8Array
                h[z * s] ^= 1
                assert.ok(!eq(code.repair(lost, helped), frags[lost]), `helper ${i}'s sub-chunk ${subs[z]} for lost ${lost} made no difference`)
                h[z * s] ^= 1
              }
            }
          }
        }
      })

      it('with d = k (alpha = 1) it is erasure.ts\'s Reed–Solomon code byte for byte', () => {
        fc.assert(fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 300 }), fc.nat(), (k, m, words, seed) => {
          const code = make(k, m, k)
          const data = bytes(4 * k * words, seed)
          const frags = code.encode(data)
          const rs = rsEncode(data, k, m)
          frags.forEach((f, i) => assert.ok(eq(f, rs[i]), `fragment ${i}`))
          const lost = Array.from({ length: m }, (_, j) => (seed + j * 3) % (k + m))
          const part = frags.map((f, i) => lost.includes(i) ? undefined : f)
          const ours = code.reconstruct(part)
          rsReconstruct(part, k, m).forEach((f, i) => assert.ok(eq(f, ours[i])))
        }), { numRuns: 40 })
      })

      it('with the coupling removed (gamma = 0) each plane is a Reed–Solomon codeword of the data sub-chunks (and zeros for virtual nodes); repair refuses', () => {
        for (const [k, m, d] of [[4, 2, 5], [8, 3, 10], [3, 3, 5]] as Array<[number, number, number]>) {
          const code = make(k, m, d, 0)
          const s = 12
          const data = bytes(k * code.alpha * s, d)
          const frags = code.encode(data)
          for (let z = 0; z < code.alpha; z++) {
            const plane = new Uint8Array((k + code.virtual) * s)
            for (let j = 0; j < k; j++) plane.set(frags[j].subarray(z * s, (z + 1) * s), j * s)
            const rs = rsEncode(plane, k + code.virtual, m)
            for (let j = 0; j < m; j++) assert.ok(eq(frags[k + j].subarray(z * s, (z + 1) * s), rs[k + code.virtual + j]), `plane ${z} parity ${j}`)
          }
          assert.ok(eq(code.decode(keepOnly(frags, Array.from({ length: k }, (_, i) => m + i)), data.length), data))
          assert.throws(() => code.repair(0, helpedBy(code, frags, 0, Array.from({ length: d }, (_, i) => i + 1))), ErasureError)
        }
        // and the coupled code is not that: its parity differs
        const coupled = make(4, 2, 5).encode(bytes(4 * 8 * 12, 5))
        const uncoupled = make(4, 2, 5, 0).encode(bytes(4 * 8 * 12, 5))
        assert.ok(!eq(coupled[4], uncoupled[4]))
      })

      it('decode, reconstruct and repair refuse wrong or short input with ErasureError, naming the problem', () => {
        const code = make(4, 2, 5)
        const data = bytes(1000, 3)
        const frags = code.encode(data)
        const refuses = (fn: () => unknown, words: string): void => {
          assert.throws(fn, (e: Error) => e instanceof ErasureError && e.message.includes(words), words)
        }
        refuses(() => code.decode(keepOnly(frags, [0, 1, 5]), 1000), '3 of 6 fragments present, 4 needed')
        refuses(() => code.decode([frags[0], frags[1].subarray(4), frags[2], frags[3]], 1000), 'same length')
        refuses(() => code.decode(frags.map(f => f.subarray(0, 36)), 10), 'sub-chunks of a positive multiple of 4')
        refuses(() => code.decode([...frags, frags[0]], 1000), 'got 7 fragments')
        refuses(() => code.decode(frags, 4 * frags[0].length + 1), 'exceeds')
        refuses(() => code.decode(frags, -1), 'length must be')
        refuses(() => code.decode([frags[0], 'x' as unknown as Uint8Array, frags[2], frags[3]], 10), 'not a Uint8Array')
        refuses(() => code.encode('abc' as unknown as Uint8Array), 'data must be')
        const helped = helpedBy(code, frags, 0, [1, 2, 3, 4, 5])
        refuses(() => code.repair(0, helped.map((h, i) => i === 5 ? undefined : h)), '4 helpers sent sub-chunks, repair takes exactly d = 5')
        refuses(() => code.repair(0, helped.map((h, i) => i === 0 ? frags[0] : h)), 'lost fragment itself')
        refuses(() => code.repair(0, helped.map((h, i) => i === 3 ? h?.subarray(4) : h)), 'every helper sends the same')
        refuses(() => code.repair(0, helped.map(h => h?.subarray(0, 8))), 'sub-chunks of a positive multiple of 4')
        refuses(() => code.repair(0, helped.map(h => h?.subarray(0, 0))), 'sub-chunks of a positive multiple of 4')
        refuses(() => code.repair(6, helped), 'lost must be a fragment index below 6')
        refuses(() => code.repair(-1, helped), 'lost must be')
        refuses(() => code.repair(0, [...helped, frags[0]]), 'got 7 helper entries')
        assert.throws(() => code.repairSubChunks(6), ErasureError)
        // 6+3 d=7: fragment 0's column mate is fragment 1; helpers without it are refused
        const wide = make(6, 3, 7)
        const wf = wide.encode(bytes(2000, 9))
        refuses(() => wide.repair(0, helpedBy(wide, wf, 0, [2, 3, 4, 5, 6, 7, 8])), 'column mates 1')
      })
    })
  }

  it('the native and TypeScript kernels give identical fragments and repairs', function () {
    if (kernels.native === undefined) this.skip()
    for (const [k, m, d] of [[4, 2, 5], [8, 3, 10], [10, 4, 13]] as Array<[number, number, number]>) {
      const a = new ClayCode(k, m, d, { kernel: kernels.native })
      const b = new ClayCode(k, m, d, { kernel: kernels.typescript })
      const data = bytes(70000, k)
      const fa = a.encode(data)
      const fb = b.encode(data)
      fa.forEach((f, i) => assert.ok(eq(f, fb[i]), `${k}+${m} fragment ${i}`))
      const helpers = a.repairHelpers(k, Array.from({ length: k + m }, (_, i) => i)) as number[]
      assert.ok(eq(a.repair(k, helpedBy(a, fa, k, helpers)), b.repair(k, helpedBy(b, fb, k, helpers))))
    }
  })
})
