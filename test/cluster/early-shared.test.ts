// A chunk placed early (EarlyChunks: the writer moved past it) and then rewritten in part before
// the commit (shared38, noted since session 35): the replacement shares the k - 1 data fragments
// the patch left alone (equal shards, equal CIDs). The replacement's placement planned them from
// its own ranking as if nobody held them, so each shared fragment went to a second host while the
// old chunk's holder kept its copy (held back by its promise to the writer), and the writer kept
// the ones it had been the old chunk's target of: a fragment on two hosts, one of them no target,
// and another host short. Now the old chunk's holders count as holders of the shared fragments in
// the replacement's plan, and the writer's own claim on them as the old chunk's target ends with
// the replacement. Six hosts at 4+2: every host is a target, each holds one fragment.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { ChunkRef, ChunkWrite } from '../../node/data/index.ts'
import { chunksOf, planOnStores } from '../helpers/chunks.ts'

const MiB = 1 << 20
/** Short promises, so the test can see them end (the daemon's: CUSTODY_PROMISE_MS, 10 min). */
const PROMISE_MS = 30_000

describe('a chunk placed early and rewritten in part before the commit (six hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]

  before(async () => {
    hosts = await startMesh(t, 6, { daemon: { custodyPromiseMs: PROMISE_MS }, members: true })
    assert.deepEqual(hosts[0].volume.chunks.params(), { k: 4, m: 2 })
  })

  /** Per fragment of `ref`, the names of the hosts whose stores hold it. */
  const holders = async (ref: ChunkRef): Promise<string[][]> => await Promise.all(ref.fragments.map(async f => (await Promise.all(hosts.map(async h => await h.store.has(f) ? [h.name] : []))).flat()))
  const nameOf = (peer: string): string => hosts.find(h => h.host.peerId === peer)?.name ?? peer
  /** Per fragment, its planned holders (the keepers' plan from the stores), by name. */
  const planned = async (ref: ChunkRef): Promise<string[][]> => (await planOnStores(ref, hosts, hosts[1])).want.map(hs => hs.map(nameOf).sort())
  /** Each fragment of `ref` on its planned holders and on no other host. */
  const exactly = async (ref: ChunkRef): Promise<{ ok: boolean, said: string }> => {
    const on = (await holders(ref)).map(hs => hs.sort())
    const want = await planned(ref)
    const ok = on.every((hs, j) => hs.length > 0 && hs.join() === want[j].join())
    return { ok, said: on.map((hs, j) => `f${j} on ${hs.join('+') || 'none'} (planned ${want[j].join('+')})`).join(', ') }
  }

  it('the shared fragments stay on one holder each, the old chunk\'s own go, and nothing of the final chunk goes when the promises end', async () => {
    const w = hosts[0]
    const chunks = w.volume.chunks
    // the open file's placement, to name the chunk it placed early
    const writes: ChunkWrite[] = []
    const write = chunks.write.bind(chunks)
    chunks.write = (opts) => { const cw = write(opts); writes.push(cw); return cw }
    t.add(async () => { chunks.write = write })

    const data = randomBytes(2 * MiB)
    const fh = await w.volume.open('/shared.bin', 'w')
    let old: ChunkRef
    try {
      await fh.write(data, 0, MiB, 0)
      // the writer moves past chunk 0: stored and placed early
      await fh.write(data, MiB, MiB, MiB)
      // (stored in the file's next turn, once the write is answered)
      await until('chunk 0 stored early', () => writes[0]?.refs[0] !== undefined)
      assert.equal(writes.length, 1, 'one placement for the open file')
      old = writes[0].refs[0]
      assert.equal(old.k, 4)
      await until('chunk 0 placed on its targets', async () => (await exactly(old)).ok, 60_000)
      // patch 4 KiB of data fragment 0: fragments 1 to 3 stay the same blocks
      const patch = randomBytes(4096)
      await fh.write(patch, 0, patch.length, 10)
      data.set(patch, 10)
    } finally {
      await fh.close()
    }

    const [fresh] = await chunksOf(w, '/shared.bin')
    assert.notEqual(fresh.cid!.toString(), old.cid!.toString(), 'chunk 0 was replaced')
    const kept = new Set(fresh.fragments.map(f => f.toString()))
    const shared = old.fragments.filter(f => kept.has(f.toString()))
    const own = old.fragments.filter(f => !kept.has(f.toString()))
    assert.equal(shared.length, 3, 'the replacement shares the three data fragments the patch left alone')

    // placed and settled: each fragment of the final chunk on its planned holder alone (one
    // per host), and nothing of the old chunk's own fragments anywhere. Well within the promise
    // time: a second copy held back by its holder's promise to the writer is still there
    let said = ''
    await until('every fragment of the final chunk on its planned holder alone, the old chunk\'s own released', async () => {
      const e = await exactly(fresh)
      const left = (await Promise.all(own.map(async f => (await Promise.all(hosts.map(async h => await h.store.has(f)))).filter(Boolean).length))).reduce((a, b) => a + b, 0)
      said = `${e.said}; old chunk's own fragments left: ${left}`
      return e.ok && left === 0 && (await holders(fresh)).every(hs => hs.length === 1)
    }, PROMISE_MS * 2 / 3).catch(err => { throw new Error(`${(err as Error).message}: ${said}`) })

    // the promises the old chunk's holders gave the writer end, and every host runs a repair
    // pass (what drops a copy nobody plans): the final chunk loses nothing
    const blocks = [...old.fragments, ...fresh.fragments]
    await until('no host promises a fragment of either chunk', () => hosts.every(h => blocks.every(f => !h.custody.promised(f))), PROMISE_MS * 4)
    for (const h of hosts) await h.keep.repairer.pass({ all: true })
    const after = await exactly(fresh)
    assert.ok(after.ok && (await holders(fresh)).every(hs => hs.length === 1), `after the promises: ${after.said}`)
    const r = hosts[3]
    r.volume.chunks.dropCache()
    const read = await r.volume.chunks.readChunk(fresh)
    assert.ok(Buffer.from(read).equals(data.subarray(0, MiB)), 'the final chunk reads back on another host')
  })
})
