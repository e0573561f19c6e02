// `darkfs resolve` end to end (issue 13 item 6) with real processes: two hosts write the same
// files while apart (each offline in turn), reconnect, `darkfs conflicts` lists them on both,
// `darkfs resolve` settles one each way (keep the name holder, keep a copy, keep both) on
// either host, the other host sees the result, and `darkfs log` still has every version.
// Bad input (no conflict, unknown copy, relative path, malformed body) is refused with a clear
// status and changes nothing.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up, upNetwork, type Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'

describe('darkfs resolve: two hosts, a conflict each way (real processes)', function () {
  this.timeout(300_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let root: string
  let dirs: string[]
  let hosts: Up[]
  const files = ['holder.txt', 'sibling.txt', 'both.txt']

  const cli = async (data: string, ...args: string[]): Promise<string> => {
    const r = await darkfs(['--data', data, ...args])
    assert.equal(r.code, 0, `darkfs ${args.join(' ')} failed: ${r.stderr}`)
    return r.stdout
  }
  const put = async (data: string, path: string, text: string): Promise<void> => {
    const local = join(root, `put-${Math.random().toString(36).slice(2)}`)
    await writeFile(local, text)
    await cli(data, 'put', local, path)
  }
  const conflicts = async (data: string): Promise<string[]> => (await cli(data, 'conflicts')).split('\n').filter(l => l !== '').sort()
  const ls = async (data: string): Promise<string[]> => (await cli(data, 'ls', '/')).split('\n').filter(l => l !== '').sort()
  /** Every version's bytes of PATH (via `log` and `cat PATH@N`). */
  const versions = async (data: string, path: string): Promise<string[]> => {
    const n = (await cli(data, 'log', path)).trim().split('\n').length
    const out: string[] = []
    for (let i = 1; i <= n; i++) out.push(await cli(data, 'cat', `${path}@${i}`))
    return out.sort()
  }
  /** A raw request to the control socket: status and JSON body. */
  const raw = async (data: string, method: string, path: string, body: string): Promise<{ status: number, json: any }> => await new Promise((resolve, reject) => {
    const req = request({ socketPath: join(data, 'control.sock'), method, path, headers: { 'content-type': 'application/json' } }, res => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString()) }) })
    })
    req.on('error', reject)
    req.end(body)
  })

  before(async () => {
    root = await tempDir(t, 'darkfs-resolve-e2e-')
    ;({ dirs, hosts } = await upNetwork(t, root, 2))
    for (const f of files) await put(dirs[0], `/${f}`, 'base')
    await until('h1 has the starting point', async () => (await ls(dirs[1])).length === files.length, 60_000)
    // h1 offline: h0 writes; then h0 offline, h1 back alone: h1 writes
    await hosts[1].stop('SIGTERM')
    for (const f of files) await put(dirs[0], `/${f}`, `from h0: ${f}`)
    await hosts[0].stop('SIGTERM')
    hosts[1] = await up(t, ['--data', dirs[1], '--listen', '/ip4/127.0.0.1/tcp/0'])
    for (const f of files) await put(dirs[1], `/${f}`, `from h1: ${f}`)
    // reconnect: h0 comes back joining h1
    hosts[0] = await up(t, ['--data', dirs[0], '--listen', '/ip4/127.0.0.1/tcp/0', '--join', hosts[1].addresses[0]])
    await until('both hosts list the three conflicts', async () => (await conflicts(dirs[0])).length === 3 && (await conflicts(dirs[1])).length === 3, 60_000)
  })

  it('darkfs conflicts lists the same copies on both hosts, and log has both sides', async () => {
    assert.deepEqual(await conflicts(dirs[0]), await conflicts(dirs[1]))
    for (const f of files) {
      const v = await versions(dirs[0], `/${f}`)
      assert.ok(v.includes(`from h0: ${f}`) && v.includes(`from h1: ${f}`) && v.includes('base'), v.join(' | '))
    }
  })

  it('bad input: a path without a conflict, an unknown copy, a relative path, a bad body: clear errors, nothing changed', async () => {
    const before = [await ls(dirs[0]), await conflicts(dirs[0])]
    let r = await darkfs(['--data', dirs[0], 'resolve', '/nothing-here', '--keep-both'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /^darkfs: .*nothing-here/)
    await put(dirs[0], '/plain.txt', 'plain')
    r = await darkfs(['--data', dirs[0], 'resolve', '/plain.txt', '--keep-name-holder'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /^darkfs: .*\/plain\.txt has no conflict to resolve/)
    r = await darkfs(['--data', dirs[0], 'resolve', '/holder.txt', '--keep', 'no-such-copy'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /^darkfs: .*no-such-copy/)
    r = await darkfs(['--data', dirs[0], 'resolve', '/holder.txt', '--keep-both', '--keep-name-holder'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /exactly one of/)
    // the statuses of the route
    assert.equal((await raw(dirs[0], 'POST', '/v1/conflicts/resolve', JSON.stringify({ path: '/plain.txt', keep: 'both' }))).status, 409)
    assert.equal((await raw(dirs[0], 'POST', '/v1/conflicts/resolve', JSON.stringify({ path: '/holder.txt', keep: { sibling: 'nope' } }))).status, 404)
    assert.equal((await raw(dirs[0], 'POST', '/v1/conflicts/resolve', JSON.stringify({ path: '/missing', keep: 'both' }))).status, 404)
    const rel = await raw(dirs[0], 'POST', '/v1/conflicts/resolve', JSON.stringify({ path: 'holder.txt', keep: 'both' }))
    assert.equal(rel.status, 400)
    assert.equal(rel.json.error.code, 'EINVAL')
    assert.equal((await raw(dirs[0], 'POST', '/v1/conflicts/resolve', JSON.stringify({ path: '/../holder.txt', keep: 'both' }))).status, 400)
    assert.equal((await raw(dirs[0], 'POST', '/v1/conflicts/resolve', '{not json')).status, 400)
    assert.equal((await raw(dirs[0], 'POST', '/v1/conflicts/resolve', JSON.stringify({ path: '/holder.txt', keep: 'mine' }))).status, 400)
    assert.equal((await raw(dirs[0], 'POST', '/v1/conflicts/resolve', JSON.stringify({ path: '/holder.txt', keep: 'both', extra: 1 }))).status, 400)
    await cli(dirs[0], 'rm', '/plain.txt')
    assert.deepEqual([await ls(dirs[0]), await conflicts(dirs[0])], before)
  })

  it('darkfs resolve --keep-name-holder on one host: the copy goes on both, log keeps both sides', async () => {
    const holder = await cli(dirs[0], 'cat', '/holder.txt')
    const out = await cli(dirs[0], 'resolve', '/holder.txt', '--keep-name-holder')
    assert.match(out, /^removed \/holder\.txt\.conflict-/)
    await until('h1 sees the copy gone', async () => !(await conflicts(dirs[1])).some(c => c.startsWith('/holder.txt')))
    for (const d of dirs) {
      assert.equal(await cli(d, 'cat', '/holder.txt'), holder)
      assert.ok(!(await ls(d)).some(n => n.startsWith('holder.txt.')))
      const v = await versions(d, '/holder.txt')
      assert.ok(v.includes('from h0: holder.txt') && v.includes('from h1: holder.txt'), v.join(' | '))
    }
  })

  it('darkfs resolve --keep SIBLING on the other host: the copy\'s content at the name on both', async () => {
    const [copy] = (await conflicts(dirs[1])).filter(c => c.startsWith('/sibling.txt'))
    const wanted = await cli(dirs[1], 'cat', copy)
    assert.notEqual(wanted, await cli(dirs[1], 'cat', '/sibling.txt'))
    const out = JSON.parse(await cli(dirs[1], 'resolve', '/sibling.txt', '--keep', copy.slice(1), '--json'))
    assert.deepEqual(out.removed, [copy])
    await until('h0 sees the copy\'s content at the name', async () => (await cli(dirs[0], 'cat', '/sibling.txt')) === wanted && !(await conflicts(dirs[0])).some(c => c.startsWith('/sibling.txt')))
    for (const d of dirs) {
      const v = await versions(d, '/sibling.txt')
      assert.ok(v.includes('from h0: sibling.txt') && v.includes('from h1: sibling.txt') && v.includes('base'), v.join(' | '))
    }
  })

  it('darkfs resolve --keep-both: every copy a plain file on both hosts, no conflict left', async () => {
    const [copy] = (await conflicts(dirs[0])).filter(c => c.startsWith('/both.txt'))
    const wanted = await cli(dirs[0], 'cat', copy)
    const out = await cli(dirs[0], 'resolve', '/both.txt', '--keep-both')
    const m = /^kept (\S+) as (\/both \(conflict from [A-Za-z0-9]{8} \d{4}-\d{2}-\d{2} \d{6}\)\.txt)$/m.exec(out)
    assert.ok(m !== null, out)
    assert.equal(m[1], copy)
    await until('h1 sees no conflict left', async () => (await conflicts(dirs[1])).length === 0)
    for (const d of dirs) {
      assert.equal(await cli(d, 'cat', m[2]), wanted)
      assert.deepEqual(await conflicts(d), [])
    }
    assert.deepEqual(await ls(dirs[0]), await ls(dirs[1]))
  })
})
