// mend38m (review38e): a member that left was drawn by the rotating long link every period: the
// members known are never forgotten, and the dial backoff (30 s at most) ends well within a
// period. The pool now leaves out members the membership declared down, and those a dial failed
// to within the last period (longLinkPool). review39e: "never failed" is undefined, not time 0.
import assert from 'node:assert/strict'
import { longLinkPool } from '../../node/net/index.ts'

const PERIOD = 300_000
const NOW = 10_000_000
const base = { self: 'me', connected: new Set<string>(), dialing: () => false, down: () => false, failedUntil: (): number | undefined => undefined, now: NOW, periodMs: PERIOD }

describe('long link pool (mend38m): whom the rotating long link may draw', function () {
  it('leaves out this host, connected members and those being dialled', function () {
    const pool = longLinkPool(['me', 'a', 'b', 'c', 'd'], { ...base, connected: new Set(['b']), dialing: id => id === 'c' })
    assert.deepEqual(pool, ['a', 'd'])
  })

  it('leaves out members the membership declared down (left, gone, away)', function () {
    const down = new Set(['gone', 'left'])
    assert.deepEqual(longLinkPool(['gone', 'a', 'left'], { ...base, down: id => down.has(id) }), ['a'])
  })

  it('leaves out a member whose dial failed within the last period, though its backoff is over', function () {
    // backoff (30 s at most) ended a minute ago: before, this member was drawn again
    const failedUntil = (id: string): number | undefined => id === 'dead' ? NOW - 60_000 : id === 'old' ? NOW - PERIOD - 1 : undefined
    assert.deepEqual(longLinkPool(['dead', 'old', 'a'], { ...base, failedUntil }), ['old', 'a'])
  })

  it('draws from everyone in a process younger than one period (review39e: the monotonic clock starts near 0)', function () {
    // 2 s after start, the period 300 s: a "never failed" read as time 0 was within the last period,
    // so the pool was empty and a restarted host made no long link for its first 300 s
    const young = { ...base, now: 2_000 }
    assert.deepEqual(longLinkPool(['a', 'b'], young), ['a', 'b'])
    // a dial that failed at 1 s of uptime still keeps its member out
    assert.deepEqual(longLinkPool(['a', 'b'], { ...young, failedUntil: id => id === 'a' ? 1_000 : undefined }), ['b'])
  })
})
