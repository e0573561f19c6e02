// The sim's idle model (harness/sim/idle.ts idleTraffic, which `npm run sim` runs) with host.ts's gossip settings: at
// 1,000 hosts and the 30-day churn trace's rates (`npm run sim`, seed 14: 14,571 hosts declared
// gone and 14,328 back after that over 720,000 host-hours; 5.99 copies of a message sent per
// host), with the keeper counts' messages measured here by running the code (harness/sim/kept.ts
// runKeptSim: every host's KeptNotices, node/keeper/kept.ts, in virtual time) on 100 hosts with
// the 1,000-host schedule and the trace's network-wide rate of hosts declared gone (every change
// moves every host's counts, so each host sends as at 1,000 hosts; `npm run sim` kept.h1000 on
// the trace itself: 9.14 sums up the tree a second network-wide, the root's totals 0.00184 a
// second), an idle host sends at most 2 kbit/s (issue 14) by the figure `total` counts, the
// keeper counts included; on gossipsub's default IHAVE settings (gossipFactor 0.25, 3
// heartbeats) it was 2.40 without them, and every host's record on gossip (kept.h1000.flat: 3.52
// a second) was over 100. That is with member messages spread by sync rounds (node/net/members.ts,
// harness/sim/pull.ts: each host gets each change about once), as darkfs runs them once every
// member takes them; on gossip (a network with hosts of older versions), with the features
// records carry now, it is 2.02. By kind, only churn grows with the network; on gossip it costs
// more than ten times the least any design could (each change heard once, bare), pulled less than
// three times that.
import assert from 'node:assert/strict'
import { IHAVE_FRAME_BYTES, IHAVE_ID_BYTES, idleTraffic } from '../../harness/sim/idle.ts'
import { runKeptSim } from '../../harness/sim/kept.ts'
import type { UpChange } from '../../harness/sim/kept.ts'
import { prng } from '../../harness/prng.ts'
import { modelPullSpread } from '../../harness/sim/pull.ts'
import { GOSSIP_DLAZY, GOSSIP_HISTORY_GOSSIP, memberRefreshMs } from '../../node/net/index.ts'
import { keptIntervalOf } from '../../node/keeper/index.ts'

const HOSTS = 1000
const GONE_HOST_HOUR = 14571 / 720_000
const TRACE = { hosts: HOSTS, copiesPerMessage: 5.99, goneHostHour: GONE_HOST_HOUR, returnedHostHour: 14328 / 720_000, keptRecordsPerS: 0 }
const kbit = (bytesPerSecond: number): number => bytesPerSecond * 8 / 1000
/**
 * Messages each host receives, and pushes it sends, per change by sync rounds at `hosts` (the
 * pull spread's model: test/sim/pull.test.ts holds it to the run on member tables).
 */
const pulled = (hosts: number): { pullBodiesPerChange: number, pullPushesPerChange: number } => {
  const p = modelPullSpread({ hosts, seed: 14, changes: 4, latencyMs: 30, downShare: 0.1 })
  return { pullBodiesPerChange: p.bodiesPerHost, pullPushesPerChange: p.pushesPerHost }
}

/** The keeper counts' rates at HOSTS, run (see the header): `small` hosts for `hours` after the warm-up. */
async function keptRates (small: number, hours: number): Promise<{ keptRecordsPerS: number, keptRecordBytes: number, keptUpsPerS: number, keptUpBytes: number, upsPerHostS: number }> {
  const rand = prng(14)
  const duration = hours * 3600_000
  const end = keptIntervalOf(HOSTS, 'root') + duration
  // hosts declared gone at the trace's rate network-wide at HOSTS, back after 30 minutes on average
  const perMs = HOSTS * GONE_HOST_HOUR / 3600_000
  const changes: UpChange[] = []
  const downUntil = new Map<number, number>()
  for (let t = -Math.log(1 - rand()) / perMs; t < end; t += -Math.log(1 - rand()) / perMs) {
    const host = Math.floor(rand() * small)
    if ((downUntil.get(host) ?? -1) > t) continue
    const back = t - 30 * 60_000 * Math.log(1 - rand())
    downUntil.set(host, back)
    changes.push({ t, host, up: false }, { t: back, host, up: true })
  }
  changes.sort((a, b) => a.t - b.t || a.host - b.host)
  const r = await runKeptSim({ hosts: small, joiners: 0, changes, duration, chunks: 10_000, width: 6, rand, interval: (_members, role) => keptIntervalOf(HOSTS, role), tree: true, latencyMs: 50 })
  assert.ok(r.changes > 20 && r.records > 0 && r.ups > 0, `${r.changes} changes, ${r.records} totals, ${r.ups} sums`)
  const upsPerHostS = r.ups / small / (duration / 1000)
  return { keptRecordsPerS: r.recordsPerS, keptRecordBytes: r.recordBytes / r.records, keptUpsPerS: upsPerHostS * HOSTS, keptUpBytes: r.upBytes / r.ups, upsPerHostS }
}

describe('sim idle traffic', function () {
  it('at 1,000 hosts on the churn trace\'s rates, the keeper counts\' as the code sends them: at most 2 kbit/s per host', async function () {
    this.timeout(120_000)
    const rates = await keptRates(100, 2)
    // the schedule bounds them: a sum up per host per up interval, the root's totals about one
    // per root interval (a few more while a new root settles)
    assert.ok(rates.upsPerHostS <= 1000 / keptIntervalOf(HOSTS, 'up'), `${rates.upsPerHostS} sums a host a second`)
    assert.ok(rates.keptRecordsPerS <= 2 * 1000 / keptIntervalOf(HOSTS, 'root'), `${rates.keptRecordsPerS} totals a second`)
    const idle = idleTraffic({ ...TRACE, ...rates, ...pulled(HOSTS) })
    assert.ok(kbit(idle.total) <= 2, `${kbit(idle.total).toFixed(2)} kbit/s`)
    const kept = idle.kept_digest + idle.kept_records + idle.kept_ihave + idle.kept_ups
    assert.ok(kept > 0)
    assert.ok(Math.abs(idle.total - (idle.digest + idle.ping + idle.records + idle.downs + idle.ihave + idle.sync_keys + kept)) < 1e-9, 'the keeper counts are in the total')
    assert.equal(idle.ihave, 0)
    assert.ok(idle.sync_keys > 0)
  })

  it('every host\'s keeper counts record on gossip, at the rate the sim measured before the tree, is far over', () => {
    const flat = idleTraffic({ ...TRACE, keptRecordsPerS: 3.52, keptRecordBytes: 187, keptUpsPerS: 0 })
    assert.ok(kbit(flat.total) > 50, `${kbit(flat.total).toFixed(2)} kbit/s`)
  })

  it('by kind: fixed + refresh + churn + table sync make the total; only churn grows with the network at a given churn per host', function () {
    const small = idleTraffic({ ...TRACE, tableSyncBytesPerS: 0.5 })
    assert.ok(Math.abs(small.total - (small.fixed + small.refresh + small.churn + small.table_sync)) < 1e-9)
    assert.ok(Math.abs(small.records - (small.records_refresh + small.records_returned)) < 1e-9)
    assert.ok(Math.abs(small.ihave - (small.ihave_refresh + small.ihave_churn)) < 1e-9)
    const large = idleTraffic({ ...TRACE, hosts: 10_000 })
    // connections are bounded and refreshes network-wide are too: the same at 1,000 and 10,000 hosts
    assert.ok(Math.abs(large.fixed - small.fixed) < 1e-9)
    assert.ok(Math.abs(large.refresh - small.refresh) < 1e-9)
    // every host hears of every member that goes and comes back: ten times the messages
    assert.ok(Math.abs(large.churn_messages_per_s - 10 * small.churn_messages_per_s) < 1e-9)
    assert.ok(large.churn > 5 * small.churn)
    // and so does the least it could cost, each host hearing each change once, bare
    assert.ok(Math.abs(large.churn_floor - 10 * small.churn_floor) < 1e-9)
    assert.ok(small.churn_floor < small.churn / 10)
  })

  it('member messages by sync rounds: each host gets each change about once, so churn costs less than three times the floor (on gossip, over ten times)', function () {
    for (const hosts of [1000, 10_000]) {
      const p = pulled(hosts)
      assert.ok(p.pullBodiesPerChange > 0.95 && p.pullBodiesPerChange < 1.2, `${hosts} hosts: ${p.pullBodiesPerChange} messages a host per change`)
      // the author's pushes: its connections, shared out over the network
      assert.ok(p.pullPushesPerChange > 0 && p.pullPushesPerChange <= 64 / (0.85 * hosts), `${hosts} hosts: ${p.pullPushesPerChange} pushes a host per change`)
      const pull = idleTraffic({ ...TRACE, hosts, tableSyncBytesPerS: 0.5, ...p })
      const gossip = idleTraffic({ ...TRACE, hosts })
      assert.ok(Math.abs(pull.total - (pull.fixed + pull.refresh + pull.churn + pull.table_sync)) < 1e-9)
      assert.ok(pull.churn < 3 * pull.churn_floor, `${hosts} hosts: churn ${kbit(pull.churn)} kbit/s, floor ${kbit(pull.churn_floor)}`)
      assert.ok(gossip.churn > 10 * gossip.churn_floor)
      // the refreshes too: bounded network-wide, and pulled
      assert.ok(pull.refresh < gossip.refresh / 5)
    }
  })

  it('IHAVE bytes follow Dlazy x the heartbeats advertised, not the connections', function () {
    // a DOWN notice every 10 s network-wide, beside the member records (one per host per
    // memberRefreshMs): fewer ids than heartbeats, so each id costs a frame and an id to
    // GOSSIP_DLAZY peers at each of GOSSIP_HISTORY_GOSSIP heartbeats, at 65 hosts (64
    // connections) as at 10,000 (64 connections too, 58 outside the mesh)
    for (const hosts of [65, 1000, 10_000]) {
      const msgs = 0.1 + hosts / (memberRefreshMs(hosts) / 1000)
      const ihave = idleTraffic({ ...TRACE, hosts, goneHostHour: 360 / hosts, returnedHostHour: 0 }).ihave
      const expected = GOSSIP_DLAZY * GOSSIP_HISTORY_GOSSIP * msgs * (IHAVE_FRAME_BYTES + IHAVE_ID_BYTES)
      assert.ok(Math.abs(ihave - expected) < 1e-6, `${hosts} hosts: ${ihave} vs ${expected}`)
    }
  })
})
