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
import { assignment } from '../../node/keeper/index.ts'
import { chunksOf } from '../helpers/chunks.ts'

// no timer passes: the test runs each pass itself
const keep = { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

/**
 * Four hosts meshed, /a.bin written and a full pass run on each (the passes after it are
 * incremental), then `path` written on hosts[0]: resolves once every chunk of it is placed, its
 * notice taken by its keeper, and the writer holds only its own fragments.
 */
async function placedWrite (t: Teardown, path: string, bytes: number, opts: { keep?: object } = {}): Promise<{ hosts: ClusterHost[], refs: ChunkRef[], wants: Map<ChunkRef, string[][]> }> {
  const hosts = await startCluster(t, 4, { daemon: { keep: { ...keep, ...opts.keep } } })
  await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
  const [writer] = hosts
  const seen = async (p: string): Promise<void> => {
    await until(`every host sees ${p}`, async () => {
      try { for (const h of hosts) await h.volume.stat(p); return true } catch { return false }
    })
  }
  await writer.volume.replaceFile('/a.bin', [randomBytes(1 << 20)], { wait: 'safe' })
  await seen('/a.bin')
  for (const h of hosts) await h.keep.repairer.pass({ incremental: true })
  await writer.volume.replaceFile(path, [randomBytes(bytes)], { wait: 'safe' })
  await seen(path)
  const refs = await chunksOf(writer, path)
  assert.ok(refs.length >= 2 && refs.every(r => r.k >= 2), `erasure-coded chunks (k = ${refs[0]?.k}, ${refs.length} chunks)`)
  const members = writer.policy.members()
  const wants = new Map(refs.map(r => [r, assignment(writer.policy.rank(r, members, r.k + r.m), r.k, r.m)]))
  await until('every chunk placed, its notice taken by its keeper, and the copies handed over', async () => {
    if (writer.network.pending.size > 0) return false
    if (!refs.every(r => hosts.some(h => h.keep.repairer.noticed(r.cid!.toString())))) return false
    for (const [r, want] of wants) {
      for (const [j, f] of r.fragments.entries()) if (want[j].includes(writer.host.peerId) !== await writer.store.has(f)) return false
    }
    return true
  }, 60_000)
  return { hosts, refs, wants }
}

describe('placement notices: a keeper takes a written chunk as placed from its writer (4 in-process hosts)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it("a keeper's incremental pass after a placed write asks no peer about the new chunks", async () => {
    // Fails on the old code: each chunk's keeper surveyed it (have-queries for every fragment to
    // every peer), although the writer's acknowledgements proved it placed (issue 15).
    const placed = await placedWrite(t, '/b.bin', 8 << 20)
    const hosts = placed.hosts
    const { refs } = placed
    const [writer] = hosts
    const keepers = new Set(refs.map(r => writer.policy.rank(r, writer.policy.members(), 1)[0]))
    assert.ok(keepers.size > 1, 'the chunks have several keepers')

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

  it('a keeper still repairs a chunk whose holder died after placement', async () => {
    // The notice said every fragment was placed; one holder then stops. Its going changes the
    // view, so the keeper's passes survey the chunk and rebuild the fragment lost.
    const { hosts, refs, wants } = await placedWrite(t, '/c.bin', 4 << 20, { keep: { failureTimeoutMs: 1000 } })
    const [writer] = hosts
    // a chunk kept by neither the writer nor the host that stops, with a fragment on that host
    const dead = hosts.find(h => h !== writer && refs.some(r => writer.policy.rank(r, writer.policy.members(), 1)[0] !== h.host.peerId && wants.get(r)!.some(hs => hs.includes(h.host.peerId))))!
    const chunk = refs.find(r => { const k = writer.policy.rank(r, writer.policy.members(), 1)[0]; return k !== dead.host.peerId && k !== writer.host.peerId })
      ?? refs.find(r => writer.policy.rank(r, writer.policy.members(), 1)[0] !== dead.host.peerId)!
    const keeper = hosts.find(h => h.host.peerId === writer.policy.rank(chunk, writer.policy.members(), 1)[0])!
    const lost = chunk.fragments.filter((_, j) => wants.get(chunk)![j].includes(dead.host.peerId))
    assert.ok(lost.length > 0)
    await dead.stop()
    const survivors = hosts.filter(h => h !== dead)
    const repairs = keeper.keep.repairer.totals().fragmentsRepaired
    await until('the fragments the dead host held are held by a survivor again', async () => {
      await keeper.keep.repairer.pass({ incremental: true })
      for (const f of lost) {
        let held = false
        for (const h of survivors) if (await h.store.has(f)) held = true
        if (!held) return false
      }
      return true
    }, 60_000)
    assert.ok(keeper.keep.repairer.totals().fragmentsRepaired > repairs, 'the keeper rebuilt them')
  })
})
