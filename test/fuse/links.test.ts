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

  it('names(ino) gives every remembered name of an inode, none for one never seen with two links', () => {
    const l = createLinkNames()
    l.note('/a', st(5, 2))
    l.note('/b', st(5, 2))
    l.note('/single', st(6, 1))
    assert.deepEqual(l.names(5).sort(), ['/a', '/b'])
    assert.deepEqual(l.names(6), [])
    l.forget('/a')
    assert.deepEqual(l.names(5), ['/b'])
  })

  it('a file seen back at one link (its other names removed by another host) has no names left; a name now of another file is forgotten alone', () => {
    const l = createLinkNames()
    l.note('/a', st(5, 2))
    l.note('/b', st(5, 2))
    l.note('/c', st(8, 2))
    l.note('/d', st(8, 2))
    // another host removed /b: this mount sees /a with one link
    l.note('/a', st(5, 1))
    assert.deepEqual(l.names(5), [])
    assert.deepEqual(l.others('/b'), [])
    // /c now names a new file of one link: /d stays a name of inode 8
    l.note('/c', st(9, 1))
    assert.deepEqual(l.names(8), ['/d'])
    assert.deepEqual(l.others('/c'), [])
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
