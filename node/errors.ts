// Errors you can switch on: a class per condition with a stable `name` (and, for filesystem
// errors, a POSIX `code` as node:fs uses), never matched on message text. Every error has a
// wire form ({ name, message, ...details }) so the control socket carries it unchanged.

export interface WireError { name: string, message: string, code?: string, path?: string, [k: string]: unknown }

/** A filesystem error, shaped like node:fs errors: `code` is the POSIX errno name. */
export class FsError extends Error {
  override readonly name = 'FsError'
  readonly code: FsCode
  readonly syscall: string
  readonly path?: string
  constructor (code: FsCode, syscall: string, path?: string, detail?: string) {
    super(`${code}: ${describe[code]}, ${syscall}${path !== undefined ? ` '${path}'` : ''}${detail !== undefined ? ` (${detail})` : ''}`)
    this.code = code
    this.syscall = syscall
    this.path = path
  }
}

export type FsCode = 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY' | 'EINVAL' | 'EACCES' |
'EPERM' | 'ENAMETOOLONG' | 'EXDEV' | 'EBADF' | 'EIO' | 'ENOSPC' | 'ENODATA' | 'ELOOP' | 'EROFS' |
'ENOTSUP' | 'ERANGE' | 'EFBIG' | 'EMLINK' | 'ETIMEDOUT' | 'EBUSY'

const describe: Record<FsCode, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ENOTEMPTY: 'directory not empty',
  EINVAL: 'invalid argument',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENAMETOOLONG: 'name too long',
  EXDEV: 'cross-device link',
  EBADF: 'bad file descriptor',
  EIO: 'i/o error',
  ENOSPC: 'no space left on device',
  ENODATA: 'no data available',
  ELOOP: 'too many symbolic links',
  EROFS: 'read-only file system',
  ENOTSUP: 'operation not supported',
  ERANGE: 'result too large',
  EFBIG: 'file too large',
  EMLINK: 'too many links',
  ETIMEDOUT: 'timed out',
  EBUSY: 'resource busy'
}

/** A stored block whose bytes do not hash to its CID. Never returned to a caller. */
export class CorruptBlockError extends Error {
  override readonly name = 'CorruptBlockError'
  /** Through the mount and node:fs-style callers this is an I/O error. */
  readonly code = 'EIO'
  readonly cid: string
  constructor (cid: string, where: string) {
    super(`block ${cid} is corrupt (${where}): its bytes do not match its CID`)
    this.cid = cid
  }
}

/** A block that is neither stored here nor reachable from any peer. */
export class BlockUnavailableError extends Error {
  override readonly name = 'BlockUnavailableError'
  readonly code = 'EIO'
  readonly cid: string
  constructor (cid: string, detail = 'not stored here and no reachable peer holds it') {
    super(`block ${cid} is unavailable: ${detail}`)
    this.cid = cid
  }
}

/** The data dir has no identity/config: `darkfs init` was never run there. */
export class NotInitialisedError extends Error {
  override readonly name = 'NotInitialisedError'
  constructor (dir: string) {
    super(`${dir} is not a darkfs data dir: run \`darkfs init --data ${dir} --new-network\` (or --network-key FILE) first`)
  }
}

/** No `darkfs up` is serving the control socket of this data dir. */
export class NoHostRunningError extends Error {
  override readonly name = 'NoHostRunningError'
  constructor (dir: string) {
    super(`no darkfs host is running for ${dir}: start one with \`darkfs up --data ${dir}\``)
  }
}

/** A second host on a data dir that already has one running. */
export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError'
  constructor (dir: string, pid: number) {
    super(`a darkfs host (pid ${pid}) is already running on ${dir}`)
  }
}

/** Bad arguments or configuration given by a user. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/**
 * A host could not listen on its addresses (`darkfs up --listen`): `port` is set when the reason
 * is a port in use, the case users meet (another host or program on it).
 */
export class ListenError extends Error {
  override readonly name = 'ListenError'
  readonly address: string
  readonly port?: number
  constructor (message: string, address: string, port?: number) {
    super(message)
    this.address = address
    this.port = port
  }
}

/** A peer connection that failed in a way that points at a different network key. */
export class NetworkKeyMismatchError extends Error {
  override readonly name = 'NetworkKeyMismatchError'
  constructor (peer: string, detail?: string) {
    super(`could not connect to ${peer}: the handshake failed, most likely a network key mismatch (the peer is not in this darkfs network, or not a darkfs host)${detail !== undefined ? `: ${detail}` : ''}`)
  }
}

/** `darkfs resolve PATH` of a path that has no conflict siblings (HTTP 409: nothing was changed). */
export class NotConflictedError extends Error {
  override readonly name = 'NotConflictedError'
  readonly path: string
  constructor (path: string, detail?: string) {
    super(`${path} has no conflict to resolve${detail !== undefined ? ` (${detail})` : ''}`)
    this.path = path
  }
}

const classes: Record<string, new (...args: any[]) => Error> = {}

/** Error -> wire form, for the control socket. */
export function toWire (err: unknown): WireError {
  if (err instanceof Error) {
    const wire: WireError = { name: err.name, message: err.message }
    for (const key of ['code', 'path', 'syscall', 'cid'] as const) {
      const v = (err as any)[key]
      if (v !== undefined) wire[key] = v
    }
    return wire
  }
  return { name: 'Error', message: String(err) }
}

/** Wire form -> an Error with the same name, message and details. */
export function fromWire (wire: WireError): Error {
  if (wire.name === 'FsError' && wire.code !== undefined) {
    const err = new FsError(wire.code as FsCode, String(wire.syscall ?? 'remote'), wire.path)
    err.message = wire.message
    return err
  }
  const Cls = classes[wire.name]
  const err: any = Cls !== undefined ? Object.create(Cls.prototype) : new Error(wire.message)
  Object.assign(err, wire)
  if (Cls !== undefined) {
    Object.defineProperty(err, 'message', { value: wire.message })
    Object.defineProperty(err, 'stack', { value: `${wire.name}: ${wire.message}` })
  }
  return err
}

for (const Cls of [CorruptBlockError, BlockUnavailableError, NotInitialisedError, NoHostRunningError, AlreadyRunningError, UsageError, NetworkKeyMismatchError, NotConflictedError]) {
  classes[Cls.name] = Cls
}
