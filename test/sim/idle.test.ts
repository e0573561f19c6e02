// The sim's idle model (harness/sim/idle.ts idleTraffic, which `npm run sim` runs) with host.ts's gossip settings: at
// 1,000 hosts and the 30-day churn trace's rates (`npm run sim`, seed 14: 14,571 hosts declared
// gone and 14,328 back after that over 720,000 host-hours; 5.99 copies of a message sent per
// host), with the keeper counts' messages the sim measured on that trace (kept.h1000: 9.14 sums
// sent up the tree a second network-wide, 193 bytes each; the root's totals on gossip 0.00184 a
// second, 200 bytes), an idle host sends at most 2 kbit/s (issue 14) by the figure `total`
// counts, the keeper counts included; on gossipsub's default IHAVE settings (gossipFactor 0.25, 3
// heartbeats) it was 2.40 without them, and every host's record on gossip (kept.h1000.flat: 3.52
// a second) was over 100.
import assert from 'node:assert/strict'
import { IHAVE_FRAME_BYTES, IHAVE_ID_BYTES, idleTraffic } from '../../harness/sim/idle.ts'
import { GOSSIP_DLAZY, GOSSIP_HISTORY_GOSSIP, memberRefreshMs } from '../../node/net/index.ts'

const KEPT = { keptRecordsPerS: 0.00184, keptRecordBytes: 200, keptUpsPerS: 9.14, keptUpBytes: 193 }
const TRACE = { hosts: 1000, copiesPerMessage: 5.99, goneHostHour: 14571 / 720_000, returnedHostHour: 14328 / 720_000, ...KEPT }
const kbit = (bytesPerSecond: number): number => bytesPerSecond * 8 / 1000

describe('sim idle traffic', function () {
  it('at 1,000 hosts on the churn trace\'s rates: at most 2 kbit/s per host', function () {
    const idle = idleTraffic(TRACE)
    assert.ok(kbit(idle.total) <= 2, `${kbit(idle.total).toFixed(2)} kbit/s`)
    const kept = idle.kept_digest + idle.kept_records + idle.kept_ihave + idle.kept_ups
    assert.ok(kept > 0)
    assert.ok(Math.abs(idle.total - (idle.digest + idle.ping + idle.records + idle.downs + idle.ihave + kept)) < 1e-9, 'the keeper counts are in the total')
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
