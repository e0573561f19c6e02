// Incremental background passes (node/keeper/repair.ts): a pass the timer runs for new content
// alone asks the peers only about chunks no earlier pass found redundant under the same view;
// members changing, a chunk short of its copies, or a caller's pass() make every chunk asked
// about again, and only those passes have the store check its index against the disk (resync).
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

describe('Repairer: incremental background passes (node/keeper/repair.ts)', function () {
  this.timeout(60_000)

  it('a pass for new content asks only about new or unsettled chunks; a membership change, or pass(), asks about all', async () => {
    const [a, b, c] = [await chunk('a'), await chunk('b'), await chunk('c')]
    let refs = [a]
    const here = new Set([a, b, c].map(r => r.cid!.toString()))
    // what the peer holds: c only once the test says so
    const peerHolds = new Set([a, b].map(r => r.cid!.toString()))
    const ops = new EventTarget()
    const membership = Object.assign(new EventTarget(), { live: () => ['self', 'peer'] })
    // the chunks each pass asked the peer about, one set per pass
    const asked: Array<Set<string>> = []
    let resyncs = 0
    const comps = {
      self: 'self',
      membership,
      ops,
      policy: { members: () => ['self', 'peer'], copies: () => 2, rank: (_r: unknown, members: string[], n: number) => members.slice(0, n) },
      chunks: async () => ({ refs, unreadable: 0 }),
      store: {
        has: async (cid: CID) => here.has(cid.toString()),
        resync: async () => { resyncs++ }
      },
      swarm: {
        has: async (cids: CID[]) => {
          for (const f of cids) asked[asked.length - 1].add(f.toString())
          return new Set(cids.map(f => f.toString()).filter(f => peerHolds.has(f)))
        },
        // a repair of c (the peer lacks it) delivers nothing: c stays short
        push: async () => new Map(),
        pullAny: async () => new Map()
      },
      custody: { drop: async () => [] }
    } as unknown as RepairComponents
    const r = new Repairer(comps, { intervalMs: 20, incremental: true })
    let passes = 0
    r.addEventListener('start', () => { asked.push(new Set()) })
    r.addEventListener('pass', () => { passes++ })
    const nextPass = async (what: string): Promise<Set<string>> => {
      const before = passes
      const deadline = Date.now() + 30_000
      while (passes <= before) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
        await new Promise<void>(resolve => { r.addEventListener('pass', () => { resolve() }, { once: true }) })
      }
      return asked[asked.length - 1]
    }
    const key = (x: ChunkRef): string => x.cid!.toString()
    r.start()
    try {
      // the first pass asks about everything (and checks the store)
      assert.deepEqual([...await nextPass('the first pass')], [key(a)])
      assert.equal(resyncs, 1)
      // new content: only the new chunk is asked about, and the store is not checked
      refs = [a, b]
      ops.dispatchEvent(new CustomEvent('op'))
      assert.deepEqual([...await nextPass('a pass for b')], [key(b)])
      assert.equal(resyncs, 1, 'no store check for an incremental pass')
      // a chunk the peer lacks stays unsettled: asked about on every pass until it is redundant
      refs = [a, b, c]
      ops.dispatchEvent(new CustomEvent('op'))
      assert.deepEqual([...await nextPass('a pass for c')], [key(c)])
      assert.deepEqual([...await nextPass('c again')], [key(c)], 'c is short: asked about again (and only c)')
      peerHolds.add(key(c))
      assert.deepEqual([...await nextPass('c, now held')], [key(c)])
      await new Promise<void>((resolve, reject) => {
        const deadline = setTimeout(() => { reject(new Error('timed out waiting for the repairer to settle')) }, 30_000)
        const check = (): void => { if (r.idle()) { clearTimeout(deadline); resolve() } else setTimeout(check, 10) }
        check()
      })
      // a member joins: every chunk is asked about again, and the store checked
      const resyncsBefore = resyncs
      membership.dispatchEvent(new CustomEvent('joined'))
      assert.deepEqual(new Set(await nextPass('a pass after a join')), new Set([a, b, c].map(key)))
      assert.equal(resyncs, resyncsBefore + 1)
      // a caller's pass (heal, a corrupt block): every chunk too
      const p = r.pass({ all: true })
      await p
      assert.deepEqual(new Set(asked[asked.length - 1]), new Set([a, b, c].map(key)))
      assert.equal((await p).checked, 3)
    } finally {
      await r.stop()
    }
  })
})
