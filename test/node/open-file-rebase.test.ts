// An open file adopts a version committed elsewhere (OpenFile.rebase) while a read of it is in
// flight (issue 16: a wrong read on a host reading a file another host rewrote). A read returns
// bytes of one version, the one current when it started; the reads after the rebase return the
// new version, never the old version's chunks under the new one's length.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Volume } from '../../node/index.ts'
import { OpenFile } from '../../node/open-file.ts'
import type { Content, Extent } from '../../node/tree/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

const MiB = 1 << 20

describe('OpenFile.rebase(version) while a read is in flight', function () {
  const t = new Teardown()
  let vol: Volume
  let v1: Buffer
  let v2: Buffer
  let base1: { content: Content | null, size: number }
  let base2: { content: Content | null, size: number }

  before(async () => {
    vol = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await vol.close() })
    v1 = randomBytes(3 * MiB + 5)
    v2 = randomBytes(3 * MiB + 5)
    await vol.writeFile('/v1', v1)
    await vol.writeFile('/v2', v2)
    const version = async (path: string): Promise<{ content: Content | null, size: number }> => {
      const inode = vol.tree.byIno((await vol.stat(path)).ino)!
      return { content: inode.content, size: inode.size }
    }
    base1 = await version('/v1')
    base2 = await version('/v2')
  })
  after(async () => { await t.run() })

  it('a read across two chunks started before the rebase is one version; reads after it are the new version', async () => {
    const f = new OpenFile('test', base1, vol.chunks, () => '/test')
    const from = MiB - 1000
    const across = f.read(from, 2000) // waits for the manifest of version 1
    f.rebase(base2)
    assert.ok(Buffer.from(await across).equals(v1.subarray(from, from + 2000)), 'the read in flight is version 1 whole')
    assert.ok(Buffer.from(await f.read(0, v2.byteLength)).equals(v2), 'after the rebase: version 2, whole')
  })

  it('a rebase while the first read waits for its manifest: later reads never pair version 1\'s chunks with version 2', async () => {
    const f = new OpenFile('test', base1, vol.chunks, () => '/test')
    const first = f.read(0, 100)
    f.rebase(base2)
    await first
    for (const at of [0, MiB, 2 * MiB, 3 * MiB]) {
      assert.ok(Buffer.from(await f.read(at, MiB)).equals(v2.subarray(at, at + MiB)), `version 2 at ${at}`)
    }
  })

  it('a state with appends (extents) adopted mid-read: the read in flight is the old state whole (content and extents), later reads the new one', async () => {
    // /log: a base version, then appends across chunk boundaries (append ops: the state's extents)
    const head = randomBytes(MiB + 7)
    await vol.writeFile('/log', head)
    const append = async (bytes: Buffer): Promise<void> => {
      const fh = await vol.open('/log', 'a')
      await fh.write(bytes, 0, bytes.byteLength, 0)
      await fh.close()
    }
    const state = async (): Promise<{ content: Content | null, size: number, extents?: readonly Extent[] }> => {
      const inode = vol.tree.byIno((await vol.stat('/log')).ino)!
      assert.ok((inode.extents?.length ?? 0) > 0, 'the appends are extents')
      return { content: inode.content, size: inode.size, extents: inode.extents }
    }
    const more1 = randomBytes(MiB + 100)
    await append(more1)
    const s1 = await state()
    const bytes1 = Buffer.concat([head, more1])
    const more2 = randomBytes(MiB + 3000)
    await append(more2)
    const s2 = await state()
    const bytes2 = Buffer.concat([bytes1, more2])
    const f = new OpenFile('test', s1, vol.chunks, () => '/test')
    // across the base's end into its first extent, and across chunks of the extent
    const from = MiB - 10
    const across = f.read(from, MiB)
    f.rebase(s2)
    assert.ok(Buffer.from(await across).equals(bytes1.subarray(from, from + MiB)), 'the read in flight is the state with one append, whole')
    assert.ok(Buffer.from(await f.read(0, bytes2.byteLength)).equals(bytes2), 'after the rebase: the state with both appends, whole')
    // the reverse: a read of the state with both appends in flight when one with fewer is adopted
    const g = new OpenFile('test', s2, vol.chunks, () => '/test')
    const tail = g.read(bytes1.byteLength - 50, 2 * MiB)
    g.rebase(s1)
    assert.ok(Buffer.from(await tail).equals(bytes2.subarray(bytes1.byteLength - 50, bytes1.byteLength - 50 + 2 * MiB)), 'the read in flight is the newer state, whole')
    assert.ok(Buffer.from(await g.read(0, bytes2.byteLength)).equals(bytes1), 'after the rebase: the older state, its size')
  })
})
