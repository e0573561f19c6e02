import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'

describe('darkfs command line (real `darkfs up` process)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  let data: string
  let work: string
  const cli = async (...args: string[]): Promise<string> => {
    const r = await darkfs(['--data', data, ...args])
    assert.equal(r.code, 0, `darkfs ${args.join(' ')} failed: ${r.stderr}`)
    return r.stdout
  }
  const fails = async (args: string[], re: RegExp): Promise<void> => {
    const r = await darkfs(['--data', data, ...args])
    assert.notEqual(r.code, 0, `darkfs ${args.join(' ')} should fail`)
    const lines = r.stderr.trim().split('\n')
    assert.match(lines[0], re)
    assert.match(lines[0], /^darkfs: /)
  }

  before(async () => {
    data = join(await tempDir(t), 'data')
    work = await tempDir(t)
  })

  it('commands on a data dir that was never initialised say so', async () => {
    await fails(['status'], /no darkfs host is running/)
    const r = await darkfs(['up', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /not a darkfs data dir: run `darkfs init/)
  })

  it('darkfs init --new-network, then up prints its addresses; a second up on the dir is refused', async () => {
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
    const local = join(work, 'in.bin')
    const bytes = randomBytes(3 * (1 << 20) + 77)
    await writeFile(local, bytes)
    await cli('mkdir', '-p', '/a/b')
    await cli('put', local, '/a/b/file.bin')
    await cli('get', '/a/b/file.bin', join(work, 'out.bin'))
    assert.deepEqual(await readFile(join(work, 'out.bin')), bytes)
    await writeFile(join(work, 'hello.txt'), 'hello\n')
    await cli('put', join(work, 'hello.txt'), '/hello.txt')
    assert.equal(await cli('cat', '/hello.txt'), 'hello\n')
    assert.equal(await cli('ls', '/'), 'a\nhello.txt\n')
    const long = (await cli('ls', '-l', '/a/b')).trim()
    assert.match(long, /^-rw-r--r-- +1 +0 +0 +3145805 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d file\.bin$/)
    assert.match(await cli('stat', '/a/b/file.bin'), /size +3145805/)
    const st = JSON.parse(await cli('stat', '--json', '/a'))
    assert.equal(st.kind, 'dir')
    await cli('mv', '/a/b/file.bin', '/moved.bin')
    assert.equal(await cli('ls', '/a/b'), '')
    await fails(['rm', '/a'], /ENOTEMPTY/)
    await cli('rm', '-r', '/a')
    assert.equal(await cli('ls', '/'), 'hello.txt\nmoved.bin\n')
    const status = JSON.parse(await cli('status', '--json'))
    assert.equal(typeof status.peerId, 'string')
    assert.equal(status.peers, 0)
    assert.ok(status.bytesStored >= bytes.byteLength)
    assert.equal(status.chunks.total, 4)
    assert.equal(status.chunks.lost, 0)
  })

  it('log PATH lists versions; cat PATH@VERSION reads an old one back', async () => {
    await writeFile(join(work, 'v1'), 'first version\n')
    await writeFile(join(work, 'v2'), 'second version\n')
    await cli('put', join(work, 'v1'), '/doc.txt')
    await cli('put', join(work, 'v2'), '/doc.txt')
    const log = JSON.parse(await cli('log', '--json', '/doc.txt'))
    assert.equal(log.length, 2)
    assert.deepEqual(log.map((v: any) => v.size), [14, 15])
    assert.equal((await cli('log', '/doc.txt')).trim().split('\n').length, 2)
    assert.equal(await cli('cat', '/doc.txt@1'), 'first version\n')
    assert.equal(await cli('cat', `/doc.txt@${log[1].version}`), 'second version\n')
    assert.equal(await cli('cat', '/doc.txt'), 'second version\n')
    await fails(['cat', '/doc.txt@99'], /no such version/)
    assert.deepEqual(JSON.parse(await cli('conflicts', '--json')), [])
    await cli('rm', '/doc.txt')
  })

  it('bad input gets one clear error line and changes nothing', async () => {
    const before = await cli('ls', '/')
    await fails(['put', join(work, 'missing.bin'), '/x'], /ENOENT.*missing\.bin/)
    await fails(['put', join(work, 'hello.txt'), '/../escape'], /escapes the volume root/)
    await fails(['mkdir', '/moved.bin'], /EEXIST/)
    await fails(['cat', '/nope'], /ENOENT/)
    await fails(['frobnicate'], /unknown command/)
    await fails(['ls', '-z', '/'], /unknown option -z/)
    assert.equal(await cli('ls', '/'), before)
  })
})
