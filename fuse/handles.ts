// Open files of the mount: kernel file handle numbers (fi->fh) -> Volume FileHandles.
import type { FileHandle } from '../node/index.ts'
import { FsError } from '../node/index.ts'

/** Most files open at once through one mount; beyond it open/create fail with EMFILE-like EBUSY. */
export const MAX_OPEN_FILES = 65536

export interface Handles {
  add: (fh: FileHandle) => number
  get: (n: number) => FileHandle
  remove: (n: number) => FileHandle | undefined
  /** Every open handle, for closing them all at unmount. */
  all: () => FileHandle[]
  readonly size: number
}

export function createHandles (): Handles {
  const open = new Map<number, FileHandle>()
  let next = 1
  return {
    add (fh) {
      if (open.size >= MAX_OPEN_FILES) throw new FsError('EBUSY', 'open', fh.path, `more than ${MAX_OPEN_FILES} open files`)
      while (open.has(next)) next = next >= 0x7fffffff ? 1 : next + 1
      const n = next
      next = next >= 0x7fffffff ? 1 : next + 1
      open.set(n, fh)
      return n
    },
    get (n) {
      const fh = open.get(n)
      if (fh === undefined) throw new FsError('EBADF', 'fuse', undefined, `no open file ${n}`)
      return fh
    },
    remove (n) {
      const fh = open.get(n)
      open.delete(n)
      return fh
    },
    all () {
      return [...open.values()]
    },
    get size () { return open.size }
  }
}
