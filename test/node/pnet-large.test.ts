import assert from 'node:assert/strict'
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { Teardown } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { sealPool } from '../../node/net/lean-transport.ts'

/** Two hosts of one private network over loopback TCP, b joined to a and both connected; stopped by t. */
async function tcpPair (t: Teardown): Promise<{ a: Host, b: Host }> {
  const key = createNetworkKey()
  const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
  t.add(async () => { await a.stop() })
  const b = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], join: [a.addresses()[0]] })
  t.add(async () => { await b.stop() })
  await until('connected', () => a.peers().length === 1 && b.peers().length === 1)
  return { a, b }
}

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

describe('pnet send buffers reused over TCP', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('fragment-sized writes, one after another over loopback TCP, arrive intact while their sealed buffers are reused', async () => {
    const { a, b } = await tcpPair(t)
    const ROUNDS = 64
    const SIZE = 256 * 1024
    const got: string[] = []
    await a.handle('/darkfs-test/seq/1', async (stream) => {
      const hash = createHash('sha256')
      for await (const piece of stream) hash.update(piece.subarray())
      got.push(hash.digest('hex'))
      await stream.close()
    })
    // the dialer registers the protocol too (its outbound stream limit is the protocol's)
    await b.handle('/darkfs-test/seq/1', () => {})
    const reused = sealPool.reused
    const want: string[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const stream = await b.newStream(a.peerId, '/darkfs-test/seq/1')
      const piece = randomBytes(SIZE)
      want.push(createHash('sha256').update(piece).digest('hex'))
      stream.send(piece)
      await stream.close()
      await until(`round ${i} received`, () => got.length === i + 1)
    }
    assert.deepEqual(got, want, 'every write arrives intact')
    assert.ok(sealPool.reused > reused, 'sealed buffers were reused')
  })
})

/** What a net.Socket's _writeGeneric is given (Node's internal: one chunk, or a writev's list of chunks or of { chunk }). */
type WriteGeneric = (this: net.Socket, writev: boolean, data: unknown, encoding: unknown, cb: (err?: Error | null) => void) => unknown

describe('pnet send buffers reused while the socket backs up', function () {
  this.timeout(90_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('many streams into a receiver whose socket pauses and resumes arrive intact; no sealed buffer goes back to the pool while its socket (libuv, or its write queue) still holds it, and buffers written later than sent do go back', async () => {
    // what each socket's handle is writing now, by ArrayBuffer (Node's net.Socket._writeGeneric:
    // every write reaches libuv through it; its callback runs once libuv has written it)
    const proto = net.Socket.prototype as unknown as { _writeGeneric: WriteGeneric }
    const writeGeneric = proto._writeGeneric
    assert.equal(typeof writeGeneric, 'function', 'net.Socket has _writeGeneric (what this test watches)')
    const inFlight = new Map<ArrayBufferLike, number>()
    const sockets = new Set<net.Socket>()
    // buffers whose last write finished after _writeGeneric returned (libuv held it a while)
    const writtenLater = new WeakSet<ArrayBufferLike>()
    let laterWrites = 0
    proto._writeGeneric = function (writev, data, encoding, cb) {
      sockets.add(this)
      const chunks = (writev ? data as Array<Uint8Array | { chunk: Uint8Array }> : [data as Uint8Array]).map(d => d instanceof Uint8Array ? d : d.chunk)
      for (const c of chunks) { inFlight.set(c.buffer, (inFlight.get(c.buffer) ?? 0) + 1); writtenLater.delete(c.buffer) }
      let returned = false
      let done = false
      const r = writeGeneric.call(this, writev, data, encoding, (err) => {
        if (!done) {
          done = true
          if (returned) { laterWrites++; for (const c of chunks) writtenLater.add(c.buffer) }
          for (const c of chunks) {
            const n = (inFlight.get(c.buffer) ?? 0) - 1
            if (n <= 0) inFlight.delete(c.buffer)
            else inFlight.set(c.buffer, n)
          }
        }
        cb(err)
      })
      returned = true
      return r
    }
    t.add(async () => { proto._writeGeneric = writeGeneric })
    // every buffer given back to the pool: held by no socket (in libuv, or queued in the socket's
    // own write buffer, not yet handed to libuv)?
    const violations: string[] = []
    let givenBack = 0
    let givenBackLater = 0
    const give = sealPool.give
    sealPool.give = function (ab: ArrayBufferLike): void {
      givenBack++
      if (writtenLater.has(ab)) givenBackLater++
      if (inFlight.has(ab)) violations.push(`a buffer of ${ab.byteLength} bytes given back while libuv writes it`)
      for (const s of sockets) {
        const state = (s as unknown as { _writableState: { buffered?: Array<{ chunk?: Uint8Array }>, bufferedIndex?: number } })._writableState
        if (!Array.isArray(state.buffered)) { violations.push('a socket\'s write queue is not where this test looks (_writableState.buffered)'); continue }
        for (let i = state.bufferedIndex ?? 0; i < state.buffered.length; i++) {
          if (state.buffered[i]?.chunk?.buffer === ab) violations.push(`a buffer of ${ab.byteLength} bytes given back while queued in a socket`)
        }
      }
      give.call(this, ab)
    }
    t.add(async () => { sealPool.give = give })

    const { a, b } = await tcpPair(t)
    const STREAMS = 40
    const WRITES = 12
    const got = new Map<number, string>()
    await a.handle('/darkfs-test/slow/1', async (stream) => {
      const hash = createHash('sha256')
      let id = -1
      let n = 0
      for await (const piece of stream) {
        const bytes = piece.subarray()
        if (id < 0) id = bytes[0]
        hash.update(bytes)
        // a slow reader, so the sender's socket backs up
        if (++n % 16 === 0) await new Promise(resolve => setTimeout(resolve, 1))
      }
      got.set(id, hash.digest('hex'))
    }, { maxInboundStreams: STREAMS, maxOutboundStreams: STREAMS })
    await b.handle('/darkfs-test/slow/1', () => {}, { maxInboundStreams: STREAMS, maxOutboundStreams: STREAMS })
    // the receiver's side of the connection stops reading 9 ticks in 10: the sender's writes wait in libuv
    const aPort = Number(a.addresses()[0].split('/tcp/')[1].split('/')[0])
    let paused = false
    let pauses = 0
    let ticks = 0
    const toggler = setInterval(() => {
      const p = ++ticks % 10 !== 0
      if (p === paused) return
      paused = p
      for (const s of sockets) {
        if (s.localPort !== aPort || s.destroyed) continue
        if (paused) { s.pause(); pauses++ } else s.resume()
      }
    }, 20)
    t.add(async () => { clearInterval(toggler) })
    const want = new Map<number, string>()
    const reused = sealPool.reused
    await Promise.all(Array.from({ length: STREAMS }, async (_, id) => {
      const stream = await b.newStream(a.peerId, '/darkfs-test/slow/1')
      const hash = createHash('sha256')
      for (let i = 0; i < WRITES; i++) {
        // sizes of many classes (96 KiB to 137 KiB sealed)
        const piece = randomBytes(100_000 + id * 997 + i * 13)
        piece[0] = id
        hash.update(piece)
        if (!stream.send(piece)) await stream.onDrain()
      }
      want.set(id, hash.digest('hex'))
      await stream.close()
    }))
    await until('all received', () => got.size === STREAMS, 60_000)
    clearInterval(toggler)
    for (const s of sockets) if (!s.destroyed) s.resume()
    for (const [id, h] of want) assert.equal(got.get(id), h, `stream ${id} arrives intact`)
    assert.equal(violations.length, 0, `no buffer is given back while a socket holds it: ${violations.slice(0, 5).join('; ')}`)
    assert.ok(pauses > 0, 'the receiver\'s socket was paused')
    assert.ok(laterWrites > 0, `writes waited in libuv (${laterWrites})`)
    assert.ok(givenBackLater > 0, `buffers written after their send went back to the pool (${givenBackLater} of ${givenBack})`)
    assert.ok(sealPool.reused > reused, 'and were sealed into again')
  })
})
