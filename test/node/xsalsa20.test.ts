// The xsalsa20 correction (node/net/xsalsa20.ts): two pnet ciphers taking turns with inputs that
// grow the shared WebAssembly memory no longer exhaust it, and every output is the cipher's; with
// the erasure addon built, ciphers run on its XSalsa20 and give the same key stream.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { pnetXsalsa20, renewXsalsa20Views } from '../../node/net/xsalsa20.ts'
import { xsalsa20Native } from '../../node/data/index.ts'

describe('xsalsa20 (the network key layer\'s cipher)', function () {
  this.timeout(120_000)

  it('two ciphers taking turns with 1 MiB inputs: 80 MiB pass (the uncorrected module died near 30 MiB), bytes right', () => {
    renewXsalsa20Views()
    const X = pnetXsalsa20() as unknown as (nonce: Uint8Array, key: Uint8Array) => { update: (i: Uint8Array) => Uint8Array, finalize: () => void }
    const key = randomBytes(32)
    const [na, nb] = [randomBytes(24), randomBytes(24)]
    const a = X(na, key)
    const b = X(nb, key)
    // the same streams decrypted by two more ciphers, in the same turns
    const da = X(na, key)
    const db = X(nb, key)
    for (let i = 0; i < 40; i++) {
      for (const [enc, dec] of [[a, da], [b, db]] as const) {
        const plain = randomBytes((1 << 20) + i * 4099)
        const sealed = enc.update(plain)
        assert.ok(Buffer.from(dec.update(sealed)).equals(plain), `round ${i}: decrypts to the input`)
      }
    }
    for (const c of [a, b, da, db]) c.finalize()
  })

  it('ciphers run on the addon when it is built, with the WebAssembly module\'s key stream, across pieces of any size', () => {
    renewXsalsa20Views()
    const X = pnetXsalsa20() as unknown as (nonce: Uint8Array, key: Uint8Array) => { update: (i: Uint8Array, o?: Uint8Array) => Uint8Array, finalize: () => void, __darkfsNative?: unknown }
    for (let trial = 0; trial < 20; trial++) {
      const key = randomBytes(32)
      const nonce = randomBytes(24)
      const c = X(nonce, key)
      // pieces from 0 bytes to past 256 KiB, so blocks are entered part-way and the one-, four-,
      // eight- and sixteen-block paths run (and the 512 and 1,024 bytes around their edges)
      const sizes = [0, 1, 63, 64, 65, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024, 1025, 1536, 2047, 4096 + trial, 65535, 300_001, 7]
      const plain = randomBytes(sizes.reduce((a, b) => a + b, 0))
      // the reference: a cipher of the same key and nonce kept on the module (as one that worked before the take-over would be)
      const ref = X(nonce, key)
      ref.__darkfsNative = null
      const want = ref.update(plain)
      ref.finalize()
      let at = 0
      for (const n of sizes) {
        const piece = plain.subarray(at, at + n)
        // half the calls pass an output buffer, as pnet may
        const got = trial % 2 === 0 ? c.update(piece) : c.update(piece, new Uint8Array(n))
        assert.ok(Buffer.from(got).equals(Buffer.from(want.subarray(at, at + n))), `trial ${trial}: piece of ${n} bytes at ${at}`)
        at += n
      }
      assert.equal(c.__darkfsNative != null, xsalsa20Native !== undefined && process.env.DARKFS_PNET_CIPHER !== 'wasm', 'on the addon exactly when it is there')
      c.finalize()
      assert.equal(c.__darkfsNative, null)
    }
  })

  it('a finalized cipher (its connection closed) can be finalized again, and XORs nothing more: no key stream, no exception', () => {
    renewXsalsa20Views()
    const X = pnetXsalsa20() as unknown as (nonce: Uint8Array, key: Uint8Array) => { update: (i: Uint8Array, o?: Uint8Array) => Uint8Array, finalize: () => void }
    // one that never worked, and one that did (on the addon when it is built)
    const idle = X(randomBytes(24), randomBytes(32))
    const used = X(randomBytes(24), randomBytes(32))
    used.update(randomBytes(100))
    for (const c of [idle, used]) {
      c.finalize()
      c.finalize()
      const late = new Uint8Array(64)
      assert.equal(c.update(late).byteLength, 0)
      assert.equal(c.update(late, late).byteLength, 0)
      assert.ok(late.every(b => b === 0), 'the buffer handed in is left as it was')
    }
  })

  it('the addon\'s AVX-512 and AVX2 paths give the same key stream (each in a fresh process; the same bytes twice where the CPU has no AVX-512)', async function () {
    if (xsalsa20Native === undefined) this.skip()
    const data = new URL('../../node/data/index.ts', import.meta.url).href
    // the key stream of 64 KiB + 100 bytes from a position part-way into a block, as hex
    const script = `const { xsalsa20Native: n } = await import(${JSON.stringify(data)}); const out = new Uint8Array(65636); n.xor(new Uint8Array(32).fill(7), new Uint8Array(8).fill(9), 1000003, new Uint8Array(65636), out); process.stdout.write(Buffer.from(out).toString('hex'))`
    const run = async (env: Record<string, string>): Promise<string> => (await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, maxBuffer: 1 << 20 })).stdout
    const [wide, avx2] = await Promise.all([run({}), run({ DARKFS_SALSA_AVX512: '0' })])
    assert.equal(wide.length, 65636 * 2)
    assert.ok(wide === avx2, 'the same key stream')
  })

  it('is applied by loading the host module (in a fresh process)', async () => {
    const here = new URL('../../node/net/', import.meta.url)
    const script = `await import(${JSON.stringify(new URL('host.ts', here).href)}); const { pnetXsalsa20 } = await import(${JSON.stringify(new URL('xsalsa20.ts', here).href)}); process.stdout.write(String(pnetXsalsa20().prototype.__darkfsRenewed === true))`
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script])
    assert.equal(stdout, 'true')
  })
})
