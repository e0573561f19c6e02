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
// last item back; MTIME, CTIME: put a record's time back; MADE: delete the keys an op made),
// not stored in a slot of its own.

/** One slot of an op's undo records; an op's records are an Undo[] (see undo()). */
type Undo = unknown

/** The old value of a key that was absent: undo deletes the key. */
const ABSENT: unique symbol = Symbol('absent')
/** The key slot of a push: undo pops the list. */
const POP: unique symbol = Symbol('pop')
/** The key slot of a change of a list's last item: undo puts the old one back. */
const LAST: unique symbol = Symbol('last')
/** The key slots of a change of a record's `mtime` or `ctime` in place (setTime()): undo puts the old time back. */
const MTIME: unique symbol = Symbol('mtime')
const CTIME: unique symbol = Symbol('ctime')
/** The key slot of made(): undo calls the list slot's unmake() with the old slot (the key made). */
const MADE: unique symbol = Symbol('made')

/** What setTime() changes in place: a record's times. */
export interface Times { mtime: bigint, ctime: bigint }

/**
 * The keys an op makes, each absent from its map before the op (made()): unmake(key) deletes
 * them all, and absent() tells whether they are (Journal.checking).
 */
export interface Unmake {
  unmake: (key: unknown) => void
  absent: (key: unknown) => boolean
}

/**
 * Slots per chunk of the log, as a power of two: 2^15 slots (256 KiB), past V8's largest regular
 * object (128 KiB), so each chunk is a large object, which V8's young-generation collections
 * promote by its page and never copy. Chunks of 2^12 (32 KiB) were copied by every scavenge
 * they lived through: a merge receive of 10,000 ops fills about 4 MB of chunks while it runs,
 * and its scavenges copy what survives (nearly everything such a receive allocates).
 */
const CHUNK_BITS = 15

/** Forgotten chunks kept, cleared, to be filled again (Journal.forget()). */
const SPARE_CHUNKS = 2

export class Journal {
  /**
   * When set (tests), every change() checks its caller's claim: that the old value given is what
   * the map holds for the key. Off, nothing is looked up.
   */
  static checking = false

  /**
   * The log, in chunks of 2^bits slots: slot i (absolute) is chunks[c][r & mask], r = i - first *
   * size, c = r >> bits. Chunks are kept once made (reused after an undo), dropped from the front
   * once forgotten: no array per op, and no copy of a large one as it grows.
   */
  private readonly chunks: Undo[][] = []
  /** Chunks forgotten and cleared, for grow() (forget()). */
  private readonly spares: Undo[][] = []
  private readonly bits: number
  private readonly size: number
  private readonly mask: number
  /** The absolute number of chunks[0]. */
  private first = 0
  /** The absolute end of the log. */
  private n = 0
  /** Slots before this (absolute) will never be undone (forget()). */
  private forgotten = 0
  private recording = false

  /** `chunkBits`: log2 of the slots per chunk (tests make them small). */
  constructor (chunkBits = CHUNK_BITS) {
    this.bits = chunkBits
    this.size = 2 ** chunkBits
    this.mask = this.size - 1
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
    const origin = this.first * this.size
    for (let i = this.n - 3; i >= mark; i -= 3) {
      const list = this.take(i - origin)
      const key = this.take(i + 1 - origin)
      const old = this.take(i + 2 - origin)
      if (key === POP) (list as unknown[]).pop()
      else if (key === LAST) (list as unknown[])[(list as unknown[]).length - 1] = old
      else if (key === MTIME) (list as Times).mtime = old as bigint
      else if (key === CTIME) (list as Times).ctime = old as bigint
      else if (key === MADE) (list as Unmake).unmake(old)
      else if (old === ABSENT) (list as Map<unknown, unknown>).delete(key)
      else (list as Map<unknown, unknown>).set(key, old)
    }
    this.n = mark
  }

  /** Drop the records after `mark` without undoing them (an op that failed half way). */
  drop (mark: number): void {
    const origin = this.first * this.size
    for (let i = mark; i < this.n; i++) this.take(i - origin)
    this.n = mark
  }

  /**
   * The records before `mark` will never be undone: the chunks wholly before it go, cleared (what
   * their records held is let go), the last SPARE_CHUNKS of them kept for grow() to use again. A
   * tree past the undo window forgets a chunk for every chunk it fills: a fresh one is a large
   * object whose pages are faulted in as it is filled (~0.5-1 ms of CPU each on this VM), where
   * clearing one is a fill of 2^15 slots.
   */
  forget (mark: number): void {
    if (mark <= this.forgotten) return
    this.forgotten = mark
    const whole = Math.floor(mark / this.size) - this.first
    if (whole > 0) {
      const gone = this.chunks.splice(0, Math.min(whole, this.chunks.length))
      this.first += whole
      for (let i = Math.max(0, gone.length - SPARE_CHUNKS); i < gone.length && this.spares.length < SPARE_CHUNKS; i++) {
        this.spares.push(gone[i].fill(undefined))
      }
    }
  }

  /** Slots in the log's chunks (forgotten ones in a chunk still held included): for tests. */
  get held (): number {
    return this.chunks.length * this.size
  }

  /** Cleared chunks kept for grow(): for tests. */
  get spare (): number {
    return this.spares.length
  }

  /** Every slot of the log's chunks and spares that holds anything, forgotten ones included: for tests. */
  get filled (): number {
    let n = 0
    for (const c of [...this.chunks, ...this.spares]) for (const v of c) if (v !== undefined) n++
    return n
  }

  /** Slot r (relative to chunk `first`), read and cleared (what an undone record held is let go). */
  private take (r: number): Undo {
    const c = this.chunks[r >> this.bits]
    const k = r & this.mask
    const v = c[k]
    c[k] = undefined
    return v
  }

  private put (list: unknown, key: unknown, old: unknown): void {
    let r = this.n - this.first * this.size
    this.n += 3
    const bits = this.bits
    const mask = this.mask
    if ((r & mask) <= mask - 2) {
      // the three slots in one chunk (nearly always)
      const c = this.chunks[r >> bits] ?? this.grow()
      const k = r & mask
      c[k] = list
      c[k + 1] = key
      c[k + 2] = old
      return
    }
    for (const v of [list, key, old]) {
      const c = this.chunks[r >> bits] ?? this.grow()
      c[r & mask] = v
      r++
    }
  }

  /** A new chunk at the end (a spare one when there is: forget()). */
  private grow (): Undo[] {
    const c: Undo[] = this.spares.pop() ?? new Array(this.size).fill(undefined)
    this.chunks.push(c)
    return c
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

  /**
   * set() of a key whose value the caller has just read (`old`: what map.get(key) gives now,
   * undefined when absent), with nothing changed in the map since: the record made from it, not
   * from a second lookup (most of the tree's changes replace a record the op has just read).
   */
  change<K, V> (map: Map<K, V>, key: K, old: V | undefined, value: V): void {
    if (value === undefined) throw new TypeError('the tree\'s maps hold no undefined')
    if (Journal.checking && map.get(key) !== old) throw new Error('Journal.change: the old value given is not the one the map holds')
    if (this.recording) this.put(map, key, old === undefined ? ABSENT : old)
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

  /**
   * Set a record's mtime or ctime in place (the record stays the one its map holds). For the
   * tree's records only: no one holds them but the tree's maps and this journal (the tree gives
   * out copies), so a change in place is seen as a new record would be, without a copy of
   * every field kept for the undo (a directory's times change with every entry made in it).
   */
  setTime (rec: Times, field: 'mtime' | 'ctime', value: bigint): void {
    if (this.recording) this.put(rec, field === 'mtime' ? MTIME : CTIME, rec[field])
    rec[field] = value
  }

  /**
   * One record for the keys an op is about to make, every one absent until now (a create's own
   * id in the maps of inodes, entries, links...): undone, `owner.unmake(key)` deletes them all.
   * The caller then sets them in their maps directly (no record each: a create made six, three
   * slots apiece, and every op received is recorded). Undo runs newest first, so the records
   * the op makes after this one are undone before it, and the op's keys are absent again after.
   */
  made (owner: Unmake, key: unknown): void {
    if (Journal.checking && !owner.absent(key)) throw new Error('Journal.made: a key said to be made was there already')
    if (this.recording) this.put(owner, MADE, key)
  }

  /** Replace the last item of a non-empty list. */
  setLast<T> (list: T[], value: T): void {
    if (this.recording) this.put(list, LAST, list[list.length - 1])
    list[list.length - 1] = value
  }
}

export type { Undo }
