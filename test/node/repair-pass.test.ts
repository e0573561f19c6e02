import assert from 'node:assert/strict'
import { Repairer } from '../../node/keeper/repair.ts'
import type { RepairComponents } from '../../node/keeper/repair.ts'

// A pass() call made while a pass runs waits for it and runs one pass of its own, and nothing
// more: the repairer used to also schedule a pass after one that a call had waited for, and
// each such scheduled call, waiting in turn, scheduled the next (passes without end, each a
// survey of every chunk). A host with nothing to keep makes a pass cheap and observable.

/** A one-host network with no chunks; `chunks` answers once `release` is called for each call held. */
function components (held: Array<() => void>): RepairComponents {
  const unused = (): never => { throw new Error('not used by a pass over no chunks') }
  return {
    self: 'self',
    membership: { live: () => ['self'], addEventListener: () => {}, removeEventListener: () => {} },
    policy: { members: () => ['self'], copies: () => 1, rank: unused },
    chunks: async () => { await new Promise<void>(resolve => { held.push(resolve) }); return { refs: [], unreadable: 0 } },
    store: { has: unused, get: unused, put: unused, putMany: unused, delete: unused },
    swarm: { has: unused, pullAny: unused, push: unused },
    custody: { drop: unused }
  }
}

describe('Repairer.pass: calls during a pass (node/keeper/repair.ts)', function () {
  it('a call made during a pass runs one pass after it, and no pass follows on its own', async () => {
    const held: Array<() => void> = []
    const r = new Repairer(components(held), { intervalMs: 0 })
    let starts = 0
    r.addEventListener('start', () => { starts++ })
    r.start()
    try {
      const first = r.pass()
      const second = r.pass()
      assert.equal(starts, 1, 'the second call waits for the first pass')
      held.shift()!()
      // the second pass starts once the first ended, and is held like it
      while (held.length === 0) await new Promise(resolve => setImmediate(resolve))
      assert.equal(starts, 2)
      held.shift()!()
      await Promise.all([first, second])
      // a pass scheduled by the old code was a 0 ms timer, armed before this one: it would
      // have started (its 'start' is dispatched at once) before this timer fires
      await new Promise(resolve => setTimeout(resolve, 10))
      assert.equal(starts, 2, 'no pass started on its own after the calls were answered')
      assert.equal(held.length, 0)
    } finally {
      while (held.length > 0) held.shift()!()
      await r.stop()
    }
  })
})
