// Offline mode (DESIGN.md §6) on three in-process hosts: the cut-off host browses the whole
// tree, reads what it holds (written, cached, pinned), fails at once with a clear error on the
// rest, keeps its writes local-only, and places them when it is back. Pins ride the push chains.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { cidOf } from '../../node/data/index.ts'
import { BlockUnavailableError } from '../../node/index.ts'
import { CHUNK_SIZE } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { PIN_XATTR_PREFIX } from '../../node/index.ts'
import { plan } from '../../node/keeper/index.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { Teardown } from '../../harness/tmp.ts'
import { isolate, reconnect } from '../../harness/partition.ts'
import { Story } from '../../harness/story.ts'
import { chunksOf } from '../helpers/chunks.ts'

/** Redundancy 1: two copies of every chunk among three hosts, so some chunks miss a host. */
const OPTS = { daemon: { redundancy: 1 } }

async function holdsAll (h: ClusterHost, refs: ChunkRef[]): Promise<boolean> {
  for (const r of refs) if (!(await h.volume.chunks.hasLocally(r))) return false
  return true
}

describe('offline mode: a host cut off from its peers', function () {
  const t = new Teardown()
  let a: ClusterHost, b: ClusterHost, c: ClusterHost
  const data = new Map<string, Buffer>()
  let remote = ''
  // the tests are the stages of one story on one fixture: each runs the stages before it (harness/story.ts)
  const story = new Story()

  before(async () => {
    [a, b, c] = await startCluster(t, 3, OPTS)
    await until('the three hosts see each other', () => [a, b, c].every(h => h.host.peers().length === 2))
  })
  after(async () => { await t.run() })

  it('pins.pin(dir) records a replicated pin every host sees', story.step(async () => {
    await a.volume.mkdir('/pinned')
    await until('c sees /pinned', async () => await c.volume.stat('/pinned').then(() => true, () => false))
    const stats = await c.pins.pin('/pinned')
    assert.deepEqual(stats, { files: 0, chunks: 0, fetched: 0, missing: 0, arriving: 0 })
    const inode = a.tree.byIno((await a.volume.stat('/pinned')).ino)!.id
    await until('a knows c pins /pinned', () => a.pins.pinners(inode).includes(c.host.peerId))
    // the pin is metadata, not a user attribute
    assert.deepEqual(await c.volume.listxattr('/pinned'), [])
    assert.ok(c.tree.get(inode)!.xattrs.has(PIN_XATTR_PREFIX + c.host.peerId))
  }))

  it('a write under a pinned dir reaches the pinning host on the push chain', story.step(async () => {
    const bytes = randomBytes(2 * CHUNK_SIZE + 17)
    data.set('/pinned/p.bin', bytes)
    await a.volume.mkdir('/pinned/sub')
    await a.volume.replaceFile('/pinned/sub/p.bin', [bytes], { wait: 'safe' })
    // 'safe' waited for the pushes, the pinning host's copy included: c holds every chunk now
    const refs = await chunksOf(a, '/pinned/sub/p.bin')
    assert.ok(await holdsAll(c, refs), 'c holds the pinned file after the writer placed it')
  }))

  it('files written by others before the cut', story.step(async () => {
    // a file whose chunk c does not hold: two copies among three hosts, so try a few
    for (let i = 0; i < 30 && remote === ''; i++) {
      const path = `/remote-${i}.bin`
      await a.volume.replaceFile(path, [randomBytes(10_000)], { wait: 'safe' })
      await until(`c sees ${path}`, async () => await c.volume.stat(path).then(() => true, () => false))
      if (!(await holdsAll(c, await chunksOf(a, path)))) remote = path
    }
    assert.notEqual(remote, '', 'some file is not stored on c')
  }))

  it('cut off: status says offline; the whole tree is browsable', story.step(async () => {
    c = await isolate(t, c, [a, b], OPTS)
    assert.equal(c.host.peers().length, 0)
    assert.equal(c.presence.offline(), true)
    const names = await c.volume.readdir('/')
    for (const n of ['pinned', remote.slice(1)]) assert.ok(names.includes(n), `${n} listed offline`)
    assert.equal((await c.volume.stat(remote)).size, 10_000)
    assert.equal((await c.volume.stat('/pinned/sub/p.bin')).size, data.get('/pinned/p.bin')!.byteLength)
  }))

  it('cut off: pinned content reads; the rest fails at once naming the file', story.step(async () => {
    c.volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await c.volume.readFile('/pinned/sub/p.bin')), data.get('/pinned/p.bin'))
    await assert.rejects(c.volume.readFile(remote), (err: any) => {
      assert.ok(err instanceof BlockUnavailableError, `${String(err?.name)}: ${String(err?.message)}`)
      assert.equal(err.code, 'EIO')
      assert.ok(err.message.includes(remote), err.message)
      return true
    })
  }))

  it('cut off: writes are accepted and counted local-only', story.step(async () => {
    const bytes = randomBytes(2 * CHUNK_SIZE)
    data.set('/offline.bin', bytes)
    await c.volume.replaceFile('/offline.bin', [bytes], { wait: 'safe' })
    await c.volume.mkdir('/offline-dir')
    const refs = await chunksOf(c, '/offline.bin')
    for (const r of refs) assert.ok(c.network.pending.has(r.cid!.toString()), 'an offline chunk stays pending')
    c.volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await c.volume.readFile('/offline.bin')), bytes)
    const { ControlClient } = await import('../../node/cli/index.ts')
    const s = await new ControlClient(c.dir).get('/v1/status')
    assert.equal(s.offline, true)
    assert.ok(s.chunks.localOnly >= refs.length, `localOnly ${s.chunks.localOnly} counts the ${refs.length} offline chunks`)
    // the chunks held elsewhere cannot be reached from here: that is not knowing them lost
    assert.equal(s.chunks.lost, 0, JSON.stringify(s.chunks))
    const surveyed = await new ControlClient(c.dir).get('/v1/status?survey=1')
    assert.equal(surveyed.chunks.lost, 0, JSON.stringify(surveyed.chunks))
    assert.ok(surveyed.chunks.unreachable >= 1, `${remote} counts unreachable: ${JSON.stringify(surveyed.chunks)}`)
  }))

  it('back online: ops merge both ways and local-only chunks are placed', story.step(async () => {
    await a.volume.writeFile('/while-away.txt', 'written on a while c was away')
    await reconnect(c, a, [a, b, c])
    await until('a sees the offline writes', async () => await a.volume.stat('/offline.bin').then(() => true, () => false))
    await until('c sees a\'s write', async () => await c.volume.stat('/while-away.txt').then(() => true, () => false))
    const refs = await chunksOf(c, '/offline.bin')
    await until('the offline chunks are placed', () => refs.every(r => !c.network.pending.has(r.cid!.toString())), 30_000)
    // two copies now: one beyond c
    for (const r of refs) {
      const holders = await Promise.all([a, b].map(async h => await h.store.has(r.fragments[0])))
      assert.ok(holders.some(x => x), `chunk ${r.cid!.toString()} has a copy beyond c`)
    }
    a.volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await a.volume.readFile('/offline.bin')), data.get('/offline.bin'))
    const { ControlClient } = await import('../../node/cli/index.ts')
    const s = await new ControlClient(c.dir).get('/v1/status')
    assert.equal(s.offline, false)
    assert.equal(s.chunks.localOnly, 0)
    // status?chunks=0: the rest of the status without the survey of every chunk on every peer
    const light = await new ControlClient(c.dir).get('/v1/status?chunks=0')
    assert.equal(light.chunks, undefined)
    assert.equal(light.offline, false)
    assert.equal(typeof light.bytesStored, 'number')
  }))

  it('back online: a pinning host catches up with what was written under its pin while away', story.step(async () => {
    c = await isolate(t, c, [a, b], OPTS)
    const bytes = randomBytes(CHUNK_SIZE + 1)
    await a.volume.replaceFile('/pinned/late.bin', [bytes], { wait: 'safe' })
    const refs = await chunksOf(a, '/pinned/late.bin')
    assert.equal(await holdsAll(c, refs), false)
    await reconnect(c, a, [a, b, c])
    await until('c holds the late pinned file', async () => await c.volume.stat('/pinned/late.bin').then(() => true, () => false) && await holdsAll(c, refs), 30_000)
  }))

  it('network.fetch of a block no connected peer holds rejects (bounded), never hangs', async () => {
    const missing = cidOf(randomBytes(64))
    assert.ok(CID.asCID(missing) !== null)
    await assert.rejects(c.network.fetch([missing], 1))
  })

  it('pins.unpin(dir) removes the pin everywhere; the copies stay readable here', story.step(async () => {
    await c.pins.unpin('/pinned')
    const inode = a.tree.byIno((await a.volume.stat('/pinned')).ino)!.id
    await until('a sees the unpin', () => !a.pins.pinners(inode).includes(c.host.peerId))
    await assert.rejects(c.pins.unpin('/pinned'), /not pinned/)
    assert.deepEqual(Buffer.from(await c.volume.readFile('/pinned/sub/p.bin')), data.get('/pinned/p.bin'))
  }))

  it('after pins.unpin(dir), repair passes drop the copies this host is not a placement target of', story.step(async () => {
    const refs = [...await chunksOf(c, '/pinned/sub/p.bin'), ...await chunksOf(c, '/pinned/late.bin')]
    // the pin kept a full copy here
    assert.ok(await holdsAll(c, refs), 'c still holds every pinned chunk right after unpin')
    const self = c.host.peerId
    /** Fragments c holds although the placement does not want them on c. */
    const foreign = async (): Promise<string[]> => {
      const members = c.keep.membership.members()
      const live = new Set(c.keep.membership.live())
      const out: string[] = []
      for (const ref of refs) {
        const p = plan(ref, new Map(), members, live, self, c.policy)
        for (const [j, f] of ref.fragments.entries()) {
          const wanted = ref.fragments.some((g, i) => g.equals(f) && p.want[i].includes(self))
          if (!wanted && await c.store.has(f)) out.push(`${ref.cid!.toString()}#${j}`)
        }
      }
      return out
    }
    // k=2, m=1 on three hosts: c is the target of one fragment of a chunk and holds its k data fragments
    assert.ok((await foreign()).length > 0, 'the pin kept copies beyond c\'s own targets')
    let passes = 0
    await until('no foreign copy of the once-pinned files is left on c', async () => {
      passes++
      await c.keep.repairer.pass({ all: true })
      return (await foreign()).length === 0
    }, 30_000)
    assert.ok(passes >= 1)
    // nothing is lost: every chunk still has its copies on its targets, and reads go on
    c.volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await c.volume.readFile('/pinned/sub/p.bin')), data.get('/pinned/p.bin'))
    const s = await c.keep.status()
    assert.equal(s.lost, 0)
    assert.equal(s.localOnly, 0)
  }))
})
