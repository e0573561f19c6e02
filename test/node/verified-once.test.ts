// Each byte is hashed once where it is checked, not again by every layer it passes (issue 15
// item 4), and nothing unverified is used: decodeChunk takes k verified data fragments as the
// chunk without hashing it again, but still checks a chunk rebuilt through parity; Store.get
// hashes a large block on the addon's threadpool and still quarantines a corrupt one; putMany
// with `verified` stores bytes the caller hashed, without it refuses wrong ones.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CHUNK_SIZE, Store, cidOf, decodeChunk, decodeChunkOffThread, encodeChunk } from '../../node/data/index.ts'
import { matchesOffThread } from '../../node/data/store.ts'
import { CorruptBlockError } from '../../node/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'

describe('verified once', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('decodeChunk, verified: the k data fragments are the chunk; a chunk rebuilt through a wrong parity fragment is refused', () => {
    const data = randomBytes(CHUNK_SIZE - 12345)
    const { ref, blocks } = encodeChunk(data, 0, 4, 2)
    const frags = blocks.map(b => b.bytes)
    assert.deepEqual(decodeChunk(ref, frags.slice(0, 4), { verified: true }), new Uint8Array(data))
    // fragment 1 missing: rebuilt from parity 4, which is right, then checked against the chunk's CID
    assert.deepEqual(decodeChunk(ref, [frags[0], undefined, frags[2], frags[3], frags[4]], { verified: true }), new Uint8Array(data))
    // a parity fragment that is not what the manifest names (a caller that broke its promise):
    // the rebuilt chunk does not hash to its CID, whatever `verified` says
    const wrong = Uint8Array.from(frags[4])
    wrong[100] ^= 1
    assert.throws(() => decodeChunk(ref, [frags[0], undefined, frags[2], frags[3], wrong], { verified: true }), /rebuilt to the wrong bytes/)
    // not verified: the k data fragments are checked as a whole against the chunk's CID
    const bad = Uint8Array.from(frags[2])
    bad[0] ^= 1
    assert.throws(() => decodeChunk(ref, [frags[0], frags[1], bad, frags[3]]), /rebuilt to the wrong bytes/)
  })

  it('decodeChunk, verified, through parity: each rebuilt data fragment is checked against its own CID, not the chunk hashed whole; a short last one still hashes the chunk', () => {
    const data = randomBytes(CHUNK_SIZE - 12345)
    const { ref, blocks } = encodeChunk(data, 0, 4, 2)
    const frags = blocks.map(b => b.bytes)
    // the chunk's own CID names other bytes: only a whole-chunk hash can notice, and none is taken
    // when the rebuilt fragments match theirs (the old check hashed the chunk and refused it)
    const elsewhere = { ...ref, cid: cidOf(randomBytes(16)) }
    assert.deepEqual(decodeChunk(elsewhere, [frags[0], undefined, frags[2], frags[3], frags[4]], { verified: true }), new Uint8Array(data))
    assert.deepEqual(decodeChunk(elsewhere, [undefined, undefined, frags[2], frags[3], frags[4], frags[5]], { verified: true }), new Uint8Array(data))
    // a wrong parity fragment rebuilds fragment 1 to bytes its CID does not name: refused
    const wrong = Uint8Array.from(frags[5])
    wrong[7] ^= 1
    assert.throws(() => decodeChunk(ref, [frags[0], undefined, frags[2], frags[3], undefined, wrong], { verified: true }), /rebuilt to the wrong bytes/)
    // the last data fragment is short in the chunk (its CID covers padding): the chunk is hashed
    assert.deepEqual(decodeChunk(ref, [frags[0], frags[1], frags[2], undefined, frags[4]], { verified: true }), new Uint8Array(data))
    assert.throws(() => decodeChunk(elsewhere, [frags[0], frags[1], frags[2], undefined, frags[4]], { verified: true }), /rebuilt to the wrong bytes/)
  })

  it('decodeChunkOffThread (the read path\'s): decodeChunk\'s answers and refusals, its hashes on the threadpool', async () => {
    const data = randomBytes(CHUNK_SIZE - 12345)
    const { ref, blocks } = encodeChunk(data, 0, 4, 2)
    const frags = blocks.map(b => b.bytes)
    const want = new Uint8Array(data)
    assert.deepEqual(await decodeChunkOffThread(ref, frags.slice(0, 4)), want)
    assert.deepEqual(await decodeChunkOffThread(ref, [frags[0], undefined, frags[2], frags[3], frags[4]]), want)
    assert.deepEqual(await decodeChunkOffThread(ref, [undefined, undefined, frags[2], frags[3], frags[4], frags[5]]), want)
    // the short last data fragment rebuilt: the chunk is hashed whole
    assert.deepEqual(await decodeChunkOffThread(ref, [frags[0], frags[1], frags[2], undefined, frags[4]]), want)
    const elsewhere = { ...ref, cid: cidOf(randomBytes(16)) }
    await assert.rejects(decodeChunkOffThread(elsewhere, [frags[0], frags[1], frags[2], undefined, frags[4]]), /rebuilt to the wrong bytes/)
    // a wrong parity fragment: the rebuilt data fragment does not match its CID, nor the chunk its own
    for (const j of [4, 5]) {
      const wrong = Uint8Array.from(frags[j])
      wrong[4321] ^= 1
      const given = [frags[0], undefined, frags[2], frags[3], undefined, undefined]
      given[j] = wrong
      await assert.rejects(decodeChunkOffThread(ref, given), /rebuilt to the wrong bytes/)
    }
    // a replicated chunk (k = 1): its one fragment is the chunk
    const one = encodeChunk(data, 0, 1, 2)
    assert.deepEqual(await decodeChunkOffThread(one.ref, [one.blocks[0].bytes]), data)
  })

  it('matchesOffThread agrees with the bytes, small and large', async () => {
    for (const n of [100, 65536, 300_000]) {
      const bytes = randomBytes(n)
      const cid = cidOf(bytes)
      assert.equal(await matchesOffThread(cid, bytes), true, `${n} bytes`)
      const other = Uint8Array.from(bytes)
      other[n - 1] ^= 0x80
      assert.equal(await matchesOffThread(cid, other), false, `${n} bytes, one bit flipped`)
    }
  })

  it('Store: putMany refuses wrong bytes unless verified; get of a large block corrupted on disk quarantines it', async () => {
    const dir = await tempDir(t)
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    const bytes = randomBytes(256 << 10)
    const cid = cidOf(bytes)
    const wrong = randomBytes(256 << 10)
    await assert.rejects(store.putMany([{ cid, bytes: wrong }]), CorruptBlockError)
    assert.equal(await store.has(cid), false)
    await store.putMany([{ cid, bytes }], { verified: true })
    assert.deepEqual(await store.get(cid), bytes)
    // flip the file on disk: get() hashes it (off the event loop) and refuses it
    const blocks = join(dir, 'blocks')
    let file = ''
    for (const d of await readdir(blocks)) {
      for (const n of await readdir(join(blocks, d))) if ((await stat(join(blocks, d, n))).size === bytes.byteLength) file = join(blocks, d, n)
    }
    assert.notEqual(file, '')
    await writeFile(file, wrong)
    await assert.rejects(store.get(cid), CorruptBlockError)
    // quarantined: moved aside, still reported as corrupt
    await assert.rejects(store.get(cid), CorruptBlockError)
  })

  it('Store.get with the block\'s size (one read job) returns verified bytes, and refuses and quarantines a corrupt one as get() does', async () => {
    const dir = await tempDir(t)
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    const bytes = randomBytes(256 << 10)
    const cid = cidOf(bytes)
    await store.putMany([{ cid, bytes }], { verified: true })
    assert.deepEqual(await store.get(cid, { size: bytes.byteLength }), bytes)
    // a size hint that is wrong (too short: not the block; too long: the file is shorter) still
    // gives the block's own bytes, read the ordinary way
    assert.deepEqual(await store.get(cid, { size: 1000 }), bytes)
    assert.deepEqual(await store.get(cid, { size: bytes.byteLength + 1 }), bytes)
    const blocks = join(dir, 'blocks')
    let file = ''
    for (const d of await readdir(blocks)) {
      for (const n of await readdir(join(blocks, d))) if ((await stat(join(blocks, d, n))).size === bytes.byteLength) file = join(blocks, d, n)
    }
    assert.notEqual(file, '')
    const wrong = new Uint8Array(bytes)
    wrong[12345] ^= 1
    await writeFile(file, wrong)
    await assert.rejects(store.get(cid, { size: bytes.byteLength }), CorruptBlockError)
    assert.equal(store.quarantined(cid), true)
    assert.equal(await store.has(cid), false)
    await assert.rejects(store.get(cid, { size: bytes.byteLength }), CorruptBlockError)
  })
})
