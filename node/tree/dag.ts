// The op DAG: every known op by CID, its parents, its heads, and causality. Each op carries a
// vector clock (author -> how many of that author's ops are in its causal past, itself
// included), so "is a in the causal past of b" is one lookup. An author's ops form a chain
// (each names the author's previous heads), which is what makes the per-author count exact.
import type { Op } from './types.ts'

export interface DagNode {
  op: Op
  id: string
  /** This op's place in its author's chain, from 1. */
  seq: number
  /** author -> highest seq of that author in this op's causal past (itself included). */
  vc: Map<string, number>
}

export class Dag {
  readonly nodes = new Map<string, DagNode>()
  private readonly tips = new Set<string>()
  /** Each author's string, once: an op decoded from a block has a copy of its own. */
  private readonly authors = new Map<string, string>()

  has (id: string): boolean {
    return this.nodes.has(id)
  }

  get (id: string): DagNode | undefined {
    return this.nodes.get(id)
  }

  get size (): number {
    return this.nodes.size
  }

  /**
   * Add an op whose parents are all known. The op then names its parents by their own CID
   * objects and id strings, and its author by the string every op of that author shares: each
   * decoded op brings copies of these (a CID is five objects), and every op the tree holds is
   * kept for as long as it runs, so copies are most of what a held op weighs.
   */
  add (op: Op, id: string = op.id): DagNode {
    const vc = new Map<string, number>()
    const ids = op.parentIds
    for (let i = 0; i < ids.length; i++) {
      const p = ids[i]
      const parent = this.nodes.get(p)
      if (parent === undefined) throw new Error(`parent ${p} of ${id} is unknown`)
      ids[i] = parent.id
      op.parents[i] = parent.op.cid
      // forEach: a for-of over the entries makes an [author, seq] array per author per op
      parent.vc.forEach((s, a) => { if ((vc.get(a) ?? 0) < s) vc.set(a, s) })
    }
    const author = this.authors.get(op.author)
    if (author === undefined) this.authors.set(op.author, op.author)
    else op.author = author
    const seq = (vc.get(op.author) ?? 0) + 1
    vc.set(op.author, seq)
    const node: DagNode = { op, id, seq, vc }
    this.nodes.set(id, node)
    for (const p of op.parentIds) this.tips.delete(p)
    this.tips.add(id)
    return node
  }

  /** The ops no known op names as a parent. */
  heads (): string[] {
    return [...this.tips]
  }

  /** True when `a` is in the causal past of `b` (a strict ancestor). */
  before (a: DagNode, b: DagNode): boolean {
    if (a === b) return false
    return (b.vc.get(a.op.author) ?? 0) >= a.seq
  }

  /** Neither op is in the other's causal past. */
  concurrent (a: DagNode, b: DagNode): boolean {
    return a !== b && !this.before(a, b) && !this.before(b, a)
  }
}
