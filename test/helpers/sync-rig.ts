import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createHost, createSync, signerFor, verify, OPS_PROTOCOL } from '../../node/net/index.ts'
import type { Host, Sync, SyncHost } from '../../node/net/index.ts'
import { Tree, ROOT } from '../../node/tree/index.ts'

// Hosts with a sync over in-memory transports, for the sync tests (test/cluster/sync-*.test.ts):
// one copy of the setup they shared.

/** Waits for `check` to hold, polling every 20 ms; throws naming `what` past `ms`. */
export async function until (what: string, check: () => boolean, ms = 15000): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** A tree's heads, sorted and joined: equal strings, equal heads. */
export const heads = (t: Tree): string => t.heads().map(c => c.toString()).sort().join(',')

/** The host as sync sees it, without gossip (sync then reconciles on connect only). */
export const noGossip = (h: Host): SyncHost => ({
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

/** Two keys, the one whose peer id sorts first (the host whose run serves both ways) first. */
export async function orderedKeys (): Promise<[PrivateKey, PrivateKey]> {
  const k1 = await generateKeyPair('Ed25519')
  const k2 = await generateKeyPair('Ed25519')
  return peerIdFromPrivateKey(k1).toString() < peerIdFromPrivateKey(k2).toString() ? [k1, k2] : [k2, k1]
}

/** Commits `n` dirs named `${prefix}${k}` under the root of `t`. */
export async function mkdirs (t: Tree, prefix: string, n: number): Promise<void> {
  await t.commitMany(Array.from({ length: n }, (_, k) => ({ type: 'create' as const, parent: ROOT, name: `${prefix}${k}`, kind: 'dir' as const, mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })))
}

export interface Up { host: Host, sync: Sync, stop: () => Promise<void> }
export interface UpOpts { gossip?: boolean, servedWaitMs?: number, failAt?: Set<number>, delayMs?: number }

export interface SyncRig {
  /** A fresh in-memory listen address. */
  memAddr: () => string
  /** A tree in a temporary dir signed by `key`. */
  openTree: (key: PrivateKey) => Promise<Tree>
  /** A host and its sync; `failAt`: the ops streams (by count) this host opens that fail; `delayMs`: each ops stream it opens after its first waits that long first. */
  up: (networkKey: Uint8Array, key: PrivateKey, tree: Tree, o?: UpOpts) => Promise<Up>
}

/** Trees and hosts whose closing is pushed on `teardown` (the suite pops it after each test); `tag` names their dirs and addresses. */
export function syncRig (teardown: Array<() => Promise<void>>, tag: string): SyncRig {
  const memAddr = (): string => `/memory/${tag}-${randomBytes(6).toString('hex')}`
  async function openTree (key: PrivateKey): Promise<Tree> {
    const dir = await mkdtemp(join(tmpdir(), `darkfs-${tag}-`))
    teardown.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const tree = await Tree.open({ dir, signer: signerFor(key), verify })
    teardown.push(async () => { await tree.close() })
    return tree
  }
  async function up (networkKey: Uint8Array, key: PrivateKey, tree: Tree, o: UpOpts = {}): Promise<Up> {
    const host = await createHost({ privateKey: key, networkKey, listen: [memAddr()], join: [] })
    let view: SyncHost = o.gossip === true ? host : noGossip(host)
    if (o.failAt !== undefined || o.delayMs !== undefined) {
      let n = 0
      const inner = view
      view = {
        ...inner,
        newStream: async (peer, protocol, opts) => {
          const k = protocol === OPS_PROTOCOL ? n++ : -1
          if (o.failAt?.has(k) === true) throw new Error('injected stream failure')
          if (k > 0 && o.delayMs !== undefined) await new Promise(resolve => setTimeout(resolve, o.delayMs))
          return await inner.newStream(peer, protocol, opts)
        }
      }
    }
    const sync = createSync({ servedWaitMs: o.servedWaitMs, bothWays: true })({ host: view, tree })
    await sync.start()
    let stopped = false
    const stop = async (): Promise<void> => { if (stopped) return; stopped = true; await sync.stop(); await host.stop() }
    teardown.push(stop)
    return { host, sync, stop }
  }
  return { memAddr, openTree, up }
}
