// `GET /metrics` on real hosts (issue 13 item 2): a scrape of a real `darkfs up` passes
// `promtool check metrics` with no warning, and the figures move when work happens: files
// written and read through a FUSE mount (bytes stored, op log, FUSE counts and latency
// histograms, FUSE errors by errno), the other hosts hearing of it (merge lag, swarm traffic),
// a peer killed (peers gone, chunks degraded or repaired).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { chmod, readFile, writeFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { upNetwork } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { sh } from '../helpers/fuse-mount.ts'
import { PROTOCOL as SWARM_PROTOCOL, PROTOCOL_ORIGINS as SWARM_PROTOCOL_ORIGINS, PROTOCOL_RANGES as SWARM_PROTOCOL_RANGES } from '../../swarm/index.ts'

/** Files written through the mount, and their size (one chunk each, above the inline limit; erasure-coded on all 3 hosts). */
const FILES = 12
const FILE_BYTES = 100_000

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

/** GET /metrics over a host's control socket: the status, content type and text. */
async function get (dir: string): Promise<{ status: number, type: string, text: string }> {
  return await new Promise((resolve, reject) => {
    const req = request({ socketPath: join(dir, 'control.sock'), path: '/metrics', method: 'GET' }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** A scrape: series (name and sorted labels) -> value. */
class Scrape {
  readonly text: string
  private readonly series: Array<{ name: string, labels: Record<string, string>, value: number }> = []
  constructor (text: string) {
    this.text = text
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
      if (m === null) throw new Error(`unparsable metrics line: ${line}`)
      const labels: Record<string, string> = {}
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]
      this.series.push({ name: m[1], labels, value: Number(m[3]) })
    }
  }

  /** The sum of the series of `name` whose labels include `labels` (0 when none). */
  get (name: string, labels: Record<string, string> = {}): number {
    return this.series.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0)
  }

  has (name: string): boolean {
    return this.series.some(s => s.name === name)
  }
}

async function scrape (dir: string): Promise<Scrape> {
  const r = await get(dir)
  assert.equal(r.status, 200, r.text)
  return new Scrape(r.text)
}

/** `promtool check metrics` on a scrape's text: its exit code and everything it printed. */
async function promtool (text: string): Promise<{ code: number | null, output: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    child.on('error', reject)
    child.on('close', code => { resolve({ code, output }) })
    child.stdin.end(text)
  })
}

describe('GET /metrics (3 real `darkfs up --redundancy 1 --failure-timeout 2` processes, host 0 mounted)', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let dirs: string[] = []
  let hosts: Up[] = []
  let mnt = ''

  before(async () => {
    const root = await tempDir(t, 'darkfs-metrics-')
    await chmod(root, 0o755)
    mnt = join(root, 'mnt')
    t.add(async () => { await sh(`umount -l ${q(mnt)} 2>/dev/null`) })
    const net = await upNetwork(t, root, 3, ['--redundancy', '1', '--failure-timeout', '2'], i => i === 0 ? ['--mount', mnt] : [])
    dirs = net.dirs
    hosts = net.hosts
    await until('every host has 2 peers', async () => (await Promise.all(dirs.map(scrape))).every(s => s.get('darkfs_peers_connected') === 2), 60_000)
  })

  it('a scrape is the Prometheus text format and passes `promtool check metrics` with no warning', async () => {
    const r = await get(dirs[0])
    assert.equal(r.status, 200)
    assert.match(r.type, /^text\/plain; version=0\.0\.4/)
    const s = new Scrape(r.text)
    for (const name of ['darkfs_chunks', 'darkfs_stored_bytes', 'darkfs_store_free_bytes', 'darkfs_repair_queued_chunks', 'darkfs_repair_pushed_bytes_total',
      'darkfs_swarm_sent_bytes_total', 'darkfs_swarm_received_bytes_total', 'darkfs_protocol_sent_bytes_total', 'darkfs_peers_connected', 'darkfs_peers_known',
      'darkfs_peers_gone_total', 'darkfs_oplog_ops', 'darkfs_merge_lag_seconds_count', 'darkfs_conflicts_open', 'process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(s.has(name), `no ${name} in the scrape`)
    }
    for (const health of ['redundant', 'degraded', 'local-only', 'placing', 'lost']) assert.ok(s.text.includes(`darkfs_chunks{health="${health}"}`), health)
    assert.equal(s.get('darkfs_peers_known'), 2)
    const check = await promtool(r.text)
    assert.deepEqual(check, { code: 0, output: '' })
  })

  it('work moves the figures: writes and reads through the mount, the other hosts hearing of it, a peer killed', async () => {
    const before = await Promise.all(dirs.map(scrape))
    // write through the mount (from this process, never the host's), read back, miss a name
    const files = Array.from({ length: FILES }, () => randomBytes(FILE_BYTES))
    for (const [i, bytes] of files.entries()) await writeFile(join(mnt, `f${i}`), bytes)
    for (const [i, bytes] of files.entries()) assert.ok(Buffer.compare(await readFile(join(mnt, `f${i}`)), bytes) === 0)
    await assert.rejects(stat(join(mnt, 'absent')), { code: 'ENOENT' })

    const stored = (ss: Scrape[]): number => ss.reduce((a, s) => a + s.get('darkfs_stored_bytes'), 0)
    // erasure-coded over the 3 hosts: at least the bytes written, stored among them
    await until('the hosts store the bytes written', async () => stored(await Promise.all(dirs.map(scrape))) >= stored(before) + FILES * FILE_BYTES, 60_000)
    // the running figure is the store's true size (every block file's bytes), with no walk
    const blockBytes = async (dir: string): Promise<number> => Number((await sh(`find ${q(join(dir, 'store', 'blocks'))} -type f -printf '%s\\n' | awk '{ s += $1 } END { print s + 0 }'`)).stdout.trim())
    for (const dir of dirs) {
      let figure = 0
      let walked = -1
      await until(`${dir}: darkfs_stored_bytes is the size of its block files`, async () => {
        figure = (await scrape(dir)).get('darkfs_stored_bytes')
        walked = await blockBytes(dir)
        return figure === walked
      }, 30_000).catch(err => { throw new Error(`${(err as Error).message}: ${figure} vs ${walked}`) })
    }
    let after = await scrape(dirs[0])
    await until('host 0: op log and swarm bytes sent up', async () => {
      after = await scrape(dirs[0])
      return after.get('darkfs_oplog_ops') > before[0].get('darkfs_oplog_ops') &&
        after.get('darkfs_swarm_sent_bytes_total') > before[0].get('darkfs_swarm_sent_bytes_total')
    }, 60_000)
    const b0 = before[0]
    for (const op of ['write', 'read', 'create', 'getattr']) {
      assert.ok(after.get('darkfs_fuse_requests_total', { op }) > b0.get('darkfs_fuse_requests_total', { op }), `FUSE ${op} count`)
      assert.ok(after.get('darkfs_fuse_request_duration_seconds_count', { op }) > b0.get('darkfs_fuse_request_duration_seconds_count', { op }), `FUSE ${op} histogram count`)
      assert.ok(after.get('darkfs_fuse_request_duration_seconds_sum', { op }) > 0, `FUSE ${op} histogram sum`)
    }
    assert.ok(after.get('darkfs_fuse_request_duration_seconds_bucket', { op: 'write', le: '+Inf' }) >= FILES)
    assert.ok(after.get('darkfs_errors_total', { source: 'fuse', kind: 'ENOENT' }) > b0.get('darkfs_errors_total', { source: 'fuse', kind: 'ENOENT' }))
    assert.ok(after.get('darkfs_ops_applied_total', { origin: 'local' }) > b0.get('darkfs_ops_applied_total', { origin: 'local' }))
    // the swarm's bytes, on either of its protocol ids (1.1.0 adds range reads; older hosts speak 1.0.0)
    const swarmSent = (m: typeof after): number => [SWARM_PROTOCOL, SWARM_PROTOCOL_RANGES, SWARM_PROTOCOL_ORIGINS].reduce((n, protocol) => n + m.get('darkfs_protocol_sent_bytes_total', { protocol }), 0)
    assert.ok(swarmSent(after) > swarmSent(b0))
    assert.ok(after.get('darkfs_wire_sent_bytes_total') > b0.get('darkfs_wire_sent_bytes_total'))

    // the peers applied host 0's ops (merge lag observed) and received its fragments
    for (const i of [1, 2]) {
      await until(`host ${i} applied remote ops and received swarm bytes`, async () => {
        const s = await scrape(dirs[i])
        return s.get('darkfs_merge_lag_seconds_count') > before[i].get('darkfs_merge_lag_seconds_count') &&
          s.get('darkfs_ops_applied_total', { origin: 'remote' }) > before[i].get('darkfs_ops_applied_total', { origin: 'remote' }) &&
          s.get('darkfs_swarm_received_bytes_total') > before[i].get('darkfs_swarm_received_bytes_total')
      }, 60_000)
    }

    // every chunk placed: host 0's book has them redundant
    let book = ''
    await until('host 0 counts its chunks redundant', async () => {
      const s = await scrape(dirs[0])
      book = ['redundant', 'degraded', 'local-only', 'placing', 'unreachable', 'lost', 'unknown'].map(health => `${health} ${s.get('darkfs_chunks', { health })}`).join(', ')
      return s.get('darkfs_chunks', { health: 'redundant' }) >= FILES && s.get('darkfs_chunks', { health: 'placing' }) === 0
    }, 60_000).catch(err => { throw new Error(`${(err as Error).message}: ${book}`) })

    // kill host 2 (its worker, and the `up` that would restart it). The figures to compare with
    // are read before the kill: read after, they may already count it (host 2 is declared gone
    // --failure-timeout 2 s after it drops, and a test process slowed by load or by the files run
    // before it in one mocha process can take that long from the kill to the scrape)
    const pid = Number((await readFile(join(dirs[2], 'host.pid'), 'utf8')).trim())
    const beforeKill = await Promise.all(dirs.slice(0, 2).map(scrape))
    const repairedFragments = (ss: Scrape[]): number => ss.reduce((a, s) => a + s.get('darkfs_repair_fragments_total'), 0)
    await hosts[2].stop('SIGKILL')
    await sh(`kill -9 ${pid} 2>/dev/null`) // (it may be gone already: it dies with `up`)
    let degraded = 0
    let seen = ''
    // every chunk has a fragment on host 2: degraded from its disconnection until repaired (the
    // repair starts once host 2 is declared gone; a scrape that comes after the repair of every
    // chunk sees the fragments hosts 0 and 1 rebuilt instead)
    await until('host 0: peer 2 gone, its chunks degraded (or repaired)', async () => {
      const [s, s1] = await Promise.all(dirs.slice(0, 2).map(scrape))
      degraded = Math.max(degraded, s.get('darkfs_chunks', { health: 'degraded' }))
      const repaired = repairedFragments([s, s1]) > repairedFragments(beforeKill)
      seen = `connected ${s.get('darkfs_peers_connected')}, gone ${beforeKill[0].get('darkfs_peers_gone_total')} -> ${s.get('darkfs_peers_gone_total')}, degraded at most ${degraded}, fragments repaired ${repairedFragments(beforeKill)} -> ${repairedFragments([s, s1])}`
      return s.get('darkfs_peers_connected') === 1 && s.get('darkfs_peers_gone_total') > beforeKill[0].get('darkfs_peers_gone_total') && (degraded > 0 || repaired)
    }, 60_000).catch(err => { throw new Error(`${(err as Error).message}: ${seen}`) })
    // the second scrape of a moved host still passes promtool
    const last = await get(dirs[0])
    assert.deepEqual(await promtool(last.text), { code: 0, output: '' })
  })
})
