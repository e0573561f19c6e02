// Undoable mutations of the materialised tree. Every change the CRDT makes goes through a
// Journal, which records how to put the old value back; undoing an op's records in reverse
// restores the state before it (Kleppmann et al.'s undo-do-redo for late ops).
//
// The records of every op applied (while recording) are one flat log, three slots per change
// (the map or list, the key, the old value), oldest first: not a closure per change, nor an
// array per op (every op received is recorded, since a late op may undo it, and an array per op
// was a large part of the allocation, and so of the garbage collection, of applying ops). The
// ops applied after a point are undone by walking the log back to that point (mark()/undoTo());
// the records of ops that left the undo window are let go (forget()). What to do is read from
// the old value (ABSENT: delete the key) and the key (POP: pop the list; LAST: put the list's
// last item back), not stored in a slot of its own.

/** One slot of an op's undo records; an op's records are an Undo[] (see undo()). */
type Undo = unknown

/** The old value of a key that was absent: undo deletes the key. */
const ABSENT: unique symbol = Symbol('absent')
/** The key slot of a push: undo pops the list. */
const POP: unique symbol = Symbol('pop')
/** The key slot of a change of a list's last item: undo puts the old one back. */
const LAST: unique symbol = Symbol('last')

/** Forgotten records are dropped from the front of the log once they are this many slots and half of it. */
const COMPACT_SLOTS = 1 << 16

export class Journal {
  /** The log: slot i (absolute) is slots[i - base]. */
  private slots: Undo[] = []
  private base = 0
  /** The absolute end of the log. */
  private n = 0
  /** Slots before this (absolute) will never be undone (forget()). */
  private forgotten = 0
  private recording = false
  private readonly compactSlots: number

  /** `compactSlots`: forgotten slots dropped from the log's front once they are this many and half of it (tests set it low). */
  constructor (compactSlots = COMPACT_SLOTS) {
    this.compactSlots = compactSlots
  }

  /** Start an op: record its changes (or not). */
  begin (record: boolean): void {
    this.recording = record
  }

  /** End the op. */
  end (): void {
    this.recording = false
  }

  /** Where the log ends now: undoTo() of it undoes every op applied after this call. */
  mark (): number {
    return this.n
  }

  /** Undo every record after `mark` (newest first), and drop them. */
  undoTo (mark: number): void {
    if (mark < this.forgotten) throw new RangeError('undoTo: those records were forgotten')
    const s = this.slots
    const from = mark - this.base
    for (let i = this.n - this.base - 3; i >= from; i -= 3) {
      const key = s[i + 1]
      if (key === POP) (s[i] as unknown[]).pop()
      else if (key === LAST) (s[i] as unknown[])[(s[i] as unknown[]).length - 1] = s[i + 2]
      else if (s[i + 2] === ABSENT) (s[i] as Map<unknown, unknown>).delete(key)
      else (s[i] as Map<unknown, unknown>).set(key, s[i + 2])
    }
    this.drop(mark)
  }

  /** Drop the records after `mark` without undoing them (an op that failed half way). */
  drop (mark: number): void {
    this.slots.length = mark - this.base
    this.n = mark
  }

  /** The records before `mark` will never be undone: let go of what they hold. */
  forget (mark: number): void {
    if (mark <= this.forgotten) return
    const s = this.slots
    for (let i = this.forgotten - this.base; i < mark - this.base; i++) s[i] = undefined
    this.forgotten = mark
    const dead = mark - this.base
    if (dead >= this.compactSlots && dead * 2 >= s.length) {
      this.slots = s.slice(dead)
      this.base = mark
    }
  }

  /** Slots in the log's array (forgotten ones not dropped yet included): for tests. */
  get held (): number {
    return this.slots.length
  }

  private put (list: unknown, key: unknown, old: unknown): void {
    const s = this.slots
    const at = this.n - this.base
    s[at] = list
    s[at + 1] = key
    s[at + 2] = old
    this.n += 3
  }

  /**
   * Set a key. The tree's maps never hold undefined (refused here), so a key whose value reads
   * undefined is absent: one lookup, not get() and has(), for the new keys most ops add.
   */
  set<K, V> (map: Map<K, V>, key: K, value: V): void {
    if (value === undefined) throw new TypeError('the tree\'s maps hold no undefined')
    if (this.recording) {
      const old = map.get(key)
      this.put(map, key, old === undefined ? ABSENT : old)
    }
    map.set(key, value)
  }

  delete<K, V> (map: Map<K, V>, key: K): void {
    if (!map.has(key)) return
    if (this.recording) this.put(map, key, map.get(key))
    map.delete(key)
  }

  push<T> (list: T[], value: T): void {
    if (this.recording) this.put(list, POP, undefined)
    list.push(value)
  }

  /** Replace the last item of a non-empty list. */
  setLast<T> (list: T[], value: T): void {
    if (this.recording) this.put(list, LAST, list[list.length - 1])
    list[list.length - 1] = value
  }
}

export type { Undo }
