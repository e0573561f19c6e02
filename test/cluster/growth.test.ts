// A file grown by pwrite at its end between fsyncs, past PATCH_COMMIT_BYTES, on a host with peers
// (node/open-file.ts buildGrowth, wal42): the growth is positioned extents over the file, which
// merge with a peer's concurrent positioned write inside the old bytes (disjoint: one version,
// no conflict copy, also when the growth is stamped as extents before the writer hears of the
// page) and with a peer's append that reached the writer before its fsync (the growth is then a
// whole version, the append after it); every host reads the same bytes, the grown ones and the
// peer's, and again once the writer folded them and is gone. A peer's append neither saw (stamped
// first, heard by the writer after its fsync) overlaps the growth's bytes: as two writes of the
// same bytes, one of them in a conflict sibling (issue 15's rule), both kept, every host the same.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import { seededBytes } from '../../harness/prng.ts'

const MiB = 1 << 20
const PAGE = 4096

describe('cluster: growth by pwrite at the end as positioned extents', function () {
  this.timeout(300_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('one host grows the file while another writes a page inside it, then a peer\'s append arrives before the writer\'s next fsync: every host reads them all, each where it belongs, no conflict copy, and the folded file without the writer', async () => {
    const hosts = await startMesh(t, 3)
    const [w, p, r] = hosts
    const base = seededBytes(MiB + MiB / 2 + 999, 1)
    await w.volume.writeFile('/wal', base)
    const id = w.tree.byIno((await w.volume.stat('/wal')).ino)!.id
    await until('every host has the file', () => hosts.every(h => h.tree.get(id)?.size === base.byteLength), 60_000)
    const grown = seededBytes(2 * MiB + 100 * PAGE, 2)
    const page = seededBytes(PAGE, 3)
    const fw = await w.volume.open('/wal', 'r+')
    const fp = await p.volume.open('/wal', 'r+')
    for (let at = 0; at < grown.byteLength; at += PAGE) await fw.write(grown, at, PAGE, base.byteLength + at)
    await fp.write(page, 0, PAGE, 100_000)
    // both fsynced at once: neither has seen the other's op
    await Promise.all([fw.sync(), fp.sync()])
    const model = new Uint8Array(base.byteLength + grown.byteLength)
    model.set(base)
    model.set(grown, base.byteLength)
    model.set(page, 100_000)
    await until('every host has both', async () => {
      for (const h of hosts) if (!Buffer.from(await h.volume.readFile('/wal')).equals(model)) return false
      return true
    }, 60_000)
    for (const h of hosts) {
      assert.deepEqual((await h.volume.readdir('/')).filter(n => n.startsWith('wal.conflict-')), [], `${h.name}: no conflict copy`)
    }
    // the writer grows the file again, and a peer's append arrives before its fsync: the growth,
    // made over the file without it, is not stamped at its offsets over it (the append would be
    // hidden under it), but as a whole version, as before: the append lands after it
    const tail = seededBytes(3000, 4)
    const more = seededBytes(MiB + 7 * PAGE, 5)
    for (let at = 0; at < more.byteLength; at += PAGE) await fw.write(more, at, PAGE, model.byteLength + at)
    const fa = await p.volume.open('/wal', 'a')
    await fa.write(tail, 0, tail.byteLength, 0)
    await fa.sync()
    await until('the writer has the append', () => w.tree.get(id)?.size === model.byteLength + tail.byteLength, 60_000)
    await fw.sync()
    await until('every host has the same file', async () => {
      const sizes = hosts.map(h => h.tree.get(id)?.size)
      return sizes.every(s => s === sizes[0]) && sizes[0] === model.byteLength + more.byteLength + tail.byteLength
    }, 60_000)
    const files = await Promise.all(hosts.map(async h => Buffer.from(await h.volume.readFile('/wal'))))
    for (let i = 1; i < files.length; i++) assert.ok(files[i].equals(files[0]), `${hosts[i].name} reads as ${hosts[0].name}`)
    const now = files[0]
    assert.ok(now.subarray(0, model.byteLength).equals(Buffer.from(model)), 'the bytes before are kept')
    assert.ok(now.subarray(model.byteLength, model.byteLength + more.byteLength).equals(Buffer.from(more)), 'the growth where it was written')
    assert.ok(now.subarray(model.byteLength + more.byteLength).equals(Buffer.from(tail)), 'the append after it')
    assert.deepEqual((await r.volume.readdir('/')).filter(n => n.startsWith('wal.conflict-')), [], 'no conflict copy')
    await fa.close()
    await fp.close()
    await fw.close()
    // the writer folds its extents; the folded file reads the same on a host without it
    const final = Buffer.from(now)
    await until('the writer folded the file, and the reader has the fold', () => (w.tree.get(id)?.extents?.length ?? 0) === 0 && (r.tree.get(id)?.extents?.length ?? 0) === 0, 120_000)
    await until('every chunk placed', () => w.network.pending.size === 0, 120_000)
    await w.stop()
    await until('the reader sees the writer gone', () => r.host.peers().length === 1, 60_000)
    assert.ok(Buffer.from(await r.volume.readFile('/wal')).equals(final), 'the file reads as written on another host without the writer')
  })

  /** Three hosts, `/wal` of 1.5 MiB + 999 on each; the writer's tree.receive held by `hold()` until `release()`. */
  const walMesh = async (n: number) => {
    const hosts = await startMesh(t, n)
    const w = hosts[0]
    const base = seededBytes(MiB + MiB / 2 + 999, 1)
    await w.volume.writeFile('/wal', base)
    const id = w.tree.byIno((await w.volume.stat('/wal')).ino)!.id
    await until('every host has the file', () => hosts.every(h => h.tree.get(id)?.size === base.byteLength), 60_000)
    const tree = w.tree as unknown as { receive: (...a: unknown[]) => Promise<unknown> }
    const receive = tree.receive.bind(tree)
    let release = (): void => {}
    const hold = (): void => {
      const held = new Promise<void>(resolve => { release = resolve })
      tree.receive = async (...a) => { await held; return await receive(...a) }
    }
    t.add(async () => { release(); tree.receive = receive })
    return { hosts, base, id, hold, release: () => { release(); tree.receive = receive } }
  }

  it('the growth stamped as extents before the writer hears of a peer\'s page written inside the base\'s last chunk: one file, no conflict copy, every host reads both, also folded and without the writer', async () => {
    const { hosts, base, id, hold, release } = await walMesh(3)
    const [w, p, r] = hosts
    const grown = seededBytes(2 * MiB + 100 * PAGE, 2)
    const page = seededBytes(PAGE, 3)
    const fw = await w.volume.open('/wal', 'r+')
    for (let at = 0; at < grown.byteLength; at += PAGE) await fw.write(grown, at, PAGE, base.byteLength + at)
    hold()
    const fp = await p.volume.open('/wal', 'r+')
    await fp.write(page, 0, PAGE, MiB + 4096)
    await fp.sync()
    await fp.close()
    await fw.sync()
    assert.ok((w.tree.get(id)?.extents?.length ?? 0) > 0, 'the growth is stamped as extents')
    release()
    const model = new Uint8Array(base.byteLength + grown.byteLength)
    model.set(base)
    model.set(grown, base.byteLength)
    model.set(page, MiB + 4096)
    await until('every host reads both', async () => {
      for (const h of hosts) if (!Buffer.from(await h.volume.readFile('/wal')).equals(model)) return false
      return true
    }, 60_000)
    for (const h of hosts) assert.deepEqual((await h.volume.readdir('/')).filter(n => n.startsWith('wal.conflict-')), [], `${h.name}: no conflict copy`)
    await fw.close()
    await until('folded everywhere', () => hosts.every(h => (h.tree.get(id)?.extents?.length ?? 0) === 0), 120_000)
    await until('every chunk placed', () => w.network.pending.size === 0, 120_000)
    await w.stop()
    await until('the reader sees the writer gone', () => r.host.peers().length === 1, 60_000)
    assert.ok(Buffer.from(await r.volume.readFile('/wal')).equals(model), 'folded, read without the writer')
  })

  it('a peer\'s append stamped before the growth, heard by the writer only after its fsync: the two overlap, both are kept (one in a conflict sibling), every host the same', async () => {
    const { hosts, base, hold, release } = await walMesh(2)
    const [w, p] = hosts
    const more = seededBytes(MiB + 7 * PAGE, 5)
    const tail = seededBytes(3000, 4)
    const fw = await w.volume.open('/wal', 'r+')
    for (let at = 0; at < more.byteLength; at += PAGE) await fw.write(more, at, PAGE, base.byteLength + at)
    hold()
    const fa = await p.volume.open('/wal', 'a')
    await fa.write(tail, 0, tail.byteLength, 0)
    await fa.sync()
    await fa.close()
    await fw.sync()
    release()
    await fw.close()
    const grown = Buffer.concat([base, more])
    const appended = Buffer.concat([base, tail])
    // every host: the same names, the same bytes under each
    const read = async (h: typeof w): Promise<Map<string, Buffer>> => {
      const out = new Map<string, Buffer>()
      for (const n of (await h.volume.readdir('/')).filter(x => x === 'wal' || x.startsWith('wal.conflict-')).sort()) out.set(n, Buffer.from(await h.volume.readFile('/' + n)))
      return out
    }
    let files = new Map<string, Buffer>()
    await until('both hosts read the same files, the growth and the append each kept', async () => {
      const [a, b] = [await read(w), await read(p)]
      if ([...a.keys()].join() !== [...b.keys()].join() || [...a].some(([n, x]) => !x.equals(b.get(n)!))) return false
      files = a
      const all = [...a.values()]
      return all.some(x => x.subarray(0, grown.byteLength).equals(grown)) && all.some(x => x.indexOf(tail) >= base.byteLength)
    }, 60_000)
    assert.ok(files.has('wal'), 'the name is kept')
    assert.ok([...files.values()].some(x => x.equals(grown) || x.equals(Buffer.concat([grown, tail]))), 'the growth at the offsets it was written')
    assert.ok([...files.values()].some(x => x.equals(appended) || x.equals(Buffer.concat([grown, tail]))), 'the append after the bytes its writer saw')
  })
})
