// Readiness for systemd (scripts/darkfs.service, Type=notify): when $NOTIFY_SOCKET is set, the
// process systemd started tells it `READY=1` once the host is up (and mounted), as sd_notify(3)
// does. sd_notify is one datagram on the unix socket named by $NOTIFY_SOCKET; Node cannot send
// unix datagrams (node:dgram has udp4/udp6 only, node:net streams only) and darkfs takes no
// native dependency for it, so the message is sent by systemd-notify(1), spawned without
// waiting for it: the host never blocks on it. `--pid` names this process, the service's main
// process: systemd-notify sends on its behalf when it may (root), else under its own pid, which
// the unit's NotifyAccess=all accepts (systemd-notify waits until systemd has read the message,
// so it is not lost when the helper exits at once).
//
// Under the supervisor (node/cli/supervisor.ts) the supervisor is the main process: it notifies
// when its first worker is ready, and workers never do (they do not get $NOTIFY_SOCKET).
import { spawn } from 'node:child_process'
import { logger } from '../log.ts'

const log = logger('cli:notify')

/** The environment variable systemd sets for a Type=notify service. */
export const NOTIFY_SOCKET = 'NOTIFY_SOCKET'

/**
 * Tell systemd this service is ready (READY=1, with a STATUS line), if it is listening
 * ($NOTIFY_SOCKET set); otherwise nothing. Never waits: a failure is logged, the host serves on.
 * Resolves when the message was handed over (for tests; callers need not wait).
 */
export async function notifyReady (status: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (env[NOTIFY_SOCKET] === undefined || env[NOTIFY_SOCKET] === '') return
  await new Promise<void>(resolve => {
    const child = spawn('systemd-notify', ['--ready', `--pid=${process.pid}`, `--status=${status}`], { stdio: 'ignore', env })
    child.once('error', (err) => {
      log.error('could not tell systemd this host is ready (systemd-notify: %s); with Type=notify, systemd will time the start out', err.message)
      resolve()
    })
    child.once('exit', (code) => {
      if (code !== 0) log.error('systemd-notify --ready exited with status %s', String(code))
      resolve()
    })
  })
}
