// Volume Stats and StatFs -> the flat number arrays the native edge copies into struct stat
// and struct statvfs. Times keep nanoseconds (seconds and nanoseconds travel separately).
import { S_IFMT, typeOf } from '../node/index.ts'
import type { Kind, Stats, StatFs } from '../node/index.ts'

/** Field order shared with fuse/binding.c (STAT_FIELDS). */
export const STAT_FIELDS = 15
/** Field order shared with fuse/binding.c (STATFS_FIELDS). */
export const STATFS_FIELDS = 7
/** Default st_blksize when the Volume reports none: the chunk size, so tools use big I/O. */
export const DEFAULT_BLKSIZE = 1024 * 1024

const NS = 1_000_000_000n

/** The S_IFMT bits of a kind (node/modes.ts owns them). */
export const typeBits = (kind: Kind): number => typeOf(kind)

function split (ns: bigint, out: Float64Array, at: number): void {
  let sec = ns / NS
  let nsec = ns % NS
  if (nsec < 0n) { nsec += NS; sec -= 1n }
  out[at] = Number(sec)
  out[at + 1] = Number(nsec)
}

/** Stats -> [ino, mode, nlink, uid, gid, rdev, size, blocks, blksize, atime s, ns, mtime s, ns, ctime s, ns]. */
export function encodeStat (st: Stats): Float64Array {
  const out = new Float64Array(STAT_FIELDS)
  const mode = (st.mode & S_IFMT) !== 0 ? st.mode : (st.mode | typeOf(st.kind))
  out[0] = st.ino
  out[1] = mode
  out[2] = st.nlink
  out[3] = st.uid
  out[4] = st.gid
  out[5] = st.rdev ?? 0
  out[6] = st.size
  out[7] = st.blocks ?? Math.ceil(st.size / 512)
  out[8] = st.blksize > 0 ? st.blksize : DEFAULT_BLKSIZE
  split(st.atimeNs, out, 9)
  split(st.mtimeNs, out, 11)
  split(st.ctimeNs, out, 13)
  return out
}

/** StatFs -> [bsize, blocks, bfree, bavail, files, ffree, namemax]. */
export function encodeStatFs (s: StatFs): Float64Array {
  return Float64Array.from([s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.namemax])
}
