// Clay code (node/data/clay.ts) beside Reed–Solomon (node/data/erasure.ts) on 1 MiB chunks, one
// core, the native (ISA-L) kernel when built (else TypeScript): for 4+2 d=5 (the default code),
// 8+3 d=10 and 10+4 d=13 (virtual nodes), each
//  - encode: MiB of chunk per second;
//  - decode: the chunk from k fragments with data fragments 0 and 1 lost (MiB of chunk per second);
//  - repair: one lost fragment (fragment 0) rebuilt, MiB of that fragment per second: Clay from
//    d helpers' sub-chunks (the helpers' sends made once, outside the timing), RS from k whole
//    fragments (reconstructSome);
//  - readPerByte: bytes a repair reads per byte rebuilt: d / q for Clay (each of d helpers sends
//    beta = alpha / q sub-chunks), k for RS. A rebuilder that holds a fragment of the chunk itself
//    reads its own share from disk: (d - 1) / q and k - 1 fetched over the network.
// Each Clay/RS pair is timed in alternating slices by the process's CPU time (GC threads
// included), so a busy machine slows both alike; `.ofRs` is Clay's speed as a share of RS's.
import { randomFillSync } from 'node:crypto'
import { ClayCode, codecs } from '../../node/data/index.ts'

const CHUNK_BYTES = 1 << 20
const ROUNDS = 6
const SLICE_MS = 150
const WARMUP_MS = 300
const SHAPES: Array<[number, number, number]> = [[4, 2, 5], [8, 3, 10], [10, 4, 13]]

/** Runs `fn` for about `ms` of wall time; returns [calls, CPU ms of the process]. */
function slice (ms: number, fn: () => void): [number, number] {
  let calls = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  while (performance.now() - start < ms) { fn(); calls++ }
  const used = process.cpuUsage(cpu)
  return [calls, (used.user + used.system) / 1000]
}

/** MiB per CPU second of `a` and `b` (each handles `bytesA` / `bytesB` per call), alternating slices. */
function pair (bytesA: number, a: () => void, bytesB: number, b: () => void): [number, number] {
  slice(WARMUP_MS, a)
  slice(WARMUP_MS, b)
  const sums = [0, 0, 0, 0]
  for (let r = 0; r < ROUNDS; r++) {
    const [ca, ma] = slice(SLICE_MS, a)
    const [cb, mb] = slice(SLICE_MS, b)
    sums[0] += ca; sums[1] += ma; sums[2] += cb; sums[3] += mb
  }
  return [bytesA * sums[0] / (1 << 20) / (sums[1] / 1000), bytesB * sums[2] / (1 << 20) / (sums[3] / 1000)]
}

export async function run (): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {}
  const rs = codecs.native ?? codecs.typescript
  out['clay.kernel'] = rs.codec
  const data = randomFillSync(new Uint8Array(CHUNK_BYTES))
  for (const [k, m, d] of SHAPES) {
    const name = `${k}+${m}`
    const clay = new ClayCode(k, m, d)
    const frags = clay.encode(data)
    const shards = rs.encode(data, k, m)
    const lostTwo = (f: Uint8Array[]): Array<Uint8Array | undefined> => f.map((x, i) => i < 2 ? undefined : x)
    const clayDamaged = lostTwo(frags)
    const rsDamaged = lostTwo(shards)
    const lost = 0
    const helpers = clay.repairHelpers(lost, Array.from({ length: k + m }, (_, i) => i)) as number[]
    const s = frags[0].length / clay.alpha
    const subs = clay.repairSubChunks(lost)
    const helped: Array<Uint8Array | undefined> = new Array(k + m).fill(undefined)
    for (const i of helpers) {
      const h = new Uint8Array(subs.length * s)
      subs.forEach((z, j) => h.set(frags[i].subarray(z * s, (z + 1) * s), j * s))
      helped[i] = h
    }
    const rsHelped: Array<Uint8Array | undefined> = shards.map((x, i) => i >= 1 && i <= k ? x : undefined)
    const [ce, re] = pair(CHUNK_BYTES, () => clay.encode(data), CHUNK_BYTES, () => rs.encode(data, k, m))
    const [cd, rd] = pair(CHUNK_BYTES, () => clay.decode(clayDamaged, CHUNK_BYTES), CHUNK_BYTES, () => rs.decode(rsDamaged, k, m, CHUNK_BYTES))
    const [cr, rr] = pair(frags[0].length, () => clay.repair(lost, helped), shards[0].length, () => rs.reconstructSome(rsHelped, k, m, [lost]))
    const read = helped.reduce((n, h) => n + (h?.length ?? 0), 0)
    out[`clay.${name}.d`] = d
    out[`clay.${name}.alpha`] = clay.alpha
    out[`clay.${name}.encode.MiBps`] = Math.round(ce)
    out[`rs.${name}.encode.MiBps`] = Math.round(re)
    out[`clay.${name}.encode.ofRs`] = Math.round(100 * ce / re) / 100
    out[`clay.${name}.decode.MiBps`] = Math.round(cd)
    out[`rs.${name}.decode.MiBps`] = Math.round(rd)
    out[`clay.${name}.decode.ofRs`] = Math.round(100 * cd / rd) / 100
    out[`clay.${name}.repair.MiBps`] = Math.round(cr)
    out[`rs.${name}.repair.MiBps`] = Math.round(rr)
    out[`clay.${name}.repair.ofRs`] = Math.round(100 * cr / rr) / 100
    out[`clay.${name}.repair.readPerByte`] = Math.round(100 * read / frags[0].length) / 100
    out[`rs.${name}.repair.readPerByte`] = k
    out[`clay.${name}.storedPerByte`] = Math.round(100 * frags[0].length * (k + m) / CHUNK_BYTES) / 100
    out[`rs.${name}.storedPerByte`] = Math.round(100 * shards[0].length * (k + m) / CHUNK_BYTES) / 100
  }
  return out
}

if (import.meta.main) {
  console.log(await run())
}
