// A busy process's event-loop lag is no silence of the peer's (swarm/abort.ts loopTimeSignal):
// the pnet nonce exchange's deadline counts the loop's own time, so a loop blocked for longer
// than PNET_HANDSHAKE_TIMEOUT_MS while the peer's nonce is on its way no longer fails the
// handshake. bench:scale at 50 hosts in one process lagged ~1 s median, 6 s worst, and ~1,900
// nonce exchanges per 30 s ran out of their 2 s; the failed dials made repair surveys retry.
//
// Two real hosts over loopback TCP, through a relay in this process that blocks the event loop
// (synchronously, longer than the deadline) as the dialer's nonce passes, and holds the
// listener's nonce until then: each side's nonce exchange is under way when the loop stops. The
// old deadline (AbortSignal.timeout) had expired when the loop ran again, and its timer ran
// before the sockets were read: "outbound deadline" at the dialer.
import assert from 'node:assert/strict'
import { createServer, connect } from 'node:net'
import { mock } from 'node:test'
import type { Server, Socket } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, PNET_HANDSHAKE_TIMEOUT_MS } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { LOOP_STEPS, loopTimeSignal } from '../../swarm/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

/** Keep the event loop busy for `ms` (the process is blocked: no timer, no socket read runs). */
function blockLoop (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* blocked */ }
}

/** A TCP relay to `port` that blocks the loop for `blockMs` on its first bytes from the dialer, holding the listener's bytes until then. */
async function blockingRelay (port: number, blockMs: number): Promise<{ close: () => Promise<void>, port: number, blocked: () => number }> {
  let blocked = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((client: Socket) => {
    const upstream = connect(port, '127.0.0.1')
    sockets.add(client).add(upstream)
    const held: Buffer[] = []
    let open = false
    upstream.on('data', (d: Buffer) => { if (open) client.write(d); else held.push(d) })
    client.on('data', (d: Buffer) => {
      upstream.write(d)
      if (!open) {
        blockLoop(blockMs)
        blocked++
        open = true
        for (const b of held.splice(0)) client.write(b)
      }
    })
    const end = (): void => { client.destroy(); upstream.destroy() }
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy()
    await new Promise(resolve => server.close(resolve))
  }
  return { close, port: (server.address() as { port: number }).port, blocked: () => blocked }
}

describe('pnet handshake under event-loop lag', function () {
  this.timeout(60_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  const key = createNetworkKey()
  const start = async (): Promise<Host> => {
    const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
    t.add(async () => { await h.stop() })
    return h
  }

  it('a dial whose nonce exchange is under way while the loop is blocked past the deadline completes', async () => {
    const a = await start()
    const b = await start()
    const port = Number(/\/tcp\/(\d+)/.exec(b.addresses()[0])![1])
    const relay = await blockingRelay(port, PNET_HANDSHAKE_TIMEOUT_MS + 1000)
    t.add(relay.close)
    await a.dial(`/ip4/127.0.0.1/tcp/${relay.port}/p2p/${b.peerId}`)
    assert.equal(relay.blocked(), 1, 'the loop was blocked once, during the handshake')
    await until('the connection open at both ends', () => a.peers().some(p => p.id === b.peerId) && b.peers().some(p => p.id === a.peerId))
    assert.deepEqual(a.inbound().pnetFailed, {}, 'no nonce exchange failed at the dialer')
    assert.deepEqual(b.inbound().pnetFailed, {}, 'no nonce exchange failed at the listener')
  })
})

describe('loopTimeSignal', function () {
  this.timeout(30_000)
  const aborted = async (signal: AbortSignal): Promise<void> => {
    if (!signal.aborted) await new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
  }
  /** Let the timers due by now run (a timer set now runs after every one already due). */
  const timersRan = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, 0)) }

  it('does not count time the loop spent blocked, and aborts with a TimeoutError once its own time is up', async () => {
    const { signal } = loopTimeSignal(200)
    blockLoop(600)
    await timersRan()
    assert.equal(signal.aborted, false, 'blocked time counted')
    await aborted(signal)
    assert.equal((signal.reason as DOMException).name, 'TimeoutError')
  })

  it('aborts once its wall-time cap has passed, however long the loop was blocked', async () => {
    const { signal } = loopTimeSignal(200, 300)
    blockLoop(400)
    await timersRan()
    assert.equal(signal.aborted, true)
  })

  it('never aborts once cleared (mock timers stand in for the clock)', () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    try {
      const { signal, clear } = loopTimeSignal(1000)
      mock.timers.tick(500)
      clear()
      mock.timers.tick(10_000)
      assert.equal(signal.aborted, false)
    } finally {
      mock.timers.reset()
    }
  })

  it('with the loop never late, aborts after its time (mock timers)', () => {
    mock.timers.enable({ apis: ['setTimeout'] })
    try {
      const { signal } = loopTimeSignal(1000)
      // in steps: a mock tick runs the timers due at its start, not those they set
      for (let i = 1; i < LOOP_STEPS; i++) mock.timers.tick(1000 / LOOP_STEPS)
      assert.equal(signal.aborted, false)
      mock.timers.tick(1000 / LOOP_STEPS)
      assert.equal(signal.aborted, true)
    } finally {
      mock.timers.reset()
    }
  })
})
