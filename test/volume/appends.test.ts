// Appends as their own ops (issue 12 item 1, node/tree/index.ts): a commit made only of O_APPEND
// writes past the end is an `append` op holding the appended bytes; reads serve the base and
// its appends, across chunk boundaries; history lists each append with the file as it was; an
// appending host folds its settled appends into one version once they pass a bound (one host).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Volume, FOLD_EXTENTS, FOLD_SETTLE_MS, PATCH_COMMIT_BYTES } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

const MiB = 1 << 20

describe('volume: appends (one host)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let volume: Volume

  before(async () => {
    volume = await Volume.open({ dir: await tempDir(t, 'darkfs-appends-') })
    t.add(async () => { await volume.close() })
  })

  const inodeOf = async (path: string): Promise<string> => {
    const ino = (await volume.stat(path)).ino
    return volume.tree.byIno(ino)!.id
  }

  it('fh.write through \'a\' past chunk boundaries: an append op of the appended bytes; reads, readFile and every version read back as written', async () => {
    const first = randomBytes(MiB + MiB / 2)
    await volume.writeFile('/big.log', first)
    const added = [randomBytes(5000), randomBytes(2 * MiB + 123), randomBytes(100)]
    let model = Buffer.from(first)
    const sizes = [model.byteLength]
    for (const piece of added) {
      const fh = await volume.open('/big.log', 'a')
      // in pieces of 256 KiB, as a writer through the mount does
      for (let at = 0; at < piece.byteLength; at += 256 * 1024) {
        const part = piece.subarray(at, at + 256 * 1024)
        await fh.write(part, 0, part.byteLength, 0)
      }
      await fh.close()
      model = Buffer.concat([model, piece])
      sizes.push(model.byteLength)
    }
    const inode = volume.tree.get(await inodeOf('/big.log'))!
    assert.equal(inode.size, model.byteLength)
    assert.deepEqual(inode.extents?.map(x => x.size), added.map(p => p.byteLength))
    assert.ok(Buffer.from(await volume.readFile('/big.log')).equals(model))
    // ranges across the base's end and the appends' edges, through a handle
    const fh = await volume.open('/big.log', 'r')
    for (const [at, len] of [[MiB + MiB / 2 - 10, 20], [MiB + MiB / 2 + 4990, 20], [2 * MiB, MiB], [model.byteLength - 150, 150], [0, model.byteLength]]) {
      const buf = new Uint8Array(len)
      const { bytesRead } = await fh.read(buf, 0, len, at)
      assert.equal(bytesRead, len)
      assert.ok(Buffer.from(buf).equals(model.subarray(at, at + len)), `bytes ${at}+${len}`)
    }
    await fh.close()
    // a download (darkfs cat, get: Volume.reader) of the file as it is: the base and its appends
    const file = await volume.reader('/big.log')
    assert.equal(file.size, model.byteLength)
    const parts: Uint8Array[] = []
    for (let at = 0; at < file.size; at += MiB) parts.push(await file.read(at, Math.min(MiB, file.size - at)))
    assert.ok(Buffer.concat(parts).equals(model), 'Volume.reader reads the base and its appends')
    const history = await volume.log('/big.log')
    assert.deepEqual(history.map(v => v.size), sizes)
    for (const [i, v] of history.entries()) {
      assert.ok(Buffer.from(await volume.readVersion('/big.log', v.version)).equals(model.subarray(0, sizes[i])), `version ${i + 1}`)
    }
    // a whole-file rewrite holds the appends: none left to read as pieces (a write past
    // PATCH_COMMIT_BYTES: a smaller one would be a positioned extent, test/volume/extents.test.ts)
    const again = await volume.open('/big.log', 'r+')
    const xs = Buffer.alloc(PATCH_COMMIT_BYTES + 1, 'X')
    await again.write(xs, 0, xs.byteLength, 0)
    await again.close()
    model.set(xs, 0)
    assert.equal(volume.tree.get(inode.id)!.extents, undefined)
    assert.ok(Buffer.from(await volume.readFile('/big.log')).equals(model))
  })

  it('`echo >> f` on a new file: one version per append, no empty one first', async () => {
    for (const line of ['one\n', 'two\n']) {
      const fh = await volume.open('/new.log', 'a')
      await fh.write(Buffer.from(line), 0, line.length, 0)
      await fh.close()
    }
    assert.deepEqual((await volume.log('/new.log')).map(v => v.size), [4, 8])
    assert.equal(await volume.readFile('/new.log', 'utf8'), 'one\ntwo\n')
  })

  it('a positional write in the open of a small (inline) file makes the commit a whole-file write', async () => {
    await volume.writeFile('/mixed.log', 'abc\n')
    const fh = await volume.open('/mixed.log', 'r+')
    await fh.write(Buffer.from('def\n'), 0, 4, 4)
    await fh.close()
    assert.equal(volume.tree.get(await inodeOf('/mixed.log'))!.extents, undefined)
    assert.equal(await volume.readFile('/mixed.log', 'utf8'), 'abc\ndef\n')
  })

  it(`past ${FOLD_EXTENTS} appends read as pieces, the settled ones are folded into one version; the bytes stay`, async () => {
    const lines: string[] = []
    const append = async (): Promise<void> => {
      const line = `line ${lines.length + 1}\n`
      const fh = await volume.open('/fold.log', 'a')
      await fh.write(Buffer.from(line), 0, line.length, 0)
      await fh.close()
      lines.push(line)
    }
    for (let i = 0; i <= FOLD_EXTENTS; i++) await append()
    const id = await inodeOf('/fold.log')
    // the appends so far settle (a fold holds only appends FOLD_SETTLE_MS old): otherwise, with
    // appends made faster than FOLD_SETTLE_MS / (FOLD_EXTENTS / 2) each, the young ones alone
    // outnumber the bound below after every fold
    const last = volume.tree.get(id)!.extents!.at(-1)!
    await until('the appends settle', async () => last.hlc[0] <= Date.now() - FOLD_SETTLE_MS, 60_000)
    // each append past the bound starts a fold of the appends old enough
    await until('a fold holds the settled appends', async () => {
      await append()
      return (volume.tree.get(id)!.extents?.length ?? 0) < FOLD_EXTENTS / 2
    }, 60_000)
    assert.equal(await volume.readFile('/fold.log', 'utf8'), lines.join(''))
    assert.equal((await volume.log('/fold.log')).length, lines.length)
  })
})
