// fuse/links.ts: the names the mount remembers of hard-linked files, whose cached attributes
// it refreshes when another name of the file changes.
import assert from 'node:assert/strict'
import { createLinkNames } from '../../fuse/links.ts'
import type { Stats } from '../../node/index.ts'

function st (ino: number, nlink: number, kind: Stats['kind'] = 'file'): Stats {
  return { ino, nlink, kind } as unknown as Stats
}

describe('createLinkNames() (fuse/links.ts)', () => {
  it('note() keeps names of files with nlink > 1 only; others() gives the rest of the names', () => {
    const l = createLinkNames()
    l.note('/a', st(5, 2))
    l.note('/b', st(5, 2))
    l.note('/single', st(6, 1))
    l.note('/dir', st(7, 3, 'dir'))
    assert.deepEqual(l.others('/a'), ['/b'])
    assert.deepEqual(l.others('/single'), [])
    assert.deepEqual(l.others('/dir'), [])
    l.forget('/b')
    assert.deepEqual(l.others('/a'), [])
  })

  it('moveDir(from, to) carries the names below a renamed directory, not names that only share a prefix', () => {
    const l = createLinkNames()
    l.note('/a', st(5, 3))
    l.note('/d/b', st(5, 3))
    l.note('/d/e/c', st(5, 3))
    l.note('/dx/y', st(5, 3))
    l.moveDir('/d', '/n')
    assert.deepEqual(l.others('/a').sort(), ['/dx/y', '/n/b', '/n/e/c'])
    assert.deepEqual(l.others('/d/b'), [])
  })
})
