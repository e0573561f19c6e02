// Simulated hosts: peer ids drawn from a seeded generator (Ed25519-shaped identity multihashes,
// so node/net/kad.ts peerKadId takes them as it takes real ones) and disks of mixed sizes.
import { base58btc } from 'multiformats/bases/base58'
import { peerKadId } from '../../node/keeper/index.ts'

export interface SimHost { peer: string, id: Uint8Array, disk: number }

/**
 * Disk sizes of a community network, in bytes, with their shares: mostly 0.5-2 TB, a few
 * small (250 GB) and big (4-8 TB) disks. Each host's size is off by up to 10% either way (the
 * space a host gives darkfs is seldom a round number), so capacity classes are exercised.
 */
export const DISK_MIX: Array<[number, number]> = [[250e9, 0.15], [500e9, 0.25], [1e12, 0.30], [2e12, 0.20], [4e12, 0.08], [8e12, 0.02]]

/** A peer id string from 32 random bytes (an identity multihash of an Ed25519 public key). */
export function simPeer (rand: () => number): string {
  const bytes = new Uint8Array(38)
  bytes.set([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
  for (let i = 6; i < 38; i++) bytes[i] = Math.floor(rand() * 256)
  return base58btc.encode(bytes).slice(1) // without the multibase prefix: "12D3KooW..."
}

export function simDisk (rand: () => number): number {
  let r = rand()
  for (const [size, share] of DISK_MIX) {
    if (r < share) return Math.round(size * (0.9 + 0.2 * rand()))
    r -= share
  }
  return DISK_MIX[DISK_MIX.length - 1][0]
}

export function simHosts (count: number, rand: () => number): SimHost[] {
  return Array.from({ length: count }, () => {
    const peer = simPeer(rand)
    return { peer, id: peerKadId(peer), disk: simDisk(rand) }
  })
}
