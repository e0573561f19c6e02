// An early chunk rewritten twice before the commit (A -> B -> C): B overwrites A whole with its
// first quarter (data fragment 0) changed, C patches B's second quarter at the commit. B and C
// share data fragments 2 and 3 with A (and C fragment 0 with B). Released at once by the
// whole-chunk overwrite (before B existed), A's peers deleted them, and B's and C's pushes of
// the same blocks were dropped on arrival as released a moment ago (release.ts
// RELEASE_REMEMBER_MS, 60 s: review38d, C placed ~57 s after the close). C must be placed well
// within that, and read back once the writer is gone.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { ChunkRef, ChunkWrite } from '../../node/data/index.ts'
import { chunksOf, planOnStores } from '../helpers/chunks.ts'
import { RELEASE_REMEMBER_MS } from '../../node/keeper/index.ts'

const MiB = 1 << 20
const PROMISE_MS = 30_000

describe('early chunk rewritten whole, then in part (A -> B -> C)', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]

  before(async () => {
    hosts = await startMesh(t, 6, { daemon: { custodyPromiseMs: PROMISE_MS }, members: true })
  })

  const holders = async (ref: ChunkRef): Promise<string[][]> => await Promise.all(ref.fragments.map(async f => (await Promise.all(hosts.filter(h => !h.stopped).map(async h => await h.store.has(f) ? [h.name] : []))).flat()))
  const nameOf = (peer: string): string => hosts.find(h => h.host.peerId === peer)?.name ?? peer
  const planned = async (ref: ChunkRef): Promise<string[][]> => (await planOnStores(ref, hosts, hosts[1])).want.map(hs => hs.map(nameOf).sort())

  it('the final chunk reads back on another host once the writer is gone', async () => {
    const w = hosts[0]
    const chunks = w.volume.chunks
    const writes: ChunkWrite[] = []
    const write = chunks.write.bind(chunks)
    chunks.write = (opts) => { const cw = write(opts); writes.push(cw); return cw }
    t.add(async () => { chunks.write = write })
    const a = randomBytes(2 * MiB)
    const fh = await w.volume.open('/abc.bin', 'w')
    const Q = MiB / 4
    let A: ChunkRef, B: ChunkRef
    try {
      await fh.write(a, 0, MiB, 0)
      await fh.write(a, MiB, MiB, MiB)
      await until('A stored early', () => writes[0]?.refs[0] !== undefined)
      A = writes[0].refs[0]
      await until('A placed', async () => (await holders(A)).every(hs => hs.length > 0) && !w.network.isPlacing(A.cid!.toString()), 60_000)
      // B: A with its first quarter (data fragment 0) changed, written whole, and moved past again
      const b = Buffer.from(a.subarray(0, MiB))
      randomBytes(Q).copy(b, 0)
      await fh.write(b, 0, MiB, 0)
      await fh.write(a, MiB, MiB, MiB)
      await until('B stored early', () => writes[0].refs.some(r => r !== A && r.offset === 0 && r.cid?.toString() !== A.cid!.toString()))
      B = writes[0].refs.find(r => r.offset === 0 && r.cid?.toString() !== A.cid!.toString())!
      a.set(b.subarray(0, Q), 0)
      // C (at the commit): a patch in fragment 1
      const patch = randomBytes(4096)
      await fh.write(patch, 0, patch.length, Q + 100)
      a.set(patch, Q + 100)
    } finally {
      await fh.close()
    }
    const closedAt = Date.now()
    const [C] = await chunksOf(w, '/abc.bin')
    const keys = (r: ChunkRef): string[] => r.fragments.map(f => f.toString())
    console.log('      C shares with A:', keys(C).map(k => keys(A).includes(k)), 'with B:', keys(C).map(k => keys(B).includes(k)))
    // (the case: the rewrites left fragments 2 and 3 alone)
    assert.ok([2, 3].every(j => keys(A).includes(keys(C)[j]) && keys(B).includes(keys(C)[j])), 'C shares data fragments 2 and 3 with A and B')
    let said = ''
    await until('C on its planned holders', async () => {
      const on = await holders(C)
      const want = await planned(C)
      said = on.map((hs, j) => `f${j} on ${hs.sort().join('+') || 'none'} (planned ${want[j].join('+')})`).join(', ')
      return on.every((hs, j) => want[j].every(p => hs.includes(p)))
      // (well within the time a peer drops a block released a moment ago)
    }, RELEASE_REMEMBER_MS / 2).catch(err => { throw new Error(`${(err as Error).message}: ${said}`) })
    console.log(`      C placed ${Date.now() - closedAt} ms after the close`)
    console.log('      C:', said)
    await w.stop()
    const r = hosts[3]
    r.volume.chunks.dropCache()
    const read = await r.volume.chunks.readChunk(C)
    assert.ok(Buffer.from(read).equals(a.subarray(0, MiB)), 'C reads back without the writer')
  })
})
