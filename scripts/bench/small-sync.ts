// The small-write data path of issue 15 on one host and on six (k=4, m=2; in this process, on
// loopback TCP), side by side in one run, through host 0's FUSE mount: three workloads of
// compare.ts (_compare-work.ts) that showed six hosts several times slower than one:
//   randwrite-fsync16.iops  fio, 4 KiB random writes, fsync every 16, over a file of
//                           DARKFS_SMALL_SYNC_MIB (default 16) written and placed first
//   sqlite-delete.s         sqlite3 (journal_mode=DELETE): 10,000 rows in one transaction,
//                           100 single-row transactions, an update, a delete and a VACUUM
//   git-clone.s             `git clone --no-local` of a 1,000-file repository on the local disk
// Beside each figure on six hosts: the bytes all hosts sent on gossip and on the swarm during it,
// and the process's CPU seconds (six hosts share this process's one thread: CPU is what they
// cost each other); on every cluster size, the fold ops its hosts made during it (each rewrites
// every chunk its extents touch). DARKFS_SMALL_SYNC_SECONDS sets the fio run (default 10);
// DARKFS_SMALL_SYNC_HOSTS (e.g. '6') runs only those cluster sizes, for paired before/after runs of
// one of them (the ratios then come out NaN). A smaller, quicker
// cousin of `DARKFS_BENCH=compare` (minutes there, about two here). Needs root (FUSE).
import { mkdtemp, chmod, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { mountHost } from './mount-cluster.ts'
import { WORKLOADS, FIO_FILE, makeGitSource } from './_compare-work.ts'
import type { Target, Work } from './_compare-work.ts'
import { ensureTools } from './_tools.ts'
import { sh } from './_proc.ts'
import { onEachOp } from '../../harness/ops.ts'

const HOSTS = (process.env.DARKFS_SMALL_SYNC_HOSTS ?? '1,6').split(',').map(Number)
const DEFAULT_MIB = 16
const DEFAULT_SECONDS = 10

/** Bytes sent by every host on a protocol whose name contains `part`, from snapshots `before` to now. */
function sent (hosts: ClusterHost[], before: Array<ReturnType<ClusterHost['host']['traffic']>>, part: string): number {
  let n = 0
  hosts.forEach((h, i) => {
    for (const [p, x] of Object.entries(h.host.traffic().protocols)) if (p.includes(part)) n += x.sent - (before[i].protocols[p]?.sent ?? 0)
  })
  return n
}

export async function run (): Promise<Record<string, number | string>> {
  if (process.getuid?.() !== 0) throw new Error('small-sync: needs root (FUSE mounts)')
  await ensureTools([{ cmd: 'fio', pkg: 'fio' }, { cmd: 'sqlite3', pkg: 'sqlite3' }, { cmd: 'git', pkg: 'git' }], 'small-sync')
  const mib = Number(process.env.DARKFS_SMALL_SYNC_MIB ?? DEFAULT_MIB)
  const seconds = Number(process.env.DARKFS_SMALL_SYNC_SECONDS ?? DEFAULT_SECONDS)
  const figures: Record<string, number | string> = { 'small-sync.MiB': mib, 'small-sync.seconds': seconds }
  const outer = new Teardown()
  const base = await mkdtemp(join(tmpdir(), 'darkfs-bench-small-sync-'))
  outer.add(async () => { await rm(base, { recursive: true, force: true }) })
  try {
    await chmod(base, 0o755)
    const work: Work = { mib, seconds, fioOverhead: 0, smallOverhead: 0, tarball: undefined, gitSource: await makeGitSource(base), deadline: ms => ms }
    for (const n of HOSTS) {
      const t = new Teardown()
      try {
        const hosts = await startCluster(t, n, { transport: 'tcp' })
        await until('full mesh', () => hosts.every(h => h.host.peers().length === n - 1), 60_000)
        const dir = await mkdtemp(join(base, `mnt-${n}-`))
        const m = await mountHost(hosts[0], dir)
        t.add(async () => { await m.unmount() })
        const target: Target = { dir, readDir: dir, cold: async () => {} }
        // the file the random writes go to, written and placed before the clock starts
        await sh('fio', ['--name=prep', `--filename=${join(dir, FIO_FILE)}`, '--ioengine=psync', `--size=${mib}M`, '--rw=write', '--bs=1M', '--end_fsync=1'], { timeoutMs: 600_000 })
        await until('the file is placed', () => hosts[0].network.pending.size === 0, 600_000)
        for (const key of ['randwrite-fsync16.iops', 'sqlite-delete.s', 'git-clone.s']) {
          const wl = WORKLOADS.find(w => w.key === key)!
          const traffic = hosts.map(h => h.host.traffic())
          let folds = 0
          const stops = hosts.map(h => onEachOp(h.tree, (op, local) => { if (local && op.body.type === 'fold') folds++ }))
          const cpu = process.cpuUsage()
          const v = await wl.run(target, work)
          const used = process.cpuUsage(cpu)
          for (const stop of stops) stop()
          figures[`small-sync.${key}.darkfs-${n}.folds`] = folds
          figures[`small-sync.${key}.darkfs-${n}`] = v
          if (n > 1) {
            figures[`small-sync.${key}.darkfs-${n}.gossip.MiB`] = sent(hosts, traffic, 'meshsub') / 2 ** 20
            figures[`small-sync.${key}.darkfs-${n}.swarm.MiB`] = sent(hosts, traffic, 'swarm') / 2 ** 20
          }
          figures[`small-sync.${key}.darkfs-${n}.cpu.s`] = (used.user + used.system) / 1e6
          process.stdout.write(`  small-sync: ${key} on ${n} host(s) = ${v.toFixed(2)}\n`)
        }
      } finally {
        await t.run()
      }
    }
  } finally {
    await outer.run()
  }
  // the ratios issue 15 is about: six hosts against one, in this run
  figures['small-sync.randwrite-fsync16.ratio'] = (figures['small-sync.randwrite-fsync16.iops.darkfs-1'] as number) / (figures['small-sync.randwrite-fsync16.iops.darkfs-6'] as number)
  figures['small-sync.sqlite-delete.ratio'] = (figures['small-sync.sqlite-delete.s.darkfs-6'] as number) / (figures['small-sync.sqlite-delete.s.darkfs-1'] as number)
  figures['small-sync.git-clone.ratio'] = (figures['small-sync.git-clone.s.darkfs-6'] as number) / (figures['small-sync.git-clone.s.darkfs-1'] as number)
  return figures
}
