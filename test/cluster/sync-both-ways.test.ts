import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createHost, createNetworkKey, createSync, signerFor, verify, OPS_PROTOCOL, OPS, call, serve } from '../../node/net/index.ts'
import type { OpsReply, Host, Sync, SyncHost } from '../../node/net/index.ts'
import { Tree, ROOT } from '../../node/tree/index.ts'

// One rbsr run serving both directions (node/net/sync.ts "One run both ways"): its tokens, its
// failures, and the lack calls it accepts.

async function until (what: string, check: () => boolean, ms = 15000): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
const heads = (t: Tree): string => t.heads().map(c => c.toString()).sort().join(',')
const noGossip = (h: Host): SyncHost => ({
  peerId: h.peerId,
  peers: () => h.peers(),
  handle: h.handle.bind(h),
  unhandle: h.unhandle.bind(h),
  newStream: h.newStream.bind(h),
  addEventListener: h.addEventListener.bind(h),
  removeEventListener: h.removeEventListener.bind(h),
  gossip: undefined,
  beyondFullMesh: () => h.beyondFullMesh()
})

describe('sync: one run both ways', function () {
  this.timeout(120_000)
  const teardown: Array<() => Promise<void>> = []
  afterEach(async function () { while (teardown.length > 0) await teardown.pop()!().catch(() => {}) })
  const memAddr = (): string => `/memory/sbw-${randomBytes(6).toString('hex')}`

  async function openTree (key: PrivateKey): Promise<Tree> {
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-sbw-'))
    teardown.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const tree = await Tree.open({ dir, signer: signerFor(key), verify })
    teardown.push(async () => { await tree.close() })
    return tree
  }
  interface Up { host: Host, sync: Sync, stop: () => Promise<void> }
  /** A host and its sync; `failAt`: the ops streams (by count) this host opens that fail; `delayMs`: each ops stream it opens waits that long first. */
  async function up (networkKey: Uint8Array, key: PrivateKey, tree: Tree, o: { gossip?: boolean, servedWaitMs?: number, failAt?: Set<number>, delayMs?: number } = {}): Promise<Up> {
    const host = await createHost({ privateKey: key, networkKey, listen: [memAddr()], join: [] })
    let view: SyncHost = o.gossip === true ? host : noGossip(host)
    if (o.failAt !== undefined || o.delayMs !== undefined) {
      let n = 0
      const inner = view
      view = {
        ...inner,
        newStream: async (peer, protocol, opts) => {
          if (protocol === OPS_PROTOCOL && o.failAt?.has(n++) === true) throw new Error('injected stream failure')
          if (protocol === OPS_PROTOCOL && o.delayMs !== undefined) await new Promise(resolve => setTimeout(resolve, o.delayMs))
          return await inner.newStream(peer, protocol, opts)
        }
      }
    }
    const sync = createSync({ servedWaitMs: o.servedWaitMs })({ host: view, tree })
    await sync.start()
    let stopped = false
    const stop = async (): Promise<void> => { if (stopped) return; stopped = true; await sync.stop(); await host.stop() }
    teardown.push(stop)
    return { host, sync, stop }
  }
  const mkdirs = async (t: Tree, prefix: string, n: number): Promise<void> => {
    await t.commitMany(Array.from({ length: n }, (_, k) => ({ type: 'create' as const, parent: ROOT, name: `${prefix}${k}`, kind: 'dir' as const, mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })))
  }
  /** Two keys, the one whose peer id sorts first (the host whose run serves both ways) first. */
  async function orderedKeys (): Promise<[PrivateKey, PrivateKey]> {
    const k1 = await generateKeyPair('Ed25519')
    const k2 = await generateKeyPair('Ed25519')
    return peerIdFromPrivateKey(k1).toString() < peerIdFromPrivateKey(k2).toString() ? [k1, k2] : [k2, k1]
  }

  for (const gossip of [false, true]) {
    it(`the host whose id sorts first restarts (same key, new process): the other takes the ops it wrote while down (gossip ${String(gossip)})`, async function () {
      const net = createNetworkKey()
      const [kA, kB] = await orderedKeys()
      const tA = await openTree(kA)
      const tB = await openTree(kB)
      await mkdirs(tA, 'a-', 3)
      await mkdirs(tB, 'b-', 3)
      const b = await up(net, kB, tB, { gossip })
      const a1 = await up(net, kA, tA, { gossip })
      await a1.host.dial(b.host.addresses()[0])
      await until('first sync', () => tA.size === 6 && tB.size === 6 && a1.sync.stats().reconciles >= 1 && b.sync.stats().reconciles >= 1)
      assert.equal(b.sync.stats().rbsrServed, 1)
      await a1.stop()
      await until('b sees a gone', () => b.host.peers().length === 0)
      await mkdirs(tA, 'offline-', 4)
      const before = b.sync.stats().reconciles
      const a2 = await up(net, kA, tA, { gossip })
      await a2.host.dial(b.host.addresses()[0])
      await until('both reconciled again', () => a2.sync.stats().reconciles >= 1 && b.sync.stats().reconciles > before)
      // what b's reconcile brought: gossip of a's new heads (none are published for old ops) does not
      assert.equal(tB.size, 10, `b holds ${tB.size} ops, a ${tA.size}: b's reconcile ended without a's offline ops`)
      assert.equal(heads(tA), heads(tB))
    })
  }

  it('one failed ops stream on the host whose id sorts first (each of its first 8 in turn): both end with the union, the other\'s served wait not left to run out', async function () {
    const net = createNetworkKey()
    for (let k = 0; k < 8; k++) {
      const [kA, kB] = await orderedKeys()
      const tA = await openTree(kA)
      const tB = await openTree(kB)
      await mkdirs(tA, 'a-', 50)
      await mkdirs(tB, 'b-', 50)
      // the served wait far longer than the bound below: the union must not wait for it
      const a = await up(net, kA, tA, { failAt: new Set([k]), servedWaitMs: 600_000 })
      const b = await up(net, kB, tB, { servedWaitMs: 600_000 })
      await b.host.dial(a.host.addresses()[0])
      await until(`union with stream ${k} failing`, () => tA.size === 100 && tB.size === 100, 20000)
      assert.equal(heads(tA), heads(tB))
      await b.stop()
      await a.stop()
    }
  })
})
