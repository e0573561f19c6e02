// scripts/mesh: the real test network (network namespaces + a Tinc 1.0 VPN + shaped uplinks).
// Runs as root. Each suite uses a mesh name of its own, unique per test process (`dkt<pid>`,
// `dkl<pid>`: several runs may share the machine), and a state dir in the temp dir named after
// it, so it never touches another mesh; it tears everything down in `after`, and reaps what
// earlier, killed runs of this file left.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { access, mkdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { MESH_SCRIPT, meshDown, meshUp, run } from '../../harness/mesh.ts'
import type { Mesh } from '../../harness/mesh.ts'

/** Uplink cap given to h1 and the delay added to it. */
const SHAPED_RATE = '1mbit'
const SHAPED_DELAY_MS = 30
/** Bytes sent through a plain TCP connection over the VPN. */
const TCP_PAYLOAD_BYTES = 4 * 1024 * 1024
/** How long an iperf3 run lasts (s): long enough to average out the token bucket's burst. */
const IPERF_SECONDS = 3

type Teardown = () => Promise<unknown>

function teardowns (): { add: (t: Teardown) => void, run: () => Promise<void> } {
  const list: Teardown[] = []
  return {
    add: t => { list.push(t) },
    run: async () => { while (list.length > 0) await list.pop()!() }
  }
}

/** The state dir of this file's mesh `name` (names are unique per process, see above). */
function stateDir (name: string): string {
  return join(tmpdir(), `darkfs-mesh-${name}`)
}

/**
 * Removes the meshes of earlier runs of this file that were killed before their `after` hook
 * (their mocha process is gone): namespaces `dkt<pid>-*`/`dkl<pid>-*` and their state dirs.
 */
async function reapKilledRuns (): Promise<void> {
  for (const ns of await namespaces()) {
    const m = /^(dk[tl](\d+))-hub$/.exec(ns)
    if (m === null || Number(m[2]) === process.pid || await alive(Number(m[2]))) continue
    await meshDown({ name: m[1], dir: stateDir(m[1]) })
    await rm(stateDir(m[1]), { recursive: true, force: true })
  }
}

/** A fresh, empty state dir for mesh `name`. */
async function freshStateDir (name: string): Promise<string> {
  const dir = stateDir(name)
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir)
  return dir
}

async function exists (path: string): Promise<boolean> {
  return await access(path).then(() => true, () => false)
}

async function namespaces (): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list'])
  return stdout.split('\n').map(l => l.split(' ')[0]).filter(n => n !== '')
}

async function rootVeths (): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show', 'type', 'veth'])
  return stdout.split('\n').filter(l => l !== '').map(l => l.split(':')[1].trim().split('@')[0])
}

async function pidsIn (ns: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', ns])
  return stdout.split('\n').filter(l => l !== '').map(Number)
}

/** Whether a pid is a running process (a zombie that init has yet to reap is not). */
async function alive (pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  const state = /\) ([A-Za-z])/.exec(stat)?.[1]
  return state !== undefined && state !== 'Z' && state !== 'X'
}

/** Resolves with the first stdout line matching `pattern`; rejects if the child exits first. */
async function waitForLine (child: ChildProcess, pattern: RegExp): Promise<string> {
  return await new Promise((resolve, reject) => {
    let buffered = ''
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString()
      const line = buffered.split('\n').find(l => pattern.test(l))
      if (line !== undefined) { cleanup(); resolve(line) }
    }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`exited (${code}) before printing ${pattern}: ${buffered}`)) }
    const cleanup = (): void => { child.stdout!.off('data', onData); child.off('exit', onExit) }
    child.stdout!.on('data', onData)
    child.on('exit', onExit)
  })
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

/** Measured goodput (bit/s) of a 1-stream TCP upload from `from` to `to` over the VPN. */
async function iperf (mesh: Mesh, from: string, to: string, port: number, cleanup: ReturnType<typeof teardowns>): Promise<number> {
  // --forceflush: iperf3 block-buffers its stdout into a pipe, which would hide the ready line.
  const server = mesh.spawn(to, 'iperf3', ['-s', '-1', '--forceflush', '-B', mesh.host(to).address, '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  cleanup.add(async () => { await stop(server) })
  await waitForLine(server, /Server listening/)
  const { stdout } = await mesh.exec(from, 'iperf3', ['-c', mesh.host(to).address, '-p', String(port), '-t', String(IPERF_SECONDS), '-J', '--connect-timeout', '10000'])
  const report = JSON.parse(stdout)
  return report.end.sum_received.bits_per_second
}

async function pingRtts (mesh: Mesh, from: string, to: string): Promise<number[]> {
  const { stdout } = await mesh.exec(from, 'ping', ['-n', '-c', '3', '-i', '0.2', mesh.host(to).address])
  return [...stdout.matchAll(/time=([\d.]+) ms/g)].map(m => Number(m[1]))
}

// A TCP sink: listens on ADDRESS:PORT, prints `listening`, then the byte count and sha256 of
// the first connection's data once the peer closes it.
const SINK = `
const net = require('node:net'); const { createHash } = require('node:crypto')
const [address, port] = process.argv.slice(1)
const server = net.createServer(socket => {
  const hash = createHash('sha256'); let bytes = 0
  socket.on('data', d => { bytes += d.length; hash.update(d) })
  socket.on('end', () => { console.log(bytes + ' ' + hash.digest('hex')); socket.end(); server.close() })
})
server.listen(Number(port), address, () => console.log('listening'))`

// A TCP source: connects to ADDRESS:PORT and sends the bytes it reads from stdin.
const SOURCE = `
const net = require('node:net')
const [address, port] = process.argv.slice(1)
const socket = net.connect(Number(port), address, () => process.stdin.pipe(socket))
socket.on('error', e => { console.error(e.message); process.exit(1) })`

describe('scripts/mesh up 3 --shape h1=1mbit/30ms', function () {
  const cleanup = teardowns()
  const name = `dkt${process.pid}`
  let mesh: Mesh

  before(async function () {
    await reapKilledRuns()
    const dir = await freshStateDir(name)
    cleanup.add(async () => { await rm(dir, { recursive: true, force: true }) })
    cleanup.add(async () => { await meshDown({ name, dir }) })
    mesh = await meshUp(3, { name, dir, shape: { h1: `${SHAPED_RATE}/${SHAPED_DELAY_MS}ms` } })
  })
  after(async () => { await cleanup.run() })

  it('prints `hX <netns> <vpn address>` per host and writes the same to mesh.json', () => {
    assert.deepEqual(mesh.printed.trim().split('\n'), [
      `h1 ${name}-h1 10.77.0.1`, `h2 ${name}-h2 10.77.0.2`, `h3 ${name}-h3 10.77.0.3`
    ])
    assert.equal(mesh.vpnInterface, 'dk0')
    assert.equal(mesh.underlayInterface, 'ul0')
    assert.deepEqual(mesh.hosts.map(h => [h.name, h.netns, h.address, h.rate, h.delayMs]), [
      ['h1', `${name}-h1`, '10.77.0.1', SHAPED_RATE, SHAPED_DELAY_MS],
      ['h2', `${name}-h2`, '10.77.0.2', null, 0],
      ['h3', `${name}-h3`, '10.77.0.3', null, 0]
    ])
  })

  it('mesh.exec(hX, ping) reaches every other host over the VPN', async () => {
    for (const from of mesh.hosts) {
      for (const to of mesh.hosts) {
        if (from === to) continue
        const { stdout } = await mesh.exec(from.name, 'ping', ['-n', '-c', '1', '-W', '2', to.address])
        assert.match(stdout, /1 received/, `${from.name} -> ${to.name}`)
      }
    }
  })

  it('a TCP connection from h3 to h2 over the VPN carries data intact', async () => {
    const sink = mesh.spawn('h2', process.execPath, ['-e', SINK, mesh.host('h2').address, '7070'], { stdio: ['ignore', 'pipe', 'pipe'] })
    cleanup.add(async () => { await stop(sink) })
    await waitForLine(sink, /^listening$/)
    const received = waitForLine(sink, /^\d+ [0-9a-f]{64}$/)
    const payload = randomBytes(TCP_PAYLOAD_BYTES)
    const source = mesh.spawn('h3', process.execPath, ['-e', SOURCE, mesh.host('h2').address, '7070'], { stdio: ['pipe', 'ignore', 'pipe'] })
    cleanup.add(async () => { await stop(source) })
    source.stdin!.end(payload)
    const [bytes, digest] = (await received).split(' ')
    assert.equal(Number(bytes), TCP_PAYLOAD_BYTES)
    assert.equal(digest, createHash('sha256').update(payload).digest('hex'))
  })

  it('the rate cap is applied to h1\'s underlay (tbf on ul0)', async () => {
    const { stdout } = await mesh.exec('h1', 'tc', ['qdisc', 'show', 'dev', 'ul0'])
    assert.match(stdout, /qdisc tbf .* rate 1Mbit/)
    const other = await mesh.exec('h2', 'tc', ['qdisc', 'show', 'dev', 'ul0'])
    assert.doesNotMatch(other.stdout, /tbf/)
  })

  // The rates themselves are no test bound (a loaded machine measures anything): this checks the
  // order the shaping makes, and the title reports the figures.
  it('iperf3 from shaped h1 measures below the unshaped rate from h3', async function () {
    const unshaped = await iperf(mesh, 'h3', 'h2', 5301, cleanup)
    const shaped = await iperf(mesh, 'h1', 'h2', 5302, cleanup)
    this.test!.title += ` (h3 ${(unshaped / 1e6).toFixed(1)} Mbit/s, h1 ${(shaped / 1e6).toFixed(2)} Mbit/s)`
    assert.ok(shaped < unshaped, `shaped ${shaped} bit/s, unshaped ${unshaped} bit/s`)
    assert.ok(shaped > 0)
  })

  it('ping RTT over the VPN to and from delayed h1 is at least the delay; between others it is not', async () => {
    for (const [from, to] of [['h1', 'h2'], ['h3', 'h1']]) {
      const rtts = await pingRtts(mesh, from, to)
      assert.ok(rtts.length > 0, `${from} -> ${to}: no replies`)
      for (const rtt of rtts) assert.ok(rtt >= SHAPED_DELAY_MS, `${from} -> ${to}: rtt ${rtt} ms`)
    }
    // no upper bound in ms (a loaded machine delays anything): the undelayed path is the faster one
    const direct = await pingRtts(mesh, 'h2', 'h3')
    const delayed = await pingRtts(mesh, 'h2', 'h1')
    assert.ok(Math.min(...direct) < Math.min(...delayed), `h2 -> h3: rtts ${direct.join(' ')}; h2 -> h1: ${delayed.join(' ')}`)
  })

  it('mesh.shape(h2, \'/50ms\') delays a live host, mesh.shape(h2, \'none\') undoes it', async () => {
    await mesh.shape('h2', '/50ms')
    assert.equal(mesh.host('h2').delayMs, 50)
    const delayed = await pingRtts(mesh, 'h3', 'h2')
    for (const rtt of delayed) assert.ok(rtt >= 50, `rtt ${rtt} ms`)
    await mesh.shape('h2', 'none')
    assert.equal(mesh.host('h2').delayMs, 0)
    const undone = await pingRtts(mesh, 'h3', 'h2')
    assert.ok(Math.min(...undone) < Math.min(...delayed), `rtts ${undone.join(' ')} after 'none', ${delayed.join(' ')} with the delay`)
  })

  it('scripts/mesh exec hX CMD runs CMD in host X\'s namespace; scripts/mesh hosts lists the hosts', async () => {
    const env = { ...process.env, DARKFS_MESH_NAME: name, DARKFS_MESH_DIR: mesh.dir }
    const { stdout } = await run(MESH_SCRIPT, ['exec', 'h2', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'dk0'], { env })
    assert.match(stdout, / inet 10\.77\.0\.2\/24 /)
    assert.equal((await run(MESH_SCRIPT, ['hosts'], { env })).stdout, mesh.printed)
    await assert.rejects(run(MESH_SCRIPT, ['exec', 'h7', 'true'], { env }), /no host 'h7'/)
  })

  it('scripts/mesh rejects bad arguments without touching the live mesh', async () => {
    const env = { ...process.env, DARKFS_MESH_NAME: name, DARKFS_MESH_DIR: mesh.dir }
    await assert.rejects(mesh.shape('h1', '1furlong/30ms'), /bad rate/)
    await assert.rejects(mesh.shape('h1', '1mbit/-3ms'), /bad delay/)
    await assert.rejects(run(MESH_SCRIPT, ['shape', 'h9', 'none'], { env }), /no host 'h9'/)
    await assert.rejects(run(MESH_SCRIPT, ['up', '0'], { env }), /N must be/)
    await assert.rejects(run(MESH_SCRIPT, ['up', '3', '--shape', 'h4=1mbit'], { env }), /no host 'h4'/)
    await assert.rejects(run(MESH_SCRIPT, ['up', '3', '--shape', 'h1=fast'], { env }), /bad rate/)
    assert.equal(mesh.host('h1').rate, SHAPED_RATE)
    assert.match((await mesh.exec('h1', 'tc', ['qdisc', 'show', 'dev', 'ul0'])).stdout, /tbf .* rate 1Mbit/)
    const { stdout } = await mesh.exec('h2', 'ping', ['-n', '-c', '1', '-W', '2', mesh.host('h1').address])
    assert.match(stdout, /1 received/)
  })
})

describe('scripts/mesh down and up again', function () {
  const cleanup = teardowns()
  const name = `dkl${process.pid}`
  let dir: string

  before(async () => {
    dir = await freshStateDir(name)
    cleanup.add(async () => { await rm(dir, { recursive: true, force: true }) })
    cleanup.add(async () => { await meshDown({ name, dir }) })
  })
  after(async () => { await cleanup.run() })

  it('scripts/mesh up 3 after a killed up builds a working mesh', async () => {
    const env = { ...process.env, DARKFS_MESH_NAME: name, DARKFS_MESH_DIR: dir }
    const first = spawn(MESH_SCRIPT, ['up', '3'], { env, stdio: 'ignore' })
    cleanup.add(async () => { await stop(first) })
    // Kill it half-way: once its first host namespace exists, before mesh.json is written.
    while (!(await namespaces()).includes(`${name}-h1`)) {
      assert.equal(first.exitCode, null, 'the first up exited before building h1')
      await sleep(10)
    }
    await stop(first)
    assert.equal(await exists(join(dir, 'mesh.json')), false, 'the first up finished before it was killed')
    assert.ok((await namespaces()).includes(`${name}-hub`), 'the killed up left its namespaces behind')

    const mesh = await meshUp(3, { name, dir })
    for (const to of ['h1', 'h3']) {
      const { stdout } = await mesh.exec('h2', 'ping', ['-n', '-c', '1', '-W', '2', mesh.host(to).address])
      assert.match(stdout, /1 received/)
    }
  })

  it('scripts/mesh down leaves no namespace, no tincd, no process and no veth behind', async () => {
    const ours = (await namespaces()).filter(ns => ns.startsWith(`${name}-`))
    assert.deepEqual(ours.sort(), [`${name}-h1`, `${name}-h2`, `${name}-h3`, `${name}-hub`])
    const pids = (await Promise.all(ours.map(pidsIn))).flat()
    assert.ok(pids.length >= 3, 'tincd runs in every host namespace')
    const vethsBefore = await rootVeths()

    await meshDown({ name, dir })

    assert.deepEqual((await namespaces()).filter(ns => ns.startsWith(`${name}-`)), [])
    assert.deepEqual((await Promise.all(pids.map(alive))).filter(a => a), [])
    const tincds = await run('pgrep', ['-f', `tincd -c ${dir}`]).then(r => r.stdout, () => '')
    assert.equal(tincds, '')
    assert.deepEqual((await rootVeths()).filter(v => !vethsBefore.includes(v)), [])
    assert.equal(await exists(dir), false)
    await meshDown({ name, dir }) // idempotent
  })
})
