// Keeper counts (node/keeper/kept.ts): the signed record each host tells of the chunks it is the
// keeper of, the table of every member's, and the book's count of its own (status.ts).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { cidOf } from '../../node/data/index.ts'
import type { ChunkRef } from '../../node/data/index.ts'
import { HealthBook, KEPT_EARLY_FORWARDS, KEPT_EARLY_MAX, KEPT_MESSAGE_BYTES, KEPT_TABLE, KeptNotices, KeptRecordError, KeptTable, KeptTableError, MAX_KEPT_CHUNKS, emptyKept, keptDigest, keptInterval, openKept, signKept } from '../../node/keeper/index.ts'
import { networkLines } from '../../node/cli/status-cli.ts'
import { until } from '../../harness/cluster.ts'
import { bytes } from '../../node/cli/progress.ts'
import type { KeptCounts } from '../../node/keeper/index.ts'
import { SPACE, SpaceNoticeError, encodeNotice, decodeIncoming, signerFor, verify } from '../../node/net/index.ts'
import { keptCounts } from '../helpers/kept-counts.ts'

function ref (k: number, m: number, size = 100): ChunkRef {
  const fragments = Array.from({ length: k + m }, () => cidOf(randomBytes(16)))
  return { offset: 0, size, cid: cidOf(randomBytes(16)), k, m, fragments } as unknown as ChunkRef
}

const counts = keptCounts

describe('keeper counts (kept.ts)', () => {
  it('a signed record opens as signed: peer, sequence, figures', async () => {
    const signer = signerFor(await generateKeyPair('Ed25519'))
    const msg = await signKept(signer, 7, { ...counts(3, 1), ageMs: 1234.4 })
    assert.ok(msg.byteLength <= KEPT_MESSAGE_BYTES, `${msg.byteLength} bytes`)
    const rec = await openKept(msg, verify, 10)
    assert.equal(rec.peer, signer.author)
    assert.equal(rec.seq, 7)
    assert.equal(rec.chunks.redundant, 3)
    assert.equal(rec.chunks.degraded, 1)
    assert.equal(rec.bytes.degraded, 1000)
    assert.equal(rec.ageMs, 1234)
    assert.equal(rec.heardAt, 10)
  })

  it('forged, malformed, out-of-range and oversized records are refused', async () => {
    const a = signerFor(await generateKeyPair('Ed25519'))
    const b = signerFor(await generateKeyPair('Ed25519'))
    // names b, signed by a
    await assert.rejects(openKept(await signKept({ ...a, author: b.author }, 1, counts(1)), verify), KeptRecordError)
    // a signature over other bytes
    const good = dagCbor.decode(await signKept(a, 1, counts(1))) as any
    const other = dagCbor.decode(await signKept(a, 2, counts(5))) as any
    await assert.rejects(openKept(dagCbor.encode({ t: 'kept', r: good.r, s: other.s }), verify), /not signed/)
    // out of range: negative, fractional, too many chunks, too few figures
    for (const bad of [-1, 1.5, MAX_KEPT_CHUNKS + 1]) {
      const c = counts(1)
      c.chunks.lost = bad
      await assert.rejects(openKept(await signKept(a, 1, c), verify), /integers/)
    }
    const short = dagCbor.encode({ peer: a.author, seq: 1, c: [1, 2], b: [0, 0, 0, 0, 0], age: 0 })
    await assert.rejects(openKept(dagCbor.encode({ t: 'kept', r: short, s: await a.sign(short) }), verify), /5 figures/)
    const extra = dagCbor.encode({ peer: a.author, seq: 1, c: [0, 0, 0, 0, 0], b: [0, 0, 0, 0, 0], age: 0, more: 1 })
    await assert.rejects(openKept(dagCbor.encode({ t: 'kept', r: extra, s: await a.sign(extra) }), verify), KeptRecordError)
    // not cbor, not a record, oversized
    await assert.rejects(openKept(randomBytes(40), verify), KeptRecordError)
    await assert.rejects(openKept(dagCbor.encode({ t: 'member', r: new Uint8Array(1), s: new Uint8Array(1) }), verify), KeptRecordError)
    await assert.rejects(openKept(new Uint8Array(KEPT_MESSAGE_BYTES + 1), verify), /over/)
  })

  it('a space notice carries a record of at most its bound; a bigger one is refused with the notice', async () => {
    const signer = signerFor(await generateKeyPair('Ed25519'))
    const kept = await signKept(signer, 1, counts(2))
    assert.ok(encodeNotice(SPACE, { full: false, seq: 1, kept }).byteLength > kept.byteLength)
    const m = decodeIncoming(SPACE, dagCbor.encode({ notice: { full: false, seq: 1, kept } }))
    assert.equal(m.kind, 'notice')
    assert.deepEqual(new Uint8Array((m.value as any).kept), new Uint8Array(kept))
    assert.throws(() => decodeIncoming(SPACE, dagCbor.encode({ notice: { full: false, seq: 1, kept: new Uint8Array(513) } })), SpaceNoticeError)
    assert.throws(() => decodeIncoming(SPACE, dagCbor.encode({ notice: { full: false, seq: 1, kept: 'counts' } })), SpaceNoticeError)
  })

  it('keptInterval(): 2 s in small networks, 0.25 s per member beyond (a bounded rate of records network-wide), at most 10 min', () => {
    assert.equal(keptInterval(1), 2_000)
    assert.equal(keptInterval(20), 5_000)
    assert.equal(keptInterval(1000), 250_000)
    assert.equal(keptInterval(10_000), 600_000)
  })

  it('the table keeps each host\'s newest record and sums the members up now', async () => {
    const t = new KeptTable()
    const a = signerFor(await generateKeyPair('Ed25519'))
    const b = signerFor(await generateKeyPair('Ed25519'))
    const now = 100_000
    assert.equal(t.put(await openKept(await signKept(a, 2, { ...counts(3, 1), ageMs: 500 }), verify, now - 1000)), 'new')
    assert.equal(t.put(await openKept(await signKept(a, 1, counts(99)), verify, now)), 'old', 'an older record of a')
    assert.equal(t.put(await openKept(await signKept(b, 5, counts(4)), verify, now)), 'new')
    const own = { ...counts(1), ageMs: 10 }
    const s = t.totals(['self', a.author, b.author, 'silent'], 'self', own, now)
    assert.equal(s.chunks.redundant, 3 + 4 + 1)
    assert.equal(s.chunks.degraded, 1)
    assert.equal(s.chunks.total, 9)
    assert.equal(s.bytes.total, 9000)
    assert.equal(s.reporting, 3)
    assert.equal(s.members, 4)
    assert.equal(s.ageMs, 1500, 'a\'s: told 500 ms old, heard 1 s ago')
    // a host not up is left out
    assert.equal(t.totals(['self', b.author], 'self', own, now).chunks.total, 5)
  })

  it('a record heard before its host is a member is counted once the host is one (the newest per host, at most KEPT_EARLY_MAX kept)', async () => {
    // a host that just started gossips its record beside its member record: when the record
    // came first it was dropped, and an idle host tells no newer one
    const self = signerFor(await generateKeyPair('Ed25519'))
    const late = signerFor(await generateKeyPair('Ed25519'))
    const members = new Set([self.author])
    const notices = new KeptNotices({
      signer: self,
      verify,
      counts: () => emptyKept(),
      up: () => [...members],
      member: peer => members.has(peer),
      tell: () => {}
    })
    // 'new': gossip forwards it (ignored, it went no further than this host, and gossipsub let
    // no other copy of it in for 2 minutes); an older one, or one too soon after it, is 'old'
    assert.equal(await notices.take(await signKept(late, 2, counts(7)), late.author), 'new')
    assert.equal(await notices.take(await signKept(late, 1, counts(2)), late.author), 'old')
    assert.equal(await notices.take(await signKept(late, 3, counts(5)), late.author), 'old', 'a flood of records from one host')
    assert.equal(notices.totals().reporting, 1, 'not a member yet: not counted')
    assert.equal(notices.held().length, 0, 'not held (nor served) before its host is a member')
    members.add(late.author)
    assert.equal(notices.totals().reporting, 1, 'counted when told the host is a member')
    notices.memberAdded(late.author)
    const totals = notices.totals()
    assert.equal(totals.reporting, 2)
    assert.equal(totals.chunks.redundant, 7, 'its newest record taken')
    assert.deepEqual(notices.held().map(r => r.seq), [2])
    // bounded: past KEPT_EARLY_MAX hosts the oldest heard is dropped
    const first = signerFor(await generateKeyPair('Ed25519'))
    await notices.take(await signKept(first, 1, counts(1)), first.author)
    const others = await Promise.all(Array.from({ length: KEPT_EARLY_MAX }, async () => signerFor(await generateKeyPair('Ed25519'))))
    // forwarded (taken as 'new') at most KEPT_EARLY_FORWARDS a minute: anyone with the network
    // key can make keys at will; the others are kept all the same
    let forwarded = 0
    for (const o of others) if (await notices.take(await signKept(o, 1, counts(1)), o.author) === 'new') forwarded++
    assert.ok(forwarded < KEPT_EARLY_FORWARDS, `${forwarded} forwarded`)
    for (const o of [first, others[others.length - 1]]) {
      members.add(o.author)
      notices.memberAdded(o.author)
    }
    assert.equal(notices.totals().reporting, 3, 'the first heard dropped, the last kept')
    notices.stop()
  })

  it('a record signed in a full mesh (told on space notices only) goes on gossip once the host is beyond it, once', async () => {
    // a host that starts alone (its join address silent, or resetting at its connection cap)
    // signs its record with no peer, then joins a network beyond the full mesh: its record went
    // to the peers it connected to, no other, and an idle host tells no newer one
    const self = signerFor(await generateKeyPair('Ed25519'))
    const published: Uint8Array[] = []
    let told = 0
    let beyond = false
    const notices = new KeptNotices({
      signer: self,
      verify,
      counts: () => emptyKept(),
      up: () => [self.author],
      member: () => true,
      tell: () => { told++ },
      publish: () => beyond ? async (msg: Uint8Array) => { published.push(msg); return ['a peer'] } : undefined
    })
    assert.equal(await notices.recount(), true)
    assert.equal(told, 1)
    assert.equal(published.length, 0, 'in a full mesh: told on space notices')
    beyond = true
    assert.equal(await notices.recount(), false, 'no figure moved: no new record')
    assert.equal(published.length, 1, 'the record put on gossip')
    assert.deepEqual(published[0], notices.ownRecord())
    assert.equal(await notices.recount(), false)
    assert.equal(published.length, 1, 'once')
    notices.stop()
  })

  it('a record published to nobody is published again signed anew (a higher seq: new bytes to gossipsub, which refuses the same bytes for 2 minutes)', async () => {
    const self = signerFor(await generateKeyPair('Ed25519'))
    const published: Uint8Array[] = []
    const notices = new KeptNotices({
      signer: self,
      verify,
      counts: () => counts(3),
      up: () => [self.author],
      member: () => true,
      tell: () => {},
      // the first publish reaches nobody (a subscriber whose stream was not open yet)
      publish: () => async (msg: Uint8Array) => { published.push(msg); return published.length === 1 ? [] : ['a peer'] }
    })
    assert.equal(await notices.recount(), true)
    await until('the record published again', () => published.length === 2, 10_000)
    const [first, second] = await Promise.all(published.map(async m => await openKept(m, verify)))
    assert.notDeepEqual(published[1], published[0], 'new bytes')
    assert.ok(second.seq > first.seq)
    assert.deepEqual(second.chunks, first.chunks, 'the same counts')
    assert.deepEqual(notices.ownRecord(), published[1], 'the one sent is this host\'s record now')
    notices.stop()
  })

  it('book.keptCounts(): the chunks whose first ranked live host is this one, by state', () => {
    const book = new HealthBook()
    const all = new Set(['A', 'B', 'C', 'D'])
    const mine = ref(2, 1, 1000)
    const risky = ref(2, 1, 2000)
    const theirs = ref(2, 1, 4000)
    const handed = ref(2, 1, 8000)
    const now = Date.now()
    book.observe(mine, { held: [new Set(['A']), new Set(['B']), new Set(['C'])], health: 'redundant' }, false, now - 3000, false, ['A', 'B', 'C'])
    book.observe(risky, { held: [new Set(['A']), new Set(['B']), new Set()], health: 'degraded' }, false, now, false, ['A', 'B', 'C'])
    book.observe(theirs, { held: [new Set(['A']), new Set(['B']), new Set(['C'])], health: 'redundant' }, false, now, false, ['B', 'A', 'C'])
    // its keeper D went away: the next ranked, this host, keeps it now
    book.observe(handed, { held: [new Set(['D']), new Set(['B']), new Set(['C'])], health: 'redundant' }, false, now, false, ['D', 'A', 'B'])
    const k = book.keptCounts('A', all, now)
    assert.equal(k.chunks.redundant, 1)
    assert.equal(k.chunks.atRisk, 1, 'k fragments left')
    assert.equal(k.bytes.atRisk, 2000)
    assert.equal(k.chunks.degraded, 0)
    assert.equal(k.ageMs, 3000)
    const without = book.keptCounts('A', new Set(['A', 'B', 'C']), now)
    assert.equal(without.chunks.redundant, 1)
    assert.equal(without.chunks.atRisk, 2, 'the chunk D kept, with D\'s fragment gone: k left')
    // B counts `theirs` only, until the holders change
    assert.equal(book.keptCounts('B', all, now).chunks.redundant, 1)
    // a repair recorded (a later observation without ranks keeps the ranks)
    book.observe(risky, { held: [new Set(['A']), new Set(['B']), new Set(['C'])], health: 'redundant' }, false, now + 1)
    assert.equal(book.keptCounts('A', all, now + 1).chunks.redundant, 2)
  })

  it('a kept table answer is bounded: records of at most KEPT_MESSAGE_BYTES; its digest follows each host\'s seq', () => {
    const reply = (v: unknown): unknown => KEPT_TABLE.reply!(v, { t: 'kept' })
    assert.deepEqual(reply({ t: 'kept', records: [new Uint8Array(KEPT_MESSAGE_BYTES)] }), { t: 'kept', records: [new Uint8Array(KEPT_MESSAGE_BYTES)] })
    assert.throws(() => reply({ t: 'kept', records: [new Uint8Array(KEPT_MESSAGE_BYTES + 1)] }), KeptTableError)
    assert.throws(() => reply({ t: 'kept', records: ['x'] }), KeptTableError)
    assert.throws(() => KEPT_TABLE.reply!({ t: 'digest', d: new Uint8Array(31) }, { t: 'digest' }), KeptTableError)
    assert.throws(() => KEPT_TABLE.request!({ t: 'kept', more: 1 }), KeptTableError)
    const a = keptDigest([{ peer: 'a', seq: 1 }, { peer: 'b', seq: 2 }])
    assert.deepEqual(keptDigest([{ peer: 'a', seq: 1 }, { peer: 'b', seq: 2 }]), a)
    assert.notDeepEqual(keptDigest([{ peer: 'a', seq: 1 }, { peer: 'b', seq: 3 }]), a)
    assert.equal(a.byteLength, 32)
  })

  it('status prints the network totals\' bytes as `put` does, up to PiB', () => {
    assert.equal(bytes(512), '512 B')
    assert.equal(bytes(3 * 2 ** 50), '3.0 PiB')
    const n = { chunks: { redundant: 9, degraded: 1, atRisk: 0, unreachable: 0, lost: 0, total: 10 }, bytes: { redundant: 9 * 2 ** 50, degraded: 2 ** 50, atRisk: 0, unreachable: 0, lost: 0, total: 10 * 2 ** 50 }, reporting: 3, members: 4, ageMs: 0 }
    const lines = networkLines(n)
    assert.match(lines[0], /^network {3}10 chunks \(10\.0 PiB\) kept by 3 of 4 members up/)
    assert.ok(lines.some(l => /1 degraded .*, 1\.0 PiB$/.test(l)), lines.join('\n'))
  })
})
