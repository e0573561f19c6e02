// Invites end to end with real processes (issue 13): host A runs, `darkfs invite` prints one
// string, host B `up --invite STRING` on a fresh data dir joins and sees A's files; `init
// --invite` then `up` does the same in two steps. A mangled or expired invite is refused with
// one line and nothing is written; a data dir of another network refuses an invite.
import assert from 'node:assert/strict'
import { readFile, readdir, writeFile, access } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { encodeInvite, readInvite, readNetworkKey, INVITE_PREFIX } from '../../node/net/index.ts'

const listen = ['--listen', '/ip4/127.0.0.1/tcp/0']

describe('darkfs invite / up --invite / init --invite (real processes)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  let root: string
  let a: string
  let invite: string
  let aAddresses: string[]

  before(async () => {
    root = await tempDir(t)
    a = join(root, 'a')
    assert.equal((await darkfs(['init', '--data', a, '--new-network'])).code, 0)
    aAddresses = (await up(t, ['--data', a, ...listen])).addresses
    await writeFile(join(root, 'hello.txt'), 'hello from A\n')
    const put = await darkfs(['--data', a, 'put', join(root, 'hello.txt'), '/hello.txt'])
    assert.equal(put.code, 0, put.stderr)
    const r = await darkfs(['--data', a, 'invite', '--expires', '1h'])
    assert.equal(r.code, 0, r.stderr)
    invite = r.stdout.trim()
  })

  /** A refused command: one line on stderr, status 1 or 2, and `dir` never created. */
  const refused = async (args: string[], dir: string, re: RegExp): Promise<void> => {
    const r = await darkfs(args)
    assert.ok(r.code === 1 || r.code === 2, `exit ${r.code}: ${r.stderr}`)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0], re)
    await assert.rejects(access(dir), /ENOENT/, `${dir} was written`)
  }

  it('darkfs invite prints one line: darkfs-invite1:..., carrying A\'s address (loopback: nothing else exists here)', async () => {
    assert.equal(invite.split('\n').length, 1)
    assert.ok(invite.startsWith(INVITE_PREFIX), invite)
    assert.deepEqual(readInvite(invite).addresses, aAddresses)
    const help = await darkfs(['invite', '--help'])
    assert.match(help.stdout, /secret/)
  })

  it('up --invite on a fresh data dir: initialises, joins, and sees A\'s files', async () => {
    const b = join(root, 'b')
    const host = await up(t, ['--data', b, ...listen, '--invite', invite])
    assert.ok(host.lines.some(l => /^initialised .* from the invite/.test(l)), host.lines.join('\n'))
    assert.deepEqual(await readFile(join(b, 'network.key')), await readFile(join(a, 'network.key')))
    await until('B reads A\'s file', async () => {
      const r = await darkfs(['--data', b, 'cat', '/hello.txt'])
      return r.code === 0 && r.stdout === 'hello from A\n'
    }, 60_000)
    const config = JSON.parse(await readFile(join(b, 'config.json'), 'utf8'))
    assert.ok(config.join.length > 0 && config.join.every((x: string) => x.includes('/p2p/')), JSON.stringify(config))
  })

  it('init --invite, then a plain up, joins the same way (the old --network-key path is kept by the other tests)', async () => {
    const c = join(root, 'c')
    const r = await darkfs(['init', '--data', c, '--invite', invite])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /joins through \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    await up(t, ['--data', c, ...listen])
    await until('C reads A\'s file', async () => (await darkfs(['--data', c, 'cat', '/hello.txt'])).stdout === 'hello from A\n', 60_000)
  })

  it('a mangled invite (a character changed, cut short) is refused with one line; nothing is written', async () => {
    const body = invite.slice(INVITE_PREFIX.length)
    const i = Math.floor(body.length / 2)
    const changed = INVITE_PREFIX + body.slice(0, i) + (body[i] === 'A' ? 'B' : 'A') + body.slice(i + 1)
    const cut = invite.slice(0, invite.length - 5)
    for (const [n, bad] of [changed, cut].entries()) {
      const d = join(root, `mangled-${n}`)
      await refused(['up', '--data', d, ...listen, '--invite', bad], d, /^darkfs: not a usable darkfs invite: it is damaged or incomplete/)
      await refused(['init', '--data', d, '--invite', bad], d, /^darkfs: not a usable darkfs invite: it is damaged or incomplete/)
    }
  })

  it('an expired invite says it expired and when; nothing is written', async () => {
    const expiresAt = Math.floor(Date.now() / 1000) * 1000 - 60_000
    const old = encodeInvite({ networkKey: await readNetworkKey(join(a, 'network.key')), addresses: ['/ip4/127.0.0.1/tcp/1/p2p/12D3KooWMGRiHZGw7wNVxAcrY4FNNBHykJqDdbLVxQH4tCDW6HUQ'], expiresAt })
    const d = join(root, 'expired')
    const when = new Date(expiresAt).toISOString().replace(/\./g, '\\.')
    await refused(['up', '--data', d, ...listen, '--invite', old], d, new RegExp(`^darkfs: this invite expired at ${when}`))
    await refused(['init', '--data', d, '--invite', old], d, new RegExp(`^darkfs: this invite expired at ${when}`))
  })

  it('up --invite on a data dir of another network is refused with one line; the dir is left as it was', async () => {
    const other = join(root, 'other')
    assert.equal((await darkfs(['init', '--data', other, '--new-network'])).code, 0)
    const before = { files: (await readdir(other)).sort(), config: await readFile(join(other, 'config.json'), 'utf8') }
    const r = await darkfs(['up', '--data', other, ...listen, '--invite', invite])
    assert.equal(r.code, 2, r.stderr)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0], /is already in another network/)
    assert.deepEqual({ files: (await readdir(other)).sort(), config: await readFile(join(other, 'config.json'), 'utf8') }, before)
  })

  it('the invite route refuses a bad expiry with 400 and a clear message', async () => {
    const r = await darkfs(['--data', a, 'invite', '--expires', '3 weeks'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--expires takes a duration such as 90s, 30m, 24h or 7d/)
  })
})
