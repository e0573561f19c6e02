// Namespace changes through the mount are written to the op log, not synced (node/volume.ts,
// "Durability"): an fsync of a directory (FUSE fsyncdir, served by the Volume since issue 15's
// small-file work) makes them durable; a small file's create, write and close sync once.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { teardown, mountQuiet, ok } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'

describe('mount: fsync of a directory syncs the op log', function () {
  this.timeout(60_000)
  let t: Teardown
  beforeEach(() => { t = teardown() })
  afterEach(async () => { await t.run() })

  it('creates, renames and unlinks wait for a sync; `sync -d DIR` makes them durable', async () => {
    // no background sync within the test: every log write counted is one a request made
    const { vol, dir } = await mountQuiet(t)
    const counters = (): { writes: number, syncs: number, unsynced: number, datasyncs: number } => vol.tree.logCounters()

    await ok('mkdir d && : > d/a && : > d/b && mv d/b d/c && rm d/a', { cwd: dir })
    const before = counters()
    assert.ok(before.unsynced > 0, 'the changes wait for a sync')
    await ok('sync -d d', { cwd: dir })
    const after = counters()
    assert.equal(after.unsynced, 0)
    assert.equal(after.syncs, before.syncs + 1)

    // a small file: its create written, its content written and synced with it: one sync, the
    // create written again with the content in one O_DSYNC write (no fdatasync)
    await ok(`printf '%s' hello > ${join('d', 'f')}`, { cwd: dir })
    assert.deepEqual(counters(), { writes: after.writes + 2, syncs: after.syncs + 1, unsynced: 0, datasyncs: after.datasyncs })
    assert.equal(await ok('cat d/f', { cwd: dir }), 'hello')
  })
})
