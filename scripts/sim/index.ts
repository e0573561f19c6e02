// `npm run sim` (issue 14 item 7): darkfs's own placement logic against simulated networks of
// 1,000 and 10,000 hosts, no sockets. Prints the figures and merges them into bench/sim.json
// (a run keeps the keys of figures it did not measure). Seeded: the same seed, the same figures.
// Also the reconcile figures (reconcile.ts): bytes and rounds of a reconnect that missed 10 ops of
// --reconcile-ops (1,000,000), and of one where both sides made 10 ops apart.
//
//   npm run sim -- [--hosts 1000,10000] [--seed 14] [--chunks-per-host 500] [--chunks-per-host-large 50] [--move-chunks 100000] [--move-chunks-large 500000]
//                  [--factors 16,64,256,all] [--checks 20] [--reconcile-ops 1000000]
// --hosts '' skips the placement figures, --reconcile-ops 0 the reconcile ones.
// --chunks-per-host applies up to 2,000 hosts, --chunks-per-host-large beyond (the chunk count is
// bounded by time: fewer fragments per host there, and more sampling noise, which the noise.*
// and *.excess_stddev figures account for).
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { runPlacement } from './placement.ts'
import { runReconcile } from './reconcile.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000,10000' },
    seed: { type: 'string', default: '14' },
    'chunks-per-host': { type: 'string', default: '500' },
    'chunks-per-host-large': { type: 'string', default: '50' },
    'move-chunks': { type: 'string', default: '100000' },
    'move-chunks-large': { type: 'string', default: '500000' },
    factors: { type: 'string', default: '16,64,256,all' },
    checks: { type: 'string', default: '20' },
    'reconcile-ops': { type: 'string', default: '1000000' }
  }
})
const list = (s: string): number[] => s.split(',').filter(x => x !== '').map(x => x === 'all' ? Infinity : Number(x))
const seed = Number(values.seed)
const results: Record<string, number | string> = { 'sim.date': new Date().toISOString(), 'sim.seed': seed }
const log = (line: string): void => { process.stdout.write(`  ${line}\n`) }

for (const hosts of list(values.hosts)) {
  process.stdout.write(`sim placement, ${hosts} hosts\n`)
  const figures = runPlacement({
    hosts,
    seed: seed + hosts,
    chunksPerHost: Number(hosts <= 2000 ? values['chunks-per-host'] : values['chunks-per-host-large']),
    moveChunks: Number(hosts <= 2000 ? values['move-chunks'] : values['move-chunks-large']),
    // rendezvous over every member costs hosts hashes per chunk: measured up to 2,000 hosts;
    // a factor whose neighbourhood is the whole network is measured once, as 'all'
    factors: [...new Set(list(values.factors).map(f => f * 6 >= hosts ? Infinity : f))].filter(f => Number.isFinite(f) || hosts <= 2000),
    // targets() over 10,000 members re-derives every kad id (its memo holds 4,096): few checks there
    checks: hosts > 4096 ? Math.min(2, Number(values.checks)) : Number(values.checks),
    log
  })
  for (const [k, v] of Object.entries(figures)) {
    process.stdout.write(`  ${k.padEnd(52)} ${v}\n`)
    results[k] = v
  }
}

const reconcileOps = Number(values['reconcile-ops'])
if (reconcileOps > 0) {
  process.stdout.write(`sim reconcile, ${reconcileOps} ops\n`)
  for (const [k, v] of Object.entries(runReconcile({ ops: reconcileOps, seed, log }))) {
    process.stdout.write(`  ${k.padEnd(52)} ${v}\n`)
    results[k] = v
  }
}

await mkdir(join(root, 'bench'), { recursive: true })
const file = join(root, 'bench', 'sim.json')
const earlier = await readFile(file, 'utf8').then(t => JSON.parse(t) as Record<string, unknown>, () => ({}))
await writeFile(file, JSON.stringify({ ...earlier, ...results }, null, 2) + '\n')
process.stdout.write(`wrote ${file}\n`)
