// Placement notices (node/keeper/placed.ts): a writer tells each chunk's keeper who acknowledged
// its fragments, and the keeper's incremental pass takes the chunk as placed without asking any
// peer about it. Four real hosts (libp2p over the memory transport), passes run by the test.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { assignment } from '../../node/keeper/assignment.ts'

// no timer passes: the test runs each pass itself
const keep = { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

async function chunksOf (h: ClusterHost, path: string): Promise<ChunkRef[]> {
  const content = h.tree.byIno((await h.volume.stat(path)).ino)!.content
  assert.ok(content !== null && 'manifest' in content, `${path} has chunks`)
  return (await h.volume.chunks.readManifest(content.manifest)).chunks
}

describe('placement notices: a keeper takes a written chunk as placed from its writer (4 in-process hosts)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  after(async () => { await t.run() })

  it("a keeper's incremental pass after a placed write asks no peer about the new chunks", async () => {
    // Fails on the old code: each chunk's keeper surveyed it (have-queries for every fragment to
    // every peer), although the writer's acknowledgements proved it placed (issue 15).
    hosts = await startCluster(t, 4, { daemon: { keep } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
    const [writer] = hosts
    await writer.volume.replaceFile('/a.bin', [randomBytes(1 << 20)], { wait: 'safe' })
    await until('every host sees /a.bin', async () => {
      try { for (const h of hosts) await h.volume.stat('/a.bin'); return true } catch { return false }
    })
    // a full pass on every host: the passes after it are incremental
    for (const h of hosts) await h.keep.repairer.pass({ incremental: true })

    const taken = (): number => hosts.reduce((n, h) => n + h.keep.repairer.ackCounts.taken, 0)
    const before = taken()
    await writer.volume.replaceFile('/b.bin', [randomBytes(8 << 20)], { wait: 'safe' })
    await until('every host sees /b.bin', async () => {
      try { for (const h of hosts) await h.volume.stat('/b.bin'); return true } catch { return false }
    })
    const refs = await chunksOf(writer, '/b.bin')
    assert.ok(refs.length >= 2 && refs.every(r => r.k >= 2), `erasure-coded chunks (k = ${refs[0]?.k}, ${refs.length} chunks)`)
    const members = writer.policy.members()
    const wants = new Map(refs.map(r => [r, assignment(writer.policy.rank(r, members, r.k + r.m), r.k, r.m)]))
    const keepers = new Set(refs.map(r => writer.policy.rank(r, members, 1)[0]))
    assert.ok(keepers.size > 1, 'the chunks have several keepers')
    await until('every chunk placed, its notice taken by its keeper, and the copies handed over', async () => {
      if (writer.network.pending.size > 0 || taken() < before + refs.length) return false
      for (const [r, want] of wants) {
        for (const [j, f] of r.fragments.entries()) if (want[j].includes(writer.host.peerId) !== await writer.store.has(f)) return false
      }
      return true
    }, 60_000)

    // have-queries each host's pass sends about /b.bin's fragments
    const fragments = new Set(refs.flatMap(r => r.fragments.map(f => f.toString())))
    const asked = new Map<string, number>()
    const restore: Array<() => void> = []
    for (const h of hosts) {
      const swarm = h.swarm as { has: (cids: CID[], peer: string, o?: object) => Promise<Set<string>> }
      const has = swarm.has.bind(swarm)
      swarm.has = async (cids, peer, o) => {
        const n = cids.filter(c => fragments.has(c.toString())).length
        if (n > 0) asked.set(h.name, (asked.get(h.name) ?? 0) + n)
        return await has(cids, peer, o)
      }
      restore.push(() => { delete (swarm as Partial<typeof swarm>).has })
    }
    try {
      const used = hosts.map(h => h.keep.repairer.ackCounts.used)
      for (const h of hosts) await h.keep.repairer.pass({ incremental: true })
      assert.deepEqual(Object.fromEntries(asked), {}, 'no host asked a peer about the new chunks')
      assert.equal(hosts.reduce((n, h, i) => n + h.keep.repairer.ackCounts.used - used[i], 0), refs.length, 'each chunk taken as placed by its keeper')
    } finally {
      for (const r of restore) r()
    }
  })
})
