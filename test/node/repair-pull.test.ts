// Copies left to the targets that pull them (node/keeper/repair.ts keeperDeliveries, pullsHere;
// feature pull/1): a keeper that does not hold the fragment a joiner takes over leaves it to the
// joiner, which fetches it from the displaced host itself; a target that does not pull it after
// PULL_GRACE_PASSES of the keeper's passes gets it pushed. A target that pulls fetches it in its
// own pass (no keeper involved) and stores it.
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { PULL_GRACE_PASSES, Repairer } from '../../node/keeper/repair.ts'
import type { RepairComponents } from '../../node/keeper/repair.ts'
import type { ChunkRef } from '../../node/data/index.ts'

const cidOf = async (s: string): Promise<CID> => CID.create(1, 0x55, await sha256.digest(new TextEncoder().encode(s)))

/** Ranked for the chunk: 'k' first (its keeper), 'd' seventh (displaced by the joiner 'j'). */
const ORDER = ['k', 'h1', 'h2', 'h3', 'h4', 'j', 'd']

/**
 * A 4+2 chunk over 7 hosts: fragment i on ORDER[i] for i < 5, fragment 5 on 'd' (the joiner 'j'
 * ranks before it now). A repairer for `self`; `pulls` given to it as RepairComponents.pulls.
 */
async function rig (self: string, pulls: ((peer: string) => boolean) | undefined): Promise<{ r: Repairer, ref: ChunkRef, holds: Map<string, Set<string>>, pushed: Array<{ cid: string, to: string[] }>, pulled: string[], stored: string[] }> {
  const fragments = await Promise.all([0, 1, 2, 3, 4, 5].map(async i => await cidOf(`fragment ${i}`)))
  const ref = { offset: 0, size: 4096, cid: await cidOf('chunk'), k: 4, m: 2, fragments } as unknown as ChunkRef
  const holds = new Map(ORDER.map(h => [h, new Set<string>()]))
  for (let i = 0; i < 5; i++) holds.get(ORDER[i])!.add(fragments[i].toString())
  holds.get('d')!.add(fragments[5].toString())
  const pushed: Array<{ cid: string, to: string[] }> = []
  const pulled: string[] = []
  const stored: string[] = []
  const bytes = new Uint8Array(1024)
  const comps = {
    self,
    membership: Object.assign(new EventTarget(), { live: () => ORDER }),
    policy: { members: () => ORDER, copies: () => 3, rank: (_r: unknown, members: string[], n: number) => ORDER.filter(h => members.includes(h)).slice(0, n) },
    chunks: async () => ({ refs: [ref], unreadable: 0 }),
    store: {
      has: async (cid: CID) => holds.get(self)!.has(cid.toString()),
      get: async (cid: CID) => { if (!holds.get(self)!.has(cid.toString())) throw new Error('not here'); return bytes },
      putMany: async (blocks: Array<{ cid: CID }>) => { for (const b of blocks) { holds.get(self)!.add(b.cid.toString()); stored.push(b.cid.toString()) } },
      put: async () => {},
      delete: async () => {}
    },
    swarm: {
      has: async (cids: CID[], peer: string) => new Set(cids.map(c => c.toString()).filter(c => holds.get(peer)?.has(c) === true)),
      pullAny: async (cids: CID[], need: number, from: Map<string, string[]>) => {
        const out = new Map<string, Uint8Array>()
        for (const c of cids) {
          if (out.size >= need) break
          if ((from.get(c.toString()) ?? []).some(h => holds.get(h)?.has(c.toString()) === true)) { out.set(c.toString(), bytes); pulled.push(c.toString()) }
        }
        return out
      },
      push: async (deliveries: Array<{ cid: CID, to: string[] }>) => {
        for (const d of deliveries) { pushed.push({ cid: d.cid.toString(), to: d.to }); for (const h of d.to) holds.get(h)!.add(d.cid.toString()) }
        return new Map(deliveries.map(d => [d.cid.toString(), d.to]))
      }
    },
    custody: { drop: async () => [] },
    ...(pulls === undefined ? {} : { pulls })
  } as unknown as RepairComponents
  return { r: new Repairer(comps, { intervalMs: 0 }), ref, holds, pushed, pulled, stored }
}

describe('Repairer: copies left to the targets that pull them (node/keeper/repair.ts)', function () {
  it(`the keeper leaves the joiner's copy to it for ${PULL_GRACE_PASSES} passes, then pushes it (the joiner never pulled)`, async () => {
    const { r, ref, holds, pushed, pulled } = await rig('k', () => true)
    const f5 = ref.fragments[5].toString()
    for (let i = 0; i < PULL_GRACE_PASSES; i++) {
      await r.pass()
      assert.deepEqual(pushed, [], `pass ${i + 1}: left to the joiner`)
      assert.deepEqual(pulled, [], `pass ${i + 1}: the keeper fetched nothing`)
    }
    const p = await r.pass()
    assert.deepEqual(pulled, [f5], 'fetched from the displaced host')
    assert.deepEqual(pushed, [{ cid: f5, to: ['j'] }], 'then pushed to the joiner')
    assert.equal(p.fragmentsRepaired, 1)
    assert.ok(holds.get('j')!.has(f5))
  })

  it('a keeper not told that peers pull (an older version, or heal) fetches and pushes at once', async () => {
    const { r, ref, pushed, pulled } = await rig('k', undefined)
    await r.pass()
    assert.deepEqual(pulled, [ref.fragments[5].toString()])
    assert.deepEqual(pushed, [{ cid: ref.fragments[5].toString(), to: ['j'] }])
    const told = await rig('k', () => true)
    await told.r.pass({ all: true })
    assert.deepEqual(told.pushed, [{ cid: ref.fragments[5].toString(), to: ['j'] }], 'a pass for every chunk (heal) delivers itself')
  })

  it("the joiner's own pass fetches its copy from the displaced host and stores it; nothing is pushed", async () => {
    const { r, ref, holds, pushed, pulled, stored } = await rig('j', () => true)
    const p = await r.pass()
    const f5 = ref.fragments[5].toString()
    assert.deepEqual(pulled, [f5])
    assert.deepEqual(stored, [f5])
    assert.deepEqual(pushed, [])
    assert.equal(p.fragmentsRepaired, 1)
    assert.equal(p.bytesFetched, 1024)
    assert.ok(holds.get('j')!.has(f5))
    // settled: the next pass moves nothing
    const again = await r.pass()
    assert.equal(again.fragmentsRepaired, 0)
    assert.deepEqual(pulled, [f5])
  })
})
