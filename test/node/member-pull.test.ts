// Member messages spread by pull (node/net/members.ts sync rounds; issue 14, idle traffic
// independent of the network's size): a sync request names the states a table took lately, the
// answer carries the states the answerer took within the offer window that the request does not
// name, and a digest over the members named by neither. A change reaches the asker once, is not
// sent again to a host that named it, and a difference older than the windows still shows in the
// digest (the table is pulled then, as before); a malformed request or answer is refused.
import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { makeKey, signerFor, verify } from '../helpers/tree.ts'
import { MAX_MEMBER_MESSAGE_BYTES, MEMBERS, MEMBER_OFFER_MS, MEMBER_SYNC_KEYS_MS, MemberRecordError, MemberTable, SYNC_KEY_BYTES, memberAuthor, memberSubject, peerSyncKey } from '../../node/net/members.ts'
import type { Signer } from '../../node/tree/index.ts'

const T0 = 1_800_000_000_000
const MIN = 60_000

interface Peer { id: string, signer: Signer }
async function peer (): Promise<Peer> {
  const signer = signerFor(await makeKey())
  return { id: signer.author, signer }
}
async function record (p: Peer, seq: number): Promise<Uint8Array> {
  const r = dagCbor.encode({ peer: p.id, seq, addrs: ['/ip4/127.0.0.1/tcp/1'] })
  return dagCbor.encode({ t: 'member', r, s: await p.signer.sign(r) })
}
/** A DOWN notice `p` signs for itself (a host leaving): taken from any host. */
async function leaving (p: Peer, seq: number): Promise<Uint8Array> {
  const r = dagCbor.encode({ by: p.id, peer: p.id, seq })
  return dagCbor.encode({ t: 'down', r, s: await p.signer.sign(r) })
}

/** Two tables on one clock, in step on `n` members whose records were taken long ago. */
async function pair (n: number): Promise<{ a: MemberTable, b: MemberTable, members: Peer[], clock: { now: number } }> {
  const clock = { now: T0 - 3600_000 }
  const [sa, sb] = [await peer(), await peer()]
  const a = new MemberTable({ self: sa.id, signer: sa.signer, verify, now: () => clock.now })
  const b = new MemberTable({ self: sb.id, signer: sb.signer, verify, now: () => clock.now })
  const members: Peer[] = []
  for (let i = 0; i < n; i++) {
    const p = await peer()
    members.push(p)
    const msg = await record(p, clock.now - 1000)
    assert.equal(await a.take(msg), 'new')
    assert.equal(await b.take(msg), 'new')
  }
  clock.now = T0
  return { a, b, members, clock }
}

/** One sync round: `asker` sends its keys to `answerer`, takes the answer. */
async function round (asker: MemberTable, answerer: MemberTable): Promise<{ sent: number, fresh: number, alike: boolean }> {
  const keys = asker.syncKeys()
  const answer = answerer.syncAnswer(keys)
  const { fresh, alike } = await asker.takeSync(keys, answer)
  return { sent: answer.m.length, fresh, alike }
}

describe('node/net member sync rounds (pull dissemination)', function () {
  this.timeout(60_000)

  it('a change the answerer took lately reaches the asker in one round, once: the next round sends nothing, and the tables agree', async () => {
    const { a, b, members, clock } = await pair(12)
    // in step, nothing recent: nothing to send, alike
    assert.deepEqual(await round(a, b), { sent: 0, fresh: 0, alike: true })
    // a member refreshes its record, and another leaves: b takes both
    assert.equal(await b.take(await record(members[0], T0)), 'new')
    assert.equal(await b.take(await leaving(members[1], T0 - 3600_000 - 1000)), 'new')
    clock.now += MIN
    assert.notDeepEqual(a.digest(), b.digest())
    assert.deepEqual(await round(a, b), { sent: 2, fresh: 2, alike: true })
    assert.deepEqual(a.digest(), b.digest())
    assert.equal(a.record(members[0].id)?.seq, T0)
    assert.equal(a.has(members[1].id), false)
    // a names both now: b sends them no more, nor a to b (b names them too)
    clock.now += MIN
    assert.deepEqual(await round(a, b), { sent: 0, fresh: 0, alike: true })
    assert.deepEqual(await round(b, a), { sent: 0, fresh: 0, alike: true })
  })

  it('a state the asker took long ago is not sent again by an answerer that took it lately (within the keys window); past it, nothing is offered', async () => {
    const { a, b, members, clock } = await pair(6)
    assert.equal(await a.take(await record(members[2], T0)), 'new')
    // b takes it three minutes later (late in the spread)
    clock.now += 3 * MIN
    assert.equal(await b.take(await record(members[2], T0)), 'new')
    // a's own offer lapsed, b's has not: a still names the state, b does not send it
    clock.now += MEMBER_OFFER_MS - 2 * MIN
    assert.ok(clock.now - T0 > MEMBER_OFFER_MS && clock.now - T0 < MEMBER_SYNC_KEYS_MS)
    assert.equal(a.syncKeys().byteLength, SYNC_KEY_BYTES)
    assert.deepEqual(await round(a, b), { sent: 0, fresh: 0, alike: true })
    // b's offer lapsed too: nothing named, nothing offered, still alike
    clock.now += MEMBER_SYNC_KEYS_MS
    assert.equal(a.syncKeys().byteLength, 0)
    assert.equal(b.syncAnswer(a.syncKeys()).m.length, 0)
    assert.deepEqual(await round(a, b), { sent: 0, fresh: 0, alike: true })
  })

  it('a difference older than the windows is not hidden: the digest finds it (the table is pulled then)', async () => {
    const { a, b, members, clock } = await pair(6)
    // b took a newer record a never got, and both windows went by
    assert.equal(await b.take(await record(members[3], T0)), 'new')
    clock.now += MEMBER_SYNC_KEYS_MS + MIN
    assert.deepEqual(await round(a, b), { sent: 0, fresh: 0, alike: false })
    // the whole table pulled, as member-service.ts does when a round stays apart: alike again
    for (const m of b.messages()) await a.take(m)
    assert.deepEqual(await round(a, b), { sent: 0, fresh: 0, alike: true })
  })

  it('members changed lately on either side are left out of the digest; the answer is bounded and the rest follows in the next round', async () => {
    const { a, b, members, clock } = await pair(8)
    // a took a change b has not (still spreading the other way): named in a's keys, left out, alike
    assert.equal(await a.take(await record(members[0], T0)), 'new')
    // b took three a has not; an answer of at most two
    for (const p of members.slice(1, 4)) assert.equal(await b.take(await record(p, T0)), 'new')
    clock.now += MIN
    const keys = a.syncKeys()
    const answer = b.syncAnswer(keys, 2)
    assert.equal(answer.m.length, 2)
    // the third is in b's digest and not in a's table: apart, until the next round brings it
    assert.equal((await a.takeSync(keys, answer)).alike, false)
    assert.deepEqual(await round(a, b), { sent: 1, fresh: 1, alike: true })
    assert.notDeepEqual(a.digest(), b.digest())
    assert.deepEqual(await round(b, a), { sent: 1, fresh: 1, alike: true })
    assert.deepEqual(a.digest(), b.digest())
    // keys: the member's part is peerSyncKey, the subject of a message is its record's peer
    const view = new DataView(keys.buffer, keys.byteOffset, keys.byteLength)
    assert.equal(view.getUint32(0), peerSyncKey(members[0].id))
    assert.equal(memberSubject(await leaving(members[5], T0)), members[5].id)
    assert.equal(memberSubject(new Uint8Array([1, 2, 3])), undefined)
  })

  it('what a whole table pulled brought is held but neither named nor offered; changes pulled since a time are (fails on the old code: a host that restarted offered the whole table)', async () => {
    const { a, members, clock } = await pair(6)
    // a took two changes lately; c, starting, pulls a's whole table, d a's changes since a time
    assert.equal(await a.take(await record(members[0], T0)), 'new')
    assert.equal(await a.take(await leaving(members[1], T0)), 'new')
    const [sc, sd] = [await peer(), await peer()]
    const c = new MemberTable({ self: sc.id, signer: sc.signer, verify, now: () => clock.now })
    const d = new MemberTable({ self: sd.id, signer: sd.signer, verify, now: () => clock.now })
    // (a's table answer: the records of the members up, then its DOWN notice, of a member c never held)
    const table = a.messages()
    for (const msg of table) await c.take(msg, table.length, false)
    for (const msg of table) await d.take(msg, table.length)
    assert.equal(c.size, 5)
    assert.equal(c.record(members[0].id)?.seq, T0)
    assert.equal(c.syncKeys().byteLength, 0)
    assert.deepEqual(c.syncAnswer(new Uint8Array(0)).m, [])
    // the round with a: a offers its two changes (c named none), c has them: the tables agree
    assert.deepEqual(await round(c, a), { sent: 2, fresh: 0, alike: true })
    // what changed since a time is offered on (d took it as changes)
    assert.equal(d.syncKeys().byteLength, SYNC_KEY_BYTES * 5)
    assert.equal(d.syncAnswer(new Uint8Array(0)).m.length, 5)
    // and the whole table's records still answer a pull of changes `since` (by when they were taken)
    assert.equal(c.messages(clock.now).length, 5)
  })

  it('a message of a sync answer over the size bound is refused undecoded: it names no member, so it hides no difference from the digest (fails on the old code)', async () => {
    const { a, b, members, clock } = await pair(4)
    // a took a newer record of members[0] long ago; b never did: a real, older difference
    assert.equal(await a.take(await record(members[0], T0)), 'new')
    clock.now += MEMBER_SYNC_KEYS_MS + MIN
    assert.equal((await round(b, a)).alike, false)
    // an answer carrying a message about members[0] padded past the bound, with a's digest
    // leaving members[0] out: the old code read its subject and left members[0] out too
    const r = dagCbor.encode({ peer: members[0].id, seq: T0 + 1, addrs: ['/ip4/127.0.0.1/tcp/1'], pad: new Uint8Array(MAX_MEMBER_MESSAGE_BYTES) })
    const big = dagCbor.encode({ t: 'member', r, s: await members[0].signer.sign(r) })
    assert.ok(big.byteLength > MAX_MEMBER_MESSAGE_BYTES)
    assert.equal(memberSubject(big), undefined)
    assert.equal(memberAuthor(big), undefined)
    const keys = b.syncKeys()
    const taken = await b.takeSync(keys, { m: [big], d: a.syncDigest(new Set([peerSyncKey(members[0].id)])) })
    assert.deepEqual(taken, { fresh: 0, refused: 1, alike: false })
    // and who signed a message, as it claims: a record's subject, a DOWN notice's `by`
    assert.equal(memberAuthor(await record(members[1], T0)), members[1].id)
    assert.equal(memberAuthor(await leaving(members[2], T0)), members[2].id)
    assert.equal(memberAuthor(new Uint8Array([1, 2, 3])), undefined)
  })

  it('a sync request, its answer and a push are checked: keys in whole states, messages bounded; anything else is refused', () => {
    const req = MEMBERS.request!
    const k = new Uint8Array(SYNC_KEY_BYTES * 3)
    assert.deepEqual(req({ t: 'sync', k }), { t: 'sync', k })
    for (const bad of [{ t: 'sync' }, { t: 'sync', k: new Uint8Array(SYNC_KEY_BYTES + 1) }, { t: 'sync', k, since: 5 }, { t: 'sync', k: [1, 2, 3, 4] }, { t: 'sync', k: new Uint8Array(SYNC_KEY_BYTES * 50_001) }]) {
      assert.throws(() => req(bad), MemberRecordError, JSON.stringify(bad))
    }
    const reply = MEMBERS.reply!
    const d = new Uint8Array(32)
    assert.deepEqual(reply({ t: 'sync', m: [new Uint8Array(3)], d }, { t: 'sync', k }), { t: 'sync', m: [new Uint8Array(3)], d })
    for (const bad of [{ t: 'sync', m: [], d: new Uint8Array(31) }, { t: 'sync', m: ['x'], d }, { t: 'digest', d }, { t: 'sync', m: Array.from({ length: 257 }, () => new Uint8Array(1)), d }, { t: 'sync', m: [new Uint8Array(MAX_MEMBER_MESSAGE_BYTES + 1)], d }]) {
      assert.throws(() => reply(bad, { t: 'sync', k }), MemberRecordError, JSON.stringify(bad))
    }
    // a table answer's messages are bounded as one taken alone
    assert.deepEqual(reply({ t: 'table', members: [new Uint8Array(3)] }, { t: 'table' }), { t: 'table', members: [new Uint8Array(3)] })
    assert.throws(() => reply({ t: 'table', members: [new Uint8Array(MAX_MEMBER_MESSAGE_BYTES + 1)] }, { t: 'table' }), MemberRecordError)
    // what a host reads of requests and pushes is bounded below a table answer: refused from the frame's length
    assert.ok(MEMBERS.maxIncomingBytes !== undefined && MEMBERS.maxIncomingBytes < MEMBERS.maxMessageBytes && MEMBERS.maxIncomingBytes >= SYNC_KEY_BYTES * 50_000)
    // an author's push: one member message, bounded
    const notice = MEMBERS.notice!
    assert.deepEqual(notice({ t: 'push', m: new Uint8Array(5) }), { t: 'push', m: new Uint8Array(5) })
    for (const bad of [{ t: 'push' }, { t: 'push', m: 'x' }, { t: 'push', m: new Uint8Array(4097) }, { t: 'push', m: new Uint8Array(5), more: 1 }, { t: 'sync', m: new Uint8Array(5) }, null]) {
      assert.throws(() => notice(bad), MemberRecordError, JSON.stringify(bad))
    }
  })
})
