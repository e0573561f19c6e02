// A push hop's deadline counts the event loop's own time (swarm/abort.ts loopTimeSignal): a
// writer whose process lags (many hosts in a few processes, bench:scale) does not take a holder
// whose ACK sits unread in its socket for a silent hop and route around it. As test/node/pnet-lag
// does: real nodes over loopback TCP in this process, and the loop blocked synchronously past
// the deadline while the ACK is on its way (here by the holder's store, which the writer's
// process runs too). With a wall-time deadline, its timer ran before the socket was read.
import assert from 'node:assert/strict'
import { Net, block, randomBytes } from './net.ts'

/** Keep the event loop busy for `ms` (the process is blocked: no timer, no socket read runs). */
function blockLoop (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* blocked */ }
}

describe('swarm.push under event-loop lag', function () {
  this.timeout(30_000)
  let net: Net
  beforeEach(() => { net = new Net('tcp') })
  afterEach(async () => { await net.stop() })

  it('a hop whose holder stores and ACKs while the loop is blocked past the hop deadline is acknowledged, not routed around', async () => {
    const HOP_MS = 400
    const w = await net.node({ pushHopTimeoutMs: HOP_MS })
    const a = await net.node()
    await net.mesh()
    const put = a.store.put
    let blocked = 0
    a.store.put = async (cid, bytes) => { blockLoop(HOP_MS + 800); blocked++; await put(cid, bytes) }
    const bytes = randomBytes(64 * 1024, 3)
    const cid = await block(bytes)
    const acks = await w.swarm.push([{ cid, bytes, to: [a.id] }])
    assert.equal(blocked, 1, 'the loop was blocked once, while the hop was under way')
    assert.deepEqual([...(acks.get(cid.toString()) ?? [])], [a.id])
  })
})
