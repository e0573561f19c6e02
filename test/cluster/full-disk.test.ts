// Issue 8 (faults): one host of five has a tiny tmpfs as its data dir. Once it is full its writes
// fail with ENOSPC, pushes to it are not acknowledged, its peers leave it out of placement, it
// keeps serving what it holds, and once space is freed it is a member again.
import assert from 'node:assert/strict'
import { randomBytes, createHash } from 'node:crypto'
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { init } from '../../node/cli/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { startHost, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { run } from '../../harness/mesh.ts'
import { Story } from '../../harness/story.ts'

/** Size of the full host's tmpfs (its reserve is then 10% of it, space.ts). */
const TMPFS_BYTES = 24 * 1024 * 1024
const HOSTS = 5

async function cids (h: ClusterHost): Promise<Set<string>> {
  const out = new Set<string>()
  for await (const c of h.store.cids()) out.add(c.toString())
  return out
}

describe('a host whose disk is full (a small tmpfs data dir)', function () {
  this.timeout(180_000)
  const t = new Teardown()
  let hosts: ClusterHost[]
  let full: ClusterHost
  let others: ClusterHost[]
  let ballast: string
  const before_ = new Map<string, Buffer>()
  // the tests are the stages of one story on one fixture: each runs the stages before it (harness/story.ts)
  const story = new Story()

  before(async () => {
    const root = await tempDir(t, 'darkfs-full-')
    hosts = []
    for (let i = 0; i < HOSTS; i++) {
      const dir = join(root, `h${i}`)
      const last = i === HOSTS - 1
      if (last) {
        await mkdir(dir)
        await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', dir])
        t.add(async () => { await run('umount', ['-l', dir]) })
      }
      await init(dir, i === 0 ? { newNetwork: true } : { networkKey: join(root, 'h0', 'network.key') })
      // no background repair: the test runs passes itself; the full host measures often
      const daemon = { keep: { repairIntervalMs: 0 }, ...(last ? { space: { intervalMs: 100 } } : {}) }
      hosts.push(await startHost(t, dir, `full-${process.pid}-h${i}`, i === 0 ? [] : [hosts[0].address], { daemon }))
    }
    full = hosts[HOSTS - 1]
    others = hosts.slice(0, -1)
    ballast = join(full.dir, 'ballast')
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === HOSTS - 1))
  })
  after(async () => { await t.run() })

  it('before it is full it is a member and takes fragments like any host', story.step(async () => {
    assert.equal(full.space.isFull(), false)
    for (const h of hosts) assert.ok(h.keep.membership.members().includes(full.host.peerId), `${h.name} ranks it`)
    const data = randomBytes(3 << 20)
    before_.set('/before.bin', data)
    await hosts[0].volume.replaceFile('/before.bin', [data], { wait: 'safe' })
    assert.ok((await cids(full)).size > 0, 'the tmpfs host holds fragments of a file written elsewhere')
  }))

  it('below its reserve it is full: every peer leaves it out of members() and keeps it live()', story.step(async () => {
    const fs = await statfs(full.dir)
    const { reserve } = full.space.snapshot()
    // leave half the reserve free: darkfs did not fill it, but it is full all the same
    await writeFile(ballast, Buffer.alloc(Math.max(0, fs.bavail * fs.bsize - Math.floor(reserve / 2))))
    await until('the host knows it is full', () => full.space.isFull())
    assert.ok(!full.keep.membership.members().includes(full.host.peerId), 'it plans without itself too')
    for (const h of others) {
      await until(`${h.name} hears it is full`, () => h.keep.membership.fullHosts().includes(full.host.peerId))
      assert.ok(!h.keep.membership.members().includes(full.host.peerId), `${h.name} leaves it out of members()`)
      assert.ok(h.keep.membership.live().includes(full.host.peerId), `${h.name} keeps it live`)
    }
  }))

  it('store.put on the full host fails with ENOSPC; volume.replaceFile there too, losing nothing stored', story.step(async () => {
    const held = await cids(full)
    const bytes = randomBytes(1000)
    const { cidOf } = await import('../../node/data/index.ts')
    await assert.rejects(full.store.put(cidOf(bytes), bytes), (err: any) => err.code === 'ENOSPC' && /full/.test(err.message))
    await assert.rejects(full.volume.replaceFile('/on-full.bin', [randomBytes(2 << 20)], { wait: 'safe' }), (err: any) => err.code === 'ENOSPC')
    const after = await cids(full)
    for (const c of held) assert.ok(after.has(c), `${c} is still stored`)
    assert.deepEqual(Buffer.from(await full.volume.readFile('/before.bin')), before_.get('/before.bin'))
  }))

  it('new chunks written elsewhere are placed on the other hosts (redundant) and none on the full host', story.step(async () => {
    const held = await cids(full)
    const data = randomBytes((4 << 20) + 5)
    before_.set('/during.bin', data)
    await hosts[1].volume.replaceFile('/during.bin', [data], { wait: 'safe' })
    // the keepers (the full host among them) complete every chunk without it, pass after pass
    await until('every host reports every chunk redundant', async () => {
      for (const h of hosts) await h.keep.repairer.pass()
      const all = await Promise.all(hosts.map(async h => await h.keep.status()))
      return all.every(s => s.redundant === s.total)
    }, 90_000)
    assert.deepEqual(await cids(full), held, 'the full host received no new fragment and lost none')
    for (const h of hosts) assert.deepEqual(Buffer.from(await h.volume.readFile('/during.bin')), data, `read on ${h.name}`)
  }))

  it('the full host serves the fragments it holds', story.step(async () => {
    const held = [...await cids(full)].slice(0, 3)
    assert.ok(held.length > 0)
    for (const key of held) {
      const cid = CID.parse(key)
      const got = await others[0].swarm.pullAny([cid], 1, [full.host.peerId])
      const bytes = got.get(key)!
      assert.equal(createHash('sha256').update(bytes).digest().compare(Buffer.from(cid.multihash.digest)), 0)
    }
  }))

  it('once space is freed it has room again, is a member everywhere and takes new fragments', story.step(async () => {
    await rm(ballast)
    await until('the host has room again', () => !full.space.isFull())
    for (const h of others) {
      await until(`${h.name} ranks it again`, () => h.keep.membership.members().includes(full.host.peerId))
    }
    const held = await cids(full)
    const data = randomBytes(3 << 20)
    await hosts[2].volume.replaceFile('/after.bin', [data], { wait: 'safe' })
    const now = await cids(full)
    assert.ok([...now].some(c => !held.has(c)), 'a new fragment landed on it')
    await full.volume.replaceFile('/on-room.bin', [randomBytes(1 << 20)], { wait: 'safe' })
  }))
})
