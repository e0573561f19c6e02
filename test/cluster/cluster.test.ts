import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { settleRepair, startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { chunksOf } from '../helpers/chunks.ts'

/** Six hosts, fully meshed, with `files` written (each with `wait: 'safe'`) and seen by every host. */
async function sixHostsWith (t: Teardown, files: Map<string, Buffer>): Promise<ClusterHost[]> {
  const hosts = await startMesh(t, 6)
  for (const [i, size] of [[0, 3 << 20], [1, 100], [2, (5 << 20) + 3]] as const) {
    const data = randomBytes(size)
    const path = `/from-h${i}.bin`
    files.set(path, data)
    await hosts[i].volume.replaceFile(path, [data], { wait: 'safe' })
  }
  for (const h of hosts) {
    for (const path of files.keys()) {
      await until(`${h.name} sees ${path}`, async () => { try { await h.volume.stat(path); return true } catch { return false } })
    }
  }
  return hosts
}

// Every test here only reads: the files are written once, in before(), and no test stops a host.
describe('a cluster of in-process hosts (memory transport, pnet, kad-dht)', function () {
  const t = new Teardown()
  let hosts: ClusterHost[]
  const files = new Map<string, Buffer>()
  /** Read in order by the prefetch test: chunks 0..5, reading 0 then 1 fetches 2..5 ahead. */
  const seq = randomBytes(6 << 20)

  before(async () => {
    hosts = await sixHostsWith(t, files)
    await hosts[0].volume.replaceFile('/seq.bin', [seq], { wait: 'safe' })
  })
  after(async () => { await t.run() })

  it('new chunks use the live network: k=4, m=2 on six hosts', () => {
    assert.deepEqual(hosts[0].volume.chunks.params(), { k: 4, m: 2 })
  })

  it('a file written on one host reads byte-identical on every other', async () => {
    for (const h of hosts) {
      for (const [path, data] of files) {
        assert.deepEqual(Buffer.from(await h.volume.readFile(path)), data, `${path} on ${h.name}`)
      }
    }
  })

  it('fragments are spread: no host holds every fragment of a chunk, capacity adds up', async () => {
    const usage = await Promise.all(hosts.map(async h => (await h.store.usage()).bytesStored))
    const total = usage.reduce((a, b) => a + b, 0)
    const written = [...files.values(), seq].reduce((a, b) => a + b.byteLength, 0)
    // 4+2 coding stores 1.5x what is written, spread over the hosts
    assert.ok(total >= written * 1.4, `stored ${total} for ${written} written`)
    for (const u of usage) assert.ok(u < written, `a host stores ${u} of ${written}: not spread`)
  })

  it('a sequential reader gets the next chunks fetched ahead (prefetch)', async () => {
    const reader = hosts[2]
    await until('the reader sees /seq.bin', async () => { try { await reader.volume.stat('/seq.bin'); return true } catch { return false } })
    reader.volume.chunks.dropCache()
    const received = (): number => reader.swarm.stats().bytesReceived
    // count the chunk fetches that go to the network (one per chunk not held here): the
    // prefetches are done when all six have come back
    const refs = await chunksOf(reader, '/seq.bin')
    let remote = 0
    for (const ref of refs) if (!await reader.volume.chunks.hasLocally(ref)) remote++
    const network = reader.network
    const fetch = network.fetch.bind(network)
    let fetching = 0
    let fetched = 0
    network.fetch = async (...args) => {
      fetching++
      try { return await fetch(...args) } finally { fetching--; fetched++ }
    }
    const fh = await reader.volume.open('/seq.bin', 'r')
    try {
      const buf = new Uint8Array(1 << 20)
      const start = received()
      await fh.read(buf, 0, buf.byteLength, 0)
      await fh.read(buf, 0, buf.byteLength, 1 << 20)
      await until(`the ${remote} chunk fetches (2 read, the rest prefetched) come back`, () => fetched >= remote && fetching === 0)
      assert.ok(received() - start > (2 << 20), 'more than the two chunks read arrived')
      const before = received()
      for (let i = 2; i < 6; i++) {
        const { bytesRead } = await fh.read(buf, 0, buf.byteLength, i << 20)
        assert.deepEqual(Buffer.from(buf.subarray(0, bytesRead)), seq.subarray(i << 20, (i + 1) << 20))
      }
      assert.equal(received(), before, 'chunks 2..5 were served from the prefetched cache')
    } finally {
      await fh.close()
      network.fetch = fetch
    }
  })
})

describe('a cluster of in-process hosts losing two of six', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('with 2 holders stopped, every file still reads byte-identical', async () => {
    const files = new Map<string, Buffer>()
    const hosts = await sixHostsWith(t, files)
    // `wait: 'safe'` returns once one lost host loses nothing; losing two needs every fragment
    // placed, and no copy on its way elsewhere (a fresh cluster may still move what was placed
    // while its membership formed): repair passes on every host until nothing moves
    await settleRepair(hosts, { timeoutMs: 60_000 })
    const readers = hosts.slice(0, 4)
    await hosts[4].stop()
    await hosts[5].stop()
    await until('the survivors notice', () => readers.every(h => h.host.peers().length === 3))
    for (const h of readers) {
      h.volume.chunks.dropCache()
      for (const [path, data] of files) {
        assert.deepEqual(Buffer.from(await h.volume.readFile(path)), data, `${path} on ${h.name} with 2 hosts down`)
      }
    }
  })
})
