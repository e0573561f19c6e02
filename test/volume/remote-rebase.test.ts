// A file open on host B (nothing pending there) reads a peer's new version once B applies it:
// the volume's 'ops' listener rebases the open file for a remote write (node/volume.ts). The peer's
// rename and rewrite of the file reach B as one batch (one receive, one 'ops' event).
import assert from 'node:assert/strict'
import { Volume } from '../../node/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { sync } from '../helpers/tree.ts'

describe('a remote version reaches a file open here (the volume\'s ops listener rebases it)', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  async function pair (): Promise<{ a: Volume, b: Volume }> {
    const a = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await a.close() })
    const b = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await b.close() })
    return { a, b }
  }

  async function readAll (fh: Awaited<ReturnType<Volume['open']>>, length: number): Promise<string> {
    const buf = Buffer.alloc(length)
    const { bytesRead } = await fh.read(buf, 0, length, 0)
    return buf.subarray(0, bytesRead).toString()
  }

  it('a peer renames then rewrites the file in one batch: a read through the open handle gives the new bytes', async () => {
    const { a, b } = await pair()
    await a.writeFile('/f', 'old bytes')
    await sync(a.tree, b.tree)
    const fh = await b.open('/f', 'r')
    t.add(async () => { await fh.close() })
    assert.equal(await readAll(fh, 9), 'old bytes')
    await a.rename('/f', '/g')
    await a.writeFile('/g', 'new bytes')
    await sync(a.tree, b.tree)
    assert.equal(await readAll(fh, 9), 'new bytes', 'the open handle reads the peer\'s version')
  })

  it('a peer rewrites the file with a different length: the open handle reads the new bytes and length', async () => {
    const { a, b } = await pair()
    await a.writeFile('/f', 'first')
    await sync(a.tree, b.tree)
    const fh = await b.open('/f', 'r')
    t.add(async () => { await fh.close() })
    assert.equal(await readAll(fh, 64), 'first')
    await a.writeFile('/f', 'second, longer')
    await sync(a.tree, b.tree)
    assert.equal(await readAll(fh, 64), 'second, longer')
  })
})
