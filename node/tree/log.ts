// The durable op log: one append-only file of framed, checksummed records
//   [u32 BE length][u32 BE crc32 of the payload][payload = one op block]
// Appends are batched (group commit): the records queued while one write + fdatasync is under
// way go out together in the next, and every append waits for the one that carries it (an
// append-only file needs no more than fdatasync: it syncs the data and the size). Where the
// platform has O_DSYNC the file is opened with it, and each write is its own fdatasync: the same
// durability in one system call, so one thread-pool round trip per batch instead of two (on a
// busy machine each round trip waits for the event loop to be scheduled again). On open
// the file is read back; a torn or corrupt tail (a crash mid-append) is cut off, never fatal.
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

export interface OpLog {
  /** Durably append records (resolves after the O_DSYNC write, or fdatasync, that carries them). */
  append: (records: Uint8Array[]) => Promise<void>
  close: () => Promise<void>
}

export interface OpenedLog {
  log: OpLog
  /** The payloads of all intact records, in file order. */
  records: Uint8Array[]
  /** Bytes cut off the tail because the last record was torn or corrupt. */
  truncated: number
}

export async function openLog (dir: string): Promise<OpenedLog> {
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
  return { log: writer(fh, good), records, truncated: size - good }
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

/** Frame several payloads into one buffer (what frame() gives each, end to end). */
function frameAll (payloads: Uint8Array[]): Buffer {
  let length = 0
  for (const p of payloads) length += HEADER_BYTES + p.byteLength
  const out = Buffer.allocUnsafe(length)
  let at = 0
  for (const p of payloads) {
    out.writeUInt32BE(p.byteLength, at)
    out.writeUInt32BE(crc32(p), at + 4)
    out.set(p, at + HEADER_BYTES)
    at += HEADER_BYTES + p.byteLength
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
    records.push(payload.slice())
    at += HEADER_BYTES + len
  }
  return { records, good: at }
}

function writer (fh: FileHandle, start: number): OpLog {
  let position = start
  let queue: Array<{ bytes: Buffer, resolve: () => void, reject: (err: Error) => void }> = []
  let flushing: Promise<void> | null = null
  let closed = false

  async function flush (): Promise<void> {
    while (queue.length > 0) {
      const batch = queue
      queue = []
      try {
        // one append's records are framed in one buffer already: a lone one is written as it is
        const all = batch.length === 1 ? batch[0].bytes : Buffer.concat(batch.map(b => b.bytes))
        let written = 0
        while (written < all.byteLength) {
          const { bytesWritten } = await fh.write(all, written, all.byteLength - written, position + written)
          written += bytesWritten
        }
        if (DSYNC === 0) await fh.datasync()
        position += all.byteLength
        for (const b of batch) b.resolve()
      } catch (err: any) {
        // leave no half batch behind: later records would follow garbage
        await fh.truncate(position).catch(() => {})
        for (const b of batch) b.reject(err)
      }
    }
    flushing = null
  }

  return {
    async append (records) {
      if (closed) throw new Error('op log is closed')
      const framed = frameAll(records)
      const done = new Promise<void>((resolve, reject) => { queue.push({ bytes: framed, resolve, reject }) })
      flushing ??= flush()
      return await done
    },
    async close () {
      if (closed) return
      closed = true
      await flushing
      await fh.close()
    }
  }
}
