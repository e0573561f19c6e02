// A version's manifest is committed (its op in the tree) before its writer places it
// (ChunkWrite.placed() places it once the version's chunks are placed). Until then it was neither
// claimed nor pending here, so this host's repair pass took it as any block: once its keeper had
// copied it to its targets, the writer's pass handed the writer's copy over, and the writer's own
// placement then found nothing to push (mend43c left such a block to repair, with no record of
// its placement). It is pending from the commit now (Network.pend), and the writer's repair
// leaves it to the placement to come (isPlacingCoding), as one in flight.
//
// Real hosts over loopback TCP; the writer's pushes are held (so placed() waits on the version's
// chunk) until the test lets them go.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { manifestRef } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

/** Files written until one's manifest is not ranked onto its writer (each time, 3 of 5 members are). */
const TRIES = 30

describe('a committed manifest is pending from its commit (Network.pend)', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('between the commit and its placement, the writer\'s repair pass leaves its copy of the manifest, and its placement then places it (fails before: the copy handed over by the pass, the manifest neither pending nor placed by its writer)', async () => {
    const hosts = await startCluster(t, 5, { transport: 'tcp' })
    const [a] = hosts
    await until('a full mesh', () => hosts.every(h => h.host.peers().length === hosts.length - 1), 60_000)
    // every push of the writer waits for the gate (its chunk's placement, and so placed(), is held)
    const gate = Promise.withResolvers<void>()
    const swarm = (a.network as unknown as { swarm: { push: (...args: unknown[]) => Promise<unknown> } }).swarm
    const push = swarm.push.bind(swarm)
    swarm.push = async (...args: unknown[]) => { await gate.promise; return await push(...args) }
    try {
      // a file whose manifest's targets (3 copies among 5 members) leave the writer out: only then
      // does the writer's pass hand its copy over
      let found: { path: string, ref: ChunkRef, targets: string[] } | undefined
      for (let i = 0; i < TRIES && found === undefined; i++) {
        const path = `/f${i}`
        await a.volume.replaceFile(path, [randomBytes(64 * 1024)], { wait: 'none' })
        const content = a.tree.byIno((await a.volume.stat(path)).ino)!.content
        assert.ok(content !== null && 'manifest' in content, 'the version has a manifest')
        const ref = manifestRef(content.manifest, (await a.store.get(content.manifest)).byteLength)
        const members = a.policy.members()
        const targets = a.policy.rank(ref, members, a.policy.copies(ref.m, members.length))
        if (!targets.includes(a.host.peerId)) found = { path, ref, targets }
      }
      assert.ok(found !== undefined, `no manifest ranked away from its writer in ${TRIES} files`)
      const { path, ref, targets } = found
      const mcid = ref.cid!
      assert.ok(a.network.pending.hasCoding(ref), 'the committed manifest is pending on its writer')
      assert.ok(a.network.isPlacingCoding(ref), 'its writer\'s repair leaves it to the placement to come')
      // its keeper copies it to its targets (from the writer, its only holder)
      const keeper = hosts.find(h => h.host.peerId === targets[0])!
      const others = targets.map(p => hosts.find(h => h.host.peerId === p)!)
      await until('the keeper has the version', async () => await keeper.volume.stat(path).then(() => true, () => false), 30_000)
      await until('the manifest on its targets', async () => {
        await keeper.keep.repairer.pass()
        return (await Promise.all(others.map(async (h: ClusterHost) => await h.store.has(mcid)))).every(Boolean)
      }, 60_000)
      // the writer's pass: its copy is not its own to keep (a target of none), yet it is its placement's
      await a.keep.repairer.pass()
      assert.equal(await a.store.has(mcid), true, 'the writer\'s copy of the manifest is still here for its placement')
      assert.ok(a.network.pending.hasCoding(ref), 'still pending until its writer places it')
      gate.resolve()
      await until('every chunk of the writer placed', () => a.network.pending.size === 0, 60_000)
      // (its custody round over: placedNow)
      await until('the manifest placed by its writer, its record holding every copy', () => a.network.placedNow(ref) && a.network.heldOf(ref)!.every(h => targets.every(p => h.has(p))), 30_000)
      // placed (no longer pending), its copy here (on no target) is the writer's repair's to hand over
      // (a replicated block's placement leaves its writer's copy: network.ts handOver)
      await until('the writer\'s copy handed over by its pass once placed', async () => {
        await a.keep.repairer.pass()
        return !await a.store.has(mcid)
      }, 30_000)
    } finally {
      gate.resolve()
    }
  })
})
