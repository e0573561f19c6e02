// What `tar x` does to each file it extracts, through the mount: write, futimens, fchown, fchmod,
// close. The kernel sends futimens by path (no file handle): the Volume holds the times of the
// open file with its owner and mode (node/volume.ts heldAttrs), and the close commits the
// file's buffered writes and one setattr after them, in one log append and sync.
import assert from 'node:assert/strict'
import { open, stat, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { teardown, mountQuiet } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { onEachOp } from '../../harness/ops.ts'

describe('mount: setattr of a file with buffered writes (tar x)', function () {
  this.timeout(60_000)
  let t: Teardown
  beforeEach(() => { t = teardown() })
  afterEach(async () => { await t.run() })

  it('futimens is held with the buffered writes; the close commits them and the times in one log write; the times outlive the close', async () => {
    // no background sync within the test: every log write counted is one a request made
    const { vol, dir } = await mountQuiet(t)
    const file = join(dir, 'f')
    const bytes = Buffer.alloc(10_000, 7) // past the inline limit: a chunk of its own
    const fh = await open(file, 'w', 0o600)
    const setattrs: Array<Record<string, unknown>> = []
    const versions: Array<Record<string, unknown>> = []
    onEachOp(vol.tree, (op, local) => {
      const b = op.body
      if (!local) return
      if (b.type === 'setattr') setattrs.push(b)
      if (b.type === 'write' || b.type === 'append') versions.push(b)
    })
    let before = vol.tree.logCounters()
    try {
      await fh.write(bytes)
      before = vol.tree.logCounters()
      const mtime = new Date('2001-02-03T04:05:06Z')
      await fh.utimes(new Date('2002-01-01T00:00:00Z'), mtime)
      // held: no log write, this host shows the times at once
      assert.equal(vol.tree.logCounters().writes, before.writes)
      assert.equal((await fh.stat()).mtimeMs, mtime.getTime())
      await fh.chmod(0o640)
      assert.equal((await fh.stat()).mtimeMs, mtime.getTime())
      assert.equal(setattrs.length + versions.length, 0)
    } finally {
      await fh.close()
    }
    // one O_DSYNC write for the file's version and its times, owner and mode
    const after = vol.tree.logCounters()
    assert.equal(after.writes, before.writes + 1)
    assert.equal(after.syncs, before.syncs + 1)
    assert.equal(setattrs.length, 1)
    assert.ok(versions.length >= 1)
    assert.ok(versions.every(v => (v.time as bigint) <= (setattrs[0].time as bigint)))
    const st = await stat(file)
    assert.equal(st.mtimeMs, new Date('2001-02-03T04:05:06Z').getTime(), 'the close made no newer version')
    assert.equal(st.atimeMs, new Date('2002-01-01T00:00:00Z').getTime())
    assert.equal(st.mode & 0o7777, 0o640)
    assert.deepEqual(await readFile(file), bytes)
    const inVolume = await vol.stat('/f')
    assert.equal(inVolume.mtimeMs, st.mtimeMs)
    assert.equal(inVolume.size, bytes.length)
  })
})
