// An invalidation that comes while the kernel looks a name up for the first time (fuse/binding.c
// op_getattr, inval_thread). The kernel asks for a name it has no inode of (LOOKUP); JS answers
// the getattr with the file as it was, and the change that follows is invalidated before the
// kernel has made the inode from that answer: libfuse has no node of the path yet, or the kernel
// no inode, and the invalidation finds nothing. Lost, the kernel would keep the old attributes
// for its attribute time (an hour here). Each case makes its files behind the kernel's back,
// then stats each once through the mount with the change and its invalidation placed while
// that stat's getattr is under way: after it the mount must show the change.
import assert from 'node:assert/strict'
import { teardown, mountTemp, ok } from '../helpers/fuse-mount.ts'
import type { Mounted, Teardown } from '../helpers/fuse-mount.ts'
import { until } from '../../harness/cluster.ts'

/** Files per case: each is one race. */
const FILES = 20
/** What the change writes (the file was empty). */
const CHANGED = 'changed!'

describe('an invalidation during the kernel\'s first lookup of the name', function () {
  this.timeout(60_000)
  let t: Teardown
  let m: Mounted
  /** The path whose next getattr answers what it read before the change, and when to invalidate. */
  let armed: { path: string, when: 'before-answer' | 'after-answer' } | undefined
  /** An invalidation to push right after the next answer (the getattr's). */
  let afterAnswer: string | undefined

  beforeEach(async function () {
    t = teardown()
    armed = undefined
    afterAnswer = undefined
    m = await mountTemp(t, {
      attrTimeout: 3600,
      // called right after each answer is given to the binding, in the same tick
      onOp: () => {
        const p = afterAnswer
        afterAnswer = undefined
        if (p !== undefined) m.mount.invalidate(p)
      }
    })
    const vol = m.volume
    const lstat = vol.lstat.bind(vol)
    vol.lstat = async (path, o) => {
      const st = await lstat(path, o)
      const a = armed
      if (a === undefined || a.path !== path) return st
      armed = undefined
      // a peer's change applied while this getattr was under way: the answer is the old file
      await vol.writeFile(path, CHANGED)
      if (a.when === 'before-answer') m.mount.invalidate(path)
      else afterAnswer = path
      return st
    }
  })
  afterEach(async function () { await t.run() })

  for (const when of ['before-answer', 'after-answer'] as const) {
    it(`invalidated ${when === 'before-answer' ? 'while JS answers the getattr' : 'right after JS answered it'}: the mount shows the change after the stat`, async function () {
      const names = Array.from({ length: FILES }, (_, i) => `f${i}`)
      for (const name of names) await m.volume.writeFile(`/${name}`, '')
      for (const name of names) {
        armed = { path: `/${name}`, when }
        // the stat under way when the change came may show either size, unless the invalidation
        // came before the answer: then JS is asked again (op_getattr), and the stat shows the change
        const size = await ok(`stat -c %s ${name}`, { cwd: m.dir })
        if (when === 'before-answer') assert.equal(size, `${CHANGED.length}\n`, `the stat of ${name} itself`)
        else assert.match(size, /^(0|8)\n$/)
        assert.equal(armed, undefined, `the stat of ${name} asked for its attributes`)
      }
      // the kernel has all of them now (an hour's attributes); the old size must not be among them
      const want = names.map(() => String(CHANGED.length)).join('\n') + '\n'
      let seen = ''
      await until('the mount shows every change', async () => (seen = await ok(`stat -c %s ${names.join(' ')}`, { cwd: m.dir })) === want, 10_000)
        .catch(() => { assert.equal(seen, want, 'sizes through the mount after the stats') })
    })
  }
})
