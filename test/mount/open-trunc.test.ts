// open(2) with O_RDONLY|O_TRUNC on a real mount: Linux cuts the file (the kernel asks for write
// permission, as for any O_TRUNC, then passes the flag on under atomic_o_trunc), so ext4 and
// tmpfs leave it empty; darkfs must too. Found by model.test.ts (seed 7).
import assert from 'node:assert/strict'
import { mountEach, ok, sh, testUser } from '../helpers/fuse-mount.ts'

const OPEN_RDONLY_TRUNC = 'python3 -c \'import os; os.close(os.open("f", os.O_RDONLY | os.O_TRUNC))\''

describe('mount: open O_RDONLY|O_TRUNC', function () {
  this.timeout(60_000)
  const here = mountEach()

  it('cuts the file to 0 bytes, as ext4 and tmpfs do', async function () {
    const { m } = here()
    await ok('head -c 3000000 /dev/urandom > f', { cwd: m.dir })
    await ok(OPEN_RDONLY_TRUNC, { cwd: m.dir })
    assert.equal(await ok('stat -c %s f && wc -c < f', { cwd: m.dir }), '0\n0\n')
  })

  it('is refused (EACCES) to a user who may only read the file, which keeps its bytes', async function () {
    const { m } = here()
    await ok('printf hello > f && chmod 644 f', { cwd: m.dir })
    const r = await sh(OPEN_RDONLY_TRUNC, { cwd: m.dir, user: await testUser() })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /Permission denied/)
    assert.equal(await ok('cat f', { cwd: m.dir }), 'hello')
  })
})
