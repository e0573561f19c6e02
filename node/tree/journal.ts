// Undoable mutations of the materialised tree. Every change the CRDT makes goes through a
// Journal, which records how to put the old value back; undoing an op's records in reverse
// restores the state before it (Kleppmann et al.'s undo-do-redo for late ops).

type Undo = () => void

export class Journal {
  private records: Undo[] | null = null

  /** Start recording (records = the list to fill), or stop (null). */
  record (records: Undo[] | null): void {
    this.records = records
  }

  set<K, V> (map: Map<K, V>, key: K, value: V): void {
    if (this.records !== null) {
      if (map.has(key)) {
        const old = map.get(key) as V
        this.records.push(() => { map.set(key, old) })
      } else {
        this.records.push(() => { map.delete(key) })
      }
    }
    map.set(key, value)
  }

  delete<K, V> (map: Map<K, V>, key: K): void {
    if (!map.has(key)) return
    if (this.records !== null) {
      const old = map.get(key) as V
      this.records.push(() => { map.set(key, old) })
    }
    map.delete(key)
  }

  push<T> (list: T[], value: T): void {
    if (this.records !== null) this.records.push(() => { list.pop() })
    list.push(value)
  }
}

/** Undo one op's records. */
export function undo (records: Undo[]): void {
  for (let i = records.length - 1; i >= 0; i--) records[i]()
}

export type { Undo }
