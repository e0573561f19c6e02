// node/net/rpc.ts: more calls of one protocol to one peer at once than libp2p lets a connection
// carry (streams40). libp2p's registrar takes 32 inbound streams of a protocol per connection by
// default and aborts the next one once its protocol is selected, so the caller's write failed
// with a raw StreamStateError (and its callers took the peer for dead). A caller now keeps at most
// the protocol's maxStreams open to one peer and queues the rest in order; a queued call leaves
// the queue when its signal aborts; a slot is freed whatever ends its call; a call made from a
// handler never waits behind calls that wait on that handler (the relay-back case); a notice the
// peer did not take is an error, never a silent loss. The review of streams39 (reverted) probed
// the last three.
import assert from 'node:assert/strict'
import type { Host } from '../../node/net/host.ts'
import { memoryPair } from '../helpers/memory-pair.ts'
import { KeptCaller, RPC_MAX_STREAMS, call, defineProtocol, notify, serve } from '../../node/net/rpc.ts'
import { LOOP_TIME_MAX_FACTOR, loopTimeSignal } from '../../swarm/index.ts'

interface Say { text: string, hops?: number }

function say (v: unknown): Say {
  const o = v as { text?: unknown, hops?: unknown } | null
  if (typeof o?.text !== 'string') throw new Error('no text')
  if (o.hops !== undefined && !(Number.isSafeInteger(o.hops) && (o.hops as number) >= 0 && (o.hops as number) <= 3)) throw new Error('hops: 0..3')
  return o.hops === undefined ? { text: o.text } : { text: o.text, hops: o.hops as number }
}

/** An echo protocol of its own id per test (no state shared between tests): calls and notices. */
function echo (name: string) {
  return defineProtocol<Say, { text: string }, { text: string }>({
    id: `/darkfs-test/streams40-${name}/1`,
    maxMessageBytes: 4096,
    timeoutMs: 10_000,
    request: say,
    reply: v => ({ text: say(v).text }),
    notice: v => ({ text: say(v).text })
  })
}

async function until (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 1000) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** The rejections of `results` as "i: name: message". */
function failures (results: Array<PromiseSettledResult<unknown>>): string[] {
  return results.flatMap((r, i) => r.status === 'rejected' ? [`${i}: ${String((r.reason as Error)?.name)}: ${String((r.reason as Error)?.message)}`] : [])
}

/**
 * Handler calls held until `release()`, or until their call goes away (ctx.signal): `inFlight`
 * counts those held now, `most` the most at once.
 */
function holder () {
  let waiting: Array<() => void> = []
  const h = {
    inFlight: 0,
    most: 0,
    seen: [] as string[],
    hold: async (text: string, signal: AbortSignal): Promise<void> => {
      h.seen.push(text)
      h.inFlight++
      h.most = Math.max(h.most, h.inFlight)
      try {
        await new Promise<void>(resolve => {
          waiting.push(resolve)
          signal.addEventListener('abort', () => { resolve() }, { once: true })
        })
      } finally {
        h.inFlight--
      }
    },
    release: (): void => {
      const w = waiting
      waiting = []
      for (const f of w) f()
    }
  }
  return h
}

describe('node/net/rpc: more calls at once to one peer than its streams allow', function () {
  this.timeout(60_000)
  const teardown: Array<() => Promise<void>> = []
  let a: Host
  let b: Host

  before(async function () {
    const pair = await memoryPair('rpcs40')
    teardown.push(pair.stop)
    ;({ a, b } = pair)
  })
  after(async function () {
    while (teardown.length > 0) await teardown.pop()!().catch(() => {})
  })

  it('100 calls at once to one peer all get their own answer, at most maxStreams of them open at a time', async () => {
    const p = echo('many')
    const n = 100
    const h = holder()
    let answered = 0
    // each batch is held until as many calls are under way there as may be (or as are left): the
    // answerer holds as many streams open at once as the caller gets through
    const stop = await serve(b, p, {
      call: async (req, ctx) => {
        const held = h.hold(req.text, ctx.signal)
        if (h.inFlight >= Math.min(RPC_MAX_STREAMS, n - answered)) h.release()
        await held
        answered++
        return { text: `echo ${req.text}` }
      },
      notice: () => {}
    })
    try {
      const results = await Promise.allSettled(Array.from({ length: n }, async (_, i) => await call(a, b.peerId, p, { text: `m${i}` })))
      assert.deepEqual(failures(results), [])
      assert.deepEqual(results.map(r => r.status === 'fulfilled' ? r.value.text : undefined), Array.from({ length: n }, (_, i) => `echo m${i}`))
      assert.equal(h.most, RPC_MAX_STREAMS, 'as many at once as the protocol allows, no more')
    } finally {
      h.release()
      await stop()
    }
  })

  it('a queued call whose signal aborts leaves the queue unsent; aborted calls free their slots for later ones', async () => {
    const p = echo('abort')
    const h = holder()
    const stop = await serve(b, p, {
      call: async (req, ctx) => {
        await h.hold(req.text, ctx.signal)
        return { text: `echo ${req.text}` }
      },
      notice: () => {}
    })
    try {
      // every slot taken by a call held there
      const sent = Array.from({ length: RPC_MAX_STREAMS }, () => new AbortController())
      const held = sent.map(async (c, i) => await call(a, b.peerId, p, { text: `held${i}` }, { signal: c.signal }))
      await until(() => h.inFlight === RPC_MAX_STREAMS, 'every slot held there')
      // two more wait at the caller; aborting them ends them with the signal's reason
      const queued = [new AbortController(), new AbortController()]
      const waiting = queued.map(async (c, i) => await call(a, b.peerId, p, { text: `queued${i}` }, { signal: c.signal }))
      const reason = new Error('not wanted any more')
      for (const c of queued) c.abort(reason)
      for (const r of await Promise.allSettled(waiting)) assert.deepEqual(r, { status: 'rejected', reason })
      // four calls under way there are aborted too
      for (const c of sent.slice(0, 4)) c.abort(reason)
      const ends = await Promise.allSettled(held.slice(0, 4))
      for (const r of ends) assert.deepEqual(r, { status: 'rejected', reason })
      h.release()
      assert.deepEqual(failures(await Promise.allSettled(held.slice(4))), [])
      // a full round again: no slot was lost to an aborted call (a leaked one keeps this round
      // short of RPC_MAX_STREAMS at once: its handlers never released, its calls time out)
      const again = Array.from({ length: RPC_MAX_STREAMS }, async (_, i) => await call(a, b.peerId, p, { text: `again${i}` }))
      await until(() => h.inFlight === RPC_MAX_STREAMS, 'a full round held there again')
      h.release()
      assert.deepEqual(failures(await Promise.allSettled(again)), [])
      assert.deepEqual(h.seen.filter(t => t.startsWith('queued')), [], 'the queued calls never reached the peer')
    } finally {
      h.release()
      await stop()
    }
  })

  it('100 notices at once to one peer: each one that resolved was handled there; none failed', async () => {
    const p = echo('notices')
    const n = 100
    const handled: string[] = []
    const stop = await serve(b, p, {
      call: async (req) => ({ text: req.text }),
      notice: async (note) => {
        // a slow handler: its stream is closed before it runs, it holds no stream open
        await new Promise(resolve => setImmediate(resolve))
        handled.push(note.text)
      }
    })
    try {
      const results = await Promise.allSettled(Array.from({ length: n }, async (_, i) => { await notify(a, b.peerId, p, { text: `n${i}` }) }))
      assert.deepEqual(failures(results), [])
      await until(() => handled.length >= n, `all ${n} notices handled (${handled.length} were)`)
      assert.deepEqual([...handled].sort(), Array.from({ length: n }, (_, i) => `n${i}`).sort())
    } finally {
      await stop()
    }
  })

  it('a notice the peer resets instead of closing its side (refused there) is an error, never taken for delivered', async () => {
    const p = echo('refused')
    // b's raw handler resets each stream once the sender's side is closed, the notice sent whole:
    // the sender's own close had returned by then
    const refused: string[] = []
    await b.handle(p.id, (stream) => {
      stream.addEventListener('remoteCloseWrite', () => {
        refused.push(stream.id)
        stream.abort(new Error('refused after reading'))
      }, { once: true })
    })
    try {
      await assert.rejects(notify(a, b.peerId, p, { text: 'lost?' }), (err: Error) => err.name === 'RpcClosedError')
      assert.equal(refused.length, 1)
    } finally {
      await b.unhandle(p.id)
    }
  })

  it('a notice the peer refuses unread (admit: an error reply, then its close) rejects with that error, never taken for delivered', async () => {
    const p = echo('admit')
    const handled: string[] = []
    const stop = await serve(b, p, { call: async r => ({ text: r.text }), notice: n => { handled.push(n.text) } }, {
      admit: () => new Error('ask less')
    })
    try {
      await assert.rejects(notify(a, b.peerId, p, { text: 'refused' }), (err: Error) => err.name === 'RpcRemoteError' && /ask less/.test(err.message))
      assert.equal(handled.length, 0, 'b handled a notice it refused')
      // a notice taken still resolves on the same protocol once admitted (b serves it again, admitting all)
    } finally {
      await stop()
    }
    const stop2 = await serve(b, p, { call: async r => ({ text: r.text }), notice: n => { handled.push(n.text) } })
    try {
      await notify(a, b.peerId, p, { text: 'taken' })
      await until(() => handled.length === 1, 'b handled the notice')
      assert.deepEqual(handled, ['taken'])
    } finally {
      await stop2()
    }
  })

  it('a KeptCaller frees its slot after each call: calls in turn on a protocol of maxStreams 1 all go', async () => {
    const K = defineProtocol<Say, { text: string }>({ id: '/darkfs-test/streams40-kept-slots/1', kept: true, maxStreams: 1, maxMessageBytes: 4096, timeoutMs: 5_000, request: say, reply: v => ({ text: say(v).text }) })
    const stop = await serve(b, K, { call: async r => ({ text: r.text }) })
    const kc = new KeptCaller(a, K)
    try {
      for (let i = 0; i < 3; i++) assert.deepEqual(await kc.call(b.peerId, { text: `k${i}` }), { text: `k${i}` })
    } finally {
      kc.close()
      await stop()
    }
  })

  it('a call, a notice and a KeptCaller call queued behind a slow call (maxStreams 1) wait longer than their silence timeout and still go once it ends', async () => {
    // their silence timer started while they waited for the slot: each was given up having sent
    // nothing (small41)
    const P = defineProtocol<Say, { text: string }, { text: string }>({ id: '/darkfs-test/streams40-queued-timeout/1', maxStreams: 1, maxMessageBytes: 4096, timeoutMs: 10_000, request: say, reply: v => ({ text: say(v).text }), notice: v => ({ text: say(v).text }) })
    const K = defineProtocol<Say, { text: string }>({ id: '/darkfs-test/streams40-queued-timeout-kept/1', kept: true, maxStreams: 1, maxMessageBytes: 4096, timeoutMs: 10_000, request: say, reply: v => ({ text: say(v).text }) })
    const QUEUED_TIMEOUT_MS = 300
    const h = holder()
    const noticed: string[] = []
    const handler = {
      call: async (req: Say, ctx: { signal: AbortSignal }) => {
        if (req.text === 'slow') await h.hold(req.text, ctx.signal)
        return { text: `echo ${req.text}` }
      },
      notice: (n: Say) => { noticed.push(n.text) }
    }
    const stopP = await serve(b, P, handler)
    const stopK = await serve(b, K, { call: handler.call })
    const kc = new KeptCaller(a, K)
    const bad: string[] = []
    try {
      for (const [p, queued] of [
        [P, async () => await call(a, b.peerId, P, { text: 'queued' }, { timeoutMs: QUEUED_TIMEOUT_MS })],
        [P, async () => { await notify(a, b.peerId, P, { text: 'queued' }, { timeoutMs: QUEUED_TIMEOUT_MS }); return { text: 'noticed' } }],
        [K, async () => await kc.call(b.peerId, { text: 'queued' }, { timeoutMs: QUEUED_TIMEOUT_MS })]
      ] as const) {
        // the one slot held there
        const slow = p === K ? kc.call(b.peerId, { text: 'slow' }) : call(a, b.peerId, P, { text: 'slow' })
        await until(() => h.inFlight === 1, 'the slow call held there')
        const waiting = queued()
        // held three times the queued one's silence timeout, on the same clock (the loop's own
        // time), unless the queued one ends first
        const held = loopTimeSignal(3 * QUEUED_TIMEOUT_MS, Infinity)
        const ended = waiting.then(() => {}, () => {})
        await Promise.race([ended, new Promise(resolve => { held.signal.addEventListener('abort', resolve, { once: true }) })])
        held.clear()
        h.release()
        assert.deepEqual(await slow, { text: 'echo slow' })
        bad.push(...failures(await Promise.allSettled([waiting])))
      }
      assert.deepEqual(bad, [], 'the call, notice and KeptCaller call queued behind the slow one')
      await until(() => noticed.length === 1, 'the notice handled')
    } finally {
      h.release()
      kc.close()
      await stopK()
      await stopP()
    }
  })

  it('calls with no signal queued behind a peer that answers none (maxStreams 1) each give up within LOOP_TIME_MAX_FACTOR times their timeout', async () => {
    const T = 100
    const P = defineProtocol<Say, { text: string }>({ id: '/darkfs-test/streams40-silent/1', maxStreams: 1, maxMessageBytes: 4096, timeoutMs: T, request: say, reply: v => ({ text: say(v).text }) })
    // takes each call and never answers: its handler ends when the caller gives up
    const stop = await serve(b, P, {
      call: async (_req: Say, ctx: { signal: AbortSignal }) => await new Promise<{ text: string }>((resolve) => {
        ctx.signal.addEventListener('abort', () => { resolve({ text: 'late' }) }, { once: true })
      })
    })
    try {
      const n = 30
      let settled = 0
      // each call's end as its error's name
      const calls = Array.from({ length: n }, async (_, i) => await call(a, b.peerId, P, { text: String(i) }).then(() => 'answered', (err: Error) => err.name).finally(() => { settled++ }))
      // twice the bound, on the loop's own clock (the bound's clock)
      const held = loopTimeSignal(2 * LOOP_TIME_MAX_FACTOR * T, Infinity)
      await new Promise(resolve => { held.signal.addEventListener('abort', resolve, { once: true }) })
      const by = settled
      const ends = await Promise.all(calls)
      assert.equal(by, n, `calls still queued after ${2 * LOOP_TIME_MAX_FACTOR * T} ms of loop time`)
      assert.deepEqual([...new Set(ends)], ['RpcTimeoutError'])
    } finally {
      await stop()
    }
  })

  it('30 calls queued (maxStreams 1) behind a peer answering each within a quarter of its silence timeout (7.5 times it in all): all answered', async () => {
    const T = 200
    const P = defineProtocol<Say, { text: string }>({ id: '/darkfs-test/streams40-busy/1', maxStreams: 1, maxMessageBytes: 4096, timeoutMs: T, request: say, reply: v => ({ text: say(v).text }) })
    // the peer is busy, never silent past a quarter of T on a call: the last call waits 29 of them, past the queue's own bound
    const stop = await serve(b, P, { call: async (req: Say) => { await new Promise(resolve => setTimeout(resolve, T / 4)); return { text: `echo ${req.text}` } } })
    try {
      const results = await Promise.allSettled(Array.from({ length: 30 }, async (_, i) => await call(a, b.peerId, P, { text: String(i) })))
      assert.deepEqual(failures(results), [])
    } finally {
      await stop()
    }
  })

  it('a call queued (maxStreams 1) behind one whose intermediate replies keep coming well past the queue\'s own bound: answered', async () => {
    const T = 200
    const P = defineProtocol<Say, { text: string }, never, { step: number }>({
      id: '/darkfs-test/streams40-progress/1', maxStreams: 1, maxMessageBytes: 4096, timeoutMs: T, request: say, reply: v => ({ text: say(v).text }), next: (v: any) => ({ step: Number(v?.step) }), maxNext: () => 100
    })
    const steps = 4 * LOOP_TIME_MAX_FACTOR * 2
    const stop = await serve(b, P, {
      call: async (req: Say, ctx: any) => {
        // a reply every quarter of T, for twice the queue's bound (LOOP_TIME_MAX_FACTOR x T)
        if (req.text === 'long') for (let i = 0; i < steps; i++) { await new Promise(resolve => setTimeout(resolve, T / 4)); await ctx.next({ step: i }) }
        return { text: `echo ${req.text}` }
      }
    })
    try {
      let heard = 0
      const long = call(a, b.peerId, P, { text: 'long' }, { onNext: () => { heard++ } })
      const queued = call(a, b.peerId, P, { text: 'queued' })
      const results = await Promise.allSettled([long, queued])
      assert.deepEqual(failures(results), [], `the long call's replies heard: ${heard} of ${steps}`)
      assert.equal(heard, steps)
    } finally {
      await stop()
    }
  })

  it('a call whose watch cannot be set up (a signal that is not an AbortSignal) frees its slot: the next call goes', async () => {
    const P = defineProtocol<Say, { text: string }>({ id: '/darkfs-test/streams40-leak/1', maxStreams: 1, maxMessageBytes: 4096, timeoutMs: 1000, request: say, reply: v => ({ text: say(v).text }) })
    const stop = await serve(b, P, { call: async (req: Say) => ({ text: `echo ${req.text}` }) })
    try {
      // an EventTarget shaped like an AbortSignal (a polyfill's, another realm's): AbortSignal.any refuses it
      const fake = Object.assign(new EventTarget(), { aborted: false, reason: undefined, throwIfAborted () {} }) as unknown as AbortSignal
      await assert.rejects(call(a, b.peerId, P, { text: 'x' }, { signal: fake }), TypeError)
      const guard = loopTimeSignal(3000, Infinity)
      const next = await Promise.race([
        call(a, b.peerId, P, { text: 'next' }, { signal: guard.signal }).then(r => r.text, (err: Error) => `rejected: ${err.name}: ${err.message}`),
        new Promise<string>(resolve => { guard.signal.addEventListener('abort', () => { resolve('still queued after 3 s: the slot leaked') }, { once: true }) })
      ])
      guard.clear()
      assert.equal(next, 'echo next')
    } finally {
      await stop()
    }
  })

  it('relay back: 100 calls a -> b whose handler calls a, whose handler calls b, on the same protocol, all finish', async () => {
    const p = echo('relay')
    // each side's handler calls the caller back with one hop fewer: a's calls to b (hops 0) are
    // made while a's own calls to b (hops 2) hold every slot and wait for them
    const handlerOf = (self: Host) => ({
      call: async (req: Say, ctx: { peer: string }) => {
        if ((req.hops ?? 0) === 0) return { text: `${req.text}.` }
        const back = await call(self, ctx.peer, p, { text: `${req.text}>`, hops: req.hops! - 1 })
        return { text: back.text }
      },
      notice: () => {}
    })
    const stopB = await serve(b, p, handlerOf(b))
    const stopA = await serve(a, p, handlerOf(a))
    try {
      const n = 100
      const results = await Promise.allSettled(Array.from({ length: n }, async (_, i) => await call(a, b.peerId, p, { text: `r${i}`, hops: 2 })))
      assert.deepEqual(failures(results), [])
      assert.deepEqual(results.map(r => r.status === 'fulfilled' ? r.value.text : undefined), Array.from({ length: n }, (_, i) => `r${i}>>.`))
    } finally {
      await stopA()
      await stopB()
    }
  })
})
