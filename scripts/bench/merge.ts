// Merge on reconnect, end to end through sync (DESIGN.md §6): in-process hosts (memory
// transport, pnet, kad-dht, real stores and trees), one cut off, both sides make ops, then the
// time from the reconnecting dial until every host holds the same op set (heads) and shows it.
//  - 3 hosts, RECONNECT_OPS filesystem ops on each side (creates, writes, renames, mkdirs,
//    chmods through the Volume);
//  - 2 hosts, DIVERGE_OPS tree ops on each side (scripts/bench/tree.ts measures the tree alone).
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { isolate } from '../../harness/partition.ts'
import type { OpBody } from '../../node/tree/index.ts'

/** Filesystem ops each side makes while apart, 3-host run. */
export const RECONNECT_OPS = 300
/** Tree ops each side makes while apart, 2-host run. */
export const DIVERGE_OPS = 10_000
/** Local commits in flight at once while diverging (they share fsyncs). */
export const CONCURRENCY = 64
/** Longest wait for convergence before the benchmark gives up. */
export const CONVERGE_TIMEOUT_MS = 600_000

const enc = new TextEncoder()
const now = (): bigint => BigInt(Date.now()) * 1_000_000n

function sameHeads (hosts: ClusterHost[]): boolean {
  const key = (h: ClusterHost): string => h.tree.heads().map(c => c.toString()).sort().join()
  return hosts.every(h => key(h) === key(hosts[0]))
}

/** A mix of filesystem ops in `dir` (shared names too, so some of them conflict). */
async function fsOps (h: ClusterHost, dir: string, n: number): Promise<void> {
  const v = h.volume
  for (let i = 0; i < n; i++) {
    switch (i % 6) {
      case 0: await v.writeFile(`${dir}/f${i}`, `${h.name} ${i}`); break
      case 1: await v.writeFile(`/shared/s${i % 30}`, `${h.name} ${i}`); break
      case 2: await v.mkdir(`${dir}/d${i}`); break
      case 3: await v.rename(`${dir}/f${i - 3}`, `${dir}/g${i}`); break
      case 4: await v.chmod(`/shared/s${(i * 7) % 30}`, 0o600 + (i % 8)).catch(() => {}); break
      default: await v.writeFile(`${dir}/g${i - 2}`, `${h.name} again ${i}`)
    }
  }
}

/**
 * Milliseconds from the dial until every host holds the same ops, and the CPU time spent
 * meanwhile: by the main thread, where every host's sync and tree run (they share this
 * process), and by the whole process (V8's background compiling and marking, libuv's file
 * writes and hashing too): figures the load of a shared machine bends less.
 */
async function reconnectTimed (h: ClusterHost, to: ClusterHost, all: ClusterHost[]): Promise<{ ms: number, cpuMs: number, mainThreadCpuMs: number }> {
  const cpu = process.cpuUsage()
  const main = process.threadCpuUsage()
  const started = performance.now()
  await h.host.dial(to.address)
  await until('every host holds the same ops', () => sameHeads(all), CONVERGE_TIMEOUT_MS)
  const mainUsed = process.threadCpuUsage(main)
  const used = process.cpuUsage(cpu)
  return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000, mainThreadCpuMs: (mainUsed.user + mainUsed.system) / 1000 }
}

async function threeHosts (): Promise<Record<string, number>> {
  const t = new Teardown()
  try {
    let [a, b, c] = await startCluster(t, 3)
    await until('mesh', () => [a, b, c].every(h => h.host.peers().length === 2))
    await a.volume.mkdir('/shared')
    for (let i = 0; i < 30; i++) await a.volume.writeFile(`/shared/s${i}`, 'base')
    await a.volume.mkdir('/side-a')
    await c.volume.mkdir('/side-c')
    await until('base everywhere', () => sameHeads([a, b, c]))
    c = await isolate(t, c, [a, b])
    await Promise.all([fsOps(a, '/side-a', RECONNECT_OPS), fsOps(c, '/side-c', RECONNECT_OPS)])
    const { ms, cpuMs, mainThreadCpuMs } = await reconnectTimed(c, a, [a, b, c])
    return {
      'merge.reconnect.3hosts.opsPerSide': RECONNECT_OPS,
      'merge.reconnect.3hosts.opsTotal': a.tree.size,
      'merge.reconnect.3hosts.ms': ms,
      'merge.reconnect.3hosts.mainThreadCpuMs': Math.round(mainThreadCpuMs),
      'merge.reconnect.3hosts.cpuMs': Math.round(cpuMs),
      'merge.reconnect.3hosts.conflicts': a.tree.conflicts().length
    }
  } finally {
    await t.run()
  }
}

async function diverge (h: ClusterHost, home: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += CONCURRENCY) {
    const k = Math.min(CONCURRENCY, n - i)
    await Promise.all(Array.from({ length: k }, async (_, j) => {
      const text = `${h.name}-${i + j}`
      const body: OpBody = { type: 'create', parent: home, name: `f${i + j}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: enc.encode(text) }, size: text.length, time: now() }
      await h.tree.commit(body)
    }))
  }
}

async function twoHosts (): Promise<Record<string, number>> {
  const t = new Teardown()
  try {
    let [a, b] = await startCluster(t, 2)
    await until('mesh', () => a.host.peers().length === 1 && b.host.peers().length === 1)
    await a.volume.mkdir('/a')
    await a.volume.mkdir('/b')
    await until('base everywhere', () => sameHeads([a, b]))
    b = await isolate(t, b, [a])
    const homeA = a.tree.lookup(a.tree.root, 'a')!.inode
    const homeB = b.tree.lookup(b.tree.root, 'b')!.inode
    const d0 = performance.now()
    await Promise.all([diverge(a, homeA, DIVERGE_OPS), diverge(b, homeB, DIVERGE_OPS)])
    const divergeMs = performance.now() - d0
    const before = [a.tree.receiveStats(), b.tree.receiveStats()]
    const { ms, cpuMs, mainThreadCpuMs } = await reconnectTimed(b, a, [a, b])
    const after = [a.tree.receiveStats(), b.tree.receiveStats()]
    // receive()'s stages on both hosts during the reconnect (wall ms: the 'ops' listeners of a
    // host's sync, volume, metrics, keeper run in eventsMs)
    const stages: Record<string, number> = {}
    for (const k of ['decodeMs', 'verifyMs', 'journalMs', 'dagMs', 'crdtMs', 'eventsMs'] as const) {
      stages[`merge.sync.2hosts.${k}`] = Math.round(after[0][k] - before[0][k] + after[1][k] - before[1][k])
    }
    return {
      ...stages,
      'merge.sync.2hosts.opsPerSide': DIVERGE_OPS,
      'merge.sync.2hosts.ms': ms,
      'merge.sync.2hosts.mainThreadCpuMs': Math.round(mainThreadCpuMs),
      'merge.sync.2hosts.cpuMs': Math.round(cpuMs),
      'merge.sync.2hosts.opsPerSecond': (2 * DIVERGE_OPS) / (ms / 1000),
      'merge.sync.2hosts.divergeMs': divergeMs
    }
  } finally {
    await t.run()
  }
}

export async function run (): Promise<Record<string, number | string>> {
  return { ...await threeHosts(), ...await twoHosts() }
}
