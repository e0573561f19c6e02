// Pages written through a handle and fsynced, and the positioned-extent ops that fsync made:
// how the multi-extent gate is watched (test/node/features, test/cluster/upgrade).
import type { Tree, OpBody } from '../../node/tree/index.ts'
import type { FileHandle } from '../../node/index.ts'
import { onEachOp } from '../../harness/ops.ts'

export interface PageSyncs {
  /** Write 4 KiB pages (each filled with `fill + page`) at `pages`, into `model` too, and fsync: the append ops that made. */
  sync: (fill: number) => Promise<OpBody[]>
  /** The offsets of every range of `ops` (an op's own and its `more`). */
  offsets: (ops: OpBody[]) => number[]
}

/** Watch `tree` for this host's append ops on inode `id`; write `pages` through `fh`. */
export function pageSyncs (tree: Tree, id: string, fh: FileHandle, model: Uint8Array, pages: readonly number[]): PageSyncs {
  const made: OpBody[] = []
  onEachOp(tree, (op, local) => {
    if (local && 'inode' in op.body && op.body.inode === id && op.body.type === 'append') made.push(op.body)
  })
  return {
    sync: async (fill) => {
      const before = made.length
      for (const page of pages) {
        const data = new Uint8Array(4096).fill(fill + page)
        await fh.write(data, 0, data.byteLength, page * 4096)
        model.set(data, page * 4096)
      }
      await fh.sync()
      return made.slice(before)
    },
    offsets: ops => ops.flatMap(b => { const x = b as { offset?: number, more?: Array<{ offset?: number }> }; return [x.offset ?? -1, ...(x.more ?? []).map(m => m.offset ?? -1)] })
  }
}
