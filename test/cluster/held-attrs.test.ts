// A chmod or chown of a file open on a host is held there (answered from that host's memory) and
// committed as one setattr op with the others held, before any other op of the host: at the
// file's next version, close (not a flush: close(2) waits for that), fsync, or within
// HELD_ATTRS_MS (node/volume.ts, the head). A utimes of a file open here is held with them, and
// goes after the file's version in its batch when the version's writes came before it (while
// the file has writes not committed, the times wait for their version, at most HELD_ATTRS_MS:
// then the hold's timer commits those writes with them). tar x sets each file's
// times, owner and mode before it closes it: one version and one setattr, not a setattr more.
// A held change that sets every field to what it was (SQLite as root fchowns each journal it
// opens to the owner it has) only moves ctime: with a version of the file stamped after it in
// the same batch (the journal's fsync) it makes no op, the version's time moving ctime.
// Checked on three in-process hosts: every host converges on every attribute; no host sees a
// later change of the writer (a rename) before the held mode.
import assert from 'node:assert/strict'
import type { FileHandle } from '../../node/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import { onEachOp } from '../../harness/ops.ts'

describe('cluster: mode and owner changes of an open file held and committed as one op (three hosts)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  const setup = async (): Promise<Awaited<ReturnType<typeof startCluster>>> => {
    const hosts = await startCluster(t, 3)
    await until('every host knows every other', () => hosts.every(h => h.host.peers().length === hosts.length - 1), 60_000)
    return hosts
  }

  /** /f written on the first host and seen on every host, then open there and 'new bytes' written (not committed); the first host's local ops from then on. */
  const writtenOpen = async (hosts: Awaited<ReturnType<typeof setup>>): Promise<{ local: Array<Record<string, any>>, fh: FileHandle }> => {
    const w = hosts[0]
    await w.volume.writeFile('/f', 'base')
    await until('the file everywhere', async () => (await Promise.all(hosts.map(async h => await h.volume.stat('/f').then(() => true, () => false)))).every(x => x), 30_000)
    const local: Array<Record<string, any>> = []
    onEachOp(w.tree, (op, mine) => { if (mine) local.push(op.body) })
    const fh = await w.volume.open('/f', 'r+')
    t.add(async () => { await fh.close().catch(() => {}) })
    await fh.write(Buffer.from('new bytes'), 0, 9, 0)
    return { local, fh }
  }

  it("tar's sequence (write, futimens, fchown, fchmod, close): one version, one setattr after it, every attribute on every host", async () => {
    const hosts = await setup()
    const w = hosts[0]
    // what is held stays held until the flush, however slow the machine (not the 250 ms timer)
    ;(w.volume as any).heldAttrsMs = 3600_000
    const local: Array<Record<string, any>> = []
    onEachOp(w.tree, (op, mine) => { if (mine) local.push(op.body) })
    const bytes = Buffer.alloc(10_000, 3)
    const mtime = new Date('2001-02-03T04:05:06Z')
    const atime = new Date('2002-01-01T00:00:00Z')
    const fh = await w.volume.open('/f', 'w')
    const created = local.length
    await fh.write(bytes, 0, bytes.byteLength, 0)
    await fh.utimes(atime, mtime)
    await fh.chown(1234, 5678)
    await fh.chmod(0o640)
    // this host's view at once, before the close
    const open = await fh.stat()
    assert.deepEqual([open.mode & 0o7777, open.uid, open.gid, open.mtimeMs, open.atimeMs], [0o640, 1234, 5678, mtime.getTime(), atime.getTime()])
    assert.equal(local.length, created, 'nothing committed before the flush')
    // the flush (what close(2) waits for through FUSE) commits the version, then the times,
    // owner and mode in one setattr
    await fh.flush()
    const made = local.slice(created)
    assert.deepEqual(made.map(b => b.type), ['write', 'setattr'])
    assert.deepEqual([made[1].mode, made[1].uid, made[1].gid, made[1].mtime, made[1].atime], [0o640, 1234, 5678, BigInt(mtime.getTime()) * 1_000_000n, BigInt(atime.getTime()) * 1_000_000n])
    assert.equal((await fh.stat()).mtimeMs, mtime.getTime(), 'the version did not move mtime past the times')
    await fh.close()
    assert.equal(local.length, created + 2, 'the close made no op')
    assert.equal((await w.volume.stat('/f')).mtimeMs, mtime.getTime())
    for (const h of hosts) {
      await until(`host ${h.host.peerId.toString().slice(-6)} has every attribute`, async () => {
        const st = await h.volume.stat('/f').catch(() => undefined)
        return st !== undefined && (st.mode & 0o7777) === 0o640 && st.uid === 1234 && st.gid === 5678 && st.mtimeMs === mtime.getTime() && st.atimeMs === atime.getTime() && st.size === bytes.byteLength
      }, 30_000)
      assert.deepEqual(await h.volume.readFile('/f'), new Uint8Array(bytes))
    }
  })

  it('times held while the file has writes not committed wait for their version, at most HELD_ATTRS_MS; a write after them sets mtime', async () => {
    const hosts = await setup()
    const w = hosts[0]
    const local: Array<Record<string, any>> = []
    onEachOp(w.tree, (op, mine) => { if (mine) local.push(op.body) })
    const mtime = new Date('2001-02-03T04:05:06Z')
    const ns = BigInt(mtime.getTime()) * 1_000_000n
    // another op of this host (a mkdir) while the times are held with writes before them, and
    // HELD_ATTRS_MS passing, the file kept open: the timer commits the writes, then the times
    // and the mode; the times are never stamped ahead of the writes' version
    const fh = await w.volume.open('/f', 'w')
    t.add(async () => { await fh.close().catch(() => {}) })
    const created = local.length
    await fh.write(Buffer.from('abc'), 0, 3, 0)
    await fh.utimes(mtime, mtime)
    await fh.chmod(0o600)
    await w.volume.mkdir('/d')
    await until('the held times committed with the writes, the file still open', () => local.some(b => b.type === 'setattr' && b.mtime === ns), 10_000)
    const made = local.slice(created)
    const write = made.findIndex(b => b.type === 'write' || b.type === 'append')
    const times = made.findIndex(b => b.type === 'setattr' && b.mtime === ns)
    assert.ok(write >= 0 && write < times, `the version before the times: ${made.map(b => b.type).join(', ')}`)
    assert.ok(made.some(b => b.type === 'setattr' && b.mode === 0o600), 'the mode committed')
    assert.equal(made.filter(b => b.type === 'create').length, 1, 'the mkdir')
    assert.equal((await fh.stat()).mtimeMs, mtime.getTime())
    const ops = local.length
    await fh.close()
    assert.equal(local.length, ops, 'the close had nothing left to commit')
    for (const h of hosts) {
      await until(`host ${h.host.peerId.toString().slice(-6)} has the times and the bytes`, async () => {
        const st = await h.volume.stat('/f').catch(() => undefined)
        return st?.mtimeMs === mtime.getTime() && st.size === 3 && (st.mode & 0o7777) === 0o600
      }, 30_000)
    }
    // times held, then a write, then a chmod: the write's time is the file's mtime on every host
    const g = await w.volume.open('/g', 'w')
    await g.write(Buffer.from('x'), 0, 1, 0)
    await g.utimes(mtime, mtime)
    await g.write(Buffer.from('y'), 0, 1, 1)
    await g.chmod(0o604)
    const written = (await g.stat()).mtimeMs
    assert.ok(written > mtime.getTime())
    await g.close()
    const mine = await w.volume.stat('/g')
    assert.equal(mine.mtimeMs, written)
    assert.equal(mine.atimeMs, mtime.getTime())
    for (const h of hosts) {
      await until(`host ${h.host.peerId.toString().slice(-6)} has /g's write time`, async () => {
        const st = await h.volume.stat('/g').catch(() => undefined)
        return st?.mtimeMs === mine.mtimeMs && st.atimeMs === mtime.getTime() && (st.mode & 0o7777) === 0o604 && st.size === 2
      }, 30_000)
    }
  })

  it('setattrs made on another host while the writer holds its times and owner merge field by field in op order: every host converges', async () => {
    const hosts = await setup()
    const [w, o] = hosts
    const { local, fh } = await writtenOpen(hosts)
    const mtime = new Date('2001-02-03T04:05:06Z')
    const later = new Date('2011-02-03T04:05:06Z')
    const atime = new Date('2012-01-01T00:00:00Z')
    // on another host, while the writer has the file open with writes not committed: the mode,
    // the group and the times, stamped now (ops are ordered by their stamp, hlc then author)
    await o.volume.chmod('/f', 0o606)
    await o.volume.chown('/f', -1, 4321)
    await o.volume.utimes('/f', atime, later)
    // then the writer's times and owner, held: stamped when committed (with the writes, at the
    // close or by the hold's timer), after the other host's ops, so every field they set wins
    // over those; the mode, which only the other host set, stays
    await fh.utimes(mtime, mtime)
    await fh.chown(1234, 5678)
    await fh.close()
    const view = async (h: typeof w): Promise<string> => {
      const st = await h.volume.stat('/f')
      return JSON.stringify([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs, st.atimeMs, st.size, st.ctimeNs.toString()])
    }
    await until('every host shows the same attributes', async () => new Set(await Promise.all(hosts.map(view))).size === 1, 30_000)
    const held = local.find(b => b.type === 'setattr' && b.uid === 1234)
    assert.ok(held !== undefined, 'the writer committed its held change')
    const st = await w.volume.stat('/f')
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777, st.mtimeMs, st.atimeMs], [1234, 5678, 0o606, mtime.getTime(), mtime.getTime()])
    assert.deepEqual(Buffer.from(await w.volume.readFile('/f')).toString(), 'new bytes')
  })

  it('times set on another host after the writer held its own (its file kept open, written) win everywhere', async () => {
    const hosts = await setup()
    const [w, o] = hosts
    const { local, fh } = await writtenOpen(hosts)
    const first = new Date('2001-02-03T04:05:06Z')
    const second = new Date('2011-02-03T04:05:06Z')
    await fh.utimes(first, first)
    // the writer keeps the file open: within HELD_ATTRS_MS its writes and times are committed
    await until("the writer's times committed with its writes", () => local.some(b => b.type === 'setattr' && b.mtime === BigInt(first.getTime()) * 1_000_000n), 10_000)
    await until('the other host sees them', async () => (await o.volume.stat('/f')).mtimeMs === first.getTime(), 30_000)
    // a `touch -d` there, after: the last word
    await o.volume.utimes('/f', second, second)
    await fh.close()
    for (const h of hosts) {
      await until(`host ${h.host.peerId.toString().slice(-6)} shows the later times`, async () => {
        const st = await h.volume.stat('/f').catch(() => undefined)
        return st?.mtimeMs === second.getTime() && st.size === 9
      }, 30_000)
    }
    // and they stay: the writer's close committed nothing that moves them back
    for (const h of hosts) assert.equal((await h.volume.stat('/f')).mtimeMs, second.getTime())
  })

  it("after a commit of a file kept open, the writer shows the tree's mtime: a utimes from another host after it (an older time) too", async () => {
    // place34: the open file kept its last write's time as its shown mtime after the commit, over
    // the committed version's, so a `touch -d` from another host never showed on the writer
    const hosts = await setup()
    const [w, o] = hosts
    const { fh } = await writtenOpen(hosts)
    await fh.flush()
    const written = (await fh.stat()).mtimeMs
    const old = new Date('2001-02-03T04:05:06Z')
    let applied = false
    onEachOp(w.tree, (op, local) => { if (!local && op.body.type === 'setattr') applied = true })
    await until('the other host sees the version', async () => (await o.volume.stat('/f')).size === 9, 30_000)
    await o.volume.utimes('/f', old, old)
    await until("the writer applied the other host's times", () => applied, 30_000)
    assert.ok(written > old.getTime())
    await until('the writer shows them, the file still open', async () => (await fh.stat()).mtimeMs === old.getTime(), 10_000)
    assert.equal((await w.volume.stat('/f')).mtimeMs, old.getTime())
    await fh.close()
    for (const h of hosts) {
      await until(`host ${h.host.peerId.toString().slice(-6)} shows the older times`, async () => (await h.volume.stat('/f').catch(() => undefined))?.mtimeMs === old.getTime(), 30_000)
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
      onEachOp(h.tree, () => {
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
    onEachOp(w.tree, (op, local) => { if (local && op.body.type === 'setattr') setattrs.push(op.body) })
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
    onEachOp(w.tree, (op, local) => { if (local && op.body.type === 'setattr') setattrs.push(op.body) })
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
