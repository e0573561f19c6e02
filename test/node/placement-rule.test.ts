// Which rule places a chunk (issue 14 item 4; node/keeper/placement.ts): a chunk's ref names it
// (ChunkRef.rule), manifests keep it, and an old ref without it is still ranked by XOR, so data
// placed before the switch stays where it is. The balanced rule weighs members by the capacity
// class they signed into their member records; a member announcing a huge class is capped and
// never holds more than one fragment of a chunk.
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { ManifestError, PLACEMENT_BALANCED, decodeManifest, encodeChunk, encodeManifest, holeChunk, manifestOf, withRoots } from '../../node/data/chunks.ts'
import type { ChunkRef } from '../../node/data/chunks.ts'
import { placementPolicy, targets } from '../../node/keeper/placement.ts'
import { balancedTargets, capacityClass, placementWeights } from '../../node/keeper/balance.ts'
import { MAX_CAPACITY_CLASS } from '../../node/net/members.ts'
import { seededBytes } from '../../harness/prng.ts'

const TiB = 2 ** 40

/** A data chunk ref of `seed`'s bytes (k = 2, m = 1), with the rule given. */
function chunk (seed: number, rule?: typeof PLACEMENT_BALANCED): ChunkRef {
  const { ref } = withRoots(encodeChunk(seededBytes(5000, seed), 0, 2, 1))
  return rule === undefined ? ref : { ...ref, rule }
}

describe('placement rule of a chunk (ChunkRef.rule)', function () {
  this.timeout(60_000)
  let peers: string[]
  before(async function () {
    peers = await Promise.all(Array.from({ length: 30 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
  })

  it('manifests keep the rule; a ref without one (written before it) still decodes; an unknown rule or one on a hole is refused', () => {
    const ref = chunk(1, PLACEMENT_BALANCED)
    assert.equal(decodeManifest(encodeManifest(manifestOf(5000, [ref])).bytes).chunks[0].rule, PLACEMENT_BALANCED)
    const old = chunk(1)
    assert.equal(decodeManifest(encodeManifest(manifestOf(5000, [old])).bytes).chunks[0].rule, undefined)
    const bad: unknown[] = [{ ...old, rule: 2 }, { ...old, rule: '1' }, { ...old, rule: null }, { ...holeChunk(0, 5000), rule: PLACEMENT_BALANCED }]
    for (const r of bad) assert.throws(() => decodeManifest(encodeManifest(manifestOf(5000, [r as ChunkRef])).bytes), ManifestError, JSON.stringify((r as ChunkRef).rule))
  })

  it('rank() of a ref without a rule is the XOR-closest members; with PLACEMENT_BALANCED, weighted rendezvous by the signed classes', () => {
    const classes = new Map(peers.map((p, i) => [p, i === 0 ? undefined : capacityClass((i % 3 + 1) * TiB)]))
    const policy = placementPolicy({ members: () => peers, capacityClass: p => classes.get(p) })
    const weights = placementWeights(classes)
    for (let s = 0; s < 50; s++) {
      const old = chunk(s)
      const fresh = chunk(s, PLACEMENT_BALANCED)
      assert.deepEqual(policy.rank(old, peers, 3), targets(old.cid!.bytes, peers, 3))
      assert.deepEqual(policy.rank(fresh, peers, 3), balancedTargets(fresh.cid!.bytes, peers, weights, 3))
    }
    // a hole is placed nowhere
    assert.deepEqual(policy.rank(holeChunk(0, 10), peers, 3), [])
  })

  it('a changed class (a newer record) changes the weights rank() uses', () => {
    const classes = new Map(peers.map(p => [p, 80]))
    const policy = placementPolicy({ members: () => peers, capacityClass: p => classes.get(p) })
    const refs = Array.from({ length: 400 }, (_, s) => chunk(1000 + s, PLACEMENT_BALANCED))
    const count = (p: string): number => refs.filter(r => policy.rank(r, peers, 3).includes(p)).length
    const before = count(peers[5])
    classes.set(peers[5], 80 + 16) // its disk grew 4x
    const after = count(peers[5])
    assert.ok(after > before * 2, `a member whose class grew by two doublings is picked more: ${before} -> ${after}`)
  })

  it('a member announcing a huge class holds at most one fragment of any chunk, and at most 8 times a median member\'s share', () => {
    const liar = peers[7]
    const classes = new Map(peers.map(p => [p, p === liar ? MAX_CAPACITY_CLASS : capacityClass(TiB)]))
    const policy = placementPolicy({ members: () => peers, capacityClass: p => classes.get(p) })
    const n = 6
    const chunks = 1500
    const load = new Map(peers.map(p => [p, 0]))
    for (let s = 0; s < chunks; s++) {
      const ranked = policy.rank(chunk(5000 + s, PLACEMENT_BALANCED), peers, n)
      assert.equal(ranked.length, n)
      assert.equal(new Set(ranked).size, n, 'n distinct members: none holds two fragments of one chunk')
      for (const p of ranked) load.set(p, load.get(p)! + 1)
    }
    const honest = peers.filter(p => p !== liar).map(p => load.get(p)!)
    const mean = honest.reduce((a, b) => a + b, 0) / honest.length
    assert.ok(load.get(liar)! <= chunks, 'at most one fragment per chunk')
    assert.ok(load.get(liar)! <= 8 * mean, `the liar holds ${load.get(liar)!}, an honest member ${mean.toFixed(1)} on average`)
    // the others hold what the liar does not: n - 1 fragments of each chunk at least
    assert.ok(honest.reduce((a, b) => a + b, 0) >= chunks * (n - 1))
  })

  it('an old ref and a balanced one of the same chunk name the same fragments (the rule only ranks their hosts)', () => {
    const a = chunk(9)
    const b = chunk(9, PLACEMENT_BALANCED)
    assert.ok(a.cid!.equals(b.cid as CID))
    assert.deepEqual(a.fragments.map(String), b.fragments.map(String))
  })
})
