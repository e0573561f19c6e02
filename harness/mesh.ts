// The test network from a test or a benchmark: `meshUp(n)` runs `scripts/mesh up` (N hosts in
// network namespaces joined by a Tinc VPN, optionally with shaped uplinks) and returns what it
// built; `mesh.exec`/`mesh.spawn` run programs inside a host's namespace; `mesh.down()` removes
// it all. Needs root. Every child process is started asynchronously (never execFileSync), so
// the helper is safe in a process that also serves a FUSE mount.
//
//   const mesh = await meshUp(3, { shape: { h1: '1mbit/30ms' } })
//   after(() => mesh.down())
//   await mesh.exec('h1', 'ping', ['-c1', mesh.host('h2').address])

import { execFile, spawn } from 'node:child_process'
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { AbortOptions } from '@libp2p/interface'

/** The mesh script this helper drives. */
export const MESH_SCRIPT = fileURLToPath(new URL('../scripts/mesh', import.meta.url))

/** Largest stdout/stderr a command run through `exec` may produce (bytes). */
export const MAX_EXEC_OUTPUT_BYTES = 16 * 1024 * 1024

/** One host of the mesh, as recorded in mesh.json. */
export interface MeshHost {
  /** `h1`..`hN` */
  name: string
  /** its network namespace, e.g. `darkfs-h1` */
  netns: string
  /** its VPN address (on the tun device `dk0`), e.g. `10.77.0.1` */
  address: string
  /** its underlay address (on `ul0`, the veth to the hub bridge), e.g. `10.231.0.1` */
  underlay: string
  /** uplink rate cap in tc units (`1mbit`), or null when unshaped */
  rate: string | null
  /** one-way delay added to the host's uplink, in ms (0: none) */
  delayMs: number
}

/** The state file `mesh.json` that `scripts/mesh up` writes to its state dir. */
export interface MeshState {
  name: string
  dir: string
  hub: string
  underlaySubnet: string
  vpnSubnet: string
  /** the tun device carrying the VPN in every host (`dk0`) */
  vpnInterface: string
  /** the veth carrying the host's (Tinc-encrypted) traffic to the hub (`ul0`): count bytes on the wire here */
  underlayInterface: string
  hosts: MeshHost[]
}

export interface MeshSelector {
  /** mesh name (namespace prefix), default `darkfs` ($DARKFS_MESH_NAME) */
  name?: string
  /** state dir, default `/run/<name>-mesh` ($DARKFS_MESH_DIR) */
  dir?: string
}

export interface MeshUpOptions extends MeshSelector, AbortOptions {
  /** uplink shaping per host: `{ h1: '1mbit/30ms', h2: '512kbit', h3: '/20ms' }` */
  shape?: Record<string, string>
}

export interface ExecResult { stdout: string, stderr: string }

export interface Mesh extends MeshState {
  /** The stdout `up` printed: one `hX <netns> <vpn address>` line per host. */
  readonly printed: string
  /** The host called `name` (`h1`...); throws if there is none. */
  host: (name: string) => MeshHost
  /** Runs a command to completion inside a host's namespace; rejects on a non-zero exit. */
  exec: (host: string, command: string, args?: string[], options?: AbortOptions) => Promise<ExecResult>
  /** Starts a long-running command inside a host's namespace (the child's pid is the command's). */
  spawn: (host: string, command: string, args?: string[], options?: SpawnOptions) => ChildProcess
  /** Changes a live host's uplink shaping (`'1mbit/30ms'`, `'none'`). */
  shape: (host: string, spec: string, options?: AbortOptions) => Promise<void>
  /** Removes the mesh: namespaces, every process inside them, the state dir. Idempotent. */
  down: (options?: AbortOptions) => Promise<void>
}

function scriptEnv (selector: MeshSelector): NodeJS.ProcessEnv {
  const env = { ...process.env }
  if (selector.name !== undefined) env.DARKFS_MESH_NAME = selector.name
  if (selector.dir !== undefined) env.DARKFS_MESH_DIR = selector.dir
  return env
}

/** Runs a program to completion; rejects with its stderr when it exits non-zero. */
export async function run (command: string, args: string[], options: AbortOptions & { env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
  return await new Promise((resolve, reject) => {
    execFile(command, args, { env: options.env, signal: options.signal, maxBuffer: MAX_EXEC_OUTPUT_BYTES, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err != null) {
          reject(Object.assign(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || err.message}`), { cause: err, stdout, stderr }))
        } else {
          resolve({ stdout, stderr })
        }
      })
  })
}

async function script (args: string[], selector: MeshSelector, options: AbortOptions = {}): Promise<ExecResult> {
  return await run(MESH_SCRIPT, args, { env: scriptEnv(selector), signal: options.signal })
}

/** The default state dir of a mesh, as scripts/mesh computes it. */
export function meshDir (selector: MeshSelector = {}): string {
  const name = selector.name ?? process.env.DARKFS_MESH_NAME ?? 'darkfs'
  return selector.dir ?? process.env.DARKFS_MESH_DIR ?? `/run/${name}-mesh`
}

/** Reads mesh.json of a live mesh. */
export async function readMesh (selector: MeshSelector = {}): Promise<MeshState> {
  return JSON.parse(await readFile(`${meshDir(selector)}/mesh.json`, 'utf8'))
}

/** `scripts/mesh down`: removes the mesh (if any). */
export async function meshDown (selector: MeshSelector & AbortOptions = {}): Promise<void> {
  await script(['down'], selector, selector)
}

/** `scripts/mesh up n`: builds the mesh (after removing any earlier one of the same name). */
export async function meshUp (n: number, options: MeshUpOptions = {}): Promise<Mesh> {
  const args = ['up', String(n)]
  for (const [host, spec] of Object.entries(options.shape ?? {})) args.push('--shape', `${host}=${spec}`)
  const { stdout } = await script(args, options, options)
  return await openMesh(options, stdout)
}

/** A handle on a mesh that is already up (e.g. one built from the command line). */
export async function openMesh (selector: MeshSelector = {}, printed = ''): Promise<Mesh> {
  let state = await readMesh(selector)
  const selected: MeshSelector = { name: state.name, dir: state.dir }
  const host = (name: string): MeshHost => {
    const found = state.hosts.find(h => h.name === name)
    if (found === undefined) throw new Error(`no host '${name}' in mesh ${state.name} (hosts: ${state.hosts.map(h => h.name).join(' ')})`)
    return found
  }
  const mesh: Mesh = {
    ...state,
    printed,
    host,
    exec: async (name, command, args = [], options = {}) =>
      await run('ip', ['netns', 'exec', host(name).netns, command, ...args], options),
    spawn: (name, command, args = [], options = {}) =>
      spawn('ip', ['netns', 'exec', host(name).netns, command, ...args], options),
    shape: async (name, spec, options = {}) => {
      await script(['shape', host(name).name, spec], selected, options)
      state = await readMesh(selected)
      Object.assign(mesh, state)
    },
    down: async (options = {}) => { await meshDown({ ...selected, ...options }) }
  }
  return mesh
}
