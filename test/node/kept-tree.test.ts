// Keeper counts summed along a tree beyond the full mesh (node/keeper/kept-tree.ts, kept.ts):
// the trie every host derives from the hosts up, the sum records and their bounds, and
// KeptNotices summing real signed records up the tree to the root, whose totals every host
// takes from gossip and answers `status` with, from memory.
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { KEPT_TREE_BITS, keptGroupSize } from '../../node/keeper/kept-tree.ts'
import { KEPT_DEBOUNCE_MS, KEPT_ROOT_CANDIDATES, keptRootSettleMs, KEPT_GOSSIP_TAG, KEPT_RESEND_INTERVALS, KEPT_ROOT_SETTLE_INTERVALS, KEPT_SUM_GOSSIP_TAG, KEPT_TABLE, KeptNotices, keptTreeMode, KeptRecordError, KeptTableError, MAX_KEPT_CHUNKS, emptyKept, keptIntervalOf, keptParent, keptRoot, openKept, signKept } from '../../node/keeper/index.ts'
import type { KeptClock, KeptCounts } from '../../node/keeper/index.ts'
import { FULL_MESH_PEERS, MAX_MEMBERS, MEMBERS_GOSSIP_TAG, peerKadId, signerFor, verify } from '../../node/net/index.ts'
import type { Signer } from '../../node/tree/index.ts'
import { prng } from '../../harness/prng.ts'
import { simPeer } from '../../harness/sim/hosts.ts'
import { keptCounts } from '../helpers/kept-counts.ts'

const counts = keptCounts

/** Bound of a wait on a condition the event loop brings (well within mocha's timeout). */
const UNTIL_MS = 30_000

/** A clock the test moves, and timers that never fire: the test drives recount() itself. */
let time = 1_000_000
const still: KeptClock = { now: () => time, setTimeout: () => ({}), clearTimeout: () => {} }

/** Each host's depth (root 0), asserting the parents make one tree rooted at keptRoot. */
function depths (up: string[]): Map<string, number> {
  const out = new Map<string, number>()
  const root = keptRoot(up)
  for (const p of up) {
    let d = 0
    let at: string | undefined | null = p
    while (at !== root) {
      at = keptParent(up, at as string)
      assert.ok(typeof at === 'string', `${p}: a parent up (got ${String(at)})`)
      assert.ok(++d <= up.length, `${p}: no cycle`)
    }
    out.set(p, d)
  }
  return out
}

describe('keeper counts along a tree (kept-tree.ts)', () => {
  it('the parents make one tree rooted at the smallest id, about log16(hosts) deep', () => {
    const rand = prng(28)
    for (const n of [1, 2, 17, 300, 3000]) {
      const up = Array.from({ length: n }, () => simPeer(rand))
      const root = keptRoot(up)!
      const smallest = up.map(p => ({ p, id: Buffer.from(peerKadId(p)) })).sort((a, b) => Buffer.compare(a.id, b.id))[0].p
      assert.equal(root, smallest)
      assert.equal(keptParent(up, root), undefined, 'the root has no parent')
      assert.equal(keptParent(up, simPeer(rand)), null, 'a host not up has none')
      const d = depths(up)
      const deepest = Math.max(...d.values())
      // a trie of 16 branches a level: log16(n) levels and a few more where ids crowd
      assert.ok(deepest <= Math.ceil(Math.log2(Math.max(2, n)) / KEPT_TREE_BITS) + 3, `${n} hosts: ${deepest} levels`)
      // a group: the host and those below it, whose sums it sends
      const below = new Map<string, number>(up.map(p => [p, 1]))
      for (const p of [...up].sort((a, b) => d.get(b)! - d.get(a)!)) { const q = keptParent(up, p); if (typeof q === 'string') below.set(q, below.get(q)! + below.get(p)!) }
      for (const p of up) assert.equal(keptGroupSize(up, p), below.get(p), `${n} hosts: ${p}'s group`)
      assert.equal(keptGroupSize(up, root), n)
      const children = new Map<string, number>()
      for (const p of up) { const q = keptParent(up, p); if (typeof q === 'string') children.set(q, (children.get(q) ?? 0) + 1) }
      assert.ok(Math.max(0, ...children.values()) <= 15 * (deepest + 1), 'at most 15 children a level')
    }
  })

  it('a host going down moves only the parents of the hosts it was first before', () => {
    const rand = prng(29)
    const up = Array.from({ length: 500 }, () => simPeer(rand))
    const before = new Map(up.map(p => [p, keptParent(up, p)]))
    for (const gone of [up[3], keptRoot(up)!, up[250]]) {
      const after = up.filter(p => p !== gone)
      let moved = 0
      for (const p of after) {
        const q = keptParent(after, p)
        if (q === before.get(p)) continue
        moved++
        assert.equal(before.get(p), gone, `${p} moved though its parent stayed up`)
      }
      assert.ok(moved <= 15 * 10, `${moved} moved`)
      depths(after)
    }
  })

  it('a sum record carries the hosts summed; its figures are bounded by them, and its hosts by the member bound', async () => {
    const signer = signerFor(await generateKeyPair('Ed25519'))
    const big = counts(MAX_KEPT_CHUNKS * 3)
    const rec = await openKept(await signKept(signer, 1, big, 3), verify)
    assert.equal(rec.hosts, 3)
    assert.equal(rec.chunks.redundant, MAX_KEPT_CHUNKS * 3)
    assert.equal((await openKept(await signKept(signer, 2, counts(5)), verify)).hosts, undefined, 'a host\'s own record')
    await assert.rejects(openKept(await signKept(signer, 3, big, 2), verify), KeptRecordError, 'more chunks than its hosts may keep')
    await assert.rejects(openKept(await signKept(signer, 4, counts(1), 0), verify), KeptRecordError)
    await assert.rejects(openKept(await signKept(signer, 5, counts(1), MAX_MEMBERS + 1), verify), KeptRecordError)
    await assert.rejects(openKept(await signKept(signer, 6, counts(1), 1.5), verify), KeptRecordError)
    // a seventh key
    const r = dagCbor.encode({ peer: signer.author, seq: 7, c: [1, 0, 0, 0, 0], b: [1, 0, 0, 0, 0], age: 0, n: 1, x: 1 })
    await assert.rejects(openKept(dagCbor.encode({ t: 'kept', r, s: await signer.sign(r) }), verify), KeptRecordError)
  })

  it('the schedule: sums up the tree at most once a minute, the root\'s totals at most once per 10 minutes, from 1,000 members', () => {
    assert.equal(keptIntervalOf(10, 'up'), 2_000)
    assert.equal(keptIntervalOf(1000, 'up'), 60_000)
    assert.equal(keptIntervalOf(10_000, 'up'), 60_000)
    assert.equal(keptIntervalOf(10, 'root'), 6_000)
    assert.equal(keptIntervalOf(1000, 'root'), 600_000)
    assert.equal(keptIntervalOf(10_000, 'root'), 600_000)
  })

  it('a kept table request carries a sum up; a sum bigger than a record is refused', () => {
    assert.deepEqual(KEPT_TABLE.request!({ t: 'sum', r: new Uint8Array(10) }), { t: 'sum', r: new Uint8Array(10) })
    assert.throws(() => KEPT_TABLE.request!({ t: 'sum', r: new Uint8Array(4096) }), KeptTableError)
    assert.throws(() => KEPT_TABLE.request!({ t: 'sum' }), KeptTableError)
    // its answer: taken or not, and the root's totals the parent holds (a host of the previous version answers without)
    const req = { t: 'sum' as const, r: new Uint8Array(10) }
    assert.deepEqual(KEPT_TABLE.reply!({ t: 'sum', taken: true }, req), { t: 'sum', taken: true })
    assert.deepEqual(KEPT_TABLE.reply!({ t: 'sum', taken: false, root: new Uint8Array(10) }, req), { t: 'sum', taken: false, root: new Uint8Array(10) })
    assert.throws(() => KEPT_TABLE.reply!({ t: 'sum', taken: true, root: new Uint8Array(4096) }, req), KeptTableError)
    assert.throws(() => KEPT_TABLE.reply!({ t: 'sum', taken: true, root: 'x' }, req), KeptTableError)
  })

  describe('KeptNotices along the tree (real signatures, 40 hosts in one process)', function () {
    this.timeout(120_000)
    const N = 40
    let signers: Signer[]
    let up: string[]
    let own: Map<string, KeptCounts>
    let notices: Map<string, KeptNotices>
    let gossip: Uint8Array[]
    let sentUp: number

    /** Every KeptNotices a test made: stopped after it, whatever it did (no timer of one test fires in another). */
    let made: KeptNotices[] = []
    class Tracked extends KeptNotices {
      constructor (...args: ConstructorParameters<typeof KeptNotices>) {
        super(...args)
        made.push(this)
      }
    }

    before(async () => {
      signers = await Promise.all(Array.from({ length: N }, async () => signerFor(await generateKeyPair('Ed25519'))))
    })

    beforeEach(() => {
      // each test from the same state, whatever ran before it
      time = 1_000_000
      up = signers.map(s => s.author)
      own = new Map(up.map((p, i) => [p, counts(10 + i, i % 3)]))
      gossip = []
      sentUp = 0
      notices = new Map(signers.map(signer => [signer.author, new Tracked({
        signer,
        verify,
        counts: () => own.get(signer.author)!,
        up: () => up,
        member: () => true,
        tell: () => { throw new Error('along the tree no host tells its record to its peers') },
        publish: () => async (msg: Uint8Array) => { gossip.push(msg); return ['a peer'] },
        sendUp: async (parent, msg) => {
          sentUp++
          const r = await notices.get(parent)!.takeSum(msg, signer.author)
          assert.equal(r, 'new', `${signer.author} -> ${parent}`)
          return true
        },
        clock: still
      })]))
    })

    afterEach(() => {
      for (const n of made) n.stop()
      made = []
    })

    /** Recount every host up, deepest first, until the root's totals count every host up (rounds taken). */
    const settle = async (): Promise<number> => {
      const d = depths(up)
      const order = [...up].sort((a, b) => d.get(b)! - d.get(a)!)
      for (let round = 1; round <= 3; round++) {
        // a round a minute: as far apart as hosts send their sums (keptIntervalOf(_, 'up'))
        time += 60_000
        for (const p of order) await notices.get(p)!.recount()
        const root = notices.get(keptRoot(up)!)!.totals()
        if (root.reporting === up.length) return round
      }
      return Infinity
    }
    const expected = (): { redundant: number, degraded: number } => ({
      redundant: up.reduce((a, p) => a + own.get(p)!.chunks.redundant, 0),
      degraded: up.reduce((a, p) => a + own.get(p)!.chunks.degraded, 0)
    })

    it('the root sums every host\'s counts; the others take its totals from gossip, and only its', async () => {
      assert.equal(await settle(), 1, 'deepest first: one round')
      assert.equal(gossip.length, 1, 'one message on gossip: the root\'s totals')
      const root = keptRoot(up)!
      const totals = await openKept(gossip[0], verify)
      assert.equal(totals.peer, root)
      assert.equal(totals.hosts, N)
      assert.deepEqual({ redundant: totals.chunks.redundant, degraded: totals.chunks.degraded }, expected())
      assert.equal(sentUp, N - 1, 'each other host sent one sum to its parent')
      for (const p of up) {
        if (p === root) continue
        const n = notices.get(p)!
        assert.equal(await n.take(gossip[0], 'a peer'), 'new')
        const t = n.totals()
        assert.equal(t.reporting, N)
        assert.equal(t.members, N)
        assert.equal(t.chunks.redundant, expected().redundant)
        assert.equal(t.chunks.degraded, expected().degraded)
        assert.deepEqual(n.held().map(h => h.peer), [root], 'the table it serves and digests: the root\'s totals')
      }
      // another host's sum on gossip is not the network's
      const other = up.find(p => p !== root)!
      const fake = await signKept(signers.find(s => s.author === other)!, Date.now() * 1000, counts(1), N)
      assert.equal(await notices.get(up.find(p => p !== root && p !== other)!)!.take(fake, other), 'old')
    })

    it('nothing moved: nothing sent; a host down: the sums follow, the root tells the new totals', async () => {
      await settle()
      const sent = sentUp
      for (const p of up) await notices.get(p)!.recount()
      assert.equal(sentUp, sent, 'idle: no sum sent again')
      assert.equal(gossip.length, 1)
      // a host down (not the root): every host hears of it (the membership's events)
      const gone = up.find(p => p !== keptRoot(up) && keptParent(up, p) !== keptRoot(up))!
      up = up.filter(p => p !== gone)
      for (const p of up) notices.get(p)!.upChanged()
      own.set(up[5], counts(1000, 7))
      assert.ok(await settle() <= 2)
      const totals = await openKept(gossip[gossip.length - 1], verify)
      assert.equal(totals.hosts, N - 1)
      assert.deepEqual({ redundant: totals.chunks.redundant, degraded: totals.chunks.degraded }, expected())
      // the root down: the next smallest id sums and tells
      const root = keptRoot(up)!
      up = up.filter(p => p !== root)
      for (const p of up) notices.get(p)!.upChanged()
      await settle()
      const last = await openKept(gossip[gossip.length - 1], verify)
      assert.equal(last.peer, keptRoot(up))
      assert.equal(last.hosts, N - 2)
      assert.deepEqual({ redundant: last.chunks.redundant, degraded: last.chunks.degraded }, expected())
    })

    it('a host that comes up takes children from others: they forget them, nothing is counted twice', async () => {
      // the last signer joins: it is the first of some group, and hosts whose parent was another become its children
      const joiner = up[N - 1]
      up = up.slice(0, N - 1)
      assert.equal(await settle(), 1)
      const moves = up.filter(p => keptParent(up, p) !== keptParent([...up, joiner], p))
      assert.ok(moves.length > 0 || keptParent([...up, joiner], joiner) !== undefined, 'the joiner is in the tree')
      up = [...up, joiner]
      for (const p of up) notices.get(p)!.upChanged()
      await settle()
      const totals = await openKept(gossip[gossip.length - 1], verify)
      assert.equal(totals.hosts, N, 'each host once')
      assert.deepEqual({ redundant: totals.chunks.redundant, degraded: totals.chunks.degraded }, expected())
    })

    it('a child that moved to another parent and back counts again only once it sent its sum again', async () => {
      // a host X whose coming up makes a child C of the root X's child
      const all = up
      let found: { x: string, c: string } | undefined
      for (const x of all) {
        const without = all.filter(p => p !== x)
        const root = keptRoot(without)
        const c = without.find(p => p !== root && keptParent(without, p) === root && keptParent(all, p) === x)
        if (c !== undefined && keptRoot(all) === root) { found = { x, c }; break }
      }
      assert.ok(found !== undefined, 'such hosts among 40')
      const { x, c } = found
      up = all.filter(p => p !== x)
      const root = notices.get(keptRoot(up)!)!
      await settle()
      assert.equal(root.totals().reporting, N - 1)
      // X up: C is X's child; C's counts move and go to X
      up = all
      for (const p of up) notices.get(p)!.upChanged()
      own.set(c, counts(5000))
      await settle()
      assert.equal(root.totals().chunks.redundant, expected().redundant)
      // X down again: C is the root's child again, and has not sent it its sum since it moved
      up = all.filter(p => p !== x)
      for (const p of up) notices.get(p)!.upChanged()
      const t = root.totals()
      assert.ok(t.reporting < N - 1, 'C\'s sum from before it moved is not counted')
      assert.ok(t.chunks.redundant < expected().redundant - 4000)
      await settle()
      assert.equal(root.totals().reporting, N - 1)
      assert.equal(root.totals().chunks.redundant, expected().redundant)
    })

    it('a root that restarted (its children forgotten) counts them again though nothing changed: unchanged sums are sent again', async () => {
      await settle()
      const root = keptRoot(up)!
      const signer = signers.find(s => s.author === root)!
      notices.get(root)!.stop()
      // the same host back at once: the same hosts up, no member event anywhere
      const fresh = new Tracked({ signer, verify, counts: () => own.get(root)!, up: () => up, member: () => true, tell: () => {}, publish: () => async (msg: Uint8Array) => { gossip.push(msg); return ['a peer'] }, sendUp: async () => true, clock: still })
      notices.set(root, fresh)
      await fresh.recount()
      assert.ok(fresh.totals().reporting < N, 'its children forgotten')
      // idle: within one up interval nothing is sent again
      const sent = sentUp
      time += keptIntervalOf(N, 'up')
      for (const p of up) await notices.get(p)!.recount()
      assert.equal(sentUp, sent)
      // after KEPT_RESEND_INTERVALS of them, every host's unchanged sum once more
      time += KEPT_RESEND_INTERVALS * keptIntervalOf(N, 'up')
      const d = depths(up)
      for (const p of [...up].sort((a, b) => d.get(b)! - d.get(a)!)) await notices.get(p)!.recount()
      assert.equal(sentUp, sent + N - 1, 'each other host sent its sum again')
      assert.equal(fresh.totals().reporting, N)
      assert.equal(fresh.totals().chunks.redundant, expected().redundant)
    })

    /** A clock whose timers the test fires itself, one at a time, and the waits they were set for. */
    const recordingClock = (): KeptClock & { timers: Array<{ fn: () => void, ms: number }> } => {
      const timers: Array<{ fn: () => void, ms: number }> = []
      return { timers, now: () => time, setTimeout: (fn, ms) => { const t = { fn, ms }; timers.push(t); return t }, clearTimeout: (h) => { const i = timers.indexOf(h as { fn: () => void, ms: number }); if (i >= 0) timers.splice(i, 1) } }
    }
    /**
     * Turns of the event loop until `done` (a recount a timer started settles), failing with
     * `what` after UNTIL_MS (kept-tree under heavy load: unbounded, a recount that never settled
     * spun to mocha's timeout, and the test's body went on changing the next tests' state).
     */
    const until = async (done: () => boolean, what: string): Promise<void> => {
      const start = performance.now()
      while (!done()) {
        if (performance.now() - start > UNTIL_MS) throw new Error(`never happened within ${UNTIL_MS} ms: ${what}`)
        await new Promise(resolve => setImmediate(resolve))
      }
    }

    it('a sum its parent did not take is sent again after the up interval, backing off', async () => {
      const child = up.find(p => keptParent(up, p) === keptRoot(up))!
      const signer = signers.find(s => s.author === child)!
      const clock = recordingClock()
      // its parent refuses twice (it does not see it as its child yet), then takes it
      const answers = [false, false]
      let tries = 0
      const n = new Tracked({ signer, verify, counts: () => own.get(child)!, up: () => up, member: () => true, tell: () => {}, publish: () => async () => ['a peer'], sendUp: async () => { tries++; return answers.shift() ?? true }, clock })
      const every = keptIntervalOf(N, 'up')
      await n.recount()
      assert.equal(tries, 1)
      assert.equal(clock.timers.length, 1, 'not taken: tried again')
      assert.equal(clock.timers[0].ms, every, 'after the up interval')
      time += every
      clock.timers.shift()!.fn()
      await until(() => tries === 2 && clock.timers.length === 1, 'the second send, and one timer set after it')
      assert.equal(clock.timers[0].ms, 2 * every, 'then after twice that')
      time += 2 * every
      clock.timers.shift()!.fn()
      await until(() => tries === 3 && clock.timers.length === 1, 'the third send, and one timer set after it')
      assert.equal(clock.timers[0].ms, KEPT_RESEND_INTERVALS * every, 'taken: sent again only after KEPT_RESEND_INTERVALS up intervals while nothing changes')
      n.stop()
    })

    it('a sum its parent did not take, backing off: once the tree gives it another parent, that one is sent to at the up pace', async () => {
      // a child whose parent is not the root, and that has another parent once it is gone
      const child = up.find(p => {
        const parent = keptParent(up, p)
        if (parent === null || parent === undefined || parent === keptRoot(up)) return false
        const next = keptParent(up.filter(x => x !== parent), p)
        return next !== null && next !== undefined
      })!
      const parent = keptParent(up, child)!
      const signer = signers.find(s => s.author === child)!
      const clock = recordingClock()
      let view = up
      const to: string[] = []
      // its parent never takes it (it does not see it as its child)
      const n = new Tracked({ signer, verify, counts: () => own.get(child)!, up: () => view, member: () => true, tell: () => {}, publish: () => async () => ['a peer'], sendUp: async p => { to.push(p); return p !== parent }, clock })
      const every = keptIntervalOf(N, 'up')
      await n.recount()
      for (let i = 1; i <= 3; i++) {
        assert.equal(clock.timers.length, 1)
        assert.equal(clock.timers[0].ms, every * 2 ** (i - 1), `after ${i} sends not taken`)
        if (i === 3) break
        time += clock.timers[0].ms
        clock.timers.shift()!.fn()
        await until(() => to.length === i + 1 && clock.timers.length === 1, `send ${i + 1}, and one timer set after it`)
      }
      // the parent goes: the wait of 4 up intervals is cut to the up pace, to the new parent
      view = up.filter(p => p !== parent)
      n.upChanged()
      const pending = clock.timers.filter(t => t.ms <= keptIntervalOf(N - 1, 'up'))
      assert.equal(pending.length, 1, `a send within the up interval: ${clock.timers.map(t => t.ms).join(', ')}`)
      time += pending[0].ms
      pending[0].fn()
      await until(() => to.length === 4, 'the sum sent to the new parent')
      assert.notEqual(to[3], parent, 'sent to its new parent')
      assert.deepEqual(to.slice(0, 3), [parent, parent, parent])
      n.stop()
    })

    it('a new root: its first totals once the sums the change set off climbed the tree (not a root interval after its last sum sent up); one that starts as the root publishes at the up pace for a while', async () => {
      await settle()
      const clock = recordingClock()
      const old = keptRoot(up)!
      const next = keptRoot(up.filter(p => p !== old))!
      const signer = signers.find(s => s.author === next)!
      let published = 0
      const n = new Tracked({ signer, verify, counts: () => own.get(next)!, up: () => up, member: () => true, tell: () => {}, publish: () => async () => { published++; return ['a peer'] }, sendUp: async () => true, clock })
      await n.recount()
      clock.timers.length = 0
      // the root goes: `next` is the root now, right after it sent its sum up
      up = up.filter(p => p !== old)
      n.upChanged()
      const upEvery = keptIntervalOf(N - 1, 'up')
      const rootEvery = keptIntervalOf(N - 1, 'root')
      const settleMs = keptRootSettleMs(N - 1)
      assert.ok(KEPT_ROOT_SETTLE_INTERVALS * upEvery <= settleMs && settleMs < rootEvery)
      // its first totals wait for the sums the change sets off up the tree (keptRootSettleMs),
      // not for a root interval after the sum it last sent up
      const start = time
      while (published === 0) {
        assert.equal(clock.timers.length, 1)
        const timer = clock.timers.shift()!
        time += timer.ms
        assert.ok(time - start <= settleMs + 2 * KEPT_DEBOUNCE_MS, `no totals ${time - start} ms after the change`)
        timer.fn()
        await until(() => clock.timers.length > 0 || published > 0, `the new root's recount at ${time - start} ms after the change: a timer set or totals published`)
      }
      assert.ok(time - start >= settleMs, `totals ${time - start} ms after the change, before the sums climbed the tree`)
      // then at the root's pace
      n.changed()
      assert.equal(clock.timers.at(-1)!.ms, rootEvery)
      clock.timers.length = 0
      // settled: at the root's pace
      n.stop()
      const settled = new Tracked({ signer, verify, counts: () => own.get(next)!, up: () => up, member: () => true, tell: () => {}, publish: () => async () => { published++; return ['a peer'] }, sendUp: async () => true, clock })
      settled.changed()
      time += KEPT_ROOT_SETTLE_INTERVALS * upEvery
      clock.timers.shift()!.fn()
      await until(() => published === 2, 'the settled root\'s totals published')
      settled.changed()
      assert.equal(clock.timers.at(-1)!.ms, rootEvery)
      settled.stop()
    })

    it('the root after the hosts up changed: its totals wait for the sums the change sets off (one message, counting the change), from the first change only; a connection alone is no change', async () => {
      // the host that joins later: any but the first by id (one that sorts first is the root once
      // it joined, and this root a host that sends its sum up: it never publishes totals)
      const joiner = up.find(p => p !== keptRoot(up))!
      up = up.filter(p => p !== joiner)
      await settle()
      const root = keptRoot(up)!
      assert.equal(keptRoot([...up, joiner]), root, 'the root stays the root when the host joins')
      const clock = recordingClock()
      let published = 0
      const n = new Tracked({ signer: signers.find(s => s.author === root)!, verify, counts: () => own.get(root)!, up: () => up, member: () => true, tell: () => {}, publish: () => async () => { published++; return ['a peer'] }, sendUp: async () => true, clock })
      await n.recount()
      assert.equal(published, 1)
      const rootEvery = keptIntervalOf(N, 'root')
      /** Timers run in order until `done` (`what`), at most 20: the virtual time it took. */
      const run = async (done: () => boolean, what: string): Promise<number> => {
        const start = time
        for (let fired = 0; !done(); fired++) {
          assert.ok(fired < 20, `${what}: not after 20 timers (${time - start} ms)`)
          assert.equal(clock.timers.length, 1, `${what}: one timer set (${time - start} ms)`)
          const timer = clock.timers.shift()!
          time += timer.ms
          timer.fn()
          await until(() => clock.timers.length > 0 || done(), `the root's recount at ${time - start} ms: a timer set, or ${what}`)
        }
        return time - start
      }
      // idle a while; a connection (upChanged, the hosts up unchanged) and a count that moved: at once
      time += 2 * rootEvery
      n.upChanged()
      own.set(root, counts(77))
      n.changed()
      assert.equal(await run(() => published === 2, 'the totals after a count moved'), KEPT_DEBOUNCE_MS)
      // a host lapses and is back within the settle: nothing moved, no totals
      time += 2 * rootEvery
      clock.timers.length = 0
      const all = up
      up = all.filter(p => p !== all.find(q => q !== root))
      n.upChanged()
      up = all
      n.upChanged()
      // its timers run out (each recount given turns of the event loop to set the next, if any)
      for (let i = 0; i < 6 && clock.timers.length > 0; i++) {
        const timer = clock.timers.shift()!
        time += timer.ms
        timer.fn()
        for (let k = 0; k < 1000 && clock.timers.length === 0; k++) await new Promise(resolve => setImmediate(resolve))
      }
      assert.equal(clock.timers.length, 0)
      assert.equal(published, 2, 'nothing moved')
      // idle a while; a host joins, and another a little later: the totals wait keptRootSettleMs from the first
      time += 2 * rootEvery
      clock.timers.length = 0
      up = [...up, joiner]
      n.upChanged()
      time += 1000
      n.upChanged()
      const took = await run(() => published === 3, 'the totals after two hosts joined')
      const settleMs = keptRootSettleMs(N)
      assert.ok(took + 1000 >= settleMs && took + 1000 <= settleMs + 2 * KEPT_DEBOUNCE_MS, `${took + 1000} ms, settle ${settleMs}`)
      n.stop()
    })

    it('the root\'s totals go on gossip as a sum (their own tag, which a host of an older version ignores), a host\'s record not', async () => {
      assert.notEqual(KEPT_SUM_GOSSIP_TAG, KEPT_GOSSIP_TAG)
      assert.notEqual(KEPT_SUM_GOSSIP_TAG, MEMBERS_GOSSIP_TAG)
      // host.ts GOSSIP_TAGS: a tagged message is never taken for an op message, and one whose tag
      // has no handler (a host of an older version) is ignored (test/node/host.test.ts)
      assert.ok(KEPT_SUM_GOSSIP_TAG >= 0x40 && KEPT_SUM_GOSSIP_TAG <= 0x5f)
      const root = signers.find(s => s.author === keptRoot(up))!
      const kinds: Array<boolean | undefined> = []
      const n = new Tracked({ signer: root, verify, counts: () => own.get(root.author)!, up: () => up, member: () => true, tell: () => {}, publish: () => async (_msg: Uint8Array, sum?: boolean) => { kinds.push(sum); return ['a peer'] }, sendUp: async () => true, clock: still })
      await n.recount()
      assert.deepEqual(kinds, [true], 'the root\'s totals, as a sum')
      n.stop()
      // not along the tree: the host's own record, not as a sum
      const flatKinds: Array<boolean | undefined> = []
      const flat = new Tracked({ signer: root, verify, counts: () => own.get(root.author)!, up: () => up, member: () => true, tell: () => {}, publish: () => async (_msg: Uint8Array, sum?: boolean) => { flatKinds.push(sum); return ['a peer'] }, clock: still })
      await flat.recount()
      assert.deepEqual(flatKinds, [undefined])
      flat.stop()
    })

    it('the tree is decided on the member table\'s size, not on this host\'s connections: one host of 50 at 32 connections sums as the others', async () => {
      assert.equal(keptTreeMode(50), false)
      assert.equal(keptTreeMode(FULL_MESH_PEERS), false)
      assert.equal(keptTreeMode(FULL_MESH_PEERS + 1), true)
      assert.equal(keptTreeMode(1000), true)
      // a host beyond its own full mesh (publish given: --max-connections 32) in a 50-member
      // network: its record on gossip, as every other member's; no sum to a parent that ignores it
      const [a] = signers
      let ups = 0
      const published: Uint8Array[] = []
      const n = new Tracked({ signer: a, verify, counts: () => own.get(a.author)!, up: () => up, member: () => true, tell: () => {}, publish: () => async (msg: Uint8Array) => { published.push(msg); return ['a peer'] }, sendUp: async () => { ups++; return true }, tree: () => keptTreeMode(50), clock: still })
      await n.recount()
      assert.equal(ups, 0)
      assert.equal(published.length, 1)
      assert.equal((await openKept(published[0], verify)).hosts, undefined, 'its own record')
      assert.equal(n.totals().reporting, 1, 'its totals from the records it holds')
      n.stop()
    })

    it('the root\'s totals claiming more hosts than are up are not taken', async () => {
      await settle()
      const root = signers.find(s => s.author === keptRoot(up))!
      const other = notices.get(up.find(p => p !== root.author)!)!
      assert.equal(await other.take(await signKept(root, Date.now() * 1000, counts(5), N + 17), 'a peer'), 'old')
      assert.equal(other.refused, 1)
      assert.equal(await other.take(await signKept(root, Date.now() * 1000 + 1, counts(5), N + 16), 'a peer'), 'new', 'views of the hosts up differ a while')
      assert.equal(other.totals().reporting, N + 16)
    })

    it('the root\'s totals heard before this host sees their signer as the root (a host starting, its view of the hosts up not settled) are taken once it does', async () => {
      await settle()
      const root = signers.find(s => s.author === keptRoot(up))!
      const joiner = signers.find(s => s.author !== root.author)!
      // a host starting: until it knows itself beyond the full mesh, only its connected peers are up
      let view = up.filter(p => p !== root.author).slice(0, 3)
      const n = new Tracked({ signer: joiner, verify, counts: () => counts(1), up: () => view, member: () => true, tell: () => {}, publish: () => async () => ['x'], sendUp: async () => true, clock: still })
      const totals = await signKept(root, Date.now() * 1000, counts(5), N)
      assert.equal(await n.take(totals, 'a peer'), 'old', 'not the root here yet: not taken, not forwarded')
      // other members' totals offered meanwhile (a peer id that sorts first, an old root's: a
      // kad id smaller than the root's) displace nothing
      // (not one of the hosts this host sees up: it would be the root of that view)
      let first = signers.find(s => s.author < root.author && !view.includes(s.author))
      while (first === undefined) { const s = signerFor(await generateKeyPair('Ed25519')); if (s.author < root.author) first = s }
      assert.equal(await n.take(await signKept(first, Date.now() * 1000, counts(9), 2), 'a peer'), 'old')
      let older: Signer | undefined
      while (older === undefined) { const s = signerFor(await generateKeyPair('Ed25519')); if (keptRoot([s.author, root.author]) === s.author) older = s }
      assert.equal(await n.take(await signKept(older, Date.now() * 1000, counts(9), 3), 'a peer'), 'old')
      assert.deepEqual(n.held(), [])
      view = up
      n.upChanged()
      assert.deepEqual(n.held().map(h => h.peer), [root.author], 'the root\'s totals, taken once it is the root here')
      assert.equal(n.totals().reporting, N)
      assert.equal(n.totals().chunks.redundant, counts(5).chunks.redundant)
      assert.equal(n.refused, 0)
      n.stop()
    })

    it('the root\'s totals come down the tree in the answer to a sum sent up: a host gossip missed them on takes them there, from the root only', async () => {
      await settle()
      const root = keptRoot(up)!
      const totals = gossip[gossip.length - 1]
      assert.equal((await openKept(totals, verify)).peer, root)
      const child = signers.find(s => keptParent(up, s.author) === root)!
      const other = signers.find(s => s.author !== root && s !== child)!
      // the parent's answers: first totals signed by a host not the root (not taken), then the root's
      const answers = [await signKept(other, Date.now() * 1000, counts(3), N), totals]
      const n = new Tracked({ signer: child, verify, counts: () => counts(50 + answers.length), up: () => up, member: () => true, tell: () => {}, publish: () => async () => ['a peer'], sendUp: async () => ({ taken: true, root: answers.shift() }), clock: still })
      await n.recount()
      assert.deepEqual(n.held(), [], 'totals not signed by the root: not taken')
      await n.recount()
      assert.deepEqual(n.held().map(h => h.peer), [root])
      assert.equal(n.totals().reporting, N)
      assert.equal(n.refused, 0)
      n.stop()
      // the parent gives the root's totals it holds (the root its own)
      assert.equal(notices.get(root)!.rootTotals(), totals)
      assert.equal(notices.get(child.author)!.rootTotals(), undefined, 'gossip is not run here: none held')
      assert.equal(await notices.get(child.author)!.take(totals, 'a peer'), 'new')
      assert.equal(notices.get(child.author)!.rootTotals(), totals)
    })

    it('the root\'s totals may claim as many hosts as the member table has, when this host sees fewer up (starting, not yet beyond the full mesh)', async () => {
      await settle()
      const root = signers.find(s => s.author === keptRoot(up))!
      const joiner = signers.find(s => s.author !== root.author)!
      const view = [root.author, joiner.author]
      const n = new Tracked({ signer: joiner, verify, counts: () => counts(1), up: () => view, members: () => N, member: () => true, tell: () => {}, publish: () => async () => ['x'], sendUp: async () => true, clock: still })
      assert.equal(await n.take(await signKept(root, Date.now() * 1000, counts(5), N), 'a peer'), 'new')
      assert.equal(n.refused, 0)
      time += 60_000
      assert.equal(await n.take(await signKept(root, Date.now() * 1000 + 1, counts(5), N + 17), 'a peer'), 'old', 'more than the members and the slack')
      assert.equal(n.refused, 1)
      n.stop()
    })

    it('totals of a member not the root here are taken once it is, if no older than a root interval; of at most KEPT_ROOT_CANDIDATES members', async () => {
      await settle()
      const root = signers.find(s => s.author === keptRoot(up))!
      const joiner = signers.find(s => s.author !== root.author)!
      let view = up.filter(p => p !== root.author).slice(0, 3)
      const n = new Tracked({ signer: joiner, verify, counts: () => counts(1), up: () => view, member: () => true, tell: () => {}, publish: () => async () => ['x'], sendUp: async () => true, clock: still })
      assert.equal(await n.take(await signKept(root, Date.now() * 1000, counts(5), N), 'a peer'), 'old')
      // a root interval later: too old to be taken
      time += keptIntervalOf(N, 'root') + 1
      view = up
      n.upChanged()
      assert.deepEqual(n.held(), [])
      // offered again, then more than KEPT_ROOT_CANDIDATES others: the first heard is dropped
      view = up.filter(p => p !== root.author).slice(0, 3)
      assert.equal(await n.take(await signKept(root, Date.now() * 1000 + 1, counts(5), N), 'a peer'), 'old')
      for (const s of signers.filter(s => s !== root && s !== joiner && !view.includes(s.author)).slice(0, KEPT_ROOT_CANDIDATES)) {
        time += 1000
        assert.equal(await n.take(await signKept(s, Date.now() * 1000, counts(2), 2), 'a peer'), 'old')
      }
      view = up
      n.upChanged()
      assert.deepEqual(n.held(), [], 'dropped: sums from many keys hold no more than KEPT_ROOT_CANDIDATES')
      n.stop()
    })

    it('the root\'s totals in a sum\'s answer: a host\'s record there is refused, not kept; a stop while they are checked sets no timer', async () => {
      await settle()
      const root = signers.find(s => s.author === keptRoot(up))!
      const child = signers.find(s => keptParent(up, s.author) === root.author)!
      const other = signers.find(s => s !== root && s !== child)!
      const rec = await signKept(other, Date.now() * 1000, counts(7))
      const n = new Tracked({ signer: child, verify, counts: () => counts(2), up: () => up, member: () => true, tell: () => {}, publish: () => async () => ['x'], sendUp: async () => ({ taken: true, root: rec }), clock: still })
      await n.recount()
      assert.equal(n.table.get(other.author), undefined)
      assert.equal(n.refused, 1)
      n.stop()
      // stopped while the answer's totals are verified
      let release!: () => void
      const gate = new Promise<void>(resolve => { release = resolve })
      let gated = false
      const clock = recordingClock()
      const totals = await signKept(root, Date.now() * 1000, counts(5), N)
      const slow = new Tracked({ signer: child, verify: async (...a) => { gated = true; await gate; return await verify(...a) }, counts: () => counts(2), up: () => up, member: () => true, tell: () => {}, publish: () => async () => ['x'], sendUp: async () => ({ taken: true, root: totals }), clock })
      const counting = slow.recount()
      await until(() => gated, 'the root\'s totals in the answer being checked')
      slow.stop()
      clock.timers.length = 0
      release()
      await counting
      assert.deepEqual(clock.timers, [], 'no timer set after stop()')
    })

    it('a sum from a host not its child is refused before its signature is checked', async () => {
      const parent = keptRoot(up)!
      const stranger = signers.find(s => { const q = keptParent(up, s.author); return typeof q === 'string' && q !== parent })!
      let verified = 0
      const n = new Tracked({ signer: signers.find(s => s.author === parent)!, verify: async (...a) => { verified++; return await verify(...a) }, counts: () => emptyKept(), up: () => up, member: () => true, tell: () => {}, publish: () => async () => ['x'], sendUp: async () => true, clock: still })
      assert.equal(await n.takeSum(await signKept(stranger, 1, counts(5), 1), stranger.author), 'old')
      assert.equal(verified, 0)
      assert.equal(n.totals().reporting, 1)
      const child = signers.find(s => keptParent(up, s.author) === parent)!
      assert.equal(await n.takeSum(await signKept(child, 1, counts(5), 1), child.author), 'new')
      assert.equal(verified, 1)
      n.stop()
    })

    it('a sum is taken from its own signer only, and of a member; a host\'s record is no sum', async () => {
      // a parent with two children a and c
      const parentOf = (s: Signer): string | undefined | null => keptParent(up, s.author)
      const a = signers.find(s => { const q = parentOf(s); return typeof q === 'string' && signers.some(c => c !== s && parentOf(c) === q) })!
      const b = signers.find(s => s.author === parentOf(a))!
      const c = signers.find(s => s !== a && parentOf(s) === b.author)!
      const parent = notices.get(b.author)!
      const sum = await signKept(a, 1, counts(5), 2)
      assert.equal(await parent.takeSum(sum, c.author), 'reject', 'sent by another host')
      assert.equal(await parent.takeSum(await signKept(a, 2, counts(5)), a.author), 'reject', 'a host\'s own record')
      assert.equal(await parent.takeSum(await signKept(a, 2, counts(5), 2 * keptGroupSize(up, a.author) + 17), a.author), 'reject', 'more hosts than its group has')
      assert.equal(await parent.takeSum(sum, a.author), 'new')
      assert.equal(await parent.takeSum(await signKept(a, 9, counts(6), 2), a.author), 'old', 'a flood: too soon after the last')
      const strict = new Tracked({ signer: b, verify, counts: () => emptyKept(), up: () => up, member: p => p !== a.author, tell: () => {}, publish: () => async () => ['x'], sendUp: async () => true, clock: still })
      assert.equal(await strict.takeSum(await signKept(a, 3, counts(5), 1), a.author), 'old', 'not a member')
      strict.stop()
      assert.equal(parent.refused, 3)
    })
  })
})
