// GlusterFS on loopback for compare.ts: glusterd (started here when it is not running, and then
// stopped again), one volume at a time on brick dirs under the bench's temp dir, mounted through
// FUSE (`mount -t glusterfs`), everything undone by a Teardown, failures included.
//
// What Debian's glusterfs-server 10.3 does in a container (probed before this was written):
//   - glusterd runs without systemd: `glusterd -p PIDFILE` daemonizes and answers the CLI within
//     a second or two; a single node needs no `peer probe` (the pool is just localhost).
//   - Bricks named 127.0.0.1:/dir or localhost:/dir are refused ("provide a valid hostname/ip
//     other than localhost, 127.0.0.1 or loopback"), even with `force`. The machine's hostname is
//     accepted, also when /etc/hosts maps it to 127.0.0.1: bricks are named by the hostname (or,
//     when it does not resolve, by the first non-loopback IPv4 address).
//   - Several bricks of one disperse or replica set on one server, and bricks on the root file
//     system, need `force`.
//   - The mount may name the server 127.0.0.1 (`mount -t glusterfs 127.0.0.1:/NAME dir`).
//   - `volume stop` asks for confirmation unless the CLI runs with --mode=script.
import { hostname, networkInterfaces } from 'node:os'
import { lookup } from 'node:dns/promises'
import { join } from 'node:path'
import { mkdir, readFile, rm } from 'node:fs/promises'
import type { Teardown } from '../../harness/tmp.ts'
import { ensureTools, missing } from './_tools.ts'
import type { Tool } from './_tools.ts'
import { runCommand, sh } from './_proc.ts'

const TOOLS: Tool[] = [
  { cmd: 'glusterd', pkg: 'glusterfs-server' },
  { cmd: 'gluster', pkg: 'glusterfs-server' },
  { cmd: 'mount.glusterfs', pkg: 'glusterfs-client' }
]
/** Deadline of one gluster CLI call (volume stop takes a few seconds). */
const CLI_TIMEOUT_MS = 120_000
/** How long glusterd may take to answer after it is started. */
const START_TIMEOUT_MS = 60_000

export type GlusterLayout = 'disperse' | 'replica'

export interface GlusterVolume {
  /** Where the volume is mounted. */
  dir: string
  /** Unmount and mount again: the client's caches (io-cache, read-ahead, md-cache) start empty. */
  remount: () => Promise<void>
}

const cli = async (args: string[]): Promise<string> => (await sh('gluster', ['--mode=script', ...args], { timeoutMs: CLI_TIMEOUT_MS })).stdout

/**
 * GlusterFS ready to make volumes: its tools (installed when DARKFS_BENCH_GLUSTER=install) and a
 * running glusterd (started when none runs; `t` stops it again). A reason instead when the
 * bench should go without it.
 */
export async function glusterReady (t: Teardown, base: string): Promise<{ ok: true } | { ok: false, reason: string }> {
  const mode = process.env.DARKFS_BENCH_GLUSTER
  if (mode === 'off') return { ok: false, reason: 'DARKFS_BENCH_GLUSTER=off' }
  const lacking = await missing(TOOLS)
  if (lacking.length > 0) {
    if (mode !== 'install') return { ok: false, reason: `${lacking.map(x => x.cmd).join(', ')} not installed (DARKFS_BENCH_GLUSTER=install installs glusterfs-server with apt)` }
    try {
      await ensureTools(TOOLS, 'compare')
    } catch (err: any) {
      return { ok: false, reason: String(err?.message ?? err) }
    }
  }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'GlusterFS volumes and mounts need root' }
  if ((await runCommand('pidof', ['glusterd'], { timeoutMs: 10_000 })).code !== 0) {
    const pidfile = join(base, 'glusterd.pid')
    try {
      await sh('glusterd', ['-p', pidfile], { timeoutMs: START_TIMEOUT_MS })
    } catch (err: any) {
      return { ok: false, reason: `glusterd would not start: ${String(err?.message ?? err)}` }
    }
    t.add(async () => { await stopGlusterd(pidfile) })
  }
  const end = Date.now() + START_TIMEOUT_MS
  for (;;) {
    const r = await runCommand('gluster', ['--mode=script', 'volume', 'list'], { timeoutMs: CLI_TIMEOUT_MS })
    if (r.code === 0) return { ok: true }
    if (Date.now() > end) return { ok: false, reason: `glusterd does not answer: ${r.stderr.trim() || r.stdout.trim()}` }
    await new Promise(resolve => setTimeout(resolve, 500))
  }
}

/** Stop the glusterd this bench started (its pid file), and wait until it is gone. */
async function stopGlusterd (pidfile: string): Promise<void> {
  const pid = Number((await readFile(pidfile, 'utf8')).trim())
  if (!Number.isInteger(pid) || pid <= 1) return
  process.kill(pid, 'SIGTERM')
  const end = Date.now() + 30_000
  while (Date.now() < end) {
    try {
      process.kill(pid, 0)
    } catch {
      return // it is gone
    }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  process.kill(pid, 'SIGKILL')
}

/** The name bricks are given: glusterd refuses loopback names, takes the hostname even when it maps to 127.0.0.1. */
async function brickHost (): Promise<string> {
  try {
    await lookup(hostname())
    return hostname()
  } catch {
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
    }
    throw new Error(`no brick address: the hostname ${hostname()} does not resolve and there is no non-loopback IPv4 address`)
  }
}

/**
 * A started, mounted volume `name` of six bricks (disperse 6 redundancy 2: 4+2) or three
 * (replica 3) under `base`; `t` unmounts, stops and deletes it and removes its bricks.
 */
export async function glusterVolume (t: Teardown, base: string, name: string, layout: GlusterLayout): Promise<GlusterVolume> {
  const host = await brickHost()
  const count = layout === 'disperse' ? 6 : 3
  const bricks: string[] = []
  for (let i = 1; i <= count; i++) {
    const b = join(base, `${name}-brick${i}`)
    await mkdir(b, { recursive: true })
    bricks.push(b)
  }
  t.add(async () => { for (const b of bricks) await rm(b, { recursive: true, force: true }) })
  const shape = layout === 'disperse' ? ['disperse', '6', 'redundancy', '2'] : ['replica', '3']
  await cli(['volume', 'create', name, ...shape, ...bricks.map(b => `${host}:${b}`), 'force'])
  t.add(async () => { await cli(['volume', 'delete', name]) })
  await cli(['volume', 'start', name])
  t.add(async () => { await cli(['volume', 'stop', name, 'force']) })
  const dir = join(base, `${name}-mnt`)
  await mkdir(dir, { recursive: true })
  const mountIt = async (): Promise<void> => { await sh('mount', ['-t', 'glusterfs', `127.0.0.1:/${name}`, dir], { timeoutMs: CLI_TIMEOUT_MS }) }
  const unmountIt = async (): Promise<void> => {
    // a mount still busy (a killed workload's process) is detached lazily
    if ((await runCommand('umount', [dir], { timeoutMs: CLI_TIMEOUT_MS })).code !== 0) await sh('umount', ['-l', dir], { timeoutMs: CLI_TIMEOUT_MS })
  }
  await mountIt()
  let mounted = true
  t.add(async () => { if (mounted) await unmountIt() })
  return {
    dir,
    remount: async () => {
      await unmountIt()
      mounted = false
      await mountIt()
      mounted = true
    }
  }
}
