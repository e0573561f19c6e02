// Chunks fetched whole from other hosts are assembled where their fragments arrive (issue 15):
// each data fragment fetched is received by the swarm's frame decoder straight into its part of
// the chunk (a Landing), so the chunk is neither copied together from per-fragment buffers nor
// decoded when all k data fragments are there; a chunk rebuilt through parity is rebuilt in the
// same buffer, around the fragments that landed. The bytes read are the bytes written, either way.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import type { ChunkRef } from '../../node/data/index.ts'

const MiB = 1 << 20
const CHUNKS = 8

async function chunksOf (h: ClusterHost, path: string): Promise<ChunkRef[]> {
  const content = h.tree.byIno((await h.volume.stat(path)).ino)!.content
  assert.ok(content !== null && 'manifest' in content, `${path} has chunks`)
  return (await h.volume.chunks.readManifest(content.manifest)).chunks
}

describe('chunks fetched whole land in place (six in-process hosts, 4+2)', function () {
  const t = new Teardown()
  let hosts: ClusterHost[]
  const data = randomBytes(CHUNKS * MiB)

  before(async () => {
    hosts = await startCluster(t, 6)
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
    await hosts[0].volume.replaceFile('/l.bin', [data], { wait: 'safe' })
    const reader = hosts[5]
    await until('the reader sees /l.bin', async () => {
      try { return (await reader.volume.stat('/l.bin')).size === data.byteLength } catch { return false }
    })
  })
  after(async () => { await t.run() })

  /** Every chunk of /l.bin read whole on `h` from cold caches, checked; the read counters it moved. */
  async function readAll (h: ClusterHost): Promise<{ fetches: number, landed: number, rebuilt: number, fetchedData: number }> {
    const refs = await chunksOf(h, '/l.bin')
    assert.equal(refs.length, CHUNKS)
    assert.ok(refs.every(r => r.k === 4 && r.m === 2), 'chunks are 4+2')
    h.volume.chunks.dropCache()
    const before = h.volume.chunks.readCounters()
    // data fragments not held here: the ones a fetch may land
    let fetchedData = 0
    for (const ref of refs) {
      for (let j = 0; j < ref.k; j++) if (!await h.store.has(ref.fragments[j])) fetchedData++
    }
    for (const ref of refs) {
      const bytes = await h.volume.chunks.readChunk(ref)
      assert.ok(Buffer.from(bytes).equals(data.subarray(ref.offset, ref.offset + ref.size)), `chunk at ${ref.offset} reads back as written`)
    }
    const after = h.volume.chunks.readCounters()
    return { fetches: after.fetches - before.fetches, landed: after.landed - before.landed, rebuilt: after.rebuilt - before.rebuilt, fetchedData }
  }

  it('a chunk fetched from peers gets its data fragments received in place, and reads back right', async () => {
    const got = await readAll(hosts[5])
    assert.equal(got.fetches, CHUNKS, 'each chunk fetched once')
    // the reader holds one fragment of each chunk, so each fetch takes 3 of the other 5: at least
    // one of them a data fragment (all 3 when it holds a data fragment and no parity is taken)
    assert.ok(got.landed >= CHUNKS, `data fragments received in place: ${got.landed} for ${CHUNKS} chunks (on the old code: none)`)
    assert.ok(got.landed <= got.fetchedData, `no more landed (${got.landed}) than data fragments fetched could be (${got.fetchedData})`)
  })

  it('a chunk rebuilt through parity around landed fragments reads back right (a data fragment\'s holder stopped)', async () => {
    const reader = hosts[5]
    const refs = await chunksOf(reader, '/l.bin')
    // a host, neither the writer nor the reader, holding a data fragment of the first chunk
    let gone: ClusterHost | undefined
    for (const h of hosts.slice(1, 5)) {
      if (await h.store.has(refs[0].fragments[0]) || await h.store.has(refs[0].fragments[1]) || await h.store.has(refs[0].fragments[2]) || await h.store.has(refs[0].fragments[3])) { gone = h; break }
    }
    assert.ok(gone !== undefined, 'a host other than the writer and the reader holds a data fragment of chunk 0')
    await gone.stop()
    await until('the reader sees the host gone', () => !reader.host.peers().some(p => p.id === gone!.host.peerId))
    const got = await readAll(reader)
    assert.ok(got.rebuilt >= 1, `chunks rebuilt through parity: ${got.rebuilt}`)
    assert.ok(got.landed >= 1, `data fragments received in place beside the rebuilds: ${got.landed}`)
  })
})
