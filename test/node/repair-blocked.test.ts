// A coding whose every copy to hand over another coding wants here (node/keeper/repair.ts
// `blocked`): the same bytes at k = 1 m = 0 and k = 1 m = 1 name the chunk's block itself, as
// equal blocks of two chunks do. The coding that no longer wants the block here proposes a
// handover; the pass keeps the block, as the other coding wants it. That coding was left unfine,
// and every incremental pass asked every holder about it again, for ever (review33b finding 3).
// Now it is fine under the view while another coding wants each such block here; once none does,
// it is surveyed again and the copy handed over.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { encodeChunk } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { Repairer } from '../../node/keeper/repair.ts'
import type { RepairComponents } from '../../node/keeper/repair.ts'
import type { Handover } from '../../node/keeper/custody.ts'

const cidOf = async (s: string): Promise<CID> => CID.create(1, 0x55, await sha256.digest(new TextEncoder().encode(s)))

/**
 * A repairer on host 'self' among self, peer and other (all live), incremental passes every
 * 20 ms; `order` ranks each chunk (a replicated chunk of m needs m + 1 copies); this host and the
 * peer hold `blocks`; `refs` is read at each pass. Each pass's have-queries to the peer are noted
 * in a set of `asked`, and each handover custody is asked to drop in `dropped`.
 */
function rig (refs: ChunkRef[], order: Map<ChunkRef, string[]>, blocks: Set<string>): { r: Repairer, ops: EventTarget, asked: Array<Set<string>>, dropped: string[], here: Set<string>, nextPass: (what: string) => Promise<Set<string>>, settled: () => Promise<void> } {
  const members = ['self', 'peer', 'other']
  const here = new Set(blocks)
  const peerHolds = new Set(blocks)
  const ops = new EventTarget()
  const membership = Object.assign(new EventTarget(), { live: () => members })
  const asked: Array<Set<string>> = []
  const dropped: string[] = []
  const comps = {
    self: 'self',
    membership,
    ops,
    policy: {
      members: () => members,
      copies: (m: number) => m + 1,
      rank: (r: ChunkRef, among: string[], n: number) => (order.get(r) ?? among).filter(h => among.includes(h)).slice(0, n)
    },
    chunks: async () => ({ refs: [...refs], unreadable: 0 }),
    store: { has: async (cid: CID) => here.has(cid.toString()), resync: async () => {} },
    swarm: {
      has: async (cids: CID[], peer: string) => {
        if (peer !== 'peer') return new Set<string>()
        for (const f of cids) asked[asked.length - 1].add(f.toString())
        return new Set(cids.map(f => f.toString()).filter(f => peerHolds.has(f)))
      },
      push: async () => new Map(),
      pullAny: async () => new Map()
    },
    // the keepers promise: the copy here is deleted
    custody: {
      drop: async (hs: Handover[]) => {
        for (const h of hs) { dropped.push(h.cid.toString()); here.delete(h.cid.toString()) }
        return hs.map(h => h.cid)
      }
    }
  } as unknown as RepairComponents
  const r = new Repairer(comps, { intervalMs: 20, incremental: true })
  let passes = 0
  r.addEventListener('start', () => { asked.push(new Set()) })
  r.addEventListener('pass', () => { passes++ })
  const nextPass = async (what: string): Promise<Set<string>> => {
    const before = passes
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => { reject(new Error(`timed out waiting for ${what}`)) }, 30_000)
      const check = (): void => { if (passes > before) { clearTimeout(deadline); resolve() } else setTimeout(check, 5) }
      check()
    })
    return asked[asked.length - 1]
  }
  const settled = async (): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => { reject(new Error('timed out waiting for the repairer to settle')) }, 30_000)
      const check = (): void => { if (r.idle()) { clearTimeout(deadline); resolve() } else setTimeout(check, 10) }
      check()
    })
  }
  return { r, ops, asked, dropped, here, nextPass, settled }
}

/** A chunk of `k` = 1 and `m` whose copies are `block` (a chunk CID of its own: equal blocks of two chunks). */
async function copiesOf (name: string, block: CID, m: number): Promise<ChunkRef> {
  return { offset: 0, size: 4, cid: await cidOf(name), k: 1, m, fragments: Array.from({ length: m + 1 }, () => block) } as unknown as ChunkRef
}

describe('Repairer: a coding whose every handover another coding blocks (node/keeper/repair.ts)', function () {
  this.timeout(60_000)

  const bytes = new Uint8Array(randomBytes(4096))
  const cases: Array<[string, () => Promise<[ChunkRef, ChunkRef]>]> = [
    ['the same bytes at k = 1 m = 0 and k = 1 m = 1', async () => [encodeChunk(bytes, 0, 1, 0).ref, encodeChunk(bytes, 0, 1, 1).ref]],
    ['equal blocks of two chunks', async () => {
      const block = await cidOf('zeros')
      return [await copiesOf('one', block, 0), await copiesOf('two', block, 1)]
    }]
  ]

  for (const [name, make] of cases) {
    it(`${name}: the blocked coding is not surveyed again by an incremental pass; its copy stays while the other wants it`, async () => {
      // Fails on the old code: every incremental pass asked the peer about the block again.
      // one: one copy, on the peer (self holds one too: a handover); two: copies on self and peer
      const [one, two] = await make()
      assert.notEqual(one.k + one.m, two.k + two.m)
      const block = one.fragments[0].toString()
      assert.equal(two.fragments[0].toString(), block)
      const order = new Map([[one, ['peer', 'self', 'other']], [two, ['self', 'peer', 'other']]])
      // new content for the incremental passes (a pass comes when the retained chunks change)
      const [c, d] = await Promise.all(['c', 'd'].map(async x => await copiesOf(`${x} ${name}`, await cidOf(`${x} ${name}`), 1)))
      const refs = [one, two]
      const { r, ops, dropped, here, nextPass, settled } = rig(refs, order, new Set([block, ...[c, d].map(x => x.fragments[0].toString())]))
      r.start()
      try {
        assert.deepEqual([...await nextPass('the first (full) pass')], [block])
        await settled()
        // new content: an incremental pass asks about it, and not about the block
        refs.push(c)
        ops.dispatchEvent(new CustomEvent('ops'))
        assert.deepEqual([...await nextPass('an incremental pass')], [c.fragments[0].toString()], 'only the new chunk is asked about')
        await settled()
        refs.push(d)
        ops.dispatchEvent(new CustomEvent('ops'))
        assert.deepEqual([...await nextPass('another incremental pass')], [d.fragments[0].toString()], 'again only the new chunk')
        assert.equal(dropped.length, 0, 'the block the k = 1 m = 1 coding wants here is kept')
        assert.ok(here.has(block))
        // the coding that wanted the block here goes: the other is surveyed again, and its copy handed over
        refs.splice(refs.indexOf(two), 1)
        ops.dispatchEvent(new CustomEvent('ops'))
        const deadline = Date.now() + 30_000
        while (!dropped.includes(block)) {
          if (Date.now() > deadline) throw new Error('timed out waiting for the handover')
          await nextPass('a pass after the other coding went')
        }
        assert.deepEqual(dropped, [block])
        await settled()
      } finally {
        await r.stop()
      }
    })
  }

  it('two codings blocked on the same block, with nothing else wanting it here: neither keeps the other fine; the copy is handed over', async () => {
    // one and one-again (equal blocks, one copy each, on the peer) both hand it over: no coding wants it here
    const shared = await cidOf('shared')
    const block = shared.toString()
    const [one, again, two] = [await copiesOf('one', shared, 0), await copiesOf('one-again', shared, 0), await copiesOf('two', shared, 1)]
    const order = new Map([[one, ['peer', 'self', 'other']], [again, ['peer', 'other', 'self']], [two, ['self', 'peer', 'other']]])
    const refs = [one, again, two]
    const c = await copiesOf('c', await cidOf('c'), 1)
    const { r, ops, dropped, nextPass, settled } = rig(refs, order, new Set([block, c.fragments[0].toString()]))
    r.start()
    try {
      await nextPass('the first (full) pass')
      await settled()
      refs.push(c)
      ops.dispatchEvent(new CustomEvent('ops'))
      assert.deepEqual([...await nextPass('an incremental pass')], [c.fragments[0].toString()], 'both blocked codings fine')
      assert.equal(dropped.length, 0)
      refs.splice(refs.indexOf(two), 1)
      ops.dispatchEvent(new CustomEvent('ops'))
      const deadline = Date.now() + 30_000
      while (!dropped.includes(block)) {
        if (Date.now() > deadline) throw new Error('timed out waiting for the handover')
        await nextPass('a pass after the coding that wanted it went')
      }
      assert.deepEqual(dropped, [block])
      await settled()
    } finally {
      await r.stop()
    }
  })
})
