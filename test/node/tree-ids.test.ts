// The id table (node/tree/ids.ts): strings found by their characters. Property: every string
// added is found from its characters (in any buffer, at any offset), through the table's growth;
// a string never added is not found; a receive decoding through the tables gives the ops it gave
// without them (the ids are the same characters: only which string holds them changes).
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { IdLayers, IdTable } from '../../node/tree/ids.ts'
import { cidOf, createOp, decodeUnverified } from '../../node/tree/op.ts'
import type { Signer } from '../../node/tree/index.ts'
import type { Op } from '../../node/tree/types.ts'
import { Teardown } from '../../harness/tmp.ts'
import { replica, allOps, mkdir, mkfile, snapshot } from '../helpers/tree.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261204)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))
const enc = new TextEncoder()
const id = fc.oneof(fc.nat(2000).map(n => cidOf(enc.encode(`op${n}`)).toString()), fc.stringMatching(/^[A-Za-z0-9]{1,70}$/))

function at (s: string, pad: number): { bytes: Uint8Array, start: number, end: number } {
  const bytes = new Uint8Array(pad + s.length + 3).fill(0x61)
  for (let i = 0; i < s.length; i++) bytes[pad + i] = s.charCodeAt(i)
  return { bytes, start: pad, end: pad + s.length }
}

describe('node/tree ids (id strings by their characters)', () => {
  it('finds every string added, and no other, through growth (property)', () => {
    fc.assert(fc.property(fc.uniqueArray(id, { maxLength: 300 }), fc.array(id, { maxLength: 50 }), fc.nat(8), (added, others, pad) => {
      const t = new IdTable(4)
      for (const s of added) t.add(s)
      for (const s of added) t.add(s) // twice: kept once
      assert.equal(t.size, added.length)
      // numbered as they were kept, through growth; a string never kept is -1
      added.forEach((s, i) => { assert.equal(t.indexOf(s), i) })
      for (const s of others) assert.equal(t.indexOf(s), added.includes(s) ? added.indexOf(s) : -1)
      for (const s of added) {
        const { bytes, start, end } = at(s, pad)
        assert.equal(t.find(bytes, start, end), s)
      }
      const kept = new Set(added)
      for (const s of others) {
        const { bytes, start, end } = at(s, pad)
        assert.equal(t.find(bytes, start, end), kept.has(s) ? s : undefined)
      }
      const layers = new IdLayers(new IdTable(), t)
      for (const s of others) layers.own.add(s)
      for (const s of [...added, ...others]) {
        const { bytes, start, end } = at(s, pad)
        assert.equal(layers.find(bytes, start, end), s)
      }
    }), { seed: PROP_SEED, numRuns: 300 * RUNS })
  })

  it('ops decoded through id tables are the ops decoded without', async () => {
    const signer: Signer = { author: '12D3KooWAuthor', sign: async () => new Uint8Array(64).fill(3) }
    const blocks: Uint8Array[] = []
    let parents = [cidOf(enc.encode('base'))]
    for (let i = 0; i < 30; i++) {
      const inode = i === 0 ? 'root' : parents[0].toString()
      const op = await createOp(signer, i % 2 === 0 ? { type: 'create', parent: inode, name: `f${i}`, kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: BigInt(i) } : { type: 'setattr', inode, mode: i, time: BigInt(i) }, [1, i], parents)
      blocks.push(op.bytes)
      parents = [op.cid]
    }
    const dag = new IdTable()
    dag.add('root')
    const layers = new IdLayers(new IdTable(), dag)
    for (const b of blocks) {
      const plain = decodeUnverified(b)
      const via = decodeUnverified(b, undefined, layers)
      // what an op is (types.ts Op), not where it is kept (each decode writes its digest in a slab of its own)
      const fields = (op: Op): unknown => ({ id: op.id, parentIds: op.parentIds, digest: [...op.digest], body: op.body, author: op.author, hlc: op.hlc })
      assert.deepStrictEqual(fields(via.op), fields(plain.op))
      assert.ok(layers.own.find(enc.encode(plain.op.id), 0, plain.op.id.length) === plain.op.id)
    }
  })

  it('an op decoded through id tables is fresh exactly when the under table lacks it, and the own table learns it (property)', async () => {
    const signer: Signer = { author: '12D3KooWAuthor', sign: async () => new Uint8Array(64).fill(3) }
    const blocks: Uint8Array[] = []
    let parents = [cidOf(enc.encode('base'))]
    for (let i = 0; i < 24; i++) {
      const op = await createOp(signer, { type: 'setattr', inode: 'root', mode: i, time: BigInt(i) }, [1, i], parents)
      blocks.push(op.bytes)
      parents = [op.cid]
    }
    const ids = blocks.map(b => cidOf(b).toString())
    // which ops the DAG's table holds, and a batch of them in any order, some twice
    await fc.assert(fc.asyncProperty(fc.array(fc.boolean(), { minLength: 24, maxLength: 24 }), fc.array(fc.nat(23), { maxLength: 60 }), async (known, batch) => {
      const under = new IdTable(4)
      under.add('root')
      for (let i = 0; i < 24; i++) if (known[i]) under.add(ids[i])
      const layers = new IdLayers(new IdTable(batch.length), under)
      for (const i of batch) {
        const d = decodeUnverified(blocks[i], undefined, layers)
        assert.equal(d.id, ids[i])
        assert.equal(d.fresh === true, !known[i])
        // the one string for those chars: the under table's when it holds it, else the first decoding's
        const bytes = enc.encode(ids[i])
        assert.equal(layers.find(bytes, 0, bytes.length), d.id)
        if (!known[i]) assert.equal(layers.own.find(bytes, 0, bytes.length), d.id)
      }
      // the own table holds each id at most once, and only ids decoded
      assert.ok(layers.own.size <= new Set(batch).size)
    }), { seed: PROP_SEED, numRuns: 100 * RUNS })
  })

  it('the same ops received by calls in flight together, and again, are applied once', async () => {
    const t = new Teardown()
    try {
      const a = await replica(t)
      const b = await replica(t)
      let dir = (await a.tree.commit(mkdir(a.tree.root, 'd'))).id
      for (let i = 0; i < 40; i++) {
        const made = await a.tree.commit(i % 3 === 0 ? mkdir(dir, `d${i}`) : mkfile(dir, `f${i}`, `x${i}`))
        if (i % 3 === 0) dir = made.id
      }
      const blocks = [...allOps(a.tree).values()]
      // in flight together: the second is decoded while the first's ops are not in the DAG yet
      const [r1, r2, r3] = await Promise.all([b.tree.receive(blocks), b.tree.receive(blocks), b.tree.receive([...blocks].reverse())])
      assert.equal(r1.applied + r2.applied + r3.applied, blocks.length)
      assert.equal((await b.tree.receive(blocks)).applied, 0)
      assert.equal(b.tree.size, a.tree.size)
      assert.equal(snapshot(b.tree), snapshot(a.tree))
    } finally {
      await t.run()
    }
  })
})
