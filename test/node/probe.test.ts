// A watcher's probe of a suspect (node/net/failure.ts probeMember): one failed handshake of a
// busy host is no proof it is gone; the probe tries every address again, PROBE_TRIES times, and
// only a suspect none of whose tries answered is given up.
import assert from 'node:assert/strict'
import { PROBE_TRIES, probeMember } from '../../node/net/failure.ts'

describe('probeMember (node/net/failure.ts)', function () {
  it('a host that fails a dial and answers the next try is found; every address is tried each time', async () => {
    const dialled: string[] = []
    const waits: number[] = []
    const at = await probeMember(async addr => {
      dialled.push(addr)
      if (dialled.length < 3) throw new Error('the handshake failed')
    }, ['/a', '/b'], { wait: async ms => { waits.push(ms) }, retryMs: 10 })
    assert.equal(at, '/a')
    assert.deepEqual(dialled, ['/a', '/b', '/a'])
    assert.deepEqual(waits, [10])
  })

  it('a host that answers no try is not found, after PROBE_TRIES tries with doubling waits', async () => {
    let dials = 0
    const waits: number[] = []
    const timeouts = new Set<number>()
    const at = await probeMember(async (_addr, timeoutMs) => { dials++; timeouts.add(timeoutMs); throw new Error('refused') }, ['/a'], { wait: async ms => { waits.push(ms) }, retryMs: 10, timeoutMs: 1234 })
    assert.equal(at, undefined)
    assert.equal(dials, PROBE_TRIES)
    assert.deepEqual(waits, Array.from({ length: PROBE_TRIES - 1 }, (_, i) => 10 << i))
    assert.deepEqual([...timeouts], [1234])
  })
})
