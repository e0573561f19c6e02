// Fake chunks and a fake placement rank for unit tests of a repair pass (node/keeper/repair.ts)
// beyond the full mesh: 12 members h0..h11 (this host is h0), chunks of k = 2, m = 1 whose
// number (their offset) rotates the rank, so a test knows which hosts each chunk names.
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import type { ChunkRef } from '../../node/data/index.ts'

const RAW = 0x55
export const cidOf = async (s: string): Promise<CID> => CID.create(1, RAW, await sha256.digest(new TextEncoder().encode(s)))

/** 12 members h0..h11; this host is h0. */
export const MEMBERS = Array.from({ length: 12 }, (_, i) => `h${i}`)

/** A stable rank per chunk: members rotated by the chunk's number (its offset). */
export const rank = (ref: Pick<ChunkRef, 'offset'>, members: string[], n: number): string[] => {
  const sorted = [...members].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))
  return [...sorted.slice(ref.offset % sorted.length), ...sorted.slice(0, ref.offset % sorted.length)].slice(0, n)
}

/** Chunk number `i` (its offset), k = 2, m = 1. */
export async function chunk (i: number): Promise<ChunkRef> {
  const fragments = await Promise.all([0, 1, 2].map(async j => await cidOf(`chunk ${i} fragment ${j}`)))
  return { offset: i, size: 300, cid: await cidOf(`chunk ${i}`), k: 2, m: 1, fragments } as unknown as ChunkRef
}
