// node/net/rpc.ts: many concurrent calls of one protocol to one peer (streams39). libp2p's
// registrar lets a protocol's handler take 32 inbound streams per connection by default and aborts
// the next one after its protocol is selected: the caller's write then failed with a raw
// StreamStateError (review39e: 3,600 of 10,000 calls, 50 in flight). Calls past what the peer
// takes wait for a free stream instead, the wait honours the call's signal, and a peer that
// refuses a stream for its limit says so with RpcBusyError.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import { RPC_MAX_STREAMS, RpcBusyError, call, defineProtocol, serve } from '../../node/net/rpc.ts'

function text (v: unknown): string {
  const t = (v as { text?: unknown } | null)?.text
  if (typeof t !== 'string') throw new Error('no text')
  return t
}

/** An echo protocol of its own id per test (no state shared between tests). */
function echo (name: string, maxStreams?: number) {
  return defineProtocol<{ text: string }, { text: string }>({
    id: `/darkfs-test/streams-${name}/1`,
    maxMessageBytes: 4096,
    timeoutMs: 10_000,
    ...(maxStreams !== undefined ? { maxStreams } : {}),
    request: v => ({ text: text(v) }),
    reply: v => ({ text: text(v) })
  })
}

async function until (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 1000) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('node/net/rpc: concurrent calls to one peer', function () {
  this.timeout(60_000)
  const teardown: Array<() => Promise<void>> = []
  let a: Host
  let b: Host

  before(async function () {
    const key = createNetworkKey()
    const addr = `/memory/darkfs-rpcs-${randomBytes(6).toString('hex')}`
    b = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: [addr] })
    teardown.push(async () => { await b.stop() })
    a = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: [`${addr}-a`], join: [b.addresses()[0]] })
    teardown.push(async () => { await a.stop() })
    await until(() => a.peers().some(p => p.id === b.peerId), 'a and b connected')
  })
  after(async function () {
    while (teardown.length > 0) await teardown.pop()!().catch(() => {})
  })

  it('200 calls at once to one peer all get their own answer (more than the peer takes at a time)', async () => {
    const p = echo('many')
    let inFlight = 0
    let most = 0
    let waiting: Array<() => void> = []
    // each answer waits until 40 calls are under way there or no more can come: the answerer holds
    // as many streams open as the caller gets through
    const release = (): void => { const w = waiting; waiting = []; for (const f of w) f() }
    const stop = await serve(b, p, {
      call: async (req) => {
        inFlight++
        most = Math.max(most, inFlight)
        if (inFlight >= 40) release()
        else await new Promise<void>(resolve => { waiting.push(resolve); setImmediate(() => { setImmediate(resolve) }) })
        inFlight--
        return { text: `echo ${req.text}` }
      }
    })
    try {
      const n = 200
      const results = await Promise.allSettled(Array.from({ length: n }, async (_, i) => await call(a, b.peerId, p, { text: `m${i}` })))
      const failed = results.flatMap((r, i) => r.status === 'rejected' ? [`${i}: ${String((r.reason as Error)?.name)}: ${String((r.reason as Error)?.message)}`] : [])
      assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${n} calls failed`)
      results.forEach((r, i) => { assert.deepEqual(r.status === 'fulfilled' ? r.value : undefined, { text: `echo m${i}` }) })
      assert.ok(most > 1 && most <= RPC_MAX_STREAMS, `calls ran at once, within the limit: ${most}`)
    } finally {
      release()
      await stop()
    }
  })

  it('a call waiting behind the limit is aborted by its signal or its timeout, never sent (and the ones under way still answer)', async () => {
    const p = echo('abort', 2)
    let hold: Array<() => void> = []
    let answered = 0
    const stop = await serve(b, p, {
      call: async (req) => {
        await new Promise<void>(resolve => { hold.push(resolve) })
        answered++
        return { text: `echo ${req.text}` }
      }
    })
    try {
      const first = [call(a, b.peerId, p, { text: '1' }), call(a, b.peerId, p, { text: '2' })]
      await until(() => hold.length === 2, 'two calls under way there')
      // two more wait: one with a signal, one with a short silence timeout; once the timeout took
      // the second, the first is aborted; neither ever reached the peer
      const ac = new AbortController()
      const queued = call(a, b.peerId, p, { text: '3' }, { signal: ac.signal })
      await assert.rejects(call(a, b.peerId, p, { text: '4' }, { timeoutMs: 300 }), (err: Error) => err.name === 'RpcTimeoutError')
      const reason = new Error('given up while queued')
      ac.abort(reason)
      await assert.rejects(queued, (err) => err === reason)
      assert.equal(hold.length, 2, 'the queued calls never reached the peer')
      for (const f of hold) f()
      hold = []
      assert.deepEqual(await Promise.all(first), [{ text: 'echo 1' }, { text: 'echo 2' }])
      assert.equal(answered, 2, 'the aborted call never reached the peer')
      // and the slot it waited for is free: a later call goes through
      const later = call(a, b.peerId, p, { text: '4' })
      await until(() => hold.length === 1, 'the later call under way there')
      for (const f of hold) f()
      assert.deepEqual(await later, { text: 'echo 4' })
    } finally {
      for (const f of hold) f()
      await stop()
    }
  })

  it('a peer answering fewer at once than the caller sends refuses the rest with RpcBusyError, not a raw stream error', async () => {
    const p = echo('busy', 8)
    let hold: Array<() => void> = []
    const stop = await serve(b, p, {
      call: async (req) => {
        await new Promise<void>(resolve => { hold.push(resolve) })
        return { text: `echo ${req.text}` }
      }
    }, { maxInboundStreams: 2 })
    try {
      const calls = Array.from({ length: 6 }, async (_, i) => await call(a, b.peerId, p, { text: `m${i}` }))
      const settled = Promise.allSettled(calls)
      await until(() => hold.length === 2, 'two calls under way there')
      // the others are refused as they open, before their request is read
      const refused: unknown[] = []
      for (const c of calls) c.catch((err: unknown) => { refused.push(err) })
      await until(() => refused.length === 4, 'four refused')
      for (const f of hold) f()
      hold = []
      const results = await settled
      assert.equal(results.filter(r => r.status === 'fulfilled').length, 2)
      for (const err of refused) assert.ok(err instanceof RpcBusyError, `RpcBusyError, got ${String((err as Error)?.name)}: ${String((err as Error)?.message)}`)
    } finally {
      for (const f of hold) f()
      await stop()
    }
  })
})
