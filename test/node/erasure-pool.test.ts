// Recycled output memory for the erasure codec (issue 15 item 7): encodeInto (the caller's
// buffer) and ShardPool (released memory handed out again). The bytes must be encode's, and no
// memory may be handed out while someone can still read it: a shard set not released is never
// written by a later encode, and a released one is detached in every holder's hands.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ErasureError, ShardPool, codecs, encodeOutputBytes, shardSize } from '../../node/data/erasure.ts'
import type { ErasureCodec } from '../../node/data/erasure.ts'
import { seededBytes as bytes } from '../../harness/prng.ts'
import { wasmParity } from '../../harness/wasm-rs.ts'


function copies (shards: Uint8Array[]): Uint8Array[] {
  return shards.map(s => s.slice())
}

/** Which shards of an encode of `length` bytes the codec makes (not views of the data). */
function madeIndices (length: number, k: number, m: number): number[] {
  const size = shardSize(length, k)
  const whole = Math.min(k, Math.floor(length / size))
  return Array.from({ length: k + m }, (_, i) => i).filter(i => i >= whole)
}

for (const name of ['typescript', 'native'] as const) {
  describe(`erasure: recycled output memory, ${name} codec${name === 'native' && codecs.native === undefined ? ' (skipped: the addon is not built; erasure.test.ts says whether it must be)' : ''}`, () => {
    let codec: ErasureCodec
    before(function () {
      if (name === 'native' && codecs.native === undefined) this.skip()
      codec = name === 'native' ? codecs.native! : codecs.typescript
    })

    it('ShardPool.encode gives encode\'s shards, parity equal to the wasm crate\'s, through reused memory (property)', () => {
      const pool = new ShardPool({ codec })
      fc.assert(fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 9000 }), fc.integer({ min: 1, max: 1e6 }), (k, m, length, seed) => {
        const data = bytes(length, seed)
        const want = codec.encode(data, k, m)
        const got = pool.encode(data, k, m)
        assert.deepEqual(got.shards.map(s => Array.from(s)), want.map(s => Array.from(s)))
        if (m > 0) assert.deepEqual(got.shards.slice(k).map(s => Array.from(s)), wasmParity(want.slice(0, k), k, m).map(s => Array.from(s)))
        got.release()
      }), { numRuns: 150, seed: 17 })
      assert.ok(pool.counters.reused > 0, `memory was reused (${JSON.stringify(pool.counters)})`)
    })

    it('released memory is reused without its old bytes showing: the zero padding of a short last shard is zero again', () => {
      const pool = new ShardPool({ codec })
      const k = 4
      const m = 2
      // 4001 bytes: shards of 1001, the last data shard holds 998 bytes and 3 of padding
      const noisy = pool.encode(bytes(4001, 5).fill(0xff), k, m)
      noisy.release()
      const data = bytes(4001, 6)
      const again = pool.encode(data, k, m)
      assert.equal(pool.counters.reused, 1)
      assert.deepEqual(Array.from(again.shards[3].subarray(998)), [0, 0, 0])
      assert.deepEqual(again.shards.map(s => Array.from(s)), codec.encode(data, k, m).map(s => Array.from(s)))
      again.release()
    })

    it('shards not released are never written by later encodes, which reuse only released memory', () => {
      const pool = new ShardPool({ codec })
      const k = 4
      const m = 2
      const length = 1 << 16
      const held = pool.encode(bytes(length, 1), k, m)
      const heldBytes = copies(held.shards)
      const inFlight = pool.encode(bytes(length, 2), k, m) // say, a fragment still being sent
      const inFlightBytes = copies(inFlight.shards)
      for (let i = 0; i < 20; i++) pool.encode(bytes(length, 100 + i), k, m).release()
      assert.equal(pool.counters.made, 3, 'two held sets, and one recycled for the other 19 encodes')
      assert.equal(pool.counters.reused, 19)
      assert.deepEqual(held.shards.map(s => Array.from(s)), heldBytes.map(s => Array.from(s)))
      assert.deepEqual(inFlight.shards.map(s => Array.from(s)), inFlightBytes.map(s => Array.from(s)))
      held.release()
      inFlight.release()
    })

    it('release() detaches every shard made in pooled memory, in every holder\'s hands; views of the data stay intact', () => {
      const pool = new ShardPool({ codec })
      const k = 4
      const m = 2
      const data = bytes(4001, 9)
      const before = data.slice()
      const got = pool.encode(data, k, m)
      const stale = got.shards.slice() // what a holder kept: a store queue, a send in flight
      const made = madeIndices(data.length, k, m)
      assert.deepEqual(made, [3, 4, 5])
      got.release()
      for (const i of made) {
        assert.equal(stale[i].byteLength, 0, `shard ${i} is detached`)
        assert.equal(stale[i][0], undefined)
        assert.throws(() => stale[i].subarray(0, 1), TypeError)
        assert.throws(() => stale[i].slice(), TypeError)
      }
      // a detached shard cannot pass for a fragment: the codec refuses it rather than read nothing
      assert.throws(() => codec.reconstruct([stale[0], stale[1], stale[2], undefined, stale[4], stale[5]], k, m), ErasureError)
      for (const i of [0, 1, 2]) assert.equal(stale[i].byteLength, 1001, `shard ${i} views the caller's data`)
      assert.deepEqual(data, before)
      // the next encode gets that memory (the stale views still see nothing of it)
      const next = pool.encode(bytes(4001, 10), k, m)
      assert.equal(pool.counters.reused, 1)
      for (const i of made) assert.equal(stale[i].byteLength, 0)
      next.release()
    })

    it('a second release() throws and does not put the memory in the pool twice', () => {
      const pool = new ShardPool({ codec })
      const got = pool.encode(bytes(1000, 3), 4, 2)
      got.release()
      assert.throws(() => { got.release() }, ErasureError)
      assert.equal(pool.freeByteCount, encodeOutputBytes(1000, 4, 2))
      const a = pool.encode(bytes(1000, 4), 4, 2)
      const b = pool.encode(bytes(1000, 5), 4, 2)
      assert.notEqual(a.shards[4].buffer, b.shards[4].buffer, 'two live encodes never share memory')
      assert.deepEqual(pool.counters, { made: 2, reused: 1, released: 1, dropped: 0 })
      a.release()
      b.release()
      // nothing made (whole data shards, no parity): release is still once only
      const views = pool.encode(bytes(1000, 6), 4, 0)
      views.release()
      assert.throws(() => { views.release() }, ErasureError)
    })

    it('a refused encode (bad k, m) keeps the memory for the next one; released memory past maxFreeBytes goes to the collector', () => {
      const pool = new ShardPool({ codec, maxFreeBytes: 3 * encodeOutputBytes(1000, 4, 2) })
      pool.encode(bytes(1000, 1), 4, 2).release()
      assert.throws(() => pool.encode(bytes(1000, 1), 0, 2), ErasureError)
      assert.throws(() => pool.encode(bytes(1000, 1), 200, 100), ErasureError)
      assert.equal(pool.freeByteCount, encodeOutputBytes(1000, 4, 2))
      const live = Array.from({ length: 5 }, (_, i) => pool.encode(bytes(1000, i), 4, 2))
      for (const l of live) l.release()
      assert.equal(pool.freeByteCount, 3 * encodeOutputBytes(1000, 4, 2))
      assert.equal(pool.counters.dropped, 2)
    })

    it('encodeInto writes the made shards into the caller\'s buffer, and refuses one too small, unaligned or overlapping the data without writing to it', () => {
      const k = 4
      const m = 2
      const data = bytes(4001, 11)
      const need = encodeOutputBytes(data.length, k, m)
      assert.equal(need, 3 * 1024) // 1001-byte shards on 64-byte strides
      const out = new Uint8Array(need + 8).fill(0xaa)
      const shards = codec.encodeInto(data, k, m, out.subarray(4))
      assert.deepEqual(shards.map(s => Array.from(s)), codec.encode(data, k, m).map(s => Array.from(s)))
      for (const i of [3, 4, 5]) assert.equal(shards[i].buffer, out.buffer)
      for (const i of [0, 1, 2]) assert.equal(shards[i].buffer, data.buffer)
      assert.equal(out[0], 0xaa, 'bytes before out are not written')
      assert.equal(out[need + 4], 0xaa, 'bytes past the shards are not written')

      const small = new Uint8Array(need - 1).fill(7)
      assert.throws(() => codec.encodeInto(data, k, m, small), ErasureError)
      assert.ok(small.every(b => b === 7))
      const odd = new Uint8Array(need + 4).fill(7)
      assert.throws(() => codec.encodeInto(data, k, m, odd.subarray(2)), ErasureError)
      assert.ok(odd.every(b => b === 7))
      // data and out in one buffer: apart is fine, overlapping is refused
      const both = new Uint8Array(4096 + need)
      both.set(data)
      const inPlace = both.subarray(0, 4001)
      const inPlaceBefore = inPlace.slice()
      assert.throws(() => codec.encodeInto(inPlace, k, m, both.subarray(4000)), ErasureError)
      assert.deepEqual(inPlace, inPlaceBefore)
      assert.deepEqual(codec.encodeInto(inPlace, k, m, both.subarray(4096)).map(s => Array.from(s)), codec.encode(data, k, m).map(s => Array.from(s)))
      assert.throws(() => codec.encodeInto(data, k, m, 'no' as unknown as Uint8Array), ErasureError)
    })
  })
}
