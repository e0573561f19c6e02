// The merge receive of bench/tree.ts (two replicas diverged by N ops each; one receives the
// other's in one receive()), repeated on copies of one pair of replicas: the replicas are made
// once (the slow part), then each repetition opens a copy of the receiving replica's directory
// (its log replayed) and times one receive, and what the garbage collector did meanwhile. The least of REPS is a figure a busy machine bends
// less than one run's (issue 15 item 8; not a benchmark of its own: the leading _ keeps it out
// of `npm run bench`).
//   npx node scripts/bench/_merge-reps.ts        N=n ops per replica (10,000), REPS=n (8)
//   EACH=1   each repetition's main-thread CPU ms, collections and minor page faults too
//   MONO=1   each receive's start and end on CLOCK_MONOTONIC (for `perf record -k mono`, e.g.
//            `-e page-faults -g`: where the receive touches fresh memory)
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GCProfiler } from 'node:v8'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { cidOf, Tree, type Signer } from '../../node/tree/index.ts'
import { signerFor, verify } from '../../node/net/index.ts'
import { diverge, ops, sharedBase } from './tree.ts'

const N = Number(process.env.N ?? 10_000)
const REPS = Number(process.env.REPS ?? 8)
const now = (): bigint => BigInt(Date.now()) * 1_000_000n
const signer = async (): Promise<Signer> => signerFor(await generateKeyPair('Ed25519'))


const base = await mkdtemp(join(tmpdir(), 'darkfs-merge-reps-'))
try {
  const key = await signer()
  const a = await Tree.open({ dir: join(base, 'a'), signer: await signer(), verify })
  let b = await Tree.open({ dir: join(base, 'b'), signer: key, verify })
  const { ha, hb, shared } = await sharedBase(a, b)
  await Promise.all([diverge(a, ha, shared, 'a', N), diverge(b, hb, shared, 'b', N)])
  const toB = ops(a).filter(x => !b.hasOp(cidOf(x)))
  await b.close()
  await a.close()
  const best: Record<string, number> = {}
  const keep = (k: string, v: number): void => { best[k] = Math.min(best[k] ?? Infinity, Math.round(v * 10) / 10) }
  for (let rep = 0; rep < REPS; rep++) {
    const dir = join(base, `b${rep}`)
    await cp(join(base, 'b'), dir, { recursive: true })
    b = await Tree.open({ dir, signer: key, verify })
    try {
      const s0 = b.receiveStats()
      const gc = new GCProfiler()
      gc.start()
      const r0 = process.resourceUsage()
      const c0 = process.threadCpuUsage()
      const t0 = performance.now()
      const m0 = process.hrtime.bigint()
      await b.receive(toB)
      // the receive on CLOCK_MONOTONIC, in seconds: `perf record -k mono` then `perf report --time FROM,TO`
      if (process.env.MONO === '1') console.log(`receive ${rep} ${(Number(m0) / 1e9).toFixed(6)},${(Number(process.hrtime.bigint()) / 1e9).toFixed(6)}`)
      keep('ms', performance.now() - t0)
      const c = process.threadCpuUsage(c0)
      // collections during the receive: their pauses (ms) and the heap bytes they kept (MB)
      // and what the scavenges copied (MB): what each left in the young generation and moved to the old
      let gcMs = 0
      let copied = 0
      const stats = gc.stop()?.statistics ?? []
      let nScav = 0
      let nMark = 0
      for (const g of stats) {
        if (g.gcType === 'Scavenge') nScav++
        else nMark++
        gcMs += g.cost / 1000
        if (g.gcType !== 'Scavenge') continue
        const used = (st: typeof g.afterGC, name: string): number => st.heapSpaceStatistics.find(x => x.spaceName === name)?.spaceUsedSize ?? 0
        copied += used(g.afterGC, 'new_space') + Math.max(0, used(g.afterGC, 'old_space') - used(g.beforeGC, 'old_space'))
      }
      keep('gcMs', gcMs)
      keep('scavengeCopiedMB', copied / 1e6)
      keep('mainThreadCpuMs', (c.user + c.system) / 1000)
      if (process.env.EACH === '1') console.log(`rep ${rep}: mainThreadCpuMs ${Math.round((c.user + c.system) / 1000)} gcMs ${Math.round(gcMs)} scavenges ${nScav} others ${nMark} pageFaults ${process.resourceUsage().minorPageFault - r0.minorPageFault}`)
      const s = b.receiveStats()
      for (const k of ['decodeMs', 'verifyMs', 'orderMs', 'journalMs', 'dagMs', 'crdtMs', 'eventsMs'] as const) keep(k, s[k] - s0[k])
    } finally {
      await b.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
  console.log(`best of ${REPS}: ${JSON.stringify(best)}`)
} finally {
  await rm(base, { recursive: true, force: true })
}
