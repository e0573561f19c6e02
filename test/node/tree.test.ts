// Unit tests of the metadata tree: each op, each merge rule, bounds, bad input, durability.
import assert from 'node:assert/strict'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { InvalidOpError, isConflictName, Tree, VERIFY_INLINE_CHECKS, type OpsEventDetail, type Verify } from '../../node/tree/index.ts'
import { verify as hostVerify } from '../../node/net/signing.ts'
import { replica, sync, mkdir, mkfile, write, text, resolve, ls, snapshot, sec, allOps, makeKey, signerFor } from '../helpers/tree.ts'
import { createOp, cidOf, idOf, opCidOf } from '../../node/tree/op.ts'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LOG_FILE, HEADER_BYTES } from '../../node/tree/log.ts'
import { CID } from 'multiformats/cid'
import { Journal } from '../../node/tree/journal.ts'

describe('node/tree', function () {
  // every change() the CRDT makes with an old value it read checks that value (journal.ts)
  before(() => { Journal.checking = true })
  after(() => { Journal.checking = false })
  let t: Teardown
  beforeEach(() => { t = new Teardown() })
  afterEach(async () => { await t.run() })

  describe('local ops', () => {
    it('tree.commit(create dir) then lookup/children/get/path', async () => {
      const { tree } = await replica(t)
      const { id } = await tree.commit(mkdir(tree.root, 'a'))
      const e = tree.lookup(tree.root, 'a')
      assert.equal(e?.inode, id)
      assert.equal(e?.id, id)
      assert.deepEqual(tree.children(tree.root).map(x => x.name), ['a'])
      const inode = tree.get(id)
      assert.equal(inode?.kind, 'dir')
      assert.equal(inode?.nlink, 2)
      assert.equal(tree.get(tree.root)?.nlink, 3)
      assert.equal(tree.byIno(inode!.ino)?.id, id)
      assert.equal(tree.get(tree.root)?.ino, 1)
      assert.equal(tree.path(id), '/a')
    })

    it('tree.commit(create file with inline content) and write a new version', async () => {
      const { tree } = await replica(t)
      const { id } = await tree.commit(mkfile(tree.root, 'f', 'one'))
      assert.equal(text(tree, '/f'), 'one')
      await tree.commit(write(id, 'two', sec(5)))
      assert.equal(text(tree, '/f'), 'two')
      const i = tree.get(id)!
      assert.equal(i.size, 3)
      assert.equal(i.mtime, sec(5))
      assert.equal(i.ctime, sec(5))
      assert.deepEqual(tree.history(id).map(v => new TextDecoder().decode((v.content as any).inline)), ['one', 'two'])
    })

    it('tree.commit(create symlink, fifo, chr)', async () => {
      const { tree } = await replica(t)
      const l = await tree.commit({ type: 'create', parent: tree.root, name: 'l', kind: 'symlink', target: '/x/y', mode: 0o777, uid: 1, gid: 2, time: sec(1) })
      const c = await tree.commit({ type: 'create', parent: tree.root, name: 'c', kind: 'chr', rdev: 0x0103, mode: 0o600, uid: 0, gid: 0, time: sec(1) })
      assert.equal(tree.get(l.id)?.target, '/x/y')
      assert.equal(tree.get(l.id)?.uid, 1)
      assert.equal(tree.get(c.id)?.rdev, 0x0103)
    })

    it('tree.commit(link) adds a hard link; unlink removes one', async () => {
      const { tree } = await replica(t)
      const d = await tree.commit(mkdir(tree.root, 'd'))
      const f = await tree.commit(mkfile(tree.root, 'f', 'x'))
      const l = await tree.commit({ type: 'link', parent: d.id, name: 'g', inode: f.id, time: sec(2) })
      assert.equal(tree.get(f.id)?.nlink, 2)
      assert.equal(tree.path(l.id), '/d/g')
      assert.equal(tree.entries(f.id).length, 2)
      await tree.commit({ type: 'unlink', entry: f.id, time: sec(3) })
      assert.equal(tree.lookup(tree.root, 'f'), undefined)
      assert.equal(tree.get(f.id)?.nlink, 1)
      assert.equal(text(tree, '/d/g'), 'x')
      await tree.commit({ type: 'unlink', entry: l.id, time: sec(4) })
      assert.equal(tree.get(f.id)?.nlink, 0)
      assert.deepEqual(tree.children(d.id), [])
    })

    it('tree.commit(move) renames, and replaces the destination', async () => {
      const { tree } = await replica(t)
      const d = await tree.commit(mkdir(tree.root, 'd'))
      const a = await tree.commit(mkfile(tree.root, 'a', 'A'))
      const b = await tree.commit(mkfile(d.id, 'b', 'B'))
      await tree.commit({ type: 'move', entry: a.id, parent: d.id, name: 'b', replace: b.id, time: sec(3) })
      assert.deepEqual(ls(tree, '/'), ['d'])
      assert.deepEqual(ls(tree, '/d'), ['b'])
      assert.equal(text(tree, '/d/b'), 'A')
      assert.equal(tree.get(b.id)?.nlink, 0)
      assert.equal(tree.path(a.id), '/d/b')
    })

    it('tree.commit(move) of a dir into its own subtree is skipped (no cycle)', async () => {
      const { tree } = await replica(t)
      const a = await tree.commit(mkdir(tree.root, 'a'))
      const b = await tree.commit(mkdir(a.id, 'b'))
      await tree.commit({ type: 'move', entry: a.id, parent: b.id, name: 'a', time: sec(2) })
      await tree.commit({ type: 'move', entry: a.id, parent: a.id, name: 'a', time: sec(2) })
      assert.equal(tree.path(b.id), '/a/b')
    })

    it('an entry coming or going sets its directory\'s mtime and ctime to the op\'s time, both dirs of a move', async () => {
      const { tree } = await replica(t)
      const times = (id: string): [bigint, bigint] => [tree.get(id)!.mtime, tree.get(id)!.ctime]
      const a = await tree.commit(mkdir(tree.root, 'a', sec(1)))
      const b = await tree.commit(mkdir(tree.root, 'b', sec(1)))
      assert.deepEqual(times(tree.root), [sec(1), sec(1)])
      const f = await tree.commit(mkfile(a.id, 'f', 'x', sec(2)))
      assert.deepEqual(times(a.id), [sec(2), sec(2)])
      await tree.commit({ type: 'link', parent: b.id, name: 'l', inode: f.id, time: sec(3) })
      assert.deepEqual(times(b.id), [sec(3), sec(3)])
      await tree.commit({ type: 'move', entry: f.id, parent: b.id, name: 'g', time: sec(4) })
      assert.deepEqual([times(a.id), times(b.id)], [[sec(4), sec(4)], [sec(4), sec(4)]])
      await tree.commit({ type: 'unlink', entry: f.id, time: sec(5) })
      assert.deepEqual(times(b.id), [sec(5), sec(5)])
      await tree.commit({ type: 'unlink', entry: a.id, time: sec(6) })
      assert.deepEqual(times(tree.root), [sec(6), sec(6)])
      // a write or an attribute change of an entry leaves its directory alone
      await tree.commit({ type: 'setattr', inode: b.id, mtime: sec(1), time: sec(7) })
      await tree.commit({ type: 'setattr', inode: f.id, mode: 0o600, time: sec(8) })
      assert.deepEqual(times(b.id), [sec(1), sec(7)])
    })

    it('directory times are part of the fold: a late op from a peer gives every host the same times', async () => {
      const one = await replica(t)
      const two = await replica(t)
      const d = await one.tree.commit(mkdir(one.tree.root, 'd', sec(1)))
      await sync(one.tree, two.tree)
      await two.tree.commit(mkfile(d.id, 'early', 'x', sec(2)))
      await one.tree.commit(mkfile(d.id, 'late', 'y', sec(3)))
      await sync(one.tree, two.tree)
      await sync(two.tree, one.tree)
      assert.equal(one.tree.get(d.id)?.mtime, two.tree.get(d.id)?.mtime)
      assert.equal(one.tree.get(d.id)?.ctime, two.tree.get(d.id)?.ctime)
      assert.deepEqual(ls(one.tree, '/d'), ['early', 'late'])
    })

    it('tree.commit(setattr) and xattrs', async () => {
      const { tree } = await replica(t)
      const f = await tree.commit(mkfile(tree.root, 'f', 'x'))
      await tree.commit({ type: 'setattr', inode: f.id, mode: 0o4755, uid: 7, time: sec(3) })
      await tree.commit({ type: 'setattr', inode: f.id, atime: sec(10), mtime: sec(11), time: sec(4) })
      await tree.commit({ type: 'setxattr', inode: f.id, name: 'user.a', value: new Uint8Array([1, 2]), time: sec(5) })
      await tree.commit({ type: 'setxattr', inode: f.id, name: 'user.b', value: new Uint8Array([3]), time: sec(5) })
      await tree.commit({ type: 'removexattr', inode: f.id, name: 'user.b', time: sec(6) })
      const i = tree.get(f.id)!
      assert.equal(i.mode, 0o4755)
      assert.equal(i.uid, 7)
      assert.equal(i.gid, 0)
      assert.equal(i.atime, sec(10))
      assert.equal(i.mtime, sec(11))
      assert.equal(i.ctime, sec(6))
      assert.deepEqual([...i.xattrs.keys()], ['user.a'])
    })

    it('tree emits "ops" after every applied batch', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const seen: OpsEventDetail[] = []
      b.tree.addEventListener('ops', (e) => { seen.push((e as CustomEvent<OpsEventDetail>).detail) })
      const local: boolean[] = []
      a.tree.addEventListener('ops', (e) => { local.push((e as CustomEvent<OpsEventDetail>).detail.local) })
      const { cid } = await a.tree.commit(mkdir(a.tree.root, 'x'))
      assert.deepEqual(local, [true])
      await sync(a.tree, b.tree)
      assert.equal(seen.length, 1)
      assert.equal(seen[0].local, false)
      assert.equal(seen[0].ops.length, 1)
      assert.ok(seen[0].ops[0].cid.equals(cid))
      assert.equal(seen[0].ops[0].body.type, 'create')
    })

    it('tree.heads() names the latest op; every op names the previous heads', async () => {
      const { tree } = await replica(t)
      const a = await tree.commit(mkdir(tree.root, 'a'))
      const b = await tree.commit(mkdir(tree.root, 'b'))
      assert.deepEqual(tree.heads().map(String), [b.cid.toString()])
      assert.ok(tree.hasOp(a.cid))
      assert.ok(tree.getOp(a.cid) instanceof Uint8Array)
      // by id too (sync names the ops it fetched by the ids it made)
      assert.ok(tree.hasOp(idOf(a.cid)))
      assert.deepEqual(tree.getOp(idOf(a.cid)), tree.getOp(a.cid))
      const absent = opCidOf(new Uint8Array(32))
      assert.equal(tree.hasOp(idOf(absent)), false)
      assert.equal(tree.getOp(idOf(absent)), undefined)
    })

    it('concurrent tree.commit() calls chain and all persist', async () => {
      const r = await replica(t)
      await Promise.all(Array.from({ length: 20 }, async (_, i) => await r.tree.commit(mkdir(r.tree.root, `d${i}`))))
      assert.equal(r.tree.children(r.tree.root).length, 20)
      assert.equal(r.tree.heads().length, 1)
      const before = snapshot(r.tree)
      await r.tree.close()
      const again = await replica(t, { dir: r.dir, key: r.key })
      assert.equal(snapshot(again.tree), before)
    })
  })

  describe('bad input', () => {
    it('tree.commit() rejects bad names and oversized content with InvalidOpError', async () => {
      const { tree } = await replica(t)
      for (const name of ['', '.', '..', 'a/b', 'a\u0000b', 'x'.repeat(256)]) {
        await assert.rejects(tree.commit(mkdir(tree.root, name)), InvalidOpError, JSON.stringify(name))
      }
      await assert.rejects(tree.commit({ type: 'write', inode: tree.root, content: { inline: new Uint8Array(5000) }, size: 5000, time: 1n }), InvalidOpError)
      await assert.rejects(tree.commit({ type: 'setattr', inode: tree.root, mode: 0o170000, time: 1n }), InvalidOpError)
      await assert.rejects(tree.commit({ type: 'nope' } as any), InvalidOpError)
      assert.equal(tree.heads().length, 0)
      await tree.commit(mkdir(tree.root, 'é'.repeat(127)))
    })

    it('tree.receive() rejects garbage, bad signatures and tampered ops, storing nothing', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const { cid } = await a.tree.commit(mkdir(a.tree.root, 'x'))
      const good = a.tree.getOp(cid)!
      await assert.rejects(b.tree.receive([new Uint8Array([1, 2, 3])]), InvalidOpError)
      await assert.rejects(b.tree.receive([new Uint8Array(100_000)]), InvalidOpError)
      const tampered = new Uint8Array(good)
      const at = Buffer.from(tampered).indexOf('x')
      tampered[at] = 'y'.charCodeAt(0)
      await assert.rejects(b.tree.receive([good, tampered]), (err: Error) => err instanceof InvalidOpError && /signature/.test(err.message))
      assert.equal(b.tree.hasOp(cid), false)
      assert.equal(b.tree.size, 0)
      const r = await b.tree.receive([good])
      assert.equal(r.applied, 1)
      assert.deepEqual(ls(b.tree, '/'), ['x'])
    })

    it('idOf(cid) and cidOf(bytes) agree with multiformats (CID.toString, CID.createV1)', () => {
      for (let i = 0; i < 300; i++) {
        const bytes = randomBytes(i)
        const cid = cidOf(bytes)
        const parsed = CID.parse(cid.toString())
        assert.equal(idOf(cid), cid.toString())
        assert.ok(parsed.equals(cid))
        assert.equal(idOf(parsed), parsed.toString())
        assert.equal(cid.multihash.code, 0x12)
        assert.equal(cid.code, 0x71)
      }
      const v0 = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
      assert.equal(idOf(v0), v0.toString())
    })

    it('tree.receive() refuses an op forged in another author\'s name, also when a signed op of the forger names it', async () => {
      const a = await replica(t)
      const b = await replica(t)
      await a.tree.commit(mkdir(a.tree.root, 'x'))
      const rogue = signerFor(await makeKey())
      const rogueKey = await makeKey()
      // claims a's authorship, signed by another key; the rogue's own (validly signed) op names it
      const forged = await createOp({ author: a.signer.author, sign: async bytes => await rogueKey.sign(bytes) }, mkdir(a.tree.root, 'forged'), [a.clock.ms + 1, 0], [])
      const child = await createOp(rogue, mkdir(a.tree.root, 'child'), [a.clock.ms + 2, 0], [forged.cid])
      const before = b.tree.size
      await assert.rejects(b.tree.receive([child.bytes, forged.bytes]), (err: Error) => err instanceof InvalidOpError && /signature/.test(err.message))
      assert.equal(b.tree.size, before)
      // the same, the child first (held for its parent), then the forged parent alone
      const r = await b.tree.receive([child.bytes])
      assert.equal(r.applied, 0)
      assert.deepEqual(r.missing.map(c => c.toString()), [forged.cid.toString()])
      await assert.rejects(b.tree.receive([forged.bytes]), (err: Error) => err instanceof InvalidOpError && /signature/.test(err.message))
      assert.equal(b.tree.hasOp(forged.cid), false)
      assert.equal(b.tree.hasOp(child.cid), false)
    })

    it('tree.receive() of one author\'s run of ops checks the signature of its newest op, which covers the rest by hash', async () => {
      const a = await replica(t)
      const b = await replica(t)
      for (let i = 0; i < 20; i++) {
        a.clock.ms += 1
        await a.tree.commit(mkdir(a.tree.root, `d${i}`))
      }
      const blocks = [...allOps(a.tree).values()]
      const r = await b.tree.receive(blocks)
      assert.equal(r.applied, 20)
      assert.equal(b.tree.receiveStats().verified, 1)
      assert.deepEqual(snapshot(b.tree), snapshot(a.tree))
      // the same ops again: known, nothing to check
      await b.tree.receive(blocks)
      assert.equal(b.tree.receiveStats().verified, 1)
    })

    it('tree.receive() checks with the verifier\'s now(), a small receive and a merge\'s large one alike (one check for a run of one author\'s ops), the verifier when now() cannot; a bad signature refused either way', async () => {
      const a = await replica(t)
      // a verifier that counts which way each check went (both the host's Ed25519 check)
      const calls = { pool: 0, now: 0 }
      let nowAnswers = true
      const counted: Verify = Object.assign(async (author: string, bytes: Uint8Array, sig: Uint8Array) => { calls.pool++; return await hostVerify(author, bytes, sig) }, {
        now: (author: string, bytes: Uint8Array, sig: Uint8Array) => { calls.now++; return nowAnswers ? hostVerify.now!(author, bytes, sig) : undefined }
      })
      const b = await Tree.open({ dir: await tempDir(t, 'darkfs-tree-'), signer: signerFor(await makeKey()), verify: counted })
      t.add(async () => { await b.close() })
      const sent = new Set<string>()
      const fresh = (): Uint8Array[] => {
        const out = [...allOps(a.tree)].filter(([id]) => !sent.has(id))
        for (const [id] of out) sent.add(id)
        return out.map(([, bytes]) => bytes)
      }
      // one op (a hold ask's): checked on the calling thread
      await a.tree.commit(mkdir(a.tree.root, 'one'))
      assert.equal((await b.receive(fresh())).applied, 1)
      assert.deepEqual(calls, { pool: 0, now: 1 })
      // a few ops, then a merge's batch of one author's ops (one check, at its newest): on the
      // calling thread too (a hand-over to the pool left the receive's turn of the tree waiting
      // for the loop, whatever ran there meanwhile, while its own apply runs on the loop anyway)
      for (const n of [16, 300]) {
        for (let i = 0; i < n; i++) {
          a.clock.ms += 1
          await a.tree.commit(mkdir(a.tree.root, `d${n}-${i}`))
        }
        assert.equal((await b.receive(fresh())).applied, n)
      }
      assert.deepEqual(calls, { pool: 0, now: 3 })
      // a forged op alone (a small receive): refused by now()'s check, nothing stored
      const rogueKey = await makeKey()
      a.clock.ms += 1
      const forged = await createOp({ author: a.signer.author, sign: async bytes => await rogueKey.sign(bytes) }, mkdir(a.tree.root, 'forged'), [a.clock.ms, 0], [])
      await assert.rejects(b.receive([forged.bytes]), (err: Error) => err instanceof InvalidOpError && /signature/.test(err.message))
      assert.equal(b.hasOp(forged.cid), false)
      assert.deepEqual(calls, { pool: 0, now: 4 })
      // now() that cannot check (an author key it has no object for): the verifier checks it
      nowAnswers = false
      a.clock.ms += 1
      await a.tree.commit(mkdir(a.tree.root, 'fallback'))
      assert.equal((await b.receive(fresh())).applied, 1)
      assert.deepEqual(calls, { pool: 1, now: 5 })
      await assert.rejects(b.receive([forged.bytes]), (err: Error) => err instanceof InvalidOpError && /signature/.test(err.message))
      assert.deepEqual(calls, { pool: 2, now: 6 })
      assert.deepEqual(snapshot(b), snapshot(a.tree))
    })

    it('tree.receive() of a few ops by as many authors (keys a peer made) checks at most VERIFY_INLINE_CHECKS of them on the calling thread, the rest with the verifier', async () => {
      const calls = { pool: 0, now: 0 }
      const counted: Verify = Object.assign(async (author: string, bytes: Uint8Array, sig: Uint8Array) => { calls.pool++; return await hostVerify(author, bytes, sig) }, {
        now: (author: string, bytes: Uint8Array, sig: Uint8Array) => { calls.now++; return hostVerify.now!(author, bytes, sig) }
      })
      const b = await Tree.open({ dir: await tempDir(t, 'darkfs-tree-'), signer: signerFor(await makeKey()), verify: counted })
      t.add(async () => { await b.close() })
      // 16 ops (a small receive), each by its own author: a check each
      const ops = await Promise.all(Array.from({ length: 16 }, async (_, i) => await createOp(signerFor(await makeKey()), mkdir(b.root, `k${i}`), [1_000 + i, 0], [])))
      assert.equal((await b.receive(ops.map(op => op.bytes))).applied, 16)
      assert.equal(calls.now + calls.pool, 16, 'one check per author')
      assert.equal(calls.now, VERIFY_INLINE_CHECKS)
      // a forged op among them is still refused, whichever way its check went
      const rogue = await makeKey()
      const more = await Promise.all(Array.from({ length: 4 }, async (_, i) => await createOp(signerFor(await makeKey()), mkdir(b.root, `m${i}`), [2_000 + i, 0], [])))
      const forged = await createOp({ author: signerFor(await makeKey()).author, sign: async bytes => await rogue.sign(bytes) }, mkdir(b.root, 'forged'), [3_000, 0], [])
      for (const at of [0, more.length]) {
        const batch = more.map(op => op.bytes)
        batch.splice(at, 0, forged.bytes)
        await assert.rejects(b.receive(batch), (err: Error) => err instanceof InvalidOpError && /signature/.test(err.message))
        assert.equal(b.hasOp(forged.cid), false)
        assert.ok(more.every(op => !b.hasOp(op.cid)), 'nothing of a batch with a bad op stored')
      }
    })

    it('tree.receive() with the blocks\' CIDs and ids (what sync derived to tell the fresh ones) stores and applies them as without', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const x = await a.tree.commit(mkdir(a.tree.root, 'x'))
      await a.tree.commit(mkfile(x.id, 'f', 'hello'))
      const blocks = [...allOps(a.tree).values()]
      const named = blocks.map(bytes => { const cid = cidOf(bytes); return { cid, id: idOf(cid) } })
      await assert.rejects(b.tree.receive(blocks, named.slice(1)), TypeError)
      const r = await b.tree.receive(blocks, named)
      assert.equal(r.applied, 2)
      assert.deepEqual(snapshot(b.tree), snapshot(a.tree))
      for (const { cid } of named) assert.ok(b.tree.hasOp(cid))
      // a signature is still checked: named ops are not vouched for by their names
      assert.equal(b.tree.receiveStats().verified, 1)
    })

    it('opCidOf(digest) is the CID of the op block with that digest (what sync asks for by rbsr\'s digests)', async () => {
      const a = await replica(t)
      await a.tree.commit(mkdir(a.tree.root, 'x'))
      for (const bytes of allOps(a.tree).values()) {
        const cid = cidOf(bytes)
        const again = opCidOf(cid.multihash.digest.slice())
        assert.ok(again.equals(cid))
        assert.equal(again.toString(), cid.toString())
        assert.equal(idOf(again), idOf(cid))
        assert.ok(a.tree.hasOp(again))
        assert.deepEqual(CID.decode(again.bytes).toString(), cid.toString())
      }
      assert.throws(() => opCidOf(new Uint8Array(31)), TypeError)
    })

    it('tree.receive() holds ops with missing parents and reports them', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const x = await a.tree.commit(mkdir(a.tree.root, 'x'))
      const y = await a.tree.commit(mkdir(x.id, 'y'))
      const z = await a.tree.commit(mkdir(y.id, 'z'))
      const r1 = await b.tree.receive([a.tree.getOp(z.cid)!, a.tree.getOp(y.cid)!])
      assert.equal(r1.applied, 0)
      assert.deepEqual(r1.missing.map(String), [x.cid.toString()])
      const r2 = await b.tree.receive([a.tree.getOp(x.cid)!])
      assert.equal(r2.applied, 3)
      assert.deepEqual(r2.missing, [])
      assert.equal(b.tree.path(z.id), '/x/y/z')
    })

    it('tree.receive() takes an op given twice in a batch, or held and given again, once', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const x = await a.tree.commit(mkdir(a.tree.root, 'x'))
      const y = await a.tree.commit(mkdir(x.id, 'y'))
      const z = await a.tree.commit(mkdir(y.id, 'z'))
      const [bx, by, bz] = [x, y, z].map(o => a.tree.getOp(o.cid)!)
      // z held (its parent y missing), then every op again, y and z twice, children before parents
      assert.equal((await b.tree.receive([bz])).applied, 0)
      const seen: string[][] = []
      b.tree.addEventListener('ops', (e) => seen.push((e as CustomEvent<OpsEventDetail>).detail.ops.map(op => op.id)))
      const r = await b.tree.receive([bz, by, bz, bx, by])
      assert.equal(r.applied, 3)
      assert.deepEqual(r.missing, [])
      // one event for the three, in the order applied
      assert.deepEqual(seen, [[x, y, z].map(o => idOf(o.cid))])
      assert.equal(b.tree.size, a.tree.size)
      assert.equal(b.tree.path(z.id), '/x/y/z')
      assert.deepEqual(b.tree.heads().map(String), [z.cid.toString()])
    })
  })

  describe('merge rules', () => {
    it('concurrent writes of identical content are one version', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const f = await a.tree.commit(mkfile(a.tree.root, 'f', 'base'))
      await sync(a.tree, b.tree)
      await a.tree.commit(write(f.id, 'same', sec(3)))
      await b.tree.commit(write(f.id, 'same', sec(4)))
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      for (const r of [a, b]) {
        assert.deepEqual(ls(r.tree, '/'), ['f'])
        assert.equal(text(r.tree, '/f'), 'same')
        assert.equal(r.tree.history(f.id).length, 2)
        assert.deepEqual(r.tree.conflicts(), [])
      }
      assert.equal(snapshot(a.tree), snapshot(b.tree))
    })

    it('concurrent writes of different content: the later keeps the name, the other one sibling', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const f = await a.tree.commit(mkfile(a.tree.root, 'f.txt', 'base'))
      await sync(a.tree, b.tree)
      a.clock.ms += 1000
      b.clock.ms += 2000
      await a.tree.commit(write(f.id, 'from-a', sec(3)))
      await b.tree.commit(write(f.id, 'from-b', sec(4)))
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      assert.equal(snapshot(a.tree), snapshot(b.tree))
      const names = ls(a.tree, '/')
      assert.equal(names.length, 2)
      assert.equal(text(a.tree, '/f.txt'), 'from-b')
      const sib = names.find(n => n !== 'f.txt')!
      assert.match(sib, /^f\.txt\.conflict-[A-Za-z0-9]{8}-\d{8}-\d{6}$/)
      assert.ok(sib.includes(a.signer.author.slice(-8)))
      assert.equal(text(a.tree, '/' + sib), 'from-a')
      const c = a.tree.conflicts()
      assert.equal(c.length, 1)
      assert.equal(c[0].path, '/' + sib)
      assert.equal(c[0].of, f.id)
      assert.equal(c[0].author, a.signer.author)
      assert.equal(a.tree.history(f.id).length, 3)
      // a conflict sibling is a real entry: it stays until unlinked
      await a.tree.commit({ type: 'unlink', entry: c[0].entry, time: sec(9) })
      assert.deepEqual(ls(a.tree, '/'), ['f.txt'])
      assert.deepEqual(a.tree.conflicts(), [])
    })

    it('a conflict of a conflict keeps one suffix', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const f = await a.tree.commit(mkfile(a.tree.root, 'f', 'base'))
      await sync(a.tree, b.tree)
      await a.tree.commit(write(f.id, 'a1', sec(3))); b.clock.ms += 10
      await b.tree.commit(write(f.id, 'b1', sec(4)))
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      const sib = a.tree.conflicts()[0]
      a.clock.ms += 5000; b.clock.ms += 6000
      await a.tree.commit(write(sib.inode, 'a2', sec(7)))
      await b.tree.commit(write(sib.inode, 'b2', sec(8)))
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      assert.equal(snapshot(a.tree), snapshot(b.tree))
      const names = ls(a.tree, '/')
      assert.equal(names.length, 3)
      for (const n of names) assert.ok(!/conflict.*conflict/.test(n), n)
      assert.ok(names.filter(n => n !== 'f').every(isConflictName))
    })

    it('runs of concurrent writes on both sides leave one sibling, showing the losing side\'s latest', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const f = await a.tree.commit(mkfile(a.tree.root, 'f', 'base'))
      await sync(a.tree, b.tree)
      for (let i = 0; i < 3; i++) {
        a.clock.ms += 10
        await a.tree.commit(write(f.id, `a${i}`, sec(3 + 2 * i)))
        b.clock.ms += 20
        await b.tree.commit(write(f.id, `b${i}`, sec(4 + 2 * i)))
      }
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      assert.equal(snapshot(a.tree), snapshot(b.tree))
      const names = ls(a.tree, '/')
      assert.equal(names.length, 2, names.join(' '))
      const sib = names.find(isConflictName)!
      assert.deepEqual([text(a.tree, '/f'), text(a.tree, '/' + sib)].sort(), ['a2', 'b2'])
      assert.equal(a.tree.conflicts().length, 1)
      // every version stays in the file's history
      assert.deepEqual(a.tree.history(f.id).map(v => new TextDecoder().decode((v.content as any).inline)).sort(), ['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'base'])
    })

    it('write vs. concurrent unlink: the write wins, whichever is later', async () => {
      for (const writerLater of [true, false]) {
        const a = await replica(t)
        const b = await replica(t)
        const f = await a.tree.commit(mkfile(a.tree.root, 'f', 'base'))
        await sync(a.tree, b.tree)
        a.clock.ms += writerLater ? 1000 : 2000
        b.clock.ms += writerLater ? 2000 : 1000
        await a.tree.commit({ type: 'unlink', entry: f.id, time: sec(3) })
        await b.tree.commit(write(f.id, 'kept', sec(3)))
        await sync(a.tree, b.tree); await sync(b.tree, a.tree)
        for (const r of [a, b]) {
          assert.deepEqual(ls(r.tree, '/'), ['f'], `writer later: ${writerLater}`)
          assert.equal(text(r.tree, '/f'), 'kept')
        }
        assert.equal(snapshot(a.tree), snapshot(b.tree))
      }
    })

    it('concurrent mkdir of one name merges the directories', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const da = await a.tree.commit(mkdir(a.tree.root, 'd'))
      await a.tree.commit(mkfile(da.id, 'from-a', 'A'))
      b.clock.ms += 5
      const db = await b.tree.commit(mkdir(b.tree.root, 'd'))
      await b.tree.commit(mkfile(db.id, 'from-b', 'B'))
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      assert.equal(snapshot(a.tree), snapshot(b.tree))
      assert.deepEqual(ls(a.tree, '/'), ['d'])
      assert.deepEqual(ls(a.tree, '/d'), ['from-a', 'from-b'])
      assert.equal(a.tree.get(db.id)?.id, da.id)
      assert.deepEqual(a.tree.children(db.id).map(e => e.name), ['from-a', 'from-b'])
      // later ops naming the merged-away dir land in the survivor
      await b.tree.commit(mkfile(db.id, 'later', 'L'))
      assert.deepEqual(ls(b.tree, '/d'), ['from-a', 'from-b', 'later'])
    })

    it('concurrent creates: identical files are one, different files get a conflict name', async () => {
      const a = await replica(t)
      const b = await replica(t)
      await a.tree.commit(mkfile(a.tree.root, 'same', 'S'))
      await b.tree.commit(mkfile(b.tree.root, 'same', 'S'))
      await a.tree.commit(mkfile(a.tree.root, 'diff', 'from-a'))
      b.clock.ms += 1000
      await b.tree.commit(mkfile(b.tree.root, 'diff', 'from-b'))
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      assert.equal(snapshot(a.tree), snapshot(b.tree))
      const names = ls(a.tree, '/')
      assert.equal(names.length, 3)
      assert.equal(text(a.tree, '/diff'), 'from-b')
      const c = a.tree.conflicts()
      assert.equal(c.length, 1)
      assert.match(c[0].path, /^\/diff\.conflict-/)
      assert.equal(text(a.tree, c[0].path), 'from-a')
      assert.equal(text(a.tree, '/same'), 'S')
    })

    it('attributes merge field by field, never a conflict', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const f = await a.tree.commit(mkfile(a.tree.root, 'f', 'x'))
      await sync(a.tree, b.tree)
      await a.tree.commit({ type: 'setattr', inode: f.id, mode: 0o600, time: sec(3) })
      b.clock.ms += 10
      await b.tree.commit({ type: 'setattr', inode: f.id, uid: 42, time: sec(3) })
      await b.tree.commit({ type: 'setxattr', inode: f.id, name: 'user.k', value: new Uint8Array([9]), time: sec(3) })
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      assert.equal(snapshot(a.tree), snapshot(b.tree))
      const i = a.tree.get(f.id)!
      assert.equal(i.mode, 0o600)
      assert.equal(i.uid, 42)
      assert.equal(i.xattrs.get('user.k')?.[0], 9)
      assert.deepEqual(a.tree.conflicts(), [])
    })

    it('concurrent moves making a cycle: one is skipped, nothing orphaned', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const x = await a.tree.commit(mkdir(a.tree.root, 'x'))
      const y = await a.tree.commit(mkdir(a.tree.root, 'y'))
      await sync(a.tree, b.tree)
      await a.tree.commit({ type: 'move', entry: x.id, parent: y.id, name: 'x', time: sec(3) })
      b.clock.ms += 10
      await b.tree.commit({ type: 'move', entry: y.id, parent: x.id, name: 'y', time: sec(3) })
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      assert.equal(snapshot(a.tree), snapshot(b.tree))
      // b's move sorts later and would close a cycle: it is the one skipped
      assert.equal(a.tree.path(y.id), '/y')
      assert.equal(a.tree.path(x.id), '/y/x')
    })

    it('rmdir vs. a concurrent create inside: the directory stays with its new child', async () => {
      for (const rmLater of [true, false]) {
        const a = await replica(t)
        const b = await replica(t)
        const d = await a.tree.commit(mkdir(a.tree.root, 'd'))
        await sync(a.tree, b.tree)
        a.clock.ms += rmLater ? 2000 : 1000
        b.clock.ms += rmLater ? 1000 : 2000
        await a.tree.commit({ type: 'unlink', entry: d.id, time: sec(3) })
        await b.tree.commit(mkfile(d.id, 'child', 'c'))
        await sync(a.tree, b.tree); await sync(b.tree, a.tree)
        assert.equal(snapshot(a.tree), snapshot(b.tree))
        assert.deepEqual(ls(a.tree, '/d'), ['child'], `rm later: ${rmLater}`)
      }
    })

    it('editor save (write tmp, rename over) vs. a concurrent write loses nothing', async () => {
      const a = await replica(t)
      const b = await replica(t)
      const f = await a.tree.commit(mkfile(a.tree.root, 'doc', 'v1'))
      await sync(a.tree, b.tree)
      const tmp = await a.tree.commit(mkfile(a.tree.root, '.doc.swp', 'v2-a'))
      await a.tree.commit({ type: 'move', entry: tmp.id, parent: a.tree.root, name: 'doc', replace: f.id, time: sec(3) })
      b.clock.ms += 5
      await b.tree.commit(write(f.id, 'v2-b', sec(3)))
      await sync(a.tree, b.tree); await sync(b.tree, a.tree)
      assert.equal(snapshot(a.tree), snapshot(b.tree))
      const contents = ls(a.tree, '/').map(n => text(a.tree, '/' + n)).sort()
      assert.deepEqual(contents, ['v2-a', 'v2-b'])
    })
  })

  describe('durability', () => {
    /** No background sync of written ops within a test: every sync counted is one a call made. */
    const NO_TIMER_MS = 3600_000

    it('Tree.open() after close() gives the same tree', async () => {
      const r = await replica(t)
      const other = await replica(t)
      const d = await r.tree.commit(mkdir(r.tree.root, 'd'))
      const f = await r.tree.commit(mkfile(d.id, 'f', 'hello'))
      await other.tree.commit(mkdir(other.tree.root, 'remote'))
      await sync(other.tree, r.tree)
      await r.tree.commit(write(f.id, 'world', sec(3)))
      await r.tree.commit({ type: 'setxattr', inode: f.id, name: 'user.x', value: new Uint8Array([1]), time: sec(4) })
      const before = snapshot(r.tree)
      const heads = r.tree.heads().map(String).sort()
      await r.tree.close()
      const again = await replica(t, { dir: r.dir, key: r.key })
      assert.equal(snapshot(again.tree), before)
      assert.deepEqual(again.tree.heads().map(String).sort(), heads)
      // and it keeps going: new ops chain on the old heads
      await again.tree.commit(mkdir(again.tree.root, 'after'))
      assert.equal(again.tree.heads().length, 1)
    })

    it('Tree.open() cuts a torn tail record and keeps the rest', async () => {
      const { open, stat, truncate, appendFile } = await import('node:fs/promises')
      const { join } = await import('node:path')
      const r = await replica(t)
      await r.tree.commit(mkdir(r.tree.root, 'a'))
      const beforeLast = snapshot(r.tree)
      const size = (await stat(join(r.dir, 'ops.log'))).size
      await r.tree.commit(mkdir(r.tree.root, 'b'))
      await r.tree.close()
      const full = (await stat(join(r.dir, 'ops.log'))).size
      await truncate(join(r.dir, 'ops.log'), size + Math.floor((full - size) / 2))
      const again = await replica(t, { dir: r.dir, key: r.key })
      assert.equal(snapshot(again.tree), beforeLast)
      await again.tree.commit(mkdir(again.tree.root, 'c'))
      await again.tree.close()
      // garbage appended after a good record (a corrupt tail) is cut too
      await appendFile(join(r.dir, 'ops.log'), Buffer.from([0, 0, 0, 9, 1, 2, 3, 4, 5, 6]))
      const third = await replica(t, { dir: r.dir, key: r.key })
      assert.deepEqual(ls(third.tree, '/'), ['a', 'c'])
      const fh = await open(join(r.dir, 'ops.log'), 'r')
      await fh.close()
    })

    it("a 'written' commit is in the log at once, unsynced, and the next durable commit syncs it", async () => {
      const r = await replica(t, { writtenSyncMs: NO_TIMER_MS })
      const s0 = r.tree.logCounters().syncs
      await r.tree.commit(mkdir(r.tree.root, 'a'), 'written')
      await r.tree.commit(mkdir(r.tree.root, 'b'), 'written')
      assert.equal(r.tree.logCounters().syncs, s0, 'a written commit syncs nothing')
      assert.ok(r.tree.logCounters().unsynced > 0)
      // the file holds them already, without a close (a process killed now keeps them)
      const reader = await replica(t, { dir: r.dir, key: r.key })
      assert.deepEqual(ls(reader.tree, '/'), ['a', 'b'])
      await reader.tree.close()
      // one durable commit: one sync, for its own op and the two before it: the two written
      // again with it in one O_DSYNC write, no fdatasync
      const w0 = r.tree.logCounters().writes
      await r.tree.commit(mkdir(r.tree.root, 'c'))
      assert.deepEqual(r.tree.logCounters(), { writes: w0 + 1, syncs: s0 + 1, unsynced: 0, datasyncs: 0 })
      // and then a durable commit is one O_DSYNC write again
      const w = r.tree.logCounters().writes
      await r.tree.commit(mkdir(r.tree.root, 'd'))
      assert.deepEqual(r.tree.logCounters(), { writes: w + 1, syncs: s0 + 2, unsynced: 0, datasyncs: 0 })
      // the bytes written again were written where they were: every record once, in order
      const again = await replica(t, { dir: r.dir, key: r.key })
      assert.deepEqual(ls(again.tree, '/'), ['a', 'b', 'c', 'd'])
      assert.equal(again.tree.size, r.tree.size)
      await again.tree.close()
    })

    it('past REWRITE_MAX_BYTES written unsynced, a durable commit ends in an fdatasync; every record is in the log once', async () => {
      const { REWRITE_MAX_BYTES } = await import('../../node/tree/log.ts')
      const r = await replica(t, { writtenSyncMs: NO_TIMER_MS })
      let i = 0
      while (r.tree.logCounters().unsynced <= REWRITE_MAX_BYTES) await r.tree.commit(mkdir(r.tree.root, `w${i++}`), 'written')
      const before = r.tree.logCounters()
      await r.tree.commit(mkdir(r.tree.root, 'durable'))
      assert.deepEqual(r.tree.logCounters(), { writes: before.writes + 1, syncs: before.syncs + 1, unsynced: 0, datasyncs: before.datasyncs + 1 })
      // below it again: the next durable commit after written ones is one O_DSYNC write
      await r.tree.commit(mkdir(r.tree.root, 'x'), 'written')
      await r.tree.commit(mkdir(r.tree.root, 'y'))
      assert.equal(r.tree.logCounters().datasyncs, before.datasyncs + 1)
      const again = await replica(t, { dir: r.dir, key: r.key })
      assert.equal(ls(again.tree, '/').length, i + 3)
      assert.equal(again.tree.size, r.tree.size)
      await again.tree.close()
    })

    it('tree.sync() syncs written commits, once; with nothing unsynced it syncs nothing', async () => {
      const r = await replica(t, { writtenSyncMs: NO_TIMER_MS })
      await r.tree.commit(mkdir(r.tree.root, 'a'), 'written')
      const syncs0 = r.tree.logCounters().syncs
      await Promise.all([r.tree.sync(), r.tree.sync()])
      assert.ok(r.tree.logCounters().syncs <= syncs0 + 2)
      assert.ok(r.tree.logCounters().syncs > syncs0)
      assert.equal(r.tree.logCounters().unsynced, 0)
      const syncs1 = r.tree.logCounters().syncs
      await r.tree.sync()
      assert.equal(r.tree.logCounters().syncs, syncs1)
    })

    it('received ops are written, not synced; the log timer syncs them', async () => {
      const a = await replica(t)
      for (const name of ['x', 'y', 'z']) await a.tree.commit(mkdir(a.tree.root, name))
      const b = await replica(t, { writtenSyncMs: NO_TIMER_MS })
      const before = b.tree.logCounters()
      await sync(a.tree, b.tree)
      assert.deepEqual(ls(b.tree, '/'), ['x', 'y', 'z'])
      assert.equal(b.tree.logCounters().syncs, before.syncs)
      assert.ok(b.tree.logCounters().unsynced > 0)
      // no one asks: the log's own timer syncs them
      const c = await replica(t, { writtenSyncMs: 50 })
      const c0 = c.tree.logCounters()
      await sync(a.tree, c.tree)
      const end = Date.now() + 60_000
      while (c.tree.logCounters().unsynced > 0 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
      assert.equal(c.tree.logCounters().unsynced, 0)
      assert.ok(c.tree.logCounters().syncs > c0.syncs)
    })

    it('a received batch is in the log file when receive() resolves, in order, before the local op that follows it', async () => {
      const a = await replica(t)
      for (const name of ['x', 'y', 'z']) await a.tree.commit(mkdir(a.tree.root, name))
      const b = await replica(t, { writtenSyncMs: NO_TIMER_MS })
      const blocks = [...allOps(a.tree).values()]
      await b.tree.receive(blocks)
      // the receive's records are in the file now (written while the ops were applied)
      const records = async (): Promise<Uint8Array[]> => {
        const data = await readFile(join(b.dir, LOG_FILE))
        const out: Uint8Array[] = []
        for (let at = 0; at + HEADER_BYTES <= data.byteLength;) {
          const len = data.readUInt32BE(at)
          out.push(data.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len))
          at += HEADER_BYTES + len
        }
        return out
      }
      const got = (await records()).map(r => Buffer.from(r).toString('hex'))
      assert.deepEqual(new Set(got), new Set(blocks.map(r => Buffer.from(r).toString('hex'))))
      // a local op naming them as parents comes after them in the log
      const { cid } = await b.tree.commit(mkdir(b.tree.root, 'w'))
      const after = await records()
      assert.equal(after.length, blocks.length + 1)
      assert.equal(Buffer.from(after[after.length - 1]).toString('hex'), Buffer.from(b.tree.getOp(cid) as Uint8Array).toString('hex'))
    })

    it('received ops survive a restart', async () => {
      const a = await replica(t)
      const b = await replica(t)
      await a.tree.commit(mkdir(a.tree.root, 'x'))
      await sync(a.tree, b.tree)
      const before = snapshot(b.tree)
      await b.tree.close()
      const again = await replica(t, { dir: b.dir, key: b.key })
      assert.equal(snapshot(again.tree), before)
      assert.equal(allOps(again.tree).size, 1)
      assert.equal(resolve(again.tree, '/x') !== undefined, true)
    })
  })
})
