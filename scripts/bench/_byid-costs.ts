// The cost of asking 20,000 ops by id (a 10,000-vs-10,000 merge's two fetches: 20 requests of
// 1,024 ids), its request encoded by the asker and decoded by the answerer as rpc.ts does:
// `byid` (a list of CIDs, each a dag-cbor tag 42 the decoder makes a CID of) against `bydigest`
// (the 32-byte digests end to end), then the answerer's CIDs for its lookups. CPU ms and bytes
// allocated (the heap's total_allocated_bytes), each the median of REPS (9) runs.
// Not a benchmark of its own (the leading _ keeps it out of `npm run bench`).
//   npx node scripts/bench/_byid-costs.ts
import { randomBytes } from 'node:crypto'
import { getHeapStatistics } from 'node:v8'
import { OPS, decodeIncoming, encodeCall } from '../../node/net/index.ts'
import type { OpsRequest } from '../../node/net/index.ts'
import { opCidOf } from '../../node/tree/index.ts'

const REPS = Number(process.env.REPS ?? 9)
const REQUESTS = 20
const PER = 1024
const digests = Array.from({ length: REQUESTS * PER }, () => new Uint8Array(randomBytes(32)))
const cids = digests.map(opCidOf)
let sink = 0

function run (kind: 'byid' | 'bydigest'): { ms: number, bytes: number } {
  const alloc = getHeapStatistics().total_allocated_bytes
  const cpu = process.threadCpuUsage()
  for (let r = 0; r < REQUESTS; r++) {
    const ask = cids.slice(r * PER, (r + 1) * PER)
    let req: OpsRequest
    if (kind === 'byid') req = { t: 'byid', ids: ask, c: true }
    else {
      const ids = new Uint8Array(ask.length * 32)
      for (let i = 0; i < ask.length; i++) ids.set(ask[i].multihash.digest, i * 32)
      req = { t: 'bydigest', ids, c: true }
    }
    const got = decodeIncoming(OPS, encodeCall(OPS, req))
    if (got.kind !== 'call') throw new Error('not a call')
    const m = got.value as OpsRequest
    // the answerer's CIDs (sync.ts exactly(): byid has them from the decoder, bydigest makes them)
    if (m.t === 'byid') sink += m.ids.length
    else if (m.t === 'bydigest') for (let i = 0; i < m.ids.byteLength; i += 32) sink += opCidOf(m.ids.subarray(i, i + 32)).version
  }
  const u = process.threadCpuUsage(cpu)
  return { ms: (u.user + u.system) / 1000, bytes: getHeapStatistics().total_allocated_bytes - alloc }
}

const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]
for (const kind of ['byid', 'bydigest', 'byid', 'bydigest'] as const) {
  const runs = Array.from({ length: REPS }, () => run(kind))
  console.log(`${kind.padEnd(9)} ${median(runs.map(r => r.ms)).toFixed(1).padStart(7)} ms CPU  ${(median(runs.map(r => r.bytes)) / 1e6).toFixed(1).padStart(6)} MB allocated  (20 requests of 1,024 ids)`)
}
if (sink < 0) console.log(sink)
