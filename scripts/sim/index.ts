// `npm run sim` (issue 14 item 7): darkfs's own placement, repair and membership logic against
// simulated networks of 1,000 and 10,000 hosts, no sockets (a discrete-event network in virtual
// time, harness/sim/). Prints the figures and merges them into bench/sim.json
// (a run keeps the keys of figures it did not measure). Seeded: the same seed, the same figures.
// Also the reconcile figures (reconcile.ts): bytes and rounds of a reconnect that missed 10 ops of
// --reconcile-ops (1,000,000), and of one where both sides made 10 ops apart.
//
//   npm run sim -- [--hosts 1000,10000] [--seed 14] [--chunks-per-host 500] [--chunks-per-host-large 50] [--move-chunks 100000] [--move-chunks-large 500000]
//                  [--factors 16,64,256,all] [--checks 20] [--reconcile-ops 1000000]
//                  [--gossip-hosts 1000,10000] [--gossip-ops 20] [--op-bytes 300] [--latency 30] [--gossip-down-share 0.1]
//                  [--pull-changes 20] [--pull-changes-large 4] [--pull-flooders 1] [--pull-forgers 1] [--pull-id-flooders 1] [--pull-charge all|apart] [--pull-away 0.05]
//                  [--churn-hosts 1000,10000] [--days 30] [--churn-per-hour 0.0417] [--leave-share 0.05] [--join-share 0.05]
//                  [--churn-chunks 10000] [--fill 0.1] [--failure-timeouts default,60,720,4320] [--failure-timeouts-large default,4320]
//                  [--repair-delay default] [--repair-spare 1] [--at-risk default,none,short:720,away:360] [--repair-order urgent] [--repair-jump yes] [--rebuilder holder]
//                  [--churn-runs eager,lazy,lookup]
//                  [--lookup-churn-per-hour 0.1] [--lookup-hours 24] [--lookup-every 10] [--kept-hosts 1000,10000] [--kept-hours 24] [--kept-hours-large 6] [--kept-runs tree,flat]
// --hosts '' skips the placement figures, --reconcile-ops 0 the reconcile ones, --gossip-hosts ''
// the dissemination and idle ones, --churn-hosts '' the churn and lookup ones.
// --chunks-per-host applies up to 2,000 hosts, --chunks-per-host-large beyond (the chunk count is
// bounded by time: fewer fragments per host there, and more sampling noise, which the noise.*
// and *.excess_stddev figures account for; placement.hN.chunks_sampled and move_chunks_sampled
// carry the sample sizes).
// --churn-chunks is the same at every size, so the churn figures cost no more at 10,000 hosts
// than at 1,000 (darkfs's plan per pass is most of it), but a sampled chunk stands for ten
// times the real ones there (churn.hN.chunks_real / chunks_sampled): six sampled fragments a host
// instead of sixty, and each sampled repair one transfer ten times as long.
//
// Gossip (gossip.ts, `gossip.h<N>.*`): an op of --op-bytes written on one host, spread over a
// gossipsub-like mesh (D 6, Dhi 12, the author floods its connections) on --latency ms links and
// the hosts' own uplinks, with --gossip-down-share of the hosts down: virtual ms to 50/99/100% of
// the live hosts, bytes each host sends per op. Keeper counts (kept.ts, `kept.h<N>.*`): every
// host's KeptNotices (node/keeper/kept.ts) run in virtual time on the churn trace's changes of the
// hosts up at --kept-hosts for --kept-hours (--kept-hours-large beyond 2,000 hosts; 0: not run), as the daemon
// runs it beyond the full mesh (summed along the tree, kept-tree.ts: `kept.h<N>.*`) and, with
// --kept-runs flat, as before the tree (every host's record on gossip: `kept.h<N>.flat.*`):
// messages, the network totals' age and error. Idle (`idle.h<N>.*`): a host's upload in kbit/s
// with nothing written, by source, from darkfs's periods, the churn trace's rates and the keeper
// counts' records measured (`total`: all of it), and by kind (`fixed`, `refresh`, `churn`,
// `table_sync`: harness/sim/idle.ts says which grow with the size).
// Member sync rounds (`members_pull.h<N>.*`, harness/sim/pull.ts runPullSpread): member messages
// spread by pull on the anti-entropy round, run on darkfs's own member tables (node/net/members.ts
// syncKeys, syncAnswer, takeSync; darkfs's once every member takes them), --pull-changes of them
// (--pull-changes-large beyond 2,000 hosts): virtual ms to 50/99/100% of the live hosts, messages
// each host receives per change, its request keys' bytes, rounds whose digests differed (each a
// table pull), and what the member gates (node/net/member-gate.ts: budgets per peer, the author
// check, the budget all askers share) did with --pull-flooders hosts flooding sync requests,
// --pull-id-flooders hosts flooding one connection from 16 peer ids each, and --pull-forgers
// hosts pushing others' records (`flood_calls_*`, `id_flood_calls_*`, `forged_pushes_*`; the run
// exits 1 when none of a kind's is refused; `honest_calls_refused`: calls of rounds by
// the rules refused, none expected, of `honest_calls`: with --pull-charge all, every round's as
// an apart round's, the recheck, changes, sync and whole table after it, charged at once);
// `members_pull.h<N>.away.*`: the same run with --pull-away of the live hosts away for each change
// (back at the next, past the windows: their first rounds find the tables apart), its apart
// rounds charged as they happen (--pull-charge apart) and their pulls run: the apart rounds, the
// messages their pulls moved (per host back), the honest calls refused (none expected), and the
// hosts still apart at the end (none expected; the run exits 1 on either, or when no round was
// apart); `members_pull.h<N>.model.*`: the model run before, the windows as rules; idle's
// figures count member messages so (and its `sync_keys`: the changes named in each round's
// request), the lookup figure's notice delay is their 99% time, and `idle.h<N>.members_gossip.*`
// is the idle cost with member messages on gossip (a network with hosts of older versions).
// Table sync (`table_sync.h<N>.*`, harness/sim/table-sync.ts): --table-sync-outages outages of
// the churn trace's mix on darkfs's own member tables (--table-down-share of the members down),
// the trace's rates of DOWN notices and returns missed meanwhile: what the host pulls back, and
// whether main's rule before (records only) left it apart; its mean, at --churn-per-hour outages
// per host-hour, is idle's `table_sync`.
// Churn (churn.ts, `churn.h<N>.*`): a --days trace (outages at --churn-per-hour per host while up,
// away minutes to days; --leave-share of the hosts gone for good, --join-share joining) against
// --churn-chunks sampled chunks standing for --fill of the hosts' disks, run with darkfs's plan,
// keeper, deliveries, handovers and repair cap on the hosts' uplinks in virtual time, for each of
// --failure-timeouts (minutes; 'default' is darkfs's DEFAULT_FAILURE_TIMEOUT_MS, whose figures
// carry no timeout in their key, run eagerly (no repair delay: every host declared gone is
// rebuilt for at once, as a host given only --failure-timeout repairs) and with lazy repair as
// darkfs runs by default (`.lazy.` keys) at --repair-delay minutes ('default':
// DEFAULT_REPAIR_DELAY_MS, 72 h; --repair-spare fragments
// beyond k kept live, keeper/lazy.ts REPAIR_SPARE; --at-risk: one lazy run per at-risk rule on
// the same trace, 'default' lazy.ts's AT_RISK_DELAY_MS and AT_RISK_CLOCK, 'none' waiting the whole
// repair delay, CLOCK:MINUTES another (lazy.ts stopWaiting()); other choices carry them in their key); the
// longer timeouts run eager; --failure-timeouts-large beyond 2,000 hosts, for time);
// --repair-order: the order keepers take the chunks waiting for their repair cap in ('fifo': as
// they came, carried in the keys; 'urgent', darkfs's: fewest live fragments first, and a chunk at k live fragments or fewer goes
// ahead of the queued repairs, as the Repairer orders its pass: lazy.ts byUrgency());
// --repair-jump no: a chunk found short of k that a returning host ranks first for waits in its
// keeper's queue like any other (`.no_jump` in the keys; darkfs's, yes: it goes ahead of every
// repair queued, repair.ts requeue()); --rebuilder keeper: a chunk's keeper rebuilds it whatever
// its uplink (`.rebuilder_keeper` in the keys; darkfs's, holder: a live holder on a much faster
// uplink rebuilds for a thin keeper, repair.ts rebuilderOf()); --churn-runs: which of the first timeout's eager and lazy
// runs and the lookup figures to run (the oracle always runs); and an
// oracle that sees the permanent losses and joins only: repair bytes ÷ the oracle's, chunks lost
// (and those lost whatever the policy: their last m + 1 fragments gone within a failure timeout),
// repair durations, uplink use. Lookup (`lookup.h<N>.*`): reads every --lookup-every virtual s
// find k fragments from the member table, steady and over --lookup-hours at
// --lookup-churn-per-hour, a reader's table missing DOWN notices younger than the gossip's 99%
// time: extra round trips (rounds of asks beyond the first).
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { runPlacement } from './placement.ts'
import { runReconcile } from './reconcile.ts'
import { idleTraffic, modelPullSpread, runDissemination, runPullSpread, GOSSIP_OVERHEAD_BYTES } from './gossip.ts'
import { runChurnFigures } from './churn.ts'
import { runTableSync } from '../../harness/sim/table-sync.ts'
import { DIGEST_CALL_ANSWER_BYTES, DIGEST_CALL_SENT_BYTES } from '../../harness/sim/idle.ts'
import { runKeptFigures } from './kept.ts'
import { TRACE_OPTIONS, traceSettings } from './trace.ts'
import type { KeptRates } from './kept.ts'
import { AT_RISK_CLOCK, AT_RISK_DELAY_MS, REPAIR_SPARE } from '../../node/keeper/index.ts'
import type { AtRiskClock } from '../../node/keeper/index.ts'
import { DEFAULT_FAILURE_TIMEOUT_MS, DEFAULT_REPAIR_DELAY_MS, TABLE_SYNC_MS } from '../../node/net/index.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000,10000' },
    seed: { type: 'string', default: '14' },
    'chunks-per-host': { type: 'string', default: '500' },
    'chunks-per-host-large': { type: 'string', default: '50' },
    'move-chunks': { type: 'string', default: '100000' },
    'move-chunks-large': { type: 'string', default: '500000' },
    factors: { type: 'string', default: '16,64,256,all' },
    checks: { type: 'string', default: '20' },
    'reconcile-ops': { type: 'string', default: '1000000' },
    'gossip-hosts': { type: 'string', default: '1000,10000' },
    'gossip-ops': { type: 'string', default: '20' },
    'op-bytes': { type: 'string', default: '300' },
    latency: { type: 'string', default: '30' },
    'gossip-down-share': { type: 'string', default: '0.1' },
    'pull-changes': { type: 'string', default: '20' },
    'pull-changes-large': { type: 'string', default: '4' },
    'pull-flooders': { type: 'string', default: '1' },
    'pull-forgers': { type: 'string', default: '1' },
    'pull-id-flooders': { type: 'string', default: '1' },
    'pull-charge': { type: 'string', default: 'all' },
    'pull-away': { type: 'string', default: '0.05' },
    'churn-hosts': { type: 'string', default: '1000,10000' },
    ...TRACE_OPTIONS,
    'churn-chunks': { type: 'string', default: '10000' },
    'failure-timeouts': { type: 'string', default: 'default,60,720,4320' },
    'failure-timeouts-large': { type: 'string', default: 'default,4320' },
    'repair-delay': { type: 'string', default: 'default' },
    'repair-spare': { type: 'string', default: String(REPAIR_SPARE) },
    'at-risk': { type: 'string', default: 'default' },
    'repair-order': { type: 'string', default: 'urgent' },
    'repair-jump': { type: 'string', default: 'yes' },
    rebuilder: { type: 'string', default: 'holder' },
    'churn-runs': { type: 'string', default: 'eager,lazy,lookup' },
    'lookup-churn-per-hour': { type: 'string', default: '0.1' },
    'lookup-hours': { type: 'string', default: '24' },
    'lookup-every': { type: 'string', default: '10' },
    'table-sync-outages': { type: 'string', default: '200' },
    'table-down-share': { type: 'string', default: '0.15' },
    'kept-hosts': { type: 'string', default: '1000,10000' },
    'kept-hours': { type: 'string', default: '24' },
    'kept-hours-large': { type: 'string', default: '6' },
    'kept-runs': { type: 'string', default: 'tree' }
  }
})
const list = (s: string): number[] => s.split(',').filter(x => x !== '').map(x => x === 'all' ? Infinity : Number(x))
const seed = Number(values.seed)
const results: Record<string, number | string> = { 'sim.date': new Date().toISOString(), 'sim.seed': seed }
const log = (line: string): void => { process.stdout.write(`  ${line}\n`) }

for (const hosts of list(values.hosts)) {
  process.stdout.write(`sim placement, ${hosts} hosts\n`)
  const figures = runPlacement({
    hosts,
    seed: seed + hosts,
    chunksPerHost: Number(hosts <= 2000 ? values['chunks-per-host'] : values['chunks-per-host-large']),
    moveChunks: Number(hosts <= 2000 ? values['move-chunks'] : values['move-chunks-large']),
    // rendezvous over every member costs hosts hashes per chunk: measured up to 2,000 hosts;
    // a factor whose neighbourhood is the whole network is measured once, as 'all'
    factors: [...new Set(list(values.factors).map(f => f * 6 >= hosts ? Infinity : f))].filter(f => Number.isFinite(f) || hosts <= 2000),
    // targets() over 10,000 members re-derives every kad id (its memo holds 4,096): few checks there
    checks: hosts > 4096 ? Math.min(2, Number(values.checks)) : Number(values.checks),
    log
  })
  for (const [k, v] of Object.entries(figures)) {
    process.stdout.write(`  ${k.padEnd(52)} ${v}\n`)
    results[k] = v
  }
}

const reconcileOps = Number(values['reconcile-ops'])
if (reconcileOps > 0) {
  process.stdout.write(`sim reconcile, ${reconcileOps} ops\n`)
  for (const [k, v] of Object.entries(runReconcile({ ops: reconcileOps, seed, log }))) {
    process.stdout.write(`  ${k.padEnd(52)} ${v}\n`)
    results[k] = v
  }
}

const put = (figures: Record<string, number>): void => {
  for (const [k, v] of Object.entries(figures)) {
    process.stdout.write(`  ${k.padEnd(52)} ${v}\n`)
    results[k] = v
  }
}
const latency = Number(values.latency)
const gossipHosts = list(values['gossip-hosts'])
const churnHosts = list(values['churn-hosts'])
/** Per network size: copies of a gossip message a host sends, and the 99% time (the DOWN notice delay). */
const spread = new Map<number, { copies: number, t99: number }>()
for (const hosts of gossipHosts) {
  process.stdout.write(`sim gossip, ${hosts} hosts\n`)
  const t = performance.now()
  const opBytes = Number(values['op-bytes'])
  const g = runDissemination({ hosts, seed: seed + hosts, opBytes, latencyMs: latency, ops: Number(values['gossip-ops']), downShare: Number(values['gossip-down-share']) })
  log(`h${hosts}: ${values['gossip-ops']} ops (${((performance.now() - t) / 1000).toFixed(1)} s)`)
  spread.set(hosts, { copies: g.bytesPerHostMean / (opBytes + GOSSIP_OVERHEAD_BYTES), t99: g.t99 })
  const pre = `gossip.h${hosts}`
  put({
    [`${pre}.op_bytes`]: opBytes,
    [`${pre}.latency_ms`]: latency,
    [`${pre}.down_share`]: Number(values['gossip-down-share']),
    [`${pre}.mesh_degree_mean`]: round(g.meshDegreeMean),
    [`${pre}.mesh_degree_max`]: g.meshDegreeMax,
    [`${pre}.t50_ms`]: Math.round(g.t50),
    [`${pre}.t99_ms`]: Math.round(g.t99),
    [`${pre}.t99_mean_ms`]: Math.round(g.t99Mean),
    [`${pre}.t100_ms`]: Number.isFinite(g.t100) ? Math.round(g.t100) : -1,
    [`${pre}.missed_hosts`]: g.missed,
    [`${pre}.bytes_per_host_per_op_mean`]: Math.round(g.bytesPerHostMean),
    [`${pre}.bytes_per_host_per_op_max`]: Math.round(g.bytesPerHostMax),
    [`${pre}.copies_received_per_host_per_op`]: round(g.copiesPerHost)
  })
}

/**
 * Per network size: member messages spread by sync rounds (runPullSpread; darkfs's once every
 * member takes them): messages each host receives per change, and the 99% time.
 */
const pullSpread = new Map<number, { bodies: number, pushes: number, t99: number }>()
for (const hosts of gossipHosts) {
  process.stdout.write(`sim member sync rounds, ${hosts} hosts\n`)
  const t = performance.now()
  const changes = Number(values[hosts <= 2000 ? 'pull-changes' : 'pull-changes-large'])
  const o = { hosts, seed: seed + hosts, changes, latencyMs: latency, downShare: Number(values['gossip-down-share']) }
  const charge = values['pull-charge']
  if (charge !== 'all' && charge !== 'apart') throw new Error(`sim: --pull-charge is all or apart, got ${String(charge)}`)
  const bad = { flooders: Number(values['pull-flooders']), forgers: Number(values['pull-forgers']), idFlooders: Number(values['pull-id-flooders']) }
  const p = await runPullSpread({ ...o, ...bad, charge })
  log(`h${hosts}: ${changes} changes on member tables (${((performance.now() - t) / 1000).toFixed(1)} s)`)
  pullSpread.set(hosts, { bodies: p.bodiesPerHost, pushes: p.pushesPerHost, t99: p.t99 })
  const pre = `members_pull.h${hosts}`
  put({
    [`${pre}.changes`]: changes,
    [`${pre}.t50_ms`]: Math.round(p.t50),
    [`${pre}.t99_ms`]: Number.isFinite(p.t99) ? Math.round(p.t99) : -1,
    [`${pre}.t99_mean_ms`]: Number.isFinite(p.t99Mean) ? Math.round(p.t99Mean) : -1,
    [`${pre}.t100_ms`]: Number.isFinite(p.t100) ? Math.round(p.t100) : -1,
    [`${pre}.missed_hosts`]: p.missed,
    [`${pre}.messages_per_host_per_change`]: round(p.bodiesPerHost),
    [`${pre}.duplicates_per_host_per_change`]: round(p.duplicatesPerHost),
    [`${pre}.pushes_per_host_per_change`]: round(p.pushesPerHost, 6),
    [`${pre}.sync_key_bytes_per_host_per_change`]: round(p.syncKeyBytesPerHost, 1),
    [`${pre}.apart_rounds_per_host_per_change`]: round(p.apartPerHost, 6),
    [`${pre}.flood_calls_answered`]: p.gate.floodAnswered,
    [`${pre}.flood_calls_refused`]: p.gate.floodRefused,
    [`${pre}.id_flood_calls_answered`]: p.gate.idFloodAnswered,
    [`${pre}.id_flood_calls_refused`]: p.gate.idFloodRefused,
    [`${pre}.flood_calls_unread`]: p.gate.floodUnread,
    [`${pre}.forged_pushes_refused`]: p.gate.forgedRefused,
    [`${pre}.forged_pushes_dropped`]: p.gate.forgedDropped,
    [`${pre}.forged_pushes_taken`]: p.gate.forgedTaken,
    [`${pre}.honest_calls`]: p.gate.honestCalls,
    [`${pre}.honest_calls_refused`]: p.gate.honestRefused
  })
  // invariants, not goals: a forged record taken or an honest round refused is a defect, and so
  // is a gate that refused none of the flooders' calls, or kept none of the forgers' pushes out
  const defects = [
    ...p.gate.forgedTaken > 0 ? [`${p.gate.forgedTaken} forged push(es) taken`] : [],
    ...p.gate.honestRefused > 0 ? [`${p.gate.honestRefused} honest call(s) refused`] : [],
    ...bad.flooders > 0 && p.gate.floodRefused === 0 ? ['no flood call refused'] : [],
    ...bad.idFlooders > 0 && p.gate.idFloodRefused === 0 ? ['no many-ids flood call refused'] : [],
    ...bad.forgers > 0 && p.gate.forgedRefused + p.gate.forgedDropped === 0 ? ['no forged push refused'] : []
  ]
  if (defects.length > 0) {
    console.error(`sim: ${hosts} hosts: ${defects.join(', ')}`)
    process.exitCode = 1
  }
  // hosts away for a change and back at the next: apart rounds, charged as they happen, pulled
  const awayShare = Number(values['pull-away'])
  if (awayShare > 0) {
    const t2 = performance.now()
    const a = await runPullSpread({ ...o, ...bad, charge: 'apart', awayShare })
    log(`h${hosts}: ${changes} changes, ${a.awayHostChanges} host-changes away (${((performance.now() - t2) / 1000).toFixed(1)} s)`)
    put({
      [`${pre}.away.share`]: awayShare,
      [`${pre}.away.host_changes_away`]: a.awayHostChanges,
      [`${pre}.away.t99_ms`]: Number.isFinite(a.t99) ? Math.round(a.t99) : -1,
      [`${pre}.away.missed_hosts`]: a.missed,
      [`${pre}.away.apart_rounds`]: a.apartRounds,
      [`${pre}.away.apart_rounds_per_host_back`]: round(a.apartRounds / Math.max(1, a.awayHostChanges), 3),
      [`${pre}.away.pulled_messages`]: a.apartPulledMessages,
      [`${pre}.away.pulled_messages_per_host_back`]: round(a.apartPulledMessages / Math.max(1, a.awayHostChanges), 1),
      [`${pre}.away.apart_at_end`]: a.apartAtEnd,
      [`${pre}.away.id_flood_calls_answered`]: a.gate.idFloodAnswered,
      [`${pre}.away.id_flood_calls_refused`]: a.gate.idFloodRefused,
      [`${pre}.away.honest_calls`]: a.gate.honestCalls,
      [`${pre}.away.honest_calls_refused`]: a.gate.honestRefused
    })
    const awayDefects = [
      ...a.awayHostChanges === 0 ? [`--pull-away ${awayShare}: no host drawn away (nothing checked)`] : [],
      ...a.gate.honestRefused > 0 ? [`${a.gate.honestRefused} honest call(s) refused with hosts away`] : [],
      ...a.awayHostChanges > 0 && a.apartRounds === 0 ? ['hosts away, no round apart'] : [],
      ...a.apartAtEnd > 0 ? [`${a.apartAtEnd} host(s) still apart at the end`] : [],
      ...a.missed > 0 ? [`${a.missed} host(s) missed a change with hosts away`] : []
    ]
    if (awayDefects.length > 0) {
      console.error(`sim: ${hosts} hosts: ${awayDefects.join(', ')}`)
      process.exitCode = 1
    }
  }
  // the model the sim ran before (the windows as rules on arrival times), same seed and changes
  const m = modelPullSpread(o)
  put({
    [`${pre}.model.t50_ms`]: Math.round(m.t50),
    [`${pre}.model.t99_ms`]: Number.isFinite(m.t99) ? Math.round(m.t99) : -1,
    [`${pre}.model.t100_ms`]: Number.isFinite(m.t100) ? Math.round(m.t100) : -1,
    [`${pre}.model.messages_per_host_per_change`]: round(m.bodiesPerHost)
  })
}

const timeoutsOf = (s: string): number[] => s.split(',').filter(x => x !== '').map(x => x === 'default' ? DEFAULT_FAILURE_TIMEOUT_MS : Number(x) * 60_000)
/** Per network size: hosts declared gone and back after, per host per hour (for the idle figure). */
const churnRates = new Map<number, { gone: number, returned: number }>()
for (const hosts of churnHosts) {
  process.stdout.write(`sim churn, ${hosts} hosts\n`)
  const figures = runChurnFigures({
    ...traceSettings(values, seed, hosts),
    chunks: Number(values['churn-chunks']),
    timeouts: timeoutsOf(values[hosts <= 2000 ? 'failure-timeouts' : 'failure-timeouts-large']),
    repairDelayMs: values['repair-delay'] === 'default' ? DEFAULT_REPAIR_DELAY_MS : Number(values['repair-delay']) * 60_000,
    repairSpare: Number(values['repair-spare']),
    atRisk: values['at-risk'].split(',').filter(x => x !== '').map(atRiskOf),
    order: values['repair-order'] === 'urgent' ? 'urgent' : 'fifo',
    jump: values['repair-jump'] !== 'no',
    rebuilder: values.rebuilder === 'keeper' ? 'keeper' : 'holder',
    runs: new Set(values['churn-runs'].split(',')),
    latencyMs: latency,
    lookupChurnPerHour: Number(values['lookup-churn-per-hour']),
    lookupDuration: Number(values['lookup-hours']) * 3600_000,
    lookupEveryMs: Number(values['lookup-every']) * 1000,
    // a reader misses a DOWN notice for as long as it takes to reach 99% of the hosts: by sync
    // rounds (darkfs's once every member takes them), else gossip
    noticeDelayMs: pullSpread.get(hosts)?.t99 ?? spread.get(hosts)?.t99 ?? 5000,
    log
  })
  const hostHours = hosts * Number(values.days) * 24
  // (from the eager run, when it ran: hosts declared gone and back do not depend on the repair delay)
  if (figures[`churn.h${hosts}.declared_gone`] !== undefined) churnRates.set(hosts, { gone: figures[`churn.h${hosts}.declared_gone`] / hostHours, returned: figures[`churn.h${hosts}.returned_after_gone`] / hostHours })
  put(figures)
}

/** Per network size: the keeper counts' messages along the tree (scripts/sim/kept.ts), for the idle figure. */
const keptRates = new Map<number, KeptRates>()
const keptRuns = new Set(values['kept-runs'].split(','))
for (const hosts of list(values['kept-hosts'])) {
  const keptHours = Number(values[hosts <= 2000 ? 'kept-hours' : 'kept-hours-large'])
  if (!(keptHours > 0)) continue
  for (const tree of [true, false].filter(t => keptRuns.has(t ? 'tree' : 'flat'))) {
    process.stdout.write(`sim keeper counts, ${hosts} hosts\n`)
    const kept = await runKeptFigures({
      ...traceSettings(values, seed, hosts),
      windowMs: keptHours * 3600_000,
      tree,
      latencyMs: latency,
      log
    })
    if (tree) keptRates.set(hosts, kept.rates)
    // (the churn rates of the same trace, when the churn run did not give them)
    if (!churnRates.has(hosts)) churnRates.set(hosts, { gone: kept.rates.goneHostHour, returned: kept.rates.returnedHostHour })
    put(kept.figures)
  }
}

for (const hosts of gossipHosts) {
  process.stdout.write(`sim idle traffic, ${hosts} hosts\n`)
  // churn rates measured at this size, else at the nearest size measured, else none
  const near = [...churnRates.keys()].sort((a, b) => Math.abs(a - hosts) - Math.abs(b - hosts))[0]
  const rates = near === undefined ? { gone: 0, returned: 0 } : churnRates.get(near)!
  // the keeper counts' records measured at this size (they follow the size: keptInterval), else none were
  const kept = keptRates.get(hosts)
  if (kept === undefined && rates.gone > 0) log(`h${hosts}: keeper counts not run at this size (--churn-hosts, --kept-hours): their records are left out`)
  const kbit = (bytesPerSecond: number): number => round(bytesPerSecond * 8 / 1000)
  let tableSyncBytesPerS = 0
  const outages = Number(values['table-sync-outages'])
  if (outages > 0 && rates.gone + rates.returned > 0) {
    const t = performance.now()
    const ts = await runTableSync({ hosts, seed: seed + hosts, goneHostHour: rates.gone, returnedHostHour: rates.returned, downShare: Number(values['table-down-share']), outages })
    log(`h${hosts}: table sync after ${outages} outages (${((performance.now() - t) / 1000).toFixed(1)} s)`)
    // each outage: the changes pulled back and the digest call that checks them
    const perOutage = ts.pulledBytesMean + DIGEST_CALL_SENT_BYTES + DIGEST_CALL_ANSWER_BYTES
    tableSyncBytesPerS = Number(values['churn-per-hour']) * perOutage / 3600
    const tpre = `table_sync.h${hosts}`
    put({
      [`${tpre}.outages`]: outages,
      [`${tpre}.outage_hours_mean`]: round(ts.outageHoursMean),
      [`${tpre}.missed_per_outage_mean`]: round(ts.missedMean, 1),
      [`${tpre}.table_bytes`]: ts.tableBytes,
      [`${tpre}.pulled_bytes_mean`]: Math.round(ts.pulledBytesMean),
      [`${tpre}.pulled_bytes_max`]: ts.pulledBytesMax,
      [`${tpre}.whole_tables`]: ts.wholeTables,
      [`${tpre}.apart_after`]: ts.apart,
      // main's rule before (records only): outages after which the host stayed apart, pulling a
      // whole table (of records) at every round: its upload per host while so
      [`${tpre}.apart_before`]: ts.apartBefore,
      [`${tpre}.table_bytes_before`]: ts.tableBytesBefore,
      [`${tpre}.apart_before_kbit_s`]: kbit(ts.tableBytesBefore / ((TABLE_SYNC_MS) / 1000))
    })
  }
  const idleOptions = {
    hosts,
    copiesPerMessage: spread.get(hosts)!.copies,
    goneHostHour: rates.gone,
    returnedHostHour: rates.returned,
    tableSyncBytesPerS,
    keptRecordsPerS: kept?.recordsPerS ?? 0,
    keptRecordBytes: kept?.recordBytes,
    keptUpsPerS: kept?.upsPerS,
    keptUpBytes: kept?.upBytes
  }
  // member messages by sync rounds (darkfs's once every member takes them), and on gossip (a
  // network with hosts of older versions): `idle.h<N>.members_gossip.*`
  const idle = idleTraffic({ ...idleOptions, pullBodiesPerChange: pullSpread.get(hosts)!.bodies, pullPushesPerChange: pullSpread.get(hosts)!.pushes })
  const pre = `idle.h${hosts}`
  put(Object.fromEntries(Object.entries(idle).map(([k, v]) => k.endsWith('_per_s') ? [`${pre}.${k}`, round(v)] : [`${pre}.${k}_kbit_s`, kbit(v)])))
  const onGossip = idleTraffic(idleOptions)
  put(Object.fromEntries(['total', 'refresh', 'churn'].map(k => [`${pre}.members_gossip.${k}_kbit_s`, kbit(onGossip[k])])))
}

await mkdir(join(root, 'bench'), { recursive: true })
const file = join(root, 'bench', 'sim.json')
const earlier = await readFile(file, 'utf8').then(t => JSON.parse(t) as Record<string, unknown>, () => ({}))
await writeFile(file, JSON.stringify({ ...earlier, ...results }, null, 2) + '\n')
process.stdout.write(`wrote ${file}\n`)

/** An --at-risk item: 'default' (lazy.ts's), 'none' (wait the whole repair delay), or CLOCK:MINUTES ('short:720'). */
function atRiskOf (s: string): { delayMs: number, clock: AtRiskClock } {
  if (s === 'default') return { delayMs: AT_RISK_DELAY_MS, clock: AT_RISK_CLOCK }
  if (s === 'none') return { delayMs: Infinity, clock: AT_RISK_CLOCK }
  const [clock, minutes] = s.split(':')
  if ((clock !== 'away' && clock !== 'short') || !(Number(minutes) >= 0)) throw new Error(`--at-risk: ${s}: default, none, or away:MINUTES / short:MINUTES`)
  return { delayMs: Number(minutes) * 60_000, clock }
}

function round (x: number, digits = 4): number {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x
}
