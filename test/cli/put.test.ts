// `darkfs put` of a large file (issue 17, item 2): Ctrl-C cancels it, the path stays as it was,
// and every block it stored, on the writer and on its peers, is deleted at once (not left to
// GC's retention of days); a file that shared chunks with it is untouched. Real processes.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { DARKFS, darkfs, up, upNetwork } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'

const MiB = 1 << 20

/** Bytes of the block files under a data dir's store (what `du` counts, from the disk itself). */
async function storeBytes (dataDir: string): Promise<number> {
  const root = join(dataDir, 'store', 'blocks')
  let total = 0
  for (const d of await readdir(root).catch(() => [] as string[])) {
    for (const n of await readdir(join(root, d)).catch(() => [] as string[])) {
      total += (await stat(join(root, d, n)).catch(() => ({ size: 0 }))).size
    }
  }
  return total
}

describe('darkfs put (real processes)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('Ctrl-C during a put: exit 130, no file, and every host\'s store back to its figure before the put', async () => {
    const root = await tempDir(t)
    const { dirs } = await upNetwork(t, root, 3)
    for (const dir of dirs) {
      await until(`${dir} has its two peers`, async () => JSON.parse((await darkfs(['--data', dir, 'peers', '--json'])).stdout || '[]').length === 2, 60_000)
    }
    const writer = dirs[0]
    // a file already there, whose chunks the big one starts with (equal chunks are stored once)
    const shared = randomBytes(2 * MiB)
    const small = join(root, 'small.bin')
    await writeFile(small, shared)
    const first = await darkfs(['--data', writer, 'put', small, '/small.bin'], { timeoutMs: 120_000 })
    assert.equal(first.code, 0, first.stderr)
    const big = join(root, 'big.bin')
    await writeFile(big, Buffer.concat([shared, randomBytes(254 * MiB)]))
    // the figures settle once the small file's placement and handover are done
    let before: number[] = []
    await until('the stores settle', async () => {
      const now = await Promise.all(dirs.map(storeBytes))
      const same = now.every((b, i) => b === before[i])
      before = now
      return same && now.every(b => b > 0)
    }, 60_000)

    const child = spawn(DARKFS, ['--data', writer, 'put', big, '/big.bin'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
    // stopped once the writer and a peer hold some of its blocks: well under half of it
    await until('the put has stored and placed part of the file', async () => {
      const now = await Promise.all(dirs.map(storeBytes))
      return now[0] - before[0] > 8 * MiB && now.slice(1).some((b, i) => b - before[i + 1] > 8 * MiB)
    }, 120_000)
    child.kill('SIGINT')
    assert.equal(await exited, 130, stderr)
    assert.equal(stderr.includes('put cancelled'), true, stderr)
    assert.equal(stderr.includes('\r'), false, 'no progress line on a pipe')
    const st = await darkfs(['--data', writer, 'stat', '/big.bin'])
    assert.notEqual(st.code, 0, 'no /big.bin in the tree')
    // GC keeps unreferenced blocks for days: this is the abandoned write's own cleanup
    await until('every store is back to its figure before the put', async () => {
      const now = await Promise.all(dirs.map(storeBytes))
      return now.every((b, i) => b === before[i])
    }, 60_000).catch(async err => {
      throw new Error(`${(err as Error).message}: before ${before.join(', ')}, now ${(await Promise.all(dirs.map(storeBytes))).join(', ')}`)
    })
    const back = join(root, 'small.back')
    const got = await darkfs(['--data', dirs[1], 'get', '/small.bin', back], { timeoutMs: 60_000 })
    assert.equal(got.code, 0, got.stderr)
    assert.ok((await readFile(back)).equals(shared), 'the file that shared chunks with the cancelled put is whole')
  })
  it('progress (bytes, rate, ETA) is drawn on a terminal, and nothing on a pipe', async () => {
    const root = await tempDir(t)
    const data = join(root, 'data')
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'])
    const big = join(root, 'big.bin')
    await writeFile(big, randomBytes(48 * MiB))
    // a pipe: the outcome only
    const piped = await darkfs(['--data', data, 'put', big, '/piped.bin'], { timeoutMs: 120_000 })
    assert.equal(piped.code, 0, piped.stderr)
    assert.equal(piped.stderr, '')
    // a terminal (script(1) gives the command a pty)
    const cmd = [DARKFS, '--data', data, 'put', big, '/tty.bin'].map(a => `'${a}'`).join(' ')
    const tty = await new Promise<{ code: number | null, out: string }>(resolve => {
      const child = spawn('script', ['-qefc', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
      child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
      child.once('exit', code => { resolve({ code, out }) })
    })
    assert.equal(tty.code, 0, tty.out)
    assert.match(tty.out, /\r\x1b\[Kput [\d.]+ [KMG]?i?B of 48\.0 MiB placed \(\d+%\), [\d.]+ [KMG]?i?B stored, [\d.]+ [KMG]?i?B\/s, ETA [\d:?]+/, JSON.stringify(tty.out.slice(0, 400)))
  })
})
