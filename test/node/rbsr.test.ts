// Range-based set reconciliation (node/tree/rbsr.ts): two random sets with random differences
// reconcile to exactly each other's missing ids, whatever the frame limit; the index answers the
// same fingerprints built one by one or in bulk; items kept in order as copies, however added;
// malformed messages throw RbsrError.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { OpSet, RbsrError, rbsrContinue, rbsrInitiate, rbsrReconcileInMemory, rbsrRespond } from '../../node/tree/rbsr.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261202)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))

/** A deterministic item: id = sha256(n), timestamp drawn from few values (many ties, so id-prefix bounds get used). */
function item (n: number, spread: number): { ts: number, id: Uint8Array } {
  const id = new Uint8Array(createHash('sha256').update(String(n)).digest())
  return { ts: 1_000 + (id[0] * 256 + id[1]) % spread, id }
}

const hex = (id: Uint8Array): string => Buffer.from(id).toString('hex')
const sorted = (ids: Uint8Array[]): string[] => ids.map(hex).sort()

describe('rbsr: range-based set reconciliation', function () {
  it('two random sets reconcile to exactly each other\'s missing ids', function () {
    fc.assert(fc.property(
      fc.record({
        common: fc.nat(3000),
        onlyA: fc.nat(80),
        onlyB: fc.nat(80),
        spread: fc.constantFrom(1, 3, 50, 1_000_000),
        frameLimit: fc.constantFrom(0, 4096, 10_000),
        oneByOne: fc.boolean(),
        offset: fc.nat(1_000_000)
      }),
      ({ common, onlyA, onlyB, spread, frameLimit, oneByOne, offset }) => {
        const mk = (from: number, n: number): Array<{ ts: number, id: Uint8Array }> => Array.from({ length: n }, (_, i) => item(offset + from + i, spread))
        const both = mk(0, common)
        const aOnly = mk(common, onlyA)
        const bOnly = mk(common + onlyA, onlyB)
        const a = new OpSet()
        const b = new OpSet()
        const fill = (s: OpSet, items: Array<{ ts: number, id: Uint8Array }>): void => {
          if (oneByOne) for (const x of items) s.add(x.ts, x.id)
          else s.addMany(items)
        }
        fill(a, [...both, ...aOnly])
        fill(b, [...bOnly, ...both])
        assert.equal(a.size, common + onlyA)
        const run = rbsrReconcileInMemory(a, b, { frameLimit })
        assert.deepEqual(sorted(run.have), sorted(aOnly.map(x => x.id)))
        assert.deepEqual(sorted(run.need), sorted(bOnly.map(x => x.id)))
      }
    ), { seed: PROP_SEED, numRuns: 60 * RUNS })
  })

  it('an index built one by one answers what one built in bulk answers', function () {
    fc.assert(fc.property(fc.nat(5000), fc.nat(5000), fc.nat(5000), (n, x, y) => {
      const items = Array.from({ length: n + 1 }, (_, i) => item(i, 97))
      const a = new OpSet()
      for (const it of items) a.add(it.ts, it.id)
      assert.equal(a.add(items[0].ts, items[0].id), false) // already there
      const b = new OpSet()
      b.addMany(items)
      assert.equal(a.size, b.size)
      const lo = Math.min(x, y) % (n + 2)
      const hi = Math.max(lo, Math.max(x, y) % (n + 2))
      assert.deepEqual(a.fingerprint(lo, hi), b.fingerprint(lo, hi))
      if (lo < a.size) assert.deepEqual(a.at(lo), b.at(lo))
      for (const it of items.slice(0, 20)) assert.ok(a.has(it.ts, it.id))
    }), { seed: PROP_SEED, numRuns: 20 * RUNS })
  })

  it('an index holds every item in (ts, id) order whatever the order of the adds, as copies (property)', function () {
    // items added out of order (inserts inside chunks, chunks split), after a bulk build (chunks
    // built to size, grown by the adds), from one reused buffer the caller overwrites each time
    fc.assert(fc.property(fc.nat(1500), fc.nat(1500), fc.constantFrom(1, 7, 1_000_000), fc.nat(1000), (bulk, more, spread, seed) => {
      const all = Array.from({ length: bulk + more }, (_, i) => item(seed * 10_000 + i, spread))
      const s = new OpSet()
      s.addMany(all.slice(0, bulk))
      const scratch = new Uint8Array(32)
      // a fixed shuffle of the rest: every 7th from the back first, then the others
      const rest = all.slice(bulk)
      const order = [...rest.filter((_, i) => i % 7 === 0).reverse(), ...rest.filter((_, i) => i % 7 !== 0)]
      for (const it of order) {
        scratch.set(it.id)
        assert.equal(s.add(it.ts, scratch), true)
        scratch.fill(0xff)
      }
      const want = [...new Map(all.map(it => [`${it.ts}:${hex(it.id)}`, it])).values()].sort((x, y) => x.ts - y.ts || Buffer.compare(x.id, y.id))
      assert.equal(s.size, want.length)
      const got: string[] = []
      s.iterate(0, s.size, (it, rank) => {
        assert.deepEqual(s.at(rank), it)
        got.push(`${it.ts}:${hex(it.id)}`)
        return true
      })
      assert.deepEqual(got, want.map(it => `${it.ts}:${hex(it.id)}`))
      for (let i = 0; i < want.length; i += 37) {
        assert.equal(s.lowerBound(want[i].ts, want[i].id, 0), i)
        assert.ok(s.has(want[i].ts, want[i].id))
        assert.equal(s.add(want[i].ts, want[i].id), false)
      }
      // the fingerprint of the whole set is the one a bulk build of the same items gives
      const b = new OpSet()
      b.addMany(want)
      assert.deepEqual(s.fingerprint(0, s.size), b.fingerprint(0, b.size))
      assert.deepEqual(s.fingerprint(want.length >> 2, want.length >> 1), b.fingerprint(want.length >> 2, want.length >> 1))
    }), { seed: PROP_SEED, numRuns: 15 * RUNS })
  })

  it('items added packed (addPacked) are the items added one by one: onto a set holding some, with duplicates, whatever their order (property)', function () {
    // bulk builds (a batch as large as the set) and adds one by one (a small batch) both
    fc.assert(fc.property(fc.nat(800), fc.nat(3000), fc.constantFrom(1, 7, 1_000_000), fc.nat(1000), (held, packed, spread, seed) => {
      const all = Array.from({ length: held + packed }, (_, i) => item(seed * 10_000 + i, spread))
      // the packed batch: the items past `held`, reversed, and some of the held ones again
      const batch = [...all.slice(held).reverse(), ...all.slice(0, held).filter((_, i) => i % 5 === 0)]
      const ts = new Float64Array(batch.length)
      const ids = new Uint8Array(batch.length * 32)
      batch.forEach((it, i) => { ts[i] = it.ts; ids.set(it.id, i * 32) })
      const s = new OpSet()
      for (const it of all.slice(0, held)) s.add(it.ts, it.id)
      assert.equal(s.addPacked(ts, ids), packed)
      // not kept: the caller's arrays overwritten change nothing
      ids.fill(0xab)
      ts.fill(3)
      const one = new OpSet()
      for (const it of all) one.add(it.ts, it.id)
      assert.equal(s.size, one.size)
      const got: string[] = []
      const want: string[] = []
      s.iterate(0, s.size, it => { got.push(`${it.ts}:${hex(it.id)}`); return true })
      one.iterate(0, one.size, it => { want.push(`${it.ts}:${hex(it.id)}`); return true })
      assert.deepEqual(got, want)
      assert.deepEqual(s.fingerprint(0, s.size), one.fingerprint(0, one.size))
      assert.deepEqual(s.fingerprint(s.size >> 2, s.size >> 1), one.fingerprint(one.size >> 2, one.size >> 1))
      // and it takes adds after
      const extra = item(-1 - seed, spread)
      assert.equal(s.add(extra.ts, extra.id), true)
      assert.ok(s.has(extra.ts, extra.id))
    }), { seed: PROP_SEED, numRuns: 15 * RUNS })
  })

  it('addPacked refuses a bad timestamp or too few id bytes, and adds nothing then', function () {
    const s = new OpSet()
    assert.throws(() => s.addPacked([1, -1], new Uint8Array(64)), RangeError)
    assert.throws(() => s.addPacked([1, 1.5], new Uint8Array(64)), RangeError)
    assert.throws(() => s.addPacked([1, 2], new Uint8Array(63)), RangeError)
    assert.equal(s.size, 0)
  })

  it('a range\'s fingerprint is Negentropy\'s: sha-256 of the ids\' sum mod 2^256 (little-endian) and the varint count, for ranges cut anywhere in a chunk', function () {
    // ids near 2^256 (carries through every lane, and past the top) and random ones, in chunks
    // of several hundred (bulk build): bounds in the first and the second half of a chunk
    const set = new OpSet()
    const items: Array<{ ts: number, id: Uint8Array }> = []
    for (let n = 0; n < 3000; n++) {
      const { ts, id } = item(n, 500)
      if (n % 3 === 0) id.fill(0xff, 2)
      items.push({ ts, id })
    }
    set.addMany(items)
    const order = items.slice().sort((a, b) => a.ts - b.ts || Buffer.compare(a.id, b.id)).filter((x, i, all) => i === 0 || x.ts !== all[i - 1].ts || Buffer.compare(x.id, all[i - 1].id) !== 0)
    assert.equal(order.length, set.size)
    const varint = (n: number): number[] => {
      const out = [n % 128]
      for (n = Math.floor(n / 128); n > 0; n = Math.floor(n / 128)) out.unshift((n % 128) | 0x80)
      return out
    }
    const reference = (begin: number, end: number): string => {
      let sum = 0n
      for (let i = begin; i < end; i++) sum += BigInt('0x' + Buffer.from(order[i].id).reverse().toString('hex'))
      sum %= 1n << 256n
      const le = Buffer.from(sum.toString(16).padStart(64, '0'), 'hex').reverse()
      return createHash('sha256').update(Buffer.concat([le, Buffer.from(varint(end - begin))])).digest().subarray(0, 16).toString('hex')
    }
    for (const [begin, end] of [[0, set.size], [0, 1], [5, 130], [7, 250], [100, 2900], [255, 257], [1, set.size - 1], [1234, 2345], [set.size, set.size]]) {
      assert.equal(hex(set.fingerprint(begin, end)), reference(begin, end), `[${begin}, ${end})`)
    }
  })

  it('equal sets end in one round, a missing range costs bytes for what differs', function () {
    const items = Array.from({ length: 20_000 }, (_, i) => item(i, 1_000_000))
    const a = new OpSet()
    a.addMany(items)
    const b = new OpSet()
    b.addMany(items)
    const same = rbsrReconcileInMemory(a, b)
    assert.equal(same.rounds, 1)
    assert.deepEqual([same.have.length, same.need.length], [0, 0])
    b.add(5, item(-1, 1).id)
    const one = rbsrReconcileInMemory(a, b)
    assert.deepEqual(sorted(one.need), [hex(item(-1, 1).id)])
    assert.ok(one.bytesSent + one.bytesReceived < 8 * 1024, `${one.bytesSent + one.bytesReceived} bytes`)
  })

  it('the wire bytes of reconciliations of fixed sets are pinned (any change of them is a protocol change)', function () {
    // every message of four exchanges (id lists and fingerprints, ties on timestamps, varints of
    // 1 to 5 bytes, frames cut at 4 KiB and 16 KiB), hashed; the digest is what the encoder made
    // before merge42 reused one Writer per range and wrote varints without a digit array
    const h = createHash('sha256')
    for (const [size, spread, frameLimit] of [[3_000, 1_000_000, 0], [3_000, 50, 0], [20_000, 1_000_000, 4096], [20_000, 3_000_000_000, 16_384]]) {
      const a = new OpSet()
      const b = new OpSet()
      for (let i = 0; i < size; i++) {
        const it = item(i, spread)
        if (i % 7 !== 0) a.add(it.ts, it.id)
        if (i % 5 !== 0) b.add(it.ts, it.id)
      }
      let msg: Uint8Array | null = rbsrInitiate(a, { frameLimit })
      let rounds = 0
      while (msg !== null && rounds++ < 100) {
        h.update(msg)
        const answer = rbsrRespond(b, msg, { frameLimit })
        h.update(answer)
        msg = rbsrContinue(a, answer, { frameLimit }).next
      }
      h.update(String(rounds))
    }
    assert.equal(h.digest('hex'), '1a58cb49497da35d6cefba6ccadd1995bc92767c72fcc6e210144a382e783221')
  })

  it('malformed messages throw RbsrError', function () {
    const s = new OpSet()
    s.addMany(Array.from({ length: 100 }, (_, i) => item(i, 10)))
    const good = rbsrInitiate(s)
    const bad: Uint8Array[] = [
      new Uint8Array(0), // no version
      new Uint8Array([0x62]), // unknown version
      good.subarray(0, good.length - 3), // cut short
      new Uint8Array([0x61, 0, 0, 7]), // unknown mode
      new Uint8Array([0x61, 0, 33, ...new Uint8Array(33), 0]), // bound prefix too long
      new Uint8Array([0x61, 0, 0, 2, 5, 1, 2, 3]), // id list longer than the message
      new Uint8Array([0x61, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // varint too long
      new Uint8Array([0x61, 0, 0, 0, 1, 0, 0]), // a range after the infinity bound
      new Uint8Array([0x61, 5, 1, 9, 0, 1, 1, 1, 0]) // ranges out of order (ts 4 id 09.. then ts 4 id 01..)
    ]
    for (const m of bad) {
      assert.throws(() => rbsrRespond(s, m), RbsrError, `respond to ${hex(m)}`)
      assert.throws(() => rbsrContinue(s, m), RbsrError, `continue on ${hex(m)}`)
    }
  })
})
