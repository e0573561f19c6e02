// An idle network is idle (issue 17 item 6): six real `darkfs up` processes on loopback TCP,
// joined and then left alone. Each host's CPU (utime + stime from /proc/<pid>/stat, as a share of
// one core) and the bytes it writes into its TCP sockets (the host's traffic meter, net/traffic.ts:
// pnet, Noise, yamux and every protocol) are measured over a window after the joins settle.
// Goals: <= 1 % of a core and <= 2 kbit/s sent per idle host.
//
// The network holds files (idle is a host with data that nobody touches; an empty network is
// idle for free): DARKFS_BENCH_IDLE_MIB of random data in 4 MiB files (default 64), put on one
// host before the settling time. CPU counts the `darkfs up` supervisor and its worker.
//
// The window starts once the network has settled after the puts: no host sent anything on the
// swarm protocol (placement, handovers, repair surveys) for DARKFS_BENCH_IDLE_SETTLE_S (default
// 70 s, more than a repair interval), reported as idle6.settled.s (time from the last put).
// DARKFS_BENCH_IDLE_S sets the window (default 300 s). DARKFS_BENCH_IDLE_VERBOSE=1 prints what
// each host and protocol sent.
import { readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, upNetwork } from '../../harness/proc.ts'
import { ControlClient } from '../../node/cli/index.ts'
import { PROTOCOL, PROTOCOL_ORIGINS, PROTOCOL_RANGES } from '../../swarm/index.ts'

const HOSTS = 6
/** The swarm's protocol ids (1.1.0 adds range reads). */
const SWARM = [PROTOCOL, PROTOCOL_RANGES, PROTOCOL_ORIGINS]
/** Longest wait for the network to settle after the puts (then it is measured as it is). */
const MAX_SETTLE_MS = 15 * 60_000
/** Goals per idle host. */
export const GOAL_CPU_PERCENT = 1
export const GOAL_SENT_KBITPS = 2

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux we run on). */
const TICKS = 100

interface Sample { at: number, cpuTicks: number, wire: number, protocols: Record<string, { sent: number, streams: number }> }

/** CPU ticks used by a process and its descendants alive now (the worker of a supervisor). */
async function cpuTicks (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name (which may hold spaces) start at ") "
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  let ticks = Number(f[11]) + Number(f[12]) // utime, stime (fields 14 and 15)
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim()
  for (const child of children === '' ? [] : children.split(' ')) ticks += await cpuTicks(Number(child))
  return ticks
}

async function sample (pid: number, client: ControlClient): Promise<Sample> {
  const [t, traffic] = await Promise.all([cpuTicks(pid), client.get('/v1/traffic')])
  return { at: performance.now(), cpuTicks: t, wire: traffic.host.wire.sent, protocols: traffic.host.protocols }
}

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits

export async function run (): Promise<Record<string, number | string>> {
  const windowS = Number(process.env.DARKFS_BENCH_IDLE_S ?? 300)
  const settleS = Number(process.env.DARKFS_BENCH_IDLE_SETTLE_S ?? 70)
  const mib = Number(process.env.DARKFS_BENCH_IDLE_MIB ?? 64)
  const verbose = process.env.DARKFS_BENCH_IDLE_VERBOSE === '1'
  const t = new Teardown()
  try {
    const root = await tempDir(t, 'darkfs-bench-idle-')
    const { dirs, hosts } = await upNetwork(t, root, HOSTS)
    const clients = dirs.map(d => new ControlClient(d))
    // every host sees every other
    const end = Date.now() + 60_000
    while ((await Promise.all(clients.map(async c => (await c.get('/v1/peers')).length))).some(n => n < HOSTS - 1)) {
      if (Date.now() > end) throw new Error('the six hosts never became a full mesh')
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    const file = join(root, 'piece')
    for (let i = 0; i * 4 < mib; i++) {
      await writeFile(file, randomBytes(Math.min(4, mib - i * 4) * 2 ** 20))
      const r = await darkfs(['--data', dirs[0], 'put', file, `/f${i}`], { timeoutMs: 600_000 })
      if (r.code !== 0) throw new Error(`darkfs put: ${r.stderr}`)
    }
    const putDone = Date.now()
    const swarmSent = async (): Promise<number> => (await Promise.all(clients.map(async c => {
      const protocols = (await c.get('/v1/traffic')).host.protocols
      return SWARM.reduce((n: number, p: string) => n + (protocols[p]?.sent ?? 0), 0)
    }))).reduce((a, b) => a + b, 0)
    let last = await swarmSent()
    let quietSince = Date.now()
    while (Date.now() - quietSince < settleS * 1000 && Date.now() - putDone < MAX_SETTLE_MS) {
      await new Promise(resolve => setTimeout(resolve, 5000))
      const now = await swarmSent()
      if (now !== last) { last = now; quietSince = Date.now() }
    }
    const settledS = (Date.now() - putDone) / 1000
    const pids = hosts.map(h => h.child.pid!)
    const before = await Promise.all(pids.map(async (p, i) => await sample(p, clients[i])))
    await new Promise(resolve => setTimeout(resolve, windowS * 1000))
    const after = await Promise.all(pids.map(async (p, i) => await sample(p, clients[i])))

    const cpu: number[] = []
    const kbit: number[] = []
    const perProtocol = new Map<string, number>()
    for (let i = 0; i < HOSTS; i++) {
      const s = (after[i].at - before[i].at) / 1000
      cpu.push((after[i].cpuTicks - before[i].cpuTicks) / TICKS / s * 100)
      kbit.push((after[i].wire - before[i].wire) * 8 / 1000 / s)
      for (const [p, v] of Object.entries(after[i].protocols)) {
        const sent = v.sent - (before[i].protocols[p]?.sent ?? 0)
        perProtocol.set(p, (perProtocol.get(p) ?? 0) + sent / s / HOSTS)
      }
      if (verbose) {
        const parts = Object.entries(after[i].protocols).map(([p, v]) => `${p} ${((v.sent - (before[i].protocols[p]?.sent ?? 0)) / s).toFixed(1)} B/s`)
        process.stdout.write(`  h${i}: ${cpu[i].toFixed(2)} % cpu, ${kbit[i].toFixed(2)} kbit/s sent; ${parts.join(', ')}\n`)
      }
    }
    if (verbose) {
      for (const [p, bps] of [...perProtocol].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${p.padEnd(40)} ${bps.toFixed(1)} B/s per host (payload)\n`)
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
    const out: Record<string, number | string> = {
      'idle6.window.s': windowS,
      'idle6.stored.MiB': mib,
      'idle6.settled.s': round(settledS, 0),
      'idle6.cpu.percent.mean': round(mean(cpu)),
      'idle6.cpu.percent.max': round(Math.max(...cpu)),
      'idle6.cpu.percent.goal': `<= ${GOAL_CPU_PERCENT}`,
      'idle6.sent.kbitps.mean': round(mean(kbit)),
      'idle6.sent.kbitps.max': round(Math.max(...kbit)),
      'idle6.sent.kbitps.goal': `<= ${GOAL_SENT_KBITPS}`
    }
    for (const [p, bps] of perProtocol) out[`idle6.sent.Bps.${p}`] = round(bps, 1)
    return out
  } finally {
    await t.run()
  }
}
