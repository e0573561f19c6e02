// darkfs on a real Tinc mesh (DESIGN.md §4, issue 7): real `darkfs up` processes inside the
// network namespaces of scripts/mesh, listening on their VPN address only, data dirs in a temp
// dir. Figures, written to bench/mesh.json by `node scripts/bench/mesh.ts`:
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
import { ControlClient } from '../../node/cli/client.ts'
import { meshDown, meshUp } from '../../test/helpers/mesh.ts'
import type { Mesh } from '../../test/helpers/mesh.ts'
import { PROTOCOL as SWARM_PROTOCOL } from '../../swarm/index.ts'

export const DARKFS = fileURLToPath(new URL('../../bin/darkfs', import.meta.url))
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
    const c = (await dm.host(name).client.get('/v1/status')).chunks
    return c.total > 0 && c.redundant === c.total
  }, PLACE_TIMEOUT_MS)
}

/** Bits per second in tc units, as bytes per second. */
const mbit = (n: number): number => n * 1e6 / 8
/** Bytes written in the amplification and pin runs (8 chunks of 4+2 on six hosts). */
const WRITE_BYTES = 8 << 20
/** Hosts that read the capped host's popular file at once. */
const POPULAR_READERS = 3
/** Idle traffic window (s). */
const IDLE_S = 60

/** Progress on stderr (the figures go to stdout and bench/mesh.json). */
function log (msg: string): void {
  process.stderr.write(`[bench:mesh ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

/** Runs fn; on failure, adds the tail of every host's stderr to the error. */
async function explained<T> (dm: DarkfsMesh, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err: any) {
    const tails = dm.hosts.map(h => `--- ${h.name} (exit ${String(h.child.exitCode ?? h.child.signalCode)})\n${h.stderr().slice(-2000)}`).join('\n')
    throw new Error(`${err.message}\n${tails}`)
  }
}

/** What a host's darkfs sent: its swarm's data, each protocol, and its sockets (node/traffic.ts). */
export interface Sent { swarm: number, protocols: Record<string, number>, socket: number }

export async function sent (dm: DarkfsMesh, name: string): Promise<Sent> {
  const t = await dm.host(name).client.call('traffic')
  const protocols = Object.fromEntries(Object.entries(t.host.protocols as Record<string, { sent: number }>).map(([p, v]) => [p, v.sent]))
  return { swarm: t.swarm.bytesSent, protocols, socket: t.host.wire.sent }
}

/**
 * Where a writer's upload went, per byte written: its swarm's data (blocks and their
 * messages), the other protocols together (DHT, ping, identify, tree sync, custody, place),
 * and what its sockets carried (the above with yamux, Noise and pnet).
 */
function breakdown (out: Record<string, number | string>, prefix: string, a: Sent, b: Sent, bytes: number): void {
  let control = 0
  for (const [p, n] of Object.entries(b.protocols)) if (p !== SWARM_PROTOCOL) control += n - (a.protocols[p] ?? 0)
  out[`${prefix}.data.amplification`] = round((b.swarm - a.swarm) / bytes)
  out[`${prefix}.control.bytes`] = control
  out[`${prefix}.socket.amplification`] = round((b.socket - a.socket) / bytes)
}

/** Bytes stored on a host (status without the chunk survey). */
export async function stored (dm: DarkfsMesh, name: string): Promise<number> {
  return (await dm.host(name).client.get('/v1/status?chunks=0')).bytesStored
}

export async function run (): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {}
  const tag = `dkb${process.pid}`
  // writer amplification, pins, multi-source read and idle traffic on one mesh: h1 on a thin uplink
  {
    log('mesh 1: 6 hosts, h1 1mbit/30ms, others 20mbit')
    // h1 is told its uplink (--uplink): peers then leave the forwarding to others, and its own
    // swarm traffic is paced below it (node/uplink.ts UPLINK_PACING)
    const dm = await startDarkfsMesh(6, { name: tag, shape: { h1: '1mbit/30ms', h2: '20mbit', h3: '20mbit', h4: '20mbit', h5: '20mbit', h6: '20mbit' }, flags: { h1: ['--uplink', '1mbit'] } })
    try {
      await explained(dm, async () => {
        // 1. the thin-uplink writer writes 8 MiB (4+2)
        const before = { dk0: await dm.counters('h1'), ul0: await dm.counters('h1', 'ul0'), traffic: await sent(dm, 'h1') }
        let t0 = performance.now()
        await put(dm, 'h1', '/eight.bin', WRITE_BYTES)
        out['writer.putReturned.s'] = round((performance.now() - t0) / 1000)
        await redundant(dm, 'h1')
        out['writer.redundantAfter.s'] = round((performance.now() - t0) / 1000)
        const after = { dk0: await dm.counters('h1'), ul0: await dm.counters('h1', 'ul0') }
        out.writerAmplification = round((after.dk0.tx - before.dk0.tx) / WRITE_BYTES)
        out['writer.wire.amplification'] = round((after.ul0.tx - before.ul0.tx) / WRITE_BYTES)
        breakdown(out, 'writer', before.traffic, await sent(dm, 'h1'), WRITE_BYTES)
        log(`writer: ${out.writerAmplification}x in ${out['writer.redundantAfter.s']} s`)

        // 2. pins: h2..h6 pin /pinned, h1 writes 8 MiB in it
        const pinners = ['h2', 'h3', 'h4', 'h5', 'h6']
        const mk = await dm.cli('h1', ['mkdir', '/pinned'])
        if (mk.code !== 0) throw new Error(`mkdir: ${mk.stderr}`)
        for (const h of pinners) {
          await until(`${h} sees /pinned`, async () => (await dm.cli(h, ['stat', '/pinned'])).code === 0, START_TIMEOUT_MS)
          const r = await dm.cli(h, ['pin', '/pinned'])
          if (r.code !== 0) throw new Error(`pin on ${h}: ${r.stderr}`)
        }
        // the pins are xattr ops: let them reach the writer before it writes
        await new Promise(resolve => setTimeout(resolve, 3000))
        const base = new Map<string, number>()
        for (const h of pinners) base.set(h, await stored(dm, h))
        const pb = await dm.counters('h1')
        const pt = await sent(dm, 'h1')
        t0 = performance.now()
        await put(dm, 'h1', '/pinned/p.bin', WRITE_BYTES)
        await until('every pinning host holds /pinned/p.bin', async () => {
          for (const h of pinners) if (await stored(dm, h) - base.get(h)! < WRITE_BYTES) return false
          return true
        }, PLACE_TIMEOUT_MS)
        out['pin.allPinnersHold.s'] = round((performance.now() - t0) / 1000)
        await redundant(dm, 'h1')
        const pa = await dm.counters('h1')
        out.pinAmplification = round((pa.tx - pb.tx) / WRITE_BYTES)
        breakdown(out, 'pin', pt, await sent(dm, 'h1'), WRITE_BYTES)
        let fetchedByPinners = 0
        for (const h of pinners) {
          const r = await dm.host(h).client.call('pin', { path: '/pinned' })
          if (r.missing !== 0) throw new Error(`${h} misses ${String(r.missing)} chunks under /pinned`)
          fetchedByPinners += r.fetched
        }
        out['pin.chunksFetchedAfter'] = fetchedByPinners
        log(`pins: ${out.pinAmplification}x, all pinners hold it after ${out['pin.allPinnersHold.s']} s`)

        // 3. multi-source read: every other host capped at 2 Mbit/s up, reader h6 at 20 Mbit/s
        for (const h of ['h1', 'h2', 'h3', 'h4', 'h5']) await dm.mesh.shape(h, '2mbit')
        const rx0 = (await dm.counters('h6')).rx
        const s0 = (await dm.host('h6').client.call('traffic')).swarm.peers as Record<string, { received: number }>
        t0 = performance.now()
        const r = await dm.cli('h6', ['cat', '/eight.bin'])
        const rsecs = (performance.now() - t0) / 1000
        if (r.code !== 0 || r.stdout.byteLength !== WRITE_BYTES) throw new Error(`read on h6 failed: ${r.stderr}`)
        const rx = (await dm.counters('h6')).rx - rx0
        const s1 = (await dm.host('h6').client.call('traffic')).swarm.peers as Record<string, { received: number }>
        const sources = Object.entries(s1).filter(([p, v]) => v.received - (s0[p]?.received ?? 0) >= 256 * 1024).length
        out.multiSourceSpeedup = round(rx / rsecs / mbit(2))
        out['read.fileMiBps'] = round(WRITE_BYTES / rsecs / 2 ** 20)
        out['read.sources'] = sources
        log(`read: ${out.multiSourceSpeedup}x one holder's cap from ${sources} sources`)

        // idle traffic over a minute on h3: everything on its VPN interface, and the data part
        const i0 = await dm.counters('h3')
        const d0 = (await dm.host('h3').client.call('traffic')).swarm
        await new Promise(resolve => setTimeout(resolve, IDLE_S * 1000))
        const i1 = await dm.counters('h3')
        const d1 = (await dm.host('h3').client.call('traffic')).swarm
        out['idle.sent.Bps'] = round((i1.tx - i0.tx) / IDLE_S)
        out['idle.received.Bps'] = round((i1.rx - i0.rx) / IDLE_S)
        out['idle.data.sent.Bps'] = round((d1.bytesSent - d0.bytesSent) / IDLE_S)
      })
    } finally {
      await dm.down()
    }
  }
  // 4. upload cap: h2 runs with --max-upload 1mbit. (a) while it places a 4 MiB file it
  // wrote; (b) serving a popular file it pins (it holds every data fragment) to several
  // readers at once. Measured on its VPN interface over 20 s windows.
  {
    log('mesh 2: 6 hosts, h2 --max-upload 1mbit')
    const dm = await startDarkfsMesh(6, { name: tag, flags: { h2: ['--max-upload', '1mbit'] } })
    try {
      await explained(dm, async () => {
        const window = async (): Promise<[number, number]> => {
          const a = await dm.counters('h2')
          const s0 = (await dm.host('h2').client.call('traffic')).swarm.bytesSent
          await new Promise(resolve => setTimeout(resolve, 20_000))
          const b = await dm.counters('h2')
          const s1 = (await dm.host('h2').client.call('traffic')).swarm.bytesSent
          return [(b.tx - a.tx) / 20 / mbit(1), (s1 - s0) / 20 / mbit(1)]
        }
        const mk = await dm.cli('h2', ['mkdir', '/pop'])
        if (mk.code !== 0) throw new Error(`mkdir: ${mk.stderr}`)
        const pin = await dm.cli('h2', ['pin', '/pop'])
        if (pin.code !== 0) throw new Error(`pin: ${pin.stderr}`)
        const writing = put(dm, 'h2', '/pop/capped.bin', 4 << 20)
        await new Promise(resolve => setTimeout(resolve, 2000))
        const [w, ws] = await window()
        out.capRatio = round(w)
        out['cap.write.swarmRatio'] = round(ws)
        await writing
        await redundant(dm, 'h2')
        log(`cap while writing: ${out.capRatio}`)
        // the readers pull from every holder; the capped host is one of them (it holds all data
        // fragments), asked as often as the pull's peer choice gives it work
        const readers = ['h4', 'h5', 'h6'].slice(0, POPULAR_READERS)
        const reads = Promise.all(readers.map(async h => {
          await until(`${h} sees /pop/capped.bin`, async () => (await dm.cli(h, ['stat', '/pop/capped.bin'])).code === 0, START_TIMEOUT_MS)
          for (let i = 0; i < 3; i++) {
            const r = await dm.cli(h, ['cat', '/pop/capped.bin'])
            if (r.code !== 0) throw new Error(`cat on ${h}: ${r.stderr}`)
          }
        }))
        await new Promise(resolve => setTimeout(resolve, 1000))
        const [p, ps] = await window()
        out['cap.popular.ratio'] = round(p)
        out['cap.popular.swarmRatio'] = round(ps)
        await reads
        log(`cap while serving: ${out['cap.popular.ratio']}`)
      })
    } finally {
      await dm.down()
    }
  }
  return out
}

function round (x: number): number {
  return Math.round(x * 1000) / 1000
}

if (import.meta.main === true) {
  const figures = await run()
  for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k} ${v}\n`)
  await mkdir(fileURLToPath(new URL('../../bench/', import.meta.url)), { recursive: true })
  await writeFile(fileURLToPath(new URL('../../bench/mesh.json', import.meta.url)), JSON.stringify(figures, null, 2) + '\n')
}
