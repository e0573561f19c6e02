// The event log and GET /v1/events (node/api/events.ts) on a real HTTP server on a unix socket,
// read through the control client's streaming GET: ids, resuming, reset, keep-alives, clients
// that go away and clients that do not read.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { EventLog, EventHook, eventRoutes } from '../../node/api/index.ts'
import type { EventRoutesInit } from '../../node/api/index.ts'
import { ControlClient, CONTROL_SOCKET } from '../../node/cli/client.ts'
import { eventLine } from '../../node/cli/events-cli.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { until } from '../../harness/cluster.ts'

interface Msg { id?: string, event: string, data: string }

describe('node/api/events.ts', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  /** A server of the events route for `log` on a socket in a temp dir; the client of that dir. */
  const serve = async (log: EventLog, init: EventRoutesInit = {}): Promise<{ client: ControlClient, socket: string }> => {
    const dir = await tempDir(t, 'darkfs-events-')
    const [route] = eventRoutes(log, init)
    const server: Server = createServer((req, res) => {
      const gone = new AbortController()
      res.once('close', () => { gone.abort() })
      void route.handle(req, res, { url: new URL(req.url ?? '/', 'http://x'), params: {}, signal: gone.signal })
    })
    const socket = join(dir, CONTROL_SOCKET)
    await new Promise<void>(resolve => server.listen(socket, resolve))
    t.add(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
    return { client: new ControlClient(dir), socket }
  }

  /** Read `n` messages of a stream, then close it. */
  const take = async (client: ControlClient, n: number, headers: Record<string, string> = {}, path = '/v1/events'): Promise<Msg[]> => {
    const ac = new AbortController()
    const got: Msg[] = []
    try {
      for await (const m of client.stream(path, headers, { signal: ac.signal })) {
        got.push(m)
        if (got.length >= n) break
      }
    } finally {
      ac.abort()
    }
    return got
  }

  it('ids are <boot>-<n>, counting up; after(id) is exactly what followed it', () => {
    const log = new EventLog({ boot: 'b1' })
    const a = log.emit('peer-joined', { peer: 'p' })
    const b = log.emit('offline')
    const c = log.emit('online', { type: 'not-this', at: 5 })
    assert.deepEqual([a.id, b.id, c.id], ['b1-1', 'b1-2', 'b1-3'])
    assert.equal(c.type, 'online', 'a field never overwrites the type')
    assert.notEqual(c.at, 5)
    assert.deepEqual(log.after('b1-1'), { events: [b, c] })
    assert.deepEqual(log.after('b1-3'), { events: [] })
    assert.deepEqual(log.after(undefined), { events: [] })
  })

  it('an id of another run, of the future, or older than the ring gives a reset and the whole ring', () => {
    const log = new EventLog({ boot: 'b2', capacity: 3 })
    for (let i = 0; i < 5; i++) log.emit('offline')
    assert.deepEqual(log.recent().map(e => e.id), ['b2-3', 'b2-4', 'b2-5'])
    assert.equal(log.after('b2-2').reset, undefined, 'the event before the oldest kept: nothing missed')
    assert.deepEqual(log.after('b2-2').events.map(e => e.id), ['b2-3', 'b2-4', 'b2-5'])
    assert.equal(log.after('b2-1').reset, 'expired')
    assert.equal(log.after('b2-1').events.length, 3)
    assert.equal(log.after('zz-4').reset, 'unknown-id')
    assert.equal(log.after('b2-9').reset, 'unknown-id')
    assert.equal(log.after('0').reset, 'unknown-id')
    assert.equal(log.after('garbage\n').reset, 'unknown-id')
  })

  it('GET /v1/events streams new events; Last-Event-ID and ?since= resume exactly after the id', async () => {
    const log = new EventLog({ boot: 'b3' })
    const { client } = await serve(log)
    const first = take(client, 2)
    await until('the stream subscribed', async () => log.subscribers === 1, 10_000)
    log.emit('peer-joined', { peer: 'p1' })
    log.emit('disk-full', { free: 1, reserve: 2 })
    const got = await first
    assert.deepEqual(got.map(m => [m.id, m.event]), [['b3-1', 'peer-joined'], ['b3-2', 'disk-full']])
    const data = JSON.parse(got[1].data)
    assert.equal(data.type, 'disk-full')
    assert.equal(data.id, 'b3-2')
    assert.equal(typeof data.at, 'number')
    assert.equal(data.free, 1)
    await until('the client that went away is removed', async () => log.subscribers === 0, 10_000)
    // missed while away
    log.emit('offline')
    log.emit('online')
    const resumed = await take(client, 2, { 'last-event-id': 'b3-2' })
    assert.deepEqual(resumed.map(m => m.id), ['b3-3', 'b3-4'])
    const since = await take(client, 1, {}, '/v1/events?since=b3-3')
    assert.deepEqual(since.map(m => m.id), ['b3-4'])
    // an unknown id: a reset first (no id), then everything kept
    const reset = await take(client, 5, {}, '/v1/events?since=0')
    assert.equal(reset[0].event, 'reset')
    assert.equal(reset[0].id, undefined)
    assert.equal(JSON.parse(reset[0].data).reason, 'unknown-id')
    assert.deepEqual(reset.slice(1).map(m => m.id), ['b3-1', 'b3-2', 'b3-3', 'b3-4'])
  })

  it('keep-alive comments come on an idle stream', async () => {
    const log = new EventLog({ boot: 'b4' })
    const { socket } = await serve(log, { heartbeatMs: 20 })
    const conn = connect(socket)
    t.add(async () => { conn.destroy() })
    conn.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n')
    let text = ''
    conn.on('data', (d: Buffer) => { text += d.toString() })
    await until('two keep-alives', async () => text.split(': keep-alive').length > 2, 10_000)
    assert.match(text, /content-type: text\/event-stream/i)
  })

  it('a client that does not read is dropped with a last overflow event; memory stays bounded', async () => {
    const log = new EventLog({ boot: 'b5' })
    const { socket } = await serve(log, { maxClientBufferBytes: 64 * 1024 })
    const conn = connect(socket)
    t.add(async () => { conn.destroy() })
    await new Promise(resolve => conn.once('connect', resolve))
    conn.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n')
    conn.pause()
    await until('the stream subscribed', async () => log.subscribers === 1, 10_000)
    const big = 'x'.repeat(8192)
    let sent = 0
    while (log.subscribers > 0) {
      assert.ok(sent < 100_000, 'the slow client was never dropped')
      log.emit('pin-complete', { path: big, files: 1, chunks: 1 })
      sent++
      // the socket takes what it can between two events: the kernel's buffers fill first
      await new Promise(resolve => setImmediate(resolve))
    }
    let text = ''
    conn.on('data', (d: Buffer) => { text += d.toString() })
    conn.resume()
    // the response ends there (the connection itself stays for HTTP keep-alive)
    await until('the overflow message arrived', async () => /event: overflow\ndata: .*\n\n/.test(text), 10_000)
    assert.match(text, /event: overflow\ndata: \{"type":"overflow"/)
    const kinds = [...text.matchAll(/^event: (\S+)$/gm)].map(m => m[1])
    assert.equal(kinds.at(-1), 'overflow', 'overflow is the last message')
    assert.ok(kinds.length - 1 < sent, `the dropped client got ${kinds.length - 1} of ${sent} events`)
    // the log went on without it
    assert.equal(log.emit('offline').id, `b5-${sent + 1}`)
  })

  it('EventHook: bounded running and queued commands, the rest dropped; a command over its time is killed', async () => {
    const log = new EventLog({ boot: 'b6' })
    const hook = new EventHook(log, { command: 'cat > /dev/null; sleep 30', concurrency: 1, queue: 1, timeoutMs: 300 })
    hook.start()
    t.add(async () => { hook.stop() })
    for (let i = 0; i < 4; i++) log.emit('offline')
    assert.deepEqual(hook.load(), { running: 1, queued: 1, dropped: 2 })
    // each runs over its time and is killed: the queued one runs, then nothing is left
    await until('both commands were killed', () => hook.load().running === 0 && hook.load().queued === 0, 20_000)
    assert.equal(hook.load().dropped, 0, 'the drop count is reported once the hook caught up')
  })

  it('eventLine: time, type, then the fields', () => {
    assert.equal(eventLine({ id: 'b-1', type: 'peer-gone', at: 0, peer: 'P' }), '1970-01-01T00:00:00.000Z peer-gone peer=P')
    assert.equal(eventLine({ id: 'b-2', type: 'chunk-degraded', at: 0, chunks: 2, reason: 'degraded', sample: ['a', 'b'] }), '1970-01-01T00:00:00.000Z chunk-degraded chunks=2 reason=degraded sample=a,b')
    assert.equal(eventLine({ type: 'conflict-created', at: 0, path: '/a b' }), '1970-01-01T00:00:00.000Z conflict-created path="/a b"')
  })
})
