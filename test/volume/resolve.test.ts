// Volume.resolve (issue 13 item 6) on two library Volumes whose trees exchange ops: a conflict
// made by concurrent writes (and by concurrent creates) is settled each way, the other Volume
// sees the result, log() keeps every version; bad input changes nothing.
import assert from 'node:assert/strict'
import { Volume, FsError, NotConflictedError } from 'darkfs'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { sync, snapshot } from '../helpers/tree.ts'

describe('volume.resolve(path, keep)', function () {
  this.timeout(60_000)
  let t: Teardown
  let a: Volume
  let b: Volume
  beforeEach(async () => {
    t = new Teardown()
    a = await Volume.open({ dir: await tempDir(t, 'darkfs-resolve-a-') })
    t.add(async () => { await a.close() })
    b = await Volume.open({ dir: await tempDir(t, 'darkfs-resolve-b-') })
    t.add(async () => { await b.close() })
  })
  afterEach(async () => { await t.run() })

  async function exchange (): Promise<void> {
    await sync(a.tree, b.tree); await sync(b.tree, a.tree)
  }

  /** /f.txt written on both sides: returns the sibling's path. */
  async function conflict (): Promise<string> {
    await a.writeFile('/f.txt', 'base')
    await exchange()
    await a.writeFile('/f.txt', 'from a')
    await b.writeFile('/f.txt', 'from b')
    await exchange()
    const c = a.conflicts()
    assert.equal(c.length, 1)
    assert.deepEqual(b.conflicts().map(x => x.path), [c[0].path])
    return c[0].path
  }

  const text = async (v: Volume, p: string): Promise<string> => Buffer.from(await v.readFile(p)).toString()

  it('volume.resolve(path, "name-holder"): the copy goes here and on the other host, log keeps every version', async () => {
    const sib = await conflict()
    const holder = await text(a, '/f.txt')
    const versions = (await a.log('/f.txt')).map(v => v.version)
    assert.deepEqual(a.conflictsOf('/f.txt').map(c => c.path), [sib])
    const r = await a.resolve('/f.txt', 'name-holder')
    assert.deepEqual(r, { path: '/f.txt', removed: [sib], kept: [], left: [] })
    await exchange()
    for (const v of [a, b]) {
      assert.deepEqual(await v.readdir('/'), ['f.txt'])
      assert.deepEqual(v.conflicts(), [])
      assert.equal(await text(v, '/f.txt'), holder)
      const log = (await v.log('/f.txt')).map(x => x.version)
      for (const x of versions) assert.ok(log.includes(x))
    }
    assert.equal(snapshot(a.tree), snapshot(b.tree))
  })

  it('volume.resolve(path, { sibling }): the copy\'s bytes at the name, by name or by path', async () => {
    for (const byPath of [false, true]) {
      await a.rm('/f.txt').catch(() => {})
      const sib = await conflict()
      const wanted = await text(a, sib)
      await b.resolve('/f.txt', { sibling: byPath ? sib : sib.slice(1) })
      await exchange()
      for (const v of [a, b]) {
        assert.equal(await text(v, '/f.txt'), wanted)
        assert.deepEqual(await v.readdir('/'), ['f.txt'])
        const log = await v.log('/f.txt')
        assert.ok(log.length >= 3)
        // every version's bytes can still be read back
        const all = await Promise.all(log.map(async x => Buffer.from(await v.readVersion('/f.txt', x.version)).toString()))
        assert.ok(all.includes('from a') && all.includes('from b') && all.includes('base'))
      }
    }
  })

  it('volume.resolve(path, "both"): every copy stays as a plain file, no conflict is listed', async () => {
    const sib = await conflict()
    const wanted = await text(a, sib)
    const r = await a.resolve('/f.txt', 'both')
    assert.equal(r.kept.length, 1)
    assert.match(r.kept[0].to, /^\/f \(conflict from [A-Za-z0-9]{8} \d{4}-\d{2}-\d{2} \d{6}\)\.txt$/)
    await exchange()
    for (const v of [a, b]) {
      assert.deepEqual(v.conflicts(), [])
      assert.equal(await text(v, r.kept[0].to), wanted)
      assert.deepEqual((await v.readdir('/')).sort(), ['f.txt', r.kept[0].to.slice(1)].sort())
    }
  })

  it('volume.resolve of files created concurrently keeps the other file\'s version in log(path)', async () => {
    await a.writeFile('/g', 'made on a')
    await b.writeFile('/g', 'made on b')
    await exchange()
    const [c] = a.conflicts()
    const lost = (await a.log(c.path)).map(v => v.version)
    await a.resolve('/g', 'name-holder')
    await exchange()
    const log = (await b.log('/g')).map(v => v.version)
    for (const v of lost) assert.ok(log.includes(v))
    assert.deepEqual(await b.readdir('/'), ['g'])
  })

  it('volume.resolve(path, { sibling }) of a copy with appends: its whole bytes at the name', async () => {
    await a.writeFile('/h', 'A')
    const fh = await a.open('/h', 'a')
    const more = Buffer.from('-appended')
    await fh.write(more, 0, more.byteLength, 0)
    await fh.close()
    await b.writeFile('/h', 'B')
    await exchange()
    const sibs = a.conflictsOf('/h')
    assert.equal(sibs.length, 1)
    const wanted = await text(a, sibs[0].path)
    assert.equal(wanted, 'A-appended')
    assert.ok(a.tree.get(a.tree.conflicts()[0].inode)!.extents !== undefined, 'the copy reads appends after its base')
    await a.resolve('/h', { sibling: sibs[0].path })
    assert.equal(await text(a, '/h'), wanted)
    assert.deepEqual(a.conflicts(), [])
  })

  it('bad input: no conflict, unknown copy, missing or relative path, a copy\'s own path: clear errors, nothing changed', async () => {
    const sib = await conflict()
    await a.writeFile('/plain', 'x')
    const before = snapshot(a.tree)
    await assert.rejects(a.resolve('/plain', 'name-holder'), NotConflictedError)
    await assert.rejects(a.resolve('/', 'both'), NotConflictedError)
    await assert.rejects(a.resolve(sib, 'name-holder'), (err: any) => err instanceof NotConflictedError && err.message.includes('resolve /f.txt'))
    await assert.rejects(a.resolve('/f.txt', { sibling: 'nope' }), (err: any) => err instanceof FsError && err.code === 'ENOENT')
    await assert.rejects(a.resolve('/missing', 'both'), (err: any) => err instanceof FsError && err.code === 'ENOENT')
    await assert.rejects(a.resolve('f.txt', 'both'), (err: any) => err instanceof FsError && err.code === 'EINVAL')
    await assert.rejects(a.resolve('/../f.txt', 'both'), (err: any) => err instanceof FsError && err.code === 'EINVAL')
    assert.equal(snapshot(a.tree), before)
  })
})
