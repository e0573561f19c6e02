// Two codings of the same bytes (another k: the same chunk CID, other fragments) placed at once by
// one writer (keeper/network.ts): each has its own placement record and its own `safe` waits, so
// one coding's acknowledgements neither end the other's fsync wait nor replace its record. Stub
// swarm and store; the real placement policy.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encodeChunk } from '../../node/data/chunks.ts'
import { ChunkNetwork, survivesOneLoss } from '../../node/keeper/network.ts'
import { PendingPlacements } from '../../node/keeper/pending.ts'
import { placementPolicy } from '../../node/keeper/placement.ts'

interface Delivery { cid: CID, bytes: Uint8Array, to: string[] }
interface PushOpts { onAck?: (cid: CID, peer: string) => void }

describe('ChunkNetwork.place: two codings of one chunk at once', () => {
  it('coding B\'s acknowledgements do not end coding A\'s safe wait, and each keeps its own record (fails on the old code: both keyed by chunk CID)', async () => {
    const members = await Promise.all(Array.from({ length: 6 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    const [me, ...others] = members
    const bytes = randomBytes(1 << 20)
    const a = encodeChunk(bytes, 0, 4, 2)
    const b = encodeChunk(bytes, 0, 3, 2)
    assert.equal(a.ref.cid!.toString(), b.ref.cid!.toString())
    const stored = new Map<string, Uint8Array>()
    // the writer stores a chunk as its data fragments (ChunkService.storeChunk)
    for (const { ref, blocks } of [a, b]) for (const blk of blocks.slice(0, ref.k)) stored.set(blk.cid.toString(), blk.bytes)
    const ofA = new Set(a.ref.fragments.map(String))
    // A's pushes are held until released; B's are acknowledged at once
    const releaseA = Promise.withResolvers<void>()
    const swarm = {
      push: async (deliveries: Delivery[], opts: PushOpts = {}): Promise<Map<string, string[]>> => {
        if (deliveries.some(d => ofA.has(d.cid.toString()))) await releaseA.promise
        const acks = new Map<string, string[]>()
        for (const d of deliveries) {
          acks.set(d.cid.toString(), d.to)
          for (const p of d.to) opts.onAck?.(d.cid, p)
        }
        return acks
      },
      has: async () => new Set<string>(),
      pullAny: async () => { throw new Error('not here') },
      pullRange: async () => { throw new Error('not here') }
    }
    const store = {
      has: async (cid: CID) => stored.has(cid.toString()),
      get: async (cid: CID) => stored.get(cid.toString())!,
      put: async (cid: CID, bytes: Uint8Array) => { stored.set(cid.toString(), bytes) },
      delete: async () => {},
      isClaimed: () => false
    }
    const network = new ChunkNetwork({
      host: { peerId: me, peers: () => others.map(id => ({ id, addrs: [] })) as any, peerIds: () => others },
      swarm: swarm as any,
      store: store as any,
      policy: placementPolicy({ members: () => members }, { redundancy: 2 }),
      pending: new PendingPlacements(),
      pinners: () => [],
      offline: () => false,
      up: () => new Set(members)
    })
    let aSafe = false
    const placingA = network.place([a.ref], { safe: true }).then(() => { aSafe = true })
    const waitA = network.safe(a.ref).then(() => true)
    await network.place([b.ref], { safe: true })
    const heldB = network.heldOf(b.ref)
    assert.ok(heldB !== undefined && heldB.length === 5 && survivesOneLoss(heldB, 3), 'B is placed, its own record')
    // A's pushes are still held: nothing of A is on another host yet
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(aSafe, false, 'A\'s fsync wait is not over: its fragments are on the writer alone')
    assert.equal(await Promise.race([waitA, Promise.resolve(false)]), false, 'nor is A\'s safe()')
    releaseA.resolve()
    await placingA
    assert.equal(await waitA, true)
    const heldA = network.heldOf(a.ref)
    assert.ok(heldA !== undefined && heldA.length === 6 && survivesOneLoss(heldA, 4), 'A keeps its own record')
    assert.equal(network.heldOf(b.ref), heldB, 'B\'s record is not replaced by A\'s')
    assert.ok(!network.pending.hasCoding(a.ref) && !network.pending.hasCoding(b.ref))
  })
})
