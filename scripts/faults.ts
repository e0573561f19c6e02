// The fault runner (`npm run test:faults`, DESIGN.md §7, issue 8): real `darkfs up` processes
// in the namespaces of a Tinc mesh (scripts/mesh), listening on their VPN addresses, under a
// steady stream of writes and reads from several hosts, while faults are injected:
//   kill      kill -9 of up to REDUNDANCY hosts at random moments, restarted later
//   writer    kill -9 of the writing host in the middle of a put; after restart every file is
//             its old or its new version
//   partition hosts cut off (their underlay link down); on both sides the same path is written,
//             one deletes what the other writes, both rename one file and cross-move two dirs;
//             after the heal the §6 rules are checked on three hosts (one conflict sibling,
//             write beats delete, one rename wins, no cycle, nothing orphaned, same listing)
//   bitrot    bytes flipped in stored fragments on several hosts; reads stay correct; then every
//             host scrubs, `darkfs heal` runs, and every host's `status --json` must reach all
//             chunks redundant
//   diskfull  one host's data dir is a small tmpfs: its writes fail clearly once full, it keeps
//             serving reads, nothing stored is lost; it reports itself full, every other host
//             hears of it, and writes elsewhere place nothing on it (its bytesStored does not grow)
// Convergence and notices (issue 16): after every restart and every heal, the writes pause and
// every live host must show the same tree, compared by a digest of the materialised tree and by
// the op DAG heads (the control socket's `tree` command); a restarted host must be back among
// every live host's peers, a healed partition must leave every host seeing every other, and a
// full host must be heard of by every other. A check that fails is a finding and counts as
// diverged.
// Counts and replay:
//   npm run test:faults -- [--kills N] [--partitions N] [--duration S] [--long] [--seed S]
// --kills: hosts killed (every fourth round kills a writer in the middle of a put instead);
// --partitions: partition/heal cycles, writes on both sides in each; --duration: once the
// counts are done, faults go on (kill rounds and partitions in turn) until S seconds have
// passed since the start; --long: --kills 100 --partitions 50 --duration 3600 (about an hour,
// not part of `npm test`). The schedule (victims, sides, waits) comes from a PRNG seeded by
// --seed (default: drawn), printed as the first line: `--seed S` replays it (the workload's
// interleaving with the faults still follows the machine's timing).
// Then it settles, checks every acknowledged write on FINAL_READERS hosts, prints a table with
// a row per fault (writes acknowledged, lost, wrong reads, crashes while that fault was the
// current one; a write lost is counted under the fault during which it was acknowledged) and
// ends with
//   faults: F injected, A acknowledged, L lost, R wrong reads, C crashed, D diverged
// exiting non-zero when L, R, C or D is not 0. C counts hosts that exited unasked and every
// "darkfs: internal error" a host logged (a background failure it survived is still a bug);
// broken §6 rules and redundancy not restored after bit rot are findings: listed above the table,
// counted in its last column, and the exit status is non-zero for them too. Needs root (namespaces, tmpfs).
// DARKFS_FAULTS_ROUNDS (default 2) is the number of bit-rot rounds; each may wait out
// REDUNDANT_TIMEOUT_MS when redundancy is not restored.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ControlClient } from '../node/cli/index.ts'
import { meshDown, meshUp, run } from '../harness/mesh.ts'
import type { Mesh } from '../harness/mesh.ts'
import { prng } from '../harness/prng.ts'

const DARKFS = fileURLToPath(new URL('../bin/darkfs', import.meta.url))
/** Hosts in the mesh. */
const HOSTS = Number(process.env.DARKFS_FAULTS_HOSTS ?? 6)
/** Hosts killed at once at most (the redundancy new chunks are written with). */
const REDUNDANCY = 2
/** Hosts that write (each owns its paths, so one path has one writer). */
const WRITERS = ['h2', 'h3', 'h4']
/** The host whose data dir is a small tmpfs. */
const DISK_HOST = `h${HOSTS}`
const DISK_BYTES = 48 * 1024 * 1024
/** Files per writer (rewritten over and over) and their sizes. */
const FILES_PER_WRITER = 6
const MAX_FILE_BYTES = 3 * 1024 * 1024
/** Rounds of bit rot. */
const ROUNDS = Number(process.env.DARKFS_FAULTS_ROUNDS ?? 2)
/** Default counts (`--kills`, `--partitions`), and those of `--long`. */
const DEFAULT_KILLS = 8
const DEFAULT_PARTITIONS = 2
const LONG = { kills: 100, partitions: 50, duration: 3600 }
/** Every KILL_WRITER_EVERY-th kill round kills a writer in the middle of a put. */
const KILL_WRITER_EVERY = 4
/** Time for every live host to show one tree (digest and heads) after a restart or a heal. */
const CONVERGE_TIMEOUT_MS = 90_000
/** Time for a restarted or healed host to be among every live host's peers again. */
const BACK_TIMEOUT_MS = 90_000
/** Time for the two sides of a partition to agree after the heal. */
const MERGE_TIMEOUT_MS = 60_000
/** Time for scrub + heal to bring every host's status back to all redundant after bit rot. */
const REDUNDANT_TIMEOUT_MS = 120_000
/** What a host logs for a background failure it survived (node/cli.ts). */
const INTERNAL_ERROR = 'darkfs: internal error'
/** The port every host listens on, on its VPN address. */
const PORT = 4001
const START_TIMEOUT_MS = 60_000
/** Time after the last fault for placement and sync to settle before the final check. */
const SETTLE_MS = 20_000
const CLI_TIMEOUT_MS = 60_000
/** Time for the full host to report itself full and for every peer to hear of it. */
const FULL_NOTICE_TIMEOUT_MS = 30_000
/** Time after the writes elsewhere for their placement (and any repair) to reach the hosts. */
const FULL_PLACEMENT_WAIT_MS = 10_000
/** Hosts that read every acknowledged path in the final check. */
const FINAL_READERS = 2

interface HostProc { name: string, dir: string, id: string, child?: ChildProcess, killed: boolean, crashed: number, stderr: string }
interface Row { fault: string, injected: number, acked: number, lost: number, wrong: number, exits: number, internal: number, findings: number, diverged: number }

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }


/** Integers, picks, shuffles and bytes from one seeded stream. */
function stream (seed: number): { int: (lo: number, hi?: number) => number, pick: <T>(xs: T[]) => T, shuffle: <T>(xs: T[]) => T[], bytes: (n: number) => Buffer } {
  const rand = prng(seed)
  const int = (lo: number, hi?: number): number => hi === undefined ? Math.floor(rand() * lo) : lo + Math.floor(rand() * (hi - lo))
  return {
    int,
    pick: <T>(xs: T[]): T => xs[int(xs.length)],
    shuffle: <T>(xs: T[]): T[] => {
      const out = [...xs]
      for (let i = out.length - 1; i > 0; i--) { const j = int(i + 1); [out[i], out[j]] = [out[j], out[i]] }
      return out
    },
    // an AES-CTR key stream: seeded bytes at memory speed
    bytes: (n: number): Buffer => createCipheriv('aes-256-ctr', Buffer.from(Array.from({ length: 32 }, () => int(256))), Buffer.from(Array.from({ length: 16 }, () => int(256)))).update(Buffer.alloc(n))
  }
}

interface Options { kills: number, partitions: number, duration: number, seed: number }

function options (): Options {
  const usage = 'usage: npm run test:faults -- [--kills N] [--partitions N] [--duration S] [--long] [--seed S]'
  let values
  try {
    values = parseArgs({ options: { kills: { type: 'string' }, partitions: { type: 'string' }, duration: { type: 'string' }, long: { type: 'boolean', default: false }, seed: { type: 'string' } }, strict: true, allowPositionals: false }).values
  } catch (err) {
    process.stderr.write(`faults: ${(err as Error).message}\n${usage}\n`)
    process.exit(2)
  }
  const count = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt
    const n = Number(v)
    if (!Number.isSafeInteger(n) || n < 0) { process.stderr.write(`faults: --${name} takes a whole number >= 0, got ${JSON.stringify(v)}\n${usage}\n`); process.exit(2) }
    return n
  }
  const long = values.long === true
  return {
    kills: count('kills', values.kills, long ? LONG.kills : DEFAULT_KILLS),
    partitions: count('partitions', values.partitions, long ? LONG.partitions : DEFAULT_PARTITIONS),
    duration: count('duration', values.duration, long ? LONG.duration : 0),
    seed: count('seed', values.seed, Math.floor(Math.random() * 2 ** 31))
  }
}

const opts = options()
/** The fault schedule's stream (victims, sides, waits): replayed by --seed. */
const sched = stream(opts.seed)
/** The workload's stream (paths, sizes, bytes): its interleaving with the faults follows timing. */
const work = stream(opts.seed ^ 0x5bd1e995)
const pick = work.pick

async function darkfs (args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<{ code: number, stdout: Buffer, stderr: string }> {
  return await new Promise((resolve) => {
    const child = spawn(DARKFS, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('exit', code => { clearTimeout(timer); resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: err }) })
  })
}

async function main (): Promise<number> {
  const started = Date.now()
  const replay = [`--seed ${opts.seed}`, `--kills ${opts.kills}`, `--partitions ${opts.partitions}`, ...(opts.duration > 0 ? [`--duration ${opts.duration}`] : [])].join(' ')
  process.stdout.write(`faults: seed ${opts.seed} (replay: npm run test:faults -- ${replay})\n`)
  const name = `dkf${process.pid % 10000}`
  const root = await mkdtemp(join(tmpdir(), 'darkfs-faults-'))
  const stateDir = join(root, 'mesh')
  const hosts: HostProc[] = []
  let mesh: Mesh | undefined
  let tmpfs: string | undefined
  const cleanup = async (): Promise<void> => {
    for (const h of hosts) { h.killed = true; h.child?.kill('SIGKILL') }
    await sleep(500)
    await meshDown({ name, dir: stateDir }).catch(() => {})
    if (tmpfs !== undefined) await run('umount', ['-l', tmpfs]).catch(() => {})
    await rm(root, { recursive: true, force: true })
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void cleanup().then(() => process.exit(130)) })

  // the ledger: every version ever attempted per path, and the last acknowledged one
  const attempted = new Map<string, Set<string>>()
  const acked = new Map<string, string>()
  const stats = { acknowledged: 0, writeErrors: 0, reads: 0, readErrors: 0, wrong: 0, lost: 0 }
  const rows: Row[] = []
  const row = (fault: string): Row => { let r = rows.find(x => x.fault === fault); if (r === undefined) rows.push(r = { fault, injected: 0, acked: 0, lost: 0, wrong: 0, exits: 0, internal: 0, findings: 0, diverged: 0 }); return r }
  /** The fault being injected now: acknowledgements, wrong reads and crashes count under it. */
  let phase = 'startup'
  /** The fault during which each path's last acknowledged version was written. */
  const ackedIn = new Map<string, string>()
  const findings: string[] = []
  /** Convergence and notice checks made, and those that failed (diverged). */
  const checks = { converge: 0, notices: 0, diverged: 0 }
  const finding = (fault: string, what: string): void => { row(fault).findings++; findings.push(`${fault}: ${what}`); process.stderr.write(`FINDING ${fault}: ${what}\n`) }
  let joinAddr = ''

  const start = async (h: HostProc): Promise<void> => {
    const addr = mesh!.host(h.name).address
    const child = mesh!.spawn(h.name, DARKFS, ['up', '--data', h.dir, '--listen', `/ip4/${addr}/tcp/${PORT}`, ...(h.name !== 'h1' ? ['--join', joinAddr] : [])], { stdio: ['ignore', 'pipe', 'pipe'] })
    h.child = child
    h.killed = false
    let out = ''
    let partial = ''
    child.stderr!.on('data', (d: Buffer) => {
      h.stderr = (h.stderr + d.toString()).slice(-20_000)
      const lines = (partial + d.toString()).split('\n')
      partial = lines.pop() ?? ''
      for (const l of lines) {
        if (!l.includes(INTERNAL_ERROR)) continue
        row(phase).internal++
        process.stderr.write(`${h.name} (${phase}): ${l.slice(0, 600)}\n`)
      }
    })
    child.on('exit', (code, signal) => { if (!h.killed) { h.crashed++; row(phase).exits++; h.stderr += `\nexited ${String(code)} ${String(signal)}` } })
    const end = Date.now() + START_TIMEOUT_MS
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        if (/^ready$/m.test(out)) resolve()
      })
      child.once('exit', () => { reject(new Error(`${h.name}: darkfs up exited: ${h.stderr}`)) })
      const timer = setInterval(() => { if (Date.now() > end) { clearInterval(timer); reject(new Error(`${h.name}: not ready in time: ${h.stderr}`)) } }, 500)
      void Promise.resolve().then(() => { child.stdout!.once('close', () => { clearInterval(timer) }) })
    })
    const listening = /^listening (\S+)/m.exec(out)![1]
    h.id = listening.split('/p2p/')[1] ?? ''
    if (h.name === 'h1') joinAddr = listening
  }
  const kill9 = (h: HostProc): void => { h.killed = true; h.child?.kill('SIGKILL') }
  const live = (): HostProc[] => hosts.filter(h => !h.killed)
  const host = (n: string): HostProc => hosts.find(h => h.name === n)!

  let puts = 0
  const write = async (h: HostProc, path: string, bytes = work.int(1, MAX_FILE_BYTES)): Promise<boolean> => {
    const data = work.bytes(bytes)
    const local = join(root, `put-${puts++}`)
    await writeFile(local, data)
    const hash = sha(data)
    let set = attempted.get(path)
    if (set === undefined) attempted.set(path, set = new Set())
    set.add(hash)
    const r = await darkfs(['--data', h.dir, 'put', local, path])
    await rm(local, { force: true })
    if (r.code === 0) { acked.set(path, hash); ackedIn.set(path, phase); row(phase).acked++; stats.acknowledged++; return true }
    stats.writeErrors++
    return false
  }
  const read = async (h: HostProc, path: string): Promise<string | undefined> => {
    const r = await darkfs(['--data', h.dir, 'cat', path])
    if (r.code !== 0) { stats.readErrors++; return undefined }
    stats.reads++
    const hash = sha(r.stdout)
    if (!(attempted.get(path)?.has(hash) ?? false)) {
      stats.wrong++
      row(phase).wrong++
      process.stderr.write(`WRONG READ ${path} on ${h.name}: ${r.stdout.byteLength} bytes, hash ${hash.slice(0, 12)}\n`)
    }
    return hash
  }

  // the steady workload: writers write their own paths, readers read anyone's
  let running = true
  /** Workers pause (between operations) while redundancy is checked; `busy` counts those mid-operation. */
  let paused = false
  let busy = 0
  const quiet = async (): Promise<void> => { paused = true; while (busy > 0) await sleep(200) }
  const workload = async (): Promise<void> => {
    while (running) {
      if (paused) { await sleep(200); continue }
      busy++
      const w = pick(WRITERS.map(host).filter(h => !h.killed))
      if (w !== undefined) await write(w, `/${w.name}/f${work.int(FILES_PER_WRITER)}`)
      const r = pick(live())
      const paths = [...acked.keys()]
      if (r !== undefined && paths.length > 0) await read(r, pick(paths))
      busy--
      await sleep(200)
    }
  }

  try {
    mesh = await meshUp(HOSTS, { name, dir: stateDir })
    for (let i = 1; i <= HOSTS; i++) {
      const h: HostProc = { name: `h${i}`, dir: join(root, `h${i}`), id: '', killed: false, crashed: 0, stderr: '' }
      await mkdir(h.dir)
      if (h.name === DISK_HOST) {
        await run('mount', ['-t', 'tmpfs', '-o', `size=${DISK_BYTES}`, 'tmpfs', h.dir])
        tmpfs = h.dir
      }
      const init = i === 1 ? ['--new-network'] : ['--network-key', join(root, 'h1', 'network.key')]
      const r = await darkfs(['init', '--data', h.dir, ...init])
      if (r.code !== 0) throw new Error(`init ${h.name}: ${r.stderr}`)
      hosts.push(h)
      await start(h)
    }
    for (const w of WRITERS) await darkfs(['--data', host(w).dir, 'mkdir', '-p', `/${w}`])
    const load = [workload(), workload()]

    // the fault loop: kill rounds and partition/heal cycles in turn until the counts are done
    // (and, with --duration, until that time has passed); every fourth kill round kills a
    // writer in the middle of a put. After each restart and each heal: one tree everywhere.
    let kills = 0
    let partitions = 0
    let round = 0
    for (;;) {
      const more = Date.now() - started < opts.duration * 1000
      const killsLeft = kills < opts.kills
      const partsLeft = partitions < opts.partitions
      if (!killsLeft && !partsLeft && !more) break
      if (killsLeft || (!partsLeft && more)) {
        round++
        if (round % KILL_WRITER_EVERY === 0) { await killWriter(); kills++ } else kills += await killHosts(opts.kills - kills)
      }
      if (partsLeft || (!killsLeft && more)) await partition(partitions++)
    }
    // bit rot: flip bytes in stored fragments on several hosts; reads stay correct; then every
    // host scrubs, heal runs, and every host's status must come back to all redundant
    phase = 'bit rot (4 fragments/host)'
    process.stderr.write(`phase: ${phase}\n`)
    for (let round = 0; round < ROUNDS; round++) {
      for (const h of sched.shuffle(hosts.filter(x => x.name !== DISK_HOST)).slice(0, 2)) {
        const files = await listFiles(join(h.dir, 'store', 'blocks'))
        for (const f of sched.shuffle(files.sort()).slice(0, 4)) {
          const size = (await stat(f)).size
          if (size === 0) continue
          const fh = await open(f, 'r+')
          const at = sched.int(size)
          const b = Buffer.alloc(1)
          await fh.read(b, 0, 1, at)
          b[0] ^= 0xff
          await fh.write(b, 0, 1, at)
          await fh.close()
        }
        row(phase).injected++
      }
      for (const path of [...acked.keys()].slice(0, 10)) await read(pick(live()), path)
      await quiet()
      for (const h of live()) await new ControlClient(h.dir).command('scrub').catch((err: Error) => { finding(phase, `scrub on ${h.name} failed: ${err.message}`) })
      const redundant = await until(async () => {
        await darkfs(['--data', host('h1').dir, 'heal'])
        for (const h of live()) {
          const r = await darkfs(['--data', h.dir, 'status', '--json'])
          if (r.code !== 0) return false
          const c = JSON.parse(r.stdout.toString()).chunks
          if (c.degraded !== 0 || c.lost !== 0 || c.localOnly !== 0) return false
        }
        return true
      }, REDUNDANT_TIMEOUT_MS)
      if (!redundant) {
        const states = await Promise.all(live().map(async h => `${h.name} ${JSON.stringify(JSON.parse((await darkfs(['--data', h.dir, 'status', '--json'])).stdout.toString() || '{}').chunks)}`))
        finding(phase, `not all redundant ${REDUNDANT_TIMEOUT_MS / 1000} s after scrub + heal (writes paused): ${states.join('; ')}`)
      }
      paused = false
    }

    // a full disk: the tmpfs host writes until it fails clearly, and keeps serving reads
    phase = 'full disk'
    process.stderr.write(`phase: ${phase}\n`)
    row(phase).injected++
    const full = host(DISK_HOST)
    let clear = 0
    for (let i = 0; i < 40; i++) {
      const data = work.bytes(2 * 1024 * 1024)
      const local = join(root, 'fill.bin')
      await writeFile(local, data)
      const r = await darkfs(['--data', full.dir, 'put', local, `/fill-${i}.bin`])
      if (r.code !== 0) {
        if (/ENOSPC|no space/i.test(r.stderr)) clear++
        else finding(phase, `unclear error from a put on the full host: ${r.stderr.trim()}`)
        break
      }
      attempted.set(`/fill-${i}.bin`, new Set([sha(data)]))
      acked.set(`/fill-${i}.bin`, sha(data))
      ackedIn.set(`/fill-${i}.bin`, phase)
      row(phase).acked++
      stats.acknowledged++
    }
    process.stderr.write(`full disk: ${clear} clear ENOSPC error(s)\n`)
    for (const path of [...acked.keys()].slice(0, 10)) await read(full, path)
    // the full host knows it is full, and every other host leaves it out of placement
    const status = async (h: HostProc): Promise<any> => { const r = await darkfs(['--data', h.dir, 'status', '--json']); return r.code === 0 ? JSON.parse(r.stdout.toString()) : undefined }
    const fullId = (await status(full))?.peerId
    if (!await until(async () => (await status(full))?.space?.full === true, FULL_NOTICE_TIMEOUT_MS)) finding(phase, 'the host that hit ENOSPC never reported itself full')
    for (const h of live().filter(x => x !== full)) {
      checks.notices++
      if (!await until(async () => ((await status(h))?.fullPeers ?? []).includes(fullId), FULL_NOTICE_TIMEOUT_MS)) diverged(phase, `${h.name} never heard that ${full.name} is full`)
    }
    const storedBefore = (await status(full))?.bytesStored
    // writes elsewhere still succeed while one host is full, and place nothing on it
    for (const w of WRITERS) await write(host(w), `/${w}/after-full`, MAX_FILE_BYTES)
    await sleep(FULL_PLACEMENT_WAIT_MS)
    const storedAfter = (await status(full))?.bytesStored
    if (typeof storedBefore !== 'number' || typeof storedAfter !== 'number') finding(phase, `no status from ${full.name}`)
    else if (storedAfter > storedBefore) finding(phase, `placement did not avoid the full host: it stored ${storedBefore} then ${storedAfter} bytes`)
    else process.stderr.write(`full disk: the full host stored ${storedBefore} bytes before the writes elsewhere, ${storedAfter} after\n`)

    phase = 'settle + final check'
    process.stderr.write(`phase: ${phase}\n`)
    running = false
    await Promise.all(load)
    await sleep(SETTLE_MS)
    await converge('settle + final check', 'at the end')

    // the final check: every acknowledged write reads back (its version or a later attempt) on FINAL_READERS random hosts
    for (const [path, hash] of acked) {
      let ok = false
      // two hosts per path (each CLI call starts a process: all hosts for every path is minutes)
      for (const h of work.shuffle(live()).slice(0, FINAL_READERS)) {
        const got = await read(h, path)
        if (got === hash || (got !== undefined && (attempted.get(path)?.has(got) ?? false))) ok = true
      }
      if (!ok) { stats.lost++; row(ackedIn.get(path) ?? phase).lost++; process.stderr.write(`LOST ${path} (acknowledged during ${ackedIn.get(path) ?? '?'})\n`) }
    }
    // where redundancy stands at the end (the full host is still full): one line per host
    for (const h of live()) {
      const r = await darkfs(['--data', h.dir, 'status', '--json'])
      const c = r.code === 0 ? JSON.parse(r.stdout.toString()).chunks : r.stderr.trim()
      process.stdout.write(`status ${h.name}${h.name === DISK_HOST ? ' (full disk)' : ''}: ${JSON.stringify(c)}\n`)
    }
  } catch (err) {
    process.stderr.write(`faults: the runner failed: ${(err as Error).stack ?? String(err)}\n`)
    for (const h of hosts) if (h.crashed > 0) process.stderr.write(`${h.name} stderr: ${h.stderr.slice(-2000)}\n`)
    await cleanup()
    return 2
  }
  for (const h of hosts) if (h.crashed > 0) process.stderr.write(`${h.name} crashed: ${h.stderr.slice(-2000)}\n`)
  await cleanup()

  const crashed = rows.reduce((n, r) => n + r.exits + r.internal, 0)
  const injected = rows.reduce((n, r) => n + r.injected, 0)
  const line = (cols: Array<string | number>): string => cols.map((c, i) => String(c).padEnd(i === 0 ? 30 : 10)).join('')
  for (const f of findings) process.stdout.write(`finding: ${f}\n`)
  const findingCount = rows.reduce((n, r) => n + r.findings, 0)
  process.stdout.write(line(['fault', 'injected', 'acked', 'lost', 'wrong', 'crashed', '(exits', 'internal)', 'diverged', 'findings']) + '\n')
  for (const r of rows) process.stdout.write(line([r.fault, r.injected, r.acked, r.lost, r.wrong, r.exits + r.internal, r.exits, r.internal, r.diverged, r.findings]) + '\n')
  process.stdout.write(line(['all', injected, stats.acknowledged, stats.lost, stats.wrong, crashed, '', '', checks.diverged, findingCount]) + '\n')
  process.stdout.write(`reads ${stats.reads} ok, ${stats.readErrors} failed; writes ${stats.writeErrors} failed (not acknowledged); ${checks.converge} convergence checks, ${checks.notices} notice checks; ${((Date.now() - started) / 60_000).toFixed(1)} min; seed ${opts.seed}\n`)
  process.stdout.write(`faults: ${injected} injected, ${stats.acknowledged} acknowledged, ${stats.lost} lost, ${stats.wrong} wrong reads, ${crashed} crashed, ${checks.diverged} diverged\n`)
  return stats.lost === 0 && stats.wrong === 0 && crashed === 0 && findingCount === 0 && checks.diverged === 0 ? 0 : 1

  /** A convergence or notice check that failed: a finding, counted as diverged. */
  function diverged (fault: string, what: string): void {
    checks.diverged++
    row(fault).diverged++
    finding(fault, what)
  }

  /** With writes paused: every live host shows one tree (same digest, same op DAG heads). */
  async function converge (fault: string, after: string): Promise<void> {
    await quiet()
    checks.converge++
    let last = ''
    const one = await until(async () => {
      const views = await Promise.all(live().map(async h => ({ h, t: await new ControlClient(h.dir).get('/v1/tree') as { digest: string, heads: string[], ops: number } })))
      last = views.map(v => `${v.h.name} ${v.t.digest.slice(0, 12)} (${v.t.ops} ops, heads ${v.t.heads.map(x => x.slice(-6)).join(',')})`).join('; ')
      return views.every(v => v.t.digest === views[0].t.digest && v.t.heads.join() === views[0].t.heads.join())
    }, CONVERGE_TIMEOUT_MS)
    if (!one) diverged(fault, `${after}: live hosts show different trees ${CONVERGE_TIMEOUT_MS / 1000} s later: ${last}`)
    paused = false
  }

  /** Every live host has each of `back` among its peers (a restarted or healed host is back). */
  async function backEverywhere (fault: string, back: HostProc[], after: string): Promise<void> {
    for (const h of live()) {
      const want = back.filter(b => b !== h && !b.killed)
      if (want.length === 0) continue
      checks.notices++
      let peers: string[] = []
      const ok = await until(async () => {
        const r = await darkfs(['--data', h.dir, 'peers', '--json'])
        peers = r.code === 0 ? (JSON.parse(r.stdout.toString()) as Array<{ id: string }>).map(p => p.id) : []
        return want.every(b => peers.includes(b.id))
      }, BACK_TIMEOUT_MS)
      if (!ok) diverged(fault, `${after}: ${h.name} does not see ${want.filter(b => !peers.includes(b.id)).map(b => b.name).join(', ')} back`)
    }
  }

  /** kill -9 of 1..REDUNDANCY hosts (at most `max`) at a random moment, restarted later. */
  async function killHosts (max: number): Promise<number> {
    phase = 'kill -9 host'
    await sleep(sched.int(2000, 6000))
    const victims = sched.shuffle(hosts.filter(h => h.name !== 'h1')).slice(0, Math.max(1, Math.min(max, sched.int(1, REDUNDANCY + 1))))
    process.stderr.write(`${phase}: ${victims.map(v => v.name).join(', ')}\n`)
    for (const v of victims) { kill9(v); row(phase).injected++ }
    await sleep(sched.int(3000, 8000))
    for (const v of victims) await start(v)
    await backEverywhere(phase, victims, `restart of ${victims.map(v => v.name).join(', ')}`)
    await converge(phase, `restart of ${victims.map(v => v.name).join(', ')}`)
    return victims.length
  }

  /** kill -9 of a writer mid-write: afterwards the file is its old or new version. */
  async function killWriter (): Promise<void> {
    phase = 'kill -9 writer mid-write'
    const w = host(sched.pick(WRITERS))
    process.stderr.write(`${phase}: ${w.name}\n`)
    const path = `/${w.name}/midwrite`
    await write(w, path, 256 * 1024)
    const before = acked.get(path)
    const inFlight = write(w, path, MAX_FILE_BYTES)
    await sleep(sched.int(50, 600))
    kill9(w)
    row(phase).injected++
    await inFlight
    await start(w)
    const got = await read(w, path)
    if (got === undefined || (got !== before && acked.get(path) !== got && !(attempted.get(path)?.has(got) ?? false))) {
      stats.lost++
      row(phase).lost++
      process.stderr.write(`LOST ${path} after the writer's restart\n`)
    }
    await backEverywhere(phase, [w], `restart of ${w.name}`)
    await converge(phase, `restart of writer ${w.name}`)
  }

  /**
   * One partition/heal cycle: one or two hosts (not h1, h2 or the full-disk host) cut off
   * (underlay link down); both sides write the same path, one deletes what the other writes,
   * both rename one file, and they cross-move two dirs; after the heal, one tree everywhere
   * and the §6 rules.
   */
  async function partition (n: number): Promise<void> {
    phase = 'partition'
    const a = host('h2')
    const side = sched.shuffle(hosts.filter(h => !['h1', 'h2', DISK_HOST].includes(h.name))).slice(0, sched.int(1, 3))
    const b = side[0]
    process.stderr.write(`${phase} ${n}: ${side.map(h => h.name).join(', ')} cut off\n`)
    const dir = `/part-${n}`
    await darkfs(['--data', a.dir, 'mkdir', '-p', `${dir}/x`])
    await darkfs(['--data', a.dir, 'mkdir', '-p', `${dir}/y`])
    await write(a, `${dir}/same`, 64 * 1024)
    await write(a, `${dir}/delwrite`, 64 * 1024)
    await write(a, `${dir}/ren`, 64 * 1024)
    const renHash = acked.get(`${dir}/ren`)
    acked.delete(`${dir}/ren`)
    const seen = await until(async () => (await darkfs(['--data', b.dir, 'stat', `${dir}/ren`])).code === 0 && (await darkfs(['--data', b.dir, 'stat', `${dir}/y`])).code === 0, MERGE_TIMEOUT_MS)
    if (!seen) { diverged(phase, `${dir} never reached ${b.name} before the cut`); return }
    for (const s of side) await mesh!.exec(s.name, 'ip', ['link', 'set', 'ul0', 'down'])
    row(phase).injected++
    await sleep(sched.int(500, 3000))
    // side A: h2 writes `same`, deletes `delwrite`, renames ren -> renA, moves y into x
    await write(a, `${dir}/same`)
    await darkfs(['--data', a.dir, 'rm', `${dir}/delwrite`])
    await darkfs(['--data', a.dir, 'mv', `${dir}/ren`, `${dir}/renA`])
    await darkfs(['--data', a.dir, 'mv', `${dir}/y`, `${dir}/x/y`])
    // side B: writes `same` and `delwrite`, renames ren -> renB, moves x into y
    await write(b, `${dir}/same`)
    await write(b, `${dir}/delwrite`)
    await darkfs(['--data', b.dir, 'mv', `${dir}/ren`, `${dir}/renB`])
    await darkfs(['--data', b.dir, 'mv', `${dir}/x`, `${dir}/y/x`])
    await sleep(sched.int(1000, 20_000))
    for (const s of side) await mesh!.exec(s.name, 'ip', ['link', 'set', 'ul0', 'up'])
    await backEverywhere(phase, hosts, `heal of ${dir}`)
    await converge(phase, `heal of ${dir}`)
    await checkMerge(dir, [a, b, host('h1')], renHash)
  }

  /** After a partition heals: the §6 rules on every given host, and the same listing on all. */
  async function checkMerge (dir: string, on: HostProc[], renHash: string | undefined): Promise<void> {
    const listing = async (h: HostProc, p: string): Promise<string[] | undefined> => {
      const r = await darkfs(['--data', h.dir, 'ls', p])
      return r.code === 0 ? r.stdout.toString().split('\n').filter(Boolean).sort() : undefined
    }
    // the whole subtree, as paths (dirs end in /), on one host
    const tree = async (h: HostProc): Promise<string> => {
      const out: string[] = []
      const walk = async (p: string, depth: number): Promise<void> => {
        const r = await darkfs(['--data', h.dir, 'ls', '-l', p])
        if (r.code !== 0) { out.push(`${p}: ${r.stderr.trim()}`); return }
        // mode nlink uid gid size date time name
        const entries = r.stdout.toString().split('\n').filter(Boolean).map(l => l.trim().split(/\s+/)).map(c => ({ dir: c[0].startsWith('d'), name: c.slice(7).join(' ') }))
        for (const e of entries.sort((x, y) => x.name < y.name ? -1 : 1)) {
          out.push(`${p}/${e.name}${e.dir ? '/' : ''}`)
          if (e.dir && depth < 4) await walk(`${p}/${e.name}`, depth + 1)
        }
      }
      await walk(dir, 0)
      return out.join(' ')
    }
    let trees: string[] = []
    const agreed = await until(async () => {
      trees = []
      for (const h of on) trees.push(await tree(h))
      return trees.every(x => x === trees[0])
    }, MERGE_TIMEOUT_MS)
    if (!agreed) { finding(phase, `${dir}: hosts disagree after the heal: ${on.map((h, i) => `${h.name}: ${trees[i]}`).join(' | ')}`); return }
    const names = await listing(on[0], dir) ?? []
    const conflicts = names.filter(n => n.startsWith('same.conflict-'))
    if (!names.includes('same') || conflicts.length !== 1) finding(phase, `${dir}: want 'same' and one conflict sibling, got ${names.join(' ')}`)
    if (!names.includes('delwrite')) finding(phase, `${dir}: delete beat a concurrent write (delwrite is gone)`)
    const ren = names.filter(n => n === 'ren' || n === 'renA' || n === 'renB')
    if (ren.length !== 1) finding(phase, `${dir}: concurrent renames left ${ren.length} names (${ren.join(' ')})`)
    else if (renHash !== undefined) {
      const r = await darkfs(['--data', on[1].dir, 'cat', `${dir}/${ren[0]}`])
      if (r.code !== 0 || sha(r.stdout) !== renHash) finding(phase, `${dir}/${ren[0]}: renamed file unreadable or changed`)
    }
    // crossed moves: exactly one of x/y holds the other, both reachable once, no cycle
    const t = trees[0].split(' ')
    const xs = t.filter(p => /\/x\/$/.test(p)).length
    const ys = t.filter(p => /\/y\/$/.test(p)).length
    if (xs !== 1 || ys !== 1) finding(phase, `${dir}: crossed moves left x ${xs}x and y ${ys}x reachable: ${trees[0]}`)
  }
}

/** Polls `ok` until it holds (true) or `ms` pass (false). */
async function until (ok: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await ok().catch(() => false)) return true
    if (Date.now() > end) return false
    await sleep(1000)
  }
}

async function listFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await listFiles(p))
    else if (e.isFile()) out.push(p)
  }
  return out
}

process.exitCode = await main()
