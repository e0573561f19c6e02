// Tree ops and the repair timer (node/keeper/repair.ts): an op calls for a pass only when it
// changed the retained chunks. A mkdir, a rename, a chmod leave them as they were; each used to
// make every host of the network survey every chunk at its next timer round. A one-host network
// A two-host network whose chunk list the test sets (both hosts hold every chunk); passes and
// the timer's rounds without one ('skip') are counted.
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Repairer } from '../../node/keeper/repair.ts'
import type { RepairComponents } from '../../node/keeper/repair.ts'
import type { ChunkRef } from '../../node/data/index.ts'

const cidOf = async (s: string): Promise<CID> => CID.create(1, 0x55, await sha256.digest(new TextEncoder().encode(s)))

/** A chunk of two copies (k = 1, m = 1): redundant when both hosts hold it. */
async function chunk (name: string): Promise<ChunkRef> {
  const cid = await cidOf(name)
  return { offset: 0, size: 10, cid, k: 1, m: 1, fragments: [cid, cid] } as unknown as ChunkRef
}

/** Wait (on events, with a generous deadline) until `check` holds. */
async function until (r: Repairer, what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise<void>(resolve => {
      const done = (): void => { r.removeEventListener('pass', done); r.removeEventListener('skip', done); resolve() }
      r.addEventListener('pass', done)
      r.addEventListener('skip', done)
    })
  }
}

describe('Repairer and tree ops (node/keeper/repair.ts)', function () {
  this.timeout(60_000)

  it('an op that leaves the retained chunks as they were brings no pass; one that changes them does', async () => {
    let refs = [await chunk('a')]
    const held = new Set(refs.map(r => r.cid!.toString()))
    const ops = new EventTarget()
    const c = {
      self: 'self',
      membership: { live: () => ['self', 'peer'], addEventListener: () => {}, removeEventListener: () => {} },
      ops,
      policy: { members: () => ['self', 'peer'], copies: () => 2, rank: (_r: unknown, members: string[], n: number) => members.slice(0, n) },
      chunks: async () => ({ refs, unreadable: 0 }),
      store: { has: async (cid: CID) => held.has(cid.toString()) },
      // the peer holds what this host holds
      swarm: { has: async (cids: CID[]) => new Set(cids.map(f => f.toString()).filter(f => held.has(f))) },
      custody: { drop: async () => [] }
    } as unknown as RepairComponents
    const r = new Repairer(c, { intervalMs: 20 })
    let passes = 0
    let skips = 0
    r.addEventListener('pass', () => { passes++ })
    r.addEventListener('skip', () => { skips++ })
    r.start()
    try {
      await until(r, 'the first pass, settled', () => passes >= 1 && r.idle())
      // an op that changes no chunk (a mkdir): the timer reads the chunks and runs no pass
      const before = passes
      ops.dispatchEvent(new CustomEvent('ops'))
      assert.ok(!r.idle(), 'an op is something that may have changed')
      const s0 = skips
      await until(r, 'timer rounds after the op', () => skips >= s0 + 3)
      assert.equal(passes, before, 'no pass for an op that changed no chunk')
      assert.ok(r.idle())
      // a new file: its chunk is retained now, and the next round runs a pass
      const b = await chunk('b')
      held.add(b.cid!.toString())
      refs = [...refs, b]
      ops.dispatchEvent(new CustomEvent('ops'))
      await until(r, 'a pass for the new chunk', () => passes > before)
      await until(r, 'settled again', () => r.idle())
    } finally {
      await r.stop()
    }
  })
})
