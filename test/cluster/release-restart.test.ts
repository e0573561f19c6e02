// A holder restarted (cleanly) knew nobody as the putter of the blocks it held: each counted as
// nobody's, and its writer's release of an abandoned write was refused, the bytes left to GC for
// the retention period (gc37). A clean stop now keeps who put each block (keeper/release-records.ts)
// and the next start takes it.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, startHost, until } from '../../harness/cluster.ts'
import { RELEASE_RECORDS_FILE } from '../../node/keeper/index.ts'

const RAW = 0x55

describe('release records across a holder\'s clean restart (two hosts)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('B pushes a block to D; D restarts; B\'s release of it deletes it, and another member\'s is still refused', async () => {
    const [b, d] = await startCluster(t, 2)
    const bytes = randomBytes(64 * 1024)
    const cid = CID.create(1, RAW, await sha256.digest(bytes))
    assert.deepEqual((await b.swarm.push([{ cid, bytes, to: [d.host.peerId] }])).get(cid.toString()), [d.host.peerId], 'D stored B\'s block')
    await d.stop()
    await access(join(d.dir, RELEASE_RECORDS_FILE))
    const again = await startHost(t, d.dir, `${d.name}-again`, [b.address])
    await assert.rejects(access(join(d.dir, RELEASE_RECORDS_FILE)), 'the start took the file')
    assert.equal(await again.store.has(cid), true)
    await until('B and D connected again', () => b.host.connected(again.host.peerId))
    const release = (peer: any): any => peer.network.c.release
    // a third party's release: refused as before the restart (D's own release stands in for one)
    assert.equal(again.release.refusals.notPut, 0)
    assert.deepEqual(await again.release.answer([cid], 'some-member'), [false], 'a member that did not put it is refused')
    assert.equal(again.release.refusals.notPut, 1)
    assert.deepEqual([...await release(b).ask(again.host.peerId, [cid])], [cid.toString()], 'B\'s own release deletes it')
    assert.equal(await again.store.has(cid), false)
  })

  it('B pushes a block to D while D starts, before D\'s release is made: B\'s release of it deletes it after the start, another member\'s is refused (mend37g2)', async () => {
    const [b, d] = await startCluster(t, 2)
    const dPeer = d.host.peerId
    await d.stop()
    let entered!: () => void
    const inStart = new Promise<void>(resolve => { entered = resolve })
    let go!: () => void
    const gate = new Promise<void>(resolve => { go = resolve })
    // D's start waits just before its release is made, until B pushed
    const starting = startHost(t, d.dir, `${d.name}-again`, [b.address], { daemon: { beforeRelease: async () => { entered(); await gate } } })
    // (a start failing before the hook ends the test)
    await Promise.race([inStart, starting.then(() => { throw new Error('D started without waiting before its release') })])
    await until('B and D connected again', () => b.host.connected(dPeer))
    const bytes = randomBytes(64 * 1024)
    const cid = CID.create(1, RAW, await sha256.digest(bytes))
    assert.deepEqual((await b.swarm.push([{ cid, bytes, to: [dPeer] }])).get(cid.toString()), [dPeer], 'D stored B\'s block during its start')
    go()
    const again = await starting
    assert.equal(await again.store.has(cid), true)
    assert.deepEqual(await again.release.answer([cid], 'some-member'), [false], 'a member that did not put it is refused')
    const release = (peer: any): any => peer.network.c.release
    assert.deepEqual([...await release(b).ask(dPeer, [cid])], [cid.toString()], 'B\'s own release deletes it')
    assert.equal(await again.store.has(cid), false)
  })
})
