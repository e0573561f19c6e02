// An op block made from the encoding of its unsigned map and its signature (node/tree/op.ts
// withSig, what createOp does) is byte for byte dag-cbor's encoding of the signed op, for ops of
// every type, any clock (every integer width), any parents and signature (property); and an op
// so made decodes and verifies. Maps it does not expect are left to dag-cbor (undefined).
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { createOp, cidOf, decodeOp, withSig, OP_VERSION } from '../../node/tree/op.ts'
import type { OpBody, Signer } from '../../node/tree/index.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261203)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))
const enc = new TextEncoder()
const T = 1_764_000_000_000_000_000n
const AUTHOR = '12D3KooWAuthorAuthorAuthorAuthorAuthorAuthorAuthor'

async function bodies (): Promise<OpBody[]> {
  const id = cidOf(enc.encode('x')).toString()
  const id2 = cidOf(enc.encode('y')).toString()
  const manifest = CID.createV1(0x71, await sha256.digest(enc.encode('m')))
  return [
    { type: 'create', parent: 'root', name: 'a', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: T },
    { type: 'create', parent: id, name: 'fichier é 文件 😀', kind: 'file', mode: 0o644, uid: 1000, gid: 1000, content: { inline: enc.encode('hello') }, size: 5, time: 5n },
    { type: 'setattr', inode: id, mode: 0o7777, uid: 23, gid: 24, atime: 255n, mtime: 65536n, time: 2n ** 53n },
    { type: 'write', inode: id, content: null, size: 0, time: T },
    { type: 'append', inode: id, content: { manifest }, at: 7, size: 4096, offset: 123456789, time: T },
    { type: 'append', inode: id, content: { inline: new Uint8Array(4096).fill(3) }, at: 0, size: 4096, offset: 4096 * 1000, time: T },
    { type: 'fold', inode: id, base: id2, covers: 9, content: { inline: new Uint8Array(300).fill(8) }, size: 300, ranges: [0, 100, 200, 300], over: id2, time: T },
    { type: 'unlink', entry: id, time: 0n }
  ]
}

describe('node/tree op blocks: the signature spliced into the unsigned encoding', () => {
  it('is dag-cbor\'s encoding of the signed op, for any op, clock, parents and signature (property)', async () => {
    const all = await bodies()
    const cids = all.map((_, i) => cidOf(enc.encode(`p${i}`)))
    // every width of unsigned int: immediate, 1, 2, 4 and 8 bytes
    const int = fc.oneof(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 24, max: 255 }), fc.integer({ min: 256, max: 65535 }), fc.integer({ min: 65536, max: 2 ** 32 - 1 }), fc.integer({ min: 2 ** 32, max: Number.MAX_SAFE_INTEGER }))
    fc.assert(fc.property(fc.nat(all.length - 1), int, int, fc.nat(3), fc.uint8Array({ minLength: 64, maxLength: 64 }), (b, h0, h1, np, sig) => {
      const unsigned = { v: OP_VERSION, body: all[b], author: AUTHOR, hlc: [h0, h1], parents: cids.slice(0, np) }
      const got = withSig(dagCbor.encode(unsigned), sig)
      assert.ok(got !== undefined)
      // the bytes (dag-cbor gives a Buffer or a Uint8Array, as it goes)
      assert.deepEqual(Buffer.from(got), Buffer.from(dagCbor.encode({ ...unsigned, sig })))
    }), { seed: PROP_SEED, numRuns: 300 * RUNS })
  })

  it('leaves what it does not expect to dag-cbor', () => {
    const sig = new Uint8Array(64)
    const unsigned = { v: OP_VERSION, body: { type: 'unlink' }, author: AUTHOR, hlc: [1, 2], parents: [] }
    // a signature of another length, another map, a clock that is not two unsigned ints
    assert.equal(withSig(dagCbor.encode(unsigned), new Uint8Array(32)), undefined)
    assert.equal(withSig(dagCbor.encode({ ...unsigned, extra: 1 }), sig), undefined)
    assert.equal(withSig(dagCbor.encode({ ...unsigned, hlc: [1, -2] }), sig), undefined)
    assert.equal(withSig(dagCbor.encode({ ...unsigned, v: 100 }), sig), undefined)
  })

  it('createOp makes blocks that decode and verify, as dag-cbor would encode them', async () => {
    // a 64-byte "signature" the verifier recomputes: the encoding of the unsigned map, hashed twice
    const sign = async (b: Uint8Array): Promise<Uint8Array> => {
      const h = (await sha256.digest(b)).digest
      return new Uint8Array([...h, ...(await sha256.digest(h)).digest])
    }
    const signer: Signer = { author: AUTHOR, sign }
    let parents: CID[] = []
    for (const body of await bodies()) {
      const op = await createOp(signer, body, [1_764_000_000_000, 7], parents)
      const { sig, ...rest } = dagCbor.decode(op.bytes) as Record<string, unknown>
      assert.deepEqual(Buffer.from(op.bytes), Buffer.from(dagCbor.encode({ ...rest, sig })))
      const back = await decodeOp(op.bytes, async (author, bytes, s) => author === AUTHOR && Buffer.compare(Buffer.from(await sign(bytes)), Buffer.from(s)) === 0)
      assert.equal(back.id, op.id)
      parents = [op.cid]
    }
  })
})
