// The 2-host merge of bench/merge.ts alone (DIVERGE_OPS tree ops on each side while apart, then
// the reconnecting dial), with sync's time markers on (syncTrace): where the merge's time goes,
// per phase (rbsr rounds, op fetches, hashing, receives), and each tree's receive stats.
// Not a benchmark of its own (the leading _ keeps it out of `npm run bench`).
//   npx node scripts/bench/_sync-trace.ts      REPS=n (1), N=ops per side (10,000)
//   TIMELINE=1  each phase run's start and end (ms from the dial)
//   PROF=file   a CPU profile of the last merge (dial to same heads) written to file
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { isolate } from '../../harness/partition.ts'
import type { OpBody } from '../../node/tree/index.ts'
import { syncTrace } from '../../node/net/index.ts'
import { Session } from 'node:inspector/promises'
import { writeFile } from 'node:fs/promises'
import { getHeapStatistics } from 'node:v8'
import { PerformanceObserver } from 'node:perf_hooks'

const N = Number(process.env.N ?? 10_000)
const REPS = Number(process.env.REPS ?? 1)
const enc = new TextEncoder()
const now = (): bigint => BigInt(Date.now()) * 1_000_000n
const key = (h: ClusterHost): string => h.tree.heads().map(c => c.toString()).sort().join()

async function diverge (h: ClusterHost, home: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 64) {
    const k = Math.min(64, n - i)
    await Promise.all(Array.from({ length: k }, async (_, j) => {
      const text = `${h.name}-${i + j}`
      const body: OpBody = { type: 'create', parent: home, name: `f${i + j}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: enc.encode(text) }, size: text.length, time: now() }
      await h.tree.commit(body)
    }))
  }
}

for (let rep = 0; rep < REPS; rep++) {
  const t = new Teardown()
  try {
    let [a, b] = await startCluster(t, 2)
    await until('mesh', () => a.host.peers().length === 1 && b.host.peers().length === 1)
    await a.volume.mkdir('/a')
    await a.volume.mkdir('/b')
    await until('base everywhere', () => key(a) === key(b))
    b = await isolate(t, b, [a])
    const homeA = a.tree.lookup(a.tree.root, 'a')!.inode
    const homeB = b.tree.lookup(b.tree.root, 'b')!.inode
    await Promise.all([diverge(a, homeA, N), diverge(b, homeB, N)])
    const sa = a.tree.receiveStats()
    const sb = b.tree.receiveStats()
    const ya = a.sync.stats()
    const yb = b.sync.stats()
    syncTrace.phases = {}
    syncTrace.events = process.env.TIMELINE === '1' ? [] : undefined
    syncTrace.on = true
    const session = process.env.PROF !== undefined ? new Session() : undefined
    if (session !== undefined) {
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.start')
    }
    // the heap's allocation and GC pauses in the merge: steadier than CPU time on a shared machine
    let gcMs = 0
    const gcs = new PerformanceObserver(list => { for (const e of list.getEntries()) gcMs += e.duration })
    gcs.observe({ entryTypes: ['gc'] })
    const alloc = getHeapStatistics().total_allocated_bytes
    const cpu = process.cpuUsage()
    const main = process.threadCpuUsage()
    const t0 = performance.now()
    await b.host.dial(a.address)
    await until('same heads', () => key(a) === key(b), 600_000)
    const ms = performance.now() - t0
    const mu = process.threadCpuUsage(main)
    const allocated = getHeapStatistics().total_allocated_bytes - alloc
    // (the pauses' entries are delivered in a later task)
    await new Promise(resolve => setImmediate(resolve))
    gcs.disconnect()
    const u = process.cpuUsage(cpu)
    syncTrace.on = false
    if (session !== undefined) {
      const { profile } = await session.post('Profiler.stop')
      await writeFile(process.env.PROF as string, JSON.stringify(profile))
      session.disconnect()
    }
    console.log(`rep ${rep}: ${ms.toFixed(0)} ms wall, main thread ${((mu.user + mu.system) / 1000).toFixed(0)} ms CPU, process ${((u.user + u.system) / 1000).toFixed(0)} ms CPU, allocated ${(allocated / 1e6).toFixed(0)} MB, GC ${gcMs.toFixed(0)} ms`)
    // TIMELINE=1: each phase run's start and end, ms from the dial
    for (const e of syncTrace.events ?? []) console.log(`  ${(e.start - t0).toFixed(1).padStart(8)} ${(e.end - t0).toFixed(1).padStart(8)}  ${e.phase} ${e.items}`)
    for (const [name, p] of Object.entries(syncTrace.phases)) console.log(`  ${name.padEnd(14)} ${p.ms.toFixed(1).padStart(8)} ms  runs ${p.runs}  items ${p.items}  bytes ${p.bytes}`)
    for (const [n, h, s0, y0] of [['a', a, sa, ya], ['b', b, sb, yb]] as const) {
      const s = h.tree.receiveStats()
      const d: Record<string, number> = {}
      for (const k of Object.keys(s) as Array<keyof typeof s>) d[k] = Math.round((s[k] - s0[k]) * 10) / 10
      const y = h.sync.stats()
      const dy: Record<string, number> = {}
      for (const k of Object.keys(y) as Array<keyof typeof y>) if (y[k] !== y0[k]) dy[k] = y[k] - y0[k]
      console.log(`  tree ${n}: ${JSON.stringify(d)}`)
      console.log(`  sync ${n}: ${JSON.stringify(dy)}`)
    }
  } finally {
    await t.run()
  }
}
