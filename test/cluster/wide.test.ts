// A wide erasure code end to end (issue 14): 8 in-process hosts writing with `--data-fragments 6`
// place every chunk as 6+2, one fragment per host, record k=6 m=2 in the manifest, and a host
// that never had the file reads it back exactly after the two hosts holding data fragments 0
// and 1 of the first chunk are gone (the decode needs parity); repair then rebuilds every
// fragment on the six hosts left.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { retained } from '../../node/keeper/index.ts'
import { REPLICATE_MAX_BYTES } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'

// Background passes off (interval 0): repair runs when a member is declared gone.
const keep = { failureTimeoutMs: 1000, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

describe('a wide code: 8 in-process hosts with --data-fragments 6 (6+2)', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('writes 6+2 chunks, one fragment per host, and reads them back after losing two data fragments\' hosts', async () => {
    const hosts: ClusterHost[] = await startCluster(t, 8, { daemon: { keep, dataFragments: 6 } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1), 60_000)
    assert.deepEqual(hosts[0].volume.chunks.params(), { k: 6, m: 2 })
    assert.equal(hosts[0].policy.dataFragments, 6)

    // the last chunk: short, yet past REPLICATE_MAX_BYTES (smaller ones are kept as copies), so 6 fragments too
    const data = randomBytes((3 << 20) + REPLICATE_MAX_BYTES + 6007)
    await hosts[0].volume.replaceFile('/wide.bin', [data], { wait: 'safe' })
    let refs: ChunkRef[] = []
    await until('h0 retains the file\'s chunks', async () => {
      refs = [...(await retained(hosts[0].volume, 3600_000)).chunks.values()]
      return refs.length === 4
    })
    for (const ref of refs) {
      assert.equal(ref.k, 6, 'the manifest records k')
      assert.equal(ref.m, 2, 'and m')
      assert.equal(ref.fragments.length, 8)
    }
    await until('every chunk redundant', async () => {
      const s = await hosts[0].keep.status()
      return s.total === 4 && s.redundant === 4
    }, 60_000)
    // one fragment per host: 8 fragments on 8 distinct hosts
    for (const ref of refs) {
      const holders = await Promise.all(ref.fragments.map(async f => (await Promise.all(hosts.map(async h => await h.store.has(f)))).flatMap((has, i) => has ? [i] : [])))
      assert.equal(new Set(holders.flat()).size, 8, `fragments of ${ref.cid?.toString() ?? 'a chunk'} on ${JSON.stringify(holders)}`)
    }

    // the hosts of data fragments 0 and 1 of the first chunk go: decoding it needs parity
    const first = refs.find(r => r.offset === 0)!
    const gone: ClusterHost[] = []
    for (const j of [0, 1]) {
      for (const h of hosts) if (!gone.includes(h) && await h.store.has(first.fragments[j])) { gone.push(h); break }
    }
    assert.equal(gone.length, 2)
    for (const h of gone) await h.stop()
    const reader = hosts.find(h => h !== hosts[0] && !gone.includes(h))!
    await until('the reader sees the two hosts gone', () => reader.host.peers().length === hosts.length - 3, 30_000)
    await until('the reader sees the file', async () => {
      try { await reader.volume.stat('/wide.bin'); return true } catch { return false }
    })
    const read = Buffer.from(await reader.volume.readFile('/wide.bin'))
    assert.ok(read.equals(data), `read ${read.length} bytes, wrote ${data.length}; equal: ${String(read.equals(data))}`)
    const s = await reader.keep.status()
    assert.equal(s.lost, 0, `no chunk lost: ${JSON.stringify(s)}`)
    // repair rebuilds the 6+2 chunks on the 6 hosts left (the two missing fragments on m + 1
    // hosts each, keeper/assignment.ts), and the file still reads back
    await until('repair brings every chunk back to redundant', async () => {
      const now = await reader.keep.status()
      return now.total === 4 && now.redundant === 4
    }, 90_000)
    const left = hosts.filter(h => !gone.includes(h))
    for (const ref of refs) {
      const held = new Set<string>()
      for (const f of ref.fragments) for (const h of left) if (await h.store.has(f)) held.add(f.toString())
      assert.equal(held.size, 8, 'every fragment rebuilt on the hosts left')
    }
    assert.ok(Buffer.from(await left.at(-1)!.volume.readFile('/wide.bin')).equals(data))
  })
})
