// One rbsr reconciliation in memory (node/tree/rbsr.ts) of two sets that diverged by N ids each
// from a common few, their timestamps interleaved (as two hosts writing at once while apart):
// the main thread's CPU of each repetition (set building excluded). Not a benchmark of its own
// (the leading _ keeps it out of `npm run bench`).
//   npx node scripts/bench/_rbsr-cpu.ts      N=n ids per side (10,000), REPS=n (3)
import { randomBytes } from 'node:crypto'
import { OpSet, rbsrReconcileInMemory } from '../../node/tree/index.ts'

const N = Number(process.env.N ?? 10_000)
const REPS = Number(process.env.REPS ?? 3)
for (let rep = 0; rep < REPS; rep++) {
  const a = new OpSet()
  const b = new OpSet()
  const t = 1_700_000_000_000
  for (let i = 0; i < 3; i++) { const id = randomBytes(32); a.add(t, id); b.add(t, id) }
  for (let i = 0; i < N; i++) { a.add(t + 1 + Math.floor(i / 20), randomBytes(32)); b.add(t + 1 + Math.floor(i / 20), randomBytes(32)) }
  const c0 = process.threadCpuUsage()
  const r = rbsrReconcileInMemory(b, a, { frameLimit: 256 * 1024 })
  const c = process.threadCpuUsage(c0)
  console.log(`rounds ${r.rounds} have ${r.have.length} need ${r.need.length} sent ${r.bytesSent} received ${r.bytesReceived} cpu ${((c.user + c.system) / 1000).toFixed(0)} ms`)
}
