// A purpose-built reader of op blocks (issue 15 item 8): the block of a valid op of the common
// types (create, link, move, unlink, setattr, write, append of one extent), read straight into
// its fields and its body, each value checked as it is read against the rules op.ts's checks
// apply (checkBody, checkAuthor, the hlc, parents and sig checks), in the one byte layout
// dag-cbor gives such an op: the six keys of the op map in canonical order, canonical items,
// ASCII strings. No generic item tree, no key strings, no second walk to check the shape.
//
// It only ever accepts what the generic path (opcbor.ts decodeOpBlock, then op.ts's checks)
// accepts, and gives the same op for it: anything it does not read — another op type, a
// non-ASCII string, a value out of bounds or of another kind, an unknown or missing key, a
// non-canonical or truncated item — makes it return undefined, and the block goes to the generic
// path, which reads it or refuses it with its own error. So a block decodes (or is refused) as it
// was before; test/node/tree-opdecode.test.ts checks both paths against each other.
import { CID } from 'multiformats/cid'
import { asciiText, cidOfBytes, idOfBytesIn, latin1, type IdSource } from './opcbor.ts'
import type { Content, OpBody } from './types.ts'

/** What readOp() reads of an op block (op.ts makes the OpRecord and the DecodedOp of it). */
export interface ReadOp {
  body: OpBody
  author: string
  hlc: [number, number]
  parentIds: string[]
  /** Where the signature's bytes start in the block (they end at sigEnd): no view of them made here. */
  sigStart: number
  /** Where the block's `sig` entry starts and ends: the block without it is what was signed. */
  sigAt: number
  sigEnd: number
}

// limits, as op.ts has them (op.ts imports this file: its constants are not read here at load)
const MAX_INLINE_BYTES = 4 * 1024
const MAX_NAME_BYTES = 255
const MAX_TARGET_BYTES = 4096
const MAX_PARENTS = 64
const MAX_ID_CHARS = 128
const MAX_SIG_BYTES = 512
const U32 = 0xffffffff
const MAX_SAFE = Number.MAX_SAFE_INTEGER
const OP_VERSION = 1

const DAG_CBOR = 0x71
const RAW = 0x55
const SHA2_256 = 0x12

/** Thrown inside the reader: the block goes to the generic path. */
const BAIL = new Error('not a block the op reader reads')

let data: Uint8Array = new Uint8Array(0)
let pos = 0

// body keys, by their rank in canonical order (shorter first, then bytewise): a bit each
const KEYS = ['at', 'gid', 'uid', 'kind', 'mode', 'name', 'rdev', 'size', 'time', 'type', 'atime', 'entry', 'first', 'inode', 'mtime', 'offset', 'parent', 'target', 'content', 'replace'] as const
const AT = 1 << 0
const GID = 1 << 1
const UID = 1 << 2
const KIND = 1 << 3
const MODE = 1 << 4
const NAME = 1 << 5
const RDEV = 1 << 6
const SIZE = 1 << 7
const TIME = 1 << 8
const TYPE = 1 << 9
const ATIME = 1 << 10
const ENTRY = 1 << 11
const FIRST = 1 << 12
const INODE = 1 << 13
const MTIME = 1 << 14
const OFFSET = 1 << 15
const PARENT = 1 << 16
const TARGET = 1 << 17
const CONTENT = 1 << 18
const REPLACE = 1 << 19

const ascii = (s: string): Uint8Array => Uint8Array.from(s, c => c.charCodeAt(0))

/** The op types read here, with the keys each requires and allows. */
const CREATE = 1
const LINK = 2
const MOVE = 3
const UNLINK = 4
const SETATTR = 5
const WRITE = 6
const APPEND = 7
const TYPES: Array<[Uint8Array, string, number]> = [
  [ascii('create'), 'create', CREATE], [ascii('link'), 'link', LINK], [ascii('move'), 'move', MOVE], [ascii('unlink'), 'unlink', UNLINK],
  [ascii('setattr'), 'setattr', SETATTR], [ascii('write'), 'write', WRITE], [ascii('append'), 'append', APPEND]
]
const REQUIRED = [0, TYPE | PARENT | NAME | KIND | MODE | UID | GID | TIME, TYPE | PARENT | NAME | INODE | TIME, TYPE | ENTRY | PARENT | NAME | TIME, TYPE | ENTRY | TIME, TYPE | INODE | TIME, TYPE | INODE | CONTENT | SIZE | TIME, TYPE | INODE | CONTENT | AT | SIZE | TIME]
const OPTIONAL = [0, RDEV | TARGET | CONTENT | SIZE, 0, REPLACE, 0, MODE | UID | GID | ATIME | MTIME, FIRST, FIRST | OFFSET]
const KINDS: Array<[Uint8Array, string]> = ['file', 'dir', 'symlink', 'fifo', 'chr', 'blk', 'sock'].map(k => [ascii(k), k])

/** A uint64 read as a bigint in one step: its bytes put in `wide` (host byte order) and read through `wide64`. */
const wide64 = new BigUint64Array(1)
const wide = new Uint8Array(wide64.buffer)
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** The author strings read lately (an op's author is one of a few): the same string again, not a copy per op. */
const authors: string[] = []
const MAX_AUTHORS = 8

/**
 * Read an op block of a common type, checked; undefined when the block is not one this reader
 * reads (then op.ts decodes it the generic way, which gives the same op or refuses it).
 */
export function readOp (bytes: Uint8Array, idSource?: IdSource): ReadOp | undefined {
  if (bytes.constructor !== Uint8Array && !Buffer.isBuffer(bytes)) return undefined
  ids = idSource
  data = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  pos = 0
  try {
    return op()
  } catch (err) {
    if (err === BAIL) return undefined
    throw err
  } finally {
    data = EMPTY
    ids = undefined
  }
}
const EMPTY = new Uint8Array(0)
/** Where ids of known ops are found (their strings, not new ones), while a block is read. */
let ids: IdSource | undefined

/** The op map: { v, hlc, sig, body, author, parents }, its keys in canonical order. */
function op (): ReadOp {
  const d = data
  // a map of 6, key "v", the version
  if (d.length < 16 || d[0] !== 0xa6 || d[1] !== 0x61 || d[2] !== 0x76 || d[3] !== OP_VERSION) throw BAIL
  // key "hlc", a list of two
  if (d[4] !== 0x63 || d[5] !== 0x68 || d[6] !== 0x6c || d[7] !== 0x63 || d[8] !== 0x82) throw BAIL
  pos = 9
  const wall = uint(MAX_SAFE)
  const count = uint(U32)
  // key "sig", a byte string
  const sigAt = pos
  if (pos + 4 > d.length || d[pos] !== 0x63 || d[pos + 1] !== 0x73 || d[pos + 2] !== 0x69 || d[pos + 3] !== 0x67) throw BAIL
  pos += 4
  const h = byte()
  if (h >>> 5 !== 2) throw BAIL
  const n = length(h & 31)
  if (n === 0 || n > MAX_SIG_BYTES) throw BAIL
  const sigStart = pos
  pos += n
  const sigEnd = pos
  // key "body"
  if (pos + 5 > d.length || d[pos] !== 0x64 || d[pos + 1] !== 0x62 || d[pos + 2] !== 0x6f || d[pos + 3] !== 0x64 || d[pos + 4] !== 0x79) throw BAIL
  pos += 5
  const body = readBody()
  // key "author"
  if (pos + 7 > d.length || d[pos] !== 0x66 || d[pos + 1] !== 0x61 || d[pos + 2] !== 0x75 || d[pos + 3] !== 0x74 || d[pos + 4] !== 0x68 || d[pos + 5] !== 0x6f || d[pos + 6] !== 0x72) throw BAIL
  pos += 7
  const author = readAuthor()
  // key "parents", a list of op CIDs
  if (pos + 8 > d.length || d[pos] !== 0x67 || d[pos + 1] !== 0x70 || d[pos + 2] !== 0x61 || d[pos + 3] !== 0x72 || d[pos + 4] !== 0x65 || d[pos + 5] !== 0x6e || d[pos + 6] !== 0x74 || d[pos + 7] !== 0x73) throw BAIL
  pos += 8
  const parentIds = readParents()
  if (pos !== d.length) throw BAIL
  return { body, author, hlc: [wall, count], parentIds, sigStart, sigAt, sigEnd }
}

function byte (): number {
  if (pos >= data.length) throw BAIL
  return data[pos++]
}

/** An argument in its shortest encoding, as a number (past MAX_SAFE: not read here). */
function argument (minor: number): number {
  if (minor < 24) return minor
  const d = data
  const p = pos
  if (minor === 24) {
    if (p + 1 > d.length || d[p] < 24) throw BAIL
    pos = p + 1
    return d[p]
  }
  if (minor === 25) {
    if (p + 2 > d.length) throw BAIL
    const v = (d[p] << 8) | d[p + 1]
    if (v < 256) throw BAIL
    pos = p + 2
    return v
  }
  if (minor === 26) {
    if (p + 4 > d.length) throw BAIL
    const v = d[p] * 16777216 + (d[p + 1] << 16) + (d[p + 2] << 8) + d[p + 3]
    if (v < 65536) throw BAIL
    pos = p + 4
    return v
  }
  if (minor === 27) {
    if (p + 8 > d.length) throw BAIL
    const hi = d[p] * 16777216 + (d[p + 1] << 16) + (d[p + 2] << 8) + d[p + 3]
    const lo = d[p + 4] * 16777216 + (d[p + 5] << 16) + (d[p + 6] << 8) + d[p + 7]
    if (hi === 0 || hi >= 0x200000) throw BAIL
    pos = p + 8
    return hi * 4294967296 + lo
  }
  throw BAIL
}

/** An unsigned int at most `max`. */
function uint (max: number): number {
  const b = byte()
  if (b >>> 5 !== 0) throw BAIL
  const v = argument(b & 31)
  if (v > max) throw BAIL
  return v
}

/** An unsigned int as a bigint (times: any uint64). */
function bigUint (): bigint {
  const b = byte()
  if (b >>> 5 !== 0) throw BAIL
  if (b !== 0x1b) return BigInt(argument(b & 31))
  const d = data
  const p = pos
  if (p + 8 > d.length) throw BAIL
  // the shortest encoding: more than 32 bits
  if (d[p] === 0 && d[p + 1] === 0 && d[p + 2] === 0 && d[p + 3] === 0) throw BAIL
  if (LITTLE) for (let i = 0; i < 8; i++) wide[7 - i] = d[p + i]
  else for (let i = 0; i < 8; i++) wide[i] = d[p + i]
  pos = p + 8
  return wide64[0]
}

/** A length: at most what is left of the block. */
function length (minor: number): number {
  const n = argument(minor)
  if (pos + n > data.length) throw BAIL
  return n
}

/** A text string's length (its bytes follow at `pos`), between `min` and `max`. */
function text (min: number, max: number): number {
  const b = byte()
  if (b >>> 5 !== 3) throw BAIL
  const n = length(b & 31)
  if (n < min || n > max) throw BAIL
  return n
}

/** An id (op.ts checkId): 1 to MAX_ID_CHARS letters and digits. */
function readId (): string {
  const n = text(1, MAX_ID_CHARS)
  const d = data
  const start = pos
  const end = start + n
  // an id the tables keep is one (an op's, or ROOT), its chars checked when it came: the chars
  // are checked only when none is found (most ids a block names are known ones: its parents, the
  // inodes and entries its body names)
  let s = ids?.find(d, start, end)
  if (s === undefined) {
    for (let i = start; i < end; i++) {
      const c = d[i]
      // 0-9, A-Z, a-z
      if (c < 0x30 || (c > 0x39 && c < 0x41) || (c > 0x5a && c < 0x61) || c > 0x7a) throw BAIL
    }
    s = latin1(d, start, end)
  }
  pos = end
  return s
}

/** An entry name (op.ts checkName), ASCII: no '/', no NUL, not '.' or '..'. */
function readName (): string {
  const n = text(1, MAX_NAME_BYTES)
  const d = data
  const start = pos
  const end = start + n
  for (let i = start; i < end; i++) {
    const c = d[i]
    if (c === 0 || c === 0x2f || c >= 0x80) throw BAIL
  }
  if (d[start] === 0x2e && (n === 1 || (n === 2 && d[start + 1] === 0x2e))) throw BAIL
  pos = end
  return asciiText(d, start, end)
}

/** A symlink target (op.ts checkTarget), ASCII: no NUL. */
function readTarget (): string {
  const n = text(1, MAX_TARGET_BYTES)
  const d = data
  const start = pos
  for (let i = start; i < start + n; i++) if (d[i] === 0 || d[i] >= 0x80) throw BAIL
  pos = start + n
  return latin1(d, start, pos)
}

/** The author (op.ts checkAuthor), ASCII: 1 to MAX_ID_CHARS chars, no NUL; a recent author's string again. */
function readAuthor (): string {
  const n = text(1, MAX_ID_CHARS)
  const d = data
  const start = pos
  const end = start + n
  for (let i = start; i < end; i++) if (d[i] === 0 || d[i] >= 0x80) throw BAIL
  pos = end
  for (let k = 0; k < authors.length; k++) {
    const a = authors[k]
    if (a.length !== n) continue
    let same = true
    for (let i = 0; i < n && same; i++) same = a.charCodeAt(i) === d[start + i]
    if (same) return a
  }
  const a = latin1(d, start, end)
  if (authors.length >= MAX_AUTHORS) authors.pop()
  authors.unshift(a)
  return a
}

/** The parents: a list of at most MAX_PARENTS op CIDs, each once, as their ids. */
function readParents (): string[] {
  const b = byte()
  if (b >>> 5 !== 4) throw BAIL
  const n = argument(b & 31)
  if (n > MAX_PARENTS) throw BAIL
  const out: string[] = new Array(n)
  const d = data
  for (let i = 0; i < n; i++) {
    // tag 42, a byte string of 37 bytes, 0x00, then CIDv1 dag-cbor sha2-256 and 32 bytes
    const at = pos
    if (at + 41 > d.length || d[at] !== 0xd8 || d[at + 1] !== 42 || d[at + 2] !== 0x58 || d[at + 3] !== 37 || d[at + 4] !== 0 ||
        d[at + 5] !== 1 || d[at + 6] !== DAG_CBOR || d[at + 7] !== SHA2_256 || d[at + 8] !== 32) throw BAIL
    const id = idOfBytesIn(d, at + 5, at + 41, ids)
    for (let k = 0; k < i; k++) if (out[k] === id) throw BAIL
    out[i] = id
    pos = at + 41
  }
  return out
}

/** A CID (tag 42, a byte string: 0x00 and the CID's bytes). */
function readCid (): CID {
  const d = data
  if (pos + 3 > d.length || d[pos] !== 0xd8 || d[pos + 1] !== 42) throw BAIL
  pos += 2
  const h = byte()
  if (h >>> 5 !== 2) throw BAIL
  const n = length(h & 31)
  if (n < 2 || d[pos] !== 0) throw BAIL
  pos += n
  const cid = cidOfBytes(d.subarray(pos - n + 1, pos))
  if (cid === undefined) throw BAIL
  return cid
}

/** File content (op.ts checkContent): { inline } or { manifest, sum? }; null (0xf6) is NULL_CONTENT. */
function readContent (): Content | null {
  const d = data
  const b = byte()
  if (b === 0xf6) return null
  if (b === 0xa1) {
    // { inline: bytes } or { manifest: CID }
    if (pos + 7 <= d.length && d[pos] === 0x66 && d[pos + 1] === 0x69 && d[pos + 2] === 0x6e && d[pos + 3] === 0x6c && d[pos + 4] === 0x69 && d[pos + 5] === 0x6e && d[pos + 6] === 0x65) {
      pos += 7
      const h = byte()
      if (h >>> 5 !== 2) throw BAIL
      const n = length(h & 31)
      if (n > MAX_INLINE_BYTES) throw BAIL
      const inline = d.subarray(pos, pos + n)
      pos += n
      return { inline }
    }
    manifestKey()
    return { manifest: readCid() }
  }
  if (b === 0xa2) {
    // { sum: raw sha256 CIDv1, manifest: CID }, in canonical order
    if (pos + 4 > d.length || d[pos] !== 0x63 || d[pos + 1] !== 0x73 || d[pos + 2] !== 0x75 || d[pos + 3] !== 0x6d) throw BAIL
    pos += 4
    const sum = readCid()
    if (sum.version !== 1 || sum.code !== RAW || sum.multihash.code !== SHA2_256 || sum.multihash.size !== 32) throw BAIL
    manifestKey()
    const manifest = readCid()
    const out: any = {}
    out.sum = sum
    out.manifest = manifest
    return out
  }
  throw BAIL
}

function manifestKey (): void {
  const d = data
  if (pos + 9 > d.length || d[pos] !== 0x68 || d[pos + 1] !== 0x6d || d[pos + 2] !== 0x61 || d[pos + 3] !== 0x6e || d[pos + 4] !== 0x69 || d[pos + 5] !== 0x66 || d[pos + 6] !== 0x65 || d[pos + 7] !== 0x73 || d[pos + 8] !== 0x74) throw BAIL
  pos += 9
}

/** A body key: its bit (KEYS), or a throw for a key not read here. */
function key (): number {
  const b = byte()
  if (b >>> 5 !== 3) throw BAIL
  const n = b & 31
  const d = data
  const p = pos
  if (n < 2 || p + n > d.length) throw BAIL
  // its length and first two chars tell a known key: then its every byte is compared
  const known = keyByHead.get((n << 16) | (d[p] << 8) | d[p + 1])
  if (known === undefined) throw BAIL
  const bytes = known.bytes
  for (let i = 2; i < n; i++) if (bytes[i] !== d[p + i]) throw BAIL
  pos = p + n
  return known.bit
}

/** The keys by (length << 16 | first char << 8 | second char): unique for KEYS. */
const keyByHead = new Map<number, { bytes: Uint8Array, bit: number }>()
KEYS.forEach((k, rank) => {
  const head = (k.length << 16) | (k.charCodeAt(0) << 8) | k.charCodeAt(1)
  if (keyByHead.has(head)) throw new Error(`opdecode: two keys start ${k.slice(0, 2)}`)
  keyByHead.set(head, { bytes: ascii(k), bit: 1 << rank })
})

/** One of `names` (its string: no copy per op). */
function oneOf<T> (names: Array<[Uint8Array, T, ...unknown[]]>): [Uint8Array, T, ...unknown[]] {
  const n = text(1, 16)
  const d = data
  const p = pos
  for (const e of names) {
    const bytes = e[0]
    if (bytes.length !== n) continue
    let i = 0
    while (i < n && bytes[i] === d[p + i]) i++
    if (i === n) {
      pos = p + n
      return e
    }
  }
  throw BAIL
}

/** The body map, checked as op.ts checkBody() checks it; its keys set in canonical order, as the generic decoder sets them. */
function readBody (): OpBody {
  const b = byte()
  if (b >>> 5 !== 5) throw BAIL
  const count = argument(b & 31)
  if (count > KEYS.length) throw BAIL
  let seen = 0
  let last = 0
  let at = 0; let gid = 0; let uid = 0; let kind = ''; let mode = 0; let name = ''; let rdev = 0; let size = 0; let time = 0n
  let type = 0; let typeName = ''; let atime = 0n; let entry = ''; let inode = ''; let mtime = 0n; let offset = 0; let parent = ''
  let target = ''; let content: Content | null = null; let replace = ''
  for (let i = 0; i < count; i++) {
    const k = key()
    // canonical order, strictly: ranks increase (no key twice)
    if (k <= last) throw BAIL
    last = k
    seen |= k
    switch (k) {
      case AT: at = uint(MAX_SAFE); break
      case GID: gid = uint(U32); break
      case UID: uid = uint(U32); break
      case KIND: kind = oneOf(KINDS)[1]; break
      case MODE: mode = uint(0o7777); break
      case NAME: name = readName(); break
      case RDEV: rdev = uint(U32); break
      case SIZE: size = uint(MAX_SAFE); break
      case TIME: time = bigUint(); break
      case TYPE: { const t = oneOf(TYPES); typeName = t[1]; type = t[2] as number; break }
      case ATIME: atime = bigUint(); break
      case ENTRY: entry = readId(); break
      case FIRST: if (byte() !== 0xf5) throw BAIL; break
      case INODE: inode = readId(); break
      case MTIME: mtime = bigUint(); break
      case OFFSET: offset = uint(MAX_SAFE); break
      case PARENT: parent = readId(); break
      case TARGET: target = readTarget(); break
      case CONTENT: content = readContent(); break
      case REPLACE: replace = readId(); break
    }
  }
  if (type === 0) throw BAIL
  const required = REQUIRED[type]
  if ((seen & required) !== required || (seen & ~(required | OPTIONAL[type])) !== 0) throw BAIL
  const inline = content !== null && 'inline' in content ? content.inline.byteLength : -1
  // the checks of each type that tie fields together (op.ts checkBody)
  switch (type) {
    case CREATE:
      if ((kind === 'symlink') !== ((seen & TARGET) !== 0)) throw BAIL
      if ((seen & CONTENT) !== 0 && (content === null || kind !== 'file')) throw BAIL
      if (inline >= 0 && (seen & SIZE) !== 0 && size !== inline) throw BAIL
      break
    case WRITE:
      if (inline >= 0 && size !== inline) throw BAIL
      break
    case APPEND:
      if (content === null || size === 0) throw BAIL
      if (inline >= 0 && (at !== 0 || inline !== size)) throw BAIL
      if (!Number.isSafeInteger(at + size)) throw BAIL
      if ((seen & OFFSET) !== 0 && !Number.isSafeInteger(offset + size)) throw BAIL
      break
  }
  // the body, its keys in canonical order (the generic decoder's order: the same shapes)
  const out: any = {}
  if ((seen & AT) !== 0) out.at = at
  if ((seen & GID) !== 0) out.gid = gid
  if ((seen & UID) !== 0) out.uid = uid
  if ((seen & KIND) !== 0) out.kind = kind
  if ((seen & MODE) !== 0) out.mode = mode
  if ((seen & NAME) !== 0) out.name = name
  if ((seen & RDEV) !== 0) out.rdev = rdev
  if ((seen & SIZE) !== 0) out.size = size
  out.time = time
  out.type = typeName
  if ((seen & ATIME) !== 0) out.atime = atime
  if ((seen & ENTRY) !== 0) out.entry = entry
  if ((seen & FIRST) !== 0) out.first = true
  if ((seen & INODE) !== 0) out.inode = inode
  if ((seen & MTIME) !== 0) out.mtime = mtime
  if ((seen & OFFSET) !== 0) out.offset = offset
  if ((seen & PARENT) !== 0) out.parent = parent
  if ((seen & TARGET) !== 0) out.target = target
  if ((seen & CONTENT) !== 0) out.content = content
  if ((seen & REPLACE) !== 0) out.replace = replace
  return out
}
