// Who is connected, up and a member (node/net/failure.ts live(), upSet(), members()) is known
// from the connected peers' ids (Host.peerIds) when the host gives them: peers() looks up every
// peer's addresses, and a 4 KiB range read asks who is up and who the members are (issue 15).
// A host without peerIds is asked peers(), as before. A fake host: no connections.
import assert from 'node:assert/strict'
import { Membership } from '../../node/net/failure.ts'
import type { MembershipHost } from '../../node/net/failure.ts'

class FakeHost extends EventTarget {
  readonly peerId = 'self'
  connected = ['a', 'b']
  peersAsked = 0
  peers (): Array<{ id: string, addresses: string[] }> {
    this.peersAsked++
    return this.connected.map(id => ({ id, addresses: [`/ip4/127.0.0.1/tcp/1/p2p/${id}`] }))
  }

  async handle (): Promise<void> {}
  async unhandle (): Promise<void> {}
  async newStream (): Promise<never> { throw new Error('no streams here') }
}

class IdsHost extends FakeHost {
  peerIds (): string[] { return [...this.connected] }
}

describe('Membership from the connected ids (Host.peerIds)', function () {
  let m: Membership | undefined
  afterEach(async () => { await m?.stop() })

  it('live, up and members are the connected hosts with no peer\'s addresses looked up', async () => {
    const host = new IdsHost()
    m = new Membership(host as unknown as MembershipHost, { failureTimeoutMs: 60_000 })
    await m.start()
    host.peersAsked = 0
    assert.deepEqual(m.live().sort(), ['a', 'b', 'self'])
    assert.deepEqual([...m.upSet()].sort(), ['a', 'b', 'self'])
    assert.deepEqual(m.members().sort(), ['a', 'b', 'self'])
    assert.equal(host.peersAsked, 0, 'peers() asked')
    host.connected = ['b']
    assert.deepEqual(m.live().sort(), ['b', 'self'])
  })

  it('a host without peerIds is asked peers()', async () => {
    const host = new FakeHost()
    m = new Membership(host as unknown as MembershipHost, { failureTimeoutMs: 60_000 })
    await m.start()
    host.peersAsked = 0
    assert.deepEqual(m.live().sort(), ['a', 'b', 'self'])
    assert.ok(host.peersAsked > 0)
  })
})
