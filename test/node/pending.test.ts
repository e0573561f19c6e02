// PendingPlacements (keeper/pending.ts): the chunks written here whose placement is not over,
// one entry per coding of a chunk (the same bytes coded with another k are placed on their own).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { encodeChunk } from '../../node/data/chunks.ts'
import { PendingPlacements, codingOf } from '../../node/keeper/pending.ts'

describe('PendingPlacements', () => {
  it('keeps two codings of one chunk apart: each pending until its own placement is over (fails on the old code: by chunk CID, the second replaced the first)', () => {
    const bytes = randomBytes(1 << 20)
    const a = encodeChunk(bytes, 0, 4, 2).ref
    const b = encodeChunk(bytes, 0, 3, 2).ref
    assert.equal(a.cid!.toString(), b.cid!.toString())
    assert.notEqual(codingOf(a), codingOf(b))
    const pending = new PendingPlacements({ relayed: true })
    const placed: number[] = []
    pending.addEventListener('placed', (evt) => { placed.push((evt as CustomEvent).detail.k) })
    pending.add(a, 'inode-1')
    pending.add(b, 'inode-1')
    pending.add(b)
    assert.equal(pending.size, 2)
    assert.deepEqual([...pending.values()].map(r => r.k).sort(), [3, 4])
    for (const f of [...a.fragments, ...b.fragments]) assert.ok(pending.withholdsBackground(f))
    pending.delete(a)
    assert.deepEqual(placed, [4])
    assert.ok(pending.has(a.cid!.toString()), 'the other coding of the chunk is still pending')
    assert.ok(!pending.hasCoding(a) && pending.hasCoding(b))
    assert.equal(pending.inode(b), 'inode-1')
    for (const f of b.fragments) assert.ok(pending.withholdsBackground(f), 'the pending coding\'s fragments are still withheld')
    for (const f of a.fragments.filter(f => !b.fragments.some(x => x.equals(f)))) assert.ok(!pending.withholdsBackground(f))
    pending.delete(a)
    assert.deepEqual(placed, [4], 'a coding placed already is not told twice')
    pending.delete(b)
    assert.deepEqual(placed, [4, 3])
    assert.equal(pending.size, 0)
    assert.ok(!pending.has(b.cid!.toString()))
    assert.equal(pending.inode(b), undefined)
    for (const f of [...a.fragments, ...b.fragments]) assert.ok(!pending.withholdsBackground(f))
  })

  it('records the file of each coding: two codings of one chunk from two files keep their own (fails on the old code: by chunk CID, the last add won)', () => {
    const bytes = randomBytes(1 << 20)
    const a = encodeChunk(bytes, 0, 4, 2).ref
    const b = encodeChunk(bytes, 0, 3, 2).ref
    const pending = new PendingPlacements()
    pending.add(a, 'inode-a')
    pending.add(b, 'inode-b')
    assert.equal(pending.inode(a), 'inode-a')
    assert.equal(pending.inode(b), 'inode-b')
    pending.delete(b)
    assert.equal(pending.inode(a), 'inode-a', 'the other coding keeps its file')
    assert.equal(pending.inode(b), undefined)
  })
})
