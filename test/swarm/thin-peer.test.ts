import assert from 'node:assert/strict'
import { Net, block, randomBytes } from './net.ts'

describe('swarm: peers with a known thin uplink', function () {
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  it('swarm.pull(cid, [thin, fat]) asks the peer whose uplink is known to be thin last, though it was never measured', async () => {
    const uplink = new Map<string, number>()
    const reader = await net.node({ uplink })
    const thin = await net.node()
    const fat = await net.node()
    await net.mesh()
    uplink.set(thin.id, 125_000) // 1 Mbit/s, as `darkfs up --uplink 1mbit` tells its peers
    const bytes = randomBytes(64 * 1024, 11)
    const cid = await block(bytes)
    thin.store.map.set(cid.toString(), bytes)
    fat.store.map.set(cid.toString(), bytes)
    assert.deepEqual(await reader.swarm.pull(cid, [thin.id, fat.id]), bytes)
    assert.equal(thin.swarm.stats().peers[reader.id]?.sent ?? 0, 0, 'the thin peer served the block')
    assert.ok(fat.swarm.stats().peers[reader.id].sent >= bytes.byteLength)
  })

  it('swarm.pull(cid, [thin, fat]) still gets the block from the thin peer when it is the only holder', async () => {
    const uplink = new Map<string, number>()
    const reader = await net.node({ uplink })
    const thin = await net.node()
    const fat = await net.node()
    await net.mesh()
    uplink.set(thin.id, 125_000)
    const bytes = randomBytes(64 * 1024, 12)
    const cid = await block(bytes)
    thin.store.map.set(cid.toString(), bytes)
    assert.deepEqual(await reader.swarm.pull(cid, [thin.id, fat.id]), bytes)
  })
})
