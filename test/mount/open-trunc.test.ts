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

describe('mount: open O_TRUNC of a hard-linked file', function () {
  this.timeout(60_000)
  // a long attribute cache, so a stale size of the other name shows rather than expires
  const here = mountEach({ attrTimeout: 30 })

  for (const mode of ['O_WRONLY', 'O_RDONLY']) {
    for (const held of [false, true]) {
      it(`${mode}|O_TRUNC through one name${held ? ', the file open on another fd' : ''}: the other name shows 0 bytes at once`, async function () {
        const { m } = here()
        await ok('head -c 2000000 /dev/urandom > a && ln a c && stat -c %s c > /dev/null', { cwd: m.dir })
        // stat while the truncating fd is still open: its close refreshes the other names anyway
        const out = await ok(`${held ? 'exec 3<a; ' : ''}python3 -c 'import os; fd = os.open("a", os.${mode} | os.O_TRUNC); print(os.stat("a").st_size, os.stat("c").st_size); os.close(fd)'`, { cwd: m.dir })
        assert.equal(out, '0 0\n')
      })
    }
  }
})
