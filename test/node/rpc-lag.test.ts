// An rpc call's silence counts the event loop's own time (node/net/rpc.ts silence(), node/abort.ts
// loopTimeDeadline): a process whose loop lags (many hosts in a few processes, bench:scale)
// does not take a peer whose answer sits unread in its socket for a silent one. As
// test/node/pnet-lag does: two real hosts over loopback TCP in this process, the loop blocked
// synchronously past the protocol's timeout while the answer is on its way (here by the
// answering handler, which the caller's process runs too). With a wall-time timer, it ran
// before the socket was read: RpcTimeoutError.
import assert from 'node:assert/strict'
import { mock } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { RpcProtocolError, RpcTimeoutError, call, defineProtocol, serve } from '../../node/net/rpc.ts'
import { LOOP_STEPS, loopTimeDeadline } from '../../swarm/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

/** Keep the event loop busy for `ms` (the process is blocked: no timer, no socket read runs). */
function blockLoop (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* blocked */ }
}

const TIMEOUT_MS = 400

class LagProtocolError extends RpcProtocolError {
  override readonly name = 'LagProtocolError'
}

const text = (v: unknown): { text: string } => {
  const t = (v as { text?: unknown } | null)?.text
  if (typeof t !== 'string') throw new LagProtocolError('expected { text }')
  return { text: t }
}

const LAG = defineProtocol<{ text: string }, { text: string }, never, never>({
  id: '/darkfs/test-rpc-lag/1.0.0',
  maxMessageBytes: 4096,
  timeoutMs: TIMEOUT_MS,
  malformed: LagProtocolError,
  request: text,
  reply: text
})

describe('rpc silence under event-loop lag', function () {
  this.timeout(60_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('a call whose answer comes while the loop is blocked past the protocol timeout gets it; a peer silent in loop time still times out', async () => {
    const key = createNetworkKey()
    const start = async (join: string[] = []): Promise<Host> => {
      const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], join })
      t.add(async () => { await h.stop() })
      return h
    }
    const b = await start()
    const a = await start([b.addresses()[0]])
    await until('a and b connected', () => a.peers().some(p => p.id === b.peerId))
    let blocked = 0
    const stop = await serve(b, LAG, {
      call: async (req, ctx) => {
        if (req.text === 'block') { blockLoop(TIMEOUT_MS + 1000); blocked++ }
        if (req.text === 'hang') await new Promise<void>(resolve => { ctx.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
        return { text: `re ${req.text}` }
      }
    })
    t.add(stop)
    assert.deepEqual(await call(a, b.peerId, LAG, { text: 'block' }), { text: 're block' })
    assert.equal(blocked, 1, 'the loop was blocked once, while the call was under way')
    // a peer that really says nothing is still given up
    await assert.rejects(call(a, b.peerId, LAG, { text: 'hang' }), RpcTimeoutError)
  })
})

describe('loopTimeDeadline', function () {
  it('touch() starts the count again: it expires `ms` after the last touch (mock timers)', () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    try {
      let expired = 0
      const d = loopTimeDeadline(1000, () => { expired++ })
      const step = 1000 / LOOP_STEPS
      // touched every few steps for much longer than its time: never expires
      for (let i = 0; i < 5 * LOOP_STEPS; i++) {
        mock.timers.tick(step)
        if (i % 4 === 3) d.touch()
      }
      assert.equal(expired, 0)
      // then silent: expires after its time, once
      for (let i = 0; i < LOOP_STEPS; i++) mock.timers.tick(step)
      assert.equal(expired, 1)
      d.touch()
      for (let i = 0; i < 3 * LOOP_STEPS; i++) mock.timers.tick(step)
      assert.equal(expired, 1, 'a touch after it expired starts nothing')
    } finally {
      mock.timers.reset()
    }
  })

  it('never expires once cleared (mock timers)', () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    try {
      let expired = 0
      const d = loopTimeDeadline(1000, () => { expired++ })
      mock.timers.tick(500)
      d.clear()
      mock.timers.tick(10_000)
      assert.equal(expired, 0)
    } finally {
      mock.timers.reset()
    }
  })
})
