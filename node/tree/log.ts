// The durable op log: one append-only file of framed, checksummed records
//   [u32 BE length][u32 BE crc32 of the payload][payload = one op block]
// Appends are batched (group commit): the records queued while one write + fdatasync is under
// way go out together in the next, and every append waits for the one that carries it (an
// append-only file needs no more than fdatasync: it syncs the data and the size). Where the
// platform has O_DSYNC the file is opened with it, and each write is its own fdatasync: the same
// durability in one system call, so one thread-pool round trip per batch instead of two (on a
// busy machine each round trip waits for the event loop to be scheduled again). On open
// the file is read back; a torn or corrupt tail (a crash mid-append) is cut off, never fatal.
//
// An append may also ask only to be written ('written'): its records go to the file at once
// (through a second descriptor without O_DSYNC: in the kernel's page cache, they survive the
// process being killed, not a power cut) and become durable with the next durable append (whose
// batch then ends in an fdatasync, which syncs every byte before it), a sync(), or within
// WRITTEN_SYNC_MS. That is what a local file system gives a create, an unlink or a rename: they
// reach its journal with the next commit, an fsync makes them durable now, and a power cut may
// lose the last seconds of them. Records are written in append order, so a durable record never
// follows one a crash could lose.
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { constants } from 'node:fs'
import { crc32 } from 'node:zlib'
import { join } from 'node:path'
import { MAX_OP_BYTES } from './op.ts'

/** The log file's name inside the tree's dir. */
export const LOG_FILE = 'ops.log'
/** Bytes of a record header (length + crc32). */
export const HEADER_BYTES = 8

/** O_DSYNC, or 0 where the platform lacks it (then each batch's write is followed by fdatasync). */
const DSYNC: number = constants.O_DSYNC ?? 0
/** Records appended 'written' are synced at most this long after (unless a durable append or a sync() came first). */
export const WRITTEN_SYNC_MS = 1000
/**
 * Most bytes written unsynced that the log keeps a copy of: the next durable batch writes them
 * again, with its own records, in one O_DSYNC write (one system call, where a write and an
 * fdatasync were two thread-pool round trips). Past it the durable batch ends in an fdatasync.
 */
export const REWRITE_MAX_BYTES = 64 * 1024

/** How an append waits: until its records are durable (synced), or only written to the file (see the head of this file). */
export type Durability = 'durable' | 'written'

export interface LogCounters {
  /** Writes made (each a batch of appends). */
  writes: number
  /** Syncs made: O_DSYNC writes and fdatasyncs. */
  syncs: number
  /** Bytes written and not synced yet. */
  unsynced: number
  /** fdatasync calls made (the other syncs are O_DSYNC writes). */
  datasyncs: number
}

export interface OpLog {
  /**
   * Append records: 'durable' (the default) resolves after the O_DSYNC write, or fdatasync,
   * that carries them; 'written', once they are written to the file (see the head of this file).
   */
  append: (records: Uint8Array[], durability?: Durability) => Promise<void>
  /** Resolves once every record appended before the call is durable (at once when all are). */
  sync: () => Promise<void>
  /**
   * Resolves once every record appended before the call is written to the file (in the kernel:
   * it survives the process being killed), synced or not; at once when nothing is queued.
   */
  written: () => Promise<void>
  counters: () => LogCounters
  /** Why the log takes no more appends: a sync failed (written records' failures in the background have no caller of their own). */
  failure: () => Error | undefined
  /** Sync what is written, then close. */
  close: () => Promise<void>
}

export interface OpenedLog {
  log: OpLog
  /** The payloads of all intact records, in file order. */
  records: Uint8Array[]
  /** Bytes cut off the tail because the last record was torn or corrupt. */
  truncated: number
}

export async function openLog (dir: string, opts: { writtenSyncMs?: number } = {}): Promise<OpenedLog> {
  await mkdir(dir, { recursive: true })
  const path = join(dir, LOG_FILE)
  const fh = await open(path, constants.O_RDWR | constants.O_CREAT | DSYNC, 0o600)
  let records: Uint8Array[] = []
  let good = 0
  let size = 0
  try {
    const data = await fh.readFile()
    size = data.byteLength
    const read = parse(data)
    records = read.records
    good = read.good
    if (good < size) {
      await fh.truncate(good)
      await fh.sync()
    }
    if (size === 0) await syncDir(dir)
  } catch (err) {
    await fh.close()
    throw err
  }
  let plain: FileHandle
  try {
    // the same file without O_DSYNC, for records appended 'written'
    plain = DSYNC === 0 ? fh : await open(path, constants.O_RDWR)
  } catch (err) {
    await fh.close()
    throw err
  }
  return { log: writer(fh, plain, good, opts.writtenSyncMs ?? WRITTEN_SYNC_MS), records, truncated: size - good }
}

/** Make a new file's directory entry durable. */
async function syncDir (dir: string): Promise<void> {
  const d = await open(dir, constants.O_RDONLY)
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

/** Frame one payload. */
export function frame (payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.byteLength)
  const view = new DataView(out.buffer)
  view.setUint32(0, payload.byteLength)
  view.setUint32(4, crc32(payload))
  out.set(payload, HEADER_BYTES)
  return out
}

/** Bytes of frameAll(payloads). */
function framedLength (payloads: Uint8Array[]): number {
  let length = 0
  for (let i = 0; i < payloads.length; i++) length += HEADER_BYTES + payloads[i].byteLength
  return length
}

/** A record's header at `at`: its payload's length and CRC-32, big-endian (byte by byte: see frameAll). */
function writeHeader (u8: Uint8Array, at: number, n: number, sum: number): void {
  u8[at] = n >>> 24
  u8[at + 1] = n >>> 16
  u8[at + 2] = n >>> 8
  u8[at + 3] = n
  u8[at + 4] = sum >>> 24
  u8[at + 5] = sum >>> 16
  u8[at + 6] = sum >>> 8
  u8[at + 7] = sum
}

/** Frame several payloads into one buffer (what frame() gives each, end to end): into `out` (framedLength() bytes) when given. */
function frameAll (payloads: Uint8Array[], out: Buffer = Buffer.allocUnsafe(framedLength(payloads))): Buffer {
  const length = out.length
  // headers written byte by byte and payloads copied through a plain Uint8Array view: Buffer's
  // writeUInt32BE checks its arguments on every call, and a set() into a Buffer takes a slower
  // path than into a Uint8Array (a receive frames thousands of ops)
  const u8 = new Uint8Array(out.buffer, out.byteOffset, length)
  let at = 0
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]
    const n = p.byteLength
    writeHeader(u8, at, n, crc32(p))
    u8.set(p, at + HEADER_BYTES)
    at += HEADER_BYTES + n
  }
  return out
}

function parse (data: Uint8Array): { records: Uint8Array[], good: number } {
  const records: Uint8Array[] = []
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  let at = 0
  while (at + HEADER_BYTES <= data.byteLength) {
    const len = view.getUint32(at)
    const sum = view.getUint32(at + 4)
    if (len > MAX_OP_BYTES || at + HEADER_BYTES + len > data.byteLength) break
    const payload = data.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len)
    if (crc32(payload) !== sum) break
    // a view, not a copy: every record is kept as its op's bytes for as long as the tree runs,
    // so the file's buffer is kept anyway (one allocation for the log, not one per op)
    records.push(new Uint8Array(data.buffer, data.byteOffset + at + HEADER_BYTES, len))
    at += HEADER_BYTES + len
  }
  return { records, good: at }
}

/**
 * Largest buffer a log keeps to frame appends into again; larger appends (a merge's receive
 * brings megabytes) are written from the payloads' own buffers (headed()): a fresh buffer of
 * that size had its pages faulted in as it was filled, which cost several times the copy itself.
 */
const MAX_SPARE_BYTES = 256 * 1024

/**
 * The records framed as frameAll() frames them, without copying a payload: one buffer of all
 * the headers, and the list of buffers to write, each payload after a view of its header.
 */
function headed (payloads: Uint8Array[]): Uint8Array[] {
  const heads = new Uint8Array(HEADER_BYTES * payloads.length)
  const parts: Uint8Array[] = new Array(2 * payloads.length)
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]
    const n = p.byteLength
    const at = HEADER_BYTES * i
    writeHeader(heads, at, n, crc32(p))
    parts[2 * i] = heads.subarray(at, at + HEADER_BYTES)
    parts[2 * i + 1] = p
  }
  return parts
}

/** Write `parts` (`bytes` in all) end to end at `position`, through partial writes. */
async function writeAll (to: FileHandle, parts: Uint8Array[], bytes: number, position: number): Promise<void> {
  let written = 0
  if (parts.length === 1) {
    const all = parts[0]
    while (written < bytes) written += (await to.write(all, written, bytes - written, position + written)).bytesWritten
    return
  }
  // (libuv writes more buffers than a system call takes in several calls)
  if (parts.length > 1) written = (await to.writev(parts, position)).bytesWritten
  if (written >= bytes) return
  // a short write: the rest in one buffer (rare: a regular file takes all, or fails)
  const rest = Buffer.allocUnsafe(bytes - written)
  let at = 0
  let skip = written
  for (const p of parts) {
    if (skip >= p.byteLength) {
      skip -= p.byteLength
      continue
    }
    rest.set(skip > 0 ? p.subarray(skip) : p, at)
    at += p.byteLength - skip
    skip = 0
  }
  let done = 0
  while (done < rest.length) done += (await to.write(rest, done, rest.length - done, position + written + done)).bytesWritten
}

function writer (fh: FileHandle, plain: FileHandle, start: number, syncAfterMs: number): OpLog {
  let position = start
  /** The buffer appends are framed into, while no queued append holds it (`spareHeld`). */
  let spare: Buffer | undefined
  let spareHeld = false
  /** Appends not written yet, in order. */
  let queue: Array<{ parts: Uint8Array[], durable: boolean, resolve: () => void, reject: (err: Error) => void }> = []
  let flushing: Promise<void> | null = null
  /** Flushes that ran to their end (see enqueue). */
  let flushesEnded = 0
  let closed = false
  /** Bytes written through `plain` and not synced yet. */
  let unsynced = 0
  /**
   * Copies of the bytes written unsynced, from `position - unsynced` on, while they are at most
   * REWRITE_MAX_BYTES (else undefined until the next sync): a durable batch writes them again
   * with its own records through the O_DSYNC descriptor. The same bytes at the same offsets, so a
   * crash in the middle leaves the file as it was or as it will be.
   */
  let kept: Uint8Array[] | undefined = []
  let syncs = 0
  let datasyncs = 0
  let writes = 0
  /** A failed sync: what was written may be lost, and nothing after it is taken. */
  let broken: Error | undefined
  /** Syncs what is written within syncAfterMs. */
  let timer: NodeJS.Timeout | undefined

  async function flush (): Promise<void> {
    while (queue.length > 0) {
      const batch = queue
      queue = []
      const durable = batch.some(b => b.durable)
      try {
        if (broken !== undefined) throw broken
        // the appends' buffers end to end, written as they are (one write of several buffers)
        const all = batch.length === 1 ? batch[0].parts : batch.flatMap(b => b.parts)
        let bytes = 0
        for (let i = 0; i < all.length; i++) bytes += all[i].byteLength
        // a durable batch with nothing unsynced before it is one O_DSYNC write; one after
        // records written unsynced writes those again with its own (O_DSYNC syncs only the range
        // written) while the log keeps them (`kept`), else is written like them and ends in an
        // fdatasync
        const again = durable && unsynced > 0 && DSYNC !== 0 && kept !== undefined
        const dsync = durable && DSYNC !== 0 && (unsynced === 0 ? bytes > 0 : again)
        const to = dsync ? fh : plain
        const from = again ? position - unsynced : position
        const parts = again ? [...(kept as Uint8Array[]), ...all] : all
        try {
          await writeAll(to, parts, again ? unsynced + bytes : bytes, from)
        } catch (err: any) {
          // leave no half batch behind: later records would follow garbage (the bytes written
          // again are the file's already)
          await plain.truncate(position).catch(() => {})
          if (again) broken = err
          throw err
        }
        position += bytes
        if (bytes > 0 || again) writes++
        if (dsync) {
          syncs++
          unsynced = 0
          kept = []
        } else {
          unsynced += bytes
          // a copy (a Buffer's slice() is a view): the spare buffer an append is framed into is
          // framed into again once it resolves
          if (bytes > 0) {
            if (kept !== undefined && !durable && unsynced <= REWRITE_MAX_BYTES) for (const p of all) kept.push(Uint8Array.prototype.slice.call(p))
            else kept = undefined
          }
        }
        if (durable && unsynced > 0) {
          try {
            await plain.datasync()
          } catch (err: any) {
            broken = err
            throw err
          }
          syncs++
          datasyncs++
          unsynced = 0
          kept = []
        }
        if (unsynced > 0) arm()
        for (const b of batch) b.resolve()
      } catch (err: any) {
        for (const b of batch) b.reject(err)
      }
    }
    flushing = null
    flushesEnded++
  }

  /** The timer that syncs what is written within syncAfterMs, if none is set. */
  function arm (): void {
    if (timer !== undefined || closed) return
    timer = setTimeout(() => {
      timer = undefined
      if (unsynced === 0) return
      // ignored: a failed sync breaks the log (broken), and every later append and sync fails with it
      sync().catch(() => {})
    }, syncAfterMs)
    // written records are in the kernel already: no process needs to wait for their sync
    timer.unref()
  }

  async function enqueue (parts: Uint8Array[], durable: boolean): Promise<void> {
    const done = new Promise<void>((resolve, reject) => { queue.push({ parts, durable, resolve, reject }) })
    if (flushing === null) {
      // the flush starts now (the write is under way when this returns: a receive applies its ops
      // meanwhile); one with nothing to wait for (an append of no records, nothing to sync) runs
      // to its end before flush() returns, and set `flushing` to null already: its promise is not
      // kept, or every later append would wait for a flush that has ended
      const ended = flushesEnded
      const run = flush()
      if (flushesEnded === ended) flushing = run
    }
    await done
  }

  async function sync (): Promise<void> {
    if (broken !== undefined) throw broken
    // nothing queued and nothing unsynced: durable already
    if (queue.length === 0 && flushing === null && unsynced === 0) return
    await enqueue([], true)
  }

  async function written (): Promise<void> {
    if (broken !== undefined) throw broken
    if (queue.length === 0 && flushing === null) return
    // an empty record written after the ones queued: the flush takes batches in order
    await enqueue([], false)
  }

  return {
    async append (records, durability = 'durable') {
      if (closed) throw new Error('op log is closed')
      if (broken !== undefined) throw broken
      const length = framedLength(records)
      if (length === 0) {
        await enqueue([], durability === 'durable')
        return
      }
      if (spareHeld || length > MAX_SPARE_BYTES) {
        // the payloads written where they are, after headers of their own: no copy of them into
        // fresh memory (a merge's receive appends megabytes, and the pages of a fresh buffer
        // are faulted in as it is filled: several times the cost of the copy)
        await enqueue(headed(records), durability === 'durable')
        return
      }
      // framed into the spare buffer (grown when too small), held until this append's write is
      // done (enqueue settles after it): nothing reads the bytes after that
      if (spare === undefined || spare.length < length) spare = Buffer.allocUnsafe(Math.min(MAX_SPARE_BYTES, Math.max(length, 2 * (spare?.length ?? 0))))
      spareHeld = true
      try {
        await enqueue([frameAll(records, spare.subarray(0, length))], durability === 'durable')
      } finally {
        spareHeld = false
      }
    },
    sync,
    written,
    counters: () => ({ writes, syncs, unsynced, datasyncs }),
    failure: () => broken,
    async close () {
      if (closed) return
      closed = true
      clearTimeout(timer)
      try {
        // what is written unsynced (and what is still queued)
        if (broken === undefined && (queue.length > 0 || unsynced > 0 || flushing !== null)) await enqueue([], true)
      } finally {
        await flushing
        await fh.close()
        if (plain !== fh) await plain.close()
      }
    }
  }
}
