// renameat2(RENAME_EXCHANGE) on a real mount: two names swap at once (files, a file and a
// directory, directories in different parents), a directory open across the swap lists what it
// is, and the cases Linux refuses are refused the same way, nothing changed.
import assert from 'node:assert/strict'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { mountEach, ok, sh } from '../helpers/fuse-mount.ts'
import type { Mounted } from '../helpers/fuse-mount.ts'

const EXCHANGE_PY = join(dirname(fileURLToPath(import.meta.url)), '../helpers/exchange.py')

describe('mount: RENAME_EXCHANGE', function () {
  this.timeout(120_000)
  const here = mountEach()
  let m: Mounted
  beforeEach(() => { m = here().m })

  const exchange = async (a: string, b: string): Promise<{ code: number, stderr: string }> => await sh(`python3 '${EXCHANGE_PY}' '${a}' '${b}'`, { cwd: m.dir })

  it('two files, then a file and a directory in another parent, swap names and keep their bytes', async function () {
    await ok('echo A > a && echo B > b && mkdir -p p/d && echo in > p/d/x', { cwd: m.dir })
    assert.equal((await exchange('a', 'b')).code, 0)
    assert.equal(await ok('cat a b', { cwd: m.dir }), 'B\nA\n')
    assert.equal((await exchange('a', 'p/d')).code, 0)
    assert.equal(await ok('cat a/x p/d', { cwd: m.dir }), 'in\nB\n')
    // nothing left over in either directory (the swap's own name is gone)
    assert.equal(await ok('ls -A . p', { cwd: m.dir }), '.:\na\nb\np\n\np:\nd\n')
    // and as the volume has it (not the kernel's cache)
    assert.deepEqual(await m.volume.readdir('/'), ['a', 'b', 'p'])
    assert.equal((await m.volume.lstat('/a')).kind, 'dir')
  })

  it('a directory held open across the swap lists what it holds, under its new name', async function () {
    await ok('mkdir -p one two && touch one/first two/second', { cwd: m.dir })
    // fd 3 opens `one` before the swap and is read after it (listdir of an fd reads through
    // that open directory's own handle)
    const listed = await ok(`exec 3<one && python3 '${EXCHANGE_PY}' one two && python3 -c 'import os; print(*sorted(os.listdir(3)))' && cd -P /proc/self/fd/3 && pwd`, { cwd: m.dir })
    assert.match(listed, /^first\n.*\/two\n$/s)
    assert.equal(await ok('ls one two', { cwd: m.dir }), 'one:\nsecond\n\ntwo:\nfirst\n')
  })

  it('a directory with one inside it: EINVAL; a missing name: ENOENT; nothing changed', async function () {
    await ok('mkdir -p d/sub && echo f > d/sub/f', { cwd: m.dir })
    for (const [a, b, code] of [['d', 'd/sub', 'EINVAL'], ['d/sub', 'd', 'EINVAL'], ['d', 'missing', 'ENOENT']]) {
      const r = await exchange(a, b)
      assert.equal(r.code, 1, `${a} <-> ${b}`)
      assert.equal(r.stderr.trim(), code, `${a} <-> ${b}`)
    }
    assert.equal(await ok('find . | sort', { cwd: m.dir }), '.\n./d\n./d/sub\n./d/sub/f\n')
  })
})
