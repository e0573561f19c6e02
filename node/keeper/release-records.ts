// Who put each block here (release.ts's records) kept across a clean restart (gc37): a restarted
// holder had none, so every block it held counted as `unknown` (refused to every asker, its
// writer's own release of an abandoned write too, left to GC for the retention period).
//
// Only a clean stop writes them: the daemon writes the file as it closes, after the swarm, the
// custody and release services, GC, pins and repair have stopped (nothing changes a record from
// then on), so the file is the table exactly as it was when this host stopped taking puts. A
// start takes the file once: it reads it and removes it for good (unlinked, the directory
// synced) before this host takes a put or a release, so a host that then dies without a clean
// stop (a crash, a kill, a power loss) starts the next time with no records, as before: a file
// written before puts that came since is never read. A record restored lists the same peers it
// did (pushers, promisees, named origins, `unknown`); what it does not keep: the time of its last
// push naming no origin (a restored record is not fresh: RELAYED_FRESH_MS), and the promises
// themselves (custody.ts, 10 minutes, in memory: a writer's placement asks again). Records of
// blocks the store no longer holds are left out (Release.restore()).
//
// The file, `release-records` (sealed-file.ts): a header `darkfs-release-records 1 <count> <host peer id>`, then
// one JSON array per record, least recently put first, the records kept aside (Release's
// `evicted`) after: [block, by, pushed, claimed, named, unknown (0|1), aside (0|1)]. A file too
// large, damaged, of another kind, or written by another host (copied from another data dir) is
// logged and left out whole (every block `unknown`, as before the file), and removed all the same.
import { join } from 'node:path'
import { eachSliced, readSealed, removeSealed, writeSealed } from './sealed-file.ts'
import { logger } from '../log.ts'

const log = logger('keeper:release')

export const RELEASE_RECORDS_FILE = 'release-records'
const MAGIC = 'darkfs-release-records'
const VERSION = 1
/**
 * A file larger than this is not read: the table's bound (PUT_REMEMBER_MAX and PUT_EVICTED_MAX
 * records) at ~800 B a record listing the most names (12 peer ids) is ~64 MiB; a table of one or
 * two putters a block is ~200 B a record, ~16 MiB.
 */
export const RELEASE_RECORDS_MAX_BYTES = 96 << 20
/** Longest string a record keeps (a CID, a peer id; swarm origins are at most 128 B). */
const MAX_NAME = 128
/** Most peers a list keeps (release.ts PUT_NAMES_MAX; a larger list is refused as damage). */
const MAX_LIST = 64

/** One record as kept: its block (CID string), the peer its record counts against, its lists. */
export interface KeptPutRecord {
  block: string
  by: string
  pushed: string[]
  claimed: string[]
  named: string[]
  unknown: boolean
  /** Kept aside (forgotten for room, of one putter: Release's `evicted`). */
  aside: boolean
}

/** Writes `records` (least recently put first, the ones kept aside after) to `dir` now, as host `self`'s. */
export async function saveReleaseRecords (dir: string, records: readonly KeptPutRecord[], self: string): Promise<void> {
  await writeSealed(join(dir, RELEASE_RECORDS_FILE), `${MAGIC} ${VERSION} ${records.length} ${self}`, records.length, i => {
    const r = records[i]
    return JSON.stringify([r.block, r.by, r.pushed, r.claimed, r.named, r.unknown ? 1 : 0, r.aside ? 1 : 0])
  })
}

/**
 * The records the last clean stop of host `self` wrote to `dir`, and the file removed for good:
 * none (logged) for a damaged file or another host's, and none when it cannot be removed (a
 * later start would read it again, after puts it does not know of).
 */
export async function takeReleaseRecords (dir: string, self: string): Promise<KeptPutRecord[]> {
  const file = join(dir, RELEASE_RECORDS_FILE)
  const read = await readSealed(file, RELEASE_RECORDS_MAX_BYTES)
  if ('missing' in read) return []
  let out: KeptPutRecord[] = []
  if ('bad' in read) log.error('release records in %s not read (%s): every block held counts as nobody\'s', file, read.bad)
  else {
    const parsed = await parse(read.head, read.lines, self)
    if (typeof parsed === 'string') log.error('release records in %s left out (%s): every block held counts as nobody\'s', file, parsed)
    else out = parsed
  }
  try {
    await removeSealed(file)
  } catch (err) {
    log.error('release records in %s read but not removed (%s): left out, every block held counts as nobody\'s', file, (err as Error).message)
    return []
  }
  return out
}

/** The records of a file's lines (a turn of the event loop per slice), or what is wrong with them. */
async function parse (head: string, lines: string[], self: string): Promise<KeptPutRecord[] | string> {
  const h = head.split(' ')
  if (h.length !== 4 || h[0] !== MAGIC || h[1] !== String(VERSION)) return 'unknown header'
  if (h[3] !== self) return `written by ${h[3].slice(0, 64)}, not this host: copied from another data dir?`
  if (Number(h[2]) !== lines.length) return 'record count'
  const out: KeptPutRecord[] = []
  const name = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_NAME
  const list = (v: unknown): v is string[] => Array.isArray(v) && v.length <= MAX_LIST && v.every(name)
  const flag = (v: unknown): v is 0 | 1 => v === 0 || v === 1
  let wrong = ''
  await eachSliced(lines, (line, i) => {
    let v: unknown
    try {
      v = JSON.parse(line)
    } catch (err) {
      // handed on as the reason, which takeReleaseRecords() logs
      wrong = `line ${i + 2}: not JSON (${(err as Error).message})`
      return false
    }
    if (!Array.isArray(v) || v.length !== 7) { wrong = `line ${i + 2}`; return false }
    const [block, by, pushed, claimed, named, unknown, aside] = v as unknown[]
    if (!name(block) || !name(by) || !list(pushed) || !list(claimed) || !list(named) || !flag(unknown) || !flag(aside)) { wrong = `line ${i + 2}`; return false }
    out.push({ block, by, pushed, claimed, named, unknown: unknown === 1, aside: aside === 1 })
    return true
  })
  return wrong !== '' ? wrong : out
}

