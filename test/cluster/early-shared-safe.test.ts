// An fsync after an early chunk is rewritten in part: the old chunk's recorded holders of the
// fragments the two share are a hint for the plan (inherited), not holders, until they promise
// them for the new chunk. Here they lost their copies (as GC or a lost disk would) before the
// rewrite: fsync must not return while the final chunk would not survive the loss of the
// writer (review38d: counted at once, it returned with f1-f3 on the writer alone).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { ChunkRef, ChunkWrite } from '../../node/data/index.ts'
import { chunksOf, planOnStores } from '../helpers/chunks.ts'

const MiB = 1 << 20

describe('early chunk rewritten in part: fsync', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]

  before(async () => {
    hosts = await startMesh(t, 6, { members: true })
  })

  const holders = async (ref: ChunkRef): Promise<string[][]> => await Promise.all(ref.fragments.map(async f => (await Promise.all(hosts.map(async h => await h.store.has(f) ? [h.name] : []))).flat()))

  it('fsync returns only once the final chunk survives one lost host by the stores', async () => {
    const w = hosts[0]
    const chunks = w.volume.chunks
    const writes: ChunkWrite[] = []
    const write = chunks.write.bind(chunks)
    chunks.write = (opts) => { const cw = write(opts); writes.push(cw); return cw }
    t.add(async () => { chunks.write = write })
    const data = randomBytes(2 * MiB)
    const fh = await w.volume.open('/p.bin', 'w')
    try {
      await fh.write(data, 0, MiB, 0)
      await fh.write(data, MiB, MiB, MiB)
      await until('chunk 0 stored early', () => writes[0]?.refs[0] !== undefined)
      const old = writes[0].refs[0]
      await until('chunk 0 placed on its targets', async () => {
        const want = (await planOnStores(old, hosts, hosts[1])).want
        const on = await holders(old)
        return want.every((hs, j) => hs.length > 0 && hs.every(p => on[j].includes(hosts.find(h => h.host.peerId === p)!.name)))
      }, 60_000)
      // its placement's custody round over (the holders promised it to the writer)
      await until('chunk 0 promised by its holders', async () => {
        for (let j = 0; j < 6; j++) for (const h of hosts.slice(1)) if (await h.store.has(old.fragments[j]) && !h.custody.promised(old.fragments[j])) return false
        return true
      }, 60_000)
      // the other hosts lose their copies of data fragments 1..3 (GC, a lost disk): the writer's
      // placement record of chunk 0 still names them
      for (let j = 1; j < 4; j++) for (const h of hosts.slice(1)) if (await h.store.has(old.fragments[j])) await h.store.delete(old.fragments[j])
      console.log('      old chunk after the loss:', (await holders(old)).map((hs, j) => `f${j} ${hs.join('+')}`).join(', '))
      const patch = randomBytes(4096)
      await fh.write(patch, 0, patch.length, 10)
      data.set(patch, 10)
      await fh.sync()
      const [fresh] = await chunksOf(w, '/p.bin')
      const on = await holders(fresh)
      console.log('      final chunk at fsync return:', on.map((hs, j) => `f${j} ${hs.join('+')}`).join(', '))
      // survives one lost host: whichever host goes, k fragments are left elsewhere
      const worst = Math.min(...hosts.map(h => on.filter(hs => hs.some(n => n !== h.name)).length))
      const t0 = Date.now()
      const healed = await until('the final chunk survives one lost host by the stores', async () => {
        const o = await holders(fresh)
        return Math.min(...hosts.map(h => o.filter(hs => hs.some(n => n !== h.name)).length)) >= fresh.k
      }, 60_000).then(() => `healed ${Date.now() - t0} ms after the fsync returned`, () => 'not healed within 60 s')
      console.log('      ' + healed)
      assert.ok(worst >= fresh.k, `fsync returned with the final chunk not surviving one lost host (worst case ${worst} of k=${fresh.k} fragments left): ${on.map((hs, j) => `f${j} ${hs.join('+')}`).join(', ')}`)
    } finally {
      await fh.close()
    }
  })
})
