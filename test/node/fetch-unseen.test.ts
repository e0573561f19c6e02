// ChunkNetwork.fetch's last resort (keeper/network.ts): when the hosts a reader sees up cannot
// give k fragments, the members the chunk's placement ranks that it does not see up (a host
// just back that has not yet met every other, a link down from here alone) are asked, which
// dials them, before the read fails. Stub swarm and host; the real placement policy.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encodeChunk } from '../../node/data/chunks.ts'
import { ChunkNetwork } from '../../node/keeper/network.ts'
import { PendingPlacements } from '../../node/keeper/pending.ts'
import { placementPolicy } from '../../node/keeper/placement.ts'
import { createSwarm } from '../../swarm/index.ts'

/** Six members' peer ids: the reader, x, and four more. */
async function sixMembers (): Promise<string[]> {
  return await Promise.all(Array.from({ length: 6 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
}

/**
 * A reader (members[0]) connected to x (members[1]) alone among six members (`connected`: to
 * those instead); `held` answers what each peer holds, `blocks` their bytes; `asked` collects the
 * peers each pull asked; `onPull` sees each pull first (its peers, its signal).
 */
function reader (members: string[], held: (peer: string) => Set<string>, blocks: Map<string, Uint8Array>, opts: { connected?: string[], onPull?: (peers: string[], signal?: AbortSignal) => void } = {}): { network: ChunkNetwork, asked: string[][] } {
  const [me, x] = members
  const connected = opts.connected ?? [x]
  const asked: string[][] = []
  const swarm = {
    has: async (cids: CID[], peer: string) => new Set(cids.map(String).filter(c => held(peer).has(c))),
    pullAny: async (cids: CID[], need: number, from: Map<string, string[]> | string[], o?: { signal?: AbortSignal }): Promise<Map<string, Uint8Array>> => {
      const peers = Array.isArray(from) ? from : [...new Set([...from.values()].flat())]
      asked.push(peers)
      opts.onPull?.(peers, o?.signal)
      const out = new Map<string, Uint8Array>()
      for (const c of cids.map(String)) if (peers.some(p => held(p).has(c)) && out.size < need) out.set(c, blocks.get(c)!)
      if (out.size < need) throw new Error(`${out.size} of ${need} fetched`)
      return out
    },
    push: async () => { throw new Error('not here') },
    pullRange: async () => { throw new Error('not here') }
  }
  const network = new ChunkNetwork({
    host: { peerId: me, peers: () => connected.map(id => ({ id, addrs: [] })) as any, peerIds: () => connected },
    swarm: swarm as any,
    store: { has: async () => false } as any,
    policy: placementPolicy({ members: () => members }, { redundancy: 2 }),
    pending: new PendingPlacements(),
    pinners: () => [],
    offline: () => false,
    up: () => new Set([me, ...connected])
  })
  return { network, asked }
}

describe('ChunkNetwork.fetch: the members not seen up are the last resort', () => {
  it('fragments held by members the reader is not connected to are fetched from them (fails on the old code: only x, which holds none, was asked)', async () => {
    const { ref, blocks } = encodeChunk(randomBytes(1 << 20), 0, 4, 2)
    const members = await sixMembers()
    const [me, x, ...unseen] = members
    const elsewhere = new Set(ref.fragments.map(String))
    const r = reader(members, peer => peer === x ? new Set() : elsewhere, new Map(blocks.map(b => [b.cid.toString(), b.bytes])))
    const got = await r.network.fetch(ref.fragments, 4, { chunk: ref })
    assert.equal(got.size, 4)
    for (const [key, bytes] of got) assert.deepEqual(bytes, blocks.find(b => b.cid.toString() === key)!.bytes)
    const last = r.asked[r.asked.length - 1]
    assert.ok(unseen.every(p => last.includes(p)), 'the last resort asks the members not seen up')
    assert.equal(last[0], x, 'the hosts seen up first')
    assert.ok(!last.includes(me))
  })
  it('nobody holding them: the read fails with the error of the hosts seen up', async () => {
    const { ref } = encodeChunk(randomBytes(1 << 20), 0, 4, 2)
    const r = reader(await sixMembers(), () => new Set(), new Map())
    await assert.rejects(r.network.fetch(ref.fragments, 4, { chunk: ref }), /0 of 4 fetched/)
  })
  it('fragments on hosts seen up and on hosts not seen up make a read together (fails on the old code: the last resort asked the unseen alone, 2 of 4)', async () => {
    const { ref, blocks } = encodeChunk(randomBytes(1 << 20), 0, 4, 2)
    const members = await sixMembers()
    const [, x, u1, u2] = members
    const f = ref.fragments.map(String)
    const holds = new Map([[x, new Set([f[0], f[1]])], [u1, new Set([f[2]])], [u2, new Set([f[3]])]])
    const r = reader(members, peer => holds.get(peer) ?? new Set(), new Map(blocks.map(b => [b.cid.toString(), b.bytes])))
    const got = await r.network.fetch(ref.fragments, 4, { chunk: ref })
    assert.deepEqual([...got.keys()].sort(), f.slice(0, 4).sort())
  })

  it('an abort during the last resort rejects with the abort reason, not the hosts seen up\'s error (fails on the old code)', async () => {
    const { ref } = encodeChunk(randomBytes(1 << 20), 0, 4, 2)
    const members = await sixMembers()
    const [, x] = members
    const ac = new AbortController()
    const reason = new Error('the caller gave up')
    const r = reader(members, () => new Set(), new Map(), {
      // the pull that asks beyond x is the last resort: the caller aborts during it
      onPull: (peers) => { if (peers.some(p => p !== x)) ac.abort(reason) }
    })
    await assert.rejects(r.network.fetch(ref.fragments, 4, { chunk: ref, signal: ac.signal }), (err: unknown) => err === reason)
  })

  it('with no peer connected (a host just back), the members ranked for the chunk are asked before the read fails as offline (fails on the old code: offline at once)', async () => {
    const { ref, blocks } = encodeChunk(randomBytes(1 << 20), 0, 4, 2)
    const members = await sixMembers()
    const [me] = members
    const all = new Set(ref.fragments.map(String))
    const r = reader(members, peer => peer === me ? new Set() : all, new Map(blocks.map(b => [b.cid.toString(), b.bytes])), { connected: [] })
    const got = await r.network.fetch(ref.fragments, 4, { chunk: ref })
    assert.equal(got.size, 4)
    assert.ok(r.asked.length > 0 && r.asked.every(peers => !peers.includes(me) && peers.length > 0))
  })

  it('with no peer connected and nobody answering, the read fails as offline', async () => {
    const { ref } = encodeChunk(randomBytes(1 << 20), 0, 4, 2)
    const r = reader(await sixMembers(), () => new Set(), new Map(), { connected: [] })
    await assert.rejects(r.network.fetch(ref.fragments, 4, { chunk: ref }), /offline/)
  })
})

describe('ChunkNetwork.fetch with no peer connected: the real swarm, its dials stubbed', () => {
  /**
   * A reader with no connection among six members, over a real swarm whose dials (the host's
   * newStream) wait until the test fails them: `dials` holds each dial's peer and its failure.
   */
  async function offlineReader (): Promise<{ network: ChunkNetwork, dials: Array<{ peer: string, fail: (err: Error) => void }>, bounds: AbortSignal[], stop: () => Promise<void> }> {
    const members = await sixMembers()
    const [me] = members
    const dials: Array<{ peer: string, fail: (err: Error) => void }> = []
    const swarm = createSwarm({})({
      peerId: me,
      handle: async () => {},
      unhandle: async () => {},
      dialProtocol: async (peer: string) => await new Promise<never>((_resolve, reject) => { dials.push({ peer, fail: reject }) }),
      hangUp: async () => {},
      blocks: { has: async () => false, get: async () => { throw new Error('none here') } },
      sink: { put: async () => {} }
    } as any)
    await swarm.start()
    // the bound each pull of the fetch was given (OFFLINE_FETCH_MS's, for the offline path)
    const bounds: AbortSignal[] = []
    const pullAny = swarm.pullAny.bind(swarm)
    swarm.pullAny = async (cids, need, from, o) => {
      if (o?.signal !== undefined) bounds.push(o.signal)
      return await pullAny(cids, need, from, o)
    }
    const network = new ChunkNetwork({
      host: { peerId: me, peers: () => [], peerIds: () => [] },
      swarm,
      store: { has: async () => false } as any,
      policy: placementPolicy({ members: () => members }, { redundancy: 2 }),
      pending: new PendingPlacements(),
      pinners: () => [],
      offline: () => false,
      up: () => new Set([me])
    })
    return { network, dials, bounds, stop: async () => { await swarm.stop() } }
  }

  it('the read fails as offline as soon as every dial it started has failed, not at the end of its bound (OFFLINE_FETCH_MS)', async () => {
    const { ref } = encodeChunk(randomBytes(1 << 20), 0, 4, 2)
    const r = await offlineReader()
    try {
      const read = r.network.fetch(ref.fragments, 4, { chunk: ref })
      const outcome = read.then(() => 'read', (err: Error) => err.message)
      // each dial started fails (a host cut off: refused); the ones the pull starts next, too
      let failed = 0
      let settled: string | undefined
      void outcome.then(o => { settled = o })
      while (settled === undefined) {
        await new Promise(resolve => setImmediate(resolve))
        for (const d of r.dials.slice(failed)) d.fail(new Error(`dial to ${d.peer} refused`))
        failed = r.dials.length
      }
      assert.match(settled, /offline/)
      assert.ok(failed > 0, 'the ranked members were dialled')
      assert.ok(r.bounds.length > 0)
      assert.ok(r.bounds.every(s => !s.aborted), 'the read ended by itself, before its bound')
    } finally {
      await r.stop()
    }
  })
})
