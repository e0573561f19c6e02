// fh.sync() waits for the placement of every version of the file committed on this host,
// including versions committed earlier by flush or close through another handle, until each
// of its chunks survives one lost host (DESIGN.md §5); the rest of the placement goes on after.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { survivesOneLoss } from '../../node/keeper/index.ts'

describe('fh.sync() and placement (three in-process hosts)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('fh.sync() after an earlier close waits until the closed version is placed', async () => {
    const hosts = await startCluster(t, 3)
    await until('full mesh', () => hosts.every(h => h.host.peers().length === 2))
    const [w] = hosts
    const data = randomBytes(3 << 20)
    const a = await w.volume.open('/f', 'w')
    await a.write(data, 0, data.length, 0)
    await a.close() // commits; placement runs in the background
    const b = await w.volume.open('/f', 'r+')
    await b.sync() // nothing new to commit: waits for the placement of the closed version
    const content = w.tree.get(w.tree.lookup(w.tree.root, 'f')!.inode)!.content
    assert.ok(content !== null && 'manifest' in content)
    const refs = (await w.volume.chunks.readManifest(content.manifest)).chunks
    assert.equal(refs.length, 3)
    for (const r of refs) {
      const held = w.network.heldOf(r)
      assert.ok(held !== undefined && survivesOneLoss(held, r.k), `chunk at ${r.offset} would not survive one lost host after fsync`)
    }
    await until('every chunk placed on all its targets', () => refs.every(r => !w.network.pending.has(r.cid!.toString())), 60_000)
    await b.close()
  })
})
