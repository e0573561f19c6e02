// `darkfs up --cache MIB` (config key `cache`): the bound of the decoded-chunk cache, which was a
// fixed 128 MiB whatever the machine (cache38). The bound a host runs with reaches its cache: the
// cache holds no more than it once more chunks than fit went through it, as /metrics shows. A bad
// value is refused with one line naming the flag (or the key), before anything starts.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { readFile, writeFile } from 'node:fs/promises'
import { totalmem } from 'node:os'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { defaultCacheBytes } from '../../node/data/index.ts'

const listen = ['--listen', '/ip4/127.0.0.1/tcp/0']
const MiB = 1 << 20

/** The value of an unlabelled series of a host's /metrics (over its control socket). */
async function metric (dir: string, name: string): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = request({ socketPath: join(dir, 'control.sock'), path: '/metrics', method: 'GET' }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => { resolve(body) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  assert.ok(m !== null, `${name} in /metrics`)
  return Number(m[1])
}

describe('darkfs up --cache: the bound of the chunk cache (real processes)', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  const fresh = async (extra: Record<string, unknown> = {}): Promise<string> => {
    const dir = join(await tempDir(t), 'h')
    assert.equal((await darkfs(['init', '--data', dir, '--new-network'])).code, 0)
    const file = join(dir, 'config.json')
    await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), ...extra }, null, 2))
    return dir
  }

  it('the flag bounds the cache: 6 MiB written and read back through a 2 MiB cache leave it at 2 MiB at most', async () => {
    const dir = await fresh()
    const host = await up(t, ['--data', dir, ...listen, '--cache', '2'])
    const local = join(await tempDir(t), 'six')
    const bytes = new Uint8Array(6 * MiB)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >>> 20)) & 0xff
    await writeFile(local, bytes)
    assert.equal((await darkfs(['--data', dir, 'put', local, '/six'])).code, 0)
    const got = await darkfs(['--data', dir, 'get', '/six', `${local}.back`])
    assert.equal(got.code, 0, got.stderr)
    assert.equal(Buffer.compare(await readFile(`${local}.back`), bytes), 0)
    assert.equal(await metric(dir, 'darkfs_chunk_cache_max_bytes'), 2 * MiB)
    const held = await metric(dir, 'darkfs_chunk_cache_bytes')
    assert.ok(held > 0 && held <= 2 * MiB, `the cache holds ${held} bytes`)
    await host.stop()
  })

  it('the config key sets it, the flag wins over the key, and without either it is the default for this machine\'s RAM', async () => {
    const dir = await fresh({ cache: 3 })
    const keyed = await up(t, ['--data', dir, ...listen])
    assert.equal(await metric(dir, 'darkfs_chunk_cache_max_bytes'), 3 * MiB)
    await keyed.stop()
    const flagged = await up(t, ['--data', dir, ...listen, '--cache', '0'])
    assert.equal(await metric(dir, 'darkfs_chunk_cache_max_bytes'), 0)
    await flagged.stop()
    const plain = await fresh()
    const host = await up(t, ['--data', plain, ...listen])
    assert.equal(await metric(plain, 'darkfs_chunk_cache_max_bytes'), defaultCacheBytes())
    await host.stop()
  })

  it('the default: 128 MiB within a sixteenth of the RAM, else that sixteenth, at least 32 MiB', () => {
    const GiB = 1 << 30
    assert.equal(defaultCacheBytes(64 * GiB), 128 * MiB)
    assert.equal(defaultCacheBytes(2 * GiB), 128 * MiB)
    assert.equal(defaultCacheBytes(1 * GiB), 64 * MiB)
    assert.equal(defaultCacheBytes(1.5 * GiB), 96 * MiB)
    assert.equal(defaultCacheBytes(256 * MiB), 32 * MiB)
  })

  const most = Math.floor(totalmem() / MiB)
  for (const bad of ['-1', '1.5', 'lots', '64MiB', '', String(most + 1)]) {
    it(`--cache ${JSON.stringify(bad)} is refused with one line naming the flag; nothing starts`, async () => {
      const dir = await fresh()
      const r = await darkfs(['up', '--data', dir, ...listen, `--cache=${bad}`])
      assert.equal(r.code, 2, r.stderr)
      const lines = r.stderr.trim().split('\n')
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0], new RegExp(`--cache takes a whole number of MiB from 0 to ${most} \\(this machine's memory\\), got ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
    })
  }

  it('a bad config key is refused with one line naming the key', async () => {
    const dir = await fresh({ cache: 'big' })
    const r = await darkfs(['up', '--data', dir, ...listen])
    assert.equal(r.code, 2, r.stderr)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0], /config\.json: key "cache": --cache takes a whole number of MiB from 0 to \d+ \(this machine's memory\), got "big"/)
  })
})
