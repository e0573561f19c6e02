// One coding of a chunk, as repair, status and the retained set key their per-chunk state. The
// same bytes written in two files at two codings (another k or m, replicated or coded, Reed–Solomon
// or Clay: the network's size changed between, or a host's --data-fragments differs) have one
// chunk CID and two fragment sets, each placed, kept and repaired on its own (review32g); keyed by
// the CID alone, one coding shadowed the other, its lost fragments never rebuilt (note-s32 Left 7).
//
// The key is the chunk's CID, its fragment count and its last fragment: what every host computes
// alike from a ref, and what a placement notice (placed.ts: the chunk and its fragments, not k)
// names too. The count and the last fragment tell codings apart: with k = 1 the fragments are
// m + 1 copies of the chunk itself (the count tells m), with k > 1 the last is the last parity
// (coded at that k, m and code) or, with m = 0, the chunk's last slice at that k. pending.ts
// codingOf keys a placement the same way with k added (a notice does not carry it).
import type { CID } from 'multiformats/cid'
import type { ChunkRef } from '../data/index.ts'

/** The key of a chunk's coding from its CID and its fragments (strings or CIDs, in order). */
export function codingKeyOf (chunk: string, fragments: ReadonlyArray<string | CID>): string {
  const n = fragments.length
  return `${chunk} ${n}/${n === 0 ? '' : fragments[n - 1].toString()}`
}

/**
 * Each ref's key, made once: refs are not changed once made, and a pass asks for a chunk's key
 * several times (a string built anew, ~120 characters, is hashed anew at every map lookup: ~9x the
 * CPU of the CID's own string, cached with its hash).
 */
const keys = new WeakMap<object, string>()

/** The key of the coding `ref` is (a data chunk or a manifest's ref: not a hole). */
export function codingKey (ref: Pick<ChunkRef, 'cid' | 'fragments'>): string {
  let key = keys.get(ref)
  if (key === undefined) {
    key = codingKeyOf(ref.cid!.toString(), ref.fragments)
    keys.set(ref, key)
  }
  return key
}

/** The chunk CID (its string) a coding key names. */
export function chunkOfKey (key: string): string {
  const space = key.indexOf(' ')
  return space < 0 ? key : key.slice(0, space)
}
