// Commands for the benches that must never hang the run (compare.ts and its helpers): each runs
// in its own process group with a deadline, and on expiry the whole group (git's and tar's
// children too) gets SIGKILL. A process stuck in the kernel on a FUSE request may outlive even
// that: after a grace period the call gives up on it and rejects anyway, so one stuck cell costs
// its timeout, not the run. Always asynchronous: the bench process serves darkfs mounts itself.
import { spawn } from 'node:child_process'

export interface RunResult { code: number, stdout: string, stderr: string, seconds: number }

export interface RunOptions {
  /** Deadline of the command, ms (default 60 s). */
  timeoutMs?: number
  cwd?: string
  /** Bytes written to its stdin (else stdin is /dev/null). */
  input?: string
  env?: NodeJS.ProcessEnv
}

/** How long a killed command may take to go away before the call stops waiting for it. */
const KILL_GRACE_MS = 15_000

export class CommandError extends Error {
  readonly result?: RunResult
  constructor (message: string, result?: RunResult) {
    super(message)
    this.result = result
  }
}

/** Run `cmd args` to completion; rejects on a non-zero exit, a signal or the deadline. */
export async function sh (cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runCommand(cmd, args, opts)
  if (r.code !== 0) throw new CommandError(`${cmd} ${args.join(' ')}: exit ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' / ').slice(0, 400)}`, r)
  return r
}

/** Run `cmd args`; resolves with its exit code (never rejects on a non-zero exit; rejects on the deadline). */
export async function runCommand (cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  const t0 = performance.now()
  return await new Promise<RunResult>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, detached: true, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let settled = false
    /** Set when the deadline passed: the exit that follows is a timeout, not a result. */
    let timedOut: string | undefined
    const finish = (fn: () => void): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      fn()
    }
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    child.once('error', err => { finish(() => { reject(new CommandError(`${cmd}: ${err.message}`)) }) })
    child.once('close', (code, signal) => {
      if (timedOut !== undefined) { finish(() => { reject(new CommandError(timedOut!)) }); return }
      finish(() => { resolve({ code: code ?? (signal !== null ? 128 : 1), stdout, stderr, seconds: (performance.now() - t0) / 1000 }) })
    })
    if (opts.input !== undefined) {
      // ignored: a command that exits before reading all of its input reports through its exit code
      child.stdin!.on('error', () => {})
      child.stdin!.end(opts.input)
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // ignored: the group is gone already (it exited as the deadline passed)
      }
      timedOut = `timeout after ${Math.round(timeoutMs / 1000)} s`
      // wait a little for the group to go (the close handler rejects then); a process stuck in the kernel is left behind
      const grace = setTimeout(() => { finish(() => { reject(new CommandError(`${timedOut!} (the process did not exit after SIGKILL)`)) }) }, KILL_GRACE_MS)
      child.once('close', () => { clearTimeout(grace) })
    }, timeoutMs)
  })
}

/** Whether `name` is a command on the PATH. */
export async function have (name: string): Promise<boolean> {
  return (await runCommand('sh', ['-c', `command -v ${name}`], { timeoutMs: 10_000 })).code === 0
}
