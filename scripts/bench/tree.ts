// Micro-benchmarks of the metadata tree (issue 15 item 8), with the host's own signer and
// verifier (node/net signing.ts: Ed25519 in node:crypto, key objects cached per author):
//  - remote apply: APPLY_OPS ops made by another replica, received in causal order in batches of
//    APPLY_BATCH (sync's message size); the figure covers all of receive(): decode (hash, CID,
//    dag-cbor, shape checks) + signature check + causal order + journal append (one write and one
//    fdatasync per batch) + DAG insert + CRDT apply + the 'ops' event. Rates per wall second, per CPU
//    second of the main thread (what "on one core" means: the tree runs there; the machine may
//    be busy) and per CPU second of the whole process (V8's background compiling and marking,
//    libuv's file writes too), and the wall time per op of each stage: of the least main-thread
//    CPU of APPLY_RUNS runs, each by a fresh replica;
//  - merge: two replicas share a base, diverge by DIVERGE ops each (creates, writes, setattrs,
//    moves, interleaved in time), then exchange in one receive() each way (the same stages, with
//    undo/redo of the interleaved ops); wall ms, main-thread CPU ms and whole-process CPU ms;
//  - local commit rates, and reopening (replay of the log);
//  - memory of the merge's first receive (node:v8 GCProfiler): bytes allocated and garbage
//    collection time during it, and heap bytes it leaves alive per op received (after a full GC);
//  - the process's minor page faults during each merge receive and each remote apply run: a
//    first touch of a page costs ~13 us of CPU on this VM (scripts/bench/_fresh-warm.ts), so a
//    run that touches fresh memory (a fresh process's first merge: ~11k faults) shows in its CPU.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GCProfiler, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { generateKeyPair } from '@libp2p/crypto/keys'
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { cidOf } from '../../node/tree/index.ts'
import { Tree, type OpBody, type Signer, type InodeId, type ReceiveStats } from '../../node/tree/index.ts'
import { signerFor, verify } from '../../node/net/index.ts'

/** Ops each replica makes while apart. */
export const DIVERGE = 10_000
/** Local commits in flight at once for the batched commit rate (they share fsyncs). */
export const CONCURRENCY = 64
/** Commits timed one after another (one fsync each). */
export const SERIAL = 300

/** Ops made by one replica and applied by another in the remote apply run. */
export const APPLY_OPS = 10_000
/** Ops per receive() in the remote apply run (sync's DEFAULT_MAX_BATCH). */
export const APPLY_BATCH = 256
/** Replicas that each apply the remote apply run's ops (the least main-thread CPU is reported). */
export const APPLY_RUNS = 3

async function signer (): Promise<Signer> {
  return signerFor(await generateKeyPair('Ed25519'))
}

const now = (): bigint => BigInt(Date.now()) * 1_000_000n
const enc = new TextEncoder()

/** The i-th op of a replica's divergent run, in its own directory `home` and the shared files. */
export function body (i: number, home: InodeId, shared: InodeId[], mine: InodeId[], tag: string): OpBody {
  const time = now()
  switch (i % 5) {
    case 0:
    case 1: return { type: 'create', parent: home, name: `f${i}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: enc.encode(`${tag}${i}`) }, size: `${tag}${i}`.length, time }
    case 2: return { type: 'write', inode: shared[i % shared.length], content: { inline: enc.encode(`${tag}-w${i}`) }, size: `${tag}-w${i}`.length, time }
    case 3: return { type: 'setattr', inode: shared[(i * 7) % shared.length], mode: i & 0o777, time }
    default: return { type: 'move', entry: mine[(i * 13) % mine.length], parent: home, name: `m${i}`, time }
  }
}

/** Commit `count` ops of a replica's divergent run (body()) to `tree`, CONCURRENCY at a time. */
export async function diverge (tree: Tree, home: InodeId, shared: InodeId[], tag: string, count = DIVERGE): Promise<void> {
  const mine: InodeId[] = [(await tree.commit({ type: 'create', parent: home, name: 'seed', kind: 'file', mode: 0o644, uid: 0, gid: 0, time: now() })).id]
  for (let i = 1; i < count; i += CONCURRENCY) {
    const n = Math.min(CONCURRENCY, count - i)
    const done = await Promise.all(Array.from({ length: n }, async (_, k) => await tree.commit(body(i + k, home, shared, mine, tag))))
    for (let k = 0; k < n; k++) if ((i + k) % 5 <= 1) mine.push(done[k].id)
  }
}

/** The base two replicas share before they diverge: a home directory each and 50 shared files, made on `a` and received by `b`. */
export async function sharedBase (a: Tree, b: Tree): Promise<{ ha: InodeId, hb: InodeId, shared: InodeId[] }> {
  const ha = (await a.commit({ type: 'create', parent: a.root, name: 'a', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() })).id
  const hb = (await a.commit({ type: 'create', parent: a.root, name: 'b', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() })).id
  const shared: InodeId[] = []
  for (let i = 0; i < 50; i++) shared.push((await a.commit({ type: 'create', parent: a.root, name: `s${i}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, time: now() })).id)
  await b.receive(ops(a))
  return { ha, hb, shared }
}

/** Every op block a tree holds (from its heads down). */
export function ops (tree: Tree): Uint8Array[] {
  const out = new Map<string, Uint8Array>()
  const todo = tree.heads()
  while (todo.length > 0) {
    const cid = todo.pop()!
    const s = cid.toString()
    if (out.has(s)) continue
    const bytes = tree.getOp(cid)!
    out.set(s, bytes)
    for (const p of parentsOf(bytes)) todo.push(p)
  }
  return [...out.values()]
}

function parentsOf (bytes: Uint8Array): CID[] {
  return (dagCbor.decode(bytes) as { parents: CID[] }).parents
}

/** Op blocks in causal order (by hlc, which respects causality). */
export function causal (blocks: Uint8Array[]): Uint8Array[] {
  const hlc = (b: Uint8Array): [number, number] => (dagCbor.decode(b) as { hlc: [number, number] }).hlc
  return blocks.map(b => ({ b, h: hlc(b) })).sort((x, y) => x.h[0] - y.h[0] || x.h[1] - y.h[1]).map(x => x.b)
}

/** CPU ms of the whole process since `since` (process.cpuUsage()): every thread, V8's background ones too. */
const cpuMs = (since: NodeJS.CpuUsage): number => { const u = process.cpuUsage(since); return (u.user + u.system) / 1000 }
/** CPU ms of the main thread since `since` (process.threadCpuUsage()): where the tree runs. */
const mainMs = (since: NodeJS.CpuUsage): number => { const u = process.threadCpuUsage(since); return (u.user + u.system) / 1000 }

/** Minor page faults of the whole process since `since` (process.resourceUsage()): first touches of memory, dear on this VM (scripts/bench/_fresh-warm.ts). */
const faults = (since: NodeJS.ResourceUsage): number => process.resourceUsage().minorPageFault - since.minorPageFault

// a full collection on demand, for the heap left alive by a receive (gc() of a new context)
setFlagsFromString('--expose-gc')
const fullGc = runInNewContext('gc') as () => void

/** Run `fn` and say what it allocated (MB), its garbage collection time (ms), and what it left alive (bytes). */
async function memoryOf (fn: () => Promise<void>): Promise<{ allocMB: number, gcMs: number, kept: number }> {
  fullGc()
  const heap0 = process.memoryUsage().heapUsed
  const prof = new GCProfiler()
  prof.start()
  await fn()
  const heap1 = process.memoryUsage().heapUsed
  const r = prof.stop()
  let alloc = 0
  let gcMs = 0
  let last = heap0
  for (const s of r?.statistics ?? []) {
    alloc += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - last)
    last = s.afterGC.heapStatistics.usedHeapSize
    gcMs += s.cost / 1000
  }
  alloc += Math.max(0, heap1 - last)
  fullGc()
  return { allocMB: alloc / 1e6, gcMs, kept: process.memoryUsage().heapUsed - heap0 }
}

function stageFigures (prefix: string, before: ReceiveStats, after: ReceiveStats, ops: number): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of ['decode', 'verify', 'order', 'journal', 'dag', 'crdt', 'events'] as const) {
    const ms = after[`${k}Ms`] - before[`${k}Ms`]
    out[`${prefix}.stage.${k}.usPerOp`] = Math.round(ms * 1000 / ops * 10) / 10
  }
  out[`${prefix}.signaturesChecked`] = after.verified - before.verified
  return out
}

/**
 * Remote apply: one replica's APPLY_OPS ops received by another, in causal order, in batches;
 * APPLY_RUNS times, each by a replica of its own (the same ops): the figures are the run with the
 * least main-thread CPU (the machine may be busy), with every run's main-thread CPU ms beside them.
 */
async function remoteApply (base: string): Promise<Record<string, number | string>> {
  const a = await Tree.open({ dir: join(base, 'ra'), signer: await signer(), verify })
  const receivers: Tree[] = []
  try {
    const home = (await a.commit({ type: 'create', parent: a.root, name: 'h', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() })).id
    const shared: InodeId[] = []
    for (let i = 0; i < 50; i++) shared.push((await a.commit({ type: 'create', parent: a.root, name: `s${i}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, time: now() })).id)
    const shared0 = ops(a)
    const seen = new Set(shared0.map(x => cidOf(x).toString()))
    const mine: InodeId[] = [(await a.commit({ type: 'create', parent: home, name: 'seed', kind: 'file', mode: 0o644, uid: 0, gid: 0, time: now() })).id]
    for (let i = 1; i < APPLY_OPS; i += CONCURRENCY) {
      const n = Math.min(CONCURRENCY, APPLY_OPS - i)
      const done = await Promise.all(Array.from({ length: n }, async (_, k) => await a.commit(body(i + k, home, shared, mine, 'r'))))
      for (let k = 0; k < n; k++) if ((i + k) % 5 <= 1) mine.push(done[k].id)
    }
    const blocks = causal(ops(a).filter(x => !seen.has(cidOf(x).toString())))
    // one signature check alone, per op, for scale
    const one = a.getOp(a.heads()[0]) as Uint8Array
    const d = dagCbor.decode(one) as { author: string, sig: Uint8Array, v: number, body: unknown, hlc: unknown, parents: unknown }
    const unsigned = dagCbor.encode({ v: d.v, body: d.body, author: d.author, hlc: d.hlc, parents: d.parents })
    let t0 = performance.now()
    for (let i = 0; i < 1000; i++) if (!await verify(d.author, unsigned, d.sig)) throw new Error('bad signature')
    const sigUs = (performance.now() - t0)
    let best: { wall: number, main: number, cpu: number, faults: number, before: ReceiveStats, after: ReceiveStats } | undefined
    const runs: number[] = []
    const runFaults: number[] = []
    for (let run = 0; run < APPLY_RUNS; run++) {
      const b = await Tree.open({ dir: join(base, `rb${run}`), signer: await signer(), verify })
      receivers.push(b)
      await b.receive(shared0)
      const before = b.receiveStats()
      const r = process.resourceUsage()
      const cpu = process.cpuUsage()
      const main = process.threadCpuUsage()
      t0 = performance.now()
      for (let i = 0; i < blocks.length; i += APPLY_BATCH) {
        const r = await b.receive(blocks.slice(i, i + APPLY_BATCH))
        if (r.missing.length > 0) throw new Error('remote apply: ops arrived before their parents')
      }
      const wall = performance.now() - t0
      const mainUsed = mainMs(main)
      const cpuUsed = cpuMs(cpu)
      const faulted = faults(r)
      if (b.size !== a.size) throw new Error('remote apply: not every op applied')
      runs.push(Math.round(mainUsed))
      runFaults.push(faulted)
      if (best === undefined || mainUsed < best.main) best = { wall, main: mainUsed, cpu: cpuUsed, faults: faulted, before, after: b.receiveStats() }
      await b.close()
    }
    const r = best as NonNullable<typeof best>
    return {
      'tree.apply.remote.ops': blocks.length,
      'tree.apply.remote.opsPerSec': Math.round(blocks.length / (r.wall / 1000)),
      'tree.apply.remote.opsPerMainThreadCpuSec': Math.round(blocks.length / (r.main / 1000)),
      'tree.apply.remote.mainThreadCpuMs': Math.round(r.main),
      [`tree.apply.remote.mainThreadCpuMs.${APPLY_RUNS}runs`]: runs.join(' '),
      'tree.apply.remote.opsPerCpuSec': Math.round(blocks.length / (r.cpu / 1000)),
      'tree.apply.remote.pageFaults': r.faults,
      [`tree.apply.remote.pageFaults.${APPLY_RUNS}runs`]: runFaults.join(' '),
      ...stageFigures('tree.apply.remote', r.before, r.after, blocks.length),
      'tree.apply.oneSignatureCheck.us': Math.round(sigUs)
    }
  } finally {
    await a.close()
    for (const b of receivers) await b.close()
  }
}

export async function run (): Promise<Record<string, number | string>> {
  const base = await mkdtemp(join(tmpdir(), 'darkfs-bench-tree-'))
  const trees: Tree[] = []
  try {
    const a = await Tree.open({ dir: join(base, 'a'), signer: await signer(), verify })
    const b = await Tree.open({ dir: join(base, 'b'), signer: await signer(), verify })
    trees.push(a, b)
    const { ha, hb, shared } = await sharedBase(a, b)

    let t0 = performance.now()
    for (let i = 0; i < SERIAL; i++) await a.commit({ type: 'setattr', inode: shared[i % shared.length], uid: i, time: now() })
    const serialRate = SERIAL / ((performance.now() - t0) / 1000)
    await b.receive(ops(a).filter(x => !b.hasOp(cidOf(x))))

    t0 = performance.now()
    await Promise.all([diverge(a, ha, shared, 'a'), diverge(b, hb, shared, 'b')])
    const batchedRate = (2 * DIVERGE) / ((performance.now() - t0) / 1000)

    const toB = ops(a).filter(x => !b.hasOp(cidOf(x)))
    const toA = ops(b).filter(x => !a.hasOp(cidOf(x)))
    const sb = b.receiveStats()
    let cpu = process.cpuUsage()
    let main = process.threadCpuUsage()
    let mergeB = 0
    let cpuB = 0
    let mainB = 0
    let faultsB = 0
    const mem = await memoryOf(async () => {
      const r = process.resourceUsage()
      cpu = process.cpuUsage()
      main = process.threadCpuUsage()
      t0 = performance.now()
      await b.receive(toB)
      mergeB = performance.now() - t0
      mainB = mainMs(main)
      cpuB = cpuMs(cpu)
      faultsB = faults(r)
    })
    const stagesB = stageFigures('tree.merge.10k+10k.B', sb, b.receiveStats(), toB.length)
    const r = process.resourceUsage()
    cpu = process.cpuUsage()
    main = process.threadCpuUsage()
    t0 = performance.now()
    await a.receive(toA)
    const mergeA = performance.now() - t0
    const mainA = mainMs(main)
    const cpuA = cpuMs(cpu)
    const faultsA = faults(r)
    const same = JSON.stringify(a.children(a.root).map(e => e.name)) === JSON.stringify(b.children(b.root).map(e => e.name)) && a.conflicts().length === b.conflicts().length

    t0 = performance.now()
    await a.close()
    const reopened = await Tree.open({ dir: join(base, 'a'), signer: await signer(), verify })
    trees[0] = reopened
    const reopenMs = performance.now() - t0

    return {
      'tree.merge.10k+10k.receive.ms': Math.round(Math.max(mergeA, mergeB)),
      'tree.merge.10k+10k.receiveA.ms': Math.round(mergeA),
      'tree.merge.10k+10k.receiveB.ms': Math.round(mergeB),
      'tree.merge.10k+10k.receiveA.mainThreadCpuMs': Math.round(mainA),
      'tree.merge.10k+10k.receiveB.mainThreadCpuMs': Math.round(mainB),
      'tree.merge.10k+10k.receiveA.cpuMs': Math.round(cpuA),
      'tree.merge.10k+10k.receiveB.cpuMs': Math.round(cpuB),
      'tree.merge.10k+10k.receiveA.pageFaults': faultsA,
      'tree.merge.10k+10k.receiveB.pageFaults': faultsB,
      ...stagesB,
      'tree.merge.10k+10k.receiveB.allocMB': Math.round(mem.allocMB),
      'tree.merge.10k+10k.receiveB.gcMs': Math.round(mem.gcMs),
      'tree.merge.10k+10k.receiveB.keptBytesPerOp': Math.round(mem.kept / toB.length),
      'tree.merge.10k+10k.converged': same ? 'yes' : 'NO',
      'tree.merge.10k+10k.conflicts': a.conflicts().length,
      'tree.commit.serial.opsPerSec': Math.round(serialRate),
      [`tree.commit.concurrent${CONCURRENCY}.opsPerSec`]: Math.round(batchedRate),
      'tree.open.20k-ops.ms': Math.round(reopenMs),
      ...await remoteApply(base)
    }
  } finally {
    for (const t of trees) await t.close()
    await rm(base, { recursive: true, force: true })
  }
}


if (import.meta.url === `file://${process.argv[1]}`) console.log(await run())
