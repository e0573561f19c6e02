// Where the tree's receive spends its time (issue 15 item 8), for work on merge speed: the two
// receive phases of bench/tree.ts (the same ops: creates, writes, setattrs, moves), timed or
// profiled on their own, without the bench's other parts. Not a benchmark of its own (the
// leading _ keeps it out of `npm run bench`).
//   npx node scripts/bench/_tree-prof.ts [OUTDIR]   CPU profiles OUTDIR/apply.cpuprofile and
//                                                   merge.cpuprofile (scripts/prof-summary.ts reads them)
//   HEAP=1   allocation sampling instead (every object, also those collected): MB per function
//   LIVE=1   allocation sampling of what each phase leaves alive (after a full collection): MB per function
//   TIME=1   no profiler: wall ms and main-thread CPU ms of each phase, and receive()'s stages;
//            MONO=1: each phase's start and end on CLOCK_MONOTONIC (for `perf record -k mono`)
//            (wall ms; mergeB: the first receive of the merge) (REPS=n: the best of n
//            runs, each with trees of its own: figures that the load of a shared machine bends less)
//   TYPES=1  (with TIME=1) the time of the CRDT's apply by op type
//   N=n      ops per replica (default 10,000); WSYNC=ms, the trees' writtenSyncMs
// Phases: apply, one replica's N ops received by a third in causal order, 256 per receive();
// merge, two replicas that diverged by N ops each receive each other's in one receive().
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Session } from 'node:inspector/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { cidOf, Tree, type Signer } from '../../node/tree/index.ts'
import { signerFor, verify } from '../../node/net/index.ts'
import { causal, diverge, ops, sharedBase } from './tree.ts'

const out = process.argv[2] ?? tmpdir()
const N = Number(process.env.N ?? 10_000)
const REPS = Number(process.env.REPS ?? 1)
const LIVE = process.env.LIVE === '1'
const HEAP = process.env.HEAP === '1' || LIVE
const TIME = process.env.TIME === '1'
const TYPES = process.env.TYPES === '1'
const BATCH = 256
const now = (): bigint => BigInt(Date.now()) * 1_000_000n
const signer = async (): Promise<Signer> => signerFor(await generateKeyPair('Ed25519'))


/** Apply time by op type: [ms, applies]. */
const byType = new Map<string, [number, number]>()

/** TYPES: time the materialised tree's apply() by op type (its class reached through a tree: node/tree's door does not export it). */
function timeTypes (tree: Tree): void {
  type Apply = (node: { op: { body: { type: string } } }, ...rest: unknown[]) => void
  const proto = Object.getPrototypeOf((tree as unknown as { state: object }).state) as { apply: Apply }
  const apply = proto.apply
  proto.apply = function (this: unknown, node, ...rest): void {
    const t = performance.now()
    try {
      apply.call(this, node, ...rest)
    } finally {
      const k = node.op.body.type
      const e = byType.get(k) ?? [0, 0]
      e[0] += performance.now() - t
      e[1]++
      byType.set(k, e)
    }
  }
}

function types (phase: string): void {
  for (const [k, [ms, n]] of byType) console.log(`${phase} ${k.padEnd(8)} ${n} applies, ${(ms * 1000 / n).toFixed(2)} us each`)
  byType.clear()
}

// a full collection on demand (LIVE), by gc() of a new context
setFlagsFromString('--expose-gc')
const fullGc = runInNewContext('gc') as () => void

const session = new Session()
session.connect()

/** Main-thread CPU ms of each phase (TIME). */
const cpu: Record<string, number> = {}

async function phase (name: string, fn: () => Promise<void>): Promise<number> {
  if (TIME) {
    const c0 = process.threadCpuUsage()
    const t0 = performance.now()
    const m0 = process.hrtime.bigint()
    await fn()
    // the phase on CLOCK_MONOTONIC, in seconds: `perf record -k mono` then `perf report --time FROM,TO`
    if (process.env.MONO === '1') console.log(`${name} ${(Number(m0) / 1e9).toFixed(6)},${(Number(process.hrtime.bigint()) / 1e9).toFixed(6)}`)
    const c = process.threadCpuUsage(c0)
    cpu[name] = Math.round((c.user + c.system) / 1000)
    return performance.now() - t0
  }
  if (HEAP) {
    await session.post('HeapProfiler.enable')
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: !LIVE, includeObjectsCollectedByMinorGC: !LIVE })
  } else {
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 200 })
    await session.post('Profiler.start')
  }
  const t0 = performance.now()
  await fn()
  const ms = performance.now() - t0
  if (HEAP) {
    if (LIVE) fullGc()
    const { profile } = await session.post('HeapProfiler.stopSampling')
    const self = new Map<string, number>()
    const walk = (n: typeof profile.head): void => {
      const k = `${n.callFrame.functionName} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`
      self.set(k, (self.get(k) ?? 0) + n.selfSize)
      for (const c of n.children) walk(c)
    }
    walk(profile.head)
    // CALLERS=fn: which functions the allocations of `fn` (a self entry's name) came from
    if (process.env.CALLERS !== undefined) {
      const by = new Map<string, number>()
      const up = (n: typeof profile.head, path: string[]): void => {
        const here = `${n.callFrame.functionName} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`
        if (n.callFrame.functionName === process.env.CALLERS && n.selfSize > 0) { const k = path.slice(-3).join(' < '); by.set(k, (by.get(k) ?? 0) + n.selfSize) }
        for (const c of n.children) up(c, [...path, here])
      }
      up(profile.head, [])
      for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${(v / 1e6).toFixed(2)} MB from ${k}`)
    }
    let total = 0
    for (const v of self.values()) total += v
    console.log(`${name}: ${(total / 1e6).toFixed(1)} MB ${LIVE ? 'left alive' : 'allocated'}`)
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${(v / 1e6).toFixed(2).padStart(8)} MB  ${k}`)
  } else {
    const { profile } = await session.post('Profiler.stop')
    await writeFile(join(out, `${name}.cpuprofile`), JSON.stringify(profile))
    console.log(`${name}: ${join(out, `${name}.cpuprofile`)}`)
  }
  return ms
}

const best: Record<string, number> = {}
const keep = (k: string, v: number): void => { best[k] = Math.min(best[k] ?? Infinity, Math.round(v)) }
for (let rep = 0; rep < REPS; rep++) {
  const base = await mkdtemp(join(tmpdir(), 'darkfs-tree-prof-'))
  const trees: Tree[] = []
  try {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(async d => await Tree.open({ dir: join(base, d), signer: await signer(), verify, ...(process.env.WSYNC !== undefined ? { writtenSyncMs: Number(process.env.WSYNC) } : {}) })))
    trees.push(a, b, c)
    if (TYPES && rep === 0) timeTypes(a)
    const { ha, hb, shared } = await sharedBase(a, b)
    await c.receive(ops(a))
    await Promise.all([diverge(a, ha, shared, 'a', N), diverge(b, hb, shared, 'b', N)])
    const inOrder = causal(ops(a).filter(x => !c.hasOp(cidOf(x))))
    byType.clear()
    const sc = c.receiveStats()
    keep('apply.ms', await phase('apply', async () => {
      for (let i = 0; i < inOrder.length; i += BATCH) await c.receive(inOrder.slice(i, i + BATCH))
    }))
    if (TIME) {
      const se = c.receiveStats()
      for (const k of ['decodeMs', 'verifyMs', 'orderMs', 'journalMs', 'dagMs', 'crdtMs', 'eventsMs'] as const) keep(`apply.${k}`, se[k] - sc[k])
    }
    if (TYPES) types('apply')
    const toB = ops(a).filter(x => !b.hasOp(cidOf(x)))
    const toA = ops(b).filter(x => !a.hasOp(cidOf(x)))
    const sb = b.receiveStats()
    await phase('merge', async () => {
      let t = performance.now()
      await b.receive(toB)
      if (TIME) {
        const se = b.receiveStats()
        for (const k of ['decodeMs', 'verifyMs', 'orderMs', 'journalMs', 'dagMs', 'crdtMs', 'eventsMs'] as const) keep(`mergeB.${k}`, se[k] - sb[k])
      }
      keep('mergeB.ms', performance.now() - t)
      t = performance.now()
      await a.receive(toA)
      keep('mergeA.ms', performance.now() - t)
    })
    if (TYPES) types('merge')
    for (const [k, v] of Object.entries(cpu)) keep(`${k}.mainThreadCpuMs`, v)
  } finally {
    for (const t of trees) await t.close()
    await rm(base, { recursive: true, force: true })
  }
}
console.log(`${REPS === 1 ? '' : `best of ${REPS}: `}${JSON.stringify(best)}`)
