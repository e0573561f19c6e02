// The mount benchmark (scripts/bench/mount.ts's workloads: sequential 1 MiB write + fsync and
// read, random 4 KiB reads and writes + fsync, 5,000 small files created / listed / deleted,
// serially and by 8 writers at once) on one host of a six-host cluster on loopback TCP (in one
// process: pnet, noise, yamux, kad-dht, swarm), so chunks are erasure-coded k=4, m=2 and
// fsync waits for placement on the peers. Each figure sits beside the local disk's from the
// same run. A second host's mount measures close-to-open: a file closed on one mount, read
// until its new bytes show on the other. DARKFS_BENCH_MOUNT_CLUSTER_MIB sets the sequential
// file size (default 64; 1024 for the 1 GiB figure), DARKFS_BENCH_MOUNT_CLUSTER_FILES
// the small-file count (default 500: six hosts in one process on two cores commit slowly).
import { mkdtemp, rm, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mount } from '../../fuse/index.ts'
import type { Mount, MountOptions } from '../../fuse/index.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'
import { io } from './mount.ts'

/** Hosts in the cluster: six, so new chunks get k = 4, m = 2. */
const HOSTS = 6
/** Default size of the sequential test file, MiB. */
const DEFAULT_MIB = 64
/** Default number of small files. */
const DEFAULT_FILES = 500
/** Close-to-open rounds. */
const C2O_ROUNDS = 20

const exec = promisify(execFile)
const here = dirname(fileURLToPath(import.meta.url))

/** Mount a host's Volume, dropping kernel cache entries that peers' ops change (as `darkfs up --mount` does). */
export async function mountHost (host: ClusterHost, dir: string, opts: MountOptions = {}): Promise<Mount> {
  const m = await mount(host.volume, dir, opts)
  onEachOp(host.tree, (op, local) => {
    if (local) return
    for (const path of host.volume.changedPaths(op.body)) m.invalidate(path)
  })
  return m
}

export async function run (): Promise<Record<string, number | string>> {
  const mib = Number(process.env.DARKFS_BENCH_MOUNT_CLUSTER_MIB ?? DEFAULT_MIB)
  const files = Number(process.env.DARKFS_BENCH_MOUNT_CLUSTER_FILES ?? DEFAULT_FILES)
  const t = new Teardown()
  const figures: Record<string, number | string> = {}
  const base = await mkdtemp(join(tmpdir(), 'darkfs-bench-mount-cluster-'))
  t.add(async () => { await rm(base, { recursive: true, force: true }) })
  try {
    await chmod(base, 0o755)
    const local = await mkdtemp(join(base, 'local-'))
    for (const [k, v] of Object.entries(await io(local, mib, files))) figures[`mount-cluster.local.${k}`] = v

    const hosts = await startCluster(t, HOSTS, { transport: 'tcp' })
    await until('full mesh', () => hosts.every(h => h.host.peers().length === HOSTS - 1), 30_000)
    const host = hosts[0]
    const { k, m } = host.network.params()
    figures['mount-cluster.hosts'] = HOSTS
    figures['mount-cluster.k'] = k
    figures['mount-cluster.m'] = m
    const dir = await mkdtemp(join(base, 'mnt-'))
    const mounted = await mountHost(host, dir)
    t.add(async () => { await mounted.unmount() })
    for (const [key, v] of Object.entries(await io(dir, mib, files))) figures[`mount-cluster.mount.${key}`] = v
    figures['mount-cluster.seq.MiB'] = mib
    figures['mount-cluster.files'] = files

    const other = await mkdtemp(join(base, 'mnt-other-'))
    const mountedOther = await mountHost(hosts[HOSTS - 1], other)
    t.add(async () => { await mountedOther.unmount() })
    const { stdout } = await exec(process.execPath, [join(here, '_mount-c2o.ts'), dir, other, String(C2O_ROUNDS)])
    for (const [key, v] of Object.entries(JSON.parse(stdout))) figures[`mount-cluster.${key}`] = v as number
  } finally {
    await t.run()
  }
  return figures
}
