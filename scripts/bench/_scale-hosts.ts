// bench:scale's hosts (scale.ts), in whatever process holds them: a HostGroup starts real darkfs
// hosts (startHost: a full daemon each) and answers the bench's questions about them in batches,
// by plain data (strings, numbers, bytes), so the same calls work in the bench's own process and
// across processes (_scale-worker.ts, one group per worker process, over Node's IPC channel).
// Every answer about state is a snapshot of the group's hosts; the bench asks again when it needs
// a newer one. Times are epoch milliseconds with sub-millisecond precision
// (performance.timeOrigin + performance.now()): one clock for every process on the machine.
import { randomBytes } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { CID } from 'multiformats/cid'
import { Teardown } from '../../harness/tmp.ts'
import { startHost } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { init } from '../../node/cli/index.ts'
import { ROOT } from '../../node/tree/index.ts'
import { decodeManifest } from '../../node/data/index.ts'
import { TRIM_GRACE_MS } from '../../node/net/index.ts'

type TrafficSnapshot = ReturnType<ClusterHost['host']['traffic']>
type InboundState = ReturnType<ClusterHost['host']['inbound']>

/** What the bench sees of one host at one moment. */
export interface HostSnap {
  index: number
  stopped: boolean
  peers: string[]
  /**
   * The connected peers whose oldest open connection is KEPT_MS old or more: what the host keeps,
   * not a dial of a moment (a have-query, a probe) that the trim closes.
   */
  kept: number
  /** host.describeConnections(), only while over `bound` (the bench logs it). */
  over?: string[]
  traffic: TrafficSnapshot
  inbound: InboundState
  members: number
  digest: string
  repairIdle: boolean
  leftover: Record<string, number>
  why: Record<string, boolean>
  repairTotals: { passes: number, bytesFetched: number, bytesPushed: number, fragmentsRepaired: number }
  suspects: number
  pending: number
  /** store.stored() (-1 while it does not know). */
  stored: number
  /** Whether the host's placement members still include the peer the bench asked about. */
  knows?: boolean
}

/** What the group's process saw of its event loop since the last call, ms. */
export interface LoopLag { p50: number, p99: number, max: number }

export interface ChunkLayout { fragments: string[], ranked: string[], size: number, k: number, m: number }

export interface StartRequest {
  index: number
  dir: string
  name: string
  joins: string[]
  networkKey?: string
  newNetwork?: boolean
  transport: 'tcp' | 'memory'
  bound: number
  failureMs: number
  /** Keeper options on top of the failure timeout (the repair bench's: no timers, no repair cap). */
  keep?: Record<string, number>
}

/**
 * A connection counts as kept (HostSnap.kept) once open this long: three of the trim's graces.
 * The trim never closes a connection younger than TRIM_GRACE_MS (host.ts), and one it found too
 * young (or busy) it looks at again TRIM_GRACE_MS later, so a probe's or a sync's dial above the
 * bound lives up to two graces before the trim can close it, by design; the third is for the trim
 * itself (the trim notice's round trip, the hang-up) on loaded event loops. It was 1 s: a sync
 * dial 1.5 s old on a host at its bound of 6 failed a 20-host run's idle phase (kept 7).
 */
export const KEPT_MS = 3 * TRIM_GRACE_MS

/** Tries of a host's start (its join dials) before the bench fails. */
const START_TRIES = 3

export const now = (): number => performance.timeOrigin + performance.now()

export class HostGroup {
  private readonly t = new Teardown()
  private readonly hosts = new Map<number, ClusterHost>()
  private readonly lag = monitorEventLoopDelay({ resolution: 20 })

  constructor () { this.lag.enable() }

  async start (r: StartRequest): Promise<{ address: string, peerId: string }> {
    await init(r.dir, r.newNetwork === true ? { newNetwork: true } : { networkKey: r.networkKey })
    // a join whose every dial failed (a peer process busy past the dial's deadline) is tried again
    let h: ClusterHost | undefined
    for (let attempt = 1; h === undefined; attempt++) {
      try {
        h = await startHost(this.t, r.dir, r.name, r.joins, { transport: r.transport, daemon: { maxConnections: r.bound, keep: { failureTimeoutMs: r.failureMs, ...r.keep } } })
      } catch (err) {
        if (attempt >= START_TRIES) throw err
        process.stderr.write(`[bench:scale] ${r.name}: start failed (try ${attempt} of ${START_TRIES}): ${(err as Error).message.slice(0, 300)}\n`)
      }
    }
    this.hosts.set(r.index, h)
    return { address: h.address, peerId: h.host.peerId }
  }

  private host (index: number): ClusterHost {
    const h = this.hosts.get(index)
    if (h === undefined) throw new Error(`no host ${index} here`)
    return h
  }

  /** Each host's last snapshot: a stopped host's is its last one before it stopped. */
  private readonly last = new Map<number, HostSnap>()

  snap (bound: number, about?: string): HostSnap[] {
    return [...this.hosts].map(([index, h]) => {
      const before = this.last.get(index)
      if (h.stopped && before !== undefined) return { ...before, stopped: true, peers: [], kept: 0 }
      const peers = h.host.peers().map(p => p.id)
      const at = Date.now()
      const kept = [...h.host.connectedSince().values()].filter(since => at - since >= KEPT_MS).length
      const r = h.keep.repairer
      const t = r.totals()
      const snap: HostSnap = {
        index,
        stopped: h.stopped,
        peers,
        kept,
        ...(peers.length > bound ? { over: h.host.describeConnections() } : {}),
        traffic: h.host.traffic(),
        inbound: h.host.inbound(),
        members: h.members.size,
        digest: Buffer.from(h.members.digest()).toString('hex'),
        repairIdle: r.idle(),
        leftover: r.leftover(),
        why: r.why(),
        repairTotals: { passes: t.passes, bytesFetched: t.bytesFetched, bytesPushed: t.bytesPushed, fragmentsRepaired: t.fragmentsRepaired },
        suspects: h.keep.membership.suspects().length,
        pending: h.network.pending.size,
        stored: h.store.stored() ?? -1,
        ...(about !== undefined ? { knows: h.policy.members().includes(about) } : {})
      }
      this.last.set(index, snap)
      return snap
    })
  }

  /** The event loop's delay since the last call. */
  loopLag (): LoopLag {
    const l = { p50: this.lag.percentile(50) / 1e6, p99: this.lag.percentile(99) / 1e6, max: this.lag.max / 1e6 }
    this.lag.reset()
    return l
  }

  async writeFile (index: number, path: string, bytes: number): Promise<void> {
    await this.host(index).volume.replaceFile(path, [randomBytes(bytes)], { wait: 'safe' })
  }

  /** mkdir on a host; the time just before it. */
  async mkdir (index: number, path: string): Promise<number> {
    const t0 = now()
    await this.host(index).volume.mkdir(path)
    return t0
  }

  /** When each of the group's live hosts (but `except`) first had `name` under the root, polled every `pollMs`, until all did or `deadlineMs` passed; missing ones are absent. */
  async watch (name: string, except: number, pollMs: number, deadlineMs: number): Promise<Record<number, number>> {
    const seen: Record<number, number> = {}
    const pending = new Map([...this.hosts].filter(([i, h]) => i !== except && !h.stopped))
    const end = now() + deadlineMs
    while (pending.size > 0 && now() < end) {
      for (const [i, h] of pending) {
        if (h.tree.lookup(ROOT, name) !== undefined) { pending.delete(i); seen[i] = now() }
      }
      if (pending.size > 0) await new Promise(resolve => setTimeout(resolve, pollMs))
    }
    return seen
  }

  /** The manifest CID of a file under the root, on one host. */
  manifestOf (index: number, name: string): string | undefined {
    const h = this.host(index)
    const entry = h.tree.lookup(ROOT, name)
    const content = entry === undefined ? undefined : h.tree.get(entry.inode)?.content
    return content == null || !('manifest' in content) ? undefined : content.manifest.toString()
  }

  /** A block from any of the group's live hosts. */
  async tryGet (cid: string): Promise<Uint8Array | undefined> {
    const c = CID.parse(cid)
    for (const h of this.hosts.values()) {
      if (h.stopped) continue
      const bytes = await h.store.tryGet(c)
      if (bytes !== undefined) return bytes
    }
    return undefined
  }

  /** A manifest's chunks, each with its fragments and the hosts a host's placement rule ranks for them (its member table). */
  layout (index: number, manifest: Uint8Array): ChunkLayout[] {
    const h = this.host(index)
    const members = h.policy.members()
    return decodeManifest(manifest).chunks.filter(ref => ref.cid !== null).map(ref => ({
      fragments: ref.fragments.map(f => f.toString()),
      ranked: h.policy.rank(ref, members, ref.k + ref.m),
      size: ref.size,
      k: ref.k,
      m: ref.m
    }))
  }

  /** Which of `cids` each of the group's live hosts holds. */
  async has (cids: string[]): Promise<Record<number, boolean[]>> {
    const parsed = cids.map(c => CID.parse(c))
    const out: Record<number, boolean[]> = {}
    for (const [i, h] of this.hosts) {
      const row: boolean[] = []
      for (const c of parsed) row.push(!h.stopped && await h.store.has(c))
      out[i] = row
    }
    return out
  }

  async storedBytes (): Promise<Record<number, number>> {
    const out: Record<number, number> = {}
    for (const [i, h] of this.hosts) out[i] = h.store.stored() ?? (await h.store.usage()).bytesStored
    return out
  }

  async stop (index: number, bound: number): Promise<void> {
    this.snap(bound)
    await this.host(index).stop()
  }

  private live (): ClusterHost[] { return [...this.hosts.values()].filter(h => !h.stopped) }

  /** The repair bench (repair.ts, hosts in processes): one repair pass on each live host, what each did. */
  async repairPass (): Promise<Array<{ fragmentsRepaired: number, dropped: number }>> {
    return await Promise.all(this.live().map(async h => { const p = await h.keep.repairer.pass(); return { fragmentsRepaired: p.fragmentsRepaired, dropped: p.dropped } }))
  }

  /** A host's chunk health (keep.status()): chunks redundant of all it knows. */
  async chunkHealth (index: number): Promise<{ redundant: number, total: number }> {
    const s = await this.host(index).keep.status()
    return { redundant: s.redundant, total: s.total }
  }

  /** The swarm's bytes sent and the repairers' totals, summed over the live hosts. */
  moved (): { sent: number, fetched: number, pushed: number } {
    const out = { sent: 0, fetched: 0, pushed: 0 }
    for (const h of this.live()) {
      const t = h.keep.repairer.totals()
      out.sent += h.swarm.stats().bytesSent
      out.fetched += t.bytesFetched
      out.pushed += t.bytesPushed
    }
    return out
  }

  /** Connected peers of each live host. */
  peerCounts (): number[] { return this.live().map(h => h.host.peers().length) }

  /** Whether a repair pass runs on any live host. */
  repairRunning (): boolean { return this.live().some(h => h.keep.repairer.progress().running) }

  private repairWatch: { declared: boolean, startedAt?: number } | undefined

  /** From now on, note when the first repair pass starts on a live host after one declared a member gone (repairStartedAt). */
  armRepairWatch (): void {
    const w: { declared: boolean, startedAt?: number } = { declared: false }
    this.repairWatch = w
    for (const h of this.live()) {
      h.keep.membership.addEventListener('gone', () => { w.declared = true })
      h.keep.repairer.addEventListener('start', () => { if (w.declared && w.startedAt === undefined) w.startedAt = now() })
    }
  }

  /** When (epoch ms) that first pass started on this group's hosts; undefined: not yet. */
  repairStartedAt (): number | undefined { return this.repairWatch?.startedAt }

  usage (): { cpu: NodeJS.CpuUsage, rss: number, heapUsed: number } {
    const m = process.memoryUsage()
    return { cpu: process.cpuUsage(), rss: m.rss, heapUsed: m.heapUsed }
  }

  async close (): Promise<void> {
    this.lag.disable()
    // in parallel: one by one, many hosts take minutes to close
    await Promise.all([...this.hosts.values()].map(async h => { await h.stop() }))
    await this.t.run()
  }
}

/** The group's calls by name, for a message channel: [method, ...args]. */
export async function dispatch (g: HostGroup, method: string, args: unknown[]): Promise<unknown> {
  const fn = (g as unknown as Record<string, (...a: unknown[]) => unknown>)[method]
  if (typeof fn !== 'function' || method === 'constructor') throw new Error(`no call ${method}`)
  return await fn.apply(g, args)
}
