// Merge micro-benchmark of the metadata tree: two replicas share a base, diverge by DIVERGE ops
// each (creates, writes, setattrs, moves, interleaved in time), then exchange: the time for
// receive (verify + fsync + materialise with undo/redo) on each side, and local commit rates.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { cidOf } from '../../node/tree/index.ts'
import { Tree, type OpBody, type Signer, type Verify, type InodeId } from '../../node/tree/index.ts'

/** Ops each replica makes while apart. */
export const DIVERGE = 10_000
/** Local commits in flight at once for the batched commit rate (they share fsyncs). */
export const CONCURRENCY = 64
/** Commits timed one after another (one fsync each). */
export const SERIAL = 300

/** Public keys by author, as a host keeps them (parsing a peer id per op is not the tree's cost). */
const keys = new Map<string, ReturnType<typeof peerIdFromString>['publicKey']>()
const verify: Verify = async (author, bytes, sig) => {
  let pk = keys.get(author)
  if (pk === undefined) {
    pk = peerIdFromString(author).publicKey
    keys.set(author, pk)
  }
  return pk !== undefined && await pk.verify(bytes, sig)
}

async function signer (): Promise<Signer> {
  const key = await generateKeyPair('Ed25519')
  return { author: peerIdFromPrivateKey(key).toString(), sign: async (b) => await key.sign(b) }
}

const now = (): bigint => BigInt(Date.now()) * 1_000_000n
const enc = new TextEncoder()

/** The i-th op of a replica's divergent run, in its own directory `home` and the shared files. */
function body (i: number, home: InodeId, shared: InodeId[], mine: InodeId[], tag: string): OpBody {
  const time = now()
  switch (i % 5) {
    case 0:
    case 1: return { type: 'create', parent: home, name: `f${i}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: enc.encode(`${tag}${i}`) }, size: `${tag}${i}`.length, time }
    case 2: return { type: 'write', inode: shared[i % shared.length], content: { inline: enc.encode(`${tag}-w${i}`) }, size: `${tag}-w${i}`.length, time }
    case 3: return { type: 'setattr', inode: shared[(i * 7) % shared.length], mode: i & 0o777, time }
    default: return { type: 'move', entry: mine[(i * 13) % mine.length], parent: home, name: `m${i}`, time }
  }
}

async function diverge (tree: Tree, home: InodeId, shared: InodeId[], tag: string): Promise<void> {
  const mine: InodeId[] = [(await tree.commit({ type: 'create', parent: home, name: 'seed', kind: 'file', mode: 0o644, uid: 0, gid: 0, time: now() })).id]
  for (let i = 1; i < DIVERGE; i += CONCURRENCY) {
    const n = Math.min(CONCURRENCY, DIVERGE - i)
    const done = await Promise.all(Array.from({ length: n }, async (_, k) => await tree.commit(body(i + k, home, shared, mine, tag))))
    for (let k = 0; k < n; k++) if ((i + k) % 5 <= 1) mine.push(done[k].id)
  }
}

function ops (tree: Tree): Uint8Array[] {
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

export async function run (): Promise<Record<string, number | string>> {
  const base = await mkdtemp(join(tmpdir(), 'darkfs-bench-tree-'))
  const trees: Tree[] = []
  try {
    const a = await Tree.open({ dir: join(base, 'a'), signer: await signer(), verify })
    const b = await Tree.open({ dir: join(base, 'b'), signer: await signer(), verify })
    trees.push(a, b)
    // the shared base
    const ha = (await a.commit({ type: 'create', parent: a.root, name: 'a', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() })).id
    const hb = (await a.commit({ type: 'create', parent: a.root, name: 'b', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() })).id
    const shared: InodeId[] = []
    for (let i = 0; i < 50; i++) shared.push((await a.commit({ type: 'create', parent: a.root, name: `s${i}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, time: now() })).id)
    await b.receive(ops(a))

    let t0 = performance.now()
    for (let i = 0; i < SERIAL; i++) await a.commit({ type: 'setattr', inode: shared[i % shared.length], uid: i, time: now() })
    const serialRate = SERIAL / ((performance.now() - t0) / 1000)
    await b.receive(ops(a).filter(x => !b.hasOp(cidOf(x))))

    t0 = performance.now()
    await Promise.all([diverge(a, ha, shared, 'a'), diverge(b, hb, shared, 'b')])
    const batchedRate = (2 * DIVERGE) / ((performance.now() - t0) / 1000)

    const toB = ops(a).filter(x => !b.hasOp(cidOf(x)))
    const toA = ops(b).filter(x => !a.hasOp(cidOf(x)))
    t0 = performance.now()
    await b.receive(toB)
    const mergeB = performance.now() - t0
    t0 = performance.now()
    await a.receive(toA)
    const mergeA = performance.now() - t0
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
      'tree.merge.10k+10k.converged': same ? 'yes' : 'NO',
      'tree.merge.10k+10k.conflicts': a.conflicts().length,
      'tree.commit.serial.opsPerSec': Math.round(serialRate),
      [`tree.commit.concurrent${CONCURRENCY}.opsPerSec`]: Math.round(batchedRate),
      'tree.open.20k-ops.ms': Math.round(reopenMs)
    }
  } finally {
    for (const t of trees) await t.close()
    await rm(base, { recursive: true, force: true })
  }
}


if (import.meta.url === `file://${process.argv[1]}`) console.log(await run())
