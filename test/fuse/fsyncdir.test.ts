// fsync(2) of a directory through the mount (libfuse's fsyncdir): it reaches the Volume's
// syncDir, which waits, as a file's fsync does for its op, until a peer holds this host's newest
// op (its creates, unlinks and renames with it). Before, the binding answered 0 at once.
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { teardown, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { mount } from '../../fuse/index.ts'
import { Volume } from '../../node/index.ts'

describe('fuse fsyncdir', function () {
  this.timeout(60_000)
  let t: Teardown
  beforeEach(function () { t = teardown() })
  afterEach(async function () { await t.run() })

  it('fsync of a directory returns once a peer holds the directory change; with nothing new since, at once', async function () {
    const asked: CID[] = []
    const holds: Array<() => void> = []
    const volume = await Volume.open({
      dir: await tempDir(t, 'darkfs-data-'),
      held: async cid => {
        asked.push(cid)
        await new Promise<void>(resolve => { holds.push(resolve) })
      }
    })
    t.add(async () => { for (const release of holds) release(); await volume.close() })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir)
    t.add(async () => { await m.unmount() })
    await ok(`mkdir "${dir}/d" && touch "${dir}/d/f"`)
    const fsyncDir = async (): Promise<{ code: number, stderr: string }> =>
      await sh(`python3 -c 'import os; fd = os.open("${dir}/d", os.O_RDONLY | os.O_DIRECTORY); os.fsync(fd); os.close(fd)'`)
    let done = false
    const first = fsyncDir().then(r => { done = true; return r })
    await until(() => asked.length === 1 || done)
    assert.equal(asked.length, 1, 'the directory fsync asked a peer to hold an op')
    // the op asked for is this host's newest: the create of /d/f
    assert.equal(asked[0].toString(), volume.tree.newestLocal()?.toString())
    assert.equal(done, false, 'the directory fsync waits for the hold')
    holds[0]()
    const r = await first
    assert.equal(r.code, 0, r.stderr)
    // nothing made since: no new ask, and the fsync returns
    const again = await fsyncDir()
    assert.equal(again.code, 0, again.stderr)
    assert.equal(asked.length, 1)
    // a change, then the next directory fsync asks for it
    await ok(`mv "${dir}/d/f" "${dir}/d/g"`)
    const third = fsyncDir()
    await until(() => asked.length === 2)
    holds[1]()
    assert.equal((await third).code, 0)
    assert.equal(asked[1].toString(), volume.tree.newestLocal()?.toString())
  })
})

async function until (check: () => boolean): Promise<void> {
  while (!check()) await new Promise(resolve => setTimeout(resolve, 5))
}
