// What a replica keeps per op it applies, at scale (issue 15 item 8): one replica commits N ops
// (bench/tree.ts's mix: creates, writes, setattrs, moves), a fresh one receives them in causal
// order, 256 per receive(), as sync brings them; the heap it holds after a full collection,
// less what it held before, per op, at every STEP ops and at the end, with the main-thread CPU
// of each STEP's receives. The op blocks themselves are held by this script before and after
// (their bytes are not counted; the receiver keeps views of them). Not a benchmark of its own
// (the leading _ keeps it out of `npm run bench`).
//   npx node scripts/bench/_apply-mem.ts     N=n ops (1,000,000), STEP=n (100,000)
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Tree, type InodeId, type Signer } from '../../node/tree/index.ts'
import { signerFor, verify } from '../../node/net/index.ts'
import { CONCURRENCY, body } from './tree.ts'
import { onEachOp } from '../../harness/ops.ts'

const N = Number(process.env.N ?? 1_000_000)
const STEP = Number(process.env.STEP ?? 100_000)
const BATCH = 256
const now = (): bigint => BigInt(Date.now()) * 1_000_000n
const signer = async (): Promise<Signer> => signerFor(await generateKeyPair('Ed25519'))

setFlagsFromString('--expose-gc')
const fullGc = runInNewContext('gc') as () => void
const heap = (): number => { fullGc(); return process.memoryUsage().heapUsed }

const base = await mkdtemp(join(tmpdir(), 'darkfs-apply-mem-'))
try {
  // the ops, in the order they were made (a commit's parents are made before it)
  const blocks: Uint8Array[] = []
  const a = await Tree.open({ dir: join(base, 'a'), signer: await signer(), verify })
  onEachOp(a, (op) => { blocks.push(op.bytes) })
  const home = (await a.commit({ type: 'create', parent: a.root, name: 'h', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() })).id
  const shared: InodeId[] = []
  for (let i = 0; i < 50; i++) shared.push((await a.commit({ type: 'create', parent: a.root, name: `s${i}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, time: now() })).id)
  const mine: InodeId[] = [(await a.commit({ type: 'create', parent: home, name: 'seed', kind: 'file', mode: 0o644, uid: 0, gid: 0, time: now() })).id]
  for (let i = 1; blocks.length < N; i += CONCURRENCY) {
    const done = await Promise.all(Array.from({ length: CONCURRENCY }, async (_, k) => await a.commit(body(i + k, home, shared, mine, 'r'))))
    for (let k = 0; k < CONCURRENCY; k++) if ((i + k) % 5 <= 1) mine.push(done[k].id)
  }
  await a.close()
  const ops = blocks.length
  console.log(`${ops} ops made`)
  const h0 = heap()
  const c = await Tree.open({ dir: join(base, 'c'), signer: await signer(), verify })
  try {
    let cpu = process.threadCpuUsage()
    let at = 0
    for (let i = 0; i < ops; i += BATCH) {
      const r = await c.receive(blocks.slice(i, i + BATCH))
      if (r.missing.length > 0) throw new Error('ops arrived before their parents')
      const end = Math.min(ops, i + BATCH)
      if (Math.floor(end / STEP) > Math.floor(i / STEP) || end === ops) {
        const u = process.threadCpuUsage(cpu)
        const ms = (u.user + u.system) / 1000
        const kept = heap() - h0
        console.log(`${end} ops applied: ${Math.round(kept / end)} bytes kept per op (heap ${(kept / 1e6).toFixed(0)} MB, rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB); last ${end - at} ops ${Math.round((end - at) / (ms / 1000))} per main-thread CPU second`)
        at = end
        cpu = process.threadCpuUsage()
      }
    }
    if (c.size !== ops) throw new Error(`not every op applied: ${c.size} of ${ops}`)
  } finally {
    await c.close()
  }
} finally {
  await rm(base, { recursive: true, force: true })
}
