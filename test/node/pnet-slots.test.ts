// pnet's ciphers give their slots back (node/net/xsalsa20.ts releasePnetCiphers): every xsalsa20
// cipher takes a 64-byte slot of the module's one WebAssembly memory that only finalize() returns,
// and @libp2p/pnet never calls it. With the memory's slots all but 8 taken, a host goes on
// accepting connections as they come and go (whole ones, and handshakes abandoned right after
// the nonce exchange): without the release, the third connection found no slot and failed its
// private-network handshake, as every later one did (bench:scale at 30 hosts).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { pnetXsalsa20 } from '../../node/net/xsalsa20.ts'
import { xsalsa20Native } from '../../node/data/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

interface Cipher { finalize: () => void }
type XSalsa20 = (nonce: Uint8Array, key: Uint8Array) => Cipher

/** Take every free slot of the cipher module's memory: the ciphers holding them (RangeError once none is left). */
function takeAllSlots (): Cipher[] {
  const X = pnetXsalsa20() as unknown as XSalsa20
  const nonce = new Uint8Array(24)
  const key = new Uint8Array(32)
  const taken: Cipher[] = []
  for (;;) {
    try {
      taken.push(X(nonce, key))
    } catch (err) {
      if (!(err instanceof RangeError)) throw err
      return taken
    }
  }
}

/** Connect to a pnet listener, trade nonces (ours random), and hang up: its ciphers exist, its upgrade stops in Noise. */
async function nonceAndHangUp (port: number): Promise<void> {
  const socket: Socket = connect(port, '127.0.0.1')
  try {
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
    socket.write(randomBytes(24))
    await new Promise<void>((resolve, reject) => {
      let got = 0
      socket.on('data', (d: Buffer) => { got += d.byteLength; if (got >= 24) resolve() })
      socket.once('close', () => { reject(new Error(`the host hung up after ${got} bytes of its nonce`)) })
    })
  } finally {
    socket.destroy()
  }
}

describe('pnet cipher slots', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  const key = createNetworkKey()
  const start = async (join: string[] = []): Promise<Host> => {
    const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], join })
    t.add(async () => { await h.stop() })
    return h
  }
  /** Run `work` with all but 8 of the cipher slots taken; then every slot must be free again, and the host's handshakes all passed. */
  const withEightSlots = async (a: Host, work: () => Promise<void>): Promise<void> => {
    const held = takeAllSlots()
    try {
      for (const c of held.splice(0, 8)) c.finalize()
      await work()
      const left = takeAllSlots()
      held.push(...left)
      if (xsalsa20Native !== undefined && process.env.DARKFS_PNET_CIPHER !== 'wasm') assert.equal(left.length, 8, 'every slot back')
      // on the module the memory may grow with the bytes XORed: more room, never less
      else assert.ok(left.length >= 8, `${left.length} slots left`)
      assert.deepEqual(a.inbound().pnetFailed, {}, 'no private-network handshake failed at the listener')
    } finally {
      for (const c of held) c.finalize()
    }
  }

  it('with 8 cipher slots left, a host accepts 12 connections one after another (each takes 4 while open), and has 8 left after', async () => {
    const a = await start()
    await withEightSlots(a, async () => {
      for (let i = 0; i < 12; i++) {
        const b = await start([a.addresses()[0]]).catch((err: Error) => { throw new Error(`connection ${i + 1}: ${err.message}`) })
        await until(`connection ${i + 1} open at both ends`, () => a.peers().length === 1 && b.peers().length === 1)
        await b.stop()
        await until(`connection ${i + 1} closed at the listener`, () => a.peers().length === 0)
      }
    })
  })

  it('with 8 cipher slots left, a host takes 12 handshakes abandoned right after the nonce exchange (its inbound upgrade fails in Noise), and has 8 left after', async () => {
    const a = await start()
    const port = Number(/\/tcp\/(\d+)/.exec(a.addresses()[0])![1])
    await withEightSlots(a, async () => {
      for (let i = 0; i < 12; i++) {
        await nonceAndHangUp(port).catch((err: Error) => { throw new Error(`abandoned handshake ${i + 1}: ${err.message}`) })
        await until(`abandoned handshake ${i + 1} settled at the listener`, () => a.inbound().upgrading === 0)
      }
    })
  })
})
