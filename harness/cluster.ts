// In-process clusters: N real hosts (libp2p over the memory transport or loopback TCP, pnet,
// kad-dht), each with its own data dir, store, tree, swarm and Volume.
import { join } from 'node:path'
import { init } from '../node/cli/index.ts'
import { startDaemon } from '../node/cli/index.ts'
import type { Daemon, DaemonOptions } from '../node/cli/index.ts'
import type { Teardown } from './tmp.ts'
import { tempDir } from './tmp.ts'

export interface ClusterHost extends Daemon { name: string, dir: string, address: string, stopped: boolean, stop: () => Promise<void> }

let counter = 0

export async function startCluster (t: Teardown, n: number, opts: { transport?: 'memory' | 'tcp', daemon?: Partial<DaemonOptions> } = {}): Promise<ClusterHost[]> {
  const root = await tempDir(t, 'darkfs-cluster-')
  const first = join(root, 'h0')
  await init(first, { newNetwork: true })
  const hosts: ClusterHost[] = []
  for (let i = 0; i < n; i++) {
    const dir = join(root, `h${i}`)
    if (i > 0) await init(dir, { networkKey: join(first, 'network.key') })
    hosts.push(await startHost(t, dir, `c${counter}-h${i}`, i === 0 ? [] : [hosts[0].address], opts))
  }
  counter++
  return hosts
}

/**
 * startCluster, then wait until every host is connected to every other (`members`: and has every
 * host in its placement policy's members), or throw after `timeoutMs` (default 60 s): the mesh
 * most cluster tests start from.
 */
export async function startMesh (t: Teardown, n: number, opts: { transport?: 'memory' | 'tcp', daemon?: Partial<DaemonOptions>, members?: boolean, timeoutMs?: number } = {}): Promise<ClusterHost[]> {
  const hosts = await startCluster(t, n, opts)
  const what = opts.members === true ? 'every host connected to and a member of every other' : 'every host connected to every other'
  await until(`${what} (${n} hosts)`, () => hosts.every(h => h.host.peers().length === n - 1 && (opts.members !== true || h.policy.members().length === n)), opts.timeoutMs ?? 60_000)
  return hosts
}

export async function startHost (t: Teardown, dir: string, name: string, join: string[], opts: { transport?: 'memory' | 'tcp', daemon?: Partial<DaemonOptions> } = {}): Promise<ClusterHost> {
  const listen = opts.transport === 'tcp' ? '/ip4/127.0.0.1/tcp/0' : `/memory/${name}`
  const d = await startDaemon({ dir, listen: [listen], join, ...opts.daemon })
  const h: ClusterHost = Object.assign(d, {
    name,
    dir,
    address: d.host.addresses()[0],
    stopped: false,
    stop: async () => {
      if (h.stopped) return
      h.stopped = true
      await d.close()
    }
  })
  t.add(async () => { await h.stop() })
  return h
}

/** Poll until fn() is true (or throw after timeoutMs, naming what never happened). */
export async function until (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await fn()) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`never happened within ${timeoutMs} ms: ${what}`)
}

/**
 * Repair passes on every host of `hosts` until every chunk is redundant and a round of passes
 * moved and dropped nothing (and, unless `failures` is 'allowed', failed nothing): the state a
 * bench or a test that counts moved bytes starts from. `chunks` pins the count expected (else
 * any count, once every chunk is redundant); `also` adds a condition of the caller's. Returns the
 * rounds of passes it took.
 */
export async function settleRepair (hosts: ClusterHost[], opts: { timeoutMs?: number, failures?: 'none' | 'allowed', chunks?: number, also?: () => Promise<boolean> } = {}): Promise<number> {
  let rounds = 0
  await until('every chunk redundant and a round of repair passes that moved and dropped nothing', async () => {
    rounds++
    const progress = await Promise.all(hosts.map(async h => await h.keep.repairer.pass()))
    const s = await hosts[0].keep.status()
    const still = progress.every(p => p.fragmentsRepaired === 0 && p.dropped === 0 && (opts.failures === 'allowed' || p.failed === 0))
    return s.total > 0 && s.redundant === s.total && (opts.chunks === undefined || s.total === opts.chunks) && still && (opts.also === undefined || await opts.also())
  }, opts.timeoutMs ?? 120_000)
  return rounds
}
