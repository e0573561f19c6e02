// Ops as signed dag-cbor blocks: { v: 1, body, author, hlc, parents, sig }, where sig signs the
// dag-cbor encoding of everything but sig. An op's CID is CIDv1(dag-cbor, sha256(block)); its
// total-order key sorts by (hlc, author, cid). Everything decoded here is bounded and checked.
import { hash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { Digest } from 'multiformats/hashes/digest'
import { equalBytes } from '../bytes.ts'
import { InvalidOpError } from './errors.ts'
import { bytesOfId, bytesOfIdInto, decodeOpBlock, idOfBytes, idOfBytesIn, latin1, type IdSource } from './opcbor.ts'
import type { IdLayers } from './ids.ts'
import { readOp } from './opdecode.ts'
import type { Content, Hlc, Op, OpBody, Signer, Verify } from './types.ts'

/** Op format version. */
export const OP_VERSION = 1
/** Largest inline file content, bytes (bigger files go to chunks and a manifest). */
export const MAX_INLINE_BYTES = 4 * 1024
/** Largest xattr value, bytes. */
export const MAX_XATTR_VALUE_BYTES = 60 * 1024
/**
 * Most extents one `append` op carries (its own and those of `more`, issue 15 item 1): a commit
 * with more ranges is several ops (node/volume.ts). As many as a patch commit records
 * (open-file.ts PATCH_COMMIT_RANGES): an fsync of random 4 KiB writes is one op.
 */
export const MAX_OP_EXTENTS = 16
/**
 * Largest op block, bytes: 64 KiB of metadata plus the inline content of MAX_OP_EXTENTS
 * extents (a multi-extent op of inline pieces; every other op holds one inline content at
 * most, as when this was 64 KiB plus one). Old hosts refuse blocks past 68 KiB: only
 * multi-extent ops reach that, which they refuse anyway (unknown field `more`).
 */
export const MAX_OP_BYTES = 64 * 1024 + MAX_OP_EXTENTS * MAX_INLINE_BYTES
/** Longest entry or xattr name, bytes of UTF-8 (NAME_MAX). */
export const MAX_NAME_BYTES = 255
/** Longest symlink target, bytes of UTF-8 (PATH_MAX). */
export const MAX_TARGET_BYTES = 4096
/** Most parents (heads) one op may name. */
export const MAX_PARENTS = 64
/** Longest author (peer id string) and longest inode/entry id, characters. */
export const MAX_ID_CHARS = 128
/** Largest signature, bytes. */
export const MAX_SIG_BYTES = 512
/** Most conflict siblings one `resolve` op settles. */
export const MAX_RESOLVE_SIBLINGS = 256

const DAG_CBOR = 0x71
const RAW = 0x55
const SHA2_256 = 0x12
const KINDS = new Set(['file', 'dir', 'symlink', 'fifo', 'chr', 'blk', 'sock'])
const U32 = 0xffffffff
const utf8 = new TextEncoder()

/** The bytes every op CID starts with: CIDv1, dag-cbor, sha2-256, 32 bytes. */
const OP_CID_PREFIX = new Uint8Array([1, DAG_CBOR, SHA2_256, 32])

/**
 * The CID of an op block (built directly: this is on the path of every op received; the one-shot
 * hash() makes no Hash object per op).
 */
export function cidOf (bytes: Uint8Array): CID {
  const cid = cidBytes()
  cid.set(OP_CID_PREFIX)
  // the digest as a latin1 string (a byte per char) copied in: half the cost of a Buffer of it
  const digest = hash('sha256', bytes, 'latin1')
  for (let i = 0; i < 32; i++) cid[4 + i] = digest.charCodeAt(i)
  return new CID(1, DAG_CBOR, new Digest(SHA2_256, 32, cid.subarray(4), cid.subarray(2)), cid) as CID
}

/**
 * The op CID of a block whose sha2-256 digest is `digest` (32 bytes): what sync asks a peer for
 * when range reconciliation names the ops it lacks by digest. Built as cidOf() builds one (in a
 * slab), not by multiformats' create() and CID.createV1(), which copy the digest into an
 * ArrayBuffer of its own, then the CID's bytes into another: thousands per merge.
 */
export function opCidOf (digest: Uint8Array): CID {
  if (digest.byteLength !== 32) throw new TypeError('an op digest is 32 bytes')
  const cid = cidBytes()
  cid.set(OP_CID_PREFIX)
  cid.set(digest, 4)
  return new CID(1, DAG_CBOR, new Digest(SHA2_256, 32, cid.subarray(4), cid.subarray(2)), cid) as CID
}

/** Where idOfBlock() writes a block's CID (the prefix, then the digest) before reading its id. */
const cidScratch = new Uint8Array(36)

/**
 * The op id of a block (idOf() of its CID), without a CID object: an op makes its CID when asked
 * for one (OpRecord), and most ops received never are; its digest is read back from the id
 * (OpRecord.digest). The string `ids` holds for the id when it holds one.
 */
function idOfBlock (bytes: Uint8Array, ids?: IdSource): string {
  const s = cidScratch
  // the CID's prefix (OP_CID_PREFIX) byte by byte: a set() is a builtin call per op for four bytes
  s[0] = 1
  s[1] = DAG_CBOR
  s[2] = SHA2_256
  s[3] = 32
  const digest = hash('sha256', bytes, 'latin1')
  for (let i = 0; i < 32; i++) s[4 + i] = digest.charCodeAt(i)
  return idOfBytesIn(s, 0, 36, ids)
}

/** The sha2-256 digest of an op block (32 bytes) and its op id (idOf() of its CID). */
export function digestOf (bytes: Uint8Array, ids?: IdSource): { digest: Uint8Array, id: string } {
  const id = idOfBlock(bytes, ids)
  return { digest: cidScratch.slice(4), id }
}

/** The op CID whose digest is `digest`, a view of the CID's 36 bytes (as OpRecord.digest reads one from its id), or else any 32 bytes. */
function cidOfDigest (digest: Uint8Array): CID {
  if (digest.byteOffset < 4 || digest.buffer.byteLength < digest.byteOffset + 32) return opCidOf(digest)
  const bytes = new Uint8Array(digest.buffer, digest.byteOffset - 4, 36)
  if (bytes[0] !== 1 || bytes[1] !== DAG_CBOR || bytes[2] !== SHA2_256 || bytes[3] !== 32) return opCidOf(digest)
  return new CID(1, DAG_CBOR, new Digest(SHA2_256, 32, digest, bytes.subarray(2)), bytes) as CID
}

/**
 * An op as the tree keeps it (types.ts Op): what it reads of every op, and its CID made the first
 * time it is asked for (versions, heads, events' `cid`), from the digest. A CID object is five
 * objects (the CID, its Digest and three views), and every op received is kept for as long as the
 * tree runs: they were a fifth of what a held op weighed.
 */
export class OpRecord implements Op {
  id: string
  parentIds: string[]
  bytes: Uint8Array
  body: OpBody
  author: string
  hlc: Hlc
  private made: CID | undefined
  /**
   * The op's node in the DAG of the tree that holds it (dag.ts DagNode, which reads these): an
   * op kept by a tree is its own DAG node, where a node object per op weighed 80 bytes. Set by
   * Dag.add(); seq 0 until then.
   */
  seq = 0
  c0 = 0
  c1 = 0
  more: number[] | undefined = undefined
  ino = 0

  /**
   * `id`: idOf() of the op's CID. The digest is not kept: it is read back from the id when asked
   * (the rbsr index asks once, and keeps a copy in its own buffer; a CID is made from it). A
   * view of it kept per op, with the 36 bytes of CID it showed, weighed ~130 bytes, and every
   * op received is kept for as long as the tree runs.
   */
  constructor (id: string, parentIds: string[], bytes: Uint8Array, body: OpBody, author: string, hlc: Hlc, cid?: CID) {
    this.id = id
    this.parentIds = parentIds
    this.bytes = bytes
    this.body = body
    this.author = author
    this.hlc = hlc
    this.made = cid
  }

  /** The op itself, as a DAG node (DagNode.op). */
  get op (): Op {
    return this
  }

  /** The sha2-256 digest of the op's block (its CID's multihash digest). */
  get digest (): Uint8Array {
    if (this.made !== undefined) return this.made.multihash.digest
    const b = bytesOfId(this.id)
    if (b !== undefined && b.length === 36 && b[0] === 1 && b[1] === DAG_CBOR && b[2] === SHA2_256 && b[3] === 32) return b.subarray(4)
    // (not an id this module makes: every op's is, from its CID)
    return CID.parse(this.id).multihash.digest
  }

  /** Write digest's 32 bytes into `out` at `at` (digestInto()): read back from the id into a scratch array. */
  digestTo (out: Uint8Array, at: number): void {
    if (this.made === undefined && this.id.length === OP_ID_CHARS) {
      const b = idBytesScratch
      if (bytesOfIdInto(this.id, b, 0) === 36 && b[0] === 1 && b[1] === DAG_CBOR && b[2] === SHA2_256 && b[3] === 32) {
        for (let i = 0; i < 32; i++) out[at + i] = b[4 + i]
        return
      }
    }
    setDigest(this.digest, out, at)
  }

  get cid (): CID {
    if (this.made === undefined) this.made = cidOfDigest(this.digest)
    return this.made
  }
}

/** Where digestInto() reads an op id's 36 bytes of CID back. */
const idBytesScratch = new Uint8Array(36)
/** Chars of an op id: 'b' and the base32 of a 36-byte CID. */
const OP_ID_CHARS = 59

/**
 * Write op's digest (Op.digest) into `out` at `at`, with no array made for it (Op.digest of an
 * OpRecord reads it back from its id into an array of its own, and a view: ~300 bytes of garbage
 * per op where the reconciliation index, which copies the 32 bytes, is all that reads it).
 */
export function digestInto (op: Op, out: Uint8Array, at: number): void {
  if (op instanceof OpRecord) op.digestTo(out, at)
  else setDigest(op.digest, out, at)
}

/** A digest is 32 bytes: another length would leave a former op's bytes in a reused array, or spill into the next slot (review32d). */
function setDigest (digest: Uint8Array, out: Uint8Array, at: number): void {
  if (digest.byteLength !== 32) throw new RangeError(`an op digest is 32 bytes, not ${digest.byteLength}`)
  out.set(digest, at)
}

/** CIDs per slab: op CIDs are carved from shared slabs (see cidBytes). */
const CID_SLAB = 1024
let slab = new Uint8Array(0)
let slabAt = 0

/**
 * 36 bytes for an op CID. A lone `new Uint8Array(36)` is kept in V8's heap and moved to an
 * ArrayBuffer of its own the first time its `.buffer` is read, which multiformats' CID and
 * Digest constructors do three times: a view into a shared slab has its buffer already (a slab
 * lives while any CID cut from it does, as a Buffer pool does).
 */
function cidBytes (): Uint8Array {
  if (slabAt + 36 > slab.length) {
    slab = new Uint8Array(new ArrayBuffer(36 * CID_SLAB))
    slabAt = 0
  }
  slabAt += 36
  return slab.subarray(slabAt - 36, slabAt)
}

/**
 * cid.toString() (multibase base32, 'b' prefix), without the generic encoder and its per-CID
 * cache: op ids are made for every op and every parent received (opcbor.ts idOfBytes).
 */
export function idOf (cid: CID): string {
  if (cid.version !== 1) return cid.toString()
  const bytes = cid.bytes
  return idOfBytes(bytes, 0, bytes.length)
}

const HEX = utf8.encode('0123456789abcdef')
/** Where orderKey() writes a key's characters before reading them as one string. */
let keyScratch = new Uint8Array(256)

/**
 * The total-order key: compares as (hlc, author, cid) under plain string comparison: hlc[0] as
 * 13 hex digits, hlc[1] as 8, the author, NUL, the cid string. Written into a buffer and read as
 * one flat string (as idOf does): the same string as the concatenation, which is a rope of the
 * pieces and their padded copies, kept with each op and walked by every comparison of keys.
 */
export function orderKey (hlc: Hlc, author: string, cid: string): string {
  const length = 21 + author.length + 1 + cid.length
  if (keyScratch.length < length) keyScratch = new Uint8Array(length * 2)
  const out = keyScratch
  // 13 hex digits hold hlc[0] below 2^52; a larger one has more digits than the padding: joined
  let wall = hlc[0]
  if (wall >= 2 ** 52) return orderKeyJoined(hlc, author, cid)
  for (let i = 12; i >= 0; i--) {
    out[i] = HEX[wall % 16]
    wall = Math.floor(wall / 16)
  }
  let count = hlc[1]
  if (count > 0xffffffff) return orderKeyJoined(hlc, author, cid)
  for (let i = 20; i >= 13; i--) {
    out[i] = HEX[count & 15]
    count >>>= 4
  }
  let n = 21
  for (let i = 0; i < author.length; i++) {
    const c = author.charCodeAt(i)
    // a char past latin1 does not fit a byte: the key is built as a concatenation instead
    if (c > 0xff) return orderKeyJoined(hlc, author, cid)
    out[n++] = c
  }
  out[n++] = 0
  for (let i = 0; i < cid.length; i++) {
    const c = cid.charCodeAt(i)
    if (c > 0xff) return orderKeyJoined(hlc, author, cid)
    out[n++] = c
  }
  return latin1(out, 0, n)
}

function orderKeyJoined (hlc: Hlc, author: string, cid: string): string {
  return hlc[0].toString(16).padStart(13, '0') + hlc[1].toString(16).padStart(8, '0') + author + '\u0000' + cid
}

/** The wall clocks below which compareOps() compares numbers (orderKey() pads them to 13 hex digits). */
const PADDED_WALL = 2 ** 52

/**
 * The total order of ops: -1, 0 or 1 as their orderKey() strings compare, without making the
 * strings (a key per op was 150 bytes kept with every op, and a string built per op received):
 * hlc, then author, then id. Authors hold no NUL (checkAuthor), so `author + NUL` compares as
 * the author alone. A wall clock from 2^52 on has more hex digits than the key pads to, and such
 * keys compare as strings, not as numbers: those are compared by their keys, as before.
 */
export function compareOps (a: Pick<Op, 'hlc' | 'author' | 'id'>, b: Pick<Op, 'hlc' | 'author' | 'id'>): number {
  const x = a.hlc
  const y = b.hlc
  if (x[0] >= PADDED_WALL || y[0] >= PADDED_WALL) {
    const ka = orderKey(x, a.author, a.id)
    const kb = orderKey(y, b.author, b.id)
    return ka < kb ? -1 : ka > kb ? 1 : 0
  }
  if (x[0] !== y[0]) return x[0] < y[0] ? -1 : 1
  if (x[1] !== y[1]) return x[1] < y[1] ? -1 : 1
  if (a.author !== b.author) return a.author < b.author ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** Build, sign and encode an op. The body is validated first. */
export async function createOp (signer: Signer, body: OpBody, hlc: Hlc, parents: CID[]): Promise<Op> {
  checkBody(body)
  checkAuthor(signer.author)
  const unsigned = { v: OP_VERSION, body: plain(body), author: signer.author, hlc, parents }
  const signed = dagCbor.encode(unsigned)
  const sig = await signer.sign(signed)
  const bytes = withSig(signed, sig) ?? dagCbor.encode({ ...unsigned, sig })
  if (bytes.byteLength > MAX_OP_BYTES) throw new InvalidOpError(`op is ${bytes.byteLength} bytes, more than ${MAX_OP_BYTES}`)
  const cid = cidOf(bytes)
  const id = idOf(cid)
  return new OpRecord(id, parents.map(idOf), bytes, body, signer.author, hlc, cid)
}

/**
 * The block of an op from the encoding of its unsigned map (what the signature covers) and its
 * signature: dag-cbor sorts map keys by length, then bytes (v, hlc, sig, body, author, parents),
 * so the signed map is the unsigned one with one more entry after `hlc` and a header counting
 * it. Encoding the whole op again (its inline bytes too) cost as much as this copy many times
 * over, on every op committed. undefined when `unsigned` is not the five-entry map it expects
 * (then the caller encodes the op whole); tree-op-encode.test.ts checks it against dag-cbor.
 */
export function withSig (unsigned: Uint8Array, sig: Uint8Array): Uint8Array | undefined {
  // a map of 5, key "v", a small version number, key "hlc", an array of two unsigned ints
  if (sig.byteLength !== 64 || unsigned[0] !== 0xa5 || unsigned[1] !== 0x61 || unsigned[2] !== 0x76 || unsigned[3] > 0x17) return undefined
  if (unsigned[4] !== 0x63 || unsigned[5] !== 0x68 || unsigned[6] !== 0x6c || unsigned[7] !== 0x63 || unsigned[8] !== 0x82) return undefined
  let at = 9
  for (let i = 0; i < 2; i++) {
    const b = unsigned[at]
    if (b === undefined || b > 0x1b) return undefined
    at += b < 0x18 ? 1 : 1 + (1 << (b - 0x18))
  }
  // what follows is the key "body"
  if (unsigned[at] !== 0x64 || unsigned[at + 1] !== 0x62 || unsigned[at + 2] !== 0x6f || unsigned[at + 3] !== 0x64 || unsigned[at + 4] !== 0x79) return undefined
  const out = new Uint8Array(unsigned.byteLength + SIG_ENTRY)
  out.set(unsigned.subarray(0, at))
  out[0] = 0xa6
  // key "sig", then a byte string of 64
  out.set([0x63, 0x73, 0x69, 0x67, 0x58, 0x40], at)
  out.set(sig, at + 6)
  out.set(unsigned.subarray(at), at + SIG_ENTRY)
  return out
}

/** Bytes of the `sig` entry of an op block: its key (4), the byte string's header (2) and 64 bytes. */
const SIG_ENTRY = 4 + 2 + 64

/**
 * Decode an op block from a peer or the log: bounded size, strict dag-cbor, checked shape; with
 * `verify`, the signature is checked too. The CID is derived from the bytes themselves.
 */
export async function decodeOp (bytes: Uint8Array, verify?: Verify, ids?: IdLayers): Promise<Op> {
  const d = decodeUnverified(bytes, undefined, ids)
  if (verify !== undefined) await checkSignature(d, verify)
  return d.op
}

/**
 * A decoded op whose signature is not checked yet, with what checkSignature() needs: where the
 * `sig` entry of its block is (`sigAt` to `sigEnd`), when the block is the encoding of its
 * value byte for byte (opcbor.ts decodeOpBlock's `exact`); else the body as decoded (`rawBody`),
 * to encode the signed bytes again.
 */
export interface DecodedOp { op: Op, id: string, sig: Uint8Array, rawBody?: unknown, sigAt?: number, sigEnd?: number, fresh?: boolean }

/**
 * decodeOp() without the signature check (checkSignature() does it, or the tree vouches).
 * `named`: the block's CID and id (cidOf(), idOf()) when the caller derived them from these very
 * bytes already (sync hashes each op it fetches to tell the fresh ones: Tree.receive's `named`).
 */
export function decodeUnverified (bytes: Uint8Array, named?: { cid: CID, id: string }, ids?: IdLayers): DecodedOp {
  if (!(bytes instanceof Uint8Array)) throw new InvalidOpError('not a byte array')
  if (bytes.byteLength > MAX_OP_BYTES) throw new InvalidOpError(`op is ${bytes.byteLength} bytes, more than ${MAX_OP_BYTES}`)
  let id: string
  // fresh: not an op the tables' DAG holds (as it stood now: DecodedOp.fresh); the ops decoded
  // after this one that name it find this very string (the own table learns it)
  let fresh = false
  if (named !== undefined) {
    id = named.id
    fresh = ids !== undefined && !ids.under.has(id)
    ids?.own.add(id)
  } else {
    id = idOfBlock(bytes, ids)
    // (idOfBlock found the id's chars in the tables, or made it: what it found tells)
    if (ids !== undefined) fresh = ids.learn(id)
  }
  // the common op types are read straight into their fields (opdecode.ts), the rest as any block
  const r = readOp(bytes, ids)
  let d: DecodedOp
  if (r !== undefined) {
    const op = new OpRecord(id, r.parentIds, bytes, r.body, r.author, r.hlc, named?.cid)
    d = new ReadDecodedOp(op, id, r.sigStart, r.sigAt, r.sigEnd)
  } else {
    d = decodeGeneric(bytes, id, named)
  }
  if (fresh) d.fresh = true
  return d
}

/**
 * A DecodedOp read by opdecode.ts: its signature is a view of the block made when asked (the
 * tree checks one signature per run of an author's ops, and a view per op decoded was kept, and
 * copied by the young generation's collections, for as long as a receive ran).
 */
class ReadDecodedOp implements DecodedOp {
  op: Op
  id: string
  sigAt: number
  sigEnd: number
  fresh: boolean | undefined = undefined
  private readonly sigStart: number

  constructor (op: Op, id: string, sigStart: number, sigAt: number, sigEnd: number) {
    this.op = op
    this.id = id
    this.sigStart = sigStart
    this.sigAt = sigAt
    this.sigEnd = sigEnd
  }

  get sig (): Uint8Array {
    const b = this.op.bytes
    return new Uint8Array(b.buffer, b.byteOffset + this.sigStart, this.sigEnd - this.sigStart)
  }
}

/** decodeUnverified() without opdecode.ts's reader: for tests, which hold the two to each other. */
export function decodeUnverifiedGeneric (bytes: Uint8Array): DecodedOp {
  if (!(bytes instanceof Uint8Array)) throw new InvalidOpError('not a byte array')
  if (bytes.byteLength > MAX_OP_BYTES) throw new InvalidOpError(`op is ${bytes.byteLength} bytes, more than ${MAX_OP_BYTES}`)
  return decodeGeneric(bytes, idOfBlock(bytes))
}

/** An op block read as any dag-cbor block, then its shape and bounds checked. */
function decodeGeneric (bytes: Uint8Array, id: string, named?: { cid: CID, id: string }): DecodedOp {
  let raw: any
  let fast: boolean
  let exact: boolean
  try {
    ({ value: raw, fast, exact } = decodeOpBlock(bytes))
  } catch (err: any) {
    throw new InvalidOpError(`not canonical dag-cbor: ${err.message}`, id)
  }
  try {
    if (!isRecord(raw)) throw new InvalidOpError('not a map')
    exactKeys(raw, ['v', 'body', 'author', 'hlc', 'parents', 'sig'], [], 'op')
    if (raw.v !== OP_VERSION) throw new InvalidOpError(`unknown version ${String(raw.v)}`)
    checkAuthor(raw.author)
    const hlc = raw.hlc
    if (!Array.isArray(hlc) || hlc.length !== 2 || !isUint(hlc[0], Number.MAX_SAFE_INTEGER) || !isUint(hlc[1], U32)) throw new InvalidOpError('bad hlc')
    if (!Array.isArray(raw.parents) || raw.parents.length > MAX_PARENTS) throw new InvalidOpError('bad parents')
    // ids already when the fast path read them (op CIDs only), else what dag-cbor gives
    // (strings there are no ids: every item must be an op CID)
    const parentIds: string[] = raw.parents
    for (let i = 0; i < parentIds.length; i++) {
      let s: unknown = parentIds[i]
      if (!fast) {
        const p = s as CID
        if (CID.asCID(p) === null || p.version !== 1 || p.code !== DAG_CBOR || p.multihash.code !== SHA2_256) throw new InvalidOpError('a parent is not a dag-cbor sha256 CIDv1')
        parentIds[i] = s = idOf(p)
      }
      for (let k = 0; k < i; k++) if (parentIds[k] === s) throw new InvalidOpError('duplicate parent')
    }
    const sig = raw.sig
    if (!(sig instanceof Uint8Array) || sig.byteLength === 0 || sig.byteLength > MAX_SIG_BYTES) throw new InvalidOpError('bad signature field')
    // the signed bytes are the block without its sig entry (a view of the block, the fast
    // path's byte strings are): the key 'sig' and the byte string's head before the signature
    const sigEnd = sig.byteOffset - bytes.byteOffset + sig.byteLength
    const sigAt = sigEnd - sig.byteLength - 4 - (sig.byteLength < 24 ? 1 : sig.byteLength < 256 ? 2 : 3)
    if (exact && sig.buffer === bytes.buffer && bytes[0] === 0xa6 && sigAt > 0 && bytes[sigAt] === 0x63 && bytes[sigAt + 1] === 0x73 && bytes[sigAt + 2] === 0x69 && bytes[sigAt + 3] === 0x67) {
      // nothing keeps the decoded body for checkSignature(): normalised in place
      const body = normaliseBody(raw.body, true)
      checkBody(body)
      const op = new OpRecord(id, parentIds, bytes, body, raw.author, [hlc[0], hlc[1]], named?.cid)
      return { op, id, sig, sigAt, sigEnd }
    }
    const body = normaliseBody(raw.body, false)
    checkBody(body)
    const op = new OpRecord(id, parentIds, bytes, body, raw.author, [hlc[0], hlc[1]], named?.cid)
    return { op, id, sig, rawBody: raw.body }
  } catch (err: any) {
    if (err instanceof InvalidOpError && err.cid === undefined) throw new InvalidOpError(err.message.replace(/^invalid op: /, ''), id)
    throw err
  }
}

/** The CIDs of an op's parents (an op keeps their ids only: parents are rarely needed as CIDs). */
export function parentCids (op: Op): CID[] {
  return op.parentIds.map(id => CID.parse(id))
}

/** Check a decoded op's signature against its author; throws InvalidOpError if it is bad. */
export async function checkSignature (d: DecodedOp, verify: Verify): Promise<void> {
  const { op } = d
  let unsigned: Uint8Array
  if (d.sigAt !== undefined && d.sigEnd !== undefined) {
    // the block is the canonical encoding of its value: without the sig entry (a map of five
    // entries, not six), it is the encoding of everything but sig, which is what was signed
    const b = op.bytes
    unsigned = new Uint8Array(b.byteLength - (d.sigEnd - d.sigAt))
    unsigned[0] = 0xa5
    unsigned.set(b.subarray(1, d.sigAt), 1)
    unsigned.set(b.subarray(d.sigEnd), d.sigAt)
  } else {
    // the parents as the CIDs the block holds (an op keeps their ids): the same bytes again
    unsigned = dagCbor.encode({ v: OP_VERSION, body: d.rawBody, author: op.author, hlc: op.hlc, parents: parentCids(op) })
  }
  let ok = false
  try {
    ok = await verify(op.author, unsigned, d.sig)
  } catch {
    // a verifier that throws (a malformed author key) means a bad signature: refused just below
    ok = false
  }
  if (!ok) throw new InvalidOpError(`bad signature for author ${op.author}`, d.id)
}

/** Check a body's shape and bounds; throws InvalidOpError. */
export function checkBody (body: OpBody): void {
  if (!isRecord(body)) throw new InvalidOpError('body is not a map')
  const b: any = body
  switch (b.type) {
    case 'create':
      exactKeys(b, ['type', 'parent', 'name', 'kind', 'mode', 'uid', 'gid', 'time'], ['rdev', 'target', 'content', 'size'], 'create')
      checkId(b.parent, 'parent'); checkName(b.name)
      if (!KINDS.has(b.kind)) throw new InvalidOpError(`unknown kind ${String(b.kind)}`)
      checkMode(b.mode); checkUint(b.uid, U32, 'uid'); checkUint(b.gid, U32, 'gid')
      if (b.rdev !== undefined) checkUint(b.rdev, U32, 'rdev')
      if (b.target !== undefined) checkTarget(b.target)
      if ((b.kind === 'symlink') !== (b.target !== undefined)) throw new InvalidOpError('a symlink, and only a symlink, has a target')
      if (b.content !== undefined && b.kind !== 'file') throw new InvalidOpError('only a file has content')
      if (b.content !== undefined) checkContent(b.content)
      if (b.size !== undefined) checkUint(b.size, Number.MAX_SAFE_INTEGER, 'size')
      checkInlineSize(b.content, b.size)
      break
    case 'link':
      exactKeys(b, ['type', 'parent', 'name', 'inode', 'time'], [], 'link')
      checkId(b.parent, 'parent'); checkName(b.name); checkId(b.inode, 'inode')
      break
    case 'move':
      exactKeys(b, ['type', 'entry', 'parent', 'name', 'time'], ['replace'], 'move')
      checkId(b.entry, 'entry'); checkId(b.parent, 'parent'); checkName(b.name)
      if (b.replace !== undefined) checkId(b.replace, 'replace')
      break
    case 'unlink':
      exactKeys(b, ['type', 'entry', 'time'], [], 'unlink')
      checkId(b.entry, 'entry')
      break
    case 'setattr':
      exactKeys(b, ['type', 'inode', 'time'], ['mode', 'uid', 'gid', 'atime', 'mtime'], 'setattr')
      checkId(b.inode, 'inode')
      if (b.mode !== undefined) checkMode(b.mode)
      if (b.uid !== undefined) checkUint(b.uid, U32, 'uid')
      if (b.gid !== undefined) checkUint(b.gid, U32, 'gid')
      if (b.atime !== undefined) checkTime(b.atime, 'atime')
      if (b.mtime !== undefined) checkTime(b.mtime, 'mtime')
      break
    case 'write':
      exactKeys(b, ['type', 'inode', 'content', 'size', 'time'], ['first'], 'write')
      checkId(b.inode, 'inode')
      if (b.first !== undefined && b.first !== true) throw new InvalidOpError('first must be true when present')
      if (b.content !== null) checkContent(b.content)
      checkUint(b.size, Number.MAX_SAFE_INTEGER, 'size')
      checkInlineSize(b.content ?? undefined, b.size)
      break
    case 'append':
      exactKeys(b, ['type', 'inode', 'content', 'at', 'size', 'time'], ['first', 'offset', 'more'], 'append')
      checkId(b.inode, 'inode')
      if (b.first !== undefined && b.first !== true) throw new InvalidOpError('first must be true when present')
      checkExtent(b, b.offset !== undefined, '')
      if (b.more !== undefined) {
        if (b.offset === undefined) throw new InvalidOpError('more extents only in a positioned append (with offset)')
        if (!Array.isArray(b.more) || b.more.length === 0 || b.more.length >= MAX_OP_EXTENTS) throw new InvalidOpError(`more must list 1 to ${MAX_OP_EXTENTS - 1} extents`)
        for (let i = 0; i < b.more.length; i++) {
          const x: unknown = b.more[i]
          const what = `extent ${i + 1} of more`
          if (!isRecord(x)) throw new InvalidOpError(`${what} is not a map`)
          exactKeys(x, ['content', 'at', 'size', 'offset'], [], what)
          checkExtent(x, true, what)
        }
      }
      break
    case 'fold':
      exactKeys(b, ['type', 'inode', 'base', 'covers', 'content', 'size', 'time'], ['ranges', 'over'], 'fold')
      checkId(b.inode, 'inode'); checkId(b.base, 'base')
      if (b.over !== undefined) {
        checkId(b.over, 'over')
        if (b.ranges === undefined) throw new InvalidOpError('over names the content a partial fold keeps: only with ranges')
      }
      if (b.ranges !== undefined) {
        if (!Array.isArray(b.ranges) || b.ranges.length === 0 || b.ranges.length % 2 !== 0) throw new InvalidOpError('ranges must be a non-empty list of [from, to) pairs')
        let last = -1
        for (const r of b.ranges as unknown[]) {
          checkUint(r, Number.MAX_SAFE_INTEGER, 'a range bound')
          if ((r as number) <= last) throw new InvalidOpError('ranges must be increasing, each non-empty')
          last = r as number
        }
      }
      checkUint(b.covers, U32, 'covers')
      if (b.content !== null) checkContent(b.content)
      checkUint(b.size, Number.MAX_SAFE_INTEGER, 'size')
      checkInlineSize(b.content ?? undefined, b.size)
      break
    case 'setxattr':
      exactKeys(b, ['type', 'inode', 'name', 'value', 'time'], [], 'setxattr')
      checkId(b.inode, 'inode'); checkXattrName(b.name)
      if (!(b.value instanceof Uint8Array) || b.value.byteLength > MAX_XATTR_VALUE_BYTES) throw new InvalidOpError(`xattr value must be at most ${MAX_XATTR_VALUE_BYTES} bytes`)
      break
    case 'removexattr':
      exactKeys(b, ['type', 'inode', 'name', 'time'], [], 'removexattr')
      checkId(b.inode, 'inode'); checkXattrName(b.name)
      break
    case 'resolve': {
      exactKeys(b, ['type', 'inode', 'keep', 'siblings', 'time'], [], 'resolve')
      checkId(b.inode, 'inode')
      if (b.keep !== 'holder' && b.keep !== 'both') throw new InvalidOpError('keep must be holder or both')
      if (!Array.isArray(b.siblings) || b.siblings.length === 0 || b.siblings.length > MAX_RESOLVE_SIBLINGS) throw new InvalidOpError(`a resolve settles 1 to ${MAX_RESOLVE_SIBLINGS} siblings`)
      const seen = new Set<string>()
      for (const x of b.siblings) {
        if (!isRecord(x)) throw new InvalidOpError('a resolved sibling is not a map')
        exactKeys(x, ['entry'], ['head'], 'resolved sibling')
        checkId(x.entry, 'entry')
        if (x.head !== undefined) checkId(x.head, 'head')
        if (seen.has(x.entry)) throw new InvalidOpError('a sibling named twice')
        seen.add(x.entry)
      }
      break
    }
    default:
      throw new InvalidOpError(`unknown op type ${String(b.type)}`)
  }
  checkTime(b.time, 'time')
}

/**
 * True when two contents are the same bytes: equal inline bytes, the same manifest, or manifests
 * with equal sums (the same bytes stored differently: other k/m, holes or written zeros). Content
 * without a sum (ops from before sums) is compared by its manifest alone. A pure function of the
 * two contents, so every host decides alike.
 */
export function sameContent (a: Content | null | undefined, b: Content | null | undefined): boolean {
  if (a == null || b == null) return a == null && b == null
  if ('inline' in a) return 'inline' in b && equalBytes(a.inline, b.inline)
  if (!('manifest' in b)) return false
  if (a.manifest.equals(b.manifest)) return true
  return a.sum !== undefined && b.sum !== undefined && a.sum.equals(b.sum)
}


const TIMES = ['time', 'atime', 'mtime']

/**
 * Decoded ints in the safe range come back as numbers: times are bigints in the API. A copy
 * (the decoded body is encoded again to check the signature), or with `inPlace`, the body itself.
 */
function normaliseBody (raw: unknown, inPlace: boolean): OpBody {
  if (!isRecord(raw)) throw new InvalidOpError('body is not a map')
  const body: any = inPlace ? raw : { ...raw }
  for (let i = 0; i < TIMES.length; i++) {
    const k = TIMES[i]
    if (typeof body[k] === 'number' && Number.isSafeInteger(body[k])) body[k] = BigInt(body[k])
  }
  if (!inPlace && isRecord(body.content)) body.content = { ...body.content }
  if (!inPlace && Array.isArray(body.more)) body.more = body.more.map((x: unknown) => isRecord(x) ? { ...x, content: isRecord(x.content) ? { ...x.content } : x.content } : x)
  if (!inPlace && Array.isArray(body.siblings)) body.siblings = body.siblings.map((x: unknown) => isRecord(x) ? { ...x } : x)
  return body
}

/** Drop undefined fields (dag-cbor has no undefined). */
function plain (body: OpBody): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(body)) if (v !== undefined) out[k] = v
  // content too: a writer may leave `sum` undefined
  if (isRecord(out.content)) out.content = Object.fromEntries(Object.entries(out.content).filter(([, v]) => v !== undefined))
  // and each further extent's
  if (Array.isArray(out.more)) out.more = out.more.map(x => isRecord(x) && isRecord(x.content) ? { ...x, content: Object.fromEntries(Object.entries(x.content).filter(([, v]) => v !== undefined)) } : x)
  // and each resolved sibling's: `head` is absent for a sibling that is not a file
  if (Array.isArray(out.siblings)) out.siblings = out.siblings.map(x => isRecord(x) ? Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined)) : x)
  return out
}

function isRecord (x: unknown): x is Record<string, any> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array) && CID.asCID(x) === null
}

function exactKeys (o: Record<string, unknown>, required: string[], optional: string[], what: string): void {
  for (const k of required) if (o[k] === undefined) throw new InvalidOpError(`${what} lacks ${k}`)
  // for-in over own keys (the same keys, in the same order, as Object.keys): no array per call,
  // and this runs for every op and body received
  for (const k in o) {
    if (!Object.hasOwn(o, k)) continue
    if (o[k] !== undefined && !required.includes(k) && !optional.includes(k)) throw new InvalidOpError(`${what} has unknown field ${k}`)
  }
}

function isUint (x: unknown, max: number): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= max
}

function checkUint (x: unknown, max: number, what: string): void {
  if (!isUint(x, max)) throw new InvalidOpError(`${what} must be an integer from 0 to ${max}`)
}

function checkMode (x: unknown): void {
  checkUint(x, 0o7777, 'mode (permission bits only)')
}

/** Times: non-negative, at most 64 bits. */
function checkTime (x: unknown, what: string): void {
  if (typeof x !== 'bigint' || x < 0n || x >= (1n << 64n)) throw new InvalidOpError(`${what} must be a non-negative 64-bit bigint (ns)`)
}

function checkAuthor (x: unknown): void {
  if (typeof x !== 'string' || x.length === 0 || x.length > MAX_ID_CHARS || x.includes('\u0000')) throw new InvalidOpError('bad author')
}

function checkId (x: unknown, what: string): void {
  if (typeof x !== 'string' || x.length === 0 || x.length > MAX_ID_CHARS || !/^[A-Za-z0-9]+$/.test(x)) throw new InvalidOpError(`bad ${what} id`)
}

/** Entry names: 1..255 bytes, no '/', no NUL, not '.' or '..'. */
export function checkName (x: unknown): void {
  if (typeof x !== 'string' || x.length === 0) throw new InvalidOpError('a name must be a non-empty string')
  if (x === '.' || x === '..') throw new InvalidOpError(`the name ${x} is reserved`)
  if (x.includes('/') || x.includes('\u0000')) throw new InvalidOpError('a name must not contain / or NUL')
  // a UTF-16 code unit is at most 3 bytes of UTF-8 (a pair, 4 for 2 units): short names need no encoding
  if (x.length * 3 > MAX_NAME_BYTES && utf8.encode(x).byteLength > MAX_NAME_BYTES) throw new InvalidOpError(`a name must be at most ${MAX_NAME_BYTES} bytes`)
}

function checkXattrName (x: unknown): void {
  if (typeof x !== 'string' || x.length === 0 || x.includes('\u0000') || utf8.encode(x).byteLength > MAX_NAME_BYTES) throw new InvalidOpError('bad xattr name')
}

function checkTarget (x: unknown): void {
  if (typeof x !== 'string' || x.length === 0 || x.includes('\u0000') || utf8.encode(x).byteLength > MAX_TARGET_BYTES) throw new InvalidOpError('bad symlink target')
}

function checkContent (x: unknown): void {
  if (!isRecord(x)) throw new InvalidOpError('content must be { inline } or { manifest, sum? }')
  if (x.inline !== undefined) {
    exactKeys(x, ['inline'], [], 'inline content')
    if (!(x.inline instanceof Uint8Array) || x.inline.byteLength > MAX_INLINE_BYTES) throw new InvalidOpError(`inline content must be at most ${MAX_INLINE_BYTES} bytes`)
  } else if (x.manifest !== undefined) {
    exactKeys(x, ['manifest'], ['sum'], 'manifest content')
    if (CID.asCID(x.manifest) === null) throw new InvalidOpError('manifest must be a CID')
    if (x.sum !== undefined && !isSum(x.sum)) throw new InvalidOpError('sum must be a raw sha256 CIDv1')
  } else {
    throw new InvalidOpError('content must be { inline } or { manifest, sum? }')
  }
}

/** A content sum: CIDv1, raw codec, sha256 (node/data contentSum). */
function isSum (x: unknown): boolean {
  const cid = CID.asCID(x)
  return cid !== null && cid.version === 1 && cid.code === RAW && cid.multihash.code === SHA2_256 && cid.multihash.size === 32
}

/**
 * An append's extent (the op's own fields, or one of `more`): bytes [at, at + size) of
 * `content`, at least one, inline ones the whole content; `positioned`: with an `offset`.
 */
function checkExtent (x: Record<string, any>, positioned: boolean, what: string): void {
  // the op's own extent keeps the messages it always had; one of `more` says which it is
  const of = what === '' ? '' : ` (${what})`
  checkContent(x.content)
  checkUint(x.at, Number.MAX_SAFE_INTEGER, `at${of}`)
  checkUint(x.size, Number.MAX_SAFE_INTEGER, `size${of}`)
  if (x.size === 0) throw new InvalidOpError(`an append adds at least one byte${of}`)
  if ('inline' in x.content && (x.at !== 0 || x.content.inline.byteLength !== x.size)) throw new InvalidOpError(`inline appended bytes are the whole content (at 0, size its length)${of}`)
  if (!Number.isSafeInteger(x.at + x.size)) throw new InvalidOpError(`append past the largest size${of}`)
  if (positioned) {
    checkUint(x.offset, Number.MAX_SAFE_INTEGER, `offset${of}`)
    if (!Number.isSafeInteger(x.offset + x.size)) throw new InvalidOpError(`an extent past the largest size (offset + size)${of}`)
  }
}

function checkInlineSize (content: Content | undefined, size: number | undefined): void {
  if (content !== undefined && 'inline' in content && size !== undefined && size !== content.inline.byteLength) {
    throw new InvalidOpError('size must equal the inline content length')
  }
}
