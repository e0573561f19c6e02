// A writer remembers the acknowledgements of the chunks it placed (ChunkNetwork.placement) for
// the latest PLACEMENT_REMEMBERED of them, not for every chunk it ever wrote (a host writing for
// months kept six sets per chunk, never freed). A chunk forgotten and written again is placed
// afresh and reads back on another host.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'

describe('placement records are bounded (ChunkNetwork.placementRemembered)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('keeps the records of the latest placed chunks only; a forgotten chunk written again is placed again', async () => {
    const [a, b, c] = await startCluster(t, 3)
    await until('a full mesh', () => [a, b, c].every(h => h.host.peers().length === 2))
    a.network.placementRemembered = 2
    const data = randomBytes(5 << 20)
    await a.volume.replaceFile('/f', [data], { wait: 'safe' })
    await until('every chunk placed', () => a.network.pending.size === 0, 60_000)
    assert.ok(a.network.placement.size <= 2, `${a.network.placement.size} placement records kept, 2 allowed`)
    // the same bytes again, under another name: chunks already forgotten are placed afresh
    await a.volume.replaceFile('/g', [data], { wait: 'safe' })
    await until('every chunk placed again', () => a.network.pending.size === 0, 60_000)
    assert.ok(a.network.placement.size <= 2, `${a.network.placement.size} placement records kept, 2 allowed`)
    await until('both files on another host', () => ['f', 'g'].every(name => b.tree.lookup(b.tree.root, name) !== undefined), 30_000)
    await a.stop()
    for (const name of ['/f', '/g']) {
      const got = await b.volume.readFile(name)
      assert.ok(Buffer.from(got).equals(data), `${name} reads back whole on another host with the writer stopped`)
    }
  })
})
