// test/helpers/posix-ops.py, the runner of model.test.ts, on a plain directory. Its --walk reads a
// tree and must never make one: model.test.ts walks host B's copy of a run until it has arrived,
// and a walk that made the missing root made a directory of that name on B, racing the one on
// its way from A (small41). A missing root is an error the caller polls past.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Teardown, tempDir } from '../../harness/tmp.ts'

const exec = promisify(execFile)
const OPS_PY = join(dirname(fileURLToPath(import.meta.url)), '../helpers/posix-ops.py')

describe('test/helpers/posix-ops.py', function () {
  const t = new Teardown()
  let dir: string
  beforeEach(async () => { dir = await tempDir(t, 'darkfs-posix-ops-') })
  afterEach(async () => { await t.run() })

  it('--walk of a missing root fails and makes nothing', async () => {
    const root = join(dir, 'missing')
    await assert.rejects(exec('python3', [OPS_PY, root, '--walk'], { cwd: '/' }), (err: any) => err.code !== 0 && /missing/.test(String(err.stderr)))
    assert.equal(existsSync(root), false, 'the walk made its root')
  })

  it('--walk of a root prints its tree', async () => {
    const root = join(dir, 'there')
    await mkdir(root)
    await writeFile(join(root, 'f'), 'x')
    const r = await exec('python3', [OPS_PY, root, '--walk'], { cwd: '/' })
    const final = JSON.parse(r.stdout).final
    assert.deepEqual(final['./'], ['f'])
    assert.equal(final.f.size, 1)
  })

  it('a run of calls makes its missing root', async () => {
    const root = join(dir, 'run')
    const ops = join(dir, 'ops.json')
    await writeFile(ops, JSON.stringify([['mkdir', 'd']]))
    const r = await exec('python3', [OPS_PY, root, ops], { cwd: '/' })
    const lines = r.stdout.trim().split('\n').map(l => JSON.parse(l))
    assert.deepEqual(lines[0].r, { ok: null })
    assert.deepEqual(lines[1].final['./'], ['d'])
  })
})
