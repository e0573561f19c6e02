// Erasure codec throughput on one core: encode and rebuild (two data shards lost) of 1 MiB
// chunks for 4+2 and 10+4, for the native (ISA-L) and the TypeScript codec, plus sha256 of
// 1 MiB blocks for scale (every fragment is hashed once it is made). MiB/s of chunk bytes.
import { createHash, randomFillSync } from 'node:crypto'
import { codecs, codecNote } from '../../node/data/index.ts'
import type { ErasureCodec } from '../../node/data/index.ts'

/** Bytes per chunk (DESIGN.md §2 default). */
const CHUNK_BYTES = 1 << 20
/** Time spent measuring each figure, in ms. */
const MEASURE_MS = 1000
/** Calls before measuring, so the JIT and caches settle. */
const WARMUP_CALLS = 5
/** The (k, m) shapes measured. */
const SHAPES: Array<[number, number]> = [[4, 2], [10, 4]]

/** Calls `fn` for about MEASURE_MS and returns MiB/s of `bytes` per call. */
function mibps (bytes: number, fn: () => void): number {
  for (let i = 0; i < WARMUP_CALLS; i++) fn()
  let calls = 0
  const start = process.hrtime.bigint()
  let elapsed = 0
  while (elapsed < MEASURE_MS) {
    fn()
    calls++
    elapsed = Number(process.hrtime.bigint() - start) / 1e6
  }
  return Math.round((bytes * calls / (1 << 20)) / (elapsed / 1000))
}

function measure (name: string, codec: ErasureCodec, out: Record<string, number | string>): void {
  const data = randomFillSync(new Uint8Array(CHUNK_BYTES))
  for (const [k, m] of SHAPES) {
    const shards = codec.encode(data, k, m)
    out[`erasure.${name}.encode.${k}+${m}.MiBps`] = mibps(CHUNK_BYTES, () => { codec.encode(data, k, m) })
    const damaged: Array<Uint8Array | undefined> = shards.slice()
    damaged[0] = undefined
    damaged[1] = undefined
    out[`erasure.${name}.rebuild.${k}+${m}.MiBps`] = mibps(CHUNK_BYTES, () => { codec.reconstruct(damaged, k, m) })
  }
}

export async function run (): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {}
  if (codecs.native !== undefined) measure('native', codecs.native, out)
  else out['erasure.native'] = `absent: ${codecNote ?? 'unknown'}`
  measure('typescript', codecs.typescript, out)
  const block = randomFillSync(new Uint8Array(CHUNK_BYTES))
  out['sha256.1MiB.MiBps'] = mibps(CHUNK_BYTES, () => { createHash('sha256').update(block).digest() })
  return out
}

if (import.meta.main) {
  console.log(await run())
}
