// A file's chunks on a cluster host, and the keepers' plan of a chunk from what the hosts' stores
// hold (cluster tests: harness/cluster.ts).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { ClusterHost } from '../../harness/cluster.ts'
import { encodeChunk } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { plan } from '../../node/keeper/index.ts'
import type { ChunkPlan } from '../../node/keeper/index.ts'

/** A new random chunk of 1 MiB coded as `h` codes new chunks (its k and m): its bytes, ref and CID string. */
export function codedChunk (h: ClusterHost): { k: number, m: number, bytes: Uint8Array, ref: ChunkRef, key: string } {
  const { k, m } = h.volume.chunks.params()
  const bytes = randomBytes(1 << 20)
  const ref = encodeChunk(bytes, 0, k, m).ref
  return { k, m, bytes, ref, key: ref.cid!.toString() }
}

/** Per fragment of `ref`, how many of the hosts `on` hold it in their stores. */
export async function heldOn (ref: ChunkRef, on: ClusterHost[]): Promise<number[]> {
  return await Promise.all(ref.fragments.map(async f => (await Promise.all(on.map(async h => await h.store.has(f)))).filter(Boolean).length))
}

/** The chunks of the file at `path` on `h` (its manifest's refs). */
export async function chunksOf (h: ClusterHost, path: string): Promise<ChunkRef[]> {
  const content = h.tree.byIno((await h.volume.stat(path)).ino)!.content
  assert.ok(content !== null && 'manifest' in content, `${path} has chunks`)
  return (await h.volume.chunks.readManifest(content.manifest)).chunks
}

/**
 * The plan the keepers repair `ref` to (keeper/survey.ts plan), by `by`'s members and policy, the
 * `hosts` up, each fragment held where those hosts' stores say it is.
 */
export async function planOnStores (ref: ChunkRef, hosts: ClusterHost[], by: ClusterHost): Promise<ChunkPlan> {
  const holdings = new Map<string, Set<string>>()
  for (const f of ref.fragments) {
    const on = new Set<string>()
    for (const h of hosts) if (await h.store.has(f)) on.add(h.host.peerId)
    holdings.set(f.toString(), on)
  }
  return plan(ref, holdings, by.policy.members(), new Set(hosts.map(h => h.host.peerId)), by.host.peerId, by.policy)
}

/** How far a plan is met: each fragment's live holders against its targets ('f0 on 1 of 1, ...'). */
export function planHeld (p: ChunkPlan): string {
  return p.want.map((hs, j) => `f${j} on ${[...p.held[j]].length} of ${hs.length}`).join(', ')
}
