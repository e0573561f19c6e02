// Issue 16: the notices that matter (a host is full, has room again, is gone) reach every live
// host even when the link is cut while one is in flight: the sender tries again while the peer
// stays connected, and tells a peer that connects the current state.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createHost, createNetworkKey, Membership, SpaceNotices, SPACE_PROTOCOL, MEMBERSHIP_PROTOCOL } from '../../node/net/index.ts'
import type { Host } from '../../node/net/index.ts'
import type { SpaceState } from '../../node/data/index.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { Teardown } from '../../harness/tmp.ts'

async function until (what: string, check: () => boolean): Promise<void> {
  for (let i = 0; ; i++) {
    if (check()) return
    if (i > 1200) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** A host whose outgoing streams of the `cut` protocols fail while `cut.on` (the connection stays). */
function cutting (h: Host, cut: { on: boolean, protocols: string[] }): Host {
  return Object.assign(Object.create(h) as Host, {
    peerId: h.peerId,
    newStream: async (peer: string, protocol: string, o?: { signal?: AbortSignal }) => {
      if (cut.on && cut.protocols.includes(protocol)) throw new Error('cut')
      return await h.newStream(peer, protocol, o)
    }
  })
}

class FakeSpace extends EventTarget {
  full = false
  isFull (): boolean { return this.full }
  set (full: boolean): void { this.full = full; this.dispatchEvent(new Event('change')) }
  /** Disk figures told with the notices: a 1 GiB disk, empty or full. */
  snapshot (): SpaceState {
    const capacity = 1 << 30
    return { full: this.full, free: this.full ? 0 : capacity, capacity, reserve: 0, margin: 0 }
  }
}

describe('notices under cut links (cluster)', function () {
  this.timeout(120_000)
  let t: Teardown
  beforeEach(() => { t = new Teardown() })
  afterEach(async () => { await t.run() })

  const memAddr = (): string => `/memory/notices-${randomBytes(6).toString('hex')}`
  async function node (key: Uint8Array, join: string[], cut: { on: boolean, protocols: string[] }): Promise<{ host: Host, membership: Membership, space: FakeSpace, notices: SpaceNotices }> {
    const raw = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: [memAddr()], join })
    t.add(async () => { await raw.stop() })
    const host = cutting(raw, cut)
    const membership = new Membership(host)
    await membership.start()
    t.add(async () => { await membership.stop() })
    const space = new FakeSpace()
    const notices = new SpaceNotices({ host, space, membership })
    await notices.start()
    t.add(async () => { await notices.stop() })
    return { host, membership, space, notices }
  }

  it('a FULL and then a ROOM notice sent while the link is cut reach the peer once it answers, with no reconnect', async () => {
    const key = createNetworkKey()
    const cut = { on: false, protocols: [SPACE_PROTOCOL] }
    const a = await node(key, [], cut)
    const b = await node(key, [a.host.addresses()[0]], { on: false, protocols: [] })
    await until('connected', () => a.host.peers().length === 1 && b.host.peers().length === 1)
    cut.on = true
    a.space.set(true)
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.deepEqual(b.membership.fullHosts(), [])
    cut.on = false
    await until('b hears a is full', () => b.membership.fullHosts().includes(a.host.peerId))
    cut.on = true
    a.space.set(false)
    await new Promise(resolve => setTimeout(resolve, 300))
    cut.on = false
    await until('b hears a has room', () => !b.membership.fullHosts().includes(a.host.peerId))
  })

  it('a GONE notice (darkfs heal) sent while the link to one peer is cut reaches it once it answers', async () => {
    const key = createNetworkKey()
    const cut = { on: false, protocols: [MEMBERSHIP_PROTOCOL] }
    const a = await node(key, [], cut)
    const b = await node(key, [a.host.addresses()[0]], { on: false, protocols: [] })
    const c = await node(key, [a.host.addresses()[0]], { on: false, protocols: [] })
    await until('all connected', () => [a, b, c].every(x => x.host.peers().length === 2))
    const gone = c.host.peerId
    await c.notices.stop()
    await c.membership.stop()
    await c.host.stop()
    await until('c is a suspect on a and b', () => a.membership.suspects().includes(gone) && b.membership.suspects().includes(gone))
    cut.on = true
    assert.deepEqual(await a.membership.expire(), [gone])
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.ok(b.membership.suspects().includes(gone))
    cut.on = false
    await until('b declared c gone', () => !b.membership.suspects().includes(gone) && !b.membership.members().includes(gone))
  })
})
