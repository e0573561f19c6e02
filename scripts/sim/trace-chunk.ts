// Traces one sampled chunk of the churn figures (scripts/sim/churn.ts, 1,000 hosts, 30 days):
// who held it, who kept it at each pass, the queue it waited in, each repair and its landing.
// Also prints the chunks lost. Same network, trace and chunks as `npm run sim` with that seed.
//
//   npx node scripts/sim/trace-chunk.ts [--seed 15] [--run eager|lazy|oracle] [--chunk N] [--keeper H]
//                                       [--repair-delay 4320] [--repair-spare 0] [--days 30] [--rebuilder holder|keeper]
// --keeper H also prints every repair host H makes as a keeper.
import { parseArgs } from 'node:util'
import { CHUNK_SIZE } from '../../node/data/index.ts'
import { DEFAULT_FAILURE_TIMEOUT_MS } from '../../node/net/index.ts'
import { prng } from '../../harness/prng.ts'
import { permanentOnly, runChurn } from '../../harness/sim/churn.ts'
import { TRACE_DEFAULTS, churnSetup, traceSettings } from './trace.ts'

const HOUR = 3600_000
const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '15' },
    run: { type: 'string', default: 'eager' },
    chunk: { type: 'string', default: '-1' },
    keeper: { type: 'string', default: '-1' },
    'repair-delay': { type: 'string', default: '4320' },
    'repair-spare': { type: 'string', default: '0' },
    days: { type: 'string', default: '30' },
    rebuilder: { type: 'string', default: 'holder' }
  }
})
// the trace `npm run sim` plays for --churn-hosts 1000 with the trace's defaults (--days here
// cuts the run, not the trace)
const N = 1000
const o = traceSettings(TRACE_DEFAULTS, Number(values.seed), N)
const { hosts, uplinks, k, m, realChunks, duration, trace } = churnSetup(o)
const chunks = 10000
const scale = realChunks / chunks
const run = values.run
const r = runChurn({
  hosts,
  uplinks,
  initial: N,
  trace: run === 'oracle' ? permanentOnly(trace) : trace,
  chunks,
  scale,
  k,
  m,
  chunkBytes: CHUNK_SIZE,
  failureTimeoutMs: DEFAULT_FAILURE_TIMEOUT_MS,
  latencyMs: 30,
  duration: Math.min(duration, Number(values.days) * 24 * HOUR),
  rand: prng(o.seed * 7 + 1),
  rebuilder: values.rebuilder === 'keeper' ? 'keeper' : 'holder',
  ...(run === 'oracle'
    ? {}
    : { repairDelayMs: run === 'lazy' ? Number(values['repair-delay']) * 60_000 : DEFAULT_FAILURE_TIMEOUT_MS, repairSpare: Number(values['repair-spare']), order: 'urgent' as const, jump: true }),
  watch: Number(values.chunk),
  watchKeeper: Number(values.keeper),
  watchLog: (line: string) => { process.stdout.write(line + '\n') }
})
process.stdout.write(`${run}: ${r.chunksLost} chunks lost (${r.lost.join(', ')}), ${((r.bytesFetched + r.bytesPushed) / 1e12).toFixed(2)} TB moved, a sampled chunk stands for ${scale.toFixed(0)}\n`)
