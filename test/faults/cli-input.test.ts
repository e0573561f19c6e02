// Bad command-line and API input (DESIGN.md §7, §8): each gets exactly one clear line on
// stderr, a non-zero exit, and changes nothing (the tree listing, the stored bytes and the
// local files stay as they were). Complements test/cli/cli.test.ts (which covers a missing
// local file, '..' escapes, EEXIST, ENOENT, unknown commands and options, a second `up`).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { ControlClient } from '../../node/cli/index.ts'

describe('darkfs: bad CLI and API input gets one clear error line and changes nothing', function () {
  this.timeout(5 * 60_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let data: string
  let work: string
  let content: Buffer

  const cli = async (...args: string[]): Promise<string> => {
    const r = await darkfs(['--data', data, ...args])
    assert.equal(r.code, 0, `darkfs ${args.join(' ')} failed: ${r.stderr}`)
    return r.stdout
  }
  /** The whole visible state: every path with its size and content hash, the bytes stored. */
  const snapshot = async (): Promise<string> => {
    const lines: string[] = []
    const walk = async (dir: string): Promise<void> => {
      for (const name of (await cli('ls', dir)).split('\n').filter(Boolean)) {
        const path = (dir === '/' ? '' : dir) + '/' + name
        const st = JSON.parse(await cli('stat', '--json', path))
        lines.push(`${path} ${st.kind} ${st.size} ${st.mode}`)
        if (st.kind === 'dir') await walk(path)
      }
    }
    await walk('/')
    const status = JSON.parse(await cli('status', '--json'))
    lines.push(`chunks ${status.chunks.total} stored ${status.bytesStored}`)
    lines.push(`local ${(await readdir(work)).sort().join(',')}`)
    return lines.join('\n')
  }
  const fails = async (args: string[], re: RegExp, opts: { data?: boolean } = {}): Promise<void> => {
    const r = await darkfs(opts.data === false ? args : ['--data', data, ...args])
    assert.notEqual(r.code, 0, `darkfs ${args.join(' ')} should fail`)
    // a usage error (exit 2) may follow its one line with the usage text
    const text = r.code === 2 ? r.stderr.split(/^usage:/m)[0] : r.stderr
    const lines = text.split('\n').filter(l => l.trim() !== '')
    assert.equal(lines.length, 1, `darkfs ${args.join(' ')}: one line on stderr, got:\n${r.stderr}`)
    assert.match(lines[0], /^darkfs: /)
    assert.match(lines[0], re)
    assert.doesNotMatch(lines[0], /\n\s+at |TypeError|undefined/, 'no stack trace or internal error')
  }

  before(async () => {
    data = join(await tempDir(t), 'data')
    work = await tempDir(t)
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'])
    content = randomBytes((1 << 20) + 5)
    await writeFile(join(work, 'file.bin'), content)
    await mkdir(join(work, 'adir'))
    await cli('mkdir', '-p', '/d/e')
    await cli('put', join(work, 'file.bin'), '/d/file.bin')
  })

  it('bad paths: relative, empty, too long a name, into a file, cycles, the root', async () => {
    const before = await snapshot()
    await fails(['mkdir', 'relative/path'], /absolute|ENOENT|EINVAL/)
    await fails(['mkdir', ''], /absolute|ENOENT|EINVAL|takes/)
    await fails(['mkdir', '/' + 'x'.repeat(256)], /ENAMETOOLONG/)
    await fails(['mkdir', '/d/file.bin/sub'], /ENOTDIR/)
    await fails(['mkdir', '/no/such/parent'], /ENOENT/)
    await fails(['mv', '/d', '/d/e/inside'], /EINVAL/)
    await fails(['mv', '/nope', '/x'], /ENOENT/)
    await fails(['rm', '-r', '/'], /EBUSY|EPERM|EINVAL|root/)
    await fails(['rm', '/d'], /EISDIR|ENOTEMPTY|EPERM/)
    await fails(['cat', '/d'], /EISDIR/)
    await fails(['put', join(work, 'file.bin'), '/d/file.bin/under'], /ENOTDIR/)
    await fails(['put', join(work, 'file.bin'), '/d/' + 'y'.repeat(300)], /ENAMETOOLONG/)
    // refused while the upload is still going: the reply, not EPIPE (an exit 141 with no line)
    const big = join(await tempDir(t), 'big.bin')
    await writeFile(big, randomBytes(48 << 20))
    for (let i = 0; i < 3; i++) await fails(['put', big, '/d/' + 'y'.repeat(300)], /ENAMETOOLONG/)
    await fails(['put', big, '/d/nodir/big.bin'], /ENOENT/)
    assert.equal(await snapshot(), before)
  })

  it('bad local files: a directory as LOCAL, get into a missing directory or onto a directory', async () => {
    const before = await snapshot()
    await fails(['put', join(work, 'adir'), '/adir'], /EISDIR|not a (regular )?file/)
    await fails(['get', '/d/file.bin', join(work, 'missing-dir', 'out.bin')], /ENOENT/)
    await fails(['get', '/d/file.bin', join(work, 'adir')], /EISDIR/)
    await fails(['get', '/d/nope.bin', join(work, 'out.bin')], /ENOENT/)
    assert.equal(await snapshot(), before)
    assert.deepEqual(await readFile(join(work, 'file.bin')), content)
  })

  it('bad arguments and flags: counts, unknown flags, repeated flags, bad versions', async () => {
    const before = await snapshot()
    await fails(['put', join(work, 'file.bin')], /put takes LOCAL PATH/)
    await fails(['mv', '/d'], /mv takes/)
    await fails(['stat'], /stat takes PATH/)
    await fails(['mkdir', '-q', '/z'], /unknown option -q/)
    await fails(['rm', '--force', '/d'], /unknown option --force/)
    await fails(['--data', data, 'status'], /--data given more than once/)
    await fails(['cat', '/d/file.bin@not-a-version'], /no such version|ENOENT/)
    await fails(['log', '/d'], /EINVAL.*not a regular file|EISDIR/)
    assert.equal(await snapshot(), before)
  })

  it('bad `up` and `init` input: flags without values, bad multiaddrs, rates and key files', async () => {
    const other = join(await tempDir(t), 'other')
    await fails(['init', '--data', other], /--new-network|--network-key/, { data: false })
    await fails(['init', '--data', other, '--network-key', join(work, 'nope.key')], /ENOENT|nope\.key/, { data: false })
    await writeFile(join(work, 'bad.key'), 'not a key\n')
    await fails(['init', '--data', other, '--network-key', join(work, 'bad.key')], /network key/i, { data: false })
    assert.deepEqual(await readdir(join(other, '..')), [], 'a refused init writes nothing')
    await fails(['up', '--data', data, '--listen'], /--listen needs a value/, { data: false })
    await fails(['up', '--data', data, '--listen', 'not-a-multiaddr'], /multiaddr|address|already running/i, { data: false })
    await fails(['up', '--data', data, '--max-upload', 'fast'], /rate|max-upload|already running/i, { data: false })
    await fails(['up', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'], /already running/, { data: false })
    await fails(['up', '--data', data, 'extra'], /up takes no arguments|already running/, { data: false })
    await cli('status')
  })

  it('the control API answers bad calls with a named error and keeps serving', async () => {
    const before = await snapshot()
    const client = new ControlClient(data)
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['stat without a path', async () => await client.get('/v1/files/stat')],
      ['stat of a relative path', async () => await client.get('/v1/files/stat?path=42')],
      ['an unknown route', async () => await client.request('POST', '/v1/nosuchop', ['/'])],
      ['mkdir with an object for a path', async () => await client.request('POST', '/v1/files/mkdir', { path: { path: '/x' } })],
      ['rename to null', async () => await client.request('POST', '/v1/files/rename', { from: '/d', to: null })],
      ['a read of an over-long name', async () => await client.readFile('/' + 'z'.repeat(5000))]
    ]
    for (const [what, call] of calls) {
      const err: any = await call().then(() => undefined, (e: unknown) => e)
      assert.ok(err instanceof Error, `${what} should fail`)
      assert.match(err.name, /^[A-Z][A-Za-z]+Error$|^E[A-Z]+$/, `a named error for ${what}: ${err.name} ${err.message}`)
    }
    assert.equal(await snapshot(), before)
  })
})
