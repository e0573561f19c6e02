// A member heard of at a new address (net/host.ts learn) after, or while, a dial to it at an
// old one failed: a host restarted on a new port is first heard of at its old one (a peer's
// list made while it was down), and its new address comes a moment later. The new address was
// never dialled: a dial by peer id within the dial backoff of the failed one (DIAL_BACKOFF_MS,
// doubling to 30 s) failed at once, and a learn while the first dial was in flight was dropped;
// nothing dialled it after. One way hosts restarted one after another did not see each other
// (note-s29 item 9). Two real hosts on loopback TCP that do not join each other: only what `a`
// is told makes it dial `b`.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { join } from 'node:path'
import { init } from '../../node/cli/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { startHost, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

/** Two hosts of one network, neither joining the other. */
async function pair (t: Teardown, name: string, a: { dialBackoffMs?: number } = {}): Promise<[ClusterHost, ClusterHost]> {
  const root = await tempDir(t, 'darkfs-learn-again-')
  await init(join(root, 'a'), { newNetwork: true })
  await init(join(root, 'b'), { networkKey: join(root, 'a', 'network.key') })
  return [await startHost(t, join(root, 'a'), `${name}-a`, [], { transport: 'tcp', daemon: a }), await startHost(t, join(root, 'b'), `${name}-b`, [], { transport: 'tcp' })]
}

/** A listener that accepts and never answers (sockets: those it accepted; closed: those the dialler closed). */
async function silentListener (t: Teardown): Promise<{ port: number, sockets: Socket[], closed: () => number }> {
  const sockets: Socket[] = []
  let closed = 0
  const server: Server = createServer(s => {
    // the dialler gives up and resets the connection: expected, nothing to report
    s.on('error', () => { /* reset by the dialler */ })
    s.on('close', () => { closed++ })
    sockets.push(s)
  })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  t.add(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  })
  return { port: (server.address() as { port: number }).port, sockets, closed: () => closed }
}

/** A listener that accepts and closes at once (accepted: how many sockets it took): a dial there fails fast. */
async function rudeListener (t: Teardown): Promise<{ port: number, accepted: () => number }> {
  let accepted = 0
  const server: Server = createServer(s => {
    accepted++
    s.on('error', () => { /* the dialler's reset */ })
    s.destroy()
  })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  t.add(async () => { await new Promise<void>(resolve => { server.close(() => { resolve() }) }) })
  return { port: (server.address() as { port: number }).port, accepted: () => accepted }
}

describe('cluster: a member heard of at a new address after a dial at its old one failed is dialled there', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('the dial at the old address failed, the new one is heard within the dial backoff: the host connects (fails on the old code: refused by the backoff, never dialled again)', async () => {
    const [a, b] = await pair(t, 'learn-backoff')
    const old = await silentListener(t)
    const id = b.host.peerId
    await a.host.remember([{ id, addrs: [`/ip4/127.0.0.1/tcp/${old.port}/p2p/${id}`] }])
    await until('the dial at the old address is over (its socket closed by the dialler)', () => old.closed() > 0, 30_000)
    assert.equal(a.host.peers().length, 0)
    await a.host.remember([{ id, addrs: [b.address] }])
    await until('a and b are connected', () => a.host.peers().some(p => p.id === id) && b.host.peers().some(p => p.id === a.host.peerId), 60_000)
  })

  it('the new address is heard while the dial at the old one is in flight: dialled once that dial is over (fails on the old code: the second learn was dropped; fails with the heardAgain redial off)', async () => {
    const [a, b] = await pair(t, 'learn-inflight')
    const old = await silentListener(t)
    const id = b.host.peerId
    // not awaited: remember awaits the dial it starts, and the new address must come during it
    const first = a.host.remember([{ id, addrs: [`/ip4/127.0.0.1/tcp/${old.port}/p2p/${id}`] }])
    await until('the dial at the old address is in flight (its socket accepted, not closed)', () => old.sockets.length > 0, 30_000)
    assert.equal(old.closed(), 0, 'that dial is still in flight')
    // told the new address while that dial is in flight (its bound is DEFAULT_DIAL_TIMEOUT_MS):
    // this learn dials nothing itself, the dial in flight failing is what redials
    await a.host.remember([{ id, addrs: [b.address] }])
    await first
    await until('a and b are connected', () => a.host.peers().some(p => p.id === id) && b.host.peers().some(p => p.id === a.host.peerId), 60_000)
  })

  it('two stale addresses heard in turn (two peers\' old lists) do not end the backoff the second time round (fails on the old code: each list differing from the last cleared it, a dial storm)', async () => {
    // a backoff no stall of a loaded machine outlasts (1 s by default: the remembers below must
    // all come within it)
    const [a, b] = await pair(t, 'learn-stale', { dialBackoffMs: 600_000 })
    const x = await rudeListener(t)
    const y = await rudeListener(t)
    const id = b.host.peerId
    const atX = { id, addrs: [`/ip4/127.0.0.1/tcp/${x.port}/p2p/${id}`] }
    const atY = { id, addrs: [`/ip4/127.0.0.1/tcp/${y.port}/p2p/${id}`] }
    // each remember awaits its dial, which fails at once (the listener closes the socket)
    await a.host.remember([atX])
    assert.ok(x.accepted() > 0, 'dialled at x')
    await a.host.remember([atY])
    assert.ok(y.accepted() > 0, 'dialled at y, an address no dial failed at')
    const dials = x.accepted() + y.accepted()
    // x again, within the backoff of the dial that just failed (no time passes between): both
    // addresses are ones the failed dials went to
    await a.host.remember([atX])
    await a.host.remember([atY])
    assert.equal(x.accepted() + y.accepted(), dials, 'no dial while backing off')
    assert.equal(a.host.peers().length, 0)
  })
})
