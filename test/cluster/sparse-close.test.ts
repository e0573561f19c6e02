// The close of a file after small writes spread over it, past the spill bound, on a host with
// peers (node/open-file.ts buildSparse, issue 15): the close records positioned extents over the
// packed chunks the spills stored only here, so it places those chunks and their manifests as
// any commit places its chunks. Shown by another host reading the file as written while it is
// still extents (the writer's folds held back), and again, folded, once the writer is gone.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { OpBody } from '../../node/tree/index.ts'
import type { OpenFile } from '../../node/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { prng } from '../../harness/prng.ts'
import { onEachOp } from '../../harness/ops.ts'

const MiB = 1 << 20

describe('cluster: the close of sparse small writes', function () {
  this.timeout(300_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('records extents over placed packed chunks: another host reads them before the folds, and the folded file without the writer', async () => {
    const hosts = await startCluster(t, 3)
    await until('full mesh', () => hosts.every(h => h.host.peers().length === 2), 60_000)
    const [w, , r] = hosts
    const model = randomBytes(12 * MiB + 333)
    await w.volume.writeFile('/big', model)
    const id = w.tree.byIno((await w.volume.stat('/big')).ino)!.id
    const made: OpBody[] = []
    onEachOp(w.tree, (op, local) => {
      if (local && 'inode' in op.body && op.body.inode === id) made.push(op.body)
    })
    // the writer's folds wait (a fold's placement is the only one without `safe`) until the
    // reader has read the extents
    const chunks = w.volume.chunks as unknown as { place: (refs: unknown[], opts?: { safe?: boolean }) => Promise<void> }
    const place = chunks.place.bind(chunks)
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    chunks.place = async (refs, opts = {}) => {
      if (opts.safe !== true) await gate
      await place(refs, opts)
    }
    t.add(async () => { release() })
    const fh = await w.volume.open('/big', 'r+')
    const f = (w.volume as unknown as { open_: Map<string, OpenFile> }).open_.get(id)!
    f.bufferBytes = 128 << 10
    const rand = prng(17)
    for (let step = 0; step < 600; step++) {
      const len = step % 3 === 0 ? 1 + Math.floor(rand() * 5000) : 4096
      const pos = Math.floor(rand() * (model.byteLength - len))
      const data = randomBytes(len)
      await fh.write(data, 0, len, pos)
      data.copy(model, pos)
    }
    const before = made.length
    await fh.close()
    const ops = made.slice(before)
    assert.ok(ops.length > 1 && ops.every(b => b.type === 'append' && b.offset !== undefined), `the close made positioned extents: ${ops.map(b => b.type).join(', ')}`)
    const extents = (): number => w.tree.get(id)?.extents?.length ?? 0
    assert.ok(extents() > 16, `${extents()} extents`)
    await until('the reader has the writer\'s extents', () => (r.tree.get(id)?.extents?.length ?? 0) === extents(), 60_000)
    assert.ok(Buffer.from(await r.volume.readFile('/big')).equals(model), 'another host reads the extents as written')
    release()
    // (the reader had them all: none left there is the fold's op)
    await until('the writer folded every extent, and the reader has the fold', () => extents() === 0 && r.tree.get(id) !== undefined && (r.tree.get(id)!.extents?.length ?? 0) === 0, 240_000)
    await until('every chunk placed', () => w.network.pending.size === 0, 120_000)
    await w.stop()
    await until('the reader sees the writer gone', () => r.host.peers().length === 1, 60_000)
    assert.ok(Buffer.from(await r.volume.readFile('/big')).equals(model), 'the folded file reads as written on another host without the writer')
  })
})
