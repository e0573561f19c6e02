import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createRequire } from 'node:module'
import { createHash } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { spawnSync } from 'node:child_process'
import fc from 'fast-check'
import * as erasure from '../../node/data/erasure.ts'
import { codecs, ErasureError, shardSize, MAX_SHARDS } from '../../node/data/erasure.ts'
import type { ErasureCodec } from '../../node/data/erasure.ts'
import { seededBytes as bytes } from '../../harness/prng.ts'
import { wasmParity } from '../../harness/wasm-rs.ts'


/** Every subset of {0..n-1} with at most `size` members. */
function subsets (n: number, size: number): number[][] {
  const out: number[][] = [[]]
  for (let i = 0; i < n; i++) {
    for (const s of out.slice()) if (s.length < size) out.push([...s, i])
  }
  return out
}

function without (shards: Uint8Array[], lost: number[]): Array<Uint8Array | undefined> {
  return shards.map((s, i) => lost.includes(i) ? undefined : s)
}

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

function copies (shards: Array<Uint8Array | undefined>): Array<Uint8Array | undefined> {
  return shards.map(s => s?.slice())
}


/** Where the ISA-L header lives when libisal-dev is installed. */
const ISAL_HEADER = '/usr/include/isa-l/erasure_code.h'
/** The Node-API headers node/data/native/build.sh compiles against (npm ci installs them). */
const NODE_API_HEADER = new URL('../../node_modules/node-api-headers/include/node_api.h', import.meta.url)
const ADDON = new URL('../../node/data/native/build/erasure.node', import.meta.url)

/**
 * Why the native codec cannot be here, or undefined when it must be: scripts/setup runs
 * node/data/native/build.sh, which builds the addon whenever gcc, the libisal header and the
 * Node-API headers are present. Then an addon that is missing or does not load is a failure, not
 * a skip.
 */
function addonAbsentBecause (): string | undefined {
  if (existsSync(ADDON)) return undefined
  if (spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status !== 0) return 'gcc is not installed, so node/data/native/build.sh cannot build the addon'
  if (!existsSync(ISAL_HEADER)) return `no ${ISAL_HEADER} (libisal-dev is not installed), so node/data/native/build.sh cannot build the addon`
  if (!existsSync(NODE_API_HEADER)) return 'node-api-headers is not installed (npm ci), so node/data/native/build.sh cannot build the addon'
  return undefined
}
const addonAbsent = addonAbsentBecause()
const nativeAbsent = process.env.DARKFS_ERASURE === 'typescript' ? 'DARKFS_ERASURE=typescript forces the TypeScript codec' : addonAbsent
/** Title suffix of a test that needs the native codec (or the addon), stating why it skips here. */
const needsNative = nativeAbsent === undefined ? '' : ` (skipped: ${nativeAbsent})`
const needsAddon = addonAbsent === undefined ? '' : ` (skipped: ${addonAbsent})`

/** The native codec; a failure when its build's prerequisites are present and it did not load. */
function nativeCodec (ctx: Mocha.Context): ErasureCodec {
  const native = codecs.native
  if (native !== undefined) return native
  if (nativeAbsent !== undefined) ctx.skip()
  throw new Error(`the ISA-L erasure addon did not load although gcc, ${ISAL_HEADER} and the Node-API headers are present: run scripts/setup (or node/data/native/build.sh) and see why it failed (${erasure.codecNote ?? 'no note'})`)
}

const shapes: Array<[number, number]> = [[1, 0], [1, 1], [1, 2], [2, 1], [3, 0], [4, 2], [6, 3], [10, 4], [17, 3], [200, 55]]
const lengths = [0, 1, 2, 3, 7, 31, 255, 1000, 4097, 65537]

describe('erasure', () => {
  it('shardSize(length, k) is ceil(length / k), at least 1', () => {
    assert.equal(shardSize(0, 4), 1)
    assert.equal(shardSize(1, 4), 1)
    assert.equal(shardSize(4, 4), 1)
    assert.equal(shardSize(5, 4), 2)
    assert.equal(shardSize(1 << 20, 4), 1 << 18)
    assert.equal(shardSize(1 << 20, 10), 104858)
    assert.throws(() => shardSize(-1, 4), ErasureError)
    assert.throws(() => shardSize(10, 0), ErasureError)
  })

  it(`codec names the implementation in use: isa-l when the addon can be built${nativeAbsent === undefined ? '' : ` (here typescript: ${nativeAbsent})`}`, () => {
    const native = nativeAbsent === undefined
    assert.equal(erasure.codec, native ? 'isa-l' : 'typescript')
    assert.equal(codecs.typescript.codec, 'typescript')
    assert.equal(codecs.native?.codec, native ? 'isa-l' : undefined)
    if (native) assert.equal(erasure.codecNote, undefined)
    else assert.match(erasure.codecNote ?? '', /DARKFS_ERASURE=typescript|did not load/)
  })

  it('DARKFS_ERASURE=typescript forces the TypeScript codec', async () => {
    const before = process.env.DARKFS_ERASURE
    process.env.DARKFS_ERASURE = 'typescript'
    try {
      // a fresh module instance (distinct URL) reads the variable at load
      const url = new URL('../../node/data/erasure.ts?forced-typescript', import.meta.url).href
      const forced: typeof erasure = await import(url)
      assert.equal(forced.codec, 'typescript')
      assert.equal(forced.codecs.native, undefined)
      assert.equal(forced.codecNote, 'DARKFS_ERASURE=typescript')
      const data = bytes(1000, 3)
      assert.deepEqual(forced.encode(data, 4, 2), erasure.encode(data, 4, 2))
    } finally {
      if (before === undefined) delete process.env.DARKFS_ERASURE
      else process.env.DARKFS_ERASURE = before
    }
  })

  it('falls back to the TypeScript codec when the addon is not built', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-erasure-'))
    const forced = process.env.DARKFS_ERASURE
    try {
      const copy = join(dir, 'erasure.ts') // no native/build/erasure.node beside it
      await copyFile(new URL('../../node/data/erasure.ts', import.meta.url), copy)
      delete process.env.DARKFS_ERASURE // the copy must try the addon, and fail to find it
      const alone: typeof erasure = await import(pathToFileURL(copy).href)
      assert.equal(alone.codec, 'typescript')
      assert.match(alone.codecNote ?? '', /did not load \(run node\/data\/native\/build.sh\)/)
      const data = bytes(5000, 8)
      const shards = alone.encode(data, 4, 2)
      assert.deepEqual(shards, erasure.encode(data, 4, 2))
      assert.deepEqual(alone.decode(without(shards, [0, 3]), 4, 2, data.length), data)
    } finally {
      if (forced !== undefined) process.env.DARKFS_ERASURE = forced
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('encode(data, k, m) returns data shards as views of data, the last zero-padded', () => {
    const data = bytes(10, 4)
    const shards = erasure.encode(data, 4, 2)
    assert.equal(shards.length, 6)
    for (const s of shards) assert.equal(s.length, 3)
    assert.equal(shards[0].buffer, data.buffer)
    assert.deepEqual([...shards[3]], [data[9], 0, 0])
    assert.deepEqual(erasure.encode(new Uint8Array(0), 3, 1).map(s => [...s]), [[0], [0], [0], [0]])
    // k = 1 is replication: every parity shard is a copy of the data
    const copies = erasure.encode(data, 1, 2)
    for (const s of copies) assert.deepEqual(s, data)
  })

  for (const name of ['typescript', 'native'] as const) {
    describe(`${name} codec${name === 'native' ? needsNative : ''}`, () => {
      let codec: ErasureCodec
      before(function () {
        codec = name === 'native' ? nativeCodec(this) : codecs.typescript
      })

      it('decode(encode(data)) round-trips for many (k, m, length)', () => {
        for (const [k, m] of shapes) {
          for (const length of lengths) {
            const data = bytes(length, k * 1000 + m * 100 + length)
            const shards = codec.encode(data, k, m)
            assert.equal(shards.length, k + m)
            for (const s of shards) assert.equal(s.length, shardSize(length, k))
            assert.deepEqual(codec.decode(shards, k, m, length), data, `k=${k} m=${m} length=${length}`)
            // lose the first min(m, k) data shards: decode must rebuild them
            const lost = Array.from({ length: Math.min(m, k) }, (_, i) => i)
            assert.deepEqual(codec.decode(without(shards, lost), k, m, length), data, `k=${k} m=${m} length=${length} lost=${lost.join(',')}`)
          }
        }
      })

      it('reconstruct(shards) after losing any m fragments of 4+2 (exhaustive)', () => {
        const data = bytes(4099, 42)
        const shards = codec.encode(data, 4, 2)
        for (const lost of subsets(6, 2)) {
          const damaged = without(shards, lost)
          const rebuilt = codec.reconstruct(damaged, 4, 2)
          assert.deepEqual(rebuilt, shards, `lost ${lost.join(',')}`)
          for (const i of [0, 1, 2, 3, 4, 5]) if (!lost.includes(i)) assert.equal(rebuilt[i], shards[i])
          assert.deepEqual(codec.decode(damaged, 4, 2, data.length), data, `lost ${lost.join(',')}`)
        }
      })

      it('reconstruct(shards) after losing m fragments of 10+4 (sampled)', () => {
        const data = bytes(100_003, 7)
        const shards = codec.encode(data, 10, 4)
        const all = subsets(14, 4).filter(s => s.length === 4)
        assert.equal(all.length, 1001)
        for (let i = 0; i < all.length; i += 37) {
          const lost = all[i]
          const damaged = without(shards, lost)
          assert.deepEqual(codec.reconstruct(damaged, 10, 4), shards, `lost ${lost.join(',')}`)
          assert.deepEqual(codec.decode(damaged, 10, 4, data.length), data, `lost ${lost.join(',')}`)
        }
      })

      it('reconstruct(shards) with any <= m erased rebuilds byte-identical shards (property)', () => {
        fc.assert(fc.property(
          fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 8 }), fc.uint8Array({ maxLength: 3000 }), fc.infiniteStream(fc.nat()),
          (k, m, data, picks) => {
            const shards = codec.encode(data, k, m)
            const order = [...shards.keys()]
            const it = picks[Symbol.iterator]()
            for (let i = order.length - 1; i > 0; i--) { // Fisher–Yates from the stream
              const j = (it.next().value as number) % (i + 1)
              ;[order[i], order[j]] = [order[j], order[i]]
            }
            const lost = order.slice(0, (it.next().value as number) % (m + 1))
            const damaged = without(shards, lost)
            const kept = copies(damaged)
            assert.deepEqual(codec.reconstruct(damaged, k, m), shards)
            assert.deepEqual(codec.decode(damaged, k, m, data.length), data)
            assert.deepEqual(damaged, kept) // inputs are never modified
          }), { numRuns: 150 })
      })

      it('every erasure pattern up to m: reconstruct and decode (any length up to k shards) give exact bytes in fresh, unaliased plain Uint8Arrays (property)', () => {
        const plain = (s: Uint8Array): boolean => Object.getPrototypeOf(s) === Uint8Array.prototype
        fc.assert(fc.property(
          fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 2100 }), fc.nat(), fc.integer({ min: 0, max: 255 }),
          (k, m, data, cut, dirt) => {
            // dirty freed memory first: outputs are allocated unfilled and must still be exact
            for (let i = 0; i < 4; i++) Buffer.allocUnsafeSlow(4096 + 97 * i).fill(dirt)
            const shards = codec.encode(data, k, m)
            const size = shardSize(data.length, k)
            assert.ok(shards.every(plain))
            const padded = new Uint8Array(size * k)
            padded.set(data)
            assert.deepEqual(concat(shards.slice(0, k)), padded) // the padding is zeros
            const length = cut % (size * k + 1) // decode any prefix of the padded data shards
            for (const lost of subsets(k + m, m)) {
              const damaged = without(shards, lost)
              const kept = copies(damaged)
              const rebuilt = codec.reconstruct(damaged, k, m)
              assert.deepEqual(rebuilt, shards, `k=${k} m=${m} lost ${lost.join(',')}`)
              const out = codec.decode(damaged, k, m, length)
              assert.ok(plain(out) && rebuilt.every(plain))
              assert.deepEqual(out, padded.subarray(0, length), `k=${k} m=${m} length=${length} lost ${lost.join(',')}`)
              // the rebuilt shards are separate memory: scribbling on each changes nothing else
              for (const i of lost) rebuilt[i].fill(i + 1)
              for (const i of lost) assert.ok(rebuilt[i].every(b => b === i + 1))
              assert.deepEqual(damaged, kept)
              assert.deepEqual(out, padded.subarray(0, length))
            }
            // and the parity of one encode is separate from its data and from each other
            if (m > 0) {
              const again = codec.encode(data, k, m)
              again[k].fill(dirt ^ 0xa5)
              assert.deepEqual(again.slice(k + 1), shards.slice(k + 1))
              assert.deepEqual(again.slice(0, k), shards.slice(0, k))
            }
          }), { numRuns: 120 })
      })

      it('reconstruct(shards) with fewer than k present throws ErasureError and touches nothing (property)', () => {
        fc.assert(fc.property(
          fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 6 }), fc.uint8Array({ maxLength: 500 }), fc.nat(),
          (k, m, data, pick) => {
            const shards = codec.encode(data, k, m)
            const keep = pick % k // 0..k-1 shards kept
            const damaged = shards.map((s, i) => i < keep ? s : undefined)
            const kept = copies(damaged)
            assert.throws(() => codec.reconstruct(damaged, k, m), (err: Error) => err instanceof ErasureError && err.name === 'ErasureError' && /needed to rebuild/.test(err.message))
            assert.throws(() => codec.decode(damaged, k, m, data.length), ErasureError)
            assert.deepEqual(damaged, kept)
          }), { numRuns: 100 })
      })

      it('encode(data) parity is byte-identical to the Rust reed-solomon-erasure crate (wasm)', () => {
        for (const [k, m] of shapes.filter(([, m]) => m > 0)) {
          for (const length of [1, 7, 1000, 65537]) {
            const shards = codec.encode(bytes(length, k + m + length), k, m)
            assert.deepEqual(shards.slice(k), wasmParity(shards.slice(0, k), k, m), `k=${k} m=${m} length=${length}`)
          }
        }
        fc.assert(fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 10 }), fc.uint8Array({ minLength: 1, maxLength: 2000 }), (k, m, data) => {
          const shards = codec.encode(data, k, m)
          assert.deepEqual(shards.slice(k), wasmParity(shards.slice(0, k), k, m))
        }), { numRuns: 100 })
      })

      it('encode, reconstruct and decode of views at unaligned offsets give the same bytes', () => {
        for (const length of [3, 1000, 65537]) {
          const data = bytes(length, 9)
          const shifted = new Uint8Array(length + 1)
          shifted.set(data, 1)
          assert.deepEqual(codec.encode(shifted.subarray(1), 4, 2), codec.encode(data, 4, 2))
          assert.deepEqual(codec.encode(shifted.subarray(1), 5, 3), codec.encode(data, 5, 3))
          // shards that arrive as views at odd offsets (e.g. slices of a network buffer)
          const shards = codec.encode(data, 4, 2)
          const odd = shards.map((s, i) => {
            const backing = new Uint8Array(s.length + 1 + i)
            backing.set(s, 1 + i)
            return backing.subarray(1 + i)
          })
          assert.deepEqual(codec.reconstruct(without(odd, [0, 2]), 4, 2), shards)
          assert.deepEqual(codec.decode(without(odd, [1, 3]), 4, 2, length), data)
        }
      })

      it('reconstruct and decode reject bad arguments with ErasureError', () => {
        const shards = codec.encode(bytes(100, 5), 4, 2)
        const isErasure = (re: RegExp) => (err: Error) => err instanceof ErasureError && re.test(err.message)
        assert.throws(() => codec.reconstruct([shards[0], shards[1].subarray(1), shards[2], shards[3]], 4, 2), isErasure(/same length/))
        assert.throws(() => codec.reconstruct([...shards, shards[0]], 4, 2), isErasure(/at most 6/))
        assert.throws(() => codec.reconstruct(shards, 0, 2), isErasure(/k must be/))
        assert.throws(() => codec.reconstruct(shards, 4, -1), isErasure(/m must be/))
        assert.throws(() => codec.reconstruct(shards, 4.5, 2), isErasure(/k must be/))
        assert.throws(() => codec.encode(bytes(10), 200, 56), isErasure(/at most 255/))
        assert.throws(() => codec.encode('text' as unknown as Uint8Array, 2, 1), isErasure(/Uint8Array/))
        assert.throws(() => codec.reconstruct([shards[0], 'x' as unknown as Uint8Array, shards[2], shards[3]], 4, 2), isErasure(/not a Uint8Array/))
        assert.throws(() => codec.decode(shards, 4, 2, 4 * shards[0].length + 1), isErasure(/exceeds/))
        assert.throws(() => codec.decode(shards, 4, 2, -1), isErasure(/length/))
        assert.deepEqual(codec.decode(shards, 4, 2, 100), bytes(100, 5)) // nothing was lost
      })

      it(`encode(data, k, m) works up to k + m = ${MAX_SHARDS}`, () => {
        const data = bytes(5000, 11)
        const shards = codec.encode(data, 128, 127)
        const lost = Array.from({ length: 127 }, (_, i) => i * 2) // every even shard
        assert.deepEqual(codec.decode(without(shards, lost), 128, 127, data.length), data)
      })
    })
  }

  it(`the native and TypeScript codecs give identical shards${needsNative}`, function () {
    const native = nativeCodec(this)
    const ts = codecs.typescript
    for (const [k, m] of shapes) {
      for (const length of [...lengths, 1 << 20]) {
        const data = bytes(length, length + k)
        const a = ts.encode(data, k, m)
        const b = native.encode(data, k, m)
        assert.deepEqual(b, a, `encode k=${k} m=${m} length=${length}`)
        const lost = Array.from({ length: m }, (_, i) => i * Math.floor((k + m) / m)) // spread over data and parity
        assert.deepEqual(native.reconstruct(without(a, lost), k, m), ts.reconstruct(without(a, lost), k, m))
      }
    }
  })

  describe('wide codes (issue 14: `up --data-fragments` picks k, so k + m goes up to placement MAX_WIDTH = 32)', () => {
    /** The native codec when it is here (a failure when it should be), else undefined. */
    const maybeNative = (ctx: Mocha.Context): ErasureCodec | undefined => nativeAbsent === undefined ? nativeCodec(ctx) : undefined

    // The wasm crate serves for parity only: its reconstruct() fails here (a wasm "memory access
    // out of bounds" in its allocator, or wrong bytes, already at 2+1). Its parity is the check
    // that counts: what is stored is the standard code; rebuilt bytes are checked against the
    // original ones.

    /** Both codecs rebuild every shard and decode the data with the shards `lost` erased. */
    function checkPattern (codecsHere: ErasureCodec[], shards: Uint8Array[], data: Uint8Array, k: number, m: number, lost: number[]): void {
      const damaged = without(shards, lost)
      for (const c of codecsHere) {
        assert.deepEqual(c.reconstruct(damaged, k, m), shards, `${c.codec} k=${k} m=${m} lost ${lost.join(',')}`)
        assert.deepEqual(c.decode(damaged, k, m, data.length), data, `${c.codec} k=${k} m=${m} lost ${lost.join(',')}`)
      }
    }

    it('8+2, 10+4 and 16+4 are MDS: every erasure pattern of up to m shards decodes (exhaustive, both codecs; parity equal to the wasm crate\'s)', function () {
      this.timeout(120_000)
      const here = [codecs.typescript, ...[maybeNative(this)].filter(c => c !== undefined)]
      for (const [k, m] of [[8, 2], [10, 4], [16, 4]] as const) {
        const data = bytes(k * 41 + 3, k * 100 + m)
        const shards = codecs.typescript.encode(data, k, m)
        for (const c of here) assert.deepEqual(c.encode(data, k, m), shards, `${c.codec} encode k=${k} m=${m}`)
        assert.deepEqual(shards.slice(k), wasmParity(shards.slice(0, k), k, m))
        for (const lost of subsets(k + m, m)) checkPattern(here, shards, data, k, m, lost)
      }
    })

    it('any k + m <= 32 with any erasure pattern of up to m: native, TypeScript and the wasm crate give the same parity, and both codecs rebuild exact bytes (property)', function () {
      this.timeout(120_000)
      const here = [codecs.typescript, ...[maybeNative(this)].filter(c => c !== undefined)]
      fc.assert(fc.property(
        fc.integer({ min: 2, max: 30 }).chain(k => fc.tuple(fc.constant(k), fc.integer({ min: 1, max: Math.min(16, 32 - k) }))),
        fc.uint8Array({ minLength: 1, maxLength: 3000 }),
        fc.infiniteStream(fc.nat()),
        ([k, m], data, picks) => {
          const shards = codecs.typescript.encode(data, k, m)
          for (const c of here) assert.deepEqual(c.encode(data, k, m), shards, `${c.codec} encode k=${k} m=${m}`)
          assert.deepEqual(shards.slice(k), wasmParity(shards.slice(0, k), k, m))
          const it = picks[Symbol.iterator]()
          const order = [...shards.keys()]
          for (let i = order.length - 1; i > 0; i--) { // Fisher–Yates from the stream
            const j = (it.next().value as number) % (i + 1)
            ;[order[i], order[j]] = [order[j], order[i]]
          }
          const lost = order.slice(0, 1 + (it.next().value as number) % m).sort((a, b) => a - b) // 1..m erased
          checkPattern(here, shards, data, k, m, lost)
        }), { numRuns: 300 })
    })

    it('one more erasure than m is refused for wide codes (ErasureError), not garbage', () => {
      for (const [k, m] of [[16, 4], [28, 4], [30, 2]] as const) {
        const shards = codecs.typescript.encode(bytes(1000, k), k, m)
        const lost = Array.from({ length: m + 1 }, (_, i) => i * 2)
        assert.throws(() => codecs.typescript.reconstruct(without(shards, lost), k, m), ErasureError)
      }
    })
  })

  it(`the native addon rejects bad arguments with a TypeError or RangeError, never reading out of bounds${needsAddon}`, function () {
    if (!existsSync(ADDON)) {
      if (addonAbsent !== undefined) this.skip()
      assert.fail(`no ${ADDON.pathname} although gcc, ${ISAL_HEADER} and the Node-API headers are present: run scripts/setup (or node/data/native/build.sh)`)
    }
    const addon = createRequire(import.meta.url)(ADDON.pathname) as {
      initTables (k: number, rows: number, coeffs: Uint8Array): Uint8Array
      encodeData (len: number, k: number, rows: number, tables: Uint8Array, sources: Uint8Array[], targets: Uint8Array[]): void
      encodeLoop (len: number, k: number, rows: number, tables: Uint8Array, sources: Uint8Array[], targets: Uint8Array[], times: number): void
    }
    const tables = addon.initTables(2, 1, Uint8Array.of(3, 5))
    assert.equal(tables.length, 64)
    const a = bytes(16, 1)
    const b = bytes(16, 2)
    const out = new Uint8Array(16)
    addon.encodeData(16, 2, 1, tables, [a, b], [out]) // out = 3a + 5b
    for (let i = 0; i < 16; i++) {
      assert.equal(out[i], gfMulSlow(3, a[i]) ^ gfMulSlow(5, b[i]))
    }
    assert.throws(() => addon.initTables(2, 1, Uint8Array.of(3)), RangeError)
    assert.throws(() => addon.initTables(0, 1, new Uint8Array(0)), RangeError)
    assert.throws(() => addon.initTables(2, 1, [3, 5] as unknown as Uint8Array), TypeError)
    assert.throws(() => addon.encodeData(17, 2, 1, tables, [a, b], [out]), RangeError) // buffers shorter than len
    assert.throws(() => addon.encodeData(16, 2, 1, tables, [a], [out]), RangeError) // too few sources
    assert.throws(() => addon.encodeData(16, 2, 1, tables.subarray(1), [a, b], [out]), RangeError)
    assert.throws(() => addon.encodeData(16, 2, 1, tables, [a, new Uint16Array(16) as unknown as Uint8Array], [out]), TypeError)
    assert.throws(() => addon.encodeData(1.5, 2, 1, tables, [a, b], [out]), RangeError)
    assert.throws(() => (addon.encodeData as (...args: unknown[]) => void)(16, 2, 1, tables, [a, b]), TypeError)
    // the benchmark's baseline loop: the same product, the same checks
    const looped = new Uint8Array(16)
    addon.encodeLoop(16, 2, 1, tables, [a, b], [looped], 3)
    assert.deepEqual(looped, out)
    assert.throws(() => addon.encodeLoop(17, 2, 1, tables, [a, b], [looped], 1), RangeError)
    assert.throws(() => addon.encodeLoop(16, 2, 1, tables, [a, b], [looped], -1), RangeError)
    assert.throws(() => addon.encodeLoop(16, 2, 1, tables, [a, b], [looped, looped], 1), RangeError)
    assert.throws(() => (addon.encodeLoop as (...args: unknown[]) => void)(16, 2, 1, tables, [a, b], [looped]), TypeError)
  })

  it(`the native addon gives every function darkfs takes from it (the hashes too: this process has OpenSSL's SHA-256)${needsAddon}`, function () {
    if (!existsSync(ADDON)) {
      if (addonAbsent !== undefined) this.skip()
      assert.fail(`no ${ADDON.pathname} although gcc, ${ISAL_HEADER} and the Node-API headers are present: run scripts/setup (or node/data/native/build.sh)`)
    }
    // a function missing here is no skip: the code paths without it run in its place, and the
    // tests of it skip (writeBlocks' table entry once pushed sha256Leaves past a count written
    // by hand, and its test and every off-thread leaf hash went quiet)
    const addon = createRequire(import.meta.url)(ADDON.pathname) as Record<string, unknown>
    for (const name of ['writeBlock', 'writeBlocks', 'readSlice', 'readSliceNow', 'readBlock', 'initTables', 'encodeData', 'encodeLoop', 'xsalsa20Xor', 'hsalsa20', 'sha256Many', 'sha256Leaves', 'chachaOpen', 'chachaSeal']) {
      assert.equal(typeof addon[name], 'function', `the addon has no ${name}`)
    }
    for (const [name, f] of Object.entries({ sha256Many: erasure.sha256Many, sha256Leaves: erasure.sha256Leaves, writeBlockNative: erasure.writeBlockNative, writeBlocksNative: erasure.writeBlocksNative, readSliceNative: erasure.readSliceNative, readBlockNative: erasure.readBlockNative, readSliceNowNative: erasure.readSliceNowNative, xsalsa20Native: erasure.xsalsa20Native, chacha20Poly1305Native: erasure.chacha20Poly1305Native })) {
      assert.notEqual(f, undefined, `erasure.ts has no ${name}`)
    }
  })

  it(`the native addon's sha256Many hashes in threadpool jobs cut where asked, with the digest of a prefix of the first buffer from the same pass${needsAddon}`, async function () {
    if (!existsSync(ADDON)) {
      if (addonAbsent !== undefined) this.skip()
      assert.fail(`no ${ADDON.pathname} although gcc, ${ISAL_HEADER} and the Node-API headers are present: run scripts/setup (or node/data/native/build.sh)`)
    }
    const addon = createRequire(import.meta.url)(ADDON.pathname) as {
      sha256Many?: (buffers: Uint8Array[], cuts: number[], prefix: number, callback: (err: Error | null, digests: Uint8Array) => void) => void
    }
    // node exports OpenSSL's SHA256_* to addons; without them the addon leaves sha256Many out
    assert.ok(addon.sha256Many !== undefined, 'the addon has no sha256Many: the process exports no SHA256_Init/Update/Final')
    assert.equal(erasure.sha256Many !== undefined, nativeAbsent === undefined)
    const many = async (buffers: Uint8Array[], cuts: number[], prefix: number): Promise<Uint8Array> =>
      await new Promise((resolve, reject) => { addon.sha256Many!(buffers, cuts, prefix, (err, d) => { if (err !== null) reject(err); else resolve(d) }) })
    const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
    const hex = (d: Uint8Array, i: number): string => Buffer.from(d.subarray(32 * i, 32 * i + 32)).toString('hex')
    const buffers = [bytes(3 << 20, 5), bytes(0), bytes(1, 6), bytes(64, 7), bytes(65537, 8).subarray(3)]
    for (const cuts of [[], [1], [1, 2, 3, 4], [2, 4]]) {
      for (const prefix of [0, 1, 63, 64, 65, 1 << 20, 3 << 20]) {
        const d = await many(buffers, cuts, prefix)
        assert.equal(d.length, 32 * (buffers.length + (prefix > 0 ? 1 : 0)))
        buffers.forEach((b, i) => { assert.equal(hex(d, i), sha(b), `buffer ${i}, cuts ${cuts.join(',')}`) })
        if (prefix > 0) assert.equal(hex(d, buffers.length), sha(buffers[0].subarray(0, prefix)), `prefix ${prefix}`)
      }
    }
    const none = (): void => {}
    assert.throws(() => { addon.sha256Many!([], [], 0, none) }, TypeError)
    assert.throws(() => { addon.sha256Many!(buffers, [2, 1], 0, none) }, RangeError) // not ascending
    assert.throws(() => { addon.sha256Many!(buffers, [0], 0, none) }, RangeError)
    assert.throws(() => { addon.sha256Many!(buffers, [5], 0, none) }, RangeError)
    assert.throws(() => { addon.sha256Many!(buffers, [1, 2, 3, 4, 5], 0, none) }, TypeError) // as many cuts as buffers
    assert.throws(() => { addon.sha256Many!(buffers, [], (3 << 20) + 1, none) }, RangeError) // prefix past buffers[0]
    assert.throws(() => { addon.sha256Many!(buffers, [], -1, none) }, RangeError)
    assert.throws(() => { addon.sha256Many!([new Uint16Array(4) as unknown as Uint8Array], [], 0, none) }, TypeError)
    assert.throws(() => { (addon.sha256Many as (...args: unknown[]) => void)(buffers, [], 0) }, TypeError)
  })

  it(`the native addon's readSlice (and readBlock, which hashes what it read) fills a large buffer, or a view into one, with the file's bytes and leaves the bytes around the view as they were (the pages under it are faulted in first)${needsAddon}`, async function () {
    if (!existsSync(ADDON)) {
      if (addonAbsent !== undefined) this.skip()
      assert.fail(`no ${ADDON.pathname} although gcc, ${ISAL_HEADER} and the Node-API headers are present: run scripts/setup (or node/data/native/build.sh)`)
    }
    assert.ok(erasure.readSliceNative !== undefined, 'erasure.ts has no readSliceNative')
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-readslice-'))
    try {
      const file = join(dir, 'block')
      const data = bytes((1 << 20) + 12345, 31)
      await writeFile(file, data)
      // a fresh buffer of the whole file (Store.get's case): its pages exist only once faulted in
      const whole = Buffer.allocUnsafeSlow(data.byteLength)
      assert.equal(await erasure.readSliceNative(file, 0, whole), true)
      assert.ok(Buffer.from(data).equals(whole))
      // views that start and end inside pages the rest of the buffer shares: the bytes around the
      // view, before and after, in the same pages, keep the pattern written there
      const around = 100_003
      for (const [offset, length] of [[3, 300_000], [4096 * 7 + 11, 65_536], [1, data.byteLength - 1], [12345, 65_535]]) {
        // fresh each time, the pattern written only around the view: the pages wholly under it
        // are not faulted in until the read's fault-in (or its copy) touches them
        const big = Buffer.allocUnsafeSlow(around + length + around)
        big.fill(0xa5, 0, around)
        big.fill(0xa5, around + length)
        const view = big.subarray(around, around + length)
        assert.equal(await erasure.readSliceNative(file, offset, view), true, `offset ${offset}, ${length} bytes`)
        assert.ok(Buffer.from(data.subarray(offset, offset + length)).equals(view), `offset ${offset}, ${length} bytes`)
        assert.ok(big.subarray(0, around).every(b => b === 0xa5), 'the bytes before the view changed')
        assert.ok(big.subarray(around + length).every(b => b === 0xa5), 'the bytes after the view changed')
      }
      // past the end of file: short, and says so
      assert.equal(await erasure.readSliceNative(file, 1 << 20, new Uint8Array(65_536)), false)
      // readBlock: the same bytes and, from the same job, their sha256; a file shorter than the
      // buffer (or absent) gives no digest; a longer one the digest of the bytes read
      assert.ok(erasure.readBlockNative !== undefined, 'erasure.ts has no readBlockNative')
      const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
      for (const length of [1, 4096, 65_535, 1 << 20, data.byteLength]) {
        const into = Buffer.allocUnsafeSlow(length)
        const r = await erasure.readBlockNative(file, into)
        assert.equal(r.whole, true, `${length} bytes`)
        assert.ok(Buffer.from(data.subarray(0, length)).equals(into), `${length} bytes`)
        assert.equal(Buffer.from(r.digest!).toString('hex'), sha(data.subarray(0, length)), `${length} bytes`)
      }
      const longer = await erasure.readBlockNative(file, Buffer.alloc(data.byteLength + 1))
      assert.deepEqual(longer, { whole: false, digest: undefined })
      await assert.rejects(erasure.readBlockNative(join(dir, 'absent'), Buffer.alloc(16)), (err: any) => err.code === 'ENOENT')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

/** Shift-and-add multiplication in GF(2^8) mod 0x11d, independent of the codec's tables. */
function gfMulSlow (a: number, b: number): number {
  let p = 0
  for (let i = 0; i < 8; i++) {
    if ((b & 1) !== 0) p ^= a
    b >>= 1
    a <<= 1
    if ((a & 0x100) !== 0) a ^= 0x11d
  }
  return p
}

describe(`erasure addon populate (a decoded chunk's fresh buffer faulted in at once)${needsAddon}`, () => {
  const addon = (): { populate: (b: Uint8Array) => void } => {
    const a = createRequire(import.meta.url)(ADDON.pathname) as { populate?: (b: Uint8Array) => void }
    assert.equal(typeof a.populate, 'function', 'the built addon exports populate')
    return a as { populate: (b: Uint8Array) => void }
  }

  it('leaves the bytes of the view and of its neighbours in the same memory as they were, small and large, fresh or filled', function () {
    if (addonAbsent !== undefined) this.skip()
    const { populate } = addon()
    for (const [size, from, to] of [[4096, 100, 3000], [300_000, 5, 299_990], [1 << 20, 4097, (1 << 20) - 3], [(1 << 20) + 3, 0, (1 << 20) + 3]]) {
      const filled = Buffer.from(bytes(size, size))
      const before = Buffer.from(filled)
      populate(filled.subarray(from, to))
      assert.ok(filled.equals(before), `a filled buffer of ${size} bytes changed`)
      // a fresh one: what is there before is what is there after
      const fresh = Buffer.allocUnsafeSlow(size)
      fresh.fill(7, 0, from)
      fresh.fill(9, to)
      const head = Buffer.from(fresh.subarray(0, from))
      const tail = Buffer.from(fresh.subarray(to))
      populate(fresh.subarray(from, to))
      assert.ok(fresh.subarray(0, from).equals(head) && fresh.subarray(to).equals(tail), `the neighbours of a fresh view of ${size} bytes changed`)
    }
  })

  it('refuses what is not a Uint8Array with a TypeError', function () {
    if (addonAbsent !== undefined) this.skip()
    const { populate } = addon()
    assert.throws(() => populate('bytes' as unknown as Uint8Array), TypeError)
    assert.throws(() => (populate as unknown as () => void)(), TypeError)
  })

  it('a 1 MiB chunk (k = 4, m = 2) decodes to its bytes from every set of 4 fragments, the codec in use', () => {
    const data = bytes((1 << 20) - 5, 32)
    const shards = erasure.encode(data, 4, 2)
    for (const lost of [[], [0], [3], [1, 2], [0, 5], [4, 5]]) {
      const some: Array<Uint8Array | undefined> = shards.map((s, i) => lost.includes(i) ? undefined : s)
      const got = erasure.decode(some, 4, 2, data.byteLength)
      assert.ok(Buffer.from(got).equals(Buffer.from(data)), `lost ${lost.join(',') || 'none'}`)
    }
  })
})
