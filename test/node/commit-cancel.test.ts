// A commit's signal (CommitOptions.signal) cancels it only while it waits for its turn: aborted
// then, it stamps nothing and rejects at once; once its ops are stamped it is applied and
// resolves. The mount's deadline for a name change relies on it (fuse/index.ts): a caller told
// the change failed never sees it appear later.
import assert from 'node:assert/strict'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { Tree } from '../../node/tree/index.ts'
import { makeKey, signerFor, verify, mkdir, ls } from '../helpers/tree.ts'

/** A tree whose signer waits, while `hold` is set, until the test lets the signature go. */
async function heldTree (t: Teardown): Promise<{ tree: Tree, hold: () => { signing: Promise<void>, release: () => void } }> {
  const signer = signerFor(await makeKey())
  let held: { started: () => void, wait: Promise<void> } | undefined
  const tree = await Tree.open({
    dir: await tempDir(t, 'darkfs-tree-'),
    verify,
    signer: {
      author: signer.author,
      sign: async bytes => {
        const h = held
        held = undefined
        if (h !== undefined) { h.started(); await h.wait }
        return await signer.sign(bytes)
      }
    }
  })
  t.add(async () => { await tree.close() })
  return {
    tree,
    hold: () => {
      let release!: () => void
      let started!: () => void
      const signing = new Promise<void>(resolve => { started = resolve })
      held = { started, wait: new Promise<void>(resolve => { release = resolve }) }
      return { signing, release }
    }
  }
}

describe('node/tree commitMany({ signal })', function () {
  let t: Teardown
  beforeEach(() => { t = new Teardown() })
  afterEach(async () => { await t.run() })

  it('aborted while it waits behind another commit: rejects at once with the reason, and its op is never applied', async () => {
    const { tree, hold } = await heldTree(t)
    const first = hold()
    const a = tree.commitMany([mkdir(tree.root, 'a')], 'written')
    await first.signing
    const controller = new AbortController()
    const b = tree.commitMany([mkdir(tree.root, 'b')], 'written', { signal: controller.signal })
    controller.abort(new DOMException('the deadline passed', 'TimeoutError'))
    // rejected while the first still holds the queue
    await assert.rejects(b, (err: any) => err?.name === 'TimeoutError')
    first.release()
    await a
    await tree.commit(mkdir(tree.root, 'c'))
    assert.deepEqual(ls(tree, '/'), ['a', 'c'])
  })

  it('aborted once its op is stamped: not cancelled, it is applied and resolves', async () => {
    const { tree, hold } = await heldTree(t)
    const controller = new AbortController()
    const signing = hold()
    const a = tree.commitMany([mkdir(tree.root, 'a')], 'written', { signal: controller.signal })
    await signing.signing
    controller.abort(new DOMException('the deadline passed', 'TimeoutError'))
    signing.release()
    await a
    assert.deepEqual(ls(tree, '/'), ['a'])
  })

  it('a signal aborted already: rejects, nothing stamped', async () => {
    const { tree } = await heldTree(t)
    const controller = new AbortController()
    controller.abort(new DOMException('gone', 'AbortError'))
    await assert.rejects(tree.commitMany([mkdir(tree.root, 'a')], 'written', { signal: controller.signal }), (err: any) => err?.name === 'AbortError')
    assert.deepEqual(ls(tree, '/'), [])
  })
})
