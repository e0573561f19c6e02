// One local delete of a block that nothing here needs any more (gc.ts: unreferenced past the
// retention; release.ts: a block of an abandoned write), run so that it and a custody promise
// exclude each other (custody.ts deleteUnpromised), or directly when no custody is given.
import type { CID } from 'multiformats/cid'
import type { Store } from '../data/index.ts'

/**
 * Runs `del` unless the block is promised to a peer other than `except`, with no promise given
 * while it runs (custody.ts deleteUnpromised). Whether it deleted.
 */
export type DeleteUnpromised = (cid: CID, except: string | undefined, del: () => Promise<boolean>) => Promise<boolean>

export interface UnpromisedDelete {
  store: Pick<Store, 'has' | 'delete'>
  /** Not given: no custody, the delete runs directly. */
  deleteUnpromised?: DeleteUnpromised
  /** A peer whose promises do not keep the block (a writer that gave it up). */
  except?: string
  /** Looked at just before the delete (after any wait for custody): false keeps the block. */
  may?: () => boolean
}

/**
 * Delete `cid` from the store unless custody keeps it; whether it is gone: false when custody or
 * `may` kept it, or when the store still has it after the delete (the pin guard kept it). Throws
 * what the store's delete throws.
 */
export async function deleteUnpromised (cid: CID, o: UnpromisedDelete): Promise<boolean> {
  const del = async (): Promise<boolean> => {
    if (o.may?.() === false) return false
    await o.store.delete(cid)
    return !(await o.store.has(cid))
  }
  return await (o.deleteUnpromised?.(cid, o.except, del) ?? del())
}
