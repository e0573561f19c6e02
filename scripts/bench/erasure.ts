// Erasure codec throughput on one core: encode and rebuild (two data shards lost) of 1 MiB
// chunks for 4+2 (the default code), and the wider ones `up --data-fragments` picks on larger
// networks (8+2, 10+4, 16+4: issue 14), each with its storage overhead (k + m) / k, for the native (ISA-L) and the TypeScript codec, each beside ISA-L
// alone measured in the same process and run: `isalBaseline` (node/data/erasure.ts), a native
// loop of ec_encode_data on buffers allocated once, with the same coefficients and fragment
// size (Debian ships no `erasure_code_perf`; this is the same measurement, in our process).
// `...ofIsal` is the codec's share of that speed (goal: >= 0.5). The two are timed in
// alternating slices by the process's CPU time (GC threads included), so a busy machine
// slows both alike and the share stays meaningful; those pairs are MiB per CPU second, the
// TypeScript and sha256 figures MiB per wall second as before.
// `encode` codes into fresh memory, as encode() does; `encodePooled` into recycled memory
// (ShardPool: encode, then release, so each call codes into the memory the last one gave back,
// as the ISA-L loop does into its buffers allocated once; issue 15 item 7). `encodeWritePath` is
// the write path's (storeChunk with `recycle`, ChunkWrite and OpenFile): parity in the chunk
// service's pool, each chunk's given back once it left the staging, i.e. once it is placed, a
// placement window (PLACE_WINDOW_BYTES) of later chunks on; so it codes into memory released
// that many chunks ago, not the memory just released (a parity fragment placement pushes itself,
// with no relay, is fresh memory: `encode`).
// `chunk.encode` is the whole chunk write path's coding step, encodeChunk (sha256 of the chunk
// and of every fragment, plus the codec), and `sha256` hashing alone for scale. MiB/s of chunk bytes.
// `chunk.encodeAsync` is encodeChunkAsync, the write path's: the hashing on the addon's threadpool
// in parallel jobs, ASYNC_IN_FLIGHT chunks at a time; `.MiBps` per wall second (both cores at
// work), `.cpuMiBps` per CPU second of the process; `chunk.encode.*.wallMiBps` is the
// synchronous encodeChunk per wall second beside it. `chunk.encodeWritePath` is encodeChunkAsync
// as storeChunk({ recycle }) runs it: the parity in a pool, given back as `encodeWritePath`'s.
import { createHash, randomFillSync } from 'node:crypto'
import { PLACE_WINDOW_BYTES, SHARD_POOL_BYTES, ShardPool, codecs, codecNote, encodeChunk, encodeChunkAsync, encodeChunkPooled, isalBaseline } from '../../node/data/index.ts'
import type { ErasureCodec, PooledShards } from '../../node/data/index.ts'

/** Bytes per chunk (DESIGN.md §2 default). */
const CHUNK_BYTES = 1 << 20
/** Time spent measuring each figure alone, in ms. */
const MEASURE_MS = 1000
/** Alternating slices per compared pair (codec, ISA-L alone), and the ms of each slice. */
const ROUNDS = 8
const SLICE_MS = 120
/** A single native loop call of the baseline lasts at least this many ms (sized once). */
const LOOP_MS = 4
/** Calls before measuring, so the JIT and caches settle. */
const WARMUP_CALLS = 5
/**
 * Time a compared codec runs before its slices, in ms: the first ~64 MiB of fresh shards
 * (until V8's first collection of them) fault in new heap pages, which later cycles reuse; a
 * few calls of warm-up left that cost to whichever figure was measured first (4+2 encode read
 * ~0.4 of ISA-L measured first, ~0.55 measured second, in one process).
 */
const WARMUP_MS = 300
/** The (k, m) shapes measured: the default, and wide codes (placement.ts autoDataFragments). */
const SHAPES: Array<[number, number]> = [[4, 2], [8, 2], [10, 4], [16, 4]]
/** Chunks encodeChunkAsync works on at once in its figure (a write keeps several in flight). */
const ASYNC_IN_FLIGHT = 2
/** Data shards lost before a rebuild. */
const LOST = [0, 1]

/**
 * Runs `fn` (which does `per` chunks' work) for about `ms` of wall time; returns [chunks done,
 * wall ms, CPU ms of the whole process (GC threads included)].
 */
function slice (ms: number, per: number, fn: () => void): [number, number, number] {
  let done = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  let elapsed = 0
  while (elapsed < ms) {
    fn()
    done += per
    elapsed = performance.now() - start
  }
  const used = process.cpuUsage(cpu)
  return [done, elapsed, (used.user + used.system) / 1000]
}

/** MiB/s of `bytes` per call of `fn`, over about MEASURE_MS. */
function mibps (bytes: number, fn: () => void): number {
  for (let i = 0; i < WARMUP_CALLS; i++) fn()
  const [calls, ms] = slice(MEASURE_MS, 1, fn)
  return Math.round((bytes * calls / (1 << 20)) / (ms / 1000))
}

/**
 * MiB per CPU second of `fn` and of ISA-L alone (`loop(times)` does `times` chunks' work),
 * timed in alternating slices, and the share of the first in the second. CPU time, not wall
 * time: on a busy machine the wall clock mostly measures waiting for a core.
 */
function against (loop: (times: number) => void, fn: () => void): { codec: number, isal: number, share: number } {
  slice(WARMUP_MS, 1, fn)
  let times = 1
  for (;;) { // size one native call to about LOOP_MS
    const t = performance.now()
    loop(times)
    if (performance.now() - t >= LOOP_MS || times >= 1 << 16) break
    times *= 2
  }
  const sums = { codec: [0, 0], isal: [0, 0] } // [chunks, CPU ms]
  for (let r = 0; r < ROUNDS; r++) {
    const [a, , ac] = slice(SLICE_MS, 1, fn)
    const [b, , bc] = slice(SLICE_MS, times, () => loop(times))
    sums.codec[0] += a; sums.codec[1] += ac
    sums.isal[0] += b; sums.isal[1] += bc
  }
  const rate = ([n, ms]: number[]): number => CHUNK_BYTES * n / (1 << 20) / (ms / 1000)
  const codec = rate(sums.codec)
  const isal = rate(sums.isal)
  return { codec: Math.round(codec), isal: Math.round(isal), share: Math.round(100 * codec / isal) / 100 }
}

/** Records one compared pair under `name` (e.g. erasure.native.encode.4+2). */
function record (out: Record<string, number | string>, name: string, r: { codec: number, isal: number, share: number }): void {
  out[`${name}.MiBps`] = r.codec
  out[`${name}.isal.MiBps`] = r.isal
  out[`${name}.ofIsal`] = r.share
}

/** MiB per wall and per CPU second of `fn` (one chunk each), `inFlight` calls at a time, over about MEASURE_MS. */
async function asyncRates (inFlight: number, fn: () => Promise<unknown>): Promise<{ wall: number, cpu: number }> {
  for (let i = 0; i < WARMUP_CALLS; i++) await fn()
  let done = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() - start < MEASURE_MS) { await fn(); done++ }
  }))
  const ms = performance.now() - start
  const used = process.cpuUsage(cpu)
  const mib = CHUNK_BYTES * done / (1 << 20)
  return { wall: Math.round(mib / (ms / 1000)), cpu: Math.round(mib / ((used.user + used.system) / 1e6)) }
}

/**
 * The write path's encode (blocks.ts storeChunk with `recycle`): into a pool of the chunk
 * service's size, each encode's parity given back once the chunks of a placement window
 * (PLACE_WINDOW_BYTES at (k + m) / k bytes per chunk byte) were encoded after it.
 */
function writePath (codec: ErasureCodec, data: Uint8Array, k: number, m: number): () => void {
  const pool = new ShardPool({ codec, maxFreeBytes: SHARD_POOL_BYTES })
  const window = Math.max(1, Math.floor(PLACE_WINDOW_BYTES / (Math.ceil(data.byteLength / k) * (k + m))))
  const held: PooledShards[] = []
  return () => {
    held.push(pool.encode(data, k, m))
    if (held.length > window) held.shift()!.release()
  }
}

async function measure (name: string, codec: ErasureCodec, out: Record<string, number | string>): Promise<void> {
  const data = randomFillSync(new Uint8Array(CHUNK_BYTES))
  const pool = new ShardPool({ codec })
  for (const [k, m] of SHAPES) {
    const shards = codec.encode(data, k, m)
    const damaged: Array<Uint8Array | undefined> = shards.slice()
    for (const j of LOST) damaged[j] = undefined
    const encode = (): void => { codec.encode(data, k, m) }
    const rebuild = (): void => { codec.reconstruct(damaged, k, m) }
    const encodeLoop = isalBaseline(k, m, CHUNK_BYTES)
    const rebuildLoop = isalBaseline(k, m, CHUNK_BYTES, LOST)
    if (name === 'native' && encodeLoop !== undefined && rebuildLoop !== undefined) {
      record(out, `erasure.${name}.encode.${k}+${m}`, against(encodeLoop, encode))
      record(out, `erasure.${name}.encodePooled.${k}+${m}`, against(encodeLoop, () => { pool.encode(data, k, m).release() }))
      record(out, `erasure.${name}.encodeWritePath.${k}+${m}`, against(encodeLoop, writePath(codec, data, k, m)))
      record(out, `erasure.${name}.rebuild.${k}+${m}`, against(rebuildLoop, rebuild))
      record(out, `chunk.encode.${k}+${m}`, against(encodeLoop, () => { encodeChunk(data, 0, k, m) }))
      out[`chunk.encode.${k}+${m}.wallMiBps`] = mibps(CHUNK_BYTES, () => { encodeChunk(data, 0, k, m) })
      const rates = await asyncRates(ASYNC_IN_FLIGHT, async () => await encodeChunkAsync(data, 0, k, m))
      out[`chunk.encodeAsync.${k}+${m}.MiBps`] = rates.wall
      out[`chunk.encodeAsync.${k}+${m}.cpuMiBps`] = rates.cpu
      // the same through the chunk service's pool, as storeChunk({ recycle }) codes (the parity
      // given back a placement window of chunks later)
      const chunkPool = new ShardPool({ codec, maxFreeBytes: SHARD_POOL_BYTES })
      const held: PooledShards[] = []
      const window = Math.max(1, Math.floor(PLACE_WINDOW_BYTES / (Math.ceil(CHUNK_BYTES / k) * (k + m))))
      const pooledRates = await asyncRates(ASYNC_IN_FLIGHT, async () => {
        const { pooled } = await encodeChunkPooled(data, 0, k, m, chunkPool)
        if (pooled !== undefined) held.push(pooled)
        if (held.length > window) held.shift()!.release()
      })
      out[`chunk.encodeWritePath.${k}+${m}.MiBps`] = pooledRates.wall
      out[`chunk.encodeWritePath.${k}+${m}.cpuMiBps`] = pooledRates.cpu
    } else {
      out[`erasure.${name}.encode.${k}+${m}.MiBps`] = mibps(CHUNK_BYTES, encode)
      out[`erasure.${name}.encodePooled.${k}+${m}.MiBps`] = mibps(CHUNK_BYTES, () => { pool.encode(data, k, m).release() })
      out[`erasure.${name}.encodeWritePath.${k}+${m}.MiBps`] = mibps(CHUNK_BYTES, writePath(codec, data, k, m))
      out[`erasure.${name}.rebuild.${k}+${m}.MiBps`] = mibps(CHUNK_BYTES, rebuild)
    }
  }
}

export async function run (): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {}
  // bytes stored per byte of file data: what a wider code saves (a figure, not a measurement)
  for (const [k, m] of SHAPES) out[`erasure.overhead.${k}+${m}`] = Math.round(100 * (k + m) / k) / 100
  if (codecs.native !== undefined) await measure('native', codecs.native, out)
  else out['erasure.native'] = `absent: ${codecNote ?? 'unknown'}`
  await measure('typescript', codecs.typescript, out)
  const block = randomFillSync(new Uint8Array(CHUNK_BYTES))
  out['sha256.1MiB.MiBps'] = mibps(CHUNK_BYTES, () => { createHash('sha256').update(block).digest() })
  return out
}

if (import.meta.main) {
  console.log(await run())
}
