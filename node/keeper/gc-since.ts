// GC's unreferenced times kept across restarts (gc.ts; session 37): a block goes once GC has
// seen it unreferenced for the retention period (7 days), and that time was in memory only, so a
// host restarted at least weekly collected nothing unreferenced, ever. Now each round's times are
// written to the data dir and read back at start.
//
// Only time GC saw counts: the file carries when it was written, and at load every time moves
// forward by how long the host was away since (a host down for a month, whose tree may have
// missed a version naming the block again, starts where it stopped, not a month later). A round
// writes the file whether or not a time changed, so that stamp is at most a round old.
//
// The file, `gc-since`, in lines: a header `darkfs-gc-since 1 <written ms> <count>`, one
// `<block multihash, base64> <first seen unreferenced, ms>` per block, then
// `sum <sha256 hex of every byte before>`. Written whole to a temporary file, synced, renamed
// over the old one, in slices (a turn of the event loop each: a host serving a mount), with
// fs/promises only. At most GC_SINCE_MAX entries, the oldest (the next to go) first. A missing
// file is a first start; a file too large, cut short, failing its sum, or with a bad line is
// logged and left out whole (every block starts unreferenced afresh, as before the file): a
// damaged time never brings a delete closer.
import { createHash } from 'node:crypto'
import { open, readFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '../log.ts'

const log = logger('keeper:gc')

/** The file in the data dir. */
export const GC_SINCE_FILE = 'gc-since'
const MAGIC = 'darkfs-gc-since'
const VERSION = 1
/**
 * Entries written at most (the oldest first; the rest start afresh after a restart): a line is
 * ~62 B, so ~16 MiB, and 262,144 unreferenced fragments of 256 KiB are 64 GiB awaiting GC.
 */
export const GC_SINCE_MAX = 262_144
/** A file larger than this is not read (left out): an honest one at GC_SINCE_MAX is ~16 MiB. */
export const GC_SINCE_MAX_BYTES = 24 << 20
/** Entries written per turn of the event loop. */
const SAVE_SLICE = 4_096
/** A multihash in base64 (gc.ts key()): sha2-256's is 48 characters; longer ones allowed. */
const KEY = /^[A-Za-z0-9+/]{4,172}={0,2}$/

/**
 * The kept times (key -> ms), moved forward by the time since the file was written (`now`
 * minus its stamp, when positive); an empty map for no file or a bad one (logged).
 */
export async function loadGcSince (dir: string, now: number): Promise<Map<string, number>> {
  const file = join(dir, GC_SINCE_FILE)
  let text: string
  try {
    const size = (await stat(file)).size
    if (size > GC_SINCE_MAX_BYTES) {
      log.error('unreferenced times not read (every block starts afresh): %s is %d bytes, over %d', file, size, GC_SINCE_MAX_BYTES)
      return new Map()
    }
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err?.code !== 'ENOENT') log.error('unreferenced times not read (every block starts afresh): %s', (err as Error).message)
    return new Map()
  }
  const bad = (why: string): Map<string, number> => {
    log.error('unreferenced times in %s damaged (%s): left out, every block starts afresh', file, why)
    return new Map()
  }
  const end = text.lastIndexOf('\nsum ')
  if (end < 0) return bad('no sum line: cut short?')
  const body = text.slice(0, end + 1)
  const sum = text.slice(end + 5).trim()
  if (createHash('sha256').update(body).digest('hex') !== sum) return bad('sum does not match')
  const lines = body.split('\n')
  lines.pop()
  const head = lines[0].split(' ')
  if (head.length !== 4 || head[0] !== MAGIC || head[1] !== String(VERSION)) return bad('unknown header')
  const written = Number(head[2])
  const count = Number(head[3])
  if (!Number.isSafeInteger(written) || written < 0) return bad('written time')
  if (!Number.isSafeInteger(count) || count !== lines.length - 1) return bad('entry count')
  const away = Math.max(0, now - written)
  const out = new Map<string, number>()
  for (let i = 1; i < lines.length; i++) {
    const sp = lines[i].indexOf(' ')
    const k = lines[i].slice(0, sp)
    const ms = Number(lines[i].slice(sp + 1))
    // (a time after the file was written is no time GC saw)
    if (sp < 0 || !KEY.test(k) || !Number.isSafeInteger(ms) || ms < 0 || ms > written || out.has(k)) return bad(`line ${i + 1}`)
    out.set(k, ms + away)
  }
  return out
}

/**
 * Writes `since` (key -> ms, in the order GC met them: the oldest first) to the file now, with
 * `now` as its stamp: at most GC_SINCE_MAX entries, the first ones.
 */
export async function saveGcSince (dir: string, since: ReadonlyMap<string, number>, now: number): Promise<void> {
  const file = join(dir, GC_SINCE_FILE)
  const tmp = `${file}.tmp`
  // taken now: the map may change while the slices are written (it does not: gc.ts writes it
  // between rounds, one at a time; a copy keeps the file whole if that changes)
  const entries: Array<[string, number]> = []
  for (const e of since) {
    if (entries.length >= GC_SINCE_MAX) break
    entries.push(e)
  }
  const hash = createHash('sha256')
  const fh = await open(tmp, 'w')
  try {
    const put = async (s: string): Promise<void> => {
      hash.update(s)
      await fh.write(s)
    }
    await put(`${MAGIC} ${VERSION} ${now} ${entries.length}\n`)
    for (let i = 0; i < entries.length; i += SAVE_SLICE) {
      await put(entries.slice(i, i + SAVE_SLICE).map(([k, ms]) => `${k} ${Math.min(ms, now)}\n`).join(''))
      await new Promise(resolve => setImmediate(resolve))
    }
    await fh.write(`sum ${hash.digest('hex')}\n`)
    // (synced before the rename: a power loss leaves the old file or the new, never an empty one)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
}
