// The one errno table of the mount: Volume errors (FsError with a POSIX `code`) become the
// negative errno the kernel expects. Anything without a known code is an I/O error.
import { constants } from 'node:os'
import type { FsCode } from '../node/index.ts'

const errno = constants.errno as Record<string, number>

/** FsCode -> errno number (Linux), resolved once from node:os. */
const table: Record<FsCode, number> = {
  ENOENT: errno.ENOENT,
  EEXIST: errno.EEXIST,
  ENOTDIR: errno.ENOTDIR,
  EISDIR: errno.EISDIR,
  ENOTEMPTY: errno.ENOTEMPTY,
  EINVAL: errno.EINVAL,
  EACCES: errno.EACCES,
  EPERM: errno.EPERM,
  ENAMETOOLONG: errno.ENAMETOOLONG,
  EXDEV: errno.EXDEV,
  EBADF: errno.EBADF,
  EIO: errno.EIO,
  ENOSPC: errno.ENOSPC,
  ENODATA: errno.ENODATA,
  ELOOP: errno.ELOOP,
  EROFS: errno.EROFS,
  ENOTSUP: errno.ENOTSUP,
  ERANGE: errno.ERANGE,
  EFBIG: errno.EFBIG,
  EMLINK: errno.EMLINK,
  ETIMEDOUT: errno.ETIMEDOUT,
  EBUSY: errno.EBUSY
}

/** Positive errno for a POSIX code name. */
export function errnoOf (code: FsCode): number {
  return table[code]
}

/** Any thrown value -> negative errno: its POSIX `code` if it has a known one, else -EIO. */
export function toErrno (err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') {
    const n = (table as Record<string, number | undefined>)[code] ?? errno[code]
    if (typeof n === 'number') return -n
  }
  return -errno.EIO
}
