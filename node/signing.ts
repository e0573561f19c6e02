// Op signatures with the host's libp2p identity: the author of an op is its peer id, whose
// Ed25519 public key is embedded in the id itself, so any host verifies any op offline.
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Signer, Verify } from './tree/index.ts'

export function signerFor (key: PrivateKey): Signer {
  const author = peerIdFromPrivateKey(key).toString()
  return { author, sign: async (bytes: Uint8Array) => await key.sign(bytes) }
}

/** Verify an op signature against the public key inside the author's peer id. */
export const verify: Verify = async (author, bytes, sig) => {
  let publicKey
  try {
    publicKey = peerIdFromString(author).publicKey
  } catch {
    return false
  }
  if (publicKey === undefined) return false
  try {
    return await publicKey.verify(bytes, sig)
  } catch {
    return false
  }
}
