// Op signatures with the host's libp2p identity: the author of an op is its peer id, whose
// Ed25519 public key is embedded in the id itself, so any host verifies any op offline.
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Signer, Verify } from '../tree/index.ts'

export function signerFor (key: PrivateKey): Signer {
  const author = peerIdFromPrivateKey(key).toString()
  return { author, sign: async (bytes: Uint8Array) => await key.sign(bytes) }
}

/** Public keys parsed from peer ids, memoised (authors are few; parsing is most of verify). */
const AUTHOR_KEYS_MAX = 4096
const authorKeys = new Map<string, ReturnType<typeof peerIdFromString>['publicKey']>()

/** Verify an op signature against the public key inside the author's peer id. */
export const verify: Verify = async (author, bytes, sig) => {
  let publicKey = authorKeys.get(author)
  if (publicKey === undefined) {
    try {
      publicKey = peerIdFromString(author).publicKey
    } catch {
      // not a peer id: the op's author cannot have signed it (the op is refused as unsigned)
      return false
    }
    if (authorKeys.size >= AUTHOR_KEYS_MAX) authorKeys.clear()
    authorKeys.set(author, publicKey)
  }
  if (publicKey === undefined) return false
  try {
    return await publicKey.verify(bytes, sig)
  } catch {
    // a malformed signature is a bad signature: the op is refused
    return false
  }
}
