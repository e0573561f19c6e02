// The tree's undo journal (node/tree/journal.ts): one flat log of every op's undo records.
// Undoing back to any mark gives the state at that mark, also after older records were
// forgotten and the log's front dropped; a half-applied op's records can be dropped. change()
// (a set given the old value its caller read) undoes as set() does; made() (one record for the
// keys an op makes, each absent before) undoes by deleting them all.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Journal, type Unmake } from '../../node/tree/journal.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261203)

/**
 * One change: set or delete a key of the map, push to the list, replace its last item, change()
 * a key read just before, set the mtime or ctime of the record in place (setTime), or make a new
 * key in the two maps of made keys (made(): one record, then plain sets; a key made already
 * there is left alone, as a create of an id the tree holds is not made again).
 */
const change = fc.record({ kind: fc.integer({ min: 0, max: 7 }), key: fc.integer({ min: 0, max: 7 }), value: fc.integer({ min: 0, max: 99 }) })
/** Ops of a few changes each. */
const ops = fc.array(fc.array(change, { maxLength: 6 }), { minLength: 1, maxLength: 40 })

/** Two maps whose keys are made by made(), as TreeState makes a create's id in several. */
class Made implements Unmake {
  readonly a = new Map<number, number>()
  readonly b = new Map<number, string>()
  unmake (key: unknown): void {
    this.a.delete(key as number)
    this.b.delete(key as number)
  }

  absent (key: unknown): boolean {
    return !this.a.has(key as number) && !this.b.has(key as number)
  }
}

interface State { map: Map<number, number>, list: number[], rec: { mtime: bigint, ctime: bigint }, made: Made }
const sorted = <V>(m: Map<number, V>): Array<[number, V]> => [...m].sort((a, b) => a[0] - b[0])
const snap = (s: State): string => JSON.stringify([sorted(s.map), s.list, String(s.rec.mtime), String(s.rec.ctime), sorted(s.made.a), sorted(s.made.b)])

function apply (j: Journal, s: State, op: Array<{ kind: number, key: number, value: number }>): void {
  for (const c of op) {
    if (c.kind === 0) j.set(s.map, c.key, c.value)
    else if (c.kind === 1) j.delete(s.map, c.key)
    else if (c.kind === 2) j.push(s.list, c.value)
    else if (c.kind === 4) j.change(s.map, c.key, s.map.get(c.key), c.value)
    else if (c.kind === 5) j.setTime(s.rec, 'mtime', BigInt(c.value))
    else if (c.kind === 6) j.setTime(s.rec, 'ctime', BigInt(c.value))
    else if (c.kind === 7) {
      if (s.made.absent(c.key)) {
        j.made(s.made, c.key)
        s.made.a.set(c.key, c.value)
        s.made.b.set(c.key, `v${c.value}`)
      }
    } else if (s.list.length > 0) j.setLast(s.list, c.value)
  }
}

describe('node/tree journal', function () {
  it('undoTo(mark) gives back the state at the mark, after forgetting older records (chunks of 2 to 32 slots: records straddle them)', () => {
    fc.assert(fc.property(ops, fc.nat(), fc.nat(), fc.integer({ min: 1, max: 5 }), (list, back, keep, bits) => {
      const j = new Journal(bits)
      const s: State = { map: new Map(), list: [], rec: { mtime: 0n, ctime: 0n }, made: new Made() }
      const marks: number[] = []
      const states: string[] = []
      for (const op of list) {
        marks.push(j.mark())
        states.push(snap(s))
        j.begin(true)
        apply(j, s, op)
        j.end()
      }
      // undo back to op `to`, with the records before op `from` (from <= to) forgotten first
      const to = back % list.length
      const from = keep % (to + 1)
      j.forget(marks[from])
      j.undoTo(marks[to])
      assert.equal(snap(s), states[to])
      // the log goes on from there: apply the ops again, and undo them again
      for (let i = to; i < list.length; i++) {
        j.begin(true)
        apply(j, s, list[i])
        j.end()
      }
      j.undoTo(marks[to])
      assert.equal(snap(s), states[to])
      // and nothing before what was forgotten can be undone
      if (from > 0) assert.throws(() => j.undoTo(marks[from] - 1), RangeError)
    }), { seed: PROP_SEED, numRuns: 300 })
  })

  it('with checking on, change() refuses an old value that is not the map\'s (the CRDT\'s claims are checked in its tests)', () => {
    const j = new Journal()
    const map = new Map([[1, 10]])
    Journal.checking = true
    try {
      j.begin(true)
      assert.throws(() => { j.change(map, 1, undefined, 11) }, /old value/)
      assert.throws(() => { j.change(map, 2, 10, 11) }, /old value/)
      j.change(map, 1, 10, 11)
      j.change(map, 2, undefined, 12)
      // made() refuses a key said to be new that its owner holds
      const made = { unmake: () => {}, absent: (k: unknown) => !map.has(k as number) }
      assert.throws(() => { j.made(made, 1) }, /there already/)
      j.made(made, 3)
      j.end()
    } finally {
      Journal.checking = false
    }
    assert.deepEqual([...map], [[1, 11], [2, 12]])
  })

  it('an op applied without recording leaves no records; drop() forgets a half-applied op\'s', () => {
    const j = new Journal()
    const map = new Map<string, number>([['a', 1]])
    const m0 = j.mark()
    j.begin(false)
    j.set(map, 'a', 2)
    j.end()
    assert.equal(j.mark(), m0)
    j.begin(true)
    j.set(map, 'b', 3)
    j.end()
    const m1 = j.mark()
    j.begin(true)
    j.set(map, 'a', 4)
    j.drop(m1)
    j.end()
    assert.equal(j.mark(), m1)
    j.undoTo(m0)
    assert.deepEqual([...map], [['a', 4]])
    assert.throws(() => j.set(map, 'c', undefined as unknown as number), TypeError)
  })

  it('forgotten records are let go: the chunks wholly before the mark go', () => {
    const j = new Journal(4)
    const map = new Map<number, number>()
    const marks: number[] = []
    for (let i = 0; i < 100; i++) {
      marks.push(j.mark())
      j.begin(true)
      j.set(map, i, i)
      j.end()
    }
    // 300 slots in chunks of 16
    assert.equal(j.held, 304)
    // slot 270 is in chunk 16 (256 to 271): the 16 chunks before it go
    j.forget(marks[90])
    assert.equal(j.held, 304 - 256)
    j.undoTo(marks[95])
    assert.equal(map.size, 95)
  })

  it('forgotten chunks are cleared and filled again: the log grows into them, and keeps no forgotten record', () => {
    const j = new Journal(4)
    const map = new Map<number, number>()
    const marks: number[] = []
    const record = (i: number): void => {
      marks.push(j.mark())
      j.begin(true)
      j.set(map, i % 7, i)
      j.end()
    }
    for (let i = 0; i < 100; i++) record(i)
    // 300 slots in 19 chunks of 16; the 16 wholly before slot 270 go, two kept cleared
    j.forget(marks[90])
    assert.equal(j.held, 3 * 16)
    assert.equal(j.spare, 2)
    // what is left: the 30 slots from 270 on, and the 14 forgotten ones of chunk 16 (256 to 269)
    assert.equal(j.filled, 300 - 256)
    // 11 records more (33 slots): the rest of the last chunk, then the two spares, no new chunk
    for (let i = 100; i < 111; i++) record(i)
    assert.equal(j.spare, 0)
    assert.equal(j.held, 5 * 16)
    // and undoes into them as into fresh ones
    const before = new Map(map)
    for (let i = 111; i < 140; i++) record(i)
    j.undoTo(marks[111])
    assert.deepEqual(map, before)
  })
})
