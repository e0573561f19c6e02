// A host joining 6 hosts of a 4+2 code takes over, for most chunks, the fragment of the host it
// displaces from the chunk's targets. That copy is one fragment's bytes when the joiner fetches
// it from its holder itself (FEATURE_PULL, keeper/repair.ts keeperDeliveries and pullsHere); a
// keeper that does not hold it fetched it and pushed it again: 2.1 bytes moved per byte the
// joiner took over (scripts/bench/repair.ts at 7 hosts), 1.2 to 1.3 since (have-queries included).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { init } from '../../node/cli/index.ts'
import { FEATURES, FEATURE_PULL } from '../../node/net/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { settleRepair, startHost, startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

const keep = { failureTimeoutMs: 600_000, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0, repairBytesPerSecond: 1 << 30 }
const FILES = 4
const FILE_BYTES = 4 << 20

const sent = (hs: ClusterHost[]): number => hs.reduce((a, h) => a + h.swarm.stats().bytesSent, 0)

/** Passes on every host until every chunk is redundant and nothing moves, drops or fails (as the bench settles). */
async function settle (hs: ClusterHost[]): Promise<void> {
  await settleRepair(hs, { timeoutMs: 180_000 })
}

describe('keep.repairer: bytes moved when a host joins (6 in-process hosts + 1, k=4 m=2)', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('the joiner fetches the copies it takes over from their holders: one fragment moved per fragment it holds, no keeper relaying them', async () => {
    const hosts = await startMesh(t, 6, { daemon: { keep } })
    const files = new Map<string, Buffer>()
    for (let i = 0; i < FILES; i++) {
      const data = randomBytes(FILE_BYTES)
      files.set(`/j${i}.bin`, data)
      await hosts[i % 6].volume.replaceFile(`/j${i}.bin`, [data], { wait: 'safe' })
    }
    await settle(hosts)
    const dir = join(hosts[0].dir, '..', 'joiner')
    await init(dir, { networkKey: join(hosts[0].dir, 'network.key') })
    const joiner = await startHost(t, dir, `join-bytes-${Date.now()}`, [hosts[0].address], { daemon: { keep } })
    const all = [...hosts, joiner]
    await until('every host knows every other', () => all.every(h => h.host.peers().length === 6), 60_000)
    const base = sent(all)
    const totals = all.map(h => h.keep.repairer.totals())
    await settle(all)
    const moved = sent(all) - base
    const took = (await joiner.store.usage()).bytesStored
    const fetched = all.reduce((a, h, i) => a + h.keep.repairer.totals().bytesFetched - totals[i].bytesFetched, 0)
    const pushed = all.reduce((a, h, i) => a + h.keep.repairer.totals().bytesPushed - totals[i].bytesPushed, 0)
    const figures = `joiner holds ${took}, fetched ${fetched}, pushed ${pushed}, swarm sent ${moved} (${(moved / took).toFixed(2)} per byte taken over)`
    console.log(`      ${figures}`)
    // about 6/7 of the 16 chunks (1 MiB, fragments of 256 KiB) rank the joiner among their 6
    // targets: a fragment of each
    assert.ok(took >= FILES * (FILE_BYTES >> 20) * (1 << 18) / 2, `the joiner took over fragments of half the chunks at least: ${figures}`)
    // every byte the joiner holds moved once: its fragments fetched by itself from their holders,
    // and a manifest copy (a replicated block) pushed by the keeper that holds it
    assert.equal(fetched + pushed, took, figures)
    assert.ok(pushed < took / 100, `no fragment relayed by a keeper: ${figures}`)
    // the settling passes' have-queries come on top, 0.2 to 0.3 per byte here, as many passes as
    // settling takes (old code: 2.1 and more)
    assert.ok(moved <= 1.6 * took, figures)
    for (const h of [hosts[0], joiner]) {
      h.volume.chunks.dropCache()
      for (const [path, data] of files) assert.deepEqual(Buffer.from(await h.volume.readFile(path)), data, `${path} on ${h.name}`)
    }
  })

  it('a joiner of an older version (no pull/1) is still given its copies: the keepers fetch and push them', async () => {
    const hosts = await startMesh(t, 6, { daemon: { keep } })
    const data = randomBytes(FILE_BYTES)
    await hosts[0].volume.replaceFile('/old.bin', [data], { wait: 'safe' })
    await settle(hosts)
    const dir = join(hosts[0].dir, '..', 'old-joiner')
    await init(dir, { networkKey: join(hosts[0].dir, 'network.key') })
    const joiner = await startHost(t, dir, `join-bytes-old-${Date.now()}`, [hosts[0].address], { daemon: { keep, features: FEATURES.filter(f => f !== FEATURE_PULL) } })
    const all = [...hosts, joiner]
    await until('every host knows every other', () => all.every(h => h.host.peers().length === 6), 60_000)
    await until('every host identified the joiner', () => hosts.every(h => h.host.features(joiner.host.peerId) !== undefined), 60_000)
    assert.deepEqual(hosts[0].features.lacking(FEATURE_PULL), [joiner.host.peerId])
    const totals = all.map(h => h.keep.repairer.totals())
    await settle(all)
    const took = (await joiner.store.usage()).bytesStored
    const pushed = all.reduce((a, h, i) => a + h.keep.repairer.totals().bytesPushed - totals[i].bytesPushed, 0)
    // what it holds it fetched as the keeper of the chunk (the first ranked: its own repair), or
    // the keepers pushed it
    const own = joiner.keep.repairer.totals().bytesFetched - totals[6].bytesFetched
    assert.ok(took > own && pushed >= took - own, `the keepers pushed the joiner its copies: it holds ${took}, fetched ${own} as keeper, pushed ${pushed}`)
    joiner.volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await joiner.volume.readFile('/old.bin')), data)
  })
})
