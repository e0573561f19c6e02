// withMethods (node/wrap.ts): the Proxy the daemon's stores are wrapped in (pins.ts guardStore,
// data/leaves.ts rememberingLeaves).
import assert from 'node:assert/strict'
import { withMethods } from '../../node/wrap.ts'

class Counter {
  #n = 0
  readonly name = 'counter'
  add (d: number): number { this.#n += d; return this.#n }
  get value (): number { return this.#n }
}

describe('withMethods', () => {
  it('replaces the methods named and reads everything else through, methods bound to the target (private fields work)', () => {
    const c = new Counter()
    const seen: number[] = []
    const w = withMethods(c, { add: (d: number) => { seen.push(d); return c.add(d * 10) } })
    assert.equal(w.add(2), 20)
    assert.deepEqual(seen, [2])
    assert.equal(w.value, 20)
    assert.equal(w.name, 'counter')
    // an unwrapped method taken off the proxy still reaches the private field
    const { value } = w
    assert.equal(value, 20)
    assert.equal(c.add(1), 21)
  })

  it('stacks: an outer wrapper calls the inner one, methods it leaves alone reach the target', () => {
    const c = new Counter()
    const calls: string[] = []
    const inner = withMethods(c, { add: (d: number) => { calls.push('inner'); return c.add(d) } })
    const outer = withMethods(inner, { add: (d: number) => { calls.push('outer'); return inner.add(d + 1) } })
    assert.equal(outer.add(1), 2)
    assert.deepEqual(calls, ['outer', 'inner'])
    assert.equal(outer.value, 2)
  })
})
