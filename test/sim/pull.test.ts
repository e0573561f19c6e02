// The member sync spread run on darkfs's own member tables (harness/sim/pull.ts runPullSpread:
// MemberTable's syncKeys, syncAnswer and takeSync in virtual time): a join and a leave reach
// every live host, each about once, no round finds two tables apart (each would be a table
// pull), and the model the idle figure used before (modelPullSpread) is near it.
import { strict as assert } from 'node:assert'
import { FLOOD_CALLS, FLOOD_IDS, modelPullSpread, runPullSpread } from '../../harness/sim/pull.ts'
import { ALL_CALLS_BURST, ALL_CALLS_REFILL_MS, ALL_CALLS_RESERVE, CALL_BURST, CALL_REFILL_MS, MEMBER_OFFER_MS, SYNC_KEY_BYTES, TABLE_SYNC_MS } from '../../node/net/index.ts'

describe('sim member sync spread on member tables', function () {
  it('a join and a leave reach every live host about once, with no table apart, near the model', async function () {
    this.timeout(120_000)
    const o = { hosts: 300, seed: 30, changes: 2, latencyMs: 30, downShare: 0.1 }
    const real = await runPullSpread(o)
    assert.equal(real.missed, 0)
    assert.ok(Number.isFinite(real.t100), `t100 ${real.t100}`)
    assert.equal(real.apartPerHost, 0)
    assert.ok(real.bodiesPerHost > 0.95 && real.bodiesPerHost < 1.2, `${real.bodiesPerHost} messages a host per change`)
    assert.ok(real.pushesPerHost > 0)
    // each host names the change in its requests from when it took it, for a few rounds
    assert.ok(real.syncKeyBytesPerHost >= SYNC_KEY_BYTES && real.syncKeyBytesPerHost <= SYNC_KEY_BYTES * 2 * MEMBER_OFFER_MS / TABLE_SYNC_MS + SYNC_KEY_BYTES, `${real.syncKeyBytesPerHost} key bytes a host per change`)
    const model = modelPullSpread(o)
    assert.ok(Math.abs(real.t99Mean - model.t99Mean) < 2 * TABLE_SYNC_MS, `t99 ${real.t99Mean} on tables, ${model.t99Mean} modelled`)
    assert.ok(Math.abs(real.bodiesPerHost - model.bodiesPerHost) < 0.1)
    const { honestCalls, ...gate } = real.gate
    assert.ok(honestCalls > 0)
    assert.deepEqual(gate, { floodAnswered: 0, floodRefused: 0, idFloodAnswered: 0, idFloodRefused: 0, floodUnread: 0, forgedRefused: 0, forgedDropped: 0, forgedTaken: 0, honestRefused: 0 })
  })

  it('a host flooding sync requests and one pushing others\' records, behind the member gates: the flood refused past its budget, the forged records none taken, no call of a round by the rules refused (every round charged as an apart one: five calls), the spread as without them', async function () {
    this.timeout(120_000)
    const o = { hosts: 300, seed: 30, changes: 2, latencyMs: 30, downShare: 0.1 }
    const clean = await runPullSpread(o)
    const bad = await runPullSpread({ ...o, flooders: 1, forgers: 1, charge: 'all' })
    const g = bad.gate
    assert.equal(g.honestRefused, 0)
    // every round's five calls charged: the recheck, changes, sync and whole table after the sync
    assert.equal(g.honestCalls, 5 * clean.gate.honestCalls, JSON.stringify(g))
    assert.equal(g.forgedTaken, 0, JSON.stringify(g))
    assert.ok(g.forgedRefused > 0 && g.forgedDropped > g.forgedRefused, JSON.stringify(g))
    assert.ok(g.floodRefused > 0, JSON.stringify(g))
    // each connection answers the flooder at most its burst and one call per CALL_REFILL_MS: per
    // round of the flooder, far below its FLOOD_CALLS
    const answeredPerRound = g.floodAnswered / ((g.floodAnswered + g.floodRefused) / FLOOD_CALLS)
    assert.ok(answeredPerRound <= CALL_BURST + TABLE_SYNC_MS / CALL_REFILL_MS, `${answeredPerRound} flood calls answered a connection per round`)
    const { gate: _g, ...spread } = bad
    // (no round apart here: the charges of apart rounds are those of --pull-charge all's)
    assert.equal(clean.apartPerHost, 0)
    const { gate: _c, ...before } = clean
    assert.deepEqual(spread, before)
  })

  it('hosts away for a change and back at the next (past the windows): their rounds find the tables apart, pull, and every table is in step at the end; the apart rounds charged as they happen, no call by the rules refused, the many-ids flood still bounded (note-s32 Left 8: no round was ever apart)', async function () {
    this.timeout(120_000)
    const o = { hosts: 300, seed: 30, changes: 4, latencyMs: 30, downShare: 0.1 }
    const clean = await runPullSpread({ ...o, idFlooders: 1, charge: 'apart' as const })
    assert.equal(clean.apartRounds, 0)
    const r = await runPullSpread({ ...o, idFlooders: 1, charge: 'apart', awayShare: 0.05 })
    assert.ok(r.awayHostChanges > 0, JSON.stringify(r))
    assert.ok(r.apartRounds > 0, JSON.stringify(r))
    // each apart round pulled: none left apart, none of the hosts present missed a change
    assert.equal(r.apartAtEnd, 0, JSON.stringify(r))
    assert.equal(r.missed, 0, JSON.stringify(r))
    assert.ok(r.apartPulledMessages > 0, JSON.stringify(r))
    // the apart rounds' five calls each charged: more calls than without them, none refused
    assert.equal(r.gate.honestRefused, 0, JSON.stringify(r.gate))
    assert.ok(r.gate.idFloodRefused > 0, JSON.stringify(r.gate))
    console.log(`      ${r.awayHostChanges} host-changes away: ${r.apartRounds} apart rounds, ${r.apartPulledMessages} messages pulled, ${r.gate.honestCalls} honest calls (${r.gate.honestRefused} refused)`)
  })

  it('an insider flooding one host from FLOOD_IDS peer ids at each of its rounds (the shared budget and admit() met): its calls refused past the shared budget and its reserve, many before their frame is read, no call of a round by the rules refused (every round charged as an apart one), the spread as without it', async function () {
    this.timeout(120_000)
    const o = { hosts: 300, seed: 30, changes: 2, latencyMs: 30, downShare: 0.1 }
    const clean = await runPullSpread({ ...o, charge: 'all' })
    const bad = await runPullSpread({ ...o, idFlooders: 1, charge: 'all' })
    const g = bad.gate
    assert.equal(g.honestRefused, 0, JSON.stringify(g))
    assert.equal(g.honestCalls, clean.gate.honestCalls)
    assert.ok(g.idFloodRefused > 0 && g.floodUnread > 0, JSON.stringify(g))
    // per round of the insider, its ids together get at most the shared budget's burst, reserve and refill of a round
    const rounds = (g.idFloodAnswered + g.idFloodRefused) / (FLOOD_IDS * FLOOD_CALLS)
    assert.ok(g.idFloodAnswered / rounds <= ALL_CALLS_BURST + ALL_CALLS_RESERVE + TABLE_SYNC_MS / ALL_CALLS_REFILL_MS, `${g.idFloodAnswered / rounds} calls answered the ids per round`)
    assert.ok(g.idFloodAnswered < FLOOD_IDS * CALL_BURST * rounds, JSON.stringify(g))
    const { gate: _g, ...spread } = bad
    const { gate: _c, ...before } = clean
    assert.deepEqual(spread, before)
  })
})
