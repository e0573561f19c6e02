// Shared by the put/get benchmarks: a stream of random 1 MiB pieces, and a sequential read
// of a whole file through a Volume handle (1 MiB at a time, as a reader would).
import { randomFillSync } from 'node:crypto'
import type { VolumeApi } from '../../node/index.ts'

export const MiB = 1 << 20

/** `count` pieces of fresh random bytes (one reused buffer: the Volume copies what it keeps). */
export function * randomPieces (count: number): Generator<Uint8Array> {
  const piece = new Uint8Array(MiB)
  for (let i = 0; i < count; i++) { randomFillSync(piece); yield piece }
}

/** Read a file sequentially; returns the bytes read. */
export async function readThrough (volume: Pick<VolumeApi, 'open'>, path: string): Promise<number> {
  const fh = await volume.open(path, 'r')
  const buf = new Uint8Array(MiB)
  let pos = 0
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, MiB, pos)
      if (bytesRead === 0) break
      pos += bytesRead
    }
  } finally {
    await fh.close()
  }
  return pos
}
