// An open file's packed chunk (stored here before its commit, placed by the commit's ChunkWrite
// through placeStored(): EarlyChunks.placeNow) and another write of the same bytes on the same
// host that gives up (place34): the packed chunk joined no set of the writes in flight
// (ChunkService.open), so the give-up asked every host to delete the fragments the first write
// had just placed (promises are per peer: both writes are this host's), and the version the first
// write committed named a chunk its holders no longer had. The packed chunk's entry in the set of
// recent commits has aged out (an open file held open longer than RECENT_COMMIT_MS): a fresh set
// stands for that, the clock is not waited for.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { RecentCommits } from '../../node/data/index.ts'

const MiB = 1 << 20

describe('a packed chunk placed by an open write vs a write of the same bytes giving up on the same host (six hosts)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: ClusterHost[]

  before(async () => {
    hosts = await startCluster(t, 6)
    await until('full mesh', () => hosts.every(h => h.host.peers().length === 5), 60_000)
  })

  it('the give-up leaves the fragments the open write placed on the other hosts; the chunk reads on another host after the commit', async () => {
    const [, b, , r] = hosts
    const chunks = b.volume.chunks
    const x = randomBytes(MiB)
    // the open file's spill: stored here unclaimed, not placed yet
    const { ref } = await chunks.storeChunk(x, 0)
    assert.ok(ref.k > 1 && ref.m > 0, `an erasure-coded chunk (k=${ref.k} m=${ref.m})`)
    ;(chunks as unknown as { recent: RecentCommits }).recent = new RecentCommits()
    const others = hosts.filter(h => h !== b)
    const away = async (): Promise<number[]> => await Promise.all(ref.fragments.map(async f => (await Promise.all(others.map(async h => await h.store.has(f)))).filter(Boolean).length))
    // enough of the chunk on the other hosts that it survives the loss of its writer
    const survives = (on: number[]): boolean => on.filter(n => n > 0).length >= ref.k

    // the commit's write places the packed chunk (EarlyChunks.placeNow)
    const first = chunks.write()
    await first.placeStored(ref)
    await first.placed()
    const before = await away()
    assert.ok(survives(before), `placed on the other hosts: ${before.join(',')}`)

    // another write of the same bytes here gives up while the first is open
    const second = chunks.write()
    await second.chunk(x, 0)
    await second.durable()
    await second.placed()
    await second.abandon()
    const after = await away()
    assert.ok(survives(after), `still on the other hosts after the give-up: ${after.join(',')}`)

    // the first commits a version naming the chunk; another host reads it without b's copy
    first.committed()
    const manifest = { v: 3 as const, size: x.byteLength, chunkSize: x.byteLength, chunks: [ref] }
    const m = await chunks.storeManifest(manifest)
    await chunks.place([m.ref], { safe: true })
    r.volume.chunks.dropCache()
    const read = await r.volume.chunks.readChunk(ref)
    assert.ok(Buffer.from(read).equals(x), 'the chunk reads back on another host')
  })
})
