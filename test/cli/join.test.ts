// Joining (issue 17): a join address that is down at start is redialled until a member answers,
// `up` says so while it has no peer, and a malformed join address is refused and never saved.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'

/** A loopback TCP port free right now (the seed listens on it later). */
async function freePort (): Promise<number> {
  const srv = createServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>(resolve => srv.close(() => { resolve() }))
  return port
}

describe('darkfs up --join (real processes)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('hosts started before their seed keep redialling it, say they have no peer, and join once it is up', async () => {
    const root = await tempDir(t)
    const [seed, a, b] = ['seed', 'a', 'b'].map(n => join(root, n))
    const made = await darkfs(['init', '--data', seed, '--new-network'])
    assert.equal(made.code, 0, made.stderr)
    const seedId = /peer id (\S+)/.exec(made.stdout)![1]
    for (const d of [a, b]) assert.equal((await darkfs(['init', '--data', d, '--network-key', join(seed, 'network.key')])).code, 0)
    const port = await freePort()
    const seedAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${seedId}`
    const listen = ['--listen', '/ip4/127.0.0.1/tcp/0']
    const early = [await up(t, ['--data', a, ...listen, '--join', seedAddr]), await up(t, ['--data', b, ...listen, '--join', seedAddr])]
    // said right after `ready` (stderr, beside the stdout lines)
    for (const h of early) await until('the host says it has no peer', () => /no peer reachable yet: retrying .*tcp\/\d+\/p2p\/.* with backoff/.test(h.stderr()), 10_000)
    await up(t, ['--data', seed, '--listen', `/ip4/127.0.0.1/tcp/${port}`])
    await until('both early hosts joined through the seed', async () => {
      for (const d of [a, b]) {
        const r = await darkfs(['--data', d, 'peers', '--json'])
        if (r.code !== 0 || !(JSON.parse(r.stdout) as Array<{ id: string }>).some(p => p.id === seedId)) return false
      }
      return true
    }, 60_000)
    for (const h of early) await until('the host says it joined', () => /joined the network/.test(h.stderr()), 10_000)
  })

  it('a malformed join address is refused with one line and not saved', async () => {
    const dir = join(await tempDir(t), 'h')
    assert.equal((await darkfs(['init', '--data', dir, '--new-network'])).code, 0)
    const r = await darkfs(['up', '--data', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--join', 'not-an-address'])
    assert.notEqual(r.code, 0)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0], /^darkfs: --join: not a multiaddr: "not-an-address"/)
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))
    assert.deepEqual(config.join, [])
  })
})
