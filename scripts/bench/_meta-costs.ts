// What each file of a metadata-heavy workload costs (issue 15's `tar x` and `git clone`), not a
// bench module (index.ts skips `_` files): `npx node scripts/bench/_meta-costs.ts` starts a
// cluster of DARKFS_DRIVE_HOSTS hosts (default 1) on loopback TCP in this process, mounts host 0
// (and the last host too, as compare.ts's darkfs-6 does), and runs `tar x` of an archive of
// DARKFS_DRIVE_TAR_DIR (default /usr/include/linux) made on the local disk first, or with
// DARKFS_DRIVE_WORK=git-clone `git clone --no-local` of compare.ts's 1,000-file repository. It prints
// seconds, the process's CPU seconds, and per file extracted: op commits (Tree.commitMany: one
// log append each), local ops by type, ops received by all hosts (Tree.receive), block puts
// (Store.putMany, all hosts), and the FUSE requests by kind with their summed time. With
// DARKFS_DRIVE_PROF=FILE it writes a CPU profile of the run (summarise it with
// scripts/prof-summary.ts). The counters wrap prototype methods: a measuring aid. Store.has calls
// (have-queries answered and survey lookups, all hosts) and repair passes started are counted too,
// and each FUSE request kind seen 20 times or more has its p50/p90/p99/max printed.
import { mkdtemp, chmod, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'
import { mount } from '../../fuse/index.ts'
import { sh } from './_proc.ts'
import { makeGitSource } from './_compare-work.ts'
import { Store } from '../../node/data/index.ts'
import { Tree } from '../../node/tree/index.ts'

const n = Number(process.env.DARKFS_DRIVE_HOSTS ?? 1)
const src = process.env.DARKFS_DRIVE_TAR_DIR ?? '/usr/include/linux'
const prof = process.env.DARKFS_DRIVE_PROF
const work = process.env.DARKFS_DRIVE_WORK ?? 'tar'
const c = { puts: 0, blocks: 0, commits: 0, ops: 0, receives: 0, received: 0, has: 0, passes: 0 }
const putMany = Store.prototype.putMany
Store.prototype.putMany = async function (this: Store, blocks: any[], opts?: any) { c.puts++; c.blocks += blocks.length; return await putMany.call(this, blocks, opts) } as any
// Store.has: every have-query's answer and every survey's local lookup, on all hosts
const has = Store.prototype.has
Store.prototype.has = async function (this: Store, cid: any) { c.has++; return await has.call(this, cid) } as any
const commitMany = Tree.prototype.commitMany
// (every argument passed on: a wrapper that dropped `durability` made every commit durable)
Tree.prototype.commitMany = async function (this: Tree, bodies: any[], ...rest: any[]) { c.commits++; c.ops += bodies.length; return await commitMany.call(this, bodies, ...rest) } as any
const receive = Tree.prototype.receive
Tree.prototype.receive = async function (this: Tree, blocks: any[]) { c.receives++; c.received += blocks.length; return await receive.call(this, blocks) } as any
const types = new Map<string, number>()

const t = new Teardown()
try {
  const base = await tempDir(t, 'darkfs-meta-')
  await chmod(base, 0o755)
  const tarball = join(base, 'src.tar')
  const gitSource = work === 'git-clone' ? await makeGitSource(base) : ''
  if (work !== 'git-clone') await sh('tar', ['cf', tarball, '-C', src, '.'], { timeoutMs: 600_000 })
  const files = work === 'git-clone'
    ? Number((await sh('sh', ['-c', `git -C ${gitSource} ls-files | wc -l`], { timeoutMs: 60_000 })).stdout.trim())
    : Number((await sh('sh', ['-c', `tar tf ${tarball} | wc -l`], { timeoutMs: 60_000 })).stdout.trim())
  const hosts = await startCluster(t, n, { transport: 'tcp' })
  await until('full mesh', () => hosts.every(h => h.host.peers().length === n - 1), 60_000)
  // repair passes started, all hosts
  for (const h of hosts) h.keep.repairer.addEventListener('start', () => { c.passes++ })
  const fops = new Map<string, [number, number]>()
  const mountOn = async (i: number, onOp?: (op: string, sec: number) => void): Promise<string> => {
    const dir = await mkdtemp(join(base, `mnt${i}-`))
    const m = await mount(hosts[i].volume, dir, onOp === undefined ? {} : { onOp })
    onEachOp(hosts[i].tree, (op, local) => {
      if (local) return
      for (const path of hosts[i].volume.changedPaths(op.body)) m.invalidate(path)
    })
    t.add(async () => { await m.unmount() })
    return dir
  }
  const durs = new Map<string, number[]>()
  const dir = await mountOn(0, (op, sec) => { const x = fops.get(op) ?? [0, 0]; x[0]++; x[1] += sec; fops.set(op, x); const d = durs.get(op) ?? []; d.push(sec * 1000); durs.set(op, d) })
  if (n > 1) await mountOn(n - 1)
  onEachOp(hosts[0].tree, (op, local) => {
    if (!local) return
    types.set(op.body.type, (types.get(op.body.type) ?? 0) + 1)
  })
  const session = new Session()
  if (prof !== undefined) {
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 500 })
    await session.post('Profiler.start')
  }
  const cpu = process.cpuUsage()
  const into = join(dir, 'x')
  const r = work === 'git-clone'
    ? await sh('git', ['clone', '-q', '--no-local', gitSource, into], { timeoutMs: 3_600_000 })
    : (await sh('mkdir', [into], { timeoutMs: 60_000 }), await sh('tar', ['xf', tarball, '-C', into], { timeoutMs: 3_600_000 }))
  if (r.code !== 0) throw new Error(`${work} failed: ${r.stderr}`)
  const used = process.cpuUsage(cpu)
  if (prof !== undefined) {
    const { profile } = await session.post('Profiler.stop')
    await writeFile(prof, JSON.stringify(profile))
    session.disconnect()
  }
  const per = (x: number): string => (x / files).toFixed(2)
  process.stdout.write(`${work === 'git-clone' ? 'git clone' : `tar x ${src}`} (${files} entries) hosts=${n}: ${r.seconds.toFixed(2)} s, cpu ${((used.user + used.system) / 1e6).toFixed(2)} s; per entry: commits ${per(c.commits)} ops ${per(c.ops)} received ${per(c.received)} (in ${per(c.receives)} calls) puts ${per(c.puts)} blocks ${per(c.blocks)} has ${per(c.has)}; repair passes ${c.passes}\n`)
  process.stdout.write('  local ops per entry: ' + [...types].map(([k, v]) => `${k}=${per(v)}`).join(' ') + '\n')
  process.stdout.write('  fuse per entry: ' + [...fops].sort((a, b) => b[1][1] - a[1][1]).map(([k, [cnt, s]]) => `${k}=${per(cnt)}/${(s * 1000 / files).toFixed(1)}ms`).join(' ') + '\n')
  for (const [op, d] of durs) {
    if (d.length < 20) continue
    d.sort((a, b) => a - b)
    const q = (f: number): string => d[Math.min(d.length - 1, Math.floor(f * d.length))].toFixed(1)
    process.stdout.write(`  ${op}: n ${d.length} p50 ${q(0.5)} p90 ${q(0.9)} p99 ${q(0.99)} max ${d[d.length - 1].toFixed(1)} top5 sum ${d.slice(-5).reduce((a, b) => a + b, 0).toFixed(0)} ms\n`)
  }
} finally {
  await t.run()
}
process.exit(0)
