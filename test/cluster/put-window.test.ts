// A large write is placed while it is written (issue 17, item 8): each chunk's fragments go to
// their holders as soon as it is encoded, at most a window of bytes ahead of the placement, and
// the writer keeps only its own share once the rest is placed. Measured by the writer's store
// counters (bytes written new minus bytes removed, with its high-water mark), not by timing.
// The parity of placed chunks is recycled for later ones (ShardLease): the pool's counters say so.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'

const MiB = 1 << 20

describe('placement as a write goes (six in-process hosts, k=4 m=2)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('volume.replaceFile(path, 64 MiB) never holds more on the writer than the placement window plus its own share', async () => {
    const window = 16 * MiB
    const size = 64 * MiB
    const hosts = await startMesh(t, 6, { daemon: { placeWindowBytes: window }, members: true })
    const w = hosts[0]
    assert.deepEqual(w.volume.chunks.params(), { k: 4, m: 2 })
    const data = randomBytes(size)
    const base = w.store.counters().net
    w.store.markPeak()
    async function * pieces (): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < size; at += MiB) yield data.subarray(at, at + MiB)
    }
    await w.volume.replaceFile('/big.bin', pieces(), { wait: 'safe' })
    // six fragments of 256 KiB per chunk on six members: the writer is the target of one
    const own = (size / MiB) * (MiB / 4)
    const slack = 64 * 1024 // the manifest and its copies
    const peak = w.store.counters().peak - base
    assert.ok(peak <= window + own + slack, `the writer held ${(peak / MiB).toFixed(1)} MiB at its peak, over the window (${window / MiB} MiB) + its own share (${own / MiB} MiB)`)
    await until('the writer keeps only its own share', () => w.store.counters().net - base <= own + slack, 60_000)
    // the parity of chunks placed (every push acknowledged) went back to the writer's pool, and
    // later chunks were coded into it (issue 15 item 7: ShardLease): fresh memory only for about
    // a window's worth, and the file still reads back whole below
    const parity = w.volume.chunks.shardPool.counters
    assert.ok(parity.reused > 0 && parity.made < size / MiB, `the writer's encodes: ${JSON.stringify(parity)}`)
    for (const h of hosts.slice(1, 2)) {
      await until(`${h.name} sees /big.bin`, async () => { try { await h.volume.stat('/big.bin'); return true } catch { return false } })
      assert.ok(Buffer.from(await h.volume.readFile('/big.bin')).equals(data), `${h.name} reads the file back`)
    }
  })
})
