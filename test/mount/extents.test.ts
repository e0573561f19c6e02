// Positioned extents on a real mount (issue 15): a process doing random pwrites, each batch
// made durable by fdatasync (as a database does), ends with the bytes a local file given the same
// writes has; read back through the mount, again after an unmount and a fresh mount of the same
// volume (nothing served from the kernel's page cache), and through the Volume itself. On the
// real Volume the fsyncs of small writes are positioned extents (no chunk rewritten), one op
// per fsync holding all its ranges.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { mount } from '../../fuse/index.ts'
import { teardown, mountTemp, tempDir, ok } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'
import { onEachOp } from '../../harness/ops.ts'

/** Run in its own process (the process serving the mount must not do I/O on it): the same writes to both files. */
const PWRITES = `
import os, random, sys
a, b, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(seed)
base = bytes((i * 7) & 0xff for i in range(3 * 1024 * 1024 + 999))
fds = []
for p in (a, b):
    with open(p, 'wb') as f: f.write(base)
    fds.append(os.open(p, os.O_RDWR))
size = len(base)
for step in range(120):
    for i in range(1 + rnd.randrange(4)):
        n = 4097 + rnd.randrange(20000) if rnd.randrange(5) == 0 else 1 + rnd.randrange(4096)
        at = size + rnd.randrange(5000) if rnd.randrange(8) == 0 else rnd.randrange(size)
        data = bytes((step * 13 + i + j) & 0xff for j in range(n))
        for fd in fds: os.pwrite(fd, data, at)
        size = max(size, at + n)
    for fd in fds: os.fdatasync(fd)
for fd in fds: os.close(fd)
`

describe('mount: positioned extents', function () {
  this.timeout(240_000)
  let t: Teardown
  let m: Mounted

  beforeEach(async function () {
    t = teardown()
    m = await mountTemp(t)
  })
  afterEach(async function () { await t.run() })

  it('random pwrites, each batch fdatasync\'d: the bytes of a local file given the same writes, also after a remount', async function () {
    const local = await tempDir(t, 'darkfs-local-')
    /** the ops this host made for files, by type (issue 15 item 1: an fdatasync's ranges are one op) */
    const made: Array<{ type: string, more?: unknown[] }> = []
    if (m.kind === 'real') onEachOp((m.volume as any).tree, (op, local) => { if (local) made.push(op.body) })
    await ok(`python3 - '${join(m.dir, 'db')}' '${join(local, 'db')}' 7 <<'PY'\n${PWRITES}\nPY`)
    const want = await readFile(join(local, 'db'))
    assert.equal(await ok(`cmp db '${join(local, 'db')}' && echo same`, { cwd: m.dir }), 'same\n')
    const volume: any = m.volume
    if (m.kind === 'real') {
      const inode = volume.tree.byIno((await volume.stat('/db')).ino)
      // 120 fdatasyncs of small writes: versions, most of them positioned extents (folded past FOLD_EXTENTS)
      assert.ok(volume.tree.history(inode.id).length > 100, 'each fdatasync made a version')
      assert.ok(volume.tree.history(inode.id).some((v: { appended?: number }) => v.appended !== undefined), 'positioned extents')
      // batches of up to 4 ranges: one op per fdatasync, several ranges in one (multi-extent) op
      const appends = made.filter(b => b.type === 'append')
      assert.ok(appends.length <= 120, `at most one op per fdatasync (${appends.length})`)
      assert.ok(appends.some(b => (b.more?.length ?? 0) > 0), 'an fdatasync of several ranges is one multi-extent op')
    }
    assert.ok(Buffer.from(await m.volume.readFile('/db')).equals(want), 'the Volume reads the same bytes')
    await m.mount.unmount()
    const again = await mount(m.volume, m.dir)
    t.add(async () => { await again.unmount() })
    assert.equal(await ok(`cmp db '${join(local, 'db')}' && echo same`, { cwd: m.dir }), 'same\n')
  })
})
