// The purpose-built op reader (node/tree/opdecode.ts) against the generic path (opcbor.ts's
// decoder, then op.ts's checks): for ops of every type the reader reads, made by createOp (the
// dag-cbor encoding), it reads them itself, to the op the generic path gives, and that op's body
// is the body encoded (round trip, property); for op maps of any shape and any values (bad
// ones included) and for mutated blocks, decodeUnverified() gives what the generic path gives:
// the same op, or the same InvalidOpError; malformed input (truncated, random, empty) is an
// InvalidOpError, never another error.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { checkSignature, cidOf, createOp, decodeUnverified, decodeUnverifiedGeneric, type DecodedOp } from '../../node/tree/op.ts'
import { InvalidOpError } from '../../node/tree/errors.ts'
import { readOp } from '../../node/tree/opdecode.ts'
import type { Hlc, OpBody, Signer } from '../../node/tree/index.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261204)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))
const enc = new TextEncoder()

/** A signer whose signature is the sha256 of the signed bytes (verify below checks it). */
const signer = (author: string): Signer => ({ author, sign: async b => (await sha256.digest(b)).bytes })
const verify = async (_author: string, data: Uint8Array, sig: Uint8Array): Promise<boolean> => Buffer.from((await sha256.digest(data)).bytes).equals(sig)

const opId = fc.nat(40).map(n => cidOf(enc.encode(`op${n}`)).toString())
const anId = fc.oneof(opId, fc.constantFrom('root', 'A', 'z9'), fc.stringMatching(/^[A-Za-z0-9]{1,128}$/))
const asciiName = fc.stringMatching(/^[\x01-\x2e\x30-\x7f]{1,40}$/).filter(s => s !== '.' && s !== '..')
const name = fc.oneof(asciiName, fc.constantFrom('é', 'fichier 文件', 'n'.repeat(255)))
const u32 = fc.oneof(fc.nat(30), fc.constant(0xffffffff), fc.integer({ min: 0, max: 0xffffffff }))
const safe = fc.oneof(fc.nat(30), fc.constant(Number.MAX_SAFE_INTEGER), fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))
const time = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 1_700_000_000_000_000_000n, max: 1_800_000_000_000_000_000n }), fc.constantFrom(2n ** 32n - 1n, 2n ** 32n, 2n ** 53n))
const mode = fc.integer({ min: 0, max: 0o7777 })
const raw = async (s: string): Promise<CID> => CID.createV1(0x55, await sha256.digest(enc.encode(s)))
const manifestOf = (s: string): CID => cidOf(enc.encode(`m${s}`))
const content = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map(inline => ({ inline })),
  fc.nat(5).map(n => ({ manifest: manifestOf(String(n)) })),
  fc.nat(5).chain(n => fc.constant(n)).map(n => ({ manifest: manifestOf(String(n)), sum: SUMS[n % SUMS.length] }))
)
const SUMS: CID[] = []
before(async () => { for (let i = 0; i < 3; i++) SUMS.push(await raw(String(i))) })

/** Optional fields: present or left out. */
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined })

/** Valid bodies of the types opdecode.ts reads. */
const body: fc.Arbitrary<OpBody> = fc.oneof(
  fc.record({ parent: anId, name, kind: fc.constantFrom('dir', 'fifo', 'chr', 'blk', 'sock'), mode, uid: u32, gid: u32, rdev: opt(u32), time })
    .map(b => ({ type: 'create', ...b }) as OpBody),
  fc.record({ parent: anId, name, mode, uid: u32, gid: u32, rdev: opt(u32), content: opt(content), size: opt(safe), time })
    .map(b => ({ type: 'create', kind: 'file', ...b, size: b.content !== undefined && 'inline' in b.content ? b.content.inline.byteLength : b.size }) as OpBody),
  fc.record({ parent: anId, name, mode, uid: u32, gid: u32, target: fc.oneof(fc.stringMatching(/^[\x01-\x7f]{1,80}$/), fc.constant('/ü')), time })
    .map(b => ({ type: 'create', kind: 'symlink', ...b }) as OpBody),
  fc.record({ parent: anId, name, inode: anId, time }).map(b => ({ type: 'link', ...b }) as OpBody),
  fc.record({ entry: anId, parent: anId, name, replace: opt(anId), time }).map(b => ({ type: 'move', ...b }) as OpBody),
  fc.record({ entry: anId, time }).map(b => ({ type: 'unlink', ...b }) as OpBody),
  fc.record({ inode: anId, mode: opt(mode), uid: opt(u32), gid: opt(u32), atime: opt(time), mtime: opt(time), time }).map(b => ({ type: 'setattr', ...b }) as OpBody),
  fc.record({ inode: anId, content: fc.option(content, { nil: null }), size: safe, first: opt(fc.constant(true as const)), time })
    .map(b => ({ type: 'write', ...b, size: b.content !== null && 'inline' in b.content ? b.content.inline.byteLength : b.size }) as OpBody),
  fc.record({ inode: anId, content, at: fc.nat(1000), size: fc.integer({ min: 1, max: 1 << 20 }), offset: opt(fc.nat(1 << 30)), first: opt(fc.constant(true as const)), time })
    .map(b => ({ type: 'append', ...b, ...('inline' in b.content ? { at: 0, size: Math.max(1, b.content.inline.byteLength), content: b.content.inline.byteLength === 0 ? { inline: new Uint8Array(1) } : b.content } : {}) }) as OpBody)
)
const hlc = fc.tuple(fc.oneof(fc.nat(10), fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }), fc.constant(Number.MAX_SAFE_INTEGER)), fc.oneof(fc.nat(10), fc.constant(0xffffffff))) as fc.Arbitrary<Hlc>
const author = fc.oneof(fc.constantFrom('12D3KooWAuthorAuthorAuthorAuthorAuthorAuthorAuthor', '12D3KooWOther', 'a'), fc.constant('é'), fc.stringMatching(/^[\x01-\x7f]{1,128}$/))
const parents = fc.uniqueArray(fc.nat(100), { maxLength: 6 }).map(ns => ns.map(n => cidOf(enc.encode(`p${n}`))))

type Outcome = { error: string } | { id: string, parentIds: string[], body: unknown, author: string, hlc: unknown, bytes: Uint8Array, sig: Uint8Array, sigAt?: number, sigEnd?: number, rawBody?: unknown }

function outcome (decode: () => DecodedOp): Outcome {
  try {
    const d = decode()
    const { op } = d
    const out: Outcome = { id: op.id, parentIds: op.parentIds, body: op.body, author: op.author, hlc: op.hlc, bytes: op.bytes, sig: d.sig }
    if (d.sigAt !== undefined) out.sigAt = d.sigAt
    if (d.sigEnd !== undefined) out.sigEnd = d.sigEnd
    if (d.rawBody !== undefined) out.rawBody = d.rawBody
    return out
  } catch (err) {
    // anything but an InvalidOpError is a crash: it goes up
    if (!(err instanceof InvalidOpError)) throw err
    return { error: err.message }
  }
}

/** decodeUnverified() of `bytes` is what the generic path gives; true when the reader read it. */
function same (bytes: Uint8Array): boolean {
  const read = readOp(bytes) !== undefined
  const fast = outcome(() => decodeUnverified(bytes))
  const generic = outcome(() => decodeUnverifiedGeneric(bytes))
  assert.deepStrictEqual(fast, generic)
  // and the body's keys in the same order (deepStrictEqual does not look at it; Object.keys and
  // JSON.stringify of a body do)
  if ('body' in fast && 'body' in generic) assert.deepStrictEqual(Object.keys(fast.body as object), Object.keys(generic.body as object))
  return read
}

/** Every ASCII string of a body (ids, names, targets): the reader reads only those. */
function allAscii (b: OpBody, author: string): boolean {
  const strings = [author, ...Object.values(b).filter((v): v is string => typeof v === 'string')]
  return strings.every(s => /^[\x00-\x7f]*$/.test(s))
}

/** A valid op block's pieces (the map dag-cbor encodes), to change one at a time. */
function opMap (bytes: Uint8Array): Record<string, unknown> {
  return dagCbor.decode(bytes) as Record<string, unknown>
}

describe('node/tree opdecode (purpose-built op reader)', () => {
  it('round trip: reads every op createOp makes of the types it reads, to the op the generic path gives and the body encoded (property)', async () => {
    let read = 0
    let all = 0
    await fc.assert(fc.asyncProperty(body, author, hlc, parents, async (b, a, h, ps) => {
      const op = await createOp(signer(a), b, h, ps)
      const d = decodeUnverified(op.bytes)
      all++
      const ascii = allAscii(b, a)
      if (ascii) read++
      // the reader reads exactly the ASCII ones (the others are read the generic way)
      assert.equal(readOp(op.bytes) !== undefined, ascii)
      assert.ok(same(op.bytes) === ascii)
      // the op encoded, read back: its body (without undefined fields), author, clock, parents
      const want: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(b)) if (v !== undefined) want[k] = v
      assert.deepStrictEqual({ ...d.op.body }, want)
      assert.equal(d.op.author, a)
      assert.deepStrictEqual(d.op.hlc, h)
      assert.deepStrictEqual(d.op.parentIds, ps.map(p => p.toString()))
      assert.equal(d.op.id, op.id)
      // the signature checks over the bytes the reader cut out
      await checkSignature(d, verify)
    }), { seed: PROP_SEED, numRuns: 1500 * RUNS })
    assert.ok(read > all / 2, `read ${read} of ${all}`)
  })

  it('op maps of any shape and values: the same op or the same refusal as the generic path (property)', async () => {
    const value = fc.oneof(anId, name, fc.string({ maxLength: 8 }), u32, safe, time, fc.constantFrom(null, true, false, -1, 0.5, 2 ** 53, 2n ** 64n - 1n),
      fc.uint8Array({ maxLength: 8 }), content, fc.constant({ inline: new Uint8Array(5000) }), fc.constantFrom(manifestOf('x'), { manifest: 'x' }, { inline: new Uint8Array(1), manifest: manifestOf('y') }),
      fc.constantFrom('file', 'dir', 'symlink', 'bogus', '', '.', '..', 'a/b', 'a\u0000b', 'x'.repeat(129), 'x'.repeat(256)), fc.constant([1, 2]))
    const keys = fc.constantFrom('type', 'parent', 'name', 'kind', 'mode', 'uid', 'gid', 'rdev', 'target', 'content', 'size', 'time', 'inode', 'entry', 'replace', 'atime', 'mtime', 'first', 'at', 'offset', 'more', 'other')
    const type = fc.constantFrom('create', 'link', 'move', 'unlink', 'setattr', 'write', 'append', 'fold', 'resolve', 'nope')
    // each key with values at and past its bounds, or any value
    const ids = ['', 'a-b', 'a b', 'x'.repeat(128), 'x'.repeat(129), 'é', 'Zz09']
    const edges: Record<string, unknown[]> = {
      parent: ids, inode: ids, entry: ids, replace: ids,
      name: ['.', '..', '...', '.a', 'a/b', '/', 'a\u0000', 'x'.repeat(255), 'x'.repeat(256), 'é', 'a.'],
      kind: ['file', 'dir', 'symlink', 'fifo', 'chr', 'blk', 'sock', 'bogus', 'File', 'socks'],
      mode: [0, 0o7777, 0o10000, 2 ** 32], uid: [0xffffffff, 2 ** 32, 2 ** 40], gid: [0xffffffff, 2 ** 32], rdev: [0xffffffff, 2 ** 32],
      size: [0, 1, 5, Number.MAX_SAFE_INTEGER, 2 ** 40], at: [0, 1, Number.MAX_SAFE_INTEGER], offset: [0, Number.MAX_SAFE_INTEGER, 2 ** 52],
      time: [0n, 5, 2n ** 32n, 2n ** 64n - 1n, -1, 'x'], atime: [0n, 2n ** 64n - 1n, -1], mtime: [1n, null],
      target: ['', 'a\u0000', 'x'.repeat(4096), 'x'.repeat(4097), '/é'], first: [true, false, 1, null],
      content: [null, { inline: new Uint8Array(4096) }, { inline: new Uint8Array(4097) }, { inline: new Uint8Array(5) }, { inline: 'x' }, { manifest: manifestOf('a'), sum: manifestOf('b') }, { sum: manifestOf('c') }, {}]
    }
    const field = keys.chain(k => fc.tuple(fc.constant(k), edges[k] !== undefined ? fc.oneof(fc.constantFrom(...edges[k]), value) : value))
    let read = 0
    // one of the body's own fields given an edge value (most often), then maybe other keys set or dropped, or the type changed
    const change = fc.record({ own: fc.nat(), edge: fc.nat(), any: fc.option(value, { nil: undefined, freq: 3 }) })
    await fc.assert(fc.asyncProperty(body, change, fc.array(field, { maxLength: 2 }), fc.array(keys, { maxLength: 1 }), fc.option(type, { nil: undefined, freq: 1 }), author, hlc, parents, async (b, c, extra, drop, t, a, h, ps) => {
      const op = await createOp(signer(a), b, h, ps)
      const m = opMap(op.bytes)
      const changed: Record<string, unknown> = { ...(m.body as Record<string, unknown>) }
      const own = Object.keys(changed).filter(k => k !== 'type')
      const k = own[c.own % own.length]
      changed[k] = c.any !== undefined || edges[k] === undefined ? c.any : edges[k][c.edge % edges[k].length]
      if (changed[k] === undefined) delete changed[k]
      if (c.own % 3 === 0) {
        Object.assign(changed, Object.fromEntries(extra))
        for (const k of drop) delete changed[k]
        if (t !== undefined) changed.type = t
      }
      if (same(dagCbor.encode({ ...m, body: changed }))) read++
    }), { seed: PROP_SEED, numRuns: 5000 * RUNS })
    assert.ok(read > 0, 'the reader read none')
  })

  it('bodies at and past each bound: the reader reads those at it, the generic path refuses those past it', async () => {
    const op = await createOp(signer('12D3KooWAuthor'), { type: 'unlink', entry: 'abc', time: 5n }, [7, 1], [])
    const m = opMap(op.bytes)
    const T = 1n
    const file = { type: 'create', parent: 'p', name: 'n', kind: 'file', mode: 0o644, uid: 0, gid: 0, time: T }
    const at: Array<Record<string, unknown>> = [
      { ...file, content: { inline: new Uint8Array(4096) }, size: 4096 }, { ...file, name: 'x'.repeat(255) }, { ...file, parent: 'x'.repeat(128) },
      { ...file, mode: 0o7777, uid: 2 ** 32 - 1, gid: 2 ** 32 - 1, rdev: 2 ** 32 - 1, size: Number.MAX_SAFE_INTEGER, time: 2n ** 64n - 1n },
      { ...file, kind: 'symlink', target: 'x'.repeat(4096) }, { ...file, name: '...' }, { ...file, name: '.a' },
      { type: 'append', inode: 'i', content: { inline: new Uint8Array(3) }, at: 0, size: 3, offset: Number.MAX_SAFE_INTEGER - 3, time: T },
      { type: 'append', inode: 'i', content: { manifest: manifestOf('a') }, at: Number.MAX_SAFE_INTEGER - 1, size: 1, time: T },
      { type: 'write', inode: 'i', content: null, size: 0, first: true, time: T }
    ]
    const past: Array<Record<string, unknown>> = [
      { ...file, content: { inline: new Uint8Array(4097) }, size: 4097 }, { ...file, name: 'x'.repeat(256) }, { ...file, parent: 'x'.repeat(129) },
      { ...file, mode: 0o10000 }, { ...file, uid: 2 ** 32 }, { ...file, gid: 2 ** 32 }, { ...file, rdev: 2 ** 32 }, { ...file, size: 2 ** 53 },
      { ...file, kind: 'symlink', target: 'x'.repeat(4097) }, { ...file, kind: 'symlink' }, { ...file, target: 'x' }, { ...file, name: '.' }, { ...file, name: '..' },
      { ...file, content: { inline: new Uint8Array(2) }, size: 3 }, { ...file, kind: 'dir', content: { inline: new Uint8Array(0) } }, { ...file, content: null },
      { type: 'append', inode: 'i', content: { inline: new Uint8Array(3) }, at: 0, size: 3, offset: Number.MAX_SAFE_INTEGER - 2, time: T },
      { type: 'append', inode: 'i', content: { manifest: manifestOf('a') }, at: Number.MAX_SAFE_INTEGER, size: 1, time: T },
      { type: 'append', inode: 'i', content: { manifest: manifestOf('a') }, at: 0, size: 0, time: T },
      { type: 'append', inode: 'i', content: { inline: new Uint8Array(3) }, at: 1, size: 3, time: T },
      { type: 'append', inode: 'i', content: null, at: 0, size: 3, time: T },
      { type: 'write', inode: 'i', content: { inline: new Uint8Array(3) }, size: 2, time: T }, { type: 'write', inode: 'i', content: null, size: 0, first: false, time: T }
    ]
    for (const body of at) {
      const bytes = dagCbor.encode({ ...m, body })
      assert.ok(same(bytes), `not read: ${JSON.stringify(Object.keys(body))}`)
      assert.ok(!('error' in outcome(() => decodeUnverified(bytes))))
    }
    for (const body of past) {
      const bytes = dagCbor.encode({ ...m, body })
      assert.equal(same(bytes), false)
      assert.ok('error' in outcome(() => decodeUnverified(bytes)), JSON.stringify(Object.keys(body)))
    }
  })

  it('bad op-level fields: the same refusal as the generic path', async () => {
    const op = await createOp(signer('12D3KooWAuthor'), { type: 'unlink', entry: 'abc', time: 5n }, [7, 1], [cidOf(enc.encode('p'))])
    const m = opMap(op.bytes)
    const p = m.parents as CID[]
    const cases: Array<Record<string, unknown>> = [
      { v: 2 }, { v: 0 }, { hlc: [1] }, { hlc: [1, 2, 3] }, { hlc: [2 ** 53, 0] }, { hlc: [1, 2 ** 32] }, { hlc: [-1, 0] }, { hlc: 'x' },
      { author: '' }, { author: 'a\u0000b' }, { author: 'x'.repeat(129) }, { author: 5 },
      { parents: [p[0], p[0]] }, { parents: Array.from({ length: 65 }, (_, i) => cidOf(enc.encode(String(i)))) }, { parents: [manifestOf('q')].map(() => CID.createV1(0x55, p[0].multihash)) }, { parents: 'x' }, { parents: [] },
      { sig: new Uint8Array(0) }, { sig: new Uint8Array(513) }, { sig: new Uint8Array(512) }, { sig: 'x' },
      { body: null }, { body: [] }, { body: {} }, { extra: 1 }
    ]
    for (const c of cases) same(dagCbor.encode({ ...m, ...c }))
    // a key missing
    for (const k of Object.keys(m)) {
      const { [k]: _, ...rest } = m
      assert.deepStrictEqual(outcome(() => decodeUnverified(dagCbor.encode(rest))), outcome(() => decodeUnverifiedGeneric(dagCbor.encode(rest))))
      assert.ok('error' in outcome(() => decodeUnverified(dagCbor.encode(rest))), `without ${k}`)
    }
  })

  it('mutated, truncated and random blocks: an op or an InvalidOpError, as the generic path says (property)', async () => {
    const blocks = await fc.sample(fc.tuple(body, author, hlc, parents), { seed: PROP_SEED, numRuns: 40 }).reduce(async (acc, [b, a, h, ps]) => [...await acc, (await createOp(signer(a), b, h, ps)).bytes], Promise.resolve([] as Uint8Array[]))
    fc.assert(fc.property(fc.nat(blocks.length - 1), fc.nat(), fc.nat(255), fc.nat(3), (i, at0, v, what) => {
      let m = blocks[i].slice()
      const at = at0 % m.length
      if (what === 0) m[at] = v
      else if (what === 1) m = m.subarray(0, at)
      else if (what === 2) m = new Uint8Array([...m.subarray(0, at), v, ...m.subarray(at)])
      else m = new Uint8Array([...m.subarray(0, at), ...m.subarray(at + 1)])
      same(m)
    }), { seed: PROP_SEED, numRuns: 20000 * RUNS })
    // every prefix of a block is refused
    for (const b of blocks.slice(0, 5)) {
      for (let n = 0; n < b.length; n++) {
        const o = outcome(() => decodeUnverified(b.subarray(0, n)))
        assert.ok('error' in o, `a prefix of ${n} bytes decoded`)
      }
    }
    // random bytes and oddities: refused with an InvalidOpError
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), bytes => { same(bytes) }), { seed: PROP_SEED, numRuns: 5000 * RUNS })
    for (const bad of [new Uint8Array(0), new Uint8Array([0xa6]), Buffer.from([0xa6, 0x61, 0x76, 0x01]), new Uint8Array(70 * 1024)]) {
      assert.throws(() => decodeUnverified(bad), InvalidOpError)
    }
    assert.throws(() => decodeUnverified('not bytes' as unknown as Uint8Array), InvalidOpError)
  })

  it('reads a block in a Buffer, or a view into a larger buffer, as the same op', async () => {
    const op = await createOp(signer('12D3KooWAuthor'), { type: 'create', parent: 'root', name: 'a', kind: 'file', mode: 0o644, uid: 1, gid: 2, content: { inline: enc.encode('hi') }, size: 2, time: 9n }, [1, 2], [])
    const big = new Uint8Array(op.bytes.length + 20)
    big.set(op.bytes, 7)
    for (const b of [Buffer.from(op.bytes), big.subarray(7, 7 + op.bytes.length)]) {
      assert.ok(same(b))
      const d = decodeUnverified(b)
      assert.equal(d.op.id, op.id)
      await checkSignature(d, verify)
    }
  })
})
