// What each fsync of the small-write workloads costs (issue 15), not a bench module (index.ts
// skips `_` files): `npx node scripts/bench/_sqlite-costs.ts` starts a cluster of
// DARKFS_DRIVE_HOSTS hosts (default 1) on loopback TCP, mounts host 0 and runs the SQLite
// workloads of compare.ts (journal_mode DELETE, then WAL) and fio's 4 KiB random writes with an
// fsync every 16 (DARKFS_DRIVE=delete,wal,fsync16 chooses). Per workload it prints seconds (IOPS
// for fio), the process's CPU seconds, block puts (Store.putMany calls, all hosts) and the time
// spent in them and the bytes they held (putMB), op commits (Tree.commitMany: one log append each) and ops, host 0's local ops by
// type and file (name suffix: '' is the database, '?' a file with no name left), and the FUSE
// requests by kind with their summed time; DARKFS_DRIVE_STRACE=1 also writes sqlite3's syscall
// counts to /tmp/sq/strace-<workload>.txt. The counters wrap prototype methods: a measuring aid.
// fsync16: DARKFS_DRIVE_MIB (file size, default 16) and DARKFS_DRIVE_SECONDS (default 10); it
// also counts the disk syncs made (FileHandle sync/datasync, and writes to O_DSYNC files: the op
// log's appends) per fio fsync, and with DARKFS_DRIVE_PROF=DIR writes a CPU profile of the
// measured run alone to DIR/fsync16.cpuprofile, and each SQLite run's to DIR/<workload>.cpuprofile
// (scripts/prof-summary.ts reads them). Per workload also: host 0's fsync time split (the fsyncs'
// commits, the file's commit turn in them; host 0's durable op commits, closes' too) and each
// committed version whose placement, on an fsync's path, took more than SLOW_PLACE_MS to survive
// one lost host (the file, its size, the blocks it placed), and the peers' receive stages
// (Tree.receiveStats over the workload; the ms per signature check among them).
// DARKFS_DRIVE=fsync16,delete runs SQLite after fio's writes;
// DARKFS_DRIVE=git runs compare.ts's `git clone --no-local` of 1,000 files into the mount.
import { mkdtemp, chmod, writeFile, open, mkdir, rm } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'
import { mount } from '../../fuse/index.ts'
import { sh } from './_proc.ts'
import { Store } from '../../node/data/index.ts'
import { Tree } from '../../node/tree/index.ts'
import { makeGitSource } from './_compare-work.ts'
import { Volume, OpenFile } from '../../node/index.ts'
import { ChunkService, ChunkWrite } from '../../node/data/index.ts'
import { OpHold } from '../../node/net/index.ts'

const n = Number(process.env.DARKFS_DRIVE_HOSTS ?? 1)
const which = (process.env.DARKFS_DRIVE ?? 'delete,wal,fsync16').split(',')
const mib = Number(process.env.DARKFS_DRIVE_MIB ?? 16)
const seconds = Number(process.env.DARKFS_DRIVE_SECONDS ?? 10)
const profDir = process.env.DARKFS_DRIVE_PROF
const c = { puts: 0, blocks: 0, putBytes: 0, commits: 0, ops: 0, putMs: 0, commitMs: 0, fsyncMs: 0 }
const putMany = Store.prototype.putMany
Store.prototype.putMany = async function (this: Store, blocks: any[], opts?: any) { c.puts++; c.blocks += blocks.length; for (const b of blocks) c.putBytes += b.bytes.byteLength; const t0 = performance.now(); try { return await putMany.call(this, blocks, opts) } finally { c.putMs += performance.now() - t0 } } as any
const commitMany = Tree.prototype.commitMany
Tree.prototype.commitMany = async function (this: Tree, bodies: any[], ...rest: any[]) { c.commits++; c.ops += bodies.length; const t0 = performance.now(); try { return await (commitMany as any).call(this, bodies, ...rest) } finally { c.commitMs += performance.now() - t0 } } as any
// what host 0's fsyncs wait for after their commit: Volume.placed() (every tracked wait), the
// peer holds (OpHold.held) and the safe placements (ChunkService.place with safe) in it
const waits = { placed: [0, 0], held: [0, 0], place: [0, 0], early: [0, 0], track: [0, 0] }
const timed = (proto: any, name: string, k: keyof typeof waits, when: (args: any[]) => boolean = () => true): void => {
  const f = proto[name]
  proto[name] = async function (this: any, ...args: any[]) {
    if (!when(args)) return await f.apply(this, args)
    const t0 = performance.now()
    try { return await f.apply(this, args) } finally {
      waits[k][0]++
      waits[k][1] += performance.now() - t0
      if (k !== 'track') note(`  wait ${k} done (${(performance.now() - t0).toFixed(1)} ms)`)
    }
  }
}
timed(Volume.prototype, 'placed', 'placed')
timed(OpHold.prototype, 'held', 'held')
timed(ChunkService.prototype, 'place', 'place', args => args[1]?.safe === true && args[0]?.length > 0)
timed(ChunkWrite.prototype, 'placed', 'early')
{
  // every wait an fsync may meet (Volume.track): how long each tracked promise took
  const track = (Volume.prototype as any).track
  ;(Volume.prototype as any).track = function (this: any, inode: string, placing: Promise<void>) {
    const t0 = performance.now()
    return track.call(this, inode, placing.finally(() => { waits.track[0]++; waits.track[1] += performance.now() - t0 }))
  }
}
// the committed versions whose placement an fsync may wait for (Volume.placeCommitted) that took
// longer than SLOW_PLACE_MS to survive one lost host: what each held (refs: the manifest and the
// chunks not placed early; early: chunks placed before the commit), printed per workload
const SLOW_PLACE_MS = 50
const slow: string[] = []
{
  const placeCommitted = (Volume.prototype as any).placeCommitted
  ;(Volume.prototype as any).placeCommitted = function (this: any, f: any, cc: any, ...rest: any[]) {
    const t0 = performance.now()
    const name = (this.tree.path(this.tree.entries(f.inode)[0]?.id ?? '') ?? '?').split('/').pop()
    const what = `${name} size ${cc.size}: refs ${cc.refs.map((r: any) => `${r.size} B k=${r.k}`).join(', ') || '-'}${cc.placing !== undefined ? ', early chunks' : ''}`
    placeCommitted.call(this, f, cc, ...rest)
    const mine = [...(this.placing.get(f.inode) ?? [])].at(-1)
    mine?.done.then(() => { const ms = performance.now() - t0; if (ms > SLOW_PLACE_MS) slow.push(`${ms.toFixed(0)} ms ${what}`) })
  }
}
// where host 0's fsyncs spend their time: Volume.commitFile('safe') whole, its OpenFile.commit
// (the file's queue, building the version: local block puts, the op commit) and every durable
// op commit of host 0 (Volume.stamp: an fsync's, a close's)
const split = { fsync: [0, 0], build: [0, 0], commit: [0, 0] }
// the timeline's note of a stage (DARKFS_DRIVE_TIMELINE; set once the cluster runs)
let note = (_what: string): void => {}
{
  const wrap = (proto: any, name: string, k: keyof typeof split, when: (args: any[]) => boolean): void => {
    const f = proto[name]
    proto[name] = async function (this: any, ...args: any[]) {
      if (!when(args)) return await f.apply(this, args)
      const t0 = performance.now()
      if (k === 'fsync') note('  fsync commit starts')
      try { return await f.apply(this, args) } finally {
        split[k][0]++
        split[k][1] += performance.now() - t0
        note(`  ${k} done (${(performance.now() - t0).toFixed(1)} ms)`)
      }
    }
  }
  wrap(Volume.prototype, 'commitFile', 'fsync', a => a[1] === 'safe')
  wrap(OpenFile.prototype, 'commit', 'build', a => a[1]?.sync === true)
  wrap(Volume.prototype, 'stamp', 'commit', a => a[1] === 'durable')
}
// the timeline's stages inside a commit's build: chunks assembled, stored (early), made durable
{
  const stage = (proto: any, name: string, what: string): void => {
    const f = proto[name]
    proto[name] = async function (this: any, ...args: any[]) {
      const t0 = performance.now()
      try { return await f.apply(this, args) } finally { note(`    ${what} (${(performance.now() - t0).toFixed(1)} ms)`) }
    }
  }
  stage(OpenFile.prototype, 'assemble', 'chunk assembled')
  stage(ChunkWrite.prototype, 'chunk', 'chunk stored early')
  stage(ChunkWrite.prototype, 'durable', 'early chunks durable')
  stage(ChunkService.prototype, 'storeManifest', 'manifest stored')
  // the log sync a file handle's fsync makes after its commit (the file's create, its attributes)
  stage(Tree.prototype, 'sync', 'op log synced')
}
const types = new Map<string, number>()
// disk syncs: fsync/fdatasync calls (the op log's appends are O_DSYNC writes: one per commit at most)
const syncs = { sync: 0, datasync: 0, syncMs: 0, writes: 0, writeMs: 0 }
{
  const probe = await open('/proc/self/stat', 'r')
  const FH = Object.getPrototypeOf(probe)
  await probe.close()
  const sync = FH.sync
  const datasync = FH.datasync
  FH.sync = async function (this: any) { syncs.sync++; const t0 = performance.now(); try { return await sync.call(this) } finally { syncs.syncMs += performance.now() - t0 } }
  // writes at a position (the op log's O_DSYNC appends; block files are written whole by writeFile)
  const write = FH.write
  FH.write = async function (this: any, ...args: any[]) { syncs.writes++; const t0 = performance.now(); try { return await write.apply(this, args) } finally { syncs.writeMs += performance.now() - t0 } }
  FH.datasync = async function (this: any) { syncs.datasync++; return await datasync.call(this) }
}

function script (journal: string): string {
  const lines = [`PRAGMA journal_mode=${journal};`, 'CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER);', 'BEGIN;',
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) INSERT INTO t (a, b) SELECT hex(randomblob(32)), x FROM c;', 'COMMIT;']
  for (let i = 0; i < 100; i++) lines.push(`INSERT INTO t (a, b) VALUES ('row ${i}', ${i});`)
  lines.push('UPDATE t SET b = b + 1 WHERE id % 10 = 0;', 'DELETE FROM t WHERE id % 3 = 0;', 'VACUUM;')
  return lines.join('\n') + '\n'
}

const t = new Teardown()
try {
  const base = await mkdtemp(join(tmpdir(), 'darkfs-drive-'))
  // removed last (steps run newest first: after the unmount and the cluster's stop)
  t.add(async () => { await rm(base, { recursive: true, force: true }) })
  await chmod(base, 0o755)
  const hosts = await startCluster(t, n, { transport: 'tcp' })
  await until('full mesh', () => hosts.every(h => h.host.peers().length === n - 1), 60_000)
  const dir = await mkdtemp(join(base, 'mnt-'))
  const fops = new Map<string, [number, number]>()
  let mark = (_what: string): void => {}
  const m = await mount(hosts[0].volume, dir, { onOp: (op, sec) => { const x = fops.get(op) ?? [0, 0]; x[0]++; x[1] += sec; fops.set(op, x); if (op === 'fsync') mark(`fsync answered: ${(sec * 1000).toFixed(1)} ms`) } })
  t.add(async () => { await m.unmount() })
  const tr = hosts[0].tree as any
  let opBytes = 0
  // DARKFS_DRIVE_TIMELINE=1: one line per op host 0 makes and per fsync it answers, in ms from
  // the workload's start, with the swarm bytes host 0 sent since the line before
  const timeline = process.env.DARKFS_DRIVE_TIMELINE === '1'
  const lines: string[] = []
  let t0 = performance.now()
  let swarm0 = 0
  const swarmSent = (): number => hosts[0].host.traffic().protocols['/darkfs/swarm/1.2.0']?.sent ?? 0
  mark = (what: string): void => {
    if (!timeline) return
    const s = swarmSent()
    lines.push(`    ${(performance.now() - t0).toFixed(1).padStart(8)} ms  ${what}${s !== swarm0 ? `  swarm +${s - swarm0} B` : ''}`)
    swarm0 = s
  }
  note = what => { mark(what) }
  onEachOp(hosts[0].tree, (op, local) => {
    if (!local) return
    opBytes += op.bytes.byteLength
    const b: any = op.body
    let name = '?'
    try { const id = b.inode ?? b.entry; name = (tr.path(tr.entries(id)[0]?.id ?? id) ?? '?').split('/').pop() } catch {}
    const k = `${b.type}:${name.replace(/^db\.sqlite/, '')}`
    types.set(k, (types.get(k) ?? 0) + 1)
    mark(`op ${k} ${op.bytes.byteLength} B${b.at !== undefined ? ` at ${b.at}` : ''}${b.size !== undefined ? ` size ${b.size}` : ''}`)
  })
  const strace = process.env.DARKFS_DRIVE_STRACE === '1'
  const syncTotals = (): Record<'relayedOps' | 'handedOps' | 'carriedOps' | 'returnedOps' | 'holdFetches', number> => {
    const sum = { relayedOps: 0, handedOps: 0, carriedOps: 0, returnedOps: 0, holdFetches: 0 }
    for (const h of hosts) for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += (h.sync.stats() as any)[k] ?? 0
    return sum
  }
  // the peers' receives (Tree.receiveStats summed over hosts 1 to n-1: a hold's ask is one)
  const receives = (): Record<string, number> => {
    const sum: Record<string, number> = {}
    for (const h of hosts.slice(1)) for (const [k, v] of Object.entries(h.tree.receiveStats())) sum[k] = (sum[k] ?? 0) + v
    return sum
  }
  // block-store sync rounds (Store.groupCommits: each job writes its blocks, syncs each file, then each directory)
  const groupJobs = (): { jobs: number, blocks: number, jobs0: number } => {
    const sum = { jobs: 0, blocks: 0, jobs0: hosts[0].store.groupCommits()?.jobs ?? 0 }
    for (const h of hosts) { const g = h.store.groupCommits(); sum.jobs += g?.jobs ?? 0; sum.blocks += g?.blocks ?? 0 }
    return sum
  }
  for (const w of which) {
    Object.assign(c, { puts: 0, blocks: 0, putBytes: 0, commits: 0, ops: 0, putMs: 0, commitMs: 0, fsyncMs: 0 }); types.clear(); fops.clear()
    for (const x of Object.values(waits)) x.fill(0)
    for (const x of Object.values(split)) x.fill(0)
    slow.length = 0
    const cpu = process.cpuUsage()
    let jobs0 = groupJobs()
    let sent0 = hosts[0].host.traffic()
    let sync0 = syncTotals()
    let recv0 = receives()
    opBytes = 0
    lines.length = 0
    t0 = performance.now()
    swarm0 = swarmSent()
    let s: number
    if (w === 'fsync16') {
      const f = join(dir, 'fio.bin')
      await sh('fio', ['--name=prep', `--filename=${f}`, '--ioengine=psync', `--size=${mib}M`, '--rw=write', '--bs=1M', '--end_fsync=1'], { timeoutMs: 600_000 })
      await until('placed', () => hosts[0].network.pending.size === 0, 600_000)
      Object.assign(c, { puts: 0, blocks: 0, putBytes: 0, commits: 0, ops: 0, putMs: 0, commitMs: 0, fsyncMs: 0 }); types.clear(); fops.clear()
      Object.assign(syncs, { sync: 0, datasync: 0, syncMs: 0, writes: 0, writeMs: 0 })
      sent0 = hosts[0].host.traffic()
      sync0 = syncTotals()
      recv0 = receives()
      jobs0 = groupJobs()
      opBytes = 0
      const session = new Session()
      if (profDir !== undefined) {
        session.connect()
        await session.post('Profiler.enable')
        await session.post('Profiler.start')
      }
      const r = await sh('fio', ['--name=r', `--filename=${f}`, '--ioengine=psync', `--size=${mib}M`, '--rw=randwrite', '--fsync=16', '--bs=4k', '--time_based', `--runtime=${seconds}`, '--output-format=json'], { timeoutMs: 600_000 })
      if (profDir !== undefined) {
        const { profile } = await session.post('Profiler.stop')
        session.disconnect()
        await mkdir(profDir, { recursive: true })
        await writeFile(join(profDir, 'fsync16.cpuprofile'), JSON.stringify(profile))
      }
      const job = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))).jobs[0]
      s = job.write.iops
      const fsyncs = Math.max(1, job.sync?.total_ios ?? Math.round(job.write.total_ios / 16))
      process.stdout.write(`  per fio fsync (${fsyncs}): fsync/fdatasync ${((syncs.sync + syncs.datasync) / fsyncs).toFixed(2)} (${(syncs.syncMs / Math.max(1, syncs.sync)).toFixed(1)} ms each), handle writes ${(syncs.writes / fsyncs).toFixed(2)} (${(syncs.writeMs / Math.max(1, syncs.writes)).toFixed(1)} ms each), commits ${(c.commits / fsyncs).toFixed(2)}, block puts ${(c.puts / fsyncs).toFixed(2)}, blocks ${(c.blocks / fsyncs).toFixed(2)}; heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB, file extents ${hosts[0].tree.foldSpan(hosts[0].tree.lookup(hosts[0].tree.root, 'fio.bin')?.inode ?? '')} since the oldest read\n`)
    } else if (w === 'git') {
      const src = await makeGitSource(base)
      Object.assign(c, { puts: 0, blocks: 0, putBytes: 0, commits: 0, ops: 0, putMs: 0, commitMs: 0, fsyncMs: 0 }); types.clear(); fops.clear()
      const r = strace
        ? await sh('sh', ['-c', `strace -f -c -o /tmp/sq/strace-git.txt git clone -q --no-local ${src} ${join(dir, 'clone')}`], { timeoutMs: 600_000 })
        : await sh('git', ['clone', '-q', '--no-local', src, join(dir, 'clone')], { timeoutMs: 600_000 })
      s = r.seconds
    } else {
      const d = join(dir, `sqlite-${w}`)
      await sh('mkdir', ['-p', d])
      const sqlf = join(base, `${w}.sql`)
      await writeFile(sqlf, script(w.toUpperCase()))
      const session = new Session()
      if (profDir !== undefined) {
        session.connect()
        await session.post('Profiler.enable')
        await session.post('Profiler.start')
      }
      const r = strace
        ? await sh('sh', ['-c', `strace -f -c -o /tmp/sq/strace-${w}.txt sqlite3 -bail ${join(d, 'db.sqlite')} < ${sqlf}`], { timeoutMs: 600_000 })
        : await sh('sh', ['-c', `sqlite3 -bail ${join(d, 'db.sqlite')} < ${sqlf}`], { timeoutMs: 600_000 })
      if (profDir !== undefined) {
        const { profile } = await session.post('Profiler.stop')
        session.disconnect()
        await mkdir(profDir, { recursive: true })
        await writeFile(join(profDir, `${w}.cpuprofile`), JSON.stringify(profile))
      }
      s = r.seconds
    }
    const used = process.cpuUsage(cpu)
    process.stdout.write(`${w} hosts=${n}: ${s.toFixed(2)} cpu=${((used.user + used.system) / 1e6).toFixed(2)} putMs=${c.putMs.toFixed(0)} commitMs=${c.commitMs.toFixed(0)} puts=${c.puts} blocks=${c.blocks} putMB=${(c.putBytes / 1e6).toFixed(2)} commits=${c.commits} ops=${c.ops} types=${JSON.stringify(Object.fromEntries(types))}\n`)
    const jobs1 = groupJobs()
    {
      const r = receives()
      for (const k of Object.keys(r)) r[k] -= recv0[k]
      process.stdout.write(`  peers' receives: ${Object.entries(r).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ')}; ${(r.verifyMs / Math.max(1, r.verified)).toFixed(2)} ms a signature check\n`)
    }
    process.stdout.write(`  block group commits (sync rounds): all hosts ${jobs1.jobs - jobs0.jobs} writing ${jobs1.blocks - jobs0.blocks} blocks; host 0 ${jobs1.jobs0 - jobs0.jobs0}\n`)
    process.stdout.write(`  fsync time (host 0): ${split.fsync[0]} fsyncs' commits ${split.fsync[1].toFixed(0)} ms, of which the file's commit turn ${split.build[1].toFixed(0)} ms; durable op commits (closes' too) ${split.commit[0]}/${split.commit[1].toFixed(0)} ms\n`)
    process.stdout.write(`  placements past ${SLOW_PLACE_MS} ms on an fsync's path: ${slow.length}${slow.map(x => `\n    ${x}`).join('')}\n`)
    process.stdout.write(`  fsync waits (host 0): placed() ${waits.placed[0]}/${waits.placed[1].toFixed(0)}ms, peer holds ${waits.held[0]}/${waits.held[1].toFixed(0)}ms, safe placements ${waits.place[0]}/${waits.place[1].toFixed(0)}ms, early chunks' placements ${waits.early[0]}/${waits.early[1].toFixed(0)}ms, tracked waits ${waits.track[0]}/${waits.track[1].toFixed(0)}ms\n`)
    // what host 0, the writer, uploaded against the bytes of the ops it made (gossip's last messages
    // of the run may still be under way: GOSSIP_PUBLISH_GATHER_MS)
    const sent = hosts[0].host.traffic()
    const byProtocol = Object.entries(sent.protocols).map(([p, x]) => [p, x.sent - (sent0.protocols[p]?.sent ?? 0)] as const).filter(([, x]) => x > 0).sort((a, b) => b[1] - a[1])
    process.stdout.write(`  host 0 sent ${(sent.wire.sent - sent0.wire.sent) / 1e6} MB on the wire for ${(opBytes / 1e6).toFixed(3)} MB of its ops: ${byProtocol.slice(0, 6).map(([p, x]) => `${p} ${(x / 1e6).toFixed(3)}`).join(', ')}\n`)
    // the relay of fsyncs' ops (net/sync.ts "Relay"): all hosts
    const sync1 = syncTotals()
    process.stdout.write(`  relay: ${Object.entries(sync1).map(([k, v]) => `${k} ${v - sync0[k as keyof typeof sync0]}`).join(', ')}\n`)
    if (timeline) process.stdout.write(`  timeline (host 0):\n${lines.join('\n')}\n`)
    process.stdout.write('  fuse: ' + [...fops].map(([k, [c, t]]) => `${k}=${c}/${(t * 1000).toFixed(0)}ms`).join(' ') + '\n')
  }
} finally {
  await t.run()
}
process.exit(0)
