// Byte strings as the rooms compare and key them: one equality, one map key.
//
// Part of node/'s vocabulary: every room under node/ may import it (swarm/ keeps its own range
// key, a CID's bytes and a range, as it imports nothing of node/).

/** Whether two byte strings (hashes, digests, op ids) hold the same bytes. */
export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * `bytes` as a string of one char per byte (latin1), for a Map key: a CID's or an op id's bytes
 * without its base32 text (a fresh CID's toString() is ~5 µs; this is a copy).
 */
export function bytesKey (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}
