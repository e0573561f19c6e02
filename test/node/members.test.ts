// The member table (node/net/members.ts, issue 14 item 3): a record is taken only when signed by
// the host it describes, a newer one replaces an older, a malformed, forged, future-dated or
// stale one is refused; a DOWN notice is taken only from one of the subject's XOR neighbours (or
// the subject itself, leaving), signed by it, and a newer record of the subject brings it back;
// the table is bounded; records nobody refreshed expire, later in a bigger network (the refresh
// period grows with it, so refreshes cost each host the same whatever the size). A record's capacity class (issue 14
// item 4) is signed with it, bounded, and replaced only by a newer record. Its `features` (net/features.ts) are
// taken when well formed and refuse the record when not; a table signs none unless
// told to (the daemon tells it), so its records stay what hosts of older versions (strict decoders) take.
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { makeKey, signerFor, verify } from '../helpers/tree.ts'
import { FeatureListError, MAX_FEATURES } from '../../node/net/features.ts'
import { MEMBERS, MemberRecordError, MemberTable, MAX_CAPACITY_CLASS, MEMBER_EXPIRE_MS, MEMBER_REFRESH_MS, MEMBER_REFRESH_PER_MEMBER_MS, NEIGHBOURS, memberExpireMs, memberRefreshMs } from '../../node/net/members.ts'
import type { Signer } from '../../node/tree/index.ts'

const T0 = 1_800_000_000_000

interface Peer { id: string, signer: Signer }
async function peer (): Promise<Peer> {
  const signer = signerFor(await makeKey())
  return { id: signer.author, signer }
}
/** A member message of `p` (seq, addrs), signed by `by` (p itself unless forged). */
async function record (p: Peer, seq: number, addrs = ['/ip4/127.0.0.1/tcp/1'], by: Signer = p.signer): Promise<Uint8Array> {
  const r = dagCbor.encode({ peer: p.id, seq, addrs })
  return dagCbor.encode({ t: 'member', r, s: await by.sign(r) })
}
/** A member message of `p` carrying the record fields `more` (a capacity class), signed by `by`. */
async function recordWith (p: Peer, seq: number, more: Record<string, unknown>, by: Signer = p.signer): Promise<Uint8Array> {
  const r = dagCbor.encode({ peer: p.id, seq, addrs: ['/ip4/127.0.0.1/tcp/1'], ...more })
  return dagCbor.encode({ t: 'member', r, s: await by.sign(r) })
}
async function down (by: Peer, subject: string, seq: number, signer: Signer = by.signer): Promise<Uint8Array> {
  const r = dagCbor.encode({ by: by.id, peer: subject, seq })
  return dagCbor.encode({ t: 'down', r, s: await signer.sign(r) })
}
async function table (opts: { now?: () => number, max?: number } = {}): Promise<{ t: MemberTable, self: Peer }> {
  const self = await peer()
  return { t: new MemberTable({ self: self.id, signer: self.signer, verify, now: opts.now ?? (() => T0), maxMembers: opts.max }), self }
}

describe('node/net member table', function () {
  this.timeout(60_000)

  it('takes records signed by their subject; newer replaces older; forged, malformed, future and stale ones are refused', async () => {
    const { t } = await table()
    const [a, b] = [await peer(), await peer()]
    assert.equal(await t.take(await record(a, T0 - 5)), 'new')
    assert.deepEqual(t.record(a.id), { peer: a.id, seq: T0 - 5, addrs: ['/ip4/127.0.0.1/tcp/1'] })
    assert.equal(await t.take(await record(a, T0 - 5)), 'old')
    assert.equal(await t.take(await record(a, T0 - 9)), 'old')
    assert.equal(await t.take(await record(a, T0 - 1, ['/ip4/127.0.0.1/tcp/2'])), 'new')
    assert.deepEqual(t.record(a.id)?.addrs, ['/ip4/127.0.0.1/tcp/2'])
    // a's record signed by b: refused, nothing changes
    assert.equal(await t.take(await record(a, T0, ['/ip4/10.0.0.1/tcp/9'], b.signer)), 'invalid')
    assert.equal(t.record(a.id)?.seq, T0 - 1)
    // from far in the future (it would never expire), or already expired
    assert.equal(await t.take(await record(b, T0 + 3600_000)), 'invalid')
    assert.equal(await t.take(await record(b, T0 - MEMBER_EXPIRE_MS - 1)), 'old')
    assert.equal(t.has(b.id), false)
    // malformed
    assert.equal(await t.take(new Uint8Array([1, 2, 3])), 'invalid')
    assert.equal(await t.take(dagCbor.encode({ t: 'member', r: dagCbor.encode({ peer: b.id, seq: -1, addrs: [] }), s: new Uint8Array(64) })), 'invalid')
    assert.equal(await t.take(dagCbor.encode({ t: 'member', r: dagCbor.encode({ peer: b.id, seq: 1, addrs: Array(9).fill('/ip4/1.2.3.4/tcp/1') }), s: new Uint8Array(64) })), 'invalid')
    assert.equal(await t.take(dagCbor.encode({ t: 'what', r: new Uint8Array(1), s: new Uint8Array(1) })), 'invalid')
    assert.deepEqual(t.members(), [a.id])
  })

  it('watchedBy(w): exactly the members whose neighbours() hold w, members alone in their part of the key space included', async () => {
    const { t, self } = await table()
    const peers = [self]
    for (let i = 0; i < 40; i++) peers.push(await peer())
    for (const p of peers) assert.equal(await t.take(await record(p, T0 - 5)), 'new')
    for (const n of [NEIGHBOURS, 3]) {
      for (const w of peers) {
        const want = t.members().filter(p => p !== w.id && t.neighbours(p, n).includes(w.id)).sort()
        assert.deepEqual(t.watchedBy(w.id, n).sort(), want, `watchedBy(${w.id.slice(-6)}, ${n})`)
      }
    }
    // every member is watched by n members (its neighbours), so the watched lists add up to n per member
    const total = peers.reduce((sum, w) => sum + t.watchedBy(w.id).length, 0)
    assert.equal(total, peers.length * NEIGHBOURS)
    assert.deepEqual(t.watchedBy((await peer()).id), [], 'a host not in the table watches nobody')
  })

  it('a DOWN notice counts only from the subject\'s neighbours (or itself), signed; a newer record brings the subject back', async () => {
    const { t } = await table()
    const peers = await Promise.all(Array.from({ length: NEIGHBOURS + 6 }, async () => await peer()))
    for (const p of peers) assert.equal(await t.take(await record(p, T0 - 100)), 'new')
    const subject = peers[0]
    const watchers = t.neighbours(subject.id)
    assert.equal(watchers.length, NEIGHBOURS)
    const outsider = peers.find(p => p !== subject && !watchers.includes(p.id)) as Peer
    const watcher = peers.find(p => p.id === watchers[0]) as Peer
    const downs: string[] = []
    t.addEventListener('down', e => { downs.push((e as CustomEvent<string>).detail) })
    // not a neighbour: not taken (and not held against whoever forwarded it)
    assert.equal(await t.take(await down(outsider, subject.id, T0 - 100)), 'old')
    assert.equal(t.has(subject.id), true)
    // a neighbour's notice signed by someone else: refused
    assert.equal(await t.take(await down(watcher, subject.id, T0 - 100, outsider.signer)), 'invalid')
    assert.equal(t.has(subject.id), true)
    // about an older record than the one held: nothing
    assert.equal(await t.take(await down(watcher, subject.id, T0 - 200)), 'old')
    // the neighbour's own notice: down
    assert.equal(await t.take(await down(watcher, subject.id, T0 - 100)), 'new')
    assert.equal(t.has(subject.id), false)
    assert.deepEqual(downs, [subject.id])
    assert.ok(!t.members().includes(subject.id))
    // the same record again does not bring it back; a newer one does
    assert.equal(await t.take(await record(subject, T0 - 100)), 'old')
    assert.equal(await t.take(await record(subject, T0 - 50)), 'new')
    assert.equal(t.has(subject.id), true)
    // a member leaving says so itself
    const leaver = peers[1]
    assert.equal(await t.take(await down(leaver, leaver.id, T0 - 100)), 'new')
    assert.equal(t.has(leaver.id), false)
  })

  it('a neighbour\'s DOWN notice about this host leaves it a member here and says so (it signs a newer record, which brings it back)', async () => {
    const { t, self } = await table()
    const peers = await Promise.all(Array.from({ length: NEIGHBOURS + 4 }, async () => await peer()))
    for (const p of peers) assert.equal(await t.take(await record(p, T0 - 100)), 'new')
    const own = await t.signOwn(['/ip4/127.0.0.1/tcp/5'])
    assert.ok(own !== undefined)
    const seq = t.record(self.id)!.seq
    const watcher = peers.find(p => t.neighbours(self.id).includes(p.id)) as Peer
    const outsider = peers.find(p => !t.neighbours(self.id).includes(p.id)) as Peer
    const downs: string[] = []
    t.addEventListener('down', e => { downs.push((e as CustomEvent<string>).detail) })
    // from a host that does not watch this one, or forged: nothing
    assert.equal(await t.take(await down(outsider, self.id, seq)), 'old')
    assert.equal(await t.take(await down(watcher, self.id, seq, outsider.signer)), 'invalid')
    assert.deepEqual(downs, [])
    // a watcher's: this host stays a member of its own table, and hears of it
    assert.equal(await t.take(await down(watcher, self.id, seq)), 'old')
    assert.deepEqual(downs, [self.id])
    assert.equal(t.has(self.id), true)
    // a host that took the notice takes the newer record this host signs then
    const other = (await table()).t
    assert.equal(await other.take(own), 'new')
    for (const p of peers) await other.take(await record(p, T0 - 100))
    assert.equal(await other.take(await down(watcher, self.id, seq)), 'new')
    assert.equal(other.has(self.id), false)
    assert.equal(await other.take((await t.signOwn(['/ip4/127.0.0.1/tcp/5']))!), 'new')
    assert.equal(other.has(self.id), true)
  })

  it('this host signs its own record (newer each time) and, leaving, a DOWN for itself after which it signs none', async () => {
    let now = T0
    const { t, self } = await table({ now: () => now })
    const first = await t.signOwn(['/ip4/127.0.0.1/tcp/5'])
    assert.ok(first !== undefined)
    const other = (await table()).t
    assert.equal(await other.take(first), 'new')
    now += 1
    assert.equal(await other.take((await t.signOwn(['/ip4/127.0.0.1/tcp/6']))!), 'new')
    assert.deepEqual(other.record(self.id)?.addrs, ['/ip4/127.0.0.1/tcp/6'])
    const bye = await t.signDown(self.id)
    assert.ok(bye !== undefined)
    assert.equal(await other.take(bye), 'new')
    assert.equal(other.has(self.id), false)
    assert.equal(await t.signOwn(['/ip4/127.0.0.1/tcp/6']), undefined)
  })

  it('a table answer carries the DOWN notices held: a host that missed one takes it from the next pull, and the digests agree', async () => {
    const { t: a } = await table()
    const { t: b } = await table()
    const peers = await Promise.all(Array.from({ length: NEIGHBOURS + 2 }, async () => await peer()))
    for (const p of peers) { await a.take(await record(p, T0 - 100)); await b.take(await record(p, T0 - 100)) }
    const subject = peers[0]
    const watcher = peers.find(p => p.id === a.neighbours(subject.id)[0]) as Peer
    // a takes the DOWN notice; b was away while it spread
    assert.equal(await a.take(await down(watcher, subject.id, T0 - 100)), 'new')
    assert.notDeepEqual(a.digest(), b.digest())
    // the pull b makes then (every message of a's answer, as member-service.ts pull() takes them)
    const answer = a.messages()
    assert.equal(answer.length, peers.length, 'the records of the members up, and the DOWN notice')
    for (const msg of answer) await b.take(msg)
    assert.equal(b.has(subject.id), false)
    assert.deepEqual(b.digest(), a.digest())
    // the subject's newer record brings it back, and the notice leaves the answers
    assert.equal(await a.take(await record(subject, T0 - 50)), 'new')
    assert.deepEqual(a.messages().length, peers.length)
    assert.ok(!a.messages().some(m => (dagCbor.decode(m) as { t: string }).t === 'down'))
  })

  it('messages(since): only the records and DOWN notices taken here at or after `since`, by this table\'s clock; at most `max`', async () => {
    let now = T0
    const { t } = await table({ now: () => now })
    const peers = await Promise.all(Array.from({ length: NEIGHBOURS + 2 }, async () => await peer()))
    for (const p of peers) await t.take(await record(p, T0 - 100))
    assert.equal(t.messages(T0).length, peers.length)
    assert.deepEqual(t.messages(T0 + 1), [])
    now = T0 + 60_000
    const fresh = await record(peers[1], T0 + 30_000)
    assert.equal(await t.take(fresh), 'new')
    const watcher = peers.find(p => p.id === t.neighbours(peers[0].id)[0]) as Peer
    const notice = await down(watcher, peers[0].id, T0 - 100)
    assert.equal(await t.take(notice), 'new')
    assert.deepEqual(t.messages(T0 + 1), [fresh, notice])
    assert.deepEqual(t.messages(now + 1), [])
    assert.equal(t.messages().length, peers.length)
    assert.equal(t.messages(-Infinity, 3).length, 3)
  })

  it('a members request may ask for the changes `since` a time; anything else is refused', () => {
    const req = MEMBERS.request!
    assert.deepEqual(req({ t: 'table' }), { t: 'table' })
    assert.deepEqual(req({ t: 'table', since: 5 }), { t: 'table', since: 5 })
    assert.deepEqual(req({ t: 'digest' }), { t: 'digest' })
    for (const bad of [{ t: 'digest', since: 5 }, { t: 'table', since: -1 }, { t: 'table', since: 1.5 }, { t: 'table', since: '5' }, { t: 'table', more: 1 }, { t: 'x' }, null, 'table']) {
      assert.throws(() => req(bad), MemberRecordError, JSON.stringify(bad))
    }
  })

  it('holds at most maxMembers records, and drops the ones nobody refreshed', async () => {
    let now = T0
    const { t } = await table({ now: () => now, max: 5 })
    const peers = await Promise.all(Array.from({ length: 8 }, async () => await peer()))
    for (const [i, p] of peers.entries()) await t.take(await record(p, T0 - 1000 + i))
    assert.equal(t.size, 5)
    // a newer record of a member held is still taken
    assert.equal(await t.take(await record(peers[0], T0)), 'new')
    now = T0 + MEMBER_EXPIRE_MS - 1
    const expired = t.expire()
    assert.deepEqual(expired.sort(), peers.slice(1, 5).map(p => p.id).sort())
    assert.deepEqual(t.members(), [peers[0].id])
  })

  it('the refresh period and the expiry grow with the table; a pulled table\'s size counts for the records it brings', async () => {
    assert.equal(memberRefreshMs(1), MEMBER_REFRESH_MS)
    assert.equal(memberRefreshMs(1000), 1000 * MEMBER_REFRESH_PER_MEMBER_MS)
    assert.equal(memberExpireMs(10), MEMBER_EXPIRE_MS)
    assert.ok(memberExpireMs(10_000) > MEMBER_EXPIRE_MS)
    // a record older than a small table's expiry: refused alone, taken with a 10,000-member table
    const { t } = await table()
    const [a, b] = [await peer(), await peer()]
    assert.equal(await t.take(await record(a, T0 - MEMBER_EXPIRE_MS - 1)), 'old')
    assert.equal(await t.take(await record(a, T0 - MEMBER_EXPIRE_MS - 1), 10_000), 'new')
    // too old even for that network
    assert.equal(await t.take(await record(b, T0 - memberExpireMs(10_000) - 1), 10_000), 'old')
    // the size told is capped by this table's bound (a peer cannot make it keep any stale record)
    const small = await table({ max: 5 })
    assert.equal(await small.t.take(await record(a, T0 - MEMBER_EXPIRE_MS - 1), 10_000), 'old')
    // expire() goes by this table's size: for a table of two, a's record is past the expiry
    assert.deepEqual(t.expire(), [a.id])
  })

  it('a record carries its host\'s capacity class, signed: a newer record changes it, a forged or malformed one is refused', async () => {
    const { t } = await table()
    const [a, b, old] = [await peer(), await peer(), await peer()]
    assert.equal(await t.take(await recordWith(a, T0 - 10, { cap: 80 })), 'new')
    assert.equal(t.capacityClass(a.id), 80)
    assert.deepEqual(t.record(a.id), { peer: a.id, seq: T0 - 10, addrs: ['/ip4/127.0.0.1/tcp/1'], cap: 80 })
    // a host of an older version tells none: no class (placement weighs it as the median)
    assert.equal(await t.take(await record(old, T0 - 10)), 'new')
    assert.equal(t.capacityClass(old.id), undefined)
    // the same seq with another class is not newer: the class stays
    assert.equal(await t.take(await recordWith(a, T0 - 10, { cap: 88 })), 'old')
    assert.equal(t.capacityClass(a.id), 80)
    // a newer record with a changed class replaces it
    assert.equal(await t.take(await recordWith(a, T0 - 5, { cap: 88 })), 'new')
    assert.equal(t.capacityClass(a.id), 88)
    // a's record with a huge class, signed by b: forged, refused, a keeps its class
    assert.equal(await t.take(await recordWith(a, T0, { cap: MAX_CAPACITY_CLASS }, b.signer)), 'invalid')
    assert.equal(t.capacityClass(a.id), 88)
    // malformed classes, even signed by their subject: out of range, not an integer, not a number
    for (const cap of [-1, MAX_CAPACITY_CLASS + 1, 2 ** 53, 1.5, '80', null, [80], { c: 80 }]) {
      assert.equal(await t.take(await recordWith(b, T0 - 1, { cap })), 'invalid', JSON.stringify(cap))
    }
    // oversized: a 64-bit class (beyond a safe integer, decoded as a BigInt)
    assert.equal(await t.take(await recordWith(b, T0 - 1, { cap: 2n ** 63n })), 'invalid')
    // any other field: refused (a record is { peer, seq, addrs, cap? })
    assert.equal(await t.take(await recordWith(b, T0 - 1, { cap: 80, weight: 1e9 })), 'invalid')
    assert.equal(t.has(b.id), false)
    assert.equal(await t.take(await recordWith(b, T0 - 1, { cap: MAX_CAPACITY_CLASS })), 'new')
    assert.equal(t.capacityClass(b.id), MAX_CAPACITY_CLASS)
  })

  it('this host signs its capacity class now into each record, and refuses to sign one out of range', async () => {
    let now = T0
    let cls: number | undefined = 80
    const self = await peer()
    const t = new MemberTable({ self: self.id, signer: self.signer, verify, now: () => now, capacityClass: () => cls })
    const other = (await table()).t
    assert.equal(await other.take((await t.signOwn(['/ip4/127.0.0.1/tcp/5']))!), 'new')
    assert.equal(other.capacityClass(self.id), 80)
    now += 1
    cls = 96
    assert.equal(await other.take((await t.signOwn(['/ip4/127.0.0.1/tcp/5']))!), 'new')
    assert.equal(other.capacityClass(self.id), 96)
    now += 1
    cls = undefined
    assert.equal(await other.take((await t.signOwn(['/ip4/127.0.0.1/tcp/5']))!), 'new')
    assert.equal(other.capacityClass(self.id), undefined)
    cls = MAX_CAPACITY_CLASS + 1
    await assert.rejects(t.signOwn(['/ip4/127.0.0.1/tcp/5']), RangeError)
  })

  it('a record may carry its host\'s features, signed: taken when well formed, the whole record refused when not', async () => {
    const { t } = await table()
    const [a, b, old] = [await peer(), await peer(), await peer()]
    assert.equal(await t.take(await recordWith(a, T0 - 10, { cap: 80, features: ['multiext/1', 'zeta/12'] })), 'new')
    assert.deepEqual(t.features(a.id), ['multiext/1', 'zeta/12'])
    assert.deepEqual(t.record(a.id), { peer: a.id, seq: T0 - 10, addrs: ['/ip4/127.0.0.1/tcp/1'], cap: 80, features: ['multiext/1', 'zeta/12'] })
    // without the field (every host of this version and older): no features known from the record
    assert.equal(await t.take(await record(old, T0 - 10)), 'new')
    assert.equal(t.features(old.id), undefined)
    // an empty list is a list: the host understands nothing beyond the base
    assert.equal(await t.take(await recordWith(a, T0 - 5, { features: [] })), 'new')
    assert.deepEqual(t.features(a.id), [])
    // malformed lists, signed by their subject: the record is refused whole (b stays unknown)
    const bad: unknown[] = [
      'multiext/1', null, 7, { 0: 'multiext/1' }, [7], [null], ['multiext'], ['multiext/0'], ['MultiExt/1'], ['multi ext/1'], ['/multiext/1'],
      ['multiext/1', 'multiext/1'], ['zeta/1', 'multiext/1'], ['x'.repeat(40) + '/1'],
      Array.from({ length: MAX_FEATURES + 1 }, (_, i) => `f${String(i).padStart(2, '0')}/1`)
    ]
    for (const features of bad) assert.equal(await t.take(await recordWith(b, T0 - 1, { features })), 'invalid', JSON.stringify(features))
    assert.equal(t.has(b.id), false)
    // the most a list holds is taken
    const most = Array.from({ length: MAX_FEATURES }, (_, i) => `f${String(i).padStart(2, '0')}/1`)
    assert.equal(await t.take(await recordWith(b, T0 - 1, { cap: 3, features: most })), 'new')
    assert.deepEqual(t.features(b.id), most)
  })

  it('this host signs features only when told to; untold, its record has the fields older hosts\' strict decoders take', async () => {
    let now = T0
    let features: readonly string[] | undefined
    const self = await peer()
    const t = new MemberTable({ self: self.id, signer: self.signer, verify, now: () => now, capacityClass: () => 80, features: () => features })
    const other = (await table()).t
    const fields = (msg: Uint8Array): string[] => Object.keys(dagCbor.decode<any>(dagCbor.decode<any>(msg).r)).sort()
    // a table told no features: none signed; { peer, seq, addrs, cap } is all a host older than the previous version takes
    let msg = (await t.signOwn(['/ip4/127.0.0.1/tcp/5']))!
    assert.deepEqual(fields(msg), ['addrs', 'cap', 'peer', 'seq'])
    assert.equal(await other.take(msg), 'new')
    assert.equal(other.features(self.id), undefined)
    // told them (the daemon, from the version after the one that first decoded them): the others read them
    now += 1
    features = ['multiext/1']
    msg = (await t.signOwn(['/ip4/127.0.0.1/tcp/5']))!
    assert.deepEqual(fields(msg), ['addrs', 'cap', 'features', 'peer', 'seq'])
    assert.equal(await other.take(msg), 'new')
    assert.deepEqual(other.features(self.id), ['multiext/1'])
    // a list receivers would refuse is never signed
    features = ['multiext/1', 'a/1']
    await assert.rejects(t.signOwn(['/ip4/127.0.0.1/tcp/5']), (err: Error) => err instanceof FeatureListError && /sorted and unique/.test(err.message))
  })
})
