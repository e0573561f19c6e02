// Id strings by their characters: the one string the tree keeps for each op id. A decoded op
// names ops the tree knows (its parents, the inodes and entries of its body: their ids are the
// ids of the ops that made them) by the characters of their ids; a new string made of those
// characters for every name was a new key to every Map it was looked up in, and V8 does much more
// for the first lookup of a string than for a string it has seen (the profile of a merge had the
// lookups of fresh id strings as its largest cost: candidates, Dag.has, the DAG's and the state's
// sets). An IdTable finds the string kept for an id from its characters (in the block, or
// written out from a CID's bytes), so a decoded op names known ops by the strings already keyed.
import { randomInt } from 'node:crypto'
import type { IdSource } from './opcbor.ts'

/** A seed per process: ids come from peers, and a known hash would let one crowd a slot's chain. */
const SEED = randomInt(0x7fffffff) | 1

/**
 * FNV-1a, seeded, of an id's length and its last HASHED chars (or bytes). Only op ids are kept
 * (and ROOT): the tail of one is the tail of the base32 of a sha-256 digest, as random as any
 * hash of the whole (a chain of slots is made by the ids kept; an id looked up, whatever it is,
 * walks one chain).
 */
const HASHED = 12

function hashChars (s: string): number {
  let h = Math.imul(SEED ^ 0x811c9dc5 ^ s.length, 0x01000193)
  for (let i = Math.max(0, s.length - HASHED); i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h
}

function hashBytes (b: Uint8Array, start: number, end: number): number {
  let h = Math.imul(SEED ^ 0x811c9dc5 ^ (end - start), 0x01000193)
  for (let i = Math.max(start, end - HASHED); i < end; i++) h = Math.imul(h ^ b[i], 0x01000193)
  return h
}

/** An open-addressed table of strings, found by their characters; strings are only added. */
export class IdTable implements IdSource {
  /** Slot -> index in `strs` + 1 (0: empty). */
  private slots: Int32Array
  private mask: number
  private readonly strs: string[] = []
  private hashes = new Int32Array(64)

  constructor (capacity = 64) {
    let n = 16
    while (n < capacity * 2) n *= 2
    this.slots = new Int32Array(n)
    this.mask = n - 1
  }

  get size (): number {
    return this.strs.length
  }

  /**
   * Keep `s` (an ASCII id) as the string for its characters, unless one is kept already; its
   * number (strings are numbered from 0 as they are kept: indexOf()).
   */
  add (s: string): number {
    const h = hashChars(s)
    const mask = this.mask
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const k = this.slots[i]
      if (k === 0) break
      if (this.hashes[k - 1] === h && this.strs[k - 1] === s) return k - 1
    }
    this.addNew(s, h)
    return this.strs.length - 1
  }

  /**
   * Keep `s`, known not to be kept (a find() of its chars, hashed `h` by that find, came back
   * empty since, and nothing was added): no second hash of it, no probe for it.
   */
  addNew (s: string, h: number): void {
    if ((this.strs.length + 1) * 2 > this.slots.length) this.grow()
    const k = this.strs.length
    this.strs.push(s)
    if (k >= this.hashes.length) {
      const more = new Int32Array(this.hashes.length * 2)
      more.set(this.hashes)
      this.hashes = more
    }
    this.hashes[k] = h
    this.place(h, k + 1)
  }

  find (bytes: Uint8Array, start: number, end: number): string | undefined {
    return this.findHashed(hashBytes(bytes, start, end), bytes, start, end)
  }

  /** True when `s` is kept. */
  has (s: string): boolean {
    return this.indexOf(s) >= 0
  }

  /**
   * The number of the string kept for `s`'s characters (add()), -1 when none is. Found with `===`
   * on the kept strings, never as a key of a Map: V8 internalizes a string the first time it is
   * a Map's key or is looked up in one (a probe of the isolate's string table, and a copy of the
   * string when it is young), ~1.4 us per fresh op id in a merge's receive; `===` of two strings
   * compares their chars.
   */
  indexOf (s: string): number {
    const h = hashChars(s)
    const mask = this.mask
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const k = this.slots[i]
      if (k === 0) return -1
      if (this.hashes[k - 1] === h && this.strs[k - 1] === s) return k - 1
    }
  }

  /** find() of chars whose hash is `h` (hashBytes). */
  findHashed (h: number, bytes: Uint8Array, start: number, end: number): string | undefined {
    const n = end - start
    const mask = this.mask
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const k = this.slots[i]
      if (k === 0) return undefined
      if (this.hashes[k - 1] !== h) continue
      const s = this.strs[k - 1]
      if (s.length !== n) continue
      let j = 0
      while (j < n && s.charCodeAt(j) === bytes[start + j]) j++
      if (j === n) return s
    }
  }

  private place (h: number, k: number): void {
    const mask = this.mask
    let i = h & mask
    while (this.slots[i] !== 0) i = (i + 1) & mask
    this.slots[i] = k
  }

  private grow (): void {
    this.slots = new Int32Array(this.slots.length * 2)
    this.mask = this.slots.length - 1
    for (let k = 0; k < this.strs.length; k++) this.place(this.hashes[k], k + 1)
  }
}

/** Where IdLayers.find() found the chars it was last given. */
export const IN_NEITHER = 0
export const IN_OWN = 1
export const IN_UNDER = 2

/** Two tables looked up in turn (a receive's own ids, then the DAG's), new ids learnt by the first. */
export class IdLayers implements IdSource {
  readonly own: IdTable
  readonly under: IdTable
  /**
   * Of the last find(): which table held the chars (IN_NEITHER, IN_OWN, IN_UNDER), and their
   * hash. An op's id is found as its block is hashed: whether the DAG holds it, and its place in
   * the own table, are known then (learn()), without hashing and probing for it twice more.
   */
  found = IN_NEITHER
  hash = 0

  constructor (own: IdTable, under: IdTable) {
    this.own = own
    this.under = under
  }

  find (bytes: Uint8Array, start: number, end: number): string | undefined {
    const h = hashBytes(bytes, start, end)
    this.hash = h
    let s = this.own.findHashed(h, bytes, start, end)
    if (s !== undefined) {
      this.found = IN_OWN
      return s
    }
    s = this.under.findHashed(h, bytes, start, end)
    this.found = s === undefined ? IN_NEITHER : IN_UNDER
    return s
  }

  /**
   * The own table learns `id`, the string the last find() gave (or made, when it found none)
   * with nothing found or added since; returns true when the under table (the DAG's) lacks it.
   */
  learn (id: string): boolean {
    if (this.found === IN_NEITHER) {
      this.own.addNew(id, this.hash)
      return true
    }
    // held by the under table: the ops that name it find it there
    if (this.found === IN_UNDER) return false
    // twice in the batch: the own table has it already
    return !this.under.has(id)
  }
}
