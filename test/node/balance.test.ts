// Capacity-aware placement (node/keeper/balance.ts): capacity classes, the weights every host
// derives from them, and weighted rendezvous over the XOR neighbourhood: deterministic, load
// following weight, and moving only what a joining or leaving candidate must.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  CAPACITY_CLASS_STEPS, CAPACITY_UNIT_BYTES, WEIGHT_CAP_CLASSES, balancedTargets, capacityClass, classWeight, placementWeights,
  rendezvous, rendezvousHash
} from '../../node/keeper/balance.ts'
import type { Candidate } from '../../node/keeper/balance.ts'
import { keyKadId, peerKadId, targets } from '../../node/keeper/placement.ts'
import { prng } from '../../harness/prng.ts'

const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest())
const id = (n: number): Uint8Array => sha256(new TextEncoder().encode(`peer ${n}`))
const keyOf = (n: number): Uint8Array => sha256(new TextEncoder().encode(`key ${n}`))
const GiB = CAPACITY_UNIT_BYTES

/** Candidates 0..count-1 with the given weights (ids: sha256 of their number, like kad ids). */
const candidates = (weights: number[]): Candidate[] => weights.map((weight, i) => ({ id: id(i), weight }))

describe('node/balance', function () {
  describe('capacityClass(bytes), classWeight(class)', function () {
    it('a disk of 1 GiB or less is class 0; each doubling adds CAPACITY_CLASS_STEPS', function () {
      assert.equal(capacityClass(0), 0)
      assert.equal(capacityClass(GiB), 0)
      assert.equal(capacityClass(2 * GiB), CAPACITY_CLASS_STEPS)
      assert.equal(capacityClass(1024 * GiB), 10 * CAPACITY_CLASS_STEPS)
      assert.equal(classWeight(10 * CAPACITY_CLASS_STEPS), 1024)
    })

    it('a class weighs within 4.5% of its disk size in GiB, and grows with the disk', function () {
      fc.assert(fc.property(fc.double({ min: 1.01, max: 2 ** 20, noNaN: true }), fc.double({ min: 1, max: 4, noNaN: true }), (gib, f) => {
        const w = classWeight(capacityClass(gib * GiB))
        assert.ok(Math.abs(w / gib - 1) <= 0.045, `${gib} GiB weighs ${w}`)
        assert.ok(capacityClass(gib * f * GiB) >= capacityClass(gib * GiB))
      }))
    })

    it('a change of a disk by 1% moves its class at most by one, and most often not at all', function () {
      const rand = prng(7)
      let moved = 0
      for (let i = 0; i < 1000; i++) {
        const bytes = (1 + rand() * 8191) * GiB
        const d = Math.abs(capacityClass(bytes * 1.01) - capacityClass(bytes))
        assert.ok(d <= 1)
        moved += d
      }
      // 1% of a doubling's eighth (9%) is about 1 in 9
      assert.ok(moved < 200, `${moved} of 1000 moved`)
    })

    it('capacityClass() rejects what is not a size', function () {
      for (const bad of [-1, NaN, Infinity]) assert.throws(() => capacityClass(bad), RangeError)
    })
  })

  describe('placementWeights(classes)', function () {
    it('is the class weight, a member that told none weighs as the median, none above the cap', function () {
      const w = placementWeights(new Map<string, number | undefined>([['a', 80], ['b', 88], ['c', 72], ['d', undefined], ['e', 200]]))
      assert.equal(w.get('a'), classWeight(80))
      assert.equal(w.get('c'), classWeight(72))
      assert.equal(w.get('d'), classWeight(80)) // lower median of 72, 80, 88, 200
      assert.equal(w.get('e'), classWeight(80 + WEIGHT_CAP_CLASSES))
      assert.equal(classWeight(80 + WEIGHT_CAP_CLASSES) / classWeight(80), 8)
    })

    it('is the same whatever the order the members are given in', function () {
      fc.assert(fc.property(fc.array(fc.option(fc.integer({ min: 0, max: 200 }), { nil: undefined }), { minLength: 1, maxLength: 40 }), fc.integer(), (classes, seed) => {
        const entries = classes.map((c, i) => [`p${i}`, c] as [string, number | undefined])
        const rand = prng(seed)
        const shuffled = entries.map(e => ({ e, r: rand() })).sort((a, b) => a.r - b.r).map(x => x.e)
        assert.deepEqual(new Map([...placementWeights(new Map(shuffled))].sort()), new Map([...placementWeights(new Map(entries))].sort()))
      }))
    })

    it('no single member, however large the class it announces, weighs more than 8 medians', function () {
      fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 3, maxLength: 40 }), fc.integer({ min: 0, max: 10_000 }), (honest, huge) => {
        const classes = new Map<string, number>(honest.map((c, i) => [`p${i}`, c]))
        classes.set('liar', huge)
        const w = placementWeights(classes)
        const sorted = [...classes.values()].sort((a, b) => a - b)
        assert.ok(w.get('liar')! <= classWeight(sorted[(sorted.length - 1) >> 1]) * 8 * (1 + 1e-9))
      }))
    })
  })

  describe('rendezvous(keyId, candidates, n)', function () {
    it('rendezvousHash() is in (0, 1) and depends on both ids', function () {
      const a = rendezvousHash(keyOf(1), id(1))
      assert.ok(a > 0 && a < 1)
      assert.notEqual(a, rendezvousHash(keyOf(2), id(1)))
      assert.notEqual(a, rendezvousHash(keyOf(1), id(2)))
    })

    it('picks n distinct candidates, the same set whatever their order, never one of weight 0', function () {
      fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 64 }), { minLength: 0, maxLength: 30 }), fc.integer({ min: 0, max: 8 }), fc.integer(), (weights, n, k) => {
        const cands = candidates(weights)
        const keyId = keyOf(k)
        const picked = rendezvous(keyId, cands, n)
        assert.equal(new Set(picked).size, picked.length)
        assert.equal(picked.length, Math.min(n, weights.filter(w => w > 0).length))
        for (const i of picked) assert.ok(weights[i] > 0)
        assert.deepEqual(rendezvous(keyId, cands, n), picked, 'deterministic')
        const reversed = [...cands].reverse()
        assert.deepEqual(rendezvous(keyId, reversed, n).map(i => cands.length - 1 - i), picked)
      }))
    })

    it('the first pick follows the weights: candidate i first for w_i / sum(w) of the keys', function () {
      const weights = [1, 2, 4, 8, 1]
      const cands = candidates(weights)
      const first = weights.map(() => 0)
      const keys = 40_000
      for (let k = 0; k < keys; k++) first[rendezvous(keyOf(k), cands, 1)[0]]++
      const total = weights.reduce((s, w) => s + w, 0)
      weights.forEach((w, i) => {
        const p = w / total
        const sd = Math.sqrt(p * (1 - p) / keys)
        // fixed keys: the same counts every run; 6 standard deviations of a fair draw
        assert.ok(Math.abs(first[i] / keys - p) < 6 * sd, `candidate ${i}: ${first[i] / keys} vs ${p}`)
      })
    })

    it('a host of twice the weight holds about twice the fragments (n of many)', function () {
      const weights = Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? 1 : 2))
      const cands = candidates(weights)
      const held = weights.map(() => 0)
      for (let k = 0; k < 20_000; k++) for (const i of rendezvous(keyOf(k), cands, 6)) held[i]++
      const light = held.filter((_, i) => i % 2 === 0).reduce((s, x) => s + x, 0)
      const heavy = held.filter((_, i) => i % 2 === 1).reduce((s, x) => s + x, 0)
      assert.ok(Math.abs(heavy / light - 2) < 0.1, `heavy / light = ${heavy / light}`)
    })

    it('a candidate that joins takes at most one place, and the others keep theirs', function () {
      fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 8 }), fc.integer(), (weights, w, n, k) => {
        const keyId = keyOf(k)
        const before = new Set(rendezvous(keyId, candidates(weights), n))
        const after = rendezvous(keyId, candidates([...weights, w]), n)
        const joiner = weights.length
        const entered = after.filter(i => !before.has(i))
        assert.ok(entered.length <= 1)
        if (entered.length === 1) assert.equal(entered[0], joiner, 'only the joiner enters')
        // what left is what the joiner displaced (or nothing, when there was room)
        const left = [...before].filter(i => !after.includes(i))
        assert.equal(left.length, before.size < n ? 0 : entered.length)
      }))
    })

    it('a candidate that leaves moves only its own place, to the next in score', function () {
      fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 2, maxLength: 30 }), fc.nat(), fc.integer({ min: 1, max: 8 }), fc.integer(), (weights, at, n, k) => {
        const keyId = keyOf(k)
        const cands = candidates(weights)
        const gone = at % weights.length
        const before = rendezvous(keyId, cands, n + 1)
        const after = rendezvous(keyId, cands.filter((_, i) => i !== gone), n).map(i => (i >= gone ? i + 1 : i))
        assert.deepEqual(after, before.filter(i => i !== gone).slice(0, n))
      }))
    })

    it('rendezvous() rejects a bad n', function () {
      for (const bad of [-1, 1.5, NaN]) assert.throws(() => rendezvous(keyOf(0), candidates([1]), bad), RangeError)
    })
  })

  describe('balancedTargets(key, members, weights, n, neighbourhood)', function () {
    let peers: string[]
    before(async function () {
      peers = await Promise.all(Array.from({ length: 40 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    })

    it('picks n of the neighbourhood XOR-closest members, as rendezvous() ranks them, the same for any member order', function () {
      const weights = new Map(peers.map((p, i) => [p, classWeight(60 + (i % 5) * 8)]))
      fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 40 }), (key, n, neighbourhood) => {
        const near = targets(key, peers, Math.max(n, neighbourhood))
        const got = balancedTargets(key, peers, weights, n, neighbourhood)
        assert.equal(got.length, Math.min(n, near.length))
        for (const p of got) assert.ok(near.includes(p))
        const want = rendezvous(keyKadId(key), near.map(p => ({ id: peerKadId(p), weight: weights.get(p)! })), n).map(i => near[i])
        assert.deepEqual(got, want)
        assert.deepEqual(balancedTargets(key, [...peers].reverse(), weights, n, neighbourhood), got)
      }), { numRuns: 50 })
    })

    it('ranks every member by default, and a member that joins takes only the places it wins', function () {
      const weights = new Map(peers.map((p, i) => [p, classWeight(60 + (i % 7) * 4)]))
      const old = peers.slice(0, 30)
      fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 8 }), (key, n) => {
        const got = balancedTargets(key, old, weights, n)
        const want = rendezvous(keyKadId(key), old.map(p => ({ id: peerKadId(p), weight: weights.get(p)! })), n).map(i => old[i])
        assert.deepEqual(got, want)
        const after = balancedTargets(key, [...old, peers[30]], weights, n)
        const entered = after.filter(p => !got.includes(p))
        assert.ok(entered.length === 0 || (entered.length === 1 && entered[0] === peers[30]))
      }), { numRuns: 100 })
    })
  })
})
