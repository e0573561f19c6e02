// Received blocks checked off the event loop (SwarmComponents.verify, issue 15 item 6): a host
// gives the swarm a verifier that hashes elsewhere (the daemon: the erasure addon's threads), and
// every block of OFF_LOOP_VERIFY_MIN_BYTES or more that arrives, pulled or pushed, is taken or
// refused on its verdict alone; smaller blocks are hashed on the event loop as before.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import type { BlockVerifier } from '../../swarm/index.ts'
import { Net, block, randomBytes } from './net.ts'

/** swarm/verify.ts OFF_LOOP_VERIFY_MIN_BYTES (written out: the test runs against code without it too). */
const OFF_LOOP_VERIFY_MIN_BYTES = 65536

/** A verifier that hashes as matches() does (later, on a timer), counting the blocks it was given; `refuse` says no to those CIDs whatever their bytes. */
function verifier (refuse = new Set<string>()): { verify: BlockVerifier, seen: string[] } {
  const seen: string[] = []
  const verify: BlockVerifier = async (cid: CID, bytes: Uint8Array) => {
    seen.push(cid.toString())
    await new Promise(resolve => setImmediate(resolve))
    if (refuse.has(cid.toString())) return false
    return Buffer.from(createHash('sha256').update(bytes).digest()).equals(cid.multihash.digest)
  }
  return { verify, seen }
}

describe('swarm: received blocks checked off the event loop', function () {
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  it('a pulled and a pushed large block go to the verifier; a small one does not', async () => {
    const v = verifier()
    const a = await net.node({}, undefined, { verify: v.verify })
    const b = await net.node()
    await net.mesh()
    const large = randomBytes(OFF_LOOP_VERIFY_MIN_BYTES + 1000, 1)
    const small = randomBytes(1000, 2)
    const [lc, sc] = [await block(large), await block(small)]
    b.store.map.set(lc.toString(), large)
    b.store.map.set(sc.toString(), small)
    assert.deepEqual(await a.swarm.pull(lc, [b.id]), large)
    assert.deepEqual(await a.swarm.pull(sc, [b.id]), small)
    assert.deepEqual(v.seen, [lc.toString()], 'the large pulled block was checked by the verifier, the small one on the loop')
    const pushed = randomBytes(OFF_LOOP_VERIFY_MIN_BYTES * 3, 3)
    const pc = await block(pushed)
    const acks = await b.swarm.push([{ cid: pc, bytes: pushed, to: [a.id] }])
    assert.deepEqual(acks.get(pc.toString()), [a.id])
    assert.deepEqual(a.store.map.get(pc.toString()), pushed)
    assert.deepEqual(v.seen, [lc.toString(), pc.toString()], 'the pushed block was checked by the verifier')
  })

  it('a block the verifier refuses is not taken: no copy of it is pulled (its holders dropped), a push is not stored and its sender is dropped', async () => {
    const bytes = randomBytes(OFF_LOOP_VERIFY_MIN_BYTES * 2, 4)
    const cid = await block(bytes)
    // the verifier's verdict is what stands: it refuses this CID's (right) bytes from anyone
    const v = verifier(new Set([cid.toString()]))
    const a = await net.node({}, undefined, { verify: v.verify })
    const b = await net.node()
    const c = await net.node()
    await net.mesh()
    b.store.map.set(cid.toString(), bytes)
    c.store.map.set(cid.toString(), bytes)
    await assert.rejects(a.swarm.pull(cid, [b.id, c.id]), 'no holder gave a block the verifier took')
    assert.equal(v.seen.length, 2, 'each holder\'s copy was checked by the verifier')
    assert.equal(a.libp2p.getConnections(b.libp2p.peerId).length, 0, 'a holder whose block was refused is disconnected')

    const d = await net.node()
    await net.mesh()
    const acks = await d.swarm.push([{ cid, bytes, to: [a.id] }])
    assert.deepEqual(acks.get(cid.toString()), [], 'no ACK for a refused push')
    assert.equal(a.store.puts, 0, 'nothing stored')
    assert.equal(v.seen.length, 3)
  })
})
