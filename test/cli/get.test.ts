// `darkfs get` writes its output atomically (issue 17): a get that fails or is cancelled part-way
// leaves nothing under the target name (and an existing file there untouched), and no temp file.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { DARKFS, darkfs, up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'

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
    await until('the get has written part of its temp file', async () => {
      for (const n of await readdir(outDir)) {
        // under half written: what is left takes far longer than the signal to arrive
        const size = n.endsWith('.part') ? (await stat(join(outDir, n)).catch(() => undefined))?.size : undefined
        if (size !== undefined && size > 0 && size < big.byteLength / 2) return true
      }
      return false
    }, 60_000)
    child.kill('SIGINT')
    assert.notEqual(await exited, 0)
    assert.equal(await readFile(target, 'utf8'), 'the old content', 'the target is untouched')
    assert.deepEqual((await readdir(outDir)).sort(), ['big.bin'], 'no temp file is left')

    const whole = await darkfs(['--data', data, 'get', '/big.bin', target], { timeoutMs: 300_000 })
    assert.equal(whole.code, 0, whole.stderr)
    assert.ok((await readFile(target)).equals(big))
    assert.deepEqual((await readdir(outDir)).sort(), ['big.bin'])
  })
})
