// Two in-process hosts and one file between them, for the tests of a close racing a peer's ops
// (test/cluster/write-late-op, catch-up, catch-up-resume): a file written on host 0 and read on
// host 1, a file's committed record in a host's tree, and the bytes both hosts read once they agree.
import assert from 'node:assert/strict'
import { until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

/** /name's record in host `h`'s tree (its committed state, not an open file's pending one). */
export function treeOf (h: ClusterHost, name: string): any {
  const e = h.tree.lookup('root', name)
  return e === undefined ? undefined : h.tree.get(e.inode)
}

/** Write /name on host 0 and wait until host 1 reads the same bytes. */
export async function shared (h0: ClusterHost, h1: ClusterHost, name: string, bytes: Uint8Array): Promise<void> {
  await h0.volume.writeFile(`/${name}`, bytes)
  await until(`host 1 reads /${name}`, async () => {
    try { return Buffer.compare(await h1.volume.readFile(`/${name}`), bytes) === 0 } catch { return false }
  }, 60_000)
}

/** The bytes of /name once both hosts read it alike. */
export async function agreed (h0: ClusterHost, h1: ClusterHost, name: string): Promise<Uint8Array> {
  let got: Uint8Array = new Uint8Array(0)
  await until(`both hosts read /${name} alike`, async () => {
    const [a, b] = await Promise.all([h0.volume.readFile(`/${name}`), h1.volume.readFile(`/${name}`)])
    got = a
    return Buffer.compare(a, b) === 0
  }, 60_000)
  return got
}

/**
 * An fsync of host h's open /name (`fh`) aborted while it lays a peer's bytes over its pending
 * writes (OpenFile.catchUp): its signal fires at the second piece laid, which then fails.
 */
export async function syncAbortedAtSecondLay (h: ClusterHost, name: string, fh: { sync: (o: { signal: AbortSignal }) => Promise<void> }): Promise<void> {
  const id = h.tree.lookup('root', name)?.inode as string
  const f = (h.volume as any).open_.get(id)
  const writeNow = f.writeNow.bind(f)
  const ac = new AbortController()
  let laid = 0
  f.writeNow = async (...args: any[]) => {
    if (f.laying === true && ++laid === 2) { ac.abort(); throw ac.signal.reason }
    return await writeNow(...args)
  }
  try {
    await assert.rejects(fh.sync({ signal: ac.signal }))
  } finally {
    f.writeNow = writeNow
  }
}
