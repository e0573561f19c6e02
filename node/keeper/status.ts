// Redundancy of every chunk of every live file version: redundant (all k+m fragments on
// distinct live hosts), degraded (at least k reachable, fewer than k+m), local-only (only on
// this host, while the network could hold more), lost (fewer than k anywhere reachable).
import type { Volume } from '../index.ts'
import { logger } from '../log.ts'

const log = logger('keeper:status')

export interface ChunkCounts { total: number, redundant: number, degraded: number, localOnly: number, lost: number }

export interface Holders {
  /** How many distinct live hosts hold fragment i of chunk `cid` (undefined: unknown). */
  count: (chunk: string, fragments: string[]) => { hosts: number, fragments: number, pending?: boolean } | undefined
}

export async function chunkStatus (volume: Volume, opts: { peers: number, holders?: Holders }): Promise<ChunkCounts> {
  const counts: ChunkCounts = { total: 0, redundant: 0, degraded: 0, localOnly: 0, lost: 0 }
  const seen = new Set<string>()
  for (const content of volume.liveContents()) {
    if (!('manifest' in content)) continue
    let manifest
    try {
      manifest = await volume.chunks.readManifest(content.manifest)
    } catch (err) {
      // a manifest no host can give is a lost chunk (its chunks are unknown): counted as such
      log('manifest %s unreadable: %s', content.manifest.toString(), (err as Error).message)
      counts.total++
      counts.lost++
      continue
    }
    for (const ref of manifest.chunks) {
      if (ref.cid === null) continue
      const key = ref.cid.toString()
      if (seen.has(key)) continue
      seen.add(key)
      counts.total++
      const h = opts.holders?.count(key, ref.fragments.map(f => f.toString()))
      if (h === undefined) {
        if (await volume.chunks.hasLocally(ref)) counts.localOnly++
        else counts.lost++
      } else if (h.pending === true && h.hosts <= 1) {
        // written here and not placed yet (e.g. while offline)
        counts.localOnly++
      } else if (h.fragments >= ref.k + ref.m && h.hosts >= Math.min(ref.k + ref.m, opts.peers + 1)) {
        counts.redundant++
      } else if (h.fragments >= ref.k) {
        if (h.hosts <= 1) counts.localOnly++
        else counts.degraded++
      } else {
        counts.lost++
      }
    }
  }
  return counts
}
