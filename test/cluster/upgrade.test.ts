// A rolling upgrade (node/net/features.ts, README "Upgrading"): hosts announce the features they
// understand on identify, and a writer makes multi-extent ops (issue 15 item 1: the ranges of one
// fsync in one op) only while every member announced 'multiext/1'. Here one of three real hosts
// plays a host of an older version (it announces no feature): the writer's fsyncs are one op per
// range, and every host reads the bytes written. Once that host is restarted announcing the
// feature (the same data dir and identity, as an upgrade does), the writer's next fsync is one
// multi-extent op, which the upgraded host applies too.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { init } from '../../node/cli/index.ts'
import { FEATURE_MULTIEXT } from '../../node/net/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { startHost, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { pageSyncs } from '../helpers/page-syncs.ts'

const PAGES = [3, 17, 40, 51]

describe('cluster: multi-extent ops wait for every member to announce them', function () {
  this.timeout(240_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('one op per range while a member announces no multiext/1; one op per fsync once it is upgraded; every host reads the bytes', async () => {
    const root = await tempDir(t, 'darkfs-upgrade-')
    const dirs = [0, 1, 2].map(i => join(root, `h${i}`))
    await init(dirs[0], { newNetwork: true })
    for (const dir of dirs.slice(1)) await init(dir, { networkKey: join(dirs[0], 'network.key') })
    const name = (i: number, run = 0): string => `upgrade-${process.pid}-${run}-h${i}`
    const seed = await startHost(t, dirs[0], name(0), [])
    const writer = await startHost(t, dirs[1], name(1), [seed.address])
    // a host of an older version: it announces no feature
    let old: ClusterHost = await startHost(t, dirs[2], name(2), [seed.address], { daemon: { features: [] } })
    const ids = [seed, writer, old].map(h => h.host.peerId)
    await until('full mesh, every member in the writer\'s table', () =>
      [seed, writer, old].every(h => h.host.peers().length === 2) && ids.every(id => writer.members.has(id)), 60_000)
    await until('the writer identified every peer', () => ids.every(id => id === writer.host.peerId || writer.host.features(id) !== undefined), 60_000)
    assert.deepEqual(writer.features.lacking(FEATURE_MULTIEXT), [old.host.peerId])

    const model = new Uint8Array(512 * 1024).map((_, i) => (i * 7) & 0xff)
    await writer.volume.writeFile('/db', model)
    const id = writer.tree.byIno((await writer.volume.stat('/db')).ino)!.id
    const fh = await writer.volume.open('/db', 'r+')
    t.add(async () => { await fh.close().catch(() => {}) })
    const { sync: syncPages, offsets } = pageSyncs(writer.tree, id, fh, model, PAGES)
    const reads = async (h: ClusterHost): Promise<boolean> => {
      const got = await h.volume.readFile('/db').catch(() => undefined)
      return got !== undefined && Buffer.from(got).equals(model)
    }

    const single = await syncPages(1)
    assert.equal(single.length, PAGES.length, 'one op per range while a member may refuse multi-extent ops')
    assert.ok(single.every(b => !('more' in b)))
    assert.deepEqual(offsets(single), PAGES.map(p => p * 4096))
    await until('every host reads the single-extent writes', async () => (await reads(seed)) && (await reads(old)), 60_000)

    // the older host is upgraded: the same data dir and identity, announcing this version's features
    await old.stop()
    old = await startHost(t, dirs[2], name(2, 1), [seed.address])
    await until('the writer identified the upgraded host', () => writer.features.supportedByAll(FEATURE_MULTIEXT), 60_000)
      .catch((err: Error) => { throw new Error(`${err.message}: lacking ${writer.features.lacking(FEATURE_MULTIEXT).join(', ')}`) })

    const multi = await syncPages(2)
    assert.equal(multi.length, 1, 'one op per fsync once every member announces multiext/1')
    assert.equal((multi[0] as any).more?.length, PAGES.length - 1)
    assert.deepEqual(offsets(multi), PAGES.map(p => p * 4096))
    await fh.close()
    await until('every host reads the multi-extent write', async () => (await reads(seed)) && (await reads(old)), 60_000)
  })
})
