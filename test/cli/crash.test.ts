import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('kill -9 of the host in the middle of a put', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('after restart the tree is consistent: each path holds its old version or the new one, never a torn file', async () => {
    const data = join(await tempDir(t), 'data')
    const work = await tempDir(t)
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const listen = ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0']
    let host = await up(t, listen)
    const oldBytes = randomBytes(2 << 20)
    const newBytes = randomBytes(48 << 20)
    await writeFile(join(work, 'old'), oldBytes)
    await writeFile(join(work, 'new'), newBytes)
    assert.equal((await darkfs(['--data', data, 'put', join(work, 'old'), '/existing.bin'])).code, 0)

    for (const delayMs of [30, 150, 400]) {
      const puts = [
        darkfs(['--data', data, 'put', join(work, 'new'), '/existing.bin']),
        darkfs(['--data', data, 'put', join(work, 'new'), `/fresh-${delayMs}.bin`])
      ]
      await new Promise(resolve => setTimeout(resolve, delayMs))
      await host.stop('SIGKILL')
      await Promise.all(puts)
      host = await up(t, listen)
      const existing = await darkfs(['--data', data, 'get', '/existing.bin', join(work, 'existing')], { timeoutMs: 60_000 })
      assert.equal(existing.code, 0, existing.stderr)
      const got = sha(await readFile(join(work, 'existing')))
      assert.ok([sha(oldBytes), sha(newBytes)].includes(got), `torn /existing.bin after kill at ${delayMs} ms`)
      const fresh = await darkfs(['--data', data, 'stat', '--json', `/fresh-${delayMs}.bin`])
      if (fresh.code === 0) {
        const st = JSON.parse(fresh.stdout)
        assert.equal(st.size, newBytes.byteLength, 'a new file appears only complete')
        const cat = await darkfs(['--data', data, 'get', `/fresh-${delayMs}.bin`, join(work, 'check')])
        assert.equal(cat.code, 0, cat.stderr)
        assert.equal(sha(await readFile(join(work, 'check'))), sha(newBytes))
      } else {
        assert.match(fresh.stderr, /ENOENT/)
      }
    }
  })
})
