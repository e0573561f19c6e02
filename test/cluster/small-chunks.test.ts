// Small chunks are replicated, large ones erasure-coded (data/blocks.ts REPLICATE_MAX_BYTES,
// DESIGN.md §5), on six hosts (k = 4, m = 2): a small file's one chunk and a large file's short
// tail are k = 1 with m + 1 = 3 copies on three hosts, its whole chunks 4 + 2 fragments; each reads
// byte-identical on another host, and still with two of the copy holders stopped.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { REPLICATE_MAX_BYTES, paramsFor } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { chunksOf } from '../helpers/chunks.ts'

const MiB = 1 << 20

describe('cluster: small chunks are replicated, large ones erasure-coded', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('paramsFor(): k = 1 with the same m at or under REPLICATE_MAX_BYTES, the network\'s above; replication stays', () => {
    assert.deepEqual(paramsFor(REPLICATE_MAX_BYTES, { k: 4, m: 2 }), { k: 1, m: 2 })
    assert.deepEqual(paramsFor(5000, { k: 3, m: 2 }), { k: 1, m: 2 })
    assert.deepEqual(paramsFor(REPLICATE_MAX_BYTES + 1, { k: 4, m: 2 }), { k: 4, m: 2 })
    assert.deepEqual(paramsFor(100, { k: 1, m: 1 }), { k: 1, m: 1 })
  })

  it('six hosts: a 20 KiB file and a large file\'s tail in 3 copies, the large file\'s chunks 4 + 2; reads survive two lost copy holders', async () => {
    const hosts = await startMesh(t, 6)
    const [w] = hosts
    assert.deepEqual(w.volume.chunks.params(), { k: 4, m: 2 })
    const small = randomBytes(20 * 1024)
    const large = randomBytes(2 * MiB + 100)
    await w.volume.writeFile('/small.bin', small)
    await w.volume.writeFile('/large.bin', large)
    const smallRefs = await chunksOf(w, '/small.bin')
    const largeRefs = await chunksOf(w, '/large.bin')
    assert.equal(smallRefs.length, 1)
    assert.equal(largeRefs.length, 3)
    for (const ref of [smallRefs[0], largeRefs[2]]) {
      assert.equal(ref.k, 1, `a ${ref.size}-byte chunk is replicated`)
      assert.equal(ref.m, 2)
    }
    for (const ref of largeRefs.slice(0, 2)) assert.deepEqual([ref.k, ref.m, ref.fragments.length], [4, 2, 6], 'a whole chunk is erasure-coded')
    await until('every chunk is placed', () => w.network.pending.size === 0, 60_000)
    // the copies: the one block on three hosts
    const holdersOf = async (ref: ChunkRef): Promise<ClusterHost[]> => {
      const out: ClusterHost[] = []
      for (const h of hosts) if (!h.stopped && await h.store.has(ref.fragments[0])) out.push(h)
      return out
    }
    // a writer that is none of the chunk's 3 targets keeps its copy until a rebalance pass hands
    // it over (placement hands over only erasure-coded fragments at once): passes until it did
    await until('the small file\'s chunk is on its 3 targets only', async () => {
      await Promise.all(hosts.map(async h => await h.keep.repairer.pass()))
      return (await holdersOf(smallRefs[0])).length === 3
    }, 120_000)
    const holders = await holdersOf(smallRefs[0])
    assert.equal(holders.length, 3, 'a replicated chunk is on m + 1 = 3 hosts')
    assert.deepEqual(holders.map(h => h.host.peerId).sort(), w.policy.rank(smallRefs[0], w.policy.members(), 3).sort(), 'on its targets')
    const reader = hosts.find(h => h !== w && !holders.includes(h))!
    await until('the reader sees both files', async () => {
      try { await reader.volume.stat('/small.bin'); await reader.volume.stat('/large.bin'); return true } catch { return false }
    }, 60_000)
    assert.ok(Buffer.from(await reader.volume.readFile('/small.bin')).equals(small))
    assert.ok(Buffer.from(await reader.volume.readFile('/large.bin')).equals(large))
    // two of its three holders stop (the writer among them, if it is one): the third copy serves it
    const gone = holders.filter(h => h !== reader).slice(0, 2)
    for (const h of gone) await h.stop()
    await until('the reader sees two hosts gone', () => reader.host.peers().length === 3, 60_000)
    reader.volume.chunks.dropCache()
    assert.ok(Buffer.from(await reader.volume.readFile('/small.bin')).equals(small), 'the small file reads with one copy left')
  })
})
