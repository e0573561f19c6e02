// The keeper counts' records in the simulator (issue 14, idle traffic): every host runs
// node/keeper/kept.ts's KeptNotices (its counting schedule, its publish rule, its signing: the
// record bytes are real, the signature a stand-in of an Ed25519 signature's size) in virtual
// time, against the changes of the hosts up that a churn trace makes (a host away for the
// failure timeout is declared gone then, and up again when it comes back; a joiner is up from
// its join). As the daemon does, each such change calls changed() on every host (its membership
// events 'gone', 'back', 'joined').
//
// What a host counts is modelled, not surveyed: each keeps `chunks` chunks of `width`
// fragments placed by the balanced rule (rendezvous over every member), so a chunk of any
// keeper has a fragment on a given other host with odds (width - 1) / members, and its keeper
// counts it degraded while that host is down. A host's counts are those expected over its
// chunks with the hosts down now (the same for every host): at 1,000 hosts and 10,000 chunks,
// each host down moves every keeper's counts by about 50 chunks, so every change moves every
// host's figures, as in a network whose keepers keep thousands of chunks.
//
// Measured: the records published on gossip (and their bytes) in the window after a warm-up of
// one record interval, and the staleness of the network totals: for each host, the time from
// the first change its last record does not tell to the record that tells it.
import { EventQueue } from './events.ts'
import { simPeer } from './hosts.ts'
import type { TraceEvent } from './churn.ts'
import { KeptNotices, emptyKept, keptIntervalOf, openKept } from '../../node/keeper/index.ts'
import type { KeptClock, KeptCounts, KeptRole, KeptSumAnswer } from '../../node/keeper/index.ts'

export interface UpChange { t: number, host: number, up: boolean, join?: boolean }

/**
 * The changes of the hosts up that `trace` makes (in time order): a host down (or gone for
 * good) for `failureTimeoutMs` is declared gone then, and is up again when it comes back; a
 * joiner is up from its join. Outages shorter than the timeout change nothing.
 */
export function upChanges (trace: TraceEvent[], failureTimeoutMs: number, duration: number): UpChange[] {
  const out: UpChange[] = []
  const downAt = new Map<number, number>()
  for (const e of trace) {
    if (e.kind === 'join') out.push({ t: e.t, host: e.host, up: true, join: true })
    else if (e.kind === 'down' || e.kind === 'leave') {
      if (!downAt.has(e.host)) downAt.set(e.host, e.t)
    } else {
      const at = downAt.get(e.host)
      downAt.delete(e.host)
      if (at !== undefined && e.t - at >= failureTimeoutMs) out.push({ t: at + failureTimeoutMs, host: e.host, up: false }, { t: e.t, host: e.host, up: true })
    }
  }
  for (const [host, at] of downAt) if (at + failureTimeoutMs < duration) out.push({ t: at + failureTimeoutMs, host, up: false })
  return out.sort((a, b) => a.t - b.t || a.host - b.host)
}

export interface KeptSimOptions {
  /** Hosts at the start; the trace's joiners come after them. */
  hosts: number
  joiners: number
  changes: UpChange[]
  /** Length of the window measured (ms), after a warm-up of keptInterval(hosts). */
  duration: number
  /** Chunks each host is keeper of, and fragments per chunk. */
  chunks: number
  width: number
  rand: () => number
  /** The records' schedule (default kept.ts keptIntervalOf). */
  interval?: (members: number, role: KeptRole) => number
  /**
   * Sum the counts along the tree (kept-tree.ts: each host's group sum sent to its parent, the
   * root's totals on gossip), as the daemon does beyond the full mesh; false: every host's
   * record on gossip (the schedule before the tree).
   */
  tree: boolean
  /** One-way latency of a sum sent up the tree (ms). */
  latencyMs: number
}

export interface KeptSimResult {
  /** Records published on gossip in the window (the root's totals, along the tree), and their bytes (the signed record, without the gossip tag). */
  records: number
  recordBytes: number
  /** Along the tree: sums sent up in the window, and their bytes. */
  ups: number
  upBytes: number
  /**
   * Along the tree: the age of the network totals a host shows (kept.ts NetworkTotals.ageMs: the
   * root's latest totals' age when published, plus the time since; each host's counts are taken
   * fresh here, so it is the time the oldest of them took to reach the root, or stayed
   * there unmoved), sampled each minute of the window: mean, 99th percentile, max; and the
   * error of the degraded chunks they show against the true sum then, relative to the chunks.
   */
  totalsStaleMean: number
  totalsStaleP99: number
  totalsStaleMax: number
  totalsErrorMean: number
  totalsErrorMax: number
  /** Records per second network-wide, and per host. */
  recordsPerS: number
  /** Changes of the hosts up in the window. */
  changes: number
  /** Staleness of the hosts' counts in the others' tables (ms): mean, 99th percentile and max over the records of the window. */
  staleMean: number
  staleP99: number
  staleMax: number
  /** Hosts whose counts were untold at the window's end, and the oldest such change (ms). */
  untold: number
  untoldMax: number
}

/** A 64-byte stand-in for an Ed25519 signature: the records' size is the real one. */
const SIGNATURE = new Uint8Array(64).fill(7)

export async function runKeptSim (o: KeptSimOptions): Promise<KeptSimResult> {
  const q = new EventQueue()
  const clock: KeptClock = {
    now: () => q.now,
    setTimeout: (fn, ms) => {
      const handle = { cancelled: false }
      q.after(ms, () => { if (!handle.cancelled) fn() })
      return handle
    },
    clearTimeout: (handle) => { if (handle !== undefined && handle !== null) (handle as { cancelled: boolean }).cancelled = true }
  }
  const all = o.hosts + o.joiners
  const peers = Array.from({ length: all }, () => simPeer(o.rand))
  const up = new Set<number>(Array.from({ length: o.hosts }, (_, i) => i))
  let upList = [...up].map(i => peers[i])
  let members = o.hosts
  /** The counts every host has now (see the header): degraded chunks follow the hosts down. */
  let counts: KeptCounts = emptyKept()
  const recount = (): void => {
    const down = members - up.size
    const degraded = Math.round(o.chunks * (1 - Math.pow(1 - (o.width - 1) / members, down)))
    counts = emptyKept()
    counts.chunks.redundant = o.chunks - degraded
    counts.chunks.degraded = degraded
    counts.bytes.redundant = counts.chunks.redundant * 2 ** 20
    counts.bytes.degraded = degraded * 2 ** 20
  }
  recount()

  const interval = o.interval ?? keptIntervalOf
  // a warm-up of one record interval of the schedule's slowest role
  const warm = o.tree ? interval(o.hosts, 'root') : interval(o.hosts, 'tell')
  const end = warm + o.duration
  let records = 0
  let recordBytes = 0
  let changes = 0
  const stale: number[] = []
  let ups = 0
  let upBytes = 0
  let refusedSums = 0
  // the root's latest totals on gossip: when published, their age then, their degraded chunks
  let shown: { at: number, age: number, degraded: number } | undefined
  const totalsStale: number[] = []
  const totalsError: number[] = []
  /** Per host: the degraded count its last record told, and since when the counts differ from it. */
  const told = new Float64Array(all).fill(NaN)
  const untoldSince = new Float64Array(all).fill(NaN)
  const notices: KeptNotices[] = peers.map((peer, i) => new KeptNotices({
    signer: { author: peer, sign: async () => SIGNATURE },
    verify: async () => true,
    counts: () => counts,
    up: () => upList,
    member: () => true,
    tell: () => {},
    publish: () => async (msg: Uint8Array) => {
      // a host away reaches nobody (kept.ts publishes again until a peer was sent it)
      if (!up.has(i)) return []
      if (o.tree) {
        const rec = await openKept(msg, async () => true)
        shown = { at: q.now, age: rec.ageMs, degraded: rec.chunks.degraded }
      }
      if (q.now >= warm && q.now < end) {
        records++
        recordBytes += msg.byteLength
        if (!Number.isNaN(untoldSince[i])) stale.push(q.now - untoldSince[i])
      }
      told[i] = counts.chunks.degraded
      untoldSince[i] = NaN
      return ['peer']
    },
    clock,
    interval,
    ...(o.tree
      ? {
          sendUp: async (parent: string, msg: Uint8Array) => {
            if (q.now >= warm && q.now < end) { ups++; upBytes += msg.byteLength }
            const to = index.get(parent)!
            // a sum refused (forged, out of range) would leave its group out: the run fails; one
            // not taken (or a parent away) is a failed send, which the sender tries again
            // (the answer carries the root's totals the parent holds, kept-service.ts: counted with the sums)
            return await new Promise<KeptSumAnswer>(resolve => {
              q.after(o.latencyMs, () => {
                if (!up.has(to)) { resolve({ taken: false }); return }
                void notices[to].takeSum(msg, peer).then(r => {
                  if (r === 'reject') refusedSums++
                  const root = notices[to].rootTotals()
                  if (root !== undefined && q.now >= warm && q.now < end) upBytes += root.byteLength
                  resolve({ taken: r === 'new', ...(root === undefined ? {} : { root }) })
                })
              })
            })
          }
        }
      : {})
  }))
  const index = new Map(peers.map((p, i) => [p, i]))
  const changed = (i: number): void => {
    if (told[i] === counts.chunks.degraded) untoldSince[i] = NaN
    else if (Number.isNaN(untoldSince[i])) untoldSince[i] = q.now
    notices[i].upChanged()
  }
  // the totals' age and error, each minute
  for (let t = warm; o.tree && t < end; t += 60_000) {
    q.at(t, () => {
      if (shown === undefined) return
      totalsStale.push(q.now - shown.at + shown.age)
      totalsError.push(Math.abs(shown.degraded - up.size * counts.chunks.degraded) / (up.size * o.chunks))
    })
  }
  // each host's first record, then the trace's changes
  for (const i of up) q.at(0, () => { changed(i) })
  for (const c of o.changes) {
    if (c.t >= end) break
    q.at(c.t, () => {
      if (c.up) up.add(c.host)
      else {
        up.delete(c.host)
        // a host away is not summed (totals are over the hosts up): nothing of it is stale
        untoldSince[c.host] = NaN
      }
      if (c.join === true) members++
      upList = [...up].map(i => peers[i])
      recount()
      if (q.now >= warm) changes++
      // the daemon's membership events: every host counts again; a host declared gone (away:
      // it mostly sees the others gone) forgets its children's sums, which its parent in turn
      // does now (a host down sends nothing)
      for (const i of up) changed(i)
      if (!c.up) notices[c.host].upChanged()
    })
  }
  for (let t = q.next; t !== undefined && t < end; t = q.next) {
    q.run(t)
    // the records' signing and publishing (promises) settle at this virtual time
    await new Promise(resolve => setImmediate(resolve))
  }
  for (const n of notices) n.stop()
  if (refusedSums > 0) throw new Error(`${refusedSums} sums sent up the tree were refused`)
  let untold = 0
  let untoldMax = 0
  for (const i of up) {
    if (Number.isNaN(untoldSince[i])) continue
    untold++
    untoldMax = Math.max(untoldMax, end - untoldSince[i])
  }
  stale.sort((a, b) => a - b)
  totalsStale.sort((a, b) => a - b)
  const pick = (xs: number[], q: number): number => xs.length === 0 ? 0 : xs[Math.min(xs.length - 1, Math.floor(xs.length * q))]
  const mean = stale.length === 0 ? 0 : stale.reduce((a, b) => a + b, 0) / stale.length
  return {
    records,
    recordBytes,
    ups,
    upBytes,
    totalsStaleMean: totalsStale.length === 0 ? 0 : totalsStale.reduce((a, b) => a + b, 0) / totalsStale.length,
    totalsStaleP99: pick(totalsStale, 0.99),
    totalsStaleMax: totalsStale.length === 0 ? 0 : totalsStale[totalsStale.length - 1],
    totalsErrorMean: totalsError.length === 0 ? 0 : totalsError.reduce((a, b) => a + b, 0) / totalsError.length,
    totalsErrorMax: totalsError.reduce((a, b) => Math.max(a, b), 0),
    recordsPerS: records / (o.duration / 1000),
    changes,
    staleMean: mean,
    staleP99: stale.length === 0 ? 0 : stale[Math.min(stale.length - 1, Math.floor(stale.length * 0.99))],
    staleMax: stale.length === 0 ? 0 : stale[stale.length - 1],
    untold,
    untoldMax
  }
}
