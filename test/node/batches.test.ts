// PeerBatches (node/keeper/batches.ts): placement notices and custody's drops go to a peer in
// batches, one send per peer at a time.
import assert from 'node:assert/strict'
import { PeerBatches } from '../../node/keeper/batches.ts'
import { until } from '../../harness/cluster.ts'

/** A PeerBatches whose sends are recorded and held until let go (each send's own release). */
function recorded (init: { lingerMs: number, max?: number, fail?: (items: number[]) => boolean }): { batches: PeerBatches<number>, sent: Array<{ peer: string, items: number[] }>, release: () => void, open: () => number } {
  const sent: Array<{ peer: string, items: number[] }> = []
  const held: Array<() => void> = []
  const batches = new PeerBatches<number>({
    lingerMs: init.lingerMs,
    max: init.max,
    send: async (peer, items) => {
      sent.push({ peer, items })
      await new Promise<void>(resolve => { held.push(resolve) })
      if (init.fail?.(items) === true) throw new Error('the peer said no')
    }
  })
  return { batches, sent, release: () => { for (const r of held.splice(0)) r() }, open: () => held.length }
}

describe('PeerBatches: per-peer batches of items', function () {
  it('items for one peer that come within the linger go in one send; each peer has its own', async () => {
    const { batches, sent, release } = recorded({ lingerMs: 20 })
    for (const i of [1, 2, 3]) batches.add('a', i)
    batches.add('b', 10)
    await until('both peers sent to', () => sent.length === 2)
    release()
    assert.deepEqual(sent.sort((x, y) => x.peer.localeCompare(y.peer)), [{ peer: 'a', items: [1, 2, 3] }, { peer: 'b', items: [10] }])
  })

  it('one send per peer at a time: what comes meanwhile goes in the next, at most `max` a send', async () => {
    const { batches, sent, release, open } = recorded({ lingerMs: 0, max: 2 })
    batches.add('a', 1)
    await until('the first send is under way', () => open() === 1)
    for (const i of [2, 3, 4]) batches.add('a', i)
    assert.equal(sent.length, 1, 'no second send while the first is under way')
    release()
    await until('the next send', () => open() === 1 && sent.length === 2)
    release()
    await until('the last send', () => open() === 1 && sent.length === 3)
    release()
    assert.deepEqual(sent.map(s => s.items), [[1], [2, 3], [4]])
  })

  it('a full batch (`max` items): the rest go once it is sent, with no second linger', async function () {
    this.timeout(20_000)
    const linger = 4000
    const { batches, sent, release, open } = recorded({ lingerMs: linger, max: 2 })
    for (const i of [1, 2, 3, 4, 5]) batches.add('a', i)
    await until('the first send, after its linger', () => open() === 1, 3 * linger)
    release()
    // within half a linger: the next batch did not linger again
    await until('the next send, at once', () => open() === 1 && sent.length === 2, linger / 2)
    release()
    await until('the last send, at once', () => open() === 1 && sent.length === 3, linger / 2)
    release()
    assert.deepEqual(sent.map(s => s.items), [[1, 2], [3, 4], [5]])
  })

  it('a send that fails does not stop the next', async () => {
    const { batches, sent, release, open } = recorded({ lingerMs: 0, fail: items => items.includes(1) })
    batches.add('a', 1)
    await until('the first send is under way', () => open() === 1)
    batches.add('a', 2)
    release()
    await until('the next send', () => open() === 1 && sent.length === 2)
    release()
    assert.deepEqual(sent.map(s => s.items), [[1], [2]])
  })

  it('stop() drops what waits (never sent), add() takes nothing until start(), then sends again', async () => {
    const { batches, sent, release, open } = recorded({ lingerMs: 0 })
    batches.add('a', 1)
    await until('the first send is under way', () => open() === 1)
    batches.add('a', 2)
    batches.stop()
    assert.equal(batches.add('a', 3), false)
    release()
    // the send under way is over, and the flush after it has run (its next turn would have sent 2)
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(sent.map(s => s.items), [[1]])
    batches.start()
    assert.equal(batches.add('a', 4), true)
    await until('sent after start()', () => open() === 1)
    release()
    assert.deepEqual(sent.map(s => s.items), [[1], [4]])
  })

  it('stop() and start() at once: the items that waited before the stop are never sent, those after are', async () => {
    const { batches, sent, release, open } = recorded({ lingerMs: 30 })
    batches.add('a', 1)
    batches.stop()
    batches.start()
    batches.add('a', 2)
    await until('a send', () => open() === 1)
    release()
    // the linger of the first batch was 30 ms as well: had it been sent, it would be by now
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(sent.map(s => s.items), [[2]])
  })
})
