// When each member was first taken here, kept across restarts (issue 14, bad input): a member's
// standing (MemberTable.memberFor) decides how deep into the shared call budget's reserve its
// calls may go (member-gate.ts RESERVE_DEPTHS), and a host that restarted pulled its table afresh
// and took every member as new: for STANDING_MS it gave the reserve to no one, and for a week to
// no one past the shallowest band, members of months and ids minted an hour before alike.
// Standing cannot be rebuilt from the signed records: a record's seq is when its subject last
// signed (a refresh a day or so), and a "member since" its subject signed would be its own word,
// which an id grinder gives as freely as the id. So this host keeps its own observations, in the
// data dir: a JSON file, written (whole, to a temporary file renamed over it) every SAVE_MS when
// members were first taken since the last write, every AGES_SAVE_MS all the same (the ages grew),
// and when the host stops; read once at start (a missing file: a first start; an unreadable or
// malformed one is logged and left out, every member new as before).
//
// What it keeps is each member's *age* here (ms this host saw it a member, MemberTable
// standings(), on the monotonic clock), as gc-since.ts keeps GC's: `{ "darkfs-members-since": 2,
// "ages": { peer: ms } }`. The first version kept wall-clock first-taken times ({ peer: ms }), so a
// clock stepped forward a week (fake-hwclock, NTP) gave every member full depth, and one stepped
// back took standing from all (bugs38, review34g); time the host was down does not count now. A
// file of the first version is read once, its times turned into ages on the wall clock of that
// start (the standing members had before this version, kept: the step at that one start is the
// old exposure), and the next write is of version 2.
import { open, readFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { MemberTable } from './members.ts'
import { logger } from '../log.ts'

const log = logger('net:members')

/** The file in the data dir. */
export const MEMBERS_SINCE_FILE = 'members-since.json'
/** A write of the file at most this often (when members were first taken since the last). */
export const MEMBERS_SINCE_SAVE_MS = 5 * 60_000
/**
 * A file larger than this is not read (left out, every member new): an honest one is about
 * 3.5 MB at the table's bound (50,000 members), and a corrupt one of hundreds of MB would stall
 * the start or run the worker out of memory, restarted in a loop.
 */
export const MEMBERS_SINCE_MAX_BYTES = 16 << 20
/** Entries written per turn of the event loop (a save at 50,000 members cost ~50 ms in one turn). */
const SAVE_SLICE = 2_000

/** The key naming the file's version (2: ages); a file without it is of version 1 (wall-clock times). */
const VERSION_KEY = 'darkfs-members-since'
const VERSION = 2
/** A write of the file at least this often while the host runs (the ages grew: a crash loses at most this much of them). */
export const MEMBERS_SINCE_AGES_SAVE_MS = 3600_000

type Table = Pick<MemberTable, 'standings' | 'restoreStandings' | 'firstTakenCount'>

/**
 * Read the kept standings into `table`: how many were taken (0 for no file or a bad one).
 * `wallNow`: the wall clock a file of version 1 (first-taken times) is read against, once.
 */
export async function loadMembersSince (dir: string, table: Table, wallNow: () => number = Date.now): Promise<number> {
  let text: string
  try {
    const file = join(dir, MEMBERS_SINCE_FILE)
    const size = (await stat(file)).size
    if (size > MEMBERS_SINCE_MAX_BYTES) {
      log.error('member first-taken times not read (every member new here): %s is %d bytes, over %d', file, size, MEMBERS_SINCE_MAX_BYTES)
      return 0
    }
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err?.code !== 'ENOENT') log.error('member first-taken times not read (every member new here): %s', (err as Error).message)
    return 0
  }
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    log.error('member first-taken times malformed (every member new here): %s', (err as Error).message)
    return 0
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    log.error('member first-taken times malformed (every member new here): not an object')
    return 0
  }
  const o = v as Record<string, unknown>
  if (VERSION_KEY in o) {
    const ages = o.ages
    if (o[VERSION_KEY] !== VERSION || typeof ages !== 'object' || ages === null || Array.isArray(ages)) {
      log.error('member standings of an unknown version or malformed (every member new here): version %s', String(o[VERSION_KEY]).slice(0, 16))
      return 0
    }
    // each pair checked by the table (restoreStandings): a bad one is left out
    return table.restoreStandings(Object.entries(ages as Record<string, number>))
  }
  // version 1: first-taken times on the wall clock, turned into ages once (times ahead of it,
  // a clock set back since, left out; the table leaves out the malformed)
  const now = wallNow()
  const ages: Array<[string, number]> = []
  for (const [peer, first] of Object.entries(o)) {
    if (typeof first === 'number' && Number.isSafeInteger(first) && first >= 0 && first <= now) ages.push([peer, now - first])
  }
  log('member first-taken times of version 1 read as standings on this start\'s wall clock (%d)', ages.length)
  return table.restoreStandings(ages)
}

/** Write `table`'s standings to the file now (whole: a temporary file renamed over it). */
export async function saveMembersSince (dir: string, table: Table): Promise<void> {
  const file = join(dir, MEMBERS_SINCE_FILE)
  const tmp = `${file}.tmp`
  const entries = table.standings()
  const fh = await open(tmp, 'w')
  try {
    // in slices, each its own turn of the event loop (a mount's requests wait on it), the same
    // JSON object as one stringify would give
    for (let i = 0; i < entries.length || i === 0; i += SAVE_SLICE) {
      const slice = entries.slice(i, i + SAVE_SLICE).map(([peer, ms]) => `${JSON.stringify(peer)}:${JSON.stringify(ms)}`).join(',')
      await fh.write(`${i === 0 ? `{${JSON.stringify(VERSION_KEY)}:${VERSION},"ages":{` : ','}${slice}${i + SAVE_SLICE >= entries.length ? '}}' : ''}`)
      await new Promise(resolve => setImmediate(resolve))
    }
    // (synced before the rename: a power loss leaves the old file or the new, not an empty one)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
}

/**
 * Keep `table`'s standings in `dir`: written every `everyMs` when members were first taken since
 * the last write, every `agesMs` all the same (the ages grew; one write at a time), and once more
 * by the returned stop().
 */
export function keepMembersSince (dir: string, table: Table, everyMs = MEMBERS_SINCE_SAVE_MS, agesMs = MEMBERS_SINCE_AGES_SAVE_MS): { stop: () => Promise<void> } {
  let saved = -1
  // intervals since the last write
  let ticks = 0
  let saving: Promise<void> | undefined
  const save = async (force: boolean): Promise<void> => {
    while (saving !== undefined) await saving
    const count = table.firstTakenCount
    if (!force && count === saved && ticks * everyMs < agesMs) return
    saving = saveMembersSince(dir, table).then(() => { saved = count; ticks = 0 }, (err: Error) => {
      // tried again at the next interval: a restart meanwhile starts the members newer here
      log.error('member standings not written: %s', err.message)
    }).finally(() => { saving = undefined })
    await saving
  }
  const timer = setInterval(() => { ticks++; void save(false) }, everyMs)
  timer.unref()
  return {
    stop: async () => {
      clearInterval(timer)
      await save(true)
    }
  }
}
