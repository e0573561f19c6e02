// A small state file in the data dir, kept across restarts (gc-since.ts, release-records.ts):
// lines of text, the first a header naming what it is, then `sum <sha256 hex of every byte
// before>`. Written whole to a temporary file, synced, renamed over the old one (a power loss
// leaves the old file or the new, never a part), in slices of lines, each its own turn of the
// event loop (a host serving a mount), with fs/promises only. Read whole, when no larger than a
// bound; a file cut short, changed, or of another kind is told apart from a missing one, so its
// reader can log it and leave it out.
import { createHash } from 'node:crypto'
import { open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'

/** Lines written (or read) per turn of the event loop. */
const SLICE = 4_096
/** Characters hashed per turn of the event loop when a file is read. */
const HASH_SLICE = 1 << 20

/**
 * Writes `head` and `count` lines (`line(i)`, no newline in any) to `file`, sealed by their sum:
 * whole (a temporary file synced and renamed over it), the lines made and written SLICE at a
 * time, each slice its own turn of the event loop.
 */
export async function writeSealed (file: string, head: string, count: number, line: (i: number) => string): Promise<void> {
  const tmp = `${file}.tmp`
  const hash = createHash('sha256')
  const fh = await open(tmp, 'w')
  try {
    const put = async (s: string): Promise<void> => {
      hash.update(s)
      await fh.write(s)
    }
    await put(`${head}\n`)
    for (let i = 0; i < count; i += SLICE) {
      let text = ''
      for (let j = i; j < Math.min(count, i + SLICE); j++) text += `${line(j)}\n`
      await put(text)
      await new Promise(resolve => setImmediate(resolve))
    }
    await fh.write(`sum ${hash.digest('hex')}\n`)
    // (synced before the rename: a power loss leaves the old file or the new, not an empty one)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
}

/** Calls `f` on each of `items`, SLICE at a time, each slice its own turn of the event loop: false from `f` stops it. */
export async function eachSliced<T> (items: readonly T[], f: (item: T, i: number) => boolean): Promise<boolean> {
  for (let i = 0; i < items.length; i += SLICE) {
    for (let j = i; j < Math.min(items.length, i + SLICE); j++) if (!f(items[j], j)) return false
    await new Promise(resolve => setImmediate(resolve))
  }
  return true
}

/**
 * The head and lines of `file` written by writeSealed(); `missing` for no file, or why it is
 * not read (too large, unreadable, cut short, changed).
 */
export async function readSealed (file: string, maxBytes: number): Promise<{ head: string, lines: string[] } | { missing: true } | { bad: string }> {
  let text: string
  try {
    const size = (await stat(file)).size
    if (size > maxBytes) return { bad: `${size} bytes, over ${maxBytes}` }
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    // handed to the caller, which logs it (a missing file is no error: a first start)
    if (err?.code === 'ENOENT') return { missing: true }
    return { bad: (err as Error).message }
  }
  const end = text.lastIndexOf('\nsum ')
  if (end < 0) return { bad: 'no sum line: cut short?' }
  const body = text.slice(0, end + 1)
  // (hashed 1 MiB of text at a time, a turn of the event loop each)
  const hash = createHash('sha256')
  for (let i = 0; i < body.length; i += HASH_SLICE) {
    hash.update(body.slice(i, i + HASH_SLICE))
    await new Promise(resolve => setImmediate(resolve))
  }
  if (hash.digest('hex') !== text.slice(end + 5).trim()) return { bad: 'its sum does not match' }
  const lines = body.split('\n')
  // (the body ends in a newline: the last piece is empty)
  lines.pop()
  const head = lines.shift() ?? ''
  return { head, lines }
}

/**
 * Removes `file` for good: unlinked, and its directory synced, so a power loss cannot bring it
 * back (a file read once must not be read at a second start). Throws when either fails.
 */
export async function removeSealed (file: string): Promise<void> {
  try {
    await unlink(file)
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw err
  }
  const d = await open(dirname(file), 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}
