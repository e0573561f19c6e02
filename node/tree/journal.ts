// Undoable mutations of the materialised tree. Every change the CRDT makes goes through a
// Journal, which records how to put the old value back; undoing an op's records in reverse
// restores the state before it (Kleppmann et al.'s undo-do-redo for late ops).
//
// An op's records are one flat array, three slots per change (the map or list, the key, the
// old value), not a closure per change: every op received is recorded (it may be undone by a
// late op), and a closure and its context per change were most of the allocation (and so of the
// garbage collection) of applying ops. The records of the last UNDO_WINDOW ops are held, so the
// slots are few: what to do is read from the old value (ABSENT: delete the key) and the key
// (POP: pop the list; LAST: put the list's last item back), not stored in a slot of its own.

/** One slot of an op's undo records; an op's records are an Undo[] (see undo()). */
type Undo = unknown

/** The old value of a key that was absent: undo deletes the key. */
const ABSENT: unique symbol = Symbol('absent')
/** The key slot of a push: undo pops the list. */
const POP: unique symbol = Symbol('pop')
/** The key slot of a change of a list's last item: undo puts the old one back. */
const LAST: unique symbol = Symbol('last')

/** The undo records of an op that changed nothing (never written to: undo only reads them). */
const NO_RECORDS: Undo[] = []

export class Journal {
  /**
   * The records of the op being applied, in a list reused from op to op (written by index: a
   * list emptied by `length = 0` drops its storage and grows it again, push by push, for the
   * next op); end() copies them at their exact length, which is what an op holds.
   */
  private readonly buf: Undo[] = []
  private n = 0
  private recording = false

  /** Start an op: record its changes (or not). */
  begin (record: boolean): void {
    this.recording = record
    this.n = 0
  }

  /** End the op: its records (none when it did not record). */
  end (): Undo[] {
    const n = this.n
    this.recording = false
    this.n = 0
    return n === 0 ? NO_RECORDS : this.buf.slice(0, n)
  }

  private put (list: unknown, key: unknown, old: unknown): void {
    const b = this.buf
    const n = this.n
    b[n] = list
    b[n + 1] = key
    b[n + 2] = old
    this.n = n + 3
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

/** Undo one op's records (newest first). */
export function undo (records: Undo[]): void {
  for (let i = records.length - 3; i >= 0; i -= 3) {
    const key = records[i + 1]
    if (key === POP) (records[i] as unknown[]).pop()
    else if (key === LAST) (records[i] as unknown[])[(records[i] as unknown[]).length - 1] = records[i + 2]
    else if (records[i + 2] === ABSENT) (records[i] as Map<unknown, unknown>).delete(key)
    else (records[i] as Map<unknown, unknown>).set(key, records[i + 2])
  }
}

export type { Undo }
