// <data>/config.json (issue 13): every `up` flag has a key, `up` reads it, a flag wins over its
// key, and a file with an unknown key or a value of the wrong type is refused with one line
// naming the key. `--log-format json` (here set from the file) prints log lines as JSON objects.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { COMMANDS, configKeys, FLAG_ONLY } from '../../node/cli/index.ts'

const listen = ['--listen', '/ip4/127.0.0.1/tcp/0']

describe('darkfs up reads <data>/config.json (real processes)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  const fresh = async (extra: Record<string, unknown>): Promise<string> => {
    const dir = join(await tempDir(t), 'h')
    assert.equal((await darkfs(['init', '--data', dir, '--new-network'])).code, 0)
    const file = join(dir, 'config.json')
    await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), ...extra }, null, 2))
    return dir
  }

  it('every up flag has a key but the two that make the data dir', () => {
    assert.deepEqual([...configKeys(), ...FLAG_ONLY].sort(), Object.keys(COMMANDS.up.options).sort())
    assert.deepEqual([...FLAG_ONLY].sort(), ['init-if-needed', 'invite'])
  })

  it('keys take effect (announce, log, log-format); a flag overrides its key; --join keeps the other keys', async () => {
    const dir = await fresh({ announce: ['/ip4/10.11.12.13/tcp/4001'], log: 'info', 'log-format': 'json', redundancy: 1 })
    // a join address nobody answers: the host says so on stderr, as a JSON line here
    const host = await up(t, ['--data', dir, ...listen, '--join', '/ip4/127.0.0.1/tcp/9/p2p/12D3KooWMGRiHZGw7wNVxAcrY4FNNBHykJqDdbLVxQH4tCDW6HUQ'])
    assert.ok(host.addresses.length > 0 && host.addresses.every(a => a.startsWith('/ip4/10.11.12.13/tcp/4001/p2p/')), host.addresses.join(' '))
    await until('the host says it has no peer', () => /no peer reachable yet/.test(host.stderr()), 30_000)
    const lines = host.stderr().split('\n').filter(l => l !== '')
    const records = lines.map(l => {
      try { return JSON.parse(l) } catch { assert.fail(`not a JSON line: ${l}`) }
    })
    for (const r of records) {
      assert.deepEqual(Object.keys(r).sort(), ['level', 'msg', 'namespace', 'time'], JSON.stringify(r))
      assert.ok(!Number.isNaN(Date.parse(r.time)) && r.time.endsWith('Z'), r.time)
      assert.ok(['error', 'info', 'trace'].includes(r.level), r.level)
      assert.match(r.namespace, /^darkfs:/)
      assert.equal(typeof r.msg, 'string')
      assert.ok(!r.msg.includes('\u001b'), 'no colour codes')
    }
    assert.ok(records.some(r => r.namespace === 'darkfs:cli' && /no peer reachable yet/.test(r.msg)), lines.join('\n'))
    // `--log info` from the file: the parts' own log lines are there, namespace without the level
    assert.ok(records.some(r => r.namespace !== 'darkfs:cli' && r.level === 'info'), lines.join('\n'))
    await host.stop()
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))
    assert.equal(config.join.length, 1)
    assert.deepEqual(config.announce, ['/ip4/10.11.12.13/tcp/4001'])
    assert.equal(config.redundancy, 1)

    const flagged = await up(t, ['--data', dir, ...listen, '--announce', '/ip4/10.9.9.9/tcp/1', '--log-format', 'text'])
    assert.ok(flagged.addresses.every(a => a.startsWith('/ip4/10.9.9.9/tcp/1/p2p/')), flagged.addresses.join(' '))
    await until('the host says it has no peer', () => /no peer reachable yet/.test(flagged.stderr()), 30_000)
    assert.match(flagged.stderr(), /^darkfs: no peer reachable yet/m)
    await flagged.stop()
  })

  for (const [what, extra, re] of [
    ['an unknown key', { mountpoint: '/mnt' }, /config\.json: unknown key "mountpoint" \(keys are the flags of darkfs up: listen, join, /],
    ['a flag-only key', { invite: 'x' }, /config\.json: unknown key "invite" \(--invite is a command-line flag only\)/],
    ['a string where a list goes', { 'allow-from': '10.0.0.0/8' }, /config\.json: key "allow-from" takes a list of strings, got a string/],
    ['a string where a switch goes', { 'no-restart': 'yes' }, /config\.json: key "no-restart" takes true or false, got a string/],
    ['an object where a value goes', { mount: { dir: '/mnt' } }, /config\.json: key "mount" takes a string \(DIR\), got an object/],
    ['a bad value of a good key', { log: 'loud' }, /config\.json: key "log": --log takes one of silent, error, info, debug, trace, got "loud"/],
    ['a bad number of a good key', { redundancy: 99 }, /config\.json: key "redundancy": --redundancy takes a whole number of hosts/],
    ['a bad data-fragments', { 'data-fragments': 0 }, /config\.json: key "data-fragments": --data-fragments takes auto or a whole number of data fragments per chunk from 1 to 32, got "0"/],
    ['a data-fragments too wide for its redundancy', { 'data-fragments': 30, redundancy: 3 }, /config\.json: key "data-fragments": --data-fragments 30 with redundancy 3 makes 33 fragments per chunk/]
  ] as const) {
    it(`a file with ${what} is refused with one line naming it; nothing starts`, async () => {
      const dir = await fresh(extra)
      const before = await readFile(join(dir, 'config.json'), 'utf8')
      const r = await darkfs(['up', '--data', dir, ...listen])
      assert.equal(r.code, 2, r.stderr)
      const lines = r.stderr.trim().split('\n')
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0], re)
      assert.equal(await readFile(join(dir, 'config.json'), 'utf8'), before)
    })
  }

  it('data-fragments: the key sets the policy `status` shows (a number or "auto"), the flag overrides it', async () => {
    const dir = await fresh({ 'data-fragments': 'auto', redundancy: 3 })
    const status = async (): Promise<any> => {
      const r = await darkfs(['--data', dir, 'status', '--json'])
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout)
    }
    const host = await up(t, ['--data', dir, ...listen])
    assert.deepEqual((await status()).placement, { k: 1, m: 0, redundancy: 3, dataFragments: 'auto' })
    await host.stop()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')), 'data-fragments': 12 }))
    const numbered = await up(t, ['--data', dir, ...listen])
    assert.equal((await status()).placement.dataFragments, 12)
    await numbered.stop()
    const flagged = await up(t, ['--data', dir, ...listen, '--data-fragments', '6'])
    const s = await status()
    assert.deepEqual(s.placement, { k: 1, m: 0, redundancy: 3, dataFragments: 6 })
    await flagged.stop()
  })

  it('a file that is not JSON is refused with one line', async () => {
    const dir = await fresh({})
    await writeFile(join(dir, 'config.json'), '{"listen": [')
    const r = await darkfs(['up', '--data', dir, ...listen])
    assert.equal(r.code, 2, r.stderr)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.match(r.stderr, /config\.json is not valid JSON/)
  })
})
