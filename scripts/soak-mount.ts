// `npm run soak:mount [-- --duration S] [-- --seed N]`: a long mixed workload on a real mount,
// every result checked against a model. Minutes; not part of `npm test`; needs root (FUSE, users).
//
// One host (`darkfs up --mount`, a separate process) and WORKERS worker processes: two as root,
// the others as the unprivileged users SOAK_USERS (created with useradd when missing). Each
// worker owns one subtree (w<i>/) and keeps an in-memory model of what it must contain: it
// creates, appends, writes at offsets, reads after writes, renames (also over files and between
// its directories), links, unlinks, truncates (also past the end), chmods, chowns (root
// workers), makes and removes directories, lists directories, stats, and now and then fills a
// directory and empties it the way `rm -rf` does (reading the listing while unlinking), and
// checks after every step that the mount says what the model says. All workers also append
// numbered lines to one shared file (O_APPEND): at the end it must hold every line once, intact.
// A worker ends with a full walk of its subtree against its model.
//
// Prints the seed first (`--seed N` repeats a run's choices), then progress, then operations done
// by kind and every mismatch; exits 1 on any mismatch or a dead mount (EIO, ENOTCONN, the host
// gone), 0 otherwise.
import { spawn, execFile } from 'node:child_process'
import { parseArgs, promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { join, dirname } from 'node:path'
import { mkdir, chmod, chown, readFile, stat } from 'node:fs/promises'
import * as fs from 'node:fs'
import { Teardown, tempDir } from '../harness/tmp.ts'
import { up, darkfs } from '../harness/proc.ts'
import { prng } from '../harness/prng.ts'

const exec = promisify(execFile)
const self = fileURLToPath(import.meta.url)

/** Default run time, seconds. */
export const DEFAULT_DURATION_S = 300
/** Worker processes: the first ROOT_WORKERS run as root, the rest as SOAK_USERS in turn. */
export const WORKERS = 6
export const ROOT_WORKERS = 2
export const SOAK_USERS = ['darkfs-soak1', 'darkfs-soak2']
/** Bounds of one worker's subtree: files (names) and directories. */
const MAX_FILES = 150
const MAX_DIRS = 12
/** Largest file a worker makes, bytes (some exceed the inline bound, some a chunk: 1 MiB). */
const MAX_FILE_BYTES = 1_200_000
/** Entries of a directory filled and emptied rm -rf style. */
const SWEEP_ENTRIES = 300
/** Mismatches printed in full (all are counted). */
const PRINT_MISMATCHES = 50
const DEAD = new Set(['EIO', 'ENOTCONN', 'ECONNABORTED'])

// ---- worker ----------------------------------------------------------------------------------

interface Node { data: Buffer, mode: number, uid: number, gid: number }

interface WorkerReport { id: number, ops: Record<string, number>, mismatches: string[], mismatchCount: number, appended: number, dead?: string }

async function worker (args: Map<string, string>): Promise<void> {
  const root = args.get('root')!
  const shared = args.get('shared')!
  const id = Number(args.get('id'))
  const until = Number(args.get('until'))
  const random = prng(Number(args.get('seed')))
  const owners = (args.get('owners') ?? '').split(',').filter(s => s !== '').map(s => s.split(':').map(Number) as [number, number])
  const uid = Number(args.get('uid'))
  const gid = Number(args.get('gid'))
  if (uid !== 0) {
    process.setgroups!([gid])
    process.setgid!(gid)
    process.setuid!(uid)
  }
  process.umask(0)
  const isRoot = uid === 0

  const files = new Map<string, Node>() // relative path -> node (hard links share a node)
  const dirs = new Set<string>(['']) // relative paths of directories ('' = the worker's root)
  const gone: string[] = [] // names removed lately: must be absent
  const report: WorkerReport = { id, ops: {}, mismatches: [], mismatchCount: 0, appended: 0 }
  let seq = 0

  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]
  const abs = (rel: string): string => rel === '' ? root : join(root, rel)
  const nlink = (n: Node): number => { let c = 0; for (const m of files.values()) if (m === n) c++; return c }
  const bytes = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(n)
    let i = 0
    for (; i + 4 <= n; i += 4) b.writeUInt32LE((random() * 0x100000000) >>> 0, i)
    for (; i < n; i++) b[i] = (random() * 256) | 0
    return b
  }
  const size = (): number => {
    const r = random()
    if (r < 0.5) return Math.floor(random() * 2000)
    if (r < 0.9) return Math.floor(random() * 20_000)
    return Math.floor(random() * MAX_FILE_BYTES)
  }
  const newName = (prefix: string): string => {
    const dir = pick([...dirs])
    return (dir === '' ? '' : dir + '/') + `${prefix}${id}-${seq++}`
  }
  const mismatch = (what: string): void => {
    report.mismatchCount++
    if (report.mismatches.length < PRINT_MISMATCHES) report.mismatches.push(what)
    process.stderr.write(`worker ${id}: MISMATCH ${what}\n`)
  }
  const childrenOf = (dir: string): string[] => {
    const out = new Set<string>()
    const prefix = dir === '' ? '' : dir + '/'
    for (const p of [...files.keys(), ...dirs]) {
      if (p === '' || !p.startsWith(prefix)) continue
      const rest = p.slice(prefix.length)
      if (!rest.includes('/')) out.add(rest)
    }
    return [...out].sort()
  }
  const checkStat = (rel: string, why: string): void => {
    const st = fs.lstatSync(abs(rel))
    const n = files.get(rel)
    if (n === undefined) {
      if (!st.isDirectory()) mismatch(`${why}: ${rel} should be a directory`)
      return
    }
    if (!st.isFile()) { mismatch(`${why}: ${rel} should be a file`); return }
    if (st.size !== n.data.length) mismatch(`${why}: ${rel} size ${st.size}, model ${n.data.length}`)
    if ((st.mode & 0o7777) !== n.mode) mismatch(`${why}: ${rel} mode ${(st.mode & 0o7777).toString(8)}, model ${n.mode.toString(8)}`)
    if (st.uid !== n.uid || st.gid !== n.gid) mismatch(`${why}: ${rel} owner ${st.uid}:${st.gid}, model ${n.uid}:${n.gid}`)
    if (st.nlink !== nlink(n)) mismatch(`${why}: ${rel} nlink ${st.nlink}, model ${nlink(n)}`)
  }
  const checkContent = (rel: string, why: string): void => {
    const n = files.get(rel)!
    const got = fs.readFileSync(abs(rel))
    if (!got.equals(n.data)) {
      let at = 0
      while (at < got.length && at < n.data.length && got[at] === n.data[at]) at++
      mismatch(`${why}: ${rel} content differs (${got.length} bytes, model ${n.data.length}, first difference at ${at})`)
    }
  }
  const fileList = (): string[] => [...files.keys()]
  const removeName = (rel: string): void => { files.delete(rel); gone.push(rel); if (gone.length > 20) gone.shift() }

  const ops: Record<string, { w: number, run: () => Promise<void> | void }> = {
    create: {
      w: 14,
      run () {
        if (files.size >= MAX_FILES) return
        const rel = newName('f')
        const data = bytes(size())
        const mode = pick([0o644, 0o600, 0o664, 0o640])
        fs.writeFileSync(abs(rel), data, { mode })
        files.set(rel, { data, mode, uid, gid })
        checkStat(rel, 'create')
      }
    },
    append: {
      w: 12,
      run () {
        if (files.size === 0) return
        const rel = pick(fileList())
        const n = files.get(rel)!
        if (n.data.length > MAX_FILE_BYTES) return
        const more = bytes(Math.floor(random() * 5000))
        fs.appendFileSync(abs(rel), more)
        n.data = Buffer.concat([n.data, more])
        checkContent(rel, 'append')
      }
    },
    writeAt: {
      w: 5,
      run () {
        if (files.size === 0) return
        const rel = pick(fileList())
        const n = files.get(rel)!
        const at = Math.floor(random() * (n.data.length + 3000))
        const piece = bytes(1 + Math.floor(random() * 6000))
        const fd = fs.openSync(abs(rel), 'r+')
        try { fs.writeSync(fd, piece, 0, piece.length, at) } finally { fs.closeSync(fd) }
        const next = Buffer.alloc(Math.max(n.data.length, at + piece.length))
        n.data.copy(next)
        piece.copy(next, at)
        n.data = next
        checkContent(rel, 'write at offset')
      }
    },
    read: {
      w: 12,
      run () {
        if (files.size > 0) checkContent(pick(fileList()), 'read')
      }
    },
    stat: {
      w: 10,
      run () {
        if (gone.length > 0 && random() < 0.3) {
          const rel = pick(gone)
          if (files.has(rel) || dirs.has(rel)) return
          try {
            fs.lstatSync(abs(rel))
            mismatch(`stat: ${rel} was removed but is there`)
          } catch (err: any) {
            if (err.code !== 'ENOENT') throw err
          }
          return
        }
        const all = [...fileList(), ...[...dirs].filter(d => d !== '')]
        if (all.length > 0) checkStat(pick(all), 'stat')
      }
    },
    rename: {
      w: 8,
      run () {
        if (files.size === 0) return
        const from = pick(fileList())
        const to = random() < 0.3 && files.size > 1 ? pick(fileList()) : newName('r')
        if (to === from) return
        fs.renameSync(abs(from), abs(to))
        const n = files.get(from)!
        if (files.get(to) === n) return // two names of one file: POSIX leaves both
        files.set(to, n)
        removeName(from)
        checkStat(to, 'rename')
        checkContent(to, 'rename')
      }
    },
    link: {
      w: 5,
      run () {
        if (files.size === 0 || files.size >= MAX_FILES) return
        const from = pick(fileList())
        const to = newName('l')
        fs.linkSync(abs(from), abs(to))
        files.set(to, files.get(from)!)
        checkStat(from, 'link (old name)')
        checkStat(to, 'link (new name)')
      }
    },
    unlink: {
      w: 8,
      run () {
        if (files.size === 0) return
        const rel = pick(fileList())
        const n = files.get(rel)!
        fs.unlinkSync(abs(rel))
        removeName(rel)
        for (const [p, m] of files) if (m === n) { checkStat(p, 'unlink (other name)'); break }
      }
    },
    truncate: {
      w: 5,
      run () {
        if (files.size === 0) return
        const rel = pick(fileList())
        const n = files.get(rel)!
        const len = Math.floor(random() * (n.data.length + 8192))
        fs.truncateSync(abs(rel), len)
        const next = Buffer.alloc(len)
        n.data.copy(next, 0, 0, Math.min(len, n.data.length))
        n.data = next
        checkStat(rel, 'truncate')
        checkContent(rel, 'truncate')
      }
    },
    chmod: {
      w: 5,
      run () {
        if (files.size === 0) return
        const rel = pick(fileList())
        const n = files.get(rel)!
        if (n.uid !== uid && !isRoot) return
        const mode = pick([0o600, 0o640, 0o644, 0o664, 0o755, 0o700])
        fs.chmodSync(abs(rel), mode)
        n.mode = mode
        checkStat(rel, 'chmod')
      }
    },
    chown: {
      w: isRoot ? 5 : 0,
      run () {
        if (files.size === 0 || owners.length === 0) return
        const rel = pick(fileList())
        const n = files.get(rel)!
        const [u, g] = pick(owners)
        fs.chownSync(abs(rel), u, g)
        n.uid = u
        n.gid = g
        checkStat(rel, 'chown')
      }
    },
    mkdir: {
      w: 3,
      run () {
        if (dirs.size >= MAX_DIRS) return
        const rel = newName('d')
        fs.mkdirSync(abs(rel), { mode: 0o755 })
        dirs.add(rel)
        checkStat(rel, 'mkdir')
      }
    },
    rmdir: {
      w: 2,
      run () {
        const empty = [...dirs].filter(d => d !== '' && childrenOf(d).length === 0)
        if (empty.length === 0) return
        const rel = pick(empty)
        fs.rmdirSync(abs(rel))
        dirs.delete(rel)
        gone.push(rel)
      }
    },
    readdir: {
      w: 8,
      run () {
        const dir = pick([...dirs])
        const got = fs.readdirSync(abs(dir)).sort()
        const want = childrenOf(dir)
        if (got.join('/') !== want.join('/')) mismatch(`readdir ${dir === '' ? '.' : dir}: [${got.join(' ')}], model [${want.join(' ')}]`)
      }
    },
    sharedAppend: {
      w: 8,
      run () {
        fs.appendFileSync(shared, `w${id} ${report.appended}\n`)
        report.appended++
      }
    },
    sweep: {
      w: 1,
      async run () {
        // fill a directory, then empty it as rm -rf does: read the listing while unlinking
        const rel = newName('s')
        const dir = abs(rel)
        fs.mkdirSync(dir)
        const names = new Set<string>()
        for (let i = 0; i < SWEEP_ENTRIES; i++) { fs.writeFileSync(join(dir, `e${i}`), ''); names.add(`e${i}`) }
        const seen = new Set<string>()
        const d = await fs.promises.opendir(dir, { bufferSize: 32 })
        for await (const e of d) {
          if (seen.has(e.name)) mismatch(`sweep ${rel}: ${e.name} listed twice while unlinking`)
          if (!names.has(e.name)) mismatch(`sweep ${rel}: ${e.name} listed but never made`)
          seen.add(e.name)
          await fs.promises.unlink(join(dir, e.name))
        }
        const left = fs.readdirSync(dir)
        if (left.length > 0 || seen.size !== names.size) mismatch(`sweep ${rel}: listed ${seen.size} of ${names.size} while unlinking; ${left.length} left: ${left.slice(0, 5).join(' ')}`)
        for (const name of left) fs.unlinkSync(join(dir, name))
        fs.rmdirSync(dir)
      }
    }
  }

  const table: Array<[string, number]> = Object.entries(ops).map(([k, v]) => [k, v.w])
  const total = table.reduce((a, [, w]) => a + w, 0)
  const choose = (): string => {
    let r = random() * total
    for (const [k, w] of table) { if ((r -= w) < 0) return k }
    return table[0][0]
  }

  let lastProgress = Date.now()
  while (Date.now() < until) {
    const kind = choose()
    try {
      await ops[kind].run()
      report.ops[kind] = (report.ops[kind] ?? 0) + 1
    } catch (err: any) {
      if (DEAD.has(err?.code)) { report.dead = `${kind}: ${String(err.message)}`; break }
      mismatch(`${kind}: unexpected ${String(err?.code ?? '')} ${String(err?.message ?? err)}`)
    }
    if (Date.now() - lastProgress > 10_000) {
      lastProgress = Date.now()
      const done = Object.values(report.ops).reduce((a, b) => a + b, 0)
      process.stderr.write(`worker ${id}: ${done} ops, ${report.mismatchCount} mismatches\n`)
    }
  }

  // the whole subtree against the model
  if (report.dead === undefined) {
    try {
      const onDisk = new Set<string>()
      const walk = (rel: string): void => {
        for (const e of fs.readdirSync(abs(rel), { withFileTypes: true })) {
          const p = rel === '' ? e.name : rel + '/' + e.name
          onDisk.add(p)
          if (e.isDirectory()) walk(p)
        }
      }
      walk('')
      for (const p of onDisk) if (!files.has(p) && !dirs.has(p)) mismatch(`final walk: ${p} is there, the model has no such name`)
      for (const p of [...files.keys(), ...dirs]) if (p !== '' && !onDisk.has(p)) mismatch(`final walk: ${p} is missing`)
      for (const p of files.keys()) if (onDisk.has(p)) { checkStat(p, 'final walk'); checkContent(p, 'final walk') }
    } catch (err: any) {
      if (DEAD.has(err?.code)) report.dead = `final walk: ${String(err.message)}`
      else mismatch(`final walk: unexpected ${String(err?.code ?? '')} ${String(err?.message ?? err)}`)
    }
  }
  process.stdout.write(JSON.stringify(report) + '\n')
}

// ---- the run ---------------------------------------------------------------------------------

async function ensureUser (name: string): Promise<{ uid: number, gid: number }> {
  const id = async (): Promise<{ uid: number, gid: number }> => {
    const { stdout } = await exec('id', [name])
    const m = /uid=(\d+).*gid=(\d+)/.exec(stdout)
    if (m === null) throw new Error(`id ${name}: ${stdout}`)
    return { uid: Number(m[1]), gid: Number(m[2]) }
  }
  try {
    return await id()
  } catch {
    // no such user yet: made here, as test/fuse/permissions does
    await exec('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', name])
    return await id()
  }
}

function runWorker (args: string[]): Promise<{ code: number | null, report?: WorkerReport, stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [self, '--worker', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); process.stderr.write(d) })
    child.on('exit', code => {
      const last = out.trim().split('\n').at(-1)
      let report: WorkerReport | undefined
      try { report = last !== undefined && last !== '' ? JSON.parse(last) : undefined } catch { report = undefined } // no report: counted as a failed worker below
      resolve({ code, report, stderr: err })
    })
  })
}

async function main (): Promise<number> {
  const usage = 'usage: npm run soak:mount -- [--duration S] [--seed N]'
  let values: { duration?: string, seed?: string, help?: boolean }
  try {
    values = parseArgs({ args: process.argv.slice(2), options: { duration: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean' } }, strict: true }).values
  } catch (err) {
    process.stderr.write(`soak:mount: ${(err as Error).message}\n${usage}\n`)
    return 2
  }
  if (values.help === true) { process.stdout.write(usage + '\n'); return 0 }
  const duration = Number(values.duration ?? DEFAULT_DURATION_S)
  const seed = Number(values.seed ?? Math.floor(Math.random() * 2 ** 31))
  if (!Number.isFinite(duration) || duration <= 0 || !Number.isInteger(seed)) { process.stderr.write(usage + '\n'); return 2 }
  process.stdout.write(`soak:mount seed ${seed} duration ${duration} s workers ${WORKERS}\n`)
  if (process.getuid?.() !== 0) throw new Error('soak:mount needs root (FUSE mount, test users)')

  const t = new Teardown()
  try {
    const base = await tempDir(t, 'darkfs-soak-')
    await chmod(base, 0o755)
    const data = join(base, 'data')
    const mnt = join(base, 'mnt')
    await mkdir(mnt)
    const init = await darkfs(['init', '--data', data, '--new-network'])
    if (init.code !== 0) throw new Error(`darkfs init: ${init.stderr}`)
    const host = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--mount', mnt])
    await host.waitFor(/^mounted /)
    t.add(async () => { await host.stop('SIGTERM') })

    const users = await Promise.all(SOAK_USERS.map(ensureUser))
    const owners = [{ uid: 0, gid: 0 }, ...users].map(u => `${u.uid}:${u.gid}`).join(',')
    const shared = join(mnt, 'shared', 'log')
    await mkdir(dirname(shared), { mode: 0o777 })
    await chmod(dirname(shared), 0o777)
    const until = Date.now() + duration * 1000
    const started = Date.now()
    const runs = []
    for (let i = 0; i < WORKERS; i++) {
      const who = i < ROOT_WORKERS ? { uid: 0, gid: 0 } : users[(i - ROOT_WORKERS) % users.length]
      const root = join(mnt, `w${i}`)
      await mkdir(root, { mode: 0o755 })
      await chown(root, who.uid, who.gid)
      runs.push(runWorker(['root', root, 'shared', shared, 'id', String(i), 'seed', String(seed * 31 + i), 'until', String(until),
        'uid', String(who.uid), 'gid', String(who.gid), 'owners', i < ROOT_WORKERS ? owners : ''].map((a, j) => j % 2 === 0 ? `--${a}` : a)))
    }
    const results = await Promise.all(runs)

    const ops: Record<string, number> = {}
    const mismatches: string[] = []
    let mismatchCount = 0
    const dead: string[] = []
    const appended = new Map<number, number>()
    for (const [i, r] of results.entries()) {
      if (r.report === undefined) { dead.push(`worker ${i} exited ${String(r.code)} without a report`); continue }
      for (const [k, v] of Object.entries(r.report.ops)) ops[k] = (ops[k] ?? 0) + v
      mismatches.push(...r.report.mismatches.map(m => `worker ${i}: ${m}`))
      mismatchCount += r.report.mismatchCount
      if (r.report.dead !== undefined) dead.push(`worker ${i}: ${r.report.dead}`)
      appended.set(i, r.report.appended)
    }

    // the shared file: every line once, intact, in each writer's order
    try {
      const lines = (await readFile(shared, 'utf8')).split('\n')
      if (lines.at(-1) === '') lines.pop()
      const next = new Map<number, number>()
      const held = new Map<number, Set<number>>()
      let bad = 0
      for (const line of lines) {
        const m = /^w(\d+) (\d+)$/.exec(line)
        if (m === null) { if (bad++ < 5) mismatches.push(`shared log: torn line ${JSON.stringify(line.slice(0, 60))}`); mismatchCount++; continue }
        const w = Number(m[1])
        const n = Number(m[2])
        const want = next.get(w) ?? 0
        if (n !== want) { if (bad++ < 5) mismatches.push(`shared log: worker ${w} line ${n} where ${want} was due`); mismatchCount++ }
        next.set(w, n + 1)
        if (!held.has(w)) held.set(w, new Set())
        held.get(w)!.add(n)
      }
      for (const [w, count] of appended) {
        const intact = held.get(w)?.size ?? 0
        if (intact !== count) { mismatches.push(`shared log: worker ${w} appended ${count} lines, ${count - intact} of them are missing or torn`); mismatchCount++ }
      }
      ops.sharedLogLines = lines.length
    } catch (err: any) {
      if (DEAD.has(err?.code)) dead.push(`shared log: ${String(err.message)}`)
      else { mismatches.push(`shared log: ${String(err?.message ?? err)}`); mismatchCount++ }
    }
    try { await stat(mnt) } catch (err: any) { dead.push(`mount: ${String(err?.code)} ${String(err?.message)}`) }
    if (host.child.exitCode !== null || host.child.signalCode !== null) dead.push(`host exited (${String(host.child.exitCode ?? host.child.signalCode)})`)

    const seconds = (Date.now() - started) / 1000
    const totalOps = Object.entries(ops).filter(([k]) => k !== 'sharedLogLines').reduce((a, [, v]) => a + v, 0)
    process.stdout.write(`soak:mount ${seconds.toFixed(0)} s, ${WORKERS} workers (uids ${results.length > 0 ? [0, ...users.map(u => u.uid)].join(',') : ''}), seed ${seed}\n`)
    process.stdout.write(`operations ${totalOps} (${(totalOps / seconds).toFixed(0)}/s)\n`)
    for (const [k, v] of Object.entries(ops).sort()) process.stdout.write(`  ${k.padEnd(16)} ${v}\n`)
    process.stdout.write(`mismatches ${mismatchCount}\n`)
    for (const m of mismatches) process.stdout.write(`  ${m}\n`)
    process.stdout.write(`dead mount ${dead.length === 0 ? 'no' : 'YES'}\n`)
    for (const d of dead) process.stdout.write(`  ${d}\n`)
    return mismatchCount > 0 || dead.length > 0 ? 1 : 0
  } finally {
    await t.run()
  }
}

if (process.argv[2] === '--worker') {
  const a = process.argv.slice(3)
  const args = new Map<string, string>()
  for (let i = 0; i + 1 < a.length; i += 2) args.set(a[i].replace(/^--/, ''), a[i + 1])
  await worker(args)
} else {
  process.exitCode = await main()
}
