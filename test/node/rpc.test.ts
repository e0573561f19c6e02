// node/net/rpc.ts, the wire layer of node's own protocols, between two real in-process hosts
// (memory transport, pnet, noise, yamux): calls with progress, notices, broadcast, the size
// bound in both directions, the timeout on silence, the caller's abort, typed remote errors,
// and malformed frames that close their stream while the host keeps serving.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { lpStream } from '@libp2p/utils'
import * as dagCbor from '@ipld/dag-cbor'
import type { Host, Stream } from '../../node/net/host.ts'
import { memoryPair } from '../helpers/memory-pair.ts'
import {
  KeptCaller, RPC_MAX_NEXT, RPC_MIN_MESSAGE_BYTES, RpcClosedError, RpcProtocolError, RpcRemoteError, RpcTimeoutError, RpcTooLargeError, RpcTooManyRepliesError,
  broadcast, call, decodeIncoming, decodeReply, defineProtocol, encodeCall, encodeError, encodeNotice, notify, serve
} from '../../node/net/rpc.ts'
import type { CallContext } from '../../node/net/rpc.ts'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { PLACE, placeProgressMax } from '../../node/keeper/forward.ts'
import type { PlaceRequest } from '../../node/keeper/forward.ts'

class EchoProtocolError extends RpcProtocolError {
  override readonly name = 'EchoProtocolError'
}

/** An error the echo protocol rebuilds on the caller's side. */
class TooLoudError extends Error {
  override readonly name = 'TooLoudError'
}

interface Say { text: string, steps?: number }

const text = (v: unknown): string => {
  const t = (v as { text?: unknown } | null)?.text
  if (typeof t !== 'string') throw new EchoProtocolError('expected { text }')
  return t
}

const ECHO_TIMEOUT_MS = 400

const ECHO = defineProtocol<Say, { text: string }, { text: string }, { step: number }>({
  id: '/darkfs/test-rpc-echo/1.0.0',
  maxMessageBytes: 4096,
  timeoutMs: ECHO_TIMEOUT_MS,
  malformed: EchoProtocolError,
  errors: [TooLoudError],
  request: (v) => {
    const steps = (v as { steps?: unknown }).steps
    if (steps !== undefined && !(Number.isSafeInteger(steps) && (steps as number) >= 0 && (steps as number) <= 10)) throw new EchoProtocolError('steps: 0..10')
    return steps === undefined ? { text: text(v) } : { text: text(v), steps: steps as number }
  },
  reply: (v) => ({ text: text(v) }),
  next: (v) => {
    const step = (v as { step?: unknown } | null)?.step
    if (!Number.isSafeInteger(step)) throw new EchoProtocolError('expected { step }')
    return { step: step as number }
  },
  notice: (v) => ({ text: text(v) })
})

async function until (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 400) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('node/net/rpc', function () {
  const teardown: Array<() => Promise<void>> = []
  let a: Host
  let b: Host
  /** What b's handlers saw. */
  let notices: Array<{ text: string, peer: string }>
  let errors: Error[]
  let lastSignal: AbortSignal | undefined
  let stopServing: () => Promise<void>

  const handlers = {
    call: async (req: Say, ctx: CallContext<{ step: number }>): Promise<{ text: string }> => {
      lastSignal = ctx.signal
      if (req.text === 'shout') throw new TooLoudError('not so loud')
      if (req.text === 'fail') throw new Error('plain failure')
      if (req.text === 'huge') return { text: 'x'.repeat(10_000) }
      if (req.text === 'hang') {
        await new Promise<void>(resolve => { ctx.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
        throw ctx.signal.reason
      }
      for (let i = 0; i < (req.steps ?? 0); i++) await ctx.next({ step: i })
      return { text: `echo ${req.text}` }
    },
    notice: (n: { text: string }, ctx: { peer: string }) => { notices.push({ text: n.text, peer: ctx.peer }) }
  }

  before(async function () {
    const pair = await memoryPair('rpc')
    teardown.push(pair.stop)
    ;({ a, b } = pair)
  })
  after(async function () {
    while (teardown.length > 0) await teardown.pop()!().catch(() => {})
  })
  beforeEach(async function () {
    notices = []
    errors = []
    lastSignal = undefined
    stopServing = await serve(b, ECHO, handlers, { onError: (err) => { errors.push(err) } })
  })
  afterEach(async function () {
    await stopServing()
  })

  it('defineProtocol() refuses a bound below RPC_MIN_MESSAGE_BYTES, a bad timeout, or calls without a reply validator', () => {
    assert.throws(() => defineProtocol({ id: '/x', maxMessageBytes: RPC_MIN_MESSAGE_BYTES - 1, timeoutMs: 1, notice: v => v }), RangeError)
    assert.throws(() => defineProtocol({ id: '/x', maxMessageBytes: 4096, timeoutMs: 0, notice: v => v }), RangeError)
    assert.throws(() => defineProtocol({ id: '/x', maxMessageBytes: 4096, timeoutMs: 1, request: v => v }), RangeError)
  })

  it('call(host, peer, p, request) returns the reply; intermediate replies reach onNext in order', async () => {
    assert.deepEqual(await call(a, b.peerId, ECHO, { text: 'hi' }), { text: 'echo hi' })
    const steps: number[] = []
    assert.deepEqual(await call(a, b.peerId, ECHO, { text: 'go', steps: 5 }, { onNext: s => { steps.push(s.step) } }), { text: 'echo go' })
    assert.deepEqual(steps, [0, 1, 2, 3, 4])
  })

  it('notify(host, peer, p, notice) hands the notice to the handler with the sender; broadcast() tells every peer', async () => {
    await notify(a, b.peerId, ECHO, { text: 'one' })
    await until(() => notices.length === 1, 'the notice arrived')
    assert.deepEqual(notices, [{ text: 'one', peer: a.peerId }])
    assert.deepEqual(await broadcast(a, ECHO, { text: 'all' }), [b.peerId])
    await until(() => notices.length === 2, 'the broadcast arrived')
    assert.equal(notices[1].text, 'all')
  })

  it('a request over the bound is refused before it is sent: RpcTooLargeError', async () => {
    await assert.rejects(call(a, b.peerId, ECHO, { text: 'x'.repeat(5000) }), RpcTooLargeError)
    await assert.rejects(notify(a, b.peerId, ECHO, { text: 'x'.repeat(5000) }), RpcTooLargeError)
  })

  it('a reply over the bound: the answering side refuses to send it and says why (RpcRemoteError naming RpcTooLargeError)', async () => {
    await assert.rejects(call(a, b.peerId, ECHO, { text: 'huge' }), (err: any) => err instanceof RpcRemoteError && err.remoteName === 'RpcTooLargeError')
  })

  it('a frame whose length header is over the bound gets an RpcTooLargeError reply and a closed stream; the host keeps serving', async () => {
    const stream = await a.newStream(b.peerId, ECHO.id)
    const lp = lpStream(stream)
    // a header announcing 1 MiB, then a little of it
    stream.send(Uint8Array.of(0x80, 0x80, 0x40, 1, 2, 3))
    const reply = decodeReply(ECHO, (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray(), { text: '' })
    assert.equal(reply.kind, 'error')
    assert.equal(reply.kind === 'error' && reply.name, 'RpcTooLargeError')
    await assert.rejects(lp.read({ signal: AbortSignal.timeout(5000) }))
    await until(() => stream.status !== 'open', 'the stream is closed')
    assert.ok(errors.some(e => e instanceof RpcTooLargeError))
    assert.deepEqual(await call(a, b.peerId, ECHO, { text: 'still' }), { text: 'echo still' })
  })

  for (const [what, body] of [
    ['garbage', randomBytes(40)],
    ['a value that is not an envelope', dagCbor.encode({ text: 'no envelope' })],
    ['an envelope with two keys', dagCbor.encode({ call: { text: 'a' }, notice: { text: 'b' } })],
    ['a call the validator refuses', encodeCall(ECHO, { text: 7 } as any)],
    ['a reply sent as a request', dagCbor.encode({ ok: { text: 'a' } })]
  ] as const) {
    it(`a malformed frame (${what}) gets the protocol's typed error and a reset stream; the host keeps serving`, async () => {
      const stream = await a.newStream(b.peerId, ECHO.id)
      const lp = lpStream(stream)
      await lp.write(body)
      const reply = decodeReply(ECHO, (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray(), { text: '' })
      assert.deepEqual(reply.kind === 'error' && reply.name, 'EchoProtocolError')
      await until(() => stream.status !== 'open', 'the stream is closed')
      assert.ok(errors.some(e => e instanceof EchoProtocolError))
      assert.deepEqual(await call(a, b.peerId, ECHO, { text: 'still' }), { text: 'echo still' })
    })
  }

  it('a malformed reply rejects the call with the protocol\'s RpcProtocolError', async () => {
    const proto = '/darkfs/test-rpc-rogue/1.0.0'
    const ROGUE = defineProtocol({ ...ECHO, id: proto, notice: undefined })
    await b.handle(proto, (stream) => {
      void (async () => {
        const lp = lpStream(stream)
        await lp.read()
        await lp.write(dagCbor.encode({ ok: { text: 42 } }))
      })()
    })
    try {
      await assert.rejects(call(a, b.peerId, ROGUE, { text: 'x' }), EchoProtocolError)
    } finally {
      await b.unhandle(proto)
    }
  })

  it('a finished call whose stream the answerer never closes (or whose close times out) has it aborted after the call\'s timeout: not left half-open until the connection ends', async () => {
    const proto = '/darkfs/test-rpc-no-close/1.0.0'
    const P = defineProtocol({ ...ECHO, id: proto, notice: undefined })
    let held: Stream | undefined
    await b.handle(proto, (stream) => {
      held = stream
      void (async () => {
        const lp = lpStream(stream)
        await lp.read()
        // the reply, then nothing: its side stays open, and it reads no more
        await lp.write(dagCbor.encode({ ok: { text: 'done' } }))
      })().catch(() => {})
    })
    try {
      assert.deepEqual(await call(a, b.peerId, P, { text: 'x' }), { text: 'done' })
      // the caller closed its side; b's still open after the call's timeout, the stream is aborted (a reset reaches b)
      await until(() => held?.status === 'reset' || held?.status === 'aborted' || held?.status === 'closed', `the answerer's stream ended (status ${String(held?.status)})`)
    } finally {
      held?.abort(new Error('test over'))
      await b.unhandle(proto)
    }
  })

  it('a handler\'s error reaches the caller by name: a listed class is rebuilt, any other is RpcRemoteError', async () => {
    await assert.rejects(call(a, b.peerId, ECHO, { text: 'shout' }), (err: any) => err instanceof TooLoudError && /not so loud/.test(err.message))
    await assert.rejects(call(a, b.peerId, ECHO, { text: 'fail' }), (err: any) => err instanceof RpcRemoteError && err.remoteName === 'Error' && err.peer === b.peerId && /plain failure/.test(err.message))
    assert.deepEqual(await call(a, b.peerId, ECHO, { text: 'after' }), { text: 'echo after' })
  })

  it('silence for the protocol\'s timeout rejects with RpcTimeoutError; the handler\'s signal then aborts', async () => {
    const started = Date.now()
    await assert.rejects(call(a, b.peerId, ECHO, { text: 'hang' }), RpcTimeoutError)
    assert.ok(Date.now() - started >= ECHO_TIMEOUT_MS - 50)
    await until(() => lastSignal?.aborted === true, 'the handler sees the caller go')
    assert.ok(lastSignal?.reason instanceof RpcClosedError)
  })

  it('progress resets the timeout: a call whose replies keep coming outlives timeoutMs', async () => {
    const SLOW = '/darkfs/test-rpc-slow/1.0.0'
    const P = defineProtocol({ ...ECHO, id: SLOW, notice: undefined })
    const stop = await serve(b, P, {
      call: async (req, ctx) => {
        for (let i = 0; i < 4; i++) {
          await new Promise(resolve => setTimeout(resolve, ECHO_TIMEOUT_MS / 2))
          await ctx.next({ step: i })
        }
        return { text: req.text }
      }
    })
    try {
      const steps: number[] = []
      assert.deepEqual(await call(a, b.peerId, P, { text: 'slow' }, { onNext: s => { steps.push(s.step) } }), { text: 'slow' })
      assert.deepEqual(steps, [0, 1, 2, 3])
    } finally {
      await stop()
    }
  })

  it('a peer sending intermediate replies for ever is given up past the call\'s bound (RpcTooManyRepliesError), its stream aborted; the protocol\'s maxNext, RPC_MAX_NEXT by default, a call\'s own', async () => {
    const FOREVER = '/darkfs/test-rpc-forever/1.0.0'
    const P = defineProtocol({ ...ECHO, id: FOREVER, notice: undefined, maxNext: (req: Say) => req.steps ?? 0 })
    const Q = defineProtocol({ ...ECHO, id: `${FOREVER}-default`, notice: undefined })
    const signals: AbortSignal[] = []
    // each reply within the silence: only a bound on the replies ends it (a turn of the event
    // loop between replies: the caller shares this process)
    const forever = async (_req: Say, ctx: CallContext<{ step: number }>): Promise<{ text: string }> => {
      signals.push(ctx.signal)
      for (let i = 0; !ctx.signal.aborted; i++) {
        await ctx.next({ step: i })
        await new Promise(resolve => setImmediate(resolve))
      }
      throw ctx.signal.reason
    }
    const stops = [await serve(b, P, { call: forever }), await serve(b, Q, { call: forever })]
    /** What the call settled with (its error), or once `ms` passed (the test's bound, not the call's) its abort, 'still running'. */
    const settled = async (pending: (signal: AbortSignal) => Promise<unknown>, ms: number): Promise<unknown> => {
      const bound = AbortSignal.timeout(ms)
      return await pending(bound).then(() => 'resolved', (err: Error) => bound.aborted ? `still running after ${ms} ms` : err)
    }
    try {
      let heard = 0
      const err = await settled(async signal => await call(a, b.peerId, P, { text: 'x', steps: 7 }, { signal, onNext: () => { heard++ } }), 10_000)
      assert.ok(err instanceof RpcTooManyRepliesError, `the call: ${String(err)}`)
      assert.match(err.message, /more than 7 intermediate replies/)
      assert.equal(heard, 7, 'the replies within the bound reach onNext')
      await until(() => signals[0]?.aborted === true, 'the answerer sees its stream go')
      // the caller's own bound wins over the protocol's
      assert.ok(await settled(async signal => await call(a, b.peerId, P, { text: 'x', steps: 7 }, { signal, maxNext: 2 }), 10_000) instanceof RpcTooManyRepliesError)
      // no bound of the protocol's: RPC_MAX_NEXT
      heard = 0
      assert.ok(await settled(async signal => await call(a, b.peerId, Q, { text: 'x' }, { signal, onNext: () => { heard++ } }), 30_000) instanceof RpcTooManyRepliesError)
      assert.equal(heard, RPC_MAX_NEXT)
      await until(() => signals.every(s => s.aborted), 'every answerer sees its stream go')
    } finally {
      for (const stop of stops) await stop()
    }
  })

  it('PLACE: a relay sending progress for ever is given up after placeProgressMax(request) replies', async () => {
    const cid = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1])))
    const req: PlaceRequest = { chunk: cid, size: 1024, k: 2, m: 1, fragments: [cid, cid, cid], targets: [b.peerId, b.peerId, b.peerId], pinners: [] }
    let signal: AbortSignal | undefined
    const stop = await serve(b, PLACE, {
      call: async (_req, ctx) => {
        signal = ctx.signal
        while (!ctx.signal.aborted) {
          await ctx.next({ t: 'got', n: 1 })
          await new Promise(resolve => setImmediate(resolve))
        }
        throw ctx.signal.reason
      }
    })
    try {
      let heard = 0
      await assert.rejects(call(a, b.peerId, PLACE, req, { signal: AbortSignal.timeout(10_000), onNext: () => { heard++ } }), RpcTooManyRepliesError)
      assert.equal(heard, placeProgressMax(req))
      await until(() => signal?.aborted === true, 'the relay sees its stream go')
    } finally {
      await stop()
    }
  })

  it('aborting the caller\'s signal rejects with its reason and aborts the handler\'s signal', async () => {
    const controller = new AbortController()
    const reason = new Error('caller gave up')
    const pending = call(a, b.peerId, ECHO, { text: 'hang' }, { signal: controller.signal, timeoutMs: 30_000 })
    await until(() => lastSignal !== undefined, 'the handler runs')
    controller.abort(reason)
    await assert.rejects(pending, (err) => err === reason)
    await until(() => lastSignal?.aborted === true, 'the handler sees the caller go')
    // an already aborted signal never opens a stream
    await assert.rejects(call(a, b.peerId, ECHO, { text: 'x' }, { signal: AbortSignal.abort(reason) }), (err) => err === reason)
  })

  it('stop() from serve(): the protocol is no longer handled', async () => {
    await stopServing()
    await assert.rejects(call(a, b.peerId, ECHO, { text: 'x' }))
    stopServing = await serve(b, ECHO, handlers)
    assert.deepEqual(await call(a, b.peerId, ECHO, { text: 'back' }), { text: 'echo back' })
  })

  it('maxIncomingBytes: a request or notice over it is refused from its frame\'s length, the handler never called; maxReplyBytes bounds one call\'s replies', async () => {
    assert.throws(() => defineProtocol({ ...ECHO, maxIncomingBytes: ECHO.maxMessageBytes + 1 }), RangeError)
    assert.throws(() => defineProtocol({ ...ECHO, maxIncomingBytes: RPC_MIN_MESSAGE_BYTES - 1 }), RangeError)
    const small = defineProtocol({ ...ECHO, id: '/darkfs/test-rpc-echo-small/1.0.0', maxIncomingBytes: RPC_MIN_MESSAGE_BYTES })
    const seen: string[] = []
    const smallErrors: Error[] = []
    const stop = await serve(b, small, {
      call: async (req) => { seen.push(req.text); return { text: `echo ${req.text}` } },
      notice: (n) => { seen.push(n.text) }
    }, { onError: (err) => { smallErrors.push(err) } })
    try {
      const big = 'x'.repeat(2000)
      // (the caller hears the error reply, or a reset when its write was still going: either way refused)
      await assert.rejects(call(a, b.peerId, small, { text: big }))
      await notify(a, b.peerId, small, { text: big }).catch(() => {})
      await until(() => smallErrors.filter(e => e instanceof RpcTooLargeError).length === 2, 'both refused')
      // a small one still goes; replies keep the protocol's bound, a call may ask for less
      assert.deepEqual(await call(a, b.peerId, small, { text: 'x'.repeat(900) }), { text: `echo ${'x'.repeat(900)}` })
      await assert.rejects(call(a, b.peerId, ECHO, { text: 'x'.repeat(2000) }, { maxReplyBytes: RPC_MIN_MESSAGE_BYTES }), RpcTooLargeError)
      assert.deepEqual(await call(a, b.peerId, ECHO, { text: 'x'.repeat(2000) }), { text: `echo ${'x'.repeat(2000)}` })
      assert.deepEqual(seen, ['x'.repeat(900)])
    } finally {
      await stop()
    }
  })

  it('admit: a stream its answer refuses as it opens gets that error back (rebuilt when the protocol lists it), its frame never decoded; a kept protocol takes no admit', async () => {
    let decoded = 0
    const counted = defineProtocol({ ...ECHO, id: '/darkfs/test-rpc-echo-admit/1.0.0', request: (v: unknown) => { decoded++; return ECHO.request!(v) } })
    let open = 2
    const stop = await serve(b, counted, { call: async (req) => ({ text: `echo ${req.text}` }), notice: () => {} }, {
      admit: peer => open-- > 0 ? undefined : new TooLoudError(`${peer}: ask less`)
    })
    try {
      assert.deepEqual(await call(a, b.peerId, counted, { text: 'one' }), { text: 'echo one' })
      assert.deepEqual(await call(a, b.peerId, counted, { text: 'two' }), { text: 'echo two' })
      for (let i = 0; i < 5; i++) await assert.rejects(call(a, b.peerId, counted, { text: 'x'.repeat(2000) }), TooLoudError)
      assert.equal(decoded, 2)
    } finally {
      await stop()
    }
    const KEPT = defineProtocol<Say, { text: string }, never, { step: number }>({ ...ECHO, id: '/darkfs/test-rpc-kept-admit/1.0.0', notice: undefined, kept: true })
    await assert.rejects(serve(b, KEPT, { call: handlers.call }, { admit: () => undefined }), RangeError)
  })

  it('serve() needs a handler for each kind the protocol takes', async () => {
    await assert.rejects(serve(b, ECHO, { call: handlers.call }), RangeError)
  })

  it('frames: decodeIncoming/decodeReply round-trip the encoders; an error reply is cut to fit the bound', () => {
    assert.deepEqual(decodeIncoming(ECHO, encodeCall(ECHO, { text: 'q' })), { kind: 'call', value: { text: 'q' } })
    assert.deepEqual(decodeIncoming(ECHO, encodeNotice(ECHO, { text: 'n' })), { kind: 'notice', value: { text: 'n' } })
    const SMALL = defineProtocol({ ...ECHO, maxMessageBytes: RPC_MIN_MESSAGE_BYTES })
    const err = encodeError(SMALL, new TooLoudError('é'.repeat(5000)))
    assert.ok(err.byteLength <= RPC_MIN_MESSAGE_BYTES)
    const reply = decodeReply(SMALL, err, { text: '' })
    assert.equal(reply.kind === 'error' && reply.name, 'TooLoudError')
    assert.throws(() => decodeReply(ECHO, new Uint8Array(ECHO.maxMessageBytes + 1), { text: '' }), RpcTooLargeError)
  })

  describe('kept protocols (several calls per stream)', function () {
    const KEPT = defineProtocol<Say, { text: string }, never, { step: number }>({ ...ECHO, id: '/darkfs/test-rpc-kept/1.0.0', notice: undefined, kept: true })
    let stopKept: () => Promise<void>
    /** Streams of KEPT b was asked to open (its handler's calls), and the requests each carried. */
    let served: Array<{ peer: string, texts: string[] }>
    const serveKept = async (keptIdleMs?: number): Promise<void> => {
      stopKept = await serve(b, KEPT, {
        call: async (req, ctx) => {
          // one entry per stream: the ctx object is the stream's
          let s = (ctx as any).__served as { peer: string, texts: string[] } | undefined
          if (s === undefined) served.push(s = (ctx as any).__served = { peer: ctx.peer, texts: [] })
          s.texts.push(req.text)
          return await handlers.call(req, ctx)
        }
      }, { onError: (err) => { errors.push(err) }, ...(keptIdleMs !== undefined ? { keptIdleMs } : {}) })
    }
    beforeEach(async function () { served = [] })
    afterEach(async function () { await stopKept?.() })

    it('defineProtocol() refuses a kept protocol that takes notices', () => {
      assert.throws(() => defineProtocol({ ...ECHO, id: '/x', kept: true }), RangeError)
      assert.throws(() => new KeptCaller(a, ECHO), RangeError)
    })

    it('KeptCaller.call(): calls to one peer follow one another on one stream, answered in turn', async () => {
      await serveKept()
      const kc = new KeptCaller(a, KEPT)
      try {
        for (const t of ['one', 'two', 'three']) assert.deepEqual(await kc.call(b.peerId, { text: t }), { text: `echo ${t}` })
        // intermediate replies are passed over
        assert.deepEqual(await kc.call(b.peerId, { text: 'go', steps: 3 }), { text: 'echo go' })
        assert.equal(kc.opened, 1)
        assert.deepEqual(served, [{ peer: a.peerId, texts: ['one', 'two', 'three', 'go'] }])
        assert.deepEqual(kc.keptPeers(), [b.peerId])
        // calls at once: one stream each; one is kept after them
        await Promise.all(['x', 'y'].map(async t => { assert.deepEqual(await kc.call(b.peerId, { text: t }), { text: `echo ${t}` }) }))
        assert.equal(kc.opened, 2)
        assert.deepEqual(kc.keptPeers(), [b.peerId])
      } finally {
        kc.close()
      }
      assert.deepEqual(kc.keptPeers(), [])
      // a plain call on the kept protocol (one request per stream) is answered as before
      assert.deepEqual(await call(a, b.peerId, KEPT, { text: 'plain' }), { text: 'echo plain' })
      assert.equal(errors.length, 0, errors.map(e => e.message).join('; '))
    })

    it('the answerer closes a kept stream after keptIdleMs without a request; the next call opens a new one', async () => {
      await serveKept(100)
      const kc = new KeptCaller(a, KEPT)
      try {
        assert.deepEqual(await kc.call(b.peerId, { text: 'one' }), { text: 'echo one' })
        await until(() => kc.keptPeers().length === 0, 'the answerer closed the idle stream')
        assert.deepEqual(await kc.call(b.peerId, { text: 'two' }), { text: 'echo two' })
        assert.equal(kc.opened, 2)
        assert.deepEqual(served.map(s => s.texts), [['one'], ['two']])
      } finally {
        kc.close()
      }
      assert.equal(errors.length, 0, errors.map(e => e.message).join('; '))
    })

    it('an error reply ends the kept stream: the error reaches the caller, the next call opens a new stream', async () => {
      await serveKept()
      const kc = new KeptCaller(a, KEPT)
      try {
        assert.deepEqual(await kc.call(b.peerId, { text: 'one' }), { text: 'echo one' })
        await assert.rejects(kc.call(b.peerId, { text: 'shout' }), TooLoudError)
        assert.deepEqual(kc.keptPeers(), [])
        assert.deepEqual(await kc.call(b.peerId, { text: 'two' }), { text: 'echo two' })
        assert.equal(kc.opened, 2)
      } finally {
        kc.close()
      }
    })

    it('a malformed request after the first on a kept stream gets the typed error and a reset stream', async () => {
      await serveKept()
      const stream = await a.newStream(b.peerId, KEPT.id)
      const lp = lpStream(stream)
      await lp.write(encodeCall(KEPT, { text: 'fine' }))
      const ok = decodeReply(KEPT, (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray(), { text: '' })
      assert.deepEqual(ok, { kind: 'ok', value: { text: 'echo fine' } })
      await lp.write(dagCbor.encode({ notice: { text: 'no notices here' } }))
      const reply = decodeReply(KEPT, (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray(), { text: '' })
      assert.deepEqual(reply.kind === 'error' && reply.name, 'EchoProtocolError')
      await until(() => stream.status !== 'open', 'the stream is closed')
      assert.ok(errors.some(e => e instanceof EchoProtocolError))
    })
  })
})
