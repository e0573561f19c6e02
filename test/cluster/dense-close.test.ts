// The close of a file after small writes patched every chunk of it densely (issue 15, six hosts:
// fio's random 4 KiB writes over 1 GiB, then fio's fsync every 16 writes at 20 IOPS): the close
// rewrites those chunks whole, and each is placed as the close stores it, the close waiting for
// room in the placement window (node/open-file.ts storeVersionChunk, early-chunks.ts storeNow),
// not stored all first and placed once the version is recorded, when the next fsync waited for
// the placement of the whole rewrite (SYNC_PLACE_WAIT_MS, 20 s). Measured by the writer's store
// counters, not by timing: during the close it holds at most the window ahead of the placement
// (plus its own share), and when the close returns only that much is left to place. A sparse
// close's extents point into packed chunks the spills stored: those go through the window too.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { OpenFile } from '../../node/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { prngInts } from '../../harness/prng.ts'

const MiB = 1 << 20

/**
 * The placement of the file's committed versions is over on its writer (the Volume's track() of
 * them: a chunk still being stored here is not pending yet, nor is the manifest until every chunk
 * is placed) and nothing is left pending. An empty pending list alone comes early: it is empty
 * while the last chunks of a write are still stored, and they, and the manifest, come after.
 */
function placed (h: ClusterHost, id: string): boolean {
  return !(h.volume as unknown as { placing: Map<string, unknown> }).placing.has(id) && h.network.pending.size === 0
}

describe('cluster: the close of densely patched chunks (six in-process hosts, k=4 m=2)', function () {
  this.timeout(300_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('places the chunks it rewrites as it stores them: never more than the placement window ahead, and no more than that left when it returns', async () => {
    const window = 4 * MiB
    const chunks = 24
    const hosts = await startMesh(t, 6, { daemon: { placeWindowBytes: window }, members: true })
    const w = hosts[0]
    const r = hosts[5]
    assert.deepEqual(w.volume.chunks.params(), { k: 4, m: 2 })
    const model = randomBytes(chunks * MiB)
    await w.volume.writeFile('/dense.bin', model)
    const id = w.tree.byIno((await w.volume.stat('/dense.bin')).ino)!.id
    await until('the first version placed', () => placed(w, id), 120_000)
    const fh = await w.volume.open('/dense.bin', 'r+')
    // a small buffer: the writes spill (packed) many times, as fio's do past 32 MiB
    const f = (w.volume as unknown as { open_: Map<string, OpenFile> }).open_.get(id)!
    f.bufferBytes = MiB
    // 96 pages of 4 KiB in every chunk (some twice: a later write wins), more than a quarter of
    // it: each chunk is rewritten whole at the close
    const next = prngInts(5)
    for (let step = 0; step < chunks * 96; step++) {
      const pos = (step % chunks) * MiB + next(MiB / 4096) * 4096
      const page = randomBytes(4096)
      await fh.write(page, 0, page.byteLength, pos)
      page.copy(model, pos)
    }
    await until('the spills\' writes settled', () => w.network.pending.size === 0, 60_000)
    const base = w.store.counters().net
    w.store.markPeak()
    await fh.close()
    // six fragments of 256 KiB per chunk on six members: the writer is the target of one
    const own = chunks * (MiB / 4)
    const slack = 256 * 1024 // the manifest and its copies, and one chunk's fragments past the window
    const peak = w.store.counters().peak - base
    assert.ok(peak <= window + own + slack, `the writer held ${(peak / MiB).toFixed(1)} MiB ahead during the close, over the window (${window / MiB} MiB) + its own share (${own / MiB} MiB)`)
    const left = w.store.counters().net - base
    assert.ok(left <= window + own + slack, `${(left / MiB).toFixed(1)} MiB held here when the close returned, over the window + its own share`)
    await until('the writer keeps only its own share', () => w.store.counters().net - base <= own + slack, 60_000)
    await until(`${r.name} sees the closed version`, async () => {
      const c = r.tree.get(id)?.content
      const ours = w.tree.get(id)?.content
      return c != null && ours != null && 'manifest' in c && 'manifest' in ours && c.manifest.equals(ours.manifest)
    }, 60_000)
    assert.ok(Buffer.from(await r.volume.readFile('/dense.bin')).equals(model), `${r.name} reads the file as written`)
  })

  it('places the packed chunks a sparse close\'s extents point into within the window: no more than it left to place when it returns', async () => {
    const window = 2 * MiB
    const chunks = 48
    const hosts = await startMesh(t, 6, { daemon: { placeWindowBytes: window }, members: true })
    const w = hosts[0]
    const r = hosts[5]
    const model = randomBytes(chunks * MiB)
    await w.volume.writeFile('/sparse.bin', model)
    const id = w.tree.byIno((await w.volume.stat('/sparse.bin')).ino)!.id
    await until('the first version placed', () => placed(w, id), 120_000)
    const fh = await w.volume.open('/sparse.bin', 'r+')
    const f = (w.volume as unknown as { open_: Map<string, OpenFile> }).open_.get(id)!
    f.bufferBytes = MiB
    // 48 pages of 4 KiB in every chunk, under a quarter of it: each chunk is recorded as its
    // patches, extents over the packed chunks the spills stored (9 MiB of them)
    const next = prngInts(8)
    for (let step = 0; step < chunks * 48; step++) {
      const pos = (step % chunks) * MiB + next(MiB / 4096) * 4096
      const page = randomBytes(4096)
      await fh.write(page, 0, page.byteLength, pos)
      page.copy(model, pos)
    }
    assert.equal(w.network.pending.size, 0, 'the spills placed nothing')
    await fh.close()
    assert.ok(w.tree.get(id)!.extents !== undefined && w.tree.get(id)!.extents!.length > chunks, 'the close recorded extents')
    // what the close left to place (its placement starts before it returns): manifests, and at
    // most the packed chunks in the window (one of 1.5 MiB of fragments, the one past it)
    const packed = [...w.network.pending.values()].filter(ref => ref.size >= 64 * 1024)
    assert.ok(packed.length <= 2, `${packed.length} packed chunks left to place when the close returned`)
    await until(`${r.name} has the extents`, () => (r.tree.get(id)?.extents?.length ?? 0) === w.tree.get(id)!.extents!.length, 60_000)
    assert.ok(Buffer.from(await r.volume.readFile('/sparse.bin')).equals(model), `${r.name} reads the file as written`)
  })
})
