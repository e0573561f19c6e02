// Cold sequential read through the FUSE mount (issue 15 item 4): a file written on one host,
// read whole by `dd bs=1M` (in a child process: this one serves the mount) with the reading
// host's chunk cache dropped, on one host alone and on another host of a six-host cluster on
// loopback TCP (in one process, k=4, m=2: the reader holds at most a share of the fragments).
// Beside them, the same read through the Volume (no FUSE), and the local disk's. Then the same on
// six `darkfs up` processes (a put on one, `dd` through the mount of another): each host with its
// own event loop and crypto, as on a real network. DARKFS_BENCH_READ_MIB sets the file size
// (default 64).
import { mkdtemp, rm, chmod, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mount } from '../../fuse/index.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { darkfs, upNetwork } from '../../harness/proc.ts'
import { MiB, randomPieces, readThrough } from './_stream.ts'

const exec = promisify(execFile)
/** Hosts of the cluster run: six, so chunks are k = 4, m = 2. */
const HOSTS = 6
const DEFAULT_MIB = 64

/** MiB/s of a cold `dd` of `file` (page cache dropped first for the local disk). */
async function dd (file: string, mib: number): Promise<number> {
  const t0 = performance.now()
  await exec('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'iflag=fullblock'])
  return mib / ((performance.now() - t0) / 1000)
}

/** A mount of `host` at a fresh dir under `base`, unmounted by `t`. */
async function mountOn (t: Teardown, host: ClusterHost, base: string): Promise<string> {
  const dir = await mkdtemp(join(base, 'mnt-'))
  const m = await mount(host.volume, dir)
  t.add(async () => { await m.unmount() })
  return dir
}

export async function run (): Promise<Record<string, number>> {
  const mib = Number(process.env.DARKFS_BENCH_READ_MIB ?? DEFAULT_MIB)
  const figures: Record<string, number> = { 'read-cold.MiB': mib }
  const base = await mkdtemp(join(tmpdir(), 'darkfs-bench-read-'))
  try {
    await chmod(base, 0o755)
    // the local disk (its page cache dropped for this file: a fresh file written with O_DIRECT is not needed here)
    const local = join(base, 'local.bin')
    // every chunk distinct (randomPieces reuses one buffer: copied as it comes); equal chunks would be fetched once
    const pieces: Buffer[] = []
    for (const p of randomPieces(mib)) pieces.push(Buffer.from(p))
    await writeFile(local, Buffer.concat(pieces))
    await exec('sh', ['-c', `sync; echo 1 > /proc/sys/vm/drop_caches`]).catch(() => {})
    figures['read-cold.local.MiBps'] = await dd(local, mib)

    for (const n of [1, HOSTS]) {
      const t = new Teardown()
      try {
        const hosts = await startCluster(t, n, { transport: 'tcp' })
        await until('full mesh', () => hosts.every(h => h.host.peers().length === n - 1), 30_000)
        const writer = hosts[0]
        await writer.volume.replaceFile('/big.bin', randomPieces(mib), { wait: 'safe' })
        const reader = hosts[n - 1]
        const viaVolume = hosts[Math.max(0, n - 2)]
        for (const h of [reader, viaVolume]) {
          await until('the reader sees the file', async () => { try { await h.volume.stat('/big.bin'); return true } catch { return false } }, 30_000)
        }
        const name = n === 1 ? 'host1' : `hosts${n}.other`
        const dir = await mountOn(t, reader, base)
        reader.volume.chunks.dropCache()
        figures[`read-cold.${name}.mount.MiBps`] = await dd(join(dir, 'big.bin'), mib)
        viaVolume.volume.chunks.dropCache()
        const reads0 = viaVolume.volume.chunks.readCounters()
        const received0 = viaVolume.swarm.stats().bytesReceived
        const t0 = performance.now()
        const got = await readThrough(viaVolume.volume, '/big.bin')
        if (got !== mib * MiB) throw new Error(`read ${got} of ${mib * MiB} bytes`)
        figures[`read-cold.${name}.volume.MiBps`] = mib / ((performance.now() - t0) / 1000)
        if (n > 1) {
          // of the chunks read whole, the share decoded through a parity fragment, and through one
          // fetched from a peer (a data fragment missing or slow: the rest used one held here);
          // bytes the reader's swarm took in per byte read (0.75 at 4+2 with one fragment held)
          const reads = viaVolume.volume.chunks.readCounters()
          const coded = Math.max(1, reads.coded - reads0.coded)
          figures[`read-cold.${name}.volume.decodedShare`] = (reads.rebuilt - reads0.rebuilt) / coded
          figures[`read-cold.${name}.volume.parityFetchedShare`] = (reads.parityFetched - reads0.parityFetched) / coded
          figures[`read-cold.${name}.volume.receivedPerByte`] = (viaVolume.swarm.stats().bytesReceived - received0) / (mib * MiB)
        }
        if (n > 1) figures[`read-cold.${name}.k`] = writer.volume.chunks.params().k
      } finally {
        await t.run()
      }
    }
    figures[`read-cold.procs${HOSTS}.other.mount.MiBps`] = await processes(base, local, mib)
  } finally {
    await rm(base, { recursive: true, force: true })
  }
  return figures
}

/** MiB/s of a cold `dd` through the mount of one of HOSTS `darkfs up` processes, of a file put on another. */
async function processes (base: string, local: string, mib: number): Promise<number> {
  const t = new Teardown()
  try {
    const root = await mkdtemp(join(base, 'procs-'))
    const dir = await mkdtemp(join(base, 'mnt-procs-'))
    const { dirs, hosts } = await upNetwork(t, root, HOSTS, [], i => i === HOSTS - 1 ? ['--mount', dir] : [])
    // SIGTERM unmounts (the teardown's SIGKILL would leave the mount behind)
    t.add(async () => { await hosts[HOSTS - 1].stop('SIGTERM') })
    const ok = async (args: string[]): Promise<string> => {
      const r = await darkfs(args, { timeoutMs: 600_000 })
      if (r.code !== 0) throw new Error(`darkfs ${args.join(' ')}: ${r.stderr}`)
      return r.stdout
    }
    await until('full mesh', async () => {
      for (const d of dirs) if (JSON.parse(await ok(['--data', d, 'peers', '--json'])).length !== HOSTS - 1) return false
      return true
    }, 60_000)
    await ok(['--data', dirs[0], 'put', local, '/big.bin'])
    await until('the reader sees the file', async () => (await darkfs(['--data', dirs[HOSTS - 1], 'stat', '/big.bin'])).code === 0, 60_000)
    return await dd(join(dir, 'big.bin'), mib)
  } finally {
    await t.run()
  }
}
