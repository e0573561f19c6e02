// Where bytes arrive they are checked: a block moves through the swarm only if its bytes hash
// to its CID. The swarm moves CIDv1 blocks hashed with sha2-256, raw or dag-cbor.
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { UnsupportedCidError } from './errors.ts'

/** Multicodec codes of the block codecs the swarm moves. */
export const RAW_CODEC = 0x55
export const DAG_CBOR_CODEC = 0x71
/** Multihash code of sha2-256, and its digest length. */
export const SHA2_256 = 0x12
const SHA2_256_BYTES = 32

/** Throws UnsupportedCidError unless `cid` is a CIDv1, sha2-256, raw or dag-cbor. */
export function checkCid (cid: CID): void {
  if (cid.version !== 1) throw new UnsupportedCidError(`CID ${cid.toString()} is not CIDv1`)
  if (cid.code !== RAW_CODEC && cid.code !== DAG_CBOR_CODEC) throw new UnsupportedCidError(`CID ${cid.toString()} has codec 0x${cid.code.toString(16)}, not raw or dag-cbor`)
  if (cid.multihash.code !== SHA2_256 || cid.multihash.size !== SHA2_256_BYTES) throw new UnsupportedCidError(`CID ${cid.toString()} is not hashed with sha2-256`)
}

/** True when `bytes` hash to `cid` (which must pass checkCid). */
export function matches (cid: CID, bytes: Uint8Array): boolean {
  const digest = createHash('sha256').update(bytes).digest()
  const want = cid.multihash.digest
  if (digest.byteLength !== want.byteLength) return false
  for (let i = 0; i < want.byteLength; i++) if (digest[i] !== want[i]) return false
  return true
}
