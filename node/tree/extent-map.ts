// Which extent a file reads each byte from (issue 15 item 1): a file state is its base content
// with its extents laid over it in op order, newest wins per byte. Laying them over one by one
// on every read costs every extent of the file per read, and fetches bytes a newer extent hides.
// An ExtentMap paints the extents once, oldest first, into disjoint segments sorted by offset
// (each the newest extent covering it); a read finds its first segment by binary search and
// walks only the segments it meets: O(log n + segments read), and hidden bytes are never read.
// Building is O(n log n) plus the splices (n is bounded by folds: node/volume.ts FOLD_EXTENTS).
import type { Extent } from './types.ts'

/** File bytes [from, to) read from `ext`, at `from - ext.pos` of its bytes. */
export interface Segment { readonly from: number, readonly to: number, readonly ext: Extent }

export class ExtentMap {
  /** Disjoint, sorted by offset: `to` increases too, so both are searchable. */
  private readonly segs: Segment[] = []

  /** `extents` in op order (oldest first), each landed (`pos` set by the tree). */
  constructor (extents: readonly Extent[]) {
    for (const ext of extents) if (ext.size > 0) this.paint(ext.pos, ext.pos + ext.size, ext)
  }

  /** How many segments the extents resolve to. */
  get segments (): number {
    return this.segs.length
  }

  /** True when some extent covers a byte of [from, to). */
  overlaps (from: number, to: number): boolean {
    const i = this.firstEnding(from)
    return i < this.segs.length && this.segs[i].from < to
  }

  /** The segments meeting [from, to), clipped to it, in offset order. */
  within (from: number, to: number): Segment[] {
    const out: Segment[] = []
    for (let i = this.firstEnding(from); i < this.segs.length && this.segs[i].from < to; i++) {
      const s = this.segs[i]
      out.push(s.from >= from && s.to <= to ? s : { from: Math.max(from, s.from), to: Math.min(to, s.to), ext: s.ext })
    }
    return out
  }

  /** Index of the first segment ending after `at` (segs.length when none). */
  private firstEnding (at: number): number {
    let lo = 0
    let hi = this.segs.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.segs[mid].to > at) hi = mid
      else lo = mid + 1
    }
    return lo
  }

  /** [a, b) now reads from `ext`: the segments under it are cut or dropped. */
  private paint (a: number, b: number, ext: Extent): void {
    const i = this.firstEnding(a)
    let j = i
    while (j < this.segs.length && this.segs[j].from < b) j++
    const put: Segment[] = []
    if (i < j && this.segs[i].from < a) put.push({ from: this.segs[i].from, to: a, ext: this.segs[i].ext })
    put.push({ from: a, to: b, ext })
    if (i < j && this.segs[j - 1].to > b) put.push({ from: b, to: this.segs[j - 1].to, ext: this.segs[j - 1].ext })
    this.segs.splice(i, j - i, ...put)
  }
}
