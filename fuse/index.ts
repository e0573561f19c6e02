// fuse/, the mount: the door of the room and the only file that loads the native edge
// (fuse/build/fuse.node, built from fuse/binding.c by fuse/build.sh).
//
//   const m = await mount(volume, '/mnt/darkfs')
//   m.invalidate('/a/b')   // a remote change arrived: drop the kernel's cached attrs/entry
//   await m.unmount()
//
// The kernel enforces uid/gid/mode (default_permissions, allow_other); every request runs as
// a Volume call on the Node event loop, answered asynchronously, with a deadline
// (`requestTimeoutMs`) after which the kernel gets EIO; writes, flushes, fsyncs and releases,
// whose work is this host's disk, get the longer `syncTimeoutMs` (a slow disk is no lost data). The deadline is a signal handed to every
// Volume call of the request: at the deadline it aborts, and with it the fetch behind the call
// (down to the swarm pull), so a request answered EIO leaves no work running on its behalf. A stale mount left at `dir` by a
// crashed process ("Transport endpoint is not connected") is lazily unmounted first.
// A request whose caller a signal reaches (the kernel's FUSE_INTERRUPT, sent for any signal the
// caller handles) is not cut short while the caller lives on: an EINTR from a regular file is
// what callers do not expect (a page fault of a mapped file answered so is SIGBUS; an O_APPEND
// writer that retries a write whose bytes were applied appends them twice), so it goes on to its
// answer or its deadline, as libfuse's own requests do without -o intr (WriteStats.interrupted
// counts the interrupts of reads and writes). A caller that is dying (kill -9, or Ctrl-C of a
// program that does not handle SIGINT: the binding reads its pending signals, caller_dying) is
// another matter: the kernel will not let it exit before its request is answered, so a `cat` of
// a file whose holders are unreachable would hang in D state until the deadline. Its request is
// answered EINTR at once (WriteStats.killed), and its signal aborts (an AbortError) unless the
// request changes something (KEEP_ON_INTERRUPT: a write, a close, a chmod...), which runs on to
// its end as if no signal came: no answer the dying caller could see is given for a change half
// made, and what it changes is done whole or not at all, as without the signal. A change of a
// name (rename, unlink, create...: WHOLE_ON_INTERRUPT) or an open that truncates is not answered
// early at all: libfuse's node tree follows a name change only on its success. Nor at the
// deadline: its signal aborts there, which cancels the change while it waits for its turn in the
// tree (Tree.commitMany: nothing applied, answered EIO), and once under way the change is
// applied and answered success: the binding waits for these as long as for the sync requests
// (`syncTimeoutMs` and a grace), so up to that deadline no EIO is given for a name the Volume
// then makes or removes. Past it the binding answers EIO on its own, and a change the Volume
// applies after that stays, its caller told it failed (logged; a handle its create or open
// gives is released here, none left open). Lock waits
// (F_SETLKW, flock) never reach darkfs: the mount has no lock operations, so the kernel keeps the
// locks of the host itself, and a signal interrupts their waits (EINTR) as on a local disk.
// The binding answers a read or write EIO on its own when JS has not by the
// deadline and a grace (WriteStats.expired): the event loop stuck.
// SIGINT/SIGTERM are the caller's: call unmount() from its handler.
//
// The process serving a mount must never block its event loop on that mount: no fs.*Sync
// calls on paths inside it, and no child_process spawn with a cwd inside it (spawn waits for
// the child's chdir, which waits for this process). Async fs calls on it are fine as long as
// the Volume does not need the same libuv threadpool slots; do heavy I/O on the mount from
// another process (the tests and scripts/bench/mount.ts do).
//
// Semantics worth knowing (libfuse's high-level, path-based API):
// - every name of a hard-linked file is its own kernel inode; the mount refreshes the other
//   names it has seen after link/unlink/rename/setattr/close, so counts and sizes agree;
// - an open file that is unlinked lives on (nlink 0) until its last close, as POSIX has it: its
//   name is gone at once (readdir, rmdir of its directory, other hosts), it reads and writes as
//   before, and what it held is dropped at the close, never a version (libfuse's hidden name for
//   it is an alias inside this mount only: fuse/ops.ts);
// - the same holds when its directory is removed too (rm -rf): fstat, fchmod, futimens, f*xattr
//   go on; a directory removed while held open keeps its attributes (nlink 0) until its last
//   close. libfuse gets every rmdir as a rename to a root name of its own, so it keeps a path for
//   what is held below (fuse/binding.c, rmdir_as_rename); open directories follow renames made
//   on this mount;
// - POSIX ACL xattrs (system.posix_acl_*) and file capabilities are refused (ENOTSUP), so
//   tools fall back to chmod; RENAME_EXCHANGE is EINVAL, RENAME_NOREPLACE is supported.
import { stat, readdir, writeFile, opendir, open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import type { VolumeApi } from '../node/index.ts'
import { logger } from '../node/index.ts'
import { createHandles } from './handles.ts'
import { createOps, Op } from './ops.ts'
import type { Answer, Request } from './ops.ts'
import { toErrno } from './errno.ts'
import { requireBinding } from './addon.ts'

export { NAME_MAX } from './ops.ts'

const log = logger('fuse:mount')

export interface MountOptions {
  /** libfuse debug output on stderr (default false). */
  debug?: boolean
  /** Seconds the kernel caches attributes and entries (default ATTR_TIMEOUT_S). */
  attrTimeout?: number
  /** Deadline of one request in ms; then the kernel gets EIO and the request's signal aborts (default REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number
  /**
   * Deadline of the requests that make written bytes durable here (write, flush, fsync,
   * release: SYNC_OPS), in ms (default SYNC_TIMEOUT_MS, and never less than requestTimeoutMs).
   */
  syncTimeoutMs?: number
  /**
   * Told of every request once it is answered: its kind (a name of fuse/ops.ts `Op`), the
   * seconds from its arrival to its answer, and its errno (0: success; a positive errno, EIO at
   * the deadline, otherwise). Called on the event loop: it must be quick and must not throw
   * (metrics count with it: node/api/metrics.ts).
   */
  onOp?: (op: string, seconds: number, errno: number) => void
  /**
   * Writes answered from the JS thread (fuse/binding.c write_direct) unanswered at once; past
   * it (or 256 MiB of their bytes) a write holds a libfuse worker until answered, so the kernel
   * is made to wait (default DIRECT_WRITES).
   */
  directWrites?: number
  /**
   * The max_write asked of the kernel, in bytes: at most (and by default) 1 MiB, at least 4,096.
   * For tests: a smaller one makes the kernel cut a write(2) at fewer pages (fuse/binding.c
   * write_bits), as on a host whose page limit is smaller.
   */
  maxWrite?: number
  /**
   * For tests: the longest an O_APPEND piece past the tracked end of file waits for the piece
   * before it, in ms (fuse/append-order.ts; default APPEND_HOLD_MS).
   */
  appendHoldMs?: number
}

/** The binding's counts of writes answered from the JS thread (fuse/binding.c js_stats). */
export interface WriteStats {
  /** Unanswered now, or answered (past the deadline) but not yet taken by JS: what the cap counts. */
  writes: number
  /** The most unanswered at once. */
  writesMax: number
  /** Bytes of those writes. */
  writeBytes: number
  /** Writes whose request buffer was handed to JS whole (large writes). */
  handed: number
  /** Writes copied out of the request buffer (small writes). */
  copied: number
  /** Writes left to a libfuse worker because the cap was reached. */
  overCap: number
  /** Direct reads and writes the kernel interrupted (a signal reached their caller) before they were answered. */
  interrupted: number
  /** Direct reads and writes answered EIO by the binding's own deadline (JS had not answered by the deadline and its grace). */
  expired: number
  /** Answers of direct reads and writes dropped because the binding's deadline had answered them. */
  late: number
  /** Requests (of every kind) interrupted while their caller was dying: answered EINTR at once. */
  killed: number
  /** Requests other than direct reads and writes (those libfuse's workers wait on) seen interrupted, their caller dying or not. */
  interruptedOthers: number
  /**
   * Requests other than direct reads and writes answered EIO by the binding's own deadline (JS
   * had not answered by the deadline and its grace: the event loop stuck); JS never runs them
   * once it gets them.
   */
  expiredOthers: number
  /**
   * Invalidations tried again because they found no inode while the kernel may have been making
   * one from an answer older than the change (fuse/binding.c inval_thread).
   */
  invalRetried: number
  /** Of those tries, the ones that found the inode (and dropped its old attributes). */
  invalRecovered: number
}

export interface Mount {
  readonly dir: string
  /** Drop the kernel's cached attributes, entry and data of `path` (a volume path). */
  invalidate: (path: string) => void
  /** The binding's counts of writes answered from the JS thread. */
  writeStats: () => WriteStats
  /** Unmount (lazily, so open files do not block it) and wait until the session has ended. */
  unmount: () => Promise<void>
}

/** Default deadline of one FUSE request. */
export const REQUEST_TIMEOUT_MS = 30_000
/**
 * Default deadline of a write, flush, fsync or release: 10 minutes. Their work is this host's:
 * storing buffered chunks and appending an op (fsync waits for peers only SYNC_PLACE_WAIT_MS, in
 * node/volume.ts), which always ends, however slowly on a busy disk; an EIO at the 30 s request
 * deadline would tell the application its data was lost when it was not (a 1 GiB write's fsync on a
 * loaded machine did get one). The deadline stays, for a host that is wedged.
 */
export const SYNC_TIMEOUT_MS = 600_000
/** The requests that get the sync deadline (mirrors is_sync_op in fuse/binding.c). */
const SYNC_OPS: ReadonlySet<number> = new Set([Op.write, Op.flush, Op.fsync, Op.release, Op.fsyncdir])

/**
 * Requests that change the volume (or end a handle) but not libfuse's node tree: interrupted
 * because their caller is dying, they are answered EINTR at once, but their Volume call is not
 * aborted: it runs to its end (or its deadline) as it would have, so a write, a chmod or a close
 * is applied whole or not at all, never cut at an arbitrary point. libfuse's answer to a setattr,
 * write, flush, xattr change or fallocate touches no node, and its release (fuse_do_release)
 * drops its open count whatever the answer. The others (reads, lookups, listings, fsync's wait
 * for peers) are aborted: they leave nothing behind. The other names of a hard-linked file a kept
 * change touched are refreshed when its call ends (the early answer had none to give).
 */
const KEEP_ON_INTERRUPT: ReadonlySet<number> = new Set([Op.chmod, Op.chown, Op.truncate, Op.write, Op.flush,
  Op.release, Op.setxattr, Op.removexattr, Op.releasedir, Op.utimens, Op.fallocate])

/**
 * Requests never answered before their Volume call ends, even for a dying caller or at the
 * deadline (which aborts their signal: a change not yet under way is cancelled): libfuse moves
 * or drops its node of a name (rename_node, remove_node, hide_node) and adds one for a new name
 * (lookup_path) only when the call succeeds. Answered EINTR while the Volume applied the change,
 * libfuse would keep the old name for the node (a rename's source, an unlinked file) and ask for
 * the node by that path from then on: the fstat or fchmod of a handle open on it would reach
 * whatever file has the name next. The invalidations of their answer (other names of the file)
 * would be lost too. The caller, dying, waits for the real answer (bounded by the deadline).
 */
const WHOLE_ON_INTERRUPT: ReadonlySet<number> = new Set([Op.mknod, Op.mkdir, Op.unlink, Op.rmdir, Op.symlink,
  Op.rename, Op.link, Op.create])

const O_CREAT = 0o100
const O_TRUNC = 0o1000

/**
 * Is request `op` (its first number `n0`: an open's flags) answered only by its Volume call?
 * An open that truncates (or creates: the kernel sends O_CREAT as a create, but should it come
 * here) is a change too: its truncation is not cut short, and its answer is the real one.
 */
function wholeOnInterrupt (op: number, n0: number): boolean {
  return WHOLE_ON_INTERRUPT.has(op) || (op === Op.open && (n0 & (O_TRUNC | O_CREAT)) !== 0)
}

/**
 * Requests that give the kernel a handle, and the request that ends one. When such a request's
 * answer was given before its Volume call ended (EINTR for a dying caller, EIO at the deadline,
 * or the binding's own EIO past the native deadline: reply() returns false),
 * the kernel never gets the handle and never releases it: it is released here, else its open
 * file would stay open (its writes never committed by a close) until the mount ends.
 */
const HANDLE_OPS: ReadonlyMap<number, number> = new Map([[Op.open, Op.release], [Op.create, Op.release], [Op.opendir, Op.releasedir]])

/** Interrupts that came before their request reached JS (the binding may queue them in that order), kept this many at most. */
const EARLY_INTERRUPTS = 1024

/** Default cap on direct writes unanswered at once (MountOptions.directWrites; fuse/binding.c DIRECT_WRITES). */
export const DIRECT_WRITES = 256

/** Default kernel attribute/entry cache time, seconds. */
export const ATTR_TIMEOUT_S = 1
/** How long unmount waits for a lazily detached mount to end before aborting the connection. */
export const UNMOUNT_GRACE_MS = 2_000

/** Kernel readahead of the mount, KiB: FUSE caps it at 128 KiB; sequential reads gain from 1 MiB. */
export const READAHEAD_KB = 1024

/** The mount failed: bad dir, no /dev/fuse, no permission. */
export class MountError extends Error {
  static override readonly name = 'MountError'
  override readonly name = 'MountError'
  readonly dir: string
  constructor (dir: string, detail: string) {
    super(`cannot mount darkfs at ${dir}: ${detail}`)
    this.dir = dir
  }
}

/** Request number -> its name (fuse/ops.ts Op), for MountOptions.onOp. */
const opNames: Record<number, string> = Object.fromEntries(Object.entries(Op).map(([name, n]) => [n, name]))

const EV_MOUNTED = 100
const EV_EXIT = 101
const EV_INTERRUPT = 102
const EINTR = 4

type Handler = (op: number, req: unknown, path: string | null, path2: string | null, data: Uint8Array | null,
  n0: number, n1: number, n2: number, n3: number, n4: number, uid: number, gid: number, umask: number, seq: number) => void

interface Binding {
  mount: (dir: string, opts: { debug: number, timeoutMs: number, syncTimeoutMs: number, attrTimeout: number, directWrites: number, maxWrite?: number }, handler: Handler) => unknown
  /** Answers a request; false when the binding had answered it already (its native deadline): this answer went nowhere. */
  reply: (req: unknown, result: number, a?: Uint8Array | Float64Array | string[], b?: Float64Array) => boolean
  invalidate: (m: unknown, path: string) => void
  stats: (m: unknown) => WriteStats
  umount: (dir: string, cb: (err: number) => void) => void
}

let binding: Binding | undefined
function load (): Binding {
  binding ??= requireBinding() as Binding
  return binding
}

function lazyUnmount (b: Binding, dir: string): Promise<number> {
  return new Promise(resolve => { b.umount(dir, resolve) })
}

/**
 * Is `dir` a dead FUSE mount (its server gone)? Opened, not only stat'ed: the kernel answers
 * stat from its attribute cache for a while after the server died, but an open always asks.
 */
async function isStale (dir: string): Promise<boolean> {
  try {
    await stat(dir)
    await (await opendir(dir)).close()
    return false
  } catch (err: any) {
    // any other error is no dead mount: mount() reports it (stat, or libfuse refusing the dir)
    return err?.code === 'ENOTCONN' || err?.code === 'ECONNABORTED'
  }
}

function minorOf (dev: number): number {
  return (dev & 0xff) | ((dev >>> 12) & ~0xff)
}

function majorOf (dev: number): number {
  return (dev >>> 8) & 0xfff
}

/** Raise the mount's readahead (best effort: needs root and sysfs). */
async function setReadahead (dev: number): Promise<void> {
  try {
    await writeFile(`/sys/class/bdi/${majorOf(dev)}:${minorOf(dev)}/read_ahead_kb`, String(READAHEAD_KB))
  } catch (err: any) {
    // expected without root or sysfs: the mount works, with the kernel's 128 KiB readahead
    log('readahead of device %d:%d left as is: %s', majorOf(dev), minorOf(dev), err?.message)
  }
}

/**
 * A FUSE connection's abort control (fusectl's `connections/N/abort`), opened while the
 * connection is ours. Writing the minor's file later, by number, could abort another mount:
 * once the kernel has dropped this connection (lazily unmounted, its last file closed) the
 * minor is free, and the next FUSE mount on the host (another darkfs, a user's sshfs) takes it
 * before our session's end reaches the event loop. The file opened now stays bound to this
 * connection: once it is gone, a write to it is a no-op (the kernel clears the inode's
 * connection when it removes the entry).
 */
export interface ConnectionAbort {
  /** Abort the connection this was opened for, if it still exists; best effort. */
  abort (): Promise<void>
  close (): Promise<void>
}

/** Open the abort control of the FUSE connection on device `dev` (mounting fusectl if needed). */
export async function connectionAbort (dev: number): Promise<ConnectionAbort> {
  const minor = minorOf(dev)
  const ctl = '/sys/fs/fuse/connections'
  let fh: FileHandle | undefined
  try {
    if ((await readdir(ctl)).length === 0) {
      await new Promise<void>(resolve => { execFile('mount', ['-t', 'fusectl', 'fusectl', ctl], () => { resolve() }) })
    }
    fh = await open(`${ctl}/${minor}/abort`, 'w')
  } catch (err: any) {
    // without fusectl (no root, no sysfs) unmount() still waits for the session to end
    log('no abort control for FUSE connection %d through %s: %s', minor, ctl, err?.message)
  }
  return {
    async abort () {
      if (fh === undefined) {
        log.error('could not abort FUSE connection %d: no control opened at mount', minor)
        return
      }
      try {
        await fh.write('1')
      } catch (err: any) {
        // survived: unmount() still waits for the session to end
        log.error('could not abort FUSE connection %d through %s: %s', minor, ctl, err?.message)
      }
    },
    async close () {
      const f = fh
      fh = undefined
      await f?.close()
    }
  }
}

export async function mount (volume: VolumeApi, dir: string, opts: MountOptions = {}): Promise<Mount> {
  const b = load()
  const timeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
  const syncTimeoutMs = Math.max(timeoutMs, opts.syncTimeoutMs ?? SYNC_TIMEOUT_MS)
  const directWrites = opts.directWrites ?? DIRECT_WRITES
  // (a timer's bound; the binding's native deadlines are these and a grace)
  for (const [name, ms] of [['requestTimeoutMs', timeoutMs], ['syncTimeoutMs', syncTimeoutMs]] as const) {
    if (!Number.isSafeInteger(ms) || ms < 1 || ms > 2 ** 31 - 1) throw new MountError(dir, `${name} must be a whole number of ms from 1 to ${2 ** 31 - 1}, not ${ms}`)
  }
  if (!Number.isSafeInteger(directWrites) || directWrites < 0) throw new MountError(dir, `directWrites must be a whole number >= 0, not ${directWrites}`)
  if (await isStale(dir)) await lazyUnmount(b, dir)
  const st = await stat(dir).catch((err: Error) => { throw new MountError(dir, err.message) })
  if (!st.isDirectory()) throw new MountError(dir, 'not a directory')

  const onOp = opts.onOp
  const handles = createHandles()
  const ops = createOps(volume, handles, { appendHoldMs: opts.appendHoldMs })
  let mounted!: (err: number) => void
  const mountedP = new Promise<number>(resolve => { mounted = resolve })
  let exited!: () => void
  const exitP = new Promise<void>(resolve => { exited = resolve })
  let ended = false
  /** Requests unanswered, by their number (seq): what an interrupt of one does. */
  const inFlight = new Map<number, () => void>()
  /** Numbers of requests interrupted before they reached JS (oldest first). */
  const early = new Set<number>()

  const handler: Handler = (op, req, path, path2, data, n0, n1, n2, n3, n4, uid, gid, umask, seq) => {
    if (op === EV_MOUNTED) { mounted(n0); return }
    if (op === EV_EXIT) { ended = true; exited(); return }
    if (op === EV_INTERRUPT) {
      const interrupt = inFlight.get(n0)
      if (interrupt !== undefined) { interrupt(); return }
      early.add(n0)
      if (early.size > EARLY_INTERRUPTS) early.delete(early.values().next().value!)
      return
    }
    const request: Request = { op, path, path2, data, n: [n0, n1, n2, n3, n4], caller: { uid, gid, umask } }
    let done = false
    const started = onOp === undefined ? 0 : performance.now()
    /** Did the answer given reach the kernel (false: the binding had answered EIO at its own deadline)? */
    let taken = true
    const answer = (a: Answer): void => {
      if (done) return
      done = true
      inFlight.delete(seq)
      taken = b.reply(req, a.result, a.a, a.b)
      onOp?.(opNames[op] ?? 'unknown', (performance.now() - started) / 1000, a.result < 0 ? -a.result : 0)
    }
    // a controller and a timer cleared when the call ends, rather than AbortSignal.timeout(),
    // whose timer (and this request) would live on for the whole deadline after a quick answer
    const deadline = new AbortController()
    const ms = SYNC_OPS.has(op) ? syncTimeoutMs : timeoutMs
    // a name change is not answered at the deadline: its signal aborts, which cancels the change
    // if it has not been stamped yet (the Volume then rejects: EIO, and nothing changed), and
    // its answer is what the call did (WHOLE_ON_INTERRUPT: an EIO while the Volume applies the
    // change after all would leave the caller, and libfuse's node tree, with a name the volume
    // does not have, or the reverse). The binding's own deadline for these is the sync one
    const whole = wholeOnInterrupt(op, n0)
    const timer = setTimeout(() => {
      if (!done && whole) log.error('request %d on %s passed its %d ms deadline: cancelled unless under way, answered when it ends', op, path ?? '?', ms)
      else if (!done) log.error('request %d on %s passed its %d ms deadline: answered EIO', op, path ?? '?', ms)
      if (!whole) answer({ result: -5 /* EIO */ })
      deadline.abort(new DOMException(`FUSE request ${op} on ${path ?? '?'} passed its ${ms} ms deadline`, 'TimeoutError'))
    }, ms)
    // its caller dying (the binding's EV_INTERRUPT): EINTR now; what reads is stopped, what
    // changes runs on to its end (KEEP_ON_INTERRUPT); what changes a name (or truncates on open)
    // is answered only by its end (WHOLE_ON_INTERRUPT)
    const interrupt = (): void => {
      if (done) return
      if (whole) {
        log('request %d on %s interrupted, its caller dying: runs on to its real answer', op, path ?? '?')
        return
      }
      log('request %d on %s interrupted, its caller dying: answered EINTR', op, path ?? '?')
      answer({ result: -EINTR })
      if (!KEEP_ON_INTERRUPT.has(op)) deadline.abort(new DOMException(`FUSE request ${op} on ${path ?? '?'} interrupted: its caller is dying`, 'AbortError'))
    }
    inFlight.set(seq, interrupt)
    // the timer is cleared when the call ends, not at the answer: a change answered EINTR for a
    // dying caller still has its deadline
    ops(request, { signal: deadline.signal, deadlineMs: ms }).then(a => {
      const release = HANDLE_OPS.get(op)
      const answeredFirst = done
      // (sets taken: false when the binding gave the request up at its own deadline, the
      // event loop or the Volume call too slow, and answered the kernel EIO)
      answer(a)
      const late = !answeredFirst && !taken && a.result >= 0
      // the Volume and the caller disagree: told EIO, what it asked for was done all the same
      if (late && (whole || KEEP_ON_INTERRUPT.has(op) || release !== undefined)) {
        log.error('request %d on %s succeeded past the binding\'s deadline, its caller told EIO: what it did stays%s',
          op, path ?? '?', release !== undefined ? `, its handle ${a.result} is released` : '')
      }
      if (((answeredFirst && a.result >= 0) || late) && release !== undefined) {
        if (answeredFirst) log('request %d on %s ended after its answer: its handle %d released', op, path ?? '?', a.result)
        ops({ op: release, path: null, path2: null, data: null, n: [a.result, -1, -1, -1, -1], caller: request.caller })
          .catch((err: unknown) => { log.error('releasing handle %d of an answered request %d on %s: %s', a.result, op, path ?? '?', err) })
      }
      // a change answered before its end (EINTR for a dying caller, EIO at the deadline): the
      // binding refreshed no other name of the file (finish_refresh runs only on success), so
      // those its end names are invalidated now, as a remote change's are
      if ((answeredFirst || late) && a.result >= 0 && KEEP_ON_INTERRUPT.has(op) && Array.isArray(a.a)) {
        for (const name of a.a) if (typeof name === 'string' && !ended) b.invalidate(m, name)
      }
    }, (err: unknown) => { answer({ result: toErrno(err) }) })
      .finally(() => { clearTimeout(timer) })
    if (early.delete(seq)) interrupt()
  }

  const m = b.mount(dir, { debug: opts.debug === true ? 1 : 0, timeoutMs, syncTimeoutMs, attrTimeout: opts.attrTimeout ?? ATTR_TIMEOUT_S, directWrites, ...(opts.maxWrite !== undefined ? { maxWrite: opts.maxWrite } : {}) }, handler)
  const err = await mountedP
  if (err !== 0) {
    await exitP
    throw new MountError(dir, `libfuse could not mount (errno ${-err}); is /dev/fuse there and are we root?`)
  }
  const dev = (await stat(dir)).dev
  await setReadahead(dev)
  const control = await connectionAbort(dev)
  // (a session that ends on its own, unmounted from outside, needs no control either)
  exitP.then(async () => { await control.close() }).catch((err: unknown) => { log.error('closing the abort control of %s: %s', dir, err) })

  let unmounting: Promise<void> | undefined
  return {
    dir,
    invalidate (path: string): void {
      if (!ended) b.invalidate(m, path)
    },
    writeStats (): WriteStats {
      return b.stats(m)
    },
    unmount (): Promise<void> {
      unmounting ??= (async () => {
        if (!ended) {
          await lazyUnmount(b, dir)
          let grace: NodeJS.Timeout | undefined
          await Promise.race([exitP, new Promise(resolve => { grace = setTimeout(resolve, UNMOUNT_GRACE_MS) })])
          clearTimeout(grace)
          if (!ended) await control.abort()
          await exitP
        }
        await control.close()
        await Promise.allSettled(handles.all().map(async fh => { await fh.close() }))
      })()
      return unmounting
    }
  }
}
