// ChunkNetwork.holders() (keeper/network.ts), what `darkfs status` counts a pending chunk by
// (daemon.ts placedHosts -> HealthView.pendingHosts): two codings of the same bytes (written
// again after the network's size changed k) are two placements. One placed on six hosts says
// nothing of another pending on the writer alone: that chunk is local only, not degraded.
// Stub host and swarm; the real placement policy, pending book and health book.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encodeChunk } from '../../node/data/chunks.ts'
import { HealthBook } from '../../node/keeper/index.ts'
import { ChunkNetwork } from '../../node/keeper/network.ts'
import { PendingPlacements, encodingOf } from '../../node/keeper/pending.ts'
import { placementPolicy } from '../../node/keeper/placement.ts'

async function writer (): Promise<{ network: ChunkNetwork, members: string[] }> {
  const members = await Promise.all(Array.from({ length: 6 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
  const [me, ...others] = members
  const network = new ChunkNetwork({
    host: { peerId: me, peers: () => others.map(id => ({ id, addrs: [] })) as any, peerIds: () => others },
    swarm: {} as any,
    store: { has: async () => true } as any,
    policy: placementPolicy({ members: () => members }, { redundancy: 2 }),
    pending: new PendingPlacements(),
    pinners: () => [],
    offline: () => false,
    up: () => new Set(members)
  })
  return { network, members }
}

describe('ChunkNetwork.holders(): per coding of a chunk', () => {
  const data = randomBytes(64 * 1024)
  // the same bytes coded 4 + 2 (six hosts) and 2 + 1 (written again when k was 2)
  const wide = encodeChunk(data, 0, 4, 2).ref
  const narrow = encodeChunk(data, 0, 2, 1).ref
  const key = wide.cid!.toString()

  it('the two codings have one chunk CID and two encodings (the premise)', () => {
    assert.equal(narrow.cid!.toString(), key)
    assert.notEqual(encodingOf(narrow), encodingOf(wide))
  })

  it('a coding pending on the writer alone, beside one placed on six hosts: one host, and status counts it local only (fails on the old code: 6 hosts, degraded)', async () => {
    const { network, members } = await writer()
    const [me] = members
    // the wide coding placed: fragment j acknowledged by member j
    network.placement.set(key, new Map([[encodingOf(wide), wide.fragments.map((_, j) => new Set([members[j]]))]]))
    // the narrow one written here, its placement not finished: only this host holds it
    network.pending.add(narrow)
    network.placement.get(key)!.set(encodingOf(narrow), narrow.fragments.map(() => new Set([me])))
    const h = network.holders(key)!
    assert.equal(h.pending, true)
    assert.equal(h.hosts, 1)
    assert.deepEqual(h.codings.map(c => [c.encoding, c.hosts, c.fragments, c.pending]), [
      [encodingOf(wide), 6, 6, false],
      [encodingOf(narrow), 1, 3, true]
    ])
    const status = new HealthBook().count([], network.pending.values(), {
      self: me,
      live: new Set(members),
      placing: () => false,
      pendingHosts: k => network.holders(k)?.hosts ?? 0,
      offline: false
    })
    assert.equal(status.localOnly, 1)
    assert.equal(status.degraded, 0)
  })

  it('a pending coding with no record yet counts as held by nobody acknowledged; once it is placed on two hosts, degraded', async () => {
    const { network, members } = await writer()
    const [me, b] = members
    network.placement.set(key, new Map([[encodingOf(wide), wide.fragments.map((_, j) => new Set([members[j]]))]]))
    network.pending.add(narrow)
    assert.equal(network.holders(key)!.hosts, 0)
    // acknowledged by b: two hosts, short of its redundancy
    network.placement.get(key)!.set(encodingOf(narrow), narrow.fragments.map((_, j) => new Set(j === 0 ? [me, b] : [me])))
    assert.equal(network.holders(key)!.hosts, 2)
    // finished: no coding pending, the worst of them all (the narrow one, on two hosts)
    network.pending.delete(narrow)
    const h = network.holders(key)!
    assert.equal(h.pending, false)
    assert.deepEqual([h.hosts, h.fragments], [2, 3])
  })

  it('one coding alone: its hosts and fragments, as before', async () => {
    const { network, members } = await writer()
    network.placement.set(key, new Map([[encodingOf(wide), wide.fragments.map((_, j) => new Set([members[j]]))]]))
    const h = network.holders(key)!
    assert.deepEqual([h.hosts, h.fragments, h.pending], [6, 6, false])
    assert.equal(network.holders('nothing'), undefined)
  })
})
