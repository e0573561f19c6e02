// darkfs on a real Tinc mesh (DESIGN.md §4, issue 7): real `darkfs up` processes inside the
// network namespaces of scripts/mesh, listening on their VPN address only, data dirs in a temp
// dir: the harness of scripts/bench/mesh.ts (figures, written to bench/mesh.json:
//   writerAmplification  bytes the writer sent on its VPN interface (dk0) / bytes written,
//                        writer on a 1 Mbit/s / 30 ms uplink, 5 peers at 20 Mbit/s, 8 MiB, 4+2
//   pinAmplification     (not measured here; pins belong to issue 5)
//   multiSourceSpeedup   a reader's download rate / one holder's 2 Mbit/s uplink cap, with the
//                        holders capped by the mesh's shaping
//   capRatio             measured upload rate of a host run with --max-upload 1mbit, while it
//                        uploads (placement of a file it wrote) / its cap
// plus idle traffic (bytes/s on dk0 of an idle host over a minute, data vs. the rest). Needs
// root. The helpers are shared with test/mesh/darkfs-mesh.test.ts.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ControlClient } from '../node/cli/index.ts'
import { meshDown, meshUp } from './mesh.ts'
import type { Mesh } from './mesh.ts'
import { PROTOCOL as SWARM_PROTOCOL } from '../swarm/index.ts'

export const DARKFS = fileURLToPath(new URL('../bin/darkfs', import.meta.url))
/** TCP port every darkfs host listens on, on its VPN address. */
export const DARKFS_PORT = 4001
/** Longest wait for a host to print `ready`, or for the membership to be complete. */
export const START_TIMEOUT_MS = 60_000
/** Longest wait for a written file to be reported redundant everywhere. */
export const PLACE_TIMEOUT_MS = 300_000

export interface MeshHostProc { name: string, dir: string, child: ChildProcess, address: string, client: ControlClient, stderr: () => string }

export interface DarkfsMesh {
  mesh: Mesh
  hosts: MeshHostProc[]
  root: string
  host: (name: string) => MeshHostProc
  /** Runs `darkfs --data DIR ARGS` for one host (the CLI talks to its unix socket). */
  cli: (name: string, args: string[]) => Promise<{ code: number, stdout: Buffer, stderr: string }>
  /** Bytes sent and received on a host's interface (dk0: VPN payload, ul0: Tinc on the wire). */
  counters: (name: string, dev?: 'dk0' | 'ul0') => Promise<{ tx: number, rx: number }>
  down: () => Promise<void>
}

export interface DarkfsMeshOptions {
  /** Mesh (namespace) name, unique per process. */
  name: string
  shape?: Record<string, string>
  /** Extra `darkfs up` flags per host. */
  flags?: Record<string, string[]>
}

async function runDarkfs (args: string[]): Promise<{ code: number, stdout: Buffer, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(DARKFS, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('error', reject)
    child.on('exit', code => { resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: err }) })
  })
}

/** Collects a child's stdout lines; wait(re) resolves with the first matching line, past or future. */
function lines (child: ChildProcess, stderr: () => string): (re: RegExp) => Promise<string> {
  const seen: string[] = []
  let buf = ''
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString()
    const parts = buf.split('\n')
    buf = parts.pop()!
    seen.push(...parts)
  })
  return async (re) => {
    const end = Date.now() + START_TIMEOUT_MS
    for (;;) {
      const line = seen.find(l => re.test(l))
      if (line !== undefined) return line
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`darkfs up exited (${String(child.exitCode)}): ${stderr()}`)
      if (Date.now() > end) throw new Error(`no ${re} within ${START_TIMEOUT_MS} ms: ${seen.join(' | ')} ${stderr()}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}

/** Poll until fn() holds (throws naming `what` after timeoutMs). */
export async function until (what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  throw new Error(`never happened within ${timeoutMs} ms: ${what}`)
}

/** Builds an n-host mesh and runs `darkfs up` on every host (h1 first, the others join it). */
export async function startDarkfsMesh (n: number, opts: DarkfsMeshOptions): Promise<DarkfsMesh> {
  const root = await mkdtemp(join(tmpdir(), `darkfs-mesh-${opts.name}-`))
  const stateDir = join(root, 'mesh')
  const hosts: MeshHostProc[] = []
  let mesh: Mesh | undefined
  const down = async (): Promise<void> => {
    for (const h of hosts) {
      if (h.child.exitCode === null && h.child.signalCode === null) {
        const exited = new Promise(resolve => h.child.once('exit', resolve))
        h.child.kill('SIGTERM')
        await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 5000))])
        if (h.child.exitCode === null && h.child.signalCode === null) { h.child.kill('SIGKILL'); await exited }
      }
    }
    await meshDown({ name: opts.name, dir: stateDir }).catch(() => {})
    await rm(root, { recursive: true, force: true })
  }
  try {
    mesh = await meshUp(n, { name: opts.name, dir: stateDir, shape: opts.shape })
    let join_: string | undefined
    for (let i = 1; i <= n; i++) {
      const name = `h${i}`
      const dir = join(root, name)
      await mkdir(dir)
      const init = i === 1 ? ['--new-network'] : ['--network-key', join(root, 'h1', 'network.key')]
      const r = await runDarkfs(['init', '--data', dir, ...init])
      if (r.code !== 0) throw new Error(`darkfs init: ${r.stderr}`)
      const args = ['up', '--data', dir, '--listen', `/ip4/${mesh.host(name).address}/tcp/${DARKFS_PORT}`, ...(join_ !== undefined ? ['--join', join_] : []), ...(opts.flags?.[name] ?? [])]
      const child = mesh.spawn(name, DARKFS, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      child.stderr!.on('data', (d: Buffer) => { err += d.toString(); if (err.length > 100_000) err = err.slice(-50_000) })
      const h: MeshHostProc = { name, dir, child, address: '', client: new ControlClient(dir), stderr: () => err }
      hosts.push(h)
      const wait = lines(child, h.stderr)
      h.address = (await wait(/^listening /)).slice('listening '.length)
      await wait(/^ready$/)
      join_ ??= h.address
    }
    const m = mesh
    const dm: DarkfsMesh = {
      mesh: m,
      hosts,
      root,
      host: (name) => hosts.find(h => h.name === name)!,
      cli: async (name, args) => await runDarkfs(['--data', dm.host(name).dir, ...args]),
      counters: async (name, dev = 'dk0') => {
        const read = async (what: string): Promise<number> => Number((await m.exec(name, 'cat', [`/sys/class/net/${dev}/statistics/${what}`])).stdout.trim())
        return { tx: await read('tx_bytes'), rx: await read('rx_bytes') }
      },
      down
    }
    await until('every host sees every other', async () => {
      for (const h of hosts) if ((await h.client.get('/v1/status')).peers !== n - 1) return false
      return true
    }, START_TIMEOUT_MS)
    return dm
  } catch (err) {
    await down()
    throw err
  }
}

/** Writes `bytes` random bytes to PATH on host `name`; resolves with the local file. */
export async function put (dm: DarkfsMesh, name: string, path: string, bytes: number): Promise<Buffer> {
  const data = randomBytes(bytes)
  const local = join(dm.root, `put-${name}-${path.replace(/\W/g, '_')}`)
  await writeFile(local, data)
  const r = await dm.cli(name, ['put', local, path])
  if (r.code !== 0) throw new Error(`darkfs put: ${r.stderr}`)
  return data
}

/** Waits until host `name` reports every chunk redundant. */
export async function redundant (dm: DarkfsMesh, name: string): Promise<void> {
  await until(`${name}: every chunk redundant`, async () => {
    // asks the holders now (status answers from its last observations otherwise: keeper/status.ts)
    const c = (await dm.host(name).client.get('/v1/status?survey=1')).chunks
    return c.total > 0 && c.redundant === c.total
  }, PLACE_TIMEOUT_MS)
}

/** What a host's darkfs sent: its swarm's data, each protocol, and its sockets (node/traffic.ts). */
export interface Sent { swarm: number, protocols: Record<string, number>, socket: number }

export async function sent (dm: DarkfsMesh, name: string): Promise<Sent> {
  const t = await dm.host(name).client.get('/v1/traffic')
  const protocols = Object.fromEntries(Object.entries(t.host.protocols as Record<string, { sent: number }>).map(([p, v]) => [p, v.sent]))
  return { swarm: t.swarm.bytesSent, protocols, socket: t.host.wire.sent }
}

/** Bytes stored on a host (status without the chunk survey). */
export async function stored (dm: DarkfsMesh, name: string): Promise<number> {
  return (await dm.host(name).client.get('/v1/status?chunks=0')).bytesStored
}
