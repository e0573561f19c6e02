// Journal: apply, undoTo and forget interleaved at random, with later ops changing the keys an
// earlier made() created (as writes and links change a created inode's maps), checked against a
// snapshot of the state at every mark; forgotten chunks come back as spares many times over.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Journal, type Unmake } from '../../node/tree/journal.ts'

class Made implements Unmake {
  readonly a = new Map<number, number>()
  readonly b = new Map<number, number[]>()
  unmake (key: unknown): void { this.a.delete(key as number); this.b.delete(key as number) }
  absent (key: unknown): boolean { return !this.a.has(key as number) && !this.b.has(key as number) }
}

interface State { map: Map<number, number>, list: number[], made: Made }
type Change = { kind: number, key: number, value: number }

const byKey = <V>(m: Map<number, V>): Array<[number, V]> => [...m].sort((x, y) => x[0] - y[0])
const snapshot = (s: State): string => JSON.stringify([byKey(s.map), s.list, byKey(s.made.a), byKey(s.made.b)])

const change = fc.record({ kind: fc.integer({ min: 0, max: 6 }), key: fc.integer({ min: 0, max: 30 }), value: fc.integer({ min: 0, max: 99 }) })
const step = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('op' as const), op: fc.array(change, { maxLength: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('undo' as const), back: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('forget' as const), back: fc.nat() }) }
)

function play (j: Journal, s: State, op: Change[]): void {
  for (const { kind, key, value } of op) {
    if (kind === 0) j.set(s.map, key, value)
    else if (kind === 1) j.delete(s.map, key)
    else if (kind === 2) j.push(s.list, value)
    else if (kind === 3) {
      if (!s.made.absent(key)) continue
      j.made(s.made, key)
      s.made.a.set(key, value)
      s.made.b.set(key, [value])
    } else if (kind === 4) {
      if (s.made.a.has(key)) j.change(s.made.a, key, s.made.a.get(key), value)
    } else if (kind === 5) {
      const l = s.made.b.get(key)
      if (l !== undefined) j.push(l, value)
    } else {
      const l = s.made.b.get(key)
      if (l !== undefined) j.set(s.made.b, key, [...l, value])
    }
  }
}

describe('tree journal, interleaved', function () {
  this.timeout(120_000)
  afterEach(() => { Journal.checking = false })

  it('undoes to every mark exactly, made keys changed later included, spares reused across forgets', () => {
    Journal.checking = true
    let reused = 0
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 200, size: 'max' }), fc.integer({ min: 1, max: 4 }), (steps, bits) => {
      const j = new Journal(bits)
      const s: State = { map: new Map(), list: [], made: new Made() }
      const marks: number[] = []
      const states: string[] = []
      let floor = 0
      for (const a of steps) {
        if (a.t === 'op') {
          marks.push(j.mark())
          states.push(snapshot(s))
          const spares = j.spare
          j.begin(true)
          play(j, s, a.op)
          j.end()
          if (j.spare < spares) reused++
        } else if (marks.length > floor) {
          const to = floor + (a.back % (marks.length - floor))
          if (a.t === 'undo') {
            j.undoTo(marks[to])
            assert.equal(snapshot(s), states[to])
            marks.length = to
            states.length = to
          } else {
            floor = to
            j.forget(marks[floor])
          }
        }
      }
      if (marks.length > floor) {
        j.undoTo(marks[floor])
        assert.equal(snapshot(s), states[floor])
      }
    }), { seed: 4242, numRuns: 1000 })
    assert.ok(reused > 0, 'no op took a spare chunk: the reuse path was not exercised')
  })
})
