// An rpc call's timeout is on silence of bytes, not of whole messages (node/net/rpc.ts; bugs38):
// a caller gave up when no whole reply came for the protocol's timeout, so one big answer (a
// 512 KiB fetch answer, one large op) that took longer than that on a slow link failed while its
// bytes were flowing, and the answering side bounded each whole write the same way. Two real
// hosts over loopback TCP through harness/throttle.ts (a paced proxy): a reply paced over ~3
// timeouts with steady progress comes whole; a reply that stops half-way is given up about a
// timeout after its last byte, well before the caller's own abort.
import assert from 'node:assert/strict'
import { lpStream } from '@libp2p/utils'
import type { Host } from '../../node/net/host.ts'
import { KeptCaller, RpcTimeoutError, call, decodeIncoming, defineProtocol, encodeOk, notify, serve } from '../../node/net/rpc.ts'
import { Teardown } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { throttle } from '../../harness/throttle.ts'
import { TextProtocolError, text, textDef } from '../helpers/text-rpc.ts'
import { tcpPair } from '../helpers/tcp-pair.ts'

const TIMEOUT_MS = 2500
/**
 * The reply's size and the link's rate: ~2.5 timeouts of steady progress for the reply alone.
 * (The caller's stream hears the bytes in bursts of up to a yamux window's half, 128 KiB, about
 * a second apart here: the timeout is above that.)
 */
const REPLY_BYTES = 768 << 10
const LINK_BITS_PER_SECOND = 1_000_000

const def = textDef(TIMEOUT_MS)
const BIG = defineProtocol<{ text: string }, { text: string }, never, never>({ id: '/darkfs/test-rpc-slow-link/1.0.0', ...def })
const BIG_KEPT = defineProtocol<{ text: string }, { text: string }, never, never>({ id: '/darkfs/test-rpc-slow-link-kept/1.0.0', kept: true, ...def })
const BIG_ASK = defineProtocol<{ text: string }, { text: string }, never, never>({ id: '/darkfs/test-rpc-slow-link-ask/1.0.0', ...def })
const BIG_NOTE = defineProtocol<never, never, { text: string }, never>({ id: '/darkfs/test-rpc-slow-link-note/1.0.0', maxMessageBytes: 1 << 20, timeoutMs: TIMEOUT_MS, malformed: TextProtocolError, notice: text })
const STALL = defineProtocol<{ text: string }, { text: string }, never, never>({ id: '/darkfs/test-rpc-slow-link-stall/1.0.0', ...def })

describe('rpc over a slow link: the timeout is on silence of bytes (bugs38)', function () {
  this.timeout(60_000)
  const t = new Teardown()
  let a: Host
  let b: Host
  let link: Awaited<ReturnType<typeof throttle>>
  const noted: number[] = []

  before(async () => {
    ({ a, b } = await tcpPair(t))
    const port = Number(/\/tcp\/(\d+)/.exec(b.addresses()[0])?.[1])
    link = await throttle(port, LINK_BITS_PER_SECOND)
    t.add(async () => { await link.close() })
    await a.dial(`/ip4/127.0.0.1/tcp/${link.port}/p2p/${b.peerId}`)
    await until('a and b connected', () => a.peers().some(p => p.id === b.peerId))
    const big = { call: async () => ({ text: 'x'.repeat(REPLY_BYTES) }) }
    t.add(await serve(b, BIG, big))
    t.add(await serve(b, BIG_KEPT, big))
    t.add(await serve(b, BIG_ASK, { call: async (r) => ({ text: String(r.text.length) }) }))
    t.add(await serve(b, BIG_NOTE, { notice: (n) => { noted.push(n.text.length) } }))
  })
  after(async () => { await t.run() })

  for (const how of ['call()', 'KeptCaller.call()']) {
    it(`${how}: a ${REPLY_BYTES >> 10} KiB reply paced over ~2.5 timeouts, its bytes flowing, comes whole`, async () => {
      const down = link.carried().down
      const started = performance.now()
      const kept = new KeptCaller(a, BIG_KEPT)
      try {
        const reply = how === 'call()' ? await call(a, b.peerId, BIG, { text: 'big' }) : await kept.call(b.peerId, { text: 'big' })
        assert.equal(reply.text.length, REPLY_BYTES)
      } finally {
        kept.close()
      }
      const took = performance.now() - started
      // (it really was slower than one timeout, and came over the link)
      assert.ok(took > 2 * TIMEOUT_MS, `took ${Math.round(took)} ms`)
      assert.ok(link.carried().down - down >= REPLY_BYTES)
    })
  }

  // review38b: requests and notices were still bounded by one timeout for the whole message
  for (const how of ['call()', 'notify()']) {
    it(`${how}: a ${REPLY_BYTES >> 10} KiB ${how === 'call()' ? 'request' : 'notice'} paced over ~2.5 timeouts, its bytes flowing, arrives whole`, async () => {
      const up = link.carried().up
      const started = performance.now()
      const big = 'x'.repeat(REPLY_BYTES)
      if (how === 'call()') {
        assert.equal((await call(a, b.peerId, BIG_ASK, { text: big })).text, String(REPLY_BYTES))
      } else {
        const before = noted.length
        await notify(a, b.peerId, BIG_NOTE, { text: big })
        await until('the notice was handled', () => noted.length > before, 4 * TIMEOUT_MS)
        assert.equal(noted.at(-1), REPLY_BYTES)
      }
      const took = performance.now() - started
      assert.ok(took > 2 * TIMEOUT_MS, `took ${Math.round(took)} ms`)
      assert.ok(link.carried().up - up >= REPLY_BYTES)
    })
  }

  it('a reply that stops half-way fails with RpcTimeoutError about a timeout after its last byte, before the caller\'s own abort', async () => {
    // the answerer sends the length of a whole reply, then half of its bytes, then nothing
    let sentAt = 0
    await b.handle(STALL.id, (stream) => {
      void (async () => {
        const lp = lpStream(stream)
        decodeIncoming(STALL, (await lp.read()).subarray())
        const whole = encodeOk(STALL, { text: 'y'.repeat(64 << 10) })
        // a length prefix and half the frame, then silence
        stream.send(new Uint8Array([...varint(whole.byteLength), ...whole.subarray(0, whole.byteLength >> 1)]))
        await until('the half reply left the answerer', () => stream.writeBufferLength === 0)
        sentAt = performance.now()
      })().catch(() => {})
    })
    t.add(async () => { await b.unhandle(STALL.id) })
    const started = performance.now()
    await assert.rejects(call(a, b.peerId, STALL, { text: 'stall' }, { signal: AbortSignal.timeout(20_000) }), RpcTimeoutError)
    const at = performance.now()
    assert.ok(sentAt > 0, 'the half reply was sent')
    assert.ok(at - started < 10_000, `given up after ${Math.round(at - started)} ms`)
    assert.ok(at - sentAt >= TIMEOUT_MS - 100, `given up ${Math.round(at - sentAt)} ms after the last byte left`)
  })
})

/** An unsigned varint (the length prefix of a frame). */
function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7 }
  out.push(n)
  return out
}
