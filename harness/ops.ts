// The ops a tree applies, one at a time, for tests and benches that look at each: the tree tells
// them in 'ops' events, one per batch applied (node/tree/types.ts OpsEventDetail).
import type { AppliedOp, OpsEventDetail } from '../node/tree/index.ts'

/**
 * Call `fn` for each op `tree` applies from now on, in the order applied, with whether this host
 * made it (its batch's `local`). Returns the function that stops listening.
 */
export function onEachOp (tree: EventTarget, fn: (op: AppliedOp, local: boolean) => void): () => void {
  const listener = (e: Event): void => {
    const { local, ops } = (e as CustomEvent<OpsEventDetail>).detail
    for (const op of ops) fn(op, local)
  }
  tree.addEventListener('ops', listener)
  return () => { tree.removeEventListener('ops', listener) }
}
