import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { MAX_BLOCK_BYTES, MAX_CIDS_PER_MESSAGE, MAX_MESSAGE_BYTES, MessageTooLargeError, ProtocolError } from '../../swarm/index.ts'
import { ACK, BLOCK, CANCEL, DONE, DONT_HAVE, FrameDecoder, HAVE, PUSH, PUSH_FROM, RANGE, RANGE_WANT, WANT, decode, encode } from '../../swarm/protocol.ts'
import type { Message } from '../../swarm/protocol.ts'
import { Uint8ArrayList } from 'uint8arraylist'

async function cidOf (bytes: Uint8Array): Promise<CID> { return CID.createV1(raw.code, await sha256.digest(bytes)) }

/** The body of an encoded frame, its length prefix checked and removed. */
function body (msg: Message): Uint8Array {
  const out = new FrameDecoder().push(encode(msg))
  assert.equal(out.length, 1)
  return out[0]
}

describe('swarm protocol', function () {
  it('decode(encode(msg)) round-trips every message type', async () => {
    const a = await cidOf(Uint8Array.from([1]))
    const b = await cidOf(Uint8Array.from([2]))
    const bytes = Uint8Array.from([9, 8, 7])
    const msgs: Message[] = [
      { type: WANT, cids: [a, b], haveOnly: false },
      { type: WANT, cids: [a], haveOnly: true },
      { type: WANT, cids: [b], haveOnly: false, background: true },
      { type: HAVE, cids: [a] },
      { type: DONT_HAVE, cids: [a, b] },
      { type: CANCEL, cids: [] },
      { type: BLOCK, cid: a, bytes },
      { type: PUSH, cid: a, hops: [{ peer: 'p1', via: -1 }, { peer: 'p2', via: 0 }, { peer: 'p3', via: -1 }], bytes },
      // (sent as PUSH_FROM)
      { type: PUSH, cid: a, hops: [{ peer: 'p1', via: -1 }], bytes, origin: 'w1' },
      { type: ACK, cid: b, holder: 'p2' },
      { type: DONE, cid: b }
    ]
    assert.equal(body(msgs.find(m => 'origin' in m)!)[0], PUSH_FROM, 'a push with an origin goes as PUSH_FROM')
    assert.equal(body(msgs.find(m => m.type === PUSH && !('origin' in m))!)[0], PUSH, 'one without, as PUSH (what older hosts read)')
    for (const msg of msgs) {
      const back = decode(body(msg))
      assert.deepEqual(JSON.parse(JSON.stringify(back)), JSON.parse(JSON.stringify(msg)))
      if ('bytes' in back) assert.deepEqual(back.bytes, bytes)
    }
  })

  it('a frame is its small fields in one piece with the prefix, and each large byte string a piece of its own (not copied); any size of head', async () => {
    const a = await cidOf(Uint8Array.from([1]))
    const leaves = new Uint8Array(16 * 1024).fill(7)
    const proof = [1, 2, 3, 4].map(i => new Uint8Array(32).fill(i))
    const frame = encode({ type: RANGE, cid: a, first: 3, end: 4, bytes: leaves, proof })
    // RANGE: type, CID, range, status, proof count and hashes; then the leaves (to the frame's end)
    const head = Uint8Array.from([RANGE, a.bytes.byteLength, ...a.bytes, 3, 4, 0, 4, ...proof.flatMap(h => [...h])])
    const len = head.byteLength + leaves.byteLength
    assert.deepEqual([...frame].length, 2, 'two pieces')
    assert.deepEqual(frame.subarray(), Uint8Array.from([(len & 0x7f) | 0x80, ((len >> 7) & 0x7f) | 0x80, len >> 14, ...head, ...leaves]))
    assert.equal([...frame][1], leaves, 'the leaves are sent from where they are')
    assert.equal([...encode({ type: RANGE_WANT, cid: a, first: 3, end: 4 })].length, 1, 'a RANGE_WANT: one piece')
    // a head that outgrows its first buffer (every CID a message may carry), a block small enough
    // to be copied in and one sent as it is, each around the prefix's sizes (1 to 3 bytes)
    const many = await Promise.all(Array.from({ length: MAX_CIDS_PER_MESSAGE }, async (_, i) => await cidOf(Uint8Array.from([i & 255, i >> 8]))))
    const msgs: Message[] = [
      { type: WANT, cids: many, haveOnly: false },
      { type: DONT_HAVE, cids: many.slice(0, 3) },
      ...[1, 100, 128, 129, 200, 16_000, 20_000, 300_000].map(n => ({ type: BLOCK, cid: a, bytes: new Uint8Array(n).fill(n & 255) }) as const)
    ]
    for (const msg of msgs) {
      const back = decode(body(msg))
      assert.deepEqual(JSON.parse(JSON.stringify(back)), JSON.parse(JSON.stringify(msg)))
      if (msg.type === BLOCK && back.type === BLOCK) assert.deepEqual(back.bytes, msg.bytes)
    }
  })

  it('FrameDecoder.push(chunks) reassembles frames split at any byte and joined in one chunk', async () => {
    const a = await cidOf(Uint8Array.from([1]))
    const frames = [encode({ type: WANT, cids: [a], haveOnly: false }), encode({ type: BLOCK, cid: a, bytes: new Uint8Array(300).fill(3) })]
    const all = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0))
    let at = 0
    for (const f of frames) { all.set(f.subarray(), at); at += f.byteLength }
    // pieces as they come: bytes, a list of one part, a list of several (split again in two)
    const as: Array<(b: Uint8Array) => Uint8Array | Uint8ArrayList> = [b => b, b => new Uint8ArrayList(b), b => new Uint8ArrayList(b.subarray(0, b.byteLength >> 1), b.subarray(b.byteLength >> 1))]
    for (const piece of as) {
      // 1: a piece that ends right after a length prefix; the first frame's length: pieces that end on a frame's end
      for (const split of [1, 2, 3, 7, 150, all.byteLength, frames[0].byteLength, frames[0].byteLength + 1]) {
        const d = new FrameDecoder()
        const got: Uint8Array[] = []
        for (let i = 0; i < all.byteLength; i += split) got.push(...d.push(piece(all.subarray(i, i + split))))
        assert.equal(got.length, 2, `pieces of ${split}`)
        assert.equal(decode(got[0]).type, WANT)
        assert.equal(decode(got[1]).type, BLOCK)
        assert.equal(d.buffered, 0)
      }
      // a piece that is a frame's length prefix alone, then one with its body and the next frame
      const d = new FrameDecoder()
      assert.deepEqual(d.push(piece(all.subarray(0, 1))), [])
      const got = d.push(piece(all.subarray(1)))
      assert.deepEqual(got.map(b => decode(b).type), [WANT, BLOCK])
    }
  })

  it('FrameDecoder.push returns plain Uint8Arrays, not Buffers, whether a frame lies in one received piece or spans several', async () => {
    const a = await cidOf(Uint8Array.from([1]))
    const bytes = new Uint8Array(300).fill(3)
    const frame = encode({ type: BLOCK, cid: a, bytes }).subarray()
    // a socket's reads (and a sealed buffer handed over whole) are node Buffers
    const whole = new FrameDecoder().push(Buffer.from(frame))
    const d = new FrameDecoder()
    const split = [...d.push(Buffer.from(frame.subarray(0, 100))), ...d.push(Buffer.from(frame.subarray(100)))]
    for (const got of [whole, split]) {
      assert.equal(got.length, 1)
      assert.equal(Object.getPrototypeOf(got[0]), Uint8Array.prototype)
      const back = decode(got[0])
      assert.equal(back.type, BLOCK)
      // strict deep equality tells a Buffer from a Uint8Array of the same bytes
      if (back.type === BLOCK) assert.deepStrictEqual(back.bytes, bytes)
    }
  })

  it('FrameDecoder.push rejects a frame length over MAX_MESSAGE_BYTES before buffering it', () => {
    const d = new FrameDecoder()
    const n = MAX_MESSAGE_BYTES + 1
    assert.throws(() => d.push(Uint8Array.from([(n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14])), MessageTooLargeError)
  })

  it('decode rejects malformed bodies with ProtocolError', async () => {
    const a = await cidOf(Uint8Array.from([1]))
    const good = body({ type: WANT, cids: [a], haveOnly: false })
    const identityCid = CID.createV1(raw.code, identity.digest(Uint8Array.from([1, 2, 3])))
    const cases: Array<[string, Uint8Array]> = [
      ['empty', new Uint8Array(0)],
      ['unknown type', Uint8Array.from([42])],
      ['unknown WANT flag', Uint8Array.from([WANT, 4, 0])],
      ['trailing bytes', Uint8Array.from([...good, 0])],
      ['truncated', good.subarray(0, good.byteLength - 1)],
      ['too many CIDs', Uint8Array.from([HAVE, ...varint(MAX_CIDS_PER_MESSAGE + 1)])],
      ['garbage CID', Uint8Array.from([DONE, 4, 1, 2, 3, 4])],
      ['non-sha256 CID', Uint8Array.from([DONE, identityCid.bytes.byteLength, ...identityCid.bytes])],
      ['hop forwarded by a later hop', Uint8Array.from([PUSH, a.bytes.byteLength, ...a.bytes, 1, 1, 0x41, 2])],
      ['empty peer id', Uint8Array.from([ACK, a.bytes.byteLength, ...a.bytes, 0])],
      ['peer id not utf-8', Uint8Array.from([ACK, a.bytes.byteLength, ...a.bytes, 1, 0xff])]
    ]
    for (const [what, bytes] of cases) {
      assert.throws(() => decode(bytes), (err: Error) => err instanceof ProtocolError || err.name === 'ProtocolError', what)
    }
  })

  it('decode rejects a BLOCK over MAX_BLOCK_BYTES and encode refuses to make one', async () => {
    const a = await cidOf(Uint8Array.from([1]))
    assert.throws(() => encode({ type: BLOCK, cid: a, bytes: new Uint8Array(MAX_BLOCK_BYTES + 1) }), RangeError)
    const big = new Uint8Array(2 + a.bytes.byteLength + MAX_BLOCK_BYTES + 1)
    big.set([BLOCK, a.bytes.byteLength, ...a.bytes])
    assert.throws(() => decode(big), ProtocolError)
    assert.equal(decode(body({ type: BLOCK, cid: a, bytes: new Uint8Array(MAX_BLOCK_BYTES) })).type, BLOCK)
  })
})

function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7 }
  out.push(n)
  return out
}
