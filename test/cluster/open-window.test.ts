// Writes through open files are placed as they go, like `put` (issue 17, item 8): a sequential
// writer's finished chunks are stored and placed at most a window of bytes ahead, and the writer
// keeps only its own share once the rest is placed, whether it writes through a FileHandle (the
// library) or through the FUSE mount. A chunk rewritten before the commit is replaced (its early
// blocks released), and a write given up (its file unlinked before the last close) leaves
// nothing behind on any host. Measured by the store counters (bytes written new minus bytes
// removed, with a high-water mark), never by timing.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { writeFile, chmod } from 'node:fs/promises'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { mount } from '../../fuse/index.ts'
import { ok } from '../helpers/fuse-mount.ts'
import { chunksOf } from '../helpers/chunks.ts'
import { CID } from 'multiformats/cid'

const MiB = 1 << 20
const WINDOW = 16 * MiB
/** The manifest and its copies, and the metadata of the op log. */
const SLACK = 256 * 1024
/** Six fragments of 256 KiB per 1 MiB chunk on six members (k=4 m=2): the writer is the target of one. */
const own = (size: number): number => Math.ceil(size / MiB) * (MiB / 4)
const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`

describe('placement as an open file is written (six in-process hosts, k=4 m=2)', function () {
  const t = new Teardown()
  let hosts: ClusterHost[]
  after(async () => { await t.run() })

  before(async function () {
    this.timeout(180_000)
    hosts = await startMesh(t, 6, { daemon: { placeWindowBytes: WINDOW }, members: true })
    assert.deepEqual(hosts[0].volume.chunks.params(), { k: 4, m: 2 })
  })

  /** Every host's net store bytes, to compare after a write given up. */
  const nets = (): number[] => hosts.map(h => h.store.counters().net)

  async function readBack (h: ClusterHost, path: string, size: number): Promise<string> {
    const fh = await h.volume.open(path, 'r')
    const hash = createHash('sha256')
    const buf = new Uint8Array(MiB)
    try {
      for (let at = 0; at < size; at += MiB) {
        const { bytesRead } = await fh.read(buf, 0, MiB, at)
        hash.update(buf.subarray(0, bytesRead))
      }
    } finally { await fh.close() }
    return hash.digest('hex')
  }

  it('filehandle.write() of 64 MiB in 128 KiB pieces never holds more on the writer than the window plus its own share', async () => {
    const size = 64 * MiB
    const w = hosts[0]
    const data = randomBytes(size)
    const base = w.store.counters().net
    w.store.markPeak()
    const fh = await w.volume.open('/big-fh.bin', 'w')
    for (let at = 0; at < size; at += 128 * 1024) await fh.write(data, at, 128 * 1024, at)
    await fh.sync()
    await fh.close()
    const peak = w.store.counters().peak - base
    assert.ok(peak <= WINDOW + own(size) + SLACK, `the writer held ${mib(peak)} at its peak, over the window (${mib(WINDOW)}) + its own share (${mib(own(size))})`)
    await until('the writer keeps only its own share', () => w.store.counters().net - base <= own(size) + SLACK, 60_000)
    const h = hosts[1]
    await until(`${h.name} sees /big-fh.bin`, async () => { try { return (await h.volume.stat('/big-fh.bin')).size === size } catch { return false } })
    assert.equal(await readBack(h, '/big-fh.bin', size), createHash('sha256').update(data).digest('hex'), `${h.name} reads the file back`)
  })

  it('dd of 200 MiB into the writer\'s FUSE mount never holds more on the writer than the window plus its own share', async function () {
    this.timeout(900_000)
    const size = 200 * MiB
    const w = hosts[0]
    const dir = await tempDir(t, 'darkfs-open-window-')
    await chmod(dir, 0o755)
    const src = join(dir, 'src.bin')
    const data = randomBytes(size)
    await writeFile(src, data)
    const mnt = join(dir, 'mnt')
    await ok(`mkdir -p '${mnt}'`)
    const m = await mount(w.volume, mnt)
    t.add(async () => { await m.unmount() })
    const base = w.store.counters().net
    w.store.markPeak()
    await ok(`dd if='${src}' of='${mnt}/big-dd.bin' bs=1M status=none`)
    const peak = w.store.counters().peak - base
    assert.ok(peak <= WINDOW + own(size) + SLACK, `the writer held ${mib(peak)} at its peak, over the window (${mib(WINDOW)}) + its own share (${mib(own(size))})`)
    await until('the writer keeps only its own share', () => w.store.counters().net - base <= own(size) + SLACK, 120_000)
    await ok(`cmp '${src}' '${mnt}/big-dd.bin'`)
  })

  it('a chunk rewritten after it was placed is replaced: the version holds the new bytes, and the old chunk\'s blocks go from every host', async () => {
    const w = hosts[0]
    const size = 8 * MiB
    const before = nets()
    const held = async (): Promise<Array<Set<string>>> => await Promise.all(hosts.map(async h => { const s = new Set<string>(); for await (const c of h.store.cids()) s.add(c.toString()); return s }))
    const heldBefore = await held()
    const data = randomBytes(size)
    const fh = await w.volume.open('/rewrite.bin', 'w')
    for (let at = 0; at < size; at += MiB) await fh.write(data, at, MiB, at)
    // chunks 0 and 3 were finished (the writer moved past them) and placed: rewrite part of each
    const patch = randomBytes(4096)
    await fh.write(patch, 0, patch.length, 3 * MiB + 100)
    await fh.write(patch, 0, patch.length, 10)
    data.set(patch, 3 * MiB + 100)
    data.set(patch, 10)
    await fh.close()
    for (const h of [w, hosts[2]]) {
      await until(`${h.name} sees /rewrite.bin`, async () => { try { return (await h.volume.stat('/rewrite.bin')).size === size } catch { return false } })
      assert.equal(await readBack(h, '/rewrite.bin', size), createHash('sha256').update(data).digest('hex'), `${h.name} reads the new bytes`)
    }
    // nothing of the replaced chunks is left on any host: every fragment the write added is one
    // the file's version names (manifests, a few KiB, are not looked at: GC's)
    const version = new Set((await chunksOf(w, '/rewrite.bin')).flatMap(r => r.fragments.map(f => f.toString())))
    const fragment = async (h: ClusterHost, c: string): Promise<boolean> => (await h.store.get(CID.parse(c))).byteLength === MiB / 4
    // (a block some host held before the write is another file's, whatever moves it)
    const old = new Set(heldBefore.flatMap(s => [...s]))
    // and what they hold is the version (8 chunks of 6 x 256 KiB) and its manifest's copies, with
    // at most a second copy of each fragment a replaced chunk shares with its replacement (equal
    // shards: the k - 1 data fragments the 4 KiB patch left alone). The old chunk's placement put
    // them on its own targets, the new one's on its own, and the release leaves them (the version
    // names them): the copy on a host that is no target of the new chunk is held while the
    // promise its holder gave the writer lasts (keeper/custody.ts), then dropped by the keepers
    const shared = 2 * 3 * (MiB / 4)
    let stray: string[] = []
    let grown: number[] = []
    await until('no host holds a fragment of the replaced chunks the version does not name, nor more than the version', async () => {
      const now = await held()
      stray = []
      for (const [i, s] of now.entries()) for (const c of s) if (!old.has(c) && !version.has(c) && await fragment(hosts[i], c)) stray.push(`${hosts[i].name} ${c}`)
      grown = nets().map((n, i) => n - before[i])
      return stray.length === 0 && grown.reduce((s, g) => s + g, 0) <= size * 1.5 + shared + 64 * 1024
    }, 60_000).catch(err => { throw new Error(`${(err as Error).message}: left ${stray.length > 0 ? stray.join(', ') : 'none'}; grown by ${grown.map(mib).join(', ')}`) })
  })

  it('a file unlinked before its last close leaves nothing behind on any host', async () => {
    const w = hosts[0]
    const size = 24 * MiB
    const before = nets()
    const data = randomBytes(size)
    const fh = await w.volume.open('/gone.bin', 'w')
    for (let at = 0; at < size; at += MiB) await fh.write(data, at, MiB, at)
    // some of it was placed already
    await until('the peers took some of its fragments', () => nets().slice(1).some((n, i) => n > before[i + 1]), 60_000)
    await w.volume.unlink('/gone.bin')
    await fh.close()
    await until('every host is back to its figure before the write', () => nets().every((n, i) => n - before[i] <= SLACK), 60_000)
  })
})
