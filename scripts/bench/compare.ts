// darkfs beside the local disk and GlusterFS, in one run (issue 15's figures): the workloads of
// _compare-work.ts (fio sequential and 4 KiB random I/O, SQLite with journal_mode=DELETE and WAL,
// `tar x` of /usr/include, `git clone` of 1,000 files, 5,000 small files made and `rm -r`,
// darkfs's placement time) on
//   local             a temp dir on the local disk
//   gluster-disperse  GlusterFS disperse 6 redundancy 2 (4+2) on loopback bricks, FUSE mount
//   gluster-replica   GlusterFS replica 3 on loopback bricks, FUSE mount
//   darkfs-1          one darkfs host, its FUSE mount
//   darkfs-6          six darkfs hosts on loopback TCP in this process (k=4, m=2), written
//                     through host 0's mount; cold and random reads through host 5's mount.
//                     With DARKFS_COMPARE_THREADS=1, hosts 1 to 4 run in worker threads
//                     (_host-worker.ts), as they would on machines of their own: in one thread
//                     the six hosts' work shares one core (the other core then serves fio and
//                     the kernel alone), which no deployment does
// Figures `compare.<workload>.<system>`; a cell that fails or passes its deadline holds
// `error: <reason>` and the run goes on. A table is printed at the end.
//
// Tools: fio, sqlite3 and git are installed with apt when missing (as root). GlusterFS is used
// when installed (glusterd is started if it is not running, and stopped again); with
// DARKFS_BENCH_GLUSTER=install glusterfs-server is installed when missing, with =off it is left
// out; without it its columns are skipped and the reason printed (_gluster.ts).
// Settings: DARKFS_COMPARE_MIB (fio file size, default 1024), DARKFS_COMPARE_SECONDS (each random
// I/O run, default 30), DARKFS_COMPARE_TIMEOUT_S (caps every workload's deadline, for quick
// runs), DARKFS_COMPARE_SYSTEMS (a comma list of the systems above, default all),
// DARKFS_COMPARE_WORKLOADS (a comma list of workload keys of _compare-work.ts, e.g.
// seqwrite.MiBps,placed.s,coldread.MiBps, default all), DARKFS_COMPARE_PROF (a dir: a CPU
// profile of this process for each darkfs cell of those three workloads, of randread.iops and of
// the small-file ones, written there as <workload>.<system>.cpuprofile; scripts/prof-summary.ts
// reads it). darkfs's CPU in a cell is figured per MiB (the three), per I/O (randread, randwrite-fsync16:
// cpu.ms_per_op) or per file (smallfiles.s, smallfiles-rm.s: cpu.ms_per_file).
// With the six hosts in one process, each darkfs cell also prints its CPU by thread (threadCpu():
// the main thread's event loop, the host worker threads, libuv's pool, V8's helpers), figured
// `cpu.threads.<group>.ms_per_MiB` or `.ms_per_op` for the cells above.
// DARKFS_PERF_CTL (a perf control fifo) with DARKFS_PERF_ONLY (a comma list of workload keys):
// `enable` is written to the fifo as each of those cells starts and `disable` as it ends, so
// `perf record -D -1 --control fifo:CTL,ACK ... -- npm run bench` samples those cells alone
// (V8 profiles misattribute time on oversubscribed cores; perf does not).
// The hosts run with libuv's threadpool of a real host's worker (`npm run bench` sets
// UV_THREADPOOL_SIZE to node/cli/supervisor.ts WORKER_THREADPOOL_SIZE, 16, unless it is set): one
// pool for the process, so darkfs-6's six hosts share what one host has.
// Needs root (mounts, drop_caches). Run alone: `DARKFS_BENCH=compare npm run bench`.
import { mkdtemp, chmod, rm, mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Teardown } from '../../harness/tmp.ts'
import { dirname, basename } from 'node:path'
import { Worker } from 'node:worker_threads'
import { Session } from 'node:inspector/promises'
import { startCluster, startHost, until } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'
import { init } from '../../node/cli/index.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { MountOptions } from '../../fuse/index.ts'
import { mountHost } from './mount-cluster.ts'
import { ensureTools } from './_tools.ts'
import { glusterReady, glusterVolume } from './_gluster.ts'
import type { GlusterLayout } from './_gluster.ts'
import { runCommand } from './_proc.ts'
import { GC_INCREMENTAL, GC_MAJOR, GC_MINOR, GC_MS, countGc, sharedGcCounters, sumGc } from './_gc-count.ts'
import { WORKLOADS, FIO_FILE, fioOverhead, smallFilesOverhead, makeTarball, makeGitSource, clean } from './_compare-work.ts'
import type { Target, Work, Workload } from './_compare-work.ts'

const SYSTEMS = ['local', 'gluster-disperse', 'gluster-replica', 'darkfs-1', 'darkfs-6'] as const
type System = typeof SYSTEMS[number]
const DEFAULT_MIB = 1024
const DEFAULT_SECONDS = 30
/** Hosts of the cluster case: six, so chunks are k = 4, m = 2. */
const HOSTS = 6
/** Setting a system up (a cluster meshing, a volume starting) may take this long. */
const SETUP_TIMEOUT_MS = 180_000
/** Extra time a workload's guard gives past its own deadline (its commands time out first). */
const GUARD_SLACK_MS = 60_000

/**
 * Seconds this process's main thread has waited, runnable, for a core (/proc schedstat; 0 where
 * there is none): with other work on the machine, time a figure lost to others' load.
 */
async function runQueueWait (): Promise<number> {
  // the main thread's (the event loop that serves every host here)
  const stat = await readFile('/proc/self/schedstat', 'utf8').catch(() => '')
  return (Number(stat.split(' ')[1] ?? 0) || 0) / 1e9
}

/**
 * Bytes this process has caused to be written to storage (write_bytes of /proc/self/task/<tid>/io,
 * summed over its threads: every darkfs host of a cluster cell runs here; undefined where there is
 * no such file), and `whole`, /proc/self/io's: that one also holds what its reaped children wrote
 * (the kernel adds a child's counts to its parent's when it is waited for), fio's own writes
 * through the mount among them, 1 MiB per MiB of seqwrite that no host wrote (disk39). A thread
 * that ended between two calls is missing from the second (as in threadCpu(): the hosts' threads
 * and the pool live through a cell).
 */
async function ioWritten (): Promise<{ own: number, whole: number } | undefined> {
  const bytes = async (file: string): Promise<number | undefined> => {
    const io = await readFile(file, 'utf8').catch(() => '')
    const m = /^write_bytes:\s*(\d+)/m.exec(io)
    return m === null ? undefined : Number(m[1])
  }
  const whole = await bytes('/proc/self/io')
  if (whole === undefined) return undefined
  const tids = await readdir('/proc/self/task').catch(() => [] as string[])
  const own = await Promise.all(tids.map(async tid => await bytes(`/proc/self/task/${tid}/io`) ?? 0))
  return { own: own.reduce((a, b) => a + b, 0), whole }
}

/** The groups threadCpu() sorts this process's threads into, by the name the runtime gives each. */
const THREAD_GROUPS: Array<[string, (comm: string) => boolean]> = [
  // the event loop that serves the writer's and the reader's hosts (or all six, without threads)
  ['main', c => c === 'node-MainThread' || c === 'node'],
  // hosts 1 to 4 (DARKFS_COMPARE_THREADS): the holders a reader fetches from
  ['hosts', c => c === 'WorkerThread'],
  // libuv's threadpool: file I/O and the addon's jobs (hashing, the erasure code)
  ['pool', c => c.startsWith('libuv-worker')],
  // V8's helpers of every isolate: concurrent marking and sweeping, compilers
  ['v8', c => c === 'node-V8Worker']
]

/**
 * CPU seconds (user + system) this process's threads have used, per THREAD_GROUPS group (and
 * `other`), from /proc/self/task/<tid>/stat (clock ticks of 1/100 s); an empty map where there is
 * no /proc. A thread that ended between two calls is missing from the second: the difference of
 * two calls counts only the threads alive at both (the hosts' threads and the pool live through a
 * cell). The six hosts share one process, so this is how their CPU splits between the reader's and
 * writer's event loop, the holders, the threadpool and the collector.
 */
async function threadCpu (): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const tids = await readdir('/proc/self/task').catch(() => [] as string[])
  await Promise.all(tids.map(async tid => {
    // a thread may end while it is read: it is then left out
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '')
    // comm is in parentheses and may hold spaces; the fields after it are space-separated
    const open = stat.indexOf('(')
    const close = stat.lastIndexOf(')')
    if (open < 0 || close < open) return
    const comm = stat.slice(open + 1, close)
    const fields = stat.slice(close + 2).split(' ')
    // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after comm and state
    const ticks = Number(fields[11]) + Number(fields[12])
    if (!Number.isFinite(ticks)) return
    const group = THREAD_GROUPS.find(([, test]) => test(comm))?.[0] ?? 'other'
    out.set(group, (out.get(group) ?? 0) + ticks / 100)
  }))
  return out
}

/** Reject when `p` has not settled within `ms` (the work may go on; the bench does not wait for it). */
async function guard<T> (what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: no result within ${Math.round(ms / 1000)} s`)) }, ms) })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

/** The darkfs cells whose CPU is figured per MiB (and profiled with DARKFS_COMPARE_PROF). */
const CPU_WORKLOADS = new Set(['seqwrite.MiBps', 'placed.s', 'coldread.MiBps'])
/**
 * The darkfs cells whose CPU is figured per I/O (IOPS x the run's seconds; profiled with
 * DARKFS_COMPARE_PROF too). randwrite-fsync16's I/Os are its 4 KiB writes: x16 for an fsync's.
 */
const OP_CPU_WORKLOADS = new Set(['randread.iops', 'randwrite-fsync16.iops'])
/**
 * Seconds this process's CPU is sampled with no I/O just before each of those cells (the hosts'
 * background: gossip, pings, kept and space notices): ms_per_op divides it by the cell's I/Os
 * too, so at 100 IOPS (a loaded machine) it outweighed the reads themselves. idle_ms_per_s and
 * ms_per_op_net (the cell's CPU less that background over the cell's time, per I/O) say so.
 */
const IDLE_SAMPLE_S = 2
/** The darkfs cells whose CPU is figured per file (their 5,000 files; profiled with DARKFS_COMPARE_PROF too). */
const FILE_CPU_WORKLOADS = new Map([['smallfiles.s', 5000], ['smallfiles-rm.s', 5000]])
/** The darkfs cells profiled with DARKFS_COMPARE_PROF for their CPU alone (no figure per unit). */
const PROF_WORKLOADS = new Set(['sqlite-delete.s', 'sqlite-wal.s'])

/** The host worker threads running now (DARKFS_COMPARE_THREADS): profiled with the main thread. */
const hostWorkers = new Set<Worker>()
/**
 * The collections of this process's isolates (_gc-count.ts): the main thread's, then each host
 * worker's (in shared memory, added as the worker starts and kept after it stops, so a sum never
 * goes back). A cell's figures are the difference of the sums around it.
 */
const gcCounters: Float64Array[] = [sharedGcCounters()]
countGc(gcCounters[0])

/**
 * A CPU profile of this process's main thread (the darkfs hosts run in it, or the writer and the
 * reader with DARKFS_COMPARE_THREADS) from now until the returned function is called, which
 * writes it to `file`, and one of each host worker thread to `file` with `.w<i>` before its
 * `.cpuprofile`; nothing when `file` is undefined.
 */
async function profile (file: string | undefined): Promise<() => Promise<void>> {
  if (file === undefined) return async () => {}
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  const workers = [...hostWorkers]
  for (const w of workers) w.postMessage({ prof: 'start' })
  return async () => {
    const { profile } = await session.post('Profiler.stop')
    session.disconnect()
    await writeFile(file, JSON.stringify(profile))
    await Promise.all(workers.map(async (w, i) => {
      const out = file.replace(/\.cpuprofile$/, `.w${i}.cpuprofile`)
      await new Promise<void>(resolve => {
        const onMessage = (msg: { profiled?: string, error?: string }): void => {
          if (msg.profiled !== out && msg.error === undefined) return
          w.off('message', onMessage)
          if (msg.error !== undefined) process.stdout.write(`  compare: profile of host worker ${i}: ${msg.error}\n`)
          resolve()
        }
        w.on('message', onMessage)
        w.postMessage({ prof: 'stop', file: out })
      })
    }))
  }
}

/** This process's memory after a cell: heap used, outside the heap (buffers), resident (MiB). */
/** Whether perf was told to sample the cell running now (DARKFS_PERF_CTL). */
let perfOn = false
const mem = (): string => { const m = process.memoryUsage(); return `${(m.heapUsed / 2 ** 20).toFixed(0)} MiB, external ${(m.external / 2 ** 20).toFixed(0)} MiB, rss ${(m.rss / 2 ** 20).toFixed(0)} MiB` }

const errorCell = (err: any): string => `error: ${String(err?.message ?? err).replace(/\s+/g, ' ').slice(0, 300)}`

/** Wait until `file` shows `bytes` bytes through a mount (`stat` in a child: this process serves it). */
async function untilSize (file: string, bytes: number, timeoutMs: number): Promise<void> {
  await until(`${file} shows ${bytes} bytes`, async () => {
    const r = await runCommand('stat', ['-c', '%s', file], { timeoutMs: 30_000 })
    return r.code === 0 && Number(r.stdout.trim()) === bytes
  }, timeoutMs)
}

/** Hosts 1 to n-2 of a cluster in worker threads (_host-worker.ts), joined to `first`; stopped by `t`. */
async function workerHosts (t: Teardown, first: ClusterHost, count: number): Promise<void> {
  const root = dirname(first.dir)
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    const gc = sharedGcCounters()
    gcCounters.push(gc)
    const worker = new Worker(new URL('./_host-worker.ts', import.meta.url), { workerData: { dir: join(root, `w${i}`), networkKey: join(first.dir, 'network.key'), join: first.address, gc } })
    const stopped = new Promise<void>(resolve => { worker.once('exit', () => { hostWorkers.delete(worker); resolve() }) })
    hostWorkers.add(worker)
    t.add(async () => {
      hostWorkers.delete(worker)
      worker.postMessage('stop')
      await Promise.race([stopped, new Promise(resolve => setTimeout(resolve, 30_000))])
      await worker.terminate()
    })
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (msg: { address?: string, error?: string }) => { if (msg.address !== undefined) resolve(); else reject(new Error(`host worker ${i}: ${msg.error ?? 'no address'}`)) })
      worker.once('error', reject)
    })
  }))
}

/** A darkfs cluster of `n` hosts with host 0 mounted (and host n-1 too, as the reader, when n > 1). */
async function darkfsTarget (t: Teardown, base: string, n: number, w: Work): Promise<Target> {
  const threads = n > 2 && process.env.DARKFS_COMPARE_THREADS === '1'
  let hosts: ClusterHost[]
  if (threads) {
    const [first] = await startCluster(t, 1, { transport: 'tcp' })
    await workerHosts(t, first, n - 2)
    const dir = join(dirname(first.dir), 'last')
    await init(dir, { networkKey: join(first.dir, 'network.key') })
    hosts = [first, await startHost(t, dir, `${basename(first.dir)}-last`, [first.address], { transport: 'tcp' })]
  } else {
    hosts = await startCluster(t, n, { transport: 'tcp' })
  }
  await until('full mesh', () => hosts.every(h => h.host.peers().length === n - 1), 60_000)
  // the writer's fsyncs: when each was answered and its ms (the SQLite cells' split, below)
  const fsyncs: Array<readonly [number, number]> = []
  const mountOn = async (h: ClusterHost, onOp?: MountOptions['onOp']): Promise<string> => {
    const dir = await mkdtemp(join(base, `mnt-${h.name}-`))
    const m = await mountHost(h, dir, onOp !== undefined ? { onOp } : {})
    t.add(async () => { await m.unmount() })
    return dir
  }
  const writer = hosts[0]
  const reader = hosts[hosts.length - 1]
  const fuse = new Map<string, [number, number]>()
  const ops = new Map<string, number>()
  onEachOp(writer.tree, (op, local) => {
    if (!local) return
    const type = String((op.body as { type?: unknown }).type)
    ops.set(type, (ops.get(type) ?? 0) + 1)
  })
  const dir = await mountOn(writer, (op, seconds) => {
    if (op === 'fsync' || op === 'fsyncdir') fsyncs.push([performance.now(), seconds * 1000])
    let x = fuse.get(op)
    if (x === undefined) fuse.set(op, x = [0, 0])
    x[0]++
    x[1] += seconds * 1000
  })
  const readDir = n > 1 ? await mountOn(reader) : dir
  if (n > 1 && writer.network.params().k !== 4) process.stdout.write(`  compare: darkfs-${n} writes with k=${writer.network.params().k}, m=${writer.network.params().m}\n`)
  return {
    dir,
    readDir,
    cold: async () => {
      // the reader must see the whole file before its cache is dropped and the clock starts
      await untilSize(join(readDir, FIO_FILE), w.mib << 20, w.deadline(120_000))
      reader.volume.chunks.dropCache()
    },
    reads: () => ({ ...reader.volume.chunks.readCounters(), received: reader.swarm.stats().bytesReceived }),
    parity: () => ({ ...writer.volume.chunks.shardPool.counters }),
    // syncs: the writer store's group commits (each one fsync round of its block files), where the addon writes them
    disk: () => { const c = writer.store.counters(); return { added: c.added, removed: c.removed, syncs: writer.store.groupCommits()?.jobs } },
    fsyncs: () => fsyncs,
    requests: () => ({ fuse: new Map([...fuse].map(([k, v]) => [k, [v[0], v[1]]])), ops: new Map(ops) }),
    streams: () => {
      const out = new Map<string, number>()
      for (const h of hosts) for (const [p, { streams }] of Object.entries(h.host.traffic().protocols)) out.set(p, (out.get(p) ?? 0) + streams)
      return out
    },
    // a lone host has no peer to place on: no placement figure there
    placed: n > 1
      ? async (timeoutMs) => {
        const t0 = performance.now()
        await until('every chunk placed', () => writer.network.pending.size === 0, timeoutMs)
        return (performance.now() - t0) / 1000
      }
      : undefined
  }
}

export async function run (): Promise<Record<string, number | string>> {
  const mib = Number(process.env.DARKFS_COMPARE_MIB ?? DEFAULT_MIB)
  const seconds = Number(process.env.DARKFS_COMPARE_SECONDS ?? DEFAULT_SECONDS)
  const capS = Number(process.env.DARKFS_COMPARE_TIMEOUT_S ?? 0)
  const only = process.env.DARKFS_COMPARE_SYSTEMS?.split(',').filter(s => s !== '')
  const systems = SYSTEMS.filter(s => only === undefined || only.includes(s))
  const onlyWork = process.env.DARKFS_COMPARE_WORKLOADS?.split(',').filter(s => s !== '')
  // a name misspelt ran nothing of it, silently (gluster-r3 for gluster-replica)
  const unknownSystems = only?.filter(s => !(SYSTEMS as readonly string[]).includes(s)) ?? []
  if (unknownSystems.length > 0) throw new Error(`compare: DARKFS_COMPARE_SYSTEMS names ${unknownSystems.join(', ')}: not one of ${SYSTEMS.join(', ')}`)
  const unknownWork = onlyWork?.filter(k => !WORKLOADS.some(wl => wl.key === k)) ?? []
  if (unknownWork.length > 0) throw new Error(`compare: DARKFS_COMPARE_WORKLOADS names ${unknownWork.join(', ')}: not one of ${WORKLOADS.map(wl => wl.key).join(', ')}`)
  // a workload chosen runs with the one whose files it works on (`after`): randread.iops alone
  // read a file no one wrote, and failed after waiting 120 s for it to show on the reader
  const needed = new Set(WORKLOADS.filter(wl => onlyWork?.includes(wl.key) === true && wl.after !== undefined).map(wl => wl.after as string))
  // and every workload after the big write waits for its placement (placed.s, darkfs with peers):
  // a random-write or SQLite cell chosen alone ran while the write's fragments were still being
  // placed, and measured that (fsync16 on six hosts: 2.8 to 360 IOPS from one run to the next)
  if (onlyWork !== undefined && onlyWork.some(k => k !== 'seqwrite.MiBps' && k !== 'placed.s') && (needed.has('seqwrite.MiBps') || onlyWork.includes('seqwrite.MiBps'))) needed.add('placed.s')
  const workloads = WORKLOADS.filter(wl => onlyWork === undefined || onlyWork.includes(wl.key) || needed.has(wl.key))
  for (const key of needed) if (onlyWork?.includes(key) === false) process.stdout.write(`  compare: ${key} runs too (the workloads chosen work on its files, or after its placement)\n`)
  const figures: Record<string, number | string> = { 'compare.MiB': mib, 'compare.random.seconds': seconds }
  if (process.getuid?.() !== 0) throw new Error('compare: needs root (FUSE and GlusterFS mounts, drop_caches)')
  await ensureTools([{ cmd: 'fio', pkg: 'fio' }, { cmd: 'sqlite3', pkg: 'sqlite3' }, { cmd: 'git', pkg: 'git' }], 'compare')

  const outer = new Teardown()
  const base = await mkdtemp(join(tmpdir(), 'darkfs-bench-compare-'))
  outer.add(async () => { await rm(base, { recursive: true, force: true }) })
  const cells = new Map<string, number | string>()
  try {
    await chmod(base, 0o755)
    const work: Work = {
      mib,
      seconds,
      fioOverhead: await fioOverhead(base),
      smallOverhead: workloads.some(wl => wl.key === 'smallfiles.s') ? await smallFilesOverhead() : 0,
      // made only for the workloads that use them (a run of the fio workloads alone skips both)
      tarball: workloads.some(wl => wl.key === 'tar.s') ? await makeTarball(base) : undefined,
      gitSource: workloads.some(wl => wl.key === 'git-clone.s') ? await makeGitSource(base) : '',
      deadline: ms => capS > 0 ? Math.min(ms, capS * 1000) : ms
    }
    figures['compare.fio.overhead.s'] = work.fioOverhead
    if (workloads.some(wl => wl.key === 'smallfiles.s')) figures['compare.smallfiles.overhead.s'] = work.smallOverhead
    if (work.tarball === undefined && workloads.some(wl => wl.key === 'tar.s')) process.stdout.write('  compare: no /usr/include here: no tar figures\n')

    let gluster: { ok: true } | { ok: false, reason: string } | undefined
    for (const system of systems) {
      const t = new Teardown()
      try {
        let target: Target
        try {
          if (system.startsWith('gluster-')) {
            gluster ??= await glusterReady(outer, base)
            if (!gluster.ok) {
              process.stdout.write(`  compare: ${system} skipped: ${gluster.reason}\n`)
              figures[`compare.${system}.skipped`] = gluster.reason
              continue
            }
          }
          target = await guard(`${system} setup`, SETUP_TIMEOUT_MS, setUp(t, base, system, work))
        } catch (err: any) {
          // the whole column fails: every cell says why
          for (const wl of workloads) cells.set(`${wl.key}.${system}`, errorCell(err))
          continue
        }
        process.stdout.write(`  compare: ${system} ready\n`)
        /** Workloads of this system that failed (the ones after them have nothing to work on). */
        const failedHere = new Set<string>()
        for (const [i, wl] of workloads.entries()) {
          if (wl.onlyPlaced === true && target.placed === undefined) continue
          const key = `${wl.key}.${system}`
          if (wl.after !== undefined && failedHere.has(wl.after)) {
            cells.set(key, `error: no files (${wl.after} failed)`)
            failedHere.add(wl.key)
          } else {
            // the hosts' background CPU with no I/O, per second, before a cell figured per I/O
            let idleMsPerS: number | undefined
            if (system.startsWith('darkfs') && OP_CPU_WORKLOADS.has(wl.key)) {
              const i0 = process.cpuUsage()
              const it0 = performance.now()
              await new Promise(resolve => setTimeout(resolve, IDLE_SAMPLE_S * 1000))
              const idle = process.cpuUsage(i0)
              idleMsPerS = (idle.user + idle.system) / (performance.now() - it0)
            }
            const t0 = performance.now()
            // this process's CPU (the darkfs hosts run in it; fio and the kernel's FUSE side do not count)
            const cpu0 = process.cpuUsage()
            const threads0 = system.startsWith('darkfs') ? await threadCpu() : undefined
            const gc0 = sumGc(gcCounters)
            const wait0 = await runQueueWait()
            const profDir = process.env.DARKFS_COMPARE_PROF
            const streams0 = target.streams?.()
            const fsyncs0 = target.fsyncs?.().length
            const requests0 = target.requests?.()
            const reads0 = target.reads?.()
            const parity0 = target.parity?.()
            const disk0 = target.disk?.()
            const io0 = await ioWritten()
            const perfCtl = process.env.DARKFS_PERF_CTL
            if (perfCtl !== undefined && (process.env.DARKFS_PERF_ONLY ?? '').split(',').includes(wl.key)) { await writeFile(perfCtl, 'enable\n'); perfOn = true }
            const stopProfile = await profile(profDir !== undefined && system.startsWith('darkfs') && (CPU_WORKLOADS.has(wl.key) || OP_CPU_WORKLOADS.has(wl.key) || FILE_CPU_WORKLOADS.has(wl.key) || PROF_WORKLOADS.has(wl.key)) ? join(profDir, `${key}.cpuprofile`) : undefined)
            try {
              const v = await guard(`${system} ${wl.key}`, work.deadline(LONG_GUARD_MS) + GUARD_SLACK_MS, wl.run(target, work))
              cells.set(key, v)
            } catch (err: any) {
              cells.set(key, errorCell(err))
              failedHere.add(wl.key)
            }
            const cpu = process.cpuUsage(cpu0)
            const cellMs = performance.now() - t0
            const threads1 = threads0 !== undefined ? await threadCpu() : undefined
            const gc1 = sumGc(gcCounters)
            await stopProfile()
            if (perfOn) { await writeFile(process.env.DARKFS_PERF_CTL!, 'disable\n'); perfOn = false }
            const cpuS = (cpu.user + cpu.system) / 1e6
            if (system.startsWith('darkfs') && CPU_WORKLOADS.has(wl.key)) {
              figures[`compare.${key}.cpu.ms_per_MiB`] = cpuS * 1000 / mib
              // system time: the kernel's side of the sockets, disk writes and FUSE requests of every thread
              figures[`compare.${key}.cpu.system.ms_per_MiB`] = cpu.system / 1000 / mib
            }
            const iops = cells.get(key)
            if (system.startsWith('darkfs') && OP_CPU_WORKLOADS.has(wl.key) && typeof iops === 'number' && iops > 0) {
              // the cell's CPU over its I/Os (setup and cleanup of the cell count too: a slight overestimate)
              figures[`compare.${key}.cpu.ms_per_op`] = cpuS * 1000 / (iops * seconds)
              if (idleMsPerS !== undefined) {
                figures[`compare.${key}.cpu.idle_ms_per_s`] = idleMsPerS
                figures[`compare.${key}.cpu.ms_per_op_net`] = (cpuS * 1000 - idleMsPerS * cellMs / 1000) / (iops * seconds)
              }
            }
            if (threads0 !== undefined && threads1 !== undefined && threads1.size > 0) {
              // the cell's CPU by thread group, per the unit of its figure (MiB, I/O) where it has one
              const perMiB = CPU_WORKLOADS.has(wl.key)
              const ops = OP_CPU_WORKLOADS.has(wl.key) && typeof iops === 'number' && iops > 0 ? iops * seconds : undefined
              const unit = perMiB ? 'ms_per_MiB' : ops !== undefined ? 'ms_per_op' : undefined
              const parts = [...THREAD_GROUPS.map(([g]) => g), 'other'].map(g => [g, (threads1.get(g) ?? 0) - (threads0.get(g) ?? 0)] as const)
              for (const [g, s] of parts) if (unit !== undefined) figures[`compare.${key}.cpu.threads.${g}.${unit}`] = s * 1000 / (perMiB ? mib : ops!)
              process.stdout.write(`  compare: ${key} CPU by thread: ${parts.map(([g, s]) => `${g} ${s.toFixed(2)} s`).join(', ')}${unit !== undefined ? ` (${parts.map(([g, s]) => `${g} ${(s * 1000 / (perMiB ? mib : ops!)).toFixed(unit === 'ms_per_op' ? 3 : 2)}`).join(', ')} ${unit})` : ''}\n`)
            }
            const gcOps = OP_CPU_WORKLOADS.has(wl.key) && typeof iops === 'number' && iops > 0 ? iops * seconds : undefined
            if (system.startsWith('darkfs') && (CPU_WORKLOADS.has(wl.key) || gcOps !== undefined)) {
              // every isolate's collections in the cell (perf_hooks 'gc' entries; a pause's ms are
              // the collecting thread's alone, V8's helper threads work besides): per MiB, or per
              // 1,000 I/Os for the cells figured per I/O
              const [major, minor, incremental, ms] = [GC_MAJOR, GC_MINOR, GC_INCREMENTAL, GC_MS].map(i => gc1[i] - gc0[i])
              const [per, unit] = gcOps !== undefined ? [gcOps / 1000, 'kop'] : [mib, 'MiB']
              figures[`compare.${key}.gc.major_per_${unit}`] = major / per
              figures[`compare.${key}.gc.minor_per_${unit}`] = minor / per
              figures[`compare.${key}.gc.pause_ms_per_${unit}`] = ms / per
              process.stdout.write(`  compare: ${key} GCs in ${gcCounters.length} isolates: ${major} major (mark-compact), ${minor} minor, ${incremental} incremental steps, ${ms.toFixed(0)} ms of pauses (${(major / per).toFixed(3)} major, ${(ms / per).toFixed(2)} ms per ${unit === 'kop' ? '1,000 I/Os' : 'MiB'})\n`)
            }
            const files = FILE_CPU_WORKLOADS.get(wl.key)
            if (system.startsWith('darkfs') && files !== undefined) figures[`compare.${key}.cpu.ms_per_file`] = cpuS * 1000 / files
            const waitS = (await runQueueWait()) - wait0
            if (fsyncs0 !== undefined && PROF_WORKLOADS.has(wl.key)) {
              // the SQLite cells' time in the writer's fsyncs against the rest (sqlite3's own work,
              // its writes through the mount): which of them a slow run lost its time in, and
              // whether a few fsyncs stalled (work left by earlier cells) or all of them grew
              const got = target.fsyncs!().slice(fsyncs0)
              const ms = got.map(([, m]) => m).sort((a, b) => a - b)
              const sum = ms.reduce((a, b) => a + b, 0)
              const at = (q: number): number => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0
              const slowest = [...got].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([t, m]) => `${m.toFixed(0)} ms at ${((t - m - t0) / 1000).toFixed(2)} s`)
              process.stdout.write(`  compare: ${key} writer's fsyncs: ${ms.length}, ${(sum / 1000).toFixed(2)} s of the cell's ${(cellMs / 1000).toFixed(2)} s; median ${at(0.5).toFixed(1)} ms, p90 ${at(0.9).toFixed(1)} ms, slowest ${slowest.join(', ')}\n`)
              if (requests0 !== undefined) {
                const r = target.requests!()
                const kinds = [...r.fuse].map(([k, [n, m]]) => [k, n - (requests0.fuse.get(k)?.[0] ?? 0), m - (requests0.fuse.get(k)?.[1] ?? 0)] as const).filter(([, n]) => n > 0).sort((a, b) => b[2] - a[2])
                const made = [...r.ops].map(([k, n]) => [k, n - (requests0.ops.get(k) ?? 0)] as const).filter(([, n]) => n > 0)
                process.stdout.write(`  compare: ${key} writer's requests: ${kinds.slice(0, 8).map(([k, n, m]) => `${k} ${n}/${m.toFixed(0)} ms`).join(', ')}; its ops: ${made.map(([k, n]) => `${k} ${n}`).join(', ')}\n`)
              }
            }
            if (streams0 !== undefined && (CPU_WORKLOADS.has(wl.key) || gcOps !== undefined)) {
              // streams opened per protocol in the cell, per MiB or per 1,000 I/Os (each is an open, a negotiation and a close)
              const per = gcOps !== undefined ? gcOps / 1000 : mib
              const opened = [...target.streams!()].map(([p, n]) => [p, n - (streams0.get(p) ?? 0)] as const).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])
              process.stdout.write(`  compare: ${key} streams opened per ${gcOps !== undefined ? '1,000 I/Os' : 'MiB'}: ${opened.slice(0, 8).map(([p, n]) => `${p} ${(n / per).toFixed(2)}`).join(', ')}\n`)
            }
            if (reads0 !== undefined && (OP_CPU_WORKLOADS.has(wl.key) || wl.key === 'coldread.MiBps')) {
              // what the reader's reads took: leaves of a data fragment (ranges), whole chunks from
              // the network (fetches; ahead: of them started ahead of a reader), ranges read whole,
              // chunks read whole of k > 1 (coded), of them decoded through parity (rebuilt) and
              // through a parity fragment from a peer (parityFetched; the rest: one held here)
              const reads = target.reads!()
              // received: the reader's swarm bytes in per MiB of the cell (~0.75 on six hosts at 4+2: a
              // fragment fetched twice, a hedge, shows here)
              process.stdout.write(`  compare: ${key} reader: ${['ranges', 'rangeFallbacks', 'fetches', 'ahead', 'coded', 'rebuilt', 'parityFetched', 'landed'].map(c => `${c} ${reads[c] - reads0[c]}`).join(', ')}, received ${((reads.received - reads0.received) / (1 << 20) / mib).toFixed(2)} MiB per MiB\n`)
            }
            if (parity0 !== undefined && CPU_WORKLOADS.has(wl.key)) {
              // parity memory the writer's encodes took fresh (made), or recycled (reused; ShardLease)
              const p = target.parity!()
              process.stdout.write(`  compare: ${key} writer's parity memory: ${['made', 'reused', 'released', 'dropped'].map(c => `${c} ${p[c] - parity0[c]}`).join(', ')}\n`)
            }
            const io1 = await ioWritten()
            if (io0 !== undefined && io1 !== undefined && system.startsWith('darkfs') && CPU_WORKLOADS.has(wl.key)) {
              // every host's bytes to storage (block files, logs), per MiB of the cell
              // the hosts' threads alone (not fio, a child: its writes through the mount are the
              // MiB the cell counts, and only the hosts' bytes below them reach the disk)
              const own = (io1.own - io0.own) / (1 << 20) / mib
              figures[`compare.${key}.io.written_MiB_per_MiB`] = own
              process.stdout.write(`  compare: ${key} this process wrote ${own.toFixed(3)} MiB to storage per MiB (${((io1.whole - io0.whole) / (1 << 20) / mib).toFixed(3)} with its reaped children's: fio's writes through the mount)\n`)
            }
            if (disk0 !== undefined && CPU_WORKLOADS.has(wl.key)) {
              // what the writer's disk took (put) and gave back (deleted: copies handed over) per MiB of the cell
              const d = target.disk!()
              figures[`compare.${key}.writer.put_MiB_per_MiB`] = (d.added - disk0.added) / (1 << 20) / mib
              figures[`compare.${key}.writer.deleted_MiB_per_MiB`] = (d.removed - disk0.removed) / (1 << 20) / mib
              const syncs = d.syncs !== undefined && disk0.syncs !== undefined ? (d.syncs - disk0.syncs) / mib : undefined
              if (syncs !== undefined) figures[`compare.${key}.writer.syncs_per_MiB`] = syncs
              process.stdout.write(`  compare: ${key} writer's disk: put ${((d.added - disk0.added) / (1 << 20) / mib).toFixed(3)} MiB, deleted ${((d.removed - disk0.removed) / (1 << 20) / mib).toFixed(3)} MiB per MiB${syncs !== undefined ? `, ${syncs.toFixed(2)} group commits per MiB` : ''}\n`)
            }
            process.stdout.write(`  compare: ${key} = ${String(cells.get(key))} (${((performance.now() - t0) / 1000).toFixed(1)} s, ${cpuS.toFixed(1)} s CPU in this process (${(cpu.system / 1e6).toFixed(1)} s system), ${waitS.toFixed(1)} s runnable but waiting for a core; heap ${mem()})\n`)
          }
          // a workload after this one works on what it left
          if (workloads.slice(i + 1).some(next => next.after === wl.key)) continue
          // outside the guard: a slow removal does not turn a measured figure into an error
          await guard(`${system} ${wl.key} cleanup`, work.deadline(LONG_GUARD_MS) + GUARD_SLACK_MS, clean(target, wl, work)).catch((err: Error) => {
            process.stdout.write(`  compare: ${system} ${wl.key}: cleanup: ${err.message}\n`)
            cells.set(`${wl.key}.${system}.cleanup`, errorCell(err))
          })
        }
      } finally {
        await t.run()
      }
    }
  } finally {
    await outer.run()
  }
  for (const [k, v] of cells) figures[`compare.${k}`] = v
  printTable(systems, workloads, cells)
  // a cell that failed is a finding, not a figure: the bench fails (a deadline shortened by
  // DARKFS_COMPARE_TIMEOUT_S for a quick run is a figure: "more than that")
  const failed = [...cells].filter(([, v]) => typeof v === 'string' && !(capS > 0 && v.startsWith('error: timeout after')))
  if (failed.length > 0) {
    throw Object.assign(new Error(`${failed.length} cells failed: ${failed.map(([k, v]) => `${k} (${String(v)})`).join('; ')}`), { figures })
  }
  return figures
}

/** The longest a workload may run (its commands' deadlines are shorter): a large file on a slow system. */
const LONG_GUARD_MS = 60 * 60_000

async function setUp (t: Teardown, base: string, system: System, w: Work): Promise<Target> {
  if (system === 'local') {
    const dir = join(base, 'local')
    await mkdir(dir)
    return { dir, readDir: dir, cold: async () => {} }
  }
  if (system === 'gluster-disperse' || system === 'gluster-replica') {
    const layout = system.slice('gluster-'.length) as GlusterLayout
    // a name of this run: a volume left by a run that was killed does not collide
    const vol = await glusterVolume(t, base, `darkfs-bench-${process.pid}-${layout}`, layout)
    return { dir: vol.dir, readDir: vol.dir, cold: vol.remount }
  }
  return await darkfsTarget(t, base, system === 'darkfs-1' ? 1 : HOSTS, w)
}

/** The figures as a table: a row per workload, a column per system. */
function printTable (systems: readonly System[], workloads: Workload[], cells: Map<string, number | string>): void {
  const fmt = (v: number | string | undefined): string => {
    if (v === undefined) return '-'
    if (typeof v === 'string') return v.length > 28 ? v.slice(0, 27) + '…' : v
    return v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2)
  }
  const rows = workloads.map(wl => [wl.key, ...systems.map(s => fmt(cells.get(`${wl.key}.${s}`)))])
  const head = ['workload', ...systems]
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  const line = (r: string[]): string => '  ' + r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ') + '\n'
  process.stdout.write(line(head))
  for (const r of rows) process.stdout.write(line(r))
}
