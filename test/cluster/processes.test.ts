import assert from 'node:assert/strict'
import { randomBytes, createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, upNetwork } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('real `darkfs up` processes on loopback TCP', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  const N = 5
  const dirs: string[] = []
  const hosts: Up[] = []
  let work: string

  const allPeersKnown = async (): Promise<boolean> => {
    for (const d of dirs) {
      const r = await darkfs(['--data', d, 'peers', '--json'])
      if (r.code !== 0 || JSON.parse(r.stdout).length !== N - 1) return false
    }
    return true
  }

  before(async () => {
    const net = await upNetwork(t, await tempDir(t, 'darkfs-procs-'), N)
    dirs.push(...net.dirs)
    hosts.push(...net.hosts)
    work = await tempDir(t)
    // every test needs the full mesh (`status.peers`, reads from every host): wait for it here,
    // not in the first test
    await until('all peers known', allPeersKnown, 30_000)
  })

  it('darkfs up --join: every host lists every other in `darkfs peers`', async () => {
    await until('all peers known', allPeersKnown, 30_000)
    const ids = await Promise.all(dirs.map(async d => JSON.parse((await darkfs(['--data', d, 'status', '--json'])).stdout).peerId))
    const peersOf0 = JSON.parse((await darkfs(['--data', dirs[0], 'peers', '--json'])).stdout).map((p: any) => p.id).sort()
    assert.deepEqual(peersOf0, ids.slice(1).sort())
  })

  it('close-to-open: after put returns on one host, cat on the others shows the new content', async () => {
    for (let round = 0; round < 3; round++) {
      const text = `round ${round} ${randomBytes(8).toString('hex')}\n`
      await writeFile(join(work, 'note'), text)
      const w = round % N
      assert.equal((await darkfs(['--data', dirs[w], 'put', join(work, 'note'), '/note.txt'])).code, 0)
      for (let i = 0; i < N; i++) {
        if (i === w) continue
        await until(`host ${i} reads round ${round}`, async () => (await darkfs(['--data', dirs[i], 'cat', '/note.txt'])).stdout === text, 10_000)
      }
    }
  })

  it('a 12 MiB file put on one host comes back byte-identical from every host', async () => {
    const bytes = randomBytes(12 << 20)
    await writeFile(join(work, 'big'), bytes)
    const put = await darkfs(['--data', dirs[1], 'put', join(work, 'big'), '/big.bin'])
    assert.equal(put.code, 0, `put failed: ${put.stderr}`)
    for (let i = 0; i < N; i++) {
      await until(`host ${i} sees /big.bin`, async () => (await darkfs(['--data', dirs[i], 'stat', '/big.bin'])).code === 0)
      const out = join(work, `big-${i}`)
      const r = await darkfs(['--data', dirs[i], 'get', '/big.bin', out])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(sha(await readFile(out)), sha(bytes))
    }
    const status = JSON.parse((await darkfs(['--data', dirs[1], 'status', '--json'])).stdout)
    assert.equal(status.peers, N - 1)
    assert.equal(status.chunks.lost, 0)
  })

  it('a host started with another network key is refused, and says why', async () => {
    const other = join(await tempDir(t), 'other')
    assert.equal((await darkfs(['init', '--data', other, '--new-network'])).code, 0)
    const r = await darkfs(['up', '--data', other, '--listen', '/ip4/127.0.0.1/tcp/0', '--join', hosts[0].addresses[0]], { timeoutMs: 20_000 })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /network key mismatch/)
  })
})
