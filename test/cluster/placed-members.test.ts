// A chunk is placed (no longer pending at its writer, keeper/network.ts targetsHold) once every
// target among the members holds it: a member that is away but not declared gone is still a
// target. Five real hosts (libp2p over the memory transport): three stop, the writer writes,
// and they come back one by one; at each step the writer's pending chunks are exactly those with
// a target still away, every chunk it calls placed is on each of its targets, and its status
// counts as redundant only those. The old rule (as many hosts hold a chunk as are connected)
// called a chunk placed with one target up besides the writer, its other targets still away.
// Then a member away while a file is written is declared gone (`darkfs heal`): the chunks that
// waited for it are placed on the members left.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, startHost, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { assignment } from '../../node/keeper/index.ts'
import { chunksOf, planHeld, planOnStores } from '../helpers/chunks.ts'

// background passes off (interval 0): passes come with the membership's events
const keep = { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

/** The members each chunk's copies must be on, ranked by the writer now (k = 1: one block, m + 1 copies or more). */
function targetsOf (w: ClusterHost, refs: ChunkRef[]): Map<string, string[]> {
  const members = w.policy.members()
  return new Map(refs.map(r => {
    assert.equal(r.k, 1, 'replicated chunks (two hosts up when written)')
    return [r.cid!.toString(), w.policy.rank(r, members, Math.min(w.policy.copies(r.m, members.length), members.length))]
  }))
}

/** Fragment j of each erasure-coded chunk -> the members it must be on, by the writer's plan now (assignment.ts). */
function wantsOf (w: ClusterHost, refs: ChunkRef[]): Map<string, string[][]> {
  const members = w.policy.members()
  return new Map(refs.map(r => {
    assert.ok(r.k > 1, 'erasure-coded chunks (four hosts up when written)')
    return [r.cid!.toString(), assignment(w.policy.rank(r, members, Math.min(r.k + r.m, members.length)), r.k, r.m)]
  }))
}

describe('placed counted against the members, not the connected hosts (5 in-process hosts)', function () {
  this.timeout(300_000)
  // each test starts its own five hosts, stopped after it
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  /** Five hosts, every one connected to every other. */
  async function five (): Promise<ClusterHost[]> {
    const hosts = await startCluster(t, 5, { daemon: { keep } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === 4), 60_000)
    return hosts
  }

  /**
   * Waits until the writer's pending chunks are those with a target not in `up`, then checks
   * that each chunk it calls placed is held by every target, and that its status counts those
   * (and only those) redundant.
   */
  async function honest (w: ClusterHost, refs: ChunkRef[], targets: Map<string, string[]>, up: ClusterHost[]): Promise<number> {
    const upIds = new Set(up.map(h => h.host.peerId))
    const waiting = [...targets].filter(([, ts]) => ts.some(p => !upIds.has(p))).map(([c]) => c).sort()
    // (the file's chunks: its manifest, a replicated block, is placed as well)
    const pending = (): string[] => [...targets.keys()].filter(c => w.network.pending.has(c)).sort()
    await until(`the writer's pending chunks are the ${waiting.length} with a target away`, () =>
      pending().join() === waiting.join() && [...targets.keys()].every(c => !w.network.isPlacing(c)), 60_000)
      .catch((err: Error) => { throw new Error(`${err.message} (pending: ${pending().length}, placing: ${[...targets.keys()].filter(c => w.network.isPlacing(c)).length})`) })
    let placed = 0
    for (const [c, ts] of targets) {
      if (w.network.pending.has(c)) continue
      placed++
      const block = refs.find(r => r.cid!.toString() === c)!.fragments[0]
      for (const p of ts) {
        const h = up.find(x => x.host.peerId === p)
        assert.ok(h !== undefined, `placed chunk ${c}: target ${p} is up`)
        assert.ok(await h.store.has(block), `placed chunk ${c} is on its target ${h.name}`)
      }
    }
    const s = await w.keep.health()
    assert.equal(s.lost, 0)
    assert.equal(s.redundant, placed, `status counts redundant only the chunks on all their targets: ${JSON.stringify(s)}`)
    return placed
  }

  it('members coming back one by one: pending until each chunk\'s targets hold it', async () => {
    const hosts = await five()
    const [w, , , , e] = hosts
    const away = hosts.slice(1, 4)
    for (const h of away) await h.stop()
    await until('the writer sees only the fifth host', () => w.host.peers().length === 1, 30_000)
    // away, not declared gone (the failure timeout is minutes): still members, still targets
    for (const h of away) assert.ok(w.policy.members().includes(h.host.peerId), `${h.name} is still a member`)

    await w.volume.replaceFile('/f.bin', [randomBytes(8 << 20)], { wait: 'none' })
    const refs = await chunksOf(w, '/f.bin')
    const targets = targetsOf(w, refs)
    // what makes the old rule wrong: a chunk with the fifth host among its targets (the writer
    // and it hold it: as many hosts as are connected) while another target is away
    assert.ok([...targets.values()].some(ts => ts.includes(e.host.peerId)), 'some chunk is ranked on the fifth host')
    assert.equal(await honest(w, refs, targets, [w, e]), 0, 'no chunk has all its targets up')

    const up = [w, e]
    for (const [i, h] of away.entries()) {
      const back = await startHost(t, h.dir, `${h.name}-back`, [w.address], { daemon: { keep } })
      hosts[i + 1] = back
      up.push(back)
      await until(`${back.name} connected to the writer`, () => w.host.peers().some(p => p.id === back.host.peerId), 30_000)
      await honest(w, refs, targets, up)
    }
    assert.equal(await honest(w, refs, targets, up), refs.length)
  })

  it('a member declared gone: the chunks that waited for it are placed on the members left', async () => {
    const hosts = await five()
    const w = hosts[0]
    const gone = hosts[2]
    await gone.stop()
    await until('the writer sees the stopped host go', () => !w.host.peers().some(p => p.id === gone.host.peerId), 30_000)
    await w.volume.replaceFile('/g.bin', [randomBytes(8 << 20)], { wait: 'none' })
    const refs = await chunksOf(w, '/g.bin')
    const before = [...wantsOf(w, refs)].filter(([, want]) => want.some(hs => hs.includes(gone.host.peerId))).map(([c]) => c)
    assert.ok(before.length > 0, 'some chunk of /g.bin is ranked on the stopped host')
    await until('the chunks ranked on the stopped host wait for it', () =>
      before.every(c => w.network.pending.has(c) && !w.network.isPlacing(c)), 60_000)

    // the operator says it will not be back: no longer a member, its chunks ranked without it
    await w.keep.membership.expire()
    assert.ok(!w.policy.members().includes(gone.host.peerId))
    await until('every chunk of /g.bin placed', () => refs.every(r => !w.network.pending.has(r.cid!.toString())), 60_000)
    // every fragment on every host the plan over the members left wants it on (survey.ts plan:
    // the keepers' own test), asked of the stores themselves
    const left = hosts.filter(h => h !== gone)
    for (const ref of refs) {
      const p = await planOnStores(ref, left, w)
      assert.equal(p.health, 'redundant', `chunk ${ref.cid!.toString()}: ${planHeld(p)}`)
    }
    // and reads back from a host that wrote none of it
    assert.equal((await left[1].volume.readFile('/g.bin')).byteLength, 8 << 20)
  })
})
