// The rpc timeout on silence of bytes (bugs38) keeps a bound on the whole message (review38b):
// a peer that trickles one byte just under each timeout is given up after
// LOOP_TIME_MAX_FACTOR timeouts plus its bytes at RPC_MIN_BYTES_PER_SECOND, whether it is the
// answerer (a call with no signal of its own) or the caller (a request read by serve()); and an
// answer whose bytes all went to a full muxer that never drains times out (an empty write buffer
// is not progress out).
import assert from 'node:assert/strict'
import { AbstractStream, lpStream } from '@libp2p/utils'
import { defaultLogger } from '@libp2p/logger'
import { Uint8ArrayList } from 'uint8arraylist'
import type { Stream } from '@libp2p/interface'
import type { Host } from '../../node/net/host.ts'
import { RPC_ERROR_REPLY_TIMEOUT_MS, RpcTimeoutError, call, decodeIncoming, defineProtocol, encodeCall, encodeOk, serve } from '../../node/net/rpc.ts'
import { LOOP_TIME_MAX_FACTOR } from '../../swarm/index.ts'
import { Teardown } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'
import { textDef } from '../helpers/text-rpc.ts'
import { tcpPair } from '../helpers/tcp-pair.ts'

const TIMEOUT_MS = 400
/** How often the trickler sends its one byte: well inside the silence timeout. */
const TRICKLE_EVERY_MS = TIMEOUT_MS * 0.6

const def = textDef(TIMEOUT_MS)
const TRICKLE = defineProtocol<{ text: string }, { text: string }, never, never>({ id: '/darkfs/test-rpc-bound-trickle/1.0.0', ...def })
const SLOW_ASK = defineProtocol<{ text: string }, { text: string }, never, never>({ id: '/darkfs/test-rpc-bound-slow-ask/1.0.0', ...def })
const STUCK = defineProtocol<{ text: string }, { text: string }, never, never>({ id: '/darkfs/test-rpc-bound-stuck/1.0.0', ...def })

/** A whole call or request is given up by then at the latest (the cap, its 1,000 bytes' time, slack). */
const BOUND_MS = LOOP_TIME_MAX_FACTOR * TIMEOUT_MS + 1000

describe('rpc: progress of bytes keeps a bound on the whole message (review38b)', function () {
  this.timeout(30_000)
  const t = new Teardown()
  let a: Host
  let b: Host
  before(async () => {
    ({ a, b } = await tcpPair(t))
    await a.dial(b.addresses()[0])
    await until('a and b connected', () => a.peers().some(p => p.id === b.peerId))
  })
  after(async () => { await t.run() })

  it('call() with no signal: an answerer trickling one byte per 0.6 timeout of a 1,000-byte reply is given up in bounded time', async () => {
    const streams: Stream[] = []
    let sent = 0
    await b.handle(TRICKLE.id, (stream) => {
      streams.push(stream)
      void (async () => {
        const lp = lpStream(stream)
        decodeIncoming(TRICKLE, (await lp.read()).subarray())
        const whole = encodeOk(TRICKLE, { text: 'y'.repeat(1000) })
        stream.send(new Uint8Array(varint(whole.byteLength)))
        for (let i = 0; i < whole.byteLength && stream.status === 'open'; i++) {
          await new Promise(resolve => setTimeout(resolve, TRICKLE_EVERY_MS))
          if (stream.status !== 'open') break
          stream.send(whole.subarray(i, i + 1))
          sent++
        }
      })().catch(() => {})
    })
    t.add(async () => {
      for (const s of streams) s.abort(new Error('test done'))
      await b.unhandle(TRICKLE.id)
    })
    const started = performance.now()
    let settled: unknown
    let at = 0
    const p = call(a, b.peerId, TRICKLE, { text: 'x' }).then(() => 'ok', (err: unknown) => err).then(v => { settled = v; at = performance.now() })
    await until('the call settled', () => settled !== undefined, 3 * BOUND_MS)
    await p
    assert.ok(settled instanceof RpcTimeoutError, `settled with ${String(settled)}`)
    assert.ok(sent > 2, `the answerer trickled ${sent} bytes (its bytes did reset the silence)`)
    // given up by the whole-message cap (the trickle kept resetting the silence), not a silence: the
    // kind of timeout, not the time taken, which a loaded machine stretches
    assert.match((settled as Error).message, /slower than/, `given up after ${Math.round(at - started)} ms`)
  })

  it('serve(): a caller trickling one byte per 0.6 timeout of a 1,000-byte request is refused in bounded time', async () => {
    const errors: Error[] = []
    t.add(await serve(b, SLOW_ASK, { call: async (r) => r }, { onError: (e) => { errors.push(e) } }))
    const stream = await a.newStream(b.peerId, SLOW_ASK.id)
    t.add(async () => { stream.abort(new Error('test done')) })
    const whole = encodeCall(SLOW_ASK, { text: 'q'.repeat(1000) })
    stream.send(new Uint8Array(varint(whole.byteLength)))
    const started = performance.now()
    let sent = 0
    for (let i = 0; i < whole.byteLength && errors.length === 0 && stream.status === 'open' && performance.now() - started < 3 * BOUND_MS; i++) {
      await new Promise(resolve => setTimeout(resolve, TRICKLE_EVERY_MS))
      if (stream.status !== 'open' || stream.writeStatus !== 'writable') break
      stream.send(whole.subarray(i, i + 1))
      sent++
    }
    const at = performance.now()
    assert.equal(errors.length, 1, `errors: ${errors.map(e => e.message).join('; ') || 'none'} (${sent} bytes sent)`)
    assert.ok(errors[0] instanceof RpcTimeoutError, String(errors[0]))
    assert.ok(sent > 2, `the caller trickled ${sent} bytes`)
    assert.match(errors[0].message, /slower than/, `refused after ${Math.round(at - started)} ms`)
  })

  it('serve(): a reply the muxer takes 1 KiB per drain, a drain every half timeout, goes out whole and the stream closes (~15 timeouts)', async () => {
    // write() returns at the first drain; close() waits for the rest: its cap counts the bytes left
    const PACED = defineProtocol<{ text: string }, { text: string }, never, never>({ ...def, id: '/darkfs/test-rpc-bound-paced/1.0.0', timeoutMs: 200 })
    const CHUNK = 1024
    let taken = 0
    class Paced extends AbstractStream {
      sendData (data: Uint8ArrayList): { sentBytes: number, canSendMore: boolean } {
        const n = Math.min(CHUNK, data.byteLength)
        taken += n
        return { sentBytes: n, canSendMore: false }
      }

      sendReset (): void {}
      sendPause (): void {}
      sendResume (): void {}
      async sendCloseWrite (): Promise<void> {}
      async sendCloseRead (): Promise<void> {}
    }
    const stream = new Paced({ id: 'paced', protocol: PACED.id, direction: 'inbound', log: defaultLogger().forComponent('test:paced') } as any)
    const drains = setInterval(() => { if (stream.writableNeedsDrain) stream.onMuxerDrain() }, PACED.timeoutMs / 2)
    t.add(async () => { clearInterval(drains); stream.abort(new Error('test done')) })
    let handler: ((s: Stream, peer: string) => void) | undefined
    const errors: Error[] = []
    const reply = encodeOk(PACED, { text: 'p'.repeat(30 << 10) })
    t.add(await serve({ handle: async (_id, h) => { handler = h }, unhandle: async () => {} }, PACED, { call: async () => ({ text: 'p'.repeat(30 << 10) }) }, { onError: (e) => { errors.push(e) } }))
    handler!(stream as unknown as Stream, 'peer-y')
    const req = encodeCall(PACED, { text: 'q' })
    const started = performance.now()
    stream.onData(new Uint8ArrayList(new Uint8Array(varint(req.byteLength)), req))
    await until('the reply went out and the stream closed for writing, or failed', () => stream.writeStatus === 'closed' || errors.length > 0, 60 * PACED.timeoutMs)
    assert.deepEqual(errors.map(e => e.message), [])
    assert.equal(taken, varint(reply.byteLength).length + reply.byteLength)
    // (it did take longer than the cap of a message without bytes)
    assert.ok(performance.now() - started > LOOP_TIME_MAX_FACTOR * PACED.timeoutMs * 2, `took ${Math.round(performance.now() - started)} ms`)
  })

  it('serve(): a reply write whose bytes all went to a full muxer that never drains times out', async () => {
    // yamux's stream when the connection's send returned false: every byte taken (write buffer
    // empty), canSendMore false, a 'drain' that never comes
    class Stuck extends AbstractStream {
      sendData (data: Uint8ArrayList): { sentBytes: number, canSendMore: boolean } { return { sentBytes: data.byteLength, canSendMore: false } }
      sendReset (): void {}
      sendPause (): void {}
      sendResume (): void {}
      async sendCloseWrite (): Promise<void> {}
      async sendCloseRead (): Promise<void> {}
    }
    const stream = new Stuck({ id: 'stuck', protocol: STUCK.id, direction: 'inbound', log: defaultLogger().forComponent('test:stuck') } as any)
    t.add(async () => { stream.abort(new Error('test done')) })
    let handler: ((s: Stream, peer: string) => void) | undefined
    const errors: Error[] = []
    const stop = await serve({ handle: async (_id, h) => { handler = h }, unhandle: async () => {} }, STUCK, { call: async () => ({ text: 'z'.repeat(100) }) }, { onError: (e) => { errors.push(e) } })
    t.add(stop)
    handler!(stream as unknown as Stream, 'peer-x')
    const req = encodeCall(STUCK, { text: 'q' })
    stream.onData(new Uint8ArrayList(new Uint8Array(varint(req.byteLength)), req))
    await until('the reply went to the muxer', () => stream.writableNeedsDrain && stream.writeBufferLength === 0, 5000)
    await until('the reply write failed', () => errors.length > 0, BOUND_MS)
    assert.ok(errors[0] instanceof RpcTimeoutError, String(errors[0]))
    // (its error reply is stuck the same way: the stream is aborted once that one's time is out)
    await until('the stream is given up', () => stream.status !== 'open', RPC_ERROR_REPLY_TIMEOUT_MS + BOUND_MS)
  })
})

/** An unsigned varint (the length prefix of a frame). */
function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7 }
  out.push(n)
  return out
}
