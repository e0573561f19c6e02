// A write given up asks every host to delete what it pushed (release.ts). Its pushes run in
// chains (the writer pushes to one holder, which forwards to the next: swarm PUSH hops), so a
// block may land on a host after that host's release, pushed by the hop before it and not by the
// asker: the late push of the asker's own is dropped on arrival, and a relayed one goes too
// (RELAYED_RECHECK_MS after it landed) when its push names the asker as its writer. On main the `darkfs put` Ctrl-C test (test/cli/put.test.ts)
// left one host holding blocks so relayed, 1 run in 4-10. A block promised after the release
// stays, the asker's own promise included: its new write of the same bytes (review33i: deleted
// 5 s after it was promised). The second look is shortened here (RELAYED_RECHECK_MS, 20 s).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { until } from '../../harness/cluster.ts'
import { meshSuite } from '../helpers/mesh.ts'

const RAW = 0x55

describe('a released block relayed here after the release (three hosts)', function () {
  this.timeout(120_000)
  const { hosts } = meshSuite(3, { transport: 'tcp', daemon: { releaseRecheckMs: 5_000 } })

  // `origin`: whose block Q's push names (swarm 1.2.0): W's, a hop of W's chain forwarding it, by default
  const released = async (w: any, q: any, d: any, origin: string = w.host.peerId): Promise<{ cid: CID, release: any }> => {
    const release = d.release
    const bytes = randomBytes(256 * 1024)
    const cid = CID.create(1, RAW, await sha256.digest(bytes))
    // W's release overtakes the block: nothing to delete on D yet
    const gone: Set<string> = await (w.network as any).c.release.ask(d.host.peerId, [cid])
    assert.equal(gone.size, 0, 'D held nothing to delete')
    // the hop before D forwards it (its push, naming W's block)
    const acks = await q.swarm.push([{ cid, bytes, to: [d.host.peerId] }], { origin })
    assert.deepEqual(acks.get(cid.toString()), [d.host.peerId], 'D stored and acknowledged the relayed block')
    return { cid, release }
  }

  it('W asks D to release a block D does not hold yet; Q then pushes it to D: D acknowledges it, then deletes it', async () => {
    const [w, q, d] = hosts
    const { cid } = await released(w, q, d)
    await until('D deleted the relayed copy of the released block', async () => !(await d.store.has(cid)), 60_000)
  })

  it('the same, but W then writes the same bytes again and D promises the block to W: D keeps it past the second look', async () => {
    const [w, q, d] = hosts
    const { cid, release } = await released(w, q, d)
    const before = release.rechecked
    const promised: Set<string> = await w.custody.ask(d.host.peerId, [cid])
    assert.ok(promised.has(cid.toString()), 'D promised the block to W')
    await until("D's second look at the relayed block ran", () => release.rechecked > before, 60_000)
    assert.equal(await d.store.has(cid), true, 'D kept the block it promised W after the release')
  })

  it('Q pushes the same bytes to D as its own block (naming itself) after W\'s release: the second look keeps it (W did not put it)', async () => {
    const [w, q, d] = hosts
    const { cid, release } = await released(w, q, d, q.host.peerId)
    const before = release.rechecked
    await until("D's second look at the block ran", () => release.rechecked > before, 60_000)
    assert.equal(await d.store.has(cid), true, 'D kept Q\'s block: W\'s release does not reach it')
  })
})
