// Control API throughput (issue 13): requests per second a running host answers for
// `GET /v1/status?chunks=0`, `GET /v1/status` (with the chunk figures, over a tree of FILES
// files) and a 4 KiB file read (`GET /v1/files/content`), over the unix socket and over
// `--api` TCP (bearer token; its rate limit raised out of the way). CONCURRENCY requests are
// kept in flight on keep-alive connections for SECONDS each.
import { Agent, request } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'

/** Requests in flight at once. */
const CONCURRENCY = 8
/** Seconds each figure is measured over. */
const SECONDS = 3
/** Files in the tree (their chunks are what `status` counts). */
const FILES = 200
/** Bytes of each of those files (over the inline limit: each has a manifest and a chunk). */
const FILE_BYTES = 64 << 10

interface Target { socketPath?: string, host?: string, port?: number, headers: Record<string, string>, agent: Agent }

async function get (t: Target, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = request({ socketPath: t.socketPath, host: t.host, port: t.port, path, headers: t.headers, agent: t.agent }, res => {
      if (res.statusCode !== 200) reject(new Error(`GET ${path}: ${res.statusCode ?? '?'}`))
      res.on('data', () => {})
      res.on('end', resolve)
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Requests per second answered for GET path, CONCURRENCY at a time for SECONDS. */
async function rate (t: Target, path: string): Promise<number> {
  for (let i = 0; i < 20; i++) await get(t, path) // warm up
  const end = performance.now() + SECONDS * 1000
  let done = 0
  const worker = async (): Promise<void> => {
    while (performance.now() < end) { await get(t, path); done++ }
  }
  const start = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return Math.round(done / ((performance.now() - start) / 1000))
}

async function freePort (): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return port
}

export async function run (): Promise<Record<string, number | string>> {
  const t = new Teardown()
  try {
    const root = await tempDir(t, 'darkfs-bench-api-')
    const data = join(root, 'data')
    await must(['init', '--data', data, '--new-network'])
    const port = await freePort()
    await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`, '--api-rate', '1000000000'])
    const token = (await readFile(join(data, 'api.token'), 'utf8')).trim()
    const unix: Target = { socketPath: join(data, 'control.sock'), headers: {}, agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }) }
    const tcp: Target = { host: '127.0.0.1', port, headers: { authorization: `Bearer ${token}` }, agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }) }
    t.add(async () => { unix.agent.destroy(); tcp.agent.destroy() })
    // the tree: FILES files (chunks for `status` to count) and the 4 KiB file read
    const put = async (path: string, bytes: Uint8Array): Promise<void> => {
      await new Promise<void>((resolve, reject) => {
        const req = request({ socketPath: unix.socketPath, method: 'PUT', path: `/v1/files/content?path=${encodeURIComponent(path)}`, headers: { 'content-length': String(bytes.byteLength) }, agent: false }, res => {
          res.resume()
          res.on('end', () => { if (res.statusCode === 200) resolve(); else reject(new Error(`PUT ${path}: ${res.statusCode ?? '?'}`)) })
        })
        req.on('error', reject)
        req.end(bytes)
      })
    }
    await must(['--data', data, 'mkdir', '/files'])
    for (let i = 0; i < FILES; i++) await put(`/files/f${i}`, randomBytes(FILE_BYTES))
    await put('/4k.bin', randomBytes(4096))
    const read = `/v1/files/content?path=${encodeURIComponent('/4k.bin')}`
    return {
      'api.unix.status-chunks0.req_per_s': await rate(unix, '/v1/status?chunks=0'),
      'api.unix.status.req_per_s': await rate(unix, '/v1/status'),
      'api.unix.read-4k.req_per_s': await rate(unix, read),
      'api.tcp.status-chunks0.req_per_s': await rate(tcp, '/v1/status?chunks=0'),
      'api.tcp.read-4k.req_per_s': await rate(tcp, read),
      'api.status.files': FILES,
      'api.concurrency': CONCURRENCY
    }
  } finally {
    await t.run()
  }
}

async function must (args: string[]): Promise<void> {
  const r = await darkfs(args)
  if (r.code !== 0) throw new Error(`darkfs ${args.join(' ')}: ${r.stderr}`)
}
