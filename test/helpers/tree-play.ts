// The property tests' model of users (test/node/tree-props.test.ts): random steps picked on
// each replica's own view, replayed on three replicas with partial syncs, and the "no write is
// lost" check. Shared with the regression tests that replay recorded counterexamples.
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import type { Teardown } from '../../harness/tmp.ts'
import { baseName, isConflictName, sameContent, type Tree, type InodeId, type Entry, type OpBody } from '../../node/tree/index.ts'
import { replica, sync, allOps, type Replica } from './tree.ts'

const NAMES = ['a', 'b', 'c']
const TEXTS = ['x', 'y', 'z', 'w']
const enc = new TextEncoder()
const dec = new TextDecoder()

/**
 * One user step: replica r makes op kind t (12: sync from a peer; 13: resolve a conflict
 * sibling: overwrite, delete or rename it; 14: create a file through a mount: an empty create,
 * then, unless c % 4 is 3 (a touch), the first write of that open); a, b, c pick targets; dt ms pass.
 */
export interface Step { r: number, t: number, a: number, b: number, c: number, dt: number }

/**
 * A write (or a create with content) made during a play. `resolved`: a user deleted or
 * overwrote a conflict sibling showing it (it need not stay visible).
 */
export interface Written { inode: InodeId, text: string, cid: string, resolved?: boolean }

/** Live entries reachable from the root, with their inodes' kinds. */
export function walk (tree: Tree): Array<{ e: Entry, kind: string }> {
  const out: Array<{ e: Entry, kind: string }> = []
  const todo: InodeId[] = [tree.root]
  while (todo.length > 0) {
    const dir = todo.pop() as InodeId
    for (const e of tree.children(dir)) {
      const kind = tree.get(e.inode)!.kind
      out.push({ e, kind })
      if (kind === 'dir') todo.push(e.inode)
    }
  }
  return out
}

/** Live conflict-named files, in walk order. */
function conflictSiblings (tree: Tree): Entry[] {
  return walk(tree).filter(x => x.kind === 'file' && isConflictName(x.e.name)).map(x => x.e)
}

/** A random op a user could make on this replica's current view (null: nothing to do). */
export function pick (tree: Tree, s: Step, time: bigint): OpBody | null {
  const all = walk(tree)
  const dirs = [tree.root, ...all.filter(x => x.kind === 'dir').map(x => x.e.inode)]
  // conflict siblings are left alone: deleting or overwriting them is a user's informed choice
  const files = all.filter(x => x.kind === 'file' && !isConflictName(x.e.name)).map(x => x.e)
  const entries = all.filter(x => !isConflictName(x.e.name)).map(x => x.e)
  const dir = dirs[s.a % dirs.length]
  const name = NAMES[s.b % NAMES.length]
  const text = TEXTS[s.c % TEXTS.length]
  const free = tree.lookup(dir, name) === undefined
  switch (s.t) {
    case 13: {
      const sibs = conflictSiblings(tree)
      if (sibs.length === 0) return null
      const e = sibs[s.a % sibs.length]
      if (s.b % 3 === 0) return { type: 'write', inode: e.inode, content: { inline: enc.encode(text) }, size: text.length, time }
      if (s.b % 3 === 1) return { type: 'unlink', entry: e.id, time }
      return free ? { type: 'move', entry: e.id, parent: dir, name, time } : null
    }
    case 14:
      return free ? { type: 'create', parent: dir, name, kind: 'file', mode: 0o644, uid: 0, gid: 0, time } : null
    case 0: case 1:
      return free ? { type: 'create', parent: dir, name, kind: 'dir', mode: 0o755, uid: 0, gid: 0, time } : null
    case 2: case 3:
      return free ? { type: 'create', parent: dir, name, kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: enc.encode(text) }, size: text.length, time } : null
    case 4: case 5: {
      if (files.length === 0) return null
      const f = files[s.b % files.length]
      return { type: 'write', inode: f.inode, content: { inline: enc.encode(text) }, size: text.length, time }
    }
    case 6: {
      if (entries.length === 0) return null
      const e = entries[s.c % entries.length]
      const there = tree.lookup(dir, name)
      if (there !== undefined && (there.id === e.id || tree.get(there.inode)!.kind === 'dir' || tree.get(e.inode)!.kind === 'dir' || isConflictName(there.name))) return null
      return { type: 'move', entry: e.id, parent: dir, name, ...(there !== undefined ? { replace: there.id } : {}), time }
    }
    case 7: {
      if (files.length === 0) return null
      return { type: 'unlink', entry: files[s.a % files.length].id, time }
    }
    case 8: {
      const empty = all.filter(x => x.kind === 'dir' && tree.children(x.e.inode).length === 0)
      if (empty.length === 0) return null
      return { type: 'unlink', entry: empty[s.a % empty.length].e.id, time }
    }
    case 9: {
      const target = [tree.root, ...all.map(x => x.e.inode)][s.c % (all.length + 1)]
      return { type: 'setattr', inode: target, mode: s.b & 0o777, ...(s.a % 2 === 0 ? { uid: s.a } : {}), time }
    }
    case 10: {
      if (files.length === 0 || !free) return null
      return { type: 'link', parent: dir, name, inode: files[s.b % files.length].inode, time }
    }
    default: {
      if (all.length === 0) return null
      return { type: 'setxattr', inode: all[s.a % all.length].e.inode, name: `user.${name}`, value: enc.encode(text), time }
    }
  }
}

/** Run the steps on `n` replicas (3 by default) with partial syncs; then sync everyone. */
export async function play (t: Teardown, steps: Step[], written: Written[], n = 3): Promise<Replica[]> {
  const reps: Replica[] = []
  for (let i = 0; i < n; i++) reps.push(await replica(t))
  for (const s of steps) {
    const r = reps[s.r % n]
    r.clock.ms += s.dt
    if (s.t === 12) {
      await sync(reps[(s.r + 1 + (s.a % (n - 1))) % n].tree, r.tree)
      continue
    }
    const body = pick(r.tree, s, BigInt(r.clock.ms) * 1_000_000n)
    if (body === null) continue
    if (s.t === 13 && body.type !== 'move') {
      // the version the sibling shows is the user's to drop now
      const inode = conflictSiblings(r.tree)[s.a % conflictSiblings(r.tree).length].inode
      const shown = r.tree.get(inode)!.content
      const ops = new Set(r.tree.history(inode).filter(v => sameContent(v.content, shown)).map(v => v.op.toString()))
      for (const w of written) if (ops.has(w.cid)) w.resolved = true
    }
    const { cid, id } = await r.tree.commit(body)
    if (body.type === 'write' || (body.type === 'create' && body.content !== undefined)) {
      const c = body.content as { inline: Uint8Array }
      written.push({ inode: body.type === 'write' ? body.inode : id, text: dec.decode(c.inline), cid: cid.toString() })
    }
    if (s.t === 14 && s.c % 4 !== 3) {
      const text = TEXTS[s.c % TEXTS.length]
      const w = await r.tree.commit({ type: 'write', inode: id, content: { inline: enc.encode(text) }, size: text.length, first: true, time: BigInt(r.clock.ms) * 1_000_000n })
      written.push({ inode: id, text, cid: w.cid.toString() })
    }
  }
  for (let round = 0; round < 2; round++) {
    for (const a of reps) for (const b of reps) if (a !== b) await sync(a.tree, b.tree)
  }
  return reps
}

/** op cid -> the cids in its causal past. */
export function ancestry (ops: Map<string, Uint8Array>): Map<string, Set<string>> {
  const parents = new Map<string, string[]>()
  for (const [cid, bytes] of ops) parents.set(cid, (dagCbor.decode(bytes) as any).parents.map(String))
  const memo = new Map<string, Set<string>>()
  const of = (cid: string): Set<string> => {
    let s = memo.get(cid)
    if (s !== undefined) return s
    s = new Set()
    for (const p of parents.get(cid) ?? []) {
      s.add(p)
      for (const q of of(p)) s.add(q)
    }
    memo.set(cid, s)
    return s
  }
  for (const cid of ops.keys()) of(cid)
  return memo
}

/**
 * Assert that no write is lost: every written version is in its file's history(), and every
 * version no later write superseded is visible (under its name or as a conflict sibling)
 * while its file is linked.
 */
export function assertNoWriteLost (tree: Tree, written: Written[]): void {
  const past = ancestry(allOps(tree))
  const visible = new Set(walk(tree).filter(x => x.kind === 'file').map(x => {
    const c = tree.get(x.e.inode)!.content
    return c !== null && 'inline' in c ? dec.decode(c.inline) : ''
  }))
  for (const w of written) {
    const versions = tree.history(w.inode)
    assert.ok(versions.some(v => v.op.toString() === w.cid || (v.content !== null && 'inline' in v.content && dec.decode(v.content.inline) === w.text)), `version ${w.cid} missing from history`)
    const inode = tree.get(w.inode)!
    // superseded: a later write to the same file made after seeing this version (this
    // write, or a concurrent identical one: identical versions are one)
    const same = (o: Written): boolean => tree.get(o.inode)!.id === inode.id
    const one = written.filter(o => same(o) && o.text === w.text && (o === w || (!past.get(o.cid)!.has(w.cid) && !past.get(w.cid)!.has(o.cid))))
    const superseded = written.some(o => same(o) && one.some(v => past.get(o.cid)!.has(v.cid)))
    if (!superseded && w.resolved !== true && inode.nlink > 0) assert.ok(visible.has(w.text), `unsuperseded write ${w.text} (${w.cid}) is not visible`)
  }
}

/** Whether conflict entry `entry` is a write-made sibling (crdt.ts ConflictRec.write), not a name-clash loser. */
function writeMade (tree: Tree, entry: string): boolean {
  const rec = (tree as unknown as { state: { conflicts: Map<string, { write: boolean }> } }).state.conflicts.get(entry)
  assert.ok(rec !== undefined, `no conflict record for ${entry}`)
  return rec.write
}

/**
 * Assert that merges did not litter the tree (DESIGN.md §6): no name carries two conflict
 * suffixes; no conflict-named entry shows the same file as another entry of its base name in
 * its directory (a second name for one file); no two write-made conflict siblings of one file
 * show the same content (two copies of one conflict).
 */
export function assertNoLitter (tree: Tree): void {
  const all = walk(tree)
  const content = (inode: InodeId): string => {
    const c = tree.get(inode)!.content
    return c === null ? '' : 'inline' in c ? dec.decode(c.inline) : c.manifest.toString()
  }
  for (const { e } of all) assert.ok(e.name.split('.conflict-').length <= 2, `conflict of a conflict: ${e.name}`)
  const byBase = new Map<string, Entry[]>()
  for (const { e } of all) {
    const key = `${e.parent}/${baseName(e.name)}`
    byBase.set(key, [...(byBase.get(key) ?? []), e])
  }
  for (const [key, list] of byBase) {
    const conflicted = list.filter(e => isConflictName(e.name))
    for (const c of conflicted) {
      for (const o of list) {
        if (o === c) continue
        assert.ok(o.inode !== c.inode, `${key}: ${c.name} is a second name of the file at ${o.name}`)
      }
    }
  }
  const sibs = new Map<string, { inode: InodeId, path: string }>()
  for (const c of tree.conflicts()) {
    const i = tree.get(c.inode)!
    // only siblings made by a write conflict (a new inode: the CRDT's record says `write`) can
    // be copies; a file that lost a name clash may hold the same bytes by chance (seed 777: one
    // created empty and then written, whose history starts at its write, not its create, was
    // taken for a write-made sibling when its first version's op was what told them apart)
    if (i.kind !== 'file' || c.inode === c.of || !writeMade(tree, c.entry)) continue
    const key = `${tree.get(c.of)?.id ?? c.of}:${content(c.inode)}`
    const seen = sibs.get(key)
    assert.ok(seen === undefined || seen.inode === i.id, `two conflict siblings of ${c.of} show ${content(c.inode)}: ${seen?.path} and ${c.path}`)
    sibs.set(key, { inode: i.id, path: c.path })
  }
}
