// A chmod or chown of a file open on a host is held there (answered from that host's memory) and
// committed as one setattr op with the others held, before any other op of the host: at the
// file's next version, close (not a flush: close(2) waits for that), fsync or utimes, or within
// HELD_ATTRS_MS (node/volume.ts, the head). tar x sets each file's times, owner and mode before
// it closes it: two setattr ops now, not three.
// A held change that sets every field to what it was (SQLite as root fchowns each journal it
// opens to the owner it has) only moves ctime: with a version of the file stamped after it in
// the same batch (the journal's fsync) it makes no op, the version's time moving ctime.
// Checked on three in-process hosts: every host converges on every attribute; no host sees a
// later change of the writer (a rename) before the held mode.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'

describe('cluster: mode and owner changes of an open file held and committed as one op (three hosts)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  const setup = async (): Promise<Awaited<ReturnType<typeof startCluster>>> => {
    const hosts = await startCluster(t, 3)
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1), 60_000)
    return hosts
  }

  it("tar's sequence (write, futimens, fchown, fchmod, close): two setattr ops, every attribute on every host", async () => {
    const hosts = await setup()
    const w = hosts[0]
    const setattrs: Array<Record<string, unknown>> = []
    w.tree.addEventListener('op', (e: any) => { if (e.detail.local === true && e.detail.body.type === 'setattr') setattrs.push(e.detail.body) })
    const bytes = Buffer.alloc(10_000, 3)
    const mtime = new Date('2001-02-03T04:05:06Z')
    const fh = await w.volume.open('/f', 'w')
    await fh.write(bytes, 0, bytes.byteLength, 0)
    await fh.utimes(mtime, mtime)
    await fh.chown(1234, 5678)
    await fh.chmod(0o640)
    // this host's view at once, before the close
    const open = await fh.stat()
    assert.deepEqual([open.mode & 0o7777, open.uid, open.gid], [0o640, 1234, 5678])
    assert.equal(setattrs.length, 1, 'the times only, so far (with the file\'s version)')
    // a flush with no version to commit (what close(2) waits for through FUSE) leaves them held
    await fh.flush()
    assert.equal(setattrs.length, 1, 'a flush made no op of them')
    await fh.close()
    // the owner and the mode: one op, at the close
    assert.equal(setattrs.length, 2)
    assert.deepEqual([setattrs[1].mode, setattrs[1].uid, setattrs[1].gid], [0o640, 1234, 5678])
    for (const h of hosts) {
      await until(`host ${h.host.peerId.toString().slice(-6)} has every attribute`, async () => {
        const st = await h.volume.stat('/f').catch(() => undefined)
        return st !== undefined && (st.mode & 0o7777) === 0o640 && st.uid === 1234 && st.gid === 5678 && st.mtimeMs === mtime.getTime() && st.size === bytes.byteLength
      }, 30_000)
      assert.deepEqual(await h.volume.readFile('/f'), new Uint8Array(bytes))
    }
  })

  it('a change held for a file kept open reaches every host without a close; one made after it is not seen before it', async () => {
    const hosts = await setup()
    const w = hosts[0]
    await w.volume.writeFile('/g', 'x')
    const fh = await w.volume.open('/g', 'r+')
    t.add(async () => { await fh.close() })
    await fh.chmod(0o600)
    // no close, no other op: HELD_ATTRS_MS commits it
    for (const h of hosts) await until('the mode everywhere', async () => ((await h.volume.stat('/g').catch(() => undefined))?.mode ?? 0) % 0o10000 === 0o600, 30_000)
    // held again, then a rename: every host that sees the new name sees the new mode with it
    const seenWith: number[] = []
    for (const h of hosts.slice(1)) {
      h.tree.addEventListener('op', () => {
        const st = h.volume.stat('/moved').catch(() => undefined)
        void st.then(s => { if (s !== undefined && seenWith.length < 10) seenWith.push(s.mode & 0o7777) })
      })
    }
    await fh.chmod(0o604)
    await w.volume.rename('/g', '/moved')
    for (const h of hosts) await until('the rename everywhere', async () => await h.volume.stat('/moved').then(() => true, () => false), 30_000)
    assert.ok(seenWith.length > 0)
    assert.ok(seenWith.every(m => m === 0o604), `modes seen with the new name: ${seenWith.map(m => m.toString(8)).join(', ')}`)
  })

  it("SQLite's journal (create, fchown to the owner it has, write, fsync): no setattr op, ctime past the chown on every host", async () => {
    const hosts = await setup()
    const w = hosts[0]
    const setattrs: Array<Record<string, unknown>> = []
    w.tree.addEventListener('op', (e: any) => { if (e.detail.local === true && e.detail.body.type === 'setattr') setattrs.push(e.detail.body) })
    const fh = await w.volume.open('/db-journal', 'w')
    t.add(async () => { await fh.close().catch(() => {}) })
    const own = await fh.stat()
    await fh.chown(own.uid, own.gid)
    await fh.chmod(own.mode & 0o7777)
    const chowned = (await fh.stat()).ctimeNs
    assert.ok(chowned >= own.ctimeNs)
    const page = Buffer.alloc(4096, 7)
    await fh.write(page, 0, page.byteLength, 0)
    await fh.sync()
    assert.equal(setattrs.length, 0, 'the no-change chown and chmod made no op')
    for (const h of hosts) {
      await until(`host ${h.host.peerId.toString().slice(-6)} has the journal's page`, async () => {
        const st = await h.volume.stat('/db-journal').catch(() => undefined)
        return st !== undefined && st.size === page.byteLength
      }, 30_000)
      const st = await h.volume.stat('/db-journal')
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [own.uid, own.gid, own.mode & 0o7777])
      assert.ok(st.ctimeNs >= chowned, `ctime ${st.ctimeNs} before the chown's ${chowned}`)
      assert.deepEqual(await h.volume.readFile('/db-journal'), new Uint8Array(page))
    }
    await fh.close()
    assert.equal(setattrs.length, 0)
    // every host ends with the same ctime (the version's, which stands for the chown's)
    const ctime = (await w.volume.stat('/db-journal')).ctimeNs
    for (const h of hosts) {
      await until(`host ${h.host.peerId.toString().slice(-6)} shows the writer's ctime`, async () => (await h.volume.stat('/db-journal')).ctimeNs === ctime, 30_000)
    }
  })

  it('a held change that changes nothing, with no version after it, or one that changes something: a setattr op as before', async () => {
    const hosts = await setup()
    const w = hosts[0]
    const setattrs: Array<Record<string, unknown>> = []
    w.tree.addEventListener('op', (e: any) => { if (e.detail.local === true && e.detail.body.type === 'setattr') setattrs.push(e.detail.body) })
    // no change, then a real one in the same hold, then a version: one op with the new owner
    const a = await w.volume.open('/a', 'w')
    const own = await a.stat()
    await a.chown(own.uid, own.gid)
    await a.chown(own.uid + 1, own.gid)
    await a.write(Buffer.from('a'), 0, 1, 0)
    await a.sync()
    assert.equal(setattrs.length, 1)
    assert.equal(setattrs[0].uid, own.uid + 1)
    await a.close()
    // no change and no version (the file's bytes went before it): its op at the close, ctime on every host
    const b = await w.volume.open('/b', 'w')
    await b.write(Buffer.from('b'), 0, 1, 0)
    await b.sync()
    await b.chown(own.uid, own.gid)
    const chowned = (await b.stat()).ctimeNs
    await b.close()
    assert.equal(setattrs.length, 2)
    for (const h of hosts) {
      await until(`host ${h.host.peerId.toString().slice(-6)} has /b's ctime and /a's owner`, async () => {
        const sb = await h.volume.stat('/b').catch(() => undefined)
        const sa = await h.volume.stat('/a').catch(() => undefined)
        return sb !== undefined && sb.ctimeNs >= chowned && sa?.uid === own.uid + 1
      }, 30_000)
    }
  })
})
