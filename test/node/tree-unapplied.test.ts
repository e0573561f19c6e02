// Tree.unapplied / landedFor / fileMark (write36): a commit guarded on a file's state (a whole
// version, a fold: volume.ts) must not pass while an op of this host on that file is stamped
// (its parents taken) and not yet applied, and a file's mark moves with every version and
// extent, not with what does not change its bytes.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { sameFileMark, GuardError } from '../../node/tree/index.ts'
import { replica, mkfile, write } from '../helpers/tree.ts'

describe('node/tree unapplied ops and file marks', function () {
  let t: Teardown
  beforeEach(() => { t = new Teardown() })
  afterEach(async () => { await t.run() })

  it('an op of this host on a file counts as unapplied from its stamp until it is applied', async () => {
    const { tree } = await replica(t)
    const [{ id }] = await tree.commitMany([mkfile(tree.root, 'f', 'a')])
    assert.equal(tree.unapplied(id), false)
    let during: boolean | undefined
    let landed: Promise<void> | undefined
    const done = tree.commitMany([write(id, 'b')], 'durable', {
      // heard once the ops are stamped and handed to the log, before they are applied
      stamped: () => { during = tree.unapplied(id); landed = tree.landedFor(id) }
    })
    await done
    assert.equal(during, true, 'stamped, not applied')
    assert.equal(tree.unapplied(id), false, 'applied')
    await landed
  })

  it('a guard that refuses stamps nothing', async () => {
    const { tree } = await replica(t)
    const [{ id }] = await tree.commitMany([mkfile(tree.root, 'f', 'a')])
    const mark = tree.fileMark(id)
    await assert.rejects(tree.commitMany([write(id, 'b')], 'durable', { guard: () => false }), GuardError)
    assert.ok(sameFileMark(tree.fileMark(id), mark))
    assert.equal(tree.unapplied(id), false)
  })

  it('a file\'s mark changes with a new version and with an extent; extentsSince names the extents', async () => {
    const { tree } = await replica(t)
    const [{ id }] = await tree.commitMany([mkfile(tree.root, 'f', 'a')])
    const m0 = tree.fileMark(id)
    assert.ok(m0 !== undefined)
    await tree.commit(write(id, 'b'))
    const m1 = tree.fileMark(id)
    assert.equal(sameFileMark(m1, m0), false, 'a new version')
    assert.equal(tree.extentsSince(id, m0), undefined, 'a version came between')
    const [{ cid }] = await tree.commitMany([{ type: 'append', inode: id, content: { inline: new TextEncoder().encode('c') }, at: 0, size: 1, time: 3_000_000_000n }])
    const m2 = tree.fileMark(id)
    assert.equal(sameFileMark(m2, m1), false, 'an extent')
    const since = tree.extentsSince(id, m1 as NonNullable<typeof m1>)
    assert.equal(since?.length, 1)
    assert.equal(since?.[0].op, cid.toString())
    assert.deepEqual(tree.extentsSince(id, m2 as NonNullable<typeof m2>), [])
  })
})
