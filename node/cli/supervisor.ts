// `darkfs up` keeps its host alive: the host runs in a worker child process (the same program,
// `up` with DARKFS_WORKER=1 in its environment), and this process restarts the worker when it
// dies (an abort, an out-of-memory kill, `kill -9`), so a mount never stays dead. The next worker
// replaces the stale mount the dead one left (fuse/index.ts) and carries on from the data dir.
//
// - Restarts back off: RESTART_DELAY_MS, doubling up to RESTART_DELAY_MAX_MS; a worker that ran
//   STABLE_AFTER_MS resets the delay.
// - No restart when the worker stopped on purpose: exit status 0 (SIGINT/SIGTERM sent to it,
//   `darkfs leave`), when this process was told to stop (SIGINT/SIGTERM/SIGHUP are forwarded to
//   the worker, and its exit status becomes ours), or when the worker never became ready (a
//   setup error such as a busy data dir or a bad mount dir: retrying would only repeat it).
// - The worker runs in its own process group, so a terminal's Ctrl-C reaches it once, through
//   here; a worker whose supervisor is gone (killed -9) dies at once, like a host killed -9, and
//   the next `darkfs up` replaces its stale mount.
// - Under systemd, which restarts by itself, run `darkfs up --no-restart` (scripts/darkfs.service):
//   one supervisor, not two. Should the unit run it without --no-restart all the same, the two
//   still agree: this process is systemd's main process, it sends READY=1 when its first worker
//   is ready (`ready` below; workers never get $NOTIFY_SOCKET, so only the main process
//   notifies), passes systemd's SIGTERM to the worker and exits with the worker's status; but a
//   worker it restarts is a restart systemd never sees, hence --no-restart in the unit.
import { execFile, spawn } from 'node:child_process'
import { isSea } from 'node:sea'
import { constants } from 'node:os'

/** First restart delay after a worker died. */
export const RESTART_DELAY_MS = 500
/** Longest restart delay (the delay doubles after each death in a row). */
export const RESTART_DELAY_MAX_MS = 30_000
/** A worker that ran this long before dying restarts after RESTART_DELAY_MS again. */
export const STABLE_AFTER_MS = 60_000
/** Set in a worker's environment: run the host in this process, report readiness over IPC. */
export const WORKER_ENV = 'DARKFS_WORKER'
/**
 * libuv's threadpool size a worker runs with, unless UV_THREADPOOL_SIZE is set: a host's file
 * writes, their syncs (two per block stored: the file and its directory) and its hashing
 * (chunk encode, Store.get) all queue on it, and Node's default of 4 let a writer's syncs hold
 * its next chunk's hashing back (a 4+2 chunk is 12 syncs on the writer). Threads waiting on the
 * disk cost no CPU.
 */
export const WORKER_THREADPOOL_SIZE = 16

/**
 * A worker's environment from this process's: systemd's notify socket stays here (the main
 * process tells systemd: node/cli/notify.ts), the worker is marked as one, and its threadpool is
 * WORKER_THREADPOOL_SIZE unless UV_THREADPOOL_SIZE is set.
 */
export function workerEnv (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NOTIFY_SOCKET: _, ...rest } = env
  return { UV_THREADPOOL_SIZE: String(WORKER_THREADPOOL_SIZE), ...rest, [WORKER_ENV]: '1' }
}

/** What a worker sends its supervisor once it serves (after its `ready` line). */
export interface ReadyMessage { type: 'darkfs:ready' }

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/** Is this process a supervised worker? */
export function isWorker (): boolean {
  return process.env[WORKER_ENV] === '1' && typeof process.send === 'function'
}

/**
 * In a worker: tell the supervisor the host is ready, and die with it. A worker left without
 * its supervisor exits at once (SIGKILL, like the host it is), leaving nothing running that no
 * one would restart or stop.
 */
export function workerReady (): void {
  if (!isWorker()) return
  process.send!({ type: 'darkfs:ready' } satisfies ReadyMessage)
  process.once('disconnect', () => {
    process.stderr.write('darkfs: the supervising `darkfs up` is gone; this host stops now\n')
    process.kill(process.pid, 'SIGKILL')
  })
  // the channel alone must not keep a stopped host alive
  process.channel?.unref()
}

/** Detach a (dead) mount, as fuse/index.ts does before mounting again; a failure is reported. */
async function lazyUnmount (dir: string, say: (line: string) => void): Promise<void> {
  await new Promise<void>(resolve => {
    execFile('umount', ['-l', dir], (err) => {
      if (err !== null) say(`could not unmount ${dir}: ${err.message.split('\n')[0]}`)
      resolve()
    })
  })
}

function signalNumber (signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 0
}

/**
 * Run `darkfs ARGS` (an `up` command line) as a worker and keep it running; resolves with the
 * exit status for this process.
 */
export async function supervise (args: string[], init: { mount?: string, say?: (line: string) => void, ready?: () => void } = {}): Promise<number> {
  const say = init.say ?? ((line: string) => { process.stderr.write(`darkfs: ${line}\n`) })
  const argv = isSea() ? args : [...process.execArgv, process.argv[1], ...args]
  let stopping: NodeJS.Signals | undefined
  let child: ReturnType<typeof spawn> | undefined
  let wake: (() => void) | undefined
  const onSignal = (signal: NodeJS.Signals): void => {
    stopping ??= signal
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill(signal)
    wake?.()
  }
  for (const s of STOP_SIGNALS) process.on(s, onSignal)
  try {
    let delay = RESTART_DELAY_MS
    let everReady = false
    for (;;) {
      const started = Date.now()
      const worker = spawn(process.execPath, argv, {
        stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
        env: workerEnv(process.env),
        detached: true
      })
      child = worker
      worker.on('message', (m: any) => {
        if (m?.type !== 'darkfs:ready') return
        if (!everReady) init.ready?.()
        everReady = true
      })
      const { code, signal } = await new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
        worker.once('exit', (code, signal) => { resolve({ code, signal }) })
        worker.once('error', (err) => {
          say(`cannot start the host: ${err.message}`)
          resolve({ code: 1, signal: null })
        })
      })
      child = undefined
      if (stopping !== undefined) return code ?? 128 + signalNumber(signal ?? stopping)
      if (code === 0) return 0
      const how = signal !== null ? `was killed by ${signal}` : `exited with status ${String(code)}`
      if (!everReady) {
        // a worker that exited with a status has said why (one line on stderr): no second line
        if (signal !== null) say(`the host ${how} before it was ready; not restarting it`)
        return code ?? 128 + signalNumber(signal!)
      }
      if (Date.now() - started >= STABLE_AFTER_MS) delay = RESTART_DELAY_MS
      say(`the host (pid ${String(worker.pid)}) ${how}; restarting it in ${delay} ms`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, delay)
        wake = () => { clearTimeout(timer); resolve() }
      })
      wake = undefined
      if (stopping !== undefined) {
        // told to stop between two workers: leave no dead mount behind
        if (init.mount !== undefined) await lazyUnmount(init.mount, say)
        return 0
      }
      delay = Math.min(2 * delay, RESTART_DELAY_MAX_MS)
    }
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal)
  }
}
