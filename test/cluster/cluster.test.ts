import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

describe('a cluster of in-process hosts (memory transport, pnet, kad-dht)', function () {
  const t = new Teardown()
  let hosts: ClusterHost[]
  const files = new Map<string, Buffer>()

  before(async () => {
    hosts = await startCluster(t, 6)
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1))
  })
  after(async () => { await t.run() })

  it('new chunks use the live network: k=4, m=2 on six hosts', () => {
    assert.deepEqual(hosts[0].volume.chunks.params(), { k: 4, m: 2 })
  })

  it('a file written on one host reads byte-identical on every other', async () => {
    for (const [i, size] of [[0, 3 << 20], [1, 100], [2, (5 << 20) + 3]] as const) {
      const data = randomBytes(size)
      const path = `/from-h${i}.bin`
      files.set(path, data)
      await hosts[i].volume.replaceFile(path, [data], { wait: 'safe' })
    }
    for (const h of hosts) {
      for (const [path, data] of files) {
        await until(`${h.name} sees ${path}`, async () => { try { await h.volume.stat(path); return true } catch { return false } })
        assert.deepEqual(Buffer.from(await h.volume.readFile(path)), data, `${path} on ${h.name}`)
      }
    }
  })

  it('fragments are spread: no host holds every fragment of a chunk, capacity adds up', async () => {
    const usage = await Promise.all(hosts.map(async h => (await h.store.usage()).bytesStored))
    const total = usage.reduce((a, b) => a + b, 0)
    const written = [...files.values()].reduce((a, b) => a + b.byteLength, 0)
    // 4+2 coding stores 1.5x what is written, spread over the hosts
    assert.ok(total >= written * 1.4, `stored ${total} for ${written} written`)
    for (const u of usage) assert.ok(u < written, `a host stores ${u} of ${written}: not spread`)
  })

  it('a sequential reader gets the next chunks fetched ahead (prefetch)', async () => {
    const data = randomBytes(6 << 20) // chunks 0..5: reading 0 then 1 fetches 2..5 ahead
    await hosts[0].volume.replaceFile('/seq.bin', [data], { wait: 'safe' })
    const reader = hosts[2]
    await until('the reader sees /seq.bin', async () => { try { await reader.volume.stat('/seq.bin'); return true } catch { return false } })
    reader.volume.chunks.dropCache()
    const received = (): number => reader.swarm.stats().bytesReceived
    const fh = await reader.volume.open('/seq.bin', 'r')
    try {
      const buf = new Uint8Array(1 << 20)
      const start = received()
      await fh.read(buf, 0, buf.byteLength, 0)
      await fh.read(buf, 0, buf.byteLength, 1 << 20)
      // let the background fetches finish: the byte count stops moving
      let last = -1
      await until('prefetches settle', async () => {
        const now = received()
        const stable = now === last
        last = now
        await new Promise(resolve => setTimeout(resolve, 300))
        return stable
      })
      assert.ok(received() - start > (2 << 20), 'more than the two chunks read arrived')
      const before = received()
      for (let i = 2; i < 6; i++) {
        const { bytesRead } = await fh.read(buf, 0, buf.byteLength, i << 20)
        assert.deepEqual(Buffer.from(buf.subarray(0, bytesRead)), data.subarray(i << 20, (i + 1) << 20))
      }
      assert.equal(received(), before, 'chunks 2..5 were served from the prefetched cache')
    } finally {
      await fh.close()
    }
  })

  it('with 2 holders stopped, every file still reads byte-identical', async () => {
    // `wait: 'safe'` returns once one lost host loses nothing; losing two needs every fragment placed
    await until('every chunk fully placed', async () => {
      const s = await hosts[0].keep.status()
      return s.total > 0 && s.redundant === s.total
    }, 60_000)
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
