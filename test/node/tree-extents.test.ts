// Positioned extents (issue 15 item 1): an `append` op with `offset` lands its bytes there, over
// the file's base, in total op order (newest wins per byte). Checked here: concurrent extents
// from several authors (with appends, whole writes, truncating writes and folds between them)
// read as the same bytes on every replica and in every delivery order, and, without writes, as
// the base with every extent laid over it in total order; a write that saw an extent holds its
// bytes, a truncate that did not gets it over the truncated file; malformed extents are refused.
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { Teardown } from '../../harness/tmp.ts'
import { replica, allOps, snapshot, sync, mkfile, write, sec } from '../helpers/tree.ts'
import { InvalidOpError, extentEnd, type Tree, type OpBody } from '../../node/tree/index.ts'
import { checkBody, createOp, decodeOp, decodeUnverified } from '../../node/tree/op.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261202)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))
fc.configureGlobal({ seed: PROP_SEED })

const enc = new TextEncoder()
const dec = new TextDecoder()

/** The file /f as the tree reads it: the content up to the first extent, each extent over it in order. */
function read (tree: Tree): string {
  const inode = tree.get(tree.lookup(tree.root, 'f')!.inode)!
  const out = new Uint8Array(inode.size)
  const extents = inode.extents ?? []
  const c = inode.content === null ? new Uint8Array(0) : (inode.content as { inline: Uint8Array }).inline
  const end = extents.length > 0 ? extents[0].before : inode.size
  out.set(c.subarray(0, end))
  for (const x of extents) out.set((x.content as { inline: Uint8Array }).inline.subarray(x.at, x.at + x.size), x.pos)
  if (extents.length > 0) assert.equal(extentEnd(extents[extents.length - 1]), inode.size)
  // zeros (gaps past the end) as '.', to compare as text
  return dec.decode(out).replaceAll('\u0000', '.')
}

/** Deliver blocks in a shuffled order, in small batches. */
async function deliver (tree: Tree, blocks: Uint8Array[], seed: number): Promise<void> {
  let x = (seed >>> 0) || 1
  const rand = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x100000000 }
  const list = [...blocks]
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[list[i], list[j]] = [list[j], list[i]]
  }
  let missing = 0
  while (list.length > 0) missing = (await tree.receive(list.splice(0, 1 + Math.floor(rand() * 4)))).missing.length
  assert.equal(missing, 0)
}

describe('node/tree positioned extents', function () {
  this.timeout(120_000)

  it('concurrent positioned extents from 3 authors converge to the same bytes in any delivery order (property)', async () => {
    const act = fc.record({
      r: fc.nat(2),
      what: fc.constantFrom('patch', 'patch', 'patch', 'append', 'write', 'truncate', 'fold', 'sync', 'sync'),
      to: fc.nat(2),
      offset: fc.nat(70),
      len: fc.integer({ min: 1, max: 12 }),
      part: fc.nat(8),
      dt: fc.nat(2)
    })
    await fc.assert(fc.asyncProperty(fc.array(act, { minLength: 4, maxLength: 40 }), fc.integer(), async (list, seed) => {
      const t = new Teardown()
      try {
        const reps = [await replica(t), await replica(t), await replica(t)]
        await reps[0].tree.commit(mkfile(reps[0].tree.root, 'f', 'abcdefghijklmnopqrstuvwxyz0123456789', sec(1)))
        for (const r of reps.slice(1)) await sync(reps[0].tree, r.tree)
        let wrote = false
        let k = 0
        for (const a of list) {
          const r = reps[a.r]
          r.clock.ms += a.dt
          const time = BigInt(r.clock.ms) * 1_000_000n
          const inode = r.tree.lookup(r.tree.root, 'f')!.inode
          if (a.what === 'patch' || a.what === 'append') {
            // each author writes its own letter, a digit for which write it is
            const bytes = enc.encode(('ABC'[a.r] + String(k++ % 10)).repeat(a.len).slice(0, a.len))
            const body: OpBody = { type: 'append', inode, content: { inline: bytes }, at: 0, size: bytes.byteLength, time }
            if (a.what === 'patch') body.offset = a.offset
            await r.tree.commit(body)
          } else if (a.what === 'write' || a.what === 'truncate') {
            const now = read(r.tree)
            await r.tree.commit(write(inode, a.what === 'write' ? now + `[w${k++}]` : now.slice(0, a.offset % (now.length + 1)), time))
            wrote = true
          } else if (a.what === 'fold') {
            const fp = r.tree.foldPoint(inode)
            if (fp === undefined) continue
            const j = 1 + (a.part % fp.extents.length)
            const out = new Uint8Array(extentEnd(fp.extents[j - 1]))
            if (fp.content !== null) out.set((fp.content as { inline: Uint8Array }).inline.subarray(0, fp.size))
            for (const x of fp.extents.slice(0, j)) out.set((x.content as { inline: Uint8Array }).inline.subarray(x.at, x.at + x.size), x.pos)
            const before = read(r.tree)
            await r.tree.commit({ type: 'fold', inode, base: fp.base, covers: fp.covered + j, content: out.byteLength === 0 ? null : { inline: out }, size: out.byteLength, time })
            assert.equal(read(r.tree), before, 'a fold changes no byte')
            assert.equal(r.tree.foldPoint(inode)?.covered ?? fp.covered + j, fp.covered + j, 'the fold is read in place of what it holds')
          } else if (a.to !== a.r) {
            await sync(r.tree, reps[a.to].tree)
          }
        }
        for (let round = 0; round < 2; round++) for (const a of reps) for (const b of reps) if (a !== b) await sync(a.tree, b.tree)
        const want = read(reps[0].tree)
        for (const r of reps) assert.equal(read(r.tree), want)
        const blocks = [...allOps(reps[0].tree).values()]
        for (const s of [seed, seed ^ 0x5bd1e995]) {
          const fresh = await replica(t)
          await deliver(fresh.tree, blocks, s)
          assert.equal(read(fresh.tree), want)
          assert.equal(snapshot(fresh.tree), snapshot(reps[0].tree))
        }
        if (!wrote) {
          // no write: the base with every extent over it, in total op order (newest wins per byte)
          const ops = (await Promise.all(blocks.map(async b => await decodeOp(b)))).sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
          let model = enc.encode('abcdefghijklmnopqrstuvwxyz0123456789')
          for (const op of ops) {
            const b = op.body
            if (b.type !== 'append') continue
            const pos = b.offset ?? model.byteLength
            if (pos + b.size > model.byteLength) { const m = new Uint8Array(pos + b.size); m.set(model); model = m }
            model.set((b.content as { inline: Uint8Array }).inline, pos)
          }
          assert.equal(want, dec.decode(model).replaceAll('\u0000', '.'))
        }
      } finally {
        await t.run()
      }
    }), { numRuns: 60 * RUNS })
  })

  it('a write that saw an extent holds its bytes; a truncate that did not gets it over the truncated file', async () => {
    const t = new Teardown()
    try {
      const [a, b] = [await replica(t), await replica(t)]
      const { id: inode } = await a.tree.commit(mkfile(a.tree.root, 'f', '0123456789', sec(1)))
      await sync(a.tree, b.tree)
      // a: a pwrite of "XY" at 4, and one past the end (a gap of zeros)
      await a.tree.commit({ type: 'append', inode, content: { inline: enc.encode('XY') }, at: 0, size: 2, offset: 4, time: sec(2) })
      await a.tree.commit({ type: 'append', inode, content: { inline: enc.encode('Z') }, at: 0, size: 1, offset: 12, time: sec(3) })
      assert.equal(read(a.tree), '0123XY6789..Z')
      assert.equal(a.tree.get(inode)!.size, 13)
      // b, concurrently: truncates to 3 bytes (a write of a new version)
      b.clock.ms += 10
      await b.tree.commit(write(inode, '012', sec(4)))
      await sync(a.tree, b.tree)
      await sync(b.tree, a.tree)
      // the extents land over the truncated file, as the pwrites would after the truncate
      assert.equal(read(a.tree), '012.XY......Z')
      assert.equal(read(b.tree), read(a.tree))
      // a write that saw them holds them: the extents leave the list
      await a.tree.commit(write(inode, 'fresh', sec(5)))
      await sync(a.tree, b.tree)
      assert.equal(b.tree.get(inode)!.extents, undefined)
      assert.equal(read(b.tree), 'fresh')
    } finally {
      await t.run()
    }
  })

  it('refuses malformed positioned extents with a clear error', async () => {
    const inode = 'bafyreiabc'
    const ok: OpBody = { type: 'append', inode, content: { inline: enc.encode('hi') }, at: 0, size: 2, offset: 10, time: sec(1) }
    checkBody(ok)
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ offset: -1 }, /offset must be an integer/],
      [{ offset: 1.5 }, /offset must be an integer/],
      [{ offset: '4' }, /offset must be an integer/],
      [{ offset: Number.MAX_SAFE_INTEGER }, /past the largest size/],
      [{ offset: Number.MAX_SAFE_INTEGER + 1 }, /offset must be an integer/],
      [{ position: 3 }, /unknown field position/]
    ]
    const t = new Teardown()
    const key = (await replica(t)).signer
    try {
      for (const [patch, why] of bad) {
      const body = { ...ok, ...patch } as unknown as OpBody
      assert.throws(() => checkBody(body), (err: Error) => err instanceof InvalidOpError && why.test(err.message))
      // the same body in a signed block from a peer: refused on decode
      const good = await createOp(key, ok, [1_700_000_000_000, 0], [])
      const raw: any = dagCbor.decode(good.bytes)
      raw.body = { ...raw.body, ...patch }
      let bytes: Uint8Array
      try {
        bytes = dagCbor.encode(raw)
      } catch {
        continue // not encodable (a float dag-cbor refuses): cannot arrive either
      }
      assert.throws(() => decodeUnverified(bytes), (err: Error) => err instanceof InvalidOpError && why.test(err.message))
      }
    } finally {
      await t.run()
    }
  })
})
