// Appended lines under the append CRDT (fast-check; torn36): 2 or 3 authors each append lines
// (`echo >>` commits: one line, or a few lines one commit took together), fold what they read
// (whole folds and partial folds over byte ranges, made from the replica's own read), and swap
// ops in bursts: a peer's ops in causal order, often late and sorting among the receiver's own,
// some blocks sent twice, and the file read after every delivery (the tree's kept reads are
// extended then, across the undo and redo a late op makes). Every replica reads, at every point,
// the bytes of the appends it holds laid end to end in total order (the model): so every line it
// acknowledged is whole, once, and each author's lines in its order, and at the end every replica,
// and a fresh one given every op in random batches, reads the same bytes.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Teardown } from '../../harness/tmp.ts'
import { replica, allOps, cidOfBytes, deliver, foldOf, type Replica } from '../helpers/tree.ts'
import type { OpBody, Tree } from '../../node/tree/index.ts'
import { compareOps, decodeOp } from '../../node/tree/op.ts'
import type { Op } from '../../node/tree/types.ts'

// seeded as tree-props.test.ts: DARKFS_PROP_SEED=<n> or random, DARKFS_PROP_RUNS=<n>
const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261206)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))

const enc = new TextEncoder()
const dec = new TextDecoder()

/** /log as the tree reads it: its content up to the first extent, each extent (piece) over it in order. */
function read (tree: Tree): string {
  const inode = tree.get(tree.lookup(tree.root, 'log')!.inode)!
  const out = new Uint8Array(inode.size)
  const extents = inode.extents ?? []
  const c = inode.content === null ? new Uint8Array(0) : (inode.content as { inline: Uint8Array }).inline
  out.set(c.subarray(0, extents.length > 0 ? extents[0].before : inode.size))
  for (const x of extents) out.set((x.content as { inline: Uint8Array }).inline.subarray(x.at, x.at + x.size), x.pos)
  return dec.decode(out)
}

/** The model: the file's create content, then every append op `tree` holds, end to end in total order. */
async function model (tree: Tree, start: string): Promise<string> {
  const ops: Op[] = await Promise.all([...allOps(tree).values()].map(async b => await decodeOp(b)))
  let text = start
  for (const op of ops.sort(compareOps)) {
    const b = op.body
    if (b.type === 'append') text += dec.decode((b.content as { inline: Uint8Array }).inline.subarray(b.at, b.at + b.size))
  }
  return text
}

/** Every line of `text` is some author's, whole and once, and each author's in its order. */
function assertLines (text: string, authors: string[][], where: string): void {
  const got = text === '' ? [] : text.slice(0, -1).split('\n')
  assert.ok(text === '' || text.endsWith('\n'), `${where}: the file ends with a whole line`)
  const all = new Set(['start', ...authors.flat()])
  const torn = got.filter(l => !all.has(l))
  assert.deepEqual(torn, [], `${where}: torn lines`)
  assert.equal(new Set(got).size, got.length, `${where}: a line twice`)
  for (const a of authors) {
    const mine = got.filter(l => a.includes(l))
    assert.deepEqual(mine, a.slice(0, mine.length), `${where}: an author's lines out of order`)
  }
}

describe(`node/tree appended lines (seed ${PROP_SEED})`, function () {
  this.timeout(300_000 * RUNS)

  it('lines appended by 2-3 authors, folded, delivered late, in bursts and twice: every read is the appends end to end, each line whole and once', async () => {
    const act = fc.record({
      r: fc.nat(2),
      what: fc.constantFrom('line', 'line', 'line', 'line', 'lines', 'fold', 'pfold', 'burst', 'burst'),
      to: fc.nat(2),
      n: fc.integer({ min: 1, max: 12 }),
      part: fc.nat(1000),
      dup: fc.boolean(),
      dt: fc.nat(2)
    })
    await fc.assert(fc.asyncProperty(fc.array(act, { minLength: 10, maxLength: 120 }), fc.integer({ min: 2, max: 3 }), fc.integer(), async (list, hosts, seed) => {
      const t = new Teardown()
      try {
        const reps: Replica[] = []
        for (let i = 0; i < hosts; i++) reps.push(await replica(t))
        const start = 'start\n'
        const made = await reps[0].tree.commit({ type: 'create', parent: reps[0].tree.root, name: 'log', kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: enc.encode(start) }, size: start.length, time: BigInt(reps[0].clock.ms) * 1_000_000n })
        const inode = made.id
        const first = [...allOps(reps[0].tree).values()]
        for (const r of reps.slice(1)) await r.tree.receive(first)
        // each author's lines, named by author letter and number: lengths vary (A9, A10, A100)
        const lines: string[][] = reps.map(() => [])
        const check = async (i: number, where: string): Promise<void> => {
          const text = read(reps[i].tree)
          assert.equal(text, await model(reps[i].tree, start), `${where}: replica ${i} reads its appends end to end`)
          assertLines(text, lines, `${where}: replica ${i}`)
        }
        for (const [step, a] of list.entries()) {
          const i = a.r % hosts
          const r = reps[i]
          r.clock.ms += a.dt
          const time = BigInt(r.clock.ms) * 1_000_000n
          if (a.what === 'line' || a.what === 'lines') {
            const k = a.what === 'line' ? 1 : 1 + (a.n % 3)
            let text = ''
            for (let j = 0; j < k; j++) {
              const line = `${'ABC'[i]}${lines[i].length + 1}`
              lines[i].push(line)
              text += line + '\n'
            }
            const bytes = enc.encode(text)
            await r.tree.commit({ type: 'append', inode, content: { inline: bytes }, at: 0, size: bytes.byteLength, time })
          } else if (a.what === 'fold' || a.what === 'pfold') {
            const fp = r.tree.foldPoint(inode)
            if (fp === undefined) continue
            // the file with its first c extents, built from what this replica reads (the fold point)
            const fold = foldOf(fp, a.part)
            if (fold === undefined) continue
            const { c, size, now, full } = fold
            const body: OpBody = { type: 'fold', inode, base: fp.base, covers: c, content: { inline: full }, size, time }
            if (a.what === 'pfold' && size > 2) {
              // one range: outside it the content keeps what the content read now holds
              const from = a.part % size
              const to = Math.min(size, from + a.n * 3)
              const out = now
              out.set(full.subarray(from, to), from)
              body.ranges = [from, to]
              if (fp.over !== undefined) body.over = fp.over
              body.content = { inline: out }
            }
            const before = read(r.tree)
            await r.tree.commit(body)
            assert.equal(read(r.tree), before, `step ${step}: a fold changes no byte`)
          } else {
            // a burst: what replica i lacks of replica `to`, in causal order, some of it only
            const j = a.to % hosts
            if (j === i) continue
            const missing = [...allOps(reps[j].tree).values()].filter(b => !r.tree.hasOp(cidOfBytes(b)))
            // in total order (a causal order), the first quarter to all of them
            const ops = await Promise.all(missing.map(async b => ({ b, op: await decodeOp(b) })))
            ops.sort((x, y) => compareOps(x.op, y.op))
            const take = ops.slice(0, Math.max(1, Math.ceil(ops.length * ((a.part % 4) + 1) / 4)))
            for (let s = 0; s < take.length;) {
              const n = 1 + (a.n % 5)
              const batch = take.slice(s, s + n).map(x => x.b)
              // a block sent again (a peer's resend, gossip and sync both carrying it)
              if (a.dup && s > 0) batch.push(take[s - 1].b)
              assert.deepEqual((await r.tree.receive(batch)).missing, [])
              s += n
              await check(i, `step ${step} (burst from ${j})`)
            }
          }
          await check(i, `step ${step} (${a.what})`)
        }
        for (let round = 0; round < 2; round++) {
          for (const a of reps) {
            for (const b of reps) {
              if (a === b) continue
              const blocks = [...allOps(a.tree).values()].filter(x => !b.tree.hasOp(cidOfBytes(x)))
              if (blocks.length > 0) await b.tree.receive(blocks)
            }
          }
        }
        const want = read(reps[0].tree)
        for (const [i, r] of reps.entries()) {
          assert.equal(read(r.tree), want, `replica ${i} reads as replica 0`)
          await check(i, 'after the last exchange')
        }
        // every author's every line is there
        assert.equal(want.split('\n').length - 1, 1 + lines.flat().length)
        const fresh = await replica(t)
        await deliver(fresh.tree, [...allOps(reps[0].tree).values()], seed)
        assert.equal(read(fresh.tree), want, 'a fresh replica given every op reads the same bytes')
      } finally {
        await t.run()
      }
    }), { seed: PROP_SEED, numRuns: 60 * RUNS })
  })
})
