// Membership's away list (node/net/failure.ts, lazy repair): a peer declared gone by the failure
// timeout is away for the rest of the repair delay, then 'lapsed'; one that connects again, or
// that the operator declares gone (heal), is not away. A fake host: connections are events.
import assert from 'node:assert/strict'
import { Membership } from '../../node/net/failure.ts'
import type { MembershipHost } from '../../node/net/failure.ts'

class FakeHost extends EventTarget {
  readonly peerId = 'self'
  connected = new Set<string>()
  peers (): Array<{ id: string }> { return [...this.connected].map(id => ({ id })) }
  async handle (): Promise<void> {}
  async unhandle (): Promise<void> {}
  async newStream (): Promise<never> { throw new Error('no streams here') }
  connect (id: string): void { this.connected.add(id); this.dispatchEvent(new CustomEvent('peer:connect', { detail: id })) }
  disconnect (id: string): void { this.connected.delete(id); this.dispatchEvent(new CustomEvent('peer:disconnect', { detail: id })) }
}

/** The next `type` event for `peer`, or an error after a generous deadline. */
async function next (m: Membership, type: string, peer: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => { reject(new Error(`no ${type} event for ${peer}`)) }, 30_000)
    const on = (e: Event): void => {
      if ((e as CustomEvent<string>).detail !== peer) return
      clearTimeout(deadline)
      m.removeEventListener(type, on)
      resolve()
    }
    m.addEventListener(type, on)
  })
}

describe('Membership away list (node/net/failure.ts)', function () {
  this.timeout(60_000)
  let m: Membership | undefined
  afterEach(async () => { await m?.stop() })

  async function start (init: ConstructorParameters<typeof Membership>[1]): Promise<{ host: FakeHost, m: Membership }> {
    const host = new FakeHost()
    host.connected.add('a').add('b')
    m = new Membership(host as unknown as MembershipHost, init)
    await m.start()
    return { host, m }
  }

  it('a peer declared gone by timeout is away until the repair delay ends, then lapsed', async () => {
    const { host, m } = await start({ failureTimeoutMs: 20, repairDelayMs: 300 })
    const gone = next(m, 'gone', 'a')
    host.disconnect('a')
    await gone
    assert.deepEqual(m.away(), ['a'])
    assert.ok(!m.members().includes('a'))
    // away since it disconnected, a failure timeout before it was declared gone (keeper/lazy.ts stopWaiting())
    const t = m.awayFor().get('a')
    assert.ok(t !== undefined && t >= 20, `away for ${String(t)} ms`)
    assert.deepEqual([...m.awayFor().keys()], m.away())
    await next(m, 'lapsed', 'a')
    assert.deepEqual(m.away(), [])
    assert.equal(m.awayFor().size, 0)
  })

  it('one that connects again within the delay is not away; heal clears the list', async () => {
    const { host, m } = await start({ failureTimeoutMs: 20, repairDelayMs: 600_000 })
    const gone = Promise.all([next(m, 'gone', 'a'), next(m, 'gone', 'b')])
    host.disconnect('a')
    host.disconnect('b')
    await gone
    assert.deepEqual(m.away().sort(), ['a', 'b'])
    host.connect('a')
    assert.deepEqual(m.away(), ['b'])
    await m.expire()
    assert.deepEqual(m.away(), [])
  })

  it('with only a failure timeout set, nobody is away (the repair delay is that timeout)', async () => {
    const { host, m } = await start({ failureTimeoutMs: 20 })
    const gone = next(m, 'gone', 'a')
    host.disconnect('a')
    await gone
    assert.deepEqual(m.away(), [])
  })
})
