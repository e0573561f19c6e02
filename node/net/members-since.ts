// When each member was first taken here, kept across restarts (issue 14, bad input): a member's
// standing (MemberTable.memberSince) decides how deep into the shared call budget's reserve its
// calls may go (member-gate.ts RESERVE_DEPTHS), and a host that restarted pulled its table afresh
// and took every member as new: for STANDING_MS it gave the reserve to no one, and for a week to
// no one past the shallowest band, members of months and ids minted an hour before alike.
// Standing cannot be rebuilt from the signed records: a record's seq is when its subject last
// signed (a refresh a day or so), and a "member since" its subject signed would be its own word,
// which an id grinder gives as freely as the id. So this host keeps its own observations, in the
// data dir: a JSON file of { peer: ms }, written (whole, to a temporary file renamed over it)
// every SAVE_MS when members were first taken since the last write, and when the host stops;
// read once at start (a missing file: a first start; an unreadable or malformed one is logged
// and left out, every member new as before).
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

type Table = Pick<MemberTable, 'firstTaken' | 'restoreFirstTaken' | 'firstTakenCount'>

/** Read the kept first-taken times into `table`: how many were taken (0 for no file or a bad one). */
export async function loadMembersSince (dir: string, table: Table): Promise<number> {
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
  // each pair checked by the table (restoreFirstTaken): a bad one is left out
  return table.restoreFirstTaken(Object.entries(v as Record<string, number>))
}

/** Write `table`'s first-taken times to the file now (whole: a temporary file renamed over it). */
export async function saveMembersSince (dir: string, table: Table): Promise<void> {
  const file = join(dir, MEMBERS_SINCE_FILE)
  const tmp = `${file}.tmp`
  const entries = table.firstTaken()
  const fh = await open(tmp, 'w')
  try {
    // in slices, each its own turn of the event loop (a mount's requests wait on it), the same
    // JSON object as one stringify would give
    for (let i = 0; i < entries.length || i === 0; i += SAVE_SLICE) {
      const slice = entries.slice(i, i + SAVE_SLICE).map(([peer, ms]) => `${JSON.stringify(peer)}:${JSON.stringify(ms)}`).join(',')
      await fh.write(`${i === 0 ? '{' : ','}${slice}${i + SAVE_SLICE >= entries.length ? '}' : ''}`)
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
 * Keep `table`'s first-taken times in `dir`: written every `everyMs` when members were first
 * taken since the last write (one write at a time), and once more by the returned stop().
 */
export function keepMembersSince (dir: string, table: Table, everyMs = MEMBERS_SINCE_SAVE_MS): { stop: () => Promise<void> } {
  let saved = -1
  let saving: Promise<void> | undefined
  const save = async (): Promise<void> => {
    while (saving !== undefined) await saving
    const count = table.firstTakenCount
    if (count === saved) return
    saving = saveMembersSince(dir, table).then(() => { saved = count }, (err: Error) => {
      // tried again at the next interval: a restart meanwhile starts the members newer here
      log.error('member first-taken times not written: %s', err.message)
    }).finally(() => { saving = undefined })
    await saving
  }
  const timer = setInterval(() => { void save() }, everyMs)
  timer.unref()
  return {
    stop: async () => {
      clearInterval(timer)
      await save()
    }
  }
}
