import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

const keep = { failureTimeoutMs: 1000, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 }

/** Flip one byte in every stored block file of at least `min` bytes; returns how many. */
async function flipBlocks (storeDir: string, min: number): Promise<number> {
  let n = 0
  const root = join(storeDir, 'blocks')
  for (const d of await readdir(root)) {
    for (const f of await readdir(join(root, d)).catch(() => [] as string[])) {
      const file = join(root, d, f)
      if (!f.endsWith('.data') || (await stat(file)).size < min) continue
      const bytes = await readFile(file)
      bytes[bytes.length >> 1] ^= 0xff
      await writeFile(file, bytes)
      n++
    }
  }
  return n
}

describe('keep.scrubber (4 in-process hosts, k=2 m=2)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  const data = randomBytes((3 << 20) + 11)

  before(async () => {
    hosts = await startCluster(t, 4, { daemon: { keep } })
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
    await hosts[0].volume.replaceFile('/s.bin', [data], { wait: 'safe' })
    await until('all redundant', async () => {
      const s = await hosts[0].keep.status()
      return s.total === 4 && s.redundant === 4
    }, 30_000)
  })
  after(async () => { await t.run() })

  it('scrub() finds every flipped fragment, and repair restores them', async () => {
    const flipped = await flipBlocks(hosts[1].store.dir, 64 << 10)
    assert.ok(flipped > 0)
    const report = await hosts[1].keep.scrubber.scrub()
    assert.equal(report.corrupt.length, flipped)
    await until('repair restores every chunk to redundant', async () => {
      const s = await hosts[0].keep.status()
      return s.redundant === s.total
    }, 30_000)
    const again = await hosts[1].keep.scrubber.scrub()
    assert.equal(again.corrupt.length, 0)
    hosts[2].volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await hosts[2].volume.readFile('/s.bin')), data)
  })
})
