// Lazy repair (node/keeper/lazy.ts), a pure function of a chunk's holdings: a chunk whose
// away holder (declared gone, within the repair delay) leaves it a fragment to spare is planned
// with that holder still a target, so nothing is rebuilt for it; one down to k live fragments
// gives up as many away holders (the longest away first) as restore its spare, and only their
// fragments are rebuilt. Which chunks are at risk, and the order a keeper repairs them in. And the repair delay a host runs with
// (net/failure.ts repairDelay()).
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { AT_RISK_DELAY_MS, LAZY_RULE, atRisk, byUrgency, giveUp, keepPresumed, lazyPlan, liveFragments, mayWait, REPAIR_SPARE, stopWaiting, survivingFragments } from '../../node/keeper/lazy.ts'
import { plan } from '../../node/keeper/survey.ts'
import type { Holdings } from '../../node/keeper/survey.ts'
import { repairDeliveries } from '../../node/keeper/repair.ts'
import { DEFAULT_FAILURE_TIMEOUT_MS, DEFAULT_REPAIR_DELAY_MS, repairDelay } from '../../node/net/failure.ts'
import type { ChunkRef } from '../../node/data/index.ts'

const cid = (tag: number): CID => CID.createV1(0x55, createDigest(0x12, new Uint8Array(32).fill(tag)))
/** A chunk k = 4, m = 2 and a rank by name: h0..h5 are its targets while they are members. */
const ref: ChunkRef = { offset: 0, size: 1 << 20, cid: cid(99), k: 4, m: 2, fragments: [0, 1, 2, 3, 4, 5].map(cid) }
const policy = { copies: (m: number) => m + 1, rank: (_: unknown, members: string[], n: number) => [...members].sort().slice(0, n) }
const hosts = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7']
/** Fragment j on hj (the fresh write), as far as `live` hosts answer. */
const holdings = (live: Set<string>): Holdings => new Map(ref.fragments.map((f, j) => [f.toString(), new Set([`h${j}`].filter(h => live.has(h)))]))

describe('lazy repair (node/keeper/lazy.ts)', () => {
  it('a chunk with k + 2 fragments that loses one holder for a while (k + 1 live) rebuilds nothing while it is away', () => {
    const live = new Set(hosts.filter(h => h !== 'h5'))
    const members = hosts.filter(h => h !== 'h5')
    const p = lazyPlan(ref, holdings(live), members, ['h5'], live, 'h0', policy)
    assert.deepEqual(p.want[5], ['h5'])
    assert.deepEqual(repairDeliveries(p, live), [])
    assert.equal(p.health, 'degraded')
    // eager (plan() alone, as before): fragment 5 is rebuilt on h6
    assert.deepEqual(repairDeliveries(plan(ref, holdings(live), members, live, 'h0', policy), live), [{ j: 5, to: ['h6'] }])
  })

  it('a chunk down to k live fragments gives up only the away holder that restores its spare (1), the longest away first; with no spare (the default) it waits', () => {
    const live = new Set(hosts.filter(h => h !== 'h4' && h !== 'h5'))
    const members = [...live]
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live), members, ['h4', 'h5'], live, 'h0', policy), live), [], 'spare 0: nothing rebuilt for an away host')
    // h4 went away first: its fragment is rebuilt (on h6, the next-ranked member); h5 is still waited for
    const p = lazyPlan(ref, holdings(live), members, ['h4', 'h5'], live, 'h0', policy, 1)
    assert.deepEqual(repairDeliveries(p, live), [{ j: 4, to: ['h6'] }])
    assert.deepEqual(p.want[5], ['h5'])
    // h5 keeps fragment 5, the one presumed on it (planning again without h4 would assign h5
    // fragment 4 and rebuild 5 on h6)
    assert.deepEqual(p.want, [['h0'], ['h1'], ['h2'], ['h3'], ['h6'], ['h5']])
    assert.equal(p.health, 'degraded')
    // the other order gives up h5
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live), members, ['h5', 'h4'], live, 'h0', policy, 1), live), [{ j: 5, to: ['h6'] }])
    // with two to spare (k + 2 wanted live), both are given up: every away fragment is rebuilt
    const two = lazyPlan(ref, holdings(live), members, ['h4', 'h5'], live, 'h0', policy, 2)
    assert.deepEqual(repairDeliveries(two, live), [{ j: 4, to: ['h6'] }, { j: 5, to: ['h7'] }])
    assert.deepEqual(two, plan(ref, holdings(live), members, live, 'h0', policy))
  })

  it('once the rebuilt fragment landed the chunk is back at k + 1 live and waits for the other away holder', () => {
    const live = new Set(hosts.filter(h => h !== 'h4' && h !== 'h5'))
    const members = [...live]
    const held = holdings(live)
    held.get(ref.fragments[4].toString())!.add('h6')
    const p = lazyPlan(ref, held, members, ['h4', 'h5'], live, 'h0', policy)
    assert.deepEqual(repairDeliveries(p, live), [])
    // h4 is ranked again (it may come back): h6's copy stays, as h4 is not live to take it over
    assert.deepEqual(p.want[4], ['h4'])
  })

  it('giveUp: the first away hosts that are targets, as many as needed', () => {
    const waiting = { want: [['h0'], ['h1'], ['h2'], ['h3'], ['h4'], ['h5']] }
    assert.deepEqual([...giveUp(waiting, ['h9', 'h5', 'h4'], 1)], ['h5'], 'h9 is no target: it holds nothing waited for')
    assert.deepEqual([...giveUp(waiting, ['h9', 'h5', 'h4'], 2)], ['h5', 'h4'])
    assert.deepEqual([...giveUp(waiting, ['h5', 'h4'], 5)], ['h5', 'h4'])
    assert.deepEqual([...giveUp(waiting, ['h5'], 0)], [])
    assert.deepEqual([...giveUp(waiting, ['h5'], -1)], [])
  })

  it('at risk at k live fragments or fewer; byUrgency orders the fewest live first, equals in order', () => {
    assert.ok(atRisk(4, 4) && atRisk(3, 4) && !atRisk(5, 4) && atRisk(1, 1) && !atRisk(2, 1))
    assert.deepEqual(byUrgency([6, 4, 5, 4, 3]), [4, 1, 3, 2, 0])
    assert.deepEqual(byUrgency([]), [])
  })

  it('byUrgency: fewest surviving fragments first, then fewest live (a chunk one loss from lost before one at k live)', () => {
    // item 0: k + 2 surviving, k live (two holders away); item 1: k surviving (two lost for good), k live
    assert.deepEqual(byUrgency([6, 4], [4, 4]), [1, 0])
    assert.deepEqual(byUrgency([6, 5], [4, 5]), [1, 0], 'surviving first, even with more live')
    assert.deepEqual(byUrgency([5, 5, 5], [5, 4, 5]), [1, 0, 2], 'then live, then their order')
  })

  it('survivingFragments: live fragments and those presumed on the away targets', () => {
    const live = new Set(hosts.filter(h => h !== 'h4' && h !== 'h5'))
    const p = lazyPlan(ref, holdings(live), [...live], ['h4', 'h5'], live, 'h0', policy, 0)
    assert.equal(liveFragments(ref, holdings(live), live), 4)
    assert.equal(survivingFragments(ref, p, new Set(['h4', 'h5'])), 6)
    // h5 gone for good (not away): only h4's fragment is presumed
    const q = lazyPlan(ref, holdings(live), [...live], ['h4'], live, 'h0', policy, 0)
    assert.equal(survivingFragments(ref, q, new Set(['h4'])), 5)
    assert.equal(survivingFragments(ref, q, new Set()), 4, 'with nobody away, the live ones')
  })

  it('an away host is kept on the fragment it was last seen holding: the fragment lost for good is the one rebuilt', () => {
    // h2 left for good (its delay ended: neither member nor away), h4 is away with fragment 4
    const live = new Set(['h0', 'h1', 'h3', 'h5', 'h6', 'h7'])
    const presumed = new Map([['h4', [4]]])
    const p = lazyPlan(ref, holdings(live), [...live], ['h4'], live, 'h0', policy, 0, presumed)
    assert.deepEqual(p.want, [['h0'], ['h1'], ['h6'], ['h3'], ['h4'], ['h5']])
    assert.deepEqual(repairDeliveries(p, live), [{ j: 2, to: ['h6'] }])
    // not knowing what h4 held, plan() gave it fragment 2 and rebuilt 4 on h6 (as before)
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live), [...live], ['h4'], live, 'h0', policy, 0), live), [{ j: 4, to: ['h6'] }])
  })

  it('an away host that held nothing of the chunk is not waited for', () => {
    // h2 left for good; h3.5 ('h35', ranked between h3 and h4) is away and held nothing: fragment 2 goes to a live member
    const live = new Set(['h0', 'h1', 'h3', 'h4', 'h5', 'h6'])
    const p = lazyPlan(ref, holdings(live), [...live], ['h35'], live, 'h0', policy, 0, new Map())
    assert.deepEqual(repairDeliveries(p, live), [{ j: 2, to: ['h6'] }])
    // waited for, fragment 2 went to h35 and nothing was rebuilt while it was away
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live), [...live], ['h35'], live, 'h0', policy, 0), live), [])
  })

  it('property: with what away hosts held known, no fragment an away host holds is rebuilt while the chunk may wait, and every fragment lost for good is', () => {
    // fragment j's holder hj is live, away or gone for good; h6..h9 are live, away holding nothing, or gone
    const state = fc.constantFrom('live', 'away', 'gone')
    fc.assert(fc.property(fc.array(state, { minLength: 10, maxLength: 10 }), fc.integer({ min: 0, max: 1 }), (states, spare) => {
      const names = [...hosts.slice(0, 6), 'h8', 'h9', 'h90', 'h91']
      const is = (s: string): string[] => names.filter((_, i) => states[i] === s)
      const live = new Set(is('live'))
      const away = is('away')
      const presumed = new Map(away.filter(h => names.indexOf(h) < 6).map(h => [h, [names.indexOf(h)]]))
      const available = liveFragments(ref, holdings(live), live)
      const p = lazyPlan(ref, holdings(live), [...live], away, live, 'h0', policy, spare, presumed)
      const rebuilt = new Set(repairDeliveries(p, live).map(d => d.j))
      // (with fewer hosts than fragments the plan puts several on one host: not this case)
      if (!mayWait(available, ref.k, spare) || live.size + presumed.size < ref.k + ref.m) return
      for (const [, [j]] of presumed) assert.ok(!rebuilt.has(j), `fragment ${j} is on an away host`)
      // a fragment whose holder is gone for good is wanted on a live host (the chunk has enough live members)
      const gone = [0, 1, 2, 3, 4, 5].filter(j => states[j] === 'gone')
      if (live.size - available >= gone.length) for (const j of gone) assert.ok(rebuilt.has(j), `fragment ${j} (lost for good) is rebuilt`)
    }), { numRuns: 500 })
  })

  it('one away holder and one suspect (k live): with a spare of 1 repaired at once, the suspect left alone as before; with none, both waited for', () => {
    // h4 is a suspect (a member, not live), h5 away: only 4 fragments are on live hosts
    const live = new Set(hosts.filter(h => h !== 'h4' && h !== 'h5'))
    const members = hosts.filter(h => h !== 'h5')
    const p = lazyPlan(ref, holdings(live), members, ['h5'], live, 'h0', policy, 1)
    assert.deepEqual(repairDeliveries(p, live), [{ j: 5, to: ['h6'] }])
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live), members, ['h5'], live, 'h0', policy), live), [])
  })

  it('stopWaiting: at k + 1 live or more nothing is given up; at k, one away target once the chunk waited the at-risk delay; below k, as many as bring it back to k', () => {
    const H = 3600_000
    const short = { spare: 0, atRiskDelayMs: 12 * H, clock: 'short' as const }
    const away = { ...short, clock: 'away' as const }
    // k + 1 live: the repair delay alone (the away list) bounds the wait, however long they were away
    assert.equal(stopWaiting(5, 4, [100 * H], short), 0)
    assert.equal(stopWaiting(5, 4, [100 * H], away), 0)
    // k live, two away (longest first): 'short' counts from the later departure, 'away' from the first
    assert.equal(stopWaiting(4, 4, [48 * H, 2 * H], short), 0, 'came down to k 2 h ago')
    assert.equal(stopWaiting(4, 4, [48 * H, 13 * H], short), 1)
    assert.equal(stopWaiting(4, 4, [48 * H, 2 * H], away), 1, 'its longest away holder left 48 h ago')
    assert.equal(stopWaiting(4, 4, [11 * H, 2 * H], away), 0)
    // one more away target is never given up at k: the chunk is back at k + 1 once it is rebuilt
    assert.equal(stopWaiting(4, 4, [48 * H, 40 * H], short), 1)
    // a suspect among its targets (a member not live yet declared gone): it came down to k just now
    assert.equal(stopWaiting(4, 4, [48 * H], short, 1), 0)
    assert.equal(stopWaiting(4, 4, [48 * H], away, 1), 1)
    // below k: as many as bring it to k at once, then the at-risk delay for one more
    assert.equal(stopWaiting(3, 4, [1000, 500, 100], short), 1)
    assert.equal(stopWaiting(3, 4, [48 * H, 20 * H, 13 * H], short), 2)
    assert.equal(stopWaiting(2, 4, [1000], short), 1, 'no more away targets than it has')
    // no at-risk delay (Infinity: session 17's rule) waits at k for the whole repair delay; a spare of 1 gives up one at k at once
    assert.equal(stopWaiting(4, 4, [71 * H, 70 * H], { ...short, atRiskDelayMs: Infinity }), 0)
    assert.equal(stopWaiting(4, 4, [1000], { ...short, spare: 1, atRiskDelayMs: Infinity }), 1)
    assert.equal(stopWaiting(4, 4, [], short), 0)
  })

  it('lazyPlan with how long its away holders have been away: a chunk at k live rebuilds its longest-away holder\'s fragment once it waited the at-risk delay, and waits for the other', () => {
    const H = 3600_000
    const rule = { spare: 0, atRiskDelayMs: 12 * H, clock: 'short' as const }
    const live = new Set(hosts.filter(h => h !== 'h4' && h !== 'h5'))
    const members = [...live]
    const awayMs = (a: number, b: number): Map<string, number> => new Map([['h4', a], ['h5', b]])
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live), members, ['h4', 'h5'], live, 'h0', policy, rule, undefined, awayMs(40 * H, 3 * H)), live), [], 'at k for 3 h')
    const p = lazyPlan(ref, holdings(live), members, ['h4', 'h5'], live, 'h0', policy, rule, undefined, awayMs(40 * H, 12 * H))
    assert.deepEqual(repairDeliveries(p, live), [{ j: 4, to: ['h6'] }])
    assert.deepEqual(p.want[5], ['h5'], 'h5 is still waited for')
    // not knowing how long they were away (awayMs not given): waited for as before
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live), members, ['h4', 'h5'], live, 'h0', policy, rule), live), [])
    // at k + 1 (h5 back), h4 is waited for the whole repair delay
    const live5 = new Set([...live, 'h5'])
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live5), [...live5], ['h4'], live5, 'h0', policy, rule, undefined, new Map([['h4', 70 * H]])), live5), [])
  })

  it("darkfs's rule: a chunk at k live for the at-risk delay (48 h, from when it came down to k) gets its longest-away holder's fragment back; session 17's waited the whole repair delay", () => {
    const H = 3600_000
    assert.equal(AT_RISK_DELAY_MS, 48 * H)
    assert.deepEqual(LAZY_RULE, { spare: 0, atRiskDelayMs: 48 * H, clock: 'short' })
    assert.ok(AT_RISK_DELAY_MS < DEFAULT_REPAIR_DELAY_MS, 'shorter than the repair delay, or it never applies')
    const live = new Set(hosts.filter(h => h !== 'h4' && h !== 'h5'))
    const members = [...live]
    // two disks died 49 h ago (h4, h5: declared gone, away, never back)
    const dead = new Map([['h4', 49 * H], ['h5', 49 * H]])
    const p = lazyPlan(ref, holdings(live), members, ['h4', 'h5'], live, 'h0', policy, undefined, undefined, dead)
    assert.deepEqual(repairDeliveries(p, live), [{ j: 4, to: ['h6'] }])
    // 47 h: still waiting
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live), members, ['h4', 'h5'], live, 'h0', policy, undefined, undefined, new Map([['h4', 47 * H], ['h5', 47 * H]])), live), [])
    // session 17's rule (no at-risk delay): nothing until the repair delay lapsed
    assert.deepEqual(repairDeliveries(lazyPlan(ref, holdings(live), members, ['h4', 'h5'], live, 'h0', policy, { atRiskDelayMs: Infinity }, undefined, dead), live), [])
  })

  it('with nobody away it is plan(), and a joiner still takes over its fragment (a move, not a repair)', () => {
    const live = new Set(hosts)
    assert.deepEqual(lazyPlan(ref, holdings(live), hosts, [], live, 'h0', policy), plan(ref, holdings(live), hosts, live, 'h0', policy))
    // a new member 'h' ranks first: fragment 5's target h5 is displaced, the joiner takes it over
    const withJoiner = [...hosts, 'h']
    const liveJ = new Set(withJoiner)
    const p = lazyPlan(ref, holdings(liveJ), withJoiner, ['h7'], liveJ, 'h0', policy)
    assert.deepEqual(repairDeliveries(p, liveJ), [{ j: 5, to: ['h'] }])
  })

  it('counts distinct live fragments, and live copies of a replicated block', () => {
    const live = new Set(['h0', 'h1', 'h2'])
    assert.equal(liveFragments(ref, holdings(live), live), 3)
    const copies: ChunkRef = { offset: 0, size: 10, cid: cid(50), k: 1, m: 2, fragments: [cid(50), cid(50), cid(50)] }
    const held: Holdings = new Map([[cid(50).toString(), new Set(['h0', 'h1', 'h5'])]])
    assert.equal(liveFragments(copies, held, live), 2)
    assert.equal(REPAIR_SPARE, 0)
    assert.ok(mayWait(4, 4) && !mayWait(3, 4) && mayWait(1, 1) && !mayWait(0, 1))
    assert.ok(mayWait(5, 4, 1) && !mayWait(4, 4, 1) && mayWait(2, 1, 1) && !mayWait(1, 1, 1))
    assert.ok(!mayWait(5, 4, 2) && mayWait(6, 4, 2))
  })
})

describe('repairDelay (node/net/failure.ts)', () => {
  it('72 h by default; the failure timeout when only that is set (tests, operators: no lazy window); never shorter than it', () => {
    assert.equal(DEFAULT_REPAIR_DELAY_MS, 72 * 3600_000)
    assert.equal(repairDelay(), DEFAULT_REPAIR_DELAY_MS, 'lazy by default')
    assert.equal(repairDelay(undefined, DEFAULT_REPAIR_DELAY_MS), DEFAULT_REPAIR_DELAY_MS)
    assert.equal(repairDelay(2000), 2000)
    assert.equal(repairDelay(2000, 60_000), 60_000)
    assert.equal(repairDelay(undefined, 3600_000), 3600_000)
    assert.equal(repairDelay(60_000, 1000), 60_000)
    assert.equal(repairDelay(undefined, 0), DEFAULT_FAILURE_TIMEOUT_MS)
    assert.equal(repairDelay(DEFAULT_FAILURE_TIMEOUT_MS), DEFAULT_FAILURE_TIMEOUT_MS, 'a failure timeout alone: no lazy window')
  })
})
