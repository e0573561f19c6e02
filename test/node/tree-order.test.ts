// The total order of ops without order keys (node/tree/op.ts compareOps): it orders any two ops
// as their orderKey() strings compare (what the tree sorted by before; every host must agree),
// for any clock (walls past 2^52 included, whose keys compare as strings, not numbers), any
// authors (prefixes of one another, chars past latin1) and ids (property). And an op decoded
// from its block is the op made (OpRecord): its CID, made when asked, is the block's.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { cidOf, compareOps, decodeUnverified, digestOf, idOf, orderKey, createOp } from '../../node/tree/op.ts'
import type { Hlc, Signer } from '../../node/tree/index.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261203)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))
const enc = new TextEncoder()

const wall = fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1_700_000_000_000, max: 1_700_000_000_010 }), fc.integer({ min: 2 ** 52 - 3, max: 2 ** 52 + 3 }), fc.integer({ min: 2 ** 52, max: Number.MAX_SAFE_INTEGER }))
const count = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(0xffffffff), fc.integer({ min: 0, max: 0xffffffff }))
// few short authors, so that equal ones and prefixes come up; some past latin1
const author = fc.oneof(fc.constantFrom('a', 'ab', 'abc', 'b', '12D3KooWA', '12D3KooWAb'), fc.string({ minLength: 1, maxLength: 4 }).filter(s => !s.includes('\u0000')), fc.constantFrom('é', 'ab文', 'ab\u00ff'))
const id = fc.oneof(fc.constantFrom('bafy1', 'bafy2', 'bafy10'), fc.nat(5).map(n => cidOf(enc.encode(`op${n}`)).toString()))
const op = fc.record({ hlc: fc.tuple(wall, count) as fc.Arbitrary<Hlc>, author, id })



describe('node/tree total order (compareOps)', () => {
  it('orders any two ops as their order keys compare (property)', () => {
    fc.assert(fc.property(op, op, (a, b) => {
      const ka = orderKey(a.hlc, a.author, a.id)
      const kb = orderKey(b.hlc, b.author, b.id)
      const want = ka < kb ? -1 : ka > kb ? 1 : 0
      assert.equal(Math.sign(compareOps(a, b)), want)
      assert.equal(Math.sign(compareOps(b, a)), -want || 0)
    }), { seed: PROP_SEED, numRuns: 2000 * RUNS })
  })

  it('sorts lists as the keys sort them (property)', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 40 }), list => {
      const byKeys = [...list].sort((a, b) => { const x = orderKey(a.hlc, a.author, a.id); const y = orderKey(b.hlc, b.author, b.id); return x < y ? -1 : x > y ? 1 : 0 })
      assert.deepEqual([...list].sort(compareOps), byKeys)
    }), { seed: PROP_SEED, numRuns: 500 * RUNS })
  })

  it('an op decoded from its block has the CID, id and digest of the block, its CID made when asked', async () => {
    const signer: Signer = { author: '12D3KooWAuthor', sign: async () => new Uint8Array(64).fill(7) }
    const parent = cidOf(enc.encode('parent'))
    const made = await createOp(signer, { type: 'create', parent: 'root', name: 'x', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: 5n }, [1_764_000_000_000, 3], [parent])
    const { op, sig } = decodeUnverified(made.bytes)
    const cid = cidOf(made.bytes)
    assert.equal(op.id, cid.toString())
    assert.equal(op.id, made.id)
    assert.deepEqual([...op.digest], [...cid.multihash.digest])
    assert.deepEqual([...digestOf(made.bytes).digest], [...cid.multihash.digest])
    assert.equal(digestOf(made.bytes).id, op.id)
    assert.ok(op.cid.equals(cid))
    assert.equal(op.cid, op.cid, 'made once')
    assert.equal(idOf(op.cid), op.id)
    assert.deepEqual(op.parentIds, [parent.toString()])
    assert.deepEqual([...sig], new Array(64).fill(7))
    assert.equal(compareOps(op, made), 0)
  })
})
