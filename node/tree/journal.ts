// Undoable mutations of the materialised tree. Every change the CRDT makes goes through a
// Journal, which records how to put the old value back; undoing an op's records in reverse
// restores the state before it (Kleppmann et al.'s undo-do-redo for late ops).
//
// An op's records are one flat array, four slots per change (what to do, the map or list, the
// key, the old value), not a closure per change: every op received is recorded (it may be
// undone by a late op), and a closure and its context per change were most of the allocation
// (and so of the garbage collection) of applying ops.

/** One slot of an op's undo records; an op's records are an Undo[] (see undo()). */
type Undo = unknown

/** Put the old value back (it was there). */
const RESTORE = 0
/** Delete the key (it was absent). */
const REMOVE = 1
/** Pop the list (a value was pushed). */
const POP = 2

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
      if (old !== undefined || map.has(key)) r.push(RESTORE, map, key, old)
      else r.push(REMOVE, map, key, undefined)
    }
    map.set(key, value)
  }

  delete<K, V> (map: Map<K, V>, key: K): void {
    if (!map.has(key)) return
    if (this.records !== null) this.records.push(RESTORE, map, key, map.get(key))
    map.delete(key)
  }

  push<T> (list: T[], value: T): void {
    if (this.records !== null) this.records.push(POP, list, undefined, undefined)
    list.push(value)
  }
}

/** Undo one op's records (newest first). */
export function undo (records: Undo[]): void {
  for (let i = records.length - 4; i >= 0; i -= 4) {
    const what = records[i]
    if (what === POP) (records[i + 1] as unknown[]).pop()
    else if (what === REMOVE) (records[i + 1] as Map<unknown, unknown>).delete(records[i + 2])
    else (records[i + 1] as Map<unknown, unknown>).set(records[i + 2], records[i + 3])
  }
}

export type { Undo }
