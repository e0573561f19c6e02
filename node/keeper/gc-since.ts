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
// `sum <sha256 hex of every byte before>` (sealed-file.ts: written whole, synced and renamed, in
// slices of the event loop, fs/promises only). At most GC_SINCE_MAX entries, the oldest (the next to go) first. A missing
// file is a first start; a file too large, cut short, failing its sum, or with a bad line is
// logged and left out whole (every block starts unreferenced afresh, as before the file): a
// damaged time never brings a delete closer.
import { join } from 'node:path'
import { eachSliced, readSealed, writeSealed } from './sealed-file.ts'
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
/** A multihash in base64 (gc.ts key()): sha2-256's is 48 characters; longer ones allowed. */
const KEY = /^[A-Za-z0-9+/]{4,172}={0,2}$/

/**
 * The kept times (key -> ms), moved forward by the time since the file was written (`now`
 * minus its stamp, when positive); an empty map for no file or a bad one (logged).
 */
export async function loadGcSince (dir: string, now: number): Promise<Map<string, number>> {
  const file = join(dir, GC_SINCE_FILE)
  const read = await readSealed(file, GC_SINCE_MAX_BYTES)
  if ('missing' in read) return new Map()
  const bad = (why: string): Map<string, number> => {
    log.error('unreferenced times in %s not read (%s): left out, every block starts afresh', file, why)
    return new Map()
  }
  if ('bad' in read) return bad(read.bad)
  const { head, lines } = read
  const h = head.split(' ')
  if (h.length !== 4 || h[0] !== MAGIC || h[1] !== String(VERSION)) return bad('unknown header')
  const written = Number(h[2])
  const count = Number(h[3])
  if (!Number.isSafeInteger(written) || written < 0) return bad('written time')
  if (!Number.isSafeInteger(count) || count !== lines.length) return bad('entry count')
  const away = Math.max(0, now - written)
  const out = new Map<string, number>()
  let at = 0
  const whole = await eachSliced(lines, (l, i) => {
    const sp = l.indexOf(' ')
    const k = l.slice(0, sp)
    const ms = Number(l.slice(sp + 1))
    // (a time after the file was written is no time GC saw)
    if (sp < 0 || !KEY.test(k) || !Number.isSafeInteger(ms) || ms < 0 || ms > written || out.has(k)) { at = i + 2; return false }
    out.set(k, ms + away)
    return true
  })
  return whole ? out : bad(`line ${at}`)
}

/**
 * Writes `since` (key -> ms, in the order GC met them: the oldest first) to the file now, with
 * `now` as its stamp: at most GC_SINCE_MAX entries, the first ones.
 */
export async function saveGcSince (dir: string, since: ReadonlyMap<string, number>, now: number): Promise<void> {
  // taken now (gc.ts writes between rounds, one at a time: the map does not change meanwhile)
  const entries: Array<[string, number]> = []
  for (const e of since) {
    if (entries.length >= GC_SINCE_MAX) break
    entries.push(e)
  }
  await writeSealed(join(dir, GC_SINCE_FILE), `${MAGIC} ${VERSION} ${now} ${entries.length}`, entries.length, i => `${entries[i][0]} ${Math.min(entries[i][1], now)}`)
}
