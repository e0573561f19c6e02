// The xsalsa20 correction (node/net/xsalsa20.ts): two pnet ciphers taking turns with inputs that
// grow the shared WebAssembly memory no longer exhaust it, and every output is the cipher's.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { pnetXsalsa20, renewXsalsa20Views } from '../../node/net/xsalsa20.ts'

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

  it('is applied by loading the host module (in a fresh process)', async () => {
    const here = new URL('../../node/net/', import.meta.url)
    const script = `await import(${JSON.stringify(new URL('host.ts', here).href)}); const { pnetXsalsa20 } = await import(${JSON.stringify(new URL('xsalsa20.ts', here).href)}); process.stdout.write(String(pnetXsalsa20().prototype.__darkfsRenewed === true))`
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script])
    assert.equal(stdout, 'true')
  })
})
