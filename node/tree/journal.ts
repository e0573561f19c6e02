// Undoable mutations of the materialised tree. Every change the CRDT makes goes through a
// Journal, which records how to put the old value back; undoing an op's records in reverse
// restores the state before it (Kleppmann et al.'s undo-do-redo for late ops).
//
// An op's records are one flat array, three slots per change (the map or list, the key, the
// old value), not a closure per change: every op received is recorded (it may be undone by a
// late op), and a closure and its context per change were most of the allocation (and so of the
// garbage collection) of applying ops. The records of the last UNDO_WINDOW ops are held, so the
// slots are few: what to do is read from the old value (ABSENT: delete the key) and the key
// (POP: pop the list), not stored in a slot of its own.

/** One slot of an op's undo records; an op's records are an Undo[] (see undo()). */
type Undo = unknown

/** The old value of a key that was absent: undo deletes the key. */
const ABSENT: unique symbol = Symbol('absent')
/** The key slot of a push: undo pops the list. */
const POP: unique symbol = Symbol('pop')

export class Journal {
  private records: Undo[] | null = null

  /** Start recording (records = the list to fill), or stop (null). */
  record (records: Undo[] | null): void {
    this.records = records
  }

  set<K, V> (map: Map<K, V>, key: K, value: V): void {
    const r = this.records
    if (r !== null) {
      const old = map.get(key)
      r.push(map, key, old !== undefined || map.has(key) ? old : ABSENT)
    }
    map.set(key, value)
  }

  delete<K, V> (map: Map<K, V>, key: K): void {
    if (!map.has(key)) return
    if (this.records !== null) this.records.push(map, key, map.get(key))
    map.delete(key)
  }

  push<T> (list: T[], value: T): void {
    if (this.records !== null) this.records.push(list, POP, undefined)
    list.push(value)
  }
}

/** Undo one op's records (newest first). */
export function undo (records: Undo[]): void {
  for (let i = records.length - 3; i >= 0; i -= 3) {
    const key = records[i + 1]
    if (key === POP) (records[i] as unknown[]).pop()
    else if (records[i + 2] === ABSENT) (records[i] as Map<unknown, unknown>).delete(key)
    else (records[i] as Map<unknown, unknown>).set(key, records[i + 2])
  }
}

export type { Undo }
