// GC's unreferenced times kept across restarts (gc.ts; session 37): a block goes once GC has
// seen it unreferenced for the retention period (7 days), and that time was in memory only, so a
// host restarted at least weekly collected nothing unreferenced, ever. Now each round's times are
// written to the data dir and read back at start.
//
// Only time GC saw counts: the file keeps each block's *age*, how long GC has seen it
// unreferenced, measured on the process's monotonic clock (gc.ts), never a wall-clock stamp. A
// host down for a month, whose tree may have missed a version naming the block again, starts
// where it stopped; and a host that boots with its wall clock behind (no RTC, fake-hwclock) and is
// stepped forward later, or back, counts neither step (review37b: gc37 moved every time forward by
// the wall-clock time since the file was written, and counted such a step as time away).
//
// The file, `gc-since`, in lines: a header `darkfs-gc-since 2 <count> <host peer id>`, one
// `<block multihash, base64> <ms seen unreferenced>` per block, then
// `sum <sha256 hex of every byte before>` (sealed-file.ts: written whole, synced and renamed, in
// slices of the event loop, fs/promises only). At most GC_SINCE_MAX entries, the oldest (the next
// to go) first. A missing file is a first start; a file too large, cut short, failing its sum,
// with a bad line, of gc37's version 1 (wall-clock times), or written by another host (a file
// copied from another data dir: its blocks are not this host's) is logged and left out whole
// (every block starts unreferenced afresh, as before the file): a damaged time never brings a
// delete closer.
import { join } from 'node:path'
import { eachSliced, readSealed, writeSealed } from './sealed-file.ts'
import { logger } from '../log.ts'

const log = logger('keeper:gc')

/** The file in the data dir. */
export const GC_SINCE_FILE = 'gc-since'
const MAGIC = 'darkfs-gc-since'
const VERSION = 2
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
 * The kept ages (key -> ms GC saw it unreferenced); an empty map for no file, a bad one, or one
 * another host than `self` wrote (logged).
 */
export async function loadGcSince (dir: string, self: string): Promise<Map<string, number>> {
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
  if (h[3] !== self) return bad(`written by ${h[3].slice(0, 64)}, not this host: copied from another data dir?`)
  const count = Number(h[2])
  if (!Number.isSafeInteger(count) || count !== lines.length) return bad('entry count')
  const out = new Map<string, number>()
  let at = 0
  const whole = await eachSliced(lines, (l, i) => {
    const sp = l.indexOf(' ')
    const k = l.slice(0, sp)
    const ms = Number(l.slice(sp + 1))
    if (sp < 0 || !KEY.test(k) || !Number.isSafeInteger(ms) || ms < 0 || out.has(k)) { at = i + 2; return false }
    out.set(k, ms)
    return true
  })
  return whole ? out : bad(`line ${at}`)
}

/**
 * Writes the ages of `since` (key -> when GC first saw it unreferenced on the monotonic clock
 * `now` is of, in the order GC met them: the oldest first) to the file, as host `self`'s: at most
 * GC_SINCE_MAX entries, the first ones.
 */
export async function saveGcSince (dir: string, since: ReadonlyMap<string, number>, now: number, self: string): Promise<void> {
  // taken now (gc.ts writes between rounds, one at a time: the map does not change meanwhile)
  const entries: Array<[string, number]> = []
  for (const e of since) {
    if (entries.length >= GC_SINCE_MAX) break
    entries.push(e)
  }
  await writeSealed(join(dir, GC_SINCE_FILE), `${MAGIC} ${VERSION} ${entries.length} ${self}`, entries.length, i => `${entries[i][0]} ${Math.max(0, Math.floor(now - entries[i][1]))}`)
}
