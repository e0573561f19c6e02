// A digest of the materialised tree (issue 16): one sha256 over every live entry reachable from
// the root, in name order, with what a reader of it sees (inode, kind, mode, owner, size,
// content, link target, times, xattrs). Hosts holding the same ops show the same tree, so equal
// digests (and equal op DAG heads) are how a fault run checks that hosts converged.
import { createHash } from 'node:crypto'
import type { Tree } from './tree.ts'
import type { InodeId } from './types.ts'

/** Deepest directory nesting walked (deeper parts are counted as one line). */
const MAX_DIGEST_DEPTH = 4096

export function treeDigest (tree: Tree): { digest: string, entries: number } {
  const h = createHash('sha256')
  let entries = 0
  const walk = (dir: InodeId, prefix: string, depth: number): void => {
    if (depth > MAX_DIGEST_DEPTH) { h.update(`${prefix} too deep\n`); return }
    for (const e of tree.children(dir)) {
      const i = tree.get(e.inode)
      if (i === undefined) { h.update(`${prefix}/${e.name} ?\n`); continue }
      const c = i.content === null ? '-' : 'inline' in i.content ? createHash('sha256').update(i.content.inline).digest('hex') : i.content.manifest.toString()
      const ext = (i.extents ?? []).map(e => e.op).join(',')
      const x = [...i.xattrs].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([k, v]) => `${k}=${Buffer.from(v).toString('hex')}`).join(',')
      h.update(`${prefix}/${e.name}\0${i.id}\0${i.kind}\0${i.mode}\0${i.uid}:${i.gid}\0${i.size}\0${c}\0${ext}\0${i.target ?? ''}\0${i.mtime}\0${i.ctime}\0${x}\n`)
      entries++
      if (i.kind === 'dir') walk(i.id, `${prefix}/${e.name}`, depth + 1)
    }
  }
  walk(tree.root, '', 0)
  return { digest: h.digest('hex'), entries }
}
