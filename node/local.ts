// A Volume on one data dir with no network: the library door's `Volume.open({ dir })`, and the
// data path that `darkfs up` extends with a host.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkService } from './data/index.ts'
import { loadOrCreateIdentity } from './net/index.ts'
import { signerFor, verify } from './net/index.ts'
import { Store } from './data/index.ts'
import { Tree } from './tree/index.ts'
import { Volume } from './volume.ts'

export interface LocalOptions {
  /** Erasure parameters for chunks kept on this host alone (default one copy: k = 1, m = 0). */
  localParams?: { k: number, m: number }
}

export async function openLocal (dir: string, opts: LocalOptions = {}): Promise<Volume & { close: () => Promise<void> }> {
  await mkdir(dir, { recursive: true })
  const key = await loadOrCreateIdentity(dir)
  const store = await Store.open(join(dir, 'store'))
  await mkdir(join(dir, 'tree'), { recursive: true })
  const tree = await Tree.open({ dir: join(dir, 'tree'), signer: signerFor(key), verify })
  const vol = new Volume({ tree, chunks: new ChunkService(store, { localParams: opts.localParams }), store }) as Volume & { close: () => Promise<void> }
  let closed = false
  vol.close = async () => {
    if (closed) return
    closed = true
    await tree.close()
    await store.close()
  }
  return vol
}
