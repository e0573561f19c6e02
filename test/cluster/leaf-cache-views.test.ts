// The leaf cache's memory (review43b, gc44): leaves of range reads fetched from a holder are kept
// in the cache's own buffers, reused as leaves come and go (LeafCache), not as the buffers they
// were received in (each of which then lived, one per read, for as long as the cache took to turn
// over: into V8's old generation, freed by full collections alone; and a view of a whole run's
// buffer held 128 KiB for a 16 KiB leaf). The cache's slots being reused, an answer it gave stays
// the caller's own.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { chunksOf } from '../helpers/chunks.ts'

const MiB = 1 << 20
const LEAF = 16 * 1024

/** The ArrayBuffers the leaf cache of `chunks` keeps alive (its slabs; or, as before gc44, the buffers its leaves view). */
function keptBuffers (cache: any): Set<ArrayBufferLike> {
  if (typeof cache.buffers === 'function') return new Set(cache.buffers())
  return new Set([...cache.map.values()].map((v: Uint8Array) => v.buffer))
}

describe('the leaf cache keeps leaves in buffers of its own (seven in-process hosts)', function () {
  const t = new Teardown()
  let hosts: ClusterHost[]
  const data = randomBytes(4 * MiB)
  /** A host other than the writer and a chunk of /p.bin it holds no fragment of. */
  let found: { h: ClusterHost, c: number, ref: ChunkRef }
  before(async () => {
    hosts = await startCluster(t, 7)
    await until('mesh', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
    await hosts[0].volume.replaceFile('/p.bin', [data], { wait: 'safe' })
    for (const h of hosts) await until(`${h.name} sees`, async () => { try { return (await h.volume.stat('/p.bin')).size === data.byteLength } catch { return false } })
    for (const h of hosts.slice(1)) {
      const refs = await chunksOf(h, '/p.bin')
      for (let c = 0; c < refs.length; c++) {
        const held = await Promise.all(refs[c].fragments.map(async f => await h.store.has(f)))
        if (held.every(x => !x)) { found = { h, c, ref: refs[c] }; return }
      }
    }
    assert.fail('a host holding no fragment of some chunk')
  })
  after(async () => { await t.run() })

  it('the leaves of many 4 KiB reads fetched from holders live in one buffer of the cache, not one buffer per read', async () => {
    const { h, c, ref } = found
    const chunks = h.volume.chunks as any
    chunks.dropCache()
    const before = chunks.readCounters().ranges
    // a page of each leaf of the chunk's first data fragment (16 of 256 KiB), each read alone
    const fragBytes = Math.floor(Math.ceil(ref.size / ref.k) / LEAF) * LEAF
    const reads = fragBytes / LEAF
    assert.ok(reads >= 8, `leaves in the first data fragment: ${reads}`)
    for (let l = 0; l < reads; l++) {
      const at = l * LEAF + 1000
      const got = await chunks.readRange(ref, at, at + 4096)
      assert.ok(Buffer.from(got).equals(data.subarray(c * MiB + at, c * MiB + at + 4096)), `leaf ${l}: the right bytes`)
    }
    assert.equal(chunks.readCounters().ranges - before, reads, 'each read from leaves')
    const kept = keptBuffers(chunks.leaves)
    // all these leaves (under 64) fit one slab of the cache; kept as received, one buffer each
    assert.equal(kept.size, 1, `${reads} leaves cached keep ${kept.size} buffers alive`)
  })

  it('an answer given from the leaf cache stays the caller\'s once the cache reuses the slot it came from', async () => {
    const { h, c, ref } = found
    const chunks = h.volume.chunks as any
    chunks.dropCache()
    const at = 3 * LEAF + 777
    const want = data.subarray(c * MiB + at, c * MiB + at + 4096)
    const received = h.swarm.stats().bytesReceived
    assert.ok(Buffer.from(await chunks.readRange(ref, at, at + 4096)).equals(want), 'fetched: the right bytes')
    const moved = h.swarm.stats().bytesReceived - received
    // from the cache (nothing moves), then every slot of the cache written over by other leaves
    const again = await chunks.readRange(ref, at, at + 4096)
    assert.equal(h.swarm.stats().bytesReceived - received, moved, 'read again from the leaf cache')
    const cache = chunks.leaves
    const fill = new Uint8Array(LEAF).fill(0xa5)
    for (let i = 0; i < (cache.maxLeaves ?? 1024) + 1; i++) cache.set(`other/${i}`, fill)
    assert.equal(cache.get(`${ref.fragments[0].toString()}/3`), undefined, 'the leaf was forgotten')
    assert.ok(Buffer.from(again).equals(want), 'the answer taken from the cache is unchanged by the slot\'s reuse')
    // and across two leaves (a read spanning a leaf boundary, from the cache)
    chunks.dropCache()
    const span = 5 * LEAF - 2048
    assert.ok(Buffer.from(await chunks.readRange(ref, span, span + 4096)).equals(data.subarray(c * MiB + span, c * MiB + span + 4096)), 'two leaves fetched')
    const two = await chunks.readRange(ref, span, span + 4096)
    for (let i = 0; i < (cache.maxLeaves ?? 1024) + 1; i++) cache.set(`other2/${i}`, fill)
    assert.ok(Buffer.from(two).equals(data.subarray(c * MiB + span, c * MiB + span + 4096)), 'the two-leaf answer from the cache is unchanged by the slots\' reuse')
  })
})
