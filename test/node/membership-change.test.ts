// Membership's 'change' event (node/net/failure.ts): the members changing in a way no 'gone',
// 'joined', 'back' or 'lapsed' tells (a peer draining or staying, a full disk) is said, once per
// change, so repair (keeper/repair.ts) surveys every chunk again even when the change is undone
// before its next pass. A fake host: connections are events; notices are handed to take().
import assert from 'node:assert/strict'
import { Membership } from '../../node/net/failure.ts'
import type { MembershipHost, MembershipNotice } from '../../node/net/failure.ts'

class FakeHost extends EventTarget {
  readonly peerId = 'self'
  connected = new Set<string>(['a', 'b'])
  peers (): Array<{ id: string }> { return [...this.connected].map(id => ({ id })) }
  async handle (): Promise<void> {}
  async unhandle (): Promise<void> {}
  async newStream (): Promise<never> { throw new Error('no streams here') }
}

describe("Membership 'change' events (node/net/failure.ts)", function () {
  let m: Membership | undefined
  afterEach(async () => { await m?.stop() })

  it('a drain, a stay and a full disk each say change once; room again is a join', async () => {
    m = new Membership(new FakeHost() as unknown as MembershipHost, { failureTimeoutMs: 60_000 })
    await m.start()
    const changes: string[] = []
    const joins: string[] = []
    m.addEventListener('change', e => { changes.push((e as CustomEvent<string>).detail) })
    m.addEventListener('joined', e => { joins.push((e as CustomEvent<string>).detail) })
    // notices as the membership protocol hands them over
    const take = (n: MembershipNotice, peer: string): void => { (m as unknown as { take: (n: MembershipNotice, peer: string) => void }).take(n, peer) }
    take({ t: 'drain' }, 'a')
    assert.deepEqual(changes, ['a'])
    assert.ok(!m.members().includes('a'))
    take({ t: 'drain' }, 'a')
    assert.deepEqual(changes, ['a'], 'a drain said again changes nothing')
    take({ t: 'stay' }, 'a')
    assert.deepEqual(changes, ['a', 'a'])
    assert.ok(m.members().includes('a'))
    take({ t: 'stay' }, 'a')
    assert.deepEqual(changes, ['a', 'a'], 'a stay from a peer not draining changes nothing')
    m.setFull('b', true)
    m.setFull('b', true)
    assert.deepEqual(changes, ['a', 'a', 'b'])
    m.setFull('b', false)
    assert.deepEqual(joins, ['b'])
    assert.deepEqual(changes, ['a', 'a', 'b'])
  })
})
