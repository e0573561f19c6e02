// What one small fsync and one create cost on N hosts that they do not on one (issue 15), stage
// by stage, not a bench module (index.ts skips `_` files): `npx node scripts/bench/_trace-costs.ts`
// starts DARKFS_TRACE_HOSTS hosts (default 6; 1 for the baseline) in this process on loopback TCP
// and, through host 0's Volume (no mount), runs DARKFS_TRACE_N rounds (default 150) of each of
// DARKFS_TRACE (default fsync16,append,create):
//   fsync16  16 random 4 KiB writes over a 16 MiB file, then fsync (fio's randwrite-fsync16)
//   append   8 KiB appended, then fsync (a WAL's commits)
//   create   a new file of DARKFS_TRACE_FILE_BYTES (default 2000: inline in its op; 12000: a
//            chunk) written and closed (`tar x`), each file's bytes its own
// Per workload: main-thread + pool CPU per round (process.cpuUsage, all hosts: the figure that
// load changes least), and when each stage of the round was reached, in ms from its start
// (medians, p90, means): `commit.start` (Tree.commitMany called on host 0: the open file's
// version is built), `signed` (its op signed and handed to the log), `hold.ask` (Sync.hold
// called: the ask for a peer to hold the op), `commit.durable` (the op log's sync done),
// `peer.written.*` (the holder's Tree.written(): the op is in its log), `hold.done`, `end` (the
// fsync or close returned); beside them, the peers' Tree.receive calls per round and their time,
// and the peers' 'written' op log appends. Then the bytes each protocol sent per round (all hosts,
// both ends: Host.traffic()), the wire's, the gossip bytes each host sent (the holder relaying an
// fsync's ops stands out), and the gossip messages published and received. The
// counters wrap prototype methods and a tree's log: a measuring aid. Workloads run one after
// another in one cluster, so a later one's bytes and CPU carry the folds of the files before it
// (fsync16's 16 MiB file folds once quiet): for clean figures run one at a time.
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { Tree } from '../../node/tree/index.ts'
import { FEATURE_HOLD } from '../../node/net/index.ts'

const n = Number(process.env.DARKFS_TRACE_HOSTS ?? 6)
const N = Number(process.env.DARKFS_TRACE_N ?? 150)
const fileBytes = Number(process.env.DARKFS_TRACE_FILE_BYTES ?? 2000)
const which = (process.env.DARKFS_TRACE ?? 'fsync16,append,create').split(',')

let self: Tree | undefined
/** The round being traced: stage -> ms since its start (or a sum), and the round's start. */
let cur: Record<string, number> | undefined
let t0 = 0
const mark = (k: string): void => { if (cur !== undefined && cur[k] === undefined) cur[k] = performance.now() - t0 }
const add = (k: string, v: number): void => { if (cur !== undefined) cur[k] = (cur[k] ?? 0) + v }
const written: number[] = []

const commitMany = Tree.prototype.commitMany
Tree.prototype.commitMany = async function (this: Tree, bodies: any[], durability?: any, opts: any = {}) {
  if (this !== self) return await commitMany.call(this, bodies, durability, opts)
  mark('commit.start')
  const stamped = opts.stamped
  try {
    return await commitMany.call(this, bodies, durability, { ...opts, stamped: (ops: any) => { mark('signed'); stamped?.(ops) } })
  } finally {
    mark('commit.durable')
  }
} as any
const receive = Tree.prototype.receive
Tree.prototype.receive = async function (this: Tree, ...args: any[]) {
  const s = performance.now()
  try {
    return await (receive as any).apply(this, args)
  } finally {
    if (this !== self) { add('peer.receives', 1); add('peer.receiveMs', performance.now() - s) }
  }
} as any
const treeWritten = Tree.prototype.written
Tree.prototype.written = async function (this: Tree) {
  if (this !== self) mark('peer.written.start')
  try {
    return await treeWritten.call(this)
  } finally {
    if (this !== self) mark('peer.written.end')
  }
}

function stat (xs: number[]): string {
  if (xs.length === 0) return '-'
  const s = [...xs].sort((a, b) => a - b)
  return `median ${s[s.length >> 1].toFixed(2)} p90 ${s[Math.floor(s.length * 0.9)].toFixed(2)} mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2)}`
}

const t = new Teardown()
try {
  const hosts = await startCluster(t, n, { transport: 'tcp' })
  if (n > 1) {
    await until('full mesh', () => hosts.every(h => h.host.peers().length === n - 1), 60_000)
    await until('every peer announces hold', () => hosts[0].host.peers().every(p => hosts[0].features.supports(p.id, FEATURE_HOLD)), 60_000)
  }
  self = hosts[0].tree
  for (const h of hosts.slice(1)) {
    const log = (h.tree as any).log
    const append = log.append.bind(log)
    log.append = async (records: Uint8Array[], durability?: string) => {
      const s = performance.now()
      try {
        return await append(records, durability)
      } finally {
        if (durability === 'written' && cur !== undefined) written.push(performance.now() - s)
      }
    }
  }
  const sync = hosts[0].sync as any
  const hold = sync.hold
  sync.hold = async (...args: any[]) => {
    mark('hold.ask')
    try { return await hold(...args) } finally { mark('hold.done') }
  }
  const v = hosts[0].volume
  const traffic = (): Map<string, number> => {
    const out = new Map<string, number>()
    for (const h of hosts) {
      const s = h.host.traffic()
      out.set('wire', (out.get('wire') ?? 0) + s.wire.sent)
      for (const [p, x] of Object.entries(s.protocols)) out.set(p, (out.get(p) ?? 0) + x.sent)
    }
    return out
  }
  /** What host 0, the author, sent: its wire bytes and per protocol. */
  const authored = (): Map<string, number> => {
    const s = hosts[0].host.traffic()
    const out = new Map<string, number>([['wire', s.wire.sent]])
    for (const [p, x] of Object.entries(s.protocols)) out.set(p, x.sent)
    return out
  }
  /** The gossip bytes each host sent (who relays an fsync's ops to the others). */
  const meshsubSent = (): number[] => hosts.map(h => Object.entries(h.host.traffic().protocols).reduce((n, [p, x]) => p.startsWith('/meshsub/') ? n + x.sent : n, 0))
  const gossip = (): { published: number, receives: number } => {
    let published = 0
    let receives = 0
    for (const h of hosts) {
      const s = h.sync.stats()
      published += s.publishedMessages
      receives += s.gossipReceives
    }
    return { published, receives }
  }
  const run = async (name: string, step: (i: number) => Promise<void>, traced: (i: number) => Promise<void>): Promise<void> => {
    const rounds: Array<Record<string, number>> = []
    written.length = 0
    const tr0 = traffic()
    const mesh0 = meshsubSent()
    const a0 = authored()
    const g0 = gossip()
    const c0 = process.cpuUsage()
    const w0 = performance.now()
    for (let i = 0; i < N; i++) {
      await step(i)
      cur = {}
      t0 = performance.now()
      await traced(i)
      mark('end')
      rounds.push(cur)
      cur = undefined
    }
    // the gossip of the last rounds goes out (GOSSIP_PUBLISH_GATHER_MS) and is counted
    await new Promise(resolve => setTimeout(resolve, 1500))
    const cpu = process.cpuUsage(c0)
    const tr = traffic()
    const a = authored()
    const g = gossip()
    const mesh = meshsubSent().map((x, i) => (x - mesh0[i]) / N)
    process.stdout.write(`${name}, ${n} host(s): ${N} rounds in ${((performance.now() - w0) / 1000).toFixed(2)} s, CPU per round ${((cpu.user + cpu.system) / 1000 / N).toFixed(2)} ms (system ${(cpu.system / 1000 / N).toFixed(2)})\n`)
    const stages = new Set<string>()
    for (const r of rounds) for (const k of Object.keys(r)) stages.add(k)
    for (const k of stages) {
      const xs = rounds.filter(r => r[k] !== undefined).map(r => r[k])
      process.stdout.write(`  ${k.padEnd(18)} ${stat(xs)} (${xs.length})\n`)
    }
    if (written.length > 0) process.stdout.write(`  peers' written log appends: ${stat(written)} ms (${written.length})\n`)
    const sent = [...tr].map(([p, x]) => [p, x - (tr0.get(p) ?? 0)] as const).filter(([, x]) => x > 0).sort((a, b) => b[1] - a[1])
    process.stdout.write(`  bytes sent per round: ${sent.slice(0, 8).map(([p, x]) => `${p} ${(x / N).toFixed(0)}`).join(', ') || 'none'}\n`)
    const byAuthor = [...a].map(([p, x]) => [p, x - (a0.get(p) ?? 0)] as const).filter(([, x]) => x > 0).sort((a, b) => b[1] - a[1])
    process.stdout.write(`  bytes the author (host 0) sent per round: ${byAuthor.slice(0, 6).map(([p, x]) => `${p} ${(x / N).toFixed(0)}`).join(', ') || 'none'}\n`)
    process.stdout.write(`  gossip bytes each host sent per round (host 0 first): ${mesh.map(x => x.toFixed(0)).join(' ')}\n`)
    process.stdout.write(`  gossip messages per round: published ${((g.published - g0.published) / N).toFixed(2)}, taken in (all hosts) ${((g.receives - g0.receives) / N).toFixed(2)}\n`)
  }
  if (which.includes('fsync16')) {
    const size = 16 << 20
    const fh = await v.open('/fio.bin', 'w+')
    const mib = new Uint8Array(1 << 20).fill(7)
    for (let at = 0; at < size; at += mib.byteLength) await fh.write(mib, 0, mib.byteLength, at)
    await fh.sync()
    const page = new Uint8Array(4096)
    await run('fsync16', async () => {
      for (let j = 0; j < 16; j++) {
        page.fill(Math.floor(Math.random() * 256))
        await fh.write(page, 0, page.byteLength, Math.floor(Math.random() * (size / 4096)) * 4096)
      }
    }, async () => { await fh.sync() })
    await fh.close()
  }
  if (which.includes('append')) {
    const fh = await v.open('/wal.bin', 'w+')
    let at = 0
    const bytes = new Uint8Array(8192)
    await run('append 8 KiB', async () => {
      bytes.fill(at & 255)
      await fh.write(bytes, 0, bytes.byteLength, at)
      at += bytes.byteLength
    }, async () => { await fh.sync() })
    await fh.close()
  }
  if (which.includes('create')) {
    await v.mkdir('/d')
    const bytes = new Uint8Array(fileBytes)
    await run(`create ${fileBytes} bytes`, async () => {}, async i => {
      // each file's own bytes: equal chunks would be stored and placed once
      bytes.fill(i & 255)
      bytes[0] = i >> 8
      const fh = await v.open(`/d/f${i}`, 'w')
      await fh.write(bytes, 0, bytes.byteLength, 0)
      await fh.close()
    })
  }
} finally {
  await t.run()
}
