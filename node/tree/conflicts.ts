// Conflict names (DESIGN.md §6): the loser of a concurrent write or name clash stays visible
// once as `NAME.conflict-<author short id>-<YYYYMMDD-HHMMSS>` in the same directory. The name
// is a pure function of the loser, so every host derives the same one; a conflict of a
// conflict reuses the original base name (no `a.conflict-x.conflict-y`).
import { MAX_NAME_BYTES } from './op.ts'

/** Characters of the author's peer id kept in a conflict name (its tail: peer ids share a prefix). */
export const AUTHOR_SHORT_CHARS = 8
const SUFFIX = /\.conflict-[A-Za-z0-9]+-\d{8}-\d{6}(?:-\d+)?$/
const utf8 = new TextEncoder()

/** The name without any conflict suffix. */
export function baseName (name: string): string {
  let base = name
  while (SUFFIX.test(base) && base.replace(SUFFIX, '') !== '') base = base.replace(SUFFIX, '')
  return base
}

export function isConflictName (name: string): boolean {
  return SUFFIX.test(name) && baseName(name) !== name
}

export function shortAuthor (author: string): string {
  const clean = author.replace(/[^A-Za-z0-9]/g, '')
  return (clean.length > 0 ? clean : 'x').slice(-AUTHOR_SHORT_CHARS)
}

/** UTC YYYYMMDD-HHMMSS of a time in ns. */
export function stamp (time: bigint): string {
  const iso = new Date(Number(time / 1_000_000n)).toISOString()
  return iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + '-' + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19)
}

/**
 * The conflict name for an entry named `name` whose losing version was made by `author` at
 * `time`; `taken` says which names the directory already has (a clash adds -2, -3, ...).
 */
export function conflictName (name: string, author: string, time: bigint, taken: (name: string) => boolean): string {
  const suffix = `.conflict-${shortAuthor(author)}-${stamp(time)}`
  let base = baseName(name)
  for (let n = 1; ; n++) {
    const tail = n === 1 ? suffix : `${suffix}-${n}`
    while (base.length > 1 && utf8.encode(base + tail).byteLength > MAX_NAME_BYTES) base = Array.from(base).slice(0, -1).join('')
    const candidate = base + tail
    if (!taken(candidate)) return candidate
  }
}

/** Longest extension kept at the end of a kept conflict's name (`.txt`, `.tar.gz` is `.gz`). */
const MAX_EXT_CHARS = 16

/**
 * The name a conflict sibling keeps as a plain file when a user keeps both versions
 * (`darkfs resolve --keep-both`): `STEM (conflict from <author short id> <YYYY-MM-DD HHMMSS>).EXT`,
 * the extension last so the file still opens as what it is; `taken` as for conflictName (a clash
 * adds ` 2`, ` 3`, ... inside the parentheses). A pure function of the sibling, so every host
 * derives the same one.
 */
export function keptName (name: string, author: string, time: bigint, taken: (name: string) => boolean): string {
  const base = baseName(name)
  const dot = base.lastIndexOf('.')
  const hasExt = dot > 0 && base.length - dot <= MAX_EXT_CHARS && dot < base.length - 1
  let stem = hasExt ? base.slice(0, dot) : base
  const ext = hasExt ? base.slice(dot) : ''
  const s = stamp(time)
  const when = `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)} ${s.slice(9)}`
  for (let n = 1; ; n++) {
    const tail = ` (conflict from ${shortAuthor(author)} ${when}${n === 1 ? '' : ` ${n}`})${ext}`
    while (stem.length > 1 && utf8.encode(stem + tail).byteLength > MAX_NAME_BYTES) stem = Array.from(stem).slice(0, -1).join('')
    const candidate = stem + tail
    if (!taken(candidate)) return candidate
  }
}
