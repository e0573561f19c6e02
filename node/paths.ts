// Volume paths: absolute, '/'-separated, resolved lexically, never above the root.
import { FsError } from './errors.ts'

/** POSIX NAME_MAX: bytes in one path component. */
export const NAME_MAX = 255

const encoder = new TextEncoder()

/**
 * Split a volume path into its components. '.' and empty components are dropped, '..' pops;
 * a '..' above the root, a relative path, a NUL byte or an over-long name is an error.
 *
 * A whole path has no length bound here. PATH_MAX bounds one system call's argument, not a
 * file's depth: the kernel walks a path below the mount component by component, and libfuse
 * rebuilds the full volume path of an entry however deep it is (a relative path of 4,095 bytes
 * under a cwd deep in the mount is legal on Linux). Such a path only names entries that exist
 * (plus one new name), so its size follows the tree's; callers that take paths from users (CLI,
 * control API) bound their own inputs.
 */
export function split (path: string, syscall: string): string[] {
  if (typeof path !== 'string' || path.length === 0) throw new FsError('ENOENT', syscall, String(path), 'empty path')
  if (path.includes('\0')) throw new FsError('EINVAL', syscall, path, 'path contains a NUL byte')
  if (!path.startsWith('/')) throw new FsError('EINVAL', syscall, path, 'volume paths are absolute (start with /)')
  const out: string[] = []
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (out.length === 0) throw new FsError('EINVAL', syscall, path, 'path escapes the volume root')
      out.pop()
      continue
    }
    checkName(part, syscall, path)
    out.push(part)
  }
  return out
}

export function checkName (name: string, syscall: string, path = name): void {
  if (encoder.encode(name).byteLength > NAME_MAX) throw new FsError('ENAMETOOLONG', syscall, path)
  if (name.includes('/') || name.includes('\0') || name === '' || name === '.' || name === '..') {
    throw new FsError('EINVAL', syscall, path, `invalid name '${name}'`)
  }
}

export function join (parts: string[]): string {
  return '/' + parts.join('/')
}
