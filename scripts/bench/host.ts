// Host benchmark (loopback TCP, pnet, kad-dht on /darkfs/kad): how fast membership, the DHT,
// key-mismatch detection and op gossip are. Figures in ms; medians of a few runs.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createHost } from '../../node/net/index.ts'
import type { Host } from '../../node/net/index.ts'
import { createNetworkKey } from '../../node/net/index.ts'
import { createSync } from '../../node/net/index.ts'
import type { Sync } from '../../node/net/index.ts'
import { Tree, ROOT } from '../../node/tree/index.ts'
import { signerFor, verify } from '../../node/net/index.ts'

/** Members already up when the new host joins. */
const MEMBERS = 5
/** Repetitions of each timed step (the median is reported). */
const JOIN_RUNS = 3
const LOOKUP_RUNS = 10
const GOSSIP_RUNS = 10
const LISTEN = '/ip4/127.0.0.1/tcp/0'
const POLL_MS = 5

export async function run (): Promise<Record<string, number | string>> {
  const closers: Array<() => Promise<void>> = []
  try {
    return await measure(closers)
  } finally {
    for (const close of closers.reverse()) await close().catch(() => {})
  }
}

async function measure (closers: Array<() => Promise<void>>): Promise<Record<string, number | string>> {
  const key = createNetworkKey()
  const start = async (join: string[] = []): Promise<Host> => {
    const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: [LISTEN], join })
    closers.push(async () => { await h.stop() })
    return h
  }

  const first = await start()
  const members = [first]
  for (let i = 1; i < MEMBERS; i++) members.push(await start([first.addresses()[0]]))
  await until(() => meshed(members))

  // a new host joins through one member: until it sees every member and every member sees it
  const joins: number[] = []
  for (let r = 0; r < JOIN_RUNS; r++) {
    const t0 = performance.now()
    const fresh = await start([members[r % MEMBERS].addresses()[0]])
    await until(() => meshed([...members, fresh]))
    joins.push(performance.now() - t0)
    await fresh.stop()
    await until(() => members.every(m => m.peers().length === MEMBERS - 1))
  }

  // DHT: provide on one member, find on another
  const provides: number[] = []
  const finds: number[] = []
  for (let r = 0; r < LOOKUP_RUNS; r++) {
    const cid = CID.createV1(raw.code, await sha256.digest(randomBytes(32)))
    const t0 = performance.now()
    await members[1].provide(cid)
    provides.push(performance.now() - t0)
    const t1 = performance.now()
    const found = await members[3].findProviders(cid, { max: 1 })
    if (found[0] !== members[1].peerId) throw new Error('findProviders did not find the provider')
    finds.push(performance.now() - t1)
  }

  // closestPeers over the live members
  const closest: number[] = []
  for (let r = 0; r < LOOKUP_RUNS; r++) {
    const t0 = performance.now()
    await members[2].closestPeers(randomBytes(32), 3)
    closest.push(performance.now() - t0)
  }

  // a host with the wrong network key: time until its dial is refused as a mismatch
  const mismatch: number[] = []
  for (let r = 0; r < JOIN_RUNS; r++) {
    const stranger = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: createNetworkKey(), listen: [LISTEN] })
    closers.push(async () => { await stranger.stop() })
    const t0 = performance.now()
    try {
      await stranger.dial(first.addresses()[0])
      throw new Error('a host with the wrong key was let in')
    } catch (err: any) {
      if (err?.name !== 'NetworkKeyMismatchError') throw err
    }
    mismatch.push(performance.now() - t0)
    await stranger.stop()
  }

  // op gossip: a mkdir on one host until every host has applied it
  const trees: Tree[] = []
  const syncs: Sync[] = []
  for (const m of members) {
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-bench-host-'))
    closers.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const tree = await Tree.open({ dir, signer: signerFor(await generateKeyPair('Ed25519')), verify })
    closers.push(async () => { await tree.close() })
    const sync = createSync()({ host: m, tree })
    await sync.start()
    closers.push(async () => { await sync.stop() })
    trees.push(tree)
    syncs.push(sync)
  }
  const gossip: number[] = []
  for (let r = 0; r < GOSSIP_RUNS; r++) {
    const author = trees[r % MEMBERS]
    const t0 = performance.now()
    await author.commit({ type: 'create', parent: ROOT, name: `d${r}`, kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })
    await until(() => trees.every(t => t.size === r + 1))
    gossip.push(performance.now() - t0)
  }

  return {
    'host.join.5members.tcp.ms': median(joins),
    'host.dht.provide.5hosts.ms': median(provides),
    'host.dht.findProviders.5hosts.ms': median(finds),
    'host.dht.findProviders.5hosts.p90.ms': percentile(finds, 0.9),
    'host.closestPeers.5hosts.ms': median(closest),
    'host.keyMismatch.detect.ms': median(mismatch),
    'sync.gossip.op.5hosts.ms': median(gossip)
  }
}

function meshed (hosts: Host[]): boolean {
  return hosts.every(h => {
    const ids = new Set(h.peers().map(p => p.id))
    return hosts.every(o => o === h || ids.has(o.peerId))
  })
}

async function until (check: () => boolean, limitMs = 30_000): Promise<void> {
  const end = Date.now() + limitMs
  while (!check()) {
    if (Date.now() > end) throw new Error('bench step did not finish in time')
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
  }
}

function median (xs: number[]): number {
  return percentile(xs, 0.5)
}

function percentile (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * 10) / 10
}
