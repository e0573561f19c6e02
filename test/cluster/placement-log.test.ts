import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'

/** A peer id as log lines print it (node/log.ts shortPeer). */
const short = (peer: string): string => peer.startsWith('12D3KooW') ? peer.slice(8, 16) : peer.slice(0, 8)

describe('placement logs (real `darkfs up` processes, the writer with --log debug)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  const N = 6

  it('one put across 6 hosts: the writer logs the chunk\'s placement, the peers chosen and their acknowledgements', async () => {
    const root = await tempDir(t, 'darkfs-placelog-')
    const dirs = Array.from({ length: N }, (_, i) => join(root, `h${i}`))
    for (const [i, dir] of dirs.entries()) {
      const r = await darkfs(i === 0 ? ['init', '--data', dir, '--new-network'] : ['init', '--data', dir, '--network-key', join(dirs[0], 'network.key')])
      assert.equal(r.code, 0, r.stderr)
    }
    // the writer logs at debug level by its flag alone (no DEBUG in its environment)
    const env = { DEBUG: '' }
    const writer = 1
    const listen = ['--listen', '/ip4/127.0.0.1/tcp/0']
    const hosts: Up[] = [await up(t, ['--data', dirs[0], ...listen], { env })]
    for (const [i, dir] of dirs.slice(1).entries()) {
      const log = i + 1 === writer ? ['--log', 'debug'] : []
      hosts.push(await up(t, ['--data', dir, ...listen, ...log, '--join', hosts[0].addresses[0]], { env }))
    }
    let stderr = ''
    hosts[writer].child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })

    const ids: string[] = await Promise.all(dirs.map(async d => JSON.parse((await darkfs(['--data', d, 'status', '--json'])).stdout).peerId))
    const others = ids.filter((_, i) => i !== writer).map(short)
    await until('the writer knows every host', async () => {
      const r = await darkfs(['--data', dirs[writer], 'peers', '--json'])
      return r.code === 0 && JSON.parse(r.stdout).length === N - 1
    }, 30_000)

    const work = await tempDir(t)
    await writeFile(join(work, 'one-chunk'), randomBytes(900 * 1024))
    const put = await darkfs(['--data', dirs[writer], 'put', join(work, 'one-chunk'), '/one-chunk.bin'])
    assert.equal(put.code, 0, put.stderr)

    // the placement: chunk, erasure parameters, and each fragment's hosts
    // (the file's manifest, a small replicated block, is placed too: the erasure-coded chunk is the one with k > 1)
    let chunk = ''
    await until('the placement line', () => {
      for (const m of stderr.matchAll(/darkfs:keeper:place chunk (\S{8}) \(k=(\d+) m=\d+, \d+ bytes\)/g)) {
        if (Number(m[2]) > 1) { chunk = m[1]; return true }
      }
      return false
    }, 20_000)
    const plan = new RegExp(`darkfs:keeper:place chunk ${chunk} \\(k=(\\d+) m=(\\d+), \\d+ bytes\\) of (\\d+) members, written on ${short(ids[writer])}: (.*)$`, 'm').exec(stderr)
    assert.ok(plan !== null, `no placement line for ${chunk} in:\n${stderr}`)
    assert.equal(Number(plan[1]) + Number(plan[2]), N, `k + m fragments, one per host: ${plan[0]}`)
    assert.equal(Number(plan[3]), N)
    for (const p of [short(ids[writer]), ...others]) assert.match(plan[4], new RegExp(`-> \\[[^\\]]*${p}`), `host ${p} in the plan: ${plan[0]}`)

    // the peers chosen: a push to each of the other hosts
    const pushing = new RegExp(`darkfs:keeper:place chunk ${chunk}: pushing (.*)$`, 'm').exec(stderr)
    assert.ok(pushing !== null, `no pushing line for ${chunk} in:\n${stderr}`)
    for (const p of others) assert.match(pushing[1], new RegExp(`f\\d+ to \\[[^\\]]*${p}`), `a push to ${p}: ${pushing[0]}`)

    // the acknowledgements: one from each, then the chunk is placed on all six
    await until('every acknowledgement and the placed line', () =>
      others.every(p => new RegExp(`chunk ${chunk}: f\\d+ acked by ${p}`).test(stderr)) &&
      new RegExp(`chunk ${chunk} placed: ${N} host\\(s\\) hold it`).test(stderr), 30_000)
    if (process.env.SHOW_LOG !== undefined) process.stdout.write(stderr)
  })
})
