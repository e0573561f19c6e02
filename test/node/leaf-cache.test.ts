// LeafCache (node/data/cache.ts, gc44): the range reads' leaf cache keeps copies of leaves in
// slots of its own, least recently used forgotten first, slots reused.
import assert from 'node:assert/strict'
import { LeafCache } from '../../node/data/index.ts'

const LEAF = 1024

const leaf = (fill: number, bytes = LEAF): Uint8Array => new Uint8Array(bytes).fill(fill)

describe('LeafCache', () => {
  it('keeps a copy: changing what was set changes nothing kept', () => {
    const c = new LeafCache(4 * LEAF, LEAF)
    const a = leaf(1)
    c.set('a', a)
    a.fill(9)
    assert.deepEqual(c.get('a'), leaf(1))
  })

  it('forgets the least recently used leaf when full, and reuses its slot', () => {
    const c = new LeafCache(3 * LEAF, LEAF)
    c.set('a', leaf(1))
    c.set('b', leaf(2))
    c.set('c', leaf(3))
    assert.ok(c.get('a') !== undefined) // a is now the most recent
    c.set('d', leaf(4))
    assert.equal(c.get('b'), undefined, 'b, the least recently used, forgotten')
    assert.deepEqual(c.get('a'), leaf(1))
    assert.deepEqual(c.get('c'), leaf(3))
    assert.deepEqual(c.get('d'), leaf(4))
    assert.equal(c.count, 3)
    assert.equal(c.size, 3 * LEAF)
    assert.equal(c.buffers().length, 1, 'one slab')
  })

  it('a short leaf (a fragment\'s last) is given back at its length, and counted so', () => {
    const c = new LeafCache(4 * LEAF, LEAF)
    c.set('short', leaf(7, 100))
    assert.deepEqual(c.get('short'), leaf(7, 100))
    assert.equal(c.size, 100)
    // its slot then taken by a whole leaf: the whole leaf's bytes
    c.delete('short')
    assert.equal(c.size, 0)
    c.set('whole', leaf(8))
    assert.deepEqual(c.get('whole'), leaf(8))
  })

  it('set again under a key replaces the leaf; a leaf over leafBytes is not kept', () => {
    const c = new LeafCache(2 * LEAF, LEAF)
    c.set('a', leaf(1))
    c.set('a', leaf(2, 10))
    assert.deepEqual(c.get('a'), leaf(2, 10))
    assert.equal(c.size, 10)
    c.set('big', leaf(3, LEAF + 1))
    assert.equal(c.get('big'), undefined)
  })

  it('makes slabs of SLAB_LEAVES as needed, never more slots than the bound; clear() drops them', () => {
    const n = LeafCache.SLAB_LEAVES + 3
    const c = new LeafCache(n * LEAF, LEAF)
    for (let i = 0; i < n; i++) c.set(`k${i}`, leaf(i & 0xff))
    assert.equal(c.buffers().length, 2)
    assert.equal(c.buffers()[1].byteLength, 3 * LEAF, 'the last slab only as large as the bound allows')
    for (let i = 0; i < n; i++) c.set(`again${i}`, leaf((i + 1) & 0xff))
    assert.equal(c.buffers().length, 2, 'slots reused, no slab made past the bound')
    for (let i = 0; i < n; i++) assert.deepEqual(c.get(`again${i}`), leaf((i + 1) & 0xff))
    c.clear()
    assert.equal(c.buffers().length, 0)
    assert.equal(c.count, 0)
    assert.equal(c.get('again0'), undefined)
  })
})
