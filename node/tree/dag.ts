// The op DAG: every known op by CID, its parents, its heads, and causality. Each op carries a
// vector clock (author -> how many of that author's ops are in its causal past, itself
// included), so "is a in the causal past of b" is one lookup. An author's ops form a chain
// (each names the author's previous heads), which is what makes the per-author count exact.
// A vector clock is indexed by the author's number in this DAG (authors are numbered as they
// first appear), not a Map: a Map per op weighed ~300 bytes, most of a held op's DAG node. The
// first two authors' counts are fields of the node, the rest an array (absent while no op of a
// third author is in the op's past): an array of one or two small ints weighed ~60 bytes, and
// a tree fed by one or two writers (a merge of two replicas) keeps one clock per op.
import type { Op } from './types.ts'
import { IdTable } from './ids.ts'
import { OpRecord } from './op.ts'

/**
 * An op's place in the DAG. An op.ts OpRecord (every op a tree decodes or makes) is its own node:
 * it has these fields, and `op` is itself; other ops (tests') get a node object.
 */
export interface DagNode {
  readonly op: Op
  id: string
  /** This op's place in its author's chain, from 1. */
  seq: number
  /**
   * Highest seq of each author in this op's causal past (itself included), by the author's
   * number (Dag.seen() reads it): author 0's in `c0`, author 1's in `c1`, author k's (k >= 2) in
   * `more[k - 2]`; authors numbered past its end (or all past 1, with no `more`), or holes, are 0.
   */
  c0: number
  c1: number
  more: number[] | undefined
  /**
   * The inode number of what this op creates (crdt.ts inoOf, a sha256 of the id), kept once
   * made: a merge applies an op again for every late op before it. 0 until then.
   */
  ino: number
}

export class Dag {
  /**
   * Every op's id string, found by its characters (ids.ts): decoded ops name known ops by these.
   * The ops are found through it too (`byNumber`), not through a Map keyed by their ids: a Map
   * internalizes a string the first time it is its key or looked up in it (IdTable.indexOf), and
   * most ops' ids (every op's but a create's or link's, which the tree's state keys by) were
   * keys of no other Map.
   */
  readonly ids = new IdTable()
  /** The node of the id `ids` numbers k, at k (undefined for ids that are no op's: ROOT). */
  private readonly byNumber: Array<DagNode | undefined> = []
  private count = 0
  private readonly tips = new Heads<null>()
  /**
   * Each author's number (its index in vector clocks) and its string, kept once: an op decoded
   * from a block has a copy of its own.
   */
  private readonly authors = new Map<string, { n: number, author: string }>()

  has (id: string): boolean {
    return this.get(id) !== undefined
  }

  get (id: string): DagNode | undefined {
    const k = this.ids.indexOf(id)
    return k < 0 ? undefined : this.byNumber[k]
  }

  get size (): number {
    return this.count
  }

  /** Every node, in the order they were added. */
  nodes (): DagNode[] {
    const out: DagNode[] = []
    const all = this.byNumber
    for (let k = 0; k < all.length; k++) {
      const n = all[k]
      if (n !== undefined) out.push(n)
    }
    return out
  }

  /**
   * Add an op whose parents are all known. The op then names its parents by their own id
   * strings, and its author by the string every op of that author shares: each decoded op
   * brings copies of these, and every op the tree holds is kept for as long as it runs, so
   * copies are most of what a held op weighs.
   */
  add (op: Op, id: string = op.id): DagNode {
    let author = this.authors.get(op.author)
    if (author === undefined) {
      author = { n: this.authors.size, author: op.author }
      this.authors.set(op.author, author)
    } else {
      op.author = author.author
    }
    const ids = op.parentIds
    const n = author.n
    // the rest of the clock's length (authors from 2 on), allocated at once (an array grown by
    // push holds spare slots)
    let length = n >= 2 ? n - 1 : 0
    let first: number[] | undefined
    let c0 = 0
    let c1 = 0
    for (let i = 0; i < ids.length; i++) {
      const p = ids[i]
      const parent = this.get(p)
      if (parent === undefined) throw new Error(`parent ${p} of ${id} is unknown`)
      ids[i] = parent.id
      if (parent.c0 > c0) c0 = parent.c0
      if (parent.c1 > c1) c1 = parent.c1
      const pm = parent.more
      if (pm !== undefined) {
        if (pm.length > length) length = pm.length
        first ??= pm
      }
    }
    let more: number[] | undefined
    if (length > 0) {
      // a copy of the first parent's rest when it is as long (an op of its author's chain, most
      // often), merged with the others' (no list of the parents, no fill of zeros first)
      const copied = first !== undefined && first.length === length
      more = copied ? (first as number[]).slice() : new Array(length).fill(0)
      for (let i = 0; i < ids.length; i++) {
        const pm = (this.get(ids[i]) as DagNode).more
        if (pm === undefined || (copied && pm === first)) continue
        for (let a = 0; a < pm.length; a++) if (more[a] < pm[a]) more[a] = pm[a]
      }
    }
    let seq: number
    if (n === 0) seq = c0 = c0 + 1
    else if (n === 1) seq = c1 = c1 + 1
    else seq = (more as number[])[n - 2] = (more as number[])[n - 2] + 1
    let node: DagNode
    if (op instanceof OpRecord && op.seq === 0 && op.id === id) {
      // the op is its own node (every op a tree decodes or makes), unless in a DAG already
      op.seq = seq
      op.c0 = c0
      op.c1 = c1
      op.more = more
      node = op
    } else {
      node = { op, id, seq, c0, c1, more, ino: 0 }
    }
    const k = this.ids.add(id)
    const all = this.byNumber
    // (ids kept without a node, ROOT, before this one: their slots hold undefined, not holes)
    while (all.length <= k) all.push(undefined)
    if (all[k] === undefined) this.count++
    all[k] = node
    this.tips.add(ids, id, null)
    return node
  }

  /** The ops no known op names as a parent. */
  heads (): string[] {
    return this.tips.keys()
  }

  /** How many of `author`'s ops are in the causal past of `node` (itself included). */
  seen (node: DagNode, author: string): number {
    const a = this.authors.get(author)
    if (a === undefined) return 0
    const n = a.n
    return n === 0 ? node.c0 : n === 1 ? node.c1 : node.more?.[n - 2] ?? 0
  }

  /** True when `a` is in the causal past of `b` (a strict ancestor). */
  before (a: DagNode, b: DagNode): boolean {
    if (a === b) return false
    return this.seen(b, a.op.author) >= a.seq
  }

  /** Neither op is in the other's causal past. */
  concurrent (a: DagNode, b: DagNode): boolean {
    return a !== b && !this.before(a, b) && !this.before(b, a)
  }
}

/**
 * The heads after an op `id` whose parents are `parents` joins them (with `value`): `heads`
 * changed, or a new map of `id` alone when its parents are every head (an author's chain). A map
 * keeps a deleted key's slot until it is rebuilt: a map of one or two heads that each op added to
 * and deleted from was rebuilt (a call into V8's runtime and a new table) every few ops, and
 * shrunk, another, whenever a delete emptied it. The same members, in the same order, as the
 * parents' deletes then the add. (Heads keeps one head without a map.)
 */
export function nextHeads<V> (heads: Map<string, V>, parents: readonly string[], id: string, value: V): Map<string, V> {
  if (parents.length === heads.size && allIn(heads, parents)) return new Map<string, V>().set(id, value)
  heads.set(id, value)
  for (let i = 0; i < parents.length; i++) heads.delete(parents[i])
  return heads
}

/** Most heads Heads keeps in arrays; past them, in a Map. */
export const FEW_HEADS = 32

/**
 * The heads of a DAG as ops join it (nextHeads()'s rule: the new op in, then its parents out, in
 * that order), each with a value. One head (an author's chain, nearly always: every op names the
 * one head there is) is kept in two fields, not a map: nextHeads() made a new map of one per op,
 * ~180 bytes of garbage for each op applied (and Dag's tips the same again). Two to `few` heads
 * (two replicas' chains, as a merge applies them) are kept in two arrays, found with `===`: a
 * Map keyed by each new op's id internalized every id as it joined (IdTable.indexOf), ~1.2 us
 * an op for the DAG's tips and the tree's stamp heads in a merge's receive. A map past `few`
 * heads, and back to the fields once one is left.
 */
export class Heads<V> {
  private oneId: string | undefined = undefined
  private oneValue: V | undefined = undefined
  private fewIds: string[] | undefined = undefined
  private fewValues: V[] | undefined = undefined
  private many: Map<string, V> | undefined = undefined
  private readonly few: number

  /** `few`: most heads kept in arrays (tests make it small). */
  constructor (few = FEW_HEADS) {
    this.few = few
  }

  /** `id` (with `value`) joins; its `parents` are heads no longer. */
  add (parents: readonly string[], id: string, value: V): void {
    const many = this.many
    if (many !== undefined) {
      const next = nextHeads(many, parents, id, value)
      if (next.size === 1) {
        this.many = undefined
        this.one(id, value)
      } else {
        this.many = next
      }
      return
    }
    const ids = this.fewIds
    if (ids !== undefined) {
      const values = this.fewValues as V[]
      if (parents.length === ids.length && allInList(ids, parents)) {
        this.one(id, value)
        return
      }
      // nextHeads()'s order: the op in (in place when it is a head already, as Map.set), then its parents out
      const at = ids.indexOf(id)
      if (at >= 0) values[at] = value
      else {
        ids.push(id)
        values.push(value)
      }
      for (let i = 0; i < parents.length; i++) {
        const k = ids.indexOf(parents[i])
        if (k < 0) continue
        ids.splice(k, 1)
        values.splice(k, 1)
      }
      if (ids.length === 1) this.one(ids[0], values[0])
      else if (ids.length > this.few) {
        const m = new Map<string, V>()
        for (let i = 0; i < ids.length; i++) m.set(ids[i], values[i])
        this.many = m
        this.fewIds = undefined
        this.fewValues = undefined
      }
      return
    }
    if (this.oneId !== undefined && !parents.includes(this.oneId)) {
      if (id === this.oneId) {
        this.oneValue = value
        return
      }
      if (this.few >= 2) {
        this.fewIds = [this.oneId, id]
        this.fewValues = [this.oneValue as V, value]
      } else {
        this.many = new Map<string, V>().set(this.oneId, this.oneValue as V).set(id, value)
      }
      this.oneId = undefined
      this.oneValue = undefined
      return
    }
    this.oneId = id
    this.oneValue = value
  }

  /** One head left: the fields. */
  private one (id: string, value: V): void {
    this.fewIds = undefined
    this.fewValues = undefined
    this.oneId = id
    this.oneValue = value
  }

  get size (): number {
    return this.many !== undefined ? this.many.size : this.fewIds !== undefined ? this.fewIds.length : this.oneId !== undefined ? 1 : 0
  }

  /** The heads' ids, oldest joined first. */
  keys (): string[] {
    if (this.many !== undefined) return [...this.many.keys()]
    if (this.fewIds !== undefined) return this.fewIds.slice()
    return this.oneId !== undefined ? [this.oneId] : []
  }

  get (id: string): V | undefined {
    if (this.many !== undefined) return this.many.get(id)
    if (this.fewIds !== undefined) {
      const k = this.fewIds.indexOf(id)
      return k < 0 ? undefined : (this.fewValues as V[])[k]
    }
    return id === this.oneId ? this.oneValue : undefined
  }
}

/**
 * Every key of `keys` is in `set`, and no key is named twice (the decoders refuse an op naming a
 * parent twice, but Dag.add does not check it: with tips {a, b}, parents [a, a] must keep b).
 */
function allIn (set: { has: (k: string) => boolean }, keys: readonly string[]): boolean {
  for (let i = 0; i < keys.length; i++) {
    if (!set.has(keys[i])) return false
    for (let j = 0; j < i; j++) if (keys[j] === keys[i]) return false
  }
  return true
}

/** allIn() of a list of heads (Heads' arrays). */
function allInList (list: readonly string[], keys: readonly string[]): boolean {
  for (let i = 0; i < keys.length; i++) {
    if (!list.includes(keys[i])) return false
    for (let j = 0; j < i; j++) if (keys[j] === keys[i]) return false
  }
  return true
}
