// A writer remembers the acknowledgements of the chunks it placed (network.ts placement
// records). When the same bytes are written again after GC deleted their fragments on the
// holders, the record still says every target holds them: the chunk counted as placed with no
// push, its parity nowhere and its data fragments on the writer alone (review30d). A record is
// a hint: the targets' promises (custody.ts, given only for a block held) are the check, and a
// target that does not promise is pushed to again before the write's placement is over.
// An open file's fsync, which waits for the chunk to survive one lost host, returned at once on
// the remembered record, before the promise round found the holders empty (review31b).
// Checked by where the fragments are once the write or fsync returned, not by timing.
import assert from 'node:assert/strict'
import { until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { codedChunk, heldOn } from '../helpers/chunks.ts'
import { meshSuite } from '../helpers/mesh.ts'


describe('the same bytes written again after GC deleted their fragments (six hosts, k=4 m=2)', function () {
  this.timeout(240_000)
  // no retention of old versions, so GC deletes a removed file's fragments at once (run by
  // hand), once the promises the first write's placement asked for are over (GC keeps a
  // promised block): they end soon
  const { hosts } = meshSuite(6, { transport: 'tcp', daemon: { custodyPromiseMs: 1_000, keep: { retentionMs: 0, gcIntervalMs: 3_600_000 } } })

  for (const how of ['replaceFile', 'fsync'] as const) {
    it(`the second write (${how}) returns once its fragments are pushed again: every fragment held, k of them besides the writer`, async () => {
      await writeTwice(how)
    })
  }

  async function writeTwice (how: 'replaceFile' | 'fsync'): Promise<void> {
  const [w] = hosts
  const others = hosts.slice(1)
  const { k, m, bytes: x, ref, key } = codedChunk(w)
  assert.ok(k > 1 && m > 0, `an erasure-coded chunk (k=${k} m=${m})`)
  // per fragment, how many of `on` hold it
  const where = async (on: ClusterHost[]): Promise<number[]> => await heldOn(ref, on)
  // every fragment held somewhere, k of them beside the writer
  const placed = async (): Promise<string | undefined> => {
    const all = await where(hosts)
    const away = await where(others)
    if (all.every(n => n > 0) && away.filter(n => n > 0).length >= k) return undefined
    return `hosts holding each fragment: ${all.join(', ')}; besides the writer: ${away.join(', ')}`
  }

  await w.volume.replaceFile(`/a-${how}.bin`, [x], { wait: 'safe' })
  assert.equal(w.network.holders(key)?.pending, false, 'the first write placed the chunk')
  assert.equal(await placed(), undefined, 'the first write placed every fragment')

  await w.volume.unlink(`/a-${how}.bin`)
  await until('the first file gone on every host', async () => (await Promise.all(hosts.map(async h => await h.volume.stat(`/a-${how}.bin`).then(() => false, () => true)))).every(Boolean), 60_000)
  await until('the promises made to the writer ended', () => hosts.every(h => ref.fragments.every(f => !h.custody.promised(f))), 30_000)
  // a block goes in the round after the one that first saw it unreferenced (gc.ts)
  for (let round = 0; round < 2; round++) for (const h of hosts) await h.keep.collector.collect()
  assert.deepEqual(await where(others), ref.fragments.map(() => 0), 'GC deleted every fragment on the other hosts')
  assert.notEqual(w.network.holders(key), undefined, 'the writer still has its record of the placement')

  if (how === 'replaceFile') {
    await w.volume.replaceFile(`/b-${how}.bin`, [x], { wait: 'safe' })
    assert.equal(await placed(), undefined, 'the second write placed every fragment')
  } else {
    const fh = await w.volume.open(`/b-${how}.bin`, 'w')
    await fh.write(x, 0, x.byteLength, 0)
    await fh.sync()
    const right = await placed()
    await fh.close()
    assert.equal(right, undefined, 'the fsync returned with every fragment held')
  }
  await until('the second file seen on host 3', async () => await hosts[3].volume.stat(`/b-${how}.bin`).then(() => true, () => false), 60_000)
  assert.ok(Buffer.from(await hosts[3].volume.readFile(`/b-${how}.bin`)).equals(x), 'the second file reads back on another host')
  }
})
