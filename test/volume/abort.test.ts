// Cancellation from the edges: a caller's signal reaches the network fetch behind a Volume call,
// a fetch shared by several readers runs until the last of them gives up, and the control socket
// aborts the call of a client that went away.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { constants } from 'node:fs'
import { Volume } from 'darkfs'
import type { OpenFile } from '../../node/index.ts'
import { ControlClient } from '../../node/cli/index.ts'
import { ApiServer, resourceRoutes } from '../../node/api/index.ts'
import type { ResourceDeps } from '../../node/api/index.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { remoteVolume } from '../helpers/remote-volume.ts'
import { PATCH_COMMIT_RANGES } from '../../node/index.ts'

/** One chunk (past the inline limit, so it has a manifest): no prefetch of a next chunk. */
const SIZE = 100_000

const isAbort = (name: string) => (err: any): boolean => { assert.equal(err?.name, name); return true }

describe('Volume calls take AbortOptions down to the network fetch', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  it('volume.readFile(p, { signal }) aborts the fetch behind it when the signal aborts', async () => {
    const r = await remoteVolume(t, await tempDir(t), SIZE)
    const controller = new AbortController()
    const reading = r.volume.readFile(r.path, { signal: controller.signal })
    const fetch = await r.nextFetch()
    assert.equal(fetch.signal?.aborted, false)
    controller.abort(new DOMException('caller gave up', 'AbortError'))
    await assert.rejects(reading, isAbort('AbortError'))
    assert.equal((await fetch.aborted as Error).name, 'AbortError')
  })

  it('fh.read(..., { signal }) of two readers of one chunk: the shared fetch is aborted only when both gave up', async () => {
    const r = await remoteVolume(t, await tempDir(t), SIZE)
    const a = await r.volume.open(r.path, 'r')
    const b = await r.volume.open(r.path, 'r')
    t.add(async () => { await a.close(); await b.close() })
    const ca = new AbortController()
    const cb = new AbortController()
    const readA = a.read(new Uint8Array(10), 0, 10, 0, { signal: ca.signal })
    const fetch = await r.nextFetch()
    const readB = b.read(new Uint8Array(10), 0, 10, 5, { signal: cb.signal })
    ca.abort(new DOMException('a gave up', 'AbortError'))
    await assert.rejects(readA, isAbort('AbortError'))
    assert.equal(fetch.signal?.aborted, false, 'b still waits: the fetch goes on')
    cb.abort(new DOMException('b gave up', 'AbortError'))
    await assert.rejects(readB, isAbort('AbortError'))
    await fetch.aborted
    assert.equal(fetch.signal?.aborted, true)
    // the next reader starts afresh and gets the bytes
    const buf = new Uint8Array(10)
    const readC = a.read(buf, 0, 10, 0)
    const again = await r.nextFetch()
    assert.notEqual(again, fetch)
    again.release()
    assert.equal((await readC).bytesRead, 10)
    assert.deepEqual(Buffer.from(buf), Buffer.from(r.bytes.subarray(0, 10)))
  })

  it('fh.write(..., { signal }) waiting behind a commit that fetches: aborted, it leaves the queue and never writes', async () => {
    const r = await remoteVolume(t, await tempDir(t), SIZE)
    const fh = await r.volume.open(r.path, 'r+')
    // more separate small writes than one commit makes positioned extents of (PATCH_COMMIT_RANGES):
    // the commit is a whole version, so it reads the base chunk (from a peer) to patch it
    const at = Array.from({ length: PATCH_COMMIT_RANGES + 1 }, (_, j) => 10 + 100 * j)
    for (const p of at) await fh.write(Buffer.from('patch'), 0, 5, p)
    const syncing = fh.flush()
    const fetch = await r.nextFetch()
    const controller = new AbortController()
    const writing = fh.write(Buffer.from('never'), 0, 5, 100, { signal: controller.signal })
    controller.abort(new DOMException('gave up', 'AbortError'))
    await assert.rejects(writing, isAbort('AbortError'))
    fetch.release()
    await syncing
    await fh.close()
    const want = Buffer.from(r.bytes)
    for (const p of at) want.write('patch', p)
    assert.deepEqual(Buffer.from(await r.volume.readFile(r.path)), want)
  })

  it('open(O_TRUNC) aborted during its truncate: no handle is made, and the open file is let go (its handle count undone)', async () => {
    const vol = await Volume.open({ dir: await tempDir(t) })
    t.add(async () => { await vol.close() })
    await vol.writeFile('/f', 'x'.repeat(10_000))
    const controller = new AbortController()
    const opening = vol.open('/f', constants.O_WRONLY | constants.O_TRUNC, 0o644, undefined, { signal: controller.signal })
    controller.abort(new DOMException('caller gave up', 'AbortError'))
    await assert.rejects(opening, isAbort('AbortError'))
    const open = (vol as unknown as { open_: Map<string, OpenFile> }).open_
    assert.deepEqual([...open.values()].map(f => f.handles), [], 'an open file left with a handle no one holds')
  })

  it('a reader that gives up leaves the fetch to the others, which get the bytes', async () => {
    const r = await remoteVolume(t, await tempDir(t), SIZE)
    const ca = new AbortController()
    const readA = r.volume.readFile(r.path, { signal: ca.signal })
    const fetch = await r.nextFetch()
    const readB = r.volume.readFile(r.path)
    ca.abort(new DOMException('a gave up', 'AbortError'))
    await assert.rejects(readA, isAbort('AbortError'))
    fetch.release()
    assert.deepEqual(Buffer.from(await readB), r.bytes)
    assert.equal(fetch.signal?.aborted, false)
  })
})

describe('the control socket aborts the call of a client that went away', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  async function serve (volume: ResourceDeps['volume'], more: Partial<ResourceDeps> = {}): Promise<ControlClient> {
    const data = await tempDir(t)
    const client = new ControlClient(data)
    const server = new ApiServer({ socket: client.socket, routes: resourceRoutes({ volume, status: async () => ({}), peers: async () => [], ...more }) })
    await server.start()
    t.add(async () => { await server.stop() })
    return client
  }

  it('GET /v1/files/content: the client disconnects mid-read, and the fetch behind the read is aborted', async () => {
    const dir = await tempDir(t)
    const r = await remoteVolume(t, join(dir, 'data'), SIZE)
    const client = await serve(r.volume)
    const controller = new AbortController()
    const reading = client.readFile(r.path, { signal: controller.signal })
    const fetch = await r.nextFetch()
    assert.equal(fetch.signal?.aborted, false)
    controller.abort(new DOMException('the CLI was interrupted', 'AbortError'))
    await assert.rejects(reading, isAbort('AbortError'))
    assert.equal((await fetch.aborted as Error).name, 'AbortError')
  })

  it('POST /v1/heal and GET /v1/files/stat: the command and the Volume call get a signal that aborts when the client goes away', async () => {
    const dir = await tempDir(t)
    const r = await remoteVolume(t, join(dir, 'data'), SIZE)
    let started!: (signal: AbortSignal) => void
    const commandStarted = new Promise<AbortSignal>(resolve => { started = resolve })
    const client = await serve(r.volume, {
      heal: async (options) => {
        started(options!.signal!)
        await new Promise((_resolve, reject) => { options!.signal!.addEventListener('abort', () => { reject(options!.signal!.reason) }) })
      }
    })
    const controller = new AbortController()
    const calling = client.command('heal', { signal: controller.signal })
    const signal = await commandStarted
    assert.equal(signal.aborted, false)
    controller.abort()
    await assert.rejects(calling)
    await new Promise(resolve => { if (signal.aborted) resolve(undefined); else signal.addEventListener('abort', resolve) })
    assert.equal(signal.reason.name, 'AbortError')

    // a filesystem call: stat is metadata (answered at once); its options carry the signal
    let seen: AbortSignal | undefined
    const stat = r.volume.stat.bind(r.volume)
    r.volume.stat = async (path, options) => { seen = options?.signal; return await stat(path, options) }
    assert.equal((await client.stat(r.path, { follow: true })).size, SIZE)
    assert.ok(seen instanceof AbortSignal)
    assert.equal(seen.aborted, false, 'a call answered in full is not aborted')
    // options sent by the client are kept, beside the signal
    await client.mkdir('/a/b', { parents: true })
    assert.equal((await client.stat('/a/b')).kind, 'dir')
    await assert.rejects(client.stat('a/b'), (err: any) => err.name === 'FsError' && err.code === 'EINVAL')
  })
})
