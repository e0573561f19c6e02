// The materialised tree's apply alone (crdt.ts TreeState.apply, with undo records, as a merge's
// redo makes them), over the ops of bench/tree.ts's merge (two replicas diverged by N ops each,
// in total order): every op applied to a fresh state, REPS times (the least time per op type and
// in all); then the merge's undo and redo: the base and B's ops applied, B's undone, and both
// replicas' ops applied again in total order, REPS times (the least); of the merge also the
// heap bytes it allocated (mergeAllocMB: its least is nearly the same from run to run, where
// times on a loaded machine are not) and its main-thread CPU (mergeCpuMs). For work on the CRDT's cost per op (issue 15 item 8): a single-threaded loop, which
// the load of a shared machine bends less than a receive. Not a benchmark of its own.
// (The repetitions share one state: what B's undo leaves for its redo counts as in a receive,
// but the untimed put-back between repetitions undoes A's ops too, which a receive never does.)
//   npx node scripts/bench/_crdt-reps.ts        N=n ops per replica (10,000), REPS=n (10)
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getHeapStatistics } from 'node:v8'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { cidOf, Tree, type Signer } from '../../node/tree/index.ts'
import { signerFor, verify } from '../../node/net/index.ts'
import { diverge, ops, sharedBase } from './tree.ts'

const N = Number(process.env.N ?? 10_000)
const REPS = Number(process.env.REPS ?? 10)
const now = (): bigint => BigInt(Date.now()) * 1_000_000n
const signer = async (): Promise<Signer> => signerFor(await generateKeyPair('Ed25519'))


interface Node { op: { body: { type: string } } }
interface State { apply: (node: Node, dag: unknown, record: boolean) => void }

const base = await mkdtemp(join(tmpdir(), 'darkfs-crdt-reps-'))
try {
  const a = await Tree.open({ dir: join(base, 'a'), signer: await signer(), verify })
  const b = await Tree.open({ dir: join(base, 'b'), signer: await signer(), verify })
  const { ha, hb, shared } = await sharedBase(a, b)
  await Promise.all([diverge(a, ha, shared, 'a', N), diverge(b, hb, shared, 'b', N)])
  await b.receive(ops(a).filter(x => !b.hasOp(cidOf(x))))
  // the tree's internals (node/tree's door does not export them): its DAG, its ops in total
  // order, and its state's class
  const inner = b as unknown as { dag: { get: (id: string) => Node | undefined }, applied: Node[], state: object }
  const nodes = inner.applied
  const State = (inner.state as { constructor: new () => State }).constructor
  const best: Record<string, number> = {}
  const count: Record<string, number> = {}
  for (const n of nodes) count[n.op.body.type] = (count[n.op.body.type] ?? 0) + 1
  for (let rep = 0; rep < REPS; rep++) {
    const s = new State()
    const by: Record<string, number> = {}
    const t0 = performance.now()
    for (let i = 0; i < nodes.length; i++) {
      const t = performance.now()
      s.apply(nodes[i], inner.dag, true)
      const k = nodes[i].op.body.type
      by[k] = (by[k] ?? 0) + performance.now() - t
    }
    const all = performance.now() - t0
    best.all = Math.min(best.all ?? Infinity, all)
    for (const [k, v] of Object.entries(by)) best[k] = Math.min(best[k] ?? Infinity, v)
  }
  // the merge's own work: B's state (the shared base, then B's ops), undone to the base, then
  // every op of both in total order; put back (untimed) for the next repetition
  const author = (n: Node): string => (n as unknown as { op: { author: string } }).op.author
  const bAuthor = (b as unknown as { newestLocalOp: { author: string } }).newestLocalOp.author
  // the shared base: the two directories and the shared files, made before the replicas diverged
  const prefix = nodes.slice(0, 52)
  const merged = nodes.slice(52)
  const tail = merged.filter(n => author(n) === bAuthor)
  const s = new State() as State & { j: { mark: () => number, undoTo: (m: number) => void } }
  for (const n of prefix) s.apply(n, inner.dag, true)
  const mark = s.j.mark()
  for (const n of tail) s.apply(n, inner.dag, true)
  for (let rep = 0; rep < REPS; rep++) {
    const a0 = getHeapStatistics().total_allocated_bytes
    const c0 = process.threadCpuUsage()
    const t0 = performance.now()
    s.j.undoTo(mark)
    const t1 = performance.now()
    for (const n of merged) s.apply(n, inner.dag, true)
    const t2 = performance.now()
    const c = process.threadCpuUsage(c0)
    best.mergeCpu = Math.min(best.mergeCpu ?? Infinity, (c.user + c.system) / 1000)
    best.mergeAlloc = Math.min(best.mergeAlloc ?? Infinity, (getHeapStatistics().total_allocated_bytes - a0) / 1e6)
    best.undo = Math.min(best.undo ?? Infinity, t1 - t0)
    best.redo = Math.min(best.redo ?? Infinity, t2 - t1)
    best.merge = Math.min(best.merge ?? Infinity, t2 - t0)
    s.j.undoTo(mark)
    for (const n of tail) s.apply(n, inner.dag, true)
  }
  const out: Record<string, string> = { ops: String(nodes.length), allMs: best.all.toFixed(1), mergeUndone: String(tail.length), mergeRedone: String(merged.length), mergeMs: best.merge.toFixed(1), mergeCpuMs: best.mergeCpu.toFixed(1), mergeAllocMB: best.mergeAlloc.toFixed(2), undoMs: best.undo.toFixed(1), redoMs: best.redo.toFixed(1) }
  for (const k of Object.keys(count)) out[`${k}.usEach`] = (best[k] * 1000 / count[k]).toFixed(2)
  console.log(`best of ${REPS}: ${JSON.stringify(out)}`)
  await a.close()
  await b.close()
} finally {
  await rm(base, { recursive: true, force: true })
}
