// Multi-extent ops (issue 15 item 1): an `append` op with `offset` and `more` carries several
// positioned extents of one file (the ranges one fsync made durable), and the tree reads it as
// the same extents made by consecutive ops of its author. Checked here as a property: two worlds
// of three replicas each (the same authors) run the same actions, one committing each group of
// extents as one multi-extent op, the other as one op per extent, back to back; with appends,
// whole writes, truncates, folds and partial folds between them, and syncs in between. Every
// file (/f and its conflict siblings) reads the same bytes in both worlds, on every replica and
// in every delivery order; each multi-extent op is one version whose bytes (versionBytes) are
// those after the last of its extents in the other world, and that GC keeps (versionContents).
// (Up to the choice among several merge-made siblings of one branch, which follows op ids:
// manySiblings().) Also: a multi-extent op round-trips through encode/decode, and malformed ones are refused with
// a clear error.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { Teardown } from '../../harness/tmp.ts'
import { deliver, replica, allOps, snapshot, sync, mkfile, write, sec, makeKey, signerFor, type Replica } from '../helpers/tree.ts'
import { InvalidOpError, MAX_OP_EXTENTS, MAX_INLINE_BYTES, MAX_OP_BYTES, type Tree, type OpBody, type Content } from '../../node/tree/index.ts'
import { checkBody, createOp, decodeOp } from '../../node/tree/op.ts'
import { extentBodies } from '../../node/volume.ts'
import { Journal } from '../../node/tree/journal.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261203)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))
// to hunt (a run's authors come from its seed, so fast-check's seed and path replay it):
// MULTIEXT_RUNS (runs, x RUNS), MULTIEXT_LEN (longest action list), MULTIEXT_NOSHRINK (stop at
// the first failure), MULTIEXT_PATH (replay one), MULTIEXT_TIMEOUT (ms, to let shrinking finish)

const enc = new TextEncoder()
const dec = new TextDecoder()
const BASE = 'abcdefghijklmnopqrstuvwxyz0123456789'

/** A state's bytes as text (gaps as '.'): the content up to the first extent, each extent over it in order. */
function render (content: Content | null, size: number, extents: ReadonlyArray<{ content: Content, at: number, size: number, pos: number, before: number }>): string {
  const out = new Uint8Array(size)
  const c = content === null ? new Uint8Array(0) : (content as { inline: Uint8Array }).inline
  out.set(c.subarray(0, Math.min(c.byteLength, extents.length > 0 ? extents[0].before : size)))
  for (const x of extents) out.set((x.content as { inline: Uint8Array }).inline.subarray(x.at, x.at + x.size), x.pos)
  return dec.decode(out).replaceAll('\u0000', '.')
}

function readInode (tree: Tree, id: string): string {
  const inode = tree.get(id)!
  return render(inode.content, inode.size, inode.extents ?? [])
}

/** The live files: /f and its conflict siblings, name -> inode. */
function files (tree: Tree): Map<string, string> {
  const out = new Map<string, string>()
  for (const e of tree.children(tree.root)) if (e.name === 'f' || e.name.startsWith('f.conflict-')) out.set(e.name, e.inode)
  return out
}

/** Every live file's bytes, by name (sorted: comparable across worlds, whose op ids differ). */
function bytesOf (tree: Tree): string {
  return JSON.stringify([...files(tree)].map(([name, id]) => [name, readInode(tree, id)]).sort())
}

/** Every version of every live file reads contents GC keeps (contents(), versionContents()). */
function historyKept (tree: Tree): void {
  for (const [name, inode] of files(tree)) {
    const kept = new Set([...tree.contents(inode), ...tree.versionContents(inode)])
    for (const v of tree.history(inode)) {
      const s = tree.versionBytes(inode, v.op.toString())!
      if (s.content !== null) assert.ok(kept.has(s.content), `${name}: a version reads a content GC does not keep`)
      for (const x of s.extents) assert.ok(kept.has(x.content), `${name}: a version reads an extent GC does not keep`)
    }
  }
}

/**
 * True when the tree has more than one merge-made conflict sibling (live or retired). Which of
 * several a later extent of their branch lands in (crdt.ts branchOff, ownSiblings) follows their
 * entry ids, the ids of the ops that made them: a multi-extent op and its extents as separate
 * ops have other ids, so from then on the two worlds may differ by that choice alone (each
 * converging on its own), and are compared no more.
 */
function manySiblings (tree: Tree): boolean {
  let n = 0
  for (const c of (tree as unknown as { state: { conflicts: Map<string, { write: boolean }> } }).state.conflicts.values()) if (c.write && ++n > 1) return true
  return false
}

interface Act { r: number, what: string, to: number, extents: Array<{ offset: number, len: number }>, part: number, from: number, span: number }

/**
 * A fold (whole, or partial when `partial`) of /f as replica `r` reads it, chosen by the action's
 * numbers: the same choice in both worlds, whose states are the same extents.
 */
function foldBody (tree: Tree, inode: string, a: Act, partial: boolean, time: bigint): OpBody | undefined {
  const fp = tree.foldPoint(inode)
  if (fp === undefined) return undefined
  const can = [...new Set(fp.numbers)].filter(n => n >= fp.top && n > fp.covered).sort((x, y) => x - y)
  if (can.length === 0) return undefined
  const c = can[a.part % can.length]
  const size = fp.sizes[c - fp.covered - 1]
  const now = new Uint8Array(size)
  if (fp.content !== null) now.set((fp.content as { inline: Uint8Array }).inline.subarray(0, Math.min(fp.size, size)))
  const full = now.slice()
  fp.extents.forEach((x, i) => { if (fp.numbers[i] <= c) full.set((x.content as { inline: Uint8Array }).inline.subarray(x.at, x.at + x.size), x.pos) })
  const body: OpBody = { type: 'fold', inode, base: fp.base, covers: c, content: null, size, time }
  if (partial && size > 0) {
    const from = a.from % size
    const ranges = [from, Math.min(size, from + a.span)]
    now.set(full.subarray(ranges[0], ranges[1]), ranges[0])
    body.ranges = ranges
    if (fp.over !== undefined) body.over = fp.over
    body.content = { inline: now }
  } else {
    body.content = full.byteLength === 0 ? null : { inline: full }
  }
  return body
}

describe('node/tree multi-extent ops', function () {
  // every change() the CRDT makes with an old value it read checks that value (journal.ts)
  before(() => { Journal.checking = true })
  after(() => { Journal.checking = false })
  this.timeout(Number(process.env.MULTIEXT_TIMEOUT ?? 300_000))

  it('a multi-extent op reads as its extents made by consecutive ops, on every replica and in every delivery order (property)', async () => {
    const act = fc.record({
      r: fc.nat(2),
      what: fc.constantFrom('multi', 'multi', 'multi', 'append', 'write', 'truncate', 'fold', 'pfold', 'sync', 'sync'),
      to: fc.nat(2),
      extents: fc.array(fc.record({ offset: fc.nat(60), len: fc.integer({ min: 1, max: 10 }) }), { minLength: 1, maxLength: 5 }),
      part: fc.nat(8),
      from: fc.nat(80),
      span: fc.integer({ min: 1, max: 30 })
    })
    await fc.assert(fc.asyncProperty(fc.array(act, { minLength: 3, maxLength: Number(process.env.MULTIEXT_LEN ?? 24) }), fc.integer(), async (list, seed) => {
      const t = new Teardown()
      try {
        // keys from the run's seed: the authors (and so every op id and tie-break) replay with the run
        const keys = await Promise.all([0, 1, 2].map(async i => await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`${seed}/${i}`).digest())))
        // world 0: multi-extent ops; world 1: the same extents, one op each, back to back
        const worlds: Replica[][] = []
        for (let w = 0; w < 2; w++) worlds.push(await Promise.all(keys.map(async key => await replica(t, { key }))))
        for (const reps of worlds) {
          await reps[0].tree.commit(mkfile(reps[0].tree.root, 'f', BASE, sec(1)))
          for (const r of reps.slice(1)) await sync(reps[0].tree, r.tree)
        }
        /** multi-extent op id -> the id of the last of the same extents' ops in world 1 */
        const twins = new Map<string, string>()
        /** multi-extent op id -> how many extents it has */
        const parts = new Map<string, number>()
        let k = 0
        /** some replica had several merge-made siblings at once (manySiblings) */
        let many = false
        for (let step = 0; step < list.length; step++) {
          const a = list[step]
          // every action's wall clock is past every stamp so far: no other op sorts between a
          // multi-extent op's twins in world 1 (they differ in the counter only)
          const ms = 1_700_000_100_000 + step * 10
          const time = BigInt(ms) * 1_000_000n
          let last: string[] = []
          for (let w = 0; w < 2; w++) {
            const reps = worlds[w]
            const r = reps[a.r]
            r.clock.ms = ms
            const inode = r.tree.lookup(r.tree.root, 'f')!.inode
            const tree = r.tree
            if (a.what === 'multi') {
              // each extent its own bytes: the author's letter, then which extent it is
              const ext = a.extents.map((x, i) => {
                const bytes = enc.encode(('ABC'[a.r] + String((k + i) % 10)).repeat(x.len).slice(0, x.len))
                return { content: { inline: bytes } as Content, at: 0, size: bytes.byteLength, offset: x.offset }
              })
              if (w === 0) {
                const [first, ...more] = ext
                const body: OpBody = { type: 'append', inode, ...first, time }
                if (more.length > 0) body.more = more
                last.push((await tree.commit(body)).cid.toString())
              } else {
                let id = ''
                for (const x of ext) id = (await tree.commit({ type: 'append', inode, ...x, time })).cid.toString()
                last.push(id)
              }
            } else if (a.what === 'append') {
              const bytes = enc.encode(('abc'[a.r] + String(k % 10)).repeat(a.span % 7 + 1))
              await tree.commit({ type: 'append', inode, content: { inline: bytes }, at: 0, size: bytes.byteLength, time })
            } else if (a.what === 'write' || a.what === 'truncate') {
              const now = readInode(tree, inode)
              await tree.commit(write(inode, a.what === 'write' ? now + `[w${k}]` : now.slice(0, a.from % (now.length + 1)), time))
            } else if (a.what === 'fold' || a.what === 'pfold') {
              const before = bytesOf(tree)
              const body = foldBody(tree, inode, a, a.what === 'pfold', time)
              if (body !== undefined) await tree.commit(body)
              assert.equal(bytesOf(tree), before, 'a fold changes no byte')
            } else if (a.to !== a.r) {
              await sync(tree, reps[a.to].tree)
            }
          }
          if (last.length === 2) {
            twins.set(last[0], last[1])
            parts.set(last[0], a.extents.length)
          }
          k += 5
          many ||= worlds.some(reps => reps.some(r => manySiblings(r.tree)))
          if (!many) assert.equal(bytesOf(worlds[0][a.r].tree), bytesOf(worlds[1][a.r].tree), `step ${step} (${a.what}): both worlds read alike`)
        }
        for (const reps of worlds) for (let round = 0; round < 2; round++) for (const x of reps) for (const y of reps) if (x !== y) await sync(x.tree, y.tree)
        for (const [w, reps] of worlds.entries()) {
          for (const r of reps) assert.equal(bytesOf(r.tree), bytesOf(reps[0].tree), `world ${w}: every replica reads alike`)
          for (const r of reps) assert.equal(snapshot(r.tree), snapshot(reps[0].tree))
        }
        const want = bytesOf(worlds[1][0].tree)
        many ||= worlds.some(reps => reps.some(r => manySiblings(r.tree)))
        if (!many) assert.equal(bytesOf(worlds[0][0].tree), want, 'both worlds read alike')
        const tree = worlds[0][0].tree
        const twin = worlds[1][0].tree
        historyKept(tree)
        // each multi-extent op is one version of a file, read as the file after its last extent's twin
        for (const [multi, single] of many ? [] : twins) {
          for (const [name, inode] of files(tree)) {
            const vs = tree.history(inode).filter(v => v.op.toString() === multi)
            // one version, or more when its later extents branched off to a conflict sibling (each
            // branch a version, as their twins' are; a later write that saw it may have retired it)
            assert.ok(vs.length <= parts.get(multi)!, `${name}: a multi-extent op is one version per branch its extents took`)
            if (vs.length === 0) continue
            const otherInode = files(twin).get(name)
            const other = otherInode === undefined ? undefined : twin.versionBytes(otherInode, single)
            if (other === undefined) continue
            const v = tree.versionBytes(inode, multi)!
            assert.equal(render(v.content, v.size, v.extents), render(other.content, other.size, other.extents), `${name}: version bytes of a multi-extent op`)
          }
        }
        const blocks = [...allOps(tree).values()]
        for (const s of [seed, seed ^ 0x5bd1e995]) {
          const fresh = await replica(t)
          await deliver(fresh.tree, blocks, s)
          assert.equal(bytesOf(fresh.tree), bytesOf(tree), 'a fresh replica reads alike, whatever the delivery order')
          assert.equal(snapshot(fresh.tree), snapshot(tree))
          historyKept(fresh.tree)
        }
      } finally {
        await t.run()
      }
    }), { seed: PROP_SEED, numRuns: Number(process.env.MULTIEXT_RUNS ?? 40) * RUNS, endOnFailure: process.env.MULTIEXT_NOSHRINK !== undefined, ...(process.env.MULTIEXT_PATH !== undefined ? { path: process.env.MULTIEXT_PATH } : {}) })
  })

  it('a multi-extent op round-trips, and the volume makes one op per MAX_OP_EXTENTS extents', async () => {
    const signer = signerFor(await makeKey())
    const inode = 'bafyinode'
    const piece = (i: number): { content: Content, at: number, size: number, offset: number } =>
      ({ content: { inline: new Uint8Array(MAX_INLINE_BYTES).fill(i) }, at: 0, size: MAX_INLINE_BYTES, offset: i * 3 * MAX_INLINE_BYTES })
    const bodies = extentBodies(inode, Array.from({ length: MAX_OP_EXTENTS + 3 }, (_, i) => piece(i)), sec(2))
    assert.equal(bodies.length, 2)
    assert.equal((bodies[0] as { more?: unknown[] }).more?.length, MAX_OP_EXTENTS - 1)
    assert.equal((bodies[1] as { more?: unknown[] }).more?.length, 2)
    // a full op of inline pieces fits an op block
    const op = await createOp(signer, bodies[0], [1, 0], [])
    assert.ok(op.bytes.byteLength <= MAX_OP_BYTES)
    const back = await decodeOp(op.bytes)
    assert.deepEqual(back.body, bodies[0])
    assert.equal(extentBodies(inode, [piece(1)], sec(2)).every(b => !('more' in b)), true, 'one extent: a plain positioned append, as old hosts write')
  })

  it('refuses malformed multi-extent ops with a clear error', async () => {
    const x = { content: { inline: enc.encode('ab') }, at: 0, size: 2, offset: 5 }
    const ok: OpBody = { type: 'append', inode: 'bafyinode', content: { inline: enc.encode('xy') }, at: 0, size: 2, offset: 0, more: [x], time: sec(2) }
    checkBody(ok)
    const bad: Array<[string, unknown, RegExp]> = [
      ['more without offset', { ...ok, offset: undefined }, /only in a positioned append/],
      ['empty more', { ...ok, more: [] }, /more must list 1 to/],
      ['more not a list', { ...ok, more: x }, /more must list 1 to/],
      ['too many extents', { ...ok, more: Array.from({ length: MAX_OP_EXTENTS }, () => x) }, /more must list 1 to 15 extents/],
      ['an extent not a map', { ...ok, more: [5] }, /extent 1 of more is not a map/],
      ['an extent without offset', { ...ok, more: [{ ...x, offset: undefined }] }, /extent 1 of more lacks offset/],
      ['an extent with an unknown field', { ...ok, more: [x, { ...x, first: true }] }, /extent 2 of more has unknown field first/],
      ['an empty extent', { ...ok, more: [{ ...x, content: { inline: new Uint8Array(0) }, size: 0 }] }, /at least one byte \(extent 1 of more\)/],
      ['inline size mismatch', { ...ok, more: [{ ...x, size: 3 }] }, /whole content.*extent 1 of more/],
      ['negative offset', { ...ok, more: [{ ...x, offset: -1 }] }, /offset \(extent 1 of more\) must be an integer/],
      ['offset past the largest size', { ...ok, more: [{ ...x, offset: Number.MAX_SAFE_INTEGER - 1 }] }, /past the largest size \(offset \+ size\) \(extent 1 of more\)/],
      ['bad content', { ...ok, more: [{ ...x, content: { blob: 1 } }] }, /content must be/],
      ['inline content too big', { ...ok, more: [{ ...x, content: { inline: new Uint8Array(MAX_INLINE_BYTES + 1) }, size: MAX_INLINE_BYTES + 1 }] }, /inline content must be at most/]
    ]
    for (const [what, body, re] of bad) {
      const b = Object.fromEntries(Object.entries(body as object).filter(([, v]) => v !== undefined))
      assert.throws(() => checkBody(b as OpBody), (err: Error) => err instanceof InvalidOpError && re.test(err.message), what)
    }
  })
})
