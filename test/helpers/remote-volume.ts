// A real Volume whose file bytes are on "peers" only: a file is written, its chunks' fragments
// are deleted from the local store (the manifest stays), and a scripted Network answers the
// fetches. Each fetch waits until the test releases it (it then returns the fragments) or its
// signal aborts (it then rejects with the reason, and records it). For the cancellation tests:
// a caller's signal must reach the network fetch behind a read.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { Volume } from '../../node/index.ts'
import { Store } from '../../node/data/index.ts'
import type { Network } from '../../node/data/index.ts'

/** One network fetch the Volume made. */
export interface Fetch {
  cids: CID[]
  signal?: AbortSignal
  /** Settles with the abort reason once the fetch's signal aborts (never, if it does not). */
  aborted: Promise<unknown>
  /** Answer the fetch with the fragments it asked for. */
  release: () => void
}

export interface RemoteVolume {
  volume: Volume
  /** The bytes of `path` as written. */
  bytes: Uint8Array
  path: string
  /** Every fetch so far, in order. */
  fetches: Fetch[]
  /** Resolves with the next fetch (one already made and not yet handed out first). */
  nextFetch: () => Promise<Fetch>
}

/** A Volume in `dir` holding `path` (`size` random bytes) whose chunks only the scripted network has. */
export async function remoteVolume (t: { add: (fn: () => Promise<void>) => void }, dir: string, size: number, path = '/f'): Promise<RemoteVolume> {
  const bytes = randomBytes(size)
  const first = await Volume.open({ dir })
  await first.writeFile(path, bytes)
  const inode = first.tree.get(first.tree.lookup(first.tree.root, path.slice(1))!.inode)!
  const content = inode.content
  if (content === null || !('manifest' in content)) throw new Error(`${path} should have a manifest (size ${size})`)
  const manifest = await first.chunks.readManifest(content.manifest)
  await first.close()

  // the fragments leave this host; the network keeps them
  const held = new Map<string, Uint8Array>()
  const store = await Store.open(join(dir, 'store'))
  for (const ref of manifest.chunks) {
    for (const cid of ref.fragments) {
      held.set(cid.toString(), await store.get(cid))
      await store.delete(cid)
    }
  }
  await store.close()

  const fetches: Fetch[] = []
  let handedOut = 0
  const waiting: Array<(f: Fetch) => void> = []
  const network: Network = {
    params: () => ({ k: 1, m: 0 }),
    place: async () => {},
    fetchOne: async (cid) => { throw new Error(`no peer has ${cid.toString()}`) },
    fetch: async (cids: CID[], need: number, opts: AbortOptions = {}) => {
      let release!: () => void
      let onAbort!: (reason: unknown) => void
      const aborted = new Promise<unknown>(resolve => { onAbort = resolve })
      const answer = new Promise<Map<string, Uint8Array>>((resolve, reject) => {
        release = () => { resolve(new Map(cids.slice(0, need).map(c => [c.toString(), held.get(c.toString())!]))) }
        const abort = (): void => { onAbort(opts.signal?.reason); reject(opts.signal?.reason) }
        if (opts.signal?.aborted === true) abort()
        else opts.signal?.addEventListener('abort', abort, { once: true })
      })
      const f: Fetch = { cids, signal: opts.signal, aborted, release }
      fetches.push(f)
      const w = waiting.shift()
      if (w !== undefined) { handedOut++; w(f) }
      return await answer
    }
  }
  const volume = await Volume.open({ dir, network })
  t.add(async () => { await volume.close() })
  return {
    volume,
    bytes,
    path,
    fetches,
    nextFetch: async () => {
      if (handedOut < fetches.length) return fetches[handedOut++]
      return await new Promise<Fetch>(resolve => { waiting.push(resolve) })
    }
  }
}
