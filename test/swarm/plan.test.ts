import assert from 'node:assert/strict'
import { children, holdersOf, plan } from '../../swarm/index.ts'

describe('swarm plan', function () {
  it('plan([{ to: [a, b, c] }]) makes a chain: the writer sends to a, a to b, b to c', () => {
    const [route] = plan([{ to: ['a', 'b', 'c'], size: 100 }])
    assert.equal(route.first, 'a')
    assert.deepEqual(route.hops, [{ peer: 'b', via: -1 }, { peer: 'c', via: 0 }])
    assert.deepEqual(children(route.hops), [{ first: 'b', hops: [{ peer: 'c', via: -1 }] }])
    assert.deepEqual(holdersOf(route), ['a', 'b', 'c'])
  })

  it('plan(deliveries, { self }) drops the writer and duplicates', () => {
    const [route, empty] = plan([{ to: ['me', 'a', 'a', 'b'], size: 1 }, { to: ['me'], size: 1 }], { self: 'me' })
    assert.deepEqual(holdersOf(route), ['a', 'b'])
    assert.deepEqual(empty, { hops: [] })
  })

  it('plan(many deliveries) rotates the forwarding work over holders with equal uplinks', () => {
    const routes = plan(Array.from({ length: 30 }, () => ({ to: ['a', 'b', 'c'], size: 10 })))
    const forwarded = new Map<string, number>()
    for (const r of routes) {
      // every holder but the last of a chain forwards once
      const order = holdersOf(r)
      for (const p of order.slice(0, -1)) forwarded.set(p, (forwarded.get(p) ?? 0) + 10)
      assert.deepEqual([...order].sort(), ['a', 'b', 'c'])
    }
    assert.deepEqual([...forwarded.values()].sort(), [200, 200, 200])
  })

  it('plan(deliveries, { uplink }) gives the fat uplinks the forwarding', () => {
    const uplink = new Map([['thin', 1e5], ['fat', 1e8], ['mid', 1e6]])
    const [route] = plan([{ to: ['thin', 'mid', 'fat'], size: 1 }], { uplink })
    assert.deepEqual(holdersOf(route), ['fat', 'mid', 'thin'])
    // over several blocks the thin peer stays last: it never forwards while the others are less busy
    const routes = plan(Array.from({ length: 8 }, () => ({ to: ['thin', 'mid', 'fat'], size: 1000 })), { uplink })
    for (const r of routes) assert.equal(holdersOf(r).at(-1), 'thin')
  })

  it('plan(deliveries, { fanout: 2 }) makes a tree and children() splits it into subtrees', () => {
    const [route] = plan([{ to: ['a', 'b', 'c', 'd', 'e', 'f'], size: 1 }], { fanout: 2 })
    assert.equal(route.first, 'a')
    // a -> b, c; b -> d, e; c -> f
    assert.deepEqual(route.hops, [
      { peer: 'b', via: -1 }, { peer: 'c', via: -1 }, { peer: 'd', via: 0 }, { peer: 'e', via: 0 }, { peer: 'f', via: 1 }
    ])
    assert.deepEqual(children(route.hops), [
      { first: 'b', hops: [{ peer: 'd', via: -1 }, { peer: 'e', via: -1 }] },
      { first: 'c', hops: [{ peer: 'f', via: -1 }] }
    ])
  })
})
