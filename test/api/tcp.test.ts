// The control API on TCP (`darkfs up --api HOST:PORT`, issue 13 item 1) with a real process:
// `init` writes the bearer token (0600) and `up` makes one for a data dir without it; a public
// address is refused; a missing or wrong token is 401 and does nothing; a flood of requests
// gets 429 with Retry-After; a huge body 413; and the host keeps serving after all of them.
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { MAX_JSON_BODY } from '../../node/api/index.ts'
import { OpenapiCheck, apiRequest } from '../helpers/openapi-check.ts'
import type { ApiTarget } from '../helpers/openapi-check.ts'

async function freePort (): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return port
}

describe('darkfs up --api: the control API on TCP', function () {
  this.timeout(5 * 60_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let data: string
  let tcp: { host: string, port: number, token: string }
  let check: OpenapiCheck
  const RATE = 20

  before(async () => {
    data = join(await tempDir(t), 'h')
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const port = await freePort()
    const h = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`, '--api-rate', String(RATE)])
    assert.ok(h.lines.some(l => l === `api http://127.0.0.1:${port} (token in ${data}/api.token)`), h.lines.join(' | '))
    tcp = { host: '127.0.0.1', port, token: (await readFile(join(data, 'api.token'), 'utf8')).trim() }
    const doc = await apiRequest(tcp, 'GET', '/v1/openapi.json')
    assert.equal(doc.status, 200)
    check = new OpenapiCheck(doc.json)
  })

  it('init writes the token into the data dir, mode 0600', async () => {
    const st = await stat(join(data, 'api.token'))
    assert.equal(st.mode & 0o777, 0o600)
    assert.match(tcp.token, /^[0-9a-f]{64}$/)
  })

  it('with the token: the same API as on the socket', async () => {
    const s = await check.request(tcp, 'GET', '/v1/status?chunks=0')
    assert.equal(s.status, 200)
    assert.equal((await check.request(tcp, 'POST', '/v1/files/mkdir', { body: { path: '/over-tcp' } })).status, 200)
    assert.equal((await check.request(tcp, 'GET', '/v1/files/stat?path=/over-tcp')).json.kind, 'dir')
  })

  it('no token or a wrong one: 401 on every route, and nothing is done', async () => {
    const before = (await check.request(tcp, 'GET', '/v1/tree')).json
    const routes: Array<{ method: string, path: string }> = Object.entries<any>(check.doc.paths).flatMap(([path, item]) => Object.keys(item).map(m => ({ method: m.toUpperCase(), path })))
    for (const auth of [undefined, 'Bearer nope', `Bearer ${tcp.token}x`, tcp.token, 'Basic abc']) {
      for (const r of routes) {
        const path = r.path.replace(/\{[^}]+\}/g, 'x')
        const body = r.method === 'GET' || r.method === 'DELETE' ? undefined : { path: '/made-without-token', from: '/over-tcp', to: '/moved' }
        const reply = await check.request({ host: tcp.host, port: tcp.port }, r.method, path + (r.method === 'DELETE' ? '?path=/over-tcp&recursive=1' : ''), { body, headers: auth === undefined ? {} : { authorization: auth } })
        // an operation the document marks as needing no token (`security: []`: the dashboard's
        // static files, which carry nothing of the volume) is served without one
        if (Array.isArray(check.doc.paths[r.path][r.method.toLowerCase()].security) && check.doc.paths[r.path][r.method.toLowerCase()].security.length === 0) {
          assert.notEqual(reply.status, 401, `${r.method} ${path} is public`)
          continue
        }
        assert.equal(reply.status, 401, `${r.method} ${path} with ${auth ?? 'no token'}`)
        assert.equal(reply.json.error.name, 'UnauthorizedError')
        assert.equal(reply.headers['www-authenticate'], 'Bearer realm="darkfs"')
      }
    }
    assert.deepEqual((await check.request(tcp, 'GET', '/v1/tree')).json, before)
    assert.equal((await check.request(tcp, 'GET', '/v1/files/stat?path=/made-without-token')).status, 404)
    assert.equal((await check.request(tcp, 'GET', '/v1/files/stat?path=/over-tcp')).status, 200)
  })

  it('a huge body is 413 and a flood of requests 429 with Retry-After; then the host serves again', async () => {
    const big = await check.request(tcp, 'POST', '/v1/files/mkdir', { body: Buffer.alloc(MAX_JSON_BODY * 4, 0x20) })
    assert.equal(big.status, 413)
    const replies = await Promise.all(Array.from({ length: RATE * 30 }, async () => await check.request(tcp, 'GET', '/v1/status?chunks=0')))
    const limited = replies.filter(r => r.status === 429)
    assert.ok(limited.length > 0, 'a flood is limited')
    assert.ok(replies.filter(r => r.status === 200).length >= RATE, 'the first ones get through')
    const wait = Number(limited[0].headers['retry-after'])
    assert.ok(wait >= 1, `Retry-After: ${String(limited[0].headers['retry-after'])}`)
    assert.match(limited[0].json.error.message, /requests per second/)
    // the unix socket is not limited meanwhile
    assert.equal((await check.request({ socket: join(data, 'control.sock') }, 'GET', '/v1/status?chunks=0')).status, 200)
    await new Promise(resolve => setTimeout(resolve, wait * 1000))
    assert.equal((await check.request(tcp, 'GET', '/v1/status?chunks=0')).status, 200)
    assert.equal((await darkfs(['--data', data, 'stat', '/over-tcp'])).code, 0)
  })

  it('a public or malformed --api address is refused with one clear line before anything starts; up makes a token for an old data dir', async () => {
    const other = join(await tempDir(t), 'old')
    assert.equal((await darkfs(['init', '--data', other, '--new-network'])).code, 0)
    await unlink(join(other, 'api.token')) // a data dir initialised before there were tokens
    for (const [addr, re] of [['8.8.8.8:8790', /not a loopback, private or VPN address/], ['0.0.0.0:8790', /not a loopback, private or VPN address/], ['example.com:80', /an IP address, not a name/], ['127.0.0.1', /HOST:PORT/]] as const) {
      const r = await darkfs(['up', '--data', other, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', addr])
      assert.equal(r.code, 2, r.stderr)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      assert.match(r.stderr, re)
    }
    const port = await freePort()
    const h = await up(t, ['--data', other, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`])
    const token = (await readFile(join(other, 'api.token'), 'utf8')).trim()
    assert.equal((await stat(join(other, 'api.token'))).mode & 0o777, 0o600)
    assert.equal((await apiRequest({ host: '127.0.0.1', port, token }, 'GET', '/v1/peers')).status, 200)
    await h.stop()
  })
})
