// Which of a file's extents meet a byte range, without walking them all (issue 15, the fsync
// path). A positioned extent landing on a file is checked against every extent of the file's
// list (crdt.ts `tail`: the appends since its base, folded ones too) that meets its bytes
// (Crdt.overlapped: a concurrent one with other bytes there is a conflict). Walking the whole
// list for each made 4 KiB random writes with an fsync every 16 cost O(extents) per write: with
// thousands of extents left unfolded in sparse chunks (partial folds), that walk was the largest
// single cost of the fsync path in the profile.
//
// A TailIndex holds the nodes of one list in a grid of buckets at a few scales: a node of s
// bytes goes into the finest level whose buckets are at least s bytes wide (so into one or two
// buckets there); a range query visits the one or two buckets of each level its bytes meet and
// keeps the nodes that meet it. Each node is reported once: from the bucket holding the first
// byte it shares with the range. Nodes come back newest first (by `n`), the order of the walk.
//
// Lists are persistent (a new extent makes a new head sharing the rest; undo goes back to an
// older head), so an index belongs to one head: TailIndex.of(tail) finds the index of the head or
// of a recent ancestor (moving it to the head, adding the nodes since: the ancestor loses it), and
// builds one from the whole list otherwise (after an undo, or the first query of a list).
import type { Extent } from './types.ts'

/**
 * A file's extents since its base version, newest first, as a list that shares its tail (so a
 * version can keep the list it saw in O(1)). `n`: how many up to this one, `bytes`: how much they
 * grew the file, up to this one (its size after it minus the base's size). Each node's extent is
 * the op's, with `pos` and `before` set for this base. (crdt.ts keeps these lists; defined here,
 * where they are indexed, so the two files do not import each other.)
 */
export interface ExtNode { ext: Extent, prev: ExtNode | undefined, n: number, bytes: number }

/** Bucket width of the finest level: 2^FIRST_SHIFT bytes (64 KiB); each level is 4x wider. */
const FIRST_SHIFT = 16
const LEVEL_STEP = 2
/** Lists this short are walked (an index would cost more than it saves). */
export const INDEX_FROM = 32
/** How far back from a head TailIndex.of looks for an index to take over before it builds anew. */
const CATCH_UP = 256

/** Bucket width of level `l`. */
const widthOf = (l: number): number => 2 ** (FIRST_SHIFT + LEVEL_STEP * l)

/** The level of a node of `size` bytes (> 0): the first whose buckets are at least that wide. */
function levelOf (size: number): number {
  let l = 0
  while (size > widthOf(l)) l++
  return l
}

/** The index held by each head (or ancestor not yet taken over): weak, so lists that die take theirs. */
const byHead = new WeakMap<ExtNode, TailIndex>()

export class TailIndex {
  /** Per level: bucket number -> nodes in it, oldest first. */
  private readonly levels: Array<Map<number, ExtNode[]>> = []

  /** The nodes of the list ending at `tail`, indexed (cached with the head). */
  static of (tail: ExtNode): TailIndex {
    const held = byHead.get(tail)
    if (held !== undefined) return held
    // a recent ancestor's index, taken over: it then holds this head's nodes, not the ancestor's
    const since: ExtNode[] = []
    let index: TailIndex | undefined
    for (let x: ExtNode | undefined = tail; x !== undefined && since.length <= CATCH_UP; x = x.prev) {
      index = byHead.get(x)
      if (index !== undefined) {
        byHead.delete(x)
        break
      }
      since.push(x)
    }
    if (index === undefined) {
      index = new TailIndex()
      since.length = 0
      for (let x: ExtNode | undefined = tail; x !== undefined; x = x.prev) since.push(x)
    }
    for (let i = since.length - 1; i >= 0; i--) index.add(since[i])
    byHead.set(tail, index)
    return index
  }

  /** Add a node newer than every node in the index. */
  private add (x: ExtNode): void {
    const { pos, size } = x.ext
    if (size <= 0) return
    const l = levelOf(size)
    while (this.levels.length <= l) this.levels.push(new Map())
    const level = this.levels[l]
    const width = widthOf(l)
    const last = Math.floor((pos + size - 1) / width)
    for (let b = Math.floor(pos / width); b <= last; b++) {
      const list = level.get(b)
      if (list === undefined) level.set(b, [x])
      else list.push(x)
    }
  }

  /** The nodes whose extents meet bytes [lo, hi), newest first. */
  meeting (lo: number, hi: number): ExtNode[] {
    const out: ExtNode[] = []
    if (hi <= lo) return out
    for (let l = 0; l < this.levels.length; l++) {
      const level = this.levels[l]
      if (level.size === 0) continue
      const width = widthOf(l)
      const first = Math.floor(lo / width)
      const last = Math.floor((hi - 1) / width)
      for (let b = first; b <= last; b++) {
        const list = level.get(b)
        if (list === undefined) continue
        for (const x of list) {
          const a = Math.max(lo, x.ext.pos)
          const z = Math.min(hi, x.ext.pos + x.ext.size)
          // once per node: from the bucket of the first byte it shares with the range
          if (a < z && Math.floor(a / width) === b) out.push(x)
        }
      }
    }
    return out.sort((x, y) => y.n - x.n)
  }
}

/**
 * The nodes of the list ending at `tail` whose extents meet bytes [lo, hi), newest first: what
 * walking the list and keeping those that meet the range gives, through an index when it is long.
 */
export function meeting (tail: ExtNode | undefined, lo: number, hi: number): ExtNode[] {
  if (tail === undefined) return []
  if (tail.n < INDEX_FROM) {
    const out: ExtNode[] = []
    for (let x: ExtNode | undefined = tail; x !== undefined; x = x.prev) {
      if (Math.max(lo, x.ext.pos) < Math.min(hi, x.ext.pos + x.ext.size)) out.push(x)
    }
    return out
  }
  return TailIndex.of(tail).meeting(lo, hi)
}
