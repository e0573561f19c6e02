// Member-table anti-entropy between real hosts (node/net/member-service.ts, members.ts; issue 14,
// idle traffic): a host that missed a DOWN notice (it was away while gossip spread it) takes it
// from its next pull and its table agrees with its peers' again (table answers carried records
// only: its digest differed at every round, and it pulled the whole table each time, until the
// member came back or expired), and that pull, once the tables were in step, carries only what
// the peer took since then (less the clock skew allowed), not the whole table. Between hosts that
// take sync rounds (members.ts), records and DOWN notices reach the other host by the round, with
// none published on gossip (a leaving host's own DOWN notice neither), and a change its author
// pushes to its connections; a push is taken from its author only, within its budget.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { MAX_MEMBERS_INCOMING_BYTES, MEMBERS, MEMBERS_GOSSIP_TAG, MemberTable, SYNC_KEY_BYTES, pullMembers } from '../../node/net/members.ts'
import { PUSH_BURST, PUSH_REFUSED_COST, TABLE_ANSWER_UNPACED, startMemberService } from '../../node/net/member-service.ts'
import { call, notify } from '../../node/net/rpc.ts'
import { signerFor, verify } from '../../node/net/signing.ts'
import { equalBytes } from '../../node/bytes.ts'
import { Teardown } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

const memAddr = (): string => `/memory/darkfs-member-sync-${randomBytes(6).toString('hex')}`
const HOUR = 3600_000
/** Members that are no hosts here: records signed with their keys, taken into a's table. */
const OTHERS = 20

describe('node/net member-table anti-entropy', function () {
  this.timeout(180_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('real hosts: a host that missed a DOWN notice takes it at its next round, pulling only what changed since its table was in step', async () => {
    const networkKey = createNetworkKey()
    const others = await Promise.all(Array.from({ length: OTHERS }, async () => signerFor(await generateKeyPair('Ed25519'))))
    // a's clock an hour behind while it takes the other members' records: they were taken long ago
    let offset = -HOUR
    const keyA = await generateKeyPair('Ed25519')
    const keyB = await generateKeyPair('Ed25519')
    const hostA = await createHost({ privateKey: keyA, networkKey, listen: [memAddr()] })
    t.add(async () => { await hostA.stop() })
    const a = new MemberTable({ self: hostA.peerId, signer: signerFor(keyA), verify, now: () => Date.now() + offset })
    const seq = Date.now() - 2 * HOUR
    for (const o of others) {
      const r = dagCbor.encode({ peer: o.author, seq, addrs: ['/ip4/127.0.0.1/tcp/1'] })
      assert.equal(await a.take(dagCbor.encode({ t: 'member', r, s: await o.sign(r) })), 'new')
    }
    offset = 0
    // what a's service answers: each call's `since` and how many messages it carried
    const answers: Array<{ since: number | undefined, count: number, down: boolean }> = []
    const messages = a.messages.bind(a)
    a.messages = (since?: number, max?: number) => {
      const out = messages(since, max)
      answers.push({ since, count: out.length, down: out.some(m => (dagCbor.decode(m) as { t: string }).t === 'down') })
      return out
    }
    const serviceA = await startMemberService(hostA, a)
    t.add(async () => { await serviceA.stop() })

    const hostB = await createHost({ privateKey: keyB, networkKey, listen: [memAddr()], join: [hostA.addresses()[0]] })
    t.add(async () => { await hostB.stop() })
    const b = new MemberTable({ self: hostB.peerId, signer: signerFor(keyB), verify })
    const serviceB = await startMemberService(hostB, b)
    t.add(async () => { await serviceB.stop() })

    await until('b holds every member and is in step with a', () => b.size === OTHERS + 2 && serviceB.inStepAt() !== undefined, 90_000)
    // (a's whole table: the others' records, and b's own if a took it before b pulled: its
    // signature is checked off the event loop, and may be after)
    assert.ok(answers.some(x => x.since === undefined && x.count >= OTHERS), `b pulled a's whole table once: ${JSON.stringify(answers)}`)

    // a takes a DOWN notice from one of the subject's neighbours; b misses it (no gossip)
    // (a subject whose first neighbour is one of the others, not a or b: about 1 in 11 of others[0] is not)
    const subject = others.find(s => others.some(o => o !== s && o.author === a.neighbours(s.author)[0]))!.author
    const watcher = others.find(o => o.author === a.neighbours(subject)[0] && o.author !== subject)
    assert.ok(watcher !== undefined, 'a neighbour of the subject among the others')
    const r = dagCbor.encode({ by: watcher.author, peer: subject, seq })
    assert.equal(await a.take(dagCbor.encode({ t: 'down', r, s: await watcher.sign(r) })), 'new')
    const from = answers.length

    await until('b took the DOWN notice and agrees with a', () => !b.has(subject) && equalBytes(a.digest(), b.digest()), 90_000)
      .catch((err: Error) => { throw new Error(`${err.message}: b has the subject ${String(b.has(subject))}, answers since ${JSON.stringify(answers.slice(from))}`) })
    const since = answers.slice(from)
    assert.ok(since.length > 0)
    // every answer since: what a took in the skew window (its own and b's records, the notice), not the table
    for (const x of since) assert.ok(x.since !== undefined && x.count <= 3, JSON.stringify(x))
    assert.ok(since.some(x => x.down), 'the DOWN notice came in an answer of changes')
  })

  it('real hosts taking sync rounds: a DOWN notice and a fresh record reach the other host by the round, none on gossip, and the tables agree', async () => {
    const networkKey = createNetworkKey()
    const keyA = await generateKeyPair('Ed25519')
    const keyB = await generateKeyPair('Ed25519')
    const hostA = await createHost({ privateKey: keyA, networkKey, listen: [memAddr()] })
    t.add(async () => { await hostA.stop() })
    // a's clock an hour behind while it takes the other members' records: taken long ago (no
    // change still offered: b, which pulls them with a's whole table, names none of them)
    let offset = -HOUR
    const a = new MemberTable({ self: hostA.peerId, signer: signerFor(keyA), verify, now: () => Date.now() + offset })
    const others = await Promise.all(Array.from({ length: 4 }, async () => signerFor(await generateKeyPair('Ed25519'))))
    const seq = Date.now() - 2 * HOUR
    for (const o of others) {
      const r = dagCbor.encode({ peer: o.author, seq, addrs: ['/ip4/127.0.0.1/tcp/1'] })
      assert.equal(await a.take(dagCbor.encode({ t: 'member', r, s: await o.sign(r) })), 'new')
    }
    offset = 0
    // member messages published on gossip by either host (none expected: every member pulls)
    const published: number[] = []
    const publishA = hostA.gossip.publish.bind(hostA.gossip)
    hostA.gossip.publish = async (data: Uint8Array) => { published.push(data[0]); return await publishA(data) }
    // what a answered to sync requests: how many messages each carried
    const answered: number[] = []
    const syncAnswer = a.syncAnswer.bind(a)
    a.syncAnswer = (keys: Uint8Array, max?: number) => {
      const out = syncAnswer(keys, max)
      answered.push(out.m.length)
      return out
    }
    const pulling = { syncs: () => true, gossips: () => false }
    const serviceA = await startMemberService(hostA, a, pulling)
    t.add(async () => { await serviceA.stop() })
    const hostB = await createHost({ privateKey: keyB, networkKey, listen: [memAddr()], join: [hostA.addresses()[0]] })
    t.add(async () => { await hostB.stop() })
    const publishB = hostB.gossip.publish.bind(hostB.gossip)
    hostB.gossip.publish = async (data: Uint8Array) => { published.push(data[0]); return await publishB(data) }
    const b = new MemberTable({ self: hostB.peerId, signer: signerFor(keyB), verify })
    const serviceB = await startMemberService(hostB, b, pulling)
    t.add(async () => { await serviceB.stop() })
    await until('b holds every member and a round found it in step', () => b.size === others.length + 2 && serviceB.inStepAt() !== undefined && a.has(hostB.peerId), 90_000)
    // b pulled a's whole table as it started: those records are no changes b names or offers in
    // its rounds (its own record, and a's if a round offered it, at most: not the others')
    assert.ok(b.syncKeys().byteLength <= 2 * SYNC_KEY_BYTES, `b names ${b.syncKeys().byteLength / SYNC_KEY_BYTES} states`)

    // a member leaves (its own DOWN notice, taken at a), another signs a fresh record (taken at a)
    const [gone, fresh] = others
    const r = dagCbor.encode({ by: gone.author, peer: gone.author, seq })
    assert.equal(await a.take(dagCbor.encode({ t: 'down', r, s: await gone.sign(r) })), 'new')
    const r2 = dagCbor.encode({ peer: fresh.author, seq: Date.now(), addrs: ['/ip4/127.0.0.1/tcp/2'] })
    assert.equal(await a.take(dagCbor.encode({ t: 'member', r: r2, s: await fresh.sign(r2) })), 'new')
    const from = answered.length
    await until('b took both by a sync round and agrees with a', () => !b.has(gone.author) && b.record(fresh.author)?.addrs[0] === '/ip4/127.0.0.1/tcp/2' && equalBytes(a.digest(), b.digest()), 90_000)
    // (and a's own record too, when a round came within the offer window of a's start: b took it
    // with a's whole table, which it names no state of)
    assert.ok(answered.slice(from).some(n => n === 2 || n === 3), `a sync answer carried both: ${JSON.stringify(answered.slice(from))}`)
    assert.deepEqual(published.filter(tag => tag === MEMBERS_GOSSIP_TAG), [], 'no member message on gossip')
    // a change a host authors (its own record here) it pushes to its connections: b takes it from
    // the notice (take(msg) alone: answers and pulls pass the table's size), not from a round
    const takenBy: number[] = []
    const takeB = b.take.bind(b)
    let own: Uint8Array | undefined
    b.take = async (msg: Uint8Array, ...rest: [number?]) => {
      if (own !== undefined && equalBytes(msg, own)) takenBy.push(rest.length)
      return await takeB(msg, ...rest)
    }
    own = await a.signOwn(hostA.addresses())
    assert.ok(own !== undefined)
    await serviceA.publish(own)
    await until('b took a\'s new record', () => b.record(hostA.peerId)?.seq === a.record(hostA.peerId)?.seq, 30_000)
    assert.equal(takenBy[0], 0, `pushed, not pulled: ${JSON.stringify(takenBy)}`)
    // and a host that leaves pushes its own DOWN notice as any other change, and waits for the
    // pushes (it is gone before a round would pull it from it): publish says who they reached
    // (fails on the old code: it went on gossip only)
    const bye = await a.signDown(hostA.peerId)
    assert.ok(bye !== undefined)
    own = bye
    assert.deepEqual(await serviceA.publish(bye), [hostB.peerId])
    await until('b took a\'s own DOWN notice', () => !b.has(hostA.peerId), 30_000)
    assert.deepEqual(takenBy, [0, 0], `pushed, not pulled: ${JSON.stringify(takenBy)}`)
    assert.deepEqual(published.filter(tag => tag === MEMBERS_GOSSIP_TAG), [], 'no member message on gossip, the leaving host\'s DOWN neither')
  })

  it('real hosts: after a long partition (more than TABLE_ANSWER_UNPACED changes), a host lacking a record taken before `since` gets it from the same round\'s pull of the whole table (fails on the old code: that pull was paced, answered empty)', async () => {
    const networkKey = createNetworkKey()
    const keyA = await generateKeyPair('Ed25519')
    const keyB = await generateKeyPair('Ed25519')
    const hostA = await createHost({ privateKey: keyA, networkKey, listen: [memAddr()] })
    t.add(async () => { await hostA.stop() })
    // a's clock an hour behind while it takes the old record: taken long before b's `since`
    let offset = -HOUR
    const a = new MemberTable({ self: hostA.peerId, signer: signerFor(keyA), verify, now: () => Date.now() + offset })
    const seq = Date.now() - 2 * HOUR
    const record = async (o: ReturnType<typeof signerFor>): Promise<Uint8Array> => {
      const r = dagCbor.encode({ peer: o.author, seq, addrs: ['/ip4/127.0.0.1/tcp/1'] })
      return dagCbor.encode({ t: 'member', r, s: await o.sign(r) })
    }
    const old = signerFor(await generateKeyPair('Ed25519'))
    assert.equal(await a.take(await record(old)), 'new')
    offset = 0
    // then, during the partition, more changes than an unpaced answer carries
    const many = await Promise.all(Array.from({ length: TABLE_ANSWER_UNPACED + 20 }, async () => signerFor(await generateKeyPair('Ed25519'))))
    for (const o of many) assert.equal(await a.take(await record(o)), 'new')
    const serviceA = await startMemberService(hostA, a)
    t.add(async () => { await serviceA.stop() })

    // b: a host without a member service of its own (its pulls are the test's), in step with a
    // before the partition; its table has none of a's records
    const hostB = await createHost({ privateKey: keyB, networkKey, listen: [memAddr()], join: [hostA.addresses()[0]] })
    t.add(async () => { await hostB.stop() })
    const b = new MemberTable({ self: hostB.peerId, signer: signerFor(keyB), verify })
    await until('b is connected to a', () => hostB.peers().some(p => p.id === hostA.peerId), 30_000)
    const sizes: number[] = []
    const pull = async (since?: number): Promise<void> => {
      const reply = await call(hostB, hostA.peerId, MEMBERS, since === undefined ? { t: 'table' } : { t: 'table', since })
      const members = reply.t === 'table' ? reply.members : []
      sizes.push(members.length)
      for (const m of members) await b.take(m, members.length)
    }
    const differs = async (): Promise<boolean> => {
      const reply = await call(hostB, hostA.peerId, MEMBERS, { t: 'digest' })
      return reply.t === 'digest' && !equalBytes(reply.d, b.digest())
    }
    // one round: the changes since b was in step (ten minutes ago), then, the digests still
    // apart (b lacks the old record), the whole table
    assert.equal(await pullMembers(Date.now() - 10 * 60_000, pull, differs), 'table')
    assert.ok(sizes[0] > TABLE_ANSWER_UNPACED, `the changes: a big (paced) answer: ${JSON.stringify(sizes)}`)
    assert.ok(sizes[1] > sizes[0], `the whole table answered in the same round: ${JSON.stringify(sizes)}`)
    assert.ok(b.has(old.author), 'b took the record a took before `since`')
    assert.ok(equalBytes(a.digest(), b.digest()), 'b agrees with a')
    // still paced: another big answer within the interval is empty, whichever is asked
    await pull()
    await pull(Date.now() - 10 * 60_000)
    assert.deepEqual(sizes.slice(2), [0, 0], 'further big answers within the interval are paced')
  })
  it('real hosts: a push is taken from its author only (another\'s message refused before its signature is checked), and refused pushes spend the sender\'s budget: past it, its pushes are dropped, not taken (fails on the old code)', async () => {
    const networkKey = createNetworkKey()
    const keyA = await generateKeyPair('Ed25519')
    const keyB = await generateKeyPair('Ed25519')
    const other = signerFor(await generateKeyPair('Ed25519'))
    const hostA = await createHost({ privateKey: keyA, networkKey, listen: [memAddr()] })
    t.add(async () => { await hostA.stop() })
    // the signatures a checks, by signer
    const checked: string[] = []
    const a = new MemberTable({ self: hostA.peerId, signer: signerFor(keyA), verify: async (author, bytes, sig) => { checked.push(author); return await verify(author, bytes, sig) } })
    const serviceA = await startMemberService(hostA, a, { syncs: () => true, gossips: () => false })
    t.add(async () => { await serviceA.stop() })
    // b pushes by hand (no member service: no rounds to bring anything meanwhile)
    const hostB = await createHost({ privateKey: keyB, networkKey, listen: [memAddr()], join: [hostA.addresses()[0]] })
    t.add(async () => { await hostB.stop() })
    await until('b connected to a', () => hostB.peers().some(p => p.id === hostA.peerId), 30_000)
    const signerB = signerFor(keyB)
    const recordOf = async (s: typeof other, seq: number): Promise<Uint8Array> => {
      const r = dagCbor.encode({ peer: s.author, seq, addrs: ['/ip4/127.0.0.1/tcp/3'] })
      return dagCbor.encode({ t: 'member', r, s: await s.sign(r) })
    }
    const handled = (): number => { const p = serviceA.pushes(); return p.taken + p.refused + p.dropped }
    // a push over what a reads of one (a table answer's bound is far larger): refused from the
    // frame's length, never decoded, and charged to b as a refused push
    await notify(hostB, hostA.peerId, MEMBERS, { t: 'push', m: new Uint8Array(MAX_MEMBERS_INCOMING_BYTES) }).catch(() => {})
    await until('a refused the oversized push', () => serviceA.pushes().refused === 1, 30_000)
    const seqB = Date.now() - HOUR
    await notify(hostB, hostA.peerId, MEMBERS, { t: 'push', m: await recordOf(signerB, seqB) })
    await until('a took b\'s own record from its push', () => a.has(hostB.peerId), 30_000)
    // another member's record, well signed, pushed by b: not b's to push
    const forged = await recordOf(other, Date.now())
    const floods = 20
    for (let i = 0; i < floods; i++) await notify(hostB, hostA.peerId, MEMBERS, { t: 'push', m: forged })
    await notify(hostB, hostA.peerId, MEMBERS, { t: 'push', m: await recordOf(signerB, Date.now()) })
    await until('a handled every push', () => handled() === floods + 3, 30_000)
    const p = serviceA.pushes()
    assert.equal(a.has(other.author), false, 'a pushed record not signed by its sender is not taken')
    assert.equal(checked.filter(x => x === other.author).length, 0, 'nor its signature checked')
    // what is left of b's budget after the oversized push and its record covers the first few
    // forged ones (a refill every PUSH_REFILL_MS at most adds one)
    const forgedRefused = p.refused - 1
    const refusals = Math.ceil((PUSH_BURST - PUSH_REFUSED_COST - 1) / PUSH_REFUSED_COST)
    assert.equal(p.taken, 1)
    assert.ok(forgedRefused >= refusals && forgedRefused <= refusals + 1, JSON.stringify(p))
    assert.equal(p.dropped, floods + 1 - forgedRefused, JSON.stringify(p))
    // b leaves, its budget spent: its own DOWN is taken all the same, once (the hosts told of a
    // leave never sign a DOWN of it: dropped, it would be lost for good), a second dropped
    const r = dagCbor.encode({ by: signerB.author, peer: signerB.author, seq: seqB })
    const bye = dagCbor.encode({ t: 'down', r, s: await signerB.sign(r) })
    await notify(hostB, hostA.peerId, MEMBERS, { t: 'push', m: bye })
    await until('a took b\'s DOWN past its budget', () => !a.has(hostB.peerId), 30_000)
    await notify(hostB, hostA.peerId, MEMBERS, { t: 'push', m: bye })
    await until('a handled the second', () => handled() === floods + 5, 30_000)
    assert.equal(serviceA.pushes().taken, 2, JSON.stringify(serviceA.pushes()))
    assert.equal(serviceA.pushes().dropped, p.dropped + 1, JSON.stringify(serviceA.pushes()))
  })
})
