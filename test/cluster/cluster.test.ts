import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../helpers/tmp.ts'
import { startCluster, until } from '../helpers/cluster.ts'
import type { ClusterHost } from '../helpers/cluster.ts'

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

  it('with 2 holders stopped, every file still reads byte-identical', async () => {
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
