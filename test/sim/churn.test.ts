// The simulator's event core (harness/sim/events.ts) and its repair engine on a tiny network
// (harness/sim/churn.ts): a host back within the failure timeout costs no repair, and a host
// gone for good has exactly the fragments it held rebuilt, on live hosts, with nothing lost.
// Everything runs in virtual time: no timer, no wall clock.
import assert from 'node:assert/strict'
import { prng } from '../../harness/prng.ts'
import { EventQueue, Uplinks } from '../../harness/sim/events.ts'
import { simHosts } from '../../harness/sim/hosts.ts'
import { churnTrace, deferredTo, permanentOnly, runChurn, simXorRank } from '../../harness/sim/churn.ts'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { rankByRule } from '../../node/keeper/index.ts'
import { PLACEMENT_BALANCED } from '../../node/data/index.ts'
import type { ChurnOptions, TraceEvent } from '../../harness/sim/churn.ts'

const HOUR = 3600_000
const TIMEOUT = 3 * 60_000

/** No byte moved, no fragment rebuilt, every host holds at the end what it held at the start, all 40 chunks redundant. */
function nothingRepaired (r: ReturnType<typeof runChurn>): void {
  assert.equal(r.bytesFetched + r.bytesPushed, 0)
  assert.equal(r.fragmentsRepaired, 0)
  assert.deepEqual(r.fragmentsAtEnd, r.fragmentsAtStart)
  assert.equal(r.redundantAtEnd, 40)
}

describe('sim event core', () => {
  it('runs events in time order, ties in the order scheduled, and events scheduled by events', () => {
    const q = new EventQueue()
    const seen: string[] = []
    q.at(30, () => { seen.push(`c@${q.now}`) })
    q.at(10, () => {
      seen.push(`a@${q.now}`)
      q.after(5, () => { seen.push(`d@${q.now}`) })
      q.at(30, () => { seen.push(`e@${q.now}`) })
    })
    q.at(10, () => { seen.push(`b@${q.now}`) })
    q.at(100, () => { seen.push('late') })
    q.run(50)
    assert.deepEqual(seen, ['a@10', 'b@10', 'd@15', 'c@30', 'e@30'])
    assert.equal(q.now, 50)
    assert.equal(q.size, 1)
    q.run()
    assert.deepEqual(seen.at(-1), 'late')
    assert.equal(q.ran, 6)
  })

  it('sends over an uplink one message after another, each arriving one latency after its last byte', () => {
    const links = new Uplinks([8000, 8_000_000]) // 1 byte/ms, 1000 bytes/ms
    assert.equal(links.send(0, 1000, 0, 30), 1030)
    assert.equal(links.send(0, 1000, 0, 30), 2030) // queued behind the first
    assert.equal(links.send(0, 500, 5000, 30), 5530) // the uplink was idle again
    assert.equal(links.send(1, 1000, 0, 30, 10), 40) // scaled: ten messages' bytes
    assert.deepEqual(Array.from(links.sent), [2500, 10_000])
  })

  it('an urgent message goes ahead of the queued ones (behind urgent ones only), which leave that much later', () => {
    const links = new Uplinks([8000]) // 1 byte/ms
    assert.equal(links.send(0, 10_000, 0, 30), 10_030)
    assert.equal(links.send(0, 1000, 100, 30, 1, true), 1130)
    assert.equal(links.send(0, 1000, 100, 30, 1, true), 2130, 'behind the first urgent one')
    assert.equal(links.busyUntil[0], 12_000, 'the queue is 2,000 ms later')
    assert.equal(links.send(0, 1000, 0, 30), 13_030)
    // on an idle uplink it is sent at once, and what comes after queues behind it
    const idle = new Uplinks([8000])
    assert.equal(idle.send(0, 1000, 0, 30, 1, true), 1030)
    assert.equal(idle.send(0, 1000, 0, 30), 2030)
    assert.deepEqual(Array.from(links.sent), [13_000])
  })
})

describe('sim repair under churn (tiny network)', () => {
  const hosts = simHosts(12, prng(7))
  const base = (trace: TraceEvent[]): ChurnOptions => ({
    hosts,
    uplinks: hosts.map((_, i) => i % 2 === 0 ? 1e6 : 100e6),
    initial: hosts.length,
    trace,
    chunks: 40,
    scale: 1,
    k: 4,
    m: 2,
    chunkBytes: 1 << 20,
    failureTimeoutMs: TIMEOUT,
    latencyMs: 30,
    duration: 10 * HOUR,
    rand: prng(11)
  })

  it('a host back within the failure timeout causes no repair', () => {
    const r = runChurn(base([{ t: HOUR, host: 3, kind: 'down' }, { t: HOUR + TIMEOUT - 1000, host: 3, kind: 'up' }]))
    assert.ok(r.fragmentsAtStart[3] > 0, 'the host held fragments')
    assert.equal(r.declaredGone, 0)
    assert.equal(r.backInTime, 1)
    nothingRepaired(r)
  })

  it('the same host away past the timeout is declared gone, repaired for, and its copies handed back when it returns', () => {
    const r = runChurn(base([{ t: HOUR, host: 3, kind: 'down' }, { t: 3 * HOUR, host: 3, kind: 'up' }]))
    assert.equal(r.declaredGone, 1)
    assert.equal(r.returnedAfterGone, 1)
    assert.equal(r.fragmentsRepaired, r.fragmentsAtStart[3])
    // back, it is a target again and keeps what it held; the stand-ins drop their copies
    assert.equal(r.fragmentsAtEnd[3], r.fragmentsAtStart[3])
    assert.equal(r.fragmentsDropped, r.fragmentsRepaired)
    assert.equal(r.redundantAtEnd, 40)
  })

  it('a host gone for good has exactly its fragments rebuilt, and the oracle sees the same', () => {
    const trace: TraceEvent[] = [{ t: HOUR, host: 5, kind: 'leave' }, { t: 2 * HOUR, host: 8, kind: 'down' }, { t: 2 * HOUR + 60_000, host: 8, kind: 'up' }]
    const r = runChurn(base(trace))
    const lost = r.fragmentsAtStart[5]
    assert.ok(lost > 0, 'the leaver held fragments')
    assert.equal(r.declaredGone, 1)
    assert.equal(r.fragmentsRepaired, lost)
    assert.equal(r.fragmentsAtEnd[5], 0)
    assert.equal(r.chunksLost, 0)
    assert.equal(r.redundantAtEnd, 40)
    const frag = (1 << 20) / 4
    // each rebuilt fragment is pushed at most once and read from at most k fragments
    assert.ok(r.bytesPushed <= lost * frag && r.bytesFetched <= lost * 4 * frag && r.bytesFetched > 0)
    // the short outage of host 8 cost nothing: the oracle (permanent losses only) moves as much
    const oracle = runChurn(base(permanentOnly(trace)))
    assert.equal(oracle.bytesFetched + oracle.bytesPushed, r.bytesFetched + r.bytesPushed)
  })

  it('chunks whose holders leave for good all at once are lost whatever the policy, and counted so', () => {
    // nine of twelve hosts: three are left, each chunk's fragments are on six, fewer than k remain
    const trace: TraceEvent[] = Array.from({ length: 9 }, (_, host) => ({ t: HOUR, host, kind: 'leave' as const }))
    const r = runChurn(base(trace))
    assert.equal(r.chunksLost, 40)
    assert.equal(r.chunksLostUnavoidable, 40)
    assert.ok(r.lostSpansMs.every(x => x === 0))
    // one host leaving: nothing lost
    const one = runChurn(base([{ t: HOUR, host: 5, kind: 'leave' }]))
    assert.equal(one.chunksLost + one.chunksLostUnavoidable + one.lostSpansMs.length, 0)
  })

  it("keepers taking chunks at risk first ('urgent') move the same fragments as in arrival order", () => {
    const trace: TraceEvent[] = [{ t: HOUR, host: 5, kind: 'leave' }, { t: HOUR + 60_000, host: 4, kind: 'leave' }, { t: 2 * HOUR, host: 8, kind: 'down' }]
    const fifo = runChurn({ ...base(trace), duration: 30 * HOUR })
    const urgent = runChurn({ ...base(trace), duration: 30 * HOUR, order: 'urgent' })
    assert.equal(urgent.fragmentsRepaired, fifo.fragmentsRepaired)
    assert.equal(urgent.bytesPushed, fifo.bytesPushed)
    assert.equal(urgent.chunksLost, 0)
    assert.equal(urgent.redundantAtEnd, fifo.redundantAtEnd)
  })

  it('a repair whose reads cannot start yet (their uplinks busy) is passed again later, planned afresh: a host back meanwhile is not rebuilt for', () => {
    // thin uplinks, a sampled read 3.5 min long: host 5 leaves for good, and its rebuilds' reads
    // take the uplinks for half an hour; host 8 is away from 1 min later for 20 min (declared
    // gone after 3). Its chunks' repairs wait for their reads, and most find it back by then
    const trace: TraceEvent[] = [{ t: HOUR, host: 5, kind: 'leave' }, { t: HOUR + 60_000, host: 8, kind: 'down' }, { t: HOUR + 20 * 60_000, host: 8, kind: 'up' }]
    const thin = (t: TraceEvent[]): ChurnOptions => ({ ...base(t), uplinks: hosts.map(() => 1e6), scale: 100 })
    const r = runChurn(thin(trace))
    const oracle = runChurn(thin(permanentOnly(trace)))
    assert.equal(oracle.fragmentsRepaired / 100, r.fragmentsAtStart[5], 'the oracle rebuilds what host 5 held')
    assert.ok(r.deferred > 0)
    assert.equal(r.chunksLost, 0)
    // of host 8's 18 fragments, only those whose reads started before it was back are rebuilt
    // (8; with the reads queued behind the busy uplinks and the plan kept, 13; 6 while pushes
    // held by the keepers' caps still took the uplinks from the time they were planned, and
    // fewer reads could start)
    assert.ok(r.fragmentsRepaired / 100 - r.fragmentsAtStart[5] <= 8, `${r.fragmentsRepaired / 100 - r.fragmentsAtStart[5]} rebuilt for host 8`)
  })

  it('a pass deferred for its reads is passed again strictly later, never at the same virtual time', () => {
    // seed 16's numbers: startBy > now + patience by one ulp, startBy - patience === now
    const now = 474846985.85753477
    const patience = 17261655.464189082
    const startBy = 492108641.3217239
    const t = deferredTo(now, startBy, patience)
    assert.ok(t === undefined || t > now, `passed again at ${t}, now ${now}`)
    assert.equal(deferredTo(0, 10, 5), 5)
    assert.equal(deferredTo(0, 5, 5), undefined, 'reads that start within the patience go ahead')
  })

  it("a push its keeper's repair cap holds back takes no uplink until the cap lets it go: other repairs read from that host meanwhile", () => {
    // a third of the hosts on fibre, the rest on 1 Mbit/s: host 5 leaves for good, and thin
    // keepers' caps hold their pushes for a while. Booked on the uplink when planned, those pushes
    // kept the uplink from serving reads until they went: 145 passes deferred for want of a read, 56 now
    const r = runChurn({ ...base([{ t: HOUR, host: 5, kind: 'leave' }]), uplinks: hosts.map((_, i) => i % 3 === 0 ? 100e6 : 1e6), scale: 100, duration: 400 * HOUR, rebuilder: 'keeper' })
    assert.equal(r.chunksLost, 0)
    assert.equal(r.redundantAtEnd, 40)
    assert.ok(r.deferred > 0 && r.deferred <= 80, `${r.deferred} passes deferred`)
  })

  it('a thin keeper that leaves the rebuild to a holder on fibre (repair.ts rebuilderOf()) brings chunks back sooner, with the same fragments', () => {
    // a third of the hosts on fibre, three leave for good together; sampled repairs of hours
    const trace: TraceEvent[] = [2, 5, 9].map((host, i) => ({ t: HOUR + i * 60_000, host, kind: 'leave' as const }))
    const at = (rebuilder: 'keeper' | 'holder', hours: number): ReturnType<typeof runChurn> =>
      runChurn({ ...base(trace), uplinks: hosts.map((_, i) => i % 3 === 0 ? 100e6 : 1e6), scale: 300, duration: hours * HOUR, rebuilder })
    // redundant again by 3 h: 20 of 40 with the keeper rebuilding, 23 with the holder
    assert.ok(at('holder', 3).redundantAtEnd > at('keeper', 3).redundantAtEnd)
    const keeper = at('keeper', 100)
    const holder = at('holder', 100)
    assert.equal(holder.redundantAtEnd, 40)
    assert.equal(holder.chunksLost, 0)
    assert.equal(holder.fragmentsRepaired, keeper.fragmentsRepaired)
  })

  describe('lazy repair (repair delay 24 h: node/keeper/lazy.ts lazyPlan)', () => {
    const lazy = (trace: TraceEvent[], duration = 10 * HOUR): ChurnOptions => ({ ...base(trace), repairDelayMs: 24 * HOUR, duration })

    it('a holder away past the failure timeout and back within the delay (its chunks at k + 1 live) causes no repair', () => {
      const r = runChurn(lazy([{ t: HOUR, host: 3, kind: 'down' }, { t: 5 * HOUR, host: 3, kind: 'up' }]))
      assert.ok(r.fragmentsAtStart[3] > 0, 'the host held fragments')
      assert.equal(r.declaredGone, 1)
      assert.equal(r.awayDeclared, 1)
      assert.equal(r.backWithinDelay, 1)
      nothingRepaired(r)
    })

    it('two holders away together: with a spare of 1 their shared chunks (k live) get one fragment back at once, the others wait; with none (the default) all wait', () => {
      // with 12 hosts and n = 6 each chunk is on one XOR half: hosts 4 and 5 hold the same chunks,
      // host 3 the other half's; all three away, only the chunks of 4 and 5 are down to k live
      const trace: TraceEvent[] = [3, 4, 5].map(host => ({ t: HOUR, host, kind: 'down' as const }))
      const none = runChurn(lazy(trace, 3 * HOUR))
      assert.equal(none.fragmentsRepaired + none.bytesFetched + none.bytesPushed, 0)
      assert.equal(none.chunksLost, 0)
      const r = runChurn({ ...lazy(trace, 3 * HOUR), repairSpare: 1 })
      assert.equal(r.awayDeclared, 3)
      assert.equal(r.lapsed, 0)
      assert.ok(r.fragmentsAtStart[3] > 0 && r.fragmentsAtStart[4] > 0)
      // one fragment per shared chunk restores k + 1 live (lazy.ts giveUp()): the other holder is waited for
      assert.equal(r.fragmentsAtStart[4], r.fragmentsAtStart[5])
      assert.equal(r.fragmentsRepaired, r.fragmentsAtStart[4])
      assert.equal(r.chunksLost, 0)
      // eager (no repair delay): every fragment of the three is rebuilt
      const eager = runChurn({ ...base(trace), duration: 3 * HOUR })
      assert.equal(eager.fragmentsRepaired, r.fragmentsAtStart[3] + r.fragmentsAtStart[4] + r.fragmentsAtStart[5])
    })

    it('two holders gone for good together (their chunks at k live, k on disks): with an at-risk delay one fragment each is rebuilt after it, not after the repair delay', () => {
      // hosts 4 and 5 hold the same chunks (see above) and leave for good at 1 h; repair delay 72 h
      const trace: TraceEvent[] = [4, 5].map(host => ({ t: HOUR, host, kind: 'leave' as const }))
      const run = (atRiskDelayMs: number): ReturnType<typeof runChurn> => runChurn({ ...lazy(trace, 30 * HOUR), repairDelayMs: 72 * HOUR, atRiskDelayMs, atRiskClock: 'short' })
      const waiting = run(Infinity)
      assert.equal(waiting.fragmentsRepaired, 0, 'no at-risk delay: nothing rebuilt within the repair delay')
      assert.ok(waiting.exposedSpellsMs.length > 0 && waiting.exposedSpellsMs.every(x => x >= 29 * HOUR), 'their chunks sat at k fragments on disks to the end')
      const r = run(6 * HOUR)
      assert.equal(r.overdue, 2)
      assert.equal(r.chunksLost, 0)
      // one fragment per shared chunk (back at k + 1), the other leaver still waited for
      assert.equal(r.fragmentsRepaired, r.fragmentsAtStart[4])
      // every spell at k on disks ended within the at-risk delay and a few hours of thin uplinks
      assert.equal(r.exposedSpellsMs.length, waiting.exposedSpellsMs.length)
      assert.ok(r.exposedSpellsMs.every(x => x <= 12 * HOUR), `spells of ${r.exposedSpellsMs.map(x => (x / HOUR).toFixed(1)).join(', ')} h`)
    })

    it('a host gone for good is repaired for once the delay ends', () => {
      const r = runChurn({ ...lazy([{ t: HOUR, host: 5, kind: 'leave' }], 30 * HOUR), repairDelayMs: 6 * HOUR })
      assert.equal(r.lapsed, 1)
      assert.equal(r.fragmentsRepaired, r.fragmentsAtStart[5])
      assert.equal(r.chunksLost, 0)
      assert.equal(r.redundantAtEnd, 40)
    })
  })
})

describe('sim repair at scale: what its speedups must keep', () => {
  it("simXorRank() ranks a chunk's holders as rankByRule() does (darkfs's closest() on the ids the sim drew)", function () {
    this.timeout(60_000)
    // 5,000 hosts, their ids registered by a run
    const hosts = simHosts(5000, prng(3))
    runChurn({ hosts, uplinks: hosts.map(() => 1e6), initial: hosts.length, trace: [], chunks: 20, scale: 1, k: 4, m: 2, chunkBytes: 1 << 20, failureTimeoutMs: TIMEOUT, latencyMs: 30, duration: HOUR, rand: prng(5) })
    const rand = prng(9)
    const noWeights = new Map<string, number>()
    for (let t = 0; t < 100; t++) {
      const bytes = new Uint8Array(32).map(() => Math.floor(rand() * 256))
      const cid = CID.createV1(0x55, createDigest(0x12, bytes))
      // a random subset of the hosts (with a repeat: ranks count each member once), in random order
      const members = Array.from({ length: 2 + Math.floor(rand() * 60) }, () => hosts[Math.floor(rand() * hosts.length)].peer)
      members.push(members[0])
      const n = 1 + Math.floor(rand() * 10)
      assert.deepEqual(simXorRank({ cid }, members, n), rankByRule({ cid }, members, n, () => noWeights))
      // a balanced ref is ranked by rankByRule() itself
      assert.deepEqual(simXorRank({ cid, rule: PLACEMENT_BALANCED }, members, n), rankByRule({ cid, rule: PLACEMENT_BALANCED }, members, n, () => noWeights))
    }
  })

  it('a run replays exactly: the same seed and trace, the same result (the sim\'s figures are compared before and after a speedup)', () => {
    const hosts = simHosts(40, prng(21))
    const trace = churnTrace({ hosts: 36, joiners: 4, leavers: 3, duration: 3 * 24 * HOUR, churnPerHour: 0.05 }, prng(22))
    const options = (): ChurnOptions => ({
      hosts, uplinks: hosts.map((_, i) => [1e6, 20e6, 100e6][i % 3]), initial: 36, trace, chunks: 60, scale: 50, k: 4, m: 2, chunkBytes: 1 << 20,
      failureTimeoutMs: TIMEOUT, repairDelayMs: 12 * HOUR, order: 'urgent', latencyMs: 30, duration: 3 * 24 * HOUR, lookupEveryMs: 60_000, noticeDelayMs: 250, rand: prng(23)
    })
    const a = runChurn(options())
    const b = runChurn(options())
    assert.ok(a.plans > 100 && a.repairs > 0, 'the run repaired something')
    assert.deepEqual(b, a)
  })
})
