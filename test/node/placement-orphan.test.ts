// A chunk written here is stored as its k data fragments alone (ChunkService.storeChunk); its
// parity lives in the staging until placed. When a parity fragment's target does not take it (a
// member away but not yet gone), the chunk can still count as placed (enough hosts hold
// something), and the staging, its only copy, is then let go: the fragment must be on this
// host's disk first, as it was when the writer stored every fragment (ChunkNetwork.placeOne's
// orphans). Fails without that: f4 on no host, the chunk no longer pending.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { ChunkNetwork } from '../../node/keeper/network.ts'
import { PendingPlacements } from '../../node/keeper/pending.ts'
import { encodeChunk } from '../../node/data/index.ts'

describe('placement of a chunk whose parity is staged only (ChunkNetwork.placeOne)', function () {
  it('a fragment no target took is stored here before the chunk counts as placed', async function () {
    const self = 'self'
    const members = [self, 'p1', 'p2', 'p3', 'p4', 'p5']
    const connected = ['p1', 'p2', 'p3', 'p5'] // p4: a member, away
    const { ref, blocks } = encodeChunk(randomBytes(1 << 20), 0, 4, 2)
    const disk = new Map<string, Uint8Array>()
    for (const b of blocks.slice(0, 4)) disk.set(b.cid.toString(), b.bytes) // storeChunk: data fragments only
    const staged = new Map(blocks.slice(4).map(b => [b.cid.toString(), b.bytes]))
    const pending = new PendingPlacements()
    const net = new ChunkNetwork({
      host: { peerId: self, peers: () => connected.map(id => ({ id })), peerIds: () => connected } as any,
      swarm: {
        has: async () => new Map(),
        pullAny: async () => new Map(),
        pullRange: async () => { throw new Error('not in this test') },
        // every target but p4 acknowledges
        push: async (deliveries: Array<{ cid: CID, to: string[] }>) => new Map(deliveries.map(d => [d.cid.toString(), d.to.filter(p => p !== 'p4')]))
      } as any,
      store: {
        has: async (cid: CID) => disk.has(cid.toString()),
        get: async (cid: CID) => { const b = disk.get(cid.toString()); if (b === undefined) throw new Error('absent'); return b },
        put: async (cid: CID, bytes: Uint8Array) => { disk.set(cid.toString(), bytes) }
      } as any,
      policy: { members: () => members, rank: () => members, copies: (m: number) => m } as any,
      pending,
      pinners: () => [],
      offline: () => false
    })
    await net.place([ref], { staged: cid => staged.get(cid.toString()) })
    const held = net.placement.get(ref.cid!.toString())!
    const nowhere = held.flatMap((s, j) => s.size === 0 ? [j] : [])
    assert.deepEqual(nowhere, [], `fragment(s) ${nowhere.join(', ')} on no host`)
    assert.equal(pending.has(ref.cid!.toString()), false, 'placed: enough hosts hold it')
    const f4 = blocks[4]
    assert.ok(disk.has(f4.cid.toString()) && Buffer.from(disk.get(f4.cid.toString())!).equals(Buffer.from(f4.bytes)), 'the fragment p4 did not take is on this host\'s disk, whole')
  })
})
