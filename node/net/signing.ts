// Op signatures with the host's libp2p identity: the author of an op is its peer id, whose
// Ed25519 public key is embedded in the id itself, so any host verifies any op offline.
//
// Every local op is signed and every received op verified, so both sit on the path of each
// metadata change. libp2p's Ed25519 keys rebuild a node:crypto key object from the raw bytes on
// every sign and verify (about two thirds of the cost); here the key objects are made once per
// key and Ed25519 runs in node:crypto directly (the same primitive, the same signatures).
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Signer, Verify } from '../tree/index.ts'

const b64url = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')

export function signerFor (key: PrivateKey): Signer {
  const author = peerIdFromPrivateKey(key).toString()
  if (key.type !== 'Ed25519' || key.raw.byteLength !== 64) {
    return { author, sign: async (bytes: Uint8Array) => await key.sign(bytes) }
  }
  // raw = 32-byte seed followed by the 32-byte public key
  const obj = createPrivateKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', d: b64url(key.raw.subarray(0, 32)), x: b64url(key.raw.subarray(32)) } })
  return { author, sign: async (bytes: Uint8Array) => new Uint8Array(edSign(null, bytes, obj)) }
}

/** Public keys parsed from peer ids, memoised (authors are few; parsing is most of verify). */
const AUTHOR_KEYS_MAX = 4096
interface AuthorKey { key: PublicKey, obj?: KeyObject }
const authorKeys = new Map<string, AuthorKey>()

function authorKey (author: string): AuthorKey | undefined {
  let k = authorKeys.get(author)
  if (k !== undefined) return k
  let key: PublicKey | undefined
  try {
    key = peerIdFromString(author).publicKey
  } catch {
    // not a peer id: the op's author cannot have signed it (the op is refused as unsigned)
    return undefined
  }
  if (key === undefined) return undefined
  k = { key }
  if (key.type === 'Ed25519' && key.raw.byteLength === 32) {
    k.obj = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64url(key.raw) } })
  }
  if (authorKeys.size >= AUTHOR_KEYS_MAX) authorKeys.clear()
  authorKeys.set(author, k)
  return k
}

/**
 * Verify an op signature against the public key inside the author's peer id. Ed25519 runs in
 * libuv's thread pool (node:crypto's callback form, which copies the bytes and the signature
 * first): a check costs the event loop a job's hand-over, not the check itself (~60 us on a
 * quiet machine, ~230 us on a busy VM), and a receive of ops, a member table or kept notices
 * checks one signature after another on the thread that serves the mount. `verify.now` is the
 * same check on the calling thread, for a caller that waits on one check or a few (a receive's
 * first ones, tree.ts VERIFY_INLINE_CHECKS): there the two hand-overs cost more than the check.
 */
export const verify: Verify = Object.assign(async (author: string, bytes: Uint8Array, sig: Uint8Array): Promise<boolean> => {
  const k = authorKey(author)
  if (k === undefined) return false
  try {
    const obj = k.obj
    if (obj !== undefined) {
      if (sig.byteLength !== 64) return false
      return await new Promise<boolean>((resolve) => {
        // an error (a malformed signature) is a bad signature: the op is refused
        edVerify(null, bytes, obj, sig, (err, ok) => { resolve(err === null && ok) })
      })
    }
    return await k.key.verify(bytes, sig)
  } catch {
    // a malformed signature is a bad signature: the op is refused
    return false
  }
}, { now: verifyNow })

/**
 * verify() on the calling thread; undefined for an author whose key has no key object here (not
 * Ed25519): verify() checks that one.
 */
function verifyNow (author: string, bytes: Uint8Array, sig: Uint8Array): boolean | undefined {
  const k = authorKey(author)
  if (k === undefined) return false
  const obj = k.obj
  if (obj === undefined) return undefined
  if (sig.byteLength !== 64) return false
  try {
    return edVerify(null, bytes, obj, sig)
  } catch {
    // a malformed signature is a bad signature: the op is refused
    return false
  }
}
