// A large BLOCK arriving in pieces is written into memory its asker gave (pullAny `land`; a chunk
// read gives its data fragments' places in the chunk, read42) instead of a frame buffer of its
// own. It is verified against its CID there like any other block: a wrong one is refused and
// its sender dropped, and the pull gets the block elsewhere.
import assert from 'node:assert/strict'
import type { Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { LAND_MIN_BYTES, PROTOCOL } from '../../swarm/index.ts'
import type { Landing } from '../../swarm/index.ts'
import { BLOCK, FrameDecoder, WANT, decode, encode } from '../../swarm/protocol.ts'
import { Net, block, randomBytes } from './net.ts'

/** The frame of `msg` sent in pieces of `piece` bytes: a large block never arrives in one piece. */
function sendInPieces (stream: Stream, frame: Uint8Array, piece: number): void {
  for (let at = 0; at < frame.byteLength; at += piece) stream.send(frame.slice(at, at + piece))
}

describe('swarm: blocks landing in the asker\'s memory', function () {
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  /** A `land` giving fresh memory per frame, each recorded. */
  function places (): { land: (cid: CID, bytes: number) => Landing, given: Uint8Array[], landed: Uint8Array[] } {
    const given: Uint8Array[] = []
    const landed: Uint8Array[] = []
    return {
      given,
      landed,
      land: (_cid, bytes) => {
        const at = new Uint8Array(bytes)
        given.push(at)
        return { bytes: at, landed: () => { landed.push(at) } }
      }
    }
  }

  it('a block arriving in pieces is written into the memory given, and that memory is what the pull returns', async () => {
    const a = await net.node()
    const holder = await net.bare()
    const bytes = randomBytes(3 * LAND_MIN_BYTES, 5)
    const cid = await block(bytes)
    await holder.handle(PROTOCOL, (stream: Stream) => {
      const frames = new FrameDecoder()
      stream.addEventListener('message', (evt) => {
        for (const body of frames.push(evt.data)) {
          const msg = decode(body)
          if (msg.type === WANT) sendInPieces(stream, encode({ type: BLOCK, cid, bytes }).subarray(), 20_000)
        }
      })
    })
    await a.libp2p.dial(holder.getMultiaddrs()[0])
    const p = places()
    const got = await a.swarm.pullAny([cid], 1, [holder.peerId.toString()], { land: p.land })
    assert.equal(p.given.length, 1, 'the frame was given a place')
    assert.equal(got.get(cid.toString()), p.given[0], 'the block returned is the place it landed in (no copy)')
    assert.deepEqual(p.landed, p.given)
    assert.deepEqual(got.get(cid.toString()), bytes)
  })

  it('a wrong block landing in the memory given is refused there, its sender dropped, and the block taken from another', async () => {
    const a = await net.node()
    const good = await net.node()
    const liar = await net.bare()
    const bytes = randomBytes(3 * LAND_MIN_BYTES, 6)
    const cid = await block(bytes)
    const wrong = Uint8Array.from(bytes)
    wrong[123_456] ^= 1
    // the liar answers a WANT with the block one bit off, in pieces (so it lands)
    await liar.handle(PROTOCOL, (stream: Stream) => {
      const frames = new FrameDecoder()
      stream.addEventListener('message', (evt) => {
        for (const body of frames.push(evt.data)) {
          const msg = decode(body)
          if (msg.type === WANT) sendInPieces(stream, encode({ type: BLOCK, cid, bytes: wrong }).subarray(), 20_000)
        }
      })
    })
    await net.mesh()
    await a.libp2p.dial(liar.getMultiaddrs()[0])
    good.store.map.set(cid.toString(), bytes)
    const p = places()
    // the liar comes first, so it is asked first
    const got = await a.swarm.pullAny([cid], 1, [liar.peerId.toString(), good.id], { land: p.land })
    assert.ok(p.landed.some(at => at[123_456] === wrong[123_456]), 'the liar\'s block landed whole')
    assert.deepEqual(got.get(cid.toString()), bytes, 'the pull returned the right block, not the one that landed wrong')
    assert.equal(a.libp2p.getConnections(liar.peerId).length, 0, 'the liar was disconnected')
  })
})
