// The same bytes coded anew with another k or m (a file copied, or zeros written again, after the
// network's size changed the k new chunks get) have the same chunk CID and other fragments: the
// writer's record of the first placement (keeper/network.ts, by chunk CID) says nothing of the
// second's. Each is placed on its own targets (ChunkNetwork.heldOf): the second was called placed
// with its parity on no host (k 4 then 3), or failed every attempt (k 2 then 4: the first's
// record has fewer fragments). Six real hosts in one process.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { ClusterHost } from '../../harness/cluster.ts'
import { encodeChunk, withRoots } from '../../node/data/index.ts'
import { meshSuite } from '../helpers/mesh.ts'

const keep = { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

describe('a chunk placed again in another coding (6 in-process hosts)', function () {
  this.timeout(300_000)
  const { hosts } = meshSuite(6, { daemon: { keep } })

  for (const [first, second] of [[[4, 2], [3, 2]], [[2, 2], [4, 2]]]) {
    it(`k=${first[0]},m=${first[1]} then k=${second[0]},m=${second[1]}: each coding survives the loss of its writer, its placement record its own`, async () => {
      const w = hosts[0]
      const bytes = randomBytes(1 << 20)
      for (const [k, m] of [first, second]) {
        const { ref, blocks } = withRoots(encodeChunk(bytes, 0, k, m))
        await w.store.putMany(blocks)
        await w.network.place([ref])
        assert.equal(w.network.pending.has(ref.cid!.toString()), false, `k=${k}: placed`)
        const held: Array<Set<string>> | undefined = w.network.heldOf(ref)
        assert.ok(held !== undefined && held.length === k + m, `k=${k}: its own placement record`)
        // the chunk survives the loss of its writer: k of its fragments on other hosts
        let elsewhere = 0
        for (const [j, f] of ref.fragments.entries()) {
          let on = 0
          for (const h of hosts) if (h !== w && await h.store.has(f)) on++
          if (on > 0) elsewhere++
          // what the writer recorded as holding it does hold it
          for (const p of held[j]) {
            const h: ClusterHost = hosts.find(x => x.host.peerId === p)!
            assert.ok(await h.store.has(f), `k=${k}: fragment ${j} recorded on ${h.name}, which lacks it`)
          }
        }
        assert.ok(elsewhere >= k, `k=${k}: ${elsewhere} of its fragments on hosts besides the writer`)
      }
    })
  }

  it('two codings of the same bytes placed at once (k=4 and k=3): each is placed on its own, neither waits on the other\'s run (fails on the old code: the second joined the first\'s run, by chunk CID, and was left on the writer alone)', async () => {
    const w = hosts[0]
    const bytes = randomBytes(1 << 20)
    const codings = [[4, 2], [3, 2]].map(([k, m]) => withRoots(encodeChunk(bytes, 0, k, m)))
    for (const { blocks } of codings) await w.store.putMany(blocks)
    await Promise.all(codings.map(async ({ ref }) => { await w.network.place([ref]) }))
    for (const { ref } of codings) {
      assert.equal(w.network.pending.hasCoding(ref), false, `k=${ref.k}: placed`)
      let elsewhere = 0
      for (const f of ref.fragments) {
        for (const h of hosts) {
          if (h !== w && await h.store.has(f)) { elsewhere++; break }
        }
      }
      assert.ok(elsewhere >= ref.k, `k=${ref.k}: ${elsewhere} of its fragments on hosts besides the writer`)
    }
    assert.equal(w.network.pending.has(codings[0].ref.cid!.toString()), false, 'no coding of the chunk is pending')
    assert.equal(w.network.isPlacing(codings[0].ref.cid!.toString()), false, 'nor being placed')
  })
})
