// The lean receive path of the two encryption layers (node/net/lean-transport.ts): pnet's inbound
// cipher XORs a socket read in place (no new buffer) with the same key stream; Noise decrypts a
// message in pieces without copying it into a destination its node:crypto path ignores, and reads
// a message length in place. Data over real hosts: test/node/pnet-large.test.ts.
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { pnetXsalsa20, renewXsalsa20Views } from '../../node/net/xsalsa20.ts'
import { NOISE_NATIVE_AEAD_MIN_BYTES, NoiseDecoder, halfWindowYamux, inPlacePnetInbound, leanNoiseConnection, leanNoiseCrypto as leanCrypto, noiseLength, ownedBySend, pnetSend, sealPool, sizeClass, skipUnheardEvents, SEAL_POOL_FREE_BYTES, SEAL_POOL_MAX_BYTES, SEAL_POOL_MIN_BYTES } from '../../node/net/lean-transport.ts'
import { AbstractMessageStream } from '@libp2p/utils'
import type { SendResult } from '@libp2p/utils'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { chacha20Poly1305Native } from '../../node/data/index.ts'
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { logger } from '@libp2p/logger'

type Cipher = { update: (i: Uint8Array, o?: Uint8Array) => Uint8Array, finalize: () => void }

describe('lean transport (pnet and Noise receive paths)', function () {
  this.timeout(60_000)

  it('pnet inbound: each read is XORed in place (the same buffer comes back) with the key stream of a fresh cipher; the outbound cipher still returns new buffers', () => {
    renewXsalsa20Views()
    const X = pnetXsalsa20() as unknown as (nonce: Uint8Array, key: Uint8Array) => Cipher
    const key = randomBytes(32)
    const nonce = randomBytes(24)
    const conn = { inboundXor: X(nonce, key), outboundXor: X(nonce, key) }
    inPlacePnetInbound(conn)
    inPlacePnetInbound(conn) // idempotent
    const reference = X(nonce, key)
    for (const size of [1, 63, 64, 1000, 65536, 70001, 3]) {
      const read = randomBytes(size)
      const want = reference.update(Buffer.from(read))
      const got = conn.inboundXor.update(read)
      assert.equal(got, read, `${size} bytes: decrypted in the buffer read`)
      assert.ok(Buffer.from(got).equals(Buffer.from(want)), `${size} bytes: the cipher's key stream`)
    }
    const plain = randomBytes(100)
    assert.notEqual(conn.outboundXor.update(plain), plain, 'outbound output is a buffer of its own')
    for (const c of [conn.inboundXor, conn.outboundXor, reference]) c.finalize()
  })

  it('noiseLength: a 2-byte big-endian length read in place, across pieces; fewer than 2 bytes throw a RangeError (the same object each time)', () => {
    assert.equal(noiseLength(Uint8Array.from([0xff, 0xef, 9])), 65519)
    assert.equal(noiseLength(new Uint8ArrayList(Uint8Array.from([0x12]), Uint8Array.from([0x34, 1]))), 0x1234)
    let first: unknown
    let second: unknown
    try { noiseLength(new Uint8ArrayList()) } catch (err) { first = err }
    try { noiseLength(Uint8Array.from([1])) } catch (err) { second = err }
    assert.ok(first instanceof RangeError)
    assert.equal(first, second)
  })

  it('NoiseDecoder: messages split across and within reads come out whole and in order, a length split over two reads too; an empty message is skipped', () => {
    const d = new NoiseDecoder(new Uint8ArrayList())
    const msgs = [randomBytes(65535), randomBytes(3), randomBytes(0), randomBytes(1000)]
    const wire = Buffer.concat(msgs.flatMap(m => [Buffer.from([m.byteLength >> 8, m.byteLength & 0xff]), m]))
    const got: Buffer[] = []
    // reads of awkward sizes: one ends inside a length prefix
    for (const [from, to] of [[0, 1], [1, 30000], [30000, 65538], [65538, 65540], [65540, wire.byteLength]]) {
      for (const m of d.decode(wire.subarray(from, to))) got.push(Buffer.from(m.subarray()))
    }
    assert.deepEqual(got.map(b => b.toString('hex')), msgs.filter(m => m.byteLength > 0).map(m => m.toString('hex')))
    assert.deepEqual(d.decode(new Uint8Array(0)), [])
  })

  it('Noise decrypt: messages in pieces (over several reads) decrypt to their plaintext, a large one without a copy into dst; a wrong tag still throws', () => {
    const k = randomBytes(32)
    const ad = new Uint8Array(0)
    const nonceOf = (n: number): Buffer => { const b = Buffer.alloc(12); b.writeUInt32LE(n, 4); return b }
    const seal = (plain: Uint8Array, n: number): Buffer => {
      const c = createCipheriv('chacha20-poly1305', k, nonceOf(n), { authTagLength: 16 })
      c.setAAD(ad, { plaintextLength: plain.byteLength })
      return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()])
    }
    const dsts: Array<Uint8Array | undefined> = []
    let next = 0
    const handshake = {
      decrypt: (ct: Uint8Array | Uint8ArrayList, dst?: Uint8Array): Uint8Array => {
        dsts.push(dst)
        const bytes = ct.subarray()
        const d = createDecipheriv('chacha20-poly1305', k, nonceOf(next++), { authTagLength: 16 })
        d.setAAD(ad, { plaintextLength: bytes.byteLength - 16 })
        d.setAuthTag(bytes.subarray(bytes.byteLength - 16))
        return Buffer.concat([d.update(bytes.subarray(0, bytes.byteLength - 16)), d.final()])
      }
    }
    // the shape of @chainsafe/libp2p-noise's EncryptedMessageStream that lean-transport reaches
    class FakeStream {
      handshake = handshake
      decoder: unknown = { decode: (): unknown[] => [], buffer: new Uint8ArrayList() }
      decrypt (_chunk: unknown): Uint8ArrayList { throw new Error('the original decrypt') }
    }
    const s = new FakeStream()
    leanNoiseConnection(s)
    assert.ok(s.decoder instanceof NoiseDecoder, 'the decoder is swapped')
    const big = randomBytes(65519)
    const sealedBig = seal(big, 0)
    // one message in three pieces, as it arrives over several socket reads
    const pieces = new Uint8ArrayList(sealedBig.subarray(0, 1000), sealedBig.subarray(1000, 40000), sealedBig.subarray(40000))
    const before = Buffer.from(pieces.subarray())
    assert.ok(Buffer.from(s.decrypt(pieces).subarray()).equals(big))
    assert.equal(dsts[0], undefined, 'no copy into a destination node:crypto ignores')
    assert.ok(Buffer.from(pieces.subarray()).equals(before), 'the pieces are left as they were')
    // a small message in pieces, and one contiguous
    const small = randomBytes(100)
    assert.ok(Buffer.from(s.decrypt(new Uint8ArrayList(...[seal(small, 1)].flatMap(b => [b.subarray(0, 7), b.subarray(7)]))).subarray()).equals(small))
    assert.ok(Buffer.from(s.decrypt(seal(small, 2)).subarray()).equals(small))
    const bad = seal(small, 3)
    bad[bad.byteLength - 1] ^= 1
    assert.throws(() => s.decrypt(new Uint8ArrayList(bad.subarray(0, 50), bad.subarray(50))))
  })

  describe('events nobody listens to (skipUnheardEvents)', () => {
    /** A stream whose every send goes out at once (the 'idle' of each send is told after it). */
    class Sink extends AbstractMessageStream {
      sent = 0
      sendData (data: Uint8ArrayList): SendResult {
        this.sent += data.byteLength
        return { sentBytes: data.byteLength, canSendMore: true }
      }

      sendReset (): void {}
      sendPause (): void {}
      sendResume (): void {}
      async close (): Promise<void> {}
    }

    it('a stream makes no \'idle\' event while nothing listens to it; a listener, a once listener and one with a signal hear theirs until removed, used or aborted', () => {
      skipUnheardEvents(AbstractMessageStream.prototype)
      skipUnheardEvents(AbstractMessageStream.prototype) // idempotent
      const s = new Sink({ log: logger('darkfs:test:unheard') })
      const made: string[] = []
      const dispatch = s.dispatchEvent.bind(s)
      s.dispatchEvent = (e: Event): boolean => { made.push(e.type); return dispatch(e) }
      const send = (): void => { s.send(new Uint8Array(10)) }
      send()
      assert.deepEqual(made, [], 'no event made for nobody')
      assert.equal(s.sent, 10, 'the bytes went out')
      let heard = 0
      const onIdle = (): void => { heard++ }
      s.addEventListener('idle', onIdle)
      send()
      send()
      assert.equal(heard, 2, 'a listener hears each send\'s idle')
      s.removeEventListener('idle', onIdle)
      send()
      assert.equal(heard, 2, 'removed: heard no more')
      s.addEventListener('idle', () => { heard++ }, { once: true })
      send()
      send()
      assert.equal(heard, 3, 'a once listener hears one')
      const ac = new AbortController()
      s.addEventListener('idle', () => { heard++ }, { signal: ac.signal })
      send()
      ac.abort()
      send()
      assert.equal(heard, 4, 'a signal listener hears until aborted')
      assert.deepEqual(made, ['idle', 'idle', 'idle', 'idle'], 'events made only for listeners')
      assert.equal(s.sent, 80)
      // (the stream's own listeners: 'drain' is always heard, by the stream itself)
      s.onMuxerDrain()
      assert.deepEqual(made.slice(4), ['drain'])
    })
  })

  describe('yamux window updates (halfWindowYamux)', () => {
    interface Frame { type: number, flag: number, streamID: number, length: number }
    // a YamuxStream of @chainsafe/libp2p-yamux as its muxer makes one (state 3: established; 2: the SYN received, its ACK not sent yet)
    const stream = (direction: 'inbound' | 'outbound', state: number, sendFrame: (h: Frame, data?: Uint8ArrayList) => boolean): any =>
      new (YamuxStream as any)({ id: direction, streamId: 1, state, direction, log: logger('test:yamux'), sendFrame, getRTT: () => -1, protocol: '/test' })
    before(() => { halfWindowYamux(YamuxStream.prototype); halfWindowYamux(YamuxStream.prototype) })

    it('a receiving stream grants room once half its window is used, not after every data frame; the first frame of an inbound stream still gets its ACK at once', () => {
      const sent: Frame[] = []
      const rx = stream('inbound', 3, h => { sent.push(h); return true })
      const window: number = rx.recvWindow
      const frame = (n: number): void => { rx.handleData({ header: { type: 0, flag: 0, streamID: 1, length: n }, data: new Uint8ArrayList(new Uint8Array(n)) }) }
      // 16 frames of 1/16 of the window: the library sent 16 updates, one per frame
      for (let i = 0; i < 16; i++) frame(window / 16)
      assert.deepEqual(sent.map(f => [f.type, f.flag, f.length]), [[1, 0, window / 2], [1, 0, window / 2]])
      const acked: Frame[] = []
      const syn = stream('inbound', 2, h => { acked.push(h); return true })
      syn.handleData({ header: { type: 0, flag: 2, streamID: 1, length: 100 }, data: new Uint8ArrayList(new Uint8Array(100)) })
      assert.equal(acked.length, 1)
      assert.equal(acked[0].flag & 2, 2, 'the ACK flag')
    })

    it('a sender writing 8 MiB through a 256 KiB window is never stalled: every byte arrives, with one window update per half window received', async () => {
      let rx: any
      const updates: Frame[] = []
      let frames = 0
      const tx = stream('outbound', 3, (h, data) => {
        frames++
        const bytes = data?.subarray()
        queueMicrotask(() => rx.handleData({ header: h, data: new Uint8ArrayList(bytes!) }))
        return true
      })
      rx = stream('inbound', 3, h => { updates.push(h); queueMicrotask(() => tx.handleWindowUpdate({ header: h })); return true })
      const total = 8 << 20
      let got = 0
      const all = new Promise<void>(resolve => { rx.addEventListener('message', (e: { data: Uint8Array | Uint8ArrayList }) => { got += e.data.byteLength; if (got === total) resolve() }) })
      // pieces of 16 KiB: the frames are as small as what is queued when room comes
      for (let at = 0; at < total; at += 16384) tx.send(new Uint8Array(16384))
      await all
      assert.equal(got, total)
      assert.ok(updates.length <= total / (rx.recvWindow / 2), `${updates.length} updates for ${frames} frames`)
      assert.ok(updates.length < frames, `${updates.length} updates for ${frames} frames`)
    })
  })

  // node:crypto's path (no addon)
  const leanNoiseCrypto = leanCrypto(defaultCrypto, null)

  it('Noise send without the addon: leanNoiseCrypto seals to the very bytes of the default crypto, a large message as ciphertext and tag without joining them; the default opens it', () => {
    const k = randomBytes(32)
    const ad = randomBytes(32)
    for (const size of [0, 100, 1199, 1200, 4096, 65519]) {
      const nonce = randomBytes(12)
      const plain = randomBytes(size)
      for (const input of [plain, new Uint8ArrayList(plain.subarray(0, size >> 1), plain.subarray(size >> 1))]) {
        const want = defaultCrypto.chaCha20Poly1305Encrypt(input as any, nonce, ad, k)
        const got = leanNoiseCrypto.chaCha20Poly1305Encrypt(input as any, nonce, ad, k)
        assert.ok(Buffer.from(got.subarray()).equals(Buffer.from(want.subarray())), `${size} bytes: the default's ciphertext and tag`)
        if (size >= 1200) {
          const pieces = [...(got as unknown as Iterable<Uint8Array>)]
          assert.ok(pieces.length >= 2 && pieces[pieces.length - 1].byteLength === 16, `${size} bytes: the tag is a piece of its own (no join)`)
        }
        const opened = defaultCrypto.chaCha20Poly1305Decrypt(got as any, nonce, ad, k)
        assert.ok(Buffer.from(opened.subarray()).equals(plain), `${size} bytes: the default crypto opens it`)
      }
    }
    // everything but sealing and opening is the default's
    assert.equal(leanNoiseCrypto.generateX25519KeyPair, defaultCrypto.generateX25519KeyPair)
  })

  const nativeNoiseCrypto = chacha20Poly1305Native === undefined ? undefined : leanCrypto(defaultCrypto, chacha20Poly1305Native)
  const sealed = (plain: Uint8Array, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array): Buffer => Buffer.from(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k).subarray())

  it('Noise on the addon: a message of NOISE_NATIVE_AEAD_MIN_BYTES or more is sealed in one buffer to the very bytes of the default crypto (a smaller one by the default)', function () {
    if (nativeNoiseCrypto === undefined) this.skip()
    const k = randomBytes(32)
    const ad = randomBytes(32)
    for (const size of [0, 100, 255, 256, 700, 1199, 1200, 4096, 65519]) {
      const nonce = randomBytes(12)
      const plain = randomBytes(size)
      const want = sealed(plain, nonce, ad, k)
      for (const input of [plain, new Uint8ArrayList(plain.subarray(0, size >> 1), plain.subarray(size >> 1)), new Uint8ArrayList(...Array.from({ length: 70 }, (_, i) => plain.subarray(Math.floor(i * size / 70), Math.floor((i + 1) * size / 70))))]) {
        const got = nativeNoiseCrypto.chaCha20Poly1305Encrypt(input as any, nonce, ad, k)
        assert.ok(Buffer.from(got.subarray()).equals(want), `${size} bytes in ${input instanceof Uint8Array ? 1 : [...input].length} pieces: the default's ciphertext and tag`)
        if (size >= NOISE_NATIVE_AEAD_MIN_BYTES && (input instanceof Uint8Array || [...input].length <= 64)) assert.ok(got instanceof Uint8Array, `${size} bytes: one buffer`)
      }
      assert.ok(Buffer.from(plain).equals(plain), 'the plaintext is not changed')
    }
  })

  it('Noise on the addon: a large message is opened in place where the caller offers the ciphertext\'s bytes (a list piece by piece), in a copy otherwise; a changed byte, tag or ad is refused', function () {
    if (nativeNoiseCrypto === undefined) this.skip()
    const k = randomBytes(32)
    const ad = randomBytes(32)
    for (const size of [NOISE_NATIVE_AEAD_MIN_BYTES - 16, 700, 1200 - 16, 4096, 65519]) {
      const nonce = randomBytes(12)
      const plain = randomBytes(size)
      const wire = sealed(plain, nonce, ad, k)
      // Noise's own call: dst is the ciphertext's own bytes
      const buf = Buffer.from(wire)
      const got = nativeNoiseCrypto.chaCha20Poly1305Decrypt(buf, nonce, ad, k, buf.subarray(0, size)) as Uint8Array
      assert.ok(Buffer.from(got).equals(plain), `${size} bytes: opened`)
      assert.ok(got.buffer === buf.buffer && got.byteOffset === buf.byteOffset, `${size} bytes: in place`)
      assert.ok(buf.subarray(0, size).equals(plain), `${size} bytes: the plaintext over the ciphertext`)
      // no dst: the caller's bytes stay as they are
      const alone = Buffer.from(wire)
      assert.ok(Buffer.from(nativeNoiseCrypto.chaCha20Poly1305Decrypt(alone, nonce, ad, k).subarray()).equals(plain))
      assert.ok(alone.equals(wire), `${size} bytes without dst: the ciphertext unchanged`)
      // in pieces, the tag split across two of them
      const cuts = [0, 7, size >> 1, size + 5, size + 16]
      const parts = cuts.slice(1).map((c, i) => Buffer.from(wire.subarray(cuts[i], c)))
      const list = new Uint8ArrayList(...parts)
      const opened = nativeNoiseCrypto.chaCha20Poly1305Decrypt(list as any, nonce, ad, k)
      assert.ok(Buffer.from(opened.subarray()).equals(plain), `${size} bytes in pieces: opened`)
      // a large one in place; a small one in a copy (the handshake hashes its ciphertext after: review31f)
      if (size + 16 >= 1200) assert.ok(Buffer.concat(parts).subarray(0, size).equals(plain), `${size} bytes in pieces: in place`)
      else assert.ok(Buffer.concat(parts).equals(wire), `${size} bytes in pieces: the ciphertext unchanged`)
      // anything changed: refused (the tag is checked), in place and in pieces alike
      for (const at of [0, size >> 1, size - 1, size, size + 15]) {
        const bad = Buffer.from(wire)
        bad[at] ^= 1
        assert.throws(() => nativeNoiseCrypto.chaCha20Poly1305Decrypt(bad, nonce, ad, k, bad.subarray(0, size)), /Invalid chacha20poly1305 decryption/, `${size} bytes, byte ${at} changed`)
        assert.throws(() => nativeNoiseCrypto.chaCha20Poly1305Decrypt(new Uint8ArrayList(bad.subarray(0, 100), bad.subarray(100)) as any, nonce, ad, k), /Invalid chacha20poly1305 decryption/, `${size} bytes in pieces, byte ${at} changed`)
      }
      const otherAd = Buffer.from(ad)
      otherAd[0] ^= 1
      assert.throws(() => nativeNoiseCrypto.chaCha20Poly1305Decrypt(Buffer.from(wire), nonce, otherAd, k), /Invalid chacha20poly1305 decryption/)
      const otherNonce = Buffer.from(nonce)
      otherNonce[11] ^= 1
      assert.throws(() => nativeNoiseCrypto.chaCha20Poly1305Decrypt(Buffer.from(wire), otherNonce, ad, k), /Invalid chacha20poly1305 decryption/)
    }
    // a small one is the default's (its WebAssembly crypto)
    const nonce = randomBytes(12)
    const small = randomBytes(100)
    assert.ok(Buffer.from(nativeNoiseCrypto.chaCha20Poly1305Decrypt(sealed(small, nonce, ad, k), nonce, ad, k).subarray()).equals(small))
  })

  // the send path: Noise seals a write into one buffer, which pnet alone XORs in place
  /** A fake EncryptedMessageStream (the shape leanNoiseConnection reaches) sealing with `crypto` under key k from nonce 0. */
  const sendingStream = (crypto: typeof leanNoiseCrypto, k: Uint8Array): { encrypt: (chunk: Uint8Array | Uint8ArrayList) => Uint8Array | Uint8ArrayList } => {
    let n = 0
    const nonceOf = (i: number): Buffer => { const b = Buffer.alloc(12); b.writeUInt32LE(i, 4); return b }
    const handshake = {
      encrypt: (p: Uint8Array | Uint8ArrayList) => crypto.chaCha20Poly1305Encrypt(p as any, nonceOf(n++), new Uint8Array(0), k),
      decrypt: () => { throw new Error('not used') }
    }
    // a class of its own: leanNoiseConnection patches the prototype
    class FakeSendStream {
      handshake = handshake
      decoder: unknown = { decode: (): unknown[] => [], buffer: new Uint8ArrayList() }
      encrypt (_chunk: unknown): Uint8ArrayList { throw new Error('the original encrypt') }
      decrypt (_chunk: unknown): Uint8ArrayList { throw new Error('the original decrypt') }
    }
    const s = new FakeSendStream()
    leanNoiseConnection(s)
    return s
  }
  /** pnet's send cipher (fresh xsalsa20 views), a second one of the same key and nonce to check its key stream against, and a sending stream sealing as Noise does. */
  const pnetSendPair = (): { xor: Cipher, reference: Cipher, stream: ReturnType<typeof sendingStream> } => {
    renewXsalsa20Views()
    const X = pnetXsalsa20() as unknown as (nonce: Uint8Array, key: Uint8Array) => Cipher
    const key = randomBytes(32)
    const nonce = randomBytes(24)
    return { xor: X(nonce, key), reference: X(nonce, key), stream: sendingStream(nativeNoiseCrypto ?? leanNoiseCrypto, randomBytes(32)) }
  }
  /** The library's EncryptedMessageStream.encrypt, joined: each message of up to 65519 bytes sealed by the default crypto after its 2-byte length. */
  const libraryWire = (plain: Uint8Array, k: Uint8Array): Buffer => {
    const parts: Buffer[] = []
    for (let i = 0, n = 0; i < plain.byteLength; i += 65519, n++) {
      const nonce = Buffer.alloc(12)
      nonce.writeUInt32LE(n, 4)
      const m = Buffer.from(defaultCrypto.chaCha20Poly1305Encrypt(plain.subarray(i, Math.min(i + 65519, plain.byteLength)), nonce, new Uint8Array(0), k).subarray())
      parts.push(Buffer.from([m.byteLength >> 8, m.byteLength & 0xff]), m)
    }
    return Buffer.concat(parts)
  }

  it('Noise send: a write is sealed into one buffer with the library\'s very bytes (each message after its length), on the addon and without it; the plaintext is left as it was', () => {
    for (const crypto of [nativeNoiseCrypto, leanNoiseCrypto]) {
      if (crypto === undefined) continue
      for (const size of [0, 1, 255, 1200, 65519, 65520, 200_000, 300_001]) {
        const k = randomBytes(32)
        const plain = randomBytes(size)
        const keep = Buffer.from(plain)
        const want = libraryWire(plain, k)
        const cut = Math.floor(size / 3)
        const inputs: Array<[string, Uint8Array | Uint8ArrayList]> = [['one buffer', plain], ['a list', new Uint8ArrayList(plain.subarray(0, cut), plain.subarray(cut, cut + 7), plain.subarray(cut + 7))]]
        for (const [what, input] of inputs) {
          const got = sendingStream(crypto, k).encrypt(input)
          assert.ok(got instanceof Uint8Array, `${size} bytes, ${what}: one buffer`)
          assert.ok(Buffer.from(got).equals(want), `${size} bytes, ${what}: the library's bytes`)
          assert.ok(ownedBySend(got), `${size} bytes, ${what}: pnet may XOR it in place`)
          assert.ok(Buffer.from(plain).equals(keep), `${size} bytes, ${what}: the plaintext unchanged`)
        }
      }
      // a seal outside a write (the handshake's own) gets a buffer of its own, which pnet copies
      const other = crypto.chaCha20Poly1305Encrypt(randomBytes(4096), randomBytes(12), new Uint8Array(0), randomBytes(32))
      for (const piece of other instanceof Uint8Array ? [other] : other) assert.ok(!ownedBySend(piece), 'a seal outside a write is not pnet\'s to change')
    }
  })

  it('pnet send: only what Noise sealed for it is XORed in place; bytes anyone else may still read (the handshake\'s, a caller\'s) go in a copy and are never changed; the key stream is one fresh cipher\'s over all of it, in order', () => {
    const { xor, reference, stream } = pnetSendPair()
    const sealedA = stream.encrypt(randomBytes(100_000)) as Uint8Array
    const sealedB = stream.encrypt(randomBytes(70_000)) as Uint8Array
    // bytes someone else holds: a handshake message, a caller's buffer
    const foreign1 = randomBytes(300)
    const foreign2 = randomBytes(5000)
    const foreignKeep = [Buffer.from(foreign1), Buffer.from(foreign2)]
    const wireA = Buffer.from(sealedA)
    const wireB = Buffer.from(sealedB)
    // pnet's stream hands its queue over in sublists (views): sealedB is split across two sends
    const cutB = 12_345
    const sends = [
      new Uint8ArrayList(foreign1, sealedA, foreign2, sealedB.subarray(0, cutB)),
      new Uint8ArrayList(sealedB.subarray(cutB))
    ]
    const onWire: Buffer[] = []
    // a connection of another shape than TCP's (no socket): nothing is ever reused
    const sent: Array<Uint8Array | Uint8ArrayList> = []
    const conn = { send: (b: Uint8Array | Uint8ArrayList) => { sent.push(b); return true } }
    for (const data of sends) {
      assert.equal(pnetSend(xor, data, conn), true)
      const out = sent[sent.length - 1]
      const pieces = out instanceof Uint8Array ? [out] : [...out]
      for (const piece of pieces) assert.ok(piece.buffer !== foreign1.buffer && piece.buffer !== foreign2.buffer, 'no caller\'s buffer goes out (a copy of it does)')
      onWire.push(...pieces.map(p => Buffer.from(p)))
    }
    assert.ok(foreign1.equals(foreignKeep[0]) && foreign2.equals(foreignKeep[1]), 'bytes pnet does not own are never changed')
    const want = Buffer.from(reference.update(Buffer.concat([foreignKeep[0], wireA, foreignKeep[1], wireB])))
    assert.ok(Buffer.concat(onWire).equals(want), 'the key stream of one cipher over all of it, in order (each byte XORed once)')
    assert.ok(Buffer.from(sealedA).equals(want.subarray(300, 300 + wireA.byteLength)), 'sealedA holds what went on the wire')
    assert.ok(Buffer.from(sealedB).equals(want.subarray(300 + wireA.byteLength + 5000)), 'sealedB, sent in two pieces, each XORed once')
    for (const c of [xor, reference]) c.finalize()
  })

  it('pnet send: a sealed buffer is sealed into again only once the socket has written every byte of it; one still queued (by the connection, in the socket, or sent in part) is never reused and its bytes stay as they went out', () => {
    const { xor, reference, stream } = pnetSendPair()
    // a TCP connection's shape; after each send, what it and its socket still hold is set by the case
    let after = { queued: 0, unwritten: 0 }
    const out: Array<{ view: Uint8Array, copy: Buffer }> = []
    const conn = {
      writeBuffer: { byteLength: 0 },
      socket: Object.assign(new EventEmitter(), { writableLength: 0 }),
      send (b: Uint8Array | Uint8ArrayList): boolean {
        // the kernel takes a copy of what is written: a later change of the buffer is no change on the wire
        for (const p of b instanceof Uint8Array ? [b] : [...b]) out.push({ view: p, copy: Buffer.from(p) })
        conn.writeBuffer.byteLength = after.queued
        conn.socket.writableLength = after.unwritten
        return true
      }
    }
    const plain = SEAL_POOL_MIN_BYTES * 2
    const seal = (): Uint8Array => stream.encrypt(randomBytes(plain)) as Uint8Array
    // the bytes pnet was given, in order (Noise's, before the XOR)
    const given: Buffer[] = []
    const send = (...pieces: Uint8Array[]): void => {
      for (const p of pieces) given.push(Buffer.from(p))
      pnetSend(xor, new Uint8ArrayList(...pieces), conn)
    }

    // written whole: the next seal of its size reuses it
    after = { queued: 0, unwritten: 0 }
    const a = seal()
    const returned = sealPool.returned
    send(a)
    assert.equal(sealPool.returned, returned + 1, 'written whole: back to the pool')
    const b = seal()
    assert.equal(b.buffer, a.buffer, 'sealed into again')

    // the socket still holds bytes of it, or the connection queued some: not reused while it does,
    // however many sends follow; reused once a later send finds everything written
    for (const [what, state] of [['unwritten in the socket', { queued: 0, unwritten: 1 }], ['queued by the connection', { queued: 1, unwritten: 0 }]] as const) {
      after = state
      const c = seal()
      send(c)
      const sentC = out[out.length - 1]
      assert.equal(sentC.view.buffer, c.buffer)
      for (let i = 0; i < 4; i++) {
        const next = seal()
        assert.notEqual(next.buffer, c.buffer, `${what}: not sealed into again while held`)
        send(next)
      }
      assert.ok(Buffer.from(sentC.view).equals(sentC.copy), `${what}: a buffer still held is never written again`)
      // everything written: the next send finds it so and gives c (and the others held with it) back
      after = { queued: 0, unwritten: 0 }
      send(seal())
      send(seal())
      const again: Uint8Array[] = []
      for (let i = 0; i < 8; i++) again.push(seal())
      assert.ok(again.some(x => x.buffer === c.buffer), `${what}: reused once written`)
      send(...again)
    }

    // sent in two parts: not reused after the first, even with the socket empty
    after = { queued: 0, unwritten: 0 }
    const d = seal()
    send(d.subarray(0, 1000))
    const e = seal()
    assert.notEqual(e.buffer, d.buffer, 'half sent: not sealed into again')
    send(d.subarray(1000))
    const f = seal()
    assert.equal(f.buffer, d.buffer, 'once all of it is written: reused')
    send(e, f)

    // every byte that went out was XORed once, in order, and nothing held changed after it went out
    assert.ok(Buffer.concat(out.map(o => o.copy)).equals(Buffer.from(reference.update(Buffer.concat(given)))), 'the wire: one key stream over what pnet was given, in order')
    for (const c of [xor, reference]) c.finalize()
  })

  it('seal pool size classes: a write of a yamux frame (64 or 256 KiB and its header) takes a buffer only a few KiB larger than it seals to, not the next power of two; every pooled size fits its class', () => {
    const stream = sendingStream(nativeNoiseCrypto ?? leanNoiseCrypto, randomBytes(32))
    for (const [frame, under] of [[256 * 1024, 264 * 1024], [64 * 1024, 72 * 1024], [1024 * 1024, 1032 * 1024]]) {
      const sealed = stream.encrypt(randomBytes(frame + 12)) as Uint8Array
      assert.ok(sealed.buffer.byteLength >= sealed.byteLength && sealed.buffer.byteLength < under, `a ${frame} byte frame seals into a buffer of ${sealed.buffer.byteLength} bytes (under ${under})`)
    }
    for (const bytes of [SEAL_POOL_MIN_BYTES, SEAL_POOL_MIN_BYTES + 1, 65_572, 262_246, 266_240, 266_241, 1_000_000, SEAL_POOL_MAX_BYTES, SEAL_POOL_MAX_BYTES + 1170]) {
      const size = sizeClass(bytes)
      assert.ok(size !== undefined && size >= bytes && size < 2 * bytes, `${bytes} bytes: class ${size}`)
      assert.equal(sizeClass(size), size, `${bytes} bytes: its class is its own class`)
    }
    assert.equal(sizeClass(SEAL_POOL_MIN_BYTES - 1), undefined, 'a small write is not pooled')
    assert.equal(sizeClass(8 * SEAL_POOL_MAX_BYTES), undefined, 'a very large one neither')
  })

  it('pnet send: buffers held on connections until written count with the free ones against SEAL_POOL_FREE_BYTES, however many connections; a socket\'s \'drain\' gives them back once written, its \'close\' drops them', () => {
    renewXsalsa20Views()
    const X = pnetXsalsa20() as unknown as (nonce: Uint8Array, key: Uint8Array) => Cipher
    const stream = sendingStream(nativeNoiseCrypto ?? leanNoiseCrypto, randomBytes(32))
    const plain = 256 * 1024
    // connections of a TCP connection's shape whose sockets never finish writing (until told)
    const conns = Array.from({ length: 24 }, () => {
      const xor = X(randomBytes(24), randomBytes(32))
      const conn = {
        writeBuffer: { byteLength: 0 },
        socket: Object.assign(new EventEmitter(), { writableLength: 0, destroyed: false }),
        send (_b: Uint8Array | Uint8ArrayList): boolean { conn.socket.writableLength += 1; return true }
      }
      return { conn, xor }
    })
    const start = sealPool.bytes
    const classBytes = sizeClass(plain + 12 + 5 * 18) as number
    let most = 0
    // 24 connections x 8 buffers of 260 KiB: 48 MiB, were all of them held
    for (let round = 0; round < 8; round++) {
      for (const { conn, xor } of conns) {
        pnetSend(xor, new Uint8ArrayList(stream.encrypt(randomBytes(plain + 12)) as Uint8Array), conn)
        const { free, held } = sealPool.bytes
        assert.ok(free + held <= SEAL_POOL_FREE_BYTES, `free ${free} + held ${held} bytes within the bound`)
        most = Math.max(most, held)
      }
    }
    assert.ok(most > start.held && most > SEAL_POOL_FREE_BYTES - start.free - 2 * classBytes, `held up to the bound (${most} bytes)`)
    // a 'drain' while the socket still holds bytes gives nothing back; once written, it does
    const [first, second] = conns
    const returned = sealPool.returned
    const heldBefore = sealPool.bytes.held
    first.conn.socket.emit('drain')
    assert.equal(sealPool.returned, returned, 'not written yet: nothing given back')
    first.conn.socket.writableLength = 0
    first.conn.socket.emit('drain')
    assert.ok(sealPool.returned > returned, 'written: given back on its drain')
    assert.ok(sealPool.bytes.held < heldBefore, 'and no longer counted as held')
    // a socket that closes with buffers unwritten: they are dropped (uncounted), never reused
    const heldBeforeClose = sealPool.bytes.held
    let closedHeld = 0
    for (const { conn } of conns.slice(1)) {
      const before = sealPool.bytes.held
      conn.socket.destroyed = true
      conn.socket.emit('close')
      closedHeld += before - sealPool.bytes.held
    }
    assert.equal(sealPool.bytes.held, heldBeforeClose - closedHeld)
    assert.ok(closedHeld > 0, 'closed sockets\' buffers uncounted')
    const returnedAfterClose = sealPool.returned
    second.conn.socket.writableLength = 0
    second.conn.socket.emit('drain')
    assert.equal(sealPool.returned, returnedAfterClose, 'a closed connection gives nothing back')
    assert.equal(sealPool.bytes.held, start.held, 'nothing held any more')
    for (const { xor } of conns) xor.finalize()
  })
})
