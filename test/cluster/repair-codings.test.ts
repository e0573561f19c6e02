// The same 1 MiB written in two files at two codings (a host whose --data-fragments is 2 next to
// five at the default 4: k=4 m=2 and k=2 m=2) has one chunk CID and two fragment sets, and release
// and GC keep both (review32g). Repair and status listed chunks by CID alone: one coding shadowed
// the other, whose lost fragments were never rebuilt and which status did not count (note-s32
// Left 7). Checked by where the fragments are after a host holding both codings' fragments goes.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, startHost, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { init } from '../../node/cli/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { chunksOf, heldOn } from '../helpers/chunks.ts'

// Background passes off (interval 0): repair runs when a member is declared gone, or on heal.
const keep = { failureTimeoutMs: 1000, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

describe('two codings of one chunk (six hosts: k=4 m=2 and k=2 m=2 of the same bytes)', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('a host holding fragments of both goes: heal rebuilds both codings, and status counts both', async () => {
    const five = await startCluster(t, 5, { daemon: { keep } })
    const root = join(five[0].dir, '..')
    const dir = join(root, 'h5')
    await init(dir, { networkKey: join(five[0].dir, 'network.key') })
    const narrow = await startHost(t, dir, `${five[0].name}-narrow`, [five[0].address], { daemon: { keep, dataFragments: 2 } })
    const hosts: ClusterHost[] = [...five, narrow]
    await until('six hosts, each a member of every other', () => hosts.every(h => h.host.peers().length === 5 && h.policy.members().length === 6), 60_000)

    const bytes = randomBytes(1 << 20)
    await hosts[0].volume.replaceFile('/four.bin', [bytes], { wait: 'safe' })
    await narrow.volume.replaceFile('/two.bin', [bytes], { wait: 'safe' })
    await until('h0 sees both files', async () => {
      try { await hosts[0].volume.stat('/two.bin'); return true } catch { return false }
    })
    const [four] = await chunksOf(hosts[0], '/four.bin')
    const [two] = await chunksOf(hosts[0], '/two.bin')
    assert.equal(four.cid!.toString(), two.cid!.toString(), 'one chunk')
    assert.deepEqual([four.k, four.m, two.k, two.m], [4, 2, 2, 2], 'two codings')
    await until('both codings placed', async () => (await heldOn(four, hosts)).every(n => n > 0) && (await heldOn(two, hosts)).every(n => n > 0), 60_000)

    // a host holding a fragment of each coding (neither writer): placement ranks both alike
    let victim: ClusterHost | undefined
    for (const h of hosts.slice(1, 5)) {
      const hasTwo = (await Promise.all(two.fragments.map(async f => await h.store.has(f)))).some(Boolean)
      const hasFour = (await Promise.all(four.fragments.map(async f => await h.store.has(f)))).some(Boolean)
      if (hasTwo && hasFour) { victim = h; break }
    }
    assert.ok(victim !== undefined, 'some host other than the writers holds fragments of both codings')
    // each coding loses a fragment when it goes: one it holds alone, once the writers handed
    // their copies over (under load a writer may still hold one a while after the placement).
    // Not checked after it went: the survivors' repair on its being declared gone may have
    // rebuilt them already.
    const v = victim
    const aloneOnVictim = async (ref: ChunkRef): Promise<boolean> => {
      const n = await heldOn(ref, hosts)
      return (await Promise.all(ref.fragments.map(async (f, j) => n[j] === 1 && await v.store.has(f)))).some(Boolean)
    }
    await until('a fragment of each coding held by the victim alone (the writers handed theirs over)', async () => await aloneOnVictim(two) && await aloneOnVictim(four), 60_000)
    await victim.stop()
    const survivors = hosts.filter(h => h !== victim)
    await until('the survivors notice', () => survivors.every(h => h.host.peers().length === 4), 30_000)

    const r = await hosts[0].keep.heal()
    const afterTwo = await heldOn(two, survivors)
    const afterFour = await heldOn(four, survivors)
    assert.ok(afterFour.every(n => n > 0), `every fragment of the k=4 coding held again: ${afterFour.join(',')}`)
    assert.ok(afterTwo.every(n => n > 0), `every fragment of the k=2 coding held again: ${afterTwo.join(',')}`)
    assert.deepEqual(r.remaining, { total: 2, redundant: 2, degraded: 0, localOnly: 0, lost: 0, unreachable: 0 }, 'heal surveys and counts both codings')
    const s = await hosts[0].keep.health()
    assert.equal(s.total, 2, `status counts both codings: ${JSON.stringify(s)}`)
    assert.equal(s.redundant, 2, `both redundant: ${JSON.stringify(s)}`)
  })
})
