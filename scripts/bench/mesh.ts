// `npm run bench:mesh`: darkfs on a real Tinc mesh (DESIGN.md §4, issue 7); the harness is
// harness/darkfs-mesh.ts (shared with test/mesh/). Figures go to bench/mesh.json.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ControlClient } from '../../node/cli/index.ts'
import { meshDown, meshUp } from '../../harness/mesh.ts'
import type { Mesh } from '../../harness/mesh.ts'
import { PROTOCOL as SWARM_PROTOCOL, PROTOCOL_ORIGINS as SWARM_PROTOCOL_ORIGINS, PROTOCOL_RANGES as SWARM_PROTOCOL_RANGES } from '../../swarm/index.ts'
import { START_TIMEOUT_MS, PLACE_TIMEOUT_MS, until, startDarkfsMesh, put, redundant, sent, stored } from '../../harness/darkfs-mesh.ts'
import type { DarkfsMesh, Sent } from '../../harness/darkfs-mesh.ts'

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

/**
 * Where a writer's upload went, per byte written: its swarm's data (blocks and their
 * messages), the other protocols together (DHT, ping, identify, tree sync, custody, place),
 * and what its sockets carried (the above with yamux, Noise and pnet).
 */
function breakdown (out: Record<string, number | string>, prefix: string, a: Sent, b: Sent, bytes: number): void {
  let control = 0
  for (const [p, n] of Object.entries(b.protocols)) if (![SWARM_PROTOCOL, SWARM_PROTOCOL_RANGES, SWARM_PROTOCOL_ORIGINS].includes(p)) control += n - (a.protocols[p] ?? 0)
  out[`${prefix}.data.amplification`] = round((b.swarm - a.swarm) / bytes)
  out[`${prefix}.control.bytes`] = control
  out[`${prefix}.socket.amplification`] = round((b.socket - a.socket) / bytes)
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
          const r = await dm.host(h).client.pin('/pinned')
          if (r.missing !== 0) throw new Error(`${h} misses ${String(r.missing)} chunks under /pinned`)
          fetchedByPinners += r.fetched
        }
        out['pin.chunksFetchedAfter'] = fetchedByPinners
        log(`pins: ${out.pinAmplification}x, all pinners hold it after ${out['pin.allPinnersHold.s']} s`)

        // 3. multi-source read: every other host capped at 2 Mbit/s up, reader h6 at 20 Mbit/s
        for (const h of ['h1', 'h2', 'h3', 'h4', 'h5']) await dm.mesh.shape(h, '2mbit')
        const rx0 = (await dm.counters('h6')).rx
        const s0 = (await dm.host('h6').client.get('/v1/traffic')).swarm.peers as Record<string, { received: number }>
        t0 = performance.now()
        const r = await dm.cli('h6', ['cat', '/eight.bin'])
        const rsecs = (performance.now() - t0) / 1000
        if (r.code !== 0 || r.stdout.byteLength !== WRITE_BYTES) throw new Error(`read on h6 failed: ${r.stderr}`)
        const rx = (await dm.counters('h6')).rx - rx0
        const s1 = (await dm.host('h6').client.get('/v1/traffic')).swarm.peers as Record<string, { received: number }>
        const sources = Object.entries(s1).filter(([p, v]) => v.received - (s0[p]?.received ?? 0) >= 256 * 1024).length
        out.multiSourceSpeedup = round(rx / rsecs / mbit(2))
        out['read.fileMiBps'] = round(WRITE_BYTES / rsecs / 2 ** 20)
        out['read.sources'] = sources
        log(`read: ${out.multiSourceSpeedup}x one holder's cap from ${sources} sources`)

        // idle traffic over a minute on h3: everything on its VPN interface, and the data part
        const i0 = await dm.counters('h3')
        const d0 = (await dm.host('h3').client.get('/v1/traffic')).swarm
        await new Promise(resolve => setTimeout(resolve, IDLE_S * 1000))
        const i1 = await dm.counters('h3')
        const d1 = (await dm.host('h3').client.get('/v1/traffic')).swarm
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
          const s0 = (await dm.host('h2').client.get('/v1/traffic')).swarm.bytesSent
          await new Promise(resolve => setTimeout(resolve, 20_000))
          const b = await dm.counters('h2')
          const s1 = (await dm.host('h2').client.get('/v1/traffic')).swarm.bytesSent
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
  await mkdir(fileURLToPath(new URL('../../bench', import.meta.url)), { recursive: true })
  await writeFile(fileURLToPath(new URL('../../bench/mesh.json', import.meta.url)), JSON.stringify(figures, null, 2) + '\n')
}
