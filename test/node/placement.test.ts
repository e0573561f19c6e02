import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { base58btc } from 'multiformats/bases/base58'
import { erasureParams, replicaCount, placementPolicy, closest, targets, keeper, peerKadId, keyKadId, compareDistance, KAD_ID_CACHE_ENTRIES, MAX_DATA_FRAGMENTS, DEFAULT_REDUNDANCY, MAX_WIDTH, autoDataFragments } from '../../node/keeper/placement.ts'
import { MAX_FRAGMENTS } from '../../node/keeper/forward.ts'
import { rankByRule } from '../../node/keeper/index.ts'
import { placementWeights } from '../../node/keeper/balance.ts'
import { PLACEMENT_BALANCED } from '../../node/data/index.ts'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 as sha256Digest } from 'multiformats/hashes/sha2'

const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest())

function xorBigInt (a: Uint8Array, b: Uint8Array): bigint {
  let x = 0n
  for (let i = 0; i < a.length; i++) x = (x << 8n) | BigInt(a[i] ^ b[i])
  return x
}

describe('node/placement', function () {
  let peers: string[]
  before(async function () {
    peers = await Promise.all(Array.from({ length: 24 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
  })

  describe('erasureParams(liveHosts, redundancy)', function () {
    it('erasureParams(live, 2) follows the table of DESIGN.md §2 for redundancy 2', function () {
      const table: Array<[number, number, number]> = [[1, 1, 0], [2, 1, 1], [3, 1, 2], [4, 2, 2], [5, 3, 2], [6, 4, 2], [7, 4, 2], [100, 4, 2]]
      for (const [live, k, m] of table) assert.deepEqual(erasureParams(live, 2), { k, m }, `live=${live}`)
    })

    it('erasureParams(live, r) never needs more hosts than are live, and tolerates min(r, live - 1) losses', function () {
      for (let live = 1; live <= 40; live++) {
        for (let r = 0; r <= 6; r++) {
          const { k, m } = erasureParams(live, r)
          assert.ok(k >= 1 && k <= MAX_DATA_FRAGMENTS, `k=${k} live=${live} r=${r}`)
          assert.ok(k + m <= live, `k+m=${k + m} > live=${live} (r=${r})`)
          assert.equal(m, Math.min(r, live - 1), `m live=${live} r=${r}`)
          if (k === 1) assert.ok(live - r < 2, `replication only when small (live=${live} r=${r})`)
          else assert.equal(k, Math.min(MAX_DATA_FRAGMENTS, live - r))
        }
      }
    })

    it('erasureParams(live, 0) is a single copy or plain striping, no parity', function () {
      assert.deepEqual(erasureParams(1, 0), { k: 1, m: 0 })
      assert.deepEqual(erasureParams(3, 0), { k: 3, m: 0 })
      assert.deepEqual(erasureParams(9, 0), { k: 4, m: 0 })
    })

    it('erasureParams() rejects bad arguments with RangeError', function () {
      for (const live of [0, -1, 1.5, NaN, Infinity]) assert.throws(() => erasureParams(live, 2), RangeError, String(live))
      for (const r of [-1, 0.5, NaN]) assert.throws(() => erasureParams(5, r), RangeError, String(r))
      for (const K of [0, -1, 2.5, NaN, MAX_WIDTH + 1, 'wide']) assert.throws(() => erasureParams(5, 2, K as any), RangeError, String(K))
    })
  })

  describe('erasureParams(liveHosts, redundancy, dataFragments) (issue 14: width follows the network)', function () {
    it('the default bound is MAX_DATA_FRAGMENTS (4): today\'s rule', function () {
      for (let live = 1; live <= 40; live++) {
        for (let r = 0; r <= 6; r++) assert.deepEqual(erasureParams(live, r, MAX_DATA_FRAGMENTS), erasureParams(live, r))
      }
    })

    it('a fixed bound K: k = min(K, live - r) when >= 2, else replication; k + m <= live and <= MAX_WIDTH', function () {
      assert.equal(MAX_WIDTH, MAX_FRAGMENTS, 'a chunk of the widest code can still be placed through a relay')
      for (const K of [1, 2, 5, 6, 10, 16, 30]) {
        for (let live = 1; live <= 40; live++) {
          for (let r = 0; r <= 4; r++) {
            const { k, m } = erasureParams(live, r, K)
            const want = Math.min(K, live - r, MAX_WIDTH - r)
            if (want >= 2) assert.deepEqual({ k, m }, { k: want, m: r }, `K=${K} live=${live} r=${r}`)
            else assert.deepEqual({ k, m }, { k: 1, m: Math.min(r, live - 1) }, `K=${K} live=${live} r=${r}`)
            assert.ok(k + m <= live && k + m <= MAX_WIDTH)
          }
        }
      }
      assert.deepEqual(erasureParams(8, 2, 6), { k: 6, m: 2 })
      assert.deepEqual(erasureParams(14, 4, 10), { k: 10, m: 4 })
    })

    it('auto: today\'s rule below 12 hosts, then wider, keeping k <= 4m and m spare hosts for repair', function () {
      const table: Array<[number, number, number, number]> = [
        // live, r, k, m
        [6, 2, 4, 2], [11, 2, 4, 2], [12, 2, 8, 2], [23, 2, 8, 2], [24, 2, 8, 2], [200, 2, 8, 2],
        [12, 4, 4, 4], [15, 4, 7, 4], [16, 4, 8, 4], [23, 4, 8, 4], [24, 4, 16, 4], [200, 4, 16, 4],
        [30, 3, 12, 3], [100, 1, 4, 1], [100, 0, 4, 0], [3, 2, 1, 2], [5, 2, 3, 2]
      ]
      for (const [live, r, k, m] of table) assert.deepEqual(erasureParams(live, r, 'auto'), { k, m }, `live=${live} r=${r}`)
      for (let live = 1; live <= 64; live++) {
        for (let r = 0; r <= 8; r++) {
          const { k, m } = erasureParams(live, r, 'auto')
          const today = erasureParams(live, r)
          assert.ok(k >= today.k, `auto is never narrower than the default (live=${live} r=${r})`)
          if (live < 12) assert.deepEqual({ k, m }, today, `live=${live} r=${r}`)
          if (k > MAX_DATA_FRAGMENTS) {
            assert.ok(k + 2 * m <= live, `m spare hosts to repair onto (live=${live} r=${r}: ${k}+${m})`)
            assert.ok(k <= 4 * m, `k <= 4m (live=${live} r=${r}: ${k}+${m})`)
            assert.ok(k <= 16)
          }
          assert.equal(autoDataFragments(live, r) >= MAX_DATA_FRAGMENTS, true)
        }
      }
    })
  })

  describe('placementPolicy({ members }, { redundancy })', function () {
    it('placementPolicy() defaults to DEFAULT_REDUNDANCY (2) and applies it to params() and copies()', function () {
      const p = placementPolicy({ members: () => peers.slice(0, 6) })
      assert.equal(DEFAULT_REDUNDANCY, 2)
      assert.equal(p.redundancy, 2)
      assert.equal(p.dataFragments, MAX_DATA_FRAGMENTS)
      for (let live = 1; live <= 8; live++) assert.deepEqual(p.params(live), erasureParams(live, 2))
      assert.equal(p.copies(0, 6), replicaCount(0, 2, 6))
      assert.deepEqual(p.members(), peers.slice(0, 6))
    })

    it('placementPolicy(_, { redundancy: r }) gives the same r to params() and copies()', function () {
      for (let r = 0; r <= 4; r++) {
        const p = placementPolicy({ members: () => [] }, { redundancy: r })
        assert.equal(p.redundancy, r)
        for (let live = 1; live <= 8; live++) assert.deepEqual(p.params(live), erasureParams(live, r))
        for (let n = 1; n <= 8; n++) assert.equal(p.copies(0, n), Math.max(1, Math.min(r + 1, n)))
      }
    })

    it('placementPolicy(_, { dataFragments }) gives it to params(); a bad one is a RangeError', function () {
      for (const dataFragments of [6, 'auto'] as const) {
        const p = placementPolicy({ members: () => [] }, { redundancy: 4, dataFragments })
        assert.equal(p.dataFragments, dataFragments)
        for (let live = 1; live <= 40; live++) assert.deepEqual(p.params(live), erasureParams(live, 4, dataFragments))
      }
      assert.throws(() => placementPolicy({ members: () => [] }, { dataFragments: 0 }), RangeError)
    })

    it('placementPolicy() asks members() at each call (membership changes)', function () {
      let members = ['a']
      const p = placementPolicy({ members: () => members })
      members = ['a', 'b']
      assert.deepEqual(p.members(), ['a', 'b'])
    })

    it('rank() answers as rankByRule() over the members and classes of each call, through joins, leaves and class changes (its prepared list and rank cache)', async function () {
      const classes = new Map<string, number>()
      const p = placementPolicy({ members: () => [], capacityClass: peer => classes.get(peer) })
      const cids = await Promise.all(Array.from({ length: 6 }, async (_, i) => CID.createV1(raw.code, await sha256Digest.digest(new Uint8Array([i])))))
      const step = fc.oneof(
        fc.record({ kind: fc.constant('rank' as const), chunk: fc.integer({ min: 0, max: 5 }), rule: fc.constantFrom(undefined, PLACEMENT_BALANCED), n: fc.integer({ min: 1, max: 10 }) }),
        fc.record({ kind: fc.constant('join' as const), peer: fc.integer({ min: 0, max: peers.length - 1 }) }),
        fc.record({ kind: fc.constant('leave' as const), peer: fc.integer({ min: 0, max: peers.length - 1 }) }),
        fc.record({ kind: fc.constant('class' as const), peer: fc.integer({ min: 0, max: peers.length - 1 }), cls: fc.integer({ min: 0, max: 80 }) })
      )
      fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), steps => {
        classes.clear()
        let members = peers.slice(0, 8)
        for (const s of steps) {
          if (s.kind === 'join' && !members.includes(peers[s.peer])) members = [...members, peers[s.peer]]
          if (s.kind === 'leave') members = members.filter(m => m !== peers[s.peer])
          if (s.kind === 'class') classes.set(peers[s.peer], s.cls)
          if (s.kind !== 'rank') continue
          const ref = { cid: cids[s.chunk], rule: s.rule }
          const want = rankByRule(ref, members, s.n, () => placementWeights(new Map(members.map(m => [m, classes.get(m)]))))
          const got = p.rank(ref, members, s.n)
          assert.deepEqual(got, want)
          got.reverse() // a caller changing what it got changes nothing kept
          assert.deepEqual(p.rank(ref, [...members], s.n), want)
        }
      }), { numRuns: 200 })
    })

    it('placementPolicy(_, { redundancy: bad }) throws RangeError', function () {
      for (const r of [-1, 0.5, NaN]) assert.throws(() => placementPolicy({ members: () => [] }, { redundancy: r }), RangeError, String(r))
    })
  })

  describe('targets(key, peers, n)', function () {
    it('targets() ranks peers by XOR distance of sha256(peer id multihash) from sha256(key)', function () {
      for (let i = 0; i < 50; i++) {
        const key = randomBytes(1 + (i % 40))
        const target = sha256(key)
        const expected = [...peers].sort((a, b) => {
          const da = xorBigInt(sha256(multihashOf(a)), target)
          const db = xorBigInt(sha256(multihashOf(b)), target)
          return da < db ? -1 : da > db ? 1 : 0
        })
        assert.deepEqual(targets(key, peers, peers.length), expected)
      }
    })

    it('targets() is deterministic: independent of order and duplicates, distinct, prefix-stable in n', function () {
      fc.assert(fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        fc.shuffledSubarray(peers, { minLength: 0 }),
        fc.array(fc.nat(23), { maxLength: 10 }),
        fc.nat(30),
        (key, subset, dupIdx, n) => {
          const base = targets(key, subset, n)
          const noisy = [...subset].reverse().concat(dupIdx.filter(i => i < subset.length).map(i => subset[i]))
          assert.deepEqual(targets(key, noisy, n), base)
          assert.equal(new Set(base).size, base.length)
          assert.equal(base.length, Math.min(n, subset.length))
          assert.deepEqual(targets(key, subset, n + 1).slice(0, base.length), base)
          for (const p of base) assert.ok(subset.includes(p))
        }
      ), { numRuns: 200 })
    })

    it('targets() of a key keeps the surviving peers in order when a peer leaves', function () {
      const key = randomBytes(32)
      const all = targets(key, peers, peers.length)
      const gone = all[1]
      assert.deepEqual(targets(key, peers.filter(p => p !== gone), peers.length - 1), all.filter(p => p !== gone))
    })

    it('targets() spreads keys over peers (each of 8 peers is first for some of 400 keys)', function () {
      const eight = peers.slice(0, 8)
      const firsts = new Set(Array.from({ length: 400 }, () => targets(randomBytes(32), eight, 1)[0]))
      assert.equal(firsts.size, 8)
    })

    it('targets() with no peers or n = 0 is empty; a bad peer id or n throws RangeError', function () {
      assert.deepEqual(targets(randomBytes(8), [], 3), [])
      assert.deepEqual(targets(randomBytes(8), peers, 0), [])
      assert.throws(() => targets(randomBytes(8), ['not-a-peer'], 1), RangeError)
      assert.throws(() => targets(randomBytes(8), peers, -1), RangeError)
      assert.throws(() => targets(randomBytes(8), peers, 1.5), RangeError)
    })
    it('closest(keyKadId(key), peers, n) is targets(key, peers, n); with the ids given, it ranks by those', function () {
      for (let i = 0; i < 20; i++) {
        const key = randomBytes(32)
        assert.deepEqual(closest(keyKadId(key), peers, 5), targets(key, peers, 5))
        assert.deepEqual(closest(keyKadId(key), peers, 5, peerKadId), targets(key, peers, 5))
      }
      // ids that are not the peers' own: ranked by XOR distance of those, ties by peer id
      const ids = new Map([['a', new Uint8Array([0b0001])], ['b', new Uint8Array([0b1000])], ['c', new Uint8Array([0b0011])], ['d', new Uint8Array([0b0001])]])
      assert.deepEqual(closest(new Uint8Array([0b0000]), ['c', 'b', 'd', 'a', 'c'], 4, p => ids.get(p)!), ['a', 'd', 'c', 'b'])
      assert.deepEqual(closest(new Uint8Array([0b1001]), ['c', 'b', 'd', 'a'], 2, p => ids.get(p)!), ['b', 'a'])
    })
  })

  describe('keeper(key, livePeers)', function () {
    it('keeper() is the first target, and undefined without peers', function () {
      for (let i = 0; i < 20; i++) {
        const key = randomBytes(32)
        assert.equal(keeper(key, peers), targets(key, peers, 1)[0])
      }
      assert.equal(keeper(randomBytes(4), []), undefined)
    })
  })

  it('compareDistance() orders by XOR distance, peerKadId()/keyKadId() are sha256', function () {
    const t = new Uint8Array([0b1010, 0])
    assert.ok(compareDistance(t, new Uint8Array([0b1011, 0]), new Uint8Array([0b1000, 0])) < 0)
    assert.ok(compareDistance(t, new Uint8Array([0b1010, 9]), new Uint8Array([0b1010, 1])) > 0)
    assert.equal(compareDistance(t, t, t), 0)
    const key = randomBytes(10)
    assert.deepEqual(keyKadId(key), sha256(key))
    assert.deepEqual(peerKadId(peers[0]), sha256(multihashOf(peers[0])))
  })

  it('peerKadId() keeps the kad ids of a 10,000-member table (placement ranks every member per chunk)', async function () {
    this.timeout(60_000)
    const members: string[] = []
    for (let i = 0; i < 10_000; i++) members.push(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())
    const first = members.map(peerKadId)
    // a second ranking finds every id memoised: the very same arrays, none computed again
    const again = members.map(peerKadId)
    assert.equal(again.filter((id, i) => id !== first[i]).length, 0)
    assert.ok(KAD_ID_CACHE_ENTRIES >= 10_000)
  })
})

/** The multihash bytes of a peer id string (base58btc of the identity multihash of its key). */
function multihashOf (peer: string): Uint8Array {
  return base58btc.decode(`z${peer}`)
}

describe('placement.replicaCount()', function () {
  it('a replicated chunk written alone (k=1, m=0) wants redundancy + 1 copies once the network has the hosts', async () => {
    const { replicaCount } = await import('../../node/keeper/placement.ts')
    assert.equal(replicaCount(0, 2, 1), 1)
    assert.equal(replicaCount(0, 2, 2), 2)
    assert.equal(replicaCount(0, 2, 6), 3)
    assert.equal(replicaCount(2, 2, 6), 3)
    assert.equal(replicaCount(2, 1, 6), 3) // never fewer than the chunk's own m + 1
    assert.equal(replicaCount(1, 2, 2), 2)
  })
})
