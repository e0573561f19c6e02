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
import { lockDataDir } from './lock.ts'
import type { LocalOptions } from './volume.ts'

export async function openLocal (dir: string, opts: LocalOptions = {}): Promise<Volume> {
  await mkdir(dir, { recursive: true })
  // one process per data dir: a running host (or another library Volume) holds it
  const unlock = await lockDataDir(dir)
  try {
    return await openParts(dir, opts, unlock)
  } catch (err) {
    await unlock()
    throw err
  }
}

async function openParts (dir: string, opts: LocalOptions, unlock: () => Promise<void>): Promise<Volume> {
  const key = await loadOrCreateIdentity(dir)
  const store = await Store.open(join(dir, 'store'))
  await mkdir(join(dir, 'tree'), { recursive: true })
  const tree = await Tree.open({ dir: join(dir, 'tree'), signer: signerFor(key), verify, writtenSyncMs: opts.writtenSyncMs })
  const chunks = new ChunkService(store, { localParams: opts.localParams, network: opts.network })
  const volume = new Volume({ tree, chunks, store, syncPlaceWaitMs: opts.syncPlaceWaitMs, multiExtent: opts.multiExtent, foldIdleMs: opts.foldIdleMs, heldAttrsMs: opts.heldAttrsMs, held: opts.held, close: async () => { await tree.close(); await store.close(); await unlock() } })
  // the folds planned before the last close (a restart forgets them)
  volume.resumeFolds()
  return volume
}
