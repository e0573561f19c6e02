// What an fsync costs on six hosts (issue 15, six hosts behind GlusterFS), not a bench module
// (index.ts skips `_` files): `npx node scripts/bench/_hold-costs.ts` starts DARKFS_HOLD_HOSTS
// hosts (default 6) in this process on loopback TCP and, through host 0's Volume (no mount),
// times each fsync of two loops:
//   fsync16  16 random 4 KiB writes over a 16 MiB file, then fsync (fio's randwrite-fsync16)
//   append   DARKFS_HOLD_APPEND_KIB (default 8) appended, then fsync (a WAL's commits)
// DARKFS_HOLD_N fsyncs each (default 200). Per loop: the fsync's mean and median, the op commit
// (Tree.commitMany on host 0: sign, log append, fdatasync), the wait for a peer to hold the op
// (OpHold.held) and for Sync.hold's asks, and the streams opened per fsync per protocol (all
// hosts, both ends). The counters wrap prototype methods: a measuring aid.
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { Tree } from '../../node/tree/index.ts'
import { FEATURE_HOLD, OpHold } from '../../node/net/index.ts'

const n = Number(process.env.DARKFS_HOLD_HOSTS ?? 6)
const N = Number(process.env.DARKFS_HOLD_N ?? 200)
const appendKiB = Number(process.env.DARKFS_HOLD_APPEND_KIB ?? 8)
const which = (process.env.DARKFS_HOLD ?? 'fsync16,append').split(',')

const ms = { commit: [] as number[], held: [] as number[], ask: [] as number[], peerSync: [] as number[] }
let self: Tree | undefined
const commitMany = Tree.prototype.commitMany
Tree.prototype.commitMany = async function (this: Tree, bodies: any[]) {
  const t0 = performance.now()
  try { return await commitMany.call(this, bodies) } finally { if (this === self) ms.commit.push(performance.now() - t0) }
} as any
// the peers' side: tree.sync() calls (a hold's, after it took the op) and their time
const treeSync = Tree.prototype.sync
Tree.prototype.sync = async function (this: Tree) {
  const t0 = performance.now()
  try { return await treeSync.call(this) } finally { if (this !== self) ms.peerSync.push(performance.now() - t0) }
}
const held = OpHold.prototype.held
OpHold.prototype.held = async function (this: OpHold, cid: any, op?: any) {
  const t0 = performance.now()
  try { return await (held as any).call(this, cid, op) } finally { ms.held.push(performance.now() - t0) }
}

function stat (xs: number[]): string {
  if (xs.length === 0) return '-'
  const s = [...xs].sort((a, b) => a - b)
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  return `mean ${mean.toFixed(2)} median ${s[s.length >> 1].toFixed(2)} p90 ${s[Math.floor(s.length * 0.9)].toFixed(2)} ms (${xs.length})`
}

const t = new Teardown()
try {
  const hosts = await startCluster(t, n, { transport: 'tcp' })
  await until('full mesh', () => hosts.every(h => h.host.peers().length === n - 1), 60_000)
  await until('every peer announces hold', () => hosts[0].host.peers().every(p => hosts[0].features.supports(p.id, FEATURE_HOLD)), 60_000)
  self = hosts[0].tree
  const sync = hosts[0].sync as any
  const hold = sync.hold
  sync.hold = async (...args: any[]) => {
    const t0 = performance.now()
    try { return await hold(...args) } finally { ms.ask.push(performance.now() - t0) }
  }
  const v = hosts[0].volume
  const streams = (): Map<string, number> => {
    const out = new Map<string, number>()
    for (const h of hosts) for (const [p, { streams }] of Object.entries(h.host.traffic().protocols)) out.set(p, (out.get(p) ?? 0) + streams)
    return out
  }
  const run = async (name: string, setup: () => Promise<(i: number) => Promise<void>>, sync: () => Promise<void>): Promise<void> => {
    const step = await setup()
    const total: number[] = []
    for (const k of Object.keys(ms) as Array<keyof typeof ms>) ms[k].length = 0
    const s0 = streams()
    const c0 = process.cpuUsage()
    const w0 = performance.now()
    for (let i = 0; i < N; i++) {
      await step(i)
      const t0 = performance.now()
      await sync()
      total.push(performance.now() - t0)
    }
    const wall = (performance.now() - w0) / 1000
    const cpu = process.cpuUsage(c0)
    const opened = [...streams()].map(([p, x]) => [p, x - (s0.get(p) ?? 0)] as const).filter(([, x]) => x > 0).sort((a, b) => b[1] - a[1])
    process.stdout.write(`${name}: ${N} fsyncs in ${wall.toFixed(2)} s, CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s\n`)
    process.stdout.write(`  fsync   ${stat(total)}\n  commit  ${stat(ms.commit)}\n  held    ${stat(ms.held)}\n  asks    ${stat(ms.ask)}\n  peers' tree.sync ${stat(ms.peerSync)}\n`)
    process.stdout.write(`  streams per fsync: ${opened.slice(0, 6).map(([p, x]) => `${p} ${(x / N).toFixed(2)}`).join(', ')}\n`)
  }
  if (which.includes('fsync16')) {
    const size = 16 << 20
    let fh: Awaited<ReturnType<typeof v.open>> | undefined
    await run('fsync16', async () => {
      fh = await v.open('/fio.bin', 'w+')
      const mib = new Uint8Array(1 << 20).fill(7)
      for (let at = 0; at < size; at += mib.byteLength) await fh.write(mib, 0, mib.byteLength, at)
      await fh.sync()
      const page = new Uint8Array(4096)
      return async () => {
        for (let j = 0; j < 16; j++) {
          page.fill(Math.floor(Math.random() * 256))
          await fh!.write(page, 0, page.byteLength, Math.floor(Math.random() * (size / 4096)) * 4096)
        }
      }
    }, async () => { await fh!.sync() })
    await fh?.close()
  }
  if (which.includes('append')) {
    let fh: Awaited<ReturnType<typeof v.open>> | undefined
    let at = 0
    await run(`append ${appendKiB} KiB`, async () => {
      fh = await v.open('/wal.bin', 'w+')
      const first = new Uint8Array(64 << 10).fill(1)
      await fh.write(first, 0, first.byteLength, 0)
      at = first.byteLength
      await fh.sync()
      const bytes = new Uint8Array(appendKiB << 10)
      return async () => {
        bytes.fill(Math.floor(Math.random() * 256))
        await fh!.write(bytes, 0, bytes.byteLength, at)
        at += bytes.byteLength
      }
    }, async () => { await fh!.sync() })
    await fh?.close()
  }
} finally {
  await t.run()
}
