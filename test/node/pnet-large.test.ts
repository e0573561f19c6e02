import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { Teardown } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

describe('pnet under backpressure', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('200 streams of 1 MiB written at once arrive intact over loopback TCP (the pnet cipher is fed in slices)', async () => {
    const key = createNetworkKey()
    const start = async (join: string[] = []): Promise<Host> => {
      const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], join })
      t.add(async () => { await h.stop() })
      return h
    }
    const a = await start()
    const b = await start([a.addresses()[0]])
    await until('connected', () => a.peers().length === 1 && b.peers().length === 1)
    // many streams at once: each may queue a full yamux window, so the connection's send queue
    // (what pnet encrypts in one call) grows to tens of MiB
    const STREAMS = 200
    const PER_STREAM = 1 << 20
    let received = 0
    const digests = new Map<number, string>()
    let finished = 0
    const allDone = new Promise<void>((resolve, reject) => {
      void a.handle('/darkfs-test/burst/1', async (stream) => {
        try {
          const hash = createHash('sha256')
          let id = -1
          for await (const piece of stream) {
            const bytes = piece.subarray()
            if (id < 0) id = bytes[0] | (bytes[1] << 8)
            hash.update(bytes)
            received += bytes.byteLength
          }
          digests.set(id, hash.digest('hex'))
          if (++finished === STREAMS) resolve()
        } catch (err) { reject(err) }
      }, { maxInboundStreams: STREAMS, maxOutboundStreams: STREAMS })
      void b.handle('/darkfs-test/burst/1', () => {}, { maxInboundStreams: STREAMS, maxOutboundStreams: STREAMS })
    })
    const expected = new Map<number, string>()
    await Promise.all(Array.from({ length: STREAMS }, async (_, id) => {
      const stream = await b.newStream(a.peerId, '/darkfs-test/burst/1')
      const piece = randomBytes(PER_STREAM)
      piece[0] = id & 0xff
      piece[1] = id >> 8
      expected.set(id, createHash('sha256').update(piece).digest('hex'))
      stream.send(piece) // no wait for drain
      await stream.close()
    }))
    await allDone
    const total = STREAMS * PER_STREAM
    assert.deepEqual([...digests.entries()].sort((x, y) => x[0] - y[0]), [...expected.entries()].sort((x, y) => x[0] - y[0]))
    assert.equal(received, total)
  })
})

describe('pnet cipher slicing', function () {
  it('after a host has connected, pnet\'s xsalsa20 encrypts a 64 MiB input (it used to overflow) with the same key stream as small pieces', async () => {
    const t = new Teardown()
    try {
      const key = createNetworkKey()
      const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
      t.add(async () => { await a.stop() })
      const b = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], join: [a.addresses()[0]] })
      t.add(async () => { await b.stop() })
      await until('connected', () => a.peers().length === 1)
      const { createRequire } = await import('node:module')
      const req = createRequire(createRequire(import.meta.url).resolve('@libp2p/pnet'))
      const XSalsa20 = req('xsalsa20')
      const nonce = randomBytes(24)
      const psk = randomBytes(32)
      const big = randomBytes(64 << 20)
      const whole = new XSalsa20(nonce, psk).update(big)
      const ref = new XSalsa20(nonce, psk)
      const parts: Uint8Array[] = []
      for (let at = 0; at < big.byteLength; at += 100_003) parts.push(ref.update(big.subarray(at, at + 100_003)))
      assert.ok(Buffer.from(whole).equals(Buffer.concat(parts)))
    } finally {
      await t.run()
    }
  })
})
