// The fast op-block decoder (node/tree/opcbor.ts) against @ipld/dag-cbor: on real op blocks of
// every type it reads them itself, to the same values; on mutated blocks (a seeded fuzz) and on
// non-canonical encodings it either gives dag-cbor's value or leaves the block to dag-cbor, so
// decodeBlock() accepts and refuses exactly what dag-cbor does; decodeOpBlock() too, with the op
// CIDs of a top-level `parents` list as their ids when the fast path reads the block. An id's
// bytes are read back from it (bytesOfId), and a decoded op's digest with them.
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
import { sha256 } from 'multiformats/hashes/sha2'
import { checkSignature, createOp, cidOf, decodeUnverified, digestInto, idOf } from '../../node/tree/op.ts'
import { InvalidOpError } from '../../node/tree/errors.ts'
import { bytesOfId, bytesOfIdInto, decodeBlock, decodeFast, decodeOpBlock, idOfBytes } from '../../node/tree/opcbor.ts'
import type { OpBody, Signer } from '../../node/tree/index.ts'

const enc = new TextEncoder()
const signer: Signer = { author: '12D3KooWAuthorAuthorAuthorAuthorAuthorAuthorAuthor', sign: async b => (await sha256.digest(b)).bytes }
const T = 1_764_000_000_000_000_000n

async function rawCid (s: string): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(enc.encode(s)))
}

async function blocks (): Promise<Uint8Array[]> {
  const id = cidOf(enc.encode('x')).toString()
  const id2 = cidOf(enc.encode('y')).toString()
  const manifest = CID.createV1(0x71, await sha256.digest(enc.encode('m')))
  const bodies: OpBody[] = [
    { type: 'create', parent: 'root', name: 'a', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: T },
    { type: 'create', parent: id, name: 'fichier é 文件 😀', kind: 'file', mode: 0o644, uid: 1000, gid: 1000, content: { inline: enc.encode('hello') }, size: 5, time: 5n },
    { type: 'create', parent: id, name: 'n'.repeat(200), kind: 'symlink', mode: 0o777, uid: 70000, gid: 4294967295, target: '/a/b/c', time: T },
    { type: 'create', parent: id, name: 'dev', kind: 'chr', mode: 0o600, uid: 0, gid: 0, rdev: 259, time: T },
    { type: 'link', parent: id, name: 'l', inode: id2, time: T },
    { type: 'move', entry: id, parent: id2, name: 'moved', replace: id2, time: T },
    { type: 'unlink', entry: id, time: 0n },
    { type: 'setattr', inode: id, mode: 0o7777, uid: 23, gid: 24, atime: 255n, mtime: 65536n, time: 2n ** 53n },
    { type: 'write', inode: id, content: { manifest, sum: await rawCid('s') }, size: 2 ** 40, time: T, first: true },
    { type: 'write', inode: id, content: null, size: 0, time: T },
    { type: 'append', inode: id, content: { manifest }, at: 7, size: 4096, offset: 123456789, time: T },
    { type: 'fold', inode: id, base: id2, covers: 3, content: { inline: new Uint8Array(300).fill(7) }, size: 300, time: T },
    { type: 'fold', inode: id, base: id2, covers: 9, content: { inline: new Uint8Array(300).fill(8) }, size: 300, ranges: [0, 100, 200, 300], over: id2, time: T },
    { type: 'setxattr', inode: id, name: 'user.x', value: new Uint8Array([0, 1, 2, 255]), time: T },
    { type: 'removexattr', inode: id, name: 'user.x', time: T },
    { type: 'resolve', inode: id, keep: 'holder', siblings: [{ entry: id }, { entry: id2, head: id }], time: T }
  ]
  const out: Uint8Array[] = []
  let parents: CID[] = []
  for (let i = 0; i < bodies.length; i++) {
    const op = await createOp(signer, bodies[i], [1_764_000_000_000 + i, i === 3 ? 4294967295 : i], parents)
    out.push(op.bytes)
    parents = i % 4 === 3 ? [op.cid, cidOf(enc.encode(String(i)))] : [op.cid]
  }
  return out
}

/** An op block `b` with its signature replaced by `sig` (same length: the block stays canonical). */
function createOpBytesWithSig (b: Uint8Array, sig: Uint8Array): Uint8Array {
  const v = dagCbor.decode(b) as Record<string, unknown>
  return dagCbor.encode({ ...v, sig })
}

/** dagCbor.decode's outcome: its value, or its error message. */
function reference (bytes: Uint8Array): { value: unknown } | { error: string } {
  try {
    return { value: dagCbor.decode(bytes) }
  } catch (err: any) {
    return { error: String(err.message) }
  }
}

function same (bytes: Uint8Array): boolean {
  const ref = reference(bytes)
  const fast = decodeFast(bytes)
  if (fast !== undefined) {
    assert.ok('value' in ref, 'the fast path accepted a block dag-cbor refuses')
    assert.deepStrictEqual(fast.value, ref.value)
  }
  let mine: { value: unknown } | { error: string }
  try {
    mine = { value: decodeBlock(bytes) }
  } catch (err: any) {
    mine = { error: String(err.message) }
  }
  assert.deepStrictEqual(mine, ref)
  sameOp(bytes, ref, fast !== undefined)
  return fast !== undefined
}

/** An op CID (CIDv1, dag-cbor, sha2-256): what decodeOpBlock() reads as an id in `parents`. */
function isOpCid (x: unknown): x is CID {
  const c = CID.asCID(x)
  return c !== null && c.version === 1 && c.code === 0x71 && c.multihash.code === 0x12 && c.multihash.size === 32
}

/** decodeOpBlock(): dag-cbor's value or refusal, a top-level list of op CIDs `parents` as ids when the fast path reads the block. */
function sameOp (bytes: Uint8Array, ref: { value: unknown } | { error: string }, fast: boolean): void {
  let mine: { value: unknown } | { error: string }
  try {
    const d = decodeOpBlock(bytes)
    mine = { value: d.value }
    // parents read as ids only by the fast path
    if (d.fast) assert.ok(fast, 'decodeOpBlock read a block decodeFast leaves to dag-cbor')
    // exact: the value dag-cbor gives encodes to the very bytes (the signed bytes are cut from them)
    if (d.exact) assert.ok(Buffer.from(dagCbor.encode((ref as { value: unknown }).value)).equals(bytes), 'an exact block that does not encode back to its bytes')
  } catch (err: any) {
    if (err instanceof assert.AssertionError) throw err
    mine = { error: String(err.message) }
  }
  let want = ref
  if ('value' in ref && fast && typeof ref.value === 'object' && ref.value !== null && !Array.isArray(ref.value) && !(ref.value instanceof Uint8Array) && CID.asCID(ref.value) === null) {
    const parents = (ref.value as { parents?: unknown }).parents
    if (Array.isArray(parents) && parents.every(isOpCid)) want = { value: { ...ref.value, parents: parents.map(idOf) } }
  }
  assert.deepStrictEqual(mine, want)
}

/** A seeded PRNG (mulberry32), so the fuzz is the same every run. */
function rng (seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('node/tree opcbor (fast op-block decoder)', () => {
  it('idOfBytes() of bytes longer than any id before it (its buffer grows): the base32 id', () => {
    // each size needs more than twice the characters of the one before, so the buffer grows each time
    for (const size of [100, 1_000, 5_000, 40_000]) {
      const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 37 + size) & 0xff)
      assert.equal(idOfBytes(bytes, 0, size), base32.encode(bytes), `${size} bytes`)
    }
  })

  it('reads every op type itself, to the values dag-cbor gives', async () => {
    for (const b of await blocks()) {
      assert.ok(same(b), 'an op block the fast path left to dag-cbor')
      assert.ok((decodeOpBlock(b).value as { parents: unknown[] }).parents.every(p => typeof p === 'string'), 'parents not read as ids')
      assert.ok(same(Buffer.from(b)), 'the same block in a Buffer')
    }
  })

  it('signatures check over the block without its sig, exact or not (non-ASCII strings), and fail on any other bytes', async () => {
    const verify = async (_author: string, data: Uint8Array, sig: Uint8Array): Promise<boolean> => Buffer.from((await sha256.digest(data)).bytes).equals(sig)
    let exact = 0
    let inexact = 0
    for (const b of await blocks()) {
      if (decodeOpBlock(b).exact) exact++
      else inexact++
      const d = decodeUnverified(b)
      assert.equal(d.sigAt !== undefined, decodeOpBlock(b).exact)
      await checkSignature(d, verify)
      // the same op claiming another signature: refused either way
      const forged = createOpBytesWithSig(b, new Uint8Array(32).fill(1))
      await assert.rejects(checkSignature(decodeUnverified(forged), verify), InvalidOpError)
    }
    assert.ok(exact > 0 && inexact > 0, `exact ${exact}, inexact ${inexact}`)
  })

  it('parents that are not op CIDs are refused, strings (which ids are) included', async () => {
    const b = (await blocks())[1]
    const v = dagCbor.decode(b) as Record<string, unknown>
    for (const parents of [['move'], [idOf(cidOf(b))], [(v.parents as CID[])[0], 'x'], [await rawCid('r')]]) {
      assert.throws(() => decodeUnverified(dagCbor.encode({ ...v, parents })), (err: Error) => err instanceof InvalidOpError && /parent/.test(err.message), JSON.stringify(parents))
    }
  })

  it('mutated blocks: the same value or the same refusal as dag-cbor', async () => {
    const rand = rng(42)
    let fast = 0
    let total = 0
    for (const b of await blocks()) {
      for (let k = 0; k < 400; k++) {
        let m = b.slice()
        const what = Math.floor(rand() * 4)
        const at = Math.floor(rand() * m.length)
        if (what === 0) m[at] = Math.floor(rand() * 256)
        else if (what === 1) m = m.subarray(0, at)
        else if (what === 2) m = new Uint8Array([...m.subarray(0, at), Math.floor(rand() * 256), ...m.subarray(at)])
        else m = new Uint8Array([...m.subarray(0, at), ...m.subarray(at + 1)])
        total++
        if (same(m)) fast++
      }
    }
    // both ways taken: many mutants (e.g. a changed letter) stay canonical, many do not
    assert.ok(fast > total / 10 && fast < total, `fast path took ${fast} of ${total}`)
  })

  it('leaves non-canonical and unusual encodings to dag-cbor', () => {
    const cases = [
      [0x18, 0x05], // 5 in two bytes
      [0x19, 0x00, 0x20], // 32 in three bytes
      [0x1b, 0, 0, 0, 0, 0, 0, 0, 1], // 1 in nine bytes
      [0xa2, 0x62, 0x62, 0x62, 0x01, 0x61, 0x61, 0x02], // keys out of order ('bb' before 'a')
      [0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02], // a key twice
      [0xa1, 0x01, 0x02], // an int key
      [0x9f, 0x01, 0xff], // indefinite array
      [0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0], // a float
      [0xf7], // undefined
      [0xc1, 0x01], // tag 1
      [0xd8, 0x2a, 0x41, 0x01], // tag 42 without the leading 0
      [0xd8, 0x2a, 0x42, 0x00, 0x01], // tag 42 holding no CID
      [0x01, 0x02], // bytes after the item
      [0x20], // a negative int
      [0xa1, 0x69, ...enc.encode('__proto__'), 0x01], // a key __proto__
      [], // nothing
      [0x62, 0x61] // truncated string
    ]
    for (const c of cases) {
      assert.equal(decodeFast(new Uint8Array(c)), undefined, `fast path took ${JSON.stringify(c)}`)
      same(new Uint8Array(c))
    }
    // and the canonical forms it does read
    for (const c of [[0x18, 0x18], [0x19, 0x01, 0x00], [0x1a, 0x00, 0x01, 0x00, 0x00], [0x1b, 0, 0, 0, 1, 0, 0, 0, 0], [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0xa2, 0x61, 0x62, 0xf5, 0x62, 0x61, 0x61, 0xf6]]) {
      assert.ok(same(new Uint8Array(c)), `fast path left ${JSON.stringify(c)}`)
    }
  })

  it('bytesOfId reads back the bytes of every id idOfBytes makes, and refuses what is not one', async () => {
    for (let n = 0; n <= 40; n++) {
      for (let k = 0; k < 8; k++) {
        const bytes = new Uint8Array(n).map((_, i) => (i * 151 + k * 37 + n) & 0xff)
        if (k === 1) bytes.fill(0xff)
        const id = idOfBytes(bytes, 0, n)
        assert.deepEqual(bytesOfId(id), bytes, id)
      }
    }
    const cid = await cidOf(new TextEncoder().encode('an op block'))
    assert.deepEqual(bytesOfId(idOf(cid)), cid.bytes)
    // not 'b' and base32: another base, an upper-case or foreign char, bits set past the last byte
    for (const bad of ['', 'zabc', `B${idOf(cid).slice(1)}`, `${idOf(cid).slice(0, 10)}1${idOf(cid).slice(11)}`, `${idOf(cid).slice(0, 10)}é${idOf(cid).slice(11)}`, 'bab']) {
      assert.equal(bytesOfId(bad), undefined, bad)
    }
  })

  it('bytesOfIdInto gives what a char-at-a-time base32 reader gives, for ids and for strings that are not (property)', () => {
    const A = 'abcdefghijklmnopqrstuvwxyz234567'
    // the reference: one char at a time, a bit buffer, -1 at the first char not in A or bits left set
    const reference = (id: string): number[] | -1 => {
      if (id.length < 1 || id[0] !== 'b') return -1
      const out: number[] = []
      let bits = 0
      let value = 0
      for (let i = 1; i < id.length; i++) {
        const v = A.indexOf(id[i])
        if (v < 0) return -1
        value = (value << 5) | v
        bits += 5
        if (bits >= 8) {
          bits -= 8
          out.push((value >> bits) & 0xff)
          value &= (1 << bits) - 1
        }
      }
      return value === 0 ? out : -1
    }
    const char = fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...A) },
      { weight: 1, arbitrary: fc.constantFrom('1', 'A', 'z', '=', '\u00e9', '\u0100', '\u{1f600}', '\u0000') }
    )
    const ids = fc.oneof(
      fc.uint8Array({ maxLength: 48 }).map(b => idOfBytes(b, 0, b.length)),
      fc.array(char, { maxLength: 80 }).map(cs => `b${cs.join('')}`),
      fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 48 }), fc.nat(), char).map(([b, at, c]) => {
        const id = idOfBytes(b, 0, b.length)
        const i = 1 + (at % (id.length - 1 || 1))
        return id.slice(0, i) + c + id.slice(i + 1)
      })
    )
    fc.assert(fc.property(ids, fc.nat({ max: 8 }), (id, at) => {
      const want = reference(id)
      const out = new Uint8Array(at + id.length)
      const n = bytesOfIdInto(id, out, at)
      if (want === -1) assert.equal(n, -1, id)
      else {
        assert.equal(n, want.length, id)
        assert.deepEqual([...out.subarray(at, at + n)], want, id)
      }
    }), { numRuns: 3000 })
  })

  it('bytesOfIdInto writes what bytesOfId gives, where it is told, and refuses what bytesOfId refuses', async () => {
    const cid = await cidOf(new TextEncoder().encode('another op block'))
    const id = idOf(cid)
    const out = new Uint8Array(40).fill(7)
    assert.equal(bytesOfIdInto(id, out, 3), 36)
    assert.deepEqual(out.subarray(3, 39), cid.bytes)
    assert.deepEqual([...out.subarray(0, 3), out[39]], [7, 7, 7, 7])
    for (const bad of ['', 'zabc', `B${id.slice(1)}`, `${id.slice(0, 10)}1${id.slice(11)}`, 'bab']) {
      assert.equal(bytesOfIdInto(bad, new Uint8Array(64), 0), -1, bad)
    }
  })

  it('digestInto writes an op\'s digest, decoded or made, with its CID made or not', async () => {
    const signer: Signer = { author: '12D3KooWAuthor', sign: async () => new Uint8Array(64).fill(5) }
    const op = await createOp(signer, { type: 'setattr', inode: 'root', mode: 0o700, time: 7n }, [3, 0], [])
    const want = [...(await sha256.digest(op.bytes)).digest]
    const out = new Uint8Array(34)
    const d = decodeUnverified(op.bytes)
    digestInto(d.op, out, 1)
    assert.deepEqual([...out.subarray(1, 33)], want)
    out.fill(0)
    void d.op.cid
    digestInto(d.op, out, 2)
    assert.deepEqual([...out.subarray(2, 34)], want)
    out.fill(0)
    digestInto(op, out, 0)
    assert.deepEqual([...out.subarray(0, 32)], want)
    // an op of another shape (tests make them): its digest as it gives it
    const plain = { ...d.op, digest: new Uint8Array(32).fill(9), cid: d.op.cid }
    digestInto(plain, out, 0)
    assert.deepEqual([...out.subarray(0, 32)], new Array(32).fill(9))
  })

  it('an op decoded from a block gives its CID\'s digest, read back from its id', async () => {
    const signer: Signer = { author: '12D3KooWAuthor', sign: async () => new Uint8Array(64).fill(5) }
    const op = await createOp(signer, { type: 'setattr', inode: 'root', mode: 0o700, time: 7n }, [3, 0], [])
    const d = decodeUnverified(op.bytes)
    assert.deepEqual([...d.op.digest], [...op.cid.multihash.digest])
    assert.deepEqual([...d.op.digest], [...(await sha256.digest(op.bytes)).digest])
    assert.equal(d.op.cid.toString(), op.cid.toString())
  })
})
