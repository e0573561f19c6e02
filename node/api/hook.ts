// `darkfs up --on-event CMD` (issue 13 item 3): CMD runs through `/bin/sh -c` once per event,
// with the event as one line of JSON on its stdin (and DARKFS_EVENT_TYPE, DARKFS_EVENT_ID in its
// environment). It never blocks the host: commands run as child processes, at most
// HOOK_CONCURRENCY at once; events wait in a queue of at most HOOK_QUEUE and past that are
// dropped (logged: the first drop, and how many once the hook caught up). A command that exits
// non-zero is logged with the end of its stderr; one that runs past HOOK_TIMEOUT_MS is killed
// (its process group) and logged. None of it stops the host.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import type { EventLog, HostEvent } from './events.ts'
import { logger } from '../log.ts'

const log = logger('api:hook')

/** Hook commands running at once: 2. */
export const HOOK_CONCURRENCY = 2
/** Events waiting for a free slot: 256; more are dropped. */
export const HOOK_QUEUE = 256
/** Longest a hook command may run before it is killed: 60 s. */
export const HOOK_TIMEOUT_MS = 60_000
/** Bytes of a hook's stderr kept for the log line of a failure: 2 KiB. */
export const HOOK_STDERR_BYTES = 2048

export interface EventHookInit {
  /** The shell command. */
  command: string
  concurrency?: number
  queue?: number
  timeoutMs?: number
}

export class EventHook {
  private readonly events: EventLog
  private readonly command: string
  private readonly concurrency: number
  private readonly queueMax: number
  private readonly timeoutMs: number
  private readonly queue: HostEvent[] = []
  private readonly running = new Set<ChildProcess>()
  private dropped = 0
  private unsubscribe?: () => void

  constructor (events: EventLog, init: EventHookInit) {
    this.events = events
    this.command = init.command
    this.concurrency = init.concurrency ?? HOOK_CONCURRENCY
    this.queueMax = init.queue ?? HOOK_QUEUE
    this.timeoutMs = init.timeoutMs ?? HOOK_TIMEOUT_MS
    if (this.command.trim() === '') throw new RangeError('--on-event needs a command')
  }

  start (): void {
    if (this.unsubscribe !== undefined) return
    this.unsubscribe = this.events.subscribe(e => { this.take(e) })
  }

  /** Stop taking events, forget the queue, kill the commands still running. */
  stop (): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
    this.queue.length = 0
    for (const child of this.running) kill(child)
  }

  /** Commands running now and events waiting. */
  load (): { running: number, queued: number, dropped: number } {
    return { running: this.running.size, queued: this.queue.length, dropped: this.dropped }
  }

  private take (e: HostEvent): void {
    if (this.running.size < this.concurrency) { this.run(e); return }
    if (this.queue.length >= this.queueMax) {
      if (this.dropped === 0) log.error('the --on-event hook cannot keep up (%d running, %d queued): dropping events from %s', this.running.size, this.queue.length, e.id)
      this.dropped++
      return
    }
    this.queue.push(e)
  }

  private run (e: HostEvent): void {
    let child: ChildProcess
    try {
      // its own process group, so a timeout kills what the shell started too
      child = spawn('/bin/sh', ['-c', this.command], {
        stdio: ['pipe', 'ignore', 'pipe'],
        detached: true,
        env: { ...process.env, DARKFS_EVENT_TYPE: e.type, DARKFS_EVENT_ID: e.id }
      })
    } catch (err) {
      log.error('the --on-event hook could not start for %s %s: %s', e.type, e.id, (err as Error).message)
      return
    }
    this.running.add(child)
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-HOOK_STDERR_BYTES) })
    // a hook that does not read its stdin closes it: that is its business
    child.stdin?.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE') log('the --on-event hook\'s stdin for %s: %s', e.id, err.message) })
    child.stdin?.end(JSON.stringify(e) + '\n')
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; kill(child) }, this.timeoutMs)
    timer.unref()
    const done = (): void => {
      clearTimeout(timer)
      if (!this.running.delete(child)) return
      const next = this.queue.shift()
      if (next !== undefined && this.unsubscribe !== undefined) this.run(next)
      if (this.queue.length === 0 && this.dropped > 0) {
        log.error('the --on-event hook caught up; %d event(s) were dropped', this.dropped)
        this.dropped = 0
      }
    }
    child.once('error', err => {
      log.error('the --on-event hook failed for %s %s: %s', e.type, e.id, err.message)
      done()
    })
    child.once('close', (code, signal) => {
      if (timedOut) log.error('the --on-event hook ran over %d ms for %s %s and was killed', this.timeoutMs, e.type, e.id)
      else if (code !== 0) log.error('the --on-event hook exited %s for %s %s: %s', code ?? signal, e.type, e.id, stderr.trim().split('\n').slice(-3).join(' | '))
      done()
    })
  }
}

function kill (child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch (err) {
    // the group is gone already (it exited meanwhile): nothing left to kill
    log('killing hook process group %d: %s', child.pid, (err as Error).message)
  }
}
