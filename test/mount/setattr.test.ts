// What `tar x` does to each file it extracts, through the mount: write, futimens, fchown, fchmod,
// close. The kernel sends futimens by path (no file handle): the Volume commits the file's
// buffered writes with the times, in one log append and sync (fuse/ops.ts utimens).
import assert from 'node:assert/strict'
import { open, stat, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { teardown, mountQuiet } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'

describe('mount: setattr of a file with buffered writes (tar x)', function () {
  this.timeout(60_000)
  let t: Teardown
  beforeEach(() => { t = teardown() })
  afterEach(async () => { await t.run() })

  it('futimens commits the buffered writes and the times in one log write; the times outlive the close', async () => {
    // no background sync within the test: every log write counted is one a request made
    const { vol, dir } = await mountQuiet(t)
    const file = join(dir, 'f')
    const bytes = Buffer.alloc(10_000, 7) // past the inline limit: a chunk of its own
    const fh = await open(file, 'w', 0o600)
    try {
      await fh.write(bytes)
      const before = vol.tree.logCounters()
      const mtime = new Date('2001-02-03T04:05:06Z')
      await fh.utimes(new Date('2002-01-01T00:00:00Z'), mtime)
      // one O_DSYNC write for the file's version and its times (a flush first was two: the
      // version's durable write, then the times' own)
      const after = vol.tree.logCounters()
      assert.equal(after.writes, before.writes + 1)
      assert.equal(after.syncs, before.syncs + 1)
      assert.equal(after.unsynced, 0)
      assert.equal((await fh.stat()).mtimeMs, mtime.getTime())
      await fh.chmod(0o640)
    } finally {
      await fh.close()
    }
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
