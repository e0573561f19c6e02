// retained() with `known` (node/keeper/retained.ts): the chunks of manifests a former listing read
// are taken from it, not read again (a manifest is named by its hash: it never changes); only
// manifests new since are read, and the result is the one a full read gives.
import assert from 'node:assert/strict'
import { Volume } from 'darkfs'
import { retained } from '../../node/keeper/retained.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

describe('retained(): manifests known from a former listing', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('reads only the manifests it does not know, and lists the same chunks', async () => {
    const vol = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/a', new Uint8Array(10_000).fill(1))
    await vol.writeFile('/b', new Uint8Array(20_000).fill(2))
    const reads: string[] = []
    const readManifest = vol.chunks.readManifest.bind(vol.chunks)
    vol.chunks.readManifest = async (cid, opts) => { reads.push(cid.toString()); return await readManifest(cid, opts) }
    const first = await retained(vol, 3600_000)
    assert.equal(reads.length, 2)
    assert.equal(first.manifests.size, 2)
    reads.length = 0
    const again = await retained(vol, 3600_000, { known: first.byManifest })
    assert.equal(reads.length, 0, 'no manifest read again')
    assert.deepEqual([...again.chunks.keys()].sort(), [...first.chunks.keys()].sort())
    assert.deepEqual([...again.byManifest.keys()].sort(), [...first.byManifest.keys()].sort())
    await vol.writeFile('/c', new Uint8Array(30_000).fill(3))
    const third = await retained(vol, 3600_000, { known: again.byManifest })
    assert.equal(reads.length, 1, 'only the new manifest is read')
    const full = await retained(vol, 3600_000)
    assert.deepEqual([...third.chunks.keys()].sort(), [...full.chunks.keys()].sort())
    assert.equal(third.chunks.size, 3)
  })
})
