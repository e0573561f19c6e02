// The leaf cache's memory is what it counts (review43b): a range read of several leaves from a
// holder, one of them read again now and then (hot), the others forgotten by the cache's own LRU
// (other reads' leaves coming in, stand-ins of 16 KiB set through the same cache). A leaf kept as
// a view of the buffer its whole run came in would hold that buffer (128 KiB for 8 leaves) while
// the cache counts 16 KiB for it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { chunksOf } from '../helpers/chunks.ts'

const MiB = 1 << 20
const LEAF = 16 * 1024

describe('the leaf cache keeps no more memory than it counts (seven in-process hosts)', function () {
  const t = new Teardown()
  let hosts: ClusterHost[]
  const data = randomBytes(4 * MiB)
  before(async () => {
    hosts = await startCluster(t, 7)
    await until('mesh', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
    await hosts[0].volume.replaceFile('/p.bin', [data], { wait: 'safe' })
    for (const h of hosts) await until(`${h.name} sees`, async () => { try { return (await h.volume.stat('/p.bin')).size === data.byteLength } catch { return false } })
  })
  after(async () => { await t.run() })

  it('bytes kept alive by the cached leaves of one fetch stay within the bytes the cache counts (+ slack)', async () => {
    let found: { h: ClusterHost, c: number, ref: any } | undefined
    for (const h of hosts.slice(1)) {
      const refs = await chunksOf(h, '/p.bin')
      for (let c = 0; c < refs.length && found === undefined; c++) {
        const held = await Promise.all(refs[c].fragments.map(async f => await h.store.has(f)))
        if (held.every(x => !x)) found = { h, c, ref: refs[c] }
      }
      if (found !== undefined) break
    }
    assert.ok(found !== undefined, 'a host holding no fragment of some chunk')
    const { h, c, ref } = found
    const chunks = h.volume.chunks as any
    chunks.dropCache()
    const fragBytes = Math.ceil(ref.size / ref.k)
    const span = Math.min(8 * LEAF, Math.floor(fragBytes / LEAF) * LEAF)
    assert.ok(span >= 2 * LEAF, 'a run of several leaves')
    const before = chunks.readCounters().ranges
    const got = await chunks.readRange(ref, 0, span)
    assert.ok(Buffer.from(got).equals(data.subarray(c * MiB, c * MiB + span)))
    assert.equal(chunks.readCounters().ranges - before, 1, 'read from leaves')
    const frag = ref.fragments[0].toString()
    const hot = span / LEAF - 1
    const cache = chunks.leaves
    // the cache's LRU at work: the hot leaf read again now and then, other reads' leaves coming in
    for (let i = 0; cache.map.size > 1 && i < 5000; i++) {
      if (i % 64 === 0) await chunks.readRange(ref, hot * LEAF, hot * LEAF + 4096)
      cache.set(`other/${i}`, new Uint8Array(LEAF))
    }
    const mine = [...cache.map.entries()].filter(([k]: [string]) => k.startsWith(`${frag}/`)).map(([, v]: [string, Uint8Array]) => v)
    const counted = mine.reduce((n: number, v: Uint8Array) => n + v.byteLength, 0)
    const alive = [...new Set(mine.map((v: Uint8Array) => v.buffer))].reduce((n: number, b: ArrayBufferLike) => n + b.byteLength, 0)
    assert.ok(mine.length >= 1, 'the hot leaf stayed')
    assert.ok(alive <= counted + 4096, `cached leaves keep ${alive} B alive for ${counted} B counted`)
  })
})
