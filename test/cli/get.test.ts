// `darkfs get` writes its output atomically (issue 17): a get that fails or is cancelled part-way
// leaves nothing under the target name (and an existing file there untouched), and no temp file;
// and a holder that dies mid-transfer does not end the get: it fetches from the others.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { DARKFS, darkfs, up, upNetwork } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'

/**
 * Until a get's temp file in `dir` holds some of its `size` bytes but under half: what is left
 * takes far longer than a signal or a kill to arrive.
 */
async function partWritten (dir: string, size: number, timeoutMs: number): Promise<void> {
  await until('the get has written part of its temp file', async () => {
    for (const n of await readdir(dir)) {
      const got = n.endsWith('.part') ? (await stat(join(dir, n)).catch(() => undefined))?.size : undefined
      if (got !== undefined && got > 0 && got < size / 2) return true
    }
    return false
  }, timeoutMs)
}

describe('darkfs get (real processes)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('a get interrupted part-way (Ctrl-C) leaves the target as it was and no temp file; a whole get replaces it', async () => {
    const root = await tempDir(t)
    const data = join(root, 'data')
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'])
    const big = randomBytes(96 << 20)
    const local = join(root, 'big.bin')
    await writeFile(local, big)
    const put = await darkfs(['--data', data, 'put', local, '/big.bin'], { timeoutMs: 300_000 })
    assert.equal(put.code, 0, put.stderr)

    const outDir = join(root, 'out')
    await (await import('node:fs/promises')).mkdir(outDir)
    const target = join(outDir, 'big.bin')
    await writeFile(target, 'the old content')
    // stopped (Ctrl-C) once its temp file holds some of the bytes
    const child = spawn(DARKFS, ['--data', data, 'get', '/big.bin', target], { stdio: ['ignore', 'ignore', 'pipe'] })
    const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
    await partWritten(outDir, big.byteLength, 60_000)
    child.kill('SIGINT')
    assert.notEqual(await exited, 0)
    assert.equal(await readFile(target, 'utf8'), 'the old content', 'the target is untouched')
    assert.deepEqual((await readdir(outDir)).sort(), ['big.bin'], 'no temp file is left')

    const whole = await darkfs(['--data', data, 'get', '/big.bin', target], { timeoutMs: 300_000 })
    assert.equal(whole.code, 0, whole.stderr)
    assert.ok((await readFile(target)).equals(big))
    assert.deepEqual((await readdir(outDir)).sort(), ['big.bin'])
  })

  it('a holder killed mid-transfer: the get fetches from the remaining holders and finishes whole', async function () {
    this.timeout(900_000)
    const root = await tempDir(t)
    const { dirs, hosts } = await upNetwork(t, root, 6)
    for (const dir of dirs) {
      await until(`${dir} has its five peers`, async () => JSON.parse((await darkfs(['--data', dir, 'peers', '--json'])).stdout || '[]').length === 5, 90_000)
    }
    const big = randomBytes(128 << 20)
    const local = join(root, 'big.bin')
    await writeFile(local, big)
    const put = await darkfs(['--data', dirs[0], 'put', local, '/big.bin'], { timeoutMs: 600_000 })
    assert.equal(put.code, 0, put.stderr)
    const reader = dirs[5]
    await until('the reader sees the file', async () => (await darkfs(['--data', reader, 'stat', '/big.bin'])).code === 0, 60_000)

    const outDir = join(root, 'out')
    await (await import('node:fs/promises')).mkdir(outDir)
    const target = join(outDir, 'big.bin')
    const child = spawn(DARKFS, ['--data', reader, 'get', '/big.bin', target], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
    await partWritten(outDir, big.byteLength, 120_000)
    // a holder of every chunk (k=4, m=2 on six hosts: each host holds one fragment of each) dies
    assert.notEqual(await hosts[2].stop('SIGKILL'), 0)
    assert.equal(await exited, 0, stderr)
    assert.ok((await readFile(target)).equals(big), 'the got file is the put one')
    assert.deepEqual((await readdir(outDir)).sort(), ['big.bin'], 'no temp file is left')
  })
})
