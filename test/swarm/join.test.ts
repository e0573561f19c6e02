// A large frame that arrives in several pieces (a pushed fragment: most span several socket reads)
// is joined into memory the host gives (SwarmComponents.frameBytes, FrameDecoder's `join`: the
// daemon's has its pages faulted in by one call), not into a fresh buffer of Uint8ArrayList's,
// whose pages fault one by one under the copy (seqwrite44: ~4% of six hosts' CPU). The bytes
// are the same, checked against their CID as any pushed block's.
import assert from 'node:assert/strict'
import { LAND_MIN_BYTES } from '../../swarm/index.ts'
import { FrameDecoder, PUSH, decode, encode } from '../../swarm/protocol.ts'
import { Net, block, randomBytes } from './net.ts'

/** A `join` giving fresh memory per frame, each recorded. */
function joiner (): { join: (length: number) => Uint8Array, given: Uint8Array[] } {
  const given: Uint8Array[] = []
  return { given, join: (length) => { const at = new Uint8Array(length); given.push(at); return at } }
}

/** `frame` in pieces of `piece` bytes. */
function pieces (frame: Uint8Array, piece: number): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let at = 0; at < frame.byteLength; at += piece) out.push(frame.slice(at, at + piece))
  return out
}

describe('swarm: large frames joined into the host\'s memory', function () {
  it('FrameDecoder: a frame of LAND_MIN_BYTES or more in pieces is joined into the memory join gave, byte for byte', async () => {
    const bytes = randomBytes(3 * LAND_MIN_BYTES, 3)
    const cid = await block(bytes)
    const frame = encode({ type: PUSH, cid, hops: [], bytes }).subarray()
    const j = joiner()
    const d = new FrameDecoder({ join: j.join })
    const bodies = pieces(frame, 20_000).flatMap(p => d.push(p))
    assert.equal(bodies.length, 1)
    assert.equal(j.given.length, 1, 'the frame was given memory')
    assert.equal(bodies[0].buffer, j.given[0].buffer, 'the frame body is the memory given (no other copy)')
    assert.equal(Object.getPrototypeOf(bodies[0]), Uint8Array.prototype)
    const msg = decode(bodies[0])
    assert.equal(msg.type, PUSH)
    assert.deepEqual(msg.type === PUSH ? msg.bytes : undefined, bytes)
  })

  it('FrameDecoder: a frame in one piece stays a view of it, and a small frame in pieces is not given memory', async () => {
    const big = randomBytes(2 * LAND_MIN_BYTES, 4)
    const small = randomBytes(1000, 5)
    const j = joiner()
    const d = new FrameDecoder({ join: j.join })
    const whole = encode({ type: PUSH, cid: await block(big), hops: [], bytes: big }).subarray()
    const [body] = d.push(whole)
    assert.equal(body.buffer, whole.buffer, 'a frame in one piece is a view of it')
    const bodies = pieces(encode({ type: PUSH, cid: await block(small), hops: [], bytes: small }).subarray(), 100).flatMap(p => d.push(p))
    assert.equal(bodies.length, 1)
    assert.equal(j.given.length, 0, 'neither frame was given memory')
  })

  it('a block pushed to a host with frameBytes arrives in that memory, is stored and acknowledged', async () => {
    const net = new Net()
    try {
      const w = await net.node()
      const j = joiner()
      const a = await net.node({}, undefined, undefined, {}, { frameBytes: j.join })
      await w.libp2p.dial(a.libp2p.getMultiaddrs()[0])
      const bytes = randomBytes(4 * LAND_MIN_BYTES, 6)
      const cid = await block(bytes)
      const acks = await w.swarm.push([{ cid, bytes, to: [a.id] }])
      assert.deepEqual([...(acks.get(cid.toString()) ?? [])], [a.id])
      assert.ok(j.given.length >= 1, 'the push frame (in several pieces) was joined into the host\'s memory')
      assert.deepEqual(await a.store.get(cid), bytes)
    } finally {
      await net.stop()
    }
  })
})
