// A fold (compaction of positioned extents, node/volume.ts) on a host with peers: its chunks are
// placed before its op is committed, so the op never names chunks only the writer holds, and an
// fsync does not wait for a fold's placement (issue 15: with a database's small fsynced writes,
// every few fsyncs waited for a dozen rewritten chunks to reach their peers). Shown here by what
// the writer's network holds when the fold op is made, and by reading the folded file on another
// host after the writer is gone.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { FOLD_EXTENTS, FOLD_SETTLE_MS } from 'darkfs'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'

const MiB = 1 << 20

describe('cluster: a fold places its chunks before its op', function () {
  this.timeout(240_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('the fold op comes after its chunks are placed; another host reads the folded file without the writer', async () => {
    const hosts = await startCluster(t, 3)
    await until('full mesh', () => hosts.every(h => h.host.peers().length === 2), 60_000)
    const [w, , r] = hosts
    const model = randomBytes(3 * MiB + 777)
    await w.volume.writeFile('/db', model)
    const id = w.tree.byIno((await w.volume.stat('/db')).ino)!.id
    // at each local fold op: the chunks the writer still had to place, and how many hosts the
    // writer knew to hold each chunk it placed (from acknowledgements)
    const atFold: Array<{ pending: Set<string>, hosts: Map<string, number> }> = []
    onEachOp(w.tree, (op, local) => {
      if (!local || op.body.type !== 'fold') return
      const hosts = new Map<string, number>()
      for (const key of w.network.placement.keys()) hosts.set(key, w.network.holders(key)?.hosts ?? 0)
      atFold.push({ pending: new Set([...w.network.pending.values()].map(ref => ref.cid!.toString())), hosts })
    })
    const fh = await w.volume.open('/db', 'r+')
    t.add(async () => { await fh.close().catch(() => {}) })
    let step = 0
    const pwrite = async (): Promise<void> => {
      // a few small pages anywhere, then fsync: positioned extents
      for (let i = 0; i < 3; i++) {
        const data = randomBytes(100 + ((step * 37 + i * 11) % 3000))
        const pos = (step * 104_729 + i * 7919) % (model.byteLength - data.byteLength)
        await fh.write(data, 0, data.byteLength, pos)
        data.copy(model, pos)
      }
      step++
      await fh.sync()
    }
    while ((w.tree.get(id)!.extents?.length ?? 0) <= FOLD_EXTENTS) await pwrite()
    const last = w.tree.get(id)!.extents!.at(-1)!
    await until('the extents settle', () => last.hlc[0] <= Date.now() - FOLD_SETTLE_MS, 60_000)
    // a fold starts at a commit once they settled; it commits its op once its chunks are placed
    await until('a fold op is made', async () => {
      if (atFold.length === 0) await pwrite()
      return atFold.length > 0
    }, 120_000)
    await fh.close()

    // the folded version's chunks were placed (held by more than the writer), none still pending
    const content = w.tree.get(id)!.content
    assert.ok(content !== null && 'manifest' in content, 'the fold made a version with chunks')
    const manifest = await w.volume.chunks.readManifest(content.manifest)
    assert.ok(manifest.chunks.length > 0)
    for (const ref of manifest.chunks) {
      if (ref.cid === null) continue
      const key = ref.cid.toString()
      assert.ok(!atFold[0].pending.has(key), `chunk ${key} was still pending when the fold op was made`)
      assert.ok((atFold[0].hosts.get(key) ?? 0) >= 2, `chunk ${key} was held by ${atFold[0].hosts.get(key) ?? 'no known'} host(s) when the fold op was made`)
    }

    // every op reached the reader; then the writer goes, and the folded file reads as written
    const sameVersion = (): boolean => {
      const c = r.tree.get(id)?.content
      return c != null && 'manifest' in c && c.manifest.equals(content.manifest) && (r.tree.get(id)?.extents?.length ?? 0) === (w.tree.get(id)!.extents?.length ?? 0)
    }
    await until('the reader has the writer\'s ops', sameVersion, 60_000)
    await w.stop()
    await until('the reader sees the writer gone', () => r.host.peers().length === 1, 60_000)
    assert.ok(Buffer.from(await r.volume.readFile('/db')).equals(model), 'the folded file reads as written on another host without the writer')
  })
})
