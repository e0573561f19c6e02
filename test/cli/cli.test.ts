import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up, DARKFS } from '../../harness/proc.ts'
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'

describe('darkfs command line (real `darkfs up` process)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  // Each test has its own data dir (and host): none relies on what another created or left.
  let n = 0
  const fresh = async (): Promise<string> => join(await tempDir(t), `data-${n++}`)
  /** A data dir initialised with a new network, its `darkfs up` running. */
  const running = async (): Promise<string> => {
    const data = await fresh()
    const r = await darkfs(['init', '--data', data, '--new-network'])
    assert.equal(r.code, 0, r.stderr)
    await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'])
    return data
  }
  const cli = async (data: string, ...args: string[]): Promise<string> => {
    const r = await darkfs(['--data', data, ...args])
    assert.equal(r.code, 0, `darkfs ${args.join(' ')} failed: ${r.stderr}`)
    return r.stdout
  }
  const fails = async (data: string, args: string[], re: RegExp): Promise<void> => {
    const r = await darkfs(['--data', data, ...args])
    assert.notEqual(r.code, 0, `darkfs ${args.join(' ')} should fail`)
    const lines = r.stderr.trim().split('\n')
    assert.match(lines[0], re)
    assert.match(lines[0], /^darkfs: /)
  }

  it('commands on a data dir that was never initialised say so', async () => {
    const data = await fresh()
    await fails(data, ['status'], /no darkfs host is running/)
    const r = await darkfs(['up', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /not a darkfs data dir: run `darkfs init/)
  })

  it('darkfs init --new-network, then up prints its addresses; a second up on the dir is refused', async () => {
    const data = await fresh()
    const out = await darkfs(['init', '--data', data, '--new-network'])
    assert.equal(out.code, 0, out.stderr)
    assert.match(await readFile(join(data, 'network.key'), 'utf8'), /^\/key\/swarm\/psk\/1\.0\.0\//)
    const again = await darkfs(['init', '--data', data, '--new-network'])
    assert.equal(again.code, 2)
    assert.match(again.stderr, /already initialised/)
    const host = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.ok(host.addresses.length > 0)
    for (const a of host.addresses) assert.match(a, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+$/)
    const second = await darkfs(['up', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.equal(second.code, 1)
    assert.match(second.stderr, /already running/)
  })

  it('put, get, cat, ls, ls -l, stat, mkdir -p, mv, rm -r', async () => {
    const data = await running()
    const work = await tempDir(t)
    const local = join(work, 'in.bin')
    const bytes = randomBytes(3 * (1 << 20) + 77)
    await writeFile(local, bytes)
    await cli(data, 'mkdir', '-p', '/a/b')
    await cli(data, 'put', local, '/a/b/file.bin')
    await cli(data, 'get', '/a/b/file.bin', join(work, 'out.bin'))
    assert.deepEqual(await readFile(join(work, 'out.bin')), bytes)
    await writeFile(join(work, 'hello.txt'), 'hello\n')
    await cli(data, 'put', join(work, 'hello.txt'), '/hello.txt')
    assert.equal(await cli(data, 'cat', '/hello.txt'), 'hello\n')
    assert.equal(await cli(data, 'ls', '/'), 'a\nhello.txt\n')
    const long = (await cli(data, 'ls', '-l', '/a/b')).trim()
    assert.match(long, /^-rw-r--r-- +1 +0 +0 +3145805 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d file\.bin$/)
    assert.match(await cli(data, 'stat', '/a/b/file.bin'), /size +3145805/)
    const st = JSON.parse(await cli(data, 'stat', '--json', '/a'))
    assert.equal(st.kind, 'dir')
    await cli(data, 'mv', '/a/b/file.bin', '/moved.bin')
    assert.equal(await cli(data, 'ls', '/a/b'), '')
    await fails(data, ['rm', '/a'], /ENOTEMPTY/)
    await cli(data, 'rm', '-r', '/a')
    assert.equal(await cli(data, 'ls', '/'), 'hello.txt\nmoved.bin\n')
    const status = JSON.parse(await cli(data, 'status', '--json'))
    assert.equal(typeof status.peerId, 'string')
    assert.equal(status.peers, 0)
    assert.ok(status.bytesStored >= bytes.byteLength)
    assert.equal(status.chunks.total, 4)
    assert.equal(status.chunks.lost, 0)
  })

  it('log PATH lists versions; cat PATH@VERSION reads an old one back', async () => {
    const data = await running()
    const work = await tempDir(t)
    await writeFile(join(work, 'v1'), 'first version\n')
    await writeFile(join(work, 'v2'), 'second version\n')
    await cli(data, 'put', join(work, 'v1'), '/doc.txt')
    await cli(data, 'put', join(work, 'v2'), '/doc.txt')
    const log = JSON.parse(await cli(data, 'log', '--json', '/doc.txt'))
    assert.equal(log.length, 2)
    assert.deepEqual(log.map((v: any) => v.size), [14, 15])
    assert.equal((await cli(data, 'log', '/doc.txt')).trim().split('\n').length, 2)
    assert.equal(await cli(data, 'cat', '/doc.txt@1'), 'first version\n')
    assert.equal(await cli(data, 'cat', `/doc.txt@${log[1].version}`), 'second version\n')
    assert.equal(await cli(data, 'cat', '/doc.txt'), 'second version\n')
    await fails(data, ['cat', '/doc.txt@99'], /no such version/)
    assert.deepEqual(JSON.parse(await cli(data, 'conflicts', '--json')), [])
    await cli(data, 'rm', '/doc.txt')
  })

  it('bad input gets one clear error line and changes nothing', async () => {
    const data = await running()
    const work = await tempDir(t)
    await writeFile(join(work, 'hello.txt'), 'hello\n')
    await cli(data, 'put', join(work, 'hello.txt'), '/moved.bin')
    const before = await cli(data, 'ls', '/')
    await fails(data, ['put', join(work, 'missing.bin'), '/x'], /ENOENT.*missing\.bin/)
    await fails(data, ['put', join(work, 'hello.txt'), '/../escape'], /escapes the volume root/)
    await fails(data, ['mkdir', '/moved.bin'], /EEXIST/)
    await fails(data, ['cat', '/nope'], /ENOENT/)
    await fails(data, ['frobnicate'], /unknown command/)
    await fails(data, ['ls', '-z', '/'], /unknown option -z/)
    assert.equal(await cli(data, 'ls', '/'), before)
  })
  it('darkfs cat BIG | head: the reader going away ends darkfs quietly (exit 141, no stack trace)', async () => {
    const data = await running()
    const local = join(await tempDir(t), 'big.bin')
    await writeFile(local, randomBytes(4 << 20))
    await cli(data, 'put', local, '/big.bin')
    // bash's PIPESTATUS reports darkfs's own status; head reads 10 bytes and leaves
    const script = `"$0" --data "$1" cat /big.bin | head -c 10 >/dev/null; echo "status=\${PIPESTATUS[0]}"`
    const r = await new Promise<{ stdout: string, stderr: string }>((resolve, reject) => {
      execFile('bash', ['-c', script, DARKFS, data], (err, stdout, stderr) => { if (err !== null) reject(err); else resolve({ stdout, stderr }) })
    })
    assert.equal(r.stderr, '', 'nothing on stderr')
    assert.match(r.stdout, /status=141/)
  })

  it('client commands (stat, ls, status, log, cat) load only the client: no libp2p, no data path, no node:http or node:fs module', async () => {
    const data = await running()
    await cli(data, 'mkdir', '/x')
    const hook = fileURLToPath(new URL('../../harness/record-modules.ts', import.meta.url))
    const record = join(await tempDir(t), 'modules.txt')
    const env = { NODE_OPTIONS: `--import ${hook}`, DARKFS_RECORD_MODULES: record }
    // the last two fail (a directory has no log, no /nope): an error path loads no more
    for (const [i, args] of [['stat', '/x'], ['ls', '/'], ['status'], ['log', '/x'], ['cat', '/nope']].entries()) {
      const r = await darkfs(['--data', data, ...args], { env })
      assert.equal(r.code, i < 3 ? 0 : 1, `darkfs ${args.join(' ')}: ${r.stderr}`)
      const loaded = (await readFile(record, 'utf8')).split('\n').filter(l => l !== '' && !l.endsWith('/harness/record-modules.ts'))
      assert.ok(loaded.some(u => u.endsWith('/node/cli/client.ts')), `the recorder saw the client load: ${loaded.join(' ')}`)
      const heavy = loaded.filter(u => /\/node_modules\/|\/node\/(net|keeper|data|tree)\/|\/(swarm|fuse)\//.test(u))
      assert.deepEqual(heavy, [], `darkfs ${args[0]} loads no package and no host part`)
      // importing node:http or node:fs as a module builds its ESM facade, whose lazy getters
      // load undici, streams, readline (client.ts)
      for (const facade of ['node:http', 'node:fs']) assert.ok(!loaded.includes(facade), `darkfs ${args[0]} does not import ${facade} as a module`)
    }
  })

  it('darkfs up on a port in use: one line `darkfs: port N is in use (...)`, exit 1, no libp2p internals', async () => {
    const data = await fresh()
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const busy = createServer()
    await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
    t.add(async () => { await new Promise(resolve => busy.close(resolve)) })
    const port = (busy.address() as AddressInfo).port
    // supervised (the default) and in this process (--no-restart): the same one line
    for (const extra of [[], ['--no-restart']]) {
      const r = await darkfs(['up', '--data', data, '--listen', `/ip4/127.0.0.1/tcp/${port}`, ...extra])
      assert.equal(r.code, 1, r.stderr)
      const lines = r.stderr.trim().split('\n')
      assert.equal(lines.length, 1, `one line: ${r.stderr}`)
      assert.match(lines[0], new RegExp(`^darkfs: port ${port} is in use \\(.+\\)$`))
      assert.doesNotMatch(r.stderr, /transportManager|faultTolerance|NO_FATAL/)
    }
  })
})
