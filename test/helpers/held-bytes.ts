// What an open file's pending bytes keep in memory against what it counts (patchBytes +
// dirtyBytes). Shared by the tests of bytes laid around this host's writes (lay-under-mem,
// catch-up-mem): a view of a larger buffer keeps the whole buffer alive.
import type { OpenFile } from 'darkfs'

interface Held { patches: Map<number, Array<{ bytes: Uint8Array }>>, dirty: Map<number, Uint8Array>, patchBytes: number, dirtyBytes: number }

/** Bytes of the distinct buffers the pending patches and chunks reference, and what the file counts. */
export function held (f: OpenFile): { referenced: number, counted: number } {
  const h = f as unknown as Held
  const buffers = new Set<ArrayBufferLike>()
  for (const list of h.patches.values()) for (const p of list) buffers.add(p.bytes.buffer)
  for (const b of h.dirty.values()) buffers.add(b.buffer)
  let referenced = 0
  for (const b of buffers) referenced += b.byteLength
  return { referenced, counted: h.patchBytes + h.dirtyBytes }
}
